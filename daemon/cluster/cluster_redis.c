/*
 * cluster_redis: the mail loop's connection to the cluster's Redis (see
 * cluster_redis.h for the keys and the promise).  Used by policy/ (the
 * rate limits at MAIL and RCPT) and account/ (suspension flags); started
 * and freed by main.c on the mail loop; everything here runs on that loop.
 *
 * States: no context (down: every call refused at once; a timer connects
 * again every cluster_retry), connecting (the scripts' SCRIPT LOAD queued
 * behind the connect), up (every script loaded).  Any error, disconnect or
 * a command left unanswered for cluster_redis_timeout drops the context:
 * the node is degraded (cluster_status_set logs it once) until a connect
 * loads the scripts again.
 *
 * Requests: hiredis 0.14 has no command timeout, so each request has its
 * own timer.  A request given to hiredis is freed only in its hiredis
 * callback, which hiredis calls exactly once: with the reply, or with NULL
 * when the context is freed (disconnect, time-out, cluster_redis_free).
 * A request whose caller was already answered (time-out) is marked done
 * and its late reply does nothing.  The caller's callback is never called
 * from inside the call that made the request.
 */
#include "cluster_redis.h"

#include <errno.h>
#include <event2/event.h>
#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../conf/conf.h"
#include "../log/log.h"
#include "../util/util.h"
#include "cluster.h"

#define ARGC_MAX 32
#define NUM_MAX 24

/*
 * The rate check (cluster_redis_rate).  ARGV: a unique member for the
 * sorted sets, the suspension key or "", then per subject its key base
 * and the limits of its four windows.  Returns {0} counted, {1, subject,
 * window, limit} refused, {2} suspended.  Redis's clock: every node counts
 * on the same time.  Limits up to EXACT_MAX are exact sliding logs (the
 * times of the acceptances in the window); above, a two-window estimate
 * (the previous fixed window weighted by its overlap) keeps memory small.
 */
static const char rate_lua[] =
	"local t = redis.call('TIME')\n"
	"local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
	"local exact = tonumber(ARGV[3])\n"
	"if ARGV[2] ~= '' and redis.call('EXISTS', ARGV[2]) == 1 then return {2, 0, 0, 0} end\n"
	"local wins = {1000, 60000, 3600000, 86400000}\n"
	"local n = (#ARGV - 3) / 5\n"
	"for s = 0, n - 1 do\n"
	"  local base = ARGV[4 + s * 5]\n"
	"  for w = 1, 4 do\n"
	"    local lim = tonumber(ARGV[4 + s * 5 + w])\n"
	"    if lim > 0 then\n"
	"      local k = base .. ':' .. (w - 1)\n"
	"      local c\n"
	"      if lim <= exact then\n"
	"        redis.call('ZREMRANGEBYSCORE', k, '-inf', now - wins[w])\n"
	"        c = redis.call('ZCARD', k)\n"
	"      else\n"
	"        local b = math.floor(now / wins[w])\n"
	"        local cur = tonumber(redis.call('GET', k .. ':' .. b) or '0')\n"
	"        local prev = tonumber(redis.call('GET', k .. ':' .. (b - 1)) or '0')\n"
	"        c = cur + math.floor(prev * (1 - (now - b * wins[w]) / wins[w]))\n"
	"      end\n"
	"      if c >= lim then return {1, s, w - 1, lim} end\n"
	"    end\n"
	"  end\n"
	"end\n"
	"for s = 0, n - 1 do\n"
	"  local base = ARGV[4 + s * 5]\n"
	"  for w = 1, 4 do\n"
	"    local lim = tonumber(ARGV[4 + s * 5 + w])\n"
	"    if lim > 0 then\n"
	"      local k = base .. ':' .. (w - 1)\n"
	"      if lim <= exact then\n"
	"        redis.call('ZADD', k, now, ARGV[1])\n"
	"        redis.call('PEXPIRE', k, wins[w])\n"
	"      else\n"
	"        local bk = k .. ':' .. math.floor(now / wins[w])\n"
	"        redis.call('INCR', bk)\n"
	"        redis.call('PEXPIRE', bk, 2 * wins[w])\n"
	"      end\n"
	"    end\n"
	"  end\n"
	"end\n"
	"return {0, 0, 0, 0}\n";

