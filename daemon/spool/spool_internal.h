/* spool: what spool.c gives spool_writer.c and no one else. */
#ifndef MOAT_SPOOL_INTERNAL_H
#define MOAT_SPOOL_INTERNAL_H

#include "spool.h"

struct spool *spool_file_spool(const struct spool_file *f);
/* Flush, fdatasync, rename incoming/<qid> -> queue/<qid>. */
int spool_file_sync_and_publish(struct spool_file *f, char *err, size_t errsz);
/* fsync both spool directories. */
int spool_sync_dirs(struct spool *sp, char *err, size_t errsz);
/* Remove queue/<qid> after a failed commit (never acknowledged). */
void spool_file_unpublish(struct spool_file *f);
/* Close a published file and free it; the file stays. */
void spool_file_close(struct spool_file *f);

#endif
