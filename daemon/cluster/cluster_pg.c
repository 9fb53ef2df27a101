/*
 * cluster_pg: see cluster_pg.h.  All SQL is in store_cluster.c (SQLite) and
 * store_pg.c (PostgreSQL); this file is the loop and its timing.
 *
 * One round: connect if needed (LISTEN moat_row), join once, push the
 * outbox in batches, pull and apply what the others pushed since
 * cluster_state.pulled_seq, then wait up to OUTBOX_POLL_MS on the libpq
 * socket (a NOTIFY means "pull") and the stop pipe; a new outbox row is
 * seen by the next round.  Any PostgreSQL error: status DOWN, close, try
 * again every cluster_retry.
 *
 * The SQLite write transaction of an apply begins only once PostgreSQL's
 * answer is in memory: the writer lock is never held across the network.
 */
#include "cluster_pg.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cluster.h"
#include "../conf/conf.h"
#include "../log/log.h"
#include "../spool/spool_read.h"
#include "../store/store.h"
#include "../store/store_bayes.h"
#include "../store/store_cluster.h"
#include "../store/store_pg.h"
#include "../util/util.h"

#define OUTBOX_POLL_MS 50   /* a local change waits at most this long to be pushed */
#define PUSH_BATCH 200      /* outbox entries per PostgreSQL transaction */
#define PULL_BATCH 500      /* rows applied per SQLite transaction */
#define FETCH_MAX ((size_t)1 << 30) /* a quarantined file read for a push */
#define BAYES_PRUNE_EVERY_MS (3600 * 1000LL) /* learning events past retention go */
/* Learning events repeated per SQLite transaction: each may write thousands of
 * tokens, and the mail side waits for the writer lock meanwhile. */
#define BAYES_EVENTS_PER_TX 50
#define DAY_MS 86400000LL

struct cluster_pg {
	pthread_t thread;
	int started;
	int stop_pipe[2];
	char conninfo[1024];
	char db_path[1100];
	char data_dir[1024];
	int64_t node;
	int64_t retry_ms;
	struct store *st;
	struct store_pg *pg;
	struct store_cluster_state state;
	int need_pull;
	int64_t last_pull_ms;
	int64_t last_outbox; /* the outbox's newest seq after the last push */
	int64_t last_prune_ms; /* 0: not yet since start */
};

static pthread_mutex_t fetch_mu = PTHREAD_MUTEX_INITIALIZER;
static char fetch_conninfo[1024];

void cluster_pg_set_conninfo(const char *conninfo)
{
	pthread_mutex_lock(&fetch_mu);
	strlcpy_s(fetch_conninfo, conninfo, sizeof(fetch_conninfo));
	pthread_mutex_unlock(&fetch_mu);
}

static int quarantine_path(const char *data_dir, const char *qid, char *out, size_t outsz)
{
	if (!spool_qid_valid(qid, strlen(qid)))
		return -1;
	if ((size_t)snprintf(out, outsz, "%s/spool/quarantine/%s", data_dir, qid) >= outsz)
		return -1;
	return 0;
}

/* ---- quarantine files ---- */

static int load_file(const char *qid, void *arg, unsigned char **data, size_t *len)
{
	struct cluster_pg *c = arg;
	char path[1200];
	int too_big = 0;
	char *buf;

	if (quarantine_path(c->data_dir, qid, path, sizeof(path)) < 0)
		return 1;
	buf = spool_read_file(path, FETCH_MAX, len, &too_big);
	if (buf == NULL) {
		if (too_big)
			log_warn(qid, "cluster", "quarantine file too large to share");
		return 1; /* gone already, or never here */
	}
	*data = (unsigned char *)buf;
	return 0;
}