/*
 * DNSBL statistics (cluster_redis_dnsbl_add).  ARGV: the zone's key, the
 * day's key, queries, hits, tempfails, last hit (unix ms).
 */
static const char dnsbl_lua[] =
	"redis.call('HINCRBY', ARGV[1], 'queries', ARGV[3])\n"
	"redis.call('HINCRBY', ARGV[1], 'hits', ARGV[4])\n"
	"redis.call('HINCRBY', ARGV[1], 'tempfails', ARGV[5])\n"
	"local lh = tonumber(ARGV[6])\n"
	"if lh > tonumber(redis.call('HGET', ARGV[1], 'last_hit') or '0') then\n"
	"  redis.call('HSET', ARGV[1], 'last_hit', lh)\n"
	"end\n"
	"if tonumber(ARGV[4]) > 0 then\n"
	"  redis.call('INCRBY', ARGV[2], ARGV[4])\n"
	"  redis.call('EXPIRE', ARGV[2], 172800)\n"
	"end\n"
	"return 0\n";

enum { SCRIPT_RATE, SCRIPT_DNSBL, NSCRIPTS };

static const char *const scripts[NSCRIPTS] = { rate_lua, dnsbl_lua };

struct req {
	struct cluster_redis *cr;
	cluster_redis_cb cb;
	void *arg;
	struct event *timer;
	int done;          /* the caller was answered (time-out): drop the reply */
	int script;        /* SCRIPT_* run with EVALSHA (resent as EVAL on NOSCRIPT), or -1 */
	int argc;
	char **argv;
	size_t *argvlen;
};

struct cluster_redis {
	struct event_base *base;
	char host[256];
	int port;
	char address[300];
	int64_t timeout_ms, retry_ms, node;
	redisAsyncContext *ac;   /* NULL: down */
	int up;                  /* every script loaded */
	int loading;             /* SCRIPT LOADs not yet answered */
	char sha[NSCRIPTS][41];
	struct event *retry_ev;
	int freeing;
	void (*on_up)(void *arg);
	void *on_up_arg;
	uint64_t seq;            /* rate members: node, start time, sequence */
	int64_t start_ms;
};

static void reply_cb(redisAsyncContext *ac, void *reply, void *privdata);
static void start_connect(struct cluster_redis *cr);

int cluster_redis_parse_address(const char *s, char *host, size_t hostsz, int *port)
{
	const char *colon = strrchr(s, ':');
	char *end;
	long p;
	size_t n;

	if (colon == NULL || colon == s)
		return -1;
	n = (size_t)(colon - s);
	if (s[0] == '[' && n >= 2 && s[n - 1] == ']') {
		s++;
		n -= 2;
	}
	if (n == 0 || n >= hostsz)
		return -1;
	errno = 0;
	p = strtol(colon + 1, &end, 10);
	if (errno != 0 || end == colon + 1 || *end != '\0' || p < 1 || p > 65535)
		return -1;
	memcpy(host, s, n);
	host[n] = '\0';
	*port = (int)p;
	return 0;
}

static void req_free(struct req *q)
{
	int i;

	if (q->timer != NULL)
		event_free(q->timer);
	for (i = 0; i < q->argc; i++)
		free(q->argv[i]);
	free(q->argv);
	free(q->argvlen);
	free(q);
}

