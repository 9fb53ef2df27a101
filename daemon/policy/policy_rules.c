/*
 * policy_rules: see policy_rules.h.  All SQL is in store_rules.c,
 * store_policy.c and store_auth.c; the audit row goes through
 * store_auth_audit_add() inside the same transaction as the rows it
 * describes.  A stored definition is the rule as rules_def_to_json()
 * writes it back (defaults filled in), so that an export re-imports to the
 * same set.
 */
#include "policy_rules.h"
#include "../rules/rules.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../mime/mime.h"
#include "policy_internal.h"
#include "../spool/spool_read.h"
#include "../store/store.h"
#include "../store/store_auth.h"
#include "../store/store_policy.h"
#include "../store/store_rules.h"
#include "../util/util.h"

#define TEST_LAST_MAX 100          /* messages one dry run over the queue reads */
#define TEST_RCPTS_MAX 1000        /* recipients one dry run takes */
#define TEST_STR_MAX 1000          /* octets of an envelope string in a dry run */
#define TEST_PARTS_MAX 64          /* named score parts one dry run takes */
#define SPOOL_SLACK (64 * 1024)    /* trace headers added to a spooled message */

void *policy_rules_fail(struct policy_rules_err *e, int status, const char *code,
			const char *field, const char *fmt, ...)
{
	va_list ap;

	e->status = status;
	strlcpy_s(e->code, code, sizeof(e->code));
	strlcpy_s(e->field, field ? field : "", sizeof(e->field));
	va_start(ap, fmt);
	vsnprintf(e->message, sizeof(e->message), fmt, ap);
	va_end(ap);
	return NULL;
}

void *policy_rules_internal(struct policy_rules_err *e, struct store *st, const char *what)
{
	return policy_rules_fail(e, 500, "internal", NULL, "%s: %s", what, store_auth_errmsg(st));
}

void *policy_rules_internal_rollback(struct policy_rules_err *e, struct store *st,
				      const char *what)
{
	policy_rules_internal(e, st, what);
	store_rollback(st);
	return NULL;
}

/*
 * A model error "rules[3].when.all[1].value: invalid ...": the field is the
 * path before the first ": ".  prefix/with rename the first path element
 * (a rule compiled alone is "rules[0]", shown as "rule").
 */
void *policy_rules_model_err(struct policy_rules_err *e, const char *msg, const char *prefix,
			     const char *with)
{
	char buf[600];
	const char *colon;
	size_t plen = prefix ? strlen(prefix) : 0;

	if (prefix != NULL && strncmp(msg, prefix, plen) == 0)
		snprintf(buf, sizeof(buf), "%s%s", with, msg + plen);
	else
		strlcpy_s(buf, msg, sizeof(buf));
	e->status = 422;
	strlcpy_s(e->code, strstr(buf, "unknown key") ? "unknown_field" : "invalid_rule",
		  sizeof(e->code));
	strlcpy_s(e->message, buf, sizeof(e->message));
	colon = strstr(buf, ": ");
	if (colon != NULL && (size_t)(colon - buf) < sizeof(e->field)) {
		memcpy(e->field, buf, (size_t)(colon - buf));
		e->field[colon - buf] = '\0';
	} else {
		strlcpy_s(e->field, "rules", sizeof(e->field));
	}
	return NULL;
}

void policy_rules_fill_defaults(json_t *o)
{
	if (json_object_get(o, "except") == NULL)
		json_object_set_new(o, "except", json_null());
	if (json_object_get(o, "comment") == NULL || json_is_null(json_object_get(o, "comment")))
		json_object_set_new(o, "comment", json_string(""));
}

json_t *policy_rules_normalise(const json_t *obj, const struct rules_parse_opts *po,
			       struct policy_rules_err *e)
{
	static const struct rules_parse_opts server = { RULES_KIND_SERVER, 0, false, NULL, NULL };
	struct rules_def *d = NULL;
	struct rules_set *rs;
	json_t *arr, *out;
	char err[600];

	if (po == NULL)
		po = &server;
	if (rules_def_check_one_opts(obj, po, err, sizeof(err)) < 0)
		return policy_rules_model_err(e, err, NULL, NULL);
	arr = json_array();
	json_array_append(arr, (json_t *)obj);
	if (rules_def_from_json_opts(arr, po, &d, err, sizeof(err)) < 0) {
		json_decref(arr);
		return policy_rules_model_err(e, err, "rules[0]", "rule");
	}
	json_decref(arr);
	rs = rules_compile(d, err, sizeof(err));
	if (rs == NULL) {
		rules_def_free(d);
		return policy_rules_model_err(e, err, "rules[0]", "rule");
	}
	rules_set_free(rs);
	arr = rules_def_to_json(d);
	rules_def_free(d);
	out = json_incref(json_array_get(arr, 0));
	json_decref(arr);
	policy_rules_fill_defaults(out);
	return out;
}

