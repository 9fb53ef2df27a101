/*
 * policy: the engine of the front-door policy and what its stages share.
 * See policy.h for the contract, policy_stage.h for the pieces.
 *
 * Here: the snapshot watcher, statistics, per-client records (connection
 * rate, unknown-recipient ring), per-session state, DNS plumbing and the
 * stage runner.  The checks themselves live in one file per stage:
 * policy_connect.c, policy_helo.c, policy_mail.c, policy_rcpt.c,
 * policy_data.c; the account defence (account/) is reached only through
 * policy_account.c.
 *
 * Threads: everything here runs on the mail loop except the watcher's
 * run() (util/worker.h, its own SQLite connection).  Every POLL_MS a loop
 * timer submits one poll job carrying the statistics deltas gathered on
 * the loop; run() writes them and, when the policy generation moved, builds
 * a snapshot; done() swaps it in and arms the timer again, so one poll at
 * most is under way.  Snapshot reference counts are touched on the loop
 * only.
 *
 * Stages: each SMTP step has a table of checks run in order by
 * policy_run_stage().  A check returns CONTINUE, ACCEPT (an allow entry:
 * skip the stage's remaining checks except CHECK_ALWAYS ones), REFUSE,
 * DEFER, or PENDING after starting DNS queries or a tarpit timer; the stage
 * then resumes at the same check once every answer is in.
 *
 * DNS callbacks carry the session id as cookie and a small heap query as
 * ctx (freed in the callback, which dns.h promises runs exactly once); the
 * session may be gone, and then the answer is dropped.  A time-out or
 * SERVFAIL never refuses mail: it is logged and the check passes.
 */
#include "policy_stage.h"

#include <arpa/inet.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "../account/account.h"
#include "../cluster/cluster_redis.h"
#include "../dns/dns.h"
#include "../log/log.h"
#include "../store/store.h"
#include "../score/score_models.h"
#include "../store/store_bayes.h"
#include "../store/store_mailbox.h"
#include "../store/store_policy.h"
#include "../util/util.h"
#include "../util/worker.h"

/* A change made on another node of a cluster must bite here within a second
 * (docs/cluster.md): apply (tens of ms) + one poll + the snapshot build. */
#define POLL_MS 200
#define BAYES_RELOAD_MS 2000

struct dnsq {
	struct policy *p;
	policy_answer_fn on;
	int idx;
};

/* A poll of the watcher; the last one, at stop, only writes statistics. */
struct watch_job {
	struct worker_job base;
	struct stat_delta *stats;        /* taken on the loop; NULL once written */
	size_t nstats;
	int last;
	struct policy_snap *snap;        /* built on the worker, for done() */
};

/* --- helpers -------------------------------------------------------------- */

static int64_t today(void)
{
	return time_now_ms() / 86400000;
}

void policy_verdict_set(struct policy_verdict *v, enum policy_action a, const char *code,
			const char *check, const struct policy_ref *ref, const char *text)
{
	v->action = a;
	strlcpy_s(v->code, code, sizeof(v->code));
	strlcpy_s(v->check, check, sizeof(v->check));
	strlcpy_s(v->text, text, sizeof(v->text));
	if (ref != NULL)
		snprintf(v->entry, sizeof(v->entry), "%s entry %lld %s", ref->list,
			 (long long)ref->id, ref->value);
	else
		v->entry[0] = '\0';
}

void policy_vtext(struct policy_sess *ps, struct policy_verdict *v, const char *tmpl,
		  const char *zone)
{
	char buf[sizeof(v->text)];

	policy_expand(tmpl, ps->addr, zone ? zone : "", buf, sizeof(buf));
	strlcpy_s(v->text, buf, sizeof(v->text));
}

/* Add to the delta of (name, zone) in *arr. */
static void delta_add(struct stat_delta **arr, size_t *n, size_t *cap, const char *name,
		      int zone, int64_t count, int64_t queries, int64_t hits, int64_t tempfails,
		      int64_t last_hit)
{
	struct stat_delta *d;
	size_t i;

	for (i = 0; i < *n; i++)
		if ((*arr)[i].zone == zone && strcmp((*arr)[i].name, name) == 0)
			break;
	if (i == *n) {
		if (*n == *cap) {
			*cap = *cap ? *cap * 2 : 32;
			*arr = xrealloc(*arr, *cap * sizeof(**arr));
		}
		memset(&(*arr)[i], 0, sizeof((*arr)[i]));
		strlcpy_s((*arr)[i].name, name, sizeof((*arr)[i].name));
		(*arr)[i].zone = zone;
		(*n)++;
	}
	d = &(*arr)[i];
	d->count += count;
	d->queries += queries;
	d->hits += hits;
	d->tempfails += tempfails;
	if (last_hit > d->last_hit)
		d->last_hit = last_hit;
}

