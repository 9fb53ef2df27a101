/*
 * alert_admin: what an administrator does about an account — suspend now,
 * lift (keeping, releasing or deleting what was held), trust for bulk
 * mail until a date — one home for the API (http_accounts.c) and
 * `moatd accounts` (cli_accounts.c).  See alert.h.
 *
 * Each change of account_state commits with its alert row and its audit
 * row ("account.suspend", "account.lift", "account.trust",
 * "account.untrust"); the queue side goes through queue_admin, which
 * writes its own audit row ("queue.hold", "queue.release",
 * "queue.delete").  The queue step runs first, so that a failure there
 * leaves the account as it was.
 */
#include "alert.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../log/log.h"
#include "../queue/queue_admin.h"
#include "../spool/spool_read.h"
#include "../store/store.h"
#include "../store/store_alert.h"
#include "../store/store_auth.h"

#define HEAD_MAX (32 * 1024) /* bytes of a held message read for its Subject */

struct samples {
	json_t *items;
	const char *data_dir;
};

static void subject_of(const char *data_dir, const char *qid, char *out, size_t outsz)
{
	char *buf = xmalloc(HEAD_MAX + 1);
	struct dynbuf v;
	const char *name;
	size_t name_len, len, pos = 0;

	out[0] = '\0';
	dynbuf_init(&v, 4096);
	if (spool_read_headers(data_dir, qid, buf, HEAD_MAX, &len) == 0) {
		while (spool_header_next(buf, len, &pos, &name, &name_len, &v) == 1) {
			if (name_len == 7 && strncasecmp(name, "subject", 7) == 0) {
				snprintf(out, outsz, "%.*s", (int)v.len, v.data);
				break;
			}
		}
	}
	dynbuf_free(&v);
	free(buf);
}

static int add_sample(const struct store_queue_row *q, void *arg)
{
	struct samples *s = arg;
	char subject[400];

	if (json_array_size(s->items) >= ALERT_SAMPLES)
		return 1;
	subject_of(s->data_dir, q->qid, subject, sizeof(subject));
	json_array_append_new(s->items,
			      json_pack("{s:s, s:s, s:s, s:s, s:I}", "qid", q->qid, "sender",
					q->sender, "recipient", q->rcpt, "subject", subject,
					"size", (json_int_t)q->size));
	return 0;
}

char *alert_samples_json(struct store *st, const char *data_dir, const char *user)
{
	struct store_queue_filter f;
	struct samples s = { json_array(), data_dir };
	char *out;

	memset(&f, 0, sizeof(f));
	f.auth_user = user;
	f.state = "held";
	f.limit = ALERT_SAMPLES;
	if (store_queue_list(st, &f, add_sample, &s) < 0)
		json_array_clear(s.items);
	out = json_dumps(s.items, JSON_COMPACT);
	json_decref(s.items);
	return out != NULL ? out : xstrdup("[]");
}

static json_t *json_array_or_empty(const char *text)
{
	json_t *v = text != NULL ? json_loads(text, 0, NULL) : NULL;

	if (!json_is_array(v)) {
		json_decref(v);
		v = json_array();
	}
	return v;
}

json_t *alert_row_json(const struct store_alert_row *a)
{
	return json_pack("{s:I, s:I, s:s, s:s, s:I, s:s, s:I, s:o, s:o, s:o, s:s, s:o, s:o}",
			 "id", (json_int_t)a->id, "ts", (json_int_t)a->ts, "user",
			 a->user != NULL ? a->user : "", "kind", a->kind != NULL ? a->kind : "",
			 "score", (json_int_t)a->score, "detail",
			 a->detail != NULL ? a->detail : "", "held", (json_int_t)a->held,
			 "signals", json_array_or_empty(a->signals), "clients",
			 json_array_or_empty(a->clients), "samples",
			 json_array_or_empty(a->samples), "actor",
			 a->actor != NULL ? a->actor : "moatd", "action",
			 a->action != NULL ? json_string(a->action) : json_null(), "notified",
			 a->notified > 0 ? json_integer(a->notified) : json_null());
}

