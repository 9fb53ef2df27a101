/*
 * store_bayes: SQL of the statistical filter's token store.  See
 * store_bayes.h and schema/020_bayes.sql.
 */
#include "store_bayes.h"
#include "store.h"
#include "store_internal.h"

#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

static const char SQL_KEY_GET[] = "SELECT value FROM bayes_meta WHERE name = 'key'";
static const char SQL_KEY_SET[] =
	"INSERT INTO bayes_meta (name, value) VALUES ('key', ?1) ON CONFLICT (name) DO NOTHING";
static const char SQL_MODEL_GET[] =
	"SELECT spam_msgs, ham_msgs FROM bayes_model WHERE uid = ?1";
static const char SQL_MODEL_ADD[] =
	"INSERT INTO bayes_model (uid, spam_msgs, ham_msgs, updated)"
	" VALUES (?1, max(?2, 0), max(?3, 0), ?4)"
	" ON CONFLICT (uid) DO UPDATE SET spam_msgs = max(spam_msgs + ?2, 0),"
	" ham_msgs = max(ham_msgs + ?3, 0), updated = ?4";
/*
 * Tokens live in two tables (schema/025): the global model's without a uid
 * column, users' own keyed by (uid, hash).  Every statement comes in both
 * forms; TOKEN_SQL picks one.
 */
static const char SQL_TOKEN_ADD_G[] =
	"INSERT INTO bayes_global_token (hash, spam, ham, seen)"
	" VALUES (?2, max(?3, 0), max(?4, 0), ?5)"
	" ON CONFLICT (hash) DO UPDATE SET spam = max(spam + ?3, 0),"
	" ham = max(ham + ?4, 0),"
	" seen = CASE WHEN ?3 > 0 OR ?4 > 0 THEN ?5 ELSE seen END";
static const char SQL_TOKEN_ADD_U[] =
	"INSERT INTO bayes_user_token (uid, hash, spam, ham, seen)"
	" VALUES (?1, ?2, max(?3, 0), max(?4, 0), ?5)"
	" ON CONFLICT (uid, hash) DO UPDATE SET spam = max(spam + ?3, 0),"
	" ham = max(ham + ?4, 0),"
	" seen = CASE WHEN ?3 > 0 OR ?4 > 0 THEN ?5 ELSE seen END";
static const char SQL_TOKEN_GET_G[] =
	"SELECT spam, ham FROM bayes_global_token WHERE ?1 = 0 AND hash = ?2";
static const char SQL_TOKEN_GET_U[] =
	"SELECT spam, ham FROM bayes_user_token WHERE uid = ?1 AND hash = ?2";
static const char SQL_TOKEN_ALL_G[] =
	"SELECT hash, spam, ham FROM bayes_global_token WHERE ?1 = 0";
static const char SQL_TOKEN_ALL_U[] =
	"SELECT hash, spam, ham FROM bayes_user_token WHERE uid = ?1";
static const char SQL_TOKEN_COUNT_G[] = "SELECT count(*) FROM bayes_global_token WHERE ?1 = 0";
static const char SQL_TOKEN_COUNT_U[] = "SELECT count(*) FROM bayes_user_token WHERE uid = ?1";
static const char SQL_EXPIRE_G[] =
	"DELETE FROM bayes_global_token WHERE ?1 = 0 AND ((seen < ?2 AND spam + ham <= ?3)"
	" OR (spam = 0 AND ham = 0))";
static const char SQL_EXPIRE_U[] =
	"DELETE FROM bayes_user_token WHERE uid = ?1 AND ((seen < ?2 AND spam + ham <= ?3)"
	" OR (spam = 0 AND ham = 0))";

#define TOKEN_SQL(uid, name) ((uid) == 0 ? name##_G : name##_U)

/*
 * "seen" is the 30-day period (from 2026-01-01) a token was last learned
 * in: a small number is one octet in a row where a day number took two,
 * and expiry after months needs no finer clock.
 */
#define SEEN_EPOCH_DAY 20454
#define SEEN_DAYS 30

static int64_t seen_of_day(int64_t day)
{
	int64_t d = day - SEEN_EPOCH_DAY;

	return d >= 0 ? d / SEEN_DAYS : -((-d + SEEN_DAYS - 1) / SEEN_DAYS);
}

static const char SQL_LEARNED_GET[] =
	"SELECT class FROM bayes_learned WHERE uid = ?1 AND digest = ?2";
static const char SQL_LEARNED_SET[] =
	"INSERT INTO bayes_learned (uid, digest, class, learned_at) VALUES (?1, ?2, ?3, ?4)"
	" ON CONFLICT (uid, digest) DO UPDATE SET class = ?3, learned_at = ?4";
static const char SQL_LEARNED_DEL[] = "DELETE FROM bayes_learned WHERE uid = ?1 AND digest = ?2";