void policy_stat_add(struct policy *p, const char *name, int zone, int64_t count,
		     int64_t queries, int64_t hits, int64_t tempfails, int64_t last_hit)
{
	if (p == NULL)
		return;
	delta_add(&p->stats, &p->nstats, &p->stats_cap, name, zone, count, queries, hits,
		  tempfails, last_hit);
	/* A cluster's DNSBL statistics: sent to Redis with the next poll. */
	if (zone && p->redis != NULL)
		delta_add(&p->cstats, &p->ncstats, &p->cstats_cap, name, zone, count, queries,
			  hits, tempfails, last_hit);
}

void policy_snap_unref(struct policy_snap *sn)
{
	if (sn != NULL && --sn->refs == 0)
		policy_snap_free(sn);
}

/* --- clients -------------------------------------------------------------- */

static size_t ip_hash(const uint8_t ip[16], size_t n)
{
	uint64_t h = 1469598103934665603ULL;
	int i;

	for (i = 0; i < 16; i++) {
		h ^= ip[i];
		h *= 1099511628211ULL;
	}
	return (size_t)(h % n);
}

static struct client_rec *client_get(struct policy *p, const uint8_t ip[16])
{
	size_t b = ip_hash(ip, CLIENT_BUCKETS);
	struct client_rec *c;

	for (c = p->clients[b]; c != NULL; c = c->next)
		if (memcmp(c->ip, ip, 16) == 0)
			return c;
	c = xcalloc(1, sizeof(*c));
	memcpy(c->ip, ip, 16);
	c->next = p->clients[b];
	p->clients[b] = c;
	return c;
}

/* Connections in the last minute: two 60 s buckets, the older one weighted. */
int64_t policy_client_rate(struct client_rec *c, int64_t now, int add)
{
	int64_t elapsed = now - c->win_start;

	if (elapsed >= 120000) {
		c->prev = 0;
		c->cur = 0;
		c->win_start = now;
		elapsed = 0;
	} else if (elapsed >= 60000) {
		c->prev = c->cur;
		c->cur = 0;
		c->win_start += 60000;
		elapsed -= 60000;
	}
	c->cur += add;
	return c->cur + c->prev * (60000 - elapsed) / 60000;
}

/* Unknown-recipient attempts within window_ms. */
size_t policy_harvest_count(struct client_rec *c, int64_t now, int64_t window_ms)
{
	while (c->rlen > 0 && c->ring[c->rhead] < now - window_ms) {
		c->rhead = (c->rhead + 1) % c->rcap;
		c->rlen--;
	}
	return c->rlen;
}

void policy_harvest_add(struct client_rec *c, int64_t now, int64_t window_ms, size_t keep)
{
	if (keep == 0)
		return;
	if (keep > HARVEST_RING_MAX)
		keep = HARVEST_RING_MAX;
	policy_harvest_count(c, now, window_ms);
	if (c->rcap < keep) {
		/* Re-pack in order into a bigger ring. */
		int64_t *n = xcalloc(keep, sizeof(*n));
		size_t i;

		for (i = 0; i < c->rlen; i++)
			n[i] = c->ring[(c->rhead + i) % c->rcap];
		free(c->ring);
		c->ring = n;
		c->rcap = keep;
		c->rhead = 0;
	}
	if (c->rlen == c->rcap) {
		c->rhead = (c->rhead + 1) % c->rcap;
		c->rlen--;
	}
	c->ring[(c->rhead + c->rlen) % c->rcap] = now;
	c->rlen++;
	c->last_ms = now;
}

