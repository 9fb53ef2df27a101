/*
 * queue_runner: takes due recipients from the queue index and delivers
 * them with smtp_client, on the mail event loop.
 *
 * Threads.  The loop never touches SQLite or unlinks a file: one worker
 * thread with its own connection does (a) LEASE — pick up to N due rows
 * through queue_rcpt_due, push their next_attempt an hour ahead and set
 * leased, expire those past the queue lifetime; (b) OUTCOME — write each
 * recipient's result, delete a message whose recipients are all final
 * (rows first, then the spool file: a crash in between leaves an orphan
 * file that start-up reconciliation removes), build DSNs; (c) PURGE — drop
 * dead mail older than dead_retention.  The thread is a util/worker: each
 * job comes back to the loop in done() with its result (leased rows, a
 * DSN).  Outcomes go first: run_batch commits every outcome waiting as one
 * group before the next lease or purge, and files are unlinked only when
 * no job waits.
 *
 * Memory is bounded: at most max_inflight recipients are leased at a
 * time; nothing else of the queue is in memory.  A crash at any moment
 * loses nothing: an in-flight row stays leased in the database and the
 * next start makes it due again (delivery at least once; a duplicate only
 * when the crash falls between the remote 250 and our commit).
 *
 * Loop objects: a dest per destination key ("downstream", "smarthost",
 * "mx:<domain>") with its FIFO of qmsgs (one message's recipients for that
 * destination), its resolved addresses and its connections (qconn, each
 * owning one smtp_client).  A dest lives while it has messages or
 * connections.  DNS callbacks carry the dest id, not a pointer.
 */
#include "queue.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <jansson.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../conf/conf.h"
#include "../dns/dns.h"
#include "../log/log.h"
#include "../smtp/smtp_client.h"
#include "../spool/spool.h"
#include "../spool/spool_read.h"
#include "../store/store.h"
#include "../store/store_event.h"
#include "../util/util.h"
#include "../util/worker.h"

#define LEASE_MS (3600 * 1000)
#define LEASE_BATCH 500
#define PURGE_EVERY_MS 60000
#define MAX_TARGETS 32
#define DEST_BUCKETS 512
#define KEY_BUCKETS 4096
#define DSN_MAX (256 * 1024)
#define DSN_HEADERS_MAX (64 * 1024)

/* ---- worker jobs and results ------------------------------------------------ */

enum job_kind { J_LEASE, J_OUTCOME, J_PURGE };

struct out_rcpt {
	char *rcpt;
	int seq;
	enum store_outcome o;
	char text[SMTP_CLIENT_TEXT_MAX];
	int64_t next_attempt;
};

struct row;

struct job {
	struct worker_job wj;      /* first: the worker links jobs through it */
	enum job_kind kind;
	int64_t posted_ms;         /* monotonic: how long outcomes wait */
	int limit;                 /* J_LEASE */
	/* J_OUTCOME: one message */
	char qid[SPOOL_QID_LEN + 1];
	char *sender;
	char *auth_user;
	char *route;
	char *host;                /* J_OUTCOME: the server talked to, or NULL (none reached) */
	int64_t attempt_ms;        /* J_OUTCOME: when the attempt ended */
	int64_t received_at;
	struct out_rcpt *rcpts;
	size_t nrcpts;
	int want_dsn;              /* J_OUTCOME: build a DSN after the commit */
	/* results, for done() on the loop */
	struct row *rows;          /* J_LEASE: leased rows */
	size_t nrows;
	int full;
	char *dsn;                 /* J_OUTCOME: a DSN to send, message text */
	size_t dsn_len;
	char *dsn_to;
};

struct row {                   /* a leased recipient, copied out of SQLite */
	char qid[SPOOL_QID_LEN + 1];
	char *rcpt;
	char *sender;
	char *auth_user;
	int64_t size;
	int64_t received_at;
	int64_t start_ms;          /* max(received_at, released_at) */
	int attempts;
	int smtputf8;
	int body_8bit;
	int seq;
	char *edit;                /* delivery edit (JSON) or NULL */
};

/* ---- loop objects -------------------------------------------------------------- */

struct dest;

struct qmsg {
	struct qmsg *next;
	struct dest *dest;
	char qid[SPOOL_QID_LEN + 1];
	char *sender;
	char *auth_user;
	char **rcpts;
	int *attempts;
	int *seqs;
	char **rcpt_to;            /* plus method: the RCPT TO of rcpts[i], else NULL */
	size_t nrcpts;
	size_t cap;
	int64_t size;
	int64_t received_at;
	int64_t start_ms;
	int smtputf8;
	int body_8bit;
	int fd;
	/*
	 * The delivery edit every recipient here shares (recipients of one
	 * message go into one transaction only when their edits are equal).
	 */
	char *edit;
	int has_edit;              /* qe parsed */
	int plus;                  /* the folder went into RCPT TO (plus method) */
	struct queue_edit qe;
	struct smtp_client_msg cm;
	int *codes;
	char (*texts)[SMTP_CLIENT_TEXT_MAX];
};

struct qconn {
	struct qconn *next;
	struct dest *dest;
	struct smtp_client *client;
	int pulled;                /* got past session set-up at least once */
};

enum dest_state { D_RESOLVING, D_READY };

struct dest {
	struct queue_runner *q;
	struct dest *hnext;
	struct dest *next;         /* all dests */
	struct dest *prev;
	uint64_t id;
	char key[300];
	enum queue_route_kind kind;
	char domain[256];
	enum dest_state state;
	struct queue_hostport names[QUEUE_MAX_HOSTS];
	size_t nnames;
	size_t ni;
	int aaaa_phase;
	struct smtp_client_target targets[MAX_TARGETS];
	size_t ntargets;
	struct qmsg *head;
	struct qmsg **tail;
	size_t nqueued;
	struct qconn *conns;
	int nconns;
};

struct keynode {
	struct keynode *next;
	char *key;
};

struct queue_runner {
	struct event_base *base;
	const struct conf *conf;
	struct dns *dns;
	struct spool *spool;
	struct spool_writer *writer;
	struct queue_routes routes;
	const char *data_dir;
	SSL_CTX *ssl_opportunistic;
	SSL_CTX *ssl_verify;

	/* worker thread */
	struct worker *worker;
	struct store *st;
	struct gone {              /* files of committed messages, not yet unlinked */
		char (*qids)[SPOOL_QID_LEN + 1];
		size_t n;
		size_t cap;
	} later;

