/*
 * policy: the engine and the checks of the front-door policy.  See policy.h.
 *
 * Threads: everything here runs on the mail loop except watcher_main(),
 * which owns its own SQLite connection, polls the policy generation every
 * POLL_MS, builds snapshots and flushes statistics.  The two share only
 * `pending` (a built snapshot waiting to be swapped in) and the statistics
 * deltas, both under `mu`.  Snapshot reference counts are touched on the
 * loop only.
 *
 * Stages: each SMTP step has a table of checks run in order by run_stage().
 * A check returns CONTINUE, ACCEPT (stop the stage, let the client on),
 * REFUSE, DEFER, or PENDING after starting DNS queries or a tarpit timer;
 * the stage then resumes at the same check once every answer is in, so a
 * check that waits must be idempotent: it looks at its own state first.
 *
 * DNS callbacks carry the session id as cookie and a small heap query as
 * ctx (freed in the callback, which dns.h promises runs exactly once); the
 * session may be gone, and then the answer is dropped.  A time-out or
 * SERVFAIL never refuses mail: it is logged and the check passes.
 */
#include "policy_internal.h"

#include <arpa/inet.h>
#include <event2/event.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "../dns/dns.h"
#include "../log/log.h"
#include "../store/store.h"
#include "../store/store_policy.h"
#include "../util/util.h"

#define POLL_MS 500
#define SESS_BUCKETS 4096
#define CLIENT_BUCKETS 4096
#define MAX_PTR_NAMES 3
#define MAX_TAGS 8
#define HARVEST_RING_MAX 1000

struct client_rec {
	struct client_rec *next;
	uint8_t ip[16];
	int sessions;
	int64_t win_start;      /* connection rate: current 60 s bucket */
	int64_t cur, prev;
	int64_t *ring;          /* unknown-recipient times, oldest at head */
	size_t rlen, rcap, rhead;
	int64_t last_ms;
};

struct stat_delta {
	char name[128];
	int zone;
	int64_t count, queries, hits, tempfails, last_hit;
};

struct policy {
	struct event_base *base;
	char *db_path;
	char hostname[256];
	int64_t max_sessions;
	policy_done_cb done;
	void *done_arg;
	struct dns *dns;
	int warned_no_dns;
	struct policy_snap *cur;

	pthread_t thread;
	int thread_started;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int stop;                        /* under mu */
	struct policy_snap *pending;     /* under mu */
	struct stat_delta *stats;        /* under mu */
	size_t nstats, stats_cap;
	int64_t last_gen;                /* watcher only */

	struct event *swap_ev;
	struct event *prune_ev;
	struct policy_sess *sess[SESS_BUCKETS];
	struct client_rec *clients[CLIENT_BUCKETS];
};

enum step { STEP_NONE, STEP_CONNECT, STEP_HELO, STEP_MAIL, STEP_RCPT };
enum astate { A_NONE, A_WAIT, A_DONE };

struct bl_result {
	int hit;
	int tempfail;
	uint32_t code;
};

struct policy_sess {
	struct policy *p;                /* NULL in unit tests */
	struct policy_sess *hnext;
	uint64_t sid;
	char idstr[20];
	struct policy_snap *snap;
	struct client_rec *client;
	struct sockaddr_storage sa;
	uint8_t ip[16];
	char addr[64];
	uint8_t local_ip[16];
	int has_local;
	int nsessions;

	/* Facts later checks may use. */
	int trusted;                     /* on conn_allow */
	int relay_client;                /* on relay_net */
	int relay_exempt;                /* on relay_exempt */
	enum astate rdns;
	enum dns_status ptr_status;
	int ptr_known;
	char ptr_names[MAX_PTR_NAMES][DNS_NAME_MAX + 1];
	int nptr;
	int fcrdns;
	char name[DNS_NAME_MAX + 1];     /* forward-confirmed name or "" */

	enum astate dnsbl;
	struct bl_result *bl;            /* one per snapshot site */

	enum astate helo_dns;
	int helo_found, helo_tempfail, helo_try_aaaa;
	char helo[256];

	enum astate tarpit;
	struct event *timer;

	char tags[MAX_TAGS][200];
	int ntags;

	/* Stage runner. */
	enum step step;
	size_t pos;
	int npending;
};

struct dnsq {
	struct policy *p;
	enum { Q_PTR, Q_FWD, Q_BL, Q_HELO } kind;
	int idx;
};

/* --- helpers -------------------------------------------------------------- */

static int64_t today(void)
{
	return time_now_ms() / 86400000;
}

static void verdict(struct policy_verdict *v, enum policy_action a, const char *code,
		    const char *check, const struct policy_ref *ref, const char *text)
{
	v->action = a;
	strlcpy_s(v->code, code, sizeof(v->code));
	strlcpy_s(v->check, check, sizeof(v->check));
	strlcpy_s(v->text, text, sizeof(v->text));
	if (ref != NULL)
		snprintf(v->entry, sizeof(v->entry), "%s entry %lld %s", ref->list,
			 (long long)ref->id, ref->value);
	else
		v->entry[0] = '\0';
}

/* Text with {ip} and {zone} filled in. */
static void vtext(struct policy_sess *ps, struct policy_verdict *v, const char *tmpl,
		  const char *zone)
{
	char buf[sizeof(v->text)];

	policy_expand(tmpl, ps->addr, zone ? zone : "", buf, sizeof(buf));
	strlcpy_s(v->text, buf, sizeof(v->text));
}

static void stat_add(struct policy *p, const char *name, int zone, int64_t count,
		     int64_t queries, int64_t hits, int64_t tempfails, int64_t last_hit)
{
	size_t i;

	if (p == NULL)
		return;
	pthread_mutex_lock(&p->mu);
	for (i = 0; i < p->nstats; i++)
		if (p->stats[i].zone == zone && strcmp(p->stats[i].name, name) == 0)
			break;
	if (i == p->nstats) {
		if (p->nstats == p->stats_cap) {
			p->stats_cap = p->stats_cap ? p->stats_cap * 2 : 32;
			p->stats = xrealloc(p->stats, p->stats_cap * sizeof(*p->stats));
		}
		memset(&p->stats[i], 0, sizeof(p->stats[i]));
		strlcpy_s(p->stats[i].name, name, sizeof(p->stats[i].name));
		p->stats[i].zone = zone;
		p->nstats++;
	}
	p->stats[i].count += count;
	p->stats[i].queries += queries;
	p->stats[i].hits += hits;
	p->stats[i].tempfails += tempfails;
	if (last_hit > p->stats[i].last_hit)
		p->stats[i].last_hit = last_hit;
	pthread_mutex_unlock(&p->mu);
}

static void snap_unref(struct policy_snap *sn)
{
	if (sn != NULL && --sn->refs == 0)
		policy_snap_free(sn);
}

/* --- clients -------------------------------------------------------------- */

static size_t ip_hash(const uint8_t ip[16], size_t n)
{
	uint64_t h = 1469598103934665603ULL;
	int i;

	for (i = 0; i < 16; i++) {
		h ^= ip[i];
		h *= 1099511628211ULL;
	}
	return (size_t)(h % n);
}

