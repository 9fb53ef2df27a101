/*
 * auth: sender authentication of one message -- SPF (RFC 7208), DKIM
 * verification (RFC 6376, RFC 8301, RFC 8463) and DMARC (RFC 7489) -- on
 * the mail event loop's resolver (dns_query(), never a blocking call), and
 * the RFC 8601 Authentication-Results value that sums them up.
 *
 * auth_spf.c (SPF), auth_dkim.c (DKIM), auth_dmarc.c (DMARC) and auth.c
 * (the one entry point, auth_check_start(), and what the three share).
 * Every parser of outside bytes here is a pure function over
 * (const char *, size_t): the SPF record, the SPF macro expander, the
 * DKIM-Signature field, the DKIM key record, the DMARC record, the From:
 * domain.  The module logs nothing: results carry a reason and the caller
 * decides what to log.
 *
 * Asynchronous contract (auth_spf_start, auth_dkim_start, auth_dmarc_start,
 * auth_check_start): cb runs exactly once, from the loop, never inside the
 * start call, unless the handle is cancelled first; after cb the handle is
 * gone.  Cancelling only marks the check: it frees itself when its DNS
 * queries come back (c-ares cancels per channel, not per query), and the
 * caller's cb is never called.  Strings given are copied; the header
 * section and body given to DKIM and auth_check_start() must stay valid
 * until cb runs or the check is cancelled.
 */
#ifndef MOAT_AUTH_H
#define MOAT_AUTH_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct dns;
struct dynbuf;

/* Results as RFC 8601 names them ("none", "pass", ...). */
enum auth_res {
	AUTH_NONE,
	AUTH_PASS,
	AUTH_FAIL,
	AUTH_SOFTFAIL,
	AUTH_NEUTRAL,
	AUTH_TEMPERROR,
	AUTH_PERMERROR,
};
const char *auth_res_name(enum auth_res r);

#define AUTH_NAME_MAX 255     /* a domain name */
#define AUTH_REASON_MAX 200

/* ---- shared helpers (auth.c) ------------------------------------------- */

/*
 * One tag of a tag list (RFC 6376 3.2, also DMARC's): "name = value ;".
 * *pos starts at 0; 1 with the spans set, 0 at the end, -1 on a syntax
 * error.  Values keep their inner folding whitespace; leading and trailing
 * whitespace is trimmed.
 */
struct auth_tag {
	const char *name;
	size_t name_len;
	const char *value;
	size_t value_len;
	size_t value_off;     /* of value, from the start of the list */
};
int auth_tag_next(const char *s, size_t len, size_t *pos, struct auth_tag *t);

/* Base64 with whitespace ignored (RFC 6376 b=, bh=, p=); the decoded length or -1. */
long auth_b64_decode(const char *s, size_t len, unsigned char *out, size_t outsz);

/*
 * A domain name fit to query: 1..253 octets without a trailing dot, labels
 * of 1..63 octets of letters, digits, '-', '_' and other visible ASCII but
 * no space; at least two labels when multi is set.  1 or 0.
 */
int auth_domain_ok(const char *s, size_t len, int multi);

/* The header section split into fields (continuation lines kept). */
struct auth_hfield {
	const char *p;        /* "Name: value", folding included */
	size_t len;           /* without the final line break */
	size_t name_len;      /* of the name, before the colon */
};
/* At most max fields; the count, or -1 when a line is not a field or there are more. */
long auth_header_split(const char *hdr, size_t len, struct auth_hfield *out, size_t max);

/* ---- SPF (auth_spf.c) -------------------------------------------------- */

/*
 * Limits: RFC 7208 4.6.4 (10 terms that query DNS, 2 void lookups, 10
 * names per MX or PTR), and ours: a record longer than AUTH_SPF_RECORD_MAX
 * or with more than AUTH_SPF_MAX_TERMS terms is a permerror; expansions
 * beyond AUTH_SPF_EXPAND_MAX fail.
 */
