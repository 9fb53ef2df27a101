/*
 * cluster_status: the engines' states behind one mutex; written by the
 * engines' threads, read by HTTP threads.
 */
#include "cluster.h"

#include <pthread.h>
#include <string.h>

#include "../log/log.h"
#include "../util/util.h"

static pthread_mutex_t status_mu = PTHREAD_MUTEX_INITIALIZER;
static struct cluster_status status[CLUSTER_NENGINES];

const char *cluster_engine_name(enum cluster_engine e)
{
	return e == CLUSTER_PG ? "postgresql" : "redis";
}

const char *cluster_state_name(enum cluster_state s)
{
	return s == CLUSTER_UP ? "up" : s == CLUSTER_DOWN ? "down" : "off";
}

void cluster_status_set(enum cluster_engine e, enum cluster_state s, const char *error)
{
	enum cluster_state was;

	pthread_mutex_lock(&status_mu);
	was = status[e].state;
	if (was != s) {
		status[e].state = s;
		status[e].since_ms = time_now_ms();
		if (s == CLUSTER_DOWN)
			status[e].outages++;
	}
	strlcpy_s(status[e].error, error != NULL ? error : "", sizeof(status[e].error));
	pthread_mutex_unlock(&status_mu);
	if (was == s)
		return;
	if (s == CLUSTER_DOWN)
		log_error(NULL, "cluster", "CLUSTER DEGRADED %s unreachable: %s; going on alone",
			  cluster_engine_name(e), error != NULL ? error : "");
	else if (s == CLUSTER_UP)
		log_info(NULL, "cluster", "CLUSTER %s up%s", cluster_engine_name(e),
			 was == CLUSTER_DOWN ? " again: catching up" : "");
}

void cluster_status_backlog(enum cluster_engine e, int64_t n)
{
	pthread_mutex_lock(&status_mu);
	status[e].backlog = n;
	pthread_mutex_unlock(&status_mu);
}

void cluster_status_get(enum cluster_engine e, struct cluster_status *out)
{
	pthread_mutex_lock(&status_mu);
	*out = status[e];
	pthread_mutex_unlock(&status_mu);
}

int cluster_degraded(void)
{
	int i, down = 0;

	pthread_mutex_lock(&status_mu);
	for (i = 0; i < CLUSTER_NENGINES; i++)
		down |= status[i].state == CLUSTER_DOWN;
	pthread_mutex_unlock(&status_mu);
	return down;
}
