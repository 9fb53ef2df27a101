/*
 * http_rules: the server mail rules (/api/v1/rules), administrators only —
 * list, create, show, replace, patch, delete, order, export, import and
 * the dry run (POST /rules/test).
 *
 * The operations are policy_rules', the same `moatd rules` calls: this file
 * only parses the request and formats the answer.  Every write is one
 * transaction with its audit row and bumps the policy generation (schema
 * triggers), so moatd compiles the new set for the next message.  A body is
 * already bounded by http_max_body; a set by RULES_COUNT_MAX.
 */
#include "http_internal.h"

#include <string.h>

#include "../conf/conf.h"
#include "../policy/policy_rules.h"

static void actor_of(struct http_req *r, struct policy_rules_actor *a)
{
	a->user_id = r->auth.user_id;
	a->name = r->auth.user[0] ? r->auth.user : "-";
	a->via = r->auth.via == HTTP_VIA_TOKEN ? "token" :
		 r->auth.via == HTTP_VIA_SESSION ? "session" : "anonymous";
	a->client_addr = r->client_addr;
}

static enum MHD_Result admin_fail(struct http_req *r, const struct policy_rules_err *e)
{
	if (e->status == 500)
		return http_internal(r, e->message);
	return http_error(r, (unsigned)e->status, e->code, e->field[0] ? e->field : NULL, "%s",
			  e->message);
}

/* The JSON body as any value-checked object; -1 fills r->fail. */
static int body_object(struct http_req *r, json_t **out)
{
	return http_json_parse(r->body.data ? r->body.data : "", r->body.len, out, &r->fail);
}

static int no_args(struct http_req *r)
{
	static const char *const args[] = { NULL };

	return http_args_allow(r, args);
}

enum MHD_Result http_rules_list(struct http_req *r)
{
	static const char *const args[] = { "enabled", NULL };
	static const char *const bools[] = { "false", "true", NULL };
	struct policy_rules_err e;
	json_t *items;
	int enabled;

	if (http_args_allow(r, args) < 0 || http_arg_pick(r, "enabled", bools, &enabled) < 0)
		return http_fail_reply(r);
	items = policy_rules_list(r->st, enabled, &e);
	if (items == NULL)
		return admin_fail(r, &e);
	return http_reply(r, MHD_HTTP_OK, http_list(items, NULL));
}

enum MHD_Result http_rules_show(struct http_req *r)
{
	struct policy_rules_err e;
	int64_t id;
	json_t *o;

	if (no_args(r) < 0 || http_param_id(r, 0, &id) < 0)
		return http_fail_reply(r);
	o = policy_rules_get(r->st, id, &e);
	if (o == NULL)
		return admin_fail(r, &e);
	return http_reply(r, MHD_HTTP_OK, o);
}

enum MHD_Result http_rules_create(struct http_req *r)
{
	struct policy_rules_actor a;
	struct policy_rules_err e;
	json_t *body, *o;

	if (no_args(r) < 0 || body_object(r, &body) < 0)
		return http_fail_reply(r);
	actor_of(r, &a);
	o = policy_rules_create(r->st, body, &a, &e);
	json_decref(body);
	if (o == NULL)
		return admin_fail(r, &e);
	return http_reply(r, MHD_HTTP_CREATED, o);
}

enum MHD_Result http_rules_replace(struct http_req *r)
{
	struct policy_rules_actor a;
	struct policy_rules_err e;
	json_t *body, *o;
	int64_t id;

	if (no_args(r) < 0 || http_param_id(r, 0, &id) < 0 || body_object(r, &body) < 0)
		return http_fail_reply(r);
	actor_of(r, &a);
	o = policy_rules_replace(r->st, id, body, &a, &e);
	json_decref(body);
	if (o == NULL)
		return admin_fail(r, &e);
	return http_reply(r, MHD_HTTP_OK, o);
}

enum MHD_Result http_rules_patch(struct http_req *r)
{
	static const struct http_field fields[] = {
		{ "enabled", HJ_BOOL, 0, 0, 0, 0 },
		{ "name", HJ_STRING, 0, 0, 0, 0 },
		{ "comment", HJ_STRING, 0, 0, 0, 0 },
	};
	struct policy_rules_actor a;
	struct policy_rules_err e;
	json_t *body, *o;
	int64_t id;

