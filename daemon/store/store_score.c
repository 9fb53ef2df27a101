/*
 * store_score: SQL of the score thresholds.  See store_score.h.
 */
#include "store_score.h"
#include "store.h"
#include "store_internal.h"

#include <sqlite3.h>
#include <string.h>

#include "../util/util.h"

static const char SQL_LIST[] =
	"SELECT id, scope, name, tag, quarantine, refuse, greylist, updated FROM score_threshold"
	" ORDER BY scope, name";
static const char SQL_GET[] =
	"SELECT id, scope, name, tag, quarantine, refuse, greylist, updated FROM score_threshold"
	" WHERE scope = ?1 AND name = ?2";
static const char SQL_PUT[] =
	"INSERT INTO score_threshold (id, scope, name, tag, quarantine, refuse, greylist, updated)"
	" VALUES (moat_next_id('score_threshold'), ?1, ?2, ?3, ?4, ?5, ?6, ?7)"
	" ON CONFLICT (scope, name) DO UPDATE SET tag = excluded.tag,"
	" quarantine = excluded.quarantine, refuse = excluded.refuse,"
	" greylist = excluded.greylist, updated = excluded.updated"
	" RETURNING id";
static const char SQL_DEL[] = "DELETE FROM score_threshold WHERE scope = ?1 AND name = ?2";
static const char SQL_USER_ADDRS[] =
	"SELECT a.address, u.name FROM score_threshold t"
	" JOIN dir_user u ON u.name = t.name JOIN dir_address a ON a.user_id = u.id"
	" WHERE t.scope = 'user' ORDER BY a.address";
static const char SQL_ADDRS_OF[] =
	"SELECT u.id, a.address FROM dir_user u LEFT JOIN dir_address a ON a.user_id = u.id"
	" WHERE u.name = ?1 ORDER BY a.kind <> 'primary', a.address";

static int rows(sqlite3_stmt *s, store_score_cb cb, void *arg, int *found)
{
	static const unsigned bits[4] = { STORE_SCORE_TAG, STORE_SCORE_QUARANTINE,
					  STORE_SCORE_REFUSE, STORE_SCORE_GREYLIST };
	struct store_score_row r;
	double *vals[4];
	int rc, i;

	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		memset(&r, 0, sizeof(r));
		vals[0] = &r.tag;
		vals[1] = &r.quarantine;
		vals[2] = &r.refuse;
		vals[3] = &r.greylist;
		r.id = sqlite3_column_int64(s, 0);
		r.scope = store_col_text(s, 1);
		r.name = store_col_text(s, 2);
		for (i = 0; i < 4; i++) {
			if (sqlite3_column_type(s, 3 + i) == SQLITE_NULL)
				continue;
			*vals[i] = sqlite3_column_double(s, 3 + i);
			r.set |= bits[i];
		}
		r.updated = sqlite3_column_int64(s, 7);
		if (r.scope == NULL || r.name == NULL)
			continue; /* NOT NULL in the schema: never */
		if (found != NULL)
			*found = 1;
		if (cb(&r, arg) != 0) {
			rc = SQLITE_DONE;
			break;
		}
	}
	sqlite3_reset(s);
	return rc == SQLITE_DONE ? 0 : -1;
}

int store_score_list(struct store *st, store_score_cb cb, void *arg)
{
	sqlite3_stmt *s = store_prepare(st, SQL_LIST);

	if (s == NULL)
		return -1;
	return rows(s, cb, arg, NULL);
}

int store_score_get(struct store *st, const char *scope, const char *name, store_score_cb cb,
		    void *arg, int *found)
{
	sqlite3_stmt *s = store_prepare(st, SQL_GET);

	*found = 0;
	if (s == NULL)
		return -1;
	store_bind_text(s, 1, scope);
	store_bind_text(s, 2, name);
	return rows(s, cb, arg, found);
}

static void bind_value(sqlite3_stmt *s, int i, unsigned set, unsigned bit, double v)
{
	if (set & bit)
		sqlite3_bind_double(s, i, v);
	else
		sqlite3_bind_null(s, i);
}

int store_score_put(struct store *st, const struct store_score_row *r, int64_t *id)
{
	sqlite3_stmt *s = store_prepare(st, SQL_PUT);
	int rc;

	*id = 0;
	if (s == NULL)
		return -1;
	store_bind_text(s, 1, r->scope);
	store_bind_text(s, 2, r->name);
	bind_value(s, 3, r->set, STORE_SCORE_TAG, r->tag);
	bind_value(s, 4, r->set, STORE_SCORE_QUARANTINE, r->quarantine);
	bind_value(s, 5, r->set, STORE_SCORE_REFUSE, r->refuse);
	bind_value(s, 6, r->set, STORE_SCORE_GREYLIST, r->greylist);
	sqlite3_bind_int64(s, 7, time_now_ms());
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		*id = sqlite3_column_int64(s, 0);
		rc = sqlite3_step(s);
	}
	sqlite3_reset(s);
	return rc == SQLITE_DONE && *id > 0 ? 0 : -1;
}

int store_score_delete(struct store *st, const char *scope, const char *name, int *removed)
{
	sqlite3_stmt *s = store_prepare(st, SQL_DEL);

	*removed = 0;
	if (s == NULL)
		return -1;
	store_bind_text(s, 1, scope);
	store_bind_text(s, 2, name);
	if (store_step_done(s) < 0)
		return -1;
	*removed = sqlite3_changes(store_db(st));
	return 0;
}

int store_score_user_addresses(struct store *st,
			       int (*cb)(const char *address, const char *user, void *arg),
			       void *arg)
{
	sqlite3_stmt *s = store_prepare(st, SQL_USER_ADDRS);
	int rc;

	if (s == NULL)
		return -1;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		const char *a = store_col_text(s, 0), *u = store_col_text(s, 1);

		if (a == NULL || u == NULL)
			continue;
		if (cb(a, u, arg) != 0) {
			rc = SQLITE_DONE;
			break;
		}
	}
	sqlite3_reset(s);
	return rc == SQLITE_DONE ? 0 : -1;
}

int store_score_addresses_of(struct store *st, const char *name,
			     int (*cb)(const char *address, void *arg), void *arg, int *found)
{
	sqlite3_stmt *s = store_prepare(st, SQL_ADDRS_OF);
	int rc;

	*found = 0;
	if (s == NULL)
		return -1;
	store_bind_text(s, 1, name);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		const char *a = store_col_text(s, 1);

		*found = 1;
		if (a == NULL)
			continue; /* a user without addresses */
		if (cb(a, arg) != 0) {
			rc = SQLITE_DONE;
			break;
		}
	}
	sqlite3_reset(s);
	return rc == SQLITE_DONE ? 0 : -1;
}

const char *store_score_errmsg(struct store *st)
{
	return store_errmsg(st);
}
