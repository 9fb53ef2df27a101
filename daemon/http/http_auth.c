/*
 * http_auth: who is asking — API tokens (Authorization: Bearer) and console
 * sessions (cookie moat_session + X-CSRF-Token) — and the session and
 * own-account resources: login, show, logout, password change.  Also the
 * first administrator at start-up.
 *
 * Secrets: passwords are kept as Argon2id encoded hashes (libargon2);
 * session ids and tokens are 256-bit random values of which only the
 * SHA-256 is stored.  No secret is ever logged, except the generated first
 * administrator password, once, by design.  Failed logins are throttled
 * (store_auth_login_gate, shared with SMTP AUTH): per client address over
 * all accounts, per (account, address) with growing waits, and per account
 * over all addresses only for addresses that never logged in to it, so that
 * nobody can lock an owner out from elsewhere.  A throttled try gets 429
 * with Retry-After and no password is checked.  An unknown account costs
 * the same Argon2 work as a known one.
 */
#include "http_internal.h"

#include <argon2.h>
#include <ctype.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "../conf/conf.h"
#include "../log/log.h"
#include "../store/store.h"
#include "../store/store_auth.h"

#define ARGON2_T 2
#define ARGON2_M 19456 /* KiB: OWASP's Argon2id minimum */
#define ARGON2_P 1
#define SESSION_COOKIE "moat_session"
#define TOUCH_SESSION_MS 5000
#define TOUCH_TOKEN_MS 60000

void http_sha256_hex(const char *s, size_t len, char out[65])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[32];
	unsigned int mdlen = 0;
	size_t i;

	if (EVP_Digest(s, len, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32)
		abort(); /* broken libcrypto: nothing can be trusted */
	for (i = 0; i < 32; i++) {
		out[2 * i] = hex[md[i] >> 4];
		out[2 * i + 1] = hex[md[i] & 15];
	}
	out[64] = '\0';
}

int http_password_hash(const char *pw, char *out, size_t outsz)
{
	unsigned char salt[16];

	if (getrandom(salt, sizeof(salt), 0) != (ssize_t)sizeof(salt))
		return -1;
	if (argon2_encodedlen(ARGON2_T, ARGON2_M, ARGON2_P, sizeof(salt), 32,
			      Argon2_id) > outsz)
		return -1;
	return argon2id_hash_encoded(ARGON2_T, ARGON2_M, ARGON2_P, pw, strlen(pw), salt,
				     sizeof(salt), 32, out, outsz) == ARGON2_OK ? 0 : -1;
}

int http_password_verify(const char *hash, const char *pw)
{
	return argon2id_verify(hash, pw, strlen(pw)) == ARGON2_OK;
}

/* A real hash to verify against when the account does not exist. */
static pthread_once_t dummy_once = PTHREAD_ONCE_INIT;
static char dummy_hash[160];

static void make_dummy(void)
{
	if (http_password_hash("moat-no-such-account", dummy_hash, sizeof(dummy_hash)) < 0)
		dummy_hash[0] = '\0';
}

static int verify_or_burn(const struct store_user *u, int found, const char *pw)
{
	if (found && u->has_password)
		return http_password_verify(u->password_hash, pw);
	pthread_once(&dummy_once, make_dummy);
	if (dummy_hash[0] != '\0')
		(void)http_password_verify(dummy_hash, pw);
	return 0;
}

static int secure_cookies(struct http_req *r)
{
	return r->h->tls || r->h->conf->http_behind_tls_proxy;
}

static void fill_auth_user(struct http_auth *a, const struct store_user *u)
{
	a->user_id = u->id;
	strlcpy_s(a->user, u->name, sizeof(a->user));
	strlcpy_s(a->role, u->role, sizeof(a->role));
	a->admin = strcmp(u->role, "admin") == 0;
}

static int unauth(struct http_req *r, const char *code, const char *msg)
{
	r->fail.status = 401;
	r->fail.code = code;
	r->fail.field[0] = '\0';
	strlcpy_s(r->fail.message, msg, sizeof(r->fail.message));
	return -1;
}

