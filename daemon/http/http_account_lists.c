/*
 * http_account_lists: end users' self-service objects — personal sender
 * lists (/api/v1/account/senders for the caller, /api/v1/users/{id}/senders
 * for administrators) and group managers
 * (/api/v1/directory/groups/{address}/managers, administrators only).
 *
 * A personal entry is "user@example.com" or "@example.com" (validated by
 * policy_user_value_check(), as the policy loader does), kind allow or
 * block, at most user_sender_list_max per user.  The policy applies it to
 * the user's own addresses from the next message (docs/policy.md).  A
 * user reaches only their own entries: another user's entry id answers
 * 404.  Every change is audited in its own transaction, and the count
 * check shares that transaction, so concurrent adds cannot pass the limit.
 */
#include "http_internal.h"

#include <stdio.h>
#include <string.h>

#include "../conf/conf.h"
#include "../policy/policy_validate.h"
#include "../store/store.h"
#include "../store/store_auth.h"
#include "../store/store_userlist.h"

static json_t *entry_json(const struct store_sender_entry *e)
{
	return json_pack("{s:I, s:s, s:s, s:I}", "id", (json_int_t)e->id, "kind", e->kind,
			 "value", e->value, "created", (json_int_t)e->created);
}

struct entry_list {
	json_t *items;
	int kind;             /* -1 any, 0 allow, 1 block */
	int64_t skip, limit, n;
};

static const char *const kinds[] = { "allow", "block", NULL };

static int add_entry(const struct store_sender_entry *e, void *arg)
{
	struct entry_list *l = arg;

	if (l->kind >= 0 && strcmp(e->kind, kinds[l->kind]) != 0)
		return 0;
	if (l->skip > 0) {
		l->skip--;
		return 0;
	}
	if (++l->n > l->limit)
		return 1;
	json_array_append_new(l->items, entry_json(e));
	return 0;
}

static int one_entry(const struct store_sender_entry *e, void *arg)
{
	json_t **out = arg;

	*out = entry_json(e);
	return 1;
}

/* The user {id} of an administrator's route; -1 with r->fail (404) or *internal. */
static int path_user(struct http_req *r, int64_t *uid, int *internal)
{
	struct store_user u;
	int found;

	*internal = 0;
	if (http_param_id(r, 0, uid) < 0)
		return http_not_found(r, "user");
	if (store_auth_user_get(r->st, *uid, &u, &found) < 0) {
		*internal = 1;
		return -1;
	}
	if (!found)
		return http_not_found(r, "user");
	return 0;
}

static enum MHD_Result list_for(struct http_req *r, int64_t uid)
{
	static const char *const args[] = { "limit", "offset", "cursor", "kind", NULL };
	struct http_page p;
	struct entry_list l;
	char next[32];

	memset(&l, 0, sizeof(l));
	if (http_args_allow(r, args) < 0 || http_page(r, &p) < 0 ||
	    http_arg_pick(r, "kind", kinds, &l.kind) < 0)
		return http_fail_reply(r);
	if (p.cursor != NULL &&
	    http_parse_i64(p.cursor, strlen(p.cursor), 0, 100000000, &p.offset) < 0)
		return http_error(r, MHD_HTTP_UNPROCESSABLE_CONTENT, "invalid_parameter", "cursor",
				  "malformed cursor");
	l.items = json_array();
	l.skip = p.offset;
	l.limit = p.limit;
	if (store_userlist_list(r->st, uid, add_entry, &l) < 0) {
		json_decref(l.items);
		return http_internal(r, "senders list");
	}
	snprintf(next, sizeof(next), "%lld", (long long)(p.offset + p.limit));
	return http_reply(r, MHD_HTTP_OK, http_list(l.items, l.n > p.limit ? next : NULL));
}

static const struct http_field entry_fields[] = {
	{ "kind", HJ_STRING, 1, 16, 0, 0 },
	{ "value", HJ_STRING, 1, 320, 0, 0 },
};

static enum MHD_Result add_for(struct http_req *r, int64_t uid)
{
	json_t *body, *after = NULL;
	char norm[400], err[300], oid[48];
	int kind, dup, found;
	int64_t id, n;

