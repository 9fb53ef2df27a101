/*
 * store_alert: SQL of the account alerts and the administrator's view of
 * accounts.  See store_alert.h.
 */
#include "store_alert.h"

#include <stdio.h>
#include <string.h>

#include "store_internal.h"
#include "../util/util.h"

#define ACC_COLS                                                                          \
	"SELECT user, suspended, reason, score, messages, recipients, refused, updated,"  \
	" trusted_until, signals, volume_day, last_client FROM account_state"
#define ACC_WHERE                                                                         \
	" WHERE (?1 < 0 OR (suspended > 0) = ?1) AND (?2 < 0 OR (trusted_until > ?3) = ?2)" \
	" AND (?4 IS NULL OR instr(lower(user), lower(?4)) > 0)"
#define ACC_PAGE " LIMIT ?5 OFFSET ?6"

/* One statement per order: each is prepared once and cached by address. */
static const char SQL_ACC_NAME_ASC[] = ACC_COLS ACC_WHERE " ORDER BY user" ACC_PAGE;
static const char SQL_ACC_NAME_DESC[] = ACC_COLS ACC_WHERE " ORDER BY user DESC" ACC_PAGE;
static const char SQL_ACC_SCORE_ASC[] = ACC_COLS ACC_WHERE " ORDER BY score, user" ACC_PAGE;
static const char SQL_ACC_SCORE_DESC[] =
	ACC_COLS ACC_WHERE " ORDER BY score DESC, user" ACC_PAGE;
static const char SQL_ACC_VOLUME_ASC[] =
	ACC_COLS ACC_WHERE " ORDER BY volume_day, user" ACC_PAGE;
static const char SQL_ACC_VOLUME_DESC[] =
	ACC_COLS ACC_WHERE " ORDER BY volume_day DESC, user" ACC_PAGE;
static const char SQL_ACC_GET[] = ACC_COLS " WHERE user = ?1";
static const char SQL_KNOWN[] =
	"SELECT EXISTS (SELECT 1 FROM account_state WHERE user = ?1)"
	" OR EXISTS (SELECT 1 FROM dir_user WHERE name = ?1)";
static const char SQL_FAILS[] =
	"SELECT count(*), coalesce(max(ts), 0),"
	" (SELECT client_addr FROM api_login_failure WHERE account = lower(?1) AND ts >= ?2"
	"  ORDER BY ts DESC, id DESC LIMIT 1)"
	" FROM api_login_failure WHERE account = lower(?1) AND ts >= ?2";
static const char SQL_NETWORKS[] =
	"SELECT net, first_seen, last_seen, messages FROM account_network WHERE user = ?1"
	" ORDER BY last_seen DESC, net LIMIT ?2";
static const char SQL_HELD[] =
	"SELECT count(*) FROM queue_rcpt r JOIN queue_message m ON m.qid = r.qid"
	" WHERE m.auth_user = ?1 AND r.state = 'held'";

#define ALERT_COLS                                                                        \
	"SELECT id, ts, user, kind, coalesce(score, 0), detail, held, signals, clients,"  \
	" samples, actor, action, notified FROM account_alert"
static const char SQL_ALERTS[] =
	ALERT_COLS " WHERE (?1 IS NULL OR user = ?1) AND (?2 IS NULL OR kind = ?2)"
	" AND (?3 = 0 OR id < ?3) ORDER BY id DESC LIMIT ?4";
static const char SQL_ALERT_GET[] = ALERT_COLS " WHERE id = ?1";
/* In a cluster each node mails only the alerts it raised (its id range,
 * docs/cluster.md): the others' copies arrive here before they are marked. */
static const char SQL_PENDING[] =
	ALERT_COLS " WHERE notified = 0 AND ts <= ?1"
	" AND (id >> 40) = coalesce((SELECT node FROM cluster_state WHERE id = 1), 0)"
	" ORDER BY id LIMIT ?2";
static const char SQL_MARK[] = "UPDATE account_alert SET notified = ?2 WHERE id = ?1";
static const char SQL_SAMPLES[] =
	"UPDATE account_alert SET samples = ?2 WHERE id = ?1"
	" AND (samples IS NULL OR samples = '' OR samples = '[]')";
