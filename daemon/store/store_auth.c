/*
 * store_auth: SQL of console users, sessions, API tokens, failed logins and
 * the audit log (schema/004).  See store_auth.h for the contract.
 *
 * Called from HTTP threads only, each with its own connection.  Every
 * statement is a static array prepared once per connection (store_prepare);
 * filters that may be absent are bound as NULL and tested with "?n IS NULL".
 * Passwords and tokens arrive hashed; this file never sees a secret.
 */
#include "store_auth.h"
#include "store_internal.h"

#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

#include "../util/util.h"

static void copy_col(sqlite3_stmt *s, int i, char *dst, size_t dstsz)
{
	const unsigned char *v = sqlite3_column_text(s, i);

	strlcpy_s(dst, v ? (const char *)v : "", dstsz);
}

const char *store_auth_errmsg(struct store *st)
{
	return store_errmsg(st);
}

/* Columns 0..7 of every user query, in this order. */
#define USER_COLS "u.id, u.name, u.role, u.disabled, u.created," \
	" coalesce(u.password_changed, 0), coalesce(u.password_hash, '')"

static void read_user(sqlite3_stmt *s, int at, struct store_user *u)
{
	memset(u, 0, sizeof(*u));
	u->id = sqlite3_column_int64(s, at);
	copy_col(s, at + 1, u->name, sizeof(u->name));
	copy_col(s, at + 2, u->role, sizeof(u->role));
	u->disabled = sqlite3_column_int(s, at + 3);
	u->created = sqlite3_column_int64(s, at + 4);
	u->password_changed = sqlite3_column_int64(s, at + 5);
	copy_col(s, at + 6, u->password_hash, sizeof(u->password_hash));
	u->has_password = u->password_hash[0] != '\0';
}

/* Step a statement expected to finish; 0 on SQLITE_DONE. */
/*
 * Steps a bound probe that finds a row when the name is taken: 0 when it
 * found none; -1 with *dup = 1 when it did; -1 on error.  Resets s.
 */
static int none_found(sqlite3_stmt *s, int *dup)
{
	int rc = sqlite3_step(s);

	sqlite3_reset(s);
	*dup = rc == SQLITE_ROW;
	return rc == SQLITE_DONE ? 0 : -1;
}

/* Steps a bound INSERT; *id is the new row's id. */
static int insert_id(struct store *st, sqlite3_stmt *s, int64_t *id)
{
	if (store_step_done(s) < 0)
		return -1;
	*id = sqlite3_last_insert_rowid(store_db(st));
	return 0;
}

static const char SQL_ADMIN_COUNT[] =
	"SELECT count(*), coalesce(sum(disabled = 0), 0) FROM dir_user WHERE role = 'admin'";

int store_auth_admin_count(struct store *st, int64_t *all, int64_t *enabled)
{
	sqlite3_stmt *s = store_prepare(st, SQL_ADMIN_COUNT);

	if (s == NULL)
		return -1;
	if (sqlite3_step(s) != SQLITE_ROW) {
		sqlite3_reset(s);
		return -1;
	}
	*all = sqlite3_column_int64(s, 0);
	*enabled = sqlite3_column_int64(s, 1);
	sqlite3_reset(s);
	return 0;
}

static const char SQL_USER_EXISTS[] = "SELECT 1 FROM dir_user WHERE name = ?1";
static const char SQL_USER_INSERT[] =
	"INSERT INTO dir_user (id, name, created, password_hash, role, disabled,"
	" password_changed) VALUES (moat_next_id('dir_user'), ?1, ?2, ?3, ?4, ?5,"
	" CASE WHEN ?3 IS NULL THEN NULL"
	" ELSE ?2 END)";

int store_auth_user_create(struct store *st, const char *name, const char *hash,
			   const char *role, int disabled, int64_t now, int64_t *id, int *dup)
{
	sqlite3_stmt *s = store_prepare(st, SQL_USER_EXISTS);

	*dup = 0;
	if (s == NULL)
		return -1;
	store_bind_text(s, 1, name);
	if (none_found(s, dup) < 0)
		return -1;
	s = store_prepare(st, SQL_USER_INSERT);
	if (s == NULL)
		return -1;
	store_bind_text(s, 1, name);
	sqlite3_bind_int64(s, 2, now);
	store_bind_text(s, 3, hash);
	store_bind_text(s, 4, role);
	sqlite3_bind_int(s, 5, disabled);
	return insert_id(st, s, id);
}

