/*
 * rules: server rules and per-user mailbox rules.
 *
 * A rule set is an ordered list of rules {name, enabled, when, except,
 * action}.  It travels as JSON (API, CLI, console); rules_def_parse()
 * validates it into a model (struct rules_def) whose errors name the exact
 * place ("rules[3].when.all[1].value: ...").  rules_compile() turns a model
 * into an immutable matcher (struct rules_set): every leaf becomes an atom,
 * atoms are grouped by field and each field is scanned by one Vectorscan
 * database (plus PCRE2 JIT for the expressions Vectorscan refuses).
 * rules_eval() scans each field of a message once, then walks the rules in
 * order over the resulting bitset and returns a disposition per recipient.
 *
 * Threads: a compiled set is read-only and may be shared by any number of
 * threads; rules_eval() takes Vectorscan scratch from a small pool inside
 * the set.  rules_compile() can take a second on 10,000 rules: run it off
 * the event loop.  Nothing here does I/O or logs.
 *
 * Ownership: the caller frees what it creates (rules_def_free,
 * rules_set_free, rules_result_free).  Strings in a rules_result point into
 * the rules_set: the set must outlive the result.
 */
#ifndef MOAT_RULES_H
#define MOAT_RULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

struct mime_view;

/* Limits of the rule model (docs/rules.md). */
#define RULES_NAME_MAX 200          /* octets of a rule name */
#define RULES_COMMENT_MAX 2000      /* octets of a comment */
#define RULES_DEPTH_MAX 16          /* nesting of all/any/not in one condition */
#define RULES_LEAVES_MAX 256        /* leaves in one rule (when + except) */
#define RULES_VALUE_MAX 4096        /* octets of one value (string, regex, list name) */
#define RULES_NETWORKS_MAX 256      /* CIDR entries in one in_network value */
#define RULES_COUNT_MAX 100000      /* rules in one set: a memory bound, not a policy */
#define RULES_TEXT_MAX 400          /* octets of a refuse/defer reply text */
#define RULES_REGEX_MATCH_LIMIT 100000   /* PCRE2 match limit per value */
#define RULES_REGEX_DEPTH_LIMIT 5000     /* PCRE2 backtracking depth limit */
#define RULES_REGEX_HEAP_KIB 4096        /* PCRE2 heap limit per match, KiB */
#define RULES_POINTS_MAX 1000            /* |points| of one "score" action */
#define RULES_SCORE_VALUE_MAX 1000000    /* |value| a "score"/"score_part" condition compares with */
#define RULES_PART_NAME_MAX 100          /* octets of a score part name */
#define RULES_SCORE_EPSILON 1e-9         /* scores closer than this are equal */

enum rules_action_type {
	RULES_ACT_NONE = 0,     /* no final rule matched: deliver normally */
	RULES_ACT_ACCEPT,       /* final: deliver, skip later rules */
	RULES_ACT_REFUSE,       /* final: code/enhanced/text */
	RULES_ACT_DEFER,        /* final: 4xx */
	RULES_ACT_TAG,          /* not final: subject prefix and/or header */
	RULES_ACT_QUARANTINE,   /* final */
	RULES_ACT_HOLD,         /* final */
	RULES_ACT_DISCARD,      /* final */
	RULES_ACT_REDIRECT,     /* final: recipient replaced by address */
	RULES_ACT_BCC,          /* not final: adds a copy to address */
	RULES_ACT_STOP,         /* final: deliver with what accumulated */
	RULES_ACT_CONTINUE,     /* not final: only records the hit */
	/* Mailbox rules only (docs/mailbox-rules.md). */
	RULES_ACT_KEEP,         /* final: deliver to the inbox */
	RULES_ACT_MOVE,         /* final for the inbox: deliver to folder instead */
	RULES_ACT_COPY,         /* not final: also deliver a copy to folder */
	RULES_ACT_FORWARD,      /* final: deliver to address instead (loop-protected) */
	RULES_ACT_FORWARD_COPY, /* not final: also deliver a copy to address */
	RULES_ACT_IMPORTANCE,   /* not final: set Importance: high|normal|low */
	/* Both kinds. */
	RULES_ACT_SCORE         /* not final: add points (signed) to the recipient's score */
};

