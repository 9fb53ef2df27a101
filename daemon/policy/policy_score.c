/*
 * policy_score: score thresholds per domain and per directory user
 * (docs/score.md "Thresholds").
 *
 * The snapshot's share is built by policy_snap_load_store() on the
 * watcher: every row once (score_rows), and three hash sets that point at
 * a row by index — the exact domain, the user's name, and each directory
 * address (primary and aliases) of a user who has a row.  A recipient
 * therefore costs two probes, whatever the number of rows.  A group's
 * address is nobody's: its recipients get their domain's row or the global
 * settings.
 *
 * policy_score_set() is the one checked write of a row, used by the API
 * (http_score.c) and `moatd score thresholds` (cli_score.c): it runs inside
 * the caller's transaction and leaves the audit row and the commit to the
 * caller, who knows the actor.  Rows written by hand that fail the checks
 * are skipped by the loader with a count, never fatal.
 */
#include "policy_internal.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../store/store.h"
#include "../store/store_policy.h"
#include "../store/store_score.h"
#include "../util/util.h"

_Static_assert((int)SCORE_T_TAG == (int)STORE_SCORE_TAG &&
	       (int)SCORE_T_QUARANTINE == (int)STORE_SCORE_QUARANTINE &&
	       (int)SCORE_T_REFUSE == (int)STORE_SCORE_REFUSE &&
	       (int)SCORE_T_GREYLIST == (int)STORE_SCORE_GREYLIST,
	       "threshold bits of policy_score.h and store_score.h differ");

#define SCORE_NAME_MAX 320

static const char *const value_names[4] = { "tag", "quarantine", "refuse", "greylist" };
static const unsigned value_bits[4] = { SCORE_T_TAG, SCORE_T_QUARANTINE, SCORE_T_REFUSE,
					SCORE_T_GREYLIST };

static double *value_at(struct score_thresholds *t, int i)
{
	switch (i) {
	case 0:
		return &t->tag;
	case 1:
		return &t->quarantine;
	case 2:
		return &t->refuse;
	default:
		return &t->greylist;
	}
}

static double value_of(const struct score_thresholds *t, int i)
{
	switch (i) {
	case 0:
		return t->tag;
	case 1:
		return t->quarantine;
	case 2:
		return t->refuse;
	default:
		return t->greylist;
	}
}

int policy_score_scope(const char *scope)
{
	if (strcmp(scope, "domain") == 0 || strcmp(scope, "user") == 0)
		return 0;
	return -1;
}

int policy_score_value_ok(double v)
{
	double m;

	if (!isfinite(v) || v < SCORE_T_MIN || v > SCORE_T_MAX)
		return -1;
	/* At most 3 decimals, as the settings take them: 2.0005 is a typo. */
	m = v * 1000.0;
	return fabs(m - round(m)) < 1e-6 ? 0 : -1;
}

/* A domain lower-cased into out (a host name, no trailing dot); 0 or -1. */
static int domain_norm(const char *name, char *out, size_t outsz)
{
	size_t len = strlen(name), i;

	if (len == 0 || len >= outsz || !policy_domain_ok(name, len))
		return -1;
	for (i = 0; i < len; i++)
		out[i] = (char)(name[i] >= 'A' && name[i] <= 'Z' ? name[i] + 32 : name[i]);
	out[len] = '\0';
	return 0;
}

/* --- the snapshot's share ----------------------------------------------------- */

int policy_snap_add_score(struct policy_snap *sn, const char *scope, const char *name,
			  const struct score_override *o, char *err, size_t errsz)
{
	struct policy_score_row *row;
	struct policy_ref *r;
	char norm[SCORE_NAME_MAX + 1], label[SCORE_NAME_MAX + 16];
	int user = strcmp(scope, "user") == 0;
	int i;

	if (policy_score_scope(scope) < 0) {
		snprintf(err, errsz, "unknown scope %s", scope);
		return -1;
	}
	if (user) {
		if (name[0] == '\0' || strlen(name) > SCORE_NAME_MAX) {
			snprintf(err, errsz, "bad user name");
			return -1;
		}
		strlcpy_s(norm, name, sizeof(norm));
	} else if (domain_norm(name, norm, sizeof(norm)) < 0) {
		snprintf(err, errsz, "bad domain %s", name);
		return -1;
	}
	for (i = 0; i < 4; i++) {
		if ((o->set & value_bits[i]) && policy_score_value_ok(value_of(&o->v, i)) < 0) {
			snprintf(err, errsz, "%s: bad value", value_names[i]);
			return -1;
		}
	}
	sn->score_rows = xrealloc(sn->score_rows, (sn->nscore_rows + 1) * sizeof(*sn->score_rows));
	row = &sn->score_rows[sn->nscore_rows];
	row->o = *o;
	row->o.set &= SCORE_T_ALL;
	snprintf(label, sizeof(label), "%s:%s", scope, norm);
	row->label = policy_snap_keep(sn, label);
	r = policy_snap_new_ref(sn);
	r->id = (int64_t)sn->nscore_rows;
	r->list = "score_threshold";
	r->value = row->label;
	policy_strset_add(user ? &sn->score_user : &sn->score_domain, norm, strlen(norm), r);
	sn->nscore_rows++;
	return 0;
}