static const char SQL_USER_GET[] = "SELECT " USER_COLS " FROM dir_user u WHERE u.id = ?1";
static const char SQL_USER_BY_NAME[] =
	"SELECT " USER_COLS " FROM dir_user u WHERE u.name = ?1";

static int user_one(struct store *st, const char *sql, int64_t id, const char *name,
		    struct store_user *u, int *found)
{
	sqlite3_stmt *s = store_prepare(st, sql);
	int rc;

	*found = 0;
	if (s == NULL)
		return -1;
	if (name != NULL)
		store_bind_text(s, 1, name);
	else
		sqlite3_bind_int64(s, 1, id);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		read_user(s, 0, u);
		*found = 1;
		rc = SQLITE_DONE;
	}
	sqlite3_reset(s);
	return rc == SQLITE_DONE ? 0 : -1;
}

int store_auth_user_get(struct store *st, int64_t id, struct store_user *u, int *found)
{
	return user_one(st, SQL_USER_GET, id, NULL, u, found);
}

int store_auth_user_by_name(struct store *st, const char *name, struct store_user *u,
			    int *found)
{
	return user_one(st, SQL_USER_BY_NAME, 0, name, u, found);
}

static const char SQL_USER_UPDATE[] =
	"UPDATE dir_user SET role = ?2, disabled = ?3 WHERE id = ?1";

int store_auth_user_update(struct store *st, int64_t id, const char *role, int disabled)
{
	sqlite3_stmt *s = store_prepare(st, SQL_USER_UPDATE);

	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, id);
	store_bind_text(s, 2, role);
	sqlite3_bind_int(s, 3, disabled);
	return store_step_done(s);
}

static const char SQL_USER_SET_PASSWORD[] =
	"UPDATE dir_user SET password_hash = ?2, password_changed = ?3 WHERE id = ?1";

int store_auth_user_set_password(struct store *st, int64_t id, const char *hash,
				 int64_t now)
{
	sqlite3_stmt *s = store_prepare(st, SQL_USER_SET_PASSWORD);

	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, id);
	store_bind_text(s, 2, hash);
	sqlite3_bind_int64(s, 3, now);
	return store_step_done(s);
}

static const char SQL_USER_DELETE[] = "DELETE FROM dir_user WHERE id = ?1";

int store_auth_user_delete(struct store *st, int64_t id, int *removed)
{
	sqlite3_stmt *s = store_prepare(st, SQL_USER_DELETE);

	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, id);
	if (store_step_done(s) < 0)
		return -1;
	*removed = sqlite3_changes(store_db(st));
	return 0;
}

/* Small table: the sort is a bound parameter, not an index walk. */
static const char SQL_USERS[] =
	"SELECT " USER_COLS " FROM dir_user u"
	" WHERE (?1 IS NULL OR instr(lower(u.name), lower(?1)) > 0)"
	" AND (?2 IS NULL OR u.role = ?2) AND (?3 < 0 OR u.disabled = ?3)"
	" ORDER BY CASE WHEN ?4 = 'name' THEN u.name END ASC,"
	" CASE WHEN ?4 = '-name' THEN u.name END DESC,"
	" CASE WHEN ?4 = 'created' THEN u.created END ASC,"
	" CASE WHEN ?4 = '-created' THEN u.created END DESC,"
	" CASE WHEN ?4 = '-id' THEN u.id END DESC, u.id ASC"
	" LIMIT ?5 OFFSET ?6";

int store_auth_users(struct store *st, const struct store_user_filter *f,
		     int (*cb)(const struct store_user *u, void *arg), void *arg)
{
	sqlite3_stmt *s = store_prepare(st, SQL_USERS);
	struct store_user u;
	int rc;

	if (s == NULL)
		return -1;
	store_bind_text(s, 1, f->q);
	store_bind_text(s, 2, f->role);
	sqlite3_bind_int(s, 3, f->disabled);
	store_bind_text(s, 4, f->sort ? f->sort : "id");
	sqlite3_bind_int64(s, 5, f->limit);
	sqlite3_bind_int64(s, 6, f->offset);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		read_user(s, 0, &u);
		if (cb(&u, arg) != 0) {
			rc = SQLITE_DONE;
			break;
		}
	}
	sqlite3_reset(s);
	return rc == SQLITE_DONE ? 0 : -1;
}

