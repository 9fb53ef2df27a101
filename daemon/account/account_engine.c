/*
 * account_engine: rate limits and compromised-account detection for
 * authenticated submission (see account.h and docs/submission.md).
 *
 * Loop side (every account_* call): per account a tracker
 * (account_track.c: events over account_window, message counters, client
 * networks and addresses, identical-content slots, the learned hourly
 * baseline) from which the score's named signals are computed
 * (account_score.c) after each MAIL, malformed MAIL and message:
 *
 *   senders 3 x (distinct - 1), foreign_from 3 x (distinct - 1),
 *   bindings 4 x, malformed 4 x, new_network 5, burst <= 10,
 *   same_content <= 8
 *
 * Crossing account_suspend_score suspends the account at once on the
 * loop; the worker then holds what it queued in the window, records the
 * suspension and its alert (signals, clients, samples of what was held;
 * notified 0 so that daemon/alert/ sends it), and holds once more 2 s
 * later, for messages that were committing meanwhile.  RCPT costs a rate
 * check only (recipients are not a signal).
 *
 * Rate limits: per account and per client address, per second (exact:
 * the times of the last N acceptances), minute, hour and day (two fixed
 * windows).  Trusted accounts skip the account limits.
 *
 * Worker side (util/worker.h): its own SQLite connection, opened and
 * closed on the worker thread; an account's known networks, baseline and
 * bulk history loaded when the loop first sees it (until then they count
 * as unknown: 0 points); totals, signals, networks and the hour just ended
 * flushed every 2 s; a tick job every 250 ms runs due re-holds and, every
 * second, reads suspensions, trust and limit overrides back, so that
 * `moatd accounts lift` takes effect without a restart.  Jobs run in the
 * order submitted, so a read taken after later jobs were submitted is not
 * used for suspensions (it could undo one).
 *
 * Cluster (account_engine_set_cluster): a suspension sets the account's
 * flag in Redis and a lift clears it, so that every node refuses the
 * account at once (policy/ asks Redis at MAIL and RCPT); a lift Redis did
 * not take, and every suspension, is sent again when Redis is back.  When
 * Redis decided a MAIL's or RCPT's rate limits (rated), the local windows
 * count but do not decide.
 *
 * Memory: about 16 KiB per account seen since start (account_internal.h),
 * plus the rate counters (account_win, bounded by key count).
 *
 * Never: block the loop; touch SQLite from the loop (except at start).
 */
#include "account_internal.h"

#include <errno.h>
#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "../cluster/cluster_redis.h"
#include "../conf/conf.h"
#include "../log/log.h"
#include "../spool/spool_read.h"
#include "../store/store.h"
#include "../store/store_account.h"
#include "../store/store_alert.h"
#include "../util/util.h"
#include "../util/worker.h"

#define FLUSH_MS 2000
#define POLL_MS 1000
#define REHOLD_MS 2000
#define TICK_MS 250
#define CLUSTER_POLL_MS 500   /* the cluster's suspended users read again */
#define IDLE_EVICT_MS 3600000 /* an idle account leaves memory (and after two windows) */
#define SAMPLES_MAX 5
#define SUBJECT_HDR_MAX 16384

enum job_kind { JOB_FLUSH, JOB_SUSPEND, JOB_TICK, JOB_LOAD, JOB_STOP };

struct poll_res;

struct job_net {
	char net[ACCT_NET_MAX];
	int64_t first_seen, last_seen, messages;
};

struct job_client {
	char addr[ACCT_ADDR_MAX];
	int64_t messages;
	int is_new;
};

struct load_res {
	struct job_net nets[ACCT_NETS];
	size_t nnets;
	float rate[ACCT_HOW];
	uint16_t weeks[ACCT_HOW];
	int64_t bulk_seen;
	int ok;
};

struct job {
	struct worker_job base;
	enum job_kind kind;
	char user[ACCT_NAME_MAX];
	int64_t msgs, rcpts, refused, score, since, now, volume_day, bulk_seen;
	char last_client[ACCT_ADDR_MAX];
	struct account_signal sig[ACCOUNT_NSIGNALS];
	int has_sig;
	struct job_net nets[ACCT_NETS];
	size_t nnets;
	int hour_ok;             /* JOB_FLUSH: an hour to learn */
	int how;
	int64_t how_count;
	struct job_client clients[ACCT_CLIENTS];
	size_t nclients;
	char reason[256];
	char detail[512];
	int64_t seq;             /* JOB_TICK: jobs submitted up to it */
	struct poll_res *res;    /* JOB_TICK: state read back, or NULL */
	struct load_res *load;   /* JOB_LOAD */
};

struct rehold {
	struct rehold *next;
	char user[ACCT_NAME_MAX];
	char reason[256];
	int64_t since, at, alert_id, total;
};

struct poll_flag {
	char user[ACCT_NAME_MAX];
	int64_t suspended, trusted_until;
};

struct poll_res {
	struct poll_flag *flags;
	size_t nflags;
	struct { char user[ACCT_NAME_MAX]; int64_t v[STORE_ACCOUNT_NLIMITS]; } *lims;
	size_t nlims;
};

struct account_engine {
	struct event_base *base;
	const struct conf *conf;
	char *db_path;
	struct acct **tab;
	size_t size;
	struct account_win *win;
	struct account_win *auth_fails;  /* AUTH failures by client address */
	int64_t lim_am[4], lim_ar[4], lim_cm[4], lim_cr[4];