static const char SQL_HELD_SET[] = "UPDATE account_alert SET held = ?2 WHERE id = ?1";
static const char SQL_INSERT[] =
	"INSERT INTO account_alert (id, ts, user, kind, score, detail, held, signals, clients,"
	" samples, actor, action, notified)"
	" VALUES (moat_next_id('account_alert'), ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)";
static const char SQL_SUSPEND[] =
	"INSERT INTO account_state (user, suspended, reason, updated) VALUES (?1, ?3, ?2, ?3)"
	" ON CONFLICT(user) DO UPDATE SET suspended = ?3, reason = ?2, updated = ?3"
	" WHERE suspended = 0";
static const char SQL_LIFT[] =
	"UPDATE account_state SET suspended = 0, reason = NULL, score = 0, updated = ?2"
	" WHERE user = ?1 AND suspended > 0";
static const char SQL_TRUST[] =
	"INSERT INTO account_state (user, trusted_until, updated) VALUES (?1, ?2, ?3)"
	" ON CONFLICT(user) DO UPDATE SET trusted_until = ?2, updated = ?3";
static const char SQL_ADMINS[] =
	"SELECT a.address FROM dir_user u JOIN dir_address a ON a.user_id = u.id"
	" WHERE u.role = 'admin' AND u.disabled = 0 AND a.kind = 'primary'"
	" ORDER BY u.name, a.address";

static int account_rows(sqlite3_stmt *s, store_alert_account_fn cb, void *arg, int *found)
{
	int rc;

	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct store_alert_account a;

		a.user = store_col_text(s, 0);
		a.suspended = sqlite3_column_int64(s, 1);
		a.reason = store_col_text(s, 2);
		a.score = sqlite3_column_int64(s, 3);
		a.messages = sqlite3_column_int64(s, 4);
		a.recipients = sqlite3_column_int64(s, 5);
		a.refused = sqlite3_column_int64(s, 6);
		a.updated = sqlite3_column_int64(s, 7);
		a.trusted_until = sqlite3_column_int64(s, 8);
		a.signals = store_col_text(s, 9);
		a.volume_day = sqlite3_column_int64(s, 10);
		a.last_client = store_col_text(s, 11);
		if (found != NULL)
			*found = 1;
		if (cb(&a, arg) != 0) {
			rc = SQLITE_DONE;
			break;
		}
	}
	sqlite3_reset(s);
	return rc == SQLITE_DONE ? 0 : -1;
}

int store_alert_accounts(struct store *st, const struct store_alert_account_filter *f,
			 int64_t offset, int64_t limit, store_alert_account_fn cb, void *arg)
{
	static const char *const sql[3][2] = {
		{ SQL_ACC_NAME_ASC, SQL_ACC_NAME_DESC },
		{ SQL_ACC_SCORE_ASC, SQL_ACC_SCORE_DESC },
		{ SQL_ACC_VOLUME_ASC, SQL_ACC_VOLUME_DESC },
	};
	sqlite3_stmt *s;

	if ((unsigned)f->sort > STORE_ALERT_BY_VOLUME)
		return -1;
	s = store_prepare(st, sql[f->sort][f->desc ? 1 : 0]);
	if (s == NULL)
		return -1;
	sqlite3_bind_int(s, 1, f->suspended);
	sqlite3_bind_int(s, 2, f->trusted);
	sqlite3_bind_int64(s, 3, f->now);
	store_bind_text(s, 4, f->q);
	sqlite3_bind_int64(s, 5, limit);
	sqlite3_bind_int64(s, 6, offset);
	return account_rows(s, cb, arg, NULL);
}

int store_alert_account_get(struct store *st, const char *user, store_alert_account_fn cb,
			    void *arg, int *found)
{
	sqlite3_stmt *s = store_prepare(st, SQL_ACC_GET);

	*found = 0;
	if (s == NULL)
		return -1;
	store_bind_text(s, 1, user);
	return account_rows(s, cb, arg, found);
}

