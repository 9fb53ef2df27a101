/*
 * http_accounts: the compromised-account defence seen from the console
 * (/api/v1/accounts), administrators only — every account with its
 * suspension, last score and stored totals; the alerts (suspensions and
 * lifts), newest first; and lifting a suspension.
 *
 * All SQL is store_account.h's, shared with `moatd accounts`.  A lift is the
 * CLI's very update (store_account_lift_tx) plus the audit entry, in one
 * transaction; the running daemon's account worker reads suspensions back
 * every second, so no signal is needed (as for the CLI).
 */
#include "http_internal.h"

#include <stdio.h>
#include <string.h>

#include "../store/store.h"
#include "../store/store_account.h"

static json_t *account_json(const struct store_account_state *a)
{
	return json_pack("{s:s, s:b, s:o, s:o, s:I, s:{s:I, s:I, s:I, s:I}}", "user", a->user,
			 "suspended", a->suspended > 0, "suspended_at", http_time(a->suspended),
			 "reason", a->reason ? json_string(a->reason) : json_null(), "score",
			 (json_int_t)a->score, "window", "messages", (json_int_t)a->messages,
			 "recipients", (json_int_t)a->recipients, "refused",
			 (json_int_t)a->refused, "updated", (json_int_t)a->updated);
}

struct account_list {
	json_t *items;
	int64_t limit, n;
	char last[330];
};

static int add_account(const struct store_account_state *a, void *arg)
{
	struct account_list *l = arg;

	if (++l->n > l->limit)
		return 1;
	strlcpy_s(l->last, a->user, sizeof(l->last));
	json_array_append_new(l->items, account_json(a));
	return 0;
}

/* Pages by name: the cursor is the last name of the page before. */
enum MHD_Result http_accounts_list(struct http_req *r)
{
	static const char *const args[] = { "limit", "cursor", NULL };
	struct http_page p;
	struct account_list l;

	if (http_args_allow(r, args) < 0 || http_page(r, &p) < 0)
		return http_fail_reply(r);
	if (p.cursor != NULL && strlen(p.cursor) > 320)
		return http_error(r, MHD_HTTP_UNPROCESSABLE_CONTENT, "invalid_parameter", "cursor",
				  "malformed cursor");
	memset(&l, 0, sizeof(l));
	l.items = json_array();
	l.limit = p.limit;
	if (store_account_states_page(r->st, p.cursor, p.limit + 1, add_account, &l) < 0) {
		json_decref(l.items);
		return http_internal(r, "accounts list");
	}
	return http_reply(r, MHD_HTTP_OK, http_list(l.items, l.n > p.limit ? l.last : NULL));
}

struct alert_list {
	json_t *items;
	int64_t limit, n, last_id;
};

static int add_alert(const struct store_account_alert *a, void *arg)
{
	struct alert_list *l = arg;

	if (++l->n > l->limit)
		return 1;
	l->last_id = a->id;
	json_array_append_new(l->items,
			      json_pack("{s:I, s:s, s:I, s:I, s:s}", "id", (json_int_t)a->id,
					"user", a->user ? a->user : "", "ts", (json_int_t)a->ts,
					"score", (json_int_t)a->score, "reason",
					a->detail ? a->detail : ""));
	return 0;
}

/* Newest first; the cursor is the last id of the page before. */
enum MHD_Result http_accounts_alerts(struct http_req *r)
{
	static const char *const args[] = { "limit", "cursor", NULL };
	struct http_page p;
	struct alert_list l;
	int64_t before = 0;
	char next[32];

	if (http_args_allow(r, args) < 0 || http_page(r, &p) < 0)
		return http_fail_reply(r);
	if (p.cursor != NULL &&
	    http_parse_i64(p.cursor, strlen(p.cursor), 1, INT64_MAX, &before) < 0)
		return http_error(r, MHD_HTTP_UNPROCESSABLE_CONTENT, "invalid_parameter", "cursor",
				  "malformed cursor");
	memset(&l, 0, sizeof(l));
	l.items = json_array();
	l.limit = p.limit;
	if (store_account_alerts_page(r->st, before, p.limit + 1, add_alert, &l) < 0) {
		json_decref(l.items);
		return http_internal(r, "account alerts");
	}
	snprintf(next, sizeof(next), "%lld", (long long)l.last_id);
	return http_reply(r, MHD_HTTP_OK, http_list(l.items, l.n > p.limit ? next : NULL));
}

static int one_account(const struct store_account_state *a, void *arg)
{
	*(json_t **)arg = account_json(a);
	return 1;
}

enum MHD_Result http_accounts_lift(struct http_req *r)
{
	static const char *const args[] = { NULL };
	char user[330], by[400];
	json_t *before = NULL, *after = NULL;
	int found, changed;

	if (http_args_allow(r, args) < 0)
		return http_fail_reply(r);
	if (r->nparams != 1 || r->params[0].len == 0 || r->params[0].len >= sizeof(user))
		return http_error(r, MHD_HTTP_NOT_FOUND, "not_found", NULL, "no such account");
	memcpy(user, r->params[0].p, r->params[0].len);
	user[r->params[0].len] = '\0';
	if (store_begin(r->st) < 0)
		return http_internal(r, "lift begin");
	if (store_account_state_get(r->st, user, one_account, &before, &found) < 0)
		goto fail;
	if (before == NULL) {
		store_rollback(r->st);
		return http_error(r, MHD_HTTP_NOT_FOUND, "not_found", NULL, "no such account");
	}
	snprintf(by, sizeof(by), "lifted through the API by %s", r->auth.user);
	if (store_account_lift_tx(r->st, user, by, time_now_ms(), &changed) < 0)
		goto fail;
	if (!changed) {
		json_decref(before);
		store_rollback(r->st);
		return http_error(r, MHD_HTTP_CONFLICT, "not_suspended", NULL,
				  "the account is not suspended");
	}
	if (store_account_state_get(r->st, user, one_account, &after, &found) < 0 ||
	    after == NULL)
		goto fail;
	return http_audit_commit_reply(r, "account.lift", "account", user, before, after,
				       MHD_HTTP_OK, "lift");
fail:
	json_decref(before);
	json_decref(after);
	return http_internal_rollback(r, "lift");
}