void policy_snap_add_score_address(struct policy_snap *sn, const char *address,
				   const char *user)
{
	const struct policy_ref *u = policy_strset_get(&sn->score_user, user, strlen(user));

	if (u == NULL)
		return;
	/* The user's ref serves: it carries the row's index. */
	policy_strset_add(&sn->score_addr, address, strlen(address), u);
}

struct load_score {
	struct policy_snap *sn;
	int *skipped;
};

static int load_row(const struct store_score_row *r, void *arg)
{
	struct load_score *l = arg;
	struct score_override o;
	char err[200];

	o.set = r->set;
	o.v.tag = r->tag;
	o.v.quarantine = r->quarantine;
	o.v.refuse = r->refuse;
	o.v.greylist = r->greylist;
	if (policy_snap_add_score(l->sn, r->scope, r->name, &o, err, sizeof(err)) < 0)
		(*l->skipped)++;
	return 0;
}

static int load_address(const char *address, const char *user, void *arg)
{
	struct load_score *l = arg;

	policy_snap_add_score_address(l->sn, address, user);
	return 0;
}

int policy_snap_load_score(struct store *st, struct policy_snap *sn, int *skipped)
{
	struct load_score l = { sn, skipped };

	if (store_score_list(st, load_row, &l) < 0 ||
	    store_score_user_addresses(st, load_address, &l) < 0)
		return -1;
	return 0;
}

static void global_of(const struct policy_settings *s, struct score_thresholds *t)
{
	t->tag = s->score_tag;
	t->quarantine = s->score_quarantine;
	t->refuse = s->score_refuse;
	t->greylist = s->score_greylist;
}

/* Lay the values o sets over t; 1 when it set any. */
static int overlay(struct score_thresholds *t, const struct score_override *o)
{
	int i;

	for (i = 0; i < 4; i++)
		if (o->set & value_bits[i])
			*value_at(t, i) = value_of(&o->v, i);
	return (o->set & SCORE_T_ALL) != 0;
}

void policy_score_thresholds(const struct policy_snap *sn, const char *rcpt,
			     struct score_thresholds *t, const char **scope)
{
	const struct policy_ref *d = NULL, *u = NULL;
	const char *at, *label = "global";

	global_of(&sn->set, t);
	if (sn->nscore_rows > 0 && rcpt != NULL) {
		at = strrchr(rcpt, '@');
		if (at != NULL && at[1] != '\0')
			d = policy_strset_get(&sn->score_domain, at + 1, strlen(at + 1));
		u = policy_strset_get(&sn->score_addr, rcpt, strlen(rcpt));
	}
	/* Least specific first, so that the user's values win. */
	if (d != NULL && overlay(t, &sn->score_rows[d->id].o))
		label = sn->score_rows[d->id].label;
	if (u != NULL && overlay(t, &sn->score_rows[u->id].o))
		label = sn->score_rows[u->id].label;
	if (scope != NULL)
		*scope = label;
}

/* --- writes ------------------------------------------------------------------- */

static void fail(struct policy_score_fail *f, int kind, const char *field, const char *fmt,
		 ...) __attribute__((format(printf, 4, 5)));

static void fail(struct policy_score_fail *f, int kind, const char *field, const char *fmt,
		 ...)
{
	va_list ap;

	f->kind = kind;
	strlcpy_s(f->field, field ? field : "", sizeof(f->field));
	va_start(ap, fmt);
	vsnprintf(f->message, sizeof(f->message), fmt, ap);
	va_end(ap);
}

static json_t *num_or_null(unsigned set, unsigned bit, double v)
{
	return (set & bit) ? json_real(v) : json_null();
}

