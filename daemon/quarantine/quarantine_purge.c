/*
 * quarantine_purge: see quarantine_purge.h.  The worker owns its store
 * connection; the loop only arms the timer and frees jobs.
 */
#include "quarantine_purge.h"
#include "quarantine_admin.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../log/log.h"
#include "../store/store.h"
#include "../util/util.h"
#include "../util/worker.h"

#define PURGE_MAX_ITEMS 100000 /* per run; the next run takes the rest */

struct purge_job {
	struct worker_job wj;   /* first: the worker links jobs through it */
	int removed;
};

struct quarantine_purger {
	struct worker *worker;
	struct event *timer;
	struct store *st;       /* the worker thread's */
	char data_dir[1100];
	int64_t interval_ms;
	int busy;
};

static void run(struct worker_job *wj, void *arg)
{
	struct quarantine_purger *p = arg;
	struct purge_job *j = (struct purge_job *)(void *)wj;
	char err[300];
	int64_t t0 = time_mono_ms();

	j->removed = quarantine_purge(p->st, p->data_dir, time_now_ms(), PURGE_MAX_ITEMS, err,
				      sizeof(err));
	if (j->removed < 0)
		log_error(NULL, "quarantine", "purge failed: %s", err);
	else if (j->removed > 0)
		log_info(NULL, "quarantine", "purge expired=%d ms=%lld", j->removed,
			 (long long)(time_mono_ms() - t0));
}

static void arm(struct quarantine_purger *p)
{
	struct timeval tv;

	tv.tv_sec = p->interval_ms / 1000;
	tv.tv_usec = (p->interval_ms % 1000) * 1000;
	evtimer_add(p->timer, &tv);
}

static void done(struct worker_job *wj, void *arg)
{
	struct quarantine_purger *p = arg;

	free(wj);
	p->busy = 0;
	if (p->timer != NULL)
		arm(p);
}

static void tick(evutil_socket_t fd, short what, void *arg)
{
	struct quarantine_purger *p = arg;
	struct purge_job *j;

	(void)fd;
	(void)what;
	if (p->busy)
		return;
	p->busy = 1;
	j = xcalloc(1, sizeof(*j));
	worker_submit(p->worker, &j->wj);
}

struct quarantine_purger *quarantine_purger_start(struct event_base *base,
						  const char *db_path, const char *data_dir,
						  int64_t interval_ms, char *err, size_t errsz)
{
	static const struct worker_ops ops = { .run = run, .done = done };
	struct quarantine_purger *p = xcalloc(1, sizeof(*p));

	p->st = store_open(db_path, 0, err, errsz);
	if (p->st == NULL) {
		free(p);
		return NULL;
	}
	strlcpy_s(p->data_dir, data_dir, sizeof(p->data_dir));
	p->interval_ms = interval_ms > 0 ? interval_ms : 300000;
	p->worker = worker_new(base, "quarantine-purge", &ops, p, err, errsz);
	if (p->worker == NULL) {
		store_close(p->st);
		free(p);
		return NULL;
	}
	p->timer = evtimer_new(base, tick, p);
	/* The first run soon after start: items may have expired while down. */
	{
		struct timeval tv = { 1, 0 };

		evtimer_add(p->timer, &tv);
	}
	return p;
}

void quarantine_purger_free(struct quarantine_purger *p)
{
	if (p == NULL)
		return;
	event_free(p->timer);
	p->timer = NULL;
	worker_free(p->worker); /* runs done() of a job under way; timer not re-armed */
	store_close(p->st);
	free(p);
}
