/*
 * http_tokens: API tokens (/api/v1/tokens) for scripts: Authorization:
 * Bearer moat_<64 hex>.  The token is shown once, in the answer to its
 * creation; only its SHA-256 and a short prefix (to recognise it in lists)
 * are kept.  A token acts as its owner; a user-scoped token of an
 * administrator has a user's rights only.  Tokens are created for oneself;
 * a user sees and revokes their own, an administrator everyone's; another
 * user's token answers 404.  Revoking keeps the row (revoked time) for
 * the record.
 */
#include "http_internal.h"

#include <stdio.h>
#include <string.h>

#include "../store/store.h"
#include "../store/store_auth.h"

#define TOKEN_PREFIX "moat_"
#define TOKEN_SHOWN 12

static json_t *token_json(const struct store_token *t)
{
	return json_pack("{s:I, s:I, s:s, s:s, s:s, s:s, s:I, s:o, s:o, s:b}", "id",
			 (json_int_t)t->id, "user_id", (json_int_t)t->user_id, "user",
			 t->user_name, "name", t->name, "prefix", t->prefix, "scope", t->scope,
			 "created", (json_int_t)t->created, "last_used",
			 http_time(t->last_used), "revoked", http_time(t->revoked), "active",
			 t->revoked == 0);
}

struct token_list {
	json_t *items;
	int64_t limit;
	int64_t n;
};

static int add_token(const struct store_token *t, void *arg)
{
	struct token_list *l = arg;

	if (++l->n > l->limit)
		return 1;
	json_array_append_new(l->items, token_json(t));
	return 0;
}

enum MHD_Result http_tokens_list(struct http_req *r)
{
	static const char *const args[] = { "limit", "offset", "cursor", "user_id", "revoked",
					    NULL };
	static const char *const bools[] = { "false", "true", NULL };
	struct http_page p;
	struct token_list l;
	int64_t uid;
	int revoked;
	char next[32];

	if (http_args_allow(r, args) < 0 || http_page(r, &p) < 0 ||
	    http_arg_i64(r, "user_id", 1, INT64_MAX, 0, &uid) < 0 ||
	    http_arg_pick(r, "revoked", bools, &revoked) < 0)
		return http_fail_reply(r);
	if (p.cursor != NULL &&
	    http_parse_i64(p.cursor, strlen(p.cursor), 0, 100000000, &p.offset) < 0)
		return http_error(r, MHD_HTTP_UNPROCESSABLE_CONTENT, "invalid_parameter", "cursor",
				  "malformed cursor");
	l.items = json_array();
	l.limit = p.limit;
	l.n = 0;
	/* A user's filter on someone else finds nothing, as if there were nothing. */
	if (!r->auth.admin && uid != 0 && uid != r->auth.user_id)
		return http_reply(r, MHD_HTTP_OK, http_list(l.items, NULL));
	if (!r->auth.admin)
		uid = r->auth.user_id;
	if (store_auth_tokens(r->st, uid, revoked, p.limit + 1, p.offset, add_token, &l) < 0) {
		json_decref(l.items);
		return http_internal(r, "tokens list");
	}
	snprintf(next, sizeof(next), "%lld", (long long)(p.offset + p.limit));
	return http_reply(r, MHD_HTTP_OK, http_list(l.items, l.n > p.limit ? next : NULL));
}

static const struct http_field create_fields[] = {
	{ "name", HJ_STRING, 1, 64, 0, 0 },
	{ "scope", HJ_STRING, 0, 8, 0, 0 },
};

enum MHD_Result http_tokens_create(struct http_req *r)
{
	json_t *body, *after = NULL;
	const char *scope = "user";
	char name[80];
	char raw[80], rnd[65], prefix[TOKEN_SHOWN + 1], hash[65];
	struct store_token t;
	int64_t id;
	int dup, found;
	char oid[24];
	json_t *v;

