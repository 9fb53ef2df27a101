/*
 * account_engine: rate limits and compromised-account detection for
 * authenticated submission (see account.h and docs/submission.md).
 *
 * Loop side (every account_* call): per account a ring of recent events
 * (senders tried, refused bindings, dead-domain recipients, recipient
 * domains, messages) from which the score over account_window is computed
 *
 *   score = 3 x (distinct envelope senders - 1) + 4 x refused bindings
 *         + 2 x recipients in dead domains + (distinct recipient domains - 10)
 *         + (messages - max(account_volume_floor, 3 x usual messages per window))
 *
 * (each term at least 0).  Crossing account_suspend_score suspends the
 * account at once on the loop; the worker then records it (account_state,
 * account_alert), holds what the account queued in the window (and once
 * more 2 s later, for messages that were committing meanwhile).
 *
 * Worker side (util/worker.h): its own SQLite connection, opened and
 * closed on the worker thread; totals flushed every 2 s; a tick job every
 * 250 ms runs due re-holds and, every second, reads suspensions and limit
 * overrides back, so that `moatd accounts lift` takes effect without a
 * restart.  Jobs run in the order submitted, so a read taken after later
 * jobs were submitted is not used for suspensions (it could undo one).
 *
 * Never: block the loop; touch SQLite from the loop (except at start).
 */
#include "account.h"

#include <errno.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "../conf/conf.h"
#include "../log/log.h"
#include "../store/store.h"
#include "../store/store_account.h"
#include "../util/util.h"
#include "../util/worker.h"

#define RING 512
#define NAME_MAX_ 320
#define FLUSH_MS 2000
#define POLL_MS 1000
#define REHOLD_MS 2000
#define TICK_MS 250

enum evkind { EV_SENDER, EV_BIND, EV_DEAD, EV_DOMAIN, EV_MSG };

struct ev {
	int64_t ts;
	uint32_t h;
	uint8_t kind;
};

struct acct {
	struct acct *next;
	char user[NAME_MAX_];
	struct ev ring[RING];
	size_t head;
	size_t n;
	double usual;            /* messages per window, smoothed */
	int64_t usual_start;
	int64_t usual_count;
	int suspended;
	int64_t d_msgs, d_rcpts, d_refused;
	int dirty;
	int64_t score;
	int64_t lim[STORE_ACCOUNT_NLIMITS]; /* -1: default */
};

enum job_kind { JOB_FLUSH, JOB_SUSPEND, JOB_TICK, JOB_STOP };

struct poll_res;

struct job {
	struct worker_job base;
	enum job_kind kind;
	char user[NAME_MAX_];
	int64_t msgs, rcpts, refused, score, since, now;
	char reason[256];
	char detail[512];
	int64_t seq;             /* JOB_TICK: jobs submitted up to it */
	struct poll_res *res;    /* JOB_TICK: state read back, or NULL */
};

struct rehold {
	struct rehold *next;
	char user[NAME_MAX_];
	char reason[256];
	int64_t since, at, alert_id;
};

struct poll_res {
	char **susp;
	size_t nsusp;
	struct { char user[NAME_MAX_]; int64_t v[STORE_ACCOUNT_NLIMITS]; } *lims;
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
	int64_t lim_am[3], lim_ar[3], lim_cm[3], lim_cr[3];

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

static const int64_t win_ms[3] = { 60000, 3600000, 86400000 };
static const char *const win_name[3] = { "minute", "hour", "day" };

int account_parse_limits(const char *s, int64_t out[3])
{
	int i;

	for (i = 0; i < 3; i++) {
		char *end;
		long long v;

		errno = 0;
		v = strtoll(s, &end, 10);
		if (end == s || errno != 0 || v < 0)
			return -1;
		out[i] = v;
		s = end;
		if (i < 2) {
			if (*s != ',')
				return -1;
			s++;
		}
	}
	return *s == '\0' ? 0 : -1;
}

static uint64_t hash64(const char *s)
{
	uint64_t h = 1469598103934665603ULL;

	while (*s != '\0') {
		unsigned char c = (unsigned char)*s++;

		if (c >= 'A' && c <= 'Z')
			c = (unsigned char)(c - 'A' + 'a');
		h ^= c;
		h *= 1099511628211ULL;
	}
	return h;
}

static struct acct *acct_get(struct account_engine *e, const char *user, int create)
{
	size_t b = hash64(user) % e->size;
	struct acct *a;
	int i;