	struct cluster_redis *redis;     /* cluster: suspension flags; NULL none */
	struct event *cluster_ev;        /* loop: reads the cluster's suspended users */
	int cluster_asking;              /* loop: a read is under way */
	struct worker *w;
	int stopping;            /* loop: account_engine_free() has begun */
	int64_t seq_sent;        /* loop: jobs submitted */
	struct event *tick_ev;   /* loop: submits the next tick */
	struct event *flush_ev;
	/* Worker thread only. */
	struct store *st;
	int st_tried;
	int64_t last_poll;
	struct rehold *reholds;
};

static const int64_t win_ms[4] = { 1000, 60000, 3600000, 86400000 };
static const char *const win_name[4] = { "second", "minute", "hour", "day" };

static void enqueue(struct account_engine *e, struct job *j)
{
	e->seq_sent++;
	worker_submit(e->w, &j->base);
}

static void submit_load(struct account_engine *e, struct acct *a)
{
	struct job *j;

	if (e->w == NULL || e->stopping || a->load_sent)
		return;
	a->load_sent = 1;
	j = xcalloc(1, sizeof(*j));
	j->kind = JOB_LOAD;
	strlcpy_s(j->user, a->user, sizeof(j->user));
	enqueue(e, j);
}

static struct acct *acct_get(struct account_engine *e, const char *user, int create)
{
	size_t b = acct_hash64(user) % e->size;
	struct acct *a;

	for (a = e->tab[b]; a != NULL; a = a->next)
		if (strcmp(a->user, user) == 0)
			return a;
	if (!create)
		return NULL;
	a = xmalloc(sizeof(*a));
	acct_init(a, user, time_now_ms());
	a->next = e->tab[b];
	e->tab[b] = a;
	submit_load(e, a);
	return a;
}

/* Suspended here, or on another node of the cluster. */
static int refused(const struct acct *a)
{
	return a->suspended || a->remote_suspended;
}

static int trusted(const struct acct *a, int64_t now)
{
	return a->trusted_until > now;
}

/* r's action is the one returned: one verdict, never two answers. */
static enum policy_action answer(struct policy_verdict *r, enum policy_action a)
{
	r->action = a;
	return a;
}

static void suspended_reply(struct policy_verdict *r)
{
	strlcpy_s(r->code, "550 5.7.1", sizeof(r->code));
	strlcpy_s(r->text,
		  "Account suspended: unusual sending was detected; contact your administrator",
		  sizeof(r->text));
	strlcpy_s(r->check, "account_suspended", sizeof(r->check));
}

static int64_t compute(struct account_engine *e, struct acct *a, int64_t now)
{
	struct account_facts f;

	acct_facts(a, now, e->conf->account_window_ms, e->conf->account_volume_floor,
		   trusted(a, now), &f);
	a->score = account_score_signals(&f, a->sig);
	return a->score;
}

/* The window's clients for the alert: address, messages, network new. */
static size_t window_clients(struct account_engine *e, const struct acct *a, int64_t now,
			     struct job_client *out)
{
	int64_t w = e->conf->account_window_ms;
	size_t n = 0;
	size_t i;

	for (i = 0; i < a->nclients; i++) {
		const struct acct_client *c = &a->clients[i];

		if (c->last < now - w)
			continue;
		strlcpy_s(out[n].addr, c->addr, sizeof(out[n].addr));
		out[n].messages = acct_client_messages(a, c->h, now, w);
		out[n].is_new = acct_net_new(a, c->net, now, w);
		n++;
	}
	return n;
}

/* ---- cluster: the suspension flag in Redis ------------------------------------ */

struct flag_req {
	struct account_engine *e;
	char user[ACCT_NAME_MAX];
	int on;
};

/*
 * A lift Redis did not take is sent again when it is up (cluster_up); so is
 * every suspension, which a restarted Redis has lost.
 */
static void flag_done(void *arg, int ok, const redisReply *r)
{
	struct flag_req *q = arg;
	struct acct *a;

	(void)r;
	if (!ok && !q->on && !q->e->stopping) {
		a = acct_get(q->e, q->user, 0);
		if (a != NULL && !a->suspended)
			a->flag_pending = 1;
	}
	free(q);
}

static void flag_send(struct account_engine *e, struct acct *a, int on)
{
	struct flag_req *q = xcalloc(1, sizeof(*q));

	q->e = e;
	strlcpy_s(q->user, a->user, sizeof(q->user));
	q->on = on;
	a->flag_pending = !on;
	if (cluster_redis_suspend(e->redis, a->user, on, flag_done, q) < 0) {
		free(q);
		return; /* still pending: sent again when Redis is up */
	}
	if (!on)
		a->flag_pending = 0; /* flag_done sets it again if Redis does not take it */
}

/* Score now; suspend when it crosses the threshold.  1 when suspended. */
static int evaluate(struct account_engine *e, struct acct *a, int64_t now)
{
	char detail[512];
	struct job *j;

	compute(e, a, now);
	a->dirty = 1;
	if (a->suspended)
		return 1;
	if (e->conf->account_suspend_score <= 0 || a->score < e->conf->account_suspend_score)
		return 0;
	a->suspended = 1;
	account_signals_line(a->sig, a->score, detail, sizeof(detail));
	log_warn(NULL, "account", "ACCOUNT SUSPENDED user=%s %s", a->user, detail);
	/* Every node of the cluster refuses the account from its next MAIL. */
	if (e->redis != NULL)
		flag_send(e, a, 1);
	j = xcalloc(1, sizeof(*j));
	j->kind = JOB_SUSPEND;
	strlcpy_s(j->user, a->user, sizeof(j->user));
	j->score = a->score;
	j->now = now;
	j->since = now - e->conf->account_window_ms;
	memcpy(j->sig, a->sig, sizeof(j->sig));
	j->has_sig = 1;
	j->nclients = window_clients(e, a, now, j->clients);
	snprintf(j->reason, sizeof(j->reason), "account %.200s suspended (score %lld)", a->user,
		 (long long)a->score);
	strlcpy_s(j->detail, detail, sizeof(j->detail));
	enqueue(e, j);
	return 1;
}

