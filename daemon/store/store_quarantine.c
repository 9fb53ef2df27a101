/*
 * store_quarantine: SQL of the quarantine store.  See store_quarantine.h.
 *
 * The list, count and walk build their WHERE clause from the filter's
 * fields that are set, so that SQLite sees plain comparisons it can match
 * to an index (schema/014): "?1 IS NULL OR col = ?1" would defeat them.
 * Those statements are prepared per call (tens of microseconds); the
 * fixed ones are cached as everywhere else in the store.
 */
#include "store_quarantine.h"
#include "store.h"
#include "store_internal.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../util/util.h"

#define SQL_MAX 4096
#define BINDS_MAX (16 + STORE_QUARANTINE_IDS_MAX)

#define COLS "id, qid, rcpt, kind, reason, sender, subject, message_id, client_addr," \
	" size, created_at, expires_at"

struct bind {
	int text;
	const char *s;
	char *owned;       /* freed after the statement */
	int64_t n;
};

struct q {
	struct dynbuf sql;
	struct bind b[BINDS_MAX];
	int nb;
	int bad;           /* too many binds */
};

static void add_text(struct q *q, const char *s)
{
	if (q->nb == BINDS_MAX) {
		q->bad = 1;
		return;
	}
	q->b[q->nb].text = 1;
	q->b[q->nb].s = s;
	q->b[q->nb].owned = NULL;
	q->nb++;
}

static void add_owned(struct q *q, char *s)
{
	add_text(q, s);
	if (!q->bad)
		q->b[q->nb - 1].owned = s;
	else
		free(s);
}

static void add_int(struct q *q, int64_t n)
{
	if (q->nb == BINDS_MAX) {
		q->bad = 1;
		return;
	}
	q->b[q->nb].text = 0;
	q->b[q->nb].s = NULL;
	q->b[q->nb].owned = NULL;
	q->b[q->nb].n = n;
	q->nb++;
}

static void q_free(struct q *q)
{
	int i;

	for (i = 0; i < q->nb; i++)
		free(q->b[i].owned);
	dynbuf_free(&q->sql);
}

/* s as a LIKE pattern matching a substring: %, _ and \ escaped. */
static char *like_sub(const char *s)
{
	size_t n = strlen(s), i, o = 0;
	char *out = xmalloc(2 * n + 3);

	out[o++] = '%';
	for (i = 0; i < n; i++) {
		if (s[i] == '%' || s[i] == '_' || s[i] == '\\')
			out[o++] = '\\';
		out[o++] = s[i];
	}
	out[o++] = '%';
	out[o] = '\0';
	return out;
}

static char *lower_dup(const char *s, size_t n)
{
	char *out = xmalloc(n + 1);
	size_t i;

	for (i = 0; i < n; i++)
		out[i] = (s[i] >= 'A' && s[i] <= 'Z') ? (char)(s[i] - 'A' + 'a') : s[i];
	out[n] = '\0';
	return out;
}

/*
 * The scope: an end user's own addresses and the addresses of the groups
 * they manage.  One place, used by every read and change.
 */
#define SCOPE " rcpt IN (SELECT address FROM dir_address WHERE user_id = ?%d" \
	" UNION SELECT g.address FROM dir_group g JOIN dir_group_manager gm" \
	" ON gm.group_id = g.id WHERE gm.user_id = ?%d)"

