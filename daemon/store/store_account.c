/*
 * store_account: SQL of schema/005_account.sql and 019_account_defence.sql.
 * See store_account.h.
 * Strings handed to callbacks live only for the call.
 */
#include "store_account.h"

#include <stdlib.h>

#include "store_internal.h"

static const char SQL_ADD[] =
	"INSERT INTO account_state (user, messages, recipients, refused, score, updated)"
	" VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(user) DO UPDATE SET"
	" messages = messages + ?2, recipients = recipients + ?3, refused = refused + ?4,"
	" score = ?5, updated = ?6";
static const char SQL_SUSPEND[] =
	"INSERT INTO account_state (user, suspended, reason, score, updated)"
	" VALUES (?1, ?4, ?2, ?3, ?4) ON CONFLICT(user) DO UPDATE SET"
	" suspended = ?4, reason = ?2, score = ?3, updated = ?4";
static const char SQL_ALERT[] =
	"INSERT INTO account_alert (ts, user, kind, score, detail) VALUES (?1, ?2, ?3, ?4, ?5)";
static const char SQL_ALERT_HELD[] = "UPDATE account_alert SET held = ?2 WHERE id = ?1";
static const char SQL_LIFT[] =
	"UPDATE account_state SET suspended = 0, reason = NULL, score = 0, updated = ?2"
	" WHERE user = ?1 AND suspended > 0";
static const char SQL_STATES[] =
	"SELECT user, suspended, reason, score, messages, recipients, refused, updated"
	" FROM account_state WHERE (?1 = 0 OR suspended > 0) ORDER BY user";
static const char SQL_ALERTS[] =
	"SELECT id, ts, user, kind, coalesce(score, 0), detail, held FROM account_alert"
	" WHERE (?1 IS NULL OR user = ?1) ORDER BY id DESC LIMIT ?2";
static const char SQL_STATES_PAGE[] =
	"SELECT user, suspended, reason, score, messages, recipients, refused, updated"
	" FROM account_state WHERE (?1 IS NULL OR user > ?1) ORDER BY user LIMIT ?2";
static const char SQL_STATE_GET[] =
	"SELECT user, suspended, reason, score, messages, recipients, refused, updated"
	" FROM account_state WHERE user = ?1";
static const char SQL_ALERTS_PAGE[] =
	"SELECT id, ts, user, kind, coalesce(score, 0), detail, held FROM account_alert"
	" WHERE (?1 = 0 OR id < ?1) ORDER BY id DESC LIMIT ?2";
static const char SQL_LIMITS[] =
	"SELECT user, messages_second, messages_minute, messages_hour, messages_day,"
	" recipients_second, recipients_minute, recipients_hour, recipients_day"
	" FROM account_limit";
static const char SQL_SET_LIMITS[] =
	"INSERT OR REPLACE INTO account_limit (user, messages_second, messages_minute,"
	" messages_hour, messages_day, recipients_second, recipients_minute, recipients_hour,"
	" recipients_day) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";
static const char SQL_FLUSH[] =
	"INSERT INTO account_state (user, messages, recipients, refused, score, updated, signals,"
	" volume_day, last_client, bulk_seen) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
	" ON CONFLICT(user) DO UPDATE SET messages = messages + ?2,"
	" recipients = recipients + ?3, refused = refused + ?4, score = ?5, updated = ?6,"
	" signals = coalesce(?7, signals), volume_day = ?8,"
	" last_client = coalesce(?9, last_client),"
	" bulk_seen = CASE WHEN bulk_seen = 0 THEN ?10 ELSE bulk_seen END";
static const char SQL_NET_ADD[] =
	"INSERT INTO account_network (user, net, first_seen, last_seen, messages)"
	" VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT(user, net) DO UPDATE SET"
	" first_seen = min(first_seen, ?3), last_seen = max(last_seen, ?4),"
	" messages = messages + ?5";
static const char SQL_BASE_OBSERVE[] =
	"INSERT INTO account_baseline (user, how, rate, weeks, updated)"
	" VALUES (?1, ?2, ?3, 1, ?5) ON CONFLICT(user, how) DO UPDATE SET"
	" rate = (1.0 - ?4) * rate + ?4 * ?3, weeks = weeks + 1, updated = ?5";
