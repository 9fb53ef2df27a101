/*
 * greylist: triplet greylisting as postgrey and rspamd do it.  See
 * greylist.h; the semantics are in docs/score.md, "Greylisting".
 *
 * Called by the end-of-DATA content stage (daemon/policy/policy_content.c)
 * per recipient of a message whose score is in the greylist band, on a
 * content worker with the worker's store.  Each call is one short write
 * transaction (read the triplet, decide, record); two workers seeing the
 * same triplet at once are serialised by it.  Expired rows are deleted
 * here too, at most GREYLIST_PURGE_BATCH rows once a minute across all
 * workers (sooner while a purge finds a full batch), so that the tables
 * stay bounded by what the lifetime and window keep.
 *
 * Keys: the client's /24 or /64 (a provider's outbound pool retries from a
 * neighbouring address), the sender lower-cased or its SPF-passed domain (a
 * big provider's pool whose SPF passes is not delayed per address), the
 * recipient lower-cased.  Must never refuse permanently: the only answer
 * that stops mail is a deferral.
 *
 * In a cluster (greylist_set_cluster) the same decision is one Lua script
 * in Redis over moat:gl:t:<net>|<sender>|<rcpt> (a hash: first, passed;
 * TTL delay + window while waiting, lifetime once passed) and
 * moat:gl:n:<net> (passes; TTL lifetime), on Redis's clock, through a
 * blocking connection per worker thread (freed when the thread ends).
 * Any Redis error: SQLite decides, as on a single node.
 */
#include "greylist.h"

#include <arpa/inet.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "../cluster/cluster_redis.h"
#include "../store/store.h"
#include "../store/store_greylist.h"
#include "../util/util.h"

/* When the last purge ran (unix ms), shared by every worker. */
static _Atomic int64_t purged_ms;

static char lower(char c)
{
	return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

int greylist_network(const char *addr, size_t len, char *out, size_t outsz)
{
	char buf[INET6_ADDRSTRLEN + 1];
	struct in6_addr a6;
	struct in_addr a4;
	size_t i;
	int n;

	if (addr == NULL || outsz == 0)
		return -1;
	if (len >= 5 && strncasecmp(addr, "IPv6:", 5) == 0) {
		addr += 5;
		len -= 5;
	}
	if (len >= 2 && addr[0] == '[' && addr[len - 1] == ']') {
		addr++;
		len -= 2;
	}
	if (len == 0 || len >= sizeof(buf))
		return -1;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)addr[i];

		/* inet_pton stops at NUL and takes no zone id: refuse both here. */
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
		      (c >= 'A' && c <= 'F') || c == ':' || c == '.'))
			return -1;
	}
	memcpy(buf, addr, len);
	buf[len] = '\0';
	if (inet_pton(AF_INET, buf, &a4) == 1) {
		const unsigned char *b = (const unsigned char *)&a4.s_addr;

		n = snprintf(out, outsz, "%u.%u.%u.0/24", b[0], b[1], b[2]);
		return n < 0 || (size_t)n >= outsz ? -1 : 0;
	}
	if (inet_pton(AF_INET6, buf, &a6) != 1)
		return -1;
	if (IN6_IS_ADDR_V4MAPPED(&a6)) {
		n = snprintf(out, outsz, "%u.%u.%u.0/24", a6.s6_addr[12], a6.s6_addr[13],
			     a6.s6_addr[14]);
		return n < 0 || (size_t)n >= outsz ? -1 : 0;
	}
	memset(&a6.s6_addr[8], 0, 8);
	if (inet_ntop(AF_INET6, &a6, buf, sizeof(buf)) == NULL)
		return -1;
	n = snprintf(out, outsz, "%s/64", buf);
	return n < 0 || (size_t)n >= outsz ? -1 : 0;
}