static void prune_cb(evutil_socket_t fd, short what, void *arg)
{
	struct policy *p = arg;
	int64_t now = time_now_ms();
	int64_t keep_ms = 120000;
	size_t b;

	(void)fd;
	(void)what;
	if (p->cur != NULL && p->cur->set.harvest_window_s * 1000 > keep_ms)
		keep_ms = p->cur->set.harvest_window_s * 1000;
	for (b = 0; b < CLIENT_BUCKETS; b++) {
		struct client_rec **pp = &p->clients[b];

		while (*pp != NULL) {
			struct client_rec *c = *pp;

			if (c->sessions == 0 && now - c->last_ms > keep_ms) {
				*pp = c->next;
				free(c->ring);
				free(c);
			} else {
				pp = &c->next;
			}
		}
	}
}

/* --- sessions ------------------------------------------------------------- */

struct policy_sess *policy_sess_find(struct policy *p, uint64_t sid)
{
	struct policy_sess *ps;

	for (ps = p->sess[sid % SESS_BUCKETS]; ps != NULL; ps = ps->hnext)
		if (ps->sid == sid)
			return ps;
	return NULL;
}

static struct policy_sess *sess_alloc(struct policy_snap *sn, uint64_t sid,
				      const struct sockaddr *client)
{
	struct policy_sess *ps = xcalloc(1, sizeof(*ps));

	ps->sid = sid;
	snprintf(ps->idstr, sizeof(ps->idstr), "%016llx", (unsigned long long)sid);
	ps->snap = sn;
	sn->refs++;
	if (client->sa_family == AF_INET6 &&
	    IN6_IS_ADDR_V4MAPPED(&((const struct sockaddr_in6 *)client)->sin6_addr)) {
		/* Treat a mapped client as the IPv4 client it is. */
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ps->sa;

		s4->sin_family = AF_INET;
		memcpy(&s4->sin_addr, &((const struct sockaddr_in6 *)client)->sin6_addr.s6_addr[12],
		       4);
	} else if (client->sa_family == AF_INET6) {
		memcpy(&ps->sa, client, sizeof(struct sockaddr_in6));
	} else {
		memcpy(&ps->sa, client, sizeof(struct sockaddr_in));
	}
	policy_sockaddr_ip((struct sockaddr *)&ps->sa, ps->ip);
	policy_ip_format(ps->ip, ps->addr, sizeof(ps->addr));
	ps->bl = xcalloc(sn->nsites + 1, sizeof(*ps->bl));
	return ps;
}

struct policy_sess *policy_sess_new(struct policy *p, uint64_t sid,
				    const struct sockaddr *client, const struct sockaddr *local)
{
	struct policy_sess *ps = sess_alloc(p->cur, sid, client);
	size_t b = sid % SESS_BUCKETS;
	int64_t now = time_now_ms();

	ps->p = p;
	if (local != NULL && policy_sockaddr_ip(local, ps->local_ip) == 0)
		ps->has_local = 1;
	ps->client = client_get(p, ps->ip);
	ps->client->sessions++;
	ps->client->last_ms = now;
	policy_client_rate(ps->client, now, 1);
	ps->hnext = p->sess[b];
	p->sess[b] = ps;
	return ps;
}

struct policy_sess *policy_sess_test(struct policy_snap *sn, const char *ip)
{
	struct sockaddr_storage ss;
	uint8_t a[16];

	memset(&ss, 0, sizeof(ss));
	if (policy_ip_parse(ip, strlen(ip), a) < 0)
		return NULL;
	if (a[10] == 0xff && a[11] == 0xff && a[0] == 0) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		s4->sin_family = AF_INET;
		memcpy(&s4->sin_addr, a + 12, 4);
	} else {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		s6->sin6_family = AF_INET6;
		memcpy(&s6->sin6_addr, a, 16);
	}
	return sess_alloc(sn, 1, (struct sockaddr *)&ss);
}

void policy_sess_free(struct policy_sess *ps)
{
	if (ps == NULL)
		return;
	if (ps->p != NULL) {
		struct policy_sess **pp = &ps->p->sess[ps->sid % SESS_BUCKETS];

		while (*pp != NULL && *pp != ps)
			pp = &(*pp)->hnext;
		if (*pp == ps)
			*pp = ps->hnext;
		if (ps->client != NULL) {
			ps->client->sessions--;
			ps->client->last_ms = time_now_ms();
		}
	}
	if (ps->timer != NULL)
		event_free(ps->timer);
	policy_sess_auth_free(ps);
	free(ps->hdr);
	/* A content result nobody took: its file was never acknowledged. */
	policy_content_result_free(ps->content);
	policy_snap_unref(ps->snap);
	free(ps->bl);
	free(ps);
}