static const char SQL_USER_ADDRS[] =
	"SELECT address, kind FROM dir_address WHERE user_id = ?1 ORDER BY address";

int store_auth_user_addresses(struct store *st, int64_t id,
			      int (*cb)(const char *address, const char *kind, void *arg),
			      void *arg)
{
	sqlite3_stmt *s = store_prepare(st, SQL_USER_ADDRS);
	int rc;

	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, id);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (cb(store_col_text(s, 0), store_col_text(s, 1), arg) != 0) {
			rc = SQLITE_DONE;
			break;
		}
	}
	sqlite3_reset(s);
	return rc == SQLITE_DONE ? 0 : -1;
}

static const char SQL_DIR_STAMP[] =
	"SELECT coalesce((SELECT generation FROM policy_meta WHERE id = 1), 0), count(*),"
	" coalesce(max(password_changed), 0), coalesce(sum(disabled), 0),"
	" coalesce(sum(disabled * id), 0) FROM dir_user";

int store_auth_dir_stamp(struct store *st, struct store_auth_stamp *out)
{
	sqlite3_stmt *s = store_prepare(st, SQL_DIR_STAMP);
	int rc;

	memset(out, 0, sizeof(*out));
	if (s == NULL)
		return -1;
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		out->generation = sqlite3_column_int64(s, 0);
		out->users = sqlite3_column_int64(s, 1);
		out->password_changed = sqlite3_column_int64(s, 2);
		out->disabled = sqlite3_column_int64(s, 3);
		out->disabled_ids = sqlite3_column_int64(s, 4);
	}
	sqlite3_reset(s);
	return rc == SQLITE_ROW ? 0 : -1;
}

/* ---- sessions ---- */

static const char SQL_SESSION_INSERT[] =
	"INSERT INTO api_session (id_hash, user_id, csrf, client_addr, created,"
	" last_seen, expires) VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?6)";

int store_auth_session_create(struct store *st, const char *id_hash, int64_t user_id,
			      const char *csrf, const char *addr, int64_t now,
			      int64_t expires)
{
	sqlite3_stmt *s = store_prepare(st, SQL_SESSION_INSERT);

	if (s == NULL)
		return -1;
	store_bind_text(s, 1, id_hash);
	sqlite3_bind_int64(s, 2, user_id);
	store_bind_text(s, 3, csrf);
	store_bind_text(s, 4, addr);
	sqlite3_bind_int64(s, 5, now);
	sqlite3_bind_int64(s, 6, expires);
	return store_step_done(s);
}

static const char SQL_SESSION_GET[] =
	"SELECT s.csrf, s.client_addr, s.created, s.last_seen, s.expires, " USER_COLS
	" FROM api_session s JOIN dir_user u ON u.id = s.user_id WHERE s.id_hash = ?1";

int store_auth_session_get(struct store *st, const char *id_hash, struct store_session *ss,
			   int *found)
{
	sqlite3_stmt *s = store_prepare(st, SQL_SESSION_GET);
	int rc;

	*found = 0;
	if (s == NULL)
		return -1;
	store_bind_text(s, 1, id_hash);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		copy_col(s, 0, ss->csrf, sizeof(ss->csrf));
		copy_col(s, 1, ss->client_addr, sizeof(ss->client_addr));
		ss->created = sqlite3_column_int64(s, 2);
		ss->last_seen = sqlite3_column_int64(s, 3);
		ss->expires = sqlite3_column_int64(s, 4);
		read_user(s, 5, &ss->user);
		*found = 1;
		rc = SQLITE_DONE;
	}
	sqlite3_reset(s);
	return rc == SQLITE_DONE ? 0 : -1;
}

static const char SQL_SESSION_TOUCH[] =
	"UPDATE api_session SET last_seen = ?2 WHERE id_hash = ?1";

int store_auth_session_touch(struct store *st, const char *id_hash, int64_t now)
{
	sqlite3_stmt *s = store_prepare(st, SQL_SESSION_TOUCH);

	if (s == NULL)
		return -1;
	store_bind_text(s, 1, id_hash);
	sqlite3_bind_int64(s, 2, now);
	return store_step_done(s);
}

static const char SQL_SESSION_DELETE[] = "DELETE FROM api_session WHERE id_hash = ?1";

