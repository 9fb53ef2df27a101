/*
 * store_policy: SQL of the front-door policy.  See store_policy.h.
 *
 * Callers wrap multi-statement changes (a user with its addresses) in
 * store_begin()/store_commit(); the functions here do it themselves where
 * a change is more than one statement.
 */
#include "store_policy.h"
#include "store.h"
#include "store_internal.h"

#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

#include "../util/util.h"

static const char SQL_READ_BEGIN[] = "BEGIN";
static const char SQL_READ_END[] = "COMMIT";
static const char SQL_GENERATION[] = "SELECT generation FROM policy_meta WHERE id = 1";
static const char SQL_ENTRY_ADD[] =
	"INSERT INTO policy_entry (id, list, value, comment, created)"
	" VALUES (moat_next_id('policy_entry'), ?1, ?2, ?3, ?4)";
static const char SQL_ENTRY_UPDATE[] =
	"UPDATE policy_entry SET value = coalesce(?2, value), comment = coalesce(?3, comment)"
	" WHERE id = ?1";
static const char SQL_ENTRY_DEL[] = "DELETE FROM policy_entry WHERE id = ?1";
static const char SQL_ENTRY_DEL_VALUE[] =
	"DELETE FROM policy_entry WHERE list = ?1 AND value = ?2";
static const char SQL_ENTRIES[] =
	"SELECT id, list, value, comment, created FROM policy_entry"
	" WHERE ?1 IS NULL OR list = ?1 ORDER BY list, id";
static const char SQL_ENTRY_GET[] =
	"SELECT id, list, value, comment, created FROM policy_entry WHERE id = ?1";
static const char SQL_SETTING_SET[] =
	"INSERT INTO policy_setting (key, value, updated) VALUES (?1, ?2, ?3)"
	" ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated = excluded.updated";
static const char SQL_SETTING_DEL[] = "DELETE FROM policy_setting WHERE key = ?1";
static const char SQL_SETTING_GET[] = "SELECT value FROM policy_setting WHERE key = ?1";
static const char SQL_SETTINGS[] = "SELECT key, value FROM policy_setting ORDER BY key";
static const char SQL_SITE_ADD[] =
	"INSERT INTO dnsbl_site (id, zone, kind, enabled, action, message, codes, weight,"
	" comment, created) VALUES (moat_next_id('dnsbl_site'), ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";
static const char SQL_SITE_UPDATE[] =
	"UPDATE dnsbl_site SET kind = ?2, enabled = ?3, action = ?4, message = ?5,"
	" codes = ?6, weight = ?7, comment = ?8 WHERE zone = ?1";
static const char SQL_SITE_DEL[] = "DELETE FROM dnsbl_site WHERE zone = ?1";
static const char SQL_SITES[] =
	"SELECT id, zone, kind, enabled, action, message, codes, weight, comment, created"
	" FROM dnsbl_site ORDER BY id";
static const char SQL_USER_ADD[] =
	"INSERT INTO dir_user (id, name, created) VALUES (moat_next_id('dir_user'), ?1, ?2)";
static const char SQL_ADDR_ADD[] =
	"INSERT INTO dir_address (address, user_id, kind) VALUES (?1, ?2, ?3)";
static const char SQL_USER_DEL[] = "DELETE FROM dir_user WHERE name = ?1";
static const char SQL_GROUP_ADD[] =
	"INSERT INTO dir_group (id, address, name, created)"
	" VALUES (moat_next_id('dir_group'), ?1, ?2, ?3)";
static const char SQL_MEMBER_ADD[] =
	"INSERT OR IGNORE INTO dir_group_member (group_id, member) VALUES (?1, ?2)";
static const char SQL_GROUP_DEL[] = "DELETE FROM dir_group WHERE address = ?1";
static const char SQL_ADDR_TAKEN[] =
	"SELECT 1 FROM dir_address WHERE address = ?1"
	" UNION ALL SELECT 1 FROM dir_group WHERE address = ?1";
