/*
 * http_users: the users resource (/api/v1/users) — console accounts, which
 * are the directory's users (dir_user) with a password, a role and a
 * disabled flag.
 *
 * Administrators list, create, change and delete; a user may read only
 * their own record (anyone else's answers 404, as if it did not exist).
 * The last enabled administrator can be neither demoted, disabled nor
 * deleted (409), and nobody deletes themselves.  Every change is audited
 * in the same transaction; password hashes never leave the store.
 */
#include "http_internal.h"

#include <stdio.h>
#include <string.h>

#include "../store/store.h"
#include "../store/store_auth.h"
#include "../store/store_digest.h"
#include "../store/store_policy.h"

json_t *http_user_json(const struct store_user *u)
{
	return json_pack("{s:I, s:s, s:s, s:b, s:b, s:I, s:o}", "id", (json_int_t)u->id,
			 "name", u->name, "role", u->role, "disabled", u->disabled,
			 "password_set", u->has_password, "created", (json_int_t)u->created,
			 "password_changed", http_time(u->password_changed));
}

struct user_list {
	json_t *items;
	int64_t limit;
	int64_t n;
};

static int add_user(const struct store_user *u, void *arg)
{
	struct user_list *l = arg;

	if (++l->n > l->limit)
		return 1;
	json_array_append_new(l->items, http_user_json(u));
	return 0;
}

enum MHD_Result http_users_list(struct http_req *r)
{
	static const char *const args[] = { "limit", "offset", "cursor", "q", "role",
					    "disabled", "sort", NULL };
	static const char *const roles[] = { "admin", "user", NULL };
	static const char *const bools[] = { "false", "true", NULL };
	static const char *const sorts[] = { "id", "-id", "name", "-name", "created",
					     "-created", NULL };
	struct store_user_filter f;
	struct http_page p;
	struct user_list l;
	int role, dis, sort;
	char next[32];

	if (http_args_allow(r, args) < 0 || http_page(r, &p) < 0 ||
	    http_arg_str(r, "q", 64, &f.q) < 0 || http_arg_pick(r, "role", roles, &role) < 0 ||
	    http_arg_pick(r, "disabled", bools, &dis) < 0 ||
	    http_arg_pick(r, "sort", sorts, &sort) < 0)
		return http_fail_reply(r);
	if (p.cursor != NULL &&
	    http_parse_i64(p.cursor, strlen(p.cursor), 0, 100000000, &p.offset) < 0)
		return http_error(r, MHD_HTTP_UNPROCESSABLE_CONTENT, "invalid_parameter", "cursor",
				  "malformed cursor");
	f.role = role >= 0 ? roles[role] : NULL;
	f.disabled = dis;
	f.sort = sort >= 0 ? sorts[sort] : "id";
	f.limit = p.limit + 1;
	f.offset = p.offset;
	l.items = json_array();
	l.limit = p.limit;
	l.n = 0;
	if (store_auth_users(r->st, &f, add_user, &l) < 0) {
		json_decref(l.items);
		return http_internal(r, "users list");
	}
	snprintf(next, sizeof(next), "%lld", (long long)(p.offset + p.limit));
	return http_reply(r, MHD_HTTP_OK, http_list(l.items, l.n > p.limit ? next : NULL));
}

static int add_address(const char *address, const char *kind, void *arg)
{
	json_array_append_new(arg, json_pack("{s:s, s:s}", "address", address, "kind", kind));
	return 0;
}

/* The user with addresses; NULL on a store error. */
static json_t *user_full(struct http_req *r, const struct store_user *u)
{
	json_t *o = http_user_json(u);
	json_t *addrs = json_array();

	if (store_auth_user_addresses(r->st, u->id, add_address, addrs) < 0) {
		json_decref(o);
		json_decref(addrs);
		return NULL;
	}
	json_object_set_new(o, "addresses", addrs);
	return o;
}

static const struct http_field create_fields[] = {
	{ "name", HJ_STRING, 1, 64, 0, 0 },
	{ "password", HJ_STRING, 0, HTTP_PASSWORD_MAX, 0, 0 },
	{ "role", HJ_STRING, 0, 8, 0, 0 },
	{ "disabled", HJ_BOOL, 0, 0, 0, 0 },
	{ "addresses", HJ_STRING_ARRAY, 0, 100, 0, 0 },
};

