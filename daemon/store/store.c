/*
 * store: SQLite access.  See store.h for the contract.
 *
 * Opening order matters: the schema version is read before anything writes
 * to the file (journal_mode=WAL rewrites the header), so a database from a
 * newer release or a file that is not a database stays byte-for-byte as it
 * was.  synchronous=FULL because a commit here stands behind a 250 reply.
 */
#include "store.h"

#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "store_internal.h"
#include "store_schema.h"
#include "../util/util.h"

#define BUSY_TIMEOUT_MS 5000 /* longest wait for another writer */

/*
 * One write transaction at a time in this process, handed over in order.
 * SQLite's own busy handler sleeps up to 100 ms between retries, so the
 * spool writer and the queue runner, each on its own connection, spent
 * much of their time asleep while the lock was already free; a mutex wakes
 * the next writer the moment the last one commits.  Other processes
 * (`moatd queue` ...) still meet SQLite's lock and busy_wait() below.
 */
static pthread_mutex_t writer_mu = PTHREAD_MUTEX_INITIALIZER;

static void writer_release_if_done(struct store *st)
{
	if (st->holds_write && sqlite3_get_autocommit(st->db)) {
		st->holds_write = 0;
		pthread_mutex_unlock(&writer_mu);
	}
}

int store_schema_version(void)
{
	return store_migration_count;
}

sqlite3_stmt *store_prepare(struct store *st, const char *sql)
{
	size_t i;

	for (i = 0; i < st->nstmts; i++) {
		if (st->stmts[i].sql == sql) {
			sqlite3_reset(st->stmts[i].stmt);
			sqlite3_clear_bindings(st->stmts[i].stmt);
			return st->stmts[i].stmt;
		}
	}
	if (st->nstmts == STORE_MAX_STMTS)
		abort(); /* raise STORE_MAX_STMTS: every statement is a literal */
	if (sqlite3_prepare_v3(st->db, sql, -1, SQLITE_PREPARE_PERSISTENT,
			       &st->stmts[st->nstmts].stmt, NULL) != SQLITE_OK)
		return NULL;
	st->stmts[st->nstmts].sql = sql;
	return st->stmts[st->nstmts++].stmt;
}

void store_bind_text(sqlite3_stmt *s, int i, const char *v)
{
	if (v == NULL)
		sqlite3_bind_null(s, i);
	else
		sqlite3_bind_text(s, i, v, -1, SQLITE_STATIC);
}

int store_step_done(sqlite3_stmt *s)
{
	int rc = sqlite3_step(s);

	sqlite3_reset(s);
	return rc == SQLITE_DONE ? 0 : -1;
}

int store_run(struct store *st, const char *sql)
{
	sqlite3_stmt *s = store_prepare(st, sql);

	return s == NULL ? -1 : store_step_done(s);
}

const char *store_errmsg(struct store *st)
{
	return sqlite3_errmsg(st->db);
}

static int exec(sqlite3 *db, const char *sql, char *err, size_t errsz)
{
	char *msg = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		snprintf(err, errsz, "%s", msg ? msg : sqlite3_errmsg(db));
		sqlite3_free(msg);
		return -1;
	}
	return 0;
}

static int read_user_version(sqlite3 *db, int *version, char *err, size_t errsz)
{
	sqlite3_stmt *s;
	int rc;

	if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &s, NULL) != SQLITE_OK) {
		snprintf(err, errsz, "%s", sqlite3_errmsg(db));
		return -1;
	}
	rc = sqlite3_step(s);
	if (rc != SQLITE_ROW) {
		snprintf(err, errsz, "%s", sqlite3_errmsg(db));
		sqlite3_finalize(s);
		return -1;
	}
	*version = sqlite3_column_int(s, 0);
	sqlite3_finalize(s);
	return 0;
}

static int migrate(sqlite3 *db, int from, char *err, size_t errsz)
{
	char sub[400];
	int i;

	for (i = from; i < store_migration_count; i++) {
		const struct store_migration *m = &store_migrations[i];
		char pragma[64];

		if (exec(db, "BEGIN IMMEDIATE", sub, sizeof(sub)) < 0)
			goto fail;
		if (exec(db, m->sql, sub, sizeof(sub)) < 0) {
			exec(db, "ROLLBACK", pragma, sizeof(pragma));
			goto fail;
		}
		snprintf(pragma, sizeof(pragma), "PRAGMA user_version = %d", m->version);
		if (exec(db, pragma, sub, sizeof(sub)) < 0 ||
		    exec(db, "COMMIT", sub, sizeof(sub)) < 0) {
			exec(db, "ROLLBACK", pragma, sizeof(pragma));
			goto fail;
		}
		continue;
fail:
		snprintf(err, errsz, "migration %s failed: %s", m->name, sub);
		return -1;
	}
	return 0;
}