/* The deferral of a rate limit: the same reply locally and from the cluster. */
static void rate_reply(struct policy_verdict *r, const char *prefix, const char *what,
		       const char *whose, int i, int64_t l)
{
	strlcpy_s(r->code, "451 4.7.1", sizeof(r->code));
	snprintf(r->text, sizeof(r->text),
		 "Rate limit exceeded: %lld %s per %s for this %s, try again later",
		 (long long)l, what, win_name[i], whose);
	snprintf(r->check, sizeof(r->check), "rate_%s_%s", prefix, win_name[i]);
}

/*
 * Rate limits: 0 fine, -1 with r filled.  commit: count the event in every
 * window instead of checking (the per-second window exactly, kept only
 * while it has a limit).
 */
static int rate(struct account_engine *e, const char *prefix, const char *who,
		const int64_t lim[4], const int64_t *over, const char *what, const char *whose,
		struct policy_verdict *r, int64_t now, int commit)
{
	char key[ACCT_NAME_MAX + 8];
	int i;

	snprintf(key, sizeof(key), "%s:%s", prefix, who);
	for (i = 0; i < 4; i++) {
		int64_t l = over != NULL && over[i] >= 0 ? over[i] : lim[i];

		if (commit) {
			if (i > 0)
				account_win_add(e->win, key, win_ms[i], now, 1);
			else if (l > 0)
				account_win_add_exact(e->win, key, win_ms[i], now, (size_t)l);
			continue;
		}
		if (l <= 0)
			continue;
		if ((i == 0 ? account_win_count_exact(e->win, key, win_ms[i], now)
		     : account_win_count(e->win, key, win_ms[i], now)) >= l) {
			rate_reply(r, prefix, what, whose, i, l);
			return -1;
		}
	}
	return 0;
}

enum policy_action account_mail(struct account_engine *e, const char *user,
				const char *addr, const char *sender, int bound, int rated,
				struct policy_verdict *r)
{
	struct acct *a = acct_get(e, user, 1);
	int64_t now = time_now_ms();
	int trust;

	memset(r, 0, sizeof(*r));
	if (refused(a)) {
		suspended_reply(r);
		return answer(r, POLICY_REFUSE);
	}
	if (!bound) {
		acct_sender(a, now, sender);
		acct_binding(a, now);
		a->d_refused++;
		if (evaluate(e, a, now)) {
			suspended_reply(r);
			return answer(r, POLICY_REFUSE);
		}
		strlcpy_s(r->code, "553 5.7.1", sizeof(r->code));
		strlcpy_s(r->text, "Sender address rejected: not owned by the authenticated user",
			  sizeof(r->text));
		strlcpy_s(r->check, "sender_binding", sizeof(r->check));
		return answer(r, POLICY_REFUSE);
	}
	trust = trusted(a, now);
	if (!rated &&
	    ((!trust &&
	      rate(e, "am", user, e->lim_am, a->lim, "messages", "account", r, now, 0) < 0) ||
	     rate(e, "cm", addr, e->lim_cm, NULL, "messages", "client address", r, now, 0) < 0)) {
		log_warn(NULL, "account", "RATE LIMIT user=%s client=[%s] %s", user, addr,
			 r->check);
		a->dirty = 1;
		return answer(r, POLICY_DEFER);
	}
	rate(e, "am", user, e->lim_am, trust ? NULL : a->lim, "", "", r, now, 1);
	rate(e, "cm", addr, e->lim_cm, NULL, "", "", r, now, 1);
	/*
	 * Counted once accepted (a client retrying through 451s does not flood
	 * the ring); the account's own senders are not a signal, its aliases
	 * included.
	 */
	acct_mail(a, now, e->conf->account_window_ms, addr);
	a->d_msgs++;
	if (evaluate(e, a, now)) {
		suspended_reply(r);
		return answer(r, POLICY_REFUSE);
	}
	return answer(r, POLICY_CONTINUE);
}

void account_malformed(struct account_engine *e, const char *user, const char *addr,
		       const char *sender)
{
	struct acct *a = acct_get(e, user, 1);
	int64_t now = time_now_ms();

	if (a->suspended)
		return;
	acct_malformed(a, now);
	acct_sender(a, now, sender);
	a->d_refused++;
	if (evaluate(e, a, now))
		log_warn(NULL, "account", "account suspended at a malformed sender user=%s"
			 " client=[%s]", user, addr);
}

enum policy_action account_rcpt(struct account_engine *e, const char *user,
				const char *addr, const char *rcpt, int dead, int rated,
				struct policy_verdict *r)
{
	struct acct *a = acct_get(e, user, 1);
	int64_t now = time_now_ms();

	(void)rcpt;
	memset(r, 0, sizeof(*r));
	if (refused(a)) {
		suspended_reply(r);
		return answer(r, POLICY_REFUSE);
	}
	if (dead) {
		/* Not a signal: refused at RCPT, it costs nobody anything. */
		a->d_refused++;
		a->dirty = 1;
		return answer(r, POLICY_CONTINUE); /* the caller refuses the recipient itself */
	}
	if (!rated &&
	    ((!trusted(a, now) &&
	      rate(e, "ar", user, e->lim_ar, a->lim + 4, "recipients", "account", r, now, 0) < 0) ||
	     rate(e, "cr", addr, e->lim_cr, NULL, "recipients", "client address", r, now, 0) < 0)) {
		log_warn(NULL, "account", "RATE LIMIT user=%s client=[%s] %s", user, addr,
			 r->check);
		return answer(r, POLICY_DEFER);
	}
	rate(e, "ar", user, e->lim_ar, trusted(a, now) ? NULL : a->lim + 4, "", "", r, now, 1);
	rate(e, "cr", addr, e->lim_cr, NULL, "", "", r, now, 1);
	a->d_rcpts++;
	a->dirty = 1;
	return answer(r, POLICY_CONTINUE);
}

