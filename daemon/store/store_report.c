/*
 * store_report: read-only SQL over the message log and the queue index for
 * the API (search, one entry, statistics over time, metrics).  See
 * store_auth.h ("message log, read side") for the contract.
 *
 * Search walks an index in the requested direction and filters; a cursor
 * is a keyset (ts, id) so deep pages cost the same as the first.
 * Absent filters are bound as NULL.  The recipient filter reads
 * message_log_rcpt (one lower-case row per recipient, filled by a trigger
 * on message_log); a row with invalid recipients JSON has none there.
 */
#include "store_auth.h"
#include "store_internal.h"

#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../util/util.h"

#define LOG_COLS "id, ts, session_id, qid, client_addr, client_name, helo, sender," \
	" recipients, coalesce(size, -1), result, code, reason, check_name, entry, auth_user, tls," \
	" score, score_parts"

/*
 * The chosen lead term picks the index: qid, client_addr or sender when
 * given (each index ends in ts, so it also yields the order), else ts.
 * The time range and the keyset's ts are folded into one [?1, ?2] range
 * on ts so that SQLite seeks to the page instead of scanning to it;
 * unbound ends are bound as the extreme values, not NULL.
 */
#define LOG_WHERE LOG_WHERE_T("ts")
#define LOG_WHERE_T(T) \
	" " T " >= ?1 AND " T " <= ?2" \
	" AND (?3 IS NULL OR client_addr = ?3)" \
	" AND (?4 IS NULL OR lower(sender) = lower(?4))" \
	" AND (?5 IS NULL OR id IN (SELECT log_id FROM message_log_rcpt" \
	" WHERE rcpt = lower(?5)))" \
	" AND (?6 IS NULL OR result = ?6)" \
	" AND (?7 IS NULL OR instr(lower(reason), lower(?7)) > 0)" \
	" AND (?8 IS NULL OR qid = ?8)" \
	" AND (?9 IS NULL OR check_name = ?9)" \
	" AND (?14 IS NULL OR auth_user = ?14)"
#define LOG_DESC " AND (ts < ?10 OR id < ?11)" \
	" ORDER BY ts DESC, id DESC LIMIT ?12 OFFSET ?13"
#define LOG_ASC " AND (ts > ?10 OR id > ?11)" \
	" ORDER BY ts ASC, id ASC LIMIT ?12 OFFSET ?13"
#define LOG_SELECT "SELECT " LOG_COLS " FROM message_log WHERE "
/*
 * Recipient search: the matching ids come from message_log_rcpt(rcpt, log_id)
 * (schema/007), the rows by rowid, then the few matches are sorted.
 */
#define LOG_RCPT_LEAD "id IN (SELECT log_id FROM message_log_rcpt WHERE rcpt = lower(?5)) AND"
#define LOG_DESC_SCAN " AND (ts < ?10 OR id < ?11)" \
	" ORDER BY +ts DESC, id DESC LIMIT ?12 OFFSET ?13"
#define LOG_ASC_SCAN " AND (ts > ?10 OR id > ?11)" \
	" ORDER BY +ts ASC, id ASC LIMIT ?12 OFFSET ?13"

static const char SQL_LOG_DESC[] = LOG_SELECT LOG_WHERE LOG_DESC;
static const char SQL_LOG_ASC[] = LOG_SELECT LOG_WHERE LOG_ASC;
static const char SQL_LOG_QID_DESC[] = LOG_SELECT "qid = ?8 AND" LOG_WHERE LOG_DESC;
static const char SQL_LOG_QID_ASC[] = LOG_SELECT "qid = ?8 AND" LOG_WHERE LOG_ASC;
static const char SQL_LOG_CLIENT_DESC[] = LOG_SELECT "client_addr = ?3 AND" LOG_WHERE LOG_DESC;
static const char SQL_LOG_CLIENT_ASC[] = LOG_SELECT "client_addr = ?3 AND" LOG_WHERE LOG_ASC;
/*
 * Sender search is case-insensitive (ASCII, like SQLite's lower()) and still
 * seeks message_log_sender(sender, ts): every spelling of the sender starts
 * with one of the case variants of its first SENDER_CASE_LETTERS letters, so
 * the candidates are the index ranges [variant, variant with its last letter
 * + 1) bound as the pairs ?15/?16 ... ?45/?46 (unused pairs NULL: empty),
 * filtered by lower(sender) and then sorted like the recipient search.  A
 * sender without letters has one spelling and keeps the plain equality.
 */
