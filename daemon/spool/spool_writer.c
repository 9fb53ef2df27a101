/*
 * spool_writer: the one thread that makes accepted mail durable and writes
 * the message log, so that neither fsync nor SQLite ever blocks the loop.
 *
 * Jobs go to a util/worker whose run_batch takes everything that is
 * waiting (up to WRITER_BATCH) and, for the commit jobs in it:
 *   1. flush + fdatasync each file, rename it incoming/ -> queue/
 *   2. fsync the spool directories once
 *   3. one SQLite transaction: queue rows of every file, message-log rows
 *   4. close (or remove) the files; the worker then reports each job back
 *      to the loop, where a commit is told to its session by id
 * A failure in 1 fails that job; a failure in 2 or 3 fails every commit of
 * the batch, and their files are removed: a client never gets 250 for a
 * message whose file or rows might not survive a crash.
 *
 * Ownership: a job owns its spool_file (until the batch closes it) and a
 * private copy of every string; done() on the loop frees the job.
 */
#include "spool.h"
#include "spool_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../log/log.h"
#include "../util/util.h"
#include "../util/worker.h"

#define WRITER_BATCH 512
#define FREE_SPACE_EVERY_S 1 /* statvfs of the spool at least this often */

enum job_kind { JOB_COMMIT, JOB_LOG };

struct job {
	struct worker_job wj;        /* first: the worker links jobs through it */
	enum job_kind kind;
	uint64_t session_id;
	struct spool_file *file;
	struct store_queue_msg msg;  /* JOB_COMMIT; strings in arena */
	struct store_log_entry log;  /* JOB_LOG; strings in arena */
	int ok;
	enum spool_err err;          /* why not ok */
	char *arena;
	unsigned char *disp;         /* msg.rcpt_disp, owned */
	const char **reasons;        /* msg.rcpt_reason, owned array (strings in arena) */
	const char **kinds;          /* msg.rcpt_kind, owned array (strings in arena) */
	const char **edits;          /* msg.rcpt_edit, owned array (strings in arena) */
	size_t nquarantine, nqueue;
};

struct spool_writer {
	struct worker *worker;
	spool_commit_done_fn done_fn;
	void *done_arg;

	struct spool *sp;
	struct store *st;
};

/* Arena copy helpers: size first, then copy, so each job is one block. */
static size_t str_size(const char *s)
{
	return s ? strlen(s) + 1 : 0;
}

static const char *str_copy(char **p, const char *s)
{
	size_t n;
	char *out;

	if (s == NULL)
		return NULL;
	n = strlen(s) + 1;
	out = *p;
	memcpy(out, s, n);
	*p += n;
	return out;
}

static void enqueue(struct spool_writer *w, struct job *j)
{
	worker_submit(w->worker, &j->wj);
}

