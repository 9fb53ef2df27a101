/*
 * tmpdb: a migrated SQLite store in a fresh directory under /tmp for unit
 * tests that need a real database, removed again by tmpdb_close().  Include
 * after <cmocka.h> (fail_msg) and "store/store.h".
 */
#ifndef MOAT_TEST_TMPDB_H
#define MOAT_TEST_TMPDB_H

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

struct tmpdb {
	char dir[64];
	char path[128];
	struct store *st;
};

static void tmpdb_open(struct tmpdb *d)
{
	char err[300];

	snprintf(d->dir, sizeof(d->dir), "/tmp/moat-unit-db.XXXXXX");
	if (mkdtemp(d->dir) == NULL)
		fail_msg("mkdtemp");
	snprintf(d->path, sizeof(d->path), "%s/moat.db", d->dir);
	d->st = store_open(d->path, STORE_MIGRATE, err, sizeof(err));
	if (d->st == NULL)
		fail_msg("store_open: %s", err);
}

static void tmpdb_close(struct tmpdb *d)
{
	char p[160];

	store_close(d->st);
	unlink(d->path);
	snprintf(p, sizeof(p), "%s-wal", d->path);
	unlink(p);
	snprintf(p, sizeof(p), "%s-shm", d->path);
	unlink(p);
	rmdir(d->dir);
}

#endif
