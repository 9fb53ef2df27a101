/*
 * policy_internal: what the policy_*.c files share, and what the unit
 * tests reach: the pure matchers (CIDR trie, host and mail sets, globs),
 * value validation, DNSBL return-code ranges, message templates,
 * settings, and the compiled snapshot.
 *
 * Everything here except the snapshot loader is pure: no I/O, no globals.
 */
#ifndef MOAT_POLICY_INTERNAL_H
#define MOAT_POLICY_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "policy.h"
#include "policy_validate.h"
#include "policy_score.h"

/* The entry that fired: shown in replies' log rows and the message log. */
struct policy_ref {
	int64_t id;
	const char *list;
	const char *value;
};

/* --- addresses ------------------------------------------------------------ */

/* IPv4 is held as IPv4-mapped IPv6 (::ffff:a.b.c.d), prefixes shifted by 96. */
int policy_ip_parse(const char *s, size_t len, uint8_t out[16]);
/* "192.0.2.0/24", "2001:db8::/32", or a bare address (a full prefix). */
int policy_cidr_parse(const char *s, size_t len, uint8_t addr[16], int *prefix);
int policy_sockaddr_ip(const struct sockaddr *sa, uint8_t out[16]);
/* Text form of an address held as above (IPv4 in dotted form). */
void policy_ip_format(const uint8_t ip[16], char *out, size_t outsz);

struct policy_trie;
struct policy_trie *policy_trie_new(void);
void policy_trie_free(struct policy_trie *t);
/* ref must outlive the trie.  A second entry with the same prefix is ignored. */
void policy_trie_insert(struct policy_trie *t, const uint8_t a[16], int prefix,
			const struct policy_ref *ref);
/* Longest-prefix match, or NULL. */
const struct policy_ref *policy_trie_lookup(const struct policy_trie *t, const uint8_t a[16]);
size_t policy_trie_nodes(const struct policy_trie *t);

/* --- strings -------------------------------------------------------------- */

/* Open-addressing hash set of lower-cased keys, each with its ref. */
struct policy_strset {
	struct {
		char *key;
		const struct policy_ref *ref;
	} *slots;
	size_t cap;   /* power of two, or 0 */
	size_t count;
};
void policy_strset_add(struct policy_strset *h, const char *key, size_t len,
		       const struct policy_ref *ref);
const struct policy_ref *policy_strset_get(const struct policy_strset *h, const char *key,
					   size_t len);
void policy_strset_free(struct policy_strset *h);

/* Case-insensitive glob: '*' any run, '?' one octet.  1 on a match. */
int policy_glob(const char *pat, size_t plen, const char *s, size_t slen);

/* --- lists ---------------------------------------------------------------- */

/* A compiled list: one of each lookup structure, used as its values need. */
struct policy_list {
	struct policy_trie *trie;
	struct policy_strset exact;   /* host names, domains */
	struct policy_strset wild;    /* "*.example.com" stored as "example.com" */
	struct policy_strset addrs;   /* exact mail addresses */
	struct {
		char *pat;
		const struct policy_ref *ref;
	} *globs;
	size_t nglobs;
	size_t count;
	int has_names;                /* host-name entries: needs reverse DNS */
};
/* Add a normalised value (as policy_value_check() produced it). */
void policy_list_add(struct policy_list *l, enum policy_list_type type,
		     const struct policy_ref *ref);
void policy_list_free(struct policy_list *l);
const struct policy_ref *policy_list_match_ip(const struct policy_list *l, const uint8_t ip[16]);
/* name: a host name; exact entries, then *.suffix entries. */
const struct policy_ref *policy_list_match_host(const struct policy_list *l, const char *name);
/* domain: exact, *.suffix, then globs ("*"). */
const struct policy_ref *policy_list_match_domain(const struct policy_list *l,
						  const char *domain);
/* addr: "local@domain" or "" for the null sender. */
const struct policy_ref *policy_list_match_mail(const struct policy_list *l, const char *addr);

/* --- DNSBL ---------------------------------------------------------------- */

int policy_codes_match(const struct policy_codes *c, uint32_t a);

/*
 * Expand {ip} and {zone} in tmpl into out; anything that is not printable
 * ASCII becomes '?', so that the result is safe as SMTP reply text.
 */
void policy_expand(const char *tmpl, const char *ip, const char *zone, char *out,
		   size_t outsz);

struct policy_dnsbl_site {
	int64_t id;
	char *zone;
	int allow;            /* DNSWL */
	int enabled;
	enum { POLICY_DNSBL_REFUSE, POLICY_DNSBL_TAG, POLICY_DNSBL_LOG } action;
	char *message;
	struct policy_codes codes;
	int weight;
};

