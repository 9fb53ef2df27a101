/*
 * store_queue: SQL of the queue index (queue_message, queue_rcpt): what the
 * spool writer inserts, what the queue runner leases and records, and the
 * bulk operations of the CLI.  Called from the writer thread, the queue
 * store thread and the CLI, each on its own connection.  Leasing walks the
 * index queue_rcpt_due(state, next_attempt) once per state: never a scan,
 * never the whole queue.
 */
#include "store.h"
#include "store_internal.h"

#define SPOOL_QID_MAX 64

#include <jansson.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../util/util.h"
#include "store_event.h"

static const char SQL_QUEUE_MSG_INSERT[] =
	"INSERT INTO queue_message (qid, sender, client_addr, client_name, helo,"
	" auth_user, size, received_at, smtputf8, body_8bit)"
	" VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)";
static const char SQL_QUEUE_RCPT_INSERT[] =
	"INSERT OR IGNORE INTO queue_rcpt (qid, rcpt, next_attempt, state, reason, seq, edit)"
	" VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
static const char SQL_QUARANTINE_INSERT[] =
	"INSERT OR IGNORE INTO quarantine (id, qid, rcpt, kind, reason, sender, subject, message_id,"
	" client_addr, size, created_at, expires_at)"
	" VALUES (moat_next_id('quarantine'), ?1, lower(?2), ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)";
static const char SQL_QUEUE_EXISTS[] = "SELECT 1 FROM queue_message WHERE qid = ?1";
static const char SQL_QUEUE_FOREACH[] = "SELECT qid FROM queue_message ORDER BY qid";
static const char SQL_QUEUE_MARK_LOST[] =
	"UPDATE queue_rcpt SET state = 'dead', last_error = ?2,"
	" final_at = CAST(strftime('%s', 'now') AS INTEGER) * 1000"
	" WHERE qid = ?1 AND state NOT IN ('done', 'dead')";

/* The quarantine.add event of recipient i, in the insert's transaction. */
static int quarantine_event(struct store *st, const struct store_queue_msg *m, size_t i,
			    const char *kind, const char *reason)
{
	struct store_event_row e;
	json_t *d = json_pack("{s:s, s:s}", "reason", reason, "kind", kind);
	char *detail = d != NULL ? json_dumps(d, JSON_COMPACT) : NULL;
	char rcpt[400];
	size_t k;
	int rc;

	json_decref(d);
	if (detail == NULL)
		return -1;
	strlcpy_s(rcpt, m->rcpts[i], sizeof(rcpt));
	for (k = 0; rcpt[k] != '\0'; k++)
		if (rcpt[k] >= 'A' && rcpt[k] <= 'Z')
			rcpt[k] = (char)(rcpt[k] - 'A' + 'a');
	memset(&e, 0, sizeof(e));
	e.ts = m->received_at;
	e.qid = m->qid;
	e.rcpt = rcpt;
	e.event = "quarantine.add";
	e.detail = detail;
	e.actor = "system";
	rc = store_event_add(st, &e);
	free(detail);
	return rc;
}

static const char *rcpt_edit(const struct store_queue_msg *m, size_t i)
{
	return m->rcpt_edit != NULL ? m->rcpt_edit[i] : NULL;
}

