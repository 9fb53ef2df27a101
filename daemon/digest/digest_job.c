/*
 * digest_job: who is due a digest, what it lists, and how it is queued.
 *
 * A round (digest_run_round) runs on the digest worker thread with its own
 * database connection, never on the event loop.  For each interval it
 * takes the due users in chunks of DIGEST_CHUNK: renders each user's
 * digest, writes the messages (daemon/spool/spool_inject.h, shared with the
 * account alerts) into spool/incoming under temporary names,
 * renames them to spool/queue/<qid> (RENAME_NOREPLACE), makes the batch
 * durable (one syncfs, or per-file fdatasync and directory fsyncs under
 * spool_sync = file), then commits their queue rows and every user's
 * digest_last_at in one transaction.  That is the spool writer's order, so
 * start-up reconciliation treats a crash the same way: a file without
 * rows was never queued and is removed, and the users' last_at did not
 * move, so the next round builds their digests again.  Nothing is sent
 * twice: last_at and the queue rows commit together.
 *
 * A user is due when their interval's latest slot has passed since their
 * last digest: hourly, an hour after it; daily, digest_hour o'clock; weekly,
 * digest_weekday at digest_hour (local time).  A due user with no new item
 * gets no mail, but last_at still moves, so that the next digest waits for
 * the next slot.
 *
 * In a cluster every node sees every user (PostgreSQL shares dir_user and
 * the quarantine), and the digest_last_at one node writes reaches the
 * others a moment later: with Redis, a node first claims the user's next
 * digest (moat:digest:<user>:<last_at>), and only the node that wins sends.  Without
 * an answer from Redis the node sends on its own (a duplicate at worst).
 */
#include "digest.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "../cluster/cluster_redis.h"
#include "../conf/conf.h"
#include "../log/log.h"
#include "../spool/spool.h"
#include "../spool/spool_inject.h"
#include "../store/store.h"
#include "../store/store_policy.h"
#include "../store/store_digest.h"
#include "../util/util.h"
#include "../util/worker.h"

#define DIGEST_CHUNK 200              /* users per transaction */
#define DIGEST_MSG_MAX (8 * 1024 * 1024)
#define DIGEST_NONCE_PURGE 10000      /* used nonces removed per round at most */
#define DIGEST_CLAIM_MS (8LL * 24 * 3600 * 1000) /* a claim outlives a weekly interval */

void digest_url_base(const struct conf *conf, const char *http_address, int tls,
		     char *out, size_t outsz)
{
	size_t n;

	if (conf->digest_url_base[0] != '\0')
		snprintf(out, outsz, "%s", conf->digest_url_base);
	else
		snprintf(out, outsz, "%s://%s", tls ? "https" : "http", http_address);
	n = strlen(out);
	while (n > 0 && out[n - 1] == '/')
		out[--n] = '\0';
}

/* ---- what every digest needs: template, sender, the kinds users may release ---- */

struct basis {
	struct digest_template tpl;
	char *own[3];                 /* the stored template's parts, or NULL */
	char from[330];
	char kinds[200];              /* quarantine_user_release_kinds */
};

static void basis_free(struct basis *b)
{
	free(b->own[0]);
	free(b->own[1]);
	free(b->own[2]);
}

static int basis_load(struct store *st, const struct conf *conf, struct basis *b)
{
	int found;

	memset(b, 0, sizeof(*b));
	b->tpl = digest_template_default;
	if (store_digest_template_get(st, &b->own[0], &b->own[1], &b->own[2], &found) < 0)
		return -1;
	if (found) {
		b->tpl.subject = b->own[0];
		b->tpl.text = b->own[1];
		b->tpl.html = b->own[2];
	}
	if (store_digest_postmaster(st, b->from, sizeof(b->from)) < 0)
		return -1;
	if (b->from[0] == '\0')
		snprintf(b->from, sizeof(b->from), "postmaster@%s", conf->hostname);
	if (store_policy_setting(st, "quarantine_user_release_kinds", b->kinds,
				 sizeof(b->kinds), &found) < 0)
		return -1;
	if (!found)
		strlcpy_s(b->kinds, "spam,policy", sizeof(b->kinds));
	return 0;
}

