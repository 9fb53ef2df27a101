/*
 * dns: c-ares on the mail event loop, with a TTL cache.  See dns.h.
 *
 * Driving c-ares: ARES_OPT_SOCK_STATE_CB tells us which sockets c-ares
 * wants watched; each gets one persistent libevent event that calls
 * ares_process_fd().  One timer, re-armed from ares_timeout() after every
 * call into c-ares, drives retries and time-outs.
 *
 * Every answer (network or cache) is parked on the ready list as a
 * request and delivered from ready_ev, so a callback never runs inside
 * dns_query() and never inside a c-ares callback chain.  dns_free()
 * destroys the channel (c-ares then completes each pending query with
 * ARES_EDESTRUCTION) and completes every request with DNS_CANCELLED.
 *
 * The cache maps (type, lower-cased name) to a compact copy of the answer
 * (only `count` records, or the bytes in use of a DNS_TXT_FULL answer), expiring at now + ttl; negative answers use the
 * SOA minimum capped at max_negative_ttl; TEMPFAIL is never cached.  Full
 * cache: the least recently used entry goes.
 */
#include "dns.h"

#include <ares.h>
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <event2/event.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../log/log.h"
#include "../util/util.h"

#define DNS_NEG_TTL_DEFAULT 60

struct dns_req {
	struct dns *d;
	struct dns_req *next;       /* ready list */
	struct dns_req *pnext;      /* pending list (all live requests) */
	struct dns_req *pprev;
	dns_cb cb;
	uint64_t cookie;
	void *ctx;
	char key[DNS_NAME_MAX + 2];
	struct dns_result res;
};

struct cache_entry {
	struct cache_entry *hnext;
	struct cache_entry *lprev;  /* LRU: head is newest */
	struct cache_entry *lnext;
	uint32_t hash;
	int64_t expires_ms;
	enum dns_type type;
	enum dns_status status;
	size_t count;
	size_t bytes;               /* of records */
	char *name;
	void *records;
};

struct sockev {
	struct sockev *next;
	ares_socket_t fd;
	struct event *ev;
};

struct dns {
	struct event_base *base;
	ares_channel channel;
	int channel_ok;
	struct event *timer;
	struct event *ready_ev;
	struct sockev *socks;
	struct dns_req *ready;
	struct dns_req **ready_tail;
	struct dns_req *pending;
	struct dns_config cfg;
	char *servers;

	struct cache_entry **table;
	size_t table_size;
	struct cache_entry *lru_head;
	struct cache_entry *lru_tail;
	size_t cache_size;
	struct dns_stats stats;
};

static size_t record_size(enum dns_type t)
{
	switch (t) {
	case DNS_A:
		return sizeof(struct in_addr);
	case DNS_AAAA:
		return sizeof(struct in6_addr);
	case DNS_MX:
		return sizeof(struct dns_mx);
	case DNS_PTR:
	case DNS_TXT:
		return DNS_NAME_MAX + 1;
	case DNS_TXT_FULL:
		break;
	}
	abort();
}

/* Bytes of r->u that hold the answer (what the cache keeps). */
static size_t result_bytes(const struct dns_result *r)
{
	if (r->type == DNS_TXT_FULL)
		return offsetof(struct dns_txt_full, buf) + r->u.txt_full.len;
	return r->count * record_size(r->type);
}

const char *dns_txt_next(const struct dns_result *r, const char *prev)
{
	const struct dns_txt_full *t = &r->u.txt_full;
	const char *end = t->buf + t->len;
	const char *p;

	if (r->type != DNS_TXT_FULL || r->status != DNS_OK)
		return NULL;
	p = prev == NULL ? t->buf : prev + strlen(prev) + 1;
	return p < end ? p : NULL;
}

static int ares_type(enum dns_type t)
{
	switch (t) {
	case DNS_A:
		return ns_t_a;
	case DNS_AAAA:
		return ns_t_aaaa;
	case DNS_MX:
		return ns_t_mx;
	case DNS_PTR:
		return ns_t_ptr;
	case DNS_TXT:
	case DNS_TXT_FULL:
		return ns_t_txt;
	}
	abort();
}

