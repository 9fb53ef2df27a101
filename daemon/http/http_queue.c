/*
 * http_queue: the delivery queue (/api/v1/queue), administrators only —
 * filter recipients, show one message with its headers from the spool
 * file, and release / retry / hold / delete every recipient matching a
 * filter (one message is the filter {"qid": ...}).  The filters: qid,
 * sender, client, rcpt_domain, reason, state, received_before and
 * auth_user (the account that submitted the message, exact).
 *
 * Thin: parse, call, format.  Lists go to store_queue.c, headers come
 * from spool_read, and the four actions (with their audit row) are
 * queue_admin's, shared with `moatd queue`.  A bulk action needs a filter
 * or "all": true.  The HTTP thread never touches SMTP state.
 */
#include "http_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../conf/conf.h"
#include "../queue/queue_admin.h"
#include "../spool/spool_read.h"
#include "../store/store.h"

#define HEADERS_MAX (64 * 1024)

static json_t *str_or_null(const char *s)
{
	return s ? json_string(s) : json_null();
}

static json_t *row_json(const struct store_queue_row *q)
{
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:o, s:o, s:o, s:I, s:I, s:I, s:o, "
			 "s:o, s:i}",
			 "qid", q->qid, "rcpt", q->rcpt, "state", q->state, "sender", q->sender,
			 "client_addr", q->client_addr, "auth_user", str_or_null(q->auth_user),
			 "last_error", str_or_null(q->last_error), "reason",
			 str_or_null(q->reason), "route", str_or_null(q->route), "size",
			 (json_int_t)q->size, "received_at", (json_int_t)q->received_at,
			 "next_attempt", (json_int_t)q->next_attempt, "released_at",
			 http_time(q->released_at), "final_at", http_time(q->final_at),
			 "attempts", q->attempts);
}

struct q_list {
	json_t *items;
	int64_t skip, limit, n;
};

static int add_row(const struct store_queue_row *q, void *arg)
{
	struct q_list *l = arg;

	if (l->skip > 0) {
		l->skip--;
		return 0;
	}
	if (++l->n > l->limit)
		return 1;
	json_array_append_new(l->items, row_json(q));
	return 0;
}

/* The filters the list and the summary share, into f; -1 fills r->fail. */
static int queue_filter_args(struct http_req *r, struct store_queue_filter *f)
{
	static const char *const states[] = { "queued", "deferred", "held", "dead", "done",
					      NULL };
	int state;

	memset(f, 0, sizeof(*f));
	if (http_arg_str(r, "qid", 32, &f->qid) < 0 ||
	    http_arg_str(r, "sender", 320, &f->sender) < 0 ||
	    http_arg_str(r, "client", 64, &f->client_addr) < 0 ||
	    http_arg_str(r, "rcpt_domain", 253, &f->rcpt_domain) < 0 ||
	    http_arg_str(r, "reason", 200, &f->reason) < 0 ||
	    http_arg_str(r, "auth_user", 320, &f->auth_user) < 0 ||
	    http_arg_pick(r, "state", states, &state) < 0 ||
	    http_arg_time(r, "received_before", &f->received_before) < 0)
		return -1;
	/* An empty filter is refused, so "<>" is how to ask for the null sender. */
	if (f->sender != NULL && strcmp(f->sender, "<>") == 0)
		f->sender = "";
	f->state = state >= 0 ? states[state] : NULL;
	return 0;
}

enum MHD_Result http_queue_list(struct http_req *r)
{
	static const char *const args[] = { "limit", "offset", "cursor", "qid", "sender",
					    "client", "rcpt_domain", "reason", "state",
					    "received_before", "auth_user", NULL };
	struct store_queue_filter f;
	struct http_page p;
	struct q_list l;
	char next[32];

	memset(&l, 0, sizeof(l));
	if (http_args_allow(r, args) < 0 || http_page(r, &p) < 0 ||
	    queue_filter_args(r, &f) < 0)
		return http_fail_reply(r);
	if (p.cursor != NULL &&
	    http_parse_i64(p.cursor, strlen(p.cursor), 0, 100000000, &p.offset) < 0)
		return http_error(r, MHD_HTTP_UNPROCESSABLE_CONTENT, "invalid_parameter", "cursor",
				  "malformed cursor");
	f.limit = p.offset + p.limit + 1;
	l.items = json_array();
	l.skip = p.offset;
	l.limit = p.limit;
	if (store_queue_list(r->st, &f, add_row, &l) < 0) {
		json_decref(l.items);
		return http_internal(r, "queue list");
	}
	snprintf(next, sizeof(next), "%lld", (long long)(p.offset + p.limit));
	return http_reply(r, MHD_HTTP_OK, http_list(l.items, l.n > p.limit ? next : NULL));
}

