/*
 * store_greylist: SQL of greylisting.  See store_greylist.h.
 *
 * The check's statements are fixed and cached.  The list and its count
 * build their WHERE clause from the filter's fields that are set, so that
 * SQLite sees plain comparisons it can match to an index (schema/021);
 * those two are prepared per call, as store_quarantine does.
 */
#include "store_greylist.h"
#include "store.h"
#include "store_internal.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../util/util.h"

#define COLS "id, network, sender, rcpt, first_seen, last_seen, attempts, passed_at, passes," \
	" expires"
#define NET_COLS "id, network, passes, first_seen, last_seen, expires"

static const char SQL_GET[] =
	"SELECT " COLS " FROM greylist_triplet WHERE network = ?1 AND sender = ?2 AND rcpt = ?3";
static const char SQL_START[] =
	"INSERT INTO greylist_triplet (network, sender, rcpt, first_seen, last_seen, attempts,"
	" passed_at, passes, expires) VALUES (?1, ?2, ?3, ?4, ?4, 1, 0, 0, ?5)"
	" ON CONFLICT (network, sender, rcpt) DO UPDATE SET first_seen = ?4, last_seen = ?4,"
	" attempts = 1, passed_at = 0, passes = 0, expires = ?5";
static const char SQL_RETRY[] =
	"UPDATE greylist_triplet SET last_seen = ?2, attempts = attempts + 1 WHERE id = ?1";
static const char SQL_PASS[] =
	"UPDATE greylist_triplet SET last_seen = ?2, attempts = attempts + 1, passed_at = ?2,"
	" passes = 1, expires = ?3 WHERE id = ?1";
static const char SQL_USE[] =
	"UPDATE greylist_triplet SET last_seen = ?2, passes = passes + 1, expires = ?3"
	" WHERE id = ?1";
static const char SQL_NET_GET[] =
	"SELECT " NET_COLS " FROM greylist_network WHERE network = ?1";
static const char SQL_NET_PASS[] =
	"INSERT INTO greylist_network (network, passes, first_seen, last_seen, expires)"
	" VALUES (?1, 1, ?2, ?2, ?3) ON CONFLICT (network) DO UPDATE SET"
	" passes = CASE WHEN expires <= ?2 THEN 1 ELSE passes + 1 END,"
	" first_seen = CASE WHEN expires <= ?2 THEN ?2 ELSE first_seen END,"
	" last_seen = ?2, expires = ?3";
static const char SQL_NET_USE[] =
	"UPDATE greylist_network SET last_seen = ?2, expires = ?3 WHERE id = ?1";
static const char SQL_PURGE_TRIPLETS[] =
	"DELETE FROM greylist_triplet WHERE id IN"
	" (SELECT id FROM greylist_triplet WHERE expires <= ?1 LIMIT ?2)";
static const char SQL_PURGE_NETS[] =
	"DELETE FROM greylist_network WHERE id IN"
	" (SELECT id FROM greylist_network WHERE expires <= ?1 LIMIT ?2)";
static const char SQL_ROW[] = "SELECT " COLS " FROM greylist_triplet WHERE id = ?1";
static const char SQL_DELETE[] = "DELETE FROM greylist_triplet WHERE id = ?1";
static const char SQL_DELETE_ALL[] = "DELETE FROM greylist_triplet";
static const char SQL_NETS[] =
	"SELECT " NET_COLS " FROM greylist_network WHERE passes >= ?1 AND expires > ?2"
	" ORDER BY passes DESC, id LIMIT ?3 OFFSET ?4";
static const char SQL_NETS_COUNT[] =
	"SELECT count(*) FROM greylist_network WHERE passes >= ?1 AND expires > ?2";
static const char SQL_NET_ROW[] = "SELECT " NET_COLS " FROM greylist_network WHERE id = ?1";
static const char SQL_NET_DELETE[] = "DELETE FROM greylist_network WHERE id = ?1";

static int triplet_rows(sqlite3_stmt *s, store_greylist_row_fn cb, void *arg, int *found)
{
	struct store_greylist_row r;
	int rc;

	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		r.id = sqlite3_column_int64(s, 0);
		r.network = store_col_text(s, 1);
		r.sender = store_col_text(s, 2);
		r.rcpt = store_col_text(s, 3);
		r.first_seen = sqlite3_column_int64(s, 4);
		r.last_seen = sqlite3_column_int64(s, 5);
		r.attempts = sqlite3_column_int64(s, 6);
		r.passed_at = sqlite3_column_int64(s, 7);
		r.passes = sqlite3_column_int64(s, 8);
		r.expires = sqlite3_column_int64(s, 9);
		if (r.network == NULL || r.sender == NULL || r.rcpt == NULL)
			continue; /* NOT NULL in the schema: never */
		if (found != NULL)
			*found = 1;
		if (cb != NULL && cb(&r, arg) != 0) {
			rc = SQLITE_DONE;
			break;
		}
	}
	sqlite3_reset(s);
	return rc == SQLITE_DONE ? 0 : -1;
}

