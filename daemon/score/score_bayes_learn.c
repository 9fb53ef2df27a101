/*
 * score_bayes_learn: learning into the token store and loading a model
 * from it.  Called by `moatd learn` / `moatd classify` and, later, by the
 * content stage's worker and the API's threads, each with its own store
 * connection; never on the mail loop.
 *
 * Learning keeps its changes in memory (token deltas, class counts, the
 * digests of the messages learned) and writes them in one short
 * transaction per flush, so that the process-wide writer lock is held for
 * the write alone, never while messages are read and parsed.  In a cluster
 * the flush also writes one learning event per message (its token hashes)
 * in that transaction, which the other nodes repeat (docs/cluster.md).
 */
#include "score_bayes.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../mime/mime.h"
#include "../store/store.h"
#include "../store/store_bayes.h"
#include "../util/util.h"

#define DAY_MS 86400000LL

void bayes_strip_from_line(const char **buf, size_t *len)
{
	const char *nl;

	if (*len >= 5 && memcmp(*buf, "From ", 5) == 0) {
		nl = memchr(*buf, '\n', *len);
		if (nl == NULL) {
			*buf += *len;
			*len = 0;
		} else {
			*len -= (size_t)(nl + 1 - *buf);
			*buf = nl + 1;
		}
	}
}

void bayes_message_digest(const char *buf, size_t len, uint8_t out[32])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned int n = 32;
	size_t i, start = 0;

	if (ctx == NULL)
		abort();
	bayes_strip_from_line(&buf, &len);
	/* Trailing empty lines neither: an mbox separator or a client's habit. */
	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
		len--;
	EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
	/* CR LF and LF give one digest: a copy saved by another client is the
	 * same message. */
	for (i = 0; i < len; i++) {
		if (buf[i] == '\r' && i + 1 < len && buf[i + 1] == '\n') {
			EVP_DigestUpdate(ctx, buf + start, i - start);
			start = i + 1;
		}
	}
	EVP_DigestUpdate(ctx, buf + start, len - start);
	EVP_DigestFinal_ex(ctx, out, &n);
	EVP_MD_CTX_free(ctx);
}

/* ---- token deltas, in memory until a flush ------------------------------ */

struct delta {
	uint64_t hash;   /* 0: empty */
	int32_t spam, ham;
};

struct pending_digest {
	uint8_t digest[32];
	char cls;        /* 's', 'h', or 0: forgotten */
	uint8_t *tokens; /* in a cluster: the event's token BLOB, else NULL */
	size_t tlen;
};

/* An event holds a message's tokens whole, so that a replay is exact. */
_Static_assert(BAYES_MAX_FEATURES <= STORE_BAYES_EVENT_MAX_TOKENS,
	       "a message's tokens must fit in one learning event");

struct bayes_learner {
	struct store *st;
	int64_t uid;
	uint8_t key[16];
	struct delta *d;
	size_t dcap, dn;
	int64_t dspam_msgs, dham_msgs;
	struct pending_digest *pd;
	size_t npd, pdcap;
	struct mime_limits lim;
	int events;      /* in a cluster: every learning is written to bayes_event too */
};

static struct delta *delta_find(struct delta *d, size_t cap, uint64_t h)
{
	size_t i = (size_t)h & (cap - 1);

	while (d[i].hash != 0 && d[i].hash != h)
		i = (i + 1) & (cap - 1);
	return &d[i];
}

static void delta_add(struct bayes_learner *l, uint64_t h, int32_t ds, int32_t dh)
{
	struct delta *e;

	if ((l->dn + 1) * 2 > l->dcap) {
		size_t cap = l->dcap * 2;
		struct delta *nd = xcalloc(cap, sizeof(*nd));

		for (size_t i = 0; i < l->dcap; i++)
			if (l->d[i].hash != 0)
				*delta_find(nd, cap, l->d[i].hash) = l->d[i];
		free(l->d);
		l->d = nd;
		l->dcap = cap;
	}
	e = delta_find(l->d, l->dcap, h);
	if (e->hash == 0) {
		e->hash = h;
		l->dn++;
	}
	e->spam += ds;
	e->ham += dh;
}

static int key_ensure(struct store *st, uint8_t key[16], char *err, size_t errsz)
{
	int found;

	if (store_bayes_key_get(st, key, &found) < 0)
		goto fail;
	if (found)
		return 0;
	random_bytes(key, 16);
	if (store_begin(st) < 0)
		goto fail;
	/* Another process may have made one meanwhile: theirs is kept. */
	if (store_bayes_key_set(st, key) < 0 || store_bayes_key_get(st, key, &found) < 0 ||
	    !found) {
		store_rollback(st);
		goto fail;
	}
	if (store_commit(st) < 0)
		goto fail;
	return 0;
fail:
	snprintf(err, errsz, "token store: %s", store_bayes_errmsg(st));
	return -1;
}

