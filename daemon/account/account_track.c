/*
 * account_track: one account's recent behaviour (account_internal.h) —
 * the event ring, message counters, client networks and addresses,
 * identical-content slots and the learned hourly baseline — and the facts
 * over the window that the score is computed from (account_score.c).
 * Pure bookkeeping on caller-owned memory: no I/O, no allocation, no
 * clock (every call takes now); called by the engine on the mail loop and
 * by the unit tests.  Cost per event: O(1) except the facts, which walk
 * the ring once (at most ACCT_RING entries, sorted for distinct counts).
 */
#include "account_internal.h"

#include <stdlib.h>
#include <string.h>

#include "../util/util.h"

#define HOUR_MS 3600000LL
#define DAY_MS 86400000LL

uint64_t acct_hash64(const char *s)
{
	uint64_t h = 1469598103934665603ULL;

	while (*s != '\0') {
		unsigned char c = (unsigned char)*s++;

		if (c >= 'A' && c <= 'Z')
			c = (unsigned char)(c - 'A' + 'a');
		h ^= c;
		h *= 1099511628211ULL;
	}
	return h;
}

uint32_t account_hash32(const char *s, size_t len)
{
	uint32_t h = 2166136261u;
	size_t i;

	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c >= 'A' && c <= 'Z')
			c = (unsigned char)(c - 'A' + 'a');
		h ^= c;
		h *= 16777619u;
	}
	return h != 0 ? h : 1;
}

int acct_how(int64_t t)
{
	int64_t h = t / HOUR_MS;
	int64_t d = h / 24;

	/* 1970-01-01 was a Thursday: day 0 is weekday 3 counting from Monday. */
	return (int)(((d + 3) % 7) * 24 + h % 24);
}

static void cnt_roll(struct acct_cnt *c, int64_t w, int64_t now)
{
	int64_t k;

	if (c->start == 0) {
		c->start = now;
		return;
	}
	if (now < c->start + w)
		return;
	k = (now - c->start) / w;
	c->prev = k == 1 ? c->cur : 0;
	c->cur = 0;
	c->start += k * w;
}

static int64_t cnt_get(struct acct_cnt *c, int64_t w, int64_t now)
{
	int64_t left;

	if (c->start == 0)
		return 0;
	cnt_roll(c, w, now);
	left = w - (now - c->start);
	if (left < 0)
		left = 0;
	return c->cur + (c->prev * left + w - 1) / w;
}

static void cnt_add(struct acct_cnt *c, int64_t w, int64_t now)
{
	cnt_roll(c, w, now);
	c->cur++;
}

void acct_init(struct acct *a, const char *user, int64_t now)
{
	int i;

	memset(a, 0, sizeof(*a));
	strlcpy_s(a->user, user, sizeof(a->user));
	for (i = 0; i < 8; i++)
		a->lim[i] = -1;
	a->hour_start = now - now % HOUR_MS;
	a->hour_partial = 1;
	a->created = now;
}

static void push(struct acct *a, enum acct_evkind k, uint32_t h, int64_t now)
{
	struct acct_ev *x = &a->ring[a->head];

	x->ts = now;
	x->kind = (uint8_t)k;
	x->h = h;
	a->head = (a->head + 1) % ACCT_RING;
	if (a->n < ACCT_RING)
		a->n++;
}

/*
 * The same sender (or From: address) as one of the last few events adds
 * nothing to a distinct count: not pushed, so that an account sending
 * steadily as itself keeps the ring for what matters.
 */
#define RECENT_DUP 8

static int recent(const struct acct *a, enum acct_evkind k, uint32_t h, int64_t now)
{
	size_t i;

	for (i = 0; i < a->n && i < RECENT_DUP; i++) {
		const struct acct_ev *x = &a->ring[(a->head + ACCT_RING - 1 - i) % ACCT_RING];

		if (x->kind == k && x->h == h && x->ts > now - 1000) /* account_window >= 1 s */
			return 1;
	}
	return 0;
}

void acct_sender(struct acct *a, int64_t now, const char *sender)
{
	uint32_t h = (uint32_t)acct_hash64(sender);

	if (!recent(a, EV_SENDER, h, now))
		push(a, EV_SENDER, h, now);
}