/*
 * The one copy of a live database, for the copy before a migration and for
 * `moatd backup`: SQLite's online backup of src into <dst>.tmp, which is
 * made a plain rollback-journal file (synced by its close) and only then
 * renamed to dst, so a half-made copy never carries the name.  step_pages
 * < 0 copies in one step; otherwise in steps of that many pages, so that a
 * copy of a large file never holds the source's lock for long.  A caller
 * that needs a consistent copy of a database other connections write to
 * holds a read transaction on src around this call (WAL: it pins one
 * snapshot, and the copy does not restart when a writer commits).
 */
static int busy_wait(void *arg, int count);

int store_copy_db(sqlite3 *src, const char *dst, int step_pages, char *err, size_t errsz)
{
	char tmp[1300];
	sqlite3 *out = NULL;
	sqlite3_backup *b;
	int rc;
	int waits = 0;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", dst) >= sizeof(tmp)) {
		snprintf(err, errsz, "%s: path too long", dst);
		return -1;
	}
	(void)unlink(tmp);
	if (sqlite3_open_v2(tmp, &out, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
	    SQLITE_OK) {
		snprintf(err, errsz, "%s", out ? sqlite3_errmsg(out) : "no memory");
		goto fail;
	}
	b = sqlite3_backup_init(out, "main", src, "main");
	if (b == NULL) {
		snprintf(err, errsz, "%s", sqlite3_errmsg(out));
		goto fail;
	}
	do {
		rc = sqlite3_backup_step(b, step_pages < 0 ? -1 : step_pages);
		/* Another process holds a lock for a moment: wait as a writer would. */
		if ((rc == SQLITE_BUSY || rc == SQLITE_LOCKED) && busy_wait(NULL, waits++))
			rc = SQLITE_OK;
	} while (rc == SQLITE_OK);
	sqlite3_backup_finish(b);
	if (rc != SQLITE_DONE) {
		snprintf(err, errsz, "%s", sqlite3_errstr(rc));
		goto fail;
	}
	if (exec(out, "PRAGMA journal_mode = DELETE", err, errsz) < 0)
		goto fail;
	if (sqlite3_close(out) != SQLITE_OK) {
		snprintf(err, errsz, "close failed");
		out = NULL;
		goto fail;
	}
	out = NULL;
	if (rename(tmp, dst) < 0) {
		snprintf(err, errsz, "rename: %s", strerror(errno));
		goto fail;
	}
	return 0;
fail:
	sqlite3_close(out);
	(void)unlink(tmp);
	return -1;
}

/*
 * Before migrating a database that has data (schema version > 0), a copy as
 * it is: <path>.pre-migration-<version> (store_copy_db).  A copy already
 * there (a migration that failed before) is the older one and stays.  No
 * copy, no migration.
 */
static int backup_before_migrate(sqlite3 *db, const char *path, int version, char *err,
				 size_t errsz)
{
	char dst[1200];
	char sub[400];

	snprintf(dst, sizeof(dst), "%s.pre-migration-%d", path, version);
	if (access(dst, F_OK) == 0)
		return 0;
	if (store_copy_db(db, dst, -1, sub, sizeof(sub)) < 0) {
		snprintf(err, errsz, "copy to .pre-migration-%d: %s", version, sub);
		return -1;
	}
	return 0;
}

/*
 * Waits for a lock held by another connection: short sleeps (0.1 ms
 * doubling to 2 ms) so that a lock freed soon is taken soon, and at most
 * BUSY_TIMEOUT_MS in all, as sqlite3_busy_timeout() would.
 */
static int busy_wait(void *arg, int count)
{
	int64_t us = count < 5 ? 100LL << count : 2000;
	int64_t waited = count < 5 ? 100LL * ((1LL << count) - 1) : 3100 + 2000LL * (count - 5);
	struct timespec ts = { 0, (long)(us * 1000) };

	(void)arg;
	if (waited >= (int64_t)BUSY_TIMEOUT_MS * 1000)
		return 0;
	nanosleep(&ts, NULL);
	return 1;
}