static const char SQL_GEN_GET[] =
	"SELECT CAST(value AS INTEGER) FROM bayes_meta WHERE name = 'generation'";
static const char SQL_GEN_BUMP[] =
	"INSERT INTO bayes_meta (name, value) VALUES ('generation', '1')"
	" ON CONFLICT (name) DO UPDATE SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT)";
static const char SQL_MODELS[] =
	"SELECT uid, spam_msgs, ham_msgs FROM bayes_model ORDER BY uid";
static const char SQL_USER_ADDRS[] =
	"SELECT a.address, a.user_id FROM dir_address a"
	" JOIN bayes_model m ON m.uid = a.user_id WHERE m.uid != 0";
static const char SQL_LEARNED_COUNT[] = "SELECT count(*) FROM bayes_learned WHERE uid = ?1";
static const char SQL_DB_BYTES[] =
	"SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()";

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

int store_bayes_key_get(struct store *st, uint8_t key[16], int *found)
{
	sqlite3_stmt *s = store_prepare(st, SQL_KEY_GET);
	const char *v;
	int rc, i;

	*found = 0;
	if (s == NULL)
		return -1;
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		v = store_col_text(s, 0);
		if (v == NULL || strlen(v) != 32) {
			sqlite3_reset(s);
			return -1;
		}
		for (i = 0; i < 16; i++) {
			int hi = hexval(v[2 * i]);
			int lo = hexval(v[2 * i + 1]);

			if (hi < 0 || lo < 0) {
				sqlite3_reset(s);
				return -1;
			}
			key[i] = (uint8_t)(hi << 4 | lo);
		}
		*found = 1;
		rc = SQLITE_DONE;
	}
	sqlite3_reset(s);
	return rc == SQLITE_DONE ? 0 : -1;
}

int store_bayes_key_set(struct store *st, const uint8_t key[16])
{
	sqlite3_stmt *s = store_prepare(st, SQL_KEY_SET);
	char hex[33];
	int i;

	if (s == NULL)
		return -1;
	for (i = 0; i < 16; i++)
		snprintf(hex + 2 * i, 3, "%02x", key[i]);
	sqlite3_bind_text(s, 1, hex, 32, SQLITE_TRANSIENT);
	return store_step_done(s);
}

int store_bayes_model_get(struct store *st, int64_t uid, int64_t *spam_msgs,
			  int64_t *ham_msgs)
{
	sqlite3_stmt *s = store_prepare(st, SQL_MODEL_GET);
	int rc;

	*spam_msgs = 0;
	*ham_msgs = 0;
	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, uid);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		*spam_msgs = sqlite3_column_int64(s, 0);
		*ham_msgs = sqlite3_column_int64(s, 1);
		rc = SQLITE_DONE;
	}
	sqlite3_reset(s);
	return rc == SQLITE_DONE ? 0 : -1;
}

int store_bayes_model_add(struct store *st, int64_t uid, int64_t dspam, int64_t dham,
			  int64_t now_ms)
{
	sqlite3_stmt *s = store_prepare(st, SQL_MODEL_ADD);

	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, uid);
	sqlite3_bind_int64(s, 2, dspam);
	sqlite3_bind_int64(s, 3, dham);
	sqlite3_bind_int64(s, 4, now_ms);
	return store_step_done(s);
}

int store_bayes_token_add(struct store *st, int64_t uid, uint64_t hash, int64_t dspam,
			  int64_t dham, int64_t day)
{
	sqlite3_stmt *s = store_prepare(st, TOKEN_SQL(uid, SQL_TOKEN_ADD));

	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, uid);
	sqlite3_bind_int64(s, 2, (int64_t)hash);
	sqlite3_bind_int64(s, 3, dspam);
	sqlite3_bind_int64(s, 4, dham);
	sqlite3_bind_int64(s, 5, seen_of_day(day));
	return store_step_done(s);
}

int store_bayes_token_get(struct store *st, int64_t uid, uint64_t hash, int64_t *spam,
			  int64_t *ham)
{
	sqlite3_stmt *s = store_prepare(st, TOKEN_SQL(uid, SQL_TOKEN_GET));
	int rc;

	*spam = 0;
	*ham = 0;
	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, uid);
	sqlite3_bind_int64(s, 2, (int64_t)hash);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		*spam = sqlite3_column_int64(s, 0);
		*ham = sqlite3_column_int64(s, 1);
		rc = SQLITE_DONE;
	}
	sqlite3_reset(s);
	return rc == SQLITE_DONE ? 0 : -1;
}

int store_bayes_tokens_foreach(struct store *st, int64_t uid, store_bayes_token_cb cb,
			       void *arg)
{
	sqlite3_stmt *s = store_prepare(st, TOKEN_SQL(uid, SQL_TOKEN_ALL));
	int rc;

	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, uid);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (cb((uint64_t)sqlite3_column_int64(s, 0), sqlite3_column_int64(s, 1),
		       sqlite3_column_int64(s, 2), arg) != 0) {
			rc = SQLITE_DONE;
			break;
		}
	}
	sqlite3_reset(s);
	return rc == SQLITE_DONE ? 0 : -1;
}

