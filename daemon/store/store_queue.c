/*
 * store_queue: SQL of the queue index (queue_message, queue_rcpt).
 */
#include "store.h"
#include "store_internal.h"

#include <sqlite3.h>
#include <stdio.h>

static const char SQL_QUEUE_MSG_INSERT[] =
	"INSERT INTO queue_message (qid, sender, client_addr, client_name, helo,"
	" auth_user, size, received_at, smtputf8, body_8bit)"
	" VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)";
static const char SQL_QUEUE_RCPT_INSERT[] =
	"INSERT OR IGNORE INTO queue_rcpt (qid, rcpt, next_attempt) VALUES (?1, ?2, ?3)";
static const char SQL_QUEUE_EXISTS[] = "SELECT 1 FROM queue_message WHERE qid = ?1";
static const char SQL_QUEUE_FOREACH[] = "SELECT qid FROM queue_message ORDER BY qid";
static const char SQL_QUEUE_MARK_LOST[] =
	"UPDATE queue_rcpt SET state = 'dead', last_error = ?2"
	" WHERE qid = ?1 AND state NOT IN ('done', 'dead')";

int store_queue_insert(struct store *st, const struct store_queue_msg *m,
		       char *err, size_t errsz)
{
	sqlite3_stmt *s = store_prepare(st, SQL_QUEUE_MSG_INSERT);
	size_t i;

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
		s = store_prepare(st, SQL_QUEUE_RCPT_INSERT);
		if (s == NULL)
			goto fail;
		store_bind_text(s, 1, m->qid);
		store_bind_text(s, 2, m->rcpts[i]);
		sqlite3_bind_int64(s, 3, m->received_at);
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
	int rc;

	if (s == NULL)
		return -1;
	store_bind_text(s, 1, qid);
	store_bind_text(s, 2, reason);
	rc = sqlite3_step(s);
	sqlite3_reset(s);
	return rc == SQLITE_DONE ? 0 : -1;
}
