/*
 * http_policy: the front-door policy resources, administrators only —
 * list entries (/api/v1/policy/entries: connection, sender, recipient,
 * relay and local-domain lists), settings (limits, precedence, rejection
 * texts), DNSBL sites with their statistics, and the directory (read).
 *
 * All SQL is in daemon/store/store_policy.c; values are checked with the
 * same pure validators the CLI uses (policy_validate.h), so the
 * API and `moatd policy` accept exactly the same things.  Every write bumps
 * the policy generation through the schema's triggers, so moatd applies it
 * to the next SMTP connection; every write is audited.
 */
#include "http_internal.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "../cluster/cluster_redis.h"
#include "../conf/conf.h"
#include "../log/log.h"
#include "../policy/policy_validate.h"
#include "../store/store.h"
#include "../store/store_auth.h"
#include "../store/store_policy.h"

#define DAY_MS 86400000LL

static int printable(const char *s, size_t max)
{
	size_t i;

	for (i = 0; s[i] != '\0'; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e || i >= max)
			return 0;
	return 1;
}

/* ---- list entries ---- */

static json_t *entry_json(const struct store_policy_entry *e)
{
	return json_pack("{s:I, s:s, s:s, s:s, s:I}", "id", (json_int_t)e->id, "list", e->list,
			 "value", e->value, "comment", e->comment ? e->comment : "", "created",
			 (json_int_t)e->created);
}

struct entry_list {
	json_t *items;
	const char *q;
	int64_t skip, limit, n;
};