static void where(struct q *q, const struct store_quarantine_filter *f)
{
	size_t i;

	dynbuf_addf(&q->sql, " WHERE 1");
	if (f->owner_user_id != 0) {
		add_int(q, f->owner_user_id);
		dynbuf_addf(&q->sql, " AND" SCOPE, q->nb, q->nb);
	}
	if (f->ids != NULL) {
		dynbuf_addf(&q->sql, " AND id IN (");
		for (i = 0; i < f->nids; i++) {
			add_int(q, f->ids[i]);
			dynbuf_addf(&q->sql, "%s?%d", i ? "," : "", q->nb);
		}
		dynbuf_addf(&q->sql, f->nids ? ")" : "NULL)");
	}
	if (f->rcpt != NULL) {
		add_owned(q, lower_dup(f->rcpt, strlen(f->rcpt)));
		dynbuf_addf(&q->sql, " AND rcpt = ?%d", q->nb);
	}
	if (f->sender != NULL) {
		size_t n = strlen(f->sender);

		if (n > 0 && f->sender[n - 1] == '*') {
			/* A prefix as a range of the lower(sender) index. */
			char *lo = lower_dup(f->sender, n - 1);
			char *hi = lower_dup(f->sender, n - 1);

			if (n - 1 == 0) {
				free(hi);
				free(lo);
			} else {
				add_owned(q, lo);
				dynbuf_addf(&q->sql, " AND lower(sender) >= ?%d", q->nb);
				hi = xrealloc(hi, n + 1);
				/* Every string with the prefix sorts below prefix + 0xFF (UTF-8 never has it). */
				hi[n - 1] = (char)0xFF;
				hi[n] = '\0';
				add_owned(q, hi);
				dynbuf_addf(&q->sql, " AND lower(sender) < ?%d", q->nb);
			}
		} else {
			add_owned(q, lower_dup(f->sender, n));
			dynbuf_addf(&q->sql, " AND lower(sender) = ?%d", q->nb);
		}
	}
	if (f->subject != NULL) {
		add_owned(q, like_sub(f->subject));
		dynbuf_addf(&q->sql, " AND subject LIKE ?%d ESCAPE '\\'", q->nb);
	}
	if (f->reason != NULL) {
		add_owned(q, like_sub(f->reason));
		dynbuf_addf(&q->sql, " AND reason LIKE ?%d ESCAPE '\\'", q->nb);
	}
	if (f->kind != NULL) {
		add_text(q, f->kind);
		dynbuf_addf(&q->sql, " AND kind = ?%d", q->nb);
	}
	if (f->qid != NULL) {
		add_text(q, f->qid);
		dynbuf_addf(&q->sql, " AND qid = ?%d", q->nb);
	}
	if (f->q != NULL) {
		char *p = like_sub(f->q);

		add_owned(q, p);
		dynbuf_addf(&q->sql, " AND (sender LIKE ?%d ESCAPE '\\' OR rcpt LIKE ?%d"
			    " ESCAPE '\\' OR subject LIKE ?%d ESCAPE '\\')", q->nb, q->nb, q->nb);
	}
	if (f->since != 0) {
		add_int(q, f->since);
		dynbuf_addf(&q->sql, " AND created_at >= ?%d", q->nb);
	}
	if (f->until != 0) {
		add_int(q, f->until);
		dynbuf_addf(&q->sql, " AND created_at < ?%d", q->nb);
	}
	if (f->expires_before != 0) {
		add_int(q, f->expires_before);
		dynbuf_addf(&q->sql, " AND expires_at <= ?%d", q->nb);
	}
	if (f->kind_not_in != NULL) {
		add_text(q, f->kind_not_in);
		dynbuf_addf(&q->sql, " AND instr(',' || ?%d || ',', ',' || kind || ',') = 0", q->nb);
	}
	if (f->after_id != 0) {
		add_int(q, f->after_id);
		dynbuf_addf(&q->sql, " AND id > ?%d", q->nb);
	}
}

static const char *sort_col(enum store_quarantine_sort s)
{
	switch (s) {
	case STORE_QS_EXPIRES:
		return "expires_at";
	case STORE_QS_SIZE:
		return "size";
	case STORE_QS_SENDER:
		return "lower(sender)";
	case STORE_QS_RECIPIENT:
		return "rcpt";
	case STORE_QS_SUBJECT:
		return "lower(subject)";
	case STORE_QS_CREATED:
		break;
	}
	return "created_at";
}

