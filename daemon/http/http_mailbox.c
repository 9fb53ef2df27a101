/*
 * http_mailbox: per-user mailbox rules (docs/mailbox-rules.md) under three
 * bases that share this one handler set:
 *   /api/v1/account/rules                        the caller's own set
 *   /api/v1/users/{id}/rules                      administrators, for a user
 *   /api/v1/directory/groups/{address}/rules      administrators and the
 *                                                 group's managers
 * The scope is checked here, first: a base outside the caller's scope is
 * 404 (as if it did not exist), and a rule id is looked up only within the
 * resolved set, so another set's ids are 404 too.  The operations are
 * policy_mbrules' (the same `moatd mailbox-rules` calls); this file only
 * parses, resolves the owner and formats.  Import, order and bulk bodies
 * are bounded by rules_max_body (route flag HTTP_R_BIG_BODY), the others by
 * http_max_body.
 */
#include "http_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../conf/conf.h"
#include "../policy/policy_mbapply.h"
#include "../policy/policy_mbrules.h"
#include "../quarantine/quarantine_admin.h"
#include "../rules/rules.h"
#include "../store/store_mailbox.h"

#define TEST_MESSAGE_MAX (1024 * 1024) /* octets of a pasted message for the dry run */
#define TEST_SPOOL_SLACK (64 * 1024)   /* trace fields added to a spooled message */

struct scope {
	struct policy_mbrules_owner o;
	char label[400];
	char address[320];          /* the owner's address, for the dry run */
	size_t rid_param;           /* index of {rid} among the path parameters */
};

/* Resolve the base of r->route into an owner; -1 fills r->fail (404) or *internal. */
static int scope_of(struct http_req *r, struct scope *sc, int *internal)
{
	const char *pat = r->route->pattern;
	const struct conf *cf = r->h->conf;

	*internal = 0;
	memset(sc, 0, sizeof(*sc));
	sc->o.rules_max = cf->mailbox_rules_max;
	sc->o.value_max = cf->mailbox_rule_value_max;
	sc->o.total_bytes = cf->mailbox_rules_total_bytes;
	sc->o.label = sc->label;
	if (strncmp(pat, "/api/v1/account/", 16) == 0) {
		sc->o.user_id = r->auth.user_id;
		snprintf(sc->label, sizeof(sc->label), "user %s", r->auth.user);
		sc->rid_param = 0;
	} else if (strncmp(pat, "/api/v1/users/", 14) == 0) {
		int64_t uid;
		int yes = 0;

		sc->rid_param = 1;
		if (!r->auth.admin || http_param_id(r, 0, &uid) < 0)
			return http_not_found(r, "user");
		if (store_mailbox_user_exists(r->st, uid, &yes) < 0) {
			*internal = 1;
			return -1;
		}
		if (!yes)
			return http_not_found(r, "user");
		sc->o.user_id = uid;
		snprintf(sc->label, sizeof(sc->label), "user id %lld", (long long)uid);
	} else {
		char addr[320];
		int64_t gid = 0;
		int yes = 0;
		size_t i;

		sc->rid_param = 1;
		if (r->nparams < 1 || r->params[0].len == 0 || r->params[0].len >= sizeof(addr))
			return http_not_found(r, "group");
		for (i = 0; i < r->params[0].len; i++)
			addr[i] = (char)((r->params[0].p[i] >= 'A' && r->params[0].p[i] <= 'Z') ?
					 r->params[0].p[i] + 32 : r->params[0].p[i]);
		addr[i] = '\0';
		if (store_mailbox_group_find(r->st, addr, &gid) < 0 ||
		    (gid > 0 && !r->auth.admin &&
		     store_mailbox_is_manager(r->st, gid, r->auth.user_id, &yes) < 0)) {
			*internal = 1;
			return -1;
		}
		if (gid == 0 || (!r->auth.admin && !yes))
			return http_not_found(r, "group");
		sc->o.group_id = gid;
		snprintf(sc->label, sizeof(sc->label), "group %s", addr);
		strlcpy_s(sc->address, addr, sizeof(sc->address));
	}
	if (sc->o.user_id > 0 &&
	    store_mailbox_primary_address(r->st, sc->o.user_id, sc->address,
					  sizeof(sc->address)) < 0) {
		*internal = 1;
		return -1;
	}
	return 0;
}