static int add_entry(const struct store_policy_entry *e, void *arg)
{
	struct entry_list *l = arg;

	if (l->q != NULL && strcasestr(e->value, l->q) == NULL &&
	    strcasestr(e->comment ? e->comment : "", l->q) == NULL)
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

static int list_kinds(const char ***out)
{
	static const char *names[32];
	size_t i;

	for (i = 0; i < policy_list_kind_count && i + 1 < ARRAY_LEN(names); i++)
		names[i] = policy_list_kinds[i].name;
	names[i] = NULL;
	*out = names;
	return 0;
}

enum MHD_Result http_policy_entries_list(struct http_req *r)
{
	static const char *const args[] = { "limit", "offset", "cursor", "list", "q", NULL };
	const char **kinds;
	struct http_page p;
	struct entry_list l;
	int kind;
	char next[32];

	list_kinds(&kinds);
	memset(&l, 0, sizeof(l));
	if (http_args_allow(r, args) < 0 || http_page(r, &p) < 0 ||
	    http_arg_pick(r, "list", kinds, &kind) < 0 || http_arg_str(r, "q", 320, &l.q) < 0)
		return http_fail_reply(r);
	if (p.cursor != NULL &&
	    http_parse_i64(p.cursor, strlen(p.cursor), 0, 100000000, &p.offset) < 0)
		return http_error(r, MHD_HTTP_UNPROCESSABLE_CONTENT, "invalid_parameter", "cursor",
				  "malformed cursor");
	l.items = json_array();
	l.skip = p.offset;
	l.limit = p.limit;
	if (store_policy_entries(r->st, kind >= 0 ? kinds[kind] : NULL, add_entry, &l) < 0) {
		json_decref(l.items);
		return http_internal(r, "entries list");
	}
	snprintf(next, sizeof(next), "%lld", (long long)(p.offset + p.limit));
	return http_reply(r, MHD_HTTP_OK, http_list(l.items, l.n > p.limit ? next : NULL));
}

static int one_entry(const struct store_policy_entry *e, void *arg)
{
	*(json_t **)arg = entry_json(e);
	return 1;
}

/* The entry {id} as JSON; NULL with r->fail (404) or *internal. */
static json_t *load_entry(struct http_req *r, int64_t *id, int *internal)
{
	json_t *o = NULL;
	int found = 0;

	*internal = 0;
	if (http_param_id(r, 0, id) < 0)
		return NULL;
	if (store_policy_entry_get(r->st, *id, one_entry, &o, &found) < 0) {
		json_decref(o);
		*internal = 1;
		return NULL;
	}
	if (o == NULL)
		http_not_found(r, "entry");
	return o;
}

enum MHD_Result http_policy_entries_show(struct http_req *r)
{
	static const char *const args[] = { NULL };
	int64_t id;
	int internal;
	json_t *o;

	if (http_args_allow(r, args) < 0)
		return http_fail_reply(r);
	o = load_entry(r, &id, &internal);
	if (o == NULL)
		return internal ? http_internal(r, "entry") : http_fail_reply(r);
	return http_reply(r, MHD_HTTP_OK, o);
}

static const struct http_field entry_fields[] = {
	{ "list", HJ_STRING, 1, 32, 0, 0 },
	{ "value", HJ_STRING, 1, 320, 0, 0 },
	{ "comment", HJ_STRING, 0, 300, 0, 0 },
};

enum MHD_Result http_policy_entries_create(struct http_req *r)
{
	const struct policy_list_kind *k;
	json_t *body, *after = NULL;
	const char *value, *comment;
	char norm[400], err[300], list[40], cmt[301];
	int64_t id;
	int found;
	char oid[24];

	if (http_body(r, entry_fields, ARRAY_LEN(entry_fields), &body) < 0)
		return http_fail_reply(r);
	k = policy_list_kind_find(json_string_value(json_object_get(body, "list")));
	value = json_string_value(json_object_get(body, "value"));
	comment = json_object_get(body, "comment") ?
		  json_string_value(json_object_get(body, "comment")) : "";
	if (k == NULL) {
		json_decref(body);
		return http_error(r, MHD_HTTP_UNPROCESSABLE_CONTENT, "invalid_value", "list",
				  "unknown list (see docs/policy.md)");
	}
	if (policy_value_check(k->type, value, strlen(value), norm, sizeof(norm), err,
			       sizeof(err)) < 0) {
		json_decref(body);
		return http_error(r, MHD_HTTP_UNPROCESSABLE_CONTENT, "invalid_value", "value", "%s",
				  err);
	}
	if (!printable(comment, 300)) {
		json_decref(body);
		return http_error(r, MHD_HTTP_UNPROCESSABLE_CONTENT, "invalid_value", "comment",
				  "printable ASCII, up to 300 characters");
	}
	strlcpy_s(list, k->name, sizeof(list));
	strlcpy_s(cmt, comment, sizeof(cmt));
	json_decref(body);
	if (store_begin(r->st) < 0)
		return http_internal(r, "entries begin");
	if (store_policy_entry_add(r->st, list, norm, cmt, &id, err, sizeof(err)) < 0) {
		if (strstr(err, "already holds") != NULL) {
			store_rollback(r->st);
			return http_error(r, MHD_HTTP_CONFLICT, "duplicate", "value", "%s", err);
		}
		return http_internal_rollback(r, "entries add");
	}
	if (store_policy_entry_get(r->st, id, one_entry, &after, &found) < 0 || after == NULL)
		return http_internal_rollback(r, "entries add");
	snprintf(oid, sizeof(oid), "%lld", (long long)id);
	return http_audit_commit_reply(r, "policy_entry.create", "policy_entry", oid, NULL, after,
				       MHD_HTTP_CREATED, "entries add");
}

static const struct http_field entry_patch_fields[] = {
	{ "value", HJ_STRING, 0, 320, 0, 0 },
	{ "comment", HJ_STRING, 0, 300, 0, 0 },
};

/*
 * PATCH: value and/or comment, checked as on POST against the entry's own
 * list; the read, the update and the audit entry share one transaction.
 */
enum MHD_Result http_policy_entries_update(struct http_req *r)
{
	const struct policy_list_kind *k;
	json_t *body, *before, *after = NULL, *v;
	char norm[400], err[300], cmt[301], oid[24];
	const char *value = NULL, *comment = NULL;
	int64_t id;
	int internal, found, dup;

	if (http_param_id(r, 0, &id) < 0)
		return http_fail_reply(r);
	if (http_body(r, entry_patch_fields, ARRAY_LEN(entry_patch_fields), &body) < 0)
		return http_fail_reply(r);
	if (json_object_get(body, "value") == NULL && json_object_get(body, "comment") == NULL) {
		json_decref(body);
		return http_error(r, MHD_HTTP_UNPROCESSABLE_CONTENT, "invalid_body", "value",
				  "give value, comment or both");
	}
	v = json_object_get(body, "comment");
	if (v != NULL) {
		if (!printable(json_string_value(v), 300)) {
			json_decref(body);
			return http_error(r, MHD_HTTP_UNPROCESSABLE_CONTENT, "invalid_value",
					  "comment", "printable ASCII, up to 300 characters");
		}
		strlcpy_s(cmt, json_string_value(v), sizeof(cmt));
		comment = cmt;
	}
	if (store_begin(r->st) < 0) {
		json_decref(body);
		return http_internal(r, "entries begin");
	}
	before = load_entry(r, &id, &internal);
	if (before == NULL) {
		json_decref(body);
		if (internal)
			return http_internal_rollback(r, "entry");
		store_rollback(r->st);
		return http_fail_reply(r);
	}
	v = json_object_get(body, "value");
	if (v != NULL) {
		k = policy_list_kind_find(json_string_value(json_object_get(before, "list")));
		if (k == NULL || policy_value_check(k->type, json_string_value(v),
						    json_string_length(v), norm, sizeof(norm), err,
						    sizeof(err)) < 0) {
			json_decref(body);
			json_decref(before);
			store_rollback(r->st);
			return http_error(r, MHD_HTTP_UNPROCESSABLE_CONTENT, "invalid_value",
					  "value", "%s", k == NULL ? "unknown list" : err);
		}
		value = norm;
	}
	json_decref(body);
	if (store_policy_entry_update(r->st, id, value, comment, &found, &dup) < 0) {
		json_decref(before);
		if (dup) {
			store_rollback(r->st);
			return http_error(r, MHD_HTTP_CONFLICT, "duplicate", "value",
					  "that list already holds %s", value);
		}
		return http_internal_rollback(r, "entries update");
	}
	snprintf(oid, sizeof(oid), "%lld", (long long)id);
	if (store_policy_entry_get(r->st, id, one_entry, &after, &found) < 0 || after == NULL) {
		json_decref(before);
		json_decref(after);
		return http_internal_rollback(r, "entries update");
	}
	return http_audit_commit_reply(r, "policy_entry.update", "policy_entry", oid, before,
				       after, MHD_HTTP_OK, "entries update");
}

enum MHD_Result http_policy_entries_delete(struct http_req *r)
{
	static const char *const args[] = { NULL };
	int64_t id;
	int internal, removed;
	json_t *before;
	char oid[24];

	if (http_args_allow(r, args) < 0)
		return http_fail_reply(r);
	before = load_entry(r, &id, &internal);
	if (before == NULL)
		return internal ? http_internal(r, "entry") : http_fail_reply(r);
	snprintf(oid, sizeof(oid), "%lld", (long long)id);
	if (store_begin(r->st) < 0) {
		json_decref(before);
		return http_internal(r, "entries begin");
	}
	if (store_policy_entry_remove(r->st, id, &removed) < 0) {
		json_decref(before);
		return http_internal_rollback(r, "entries delete");
	}
	return http_audit_commit_reply(r, "policy_entry.delete", "policy_entry", oid, before, NULL,
				       MHD_HTTP_NO_CONTENT, "entries delete");
}

/* ---- settings ---- */

static int read_setting(const char *key, const char *value, void *arg)
{
	json_object_set_new(arg, key, json_string(value));
	return 0;
}

static const char *type_name(enum policy_set_type t)
{
	switch (t) {
	case POLICY_ST_BOOL:
		return "bool";
	case POLICY_ST_INT:
		return "int";
	case POLICY_ST_ENUM:
		return "enum";
	case POLICY_ST_TEXT:
		return "text";
	case POLICY_ST_NUM:
		return "number";
	}
	return "text";
}

static json_t *setting_json(const struct policy_setting_def *d, json_t *set)
{
	json_t *v = json_object_get(set, d->key);
	json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "key", d->key, "value",
			      v ? json_string_value(v) : d->def, "default", d->def, "source",
			      v ? "set" : "default", "type", type_name(d->type), "summary",
			      d->summary ? d->summary : "");

	if (d->type == POLICY_ST_INT || d->type == POLICY_ST_NUM) {
		json_object_set_new(o, "min", json_integer(d->min));
		json_object_set_new(o, "max", json_integer(d->max));
	}
	if (d->type == POLICY_ST_ENUM && d->choices != NULL)
		json_object_set_new(o, "choices", json_string(d->choices));
	return o;
}

