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
 * missing and brought to the newest schema; a database that has data is
 * first copied to <path>.pre-migration-<its version> (kept; no copy, no
 * migration).  A file that is not a database,
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
	/* NULL, or per recipient 0 queued, 1 held, 2 quarantined (SPOOL_RCPT_*),
	 * with the reason of held and quarantined ones. */
	const unsigned char *rcpt_disp;
	const char *const *rcpt_reason;
	/* Quarantined recipients: kind per recipient (NULL: "policy"), the
	 * message's Subject and Message-ID (NULL: ""), and when the items
	 * expire (unix ms).  One quarantine.add event per item is written. */
	const char *const *rcpt_kind;
	const char *subject;
	const char *message_id;
	int64_t quarantine_expires_at;
	/* NULL, or per recipient its delivery edit (JSON text; NULL entry: none).
	 * The same address may appear again with another edit (a folder copy):
	 * each is its own row (seq 0, 1, ...); an exact repeat is queued once. */
	const char *const *rcpt_edit;
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

/* ---- delivery queue (store_queue.c; used by daemon/queue and the CLI) ---- */

/* One recipient row with its message's envelope; strings valid in the callback. */
struct store_queue_row {
	const char *qid;
	const char *rcpt;
	const char *state;        /* queued | deferred | held | dead | done */
	const char *sender;
	const char *client_addr;
	const char *auth_user;    /* NULL when not authenticated */
	const char *last_error;   /* NULL when none */
	const char *reason;       /* held: why; NULL otherwise */
	const char *route;        /* last destination tried, NULL before */
	int64_t size;
	int64_t received_at;      /* unix ms */
	int64_t next_attempt;     /* unix ms */
	int64_t released_at;      /* unix ms, 0 never */
	int64_t final_at;         /* unix ms, 0 not final */
	int attempts;
	int smtputf8;
	int body_8bit;
	int seq;                  /* 0, or which further copy of rcpt in the message */
	const char *edit;         /* delivery edit (JSON), NULL when none */
};
typedef int (*store_queue_row_fn)(const struct store_queue_row *r, void *arg);

/* At start: every leased row becomes due at now. */
int store_queue_reset_leases(struct store *st, int64_t now);

/*
 * Lease up to limit due rows (queued first, then deferred, each in
 * next_attempt order through the index queue_rcpt_due): cb sees each row,
 * then its next_attempt becomes lease_until and leased = 1.
 */
int store_queue_lease_due(struct store *st, int64_t now, int64_t lease_until,
			  int limit, store_queue_row_fn cb, void *arg);

/* The earliest next_attempt of a queued or deferred row; 0 and *found=0 if none. */
int store_queue_next_due(struct store *st, int64_t *when, int *found);

enum store_outcome { STORE_DONE, STORE_DEFERRED, STORE_DEAD };

/* Record a delivery attempt's outcome for one recipient; lease dropped. */
int store_queue_set_outcome(struct store *st, const char *qid, const char *rcpt, int seq,
			    enum store_outcome o, const char *text, const char *route,
			    int64_t next_attempt, int64_t now);

/* Counts of qid's recipients still pending (queued/deferred/held) and dead. */
int store_queue_counts(struct store *st, const char *qid, int *pending, int *dead);

/* Delete qid and its recipients. */
int store_queue_delete_message(struct store *st, const char *qid);

/*
 * Messages with nothing pending and no dead recipient newer than
 * dead_before: cb(qid) for each (at most limit), after which the caller
 * deletes them.
 */
int store_queue_purgeable(struct store *st, int64_t dead_before, int limit,
			  int (*cb)(const char *qid, void *arg), void *arg);

/*
 * Bulk operations.  Every field NULL / 0 matches everything; fields AND.
 * rcpt_domain matches the part after the last '@' (case-insensitive);
 * reason is a case-insensitive substring of last_error or the held
 * reason; received_before matches received_at <= it.
 */
struct store_queue_filter {
	const char *qid;
	const char *sender;       /* exact, case-insensitive; "" is <> */
	const char *client_addr;
	const char *rcpt_domain;
	const char *reason;
	const char *state;
	int64_t received_before;  /* unix ms; 0: any age */
	int64_t limit;            /* list only; 0: no limit */
	const char *auth_user;    /* exact; NULL any (daemon/account holds by it) */
	int64_t received_after;   /* unix ms, received_at >= it; 0: any age */
	/*
	 * 1: only while auth_user's account is suspended (a later pass of a
	 * suspension's hold must not hold again what a lift released).
	 */
	int while_suspended;
};

/* Recipient rows matching f, in (received_at, qid, rcpt, seq) order. */
int store_queue_list(struct store *st, const struct store_queue_filter *f,
		     store_queue_row_fn cb, void *arg);
/* Messages and recipients matching f, grouped; at most limit groups, largest first. */
enum store_queue_group { STORE_QG_STATE, STORE_QG_SENDER, STORE_QG_CLIENT, STORE_QG_DOMAIN,
			 STORE_QG_REASON };
int store_queue_summary(struct store *st, const struct store_queue_filter *f,
			enum store_queue_group group, int64_t limit,
			int (*cb)(const char *key, int64_t messages, int64_t rcpts, void *arg),
			void *arg);
/* held or dead -> queued, due now, queue lifetime restarts.  *n: rows. */
int store_queue_release(struct store *st, const struct store_queue_filter *f,
			int64_t now, int *n);
/* queued or deferred -> due now. */
int store_queue_retry(struct store *st, const struct store_queue_filter *f,
		      int64_t now, int *n);
/* queued or deferred -> held with reason. */
int store_queue_hold(struct store *st, const struct store_queue_filter *f,
		     const char *reason, int *n);
/*
 * Delete matching recipient rows; every message left with nothing queued,
 * deferred, held or dead is deleted too and reported to gone(qid) so that
 * the caller removes its spool file (after the commit).
 */
int store_queue_delete(struct store *st, const struct store_queue_filter *f, int *n,
		       int (*gone)(const char *qid, void *arg), void *arg);

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
	const char *entry;          /* what fired: "conn_deny entry 12 ..."; NULL: none */
	const char *auth_user;      /* NULL: not authenticated */
	const char *tls;            /* "version=TLSv1.3 cipher=..."; NULL: plaintext */
	const char *timeline_json;  /* the SMTP conversation, a JSON array; NULL: none */
	const char *message_id;     /* Message-ID without <>; NULL: none */
	int scored;                 /* score and score_json are set (docs/score.md) */
	double score;
	const char *score_json;     /* the parts, a JSON array; NULL: none */
};

int store_log_insert(struct store *st, const struct store_log_entry *e,
		     char *err, size_t errsz);

#endif