#define AUTH_SPF_MAX_DNS_TERMS 10
#define AUTH_SPF_MAX_VOID 2
#define AUTH_SPF_MAX_MX 10
#define AUTH_SPF_RECORD_MAX 2048
#define AUTH_SPF_MAX_TERMS 64
#define AUTH_SPF_EXPAND_MAX 1024

enum auth_spf_mech {
	SPF_ALL, SPF_INCLUDE, SPF_A, SPF_MX, SPF_PTR, SPF_IP4, SPF_IP6, SPF_EXISTS,
};

struct auth_spf_term {
	enum auth_spf_mech mech;
	char qual;               /* '+', '-', '~', '?' */
	uint16_t spec_off;       /* domain-spec in text; spec_len 0: none */
	uint16_t spec_len;
	int cidr4;               /* -1: not given */
	int cidr6;
	struct in_addr v4;       /* ip4 */
	struct in6_addr v6;      /* ip6 */
};

struct auth_spf_record {
	char text[AUTH_SPF_RECORD_MAX + 1];
	size_t nterms;
	struct auth_spf_term terms[AUTH_SPF_MAX_TERMS];
	uint16_t redirect_off;   /* redirect_len 0: none */
	uint16_t redirect_len;
	uint16_t exp_off;
	uint16_t exp_len;
};

/*
 * Parse one SPF record ("v=spf1 ..."); 0, or -1 with err (a permerror).
 * Every macro-string is checked here, so a bad macro anywhere in the
 * record is an error even when evaluation would not reach it.
 */
int auth_spf_parse(const char *rec, size_t len, struct auth_spf_record *out,
		   char *err, size_t errsz);

/* Is this TXT record an SPF record (starts "v=spf1" then space or end)?  1 or 0. */
int auth_spf_is_record(const char *txt);

/* What the macros of RFC 7208 section 7 expand to. */
struct auth_spf_macro {
	const char *sender;      /* %{s}: local-part@domain */
	const char *domain;      /* %{d}: the current domain */
	const struct sockaddr *ip; /* %{i} %{c} %{v} */
	const char *helo;        /* %{h} */
	const char *ptr;         /* %{p}: a validated name, NULL: "unknown" */
	const char *receiver;    /* %{r} (exp only), NULL: "unknown" */
	int64_t now;             /* %{t} (exp only) */
};

/*
 * Expand a macro-string (a domain-spec, or with exp set an explanation
 * string, where c r t are allowed too).  Pure.  0, or -1 with err on a
 * syntax error or when out is too small.  With m NULL only the syntax is
 * checked.
 */
int auth_spf_expand(const char *spec, size_t len, const struct auth_spf_macro *m, int exp,
		    char *out, size_t outsz, char *err, size_t errsz);

struct auth_spf_result {
	enum auth_res res;
	char identity[9];        /* "mailfrom" or "helo" */
	char sender[AUTH_NAME_MAX + 66]; /* the checked identity: local@domain */
	char domain[AUTH_NAME_MAX + 1];
	unsigned dns_terms;      /* DNS-querying terms evaluated */
	unsigned void_lookups;
	char reason[AUTH_REASON_MAX];
};

typedef void (*auth_spf_cb)(const struct auth_spf_result *r, void *arg);
struct auth_spf;

/*
 * check_host() for MAIL FROM (or postmaster@HELO for the null sender).
 * mail_from: the envelope address without brackets ("" for <>).
 */
struct auth_spf *auth_spf_start(struct dns *d, const struct sockaddr *ip, const char *helo,
				const char *mail_from, auth_spf_cb cb, void *arg);
void auth_spf_cancel(struct auth_spf *s);

/* ---- DKIM (auth_dkim.c) ------------------------------------------------ */

/*
 * At most AUTH_DKIM_MAX_SIGS signatures of a message are verified (the
 * first ones in the header); the rest are counted and not checked.  Each
 * body canonicalisation (and l= length) is hashed once per message.
 */