void acct_binding(struct acct *a, int64_t now)
{
	push(a, EV_BIND, 0, now);
}

void acct_malformed(struct acct *a, int64_t now)
{
	push(a, EV_MALFORMED, 0, now);
}

static struct acct_net *net_get(struct acct *a, const char *net, int64_t now, int create)
{
	size_t i;
	size_t old = 0;

	for (i = 0; i < a->nnets; i++)
		if (strcmp(a->nets[i].net, net) == 0)
			return &a->nets[i];
	if (!create)
		return NULL;
	if (a->nnets < ACCT_NETS) {
		i = a->nnets++;
	} else {
		/* Full: the network used least recently makes room (it stays in SQLite). */
		for (i = 1; i < ACCT_NETS; i++)
			if (a->nets[i].last_seen < a->nets[old].last_seen)
				old = i;
		i = old;
	}
	memset(&a->nets[i], 0, sizeof(a->nets[i]));
	strlcpy_s(a->nets[i].net, net, sizeof(a->nets[i].net));
	a->nets[i].first_seen = now;
	a->nets[i].last_seen = now;
	return &a->nets[i];
}

void acct_mail(struct acct *a, int64_t now, int64_t window_ms, const char *addr)
{
	uint32_t h = account_hash32(addr, strlen(addr));
	struct acct_client *c = NULL;
	struct acct_net *n;
	char net[ACCT_NET_MAX];
	size_t i;

	if (account_client_net(addr, net, sizeof(net)) < 0)
		strlcpy_s(net, "unknown", sizeof(net));
	push(a, EV_MSG, h, now);
	cnt_add(&a->msg_win, window_ms, now);
	cnt_add(&a->msg_hour, HOUR_MS, now);
	cnt_add(&a->msg_day, DAY_MS, now);
	a->hour_count++; /* the engine rolls the hour at its flush (acct_hour_roll) */
	for (i = 0; i < a->nclients; i++)
		if (a->clients[i].h == h && strcmp(a->clients[i].addr, addr) == 0)
			c = &a->clients[i];
	if (c == NULL) {
		size_t old = 0;

		if (a->nclients < ACCT_CLIENTS) {
			old = a->nclients++;
		} else {
			for (i = 1; i < ACCT_CLIENTS; i++)
				if (a->clients[i].last < a->clients[old].last)
					old = i;
		}
		c = &a->clients[old];
		memset(c, 0, sizeof(*c));
		c->h = h;
		strlcpy_s(c->addr, addr, sizeof(c->addr));
		strlcpy_s(c->net, net, sizeof(c->net));
	}
	c->last = now;
	strlcpy_s(a->last_client, addr, sizeof(a->last_client));
	n = net_get(a, net, now, 1);
	n->last_seen = now;
	n->messages++;
	n->d_messages++;
	n->dirty = 1;
}

static void content_expire(struct acct *a, int64_t now, int64_t window_ms)
{
	size_t i;

	for (i = 0; i < ACCT_CONTENTS; i++) {
		struct acct_content *c = &a->content[i];

		if (c->h == 0 || c->last >= now - window_ms)
			continue;
		/* An episode of bulk mail ended without a suspension: it was legitimate. */
		if (c->hit && !a->suspended && a->bulk_seen == 0) {
			a->bulk_seen = now;
			a->bulk_dirty = 1;
		}
		memset(c, 0, sizeof(*c));
	}
}

