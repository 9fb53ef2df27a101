/*
 * policy_snap: build and free the immutable policy snapshot.
 *
 * policy_snap_load() reads every policy table through store_policy and
 * compiles the lists into lookup structures; it runs on the watcher thread
 * or at start-up, never on the loop.  The snapshot owns every string and
 * ref it holds (strings[], refs_arr[] — refs are allocated in chunks so
 * their addresses stay put while the lists point at them).  Entries that
 * fail validation (written by hand into the database) are skipped with a
 * count, never fatal.
 */
#include "policy_internal.h"

#include <jansson.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../log/log.h"
#include "../store/store.h"
#include "../store/store_policy.h"
#include "../store/store_rules.h"
#include "../store/store_userlist.h"
#include "../rules/rules.h"
#include "../score/score_models.h"
#include "../score/dkim_sign.h"
#include "../store/store_bayes.h"
#include "../util/util.h"

/* Refs are allocated in fixed chunks so that pointers to them stay valid. */
#define REF_CHUNK 1024

struct ref_chunk {
	struct ref_chunk *next;
	struct policy_ref r[REF_CHUNK];
};

static const char *const list_names[PL_COUNT] = {
	"conn_allow", "conn_deny", "sender_allow", "sender_deny", "rcpt_allow", "rcpt_deny",
	"local_domain", "relay_net", "relay_exempt", "relay_dest_allow", "relay_dest_deny",
};

static const char *keep(struct policy_snap *sn, const char *s)
{
	if (sn->nstrings == sn->strings_cap) {
		sn->strings_cap = sn->strings_cap ? sn->strings_cap * 2 : 64;
		sn->strings = xrealloc(sn->strings, sn->strings_cap * sizeof(char *));
	}
	sn->strings[sn->nstrings] = xstrdup(s);
	return sn->strings[sn->nstrings++];
}

static struct policy_ref *new_ref(struct policy_snap *sn)
{
	struct ref_chunk *c = (struct ref_chunk *)sn->refs_arr;

	if (c == NULL || sn->nrefs == REF_CHUNK) {
		struct ref_chunk *n = xcalloc(1, sizeof(*n));

		n->next = c;
		sn->refs_arr = (struct policy_ref *)n;
		sn->nrefs = 0;
		c = n;
	}
	return &c->r[sn->nrefs++];
}

const char *policy_snap_keep(struct policy_snap *sn, const char *s)
{
	return keep(sn, s);
}

struct policy_ref *policy_snap_new_ref(struct policy_snap *sn)
{
	return new_ref(sn);
}

struct policy_snap *policy_snap_empty(void)
{
	struct policy_snap *sn = xcalloc(1, sizeof(*sn));

	sn->refs = 1;
	policy_settings_defaults(&sn->set);
	return sn;
}

int policy_snap_add(struct policy_snap *sn, int64_t id, const char *list, const char *value,
		    char *err, size_t errsz)
{
	const struct policy_list_kind *k = policy_list_kind_find(list);
	char norm[400];
	struct policy_ref *r;
	int i;

	if (k == NULL) {
		snprintf(err, errsz, "unknown list %s", list);
		return -1;
	}
	if (policy_value_check(k->type, value, strlen(value), norm, sizeof(norm), err, errsz) < 0)
		return -1;
	for (i = 0; i < PL_COUNT; i++)
		if (strcmp(list_names[i], list) == 0)
			break;
	if (i == PL_COUNT)
		abort(); /* list_names and policy_list_kinds disagree */
	r = new_ref(sn);
	r->id = id;
	r->list = list_names[i];
	r->value = keep(sn, norm);
	policy_list_add(&sn->lists[i], k->type, r);
	/* Entries come in id order: the first one added is <Postmaster>'s domain. */
	if (i == PL_LOCAL_DOMAIN && sn->first_local[0] == '\0' && strchr(norm, '*') == NULL &&
	    strlen(norm) < sizeof(sn->first_local))
		strlcpy_s(sn->first_local, norm, sizeof(sn->first_local));
	sn->nentries++;
	return 0;
}

void policy_snap_add_dir(struct policy_snap *sn, const char *address, enum policy_dir_kind kind)
{
	struct policy_ref *r = new_ref(sn);

	r->id = kind;
	r->list = "directory";
	r->value = keep(sn, address);
	policy_strset_add(&sn->dir, address, strlen(address), r);
}

int policy_snap_add_site(struct policy_snap *sn, int64_t id, const char *zone, int allow,
			 int enabled, const char *action, const char *message,
			 const char *codes, int weight, char *err, size_t errsz)
{
	struct policy_dnsbl_site *s;

	if (!policy_domain_ok(zone, strlen(zone))) {
		snprintf(err, errsz, "bad zone %s", zone);
		return -1;
	}
	sn->sites = xrealloc(sn->sites, (sn->nsites + 1) * sizeof(*sn->sites));
	s = &sn->sites[sn->nsites];
	memset(s, 0, sizeof(*s));
	if (policy_codes_parse(codes, strlen(codes), &s->codes, err, errsz) < 0)
		return -1;
	s->id = id;
	s->zone = xstrdup(zone);
	s->allow = allow;
	s->enabled = enabled;
	s->action = strcmp(action, "tag") == 0 ? POLICY_DNSBL_TAG
		: strcmp(action, "log") == 0 ? POLICY_DNSBL_LOG : POLICY_DNSBL_REFUSE;
	s->message = xstrdup(message ? message : "");
	s->weight = weight;
	sn->nsites++;
	return 0;
}