/* s lower-cased into out; -1 when too long. */
static int lower_copy(const char *s, size_t n, char *out, size_t outsz)
{
	size_t i;

	if (n > GREYLIST_KEY_MAX || n >= outsz)
		return -1;
	for (i = 0; i < n; i++)
		out[i] = lower(s[i]);
	out[n] = '\0';
	return 0;
}

int greylist_sender_key(const char *sender, const char *spf_domain, char *out, size_t outsz)
{
	size_t n;

	if (outsz == 0)
		return -1;
	if (spf_domain != NULL && spf_domain[0] != '\0') {
		n = strlen(spf_domain);
		if (spf_domain[n - 1] == '.')
			n--;
		if (n > 0)
			return lower_copy(spf_domain, n, out, outsz);
	}
	if (sender == NULL || sender[0] == '\0' || strcmp(sender, "<>") == 0) {
		if (outsz < 3)
			return -1;
		memcpy(out, "<>", 3);
		return 0;
	}
	return lower_copy(sender, strlen(sender), out, outsz);
}

static int copy_row(const struct store_greylist_row *r, void *arg)
{
	struct store_greylist_row *out = arg;

	/* Strings are not kept: only the numbers are read after the call. */
	*out = *r;
	out->network = out->sender = out->rcpt = NULL;
	return 1;
}

static int copy_net(const struct store_greylist_net *n, void *arg)
{
	struct store_greylist_net *out = arg;

	*out = *n;
	out->network = NULL;
	return 1;
}

/* Delete expired rows if no worker did within the interval. */
static void purge(struct store *st, int64_t now)
{
	int64_t last = atomic_load(&purged_ms);
	int64_t n = 0;

	if (now - last < GREYLIST_PURGE_INTERVAL_MS && now >= last)
		return;
	if (!atomic_compare_exchange_strong(&purged_ms, &last, now))
		return; /* another worker took this round */
	if (store_begin(st) < 0)
		return;
	if (store_greylist_purge(st, now, GREYLIST_PURGE_BATCH, &n) < 0 ||
	    store_commit(st) < 0) {
		store_rollback(st);
		return;
	}
	/* A full batch: more may be waiting, so let the next check purge again. */
	if (n >= GREYLIST_PURGE_BATCH)
		atomic_store(&purged_ms, 0);
}

/* The decision inside the caller's transaction. */
static int decide(struct store *st, const char *net, const char *sender, const char *rcpt,
		  const struct greylist_params *p, int64_t now, enum greylist_res *res,
		  int64_t *retry_in)
{
	struct store_greylist_row t;
	struct store_greylist_net nw;
	int64_t keep = now + p->lifetime_ms;
	int64_t elapsed;
	int found;

	if (p->auto_allow > 0) {
		if (store_greylist_net_get(st, net, copy_net, &nw, &found) < 0)
			return -1;
		if (found && nw.passes >= p->auto_allow && nw.expires > now) {
			*res = GREYLIST_ALLOWED;
			if (now - nw.last_seen >= GREYLIST_TOUCH_MS)
				return store_greylist_net_use(st, nw.id, now, keep);
			return 0;
		}
	}
	if (store_greylist_get(st, net, sender, rcpt, copy_row, &t, &found) < 0)
		return -1;
	if (found && t.passed_at > 0 && t.expires > now) {
		*res = GREYLIST_PASS;
		return store_greylist_use(st, t.id, now, keep);
	}
	elapsed = found ? now - t.first_seen : -1;
	/*
	 * Unknown, expired, or waiting past its window (the window may have
	 * shrunk since the row was written): a new round starts.  A clock set
	 * back (elapsed < 0) starts over too rather than waiting for ever.
	 */
	if (!found || t.passed_at > 0 || t.expires <= now || elapsed < 0 ||
	    elapsed > p->delay_ms + p->window_ms) {
		*res = GREYLIST_DEFER;
		*retry_in = p->delay_ms;
		return store_greylist_start(st, net, sender, rcpt, now,
					    now + p->delay_ms + p->window_ms);
	}
	if (elapsed < p->delay_ms) {
		*res = GREYLIST_DEFER;
		*retry_in = p->delay_ms - elapsed;
		return store_greylist_retry(st, t.id, now);
	}
	*res = GREYLIST_PASS;
	if (store_greylist_pass(st, t.id, now, keep) < 0)
		return -1;
	return store_greylist_net_pass(st, net, now, keep);
}