enum MHD_Result http_policy_settings_list(struct http_req *r)
{
	static const char *const args[] = { NULL };
	json_t *set, *items;
	int64_t gen;
	size_t i;

	if (http_args_allow(r, args) < 0)
		return http_fail_reply(r);
	set = json_object();
	if (store_policy_generation(r->st, &gen) < 0 ||
	    store_policy_settings(r->st, read_setting, set) < 0) {
		json_decref(set);
		return http_internal(r, "settings");
	}
	items = json_array();
	for (i = 0; i < policy_setting_count; i++)
		json_array_append_new(items, setting_json(&policy_setting_defs[i], set));
	json_decref(set);
	return http_reply(r, MHD_HTTP_OK,
			  json_pack("{s:I, s:o}", "generation", (json_int_t)gen, "items", items));
}

/* The setting named by the path; NULL (404 in r->fail) when unknown. */
static const struct policy_setting_def *path_setting(struct http_req *r)
{
	char key[64];
	const struct policy_setting_def *d = NULL;

	if (r->nparams == 1 && r->params[0].len < sizeof(key)) {
		memcpy(key, r->params[0].p, r->params[0].len);
		key[r->params[0].len] = '\0';
		d = policy_setting_find(key);
	}
	if (d == NULL)
		http_not_found(r, "setting");
	return d;
}

static json_t *current_setting(struct http_req *r, const struct policy_setting_def *d)
{
	json_t *set = json_object();
	json_t *o;

	if (store_policy_settings(r->st, read_setting, set) < 0) {
		json_decref(set);
		return NULL;
	}
	o = setting_json(d, set);
	json_decref(set);
	return o;
}

static const struct http_field setting_fields[] = {
	{ "value", HJ_STRING, 1, 400, 0, 0 },
};

enum MHD_Result http_policy_settings_put(struct http_req *r)
{
	const struct policy_setting_def *d = path_setting(r);
	json_t *body, *before, *after;
	char value[401], err[300];

	if (d == NULL)
		return http_fail_reply(r);
	if (http_body(r, setting_fields, ARRAY_LEN(setting_fields), &body) < 0)
		return http_fail_reply(r);
	strlcpy_s(value, json_string_value(json_object_get(body, "value")), sizeof(value));
	json_decref(body);
	if (policy_setting_check(d->key, value, err, sizeof(err)) < 0)
		return http_error(r, MHD_HTTP_UNPROCESSABLE_CONTENT, "invalid_value", "value", "%s",
				  err);
	if (store_begin(r->st) < 0)
		return http_internal(r, "settings begin");
	before = current_setting(r, d);
	if (before == NULL)
		return http_internal_rollback(r, "settings");
	if (store_policy_setting_set(r->st, d->key, value) < 0 ||
	    (after = current_setting(r, d)) == NULL) {
		json_decref(before);
		return http_internal_rollback(r, "settings set");
	}
	return http_audit_commit_reply(r, "policy_setting.set", "policy_setting", d->key, before,
				       after, MHD_HTTP_OK, "settings set");
}

enum MHD_Result http_policy_settings_delete(struct http_req *r)
{
	static const char *const args[] = { NULL };
	const struct policy_setting_def *d = path_setting(r);
	json_t *before, *after;
	int removed;

	if (d == NULL || http_args_allow(r, args) < 0)
		return http_fail_reply(r);
	if (store_begin(r->st) < 0)
		return http_internal(r, "settings begin");
	before = current_setting(r, d);
	if (before == NULL)
		return http_internal_rollback(r, "settings");
	if (store_policy_setting_unset(r->st, d->key, &removed) < 0 ||
	    (after = current_setting(r, d)) == NULL) {
		json_decref(before);
		return http_internal_rollback(r, "settings unset");
	}
	return http_audit_commit_reply(r, "policy_setting.reset", "policy_setting", d->key, before,
				       after, MHD_HTTP_NO_CONTENT, "settings unset");
}

/* ---- DNSBL sites ---- */

static json_t *site_json(const struct store_dnsbl_site *s)
{
	return json_pack("{s:I, s:s, s:s, s:b, s:s, s:s, s:s, s:i, s:s, s:I}", "id",
			 (json_int_t)s->id, "zone", s->zone, "kind", s->kind, "enabled", s->enabled,
			 "action", s->action, "message", s->message, "codes", s->codes, "weight",
			 s->weight, "comment", s->comment, "created", (json_int_t)s->created);
}

struct site_find {
	const char *zone;   /* NULL: every site into items */
	json_t *items;
	json_t *found;
};

static int add_site(const struct store_dnsbl_site *s, void *arg)
{
	struct site_find *f = arg;

	if (f->zone == NULL) {
		json_array_append_new(f->items, site_json(s));
		return 0;
	}
	if (strcasecmp(f->zone, s->zone) == 0) {
		f->found = site_json(s);
		return 1;
	}
	return 0;
}