int store_alert_user_known(struct store *st, const char *user, int *known)
{
	sqlite3_stmt *s = store_prepare(st, SQL_KNOWN);
	int rc;

	*known = 0;
	if (s == NULL)
		return -1;
	store_bind_text(s, 1, user);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		*known = sqlite3_column_int(s, 0) != 0;
	sqlite3_reset(s);
	return rc == SQLITE_ROW ? 0 : -1;
}

int store_alert_auth_failures(struct store *st, const char *user, int64_t since,
			      int64_t *count, int64_t *last_at, char *last_addr,
			      size_t last_addr_sz)
{
	sqlite3_stmt *s = store_prepare(st, SQL_FAILS);
	int rc;

	*count = *last_at = 0;
	last_addr[0] = '\0';
	if (s == NULL)
		return -1;
	store_bind_text(s, 1, user);
	sqlite3_bind_int64(s, 2, since);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		const char *a = store_col_text(s, 2);

		*count = sqlite3_column_int64(s, 0);
		*last_at = sqlite3_column_int64(s, 1);
		strlcpy_s(last_addr, a != NULL ? a : "", last_addr_sz);
	}
	sqlite3_reset(s);
	return rc == SQLITE_ROW ? 0 : -1;
}

int store_alert_networks(struct store *st, const char *user, int64_t limit,
			 int (*cb)(const char *net, int64_t first_seen, int64_t last_seen,
				   int64_t messages, void *arg), void *arg)
{
	sqlite3_stmt *s = store_prepare(st, SQL_NETWORKS);
	int rc;

	if (s == NULL)
		return -1;
	store_bind_text(s, 1, user);
	sqlite3_bind_int64(s, 2, limit);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (cb(store_col_text(s, 0), sqlite3_column_int64(s, 1),
		       sqlite3_column_int64(s, 2), sqlite3_column_int64(s, 3), arg) != 0) {
			rc = SQLITE_DONE;
			break;
		}
	}
	sqlite3_reset(s);
	return rc == SQLITE_DONE ? 0 : -1;
}

int store_alert_held_count(struct store *st, const char *user, int64_t *n)
{
	sqlite3_stmt *s = store_prepare(st, SQL_HELD);
	int rc;

	*n = 0;
	if (s == NULL)
		return -1;
	store_bind_text(s, 1, user);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		*n = sqlite3_column_int64(s, 0);
	sqlite3_reset(s);
	return rc == SQLITE_ROW ? 0 : -1;
}

static int alert_rows(sqlite3_stmt *s, store_alert_row_fn cb, void *arg, int *found)
{
	int rc;

	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct store_alert_row a;

		a.id = sqlite3_column_int64(s, 0);
		a.ts = sqlite3_column_int64(s, 1);
		a.user = store_col_text(s, 2);
		a.kind = store_col_text(s, 3);
		a.score = sqlite3_column_int64(s, 4);
		a.detail = store_col_text(s, 5);
		a.held = sqlite3_column_int64(s, 6);
		a.signals = store_col_text(s, 7);
		a.clients = store_col_text(s, 8);
		a.samples = store_col_text(s, 9);
		a.actor = store_col_text(s, 10);
		a.action = store_col_text(s, 11);
		a.notified = sqlite3_column_int64(s, 12);
		if (found != NULL)
			*found = 1;
		if (cb(&a, arg) != 0) {
			rc = SQLITE_DONE;
			break;
		}
	}
	sqlite3_reset(s);
	return rc == SQLITE_DONE ? 0 : -1;
}

int store_alert_list(struct store *st, const struct store_alert_filter *f, int64_t limit,
		     store_alert_row_fn cb, void *arg)
{
	sqlite3_stmt *s = store_prepare(st, SQL_ALERTS);

	if (s == NULL)
		return -1;
	store_bind_text(s, 1, f->user);
	store_bind_text(s, 2, f->kind);
	sqlite3_bind_int64(s, 3, f->before_id);
	sqlite3_bind_int64(s, 4, limit);
	return alert_rows(s, cb, arg, NULL);
}