static const char SQL_USER_ADDR_DEL[] =
	"DELETE FROM dir_address WHERE user_id = ?1 AND address = ?2";
static const char SQL_GROUP_ID[] = "SELECT id FROM dir_group WHERE address = ?1";
static const char SQL_MEMBER_DEL[] =
	"DELETE FROM dir_group_member WHERE group_id = ?1 AND member = ?2";
static const char SQL_DIRECTORY[] =
	"SELECT a.address, a.kind, u.name, NULL, NULL FROM dir_address a"
	" JOIN dir_user u ON u.id = a.user_id"
	" UNION ALL"
	" SELECT g.address, 'group', g.name,"
	"  (SELECT group_concat(member, ',') FROM dir_group_member m WHERE m.group_id = g.id),"
	"  (SELECT group_concat(name, ',') FROM (SELECT u.name FROM dir_group_manager gm"
	"    JOIN dir_user u ON u.id = gm.user_id WHERE gm.group_id = g.id ORDER BY u.name))"
	" FROM dir_group g ORDER BY 1";
static const char SQL_STAT_ADD[] =
	"INSERT INTO policy_stat (check_name, day, count) VALUES (?1, ?2, ?3)"
	" ON CONFLICT (check_name, day) DO UPDATE SET count = count + excluded.count";
static const char SQL_DNSBL_STAT_ADD[] =
	"INSERT INTO dnsbl_stat (zone, day, queries, hits, tempfails, last_hit)"
	" VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
	" ON CONFLICT (zone, day) DO UPDATE SET queries = queries + excluded.queries,"
	" hits = hits + excluded.hits, tempfails = tempfails + excluded.tempfails,"
	" last_hit = max(coalesce(last_hit, 0), coalesce(excluded.last_hit, 0))";
static const char SQL_DNSBL_STATS[] =
	"SELECT zone, sum(queries), sum(hits), sum(tempfails), max(last_hit),"
	" sum(CASE WHEN day = ?1 THEN hits ELSE 0 END) FROM dnsbl_stat"
	" GROUP BY zone ORDER BY zone";
static const char SQL_STATS[] =
	"SELECT check_name, day, count FROM policy_stat WHERE day >= ?1"
	" ORDER BY day, check_name";
static const char SQL_DNSBL_DAILY[] =
	"SELECT zone, day, queries, hits, tempfails FROM dnsbl_stat WHERE day >= ?1 AND day <= ?2"
	" ORDER BY day, zone";

static const char *col_text_or_empty(sqlite3_stmt *s, int i)
{
	const unsigned char *t = sqlite3_column_text(s, i);

	return t ? (const char *)t : "";
}

const char *store_policy_errmsg(struct store *st)
{
	return store_errmsg(st);
}

int store_policy_read_begin(struct store *st)
{
	return store_run(st, SQL_READ_BEGIN);
}

void store_policy_read_end(struct store *st)
{
	store_run(st, SQL_READ_END);
}

int store_policy_generation(struct store *st, int64_t *gen)
{
	sqlite3_stmt *s = store_prepare(st, SQL_GENERATION);
	int rc;

	if (s == NULL)
		return -1;
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		*gen = sqlite3_column_int64(s, 0);
	sqlite3_reset(s);
	return rc == SQLITE_ROW ? 0 : -1;
}

int store_policy_entry_add(struct store *st, const char *list, const char *value,
			   const char *comment, int64_t *id, char *err, size_t errsz)
{
	sqlite3_stmt *s = store_prepare(st, SQL_ENTRY_ADD);
	int rc;

	if (s == NULL)
		goto fail;
	store_bind_text(s, 1, list);
	store_bind_text(s, 2, value);
	store_bind_text(s, 3, comment ? comment : "");
	sqlite3_bind_int64(s, 4, time_now_ms());
	rc = sqlite3_step(s);
	sqlite3_reset(s);
	if (rc == SQLITE_CONSTRAINT) {
		snprintf(err, errsz, "%s already holds %s", list, value);
		return -1;
	}
	if (rc != SQLITE_DONE)
		goto fail;
	*id = sqlite3_last_insert_rowid(store_db(st));
	return 0;
fail:
	snprintf(err, errsz, "cannot add entry: %s", store_errmsg(st));
	return -1;
}