struct bayes_learner *bayes_learner_open(struct store *st, int64_t uid, char *err,
					 size_t errsz)
{
	struct bayes_learner *l = xcalloc(1, sizeof(*l));
	int64_t node = 0;

	l->st = st;
	l->uid = uid;
	if (key_ensure(st, l->key, err, errsz) < 0) {
		free(l);
		return NULL;
	}
	if (store_bayes_event_node(st, &node) < 0) {
		snprintf(err, errsz, "token store: %s", store_bayes_errmsg(st));
		free(l);
		return NULL;
	}
	l->events = node != 0;
	l->dcap = 1 << 16;
	l->d = xcalloc(l->dcap, sizeof(*l->d));
	mime_limits_default(&l->lim);
	return l;
}

static void pending_tokens_free(struct bayes_learner *l)
{
	for (size_t i = 0; i < l->npd; i++) {
		free(l->pd[i].tokens);
		l->pd[i].tokens = NULL;
	}
}

void bayes_learner_free(struct bayes_learner *l)
{
	if (l == NULL)
		return;
	pending_tokens_free(l);
	free(l->d);
	free(l->pd);
	free(l);
}

size_t bayes_learner_pending(const struct bayes_learner *l)
{
	return l->npd;
}

static int learned_as(struct bayes_learner *l, const uint8_t digest[32], char *cls)
{
	/* The newest pending state wins over the store's. */
	for (size_t i = l->npd; i > 0; i--) {
		if (memcmp(l->pd[i - 1].digest, digest, 32) == 0) {
			*cls = l->pd[i - 1].cls;
			return 0;
		}
	}
	return store_bayes_learned_get(l->st, l->uid, digest, cls);
}

static void pending_set(struct bayes_learner *l, const uint8_t digest[32], char cls,
			const struct bayes_tokens *t)
{
	struct pending_digest *p;

	if (l->npd == l->pdcap) {
		l->pdcap = l->pdcap ? l->pdcap * 2 : 256;
		l->pd = xrealloc(l->pd, l->pdcap * sizeof(*l->pd));
	}
	p = &l->pd[l->npd];
	memcpy(p->digest, digest, 32);
	p->cls = cls;
	p->tokens = NULL;
	p->tlen = 0;
	if (l->events && t->n > 0) {
		p->tlen = t->n * 8;
		p->tokens = xmalloc(p->tlen);
		for (size_t i = 0; i < t->n; i++)
			store_bayes_tokens_encode(&t->f[i].hash, 1, p->tokens + i * 8);
	}
	l->npd++;
}

int bayes_learn(struct bayes_learner *l, const char *buf, size_t len, char cls,
		enum bayes_outcome *outcome, char *err, size_t errsz)
{
	uint8_t digest[32];
	struct mime_view *v = NULL;
	struct bayes_tokens t;
	char prev = 0;

	if (cls != 0 && cls != 's' && cls != 'h') {
		snprintf(err, errsz, "class must be spam or ham");
		return -1;
	}
	bayes_strip_from_line(&buf, &len);
	bayes_message_digest(buf, len, digest);
	if (learned_as(l, digest, &prev) < 0) {
		snprintf(err, errsz, "token store: %s", store_bayes_errmsg(l->st));
		return -1;
	}
	if (cls != 0 && prev == cls) {
		*outcome = BAYES_ALREADY;
		return 0;
	}
	if (cls == 0 && prev == 0) {
		*outcome = BAYES_NOT_LEARNED;
		return 0;
	}
	if (mime_parse(buf, len, &l->lim, &v, err, errsz) < 0)
		return -1;
	bayes_tokenize(v, l->key, 0, &t);
	mime_view_free(v);
	for (size_t i = 0; i < t.n; i++) {
		int32_t ds = 0, dh = 0;

		if (prev == 's')
			ds--;
		else if (prev == 'h')
			dh--;
		if (cls == 's')
			ds++;
		else if (cls == 'h')
			dh++;
		delta_add(l, t.f[i].hash, ds, dh);
	}
	pending_set(l, digest, cls, &t);
	bayes_tokens_free(&t);
	if (prev == 's')
		l->dspam_msgs--;
	else if (prev == 'h')
		l->dham_msgs--;
	if (cls == 's')
		l->dspam_msgs++;
	else if (cls == 'h')
		l->dham_msgs++;
	*outcome = cls == 0 ? BAYES_FORGOTTEN : prev != 0 ? BAYES_MOVED : BAYES_LEARNED;
	return 0;
}

static int cmp_delta(const void *a, const void *b)
{
	const struct delta *x = a, *y = b;
	int64_t hx = (int64_t)x->hash, hy = (int64_t)y->hash; /* the store's order */

	return hx < hy ? -1 : hx > hy;
}

/* After a flush, written or failed (the batch is then lost: the caller
 * reports it and stops). */
static void reset_pending(struct bayes_learner *l)
{
	pending_tokens_free(l);
	memset(l->d, 0, l->dcap * sizeof(*l->d));
	l->dn = 0;
	l->dspam_msgs = 0;
	l->dham_msgs = 0;
	l->npd = 0;
}

