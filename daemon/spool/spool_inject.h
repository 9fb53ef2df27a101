/*
 * spool_inject: messages moatd writes itself (quarantine digests, account
 * alerts) into its own queue, delivered by the queue runner like any
 * message.  The one home of that path, in the spool writer's order:
 *
 *   write spool/incoming/d<hex>  ->  rename to spool/queue/<qid>
 *   (RENAME_NOREPLACE)  ->  make the files and directories durable  ->
 *   commit the queue rows (store_queue_insert)
 *
 * so that start-up reconciliation treats a crash as for received mail: a
 * file without rows was never queued and is removed.  The steps are open
 * for a caller that batches (the digest job publishes many messages, syncs
 * once and commits their rows with its own bookkeeping in one transaction);
 * spool_inject() is the whole path for one message.  Worker threads only
 * (file system and SQLite): never the event loop.
 */
#ifndef MOAT_SPOOL_INJECT_H
#define MOAT_SPOOL_INJECT_H

#include <stddef.h>
#include <stdint.h>

#include "spool.h"

struct store;

struct spool_inject_dirs {
	int incoming;
	int queue;
	int per_file_sync;          /* fdatasync each file and fsync the directories */
};

/* One message on its way; zero it before spool_inject_write(). */
struct spool_inject_msg {
	char qid[SPOOL_QID_LEN + 1];
	char tmp[24];               /* its name in spool/incoming */
	int64_t size;
	int published;              /* renamed into spool/queue */
};

/* Open <data_dir>/spool/{incoming,queue}; sync "file" or "filesystem".  0 or -1. */
int spool_inject_open(const char *data_dir, const char *sync, struct spool_inject_dirs *d,
		      char *err, size_t errsz);
void spool_inject_close(struct spool_inject_dirs *d);
/* The bytes into spool/incoming under a temporary name.  0, or -1 and nothing left. */
int spool_inject_write(const struct spool_inject_dirs *d, const char *data, size_t len,
		       struct spool_inject_msg *m, char *err, size_t errsz);
/* Rename m into spool/queue under a new queue id (m->qid).  0, or -1. */
int spool_inject_publish(const struct spool_inject_dirs *d, struct spool_inject_msg *m,
			 char *err, size_t errsz);
/* Make what was published durable (one syncfs, or the directories' fsyncs). */
int spool_inject_sync(const struct spool_inject_dirs *d, char *err, size_t errsz);
/* Remove what m[0..n) left on disk (incoming or queue): a failed batch. */
void spool_inject_undo(const struct spool_inject_dirs *d, struct spool_inject_msg *m,
		       size_t n);
/*
 * m's queue rows, inside the caller's transaction: envelope sender ("" is
 * the null sender), recipients, client 127.0.0.1 / localhost, helo.
 */
int spool_inject_rows(struct store *st, const struct spool_inject_msg *m, const char *helo,
		      const char *sender, const char *const *rcpts, size_t nrcpts,
		      int64_t now, char *err, size_t errsz);
/*
 * The whole path for one message, with its own transaction; in_tx (NULL:
 * none) runs inside it after the queue rows, so that the caller's own
 * bookkeeping (a digest's last_at, an alert's notified) commits with them
 * or not at all.  On success qid holds the queue id; on failure nothing
 * stays queued.
 */
int spool_inject(struct store *st, const char *data_dir, const char *sync, const char *helo,
		 const char *data, size_t len, const char *sender, const char *const *rcpts,
		 size_t nrcpts, int (*in_tx)(struct store *st, const char *qid, void *arg),
		 void *arg, char qid[SPOOL_QID_LEN + 1], char *err, size_t errsz);

#endif