enum policy_action account_message(struct account_engine *e, const struct account_message *m,
				   struct policy_verdict *r)
{
	struct acct *a = acct_get(e, m->user, 1);
	int64_t now = time_now_ms();

	memset(r, 0, sizeof(*r));
	if (refused(a)) {
		suspended_reply(r);
		return answer(r, POLICY_REFUSE);
	}
	/* A refused message goes nowhere: its content is not counted. */
	acct_message(a, now, e->conf->account_window_ms, m->froms, m->nfroms,
		     m->from_refused ? 0 : m->content, m->domains, m->ndomains);
	if (m->from_refused) {
		acct_binding(a, now);
		a->d_refused++;
	}
	if (evaluate(e, a, now)) {
		suspended_reply(r);
		return answer(r, POLICY_REFUSE);
	}
	if (m->from_refused) {
		strlcpy_s(r->code, "553 5.7.1", sizeof(r->code));
		strlcpy_s(r->text,
			  "Message refused: From: header address not owned by the authenticated user",
			  sizeof(r->text));
		strlcpy_s(r->check, "from_binding", sizeof(r->check));
		return answer(r, POLICY_REFUSE);
	}
	return answer(r, POLICY_CONTINUE);
}

/*
 * Redis is up (again): it may have restarted empty, or missed a lift while
 * it was away.  Every suspension this node holds is set again, and every
 * lift not yet sent is.
 */
static void cluster_up(void *arg)
{
	struct account_engine *e = arg;
	struct acct *a;
	size_t b;

	for (b = 0; b < e->size; b++)
		for (a = e->tab[b]; a != NULL; a = a->next)
			if (a->suspended || a->flag_pending)
				flag_send(e, a, a->suspended);
}

/*
 * The cluster's suspended users (SMEMBERS moat:susp): refused here too, at
 * AUTH, MAIL, RCPT and DATA, until the list no longer has them.  Without an
 * answer the last list stands.
 */
static void suspended_list(void *arg, int ok, const redisReply *r)
{
	struct account_engine *e = arg;
	struct acct *a;
	size_t b, i;

	e->cluster_asking = 0;
	if (!ok || r->type != REDIS_REPLY_ARRAY || e->stopping)
		return;
	for (b = 0; b < e->size; b++)
		for (a = e->tab[b]; a != NULL; a = a->next)
			a->remote_suspended = 0;
	for (i = 0; i < r->elements; i++) {
		if (r->element[i]->type != REDIS_REPLY_STRING ||
		    r->element[i]->len >= ACCT_NAME_MAX)
			continue;
		a = acct_get(e, r->element[i]->str, 1);
		if (!a->remote_suspended && !a->suspended)
			log_info(NULL, "account", "account suspended in the cluster user=%s",
				 a->user);
		a->remote_suspended = 1;
	}
}

static void cluster_poll_cb(evutil_socket_t fd, short what, void *arg)
{
	struct account_engine *e = arg;

	(void)fd;
	(void)what;
	if (e->redis == NULL || e->cluster_asking)
		return;
	if (cluster_redis_suspended_list(e->redis, suspended_list, e) == 0)
		e->cluster_asking = 1;
}

void account_engine_set_cluster(struct account_engine *e, struct cluster_redis *cr)
{
	struct timeval tv = { CLUSTER_POLL_MS / 1000, (CLUSTER_POLL_MS % 1000) * 1000 };

	if (e->redis != NULL && e->redis != cr)
		cluster_redis_on_up(e->redis, NULL, NULL);
	e->redis = cr;
	cluster_redis_on_up(cr, cluster_up, e);
	if (cluster_redis_up(cr))
		cluster_up(e);
	if (cr != NULL && e->cluster_ev == NULL) {
		e->cluster_ev = event_new(e->base, -1, EV_PERSIST, cluster_poll_cb, e);
		event_add(e->cluster_ev, &tv);
	} else if (cr == NULL && e->cluster_ev != NULL) {
		event_free(e->cluster_ev);
		e->cluster_ev = NULL;
	}
}

void account_limits(struct account_engine *e, const char *user, int rcpt, int64_t account[4],
		    int64_t client[4])
{
	struct acct *a = acct_get(e, user, 1);
	const int64_t *def = rcpt ? e->lim_ar : e->lim_am;
	const int64_t *over = a->lim + (rcpt ? 4 : 0);
	int trust = trusted(a, time_now_ms());
	int i;

	for (i = 0; i < 4; i++) {
		int64_t l = over[i] >= 0 ? over[i] : def[i];

		account[i] = trust || l < 0 ? 0 : l;
		client[i] = (rcpt ? e->lim_cr : e->lim_cm)[i];
		if (client[i] < 0)
			client[i] = 0;
	}
}

void account_rate_refused(const char *user, const char *addr, int rcpt, int client,
			  int window, int64_t limit, struct policy_verdict *v)
{
	static const char *const prefix[2][2] = { { "am", "cm" }, { "ar", "cr" } };

	memset(v, 0, sizeof(*v));
	if (window < 0 || window > 3)
		window = 0;
	rate_reply(v, prefix[rcpt != 0][client != 0], rcpt ? "recipients" : "messages",
		   client ? "client address" : "account", window, limit);
	log_warn(NULL, "account", "RATE LIMIT user=%s client=[%s] %s cluster=yes", user, addr,
		 v->check);
	v->action = POLICY_DEFER;
}