/*
 * A user with directory addresses is created by the directory's own
 * function (which commits by itself); role, password and the audit entry
 * follow in a second transaction.  *id receives the new user's id.
 */
static enum MHD_Result create_with_addresses(struct http_req *r, const char *name,
					     json_t *addrs, int64_t *id, int *done)
{
	char norm[100][330];
	const char *ptrs[100];
	char err[300];
	struct store_user u;
	json_t *item;
	size_t i, n = json_array_size(addrs);
	int found;

	*done = 0;
	json_array_foreach(addrs, i, item) {
		if (i >= 100 || http_dir_address(json_string_value(item), norm[i], sizeof(norm[i])) < 0)
			return http_error(r, MHD_HTTP_UNPROCESSABLE_CONTENT, "invalid_value",
					  "addresses", "address %zu is not a valid mail address", i);
		ptrs[i] = norm[i];
	}
	if (store_policy_user_add(r->st, name, ptrs, n, err, sizeof(err)) < 0) {
		if (strstr(err, "user") != NULL && strstr(err, "already exists") != NULL)
			return http_error(r, MHD_HTTP_CONFLICT, "duplicate", "name",
					  "a user of that name exists");
		if (strstr(err, "already in the directory") != NULL)
			return http_error(r, MHD_HTTP_CONFLICT, "duplicate", "addresses", "%s", err);
		return http_internal(r, "users create");
	}
	if (store_auth_user_by_name(r->st, name, &u, &found) < 0 || !found)
		return http_internal(r, "users create");
	*id = u.id;
	*done = 1;
	return MHD_YES;
}

static int check_role(struct http_req *r, json_t *body, const char **role)
{
	json_t *v = json_object_get(body, "role");

	if (v == NULL)
		return 0;
	*role = json_string_value(v);
	if (strcmp(*role, "admin") != 0 && strcmp(*role, "user") != 0) {
		r->fail.status = 422;
		r->fail.code = "invalid_value";
		strlcpy_s(r->fail.field, "role", sizeof(r->fail.field));
		strlcpy_s(r->fail.message, "role is admin or user", sizeof(r->fail.message));
		return -1;
	}
	return 0;
}

static int check_password(struct http_req *r, json_t *body, char *hash, size_t hashsz,
			  int *set, int *internal)
{
	json_t *v = json_object_get(body, "password");

	*set = 0;
	*internal = 0;
	if (v == NULL)
		return 0;
	if (json_string_length(v) < HTTP_PASSWORD_MIN) {
		r->fail.status = 422;
		r->fail.code = "invalid_value";
		strlcpy_s(r->fail.field, "password", sizeof(r->fail.field));
		snprintf(r->fail.message, sizeof(r->fail.message), "at least %d characters",
			 HTTP_PASSWORD_MIN);
		return -1;
	}
	if (http_password_hash(json_string_value(v), hash, hashsz) < 0) {
		*internal = 1;
		return -1;
	}
	*set = 1;
	return 0;
}

enum MHD_Result http_users_create(struct http_req *r)
{
	json_t *body, *after = NULL;
	const char *name, *role = "user";
	char hash[256];
	int set, internal = 0, dup, found;
	int64_t id;
	struct store_user u;
	char oid[24];
	enum MHD_Result ret;