/* ---- reading ---- */

static json_t *definition(const struct store_rule *r)
{
	json_t *o = json_loads(r->definition, 0, NULL);

	if (!json_is_object(o)) {
		json_decref(o);
		o = json_object();
	}
	json_object_set_new(o, "name", json_string(r->name));
	json_object_set_new(o, "enabled", json_boolean(r->enabled));
	policy_rules_fill_defaults(o);
	return o;
}

static json_t *rule_json(const struct store_rule *r)
{
	json_t *o = definition(r);

	json_object_set_new(o, "id", json_integer(r->id));
	json_object_set_new(o, "position", json_integer(r->position));
	json_object_set_new(o, "hits", json_integer(r->hits));
	json_object_set_new(o, "last_hit", r->last_hit > 0 ? json_integer(r->last_hit) : json_null());
	json_object_set_new(o, "created_at", json_integer(r->created_at));
	json_object_set_new(o, "updated_at", json_integer(r->updated_at));
	return o;
}

struct collect {
	json_t *items;
	int enabled;            /* -1 all */
	int portable;           /* definitions only */
	int64_t *ids;           /* when not NULL: ids in order */
	size_t n;
};

static int collect_cb(const struct store_rule *r, void *arg)
{
	struct collect *c = arg;

	if (c->enabled >= 0 && (r->enabled != 0) != (c->enabled != 0))
		return 0;
	json_array_append_new(c->items, c->portable ? definition(r) : rule_json(r));
	if (c->ids != NULL || c->portable == 2) {
		c->ids = xrealloc(c->ids, (c->n + 1) * sizeof(*c->ids));
		c->ids[c->n] = r->id;
	}
	c->n++;
	return 0;
}

json_t *policy_rules_list(struct store *st, int enabled, struct policy_rules_err *e)
{
	struct collect c = { json_array(), enabled, 0, NULL, 0 };

	if (store_rules_each(st, 0, collect_cb, &c) < 0) {
		json_decref(c.items);
		return policy_rules_internal(e, st, "rules list");
	}
	return c.items;
}

static int one_cb(const struct store_rule *r, void *arg)
{
	*(json_t **)arg = rule_json(r);
	return 1;
}

/* 0 and *out (NULL when there is no such rule), or -1. */
static int fetch(struct store *st, int64_t id, json_t **out)
{
	int found;

	*out = NULL;
	if (store_rule_get(st, id, one_cb, out, &found) < 0) {
		json_decref(*out);
		*out = NULL;
		return -1;
	}
	return 0;
}

json_t *policy_rules_get(struct store *st, int64_t id, struct policy_rules_err *e)
{
	json_t *o;

	if (fetch(st, id, &o) < 0)
		return policy_rules_internal(e, st, "rule");
	if (o == NULL)
		return policy_rules_fail(e, 404, "not_found", NULL, "no such rule");
	return o;
}

json_t *policy_rules_export(struct store *st, struct policy_rules_err *e)
{
	struct collect c = { json_array(), -1, 1, NULL, 0 };

	if (store_rules_each(st, 0, collect_cb, &c) < 0) {
		json_decref(c.items);
		return policy_rules_internal(e, st, "rules export");
	}
	return c.items;
}

/* ---- changing ---- */

