/*
 * spool: message files on disk and the thread that makes them durable.
 *
 * Layout under <data_dir>/spool:
 *   incoming/t<hex> created ahead (empty) or being received; never
 *                   acknowledged; removed at start
 *   queue/<qid>     acknowledged: fsync'ed, renamed here, then its rows
 *                   committed to SQLite, and only then the client gets 250
 *
 * The event loop creates and writes spool files; it hands each finished
 * file to the writer thread with spool_writer_commit(), which owns it from
 * then on.  The writer batches: many files are fsync'ed and one SQLite
 * transaction commits all their rows (group commit), then each session is
 * told by id — a session that went away meanwhile is simply not found.
 */
#ifndef MOAT_SPOOL_H
#define MOAT_SPOOL_H

#include <stddef.h>
#include <stdint.h>

#include "../store/store.h"

#define SPOOL_QID_LEN 16

/* A new queue id (sorts by time; unique within the process).  Any thread. */
void spool_new_qid(char qid[SPOOL_QID_LEN + 1]);

struct event_base;
struct spool;
struct spool_file;
struct spool_writer;

struct spool *spool_open(const char *data_dir, char *err, size_t errsz);
void spool_free(struct spool *sp);

/*
 * Why a spool operation failed.  The SMTP side maps these to replies in
 * one place: a full file system is 452 4.3.1, any other I/O error 451
 * 4.3.0; neither is ever a permanent refusal.
 */
enum spool_err {
	SPOOL_OK = 0,
	SPOOL_ERR_NOSPACE, /* ENOSPC, EDQUOT */
	SPOOL_ERR_IO,      /* any other failure */
};
enum spool_err spool_err_from_errno(int e);

/*
 * Free bytes in the spool's file system as last measured, or -1 when not
 * known.  statvfs() runs on the writer thread (after each batch and at
 * least every second) and at start-up, never on the event loop, which only
 * reads this cached value; a write that fails for lack of space sets it
 * to 0 at once.
 */
int64_t spool_free_bytes(const struct spool *sp);
/* Measure now (writer thread, start-up).  0, or -1 when statvfs fails. */
int spool_measure_free(struct spool *sp);

struct spool_reconcile_stats {
	int incoming_removed; /* in-progress files of a previous run */
	int orphans_removed;  /* queue/ files without rows: never acknowledged */
	int rows_lost;        /* rows without a file: marked dead, reported */
	int kept;
};

/* At start, before any session: make files and rows agree (see spool.c). */
int spool_reconcile(struct spool *sp, struct store *st,
		    struct spool_reconcile_stats *stats, char *err, size_t errsz);

/* 1: a group commit syncs the whole file system once (spool_sync = filesystem). */
void spool_set_sync(struct spool *sp, int whole_fs);
/* How long a quarantined message is kept (quarantine_lifetime), for expires_at. */
void spool_set_quarantine_lifetime(struct spool *sp, int64_t ms);

/*
 * The thread that creates spool files ahead, so that the event loop never
 * waits for the filesystem to allocate an inode.  Start it after
 * spool_reconcile(); spool_free() stops it and removes unused files.
 */
int spool_pool_start(struct spool *sp, char *err, size_t errsz);
void spool_pool_stop(struct spool *sp);

/* A new file in incoming/ with a fresh queue id (from the pool if it can). */
struct spool_file *spool_file_create(struct spool *sp, char *err, size_t errsz);
const char *spool_file_qid(const struct spool_file *f);
/* Buffered append; -1 on an I/O error, which sticks. */
int spool_file_write(struct spool_file *f, const void *p, size_t n);
/* The sticky error of spool_file_write(), SPOOL_OK while there is none. */
enum spool_err spool_file_error(const struct spool_file *f);
int64_t spool_file_size(const struct spool_file *f);
/*
 * The whole message as written so far (flushed first), in a buffer of
 * size + 1 with a NUL after it; *out is the caller's.  Not on the loop: it
 * flushes, and reads back the part that left the write buffer earlier
 * (from the page cache, normally; none for a message smaller than it).
 */
int spool_file_read_all(struct spool_file *f, char **out, size_t *len);
/* Replace the file's content with p (a tagged message); size follows. */
int spool_file_rewrite(struct spool_file *f, const char *p, size_t n);
/* Close and remove; f is freed.  Accepts NULL. */
void spool_file_discard(struct spool_file *f);

/* The envelope recorded with a message.  The writer copies it. */
struct spool_envelope {
	const char *sender;
	const char *const *rcpts;
	size_t nrcpts;
	const char *client_addr;
	const char *client_name;
	const char *helo;
	const char *auth_user;
	int64_t received_at;
	int smtputf8;
	int body_8bit;
	/*
	 * Per recipient, or NULL for "queue every one": SPOOL_RCPT_QUEUE,
	 * SPOOL_RCPT_HOLD (held with rcpt_reason[i]) or SPOOL_RCPT_QUARANTINE
	 * (kept in spool/quarantine, indexed with rcpt_reason[i]).
	 */
	const unsigned char *rcpt_disp;
	const char *const *rcpt_reason;
	/* Quarantined recipients: rcpt_kind[i] ("spam", "policy"; NULL array or
	 * entry: "policy"), and what the quarantine index shows (NULL: ""). */
	const char *const *rcpt_kind;
	const char *subject;
	const char *message_id;
	/*
	 * Per recipient its delivery edit, or NULL for none (NULL array: none
	 * for anyone): JSON {"folder", "subject_prefix", "headers",
	 * "importance"}, applied by the delivery client to that recipient's
	 * copy only (docs/mailbox-rules.md).  rcpts may name one address
	 * twice with different edits (the inbox and a folder copy).
	 */
	const char *const *rcpt_edit;
};

enum { SPOOL_RCPT_QUEUE, SPOOL_RCPT_HOLD, SPOOL_RCPT_QUARANTINE };

/* Called on the event loop for every commit, in order; SPOOL_OK: durable. */
typedef void (*spool_commit_done_fn)(uint64_t session_id, const char *qid,
				     enum spool_err err, void *arg);

struct spool_writer *spool_writer_start(struct event_base *base, struct spool *sp,
					const char *db_path, spool_commit_done_fn done,
					void *arg, char *err, size_t errsz);
/* Takes ownership of f. */
void spool_writer_commit(struct spool_writer *w, struct spool_file *f,
			 const struct spool_envelope *env, uint64_t session_id);
/* Queue a message-log row; the entry is copied. */
void spool_writer_log(struct spool_writer *w, const struct store_log_entry *e);
/* Finish every queued job, stop the thread, free w.  Accepts NULL. */
void spool_writer_stop(struct spool_writer *w);

#endif
