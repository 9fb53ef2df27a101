/*
 * store_mailbox: SQL of the per-user mailbox rules.  See store_mailbox.h.
 *
 * Every statement that names a rule also names its set, so a rule id from
 * outside the caller's scope matches nothing.
 */
#include "store_mailbox.h"
#include "store.h"
#include "store_internal.h"

#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#include "../util/util.h"

#define RULE_COLS "id, position, name, enabled, definition, created_at, updated_at, hits," \
		  " coalesce(last_hit, 0)"

static const char SQL_SET_FIND_USER[] = "SELECT id FROM mailbox_ruleset WHERE user_id = ?1";
static const char SQL_SET_FIND_GROUP[] = "SELECT id FROM mailbox_ruleset WHERE group_id = ?1";
static const char SQL_SET_ADD[] = "INSERT INTO mailbox_ruleset (id, user_id, group_id)"
	" VALUES (moat_next_id('mailbox_ruleset'), ?1, ?2)";
static const char SQL_SETS[] =
	"SELECT id, coalesce(user_id, 0), coalesce(group_id, 0), generation, has_refuse"
	" FROM mailbox_ruleset ORDER BY id";
static const char SQL_EACH[] =
	"SELECT " RULE_COLS " FROM mailbox_rule WHERE ruleset_id = ?1 AND position >= ?2"
	" AND (?3 < 0 OR enabled = ?3)"
	" AND (?4 IS NULL OR instr(lower(name), lower(?4)) > 0"
	"      OR instr(lower(definition), lower(?4)) > 0)"
	" ORDER BY position, id LIMIT ?5";
static const char SQL_GET[] =
	"SELECT " RULE_COLS " FROM mailbox_rule WHERE ruleset_id = ?1 AND id = ?2";
static const char SQL_STATS[] =
	"SELECT count(*), coalesce(max(position) + 1, 0), coalesce(sum(length(definition)), 0)"
	" FROM mailbox_rule WHERE ruleset_id = ?1";
static const char SQL_END[] =
	"SELECT coalesce(max(position) + 1, 0) FROM mailbox_rule WHERE ruleset_id = ?1";
static const char SQL_SHIFT[] =
	"UPDATE mailbox_rule SET position = position + 1 WHERE ruleset_id = ?1 AND position >= ?2";
static const char SQL_ADD[] =
	"INSERT INTO mailbox_rule (id, ruleset_id, position, name, enabled, definition, created_at,"
	" updated_at) VALUES (moat_next_id('mailbox_rule'), ?1, ?2, ?3, ?4, ?5, ?6, ?6)";
static const char SQL_UPDATE[] =
	"UPDATE mailbox_rule SET name = ?3, enabled = ?4, definition = ?5, updated_at = ?6"
	" WHERE ruleset_id = ?1 AND id = ?2";
static const char SQL_DELETE[] = "DELETE FROM mailbox_rule WHERE ruleset_id = ?1 AND id = ?2";
static const char SQL_DELETE_ALL[] = "DELETE FROM mailbox_rule WHERE ruleset_id = ?1";
static const char SQL_COUNT[] = "SELECT count(*) FROM mailbox_rule WHERE ruleset_id = ?1";
static const char SQL_POSITION[] =
	"UPDATE mailbox_rule SET position = ?3 WHERE ruleset_id = ?1 AND id = ?2";
static const char SQL_REFRESH[] =
	"UPDATE mailbox_ruleset SET has_refuse = EXISTS (SELECT 1 FROM mailbox_rule r,"
	" json_each(r.definition, '$.actions') a WHERE r.ruleset_id = ?1 AND r.enabled = 1"
	" AND json_valid(r.definition) AND json_extract(a.value, '$.type') = 'refuse')"
	" WHERE id = ?1";
static const char SQL_HIT[] =
	"UPDATE mailbox_rule SET hits = hits + 1, last_hit = max(coalesce(last_hit, 0), ?2)"
	" WHERE id = ?1";
static const char SQL_USER_EXISTS[] = "SELECT 1 FROM dir_user WHERE id = ?1";
static const char SQL_GROUP_FIND[] = "SELECT id FROM dir_group WHERE address = lower(?1)";
static const char SQL_IS_MANAGER[] =
	"SELECT 1 FROM dir_group_manager WHERE group_id = ?1 AND user_id = ?2";
