/*
 * score_models: the models in the policy snapshot, and learning from one
 * message.  See score_models.h.
 *
 * Two layers.  struct models_data holds token counts (one struct
 * bayes_model per usable model) and is shared: the last one loaded is kept
 * in a process-wide slot, and a load at the same bayes generation and
 * min_learned takes a reference to it instead of reading millions of rows
 * again.  struct score_models belongs to one snapshot: a reference to the
 * data plus the addresses of the users with a model of their own (the
 * directory may change without any learning, so this part is read with
 * every snapshot; it is one small query).
 *
 * Reference counts are atomic: snapshots are released on the loop, the
 * watcher replaces the slot on its thread, and HTTP threads may load for a
 * dry run.  The slot's mutex is held while a load reads tokens, so two
 * threads never load the same generation twice at once.
 */
#include "score_models.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../policy/policy_internal.h"
#include "../store/store.h"
#include "../store/store_bayes.h"
#include "../util/util.h"

struct user_model {
	int64_t uid;
	struct bayes_model *m;
};

struct models_data {
	atomic_int refs;
	int64_t generation;
	int64_t min_learned;
	uint8_t key[16];
	struct bayes_model *global;      /* NULL when not usable */
	struct user_model *users;        /* sorted by uid */
	size_t nusers, cap;
};

struct user_addr {
	char *address;                   /* lower case */
	int64_t uid;
};

struct score_models {
	struct models_data *d;
	struct user_addr *addrs;         /* sorted by address */
	size_t naddrs, cap;
};

static pthread_mutex_t slot_mu = PTHREAD_MUTEX_INITIALIZER;
static struct models_data *slot;     /* under slot_mu; holds one reference */

static void data_unref(struct models_data *d)
{
	if (d == NULL || atomic_fetch_sub(&d->refs, 1) != 1)
		return;
	bayes_model_free(d->global);
	for (size_t i = 0; i < d->nusers; i++)
		bayes_model_free(d->users[i].m);
	free(d->users);
	free(d);
}

struct load_ctx {
	struct store *st;
	struct models_data *d;
	int failed;
};

static int load_model(int64_t uid, int64_t ns, int64_t nh, void *arg)
{
	struct load_ctx *c = arg;
	struct bayes_model *m;

	if (ns < c->d->min_learned || nh < c->d->min_learned || ns <= 0 || nh <= 0)
		return 0;
	m = bayes_model_new(ns, nh);
	if (store_bayes_tokens_foreach(c->st, uid, bayes_model_load_token, m) < 0) {
		bayes_model_free(m);
		c->failed = 1;
		return 1;
	}
	if (uid == 0) {
		c->d->global = m;
		return 0;
	}
	if (c->d->nusers == c->d->cap) {
		c->d->cap = c->d->cap ? c->d->cap * 2 : 8;
		c->d->users = xrealloc(c->d->users, c->d->cap * sizeof(*c->d->users));
	}
	/* Rows come in uid order: the array stays sorted. */
	c->d->users[c->d->nusers].uid = uid;
	c->d->users[c->d->nusers].m = m;
	c->d->nusers++;
	return 0;
}

static struct models_data *data_load(struct store *st, int64_t gen, int64_t min_learned)
{
	struct models_data *d = xcalloc(1, sizeof(*d));
	struct load_ctx c = { st, d, 0 };
	int found;

	atomic_init(&d->refs, 1);
	d->generation = gen;
	d->min_learned = min_learned;
	if (store_bayes_key_get(st, d->key, &found) < 0 ||
	    store_bayes_models_each(st, load_model, &c) < 0 || c.failed) {
		data_unref(d);
		return NULL;
	}
	if (!found)
		memset(d->key, 0, sizeof(d->key));
	return d;
}

static int add_addr(const char *address, int64_t uid, void *arg)
{
	struct score_models *m = arg;
	size_t n = strlen(address);
	char *a;

	if (m->naddrs == m->cap) {
		m->cap = m->cap ? m->cap * 2 : 16;
		m->addrs = xrealloc(m->addrs, m->cap * sizeof(*m->addrs));
	}
	a = xmalloc(n + 1);
	for (size_t i = 0; i <= n; i++)
		a[i] = (char)(address[i] >= 'A' && address[i] <= 'Z' ? address[i] + 32
								       : address[i]);
	m->addrs[m->naddrs].address = a;
	m->addrs[m->naddrs].uid = uid;
	m->naddrs++;
	return 0;
}

static int cmp_addr(const void *a, const void *b)
{
	return strcmp(((const struct user_addr *)a)->address,
		      ((const struct user_addr *)b)->address);
}