	if (no_args(r) < 0 || http_param_id(r, 0, &id) < 0 ||
	    http_body(r, fields, ARRAY_LEN(fields), &body) < 0)
		return http_fail_reply(r);
	actor_of(r, &a);
	o = policy_rules_patch(r->st, id, body, &a, &e);
	json_decref(body);
	if (o == NULL)
		return admin_fail(r, &e);
	return http_reply(r, MHD_HTTP_OK, o);
}

enum MHD_Result http_rules_delete(struct http_req *r)
{
	struct policy_rules_actor a;
	struct policy_rules_err e;
	int64_t id;

	if (no_args(r) < 0 || http_param_id(r, 0, &id) < 0)
		return http_fail_reply(r);
	actor_of(r, &a);
	if (policy_rules_delete(r->st, id, &a, &e) < 0)
		return admin_fail(r, &e);
	return http_reply(r, MHD_HTTP_NO_CONTENT, NULL);
}

enum MHD_Result http_rules_order(struct http_req *r)
{
	struct policy_rules_actor a;
	struct policy_rules_err e;
	json_t *body, *items;
	const char *key;
	json_t *v;

	if (no_args(r) < 0 || body_object(r, &body) < 0)
		return http_fail_reply(r);
	json_object_foreach(body, key, v) {
		if (strcmp(key, "ids") != 0) {
			enum MHD_Result ret = http_error(r, MHD_HTTP_UNPROCESSABLE_CONTENT,
							 "unknown_field", key, "unknown field %.100s",
							 key);

			json_decref(body);
			return ret;
		}
	}
	actor_of(r, &a);
	items = policy_rules_order(r->st, json_object_get(body, "ids"), &a, &e);
	json_decref(body);
	if (items == NULL)
		return admin_fail(r, &e);
	return http_reply(r, MHD_HTTP_OK, http_list(items, NULL));
}

enum MHD_Result http_rules_export(struct http_req *r)
{
	struct policy_rules_err e;
	json_t *arr;

	if (no_args(r) < 0)
		return http_fail_reply(r);
	arr = policy_rules_export(r->st, &e);
	if (arr == NULL)
		return admin_fail(r, &e);
	return http_reply(r, MHD_HTTP_OK, arr);
}

enum MHD_Result http_rules_import(struct http_req *r)
{
	struct policy_rules_actor a;
	struct policy_rules_err e;
	json_t *body, *out, *v, *mode;
	const char *key;
	int append = 0;

	if (no_args(r) < 0 || body_object(r, &body) < 0)
		return http_fail_reply(r);
	json_object_foreach(body, key, v) {
		if (strcmp(key, "rules") != 0 && strcmp(key, "mode") != 0) {
			enum MHD_Result ret = http_error(r, MHD_HTTP_UNPROCESSABLE_CONTENT,
							 "unknown_field", key, "unknown field %.100s",
							 key);

			json_decref(body);
			return ret;
		}
	}
	mode = json_object_get(body, "mode");
	if (mode != NULL) {
		const char *m = json_string_value(mode);

		if (m == NULL || (strcmp(m, "replace") != 0 && strcmp(m, "append") != 0)) {
			json_decref(body);
			return http_error(r, MHD_HTTP_UNPROCESSABLE_CONTENT, "invalid_value", "mode",
					  "mode: replace or append");
		}
		append = strcmp(m, "append") == 0;
	}
	if (json_object_get(body, "rules") == NULL) {
		json_decref(body);
		return http_error(r, MHD_HTTP_UNPROCESSABLE_CONTENT, "missing_field", "rules",
				  "rules: required (an array of rule objects)");
	}
	actor_of(r, &a);
	out = policy_rules_import(r->st, json_object_get(body, "rules"), append, &a, &e);
	json_decref(body);
	if (out == NULL)
		return admin_fail(r, &e);
	return http_reply(r, MHD_HTTP_OK, out);
}

enum MHD_Result http_rules_test(struct http_req *r)
{
	struct policy_rules_env env;
	struct policy_rules_err e;
	json_t *body, *out;

	if (no_args(r) < 0 || body_object(r, &body) < 0)
		return http_fail_reply(r);
	env.data_dir = r->h->conf->data_dir;
	env.max_message_size = r->h->conf->max_message_size;
	out = policy_rules_test(r->st, &env, body, &e);
	json_decref(body);
	if (out == NULL)
		return admin_fail(r, &e);
	return http_reply(r, MHD_HTTP_OK, out);
}