static const char SQL_USER_OF[] = "SELECT user_id FROM dir_address WHERE address = lower(?1)";
static const char SQL_DOMAIN_LOCAL[] =
	"SELECT 1 WHERE EXISTS (SELECT 1 FROM policy_entry WHERE list = 'local_domain' AND"
	" (lower(value) = ?1 OR (substr(value, 1, 2) = '*.' AND"
	"  substr(?1, -length(value) + 1) = lower(substr(value, 2)))))"
	" OR EXISTS (SELECT 1 FROM dir_address WHERE address LIKE '%@' || ?1 ESCAPE '\\')"
	" OR EXISTS (SELECT 1 FROM dir_group WHERE address LIKE '%@' || ?1 ESCAPE '\\')";
static const char SQL_LEFT_OUT[] =
	"SELECT count(*) FROM mailbox_rule WHERE ruleset_id = ?1 AND position >= 0";
static const char SQL_UNFLIP[] =
	"UPDATE mailbox_rule SET position = -1 - position WHERE ruleset_id = ?1";
static const char SQL_PRIMARY[] =
	"SELECT address FROM dir_address WHERE user_id = ?1"
	" ORDER BY kind = 'primary' DESC, address LIMIT 1";
static const char SQL_SETTING[] = "SELECT value FROM policy_setting WHERE key = ?1";
static const char SQL_ADDRESSES[] =
	"SELECT a.address, r.id FROM mailbox_ruleset r JOIN dir_address a ON a.user_id = r.user_id"
	" UNION ALL"
	" SELECT g.address, r.id FROM mailbox_ruleset r JOIN dir_group g ON g.id = r.group_id";
static const char SQL_FINGERPRINT[] =
	"SELECT count(*), total(id), total(has_refuse * id), total(generation)"
	" FROM mailbox_ruleset";
static const char SQL_GENERATION[] = "SELECT generation FROM mailbox_ruleset WHERE id = ?1";
static const char SQL_ENABLED[] =
	"SELECT id, definition FROM mailbox_rule WHERE ruleset_id = ?1 AND enabled = 1"
	" ORDER BY position, id";
static const char SQL_LOG_MESSAGE[] =
	"SELECT coalesce(m.qid, ''), r.rcpt FROM message_log m"
	" JOIN message_log_rcpt r ON r.log_id = m.id WHERE m.id = ?1"
	" AND (r.rcpt IN (SELECT address FROM dir_address WHERE user_id = ?2)"
	"      OR r.rcpt IN (SELECT lower(address) FROM dir_group WHERE id = ?3))"
	" ORDER BY r.rowid LIMIT 1";
static const char SQL_READ_BEGIN[] = "BEGIN";
static const char SQL_READ_END[] = "COMMIT";

/* One int64 from a prepared, bound statement; *found 0 when no row. */
static int one_i64(sqlite3_stmt *s, int64_t *out, int *found)
{
	int rc = sqlite3_step(s);

	*found = rc == SQLITE_ROW;
	if (rc == SQLITE_ROW)
		*out = sqlite3_column_int64(s, 0);
	sqlite3_reset(s);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -1;
}

int store_mailbox_set_find(struct store *st, int64_t user_id, int64_t group_id, int64_t *id)
{
	sqlite3_stmt *s = store_prepare(st, user_id > 0 ? SQL_SET_FIND_USER : SQL_SET_FIND_GROUP);
	int found;

	*id = 0;
	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, user_id > 0 ? user_id : group_id);
	return one_i64(s, id, &found);
}

int store_mailbox_set_ensure(struct store *st, int64_t user_id, int64_t group_id, int64_t *id)
{
	sqlite3_stmt *s;

	if (store_mailbox_set_find(st, user_id, group_id, id) < 0)
		return -1;
	if (*id > 0)
		return 0;
	s = store_prepare(st, SQL_SET_ADD);
	if (s == NULL)
		return -1;
	if (user_id > 0) {
		sqlite3_bind_int64(s, 1, user_id);
		sqlite3_bind_null(s, 2);
	} else {
		sqlite3_bind_null(s, 1);
		sqlite3_bind_int64(s, 2, group_id);
	}
	if (store_step_done(s) < 0)
		return -1;
	*id = sqlite3_last_insert_rowid(store_db(st));
	return 0;
}