/* ---- cluster: the decision in Redis ----------------------------------------- */

/* ARGV: triplet key, network key, delay, window, lifetime, auto_allow (ms, count). */
static const char gl_lua[] =
	"local t = redis.call('TIME')\n"
	"local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
	"local delay, window = tonumber(ARGV[3]), tonumber(ARGV[4])\n"
	"local life, auto = tonumber(ARGV[5]), tonumber(ARGV[6])\n"
	"if auto > 0 then\n"
	"  local p = tonumber(redis.call('HGET', ARGV[2], 'passes') or '0')\n"
	"  if p >= auto then redis.call('PEXPIRE', ARGV[2], life) return {2, 0} end\n"
	"end\n"
	"local first = redis.call('HGET', ARGV[1], 'first')\n"
	"if redis.call('HEXISTS', ARGV[1], 'passed') == 1 then\n"
	"  redis.call('PEXPIRE', ARGV[1], life) return {0, 0}\n"
	"end\n"
	"local el = -1\n"
	"if first then el = now - tonumber(first) end\n"
	"if not first or el < 0 or el > delay + window then\n"
	"  redis.call('DEL', ARGV[1])\n"
	"  redis.call('HSET', ARGV[1], 'first', now)\n"
	"  redis.call('PEXPIRE', ARGV[1], delay + window)\n"
	"  return {1, delay}\n"
	"end\n"
	"if el < delay then return {1, delay - el} end\n"
	"redis.call('HSET', ARGV[1], 'passed', now)\n"
	"redis.call('PEXPIRE', ARGV[1], life)\n"
	"redis.call('HINCRBY', ARGV[2], 'passes', 1)\n"
	"redis.call('PEXPIRE', ARGV[2], life)\n"
	"return {0, 0}\n";

static char cl_address[300];     /* "" : not in a cluster */
static int64_t cl_timeout_ms, cl_retry_ms;
static pthread_key_t cl_key;
static pthread_once_t cl_once = PTHREAD_ONCE_INIT;

/* One per worker thread. */
struct gl_conn {
	redisContext *c;
	int64_t failed_at;       /* time_mono_ms() of the last error, 0 none */
};

static void gl_conn_free(void *arg)
{
	struct gl_conn *g = arg;

	if (g->c != NULL)
		redisFree(g->c);
	free(g);
}

static void cl_key_init(void)
{
	if (pthread_key_create(&cl_key, gl_conn_free) != 0)
		abort(); /* at start, before any worker: out of keys is a broken build */
}

void greylist_set_cluster(const char *address, int64_t timeout_ms, int64_t retry_ms)
{
	pthread_once(&cl_once, cl_key_init);
	strlcpy_s(cl_address, address, sizeof(cl_address));
	cl_timeout_ms = timeout_ms;
	cl_retry_ms = retry_ms;
}

/* The thread's connection, connected; NULL while Redis is failing. */
static redisContext *gl_conn_get(void)
{
	struct gl_conn *g = pthread_getspecific(cl_key);
	char err[256];

	if (g == NULL) {
		g = xcalloc(1, sizeof(*g));
		if (pthread_setspecific(cl_key, g) != 0) {
			free(g);
			return NULL;
		}
	}
	if (g->c != NULL)
		return g->c;
	if (g->failed_at != 0 && time_mono_ms() - g->failed_at < cl_retry_ms)
		return NULL;
	g->c = cluster_redis_connect_sync(cl_address, cl_timeout_ms, err, sizeof(err));
	if (g->c == NULL)
		g->failed_at = time_mono_ms();
	return g->c;
}

