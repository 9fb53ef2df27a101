/*
 * http_accounts: the compromised-account defence seen from the console
 * (/api/v1/accounts), administrators only — the accounts (sorted by name,
 * score or volume, filtered) with their signals, trust and SMTP/console
 * login failures; one account with its alerts, networks and held mail;
 * the alerts; and the actions: lift (keep, release or delete what was
 * held), suspend now, trust for bulk mail until a date.
 *
 * Thin: parse, call, format.  Reads are store_alert.h's; the actions are
 * daemon/alert's (alert_admin_*), shared with `moatd accounts`, which
 * write the alert and audit rows and act on the queue through
 * queue_admin.  The running daemon's account worker reads suspensions and
 * trust back every second, so no signal is needed.
 */
#include "http_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../alert/alert.h"
#include "../conf/conf.h"
#include "../queue/queue_admin.h"
#include "../store/store.h"
#include "../store/store_alert.h"

#define ACCOUNT_ALERTS 10     /* alerts in one account's detail */
#define ACCOUNT_NETWORKS 50   /* networks in one account's detail */
#define USER_MAX 320

static json_t *array_or_empty(const char *text)
{
	json_t *v = text != NULL ? json_loads(text, 0, NULL) : NULL;

	if (!json_is_array(v)) {
		json_decref(v);
		v = json_array();
	}
	return v;
}

static json_t *account_json(struct http_req *r, const struct store_alert_account *a)
{
	char addr[80];
	int64_t fails = 0, last_at = 0;

	if (store_alert_auth_failures(r->st, a->user,
				      time_now_ms() - r->h->conf->auth_fail_window_ms, &fails,
				      &last_at, addr, sizeof(addr)) < 0)
		addr[0] = '\0';
	return json_pack("{s:s, s:b, s:o, s:o, s:I, s:o, s:o, s:I, s:o,"
			 " s:{s:I, s:I, s:I, s:I}, s:{s:I, s:o, s:o}}",
			 "user", a->user, "suspended", a->suspended > 0, "suspended_at",
			 http_time(a->suspended), "reason",
			 a->reason ? json_string(a->reason) : json_null(), "score",
			 (json_int_t)a->score, "signals", array_or_empty(a->signals),
			 "trusted_until",
			 a->trusted_until > time_now_ms() ? json_integer(a->trusted_until)
			 : json_null(),
			 "volume_day", (json_int_t)a->volume_day, "last_client",
			 a->last_client ? json_string(a->last_client) : json_null(),
			 "window", "messages", (json_int_t)a->messages, "recipients",
			 (json_int_t)a->recipients, "refused", (json_int_t)a->refused, "updated",
			 (json_int_t)a->updated,
			 "auth_failures", "recent", (json_int_t)fails, "last_at", http_time(last_at),
			 "last_addr", addr[0] != '\0' ? json_string(addr) : json_null());
}

/* The path parameter i as an account name; -1 (404) when it cannot be one. */
static int param_user(struct http_req *r, size_t i, char *out, size_t outsz)
{
	if (r->nparams <= i || r->params[i].len == 0 || r->params[i].len >= outsz ||
	    r->params[i].len > USER_MAX || memchr(r->params[i].p, '\0', r->params[i].len))
		return http_not_found(r, "account");
	memcpy(out, r->params[i].p, r->params[i].len);
	out[r->params[i].len] = '\0';
	return 0;
}

static void actor_of(struct http_req *r, struct queue_admin_actor *a)
{
	memset(a, 0, sizeof(*a));
	a->user_id = r->auth.user_id;
	a->name = r->auth.user[0] ? r->auth.user : "-";
	a->via = r->auth.via == HTTP_VIA_TOKEN ? "token" : "session";
	a->client_addr = r->client_addr;
}

/* ---- lists ---- */

struct account_list {
	struct http_req *r;
	json_t *items;
	int64_t limit, n;
};

