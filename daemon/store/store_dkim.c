/*
 * store_dkim: SQL of the DKIM signing keys.  See store_dkim.h.
 */
#include "store_dkim.h"
#include "store.h"
#include "store_internal.h"

#include <sqlite3.h>
#include <string.h>

#include "../util/util.h"

#define KEY_COLS "id, domain, selector, algorithm, bits, public_b64, enabled, created_ms"

static const char SQL_EACH[] =
	"SELECT " KEY_COLS ", NULL FROM dkim_key ORDER BY domain, id DESC";
static const char SQL_EACH_PRIV[] =
	"SELECT " KEY_COLS ", private_pem FROM dkim_key ORDER BY domain, id DESC";
static const char SQL_EACH_ENABLED_PRIV[] =
	"SELECT " KEY_COLS ", private_pem FROM dkim_key WHERE enabled = 1"
	" ORDER BY domain, id DESC";
static const char SQL_EACH_ENABLED[] =
	"SELECT " KEY_COLS ", NULL FROM dkim_key WHERE enabled = 1 ORDER BY domain, id DESC";
static const char SQL_GET[] = "SELECT " KEY_COLS ", NULL FROM dkim_key WHERE id = ?1";
static const char SQL_GET_PRIV[] =
	"SELECT " KEY_COLS ", private_pem FROM dkim_key WHERE id = ?1";
static const char SQL_DUP[] = "SELECT 1 FROM dkim_key WHERE domain = ?1 AND selector = ?2";
static const char SQL_ADD[] =
	"INSERT INTO dkim_key (id, domain, selector, algorithm, bits, private_pem, public_b64,"
	" enabled, created_ms) VALUES (moat_next_id('dkim_key'), ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";
static const char SQL_ENABLE[] =
	"UPDATE dkim_key SET enabled = ?2 WHERE id = ?1 AND enabled <> ?2";
static const char SQL_EXISTS[] = "SELECT 1 FROM dkim_key WHERE id = ?1";
static const char SQL_DELETE[] = "DELETE FROM dkim_key WHERE id = ?1";
/* "*.example.com" stands for its subdomains (docs/policy.md). */
static const char SQL_LOCAL[] =
	"SELECT 1 FROM policy_entry WHERE list = 'local_domain' AND (value = ?1 OR"
	" (substr(value, 1, 2) = '*.' AND length(?1) > length(value) - 1 AND"
	"  substr(?1, length(?1) - length(value) + 2) = substr(value, 2))) LIMIT 1";
static const char SQL_LOCALS[] =
	"SELECT value FROM policy_entry WHERE list = 'local_domain' AND substr(value, 1, 1) <> '*'"
	" ORDER BY id";

const char *store_dkim_errmsg(struct store *st)
{
	return store_errmsg(st);
}

static int each_row(sqlite3_stmt *s, store_dkim_fn cb, void *arg, int *found)
{
	struct store_dkim_key k;
	int rc;

	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		k.id = sqlite3_column_int64(s, 0);
		k.domain = store_col_text(s, 1);
		k.selector = store_col_text(s, 2);
		k.algorithm = store_col_text(s, 3);
		k.bits = sqlite3_column_int64(s, 4);
		k.public_b64 = store_col_text(s, 5);
		k.enabled = sqlite3_column_int(s, 6);
		k.created_ms = sqlite3_column_int64(s, 7);
		k.private_pem = store_col_text(s, 8);
		if (found != NULL)
			*found = 1;
		if (cb(&k, arg) != 0) {
			rc = SQLITE_DONE;
			break;
		}
	}
	sqlite3_reset(s);
	return rc == SQLITE_DONE ? 0 : -1;
}

int store_dkim_each(struct store *st, int enabled_only, int with_private, store_dkim_fn cb,
		    void *arg)
{
	const char *sql = enabled_only ? (with_private ? SQL_EACH_ENABLED_PRIV : SQL_EACH_ENABLED)
				       : (with_private ? SQL_EACH_PRIV : SQL_EACH);
	sqlite3_stmt *s = store_prepare(st, sql);

	if (s == NULL)
		return -1;
	return each_row(s, cb, arg, NULL);
}

int store_dkim_get(struct store *st, int64_t id, int with_private, store_dkim_fn cb, void *arg,
		   int *found)
{
	sqlite3_stmt *s = store_prepare(st, with_private ? SQL_GET_PRIV : SQL_GET);

	*found = 0;
	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, id);
	return each_row(s, cb, arg, found);
}

int store_dkim_add(struct store *st, const struct store_dkim_key *k, int64_t *id, int *dup)
{
	sqlite3_stmt *s = store_prepare(st, SQL_DUP);
	int rc;

	*dup = 0;
	if (s == NULL)
		return -1;
	store_bind_text(s, 1, k->domain);
	store_bind_text(s, 2, k->selector);
	rc = sqlite3_step(s);
	sqlite3_reset(s);
	if (rc == SQLITE_ROW) {
		*dup = 1;
		return -1;
	}
	if (rc != SQLITE_DONE)
		return -1;
	s = store_prepare(st, SQL_ADD);
	if (s == NULL)
		return -1;
	store_bind_text(s, 1, k->domain);
	store_bind_text(s, 2, k->selector);
	store_bind_text(s, 3, k->algorithm);
	sqlite3_bind_int64(s, 4, k->bits);
	store_bind_text(s, 5, k->private_pem);
	store_bind_text(s, 6, k->public_b64);
	sqlite3_bind_int(s, 7, k->enabled ? 1 : 0);
	sqlite3_bind_int64(s, 8, k->created_ms > 0 ? k->created_ms : time_now_ms());
	if (store_step_done(s) < 0)
		return -1;
	*id = sqlite3_last_insert_rowid(store_db(st));
	return 0;
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

int store_dkim_set_enabled(struct store *st, int64_t id, int enabled, int *found)
{
	sqlite3_stmt *s;

	/* Only a real change writes, so that setting the same value again does
	 * not bump the policy generation. */
	if (exists(st, id, found) < 0)
		return -1;
	if (!*found)
		return 0;
	s = store_prepare(st, SQL_ENABLE);
	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, id);
	sqlite3_bind_int(s, 2, enabled ? 1 : 0);
	return store_step_done(s);
}

int store_dkim_delete(struct store *st, int64_t id, int *found)
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

int store_dkim_local_domain(struct store *st, const char *domain, int *yes)
{
	sqlite3_stmt *s = store_prepare(st, SQL_LOCAL);
	int rc;

	*yes = 0;
	if (s == NULL)
		return -1;
	store_bind_text(s, 1, domain);
	rc = sqlite3_step(s);
	sqlite3_reset(s);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return -1;
	*yes = rc == SQLITE_ROW;
	return 0;
}

int store_dkim_local_domains(struct store *st, int (*cb)(const char *domain, void *arg),
			     void *arg)
{
	sqlite3_stmt *s = store_prepare(st, SQL_LOCALS);
	int rc;

	if (s == NULL)
		return -1;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (cb(store_col_text(s, 0), arg) != 0) {
			rc = SQLITE_DONE;
			break;
		}
	}
	sqlite3_reset(s);
	return rc == SQLITE_DONE ? 0 : -1;
}