static int add_stat(const struct store_dnsbl_stat *s, void *arg)
{
	json_t *items = arg;
	size_t i;
	json_t *it;

	json_array_foreach(items, i, it) {
		if (strcasecmp(json_string_value(json_object_get(it, "zone")), s->zone) == 0) {
			json_object_set_new(it, "stats",
					    json_pack("{s:I, s:I, s:I, s:I, s:o}", "queries",
						      (json_int_t)s->queries, "hits",
						      (json_int_t)s->hits, "tempfails",
						      (json_int_t)s->tempfails, "hits_today",
						      (json_int_t)s->hits_today, "last_hit",
						      http_time(s->last_hit)));
			break;
		}
	}
	return 0;
}

static json_t *zero_stats(void)
{
	return json_pack("{s:i, s:i, s:i, s:i, s:n}", "queries", 0, "hits", 0, "tempfails", 0,
			 "hits_today", 0, "last_hit");
}

/*
 * In a cluster, each zone's statistics are the cluster's totals from Redis
 * (a blocking connection: at most cluster_redis_timeout per step); when
 * Redis does not answer, the node's own counts stay.
 */
static void cluster_stats(struct http_req *r, json_t *items)
{
	const struct conf *conf = r->h->conf;
	struct redisContext *c;
	char err[256];
	json_t *it;
	size_t i;

	if (conf == NULL || conf->cluster_redis[0] == '\0')
		return;
	c = cluster_redis_connect_sync(conf->cluster_redis, conf->cluster_redis_timeout_ms, err,
				       sizeof(err));
	if (c == NULL)
		return;
	json_array_foreach(items, i, it) {
		struct cluster_dnsbl_stat cs;
		const char *zone = json_string_value(json_object_get(it, "zone"));

		if (zone == NULL || cluster_redis_dnsbl_get(c, zone, time_now_ms() / DAY_MS, &cs) < 0)
			break;
		json_object_set_new(it, "stats",
				    json_pack("{s:I, s:I, s:I, s:I, s:o}", "queries",
					      (json_int_t)cs.queries, "hits", (json_int_t)cs.hits,
					      "tempfails", (json_int_t)cs.tempfails, "hits_today",
					      (json_int_t)cs.hits_today, "last_hit",
					      http_time(cs.last_hit)));
	}
	redisFree(c);
}

enum MHD_Result http_policy_dnsbl_list(struct http_req *r)
{
	static const char *const args[] = { NULL };
	struct site_find f = { NULL, NULL, NULL };
	json_t *it;
	size_t i;

	if (http_args_allow(r, args) < 0)
		return http_fail_reply(r);
	f.items = json_array();
	if (store_policy_sites(r->st, add_site, &f) < 0)
		goto fail;
	json_array_foreach(f.items, i, it)
		json_object_set_new(it, "stats", zero_stats());
	if (store_policy_dnsbl_stats(r->st, time_now_ms() / DAY_MS, add_stat, f.items) < 0)
		goto fail;
	cluster_stats(r, f.items);
	return http_reply(r, MHD_HTTP_OK, http_list(f.items, NULL));
fail:
	json_decref(f.items);
	return http_internal(r, "dnsbl list");
}

static const struct http_field site_fields[] = {
	{ "zone", HJ_STRING, 1, 253, 0, 0 },
	{ "kind", HJ_STRING, 0, 8, 0, 0 },
	{ "enabled", HJ_BOOL, 0, 0, 0, 0 },
	{ "action", HJ_STRING, 0, 8, 0, 0 },
	{ "message", HJ_STRING, 0, 300, 0, 0 },
	{ "codes", HJ_STRING, 0, 300, 0, 0 },
	{ "weight", HJ_INT, 0, 0, 0, 100 },
	{ "comment", HJ_STRING, 0, 300, 0, 0 },
};

struct site_buf {
	char zone[256], kind[8], action[8], message[301], codes[301], comment[301];
	int enabled, weight;
};

/* Apply the body's fields over b; -1 with r->fail naming the field. */
static int site_apply(struct http_req *r, json_t *body, struct site_buf *b)
{
	static const char *const kinds[] = { "block", "allow", NULL };
	static const char *const actions[] = { "refuse", "tag", "log", NULL };
	struct policy_codes codes;
	char err[200];
	const char *bad = NULL;
	json_t *v;

	if ((v = json_object_get(body, "zone")) != NULL) {
		const char *z = json_string_value(v);

		if (!policy_domain_ok(z, strlen(z)))
			bad = "zone";
		strlcpy_s(b->zone, z, sizeof(b->zone));
	}
	if (bad == NULL && (v = json_object_get(body, "kind")) != NULL) {
		if (http_pick(json_string_value(v), json_string_length(v), kinds) < 0)
			bad = "kind";
		strlcpy_s(b->kind, json_string_value(v), sizeof(b->kind));
	}
	if (bad == NULL && (v = json_object_get(body, "action")) != NULL) {
		if (http_pick(json_string_value(v), json_string_length(v), actions) < 0)
			bad = "action";
		strlcpy_s(b->action, json_string_value(v), sizeof(b->action));
	}
	if (bad == NULL && (v = json_object_get(body, "message")) != NULL) {
		if (!printable(json_string_value(v), 300))
			bad = "message";
		strlcpy_s(b->message, json_string_value(v), sizeof(b->message));
	}
	if (bad == NULL && (v = json_object_get(body, "comment")) != NULL) {
		if (!printable(json_string_value(v), 300))
			bad = "comment";
		strlcpy_s(b->comment, json_string_value(v), sizeof(b->comment));
	}
	if (bad == NULL && (v = json_object_get(body, "codes")) != NULL) {
		if (policy_codes_parse(json_string_value(v), json_string_length(v), &codes, err,
				       sizeof(err)) < 0)
			bad = "codes";
		strlcpy_s(b->codes, json_string_value(v), sizeof(b->codes));
	}
	if ((v = json_object_get(body, "enabled")) != NULL)
		b->enabled = json_is_true(v);
	if ((v = json_object_get(body, "weight")) != NULL)
		b->weight = (int)json_integer_value(v);
	if (bad == NULL)
		return 0;
	r->fail.status = 422;
	r->fail.code = "invalid_value";
	strlcpy_s(r->fail.field, bad, sizeof(r->fail.field));
	snprintf(r->fail.message, sizeof(r->fail.message), "invalid %s", bad);
	return -1;
}

