/*
 * policy_mbrules: see policy_mbrules.h.  All SQL is in store_mailbox.c and
 * store_auth.c.  A stored definition is the rule as rules_def_to_json()
 * writes it back (defaults filled in), so an export re-imports to the same
 * set.  Every rule id is looked up within the owner's set: an id of
 * another set is "no such rule" (404), never a hint that it exists.
 */
#include "policy_mbrules.h"
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
#include "../spool/spool_read.h"
#include "../store/store.h"
#include "../store/store_auth.h"
#include "../store/store_mailbox.h"
#include "../util/util.h"

static int is_local_cb(void *arg, const char *domain)
{
	int yes = 0;

	if (store_mailbox_domain_local(arg, domain, &yes) < 0)
		return 0;
	return yes;
}

static void parse_opts(struct store *st, const struct policy_mbrules_owner *o,
		       struct rules_parse_opts *po)
{
	char v[16];

	memset(po, 0, sizeof(*po));
	po->kind = RULES_KIND_MAILBOX;
	po->value_max = (size_t)o->value_max;
	if (store_mailbox_setting(st, "mailbox_forward_external", v, sizeof(v)) < 0)
		v[0] = '\0';
	po->forward_external = strcmp(v, "yes") == 0;
	po->is_local = is_local_cb;
	po->is_local_arg = st;
}

/* Check one rule and compile it alone; the normalised object or NULL (422 "rule..."). */
static json_t *normalise_one(struct store *st, const struct policy_mbrules_owner *o,
			     const json_t *obj, struct policy_rules_err *e)
{
	struct rules_parse_opts po;

	parse_opts(st, o, &po);
	return policy_rules_normalise(obj, &po, e);
}

/* ---- reading ---- */

static json_t *definition(const struct store_mailbox_rule *r)
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

static json_t *rule_json(const struct store_mailbox_rule *r)
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
	int portable;           /* definitions only */
	int64_t *ids;           /* ids in order, when want_ids */
	int want_ids;
	size_t n;
	int64_t last_position;
};

static int collect_cb(const struct store_mailbox_rule *r, void *arg)
{
	struct collect *c = arg;

	if (c->items != NULL)
		json_array_append_new(c->items, c->portable ? definition(r) : rule_json(r));
	if (c->want_ids) {
		c->ids = xrealloc(c->ids, (c->n + 1) * sizeof(*c->ids));
		c->ids[c->n] = r->id;
	}
	c->last_position = r->position;
	c->n++;
	return 0;
}

/* The owner's set id (0: none yet) without creating it. */
static int set_of(struct store *st, const struct policy_mbrules_owner *o, int64_t *set)
{
	return store_mailbox_set_find(st, o->user_id, o->group_id, set);
}

json_t *policy_mbrules_list(struct store *st, const struct policy_mbrules_owner *o,
			    const struct policy_mbrules_query *q, struct policy_rules_err *e)
{
	struct store_mailbox_filter f = { q->q, q->enabled, q->cursor, 0 };
	struct collect c = { json_array(), 0, NULL, 0, 0, 0 };
	int64_t set;
	char next[24];
	int more = 0;

	if (set_of(st, o, &set) < 0) {
		json_decref(c.items);
		return policy_rules_internal(e, st, "mailbox rules list");
	}
	f.limit = q->limit > 0 ? q->limit + 1 : 0;
	if (set > 0 && store_mailbox_rules_each(st, set, &f, collect_cb, &c) < 0) {
		json_decref(c.items);
		return policy_rules_internal(e, st, "mailbox rules list");
	}
	if (q->limit > 0 && (int64_t)json_array_size(c.items) > q->limit) {
		json_t *extra = json_array_get(c.items, (size_t)q->limit);

		snprintf(next, sizeof(next), "%lld",
			 (long long)json_integer_value(json_object_get(extra, "position")));
		json_array_remove(c.items, (size_t)q->limit);
		more = 1;
	}
	return json_pack("{s:o, s:o}", "items", c.items, "next_cursor",
			 more ? json_string(next) : json_null());
}