void policy_snap_free(struct policy_snap *sn)
{
	struct ref_chunk *c;
	size_t i;

	if (sn == NULL)
		return;
	for (i = 0; i < PL_COUNT; i++)
		policy_list_free(&sn->lists[i]);
	policy_strset_free(&sn->dir);
	policy_strset_free(&sn->user_owner);
	policy_strset_free(&sn->user_senders);
	policy_strset_free(&sn->mbox_owner);
	policy_strset_free(&sn->score_domain);
	policy_strset_free(&sn->score_user);
	policy_strset_free(&sn->score_addr);
	free(sn->score_rows);
	free(sn->mbox_sets);
	for (i = 0; i < sn->nsites; i++) {
		free(sn->sites[i].zone);
		free(sn->sites[i].message);
	}
	free(sn->sites);
	c = (struct ref_chunk *)sn->refs_arr;
	while (c != NULL) {
		struct ref_chunk *n = c->next;

		free(c);
		c = n;
	}
	for (i = 0; i < sn->nstrings; i++)
		free(sn->strings[i]);
	free(sn->strings);
	rules_set_free(sn->rules);
	free(sn->rule_ids);
	score_models_free(sn->bayes);
	dkim_keyset_free(sn->dkim);
	free(sn);
}

int policy_snap_in_list_cb(void *sn, const char *list, const char *value)
{
	return policy_snap_in_list(sn, list, value);
}

int policy_snap_in_list(const struct policy_snap *sn, const char *list, const char *value)
{
	const struct policy_list_kind *k = policy_list_kind_find(list);
	const struct policy_list *l;
	const char *at;
	uint8_t ip[16];
	int i;

	if (k == NULL || value == NULL)
		return 0;
	for (i = 0; i < PL_COUNT; i++)
		if (strcmp(list_names[i], list) == 0)
			break;
	if (i == PL_COUNT)
		return 0;
	l = &sn->lists[i];
	if (l->count == 0)
		return 0;
	switch (k->type) {
	case POLICY_LT_HOST:
		if (policy_ip_parse(value, strlen(value), ip) == 0)
			return policy_list_match_ip(l, ip) != NULL;
		return policy_list_match_host(l, value) != NULL;
	case POLICY_LT_MAIL:
		return policy_list_match_mail(l, value) != NULL;
	case POLICY_LT_DOMAIN:
		at = strrchr(value, '@');
		return value[0] != '\0' &&
		       policy_list_match_domain(l, at != NULL ? at + 1 : value) != NULL;
	}
	return 0;
}

/* --- loading -------------------------------------------------------------- */

struct load {
	struct policy_snap *sn;
	int skipped;
};

static int load_entry(const struct store_policy_entry *e, void *arg)
{
	struct load *l = arg;
	char err[200];

	if (policy_snap_add(l->sn, e->id, e->list, e->value, err, sizeof(err)) < 0)
		l->skipped++;
	return 0;
}

static int load_setting(const char *key, const char *value, void *arg)
{
	struct load *l = arg;
	char err[200];

	if (policy_setting_check(key, value, err, sizeof(err)) < 0)
		l->skipped++;
	else
		policy_settings_apply(&l->sn->set, key, value);
	return 0;
}

static int load_site(const struct store_dnsbl_site *s, void *arg)
{
	struct load *l = arg;
	char err[200];

	if (policy_snap_add_site(l->sn, s->id, s->zone, strcmp(s->kind, "allow") == 0,
				 s->enabled, s->action, s->message, s->codes, s->weight,
				 err, sizeof(err)) < 0)
		l->skipped++;
	return 0;
}

struct load_rules {
	json_t *arr;
	int64_t *ids;
	size_t n, cap;
	int bad;
};

static int load_rule(const struct store_rule *r, void *arg)
{
	struct load_rules *lr = arg;
	json_t *o = json_loads(r->definition, 0, NULL);

	if (o == NULL || !json_is_object(o)) {
		json_decref(o);
		lr->bad++;
		return 0;
	}
	if (lr->n == lr->cap) {
		lr->cap = lr->cap ? lr->cap * 2 : 16;
		lr->ids = xrealloc(lr->ids, lr->cap * sizeof(*lr->ids));
	}
	lr->ids[lr->n++] = r->id;
	json_array_append_new(lr->arr, o);
	return 0;
}

/*
 * The enabled rules, compiled (off the loop: this runs on the watcher).
 * A set that does not compile (it was checked when saved, so only a limit
 * of the whole set can do this) leaves the snapshot without rules, loudly.
 */
