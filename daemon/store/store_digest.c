/*
 * store_digest: SQL of digests and their links.  See store_digest.h.
 *
 * The item query is the quarantine's user scope (an end user's addresses
 * and the groups they manage), written once here for the digest; it walks
 * the index quarantine_rcpt (rcpt, created_at) once per address.
 */
#include "store_digest.h"
#include "store_policy.h"
#include "store.h"
#include "store_internal.h"

#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#include "../util/util.h"

static const char SQL_DUE[] =
	"SELECT id FROM dir_user WHERE digest_interval = ?1 AND disabled = 0"
	" AND COALESCE(digest_last_at, 0) < ?2 ORDER BY id LIMIT ?3";
static const char SQL_USER_ID[] =
	"SELECT u.id, u.name, u.digest_interval, COALESCE(u.digest_last_at, 0), u.disabled,"
	" (SELECT a.address FROM dir_address a WHERE a.user_id = u.id"
	"  ORDER BY a.kind = 'primary' DESC, a.address LIMIT 1)"
	" FROM dir_user u WHERE u.id = ?1";
static const char SQL_USER_NAME[] =
	"SELECT u.id, u.name, u.digest_interval, COALESCE(u.digest_last_at, 0), u.disabled,"
	" (SELECT a.address FROM dir_address a WHERE a.user_id = u.id"
	"  ORDER BY a.kind = 'primary' DESC, a.address LIMIT 1)"
	" FROM dir_user u WHERE u.name = ?1";
/* The scope: the user's addresses and the addresses of groups they manage. */
#define SCOPE \
	" rcpt IN (SELECT address FROM dir_address WHERE user_id = ?1" \
	" UNION SELECT g.address FROM dir_group g JOIN dir_group_manager m" \
	" ON m.group_id = g.id WHERE m.user_id = ?1)"
static const char SQL_ITEMS[] =
	"SELECT id, qid, rcpt, kind, reason, sender, subject, created_at, expires_at"
	" FROM quarantine WHERE" SCOPE
	" AND created_at > ?2 AND created_at <= ?3 AND expires_at > ?3"
	" ORDER BY created_at DESC, id DESC LIMIT ?4";
static const char SQL_ITEMS_COUNT[] =
	"SELECT count(*) FROM quarantine WHERE" SCOPE
	" AND created_at > ?2 AND created_at <= ?3 AND expires_at > ?3";
static const char SQL_ITEM_GET[] =
	"SELECT qid, kind, sender, subject FROM quarantine WHERE id = ?1 AND rcpt = ?2";
static const char SQL_NONCE_SEEN[] = "SELECT 1 FROM digest_link_used WHERE nonce = ?1";
static const char SQL_MARK[] = "UPDATE dir_user SET digest_last_at = ?2 WHERE id = ?1";
static const char SQL_INTERVAL[] = "UPDATE dir_user SET digest_interval = ?2 WHERE id = ?1";
static const char SQL_NONCE_USE[] =
	"INSERT INTO digest_link_used (nonce, used_at, expires_at) VALUES (?1, ?2, ?3)"
	" ON CONFLICT (nonce) DO NOTHING";
static const char SQL_NONCE_FORGET[] = "DELETE FROM digest_link_used WHERE nonce = ?1";
static const char SQL_NONCE_PURGE[] =
	"DELETE FROM digest_link_used WHERE nonce IN (SELECT nonce FROM digest_link_used"
	" WHERE expires_at < ?1 LIMIT ?2)";
static const char SQL_TPL_GET[] = "SELECT subject, text, html FROM digest_template WHERE id = 1";
static const char SQL_TPL_SET[] =
	"INSERT INTO digest_template (id, subject, text, html, updated) VALUES (1, ?1, ?2, ?3, ?4)"
	" ON CONFLICT (id) DO UPDATE SET subject = ?1, text = ?2, html = ?3, updated = ?4";
static const char SQL_TPL_RESET[] = "DELETE FROM digest_template";
static const char SQL_FIRST_LOCAL[] =
	"SELECT lower(value) FROM policy_entry WHERE list = 'local_domain'"
	" AND instr(value, '*') = 0 ORDER BY id LIMIT 1";

const char *store_digest_errmsg(struct store *st)
{
	return store_errmsg(st);
}