static int add_group(const char *key, int64_t messages, int64_t rcpts, void *arg)
{
	json_array_append_new(arg, json_pack("{s:s, s:I, s:I}", "key", key, "messages",
					     (json_int_t)messages, "recipients",
					     (json_int_t)rcpts));
	return 0;
}

/*
 * GET /api/v1/queue/summary: the list's filters, grouped by state, sender,
 * client, recipient domain or reason (held reason, else the last error);
 * at most limit groups (default 100), largest first.
 */
enum MHD_Result http_queue_summary(struct http_req *r)
{
	static const char *const args[] = { "group", "limit", "qid", "sender", "client",
					    "rcpt_domain", "reason", "state",
					    "received_before", "auth_user", NULL };
	static const char *const groups[] = { "state", "sender", "client", "domain", "reason",
					      NULL };
	static const enum store_queue_group group_of[] = { STORE_QG_STATE, STORE_QG_SENDER,
							   STORE_QG_CLIENT, STORE_QG_DOMAIN,
							   STORE_QG_REASON };
	struct store_queue_filter f;
	int group;
	int64_t limit;
	json_t *items;

	if (http_args_allow(r, args) < 0 || http_arg_pick(r, "group", groups, &group) < 0 ||
	    http_arg_i64(r, "limit", 1, 1000, 100, &limit) < 0 || queue_filter_args(r, &f) < 0)
		return http_fail_reply(r);
	if (group < 0)
		return http_error(r, MHD_HTTP_UNPROCESSABLE_CONTENT, "invalid_parameter", "group",
				  "group is required: state, sender, client, domain or reason");
	items = json_array();
	if (store_queue_summary(r->st, &f, group_of[group], limit, add_group, items) < 0) {
		json_decref(items);
		return http_internal(r, "queue summary");
	}
	return http_reply(r, MHD_HTTP_OK, http_list(items, NULL));
}

/* Header fields of queue/<qid> (unfolded), at most HEADERS_MAX bytes read. */
static json_t *read_headers(const char *data_dir, const char *qid, int *present)
{
	json_t *out = json_array();
	char *buf = xmalloc(HEADERS_MAX + 1);
	struct dynbuf v;
	const char *name;
	size_t name_len;
	size_t len;
	size_t pos = 0;

	*present = spool_read_headers(data_dir, qid, buf, HEADERS_MAX, &len) == 0;
	dynbuf_init(&v, HEADERS_MAX);
	while (spool_header_next(buf, len, &pos, &name, &name_len, &v) == 1)
		json_array_append_new(out, json_pack("{s:s%, s:s%}", "name", name, name_len,
						     "value", v.data, v.len));
	dynbuf_free(&v);
	free(buf);
	return out;
}

enum MHD_Result http_queue_show(struct http_req *r)
{
	static const char *const args[] = { NULL };
	struct store_queue_filter f;
	struct q_list l;
	char qid[40];
	json_t *hdrs, *first;
	int present;

	if (http_args_allow(r, args) < 0)
		return http_fail_reply(r);
	if (r->nparams != 1 || !spool_qid_valid(r->params[0].p, r->params[0].len))
		return http_error(r, MHD_HTTP_NOT_FOUND, "not_found", NULL, "no such message");
	memcpy(qid, r->params[0].p, r->params[0].len);
	qid[r->params[0].len] = '\0';
	memset(&f, 0, sizeof(f));
	memset(&l, 0, sizeof(l));
	f.qid = qid;
	l.items = json_array();
	l.limit = 100000;
	if (store_queue_list(r->st, &f, add_row, &l) < 0) {
		json_decref(l.items);
		return http_internal(r, "queue show");
	}
	first = json_array_get(l.items, 0);
	if (first == NULL) {
		json_decref(l.items);
		return http_error(r, MHD_HTTP_NOT_FOUND, "not_found", NULL, "no such message");
	}
	hdrs = read_headers(r->h->conf->data_dir, qid, &present);
	return http_reply(r, MHD_HTTP_OK,
			  json_pack("{s:s, s:O, s:O, s:O, s:O, s:o, s:b, s:o}", "qid", qid,
				    "sender", json_object_get(first, "sender"), "client_addr",
				    json_object_get(first, "client_addr"), "size",
				    json_object_get(first, "size"), "received_at",
				    json_object_get(first, "received_at"), "recipients", l.items,
				    "spool_file", present, "headers", hdrs));
}

