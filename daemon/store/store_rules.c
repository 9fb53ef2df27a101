/*
 * store_rules: SQL of the server mail rules.  See store_rules.h.
 */
#include "store_rules.h"
#include "store.h"
#include "store_internal.h"

#include <sqlite3.h>
#include <stdlib.h>

#include "../util/util.h"

#define RULE_COLS "id, position, name, enabled, definition, created_at, updated_at, hits," \
		  " coalesce(last_hit, 0)"

static const char SQL_EACH[] = "SELECT " RULE_COLS " FROM rule ORDER BY position, id";
static const char SQL_EACH_ENABLED[] =
	"SELECT " RULE_COLS " FROM rule WHERE enabled = 1 ORDER BY position, id";
static const char SQL_GET[] = "SELECT " RULE_COLS " FROM rule WHERE id = ?1";
static const char SQL_COUNT[] = "SELECT count(*), coalesce(max(position) + 1, 0) FROM rule";
static const char SQL_SHIFT[] = "UPDATE rule SET position = position + 1 WHERE position >= ?1";
static const char SQL_ADD[] =
	"INSERT INTO rule (id, position, name, enabled, definition, created_at, updated_at)"
	" VALUES (moat_next_id('rule'), ?1, ?2, ?3, ?4, ?5, ?5)";
static const char SQL_UPDATE[] =
	"UPDATE rule SET name = ?2, enabled = ?3, definition = ?4, updated_at = ?5 WHERE id = ?1";
static const char SQL_DELETE[] = "DELETE FROM rule WHERE id = ?1";
static const char SQL_DELETE_ALL[] = "DELETE FROM rule";
static const char SQL_EXISTS[] = "SELECT 1 FROM rule WHERE id = ?1";
static const char SQL_POSITION[] = "UPDATE rule SET position = ?2 WHERE id = ?1";
static const char SQL_RECENT[] =
	"SELECT qid, sender, client_addr, client_name, helo, auth_user, size FROM queue_message"
	" ORDER BY received_at DESC, qid LIMIT ?1";
static const char SQL_RECENT_RCPTS[] =
	"SELECT DISTINCT rcpt FROM queue_rcpt WHERE qid = ?1 ORDER BY rcpt";
static const char SQL_HIT[] =
	"UPDATE rule SET hits = hits + 1, last_hit = max(coalesce(last_hit, 0), ?2) WHERE id = ?1";

static int each_row(sqlite3_stmt *s, store_rule_fn cb, void *arg, int *found)
{
	struct store_rule r;
	int rc;

	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		r.id = sqlite3_column_int64(s, 0);
		r.position = sqlite3_column_int64(s, 1);
		r.name = store_col_text(s, 2);
		r.enabled = sqlite3_column_int(s, 3);
		r.definition = store_col_text(s, 4);
		r.created_at = sqlite3_column_int64(s, 5);
		r.updated_at = sqlite3_column_int64(s, 6);
		r.hits = sqlite3_column_int64(s, 7);
		r.last_hit = sqlite3_column_int64(s, 8);
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

int store_rules_each(struct store *st, int enabled_only, store_rule_fn cb, void *arg)
{
	sqlite3_stmt *s = store_prepare(st, enabled_only ? SQL_EACH_ENABLED : SQL_EACH);

	if (s == NULL)
		return -1;
	return each_row(s, cb, arg, NULL);
}

int store_rule_get(struct store *st, int64_t id, store_rule_fn cb, void *arg, int *found)
{
	sqlite3_stmt *s = store_prepare(st, SQL_GET);

	*found = 0;
	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, id);
	return each_row(s, cb, arg, found);
}

static int count_and_end(struct store *st, int64_t *n, int64_t *end)
{
	sqlite3_stmt *s = store_prepare(st, SQL_COUNT);
	int rc;

	if (s == NULL)
		return -1;
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		*n = sqlite3_column_int64(s, 0);
		*end = sqlite3_column_int64(s, 1);
	}
	sqlite3_reset(s);
	return rc == SQLITE_ROW ? 0 : -1;
}

int store_rules_count(struct store *st, int64_t *n)
{
	int64_t end;

	return count_and_end(st, n, &end);
}

int store_rule_add(struct store *st, const char *name, int enabled, const char *definition,
		   int64_t position, int64_t *id)
{
	sqlite3_stmt *s;
	int64_t n, end;

	if (count_and_end(st, &n, &end) < 0)
		return -1;
	if (position < 0 || position >= end) {
		position = end;
	} else {
		s = store_prepare(st, SQL_SHIFT);
		if (s == NULL)
			return -1;
		sqlite3_bind_int64(s, 1, position);
		if (store_step_done(s) < 0)
			return -1;
	}
	s = store_prepare(st, SQL_ADD);
	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, position);
	store_bind_text(s, 2, name);
	sqlite3_bind_int(s, 3, enabled ? 1 : 0);
	store_bind_text(s, 4, definition);
	sqlite3_bind_int64(s, 5, time_now_ms());
	if (store_step_done(s) < 0)
		return -1;
	*id = sqlite3_last_insert_rowid(store_db(st));
	return 0;
}