struct store *store_open(const char *path, int flags, char *err, size_t errsz)
{
	struct store *st = NULL;
	struct store_cluster_conn *cluster = NULL;
	sqlite3 *db = NULL;
	char sub[512];
	int version;
	int oflags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX;

	if (flags & STORE_MIGRATE)
		oflags |= SQLITE_OPEN_CREATE;
	if (sqlite3_open_v2(path, &db, oflags, NULL) != SQLITE_OK) {
		snprintf(err, errsz, "%s: cannot open database: %s", path,
			 db ? sqlite3_errmsg(db) : "out of memory");
		goto fail;
	}
	sqlite3_busy_handler(db, busy_wait, NULL);
	/* Before the migrations: a re-run one may touch a table with cluster triggers. */
	cluster = store_cluster_conn_new(db);
	if (cluster == NULL) {
		snprintf(err, errsz, "%s: cannot register SQL functions", path);
		goto fail;
	}
	if (read_user_version(db, &version, sub, sizeof(sub)) < 0) {
		snprintf(err, errsz, "%s: not a usable database: %s", path, sub);
		goto fail;
	}
	if (version > store_migration_count) {
		snprintf(err, errsz,
			 "%s: schema version %d is newer than this moatd knows (%d);"
			 " refusing to touch it", path, version, store_migration_count);
		goto fail;
	}
	if (exec(db, "PRAGMA journal_mode = WAL", sub, sizeof(sub)) < 0 ||
	    exec(db, "PRAGMA synchronous = FULL", sub, sizeof(sub)) < 0 ||
	    exec(db, "PRAGMA foreign_keys = ON", sub, sizeof(sub)) < 0) {
		snprintf(err, errsz, "%s: %s", path, sub);
		goto fail;
	}
	if (version < store_migration_count) {
		if (!(flags & STORE_MIGRATE)) {
			snprintf(err, errsz, "%s: schema version %d, expected %d", path,
				 version, store_migration_count);
			goto fail;
		}
		if (version > 0 && backup_before_migrate(db, path, version, sub, sizeof(sub)) < 0) {
			snprintf(err, errsz, "%s: not migrated, no copy of the old database: %s",
				 path, sub);
			goto fail;
		}
		if (migrate(db, version, sub, sizeof(sub)) < 0) {
			snprintf(err, errsz, "%s: %s", path, sub);
			goto fail;
		}
	}
	st = xcalloc(1, sizeof(*st));
	st->db = db;
	st->cluster = cluster;
	return st;
fail:
	store_cluster_conn_free(cluster);
	sqlite3_close(db);
	return NULL;
}

void store_close(struct store *st)
{
	size_t i;

	if (st == NULL)
		return;
	if (st->holds_write) {
		store_rollback(st);
		if (st->holds_write) {
			st->holds_write = 0;
			pthread_mutex_unlock(&writer_mu);
		}
	}
	for (i = 0; i < st->nstmts; i++)
		sqlite3_finalize(st->stmts[i].stmt);
	store_cluster_conn_free(st->cluster);
	sqlite3_close(st->db);
	free(st);
}

static const char SQL_BEGIN[] = "BEGIN IMMEDIATE";
static const char SQL_COMMIT[] = "COMMIT";
static const char SQL_ROLLBACK[] = "ROLLBACK";
static const char SQL_PING[] = "SELECT count(*) FROM sqlite_schema";

int store_begin(struct store *st)
{
	struct timespec until;

	if (!st->holds_write) {
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += BUSY_TIMEOUT_MS / 1000;
		if (pthread_mutex_timedlock(&writer_mu, &until) != 0)
			return -1;
		st->holds_write = 1;
	}
	if (store_run(st, SQL_BEGIN) < 0) {
		writer_release_if_done(st);
		return -1;
	}
	return 0;
}

int store_commit(struct store *st)
{
	int rc = store_run(st, SQL_COMMIT);

	writer_release_if_done(st);
	return rc;
}

void store_rollback(struct store *st)
{
	store_run(st, SQL_ROLLBACK);
	writer_release_if_done(st);
}

int store_ping(struct store *st, char *err, size_t errsz)
{
	sqlite3_stmt *s = store_prepare(st, SQL_PING);
	int rc;

	if (s == NULL) {
		snprintf(err, errsz, "%s", sqlite3_errmsg(st->db));
		return -1;
	}
	rc = sqlite3_step(s);
	sqlite3_reset(s);
	if (rc != SQLITE_ROW) {
		snprintf(err, errsz, "%s", sqlite3_errmsg(st->db));
		return -1;
	}
	return 0;
}