static void site_to(const struct site_buf *b, struct store_dnsbl_site *s)
{
	memset(s, 0, sizeof(*s));
	s->zone = b->zone;
	s->kind = b->kind;
	s->enabled = b->enabled;
	s->action = b->action;
	s->message = b->message;
	s->codes = b->codes;
	s->weight = b->weight;
	s->comment = b->comment;
}

static json_t *find_site(struct http_req *r, const char *zone, int *internal)
{
	struct site_find f = { zone, NULL, NULL };

	*internal = store_policy_sites(r->st, add_site, &f) < 0;
	return f.found;
}

enum MHD_Result http_policy_dnsbl_create(struct http_req *r)
{
	struct site_buf b = { "", "block", "refuse", "", "127.0.0.2-127.0.0.255", "", 1, 1 };
	struct store_dnsbl_site s;
	json_t *body, *after;
	char err[300];
	int64_t id;
	int internal;

	if (http_body(r, site_fields, ARRAY_LEN(site_fields), &body) < 0)
		return http_fail_reply(r);
	if (site_apply(r, body, &b) < 0) {
		json_decref(body);
		return http_fail_reply(r);
	}
	json_decref(body);
	for (char *p = b.zone; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	site_to(&b, &s);
	if (store_begin(r->st) < 0)
		return http_internal(r, "dnsbl begin");
	after = find_site(r, b.zone, &internal);
	if (internal)
		return http_internal_rollback(r, "dnsbl");
	if (after != NULL) {
		json_decref(after);
		store_rollback(r->st);
		return http_error(r, MHD_HTTP_CONFLICT, "duplicate", "zone", "that zone exists");
	}
	if (store_policy_site_add(r->st, &s, &id, err, sizeof(err)) < 0)
		return http_internal_rollback(r, "dnsbl add");
	after = find_site(r, b.zone, &internal);
	if (after == NULL ||
	    http_audit(r, "dnsbl_site.create", "dnsbl_site", b.zone, NULL, after) < 0 ||
	    store_commit(r->st) < 0) {
		json_decref(after);
		return http_internal_rollback(r, "dnsbl add");
	}
	json_object_set_new(after, "stats", zero_stats());
	return http_reply(r, MHD_HTTP_CREATED, after);
}

static int path_zone(struct http_req *r, char *zone, size_t zonesz)
{
	size_t i;

	if (r->nparams != 1 || r->params[0].len >= zonesz ||
	    !policy_domain_ok(r->params[0].p, r->params[0].len))
		return http_not_found(r, "site");
	for (i = 0; i < r->params[0].len; i++)
		zone[i] = (char)tolower((unsigned char)r->params[0].p[i]);
	zone[i] = '\0';
	return 0;
}

static const struct http_field site_patch_fields[] = {
	{ "kind", HJ_STRING, 0, 8, 0, 0 },
	{ "enabled", HJ_BOOL, 0, 0, 0, 0 },
	{ "action", HJ_STRING, 0, 8, 0, 0 },
	{ "message", HJ_STRING, 0, 300, 0, 0 },
	{ "codes", HJ_STRING, 0, 300, 0, 0 },
	{ "weight", HJ_INT, 0, 0, 0, 100 },
	{ "comment", HJ_STRING, 0, 300, 0, 0 },
};

enum MHD_Result http_policy_dnsbl_update(struct http_req *r)
{
	struct site_buf b;
	struct store_dnsbl_site s;
	json_t *body, *before, *after;
	int internal, found;

	memset(&b, 0, sizeof(b));
	if (path_zone(r, b.zone, sizeof(b.zone)) < 0)
		return http_fail_reply(r);
	if (http_body(r, site_patch_fields, ARRAY_LEN(site_patch_fields), &body) < 0)
		return http_fail_reply(r);
	if (store_begin(r->st) < 0) {
		json_decref(body);
		return http_internal(r, "dnsbl begin");
	}
	before = find_site(r, b.zone, &internal);
	if (before == NULL) {
		json_decref(body);
		if (internal)
			return http_internal_rollback(r, "dnsbl");
		store_rollback(r->st);
		return http_error(r, MHD_HTTP_NOT_FOUND, "not_found", NULL, "no such site");
	}
	strlcpy_s(b.kind, json_string_value(json_object_get(before, "kind")), sizeof(b.kind));
	strlcpy_s(b.action, json_string_value(json_object_get(before, "action")),
		  sizeof(b.action));
	strlcpy_s(b.message, json_string_value(json_object_get(before, "message")),
		  sizeof(b.message));
	strlcpy_s(b.codes, json_string_value(json_object_get(before, "codes")), sizeof(b.codes));
	strlcpy_s(b.comment, json_string_value(json_object_get(before, "comment")),
		  sizeof(b.comment));
	b.enabled = json_is_true(json_object_get(before, "enabled"));
	b.weight = (int)json_integer_value(json_object_get(before, "weight"));
	if (site_apply(r, body, &b) < 0) {
		json_decref(body);
		json_decref(before);
		store_rollback(r->st);
		return http_fail_reply(r);
	}
	json_decref(body);
	site_to(&b, &s);
	if (store_policy_site_update(r->st, &s, &found) < 0 ||
	    (after = find_site(r, b.zone, &internal)) == NULL) {
		json_decref(before);
		return http_internal_rollback(r, "dnsbl update");
	}
	if (http_audit(r, "dnsbl_site.update", "dnsbl_site", b.zone, before, after) < 0 ||
	    store_commit(r->st) < 0) {
		json_decref(before);
		json_decref(after);
		return http_internal_rollback(r, "dnsbl update");
	}
	json_decref(before);
	json_object_set_new(after, "stats", zero_stats());
	{
		json_t *one = json_array();

		json_array_append(one, after);
		if (store_policy_dnsbl_stats(r->st, time_now_ms() / DAY_MS, add_stat, one) < 0)
			log_warn(NULL, "http", "dnsbl stats unavailable");
		json_decref(one);
	}
	return http_reply(r, MHD_HTTP_OK, after);
}

enum MHD_Result http_policy_dnsbl_delete(struct http_req *r)
{
	static const char *const args[] = { NULL };
	char zone[256];
	json_t *before;
	int internal, removed;

