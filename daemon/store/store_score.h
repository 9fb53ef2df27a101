/*
 * store_score: SQL of the score thresholds per domain and per directory
 * user (schema/023, docs/score.md "Thresholds").
 *
 * Used by the policy module's threshold operations (for the API and
 * `moatd score`) and by the policy watcher when it builds a snapshot;
 * never on the mail loop.  Writes never commit: the caller wraps the change
 * and its audit row in one transaction.  Every write bumps the policy
 * generation through triggers in the schema.  Returns 0 or -1.  Strings
 * passed to callbacks live only during the call; a callback returns
 * non-zero to stop.
 */
#ifndef MOAT_STORE_SCORE_H
#define MOAT_STORE_SCORE_H

#include <stddef.h>
#include <stdint.h>

struct store;

/* Which of the four values a row sets; the others are NULL (inherit). */
enum {
	STORE_SCORE_TAG = 1,
	STORE_SCORE_QUARANTINE = 2,
	STORE_SCORE_REFUSE = 4,
	STORE_SCORE_GREYLIST = 8,
};

struct store_score_row {
	int64_t id;
	const char *scope;    /* domain | user */
	const char *name;     /* a lower-case domain, or a directory user's name */
	unsigned set;         /* STORE_SCORE_* of the values that are not NULL */
	double tag, quarantine, refuse, greylist;
	int64_t updated;      /* unix ms */
};

typedef int (*store_score_cb)(const struct store_score_row *r, void *arg);

/* Every row, domains first, each by name. */
int store_score_list(struct store *st, store_score_cb cb, void *arg);
/* The row of (scope, name); *found 0 when there is none. */
int store_score_get(struct store *st, const char *scope, const char *name, store_score_cb cb,
		    void *arg, int *found);
/* Insert or replace the values of (r->scope, r->name); *id receives the row's id. */
int store_score_put(struct store *st, const struct store_score_row *r, int64_t *id);
/* *removed 0 when there was no such row. */
int store_score_delete(struct store *st, const char *scope, const char *name, int *removed);
/*
 * For the snapshot: the directory addresses (primary and alias) of every
 * user who has a row, with the user's name.
 */
int store_score_user_addresses(struct store *st,
			       int (*cb)(const char *address, const char *user, void *arg),
			       void *arg);
/* The addresses of the directory user named name, primary first; *found 0: no such user. */
int store_score_addresses_of(struct store *st, const char *name,
			     int (*cb)(const char *address, void *arg), void *arg, int *found);
/* The connection's last error, for messages. */
const char *store_score_errmsg(struct store *st);

#endif