void account_suspended_verdict(struct policy_verdict *v)
{
	memset(v, 0, sizeof(*v));
	suspended_reply(v);
	v->action = POLICY_REFUSE;
}

static void auth_key(const char *addr, char *key, size_t keysz)
{
	snprintf(key, keysz, "a:%s", addr);
}

int account_auth_blocked(struct account_engine *e, const char *addr)
{
	char key[80];

	auth_key(addr, key, sizeof(key));
	return account_win_count(e->auth_fails, key, e->conf->auth_fail_window_ms,
				 time_now_ms()) >= e->conf->auth_fail_max_per_addr;
}

void account_auth_failed(struct account_engine *e, const char *addr)
{
	char key[80];

	auth_key(addr, key, sizeof(key));
	account_win_add(e->auth_fails, key, e->conf->auth_fail_window_ms, time_now_ms(), 1);
}

int account_suspended(struct account_engine *e, const char *user)
{
	struct acct *a = acct_get(e, user, 0);

	return a != NULL && refused(a);
}

int64_t account_score(struct account_engine *e, const char *user, char *detail,
		      size_t detailsz)
{
	struct acct *a = acct_get(e, user, 0);
	int64_t s;

	if (a == NULL) {
		if (detail != NULL && detailsz > 0)
			detail[0] = '\0';
		return 0;
	}
	s = compute(e, a, time_now_ms());
	if (detail != NULL)
		account_signals_line(a->sig, s, detail, detailsz);
	return s;
}

/* ---- worker ---------------------------------------------------------------- */

static void res_free(struct poll_res *p)
{
	if (p == NULL)
		return;
	free(p->flags);
	free(p->lims);
	free(p);
}

static int poll_flag_cb(const char *user, int64_t suspended, int64_t trusted_until, void *arg)
{
	struct poll_res *p = arg;

	p->flags = xrealloc(p->flags, (p->nflags + 1) * sizeof(p->flags[0]));
	strlcpy_s(p->flags[p->nflags].user, user, sizeof(p->flags[0].user));
	p->flags[p->nflags].suspended = suspended;
	p->flags[p->nflags].trusted_until = trusted_until;
	p->nflags++;
	return 0;
}

static int poll_lim_cb(const char *user, const int64_t v[STORE_ACCOUNT_NLIMITS], void *arg)
{
	struct poll_res *p = arg;

	p->lims = xrealloc(p->lims, (p->nlims + 1) * sizeof(p->lims[0]));
	strlcpy_s(p->lims[p->nlims].user, user, sizeof(p->lims[0].user));
	memcpy(p->lims[p->nlims].v, v, sizeof(p->lims[0].v));
	p->nlims++;
	return 0;
}

static struct poll_res *read_state(struct store *st)
{
	struct poll_res *p = xcalloc(1, sizeof(*p));

	if (store_account_flags(st, time_now_ms(), poll_flag_cb, p) < 0 ||
	    store_account_limits(st, poll_lim_cb, p) < 0) {
		log_error(NULL, "account", "cannot read account state: %s", store_account_errmsg(st));
		res_free(p);
		return NULL;
	}
	return p;
}

/* again: a later pass, which holds nothing once the account was lifted. */
static int hold(struct store *st, const char *user, const char *reason, int64_t since,
		int again)
{
	struct store_queue_filter f;
	int n = 0;

	memset(&f, 0, sizeof(f));
	f.auth_user = user;
	f.received_after = since;
	f.while_suspended = again;
	if (store_queue_hold(st, &f, reason, &n) < 0) {
		log_error(NULL, "account", "cannot hold mail of %s: %s", user, store_account_errmsg(st));
		return 0;
	}
	return n;
}

struct samples {
	json_t *arr;
	const char *data_dir;
};

/* The Subject: of a queued message, from its spool file (raw, cut to 200). */
static void sample_subject(const char *data_dir, const char *qid, char *out, size_t outsz)
{
	char *buf = xmalloc(SUBJECT_HDR_MAX + 1);
	struct dynbuf v;
	size_t len = 0;

	out[0] = '\0';
	dynbuf_init(&v, 1024);
	if (spool_read_headers(data_dir, qid, buf, SUBJECT_HDR_MAX, &len) == 0 &&
	    spool_header_get(buf, len, "Subject", &v) == 1 && v.len > 0)
		snprintf(out, outsz, "%.*s", (int)(v.len < 200 ? v.len : 200), v.data);
	dynbuf_free(&v);
	free(buf);
}

static int sample_cb(const char *qid, const char *sender, const char *rcpt, int64_t size,
		     void *arg)
{
	struct samples *s = arg;
	char subject[256];

	sample_subject(s->data_dir, qid, subject, sizeof(subject));
	json_array_append_new(s->arr, json_pack("{s:s, s:s, s:s, s:s, s:I}", "qid", qid,
						"sender", sender, "recipient", rcpt,
						"subject", subject, "size", (json_int_t)size));
	return 0;
}

static char *dumps(json_t *j)
{
	char *s = json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(6));

	json_decref(j);
	if (s == NULL)
		abort(); /* jansson allocation failure */
	return s;
}

