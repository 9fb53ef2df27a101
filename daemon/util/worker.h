/*
 * worker: one thread with a job queue whose completions come back to the
 * event loop, in order.  Nothing slow runs on the loop: SQLite, fsync,
 * unlink, compiling rules go to a worker; the loop learns the result in
 * done().
 *
 * A job is the caller's struct with a struct worker_job as its first
 * member.  worker_submit() hands it over; the worker thread runs it, then
 * done() runs on the loop thread (one event_active per wake-up, however
 * many jobs finished) in the order the jobs finished, and done() owns the
 * job from then on (frees it).  Every submitted job gets exactly one
 * done(), also at worker_free().
 *
 * Two ways to run:
 *   run(job)                   one job at a time, oldest first;
 *   run_batch(jobs, n)         every queued job taken at once (at most
 *                              batch_max), for group commit: the spool
 *                              writer fsyncs and commits a whole batch in
 *                              one transaction.  It returns how many jobs
 *                              it finished, k >= 1; it may reorder jobs[]
 *                              first (the queue runner moves outcomes
 *                              ahead of a lease), and jobs[k..n) go back
 *                              to the front of the queue, in that order.
 *
 * Who uses it: spool_writer.c (run_batch: group commit) and
 * queue_runner.c (run_batch: outcomes first, then one lease or purge);
 * with run(): policy_content.c (the end-of-DATA content stage) and
 * smtp_auth.c (password checks), whose jobs carry the session id (never a
 * session pointer: the session may be gone when done() runs) so that done()
 * looks the session up and resumes it, or drops the answer; policy.c (the
 * snapshot watcher) and account_engine.c (totals, suspensions, read-back),
 * whose periodic work is a job a loop timer submits, re-armed in done() so
 * that one at most is under way.
 *
 * Threads: worker_submit(), worker_pending() may be called from any thread;
 * worker_new() and worker_free() from the loop thread.  The event base must
 * have threading enabled (evthread_use_pthreads()).
 */
#ifndef MOAT_WORKER_H
#define MOAT_WORKER_H

#include <stddef.h>

struct event_base;
struct worker;

struct worker_job {
	struct worker_job *next; /* the worker's link while the job is queued */
};

struct worker_ops {
	/* Worker thread; exactly one of run and run_batch is set. */
	void (*run)(struct worker_job *job, void *arg);
	size_t (*run_batch)(struct worker_job **jobs, size_t n, void *arg);
	/* Loop thread, once per job, in the order finished; owns job. */
	void (*done)(struct worker_job *job, void *arg);
	/* Worker thread, after idle_ms without work (and idle_ms > 0). */
	void (*idle)(void *arg);
	int idle_ms;
	size_t batch_max; /* run_batch: at most this many at once; 0: all */
};

/* Start the thread.  ops is copied; arg is passed to every callback. */
struct worker *worker_new(struct event_base *base, const char *name,
			  const struct worker_ops *ops, void *arg, char *err, size_t errsz);
/* Queue job (its first member a struct worker_job) for the worker thread. */
void worker_submit(struct worker *w, struct worker_job *job);
/* Jobs queued and not yet taken by the thread. */
size_t worker_pending(struct worker *w);
/* 1 once worker_free() has begun: a batch may skip optional work. */
int worker_stopping(struct worker *w);
/*
 * Run every job still queued, join the thread, then call done() for every
 * finished job on the calling thread (the loop), and free w.  NULL ok.
 */
void worker_free(struct worker *w);

#endif