/* kind is in the comma list kinds. */
static int kind_in(const char *kinds, const char *kind)
{
	size_t n = strlen(kind);
	const char *p = kinds;

	while (*p != '\0') {
		size_t len;

		while (*p == ' ' || *p == ',')
			p++;
		len = strcspn(p, ", ");
		if (len == n && n > 0 && strncmp(p, kind, n) == 0)
			return 1;
		p += len;
	}
	return 0;
}

/* ---- one user's digest ---- */

struct collect {
	const struct digest_ctx *c;
	const struct basis *b;
	int64_t user_id;
	int preview;
	struct digest_entry *items;
	size_t n, cap;
	int failed;
};

static void make_url(const struct collect *k, const struct store_digest_item *it,
		     enum digest_action a, char *out, size_t outsz)
{
	struct digest_link l;
	char token[DIGEST_TOKEN_MAX];
	int n;

	if (k->preview) {
		snprintf(out, outsz, "%s/q/preview", k->c->url_base);
		return;
	}
	memset(&l, 0, sizeof(l));
	strlcpy_s(l.rcpt, it->rcpt, sizeof(l.rcpt));
	l.user_id = k->user_id;
	l.item_id = it->id;
	l.action = a;
	l.expires = (k->c->now_ms + k->c->conf->digest_link_lifetime_ms) / 1000;
	digest_link_nonce(&l);
	if (digest_link_sign(digest_key(), &l, token, sizeof(token)) < 0) {
		out[0] = '\0';
		return;
	}
	n = snprintf(out, outsz, "%s/q/%s", k->c->url_base, token);
	if (n < 0 || (size_t)n >= outsz)
		out[0] = '\0';
}

static int add_item(const struct store_digest_item *it, void *arg)
{
	struct collect *k = arg;
	struct digest_entry *e;

	if (k->n == k->cap)
		return 1;
	e = &k->items[k->n++];
	e->id = it->id;
	e->rcpt = xstrdup(it->rcpt);
	e->kind = xstrdup(it->kind);
	e->reason = xstrdup(it->reason);
	e->sender = xstrdup(it->sender);
	e->subject = xstrdup(it->subject != NULL ? it->subject : "");
	e->created_at = it->created_at;
	make_url(k, it, DIGEST_DELETE, e->del, sizeof(e->del));
	if (kind_in(k->b->kinds, it->kind)) {
		make_url(k, it, DIGEST_RELEASE, e->release, sizeof(e->release));
		make_url(k, it, DIGEST_ALLOW, e->allow, sizeof(e->allow));
	}
	if (e->del[0] == '\0')
		k->failed = 1;
	return 0;
}

static void collect_free(struct collect *k)
{
	size_t i;

	for (i = 0; i < k->n; i++) {
		free((char *)k->items[i].rcpt);
		free((char *)k->items[i].kind);
		free((char *)k->items[i].reason);
		free((char *)k->items[i].sender);
		free((char *)k->items[i].subject);
	}
	free(k->items);
}

struct rendered {
	struct dynbuf subject, text, html;
	int64_t count;
};

static void rendered_free(struct rendered *r)
{
	dynbuf_free(&r->subject);
	dynbuf_free(&r->text);
	dynbuf_free(&r->html);
}

/* Render u's digest of items created in (after, now]; *r filled (caller frees). */
static int render_user(struct store *st, const struct digest_ctx *c, const struct basis *b,
		       const struct store_digest_user *u, int64_t after, int preview,
		       struct rendered *r, char *err, size_t errsz)
{
	struct collect k;
	struct digest_view v;
	char console[DIGEST_URL_MAX];
	int rc = -1;

	memset(&k, 0, sizeof(k));
	k.c = c;
	k.b = b;
	k.user_id = u->id;
	k.preview = preview;
	k.cap = (size_t)c->conf->digest_max_items;
	k.items = xcalloc(k.cap, sizeof(*k.items));
	dynbuf_init(&r->subject, 4096);
	dynbuf_init(&r->text, DIGEST_MSG_MAX / 4);
	dynbuf_init(&r->html, DIGEST_MSG_MAX / 4);
	if (store_digest_items(st, u->id, after, c->now_ms, (int64_t)k.cap, add_item, &k,
			       &r->count) < 0) {
		snprintf(err, errsz, "items: %s", store_digest_errmsg(st));
		goto out;
	}
	if (k.failed) {
		snprintf(err, errsz, "a link does not fit in %d bytes (digest_url_base too long?)",
			 DIGEST_URL_MAX);
		goto out;
	}
	snprintf(console, sizeof(console), "%s/my/quarantine", c->url_base);
	v.user = u->name;
	v.address = u->address;
	v.count = r->count;
	v.items = k.items;
	v.nitems = k.n;
	v.console = console;
	if (digest_render(&b->tpl, &v, &r->subject, &r->text, &r->html) < 0) {
		snprintf(err, errsz, "the digest is too large");
		goto out;
	}
	rc = 0;
out:
	collect_free(&k);
	return rc;
}