static int same_str(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

/*
 * The key of queued recipient i: seq counts the earlier queued entries of
 * the same address (a folder copy of an inbox delivery is seq 1).  -1 for
 * an exact repeat (same address, same edit): it is delivered once, as a
 * repeated RCPT TO always was.  Quadratic in the recipients of one
 * message, which max_recipients bounds.
 */
static int rcpt_seq(const struct store_queue_msg *m, size_t i, int *seq)
{
	size_t k;

	*seq = 0;
	for (k = 0; k < i; k++) {
		if (m->rcpt_disp != NULL && m->rcpt_disp[k] == 2)
			continue;
		if (strcmp(m->rcpts[k], m->rcpts[i]) != 0)
			continue;
		if (same_str(rcpt_edit(m, k), rcpt_edit(m, i)))
			return -1;
		(*seq)++;
	}
	return 0;
}

int store_queue_insert(struct store *st, const struct store_queue_msg *m,
		       char *err, size_t errsz)
{
	sqlite3_stmt *s;
	const char *kind, *reason;
	size_t i, queued = 0;

	for (i = 0; i < m->nrcpts; i++)
		if (m->rcpt_disp == NULL || m->rcpt_disp[i] != 2)
			queued++;
	for (i = 0; m->rcpt_disp != NULL && i < m->nrcpts; i++) {
		if (m->rcpt_disp[i] != 2)
			continue;
		s = store_prepare(st, SQL_QUARANTINE_INSERT);
		if (s == NULL)
			goto fail;
		kind = m->rcpt_kind != NULL && m->rcpt_kind[i] != NULL ? m->rcpt_kind[i] : "policy";
		reason = m->rcpt_reason && m->rcpt_reason[i] ? m->rcpt_reason[i] : "";
		store_bind_text(s, 1, m->qid);
		store_bind_text(s, 2, m->rcpts[i]);
		store_bind_text(s, 3, kind);
		store_bind_text(s, 4, reason);
		store_bind_text(s, 5, m->sender);
		store_bind_text(s, 6, m->subject != NULL ? m->subject : "");
		store_bind_text(s, 7, m->message_id != NULL ? m->message_id : "");
		store_bind_text(s, 8, m->client_addr);
		sqlite3_bind_int64(s, 9, m->size);
		sqlite3_bind_int64(s, 10, m->received_at);
		sqlite3_bind_int64(s, 11, m->quarantine_expires_at > 0 ? m->quarantine_expires_at
					  : m->received_at + (int64_t)14 * 86400000);
		if (store_step_done(s) < 0)
			goto fail;
		if (quarantine_event(st, m, i, kind, reason) < 0)
			goto fail;
	}
	/* Quarantined recipients only: no queue rows, the file lives in quarantine/. */
	if (queued == 0)
		return 0;
	s = store_prepare(st, SQL_QUEUE_MSG_INSERT);
	if (s == NULL)
		goto fail;
	store_bind_text(s, 1, m->qid);
	store_bind_text(s, 2, m->sender);
	store_bind_text(s, 3, m->client_addr);
	store_bind_text(s, 4, m->client_name);
	store_bind_text(s, 5, m->helo);
	store_bind_text(s, 6, m->auth_user);
	sqlite3_bind_int64(s, 7, m->size);
	sqlite3_bind_int64(s, 8, m->received_at);
	sqlite3_bind_int(s, 9, m->smtputf8);
	sqlite3_bind_int(s, 10, m->body_8bit);
	if (sqlite3_step(s) != SQLITE_DONE)
		goto fail;
	for (i = 0; i < m->nrcpts; i++) {
		int held = m->rcpt_disp != NULL && m->rcpt_disp[i] == 1;
		int seq;

		if (m->rcpt_disp != NULL && m->rcpt_disp[i] == 2)
			continue;
		if (rcpt_seq(m, i, &seq) < 0)
			continue; /* an exact repeat: one delivery */
		s = store_prepare(st, SQL_QUEUE_RCPT_INSERT);
		if (s == NULL)
			goto fail;
		store_bind_text(s, 1, m->qid);
		store_bind_text(s, 2, m->rcpts[i]);
		sqlite3_bind_int64(s, 3, m->received_at);
		store_bind_text(s, 4, held ? "held" : "queued");
		store_bind_text(s, 5, held && m->rcpt_reason ? m->rcpt_reason[i] : NULL);
		sqlite3_bind_int(s, 6, seq);
		store_bind_text(s, 7, rcpt_edit(m, i));
		if (sqlite3_step(s) != SQLITE_DONE)
			goto fail;
	}
	return 0;
fail:
	snprintf(err, errsz, "queue insert %s: %s", m->qid, store_errmsg(st));
	return -1;
}

int store_queue_exists(struct store *st, const char *qid, int *exists)
{
	sqlite3_stmt *s = store_prepare(st, SQL_QUEUE_EXISTS);
	int rc;

	if (s == NULL)
		return -1;
	store_bind_text(s, 1, qid);
	rc = sqlite3_step(s);
	*exists = rc == SQLITE_ROW;
	sqlite3_reset(s);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -1;
}

int store_queue_foreach(struct store *st, int (*cb)(const char *qid, void *arg),
			void *arg)
{
	sqlite3_stmt *s;
	int rc;

	/* A private statement: cb may call other store functions. */
	if (sqlite3_prepare_v2(store_db(st), SQL_QUEUE_FOREACH, -1, &s, NULL) != SQLITE_OK)
		return -1;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (cb((const char *)sqlite3_column_text(s, 0), arg) != 0) {
			rc = SQLITE_DONE;
			break;
		}
	}
	sqlite3_finalize(s);
	return rc == SQLITE_DONE ? 0 : -1;
}

