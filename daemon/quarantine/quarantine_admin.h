/*
 * quarantine_admin: release and delete quarantined mail — the items named
 * by id or every item matching a filter, always within the caller's scope
 * (f->owner_user_id) — optionally putting the senders on an allow or block
 * list.  The one home of these operations: the API (http_quarantine.c),
 * signed links (daemon/digest) and `moatd quarantine` (cli_quarantine.c)
 * parse their input, call here and format the answer.
 *
 * Release queues the message for the item's own recipient only, byte for
 * byte the stored file (hard-linked into spool/queue under a new queue id,
 * a message of its own that shares nothing with the original), through the
 * queue runner.  A call writes one message_event row per item
 * ("quarantine.release" / "quarantine.delete") and one api_audit row; the
 * files of messages with no item left are removed after the commit.
 *
 * Items named by id are changed in one transaction: all or nothing.  A
 * filter is applied in chunks of QUARANTINE_CHUNK items, each its own
 * short transaction, so that a bulk operation never holds the database's
 * writer lock for long (the spool writer commits accepted mail meanwhile);
 * a failure stops at a chunk boundary and *res counts what was done.
 *
 * Also here: the purge of expired items and start-up reconciliation.
 * Called on HTTP threads, the purge worker and in the CLI process, each
 * with its own store connection.
 */
#ifndef MOAT_QUARANTINE_ADMIN_H
#define MOAT_QUARANTINE_ADMIN_H

#include <stddef.h>
#include <stdint.h>

struct store;
struct store_quarantine_filter;

#define QUARANTINE_CHUNK 500            /* items per transaction of a bulk operation */
#define QUARANTINE_USER_KINDS_DEFAULT "spam,policy"

enum quarantine_op { QUARANTINE_RELEASE, QUARANTINE_DELETE };
enum quarantine_sender_list { QUARANTINE_LIST_NONE, QUARANTINE_LIST_ALLOW,
			      QUARANTINE_LIST_BLOCK };

struct quarantine_actor {
	int64_t user_id;        /* 0: nobody logged in (cli, system) */
	int admin;              /* sees every item; sender lists are the global ones */
	const char *name;
	const char *via;        /* session | token | link | cli | system */
	const char *client_addr;/* NULL: local */
	int64_t sender_list_max;/* an end user's personal list bound (user_sender_list_max) */
};

struct quarantine_result {
	int recipients;         /* items released or deleted */
	int messages;           /* distinct messages among them */
	int sender_listed;      /* list entries added */
};

/*
 * Apply op to the items matching f (f->owner_user_id scopes; ids or
 * filter).  0, or -1 with err (and *http_status 403/404/422 where the
 * caller's input is at fault, 500 otherwise).  With ids nothing changed on
 * -1; see above for a filter.
 */
int quarantine_admin_apply(struct store *st, const char *data_dir, enum quarantine_op op,
			   const struct store_quarantine_filter *f, enum quarantine_sender_list sl,
			   const struct quarantine_actor *actor, struct quarantine_result *res,
			   int *http_status, char *err, size_t errsz);

/*
 * Release the items named by f->ids (all or nothing, as above), each
 * queued with its own delivery edit: edits[i] (queue_rcpt.edit, JSON, see
 * docs/mailbox-rules.md; NULL: the message as it is) for the item
 * f->ids[i].  Mailbox rules applied to quarantined mail use it to deliver
 * an item to the folder its owner's rules choose.
 */
int quarantine_admin_release_edits(struct store *st, const char *data_dir,
				   const struct store_quarantine_filter *f,
				   const char *const *edits, const struct quarantine_actor *actor,
				   struct quarantine_result *res, int *http_status, char *err,
				   size_t errsz);

/*
 * Remove items expired at now (expires_at <= now), at most max_items, in
 * chunks; "quarantine.expire" events; files unlinked after each commit.
 * The count removed, or -1.
 */
int quarantine_purge(struct store *st, const char *data_dir, int64_t now, int max_items,
		     char *err, size_t errsz);

struct quarantine_reconcile_stats {
	int files_removed;      /* quarantine/<qid> without an item: never acknowledged */
	int rows_removed;       /* items whose file is missing */
	int kept;               /* messages with items and a file */
};
/*
 * At start, before any session: make quarantine/ and the items agree.  In a
 * cluster (cluster != 0) items without a file stay: their file is in
 * PostgreSQL (cluster_pg_fetch_quarantine).
 */
int quarantine_reconcile(struct store *st, const char *data_dir, int cluster,
			 struct quarantine_reconcile_stats *stats, char *err, size_t errsz);

#endif