static json_t *row_json(const struct store_score_row *r)
{
	return json_pack("{s:I, s:s, s:s, s:o, s:o, s:o, s:o, s:I}", "id", (json_int_t)r->id,
			 "scope", r->scope, "name", r->name,
			 "tag", num_or_null(r->set, SCORE_T_TAG, r->tag),
			 "quarantine", num_or_null(r->set, SCORE_T_QUARANTINE, r->quarantine),
			 "refuse", num_or_null(r->set, SCORE_T_REFUSE, r->refuse),
			 "greylist", num_or_null(r->set, SCORE_T_GREYLIST, r->greylist),
			 "updated", (json_int_t)r->updated);
}

/* A row found: as JSON into *(json_t **)arg, and as an override after it. */
struct found_row {
	json_t *json;
	struct score_override o;
};

static int keep_row(const struct store_score_row *r, void *arg)
{
	struct found_row *f = arg;

	json_decref(f->json);
	f->json = row_json(r);
	f->o.set = r->set;
	f->o.v.tag = r->tag;
	f->o.v.quarantine = r->quarantine;
	f->o.v.refuse = r->refuse;
	f->o.v.greylist = r->greylist;
	return 1;
}

static int global_setting(const char *key, const char *value, void *arg)
{
	char err[200];

	if (policy_setting_check(key, value, err, sizeof(err)) == 0)
		policy_settings_apply(arg, key, value);
	return 0;
}

int policy_score_global(struct store *st, struct score_thresholds *t)
{
	struct policy_settings *s = xcalloc(1, sizeof(*s));
	int rc;

	policy_settings_defaults(s);
	rc = store_policy_settings(st, global_setting, s);
	global_of(s, t);
	free(s);
	return rc;
}

/* The domains of a user's addresses, distinct, for the inheritance check. */
struct user_domains {
	char (*d)[SCORE_NAME_MAX + 1];
	size_t n;
	char primary[SCORE_NAME_MAX + 1];
};

static int add_domain(const char *address, void *arg)
{
	struct user_domains *u = arg;
	const char *at = strrchr(address, '@');
	size_t i;

	if (u->primary[0] == '\0')
		strlcpy_s(u->primary, address, sizeof(u->primary));
	if (at == NULL || strlen(at + 1) > SCORE_NAME_MAX)
		return 0;
	for (i = 0; i < u->n; i++)
		if (strcmp(u->d[i], at + 1) == 0)
			return 0;
	u->d = xrealloc(u->d, (u->n + 1) * sizeof(*u->d));
	strlcpy_s(u->d[u->n++], at + 1, sizeof(u->d[0]));
	return 0;
}

/*
 * tag <= quarantine <= refuse for the pairs o sets a side of, the other
 * side from parent (with label); 0, or -1 with f.
 */
static int check_order(const struct score_override *o, const struct score_thresholds *parent,
		       const char *plabel, struct policy_score_fail *f)
{
	static const int pairs[2][2] = { { 0, 1 }, { 1, 2 } };
	struct score_thresholds eff = *parent;
	int i;

	overlay(&eff, o);
	for (i = 0; i < 2; i++) {
		int lo = pairs[i][0], hi = pairs[i][1];
		int lo_set = (o->set & value_bits[lo]) != 0, hi_set = (o->set & value_bits[hi]) != 0;

		if ((!lo_set && !hi_set) || value_of(&eff, lo) <= value_of(&eff, hi))
			continue;
		if (lo_set && hi_set)
			fail(f, POLICY_SCORE_INVALID, value_names[lo], "%s %g is above %s %g: the"
			     " thresholds go tag <= quarantine <= refuse", value_names[lo],
			     value_of(&eff, lo), value_names[hi], value_of(&eff, hi));
		else if (lo_set)
			fail(f, POLICY_SCORE_INVALID, value_names[lo], "%s %g is above the inherited"
			     " %s %g (%s): the thresholds go tag <= quarantine <= refuse",
			     value_names[lo], value_of(&eff, lo), value_names[hi],
			     value_of(&eff, hi), plabel);
		else
			fail(f, POLICY_SCORE_INVALID, value_names[hi], "%s %g is below the inherited"
			     " %s %g (%s): the thresholds go tag <= quarantine <= refuse",
			     value_names[hi], value_of(&eff, hi), value_names[lo],
			     value_of(&eff, lo), plabel);
		return -1;
	}
	return 0;
}