int store_queue_mark_lost(struct store *st, const char *qid, const char *reason)
{
	sqlite3_stmt *s = store_prepare(st, SQL_QUEUE_MARK_LOST);

	if (s == NULL)
		return -1;
	store_bind_text(s, 1, qid);
	store_bind_text(s, 2, reason);
	return store_step_done(s);
}

/* ---- delivery queue ------------------------------------------------------ */

#define ROW_COLS \
	"r.qid, r.rcpt, r.state, m.sender, m.client_addr, m.auth_user, r.last_error," \
	" r.reason, r.route, m.size, m.received_at, r.next_attempt, r.released_at," \
	" coalesce(r.final_at, 0), r.attempts, m.smtputf8, m.body_8bit, r.seq, r.edit"

static const char SQL_RESET_LEASES[] =
	"UPDATE queue_rcpt SET leased = 0, next_attempt = ?1 WHERE leased = 1";
static const char SQL_DUE[] =
	"SELECT " ROW_COLS " FROM queue_rcpt r JOIN queue_message m ON m.qid = r.qid"
	" WHERE r.state = ?1 AND r.next_attempt <= ?2 ORDER BY r.next_attempt LIMIT ?3";
static const char SQL_LEASE[] =
	"UPDATE queue_rcpt SET leased = 1, next_attempt = ?3 WHERE qid = ?1 AND rcpt = ?2"
	" AND seq = ?4";
static const char SQL_NEXT_DUE[] =
	"SELECT min(next_attempt) FROM (SELECT min(next_attempt) AS next_attempt"
	" FROM queue_rcpt WHERE state = 'queued' UNION ALL"
	" SELECT min(next_attempt) FROM queue_rcpt WHERE state = 'deferred')";
static const char SQL_OUTCOME[] =
	"UPDATE queue_rcpt SET state = ?3, last_error = ?4, route = ?5, next_attempt = ?6,"
	" attempts = attempts + 1, leased = 0,"
	" final_at = CASE WHEN ?3 IN ('done', 'dead') THEN ?7 ELSE NULL END"
	" WHERE qid = ?1 AND rcpt = ?2 AND seq = ?8 AND state IN ('queued', 'deferred')";
static const char SQL_COUNTS[] =
	"SELECT coalesce(sum(state IN ('queued', 'deferred', 'held')), 0),"
	" coalesce(sum(state = 'dead'), 0) FROM queue_rcpt WHERE qid = ?1";
static const char SQL_DELETE_MSG[] = "DELETE FROM queue_message WHERE qid = ?1";
/*
 * A message is kept while one recipient is pending or died within the
 * retention; the candidates are its dead recipients past the retention,
 * read through the index queue_rcpt_final (schema/009), so the purge
 * costs what there is to purge, not the size of the queue.
 */
static const char SQL_PURGEABLE[] =
	"SELECT DISTINCT d.qid FROM queue_rcpt d WHERE d.state = 'dead' AND d.final_at <= ?1"
	" AND NOT EXISTS (SELECT 1 FROM queue_rcpt r WHERE r.qid = d.qid"
	" AND (r.state IN ('queued', 'deferred', 'held')"
	" OR (r.state = 'dead' AND r.final_at > ?1))) LIMIT ?2";

#define FILTER \
	" (?1 IS NULL OR r.qid = ?1) AND (?2 IS NULL OR lower(m.sender) = lower(?2))" \
	" AND (?3 IS NULL OR m.client_addr = ?3)" \
	" AND (?4 IS NULL OR lower(substr(r.rcpt, length(rtrim(r.rcpt, replace(r.rcpt, '@', '')))" \
	" + 1)) = lower(?4))" \
	" AND (?5 IS NULL OR instr(lower(coalesce(r.last_error, '') || ' ' ||" \
	" coalesce(r.reason, '')), lower(?5)) > 0)" \
	" AND (?6 IS NULL OR r.state = ?6) AND (?7 IS NULL OR m.received_at <= ?7)" \
	" AND (?20 IS NULL OR m.auth_user = ?20) AND (?21 IS NULL OR m.received_at >= ?21)" \
	" AND (?22 IS NULL OR EXISTS (SELECT 1 FROM account_state a" \
	" WHERE a.user = m.auth_user AND a.suspended != 0))"

