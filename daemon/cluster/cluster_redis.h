/*
 * cluster_redis: the counters a cluster shares in Redis (docs/cluster.md,
 * "Redis").  One asynchronous connection on the mail loop (hiredis and its
 * libevent adapter) for the rate limits and suspension flags, and a
 * synchronous connect helper for the threads that may block (the greylist
 * on the content workers).
 *
 * Keys (every one under "moat:"):
 *   moat:rl:<kind>:<subject>:<w>        rate log of one window (sorted set of
 *                                       acceptance times), w 0..3 = second,
 *                                       minute, hour, day; kind am/ar/cm/cr
 *                                       (account or client address, messages
 *                                       or recipients); TTL one window
 *   moat:rl:<kind>:<subject>:<w>:<n>    the same as a fixed-window counter
 *                                       for limits above CLUSTER_REDIS_EXACT_MAX
 *                                       (two-window estimate); TTL two windows
 *   moat:susp:<user>                    the account is suspended (no TTL;
 *                                       deleted when the suspension is lifted)
 *   moat:susp                           the set of the suspended users
 *   moat:dnsbl:<zone>                   DNSBL statistics of the cluster (a hash:
 *                                       queries, hits, tempfails, last_hit)
 *   moat:dnsbl:<zone>:<day>             hits of that UTC day (TTL two days)
 *   moat:gl:t:<net>|<sender>|<rcpt>     greylist triplet (score/greylist.c)
 *   moat:gl:n:<net>                     greylist auto-allowed network
 *
 * Never waits: a command is answered within cluster_redis_timeout, by Redis
 * or with ok 0 ("unavailable"), and while the connection is down it is
 * refused at once (-1) so that the caller decides on its local counters.
 */
#ifndef MOAT_CLUSTER_REDIS_H
#define MOAT_CLUSTER_REDIS_H

#include <stddef.h>
#include <stdint.h>

struct cluster_redis;
struct conf;
struct event_base;
struct redisReply;
struct redisContext;

/* A rate limit up to this many events is kept as an exact sliding log. */
#define CLUSTER_REDIS_EXACT_MAX 1000
/* Longest key subject (user name or client address) accepted. */
#define CLUSTER_REDIS_SUBJECT_MAX 320

/*
 * The answer to one command, exactly once: ok 1 with Redis's reply (valid
 * during the call only), or ok 0 and r NULL when Redis did not answer in
 * time, the connection dropped, or the client is being freed.
 */
typedef void (*cluster_redis_cb)(void *arg, int ok, const struct redisReply *r);

/* "host:port" into its parts.  0 or -1. */
int cluster_redis_parse_address(const char *s, char *host, size_t hostsz, int *port);

/*
 * Connects on base (in the background: not yet up on return) and keeps
 * connecting every cluster_retry while Redis is away.  NULL with err when
 * conf->cluster_redis is not a valid address.
 */
struct cluster_redis *cluster_redis_new(struct event_base *base, const struct conf *conf,
					char *err, size_t errsz);
/* Every pending callback is called (ok 0) before it returns.  NULL ok. */
void cluster_redis_free(struct cluster_redis *cr);
/* 1 when connected and the scripts are loaded. */
int cluster_redis_up(const struct cluster_redis *cr);

/*
 * One command (argv as given; copied).  0: cb will be called later, never
 * from inside this call; -1: Redis is not up (cb is never called).  cb
 * NULL: nobody waits for the answer (a flag set, a counter added).
 */
int cluster_redis_command(struct cluster_redis *cr, cluster_redis_cb cb, void *arg, int argc,
			  const char **argv, const size_t *argvlen);

/* One subject of a rate check: key kind and subject, and the 4 limits (0: none). */
struct cluster_redis_rate {
	const char *kind;      /* "am", "ar", "cm", "cr" */
	const char *subject;   /* user name or client address */
	int64_t lim[4];        /* per second, minute, hour, day */
};

/*
 * Check, and when every limit allows it count, one event for each subject
 * in one atomic step (a Lua script: two nodes never both take the last
 * unit); when suspended_user is not NULL, first whether moat:susp:<it>
 * exists.  The reply is read with cluster_redis_rate_result().
 */
int cluster_redis_rate(struct cluster_redis *cr, const char *suspended_user,
		       const struct cluster_redis_rate *subj, size_t nsubj, cluster_redis_cb cb,
		       void *arg);

enum cluster_rate_res { CLUSTER_RATE_OK, CLUSTER_RATE_LIMIT, CLUSTER_RATE_SUSPENDED };
/*
 * The rate script's reply: OK (counted), LIMIT with the subject index,
 * window (0..3) and limit that refused, or SUSPENDED.  -1 on a reply of
 * another shape.
 */
int cluster_redis_rate_result(const struct redisReply *r, enum cluster_rate_res *res,
			      size_t *subj, int *window, int64_t *limit);

/*
 * SET (on 1) or DEL (on 0) moat:susp:<user>, and add it to (remove it from)
 * moat:susp.  0 sent (cb, if not NULL, is told whether Redis took it), -1
 * Redis down (cb is not called).
 */
int cluster_redis_suspend(struct cluster_redis *cr, const char *user, int on,
			  cluster_redis_cb cb, void *arg);

/* SMEMBERS moat:susp: every suspended user of the cluster (an array reply). */
int cluster_redis_suspended_list(struct cluster_redis *cr, cluster_redis_cb cb, void *arg);

/*
 * fn(arg) each time the connection is up (again): what Redis lost or
 * missed meanwhile (a restart empties it) is written again there.  One
 * hook; fn NULL removes it.
 */
void cluster_redis_on_up(struct cluster_redis *cr, void (*fn)(void *arg), void *arg);

/* Add one flush of a DNSBL zone's counts (day: unix day number); nobody waits. */
void cluster_redis_dnsbl_add(struct cluster_redis *cr, const char *zone, int64_t day,
			     int64_t queries, int64_t hits, int64_t tempfails, int64_t last_hit);

struct cluster_dnsbl_stat {
	int64_t queries, hits, tempfails, last_hit, hits_today;
};
/* On a blocking connection: the cluster's totals of zone.  0, or -1 on any error. */
int cluster_redis_dnsbl_get(struct redisContext *c, const char *zone, int64_t day,
			    struct cluster_dnsbl_stat *out);

/*
 * A blocking connection for a thread that may wait (at most timeout_ms for
 * the connect and for each reply).  NULL with err.  The caller redisFree()s it.
 */
struct redisContext *cluster_redis_connect_sync(const char *address, int64_t timeout_ms,
						char *err, size_t errsz);

/*
 * Once-per-cluster work on a blocking connection: SET key NX with a TTL.
 * 1 when this node won the claim (it does the work), 0 when another node
 * holds it, -1 on a Redis error (the caller decides alone: degraded).
 */
int cluster_redis_claim(struct redisContext *c, const char *key, int64_t ttl_ms);

#endif