int store_policy_entry_update(struct store *st, int64_t id, const char *value,
			      const char *comment, int *found, int *dup)
{
	sqlite3_stmt *s = store_prepare(st, SQL_ENTRY_UPDATE);
	int rc;

	*found = 0;
	*dup = 0;
	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, id);
	store_bind_text(s, 2, value);
	store_bind_text(s, 3, comment);
	rc = sqlite3_step(s);
	sqlite3_reset(s);
	if (rc == SQLITE_CONSTRAINT) {
		*dup = 1;
		return -1;
	}
	if (rc != SQLITE_DONE)
		return -1;
	*found = sqlite3_changes(store_db(st)) > 0;
	return 0;
}

int store_policy_entry_remove(struct store *st, int64_t id, int *removed)
{
	sqlite3_stmt *s = store_prepare(st, SQL_ENTRY_DEL);

	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, id);
	if (store_step_done(s) < 0)
		return -1;
	*removed = sqlite3_changes(store_db(st));
	return 0;
}

int store_policy_entry_remove_value(struct store *st, const char *list, const char *value,
				    int *removed)
{
	sqlite3_stmt *s = store_prepare(st, SQL_ENTRY_DEL_VALUE);

	if (s == NULL)
		return -1;
	store_bind_text(s, 1, list);
	store_bind_text(s, 2, value);
	if (store_step_done(s) < 0)
		return -1;
	*removed = sqlite3_changes(store_db(st));
	return 0;
}

static int entry_rows(sqlite3_stmt *s, int (*cb)(const struct store_policy_entry *, void *),
		      void *arg, int *found)
{
	struct store_policy_entry e;
	int rc;

	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		e.id = sqlite3_column_int64(s, 0);
		e.list = col_text_or_empty(s, 1);
		e.value = col_text_or_empty(s, 2);
		e.comment = col_text_or_empty(s, 3);
		e.created = sqlite3_column_int64(s, 4);
		if (found != NULL)
			*found = 1;
		if (cb(&e, arg) != 0) {
			rc = SQLITE_DONE;
			break;
		}
	}
	sqlite3_reset(s);
	return rc == SQLITE_DONE ? 0 : -1;
}

int store_policy_entries(struct store *st, const char *list,
			 int (*cb)(const struct store_policy_entry *e, void *arg), void *arg)
{
	sqlite3_stmt *s = store_prepare(st, SQL_ENTRIES);

	if (s == NULL)
		return -1;
	store_bind_text(s, 1, list);
	return entry_rows(s, cb, arg, NULL);
}

int store_policy_entry_get(struct store *st, int64_t id,
			   int (*cb)(const struct store_policy_entry *e, void *arg), void *arg,
			   int *found)
{
	sqlite3_stmt *s = store_prepare(st, SQL_ENTRY_GET);

	*found = 0;
	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, id);
	return entry_rows(s, cb, arg, found);
}

int store_policy_setting_set(struct store *st, const char *key, const char *value)
{
	sqlite3_stmt *s = store_prepare(st, SQL_SETTING_SET);

	if (s == NULL)
		return -1;
	store_bind_text(s, 1, key);
	store_bind_text(s, 2, value);
	sqlite3_bind_int64(s, 3, time_now_ms());
	return store_step_done(s);
}

int store_policy_setting(struct store *st, const char *key, char *out, size_t outsz, int *found)
{
	sqlite3_stmt *s = store_prepare(st, SQL_SETTING_GET);
	int rc;

	*found = 0;
	out[0] = '\0';
	if (s == NULL)
		return -1;
	store_bind_text(s, 1, key);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		const char *v = store_col_text(s, 0);

		*found = 1;
		strlcpy_s(out, v != NULL ? v : "", outsz);
		rc = SQLITE_DONE;
	}
	sqlite3_reset(s);
	return rc == SQLITE_DONE ? 0 : -1;
}