/* The node goes on alone until a connect succeeds; connect again later. */
static void went_down(struct cluster_redis *cr, const char *why)
{
	struct timeval tv = { (time_t)(cr->retry_ms / 1000),
			      (suseconds_t)((cr->retry_ms % 1000) * 1000) };

	if (cr->freeing)
		return;
	cluster_status_set(CLUSTER_REDIS, CLUSTER_DOWN, why);
	evtimer_add(cr->retry_ev, &tv);
}

/* ac is gone or going.  Does not free ac (the caller knows whether hiredis does). */
static void lost(struct cluster_redis *cr, const redisAsyncContext *ac, const char *why)
{
	if (ac == NULL || cr->ac != ac)
		return; /* an old context: already handled */
	cr->ac = NULL;
	cr->up = 0;
	cr->loading = 0;
	went_down(cr, why);
}

/* Drop the current context now (from outside a hiredis callback, or inside: deferred). */
static void drop(struct cluster_redis *cr, const char *why)
{
	redisAsyncContext *ac = cr->ac;

	if (ac == NULL)
		return;
	lost(cr, ac, why);
	redisAsyncFree(ac); /* every pending request's callback runs with NULL */
}

static void req_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct req *q = arg;
	struct cluster_redis *cr = q->cr;
	cluster_redis_cb cb = q->cb;
	void *uarg = q->arg;
	char why[96];

	(void)fd;
	(void)what;
	q->done = 1;
	snprintf(why, sizeof(why), "no answer within %" PRId64 "ms", cr->timeout_ms);
	/* q belongs to the current context: freeing it frees q. */
	drop(cr, why);
	if (cb != NULL)
		cb(uarg, 0, NULL);
}

/* Hand q to hiredis; arm: start its timer (not when resent: the first one runs on). */
static int send_req(struct cluster_redis *cr, struct req *q, int arm)
{
	struct timeval tv = { (time_t)(cr->timeout_ms / 1000),
			      (suseconds_t)((cr->timeout_ms % 1000) * 1000) };

	if (redisAsyncCommandArgv(cr->ac, reply_cb, q, q->argc, (const char **)q->argv,
				  q->argvlen) != REDIS_OK)
		return -1;
	if (arm)
		evtimer_add(q->timer, &tv);
	return 0;
}

static int submit(struct cluster_redis *cr, cluster_redis_cb cb, void *arg, int argc,
		  const char **argv, const size_t *argvlen, int script)
{
	struct req *q;
	int i;

	if (cr == NULL || cr->ac == NULL || argc <= 0 || argc > ARGC_MAX)
		return -1;
	q = xcalloc(1, sizeof(*q));
	q->cr = cr;
	q->cb = cb;
	q->arg = arg;
	q->script = script;
	q->argc = argc;
	q->argv = xcalloc((size_t)argc, sizeof(*q->argv));
	q->argvlen = xcalloc((size_t)argc, sizeof(*q->argvlen));
	for (i = 0; i < argc; i++) {
		size_t n = argvlen != NULL ? argvlen[i] : strlen(argv[i]);

		q->argv[i] = xmalloc(n + 1);
		memcpy(q->argv[i], argv[i], n);
		q->argv[i][n] = '\0';
		q->argvlen[i] = n;
	}
	q->timer = evtimer_new(cr->base, req_timeout, q);
	if (send_req(cr, q, 1) < 0) {
		req_free(q);
		return -1;
	}
	return 0;
}

/* EVALSHA sha -> EVAL script: the reply NOSCRIPT (Redis restarted, SCRIPT FLUSH). */
static void to_eval(struct req *q)
{
	const char *s = scripts[q->script];
	size_t n = strlen(s);

	free(q->argv[0]);
	free(q->argv[1]);
	q->argv[0] = xstrdup("EVAL");
	q->argvlen[0] = 4;
	q->argv[1] = xmalloc(n + 1);
	memcpy(q->argv[1], s, n + 1);
	q->argvlen[1] = n;
	q->script = -1;
}