static const struct http_field action_fields[] = {
	{ "qid", HJ_STRING, 0, 32, 0, 0 },
	{ "sender", HJ_STRING, 0, 320, 0, 0 },
	{ "client", HJ_STRING, 0, 64, 0, 0 },
	{ "rcpt_domain", HJ_STRING, 0, 253, 0, 0 },
	{ "reason", HJ_STRING, 0, 200, 0, 0 },
	{ "state", HJ_STRING, 0, 16, 0, 0 },
	{ "received_before", HJ_INT, 0, 0, 1, INT64_MAX },
	{ "auth_user", HJ_STRING, 0, 320, 0, 0 },
	{ "all", HJ_BOOL, 0, 0, 0, 0 },
	{ "hold_reason", HJ_STRING, 0, 200, 0, 0 },
};

static enum MHD_Result queue_action(struct http_req *r, enum queue_admin_op op)
{
	static const char *const states[] = { "queued", "deferred", "held", "dead", "done",
					      NULL };
	struct store_queue_filter f;
	struct queue_admin_actor actor;
	struct queue_admin_result res;
	json_t *body, *v;
	const char *key, *hold_reason = "held by an administrator";
	char err[128];
	int nfilters = 0;
	enum MHD_Result ret;

	if (http_body(r, action_fields, ARRAY_LEN(action_fields), &body) < 0)
		return http_fail_reply(r);
	memset(&f, 0, sizeof(f));
	json_object_foreach(body, key, v) {
		if (strcmp(key, "all") == 0 || strcmp(key, "hold_reason") == 0)
			continue;
		if (json_is_string(v) && json_string_length(v) == 0 && strcmp(key, "sender") != 0) {
			json_decref(body);
			return http_error(r, MHD_HTTP_UNPROCESSABLE_CONTENT, "invalid_value", key,
					  "must not be empty");
		}
		nfilters++;
	}
	f.qid = json_string_value(json_object_get(body, "qid"));
	f.sender = json_string_value(json_object_get(body, "sender"));
	f.client_addr = json_string_value(json_object_get(body, "client"));
	f.rcpt_domain = json_string_value(json_object_get(body, "rcpt_domain"));
	f.reason = json_string_value(json_object_get(body, "reason"));
	f.state = json_string_value(json_object_get(body, "state"));
	f.received_before = json_integer_value(json_object_get(body, "received_before"));
	f.auth_user = json_string_value(json_object_get(body, "auth_user"));
	if (json_object_get(body, "hold_reason") != NULL)
		hold_reason = json_string_value(json_object_get(body, "hold_reason"));
	ret = MHD_YES;
	if (f.state != NULL && http_pick(f.state, strlen(f.state), states) < 0)
		ret = http_error(r, MHD_HTTP_UNPROCESSABLE_CONTENT, "invalid_value", "state",
				"unknown state");
	else if (f.qid != NULL && !spool_qid_valid(f.qid, strlen(f.qid)))
		ret = http_error(r, MHD_HTTP_UNPROCESSABLE_CONTENT, "invalid_value", "qid",
				"a queue id is hexadecimal");
	else if (nfilters == 0 && !json_is_true(json_object_get(body, "all")))
		ret = http_error(r, MHD_HTTP_UNPROCESSABLE_CONTENT, "missing_field", "all",
				"give a filter, or \"all\": true to act on every message");
	if (r->replied) {
		json_decref(body);
		return ret;
	}
	memset(&actor, 0, sizeof(actor));
	actor.user_id = r->auth.user_id;
	actor.name = r->auth.user[0] ? r->auth.user : "-";
	actor.via = r->auth.via == HTTP_VIA_TOKEN ? "token" :
		    r->auth.via == HTTP_VIA_SESSION ? "session" : "anonymous";
	actor.client_addr = r->client_addr;
	if (queue_admin_apply(r->st, r->h->conf->data_dir, op, &f, hold_reason, &actor, &res,
			      err, sizeof(err)) < 0) {
		json_decref(body);
		return http_internal(r, "queue action");
	}
	json_decref(body); /* f points into it */
	return http_reply(r, MHD_HTTP_OK,
			  json_pack("{s:i, s:i}", "recipients", res.recipients,
				    "messages_removed", res.messages_removed));
}

enum MHD_Result http_queue_release(struct http_req *r)
{
	return queue_action(r, QUEUE_ADMIN_RELEASE);
}

enum MHD_Result http_queue_retry(struct http_req *r)
{
	return queue_action(r, QUEUE_ADMIN_RETRY);
}

enum MHD_Result http_queue_hold(struct http_req *r)
{
	return queue_action(r, QUEUE_ADMIN_HOLD);
}

enum MHD_Result http_queue_delete(struct http_req *r)
{
	return queue_action(r, QUEUE_ADMIN_DELETE);
}