	/* loop */
	int closing;               /* queue_runner_free() began: done() only frees */
	struct event *poll_ev;
	int64_t last_purge;
	int fetching;
	int fetch_again;
	int inflight;              /* leased recipients held in memory */
	int max_inflight;
	int total_conns;
	uint64_t next_dest_id;
	struct dest *dest_table[DEST_BUCKETS];
	struct dest *dests;
	struct keynode *keys[KEY_BUCKETS]; /* in-flight "qid seq rcpt" */
};

static uint32_t hash_str(const char *s)
{
	uint32_t h = 2166136261u;

	for (; *s != '\0'; s++) {
		h ^= (unsigned char)*s;
		h *= 16777619u;
	}
	return h;
}

/* ---- in-flight set ------------------------------------------------------------------ */

static void flight_key(char *out, size_t outsz, const char *qid, int seq, const char *rcpt)
{
	snprintf(out, outsz, "%s %d %s", qid, seq, rcpt);
}

static int flight_has(struct queue_runner *q, const char *key)
{
	struct keynode *n;

	for (n = q->keys[hash_str(key) % KEY_BUCKETS]; n != NULL; n = n->next)
		if (strcmp(n->key, key) == 0)
			return 1;
	return 0;
}

static void flight_add(struct queue_runner *q, const char *key)
{
	struct keynode *n = xcalloc(1, sizeof(*n));
	uint32_t b = hash_str(key) % KEY_BUCKETS;

	n->key = xstrdup(key);
	n->next = q->keys[b];
	q->keys[b] = n;
	q->inflight++;
}

static void flight_del(struct queue_runner *q, const char *key)
{
	struct keynode **pp = &q->keys[hash_str(key) % KEY_BUCKETS];

	while (*pp != NULL) {
		if (strcmp((*pp)->key, key) == 0) {
			struct keynode *n = *pp;

			*pp = n->next;
			free(n->key);
			free(n);
			q->inflight--;
			return;
		}
		pp = &(*pp)->next;
	}
}

/* ---- worker thread --------------------------------------------------------------- */

static void post_job(struct queue_runner *q, struct job *j)
{
	j->posted_ms = time_mono_ms();
	worker_submit(q->worker, &j->wj);
}

static void free_row(struct row *r);

static void free_job(struct job *j)
{
	size_t i;

	for (i = 0; i < j->nrcpts; i++)
		free(j->rcpts[i].rcpt);
	free(j->rcpts);
	free(j->sender);
	free(j->auth_user);
	free(j->route);
	free(j->host);
	for (i = 0; i < j->nrows; i++)
		free_row(&j->rows[i]);
	free(j->rows);
	free(j->dsn);
	free(j->dsn_to);
	free(j);
}

struct lease_ctx {
	struct queue_runner *q;
	struct row *rows;
	size_t n;
	size_t cap;
};

static int lease_row(const struct store_queue_row *r, void *arg)
{
	struct lease_ctx *lc = arg;
	struct row *w;

	if (lc->n == lc->cap) {
		lc->cap = lc->cap ? lc->cap * 2 : 64;
		lc->rows = xrealloc(lc->rows, lc->cap * sizeof(*lc->rows));
	}
	w = &lc->rows[lc->n++];
	memset(w, 0, sizeof(*w));
	strlcpy_s(w->qid, r->qid, sizeof(w->qid));
	w->rcpt = xstrdup(r->rcpt);
	w->sender = xstrdup(r->sender);
	w->auth_user = r->auth_user ? xstrdup(r->auth_user) : NULL;
	w->size = r->size;
	w->received_at = r->received_at;
	w->start_ms = r->released_at > r->received_at ? r->released_at : r->received_at;
	w->attempts = r->attempts;
	w->smtputf8 = r->smtputf8;
	w->body_8bit = r->body_8bit;
	w->seq = r->seq;
	w->edit = r->edit != NULL ? xstrdup(r->edit) : NULL;
	return 0;
}

static void free_row(struct row *r)
{
	free(r->edit);
	free(r->rcpt);
	free(r->sender);
	free(r->auth_user);
}

/* The DSN of j's dead recipients into j, for done() to send. */
static void make_dsn(struct queue_runner *q, struct job *j)
{
	struct queue_dsn_rcpt dr[64];
	struct queue_dsn d;
	struct dynbuf b;
	char *headers = xmalloc(DSN_HEADERS_MAX + 1);
	char boundary[40];
	size_t n = 0;
	size_t i;

	for (i = 0; i < j->nrcpts && n < ARRAY_LEN(dr); i++) {
		if (j->rcpts[i].o != STORE_DEAD)
			continue;
		dr[n].rcpt = j->rcpts[i].rcpt;
		dr[n].reply = j->rcpts[i].text;
		n++;
	}
	if (n == 0) {
		free(headers);
		return;
	}
	random_hex(boundary, 12);
	memset(&d, 0, sizeof(d));
	d.reporting_host = q->conf->hostname;
	d.qid = j->qid;
	d.orig_sender = j->sender;
	d.arrival_ms = j->received_at;
	d.now_ms = time_now_ms();
	d.rcpts = dr;
	d.nrcpts = n;
	d.headers = headers;
	if (spool_read_headers(q->data_dir, j->qid, headers, DSN_HEADERS_MAX, &d.headers_len) < 0)
		d.headers_len = 0;
	d.boundary = boundary;
	dynbuf_init(&b, DSN_MAX);
	if (queue_dsn_build(&b, &d) < 0) {
		log_error(j->qid, "queue", "dsn too large; not sent");
		dynbuf_free(&b);
		free(headers);
		return;
	}
	free(headers);
	j->dsn = b.data; /* ownership moves to the job */
	j->dsn_len = b.len;
	j->dsn_to = xstrdup(j->sender);
}

static void gone_add(struct gone *g, const char *qid)
{
	if (g->n == g->cap) {
		g->cap = g->cap ? g->cap * 2 : 16;
		g->qids = xrealloc(g->qids, g->cap * sizeof(*g->qids));
	}
	strlcpy_s(g->qids[g->n++], qid, SPOOL_QID_LEN + 1);
}

static int purge_cb(const char *qid, void *arg)
{
	gone_add(arg, qid);
	return 0;
}

/*
 * The attempt as a timeline event (docs/timeline.md), in the transaction
 * of its queue_rcpt update: the history of every attempt stays, not only
 * the last error.
 */
