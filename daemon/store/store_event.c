/*
 * store_event: SQL of the message_event table.  See store_event.h.
 */
#include "store_event.h"
#include "store.h"
#include "store_internal.h"

#include <sqlite3.h>

#include "../util/util.h"

static const char SQL_EVENT_ADD[] =
	"INSERT INTO message_event (ts, qid, rcpt, event, detail, actor)"
	" VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
static const char SQL_EVENT_LIST[] =
	"SELECT id, ts, qid, rcpt, event, detail, actor FROM message_event"
	" WHERE qid = ?1 ORDER BY ts, id";
static const char SQL_EVENT_PURGE[] =
	"DELETE FROM message_event WHERE id IN"
	" (SELECT id FROM message_event WHERE ts < ?1 ORDER BY ts LIMIT ?2)";

int store_event_add(struct store *st, const struct store_event_row *e)
{
	sqlite3_stmt *s = store_prepare(st, SQL_EVENT_ADD);

	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, e->ts != 0 ? e->ts : time_now_ms());
	store_bind_text(s, 2, e->qid);
	store_bind_text(s, 3, e->rcpt);
	store_bind_text(s, 4, e->event);
	store_bind_text(s, 5, e->detail != NULL ? e->detail : "{}");
	store_bind_text(s, 6, e->actor);
	return store_step_done(s);
}

int store_event_list(struct store *st, const char *qid,
		     int (*cb)(const struct store_event_row *e, void *arg), void *arg)
{
	sqlite3_stmt *s = store_prepare(st, SQL_EVENT_LIST);
	struct store_event_row e;
	int rc;

	if (s == NULL)
		return -1;
	store_bind_text(s, 1, qid);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		e.id = sqlite3_column_int64(s, 0);
		e.ts = sqlite3_column_int64(s, 1);
		e.qid = store_col_text(s, 2);
		e.rcpt = store_col_text(s, 3);
		e.event = store_col_text(s, 4);
		e.detail = store_col_text(s, 5);
		e.actor = store_col_text(s, 6);
		if (cb(&e, arg) != 0) {
			rc = SQLITE_DONE;
			break;
		}
	}
	sqlite3_reset(s);
	return rc == SQLITE_DONE ? 0 : -1;
}

int store_event_purge(struct store *st, int64_t before_ms, int limit)
{
	sqlite3_stmt *s = store_prepare(st, SQL_EVENT_PURGE);

	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, before_ms);
	sqlite3_bind_int(s, 2, limit);
	if (store_step_done(s) < 0)
		return -1;
	return sqlite3_changes(store_db(st));
}