struct score_models *score_models_load(struct store *st, int64_t min_learned, char *err,
				       size_t errsz)
{
	struct score_models *m;
	struct models_data *d = NULL;
	int64_t gen;

	if (min_learned < 1)
		min_learned = 1; /* a model without both classes says nothing */
	pthread_mutex_lock(&slot_mu);
	if (store_bayes_generation(st, &gen) < 0)
		goto fail;
	if (slot != NULL && slot->generation == gen && slot->min_learned == min_learned) {
		d = slot;
		atomic_fetch_add(&d->refs, 1);
	} else {
		d = data_load(st, gen, min_learned);
		if (d == NULL)
			goto fail;
		data_unref(slot);
		slot = d;
		atomic_fetch_add(&d->refs, 1);
	}
	pthread_mutex_unlock(&slot_mu);
	m = xcalloc(1, sizeof(*m));
	m->d = d;
	if (d->global == NULL && d->nusers == 0)
		return m; /* no usable model: no user needs an address */
	if (store_bayes_user_addresses(st, add_addr, m) < 0) {
		snprintf(err, errsz, "token store: %s", store_bayes_errmsg(st));
		score_models_free(m);
		return NULL;
	}
	if (m->naddrs > 0)
		qsort(m->addrs, m->naddrs, sizeof(*m->addrs), cmp_addr);
	return m;
fail:
	pthread_mutex_unlock(&slot_mu);
	snprintf(err, errsz, "token store: %s", store_bayes_errmsg(st));
	return NULL;
}

void score_models_free(struct score_models *m)
{
	if (m == NULL)
		return;
	for (size_t i = 0; i < m->naddrs; i++)
		free(m->addrs[i].address);
	free(m->addrs);
	data_unref(m->d);
	free(m);
}

void score_models_cache_drop(void)
{
	pthread_mutex_lock(&slot_mu);
	data_unref(slot);
	slot = NULL;
	pthread_mutex_unlock(&slot_mu);
}

int64_t score_models_generation(const struct score_models *m)
{
	return m != NULL ? m->d->generation : 0;
}

const uint8_t *score_models_key(const struct score_models *m)
{
	static const uint8_t none[16];

	return m != NULL ? m->d->key : none; /* NULL: no model, so no token is known */
}

static int enough(const struct bayes_model *bm, int64_t min_learned)
{
	int64_t ns, nh;

	if (bm == NULL)
		return 0;
	bayes_model_counts(bm, &ns, &nh);
	return ns >= min_learned && nh >= min_learned && ns > 0 && nh > 0;
}

const struct bayes_model *score_models_for(const struct score_models *m, int64_t uid,
					   int64_t min_learned, int64_t *used_uid)
{
	*used_uid = 0;
	if (m == NULL)
		return NULL;
	if (uid != 0) {
		size_t lo = 0, hi = m->d->nusers;

		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;

			if (m->d->users[mid].uid < uid)
				lo = mid + 1;
			else
				hi = mid;
		}
		if (lo < m->d->nusers && m->d->users[lo].uid == uid &&
		    enough(m->d->users[lo].m, min_learned)) {
			*used_uid = uid;
			return m->d->users[lo].m;
		}
	}
	return enough(m->d->global, min_learned) ? m->d->global : NULL;
}

int score_models_user_of(const struct policy_snap *sn, const char *rcpt, int64_t *uid)
{
	const struct score_models *m = sn != NULL ? sn->bayes : NULL;
	char low[320];
	struct user_addr key = { low, 0 };
	const struct user_addr *hit;
	size_t n;

	*uid = 0;
	if (m == NULL || m->naddrs == 0 || rcpt == NULL)
		return -1;
	n = strlen(rcpt);
	if (n >= sizeof(low))
		return -1;
	for (size_t i = 0; i <= n; i++)
		low[i] = (char)(rcpt[i] >= 'A' && rcpt[i] <= 'Z' ? rcpt[i] + 32 : rcpt[i]);
	hit = bsearch(&key, m->addrs, m->naddrs, sizeof(*m->addrs), cmp_addr);
	if (hit == NULL)
		return -1;
	*uid = hit->uid;
	return 0;
}

/* ---- learning one message ---------------------------------------------- */

int score_learn(struct store *st, const char *msg, size_t len, char cls, int64_t uid,
		enum bayes_outcome *outcome, char *err, size_t errsz)
{
	struct bayes_learner *l = bayes_learner_open(st, uid, err, errsz);
	int rc = -1;

	if (l == NULL)
		return -1;
	if (bayes_learn(l, msg, len, cls, outcome, err, errsz) == 0 &&
	    bayes_learner_flush(l, err, errsz) == 0)
		rc = 0;
	bayes_learner_free(l);
	return rc;
}

int score_autolearn(struct store *st, const char *msg, size_t len, char cls, int64_t uid,
		    char *err, size_t errsz)
{
	enum bayes_outcome o;

	return score_learn(st, msg, len, cls, uid, &o, err, errsz);
}

const char *score_learn_outcome_name(enum bayes_outcome o)
{
	switch (o) {
	case BAYES_LEARNED:
		return "learned";
	case BAYES_ALREADY:
		return "already";
	case BAYES_MOVED:
		return "moved";
	case BAYES_FORGOTTEN:
		return "forgotten";
	case BAYES_NOT_LEARNED:
		return "not learned";
	}
	return "unknown";
}