static int attempt_event(struct queue_runner *q, const struct job *j, const struct out_rcpt *o)
{
	struct store_event_row e;
	json_t *d = json_pack("{s:s, s:s, s:s}", "host", j->host != NULL ? j->host : j->route,
			      "reply", o->text, "result", o->o == STORE_DONE ? "delivered"
			      : o->o == STORE_DEAD ? "bounced" : "deferred");
	char *detail = d != NULL ? json_dumps(d, JSON_COMPACT) : NULL;
	int rc;

	json_decref(d);
	memset(&e, 0, sizeof(e));
	e.ts = j->attempt_ms;
	e.qid = j->qid;
	e.rcpt = o->rcpt;
	e.event = "delivery.attempt";
	e.detail = detail;
	e.actor = "system";
	rc = store_event_add(q->st, &e);
	free(detail);
	return rc;
}

/* Write one message's outcomes; inside a transaction. */
static int apply_outcome(struct queue_runner *q, const struct job *j, struct gone *g,
			 int *want_dsn)
{
	int64_t now = time_now_ms();
	int pending = 0;
	int dead = 0;
	int any_dead = 0;
	size_t i;

	for (i = 0; i < j->nrcpts; i++) {
		const struct out_rcpt *o = &j->rcpts[i];

		if (store_queue_set_outcome(q->st, j->qid, o->rcpt, o->seq, o->o, o->text, j->route,
					    o->next_attempt, now) < 0)
			return -1;
		if (attempt_event(q, j, o) < 0)
			return -1;
		any_dead |= o->o == STORE_DEAD;
	}
	if (store_queue_counts(q->st, j->qid, &pending, &dead) < 0)
		return -1;
	if (pending == 0 && (dead == 0 || !q->conf->hold_undeliverable)) {
		if (store_queue_delete_message(q->st, j->qid) < 0)
			return -1;
		gone_add(g, j->qid);
	}
	*want_dsn = any_dead && q->conf->dsn_to_local_senders && j->auth_user != NULL &&
		    j->sender != NULL && j->sender[0] != '\0';
	return 0;
}

/* Remove the files of g and empty it. */
static void unlink_gone(struct queue_runner *q, struct gone *g)
{
	size_t i;

	for (i = 0; i < g->n; i++) {
		char path[1300];

		if (spool_queue_path(q->data_dir, g->qids[i], path, sizeof(path)) < 0)
			continue;
		if (unlink(path) < 0 && errno != ENOENT)
			log_error(g->qids[i], "queue", "cannot remove %s: %s", path, strerror(errno));
		else
			log_info(g->qids[i], "queue", "removed");
	}
	free(g->qids);
	memset(g, 0, sizeof(*g));
}

/* One transaction for every outcome of batch; 0 or -1 (rolled back). */
static int commit_outcomes(struct queue_runner *q, struct job **batch, size_t n,
			   struct gone *g)
{
	size_t i;

	if (store_begin(q->st) < 0)
		return -1;
	for (i = 0; i < n; i++) {
		struct job *j = batch[i];

		if (apply_outcome(q, j, g, &j->want_dsn) < 0) {
			store_rollback(q->st);
			return -1;
		}
	}
	if (store_commit(q->st) < 0) {
		store_rollback(q->st);
		return -1;
	}
	return 0;
}

#define OUTCOME_TRIES 3

/* Commits batch; the files of messages now gone are added to g (unlinked later). */
static void do_outcomes(struct queue_runner *q, struct job **batch, size_t n, struct gone *g)
{
	size_t g_before = g->n;
	size_t i;
	int tries;

	/*
	 * A commit that fails (the database busy past its time-out) is tried
	 * again: an outcome dropped here leaves its rows leased, and a
	 * delivered recipient would be sent again when the lease runs out.
	 */
	for (tries = 0; tries < OUTCOME_TRIES; tries++) {
		g->n = g_before;
		if (commit_outcomes(q, batch, n, g) == 0)
			break;
	}
	if (tries == OUTCOME_TRIES) {
		/* Rows stay leased; the next start retries them (at least once). */
		log_error(NULL, "queue", "outcome commit failed; recipients stay leased");
		g->n = g_before;
		return;
	}
	log_debug(NULL, "queue", "outcomes committed messages=%zu waited_ms=%lld", n,
		  (long long)(time_mono_ms() - batch[0]->posted_ms));
	for (i = 0; i < n; i++) {
		if (batch[i]->want_dsn)
			make_dsn(q, batch[i]); /* reads the spool file: before unlink */
	}
}

/* Lease up to job->limit due rows into job, for done() on the loop. */
static void do_lease(struct queue_runner *q, struct job *job)
{
	struct lease_ctx lc = { q, NULL, 0, 0 };
	int limit = job->limit;
	int64_t now = time_now_ms();
	struct gone g = { 0 };
	size_t i;
	size_t kept = 0;

	if (store_begin(q->st) < 0)
		goto empty;
	if (store_queue_lease_due(q->st, now, now + LEASE_MS, limit, lease_row, &lc) < 0) {
		store_rollback(q->st);
		log_error(NULL, "queue", "lease failed");
		for (i = 0; i < lc.n; i++)
			free_row(&lc.rows[i]);
		lc.n = 0;
		goto empty;
	}
	/* Past the queue lifetime: dead now, not delivered. */
	for (i = 0; i < lc.n; i++) {
		struct row *w = &lc.rows[i];

		if (now - w->start_ms > q->conf->queue_lifetime_ms) {
			struct job j;
			struct out_rcpt o;
			int dsn = 0;

			memset(&j, 0, sizeof(j));
			memset(&o, 0, sizeof(o));
			strlcpy_s(j.qid, w->qid, sizeof(j.qid));
			j.sender = w->sender;
			j.auth_user = w->auth_user;
			j.received_at = w->received_at;
			o.rcpt = w->rcpt;
			o.seq = w->seq;
			o.o = STORE_DEAD;
			snprintf(o.text, sizeof(o.text), "queue lifetime expired");
			j.rcpts = &o;
			j.nrcpts = 1;
			if (apply_outcome(q, &j, &g, &dsn) == 0)
				log_info(w->qid, "delivery", "expired to=<%s>", w->rcpt);
			free_row(w);
			continue;
		}
		lc.rows[kept++] = *w;
	}
	if (store_commit(q->st) < 0) {
		store_rollback(q->st);
		for (i = 0; i < kept; i++)
			free_row(&lc.rows[i]);
		kept = 0;
		free(g.qids);
		g.qids = NULL;
		g.n = 0;
	}
	unlink_gone(q, &g);
	lc.n = kept;
empty:
	job->rows = lc.rows;
	job->nrows = lc.n;
	job->full = (int)lc.n >= limit;
}