/* ---- queueing (spool_inject.h: the spool writer's order) ---- */

struct outmsg {
	struct spool_inject_msg m;
	char to[330];
	char user[65];
	int64_t items;
};

/*
 * Publish outs[0..n), make them durable, then commit their rows with every
 * user's last_at = now (users[0..nusers)).  On failure nothing stays.
 */
static int commit_batch(struct store *st, const struct conf *conf,
			const struct spool_inject_dirs *d, struct outmsg *outs, size_t n,
			const int64_t *users, size_t nusers, int64_t now, char *err,
			size_t errsz)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (spool_inject_publish(d, &outs[i].m, err, errsz) < 0)
			goto fail;
	if (n > 0 && spool_inject_sync(d, err, errsz) < 0)
		goto fail;
	if (store_begin(st) < 0) {
		snprintf(err, errsz, "begin: %s", store_digest_errmsg(st));
		goto fail;
	}
	for (i = 0; i < n; i++) {
		const char *rcpts[1] = { outs[i].to };

		/* The null sender, like a DSN: a bounce of a digest goes nowhere. */
		if (spool_inject_rows(st, &outs[i].m, conf->hostname, "", rcpts, 1, now, err,
				      errsz) < 0)
			goto rollback;
	}
	for (i = 0; i < nusers; i++) {
		if (store_digest_mark(st, users[i], now) < 0) {
			snprintf(err, errsz, "mark: %s", store_digest_errmsg(st));
			goto rollback;
		}
	}
	if (store_commit(st) < 0) {
		snprintf(err, errsz, "commit: %s", store_digest_errmsg(st));
		goto rollback;
	}
	for (i = 0; i < n; i++)
		log_info(outs[i].m.qid, "digest", "queued user=%s to=<%s> items=%lld size=%lld",
			 outs[i].user, outs[i].to, (long long)outs[i].items,
			 (long long)outs[i].m.size);
	return 0;
rollback:
	store_rollback(st);
fail:
	for (i = 0; i < n; i++)
		spool_inject_undo(d, &outs[i].m, 1);
	return -1;
}

/* Render u's digest into a message ready to write; 0 or -1. */
static int build_mail(struct store *st, const struct digest_ctx *c, const struct basis *b,
		      const struct store_digest_user *u, int64_t after, struct dynbuf *msg,
		      int64_t *count, char *err, size_t errsz)
{
	struct rendered r;
	struct digest_mail m;
	char id[40];
	char hex[20];

	if (render_user(st, c, b, u, after, 0, &r, err, errsz) < 0) {
		rendered_free(&r);
		return -1;
	}
	*count = r.count;
	if (r.count == 0 && after > 0) {
		rendered_free(&r);
		return 0;
	}
	random_hex(hex, 8);
	snprintf(id, sizeof(id), "%llx.%s", (unsigned long long)c->now_ms, hex);
	m.from = b->from;
	m.to = u->address;
	m.hostname = c->conf->hostname;
	m.id = id;
	m.now_ms = c->now_ms;
	m.subject = r.subject.data;
	m.text = r.text.data;
	m.html = r.html.data;
	if (digest_message(msg, &m) < 0) {
		snprintf(err, errsz, "the digest is larger than %d bytes", DIGEST_MSG_MAX);
		rendered_free(&r);
		return -1;
	}
	rendered_free(&r);
	return 0;
}

/* ---- the HTTP side: preview and send now ---- */