static struct client_rec *client_get(struct policy *p, const uint8_t ip[16])
{
	size_t b = ip_hash(ip, CLIENT_BUCKETS);
	struct client_rec *c;

	for (c = p->clients[b]; c != NULL; c = c->next)
		if (memcmp(c->ip, ip, 16) == 0)
			return c;
	c = xcalloc(1, sizeof(*c));
	memcpy(c->ip, ip, 16);
	c->next = p->clients[b];
	p->clients[b] = c;
	return c;
}

/* Connections in the last minute: two 60 s buckets, the older one weighted. */
static int64_t client_rate(struct client_rec *c, int64_t now, int add)
{
	int64_t elapsed = now - c->win_start;

	if (elapsed >= 120000) {
		c->prev = 0;
		c->cur = 0;
		c->win_start = now;
		elapsed = 0;
	} else if (elapsed >= 60000) {
		c->prev = c->cur;
		c->cur = 0;
		c->win_start += 60000;
		elapsed -= 60000;
	}
	c->cur += add;
	return c->cur + c->prev * (60000 - elapsed) / 60000;
}

/* Unknown-recipient attempts within window_ms. */
static size_t harvest_count(struct client_rec *c, int64_t now, int64_t window_ms)
{
	while (c->rlen > 0 && c->ring[c->rhead] < now - window_ms) {
		c->rhead = (c->rhead + 1) % c->rcap;
		c->rlen--;
	}
	return c->rlen;
}

static void harvest_add(struct client_rec *c, int64_t now, int64_t window_ms, size_t keep)
{
	if (keep == 0)
		return;
	if (keep > HARVEST_RING_MAX)
		keep = HARVEST_RING_MAX;
	harvest_count(c, now, window_ms);
	if (c->rcap < keep) {
		/* Re-pack in order into a bigger ring. */
		int64_t *n = xcalloc(keep, sizeof(*n));
		size_t i;

		for (i = 0; i < c->rlen; i++)
			n[i] = c->ring[(c->rhead + i) % c->rcap];
		free(c->ring);
		c->ring = n;
		c->rcap = keep;
		c->rhead = 0;
	}
	if (c->rlen == c->rcap) {
		c->rhead = (c->rhead + 1) % c->rcap;
		c->rlen--;
	}
	c->ring[(c->rhead + c->rlen) % c->rcap] = now;
	c->rlen++;
	c->last_ms = now;
}

static void prune_cb(evutil_socket_t fd, short what, void *arg)
{
	struct policy *p = arg;
	int64_t now = time_now_ms();
	int64_t keep_ms = 120000;
	size_t b;

	(void)fd;
	(void)what;
	if (p->cur != NULL && p->cur->set.harvest_window_s * 1000 > keep_ms)
		keep_ms = p->cur->set.harvest_window_s * 1000;
	for (b = 0; b < CLIENT_BUCKETS; b++) {
		struct client_rec **pp = &p->clients[b];

		while (*pp != NULL) {
			struct client_rec *c = *pp;

			if (c->sessions == 0 && now - c->last_ms > keep_ms) {
				*pp = c->next;
				free(c->ring);
				free(c);
			} else {
				pp = &c->next;
			}
		}
	}
}

/* --- sessions ------------------------------------------------------------- */

static struct policy_sess *sess_lookup(struct policy *p, uint64_t sid)
{
	struct policy_sess *ps;

	for (ps = p->sess[sid % SESS_BUCKETS]; ps != NULL; ps = ps->hnext)
		if (ps->sid == sid)
			return ps;
	return NULL;
}

static struct policy_sess *sess_alloc(struct policy_snap *sn, uint64_t sid,
				      const struct sockaddr *client)
{
	struct policy_sess *ps = xcalloc(1, sizeof(*ps));

	ps->sid = sid;
	snprintf(ps->idstr, sizeof(ps->idstr), "%016llx", (unsigned long long)sid);
	ps->snap = sn;
	sn->refs++;
	if (client->sa_family == AF_INET6 &&
	    IN6_IS_ADDR_V4MAPPED(&((const struct sockaddr_in6 *)client)->sin6_addr)) {
		/* Treat a mapped client as the IPv4 client it is. */
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ps->sa;

		s4->sin_family = AF_INET;
		memcpy(&s4->sin_addr, &((const struct sockaddr_in6 *)client)->sin6_addr.s6_addr[12],
		       4);
	} else if (client->sa_family == AF_INET6) {
		memcpy(&ps->sa, client, sizeof(struct sockaddr_in6));
	} else {
		memcpy(&ps->sa, client, sizeof(struct sockaddr_in));
	}
	policy_sockaddr_ip((struct sockaddr *)&ps->sa, ps->ip);
	policy_ip_format(ps->ip, ps->addr, sizeof(ps->addr));
	ps->bl = xcalloc(sn->nsites + 1, sizeof(*ps->bl));
	return ps;
}

struct policy_sess *policy_sess_new(struct policy *p, uint64_t sid,
				    const struct sockaddr *client, const struct sockaddr *local)
{
	struct policy_sess *ps = sess_alloc(p->cur, sid, client);
	size_t b = sid % SESS_BUCKETS;
	int64_t now = time_now_ms();

	ps->p = p;
	if (local != NULL && policy_sockaddr_ip(local, ps->local_ip) == 0)
		ps->has_local = 1;
	ps->client = client_get(p, ps->ip);
	ps->client->sessions++;
	ps->client->last_ms = now;
	client_rate(ps->client, now, 1);
	ps->hnext = p->sess[b];
	p->sess[b] = ps;
	return ps;
}

struct policy_sess *policy_sess_test(struct policy_snap *sn, const char *ip)
{
	struct sockaddr_storage ss;
	uint8_t a[16];

	memset(&ss, 0, sizeof(ss));
	if (policy_ip_parse(ip, strlen(ip), a) < 0)
		return NULL;
	if (a[10] == 0xff && a[11] == 0xff && a[0] == 0) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		s4->sin_family = AF_INET;
		memcpy(&s4->sin_addr, a + 12, 4);
	} else {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		s6->sin6_family = AF_INET6;
		memcpy(&s6->sin6_addr, a, 16);
	}
	return sess_alloc(sn, 1, (struct sockaddr *)&ss);
}

void policy_sess_free(struct policy_sess *ps)
{
	if (ps == NULL)
		return;
	if (ps->p != NULL) {
		struct policy_sess **pp = &ps->p->sess[ps->sid % SESS_BUCKETS];

		while (*pp != NULL && *pp != ps)
			pp = &(*pp)->hnext;
		if (*pp == ps)
			*pp = ps->hnext;
		if (ps->client != NULL) {
			ps->client->sessions--;
			ps->client->last_ms = time_now_ms();
		}
	}
	if (ps->timer != NULL)
		event_free(ps->timer);
	snap_unref(ps->snap);
	free(ps->bl);
	free(ps);
}

const char *policy_client_name(const struct policy_sess *ps)
{
	return ps->name[0] ? ps->name : NULL;
}

