/*
 * store_auth: SQL of API authentication and of the audit log (schema/004):
 * console users (dir_user with password, role and disabled), sessions,
 * API tokens, failed-login records, audit entries.  Also the read-only
 * queries of the message log the API serves (search, statistics, metrics).
 *
 * Used by the HTTP threads (daemon/http) only, each on its own connection.
 * Secrets arrive here already hashed; nothing here hashes or logs.  Rows are
 * copied into fixed-size out-structs (strings longer than the field are cut)
 * or, for lists, passed to a callback whose strings live only for the call.
 * Returns 0 or -1 (SQLite error: store_errmsg() tells).
 */
#ifndef MOAT_STORE_AUTH_H
#define MOAT_STORE_AUTH_H

#include <stddef.h>
#include <stdint.h>

struct store;

/* The connection's last SQLite error message (for logs). */
const char *store_auth_errmsg(struct store *st);

struct store_user {
	int64_t id;
	char name[320];
	char role[8];             /* admin | user */
	int disabled;
	int has_password;
	int64_t created;          /* unix ms */
	int64_t password_changed; /* unix ms, 0 never */
	char password_hash[256];  /* Argon2id encoded; "" when none */
};

struct store_user_filter {
	const char *q;            /* name substring, case-insensitive; NULL any */
	const char *role;         /* NULL any */
	int disabled;             /* -1 any, 0, 1 */
	const char *sort;         /* name | -name | created | -created | id | -id */
	int64_t limit, offset;
};

/* Users with role admin: all of them, and those not disabled. */
int store_auth_admin_count(struct store *st, int64_t *all, int64_t *enabled);
/* *dup = 1 (and -1 returned) when the name exists. */
int store_auth_user_create(struct store *st, const char *name, const char *hash,
			   const char *role, int disabled, int64_t now, int64_t *id, int *dup);
int store_auth_user_get(struct store *st, int64_t id, struct store_user *u, int *found);
/* Case-sensitive name. */
int store_auth_user_by_name(struct store *st, const char *name, struct store_user *u,
			    int *found);
int store_auth_user_update(struct store *st, int64_t id, const char *role, int disabled);
int store_auth_user_set_password(struct store *st, int64_t id, const char *hash,
				 int64_t now);
int store_auth_user_delete(struct store *st, int64_t id, int *removed);
int store_auth_users(struct store *st, const struct store_user_filter *f,
		     int (*cb)(const struct store_user *u, void *arg), void *arg);
/* Directory addresses of a user, in address order. */
int store_auth_user_addresses(struct store *st, int64_t id,
			      int (*cb)(const char *address, const char *kind, void *arg),
			      void *arg);
/*
 * A stamp of what a login depends on: the policy generation (users and
 * addresses added or removed), the number of users, the newest password
 * change, and who is disabled.  Two equal stamps: no login can have changed
 * its outcome in between (the SMTP credential cache compares them).
 */
struct store_auth_stamp {
	int64_t generation;
	int64_t users;
	int64_t password_changed; /* max(dir_user.password_changed) */
	int64_t disabled;         /* sum(disabled) */
	int64_t disabled_ids;     /* sum(disabled * id) */
};
int store_auth_dir_stamp(struct store *st, struct store_auth_stamp *out);

struct store_session {
	char csrf[80];
	char client_addr[64];
	int64_t created, last_seen, expires;
	struct store_user user;
};

int store_auth_session_create(struct store *st, const char *id_hash, int64_t user_id,
			      const char *csrf, const char *addr, int64_t now,
			      int64_t expires);
int store_auth_session_get(struct store *st, const char *id_hash, struct store_session *s,
			   int *found);
int store_auth_session_touch(struct store *st, const char *id_hash, int64_t now);
int store_auth_session_delete(struct store *st, const char *id_hash);
/* Every session of user_id except keep_hash (NULL: all). */
int store_auth_session_delete_user(struct store *st, int64_t user_id,
				   const char *keep_hash);
