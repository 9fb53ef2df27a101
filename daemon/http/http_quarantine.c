/*
 * http_quarantine: the quarantine API (docs/quarantine.md) — list, count,
 * one item with a preview, the raw message, its HTML part sanitised, and
 * release / delete by ids or by filter.
 *
 * The routes take administrators and end users alike: the caller's scope
 * is the store filter's owner_user_id (0 for an administrator), set here
 * in one place (scope()) and applied by every store query, so an item
 * outside it is simply not found (404, never 403).  Changes go through
 * quarantine_admin_apply(), the function the CLI and signed links use.
 */
#include "http_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../conf/conf.h"
#include "../mime/mime.h"
#include "../cluster/cluster_pg.h"
#include "../quarantine/quarantine_admin.h"
#include "../quarantine/quarantine_html.h"
#include "../spool/spool_read.h"
#include "../store/store_quarantine.h"

#define PREVIEW_READ_MAX (16 * 1024 * 1024) /* bytes of a message the preview parses */
#define PREVIEW_TEXT_MAX (256 * 1024)       /* text and html_text in a preview */
#define PREVIEW_HEADERS_MAX 200
#define PREVIEW_ATTACHMENTS_MAX 100
#define HTML_OUT_MAX (4 * 1024 * 1024)      /* the sanitised HTML */

static const char *const filter_args[] = { "recipient", "sender", "subject", "reason", "kind",
					   "since", "until", "q", NULL };

/* The caller's scope: everything for an administrator, else their own items. */
static int64_t scope(const struct http_req *r)
{
	return r->auth.admin ? 0 : r->auth.user_id;
}

static json_t *rfc3339(int64_t ms)
{
	char buf[40];
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	if (ms <= 0 || gmtime_r(&t, &tm) == NULL)
		return json_null();
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
	return json_string(buf);
}

static json_t *item_json(const struct store_quarantine_row *q)
{
	return json_pack("{s:I, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:o, s:o}",
			 "id", (json_int_t)q->id, "qid", q->qid, "recipient", q->rcpt,
			 "kind", q->kind, "reason", q->reason, "sender", q->sender,
			 "subject", q->subject, "message_id", q->message_id,
			 "client_address", q->client_addr, "size", (json_int_t)q->size,
			 "created_at", rfc3339(q->created_at),
			 "expires_at", rfc3339(q->expires_at));
}

static const char *const kinds[] = { "spam", "policy", "virus", "attachment", NULL };

/* The list filters from the query string (shared by list and count). */
static int query_filter(struct http_req *r, struct store_quarantine_filter *f)
{
	int k = -1;

	memset(f, 0, sizeof(*f));
	f->owner_user_id = scope(r);
	if (http_arg_str(r, "recipient", 320, &f->rcpt) < 0 ||
	    http_arg_str(r, "sender", 321, &f->sender) < 0 ||
	    http_arg_str(r, "subject", 256, &f->subject) < 0 ||
	    http_arg_str(r, "reason", 200, &f->reason) < 0 ||
	    http_arg_str(r, "q", 256, &f->q) < 0 ||
	    http_arg_pick(r, "kind", kinds, &k) < 0 ||
	    http_arg_time(r, "since", &f->since) < 0 ||
	    http_arg_time(r, "until", &f->until) < 0)
		return -1;
	f->kind = k >= 0 ? kinds[k] : NULL;
	return 0;
}

struct q_page {
	json_t *items;
	int64_t n, limit;
	enum store_quarantine_sort sort;
	char next[1200];
};

static int add_row(const struct store_quarantine_row *q, void *arg)
{
	struct q_page *p = arg;

	p->n++;
	if (p->n > p->limit)
		return 1;
	json_array_append_new(p->items, item_json(q));
	store_quarantine_cursor(q, p->sort, p->next, sizeof(p->next));
	return 0;
}

static int allowed(const char *const *extra, const char *const *base, struct http_req *r)
{
	const char *all[HTTP_MAX_ARGS + 1];
	size_t n = 0, i;

	for (i = 0; base[i] != NULL && n < HTTP_MAX_ARGS; i++)
		all[n++] = base[i];
	for (i = 0; extra != NULL && extra[i] != NULL && n < HTTP_MAX_ARGS; i++)
		all[n++] = extra[i];
	all[n] = NULL;
	return http_args_allow(r, all);
}