size_t policy_data_headers(const struct policy_sess *ps, char *out, size_t outsz)
{
	size_t used = 0;
	int i;

	if (outsz == 0)
		return 0;
	out[0] = '\0';
	for (i = 0; i < ps->ntags; i++) {
		int n = snprintf(out + used, outsz - used, "X-Moat-Policy: %s\r\n", ps->tags[i]);

		if (n < 0 || (size_t)n >= outsz - used) {
			out[used] = '\0';
			break;
		}
		used += (size_t)n;
	}
	return used;
}

/* One asynchronous operation of ps finished; wake the caller when all have. */
static void op_done(struct policy_sess *ps)
{
	if (ps->npending > 0 && --ps->npending == 0 && ps->p != NULL && ps->p->done != NULL)
		ps->p->done(ps->sid, ps->p->done_arg);
}

static struct dns *sess_dns(struct policy_sess *ps)
{
	if (ps->p == NULL)
		return NULL;
	if (ps->p->dns == NULL && !ps->p->warned_no_dns) {
		log_warn(NULL, "policy", "no resolver: DNS-based checks are skipped");
		ps->p->warned_no_dns = 1;
	}
	return ps->p->dns;
}

static void dns_cb_fn(const struct dns_result *r, uint64_t cookie, void *ctx);

static void query(struct policy_sess *ps, const char *name, enum dns_type type, int kind,
		  int idx)
{
	struct dnsq *q = xcalloc(1, sizeof(*q));

	q->p = ps->p;
	q->kind = kind;
	q->idx = idx;
	ps->npending++;
	dns_query(ps->p->dns, name, type, dns_cb_fn, ps->sid, q);
}

static int addr_equal(const struct policy_sess *ps, const struct dns_result *r, size_t i)
{
	if (r->type == DNS_A)
		return ps->ip[10] == 0xff && memcmp(ps->ip + 12, &r->u.a[i], 4) == 0;
	return memcmp(ps->ip, &r->u.aaaa[i], 16) == 0;
}

static void on_ptr(struct policy_sess *ps, const struct dns_result *r)
{
	size_t i;
	int v4 = ps->sa.ss_family == AF_INET;

	ps->ptr_status = r->status;
	ps->ptr_known = r->status != DNS_TEMPFAIL && r->status != DNS_CANCELLED;
	if (r->status == DNS_TEMPFAIL)
		log_info(ps->idstr, "policy", "rdns tempfail client=[%s] (passing)", ps->addr);
	if (r->status != DNS_OK)
		return;
	for (i = 0; i < r->count && ps->nptr < MAX_PTR_NAMES; i++) {
		char *n = ps->ptr_names[ps->nptr];

		strlcpy_s(n, r->u.ptr[i], DNS_NAME_MAX + 1);
		if (n[0] != '\0' && n[strlen(n) - 1] == '.')
			n[strlen(n) - 1] = '\0';
		if (!policy_domain_ok(n, strlen(n)))
			continue;
		query(ps, n, v4 ? DNS_A : DNS_AAAA, Q_FWD, ps->nptr);
		ps->nptr++;
	}
}

static void on_fwd(struct policy_sess *ps, const struct dns_result *r, int idx)
{
	size_t i;

	if (r->status != DNS_OK || ps->fcrdns)
		return;
	for (i = 0; i < r->count; i++) {
		if (addr_equal(ps, r, i)) {
			ps->fcrdns = 1;
			strlcpy_s(ps->name, ps->ptr_names[idx], sizeof(ps->name));
			return;
		}
	}
}

static void on_bl(struct policy_sess *ps, const struct dns_result *r, int idx)
{
	const struct policy_dnsbl_site *site;
	size_t i;

	if ((size_t)idx >= ps->snap->nsites)
		return;
	site = &ps->snap->sites[idx];
	if (r->status == DNS_TEMPFAIL) {
		ps->bl[idx].tempfail = 1;
		log_warn(ps->idstr, "policy", "DNSBL TEMPFAIL zone=%s client=[%s] (passing)",
			 site->zone, ps->addr);
		stat_add(ps->p, site->zone, 1, 0, 0, 0, 1, 0);
		return;
	}
	if (r->status != DNS_OK || r->type != DNS_A)
		return;
	for (i = 0; i < r->count; i++) {
		uint32_t a = ntohl(r->u.a[i].s_addr);

		if (policy_codes_match(&site->codes, a)) {
			ps->bl[idx].hit = 1;
			ps->bl[idx].code = a;
			stat_add(ps->p, site->zone, 1, 0, 0, 1, 0, time_now_ms());
			return;
		}
	}
}

static void on_helo(struct policy_sess *ps, const struct dns_result *r)
{
	if (r->status == DNS_OK) {
		ps->helo_found = 1;
	} else if (r->status == DNS_TEMPFAIL) {
		ps->helo_tempfail = 1;
	} else if (r->type == DNS_A && !ps->helo_try_aaaa) {
		/* No A: try AAAA before calling the name unresolvable. */
		ps->helo_try_aaaa = 1;
		query(ps, ps->helo, DNS_AAAA, Q_HELO, 0);
	}
}

static void dns_cb_fn(const struct dns_result *r, uint64_t cookie, void *ctx)
{
	struct dnsq *q = ctx;
	struct policy_sess *ps = NULL;

	if (r->status != DNS_CANCELLED && q->p != NULL)
		ps = sess_lookup(q->p, cookie);
	if (ps == NULL) {
		/* The session is gone (or the resolver is shutting down). */
		free(q);
		return;
	}
	switch (q->kind) {
	case Q_PTR:
		on_ptr(ps, r);
		break;
	case Q_FWD:
		on_fwd(ps, r, q->idx);
		break;
	case Q_BL:
		on_bl(ps, r, q->idx);
		break;
	case Q_HELO:
		on_helo(ps, r);
		break;
	}
	free(q);
	op_done(ps);
}

static void tarpit_cb(evutil_socket_t fd, short what, void *arg)
{
	struct policy_sess *ps = arg;

	(void)fd;
	(void)what;
	ps->tarpit = A_DONE;
	op_done(ps);
}

/* --- checks --------------------------------------------------------------- */

struct step_args {
	const char *helo;
	size_t helolen;
	const char *addr;      /* sender or recipient */
	size_t nrcpts;
	int authenticated;
};

typedef enum policy_action (*check_fn)(struct policy_sess *ps, const struct policy_snap *sn,
				       const struct step_args *a, struct policy_verdict *v);

struct check {
	const char *name;
	check_fn fn;
};

/* Allow and deny matched: which wins is the list pair's precedence setting. */
static enum policy_action allow_deny(const struct policy_ref *allow,
				     const struct policy_ref *deny, int allow_wins)
{
	if (deny != NULL && (allow == NULL || !allow_wins))
		return POLICY_REFUSE;
	return allow != NULL ? POLICY_ACCEPT : POLICY_CONTINUE;
}