	if (http_body(r, entry_fields, ARRAY_LEN(entry_fields), &body) < 0)
		return http_fail_reply(r);
	kind = http_pick(json_string_value(json_object_get(body, "kind")),
			 json_string_length(json_object_get(body, "kind")), kinds);
	if (kind < 0) {
		json_decref(body);
		return http_error(r, MHD_HTTP_UNPROCESSABLE_CONTENT, "invalid_value", "kind",
				  "kind is allow or block");
	}
	if (policy_user_value_check(json_string_value(json_object_get(body, "value")),
				    json_string_length(json_object_get(body, "value")), norm,
				    sizeof(norm), err, sizeof(err)) < 0) {
		json_decref(body);
		return http_error(r, MHD_HTTP_UNPROCESSABLE_CONTENT, "invalid_value", "value", "%s",
				  err);
	}
	json_decref(body);
	if (store_begin(r->st) < 0)
		return http_internal(r, "senders begin");
	if (store_userlist_count(r->st, uid, &n) < 0)
		return http_internal_rollback(r, "senders count");
	if (n >= r->h->conf->user_sender_list_max) {
		store_rollback(r->st);
		return http_error(r, MHD_HTTP_UNPROCESSABLE_CONTENT, "limit_reached", "value",
				  "the list holds %lld entries, the most allowed"
				  " (user_sender_list_max)", (long long)n);
	}
	if (store_userlist_add(r->st, uid, kinds[kind], norm, &id, &dup) < 0)
		return http_internal_rollback(r, "senders add");
	if (dup) {
		store_rollback(r->st);
		return http_error(r, MHD_HTTP_CONFLICT, "duplicate", "value",
				  "%s is already on the list", norm);
	}
	if (store_userlist_get(r->st, uid, id, one_entry, &after, &found) < 0 || after == NULL)
		return http_internal_rollback(r, "senders add");
	snprintf(oid, sizeof(oid), "%lld/%lld", (long long)uid, (long long)id);
	return http_audit_commit_reply(r, "user_sender.create", "user_sender", oid, NULL, after,
				       MHD_HTTP_CREATED, "senders add");
}

static enum MHD_Result delete_for(struct http_req *r, int64_t uid, size_t param)
{
	static const char *const args[] = { NULL };
	json_t *before = NULL;
	char oid[48];
	int64_t id;
	int found, removed;

	if (http_args_allow(r, args) < 0)
		return http_fail_reply(r);
	if (http_param_id(r, param, &id) < 0)
		return http_error(r, MHD_HTTP_NOT_FOUND, "not_found", NULL, "no such entry");
	if (store_begin(r->st) < 0)
		return http_internal(r, "senders begin");
	if (store_userlist_get(r->st, uid, id, one_entry, &before, &found) < 0)
		return http_internal_rollback(r, "senders get");
	if (before == NULL) {
		/* Another user's entry is as absent as one that never was. */
		store_rollback(r->st);
		return http_error(r, MHD_HTTP_NOT_FOUND, "not_found", NULL, "no such entry");
	}
	if (store_userlist_remove(r->st, uid, id, &removed) < 0) {
		json_decref(before);
		return http_internal_rollback(r, "senders delete");
	}
	snprintf(oid, sizeof(oid), "%lld/%lld", (long long)uid, (long long)id);
	return http_audit_commit_reply(r, "user_sender.delete", "user_sender", oid, before, NULL,
				       MHD_HTTP_NO_CONTENT, "senders delete");
}

/* ---- the caller's own list ---- */

enum MHD_Result http_account_senders_list(struct http_req *r)
{
	return list_for(r, r->auth.user_id);
}

enum MHD_Result http_account_senders_add(struct http_req *r)
{
	return add_for(r, r->auth.user_id);
}

enum MHD_Result http_account_senders_delete(struct http_req *r)
{
	return delete_for(r, r->auth.user_id, 0);
}

/* ---- any user's list (administrators) ---- */

enum MHD_Result http_user_senders_list(struct http_req *r)
{
	int64_t uid;
	int internal;

	if (path_user(r, &uid, &internal) < 0)
		return internal ? http_internal(r, "senders user") : http_fail_reply(r);
	return list_for(r, uid);
}

enum MHD_Result http_user_senders_add(struct http_req *r)
{
	int64_t uid;
	int internal;

	if (path_user(r, &uid, &internal) < 0)
		return internal ? http_internal(r, "senders user") : http_fail_reply(r);
	return add_for(r, uid);
}

enum MHD_Result http_user_senders_delete(struct http_req *r)
{
	int64_t uid;
	int internal;

	if (path_user(r, &uid, &internal) < 0)
		return internal ? http_internal(r, "senders user") : http_fail_reply(r);
	return delete_for(r, uid, 1);
}

/* ---- group managers (administrators) ---- */

/* Path parameter i, up to outsz - 1 octets, as given. */
static int path_text(struct http_req *r, size_t i, char *out, size_t outsz)
{
	if (i >= r->nparams || r->params[i].len == 0 || r->params[i].len >= outsz)
		return -1;
	memcpy(out, r->params[i].p, r->params[i].len);
	out[r->params[i].len] = '\0';
	return 0;
}

/* The group of the path, lower-cased; -1 with 404 in r->fail. */
static int path_group(struct http_req *r, char *out, size_t outsz)
{
	char raw[330];

	if (path_text(r, 0, raw, sizeof(raw)) < 0 || http_dir_address(raw, out, outsz) < 0)
		return http_not_found(r, "group");
	return 0;
}

