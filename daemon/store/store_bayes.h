/*
 * store_bayes: SQL of the statistical filter's token store (schema/020):
 * tokens per model (uid 0 global, else a directory user's id), messages
 * learned per class, learned message digests and the hash key.
 *
 * Called by daemon/score/ (learning, loading a model for classification,
 * expiry) and, for the learning events of a cluster, by
 * daemon/cluster/cluster_pg.c, on whatever thread owns the store; never on
 * the mail loop.  Writes never commit: the caller wraps a batch in one
 * transaction (store_begin / store_commit).  Returns 0 or -1.
 */
#ifndef MOAT_STORE_BAYES_H
#define MOAT_STORE_BAYES_H

#include <stddef.h>
#include <stdint.h>

struct store;

/* The hash key (16 bytes); *found 0 when none was made yet. */
int store_bayes_key_get(struct store *st, uint8_t key[16], int *found);
/* Keep key unless one exists already (then key is left as it was stored:
 * read it back with store_bayes_key_get). */
int store_bayes_key_set(struct store *st, const uint8_t key[16]);

/* Messages learned per class of model uid (0 and 0 when none). */
int store_bayes_model_get(struct store *st, int64_t uid, int64_t *spam_msgs,
			  int64_t *ham_msgs);
/* Add dspam / dham (may be negative; counts never go below 0). */
int store_bayes_model_add(struct store *st, int64_t uid, int64_t dspam, int64_t dham,
			  int64_t now_ms);

/* Add to one token's counts (never below 0) and set its last_seen to day
 * when a count grows. */
int store_bayes_token_add(struct store *st, int64_t uid, uint64_t hash, int64_t dspam,
			  int64_t dham, int64_t day);
/* One token's counts; 0 and 0 when unknown. */
int store_bayes_token_get(struct store *st, int64_t uid, uint64_t hash, int64_t *spam,
			  int64_t *ham);

typedef int (*store_bayes_token_cb)(uint64_t hash, int64_t spam, int64_t ham, void *arg);
/* Every token of model uid; cb returns non-zero to stop. */
int store_bayes_tokens_foreach(struct store *st, int64_t uid, store_bayes_token_cb cb,
			       void *arg);
/* Tokens of model uid. */
int store_bayes_token_count(struct store *st, int64_t uid, int64_t *n);

/* How a message (SHA-256 digest) was learned into model uid: 's', 'h', or 0
 * when it was not. */
int store_bayes_learned_get(struct store *st, int64_t uid, const uint8_t digest[32],
			    char *cls);
int store_bayes_learned_set(struct store *st, int64_t uid, const uint8_t digest[32],
			    char cls, int64_t now_ms);
int store_bayes_learned_del(struct store *st, int64_t uid, const uint8_t digest[32]);

/*
 * Expiry of model uid: drop tokens last learned before day before_day whose
 * spam + ham is at most max_count, and tokens whose counts are both 0.
 * *removed is how many went.
 */
int store_bayes_expire(struct store *st, int64_t uid, int64_t before_day, int64_t max_count,
		       int64_t *removed);

/*
 * The bayes generation: moved by every learning flush and every expiry
 * that removed tokens, in the same transaction, so that a reader that sees
 * a generation also sees the tokens it names (0 when nothing was learned).
 */
int store_bayes_generation(struct store *st, int64_t *gen);
int store_bayes_generation_bump(struct store *st);

/* Every model (uid, messages learned per class), uid 0 first. */
typedef int (*store_bayes_model_cb)(int64_t uid, int64_t spam_msgs, int64_t ham_msgs,
				    void *arg);
int store_bayes_models_each(struct store *st, store_bayes_model_cb cb, void *arg);
/* The addresses (primary and aliases) of directory users with a model of
 * their own: cb(address, user id). */
int store_bayes_user_addresses(struct store *st,
			       int (*cb)(const char *address, int64_t uid, void *arg),
			       void *arg);
/* Statistics of model uid: tokens, and the learned digests kept. */
int store_bayes_stats(struct store *st, int64_t uid, int64_t *tokens, int64_t *learned);
/* Bytes the database file takes (page_count * page_size). */
int store_bayes_db_bytes(struct store *st, int64_t *bytes);

/* ---- learning shared in a cluster (schema/027, docs/cluster.md) ---------- */

/* A message's distinct tokens: BAYES_MAX_FEATURES (score_bayes.h) at most,
 * so an event row never holds more than 8 * this octets of tokens. */
#define STORE_BAYES_EVENT_MAX_TOKENS 20000
/* Events older than this are pruned here and in PostgreSQL: a node offline
 * for longer misses the learning done meanwhile. */
#define STORE_BAYES_EVENT_RETENTION_DAYS 30

/* Pure: n hashes into out (n * 8 octets, each little-endian). */
void store_bayes_tokens_encode(const uint64_t *h, size_t n, uint8_t *out);
/* Pure: an event's token BLOB into out (room for max).  -1 when len is not
 * a multiple of 8 or holds more than max hashes. */
int store_bayes_tokens_decode(const uint8_t *blob, size_t len, uint64_t *out, size_t max,
			      size_t *n);

/* This node's number while it is in a cluster with PostgreSQL
 * (cluster_state.node), else 0: then no event is written. */
int store_bayes_event_node(struct store *st, int64_t *node);

/* One learning of this node (cls 's', 'h', or 0: forgotten), inside the
 * caller's transaction; tokens as store_bayes_tokens_encode made them. */
int store_bayes_event_add(struct store *st, int64_t uid, char cls, const uint8_t digest[32],
			  const uint8_t key[16], const uint8_t *tokens, size_t len,
			  int64_t now_ms);

enum store_bayes_replay {
	STORE_BAYES_REPLAY_LEARNED,
	STORE_BAYES_REPLAY_MOVED,
	STORE_BAYES_REPLAY_FORGOTTEN,
	STORE_BAYES_REPLAY_ALREADY,      /* this store has it so already: nothing done */
	STORE_BAYES_REPLAY_OWN,          /* learned here: nothing done */
	STORE_BAYES_REPLAY_KEY_MISMATCH, /* this store learned under another hash key */
};

/*
 * Repeat another node's learning from its event row (body: the row as JSON,
 * BLOBs in hex, as the cluster moves it), inside the caller's transaction:
 * the same token, model and digest changes bayes_learn() and its flush make,
 * and the bayes generation moves.  A store that learned nothing yet takes
 * the event's hash key.  -1 (err) on a malformed row.
 */
int store_bayes_event_apply(struct store *st, const char *body, int64_t self_node,
			    enum store_bayes_replay *res, char *err, size_t errsz);

/* Forget event rows created before before_ms; *removed is how many. */
int store_bayes_event_prune(struct store *st, int64_t before_ms, int64_t *removed);

/* The connection's last error, for messages. */
const char *store_bayes_errmsg(struct store *st);

#endif