static void do_purge(struct queue_runner *q)
{
	struct gone g = { 0 };
	int64_t before = time_now_ms() - q->conf->dead_retention_ms;
	int n;
	size_t i;

	/* Timeline events past event_retention; a bounded batch per purge. */
	n = store_event_purge(q->st, time_now_ms() - q->conf->event_retention_ms, 1000);
	if (n < 0)
		log_error(NULL, "queue", "event purge failed");
	else if (n > 0)
		log_info(NULL, "queue", "events purged count=%d", n);

	if (store_begin(q->st) < 0)
		return;
	if (store_queue_purgeable(q->st, before, 1000, purge_cb, &g) < 0)
		goto fail;
	for (i = 0; i < g.n; i++)
		if (store_queue_delete_message(q->st, g.qids[i]) < 0)
			goto fail;
	if (store_commit(q->st) < 0)
		goto fail;
	unlink_gone(q, &g);
	return;
fail:
	store_rollback(q->st);
	free(g.qids);
}

/*
 * Worker thread: jobs[] is everything that was waiting.  Every outcome in
 * it is committed at once, as one group (the only window for a duplicate
 * delivery after a crash is between the remote 250 and this commit); the
 * leases and purges go back to the queue and run next, one at a time, so
 * an outcome never waits behind more than the one transaction in progress.
 */
static size_t run_batch(struct worker_job **jobs, size_t n, void *arg)
{
	struct queue_runner *q = arg;
	struct job **b = (struct job **)(void *)jobs;
	struct job **rest = xmalloc(n * sizeof(*rest));
	size_t nout = 0;
	size_t nrest = 0;
	size_t i;

	for (i = 0; i < n; i++) {
		if (b[i]->kind == J_OUTCOME)
			b[nout++] = b[i];
		else
			rest[nrest++] = b[i];
	}
	memcpy(b + nout, rest, nrest * sizeof(*rest));
	free(rest);
	if (nout > 0) {
		do_outcomes(q, b, nout, &q->later);
		/*
		 * Removing files can wait; outcomes that came in meanwhile
		 * cannot.  A crash before the unlink leaves files without rows,
		 * which start-up reconciliation removes.
		 */
		if (nrest == 0 && worker_pending(q->worker) == 0)
			unlink_gone(q, &q->later);
		return nout;
	}
	unlink_gone(q, &q->later); /* no outcome waits */
	if (worker_stopping(q->worker))
		return 1; /* nobody will take the rows; a purge can wait */
	if (b[0]->kind == J_LEASE)
		do_lease(q, b[0]);
	else
		do_purge(q);
	return 1;
}

/* ---- loop: destinations and delivery ------------------------------------------ */

static void dispatch(struct queue_runner *q, struct dest *d);
static void fetch(struct queue_runner *q);

static void qmsg_free(struct qmsg *m)
{
	size_t i;

	if (m->fd >= 0)
		close(m->fd);
	for (i = 0; i < m->nrcpts; i++) {
		free(m->rcpts[i]);
		free(m->rcpt_to[i]);
	}
	free(m->rcpts);
	free(m->rcpt_to);
	free(m->attempts);
	free(m->seqs);
	free(m->edit);
	queue_edit_free(&m->qe);
	free(m->codes);
	free(m->texts);
	free(m->sender);
	free(m->auth_user);
	free(m);
}

static void dest_maybe_free(struct queue_runner *q, struct dest *d)
{
	struct dest **pp;

	if (d->nqueued > 0 || d->nconns > 0 || d->state == D_RESOLVING)
		return;
	pp = &q->dest_table[hash_str(d->key) % DEST_BUCKETS];
	while (*pp != d)
		pp = &(*pp)->hnext;
	*pp = d->hnext;
	if (d->prev != NULL)
		d->prev->next = d->next;
	else
		q->dests = d->next;
	if (d->next != NULL)
		d->next->prev = d->prev;
	free(d);
}

/*
 * A message's delivery attempt is over: record every recipient's outcome.
 * host: the server that answered ("name [address]:port"), NULL when none
 * was reached.
 */
static void msg_finished(struct queue_runner *q, struct qmsg *m, const char *relay,
			 const char *host)
{
	struct job *j = xcalloc(1, sizeof(*j));
	int64_t now = time_now_ms();
	size_t i;

	j->kind = J_OUTCOME;
	strlcpy_s(j->qid, m->qid, sizeof(j->qid));
	j->sender = xstrdup(m->sender);
	j->auth_user = m->auth_user ? xstrdup(m->auth_user) : NULL;
	j->route = xstrdup(relay);
	j->host = host != NULL ? xstrdup(host) : NULL;
	j->attempt_ms = now;
	j->received_at = m->received_at;
	j->rcpts = xcalloc(m->nrcpts, sizeof(*j->rcpts));
	j->nrcpts = m->nrcpts;
	for (i = 0; i < m->nrcpts; i++) {
		struct out_rcpt *o = &j->rcpts[i];
		int code = m->codes[i];
		const char *status;
		char key[600];

		o->rcpt = xstrdup(m->rcpts[i]);
		o->seq = m->seqs[i];
		strlcpy_s(o->text, m->texts[i], sizeof(o->text));
		if (code >= 200 && code < 300) {
			o->o = STORE_DONE;
			status = "sent";
		} else if (code >= 500 && code < 600) {
			o->o = STORE_DEAD;
			status = "dead";
		} else {
			o->o = STORE_DEFERRED;
			o->next_attempt = now + queue_backoff_ms(m->attempts[i], q->conf->retry_min_ms,
								 q->conf->retry_max_ms);
			status = "deferred";
			if (now - m->start_ms > q->conf->queue_lifetime_ms) {
				o->o = STORE_DEAD;
				status = "dead";
				snprintf(o->text, sizeof(o->text), "queue lifetime expired; last error: %s",
					 m->texts[i]);
			}
		}
		log_info(m->qid, "delivery", "%s to=<%s> relay=%s attempts=%d reply=\"%s\"", status,
			 m->rcpts[i], relay, m->attempts[i] + 1, o->text);
		flight_key(key, sizeof(key), m->qid, m->seqs[i], m->rcpts[i]);
		flight_del(q, key);
	}
	post_job(q, j);
	qmsg_free(m);
	fetch(q);
}

/* Every queued message of d gets code/text (DNS failure, no route). */
static void dest_fail_all(struct queue_runner *q, struct dest *d, int code, const char *text)
{
	while (d->head != NULL) {
		struct qmsg *m = d->head;
		size_t i;

		d->head = m->next;
		d->nqueued--;
		for (i = 0; i < m->nrcpts; i++) {
			m->codes[i] = code;
			strlcpy_s(m->texts[i], text, SMTP_CLIENT_TEXT_MAX);
		}
		msg_finished(q, m, d->key, NULL);
	}
	d->tail = &d->head;
}

static struct smtp_client_msg *client_next(void *ctx, struct smtp_client *c)
{
	struct qconn *qc = ctx;
	struct dest *d = qc->dest;
	struct qmsg *m = d->head;

