/*
 * store_backup: the database side of `moatd backup` (daemon/cli/cli_backup.c):
 * a consistent copy of a database that moatd keeps writing, and the counts
 * a backup's manifest records.
 */
#ifndef MOAT_STORE_BACKUP_H
#define MOAT_STORE_BACKUP_H

#include <stddef.h>
#include <stdint.h>

struct store;

/*
 * Copy st's database to dst (a new file; <dst>.tmp while it is made) as of
 * one moment: a read transaction pins a WAL snapshot for the whole copy,
 * which is made with SQLite's online backup in steps, so writers go on
 * committing meanwhile and the copy does not restart.  0, or -1 with err.
 */
int store_backup_snapshot(struct store *st, const char *dst, char *err, size_t errsz);

struct store_backup_counts {
	int64_t queue_messages;  /* queue_message rows */
	int64_t queue_pending;   /* recipients queued or deferred */
	int64_t queue_held;
	int64_t queue_dead;
	int64_t quarantine_messages; /* distinct qids */
	int64_t quarantine_items;
};

int store_backup_counts(struct store *st, struct store_backup_counts *c);

#endif