static const char SQL_LIST[] =
	"SELECT " ROW_COLS " FROM queue_rcpt r JOIN queue_message m ON m.qid = r.qid"
	" WHERE" FILTER " ORDER BY m.received_at, r.qid, r.rcpt, r.seq LIMIT ?8";
static const char SQL_RELEASE[] =
	"UPDATE queue_rcpt AS r SET state = 'queued', next_attempt = ?8, released_at = ?8,"
	" leased = 0, reason = NULL, final_at = NULL FROM queue_message AS m"
	" WHERE m.qid = r.qid AND r.state IN ('held', 'dead') AND" FILTER;
static const char SQL_RETRY[] =
	"UPDATE queue_rcpt AS r SET next_attempt = ?8, leased = 0 FROM queue_message AS m"
	" WHERE m.qid = r.qid AND r.state IN ('queued', 'deferred') AND" FILTER;
static const char SQL_HOLD[] =
	"UPDATE queue_rcpt AS r SET state = 'held', reason = ?8, leased = 0"
	" FROM queue_message AS m"
	" WHERE m.qid = r.qid AND r.state IN ('queued', 'deferred') AND" FILTER;
static const char SQL_DELETE_QIDS[] =
	"SELECT DISTINCT r.qid FROM queue_rcpt r JOIN queue_message m ON m.qid = r.qid"
	" WHERE" FILTER;
static const char SQL_DELETE_RCPTS[] =
	"DELETE FROM queue_rcpt WHERE (qid, rcpt, seq) IN (SELECT r.qid, r.rcpt, r.seq"
	" FROM queue_rcpt r"
	" JOIN queue_message m ON m.qid = r.qid WHERE" FILTER ")";

static void read_row(sqlite3_stmt *s, struct store_queue_row *r)
{
	r->qid = store_col_text(s, 0);
	r->rcpt = store_col_text(s, 1);
	r->state = store_col_text(s, 2);
	r->sender = store_col_text(s, 3);
	r->client_addr = store_col_text(s, 4);
	r->auth_user = store_col_text(s, 5);
	r->last_error = store_col_text(s, 6);
	r->reason = store_col_text(s, 7);
	r->route = store_col_text(s, 8);
	r->size = sqlite3_column_int64(s, 9);
	r->received_at = sqlite3_column_int64(s, 10);
	r->next_attempt = sqlite3_column_int64(s, 11);
	r->released_at = sqlite3_column_int64(s, 12);
	r->final_at = sqlite3_column_int64(s, 13);
	r->attempts = sqlite3_column_int(s, 14);
	r->smtputf8 = sqlite3_column_int(s, 15);
	r->body_8bit = sqlite3_column_int(s, 16);
	r->seq = sqlite3_column_int(s, 17);
	r->edit = store_col_text(s, 18);
}

int store_queue_reset_leases(struct store *st, int64_t now)
{
	sqlite3_stmt *s = store_prepare(st, SQL_RESET_LEASES);

	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, now);
	return store_step_done(s);
}

int store_queue_lease_due(struct store *st, int64_t now, int64_t lease_until,
			  int limit, store_queue_row_fn cb, void *arg)
{
	static const char *const states[] = { "queued", "deferred" };
	size_t i;
	int taken = 0;

	for (i = 0; i < 2 && taken < limit; i++) {
		sqlite3_stmt *s = store_prepare(st, SQL_DUE);
		int rc;

		if (s == NULL)
			return -1;
		store_bind_text(s, 1, states[i]);
		sqlite3_bind_int64(s, 2, now);
		sqlite3_bind_int(s, 3, limit - taken);
		while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
			struct store_queue_row r;
			sqlite3_stmt *u;

			read_row(s, &r);
			cb(&r, arg);
			u = store_prepare(st, SQL_LEASE);
			if (u == NULL) {
				sqlite3_reset(s);
				return -1;
			}
			store_bind_text(u, 1, r.qid);
			store_bind_text(u, 2, r.rcpt);
			sqlite3_bind_int64(u, 3, lease_until);
			sqlite3_bind_int(u, 4, r.seq);
			if (sqlite3_step(u) != SQLITE_DONE) {
				sqlite3_reset(u);
				sqlite3_reset(s);
				return -1;
			}
			sqlite3_reset(u);
			taken++;
		}
		sqlite3_reset(s);
		if (rc != SQLITE_DONE)
			return -1;
	}
	return 0;
}