#define SENDER_CASE_LETTERS 4
#define SENDER_CASE_VARIANTS (1 << SENDER_CASE_LETTERS)
#define SENDER_CASE_PREFIX_MAX 320
#define LOG_SENDER_LEAD "id IN (SELECT m.id FROM (VALUES" \
	" (?15, ?16), (?17, ?18), (?19, ?20), (?21, ?22), (?23, ?24), (?25, ?26)," \
	" (?27, ?28), (?29, ?30), (?31, ?32), (?33, ?34), (?35, ?36), (?37, ?38)," \
	" (?39, ?40), (?41, ?42), (?43, ?44), (?45, ?46)) v, message_log m" \
	" WHERE m.sender >= v.column1 AND m.sender < v.column2" \
	" AND lower(m.sender) = lower(?4)) AND"
static const char SQL_LOG_SENDER_DESC[] = LOG_SELECT "sender = ?4 AND" LOG_WHERE LOG_DESC;
static const char SQL_LOG_SENDER_ASC[] = LOG_SELECT "sender = ?4 AND" LOG_WHERE LOG_ASC;
static const char SQL_LOG_SENDER_CI_DESC[] =
	LOG_SELECT LOG_SENDER_LEAD LOG_WHERE_T("+ts") LOG_DESC_SCAN;
static const char SQL_LOG_SENDER_CI_ASC[] =
	LOG_SELECT LOG_SENDER_LEAD LOG_WHERE_T("+ts") LOG_ASC_SCAN;
static const char SQL_LOG_AUTH_DESC[] = LOG_SELECT "auth_user = ?14 AND" LOG_WHERE LOG_DESC;
static const char SQL_LOG_AUTH_ASC[] = LOG_SELECT "auth_user = ?14 AND" LOG_WHERE LOG_ASC;
static const char SQL_LOG_RCPT_DESC[] =
	LOG_SELECT LOG_RCPT_LEAD LOG_WHERE_T("+ts") LOG_DESC_SCAN;
static const char SQL_LOG_RCPT_ASC[] =
	LOG_SELECT LOG_RCPT_LEAD LOG_WHERE_T("+ts") LOG_ASC_SCAN;
static const char SQL_LOG_GET[] = "SELECT " LOG_COLS " FROM message_log WHERE id = ?1";

static void read_row(sqlite3_stmt *s, struct store_log_row *r)
{
	r->id = sqlite3_column_int64(s, 0);
	r->ts = sqlite3_column_int64(s, 1);
	r->session_id = store_col_text(s, 2);
	r->qid = store_col_text(s, 3);
	r->client_addr = store_col_text(s, 4);
	r->client_name = store_col_text(s, 5);
	r->helo = store_col_text(s, 6);
	r->sender = store_col_text(s, 7);
	r->recipients = store_col_text(s, 8);
	r->size = sqlite3_column_int64(s, 9);
	r->result = store_col_text(s, 10);
	r->code = store_col_text(s, 11);
	r->reason = store_col_text(s, 12);
	r->check_name = store_col_text(s, 13);
	r->entry = store_col_text(s, 14);
	r->auth_user = store_col_text(s, 15);
	r->tls = store_col_text(s, 16);
	r->scored = sqlite3_column_type(s, 17) != SQLITE_NULL;
	r->score = sqlite3_column_double(s, 17);
	r->score_parts = store_col_text(s, 18);
}

static int each_row(sqlite3_stmt *s, int (*cb)(const struct store_log_row *r, void *arg),
		    void *arg, int *n)
{
	struct store_log_row r;
	int rc;

	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		read_row(s, &r);
		if (n != NULL)
			(*n)++;
		if (cb(&r, arg) != 0) {
			rc = SQLITE_DONE;
			break;
		}
	}
	sqlite3_reset(s);
	return rc == SQLITE_DONE ? 0 : -1;
}