/* ---- cache ------------------------------------------------------------ */

static uint32_t hash_key(enum dns_type t, const char *name)
{
	uint32_t h = 2166136261u ^ (uint32_t)t;

	for (; *name != '\0'; name++) {
		h ^= (unsigned char)*name;
		h *= 16777619u;
	}
	return h;
}

static void lru_unlink(struct dns *d, struct cache_entry *e)
{
	if (e->lprev != NULL)
		e->lprev->lnext = e->lnext;
	else
		d->lru_head = e->lnext;
	if (e->lnext != NULL)
		e->lnext->lprev = e->lprev;
	else
		d->lru_tail = e->lprev;
	e->lprev = e->lnext = NULL;
}

static void lru_push(struct dns *d, struct cache_entry *e)
{
	e->lprev = NULL;
	e->lnext = d->lru_head;
	if (d->lru_head != NULL)
		d->lru_head->lprev = e;
	d->lru_head = e;
	if (d->lru_tail == NULL)
		d->lru_tail = e;
}

static void cache_remove(struct dns *d, struct cache_entry *e)
{
	struct cache_entry **pp = &d->table[e->hash % d->table_size];

	while (*pp != e)
		pp = &(*pp)->hnext;
	*pp = e->hnext;
	lru_unlink(d, e);
	free(e->name);
	free(e->records);
	free(e);
	d->cache_size--;
}

static struct cache_entry *cache_find(struct dns *d, enum dns_type t, const char *name)
{
	uint32_t h;
	struct cache_entry *e;

	if (d->table == NULL)
		return NULL;
	h = hash_key(t, name);
	for (e = d->table[h % d->table_size]; e != NULL; e = e->hnext) {
		if (e->hash == h && e->type == t && strcmp(e->name, name) == 0) {
			if (e->expires_ms <= time_mono_ms()) {
				cache_remove(d, e);
				return NULL;
			}
			lru_unlink(d, e);
			lru_push(d, e);
			return e;
		}
	}
	return NULL;
}

static void cache_store(struct dns *d, const char *name, const struct dns_result *r)
{
	struct cache_entry *e;
	size_t n;

	if (d->table == NULL || r->status == DNS_TEMPFAIL || r->status == DNS_BADNAME ||
	    r->status == DNS_CANCELLED || r->ttl == 0)
		return;
	e = cache_find(d, r->type, name);
	if (e != NULL)
		cache_remove(d, e);
	while (d->cache_size >= d->cfg.cache_entries && d->lru_tail != NULL)
		cache_remove(d, d->lru_tail);
	e = xcalloc(1, sizeof(*e));
	e->hash = hash_key(r->type, name);
	e->type = r->type;
	e->status = r->status;
	e->count = r->count;
	e->name = xstrdup(name);
	e->expires_ms = time_mono_ms() + (int64_t)r->ttl * 1000;
	n = result_bytes(r);
	e->bytes = n;
	if (n > 0) {
		e->records = xmalloc(n);
		memcpy(e->records, &r->u, n);
	}
	e->hnext = d->table[e->hash % d->table_size];
	d->table[e->hash % d->table_size] = e;
	lru_push(d, e);
	d->cache_size++;
}

/* ---- the loop side of c-ares ------------------------------------------ */

static void arm_timer(struct dns *d)
{
	struct timeval tv;
	struct timeval *t;

	if (!d->channel_ok)
		return;
	t = ares_timeout(d->channel, NULL, &tv);
	if (t == NULL)
		evtimer_del(d->timer);
	else
		evtimer_add(d->timer, t);
}

static void sock_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dns *d = arg;

	/* The event for fd may be freed inside: do not touch it afterwards. */
	ares_process_fd(d->channel, (what & EV_READ) ? fd : ARES_SOCKET_BAD,
			(what & EV_WRITE) ? fd : ARES_SOCKET_BAD);
	arm_timer(d);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dns *d = arg;

	(void)fd;
	(void)what;
	ares_process_fd(d->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
	arm_timer(d);
}