static void reply_cb(redisAsyncContext *ac, void *reply, void *privdata)
{
	struct req *q = privdata;
	struct cluster_redis *cr = q->cr;
	const redisReply *r = reply;

	if (r == NULL) {
		/* The context is going: the node is down before anyone is told. */
		lost(cr, ac, ac->errstr[0] != '\0' ? ac->errstr : "connection lost");
		if (!q->done && q->cb != NULL)
			q->cb(q->arg, 0, NULL);
		req_free(q);
		return;
	}
	if (!q->done && q->script >= 0 && r->type == REDIS_REPLY_ERROR &&
	    strncmp(r->str, "NOSCRIPT", 8) == 0 && cr->ac == ac) {
		/* EVAL loads the script into Redis's cache again; the timer runs on. */
		to_eval(q);
		if (send_req(cr, q, 0) == 0)
			return;
	}
	if (!q->done && q->cb != NULL) {
		if (r->type == REDIS_REPLY_ERROR)
			log_warn(NULL, "cluster", "redis error reply: %.200s", r->str);
		q->cb(q->arg, r->type != REDIS_REPLY_ERROR, r);
	}
	req_free(q);
}

/* ---- connection ------------------------------------------------------------ */

struct script_load {
	struct cluster_redis *cr;
	int idx;
};

static void script_loaded(void *arg, int ok, const redisReply *r)
{
	struct script_load *sl = arg;
	struct cluster_redis *cr = sl->cr;
	int idx = sl->idx;

	free(sl);
	if (!ok || cr->ac == NULL)
		return; /* the context went (and was reported) */
	if (r->type != REDIS_REPLY_STRING || r->len != 40) {
		drop(cr, "SCRIPT LOAD refused");
		return;
	}
	memcpy(cr->sha[idx], r->str, 40);
	cr->sha[idx][40] = '\0';
	if (--cr->loading == 0) {
		cr->up = 1;
		cluster_status_set(CLUSTER_REDIS, CLUSTER_UP, NULL);
		log_info(NULL, "cluster", "redis connected address=%s", cr->address);
		if (cr->on_up != NULL)
			cr->on_up(cr->on_up_arg);
	}
}

static void on_connect(const redisAsyncContext *ac, int status)
{
	struct cluster_redis *cr = ac->data;

	if (status != REDIS_OK)
		lost(cr, ac, ac->errstr[0] != '\0' ? ac->errstr : "connect failed");
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
	struct cluster_redis *cr = ac->data;

	(void)status;
	lost(cr, ac, ac->errstr[0] != '\0' ? ac->errstr : "connection closed");
}

static void retry_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	start_connect(arg);
}

static void start_connect(struct cluster_redis *cr)
{
	redisAsyncContext *ac = redisAsyncConnect(cr->host, cr->port);
	int i;

	if (ac == NULL)
		abort(); /* hiredis allocation failure */
	if (ac->err != 0) {
		char why[160];

		strlcpy_s(why, ac->errstr, sizeof(why));
		redisAsyncFree(ac);
		went_down(cr, why);
		return;
	}
	ac->data = cr;
	if (redisLibeventAttach(ac, cr->base) != REDIS_OK)
		abort(); /* a new context has nothing attached */
	redisAsyncSetConnectCallback(ac, on_connect);
	redisAsyncSetDisconnectCallback(ac, on_disconnect);
	cr->ac = ac;
	cr->up = 0;
	cr->loading = NSCRIPTS;
	/* Queued behind the connect; up once every script is loaded. */
	for (i = 0; i < NSCRIPTS; i++) {
		const char *argv[3] = { "SCRIPT", "LOAD", scripts[i] };
		struct script_load *sl = xcalloc(1, sizeof(*sl));

		sl->cr = cr;
		sl->idx = i;
		if (submit(cr, script_loaded, sl, 3, argv, NULL, -1) < 0) {
			free(sl);
			drop(cr, "cannot queue SCRIPT LOAD");
			return;
		}
	}
}