int digest_preview(struct store *st, const struct digest_ctx *c, const char *user,
		   char **subject, char **text, char **html, int64_t *items, int *no_user,
		   char *err, size_t errsz)
{
	struct store_digest_user u;
	struct basis b;
	struct rendered r;
	int found;

	*no_user = 0;
	*subject = *text = *html = NULL;
	if (store_digest_user_get(st, 0, user, &u, &found) < 0) {
		snprintf(err, errsz, "user: %s", store_digest_errmsg(st));
		return -1;
	}
	if (!found) {
		*no_user = 1;
		snprintf(err, errsz, "no such user");
		return -1;
	}
	if (basis_load(st, c->conf, &b) < 0) {
		snprintf(err, errsz, "template: %s", store_digest_errmsg(st));
		basis_free(&b);
		return -1;
	}
	if (render_user(st, c, &b, &u, 0, 1, &r, err, errsz) < 0) {
		rendered_free(&r);
		basis_free(&b);
		return -1;
	}
	basis_free(&b);
	*items = r.count;
	*subject = xstrdup(r.subject.data);
	*text = xstrdup(r.text.data);
	*html = xstrdup(r.html.data);
	rendered_free(&r);
	return 0;
}

struct mark_arg {
	int64_t user_id, now;
};

/* Inside spool_inject's transaction: the user's last_at moves with the row. */
static int mark_sent(struct store *st, const char *qid, void *arg)
{
	const struct mark_arg *m = arg;

	(void)qid;
	return store_digest_mark(st, m->user_id, m->now);
}

int digest_send_now(struct store *st, const struct digest_ctx *c, const char *user,
		    int64_t *items, char *qid, size_t qidsz, const char **bad, char *err,
		    size_t errsz)
{
	struct store_digest_user u;
	struct mark_arg ma;
	struct basis b;
	struct dynbuf msg;
	const char *rcpts[1];
	char q[SPOOL_QID_LEN + 1];
	int found, rc = -1;

	*bad = NULL;
	if (store_digest_user_get(st, 0, user, &u, &found) < 0) {
		snprintf(err, errsz, "user: %s", store_digest_errmsg(st));
		return -1;
	}
	if (!found || u.address[0] == '\0') {
		*bad = found ? "the user has no mail address" : "no such user";
		return -1;
	}
	if (basis_load(st, c->conf, &b) < 0) {
		snprintf(err, errsz, "template: %s", store_digest_errmsg(st));
		basis_free(&b);
		return -1;
	}
	dynbuf_init(&msg, DIGEST_MSG_MAX);
	if (build_mail(st, c, &b, &u, 0, &msg, items, err, errsz) < 0)
		goto out;
	rcpts[0] = u.address;
	ma.user_id = u.id;
	ma.now = c->now_ms;
	/* The null sender, like a DSN: a bounce of a digest goes nowhere. */
	if (spool_inject(st, c->conf->data_dir, "file", c->conf->hostname, msg.data, msg.len, "",
			 rcpts, 1, mark_sent, &ma, q, err, errsz) < 0)
		goto out;
	log_info(q, "digest", "queued user=%s to=<%s> items=%lld size=%lld", u.name, u.address,
		 (long long)*items, (long long)msg.len);
	strlcpy_s(qid, q, qidsz);
	rc = 0;
out:
	dynbuf_free(&msg);
	basis_free(&b);
	return rc;
}

/* ---- the periodic round ---- */

/* The start of iv's latest slot at or before now (unix ms); 0 for "none". */
static int64_t slot_start(const struct conf *conf, const char *iv, int64_t now_ms)
{
	time_t now = (time_t)(now_ms / 1000);
	struct tm tm;
	time_t t;
	int back;

	if (strcmp(iv, "hourly") == 0)
		/* Half a check of slack, so that a round a little early still counts. */
		return now_ms - 3600000 + conf->digest_check_ms / 2;
	localtime_r(&now, &tm);
	tm.tm_hour = (int)conf->digest_hour;
	tm.tm_min = 0;
	tm.tm_sec = 0;
	tm.tm_isdst = -1;
	if (strcmp(iv, "weekly") == 0) {
		back = (tm.tm_wday - (int)conf->digest_weekday + 7) % 7;
		tm.tm_mday -= back;
	}
	t = mktime(&tm);
	if (t > now) {
		localtime_r(&now, &tm);
		tm.tm_hour = (int)conf->digest_hour;
		tm.tm_min = 0;
		tm.tm_sec = 0;
		tm.tm_isdst = -1;
		if (strcmp(iv, "weekly") == 0)
			tm.tm_mday -= (tm.tm_wday - (int)conf->digest_weekday + 7) % 7 + 7;
		else
			tm.tm_mday -= 1;
		t = mktime(&tm);
	}
	return (int64_t)t * 1000;
}