int store_mailbox_sets_each(struct store *st,
			    int (*cb)(const struct store_mailbox_set *s, void *arg), void *arg)
{
	sqlite3_stmt *s = store_prepare(st, SQL_SETS);
	struct store_mailbox_set m;
	int rc;

	if (s == NULL)
		return -1;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		m.id = sqlite3_column_int64(s, 0);
		m.user_id = sqlite3_column_int64(s, 1);
		m.group_id = sqlite3_column_int64(s, 2);
		m.generation = sqlite3_column_int64(s, 3);
		m.has_refuse = sqlite3_column_int(s, 4) != 0;
		if (cb(&m, arg) != 0) {
			rc = SQLITE_DONE;
			break;
		}
	}
	sqlite3_reset(s);
	return rc == SQLITE_DONE ? 0 : -1;
}

static int each_row(sqlite3_stmt *s, store_mailbox_rule_fn cb, void *arg, int *found)
{
	struct store_mailbox_rule r;
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

int store_mailbox_rules_each(struct store *st, int64_t set, const struct store_mailbox_filter *f,
			     store_mailbox_rule_fn cb, void *arg)
{
	sqlite3_stmt *s = store_prepare(st, SQL_EACH);

	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, set);
	sqlite3_bind_int64(s, 2, f ? f->from_position : 0);
	sqlite3_bind_int(s, 3, f ? f->enabled : -1);
	if (f != NULL && f->q != NULL)
		store_bind_text(s, 4, f->q);
	else
		sqlite3_bind_null(s, 4);
	sqlite3_bind_int64(s, 5, f && f->limit > 0 ? f->limit : -1);
	return each_row(s, cb, arg, NULL);
}

int store_mailbox_rule_get(struct store *st, int64_t set, int64_t rid, store_mailbox_rule_fn cb,
			   void *arg, int *found)
{
	sqlite3_stmt *s = store_prepare(st, SQL_GET);

	*found = 0;
	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, set);
	sqlite3_bind_int64(s, 2, rid);
	return each_row(s, cb, arg, found);
}

int store_mailbox_stats(struct store *st, int64_t set, int64_t *count, int64_t *end,
			int64_t *bytes)
{
	sqlite3_stmt *s = store_prepare(st, SQL_STATS);
	int rc;

	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, set);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		*count = sqlite3_column_int64(s, 0);
		*end = sqlite3_column_int64(s, 1);
		*bytes = sqlite3_column_int64(s, 2);
	}
	sqlite3_reset(s);
	return rc == SQLITE_ROW ? 0 : -1;
}

int store_mailbox_rule_add(struct store *st, int64_t set, const char *name, int enabled,
			   const char *definition, int64_t position, int64_t *id)
{
	sqlite3_stmt *s = store_prepare(st, SQL_END);
	int64_t end = 0;
	int found;

	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, set);
	if (one_i64(s, &end, &found) < 0)
		return -1;
	if (position < 0 || position >= end) {
		position = end;
	} else {
		s = store_prepare(st, SQL_SHIFT);
		if (s == NULL)
			return -1;
		sqlite3_bind_int64(s, 1, set);
		sqlite3_bind_int64(s, 2, position);
		if (store_step_done(s) < 0)
			return -1;
	}
	s = store_prepare(st, SQL_ADD);
	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, set);
	sqlite3_bind_int64(s, 2, position);
	store_bind_text(s, 3, name);
	sqlite3_bind_int(s, 4, enabled ? 1 : 0);
	store_bind_text(s, 5, definition);
	sqlite3_bind_int64(s, 6, time_now_ms());
	if (store_step_done(s) < 0)
		return -1;
	*id = sqlite3_last_insert_rowid(store_db(st));
	return 0;
}

int store_mailbox_rule_update(struct store *st, int64_t set, int64_t rid, const char *name,
			      int enabled, const char *definition, int *found)
{
	sqlite3_stmt *s = store_prepare(st, SQL_UPDATE);

	*found = 0;
	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, set);
	sqlite3_bind_int64(s, 2, rid);
	store_bind_text(s, 3, name);
	sqlite3_bind_int(s, 4, enabled ? 1 : 0);
	store_bind_text(s, 5, definition);
	sqlite3_bind_int64(s, 6, time_now_ms());
	if (store_step_done(s) < 0)
		return -1;
	*found = sqlite3_changes(store_db(st)) > 0;
	return 0;
}