int bayes_learner_flush(struct bayes_learner *l, char *err, size_t errsz)
{
	int64_t now = time_now_ms();
	int64_t day = now / DAY_MS;
	size_t n;

	if (l->npd == 0)
		return 0;
	/*
	 * In key order: the b-tree is walked once from left to right instead
	 * of jumping to a random page per token (learning the corpus took
	 * 2.3 times less CPU).
	 */
	n = 0;
	for (size_t i = 0; i < l->dcap; i++)
		if (l->d[i].hash != 0 && (l->d[i].spam != 0 || l->d[i].ham != 0))
			l->d[n++] = l->d[i];
	qsort(l->d, n, sizeof(*l->d), cmp_delta);
	if (store_begin(l->st) < 0)
		goto fail;
	if (l->events) {
		uint8_t key[16];
		int found;

		/* A store that had learned nothing takes the cluster's key when
		 * another node's learning arrives: tokens made under the old key
		 * must not be written. */
		if (store_bayes_key_get(l->st, key, &found) < 0)
			goto fail_tx;
		if (!found || memcmp(key, l->key, 16) != 0) {
			snprintf(err, errsz, "token key changed meanwhile: learn again");
			store_rollback(l->st);
			reset_pending(l);
			return -1;
		}
	}
	for (size_t i = 0; i < n; i++) {
		const struct delta *e = &l->d[i];

		if (store_bayes_token_add(l->st, l->uid, e->hash, e->spam, e->ham, day) < 0)
			goto fail_tx;
	}
	if (store_bayes_model_add(l->st, l->uid, l->dspam_msgs, l->dham_msgs, now) < 0)
		goto fail_tx;
	/* Readers (the policy watcher) reload the models when this moves. */
	if (store_bayes_generation_bump(l->st) < 0)
		goto fail_tx;
	for (size_t i = 0; i < l->npd; i++) {
		int rc = l->pd[i].cls != 0
				 ? store_bayes_learned_set(l->st, l->uid, l->pd[i].digest,
							   l->pd[i].cls, now)
				 : store_bayes_learned_del(l->st, l->uid, l->pd[i].digest);

		if (rc < 0)
			goto fail_tx;
	}
	/*
	 * In a cluster, the learning once more as events for the other nodes
	 * (docs/cluster.md), in the same transaction: shared exactly when it
	 * is learned here.  In order, so a message learned and then moved in
	 * one batch is moved on the other nodes too.
	 */
	for (size_t i = 0; l->events && i < l->npd; i++) {
		if (store_bayes_event_add(l->st, l->uid, l->pd[i].cls, l->pd[i].digest, l->key,
					  l->pd[i].tokens, l->pd[i].tlen, now) < 0)
			goto fail_tx;
	}
	if (store_commit(l->st) < 0)
		goto fail;
	reset_pending(l);
	return 0;
fail_tx:
	snprintf(err, errsz, "token store: %s", store_bayes_errmsg(l->st));
	store_rollback(l->st);
	reset_pending(l);
	return -1;
fail:
	snprintf(err, errsz, "token store: %s", store_bayes_errmsg(l->st));
	reset_pending(l);
	return -1;
}

/* ---- loading a model ---------------------------------------------------- */

int bayes_model_load_token(uint64_t hash, int64_t spam, int64_t ham, void *arg)
{
	struct bayes_model *m = arg;

	if (spam < 0)
		spam = 0;
	if (ham < 0)
		ham = 0;
	bayes_model_set(m, hash, spam > UINT32_MAX ? UINT32_MAX : (uint32_t)spam,
			ham > UINT32_MAX ? UINT32_MAX : (uint32_t)ham);
	return 0;
}

int bayes_model_load(struct store *st, int64_t uid, struct bayes_model **out,
		     uint8_t key[16], int64_t *used_uid, char *err, size_t errsz)
{
	struct bayes_model *m;
	int64_t ns = 0, nh = 0;
	int found;

	*out = NULL;
	if (store_bayes_key_get(st, key, &found) < 0)
		goto fail;
	if (!found)
		memset(key, 0, 16);
	if (uid != 0) {
		if (store_bayes_model_get(st, uid, &ns, &nh) < 0)
			goto fail;
		if (ns < BAYES_USER_MIN_LEARNED || nh < BAYES_USER_MIN_LEARNED)
			uid = 0;
	}
	if (uid == 0 && store_bayes_model_get(st, 0, &ns, &nh) < 0)
		goto fail;
	m = bayes_model_new(ns, nh);
	if (store_bayes_tokens_foreach(st, uid, bayes_model_load_token, m) < 0) {
		bayes_model_free(m);
		goto fail;
	}
	*used_uid = uid;
	*out = m;
	return 0;
fail:
	snprintf(err, errsz, "token store: %s", store_bayes_errmsg(st));
	return -1;
}

int bayes_expire(struct store *st, int64_t uid, int64_t today, int64_t days,
		 int64_t max_count, int64_t *removed)
{
	if (store_begin(st) < 0)
		return -1;
	if (store_bayes_expire(st, uid, today - days, max_count, removed) < 0 ||
	    (*removed > 0 && store_bayes_generation_bump(st) < 0)) {
		store_rollback(st);
		return -1;
	}
	return store_commit(st);
}