static int add_account(const struct store_alert_account *a, void *arg)
{
	struct account_list *l = arg;

	if (++l->n > l->limit)
		return 1;
	json_array_append_new(l->items, account_json(l->r, a));
	return 0;
}

/*
 * GET /api/v1/accounts?sort=name|score|volume&order=asc|desc&suspended=&trusted=&q=
 * The cursor is an offset (the order may change between pages anyway).
 */
enum MHD_Result http_accounts_list(struct http_req *r)
{
	static const char *const args[] = { "limit", "cursor", "sort", "order", "suspended",
					    "trusted", "q", NULL };
	static const char *const sorts[] = { "name", "score", "volume", NULL };
	static const char *const orders[] = { "asc", "desc", NULL };
	static const char *const bools[] = { "false", "true", NULL };
	struct store_alert_account_filter f;
	struct http_page p;
	struct account_list l;
	int sort, order, susp, trusted;
	int64_t offset = 0;
	char next[32];

	if (http_args_allow(r, args) < 0 || http_page(r, &p) < 0 ||
	    http_arg_pick(r, "sort", sorts, &sort) < 0 ||
	    http_arg_pick(r, "order", orders, &order) < 0 ||
	    http_arg_pick(r, "suspended", bools, &susp) < 0 ||
	    http_arg_pick(r, "trusted", bools, &trusted) < 0 ||
	    http_arg_str(r, "q", 320, &f.q) < 0)
		return http_fail_reply(r);
	if (p.cursor != NULL &&
	    http_parse_i64(p.cursor, strlen(p.cursor), 0, 100000000, &offset) < 0)
		return http_error(r, MHD_HTTP_UNPROCESSABLE_CONTENT, "invalid_parameter", "cursor",
				  "malformed cursor");
	f.sort = sort == 1 ? STORE_ALERT_BY_SCORE : sort == 2 ? STORE_ALERT_BY_VOLUME
		: STORE_ALERT_BY_NAME;
	/* Names ascending by default, numbers descending: the worst first. */
	f.desc = order >= 0 ? order == 1 : sort > 0;
	f.suspended = susp;
	f.trusted = trusted;
	f.now = time_now_ms();
	memset(&l, 0, sizeof(l));
	l.r = r;
	l.items = json_array();
	l.limit = p.limit;
	if (store_alert_accounts(r->st, &f, offset, p.limit + 1, add_account, &l) < 0) {
		json_decref(l.items);
		return http_internal(r, "accounts list");
	}
	snprintf(next, sizeof(next), "%lld", (long long)(offset + p.limit));
	return http_reply(r, MHD_HTTP_OK, http_list(l.items, l.n > p.limit ? next : NULL));
}

struct alert_list {
	json_t *items;
	int64_t limit, n, last_id;
};

static int add_alert(const struct store_alert_row *a, void *arg)
{
	struct alert_list *l = arg;

	if (++l->n > l->limit)
		return 1;
	l->last_id = a->id;
	json_array_append_new(l->items, alert_row_json(a));
	return 0;
}

/* GET /api/v1/accounts/alerts?user=&kind=: newest first; the cursor is the last id. */
enum MHD_Result http_accounts_alerts(struct http_req *r)
{
	static const char *const args[] = { "limit", "cursor", "user", "kind", NULL };
	static const char *const kinds[] = { "suspended", "lifted", "trusted", "untrusted",
					     NULL };
	struct store_alert_filter f;
	struct http_page p;
	struct alert_list l;
	int kind;
	char next[32];

