/*
 * store_backup: see store_backup.h.  The copy itself is store_copy_db()
 * (store.c), shared with the copy made before a migration.
 */
#include "store_backup.h"

#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

#include "store_internal.h"

/*
 * Pages per backup step (4 KiB each: 4 MiB).  Each step takes the source's
 * shared lock only for its own duration; with WAL a writer is not blocked
 * by it at all, and a checkpoint merely waits for the copy to finish.
 */
#define BACKUP_STEP_PAGES 1024

static const char SQL_SNAP_BEGIN[] = "BEGIN DEFERRED";
static const char SQL_SNAP_READ[] = "SELECT count(*) FROM sqlite_schema";
static const char SQL_SNAP_END[] = "COMMIT";
static const char SQL_COUNT_QUEUE[] = "SELECT count(*) FROM queue_message";
static const char SQL_COUNT_RCPTS[] =
	"SELECT coalesce(sum(state IN ('queued', 'deferred')), 0),"
	" coalesce(sum(state = 'held'), 0), coalesce(sum(state = 'dead'), 0) FROM queue_rcpt";
static const char SQL_COUNT_QUARANTINE[] =
	"SELECT count(DISTINCT qid), count(*) FROM quarantine";

int store_backup_snapshot(struct store *st, const char *dst, char *err, size_t errsz)
{
	sqlite3_stmt *s;
	int rc;

	if (store_run(st, SQL_SNAP_BEGIN) < 0) {
		snprintf(err, errsz, "begin: %s", store_errmsg(st));
		return -1;
	}
	/* The first read starts the read transaction: the snapshot is taken here. */
	s = store_prepare(st, SQL_SNAP_READ);
	if (s == NULL || sqlite3_step(s) != SQLITE_ROW) {
		snprintf(err, errsz, "read: %s", store_errmsg(st));
		if (s != NULL)
			sqlite3_reset(s);
		store_run(st, SQL_SNAP_END);
		return -1;
	}
	sqlite3_reset(s);
	rc = store_copy_db(store_db(st), dst, BACKUP_STEP_PAGES, err, errsz);
	store_run(st, SQL_SNAP_END);
	return rc;
}

static int count_row(struct store *st, const char *sql, int64_t *a, int64_t *b, int64_t *c)
{
	sqlite3_stmt *s = store_prepare(st, sql);
	int rc;

	if (s == NULL)
		return -1;
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		*a = sqlite3_column_int64(s, 0);
		if (b != NULL)
			*b = sqlite3_column_int64(s, 1);
		if (c != NULL)
			*c = sqlite3_column_int64(s, 2);
	}
	sqlite3_reset(s);
	return rc == SQLITE_ROW ? 0 : -1;
}

int store_backup_counts(struct store *st, struct store_backup_counts *c)
{
	memset(c, 0, sizeof(*c));
	if (count_row(st, SQL_COUNT_QUEUE, &c->queue_messages, NULL, NULL) < 0 ||
	    count_row(st, SQL_COUNT_RCPTS, &c->queue_pending, &c->queue_held, &c->queue_dead) < 0 ||
	    count_row(st, SQL_COUNT_QUARANTINE, &c->quarantine_messages, &c->quarantine_items,
		      NULL) < 0)
		return -1;
	return 0;
}
