/*
 * alert: the notifier — account alerts out by e-mail (through moatd's own
 * queue) and by webhook.  See alert.h for the contract; this file is the
 * worker and its tick.
 *
 * Loop side: a timer every ALERT_TICK_MS submits one tick job unless one
 * is under way; done() kicks the queue runner when a mail was queued.
 * Worker side: opens its SQLite connection on first use (on the worker
 * thread), reads the settings each tick (they are runtime policy
 * settings: a change in the console applies at the next tick), sends
 * what is pending, then due webhook retries.  The retry list is the
 * worker thread's alone.
 */
#include "alert.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../conf/conf.h"
#include "../log/log.h"
#include "../spool/spool_inject.h"
#include "../store/store.h"
#include "../store/store_policy.h"
#include "../store/store_alert.h"
#include "../store/store_digest.h"
#include "../util/worker.h"

#define ALERT_TICK_MS 1000
#define ALERT_BATCH 20           /* alerts handled per tick at most */
#define ALERT_MAIL_MAX (256 * 1024)
#define ALERT_RCPTS_MAX 50       /* administrators an alert mail goes to */
#define ALERT_WEBHOOK_TRIES 3
#define ALERT_SECRET_BYTES 32

struct hook {
	struct hook *next;
	int64_t alert_id;
	char user[330];
	char *body;
	int tries;
	int64_t due;                 /* monotonic ms */
};

struct alert {
	const struct conf *conf;
	char db_path[1200];
	char url_base[600];
	struct event *timer;
	struct worker *worker;
	struct store *st;            /* the worker thread's */
	int st_tried;
	struct hook *hooks;          /* webhook retries, worker thread only */
	void (*kick)(void *arg);
	void *kick_arg;
	int busy;                    /* a tick is under way (loop side) */
};

struct tick_job {
	struct worker_job wj;
	int queued;                  /* mails queued by this tick */
};

/* ---- settings ---- */

struct settings {
	char recipients[1200];
	char url[1100];
	char secret[320];
	int insecure;
};

static int load_settings(struct alert *a, struct settings *s)
{
	char v[16];
	int found;

	memset(s, 0, sizeof(*s));
	if (store_policy_setting(a->st, "alert_recipients", s->recipients, sizeof(s->recipients),
				&found) < 0 ||
	    store_policy_setting(a->st, "alert_webhook_url", s->url, sizeof(s->url), &found) < 0 ||
	    store_policy_setting(a->st, "alert_webhook_secret", s->secret, sizeof(s->secret),
				&found) < 0 ||
	    store_policy_setting(a->st, "alert_webhook_insecure", v, sizeof(v), &found) < 0)
		return -1;
	s->insecure = found && (strcmp(v, "yes") == 0 || strcmp(v, "on") == 0 ||
				strcmp(v, "true") == 0 || strcmp(v, "1") == 0);
	if (s->url[0] != '\0' && s->secret[0] == '\0') {
		/* Like the digest's link key: made once, kept; the administrator reads it
		 * in the Settings page (or `moatd policy show`) to verify signatures. */
		random_hex(s->secret, ALERT_SECRET_BYTES);
		if (store_policy_setting_set(a->st, "alert_webhook_secret", s->secret) < 0)
			return -1;
		log_notice(NULL, "alert", "webhook secret generated (setting alert_webhook_secret)");
	}
	return 0;
}

/* ---- who gets the mail ---- */

struct rcpts {
	char *list[ALERT_RCPTS_MAX];
	size_t n;
};

static int add_rcpt(const char *addr, void *arg)
{
	struct rcpts *r = arg;
	size_t i;

	if (r->n == ALERT_RCPTS_MAX)
		return 1;
	for (i = 0; i < r->n; i++)
		if (strcasecmp(r->list[i], addr) == 0)
			return 0;
	r->list[r->n++] = xstrdup(addr);
	return 0;
}

static void rcpts_free(struct rcpts *r)
{
	size_t i;

	for (i = 0; i < r->n; i++)
		free(r->list[i]);
	r->n = 0;
}

/*
 * alert_recipients if set, else the directory's administrators' primary
 * addresses, else the postmaster (postmaster_address, else postmaster@ the
 * first local domain: the digest's resolution), else postmaster@hostname.
 */