static int one_cb(const struct store_mailbox_rule *r, void *arg)
{
	*(json_t **)arg = rule_json(r);
	return 1;
}

static int fetch(struct store *st, int64_t set, int64_t rid, json_t **out)
{
	int found;

	*out = NULL;
	if (set <= 0)
		return 0;
	if (store_mailbox_rule_get(st, set, rid, one_cb, out, &found) < 0) {
		json_decref(*out);
		*out = NULL;
		return -1;
	}
	return 0;
}

json_t *policy_mbrules_get(struct store *st, const struct policy_mbrules_owner *o, int64_t rid,
			   struct policy_rules_err *e)
{
	int64_t set;
	json_t *r;

	if (set_of(st, o, &set) < 0 || fetch(st, set, rid, &r) < 0)
		return policy_rules_internal(e, st, "mailbox rule");
	if (r == NULL)
		return policy_rules_fail(e, 404, "not_found", NULL, "no such rule");
	return r;
}

json_t *policy_mbrules_export(struct store *st, const struct policy_mbrules_owner *o,
			      struct policy_rules_err *e)
{
	struct collect c = { json_array(), 1, NULL, 0, 0, 0 };
	int64_t set;

	if (set_of(st, o, &set) < 0 ||
	    (set > 0 && store_mailbox_rules_each(st, set, NULL, collect_cb, &c) < 0)) {
		json_decref(c.items);
		return policy_rules_internal(e, st, "mailbox rules export");
	}
	return c.items;
}

/* ---- changing ---- */

