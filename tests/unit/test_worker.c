/*
 * Unit tests for util/worker with a real event_base and a real thread:
 * jobs finish in order and done() runs on the loop thread; run_batch gets
 * every queued job at once and may finish only some (the rest come back
 * first, in its order); worker_free() runs what is still queued and hands
 * every job to done(); the idle hook runs when nothing comes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <cmocka.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "util/util.h"
#include "util/worker.h"

#define NJOBS 200

struct tjob {
	struct worker_job wj;
	int seq;
	pthread_t ran_on;
};

struct tctx {
	struct event_base *base;
	pthread_t loop_thread;
	int done_seq[NJOBS * 2];
	int ndone;
	int want;
	int done_off_loop;     /* done() seen on another thread */
	int run_on_loop;       /* run() seen on the loop thread */
	size_t batch_sizes[NJOBS];
	size_t nbatches;
	int finish_one;        /* run_batch finishes one job at a time, last first */
	pthread_mutex_t gate;  /* held by the test: the first run waits on it */
	int gated;
	int idles;
};

static struct tjob *new_job(int seq)
{
	struct tjob *j = xcalloc(1, sizeof(*j));

	j->seq = seq;
	return j;
}

static void t_run(struct worker_job *wj, void *arg)
{
	struct tctx *c = arg;
	struct tjob *j = (struct tjob *)(void *)wj;

	j->ran_on = pthread_self();
	if (pthread_equal(j->ran_on, c->loop_thread))
		c->run_on_loop = 1;
	if (c->gated && j->seq == 0) {
		pthread_mutex_lock(&c->gate);
		pthread_mutex_unlock(&c->gate);
	}
}

static size_t t_run_batch(struct worker_job **jobs, size_t n, void *arg)
{
	struct tctx *c = arg;
	size_t i;

	c->batch_sizes[c->nbatches++] = n;
	for (i = 0; i < n; i++)
		t_run(jobs[i], arg);
	if (c->finish_one && n > 1) {
		/* Reverse: the last taken finishes first, the rest go back reversed. */
		for (i = 0; i < n / 2; i++) {
			struct worker_job *t = jobs[i];

			jobs[i] = jobs[n - 1 - i];
			jobs[n - 1 - i] = t;
		}
		return 1;
	}
	return n;
}

static void t_done(struct worker_job *wj, void *arg)
{
	struct tctx *c = arg;
	struct tjob *j = (struct tjob *)(void *)wj;

	if (!pthread_equal(pthread_self(), c->loop_thread))
		c->done_off_loop = 1;
	c->done_seq[c->ndone++] = j->seq;
	free(j);
	if (c->ndone == c->want)
		event_base_loopbreak(c->base);
}

static void t_idle(void *arg)
{
	struct tctx *c = arg;

	__atomic_add_fetch(&c->idles, 1, __ATOMIC_SEQ_CST);
}

static void timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	event_base_loopbreak(arg);
}

/* Run the loop until every job is done, or 10 s. */
static void run_loop(struct tctx *c)
{
	struct timeval tv = { 10, 0 };
	struct event *t = evtimer_new(c->base, timeout_cb, c->base);

	evtimer_add(t, &tv);
	event_base_dispatch(c->base);
	event_free(t);
}

static void ctx_init(struct tctx *c, int want)
{
	memset(c, 0, sizeof(*c));
	c->base = event_base_new();
	c->loop_thread = pthread_self();
	c->want = want;
	pthread_mutex_init(&c->gate, NULL);
}

static void ctx_free(struct tctx *c)
{
	pthread_mutex_destroy(&c->gate);
	event_base_free(c->base);
}

static void test_run_in_order(void **state)
{
	struct worker_ops ops = { .run = t_run, .done = t_done };
	struct tctx c;
	struct worker *w;
	char err[128];
	int i;

	(void)state;
	ctx_init(&c, NJOBS);
	w = worker_new(c.base, "t-run", &ops, &c, err, sizeof(err));
	assert_non_null(w);
	for (i = 0; i < NJOBS; i++)
		worker_submit(w, &new_job(i)->wj);
	run_loop(&c);
	if (c.ndone != NJOBS)
		fail_msg("got %d done, want %d", c.ndone, NJOBS);
	for (i = 0; i < NJOBS; i++)
		if (c.done_seq[i] != i)
			fail_msg("done #%d: got job %d, want %d", i, c.done_seq[i], i);
	assert_int_equal(c.done_off_loop, 0);
	assert_int_equal(c.run_on_loop, 0);
	assert_int_equal(worker_pending(w), 0);
	worker_free(w);
	assert_int_equal(c.ndone, NJOBS);
	ctx_free(&c);
}