static int sort_numeric(enum store_quarantine_sort s)
{
	return s == STORE_QS_CREATED || s == STORE_QS_EXPIRES || s == STORE_QS_SIZE;
}

int store_quarantine_sort_parse(const char *name)
{
	static const char *const names[] = { "created_at", "expires_at", "size", "sender",
					     "recipient", "subject" };
	size_t i;

	for (i = 0; i < ARRAY_LEN(names); i++)
		if (strcmp(names[i], name) == 0)
			return (int)i;
	return -1;
}

/*
 * Cursor: "<id>.<key>" where key is the sort value of the last row — a
 * decimal number, or the lower-cased text in hexadecimal — so that the
 * next page starts right after that row even if it is gone meanwhile.
 */
void store_quarantine_cursor(const struct store_quarantine_row *r,
			     enum store_quarantine_sort sort, char *out, size_t outsz)
{
	const char *t = NULL;
	size_t o, i;
	int n;

	switch (sort) {
	case STORE_QS_CREATED:
		snprintf(out, outsz, "%lld.%lld", (long long)r->id, (long long)r->created_at);
		return;
	case STORE_QS_EXPIRES:
		snprintf(out, outsz, "%lld.%lld", (long long)r->id, (long long)r->expires_at);
		return;
	case STORE_QS_SIZE:
		snprintf(out, outsz, "%lld.%lld", (long long)r->id, (long long)r->size);
		return;
	case STORE_QS_SENDER:
		t = r->sender;
		break;
	case STORE_QS_RECIPIENT:
		t = r->rcpt;
		break;
	case STORE_QS_SUBJECT:
		t = r->subject;
		break;
	}
	n = snprintf(out, outsz, "%lld.", (long long)r->id);
	if (n < 0 || (size_t)n >= outsz)
		return;
	o = (size_t)n;
	for (i = 0; t[i] != '\0' && o + 3 <= outsz; i++) {
		unsigned char c = (unsigned char)t[i];

		if (c >= 'A' && c <= 'Z')
			c = (unsigned char)(c - 'A' + 'a');
		out[o++] = "0123456789abcdef"[c >> 4];
		out[o++] = "0123456789abcdef"[c & 15];
	}
	out[o] = '\0';
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Split a cursor; *text owned by the caller (NULL for numeric sorts). */
static int cursor_parse(const char *c, enum store_quarantine_sort sort, int64_t *id,
			int64_t *num, char **text)
{
	const char *dot = strchr(c, '.');
	size_t i, n;
	char *t;

	*text = NULL;
	if (dot == NULL || dot == c || dot - c > 18 || strspn(c, "0123456789") != (size_t)(dot - c))
		return -1;
	*id = strtoll(c, NULL, 10);
	if (sort_numeric(sort)) {
		const char *v = dot + 1;

		if (*v == '\0' || strlen(v) > 19 || strspn(v, "0123456789") != strlen(v))
			return -1;
		*num = strtoll(v, NULL, 10);
		return 0;
	}
	n = strlen(dot + 1);
	if (n % 2 != 0 || n > 2048)
		return -1;
	t = xmalloc(n / 2 + 1);
	for (i = 0; i < n / 2; i++) {
		int hi = hexval(dot[1 + 2 * i]), lo = hexval(dot[2 + 2 * i]);

		if (hi < 0 || lo < 0) {
			free(t);
			return -1;
		}
		t[i] = (char)(hi * 16 + lo);
	}
	t[n / 2] = '\0';
	*text = t;
	return 0;
}

int store_quarantine_cursor_valid(const char *cursor, enum store_quarantine_sort sort)
{
	int64_t id, num;
	char *t;

	if (cursor_parse(cursor, sort, &id, &num, &t) < 0)
		return 0;
	free(t);
	return 1;
}

static int run(struct store *st, struct q *q,
	       int (*cb)(const struct store_quarantine_row *r, void *arg), void *arg)
{
	struct store_quarantine_row r;
	sqlite3_stmt *s;
	int rc, i, pos = 0;

	if (q->bad || q->sql.data == NULL)
		return -1;
	if (sqlite3_prepare_v2(store_db(st), q->sql.data, -1, &s, NULL) != SQLITE_OK)
		return -1;
	for (i = 0; i < q->nb; i++) {
		int at = ++pos;

		if (q->b[i].text)
			sqlite3_bind_text(s, at, q->b[i].s, -1, SQLITE_STATIC);
		else
			sqlite3_bind_int64(s, at, q->b[i].n);
	}
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		r.id = sqlite3_column_int64(s, 0);
		r.qid = store_col_text(s, 1);
		r.rcpt = store_col_text(s, 2);
		r.kind = store_col_text(s, 3);
		r.reason = store_col_text(s, 4);
		r.sender = store_col_text(s, 5);
		r.subject = store_col_text(s, 6);
		r.message_id = store_col_text(s, 7);
		r.client_addr = store_col_text(s, 8);
		r.size = sqlite3_column_int64(s, 9);
		r.created_at = sqlite3_column_int64(s, 10);
		r.expires_at = sqlite3_column_int64(s, 11);
		if (cb != NULL && cb(&r, arg) != 0) {
			rc = SQLITE_DONE;
			break;
		}
	}
	sqlite3_finalize(s);
	return rc == SQLITE_DONE ? 0 : -1;
}