int store_auth_session_delete(struct store *st, const char *id_hash)
{
	sqlite3_stmt *s = store_prepare(st, SQL_SESSION_DELETE);

	if (s == NULL)
		return -1;
	store_bind_text(s, 1, id_hash);
	return store_step_done(s);
}

static const char SQL_SESSION_DELETE_USER[] =
	"DELETE FROM api_session WHERE user_id = ?1 AND (?2 IS NULL OR id_hash <> ?2)";

int store_auth_session_delete_user(struct store *st, int64_t user_id,
				   const char *keep_hash)
{
	sqlite3_stmt *s = store_prepare(st, SQL_SESSION_DELETE_USER);

	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, user_id);
	store_bind_text(s, 2, keep_hash);
	return store_step_done(s);
}

static const char SQL_SESSION_PURGE[] =
	"DELETE FROM api_session WHERE expires <= ?1 OR last_seen < ?2";

int store_auth_session_purge(struct store *st, int64_t now, int64_t idle_before)
{
	sqlite3_stmt *s = store_prepare(st, SQL_SESSION_PURGE);

	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, now);
	sqlite3_bind_int64(s, 2, idle_before);
	return store_step_done(s);
}

/* ---- tokens ---- */

#define TOKEN_COLS "t.id, t.user_id, u.name, t.name, t.prefix, t.scope, t.created," \
	" coalesce(t.last_used, 0), coalesce(t.revoked, 0)"

static void read_token(sqlite3_stmt *s, struct store_token *t)
{
	memset(t, 0, sizeof(*t));
	t->id = sqlite3_column_int64(s, 0);
	t->user_id = sqlite3_column_int64(s, 1);
	copy_col(s, 2, t->user_name, sizeof(t->user_name));
	copy_col(s, 3, t->name, sizeof(t->name));
	copy_col(s, 4, t->prefix, sizeof(t->prefix));
	copy_col(s, 5, t->scope, sizeof(t->scope));
	t->created = sqlite3_column_int64(s, 6);
	t->last_used = sqlite3_column_int64(s, 7);
	t->revoked = sqlite3_column_int64(s, 8);
}

static const char SQL_TOKEN_DUP[] =
	"SELECT 1 FROM api_token WHERE user_id = ?1 AND name = ?2 AND revoked IS NULL";
static const char SQL_TOKEN_INSERT[] =
	"INSERT INTO api_token (id, user_id, name, hash, prefix, scope, created)"
	" VALUES (moat_next_id('api_token'), ?1, ?2, ?3, ?4, ?5, ?6)";

int store_auth_token_create(struct store *st, int64_t user_id, const char *name,
			    const char *hash, const char *prefix, const char *scope,
			    int64_t now, int64_t *id, int *dup)
{
	sqlite3_stmt *s = store_prepare(st, SQL_TOKEN_DUP);

	*dup = 0;
	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, user_id);
	store_bind_text(s, 2, name);
	if (none_found(s, dup) < 0)
		return -1;
	s = store_prepare(st, SQL_TOKEN_INSERT);
	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, user_id);
	store_bind_text(s, 2, name);
	store_bind_text(s, 3, hash);
	store_bind_text(s, 4, prefix);
	store_bind_text(s, 5, scope);
	sqlite3_bind_int64(s, 6, now);
	return insert_id(st, s, id);
}

static const char SQL_TOKEN_BY_HASH[] =
	"SELECT " TOKEN_COLS ", " USER_COLS " FROM api_token t"
	" JOIN dir_user u ON u.id = t.user_id WHERE t.hash = ?1";

int store_auth_token_by_hash(struct store *st, const char *hash, struct store_token *t,
			     struct store_user *u, int *found)
{
	sqlite3_stmt *s = store_prepare(st, SQL_TOKEN_BY_HASH);
	int rc;

	*found = 0;
	if (s == NULL)
		return -1;
	store_bind_text(s, 1, hash);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		read_token(s, t);
		read_user(s, 9, u);
		*found = 1;
		rc = SQLITE_DONE;
	}
	sqlite3_reset(s);
	return rc == SQLITE_DONE ? 0 : -1;
}

static const char SQL_TOKEN_GET[] =
	"SELECT " TOKEN_COLS " FROM api_token t JOIN dir_user u ON u.id = t.user_id"
	" WHERE t.id = ?1";