	(void)c;
	qc->pulled = 1;
	if (m == NULL)
		return NULL;
	d->head = m->next;
	if (d->head == NULL)
		d->tail = &d->head;
	d->nqueued--;
	m->next = NULL;
	return &m->cm;
}

static void client_done(void *ctx, struct smtp_client *c, struct smtp_client_msg *cm)
{
	struct qconn *qc = ctx;
	struct qmsg *m = (struct qmsg *)(void *)((char *)cm - offsetof(struct qmsg, cm));
	char peer[400];

	smtp_client_peer(c, peer, sizeof(peer));
	msg_finished(qc->dest->q, m, qc->dest->key, peer);
}

static void client_closed(void *ctx, struct smtp_client *c, int established, const char *err)
{
	struct qconn *qc = ctx;
	struct dest *d = qc->dest;
	struct queue_runner *q = d->q;
	struct qconn **pp = &d->conns;
	int others_up = 0;
	struct qconn *o;

	(void)c;
	while (*pp != qc)
		pp = &(*pp)->next;
	*pp = qc->next;
	d->nconns--;
	q->total_conns--;
	free(qc);
	for (o = d->conns; o != NULL; o = o->next)
		others_up |= o->pulled;
	if (!established && !others_up && d->nqueued > 0) {
		/* Every address failed: the destination is down for now. */
		dest_fail_all(q, d, 451, err ? err : "451 4.4.1 no server reachable");
	}
	dispatch(q, d);
	dest_maybe_free(q, d);
	/* A global slot is free: other destinations may be waiting. */
	for (d = q->dests; d != NULL; d = d->next)
		if (d->nqueued > 0 && d->state == D_READY)
			dispatch(q, d);
}

static const struct smtp_client_ops client_ops = {
	client_next, client_done, client_closed,
};

static void dispatch(struct queue_runner *q, struct dest *d)
{
	struct qconn *qc;
	int starting = 0;

	if (d->state != D_READY)
		return;
	for (qc = d->conns; qc != NULL && d->nqueued > 0; qc = qc->next) {
		if (smtp_client_idle(qc->client))
			smtp_client_wake(qc->client);
		if (!qc->pulled)
			starting++;
	}
	while ((size_t)starting < d->nqueued &&
	       d->nconns < q->conf->delivery_concurrency_per_destination &&
	       q->total_conns < q->conf->delivery_concurrency) {
		struct smtp_client_params p;
		enum queue_tls tls = d->kind == QUEUE_ROUTE_DOWNSTREAM ? q->routes.down_tls
								       : q->routes.out_tls;

		memset(&p, 0, sizeof(p));
		p.helo = q->conf->hostname;
		p.tls = tls == QUEUE_TLS_OFF ? SMTP_TLS_OFF
			: tls == QUEUE_TLS_VERIFY ? SMTP_TLS_VERIFY : SMTP_TLS_OPPORTUNISTIC;
		p.ssl_ctx = tls == QUEUE_TLS_VERIFY ? q->ssl_verify : q->ssl_opportunistic;
		p.idle_ms = 2000;
		p.connect_ms = q->conf->delivery_connect_timeout_ms;
		p.command_ms = q->conf->delivery_command_timeout_ms;
		p.data_ms = q->conf->delivery_data_timeout_ms;
		p.block_ms = q->conf->delivery_block_timeout_ms;
		p.dot_ms = q->conf->delivery_dot_timeout_ms;
		p.log_id = d->key;
		qc = xcalloc(1, sizeof(*qc));
		qc->dest = d;
		qc->client = smtp_client_new(q->base, &client_ops, qc, d->targets, d->ntargets, &p);
		if (qc->client == NULL) {
			free(qc);
			if (d->nconns == 0)
				dest_fail_all(q, d, 451, "451 4.4.1 cannot connect");
			break;
		}
		qc->next = d->conns;
		d->conns = qc;
		d->nconns++;
		q->total_conns++;
		starting++;
	}
}

static struct dest *dest_by_id(struct queue_runner *q, uint64_t id)
{
	struct dest *d;

	for (d = q->dests; d != NULL; d = d->next)
		if (d->id == id)
			return d;
	return NULL;
}

static void add_target(struct dest *d, int family, const void *addr, int port, const char *host)
{
	struct smtp_client_target *t;

	if (d->ntargets == MAX_TARGETS)
		return;
	t = &d->targets[d->ntargets++];
	memset(t, 0, sizeof(*t));
	strlcpy_s(t->host, host, sizeof(t->host));
	if (family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&t->addr;

		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		memcpy(&sin->sin_addr, addr, sizeof(sin->sin_addr));
		t->addrlen = sizeof(*sin);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&t->addr;

		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
		memcpy(&sin6->sin6_addr, addr, sizeof(sin6->sin6_addr));
		t->addrlen = sizeof(*sin6);
	}
}

static void resolve_next(struct queue_runner *q, struct dest *d);

static void resolved(struct queue_runner *q, struct dest *d)
{
	char text[SMTP_CLIENT_TEXT_MAX];

	d->state = D_READY;
	if (d->ntargets == 0) {
		snprintf(text, sizeof(text), "451 4.4.4 %s: no address for any server", d->key);
		dest_fail_all(q, d, 451, text);
		dest_maybe_free(q, d);
		return;
	}
	dispatch(q, d);
}

static void addr_cb(const struct dns_result *r, uint64_t cookie, void *ctx)
{
	struct queue_runner *q = ctx;
	struct dest *d = dest_by_id(q, cookie);
	const struct queue_hostport *hp;
	size_t i;

	if (d == NULL || r->status == DNS_CANCELLED)
		return; /* shutting down: the rows stay leased */
	hp = &d->names[d->ni];
	if (r->status == DNS_OK) {
		for (i = 0; i < r->count; i++)
			add_target(d, r->type == DNS_A ? AF_INET : AF_INET6,
				   r->type == DNS_A ? (const void *)&r->u.a[i]
						    : (const void *)&r->u.aaaa[i],
				   hp->port, hp->host);
	}
	if (r->type == DNS_A && r->status != DNS_OK && r->status != DNS_CANCELLED &&
	    !d->aaaa_phase) {
		d->aaaa_phase = 1;
		dns_query(q->dns, hp->host, DNS_AAAA, addr_cb, d->id, q);
		return;
	}
	d->aaaa_phase = 0;
	d->ni++;
	resolve_next(q, d);
}