static int auth_token(struct http_req *r, const char *hdr, int *internal)
{
	struct http_span tok;
	struct store_token t;
	struct store_user u;
	char hash[65];
	int found;
	int64_t now = time_now_ms();

	if (http_bearer(hdr, strlen(hdr), &tok) < 0 || tok.len > 200)
		return unauth(r, "invalid_token", "Authorization must be Bearer <token>");
	http_sha256_hex(tok.p, tok.len, hash);
	if (store_auth_token_by_hash(r->st, hash, &t, &u, &found) < 0) {
		*internal = 1;
		return -1;
	}
	if (!found || t.revoked != 0 || u.disabled)
		return unauth(r, "invalid_token", "unknown, revoked or disabled token");
	r->auth.via = HTTP_VIA_TOKEN;
	fill_auth_user(&r->auth, &u);
	r->auth.admin = r->auth.admin && strcmp(t.scope, "admin") == 0;
	r->auth.token_id = t.id;
	r->auth.created = t.created;
	if (now - t.last_used >= TOUCH_TOKEN_MS && store_auth_token_touch(r->st, t.id, now) < 0)
		log_warn(NULL, "http", "token %lld last_used not updated: %s",
			 (long long)t.id, store_auth_errmsg(r->st));
	return 0;
}

int http_auth_resolve(struct http_req *r, int *internal)
{
	const char *authz = MHD_lookup_connection_value(r->c, MHD_HEADER_KIND, "Authorization");
	const char *cookie;
	char raw[128];
	struct store_session s;
	int found;
	int64_t now = time_now_ms();
	const struct conf *conf = r->h->conf;

	*internal = 0;
	memset(&r->auth, 0, sizeof(r->auth));
	if (authz != NULL)
		return auth_token(r, authz, internal);
	cookie = MHD_lookup_connection_value(r->c, MHD_HEADER_KIND, "Cookie");
	if (cookie == NULL ||
	    http_cookie_get(cookie, strlen(cookie), SESSION_COOKIE, raw, sizeof(raw)) < 0)
		return unauth(r, "unauthenticated", "log in or send an API token");
	http_sha256_hex(raw, strlen(raw), r->auth.session_hash);
	if (store_auth_session_get(r->st, r->auth.session_hash, &s, &found) < 0) {
		*internal = 1;
		return -1;
	}
	if (!found)
		return unauth(r, "session_expired", "session unknown or expired; log in again");
	if (now >= s.expires || now - s.last_seen > conf->http_session_idle_ms ||
	    s.user.disabled) {
		if (store_auth_session_delete(r->st, r->auth.session_hash) < 0)
			log_warn(NULL, "http", "expired session not deleted: %s",
				 store_auth_errmsg(r->st));
		return unauth(r, "session_expired", "session unknown or expired; log in again");
	}
	r->auth.via = HTTP_VIA_SESSION;
	fill_auth_user(&r->auth, &s.user);
	strlcpy_s(r->auth.csrf, s.csrf, sizeof(r->auth.csrf));
	r->auth.created = s.created;
	r->auth.expires = s.expires;
	r->auth.last_seen = now;
	if (now - s.last_seen >= TOUCH_SESSION_MS &&
	    store_auth_session_touch(r->st, r->auth.session_hash, now) < 0)
		log_warn(NULL, "http", "session not touched: %s", store_auth_errmsg(r->st));
	return 0;
}

static const char *const gate_names[] = { "none", "address", "throttle", "account" };

/* 0 when allowed; else -1 and r->retry_after set. */
static int login_limited(struct http_req *r, const char *account, int *internal)
{
	const struct conf *conf = r->h->conf;
	struct store_login_limits lim = {
		.window_ms = conf->http_login_window_ms,
		.max_per_addr = conf->http_login_max_per_addr,
		.max_per_account = conf->http_login_max_per_account,
		.throttle_after = conf->login_throttle_after,
		.delay_ms = conf->login_throttle_delay_ms,
		.delay_max_ms = conf->login_throttle_delay_max_ms,
	};
	enum store_login_gate why;
	int64_t wait;

	*internal = 0;
	if (store_auth_login_gate(r->st, account, r->client_addr, time_now_ms(), &lim, &why,
				  &wait) < 0) {
		*internal = 1;
		return -1;
	}
	if (why == STORE_LOGIN_OK)
		return 0;
	r->retry_after = (wait + 999) / 1000;
	if (r->retry_after < 1)
		r->retry_after = 1;
	log_warn(NULL, "http", "LOGIN LIMIT from [%s] limit=%s retry_after=%lld", r->client_addr,
		 gate_names[why], (long long)r->retry_after);
	return -1;
}

