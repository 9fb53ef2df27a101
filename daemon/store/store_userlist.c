/*
 * store_userlist: SQL of personal sender lists and group managers.  See
 * store_userlist.h.
 */
#include "store_userlist.h"
#include "store.h"
#include "store_internal.h"

#include <sqlite3.h>

#include "../util/util.h"

static const char SQL_LIST[] =
	"SELECT id, user_id, kind, value, created FROM user_sender_list WHERE user_id = ?1"
	" ORDER BY id";
static const char SQL_COUNT[] = "SELECT count(*) FROM user_sender_list WHERE user_id = ?1";
static const char SQL_GET[] =
	"SELECT id, user_id, kind, value, created FROM user_sender_list"
	" WHERE user_id = ?1 AND id = ?2";
static const char SQL_ADD[] =
	"INSERT INTO user_sender_list (id, user_id, kind, value, created)"
	" VALUES (moat_next_id('user_sender_list'), ?1, ?2, ?3, ?4)"
	" ON CONFLICT (user_id, value) DO NOTHING";
static const char SQL_DEL[] = "DELETE FROM user_sender_list WHERE user_id = ?1 AND id = ?2";
static const char SQL_ALL[] =
	"SELECT id, user_id, kind, value, created FROM user_sender_list ORDER BY user_id, id";
static const char SQL_OWNERS[] =
	"SELECT address, user_id FROM dir_address"
	" WHERE user_id IN (SELECT DISTINCT user_id FROM user_sender_list)";
static const char SQL_GROUP_ID[] = "SELECT id FROM dir_group WHERE address = ?1";
static const char SQL_MANAGERS[] =
	"SELECT u.id, u.name FROM dir_group_manager m JOIN dir_user u ON u.id = m.user_id"
	" WHERE m.group_id = ?1 ORDER BY u.name";
static const char SQL_MANAGER_ADD[] =
	"INSERT OR IGNORE INTO dir_group_manager (group_id, user_id) VALUES (?1, ?2)";
static const char SQL_MANAGER_DEL[] =
	"DELETE FROM dir_group_manager WHERE group_id = ?1 AND user_id = ?2";

static int entry_rows(sqlite3_stmt *s, store_sender_cb cb, void *arg, int *found)
{
	struct store_sender_entry e;
	int rc;

	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		e.id = sqlite3_column_int64(s, 0);
		e.user_id = sqlite3_column_int64(s, 1);
		e.kind = store_col_text(s, 2);
		e.value = store_col_text(s, 3);
		e.created = sqlite3_column_int64(s, 4);
		if (e.kind == NULL || e.value == NULL)
			continue; /* NOT NULL in the schema: never */
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

int store_userlist_list(struct store *st, int64_t user_id, store_sender_cb cb, void *arg)
{
	sqlite3_stmt *s = store_prepare(st, SQL_LIST);

	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, user_id);
	return entry_rows(s, cb, arg, NULL);
}

int store_userlist_count(struct store *st, int64_t user_id, int64_t *n)
{
	sqlite3_stmt *s = store_prepare(st, SQL_COUNT);
	int rc;

	*n = 0;
	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, user_id);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		*n = sqlite3_column_int64(s, 0);
	sqlite3_reset(s);
	return rc == SQLITE_ROW ? 0 : -1;
}

int store_userlist_get(struct store *st, int64_t user_id, int64_t id, store_sender_cb cb,
		       void *arg, int *found)
{
	sqlite3_stmt *s = store_prepare(st, SQL_GET);

	*found = 0;
	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, user_id);
	sqlite3_bind_int64(s, 2, id);
	return entry_rows(s, cb, arg, found);
}

int store_userlist_add(struct store *st, int64_t user_id, const char *kind, const char *value,
		       int64_t *id, int *dup)
{
	sqlite3_stmt *s = store_prepare(st, SQL_ADD);

	*dup = 0;
	*id = 0;
	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, user_id);
	store_bind_text(s, 2, kind);
	store_bind_text(s, 3, value);
	sqlite3_bind_int64(s, 4, time_now_ms());
	if (store_step_done(s) < 0)
		return -1;
	if (sqlite3_changes(store_db(st)) == 0) {
		*dup = 1;
		return 0;
	}
	*id = sqlite3_last_insert_rowid(store_db(st));
	return 0;
}

int store_userlist_remove(struct store *st, int64_t user_id, int64_t id, int *removed)
{
	sqlite3_stmt *s = store_prepare(st, SQL_DEL);

	*removed = 0;
	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, user_id);
	sqlite3_bind_int64(s, 2, id);
	if (store_step_done(s) < 0)
		return -1;
	*removed = sqlite3_changes(store_db(st));
	return 0;
}

int store_userlist_all(struct store *st, store_sender_cb cb, void *arg)
{
	sqlite3_stmt *s = store_prepare(st, SQL_ALL);

	if (s == NULL)
		return -1;
	return entry_rows(s, cb, arg, NULL);
}

int store_userlist_owners(struct store *st,
			  int (*cb)(const char *address, int64_t user_id, void *arg), void *arg)
{
	sqlite3_stmt *s = store_prepare(st, SQL_OWNERS);
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

int store_userlist_managers(struct store *st, const char *group,
			    int (*cb)(int64_t user_id, const char *name, void *arg), void *arg,
			    int *found)
{
	sqlite3_stmt *s;
	int64_t gid;
	int rc;

	*found = 0;
	if (group_id(st, group, &gid) < 0)
		return -1;
	if (gid == 0)
		return 0;
	*found = 1;
	s = store_prepare(st, SQL_MANAGERS);
	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, gid);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		const char *name = store_col_text(s, 1);

		if (cb(sqlite3_column_int64(s, 0), name ? name : "", arg) != 0) {
			rc = SQLITE_DONE;
			break;
		}
	}
	sqlite3_reset(s);
	return rc == SQLITE_DONE ? 0 : -1;
}

/* Run a manager statement (?1 group id, ?2 user id) for the group's address. */
static int manager_change(struct store *st, const char *sql, const char *group,
			  int64_t user_id, int *found, int *changed)
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
	sqlite3_bind_int64(s, 2, user_id);
	if (store_step_done(s) < 0)
		return -1;
	*changed = sqlite3_changes(store_db(st)) > 0;
	return 0;
}

int store_userlist_manager_add(struct store *st, const char *group, int64_t user_id,
			       int *found, int *added)
{
	return manager_change(st, SQL_MANAGER_ADD, group, user_id, found, added);
}

int store_userlist_manager_remove(struct store *st, const char *group, int64_t user_id,
				  int *found, int *removed)
{
	return manager_change(st, SQL_MANAGER_DEL, group, user_id, found, removed);
}