static enum policy_action check_conn_ip(struct policy_sess *ps, const struct policy_snap *sn,
					const struct step_args *a, struct policy_verdict *v)
{
	const struct policy_ref *allow = policy_list_match_ip(&sn->lists[PL_CONN_ALLOW], ps->ip);
	const struct policy_ref *deny = policy_list_match_ip(&sn->lists[PL_CONN_DENY], ps->ip);

	(void)a;
	ps->relay_client = policy_list_match_ip(&sn->lists[PL_RELAY_NET], ps->ip) != NULL;
	ps->relay_exempt = policy_list_match_ip(&sn->lists[PL_RELAY_EXEMPT], ps->ip) != NULL;
	switch (allow_deny(allow, deny, sn->set.conn_allow_wins)) {
	case POLICY_REFUSE:
		verdict(v, POLICY_REFUSE, "554 5.7.1", "conn_deny", deny, "");
		vtext(ps, v, sn->set.conn_deny_text, NULL);
		v->close = 1;
		return POLICY_REFUSE;
	case POLICY_ACCEPT:
		ps->trusted = 1;
		return POLICY_CONTINUE;
	default:
		return POLICY_CONTINUE;
	}
}

static enum policy_action check_limits(struct policy_sess *ps, const struct policy_snap *sn,
				       const struct step_args *a, struct policy_verdict *v)
{
	const struct policy_settings *set = &sn->set;
	int64_t reserve;
	int64_t rate;

	(void)a;
	if (ps->p == NULL || ps->trusted)
		return POLICY_CONTINUE;
	/* The reserve only matters when someone is allow-listed to use it. */
	reserve = sn->lists[PL_CONN_ALLOW].count > 0 ? set->trusted_reserve : 0;
	if (reserve >= ps->p->max_sessions)
		reserve = ps->p->max_sessions - 1;
	if (reserve > 0 && ps->nsessions > ps->p->max_sessions - reserve) {
		log_warn(ps->idstr, "policy", "SESSION RESERVE LIMIT from [%s]", ps->addr);
		verdict(v, POLICY_DEFER, "421 4.7.0", "session_reserve", NULL,
			"Too many connections, try again later");
		v->close = 1;
		return POLICY_DEFER;
	}
	if (set->client_max_sessions > 0 && ps->client->sessions > set->client_max_sessions) {
		log_warn(ps->idstr, "policy", "CLIENT SESSION LIMIT from [%s]", ps->addr);
		verdict(v, POLICY_DEFER, "421 4.7.0", "client_max_sessions", NULL,
			"Too many connections from your address, try again later");
		v->close = 1;
		return POLICY_DEFER;
	}
	rate = client_rate(ps->client, time_now_ms(), 0);
	if (set->client_max_rate > 0 && rate > set->client_max_rate) {
		log_warn(ps->idstr, "policy", "CLIENT RATE LIMIT from [%s] rate=%lld/min",
			 ps->addr, (long long)rate);
		verdict(v, POLICY_DEFER, "421 4.7.0", "client_max_rate", NULL,
			"Too many connections from your address, try again later");
		v->close = 1;
		return POLICY_DEFER;
	}
	return POLICY_CONTINUE;
}

static int need_rdns(const struct policy_snap *sn)
{
	return sn->set.reverse_lookup || sn->set.require_ptr || sn->set.require_fcrdns ||
	       sn->lists[PL_CONN_ALLOW].has_names || sn->lists[PL_CONN_DENY].has_names ||
	       sn->lists[PL_RELAY_NET].has_names || sn->lists[PL_RELAY_EXEMPT].has_names ||
	       sn->set.relay_enforce == POLICY_RELAY_EXTERNAL;
}

static enum policy_action check_rdns(struct policy_sess *ps, const struct policy_snap *sn,
				     const struct step_args *a, struct policy_verdict *v)
{
	(void)a;
	(void)v;
	if (ps->rdns == A_DONE)
		return POLICY_CONTINUE;
	if (ps->rdns == A_WAIT) {
		ps->rdns = A_DONE;
		log_debug(ps->idstr, "policy", "rdns client=[%s] ptr=%s name=%s fcrdns=%d",
			  ps->addr, ps->nptr ? ps->ptr_names[0] : "-",
			  ps->name[0] ? ps->name : "-", ps->fcrdns);
		return POLICY_CONTINUE;
	}
	if (!need_rdns(sn) || sess_dns(ps) == NULL) {
		ps->rdns = A_DONE;
		return POLICY_CONTINUE;
	}
	ps->rdns = A_WAIT;
	{
		struct dnsq *q = xcalloc(1, sizeof(*q));

		q->p = ps->p;
		q->kind = Q_PTR;
		ps->npending++;
		dns_query_ptr(ps->p->dns, (struct sockaddr *)&ps->sa, dns_cb_fn, ps->sid, q);
	}
	return POLICY_PENDING;
}

static enum policy_action check_conn_name(struct policy_sess *ps, const struct policy_snap *sn,
					  const struct step_args *a, struct policy_verdict *v)
{
	const struct policy_ref *allow;
	const struct policy_ref *deny;

	(void)a;
	if (!ps->fcrdns)
		return POLICY_CONTINUE;
	if (!ps->relay_client)
		ps->relay_client = policy_list_match_host(&sn->lists[PL_RELAY_NET], ps->name) != NULL;
	if (!ps->relay_exempt)
		ps->relay_exempt =
			policy_list_match_host(&sn->lists[PL_RELAY_EXEMPT], ps->name) != NULL;
	if (ps->trusted)
		return POLICY_CONTINUE;
	allow = policy_list_match_host(&sn->lists[PL_CONN_ALLOW], ps->name);
	deny = policy_list_match_host(&sn->lists[PL_CONN_DENY], ps->name);
	switch (allow_deny(allow, deny, sn->set.conn_allow_wins)) {
	case POLICY_REFUSE:
		verdict(v, POLICY_REFUSE, "554 5.7.1", "conn_deny", deny, "");
		vtext(ps, v, sn->set.conn_deny_text, NULL);
		v->close = 1;
		return POLICY_REFUSE;
	case POLICY_ACCEPT:
		ps->trusted = 1;
		return POLICY_CONTINUE;
	default:
		return POLICY_CONTINUE;
	}
}

static enum policy_action check_rdns_require(struct policy_sess *ps,
					     const struct policy_snap *sn,
					     const struct step_args *a, struct policy_verdict *v)
{
	(void)a;
	if (ps->trusted || ps->p == NULL || ps->p->dns == NULL)
		return POLICY_CONTINUE;
	/* A temporary failure proves nothing: pass (fail open). */
	if (sn->set.require_ptr && ps->ptr_known && ps->nptr == 0) {
		verdict(v, POLICY_REFUSE, "550 5.7.25", "require_ptr", NULL, "");
		vtext(ps, v, sn->set.require_ptr_text, NULL);
		v->close = 1;
		return POLICY_REFUSE;
	}
	if (sn->set.require_fcrdns && !ps->fcrdns &&
	    (ps->ptr_known || ps->nptr > 0)) {
		verdict(v, POLICY_REFUSE, "550 5.7.25", "require_fcrdns", NULL, "");
		vtext(ps, v, sn->set.require_fcrdns_text, NULL);
		v->close = 1;
		return POLICY_REFUSE;
	}
	return POLICY_CONTINUE;
}