static void sock_state_cb(void *data, ares_socket_t fd, int readable, int writable)
{
	struct dns *d = data;
	struct sockev **pp = &d->socks;
	struct sockev *s;
	short what = EV_PERSIST;

	while (*pp != NULL && (*pp)->fd != fd)
		pp = &(*pp)->next;
	s = *pp;
	if (s != NULL) {
		*pp = s->next;
		event_free(s->ev);
		free(s);
	}
	if (!readable && !writable)
		return;
	if (readable)
		what |= EV_READ;
	if (writable)
		what |= EV_WRITE;
	s = xcalloc(1, sizeof(*s));
	s->fd = fd;
	s->ev = event_new(d->base, fd, what, sock_cb, d);
	event_add(s->ev, NULL);
	s->next = d->socks;
	d->socks = s;
}

/* ---- requests --------------------------------------------------------- */

static void pending_unlink(struct dns *d, struct dns_req *r)
{
	if (r->pprev != NULL)
		r->pprev->pnext = r->pnext;
	else
		d->pending = r->pnext;
	if (r->pnext != NULL)
		r->pnext->pprev = r->pprev;
	r->pnext = r->pprev = NULL;
}

static void make_ready(struct dns *d, struct dns_req *r)
{
	r->next = NULL;
	*d->ready_tail = r;
	d->ready_tail = &r->next;
	event_active(d->ready_ev, EV_TIMEOUT, 0);
}

static void ready_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dns *d = arg;
	struct dns_req *list = d->ready;

	(void)fd;
	(void)what;
	d->ready = NULL;
	d->ready_tail = &d->ready;
	while (list != NULL) {
		struct dns_req *r = list;

		list = r->next;
		pending_unlink(d, r);
		r->cb(&r->res, r->cookie, r->ctx);
		free(r);
	}
}

static struct dns_req *req_new(struct dns *d, const char *key, enum dns_type type,
			       dns_cb cb, uint64_t cookie, void *ctx)
{
	struct dns_req *r = xcalloc(1, sizeof(*r));

	r->d = d;
	r->cb = cb;
	r->cookie = cookie;
	r->ctx = ctx;
	r->res.type = type;
	strlcpy_s(r->key, key, sizeof(r->key));
	r->pnext = d->pending;
	if (d->pending != NULL)
		d->pending->pprev = r;
	d->pending = r;
	return r;
}

/* Skip the header, the question, and count RRs; return offset or -1. */
static int skip_rrs(const unsigned char *abuf, int alen, int off, int count)
{
	int i;

	for (i = 0; i < count; i++) {
		char *name;
		long len;
		int rdlen;

		if (ares_expand_name(abuf + off, abuf, alen, &name, &len) != ARES_SUCCESS)
			return -1;
		ares_free_string(name);
		off += (int)len;
		if (off + 10 > alen)
			return -1;
		rdlen = (abuf[off + 8] << 8) | abuf[off + 9];
		off += 10 + rdlen;
		if (off > alen)
			return -1;
	}
	return off;
}