int store_queue_next_due(struct store *st, int64_t *when, int *found)
{
	sqlite3_stmt *s = store_prepare(st, SQL_NEXT_DUE);
	int rc;

	if (s == NULL)
		return -1;
	rc = sqlite3_step(s);
	*found = rc == SQLITE_ROW && sqlite3_column_type(s, 0) != SQLITE_NULL;
	*when = *found ? sqlite3_column_int64(s, 0) : 0;
	sqlite3_reset(s);
	return rc == SQLITE_ROW ? 0 : -1;
}

int store_queue_set_outcome(struct store *st, const char *qid, const char *rcpt, int seq,
			    enum store_outcome o, const char *text, const char *route,
			    int64_t next_attempt, int64_t now)
{
	sqlite3_stmt *s = store_prepare(st, SQL_OUTCOME);

	if (s == NULL)
		return -1;
	store_bind_text(s, 1, qid);
	store_bind_text(s, 2, rcpt);
	store_bind_text(s, 3, o == STORE_DONE ? "done" : o == STORE_DEAD ? "dead" : "deferred");
	store_bind_text(s, 4, text);
	store_bind_text(s, 5, route);
	sqlite3_bind_int64(s, 6, next_attempt);
	sqlite3_bind_int64(s, 7, now);
	sqlite3_bind_int(s, 8, seq);
	return store_step_done(s);
}

int store_queue_counts(struct store *st, const char *qid, int *pending, int *dead)
{
	sqlite3_stmt *s = store_prepare(st, SQL_COUNTS);
	int rc;

	if (s == NULL)
		return -1;
	store_bind_text(s, 1, qid);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		*pending = sqlite3_column_int(s, 0);
		*dead = sqlite3_column_int(s, 1);
	}
	sqlite3_reset(s);
	return rc == SQLITE_ROW ? 0 : -1;
}

int store_queue_delete_message(struct store *st, const char *qid)
{
	sqlite3_stmt *s = store_prepare(st, SQL_DELETE_MSG);

	if (s == NULL)
		return -1;
	store_bind_text(s, 1, qid);
	return store_step_done(s);
}

int store_queue_purgeable(struct store *st, int64_t dead_before, int limit,
			  int (*cb)(const char *qid, void *arg), void *arg)
{
	sqlite3_stmt *s = store_prepare(st, SQL_PURGEABLE);
	int rc;

	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, dead_before);
	sqlite3_bind_int(s, 2, limit);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW)
		cb(store_col_text(s, 0), arg);
	sqlite3_reset(s);
	return rc == SQLITE_DONE ? 0 : -1;
}

static void bind_filter(sqlite3_stmt *s, const struct store_queue_filter *f)
{
	store_bind_text(s, 1, f->qid);
	store_bind_text(s, 2, f->sender);
	store_bind_text(s, 3, f->client_addr);
	store_bind_text(s, 4, f->rcpt_domain);
	store_bind_text(s, 5, f->reason);
	store_bind_text(s, 6, f->state);
	if (f->received_before > 0)
		sqlite3_bind_int64(s, 7, f->received_before);
	else
		sqlite3_bind_null(s, 7);
	store_bind_text(s, 20, f->auth_user);
	if (f->received_after > 0)
		sqlite3_bind_int64(s, 21, f->received_after);
	else
		sqlite3_bind_null(s, 21);
	if (f->while_suspended)
		sqlite3_bind_int(s, 22, 1);
	else
		sqlite3_bind_null(s, 22);
}

int store_queue_list(struct store *st, const struct store_queue_filter *f,
		     store_queue_row_fn cb, void *arg)
{
	sqlite3_stmt *s = store_prepare(st, SQL_LIST);
	int rc;

	if (s == NULL)
		return -1;
	bind_filter(s, f);
	sqlite3_bind_int64(s, 8, f->limit > 0 ? f->limit : -1);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct store_queue_row r;

		read_row(s, &r);
		if (cb(&r, arg) != 0) {
			rc = SQLITE_DONE;
			break;
		}
	}
	sqlite3_reset(s);
	return rc == SQLITE_DONE ? 0 : -1;
}

static int run_filter(struct store *st, const char *sql, const struct store_queue_filter *f,
		      int64_t now, const char *text, int *n)
{
	sqlite3_stmt *s = store_prepare(st, sql);
	int rc;

	if (s == NULL)
		return -1;
	bind_filter(s, f);
	if (text != NULL)
		store_bind_text(s, 8, text);
	else
		sqlite3_bind_int64(s, 8, now);
	rc = sqlite3_step(s);
	sqlite3_reset(s);
	if (rc != SQLITE_DONE)
		return -1;
	*n = sqlite3_changes(store_db(st));
	return 0;
}