static enum policy_action dnsbl_verdict(struct policy_sess *ps, const struct policy_snap *sn,
					struct policy_verdict *v)
{
	const struct policy_dnsbl_site *worst = NULL;
	char code[INET_ADDRSTRLEN];
	int score = 0;
	size_t i;

	for (i = 0; i < sn->nsites; i++) {
		if (ps->bl[i].hit && sn->sites[i].allow) {
			log_info(ps->idstr, "policy", "dnswl hit zone=%s client=[%s]: exempt",
				 sn->sites[i].zone, ps->addr);
			return POLICY_CONTINUE;
		}
	}
	for (i = 0; i < sn->nsites; i++) {
		const struct policy_dnsbl_site *s = &sn->sites[i];
		struct in_addr ca;

		if (!ps->bl[i].hit || s->allow)
			continue;
		ca.s_addr = htonl(ps->bl[i].code);
		inet_ntop(AF_INET, &ca, code, sizeof(code));
		log_info(ps->idstr, "policy", "dnsbl hit zone=%s client=[%s] code=%s action=%s",
			 s->zone, ps->addr, code, s->action == POLICY_DNSBL_REFUSE ? "refuse"
			 : s->action == POLICY_DNSBL_TAG ? "tag" : "log");
		if (s->action == POLICY_DNSBL_TAG && ps->ntags < MAX_TAGS) {
			snprintf(ps->tags[ps->ntags++], sizeof(ps->tags[0]),
				 "dnsbl=%s client=%s code=%s", s->zone, ps->addr, code);
			stat_add(ps->p, "dnsbl_tag", 0, 1, 0, 0, 0, 0);
		} else if (s->action == POLICY_DNSBL_REFUSE) {
			score += s->weight;
			if (worst == NULL || s->weight > worst->weight)
				worst = s;
		}
	}
	if (worst == NULL || score < sn->set.dnsbl_threshold)
		return POLICY_CONTINUE;
	verdict(v, POLICY_REFUSE, "554 5.7.1", "dnsbl", NULL, "");
	snprintf(v->entry, sizeof(v->entry), "dnsbl_site %lld %s score=%d",
		 (long long)worst->id, worst->zone, score);
	vtext(ps, v, worst->message[0] ? worst->message : sn->set.dnsbl_default_text,
	      worst->zone);
	v->close = 1;
	return POLICY_REFUSE;
}

static enum policy_action check_dnsbl(struct policy_sess *ps, const struct policy_snap *sn,
				      const struct step_args *a, struct policy_verdict *v)
{
	char rev[80];
	char name[DNS_NAME_MAX + 1];
	size_t i;
	int n = 0;

	(void)a;
	if (ps->dnsbl == A_WAIT) {
		ps->dnsbl = A_DONE;
		return dnsbl_verdict(ps, sn, v);
	}
	if (ps->dnsbl == A_DONE || ps->trusted || sn->nsites == 0)
		return POLICY_CONTINUE;
	if (sess_dns(ps) == NULL ||
	    dns_reverse_name((struct sockaddr *)&ps->sa, rev, sizeof(rev)) < 0) {
		ps->dnsbl = A_DONE;
		return POLICY_CONTINUE;
	}
	/* Every enabled site at once; the verdict waits for all of them. */
	for (i = 0; i < sn->nsites; i++) {
		if (!sn->sites[i].enabled)
			continue;
		if (snprintf(name, sizeof(name), "%s.%s", rev, sn->sites[i].zone) >=
		    (int)sizeof(name))
			continue;
		stat_add(ps->p, sn->sites[i].zone, 1, 0, 1, 0, 0, 0);
		query(ps, name, DNS_A, Q_BL, (int)i);
		n++;
	}
	ps->dnsbl = n > 0 ? A_WAIT : A_DONE;
	return n > 0 ? POLICY_PENDING : POLICY_CONTINUE;
}

static const struct check connect_checks[] = {
	{ "conn_ip", check_conn_ip },
	{ "limits", check_limits },
	{ "rdns", check_rdns },
	{ "conn_name", check_conn_name },
	{ "rdns_require", check_rdns_require },
	{ "dnsbl", check_dnsbl },
};

/* A HELO argument that is a domain or an address literal. */
static int helo_syntax_ok(const char *h, size_t len)
{
	uint8_t ip[16];

	if (len >= 2 && h[0] == '[' && h[len - 1] == ']') {
		if (len > 7 && strncasecmp(h + 1, "IPv6:", 5) == 0)
			return policy_ip_parse(h + 6, len - 7, ip) == 0 &&
			       memchr(h + 6, ':', len - 7) != NULL;
		return policy_ip_parse(h + 1, len - 2, ip) == 0 &&
		       memchr(h + 1, ':', len - 2) == NULL;
	}
	if (policy_ip_parse(h, len, ip) == 0)
		return 1; /* bare address: syntax-wise tolerated; its own check below */
	return policy_domain_ok(h, len);
}

static enum policy_action check_helo(struct policy_sess *ps, const struct policy_snap *sn,
				     const struct step_args *a, struct policy_verdict *v)
{
	const struct policy_settings *set = &sn->set;
	const char *h = a->helo;
	size_t len = a->helolen;
	uint8_t ip[16];

	if (ps->trusted)
		return POLICY_CONTINUE;
	if (set->helo_required_syntax && !helo_syntax_ok(h, len)) {
		verdict(v, POLICY_REFUSE, "501 5.5.2", "helo_syntax", NULL, "");
		vtext(ps, v, set->helo_text, NULL);
		snprintf(v->text + strlen(v->text), sizeof(v->text) - strlen(v->text),
			 ": invalid name");
		return POLICY_REFUSE;
	}
	if (set->helo_reject_bare_ip && policy_ip_parse(h, len, ip) == 0) {
		verdict(v, POLICY_REFUSE, "550 5.7.1", "helo_bare_ip", NULL, "");
		vtext(ps, v, set->helo_text, NULL);
		snprintf(v->text + strlen(v->text), sizeof(v->text) - strlen(v->text),
			 ": address literal needs brackets");
		return POLICY_REFUSE;
	}
	if (set->helo_reject_own) {
		int own = ps->p != NULL && strlen(ps->p->hostname) == len &&
			  strncasecmp(ps->p->hostname, h, len) == 0;

		if (!own && ps->has_local && len >= 2 && h[0] == '[' && h[len - 1] == ']') {
			size_t off = (len > 7 && strncasecmp(h + 1, "IPv6:", 5) == 0) ? 6 : 1;

			own = policy_ip_parse(h + off, len - off - 1, ip) == 0 &&
			      memcmp(ip, ps->local_ip, 16) == 0;
		}
		if (!own && ps->has_local && policy_ip_parse(h, len, ip) == 0)
			own = memcmp(ip, ps->local_ip, 16) == 0;
		if (own) {
			verdict(v, POLICY_REFUSE, "550 5.7.1", "helo_own", NULL, "");
			vtext(ps, v, set->helo_text, NULL);
			snprintf(v->text + strlen(v->text), sizeof(v->text) - strlen(v->text),
				 ": you are not me");
			return POLICY_REFUSE;
		}
	}
	return POLICY_CONTINUE;
}