int store_auth_token_get(struct store *st, int64_t id, struct store_token *t, int *found)
{
	sqlite3_stmt *s = store_prepare(st, SQL_TOKEN_GET);
	int rc;

	*found = 0;
	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, id);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		read_token(s, t);
		*found = 1;
		rc = SQLITE_DONE;
	}
	sqlite3_reset(s);
	return rc == SQLITE_DONE ? 0 : -1;
}

static const char SQL_TOKENS[] =
	"SELECT " TOKEN_COLS " FROM api_token t JOIN dir_user u ON u.id = t.user_id"
	" WHERE (?1 = 0 OR t.user_id = ?1)"
	" AND (?2 < 0 OR (?2 = 0 AND t.revoked IS NULL) OR (?2 = 1 AND t.revoked IS NOT NULL))"
	" ORDER BY t.id LIMIT ?3 OFFSET ?4";

int store_auth_tokens(struct store *st, int64_t user_id, int revoked, int64_t limit,
		      int64_t offset, int (*cb)(const struct store_token *t, void *arg),
		      void *arg)
{
	sqlite3_stmt *s = store_prepare(st, SQL_TOKENS);
	struct store_token t;
	int rc;

	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, user_id);
	sqlite3_bind_int(s, 2, revoked);
	sqlite3_bind_int64(s, 3, limit);
	sqlite3_bind_int64(s, 4, offset);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		read_token(s, &t);
		if (cb(&t, arg) != 0) {
			rc = SQLITE_DONE;
			break;
		}
	}
	sqlite3_reset(s);
	return rc == SQLITE_DONE ? 0 : -1;
}

static const char SQL_TOKEN_REVOKE[] =
	"UPDATE api_token SET revoked = ?2 WHERE id = ?1 AND revoked IS NULL";

int store_auth_token_revoke(struct store *st, int64_t id, int64_t now, int *changed)
{
	sqlite3_stmt *s = store_prepare(st, SQL_TOKEN_REVOKE);

	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, id);
	sqlite3_bind_int64(s, 2, now);
	if (store_step_done(s) < 0)
		return -1;
	*changed = sqlite3_changes(store_db(st));
	return 0;
}

static const char SQL_TOKEN_TOUCH[] = "UPDATE api_token SET last_used = ?2 WHERE id = ?1";

int store_auth_token_touch(struct store *st, int64_t id, int64_t now)
{
	sqlite3_stmt *s = store_prepare(st, SQL_TOKEN_TOUCH);

	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, id);
	sqlite3_bind_int64(s, 2, now);
	return store_step_done(s);
}

/* ---- failed logins ---- */

static const char SQL_FAIL_ADD[] =
	"INSERT INTO api_login_failure (ts, client_addr, account) VALUES (?1, ?2, ?3)";

int store_auth_failure_add(struct store *st, const char *addr, const char *account,
			   int64_t now)
{
	sqlite3_stmt *s = store_prepare(st, SQL_FAIL_ADD);

	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, now);
	store_bind_text(s, 2, addr);
	store_bind_text(s, 3, account);
	return store_step_done(s);
}

static const char SQL_FAIL_BY_ADDR[] =
	"SELECT count(*), coalesce(min(ts), 0) FROM api_login_failure"
	" WHERE client_addr = ?1 AND ts >= ?2";
static const char SQL_FAIL_BY_ACCOUNT[] =
	"SELECT count(*), coalesce(min(ts), 0) FROM api_login_failure"
	" WHERE account = ?1 AND ts >= ?2";

static int fail_count(struct store *st, const char *sql, const char *key, int64_t since,
		      int64_t *count, int64_t *oldest)
{
	sqlite3_stmt *s = store_prepare(st, sql);

	if (s == NULL)
		return -1;
	store_bind_text(s, 1, key);
	sqlite3_bind_int64(s, 2, since);
	if (sqlite3_step(s) != SQLITE_ROW) {
		sqlite3_reset(s);
		return -1;
	}
	*count = sqlite3_column_int64(s, 0);
	*oldest = sqlite3_column_int64(s, 1);
	sqlite3_reset(s);
	return 0;
}

int store_auth_failures_by_addr(struct store *st, const char *addr, int64_t since,
				int64_t *count, int64_t *oldest)
{
	return fail_count(st, SQL_FAIL_BY_ADDR, addr, since, count, oldest);
}

