/*
 * score_models: the statistical filter's models as the mail side uses
 * them — the global model and each directory user's own model, loaded from
 * the token store into memory and shared, read-only, by every snapshot and
 * content worker that holds them — and learning from one message on behalf
 * of the API or the content stage.
 *
 * A struct score_models belongs to one policy snapshot (it also maps the
 * addresses of users with a model of their own to their ids); the token
 * data behind it is reference-counted and shared between snapshots for as
 * long as the store's bayes generation does not move, so that a policy
 * change does not load the tokens again.  Loading runs off the loop (the
 * policy watcher, start-up); freeing is safe from any thread.
 *
 * docs/score.md, "Learning" and "Models on the mail side".
 */
#ifndef MOAT_SCORE_MODELS_H
#define MOAT_SCORE_MODELS_H

#include <stddef.h>
#include <stdint.h>

#include "score_bayes.h"

struct policy_snap;
struct store;
struct score_models;

/*
 * The models of st as they are now: the global model and every user model
 * with at least min_learned messages of each class.  Inside the caller's
 * read transaction (the snapshot loader's), so that the generation matches
 * the tokens read.  Token data already loaded for the same generation and
 * min_learned is shared, not read again.  NULL with err.
 */
struct score_models *score_models_load(struct store *st, int64_t min_learned, char *err,
				       size_t errsz);
void score_models_free(struct score_models *m);
/* The bayes generation the models were loaded at. */
int64_t score_models_generation(const struct score_models *m);
/* Drop the shared token data kept for the next load (shut-down). */
void score_models_cache_drop(void);

/* uid 0 or a user without enough training: the global model; NULL: no
 * usable model (the global one has fewer than min_learned of a class). */
const struct bayes_model *score_models_for(const struct score_models *m, int64_t uid,
					   int64_t min_learned, int64_t *used_uid);
/* The directory user whose address rcpt is, when that user has a model of
 * their own: 0 with *uid, else -1 (and *uid 0). */
int score_models_user_of(const struct policy_snap *sn, const char *rcpt, int64_t *uid);
/* The hash key the tokens were made with (16 bytes; zeros for NULL). */
const uint8_t *score_models_key(const struct score_models *m);

/*
 * Learn one message (raw octets) as cls 's' or 'h', or forget it (cls 0),
 * into model uid through st, and write it at once (one transaction that
 * also moves the bayes generation).  Off the loop, on the caller's store
 * connection.  0 with *outcome, -1 with err.
 */
int score_learn(struct store *st, const char *msg, size_t len, char cls, int64_t uid,
		enum bayes_outcome *outcome, char *err, size_t errsz);
/* The content stage's auto-learning: score_learn without the outcome. */
int score_autolearn(struct store *st, const char *msg, size_t len, char cls, int64_t uid,
		    char *err, size_t errsz);
/* "learned", "already", "moved", "forgotten", "not learned". */
const char *score_learn_outcome_name(enum bayes_outcome o);

#endif
