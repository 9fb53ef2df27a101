/*
 * policy_mailbox: per-user mailbox rules at the end of DATA
 * (docs/mailbox-rules.md "How mailbox rules run").
 *
 * Three parts:
 * - The snapshot's share (built by policy_snap_load_store() on the
 *   watcher): each set's owner, generation and has_refuse, and the address
 *   of every owner -> its set.  No rules: 10,000 users cost a hash set.
 * - The cache of compiled sets, one per engine, shared by the content
 *   workers under one mutex: keyed by set id, valid for one generation,
 *   least recently used first out when the compiled bytes
 *   (rules_set_memory) pass mailbox_rules_cache.  An entry is reference
 *   counted: an evaluation keeps its set even when another worker evicts or
 *   replaces it meanwhile.  A cold or stale set is compiled by the content
 *   worker that needs it (that session already waits for the content
 *   stage; other sessions are not blocked), or ahead of time by the
 *   watcher when a set that is in the cache is saved.  One compile per set
 *   and generation at a time: a worker that needs a set another thread is
 *   compiling waits for that result (struct mbox_pending) instead of
 *   compiling it a second time.
 * - The run (policy_mbox_eval, called by policy_content.c): each recipient
 *   whose server verdict lets it through and whose owner has a set gets
 *   that set's verdict on the message's one mime view.  Recipients of the
 *   same set share one rules_eval() (one scan of the content).
 *
 * Never on the loop: everything here that touches SQLite or compiles runs
 * on a content worker or the watcher, with that thread's store.
 * A set that cannot be read or compiled leaves its recipients in the inbox
 * and says so in the log: mail is never lost to a broken rule.
 */
#include "policy_stage.h"

#include <jansson.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../log/log.h"
#include "../rules/rules.h"
#include "../store/store.h"
#include "../store/store_mailbox.h"
#include "../util/util.h"

/* --- the snapshot's share --------------------------------------------------- */

void policy_snap_add_mbox_set(struct policy_snap *sn, const struct policy_mbox_set *set)
{
	/* Rows come in id order (store_mailbox_sets_each): the array stays sorted. */
	sn->mbox_sets = xrealloc(sn->mbox_sets, (sn->nmbox_sets + 1) * sizeof(*sn->mbox_sets));
	sn->mbox_sets[sn->nmbox_sets++] = *set;
}

void policy_snap_add_mbox_owner(struct policy_snap *sn, const char *address, int64_t set_id)
{
	struct policy_ref *r = policy_snap_new_ref(sn);

	r->id = set_id;
	r->list = "mailbox_rules";
	r->value = policy_snap_keep(sn, address);
	policy_strset_add(&sn->mbox_owner, address, strlen(address), r);
}