static int resolve_rcpts(struct alert *a, const struct settings *s, struct rcpts *r)
{
	char pm[330];
	const char *p = s->recipients;

	while (*p != '\0') {
		char one[330];
		size_t n;

		while (*p == ',' || *p == ' ')
			p++;
		n = strcspn(p, ", ");
		if (n > 0 && n < sizeof(one) && memchr(p, '@', n) != NULL) {
			memcpy(one, p, n);
			one[n] = '\0';
			add_rcpt(one, r);
		}
		p += n;
	}
	if (r->n == 0 && store_alert_admin_addresses(a->st, add_rcpt, r) < 0)
		return -1;
	if (r->n == 0) {
		if (store_digest_postmaster(a->st, pm, sizeof(pm)) < 0)
			return -1;
		if (pm[0] == '\0')
			snprintf(pm, sizeof(pm), "postmaster@%s", a->conf->hostname);
		add_rcpt(pm, r);
	}
	return 0;
}

/* ---- one alert ---- */

struct pending {
	int64_t id, ts, score, held, notified;
	char *user, *kind, *detail, *signals, *clients, *samples, *actor, *action;
};

static char *dup_or_null(const char *s)
{
	return s != NULL ? xstrdup(s) : NULL;
}

struct pending_list {
	struct pending *items;
	size_t n;
};

static int collect(const struct store_alert_row *r, void *arg)
{
	struct pending_list *l = arg;
	struct pending *p;

	l->items = xrealloc(l->items, (l->n + 1) * sizeof(*l->items));
	p = &l->items[l->n++];
	p->id = r->id;
	p->ts = r->ts;
	p->score = r->score;
	p->held = r->held;
	p->notified = r->notified;
	p->user = dup_or_null(r->user != NULL ? r->user : "");
	p->kind = dup_or_null(r->kind != NULL ? r->kind : "");
	p->detail = dup_or_null(r->detail);
	p->signals = dup_or_null(r->signals);
	p->clients = dup_or_null(r->clients);
	p->samples = dup_or_null(r->samples);
	p->actor = dup_or_null(r->actor);
	p->action = dup_or_null(r->action);
	return 0;
}

static void pending_free(struct pending_list *l)
{
	size_t i;

	for (i = 0; i < l->n; i++) {
		struct pending *p = &l->items[i];

		free(p->user);
		free(p->kind);
		free(p->detail);
		free(p->signals);
		free(p->clients);
		free(p->samples);
		free(p->actor);
		free(p->action);
	}
	free(l->items);
}

static struct store_alert_row row_of(const struct pending *p)
{
	struct store_alert_row r;

	r.id = p->id;
	r.ts = p->ts;
	r.user = p->user;
	r.kind = p->kind;
	r.score = p->score;
	r.detail = p->detail;
	r.held = p->held;
	r.signals = p->signals;
	r.clients = p->clients;
	r.samples = p->samples;
	r.actor = p->actor;
	r.action = p->action;
	r.notified = p->notified;
	return r;
}

static int mark_sent(struct store *st, const char *qid, void *arg)
{
	(void)qid;
	return store_alert_mark(st, *(const int64_t *)arg, time_now_ms());
}

/*
 * A manual suspension reaches the mail loop within a second (the account
 * worker reads it back); what the account queued meanwhile is held now.
 * (The engine does the same for its own suspensions.)
 */
static void rehold(struct alert *a, struct pending *p)
{
	struct store_queue_filter f;
	char reason[400];
	int n = 0;

	if (p->actor == NULL || strcmp(p->actor, "moatd") == 0)
		return;
	memset(&f, 0, sizeof(f));
	f.auth_user = p->user;
	f.received_after = p->ts - a->conf->account_window_ms;
	f.while_suspended = 1; /* not again after a lift released it */
	snprintf(reason, sizeof(reason), "account %s suspended by %s", p->user, p->actor);
	if (store_begin(a->st) < 0)
		return;
	if (store_queue_hold(a->st, &f, reason, &n) < 0 ||
	    (n > 0 && store_alert_set_held(a->st, p->id, p->held + n) < 0) ||
	    store_commit(a->st) < 0) {
		store_rollback(a->st);
		return;
	}
	if (n > 0) {
		p->held += n;
		log_warn(NULL, "account", "ACCOUNT HELD user=%s recipients=%d", p->user, n);
	}
}