const char *policy_client_name(const struct policy_sess *ps)
{
	return ps->name[0] ? ps->name : NULL;
}

const struct policy_verdict *policy_delayed(const struct policy_sess *ps)
{
	size_t i;

	for (i = 0; i < ARRAY_LEN(ps->delayed); i++)
		if (ps->delayed[i].action == POLICY_REFUSE || ps->delayed[i].action == POLICY_DEFER)
			return &ps->delayed[i];
	return NULL;
}

int64_t policy_delay_reject_max(const struct policy_sess *ps)
{
	return ps->snap->set.delay_reject_max;
}

/* One asynchronous operation of ps finished; wake the caller when all have. */
void policy_op_done(struct policy_sess *ps)
{
	if (ps->npending > 0 && --ps->npending == 0 && ps->p != NULL && ps->p->done != NULL)
		ps->p->done(ps->sid, ps->p->done_arg);
}

struct dns *policy_sess_dns(struct policy_sess *ps)
{
	if (ps->p == NULL)
		return NULL;
	if (ps->p->dns == NULL && !ps->p->warned_no_dns) {
		log_warn(NULL, "policy", "no resolver: DNS-based checks are skipped");
		ps->p->warned_no_dns = 1;
	}
	return ps->p->dns;
}

static void dns_cb_fn(const struct dns_result *r, uint64_t cookie, void *ctx)
{
	struct dnsq *q = ctx;
	struct policy_sess *ps = NULL;

	if (r->status != DNS_CANCELLED && q->p != NULL)
		ps = policy_sess_find(q->p, cookie);
	if (ps == NULL) {
		/* The session is gone (or the resolver is shutting down). */
		free(q);
		return;
	}
	q->on(ps, r, q->idx);
	free(q);
	policy_op_done(ps);
}

static struct dnsq *dnsq_new(struct policy_sess *ps, policy_answer_fn on, int idx)
{
	struct dnsq *q = xcalloc(1, sizeof(*q));

	q->p = ps->p;
	q->on = on;
	q->idx = idx;
	ps->npending++;
	return q;
}

void policy_query(struct policy_sess *ps, const char *name, enum dns_type type,
		  policy_answer_fn on, int idx)
{
	dns_query(ps->p->dns, name, type, dns_cb_fn, ps->sid, dnsq_new(ps, on, idx));
}

void policy_query_ptr(struct policy_sess *ps, policy_answer_fn on)
{
	dns_query_ptr(ps->p->dns, (struct sockaddr *)&ps->sa, dns_cb_fn, ps->sid,
		      dnsq_new(ps, on, 0));
}

/* As dns_cb_fn, for dns_query_mail(): q->on is then a policy_mail_answer_fn. */
struct mailq {
	struct policy *p;
	policy_mail_answer_fn on;
};

static void mail_cb_fn(const struct dns_mail_result *r, uint64_t cookie, void *ctx)
{
	struct mailq *q = ctx;
	struct policy_sess *ps = NULL;

	if (r->status != DNS_MAIL_CANCELLED && q->p != NULL)
		ps = policy_sess_find(q->p, cookie);
	if (ps == NULL) {
		/* The session is gone (or the resolver is shutting down). */
		free(q);
		return;
	}
	q->on(ps, r);
	free(q);
	policy_op_done(ps);
}

void policy_query_mail(struct policy_sess *ps, const char *domain, policy_mail_answer_fn on)
{
	struct mailq *q = xcalloc(1, sizeof(*q));

	q->p = ps->p;
	q->on = on;
	ps->npending++;
	dns_query_mail(ps->p->dns, domain, mail_cb_fn, ps->sid, q);
}

static void tarpit_cb(evutil_socket_t fd, short what, void *arg)
{
	struct policy_sess *ps = arg;

	(void)fd;
	(void)what;
	ps->tarpit = A_DONE;
	policy_op_done(ps);
}

void policy_tarpit_start(struct policy_sess *ps, int64_t ms)
{
	struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000) };

	if (ps->timer == NULL)
		ps->timer = evtimer_new(ps->p->base, tarpit_cb, ps);
	ps->tarpit = A_WAIT;
	ps->npending++;
	evtimer_add(ps->timer, &tv);
}