static void save_suspension(struct account_engine *e, struct store *st, struct job *j)
{
	struct store_account_suspension s;
	struct samples sm;
	json_t *clients = json_array();
	char *signals, *cl, *samples;
	int64_t alert_id = 0;
	struct rehold *r;
	size_t i;
	int n;

	/*
	 * One transaction: the hold, the state and the alert (which names what
	 * was held) are seen together or not at all.
	 */
	if (store_begin(st) < 0) {
		log_error(NULL, "account", "cannot record suspension of %s: %s", j->user,
			  store_account_errmsg(st));
		return;
	}
	n = hold(st, j->user, j->reason, j->since, 0);
	sm.arr = json_array();
	sm.data_dir = e->conf->data_dir;
	if (store_account_held_samples(st, j->user, SAMPLES_MAX, sample_cb, &sm) < 0)
		log_error(NULL, "account", "cannot read held mail of %s: %s", j->user,
			  store_account_errmsg(st));
	for (i = 0; i < j->nclients; i++)
		json_array_append_new(clients, json_pack("{s:s, s:I, s:b}", "addr",
							 j->clients[i].addr, "messages",
							 (json_int_t)j->clients[i].messages, "new",
							 j->clients[i].is_new));
	signals = account_signals_json(j->sig);
	cl = dumps(clients);
	samples = dumps(sm.arr);
	memset(&s, 0, sizeof(s));
	s.user = j->user;
	s.reason = j->reason;
	s.detail = j->detail;
	s.score = j->score;
	s.held = n;
	s.now = j->now;
	s.signals = signals;
	s.clients = cl;
	s.samples = samples;
	if (store_account_suspend_alert(st, &s, &alert_id) < 0 || store_commit(st) < 0) {
		log_error(NULL, "account", "cannot record suspension: %s", store_account_errmsg(st));
		store_rollback(st);
		alert_id = 0;
		n = 0;
	}
	log_warn(NULL, "account", "ACCOUNT HELD user=%s recipients=%d", j->user, n);
	free(signals);
	free(cl);
	free(samples);
	r = xcalloc(1, sizeof(*r));
	strlcpy_s(r->user, j->user, sizeof(r->user));
	strlcpy_s(r->reason, j->reason, sizeof(r->reason));
	r->since = j->since;
	r->at = time_mono_ms() + REHOLD_MS;
	r->alert_id = alert_id;
	r->total = n;
	r->next = e->reholds;
	e->reholds = r;
	log_warn(NULL, "account", "ALERT account=%s alert=%lld %s", j->user,
		 (long long)alert_id, j->detail);
}

static void save_flush(struct store *st, struct job *j)
{
	struct store_account_flush f;
	char *signals = j->has_sig ? account_signals_json(j->sig) : NULL;
	size_t i;

	memset(&f, 0, sizeof(f));
	f.user = j->user;
	f.messages = j->msgs;
	f.recipients = j->rcpts;
	f.refused = j->refused;
	f.score = j->score;
	f.signals = signals;
	f.volume_day = j->volume_day;
	f.last_client = j->last_client[0] != '\0' ? j->last_client : NULL;
	f.bulk_seen = j->bulk_seen;
	f.now = j->now;
	if (store_begin(st) < 0)
		goto fail;
	if (store_account_flush(st, &f) < 0)
		goto fail;
	for (i = 0; i < j->nnets; i++)
		if (store_account_network_add(st, j->user, j->nets[i].net, j->nets[i].first_seen,
					      j->nets[i].last_seen, j->nets[i].messages) < 0)
			goto fail;
	if (j->hour_ok && store_account_baseline_observe(st, j->user, j->how, j->how_count,
							 ACCT_BASELINE_ALPHA, j->now) < 0)
		goto fail;
	if (store_commit(st) < 0)
		goto fail;
	free(signals);
	return;
fail:
	log_error(NULL, "account", "cannot save counters of %s: %s", j->user,
		  store_account_errmsg(st));
	store_rollback(st);
	free(signals);
}

static int load_net_cb(const char *net, int64_t first_seen, int64_t last_seen,
		       int64_t messages, void *arg)
{
	struct load_res *l = arg;

	if (l->nnets >= ACCT_NETS)
		return 0;
	strlcpy_s(l->nets[l->nnets].net, net, sizeof(l->nets[0].net));
	l->nets[l->nnets].first_seen = first_seen;
	l->nets[l->nnets].last_seen = last_seen;
	l->nets[l->nnets].messages = messages;
	l->nnets++;
	return 0;
}

static int load_base_cb(int how, double rate, int64_t weeks, void *arg)
{
	struct load_res *l = arg;

	if (how >= 0 && how < ACCT_HOW) {
		l->rate[how] = (float)rate;
		l->weeks[how] = (uint16_t)(weeks > 65535 ? 65535 : weeks);
	}
	return 0;
}

static void load(struct store *st, struct job *j)
{
	j->load = xcalloc(1, sizeof(*j->load));
	if (store_account_load(st, j->user, ACCT_NETS, load_net_cb, load_base_cb, j->load,
			       &j->load->bulk_seen) < 0) {
		log_error(NULL, "account", "cannot load account %s: %s", j->user,
			  store_account_errmsg(st));
		return;
	}
	j->load->ok = 1;
}

static void run_reholds(struct account_engine *e, struct store *st, int all)
{
	struct rehold **pp = &e->reholds;
	int64_t now = time_mono_ms();

	while (*pp != NULL) {
		struct rehold *r = *pp;

		if (all || now >= r->at) {
			int n = hold(st, r->user, r->reason, r->since, 1);

			if (n > 0) {
				log_warn(NULL, "account", "ACCOUNT HELD user=%s recipients=%d", r->user,
					 n);
				if (r->alert_id > 0)
					store_alert_set_held(st, r->alert_id, r->total + n);
			} else {
				log_info(NULL, "account", "account hold again user=%s recipients=0",
					 r->user);
			}
			*pp = r->next;
			free(r);
		} else {
			pp = &r->next;
		}
	}
}