int store_policy_setting_unset(struct store *st, const char *key, int *removed)
{
	sqlite3_stmt *s = store_prepare(st, SQL_SETTING_DEL);

	if (s == NULL)
		return -1;
	store_bind_text(s, 1, key);
	if (store_step_done(s) < 0)
		return -1;
	*removed = sqlite3_changes(store_db(st));
	return 0;
}

int store_policy_settings(struct store *st,
			  int (*cb)(const char *key, const char *value, void *arg), void *arg)
{
	sqlite3_stmt *s = store_prepare(st, SQL_SETTINGS);
	int rc;

	if (s == NULL)
		return -1;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW)
		if (cb(col_text_or_empty(s, 0), col_text_or_empty(s, 1), arg) != 0) {
			rc = SQLITE_DONE;
			break;
		}
	sqlite3_reset(s);
	return rc == SQLITE_DONE ? 0 : -1;
}

static void bind_site(sqlite3_stmt *s, const struct store_dnsbl_site *site)
{
	store_bind_text(s, 1, site->zone);
	store_bind_text(s, 2, site->kind);
	sqlite3_bind_int(s, 3, site->enabled);
	store_bind_text(s, 4, site->action);
	store_bind_text(s, 5, site->message ? site->message : "");
	store_bind_text(s, 6, site->codes);
	sqlite3_bind_int(s, 7, site->weight);
	store_bind_text(s, 8, site->comment ? site->comment : "");
}

int store_policy_site_add(struct store *st, const struct store_dnsbl_site *site, int64_t *id,
			  char *err, size_t errsz)
{
	sqlite3_stmt *s = store_prepare(st, SQL_SITE_ADD);
	int rc;

	if (s == NULL)
		goto fail;
	bind_site(s, site);
	sqlite3_bind_int64(s, 9, time_now_ms());
	rc = sqlite3_step(s);
	sqlite3_reset(s);
	if (rc == SQLITE_CONSTRAINT) {
		snprintf(err, errsz, "DNSBL site %s already exists", site->zone);
		return -1;
	}
	if (rc != SQLITE_DONE)
		goto fail;
	*id = sqlite3_last_insert_rowid(store_db(st));
	return 0;
fail:
	snprintf(err, errsz, "cannot add DNSBL site: %s", store_errmsg(st));
	return -1;
}

int store_policy_site_update(struct store *st, const struct store_dnsbl_site *site, int *found)
{
	sqlite3_stmt *s = store_prepare(st, SQL_SITE_UPDATE);

	if (s == NULL)
		return -1;
	bind_site(s, site);
	if (store_step_done(s) < 0)
		return -1;
	*found = sqlite3_changes(store_db(st));
	return 0;
}

int store_policy_site_remove(struct store *st, const char *zone, int *removed)
{
	sqlite3_stmt *s = store_prepare(st, SQL_SITE_DEL);

	if (s == NULL)
		return -1;
	store_bind_text(s, 1, zone);
	if (store_step_done(s) < 0)
		return -1;
	*removed = sqlite3_changes(store_db(st));
	return 0;
}

int store_policy_sites(struct store *st,
		       int (*cb)(const struct store_dnsbl_site *s, void *arg), void *arg)
{
	sqlite3_stmt *s = store_prepare(st, SQL_SITES);
	struct store_dnsbl_site site;
	int rc;

	if (s == NULL)
		return -1;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		site.id = sqlite3_column_int64(s, 0);
		site.zone = col_text_or_empty(s, 1);
		site.kind = col_text_or_empty(s, 2);
		site.enabled = sqlite3_column_int(s, 3);
		site.action = col_text_or_empty(s, 4);
		site.message = col_text_or_empty(s, 5);
		site.codes = col_text_or_empty(s, 6);
		site.weight = sqlite3_column_int(s, 7);
		site.comment = col_text_or_empty(s, 8);
		site.created = sqlite3_column_int64(s, 9);
		if (cb(&site, arg) != 0) {
			rc = SQLITE_DONE;
			break;
		}
	}
	sqlite3_reset(s);
	return rc == SQLITE_DONE ? 0 : -1;
}