int store_rule_update(struct store *st, int64_t id, const char *name, int enabled,
		      const char *definition, int *found)
{
	sqlite3_stmt *s = store_prepare(st, SQL_UPDATE);

	*found = 0;
	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, id);
	store_bind_text(s, 2, name);
	sqlite3_bind_int(s, 3, enabled ? 1 : 0);
	store_bind_text(s, 4, definition);
	sqlite3_bind_int64(s, 5, time_now_ms());
	if (store_step_done(s) < 0)
		return -1;
	*found = sqlite3_changes(store_db(st)) > 0;
	return 0;
}

int store_rule_delete(struct store *st, int64_t id, int *found)
{
	sqlite3_stmt *s = store_prepare(st, SQL_DELETE);

	*found = 0;
	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, id);
	if (store_step_done(s) < 0)
		return -1;
	*found = sqlite3_changes(store_db(st)) > 0;
	return 0;
}

int store_rules_delete_all(struct store *st)
{
	return store_run(st, SQL_DELETE_ALL);
}

static int exists(struct store *st, int64_t id, int *yes)
{
	sqlite3_stmt *s = store_prepare(st, SQL_EXISTS);
	int rc;

	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, id);
	rc = sqlite3_step(s);
	sqlite3_reset(s);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return -1;
	*yes = rc == SQLITE_ROW;
	return 0;
}

int store_rules_set_order(struct store *st, const int64_t *ids, size_t n, int *mismatch)
{
	int64_t count, end;
	size_t i, j;
	int yes;

	*mismatch = 0;
	if (count_and_end(st, &count, &end) < 0)
		return -1;
	if ((int64_t)n != count) {
		*mismatch = 1;
		return 0;
	}
	for (i = 0; i < n; i++) {
		for (j = 0; j < i; j++) {
			if (ids[j] == ids[i]) {
				*mismatch = 1;
				return 0;
			}
		}
		if (exists(st, ids[i], &yes) < 0)
			return -1;
		if (!yes) {
			*mismatch = 1;
			return 0;
		}
	}
	for (i = 0; i < n; i++) {
		sqlite3_stmt *s = store_prepare(st, SQL_POSITION);

		if (s == NULL)
			return -1;
		sqlite3_bind_int64(s, 1, ids[i]);
		sqlite3_bind_int64(s, 2, (int64_t)i);
		if (store_step_done(s) < 0)
			return -1;
	}
	return 0;
}

int store_rules_hit(struct store *st, const int64_t *ids, size_t n, int64_t ts)
{
	size_t i;

	for (i = 0; i < n; i++) {
		sqlite3_stmt *s = store_prepare(st, SQL_HIT);

		if (s == NULL)
			return -1;
		sqlite3_bind_int64(s, 1, ids[i]);
		sqlite3_bind_int64(s, 2, ts);
		if (store_step_done(s) < 0)
			return -1;
	}
	return 0;
}

static char *dup_col(sqlite3_stmt *s, int i)
{
	const char *v = store_col_text(s, i);

	return xstrdup(v != NULL ? v : "");
}

int store_rules_recent(struct store *st, size_t n, struct store_rule_msg **out, size_t *nout)
{
	struct store_rule_msg *m = NULL;
	sqlite3_stmt *s = store_prepare(st, SQL_RECENT);
	size_t k = 0, i;
	int rc;

	*out = NULL;
	*nout = 0;
	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, (int64_t)n);
	m = xcalloc(n ? n : 1, sizeof(*m));
	while (k < n && (rc = sqlite3_step(s)) == SQLITE_ROW) {
		m[k].qid = dup_col(s, 0);
		m[k].sender = dup_col(s, 1);
		m[k].client_addr = dup_col(s, 2);
		m[k].client_name = dup_col(s, 3);
		m[k].helo = dup_col(s, 4);
		m[k].auth_user = sqlite3_column_type(s, 5) == SQLITE_NULL ? NULL : dup_col(s, 5);
		m[k].size = sqlite3_column_int64(s, 6);
		k++;
	}
	sqlite3_reset(s);
	for (i = 0; i < k; i++) {
		s = store_prepare(st, SQL_RECENT_RCPTS);
		if (s == NULL)
			goto fail;
		store_bind_text(s, 1, m[i].qid);
		while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
			m[i].rcpts = xrealloc(m[i].rcpts, (m[i].nrcpts + 1) * sizeof(char *));
			m[i].rcpts[m[i].nrcpts++] = dup_col(s, 0);
		}
		sqlite3_reset(s);
		if (rc != SQLITE_DONE)
			goto fail;
	}
	*out = m;
	*nout = k;
	return 0;
fail:
	store_rules_recent_free(m, k);
	return -1;
}

void store_rules_recent_free(struct store_rule_msg *m, size_t n)
{
	size_t i, j;

	if (m == NULL)
		return;
	for (i = 0; i < n; i++) {
		free(m[i].qid);
		free(m[i].sender);
		free(m[i].client_addr);
		free(m[i].client_name);
		free(m[i].helo);
		free(m[i].auth_user);
		for (j = 0; j < m[i].nrcpts; j++)
			free(m[i].rcpts[j]);
		free(m[i].rcpts);
	}
	free(m);
}
