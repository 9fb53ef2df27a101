/*
 * spool: files under <data_dir>/spool.  See spool.h.
 *
 * Reconciliation at start relies on the commit order of spool_writer.c:
 * file fsync'ed, renamed into queue/, directories fsync'ed, rows committed,
 * 250 sent.  So a file in incoming/ was never acknowledged; a file in
 * queue/ without rows was never acknowledged (crash between rename and
 * commit); rows without a file mean the disk lost an acknowledged message,
 * which must never be hidden: the recipients are marked dead and it is
 * reported.
 */
#include "spool.h"
#include "spool_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../log/log.h"
#include "../util/util.h"

#define SPOOL_WBUF (64 * 1024)

struct spool {
	char dir[1100];      /* <data_dir>/spool */
	int incoming_fd;     /* directory fds, for fsync and *at() calls */
	int queue_fd;
};

struct spool_file {
	struct spool *sp;
	char qid[SPOOL_QID_LEN + 1];
	int fd;
	int failed;
	int64_t size;
	size_t buflen;
	char buf[SPOOL_WBUF];
};

static int make_dir(const char *path, char *err, size_t errsz)
{
	if (mkdir(path, 0750) < 0 && errno != EEXIST) {
		snprintf(err, errsz, "%s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

struct spool *spool_open(const char *data_dir, char *err, size_t errsz)
{
	struct spool *sp = xcalloc(1, sizeof(*sp));
	char path[1200];

	sp->incoming_fd = -1;
	sp->queue_fd = -1;
	snprintf(sp->dir, sizeof(sp->dir), "%s/spool", data_dir);
	if (make_dir(sp->dir, err, errsz) < 0)
		goto fail;
	snprintf(path, sizeof(path), "%s/incoming", sp->dir);
	if (make_dir(path, err, errsz) < 0)
		goto fail;
	sp->incoming_fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (sp->incoming_fd < 0) {
		snprintf(err, errsz, "%s: %s", path, strerror(errno));
		goto fail;
	}
	snprintf(path, sizeof(path), "%s/queue", sp->dir);
	if (make_dir(path, err, errsz) < 0)
		goto fail;
	sp->queue_fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (sp->queue_fd < 0) {
		snprintf(err, errsz, "%s: %s", path, strerror(errno));
		goto fail;
	}
	return sp;
fail:
	spool_free(sp);
	return NULL;
}

void spool_free(struct spool *sp)
{
	if (sp == NULL)
		return;
	if (sp->incoming_fd >= 0)
		close(sp->incoming_fd);
	if (sp->queue_fd >= 0)
		close(sp->queue_fd);
	free(sp);
}

static int is_qid(const char *name)
{
	return strlen(name) == SPOOL_QID_LEN &&
	       strspn(name, "0123456789abcdef") == SPOOL_QID_LEN;
}

struct lost_ctx {
	struct spool *sp;
	struct store *st;
	struct spool_reconcile_stats *stats;
	int failed;
};

static int check_row(const char *qid, void *arg)
{
	struct lost_ctx *ctx = arg;
	struct stat sb;

	if (fstatat(ctx->sp->queue_fd, qid, &sb, 0) == 0) {
		ctx->stats->kept++;
		return 0;
	}
	log_error(qid, "spool", "LOST MESSAGE queue row without spool file;"
		  " recipients marked dead");
	if (store_queue_mark_lost(ctx->st, qid, "spool file missing at start") < 0)
		ctx->failed = 1;
	ctx->stats->rows_lost++;
	return 0;
}

int spool_reconcile(struct spool *sp, struct store *st,
		    struct spool_reconcile_stats *stats, char *err, size_t errsz)
{
	struct lost_ctx ctx = { sp, st, stats, 0 };
	struct dirent *de;
	DIR *d;
	int fd;

	memset(stats, 0, sizeof(*stats));

	fd = dup(sp->incoming_fd);
	d = fd >= 0 ? fdopendir(fd) : NULL;
	if (d == NULL) {
		snprintf(err, errsz, "spool/incoming: %s", strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if (unlinkat(sp->incoming_fd, de->d_name, 0) == 0)
			stats->incoming_removed++;
	}
	closedir(d);

	/*
	 * One transaction for the whole pass: a million index lookups each in
	 * its own implicit transaction would take and drop the WAL read lock
	 * a million times.
	 */
	if (store_begin(st) < 0) {
		snprintf(err, errsz, "reconcile: cannot begin transaction");
		return -1;
	}
	fd = dup(sp->queue_fd);
	d = fd >= 0 ? fdopendir(fd) : NULL;
	if (d == NULL) {
		snprintf(err, errsz, "spool/queue: %s", strerror(errno));
		if (fd >= 0)
			close(fd);
		store_rollback(st);
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		int exists = 0;

		if (de->d_name[0] == '.')
			continue;
		if (!is_qid(de->d_name)) {
			log_warn(NULL, "spool", "reconcile unexpected file spool/queue/%.64s left alone",
				 de->d_name);
			continue;
		}
		if (store_queue_exists(st, de->d_name, &exists) < 0) {
			snprintf(err, errsz, "reconcile: cannot read queue index");
			closedir(d);
			store_rollback(st);
			return -1;
		}
		if (!exists) {
			log_warn(de->d_name, "spool", "reconcile orphan spool file removed"
				 " (never acknowledged)");
			unlinkat(sp->queue_fd, de->d_name, 0);
			stats->orphans_removed++;
		}
	}
	closedir(d);

	if (store_queue_foreach(st, check_row, &ctx) < 0 || ctx.failed) {
		store_rollback(st);
		snprintf(err, errsz, "reconcile: cannot update queue index");
		return -1;
	}
	if (store_commit(st) < 0) {
		store_rollback(st);
		snprintf(err, errsz, "reconcile: cannot commit");
		return -1;
	}
	if (fsync(sp->incoming_fd) < 0 || fsync(sp->queue_fd) < 0) {
		snprintf(err, errsz, "reconcile: fsync: %s", strerror(errno));
		return -1;
	}
	return 0;
}

/*
 * Queue ids sort by arrival: 11 hex digits of unix milliseconds, then 5
 * random ones.  O_EXCL makes a collision a retry, never an overwrite.
 */
static void new_qid(char *qid)
{
	char rnd[8];
	int64_t ms = time_now_ms();

	random_hex(rnd, 3);
	snprintf(qid, SPOOL_QID_LEN + 1, "%011llx%.5s",
		 (unsigned long long)ms & 0xfffffffffffULL, rnd);
}

struct spool_file *spool_file_create(struct spool *sp, char *err, size_t errsz)
{
	struct spool_file *f;
	int tries;

	f = xmalloc(sizeof(*f));
	f->sp = sp;
	f->failed = 0;
	f->size = 0;
	f->buflen = 0;
	for (tries = 0; tries < 8; tries++) {
		new_qid(f->qid);
		if (faccessat(sp->queue_fd, f->qid, F_OK, 0) == 0)
			continue;
		f->fd = openat(sp->incoming_fd, f->qid,
			       O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
		if (f->fd >= 0)
			return f;
		if (errno != EEXIST)
			break;
	}
	snprintf(err, errsz, "spool/incoming: cannot create file: %s", strerror(errno));
	free(f);
	return NULL;
}

const char *spool_file_qid(const struct spool_file *f)
{
	return f->qid;
}

int64_t spool_file_size(const struct spool_file *f)
{
	return f->size;
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int flush_buffer(struct spool_file *f)
{
	if (f->failed)
		return -1;
	if (f->buflen > 0 && write_all(f->fd, f->buf, f->buflen) < 0) {
		f->failed = 1;
		return -1;
	}
	f->buflen = 0;
	return 0;
}

int spool_file_write(struct spool_file *f, const void *p, size_t n)
{
	if (f->failed)
		return -1;
	f->size += (int64_t)n;
	if (n > sizeof(f->buf) - f->buflen) {
		if (flush_buffer(f) < 0)
			return -1;
		if (n > sizeof(f->buf)) {
			if (write_all(f->fd, p, n) < 0) {
				f->failed = 1;
				return -1;
			}
			return 0;
		}
	}
	memcpy(f->buf + f->buflen, p, n);
	f->buflen += n;
	return 0;
}

void spool_file_discard(struct spool_file *f)
{
	if (f == NULL)
		return;
	close(f->fd);
	unlinkat(f->sp->incoming_fd, f->qid, 0);
	free(f);
}

struct spool *spool_file_spool(const struct spool_file *f)
{
	return f->sp;
}

int spool_file_sync_and_publish(struct spool_file *f, char *err, size_t errsz)
{
	if (flush_buffer(f) < 0 || fdatasync(f->fd) < 0) {
		snprintf(err, errsz, "spool write/fsync: %s", strerror(errno));
		return -1;
	}
	/* NOREPLACE: a queued message is never overwritten, whatever the id. */
	if (renameat2(f->sp->incoming_fd, f->qid, f->sp->queue_fd, f->qid,
		      RENAME_NOREPLACE) < 0) {
		snprintf(err, errsz, "spool rename: %s", strerror(errno));
		return -1;
	}
	return 0;
}

int spool_sync_dirs(struct spool *sp, char *err, size_t errsz)
{
	if (fsync(sp->queue_fd) < 0 || fsync(sp->incoming_fd) < 0) {
		snprintf(err, errsz, "spool directory fsync: %s", strerror(errno));
		return -1;
	}
	return 0;
}

void spool_file_unpublish(struct spool_file *f)
{
	unlinkat(f->sp->queue_fd, f->qid, 0);
}

void spool_file_close(struct spool_file *f)
{
	if (f == NULL)
		return;
	close(f->fd);
	free(f);
}