int store_mailbox_rule_delete(struct store *st, int64_t set, int64_t rid, int *found)
{
	sqlite3_stmt *s = store_prepare(st, SQL_DELETE);

	*found = 0;
	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, set);
	sqlite3_bind_int64(s, 2, rid);
	if (store_step_done(s) < 0)
		return -1;
	*found = sqlite3_changes(store_db(st)) > 0;
	return 0;
}

int store_mailbox_rules_delete_all(struct store *st, int64_t set)
{
	sqlite3_stmt *s = store_prepare(st, SQL_DELETE_ALL);

	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, set);
	return store_step_done(s);
}

int store_mailbox_set_order(struct store *st, int64_t set, const int64_t *ids, size_t n,
			    int *mismatch)
{
	sqlite3_stmt *s = store_prepare(st, SQL_COUNT);
	int64_t count = 0;
	size_t i;
	int found;

	*mismatch = 0;
	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, set);
	if (one_i64(s, &count, &found) < 0)
		return -1;
	if ((int64_t)n != count) {
		*mismatch = 1;
		return 0;
	}
	/* Each rule named moves to a negative position (-1 - its new index);
	 * an id outside the set changes no row.  A repeated id moves the same
	 * row twice and leaves another at a non-negative position.  On a
	 * mismatch rows have changed: the caller rolls back. */
	for (i = 0; i < n; i++) {
		s = store_prepare(st, SQL_POSITION);
		if (s == NULL)
			return -1;
		sqlite3_bind_int64(s, 1, set);
		sqlite3_bind_int64(s, 2, ids[i]);
		sqlite3_bind_int64(s, 3, -1 - (int64_t)i);
		if (store_step_done(s) < 0)
			return -1;
		if (sqlite3_changes(store_db(st)) != 1) {
			*mismatch = 1;
			return 0;
		}
	}
	s = store_prepare(st, SQL_LEFT_OUT);
	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, set);
	if (one_i64(s, &count, &found) < 0)
		return -1;
	if (count != 0) {
		*mismatch = 1;
		return 0;
	}
	s = store_prepare(st, SQL_UNFLIP);
	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, set);
	return store_step_done(s);
}

int store_mailbox_refresh(struct store *st, int64_t set)
{
	sqlite3_stmt *s = store_prepare(st, SQL_REFRESH);

	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, set);
	return store_step_done(s);
}

int store_mailbox_hit(struct store *st, const int64_t *ids, size_t n, int64_t ts)
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

static int exists_i64(struct store *st, const char *sql, int64_t a, int64_t b, int *yes)
{
	sqlite3_stmt *s = store_prepare(st, sql);
	int64_t v;

	*yes = 0;
	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, a);
	if (sqlite3_bind_parameter_count(s) > 1)
		sqlite3_bind_int64(s, 2, b);
	return one_i64(s, &v, yes);
}

int store_mailbox_user_exists(struct store *st, int64_t user_id, int *yes)
{
	return exists_i64(st, SQL_USER_EXISTS, user_id, 0, yes);
}

int store_mailbox_is_manager(struct store *st, int64_t gid, int64_t user_id, int *yes)
{
	return exists_i64(st, SQL_IS_MANAGER, gid, user_id, yes);
}

static int id_of_text(struct store *st, const char *sql, const char *text, int64_t *id)
{
	sqlite3_stmt *s = store_prepare(st, sql);
	int found;

	*id = 0;
	if (s == NULL)
		return -1;
	store_bind_text(s, 1, text);
	return one_i64(s, id, &found);
}

int store_mailbox_group_find(struct store *st, const char *address, int64_t *gid)
{
	return id_of_text(st, SQL_GROUP_FIND, address, gid);
}

int store_mailbox_user_of(struct store *st, const char *address, int64_t *uid)
{
	return id_of_text(st, SQL_USER_OF, address, uid);
}