static void run_job(struct worker_job *wj, void *arg)
{
	struct account_engine *e = arg;
	struct job *j = (struct job *)wj;
	char err[512];

	if (!e->st_tried) {
		e->st_tried = 1;
		e->st = store_open(e->db_path, 0, err, sizeof(err));
		if (e->st == NULL)
			log_error(NULL, "account", "cannot open the database: %s", err);
	}
	if (e->st == NULL)
		return;
	if (j->kind == JOB_FLUSH)
		save_flush(e->st, j);
	else if (j->kind == JOB_SUSPEND)
		save_suspension(e, e->st, j);
	else if (j->kind == JOB_LOAD)
		load(e->st, j);
	/* The last job: every re-hold still waiting runs now. */
	run_reholds(e, e->st, j->kind == JOB_STOP);
	if (j->kind == JOB_TICK && !worker_stopping(e->w) &&
	    time_mono_ms() - e->last_poll >= POLL_MS) {
		j->res = read_state(e->st);
		e->last_poll = time_mono_ms();
	}
	if (j->kind == JOB_STOP) {
		store_close(e->st);
		e->st = NULL;
	}
}

/* ---- loop: state read back, loads, periodic flush ------------------------ */

static void apply_state(struct account_engine *e, const struct poll_res *p, int suspensions)
{
	size_t b;
	size_t i;

	for (b = 0; b < e->size; b++) {
		struct acct *a;

		for (a = e->tab[b]; a != NULL; a = a->next) {
			int found = 0;

			memset(a->lim, 0xff, sizeof(a->lim)); /* -1: defaults */
			a->trusted_until = 0;
			if (!suspensions)
				continue;
			for (i = 0; i < p->nflags && !found; i++)
				found = p->flags[i].suspended > 0 &&
					strcmp(p->flags[i].user, a->user) == 0;
			if (a->suspended && !found) {
				a->suspended = 0;
				a->n = 0; /* a fresh window after a lift */
				a->head = 0;
				memset(a->content, 0, sizeof(a->content));
				memset(&a->msg_win, 0, sizeof(a->msg_win));
				log_notice(NULL, "account", "account lifted user=%s", a->user);
				if (e->redis != NULL) {
					a->remote_suspended = 0; /* the next list agrees */
					flag_send(e, a, 0);
				}
			}
		}
	}
	for (i = 0; i < p->nlims; i++)
		memcpy(acct_get(e, p->lims[i].user, 1)->lim, p->lims[i].v, sizeof(p->lims[i].v));
	for (i = 0; i < p->nflags; i++) {
		struct acct *a = acct_get(e, p->flags[i].user, 1);

		a->trusted_until = p->flags[i].trusted_until;
		if (suspensions && p->flags[i].suspended > 0)
			a->suspended = 1;
	}
}

static void apply_load(struct account_engine *e, struct job *j)
{
	struct acct *a = acct_get(e, j->user, 0);
	size_t i;
	int h;

	if (a == NULL || j->load == NULL || !j->load->ok) {
		if (a != NULL)
			a->load_sent = 0; /* try again at the next flush */
		return;
	}
	for (i = 0; i < j->load->nnets; i++)
		acct_known_network(a, j->load->nets[i].net, j->load->nets[i].first_seen,
				   j->load->nets[i].last_seen, j->load->nets[i].messages);
	for (h = 0; h < ACCT_HOW; h++)
		if (j->load->weeks[h] > 0)
			acct_known_baseline(a, h, j->load->rate[h], j->load->weeks[h]);
	if (j->load->bulk_seen > 0 && (a->bulk_seen == 0 || j->load->bulk_seen < a->bulk_seen))
		a->bulk_seen = j->load->bulk_seen;
	a->loaded = 1;
}

static void done_job(struct worker_job *wj, void *arg)
{
	struct account_engine *e = arg;
	struct job *j = (struct job *)wj;
	struct timeval tv = { 0, TICK_MS * 1000 };

	if (j->kind == JOB_TICK) {
		if (j->res != NULL)
			apply_state(e, j->res, j->seq >= e->seq_sent);
		res_free(j->res);
		if (!e->stopping)
			evtimer_add(e->tick_ev, &tv);
	} else if (j->kind == JOB_LOAD && !e->stopping) {
		apply_load(e, j);
	}
	free(j->load);
	free(j);
}

/* One tick at a time: the next is armed when this one is done. */
static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct account_engine *e = arg;
	struct job *j = xcalloc(1, sizeof(*j));

	(void)fd;
	(void)what;
	j->kind = JOB_TICK;
	j->seq = e->seq_sent;
	worker_submit(e->w, &j->base);
}

static void flush_one(struct account_engine *e, struct acct *a, int64_t now)
{
	struct job *j;
	int how = 0;
	int64_t count = 0;
	int hour_ok;
	int nets = 0;
	size_t i;

	if (!a->load_sent)
		submit_load(e, a);
	hour_ok = acct_hour_roll(a, now, &how, &count);
	if (hour_ok)
		acct_baseline_observe(a, how, count);
	for (i = 0; i < a->nnets; i++)
		nets += a->nets[i].dirty;
	/* A score above 0 is recomputed until it has decayed (and written once at 0). */
	if (!a->dirty && a->score == 0 && !a->bulk_dirty && nets == 0 && !hour_ok)
		return;
	if (!a->dirty && a->score > 0)
		compute(e, a, now);
	j = xcalloc(1, sizeof(*j));
	j->kind = JOB_FLUSH;
	strlcpy_s(j->user, a->user, sizeof(j->user));
	j->msgs = a->d_msgs;
	j->rcpts = a->d_rcpts;
	j->refused = a->d_refused;
	j->score = a->score;
	j->now = now;
	j->volume_day = acct_volume_day(a, now);
	strlcpy_s(j->last_client, a->last_client, sizeof(j->last_client));
	memcpy(j->sig, a->sig, sizeof(j->sig));
	j->has_sig = a->sig[0].name != NULL;
	j->bulk_seen = a->bulk_dirty ? a->bulk_seen : 0;
	for (i = 0; i < a->nnets; i++) {
		struct acct_net *n = &a->nets[i];

		if (!n->dirty)
			continue;
		strlcpy_s(j->nets[j->nnets].net, n->net, sizeof(j->nets[0].net));
		j->nets[j->nnets].first_seen = n->first_seen;
		j->nets[j->nnets].last_seen = n->last_seen;
		j->nets[j->nnets].messages = n->d_messages;
		j->nnets++;
		n->d_messages = 0;
		n->dirty = 0;
	}
	j->hour_ok = hour_ok;
	j->how = how;
	j->how_count = count;
	a->d_msgs = a->d_rcpts = a->d_refused = 0;
	a->dirty = 0;
	a->bulk_dirty = 0;
	enqueue(e, j);
}