static int is_ascii_letter(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

struct sender_ranges {
	int n;                   /* 0: the sender has no letter (or is too long) */
	char lo[SENDER_CASE_VARIANTS][SENDER_CASE_PREFIX_MAX + 1];
	char hi[SENDER_CASE_VARIANTS][SENDER_CASE_PREFIX_MAX + 1];
};

/* The index ranges that hold every case spelling of sender (see above). */
static void sender_ranges(const char *sender, struct sender_ranges *r)
{
	size_t pos[SENDER_CASE_LETTERS], len = 0, i;
	int k = 0, v, j;

	r->n = 0;
	for (i = 0; sender[i] != '\0' && k < SENDER_CASE_LETTERS; i++)
		if (is_ascii_letter((unsigned char)sender[i])) {
			pos[k++] = i;
			len = i + 1;
		}
	if (k == 0 || len > SENDER_CASE_PREFIX_MAX)
		return;
	for (v = 0; v < (1 << k); v++) {
		memcpy(r->lo[v], sender, len);
		r->lo[v][len] = '\0';
		for (j = 0; j < k; j++) {
			unsigned char c = (unsigned char)r->lo[v][pos[j]];

			c = (v & (1 << j)) ? (unsigned char)(c & ~0x20) : (unsigned char)(c | 0x20);
			r->lo[v][pos[j]] = (char)c;
		}
		memcpy(r->hi[v], r->lo[v], len + 1);
		/* the prefix ends in a letter, so + 1 stays a printable ASCII byte */
		r->hi[v][len - 1] = (char)(r->hi[v][len - 1] + 1);
	}
	r->n = 1 << k;
}

int store_report_messages(struct store *st, const struct store_log_filter *f,
			  int (*cb)(const struct store_log_row *r, void *arg), void *arg)
{
	struct sender_ranges *sr = NULL;
	const char *sql;
	sqlite3_stmt *s;
	int64_t lo, hi;
	int i, rc;

	if (f->qid != NULL) {
		sql = f->asc ? SQL_LOG_QID_ASC : SQL_LOG_QID_DESC;
	} else if (f->client != NULL) {
		sql = f->asc ? SQL_LOG_CLIENT_ASC : SQL_LOG_CLIENT_DESC;
	} else if (f->sender != NULL) {
		sr = xmalloc(sizeof(*sr));
		sender_ranges(f->sender, sr);
		if (sr->n > 0)
			sql = f->asc ? SQL_LOG_SENDER_CI_ASC : SQL_LOG_SENDER_CI_DESC;
		else
			sql = f->asc ? SQL_LOG_SENDER_ASC : SQL_LOG_SENDER_DESC;
	}
	else if (f->auth_user != NULL)
		sql = f->asc ? SQL_LOG_AUTH_ASC : SQL_LOG_AUTH_DESC;
	else if (f->rcpt != NULL)
		sql = f->asc ? SQL_LOG_RCPT_ASC : SQL_LOG_RCPT_DESC;
	else
		sql = f->asc ? SQL_LOG_ASC : SQL_LOG_DESC;
	s = store_prepare(st, sql);
	if (s == NULL) {
		free(sr);
		return -1;
	}
	lo = f->from > 0 ? f->from : INT64_MIN;
	hi = f->to > 0 ? f->to - 1 : INT64_MAX;
	if (f->has_cursor && f->asc && f->cursor_ts > lo)
		lo = f->cursor_ts;
	if (f->has_cursor && !f->asc && f->cursor_ts < hi)
		hi = f->cursor_ts;
	sqlite3_bind_int64(s, 1, lo);
	sqlite3_bind_int64(s, 2, hi);
	store_bind_text(s, 3, f->client);
	store_bind_text(s, 4, f->sender);
	store_bind_text(s, 5, f->rcpt);
	store_bind_text(s, 6, f->result);
	store_bind_text(s, 7, f->reason);
	store_bind_text(s, 8, f->qid);
	store_bind_text(s, 9, f->check_name);
	if (f->has_cursor) {
		sqlite3_bind_int64(s, 10, f->cursor_ts);
		sqlite3_bind_int64(s, 11, f->cursor_id);
	} else {
		sqlite3_bind_int64(s, 10, f->asc ? INT64_MIN : INT64_MAX);
		sqlite3_bind_int64(s, 11, f->asc ? INT64_MIN : INT64_MAX);
	}
	sqlite3_bind_int64(s, 12, f->limit);
	sqlite3_bind_int64(s, 13, f->offset);
	store_bind_text(s, 14, f->auth_user);
	if (sr != NULL && sr->n > 0)
		for (i = 0; i < SENDER_CASE_VARIANTS; i++) {
			store_bind_text(s, 15 + 2 * i, i < sr->n ? sr->lo[i] : NULL);
			store_bind_text(s, 16 + 2 * i, i < sr->n ? sr->hi[i] : NULL);
		}
	rc = each_row(s, cb, arg, NULL);
	/* SQLITE_STATIC bindings: clear them before the buffers go */
	sqlite3_clear_bindings(s);
	free(sr);
	return rc;
}

int store_report_message_get(struct store *st, int64_t id,
			     int (*cb)(const struct store_log_row *r, void *arg), void *arg,
			     int *found)
{
	sqlite3_stmt *s = store_prepare(st, SQL_LOG_GET);

	*found = 0;
	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, id);
	return each_row(s, cb, arg, found);
}

