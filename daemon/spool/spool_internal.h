/* spool: what spool.c gives spool_writer.c and no one else. */
#ifndef MOAT_SPOOL_INTERNAL_H
#define MOAT_SPOOL_INTERNAL_H

#include "spool.h"

struct spool *spool_file_spool(const struct spool_file *f);
/* Flush, fdatasync, rename incoming/<qid> -> queue/<qid>. */
int spool_file_sync_and_publish(struct spool_file *f, char *err, size_t errsz);
/* Make the batch durable: fsync the spool directories, or syncfs() the file system. */
int spool_sync_dirs(struct spool *sp, char *err, size_t errsz);
/* After publishing: a second name, quarantine/<qid> (a hard link). */
int spool_file_quarantine(struct spool_file *f, char *err, size_t errsz);
/* After the commit of a message with quarantined recipients only: drop queue/<qid>. */
void spool_file_unqueue(struct spool_file *f);
/* Remove queue/<qid> (and quarantine/<qid>) after a failed commit (never acknowledged). */
void spool_file_unpublish(struct spool_file *f);
/* quarantine_lifetime in ms (the default when not set). */
int64_t spool_quarantine_lifetime(const struct spool *sp);
/* Close a published file and free it; the file stays. */
void spool_file_close(struct spool_file *f);

#endif