int store_digest_due(struct store *st, const char *iv, int64_t before, int64_t *ids,
		     size_t limit, size_t *n)
{
	sqlite3_stmt *s = store_prepare(st, SQL_DUE);
	int rc;

	*n = 0;
	if (s == NULL)
		return -1;
	store_bind_text(s, 1, iv);
	sqlite3_bind_int64(s, 2, before);
	sqlite3_bind_int64(s, 3, (sqlite3_int64)limit);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW && *n < limit)
		ids[(*n)++] = sqlite3_column_int64(s, 0);
	sqlite3_reset(s);
	return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : -1;
}

int store_digest_user_get(struct store *st, int64_t id, const char *name,
			  struct store_digest_user *u, int *found)
{
	sqlite3_stmt *s = store_prepare(st, name != NULL ? SQL_USER_NAME : SQL_USER_ID);
	const char *v;
	int rc;

	*found = 0;
	memset(u, 0, sizeof(*u));
	if (s == NULL)
		return -1;
	if (name != NULL)
		store_bind_text(s, 1, name);
	else
		sqlite3_bind_int64(s, 1, id);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		*found = 1;
		u->id = sqlite3_column_int64(s, 0);
		strlcpy_s(u->name, store_col_text(s, 1), sizeof(u->name));
		strlcpy_s(u->interval, store_col_text(s, 2), sizeof(u->interval));
		u->last_at = sqlite3_column_int64(s, 3);
		u->disabled = sqlite3_column_int(s, 4);
		v = store_col_text(s, 5);
		strlcpy_s(u->address, v != NULL ? v : "", sizeof(u->address));
		rc = SQLITE_DONE;
	}
	sqlite3_reset(s);
	return rc == SQLITE_DONE ? 0 : -1;
}

int store_digest_items(struct store *st, int64_t user_id, int64_t after, int64_t until,
		       int64_t limit, int (*cb)(const struct store_digest_item *it, void *arg),
		       void *arg, int64_t *total)
{
	sqlite3_stmt *s = store_prepare(st, SQL_ITEMS_COUNT);
	struct store_digest_item it;
	int rc;

	*total = 0;
	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, user_id);
	sqlite3_bind_int64(s, 2, after);
	sqlite3_bind_int64(s, 3, until);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		*total = sqlite3_column_int64(s, 0);
	sqlite3_reset(s);
	if (rc != SQLITE_ROW)
		return -1;
	if (*total == 0 || limit <= 0)
		return 0;
	s = store_prepare(st, SQL_ITEMS);
	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, user_id);
	sqlite3_bind_int64(s, 2, after);
	sqlite3_bind_int64(s, 3, until);
	sqlite3_bind_int64(s, 4, limit);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		it.id = sqlite3_column_int64(s, 0);
		it.qid = store_col_text(s, 1);
		it.rcpt = store_col_text(s, 2);
		it.kind = store_col_text(s, 3);
		it.reason = store_col_text(s, 4);
		it.sender = store_col_text(s, 5);
		it.subject = store_col_text(s, 6);
		it.created_at = sqlite3_column_int64(s, 7);
		it.expires_at = sqlite3_column_int64(s, 8);
		if (cb(&it, arg) != 0) {
			rc = SQLITE_DONE;
			break;
		}
	}
	sqlite3_reset(s);
	return rc == SQLITE_DONE ? 0 : -1;
}

int store_digest_item_get(struct store *st, int64_t id, const char *rcpt,
			  struct store_digest_item_info *it, int *found)
{
	sqlite3_stmt *s = store_prepare(st, SQL_ITEM_GET);
	int rc;

	*found = 0;
	memset(it, 0, sizeof(*it));
	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, id);
	store_bind_text(s, 2, rcpt);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		const char *subj = store_col_text(s, 3);

		*found = 1;
		strlcpy_s(it->qid, store_col_text(s, 0), sizeof(it->qid));
		strlcpy_s(it->kind, store_col_text(s, 1), sizeof(it->kind));
		strlcpy_s(it->sender, store_col_text(s, 2), sizeof(it->sender));
		strlcpy_s(it->subject, subj != NULL ? subj : "", sizeof(it->subject));
		rc = SQLITE_DONE;
	}
	sqlite3_reset(s);
	return rc == SQLITE_DONE ? 0 : -1;
}