static int addr_taken(struct store *st, const char *addr, int *taken)
{
	sqlite3_stmt *s = store_prepare(st, SQL_ADDR_TAKEN);
	int rc;

	if (s == NULL)
		return -1;
	store_bind_text(s, 1, addr);
	rc = sqlite3_step(s);
	sqlite3_reset(s);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return -1;
	*taken = rc == SQLITE_ROW;
	return 0;
}

int store_policy_user_add(struct store *st, const char *name, const char *const *addrs,
			  size_t naddrs, char *err, size_t errsz)
{
	sqlite3_stmt *s;
	int64_t uid;
	size_t i;
	int taken;

	if (store_begin(st) < 0)
		goto fail;
	s = store_prepare(st, SQL_USER_ADD);
	if (s == NULL)
		goto fail_tx;
	store_bind_text(s, 1, name);
	sqlite3_bind_int64(s, 2, time_now_ms());
	if (sqlite3_step(s) != SQLITE_DONE) {
		sqlite3_reset(s);
		snprintf(err, errsz, "user %s already exists", name);
		store_rollback(st);
		return -1;
	}
	sqlite3_reset(s);
	uid = sqlite3_last_insert_rowid(store_db(st));
	for (i = 0; i < naddrs; i++) {
		if (addr_taken(st, addrs[i], &taken) < 0)
			goto fail_tx;
		if (taken) {
			snprintf(err, errsz, "address %s is already in the directory", addrs[i]);
			store_rollback(st);
			return -1;
		}
		s = store_prepare(st, SQL_ADDR_ADD);
		if (s == NULL)
			goto fail_tx;
		store_bind_text(s, 1, addrs[i]);
		sqlite3_bind_int64(s, 2, uid);
		store_bind_text(s, 3, i == 0 ? "primary" : "alias");
		if (store_step_done(s) < 0)
			goto fail_tx;
	}
	if (store_commit(st) < 0)
		goto fail_tx;
	return 0;
fail_tx:
	snprintf(err, errsz, "cannot add user: %s", store_errmsg(st));
	store_rollback(st);
	return -1;
fail:
	snprintf(err, errsz, "cannot add user: %s", store_errmsg(st));
	return -1;
}

int store_policy_user_remove(struct store *st, const char *name, int *removed)
{
	sqlite3_stmt *s = store_prepare(st, SQL_USER_DEL);

	if (s == NULL)
		return -1;
	store_bind_text(s, 1, name);
	if (store_step_done(s) < 0)
		return -1;
	*removed = sqlite3_changes(store_db(st));
	return 0;
}

int store_policy_group_add_tx(struct store *st, const char *address, const char *name,
			      const char *const *members, size_t nmembers, int *taken,
			      char *err, size_t errsz)
{
	sqlite3_stmt *s;
	int64_t gid;
	size_t i;

	if (addr_taken(st, address, taken) < 0)
		goto fail;
	if (*taken) {
		snprintf(err, errsz, "address %s is already in the directory", address);
		return -1;
	}
	s = store_prepare(st, SQL_GROUP_ADD);
	if (s == NULL)
		goto fail;
	store_bind_text(s, 1, address);
	store_bind_text(s, 2, name ? name : "");
	sqlite3_bind_int64(s, 3, time_now_ms());
	if (store_step_done(s) < 0)
		goto fail;
	gid = sqlite3_last_insert_rowid(store_db(st));
	for (i = 0; i < nmembers; i++) {
		s = store_prepare(st, SQL_MEMBER_ADD);
		if (s == NULL)
			goto fail;
		sqlite3_bind_int64(s, 1, gid);
		store_bind_text(s, 2, members[i]);
		if (store_step_done(s) < 0)
			goto fail;
	}
	return 0;
fail:
	snprintf(err, errsz, "cannot add group: %s", store_errmsg(st));
	return -1;
}

