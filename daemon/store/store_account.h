/*
 * store_account: SQL of the account defence (schema/005_account.sql):
 * per-account totals and suspension, per-account rate-limit overrides,
 * alerts.  Used by the account worker thread (daemon/account) and by
 * `moatd accounts`, each on its own connection.  0 or -1 (store_errmsg()).
 */
#ifndef MOAT_STORE_ACCOUNT_H
#define MOAT_STORE_ACCOUNT_H

#include <stddef.h>
#include <stdint.h>

struct store;

/* The connection's last SQLite error message (for logs). */
const char *store_account_errmsg(struct store *st);

#define STORE_ACCOUNT_NLIMITS 6 /* messages minute/hour/day, recipients minute/hour/day */

struct store_account_state {
	const char *user;
	int64_t suspended;       /* unix ms, 0 not suspended */
	const char *reason;      /* NULL when none */
	int64_t score, messages, recipients, refused, updated;
};

struct store_account_alert {
	int64_t id, ts;
	const char *user, *kind, *detail;
	int64_t score, held;
};

/* Add to an account's totals and record its last score (row made if new). */
int store_account_add(struct store *st, const char *user, int64_t messages,
		      int64_t recipients, int64_t refused, int64_t score, int64_t now);
/* Suspend (if not already) with an alert row; *alert_id set. */
int store_account_suspend(struct store *st, const char *user, const char *reason,
			  int64_t score, const char *detail, int64_t now, int64_t *alert_id);
/* Record how many queue recipients the suspension held. */
int store_account_alert_held(struct store *st, int64_t alert_id, int64_t held);
/* Lift a suspension (alert 'lifted'); *changed 0 when it was not suspended. */
int store_account_lift(struct store *st, const char *user, const char *by, int64_t now,
		       int *changed);
/* The same without a transaction of its own: the caller's (the API audits in it). */
int store_account_lift_tx(struct store *st, const char *user, const char *by, int64_t now,
			  int *changed);
/* Up to limit accounts with names after after (NULL: from the first), name order. */
int store_account_states_page(struct store *st, const char *after, int64_t limit,
			      int (*cb)(const struct store_account_state *a, void *arg),
			      void *arg);
/* One account; *found 0 when it has no row. */
int store_account_state_get(struct store *st, const char *user,
			    int (*cb)(const struct store_account_state *a, void *arg),
			    void *arg, int *found);
/* Up to limit alerts with ids below before_id (0: from the newest), newest first. */
int store_account_alerts_page(struct store *st, int64_t before_id, int64_t limit,
			      int (*cb)(const struct store_account_alert *a, void *arg),
			      void *arg);
/* Every account, name order; suspended_only: only those suspended. */
int store_account_states(struct store *st, int suspended_only,
			 int (*cb)(const struct store_account_state *a, void *arg), void *arg);
/* Newest first; user NULL: every account. */
int store_account_alerts(struct store *st, const char *user, int64_t limit,
			 int (*cb)(const struct store_account_alert *a, void *arg), void *arg);
/* Overrides: v[i] -1 = default (NULL). */
int store_account_limits(struct store *st,
			 int (*cb)(const char *user, const int64_t v[STORE_ACCOUNT_NLIMITS],
				   void *arg), void *arg);
int store_account_set_limits(struct store *st, const char *user,
			     const int64_t v[STORE_ACCOUNT_NLIMITS]);

#endif