/* Sessions past expires or idle since before idle_before. */
int store_auth_session_purge(struct store *st, int64_t now, int64_t idle_before);

struct store_token {
	int64_t id;
	int64_t user_id;
	char user_name[320];
	char name[256];
	char prefix[24];
	char scope[8];            /* admin | user */
	int64_t created;
	int64_t last_used;        /* 0 never */
	int64_t revoked;          /* 0 active */
};

/* *dup = 1 when the user already has an active token of that name. */
int store_auth_token_create(struct store *st, int64_t user_id, const char *name,
			    const char *hash, const char *prefix, const char *scope,
			    int64_t now, int64_t *id, int *dup);
int store_auth_token_by_hash(struct store *st, const char *hash, struct store_token *t,
			     struct store_user *u, int *found);
int store_auth_token_get(struct store *st, int64_t id, struct store_token *t, int *found);
/* user_id 0: every user's.  revoked: -1 any, 0 active, 1 revoked.  id order. */
int store_auth_tokens(struct store *st, int64_t user_id, int revoked, int64_t limit,
		      int64_t offset, int (*cb)(const struct store_token *t, void *arg),
		      void *arg);
int store_auth_token_revoke(struct store *st, int64_t id, int64_t now, int *changed);
int store_auth_token_touch(struct store *st, int64_t id, int64_t now);

/* Failed logins: record one; count those at or after since for an address or account. */
int store_auth_failure_add(struct store *st, const char *addr, const char *account,
			   int64_t now);
int store_auth_failures_by_addr(struct store *st, const char *addr, int64_t since,
				int64_t *count, int64_t *oldest);
int store_auth_failures_by_account(struct store *st, const char *account, int64_t since,
				   int64_t *count, int64_t *oldest);
int store_auth_failures_purge(struct store *st, int64_t before);

/*
 * Login throttling, shared by the API and SMTP AUTH (schema/010).  Accounts
 * are keyed lower case.  Three limits, each over failures younger than
 * window_ms:
 *  - per address over all accounts (max_per_addr; 0: not checked here);
 *  - per (account, address): after throttle_after failures each further try
 *    waits delay_ms, doubled per further failure, at most delay_max_ms,
 *    counted from the latest failure of that pair;
 *  - per account over all addresses (max_per_account), never applied to an
 *    address from which the account has logged in before (known-good).
 * A try that is refused is not checked and not counted.
 */
struct store_login_limits {
	int64_t window_ms;
	int64_t max_per_addr;
	int64_t max_per_account;
	int64_t throttle_after;
	int64_t delay_ms, delay_max_ms;
};

enum store_login_gate {
	STORE_LOGIN_OK,
	STORE_LOGIN_ADDR,     /* the address's limit over all accounts */
	STORE_LOGIN_PAIR,     /* this address must wait before trying this account again */
	STORE_LOGIN_ACCOUNT,  /* the account's limit, from an address never seen to log in */
};

/* *why the limit that holds the longest (*wait_ms > 0), or STORE_LOGIN_OK. */
int store_auth_login_gate(struct store *st, const char *account, const char *addr,
			  int64_t now, const struct store_login_limits *lim,
			  enum store_login_gate *why, int64_t *wait_ms);
/* Pure: the wait left for a pair with failures in the window, the newest at newest. */
int64_t store_login_pair_wait(const struct store_login_limits *lim, int64_t failures,
			      int64_t newest, int64_t now);
int store_auth_login_failed(struct store *st, const char *account, const char *addr,
			    int64_t now);
/* Forget the pair's failures and remember the address as known-good. */
int store_auth_login_succeeded(struct store *st, const char *account, const char *addr,
			       int64_t now);

struct store_audit {
	int64_t id;
	int64_t ts;
	int64_t actor_id;         /* 0: system */
	const char *actor;
	const char *via;          /* session | token | system */
	const char *client_addr;
	const char *action;
	const char *object_type;
	const char *object_id;    /* NULL none */
	const char *before;       /* JSON text or NULL */
	const char *after;        /* JSON text or NULL */
};