static enum policy_action check_helo_dns(struct policy_sess *ps, const struct policy_snap *sn,
					 const struct step_args *a, struct policy_verdict *v)
{
	uint8_t ip[16];

	if (ps->helo_dns == A_WAIT) {
		ps->helo_dns = A_NONE; /* a later HELO starts over */
		if (ps->helo_found)
			return POLICY_CONTINUE;
		if (ps->helo_tempfail) {
			log_info(ps->idstr, "policy", "helo tempfail name=%s (passing)", ps->helo);
			return POLICY_CONTINUE;
		}
		verdict(v, POLICY_REFUSE, "550 5.7.1", "helo_resolve", NULL, "");
		vtext(ps, v, sn->set.helo_text, NULL);
		snprintf(v->text + strlen(v->text), sizeof(v->text) - strlen(v->text),
			 ": host not found");
		return POLICY_REFUSE;
	}
	if (ps->trusted || !sn->set.helo_require_resolve || a->helolen == 0 ||
	    a->helo[0] == '[' || policy_ip_parse(a->helo, a->helolen, ip) == 0 ||
	    a->helolen >= sizeof(ps->helo) || !policy_domain_ok(a->helo, a->helolen) ||
	    sess_dns(ps) == NULL)
		return POLICY_CONTINUE;
	memcpy(ps->helo, a->helo, a->helolen);
	ps->helo[a->helolen] = '\0';
	ps->helo_found = 0;
	ps->helo_tempfail = 0;
	ps->helo_try_aaaa = 0;
	ps->helo_dns = A_WAIT;
	query(ps, ps->helo, DNS_A, Q_HELO, 0);
	return POLICY_PENDING;
}

static const struct check helo_checks[] = {
	{ "helo", check_helo },
	{ "helo_resolve", check_helo_dns },
};

static enum policy_action check_sender(struct policy_sess *ps, const struct policy_snap *sn,
				       const struct step_args *a, struct policy_verdict *v)
{
	const struct policy_ref *allow = policy_list_match_mail(&sn->lists[PL_SENDER_ALLOW],
								a->addr);
	const struct policy_ref *deny = policy_list_match_mail(&sn->lists[PL_SENDER_DENY],
							       a->addr);

	switch (allow_deny(allow, deny, sn->set.sender_allow_wins)) {
	case POLICY_REFUSE:
		verdict(v, POLICY_REFUSE, "550 5.7.1", "sender_deny", deny, "");
		vtext(ps, v, sn->set.sender_deny_text, NULL);
		return POLICY_REFUSE;
	case POLICY_ACCEPT:
		return POLICY_ACCEPT;
	default:
		return POLICY_CONTINUE;
	}
}

static const struct check mail_checks[] = {
	{ "sender", check_sender },
};

static enum policy_action check_harvest(struct policy_sess *ps, const struct policy_snap *sn,
					const struct step_args *a, struct policy_verdict *v)
{
	const struct policy_settings *set = &sn->set;

	(void)a;
	if (ps->tarpit == A_DONE) {
		ps->tarpit = A_NONE;
		goto defer;
	}
	if (ps->p == NULL || ps->trusted || set->harvest_threshold == 0 ||
	    harvest_count(ps->client, time_now_ms(), set->harvest_window_s * 1000) <
	    (size_t)set->harvest_threshold)
		return POLICY_CONTINUE;
	if (set->harvest_tarpit_ms > 0) {
		struct timeval tv = { (time_t)(set->harvest_tarpit_ms / 1000),
				      (suseconds_t)((set->harvest_tarpit_ms % 1000) * 1000) };

		if (ps->timer == NULL)
			ps->timer = evtimer_new(ps->p->base, tarpit_cb, ps);
		ps->tarpit = A_WAIT;
		ps->npending++;
		evtimer_add(ps->timer, &tv);
		return POLICY_PENDING;
	}
defer:
	log_warn(ps->idstr, "policy", "HARVEST LIMIT from [%s]", ps->addr);
	verdict(v, POLICY_DEFER, "450 4.7.1", "harvest", NULL, "");
	vtext(ps, v, set->harvest_text, NULL);
	return POLICY_DEFER;
}

static enum policy_action check_max_rcpt(struct policy_sess *ps, const struct policy_snap *sn,
					 const struct step_args *a, struct policy_verdict *v)
{
	(void)ps;
	if (sn->set.max_recipients > 0 && a->nrcpts >= (size_t)sn->set.max_recipients) {
		verdict(v, POLICY_DEFER, "452 4.5.3", "max_recipients", NULL,
			"Error: too many recipients");
		return POLICY_DEFER;
	}
	return POLICY_CONTINUE;
}

static enum policy_action check_rcpt_lists(struct policy_sess *ps, const struct policy_snap *sn,
					   const struct step_args *a, struct policy_verdict *v)
{
	const struct policy_ref *allow = policy_list_match_mail(&sn->lists[PL_RCPT_ALLOW],
								a->addr);
	const struct policy_ref *deny = policy_list_match_mail(&sn->lists[PL_RCPT_DENY], a->addr);

	if (allow_deny(allow, deny, sn->set.rcpt_allow_wins) == POLICY_REFUSE) {
		verdict(v, POLICY_REFUSE, "550 5.7.1", "rcpt_deny", deny, "");
		vtext(ps, v, sn->set.rcpt_deny_text, NULL);
		return POLICY_REFUSE;
	}
	/* An allowed recipient still goes through relay and directory checks. */
	return POLICY_CONTINUE;
}

static const char *domain_of(const char *addr)
{
	const char *at = strrchr(addr, '@');

	return at ? at + 1 : "";
}

static int is_local(const struct policy_snap *sn, const char *addr)
{
	return policy_list_match_domain(&sn->lists[PL_LOCAL_DOMAIN], domain_of(addr)) != NULL;
}

int policy_sess_local_domain(const struct policy_sess *ps, const char *domain)
{
	return policy_list_match_domain(&ps->snap->lists[PL_LOCAL_DOMAIN], domain) != NULL;
}

int policy_local_domain(const struct policy *p, const char *domain)
{
	return p->cur != NULL &&
	       policy_list_match_domain(&p->cur->lists[PL_LOCAL_DOMAIN], domain) != NULL;
}

/* name, or a parent domain of it, is a local domain. */
static int within_local(const struct policy_snap *sn, const char *name)
{
	const char *p = name;

	while (p != NULL && *p != '\0') {
		if (policy_list_match_domain(&sn->lists[PL_LOCAL_DOMAIN], p) != NULL)
			return 1;
		p = strchr(p, '.');
		if (p != NULL)
			p++;
	}
	return 0;
}

