/*
 * store_bayes: SQL of the statistical filter's token store.  See
 * store_bayes.h and schema/020_bayes.sql.
 */
#include "store_bayes.h"
#include "store.h"
#include "store_internal.h"
#include "../util/util.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
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

/* ---- learning shared in a cluster --------------------------------------- */

static const char SQL_EVENT_NODE[] = "SELECT node FROM cluster_state WHERE id = 1";
static const char SQL_EVENT_ADD[] =
	"INSERT INTO bayes_event (id, origin, uid, class, digest, hash_key, tokens, created)"
	" VALUES (moat_next_id('bayes_event'), (SELECT node FROM cluster_state WHERE id = 1),"
	" ?1, ?2, ?3, ?4, ?5, ?6)";
/* The row as the cluster moves it: a JSON object, BLOBs in hex. */
static const char SQL_EVENT_READ[] =
	"SELECT json_extract(?1, '$.origin'), json_extract(?1, '$.uid'),"
	" json_extract(?1, '$.class'), moat_unhex(json_extract(?1, '$.digest')),"
	" moat_unhex(json_extract(?1, '$.hash_key')), moat_unhex(json_extract(?1, '$.tokens'))";
static const char SQL_STORE_EMPTY[] =
	"SELECT NOT EXISTS (SELECT 1 FROM bayes_learned)"
	" AND NOT EXISTS (SELECT 1 FROM bayes_global_token)"
	" AND NOT EXISTS (SELECT 1 FROM bayes_user_token)";
static const char SQL_KEY_REPLACE[] =
	"INSERT INTO bayes_meta (name, value) VALUES ('key', ?1)"
	" ON CONFLICT (name) DO UPDATE SET value = ?1";
static const char SQL_EVENT_PRUNE[] = "DELETE FROM bayes_event WHERE created < ?1";

#define DAY_MS 86400000LL

void store_bayes_tokens_encode(const uint64_t *h, size_t n, uint8_t *out)
{
	for (size_t i = 0; i < n; i++)
		for (int b = 0; b < 8; b++)
			out[i * 8 + (size_t)b] = (uint8_t)(h[i] >> (8 * b));
}

int store_bayes_tokens_decode(const uint8_t *blob, size_t len, uint64_t *out, size_t max,
			      size_t *n)
{
	*n = 0;
	if (len % 8 != 0 || len / 8 > max)
		return -1;
	for (size_t i = 0; i < len / 8; i++) {
		uint64_t v = 0;

		for (int b = 7; b >= 0; b--)
			v = v << 8 | blob[i * 8 + (size_t)b];
		out[i] = v;
	}
	*n = len / 8;
	return 0;
}

int store_bayes_event_node(struct store *st, int64_t *node)
{
	return one_int(st, SQL_EVENT_NODE, 0, 0, node);
}

int store_bayes_event_add(struct store *st, int64_t uid, char cls, const uint8_t digest[32],
			  const uint8_t key[16], const uint8_t *tokens, size_t len,
			  int64_t now_ms)
{
	sqlite3_stmt *s = store_prepare(st, SQL_EVENT_ADD);
	char c[2] = { cls != 0 ? cls : 'f', '\0' };

	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, uid);
	sqlite3_bind_text(s, 2, c, 1, SQLITE_TRANSIENT);
	sqlite3_bind_blob(s, 3, digest, 32, SQLITE_STATIC);
	sqlite3_bind_blob(s, 4, key, 16, SQLITE_STATIC);
	/* zeroblob for no token: NULL would break NOT NULL. */
	if (len == 0)
		sqlite3_bind_zeroblob(s, 5, 0);
	else
		sqlite3_bind_blob(s, 5, tokens, (int)len, SQLITE_STATIC);
	sqlite3_bind_int64(s, 6, now_ms);
	return store_step_done(s);
}

/* The event's key against this store's: 0 usable (taken when this store
 * learned nothing yet), 1 another key in use here, -1 error. */
static int event_key(struct store *st, const uint8_t key[16])
{
	uint8_t have[16];
	char hex[33];
	int found;
	int64_t empty;
	sqlite3_stmt *s;

	if (store_bayes_key_get(st, have, &found) < 0)
		return -1;
	if (found && memcmp(have, key, 16) == 0)
		return 0;
	if (found) {
		if (one_int(st, SQL_STORE_EMPTY, 0, 0, &empty) < 0)
			return -1;
		if (!empty)
			return 1;
	}
	s = store_prepare(st, SQL_KEY_REPLACE);
	if (s == NULL)
		return -1;
	for (int i = 0; i < 16; i++)
		snprintf(hex + 2 * i, 3, "%02x", key[i]);
	sqlite3_bind_text(s, 1, hex, 32, SQLITE_TRANSIENT);
	return store_step_done(s);
}

struct event_row {
	int64_t origin, uid;
	char cls;                 /* 's', 'h', 0 forgotten */
	uint8_t digest[32], key[16];
	uint64_t *tokens;
	size_t n;
};