static int net_rows(sqlite3_stmt *s, store_greylist_net_fn cb, void *arg, int *found)
{
	struct store_greylist_net n;
	int rc;

	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		n.id = sqlite3_column_int64(s, 0);
		n.network = store_col_text(s, 1);
		n.passes = sqlite3_column_int64(s, 2);
		n.first_seen = sqlite3_column_int64(s, 3);
		n.last_seen = sqlite3_column_int64(s, 4);
		n.expires = sqlite3_column_int64(s, 5);
		if (n.network == NULL)
			continue;
		if (found != NULL)
			*found = 1;
		if (cb != NULL && cb(&n, arg) != 0) {
			rc = SQLITE_DONE;
			break;
		}
	}
	sqlite3_reset(s);
	return rc == SQLITE_DONE ? 0 : -1;
}

int store_greylist_get(struct store *st, const char *network, const char *sender,
		       const char *rcpt, store_greylist_row_fn cb, void *arg, int *found)
{
	sqlite3_stmt *s = store_prepare(st, SQL_GET);

	*found = 0;
	if (s == NULL)
		return -1;
	store_bind_text(s, 1, network);
	store_bind_text(s, 2, sender);
	store_bind_text(s, 3, rcpt);
	return triplet_rows(s, cb, arg, found);
}

int store_greylist_start(struct store *st, const char *network, const char *sender,
			 const char *rcpt, int64_t now, int64_t expires)
{
	sqlite3_stmt *s = store_prepare(st, SQL_START);

	if (s == NULL)
		return -1;
	store_bind_text(s, 1, network);
	store_bind_text(s, 2, sender);
	store_bind_text(s, 3, rcpt);
	sqlite3_bind_int64(s, 4, now);
	sqlite3_bind_int64(s, 5, expires);
	return store_step_done(s);
}

/* Run sql with ?1 id, ?2 now and, when it has one, ?3 expires. */
static int by_id(struct store *st, const char *sql, int64_t id, int64_t now, int64_t expires)
{
	sqlite3_stmt *s = store_prepare(st, sql);

	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, id);
	sqlite3_bind_int64(s, 2, now);
	if (sqlite3_bind_parameter_count(s) >= 3)
		sqlite3_bind_int64(s, 3, expires);
	return store_step_done(s);
}

int store_greylist_retry(struct store *st, int64_t id, int64_t now)
{
	return by_id(st, SQL_RETRY, id, now, 0);
}

int store_greylist_pass(struct store *st, int64_t id, int64_t now, int64_t expires)
{
	return by_id(st, SQL_PASS, id, now, expires);
}

int store_greylist_use(struct store *st, int64_t id, int64_t now, int64_t expires)
{
	return by_id(st, SQL_USE, id, now, expires);
}

int store_greylist_net_get(struct store *st, const char *network, store_greylist_net_fn cb,
			   void *arg, int *found)
{
	sqlite3_stmt *s = store_prepare(st, SQL_NET_GET);

	*found = 0;
	if (s == NULL)
		return -1;
	store_bind_text(s, 1, network);
	return net_rows(s, cb, arg, found);
}

int store_greylist_net_pass(struct store *st, const char *network, int64_t now,
			    int64_t expires)
{
	sqlite3_stmt *s = store_prepare(st, SQL_NET_PASS);

	if (s == NULL)
		return -1;
	store_bind_text(s, 1, network);
	sqlite3_bind_int64(s, 2, now);
	sqlite3_bind_int64(s, 3, expires);
	return store_step_done(s);
}

int store_greylist_net_use(struct store *st, int64_t id, int64_t now, int64_t expires)
{
	return by_id(st, SQL_NET_USE, id, now, expires);
}

static int purge_one(struct store *st, const char *sql, int64_t now, int64_t limit,
		     int64_t *n)
{
	sqlite3_stmt *s = store_prepare(st, sql);

	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, now);
	sqlite3_bind_int64(s, 2, limit);
	if (store_step_done(s) < 0)
		return -1;
	*n += sqlite3_changes(store_db(st));
	return 0;
}

int store_greylist_purge(struct store *st, int64_t now, int64_t limit, int64_t *n)
{
	*n = 0;
	if (purge_one(st, SQL_PURGE_TRIPLETS, now, limit, n) < 0)
		return -1;
	if (*n >= limit)
		return 0;
	return purge_one(st, SQL_PURGE_NETS, now, limit - *n, n);
}

/* ---- the API ---- */

#define BINDS_MAX 8

struct q {
	char sql[1024];
	size_t len;
	const char *text[BINDS_MAX];
	int64_t num[BINDS_MAX];
	int nb;
};

static void q_lit(struct q *q, const char *s)
{
	size_t n = strlen(s);

	if (q->len + n >= sizeof(q->sql))
		abort(); /* the statements are short literals: a broken invariant */
	memcpy(q->sql + q->len, s, n + 1);
	q->len += n;
}