#define SCOPE(r, sc)                                                                    \
	do {                                                                            \
		int internal_;                                                          \
		if (scope_of((r), (sc), &internal_) < 0)                                \
			return internal_ ? http_internal((r), "mailbox rules scope") :  \
					   http_fail_reply(r);                          \
	} while (0)

static void actor_of(struct http_req *r, struct policy_rules_actor *a)
{
	a->user_id = r->auth.user_id;
	a->name = r->auth.user[0] ? r->auth.user : "-";
	a->via = r->auth.via == HTTP_VIA_TOKEN ? "token" :
		 r->auth.via == HTTP_VIA_SESSION ? "session" : "anonymous";
	a->client_addr = r->client_addr;
}

static enum MHD_Result fail(struct http_req *r, const struct policy_rules_err *e)
{
	if (e->status == 500)
		return http_internal(r, e->message);
	return http_error(r, (unsigned)e->status, e->code, e->field[0] ? e->field : NULL, "%s",
			  e->message);
}

static int body_object(struct http_req *r, json_t **out)
{
	return http_json_parse(r->body.data ? r->body.data : "", r->body.len, out, &r->fail);
}

static int no_args(struct http_req *r)
{
	static const char *const args[] = { NULL };

	return http_args_allow(r, args);
}

static int rid_of(struct http_req *r, const struct scope *sc, int64_t *rid)
{
	if (http_param_id(r, sc->rid_param, rid) < 0)
		return http_not_found(r, "rule");
	return 0;
}

/* Only the keys in allowed (NULL-terminated); else 422 naming the key. */
static int only_keys(struct http_req *r, const json_t *body, const char *const *allowed,
		     enum MHD_Result *ret)
{
	const char *key;
	json_t *v;
	size_t i;

	json_object_foreach((json_t *)body, key, v) {
		for (i = 0; allowed[i] != NULL; i++)
			if (strcmp(key, allowed[i]) == 0)
				break;
		if (allowed[i] == NULL) {
			*ret = http_error(r, MHD_HTTP_UNPROCESSABLE_CONTENT, "unknown_field", key,
					  "unknown field %.100s", key);
			return -1;
		}
	}
	return 0;
}

enum MHD_Result http_mailbox_list(struct http_req *r)
{
	static const char *const args[] = { "q", "enabled", "limit", "cursor", NULL };
	static const char *const bools[] = { "false", "true", NULL };
	struct policy_mbrules_query q = { NULL, -1, 0, 0 };
	struct policy_rules_err e;
	struct scope sc;
	const char *cur = NULL;
	json_t *out;
	int enabled;

	SCOPE(r, &sc);
	if (http_args_allow(r, args) < 0 || http_arg_pick(r, "enabled", bools, &enabled) < 0 ||
	    http_arg_str(r, "q", RULES_VALUE_MAX, &q.q) < 0 ||
	    http_arg_i64(r, "limit", 1, r->h->conf->mailbox_rules_max, 0, &q.limit) < 0 ||
	    http_arg_str(r, "cursor", 20, &cur) < 0)
		return http_fail_reply(r);
	q.enabled = enabled;
	if (cur != NULL && http_parse_i64(cur, strlen(cur), 0, INT64_MAX, &q.cursor) < 0)
		return http_error(r, MHD_HTTP_UNPROCESSABLE_CONTENT, "invalid_value", "cursor",
				  "cursor: use next_cursor of the previous page");
	out = policy_mbrules_list(r->st, &sc.o, &q, &e);
	if (out == NULL)
		return fail(r, &e);
	return http_reply(r, MHD_HTTP_OK, out);
}

enum MHD_Result http_mailbox_show(struct http_req *r)
{
	struct policy_rules_err e;
	struct scope sc;
	int64_t rid;
	json_t *o;