static int audit(struct store *st, const struct policy_rules_actor *a, const char *action,
		 int64_t id, const json_t *before, const json_t *after)
{
	struct store_audit r;
	char oid[24];
	char *b = before ? json_dumps(before, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	char *af = after ? json_dumps(after, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	int rc;

	memset(&r, 0, sizeof(r));
	snprintf(oid, sizeof(oid), "%lld", (long long)id);
	r.ts = time_now_ms();
	r.actor_id = a->user_id;
	r.actor = a->name;
	r.via = a->via;
	r.client_addr = a->client_addr != NULL ? a->client_addr : "-";
	r.action = action;
	r.object_type = "rule";
	r.object_id = id > 0 ? oid : NULL;
	r.before = b;
	r.after = af;
	rc = store_auth_audit_add(st, &r);
	free(b);
	free(af);
	return rc;
}

/* Audit, commit; the result, or NULL (rolled back) with e. */
static json_t *finish(struct store *st, const struct policy_rules_actor *a, const char *action,
		      int64_t id, json_t *before, json_t *after, struct policy_rules_err *e)
{
	if (audit(st, a, action, id, before, after) < 0 || store_commit(st) < 0) {
		json_decref(before);
		json_decref(after);
		return policy_rules_internal_rollback(e, st, action);
	}
	json_decref(before);
	return after;
}

static const char *jname(const json_t *o)
{
	return json_string_value(json_object_get(o, "name"));
}

static int jenabled(const json_t *o)
{
	return json_is_true(json_object_get(o, "enabled"));
}

json_t *policy_rules_create(struct store *st, const json_t *body,
			   const struct policy_rules_actor *a, struct policy_rules_err *e)
{
	json_t *copy, *norm, *pos, *after;
	int64_t position = -1, id;
	char *def;

	if (!json_is_object(body))
		return policy_rules_fail(e, 422, "invalid_body", "rule", "rule: must be a rule object");
	copy = json_copy((json_t *)body);
	pos = json_object_get(copy, "position");
	if (pos != NULL) {
		if (!json_is_integer(pos) || json_integer_value(pos) < 0) {
			json_decref(copy);
			return policy_rules_fail(e, 422, "invalid_value", "position",
				       "position: must be an integer >= 0");
		}
		position = json_integer_value(pos);
		json_object_del(copy, "position");
	}
	norm = policy_rules_normalise(copy, NULL, e);
	json_decref(copy);
	if (norm == NULL)
		return NULL;
	def = json_dumps(norm, JSON_COMPACT);
	if (store_begin(st) < 0) {
		free(def);
		json_decref(norm);
		return policy_rules_internal(e, st, "rules begin");
	}
	if (store_rule_add(st, jname(norm), jenabled(norm), def, position, &id) < 0 ||
	    fetch(st, id, &after) < 0 || after == NULL) {
		free(def);
		json_decref(norm);
		return policy_rules_internal_rollback(e, st, "rule add");
	}
	free(def);
	json_decref(norm);
	return finish(st, a, "rule.create", id, NULL, after, e);
}

/* Write norm over rule id inside a transaction begun by the caller. */
static json_t *write_rule(struct store *st, int64_t id, json_t *before, json_t *norm,
			  const struct policy_rules_actor *a, struct policy_rules_err *e)
{
	char *def = json_dumps(norm, JSON_COMPACT);
	json_t *after;
	int found;

	if (store_rule_update(st, id, jname(norm), jenabled(norm), def, &found) < 0 ||
	    fetch(st, id, &after) < 0 || after == NULL) {
		free(def);
		json_decref(norm);
		json_decref(before);
		return policy_rules_internal_rollback(e, st, "rule update");
	}
	free(def);
	json_decref(norm);
	return finish(st, a, "rule.update", id, before, after, e);
}

/* Begin and read rule id: the rule, or NULL (nothing open) with e. */
static json_t *begin_with(struct store *st, int64_t id, struct policy_rules_err *e)
{
	json_t *before;

	if (store_begin(st) < 0)
		return policy_rules_internal(e, st, "rules begin");
	if (fetch(st, id, &before) < 0)
		return policy_rules_internal_rollback(e, st, "rule");
	if (before == NULL) {
		store_rollback(st);
		return policy_rules_fail(e, 404, "not_found", NULL, "no such rule");
	}
	return before;
}

json_t *policy_rules_replace(struct store *st, int64_t id, const json_t *body,
			    const struct policy_rules_actor *a, struct policy_rules_err *e)
{
	json_t *norm, *before;

	if (!json_is_object(body))
		return policy_rules_fail(e, 422, "invalid_body", "rule", "rule: must be a rule object");
	norm = policy_rules_normalise(body, NULL, e);
	if (norm == NULL)
		return NULL;
	before = begin_with(st, id, e);
	if (before == NULL) {
		json_decref(norm);
		return NULL;
	}
	return write_rule(st, id, before, norm, a, e);
}

json_t *policy_rules_patch(struct store *st, int64_t id, const json_t *body,
			  const struct policy_rules_actor *a, struct policy_rules_err *e)
{
	static const char *const keys[] = { "id", "position", "hits", "last_hit", "created_at",
					    "updated_at" };
	json_t *before, *merged, *norm, *v;
	const char *key;
	size_t i;

	if (!json_is_object(body))
		return policy_rules_fail(e, 422, "invalid_body", NULL, "expected a JSON object");
	json_object_foreach((json_t *)body, key, v) {
		if (strcmp(key, "enabled") != 0 && strcmp(key, "name") != 0 &&
		    strcmp(key, "comment") != 0)
			return policy_rules_fail(e, 422, "unknown_field", key,
				       "%.100s: unknown field (want enabled, name, comment)", key);
	}
	if (json_object_size(body) == 0)
		return policy_rules_fail(e, 422, "invalid_body", "enabled", "give enabled, name or comment");
	before = begin_with(st, id, e);
	if (before == NULL)
		return NULL;
	merged = json_copy(before);
	for (i = 0; i < ARRAY_LEN(keys); i++)
		json_object_del(merged, keys[i]);
	json_object_update(merged, (json_t *)body);
	norm = policy_rules_normalise(merged, NULL, e);
	json_decref(merged);
	if (norm == NULL) {
		json_decref(before);
		store_rollback(st);
		return NULL;
	}
	return write_rule(st, id, before, norm, a, e);
}

int policy_rules_delete(struct store *st, int64_t id, const struct policy_rules_actor *a,
		       struct policy_rules_err *e)
{
	json_t *before;
	int found;

	before = begin_with(st, id, e);
	if (before == NULL)
		return -1;
	if (store_rule_delete(st, id, &found) < 0) {
		json_decref(before);
		policy_rules_internal_rollback(e, st, "rule delete");
		return -1;
	}
	if (audit(st, a, "rule.delete", id, before, NULL) < 0 || store_commit(st) < 0) {
		json_decref(before);
		policy_rules_internal_rollback(e, st, "rule delete");
		return -1;
	}
	json_decref(before);
	return 0;
}

json_t *policy_rules_order(struct store *st, const json_t *ids, const struct policy_rules_actor *a,
			  struct policy_rules_err *e)
{
	struct collect c = { NULL, -1, 0, NULL, 0 };
	int64_t *v;
	size_t i, n;
	int mismatch;
	json_t *before, *after;

	if (!json_is_array(ids))
		return policy_rules_fail(e, 422, "invalid_value", "ids", "ids: must be an array of rule ids");
	n = json_array_size(ids);
	if (n > RULES_COUNT_MAX)
		return policy_rules_fail(e, 422, "invalid_value", "ids", "ids: more than %d ids",
			       RULES_COUNT_MAX);
	v = xcalloc(n ? n : 1, sizeof(*v));
	for (i = 0; i < n; i++) {
		const json_t *x = json_array_get(ids, i);

		if (!json_is_integer(x)) {
			free(v);
			return policy_rules_fail(e, 422, "invalid_value", "ids",
				       "ids[%zu]: must be a rule id", i);
		}
		v[i] = json_integer_value(x);
	}
	if (store_begin(st) < 0) {
		free(v);
		return policy_rules_internal(e, st, "rules begin");
	}
	c.items = json_array();
	c.portable = 2; /* ids only */
	if (store_rules_each(st, 0, collect_cb, &c) < 0) {
		free(v);
		free(c.ids);
		json_decref(c.items);
		return policy_rules_internal_rollback(e, st, "rules order");
	}
	json_decref(c.items);
	before = json_array();
	for (i = 0; i < c.n; i++)
		json_array_append_new(before, json_integer(c.ids[i]));
	free(c.ids);
	if (store_rules_set_order(st, v, n, &mismatch) < 0) {
		free(v);
		json_decref(before);
		return policy_rules_internal_rollback(e, st, "rules order");
	}
	free(v);
	if (mismatch) {
		json_decref(before);
		store_rollback(st);
		return policy_rules_fail(e, 422, "invalid_value", "ids",
			       "ids: must name every rule exactly once (a permutation of the "
			       "current ids)");
	}
	after = policy_rules_list(st, -1, e);
	if (after == NULL) {
		json_decref(before);
		store_rollback(st);
		return NULL;
	}
	if (audit(st, a, "rule.order", 0, before, ids) < 0 || store_commit(st) < 0) {
		json_decref(before);
		json_decref(after);
		return policy_rules_internal_rollback(e, st, "rules order");
	}
	json_decref(before);
	return after;
}

json_t *policy_rules_import(struct store *st, const json_t *rules, int append,
			   const struct policy_rules_actor *a, struct policy_rules_err *e)
{
	struct rules_def *d = NULL;
	struct rules_set *rs;
	json_t *norm, *items, *combined, *x, *before, *after;
	int64_t count = 0, id;
	size_t i;
	char err[600];

	if (rules_def_from_json(rules, &d, err, sizeof(err)) < 0)
		return policy_rules_model_err(e, err, NULL, NULL);
	rs = rules_compile(d, err, sizeof(err));
	if (rs == NULL) {
		rules_def_free(d);
		return policy_rules_model_err(e, err, NULL, NULL);
	}
	rules_set_free(rs);
	norm = rules_def_to_json(d);
	rules_def_free(d);
	if (append) {
		/* The resulting set must compile as a whole (Vectorscan limits per field). */
		combined = policy_rules_export(st, e);
		if (combined == NULL) {
			json_decref(norm);
			return NULL;
		}
		json_array_extend(combined, norm);
		if (json_array_size(combined) > RULES_COUNT_MAX ||
		    rules_def_from_json(combined, &d, err, sizeof(err)) < 0 ||
		    (rs = rules_compile(d, err, sizeof(err))) == NULL) {
			if (json_array_size(combined) > RULES_COUNT_MAX)
				snprintf(err, sizeof(err), "rules: the set would hold more than %d rules",
					 RULES_COUNT_MAX);
			rules_def_free(d);
			json_decref(combined);
			json_decref(norm);
			policy_rules_model_err(e, err, NULL, NULL);
			strlcpy_s(e->field, "rules", sizeof(e->field));
			return NULL;
		}
		rules_set_free(rs);
		rules_def_free(d);
		json_decref(combined);
	}
	if (store_begin(st) < 0) {
		json_decref(norm);
		return policy_rules_internal(e, st, "rules begin");
	}
	if (store_rules_count(st, &count) < 0 || (!append && store_rules_delete_all(st) < 0)) {
		json_decref(norm);
		return policy_rules_internal_rollback(e, st, "rules import");
	}
	json_array_foreach(norm, i, x) {
		char *def;

		policy_rules_fill_defaults(x);
		def = json_dumps(x, JSON_COMPACT);
		if (store_rule_add(st, jname(x), jenabled(x), def, -1, &id) < 0) {
			free(def);
			json_decref(norm);
			return policy_rules_internal_rollback(e, st, "rules import");
		}
		free(def);
	}
	items = policy_rules_list(st, -1, e);
	if (items == NULL) {
		json_decref(norm);
		store_rollback(st);
		return NULL;
	}
	before = json_pack("{s:I}", "count", (json_int_t)count);
	after = json_pack("{s:s, s:I}", "mode", append ? "append" : "replace", "imported",
			  (json_int_t)json_array_size(norm));
	if (audit(st, a, "rule.import", 0, before, after) < 0 || store_commit(st) < 0) {
		json_decref(before);
		json_decref(after);
		json_decref(items);
		json_decref(norm);
		return policy_rules_internal_rollback(e, st, "rules import");
	}
	json_decref(before);
	json_decref(after);
	after = json_pack("{s:I, s:o}", "imported", (json_int_t)json_array_size(norm), "items",
			  items);
	json_decref(norm);
	return after;
}

/* ---- the dry run ---- */

struct envelope {
	const char *sender;
	const char **rcpts;
	size_t nrcpts;
	const char *client_addr;
	const char *client_name;
	const char *helo;
	const char *auth_user;
	/* the score the rules see (the fields score and score_part) */
	double score;
	const char **part_names;
	double *part_values;
	size_t nparts;
};

/* A sum of decimals as JSON: rounded to 1e-6, an integer when it is one. */
static json_t *points_json(double d)
{
	double r = (double)(int64_t)(d * 1e6 + (d < 0 ? -0.5 : 0.5)) / 1e6;

	if (r == (double)(int64_t)r)
		return json_integer((json_int_t)r);
	return json_real(r);
}

static json_t *ref_json(const int64_t *ids, size_t nids, long idx, const char *name)
{
	return json_pack("{s:o, s:I, s:s}", "id",
			 ids != NULL && idx >= 0 && (size_t)idx < nids ? json_integer(ids[idx]) :
									 json_null(),
			 "index", (json_int_t)idx, "name", name ? name : "");
}

static json_t *str_array(const char **v, size_t n)
{
	json_t *a = json_array();
	size_t i;

	for (i = 0; i < n; i++)
		json_array_append_new(a, json_string(v[i]));
	return a;
}

static json_t *verdict_json(const char *rcpt, const struct rules_verdict *v, const int64_t *ids,
			    size_t nids)
{
	json_t *o = json_object();

	json_object_set_new(o, "recipient", json_string(rcpt));
	json_object_set_new(o, "action", json_string(v->action == RULES_ACT_NONE ? "deliver" :
						     rules_action_name(v->action)));
	json_object_set_new(o, "rule", v->rule >= 0 ? ref_json(ids, nids, v->rule, v->rule_name) :
						  json_null());
	if (v->action == RULES_ACT_REFUSE || v->action == RULES_ACT_DEFER) {
		json_object_set_new(o, "code", json_integer(v->code));
		json_object_set_new(o, "enhanced", json_string(v->enhanced ? v->enhanced : ""));
		json_object_set_new(o, "text", json_string(v->text ? v->text : ""));
	}
	if (v->action == RULES_ACT_REDIRECT && v->address != NULL)
		json_object_set_new(o, "address", json_string(v->address));
	json_object_set_new(o, "subject_prefixes", str_array(v->subject_prefixes,
							     v->nsubject_prefixes));
	json_object_set_new(o, "headers", str_array(v->headers, v->nheaders));
	json_object_set_new(o, "bcc", str_array(v->bcc, v->nbcc));
	json_object_set_new(o, "points", points_json(v->points));
	return o;
}

static json_t *eval_one(const struct rules_set *rs, const int64_t *ids, size_t nids,
			struct policy_snap *lists, const char *qid, const char *buf, size_t len,
			const struct envelope *env, struct policy_rules_err *e)
{
	static const struct {
		unsigned bit;
		const char *name;
	} mflags[] = {
		{ MIME_F_LIMIT, "mime_limit" },       { MIME_F_MALFORMED, "mime_malformed" },
		{ MIME_F_HTML_ONLY, "html_only" },    { MIME_F_ENCRYPTED, "encrypted" },
		{ MIME_F_8BIT_HEADERS, "8bit_headers" },
	};
	struct mime_limits lim;
	struct mime_view *view = NULL;
	struct rules_input in;
	struct rules_result res;
	const char *flags[ARRAY_LEN(mflags) + 1];
	const char *subject;
	json_t *o, *rcpts, *matched, *mf;
	size_t i, nflags = 0, pos = 0;
	char err[300];

	mime_limits_default(&lim);
	if (mime_parse(buf, len, &lim, &view, err, sizeof(err)) < 0)
		return policy_rules_fail(e, 500, "internal", NULL, "reading the message: %s", err);
	mf = json_array();
	for (i = 0; i < ARRAY_LEN(mflags); i++) {
		if (view->flags & mflags[i].bit) {
			json_array_append_new(mf, json_string(mflags[i].name));
			flags[nflags++] = mflags[i].name;
		}
	}
	if (env->auth_user != NULL)
		flags[nflags++] = "auth";
	memset(&in, 0, sizeof(in));
	in.mime = view;
	in.sender = env->sender;
	in.rcpts = env->rcpts;
	in.nrcpts = env->nrcpts;
	in.client_addr = env->client_addr;
	in.client_name = env->client_name;
	in.helo = env->helo;
	in.auth_user = env->auth_user;
	in.size = (int64_t)len;
	in.flags = flags;
	in.nflags = nflags;
	in.in_list = policy_snap_in_list_cb;
	in.in_list_arg = lists;
	in.score = env->score;
	in.score_part_names = env->part_names;
	in.score_part_values = env->part_values;
	in.nscore_parts = env->nparts;
	memset(&res, 0, sizeof(res));
	if (rules_eval(rs, &in, &res) < 0) {
		json_decref(mf);
		mime_view_free(view);
		return policy_rules_fail(e, 500, "internal", NULL, "rule evaluation failed");
	}
	rcpts = json_array();
	for (i = 0; i < res.nrcpts; i++)
		json_array_append_new(rcpts, verdict_json(env->rcpts[i], res.rcpt[i], ids, nids));
	matched = json_array();
	for (i = 0; i < res.nhits; i++)
		json_array_append_new(matched, ref_json(ids, nids, (long)res.hits[i],
							rules_set_name(rs, res.hits[i])));
	subject = mime_header_next(view, "Subject", &pos);
	o = json_pack("{s:o, s:o, s:o, s:o, s:o}", "qid", qid ? json_string(qid) : json_null(),
		      "subject", subject ? json_string(subject) : json_null(), "mime_flags", mf,
		      "recipients", rcpts, "matched", matched);
	rules_result_free(&res);
	mime_view_free(view);
	return o;
}

/*
 * The score the rules see in a dry run: "score" (a number, default 0) and
 * "score_parts" ({"BAYES": 4.2, ...}, default none).  The arrays point into
 * body; the caller frees them.
 */
static int test_score(const json_t *body, struct envelope *env, struct policy_rules_err *e)
{
	const json_t *v = json_object_get(body, "score"), *parts = json_object_get(body, "score_parts");
	const char *name;
	size_t i = 0, nl, k;

	if (v != NULL) {
		if (!json_is_number(v) || json_number_value(v) < -RULES_SCORE_VALUE_MAX ||
		    json_number_value(v) > RULES_SCORE_VALUE_MAX) {
			policy_rules_fail(e, 422, "invalid_value", "score",
					  "score: must be a number from -%d to %d",
					  RULES_SCORE_VALUE_MAX, RULES_SCORE_VALUE_MAX);
			return -1;
		}
		env->score = json_number_value(v);
	}
	if (parts == NULL)
		return 0;
	if (!json_is_object(parts) || json_object_size(parts) > TEST_PARTS_MAX) {
		policy_rules_fail(e, 422, "invalid_value", "score_parts",
				  "score_parts: must be an object of at most %d parts, name to number",
				  TEST_PARTS_MAX);
		return -1;
	}
	env->part_names = xcalloc(json_object_size(parts) + 1, sizeof(*env->part_names));
	env->part_values = xcalloc(json_object_size(parts) + 1, sizeof(*env->part_values));
	json_object_foreach((json_t *)parts, name, v) {
		nl = strlen(name);
		for (k = 0; k < nl && name[k] > ' ' && name[k] < 0x7f; k++)
			;
		if (nl == 0 || nl > RULES_PART_NAME_MAX || k != nl || !json_is_number(v) ||
		    json_number_value(v) < -RULES_SCORE_VALUE_MAX ||
		    json_number_value(v) > RULES_SCORE_VALUE_MAX) {
			policy_rules_fail(e, 422, "invalid_value", "score_parts",
					  "score_parts.%.100s: must be a part name (1 to %d printable "
					  "ASCII characters, no space) with a number", name,
					  RULES_PART_NAME_MAX);
			return -1;
		}
		env->part_names[i] = name;
		env->part_values[i] = json_number_value(v);
		i++;
	}
	env->nparts = i;
	return 0;
}

/* A string member of body, its default when absent; -1 (e) when not a bounded string. */
static int opt_str(const json_t *body, const char *key, const char *def, const char **out,
		   struct policy_rules_err *e)
{
	const json_t *v = json_object_get(body, key);

	*out = def;
	if (v == NULL || (json_is_null(v) && def == NULL))
		return 0;
	if (!json_is_string(v) || json_string_length(v) > TEST_STR_MAX ||
	    strlen(json_string_value(v)) != json_string_length(v)) {
		policy_rules_fail(e, 422, "invalid_value", key, "%s: must be a string of at most %d octets",
			key, TEST_STR_MAX);
		return -1;
	}
	*out = json_string_value(v);
	return 0;
}

/* The whole spool file of qid, at most max octets; NULL when it cannot be read. */
static char *read_spool(const char *data_dir, const char *qid, size_t max, size_t *len)
{
	struct stat sb;
	char *buf;
	size_t n = 0, want;
	ssize_t got;
	int fd = spool_read_open(data_dir, qid);

	if (fd < 0)
		return NULL;
	if (fstat(fd, &sb) < 0) {
		close(fd);
		return NULL;
	}
	want = (size_t)sb.st_size < max ? (size_t)sb.st_size : max;
	buf = xmalloc(want + 1);
	while (n < want) {
		got = read(fd, buf + n, want - n);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			break;
		n += (size_t)got;
	}
	close(fd);
	buf[n] = '\0';
	*len = n;
	return buf;
}

json_t *policy_rules_test(struct store *st, const struct policy_rules_env *envp,
			 const json_t *body, struct policy_rules_err *e)
{
	static const char *const keys[] = { "message", "sender", "recipients", "client_address",
					    "client_name", "helo", "auth_user", "rules", "last",
					    "score", "score_parts" };
	struct collect c = { NULL, -1, 1, NULL, 0 };
	struct rules_def *d = NULL;
	struct rules_set *rs = NULL;
	struct policy_snap *lists = NULL;
	struct store_rule_msg *msgs = NULL;
	struct envelope env;
	const json_t *msg, *last, *rc, *set;
	const char *key;
	const char **rcpts = NULL;
	const json_t *v;
	json_t *results = NULL, *one, *out = NULL;
	char dflt[400], err[600];
	size_t i, k, nmsgs = 0;
	int64_t nlast = 0;

	if (!json_is_object(body))
		return policy_rules_fail(e, 422, "invalid_body", NULL, "expected a JSON object");
	json_object_foreach((json_t *)body, key, v) {
		for (k = 0; k < ARRAY_LEN(keys) && strcmp(keys[k], key) != 0; k++)
			;
		if (k == ARRAY_LEN(keys))
			return policy_rules_fail(e, 422, "unknown_field", key, "%.100s: unknown field", key);
	}
	memset(&env, 0, sizeof(env));
	msg = json_object_get(body, "message");
	last = json_object_get(body, "last");
	if ((msg == NULL) == (last == NULL))
		return policy_rules_fail(e, 422, "invalid_body", "message",
			       "message: give either message or last");
	if (msg != NULL && !json_is_string(msg))
		return policy_rules_fail(e, 422, "invalid_value", "message",
			       "message: must be the raw message as a string");
	if (last != NULL) {
		if (!json_is_integer(last) || json_integer_value(last) < 1 ||
		    json_integer_value(last) > TEST_LAST_MAX)
			return policy_rules_fail(e, 422, "invalid_value", "last",
				       "last: must be an integer in 1..%d", TEST_LAST_MAX);
		nlast = json_integer_value(last);
	}
	if (opt_str(body, "sender", "", &env.sender, e) < 0 ||
	    opt_str(body, "client_address", "127.0.0.1", &env.client_addr, e) < 0 ||
	    opt_str(body, "client_name", NULL, &env.client_name, e) < 0 ||
	    opt_str(body, "helo", "", &env.helo, e) < 0 ||
	    opt_str(body, "auth_user", NULL, &env.auth_user, e) < 0)
		return NULL;
	if (test_score(body, &env, e) < 0)
		goto out;
	rc = json_object_get(body, "recipients");
	if (rc != NULL) {
		if (!json_is_array(rc) || json_array_size(rc) == 0 ||
		    json_array_size(rc) > TEST_RCPTS_MAX)
			return policy_rules_fail(e, 422, "invalid_value", "recipients",
				       "recipients: must be an array of 1 to %d addresses",
				       TEST_RCPTS_MAX);
		for (i = 0; i < json_array_size(rc); i++) {
			v = json_array_get(rc, i);
			if (!json_is_string(v) || json_string_length(v) > TEST_STR_MAX ||
			    strlen(json_string_value(v)) != json_string_length(v))
				return policy_rules_fail(e, 422, "invalid_value", "recipients",
					       "recipients[%zu]: must be an address string", i);
		}
	}
	lists = policy_snap_load_store(st, 0, err, sizeof(err));
	if (lists == NULL)
		return policy_rules_internal(e, st, "policy lists");
	/* The set: the unsaved one given, or every stored rule (disabled ones keep their index). */
	set = json_object_get(body, "rules");
	if (set != NULL) {
		if (rules_def_from_json(set, &d, err, sizeof(err)) < 0) {
			policy_rules_model_err(e, err, NULL, NULL);
			goto out;
		}
	} else {
		c.items = json_array();
		c.portable = 2;
		if (store_rules_each(st, 0, collect_cb, &c) < 0) {
			json_decref(c.items);
			policy_rules_internal(e, st, "rules");
			goto out;
		}
		if (rules_def_from_json(c.items, &d, err, sizeof(err)) < 0) {
			json_decref(c.items);
			policy_rules_fail(e, 500, "internal", NULL, "stored rules: %s", err);
			goto out;
		}
		json_decref(c.items);
	}
	rs = rules_compile(d, err, sizeof(err));
	if (rs == NULL) {
		policy_rules_model_err(e, err, NULL, NULL);
		goto out;
	}
	if (rc != NULL) {
		env.nrcpts = json_array_size(rc);
		rcpts = xcalloc(env.nrcpts, sizeof(*rcpts));
		for (i = 0; i < env.nrcpts; i++)
			rcpts[i] = json_string_value(json_array_get(rc, i));
	} else {
		const char *dom = lists->first_local[0] != '\0' ? lists->first_local : NULL;

		if (dom != NULL)
			snprintf(dflt, sizeof(dflt), "postmaster@%s", dom);
		else
			strlcpy_s(dflt, "user@example.org", sizeof(dflt));
		env.nrcpts = 1;
		rcpts = xcalloc(1, sizeof(*rcpts));
		rcpts[0] = dflt;
	}
	env.rcpts = rcpts;
	results = json_array();
	if (msg != NULL) {
		one = eval_one(rs, c.ids, c.n, lists, NULL, json_string_value(msg),
			       json_string_length(msg), &env, e);
		if (one == NULL)
			goto out;
		json_array_append_new(results, one);
	} else {
		if (store_rules_recent(st, (size_t)nlast, &msgs, &nmsgs) < 0) {
			policy_rules_internal(e, st, "queue");
			goto out;
		}
		for (i = 0; i < nmsgs; i++) {
			struct store_rule_msg *m = &msgs[i];
			struct envelope me;
			size_t len;
			char *buf = read_spool(envp->data_dir, m->qid,
					       (size_t)envp->max_message_size + SPOOL_SLACK, &len);

			if (buf == NULL)
				continue; /* delivered and removed meanwhile */
			memset(&me, 0, sizeof(me));
			me.sender = m->sender;
			me.rcpts = (const char **)m->rcpts;
			me.nrcpts = m->nrcpts;
			me.client_addr = m->client_addr;
			me.client_name = m->client_name[0] ? m->client_name : NULL;
			me.helo = m->helo;
			me.auth_user = m->auth_user;
			me.score = env.score;
			me.part_names = env.part_names;
			me.part_values = env.part_values;
			me.nparts = env.nparts;
			one = eval_one(rs, c.ids, c.n, lists, m->qid, buf, len, &me, e);
			free(buf);
			if (one == NULL)
				goto out;
			json_array_append_new(results, one);
		}
	}
	out = json_pack("{s:O}", "results", results);
out:
	json_decref(results);
	store_rules_recent_free(msgs, nmsgs);
	free(rcpts);
	free(env.part_names);
	free(env.part_values);
	free(c.ids);
	rules_set_free(rs);
	rules_def_free(d);
	policy_snap_free(lists);
	return out;
}