	for (a = e->tab[b]; a != NULL; a = a->next)
		if (strcmp(a->user, user) == 0)
			return a;
	if (!create)
		return NULL;
	a = xcalloc(1, sizeof(*a));
	strlcpy_s(a->user, user, sizeof(a->user));
	for (i = 0; i < STORE_ACCOUNT_NLIMITS; i++)
		a->lim[i] = -1;
	a->usual_start = time_now_ms();
	a->next = e->tab[b];
	e->tab[b] = a;
	return a;
}

static void push(struct acct *a, enum evkind k, const char *v, int64_t now)
{
	struct ev *x = &a->ring[a->head];

	x->ts = now;
	x->kind = (uint8_t)k;
	x->h = v != NULL ? (uint32_t)hash64(v) : 0;
	a->head = (a->head + 1) % RING;
	if (a->n < RING)
		a->n++;
}

static int cmp_u32(const void *x, const void *y)
{
	uint32_t a = *(const uint32_t *)x;
	uint32_t b = *(const uint32_t *)y;

	return a < b ? -1 : a > b;
}

static int64_t distinct(uint32_t *v, size_t n)
{
	size_t i;
	int64_t d = 0;

	qsort(v, n, sizeof(*v), cmp_u32);
	for (i = 0; i < n; i++)
		if (i == 0 || v[i] != v[i - 1])
			d++;
	return d;
}

static void roll_usual(struct account_engine *e, struct acct *a, int64_t now)
{
	int64_t w = e->conf->account_window_ms;
	int64_t k;

	if (now < a->usual_start + w)
		return;
	k = (now - a->usual_start) / w;
	a->usual = a->usual * 0.7 + 0.3 * (double)a->usual_count;
	while (--k > 0 && a->usual > 0.01)
		a->usual *= 0.7;
	a->usual_count = 0;
	a->usual_start = now - (now - a->usual_start) % w;
}

static int64_t pos(int64_t v)
{
	return v > 0 ? v : 0;
}

static int64_t compute(struct account_engine *e, struct acct *a, int64_t now, char *detail,
		       size_t dsz)
{
	uint32_t senders[RING];
	uint32_t domains[RING];
	size_t ns = 0;
	size_t nd = 0;
	int64_t binds = 0, dead = 0, msgs = 0;
	int64_t dsenders, ddomains, floor_, s;
	int64_t since = now - e->conf->account_window_ms;
	size_t i;

	for (i = 0; i < a->n; i++) {
		const struct ev *x = &a->ring[(a->head + RING - 1 - i) % RING];

		if (x->ts < since)
			break;
		switch (x->kind) {
		case EV_SENDER:
			senders[ns++] = x->h;
			break;
		case EV_DOMAIN:
			domains[nd++] = x->h;
			break;
		case EV_BIND:
			binds++;
			break;
		case EV_DEAD:
			dead++;
			break;
		case EV_MSG:
			msgs++;
			break;
		}
	}
	dsenders = distinct(senders, ns);
	ddomains = distinct(domains, nd);
	roll_usual(e, a, now);
	floor_ = e->conf->account_volume_floor;
	if ((int64_t)(3 * a->usual) > floor_)
		floor_ = (int64_t)(3 * a->usual);
	s = 3 * pos(dsenders - 1) + 4 * binds + 2 * dead + pos(ddomains - 10) +
	    pos(msgs - floor_);
	if (detail != NULL)
		snprintf(detail, dsz,
			 "score=%lld senders=%lld refused_bindings=%lld dead_domain_rcpts=%lld"
			 " rcpt_domains=%lld messages=%lld volume_floor=%lld window=%llds",
			 (long long)s, (long long)dsenders, (long long)binds, (long long)dead,
			 (long long)ddomains, (long long)msgs, (long long)floor_,
			 (long long)(e->conf->account_window_ms / 1000));
	return s;
}

static void enqueue(struct account_engine *e, struct job *j)
{
	e->seq_sent++;
	worker_submit(e->w, &j->base);
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

/* Score now; suspend when it crosses the threshold.  1 when suspended. */
static int evaluate(struct account_engine *e, struct acct *a, int64_t now)
{
	char detail[512];
	struct job *j;

	a->score = compute(e, a, now, detail, sizeof(detail));
	a->dirty = 1;
	if (a->suspended)
		return 1;
	if (e->conf->account_suspend_score <= 0 || a->score < e->conf->account_suspend_score)
		return 0;
	a->suspended = 1;
	log_warn(NULL, "account", "ACCOUNT SUSPENDED user=%s %s", a->user, detail);
	j = xcalloc(1, sizeof(*j));
	j->kind = JOB_SUSPEND;
	strlcpy_s(j->user, a->user, sizeof(j->user));
	j->score = a->score;
	j->now = time_now_ms();
	j->since = j->now - e->conf->account_window_ms;
	snprintf(j->reason, sizeof(j->reason), "account %.200s suspended (score %lld)", a->user,
		 (long long)a->score);
	strlcpy_s(j->detail, detail, sizeof(j->detail));
	enqueue(e, j);
	return 1;
}

/* Rate limits: 0 fine (and counted), -1 with r filled. */
static int rate(struct account_engine *e, const char *prefix, const char *who,
		const int64_t lim[3], const int64_t *over, const char *what, const char *whose,
		struct policy_verdict *r, int64_t now, int commit)
{
	char key[NAME_MAX_ + 8];
	int i;

	snprintf(key, sizeof(key), "%s:%s", prefix, who);
	for (i = 0; i < 3; i++) {
		int64_t l = over != NULL && over[i] >= 0 ? over[i] : lim[i];

		if (!commit && l > 0 && account_win_count(e->win, key, win_ms[i], now) >= l) {
			strlcpy_s(r->code, "451 4.7.1", sizeof(r->code));
			snprintf(r->text, sizeof(r->text),
				 "Rate limit exceeded: %lld %s per %s for this %s, try again later",
				 (long long)l, what, win_name[i], whose);
			snprintf(r->check, sizeof(r->check), "rate_%s_%s", prefix, win_name[i]);
			return -1;
		}
		if (commit)
			account_win_add(e->win, key, win_ms[i], now, 1);
	}
	return 0;
}

enum policy_action account_mail(struct account_engine *e, const char *user,
				const char *addr, const char *sender, int bound,
				struct policy_verdict *r)
{
	struct acct *a = acct_get(e, user, 1);
	int64_t now = time_now_ms();

	memset(r, 0, sizeof(*r));
	if (a->suspended) {
		suspended_reply(r);
		return answer(r, POLICY_REFUSE);
	}
	push(a, EV_SENDER, sender, now);
	if (!bound) {
		push(a, EV_BIND, NULL, now);
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
	if (rate(e, "am", user, e->lim_am, a->lim, "messages", "account", r, now, 0) < 0 ||
	    rate(e, "cm", addr, e->lim_cm, NULL, "messages", "client address", r, now, 0) < 0) {
		log_warn(NULL, "account", "RATE LIMIT user=%s client=[%s] %s", user, addr,
			 r->check);
		return answer(r, POLICY_DEFER);
	}
	rate(e, "am", user, e->lim_am, a->lim, "", "", r, now, 1);
	rate(e, "cm", addr, e->lim_cm, NULL, "", "", r, now, 1);
	push(a, EV_MSG, NULL, now);
	a->usual_count++;
	a->d_msgs++;
	if (evaluate(e, a, now)) {
		suspended_reply(r);
		return answer(r, POLICY_REFUSE);
	}
	return answer(r, POLICY_CONTINUE);
}

enum policy_action account_rcpt(struct account_engine *e, const char *user,
				const char *addr, const char *rcpt, int dead,
				struct policy_verdict *r)
{
	struct acct *a = acct_get(e, user, 1);
	int64_t now = time_now_ms();
	const char *at = strrchr(rcpt, '@');

	memset(r, 0, sizeof(*r));
	if (a->suspended) {
		suspended_reply(r);
		return answer(r, POLICY_REFUSE);
	}
	push(a, EV_DOMAIN, at != NULL ? at + 1 : rcpt, now);
	if (dead) {
		push(a, EV_DEAD, NULL, now);
		a->d_refused++;
		if (evaluate(e, a, now)) {
			suspended_reply(r);
			return answer(r, POLICY_REFUSE);
		}
		return answer(r, POLICY_CONTINUE); /* the caller refuses the recipient itself */
	}
	if (rate(e, "ar", user, e->lim_ar, a->lim + 3, "recipients", "account", r, now, 0) < 0 ||
	    rate(e, "cr", addr, e->lim_cr, NULL, "recipients", "client address", r, now, 0) < 0) {
		log_warn(NULL, "account", "RATE LIMIT user=%s client=[%s] %s", user, addr,
			 r->check);
		return answer(r, POLICY_DEFER);
	}
	rate(e, "ar", user, e->lim_ar, a->lim + 3, "", "", r, now, 1);
	rate(e, "cr", addr, e->lim_cr, NULL, "", "", r, now, 1);
	a->d_rcpts++;
	if (evaluate(e, a, now)) {
		suspended_reply(r);
		return answer(r, POLICY_REFUSE);
	}
	return answer(r, POLICY_CONTINUE);
}

enum policy_action account_from_refused(struct account_engine *e, const char *user,
					const char *from, struct policy_verdict *r)
{
	struct acct *a = acct_get(e, user, 1);
	int64_t now = time_now_ms();

	memset(r, 0, sizeof(*r));
	push(a, EV_SENDER, from, now);
	push(a, EV_BIND, NULL, now);
	a->d_refused++;
	if (evaluate(e, a, now)) {
		suspended_reply(r);
		return answer(r, POLICY_REFUSE);
	}
	strlcpy_s(r->code, "553 5.7.1", sizeof(r->code));
	strlcpy_s(r->text, "Message refused: From: header address not owned by the authenticated user",
		  sizeof(r->text));
	strlcpy_s(r->check, "from_binding", sizeof(r->check));
	return answer(r, POLICY_REFUSE);
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

	return a != NULL && a->suspended;
}

int64_t account_score(struct account_engine *e, const char *user, char *detail,
		      size_t detailsz)
{
	struct acct *a = acct_get(e, user, 0);

	if (a == NULL) {
		if (detail != NULL && detailsz > 0)
			detail[0] = '\0';
		return 0;
	}
	return compute(e, a, time_now_ms(), detail, detailsz);
}

/* ---- worker ---------------------------------------------------------------- */

static void res_free(struct poll_res *p)
{
	size_t i;

	if (p == NULL)
		return;
	for (i = 0; i < p->nsusp; i++)
		free(p->susp[i]);
	free(p->susp);
	free(p->lims);
	free(p);
}

static int poll_susp_cb(const struct store_account_state *s, void *arg)
{
	struct poll_res *p = arg;

	p->susp = xrealloc(p->susp, (p->nsusp + 1) * sizeof(char *));
	p->susp[p->nsusp++] = xstrdup(s->user);
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

	if (store_account_states(st, 1, poll_susp_cb, p) < 0 ||
	    store_account_limits(st, poll_lim_cb, p) < 0) {
		log_error(NULL, "account", "cannot read account state: %s", store_account_errmsg(st));
		res_free(p);
		return NULL;
	}
	return p;
}

static void hold(struct store *st, const char *user, const char *reason, int64_t since,
		 int64_t alert_id, int64_t *total)
{
	struct store_queue_filter f;
	int n = 0;

	memset(&f, 0, sizeof(f));
	f.auth_user = user;
	f.received_after = since;
	if (store_queue_hold(st, &f, reason, &n) < 0) {
		log_error(NULL, "account", "cannot hold mail of %s: %s", user, store_account_errmsg(st));
		return;
	}
	*total += n;
	if (n > 0 || alert_id > 0)
		log_warn(NULL, "account", "ACCOUNT HELD user=%s recipients=%d", user, n);
	if (alert_id > 0)
		store_account_alert_held(st, alert_id, *total);
}

static void save(struct account_engine *e, struct store *st, struct job *j)
{
	if (j->kind == JOB_FLUSH) {
		if (store_account_add(st, j->user, j->msgs, j->rcpts, j->refused, j->score,
				      j->now) < 0)
			log_error(NULL, "account", "cannot save counters: %s", store_account_errmsg(st));
		return;
	}
	{
		int64_t alert_id = 0;
		int64_t total = 0;
		struct rehold *r;

		if (store_account_suspend(st, j->user, j->reason, j->score, j->detail, j->now,
					  &alert_id) < 0) {
			log_error(NULL, "account", "cannot record suspension: %s", store_account_errmsg(st));
			return;
		}
		hold(st, j->user, j->reason, j->since, alert_id, &total);
		r = xcalloc(1, sizeof(*r));
		strlcpy_s(r->user, j->user, sizeof(r->user));
		strlcpy_s(r->reason, j->reason, sizeof(r->reason));
		r->since = j->since;
		r->at = time_mono_ms() + REHOLD_MS;
		r->alert_id = alert_id;
		r->next = e->reholds;
		e->reholds = r;
		log_warn(NULL, "account", "ALERT account=%s alert=%lld %s", j->user,
			 (long long)alert_id, j->detail);
	}
}

static void run_reholds(struct account_engine *e, struct store *st, int all)
{
	struct rehold **pp = &e->reholds;
	int64_t now = time_mono_ms();

	while (*pp != NULL) {
		struct rehold *r = *pp;

		if (all || now >= r->at) {
			int64_t total = 0;

			hold(st, r->user, r->reason, r->since, 0, &total);
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
	if (j->kind == JOB_FLUSH || j->kind == JOB_SUSPEND)
		save(e, e->st, j);
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

/* ---- loop: state read back, periodic flush ------------------------------- */

static void apply_state(struct account_engine *e, const struct poll_res *p, int suspensions)
{
	size_t b;
	size_t i;

	for (b = 0; b < e->size; b++) {
		struct acct *a;

		for (a = e->tab[b]; a != NULL; a = a->next) {
			int found = 0;

			memset(a->lim, 0xff, sizeof(a->lim)); /* -1: defaults */
			if (!suspensions)
				continue;
			for (i = 0; i < p->nsusp && !found; i++)
				found = strcmp(p->susp[i], a->user) == 0;
			if (a->suspended && !found) {
				a->suspended = 0;
				a->n = 0; /* a fresh window after a lift */
				a->head = 0;
				log_notice(NULL, "account", "account lifted user=%s", a->user);
			}
		}
	}
	for (i = 0; i < p->nlims; i++)
		memcpy(acct_get(e, p->lims[i].user, 1)->lim, p->lims[i].v, sizeof(p->lims[i].v));
	if (suspensions) {
		for (i = 0; i < p->nsusp; i++)
			acct_get(e, p->susp[i], 1)->suspended = 1;
	}
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
	}
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

static void flush(struct account_engine *e)
{
	size_t b;
	int64_t now = time_now_ms();

	for (b = 0; b < e->size; b++) {
		struct acct *a;

		for (a = e->tab[b]; a != NULL; a = a->next) {
			struct job *j;

			if (!a->dirty)
				continue;
			j = xcalloc(1, sizeof(*j));
			j->kind = JOB_FLUSH;
			strlcpy_s(j->user, a->user, sizeof(j->user));
			j->msgs = a->d_msgs;
			j->rcpts = a->d_rcpts;
			j->refused = a->d_refused;
			j->score = a->score;
			j->now = now;
			a->d_msgs = a->d_rcpts = a->d_refused = 0;
			a->dirty = 0;
			enqueue(e, j);
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
		int i;

		for (i = 0; i < 4; i++) {
			if (account_parse_limits(vals[i], outs[i]) < 0) {
				snprintf(err, errsz, "%s: '%.64s': expected \"N,N,N\" (per minute,"
					 " hour, day; 0 none)", names[i], vals[i]);
				goto fail;
			}
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
	e->stopping = 1;
	if (e->w != NULL) {
		struct job *j = xcalloc(1, sizeof(*j));

		flush(e);
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