int store_auth_failures_by_account(struct store *st, const char *account, int64_t since,
				   int64_t *count, int64_t *oldest)
{
	return fail_count(st, SQL_FAIL_BY_ACCOUNT, account, since, count, oldest);
}

static const char SQL_FAIL_BY_PAIR[] =
	"SELECT count(*), coalesce(max(ts), 0) FROM api_login_failure"
	" WHERE account = ?1 AND client_addr = ?2 AND ts >= ?3";

static int pair_count(struct store *st, const char *account, const char *addr, int64_t since,
		      int64_t *count, int64_t *newest)
{
	sqlite3_stmt *s = store_prepare(st, SQL_FAIL_BY_PAIR);

	if (s == NULL)
		return -1;
	store_bind_text(s, 1, account);
	store_bind_text(s, 2, addr);
	sqlite3_bind_int64(s, 3, since);
	if (sqlite3_step(s) != SQLITE_ROW) {
		sqlite3_reset(s);
		return -1;
	}
	*count = sqlite3_column_int64(s, 0);
	*newest = sqlite3_column_int64(s, 1);
	sqlite3_reset(s);
	return 0;
}

static const char SQL_FAIL_CLEAR_PAIR[] =
	"DELETE FROM api_login_failure WHERE account = ?1 AND client_addr = ?2";

static const char SQL_KNOWN_ADD[] =
	"INSERT INTO login_known_addr (account, client_addr, first_ok, last_ok)"
	" VALUES (?1, ?2, ?3, ?3)"
	" ON CONFLICT (account, client_addr) DO UPDATE SET last_ok = excluded.last_ok";

static const char SQL_KNOWN_GET[] =
	"SELECT 1 FROM login_known_addr WHERE account = ?1 AND client_addr = ?2";

int store_auth_login_failed(struct store *st, const char *account, const char *addr,
			    int64_t now)
{
	return store_auth_failure_add(st, addr, account, now);
}

int store_auth_login_succeeded(struct store *st, const char *account, const char *addr,
			       int64_t now)
{
	sqlite3_stmt *s = store_prepare(st, SQL_FAIL_CLEAR_PAIR);

	if (s == NULL)
		return -1;
	store_bind_text(s, 1, account);
	store_bind_text(s, 2, addr);
	if (store_step_done(s) < 0)
		return -1;
	s = store_prepare(st, SQL_KNOWN_ADD);
	if (s == NULL)
		return -1;
	store_bind_text(s, 1, account);
	store_bind_text(s, 2, addr);
	sqlite3_bind_int64(s, 3, now);
	return store_step_done(s);
}

static int known_addr(struct store *st, const char *account, const char *addr, int *known)
{
	sqlite3_stmt *s = store_prepare(st, SQL_KNOWN_GET);
	int rc;

	if (s == NULL)
		return -1;
	store_bind_text(s, 1, account);
	store_bind_text(s, 2, addr);
	rc = sqlite3_step(s);
	sqlite3_reset(s);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return -1;
	*known = rc == SQLITE_ROW;
	return 0;
}

int64_t store_login_pair_wait(const struct store_login_limits *lim, int64_t failures,
			      int64_t newest, int64_t now)
{
	int64_t wait;
	int64_t extra;

	if (failures < lim->throttle_after)
		return 0;
	/* Doubling from delay_ms, capped; the cap test comes before the shift
	 * can overflow. */
	wait = lim->delay_ms;
	for (extra = failures - lim->throttle_after; extra > 0; extra--) {
		if (wait >= lim->delay_max_ms / 2) {
			wait = lim->delay_max_ms;
			break;
		}
		wait *= 2;
	}
	if (wait > lim->delay_max_ms)
		wait = lim->delay_max_ms;
	return newest + wait > now ? newest + wait - now : 0;
}

int store_auth_login_gate(struct store *st, const char *account, const char *addr,
			  int64_t now, const struct store_login_limits *lim,
			  enum store_login_gate *why, int64_t *wait_ms)
{
	int64_t since = now - lim->window_ms;
	int64_t n, t, w;
	int known = 0;