static const char SQL_LOAD_NETS[] =
	"SELECT net, first_seen, last_seen, messages FROM account_network WHERE user = ?1"
	" ORDER BY last_seen DESC LIMIT ?2";
static const char SQL_LOAD_BASE[] =
	"SELECT how, rate, weeks FROM account_baseline WHERE user = ?1";
static const char SQL_LOAD_BULK[] = "SELECT bulk_seen FROM account_state WHERE user = ?1";
static const char SQL_FLAGS[] =
	"SELECT user, suspended, trusted_until FROM account_state"
	" WHERE suspended > 0 OR trusted_until > ?1";
static const char SQL_SUSPEND_STATE[] =
	"INSERT INTO account_state (user, suspended, reason, score, updated, signals)"
	" VALUES (?1, ?4, ?2, ?3, ?4, ?5) ON CONFLICT(user) DO UPDATE SET"
	" suspended = ?4, reason = ?2, score = ?3, updated = ?4, signals = ?5";
static const char SQL_SUSPEND_ALERT[] =
	"INSERT INTO account_alert (ts, user, kind, score, detail, held, signals, clients,"
	" samples, actor, notified)"
	" VALUES (?1, ?2, 'suspended', ?3, ?4, ?5, ?6, ?7, ?8, 'moatd', 0)";
static const char SQL_HELD_SAMPLES[] =
	"SELECT m.qid, m.sender, min(r.rcpt), m.size FROM queue_message m"
	" JOIN queue_rcpt r ON r.qid = m.qid WHERE m.auth_user = ?1 AND r.state = 'held'"
	" GROUP BY m.qid ORDER BY m.received_at DESC LIMIT ?2";

const char *store_account_errmsg(struct store *st)
{
	return store_errmsg(st);
}

int store_account_add(struct store *st, const char *user, int64_t messages,
		      int64_t recipients, int64_t refused, int64_t score, int64_t now)
{
	sqlite3_stmt *s = store_prepare(st, SQL_ADD);

	if (s == NULL)
		return -1;
	store_bind_text(s, 1, user);
	sqlite3_bind_int64(s, 2, messages);
	sqlite3_bind_int64(s, 3, recipients);
	sqlite3_bind_int64(s, 4, refused);
	sqlite3_bind_int64(s, 5, score);
	sqlite3_bind_int64(s, 6, now);
	return store_step_done(s);
}

static int alert(struct store *st, const char *user, const char *kind, int64_t score,
		 const char *detail, int64_t now, int64_t *id)
{
	sqlite3_stmt *s = store_prepare(st, SQL_ALERT);

	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, now);
	store_bind_text(s, 2, user);
	store_bind_text(s, 3, kind);
	sqlite3_bind_int64(s, 4, score);
	store_bind_text(s, 5, detail);
	if (store_step_done(s) < 0)
		return -1;
	if (id != NULL)
		*id = sqlite3_last_insert_rowid(store_db(st));
	return 0;
}

int store_account_suspend(struct store *st, const char *user, const char *reason,
			  int64_t score, const char *detail, int64_t now, int64_t *alert_id)
{
	sqlite3_stmt *s;

	if (store_begin(st) < 0)
		return -1;
	s = store_prepare(st, SQL_SUSPEND);
	if (s == NULL)
		goto fail;
	store_bind_text(s, 1, user);
	store_bind_text(s, 2, reason);
	sqlite3_bind_int64(s, 3, score);
	sqlite3_bind_int64(s, 4, now);
	if (store_step_done(s) < 0 || alert(st, user, "suspended", score, detail, now, alert_id) < 0)
		goto fail;
	return store_commit(st);
fail:
	store_rollback(st);
	return -1;
}

int store_account_alert_held(struct store *st, int64_t alert_id, int64_t held)
{
	sqlite3_stmt *s = store_prepare(st, SQL_ALERT_HELD);

	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, alert_id);
	sqlite3_bind_int64(s, 2, held);
	return store_step_done(s);
}