static void account_key(const char *name, char *out, size_t outsz)
{
	size_t i;

	for (i = 0; name[i] != '\0' && i + 1 < outsz; i++)
		out[i] = (char)tolower((unsigned char)name[i]);
	out[i] = '\0';
}

static void set_session_cookie(struct http_req *r, const char *raw, int64_t max_age_s)
{
	snprintf(r->set_cookie, sizeof(r->set_cookie),
		 "%s=%s; Path=/; HttpOnly; SameSite=Strict; Max-Age=%lld%s", SESSION_COOKIE,
		 raw, (long long)max_age_s, secure_cookies(r) ? "; Secure" : "");
}

static json_t *session_json(struct http_req *r, const struct store_user *u)
{
	json_t *o = json_pack("{s:s, s:o}", "via",
			      r->auth.via == HTTP_VIA_TOKEN ? "token" : "session", "user",
			      http_user_json(u));

	if (r->auth.via == HTTP_VIA_SESSION) {
		json_object_set_new(o, "csrf_token", json_string(r->auth.csrf));
		json_object_set_new(o, "expires_at", json_integer(r->auth.expires));
		json_object_set_new(o, "idle_timeout_ms",
				    json_integer(r->h->conf->http_session_idle_ms));
	} else {
		json_object_set_new(o, "token_id", json_integer(r->auth.token_id));
	}
	json_object_set_new(o, "admin", json_boolean(r->auth.admin));
	return o;
}

static const struct http_field login_fields[] = {
	{ "username", HJ_STRING, 1, 320, 0, 0 },
	{ "password", HJ_STRING, 1, HTTP_PASSWORD_MAX, 0, 0 },
};

enum MHD_Result http_session_create(struct http_req *r)
{
	const struct conf *conf = r->h->conf;
	json_t *body;
	const char *name, *pw;
	char account[128];
	struct store_user u;
	int found, internal, ok;
	char raw[65], csrf[65];
	int64_t now;

	if (http_body(r, login_fields, ARRAY_LEN(login_fields), &body) < 0)
		return http_fail_reply(r);
	name = json_string_value(json_object_get(body, "username"));
	pw = json_string_value(json_object_get(body, "password"));
	account_key(name, account, sizeof(account));
	if (login_limited(r, account, &internal) < 0) {
		json_decref(body);
		if (internal)
			return http_internal(r, "login limit");
		return http_error(r, MHD_HTTP_TOO_MANY_REQUESTS, "too_many_attempts", NULL,
				  "too many failed logins; retry after %lld s",
				  (long long)r->retry_after);
	}
	if (store_auth_user_by_name(r->st, name, &u, &found) < 0) {
		json_decref(body);
		return http_internal(r, "login lookup");
	}
	ok = verify_or_burn(&u, found, pw);
	json_decref(body);
	now = time_now_ms();
	if (!ok || u.disabled) {
		char esc[100];

		if (store_auth_login_failed(r->st, account, r->client_addr, now) < 0)
			return http_internal(r, "login failure record");
		/* Now and then drop failures older than the window, so that a flood
		 * from many addresses cannot grow the table without end. */
		if ((now & 63) == 0 &&
		    store_auth_failures_purge(r->st, now - conf->http_login_window_ms) < 0)
			log_warn(NULL, "http", "login failures not purged: %s",
				 store_auth_errmsg(r->st));
		log_escape(account, strlen(account), esc, sizeof(esc));
		log_info(NULL, "http", "login failed user=%s client=[%s]", esc, r->client_addr);
		return http_error(r, MHD_HTTP_UNAUTHORIZED, "invalid_credentials", NULL,
				  "wrong user name or password, or account disabled");
	}
	random_hex(raw, 32);
	random_hex(csrf, 32);
	http_sha256_hex(raw, 64, r->auth.session_hash);
	r->auth.via = HTTP_VIA_SESSION;
	fill_auth_user(&r->auth, &u);
	strlcpy_s(r->auth.csrf, csrf, sizeof(r->auth.csrf));
	r->auth.created = now;
	r->auth.expires = now + conf->http_session_lifetime_ms;
	if (store_begin(r->st) < 0)
		return http_internal(r, "login begin");
	if (store_auth_login_succeeded(r->st, account, r->client_addr, now) < 0 ||
	    store_auth_failures_purge(r->st, now - conf->http_login_window_ms) < 0 ||
	    store_auth_session_purge(r->st, now, now - conf->http_session_idle_ms) < 0 ||
	    store_auth_session_create(r->st, r->auth.session_hash, u.id, csrf, r->client_addr,
				      now, r->auth.expires) < 0 ||
	    http_audit(r, "session.login", "session", NULL, NULL, NULL) < 0 ||
	    store_commit(r->st) < 0)
		return http_internal_rollback(r, "login");
	set_session_cookie(r, raw, conf->http_session_lifetime_ms / 1000);
	log_info(NULL, "http", "login user=%s client=[%s]", u.name, r->client_addr);
	return http_reply(r, MHD_HTTP_CREATED, session_json(r, &u));
}