enum MHD_Result http_quarantine_list(struct http_req *r)
{
	static const char *const extra[] = { "limit", "cursor", "sort", "order", NULL };
	static const char *const sorts[] = { "created_at", "expires_at", "size", "sender",
					     "recipient", "subject", NULL };
	static const char *const orders[] = { "asc", "desc", NULL };
	struct store_quarantine_filter f;
	struct q_page p;
	int64_t limit;
	int si = -1, oi = -1;

	memset(&p, 0, sizeof(p));
	if (allowed(extra, filter_args, r) < 0 || query_filter(r, &f) < 0 ||
	    http_arg_i64(r, "limit", 1, 500, HTTP_DEFAULT_PAGE, &limit) < 0 ||
	    http_arg_pick(r, "sort", sorts, &si) < 0 || http_arg_pick(r, "order", orders, &oi) < 0)
		return http_fail_reply(r);
	f.sort = si >= 0 ? (enum store_quarantine_sort)store_quarantine_sort_parse(sorts[si])
			 : STORE_QS_CREATED;
	f.asc = oi == 0;
	f.cursor = http_arg(r, "cursor");
	if (f.cursor != NULL && !store_quarantine_cursor_valid(f.cursor, f.sort))
		return http_error(r, MHD_HTTP_UNPROCESSABLE_CONTENT, "invalid_parameter", "cursor",
				  "malformed cursor (take it from next_cursor, same sort)");
	f.limit = limit + 1;
	p.items = json_array();
	p.limit = limit;
	p.sort = f.sort;
	if (store_quarantine_list(r->st, &f, add_row, &p) < 0) {
		json_decref(p.items);
		return http_internal(r, "quarantine list");
	}
	return http_reply(r, MHD_HTTP_OK, http_list(p.items, p.n > limit ? p.next : NULL));
}

enum MHD_Result http_quarantine_count(struct http_req *r)
{
	struct store_quarantine_filter f;
	int64_t n = 0;

	if (allowed(NULL, filter_args, r) < 0 || query_filter(r, &f) < 0)
		return http_fail_reply(r);
	if (store_quarantine_count(r->st, &f, &n) < 0)
		return http_internal(r, "quarantine count");
	return http_reply(r, MHD_HTTP_OK, json_pack("{s:I}", "count", (json_int_t)n));
}

/* ---- one item ------------------------------------------------------------ */

struct one {
	json_t *item;
	char qid[40];
	char rcpt[400];
	int64_t size;
};

static int take_one(const struct store_quarantine_row *q, void *arg)
{
	struct one *o = arg;

	o->item = item_json(q);
	strlcpy_s(o->qid, q->qid, sizeof(o->qid));
	strlcpy_s(o->rcpt, q->rcpt, sizeof(o->rcpt));
	o->size = q->size;
	return 1;
}

/* The item {id} within the caller's scope; -1 with r->fail (404) when none. */
static int find(struct http_req *r, struct one *o)
{
	struct store_quarantine_filter f;
	int64_t id;

	memset(o, 0, sizeof(*o));
	if (http_param_id(r, 0, &id) < 0)
		return -1;
	memset(&f, 0, sizeof(f));
	f.owner_user_id = scope(r);
	f.ids = &id;
	f.nids = 1;
	if (store_quarantine_list(r->st, &f, take_one, o) < 0) {
		r->fail.status = 500;
		return -1;
	}
	if (o->item == NULL)
		return http_not_found(r, "quarantine item");
	return 0;
}

static enum MHD_Result find_fail(struct http_req *r)
{
	if (r->fail.status == 500)
		return http_internal(r, "quarantine item");
	return http_fail_reply(r);
}

