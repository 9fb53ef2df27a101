/*
 * spool_inject: see spool_inject.h.  Called on worker threads (the digest
 * job, the alert notifier) and on HTTP threads (a digest sent now), each
 * with its own store connection; never on the event loop.
 */
#include "spool_inject.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "../store/store.h"
#include "../util/util.h"

#define INJECT_RENAME_TRIES 5

int spool_inject_open(const char *data_dir, const char *sync, struct spool_inject_dirs *d,
		      char *err, size_t errsz)
{
	char path[1200];

	snprintf(path, sizeof(path), "%s/spool/incoming", data_dir);
	d->incoming = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	snprintf(path, sizeof(path), "%s/spool/queue", data_dir);
	d->queue = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	d->per_file_sync = sync == NULL || strcmp(sync, "file") == 0;
	if (d->incoming < 0 || d->queue < 0) {
		snprintf(err, errsz, "%s/spool: %s", data_dir, strerror(errno));
		if (d->incoming >= 0)
			close(d->incoming);
		if (d->queue >= 0)
			close(d->queue);
		d->incoming = d->queue = -1;
		return -1;
	}
	return 0;
}

void spool_inject_close(struct spool_inject_dirs *d)
{
	if (d->incoming >= 0)
		close(d->incoming);
	if (d->queue >= 0)
		close(d->queue);
	d->incoming = d->queue = -1;
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* spool/incoming/d<hex>: never a queue id, so start-up removes it. */
int spool_inject_write(const struct spool_inject_dirs *d, const char *data, size_t len,
		       struct spool_inject_msg *m, char *err, size_t errsz)
{
	char hex[16];
	int fd;

	random_hex(hex, 7);
	snprintf(m->tmp, sizeof(m->tmp), "d%s", hex);
	fd = openat(d->incoming, m->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
	if (fd < 0) {
		snprintf(err, errsz, "spool/incoming/%s: %s", m->tmp, strerror(errno));
		m->tmp[0] = '\0';
		return -1;
	}
	if (write_all(fd, data, len) < 0 || (d->per_file_sync && fdatasync(fd) < 0)) {
		snprintf(err, errsz, "spool/incoming/%s: %s", m->tmp, strerror(errno));
		close(fd);
		unlinkat(d->incoming, m->tmp, 0);
		m->tmp[0] = '\0';
		return -1;
	}
	close(fd);
	m->size = (int64_t)len;
	return 0;
}

int spool_inject_publish(const struct spool_inject_dirs *d, struct spool_inject_msg *m,
			 char *err, size_t errsz)
{
	int tries;

	for (tries = 0; tries < INJECT_RENAME_TRIES; tries++) {
		spool_new_qid(m->qid);
		if (renameat2(d->incoming, m->tmp, d->queue, m->qid, RENAME_NOREPLACE) == 0) {
			m->published = 1;
			return 0;
		}
		if (errno != EEXIST)
			break;
	}
	snprintf(err, errsz, "spool rename %s: %s", m->tmp, strerror(errno));
	return -1;
}

int spool_inject_sync(const struct spool_inject_dirs *d, char *err, size_t errsz)
{
	if (!d->per_file_sync) {
		if (syncfs(d->queue) < 0) {
			snprintf(err, errsz, "spool syncfs: %s", strerror(errno));
			return -1;
		}
		return 0;
	}
	if (fsync(d->queue) < 0 || fsync(d->incoming) < 0) {
		snprintf(err, errsz, "spool directory fsync: %s", strerror(errno));
		return -1;
	}
	return 0;
}

void spool_inject_undo(const struct spool_inject_dirs *d, struct spool_inject_msg *m,
		       size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (m[i].published)
			unlinkat(d->queue, m[i].qid, 0);
		else if (m[i].tmp[0] != '\0')
			unlinkat(d->incoming, m[i].tmp, 0);
		m[i].published = 0;
		m[i].tmp[0] = '\0';
	}
}

int spool_inject_rows(struct store *st, const struct spool_inject_msg *m, const char *helo,
		      const char *sender, const char *const *rcpts, size_t nrcpts,
		      int64_t now, char *err, size_t errsz)
{
	struct store_queue_msg q;

	memset(&q, 0, sizeof(q));
	q.qid = m->qid;
	q.sender = sender;
	q.client_addr = "127.0.0.1";
	q.client_name = "localhost";
	q.helo = helo;
	q.size = m->size;
	q.received_at = now;
	q.rcpts = rcpts;
	q.nrcpts = nrcpts;
	return store_queue_insert(st, &q, err, errsz);
}

int spool_inject(struct store *st, const char *data_dir, const char *sync, const char *helo,
		 const char *data, size_t len, const char *sender, const char *const *rcpts,
		 size_t nrcpts, int (*in_tx)(struct store *st, const char *qid, void *arg),
		 void *arg, char qid[SPOOL_QID_LEN + 1], char *err, size_t errsz)
{
	struct spool_inject_dirs d;
	struct spool_inject_msg m;
	int rc = -1;

	memset(&m, 0, sizeof(m));
	if (spool_inject_open(data_dir, sync, &d, err, errsz) < 0)
		return -1;
	d.per_file_sync = 1; /* one message: no file-system-wide sync */
	if (spool_inject_write(&d, data, len, &m, err, errsz) < 0)
		goto out;
	if (spool_inject_publish(&d, &m, err, errsz) < 0 || spool_inject_sync(&d, err, errsz) < 0)
		goto undo;
	if (store_begin(st) < 0) {
		snprintf(err, errsz, "spool inject: database busy");
		goto undo;
	}
	if (spool_inject_rows(st, &m, helo, sender, rcpts, nrcpts, time_now_ms(), err,
			      errsz) < 0)
		goto rollback;
	if (in_tx != NULL && in_tx(st, m.qid, arg) < 0) {
		snprintf(err, errsz, "spool inject: the caller's update failed");
		goto rollback;
	}
	if (store_commit(st) < 0) {
		snprintf(err, errsz, "spool inject: commit failed");
		goto rollback;
	}
	memcpy(qid, m.qid, sizeof(m.qid));
	rc = 0;
	goto out;
rollback:
	store_rollback(st);
undo:
	spool_inject_undo(&d, &m, 1);
out:
	spool_inject_close(&d);
	return rc;
}
