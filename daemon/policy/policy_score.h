/*
 * policy_score: the score thresholds per recipient (docs/score.md,
 * "Thresholds") — the snapshot's lookup, and the checked write of a
 * domain's or a user's override that the API and `moatd score thresholds`
 * share.
 *
 * The lookup is pure over the snapshot; the loader and the writes run on
 * the watcher, an HTTP thread or the CLI with that thread's store, never on
 * the mail loop.
 */
#ifndef MOAT_POLICY_SCORE_H
#define MOAT_POLICY_SCORE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

struct policy_snap;
struct store;

struct score_thresholds {
	double tag, quarantine, refuse, greylist;
};

/* Which values an override sets (the same bits as store_score.h's). */
enum {
	SCORE_T_TAG = 1,
	SCORE_T_QUARANTINE = 2,
	SCORE_T_REFUSE = 4,
	SCORE_T_GREYLIST = 8,
	SCORE_T_ALL = 15,
};

/* A domain's or a user's row: the values whose bit is in set; the rest inherit. */
struct score_override {
	unsigned set;
	struct score_thresholds v;
};

/* Bounds of every threshold, as the global settings score_tag... have them. */
#define SCORE_T_MIN (-1000.0)
#define SCORE_T_MAX 1000.0

/*
 * The thresholds of rcpt: each of the four values from the row of the
 * user who owns rcpt (primary address or alias) if it sets it, else from
 * the row of rcpt's domain (exactly that domain, not its parents) if it
 * sets it, else the global setting.  *scope (may be NULL) names the most
 * specific row that gave any value: "user:<name>", "domain:<domain>" or
 * "global"; it lives as long as sn.
 */
void policy_score_thresholds(const struct policy_snap *sn, const char *rcpt,
			     struct score_thresholds *t, const char **scope);

/* Loader (and tests): a row; 0, or -1 with err (bad scope, name or value). */
int policy_snap_add_score(struct policy_snap *sn, const char *scope, const char *name,
			  const struct score_override *o, char *err, size_t errsz);
/* A directory address of user (added after the user's row; no row: nothing). */
void policy_snap_add_score_address(struct policy_snap *sn, const char *address,
				   const char *user);
/* Every row and the addresses of their users, from st (inside the snapshot's read). */
int policy_snap_load_score(struct store *st, struct policy_snap *sn, int *skipped);

/* 0 when scope is "domain" or "user", else -1. */
int policy_score_scope(const char *scope);
/* A value in range with at most 3 decimals: 0, or -1. */
int policy_score_value_ok(double v);

/* Why a write was refused: the caller answers 422 (field) or 404. */
struct policy_score_fail {
	enum { POLICY_SCORE_OK, POLICY_SCORE_INVALID, POLICY_SCORE_NO_SUCH,
	       POLICY_SCORE_STORE } kind;
	char field[16];       /* the field at fault ("name", "tag", ...) */
	char message[300];
};

/*
 * Set the override of (scope, name) to o, inside the caller's transaction
 * (the caller audits and commits).  Checked: scope, name (a domain, lower-
 * cased; or an existing directory user), each value, and tag <= quarantine
 * <= refuse for each pair of which o sets at least one, with the other
 * inherited as the lookup would (for a user: over each domain of the
 * user's addresses).  *before (NULL when there was no row) and *after are
 * the row as JSON, for the audit and the reply; the caller frees them.
 * 0, or -1 with f filled.
 */
int policy_score_set(struct store *st, const char *scope, const char *name,
		     const struct score_override *o, json_t **before, json_t **after,
		     struct policy_score_fail *f);
/* Remove the override; *before as above.  -1 with NO_SUCH when there was none. */
int policy_score_delete(struct store *st, const char *scope, const char *name,
			json_t **before, struct policy_score_fail *f);
/* The global thresholds from the stored settings. */
int policy_score_global(struct store *st, struct score_thresholds *t);
/* {"global": {...}, "items": [row...]} (the caller frees), or NULL on a store error. */
json_t *policy_score_list_json(struct store *st);
/*
 * What the directory user name's primary address gets: {"tag",
 * "quarantine", "refuse", "greylist", "address", "source": {value: scope},
 * "own": the user's row or null}.  NULL with f (NO_SUCH or STORE).
 */
json_t *policy_score_user_json(struct store *st, const char *name, struct policy_score_fail *f);

#endif