/* Smallest TTL of the answer section; for negative answers, the SOA minimum. */
static uint32_t answer_ttl(const unsigned char *abuf, int alen, int negative,
			   uint32_t max_neg)
{
	int qd;
	int an;
	int ns;
	int off = NS_HFIXEDSZ;
	int i;
	uint32_t best = UINT32_MAX;

	if (abuf == NULL || alen < NS_HFIXEDSZ)
		return negative ? DNS_NEG_TTL_DEFAULT : 0;
	qd = (abuf[4] << 8) | abuf[5];
	an = (abuf[6] << 8) | abuf[7];
	ns = (abuf[8] << 8) | abuf[9];
	for (i = 0; i < qd; i++) {
		char *name;
		long len;

		if (ares_expand_name(abuf + off, abuf, alen, &name, &len) != ARES_SUCCESS)
			return 0;
		ares_free_string(name);
		off += (int)len + 4;
	}
	if (negative) {
		off = skip_rrs(abuf, alen, off, an);
		for (i = 0; off >= 0 && i < ns; i++) {
			char *name;
			long len;
			int type;
			uint32_t ttl;
			int rdlen;

			if (ares_expand_name(abuf + off, abuf, alen, &name, &len) != ARES_SUCCESS)
				break;
			ares_free_string(name);
			off += (int)len;
			if (off + 10 > alen)
				break;
			type = (abuf[off] << 8) | abuf[off + 1];
			ttl = ((uint32_t)abuf[off + 4] << 24) | ((uint32_t)abuf[off + 5] << 16) |
			      ((uint32_t)abuf[off + 6] << 8) | abuf[off + 7];
			rdlen = (abuf[off + 8] << 8) | abuf[off + 9];
			if (type == ns_t_soa && off + 10 + rdlen <= alen && rdlen >= 20) {
				const unsigned char *m = abuf + off + 10 + rdlen - 4;
				uint32_t min = ((uint32_t)m[0] << 24) | ((uint32_t)m[1] << 16) |
					       ((uint32_t)m[2] << 8) | m[3];

				best = ttl < min ? ttl : min;
				break;
			}
			off += 10 + rdlen;
		}
		if (best == UINT32_MAX)
			best = DNS_NEG_TTL_DEFAULT;
		return best < max_neg ? best : max_neg;
	}
	for (i = 0; i < an; i++) {
		char *name;
		long len;
		uint32_t ttl;
		int rdlen;

		if (ares_expand_name(abuf + off, abuf, alen, &name, &len) != ARES_SUCCESS)
			break;
		ares_free_string(name);
		off += (int)len;
		if (off + 10 > alen)
			break;
		ttl = ((uint32_t)abuf[off + 4] << 24) | ((uint32_t)abuf[off + 5] << 16) |
		      ((uint32_t)abuf[off + 6] << 8) | abuf[off + 7];
		rdlen = (abuf[off + 8] << 8) | abuf[off + 9];
		if (ttl < best)
			best = ttl;
		off += 10 + rdlen;
		if (off > alen)
			break;
	}
	return best == UINT32_MAX ? 0 : best;
}

static int mx_cmp(const void *a, const void *b)
{
	const struct dns_mx *x = a;
	const struct dns_mx *y = b;

	return (int)x->preference - (int)y->preference;
}

/*
 * Whole TXT records into t (see dns.h); *n the records kept.  A record is
 * kept only when all of it fits; otherwise it is dropped and t->cut set.
 */
static int parse_txt_full(struct dns_txt_full *t, const unsigned char *abuf, int alen,
			  size_t *n)
{
	struct ares_txt_ext *txt = NULL;
	struct ares_txt_ext *p;
	size_t used = 0;
	size_t start = 0;
	int open = 0;
	int over = 0;
	int rc;

	t->len = 0;
	t->cut = 0;
	*n = 0;
	rc = ares_parse_txt_reply_ext(abuf, alen, &txt);
	for (p = txt; rc == ARES_SUCCESS; p = p->next) {
		if (p == NULL || p->record_start) {
			if (open && over) {
				used = start;
				t->cut = 1;
			} else if (open) {
				t->buf[used++] = '\0';
				(*n)++;
			}
			if (p == NULL)
				break;
			open = 1;
			over = 0;
			start = used;
		}
		if (!open || over)
			continue;
		/* Room for this string and the record's NUL. */
		if (p->length >= DNS_TXT_FULL_MAX - used) {
			over = 1;
			continue;
		}
		for (size_t i = 0; i < p->length; i++)
			t->buf[used++] = p->txt[i] == '\0' ? '?' : (char)p->txt[i];
	}
	t->len = (uint16_t)used;
	if (txt != NULL)
		ares_free_data(txt);
	return rc;
}