static void flush(struct account_engine *e)
{
	size_t b;
	int64_t now = time_now_ms();

	for (b = 0; b < e->size; b++) {
		struct acct **pp = &e->tab[b];

		while (*pp != NULL) {
			struct acct *a = *pp;

			flush_one(e, a, now);
			/*
			 * Idle, flushed, nothing the poll brings straight back: its
			 * state is in SQLite, loaded again when it next sends.
			 */
			if (!e->stopping &&
			    acct_evictable(a, now, IDLE_EVICT_MS, 2 * e->conf->account_window_ms)) {
				*pp = a->next;
				free(a);
				continue;
			}
			pp = &a->next;
		}
	}
}

static void flush_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	flush(arg);
}

struct account_engine *account_engine_new(struct event_base *base, const struct conf *conf,
					  const char *db_path, char *err, size_t errsz)
{
	static const struct worker_ops ops = { run_job, NULL, done_job, NULL, 0, 0 };
	struct account_engine *e = xcalloc(1, sizeof(*e));
	struct timeval tv = { FLUSH_MS / 1000, (FLUSH_MS % 1000) * 1000 };
	struct timeval tick = { 0, TICK_MS * 1000 };
	struct store *st;
	struct poll_res *p;
	size_t b;

	e->base = base;
	e->conf = conf;
	e->db_path = xstrdup(db_path);
	e->size = 1024;
	e->tab = xcalloc(e->size, sizeof(*e->tab));
	e->win = account_win_new(200000);
	e->auth_fails = account_win_new(100000);
	{
		static const char *const names[4] = {
			"limit_account_messages", "limit_account_recipients",
			"limit_client_messages", "limit_client_recipients",
		};
		const char *vals[4] = {
			conf->limit_account_messages, conf->limit_account_recipients,
			conf->limit_client_messages, conf->limit_client_recipients,
		};
		int64_t *outs[4] = { e->lim_am, e->lim_ar, e->lim_cm, e->lim_cr };
		/* The older "M,H,D" form keeps the default per-second limit (conf.c). */
		static const int64_t second_default[4] = { 10, 0, 0, 0 };
		int i;

		for (i = 0; i < 4; i++) {
			if (account_parse_limits(vals[i], outs[i]) < 0) {
				snprintf(err, errsz, "%s: '%.64s': expected \"S,M,H,D\" or \"M,H,D\""
					 " (per second, minute, hour, day; 0 none; second at most %d)",
					 names[i], vals[i], ACCOUNT_WIN_KEEP_MAX);
				goto fail;
			}
			if (outs[i][0] < 0)
				outs[i][0] = second_default[i];
		}
	}
	/* Start-up only: suspensions from the last run apply from the first session. */
	st = store_open(db_path, 0, err, errsz);
	if (st == NULL)
		goto fail;
	p = read_state(st);
	store_close(st);
	if (p != NULL) {
		apply_state(e, p, 1);
		res_free(p);
	}
	e->w = worker_new(base, "account", &ops, e, err, errsz);
	if (e->w == NULL)
		goto fail;
	for (b = 0; b < e->size; b++) {
		struct acct *a;

		for (a = e->tab[b]; a != NULL; a = a->next)
			submit_load(e, a);
	}
	e->tick_ev = evtimer_new(base, tick_cb, e);
	e->flush_ev = event_new(base, -1, EV_PERSIST, flush_cb, e);
	evtimer_add(e->tick_ev, &tick);
	event_add(e->flush_ev, &tv);
	return e;
fail:
	account_engine_free(e);
	return NULL;
}

void account_engine_free(struct account_engine *e)
{
	size_t b;

	if (e == NULL)
		return;
	e->stopping = 1; /* no more loads: the last flush only */
	if (e->w != NULL) {
		struct job *j;

		flush(e);
		j = xcalloc(1, sizeof(*j));
		j->kind = JOB_STOP;
		enqueue(e, j);
		worker_free(e->w); /* runs every job still queued, then joins */
	}
	while (e->reholds != NULL) {
		struct rehold *r = e->reholds;

		e->reholds = r->next;
		free(r);
	}
	store_close(e->st);
	if (e->tick_ev != NULL)
		event_free(e->tick_ev);
	if (e->flush_ev != NULL)
		event_free(e->flush_ev);
	if (e->cluster_ev != NULL)
		event_free(e->cluster_ev);
	for (b = 0; b < e->size; b++) {
		while (e->tab[b] != NULL) {
			struct acct *a = e->tab[b];

			e->tab[b] = a->next;
			free(a);
		}
	}
	free(e->tab);
	account_win_free(e->win);
	account_win_free(e->auth_fails);
	free(e->db_path);
	free(e);
}
