/*
 * store_log: SQL of the message log.  One INSERT per entry; the trigger of
 * schema/007 writes its message_log_rcpt rows (one per recipient, lower
 * case) in the same statement, so the recipient index never lags the log.
 * The SMTP conversation (schema/015) is a column of the same row: the
 * session's timeline costs no write of its own.
 */
#include "store.h"
#include "store_internal.h"

#include <sqlite3.h>
#include <stdio.h>

static const char SQL_LOG_INSERT[] =
	"INSERT INTO message_log (id, ts, session_id, qid, client_addr, client_name,"
	" helo, sender, recipients, size, result, code, reason, check_name, entry,"
	" auth_user, tls, timeline, message_id, score, score_parts)"
	" VALUES (moat_next_id('message_log'), ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11,"
	" ?12, ?13, ?14, ?15, ?16,"
	" ?17, ?18, ?19, ?20)";

int store_log_insert(struct store *st, const struct store_log_entry *e,
		     char *err, size_t errsz)
{
	sqlite3_stmt *s = store_prepare(st, SQL_LOG_INSERT);
	int rc;

	if (s == NULL)
		goto fail;
	sqlite3_bind_int64(s, 1, e->ts);
	store_bind_text(s, 2, e->session_id);
	store_bind_text(s, 3, e->qid);
	store_bind_text(s, 4, e->client_addr);
	store_bind_text(s, 5, e->client_name);
	store_bind_text(s, 6, e->helo);
	store_bind_text(s, 7, e->sender);
	store_bind_text(s, 8, e->recipients_json ? e->recipients_json : "[]");
	if (e->size >= 0)
		sqlite3_bind_int64(s, 9, e->size);
	else
		sqlite3_bind_null(s, 9);
	store_bind_text(s, 10, e->result);
	store_bind_text(s, 11, e->code);
	store_bind_text(s, 12, e->reason);
	store_bind_text(s, 13, e->check_name);
	store_bind_text(s, 14, e->entry);
	store_bind_text(s, 15, e->auth_user);
	store_bind_text(s, 16, e->tls);
	store_bind_text(s, 17, e->timeline_json);
	store_bind_text(s, 18, e->message_id);
	if (e->scored)
		sqlite3_bind_double(s, 19, e->score);
	else
		sqlite3_bind_null(s, 19);
	store_bind_text(s, 20, e->scored ? e->score_json : NULL);
	rc = sqlite3_step(s);
	sqlite3_reset(s);
	if (rc == SQLITE_DONE)
		return 0;
fail:
	snprintf(err, errsz, "message log insert: %s", store_errmsg(st));
	return -1;
}