enum policy_action policy_allow_deny(const struct policy_ref *allow,
				     const struct policy_ref *deny, int allow_wins)
{
	if (deny != NULL && (allow == NULL || !allow_wins))
		return POLICY_REFUSE;
	return allow != NULL ? POLICY_ACCEPT : POLICY_CONTINUE;
}

/* --- the stage runner ----------------------------------------------------- */

/*
 * Run checks[0..n) for step, from where a PENDING left it.  The verdict
 * that stops mail is counted in the statistics under the check's name.
 */
enum policy_action policy_run_stage(struct policy_sess *ps, enum step step,
				    const struct check *checks, size_t n,
				    const struct step_args *a, struct policy_verdict *v)
{
	enum policy_action r = POLICY_CONTINUE;
	size_t at;

	memset(v, 0, sizeof(*v));
	if (ps->npending > 0) {
		v->action = POLICY_PENDING;
		return POLICY_PENDING; /* called before done(): keep waiting */
	}
	if (ps->step != step) {
		ps->step = step;
		ps->pos = 0;
		ps->accepted = 0;
	}
	for (; ps->pos < n; ps->pos++) {
		if (ps->accepted && !(checks[ps->pos].flags & CHECK_ALWAYS))
			continue;
		r = checks[ps->pos].fn(ps, ps->snap, a, v);
		if (r == POLICY_PENDING) {
			v->action = POLICY_PENDING;
			return r;
		}
		if (r == POLICY_ACCEPT) {
			ps->accepted = 1;
			r = POLICY_CONTINUE;
			continue;
		}
		if (r != POLICY_CONTINUE)
			break;
	}
	at = ps->pos;
	ps->step = STEP_NONE;
	ps->pos = 0;
	ps->accepted = 0;
	if (r == POLICY_REFUSE || r == POLICY_DEFER) {
		policy_stat_add(ps->p, v->check, 0, 1, 0, 0, 0, 0);
		if ((step == STEP_CONNECT || step == STEP_HELO) && at < n &&
		    (checks[at].flags & CHECK_DELAYABLE) && ps->snap->set.delay_reject) {
			/* delay_reject: remembered, given at RCPT (policy_delayed). */
			struct policy_verdict *d = &ps->delayed[step == STEP_CONNECT ? 0 : 1];

			*d = *v;
			d->close = 0;
			log_info(ps->idstr, "policy", "delayed reject stage=%s check=%s code=\"%s\""
				 " client=[%s]", step == STEP_CONNECT ? "connect" : "helo",
				 d->check, d->code, ps->addr);
			memset(v, 0, sizeof(*v));
			v->action = POLICY_CONTINUE;
			return POLICY_CONTINUE;
		}
		return r;
	}
	memset(v, 0, sizeof(*v));
	v->action = POLICY_CONTINUE;
	return POLICY_CONTINUE;
}

/* --- the engine ----------------------------------------------------------- */

/* Worker thread: write j's statistics (freed when written). */
static void flush_stats(struct store *st, struct watch_job *j)
{
	struct stat_delta *d = j->stats;
	size_t i;
	int64_t day = today();

	if (j->nstats == 0)
		return;
	j->stats = NULL;
	if (store_begin(st) < 0) {
		log_error(NULL, "policy", "statistics lost: %s", store_policy_errmsg(st));
		free(d);
		return;
	}
	for (i = 0; i < j->nstats; i++) {
		int rc = d[i].zone
			? store_policy_dnsbl_stat_add(st, d[i].name, day, d[i].queries, d[i].hits,
						      d[i].tempfails, d[i].last_hit)
			: store_policy_stat_add(st, d[i].name, day, d[i].count);

		if (rc < 0)
			log_error(NULL, "policy", "statistics: %s", store_policy_errmsg(st));
	}
	if (store_commit(st) < 0) {
		log_error(NULL, "policy", "statistics lost: %s", store_policy_errmsg(st));
		store_rollback(st);
	}
	free(d);
}

