/*
 * http_score: the score thresholds (docs/score.md "Thresholds").
 *
 *   GET    /api/v1/score/thresholds                 admin: global values and every row
 *   PUT    /api/v1/score/thresholds/{scope}/{name}  admin: set a domain's or user's row
 *   DELETE /api/v1/score/thresholds/{scope}/{name}  admin: remove it (inherit again)
 *   GET    /api/v1/account/score                    the caller's effective thresholds
 *   PUT    /api/v1/account/score                    the caller's own tag and quarantine
 *
 * A body holds tag, quarantine, refuse and greylist, each a number or null
 * (inherit); a PUT replaces the row.  The checks (range, order tag <=
 * quarantine <= refuse after inheritance, the user exists) are
 * policy_score_set()'s, shared with `moatd score thresholds`; a refusal is
 * 422 naming the field.  An end user sets only tag and quarantine of their
 * own row: refusing mail (refuse) and greylisting stay the administrator's,
 * and the user's PUT keeps whatever the administrator set for them.  Every
 * change is audited in its transaction and applies from the next message.
 */
#include "http_internal.h"

#include <stdio.h>
#include <string.h>

#include "../policy/policy_score.h"
#include "../store/store.h"

static const char *const value_fields[4] = { "tag", "quarantine", "refuse", "greylist" };
static const unsigned value_bits[4] = { SCORE_T_TAG, SCORE_T_QUARANTINE, SCORE_T_REFUSE,
					SCORE_T_GREYLIST };

static double *value_at(struct score_thresholds *t, int i)
{
	return i == 0 ? &t->tag : i == 1 ? &t->quarantine : i == 2 ? &t->refuse : &t->greylist;
}

/*
 * The body's values into o: only the first nallowed of value_fields may
 * appear; each a number or null.  0, or -1 with r->fail.
 */
static int body_override(struct http_req *r, int nallowed, struct score_override *o)
{
	struct http_fail *f = &r->fail;
	json_t *body, *v;
	const char *key;
	int i;

	memset(o, 0, sizeof(*o));
	if (http_json_parse(r->body.data ? r->body.data : "", r->body.len, &body, f) < 0)
		return -1;
	json_object_foreach(body, key, v) {
		for (i = 0; i < nallowed; i++)
			if (strcmp(key, value_fields[i]) == 0)
				break;
		if (i == nallowed) {
			f->status = 422;
			f->code = "unknown_field";
			snprintf(f->field, sizeof(f->field), "%.79s", key);
			snprintf(f->message, sizeof(f->message), "unknown field %.150s", key);
			json_decref(body);
			return -1;
		}
		if (json_is_null(v))
			continue;
		if (!json_is_number(v)) {
			f->status = 422;
			f->code = "invalid_type";
			strlcpy_s(f->field, key, sizeof(f->field));
			snprintf(f->message, sizeof(f->message), "%s must be a number or null", key);
			json_decref(body);
			return -1;
		}
		*value_at(&o->v, i) = json_number_value(v);
		o->set |= value_bits[i];
	}
	json_decref(body);
	return 0;
}

/* The path's {scope} and {name} into scope and name; -1 (404) when unusable. */
static int path_row(struct http_req *r, char *scope, size_t scopesz, char *name, size_t namesz)
{
	if (r->nparams != 2 || r->params[0].len >= scopesz || r->params[1].len >= namesz ||
	    r->params[1].len == 0)
		return http_not_found(r, "threshold row");
	memcpy(scope, r->params[0].p, r->params[0].len);
	scope[r->params[0].len] = '\0';
	memcpy(name, r->params[1].p, r->params[1].len);
	name[r->params[1].len] = '\0';
	if (policy_score_scope(scope) < 0 || memchr(name, '\0', r->params[1].len) != NULL)
		return http_not_found(r, "threshold row");
	return 0;
}

/* Answer a refused write (the transaction is open). */
static enum MHD_Result write_failed(struct http_req *r, const struct policy_score_fail *f,
				    const char *what)
{
	if (f->kind == POLICY_SCORE_STORE)
		return http_internal_rollback(r, what);
	store_rollback(r->st);
	if (f->kind == POLICY_SCORE_NO_SUCH)
		return http_error(r, MHD_HTTP_NOT_FOUND, "not_found", f->field[0] ? f->field : NULL,
				  "%s", f->message);
	return http_error(r, MHD_HTTP_UNPROCESSABLE_CONTENT, "invalid_value", f->field, "%s",
			  f->message);
}

enum MHD_Result http_score_thresholds_list(struct http_req *r)
{
	static const char *const args[] = { NULL };
	json_t *o;

	if (http_args_allow(r, args) < 0)
		return http_fail_reply(r);
	o = policy_score_list_json(r->st);
	if (o == NULL)
		return http_internal(r, "score thresholds");
	return http_reply(r, MHD_HTTP_OK, o);
}