	memset(&f, 0, sizeof(f));
	if (http_args_allow(r, args) < 0 || http_page(r, &p) < 0 ||
	    http_arg_str(r, "user", USER_MAX, &f.user) < 0 ||
	    http_arg_pick(r, "kind", kinds, &kind) < 0)
		return http_fail_reply(r);
	if (p.cursor != NULL &&
	    http_parse_i64(p.cursor, strlen(p.cursor), 1, INT64_MAX, &f.before_id) < 0)
		return http_error(r, MHD_HTTP_UNPROCESSABLE_CONTENT, "invalid_parameter", "cursor",
				  "malformed cursor");
	f.kind = kind >= 0 ? kinds[kind] : NULL;
	memset(&l, 0, sizeof(l));
	l.items = json_array();
	l.limit = p.limit;
	if (store_alert_list(r->st, &f, p.limit + 1, add_alert, &l) < 0) {
		json_decref(l.items);
		return http_internal(r, "account alerts");
	}
	snprintf(next, sizeof(next), "%lld", (long long)l.last_id);
	return http_reply(r, MHD_HTTP_OK, http_list(l.items, l.n > p.limit ? next : NULL));
}

static int one_alert(const struct store_alert_row *a, void *arg)
{
	*(json_t **)arg = alert_row_json(a);
	return 1;
}

enum MHD_Result http_accounts_alert_show(struct http_req *r)
{
	static const char *const args[] = { NULL };
	json_t *a = NULL;
	int64_t id;
	int found;

	if (http_args_allow(r, args) < 0 || http_param_id(r, 0, &id) < 0)
		return http_fail_reply(r);
	if (store_alert_get(r->st, id, one_alert, &a, &found) < 0)
		return http_internal(r, "account alert");
	if (a == NULL)
		return http_error(r, MHD_HTTP_NOT_FOUND, "not_found", NULL, "no such alert");
	return http_reply(r, MHD_HTTP_OK, a);
}

/* ---- one account ---- */

struct one {
	struct http_req *r;
	json_t *o;
};

static int one_account(const struct store_alert_account *a, void *arg)
{
	struct one *x = arg;

	x->o = account_json(x->r, a);
	return 1;
}

/*
 * ACCOUNT of user: its state row, or (a directory user that never sent) a
 * row of zeros.  NULL with *known 0 when neither exists; NULL and 0 on a
 * store error with *err set.
 */
static json_t *account_of(struct http_req *r, const char *user, int *known, int *err)
{
	struct one x = { r, NULL };
	int found;

	*err = 0;
	*known = 0;
	if (store_alert_account_get(r->st, user, one_account, &x, &found) < 0) {
		*err = 1;
		return NULL;
	}
	if (x.o != NULL) {
		*known = 1;
		return x.o;
	}
	if (store_alert_user_known(r->st, user, known) < 0) {
		*err = 1;
		return NULL;
	}
	if (*known) {
		struct store_alert_account a;

		memset(&a, 0, sizeof(a));
		a.user = user;
		return account_json(r, &a);
	}
	return NULL;
}

static int add_network(const char *net, int64_t first, int64_t last, int64_t msgs, void *arg)
{
	json_array_append_new(arg, json_pack("{s:s, s:I, s:I, s:I}", "net", net, "first_seen",
					     (json_int_t)first, "last_seen", (json_int_t)last,
					     "messages", (json_int_t)msgs));
	return 0;
}

static enum MHD_Result reply_account(struct http_req *r, const char *user, unsigned status)
{
	struct store_alert_filter f;
	struct alert_list l;
	json_t *o, *nets;
	int64_t held = 0;
	int known, err;

	o = account_of(r, user, &known, &err);
	if (err)
		return http_internal(r, "account");
	if (o == NULL)
		return http_error(r, MHD_HTTP_NOT_FOUND, "not_found", NULL, "no such account");
	memset(&f, 0, sizeof(f));
	f.user = user;
	memset(&l, 0, sizeof(l));
	l.items = json_array();
	l.limit = ACCOUNT_ALERTS;
	nets = json_array();
	if (store_alert_list(r->st, &f, ACCOUNT_ALERTS, add_alert, &l) < 0 ||
	    store_alert_networks(r->st, user, ACCOUNT_NETWORKS, add_network, nets) < 0 ||
	    store_alert_held_count(r->st, user, &held) < 0) {
		json_decref(o);
		json_decref(l.items);
		json_decref(nets);
		return http_internal(r, "account detail");
	}
	json_object_set_new(o, "alerts", l.items);
	json_object_set_new(o, "networks", nets);
	json_object_set_new(o, "held", json_integer(held));
	return http_reply(r, status, o);
}