	SCOPE(r, &sc);
	if (no_args(r) < 0 || rid_of(r, &sc, &rid) < 0)
		return http_fail_reply(r);
	o = policy_mbrules_get(r->st, &sc.o, rid, &e);
	if (o == NULL)
		return fail(r, &e);
	return http_reply(r, MHD_HTTP_OK, o);
}

enum MHD_Result http_mailbox_create(struct http_req *r)
{
	struct policy_rules_actor a;
	struct policy_rules_err e;
	struct scope sc;
	json_t *body, *o;

	SCOPE(r, &sc);
	if (no_args(r) < 0 || body_object(r, &body) < 0)
		return http_fail_reply(r);
	actor_of(r, &a);
	o = policy_mbrules_create(r->st, &sc.o, body, &a, &e);
	json_decref(body);
	if (o == NULL)
		return fail(r, &e);
	return http_reply(r, MHD_HTTP_CREATED, o);
}

enum MHD_Result http_mailbox_replace(struct http_req *r)
{
	struct policy_rules_actor a;
	struct policy_rules_err e;
	struct scope sc;
	json_t *body, *o;
	int64_t rid;

	SCOPE(r, &sc);
	if (no_args(r) < 0 || rid_of(r, &sc, &rid) < 0 || body_object(r, &body) < 0)
		return http_fail_reply(r);
	actor_of(r, &a);
	o = policy_mbrules_replace(r->st, &sc.o, rid, body, &a, &e);
	json_decref(body);
	if (o == NULL)
		return fail(r, &e);
	return http_reply(r, MHD_HTTP_OK, o);
}

enum MHD_Result http_mailbox_patch(struct http_req *r)
{
	struct policy_rules_actor a;
	struct policy_rules_err e;
	struct scope sc;
	json_t *body, *o;
	int64_t rid;

	SCOPE(r, &sc);
	if (no_args(r) < 0 || rid_of(r, &sc, &rid) < 0 || body_object(r, &body) < 0)
		return http_fail_reply(r);
	actor_of(r, &a);
	o = policy_mbrules_patch(r->st, &sc.o, rid, body, &a, &e);
	json_decref(body);
	if (o == NULL)
		return fail(r, &e);
	return http_reply(r, MHD_HTTP_OK, o);
}

enum MHD_Result http_mailbox_delete(struct http_req *r)
{
	struct policy_rules_actor a;
	struct policy_rules_err e;
	struct scope sc;
	int64_t rid;

	SCOPE(r, &sc);
	if (no_args(r) < 0 || rid_of(r, &sc, &rid) < 0)
		return http_fail_reply(r);
	actor_of(r, &a);
	if (policy_mbrules_delete(r->st, &sc.o, rid, &a, &e) < 0)
		return fail(r, &e);
	return http_reply(r, MHD_HTTP_NO_CONTENT, NULL);
}

enum MHD_Result http_mailbox_duplicate(struct http_req *r)
{
	struct policy_rules_actor a;
	struct policy_rules_err e;
	struct scope sc;
	int64_t rid;
	json_t *o;

	SCOPE(r, &sc);
	if (no_args(r) < 0 || rid_of(r, &sc, &rid) < 0)
		return http_fail_reply(r);
	actor_of(r, &a);
	o = policy_mbrules_duplicate(r->st, &sc.o, rid, &a, &e);
	if (o == NULL)
		return fail(r, &e);
	return http_reply(r, MHD_HTTP_CREATED, o);
}

enum MHD_Result http_mailbox_order(struct http_req *r)
{
	static const char *const keys[] = { "ids", NULL };
	struct policy_rules_actor a;
	struct policy_rules_err e;
	struct scope sc;
	enum MHD_Result ret;
	json_t *body, *items;

	SCOPE(r, &sc);
	if (no_args(r) < 0 || body_object(r, &body) < 0)
		return http_fail_reply(r);
	if (only_keys(r, body, keys, &ret) < 0) {
		json_decref(body);
		return ret;
	}
	actor_of(r, &a);
	items = policy_mbrules_order(r->st, &sc.o, json_object_get(body, "ids"), &a, &e);
	json_decref(body);
	if (items == NULL)
		return fail(r, &e);
	return http_reply(r, MHD_HTTP_OK, items);
}

