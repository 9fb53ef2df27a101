/*
 * store_pg: every PostgreSQL statement of moatd (docs/cluster.md).
 *
 *   moat_row(tbl, rid, body jsonb NULL = deleted, origin, seq)  one row per
 *       shared row, its latest state; seq from moat_row_seq, given under a
 *       transaction advisory lock so that seqs commit in order and a puller
 *       reading "seq > last" never skips one
 *   moat_blob(qid, content, origin)  quarantined messages' files
 *
 * Both are created when missing at connect, under an advisory lock.  One
 * struct store_pg is one libpq connection and belongs to one thread; calls
 * block (the cluster thread, or an HTTP thread fetching a file).  Every
 * value is a parameter (PQexecParams).  Errors fill err; nothing logs here.
 */
#ifndef MOAT_STORE_PG_H
#define MOAT_STORE_PG_H

#include <stddef.h>
#include <stdint.h>

struct store_pg;
struct store_cluster_batch;

/* Connect (conninfo's connect_timeout bounds it), make the tables if missing. */
struct store_pg *store_pg_connect(const char *conninfo, char *err, size_t errsz);
void store_pg_close(struct store_pg *pg);

/* LISTEN moat_row; the socket to wait on; drain notifications (*got = 1 if any). */
int store_pg_listen(struct store_pg *pg, char *err, size_t errsz);
int store_pg_socket(struct store_pg *pg);
int store_pg_notified(struct store_pg *pg, int *got, char *err, size_t errsz);

/* Does the cluster have any row yet? */
int store_pg_has_rows(struct store_pg *pg, int *has, char *err, size_t errsz);

/* Forget the statistical filter's learning events created before before_ms
 * (docs/cluster.md); *removed is how many went. */
int store_pg_bayes_prune(struct store_pg *pg, int64_t before_ms, int64_t *removed, char *err,
			 size_t errsz);

/* A session advisory lock held while a node joins (seeds or pulls it all). */
int store_pg_join_lock(struct store_pg *pg, int on, char *err, size_t errsz);

/*
 * The quarantined message qid's file for a push: 0 with *data (malloc'ed)
 * and *len, 1 when this node has no file for it (nothing to send), -1 on
 * error.
 */
typedef int (*store_pg_load_fn)(const char *qid, void *arg, unsigned char **data,
				size_t *len);

/*
 * One transaction: every change of b as a new seq by origin node, the
 * files of new quarantine items that PostgreSQL does not have yet (load),
 * the files of messages with no item left removed, NOTIFY moat_row.
 */
int store_pg_push(struct store_pg *pg, int64_t node, const struct store_cluster_batch *b,
		  store_pg_load_fn load, void *arg, char *err, size_t errsz);

/* One pulled row; body NULL when deleted.  Non-zero from the callback stops. */
typedef int (*store_pg_row_fn)(int64_t seq, const char *tbl, const char *rid,
			       const char *body, void *arg);

/*
 * Up to max rows with seq > after, oldest first, not from origin skip
 * (-1: every origin); *n is how many were passed to cb.
 */
int store_pg_pull(struct store_pg *pg, int64_t after, int64_t skip, int max,
		  store_pg_row_fn cb, void *arg, int *n, char *err, size_t errsz);

/* The file of quarantined message qid: 0 with *data (malloc'ed), 1 if none, -1 error. */
int store_pg_blob_get(struct store_pg *pg, const char *qid, unsigned char **data,
		      size_t *len, char *err, size_t errsz);

#endif
