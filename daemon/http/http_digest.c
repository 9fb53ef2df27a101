/*
 * http_digest: quarantine digests in the API — a user's own digest
 * interval (/api/v1/account/digest) and, for administrators, the template
 * (/api/v1/quarantine/digest/template), a preview of any user's digest and
 * sending it now (/api/v1/quarantine/digest/preview, .../send).
 *
 * The rendering and queueing are daemon/digest's (the periodic job uses
 * the same functions); this file checks input and audits.  A template is
 * checked before it is stored: an unknown placeholder is a 422 naming the
 * part (subject, text or html).  A preview's links are inert; send-now
 * queues real ones, through the queue like every message moatd sends.
 */
#include "http_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../digest/digest.h"
#include "../log/log.h"
#include "../store/store.h"
#include "../store/store_digest.h"

static const char *const intervals[] = { "none", "hourly", "daily", "weekly", NULL };

static void ctx_of(struct http_req *r, struct digest_ctx *c, char *base, size_t basesz)
{
	digest_url_base(r->h->conf, r->h->address, r->h->tls, base, basesz);
	c->conf = r->h->conf;
	c->url_base = base;
	c->now_ms = time_now_ms();
	c->claims = NULL; /* preview and send-now are asked of this node */
}

enum MHD_Result http_account_digest_show(struct http_req *r)
{
	static const char *const args[] = { NULL };
	struct store_digest_user u;
	int found;

	if (http_args_allow(r, args) < 0)
		return http_fail_reply(r);
	if (store_digest_user_get(r->st, r->auth.user_id, NULL, &u, &found) < 0)
		return http_internal(r, "account digest");
	if (!found)
		return http_error(r, MHD_HTTP_NOT_FOUND, "not_found", NULL, "no such user");
	return http_reply(r, MHD_HTTP_OK, json_pack("{s:s}", "interval", u.interval));
}

static const struct http_field interval_fields[] = {
	{ "interval", HJ_STRING, 1, 16, 0, 0 },
};

enum MHD_Result http_account_digest_put(struct http_req *r)
{
	struct store_digest_user u;
	json_t *body;
	const char *iv;
	char oid[24];
	int idx, found;

	if (http_body(r, interval_fields, ARRAY_LEN(interval_fields), &body) < 0)
		return http_fail_reply(r);
	iv = json_string_value(json_object_get(body, "interval"));
	idx = http_pick(iv, strlen(iv), intervals);
	json_decref(body);
	if (idx < 0)
		return http_error(r, MHD_HTTP_UNPROCESSABLE_CONTENT, "invalid_value", "interval",
				  "interval is none, hourly, daily or weekly");
	if (store_begin(r->st) < 0)
		return http_internal(r, "account digest begin");
	if (store_digest_user_get(r->st, r->auth.user_id, NULL, &u, &found) < 0)
		return http_internal_rollback(r, "account digest");
	if (!found) {
		store_rollback(r->st);
		return http_error(r, MHD_HTTP_NOT_FOUND, "not_found", NULL, "no such user");
	}
	if (store_digest_interval_set(r->st, u.id, intervals[idx], &found) < 0)
		return http_internal_rollback(r, "account digest");
	snprintf(oid, sizeof(oid), "%lld", (long long)u.id);
	return http_audit_commit_reply(r, "account.digest", "user", oid,
				       json_pack("{s:s}", "interval", u.interval),
				       json_pack("{s:s}", "interval", intervals[idx]), MHD_HTTP_OK,
				       "account digest");
}

static json_t *template_json(const char *subject, const char *text, const char *html)
{
	return json_pack("{s:s, s:s, s:s}", "subject", subject, "text", text, "html", html);
}

/* The stored template, or the default; NULL on a store error. */
static json_t *template_current(struct http_req *r)
{
	char *s, *t, *h;
	json_t *o;
	int found;

	if (store_digest_template_get(r->st, &s, &t, &h, &found) < 0)
		return NULL;
	if (!found)
		return template_json(digest_template_default.subject, digest_template_default.text,
				     digest_template_default.html);
	o = template_json(s, t, h);
	free(s);
	free(t);
	free(h);
	return o;
}

enum MHD_Result http_digest_template_show(struct http_req *r)
{
	static const char *const args[] = { NULL };
	json_t *o;