enum MHD_Result http_session_show(struct http_req *r)
{
	static const char *const args[] = { NULL };
	struct store_user u;
	int found;

	if (http_args_allow(r, args) < 0)
		return http_fail_reply(r);
	if (store_auth_user_get(r->st, r->auth.user_id, &u, &found) < 0 || !found)
		return http_internal(r, "session user");
	return http_reply(r, MHD_HTTP_OK, session_json(r, &u));
}

enum MHD_Result http_session_delete(struct http_req *r)
{
	static const char *const args[] = { NULL };

	if (http_args_allow(r, args) < 0)
		return http_fail_reply(r);
	if (r->auth.via != HTTP_VIA_SESSION)
		return http_error(r, MHD_HTTP_CONFLICT, "not_a_session", NULL,
				  "this request is authenticated by a token; revoke it instead");
	if (store_begin(r->st) < 0)
		return http_internal(r, "logout begin");
	if (store_auth_session_delete(r->st, r->auth.session_hash) < 0 ||
	    http_audit(r, "session.logout", "session", NULL, NULL, NULL) < 0 ||
	    store_commit(r->st) < 0)
		return http_internal_rollback(r, "logout");
	set_session_cookie(r, "", 0);
	return http_reply(r, MHD_HTTP_NO_CONTENT, NULL);
}

static int add_address(const char *address, const char *kind, void *arg)
{
	json_array_append_new(arg, json_pack("{s:s, s:s}", "address", address, "kind", kind));
	return 0;
}

enum MHD_Result http_account_show(struct http_req *r)
{
	static const char *const args[] = { NULL };
	struct store_user u;
	json_t *o, *addrs;
	int found;

	if (http_args_allow(r, args) < 0)
		return http_fail_reply(r);
	if (store_auth_user_get(r->st, r->auth.user_id, &u, &found) < 0 || !found)
		return http_internal(r, "account");
	o = http_user_json(&u);
	addrs = json_array();
	if (store_auth_user_addresses(r->st, u.id, add_address, addrs) < 0) {
		json_decref(o);
		json_decref(addrs);
		return http_internal(r, "account addresses");
	}
	json_object_set_new(o, "addresses", addrs);
	return http_reply(r, MHD_HTTP_OK, o);
}

static const struct http_field password_fields[] = {
	{ "current_password", HJ_STRING, 1, HTTP_PASSWORD_MAX, 0, 0 },
	{ "new_password", HJ_STRING, 1, HTTP_PASSWORD_MAX, 0, 0 },
};

enum MHD_Result http_account_password(struct http_req *r)
{
	json_t *body;
	const char *cur, *nw;
	struct store_user u;
	char account[128];
	char hash[256];
	int found, internal;
	int64_t now = time_now_ms();
	json_t *after;
	char oid[24];