/* Fill r->res from a successful answer; 0 ok (status set), -1 parse error. */
static int parse_answer(struct dns_result *res, const unsigned char *abuf, int alen)
{
	int rc = ARES_SUCCESS;
	size_t n = 0;

	switch (res->type) {
	case DNS_A: {
		struct ares_addrttl at[DNS_MAX_RECORDS];
		int na = DNS_MAX_RECORDS;
		int i;

		rc = ares_parse_a_reply(abuf, alen, NULL, at, &na);
		for (i = 0; rc == ARES_SUCCESS && i < na; i++)
			res->u.a[n++] = at[i].ipaddr;
		break;
	}
	case DNS_AAAA: {
		struct ares_addr6ttl at[DNS_MAX_RECORDS];
		int na = DNS_MAX_RECORDS;
		int i;

		rc = ares_parse_aaaa_reply(abuf, alen, NULL, at, &na);
		for (i = 0; rc == ARES_SUCCESS && i < na; i++)
			memcpy(&res->u.aaaa[n++], &at[i].ip6addr, sizeof(struct in6_addr));
		break;
	}
	case DNS_MX: {
		struct ares_mx_reply *mx = NULL;
		struct ares_mx_reply *p;

		rc = ares_parse_mx_reply(abuf, alen, &mx);
		for (p = mx; rc == ARES_SUCCESS && p != NULL && n < DNS_MAX_RECORDS; p = p->next) {
			const char *h = p->host;

			res->u.mx[n].preference = p->priority;
			if (strcmp(h, ".") == 0)
				h = "";
			strlcpy_s(res->u.mx[n].host, h, sizeof(res->u.mx[n].host));
			n++;
		}
		if (mx != NULL)
			ares_free_data(mx);
		qsort(res->u.mx, n, sizeof(res->u.mx[0]), mx_cmp);
		break;
	}
	case DNS_PTR: {
		struct hostent *he = NULL;
		unsigned char dummy[16] = { 0 };
		int i;

		rc = ares_parse_ptr_reply(abuf, alen, dummy, 4, AF_INET, &he);
		if (rc == ARES_SUCCESS && he != NULL) {
			strlcpy_s(res->u.ptr[n++], he->h_name, DNS_NAME_MAX + 1);
			for (i = 0; he->h_aliases != NULL && he->h_aliases[i] != NULL &&
				    n < DNS_MAX_RECORDS; i++)
				strlcpy_s(res->u.ptr[n++], he->h_aliases[i], DNS_NAME_MAX + 1);
		}
		if (he != NULL)
			ares_free_hostent(he);
		break;
	}
	case DNS_TXT: {
		struct ares_txt_ext *txt = NULL;
		struct ares_txt_ext *p;

		rc = ares_parse_txt_reply_ext(abuf, alen, &txt);
		for (p = txt; rc == ARES_SUCCESS && p != NULL; p = p->next) {
			size_t used;

			if (p->record_start) {
				if (n == DNS_MAX_RECORDS)
					break;
				res->u.txt[n++][0] = '\0';
			}
			if (n == 0)
				continue;
			used = strlen(res->u.txt[n - 1]);
			if (used < DNS_NAME_MAX) {
				size_t take = p->length;

				if (take > DNS_NAME_MAX - used)
					take = DNS_NAME_MAX - used;
				memcpy(res->u.txt[n - 1] + used, p->txt, take);
				res->u.txt[n - 1][used + take] = '\0';
			}
		}
		if (txt != NULL)
			ares_free_data(txt);
		break;
	}
	case DNS_TXT_FULL:
		rc = parse_txt_full(&res->u.txt_full, abuf, alen, &n);
		break;
	}
	if (rc == ARES_ENODATA) {
		res->status = DNS_NODATA;
		return 0;
	}
	if (rc != ARES_SUCCESS)
		return -1;
	res->count = n;
	res->status = n > 0 ? DNS_OK : DNS_NODATA;
	/* Records exist but none fitted: not "no record". */
	if (res->type == DNS_TXT_FULL && res->u.txt_full.cut)
		res->status = DNS_OK;
	return 0;
}