/*
 * 1: this node sends the user's digest that follows the one sent at last_at;
 * 0: another node of the cluster does.  Nodes that know the same last_at
 * compete for the same key; once a digest is sent its last_at reaches them.
 */
static int claim_next(const struct digest_ctx *c, int64_t user_id, int64_t last_at)
{
	char key[96];
	int won;

	if (c->claims == NULL)
		return 1;
	snprintf(key, sizeof(key), "moat:digest:%lld:%lld", (long long)user_id,
		 (long long)last_at);
	won = cluster_redis_claim(c->claims, key, DIGEST_CLAIM_MS);
	if (won < 0)
		log_warn(NULL, "digest", "claim failed user_id=%lld: Redis did not answer;"
			 " sending from this node", (long long)user_id);
	return won != 0;
}

static int run_chunk(struct store *st, const struct digest_ctx *c, const struct basis *b,
		     const struct spool_inject_dirs *d, const int64_t *ids, size_t n,
		     struct digest_round *r, char *err, size_t errsz)
{
	struct outmsg *outs = xcalloc(n, sizeof(*outs));
	struct dynbuf msg;
	size_t nouts = 0, i;
	int rc = -1;

	dynbuf_init(&msg, DIGEST_MSG_MAX);
	for (i = 0; i < n; i++) {
		struct store_digest_user u;
		int64_t count = 0;
		int found;
		char why[300];

		r->users++;
		if (store_digest_user_get(st, ids[i], NULL, &u, &found) < 0) {
			snprintf(err, errsz, "user: %s", store_digest_errmsg(st));
			goto out;
		}
		if (!found || !claim_next(c, u.id, u.last_at))
			continue;
		dynbuf_reset(&msg);
		/* A user never sent a digest counts from the start of time. */
		if (build_mail(st, c, b, &u, u.last_at > 0 ? u.last_at : 1, &msg, &count, why,
			       sizeof(why)) < 0) {
			/* One user's failure does not hold the others back. */
			log_warn(NULL, "digest", "skipped user=%s reason=\"%s\"", u.name, why);
			continue;
		}
		if (count == 0)
			continue;
		if (u.address[0] == '\0') {
			log_warn(NULL, "digest", "skipped user=%s items=%lld reason=\"no address\"",
				 u.name, (long long)count);
			continue;
		}
		strlcpy_s(outs[nouts].to, u.address, sizeof(outs[nouts].to));
		strlcpy_s(outs[nouts].user, u.name, sizeof(outs[nouts].user));
		outs[nouts].items = count;
		if (spool_inject_write(d, msg.data, msg.len, &outs[nouts].m, err, errsz) < 0) {
			for (i = 0; i < nouts; i++)
				spool_inject_undo(d, &outs[i].m, 1);
			goto out;
		}
		nouts++;
		r->items += count;
	}
	if (commit_batch(st, c->conf, d, outs, nouts, ids, n, c->now_ms, err, errsz) < 0)
		goto out;
	r->sent += (int)nouts;
	rc = 0;
out:
	dynbuf_free(&msg);
	free(outs);
	return rc;
}

int digest_run_round(struct store *st, const struct digest_ctx *c, struct digest_round *r,
		     char *err, size_t errsz)
{
	static const char *const ivs[] = { "hourly", "daily", "weekly" };
	int64_t ids[DIGEST_CHUNK];
	int64_t started = time_mono_ms();
	struct spool_inject_dirs d;
	struct basis b;
	size_t i, n;
	int rc = -1;

	memset(r, 0, sizeof(*r));
	if (store_begin(st) == 0) {
		if (store_digest_nonce_purge(st, c->now_ms, DIGEST_NONCE_PURGE) < 0 ||
		    store_commit(st) < 0)
			store_rollback(st);
	}
	if (basis_load(st, c->conf, &b) < 0) {
		snprintf(err, errsz, "template: %s", store_digest_errmsg(st));
		basis_free(&b);
		return -1;
	}
	if (spool_inject_open(c->conf->data_dir, c->conf->spool_sync, &d, err, errsz) < 0) {
		basis_free(&b);
		return -1;
	}
	for (i = 0; i < ARRAY_LEN(ivs); i++) {
		int64_t before = slot_start(c->conf, ivs[i], c->now_ms);

		for (;;) {
			if (store_digest_due(st, ivs[i], before, ids, DIGEST_CHUNK, &n) < 0) {
				snprintf(err, errsz, "due: %s", store_digest_errmsg(st));
				goto out;
			}
			if (n == 0)
				break;
			if (run_chunk(st, c, &b, &d, ids, n, r, err, errsz) < 0)
				goto out;
		}
	}
	rc = 0;
out:
	r->ms = time_mono_ms() - started;
	spool_inject_close(&d);
	basis_free(&b);
	return rc;
}