static int audit(struct store *st, const struct policy_rules_actor *a,
		 const struct policy_mbrules_owner *o, const char *action, int64_t id,
		 json_t *before, json_t *after)
{
	struct store_audit r;
	char oid[24];
	char *b, *af;
	int rc;

	/* the owner goes with every row: "whose rules" is the first question */
	if (after != NULL && json_is_object(after))
		json_object_set_new(after, "set", json_string(o->label));
	b = before ? json_dumps(before, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	af = after ? json_dumps(after, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	if (after != NULL && json_is_object(after))
		json_object_del(after, "set");
	memset(&r, 0, sizeof(r));
	snprintf(oid, sizeof(oid), "%lld", (long long)id);
	r.ts = time_now_ms();
	r.actor_id = a->user_id;
	r.actor = a->name;
	r.via = a->via;
	r.client_addr = a->client_addr != NULL ? a->client_addr : "-";
	r.action = action;
	r.object_type = "mailbox_rule";
	r.object_id = id > 0 ? oid : o->label;
	r.before = b;
	r.after = af;
	rc = store_auth_audit_add(st, &r);
	free(b);
	free(af);
	return rc;
}

/* Refresh has_refuse, audit, commit: the result, or NULL (rolled back). */
static json_t *finish(struct store *st, const struct policy_mbrules_owner *o, int64_t set,
		      const struct policy_rules_actor *a, const char *action, int64_t id,
		      json_t *before, json_t *after, struct policy_rules_err *e)
{
	if (store_mailbox_refresh(st, set) < 0 ||
	    audit(st, a, o, action, id, before, after) < 0 || store_commit(st) < 0) {
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

/* Would the set hold too many rules or octets after adding n rules of bytes? */
static void *over_limits(const struct policy_mbrules_owner *o, int64_t count, int64_t bytes,
			 const char *field, struct policy_rules_err *e)
{
	if (o->rules_max > 0 && count > o->rules_max)
		return policy_rules_fail(e, 422, "limit_exceeded", field,
			       "%s: a rule set holds at most %lld rules (mailbox_rules_max)", field,
			       (long long)o->rules_max);
	if (o->total_bytes > 0 && bytes > o->total_bytes)
		return policy_rules_fail(e, 422, "limit_exceeded", field,
			       "%s: a rule set holds at most %lld octets of rules "
			       "(mailbox_rules_total_bytes)", field, (long long)o->total_bytes);
	return e;
}

/* Begin, find or create the set, check room for one more rule of len octets. */
static int begin_add(struct store *st, const struct policy_mbrules_owner *o, size_t len,
		     int64_t *set, struct policy_rules_err *e)
{
	int64_t count, end, bytes;

	if (store_begin(st) < 0) {
		policy_rules_internal(e, st, "mailbox rules begin");
		return -1;
	}
	if (store_mailbox_set_ensure(st, o->user_id, o->group_id, set) < 0 ||
	    store_mailbox_stats(st, *set, &count, &end, &bytes) < 0) {
		policy_rules_internal_rollback(e, st, "mailbox rules");
		return -1;
	}
	if (over_limits(o, count + 1, bytes + (int64_t)len, "rule", e) == NULL) {
		store_rollback(st);
		return -1;
	}
	return 0;
}

static json_t *add_norm(struct store *st, const struct policy_mbrules_owner *o, json_t *norm,
			int64_t position, const struct policy_rules_actor *a, const char *action,
			struct policy_rules_err *e)
{
	char *def = json_dumps(norm, JSON_COMPACT);
	int64_t set, id;
	json_t *after;

	if (begin_add(st, o, strlen(def), &set, e) < 0) {
		free(def);
		json_decref(norm);
		return NULL;
	}
	if (store_mailbox_rule_add(st, set, jname(norm), jenabled(norm), def, position, &id) < 0 ||
	    fetch(st, set, id, &after) < 0 || after == NULL) {
		free(def);
		json_decref(norm);
		return policy_rules_internal_rollback(e, st, "mailbox rule add");
	}
	free(def);
	json_decref(norm);
	return finish(st, o, set, a, action, id, NULL, after, e);
}

json_t *policy_mbrules_create(struct store *st, const struct policy_mbrules_owner *o,
			      const json_t *body, const struct policy_rules_actor *a,
			      struct policy_rules_err *e)
{
	json_t *copy, *norm, *pos;
	int64_t position = -1;

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
	norm = normalise_one(st, o, copy, e);
	json_decref(copy);
	if (norm == NULL)
		return NULL;
	return add_norm(st, o, norm, position, a, "mailbox_rule.create", e);
}

/* Begin and read rule rid of the owner's set: the rule, or NULL (nothing open). */
static json_t *begin_with(struct store *st, const struct policy_mbrules_owner *o, int64_t rid,
			  int64_t *set, struct policy_rules_err *e)
{
	json_t *before;

	if (store_begin(st) < 0)
		return policy_rules_internal(e, st, "mailbox rules begin");
	if (set_of(st, o, set) < 0 || fetch(st, *set, rid, &before) < 0)
		return policy_rules_internal_rollback(e, st, "mailbox rule");
	if (before == NULL) {
		store_rollback(st);
		return policy_rules_fail(e, 404, "not_found", NULL, "no such rule");
	}
	return before;
}

static json_t *write_rule(struct store *st, const struct policy_mbrules_owner *o, int64_t set,
			  int64_t rid, json_t *before, json_t *norm,
			  const struct policy_rules_actor *a, struct policy_rules_err *e)
{
	char *def = json_dumps(norm, JSON_COMPACT);
	int64_t count, end, bytes;
	json_t *after;
	int found;

	if (store_mailbox_rule_update(st, set, rid, jname(norm), jenabled(norm), def, &found) < 0 ||
	    store_mailbox_stats(st, set, &count, &end, &bytes) < 0) {
		free(def);
		json_decref(norm);
		json_decref(before);
		return policy_rules_internal_rollback(e, st, "mailbox rule update");
	}
	free(def);
	json_decref(norm);
	if (over_limits(o, count, bytes, "rule", e) == NULL) {
		json_decref(before);
		store_rollback(st);
		return NULL;
	}
	if (fetch(st, set, rid, &after) < 0 || after == NULL) {
		json_decref(before);
		return policy_rules_internal_rollback(e, st, "mailbox rule update");
	}
	return finish(st, o, set, a, "mailbox_rule.update", rid, before, after, e);
}

json_t *policy_mbrules_replace(struct store *st, const struct policy_mbrules_owner *o,
			       int64_t rid, const json_t *body, const struct policy_rules_actor *a,
			       struct policy_rules_err *e)
{
	json_t *norm, *before;
	int64_t set;

	if (!json_is_object(body))
		return policy_rules_fail(e, 422, "invalid_body", "rule", "rule: must be a rule object");
	norm = normalise_one(st, o, body, e);
	if (norm == NULL)
		return NULL;
	before = begin_with(st, o, rid, &set, e);
	if (before == NULL) {
		json_decref(norm);
		return NULL;
	}
	return write_rule(st, o, set, rid, before, norm, a, e);
}

static void strip_meta(json_t *o)
{
	static const char *const keys[] = { "id", "position", "hits", "last_hit", "created_at",
					    "updated_at" };
	size_t i;

	for (i = 0; i < ARRAY_LEN(keys); i++)
		json_object_del(o, keys[i]);
}

json_t *policy_mbrules_patch(struct store *st, const struct policy_mbrules_owner *o, int64_t rid,
			     const json_t *body, const struct policy_rules_actor *a,
			     struct policy_rules_err *e)
{
	json_t *before, *merged, *norm, *v;
	const char *key;
	int64_t set;

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
	before = begin_with(st, o, rid, &set, e);
	if (before == NULL)
		return NULL;
	merged = json_copy(before);
	strip_meta(merged);
	json_object_update(merged, (json_t *)body);
	norm = normalise_one(st, o, merged, e);
	json_decref(merged);
	if (norm == NULL) {
		json_decref(before);
		store_rollback(st);
		return NULL;
	}
	return write_rule(st, o, set, rid, before, norm, a, e);
}

int policy_mbrules_delete(struct store *st, const struct policy_mbrules_owner *o, int64_t rid,
			  const struct policy_rules_actor *a, struct policy_rules_err *e)
{
	json_t *before, *after;
	int64_t set;
	int found;

	e->status = 0;
	before = begin_with(st, o, rid, &set, e);
	if (before == NULL)
		return -1;
	if (store_mailbox_rule_delete(st, set, rid, &found) < 0) {
		json_decref(before);
		policy_rules_internal_rollback(e, st, "mailbox rule delete");
		return -1;
	}
	after = finish(st, o, set, a, "mailbox_rule.delete", rid, before, NULL, e);
	if (e->status == 500 && after == NULL)
		return -1;
	json_decref(after);
	return 0;
}

json_t *policy_mbrules_duplicate(struct store *st, const struct policy_mbrules_owner *o,
				 int64_t rid, const struct policy_rules_actor *a,
				 struct policy_rules_err *e)
{
	json_t *src, *norm;
	int64_t position;
	char name[RULES_NAME_MAX + 1];

	src = policy_mbrules_get(st, o, rid, e);
	if (src == NULL)
		return NULL;
	position = json_integer_value(json_object_get(src, "position")) + 1;
	strip_meta(src);
	/* "(copy)" may not fit a name of RULES_NAME_MAX octets: cut the name */
	snprintf(name, sizeof(name), "%.*s (copy)", RULES_NAME_MAX - 7, jname(src));
	json_object_set_new(src, "name", json_string(name));
	norm = normalise_one(st, o, src, e);
	json_decref(src);
	if (norm == NULL)
		return NULL;
	return add_norm(st, o, norm, position, a, "mailbox_rule.create", e);
}

/* ids as an int64 array: n, or -1 with e (field "ids"). */
static int64_t *ids_of(const json_t *ids, size_t *n, struct policy_rules_err *e)
{
	int64_t *v;
	size_t i;

	if (!json_is_array(ids))
		return policy_rules_fail(e, 422, "invalid_value", "ids", "ids: must be an array of rule ids");
	*n = json_array_size(ids);
	if (*n > RULES_COUNT_MAX)
		return policy_rules_fail(e, 422, "invalid_value", "ids", "ids: more than %d ids",
			       RULES_COUNT_MAX);
	v = xcalloc(*n ? *n : 1, sizeof(*v));
	for (i = 0; i < *n; i++) {
		const json_t *x = json_array_get(ids, i);

		if (!json_is_integer(x)) {
			free(v);
			return policy_rules_fail(e, 422, "invalid_value", "ids", "ids[%zu]: must be a rule id",
				       i);
		}
		v[i] = json_integer_value(x);
	}
	return v;
}

json_t *policy_mbrules_order(struct store *st, const struct policy_mbrules_owner *o,
			     const json_t *ids, const struct policy_rules_actor *a,
			     struct policy_rules_err *e)
{
	struct policy_mbrules_query q = { NULL, -1, 0, 0 };
	int64_t *v, set;
	size_t n;
	int mismatch = 0;
	json_t *after, *items;

	v = ids_of(ids, &n, e);
	if (v == NULL)
		return NULL;
	if (store_begin(st) < 0) {
		free(v);
		return policy_rules_internal(e, st, "mailbox rules begin");
	}
	if (set_of(st, o, &set) < 0 ||
	    (set > 0 && store_mailbox_set_order(st, set, v, n, &mismatch) < 0)) {
		free(v);
		return policy_rules_internal_rollback(e, st, "mailbox rules order");
	}
	free(v);
	if (mismatch || (set == 0 && n != 0)) {
		store_rollback(st);
		return policy_rules_fail(e, 422, "invalid_value", "ids",
			       "ids: must name every rule of the set exactly once (a permutation "
			       "of the current ids)");
	}
	items = policy_mbrules_list(st, o, &q, e);
	if (items == NULL) {
		store_rollback(st);
		return NULL;
	}
	after = json_pack("{s:O}", "ids", ids);
	if (finish(st, o, set, a, "mailbox_rule.order", 0, NULL, after, e) == NULL) {
		json_decref(items);
		return NULL;
	}
	json_decref(after);
	return items;
}

json_t *policy_mbrules_bulk(struct store *st, const struct policy_mbrules_owner *o,
			    const json_t *ids, const char *op, const struct policy_rules_actor *a,
			    struct policy_rules_err *e)
{
	int64_t *v, set;
	size_t n, i, changed = 0;
	json_t *after;
	int del = strcmp(op, "delete") == 0, en = strcmp(op, "enable") == 0;

	if (!del && !en && strcmp(op, "disable") != 0)
		return policy_rules_fail(e, 422, "invalid_value", "op", "op: enable, disable or delete");
	v = ids_of(ids, &n, e);
	if (v == NULL)
		return NULL;
	if (store_begin(st) < 0) {
		free(v);
		return policy_rules_internal(e, st, "mailbox rules begin");
	}
	if (set_of(st, o, &set) < 0) {
		free(v);
		return policy_rules_internal_rollback(e, st, "mailbox rules bulk");
	}
	for (i = 0; i < n; i++) {
		json_t *r = NULL;
		int found = 0;

		if (fetch(st, set, v[i], &r) < 0) {
			free(v);
			return policy_rules_internal_rollback(e, st, "mailbox rules bulk");
		}
		if (r == NULL) {
			free(v);
			store_rollback(st);
			return policy_rules_fail(e, 404, "not_found", "ids", "ids[%zu]: no such rule", i);
		}
		if (del) {
			if (store_mailbox_rule_delete(st, set, v[i], &found) < 0)
				found = -1;
		} else {
			char *def;

			json_object_set_new(r, "enabled", json_boolean(en));
			strip_meta(r);
			def = json_dumps(r, JSON_COMPACT);
			if (store_mailbox_rule_update(st, set, v[i], jname(r), en, def, &found) < 0)
				found = -1;
			free(def);
		}
		json_decref(r);
		if (found < 0) {
			free(v);
			return policy_rules_internal_rollback(e, st, "mailbox rules bulk");
		}
		changed += (size_t)found;
	}
	free(v);
	after = json_pack("{s:s, s:O}", "op", op, "ids", ids);
	if (finish(st, o, set, a, "mailbox_rule.bulk", 0, NULL, after, e) == NULL)
		return NULL;
	json_decref(after);
	return json_pack("{s:I}", "changed", (json_int_t)changed);
}

json_t *policy_mbrules_import(struct store *st, const struct policy_mbrules_owner *o,
			      const json_t *rules, int append, const struct policy_rules_actor *a,
			      struct policy_rules_err *e)
{
	struct rules_parse_opts po;
	struct rules_def *d = NULL;
	struct rules_set *rs;
	json_t *norm, *combined = NULL, *x, *after;
	int64_t count = 0, end, bytes = 0, set, id, add_bytes = 0;
	size_t i;
	char err[600];

	if (json_is_array(rules) && o->rules_max > 0 &&
	    (int64_t)json_array_size(rules) > o->rules_max)
		return policy_rules_fail(e, 422, "limit_exceeded", "rules",
			       "rules: a rule set holds at most %lld rules (mailbox_rules_max)",
			       (long long)o->rules_max);
	parse_opts(st, o, &po);
	if (rules_def_from_json_opts(rules, &po, &d, err, sizeof(err)) < 0)
		return policy_rules_model_err(e, err, NULL, NULL);
	norm = rules_def_to_json(d);
	rules_def_free(d);
	d = NULL;
	if (append) {
		/* the resulting set must compile as a whole (Vectorscan limits per field) */
		combined = policy_mbrules_export(st, o, e);
		if (combined == NULL) {
			json_decref(norm);
			return NULL;
		}
		json_array_extend(combined, norm);
	}
	if (over_limits(o, (int64_t)json_array_size(combined ? combined : norm), 0, "rules",
			e) == NULL) {
		json_decref(combined);
		json_decref(norm);
		return NULL;
	}
	if (rules_def_from_json_opts(combined ? combined : norm, &po, &d, err, sizeof(err)) < 0 ||
	    (rs = rules_compile(d, err, sizeof(err))) == NULL) {
		rules_def_free(d);
		json_decref(combined);
		json_decref(norm);
		return policy_rules_model_err(e, err, NULL, NULL);
	}
	rules_set_free(rs);
	rules_def_free(d);
	json_decref(combined);
	if (store_begin(st) < 0) {
		json_decref(norm);
		return policy_rules_internal(e, st, "mailbox rules begin");
	}
	if (store_mailbox_set_ensure(st, o->user_id, o->group_id, &set) < 0 ||
	    store_mailbox_stats(st, set, &count, &end, &bytes) < 0 ||
	    (!append && store_mailbox_rules_delete_all(st, set) < 0)) {
		json_decref(norm);
		return policy_rules_internal_rollback(e, st, "mailbox rules import");
	}
	json_array_foreach(norm, i, x) {
		char *def;

		policy_rules_fill_defaults(x);
		def = json_dumps(x, JSON_COMPACT);
		add_bytes += (int64_t)strlen(def);
		if (store_mailbox_rule_add(st, set, jname(x), jenabled(x), def, -1, &id) < 0) {
			free(def);
			json_decref(norm);
			return policy_rules_internal_rollback(e, st, "mailbox rules import");
		}
		free(def);
	}
	if (over_limits(o, (append ? count : 0) + (int64_t)json_array_size(norm),
			(append ? bytes : 0) + add_bytes, "rules", e) == NULL) {
		json_decref(norm);
		store_rollback(st);
		return NULL;
	}
	after = json_pack("{s:s, s:I, s:I}", "mode", append ? "append" : "replace", "imported",
			  (json_int_t)json_array_size(norm), "before", (json_int_t)count);
	if (finish(st, o, set, a, "mailbox_rule.import", 0, NULL, after, e) == NULL) {
		json_decref(norm);
		return NULL;
	}
	json_decref(after);
	after = json_pack("{s:I, s:I}", "imported", (json_int_t)json_array_size(norm), "total",
			  (json_int_t)((append ? count : 0) + (int64_t)json_array_size(norm)));
	json_decref(norm);
	return after;
}

/* ---- the dry run ---- */

static json_t *str_array(const char **v, size_t n)
{
	json_t *a = json_array();
	size_t i;

	for (i = 0; i < n; i++)
		json_array_append_new(a, json_string(v[i]));
	return a;
}

static json_t *outcome_json(const struct rules_verdict *v)
{
	json_t *o = json_object();

	json_object_set_new(o, "action", json_string(v->action == RULES_ACT_NONE ? "deliver" :
						     rules_action_name(v->action)));
	json_object_set_new(o, "folder", v->folder ? json_string(v->folder) : json_null());
	json_object_set_new(o, "copy_folders", str_array(v->copy_folders, v->ncopy_folders));
	json_object_set_new(o, "forward_copies", str_array(v->forward_copies,
							   v->nforward_copies));
	json_object_set_new(o, "address", v->address ? json_string(v->address) : json_null());
	json_object_set_new(o, "importance", v->importance ? json_string(v->importance) :
							      json_null());
	json_object_set_new(o, "subject_prefixes", str_array(v->subject_prefixes,
							     v->nsubject_prefixes));
	json_object_set_new(o, "headers", str_array(v->headers, v->nheaders));
	if (v->action == RULES_ACT_REFUSE)
		json_object_set_new(o, "text", json_string(v->text ? v->text : ""));
	/* the points the rules add to the recipient's spam score; the test has no score itself */
	json_object_set_new(o, "points", v->points == (double)(int64_t)v->points ?
				 json_integer((json_int_t)v->points) : json_real(v->points));
	return o;
}

json_t *policy_mbrules_test(struct store *st, const struct policy_mbrules_owner *o,
			    const char *address, const char *msg, size_t len,
			    struct policy_rules_err *e)
{
	struct collect c = { NULL, 1, NULL, 1, 0, 0 };
	struct rules_parse_opts po;
	struct rules_def *d = NULL;
	struct rules_set *rs;
	struct mime_limits lim;
	struct mime_view *view = NULL;
	struct rules_input in;
	struct rules_result res;
	const char *rcpts[1] = { address };
	const char *sender = "";
	char sender_buf[512];
	json_t *defs, *list, *out;
	size_t i, k, pos = 0;
	int64_t set;
	char err[600];

	c.items = json_array();
	if (set_of(st, o, &set) < 0 ||
	    (set > 0 && store_mailbox_rules_each(st, set, NULL, collect_cb, &c) < 0)) {
		json_decref(c.items);
		free(c.ids);
		return policy_rules_internal(e, st, "mailbox rules test");
	}
	defs = c.items;
	/* stored rules were checked when saved: forward targets need no new look */
	parse_opts(st, o, &po);
	po.is_local = NULL;
	if (rules_def_from_json_opts(defs, &po, &d, err, sizeof(err)) < 0 ||
	    (rs = rules_compile(d, err, sizeof(err))) == NULL) {
		rules_def_free(d);
		json_decref(defs);
		free(c.ids);
		return policy_rules_fail(e, 500, "internal", NULL, "compiling the set: %s", err);
	}
	rules_def_free(d);
	mime_limits_default(&lim);
	if (mime_parse(msg, len, &lim, &view, err, sizeof(err)) < 0) {
		rules_set_free(rs);
		json_decref(defs);
		free(c.ids);
		return policy_rules_fail(e, 422, "invalid_value", "message", "message: %s", err);
	}
	{
		/* The envelope sender a delivered copy records: Return-Path: <addr>. */
		const char *from = mime_header_next(view, "Return-Path", &pos);

		if (from != NULL) {
			size_t n;

			while (*from == ' ' || *from == '\t')
				from++;
			if (*from == '<')
				from++;
			strlcpy_s(sender_buf, from, sizeof(sender_buf));
			n = strcspn(sender_buf, "> \t");
			sender_buf[n] = '\0';
			sender = sender_buf;
		}
	}
	memset(&in, 0, sizeof(in));
	in.mime = view;
	in.sender = sender;
	in.rcpts = rcpts;
	in.nrcpts = 1;
	in.client_addr = "127.0.0.1";
	in.helo = "localhost";
	in.size = (int64_t)len;
	memset(&res, 0, sizeof(res));
	if (rules_eval(rs, &in, &res) < 0) {
		mime_view_free(view);
		rules_set_free(rs);
		json_decref(defs);
		free(c.ids);
		return policy_rules_fail(e, 500, "internal", NULL, "rule evaluation failed");
	}
	list = json_array();
	for (i = 0, k = 0; i < c.n; i++) {
		const char *state = "not_matched";

		while (k < res.nhits && res.hits[k] < i)
			k++;
		if (k < res.nhits && res.hits[k] == i)
			state = "matched";
		else if (res.message != NULL && res.message->rule >= 0 &&
			 (size_t)res.message->rule < i)
			state = "not_reached";
		json_array_append_new(list, json_pack("{s:I, s:s, s:b, s:s}", "id",
						      (json_int_t)c.ids[i], "name",
						      jname(json_array_get(defs, i)), "matched",
						      strcmp(state, "matched") == 0, "state", state));
	}
	out = json_pack("{s:s, s:o, s:o}", "address", address, "rules", list, "outcome",
			res.message ? outcome_json(res.message) : json_object());
	rules_result_free(&res);
	mime_view_free(view);
	rules_set_free(rs);
	json_decref(defs);
	free(c.ids);
	return out;
}

/* The whole file at path into a buffer; 0, -1 (cannot open: errno), -2 (over max). */
static int read_file_max(const char *path, size_t max, char **out, size_t *len)
{
	struct stat sb;
	size_t got = 0;
	ssize_t n;
	char *buf;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	*out = NULL;
	if (fd < 0)
		return -1;
	if (fstat(fd, &sb) < 0 || sb.st_size < 0) {
		close(fd);
		return -1;
	}
	if ((uint64_t)sb.st_size > max) {
		close(fd);
		return -2;
	}
	buf = xmalloc((size_t)sb.st_size + 1);
	while (got < (size_t)sb.st_size) {
		n = read(fd, buf + got, (size_t)sb.st_size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	buf[got] = '\0';
	*out = buf;
	*len = got;
	return 0;
}

char *policy_mbrules_log_message(struct store *st, const char *data_dir, size_t max,
				 const struct policy_mbrules_owner *o, int64_t log_id,
				 char *address, size_t addrsz, size_t *len,
				 struct policy_rules_err *e)
{
	char qid[64], path[1400];
	char *buf = NULL;
	int found, rc;

	if (store_mailbox_log_message(st, log_id, o->user_id, o->group_id, qid, sizeof(qid),
				      address, addrsz, &found) < 0)
		return policy_rules_internal(e, st, "message log");
	/* another owner's message is "no such message", never a hint that it exists */
	if (!found)
		return policy_rules_fail(e, 404, "not_found", "message_log_id",
			       "message_log_id: no message %lld to one of your addresses",
			       (long long)log_id);
	if (qid[0] == '\0' || !spool_qid_valid(qid, strlen(qid)))
		return policy_rules_fail(e, 422, "message_gone", "message_log_id",
			       "message_log_id: message %lld was not accepted into the spool "
			       "(refused or aborted): there is no copy to test",
			       (long long)log_id);
	/* still queued (not yet delivered), else quarantined */
	if (spool_queue_path(data_dir, qid, path, sizeof(path)) < 0)
		return policy_rules_internal(e, st, "spool path");
	rc = read_file_max(path, max, &buf, len);
	if (rc == -1) {
		snprintf(path, sizeof(path), "%s/spool/quarantine/%s", data_dir, qid);
		rc = read_file_max(path, max, &buf, len);
	}
	if (rc == -2)
		return policy_rules_fail(e, 422, "message_too_large", "message_log_id",
			       "message_log_id: message %lld is larger than %zu octets",
			       (long long)log_id, max);
	if (rc < 0)
		return policy_rules_fail(e, 422, "message_gone", "message_log_id",
			       "message_log_id: message %lld (queue id %s) is no longer kept: "
			       "delivered or removed from the spool and the quarantine; paste "
			       "it as \"message\" instead", (long long)log_id, qid);
	return buf;
}