static void resolve_next(struct queue_runner *q, struct dest *d)
{
	while (d->ni < d->nnames) {
		const struct queue_hostport *hp = &d->names[d->ni];
		unsigned char a[16];

		if (inet_pton(AF_INET, hp->host, a) == 1) {
			add_target(d, AF_INET, a, hp->port, hp->host);
		} else if (inet_pton(AF_INET6, hp->host, a) == 1) {
			add_target(d, AF_INET6, a, hp->port, hp->host);
		} else {
			d->aaaa_phase = 0;
			dns_query(q->dns, hp->host, DNS_A, addr_cb, d->id, q);
			return;
		}
		d->ni++;
	}
	resolved(q, d);
}

static void mx_cb(const struct dns_result *r, uint64_t cookie, void *ctx)
{
	struct queue_runner *q = ctx;
	struct dest *d = dest_by_id(q, cookie);
	char text[SMTP_CLIENT_TEXT_MAX];
	size_t i;

	if (d == NULL || r->status == DNS_CANCELLED)
		return; /* shutting down: the rows stay leased */
	switch (r->status) {
	case DNS_OK:
		if (r->u.mx[0].host[0] == '\0') {
			snprintf(text, sizeof(text),
				 "556 5.1.10 %s does not accept mail (null MX, RFC 7505)", d->domain);
			d->state = D_READY;
			dest_fail_all(q, d, 556, text);
			dest_maybe_free(q, d);
			return;
		}
		for (i = 0; i < r->count && d->nnames < QUEUE_MAX_HOSTS; i++) {
			if (r->u.mx[i].host[0] == '\0')
				continue;
			strlcpy_s(d->names[d->nnames].host, r->u.mx[i].host,
				  sizeof(d->names[0].host));
			d->names[d->nnames++].port = q->routes.mx_port;
		}
		break;
	case DNS_NODATA:
		/* No MX: the domain itself (RFC 5321 5.1). */
		strlcpy_s(d->names[0].host, d->domain, sizeof(d->names[0].host));
		d->names[0].port = q->routes.mx_port;
		d->nnames = 1;
		break;
	case DNS_NXDOMAIN:
	case DNS_BADNAME:
		snprintf(text, sizeof(text), "550 5.1.2 %s: no such domain", d->domain);
		d->state = D_READY;
		dest_fail_all(q, d, 550, text);
		dest_maybe_free(q, d);
		return;
	case DNS_TEMPFAIL:
	case DNS_CANCELLED:
		snprintf(text, sizeof(text), "451 4.4.3 %s: MX lookup failed (temporary)", d->domain);
		d->state = D_READY;
		dest_fail_all(q, d, 451, text);
		dest_maybe_free(q, d);
		return;
	}
	d->ni = 0;
	resolve_next(q, d);
}

static struct dest *dest_get(struct queue_runner *q, const char *key,
			     enum queue_route_kind kind, const char *rcpt)
{
	uint32_t b = hash_str(key) % DEST_BUCKETS;
	struct dest *d;

	for (d = q->dest_table[b]; d != NULL; d = d->hnext)
		if (strcmp(d->key, key) == 0)
			return d;
	d = xcalloc(1, sizeof(*d));
	d->q = q;
	d->id = ++q->next_dest_id;
	strlcpy_s(d->key, key, sizeof(d->key));
	d->kind = kind;
	d->tail = &d->head;
	d->state = D_RESOLVING;
	d->hnext = q->dest_table[b];
	q->dest_table[b] = d;
	d->next = q->dests;
	if (q->dests != NULL)
		q->dests->prev = d;
	q->dests = d;
	switch (kind) {
	case QUEUE_ROUTE_DOWNSTREAM:
		memcpy(d->names, q->routes.down, q->routes.ndown * sizeof(d->names[0]));
		d->nnames = q->routes.ndown;
		resolve_next(q, d);
		break;
	case QUEUE_ROUTE_SMARTHOST:
		d->names[0] = q->routes.smart;
		d->nnames = 1;
		resolve_next(q, d);
		break;
	case QUEUE_ROUTE_MX:
		strlcpy_s(d->domain, strrchr(rcpt, '@') + 1, sizeof(d->domain));
		dns_query(q->dns, d->domain, DNS_MX, mx_cb, d->id, q);
		break;
	}
	return d;
}

static void qmsg_add_rcpt(struct qmsg *m, const struct row *w, const char *rcpt_to)
{
	if (m->nrcpts == m->cap) {
		m->cap = m->cap ? m->cap * 2 : 4;
		m->rcpts = xrealloc(m->rcpts, m->cap * sizeof(*m->rcpts));
		m->rcpt_to = xrealloc(m->rcpt_to, m->cap * sizeof(*m->rcpt_to));
		m->attempts = xrealloc(m->attempts, m->cap * sizeof(*m->attempts));
		m->seqs = xrealloc(m->seqs, m->cap * sizeof(*m->seqs));
	}
	m->rcpts[m->nrcpts] = xstrdup(w->rcpt);
	m->rcpt_to[m->nrcpts] = rcpt_to != NULL ? xstrdup(rcpt_to) : NULL;
	m->attempts[m->nrcpts] = w->attempts;
	m->seqs[m->nrcpts] = w->seq;
	m->nrcpts++;
}

static int qmsg_has_rcpt(const struct qmsg *m, const char *rcpt)
{
	size_t i;

	for (i = 0; i < m->nrcpts; i++)
		if (strcmp(m->rcpts[i], rcpt) == 0)
			return 1;
	return 0;
}