enum MHD_Result http_accounts_show(struct http_req *r)
{
	static const char *const args[] = { NULL };
	char user[USER_MAX + 1];

	if (http_args_allow(r, args) < 0 || param_user(r, 0, user, sizeof(user)) < 0)
		return http_fail_reply(r);
	return reply_account(r, user, MHD_HTTP_OK);
}

/* ---- actions ---- */

static const struct http_field lift_fields[] = {
	{ "held", HJ_STRING, 0, 16, 0, 0 },
};

enum MHD_Result http_accounts_lift(struct http_req *r)
{
	static const char *const args[] = { NULL };
	static const char *const helds[] = { "keep", "release", "delete", NULL };
	struct queue_admin_actor actor;
	char user[USER_MAX + 1], err[200];
	json_t *body = NULL;
	int64_t released, deleted;
	int held = 0;
	enum alert_result res;

	if (http_args_allow(r, args) < 0 || param_user(r, 0, user, sizeof(user)) < 0)
		return http_fail_reply(r);
	if (r->body.len > 0) {
		const char *h;

		if (http_body(r, lift_fields, ARRAY_LEN(lift_fields), &body) < 0)
			return http_fail_reply(r);
		h = json_string_value(json_object_get(body, "held"));
		if (h != NULL) {
			held = http_pick(h, strlen(h), helds);
			if (held < 0) {
				json_decref(body);
				return http_error(r, MHD_HTTP_UNPROCESSABLE_CONTENT, "invalid_value",
						  "held", "held is keep, release or delete");
			}
		}
		json_decref(body);
	}
	actor_of(r, &actor);
	res = alert_admin_lift(r->st, r->h->conf->data_dir, user, (enum alert_held)held, &actor,
			       &released, &deleted, err, sizeof(err));
	if (res == ALERT_UNKNOWN)
		return http_error(r, MHD_HTTP_NOT_FOUND, "not_found", NULL, "no such account");
	if (res == ALERT_NOT_SUSPENDED)
		return http_error(r, MHD_HTTP_NOT_FOUND, "not_suspended", NULL,
				  "the account is not suspended");
	if (res != ALERT_DONE)
		return http_internal(r, "lift");
	return http_reply(r, MHD_HTTP_OK,
			  json_pack("{s:s, s:b, s:I, s:I}", "user", user, "suspended", 0,
				    "released", (json_int_t)released, "deleted",
				    (json_int_t)deleted));
}

static const struct http_field suspend_fields[] = {
	{ "reason", HJ_STRING, 0, ALERT_REASON_MAX, 0, 0 },
};

enum MHD_Result http_accounts_suspend(struct http_req *r)
{
	static const char *const args[] = { NULL };
	struct queue_admin_actor actor;
	char user[USER_MAX + 1], err[200], reason[ALERT_REASON_MAX + 1] = "";
	json_t *body = NULL;
	int64_t alert_id, held;
	enum alert_result res;
	size_t i;

	if (http_args_allow(r, args) < 0 || param_user(r, 0, user, sizeof(user)) < 0)
		return http_fail_reply(r);
	if (r->body.len > 0) {
		const char *s;

		if (http_body(r, suspend_fields, ARRAY_LEN(suspend_fields), &body) < 0)
			return http_fail_reply(r);
		s = json_string_value(json_object_get(body, "reason"));
		strlcpy_s(reason, s != NULL ? s : "", sizeof(reason));
		json_decref(body);
		for (i = 0; reason[i] != '\0'; i++)
			if ((unsigned char)reason[i] < ' ' || reason[i] == 0x7f)
				return http_error(r, MHD_HTTP_UNPROCESSABLE_CONTENT, "invalid_value",
						  "reason", "reason is one line of text");
	}
	actor_of(r, &actor);
	res = alert_admin_suspend(r->st, r->h->conf->data_dir, user, reason,
				  r->h->conf->account_window_ms, &actor, &alert_id, &held, err,
				  sizeof(err));
	if (res == ALERT_UNKNOWN)
		return http_error(r, MHD_HTTP_NOT_FOUND, "not_found", NULL, "no such account");
	if (res == ALERT_ALREADY)
		return http_error(r, MHD_HTTP_CONFLICT, "already_suspended", NULL,
				  "the account is already suspended");
	if (res != ALERT_DONE)
		return http_internal(r, "suspend");
	return reply_account(r, user, MHD_HTTP_OK);
}