static void gl_conn_failed(void)
{
	struct gl_conn *g = pthread_getspecific(cl_key);

	if (g == NULL)
		return;
	if (g->c != NULL)
		redisFree(g->c);
	g->c = NULL;
	g->failed_at = time_mono_ms();
}

/* 0 with the decision, or -1: Redis did not decide (the caller asks SQLite). */
static int redis_decide(const char *net, const char *sender, const char *rcpt,
			const struct greylist_params *p, enum greylist_res *res,
			int64_t *retry_in)
{
	char tkey[3 * GREYLIST_KEY_MAX + 64], nkey[GREYLIST_NETWORK_MAX + 16];
	char num[4][24];
	const char *argv[9];
	redisContext *c = gl_conn_get();
	redisReply *r;
	int ok = 0;

	if (c == NULL)
		return -1;
	snprintf(tkey, sizeof(tkey), "moat:gl:t:%s|%s|%s", net, sender, rcpt);
	snprintf(nkey, sizeof(nkey), "moat:gl:n:%s", net);
	snprintf(num[0], sizeof(num[0]), "%" PRId64, p->delay_ms);
	snprintf(num[1], sizeof(num[1]), "%" PRId64, p->window_ms);
	snprintf(num[2], sizeof(num[2]), "%" PRId64, p->lifetime_ms);
	snprintf(num[3], sizeof(num[3]), "%" PRId64, p->auto_allow);
	argv[0] = "EVAL";
	argv[1] = gl_lua;
	argv[2] = "0";
	argv[3] = tkey;
	argv[4] = nkey;
	argv[5] = num[0];
	argv[6] = num[1];
	argv[7] = num[2];
	argv[8] = num[3];
	r = redisCommandArgv(c, 9, argv, NULL);
	if (r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
	    r->element[0]->type == REDIS_REPLY_INTEGER &&
	    r->element[1]->type == REDIS_REPLY_INTEGER) {
		ok = 1;
		*res = r->element[0]->integer == 1 ? GREYLIST_DEFER
		       : r->element[0]->integer == 2 ? GREYLIST_ALLOWED : GREYLIST_PASS;
		*retry_in = *res == GREYLIST_DEFER ? r->element[1]->integer : 0;
	}
	if (r != NULL)
		freeReplyObject(r);
	if (!ok) {
		gl_conn_failed();
		return -1;
	}
	return 0;
}

int greylist_check(struct store *st, const struct greylist_key *k, const struct greylist_params *p,
		   int64_t now_ms, enum greylist_res *res, int64_t *retry_in_ms)
{
	char net[GREYLIST_NETWORK_MAX];
	char sender[GREYLIST_KEY_MAX + 1];
	char rcpt[GREYLIST_KEY_MAX + 1];

	*res = GREYLIST_PASS;
	*retry_in_ms = 0;
	if (k->client_addr == NULL || k->rcpt == NULL ||
	    greylist_network(k->client_addr, strlen(k->client_addr), net, sizeof(net)) < 0 ||
	    greylist_sender_key(k->sender, k->spf_domain, sender, sizeof(sender)) < 0 ||
	    lower_copy(k->rcpt, strlen(k->rcpt), rcpt, sizeof(rcpt)) < 0)
		return -1;
	if (cl_address[0] != '\0' && redis_decide(net, sender, rcpt, p, res, retry_in_ms) == 0)
		return 0;
	if (store_begin(st) < 0)
		return -1;
	if (decide(st, net, sender, rcpt, p, now_ms, res, retry_in_ms) < 0 ||
	    store_commit(st) < 0) {
		store_rollback(st);
		*res = GREYLIST_PASS;
		*retry_in_ms = 0;
		return -1;
	}
	purge(st, now_ms);
	return 0;
}