/* Set (scope, name) to o, audited as action; status 200 with the row. */
static enum MHD_Result put_row(struct http_req *r, const char *scope, const char *name,
			       const struct score_override *o, const char *action)
{
	struct policy_score_fail f;
	json_t *before, *after;
	char oid[400];

	if (store_begin(r->st) < 0)
		return http_internal(r, "score thresholds begin");
	if (policy_score_set(r->st, scope, name, o, &before, &after, &f) < 0)
		return write_failed(r, &f, "score thresholds set");
	snprintf(oid, sizeof(oid), "%s/%s", scope,
		 json_string_value(json_object_get(after, "name")));
	return http_audit_commit_reply(r, action, "score_threshold", oid, before, after,
				       MHD_HTTP_OK, "score thresholds set");
}

enum MHD_Result http_score_thresholds_put(struct http_req *r)
{
	static const char *const args[] = { NULL };
	struct score_override o;
	char scope[16], name[321];

	if (path_row(r, scope, sizeof(scope), name, sizeof(name)) < 0 ||
	    http_args_allow(r, args) < 0 || body_override(r, 4, &o) < 0)
		return http_fail_reply(r);
	return put_row(r, scope, name, &o, "score_threshold.set");
}

enum MHD_Result http_score_thresholds_delete(struct http_req *r)
{
	static const char *const args[] = { NULL };
	struct policy_score_fail f;
	json_t *before;
	char scope[16], name[321], oid[400];

	if (path_row(r, scope, sizeof(scope), name, sizeof(name)) < 0 ||
	    http_args_allow(r, args) < 0)
		return http_fail_reply(r);
	if (store_begin(r->st) < 0)
		return http_internal(r, "score thresholds begin");
	if (policy_score_delete(r->st, scope, name, &before, &f) < 0)
		return write_failed(r, &f, "score thresholds delete");
	snprintf(oid, sizeof(oid), "%s/%s", scope,
		 json_string_value(json_object_get(before, "name")));
	return http_audit_commit_reply(r, "score_threshold.delete", "score_threshold", oid, before,
				       NULL, MHD_HTTP_NO_CONTENT, "score thresholds delete");
}

enum MHD_Result http_account_score_show(struct http_req *r)
{
	static const char *const args[] = { NULL };
	struct policy_score_fail f;
	json_t *o;

	if (http_args_allow(r, args) < 0)
		return http_fail_reply(r);
	o = policy_score_user_json(r->st, r->auth.user, &f);
	if (o == NULL && f.kind == POLICY_SCORE_STORE)
		return http_internal(r, "account score");
	if (o == NULL)
		return http_error(r, MHD_HTTP_NOT_FOUND, "not_found", NULL, "no such user");
	return http_reply(r, MHD_HTTP_OK, o);
}

/*
 * The caller's tag and quarantine; the row's refuse and greylist (the
 * administrator's) are kept.  Read and written in one transaction.
 */
enum MHD_Result http_account_score_put(struct http_req *r)
{
	static const char *const args[] = { NULL };
	struct policy_score_fail f;
	struct score_override o;
	json_t *cur, *own, *before, *after;
	char oid[400];
	int i, rc;

	if (http_args_allow(r, args) < 0 || body_override(r, 2, &o) < 0)
		return http_fail_reply(r);
	if (store_begin(r->st) < 0)
		return http_internal(r, "account score begin");
	cur = policy_score_user_json(r->st, r->auth.user, &f);
	if (cur == NULL) {
		if (f.kind == POLICY_SCORE_STORE)
			return http_internal_rollback(r, "account score");
		store_rollback(r->st);
		return http_error(r, MHD_HTTP_NOT_FOUND, "not_found", NULL, "no such user");
	}
	own = json_object_get(cur, "own");
	for (i = 2; i < 4 && json_is_object(own); i++) {
		json_t *v = json_object_get(own, value_fields[i]);

		if (json_is_number(v)) {
			*value_at(&o.v, i) = json_number_value(v);
			o.set |= value_bits[i];
		}
	}
	json_decref(cur);
	if (policy_score_set(r->st, "user", r->auth.user, &o, &before, &after, &f) < 0)
		return write_failed(r, &f, "account score set");
	snprintf(oid, sizeof(oid), "user/%s", r->auth.user);
	/* The audit keeps the row; the caller gets what now applies to them. */
	rc = http_audit(r, "score_threshold.set", "score_threshold", oid, before, after);
	json_decref(before);
	json_decref(after);
	cur = rc < 0 ? NULL : policy_score_user_json(r->st, r->auth.user, &f);
	if (cur == NULL || store_commit(r->st) < 0) {
		json_decref(cur);
		return http_internal_rollback(r, "account score set");
	}
	return http_reply(r, MHD_HTTP_OK, cur);
}