void acct_message(struct acct *a, int64_t now, int64_t window_ms, const char *const *froms,
		  size_t nfroms, uint64_t content, const uint32_t *doms, size_t ndoms)
{
	struct acct_content *c = NULL;
	size_t i;
	size_t j;

	for (i = 0; i < nfroms; i++) {
		uint32_t h = (uint32_t)acct_hash64(froms[i]);

		if (!recent(a, EV_FROM, h, now))
			push(a, EV_FROM, h, now);
	}
	if (content == 0)
		return;
	content_expire(a, now, window_ms);
	for (i = 0; i < ACCT_CONTENTS && c == NULL; i++)
		if (a->content[i].h == content)
			c = &a->content[i];
	if (c == NULL) {
		size_t old = 0;

		for (i = 0; i < ACCT_CONTENTS; i++) {
			if (a->content[i].h == 0) {
				old = i;
				break;
			}
			if (a->content[i].last < a->content[old].last)
				old = i;
		}
		c = &a->content[old];
		memset(c, 0, sizeof(*c));
		c->h = content;
		c->first = now;
	}
	c->last = now;
	c->messages++;
	for (i = 0; i < ndoms && c->ndoms < ACCT_CONTENT_DOMS; i++) {
		for (j = 0; j < c->ndoms; j++)
			if (c->doms[j] == doms[i])
				break;
		if (j == c->ndoms)
			c->doms[c->ndoms++] = doms[i];
	}
	if (c->messages >= ACCOUNT_CONTENT_MESSAGES && c->ndoms >= ACCOUNT_CONTENT_DOMAINS)
		c->hit = 1;
}

void acct_known_network(struct acct *a, const char *net, int64_t first_seen,
			int64_t last_seen, int64_t messages)
{
	struct acct_net *n = net_get(a, net, first_seen, 0);

	if (n == NULL) {
		if (a->nnets >= ACCT_NETS)
			return; /* the loader gives the most recent first */
		n = net_get(a, net, first_seen, 1);
	}
	/* Seen here already (the load raced a message): keep both counts. */
	if (first_seen < n->first_seen)
		n->first_seen = first_seen;
	if (last_seen > n->last_seen)
		n->last_seen = last_seen;
	n->messages += messages;
}

void acct_known_baseline(struct acct *a, int how, double rate, int64_t weeks)
{
	if (how < 0 || how >= ACCT_HOW)
		return;
	a->base_rate[how] = (float)rate;
	a->base_weeks[how] = (uint16_t)(weeks > 65535 ? 65535 : weeks);
}

void acct_baseline_observe(struct acct *a, int how, int64_t count)
{
	if (how < 0 || how >= ACCT_HOW)
		return;
	if (a->base_weeks[how] == 0)
		a->base_rate[how] = (float)count;
	else
		a->base_rate[how] = (float)((1.0 - ACCT_BASELINE_ALPHA) * a->base_rate[how] +
					    ACCT_BASELINE_ALPHA * (double)count);
	if (a->base_weeks[how] < 65535)
		a->base_weeks[how]++;
}

int acct_hour_roll(struct acct *a, int64_t now, int *how, int64_t *count)
{
	int whole;

	if (now < a->hour_start + HOUR_MS)
		return 0;
	*how = acct_how(a->hour_start);
	*count = a->hour_count;
	/* An hour that began before the account was seen, or a gap (the loop
	 * stalled, the clock jumped) is not a whole hour. */
	whole = !a->hour_partial && now < a->hour_start + 2 * HOUR_MS;
	a->hour_start = now - now % HOUR_MS;
	a->hour_count = 0;
	a->hour_partial = 0;
	return whole;
}

/* A network is known when it was first seen before the window. */
static int net_known(const struct acct_net *n, int64_t now, int64_t window_ms)
{
	return n->first_seen < now - window_ms;
}

static int has_history(const struct acct *a, int64_t now, int64_t window_ms)
{
	int64_t msgs = 0;
	size_t i;

	if (!a->loaded)
		return 0; /* not known yet: unknown scores 0 */
	for (i = 0; i < a->nnets; i++) {
		if (!net_known(&a->nets[i], now, window_ms))
			continue;
		if (a->nets[i].first_seen <= now - ACCT_HISTORY_AGE_MS)
			return 1;
		msgs += a->nets[i].messages;
	}
	return msgs >= ACCT_HISTORY_MESSAGES;
}

int acct_net_new(const struct acct *a, const char *net, int64_t now, int64_t window_ms)
{
	size_t i;

	if (!has_history(a, now, window_ms))
		return 0;
	for (i = 0; i < a->nnets; i++)
		if (strcmp(a->nets[i].net, net) == 0)
			return !net_known(&a->nets[i], now, window_ms);
	return 1;
}