int store_policy_group_add(struct store *st, const char *address, const char *name,
			   const char *const *members, size_t nmembers, char *err, size_t errsz)
{
	int taken = 0;

	if (store_begin(st) < 0) {
		snprintf(err, errsz, "cannot add group: %s", store_errmsg(st));
		return -1;
	}
	if (store_policy_group_add_tx(st, address, name, members, nmembers, &taken, err,
				      errsz) < 0) {
		store_rollback(st);
		return -1;
	}
	if (store_commit(st) < 0) {
		snprintf(err, errsz, "cannot add group: %s", store_errmsg(st));
		store_rollback(st);
		return -1;
	}
	return 0;
}

int store_policy_address_add(struct store *st, int64_t user_id, const char *address,
			      const char *kind, int *taken)
{
	sqlite3_stmt *s;

	if (addr_taken(st, address, taken) < 0)
		return -1;
	if (*taken)
		return 0;
	s = store_prepare(st, SQL_ADDR_ADD);
	if (s == NULL)
		return -1;
	store_bind_text(s, 1, address);
	sqlite3_bind_int64(s, 2, user_id);
	store_bind_text(s, 3, kind);
	return store_step_done(s);
}

int store_policy_address_remove(struct store *st, int64_t user_id, const char *address,
				int *removed)
{
	sqlite3_stmt *s = store_prepare(st, SQL_USER_ADDR_DEL);

	*removed = 0;
	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, user_id);
	store_bind_text(s, 2, address);
	if (store_step_done(s) < 0)
		return -1;
	*removed = sqlite3_changes(store_db(st));
	return 0;
}

static int group_id(struct store *st, const char *address, int64_t *gid)
{
	sqlite3_stmt *s = store_prepare(st, SQL_GROUP_ID);
	int rc;

	*gid = 0;
	if (s == NULL)
		return -1;
	store_bind_text(s, 1, address);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		*gid = sqlite3_column_int64(s, 0);
	sqlite3_reset(s);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -1;
}

/* Run a member statement (?1 group id, ?2 member) for the group's address. */
static int member_change(struct store *st, const char *sql, const char *group,
			 const char *member, int *found, int *changed)
{
	sqlite3_stmt *s;
	int64_t gid;

	*found = 0;
	*changed = 0;
	if (group_id(st, group, &gid) < 0)
		return -1;
	if (gid == 0)
		return 0;
	*found = 1;
	s = store_prepare(st, sql);
	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, gid);
	store_bind_text(s, 2, member);
	if (store_step_done(s) < 0)
		return -1;
	*changed = sqlite3_changes(store_db(st)) > 0;
	return 0;
}

int store_policy_member_add(struct store *st, const char *group, const char *member,
			    int *found, int *added)
{
	return member_change(st, SQL_MEMBER_ADD, group, member, found, added);
}

int store_policy_member_remove(struct store *st, const char *group, const char *member,
			       int *found, int *removed)
{
	return member_change(st, SQL_MEMBER_DEL, group, member, found, removed);
}

int store_policy_group_remove(struct store *st, const char *address, int *removed)
{
	sqlite3_stmt *s = store_prepare(st, SQL_GROUP_DEL);

	if (s == NULL)
		return -1;
	store_bind_text(s, 1, address);
	if (store_step_done(s) < 0)
		return -1;
	*removed = sqlite3_changes(store_db(st));
	return 0;
}

int store_policy_directory(struct store *st,
			   int (*cb)(const struct store_dir_row *r, void *arg), void *arg)
{
	sqlite3_stmt *s = store_prepare(st, SQL_DIRECTORY);
	struct store_dir_row r;
	int rc;

	if (s == NULL)
		return -1;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		r.address = col_text_or_empty(s, 0);
		r.kind = col_text_or_empty(s, 1);
		r.owner = col_text_or_empty(s, 2);
		r.members = sqlite3_column_type(s, 3) == SQLITE_NULL ? NULL : col_text_or_empty(s, 3);
		r.managers = sqlite3_column_type(s, 4) == SQLITE_NULL ? NULL : col_text_or_empty(s, 4);
		if (cb(&r, arg) != 0) {
			rc = SQLITE_DONE;
			break;
		}
	}
	sqlite3_reset(s);
	return rc == SQLITE_DONE ? 0 : -1;
}