int store_queue_release(struct store *st, const struct store_queue_filter *f,
			int64_t now, int *n)
{
	return run_filter(st, SQL_RELEASE, f, now, NULL, n);
}

int store_queue_retry(struct store *st, const struct store_queue_filter *f,
		      int64_t now, int *n)
{
	return run_filter(st, SQL_RETRY, f, now, NULL, n);
}

int store_queue_hold(struct store *st, const struct store_queue_filter *f,
		     const char *reason, int *n)
{
	return run_filter(st, SQL_HOLD, f, 0, reason ? reason : "held by the administrator", n);
}

int store_queue_delete(struct store *st, const struct store_queue_filter *f, int *n,
		       int (*gone)(const char *qid, void *arg), void *arg)
{
	sqlite3_stmt *s = store_prepare(st, SQL_DELETE_QIDS);
	char (*qids)[SPOOL_QID_MAX] = NULL;
	size_t nq = 0;
	size_t cap = 0;
	size_t i;
	int rc;

	if (s == NULL)
		return -1;
	bind_filter(s, f);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (nq == cap) {
			cap = cap ? cap * 2 : 64;
			qids = xrealloc(qids, cap * sizeof(*qids));
		}
		strlcpy_s(qids[nq++], store_col_text(s, 0), SPOOL_QID_MAX);
	}
	sqlite3_reset(s);
	if (rc != SQLITE_DONE)
		goto fail;
	s = store_prepare(st, SQL_DELETE_RCPTS);
	if (s == NULL)
		goto fail;
	bind_filter(s, f);
	rc = sqlite3_step(s);
	sqlite3_reset(s);
	if (rc != SQLITE_DONE)
		goto fail;
	*n = sqlite3_changes(store_db(st));
	for (i = 0; i < nq; i++) {
		int pending = 0;
		int dead = 0;

		if (store_queue_counts(st, qids[i], &pending, &dead) < 0)
			goto fail;
		if (pending == 0 && dead == 0) {
			if (store_queue_delete_message(st, qids[i]) < 0)
				goto fail;
			gone(qids[i], arg);
		}
	}
	free(qids);
	return 0;
fail:
	free(qids);
	return -1;
}

/* Per group: distinct messages and recipient rows matching the filter (?1..?7, ?20, ?21). */
#define SUMMARY(KEY) \
	"SELECT " KEY ", count(DISTINCT r.qid), count(*) FROM queue_rcpt r" \
	" JOIN queue_message m ON m.qid = r.qid WHERE" FILTER \
	" GROUP BY 1 ORDER BY 3 DESC, 1 LIMIT ?8"
static const char SQL_SUM_STATE[] = SUMMARY("r.state");
static const char SQL_SUM_SENDER[] = SUMMARY("coalesce(m.sender, '')");
static const char SQL_SUM_CLIENT[] = SUMMARY("m.client_addr");
static const char SQL_SUM_DOMAIN[] =
	SUMMARY("lower(substr(r.rcpt, length(rtrim(r.rcpt, replace(r.rcpt, '@', ''))) + 1))");
static const char SQL_SUM_REASON[] =
	SUMMARY("coalesce(nullif(r.reason, ''), nullif(r.last_error, ''), '')");

int store_queue_summary(struct store *st, const struct store_queue_filter *f,
			enum store_queue_group group, int64_t limit,
			int (*cb)(const char *key, int64_t messages, int64_t rcpts, void *arg),
			void *arg)
{
	static const char *const sql[] = { SQL_SUM_STATE, SQL_SUM_SENDER, SQL_SUM_CLIENT,
					   SQL_SUM_DOMAIN, SQL_SUM_REASON };
	sqlite3_stmt *s;
	int rc;

	if ((unsigned)group >= sizeof(sql) / sizeof(sql[0]))
		return -1;
	s = store_prepare(st, sql[group]);
	if (s == NULL)
		return -1;
	bind_filter(s, f);
	sqlite3_bind_int64(s, 8, limit);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		const char *k = store_col_text(s, 0);

		if (cb(k ? k : "", sqlite3_column_int64(s, 1), sqlite3_column_int64(s, 2),
		       arg) != 0) {
			rc = SQLITE_DONE;
			break;
		}
	}
	sqlite3_reset(s);
	return rc == SQLITE_DONE ? 0 : -1;
}