/* A server rule set has one `action` per rule; a mailbox set (one owner's
 * rules, run per recipient after the server rules) has `actions`, 1 to
 * RULES_ACTIONS_MAX of them run in order, and two more fields. */
enum rules_kind { RULES_KIND_SERVER, RULES_KIND_MAILBOX };

#define RULES_ACTIONS_MAX 8         /* actions of one mailbox rule */
#define RULES_FOLDER_MAX 255        /* octets of a folder name */

const char *rules_action_name(enum rules_action_type t);
bool rules_action_final(enum rules_action_type t);

/* --- the model ---------------------------------------------------------- */

struct rules_def;

/*
 * Parse a JSON array of rule objects.  Returns 0 and *out, or -1 with err
 * naming the place, e.g. "rules[3].when.all[1].value: invalid regular
 * expression: missing closing parenthesis at offset 4".
 */
int rules_def_parse(const char *json, size_t len, struct rules_def **out,
		    char *err, size_t errsz);
/* Same, from an already decoded JSON array. */
int rules_def_from_json(const json_t *arr, struct rules_def **out, char *err, size_t errsz);
/* Validate ONE rule object (the API's POST/PUT body); errors start "rule.". */
int rules_def_check_one(const json_t *obj, char *err, size_t errsz);

/* Same as rules_def_parse() for a set of the given kind, with no check of
 * forward addresses against the local domains. */
int rules_def_parse_kind(const char *json, size_t len, enum rules_kind kind,
			 struct rules_def **out, char *err, size_t errsz);

/* What a caller that knows the policy adds to the checks of the model. */
struct rules_parse_opts {
	enum rules_kind kind;
	size_t value_max;               /* octets of one value; 0: RULES_VALUE_MAX */
	/* Forward addresses (mailbox kind): when is_local is set and
	 * forward_external is false, the address's domain must be local. */
	bool forward_external;
	int (*is_local)(void *arg, const char *domain);   /* 1 local, 0 not */
	void *is_local_arg;
};
int rules_def_from_json_opts(const json_t *arr, const struct rules_parse_opts *o,
			     struct rules_def **out, char *err, size_t errsz);
int rules_def_check_one_opts(const json_t *obj, const struct rules_parse_opts *o, char *err,
			     size_t errsz);
/* True when an enabled rule of the set can refuse (the 452 class). */
bool rules_def_has_refuse(const struct rules_def *d);
enum rules_kind rules_def_kind(const struct rules_def *d);

/* Export as a JSON array (new reference); parse(export(d)) equals d. */
json_t *rules_def_to_json(const struct rules_def *d);
size_t rules_def_count(const struct rules_def *d);
const char *rules_def_name(const struct rules_def *d, size_t i);
void rules_def_free(struct rules_def *d);

/* --- the compiled set --------------------------------------------------- */

struct rules_set;

/* NULL with err naming rules[i] on failure (e.g. a Vectorscan limit). */
struct rules_set *rules_compile(const struct rules_def *d, char *err, size_t errsz);
/*
 * The same, taking from prev (the compiled set d was edited from; NULL: none)
 * every Vectorscan database whose exact pattern list is unchanged, so an
 * edit recompiles only the chunks it touched.  The result is identical in
 * behaviour to rules_compile(d) and independent of prev afterwards (shared
 * databases are reference-counted): either set may be freed first, from
 * any thread.  prev must not be freed during the call.
 */
struct rules_set *rules_compile_reuse(const struct rules_def *d, const struct rules_set *prev,
				      char *err, size_t errsz);
/* Vectorscan databases the last compile of rs built and took from prev. */
void rules_set_compile_stats(const struct rules_set *rs, unsigned *built, unsigned *reused);
void rules_set_free(struct rules_set *rs);
size_t rules_set_count(const struct rules_set *rs);
const char *rules_set_name(const struct rules_set *rs, size_t i);
/* Bytes held by the compiled set (databases, atoms, trees; not scratch). */
size_t rules_set_memory(const struct rules_set *rs);

/* --- evaluation --------------------------------------------------------- */

