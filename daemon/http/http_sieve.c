/*
 * http_sieve: a mailbox rule set as a Sieve script (RFC 5228), under the
 * three bases of http_mailbox.c:
 *   GET  {base}/sieve   the set exported as text/plain; charset=utf-8; each
 *                       rule Sieve cannot express is a comment in the script
 *                       naming the rule and the reason
 *   POST {base}/sieve   import: the script as text/plain, or {"script": "...",
 *                       "mode": "replace"|"append"}; ?mode= for text/plain
 *                       -> {"imported": n, "total": m, "skipped": [{"line", "reason"}]}
 * The scope (who may touch which set) is http_mailbox.c's; the conversion is
 * rules_sieve's; storing is policy_mbrules_import's (one transaction with its
 * audit row).  A script that is not Sieve is 422 naming the line.
 */
#include "http_internal.h"

#include <stdio.h>
#include <string.h>

#include "../policy/policy_mbrules.h"
#include "../rules/rules_sieve.h"

static enum MHD_Result fail(struct http_req *r, const struct policy_rules_err *e)
{
	if (e->status == 500)
		return http_internal(r, e->message);
	return http_error(r, (unsigned)e->status, e->code, e->field[0] ? e->field : NULL, "%s",
			  e->message);
}

enum MHD_Result http_sieve_export(struct http_req *r)
{
	static const char *const args[] = { NULL };
	struct policy_mbrules_owner o;
	struct policy_rules_err e;
	char label[400];
	json_t *arr, *skipped;
	char *text;
	int internal;

	if (http_mailbox_scope(r, &o, label, sizeof(label), &internal) < 0)
		return internal ? http_internal(r, "mailbox rules scope") : http_fail_reply(r);
	if (http_args_allow(r, args) < 0)
		return http_fail_reply(r);
	arr = policy_mbrules_export(r->st, &o, &e);
	if (arr == NULL)
		return fail(r, &e);
	text = rules_sieve_export(arr, &skipped);
	json_decref(arr);
	json_decref(skipped);
	if (text == NULL)
		return http_internal(r, "sieve export");
	return http_reply_text(r, MHD_HTTP_OK, "text/plain; charset=utf-8", text);
}

/* The script and mode from a text/plain or JSON body; -1 has replied in *ret. */
static int script_of(struct http_req *r, json_t **holder, const char **text, size_t *len,
		     int *append, enum MHD_Result *ret)
{
	static const char *const args[] = { "mode", NULL };
	static const char *const modes[] = { "replace", "append", NULL };
	const char *ct = MHD_lookup_connection_value(r->c, MHD_HEADER_KIND,
						     MHD_HTTP_HEADER_CONTENT_TYPE);
	const char *key;
	json_t *body, *v;
	int mode = -1;

	*holder = NULL;
	if (http_args_allow(r, args) < 0 || http_arg_pick(r, "mode", modes, &mode) < 0) {
		*ret = http_fail_reply(r);
		return -1;
	}
	*append = mode == 1;
	/* the router let only application/json and text/plain through */
	if (ct == NULL || strncasecmp(ct, "application/json", 16) != 0) {
		*text = r->body.data ? r->body.data : "";
		*len = r->body.len;
		return 0;
	}
	if (http_json_parse(r->body.data ? r->body.data : "", r->body.len, &body, &r->fail) < 0) {
		*ret = http_fail_reply(r);
		return -1;
	}
	*holder = body;
	json_object_foreach(body, key, v) {
		if (strcmp(key, "script") != 0 && strcmp(key, "mode") != 0) {
			*ret = http_error(r, MHD_HTTP_UNPROCESSABLE_CONTENT, "unknown_field", key,
					  "unknown field %.100s (want script, mode)", key);
			return -1;
		}
	}
	v = json_object_get(body, "mode");
	if (v != NULL) {
		const char *m = json_string_value(v);

		if (m == NULL || (strcmp(m, "replace") != 0 && strcmp(m, "append") != 0)) {
			*ret = http_error(r, MHD_HTTP_UNPROCESSABLE_CONTENT, "invalid_value", "mode",
					  "mode: replace or append");
			return -1;
		}
		*append = strcmp(m, "append") == 0;
	}
	v = json_object_get(body, "script");
	if (!json_is_string(v)) {
		*ret = http_error(r, MHD_HTTP_UNPROCESSABLE_CONTENT, "missing_field", "script",
				  "script: required (the Sieve script as a string)");
		return -1;
	}
	*text = json_string_value(v);
	*len = json_string_length(v);
	return 0;
}

enum MHD_Result http_sieve_import(struct http_req *r)
{
	struct policy_mbrules_owner o;
	struct policy_rules_err e;
	struct policy_rules_actor a;
	struct rules_sieve_err se;
	char label[400];
	json_t *holder, *rules, *skipped, *out;
	const char *text;
	size_t len;
	int internal, append;
	enum MHD_Result ret;

	if (http_mailbox_scope(r, &o, label, sizeof(label), &internal) < 0)
		return internal ? http_internal(r, "mailbox rules scope") : http_fail_reply(r);
	if (script_of(r, &holder, &text, &len, &append, &ret) < 0) {
		json_decref(holder);
		return ret;
	}
	if (rules_sieve_import(text, len, NULL, &rules, &skipped, &se) < 0) {
		json_decref(holder);
		return http_error(r, MHD_HTTP_UNPROCESSABLE_CONTENT, "invalid_sieve", "script",
				  "script: line %u: %s", se.line, se.msg);
	}
	json_decref(holder);
	a.user_id = r->auth.user_id;
	a.name = r->auth.user[0] ? r->auth.user : "-";
	a.via = r->auth.via == HTTP_VIA_TOKEN ? "token" :
		r->auth.via == HTTP_VIA_SESSION ? "session" : "anonymous";
	a.client_addr = r->client_addr;
	out = policy_mbrules_import(r->st, &o, rules, append, &a, &e);
	json_decref(rules);
	if (out == NULL) {
		json_decref(skipped);
		return fail(r, &e);
	}
	json_object_set_new(out, "skipped", skipped);
	return http_reply(r, MHD_HTTP_OK, out);
}