int store_quarantine_list(struct store *st, const struct store_quarantine_filter *f,
			  int (*cb)(const struct store_quarantine_row *r, void *arg), void *arg)
{
	const char *col = sort_col(f->sort);
	const char *dir = f->asc ? "ASC" : "DESC";
	struct q q;
	int rc;

	memset(&q, 0, sizeof(q));
	dynbuf_init(&q.sql, SQL_MAX + 8 * STORE_QUARANTINE_IDS_MAX);
	dynbuf_addf(&q.sql, "SELECT " COLS " FROM quarantine");
	where(&q, f);
	if (f->cursor != NULL) {
		int64_t id, num = 0;
		char *text;

		if (cursor_parse(f->cursor, f->sort, &id, &num, &text) < 0) {
			q_free(&q);
			return -1;
		}
		if (text != NULL)
			add_owned(&q, text);
		else
			add_int(&q, num);
		add_int(&q, id);
		dynbuf_addf(&q.sql, " AND (%s, id) %s (?%d, ?%d)", col, f->asc ? ">" : "<",
			    q.nb - 1, q.nb);
	}
	/*
	 * A substring filter (subject, reason, q) matches nothing an index can
	 * find.  Walking the sort column's index would then read the table row
	 * of every entry until a page is full: fast when most rows match, a
	 * random read of the whole table when few or none do (100 ms for
	 * 100,000 items).  The unary + keeps the sort off the index, so SQLite
	 * scans the table in order (or takes an index that narrows the rows,
	 * such as recipient or kind) and sorts the matches: bounded either way.
	 */
	dynbuf_addf(&q.sql, " ORDER BY %s%s %s, id %s",
		    f->subject != NULL || f->reason != NULL || f->q != NULL ? "+" : "", col, dir,
		    dir);
	if (f->limit > 0) {
		add_int(&q, f->limit);
		dynbuf_addf(&q.sql, " LIMIT ?%d", q.nb);
	}
	rc = run(st, &q, cb, arg);
	q_free(&q);
	return rc;
}