int store_alert_get(struct store *st, int64_t id, store_alert_row_fn cb, void *arg,
		    int *found)
{
	sqlite3_stmt *s = store_prepare(st, SQL_ALERT_GET);

	*found = 0;
	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, id);
	return alert_rows(s, cb, arg, found);
}

int store_alert_pending(struct store *st, int64_t ts_max, int64_t limit,
			store_alert_row_fn cb, void *arg)
{
	sqlite3_stmt *s = store_prepare(st, SQL_PENDING);

	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, ts_max);
	sqlite3_bind_int64(s, 2, limit);
	return alert_rows(s, cb, arg, NULL);
}

static int update_id(struct store *st, const char *sql, int64_t id, int64_t v,
		     const char *text)
{
	sqlite3_stmt *s = store_prepare(st, sql);

	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, id);
	if (text != NULL)
		store_bind_text(s, 2, text);
	else
		sqlite3_bind_int64(s, 2, v);
	return store_step_done(s);
}

int store_alert_mark(struct store *st, int64_t id, int64_t value)
{
	return update_id(st, SQL_MARK, id, value, NULL);
}

int store_alert_set_samples(struct store *st, int64_t id, const char *samples)
{
	return update_id(st, SQL_SAMPLES, id, 0, samples);
}

int store_alert_set_held(struct store *st, int64_t id, int64_t held)
{
	return update_id(st, SQL_HELD_SET, id, held, NULL);
}

int store_alert_insert(struct store *st, const struct store_alert_new *a, int64_t *id)
{
	sqlite3_stmt *s = store_prepare(st, SQL_INSERT);

	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, a->ts);
	store_bind_text(s, 2, a->user);
	store_bind_text(s, 3, a->kind);
	sqlite3_bind_int64(s, 4, a->score);
	store_bind_text(s, 5, a->detail != NULL ? a->detail : "");
	sqlite3_bind_int64(s, 6, a->held);
	store_bind_text(s, 7, a->signals);
	store_bind_text(s, 8, a->clients);
	store_bind_text(s, 9, a->samples);
	store_bind_text(s, 10, a->actor != NULL ? a->actor : "moatd");
	store_bind_text(s, 11, a->action);
	sqlite3_bind_int64(s, 12, a->notified);
	if (store_step_done(s) < 0)
		return -1;
	if (id != NULL)
		*id = sqlite3_last_insert_rowid(store_db(st));
	return 0;
}

int store_alert_suspend_tx(struct store *st, const char *user, const char *reason,
			   int64_t now, int *changed)
{
	sqlite3_stmt *s = store_prepare(st, SQL_SUSPEND);

	*changed = 0;
	if (s == NULL)
		return -1;
	store_bind_text(s, 1, user);
	store_bind_text(s, 2, reason);
	sqlite3_bind_int64(s, 3, now);
	if (store_step_done(s) < 0)
		return -1;
	*changed = sqlite3_changes(store_db(st)) > 0;
	return 0;
}

int store_alert_lift_tx(struct store *st, const char *user, int64_t now, int *changed)
{
	sqlite3_stmt *s = store_prepare(st, SQL_LIFT);

	*changed = 0;
	if (s == NULL)
		return -1;
	store_bind_text(s, 1, user);
	sqlite3_bind_int64(s, 2, now);
	if (store_step_done(s) < 0)
		return -1;
	*changed = sqlite3_changes(store_db(st)) > 0;
	return 0;
}

int store_alert_trust_tx(struct store *st, const char *user, int64_t until, int64_t now)
{
	sqlite3_stmt *s = store_prepare(st, SQL_TRUST);

	if (s == NULL)
		return -1;
	store_bind_text(s, 1, user);
	sqlite3_bind_int64(s, 2, until);
	sqlite3_bind_int64(s, 3, now);
	return store_step_done(s);
}

int store_alert_admin_addresses(struct store *st,
				int (*cb)(const char *address, void *arg), void *arg)
{
	sqlite3_stmt *s = store_prepare(st, SQL_ADMINS);
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