static const char SQL_STATS_RESULT[] =
	"SELECT (ts / ?3) * ?3 AS b, result, count(*) FROM message_log"
	" WHERE ts >= ?1 AND ts < ?2 GROUP BY b, result ORDER BY b, result";
static const char SQL_STATS_CHECK[] =
	"SELECT (ts / ?3) * ?3 AS b, check_name, count(*) FROM message_log"
	" WHERE ts >= ?1 AND ts < ?2 GROUP BY b, check_name ORDER BY b, check_name";

int store_report_stats(struct store *st, int64_t from, int64_t to, int64_t bucket_ms,
		       int by_check,
		       int (*cb)(int64_t bucket, const char *key, int64_t n, void *arg),
		       void *arg)
{
	sqlite3_stmt *s = store_prepare(st, by_check ? SQL_STATS_CHECK : SQL_STATS_RESULT);
	int rc;

	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, from);
	sqlite3_bind_int64(s, 2, to);
	sqlite3_bind_int64(s, 3, bucket_ms);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (cb(sqlite3_column_int64(s, 0), store_col_text(s, 1), sqlite3_column_int64(s, 2),
		       arg) != 0) {
			rc = SQLITE_DONE;
			break;
		}
	}
	sqlite3_reset(s);
	return rc == SQLITE_DONE ? 0 : -1;
}

/* The (check_name, ts) index of schema/006 bounds the rows read. */
static const char SQL_HARVEST[] =
	"SELECT client_addr,"
	" sum(check_name = 'unknown_recipient'),"
	" count(DISTINCT CASE WHEN check_name = 'unknown_recipient' THEN lower(recipients) END),"
	" sum(check_name = 'harvest'), min(ts), max(ts),"
	" EXISTS (SELECT 1 FROM policy_entry e WHERE e.list = 'conn_deny'"
	" AND e.value = client_addr)"
	" FROM message_log WHERE check_name IN ('unknown_recipient', 'harvest')"
	" AND ts >= ?1 AND ts < ?2"
	" GROUP BY client_addr ORDER BY 2 DESC, 4 DESC, client_addr LIMIT ?3";

int store_report_harvest(struct store *st, int64_t from, int64_t to, int64_t limit,
			 int (*cb)(const struct store_harvest_row *r, void *arg), void *arg)
{
	sqlite3_stmt *s = store_prepare(st, SQL_HARVEST);
	struct store_harvest_row r;
	int rc;

	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, from > 0 ? from : INT64_MIN);
	sqlite3_bind_int64(s, 2, to > 0 ? to : INT64_MAX);
	sqlite3_bind_int64(s, 3, limit);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		r.client_addr = store_col_text(s, 0);
		r.unknown = sqlite3_column_int64(s, 1);
		r.distinct_rcpts = sqlite3_column_int64(s, 2);
		r.deferred = sqlite3_column_int64(s, 3);
		r.first_ts = sqlite3_column_int64(s, 4);
		r.last_ts = sqlite3_column_int64(s, 5);
		r.denied = sqlite3_column_int(s, 6);
		if (cb(&r, arg) != 0) {
			rc = SQLITE_DONE;
			break;
		}
	}
	sqlite3_reset(s);
	return rc == SQLITE_DONE ? 0 : -1;
}