static void watch_run(struct worker_job *wj, void *arg)
{
	struct watch_job *j = (struct watch_job *)wj;
	struct policy *p = arg;
	char err[512];
	int64_t gen;

	if (p->watch_st == NULL && (!p->watch_tried || j->last)) {
		p->watch_st = store_open(p->db_path, 0, err, sizeof(err));
		if (p->watch_st == NULL && !p->watch_tried)
			log_error(NULL, "policy", "watcher: %s; policy changes need a restart", err);
		p->watch_tried = 1;
	}
	if (p->watch_st == NULL)
		return; /* the statistics go back to the loop for the last job */
	if (!worker_stopping(p->watcher) && store_policy_generation(p->watch_st, &gen) == 0) {
		int64_t fp[4];
		/* Mailbox sets created, removed, or one whose has_refuse flipped
		 * (the RCPT class): a new snapshot.  An edit of a set's rules only
		 * moves fp[3]: the content workers ask for the set's generation
		 * themselves; here the recently used sets are compiled ahead. */
		int mbox = store_mailbox_fingerprint(p->watch_st, fp) == 0;
		int moved = mbox && memcmp(fp, p->last_mbox_fp, 3 * sizeof(fp[0])) != 0;
		int64_t bgen = 0;
		/* Learning moved the bayes generation: new models reach the mail
		 * side without a policy change.  p->cur is only replaced by done(),
		 * after this job, so reading it here is safe.  While learning goes
		 * on, one reload every BAYES_RELOAD_MS at most: loading a large
		 * model costs about a second of CPU. */
		int learned = p->cur != NULL && p->cur->set.score_enabled &&
			      store_bayes_generation(p->watch_st, &bgen) == 0 &&
			      bgen != p->last_bayes_gen &&
			      time_mono_ms() - p->bayes_reload_ms >= BAYES_RELOAD_MS;

		if (gen != p->last_gen || moved || learned) {
			j->snap = policy_snap_load(p->db_path, err, sizeof(err));
			if (j->snap == NULL) {
				log_error(NULL, "policy", "reload failed: %s", err);
			} else {
				p->last_gen = j->snap->generation;
				memcpy(p->last_mbox_fp, j->snap->mbox_fp, sizeof(p->last_mbox_fp));
				p->last_bayes_gen = j->snap->bayes_generation;
				if (learned)
					p->bayes_reload_ms = time_mono_ms();
			}
		}
		if (mbox && fp[3] != p->last_mbox_fp[3]) {
			policy_mbox_precompile(p->mbox, p->watch_st);
			p->last_mbox_fp[3] = fp[3];
		}
	}
	flush_stats(p->watch_st, j);
	if (j->last) {
		store_close(p->watch_st);
		p->watch_st = NULL;
	}
}

static void watch_done(struct worker_job *wj, void *arg)
{
	struct watch_job *j = (struct watch_job *)wj;
	struct policy *p = arg;
	struct timeval tv = { POLL_MS / 1000, (POLL_MS % 1000) * 1000 };
	size_t i;

	for (i = 0; j->stats != NULL && i < j->nstats; i++) {
		const struct stat_delta *d = &j->stats[i];

		/* Not written: back into the deltas (Redis already has them). */
		delta_add(&p->stats, &p->nstats, &p->stats_cap, d->name, d->zone, d->count,
			  d->queries, d->hits, d->tempfails, d->last_hit);
	}
	free(j->stats);
	if (j->snap != NULL && p->stopping) {
		policy_snap_free(j->snap); /* never handed to a session */
	} else if (j->snap != NULL) {
		/* mailbox_sets / mailbox_refuse: the part of the mailbox fingerprint
		 * a snapshot follows, so a wait for a new set can name what it waits for. */
		log_info(NULL, "policy",
			 "loaded generation=%lld entries=%zu sites=%zu mailbox_sets=%lld"
			 " mailbox_refuse=%lld bayes=%lld",
			 (long long)j->snap->generation, j->snap->nentries, j->snap->nsites,
			 (long long)j->snap->mbox_fp[0], (long long)j->snap->mbox_fp[2],
			 (long long)j->snap->bayes_generation);
		policy_snap_unref(p->cur);
		p->cur = j->snap;
	}
	if (!j->last && !p->stopping)
		evtimer_add(p->poll_ev, &tv);
	free(j);
}

/* Hand the statistics gathered so far to a poll job. */
static void watch_submit(struct policy *p, int last)
{
	struct watch_job *j = xcalloc(1, sizeof(*j));
	size_t i;

	/* The cluster's totals: sent while Redis is up, else counted on this node only. */
	for (i = 0; i < p->ncstats; i++)
		cluster_redis_dnsbl_add(p->redis, p->cstats[i].name, today(), p->cstats[i].queries,
					p->cstats[i].hits, p->cstats[i].tempfails,
					p->cstats[i].last_hit);
	p->ncstats = 0;
	j->stats = p->stats;
	j->nstats = p->nstats;
	j->last = last;
	p->stats = NULL;
	p->nstats = 0;
	p->stats_cap = 0;
	worker_submit(p->watcher, &j->base);
}