	if (http_args_allow(r, args) < 0 || path_zone(r, zone, sizeof(zone)) < 0)
		return http_fail_reply(r);
	if (store_begin(r->st) < 0)
		return http_internal(r, "dnsbl begin");
	before = find_site(r, zone, &internal);
	if (before == NULL) {
		if (internal)
			return http_internal_rollback(r, "dnsbl");
		store_rollback(r->st);
		return http_error(r, MHD_HTTP_NOT_FOUND, "not_found", NULL, "no such site");
	}
	if (store_policy_site_remove(r->st, json_string_value(json_object_get(before, "zone")),
				     &removed) < 0) {
		json_decref(before);
		return http_internal_rollback(r, "dnsbl delete");
	}
	return http_audit_commit_reply(r, "dnsbl_site.delete", "dnsbl_site", zone, before, NULL,
				       MHD_HTTP_NO_CONTENT, "dnsbl delete");
}

/* ---- directory (read) ---- */

struct dir_list {
	json_t *items;
	const char *q;
	int kind;             /* -1 any */
	int64_t skip, limit, n;
};

static int add_dir(const struct store_dir_row *d, void *arg)
{
	static const char *const kinds[] = { "primary", "alias", "group", NULL };
	struct dir_list *l = arg;
	json_t *members = json_null();
	json_t *managers = json_null();

	if (l->kind >= 0 && strcmp(d->kind, kinds[l->kind]) != 0)
		return 0;
	if (l->q != NULL && strcasestr(d->address, l->q) == NULL &&
	    strcasestr(d->owner ? d->owner : "", l->q) == NULL)
		return 0;
	if (l->skip > 0) {
		l->skip--;
		return 0;
	}
	if (++l->n > l->limit)
		return 1;
	if (d->members != NULL) {
		const char *p = d->members;

		members = json_array();
		while (*p != '\0') {
			size_t n = strcspn(p, ",");

			if (n > 0)
				json_array_append_new(members, json_stringn(p, n));
			p += n;
			if (*p == ',')
				p++;
		}
	}
	if (strcmp(d->kind, "group") == 0) {
		/* The users who see and act on the group's quarantine. */
		const char *p = d->managers != NULL ? d->managers : "";

		managers = json_array();
		while (*p != '\0') {
			size_t n = strcspn(p, ",");

			if (n > 0)
				json_array_append_new(managers, json_stringn(p, n));
			p += n;
			if (*p == ',')
				p++;
		}
	}
	json_array_append_new(l->items,
			      json_pack("{s:s, s:s, s:s, s:o, s:o}", "address", d->address, "kind",
					d->kind, "owner", d->owner ? d->owner : "", "members",
					members, "managers", managers));
	return 0;
}

enum MHD_Result http_directory_list(struct http_req *r)
{
	static const char *const args[] = { "limit", "offset", "cursor", "q", "kind", NULL };
	static const char *const kinds[] = { "primary", "alias", "group", NULL };
	struct http_page p;
	struct dir_list l;
	char next[32];

	memset(&l, 0, sizeof(l));
	if (http_args_allow(r, args) < 0 || http_page(r, &p) < 0 ||
	    http_arg_str(r, "q", 320, &l.q) < 0 || http_arg_pick(r, "kind", kinds, &l.kind) < 0)
		return http_fail_reply(r);
	if (p.cursor != NULL &&
	    http_parse_i64(p.cursor, strlen(p.cursor), 0, 100000000, &p.offset) < 0)
		return http_error(r, MHD_HTTP_UNPROCESSABLE_CONTENT, "invalid_parameter", "cursor",
				  "malformed cursor");
	l.items = json_array();
	l.skip = p.offset;
	l.limit = p.limit;
	if (store_policy_directory(r->st, add_dir, &l) < 0) {
		json_decref(l.items);
		return http_internal(r, "directory");
	}
	snprintf(next, sizeof(next), "%lld", (long long)(p.offset + p.limit));
	return http_reply(r, MHD_HTTP_OK, http_list(l.items, l.n > p.limit ? next : NULL));
}

/* ---- directory groups (write) ---- */

int http_dir_address(const char *in, char *out, size_t outsz)
{
	char err[300];

	if (strchr(in, '@') == NULL || strchr(in, '*') != NULL || strchr(in, '?') != NULL ||
	    strcmp(in, "<>") == 0 ||
	    policy_value_check(POLICY_LT_MAIL, in, strlen(in), out, outsz, err, sizeof(err)) < 0)
		return -1;
	return 0;
}

static const struct http_field group_fields[] = {
	{ "address", HJ_STRING, 1, 320, 0, 0 },
	{ "name", HJ_STRING, 0, 100, 0, 0 },
	{ "members", HJ_STRING_ARRAY, 0, 10000, 0, 0 },
};

struct group_find {
	const char *address;
	json_t *found;
};

static int find_group(const struct store_dir_row *d, void *arg)
{
	struct group_find *g = arg;
	struct dir_list l;

	if (strcmp(d->kind, "group") != 0 || strcmp(d->address, g->address) != 0)
		return 0;
	memset(&l, 0, sizeof(l));
	l.items = json_array();
	l.kind = -1;
	l.limit = 1;
	add_dir(d, &l);
	g->found = json_incref(json_array_get(l.items, 0));
	json_decref(l.items);
	return 1;
}

static json_t *load_group(struct http_req *r, const char *address, int *internal)
{
	struct group_find g = { address, NULL };

	*internal = store_policy_directory(r->st, find_group, &g) < 0;
	return g.found;
}

enum MHD_Result http_directory_group_create(struct http_req *r)
{
	json_t *body, *members, *item, *after;
	char address[330], name[101] = "", err[300];
	char **norm = NULL;
	size_t i, n = 0;
	int internal;
	int taken = 0;
	enum MHD_Result ret;

