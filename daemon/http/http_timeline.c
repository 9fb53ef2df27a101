/*
 * http_timeline: one timeline per message (docs/timeline.md),
 * administrators only.
 *
 *   GET /api/v1/messages/{id}/timeline         a message-log row
 *   GET /api/v1/timeline?qid=... | ?message_id=...
 *
 * A timeline merges, in time order, the SMTP conversation that the
 * session stored with its message-log row(s) (schema/015: connect, HELO,
 * STARTTLS, AUTH, MAIL, each RCPT and its verdict, DATA, the rules that
 * fired, the spool) with what happened to the message afterwards, the
 * message_event rows of its queue id (delivery attempts with the remote
 * reply, quarantine release, delete, expiry and who did it).  A log row
 * from before schema/015 has no conversation: it shows as one event.
 * Everything is bounded: TL_MAX_LOGS rows, TL_MAX_EVENTS events.
 */
#include "http_internal.h"

#include <stdlib.h>
#include <string.h>

#include "../store/store_event.h"
#include "../store/store_timeline.h"

#define TL_MAX_LOGS 50      /* message-log rows merged into one timeline */
#define TL_MAX_QIDS 10      /* queue ids of one Message-ID */
#define TL_MAX_EVENTS 5000  /* events in one answer */

struct tl {
	json_t *events;         /* unsorted until the end */
	const char *qids[TL_MAX_QIDS];
	size_t nqids;
	char *qid_store[TL_MAX_QIDS];
	char *message_id;
	size_t nlogs;
};

static void tl_add_qid(struct tl *t, const char *qid)
{
	size_t i;

	if (qid == NULL || qid[0] == '\0')
		return;
	for (i = 0; i < t->nqids; i++)
		if (strcmp(t->qids[i], qid) == 0)
			return;
	if (t->nqids == TL_MAX_QIDS)
		return;
	t->qid_store[t->nqids] = xstrdup(qid);
	t->qids[t->nqids] = t->qid_store[t->nqids];
	t->nqids++;
}

static void tl_push(struct tl *t, json_t *ev)
{
	if (json_array_size(t->events) >= TL_MAX_EVENTS) {
		json_decref(ev);
		return;
	}
	json_array_append_new(t->events, ev);
}

static json_t *str_or_null(const char *s)
{
	return s != NULL ? json_string(s) : json_null();
}

/* A row without a stored conversation (written before schema/015). */
static json_t *row_event(const struct store_timeline_log *r)
{
	return json_pack("{s:I, s:s, s:s, s:{s:o, s:o, s:o, s:o, s:o}}",
			 "ts", (json_int_t)r->ts, "stage", "log",
			 "event", r->result != NULL ? r->result : "unknown", "detail",
			 "code", str_or_null(r->code), "reason", str_or_null(r->reason),
			 "check", str_or_null(r->check_name), "sender", str_or_null(r->sender),
			 "client_addr", str_or_null(r->client_addr));
}

static int on_log(const struct store_timeline_log *r, void *arg)
{
	struct tl *t = arg;
	json_t *conv = r->timeline != NULL ? json_loads(r->timeline, 0, NULL) : NULL;
	size_t i;
	json_t *ev;

	t->nlogs++;
	tl_add_qid(t, r->qid);
	if (t->message_id == NULL && r->message_id != NULL)
		t->message_id = xstrdup(r->message_id);
	if (!json_is_array(conv)) {
		json_decref(conv);
		tl_push(t, row_event(r));
		return 0;
	}
	json_array_foreach(conv, i, ev) {
		if (json_is_object(ev) && json_is_integer(json_object_get(ev, "ts")))
			tl_push(t, json_incref(ev));
	}
	json_decref(conv);
	return 0;
}

/* "delivery.attempt" -> stage "delivery", event "attempt". */
static int on_event(const struct store_event_row *e, void *arg)
{
	struct tl *t = arg;
	const char *dot = e->event != NULL ? strchr(e->event, '.') : NULL;
	json_t *detail = e->detail != NULL ? json_loads(e->detail, 0, NULL) : NULL;
	json_t *ev;
	char stage[64];

	if (!json_is_object(detail)) {
		json_decref(detail);
		detail = json_object();
	}
	/* A release queues a copy under a queue id of its own: follow it, so
	 * that its delivery attempts are part of this message's timeline. */
	if (e->event != NULL && strcmp(e->event, "quarantine.release") == 0)
		tl_add_qid(t, json_string_value(json_object_get(detail, "queue_qid")));
	if (dot != NULL && (size_t)(dot - e->event) < sizeof(stage)) {
		memcpy(stage, e->event, (size_t)(dot - e->event));
		stage[dot - e->event] = '\0';
	} else {
		strlcpy_s(stage, "event", sizeof(stage));
	}
	ev = json_pack("{s:I, s:s, s:s, s:o}", "ts", (json_int_t)e->ts, "stage", stage,
		       "event", dot != NULL ? dot + 1 : (e->event ? e->event : ""),
		       "detail", detail);
	if (e->rcpt != NULL)
		json_object_set_new(ev, "recipient", json_string(e->rcpt));
	if (e->actor != NULL)
		json_object_set_new(ev, "actor", json_string(e->actor));
	tl_push(t, ev);
	return 0;
}

static int64_t ev_ts(json_t *ev)
{
	return (int64_t)json_integer_value(json_object_get(ev, "ts"));
}

