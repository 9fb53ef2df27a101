/*
 * quarantine_purge: removes expired quarantine items in the background.
 * A loop timer submits one purge job every quarantine_purge_interval to
 * its own util/worker thread (never more than one under way); the job
 * calls quarantine_purge() (chunks through the expires_at index,
 * "quarantine.expire" events, files unlinked after each commit) and logs
 * one line when it removed something.  Created and freed on the loop.
 */
#ifndef MOAT_QUARANTINE_PURGE_H
#define MOAT_QUARANTINE_PURGE_H

#include <stddef.h>
#include <stdint.h>

struct event_base;
struct quarantine_purger;

struct quarantine_purger *quarantine_purger_start(struct event_base *base,
						  const char *db_path, const char *data_dir,
						  int64_t interval_ms, char *err, size_t errsz);
/* Finishes a purge under way; NULL ok. */
void quarantine_purger_free(struct quarantine_purger *p);

#endif
