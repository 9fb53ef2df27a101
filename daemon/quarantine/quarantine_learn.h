/*
 * quarantine_learn: spam released from the quarantine is ham the filter got
 * wrong (bayes_learn_on_release, docs/score.md).  quarantine_admin_apply()
 * reads and learns the spam-kind items of a release in memory before their
 * files go, and writes what it learned only once the release succeeded: a
 * refused release teaches nothing.  Errors are logged, never fail the
 * release.  Called on the thread of the store given (HTTP, CLI), never on
 * the mail loop.
 */
#ifndef MOAT_QUARANTINE_LEARN_H
#define MOAT_QUARANTINE_LEARN_H

#include <stdint.h>

struct quarantine_actor;
struct store;
struct store_quarantine_filter;

/* Items learned per release; the rest of a larger release is not. */
#define QUARANTINE_LEARN_MAX 200
/* A quarantined file larger than this is not learned. */
#define QUARANTINE_LEARN_FILE_MAX (64 * 1024 * 1024)

struct quarantine_learn;

/* NULL when there is nothing to learn (the setting off, no spam items). */
struct quarantine_learn *quarantine_learn_begin(struct store *st, const char *data_dir,
						const struct store_quarantine_filter *f,
						const struct quarantine_actor *actor);
/* Writes what was learned when released, and frees rl (NULL ok). */
void quarantine_learn_end(struct quarantine_learn *rl, int released);

#endif
