/*
 * cluster: the state a node shares with the others of a cluster
 * (docs/cluster.md).  PostgreSQL is the system of record for the shared
 * tables (cluster_pg.c: every node works on its own SQLite copy, pushes its
 * changes and applies the others', woken by LISTEN/NOTIFY); Redis holds the
 * counters that must be cluster-wide and fast (cluster_redis.c).  Each node
 * keeps its own spool and queue.
 *
 * This file is the status both engines report, read by /healthz and
 * /metrics from any thread.  An engine that is not configured is OFF; a
 * configured one that does not answer is DOWN, and the node goes on alone
 * (degraded, not down) until it is UP again.
 */
#ifndef MOAT_CLUSTER_H
#define MOAT_CLUSTER_H

#include <stddef.h>
#include <stdint.h>

enum cluster_engine { CLUSTER_PG, CLUSTER_REDIS, CLUSTER_NENGINES };
enum cluster_state { CLUSTER_OFF, CLUSTER_UP, CLUSTER_DOWN };

struct cluster_status {
	enum cluster_state state;
	int64_t since_ms;   /* wall-clock ms of the last change of state */
	int64_t outages;    /* times it went DOWN since start */
	int64_t backlog;    /* work waiting for the engine (rows to push, ...) */
	char error[256];    /* why it is DOWN, or "" */
};

/* "postgresql", "redis" */
const char *cluster_engine_name(enum cluster_engine e);
/* "off", "up", "down" */
const char *cluster_state_name(enum cluster_state s);

/* Set the state; a change is logged (error when DOWN, notice when UP again). */
void cluster_status_set(enum cluster_engine e, enum cluster_state s, const char *error);
void cluster_status_backlog(enum cluster_engine e, int64_t n);
void cluster_status_get(enum cluster_engine e, struct cluster_status *out);
/* 1 when some configured engine is DOWN. */
int cluster_degraded(void);

#endif