int store_account_lift_tx(struct store *st, const char *user, const char *by, int64_t now,
			  int *changed)
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
	if (*changed && alert(st, user, "lifted", 0, by, now, NULL) < 0)
		return -1;
	return 0;
}

int store_account_lift(struct store *st, const char *user, const char *by, int64_t now,
		       int *changed)
{
	*changed = 0;
	if (store_begin(st) < 0)
		return -1;
	if (store_account_lift_tx(st, user, by, now, changed) < 0)
		goto fail;
	return store_commit(st);
fail:
	store_rollback(st);
	return -1;
}

int store_account_states(struct store *st, int suspended_only,
			 int (*cb)(const struct store_account_state *a, void *arg), void *arg)
{
	sqlite3_stmt *s = store_prepare(st, SQL_STATES);
	int rc;

	if (s == NULL)
		return -1;
	sqlite3_bind_int(s, 1, suspended_only);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct store_account_state a = {
			store_col_text(s, 0), sqlite3_column_int64(s, 1), store_col_text(s, 2),
			sqlite3_column_int64(s, 3), sqlite3_column_int64(s, 4),
			sqlite3_column_int64(s, 5), sqlite3_column_int64(s, 6),
			sqlite3_column_int64(s, 7),
		};

		if (cb(&a, arg) != 0) {
			rc = SQLITE_DONE;
			break;
		}
	}
	sqlite3_reset(s);
	return rc == SQLITE_DONE ? 0 : -1;
}

/* Step an alert query (columns as SQL_ALERTS), calling cb per row. */
static int each_alert(sqlite3_stmt *s,
		      int (*cb)(const struct store_account_alert *a, void *arg), void *arg)
{
	int rc;

	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct store_account_alert a = {
			sqlite3_column_int64(s, 0), sqlite3_column_int64(s, 1), store_col_text(s, 2),
			store_col_text(s, 3), store_col_text(s, 5), sqlite3_column_int64(s, 4),
			sqlite3_column_int64(s, 6),
		};

		if (cb(&a, arg) != 0) {
			rc = SQLITE_DONE;
			break;
		}
	}
	sqlite3_reset(s);
	return rc == SQLITE_DONE ? 0 : -1;
}

int store_account_alerts(struct store *st, const char *user, int64_t limit,
			 int (*cb)(const struct store_account_alert *a, void *arg), void *arg)
{
	sqlite3_stmt *s = store_prepare(st, SQL_ALERTS);
	if (s == NULL)
		return -1;
	store_bind_text(s, 1, user);
	sqlite3_bind_int64(s, 2, limit);
	return each_alert(s, cb, arg);
}

int store_account_limits(struct store *st,
			 int (*cb)(const char *user, const int64_t v[STORE_ACCOUNT_NLIMITS],
				   void *arg), void *arg)
{
	sqlite3_stmt *s = store_prepare(st, SQL_LIMITS);
	int rc;

	if (s == NULL)
		return -1;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		int64_t v[STORE_ACCOUNT_NLIMITS];
		int i;

		for (i = 0; i < STORE_ACCOUNT_NLIMITS; i++)
			v[i] = sqlite3_column_type(s, i + 1) == SQLITE_NULL
				? -1 : sqlite3_column_int64(s, i + 1);
		if (cb(store_col_text(s, 0), v, arg) != 0) {
			rc = SQLITE_DONE;
			break;
		}
	}
	sqlite3_reset(s);
	return rc == SQLITE_DONE ? 0 : -1;
}

int store_account_set_limits(struct store *st, const char *user,
			     const int64_t v[STORE_ACCOUNT_NLIMITS])
{
	sqlite3_stmt *s = store_prepare(st, SQL_SET_LIMITS);
	int i;

	if (s == NULL)
		return -1;
	store_bind_text(s, 1, user);
	for (i = 0; i < STORE_ACCOUNT_NLIMITS; i++) {
		if (v[i] < 0)
			sqlite3_bind_null(s, i + 2);
		else
			sqlite3_bind_int64(s, i + 2, v[i]);
	}
	return store_step_done(s);
}