static void query_cb(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct dns_req *r = arg;
	struct dns *d = r->d;

	(void)timeouts;
	switch (status) {
	case ARES_SUCCESS:
		if (parse_answer(&r->res, abuf, alen) < 0) {
			r->res.status = DNS_TEMPFAIL;
			break;
		}
		r->res.ttl = answer_ttl(abuf, alen, r->res.status != DNS_OK,
					d->cfg.max_negative_ttl);
		break;
	case ARES_ENODATA:
		r->res.status = DNS_NODATA;
		r->res.ttl = answer_ttl(abuf, alen, 1, d->cfg.max_negative_ttl);
		break;
	case ARES_ENOTFOUND:
		r->res.status = DNS_NXDOMAIN;
		r->res.ttl = answer_ttl(abuf, alen, 1, d->cfg.max_negative_ttl);
		break;
	case ARES_EBADNAME:
		r->res.status = DNS_BADNAME;
		break;
	case ARES_EDESTRUCTION:
	case ARES_ECANCELLED:
		r->res.status = DNS_CANCELLED;
		break;
	default:
		r->res.status = DNS_TEMPFAIL;
		break;
	}
	if (r->res.status == DNS_TEMPFAIL)
		d->stats.tempfails++;
	if (r->res.status != DNS_CANCELLED)
		cache_store(d, r->key, &r->res);
	make_ready(d, r);
}

static int valid_name(const char *name)
{
	size_t len = strlen(name);
	size_t label = 0;
	size_t i;

	if (len == 0 || len > DNS_NAME_MAX - 1)
		return 0;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];

		if (c == '.') {
			if (label == 0 && i + 1 != len)
				return 0;
			label = 0;
			continue;
		}
		if (c <= ' ' || c >= 0x7f || ++label > 63)
			return 0;
	}
	return 1;
}

void dns_query(struct dns *d, const char *name, enum dns_type type, dns_cb cb,
	       uint64_t cookie, void *ctx)
{
	char key[DNS_NAME_MAX + 2];
	struct cache_entry *e;
	struct dns_req *r;
	size_t i;

	d->stats.queries++;
	if (!valid_name(name)) {
		r = req_new(d, "", type, cb, cookie, ctx);
		r->res.status = DNS_BADNAME;
		make_ready(d, r);
		return;
	}
	for (i = 0; name[i] != '\0' && i < sizeof(key) - 1; i++)
		key[i] = (name[i] >= 'A' && name[i] <= 'Z') ? (char)(name[i] + 32) : name[i];
	key[i] = '\0';
	if (i > 1 && key[i - 1] == '.')
		key[i - 1] = '\0';
	r = req_new(d, key, type, cb, cookie, ctx);
	e = cache_find(d, type, key);
	if (e != NULL) {
		d->stats.cache_hits++;
		r->res.status = e->status;
		r->res.count = e->count;
		r->res.from_cache = 1;
		r->res.ttl = (uint32_t)((e->expires_ms - time_mono_ms() + 999) / 1000);
		if (e->bytes > 0)
			memcpy(&r->res.u, e->records, e->bytes);
		make_ready(d, r);
		return;
	}
	if (!d->channel_ok) {
		r->res.status = DNS_TEMPFAIL;
		make_ready(d, r);
		return;
	}
	ares_query(d->channel, key, ns_c_in, ares_type(type), query_cb, r);
	arm_timer(d);
}

int dns_reverse_name(const struct sockaddr *sa, char *out, size_t outsz)
{
	static const char hex[] = "0123456789abcdef";

	if (sa == NULL || out == NULL)
		return -1;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)(const void *)sa;
		const unsigned char *b = (const unsigned char *)&sin->sin_addr;
		int n = snprintf(out, outsz, "%u.%u.%u.%u", b[3], b[2], b[1], b[0]);

		return n < 0 || (size_t)n >= outsz ? -1 : 0;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)(const void *)sa;
		const unsigned char *b = sin6->sin6_addr.s6_addr;
		size_t o = 0;
		int i;

		if (outsz < 64)
			return -1;
		for (i = 15; i >= 0; i--) {
			out[o++] = hex[b[i] & 0xf];
			out[o++] = '.';
			out[o++] = hex[b[i] >> 4];
			out[o++] = i > 0 ? '.' : '\0';
		}
		return 0;
	}
	return -1;
}

