/*
 * store_digest: SQL of quarantine digests and their links (schema/016) —
 * who is due a digest, the items a digest lists, the per-user interval,
 * the administrator's template and the used link nonces.
 *
 * Called by the digest job (its own worker thread and connection) and by
 * the HTTP handlers of daemon/http/http_digest.c and http_link.c; never on
 * the mail event loop.  Writers wrap calls in store_begin()/store_commit().
 * Strings handed to callbacks live only during the call.
 */
#ifndef MOAT_STORE_DIGEST_H
#define MOAT_STORE_DIGEST_H

#include <stddef.h>
#include <stdint.h>

struct store;

struct store_digest_user {
	int64_t id;
	char name[65];
	char interval[8];     /* none | hourly | daily | weekly */
	int64_t last_at;      /* unix ms; 0: never */
	char address[330];    /* the primary address ("" when the user has none) */
	int disabled;
};

/*
 * Enabled users with digest interval iv whose last digest is older than
 * before (never counts as 0), in id order, at most limit: ids[] filled,
 * *n how many.
 */
int store_digest_due(struct store *st, const char *iv, int64_t before, int64_t *ids,
		     size_t limit, size_t *n);

/* One user by id (name NULL) or by name; *found 0 when none. */
int store_digest_user_get(struct store *st, int64_t id, const char *name,
			  struct store_digest_user *u, int *found);

struct store_digest_item {
	int64_t id;
	const char *qid;
	const char *rcpt;
	const char *kind;
	const char *reason;
	const char *sender;
	const char *subject;
	int64_t created_at;   /* unix ms */
	int64_t expires_at;
};

/*
 * The quarantine items a user sees (rcpt one of their addresses or the
 * address of a group they manage) created in (after, until] and not yet
 * expired at until, newest first, at most limit to cb; *total counts
 * every one.  cb non-zero stops.
 */
int store_digest_items(struct store *st, int64_t user_id, int64_t after, int64_t until,
		       int64_t limit, int (*cb)(const struct store_digest_item *it, void *arg),
		       void *arg, int64_t *total);

/* What a link's page shows of one item. */
struct store_digest_item_info {
	char qid[40];
	char kind[16];
	char sender[330];
	char subject[400];   /* cut when longer */
};
/* One item by id when its recipient is rcpt; *found 0 when none. */
int store_digest_item_get(struct store *st, int64_t id, const char *rcpt,
			  struct store_digest_item_info *it, int *found);
/* Has nonce been used?  *used 1 when it has. */
int store_digest_nonce_seen(struct store *st, const char *nonce, int *used);

/* digest_last_at of user = at. */
int store_digest_mark(struct store *st, int64_t user_id, int64_t at);
/* digest_interval of user = iv (checked by the caller); *found 0 when no such user. */
int store_digest_interval_set(struct store *st, int64_t user_id, const char *iv, int *found);

/* Record nonce as used; *used 1 (nothing written) when it already was. */
int store_digest_nonce_use(struct store *st, const char *nonce, int64_t now,
			   int64_t expires_at, int *used);
/* Forget nonce (the action it guarded failed: the link may be tried again). */
int store_digest_nonce_forget(struct store *st, const char *nonce);
/* Remove nonces of links expired before now, at most limit; the count or -1. */
int store_digest_nonce_purge(struct store *st, int64_t now, int limit);

/*
 * The stored template, each part malloc'ed into *subject, *text, *html
 * (the caller frees them); *found 0 (nothing allocated) when none is stored.
 */
int store_digest_template_get(struct store *st, char **subject, char **text, char **html,
			      int *found);
int store_digest_template_set(struct store *st, const char *subject, const char *text,
			      const char *html, int64_t now);
/* Back to the built-in default. */
int store_digest_template_reset(struct store *st);

/*
 * Where <Postmaster> goes, as the policy resolves it: the postmaster_address
 * setting, else postmaster@ the first local_domain entry; "" when neither.
 */
int store_digest_postmaster(struct store *st, char *out, size_t outsz);


const char *store_digest_errmsg(struct store *st);

#endif