static const char SQL_LOG_COUNTS[] =
	"SELECT result, count(*) FROM message_log GROUP BY result ORDER BY result";
static const char SQL_QUEUE_COUNTS[] =
	"SELECT state, count(*) FROM queue_rcpt GROUP BY state ORDER BY state";

static int counts(struct store *st, const char *sql,
		  int (*cb)(const char *key, int64_t n, void *arg), void *arg)
{
	sqlite3_stmt *s = store_prepare(st, sql);
	int rc;

	if (s == NULL)
		return -1;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (cb(store_col_text(s, 0), sqlite3_column_int64(s, 1), arg) != 0) {
			rc = SQLITE_DONE;
			break;
		}
	}
	sqlite3_reset(s);
	return rc == SQLITE_DONE ? 0 : -1;
}

int store_report_log_counts(struct store *st,
			    int (*cb)(const char *key, int64_t n, void *arg), void *arg)
{
	return counts(st, SQL_LOG_COUNTS, cb, arg);
}

int store_report_queue_counts(struct store *st,
			      int (*cb)(const char *key, int64_t n, void *arg), void *arg)
{
	return counts(st, SQL_QUEUE_COUNTS, cb, arg);
}

/*
 * Top keys over [?1, ?2) on ts, optionally for one result (?3), at most ?4.
 * With a result the (result, ts) index bounds the rows read; without one,
 * the ts index.  Null keys (no check fired, no sender yet) are left out,
 * except the null sender, which counts as "".
 */
#define TOP_WHERE " WHERE ts >= ?1 AND ts < ?2 AND (?3 IS NULL OR result = ?3)"
#define TOP_TAIL " GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT ?4"
static const char SQL_TOP_CLIENT[] =
	"SELECT client_addr, count(*) FROM message_log" TOP_WHERE TOP_TAIL;
static const char SQL_TOP_SENDER[] =
	"SELECT sender, count(*) FROM message_log" TOP_WHERE " AND sender IS NOT NULL"
	TOP_TAIL;
static const char SQL_TOP_CHECK[] =
	"SELECT check_name, count(*) FROM message_log" TOP_WHERE
	" AND check_name IS NOT NULL" TOP_TAIL;
/* A message counts once per recipient domain (message_log_rcpt: lower case). */
static const char SQL_TOP_RCPT_DOMAIN[] =
	"SELECT d, count(*) FROM (SELECT DISTINCT r.log_id,"
	" substr(r.rcpt, length(rtrim(r.rcpt, replace(r.rcpt, '@', ''))) + 1) AS d"
	" FROM message_log JOIN message_log_rcpt r ON r.log_id = message_log.id" TOP_WHERE ")"
	" GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT ?4";

int store_report_top(struct store *st, enum store_top_by by, int64_t from, int64_t to,
		     const char *result, int64_t limit,
		     int (*cb)(const char *key, int64_t n, void *arg), void *arg)
{
	static const char *const sql[] = { SQL_TOP_CLIENT, SQL_TOP_SENDER,
					   SQL_TOP_RCPT_DOMAIN, SQL_TOP_CHECK };
	sqlite3_stmt *s;
	int rc;

	if ((unsigned)by >= sizeof(sql) / sizeof(sql[0]))
		return -1;
	s = store_prepare(st, sql[by]);
	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, from > 0 ? from : INT64_MIN);
	sqlite3_bind_int64(s, 2, to > 0 ? to : INT64_MAX);
	store_bind_text(s, 3, result);
	sqlite3_bind_int64(s, 4, limit);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		const char *k = store_col_text(s, 0);

		if (cb(k ? k : "", sqlite3_column_int64(s, 1), arg) != 0) {
			rc = SQLITE_DONE;
			break;
		}
	}
	sqlite3_reset(s);
	return rc == SQLITE_DONE ? 0 : -1;
}
