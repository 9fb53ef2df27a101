/*
 * queue_admin: release, retry, hold and delete queued mail — one message
 * (the filter {qid}) or every recipient matching a filter.  The one home
 * of these operations: the API (http_queue.c) and `moatd queue`
 * (cli_queue.c) parse their input, call here and format the answer.
 *
 * Each call is one SQLite transaction: the rows change and an audit row
 * ("queue.<op>", object "queue", before = the filter, after = the counts)
 * is written with it, or nothing is.  A delete then removes the spool
 * files of the messages it emptied (after the commit: a crash in between
 * leaves an orphan file that start-up reconciliation removes).  The queue
 * runner picks changed rows up on its next poll.  Called on HTTP threads
 * and in the CLI process, each with its own store connection.
 */
#ifndef MOAT_QUEUE_ADMIN_H
#define MOAT_QUEUE_ADMIN_H

#include <stddef.h>
#include <stdint.h>

struct store;
struct store_queue_filter;

enum queue_admin_op { QUEUE_ADMIN_RELEASE, QUEUE_ADMIN_RETRY, QUEUE_ADMIN_HOLD,
		      QUEUE_ADMIN_DELETE };

/* Who acts, for the audit row. */
struct queue_admin_actor {
	int64_t user_id;           /* 0: no API user (the CLI) */
	const char *name;          /* the user's name, or "cli" */
	const char *via;           /* session | token | system (the CLI) */
	const char *client_addr;   /* NULL: local */
};

struct queue_admin_result {
	int recipients;            /* rows changed or removed */
	int messages_removed;      /* delete: messages left with no recipient */
};

/* "release", "retry", "hold", "delete"; NULL for an unknown op. */
const char *queue_admin_op_name(enum queue_admin_op op);

/*
 * Apply op to every recipient matching f (the caller refuses an empty
 * filter unless the user asked for everything).  hold_reason: the reason
 * a hold sets (NULL: the default); for a hold, f->reason does not filter.
 * 0, or -1 with err filled and nothing changed.
 */
int queue_admin_apply(struct store *st, const char *data_dir, enum queue_admin_op op,
		      const struct store_queue_filter *f, const char *hold_reason,
		      const struct queue_admin_actor *actor, struct queue_admin_result *res,
		      char *err, size_t errsz);

#endif