/* The effective values a domain gives over global (label: which). */
static int domain_parent(struct store *st, const char *domain,
			 const struct score_thresholds *global, struct score_thresholds *t,
			 char *label, size_t labelsz)
{
	struct found_row fr = { NULL, { 0, { 0, 0, 0, 0 } } };
	int found;

	*t = *global;
	snprintf(label, labelsz, "global");
	if (store_score_get(st, "domain", domain, keep_row, &fr, &found) < 0)
		return -1;
	json_decref(fr.json);
	if (found && overlay(t, &fr.o))
		snprintf(label, labelsz, "domain %s", domain);
	return 0;
}

int policy_score_set(struct store *st, const char *scope, const char *name,
		     const struct score_override *o, json_t **before, json_t **after,
		     struct policy_score_fail *f)
{
	struct found_row old = { NULL, { 0, { 0, 0, 0, 0 } } }, now = { NULL, { 0, { 0, 0, 0, 0 } } };
	struct user_domains ud = { NULL, 0, "" };
	struct score_thresholds global, parent;
	struct store_score_row row;
	char norm[SCORE_NAME_MAX + 1], plabel[SCORE_NAME_MAX + 16];
	int64_t id;
	int user, found, i;
	size_t k;

	memset(f, 0, sizeof(*f));
	*before = NULL;
	*after = NULL;
	if (policy_score_scope(scope) < 0) {
		fail(f, POLICY_SCORE_NO_SUCH, "scope", "scope is domain or user");
		return -1;
	}
	user = strcmp(scope, "user") == 0;
	for (i = 0; i < 4; i++) {
		if ((o->set & value_bits[i]) && policy_score_value_ok(value_of(&o->v, i)) < 0) {
			fail(f, POLICY_SCORE_INVALID, value_names[i], "%s must be a number from %g"
			     " to %g with at most 3 decimals", value_names[i], SCORE_T_MIN,
			     SCORE_T_MAX);
			return -1;
		}
	}
	if (!user) {
		if (domain_norm(name, norm, sizeof(norm)) < 0) {
			fail(f, POLICY_SCORE_INVALID, "name", "name must be a domain (example.com)");
			return -1;
		}
	} else {
		if (name[0] == '\0' || strlen(name) > SCORE_NAME_MAX) {
			fail(f, POLICY_SCORE_NO_SUCH, "name", "no such user");
			return -1;
		}
		strlcpy_s(norm, name, sizeof(norm));
	}
	if (policy_score_global(st, &global) < 0)
		goto store_fail;
	if (!user) {
		if (check_order(o, &global, "global", f) < 0)
			return -1;
	} else {
		if (store_score_addresses_of(st, norm, add_domain, &ud, &found) < 0)
			goto store_fail;
		if (!found) {
			free(ud.d);
			fail(f, POLICY_SCORE_NO_SUCH, "name", "no such user %s", norm);
			return -1;
		}
		if (ud.n == 0 && check_order(o, &global, "global", f) < 0)
			goto out_fail;
		for (k = 0; k < ud.n; k++) {
			if (domain_parent(st, ud.d[k], &global, &parent, plabel,
					  sizeof(plabel)) < 0)
				goto store_fail;
			if (check_order(o, &parent, plabel, f) < 0)
				goto out_fail;
		}
		free(ud.d);
		ud.d = NULL;
	}
	if (store_score_get(st, scope, norm, keep_row, &old, &found) < 0)
		goto store_fail;
	memset(&row, 0, sizeof(row));
	row.scope = scope;
	row.name = norm;
	row.set = o->set & SCORE_T_ALL;
	row.tag = o->v.tag;
	row.quarantine = o->v.quarantine;
	row.refuse = o->v.refuse;
	row.greylist = o->v.greylist;
	if (store_score_put(st, &row, &id) < 0 ||
	    store_score_get(st, scope, norm, keep_row, &now, &found) < 0 || !found)
		goto store_fail;
	*before = old.json;
	*after = now.json;
	return 0;
store_fail:
	fail(f, POLICY_SCORE_STORE, NULL, "%s", store_score_errmsg(st));
out_fail:
	free(ud.d);
	json_decref(old.json);
	json_decref(now.json);
	return -1;
}