	if (http_args_allow(r, args) < 0)
		return http_fail_reply(r);
	o = template_current(r);
	if (o == NULL)
		return http_internal(r, "digest template");
	return http_reply(r, MHD_HTTP_OK, o);
}

static const struct http_field template_fields[] = {
	{ "subject", HJ_STRING, 1, DIGEST_SUBJECT_MAX, 0, 0 },
	{ "text", HJ_STRING, 1, DIGEST_BODY_MAX, 0, 0 },
	{ "html", HJ_STRING, 1, DIGEST_BODY_MAX, 0, 0 },
};

enum MHD_Result http_digest_template_put(struct http_req *r)
{
	struct digest_template t;
	json_t *body, *before;
	const char *field = NULL;
	char why[300];

	if (http_body(r, template_fields, ARRAY_LEN(template_fields), &body) < 0)
		return http_fail_reply(r);
	t.subject = json_string_value(json_object_get(body, "subject"));
	t.text = json_string_value(json_object_get(body, "text"));
	t.html = json_string_value(json_object_get(body, "html"));
	if (digest_template_check(&t, &field, why, sizeof(why)) < 0) {
		enum MHD_Result ret = http_error(r, MHD_HTTP_UNPROCESSABLE_CONTENT,
						 "invalid_value", field, "%s: %s", field, why);

		json_decref(body);
		return ret;
	}
	if (store_begin(r->st) < 0) {
		json_decref(body);
		return http_internal(r, "digest template begin");
	}
	before = template_current(r);
	if (before == NULL ||
	    store_digest_template_set(r->st, t.subject, t.text, t.html, time_now_ms()) < 0) {
		json_decref(before);
		json_decref(body);
		return http_internal_rollback(r, "digest template");
	}
	return http_audit_commit_reply(r, "digest.template", "digest_template", "1", before,
				       body, MHD_HTTP_OK, "digest template");
}

static const struct http_field user_fields[] = {
	{ "user", HJ_STRING, 1, 64, 0, 0 },
};

enum MHD_Result http_digest_preview(struct http_req *r)
{
	struct digest_ctx c;
	char base[DIGEST_URL_MAX];
	char err[300];
	char *s, *t, *h;
	int64_t items;
	int no_user;
	json_t *body, *o;

	if (http_body(r, user_fields, ARRAY_LEN(user_fields), &body) < 0)
		return http_fail_reply(r);
	ctx_of(r, &c, base, sizeof(base));
	if (digest_preview(r->st, &c, json_string_value(json_object_get(body, "user")), &s, &t,
			   &h, &items, &no_user, err, sizeof(err)) < 0) {
		json_decref(body);
		if (no_user)
			return http_error(r, MHD_HTTP_UNPROCESSABLE_CONTENT, "invalid_value", "user",
					  "no such user");
		return http_internal(r, "digest preview");
	}
	json_decref(body);
	o = json_pack("{s:s, s:s, s:s, s:I}", "subject", s, "text", t, "html", h, "items",
		      (json_int_t)items);
	free(s);
	free(t);
	free(h);
	return http_reply(r, MHD_HTTP_OK, o);
}

enum MHD_Result http_digest_send(struct http_req *r)
{
	struct digest_ctx c;
	char base[DIGEST_URL_MAX];
	char err[300];
	char qid[32];
	char user[65];
	const char *bad = NULL;
	int64_t items = 0;
	json_t *body, *after;

	if (http_body(r, user_fields, ARRAY_LEN(user_fields), &body) < 0)
		return http_fail_reply(r);
	strlcpy_s(user, json_string_value(json_object_get(body, "user")), sizeof(user));
	json_decref(body);
	ctx_of(r, &c, base, sizeof(base));
	if (digest_send_now(r->st, &c, user, &items, qid, sizeof(qid), &bad, err,
			    sizeof(err)) < 0) {
		if (bad != NULL)
			return http_error(r, MHD_HTTP_UNPROCESSABLE_CONTENT, "invalid_value", "user",
					  "%s", bad);
		log_error(NULL, "http", "digest send: %s", err);
		return http_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "unavailable", NULL,
				  "the digest could not be queued; see the server log");
	}
	after = json_pack("{s:I, s:s}", "items", (json_int_t)items, "qid", qid);
	if (store_begin(r->st) < 0) {
		json_decref(after);
		return http_internal(r, "digest send audit");
	}
	return http_audit_commit_reply(r, "digest.send", "user", user, NULL, after, MHD_HTTP_OK,
				       "digest send");
}
