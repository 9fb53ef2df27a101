/*
 * store_quarantine: SQL of the quarantine store (schema/012, 014): one row
 * per quarantined recipient; the message is spool/quarantine/<qid>.  Rows
 * are written by the spool writer with the message (store_queue_insert);
 * this file reads them for the API, the CLI and the digest, and changes
 * them for daemon/quarantine (release, delete, purge, reconciliation).
 *
 * Every query goes through one filter, whose owner_user_id is the
 * caller's scope: 0 sees every item, a user id only the items whose
 * recipient is one of that user's addresses or the address of a group the
 * user manages.  No function reads items without it.  Never called on the
 * mail event loop.
 */
#ifndef MOAT_STORE_QUARANTINE_H
#define MOAT_STORE_QUARANTINE_H

#include <stddef.h>
#include <stdint.h>

struct store;

#define STORE_QUARANTINE_IDS_MAX 1000  /* ids in one filter */

struct store_quarantine_row {
	int64_t id;
	const char *qid;
	const char *rcpt;
	const char *kind;        /* spam | policy | virus | attachment */
	const char *reason;
	const char *sender;
	const char *subject;
	const char *message_id;
	const char *client_addr;
	int64_t size;
	int64_t created_at;      /* unix ms */
	int64_t expires_at;      /* unix ms */
};

enum store_quarantine_sort {
	STORE_QS_CREATED, STORE_QS_EXPIRES, STORE_QS_SIZE, STORE_QS_SENDER,
	STORE_QS_RECIPIENT, STORE_QS_SUBJECT
};

/*
 * Every field NULL / 0 matches everything; fields AND.  Text matches are
 * case-insensitive (ASCII).
 */
struct store_quarantine_filter {
	int64_t owner_user_id;      /* 0: every item; else that user's scope */
	const int64_t *ids;         /* non-NULL: only these items (nids of them) */
	size_t nids;
	const char *rcpt;           /* exact */
	const char *sender;         /* exact; a trailing '*' matches a prefix */
	const char *subject;        /* substring */
	const char *reason;         /* substring */
	const char *kind;           /* exact */
	const char *qid;            /* exact */
	const char *q;              /* substring of sender, recipient or subject */
	int64_t since;              /* created_at >= since (unix ms); 0: open */
	int64_t until;              /* created_at < until; 0: open */
	int64_t expires_before;     /* expires_at <= it; 0: any */
	const char *kind_not_in;    /* "spam,policy": kinds outside this list only */
	int64_t after_id;           /* id > after_id (bulk walks in id order) */
	/* list only */
	enum store_quarantine_sort sort;
	int asc;                    /* 0: descending (the default) */
	int64_t limit;              /* rows at most; 0: no limit */
	const char *cursor;         /* from store_quarantine_cursor(); NULL: first page */
};

/* "created_at", ... -> sort; -1 for an unknown name. */
int store_quarantine_sort_parse(const char *name);

/*
 * Matching rows in the filter's order (sort, then id); cb non-zero stops.
 * -1 also for a malformed cursor (err says so: the caller's input).
 */
int store_quarantine_list(struct store *st, const struct store_quarantine_filter *f,
			  int (*cb)(const struct store_quarantine_row *r, void *arg), void *arg);
/* Matching rows in id order (f->sort ignored): for bulk operations in chunks. */
int store_quarantine_walk(struct store *st, const struct store_quarantine_filter *f,
			  int (*cb)(const struct store_quarantine_row *r, void *arg), void *arg);
int store_quarantine_count(struct store *st, const struct store_quarantine_filter *f,
			   int64_t *n);
/* The cursor that continues a list after row r (sorted by sort). */
void store_quarantine_cursor(const struct store_quarantine_row *r,
			     enum store_quarantine_sort sort, char *out, size_t outsz);
/* 1 when cursor has the shape store_quarantine_cursor() writes for sort. */
int store_quarantine_cursor_valid(const char *cursor, enum store_quarantine_sort sort);

/* ---- changes (daemon/quarantine), inside the caller's transaction ---- */

int store_quarantine_remove(struct store *st, int64_t id);
/* Items of qid left. */
int store_quarantine_qid_rows(struct store *st, const char *qid, int64_t *n);

/* The envelope of a released message whose queue row is gone. */
struct store_quarantine_env {
	const char *qid;
	const char *sender;
	const char *client_addr;
	const char *client_name;
	const char *helo;
	int64_t size;
	int64_t received_at;
	int smtputf8;
	int body_8bit;
};
/* Does queue_message hold qid? */
int store_quarantine_queue_has(struct store *st, const char *qid, int *has);
int store_quarantine_queue_add(struct store *st, const struct store_quarantine_env *e);
/* A queued recipient row for rcpt, due at now; *added 0 when it was there. */
int store_quarantine_queue_rcpt(struct store *st, const char *qid, const char *rcpt,
				int64_t now, int *added);
/* The same with a delivery edit (queue_rcpt.edit, JSON; NULL: none). */
int store_quarantine_queue_rcpt_edit(struct store *st, const char *qid, const char *rcpt,
				     const char *edit, int64_t now, int *added);

/*
 * Put sender on a global list of the policy (policy_entry sender_allow or
 * sender_deny); *added 0 when it was already there.  (An end user's
 * personal list is store_userlist_add's.)
 */
int store_quarantine_policy_list_add(struct store *st, const char *list, const char *value,
				     const char *comment, int *added);
/* A policy setting's stored value into out, or def when none is stored. */
int store_quarantine_setting(struct store *st, const char *key, const char *def,
			     char *out, size_t outsz);

/* Every distinct qid of the store, in order (reconciliation); private statement. */
int store_quarantine_qids(struct store *st, int (*cb)(const char *qid, void *arg),
			  void *arg);
/* Remove every item of qid; *n how many. */
int store_quarantine_remove_qid(struct store *st, const char *qid, int *n);

#endif