static enum policy_action check_relay(struct policy_sess *ps, const struct policy_snap *sn,
				      const struct step_args *a, struct policy_verdict *v)
{
	const struct policy_settings *set = &sn->set;
	const char *dom = domain_of(a->addr);
	const struct policy_ref *r;
	int enforce;

	if (is_local(sn, a->addr))
		return POLICY_CONTINUE;
	switch (set->relay_enforce) {
	case POLICY_RELAY_NONE:
		enforce = 0;
		break;
	case POLICY_RELAY_EXTERNAL:
		/* Hosts whose confirmed name is inside our own domains are internal. */
		enforce = !(ps->fcrdns && within_local(sn, ps->name));
		break;
	default:
		enforce = 1;
	}
	if (!enforce || ps->relay_exempt)
		return POLICY_CONTINUE;
	r = policy_list_match_domain(&sn->lists[PL_RELAY_DEST_DENY], dom);
	if (r != NULL) {
		verdict(v, POLICY_REFUSE, "554 5.7.1", "relay_dest_deny", r, "");
		vtext(ps, v, set->relay_text, NULL);
		return POLICY_REFUSE;
	}
	if (!(ps->relay_client || (a->authenticated && set->relay_auth))) {
		verdict(v, POLICY_REFUSE, "554 5.7.1", "relay", NULL, "");
		vtext(ps, v, set->relay_text, NULL);
		return POLICY_REFUSE;
	}
	if (sn->lists[PL_RELAY_DEST_ALLOW].count > 0 &&
	    policy_list_match_domain(&sn->lists[PL_RELAY_DEST_ALLOW], dom) == NULL) {
		verdict(v, POLICY_REFUSE, "554 5.7.1", "relay_dest_allow", NULL, "");
		vtext(ps, v, set->relay_text, NULL);
		return POLICY_REFUSE;
	}
	return POLICY_CONTINUE;
}

/* See policy.h; sn is the session's snapshot. */
static int postmaster_of(const struct policy_snap *sn, char *out, size_t outsz)
{
	int n;

	if (sn->set.postmaster_address[0] != '\0')
		n = snprintf(out, outsz, "%s", sn->set.postmaster_address);
	else if (sn->first_local[0] != '\0')
		n = snprintf(out, outsz, "postmaster@%s", sn->first_local);
	else
		return -1;
	return n > 0 && (size_t)n < outsz ? 0 : -1;
}

int policy_sess_postmaster(const struct policy_sess *ps, char *out, size_t outsz)
{
	return postmaster_of(ps->snap, out, outsz);
}

/*
 * Source routing hidden in the local part of one of our own domains'
 * recipients: user%other@ours, other!user@ours, "user@other"@ours.  A
 * downstream server that honours any of them makes us an open relay
 * (Postfix allow_untrusted_routing); clients we trust may use them.
 */
static enum policy_action check_routing(struct policy_sess *ps, const struct policy_snap *sn,
					const struct step_args *a, struct policy_verdict *v)
{
	const char *at = strrchr(a->addr, '@');

	if (sn->set.allow_untrusted_routing || ps->trusted || ps->relay_client ||
	    ps->relay_exempt || a->authenticated || at == NULL || !is_local(sn, a->addr))
		return POLICY_CONTINUE;
	if (memchr(a->addr, '%', (size_t)(at - a->addr)) == NULL &&
	    memchr(a->addr, '!', (size_t)(at - a->addr)) == NULL &&
	    memchr(a->addr, '@', (size_t)(at - a->addr)) == NULL)
		return POLICY_CONTINUE;
	log_warn(ps->idstr, "policy", "ROUTING IN LOCAL PART from [%s]", ps->addr);
	verdict(v, POLICY_REFUSE, "550 5.7.1", "routing", NULL,
		"Recipient address rejected: %, ! or @ in the local part is not accepted");
	return POLICY_REFUSE;
}

static enum policy_action check_directory(struct policy_sess *ps, const struct policy_snap *sn,
					  const struct step_args *a, struct policy_verdict *v)
{
	const struct policy_settings *set = &sn->set;
	const struct policy_ref *r;
	char pm[400];

	if (!set->recipient_verify || !is_local(sn, a->addr))
		return POLICY_CONTINUE;
	/* RFC 5321 4.5.1: the postmaster is always there, listed or not. */
	if (postmaster_of(sn, pm, sizeof(pm)) == 0 && strcasecmp(pm, a->addr) == 0)
		return POLICY_CONTINUE;
	r = policy_strset_get(&sn->dir, a->addr, strlen(a->addr));
	if (r == NULL) {
		if (ps->p != NULL && set->harvest_threshold > 0)
			harvest_add(ps->client, time_now_ms(), set->harvest_window_s * 1000,
				    (size_t)set->harvest_threshold);
		verdict(v, POLICY_REFUSE, "550 5.1.1", "unknown_recipient", NULL, "");
		vtext(ps, v, set->unknown_rcpt_text, NULL);
		return POLICY_REFUSE;
	}
	if (r->id == POLICY_DIR_GROUP && !a->authenticated && !set->group_mail_external) {
		verdict(v, POLICY_REFUSE, "550 5.7.1", "group_mail", r, "");
		vtext(ps, v, set->group_text, NULL);
		return POLICY_REFUSE;
	}
	return POLICY_CONTINUE;
}

static const struct check rcpt_checks[] = {
	{ "harvest", check_harvest },
	{ "max_recipients", check_max_rcpt },
	{ "rcpt_lists", check_rcpt_lists },
	{ "routing", check_routing },
	{ "relay", check_relay },
	{ "directory", check_directory },
};

/* --- the stage runner ----------------------------------------------------- */

static enum policy_action run_stage(struct policy_sess *ps, enum step step,
				    const struct check *checks, size_t n,
				    const struct step_args *a, struct policy_verdict *v)
{
	enum policy_action r = POLICY_CONTINUE;

	memset(v, 0, sizeof(*v));
	if (ps->npending > 0) {
		v->action = POLICY_PENDING;
		return POLICY_PENDING; /* called before done(): keep waiting */
	}
	if (ps->step != step) {
		ps->step = step;
		ps->pos = 0;
	}
	for (; ps->pos < n; ps->pos++) {
		r = checks[ps->pos].fn(ps, ps->snap, a, v);
		if (r == POLICY_PENDING) {
			v->action = POLICY_PENDING;
			return r;
		}
		if (r != POLICY_CONTINUE)
			break;
	}
	ps->step = STEP_NONE;
	ps->pos = 0;
	if (r == POLICY_REFUSE || r == POLICY_DEFER) {
		stat_add(ps->p, v->check, 0, 1, 0, 0, 0, 0);
		return r;
	}
	memset(v, 0, sizeof(*v));
	v->action = POLICY_CONTINUE;
	return POLICY_CONTINUE;
}

enum policy_action policy_connect(struct policy_sess *ps, int nsessions,
				  struct policy_verdict *v)
{
	struct step_args a;

	memset(&a, 0, sizeof(a));
	ps->nsessions = nsessions;
	return run_stage(ps, STEP_CONNECT, connect_checks, ARRAY_LEN(connect_checks), &a, v);
}

enum policy_action policy_helo(struct policy_sess *ps, const char *helo, size_t len,
			       struct policy_verdict *v)
{
	struct step_args a;

	memset(&a, 0, sizeof(a));
	a.helo = helo;
	a.helolen = len;
	return run_stage(ps, STEP_HELO, helo_checks, ARRAY_LEN(helo_checks), &a, v);
}

enum policy_action policy_mail(struct policy_sess *ps, const char *sender,
			       struct policy_verdict *v)
{
	struct step_args a;