int store_bayes_token_count(struct store *st, int64_t uid, int64_t *n)
{
	sqlite3_stmt *s = store_prepare(st, TOKEN_SQL(uid, SQL_TOKEN_COUNT));
	int rc;

	*n = 0;
	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, uid);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		*n = sqlite3_column_int64(s, 0);
		rc = SQLITE_DONE;
	}
	sqlite3_reset(s);
	return rc == SQLITE_DONE ? 0 : -1;
}

int store_bayes_learned_get(struct store *st, int64_t uid, const uint8_t digest[32],
			    char *cls)
{
	sqlite3_stmt *s = store_prepare(st, SQL_LEARNED_GET);
	const char *v;
	int rc;

	*cls = 0;
	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, uid);
	sqlite3_bind_blob(s, 2, digest, 32, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		v = store_col_text(s, 0);
		*cls = v != NULL ? v[0] : 0;
		rc = SQLITE_DONE;
	}
	sqlite3_reset(s);
	return rc == SQLITE_DONE ? 0 : -1;
}

int store_bayes_learned_set(struct store *st, int64_t uid, const uint8_t digest[32],
			    char cls, int64_t now_ms)
{
	sqlite3_stmt *s = store_prepare(st, SQL_LEARNED_SET);
	char c[2] = { cls, '\0' };

	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, uid);
	sqlite3_bind_blob(s, 2, digest, 32, SQLITE_STATIC);
	sqlite3_bind_text(s, 3, c, 1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(s, 4, now_ms);
	return store_step_done(s);
}

int store_bayes_learned_del(struct store *st, int64_t uid, const uint8_t digest[32])
{
	sqlite3_stmt *s = store_prepare(st, SQL_LEARNED_DEL);

	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, uid);
	sqlite3_bind_blob(s, 2, digest, 32, SQLITE_STATIC);
	return store_step_done(s);
}

int store_bayes_expire(struct store *st, int64_t uid, int64_t before_day, int64_t max_count,
		       int64_t *removed)
{
	sqlite3_stmt *s = store_prepare(st, TOKEN_SQL(uid, SQL_EXPIRE));

	*removed = 0;
	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, uid);
	/* A token learned in the period of before_day is kept: never earlier. */
	sqlite3_bind_int64(s, 2, seen_of_day(before_day));
	sqlite3_bind_int64(s, 3, max_count);
	if (store_step_done(s) < 0)
		return -1;
	*removed = sqlite3_changes(store_db(st));
	return 0;
}

static int one_int(struct store *st, const char *sql, int64_t bind, int has_bind,
		   int64_t *out)
{
	sqlite3_stmt *s = store_prepare(st, sql);
	int rc;

	*out = 0;
	if (s == NULL)
		return -1;
	if (has_bind)
		sqlite3_bind_int64(s, 1, bind);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		*out = sqlite3_column_int64(s, 0);
		rc = SQLITE_DONE;
	}
	sqlite3_reset(s);
	return rc == SQLITE_DONE ? 0 : -1;
}

int store_bayes_generation(struct store *st, int64_t *gen)
{
	return one_int(st, SQL_GEN_GET, 0, 0, gen);
}

int store_bayes_generation_bump(struct store *st)
{
	return store_run(st, SQL_GEN_BUMP);
}

int store_bayes_models_each(struct store *st, store_bayes_model_cb cb, void *arg)
{
	sqlite3_stmt *s = store_prepare(st, SQL_MODELS);
	int rc;

	if (s == NULL)
		return -1;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (cb(sqlite3_column_int64(s, 0), sqlite3_column_int64(s, 1),
		       sqlite3_column_int64(s, 2), arg) != 0) {
			rc = SQLITE_DONE;
			break;
		}
	}
	sqlite3_reset(s);
	return rc == SQLITE_DONE ? 0 : -1;
}

int store_bayes_user_addresses(struct store *st,
			       int (*cb)(const char *address, int64_t uid, void *arg),
			       void *arg)
{
	sqlite3_stmt *s = store_prepare(st, SQL_USER_ADDRS);
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

int store_bayes_stats(struct store *st, int64_t uid, int64_t *tokens, int64_t *learned)
{
	if (store_bayes_token_count(st, uid, tokens) < 0)
		return -1;
	return one_int(st, SQL_LEARNED_COUNT, uid, 1, learned);
}

int store_bayes_db_bytes(struct store *st, int64_t *bytes)
{
	return one_int(st, SQL_DB_BYTES, 0, 0, bytes);
}

const char *store_bayes_errmsg(struct store *st)
{
	return store_errmsg(st);
}
