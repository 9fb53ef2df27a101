/*
 * account_win: approximate sliding-window counters (see account.h).
 * Owns every entry and its key; callers pass keys that are copied.
 * Never: grow past max_keys entries.
 */
#include "account.h"

#include <stdlib.h>
#include <string.h>

#include "../util/util.h"

struct entry {
	struct entry *next;
	char *key;
	int64_t window;
	int64_t start;   /* start of the current fixed window */
	int64_t cur;
	int64_t prev;
	/* _exact: the times of the last keep events, a ring (NULL: none). */
	int64_t *times;
	size_t keep, nt, ht;
};

struct account_win {
	struct entry **tab;
	size_t size;
	size_t n;
	size_t max;
};

static uint64_t hash(const char *s, int64_t w)
{
	uint64_t h = 1469598103934665603ULL ^ (uint64_t)w;

	while (*s != '\0') {
		h ^= (unsigned char)*s++;
		h *= 1099511628211ULL;
	}
	return h;
}

struct account_win *account_win_new(size_t max_keys)
{
	struct account_win *w = xcalloc(1, sizeof(*w));

	w->size = 1024;
	w->tab = xcalloc(w->size, sizeof(*w->tab));
	w->max = max_keys > 0 ? max_keys : 1;
	return w;
}

void account_win_free(struct account_win *w)
{
	size_t i;

	if (w == NULL)
		return;
	for (i = 0; i < w->size; i++) {
		while (w->tab[i] != NULL) {
			struct entry *e = w->tab[i];

			w->tab[i] = e->next;
			free(e->times);
			free(e->key);
			free(e);
		}
	}
	free(w->tab);
	free(w);
}

/* Move the fixed windows forward to now. */
static void roll(struct entry *e, int64_t now)
{
	int64_t k;

	if (now < e->start + e->window)
		return;
	k = (now - e->start) / e->window;
	e->prev = k == 1 ? e->cur : 0;
	e->cur = 0;
	e->start += k * e->window;
}

static void sweep(struct account_win *w, int64_t now)
{
	size_t i;

	for (i = 0; i < w->size; i++) {
		struct entry **pp = &w->tab[i];

		while (*pp != NULL) {
			struct entry *e = *pp;

			if (now >= e->start + 2 * e->window || w->n >= w->max) {
				*pp = e->next;
				free(e->times);
				free(e->key);
				free(e);
				w->n--;
			} else {
				pp = &e->next;
			}
		}
	}
}

static struct entry *find(struct account_win *w, const char *key, int64_t window,
			  int64_t now, int create)
{
	size_t b = hash(key, window) % w->size;
	struct entry *e;

	for (e = w->tab[b]; e != NULL; e = e->next)
		if (e->window == window && strcmp(e->key, key) == 0)
			return e;
	if (!create)
		return NULL;
	if (w->n >= w->max)
		sweep(w, now);
	e = xcalloc(1, sizeof(*e));
	e->key = xstrdup(key);
	e->window = window > 0 ? window : 1;
	e->start = now;
	e->next = w->tab[b];
	w->tab[b] = e;
	w->n++;
	return e;
}

int64_t account_win_count(struct account_win *w, const char *key, int64_t window_ms,
			  int64_t now)
{
	struct entry *e = find(w, key, window_ms, now, 0);
	int64_t left;

	if (e == NULL)
		return 0;
	roll(e, now);
	left = e->window - (now - e->start);
	return e->cur + (e->prev * left + e->window - 1) / e->window;
}

void account_win_add(struct account_win *w, const char *key, int64_t window_ms, int64_t now,
		     int64_t n)
{
	struct entry *e = find(w, key, window_ms, now, 1);

	roll(e, now);
	e->cur += n;
}

void account_win_clear(struct account_win *w, const char *key)
{
	size_t i;

	for (i = 0; i < w->size; i++) {
		struct entry **pp = &w->tab[i];

		while (*pp != NULL) {
			struct entry *e = *pp;

			if (strcmp(e->key, key) == 0) {
				*pp = e->next;
				free(e->times);
				free(e->key);
				free(e);
				w->n--;
			} else {
				pp = &e->next;
			}
		}
	}
}

int64_t account_win_count_exact(struct account_win *w, const char *key, int64_t window_ms,
				int64_t now)
{
	struct entry *e = find(w, key, window_ms, now, 0);
	int64_t n = 0;
	size_t i;

	if (e == NULL || e->times == NULL)
		return 0;
	/* Newest first; stop at the first one out of the window. */
	for (i = 0; i < e->nt; i++) {
		int64_t t = e->times[(e->ht + e->keep - 1 - i) % e->keep];

		if (t <= now - e->window)
			break;
		n++;
	}
	return n;
}

void account_win_add_exact(struct account_win *w, const char *key, int64_t window_ms,
			   int64_t now, size_t keep)
{
	struct entry *e = find(w, key, window_ms, now, 1);

	if (keep < 1)
		keep = 1;
	if (keep > ACCOUNT_WIN_KEEP_MAX)
		keep = ACCOUNT_WIN_KEEP_MAX;
	if (e->keep != keep) {
		/* A new limit (an override): keep the newest times that fit. */
		int64_t *t = xcalloc(keep, sizeof(*t));
		size_t n = e->nt < keep ? e->nt : keep;
		size_t i;

		for (i = 0; i < n; i++)
			t[n - 1 - i] = e->times[(e->ht + e->keep - 1 - i) % e->keep];
		free(e->times);
		e->times = t;
		e->keep = keep;
		e->nt = n;
		e->ht = n % keep;
	}
	e->times[e->ht] = now;
	e->ht = (e->ht + 1) % e->keep;
	if (e->nt < e->keep)
		e->nt++;
	roll(e, now);
	e->cur++;
}