struct rules_input {
	const struct mime_view *mime;   /* NULL: no content (header/body fields never match) */
	const char *sender;             /* envelope MAIL FROM, "" for <> */
	const char *const *rcpts;       /* envelope recipients */
	size_t nrcpts;
	const char *client_addr;        /* textual IPv4/IPv6 */
	const char *client_name;        /* verified reverse name, or NULL */
	const char *helo;
	const char *auth_user;          /* NULL when not authenticated */
	int64_t size;                   /* message octets */
	const char *const *dnsbl;       /* names of DNSBL sites that listed the client */
	size_t ndnsbl;
	const char *const *flags;       /* "mime_limit", "tls", "auth" ... */
	size_t nflags;
	/* Membership in a named list of the policy: 1 yes, 0 no.  NULL: never a member. */
	int (*in_list)(void *arg, const char *list, const char *value);
	void *in_list_arg;
	/* The message's spam score before any rule's points, and its named
	 * parts ("BAYES", "SPF_FAIL", "DNSBL_zen.spamhaus.org" ...).  The
	 * fields "score" and "score_part" test them; a part not listed counts
	 * as 0 (so does the score when nothing computed one). */
	double score;
	const char *const *score_part_names;
	const double *score_part_values;
	size_t nscore_parts;
};

struct rules_verdict {
	enum rules_action_type action;  /* RULES_ACT_NONE when no final rule matched */
	long rule;                      /* index of the deciding rule, -1 for none */
	const char *rule_name;          /* NULL for none */
	int code;                       /* refuse/defer: SMTP reply code */
	const char *enhanced;           /* refuse/defer: "5.7.1" */
	const char *text;               /* refuse/defer: reply text */
	const char *address;            /* redirect: new recipient */
	const char *kind;               /* quarantine: "spam" or "policy"; NULL otherwise */
	/* Accumulated by non-final rules before the deciding one, in rule order. */
	const char **subject_prefixes;
	size_t nsubject_prefixes;
	const char **headers;           /* "X-Name: value" */
	size_t nheaders;
	const char **bcc;
	size_t nbcc;
	/* Mailbox sets only. */
	const char *folder;             /* move: the folder instead of the inbox; NULL: inbox */
	const char **copy_folders;      /* copy: extra deliveries to folders */
	size_t ncopy_folders;
	const char **forward_copies;    /* forward_copy: extra deliveries to addresses */
	size_t nforward_copies;
	const char *importance;         /* "high", "normal", "low"; NULL: unchanged */
	/* The sum of the "score" actions of every rule that matched for this
	 * recipient and was reached (not behind an earlier final rule), the
	 * deciding rule included; 0 when none. */
	double points;
};

struct rules_result {
	/* One verdict per recipient (pointers may be shared between recipients
	 * that got the same outcome).  With no recipients, rcpt is NULL and
	 * message is the one verdict; otherwise message == rcpt[0]. */
	const struct rules_verdict **rcpt;
	size_t nrcpts;
	const struct rules_verdict *message;
	/* Every rule whose condition held for at least one recipient and that
	 * was reached (not behind an earlier final rule), ascending. */
	size_t *hits;
	size_t nhits;
	/* PCRE2 matches that hit a limit (counted as no match). */
	unsigned regex_limit_hits;
	/* private */
	struct rules_verdict *verdicts_;
	size_t nverdicts_;
};

/* 0 and *out filled, or -1 on an internal failure (out is then empty). */
int rules_eval(const struct rules_set *rs, const struct rules_input *in, struct rules_result *out);
void rules_result_free(struct rules_result *r);

/*
 * The recipient's class for the SMTP answer: two recipients of one class
 * get the same refuse/defer outcome from this set whatever the message
 * (what differs between them matters only to rules that cannot refuse or
 * defer, or to rules after the last one that can).  0 when no rule that
 * can refuse or defer looks at the recipient.  The score and its parts are
 * message-wide (one rules_input.score for all recipients), so conditions on
 * them never make two recipients' classes differ.  A session gives a recipient
 * of another class than the transaction's first a 452 4.5.3, so that one
 * SMTP answer after DATA holds for every recipient.
 */
uint64_t rules_rcpt_class(const struct rules_set *rs, const char *rcpt,
			  int (*in_list)(void *arg, const char *list, const char *value),
			  void *in_list_arg);

#endif