	*why = STORE_LOGIN_OK;
	*wait_ms = 0;
	if (lim->max_per_addr > 0) {
		if (fail_count(st, SQL_FAIL_BY_ADDR, addr, since, &n, &t) < 0)
			return -1;
		if (n >= lim->max_per_addr) {
			*why = STORE_LOGIN_ADDR;
			*wait_ms = t + lim->window_ms - now;
		}
	}
	if (pair_count(st, account, addr, since, &n, &t) < 0)
		return -1;
	w = store_login_pair_wait(lim, n, t, now);
	if (w > *wait_ms) {
		*why = STORE_LOGIN_PAIR;
		*wait_ms = w;
	}
	if (fail_count(st, SQL_FAIL_BY_ACCOUNT, account, since, &n, &t) < 0)
		return -1;
	if (n >= lim->max_per_account && t + lim->window_ms - now > *wait_ms) {
		if (known_addr(st, account, addr, &known) < 0)
			return -1;
		if (!known) {
			*why = STORE_LOGIN_ACCOUNT;
			*wait_ms = t + lim->window_ms - now;
		}
	}
	if (*wait_ms <= 0) {
		*why = STORE_LOGIN_OK;
		*wait_ms = 0;
	}
	return 0;
}

static const char SQL_FAIL_PURGE[] = "DELETE FROM api_login_failure WHERE ts < ?1";

int store_auth_failures_purge(struct store *st, int64_t before)
{
	sqlite3_stmt *s = store_prepare(st, SQL_FAIL_PURGE);

	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, before);
	return store_step_done(s);
}

/* ---- audit ---- */

static const char SQL_AUDIT_ADD[] =
	"INSERT INTO api_audit (id, ts, actor_id, actor, via, client_addr, action,"
	" object_type, object_id, before, after)"
	" VALUES (moat_next_id('api_audit'), ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)";

int store_auth_audit_add(struct store *st, const struct store_audit *a)
{
	sqlite3_stmt *s = store_prepare(st, SQL_AUDIT_ADD);

	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, a->ts);
	if (a->actor_id > 0)
		sqlite3_bind_int64(s, 2, a->actor_id);
	else
		sqlite3_bind_null(s, 2);
	store_bind_text(s, 3, a->actor);
	store_bind_text(s, 4, a->via);
	store_bind_text(s, 5, a->client_addr);
	store_bind_text(s, 6, a->action);
	store_bind_text(s, 7, a->object_type);
	store_bind_text(s, 8, a->object_id);
	store_bind_text(s, 9, a->before);
	store_bind_text(s, 10, a->after);
	return store_step_done(s);
}

static const char SQL_AUDIT_LIST[] =
	"SELECT id, ts, coalesce(actor_id, 0), actor, via, client_addr, action,"
	" object_type, object_id, before, after FROM api_audit"
	" WHERE (?1 = 0 OR ts >= ?1) AND (?2 = 0 OR ts < ?2)"
	" AND (?3 IS NULL OR actor = ?3) AND (?4 IS NULL OR action = ?4)"
	" AND (?5 IS NULL OR object_type = ?5) AND (?6 = 0 OR id < ?6)"
	" ORDER BY id DESC LIMIT ?7 OFFSET ?8";

int store_auth_audit_list(struct store *st, const struct store_audit_filter *f,
			  int (*cb)(const struct store_audit *a, void *arg), void *arg)
{
	sqlite3_stmt *s = store_prepare(st, SQL_AUDIT_LIST);
	struct store_audit a;
	int rc;

	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, f->from);
	sqlite3_bind_int64(s, 2, f->to);
	store_bind_text(s, 3, f->actor);
	store_bind_text(s, 4, f->action);
	store_bind_text(s, 5, f->object_type);
	sqlite3_bind_int64(s, 6, f->before_id);
	sqlite3_bind_int64(s, 7, f->limit);
	sqlite3_bind_int64(s, 8, f->offset);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		a.id = sqlite3_column_int64(s, 0);
		a.ts = sqlite3_column_int64(s, 1);
		a.actor_id = sqlite3_column_int64(s, 2);
		a.actor = store_col_text(s, 3);
		a.via = store_col_text(s, 4);
		a.client_addr = store_col_text(s, 5);
		a.action = store_col_text(s, 6);
		a.object_type = store_col_text(s, 7);
		a.object_id = store_col_text(s, 8);
		a.before = store_col_text(s, 9);
		a.after = store_col_text(s, 10);
		if (cb(&a, arg) != 0) {
			rc = SQLITE_DONE;
			break;
		}
	}
	sqlite3_reset(s);
	return rc == SQLITE_DONE ? 0 : -1;
}