struct cluster_redis *cluster_redis_new(struct event_base *base, const struct conf *conf,
					char *err, size_t errsz)
{
	struct cluster_redis *cr;
	char host[256];
	int port;

	if (cluster_redis_parse_address(conf->cluster_redis, host, sizeof(host), &port) < 0) {
		snprintf(err, errsz, "cluster_redis: '%.200s': expected host:port",
			 conf->cluster_redis);
		return NULL;
	}
	cr = xcalloc(1, sizeof(*cr));
	cr->base = base;
	strlcpy_s(cr->host, host, sizeof(cr->host));
	strlcpy_s(cr->address, conf->cluster_redis, sizeof(cr->address));
	cr->port = port;
	cr->timeout_ms = conf->cluster_redis_timeout_ms;
	cr->retry_ms = conf->cluster_retry_ms;
	cr->node = conf->cluster_node;
	cr->start_ms = time_now_ms();
	cr->retry_ev = evtimer_new(base, retry_cb, cr);
	start_connect(cr);
	return cr;
}

void cluster_redis_free(struct cluster_redis *cr)
{
	redisAsyncContext *ac;

	if (cr == NULL)
		return;
	cr->freeing = 1;
	ac = cr->ac;
	cr->ac = NULL;
	cr->up = 0;
	if (ac != NULL)
		redisAsyncFree(ac); /* pending callbacks: ok 0 */
	event_free(cr->retry_ev);
	free(cr);
}

int cluster_redis_up(const struct cluster_redis *cr)
{
	return cr != NULL && cr->up;
}

int cluster_redis_command(struct cluster_redis *cr, cluster_redis_cb cb, void *arg, int argc,
			  const char **argv, const size_t *argvlen)
{
	if (!cluster_redis_up(cr))
		return -1;
	return submit(cr, cb, arg, argc, argv, argvlen, -1);
}

int cluster_redis_rate(struct cluster_redis *cr, const char *suspended_user,
		       const struct cluster_redis_rate *subj, size_t nsubj, cluster_redis_cb cb,
		       void *arg)
{
	const char *argv[ARGC_MAX];
	char keys[4][CLUSTER_REDIS_SUBJECT_MAX + 32];
	char nums[4][4][NUM_MAX];
	char member[80], susp[CLUSTER_REDIS_SUBJECT_MAX + 16], exact[NUM_MAX];
	int argc = 0;
	size_t i;
	int w;

	if (!cluster_redis_up(cr) || nsubj > 4)
		return -1;
	snprintf(member, sizeof(member), "%" PRId64 ":%" PRId64 ":%" PRIu64, cr->node,
		 cr->start_ms, ++cr->seq);
	susp[0] = '\0';
	if (suspended_user != NULL &&
	    (size_t)snprintf(susp, sizeof(susp), "moat:susp:%s", suspended_user) >= sizeof(susp))
		return -1;
	snprintf(exact, sizeof(exact), "%d", CLUSTER_REDIS_EXACT_MAX);
	argv[argc++] = "EVALSHA";
	argv[argc++] = cr->sha[SCRIPT_RATE];
	argv[argc++] = "0";
	argv[argc++] = member;
	argv[argc++] = susp;
	argv[argc++] = exact;
	for (i = 0; i < nsubj; i++) {
		if ((size_t)snprintf(keys[i], sizeof(keys[i]), "moat:rl:%s:%s", subj[i].kind,
				     subj[i].subject) >= sizeof(keys[i]))
			return -1;
		argv[argc++] = keys[i];
		for (w = 0; w < 4; w++) {
			snprintf(nums[i][w], sizeof(nums[i][w]), "%" PRId64,
				 subj[i].lim[w] > 0 ? subj[i].lim[w] : 0);
			argv[argc++] = nums[i][w];
		}
	}
	return submit(cr, cb, arg, argc, argv, NULL, SCRIPT_RATE);
}