static int same_edit(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

/*
 * Every delivered copy leaves out a forged X-Moat-Folder field: downstream
 * filing by that header must see only the one moatd wrote.
 */
static const char *const drop_folder[] = { "X-Moat-Folder" };
static const struct smtp_edit_spec spec_plain = { NULL, 0, NULL, drop_folder, 1 };

static void qmsg_seal(struct queue_runner *q, struct qmsg *m)
{
	int folder_header = strcmp(q->conf->folder_method, "plus") != 0 || !m->plus;

	m->codes = xcalloc(m->nrcpts, sizeof(*m->codes));
	m->texts = xcalloc(m->nrcpts, sizeof(*m->texts));
	m->cm.qid = m->qid;
	m->cm.sender = m->sender;
	m->cm.rcpts = (const char *const *)m->rcpts;
	m->cm.nrcpts = m->nrcpts;
	m->cm.size = m->size;
	m->cm.fd = m->fd;
	m->cm.smtputf8 = m->smtputf8;
	m->cm.body_8bit = m->body_8bit;
	m->cm.rcpt_to = (const char *const *)m->rcpt_to;
	m->cm.edit = &spec_plain;
	if (m->has_edit) {
		queue_edit_spec(&m->qe, folder_header);
		if (m->qe.warn[0] != '\0')
			log_warn(m->qid, "delivery", "EDIT PART LEFT OUT to=<%s> what=\"%s\"",
				 m->rcpts[0], m->qe.warn);
		m->cm.edit = &m->qe.spec;
		/* SIZE= announces at least what is sent; the Subject line is the rest. */
		m->cm.size += (int64_t)m->qe.add_len + 16 +
			(m->qe.subject_prefix != NULL ? (int64_t)strlen(m->qe.subject_prefix) : 0);
	}
	m->cm.codes = m->codes;
	m->cm.texts = m->texts;
}

struct pending {
	struct qmsg *m;
	char key[300];
	enum queue_route_kind kind;
	char first_rcpt[300];
};

static void take_rows(struct queue_runner *q, struct row *rows, size_t n)
{
	struct pending *pm = xcalloc(n ? n : 1, sizeof(*pm));
	size_t npm = 0;
	size_t i;
	size_t k;

	for (i = 0; i < n; i++) {
		struct row *w = &rows[i];
		char key[300];
		char fk[600];
		enum queue_route_kind kind;
		struct qmsg *m = NULL;

		struct queue_edit qe;
		int has_edit = 0;
		char plus[600];
		int use_plus = 0;

		flight_key(fk, sizeof(fk), w->qid, w->seq, w->rcpt);
		if (flight_has(q, fk))
			continue; /* already being delivered (a retry reset its lease) */
		if (queue_route_for(&q->routes, w->rcpt, &kind, key, sizeof(key)) < 0) {
			strlcpy_s(key, "invalid", sizeof(key));
			kind = QUEUE_ROUTE_MX;
		}
		memset(&qe, 0, sizeof(qe));
		if (w->edit != NULL) {
			char err[128];

			if (queue_edit_parse(w->edit, &qe, err, sizeof(err)) == 0)
				has_edit = 1;
			else
				log_warn(w->qid, "delivery", "EDIT UNREADABLE to=<%s> error=\"%s\";"
					 " delivered without it", w->rcpt, err);
		}
		if (has_edit && qe.folder != NULL && strcmp(q->conf->folder_method, "header") != 0) {
			const char *why = NULL;

			if (queue_edit_plus(w->rcpt, qe.folder, q->conf->folder_plus_separator[0],
					    plus, sizeof(plus), &why) == 0)
				use_plus = 1;
			else
				log_warn(w->qid, "delivery", "PLUS FOLDER SKIPPED to=<%s> reason=\"%s\";"
					 " folder in the X-Moat-Folder field", w->rcpt, why);
		}
		/* One transaction only for recipients with equal edits, one copy each. */
		for (k = 0; k < npm; k++) {
			struct qmsg *c = pm[k].m;

			if (strcmp(c->qid, w->qid) == 0 && strcmp(pm[k].key, key) == 0 &&
			    same_edit(c->has_edit ? c->edit : NULL, has_edit ? w->edit : NULL) &&
			    c->plus == use_plus && !qmsg_has_rcpt(c, w->rcpt)) {
				m = c;
				break;
			}
		}
		if (m != NULL) {
			queue_edit_free(&qe);
		} else {
			m = xcalloc(1, sizeof(*m));
			strlcpy_s(m->qid, w->qid, sizeof(m->qid));
			m->sender = xstrdup(w->sender);
			m->auth_user = w->auth_user ? xstrdup(w->auth_user) : NULL;
			m->size = w->size;
			m->received_at = w->received_at;
			m->start_ms = w->start_ms;
			m->smtputf8 = w->smtputf8;
			m->body_8bit = w->body_8bit;
			m->fd = spool_read_open(q->data_dir, w->qid);
			if (has_edit) {
				m->edit = xstrdup(w->edit);
				m->has_edit = 1;
				m->qe = qe; /* ownership moves to m */
			}
			m->plus = use_plus;
			pm[npm].m = m;
			strlcpy_s(pm[npm].key, key, sizeof(pm[npm].key));
			pm[npm].kind = kind;
			strlcpy_s(pm[npm].first_rcpt, w->rcpt, sizeof(pm[npm].first_rcpt));
			npm++;
		}
		qmsg_add_rcpt(m, w, use_plus ? plus : NULL);
		flight_add(q, fk);
	}
	for (k = 0; k < npm; k++) {
		struct qmsg *m = pm[k].m;
		struct dest *d;
		size_t i2;

		qmsg_seal(q, m);
		if (m->fd < 0) {
			/*
			 * Deleted meanwhile (the rows are gone too, so the outcome
			 * touches nothing), or lost from the disk: dead, with the
			 * reason, for the administrator to see, not leased for ever.
			 */
			for (i2 = 0; i2 < m->nrcpts; i2++) {
				m->codes[i2] = 550;
				strlcpy_s(m->texts[i2], "550 5.3.0 spool file missing: the message"
					  " is lost", SMTP_CLIENT_TEXT_MAX);
			}
			log_warn(m->qid, "queue", "SPOOL FILE MISSING: recipients dead");
			msg_finished(q, m, "none", NULL);
			continue;
		}
		if (strcmp(pm[k].key, "nodownstream") == 0) {
			/* Waits (and ages) until an administrator configures downstream. */
			for (i2 = 0; i2 < m->nrcpts; i2++) {
				m->codes[i2] = 451;
				strlcpy_s(m->texts[i2], "451 4.3.5 local domain, but no downstream"
					  " server is configured", SMTP_CLIENT_TEXT_MAX);
			}
			log_warn(m->qid, "queue", "NO DOWNSTREAM for local recipient %s",
				 pm[k].first_rcpt);
			msg_finished(q, m, "none", NULL);
			continue;
		}
		if (strcmp(pm[k].key, "invalid") == 0) {
			for (i2 = 0; i2 < m->nrcpts; i2++) {
				m->codes[i2] = 550;
				strlcpy_s(m->texts[i2], "550 5.1.3 recipient without a domain",
					  SMTP_CLIENT_TEXT_MAX);
			}
			msg_finished(q, m, "none", NULL);
			continue;
		}
		d = dest_get(q, pm[k].key, pm[k].kind, pm[k].first_rcpt);
		m->dest = d;
		*d->tail = m;
		d->tail = &m->next;
		d->nqueued++;
		if (d->state == D_READY)
			dispatch(q, d);
	}
	free(pm);
}

static void fetch(struct queue_runner *q)
{
	struct job *j;
	int room = q->max_inflight - q->inflight;

	if (q->fetching) {
		q->fetch_again = 1;
		return;
	}
	if (room < q->max_inflight / 4 || room <= 0)
		return;
	q->fetching = 1;
	q->fetch_again = 0;
	j = xcalloc(1, sizeof(*j));
	j->kind = J_LEASE;
	j->limit = room < LEASE_BATCH ? room : LEASE_BATCH;
	post_job(q, j);
}

static void inject_dsn(struct queue_runner *q, const struct job *r)
{
	char err[256];
	struct spool_file *f = spool_file_create(q->spool, err, sizeof(err));
	struct spool_envelope env;
	const char *rcpts[1];

	if (f == NULL) {
		log_error(NULL, "queue", "dsn: %s", err);
		return;
	}
	if (spool_file_write(f, r->dsn, r->dsn_len) < 0) {
		log_error(NULL, "queue", "dsn: write failed");
		spool_file_discard(f);
		return;
	}
	memset(&env, 0, sizeof(env));
	rcpts[0] = r->dsn_to;
	env.sender = "";
	env.rcpts = rcpts;
	env.nrcpts = 1;
	env.client_addr = "127.0.0.1";
	env.client_name = "localhost";
	env.helo = q->conf->hostname;
	env.received_at = time_now_ms();
	log_info(spool_file_qid(f), "queue", "dsn to=<%s>", r->dsn_to);
	spool_writer_commit(q->writer, f, &env, 0);
}

/* Loop thread: a job is back from the worker with its result. */
static void job_done(struct worker_job *wj, void *arg)
{
	struct queue_runner *q = arg;
	struct job *j = (struct job *)(void *)wj;

	if (q->closing) {
		free_job(j); /* leased rows stay leased; the next start retries them */
		return;
	}
	if (j->kind == J_LEASE) {
		q->fetching = 0;
		take_rows(q, j->rows, j->nrows);
		if (j->full || q->fetch_again)
			fetch(q);
	} else if (j->kind == J_OUTCOME && j->dsn != NULL) {
		inject_dsn(q, j);
	}
	free_job(j);
}

static void poll_cb(evutil_socket_t fd, short what, void *arg)
{
	struct queue_runner *q = arg;
	int64_t now = time_mono_ms();

	(void)fd;
	(void)what;
	fetch(q);
	if (now - q->last_purge >= PURGE_EVERY_MS) {
		struct job *j = xcalloc(1, sizeof(*j));

		q->last_purge = now;
		j->kind = J_PURGE;
		post_job(q, j);
	}
}

void queue_runner_kick(struct queue_runner *q)
{
	if (q != NULL)
		fetch(q);
}

static SSL_CTX *new_ssl_ctx(int verify, const char *ca_file, char *err, size_t errsz)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	if (ctx == NULL) {
		snprintf(err, errsz, "delivery: cannot create a TLS context");
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	if (verify) {
		int ok = ca_file[0] != '\0' ? SSL_CTX_load_verify_locations(ctx, ca_file, NULL)
					    : SSL_CTX_set_default_verify_paths(ctx);

		if (ok != 1) {
			snprintf(err, errsz, "delivery_ca_file %s: cannot load", ca_file);
			SSL_CTX_free(ctx);
			return NULL;
		}
	}
	return ctx;
}

struct queue_runner *queue_runner_start(struct event_base *base, const struct conf *conf,
					struct dns *dns, struct spool *spool,
					struct spool_writer *writer, const char *db_path,
					queue_is_local_fn is_local, const void *is_local_arg,
					char *err, size_t errsz)
{
	static const struct worker_ops ops = {
		.run_batch = run_batch,
		.done = job_done,
	};
	struct queue_runner *q = xcalloc(1, sizeof(*q));
	struct timeval tv = { (time_t)(conf->queue_poll_ms / 1000),
			      (suseconds_t)((conf->queue_poll_ms % 1000) * 1000) };

	q->base = base;
	q->conf = conf;
	q->dns = dns;
	q->spool = spool;
	q->writer = writer;
	q->data_dir = conf->data_dir;
	if (queue_routes_parse(&q->routes, conf, err, errsz) < 0) {
		free(q);
		return NULL;
	}
	q->routes.is_local = is_local;
	q->routes.is_local_arg = is_local_arg;
	q->ssl_opportunistic = new_ssl_ctx(0, "", err, errsz);
	q->ssl_verify = new_ssl_ctx(1, conf->delivery_ca_file, err, errsz);
	if (q->ssl_opportunistic == NULL || q->ssl_verify == NULL)
		goto fail;
	q->st = store_open(db_path, 0, err, errsz);
	if (q->st == NULL)
		goto fail;
	if (store_queue_reset_leases(q->st, time_now_ms()) < 0) {
		snprintf(err, errsz, "queue: cannot take back leases");
		goto fail;
	}
	q->max_inflight = (int)(conf->delivery_concurrency * 4);
	if (q->max_inflight < 200)
		q->max_inflight = 200;
	q->worker = worker_new(base, "queue-runner", &ops, q, err, errsz);
	if (q->worker == NULL)
		goto fail;
	q->poll_ev = event_new(base, -1, EV_PERSIST, poll_cb, q);
	q->last_purge = time_mono_ms() - PURGE_EVERY_MS + 2000;
	event_add(q->poll_ev, &tv);
	fetch(q);
	return q;
fail:
	store_close(q->st);
	if (q->ssl_opportunistic != NULL)
		SSL_CTX_free(q->ssl_opportunistic);
	if (q->ssl_verify != NULL)
		SSL_CTX_free(q->ssl_verify);
	free(q);
	return NULL;
}

void queue_runner_free(struct queue_runner *q)
{
	struct dest *d;
	size_t i;

	if (q == NULL)
		return;
	q->closing = 1;
	event_del(q->poll_ev);
	/* In-flight recipients stay leased; the next start makes them due. */
	while ((d = q->dests) != NULL) {
		while (d->conns != NULL) {
			struct qconn *qc = d->conns;

			d->conns = qc->next;
			smtp_client_free(qc->client);
			free(qc);
		}
		while (d->head != NULL) {
			struct qmsg *m = d->head;

			d->head = m->next;
			qmsg_free(m);
		}
		q->dests = d->next;
		free(d);
	}
	/* Writes the outcomes already known; done() then only frees. */
	worker_free(q->worker);
	unlink_gone(q, &q->later);
	for (i = 0; i < KEY_BUCKETS; i++) {
		while (q->keys[i] != NULL) {
			struct keynode *n = q->keys[i];

			q->keys[i] = n->next;
			free(n->key);
			free(n);
		}
	}
	event_free(q->poll_ev);
	store_close(q->st);
	SSL_CTX_free(q->ssl_opportunistic);
	SSL_CTX_free(q->ssl_verify);
	free(q);
}