static int event_read(struct store *st, const char *body, struct event_row *e, char *err,
		      size_t errsz)
{
	sqlite3_stmt *s = store_prepare(st, SQL_EVENT_READ);
	const char *cls;
	int rc = -1;

	memset(e, 0, sizeof(*e));
	if (s == NULL) {
		snprintf(err, errsz, "bayes_event: %s", store_errmsg(st));
		return -1;
	}
	store_bind_text(s, 1, body);
	if (sqlite3_step(s) != SQLITE_ROW) {
		snprintf(err, errsz, "bayes_event: %s", store_errmsg(st));
		goto out;
	}
	cls = store_col_text(s, 2);
	if (sqlite3_column_type(s, 0) != SQLITE_INTEGER ||
	    sqlite3_column_type(s, 1) != SQLITE_INTEGER || cls == NULL || strlen(cls) != 1 ||
	    strchr("shf", cls[0]) == NULL || sqlite3_column_bytes(s, 3) != 32 ||
	    sqlite3_column_bytes(s, 4) != 16) {
		snprintf(err, errsz, "bayes_event: malformed row");
		goto out;
	}
	e->origin = sqlite3_column_int64(s, 0);
	e->uid = sqlite3_column_int64(s, 1);
	e->cls = cls[0] == 'f' ? 0 : cls[0];
	memcpy(e->digest, sqlite3_column_blob(s, 3), 32);
	memcpy(e->key, sqlite3_column_blob(s, 4), 16);
	{
		const uint8_t *b = sqlite3_column_blob(s, 5);
		size_t len = (size_t)sqlite3_column_bytes(s, 5);

		/* Bounded before anything is allocated: the row comes from a peer. */
		if (len / 8 <= STORE_BAYES_EVENT_MAX_TOKENS)
			e->tokens = xmalloc((len / 8 + 1) * sizeof(*e->tokens));
		if (e->tokens == NULL || (len > 0 && b == NULL) ||
		    store_bayes_tokens_decode(b, len, e->tokens, STORE_BAYES_EVENT_MAX_TOKENS,
					      &e->n) < 0) {
			snprintf(err, errsz, "bayes_event: bad token list (%zu octets)", len);
			free(e->tokens);
			e->tokens = NULL;
			goto out;
		}
	}
	rc = 0;
out:
	sqlite3_reset(s);
	return rc;
}

int store_bayes_event_apply(struct store *st, const char *body, int64_t self_node,
			    enum store_bayes_replay *res, char *err, size_t errsz)
{
	struct event_row e;
	int64_t now = time_now_ms();
	int64_t ds = 0, dh = 0;
	char prev = 0;
	int k, rc = -1;

	*res = STORE_BAYES_REPLAY_ALREADY;
	if (event_read(st, body, &e, err, errsz) < 0)
		return -1;
	/* At a join a node pulls its own rows too: it has learned them. */
	if (e.origin == self_node) {
		*res = STORE_BAYES_REPLAY_OWN;
		rc = 0;
		goto out;
	}
	k = event_key(st, e.key);
	if (k < 0)
		goto fail;
	if (k > 0) {
		*res = STORE_BAYES_REPLAY_KEY_MISMATCH;
		rc = 0;
		goto out;
	}
	/* bayes_learn()'s decision, with this store's state of the message. */
	if (store_bayes_learned_get(st, e.uid, e.digest, &prev) < 0)
		goto fail;
	if (e.cls == prev) {
		rc = 0; /* learned so already, or forgotten and never learned */
		goto out;
	}
	if (prev == 's')
		ds--;
	else if (prev == 'h')
		dh--;
	if (e.cls == 's')
		ds++;
	else if (e.cls == 'h')
		dh++;
	for (size_t i = 0; i < e.n; i++)
		if (store_bayes_token_add(st, e.uid, e.tokens[i], ds, dh, now / DAY_MS) < 0)
			goto fail;
	if (store_bayes_model_add(st, e.uid, ds, dh, now) < 0 ||
	    store_bayes_generation_bump(st) < 0 ||
	    (e.cls != 0 ? store_bayes_learned_set(st, e.uid, e.digest, e.cls, now)
			: store_bayes_learned_del(st, e.uid, e.digest)) < 0)
		goto fail;
	*res = e.cls == 0 ? STORE_BAYES_REPLAY_FORGOTTEN
		: prev != 0 ? STORE_BAYES_REPLAY_MOVED : STORE_BAYES_REPLAY_LEARNED;
	rc = 0;
	goto out;
fail:
	snprintf(err, errsz, "bayes_event: %s", store_errmsg(st));
out:
	free(e.tokens);
	return rc;
}

int store_bayes_event_prune(struct store *st, int64_t before_ms, int64_t *removed)
{
	sqlite3_stmt *s = store_prepare(st, SQL_EVENT_PRUNE);

	*removed = 0;
	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, before_ms);
	if (store_step_done(s) < 0)
		return -1;
	*removed = sqlite3_changes(store_db(st));
	return 0;
}