int cluster_redis_rate_result(const redisReply *r, enum cluster_rate_res *res, size_t *subj,
			      int *window, int64_t *limit)
{
	size_t i;

	if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 4)
		return -1;
	for (i = 0; i < 4; i++)
		if (r->element[i]->type != REDIS_REPLY_INTEGER)
			return -1;
	switch (r->element[0]->integer) {
	case 0:
		*res = CLUSTER_RATE_OK;
		break;
	case 1:
		if (r->element[1]->integer < 0 || r->element[1]->integer > 3 ||
		    r->element[2]->integer < 0 || r->element[2]->integer > 3)
			return -1;
		*res = CLUSTER_RATE_LIMIT;
		*subj = (size_t)r->element[1]->integer;
		*window = (int)r->element[2]->integer;
		*limit = r->element[3]->integer;
		break;
	case 2:
		*res = CLUSTER_RATE_SUSPENDED;
		break;
	default:
		return -1;
	}
	return 0;
}

int cluster_redis_suspended_list(struct cluster_redis *cr, cluster_redis_cb cb, void *arg)
{
	const char *argv[2] = { "SMEMBERS", "moat:susp" };

	return cluster_redis_command(cr, cb, arg, 2, argv, NULL);
}

void cluster_redis_on_up(struct cluster_redis *cr, void (*fn)(void *arg), void *arg)
{
	if (cr == NULL)
		return;
	cr->on_up = fn;
	cr->on_up_arg = arg;
}

int cluster_redis_suspend(struct cluster_redis *cr, const char *user, int on,
			  cluster_redis_cb cb, void *arg)
{
	char key[CLUSTER_REDIS_SUBJECT_MAX + 16];
	char node[NUM_MAX];
	const char *argv[3], *set[3];

	if (cr == NULL ||
	    (size_t)snprintf(key, sizeof(key), "moat:susp:%s", user) >= sizeof(key))
		return -1;
	snprintf(node, sizeof(node), "%" PRId64, cr->node);
	argv[0] = on ? "SET" : "DEL";
	argv[1] = key;
	argv[2] = node;
	set[0] = on ? "SADD" : "SREM";
	set[1] = "moat:susp";
	set[2] = user;
	/* Answered in order: cb on the second tells about both. */
	if (cluster_redis_command(cr, NULL, NULL, on ? 3 : 2, argv, NULL) < 0 ||
	    cluster_redis_command(cr, cb, arg, 3, set, NULL) < 0) {
		log_warn(NULL, "cluster", "redis down: suspension flag of %s not %s yet", user,
			 on ? "set" : "cleared");
		return -1;
	}
	return 0;
}

/* "moat:dnsbl:<zone>" (lower case), and with ":<day>" when day >= 0.  0 or -1. */
static int dnsbl_key(const char *zone, int64_t day, char *out, size_t outsz)
{
	size_t i, n;

	n = (size_t)snprintf(out, outsz, "moat:dnsbl:%s", zone);
	if (n >= outsz)
		return -1;
	for (i = 11; i < n; i++)
		if (out[i] >= 'A' && out[i] <= 'Z')
			out[i] = (char)(out[i] + 32);
	if (day >= 0 && (size_t)snprintf(out + n, outsz - n, ":%" PRId64, day) >= outsz - n)
		return -1;
	return 0;
}

