/*
 * worker: a thread, a mutex-protected FIFO of jobs in, a FIFO of finished
 * jobs out, and one event that the thread activates so that the loop calls
 * done() for everything finished since its last wake-up (see worker.h).
 *
 * A job is linked through its struct worker_job: in the queue while
 * waiting, in the done list after running; it is never in both.  The
 * thread holds the mutex only to move links, never while a job runs.
 * At worker_free() the thread drains the queue before it exits, so no
 * submitted job is lost; done() of the last ones runs on the caller.
 */
#include "worker.h"

#include <event2/event.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util.h"

struct worker {
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cond;
	struct worker_job *head;
	struct worker_job **tail;
	size_t pending;
	int stopping;

	struct worker_job *done_head;
	struct worker_job **done_tail;
	struct event *done_ev;

	struct worker_ops ops;
	void *arg;
	char name[16];

	struct worker_job **taken; /* the batch being run (thread only) */
	size_t taken_cap;
};

void worker_submit(struct worker *w, struct worker_job *job)
{
	job->next = NULL;
	pthread_mutex_lock(&w->mu);
	*w->tail = job;
	w->tail = &job->next;
	w->pending++;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->mu);
}

size_t worker_pending(struct worker *w)
{
	size_t n;

	pthread_mutex_lock(&w->mu);
	n = w->pending;
	pthread_mutex_unlock(&w->mu);
	return n;
}

int worker_stopping(struct worker *w)
{
	int s;

	pthread_mutex_lock(&w->mu);
	s = w->stopping;
	pthread_mutex_unlock(&w->mu);
	return s;
}

/* Wait for work (mu held); 0 when there is some, -1 when stopped and drained. */
static int wait_for_work(struct worker *w)
{
	while (w->head == NULL && !w->stopping) {
		struct timespec ts;

		if (w->ops.idle == NULL || w->ops.idle_ms <= 0) {
			pthread_cond_wait(&w->cond, &w->mu);
			continue;
		}
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += w->ops.idle_ms / 1000;
		ts.tv_nsec += (long)(w->ops.idle_ms % 1000) * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		if (pthread_cond_timedwait(&w->cond, &w->mu, &ts) != 0 && w->head == NULL &&
		    !w->stopping) {
			pthread_mutex_unlock(&w->mu);
			w->ops.idle(w->arg);
			pthread_mutex_lock(&w->mu);
		}
	}
	return w->head != NULL ? 0 : -1;
}

/* Take up to max queued jobs into w->taken (mu held); how many. */
static size_t take(struct worker *w, size_t max)
{
	size_t n = 0;

	while (w->head != NULL && (max == 0 || n < max)) {
		struct worker_job *j = w->head;

		w->head = j->next;
		j->next = NULL;
		if (n == w->taken_cap) {
			w->taken_cap = w->taken_cap ? w->taken_cap * 2 : 64;
			w->taken = xrealloc(w->taken, w->taken_cap * sizeof(*w->taken));
		}
		w->taken[n++] = j;
	}
	if (w->head == NULL)
		w->tail = &w->head;
	w->pending -= n;
	return n;
}

/* jobs[0..k) finished, jobs[k..n) back to the front of the queue. */
static void settle(struct worker *w, size_t k, size_t n)
{
	struct worker_job *front = NULL;
	struct worker_job **ft = &front;
	size_t i;

	pthread_mutex_lock(&w->mu);
	for (i = 0; i < k; i++) {
		w->taken[i]->next = NULL;
		*w->done_tail = w->taken[i];
		w->done_tail = &w->taken[i]->next;
	}
	for (i = k; i < n; i++) {
		*ft = w->taken[i];
		ft = &w->taken[i]->next;
	}
	if (front != NULL) {
		*ft = w->head;
		if (w->head == NULL)
			w->tail = ft;
		w->head = front;
		w->pending += n - k;
	}
	pthread_mutex_unlock(&w->mu);
	if (k > 0)
		event_active(w->done_ev, EV_READ, 0);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;

	for (;;) {
		size_t n;
		size_t k;

		pthread_mutex_lock(&w->mu);
		if (wait_for_work(w) < 0) {
			pthread_mutex_unlock(&w->mu);
			break;
		}
		n = take(w, w->ops.run_batch != NULL ? w->ops.batch_max : 1);
		pthread_mutex_unlock(&w->mu);

		if (w->ops.run_batch != NULL) {
			k = w->ops.run_batch(w->taken, n, w->arg);
			/* A batch that finishes nothing would spin forever. */
			if (k == 0 || k > n)
				abort();
		} else {
			w->ops.run(w->taken[0], w->arg);
			k = 1;
		}
		settle(w, k, n);
	}
	return NULL;
}

static void done_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;
	struct worker_job *list;

	(void)fd;
	(void)what;
	pthread_mutex_lock(&w->mu);
	list = w->done_head;
	w->done_head = NULL;
	w->done_tail = &w->done_head;
	pthread_mutex_unlock(&w->mu);
	while (list != NULL) {
		struct worker_job *next = list->next;

		w->ops.done(list, w->arg); /* list may be freed after this call */
		list = next;
	}
}

struct worker *worker_new(struct event_base *base, const char *name,
			  const struct worker_ops *ops, void *arg, char *err, size_t errsz)
{
	struct worker *w = xcalloc(1, sizeof(*w));

	if ((ops->run == NULL) == (ops->run_batch == NULL) || ops->done == NULL) {
		snprintf(err, errsz, "worker %s: give run or run_batch, and done", name);
		free(w);
		return NULL;
	}
	w->ops = *ops;
	w->arg = arg;
	strlcpy_s(w->name, name, sizeof(w->name));
	w->tail = &w->head;
	w->done_tail = &w->done_head;
	w->done_ev = event_new(base, -1, 0, done_cb, w);
	if (w->done_ev == NULL) {
		snprintf(err, errsz, "worker %s: cannot create its event", name);
		free(w);
		return NULL;
	}
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cond, NULL);
	if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
		snprintf(err, errsz, "worker %s: cannot start its thread", name);
		event_free(w->done_ev);
		pthread_mutex_destroy(&w->mu);
		pthread_cond_destroy(&w->cond);
		free(w);
		return NULL;
	}
	pthread_setname_np(w->thread, w->name);
	return w;
}

void worker_free(struct worker *w)
{
	if (w == NULL)
		return;
	pthread_mutex_lock(&w->mu);
	w->stopping = 1;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->mu);
	pthread_join(w->thread, NULL);
	/* The thread drained the queue; hand back what it finished. */
	done_cb(-1, 0, w);
	event_free(w->done_ev);
	pthread_mutex_destroy(&w->mu);
	pthread_cond_destroy(&w->cond);
	free(w->taken);
	free(w);
}
