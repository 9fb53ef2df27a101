/*
 * http_dkim: DKIM signing keys (/api/v1/dkim/keys), administrators only --
 * list, generate, show, enable/disable (PATCH), delete.
 *
 * The operations are dkim_admin's, the same `moatd dkim` calls: this file
 * parses the request and formats the answer.  A key is answered with the
 * DNS record to publish, never with its private half.  Generating an RSA
 * 4096 key takes a moment on this HTTP thread; the mail side is not
 * touched.
 */
#include "http_internal.h"

#include <string.h>

#include "../score/dkim_sign.h"

static void actor_of(struct http_req *r, struct dkim_actor *a)
{
	a->user_id = r->auth.user_id;
	a->name = r->auth.user[0] ? r->auth.user : "-";
	a->via = r->auth.via == HTTP_VIA_TOKEN ? "token" :
		 r->auth.via == HTTP_VIA_SESSION ? "session" : "anonymous";
	a->client_addr = r->client_addr;
}

static enum MHD_Result dkim_fail(struct http_req *r, const struct dkim_err *e)
{
	if (e->status == 500)
		return http_internal(r, e->message);
	return http_error(r, (unsigned)e->status, e->code, e->field[0] ? e->field : NULL, "%s",
			  e->message);
}

static int no_args(struct http_req *r)
{
	static const char *const args[] = { NULL };

	return http_args_allow(r, args);
}

enum MHD_Result http_dkim_list(struct http_req *r)
{
	struct dkim_err e;
	json_t *items;

	if (no_args(r) < 0)
		return http_fail_reply(r);
	items = dkim_admin_list(r->st, &e);
	if (items == NULL)
		return dkim_fail(r, &e);
	return http_reply(r, MHD_HTTP_OK, http_list(items, NULL));
}

enum MHD_Result http_dkim_create(struct http_req *r)
{
	static const struct http_field fields[] = {
		{ "domain", HJ_STRING, 1, 253, 0, 0 },
		{ "selector", HJ_STRING, 1, DKIM_SELECTOR_MAX, 0, 0 },
		{ "algorithm", HJ_STRING, 0, 20, 0, 0 },
		{ "bits", HJ_INT, 0, 0, 0, 8192 },
		{ "enabled", HJ_BOOL, 0, 0, 0, 0 },
	};
	struct dkim_actor a;
	struct dkim_err e;
	json_t *body, *o, *en;

	if (no_args(r) < 0 || http_body(r, fields, ARRAY_LEN(fields), &body) < 0)
		return http_fail_reply(r);
	actor_of(r, &a);
	en = json_object_get(body, "enabled");
	o = dkim_admin_create(r->st, json_string_value(json_object_get(body, "domain")),
			      json_string_value(json_object_get(body, "selector")),
			      json_string_value(json_object_get(body, "algorithm")),
			      json_integer_value(json_object_get(body, "bits")),
			      en == NULL || json_is_true(en), &a, &e);
	json_decref(body);
	if (o == NULL)
		return dkim_fail(r, &e);
	return http_reply(r, MHD_HTTP_CREATED, o);
}

enum MHD_Result http_dkim_show(struct http_req *r)
{
	struct dkim_err e;
	int64_t id;
	json_t *o;

	if (no_args(r) < 0 || http_param_id(r, 0, &id) < 0)
		return http_fail_reply(r);
	o = dkim_admin_get(r->st, id, &e);
	if (o == NULL)
		return dkim_fail(r, &e);
	return http_reply(r, MHD_HTTP_OK, o);
}

enum MHD_Result http_dkim_patch(struct http_req *r)
{
	static const struct http_field fields[] = {
		{ "enabled", HJ_BOOL, 1, 0, 0, 0 },
	};
	struct dkim_actor a;
	struct dkim_err e;
	json_t *body, *o;
	int64_t id;

	if (no_args(r) < 0 || http_param_id(r, 0, &id) < 0 ||
	    http_body(r, fields, ARRAY_LEN(fields), &body) < 0)
		return http_fail_reply(r);
	actor_of(r, &a);
	o = dkim_admin_set_enabled(r->st, id, json_is_true(json_object_get(body, "enabled")), &a,
				   &e);
	json_decref(body);
	if (o == NULL)
		return dkim_fail(r, &e);
	return http_reply(r, MHD_HTTP_OK, o);
}

enum MHD_Result http_dkim_delete(struct http_req *r)
{
	struct dkim_actor a;
	struct dkim_err e;
	int64_t id;

	if (no_args(r) < 0 || http_param_id(r, 0, &id) < 0)
		return http_fail_reply(r);
	actor_of(r, &a);
	if (dkim_admin_delete(r->st, id, &a, &e) < 0)
		return dkim_fail(r, &e);
	return http_reply(r, MHD_HTTP_NO_CONTENT, NULL);
}