static const struct policy_mbox_set *set_by_id(const struct policy_snap *sn, int64_t id)
{
	size_t lo = 0, hi = sn->nmbox_sets;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (sn->mbox_sets[mid].id == id)
			return &sn->mbox_sets[mid];
		if (sn->mbox_sets[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

const struct policy_mbox_set *policy_mbox_find(const struct policy_snap *sn, const char *rcpt)
{
	const struct policy_ref *r;

	if (sn == NULL || sn->nmbox_sets == 0 || rcpt == NULL)
		return NULL;
	r = policy_strset_get(&sn->mbox_owner, rcpt, strlen(rcpt));
	return r != NULL ? set_by_id(sn, r->id) : NULL;
}

static int load_set(const struct store_mailbox_set *s, void *arg)
{
	struct policy_mbox_set m;

	m.id = s->id;
	m.user_id = s->user_id;
	m.group_id = s->group_id;
	m.generation = s->generation;
	m.has_refuse = s->has_refuse;
	policy_snap_add_mbox_set(arg, &m);
	return 0;
}

static int load_owner(const char *address, int64_t set_id, void *arg)
{
	policy_snap_add_mbox_owner(arg, address, set_id);
	return 0;
}

int policy_snap_load_mbox(struct store *st, struct policy_snap *sn)
{
	if (store_mailbox_fingerprint(st, sn->mbox_fp) < 0 || store_mailbox_sets_each(st, load_set, sn) < 0 ||
	    store_mailbox_addresses(st, load_owner, sn) < 0)
		return -1;
	return 0;
}

/* --- the cache -------------------------------------------------------------- */

struct mbox_entry {
	struct mbox_entry *prev, *next;  /* LRU list, most recent first */
	struct mbox_entry *hnext;        /* hash bucket */
	int64_t id, generation;
	struct rules_set *rs;            /* NULL: the set has no enabled rule */
	int64_t *rule_ids;               /* rule i of rs is row rule_ids[i] */
	size_t nrules;
	size_t bytes;
	int refs;                        /* the cache's own + evaluations; under lock */
	int cached;                      /* still in the table */
};

#define MBOX_BUCKETS 4096
#define MBOX_TRIM_RULES 1000 /* sets this large give memory back after compiling */
#define MBOX_ENTRY_OVERHEAD 256      /* bytes counted for an entry besides its set */

/*
 * A compile under way: the threads that need the same set and generation
 * meanwhile wait on the cache's condition variable until done, then take
 * the result (the compiler gave each waiter a reference to e).  Freed by
 * the last of the compiler and its waiters.  Under the cache's lock.
 */
struct mbox_pending {
	struct mbox_pending *next;
	int64_t id, generation;
	int done, rc, waiters, compiler_gone;
	struct mbox_entry *e;
	char err[300];
};

struct policy_mbox_cache {
	pthread_mutex_t lock;
	pthread_cond_t compiled;         /* a pending compile finished */
	struct mbox_entry *buckets[MBOX_BUCKETS];
	struct mbox_entry *head, *tail;
	struct mbox_pending *pending;    /* compiles under way (one per worker at most) */
	size_t bytes, max_bytes, count;
	uint64_t hits, misses, compiles, evictions, waits;
};

struct policy_mbox_cache *policy_mbox_cache_new(size_t max_bytes)
{
	struct policy_mbox_cache *c = xcalloc(1, sizeof(*c));

	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->compiled, NULL);
	c->max_bytes = max_bytes;
	return c;
}

static void entry_free(struct mbox_entry *e)
{
	rules_set_free(e->rs);
	free(e->rule_ids);
	free(e);
}

/* Under lock. */
static void entry_unref_locked(struct mbox_entry *e)
{
	if (--e->refs == 0)
		entry_free(e);
}

static size_t bucket_of(int64_t id)
{
	return (size_t)((uint64_t)id * 0x9E3779B97F4A7C15ULL >> 52) % MBOX_BUCKETS;
}

/* Under lock: out of the table and the LRU list; the cache's reference dropped. */
static void entry_remove_locked(struct policy_mbox_cache *c, struct mbox_entry *e)
{
	struct mbox_entry **pp = &c->buckets[bucket_of(e->id)];

	while (*pp != NULL && *pp != e)
		pp = &(*pp)->hnext;
	if (*pp == e)
		*pp = e->hnext;
	if (e->prev != NULL)
		e->prev->next = e->next;
	else
		c->head = e->next;
	if (e->next != NULL)
		e->next->prev = e->prev;
	else
		c->tail = e->prev;
	e->prev = e->next = e->hnext = NULL;
	e->cached = 0;
	c->bytes -= e->bytes;
	c->count--;
	entry_unref_locked(e);
}

static void lru_front_locked(struct policy_mbox_cache *c, struct mbox_entry *e)
{
	if (c->head == e)
		return;
	if (e->prev != NULL)
		e->prev->next = e->next;
	if (e->next != NULL)
		e->next->prev = e->prev;
	else if (c->tail == e)
		c->tail = e->prev;
	e->prev = NULL;
	e->next = c->head;
	if (c->head != NULL)
		c->head->prev = e;
	c->head = e;
	if (c->tail == NULL)
		c->tail = e;
}

static struct mbox_entry *find_locked(struct policy_mbox_cache *c, int64_t id)
{
	struct mbox_entry *e;

	for (e = c->buckets[bucket_of(id)]; e != NULL; e = e->hnext)
		if (e->id == id)
			return e;
	return NULL;
}

/* Insert e (one reference for the caller is already counted), replacing an older generation. */
static void insert(struct policy_mbox_cache *c, struct mbox_entry *e)
{
	struct mbox_entry *old;

	pthread_mutex_lock(&c->lock);
	old = find_locked(c, e->id);
	if (old != NULL)
		entry_remove_locked(c, old);
	e->refs++; /* the cache's own */
	e->cached = 1;
	e->hnext = c->buckets[bucket_of(e->id)];
	c->buckets[bucket_of(e->id)] = e;
	e->prev = NULL;
	e->next = c->head;
	if (c->head != NULL)
		c->head->prev = e;
	c->head = e;
	if (c->tail == NULL)
		c->tail = e;
	c->bytes += e->bytes;
	c->count++;
	/* The least recently used go until the bound holds; the newest stays
	 * even when it alone is larger than the bound (it is in use). */
	while (c->bytes > c->max_bytes && c->tail != NULL && c->tail != e) {
		c->evictions++;
		entry_remove_locked(c, c->tail);
	}
	pthread_mutex_unlock(&c->lock);
}

void policy_mbox_cache_free(struct policy_mbox_cache *c)
{
	if (c == NULL)
		return;
	pthread_mutex_lock(&c->lock);
	while (c->head != NULL)
		entry_remove_locked(c, c->head);
	pthread_mutex_unlock(&c->lock);
	pthread_cond_destroy(&c->compiled);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

static void entry_put(struct policy_mbox_cache *c, struct mbox_entry *e)
{
	if (e == NULL)
		return;
	pthread_mutex_lock(&c->lock);
	entry_unref_locked(e);
	pthread_mutex_unlock(&c->lock);
}

struct load_rules {
	json_t *arr;
	int64_t *ids;
	size_t n, cap;
	int bad;
};

static int load_rule(int64_t rule_id, const char *definition, void *arg)
{
	struct load_rules *lr = arg;
	json_t *o = json_loads(definition, 0, NULL);

	if (o == NULL || !json_is_object(o)) {
		json_decref(o);
		lr->bad++;
		return 0;
	}
	if (lr->n == lr->cap) {
		lr->cap = lr->cap ? lr->cap * 2 : 16;
		lr->ids = xrealloc(lr->ids, lr->cap * sizeof(*lr->ids));
	}
	lr->ids[lr->n++] = rule_id;
	json_array_append_new(lr->arr, o);
	return 0;
}

/*
 * Read and compile set id (its current generation) into a new entry with
 * one reference for the caller.  prev: the compiled set of an older
 * generation (NULL: none), whose unchanged pattern databases the compile
 * takes instead of building them again (an edit touches one field class).
 * -1 with err when the set cannot be read or compiled; 0 and *out NULL
 * when the set is gone.
 */
static int compile_set(struct store *st, int64_t id, const struct rules_set *prev,
		       struct mbox_entry **out, char *err, size_t errsz)
{
	struct load_rules lr = { json_array(), NULL, 0, 0, 0 };
	struct rules_parse_opts opts;
	struct rules_def *def = NULL;
	struct mbox_entry *e = NULL;
	int64_t gen = 0, t0 = time_mono_ms();
	int found = 0, rc = -1;
	unsigned built, reused;

	*out = NULL;
	if (store_mailbox_enabled_rules(st, id, &gen, &found, load_rule, &lr) < 0) {
		snprintf(err, errsz, "cannot read the set");
		goto out;
	}
	if (!found) {
		rc = 0;
		goto out;
	}
	e = xcalloc(1, sizeof(*e));
	e->id = id;
	e->generation = gen;
	e->refs = 1;
	e->bytes = MBOX_ENTRY_OVERHEAD;
	if (lr.n > 0) {
		memset(&opts, 0, sizeof(opts));
		opts.kind = RULES_KIND_MAILBOX;
		/* Checked against the policy when saved; a later change of the
		 * local domains must not break delivery of the set's mail. */
		opts.forward_external = true;
		if (rules_def_from_json_opts(lr.arr, &opts, &def, err, errsz) < 0)
			goto out;
		e->rs = rules_compile_reuse(def, prev, err, errsz);
		if (e->rs == NULL)
			goto out;
		/* Vectorscan's compiler frees far more than it keeps on a big set;
		 * a small one leaves little to give back, and trimming the heap
		 * for every cold set costs more than the compile. */
		if (lr.n >= MBOX_TRIM_RULES)
			malloc_trim(0);
		e->rule_ids = lr.ids;
		lr.ids = NULL;
		e->nrules = lr.n;
		e->bytes += rules_set_memory(e->rs) + lr.n * sizeof(int64_t);
	}
	rules_set_compile_stats(e->rs, &built, &reused);
	log_info(NULL, "policy", "mailbox compiled set=%lld generation=%lld rules=%zu"
		 " memory=%zu ms=%lld databases_built=%u databases_reused=%u%s", (long long)id,
		 (long long)gen, lr.n, e->bytes, (long long)(time_mono_ms() - t0), built, reused,
		 lr.bad > 0 ? " unreadable_rows=yes" : "");
	*out = e;
	e = NULL;
	rc = 0;
out:
	if (e != NULL)
		entry_free(e);
	rules_def_free(def);
	free(lr.ids);
	json_decref(lr.arr);
	return rc;
}

/*
 * The compiled set id at its current generation, with a reference for the
 * caller (entry_put), compiling it when the cache has none or an older
 * one.  -1 with err on failure; 0 and *out NULL when the set is gone.
 */
static int cache_get(struct policy_mbox_cache *c, struct store *st, int64_t id,
		     struct mbox_entry **out, char *err, size_t errsz)
{
	struct mbox_pending *p, **pp;
	struct mbox_entry *e, *old;
	int64_t gen;
	int found, rc;

	*out = NULL;
	/* One indexed read: a save applies to the next message, whatever the
	 * snapshot says. */
	if (store_mailbox_generation(st, id, &gen, &found) < 0) {
		snprintf(err, errsz, "cannot read the set's generation");
		return -1;
	}
	if (!found)
		return 0;
	pthread_mutex_lock(&c->lock);
	e = find_locked(c, id);
	if (e != NULL && e->generation == gen) {
		e->refs++;
		lru_front_locked(c, e);
		c->hits++;
		pthread_mutex_unlock(&c->lock);
		*out = e;
		return 0;
	}
	c->misses++;
	for (p = c->pending; p != NULL; p = p->next)
		if (p->id == id && p->generation == gen)
			break;
	if (p != NULL) {
		/* Another worker compiles this very generation: wait for it. */
		c->waits++;
		p->waiters++;
		while (!p->done)
			pthread_cond_wait(&c->compiled, &c->lock);
		*out = p->e; /* the compiler's reference for us, or NULL */
		rc = p->rc;
		if (rc < 0)
			strlcpy_s(err, p->err, errsz);
		if (--p->waiters == 0 && p->compiler_gone)
			free(p);
		pthread_mutex_unlock(&c->lock);
		log_info(NULL, "policy", "mailbox compile shared set=%lld generation=%lld",
			 (long long)id, (long long)gen);
		return rc;
	}
	p = xcalloc(1, sizeof(*p));
	p->id = id;
	p->generation = gen;
	p->next = c->pending;
	c->pending = p;
	/* The older generation, if cached, stays alive for the compile to reuse. */
	old = find_locked(c, id);
	if (old != NULL)
		old->refs++;
	pthread_mutex_unlock(&c->lock);
	rc = compile_set(st, id, old != NULL ? old->rs : NULL, &e, err, errsz);
	entry_put(c, old);
	if (rc == 0 && e != NULL)
		insert(c, e);
	pthread_mutex_lock(&c->lock);
	if (rc == 0 && e != NULL) {
		c->compiles++;
		e->refs += p->waiters; /* one for each waiter */
	}
	for (pp = &c->pending; *pp != p; pp = &(*pp)->next)
		;
	*pp = p->next;
	p->done = 1;
	p->rc = rc;
	p->e = rc == 0 ? e : NULL;
	if (rc < 0)
		strlcpy_s(p->err, err, sizeof(p->err));
	p->compiler_gone = 1;
	if (p->waiters == 0)
		free(p);
	else
		pthread_cond_broadcast(&c->compiled);
	pthread_mutex_unlock(&c->lock);
	if (rc < 0)
		return -1;
	*out = e;
	return 0;
}

int policy_mbox_compile(struct store *st, int64_t id, struct rules_set **rs, char *err,
			size_t errsz)
{
	struct mbox_entry *e = NULL;

	*rs = NULL;
	if (compile_set(st, id, NULL, &e, err, errsz) < 0)
		return -1;
	if (e != NULL) {
		*rs = e->rs;
		e->rs = NULL;
		entry_free(e);
	}
	return 0;
}

void policy_mbox_precompile(struct policy_mbox_cache *c, struct store *st)
{
	int64_t ids[64], gens[64];
	size_t n = 0, i;
	struct mbox_entry *e;

	if (c == NULL)
		return;
	/* The most recently used sets: those that will see mail next. */
	pthread_mutex_lock(&c->lock);
	for (e = c->head; e != NULL && n < ARRAY_LEN(ids); e = e->next) {
		ids[n] = e->id;
		gens[n++] = e->generation;
	}
	pthread_mutex_unlock(&c->lock);
	for (i = 0; i < n; i++) {
		int64_t gen;
		int found;
		char err[300];

		if (store_mailbox_generation(st, ids[i], &gen, &found) < 0 || !found ||
		    gen == gens[i])
			continue;
		if (cache_get(c, st, ids[i], &e, err, sizeof(err)) < 0) {
			log_warn(NULL, "policy", "mailbox precompile failed set=%lld: %s",
				 (long long)ids[i], err);
			continue;
		}
		entry_put(c, e);
	}
}

size_t policy_mbox_cache_bytes(struct policy_mbox_cache *c)
{
	size_t b;

	pthread_mutex_lock(&c->lock);
	b = c->bytes;
	pthread_mutex_unlock(&c->lock);
	return b;
}

/* --- the run ---------------------------------------------------------------- */

struct mbox_group {
	struct mbox_entry *e;
	struct rules_result rr;
	int evaluated;
};

struct policy_mbox_msg {
	struct policy_mbox_cache *c;
	struct mbox_group *groups;
	size_t ngroups;
};

void policy_mbox_msg_free(struct policy_mbox_msg *m)
{
	size_t i;

	if (m == NULL)
		return;
	for (i = 0; i < m->ngroups; i++) {
		rules_result_free(&m->groups[i].rr);
		entry_put(m->c, m->groups[i].e);
	}
	free(m->groups);
	free(m);
}

struct policy_mbox_msg *policy_mbox_eval(struct policy_mbox_cache *c, struct store *st,
					 const struct policy_snap *sn,
					 const struct rules_input *base, const bool *run,
					 struct policy_mbox_out *out, const char *idstr)
{
	struct policy_mbox_msg *m = xcalloc(1, sizeof(*m));
	const struct policy_mbox_set **set = xcalloc(base->nrcpts + 1, sizeof(*set));
	const char **rc = xcalloc(base->nrcpts + 1, sizeof(*rc));
	size_t *pos = xcalloc(base->nrcpts + 1, sizeof(*pos));
	size_t i, j, n;

	m->c = c;
	m->groups = xcalloc(base->nrcpts + 1, sizeof(*m->groups));
	for (i = 0; i < base->nrcpts; i++) {
		memset(&out[i], 0, sizeof(out[i]));
		if (run[i])
			set[i] = policy_mbox_find(sn, base->rcpts[i]);
	}
	for (i = 0; i < base->nrcpts; i++) {
		struct mbox_group *g;
		struct rules_input in;
		char err[300];

		if (set[i] == NULL)
			continue;
		/* Every recipient of this set, in one evaluation. */
		n = 0;
		for (j = i; j < base->nrcpts; j++) {
			if (set[j] != NULL && set[j]->id == set[i]->id) {
				rc[n] = base->rcpts[j];
				pos[n++] = j;
			}
		}
		g = &m->groups[m->ngroups++];
		if (c == NULL || cache_get(c, st, set[i]->id, &g->e, err, sizeof(err)) < 0) {
			log_warn(idstr, "policy", "MAILBOX RULES NOT RUN set=%lld: %s; delivered to"
				 " the inbox", (long long)set[i]->id, c == NULL ? "no cache" : err);
			for (j = 0; j < n; j++)
				set[pos[j]] = NULL;
			continue;
		}
		if (g->e != NULL && g->e->rs != NULL) {
			in = *base;
			in.rcpts = rc;
			in.nrcpts = n;
			if (rules_eval(g->e->rs, &in, &g->rr) == 0) {
				g->evaluated = 1;
				for (j = 0; j < n; j++) {
					const struct rules_verdict *v = g->rr.rcpt[j];
					struct policy_mbox_out *o = &out[pos[j]];

					o->v = v;
					o->set_id = g->e->id;
					o->rule_id = v->rule >= 0 && (size_t)v->rule < g->e->nrules
						? g->e->rule_ids[v->rule] : 0;
				}
				if (g->rr.nhits > 0 && st != NULL) {
					int64_t ids[64];
					size_t k, nid = 0;

					for (k = 0; k < g->rr.nhits && nid < ARRAY_LEN(ids); k++)
						if (g->rr.hits[k] < g->e->nrules)
							ids[nid++] = g->e->rule_ids[g->rr.hits[k]];
					if (store_begin(st) < 0 ||
					    store_mailbox_hit(st, ids, nid, time_now_ms()) < 0 ||
					    store_commit(st) < 0) {
						store_rollback(st);
						log_warn(idstr, "policy", "mailbox rule hits not counted"
							 " set=%lld", (long long)g->e->id);
					}
				}
			} else {
				log_warn(idstr, "policy", "MAILBOX RULES NOT RUN set=%lld: evaluation"
					 " failed; delivered to the inbox", (long long)g->e->id);
			}
		}
		for (j = 0; j < n; j++)
			set[pos[j]] = NULL; /* done */
	}
	free(pos);
	free(rc);
	free(set);
	return m;
}
