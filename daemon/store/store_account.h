/*
 * store_account: SQL of the account defence (schema/005_account.sql,
 * 019_account_defence.sql): per-account totals, signals and suspension,
 * trust, known client networks, the learned hourly baseline, per-account
 * rate-limit overrides, alerts.  Used by the account worker thread
 * (daemon/account) and by `moatd accounts`, each on its own connection.
 * What the API and the CLI read and change is store_alert.h's.  0 or -1
 * (store_errmsg()).
 */
#ifndef MOAT_STORE_ACCOUNT_H
#define MOAT_STORE_ACCOUNT_H

#include <stddef.h>
#include <stdint.h>

struct store;

/* The connection's last SQLite error message (for logs). */
const char *store_account_errmsg(struct store *st);

/* messages second/minute/hour/day, then recipients second/minute/hour/day */
#define STORE_ACCOUNT_NLIMITS 8

/* Overrides: v[i] -1 = default (NULL). */
int store_account_limits(struct store *st,
			 int (*cb)(const char *user, const int64_t v[STORE_ACCOUNT_NLIMITS],
				   void *arg), void *arg);
int store_account_set_limits(struct store *st, const char *user,
			     const int64_t v[STORE_ACCOUNT_NLIMITS]);

/* ---- the account engine's worker (daemon/account/account_engine.c) ---- */

/* One flush of an account's counters and last score. */
struct store_account_flush {
	const char *user;
	int64_t messages, recipients, refused; /* added to the totals */
	int64_t score;
	const char *signals;     /* JSON array; NULL: kept */
	int64_t volume_day;      /* messages accepted in the last 24 h */
	const char *last_client; /* NULL: kept */
	int64_t bulk_seen;       /* unix ms first seen sending bulk; 0: kept */
	int64_t now;
};
int store_account_flush(struct store *st, const struct store_account_flush *f);
/* Messages from a client network (first_seen kept as the earliest). */
int store_account_network_add(struct store *st, const char *user, const char *net,
			      int64_t first_seen, int64_t last_seen, int64_t messages);
/* One week's observation of hour how (0..167): rate EWMA with alpha, weeks + 1. */
int store_account_baseline_observe(struct store *st, const char *user, int how,
				   int64_t count, double alpha, int64_t now);
/* What the engine loads when it first sees an account: up to max_nets
 * networks (most recently used first), the baseline, bulk_seen (0 none). */
int store_account_load(struct store *st, const char *user, int64_t max_nets,
		       int (*net_cb)(const char *net, int64_t first_seen, int64_t last_seen,
				     int64_t messages, void *arg),
		       int (*base_cb)(int how, double rate, int64_t weeks, void *arg),
		       void *arg, int64_t *bulk_seen);
/* Accounts suspended or trusted (trusted_until > now). */
int store_account_flags(struct store *st, int64_t now,
			int (*cb)(const char *user, int64_t suspended, int64_t trusted_until,
				  void *arg), void *arg);
/* An automatic suspension: the state and its alert (notified 0), in one transaction. */
struct store_account_suspension {
	const char *user, *reason, *detail;
	int64_t score, held, now;
	const char *signals, *clients, *samples; /* JSON */
};
/*
 * The suspension in account_state and its alert row (notified 0), inside
 * the caller's transaction (the engine holds the account's mail in the
 * same one, so that no one sees held mail of an account not suspended).
 */
int store_account_suspend_alert(struct store *st, const struct store_account_suspension *s,
				int64_t *alert_id);
/* Up to limit messages of user with held recipients, newest first. */
int store_account_held_samples(struct store *st, const char *user, int64_t limit,
			       int (*cb)(const char *qid, const char *sender, const char *rcpt,
					 int64_t size, void *arg), void *arg);

#endif
