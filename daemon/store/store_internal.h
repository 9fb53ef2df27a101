/*
 * store_internal: what the store_*.c files share.  Each file keeps its SQL
 * as static const char arrays and prepares them with store_prepare(), which
 * caches by the array's address: each statement is prepared once per
 * connection and reset on every reuse.
 */
#ifndef MOAT_STORE_INTERNAL_H
#define MOAT_STORE_INTERNAL_H

#include <sqlite3.h>

#include "store.h"

#define STORE_MAX_STMTS 512

struct store {
	sqlite3 *db;
	struct {
		const char *sql;
		sqlite3_stmt *stmt;
	} stmts[STORE_MAX_STMTS];
	size_t nstmts;
	int holds_write; /* store_begin() took the process's writer mutex */
	struct store_cluster_conn *cluster; /* SQL functions' state (store_cluster.c) */
};

/* The cluster SQL functions on a new connection; NULL on error (store_cluster.c). */
struct store_cluster_conn *store_cluster_conn_new(sqlite3 *db);
void store_cluster_conn_free(struct store_cluster_conn *c);

/* The cached statement for sql (a static array), reset; NULL on error. */
sqlite3_stmt *store_prepare(struct store *st, const char *sql);
/* Step a statement that returns no rows; 0 when it ran to completion. */
int store_run(struct store *st, const char *sql);
/* The same for a statement already prepared and bound; resets it. */
int store_step_done(sqlite3_stmt *s);
/* Bind a string, or NULL as SQL NULL; the string must outlive the step. */
void store_bind_text(sqlite3_stmt *s, int i, const char *v);
const char *store_errmsg(struct store *st);
/* A copy of the database src into dst, made whole or not at all (store.c). */
int store_copy_db(sqlite3 *src, const char *dst, int step_pages, char *err, size_t errsz);

/* Column i as text, NULL for SQL NULL; valid until the next step or reset. */
static inline const char *store_col_text(sqlite3_stmt *s, int i)
{
	return (const char *)sqlite3_column_text(s, i);
}

static inline sqlite3 *store_db(struct store *st)
{
	return st->db;
}

#endif
