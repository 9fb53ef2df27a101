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
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "../log/log.h"
#include "../util/util.h"

#define SPOOL_WBUF (64 * 1024)

/*
 * Files created ahead.  Creating an inode can take milliseconds (ext4
 * allocating after many deletes), so the event loop never does it: a pool
 * thread keeps up to POOL_MAX empty files open in incoming/ under
 * temporary names, refilling when fewer than POOL_LOW are left.  The queue
 * id is given when a message takes a file, so ids still follow arrival; the
 * writer renames the file to queue/<qid>.  An empty pool (a burst faster
 * than the disk) falls back to creating the file in the caller, counted.
 */
#define POOL_MAX 64
#define POOL_LOW 24
#define POOL_NAME_LEN 16 /* "t" + 15 hex digits: never a queue id */

struct pool_slot {
	int fd;
	char name[POOL_NAME_LEN + 1];
};

struct spool {
	char dir[1100];      /* <data_dir>/spool */
	int incoming_fd;     /* directory fds, for fsync and *at() calls */
	int queue_fd;
	int quarantine_fd;   /* spool/quarantine: quarantined messages */
	int sync_fs;         /* one syncfs() per group commit (spool_set_sync) */
	int64_t quarantine_lifetime_ms; /* set before the writer starts */
	uint64_t name_seq;   /* temporary names of pool files; pool thread only */

	pthread_mutex_t mu;  /* guards the pool fields below */
	pthread_cond_t cond;
	pthread_t thread;
	int pool_running;
	int pool_stopping;
	struct pool_slot pool[POOL_MAX]; /* FIFO ring */
	size_t pool_head;
	size_t pool_count;
	uint64_t pool_misses;

	int64_t free_bytes;  /* spool_free_bytes(); atomic */
};

struct spool_file {
	struct spool *sp;
	char qid[SPOOL_QID_LEN + 1];
	char name[POOL_NAME_LEN + 1]; /* its name in incoming/ */
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
	sp->quarantine_fd = -1;
	pthread_mutex_init(&sp->mu, NULL);
	pthread_cond_init(&sp->cond, NULL);
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
	snprintf(path, sizeof(path), "%s/quarantine", sp->dir);
	if (make_dir(path, err, errsz) < 0)
		goto fail;
	sp->quarantine_fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (sp->quarantine_fd < 0) {
		snprintf(err, errsz, "%s: %s", path, strerror(errno));
		goto fail;
	}
	sp->free_bytes = -1;
	spool_measure_free(sp);
	return sp;
fail:
	spool_free(sp);
	return NULL;
}

enum spool_err spool_err_from_errno(int e)
{
	return e == ENOSPC || e == EDQUOT ? SPOOL_ERR_NOSPACE : SPOOL_ERR_IO;
}

int64_t spool_free_bytes(const struct spool *sp)
{
	return __atomic_load_n(&sp->free_bytes, __ATOMIC_RELAXED);
}

int spool_measure_free(struct spool *sp)
{
	struct statvfs vfs;
	int64_t n;

	/* The queue directory's file system: where accepted mail lives. */
	if (fstatvfs(sp->queue_fd, &vfs) < 0)
		return -1;
	/* f_bavail: what an unprivileged user may still use. */
	n = (int64_t)vfs.f_bavail * (int64_t)vfs.f_frsize;
	__atomic_store_n(&sp->free_bytes, n, __ATOMIC_RELAXED);
	return 0;
}

