/*
 * dns: asynchronous DNS on the mail event loop (c-ares driven by libevent),
 * with a cache that honours TTLs (negative answers cached for the SOA
 * minimum, capped).  Used by the delivery client (MX, A/AAAA), the
 * front-door policy (DNSBL A/TXT, PTR, forward confirmation, HELO), the
 * recipient-domain check and sender authentication (whole TXT records for
 * SPF, DKIM keys and DMARC: DNS_TXT_FULL).
 *
 * Contract:
 * - dns_query() never calls cb before it returns (even on a cache hit the
 *   answer is delivered from the loop), and always calls it exactly once,
 *   unless dns_free() runs first, in which case it is called with
 *   DNS_CANCELLED.
 * - cb receives the caller's cookie (a session id, say) and ctx as given.
 *   A callback that can outlive its caller must use the cookie to look the
 *   caller up and cope with finding nothing; ctx is for long-lived owners.
 * - The result is valid only during the callback.
 * - A time-out or SERVFAIL is DNS_TEMPFAIL: callers must never turn it
 *   into a permanent refusal.
 */
#ifndef MOAT_DNS_H
#define MOAT_DNS_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;
struct dns;

/*
 * DNS_TXT keeps up to DNS_MAX_RECORDS records cut at DNS_NAME_MAX bytes
 * (DNSBL reasons).  DNS_TXT_FULL keeps whole records (SPF, DKIM keys,
 * DMARC policies): see struct dns_txt_full and dns_txt_next().
 */
enum dns_type { DNS_A, DNS_AAAA, DNS_MX, DNS_PTR, DNS_TXT, DNS_TXT_FULL };

enum dns_status {
	DNS_OK,        /* at least one record */
	DNS_NXDOMAIN,  /* the name does not exist */
	DNS_NODATA,    /* the name exists, no record of this type */
	DNS_TEMPFAIL,  /* time-out, SERVFAIL, refused, network error */
	DNS_BADNAME,   /* not a valid query name */
	DNS_CANCELLED, /* dns_free() ran before the answer */
};

#define DNS_MAX_RECORDS 32
#define DNS_NAME_MAX 255

struct dns_mx {
	uint16_t preference;
	char host[DNS_NAME_MAX + 1]; /* "" for a null MX ("." , RFC 7505) */
};

/*
 * Whole TXT records, each one's strings joined (RFC 7208 3.3, RFC 6376
 * 3.6.2.2) and NUL-ended, packed in answer order.  A NUL byte inside a
 * record becomes '?' (no record these serve may contain one).  A record
 * that does not fit is left out and cut is set, so that a caller can tell
 * "no such record" from "record not kept".
 */
#define DNS_TXT_FULL_MAX 8192

struct dns_txt_full {
	uint16_t len;    /* bytes of buf in use */
	uint8_t cut;     /* a record was left out */
	char buf[DNS_TXT_FULL_MAX];
};

struct dns_result {
	enum dns_type type;
	enum dns_status status;
	uint32_t ttl;            /* seconds the answer is good for */
	int from_cache;
	size_t count;            /* records in the array for type */
	union {
		struct in_addr a[DNS_MAX_RECORDS];
		struct in6_addr aaaa[DNS_MAX_RECORDS];
		struct dns_mx mx[DNS_MAX_RECORDS];     /* sorted by preference */
		char ptr[DNS_MAX_RECORDS][DNS_NAME_MAX + 1];
		char txt[DNS_MAX_RECORDS][DNS_NAME_MAX + 1]; /* strings joined, cut */
		struct dns_txt_full txt_full;          /* DNS_TXT_FULL */
	} u;
};

typedef void (*dns_cb)(const struct dns_result *r, uint64_t cookie, void *ctx);

struct dns_config {
	const char *servers;   /* "127.0.0.1:5353,[::1]:53"; NULL or "": resolv.conf */
	int64_t timeout_ms;    /* per try */
	int tries;
	size_t cache_entries;  /* 0: no cache */
	uint32_t max_negative_ttl;
};

struct dns *dns_new(struct event_base *base, const struct dns_config *cfg,
		    char *err, size_t errsz);
/* Cancels every pending query (their callbacks run with DNS_CANCELLED). */
void dns_free(struct dns *d);

/* name: a domain for A/AAAA/MX/TXT, or an already reversed name for PTR. */
void dns_query(struct dns *d, const char *name, enum dns_type type, dns_cb cb,
	       uint64_t cookie, void *ctx);