int store_policy_stat_add(struct store *st, const char *check, int64_t day, int64_t count)
{
	sqlite3_stmt *s = store_prepare(st, SQL_STAT_ADD);

	if (s == NULL)
		return -1;
	store_bind_text(s, 1, check);
	sqlite3_bind_int64(s, 2, day);
	sqlite3_bind_int64(s, 3, count);
	return store_step_done(s);
}

int store_policy_dnsbl_stat_add(struct store *st, const char *zone, int64_t day,
				int64_t queries, int64_t hits, int64_t tempfails,
				int64_t last_hit)
{
	sqlite3_stmt *s = store_prepare(st, SQL_DNSBL_STAT_ADD);

	if (s == NULL)
		return -1;
	store_bind_text(s, 1, zone);
	sqlite3_bind_int64(s, 2, day);
	sqlite3_bind_int64(s, 3, queries);
	sqlite3_bind_int64(s, 4, hits);
	sqlite3_bind_int64(s, 5, tempfails);
	if (last_hit > 0)
		sqlite3_bind_int64(s, 6, last_hit);
	else
		sqlite3_bind_null(s, 6);
	return store_step_done(s);
}

int store_policy_dnsbl_stats(struct store *st, int64_t today,
			     int (*cb)(const struct store_dnsbl_stat *s, void *arg), void *arg)
{
	sqlite3_stmt *s = store_prepare(st, SQL_DNSBL_STATS);
	struct store_dnsbl_stat d;
	int rc;

	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, today);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		d.zone = col_text_or_empty(s, 0);
		d.queries = sqlite3_column_int64(s, 1);
		d.hits = sqlite3_column_int64(s, 2);
		d.tempfails = sqlite3_column_int64(s, 3);
		d.last_hit = sqlite3_column_int64(s, 4);
		d.hits_today = sqlite3_column_int64(s, 5);
		if (cb(&d, arg) != 0) {
			rc = SQLITE_DONE;
			break;
		}
	}
	sqlite3_reset(s);
	return rc == SQLITE_DONE ? 0 : -1;
}

int store_policy_stats(struct store *st, int64_t since_day,
		       int (*cb)(const char *check, int64_t day, int64_t count, void *arg),
		       void *arg)
{
	sqlite3_stmt *s = store_prepare(st, SQL_STATS);
	int rc;

	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, since_day);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW)
		if (cb(col_text_or_empty(s, 0), sqlite3_column_int64(s, 1), sqlite3_column_int64(s, 2),
		       arg) != 0) {
			rc = SQLITE_DONE;
			break;
		}
	sqlite3_reset(s);
	return rc == SQLITE_DONE ? 0 : -1;
}

int store_policy_dnsbl_daily(struct store *st, int64_t from_day, int64_t to_day,
			     int (*cb)(const struct store_dnsbl_day *d, void *arg), void *arg)
{
	sqlite3_stmt *s = store_prepare(st, SQL_DNSBL_DAILY);
	struct store_dnsbl_day d;
	int rc;

	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, from_day);
	sqlite3_bind_int64(s, 2, to_day);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		d.zone = col_text_or_empty(s, 0);
		d.day = sqlite3_column_int64(s, 1);
		d.queries = sqlite3_column_int64(s, 2);
		d.hits = sqlite3_column_int64(s, 3);
		d.tempfails = sqlite3_column_int64(s, 4);
		if (cb(&d, arg) != 0) {
			rc = SQLITE_DONE;
			break;
		}
	}
	sqlite3_reset(s);
	return rc == SQLITE_DONE ? 0 : -1;
}
