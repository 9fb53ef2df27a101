/*
 * store_quarantine: SQL of the quarantine index.  See store_quarantine.h.
 */
#include "store_quarantine.h"
#include "store.h"
#include "store_internal.h"

#include <sqlite3.h>

static const char SQL_LIST[] =
	"SELECT qid, rcpt, reason, sender, client_addr, size, created_at FROM quarantine"
	" WHERE (?1 IS NULL OR rcpt = ?1 COLLATE NOCASE)"
	" AND (?2 IS NULL OR sender = ?2 COLLATE NOCASE) AND (?3 IS NULL OR qid = ?3)"
	" ORDER BY created_at DESC, qid, rcpt LIMIT ?4 OFFSET ?5";

int store_quarantine_list(struct store *st, const struct store_quarantine_filter *f,
			  int (*cb)(const struct store_quarantine_row *r, void *arg), void *arg)
{
	sqlite3_stmt *s = store_prepare(st, SQL_LIST);
	struct store_quarantine_row r;
	int rc;

	if (s == NULL)
		return -1;
	store_bind_text(s, 1, f->rcpt);
	store_bind_text(s, 2, f->sender);
	store_bind_text(s, 3, f->qid);
	sqlite3_bind_int64(s, 4, f->limit);
	sqlite3_bind_int64(s, 5, f->offset);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		r.qid = store_col_text(s, 0);
		r.rcpt = store_col_text(s, 1);
		r.reason = store_col_text(s, 2);
		r.sender = store_col_text(s, 3);
		r.client_addr = store_col_text(s, 4);
		r.size = sqlite3_column_int64(s, 5);
		r.created_at = sqlite3_column_int64(s, 6);
		if (cb(&r, arg) != 0) {
			rc = SQLITE_DONE;
			break;
		}
	}
	sqlite3_reset(s);
	return rc == SQLITE_DONE ? 0 : -1;
}
