/*
 * store: every SQL statement of moatd lives behind these functions.
 *
 * One struct store is one SQLite connection and belongs to one thread; open
 * one per thread.  Statements are prepared on first use and kept for the
 * life of the connection.  Functions return 0 or -1 and fill err where they
 * take one; they never log — the caller decides how bad it is.
 */
#ifndef MOAT_STORE_H
#define MOAT_STORE_H

#include <stddef.h>
#include <stdint.h>

struct store;

#define STORE_MIGRATE 0x1 /* apply migrations (the main thread, once, at start) */

/*
 * Open the database at path.  With STORE_MIGRATE the file is created when
 * missing and brought to the newest schema.  A file that is not a database,
 * or whose schema is newer than this binary knows, is an error and the file
 * is left untouched.
 */
struct store *store_open(const char *path, int flags, char *err, size_t errsz);
void store_close(struct store *st);

/* The newest schema version built into this binary. */
int store_schema_version(void);

int store_begin(struct store *st);
int store_commit(struct store *st);
void store_rollback(struct store *st);

/* A cheap query proving the connection works (health checks). */
int store_ping(struct store *st, char *err, size_t errsz);

struct store_queue_msg {
	const char *qid;
	const char *sender;
	const char *client_addr;
	const char *client_name;
	const char *helo;
	const char *auth_user; /* NULL when not authenticated */
	int64_t size;
	int64_t received_at;
	int smtputf8;
	int body_8bit;
	const char *const *rcpts;
	size_t nrcpts;
};

/* Insert a message and its recipients (state 'queued'); inside a transaction. */
int store_queue_insert(struct store *st, const struct store_queue_msg *m,
		       char *err, size_t errsz);

/* Does a queue_message row exist for qid? */
int store_queue_exists(struct store *st, const char *qid, int *exists);

/* Call cb for every queued message id, in id order; cb returns non-zero to stop. */
int store_queue_foreach(struct store *st, int (*cb)(const char *qid, void *arg),
			void *arg);

/* Mark every unfinished recipient of qid dead with reason (file lost). */
int store_queue_mark_lost(struct store *st, const char *qid, const char *reason);

struct store_log_entry {
	int64_t ts;
	const char *session_id;
	const char *qid;            /* NULL when none */
	const char *client_addr;
	const char *client_name;
	const char *helo;
	const char *sender;         /* NULL before MAIL */
	const char *recipients_json;
	int64_t size;               /* -1: unknown */
	const char *result;         /* accepted | refused | deferred | aborted */
	const char *code;
	const char *reason;
	const char *check_name;     /* NULL when no check fired */
};

int store_log_insert(struct store *st, const struct store_log_entry *e,
		     char *err, size_t errsz);

#endif