void cluster_redis_dnsbl_add(struct cluster_redis *cr, const char *zone, int64_t day,
			     int64_t queries, int64_t hits, int64_t tempfails, int64_t last_hit)
{
	char k[300], kd[330], nums[4][NUM_MAX];
	const char *argv[9];

	if (!cluster_redis_up(cr) || dnsbl_key(zone, -1, k, sizeof(k)) < 0 ||
	    dnsbl_key(zone, day, kd, sizeof(kd)) < 0)
		return;
	snprintf(nums[0], sizeof(nums[0]), "%" PRId64, queries);
	snprintf(nums[1], sizeof(nums[1]), "%" PRId64, hits);
	snprintf(nums[2], sizeof(nums[2]), "%" PRId64, tempfails);
	snprintf(nums[3], sizeof(nums[3]), "%" PRId64, last_hit);
	argv[0] = "EVALSHA";
	argv[1] = cr->sha[SCRIPT_DNSBL];
	argv[2] = "0";
	argv[3] = k;
	argv[4] = kd;
	argv[5] = nums[0];
	argv[6] = nums[1];
	argv[7] = nums[2];
	argv[8] = nums[3];
	(void)submit(cr, NULL, NULL, 9, argv, NULL, SCRIPT_DNSBL);
}

static int64_t reply_int(const redisReply *r)
{
	if (r == NULL)
		return 0;
	if (r->type == REDIS_REPLY_INTEGER)
		return r->integer;
	if (r->type == REDIS_REPLY_STRING)
		return strtoll(r->str, NULL, 10);
	return 0;
}

int cluster_redis_dnsbl_get(struct redisContext *c, const char *zone, int64_t day,
			    struct cluster_dnsbl_stat *out)
{
	char k[300], kd[330];
	const char *hm[6] = { "HMGET", k, "queries", "hits", "tempfails", "last_hit" };
	const char *get[2] = { "GET", kd };
	redisReply *r = NULL, *d = NULL;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	if (dnsbl_key(zone, -1, k, sizeof(k)) < 0 || dnsbl_key(zone, day, kd, sizeof(kd)) < 0)
		return -1;
	r = redisCommandArgv(c, 6, hm, NULL);
	if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 4)
		goto out;
	d = redisCommandArgv(c, 2, get, NULL);
	if (d == NULL || (d->type != REDIS_REPLY_STRING && d->type != REDIS_REPLY_NIL))
		goto out;
	out->queries = reply_int(r->element[0]);
	out->hits = reply_int(r->element[1]);
	out->tempfails = reply_int(r->element[2]);
	out->last_hit = reply_int(r->element[3]);
	out->hits_today = reply_int(d);
	rc = 0;
out:
	if (r != NULL)
		freeReplyObject(r);
	if (d != NULL)
		freeReplyObject(d);
	return rc;
}

struct redisContext *cluster_redis_connect_sync(const char *address, int64_t timeout_ms,
						char *err, size_t errsz)
{
	struct timeval tv = { (time_t)(timeout_ms / 1000), (suseconds_t)((timeout_ms % 1000) * 1000) };
	char host[256];
	redisContext *c;
	int port;

	if (cluster_redis_parse_address(address, host, sizeof(host), &port) < 0) {
		snprintf(err, errsz, "bad address");
		return NULL;
	}
	c = redisConnectWithTimeout(host, port, tv);
	if (c == NULL) {
		snprintf(err, errsz, "out of memory");
		return NULL;
	}
	if (c->err != 0 || redisSetTimeout(c, tv) != REDIS_OK) {
		snprintf(err, errsz, "%s", c->errstr[0] != '\0' ? c->errstr : "cannot set timeout");
		redisFree(c);
		return NULL;
	}
	return c;
}

int cluster_redis_claim(struct redisContext *c, const char *key, int64_t ttl_ms)
{
	char ttl[24];
	const char *argv[6] = { "SET", key, "1", "NX", "PX", ttl };
	redisReply *r;
	int rc;

	snprintf(ttl, sizeof(ttl), "%" PRId64, ttl_ms);
	r = redisCommandArgv(c, 6, argv, NULL);
	if (r == NULL)
		return -1;
	if (r->type == REDIS_REPLY_STATUS)
		rc = 1;            /* +OK: ours */
	else if (r->type == REDIS_REPLY_NIL)
		rc = 0;            /* someone else's */
	else
		rc = -1;
	freeReplyObject(r);
	return rc;
}