	if (http_body(r, create_fields, ARRAY_LEN(create_fields), &body) < 0)
		return http_fail_reply(r);
	name = json_string_value(json_object_get(body, "name"));
	if (!http_valid_name(name, strlen(name))) {
		json_decref(body);
		return http_error(r, MHD_HTTP_UNPROCESSABLE_CONTENT, "invalid_value", "name",
				  "1-64 of letters, digits and . _ @ + -, starting alphanumeric");
	}
	if (check_role(r, body, &role) < 0 ||
	    check_password(r, body, hash, sizeof(hash), &set, &internal) < 0) {
		json_decref(body);
		return internal ? http_internal(r, "hash") : http_fail_reply(r);
	}
	if (json_array_size(json_object_get(body, "addresses")) > 0) {
		int done;

		ret = create_with_addresses(r, name, json_object_get(body, "addresses"), &id, &done);
		if (!done) {
			json_decref(body);
			return ret;
		}
		if (store_begin(r->st) < 0) {
			json_decref(body);
			return http_internal(r, "users begin");
		}
		if (store_auth_user_update(r->st, id, role,
					   json_is_true(json_object_get(body, "disabled"))) < 0 ||
		    (set && store_auth_user_set_password(r->st, id, hash, time_now_ms()) < 0)) {
			json_decref(body);
			goto fail;
		}
	} else {
		if (store_begin(r->st) < 0) {
			json_decref(body);
			return http_internal(r, "users begin");
		}
		if (store_auth_user_create(r->st, name, set ? hash : NULL, role,
					   json_is_true(json_object_get(body, "disabled")),
					   time_now_ms(), &id, &dup) < 0) {
			store_rollback(r->st);
			json_decref(body);
			if (dup)
				return http_error(r, MHD_HTTP_CONFLICT, "duplicate", "name",
						  "a user of that name exists");
			return http_internal(r, "users create");
		}
	}
	json_decref(body);
	snprintf(oid, sizeof(oid), "%lld", (long long)id);
	if (store_auth_user_get(r->st, id, &u, &found) < 0 || !found)
		goto fail;
	after = user_full(r, &u);
	if (after == NULL)
		goto fail;
	return http_audit_commit_reply(r, "user.create", "user", oid, NULL, after,
				       MHD_HTTP_CREATED, "users create");
fail:
	json_decref(after);
	return http_internal_rollback(r, "users create");
}

/* The target user, visible to the caller; 0 found, -1 reply needed (r->fail or internal). */
static int load_visible(struct http_req *r, struct store_user *u, int *internal)
{
	int64_t id;
	int found;

	*internal = 0;
	if (http_param_id(r, 0, &id) < 0)
		return -1;
	if (!r->auth.admin && id != r->auth.user_id)
		goto nf;
	if (store_auth_user_get(r->st, id, u, &found) < 0) {
		*internal = 1;
		return -1;
	}
	if (found)
		return 0;
nf:
	return http_not_found(r, "user");
}

enum MHD_Result http_users_show(struct http_req *r)
{
	static const char *const args[] = { NULL };
	struct store_user u;
	json_t *o;
	int internal;

	if (http_args_allow(r, args) < 0)
		return http_fail_reply(r);
	if (load_visible(r, &u, &internal) < 0)
		return internal ? http_internal(r, "users show") : http_fail_reply(r);
	o = user_full(r, &u);
	if (o == NULL)
		return http_internal(r, "users show");
	return http_reply(r, MHD_HTTP_OK, o);
}

static const struct http_field update_fields[] = {
	{ "password", HJ_STRING, 0, HTTP_PASSWORD_MAX, 0, 0 },
	{ "role", HJ_STRING, 0, 8, 0, 0 },
	{ "disabled", HJ_BOOL, 0, 0, 0, 0 },
	{ "digest_interval", HJ_STRING, 0, 16, 0, 0 }, /* docs/digest.md */
};

/* Would this change leave no enabled administrator?  -1 on a store error. */
static int last_admin(struct http_req *r, const struct store_user *u, const char *role,
		      int disabled)
{
	int64_t all, enabled;

	if (strcmp(u->role, "admin") != 0 || u->disabled)
		return 0;
	if (strcmp(role, "admin") == 0 && !disabled)
		return 0;
	if (store_auth_admin_count(r->st, &all, &enabled) < 0)
		return -1;
	return enabled <= 1;
}

enum MHD_Result http_users_update(struct http_req *r)
{
	json_t *body, *before = NULL, *after = NULL;
	struct store_user u;
	const char *role;
	char hash[256];
	int set, internal = 0, disabled, last, found;
	const char *interval = NULL;
	char oid[24];