static enum MHD_Result trust(struct http_req *r, int64_t until)
{
	struct queue_admin_actor actor;
	char user[USER_MAX + 1], err[200];
	enum alert_result res;

	if (param_user(r, 0, user, sizeof(user)) < 0)
		return http_fail_reply(r);
	actor_of(r, &actor);
	res = alert_admin_trust(r->st, user, until, &actor, err, sizeof(err));
	if (res == ALERT_UNKNOWN)
		return http_error(r, MHD_HTTP_NOT_FOUND, "not_found", NULL, "no such account");
	if (res == ALERT_NOT_TRUSTED)
		return http_error(r, MHD_HTTP_NOT_FOUND, "not_trusted", NULL,
				  "the account is not trusted for bulk mail");
	if (res != ALERT_DONE)
		return http_internal(r, "trust");
	return reply_account(r, user, MHD_HTTP_OK);
}

/* PUT /api/v1/accounts/{user}/trust {"until": RFC 3339 or unix ms} */
enum MHD_Result http_accounts_trust_put(struct http_req *r)
{
	static const char *const args[] = { NULL };
	json_t *body, *v;
	const char *s;
	int64_t until = 0, now = time_now_ms();
	int bad;

	if (http_args_allow(r, args) < 0)
		return http_fail_reply(r);
	/* "until" may be a string or a number: checked here rather than by type. */
	if (http_json_parse(r->body.data ? r->body.data : "", r->body.len, &body, &r->fail) < 0)
		return http_fail_reply(r);
	v = json_object_get(body, "until");
	{
		const char *key;
		json_t *val;

		json_object_foreach(body, key, val) {
			if (strcmp(key, "until") != 0) {
				enum MHD_Result ret = http_error(r, MHD_HTTP_UNPROCESSABLE_CONTENT,
								 "unknown_field", key,
								 "unknown field");

				json_decref(body);
				return ret;
			}
		}
	}
	if (v == NULL) {
		json_decref(body);
		return http_error(r, MHD_HTTP_UNPROCESSABLE_CONTENT, "missing_field", "until",
				  "until is required");
	}
	s = json_string_value(v);
	if (json_is_integer(v))
		until = json_integer_value(v);
	bad = s != NULL ? http_parse_time(s, strlen(s), &until) < 0 : !json_is_integer(v);
	json_decref(body);
	if (bad)
		return http_error(r, MHD_HTTP_UNPROCESSABLE_CONTENT, "invalid_value", "until",
				  "until is an RFC 3339 time or unix milliseconds");
	if (until <= now)
		return http_error(r, MHD_HTTP_UNPROCESSABLE_CONTENT, "invalid_value", "until",
				  "until must be in the future");
	if (until > now + (int64_t)ALERT_TRUST_MAX_DAYS * 86400000)
		return http_error(r, MHD_HTTP_UNPROCESSABLE_CONTENT, "invalid_value", "until",
				  "until is at most %d days ahead", ALERT_TRUST_MAX_DAYS);
	return trust(r, until);
}

enum MHD_Result http_accounts_trust_delete(struct http_req *r)
{
	static const char *const args[] = { NULL };

	if (http_args_allow(r, args) < 0)
		return http_fail_reply(r);
	return trust(r, 0);
}