int store_digest_nonce_seen(struct store *st, const char *nonce, int *used)
{
	sqlite3_stmt *s = store_prepare(st, SQL_NONCE_SEEN);
	int rc;

	*used = 0;
	if (s == NULL)
		return -1;
	store_bind_text(s, 1, nonce);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		*used = 1;
		rc = SQLITE_DONE;
	}
	sqlite3_reset(s);
	return rc == SQLITE_DONE ? 0 : -1;
}

int store_digest_mark(struct store *st, int64_t user_id, int64_t at)
{
	sqlite3_stmt *s = store_prepare(st, SQL_MARK);

	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, user_id);
	sqlite3_bind_int64(s, 2, at);
	return store_step_done(s);
}

int store_digest_interval_set(struct store *st, int64_t user_id, const char *iv, int *found)
{
	sqlite3_stmt *s = store_prepare(st, SQL_INTERVAL);

	*found = 0;
	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, user_id);
	store_bind_text(s, 2, iv);
	if (store_step_done(s) < 0)
		return -1;
	*found = sqlite3_changes(store_db(st)) > 0;
	return 0;
}

int store_digest_nonce_use(struct store *st, const char *nonce, int64_t now,
			   int64_t expires_at, int *used)
{
	sqlite3_stmt *s = store_prepare(st, SQL_NONCE_USE);

	*used = 0;
	if (s == NULL)
		return -1;
	store_bind_text(s, 1, nonce);
	sqlite3_bind_int64(s, 2, now);
	sqlite3_bind_int64(s, 3, expires_at);
	if (store_step_done(s) < 0)
		return -1;
	*used = sqlite3_changes(store_db(st)) == 0;
	return 0;
}

int store_digest_nonce_forget(struct store *st, const char *nonce)
{
	sqlite3_stmt *s = store_prepare(st, SQL_NONCE_FORGET);

	if (s == NULL)
		return -1;
	store_bind_text(s, 1, nonce);
	return store_step_done(s);
}

int store_digest_nonce_purge(struct store *st, int64_t now, int limit)
{
	sqlite3_stmt *s = store_prepare(st, SQL_NONCE_PURGE);

	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, now);
	sqlite3_bind_int(s, 2, limit);
	if (store_step_done(s) < 0)
		return -1;
	return sqlite3_changes(store_db(st));
}

int store_digest_template_get(struct store *st, char **subject, char **text, char **html,
			      int *found)
{
	sqlite3_stmt *s = store_prepare(st, SQL_TPL_GET);
	int rc;

	*found = 0;
	*subject = *text = *html = NULL;
	if (s == NULL)
		return -1;
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		*found = 1;
		*subject = xstrdup(store_col_text(s, 0));
		*text = xstrdup(store_col_text(s, 1));
		*html = xstrdup(store_col_text(s, 2));
		rc = SQLITE_DONE;
	}
	sqlite3_reset(s);
	return rc == SQLITE_DONE ? 0 : -1;
}

int store_digest_template_set(struct store *st, const char *subject, const char *text,
			      const char *html, int64_t now)
{
	sqlite3_stmt *s = store_prepare(st, SQL_TPL_SET);

	if (s == NULL)
		return -1;
	store_bind_text(s, 1, subject);
	store_bind_text(s, 2, text);
	store_bind_text(s, 3, html);
	sqlite3_bind_int64(s, 4, now);
	return store_step_done(s);
}

int store_digest_template_reset(struct store *st)
{
	sqlite3_stmt *s = store_prepare(st, SQL_TPL_RESET);

	if (s == NULL)
		return -1;
	return store_step_done(s);
}

int store_digest_postmaster(struct store *st, char *out, size_t outsz)
{
	sqlite3_stmt *s;
	int found, rc;

	if (store_policy_setting(st, "postmaster_address", out, outsz, &found) < 0)
		return -1;
	if (out[0] != '\0')
		return 0;
	s = store_prepare(st, SQL_FIRST_LOCAL);
	if (s == NULL)
		return -1;
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		const char *d = store_col_text(s, 0);

		if (d != NULL && strlen(d) + sizeof("postmaster@") <= outsz) {
			strlcpy_s(out, "postmaster@", outsz);
			strlcpy_s(out + strlen(out), d, outsz - strlen(out));
		}
		rc = SQLITE_DONE;
	}
	sqlite3_reset(s);
	return rc == SQLITE_DONE ? 0 : -1;
}