enum MHD_Result http_mailbox_bulk(struct http_req *r)
{
	static const char *const keys[] = { "ids", "op", NULL };
	struct policy_rules_actor a;
	struct policy_rules_err e;
	struct scope sc;
	enum MHD_Result ret;
	json_t *body, *out;
	const char *op;

	SCOPE(r, &sc);
	if (no_args(r) < 0 || body_object(r, &body) < 0)
		return http_fail_reply(r);
	if (only_keys(r, body, keys, &ret) < 0) {
		json_decref(body);
		return ret;
	}
	op = json_string_value(json_object_get(body, "op"));
	if (op == NULL) {
		json_decref(body);
		return http_error(r, MHD_HTTP_UNPROCESSABLE_CONTENT, "invalid_value", "op",
				  "op: enable, disable or delete");
	}
	actor_of(r, &a);
	out = policy_mbrules_bulk(r->st, &sc.o, json_object_get(body, "ids"), op, &a, &e);
	json_decref(body);
	if (out == NULL)
		return fail(r, &e);
	return http_reply(r, MHD_HTTP_OK, out);
}

enum MHD_Result http_mailbox_export(struct http_req *r)
{
	struct policy_rules_err e;
	struct scope sc;
	json_t *arr;

	SCOPE(r, &sc);
	if (no_args(r) < 0)
		return http_fail_reply(r);
	arr = policy_mbrules_export(r->st, &sc.o, &e);
	if (arr == NULL)
		return fail(r, &e);
	return http_reply(r, MHD_HTTP_OK, arr);
}

enum MHD_Result http_mailbox_import(struct http_req *r)
{
	static const char *const keys[] = { "rules", "mode", NULL };
	struct policy_rules_actor a;
	struct policy_rules_err e;
	struct scope sc;
	enum MHD_Result ret;
	json_t *body, *out, *mode;
	int append = 0;

	SCOPE(r, &sc);
	if (no_args(r) < 0 || body_object(r, &body) < 0)
		return http_fail_reply(r);
	if (only_keys(r, body, keys, &ret) < 0) {
		json_decref(body);
		return ret;
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
	out = policy_mbrules_import(r->st, &sc.o, json_object_get(body, "rules"), append, &a, &e);
	json_decref(body);
	if (out == NULL)
		return fail(r, &e);
	return http_reply(r, MHD_HTTP_OK, out);
}

enum MHD_Result http_mailbox_test(struct http_req *r)
{
	static const char *const keys[] = { "message", "message_log_id", "address", NULL };
	struct policy_rules_err e;
	struct scope sc;
	enum MHD_Result ret;
	json_t *body, *out, *m, *lid, *ad;
	const char *addr, *text;
	char *logged = NULL;
	char logged_rcpt[320];
	int64_t log_id = 0;
	size_t len;