int store_quarantine_walk(struct store *st, const struct store_quarantine_filter *f,
			  int (*cb)(const struct store_quarantine_row *r, void *arg), void *arg)
{
	struct q q;
	int rc;

	memset(&q, 0, sizeof(q));
	dynbuf_init(&q.sql, SQL_MAX + 8 * STORE_QUARANTINE_IDS_MAX);
	dynbuf_addf(&q.sql, "SELECT " COLS " FROM quarantine");
	where(&q, f);
	/* The purge walks the expires_at index; everything else goes by id. */
	dynbuf_addf(&q.sql, f->expires_before != 0 ? " ORDER BY expires_at, id" : " ORDER BY id");
	if (f->limit > 0) {
		add_int(&q, f->limit);
		dynbuf_addf(&q.sql, " LIMIT ?%d", q.nb);
	}
	rc = run(st, &q, cb, arg);
	q_free(&q);
	return rc;
}

int store_quarantine_count(struct store *st, const struct store_quarantine_filter *f,
			   int64_t *n)
{
	sqlite3_stmt *s;
	struct q q;
	int rc, i, pos = 0;

	*n = 0;
	memset(&q, 0, sizeof(q));
	dynbuf_init(&q.sql, SQL_MAX + 8 * STORE_QUARANTINE_IDS_MAX);
	dynbuf_addf(&q.sql, "SELECT count(*) FROM quarantine");
	where(&q, f);
	if (q.bad || sqlite3_prepare_v2(store_db(st), q.sql.data, -1, &s, NULL) != SQLITE_OK) {
		q_free(&q);
		return -1;
	}
	for (i = 0; i < q.nb; i++) {
		int at = ++pos;

		if (q.b[i].text)
			sqlite3_bind_text(s, at, q.b[i].s, -1, SQLITE_STATIC);
		else
			sqlite3_bind_int64(s, at, q.b[i].n);
	}
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		*n = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	q_free(&q);
	return rc == SQLITE_ROW ? 0 : -1;
}

/* ---- changes ------------------------------------------------------------ */

static const char SQL_REMOVE[] = "DELETE FROM quarantine WHERE id = ?1";
static const char SQL_QID_ROWS[] = "SELECT count(*) FROM quarantine WHERE qid = ?1";
static const char SQL_QUEUE_HAS[] = "SELECT 1 FROM queue_message WHERE qid = ?1";
static const char SQL_QUEUE_ADD[] =
	"INSERT INTO queue_message (qid, sender, client_addr, client_name, helo, auth_user,"
	" size, received_at, smtputf8, body_8bit)"
	" VALUES (?1, ?2, ?3, ?4, ?5, NULL, ?6, ?7, ?8, ?9)";
/* Released: due now, and the queue lifetime counts from the release. */
static const char SQL_QUEUE_RCPT[] =
	"INSERT OR IGNORE INTO queue_rcpt (qid, rcpt, next_attempt, state, released_at, edit)"
	" VALUES (?1, ?2, ?3, 'queued', ?3, ?4)";
static const char SQL_POLICY_ADD[] =
	"INSERT OR IGNORE INTO policy_entry (id, list, value, comment, created)"
	" VALUES (moat_next_id('policy_entry'), ?1, ?2, ?3, ?4)";
static const char SQL_SETTING[] = "SELECT value FROM policy_setting WHERE key = ?1";
static const char SQL_QIDS[] = "SELECT DISTINCT qid FROM quarantine ORDER BY qid";
static const char SQL_REMOVE_QID[] = "DELETE FROM quarantine WHERE qid = ?1";

int store_quarantine_remove(struct store *st, int64_t id)
{
	sqlite3_stmt *s = store_prepare(st, SQL_REMOVE);

	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, id);
	return store_step_done(s);
}

int store_quarantine_qid_rows(struct store *st, const char *qid, int64_t *n)
{
	sqlite3_stmt *s = store_prepare(st, SQL_QID_ROWS);
	int rc;

	*n = 0;
	if (s == NULL)
		return -1;
	store_bind_text(s, 1, qid);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		*n = sqlite3_column_int64(s, 0);
	sqlite3_reset(s);
	return rc == SQLITE_ROW ? 0 : -1;
}