static int state_rows(sqlite3_stmt *s,
		      int (*cb)(const struct store_account_state *a, void *arg), void *arg,
		      int *found)
{
	int rc;

	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct store_account_state a = {
			store_col_text(s, 0), sqlite3_column_int64(s, 1), store_col_text(s, 2),
			sqlite3_column_int64(s, 3), sqlite3_column_int64(s, 4),
			sqlite3_column_int64(s, 5), sqlite3_column_int64(s, 6),
			sqlite3_column_int64(s, 7),
		};

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

int store_account_states_page(struct store *st, const char *after, int64_t limit,
			      int (*cb)(const struct store_account_state *a, void *arg),
			      void *arg)
{
	sqlite3_stmt *s = store_prepare(st, SQL_STATES_PAGE);

	if (s == NULL)
		return -1;
	store_bind_text(s, 1, after);
	sqlite3_bind_int64(s, 2, limit);
	return state_rows(s, cb, arg, NULL);
}

int store_account_state_get(struct store *st, const char *user,
			    int (*cb)(const struct store_account_state *a, void *arg),
			    void *arg, int *found)
{
	sqlite3_stmt *s = store_prepare(st, SQL_STATE_GET);

	*found = 0;
	if (s == NULL)
		return -1;
	store_bind_text(s, 1, user);
	return state_rows(s, cb, arg, found);
}

int store_account_alerts_page(struct store *st, int64_t before_id, int64_t limit,
			      int (*cb)(const struct store_account_alert *a, void *arg),
			      void *arg)
{
	sqlite3_stmt *s = store_prepare(st, SQL_ALERTS_PAGE);
	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, before_id);
	sqlite3_bind_int64(s, 2, limit);
	return each_alert(s, cb, arg);
}

int store_account_flush(struct store *st, const struct store_account_flush *f)
{
	sqlite3_stmt *s = store_prepare(st, SQL_FLUSH);

	if (s == NULL)
		return -1;
	store_bind_text(s, 1, f->user);
	sqlite3_bind_int64(s, 2, f->messages);
	sqlite3_bind_int64(s, 3, f->recipients);
	sqlite3_bind_int64(s, 4, f->refused);
	sqlite3_bind_int64(s, 5, f->score);
	sqlite3_bind_int64(s, 6, f->now);
	store_bind_text(s, 7, f->signals);
	sqlite3_bind_int64(s, 8, f->volume_day);
	store_bind_text(s, 9, f->last_client);
	sqlite3_bind_int64(s, 10, f->bulk_seen);
	return store_step_done(s);
}

int store_account_network_add(struct store *st, const char *user, const char *net,
			      int64_t first_seen, int64_t last_seen, int64_t messages)
{
	sqlite3_stmt *s = store_prepare(st, SQL_NET_ADD);

	if (s == NULL)
		return -1;
	store_bind_text(s, 1, user);
	store_bind_text(s, 2, net);
	sqlite3_bind_int64(s, 3, first_seen);
	sqlite3_bind_int64(s, 4, last_seen);
	sqlite3_bind_int64(s, 5, messages);
	return store_step_done(s);
}

int store_account_baseline_observe(struct store *st, const char *user, int how,
				   int64_t count, double alpha, int64_t now)
{
	sqlite3_stmt *s = store_prepare(st, SQL_BASE_OBSERVE);

	if (s == NULL)
		return -1;
	store_bind_text(s, 1, user);
	sqlite3_bind_int(s, 2, how);
	sqlite3_bind_double(s, 3, (double)count);
	sqlite3_bind_double(s, 4, alpha);
	sqlite3_bind_int64(s, 5, now);
	return store_step_done(s);
}

