/*
 * store_account: SQL of schema/005_account.sql and 019_account_defence.sql.
 * See store_account.h.
 * Strings handed to callbacks live only for the call.
 */
#include "store_account.h"

#include <stdlib.h>

#include "store_internal.h"

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
	"INSERT INTO account_alert (id, ts, user, kind, score, detail, held, signals, clients,"
	" samples, actor, notified)"
	" VALUES (moat_next_id('account_alert'), ?1, ?2, 'suspended', ?3, ?4, ?5, ?6, ?7, ?8, 'moatd', 0)";
static const char SQL_HELD_SAMPLES[] =
	"SELECT m.qid, m.sender, min(r.rcpt), m.size FROM queue_message m"
	" JOIN queue_rcpt r ON r.qid = m.qid WHERE m.auth_user = ?1 AND r.state = 'held'"
	" GROUP BY m.qid ORDER BY m.received_at DESC LIMIT ?2";

const char *store_account_errmsg(struct store *st)
{
	return store_errmsg(st);
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
	s = store_prepare(st, SQL_SUSPEND_STATE);
	if (s == NULL)
		return -1;
	store_bind_text(s, 1, a->user);
	store_bind_text(s, 2, a->reason);
	sqlite3_bind_int64(s, 3, a->score);
	sqlite3_bind_int64(s, 4, a->now);
	store_bind_text(s, 5, a->signals);
	if (store_step_done(s) < 0)
		return -1;
	s = store_prepare(st, SQL_SUSPEND_ALERT);
	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, a->now);
	store_bind_text(s, 2, a->user);
	sqlite3_bind_int64(s, 3, a->score);
	store_bind_text(s, 4, a->detail);
	sqlite3_bind_int64(s, 5, a->held);
	store_bind_text(s, 6, a->signals);
	store_bind_text(s, 7, a->clients);
	store_bind_text(s, 8, a->samples);
	if (store_step_done(s) < 0)
		return -1;
	*alert_id = sqlite3_last_insert_rowid(store_db(st));
	return 0;
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