int policy_score_delete(struct store *st, const char *scope, const char *name,
			json_t **before, struct policy_score_fail *f)
{
	struct found_row old = { NULL, { 0, { 0, 0, 0, 0 } } };
	char norm[SCORE_NAME_MAX + 1];
	int found, removed;

	memset(f, 0, sizeof(*f));
	*before = NULL;
	if (policy_score_scope(scope) < 0) {
		fail(f, POLICY_SCORE_NO_SUCH, "scope", "scope is domain or user");
		return -1;
	}
	if (strcmp(scope, "domain") == 0) {
		if (domain_norm(name, norm, sizeof(norm)) < 0) {
			fail(f, POLICY_SCORE_NO_SUCH, "name", "no such threshold row");
			return -1;
		}
	} else if (strlcpy_s(norm, name, sizeof(norm)) >= sizeof(norm) || norm[0] == '\0') {
		fail(f, POLICY_SCORE_NO_SUCH, "name", "no such threshold row");
		return -1;
	}
	if (store_score_get(st, scope, norm, keep_row, &old, &found) < 0 ||
	    (found && store_score_delete(st, scope, norm, &removed) < 0)) {
		json_decref(old.json);
		fail(f, POLICY_SCORE_STORE, NULL, "%s", store_score_errmsg(st));
		return -1;
	}
	if (!found) {
		fail(f, POLICY_SCORE_NO_SUCH, "name", "no threshold row for %s %s", scope, norm);
		return -1;
	}
	*before = old.json;
	return 0;
}

static json_t *thresholds_json(const struct score_thresholds *t)
{
	return json_pack("{s:f, s:f, s:f, s:f}", "tag", t->tag, "quarantine", t->quarantine,
			 "refuse", t->refuse, "greylist", t->greylist);
}

static int list_row(const struct store_score_row *r, void *arg)
{
	json_array_append_new(arg, row_json(r));
	return 0;
}

json_t *policy_score_list_json(struct store *st)
{
	struct score_thresholds global;
	json_t *items = json_array();

	if (policy_score_global(st, &global) < 0 || store_score_list(st, list_row, items) < 0) {
		json_decref(items);
		return NULL;
	}
	return json_pack("{s:o, s:o}", "global", thresholds_json(&global), "items", items);
}

json_t *policy_score_user_json(struct store *st, const char *name, struct policy_score_fail *f)
{
	struct found_row dom = { NULL, { 0, { 0, 0, 0, 0 } } }, own = { NULL, { 0, { 0, 0, 0, 0 } } };
	struct user_domains ud = { NULL, 0, "" };
	struct score_thresholds t;
	char dlabel[SCORE_NAME_MAX + 16], ulabel[SCORE_NAME_MAX + 16];
	const char *src[4] = { "global", "global", "global", "global" };
	const char *at;
	json_t *o, *source;
	int found, i;

	memset(f, 0, sizeof(*f));
	if (policy_score_global(st, &t) < 0 ||
	    store_score_addresses_of(st, name, add_domain, &ud, &found) < 0)
		goto store_fail;
	free(ud.d);
	if (!found) {
		fail(f, POLICY_SCORE_NO_SUCH, "name", "no such user %s", name);
		return NULL;
	}
	at = strrchr(ud.primary, '@');
	if (at != NULL && store_score_get(st, "domain", at + 1, keep_row, &dom, &found) < 0)
		goto store_fail;
	if (store_score_get(st, "user", name, keep_row, &own, &found) < 0)
		goto store_fail;
	snprintf(dlabel, sizeof(dlabel), "domain:%s", at != NULL ? at + 1 : "");
	snprintf(ulabel, sizeof(ulabel), "user:%s", name);
	for (i = 0; i < 4; i++) {
		if (dom.json != NULL && (dom.o.set & value_bits[i])) {
			*value_at(&t, i) = value_of(&dom.o.v, i);
			src[i] = dlabel;
		}
		if (own.json != NULL && (own.o.set & value_bits[i])) {
			*value_at(&t, i) = value_of(&own.o.v, i);
			src[i] = ulabel;
		}
	}
	source = json_object();
	for (i = 0; i < 4; i++)
		json_object_set_new(source, value_names[i], json_string(src[i]));
	o = thresholds_json(&t);
	json_object_set_new(o, "address", ud.primary[0] ? json_string(ud.primary) : json_null());
	json_object_set_new(o, "source", source);
	json_object_set_new(o, "own", own.json != NULL ? own.json : json_null());
	json_decref(dom.json);
	return o;
store_fail:
	json_decref(dom.json);
	json_decref(own.json);
	fail(f, POLICY_SCORE_STORE, NULL, "%s", store_score_errmsg(st));
	return NULL;
}