static enum MHD_Result no_group(struct http_req *r, const char *group)
{
	return http_error(r, MHD_HTTP_NOT_FOUND, "not_found", NULL, "no such group %s", group);
}

static int add_manager(int64_t user_id, const char *name, void *arg)
{
	json_array_append_new(arg, json_pack("{s:I, s:s}", "id", (json_int_t)user_id, "name",
					     name));
	return 0;
}

enum MHD_Result http_group_managers_list(struct http_req *r)
{
	static const char *const args[] = { NULL };
	char group[330];
	json_t *items;
	int found;

	if (http_args_allow(r, args) < 0)
		return http_fail_reply(r);
	if (path_group(r, group, sizeof(group)) < 0)
		return http_fail_reply(r);
	items = json_array();
	if (store_userlist_managers(r->st, group, add_manager, items, &found) < 0) {
		json_decref(items);
		return http_internal(r, "managers list");
	}
	if (!found) {
		json_decref(items);
		return no_group(r, group);
	}
	return http_reply(r, MHD_HTTP_OK, http_list(items, NULL));
}

static int stop_at_first(int64_t user_id, const char *name, void *arg)
{
	(void)user_id;
	(void)name;
	(void)arg;
	return 1;
}

static const struct http_field manager_fields[] = {
	{ "user", HJ_STRING, 1, 64, 0, 0 },
};

enum MHD_Result http_group_managers_add(struct http_req *r)
{
	struct store_user u;
	json_t *body, *after;
	char group[330], name[80];
	int found, added;

	if (path_group(r, group, sizeof(group)) < 0)
		return http_fail_reply(r);
	if (http_body(r, manager_fields, ARRAY_LEN(manager_fields), &body) < 0)
		return http_fail_reply(r);
	strlcpy_s(name, json_string_value(json_object_get(body, "user")), sizeof(name));
	json_decref(body);
	if (store_begin(r->st) < 0)
		return http_internal(r, "managers begin");
	if (store_auth_user_by_name(r->st, name, &u, &found) < 0)
		return http_internal_rollback(r, "managers user");
	if (!found) {
		/* The group is checked first: a missing group is the bigger mistake. */
		if (store_userlist_managers(r->st, group, stop_at_first, NULL, &found) < 0)
			return http_internal_rollback(r, "managers group");
		store_rollback(r->st);
		if (!found)
			return no_group(r, group);
		return http_error(r, MHD_HTTP_UNPROCESSABLE_CONTENT, "invalid_value", "user",
				  "no such user");
	}
	if (store_userlist_manager_add(r->st, group, u.id, &found, &added) < 0)
		return http_internal_rollback(r, "managers add");
	if (!found || !added) {
		store_rollback(r->st);
		if (!found)
			return no_group(r, group);
		return http_error(r, MHD_HTTP_CONFLICT, "duplicate", "user",
				  "%s already manages %s", u.name, group);
	}
	after = json_pack("{s:I, s:s}", "id", (json_int_t)u.id, "name", u.name);
	return http_audit_commit_reply(r, "dir_group.manager_add", "dir_group", group, NULL,
				       after, MHD_HTTP_CREATED, "managers add");
}

enum MHD_Result http_group_managers_delete(struct http_req *r)
{
	static const char *const args[] = { NULL };
	struct store_user u;
	json_t *before;
	char group[330], name[80];
	int found, removed;

	if (http_args_allow(r, args) < 0)
		return http_fail_reply(r);
	if (path_group(r, group, sizeof(group)) < 0)
		return http_fail_reply(r);
	if (path_text(r, 1, name, sizeof(name)) < 0)
		return http_error(r, MHD_HTTP_NOT_FOUND, "not_found", NULL, "no such manager");
	if (store_begin(r->st) < 0)
		return http_internal(r, "managers begin");
	if (store_auth_user_by_name(r->st, name, &u, &found) < 0)
		return http_internal_rollback(r, "managers user");
	if (store_userlist_manager_remove(r->st, group, found ? u.id : 0, &found, &removed) < 0)
		return http_internal_rollback(r, "managers delete");
	if (!found || !removed) {
		store_rollback(r->st);
		if (!found)
			return no_group(r, group);
		return http_error(r, MHD_HTTP_NOT_FOUND, "not_found", NULL,
				  "%s does not manage %s", name, group);
	}
	before = json_pack("{s:I, s:s}", "id", (json_int_t)u.id, "name", u.name);
	return http_audit_commit_reply(r, "dir_group.manager_remove", "dir_group", group, before,
				       NULL, MHD_HTTP_NO_CONTENT, "managers delete");
}
