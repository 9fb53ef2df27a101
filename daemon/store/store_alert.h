/*
 * store_alert: SQL of the account alerts and of what the administrator
 * sees and does about an account (schema/005 and 019): the accounts with
 * their signals, trust and volume; alerts by user, kind and id; the
 * notifier's pending alerts; suspend now, lift and trust; who the
 * administrators are.  store_account.c keeps the engine's own SQL (totals,
 * automatic suspensions, limits).
 *
 * Called by the alert notifier's worker (daemon/alert), by HTTP threads
 * (daemon/http/http_accounts.c) and by `moatd accounts`, each on its own
 * connection.  The *_tx functions run inside the caller's transaction.
 * 0 or -1; strings handed to callbacks live only for the call.
 */
#ifndef MOAT_STORE_ALERT_H
#define MOAT_STORE_ALERT_H

#include <stddef.h>
#include <stdint.h>

struct store;

struct store_alert_account {
	const char *user;
	int64_t suspended;          /* unix ms, 0 not suspended */
	const char *reason;         /* NULL: none */
	int64_t score, messages, recipients, refused, updated;
	int64_t trusted_until;      /* unix ms, 0 none */
	const char *signals;        /* JSON array text, NULL: none */
	int64_t volume_day;
	const char *last_client;    /* NULL: none */
};

struct store_alert_row {
	int64_t id, ts;
	const char *user, *kind;
	int64_t score;
	const char *detail;
	int64_t held;
	const char *signals, *clients, *samples; /* JSON text, NULL: none */
	const char *actor;
	const char *action;         /* NULL: none */
	int64_t notified;           /* 0 pending, -1 nothing to send, else unix ms */
};

enum store_alert_sort { STORE_ALERT_BY_NAME, STORE_ALERT_BY_SCORE, STORE_ALERT_BY_VOLUME };

struct store_alert_account_filter {
	enum store_alert_sort sort;
	int desc;
	int suspended;              /* -1 any, 0 not suspended, 1 suspended */
	int trusted;                /* -1 any, 0 not trusted at now, 1 trusted at now */
	const char *q;              /* substring of the name (case-insensitive); NULL any */
	int64_t now;
};

typedef int (*store_alert_account_fn)(const struct store_alert_account *a, void *arg);
typedef int (*store_alert_row_fn)(const struct store_alert_row *a, void *arg);

/* Accounts matching f in its order (then by name), rows offset.. offset+limit. */
int store_alert_accounts(struct store *st, const struct store_alert_account_filter *f,
			 int64_t offset, int64_t limit, store_alert_account_fn cb, void *arg);
/* One account's state row; *found 0 when none. */
int store_alert_account_get(struct store *st, const char *user, store_alert_account_fn cb,
			    void *arg, int *found);
/* *known 1 when user has a state row or is a directory user. */
int store_alert_user_known(struct store *st, const char *user, int *known);
/* Failed logins (SMTP AUTH and console) of user since: count, newest, its address. */
int store_alert_auth_failures(struct store *st, const char *user, int64_t since,
			      int64_t *count, int64_t *last_at, char *last_addr,
			      size_t last_addr_sz);
/* The account's client networks, latest first, at most limit. */
int store_alert_networks(struct store *st, const char *user, int64_t limit,
			 int (*cb)(const char *net, int64_t first_seen, int64_t last_seen,
				   int64_t messages, void *arg), void *arg);
/* Queue recipients in state held whose message was submitted by user. */
int store_alert_held_count(struct store *st, const char *user, int64_t *n);

struct store_alert_filter {
	const char *user;           /* NULL any */
	const char *kind;           /* NULL any */
	int64_t before_id;          /* cursor: ids below it; 0 from the newest */
};
/* Alerts matching f, newest first, at most limit. */
int store_alert_list(struct store *st, const struct store_alert_filter *f, int64_t limit,
		     store_alert_row_fn cb, void *arg);
int store_alert_get(struct store *st, int64_t id, store_alert_row_fn cb, void *arg,
		    int *found);
/* Alerts still to notify (notified = 0) recorded at or before ts_max, oldest first. */
int store_alert_pending(struct store *st, int64_t ts_max, int64_t limit,
			store_alert_row_fn cb, void *arg);
/* notified = value (unix ms sent, or -1 nothing to send). */
int store_alert_mark(struct store *st, int64_t id, int64_t value);
/* samples (JSON text) of an alert, when it has none yet. */
int store_alert_set_samples(struct store *st, int64_t id, const char *samples);
/* held of an alert. */
int store_alert_set_held(struct store *st, int64_t id, int64_t held);

/* A new alert row (JSON fields: text or NULL); *id its id. */
struct store_alert_new {
	const char *user, *kind;
	int64_t ts, score;
	const char *detail;
	int64_t held;
	const char *signals, *clients, *samples, *actor, *action;
	int64_t notified;
};
int store_alert_insert(struct store *st, const struct store_alert_new *a, int64_t *id);

/* Suspend user now with reason unless suspended; *changed 0 when it was. */
int store_alert_suspend_tx(struct store *st, const char *user, const char *reason,
			   int64_t now, int *changed);
/* End user's suspension; *changed 0 when it was not suspended. */
int store_alert_lift_tx(struct store *st, const char *user, int64_t now, int *changed);
/* trusted_until = until (0 clears); the row is made when new. */
int store_alert_trust_tx(struct store *st, const char *user, int64_t until, int64_t now);

/* Primary addresses of enabled administrators, by name. */
int store_alert_admin_addresses(struct store *st,
				int (*cb)(const char *address, void *arg), void *arg);

#endif
