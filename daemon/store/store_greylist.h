/*
 * store_greylist: SQL of greylisting (schema/021) — the triplets and the
 * client networks counted towards auto-allow.
 *
 * The check (daemon/score/greylist.c) calls the row functions on a content
 * worker inside its own short transaction; the HTTP API calls the list and
 * delete functions on its threads.  Nothing here commits.  Times are unix
 * ms.  Returns 0 or -1.  Strings passed to callbacks live only during the
 * call; a callback returns non-zero to stop.
 */
#ifndef MOAT_STORE_GREYLIST_H
#define MOAT_STORE_GREYLIST_H

#include <stddef.h>
#include <stdint.h>

struct store;

struct store_greylist_row {
	int64_t id;
	const char *network;
	const char *sender;      /* lower-cased address, "<>", or an SPF-passed domain */
	const char *rcpt;
	int64_t first_seen;
	int64_t last_seen;
	int64_t attempts;
	int64_t passed_at;       /* 0: waiting */
	int64_t passes;
	int64_t expires;
};

struct store_greylist_net {
	int64_t id;
	const char *network;
	int64_t passes;
	int64_t first_seen;
	int64_t last_seen;
	int64_t expires;
};

typedef int (*store_greylist_row_fn)(const struct store_greylist_row *r, void *arg);
typedef int (*store_greylist_net_fn)(const struct store_greylist_net *n, void *arg);

/* ---- the check ---- */

/* The triplet (exact keys); *found 0 when there is none (expired rows included). */
int store_greylist_get(struct store *st, const char *network, const char *sender,
		       const char *rcpt, store_greylist_row_fn cb, void *arg, int *found);
/* Insert the triplet waiting from now, or start an existing one over. */
int store_greylist_start(struct store *st, const char *network, const char *sender,
			 const char *rcpt, int64_t now, int64_t expires);
/* A deferred retry of a waiting triplet: one more attempt. */
int store_greylist_retry(struct store *st, int64_t id, int64_t now);
/* A waiting triplet passes now (first pass), or a passed one is used again. */
int store_greylist_pass(struct store *st, int64_t id, int64_t now, int64_t expires);
int store_greylist_use(struct store *st, int64_t id, int64_t now, int64_t expires);

/* The network's row; *found 0 when there is none. */
int store_greylist_net_get(struct store *st, const char *network, store_greylist_net_fn cb,
			   void *arg, int *found);
/* One more passed triplet for network (the row is made on the first). */
int store_greylist_net_pass(struct store *st, const char *network, int64_t now,
			    int64_t expires);
/* An auto-allowed network sent again. */
int store_greylist_net_use(struct store *st, int64_t id, int64_t now, int64_t expires);

/* Delete at most limit expired triplets and networks; *n rows deleted. */
int store_greylist_purge(struct store *st, int64_t now, int64_t limit, int64_t *n);

/* ---- the API ---- */

enum store_greylist_state { STORE_GL_ANY, STORE_GL_WAITING, STORE_GL_PASSED };

/* Every field NULL / 0 matches everything; fields AND; exact matches. */
struct store_greylist_filter {
	const char *network;
	const char *sender;
	const char *rcpt;
	enum store_greylist_state state;
	int64_t now;             /* rows with expires <= now are left out */
	int64_t limit;           /* list: at most this many; 0 no limit */
	int64_t offset;
};

/* Triplets matching f, newest last_seen first; *total: all that match f. */
int store_greylist_list(struct store *st, const struct store_greylist_filter *f,
			store_greylist_row_fn cb, void *arg, int64_t *total);
/* Triplet id; *found 0 when there is none. */
int store_greylist_row(struct store *st, int64_t id, store_greylist_row_fn cb, void *arg,
		       int *found);
int store_greylist_delete(struct store *st, int64_t id, int *deleted);
int store_greylist_delete_all(struct store *st, int64_t *n);

/* Networks with at least min_passes passes and not expired, most passes first. */
int store_greylist_nets(struct store *st, int64_t min_passes, int64_t now, int64_t limit,
			int64_t offset, store_greylist_net_fn cb, void *arg, int64_t *total);
int store_greylist_net_row(struct store *st, int64_t id, store_greylist_net_fn cb, void *arg,
			   int *found);
int store_greylist_net_delete(struct store *st, int64_t id, int *deleted);

#endif