int store_quarantine_queue_has(struct store *st, const char *qid, int *has)
{
	sqlite3_stmt *s = store_prepare(st, SQL_QUEUE_HAS);
	int rc;

	*has = 0;
	if (s == NULL)
		return -1;
	store_bind_text(s, 1, qid);
	rc = sqlite3_step(s);
	*has = rc == SQLITE_ROW;
	sqlite3_reset(s);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -1;
}

int store_quarantine_queue_add(struct store *st, const struct store_quarantine_env *e)
{
	sqlite3_stmt *s = store_prepare(st, SQL_QUEUE_ADD);

	if (s == NULL)
		return -1;
	store_bind_text(s, 1, e->qid);
	store_bind_text(s, 2, e->sender);
	store_bind_text(s, 3, e->client_addr);
	store_bind_text(s, 4, e->client_name);
	store_bind_text(s, 5, e->helo);
	sqlite3_bind_int64(s, 6, e->size);
	sqlite3_bind_int64(s, 7, e->received_at);
	sqlite3_bind_int(s, 8, e->smtputf8);
	sqlite3_bind_int(s, 9, e->body_8bit);
	return store_step_done(s);
}

int store_quarantine_queue_rcpt(struct store *st, const char *qid, const char *rcpt,
				int64_t now, int *added)
{
	return store_quarantine_queue_rcpt_edit(st, qid, rcpt, NULL, now, added);
}

int store_quarantine_queue_rcpt_edit(struct store *st, const char *qid, const char *rcpt,
				     const char *edit, int64_t now, int *added)
{
	sqlite3_stmt *s = store_prepare(st, SQL_QUEUE_RCPT);

	*added = 0;
	if (s == NULL)
		return -1;
	store_bind_text(s, 1, qid);
	store_bind_text(s, 2, rcpt);
	sqlite3_bind_int64(s, 3, now);
	if (edit != NULL)
		store_bind_text(s, 4, edit);
	else
		sqlite3_bind_null(s, 4);
	if (store_step_done(s) < 0)
		return -1;
	*added = sqlite3_changes(store_db(st)) > 0;
	return 0;
}

int store_quarantine_policy_list_add(struct store *st, const char *list, const char *value,
				     const char *comment, int *added)
{
	sqlite3_stmt *s = store_prepare(st, SQL_POLICY_ADD);

	*added = 0;
	if (s == NULL)
		return -1;
	store_bind_text(s, 1, list);
	store_bind_text(s, 2, value);
	store_bind_text(s, 3, comment);
	sqlite3_bind_int64(s, 4, time_now_ms());
	if (store_step_done(s) < 0)
		return -1;
	*added = sqlite3_changes(store_db(st)) > 0;
	return 0;
}

int store_quarantine_setting(struct store *st, const char *key, const char *def,
			     char *out, size_t outsz)
{
	sqlite3_stmt *s = store_prepare(st, SQL_SETTING);
	int rc;

	strlcpy_s(out, def, outsz);
	if (s == NULL)
		return -1;
	store_bind_text(s, 1, key);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW && store_col_text(s, 0) != NULL)
		strlcpy_s(out, store_col_text(s, 0), outsz);
	sqlite3_reset(s);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -1;
}

int store_quarantine_qids(struct store *st, int (*cb)(const char *qid, void *arg),
			  void *arg)
{
	sqlite3_stmt *s;
	int rc;

	/* A private statement: cb may call other store functions. */
	if (sqlite3_prepare_v2(store_db(st), SQL_QIDS, -1, &s, NULL) != SQLITE_OK)
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

int store_quarantine_remove_qid(struct store *st, const char *qid, int *n)
{
	sqlite3_stmt *s = store_prepare(st, SQL_REMOVE_QID);

	*n = 0;
	if (s == NULL)
		return -1;
	store_bind_text(s, 1, qid);
	if (store_step_done(s) < 0)
		return -1;
	*n = sqlite3_changes(store_db(st));
	return 0;
}