struct store_audit_filter {
	int64_t from, to;         /* unix ms; 0: open */
	const char *actor;
	const char *action;
	const char *object_type;
	int64_t before_id;        /* cursor: only ids below; 0 none */
	int64_t limit, offset;
};

int store_auth_audit_add(struct store *st, const struct store_audit *a);
/* Newest first. */
int store_auth_audit_list(struct store *st, const struct store_audit_filter *f,
			  int (*cb)(const struct store_audit *a, void *arg), void *arg);

/* ---- message log, read side (store_report.c) ---- */

struct store_log_row {
	int64_t id;
	int64_t ts;
	const char *session_id, *qid, *client_addr, *client_name, *helo, *sender;
	const char *recipients;   /* JSON array text */
	int64_t size;             /* -1 unknown */
	const char *result, *code, *reason, *check_name;
	const char *entry, *auth_user, *tls;  /* NULL when none */
	int scored;                           /* score and score_parts are set */
	double score;
	const char *score_parts;              /* JSON array (docs/score.md) */
};

struct store_log_filter {
	int64_t from, to;         /* unix ms, [from, to); 0: open */
	const char *client;       /* exact */
	const char *sender;       /* whole address, case-insensitive ("" the null sender) */
	const char *rcpt;         /* one of the recipients, case-insensitive */
	const char *result;
	const char *reason;       /* substring, case-insensitive */
	const char *qid;
	const char *check_name;
	const char *auth_user;    /* exact */
	int asc;                  /* 0: newest first */
	int has_cursor;           /* keyset after (cursor_ts, cursor_id) */
	int64_t cursor_ts, cursor_id;
	int64_t limit, offset;
};

int store_report_messages(struct store *st, const struct store_log_filter *f,
			  int (*cb)(const struct store_log_row *r, void *arg), void *arg);
int store_report_message_get(struct store *st, int64_t id,
			     int (*cb)(const struct store_log_row *r, void *arg), void *arg,
			     int *found);
/* Counts per (bucket start, key) over [from, to); by_check: key is check_name. */
int store_report_stats(struct store *st, int64_t from, int64_t to, int64_t bucket_ms,
		       int by_check,
		       int (*cb)(int64_t bucket, const char *key, int64_t n, void *arg),
		       void *arg);
/* Top keys of the message log over [from, to) (0: open), one result or all (NULL). */
enum store_top_by { STORE_TOP_CLIENT, STORE_TOP_SENDER, STORE_TOP_RCPT_DOMAIN,
		    STORE_TOP_CHECK };
int store_report_top(struct store *st, enum store_top_by by, int64_t from, int64_t to,
		     const char *result, int64_t limit,
		     int (*cb)(const char *key, int64_t n, void *arg), void *arg);
/*
 * Likely address harvesting over [from, to) (0: open): per client address,
 * the unknown-recipient attempts (check unknown_recipient), the distinct
 * addresses tried, the attempts deferred once past the threshold (check
 * harvest), first and last seen, and whether a conn_deny entry names the
 * address exactly.  Most attempts first, at most limit clients.
 */
struct store_harvest_row {
	const char *client_addr;
	int64_t unknown, distinct_rcpts, deferred;
	int64_t first_ts, last_ts;
	int denied;
};
int store_report_harvest(struct store *st, int64_t from, int64_t to, int64_t limit,
			 int (*cb)(const struct store_harvest_row *r, void *arg), void *arg);
/* Metrics: message_log rows per result; queue_rcpt rows per state. */
int store_report_log_counts(struct store *st,
			    int (*cb)(const char *key, int64_t n, void *arg), void *arg);
int store_report_queue_counts(struct store *st,
			      int (*cb)(const char *key, int64_t n, void *arg), void *arg);

#endif