int store_mailbox_domain_local(struct store *st, const char *domain, int *yes)
{
	sqlite3_stmt *s = store_prepare(st, SQL_DOMAIN_LOCAL);
	int64_t v;

	*yes = 0;
	if (s == NULL)
		return -1;
	/* LIKE wildcards in a domain would widen the match: domains are LDH */
	if (strpbrk(domain, "%_\\") != NULL) {
		sqlite3_reset(s);
		return 0;
	}
	store_bind_text(s, 1, domain);
	return one_i64(s, &v, yes);
}

int store_mailbox_setting(struct store *st, const char *key, char *buf, size_t bufsz)
{
	sqlite3_stmt *s = store_prepare(st, SQL_SETTING);
	int rc;

	buf[0] = '\0';
	if (s == NULL)
		return -1;
	store_bind_text(s, 1, key);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		strlcpy_s(buf, store_col_text(s, 0), bufsz);
	sqlite3_reset(s);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -1;
}

int store_mailbox_log_message(struct store *st, int64_t log_id, int64_t user_id,
			      int64_t group_id, char *qid, size_t qidsz, char *rcpt,
			      size_t rcptsz, int *found)
{
	sqlite3_stmt *s = store_prepare(st, SQL_LOG_MESSAGE);
	int rc;

	*found = 0;
	qid[0] = '\0';
	rcpt[0] = '\0';
	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, log_id);
	sqlite3_bind_int64(s, 2, user_id);
	sqlite3_bind_int64(s, 3, group_id);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		strlcpy_s(qid, store_col_text(s, 0), qidsz);
		strlcpy_s(rcpt, store_col_text(s, 1), rcptsz);
		*found = 1;
	}
	sqlite3_reset(s);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -1;
}

int store_mailbox_primary_address(struct store *st, int64_t uid, char *buf, size_t bufsz)
{
	sqlite3_stmt *s = store_prepare(st, SQL_PRIMARY);
	int rc;

	buf[0] = '\0';
	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, uid);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		strlcpy_s(buf, store_col_text(s, 0), bufsz);
	sqlite3_reset(s);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -1;
}

/* ---- the mail side ---- */

int store_mailbox_addresses(struct store *st,
			    int (*cb)(const char *address, int64_t set_id, void *arg), void *arg)
{
	sqlite3_stmt *s = store_prepare(st, SQL_ADDRESSES);
	int rc;

	if (s == NULL)
		return -1;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		const char *a = store_col_text(s, 0);

		if (a != NULL && cb(a, sqlite3_column_int64(s, 1), arg) != 0) {
			rc = SQLITE_DONE;
			break;
		}
	}
	sqlite3_reset(s);
	return rc == SQLITE_DONE ? 0 : -1;
}

int store_mailbox_fingerprint(struct store *st, int64_t fp[4])
{
	sqlite3_stmt *s = store_prepare(st, SQL_FINGERPRINT);
	int rc, i;

	if (s == NULL)
		return -1;
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		for (i = 0; i < 4; i++)
			fp[i] = sqlite3_column_int64(s, i);
	sqlite3_reset(s);
	return rc == SQLITE_ROW ? 0 : -1;
}

int store_mailbox_generation(struct store *st, int64_t id, int64_t *gen, int *found)
{
	sqlite3_stmt *s = store_prepare(st, SQL_GENERATION);

	*gen = 0;
	*found = 0;
	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, id);
	return one_i64(s, gen, found);
}

int store_mailbox_enabled_rules(struct store *st, int64_t id, int64_t *gen, int *found,
				int (*cb)(int64_t rule_id, const char *definition, void *arg),
				void *arg)
{
	sqlite3_stmt *s;
	int rc, ret = -1;

	/* the generation and the rules must come from the same read */
	if (store_run(st, SQL_READ_BEGIN) < 0)
		return -1;
	if (store_mailbox_generation(st, id, gen, found) < 0)
		goto out;
	if (!*found) {
		ret = 0;
		goto out;
	}
	s = store_prepare(st, SQL_ENABLED);
	if (s == NULL)
		goto out;
	sqlite3_bind_int64(s, 1, id);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		const char *d = store_col_text(s, 1);

		if (d != NULL && cb(sqlite3_column_int64(s, 0), d, arg) != 0) {
			rc = SQLITE_DONE;
			break;
		}
	}
	sqlite3_reset(s);
	ret = rc == SQLITE_DONE ? 0 : -1;
out:
	store_run(st, SQL_READ_END);
	return ret;
}