int store_account_load(struct store *st, const char *user, int64_t max_nets,
		       int (*net_cb)(const char *net, int64_t first_seen, int64_t last_seen,
				     int64_t messages, void *arg),
		       int (*base_cb)(int how, double rate, int64_t weeks, void *arg),
		       void *arg, int64_t *bulk_seen)
{
	sqlite3_stmt *s = store_prepare(st, SQL_LOAD_NETS);
	int rc;

	*bulk_seen = 0;
	if (s == NULL)
		return -1;
	store_bind_text(s, 1, user);
	sqlite3_bind_int64(s, 2, max_nets);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		const char *net = store_col_text(s, 0);

		if (net != NULL)
			net_cb(net, sqlite3_column_int64(s, 1), sqlite3_column_int64(s, 2),
			       sqlite3_column_int64(s, 3), arg);
	}
	sqlite3_reset(s);
	if (rc != SQLITE_DONE)
		return -1;
	s = store_prepare(st, SQL_LOAD_BASE);
	if (s == NULL)
		return -1;
	store_bind_text(s, 1, user);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW)
		base_cb(sqlite3_column_int(s, 0), sqlite3_column_double(s, 1),
			sqlite3_column_int64(s, 2), arg);
	sqlite3_reset(s);
	if (rc != SQLITE_DONE)
		return -1;
	s = store_prepare(st, SQL_LOAD_BULK);
	if (s == NULL)
		return -1;
	store_bind_text(s, 1, user);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		*bulk_seen = sqlite3_column_int64(s, 0);
	sqlite3_reset(s);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -1;
}

int store_account_flags(struct store *st, int64_t now,
			int (*cb)(const char *user, int64_t suspended, int64_t trusted_until,
				  void *arg), void *arg)
{
	sqlite3_stmt *s = store_prepare(st, SQL_FLAGS);
	int rc;

	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, now);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (cb(store_col_text(s, 0), sqlite3_column_int64(s, 1),
		       sqlite3_column_int64(s, 2), arg) != 0) {
			rc = SQLITE_DONE;
			break;
		}
	}
	sqlite3_reset(s);
	return rc == SQLITE_DONE ? 0 : -1;
}

int store_account_suspend_alert(struct store *st, const struct store_account_suspension *a,
				int64_t *alert_id)
{
	sqlite3_stmt *s;

	*alert_id = 0;
	if (store_begin(st) < 0)
		return -1;
	s = store_prepare(st, SQL_SUSPEND_STATE);
	if (s == NULL)
		goto fail;
	store_bind_text(s, 1, a->user);
	store_bind_text(s, 2, a->reason);
	sqlite3_bind_int64(s, 3, a->score);
	sqlite3_bind_int64(s, 4, a->now);
	store_bind_text(s, 5, a->signals);
	if (store_step_done(s) < 0)
		goto fail;
	s = store_prepare(st, SQL_SUSPEND_ALERT);
	if (s == NULL)
		goto fail;
	sqlite3_bind_int64(s, 1, a->now);
	store_bind_text(s, 2, a->user);
	sqlite3_bind_int64(s, 3, a->score);
	store_bind_text(s, 4, a->detail);
	sqlite3_bind_int64(s, 5, a->held);
	store_bind_text(s, 6, a->signals);
	store_bind_text(s, 7, a->clients);
	store_bind_text(s, 8, a->samples);
	if (store_step_done(s) < 0)
		goto fail;
	*alert_id = sqlite3_last_insert_rowid(store_db(st));
	return store_commit(st);
fail:
	store_rollback(st);
	return -1;
}

int store_account_held_samples(struct store *st, const char *user, int64_t limit,
			       int (*cb)(const char *qid, const char *sender, const char *rcpt,
					 int64_t size, void *arg), void *arg)
{
	sqlite3_stmt *s = store_prepare(st, SQL_HELD_SAMPLES);
	int rc;

	if (s == NULL)
		return -1;
	store_bind_text(s, 1, user);
	sqlite3_bind_int64(s, 2, limit);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		const char *qid = store_col_text(s, 0);
		const char *sender = store_col_text(s, 1);
		const char *rcpt = store_col_text(s, 2);

		if (cb(qid ? qid : "", sender ? sender : "", rcpt ? rcpt : "",
		       sqlite3_column_int64(s, 3), arg) != 0) {
			rc = SQLITE_DONE;
			break;
		}
	}
	sqlite3_reset(s);
	return rc == SQLITE_DONE ? 0 : -1;
}