	if (http_body(r, password_fields, ARRAY_LEN(password_fields), &body) < 0)
		return http_fail_reply(r);
	cur = json_string_value(json_object_get(body, "current_password"));
	nw = json_string_value(json_object_get(body, "new_password"));
	if (store_auth_user_get(r->st, r->auth.user_id, &u, &found) < 0 || !found) {
		json_decref(body);
		return http_internal(r, "password user");
	}
	account_key(u.name, account, sizeof(account));
	if (login_limited(r, account, &internal) < 0) {
		json_decref(body);
		if (internal)
			return http_internal(r, "password limit");
		return http_error(r, MHD_HTTP_TOO_MANY_REQUESTS, "too_many_attempts", NULL,
				  "too many wrong passwords; retry after %lld s",
				  (long long)r->retry_after);
	}
	if (!verify_or_burn(&u, 1, cur)) {
		json_decref(body);
		if (store_auth_login_failed(r->st, account, r->client_addr, now) < 0)
			return http_internal(r, "password failure record");
		return http_error(r, MHD_HTTP_UNPROCESSABLE_CONTENT, "wrong_password",
				  "current_password", "current password is wrong");
	}
	if (strlen(nw) < HTTP_PASSWORD_MIN) {
		json_decref(body);
		return http_error(r, MHD_HTTP_UNPROCESSABLE_CONTENT, "invalid_value", "new_password",
				  "at least %d characters", HTTP_PASSWORD_MIN);
	}
	if (http_password_hash(nw, hash, sizeof(hash)) < 0) {
		json_decref(body);
		return http_internal(r, "password hash");
	}
	json_decref(body);
	snprintf(oid, sizeof(oid), "%lld", (long long)u.id);
	after = json_pack("{s:I}", "password_changed", (json_int_t)now);
	if (store_begin(r->st) < 0) {
		json_decref(after);
		return http_internal(r, "password begin");
	}
	if (store_auth_user_set_password(r->st, u.id, hash, now) < 0 ||
	    store_auth_session_delete_user(r->st, u.id,
					   r->auth.via == HTTP_VIA_SESSION ?
					   r->auth.session_hash : NULL) < 0) {
		json_decref(after);
		return http_internal_rollback(r, "password");
	}
	return http_audit_commit_reply(r, "account.password", "user", oid, NULL, after,
				       MHD_HTTP_NO_CONTENT, "password");
}

int http_auth_bootstrap(struct store *st, char *err, size_t errsz)
{
	const char *env = getenv("MOAT_ADMIN_PASSWORD");
	char generated[33];
	const char *pw;
	char hash[256];
	struct store_user u;
	struct store_audit a;
	int64_t all, enabled, id = 0, now = time_now_ms();
	int found, dup;
	char oid[24];

	if (store_auth_admin_count(st, &all, &enabled) < 0)
		goto db;
	if (all > 0)
		return 0;
	if (env != NULL && env[0] != '\0') {
		if (strlen(env) < HTTP_PASSWORD_MIN || strlen(env) > HTTP_PASSWORD_MAX) {
			snprintf(err, errsz, "MOAT_ADMIN_PASSWORD must have %d to %d characters",
				 HTTP_PASSWORD_MIN, HTTP_PASSWORD_MAX);
			return -1;
		}
		pw = env;
	} else {
		random_hex(generated, 16);
		pw = generated;
	}
	if (http_password_hash(pw, hash, sizeof(hash)) < 0) {
		snprintf(err, errsz, "cannot hash the administrator password");
		return -1;
	}
	if (store_begin(st) < 0)
		goto db;
	if (store_auth_user_by_name(st, "admin", &u, &found) < 0)
		goto rollback;
	if (found) {
		id = u.id;
		if (store_auth_user_update(st, id, "admin", 0) < 0 ||
		    store_auth_user_set_password(st, id, hash, now) < 0)
			goto rollback;
	} else if (store_auth_user_create(st, "admin", hash, "admin", 0, now, &id, &dup) < 0) {
		goto rollback;
	}
	snprintf(oid, sizeof(oid), "%lld", (long long)id);
	memset(&a, 0, sizeof(a));
	a.ts = now;
	a.actor = "system";
	a.via = "system";
	a.client_addr = "-";
	a.action = "user.bootstrap_admin";
	a.object_type = "user";
	a.object_id = oid;
	a.after = "{\"name\":\"admin\",\"role\":\"admin\"}";
	if (store_auth_audit_add(st, &a) < 0 || store_commit(st) < 0)
		goto rollback;
	if (pw == env)
		log_notice(NULL, "http", "first start: administrator admin created with the"
			   " password from MOAT_ADMIN_PASSWORD");
	else
		log_notice(NULL, "http", "first start: administrator admin created"
			   " password=%s (shown once; change it)", generated);
	return 0;
rollback:
	snprintf(err, errsz, "creating the first administrator: %s", store_auth_errmsg(st));
	store_rollback(st);
	return -1;
db:
	snprintf(err, errsz, "reading administrators: %s", store_auth_errmsg(st));
	return -1;
}