	if (http_body(r, create_fields, ARRAY_LEN(create_fields), &body) < 0)
		return http_fail_reply(r);
	strlcpy_s(name, json_string_value(json_object_get(body, "name")), sizeof(name));
	v = json_object_get(body, "scope");
	if (v != NULL)
		scope = strcmp(json_string_value(v), "admin") == 0 ? "admin" :
			strcmp(json_string_value(v), "user") == 0 ? "user" : NULL;
	json_decref(body);
	if (!http_valid_name(name, strlen(name)))
		return http_error(r, MHD_HTTP_UNPROCESSABLE_CONTENT, "invalid_value", "name",
				  "1-64 of letters, digits and . _ @ + -, starting alphanumeric");
	if (scope == NULL)
		return http_error(r, MHD_HTTP_UNPROCESSABLE_CONTENT, "invalid_value", "scope",
				  "scope is admin or user");
	if (strcmp(scope, "admin") == 0 && !r->auth.admin)
		return http_error(r, MHD_HTTP_FORBIDDEN, "forbidden", "scope",
				  "only administrators create admin-scoped tokens");
	random_hex(rnd, 32);
	snprintf(raw, sizeof(raw), "%s%s", TOKEN_PREFIX, rnd);
	strlcpy_s(prefix, raw, sizeof(prefix));
	http_sha256_hex(raw, strlen(raw), hash);
	if (store_begin(r->st) < 0)
		return http_internal(r, "tokens begin");
	if (store_auth_token_create(r->st, r->auth.user_id, name, hash, prefix, scope,
				    time_now_ms(), &id, &dup) < 0) {
		store_rollback(r->st);
		if (dup)
			return http_error(r, MHD_HTTP_CONFLICT, "duplicate", "name",
					  "you have an active token of that name");
		return http_internal(r, "tokens create");
	}
	if (store_auth_token_get(r->st, id, &t, &found) < 0 || !found)
		goto fail;
	snprintf(oid, sizeof(oid), "%lld", (long long)id);
	after = token_json(&t);
	if (http_audit(r, "token.create", "token", oid, NULL, after) < 0 ||
	    store_commit(r->st) < 0)
		goto fail;
	json_object_set_new(after, "token", json_string(raw));
	return http_reply(r, MHD_HTTP_CREATED, after);
fail:
	json_decref(after);
	return http_internal_rollback(r, "tokens create");
}

/* 0 found and visible; -1 with r->fail (404) or *internal. */
static int load_token(struct http_req *r, struct store_token *t, int *internal)
{
	int64_t id;
	int found;

	*internal = 0;
	if (http_param_id(r, 0, &id) < 0)
		return -1;
	if (store_auth_token_get(r->st, id, t, &found) < 0) {
		*internal = 1;
		return -1;
	}
	if (found && (r->auth.admin || t->user_id == r->auth.user_id))
		return 0;
	return http_not_found(r, "token");
}

enum MHD_Result http_tokens_show(struct http_req *r)
{
	static const char *const args[] = { NULL };
	struct store_token t;
	int internal;

	if (http_args_allow(r, args) < 0)
		return http_fail_reply(r);
	if (load_token(r, &t, &internal) < 0)
		return internal ? http_internal(r, "tokens show") : http_fail_reply(r);
	return http_reply(r, MHD_HTTP_OK, token_json(&t));
}

enum MHD_Result http_tokens_revoke(struct http_req *r)
{
	static const char *const args[] = { NULL };
	struct store_token t;
	int internal, changed, found;
	json_t *before, *after;
	char oid[24];

	if (http_args_allow(r, args) < 0)
		return http_fail_reply(r);
	if (load_token(r, &t, &internal) < 0)
		return internal ? http_internal(r, "tokens revoke") : http_fail_reply(r);
	if (t.revoked != 0)
		return http_reply(r, MHD_HTTP_NO_CONTENT, NULL);
	if (store_begin(r->st) < 0)
		return http_internal(r, "tokens begin");
	before = token_json(&t);
	if (store_auth_token_revoke(r->st, t.id, time_now_ms(), &changed) < 0 ||
	    store_auth_token_get(r->st, t.id, &t, &found) < 0 || !found) {
		json_decref(before);
		return http_internal_rollback(r, "tokens revoke");
	}
	after = token_json(&t);
	snprintf(oid, sizeof(oid), "%lld", (long long)t.id);
	return http_audit_commit_reply(r, "token.revoke", "token", oid, before, after,
				       MHD_HTTP_NO_CONTENT, "tokens revoke");
}