#define AUTH_DKIM_MAX_SIGS 5
#define AUTH_DKIM_MAX_HNAMES 64
#define AUTH_DKIM_MAX_FIELDS 1000
#define AUTH_DKIM_MIN_RSA_BITS 1024   /* RFC 8301 3.2 */

enum auth_dkim_alg { DKIM_RSA_SHA256, DKIM_ED25519_SHA256 };
enum auth_dkim_canon { DKIM_SIMPLE, DKIM_RELAXED };

struct auth_dkim_sig {
	enum auth_dkim_alg alg;
	enum auth_dkim_canon hcanon;
	enum auth_dkim_canon bcanon;
	char d[AUTH_NAME_MAX + 1];
	char s[AUTH_NAME_MAX + 1];
	char i[AUTH_NAME_MAX + 66];    /* "" when absent: "@d" */
	unsigned char bh[64];
	size_t bh_len;
	unsigned char b[1024];         /* up to RSA 8192 */
	size_t b_len;
	size_t b_off;                  /* b= value in the field value, to blank it */
	size_t b_raw_len;
	size_t nh;                     /* h=: names, lower case */
	char h[AUTH_DKIM_MAX_HNAMES][80];
	int64_t l;                     /* -1: absent */
	int64_t t;
	int64_t x;
};

/*
 * Parse a DKIM-Signature field value (after the colon).  0, or -1 with
 * err: a syntax error, a missing required tag, an unknown algorithm, and
 * rsa-sha1 (refused, RFC 8301).  d and s are filled as far as they were
 * read, so that an error can name them.
 */
int auth_dkim_sig_parse(const char *v, size_t len, struct auth_dkim_sig *out,
			char *err, size_t errsz);

struct auth_dkim_key {
	enum auth_dkim_alg alg;   /* from k= */
	int revoked;              /* p= empty */
	int testing;              /* t=y */
	int strict;               /* t=s */
	unsigned char p[2048];
	size_t p_len;
};
/* Parse a key record (RFC 6376 3.6.1).  0, or -1 with err. */
int auth_dkim_key_parse(const char *rec, size_t len, struct auth_dkim_key *out,
			char *err, size_t errsz);

/* Canonicalise one header field ("Name: value", folding kept, no final break). */
int auth_dkim_canon_header(enum auth_dkim_canon c, const char *f, size_t len,
			   struct dynbuf *out);
/* Canonicalise a whole body (RFC 6376 3.4.3, 3.4.4); bare LF counts as CRLF. */
int auth_dkim_canon_body(enum auth_dkim_canon c, const char *b, size_t len,
			 struct dynbuf *out);

struct auth_dkim_result {
	enum auth_res res;
	char d[AUTH_NAME_MAX + 1];
	char s[AUTH_NAME_MAX + 1];
	char i[AUTH_NAME_MAX + 66];
	char alg[16];
	char reason[AUTH_REASON_MAX];
};

/* The message as DKIM sees it: its header section and its body. */
struct auth_msg {
	const char *header;       /* fields, each ending in LF or CRLF */
	size_t header_len;
	const char *body;
	size_t body_len;
};

struct auth_dkim_bodies;
struct auth_dkim_bodies *auth_dkim_bodies_new(const struct auth_msg *m);
void auth_dkim_bodies_free(struct auth_dkim_bodies *b);

/*
 * Verify one signature (the field fields[sig_field]) with a parsed key: a
 * pure function, for tests and the asynchronous path alike.  now: seconds
 * since the epoch (x= expiry).
 */
enum auth_res auth_dkim_verify(const struct auth_hfield *fields, size_t nfields,
			       size_t sig_field, const struct auth_dkim_sig *sig,
			       const struct auth_dkim_key *key, struct auth_dkim_bodies *bodies,
			       int64_t now, char *reason, size_t rsz);