static void test_batch_takes_everything(void **state)
{
	struct worker_ops ops = { .run_batch = t_run_batch, .done = t_done };
	struct tctx c;
	struct worker *w;
	char err[128];
	int i;

	(void)state;
	ctx_init(&c, NJOBS);
	c.gated = 1;
	pthread_mutex_lock(&c.gate);
	w = worker_new(c.base, "t-batch", &ops, &c, err, sizeof(err));
	assert_non_null(w);
	worker_submit(w, &new_job(0)->wj);
	/* The thread takes job 0 and waits on the gate; the rest pile up. */
	while (worker_pending(w) != 0)
		;
	for (i = 1; i < NJOBS; i++)
		worker_submit(w, &new_job(i)->wj);
	assert_int_equal(worker_pending(w), NJOBS - 1);
	pthread_mutex_unlock(&c.gate);
	run_loop(&c);
	assert_int_equal(c.ndone, NJOBS);
	for (i = 0; i < NJOBS; i++)
		if (c.done_seq[i] != i)
			fail_msg("done #%d: got job %d, want %d", i, c.done_seq[i], i);
	if (c.nbatches != 2 || c.batch_sizes[0] != 1 || c.batch_sizes[1] != NJOBS - 1)
		fail_msg("got %zu batches (%zu, %zu), want 2 (1, %d)", c.nbatches,
			 c.batch_sizes[0], c.nbatches > 1 ? c.batch_sizes[1] : 0, NJOBS - 1);
	worker_free(w);
	ctx_free(&c);
}

static void test_batch_max_and_partial(void **state)
{
	struct worker_ops ops = { .run_batch = t_run_batch, .done = t_done, .batch_max = 4 };
	struct tctx c;
	struct worker *w;
	char err[128];
	int i;

	(void)state;
	ctx_init(&c, 5);
	c.gated = 1;
	c.finish_one = 1;
	pthread_mutex_lock(&c.gate);
	w = worker_new(c.base, "t-part", &ops, &c, err, sizeof(err));
	assert_non_null(w);
	worker_submit(w, &new_job(0)->wj);
	while (worker_pending(w) != 0)
		;
	for (i = 1; i < 5; i++)
		worker_submit(w, &new_job(i)->wj);
	pthread_mutex_unlock(&c.gate);
	run_loop(&c);
	/*
	 * Batches: [0]; [1 2 3 4] reversed, 4 finishes, [3 2 1] go back; [3 2 1]
	 * reversed, 1 finishes, [2 3] go back; reversed, 3 finishes; then [2].
	 */
	{
		static const int want[] = { 0, 4, 1, 3, 2 };

		assert_int_equal(c.ndone, 5);
		for (i = 0; i < 5; i++)
			if (c.done_seq[i] != want[i])
				fail_msg("done #%d: got job %d, want %d", i, c.done_seq[i], want[i]);
	}
	if (c.batch_sizes[1] != 4)
		fail_msg("second batch: got %zu jobs, want 4 (batch_max)", c.batch_sizes[1]);
	worker_free(w);
	ctx_free(&c);
}

static void test_free_runs_queued(void **state)
{
	struct worker_ops ops = { .run = t_run, .done = t_done };
	struct tctx c;
	struct worker *w;
	char err[128];
	int i;

	(void)state;
	ctx_init(&c, -1);
	c.gated = 1;
	pthread_mutex_lock(&c.gate);
	w = worker_new(c.base, "t-free", &ops, &c, err, sizeof(err));
	assert_non_null(w);
	for (i = 0; i < NJOBS; i++)
		worker_submit(w, &new_job(i)->wj);
	pthread_mutex_unlock(&c.gate);
	worker_free(w); /* the loop never ran: every done() comes from here */
	if (c.ndone != NJOBS)
		fail_msg("got %d done after worker_free, want %d", c.ndone, NJOBS);
	for (i = 0; i < NJOBS; i++)
		if (c.done_seq[i] != i)
			fail_msg("done #%d: got job %d, want %d", i, c.done_seq[i], i);
	ctx_free(&c);
}

static void test_idle_and_errors(void **state)
{
	struct worker_ops ops = { .run = t_run, .done = t_done, .idle = t_idle, .idle_ms = 20 };
	struct worker_ops bad = { .done = t_done };
	struct tctx c;
	struct worker *w;
	char err[128];
	int i;

	(void)state;
	ctx_init(&c, 0);
	err[0] = '\0';
	assert_null(worker_new(c.base, "t-bad", &bad, &c, err, sizeof(err)));
	assert_non_null(strstr(err, "run"));
	w = worker_new(c.base, "t-idle", &ops, &c, err, sizeof(err));
	assert_non_null(w);
	for (i = 0; i < 500 && __atomic_load_n(&c.idles, __ATOMIC_SEQ_CST) < 2; i++) {
		struct timespec ts = { 0, 10 * 1000 * 1000 };

		nanosleep(&ts, NULL);
	}
	if (__atomic_load_n(&c.idles, __ATOMIC_SEQ_CST) < 2)
		fail_msg("idle hook: got %d calls in 5 s, want >= 2", c.idles);
	worker_free(w);
	worker_free(NULL);
	ctx_free(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_run_in_order),
		cmocka_unit_test(test_batch_takes_everything),
		cmocka_unit_test(test_batch_max_and_partial),
		cmocka_unit_test(test_free_runs_queued),
		cmocka_unit_test(test_idle_and_errors),
	};

	if (evthread_use_pthreads() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
