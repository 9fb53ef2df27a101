/*
 * store_cluster: the SQLite side of cluster mode (docs/cluster.md).
 *
 * The shared tables are listed once, in store_cluster.c.  While cluster_pg
 * is set, triggers on them record every change made on this node in
 * cluster_outbox (store_cluster_install); the cluster thread pushes those
 * rows to PostgreSQL (store_pg.c) and applies the other nodes' rows with
 * store_cluster_apply() on a connection marked applying, whose writes the
 * triggers do not record.
 *
 * Two SQL functions exist on every connection store_open() makes:
 *   moat_cluster_applying()  1 on the applying connection, else 0
 *   moat_next_id('tbl')      the next integer key of a shared table in this
 *                            node's range [node << 40, (node + 1) << 40);
 *                            NULL outside a cluster, so SQLite picks max + 1
 *                            as it always did
 * Every INSERT into a shared table with an integer key passes
 * id = moat_next_id('<tbl>').
 */
#ifndef MOAT_STORE_CLUSTER_H
#define MOAT_STORE_CLUSTER_H

#include <stddef.h>
#include <stdint.h>

struct store;

#define STORE_CLUSTER_ID_BITS 40 /* ids per node: 2^40 */

/*
 * At start, on the main connection: record node in cluster_state and create
 * (on = 1) or drop (on = 0) the capture triggers.  A node that leaves the
 * cluster stops filling the outbox and forgets its outbox.
 */
int store_cluster_install(struct store *st, int64_t node, int on, char *err, size_t errsz);

/* Mark this connection as the one applying other nodes' rows (or not). */
void store_cluster_set_applying(struct store *st, int on);

struct store_cluster_state {
	int64_t node;
	int64_t pulled_seq; /* last PostgreSQL seq applied here */
	int joined;         /* 1 once seeded or fully pulled */
};

int store_cluster_state_get(struct store *st, struct store_cluster_state *out);
int store_cluster_set_pulled(struct store *st, int64_t seq);
int store_cluster_set_joined(struct store *st);

/* Rows waiting in the outbox, and the newest outbox seq (0 when empty). */
int store_cluster_outbox_count(struct store *st, int64_t *n);
int store_cluster_outbox_last(struct store *st, int64_t *seq);

/* Every row of every shared table into the outbox (a node seeding a cluster). */
int store_cluster_enqueue_all(struct store *st);

/* One change to push: the row as it is now; body NULL when it is gone. */
struct store_cluster_change {
	char *tbl;
	char *rid;  /* the primary key as a JSON array */
	char *body; /* JSON object of the row's columns, BLOBs in hex; NULL = deleted */
	char *qid;  /* quarantine rows with a body: the message whose file goes too */
};

struct store_cluster_batch {
	struct store_cluster_change *v;
	size_t n;
	int64_t last_seq; /* outbox entries <= this are covered by the batch */
};

/* The oldest max outbox entries, one change per row (the latest state). */
int store_cluster_outbox_read(struct store *st, size_t max, struct store_cluster_batch *b);
/* Once PostgreSQL has committed a batch: forget its entries. */
int store_cluster_outbox_done(struct store *st, int64_t last_seq);
void store_cluster_batch_free(struct store_cluster_batch *b);

/* 1 when tbl is one of the shared tables. */
int store_cluster_is_shared(const char *tbl);

/*
 * Apply one row from another node, inside the caller's transaction on the
 * applying connection: body (JSON object) replaces the row, NULL deletes
 * it.  A deleted quarantine row's qid is copied to gone_qid (size >= 64;
 * "" otherwise) so that the caller can remove the file once no item of it
 * is left (store_cluster_quarantine_left).
 */
int store_cluster_apply(struct store *st, const char *tbl, const char *rid, const char *body,
			char *gone_qid, char *err, size_t errsz);
int store_cluster_quarantine_left(struct store *st, const char *qid, int *left);

#endif