void spool_writer_commit(struct spool_writer *w, struct spool_file *f,
			 const struct spool_envelope *env, uint64_t session_id)
{
	struct job *j = xcalloc(1, sizeof(*j));
	const char **rcpts;
	size_t total;
	size_t i;
	char *p;

	total = str_size(env->sender) + str_size(env->client_addr) +
		str_size(env->client_name) + str_size(env->helo) +
		str_size(env->auth_user) + str_size(spool_file_qid(f)) +
		str_size(env->subject) + str_size(env->message_id);
	for (i = 0; i < env->nrcpts; i++) {
		total += str_size(env->rcpts[i]);
		if (env->rcpt_reason != NULL)
			total += str_size(env->rcpt_reason[i]);
		if (env->rcpt_kind != NULL)
			total += str_size(env->rcpt_kind[i]);
		if (env->rcpt_edit != NULL)
			total += str_size(env->rcpt_edit[i]);
	}
	j->arena = xmalloc(total + env->nrcpts * sizeof(char *) + sizeof(char *));
	rcpts = (const char **)(void *)j->arena;
	p = j->arena + env->nrcpts * sizeof(char *) + sizeof(char *);
	for (i = 0; i < env->nrcpts; i++)
		rcpts[i] = str_copy(&p, env->rcpts[i]);

	j->kind = JOB_COMMIT;
	j->session_id = session_id;
	j->file = f;
	j->msg.qid = str_copy(&p, spool_file_qid(f));
	j->msg.sender = str_copy(&p, env->sender);
	j->msg.client_addr = str_copy(&p, env->client_addr);
	j->msg.client_name = str_copy(&p, env->client_name);
	j->msg.helo = str_copy(&p, env->helo);
	j->msg.auth_user = str_copy(&p, env->auth_user);
	j->msg.size = spool_file_size(f);
	j->msg.received_at = env->received_at;
	j->msg.smtputf8 = env->smtputf8;
	j->msg.body_8bit = env->body_8bit;
	j->msg.rcpts = rcpts;
	j->msg.nrcpts = env->nrcpts;
	j->msg.subject = str_copy(&p, env->subject);
	j->msg.message_id = str_copy(&p, env->message_id);
	j->msg.quarantine_expires_at =
		env->received_at + spool_quarantine_lifetime(spool_file_spool(f));
	if (env->rcpt_disp != NULL) {
		j->disp = xmalloc(env->nrcpts + 1);
		j->reasons = xcalloc(env->nrcpts + 1, sizeof(char *));
		j->kinds = xcalloc(env->nrcpts + 1, sizeof(char *));
		for (i = 0; i < env->nrcpts; i++) {
			j->disp[i] = env->rcpt_disp[i];
			if (env->rcpt_reason != NULL)
				j->reasons[i] = str_copy(&p, env->rcpt_reason[i]);
			if (env->rcpt_kind != NULL)
				j->kinds[i] = str_copy(&p, env->rcpt_kind[i]);
			if (j->disp[i] == SPOOL_RCPT_QUARANTINE)
				j->nquarantine++;
		}
		j->msg.rcpt_disp = j->disp;
		j->msg.rcpt_reason = j->reasons;
		j->msg.rcpt_kind = j->kinds;
	}
	if (env->rcpt_edit != NULL) {
		j->edits = xcalloc(env->nrcpts + 1, sizeof(char *));
		for (i = 0; i < env->nrcpts; i++)
			j->edits[i] = str_copy(&p, env->rcpt_edit[i]);
		j->msg.rcpt_edit = j->edits;
	}
	j->nqueue = env->nrcpts - j->nquarantine;
	enqueue(w, j);
}

void spool_writer_log(struct spool_writer *w, const struct store_log_entry *e)
{
	struct job *j = xcalloc(1, sizeof(*j));
	char *p;

	p = j->arena = xmalloc(str_size(e->session_id) + str_size(e->qid) +
			       str_size(e->client_addr) + str_size(e->client_name) +
			       str_size(e->helo) + str_size(e->sender) +
			       str_size(e->recipients_json) + str_size(e->result) +
			       str_size(e->code) + str_size(e->reason) +
			       str_size(e->check_name) + str_size(e->entry) +
			       str_size(e->auth_user) + str_size(e->tls) +
			       str_size(e->timeline_json) + str_size(e->message_id) +
			       str_size(e->score_json) + 1);
	j->kind = JOB_LOG;
	j->log = *e;
	j->log.session_id = str_copy(&p, e->session_id);
	j->log.qid = str_copy(&p, e->qid);
	j->log.client_addr = str_copy(&p, e->client_addr);
	j->log.client_name = str_copy(&p, e->client_name);
	j->log.helo = str_copy(&p, e->helo);
	j->log.sender = str_copy(&p, e->sender);
	j->log.recipients_json = str_copy(&p, e->recipients_json);
	j->log.result = str_copy(&p, e->result);
	j->log.code = str_copy(&p, e->code);
	j->log.reason = str_copy(&p, e->reason);
	j->log.check_name = str_copy(&p, e->check_name);
	j->log.entry = str_copy(&p, e->entry);
	j->log.auth_user = str_copy(&p, e->auth_user);
	j->log.tls = str_copy(&p, e->tls);
	j->log.timeline_json = str_copy(&p, e->timeline_json);
	j->log.message_id = str_copy(&p, e->message_id);
	j->log.score_json = str_copy(&p, e->score_json);
	enqueue(w, j);
}

static void fail_published(struct job **batch, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		struct job *j = batch[i];

		if (j->kind == JOB_COMMIT && j->ok) {
			spool_file_unpublish(j->file);
			j->ok = 0;
			j->err = SPOOL_ERR_IO;
		}
	}
}