static int load_rules(struct store *st, struct policy_snap *sn)
{
	struct load_rules lr = { json_array(), NULL, 0, 0, 0 };
	struct rules_def *def = NULL;
	char err[400];
	int64_t t0 = time_mono_ms();

	if (store_rules_each(st, 1, load_rule, &lr) < 0) {
		json_decref(lr.arr);
		free(lr.ids);
		return -1;
	}
	if (lr.n > 0 && rules_def_from_json(lr.arr, &def, err, sizeof(err)) == 0) {
		sn->rules = rules_compile(def, err, sizeof(err));
		/* Vectorscan's compiler frees far more than the database it keeps:
		 * give that back instead of leaving it in malloc's arenas. */
		malloc_trim(0);
	}
	if (lr.n > 0 && sn->rules == NULL) {
		log_error(NULL, "policy", "RULES NOT COMPILED rules=%zu: %s; running without"
			  " server rules", lr.n, err);
		free(lr.ids);
	} else if (sn->rules != NULL) {
		sn->rule_ids = lr.ids;
		sn->nrules = lr.n;
		log_info(NULL, "policy", "rules compiled rules=%zu memory=%zu ms=%lld", lr.n,
			 rules_set_memory(sn->rules), (long long)(time_mono_ms() - t0));
	} else {
		free(lr.ids);
	}
	if (lr.bad > 0)
		log_warn(NULL, "policy", "rules skipped=%d unreadable rows", lr.bad);
	rules_def_free(def);
	json_decref(lr.arr);
	return 0;
}

static int load_dir(const struct store_dir_row *r, void *arg)
{
	struct load *l = arg;
	enum policy_dir_kind k = strcmp(r->kind, "group") == 0 ? POLICY_DIR_GROUP
		: strcmp(r->kind, "alias") == 0 ? POLICY_DIR_ALIAS : POLICY_DIR_USER;

	policy_snap_add_dir(l->sn, r->address, k);
	return 0;
}

static int load_user_entry(const struct store_sender_entry *e, void *arg)
{
	struct load *l = arg;
	char err[200];

	if (policy_snap_add_user_entry(l->sn, e->id, e->user_id, e->kind, e->value, err,
				       sizeof(err)) < 0)
		l->skipped++;
	return 0;
}

static int load_user_owner(const char *address, int64_t user_id, void *arg)
{
	struct load *l = arg;

	policy_snap_add_user_owner(l->sn, address, user_id);
	return 0;
}

struct policy_snap *policy_snap_load_store(struct store *st, int with_rules, char *err,
					   size_t errsz)
{
	struct load l = { NULL, 0 };
	int64_t gen;

	l.sn = policy_snap_empty();
	/* One read transaction: the generation matches what is read. */
	if (store_policy_read_begin(st) < 0 ||
	    store_policy_generation(st, &gen) < 0 ||
	    store_policy_settings(st, load_setting, &l) < 0 ||
	    store_policy_entries(st, NULL, load_entry, &l) < 0 ||
	    store_policy_sites(st, load_site, &l) < 0 ||
	    store_policy_directory(st, load_dir, &l) < 0 ||
	    store_userlist_all(st, load_user_entry, &l) < 0 ||
	    store_userlist_owners(st, load_user_owner, &l) < 0 ||
	    policy_snap_load_mbox(st, l.sn) < 0 ||
	    policy_snap_load_score(st, l.sn, &l.skipped) < 0 ||
	    dkim_keyset_load(st, &l.sn->dkim, &l.skipped) < 0 ||
	    (with_rules && load_rules(st, l.sn) < 0)) {
		snprintf(err, errsz, "policy load: %s", store_policy_errmsg(st));
		store_policy_read_end(st);
		policy_snap_free(l.sn);
		return NULL;
	}
	/* In the same read transaction: the models match the generation read.
	 * Tokens already in memory at this generation are shared, not read. */
	if (store_bayes_generation(st, &l.sn->bayes_generation) < 0) {
		snprintf(err, errsz, "policy load: %s", store_policy_errmsg(st));
		store_policy_read_end(st);
		policy_snap_free(l.sn);
		return NULL;
	}
	if (l.sn->set.score_enabled) {
		char berr[300];

		l.sn->bayes = score_models_load(st, l.sn->set.bayes_min_learned, berr,
						sizeof(berr));
		if (l.sn->bayes == NULL)
			log_error(NULL, "policy", "statistical filter models not loaded: %s;"
				  " scoring without them", berr);
	} else {
		score_models_cache_drop(); /* the score is off: keep no tokens for it */
	}
	store_policy_read_end(st);
	l.sn->generation = gen;
	if (l.skipped > 0)
		log_warn(NULL, "policy", "snapshot generation=%lld skipped=%d invalid rows",
			 (long long)gen, l.skipped);
	return l.sn;
}

struct policy_snap *policy_snap_load(const char *db_path, char *err, size_t errsz)
{
	struct store *st = store_open(db_path, 0, err, errsz);
	struct policy_snap *sn;

	if (st == NULL)
		return NULL;
	sn = policy_snap_load_store(st, 1, err, errsz);
	store_close(st);
	return sn;
}