void dns_query_ptr(struct dns *d, const struct sockaddr *sa, dns_cb cb,
		   uint64_t cookie, void *ctx)
{
	char rev[80];
	char name[DNS_NAME_MAX + 1];

	if (dns_reverse_name(sa, rev, sizeof(rev)) < 0) {
		struct dns_req *r = req_new(d, "", DNS_PTR, cb, cookie, ctx);

		d->stats.queries++;
		r->res.status = DNS_BADNAME;
		make_ready(d, r);
		return;
	}
	snprintf(name, sizeof(name), "%s.%s", rev,
		 sa->sa_family == AF_INET ? "in-addr.arpa" : "ip6.arpa");
	dns_query(d, name, DNS_PTR, cb, cookie, ctx);
}

struct dns *dns_new(struct event_base *base, const struct dns_config *cfg,
		    char *err, size_t errsz)
{
	static int lib_init;
	struct dns *d;
	struct ares_options opts;
	int mask = ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES;
	int rc;

	if (!lib_init) {
		rc = ares_library_init(ARES_LIB_INIT_ALL);
		if (rc != ARES_SUCCESS) {
			snprintf(err, errsz, "dns: %s", ares_strerror(rc));
			return NULL;
		}
		lib_init = 1;
	}
	d = xcalloc(1, sizeof(*d));
	d->base = base;
	d->cfg = *cfg;
	if (d->cfg.max_negative_ttl == 0)
		d->cfg.max_negative_ttl = 3600;
	d->servers = cfg->servers ? xstrdup(cfg->servers) : NULL;
	d->cfg.servers = d->servers;
	d->ready_tail = &d->ready;
	memset(&opts, 0, sizeof(opts));
	opts.sock_state_cb = sock_state_cb;
	opts.sock_state_cb_data = d;
	opts.timeout = (int)(cfg->timeout_ms > 0 ? cfg->timeout_ms : 5000);
	opts.tries = cfg->tries > 0 ? cfg->tries : 2;
	rc = ares_init_options(&d->channel, &opts, mask);
	if (rc != ARES_SUCCESS) {
		snprintf(err, errsz, "dns: cannot initialise c-ares: %s", ares_strerror(rc));
		free(d->servers);
		free(d);
		return NULL;
	}
	d->channel_ok = 1;
	if (d->servers != NULL && d->servers[0] != '\0') {
		rc = ares_set_servers_ports_csv(d->channel, d->servers);
		if (rc != ARES_SUCCESS) {
			snprintf(err, errsz, "dns_servers '%s': %s", d->servers,
				 ares_strerror(rc));
			ares_destroy(d->channel);
			free(d->servers);
			free(d);
			return NULL;
		}
	}
	d->timer = evtimer_new(base, timer_cb, d);
	d->ready_ev = event_new(base, -1, 0, ready_cb, d);
	if (cfg->cache_entries > 0) {
		d->table_size = 1024;
		while (d->table_size < cfg->cache_entries && d->table_size < (1u << 20))
			d->table_size <<= 1;
		d->table = xcalloc(d->table_size, sizeof(*d->table));
	}
	return d;
}

void dns_free(struct dns *d)
{
	struct dns_req *r;

	if (d == NULL)
		return;
	/* Network queries complete with ARES_EDESTRUCTION onto the ready list. */
	ares_destroy(d->channel);
	d->channel_ok = 0;
	for (r = d->pending; r != NULL; r = r->pnext)
		r->res.status = DNS_CANCELLED;
	while (d->ready != NULL) {
		struct dns_req *list = d->ready;

		d->ready = NULL;
		d->ready_tail = &d->ready;
		while (list != NULL) {
			r = list;
			list = r->next;
			pending_unlink(d, r);
			r->res.status = DNS_CANCELLED;
			r->res.count = 0;
			r->cb(&r->res, r->cookie, r->ctx);
			free(r);
		}
	}
	while (d->socks != NULL) {
		struct sockev *s = d->socks;

		d->socks = s->next;
		event_free(s->ev);
		free(s);
	}
	while (d->lru_head != NULL)
		cache_remove(d, d->lru_head);
	free(d->table);
	event_free(d->timer);
	event_free(d->ready_ev);
	free(d->servers);
	free(d);
}

void dns_get_stats(const struct dns *d, struct dns_stats *out)
{
	*out = d->stats;
	out->cache_size = d->cache_size;
}