/* Stable by time: the conversation keeps its order, events follow at equal times. */
static void sort_events(json_t *events)
{
	size_t n = json_array_size(events);
	json_t **v = xcalloc(n + 1, sizeof(*v));
	size_t i, j;

	for (i = 0; i < n; i++)
		v[i] = json_incref(json_array_get(events, i));
	for (i = 1; i < n; i++) {
		json_t *x = v[i];

		for (j = i; j > 0 && ev_ts(v[j - 1]) > ev_ts(x); j--)
			v[j] = v[j - 1];
		v[j] = x;
	}
	json_array_clear(events);
	for (i = 0; i < n; i++)
		json_array_append_new(events, v[i]);
	free(v);
}

static void tl_free(struct tl *t)
{
	size_t i;

	json_decref(t->events);
	for (i = 0; i < t->nqids; i++)
		free(t->qid_store[i]);
	free(t->message_id);
}

/* Collect the events of every queue id found, then answer. */
static enum MHD_Result tl_reply(struct http_req *r, struct tl *t)
{
	json_t *qids;
	json_t *body;
	size_t i;

	for (i = 0; i < t->nqids; i++) {
		size_t before = json_array_size(t->events);

		if (store_event_list(r->st, t->qids[i], on_event, t) < 0) {
			tl_free(t);
			return http_internal(r, "timeline events");
		}
		if (json_array_size(t->events) > before)
			t->nlogs++; /* something is known about it */
	}
	if (t->nlogs == 0) {
		tl_free(t);
		return http_error(r, MHD_HTTP_NOT_FOUND, "not_found", NULL,
				  "nothing is known about this message");
	}
	sort_events(t->events);
	qids = json_array();
	for (i = 0; i < t->nqids; i++)
		json_array_append_new(qids, json_string(t->qids[i]));
	body = json_pack("{s:o, s:o, s:o, s:O}", "qid",
			 t->nqids > 0 ? json_string(t->qids[0]) : json_null(), "qids", qids,
			 "message_id", str_or_null(t->message_id), "events", t->events);
	tl_free(t);
	return http_reply(r, MHD_HTTP_OK, body);
}

enum MHD_Result http_timeline_message(struct http_req *r)
{
	static const char *const args[] = { NULL };
	struct tl t;
	int64_t id;

	if (http_args_allow(r, args) < 0 || http_param_id(r, 0, &id) < 0)
		return http_fail_reply(r);
	memset(&t, 0, sizeof(t));
	t.events = json_array();
	if (store_timeline_logs(r->st, STORE_TL_ID, id, NULL, 1, on_log, &t) < 0) {
		tl_free(&t);
		return http_internal(r, "timeline");
	}
	if (t.nlogs == 0) {
		tl_free(&t);
		return http_error(r, MHD_HTTP_NOT_FOUND, "not_found", NULL, "no such entry");
	}
	if (t.nqids > 0) {
		/* The other rows of the same message (a client gone before the 250). */
		struct tl all;
		char qid[128];

		strlcpy_s(qid, t.qids[0], sizeof(qid));
		tl_free(&t);
		memset(&all, 0, sizeof(all));
		all.events = json_array();
		if (store_timeline_logs(r->st, STORE_TL_QID, 0, qid, TL_MAX_LOGS, on_log,
					&all) < 0) {
			tl_free(&all);
			return http_internal(r, "timeline");
		}
		return tl_reply(r, &all);
	}
	return tl_reply(r, &t);
}

enum MHD_Result http_timeline_find(struct http_req *r)
{
	static const char *const args[] = { "qid", "message_id", NULL };
	const char *qid = NULL;
	const char *mid = NULL;
	struct tl t;
	int rc;

	if (http_args_allow(r, args) < 0 || http_arg_str(r, "qid", 64, &qid) < 0 ||
	    http_arg_str(r, "message_id", 998, &mid) < 0)
		return http_fail_reply(r);
	if ((qid == NULL) == (mid == NULL))
		return http_error(r, MHD_HTTP_UNPROCESSABLE_CONTENT, "invalid_parameter",
				  qid == NULL ? "qid" : "message_id",
				  "give exactly one of qid and message_id");
	memset(&t, 0, sizeof(t));
	t.events = json_array();
	if (qid != NULL) {
		tl_add_qid(&t, qid);
		rc = store_timeline_logs(r->st, STORE_TL_QID, 0, qid, TL_MAX_LOGS, on_log, &t);
	} else {
		/* Stored without the angle brackets; accept them in the query. */
		char buf[1000];
		size_t len = strlen(mid);

		if (len >= 2 && mid[0] == '<' && mid[len - 1] == '>') {
			memcpy(buf, mid + 1, len - 2);
			buf[len - 2] = '\0';
		} else {
			strlcpy_s(buf, mid, sizeof(buf));
		}
		rc = store_timeline_logs(r->st, STORE_TL_MESSAGE_ID, 0, buf, TL_MAX_LOGS, on_log,
					 &t);
		if (rc == 0 && t.nqids > 0) {
			/* Each queue id's rows, not only those that carry the Message-ID. */
			struct tl all;
			char qids[TL_MAX_QIDS][128];
			size_t i, n = t.nqids;

			for (i = 0; i < n; i++)
				strlcpy_s(qids[i], t.qids[i], sizeof(qids[i]));
			tl_free(&t);
			memset(&all, 0, sizeof(all));
			all.events = json_array();
			for (i = 0; i < n && rc == 0; i++) {
				tl_add_qid(&all, qids[i]);
				rc = store_timeline_logs(r->st, STORE_TL_QID, 0, qids[i],
							 TL_MAX_LOGS, on_log, &all);
			}
			t = all;
		}
	}
	if (rc < 0) {
		tl_free(&t);
		return http_internal(r, "timeline");
	}
	return tl_reply(r, &t);
}