	SCOPE(r, &sc);
	if (no_args(r) < 0 || body_object(r, &body) < 0)
		return http_fail_reply(r);
	if (only_keys(r, body, keys, &ret) < 0) {
		json_decref(body);
		return ret;
	}
	m = json_object_get(body, "message");
	lid = json_object_get(body, "message_log_id");
	if ((m == NULL) == (lid == NULL)) {
		json_decref(body);
		return http_error(r, MHD_HTTP_UNPROCESSABLE_CONTENT, "invalid_value", "message",
				  "message: give either the raw message or message_log_id "
				  "(one of your recent messages)");
	}
	addr = sc.address[0] ? sc.address : "postmaster@localhost";
	if (lid != NULL) {
		if (!json_is_integer(lid) || json_integer_value(lid) < 1) {
			json_decref(body);
			return http_error(r, MHD_HTTP_UNPROCESSABLE_CONTENT, "invalid_value",
					  "message_log_id",
					  "message_log_id: the id of a message-log row (an integer >= 1)");
		}
		log_id = json_integer_value(lid);
		logged = policy_mbrules_log_message(r->st, r->h->conf->data_dir,
						    (size_t)r->h->conf->max_message_size +
							    TEST_SPOOL_SLACK,
						    &sc.o, log_id, logged_rcpt,
						    sizeof(logged_rcpt), &len, &e);
		if (logged == NULL) {
			json_decref(body);
			return fail(r, &e);
		}
		text = logged;
		/* the owner's address the message was sent to */
		addr = logged_rcpt;
	} else {
		if (!json_is_string(m) || json_string_length(m) == 0 ||
		    json_string_length(m) > TEST_MESSAGE_MAX) {
			json_decref(body);
			return http_error(r, MHD_HTTP_UNPROCESSABLE_CONTENT, "invalid_value",
					  "message",
					  "message: the raw message (RFC 5322), 1 to %d octets",
					  TEST_MESSAGE_MAX);
		}
		text = json_string_value(m);
		len = json_string_length(m);
	}
	ad = json_object_get(body, "address");
	if (ad != NULL) {
		if (!json_is_string(ad) || json_string_length(ad) == 0 ||
		    json_string_length(ad) > 254) {
			json_decref(body);
			free(logged);
			return http_error(r, MHD_HTTP_UNPROCESSABLE_CONTENT, "invalid_value",
					  "address", "address: a recipient address");
		}
		addr = json_string_value(ad);
	}
	out = policy_mbrules_test(r->st, &sc.o, addr, text, len, &e);
	json_decref(body);
	free(logged);
	if (out == NULL)
		return fail(r, &e);
	if (log_id > 0)
		json_object_set_new(out, "message_log_id", json_integer(log_id));
	return http_reply(r, MHD_HTTP_OK, out);
}

/*
 * POST {base}/apply-quarantine: the set over its owner's quarantined items
 * now (policy_mbapply.h), on this HTTP thread.
 */
enum MHD_Result http_mailbox_apply_quarantine(struct http_req *r)
{
	struct policy_mbapply_owner ow;
	struct policy_mbapply_result res;
	struct quarantine_actor actor;
	struct scope sc;
	char err[400];
	int status = 0;

	SCOPE(r, &sc);
	if (no_args(r) < 0)
		return http_fail_reply(r);
	memset(&ow, 0, sizeof(ow));
	ow.user_id = sc.o.user_id;
	ow.group_id = sc.o.group_id;
	ow.group_address = sc.address;
	/* The caller's quarantine scope: an administrator sees every item (a
	 * user's set still only touches that user's addresses). */
	if (sc.o.group_id > 0)
		ow.scope_user_id = r->auth.admin ? 0 : r->auth.user_id;
	else
		ow.scope_user_id = sc.o.user_id;
	memset(&actor, 0, sizeof(actor));
	actor.user_id = r->auth.user_id;
	actor.admin = r->auth.admin;
	actor.name = r->auth.user[0] != '\0' ? r->auth.user : "-";
	actor.via = r->auth.via == HTTP_VIA_TOKEN ? "token" : "session";
	actor.client_addr = r->client_addr;
	actor.sender_list_max = r->h->conf->user_sender_list_max;
	if (policy_mbox_apply_quarantine(r->st, r->h->conf->data_dir, &ow, &actor, &res, &status,
					 err, sizeof(err)) < 0) {
		if (status == 503) {
			r->retry_after = 1;
			return http_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "busy", NULL, "%s", err);
		}
		if (status == 409)
			return http_error(r, MHD_HTTP_CONFLICT, "conflict", NULL, "%s; try again",
					  err);
		return http_internal(r, "mailbox rules apply to quarantine");
	}
	return http_reply(r, MHD_HTTP_OK,
			  json_pack("{s:i, s:i, s:i, s:i, s:b}", "released", res.released,
				    "deleted", res.deleted, "kept", res.kept, "examined",
				    res.examined, "more", res.more));
}

/* The owner at r's base for http_sieve.c; label (the audit name) is the caller's. */
int http_mailbox_scope(struct http_req *r, struct policy_mbrules_owner *o, char *label,
		       size_t labelsz, int *internal)
{
	struct scope sc;

	if (scope_of(r, &sc, internal) < 0)
		return -1;
	*o = sc.o;
	strlcpy_s(label, sc.label, labelsz);
	o->label = label;
	return 0;
}