static int send_mail(struct alert *a, const struct settings *s, struct pending *p)
{
	struct rcpts r = { { NULL }, 0 };
	struct alert_mail m;
	struct dynbuf msg, to;
	char from[330], qid[SPOOL_QID_LEN + 1], err[512];
	size_t i;
	int rc = -1;

	rehold(a, p);
	if ((p->samples == NULL || strcmp(p->samples, "[]") == 0) && p->held > 0) {
		char *js = alert_samples_json(a->st, a->conf->data_dir, p->user);

		free(p->samples);
		p->samples = js;
		store_alert_set_samples(a->st, p->id, js);
	}
	if (resolve_rcpts(a, s, &r) < 0) {
		log_error(NULL, "alert", "alert=%lld: cannot read the recipients", (long long)p->id);
		return -1;
	}
	dynbuf_init(&to, 64 * 1024);
	for (i = 0; i < r.n; i++)
		dynbuf_addf(&to, "%s%s", i > 0 ? "," : "", r.list[i]);
	snprintf(from, sizeof(from), "MAILER-DAEMON@%s", a->conf->hostname);
	memset(&m, 0, sizeof(m));
	m.hostname = a->conf->hostname;
	m.from = from;
	m.to = to.data != NULL ? to.data : "";
	m.url_base = a->url_base;
	m.now_ms = time_now_ms();
	m.id = p->id;
	m.ts = p->ts;
	m.score = p->score;
	m.held = p->held;
	m.user = p->user;
	m.detail = p->detail;
	m.actor = p->actor;
	m.signals = p->signals;
	m.clients = p->clients;
	m.samples = p->samples;
	dynbuf_init(&msg, ALERT_MAIL_MAX);
	if (alert_mail_render(&msg, &m) < 0) {
		log_error(NULL, "alert", "alert=%lld: the mail is larger than %d bytes",
			  (long long)p->id, ALERT_MAIL_MAX);
		goto out;
	}
	/* The null sender, like a DSN: a bounce of an alert goes nowhere. */
	if (spool_inject(a->st, a->conf->data_dir, "file", a->conf->hostname, msg.data, msg.len,
			 "", (const char *const *)r.list, r.n, mark_sent, &p->id, qid, err,
			 sizeof(err)) < 0) {
		log_error(NULL, "alert", "alert=%lld: cannot queue the mail (next tick): %s",
			  (long long)p->id, err);
		goto out;
	}
	log_notice(qid, "alert", "ALERT MAIL queued alert=%lld user=%s to=%s size=%zu",
		   (long long)p->id, p->user, m.to, msg.len);
	rc = 0;
out:
	dynbuf_free(&msg);
	dynbuf_free(&to);
	rcpts_free(&r);
	return rc;
}

static char *webhook_body(const struct pending *p)
{
	struct store_alert_row r = row_of(p);
	json_t *o = alert_row_json(&r);
	char event[64];
	char *body;

	snprintf(event, sizeof(event), "account.%s", p->kind);
	json_object_set_new(o, "event", json_string(event));
	body = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	return body;
}

/* One attempt; 0 sent, -1 failed (logged). */
static int post(struct alert *a, const struct settings *s, struct hook *h)
{
	char err[300];
	int status = 0;

	h->tries++;
	if (alert_webhook_post(s->url, s->secret, s->insecure, a->conf->alert_webhook_timeout_ms,
			       h->body, strlen(h->body), &status, err, sizeof(err)) == 0) {
		log_notice(NULL, "alert", "webhook sent alert=%lld user=%s status=%d attempt=%d",
			   (long long)h->alert_id, h->user, status, h->tries);
		return 0;
	}
	if (h->tries < ALERT_WEBHOOK_TRIES) {
		int64_t wait = a->conf->alert_webhook_retry_ms * (h->tries == 1 ? 1 : 9);

		log_warn(NULL, "alert", "ALERT WEBHOOK FAILED alert=%lld user=%s attempt=%d/%d"
			 " retry_in=%llds: %s", (long long)h->alert_id, h->user, h->tries,
			 ALERT_WEBHOOK_TRIES, (long long)(wait / 1000), err);
		h->due = time_mono_ms() + wait;
	} else {
		log_error(NULL, "alert", "ALERT WEBHOOK FAILED alert=%lld user=%s attempt=%d/%d"
			  " giving up: %s", (long long)h->alert_id, h->user, h->tries,
			  ALERT_WEBHOOK_TRIES, err);
	}
	return -1;
}

static void webhook(struct alert *a, const struct settings *s, const struct pending *p)
{
	struct hook *h;

	if (s->url[0] == '\0')
		return;
	h = xcalloc(1, sizeof(*h));
	h->alert_id = p->id;
	strlcpy_s(h->user, p->user, sizeof(h->user));
	h->body = webhook_body(p);
	if (h->body == NULL || post(a, s, h) == 0 || h->tries >= ALERT_WEBHOOK_TRIES) {
		free(h->body);
		free(h);
		return;
	}
	h->next = a->hooks;
	a->hooks = h;
}