/* --- settings ------------------------------------------------------------- */

struct policy_settings {
	int conn_allow_wins;          /* conn_precedence = allow */
	int sender_allow_wins;
	int rcpt_allow_wins;
	char conn_deny_text[400];
	char sender_deny_text[400];
	char rcpt_deny_text[400];
	int require_ptr;
	char require_ptr_text[400];
	int require_fcrdns;
	char require_fcrdns_text[400];
	int reverse_lookup;           /* look up PTR for every client */
	int helo_required_syntax;
	int helo_reject_own;
	int helo_reject_bare_ip;
	int helo_require_resolve;
	char helo_text[400];
	char dnsbl_default_text[400];
	int dnsbl_threshold;
	int recipient_verify;
	char unknown_rcpt_text[400];
	int allow_untrusted_routing;  /* % ! and quoted @ in local parts from anyone */
	char postmaster_address[320]; /* "" : postmaster@ the first local domain */
	int group_mail_external;      /* allow mail to groups from outside */
	char group_text[400];
	enum { POLICY_RELAY_ALL, POLICY_RELAY_EXTERNAL, POLICY_RELAY_NONE } relay_enforce;
	int relay_auth;
	char relay_text[400];
	int64_t max_recipients;       /* 0: only the config limit */
	int64_t client_max_sessions;  /* 0: off */
	int64_t client_max_rate;      /* connections per minute; 0: off */
	int64_t trusted_reserve;      /* sessions kept for allow-listed clients */
	int64_t harvest_threshold;    /* unknown recipients per window; 0: off */
	int64_t harvest_window_s;
	int64_t harvest_tarpit_ms;
	char harvest_text[400];
	int delay_reject;             /* connect and HELO refusals wait for RCPT */
	int64_t delay_reject_max;     /* delayed refusals before 421 and close */
	/* The score (docs/score.md). */
	int score_enabled;
	int sender_auth;
	int64_t sender_auth_timeout_s;
	int score_headers;            /* 0 always, 1 tagged, 2 never */
	double score_tag, score_quarantine, score_refuse, score_greylist;
	char score_tag_subject[64];
	double score_spf_pass, score_spf_fail, score_spf_softfail;
	double score_dkim_pass, score_dkim_fail;
	double score_dmarc_pass, score_dmarc_fail, score_dmarc_fail_none;
	double score_bayes_spam, score_bayes_ham, score_account;
	int64_t greylist_delay_s, greylist_window_s, greylist_lifetime_s, greylist_auto_allow;
	int64_t bayes_min_learned;
	int bayes_autolearn;
	double bayes_autolearn_spam, bayes_autolearn_ham;
	int bayes_learn_on_release;
};
/* Defaults, then each (key, value) given; unknown keys and bad values are skipped. */
void policy_settings_defaults(struct policy_settings *s);
void policy_settings_apply(struct policy_settings *s, const char *key, const char *value);

/* --- snapshot ------------------------------------------------------------- */

enum policy_list_id {
	PL_CONN_ALLOW, PL_CONN_DENY, PL_SENDER_ALLOW, PL_SENDER_DENY, PL_RCPT_ALLOW,
	PL_RCPT_DENY, PL_LOCAL_DOMAIN, PL_RELAY_NET, PL_RELAY_EXEMPT, PL_RELAY_DEST_ALLOW,
	PL_RELAY_DEST_DENY, PL_COUNT
};

enum policy_dir_kind { POLICY_DIR_USER = 1, POLICY_DIR_ALIAS, POLICY_DIR_GROUP };

struct rules_set;
struct score_models;
struct dkim_keyset;
struct store;

/* A mailbox rule set as the snapshot knows it (its rules live in the cache). */
struct policy_mbox_set {
	int64_t id;
	int64_t user_id;              /* 0 for a group's set */
	int64_t group_id;             /* 0 for a user's set */
	int64_t generation;           /* when the snapshot was built; the cache asks again */
	int has_refuse;
};

/* A threshold row as the snapshot holds it; label is "domain:x" or "user:name". */
struct policy_score_row {
	struct score_override o;
	const char *label;
};