/* Append what (ending in an operator or keyword) and the next parameter. */
static void q_add(struct q *q, const char *what, const char *text, int64_t num)
{
	char p[16];

	if (q->nb == BINDS_MAX)
		abort(); /* the filter has fewer fields: a broken invariant */
	q->text[q->nb] = text;
	q->num[q->nb] = num;
	q->nb++;
	snprintf(p, sizeof(p), " ?%d", q->nb);
	q_lit(q, what);
	q_lit(q, p);
}

static void where(struct q *q, const struct store_greylist_filter *f)
{
	q_add(q, " WHERE expires >", NULL, f->now);
	if (f->network != NULL)
		q_add(q, " AND network =", f->network, 0);
	if (f->sender != NULL)
		q_add(q, " AND sender =", f->sender, 0);
	if (f->rcpt != NULL)
		q_add(q, " AND rcpt =", f->rcpt, 0);
	if (f->state == STORE_GL_WAITING)
		q_lit(q, " AND passed_at = 0");
	else if (f->state == STORE_GL_PASSED)
		q_lit(q, " AND passed_at > 0");
}

static sqlite3_stmt *q_prepare(struct store *st, const struct q *q)
{
	sqlite3_stmt *s = NULL;
	int i;

	if (sqlite3_prepare_v2(store_db(st), q->sql, -1, &s, NULL) != SQLITE_OK)
		return NULL;
	for (i = 0; i < q->nb; i++) {
		if (q->text[i] != NULL)
			sqlite3_bind_text(s, i + 1, q->text[i], -1, SQLITE_STATIC);
		else
			sqlite3_bind_int64(s, i + 1, q->num[i]);
	}
	return s;
}

int store_greylist_list(struct store *st, const struct store_greylist_filter *f,
			store_greylist_row_fn cb, void *arg, int64_t *total)
{
	struct q q;
	sqlite3_stmt *s;
	int rc;

	*total = 0;
	memset(&q, 0, sizeof(q));
	q_lit(&q, "SELECT count(*) FROM greylist_triplet");
	where(&q, f);
	s = q_prepare(st, &q);
	if (s == NULL)
		return -1;
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		*total = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	if (rc != SQLITE_ROW)
		return -1;

	memset(&q, 0, sizeof(q));
	q_lit(&q, "SELECT " COLS " FROM greylist_triplet");
	where(&q, f);
	q_lit(&q, " ORDER BY last_seen DESC, id DESC");
	q_add(&q, " LIMIT", NULL, f->limit > 0 ? f->limit : -1);
	q_add(&q, " OFFSET", NULL, f->offset);
	s = q_prepare(st, &q);
	if (s == NULL)
		return -1;
	rc = triplet_rows(s, cb, arg, NULL);
	sqlite3_finalize(s);
	return rc;
}

int store_greylist_row(struct store *st, int64_t id, store_greylist_row_fn cb, void *arg,
		       int *found)
{
	sqlite3_stmt *s = store_prepare(st, SQL_ROW);

	*found = 0;
	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, id);
	return triplet_rows(s, cb, arg, found);
}

static int delete_id(struct store *st, const char *sql, int64_t id, int *deleted)
{
	sqlite3_stmt *s = store_prepare(st, sql);

	*deleted = 0;
	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, id);
	if (store_step_done(s) < 0)
		return -1;
	*deleted = sqlite3_changes(store_db(st)) > 0;
	return 0;
}

int store_greylist_delete(struct store *st, int64_t id, int *deleted)
{
	return delete_id(st, SQL_DELETE, id, deleted);
}

int store_greylist_delete_all(struct store *st, int64_t *n)
{
	*n = 0;
	if (store_run(st, SQL_DELETE_ALL) < 0)
		return -1;
	*n = sqlite3_changes(store_db(st));
	return 0;
}

int store_greylist_nets(struct store *st, int64_t min_passes, int64_t now, int64_t limit,
			int64_t offset, store_greylist_net_fn cb, void *arg, int64_t *total)
{
	sqlite3_stmt *s = store_prepare(st, SQL_NETS_COUNT);
	int rc;

	*total = 0;
	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, min_passes);
	sqlite3_bind_int64(s, 2, now);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		*total = sqlite3_column_int64(s, 0);
	sqlite3_reset(s);
	if (rc != SQLITE_ROW)
		return -1;
	s = store_prepare(st, SQL_NETS);
	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, min_passes);
	sqlite3_bind_int64(s, 2, now);
	sqlite3_bind_int64(s, 3, limit > 0 ? limit : -1);
	sqlite3_bind_int64(s, 4, offset);
	return net_rows(s, cb, arg, NULL);
}

int store_greylist_net_row(struct store *st, int64_t id, store_greylist_net_fn cb, void *arg,
			   int *found)
{
	sqlite3_stmt *s = store_prepare(st, SQL_NET_ROW);

	*found = 0;
	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, id);
	return net_rows(s, cb, arg, found);
}

int store_greylist_net_delete(struct store *st, int64_t id, int *deleted)
{
	return delete_id(st, SQL_NET_DELETE, id, deleted);
}