	if (http_body(r, group_fields, ARRAY_LEN(group_fields), &body) < 0)
		return http_fail_reply(r);
	if (http_dir_address(json_string_value(json_object_get(body, "address")), address,
			     sizeof(address)) < 0) {
		json_decref(body);
		return http_error(r, MHD_HTTP_UNPROCESSABLE_CONTENT, "invalid_value", "address",
				  "not a valid mail address");
	}
	if (json_object_get(body, "name") != NULL) {
		if (!printable(json_string_value(json_object_get(body, "name")), 100)) {
			json_decref(body);
			return http_error(r, MHD_HTTP_UNPROCESSABLE_CONTENT, "invalid_value", "name",
					  "printable ASCII, up to 100 characters");
		}
		strlcpy_s(name, json_string_value(json_object_get(body, "name")), sizeof(name));
	}
	members = json_object_get(body, "members");
	n = members ? json_array_size(members) : 0;
	norm = xcalloc(n + 1, sizeof(*norm));
	json_array_foreach(members, i, item) {
		norm[i] = xmalloc(330);
		if (http_dir_address(json_string_value(item), norm[i], 330) < 0) {
			ret = http_error(r, MHD_HTTP_UNPROCESSABLE_CONTENT, "invalid_value", "members",
					 "member %zu is not a valid mail address", i);
			goto out;
		}
	}
	/* The group, its members and the audit entry commit together. */
	if (store_begin(r->st) < 0) {
		ret = http_internal(r, "group add");
		goto out;
	}
	if (store_policy_group_add_tx(r->st, address, name, (const char *const *)norm, n,
				      &taken, err, sizeof(err)) < 0) {
		if (taken) {
			store_rollback(r->st);
			ret = http_error(r, MHD_HTTP_CONFLICT, "duplicate", "address", "%s", err);
		} else {
			ret = http_internal_rollback(r, "group add");
		}
		goto out;
	}
	after = load_group(r, address, &internal);
	if (after == NULL) {
		ret = http_internal_rollback(r, "group add");
		goto out;
	}
	ret = http_audit_commit_reply(r, "dir_group.create", "dir_group", address, NULL, after,
				      MHD_HTTP_CREATED, "group add");
out:
	for (i = 0; i < n; i++)
		free(norm[i]);
	free(norm);
	json_decref(body);
	return ret;
}

enum MHD_Result http_directory_group_delete(struct http_req *r)
{
	static const char *const args[] = { NULL };
	char raw[330], address[330];
	json_t *before;
	int internal, removed;

	if (http_args_allow(r, args) < 0)
		return http_fail_reply(r);
	if (r->nparams != 1 || r->params[0].len >= sizeof(raw))
		return http_error(r, MHD_HTTP_NOT_FOUND, "not_found", NULL, "no such group");
	memcpy(raw, r->params[0].p, r->params[0].len);
	raw[r->params[0].len] = '\0';
	if (http_dir_address(raw, address, sizeof(address)) < 0)
		return http_error(r, MHD_HTTP_NOT_FOUND, "not_found", NULL, "no such group");
	if (store_begin(r->st) < 0)
		return http_internal(r, "group begin");
	before = load_group(r, address, &internal);
	if (before == NULL) {
		if (internal)
			return http_internal_rollback(r, "group");
		store_rollback(r->st);
		return http_error(r, MHD_HTTP_NOT_FOUND, "not_found", NULL, "no such group");
	}
	if (store_policy_group_remove(r->st, address, &removed) < 0) {
		json_decref(before);
		return http_internal_rollback(r, "group delete");
	}
	return http_audit_commit_reply(r, "dir_group.delete", "dir_group", address, before, NULL,
				       MHD_HTTP_NO_CONTENT, "group delete");
}

/* ---- directory edits: one address of a user, one member of a group ---- */

/* Path parameter i as a directory address (lower-cased); -1 with 404 in r->fail. */
static int path_address(struct http_req *r, size_t i, char *out, size_t outsz,
			const char *what)
{
	char raw[330];

	if (i >= r->nparams || r->params[i].len >= sizeof(raw))
		goto notfound;
	memcpy(raw, r->params[i].p, r->params[i].len);
	raw[r->params[i].len] = '\0';
	if (http_dir_address(raw, out, outsz) < 0)
		goto notfound;
	return 0;
notfound:
	return http_not_found(r, what);
}

/* The directory user {id}; -1 with r->fail (404) or *internal. */
static int path_user(struct http_req *r, struct store_user *u, int *internal)
{
	int64_t id;
	int found;

	*internal = 0;
	if (http_param_id(r, 0, &id) < 0)
		return -1;
	if (store_auth_user_get(r->st, id, u, &found) < 0) {
		*internal = 1;
		return -1;
	}
	if (!found)
		return http_not_found(r, "user");
	return 0;
}

static const struct http_field address_fields[] = {
	{ "address", HJ_STRING, 1, 320, 0, 0 },
	{ "kind", HJ_STRING, 1, 16, 0, 0 },
};

enum MHD_Result http_user_address_add(struct http_req *r)
{
	static const char *const kinds[] = { "primary", "alias", NULL };
	struct store_user u;
	json_t *body, *after;
	char address[330], oid[400];
	int kind, internal, taken;