	memset(&a, 0, sizeof(a));
	a.addr = sender;
	return run_stage(ps, STEP_MAIL, mail_checks, ARRAY_LEN(mail_checks), &a, v);
}

enum policy_action policy_rcpt(struct policy_sess *ps, const char *rcpt, size_t nrcpts,
			       int authenticated, struct policy_verdict *v)
{
	struct step_args a;
	char lower[600];
	size_t i;

	for (i = 0; rcpt[i] != '\0' && i + 1 < sizeof(lower); i++)
		lower[i] = (char)((rcpt[i] >= 'A' && rcpt[i] <= 'Z') ? rcpt[i] + 32 : rcpt[i]);
	lower[i] = '\0';
	memset(&a, 0, sizeof(a));
	a.addr = lower;
	a.nrcpts = nrcpts;
	a.authenticated = authenticated;
	return run_stage(ps, STEP_RCPT, rcpt_checks, ARRAY_LEN(rcpt_checks), &a, v);
}

/* --- the engine ----------------------------------------------------------- */

static void flush_stats(struct policy *p, struct store *st)
{
	struct stat_delta *d;
	size_t n, i;
	int64_t day = today();

	pthread_mutex_lock(&p->mu);
	d = p->stats;
	n = p->nstats;
	p->stats = NULL;
	p->nstats = 0;
	p->stats_cap = 0;
	pthread_mutex_unlock(&p->mu);
	if (n == 0)
		return;
	if (store_begin(st) < 0) {
		log_error(NULL, "policy", "statistics lost: %s", store_policy_errmsg(st));
		free(d);
		return;
	}
	for (i = 0; i < n; i++) {
		int rc = d[i].zone
			? store_policy_dnsbl_stat_add(st, d[i].name, day, d[i].queries, d[i].hits,
						      d[i].tempfails, d[i].last_hit)
			: store_policy_stat_add(st, d[i].name, day, d[i].count);

		if (rc < 0)
			log_error(NULL, "policy", "statistics: %s", store_policy_errmsg(st));
	}
	if (store_commit(st) < 0) {
		log_error(NULL, "policy", "statistics lost: %s", store_policy_errmsg(st));
		store_rollback(st);
	}
	free(d);
}

static void *watcher_main(void *arg)
{
	struct policy *p = arg;
	char err[512];
	struct store *st = store_open(p->db_path, 0, err, sizeof(err));
	int stop = 0;

	if (st == NULL)
		log_error(NULL, "policy", "watcher: %s; policy changes need a restart", err);
	while (!stop) {
		struct timespec ts;
		int64_t gen;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += POLL_MS * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_mutex_lock(&p->mu);
		if (!p->stop)
			pthread_cond_timedwait(&p->cv, &p->mu, &ts);
		stop = p->stop;
		pthread_mutex_unlock(&p->mu);
		if (st == NULL)
			continue;
		if (!stop && store_policy_generation(st, &gen) == 0 && gen != p->last_gen) {
			struct policy_snap *sn = policy_snap_load(p->db_path, err, sizeof(err));

			if (sn == NULL) {
				log_error(NULL, "policy", "reload failed: %s", err);
			} else {
				struct policy_snap *old;

				p->last_gen = sn->generation;
				pthread_mutex_lock(&p->mu);
				old = p->pending;
				p->pending = sn;
				pthread_mutex_unlock(&p->mu);
				policy_snap_free(old); /* never handed to the loop */
				event_active(p->swap_ev, EV_READ, 0);
			}
		}
		flush_stats(p, st);
	}
	store_close(st);
	return NULL;
}

static void swap_cb(evutil_socket_t fd, short what, void *arg)
{
	struct policy *p = arg;
	struct policy_snap *sn;

	(void)fd;
	(void)what;
	pthread_mutex_lock(&p->mu);
	sn = p->pending;
	p->pending = NULL;
	pthread_mutex_unlock(&p->mu);
	if (sn == NULL)
		return;
	log_info(NULL, "policy", "loaded generation=%lld entries=%zu sites=%zu",
		 (long long)sn->generation, sn->nentries, sn->nsites);
	snap_unref(p->cur);
	p->cur = sn;
}

struct policy *policy_new(struct event_base *base, const char *db_path,
			  const struct policy_limits *lim, policy_done_cb done, void *arg,
			  char *err, size_t errsz)
{
	struct policy *p = xcalloc(1, sizeof(*p));
	struct timeval ten = { 10, 0 };

	p->base = base;
	p->db_path = xstrdup(db_path);
	strlcpy_s(p->hostname, lim->hostname ? lim->hostname : "", sizeof(p->hostname));
	p->max_sessions = lim->max_sessions;
	p->done = done;
	p->done_arg = arg;
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	p->cur = policy_snap_load(db_path, err, errsz);
	if (p->cur == NULL) {
		policy_free(p);
		return NULL;
	}
	p->last_gen = p->cur->generation;
	log_info(NULL, "policy", "loaded generation=%lld entries=%zu sites=%zu",
		 (long long)p->cur->generation, p->cur->nentries, p->cur->nsites);
	p->swap_ev = event_new(base, -1, 0, swap_cb, p);
	p->prune_ev = event_new(base, -1, EV_PERSIST, prune_cb, p);
	event_add(p->prune_ev, &ten);
	if (pthread_create(&p->thread, NULL, watcher_main, p) != 0) {
		snprintf(err, errsz, "policy: cannot start the watcher thread");
		policy_free(p);
		return NULL;
	}
	p->thread_started = 1;
	return p;
}

void policy_set_dns(struct policy *p, struct dns *dns)
{
	p->dns = dns;
}

int64_t policy_generation(const struct policy *p)
{
	return p->cur ? p->cur->generation : 0;
}

void policy_free(struct policy *p)
{
	size_t b;

	if (p == NULL)
		return;
	if (p->thread_started) {
		pthread_mutex_lock(&p->mu);
		p->stop = 1;
		pthread_cond_signal(&p->cv);
		pthread_mutex_unlock(&p->mu);
		pthread_join(p->thread, NULL);
	}
	/* Statistics still unwritten: one last flush. */
	if (p->nstats > 0) {
		char err[256];
		struct store *st = store_open(p->db_path, 0, err, sizeof(err));

		if (st != NULL) {
			flush_stats(p, st);
			store_close(st);
		}
	}
	for (b = 0; b < SESS_BUCKETS; b++) {
		while (p->sess[b] != NULL) {
			struct policy_sess *ps = p->sess[b];

			p->sess[b] = ps->hnext;
			ps->p = NULL; /* sessions outliving the engine: a caller bug */
			ps->hnext = NULL;
		}
	}
	for (b = 0; b < CLIENT_BUCKETS; b++) {
		while (p->clients[b] != NULL) {
			struct client_rec *c = p->clients[b];

			p->clients[b] = c->next;
			free(c->ring);
			free(c);
		}
	}
	if (p->swap_ev != NULL)
		event_free(p->swap_ev);
	if (p->prune_ev != NULL)
		event_free(p->prune_ev);
	policy_snap_free(p->pending);
	snap_unref(p->cur);
	free(p->stats);
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->cv);
	free(p->db_path);
	free(p);
}