static int write_file(const char *path, const unsigned char *data, size_t len)
{
	char tmp[1300];
	size_t off = 0;
	int fd;

	snprintf(tmp, sizeof(tmp), "%s.fetch-%ld", path, (long)pthread_self() & 0xffffff);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	if (fd < 0)
		return -1;
	while (off < len) {
		ssize_t w = write(fd, data + off, len - off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			goto fail;
		off += (size_t)w;
	}
	if (fsync(fd) < 0)
		goto fail;
	close(fd);
	if (rename(tmp, path) < 0) {
		unlink(tmp);
		return -1;
	}
	return 0;
fail:
	close(fd);
	unlink(tmp);
	return -1;
}

int cluster_pg_fetch_quarantine(const char *data_dir, const char *qid)
{
	char conninfo[1024];
	char path[1200];
	char err[512];
	struct store_pg *pg;
	unsigned char *data = NULL;
	size_t len = 0;
	int rc;

	if (quarantine_path(data_dir, qid, path, sizeof(path)) < 0)
		return -1;
	if (access(path, F_OK) == 0)
		return 0;
	pthread_mutex_lock(&fetch_mu);
	strlcpy_s(conninfo, fetch_conninfo, sizeof(conninfo));
	pthread_mutex_unlock(&fetch_mu);
	if (conninfo[0] == '\0')
		return 0;
	pg = store_pg_connect(conninfo, err, sizeof(err));
	if (pg == NULL) {
		log_warn(qid, "cluster", "quarantine fetch failed: %s", err);
		return 0;
	}
	rc = store_pg_blob_get(pg, qid, &data, &len, err, sizeof(err));
	store_pg_close(pg);
	if (rc < 0) {
		log_warn(qid, "cluster", "quarantine fetch failed: %s", err);
		return 0;
	}
	if (rc > 0) {
		log_warn(qid, "cluster", "quarantine fetch: no such file in the cluster");
		return 0;
	}
	if (access(path, F_OK) != 0 && write_file(path, data, len) < 0)
		log_warn(qid, "cluster", "quarantine fetch: cannot write %s: %s", path,
			 strerror(errno));
	else
		log_info(qid, "cluster", "quarantine fetched size=%zu", len);
	free(data);
	return 0;
}

/* ---- the thread ---- */

static void set_backlog(struct cluster_pg *c)
{
	int64_t n = 0;

	if (store_cluster_outbox_count(c->st, &n) == 0)
		cluster_status_backlog(CLUSTER_PG, n);
}

/* Push every outbox entry there is now.  -1 on a PostgreSQL error. */
static int push_all(struct cluster_pg *c, char *err, size_t errsz)
{
	for (;;) {
		struct store_cluster_batch b;
		int rc;

		if (store_cluster_outbox_read(c->st, PUSH_BATCH, &b) < 0) {
			snprintf(err, errsz, "cannot read the outbox: %s", "sqlite");
			return -2;
		}
		if (b.last_seq == 0) {
			store_cluster_batch_free(&b);
			c->last_outbox = 0;
			return 0;
		}
		rc = b.n == 0 ? 0 : store_pg_push(c->pg, c->node, &b, load_file, c, err, errsz);
		if (rc == 0) {
			log_debug(NULL, "cluster", "pushed rows=%zu through=%lld", b.n,
				  (long long)b.last_seq);
			if (store_cluster_outbox_done(c->st, b.last_seq) < 0) {
				store_cluster_batch_free(&b);
				snprintf(err, errsz, "cannot clear the outbox");
				return -2;
			}
		}
		store_cluster_batch_free(&b);
		if (rc < 0)
			return -1;
	}
}

struct apply_ctx {
	struct cluster_pg *c;
	int begun;
	int failed;
	int64_t last;
	char (*gone)[64];
	size_t ngone;
	int applied;
	int bayes[STORE_BAYES_REPLAY_KEY_MISMATCH + 1]; /* events by outcome */
	int bayes_in_tx; /* events repeated in the open transaction */
};

static void drop_gone(struct cluster_pg *c, struct apply_ctx *a);

/*
 * Another node's learning of the statistical filter: repeated on this
 * node's tokens (they are not replicated), inside the batch's transaction.
 */
static void apply_bayes(struct apply_ctx *a, int64_t seq, const char *body)
{
	enum store_bayes_replay res;
	char err[512];

	if (body == NULL)
		return; /* a pruned event: nothing to undo */
	if (store_bayes_event_apply(a->c->st, body, a->c->node, &res, err, sizeof(err)) < 0) {
		log_error(NULL, "cluster", "bayes event failed seq=%lld: %s", (long long)seq, err);
		return;
	}
	a->bayes[res]++;
	a->applied++;
}

static int apply_row(int64_t seq, const char *tbl, const char *rid, const char *body, void *arg)
{
	struct apply_ctx *a = arg;
	char gone[64];
	char err[512];

	if (!a->begun) {
		if (store_begin(a->c->st) < 0) {
			a->failed = 1;
			return 1;
		}
		a->begun = 1;
	}
	a->last = seq;
	if (strcmp(tbl, "bayes_event") == 0) {
		apply_bayes(a, seq, body);
		if (++a->bayes_in_tx < BAYES_EVENTS_PER_TX)
			return 0;
		/* Commit what is applied so far; the next row begins anew. */
		if (store_cluster_set_pulled(a->c->st, a->last) < 0 ||
		    store_commit(a->c->st) < 0) {
			store_rollback(a->c->st);
			a->begun = 0;
			a->failed = 1;
			return 1;
		}
		a->c->state.pulled_seq = a->last;
		a->begun = 0;
		a->bayes_in_tx = 0;
		drop_gone(a->c, a);
		a->ngone = 0;
		return 0;
	}
	if (store_cluster_apply(a->c->st, tbl, rid, body, gone, err, sizeof(err)) < 0) {
		/* One row this node cannot take (a newer schema elsewhere): logged
		 * and passed, so that one bad row never stops the stream. */
		log_error(NULL, "cluster", "apply failed seq=%lld: %s", (long long)seq, err);
		return 0;
	}
	a->applied++;
	if (gone[0] != '\0') {
		a->gone = xrealloc(a->gone, (a->ngone + 1) * sizeof(*a->gone));
		memcpy(a->gone[a->ngone++], gone, sizeof(gone));
	}
	return 0;
}

/* After the commit: quarantine files of messages with no item left here. */
static void drop_gone(struct cluster_pg *c, struct apply_ctx *a)
{
	size_t i;

	for (i = 0; i < a->ngone; i++) {
		char path[1200];
		int left = 1;

		if (store_cluster_quarantine_left(c->st, a->gone[i], &left) == 0 && left == 0 &&
		    quarantine_path(c->data_dir, a->gone[i], path, sizeof(path)) == 0)
			(void)unlink(path);
	}
}

/* After the commit: what the other nodes' learning did here. */
static void log_bayes(const struct apply_ctx *a)
{
	const int *b = a->bayes;

	if (b[STORE_BAYES_REPLAY_LEARNED] + b[STORE_BAYES_REPLAY_MOVED] +
		    b[STORE_BAYES_REPLAY_FORGOTTEN] + b[STORE_BAYES_REPLAY_ALREADY] >
	    0)
		log_info(NULL, "cluster", "bayes applied learned=%d moved=%d forgotten=%d"
			 " already=%d", b[STORE_BAYES_REPLAY_LEARNED], b[STORE_BAYES_REPLAY_MOVED],
			 b[STORE_BAYES_REPLAY_FORGOTTEN], b[STORE_BAYES_REPLAY_ALREADY]);
	if (b[STORE_BAYES_REPLAY_KEY_MISMATCH] > 0)
		log_warn(NULL, "cluster", "BAYES KEY MISMATCH events=%d: this node learned under"
			 " another token key before it joined and cannot use the others' learning"
			 " (docs/cluster.md)", b[STORE_BAYES_REPLAY_KEY_MISMATCH]);
}

/*
 * Learning events older than the retention, here (this connection is the
 * applying one: the deletes are not pushed) and in PostgreSQL.
 */
static int prune_bayes(struct cluster_pg *c, char *err, size_t errsz)
{
	int64_t before = time_now_ms() -
			 (int64_t)STORE_BAYES_EVENT_RETENTION_DAYS * DAY_MS;
	int64_t here = 0, there = 0;

	if (store_begin(c->st) < 0)
		goto local_fail;
	if (store_bayes_event_prune(c->st, before, &here) < 0 || store_commit(c->st) < 0) {
		store_rollback(c->st);
		goto local_fail;
	}
	if (store_pg_bayes_prune(c->pg, before, &there, err, errsz) < 0)
		return -1;
	c->last_prune_ms = time_mono_ms();
	if (here + there > 0)
		log_info(NULL, "cluster", "bayes events pruned local=%lld cluster=%lld days=%d",
			 (long long)here, (long long)there, STORE_BAYES_EVENT_RETENTION_DAYS);
	return 0;
local_fail:
	snprintf(err, errsz, "cannot prune learning events");
	return -2;
}

/* Pull and apply until PostgreSQL has nothing newer. */
static int pull_all(struct cluster_pg *c, int64_t skip, char *err, size_t errsz)
{
	int total = 0;

	for (;;) {
		struct apply_ctx a;
		int n = 0;

		memset(&a, 0, sizeof(a));
		a.c = c;
		a.last = c->state.pulled_seq;
		if (store_pg_pull(c->pg, c->state.pulled_seq, skip, PULL_BATCH, apply_row, &a, &n,
				  err, errsz) < 0)
			return -1;
		if (a.failed) {
			free(a.gone);
			log_bayes(&a);
			snprintf(err, errsz, "cannot begin or commit a transaction");
			return -2;
		}
		if (a.begun) {
			if (store_cluster_set_pulled(c->st, a.last) < 0 ||
			    store_commit(c->st) < 0) {
				store_rollback(c->st);
				free(a.gone);
				snprintf(err, errsz, "cannot commit applied rows");
				return -2;
			}
			c->state.pulled_seq = a.last;
			drop_gone(c, &a);
		}
		log_bayes(&a);
		free(a.gone);
		total += a.applied;
		if (n < PULL_BATCH)
			break;
	}
	if (total > 0)
		log_debug(NULL, "cluster", "applied rows=%d through=%lld", total,
			  (long long)c->state.pulled_seq);
	c->last_pull_ms = time_mono_ms();
	return 0;
}

/*
 * First contact of this database with the cluster, under a lock so that
 * nodes starting together do not all seed: the first seeds PostgreSQL with
 * every shared row it has; a later one takes the cluster's rows over its own.
 */
static int join(struct cluster_pg *c, char *err, size_t errsz)
{
	int has = 0;
	int rc;

	if (store_pg_join_lock(c->pg, 1, err, errsz) < 0)
		return -1;
	rc = store_pg_has_rows(c->pg, &has, err, errsz);
	if (rc == 0 && !has) {
		if (store_cluster_enqueue_all(c->st) < 0) {
			snprintf(err, errsz, "cannot list the shared rows");
			rc = -2;
		} else {
			rc = push_all(c, err, errsz);
		}
	} else if (rc == 0) {
		c->state.pulled_seq = 0;
		rc = pull_all(c, -1, err, errsz);
	}
	if (rc == 0) {
		if (store_begin(c->st) < 0 || store_cluster_set_joined(c->st) < 0 ||
		    store_commit(c->st) < 0) {
			store_rollback(c->st);
			snprintf(err, errsz, "cannot record the join");
			rc = -2;
		} else {
			c->state.joined = 1;
			log_notice(NULL, "cluster", "joined node=%lld how=%s pulled_seq=%lld",
				   (long long)c->node, has ? "pulled" : "seeded",
				   (long long)c->state.pulled_seq);
		}
	}
	if (rc != -1)
		(void)store_pg_join_lock(c->pg, 0, err, errsz);
	return rc;
}

static int stopping(struct cluster_pg *c, int wait_ms)
{
	struct pollfd p = { c->stop_pipe[0], POLLIN, 0 };

	return poll(&p, 1, wait_ms) > 0;
}

static int round_trip(struct cluster_pg *c, char *err, size_t errsz)
{
	int64_t last = 0;
	int rc;

	if (!c->state.joined) {
		rc = join(c, err, errsz);
		if (rc < 0)
			return rc;
	}
	if (store_cluster_outbox_last(c->st, &last) == 0 && last != 0) {
		rc = push_all(c, err, errsz);
		if (rc < 0)
			return rc;
	}
	/* A NOTIFY lost while reconnecting is made up for every cluster_retry. */
	if (c->need_pull || time_mono_ms() - c->last_pull_ms >= c->retry_ms) {
		c->need_pull = 0;
		rc = pull_all(c, c->node, err, errsz);
		if (rc < 0)
			return rc;
	}
	if (c->last_prune_ms == 0 || time_mono_ms() - c->last_prune_ms >= BAYES_PRUNE_EVERY_MS) {
		rc = prune_bayes(c, err, errsz);
		if (rc < 0)
			return rc;
	}
	cluster_status_backlog(CLUSTER_PG, 0);
	return 0;
}

static void *run(void *arg)
{
	struct cluster_pg *c = arg;
	char err[512];

	while (!stopping(c, 0)) {
		struct pollfd p[2];
		int rc;

		if (c->pg == NULL) {
			c->pg = store_pg_connect(c->conninfo, err, sizeof(err));
			if (c->pg != NULL && store_pg_listen(c->pg, err, sizeof(err)) < 0) {
				store_pg_close(c->pg);
				c->pg = NULL;
			}
			if (c->pg == NULL) {
				cluster_status_set(CLUSTER_PG, CLUSTER_DOWN, err);
				set_backlog(c);
				if (stopping(c, (int)c->retry_ms))
					break;
				continue;
			}
			cluster_status_set(CLUSTER_PG, CLUSTER_UP, NULL);
			c->need_pull = 1;
		}
		rc = round_trip(c, err, sizeof(err));
		if (rc == -1) {
			cluster_status_set(CLUSTER_PG, CLUSTER_DOWN, err);
			store_pg_close(c->pg);
			c->pg = NULL;
			set_backlog(c);
			if (stopping(c, (int)c->retry_ms))
				break;
			continue;
		}
		if (rc < 0) {
			/* The local database was busy or failed: try the round again later. */
			log_warn(NULL, "cluster", "round failed: %s", err);
			if (stopping(c, (int)c->retry_ms))
				break;
			continue;
		}
		p[0].fd = c->stop_pipe[0];
		p[0].events = POLLIN;
		p[1].fd = store_pg_socket(c->pg);
		p[1].events = POLLIN;
		p[0].revents = p[1].revents = 0;
		if (poll(p, 2, OUTBOX_POLL_MS) < 0 && errno != EINTR)
			continue;
		if (p[0].revents != 0)
			break;
		if (p[1].revents != 0) {
			int got = 0;

			if (store_pg_notified(c->pg, &got, err, sizeof(err)) < 0) {
				cluster_status_set(CLUSTER_PG, CLUSTER_DOWN, err);
				store_pg_close(c->pg);
				c->pg = NULL;
				set_backlog(c);
				if (stopping(c, (int)c->retry_ms))
					break;
				continue;
			}
			if (got)
				c->need_pull = 1;
		}
	}
	return NULL;
}

struct cluster_pg *cluster_pg_start(const struct conf *conf, const char *db_path,
				    char *err, size_t errsz)
{
	struct cluster_pg *c = xcalloc(1, sizeof(*c));

	c->stop_pipe[0] = c->stop_pipe[1] = -1;
	strlcpy_s(c->conninfo, conf->cluster_pg, sizeof(c->conninfo));
	strlcpy_s(c->db_path, db_path, sizeof(c->db_path));
	strlcpy_s(c->data_dir, conf->data_dir, sizeof(c->data_dir));
	c->node = conf->cluster_node;
	c->retry_ms = conf->cluster_retry_ms;
	c->st = store_open(db_path, 0, err, errsz);
	if (c->st == NULL)
		goto fail;
	/* For its whole life: this connection's writes are the cluster's, not ours. */
	store_cluster_set_applying(c->st, 1);
	if (store_cluster_state_get(c->st, &c->state) < 0) {
		snprintf(err, errsz, "cluster: cannot read cluster_state");
		goto fail;
	}
	if (pipe2(c->stop_pipe, O_CLOEXEC | O_NONBLOCK) < 0) {
		snprintf(err, errsz, "cluster: pipe: %s", strerror(errno));
		goto fail;
	}
	cluster_pg_set_conninfo(conf->cluster_pg);
	if (pthread_create(&c->thread, NULL, run, c) != 0) {
		snprintf(err, errsz, "cluster: cannot start its thread");
		goto fail;
	}
	c->started = 1;
	return c;
fail:
	cluster_pg_stop(c);
	return NULL;
}

void cluster_pg_stop(struct cluster_pg *c)
{
	if (c == NULL)
		return;
	if (c->started) {
		ssize_t w = write(c->stop_pipe[1], "x", 1);

		(void)w;
		pthread_join(c->thread, NULL);
	}
	cluster_pg_set_conninfo("");
	store_pg_close(c->pg);
	store_close(c->st);
	if (c->stop_pipe[0] >= 0)
		close(c->stop_pipe[0]);
	if (c->stop_pipe[1] >= 0)
		close(c->stop_pipe[1]);
	free(c);
}