/* ---- the job on the loop ---- */

struct digest_job {
	struct worker_job wj;
	struct digest_round r;
	int failed;
};

struct digest {
	const struct conf *conf;
	struct event *timer;
	struct worker *worker;
	struct store *st;              /* the worker thread's */
	char url_base[DIGEST_URL_MAX];
	void (*kick)(void *arg);
	void *kick_arg;
	int busy;                      /* a round is under way */
};

static void job_run(struct worker_job *wj, void *arg)
{
	struct digest *d = arg;
	struct digest_job *j = (struct digest_job *)(void *)wj;
	struct digest_ctx c;
	char err[512];

	c.conf = d->conf;
	c.url_base = d->url_base;
	c.now_ms = time_now_ms();
	c.claims = NULL;
	if (d->conf->cluster_redis[0] != '\0') {
		/* One connection per round: rounds are minutes apart. */
		c.claims = cluster_redis_connect_sync(d->conf->cluster_redis,
						      d->conf->cluster_redis_timeout_ms, err,
						      sizeof(err));
		if (c.claims == NULL)
			log_warn(NULL, "digest", "Redis unreachable (%s): this node sends the"
				 " digests due on its own", err);
	}
	if (digest_run_round(d->st, &c, &j->r, err, sizeof(err)) < 0) {
		j->failed = 1;
		log_error(NULL, "digest", "round failed users=%d sent=%d: %s", j->r.users,
			  j->r.sent, err);
	}
	if (c.claims != NULL)
		redisFree(c.claims);
}

static void job_done(struct worker_job *wj, void *arg)
{
	struct digest *d = arg;
	struct digest_job *j = (struct digest_job *)(void *)wj;

	d->busy = 0;
	if (j->r.users > 0 || j->r.sent > 0)
		log_info(NULL, "digest", "round users=%d sent=%d items=%lld ms=%lld", j->r.users,
			 j->r.sent, (long long)j->r.items, (long long)j->r.ms);
	if (j->r.sent > 0 && d->kick != NULL)
		d->kick(d->kick_arg);
	free(j);
}

static void tick(evutil_socket_t fd, short what, void *arg)
{
	struct digest *d = arg;
	struct digest_job *j;

	(void)fd;
	(void)what;
	if (d->busy)
		return; /* one round at a time; the next tick tries again */
	d->busy = 1;
	j = xcalloc(1, sizeof(*j));
	worker_submit(d->worker, &j->wj);
}

struct digest *digest_start(struct event_base *base, const struct conf *conf,
			    const char *db_path, const char *url_base,
			    void (*kick)(void *arg), void *kick_arg, char *err, size_t errsz)
{
	static const struct worker_ops ops = { .run = job_run, .done = job_done };
	struct digest *d = xcalloc(1, sizeof(*d));
	struct timeval tv;

	d->conf = conf;
	d->kick = kick;
	d->kick_arg = kick_arg;
	strlcpy_s(d->url_base, url_base, sizeof(d->url_base));
	d->st = store_open(db_path, 0, err, errsz);
	if (d->st == NULL) {
		free(d);
		return NULL;
	}
	d->worker = worker_new(base, "digest", &ops, d, err, errsz);
	if (d->worker == NULL) {
		store_close(d->st);
		free(d);
		return NULL;
	}
	d->timer = event_new(base, -1, EV_PERSIST, tick, d);
	tv.tv_sec = conf->digest_check_ms / 1000;
	tv.tv_usec = (conf->digest_check_ms % 1000) * 1000;
	event_add(d->timer, &tv);
	return d;
}

void digest_free(struct digest *d)
{
	if (d == NULL)
		return;
	event_free(d->timer);
	worker_free(d->worker); /* a round under way finishes; its done() runs here */
	store_close(d->st);
	free(d);
}