struct auth_dkim_results {
	size_t n;
	struct auth_dkim_result r[AUTH_DKIM_MAX_SIGS];
	size_t not_checked;       /* signatures beyond AUTH_DKIM_MAX_SIGS */
};
typedef void (*auth_dkim_cb)(const struct auth_dkim_results *r, void *arg);
struct auth_dkim;

struct auth_dkim *auth_dkim_start(struct dns *d, const struct auth_msg *m, auth_dkim_cb cb,
				  void *arg);
void auth_dkim_cancel(struct auth_dkim *k);

/* ---- DMARC (auth_dmarc.c) ---------------------------------------------- */

enum auth_dmarc_policy { DMARC_P_UNSET = -1, DMARC_P_NONE, DMARC_P_QUARANTINE, DMARC_P_REJECT };
const char *auth_dmarc_policy_name(enum auth_dmarc_policy p);

struct auth_dmarc_record {
	enum auth_dmarc_policy p;
	enum auth_dmarc_policy sp;   /* UNSET: as p */
	int adkim_strict;
	int aspf_strict;
	int pct;                     /* 0..100 */
};
/* Parse a DMARC record ("v=DMARC1; p=..."); 0, or -1 with err. */
int auth_dmarc_parse(const char *rec, size_t len, struct auth_dmarc_record *out,
		     char *err, size_t errsz);

/*
 * The domain of the single address of a From: field value, lower case.
 * 0, or -1 when there is none, more than one, or it is not a domain.
 */
int auth_from_domain(const char *v, size_t len, char *out, size_t outsz);

/* The organisational domain (RFC 7489 3.2) through the public suffix list.  0 or -1. */
int auth_org_domain(const char *domain, char *out, size_t outsz);

struct auth_dmarc_result {
	enum auth_res res;           /* none, pass, fail, temperror, permerror */
	char from_domain[AUTH_NAME_MAX + 1];
	char policy_domain[AUTH_NAME_MAX + 1];
	enum auth_dmarc_policy policy;       /* the record's p= or sp= */
	enum auth_dmarc_policy disposition;  /* after pct: what to do on fail */
	char reason[AUTH_REASON_MAX];
};

typedef void (*auth_dmarc_cb)(const struct auth_dmarc_result *r, void *arg);
struct auth_dmarc;

/* The inputs DMARC judges: SPF's result and domain, the DKIM results. */
struct auth_dmarc_in {
	const char *from_value;      /* the From: field value */
	size_t from_len;
	size_t from_count;           /* From: fields in the header */
	const struct auth_spf_result *spf;
	const struct auth_dkim_results *dkim;
};
struct auth_dmarc *auth_dmarc_start(struct dns *d, const struct auth_dmarc_in *in,
				    auth_dmarc_cb cb, void *arg);
void auth_dmarc_cancel(struct auth_dmarc *m);

/* ---- the whole check (auth.c) ------------------------------------------ */

struct auth_facts {
	const struct sockaddr *ip;   /* the SMTP client */
	const char *helo;
	const char *mail_from;       /* without brackets; "" for <> */
	const char *header;          /* the header section */
	size_t header_len;
	const char *body;
	size_t body_len;
};

struct auth_result {
	struct auth_spf_result spf;
	struct auth_dkim_results dkim;
	struct auth_dmarc_result dmarc;
};

typedef void (*auth_done_cb)(const struct auth_result *r, void *arg);
struct auth_check;

/* SPF and DKIM at once, then DMARC on their results. */
struct auth_check *auth_check_start(struct dns *d, const struct auth_facts *f, auth_done_cb cb,
				    void *arg);
void auth_check_cancel(struct auth_check *c);

/*
 * The Authentication-Results value (RFC 8601): "authserv-id; spf=...
 * smtp.mailfrom=...; dkim=... header.d=... header.s=...; dmarc=...
 * header.from=...".  0, or -1 when out is full.
 */
int auth_results_format(const struct auth_result *r, const char *authserv_id,
			struct dynbuf *out);

#endif
