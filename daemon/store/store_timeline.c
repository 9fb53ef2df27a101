/*
 * store_timeline: SQL of the timeline's message-log reads.  See
 * store_timeline.h.  Each lookup has its index: the primary key,
 * message_log_qid (schema/001), message_log_message_id (schema/015).
 */
#include "store_timeline.h"
#include "store.h"
#include "store_internal.h"

#include <sqlite3.h>

#define TL_COLS "id, ts, qid, message_id, timeline, result, code, reason, check_name," \
	" entry, sender, recipients, client_addr, client_name"

static const char SQL_TL_ID[] =
	"SELECT " TL_COLS " FROM message_log WHERE id = ?1 LIMIT ?2";
static const char SQL_TL_QID[] =
	"SELECT " TL_COLS " FROM message_log WHERE qid = ?1 ORDER BY ts, id LIMIT ?2";
static const char SQL_TL_MSGID[] =
	"SELECT " TL_COLS " FROM message_log WHERE message_id = ?1 ORDER BY ts, id LIMIT ?2";

int store_timeline_logs(struct store *st, enum store_timeline_key key, int64_t id,
			const char *value, int limit,
			int (*cb)(const struct store_timeline_log *r, void *arg), void *arg)
{
	const char *sql = key == STORE_TL_ID ? SQL_TL_ID
			: key == STORE_TL_QID ? SQL_TL_QID : SQL_TL_MSGID;
	sqlite3_stmt *s = store_prepare(st, sql);
	struct store_timeline_log r;
	int rc;

	if (s == NULL)
		return -1;
	if (key == STORE_TL_ID)
		sqlite3_bind_int64(s, 1, id);
	else
		store_bind_text(s, 1, value);
	sqlite3_bind_int(s, 2, limit);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		r.id = sqlite3_column_int64(s, 0);
		r.ts = sqlite3_column_int64(s, 1);
		r.qid = store_col_text(s, 2);
		r.message_id = store_col_text(s, 3);
		r.timeline = store_col_text(s, 4);
		r.result = store_col_text(s, 5);
		r.code = store_col_text(s, 6);
		r.reason = store_col_text(s, 7);
		r.check_name = store_col_text(s, 8);
		r.entry = store_col_text(s, 9);
		r.sender = store_col_text(s, 10);
		r.recipients = store_col_text(s, 11);
		r.client_addr = store_col_text(s, 12);
		r.client_name = store_col_text(s, 13);
		if (cb(&r, arg) != 0) {
			rc = SQLITE_DONE;
			break;
		}
	}
	sqlite3_reset(s);
	return rc == SQLITE_DONE ? 0 : -1;
}