static void poll_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	watch_submit(arg, 0);
}

struct policy *policy_new(struct event_base *base, const char *db_path,
			  const struct policy_limits *lim, policy_done_cb done, void *arg,
			  char *err, size_t errsz)
{
	static const struct worker_ops watch_ops = { watch_run, NULL, watch_done, NULL, 0, 0 };
	struct policy *p = xcalloc(1, sizeof(*p));
	struct timeval ten = { 10, 0 };
	struct timeval poll = { POLL_MS / 1000, (POLL_MS % 1000) * 1000 };

	p->base = base;
	p->db_path = xstrdup(db_path);
	strlcpy_s(p->hostname, lim->hostname ? lim->hostname : "", sizeof(p->hostname));
	p->max_sessions = lim->max_sessions;
	if (lim->mime != NULL)
		p->mime = *lim->mime;
	else
		mime_limits_default(&p->mime);
	p->done = done;
	p->done_arg = arg;
	p->cur = policy_snap_load(db_path, err, errsz);
	if (p->cur == NULL) {
		policy_free(p);
		return NULL;
	}
	p->last_gen = p->cur->generation;
	memcpy(p->last_mbox_fp, p->cur->mbox_fp, sizeof(p->last_mbox_fp));
	p->last_bayes_gen = p->cur->bayes_generation;
	p->mbox = policy_mbox_cache_new(lim->mailbox_rules_cache > 0
					? (size_t)lim->mailbox_rules_cache
					: (size_t)256 * 1024 * 1024);
	log_info(NULL, "policy", "loaded generation=%lld entries=%zu sites=%zu",
		 (long long)p->cur->generation, p->cur->nentries, p->cur->nsites);
	p->prune_ev = event_new(base, -1, EV_PERSIST, prune_cb, p);
	event_add(p->prune_ev, &ten);
	p->watcher = worker_new(base, "policy", &watch_ops, p, err, errsz);
	if (p->watcher == NULL) {
		policy_free(p);
		return NULL;
	}
	p->poll_ev = evtimer_new(base, poll_cb, p);
	evtimer_add(p->poll_ev, &poll);
	if (policy_content_init(p, lim->content_workers, err, errsz) < 0) {
		policy_free(p);
		return NULL;
	}
	return p;
}

void policy_set_dns(struct policy *p, struct dns *dns)
{
	p->dns = dns;
}

int64_t policy_generation(const struct policy *p)
{
	return p->cur ? p->cur->generation : 0;
}

void policy_free(struct policy *p)
{
	size_t b;

	if (p == NULL)
		return;
	/* Content jobs still running hold snapshot references and spool files. */
	policy_content_fini(p);
	p->stopping = 1;
	if (p->watcher != NULL) {
		/* Statistics still unwritten: one last flush, after any poll under way. */
		watch_submit(p, 1);
		worker_free(p->watcher);
		p->watcher = NULL;
	}
	for (b = 0; b < SESS_BUCKETS; b++) {
		while (p->sess[b] != NULL) {
			struct policy_sess *ps = p->sess[b];

			p->sess[b] = ps->hnext;
			ps->p = NULL; /* sessions outliving the engine: a caller bug */
			ps->hnext = NULL;
		}
	}
	for (b = 0; b < CLIENT_BUCKETS; b++) {
		while (p->clients[b] != NULL) {
			struct client_rec *c = p->clients[b];

			p->clients[b] = c->next;
			free(c->ring);
			free(c);
		}
	}
	if (p->poll_ev != NULL)
		event_free(p->poll_ev);
	if (p->prune_ev != NULL)
		event_free(p->prune_ev);
	account_engine_free(p->accounts); /* flushes its totals */
	policy_mbox_cache_free(p->mbox);  /* workers and watcher have stopped */
	policy_snap_unref(p->cur);
	score_models_cache_drop(); /* the token data the next load would share */
	free(p->stats);
	free(p->cstats);
	free(p->db_path);
	free(p);
}