static int open_message(struct http_req *r, const char *qid, struct stat *sb)
{
	char path[1400];
	int fd, n;

	if (!spool_qid_valid(qid, strlen(qid)))
		return -1;
	n = snprintf(path, sizeof(path), "%s/spool/quarantine/%s", r->h->conf->data_dir, qid);
	if (n < 0 || (size_t)n >= sizeof(path))
		return -1;
	(void)cluster_pg_fetch_quarantine(r->h->conf->data_dir, qid); /* quarantined elsewhere */
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0 && fstat(fd, sb) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* The first max bytes of the message in a NUL-terminated buffer. */
static char *read_message(struct http_req *r, const char *qid, size_t max, size_t *len)
{
	struct stat sb;
	int fd = open_message(r, qid, &sb);
	size_t want, got = 0;
	char *buf;

	*len = 0;
	if (fd < 0)
		return NULL;
	want = (size_t)sb.st_size < max ? (size_t)sb.st_size : max;
	buf = xmalloc(want + 1);
	while (got < want) {
		ssize_t n = read(fd, buf + got, want - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	buf[got] = '\0';
	*len = got;
	return buf;
}

static json_t *cut_string(const char *s, size_t n, size_t max)
{
	if (s == NULL)
		return json_string("");
	if (n > max) {
		n = max;
		while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
			n--;
	}
	return json_stringn(s, n);
}

struct others {
	json_t *arr;
	int64_t self;
};

static int add_other(const struct store_quarantine_row *q, void *arg)
{
	struct others *o = arg;

	if (q->id != o->self)
		json_array_append_new(o->arr, json_pack("{s:I, s:s, s:s}", "id", (json_int_t)q->id,
							"recipient", q->rcpt, "kind", q->kind));
	return 0;
}

enum MHD_Result http_quarantine_show(struct http_req *r)
{
	struct store_quarantine_filter f;
	struct mime_limits lim;
	struct mime_view *v = NULL;
	struct others others;
	struct one o;
	json_t *headers, *atts;
	char *msg, err[200];
	size_t len, i;

	if (http_args_allow(r, (const char *const[]){ NULL }) < 0)
		return http_fail_reply(r);
	if (find(r, &o) < 0)
		return find_fail(r);
	msg = read_message(r, o.qid, PREVIEW_READ_MAX, &len);
	if (msg == NULL) {
		json_decref(o.item);
		return http_error(r, MHD_HTTP_NOT_FOUND, "not_found", "id",
				  "the message file of this item is gone");
	}
	mime_limits_default(&lim);
	lim.keep_parts = 1;
	if (mime_parse(msg, len, &lim, &v, err, sizeof(err)) < 0) {
		free(msg);
		json_decref(o.item);
		return http_internal(r, "quarantine preview");
	}
	headers = json_array();
	for (i = 0; i < v->nheaders && i < PREVIEW_HEADERS_MAX; i++)
		json_array_append_new(headers, json_pack("{s:s, s:o}", "name", v->headers[i].name,
							 "value", cut_string(v->headers[i].value,
									     strlen(v->headers[i].value),
									     8192)));
	atts = json_array();
	for (i = 0; i < v->nattachments && i < PREVIEW_ATTACHMENTS_MAX; i++)
		json_array_append_new(atts, json_pack("{s:s, s:s, s:I}", "name",
						      v->attachments[i].name, "type",
						      v->attachments[i].type, "size",
						      (json_int_t)v->attachments[i].size));
	json_object_set_new(o.item, "headers", headers);
	json_object_set_new(o.item, "text", cut_string(v->plain, v->plain_len, PREVIEW_TEXT_MAX));
	json_object_set_new(o.item, "html_text", cut_string(v->html_text, v->html_text_len,
							     PREVIEW_TEXT_MAX));
	json_object_set_new(o.item, "has_html", json_boolean(v->html != NULL));
	json_object_set_new(o.item, "attachments", atts);
	json_object_set_new(o.item, "truncated",
			    json_boolean((v->flags & MIME_F_LIMIT) != 0 || len < (size_t)o.size));
	mime_view_free(v);
	free(msg);
	/* The other recipients of the message the caller may see. */
	memset(&f, 0, sizeof(f));
	f.owner_user_id = scope(r);
	f.qid = o.qid;
	f.sort = STORE_QS_RECIPIENT;
	f.asc = 1;
	f.limit = 1000;
	others.arr = json_array();
	others.self = json_integer_value(json_object_get(o.item, "id"));
	if (store_quarantine_list(r->st, &f, add_other, &others) < 0) {
		json_decref(others.arr);
		json_decref(o.item);
		return http_internal(r, "quarantine recipients");
	}
	json_object_set_new(o.item, "recipients", others.arr);
	return http_reply(r, MHD_HTTP_OK, o.item);
}

enum MHD_Result http_quarantine_raw(struct http_req *r)
{
	char disp[120];
	const char *hdrs[3];
	struct stat sb;
	struct one o;
	int fd;

	if (http_args_allow(r, (const char *const[]){ NULL }) < 0)
		return http_fail_reply(r);
	if (find(r, &o) < 0)
		return find_fail(r);
	json_decref(o.item);
	fd = open_message(r, o.qid, &sb);
	if (fd < 0)
		return http_error(r, MHD_HTTP_NOT_FOUND, "not_found", "id",
				  "the message file of this item is gone");
	snprintf(disp, sizeof(disp), "attachment; filename=\"%s.eml\"", o.qid);
	hdrs[0] = "Content-Disposition";
	hdrs[1] = disp;
	hdrs[2] = NULL;
	return http_reply_fd(r, MHD_HTTP_OK, "message/rfc822", fd, (uint64_t)sb.st_size, hdrs);
}

enum MHD_Result http_quarantine_html(struct http_req *r)
{
	/* The page may style itself and show inline images, nothing else: no
	 * script (sandbox), no request to anywhere (default-src 'none'). */
	static const char *const hdrs[] = {
		"Content-Security-Policy",
		"sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:",
		NULL,
	};
	static const char head[] = "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
				   "</head><body>\n";
	static const char tail[] = "\n</body></html>\n";
	struct mime_limits lim;
	struct mime_view *v = NULL;
	struct dynbuf out;
	struct one o;
	char *msg, err[200];
	size_t len;

	if (http_args_allow(r, (const char *const[]){ NULL }) < 0)
		return http_fail_reply(r);
	if (find(r, &o) < 0)
		return find_fail(r);
	json_decref(o.item);
	msg = read_message(r, o.qid, PREVIEW_READ_MAX, &len);
	if (msg == NULL)
		return http_error(r, MHD_HTTP_NOT_FOUND, "not_found", "id",
				  "the message file of this item is gone");
	mime_limits_default(&lim);
	lim.keep_parts = 1;
	if (mime_parse(msg, len, &lim, &v, err, sizeof(err)) < 0) {
		free(msg);
		return http_internal(r, "quarantine html");
	}
	if (v->html == NULL) {
		mime_view_free(v);
		free(msg);
		return http_error(r, MHD_HTTP_NOT_FOUND, "not_found", "id",
				  "this message has no HTML part");
	}
	dynbuf_init(&out, HTML_OUT_MAX);
	dynbuf_add(&out, head, sizeof(head) - 1);
	/* A part longer than the bound is shown cut, never refused. */
	(void)quarantine_html_sanitize(v->html, v->html_len, &out);
	dynbuf_add(&out, tail, sizeof(tail) - 1);
	mime_view_free(v);
	free(msg);
	r->frame_options = "SAMEORIGIN";
	if (out.data == NULL)
		return http_internal(r, "quarantine html");
	return http_reply_bytes(r, MHD_HTTP_OK, "text/html; charset=utf-8", out.data, out.len,
				hdrs);
}

/* ---- release and delete ----------------------------------------------------- */

static enum MHD_Result bad(struct http_req *r, const char *field, const char *msg)
{
	return http_error(r, MHD_HTTP_UNPROCESSABLE_CONTENT, "invalid_value", field, "%s", msg);
}

static int jstr(json_t *o, const char *k, size_t max, const char **out, const char **field)
{
	json_t *v = json_object_get(o, k);

	*out = NULL;
	if (v == NULL)
		return 0;
	if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > max ||
	    strlen(json_string_value(v)) != json_string_length(v)) {
		*field = k;
		return -1;
	}
	*out = json_string_value(v);
	return 0;
}

static enum MHD_Result change(struct http_req *r, enum quarantine_op op)
{
	static const char *const fkeys[] = { "recipient", "sender", "subject", "reason", "kind",
					     "since", "until", "q" };
	struct store_quarantine_filter f;
	struct quarantine_actor actor;
	struct quarantine_result res;
	enum quarantine_sender_list sl = QUARANTINE_LIST_NONE;
	int64_t ids[STORE_QUARANTINE_IDS_MAX];
	json_t *body, *v, *filt;
	const char *key, *field = NULL, *kind = NULL, *since = NULL, *until = NULL;
	char err[300], fname[40];
	int status = 0, all = 0, rc;
	size_t i;

	if (http_json_parse(r->body.data ? r->body.data : "", r->body.len, &body,
			    &r->fail) < 0)
		return http_fail_reply(r);
	memset(&f, 0, sizeof(f));
	f.owner_user_id = scope(r);
	json_object_foreach(body, key, v) {
		if (strcmp(key, "ids") != 0 && strcmp(key, "filter") != 0 &&
		    strcmp(key, "all") != 0 && strcmp(key, "sender_list") != 0) {
			snprintf(fname, sizeof(fname), "%.30s", key);
			json_decref(body);
			return http_error(r, MHD_HTTP_UNPROCESSABLE_CONTENT, "unknown_field", fname,
					  "unknown field");
		}
	}
	v = json_object_get(body, "sender_list");
	if (v != NULL) {
		const char *want = op == QUARANTINE_RELEASE ? "allow" : "block";

		if (!json_is_string(v) || strcmp(json_string_value(v), want) != 0) {
			json_decref(body);
			return bad(r, "sender_list", op == QUARANTINE_RELEASE ?
				   "release takes \"allow\"" : "delete takes \"block\"");
		}
		sl = op == QUARANTINE_RELEASE ? QUARANTINE_LIST_ALLOW : QUARANTINE_LIST_BLOCK;
	}
	v = json_object_get(body, "all");
	if (v != NULL && !json_is_boolean(v)) {
		json_decref(body);
		return bad(r, "all", "must be a boolean");
	}
	all = v != NULL && json_is_true(v);
	v = json_object_get(body, "ids");
	filt = json_object_get(body, "filter");
	if ((v == NULL) == (filt == NULL)) {
		json_decref(body);
		return bad(r, "ids", "give either ids or filter");
	}
	if (v != NULL) {
		if (!json_is_array(v) || json_array_size(v) == 0 ||
		    json_array_size(v) > STORE_QUARANTINE_IDS_MAX) {
			json_decref(body);
			return bad(r, "ids", "an array of 1 to 1000 item ids");
		}
		for (i = 0; i < json_array_size(v); i++) {
			json_t *e = json_array_get(v, i);

			if (!json_is_integer(e) || json_integer_value(e) < 1) {
				json_decref(body);
				return bad(r, "ids", "item ids are positive integers");
			}
			ids[i] = json_integer_value(e);
		}
		f.ids = ids;
		f.nids = json_array_size(v);
	} else {
		if (!json_is_object(filt)) {
			json_decref(body);
			return bad(r, "filter", "must be an object");
		}
		json_object_foreach(filt, key, v) {
			for (i = 0; i < ARRAY_LEN(fkeys); i++)
				if (strcmp(key, fkeys[i]) == 0)
					break;
			if (i == ARRAY_LEN(fkeys)) {
				snprintf(fname, sizeof(fname), "filter.%.20s", key);
				json_decref(body);
				return http_error(r, MHD_HTTP_UNPROCESSABLE_CONTENT, "unknown_field",
						  fname, "unknown filter field");
			}
		}
		if (jstr(filt, "recipient", 320, &f.rcpt, &field) < 0 ||
		    jstr(filt, "sender", 321, &f.sender, &field) < 0 ||
		    jstr(filt, "subject", 256, &f.subject, &field) < 0 ||
		    jstr(filt, "reason", 200, &f.reason, &field) < 0 ||
		    jstr(filt, "q", 256, &f.q, &field) < 0 ||
		    jstr(filt, "kind", 20, &kind, &field) < 0 ||
		    jstr(filt, "since", 64, &since, &field) < 0 ||
		    jstr(filt, "until", 64, &until, &field) < 0) {
			snprintf(fname, sizeof(fname), "filter.%s", field);
			json_decref(body);
			return bad(r, fname, "a non-empty string");
		}
		if (kind != NULL) {
			for (i = 0; kinds[i] != NULL && strcmp(kinds[i], kind) != 0; i++)
				;
			if (kinds[i] == NULL) {
				json_decref(body);
				return bad(r, "filter.kind", "spam, policy, virus or attachment");
			}
			f.kind = kinds[i];
		}
		if ((since != NULL && http_parse_time(since, strlen(since), &f.since) < 0) ||
		    (until != NULL && http_parse_time(until, strlen(until), &f.until) < 0)) {
			json_decref(body);
			return bad(r, since != NULL && f.since == 0 ? "filter.since" : "filter.until",
				   "unix milliseconds or an RFC 3339 time");
		}
		if (json_object_size(filt) == 0 && !all) {
			json_decref(body);
			return bad(r, "all", "an empty filter matches everything: send \"all\": true");
		}
	}
	memset(&actor, 0, sizeof(actor));
	actor.user_id = r->auth.user_id;
	actor.admin = r->auth.admin;
	actor.name = r->auth.user[0] != '\0' ? r->auth.user : "-";
	actor.via = r->auth.via == HTTP_VIA_TOKEN ? "token" : "session";
	actor.client_addr = r->client_addr;
	actor.sender_list_max = r->h->conf->user_sender_list_max;
	memset(&res, 0, sizeof(res));
	rc = quarantine_admin_apply(r->st, r->h->conf->data_dir, op, &f, sl, &actor, &res,
				    &status, err, sizeof(err));
	if (rc < 0) {
		json_decref(body);
		switch (status) {
		case 403:
			return http_error(r, MHD_HTTP_FORBIDDEN, "forbidden", "kind", "%s", err);
		case 404:
			return http_error(r, MHD_HTTP_NOT_FOUND, "not_found", "ids", "%s", err);
		case 422:
			return bad(r, "ids", err);
		case 503:
			r->retry_after = 1;
			return http_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "busy", NULL, "%s", err);
		default:
			return http_internal(r, op == QUARANTINE_RELEASE ? "quarantine release"
					     : "quarantine delete");
		}
	}
	json_decref(body);
	return http_reply(r, MHD_HTTP_OK, json_pack("{s:i, s:i, s:i}", "recipients",
						    res.recipients, "messages", res.messages,
						    "sender_listed", res.sender_listed));
}

enum MHD_Result http_quarantine_release(struct http_req *r)
{
	return change(r, QUARANTINE_RELEASE);
}

enum MHD_Result http_quarantine_delete(struct http_req *r)
{
	return change(r, QUARANTINE_DELETE);
}

/*
 * Learn one item's message as spam or ham (or forget it).  An
 * administrator teaches the global model; a user, whose own item it is,
 * teaches the global model and their own (docs/score.md, "Learning").
 */
enum MHD_Result http_quarantine_learn(struct http_req *r)
{
	static const char *const args[] = { NULL };
	char path[1400];
	const char *name;
	struct one o;
	char cls;
	int n;

	if (http_args_allow(r, args) < 0)
		return http_fail_reply(r);
	if (find(r, &o) < 0)
		return find_fail(r);
	json_decref(o.item);
	if (http_learn_class(r, &cls, &name) < 0)
		return http_fail_reply(r);
	n = snprintf(path, sizeof(path), "%s/spool/quarantine/%s", r->h->conf->data_dir, o.qid);
	if (n < 0 || (size_t)n >= sizeof(path) || !spool_qid_valid(o.qid, strlen(o.qid)))
		return http_error(r, MHD_HTTP_CONFLICT, "gone", "id",
				  "the message's content is no longer kept");
	(void)cluster_pg_fetch_quarantine(r->h->conf->data_dir, o.qid);
	return http_learn_file(r, path, cls, name, r->auth.admin ? 0 : r->auth.user_id,
			       "quarantine item");
}