void spool_free(struct spool *sp)
{
	if (sp == NULL)
		return;
	spool_pool_stop(sp);
	pthread_mutex_destroy(&sp->mu);
	pthread_cond_destroy(&sp->cond);
	if (sp->incoming_fd >= 0)
		close(sp->incoming_fd);
	if (sp->queue_fd >= 0)
		close(sp->queue_fd);
	if (sp->quarantine_fd >= 0)
		close(sp->quarantine_fd);
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
 * Queue ids sort by arrival: 11 hex digits of unix milliseconds, then 5 of
 * a per-process counter that starts at random, so two ids of one process
 * never collide; RENAME_NOREPLACE (or link()) at publish guards the rest.
 */
static uint32_t qid_seq;
static pthread_once_t qid_seq_once = PTHREAD_ONCE_INIT;

static void qid_seq_seed(void)
{
	random_bytes(&qid_seq, sizeof(qid_seq));
}

void spool_new_qid(char qid[SPOOL_QID_LEN + 1])
{
	int64_t ms = time_now_ms();
	uint32_t seq;

	pthread_once(&qid_seq_once, qid_seq_seed);
	seq = __atomic_fetch_add(&qid_seq, 1, __ATOMIC_RELAXED);
	snprintf(qid, SPOOL_QID_LEN + 1, "%011llx%05x",
		 (unsigned long long)ms & 0xfffffffffffULL, (unsigned)(seq & 0xfffff));
}

/* Creates incoming/<name> for the pool or a miss; -1 with errno set. */
static int create_incoming(struct spool *sp, char *name, uint64_t seq)
{
	snprintf(name, POOL_NAME_LEN + 1, "t%015llx", (unsigned long long)seq & 0xfffffffffffffffULL);
	return openat(sp->incoming_fd, name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
}

static void *pool_main(void *arg)
{
	struct spool *sp = arg;
	struct pool_slot fresh[POOL_MAX];
	size_t n, i;

	pthread_mutex_lock(&sp->mu);
	while (!sp->pool_stopping) {
		size_t want;

		if (sp->pool_count >= POOL_LOW) {
			pthread_cond_wait(&sp->cond, &sp->mu);
			continue;
		}
		want = POOL_MAX - sp->pool_count;
		pthread_mutex_unlock(&sp->mu);
		for (n = 0; n < want; n++) {
			fresh[n].fd = create_incoming(sp, fresh[n].name, sp->name_seq++);
			if (fresh[n].fd < 0)
				break;
		}
		if (n < want && n == 0) {
			log_warn(NULL, "spool", "pool cannot create file in spool/incoming: %s",
				 strerror(errno));
		}
		pthread_mutex_lock(&sp->mu);
		for (i = 0; i < n; i++) {
			size_t at = (sp->pool_head + sp->pool_count) % POOL_MAX;

			sp->pool[at] = fresh[i];
			sp->pool_count++;
		}
		if (n == 0 && !sp->pool_stopping) {
			/* Disk full or similar: try again when asked, not in a spin. */
			pthread_cond_wait(&sp->cond, &sp->mu);
		}
	}
	pthread_mutex_unlock(&sp->mu);
	return NULL;
}

int spool_pool_start(struct spool *sp, char *err, size_t errsz)
{
	int rc;

	random_bytes(&sp->name_seq, sizeof(sp->name_seq));
	sp->pool_stopping = 0;
	rc = pthread_create(&sp->thread, NULL, pool_main, sp);
	if (rc != 0) {
		snprintf(err, errsz, "spool pool thread: %s", strerror(rc));
		return -1;
	}
	sp->pool_running = 1;
	return 0;
}

void spool_pool_stop(struct spool *sp)
{
	if (!sp->pool_running)
		return;
	pthread_mutex_lock(&sp->mu);
	sp->pool_stopping = 1;
	pthread_cond_signal(&sp->cond);
	pthread_mutex_unlock(&sp->mu);
	pthread_join(sp->thread, NULL);
	sp->pool_running = 0;
	while (sp->pool_count > 0) {
		struct pool_slot *slot = &sp->pool[sp->pool_head];

		close(slot->fd);
		unlinkat(sp->incoming_fd, slot->name, 0);
		sp->pool_head = (sp->pool_head + 1) % POOL_MAX;
		sp->pool_count--;
	}
	if (sp->pool_misses > 0)
		log_info(NULL, "spool", "pool misses=%llu", (unsigned long long)sp->pool_misses);
}

/* Takes a file from the pool: 0, or -1 when it is empty. */
static int pool_take(struct spool *sp, struct spool_file *f)
{
	int got = 0;

	pthread_mutex_lock(&sp->mu);
	if (sp->pool_count > 0) {
		struct pool_slot *slot = &sp->pool[sp->pool_head];

		f->fd = slot->fd;
		memcpy(f->name, slot->name, sizeof(f->name));
		sp->pool_head = (sp->pool_head + 1) % POOL_MAX;
		sp->pool_count--;
		got = 1;
	} else {
		sp->pool_misses++;
	}
	if (sp->pool_running && sp->pool_count < POOL_LOW)
		pthread_cond_signal(&sp->cond);
	pthread_mutex_unlock(&sp->mu);
	return got ? 0 : -1;
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
	spool_new_qid(f->qid);
	if (pool_take(sp, f) == 0)
		return f;
	for (tries = 0; tries < 8; tries++) {
		uint64_t seq;

		random_bytes(&seq, sizeof(seq));
		f->fd = create_incoming(sp, f->name, seq);
		if (f->fd >= 0)
			return f;
		if (errno != EEXIST)
			break;
	}
	{
		int e = errno; /* the caller maps it to a reply */

		snprintf(err, errsz, "spool/incoming: cannot create file: %s", strerror(e));
		free(f);
		errno = e;
	}
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

/* failed holds the errno of the first failure; no space is known at once. */
static void write_failed(struct spool_file *f)
{
	f->failed = errno != 0 ? errno : EIO;
	if (spool_err_from_errno(f->failed) == SPOOL_ERR_NOSPACE)
		__atomic_store_n(&f->sp->free_bytes, 0, __ATOMIC_RELAXED);
}

enum spool_err spool_file_error(const struct spool_file *f)
{
	return f->failed ? spool_err_from_errno(f->failed) : SPOOL_OK;
}

static int flush_buffer(struct spool_file *f)
{
	if (f->failed)
		return -1;
	if (f->buflen > 0 && write_all(f->fd, f->buf, f->buflen) < 0) {
		write_failed(f);
		return -1;
	}
	f->buflen = 0;
	return 0;
}

int spool_file_read_all(struct spool_file *f, char **out, size_t *len)
{
	size_t n, disk, got = 0;
	char *buf;

	*out = NULL;
	*len = 0;
	if (f->failed || f->size < 0 || (uint64_t)f->size < f->buflen)
		return -1;
	n = (size_t)f->size;
	buf = xmalloc(n + 1);
	/*
	 * The tail still in the write buffer is copied from there before it is
	 * flushed; only what went to the file earlier is read back.  A message
	 * smaller than the buffer (most mail) costs no read at all.
	 */
	disk = n - f->buflen;
	memcpy(buf + disk, f->buf, f->buflen);
	if (flush_buffer(f) < 0) {
		free(buf);
		return -1;
	}
	while (got < disk) {
		ssize_t r = pread(f->fd, buf + got, disk - got, (off_t)got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			free(buf);
			return -1;
		}
		got += (size_t)r;
	}
	buf[n] = '\0';
	*out = buf;
	*len = n;
	return 0;
}

int spool_file_rewrite(struct spool_file *f, const char *p, size_t n)
{
	size_t done = 0;

	if (f->failed || flush_buffer(f) < 0)
		return -1;
	while (done < n) {
		ssize_t w = pwrite(f->fd, p + done, n - done, (off_t)done);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			write_failed(f);
			return -1;
		}
		done += (size_t)w;
	}
	if (ftruncate(f->fd, (off_t)n) < 0) {
		write_failed(f);
		return -1;
	}
	f->size = (int64_t)n;
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
				write_failed(f);
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
	unlinkat(f->sp->incoming_fd, f->name, 0);
	free(f);
}

struct spool *spool_file_spool(const struct spool_file *f)
{
	return f->sp;
}

void spool_set_sync(struct spool *sp, int whole_fs)
{
	sp->sync_fs = whole_fs;
}

void spool_set_quarantine_lifetime(struct spool *sp, int64_t ms)
{
	sp->quarantine_lifetime_ms = ms;
}

int64_t spool_quarantine_lifetime(const struct spool *sp)
{
	/* 14 days unless configured (conf.c quarantine_lifetime). */
	return sp->quarantine_lifetime_ms > 0 ? sp->quarantine_lifetime_ms
					      : (int64_t)14 * 86400000;
}

int spool_file_sync_and_publish(struct spool_file *f, char *err, size_t errsz)
{
	/* With sync_fs the data reaches the disk in spool_sync_dirs(): before
	 * the rows are committed, like everything else of the batch. */
	if (flush_buffer(f) < 0 || (!f->sp->sync_fs && fdatasync(f->fd) < 0)) {
		if (!f->failed)
			write_failed(f);
		snprintf(err, errsz, "spool write/fsync: %s", strerror(f->failed));
		return -1;
	}
	/* NOREPLACE: a queued message is never overwritten, whatever the id. */
	if (renameat2(f->sp->incoming_fd, f->name, f->sp->queue_fd, f->qid,
		      RENAME_NOREPLACE) < 0) {
		snprintf(err, errsz, "spool rename: %s", strerror(errno));
		return -1;
	}
	return 0;
}

int spool_sync_dirs(struct spool *sp, char *err, size_t errsz)
{
	/*
	 * One flush for the batch: every file's data, its rename and the
	 * directories (syncfs reports write-back errors since Linux 5.8).
	 */
	if (sp->sync_fs) {
		if (syncfs(sp->queue_fd) < 0) {
			snprintf(err, errsz, "spool syncfs: %s", strerror(errno));
			return -1;
		}
		return 0;
	}
	if (fsync(sp->queue_fd) < 0 || fsync(sp->incoming_fd) < 0 ||
	    fsync(sp->quarantine_fd) < 0) {
		snprintf(err, errsz, "spool directory fsync: %s", strerror(errno));
		return -1;
	}
	return 0;
}

void spool_file_unpublish(struct spool_file *f)
{
	unlinkat(f->sp->queue_fd, f->qid, 0);
	unlinkat(f->sp->quarantine_fd, f->qid, 0);
}

int spool_file_quarantine(struct spool_file *f, char *err, size_t errsz)
{
	if (linkat(f->sp->queue_fd, f->qid, f->sp->quarantine_fd, f->qid, 0) < 0) {
		snprintf(err, errsz, "spool quarantine link: %s", strerror(errno));
		return -1;
	}
	return 0;
}

void spool_file_unqueue(struct spool_file *f)
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