static void process(struct spool_writer *w, struct job **batch, size_t n)
{
	char err[512];
	int commits = 0;
	size_t i;

	for (i = 0; i < n; i++) {
		struct job *j = batch[i];

		if (j->kind != JOB_COMMIT)
			continue;
		j->ok = spool_file_sync_and_publish(j->file, err, sizeof(err)) == 0;
		if (j->ok && j->nquarantine > 0 &&
		    spool_file_quarantine(j->file, err, sizeof(err)) < 0) {
			spool_file_unpublish(j->file);
			j->ok = 0;
		}
		if (!j->ok) {
			j->err = spool_file_error(j->file);
			log_error(j->msg.qid, "spool", "commit failed: %s", err);
		} else {
			commits++;
		}
	}
	if (commits > 0 && spool_sync_dirs(w->sp, err, sizeof(err)) < 0) {
		log_error(NULL, "spool", "commit failed: %s", err);
		fail_published(batch, n);
	}
	if (store_begin(w->st) < 0) {
		log_error(NULL, "store", "commit failed: cannot begin transaction");
		fail_published(batch, n);
		return;
	}
	for (i = 0; i < n; i++) {
		struct job *j = batch[i];

		if (j->kind == JOB_COMMIT && j->ok) {
			if (store_queue_insert(w->st, &j->msg, err, sizeof(err)) < 0) {
				log_error(j->msg.qid, "store", "commit failed: %s", err);
				store_rollback(w->st);
				fail_published(batch, n);
				return;
			}
		} else if (j->kind == JOB_LOG) {
			if (store_log_insert(w->st, &j->log, err, sizeof(err)) < 0)
				log_error(j->log.session_id, "store", "%s", err);
		}
	}
	if (store_commit(w->st) < 0) {
		log_error(NULL, "store", "commit failed: cannot commit transaction");
		store_rollback(w->st);
		fail_published(batch, n);
	}
}

/* Worker thread: the whole batch, then its files closed (or removed). */
static size_t run_batch(struct worker_job **jobs, size_t n, void *arg)
{
	struct spool_writer *w = arg;
	struct job **batch = (struct job **)(void *)jobs;
	size_t i;

	process(w, batch, n);
	for (i = 0; i < n; i++) {
		struct job *j = batch[i];

		if (j->kind != JOB_COMMIT)
			continue;
		/* Quarantined recipients only: the copy in quarantine/ is the message. */
		if (j->ok && j->nqueue == 0)
			spool_file_unqueue(j->file);
		if (j->ok)
			spool_file_close(j->file);
		else
			spool_file_discard(j->file);
		j->file = NULL;
		if (!j->ok && j->err == SPOOL_OK)
			j->err = SPOOL_ERR_IO;
	}
	spool_measure_free(w->sp);
	return n;
}

/* Idle: keep the free-space figure of the loop fresh. */
static void idle(void *arg)
{
	struct spool_writer *w = arg;

	spool_measure_free(w->sp);
}

/* Loop thread: tell the session (by id; it may be gone) and free the job. */
static void done(struct worker_job *wj, void *arg)
{
	struct spool_writer *w = arg;
	struct job *j = (struct job *)(void *)wj;

	if (j->kind == JOB_COMMIT)
		w->done_fn(j->session_id, j->msg.qid, j->ok ? SPOOL_OK : j->err, w->done_arg);
	free(j->disp);
	free(j->reasons);
	free(j->kinds);
	free(j->edits);
	free(j->arena);
	free(j);
}

struct spool_writer *spool_writer_start(struct event_base *base, struct spool *sp,
					const char *db_path, spool_commit_done_fn done_fn,
					void *arg, char *err, size_t errsz)
{
	static const struct worker_ops ops = {
		.run_batch = run_batch,
		.done = done,
		.idle = idle,
		.idle_ms = FREE_SPACE_EVERY_S * 1000,
		.batch_max = WRITER_BATCH,
	};
	struct spool_writer *w = xcalloc(1, sizeof(*w));

	w->st = store_open(db_path, 0, err, errsz);
	if (w->st == NULL) {
		free(w);
		return NULL;
	}
	w->sp = sp;
	w->done_fn = done_fn;
	w->done_arg = arg;
	w->worker = worker_new(base, "spool-writer", &ops, w, err, errsz);
	if (w->worker == NULL) {
		store_close(w->st);
		free(w);
		return NULL;
	}
	return w;
}

void spool_writer_stop(struct spool_writer *w)
{
	if (w == NULL)
		return;
	/* Finishes every queued job; the last outcomes reach sessions that
	 * are gone, which the callback copes with. */
	worker_free(w->worker);
	store_close(w->st);
	free(w);
}