static void retries(struct alert *a, const struct settings *s)
{
	struct hook **pp = &a->hooks;
	int64_t now = time_mono_ms();

	while (*pp != NULL) {
		struct hook *h = *pp;

		if (h->due > now) {
			pp = &h->next;
			continue;
		}
		if (s->url[0] != '\0' && post(a, s, h) < 0 && h->tries < ALERT_WEBHOOK_TRIES) {
			pp = &h->next;
			continue;
		}
		*pp = h->next;
		free(h->body);
		free(h);
	}
}

static void hooks_free(struct alert *a)
{
	while (a->hooks != NULL) {
		struct hook *h = a->hooks;

		a->hooks = h->next;
		free(h->body);
		free(h);
	}
}

static void tick_run(struct worker_job *wj, void *arg)
{
	struct alert *a = arg;
	struct tick_job *j = (struct tick_job *)(void *)wj;
	struct pending_list l = { NULL, 0 };
	struct settings s;
	char err[512];
	size_t i;

	if (!a->st_tried) {
		a->st_tried = 1;
		a->st = store_open(a->db_path, 0, err, sizeof(err));
		if (a->st == NULL)
			log_error(NULL, "alert", "cannot open the database: %s", err);
	}
	if (a->st == NULL || worker_stopping(a->worker))
		return;
	if (load_settings(a, &s) < 0) {
		log_error(NULL, "alert", "cannot read the alert settings");
		return;
	}
	if (store_alert_pending(a->st, time_now_ms() - ALERT_SETTLE_MS, ALERT_BATCH, collect,
				&l) < 0) {
		log_error(NULL, "alert", "cannot read pending alerts");
		pending_free(&l);
		return;
	}
	for (i = 0; i < l.n; i++) {
		struct pending *p = &l.items[i];

		if (strcmp(p->kind, "suspended") == 0) {
			if (send_mail(a, &s, p) < 0)
				continue; /* notified stays 0: next tick */
			j->queued++;
			webhook(a, &s, p);
		} else if (strcmp(p->kind, "lifted") == 0) {
			if (store_alert_mark(a->st, p->id, s.url[0] != '\0' ? time_now_ms() : -1) < 0)
				continue;
			webhook(a, &s, p);
		} else if (store_alert_mark(a->st, p->id, -1) < 0) {
			continue;
		}
	}
	pending_free(&l);
	retries(a, &s);
}

static void tick_done(struct worker_job *wj, void *arg)
{
	struct alert *a = arg;
	struct tick_job *j = (struct tick_job *)(void *)wj;

	a->busy = 0;
	if (j->queued > 0 && a->kick != NULL)
		a->kick(a->kick_arg);
	free(j);
}

static void tick(evutil_socket_t fd, short what, void *arg)
{
	struct alert *a = arg;
	struct tick_job *j;

	(void)fd;
	(void)what;
	if (a->busy)
		return; /* one tick at a time: a slow webhook delays the next */
	a->busy = 1;
	j = xcalloc(1, sizeof(*j));
	worker_submit(a->worker, &j->wj);
}

struct alert *alert_start(struct event_base *base, const struct conf *conf,
			  const char *db_path, const char *url_base,
			  void (*kick)(void *arg), void *kick_arg, char *err, size_t errsz)
{
	static const struct worker_ops ops = { .run = tick_run, .done = tick_done };
	struct alert *a = xcalloc(1, sizeof(*a));
	struct timeval tv = { ALERT_TICK_MS / 1000, (ALERT_TICK_MS % 1000) * 1000 };

	a->conf = conf;
	a->kick = kick;
	a->kick_arg = kick_arg;
	strlcpy_s(a->db_path, db_path, sizeof(a->db_path));
	strlcpy_s(a->url_base, url_base, sizeof(a->url_base));
	a->worker = worker_new(base, "alert", &ops, a, err, errsz);
	if (a->worker == NULL) {
		free(a);
		return NULL;
	}
	a->timer = event_new(base, -1, EV_PERSIST, tick, a);
	event_add(a->timer, &tv);
	return a;
}

void alert_free(struct alert *a)
{
	if (a == NULL)
		return;
	event_free(a->timer);
	worker_free(a->worker); /* a tick under way finishes; its done() runs here */
	store_close(a->st);     /* the thread is joined: nothing else uses it */
	hooks_free(a);
	free(a);
}