static int audit(struct store *st, const struct queue_admin_actor *actor, const char *action,
		 const char *user, json_t *before, json_t *after)
{
	struct store_audit a;
	char *b = before != NULL ? json_dumps(before, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	char *f = after != NULL ? json_dumps(after, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	int rc;

	memset(&a, 0, sizeof(a));
	a.ts = time_now_ms();
	a.actor_id = actor->user_id;
	a.actor = actor->name;
	a.via = actor->via;
	a.client_addr = actor->client_addr != NULL ? actor->client_addr : "-";
	a.action = action;
	a.object_type = "account";
	a.object_id = user;
	a.before = b;
	a.after = f;
	rc = store_auth_audit_add(st, &a);
	free(b);
	free(f);
	json_decref(before);
	json_decref(after);
	return rc;
}

struct state {
	int found;
	int64_t suspended, score, trusted_until;
	char *signals;
};

static int get_state(const struct store_alert_account *a, void *arg)
{
	struct state *s = arg;

	s->found = 1;
	s->suspended = a->suspended;
	s->score = a->score;
	s->trusted_until = a->trusted_until;
	s->signals = a->signals != NULL ? xstrdup(a->signals) : NULL;
	return 1;
}

static int read_state(struct store *st, const char *user, struct state *s)
{
	int found;

	memset(s, 0, sizeof(*s));
	return store_alert_account_get(st, user, get_state, s, &found);
}

static void fmt_time(int64_t ms, char *out, size_t outsz)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, outsz, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

enum alert_result alert_admin_suspend(struct store *st, const char *data_dir,
				      const char *user, const char *reason, int64_t window_ms,
				      const struct queue_admin_actor *actor, int64_t *alert_id,
				      int64_t *held, char *err, size_t errsz)
{
	struct store_queue_filter f;
	struct queue_admin_result res;
	struct store_alert_new an;
	struct state s;
	char why[ALERT_REASON_MAX + 400], detail[ALERT_REASON_MAX + 400];
	char *samples;
	int64_t now = time_now_ms();
	int known, changed;

	*alert_id = 0;
	*held = 0;
	if (store_alert_user_known(st, user, &known) < 0 || read_state(st, user, &s) < 0) {
		snprintf(err, errsz, "database error");
		return ALERT_ERROR;
	}
	free(s.signals);
	if (!known)
		return ALERT_UNKNOWN;
	if (s.suspended > 0)
		return ALERT_ALREADY;
	if (reason != NULL && reason[0] != '\0')
		snprintf(why, sizeof(why), "account %s suspended by %s: %s", user, actor->name,
			 reason);
	else
		snprintf(why, sizeof(why), "account %s suspended by %s", user, actor->name);
	/* What it queued lately, held first: a failure here changes nothing else. */
	memset(&f, 0, sizeof(f));
	f.auth_user = user;
	f.received_after = window_ms > 0 ? now - window_ms : 0;
	if (queue_admin_apply(st, data_dir, QUEUE_ADMIN_HOLD, &f, why, actor, &res, err,
			      errsz) < 0)
		return ALERT_ERROR;
	*held = res.recipients;
	samples = alert_samples_json(st, data_dir, user);
	if (store_begin(st) < 0) {
		free(samples);
		snprintf(err, errsz, "database busy");
		return ALERT_ERROR;
	}
	if (store_alert_suspend_tx(st, user, why, now, &changed) < 0)
		goto fail;
	if (!changed) {
		store_rollback(st);
		free(samples);
		return ALERT_ALREADY;
	}
	if (read_state(st, user, &s) < 0)
		goto fail;
	snprintf(detail, sizeof(detail), "suspended by %s%s%s", actor->name,
		 reason != NULL && reason[0] != '\0' ? ": " : "", reason != NULL ? reason : "");
	memset(&an, 0, sizeof(an));
	an.user = user;
	an.kind = "suspended";
	an.ts = now;
	an.score = s.score;
	an.detail = detail;
	an.held = *held;
	an.signals = s.signals != NULL ? s.signals : "[]";
	an.clients = "[]";
	an.samples = samples;
	an.actor = actor->name;
	an.notified = 0;
	if (store_alert_insert(st, &an, alert_id) < 0) {
		free(s.signals);
		goto fail;
	}
	free(s.signals);
	if (audit(st, actor, "account.suspend", user, json_pack("{s:b}", "suspended", 0),
		  json_pack("{s:b, s:s, s:I, s:I}", "suspended", 1, "reason",
			    reason != NULL ? reason : "", "held", (json_int_t)*held, "alert",
			    (json_int_t)*alert_id)) < 0 ||
	    store_commit(st) < 0)
		goto fail;
	free(samples);
	log_warn(NULL, "account", "ACCOUNT SUSPENDED user=%s by=%s held=%lld alert=%lld", user,
		 actor->name, (long long)*held, (long long)*alert_id);
	return ALERT_DONE;
fail:
	store_rollback(st);
	free(samples);
	snprintf(err, errsz, "cannot record the suspension");
	return ALERT_ERROR;
}

enum alert_result alert_admin_lift(struct store *st, const char *data_dir, const char *user,
				   enum alert_held held, const struct queue_admin_actor *actor,
				   int64_t *released, int64_t *deleted, char *err, size_t errsz)
{
	static const char *const names[] = { "keep", "release", "delete" };
	struct store_queue_filter f;
	struct queue_admin_result res;
	struct store_alert_new an;
	struct state s;
	char detail[600];
	int64_t now = time_now_ms(), moved = 0;
	int known, changed;

	*released = *deleted = 0;
	if (store_alert_user_known(st, user, &known) < 0 || read_state(st, user, &s) < 0) {
		snprintf(err, errsz, "database error");
		return ALERT_ERROR;
	}
	free(s.signals);
	if (!known)
		return ALERT_UNKNOWN;
	if (s.suspended <= 0)
		return ALERT_NOT_SUSPENDED;
	if (held != ALERT_HELD_KEEP) {
		memset(&f, 0, sizeof(f));
		f.auth_user = user;
		f.state = "held";
		if (queue_admin_apply(st, data_dir,
				      held == ALERT_HELD_RELEASE ? QUEUE_ADMIN_RELEASE
				      : QUEUE_ADMIN_DELETE, &f, NULL, actor, &res, err,
				      errsz) < 0)
			return ALERT_ERROR;
		moved = res.recipients;
		if (held == ALERT_HELD_RELEASE)
			*released = moved;
		else
			*deleted = moved;
	}
	if (store_begin(st) < 0) {
		snprintf(err, errsz, "database busy");
		return ALERT_ERROR;
	}
	if (store_alert_lift_tx(st, user, now, &changed) < 0)
		goto fail;
	if (!changed) {
		store_rollback(st);
		return ALERT_NOT_SUSPENDED;
	}
	if (held == ALERT_HELD_KEEP)
		snprintf(detail, sizeof(detail), "lifted by %s; held mail kept", actor->name);
	else
		snprintf(detail, sizeof(detail), "lifted by %s; %lld held recipients %s",
			 actor->name, (long long)moved,
			 held == ALERT_HELD_RELEASE ? "released" : "deleted");
	memset(&an, 0, sizeof(an));
	an.user = user;
	an.kind = "lifted";
	an.ts = now;
	an.detail = detail;
	an.held = moved;
	an.actor = actor->name;
	an.action = names[held];
	an.notified = 0; /* the webhook hears of it; no mail */
	if (store_alert_insert(st, &an, NULL) < 0 ||
	    audit(st, actor, "account.lift", user, json_pack("{s:b}", "suspended", 1),
		  json_pack("{s:b, s:s, s:I, s:I}", "suspended", 0, "held", names[held],
			    "released", (json_int_t)*released, "deleted",
			    (json_int_t)*deleted)) < 0 ||
	    store_commit(st) < 0)
		goto fail;
	log_notice(NULL, "account", "ACCOUNT LIFTED user=%s by=%s held=%s recipients=%lld", user,
		   actor->name, names[held], (long long)moved);
	return ALERT_DONE;
fail:
	store_rollback(st);
	snprintf(err, errsz, "cannot record the lift");
	return ALERT_ERROR;
}

enum alert_result alert_admin_trust(struct store *st, const char *user, int64_t until,
				    const struct queue_admin_actor *actor, char *err,
				    size_t errsz)
{
	struct store_alert_new an;
	struct state s;
	char when[40] = "", detail[400];
	int64_t now = time_now_ms();
	int known;

	if (store_alert_user_known(st, user, &known) < 0 || read_state(st, user, &s) < 0) {
		snprintf(err, errsz, "database error");
		return ALERT_ERROR;
	}
	free(s.signals);
	if (!known)
		return ALERT_UNKNOWN;
	if (until == 0 && s.trusted_until <= now)
		return ALERT_NOT_TRUSTED; /* nothing to end, nothing recorded */
	if (until > 0) {
		fmt_time(until, when, sizeof(when));
		snprintf(detail, sizeof(detail), "trusted for bulk mail until %s by %s", when,
			 actor->name);
	} else {
		snprintf(detail, sizeof(detail), "trust for bulk mail ended by %s", actor->name);
	}
	if (store_begin(st) < 0) {
		snprintf(err, errsz, "database busy");
		return ALERT_ERROR;
	}
	memset(&an, 0, sizeof(an));
	an.user = user;
	an.kind = until > 0 ? "trusted" : "untrusted";
	an.ts = now;
	an.score = s.score;
	an.detail = detail;
	an.actor = actor->name;
	an.action = until > 0 ? when : NULL;
	an.notified = -1;
	if (store_alert_trust_tx(st, user, until, now) < 0 || store_alert_insert(st, &an, NULL) < 0 ||
	    audit(st, actor, until > 0 ? "account.trust" : "account.untrust", user,
		  json_pack("{s:I}", "trusted_until", (json_int_t)s.trusted_until),
		  json_pack("{s:I}", "trusted_until", (json_int_t)until)) < 0 ||
	    store_commit(st) < 0) {
		store_rollback(st);
		snprintf(err, errsz, "cannot record the trust");
		return ALERT_ERROR;
	}
	log_notice(NULL, "account", "ACCOUNT TRUSTED user=%s by=%s until=%s", user, actor->name,
		   until > 0 ? when : "-");
	return ALERT_DONE;
}