	if (http_body(r, address_fields, ARRAY_LEN(address_fields), &body) < 0)
		return http_fail_reply(r);
	kind = http_pick(json_string_value(json_object_get(body, "kind")),
			 json_string_length(json_object_get(body, "kind")), kinds);
	if (http_dir_address(json_string_value(json_object_get(body, "address")), address,
			     sizeof(address)) < 0) {
		json_decref(body);
		return http_error(r, MHD_HTTP_UNPROCESSABLE_CONTENT, "invalid_value", "address",
				  "not a valid mail address");
	}
	json_decref(body);
	if (kind < 0)
		return http_error(r, MHD_HTTP_UNPROCESSABLE_CONTENT, "invalid_value", "kind",
				  "kind is primary or alias");
	if (store_begin(r->st) < 0)
		return http_internal(r, "address begin");
	if (path_user(r, &u, &internal) < 0) {
		if (internal)
			return http_internal_rollback(r, "address user");
		store_rollback(r->st);
		return http_fail_reply(r);
	}
	if (store_policy_address_add(r->st, u.id, address, kinds[kind], &taken) < 0)
		return http_internal_rollback(r, "address add");
	if (taken) {
		store_rollback(r->st);
		return http_error(r, MHD_HTTP_CONFLICT, "duplicate", "address",
				  "address %s is already in the directory", address);
	}
	after = json_pack("{s:s, s:s}", "address", address, "kind", kinds[kind]);
	snprintf(oid, sizeof(oid), "%lld/%s", (long long)u.id, address);
	return http_audit_commit_reply(r, "dir_address.create", "dir_address", oid, NULL, after,
				       MHD_HTTP_CREATED, "address add");
}

struct addr_find {
	const char *address;
	char kind[16];
};

static int find_address(const char *address, const char *kind, void *arg)
{
	struct addr_find *f = arg;

	if (strcmp(address, f->address) != 0)
		return 0;
	strlcpy_s(f->kind, kind, sizeof(f->kind));
	return 1;
}

enum MHD_Result http_user_address_delete(struct http_req *r)
{
	static const char *const args[] = { NULL };
	struct store_user u;
	struct addr_find f;
	json_t *before;
	char address[330], oid[400];
	int internal, removed;

	if (http_args_allow(r, args) < 0)
		return http_fail_reply(r);
	if (path_address(r, 1, address, sizeof(address), "address") < 0) {
		/* an unknown user answers 404 as well, but say which */
		if (path_user(r, &u, &internal) < 0 && internal)
			return http_internal(r, "address user");
		return http_error(r, MHD_HTTP_NOT_FOUND, "not_found", NULL, "no such address");
	}
	if (store_begin(r->st) < 0)
		return http_internal(r, "address begin");
	if (path_user(r, &u, &internal) < 0) {
		if (internal)
			return http_internal_rollback(r, "address user");
		store_rollback(r->st);
		return http_fail_reply(r);
	}
	memset(&f, 0, sizeof(f));
	f.address = address;
	if (store_auth_user_addresses(r->st, u.id, find_address, &f) < 0)
		return http_internal_rollback(r, "address");
	if (f.kind[0] == '\0') {
		store_rollback(r->st);
		return http_error(r, MHD_HTTP_NOT_FOUND, "not_found", NULL,
				  "the user has no such address");
	}
	before = json_pack("{s:s, s:s}", "address", address, "kind", f.kind);
	snprintf(oid, sizeof(oid), "%lld/%s", (long long)u.id, address);
	if (store_policy_address_remove(r->st, u.id, address, &removed) < 0) {
		json_decref(before);
		return http_internal_rollback(r, "address delete");
	}
	return http_audit_commit_reply(r, "dir_address.delete", "dir_address", oid, before, NULL,
				       MHD_HTTP_NO_CONTENT, "address delete");
}

static const struct http_field member_fields[] = {
	{ "member", HJ_STRING, 1, 320, 0, 0 },
};

enum MHD_Result http_group_member_add(struct http_req *r)
{
	json_t *body, *after;
	char group[330], member[330];
	int found, added, bad;

	if (path_address(r, 0, group, sizeof(group), "group") < 0)
		return http_fail_reply(r);
	if (http_body(r, member_fields, ARRAY_LEN(member_fields), &body) < 0)
		return http_fail_reply(r);
	bad = http_dir_address(json_string_value(json_object_get(body, "member")), member,
			       sizeof(member)) < 0;
	json_decref(body);
	if (bad)
		return http_error(r, MHD_HTTP_UNPROCESSABLE_CONTENT, "invalid_value", "member",
				  "not a valid mail address");
	if (store_begin(r->st) < 0)
		return http_internal(r, "member begin");
	if (store_policy_member_add(r->st, group, member, &found, &added) < 0)
		return http_internal_rollback(r, "member add");
	if (!found || !added) {
		store_rollback(r->st);
		if (!found)
			return http_error(r, MHD_HTTP_NOT_FOUND, "not_found", NULL, "no such group");
		return http_error(r, MHD_HTTP_CONFLICT, "duplicate", "member",
				  "%s is already a member", member);
	}
	after = json_pack("{s:s}", "member", member);
	return http_audit_commit_reply(r, "dir_group.member_add", "dir_group", group, NULL, after,
				       MHD_HTTP_CREATED, "member add");
}

enum MHD_Result http_group_member_delete(struct http_req *r)
{
	static const char *const args[] = { NULL };
	json_t *before;
	char group[330], member[330];
	int found, removed;

	if (http_args_allow(r, args) < 0 || path_address(r, 0, group, sizeof(group), "group") < 0 ||
	    path_address(r, 1, member, sizeof(member), "member") < 0)
		return http_fail_reply(r);
	if (store_begin(r->st) < 0)
		return http_internal(r, "member begin");
	if (store_policy_member_remove(r->st, group, member, &found, &removed) < 0)
		return http_internal_rollback(r, "member delete");
	if (!found || !removed) {
		store_rollback(r->st);
		return http_error(r, MHD_HTTP_NOT_FOUND, "not_found", NULL,
				  !found ? "no such group" : "no such member");
	}
	before = json_pack("{s:s}", "member", member);
	return http_audit_commit_reply(r, "dir_group.member_remove", "dir_group", group, before,
				       NULL, MHD_HTTP_NO_CONTENT, "member delete");
}