	if (load_visible(r, &u, &internal) < 0)
		return internal ? http_internal(r, "users update") : http_fail_reply(r);
	if (http_body(r, update_fields, ARRAY_LEN(update_fields), &body) < 0)
		return http_fail_reply(r);
	role = u.role;
	if (check_role(r, body, &role) < 0 ||
	    check_password(r, body, hash, sizeof(hash), &set, &internal) < 0) {
		json_decref(body);
		return internal ? http_internal(r, "hash") : http_fail_reply(r);
	}
	role = strcmp(role, "admin") == 0 ? "admin" : "user"; /* static, outlives body */
	if (json_object_get(body, "digest_interval") != NULL) {
		static const char *const ivs[] = { "none", "hourly", "daily", "weekly", NULL };
		const char *v = json_string_value(json_object_get(body, "digest_interval"));
		int k = http_pick(v, strlen(v), ivs);

		if (k < 0) {
			json_decref(body);
			return http_error(r, MHD_HTTP_UNPROCESSABLE_CONTENT, "invalid_value",
					  "digest_interval", "none, hourly, daily or weekly");
		}
		interval = ivs[k]; /* static, outlives body */
	}
	disabled = json_object_get(body, "disabled") ?
		   json_is_true(json_object_get(body, "disabled")) : u.disabled;
	json_decref(body);
	if (store_begin(r->st) < 0)
		return http_internal(r, "users begin");
	last = last_admin(r, &u, role, disabled);
	if (last < 0)
		goto fail;
	if (last) {
		store_rollback(r->st);
		return http_error(r, MHD_HTTP_CONFLICT, "last_admin", NULL,
				  "this is the last enabled administrator");
	}
	snprintf(oid, sizeof(oid), "%lld", (long long)u.id);
	before = http_user_json(&u);
	if (store_auth_user_update(r->st, u.id, role, disabled) < 0)
		goto fail;
	if (interval != NULL && store_digest_interval_set(r->st, u.id, interval, &found) < 0)
		goto fail;
	if (set && store_auth_user_set_password(r->st, u.id, hash, time_now_ms()) < 0)
		goto fail;
	/* A disabled account or a reset password ends every session of it. */
	if ((disabled || set) && store_auth_session_delete_user(r->st, u.id, NULL) < 0)
		goto fail;
	if (store_auth_user_get(r->st, u.id, &u, &found) < 0 || !found)
		goto fail;
	after = http_user_json(&u);
	if (http_audit(r, set ? "user.update_password" : "user.update", "user", oid, before,
		       after) < 0 || store_commit(r->st) < 0)
		goto fail;
	json_decref(before);
	json_decref(after);
	after = user_full(r, &u);
	if (after == NULL)
		return http_internal(r, "users show");
	return http_reply(r, MHD_HTTP_OK, after);
fail:
	json_decref(before);
	json_decref(after);
	return http_internal_rollback(r, "users update");
}

enum MHD_Result http_users_delete(struct http_req *r)
{
	static const char *const args[] = { NULL };
	struct store_user u;
	json_t *before;
	int internal, last, removed;
	char oid[24];

	if (http_args_allow(r, args) < 0)
		return http_fail_reply(r);
	if (load_visible(r, &u, &internal) < 0)
		return internal ? http_internal(r, "users delete") : http_fail_reply(r);
	if (u.id == r->auth.user_id)
		return http_error(r, MHD_HTTP_CONFLICT, "cannot_delete_self", NULL,
				  "you cannot delete your own account");
	if (store_begin(r->st) < 0)
		return http_internal(r, "users begin");
	last = last_admin(r, &u, "user", 1);
	if (last < 0)
		goto fail;
	if (last) {
		store_rollback(r->st);
		return http_error(r, MHD_HTTP_CONFLICT, "last_admin", NULL,
				  "this is the last enabled administrator");
	}
	snprintf(oid, sizeof(oid), "%lld", (long long)u.id);
	before = user_full(r, &u);
	if (before == NULL)
		goto fail;
	/* The directory's own delete: addresses, sessions, tokens cascade. */
	if (store_policy_user_remove(r->st, u.name, &removed) < 0) {
		json_decref(before);
		goto fail;
	}
	return http_audit_commit_reply(r, "user.delete", "user", oid, before, NULL,
				       MHD_HTTP_NO_CONTENT, "users delete");
fail:
	return http_internal_rollback(r, "users delete");
}