struct policy_snap {
	int refs;                     /* touched on the loop only */
	int64_t generation;
	struct policy_settings set;
	struct policy_list lists[PL_COUNT];
	char first_local[256];        /* the first plain local_domain entry, or "" */
	struct policy_strset dir;     /* address -> ref (ref->id = dir kind) */
	/* Personal sender lists (policy_user.c): the addresses of users with
	 * entries -> owner (ref->id = user id); "<user id>:<value>" -> entry
	 * (ref->list "user_allow" or "user_block"). */
	struct policy_strset user_owner;
	struct policy_strset user_senders;
	struct policy_dnsbl_site *sites;
	size_t nsites;
	size_t nentries;
	/* Server rules: the enabled set, compiled (NULL when there is none). */
	struct rules_set *rules;
	int64_t *rule_ids;            /* rule i of the set is row rule_ids[i] */
	size_t nrules;
	/* Mailbox rule sets (policy_mailbox.c): sorted by id, and the address
	 * of each owner (a user's primary and aliases, a group's address) ->
	 * its set (ref->id = set id).  mbox_fp: store_mailbox_fingerprint()
	 * when loaded, for the watcher. */
	struct policy_mbox_set *mbox_sets;
	size_t nmbox_sets;
	struct policy_strset mbox_owner;
	int64_t mbox_fp[4];
	/* The statistical filter's models (score/score_models.h), NULL when the
	 * score is off; shared with the snapshots before and after it while the
	 * store's bayes generation stays bayes_generation. */
	struct score_models *bayes;
	int64_t bayes_generation;
	/* Score thresholds (policy_score.c): the domain and user rows, and
	 * domain -> row, user name -> row, a row's user's address -> row
	 * (ref->id = index into score_rows). */
	struct policy_score_row *score_rows;
	size_t nscore_rows;
	struct policy_strset score_domain, score_user, score_addr;
	/* DKIM signing keys (score/dkim_sign.h): the enabled keys, parsed;
	 * NULL when there is none. */
	struct dkim_keyset *dkim;
	/* Owned storage of every ref and value. */
	struct policy_ref *refs_arr;
	size_t nrefs, refs_cap;
	char **strings;
	size_t nstrings, strings_cap;
};

/* Build from the database (a worker thread or start-up; never the loop). */
struct policy_snap *policy_snap_load(const char *db_path, char *err, size_t errsz);
/* The same from an open store (the dry run); with_rules 0: no rules compiled. */
struct policy_snap *policy_snap_load_store(struct store *st, int with_rules, char *err,
					   size_t errsz);
/* An empty snapshot with default settings (tests, and when loading fails). */
struct policy_snap *policy_snap_empty(void);
/* Add one entry by list name and raw value (tests, and the loader). */
int policy_snap_add(struct policy_snap *sn, int64_t id, const char *list, const char *value,
		    char *err, size_t errsz);
void policy_snap_add_dir(struct policy_snap *sn, const char *address, enum policy_dir_kind kind);
int policy_snap_add_site(struct policy_snap *sn, int64_t id, const char *zone, int allow,
			 int enabled, const char *action, const char *message,
			 const char *codes, int weight, char *err, size_t errsz);
void policy_snap_free(struct policy_snap *sn);
/* Storage owned by the snapshot, for the loaders of other files. */
const char *policy_snap_keep(struct policy_snap *sn, const char *s);
struct policy_ref *policy_snap_new_ref(struct policy_snap *sn);
/* policy_user.c: one personal entry of user_id (kind allow|block); the
 * directory address of a user who has entries. */
int policy_snap_add_user_entry(struct policy_snap *sn, int64_t id, int64_t user_id,
			       const char *kind, const char *value, char *err, size_t errsz);
void policy_snap_add_user_owner(struct policy_snap *sn, const char *address, int64_t user_id);
/*
 * The personal entry of rcpt's owner that names sender (the address, else
 * its "@domain"), or NULL; *owner (may be NULL) receives the owner's user
 * id or 0.  rcpt is a directory address, sender a non-empty address.
 */
const struct policy_ref *policy_user_sender(const struct policy_snap *sn, const char *rcpt,
					    const char *sender, int64_t *owner);
/*
 * Is value on the named list (docs/policy.md's list names)?  An IP address
 * is matched as one, "local@domain" as a mail address, anything else as a
 * domain or host name.  For the rules' in_list operator: 1 yes, 0 no.
 */
int policy_snap_in_list(const struct policy_snap *sn, const char *list, const char *value);
/* The same as a rules_input.in_list callback: arg is the snapshot. */
int policy_snap_in_list_cb(void *sn, const char *list, const char *value);

/* policy_mailbox.c: the snapshot's part of the mailbox rules. */
void policy_snap_add_mbox_set(struct policy_snap *sn, const struct policy_mbox_set *set);
void policy_snap_add_mbox_owner(struct policy_snap *sn, const char *address, int64_t set_id);
/* The set that rcpt's owner has, or NULL. */
const struct policy_mbox_set *policy_mbox_find(const struct policy_snap *sn, const char *rcpt);
int policy_snap_load_mbox(struct store *st, struct policy_snap *sn);

/* For unit tests: a session on sn (a reference is taken), no engine, no DNS. */
struct policy_sess *policy_sess_test(struct policy_snap *sn, const char *ip);

#endif