int64_t acct_client_messages(const struct acct *a, uint32_t h, int64_t now,
			     int64_t window_ms)
{
	int64_t n = 0;
	size_t i;

	for (i = 0; i < a->n; i++) {
		const struct acct_ev *x = &a->ring[(a->head + ACCT_RING - 1 - i) % ACCT_RING];

		if (x->ts < now - window_ms)
			break;
		if (x->kind == EV_MSG && x->h == h)
			n++;
	}
	return n;
}

static int cmp_u32(const void *x, const void *y)
{
	uint32_t a = *(const uint32_t *)x;
	uint32_t b = *(const uint32_t *)y;

	return a < b ? -1 : a > b;
}

static int64_t distinct(uint32_t *v, size_t n)
{
	size_t i;
	int64_t d = 0;

	qsort(v, n, sizeof(*v), cmp_u32);
	for (i = 0; i < n; i++)
		if (i == 0 || v[i] != v[i - 1])
			d++;
	return d;
}

void acct_facts(struct acct *a, int64_t now, int64_t window_ms, int64_t volume_floor,
		int trusted, struct account_facts *f)
{
	uint32_t senders[ACCT_RING];
	uint32_t froms[ACCT_RING];
	size_t ns = 0;
	size_t nf = 0;
	int64_t since = now - window_ms;
	const struct acct_content *top = NULL;
	size_t i;
	int how = acct_how(now);

	memset(f, 0, sizeof(*f));
	for (i = 0; i < a->n; i++) {
		const struct acct_ev *x = &a->ring[(a->head + ACCT_RING - 1 - i) % ACCT_RING];

		if (x->ts < since)
			break;
		switch (x->kind) {
		case EV_SENDER:
			senders[ns++] = x->h;
			break;
		case EV_FROM:
			froms[nf++] = x->h;
			break;
		case EV_BIND:
			f->bindings++;
			break;
		case EV_MALFORMED:
			f->malformed++;
			break;
		default:
			break;
		}
	}
	f->senders = distinct(senders, ns);
	f->foreign_from = distinct(froms, nf);
	for (i = 0; i < a->nclients && !f->new_network; i++)
		if (a->clients[i].last >= since &&
		    acct_net_new(a, a->clients[i].net, now, window_ms))
			f->new_network = 1;
	f->messages_window = cnt_get(&a->msg_win, window_ms, now);
	f->messages_hour = cnt_get(&a->msg_hour, HOUR_MS, now);
	f->baseline = a->base_rate[how];
	f->baseline_weeks = a->base_weeks[how];
	content_expire(a, now, window_ms);
	for (i = 0; i < ACCT_CONTENTS; i++) {
		const struct acct_content *c = &a->content[i];

		if (c->h == 0)
			continue;
		if (top == NULL || c->messages > top->messages ||
		    (c->messages == top->messages && c->ndoms > top->ndoms))
			top = c;
	}
	if (top != NULL) {
		f->content_messages = top->messages;
		f->content_domains = top->ndoms;
	}
	f->bulk_before = a->bulk_seen > 0;
	f->trusted = trusted;
	f->volume_floor = volume_floor;
	f->window_s = window_ms / 1000;
}

int64_t acct_volume_day(struct acct *a, int64_t now)
{
	return cnt_get(&a->msg_day, DAY_MS, now);
}

int acct_evictable(const struct acct *a, int64_t now, int64_t idle_ms, int64_t min_ms)
{
	int64_t last = a->n > 0 ? a->ring[(a->head + ACCT_RING - 1) % ACCT_RING].ts : a->created;
	size_t i;

	if (a->suspended || a->flag_pending || a->remote_suspended || a->trusted_until > 0 ||
	    a->dirty || a->bulk_dirty || a->score > 0 ||
	    (a->load_sent && !a->loaded))
		return 0;
	for (i = 0; i < sizeof(a->lim) / sizeof(a->lim[0]); i++)
		if (a->lim[i] >= 0)
			return 0;
	for (i = 0; i < a->nnets; i++)
		if (a->nets[i].dirty)
			return 0;
	return now - last >= idle_ms && now - last >= min_ms;
}