/*
 * The records of a DNS_TXT_FULL answer: dns_txt_next(r, NULL) is the
 * first, dns_txt_next(r, prev) the one after prev; NULL after the last.
 */
const char *dns_txt_next(const struct dns_result *r, const char *prev);

/* PTR for an address: builds in-addr.arpa / ip6.arpa (nibbles) itself. */
void dns_query_ptr(struct dns *d, const struct sockaddr *sa, dns_cb cb,
		   uint64_t cookie, void *ctx);

/*
 * Reverse an address into a DNSBL query prefix: "2.0.0.127" for
 * 127.0.0.2, 32 dot-separated nibbles for IPv6.  Pure; 0 or -1.
 */
int dns_reverse_name(const struct sockaddr *sa, char *out, size_t outsz);

/*
 * Can a domain receive mail (RFC 5321 5.1, RFC 7505)?  Its MX, else its
 * own A/AAAA (the implicit MX); with MX hosts, the A and AAAA of the first
 * DNS_MAIL_MAX_HOSTS of them by preference, all asked at once.
 * - LIVE as soon as one host has an address (the other answers are not
 *   waited for).
 * - DEAD when the domain does not exist, has a null MX (the most preferred
 *   MX is "."), has neither MX nor address, or every asked host answers
 *   NXDOMAIN or NODATA for both A and AAAA (a dangling MX).  An MX host
 *   that is an IP address is not a host name (RFC 5321 5.1: the MX data
 *   MUST be a domain name that has an address record) and counts as a host
 *   without address; "." among other MX hosts is skipped.
 * - TEMPFAIL when a time-out or SERVFAIL left no host live: never DEAD.
 * Every answer goes through dns_query() and its TTL cache; ttl is the
 * smallest TTL of the answers the verdict rests on.  The contract of
 * dns_query() holds: cb runs exactly once, never before the call returns,
 * with DNS_MAIL_CANCELLED if dns_free() ran first.
 */
#define DNS_MAIL_MAX_HOSTS 5

enum dns_mail_status { DNS_MAIL_LIVE, DNS_MAIL_DEAD, DNS_MAIL_TEMPFAIL, DNS_MAIL_CANCELLED };

enum dns_mail_why {
	DNS_MAIL_WHY_NONE,
	DNS_MAIL_NXDOMAIN,       /* the domain does not exist (or is not a name) */
	DNS_MAIL_NULL_MX,        /* RFC 7505 */
	DNS_MAIL_NO_RECORDS,     /* no MX, no A, no AAAA */
	DNS_MAIL_MX_NO_ADDRESS,  /* every MX host asked has no address */
};

struct dns_mail_result {
	enum dns_mail_status status;
	enum dns_mail_why why;   /* for DEAD */
	uint32_t ttl;
	size_t hosts;            /* MX hosts asked (0: no MX) */
	char host[DNS_NAME_MAX + 1]; /* LIVE: the host with an address */
};

typedef void (*dns_mail_cb)(const struct dns_mail_result *r, uint64_t cookie, void *ctx);

void dns_query_mail(struct dns *d, const char *domain, dns_mail_cb cb, uint64_t cookie,
		    void *ctx);
/* "nxdomain", "null_mx", "no_records", "mx_no_address", or "" */
const char *dns_mail_why_name(enum dns_mail_why w);

/*
 * The pure parts of dns_query_mail(), for tests.  dns_mail_pick() chooses
 * from an MX answer the hosts to ask (at most max, in preference order,
 * without duplicates, "." and IP addresses left out): their count, or -1
 * for a null MX.  *skipped counts the hosts left out as IP addresses.
 * dns_mail_decide() judges the hosts' answers so far: 1 and *out when
 * decided, 0 while an answer that could change it is missing.
 */
int dns_mail_pick(const struct dns_result *mx, size_t max, const char **names, size_t *skipped);

struct dns_mail_host {
	enum dns_status a, aaaa;
	int have_a, have_aaaa;   /* answered */
};
int dns_mail_decide(const struct dns_mail_host *h, size_t n, enum dns_mail_status *out);

struct dns_stats {
	uint64_t queries;
	uint64_t cache_hits;
	uint64_t tempfails;
	size_t cache_size;
};
void dns_get_stats(const struct dns *d, struct dns_stats *out);

#endif
