/*
 * http: libmicrohttpd server, request lifecycle and the one routing table.
 * See http.h; handlers live in http_<resource>.c (http_internal.h).
 *
 * Limits: connection count, per-connection memory (which bounds request
 * line and headers), time-out and thread count come from the config.
 * Connections per client address are counted here (accept policy and
 * connection notices) and refused past http_max_connections_per_ip.  The
 * request head (TLS handshake, request line and headers) must be complete
 * within http_header_timeout of connecting, or of the end of the previous
 * request on a kept-alive connection, however slowly bytes trickle in:
 * libmicrohttpd's own time-out counts only inactivity, so a watchdog thread
 * shuts such sockets down and libmicrohttpd then closes them as usual.  A
 * request body is read incrementally into a buffer created with its
 * maximum (http_max_body): a declared Content-Length past it gets 413 at
 * once, a chunked body past it is discarded and answered 413 (and the
 * connection dropped when it goes on far beyond).  Every answer is JSON
 * except /metrics; an error is {"error":{"code","message","field"}}.
 *
 * Order per request: route (404/405) -> body checks (413/415) ->
 * authentication (401) -> CSRF for cookie sessions on state-changing
 * methods (403) -> role (403 for admin resources) -> handler.  Handlers
 * check object ownership themselves (404 for another user's object).
 */
#include "http.h"
#include "http_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../conf/conf.h"
#include "../log/log.h"
#include "../store/store.h"
#include "../store/store_auth.h"
#include "../util/net.h"

#define HTTP_CONN_MEMORY (64 * 1024)
#define HTTP_MAX_PEM (256 * 1024)
#define HTTP_WATCHDOG_TICK_MS 100
#define HTTP_LIMIT_LOG_MS 1000 /* at most one CONNECTION LIMIT line a second */

/*
 * One open connection, from libmicrohttpd's STARTED notice to its CLOSED
 * notice, in h->conns.  libmicrohttpd closes fd only after the CLOSED notice
 * has unlinked it (under conn_mu), so the watchdog never touches a closed
 * or reused descriptor.
 */
struct http_conn {
	struct http_conn *prev, *next;
	int fd;
	unsigned char key[17];   /* address family, then the address bytes */
	char addr[64];
	int64_t head_since;      /* monotonic ms: waiting for a request head; 0 in a request */
	int cut;                 /* shut down by the watchdog */
};

const unsigned http_counted_status[HTTP_NSTATUS - 1] = {
	200, 201, 204, 400, 401, 403, 404, 405, 409, 413, 415, 422, 429, 500, 503, 304,
};

/* The one routing table: first match of method and pattern wins. */
static const struct http_route routes[] = {
	{ "GET", "/healthz", HTTP_R_PUBLIC, http_healthz },
	{ "GET", "/metrics", HTTP_R_ADMIN, http_metrics },
	{ "POST", "/api/v1/session", HTTP_R_PUBLIC | HTTP_R_BODY, http_session_create },
	{ "GET", "/api/v1/session", 0, http_session_show },
	{ "DELETE", "/api/v1/session", 0, http_session_delete },
	{ "GET", "/api/v1/account", 0, http_account_show },
	{ "PUT", "/api/v1/account/password", HTTP_R_BODY, http_account_password },
	{ "GET", "/api/v1/account/digest", 0, http_account_digest_show },
	{ "PUT", "/api/v1/account/digest", HTTP_R_BODY, http_account_digest_put },
	{ "GET", "/api/v1/account/score", 0, http_account_score_show },
	{ "PUT", "/api/v1/account/score", HTTP_R_BODY, http_account_score_put },
	{ "GET", "/q/{token}", HTTP_R_PUBLIC, http_link_show },
	{ "POST", "/q/{token}", HTTP_R_PUBLIC, http_link_act },
	{ "GET", "/api/v1/users", HTTP_R_ADMIN, http_users_list },
	{ "POST", "/api/v1/users", HTTP_R_ADMIN | HTTP_R_BODY, http_users_create },
	{ "GET", "/api/v1/users/{id}", 0, http_users_show },
	{ "PATCH", "/api/v1/users/{id}", HTTP_R_ADMIN | HTTP_R_BODY, http_users_update },
	{ "DELETE", "/api/v1/users/{id}", HTTP_R_ADMIN, http_users_delete },
	{ "POST", "/api/v1/users/{id}/addresses", HTTP_R_ADMIN | HTTP_R_BODY,
	  http_user_address_add },
	{ "DELETE", "/api/v1/users/{id}/addresses/{address}", HTTP_R_ADMIN,
	  http_user_address_delete },
	{ "GET", "/api/v1/account/senders", 0, http_account_senders_list },
	{ "POST", "/api/v1/account/senders", HTTP_R_BODY, http_account_senders_add },
	{ "DELETE", "/api/v1/account/senders/{id}", 0, http_account_senders_delete },
	{ "GET", "/api/v1/users/{id}/senders", HTTP_R_ADMIN, http_user_senders_list },
	{ "POST", "/api/v1/users/{id}/senders", HTTP_R_ADMIN | HTTP_R_BODY,
	  http_user_senders_add },
	{ "DELETE", "/api/v1/users/{id}/senders/{sid}", HTTP_R_ADMIN, http_user_senders_delete },
	{ "GET", "/api/v1/tokens", 0, http_tokens_list },
	{ "POST", "/api/v1/tokens", HTTP_R_BODY, http_tokens_create },
	{ "GET", "/api/v1/tokens/{id}", 0, http_tokens_show },
	{ "DELETE", "/api/v1/tokens/{id}", 0, http_tokens_revoke },
	{ "GET", "/api/v1/messages", HTTP_R_ADMIN, http_messages_list },
	{ "GET", "/api/v1/messages/{id}", HTTP_R_ADMIN, http_messages_show },
	{ "GET", "/api/v1/messages/{id}/timeline", HTTP_R_ADMIN, http_timeline_message },
	{ "POST", "/api/v1/messages/{id}/learn", HTTP_R_ADMIN | HTTP_R_BODY, http_messages_learn },
	{ "POST", "/api/v1/learn", HTTP_R_ADMIN | HTTP_R_BODY | HTTP_R_BIG_BODY | HTTP_R_MSG_BODY,
	  http_learn_post },
	{ "GET", "/api/v1/bayes", HTTP_R_ADMIN, http_bayes_show },
	{ "GET", "/api/v1/timeline", HTTP_R_ADMIN, http_timeline_find },
	{ "GET", "/api/v1/stats/messages", HTTP_R_ADMIN, http_stats_messages },
	{ "GET", "/api/v1/stats/top", HTTP_R_ADMIN, http_stats_top },
	{ "GET", "/api/v1/stats/harvest", HTTP_R_ADMIN, http_stats_harvest },
	{ "GET", "/api/v1/stats/checks", HTTP_R_ADMIN, http_stats_checks },
	{ "GET", "/api/v1/stats/dnsbl", HTTP_R_ADMIN, http_stats_dnsbl },
	{ "GET", "/api/v1/audit", HTTP_R_ADMIN, http_audit_list },
	{ "GET", "/api/v1/policy/entries", HTTP_R_ADMIN, http_policy_entries_list },
	{ "POST", "/api/v1/policy/entries", HTTP_R_ADMIN | HTTP_R_BODY,
	  http_policy_entries_create },
	{ "GET", "/api/v1/policy/entries/{id}", HTTP_R_ADMIN, http_policy_entries_show },
	{ "PATCH", "/api/v1/policy/entries/{id}", HTTP_R_ADMIN | HTTP_R_BODY,
	  http_policy_entries_update },
	{ "DELETE", "/api/v1/policy/entries/{id}", HTTP_R_ADMIN, http_policy_entries_delete },
	{ "GET", "/api/v1/policy/settings", HTTP_R_ADMIN, http_policy_settings_list },
	{ "PUT", "/api/v1/policy/settings/{key}", HTTP_R_ADMIN | HTTP_R_BODY,
	  http_policy_settings_put },
	{ "DELETE", "/api/v1/policy/settings/{key}", HTTP_R_ADMIN, http_policy_settings_delete },
	{ "GET", "/api/v1/score/thresholds", HTTP_R_ADMIN, http_score_thresholds_list },
	{ "PUT", "/api/v1/score/thresholds/{scope}/{name}", HTTP_R_ADMIN | HTTP_R_BODY,
	  http_score_thresholds_put },
	{ "DELETE", "/api/v1/score/thresholds/{scope}/{name}", HTTP_R_ADMIN,
	  http_score_thresholds_delete },
	{ "GET", "/api/v1/policy/dnsbl", HTTP_R_ADMIN, http_policy_dnsbl_list },
	{ "POST", "/api/v1/policy/dnsbl", HTTP_R_ADMIN | HTTP_R_BODY, http_policy_dnsbl_create },
	{ "PATCH", "/api/v1/policy/dnsbl/{zone}", HTTP_R_ADMIN | HTTP_R_BODY,
	  http_policy_dnsbl_update },
	{ "DELETE", "/api/v1/policy/dnsbl/{zone}", HTTP_R_ADMIN, http_policy_dnsbl_delete },
	{ "GET", "/api/v1/directory", HTTP_R_ADMIN, http_directory_list },
	{ "POST", "/api/v1/directory/groups", HTTP_R_ADMIN | HTTP_R_BODY,
	  http_directory_group_create },
	{ "DELETE", "/api/v1/directory/groups/{address}", HTTP_R_ADMIN,
	  http_directory_group_delete },
	{ "POST", "/api/v1/directory/groups/{address}/members", HTTP_R_ADMIN | HTTP_R_BODY,
	  http_group_member_add },
	{ "DELETE", "/api/v1/directory/groups/{address}/members/{member}", HTTP_R_ADMIN,
	  http_group_member_delete },
	{ "GET", "/api/v1/directory/groups/{address}/managers", HTTP_R_ADMIN,
	  http_group_managers_list },
	{ "POST", "/api/v1/directory/groups/{address}/managers", HTTP_R_ADMIN | HTTP_R_BODY,
	  http_group_managers_add },
	{ "DELETE", "/api/v1/directory/groups/{address}/managers/{user}", HTTP_R_ADMIN,
	  http_group_managers_delete },
	{ "GET", "/api/v1/accounts", HTTP_R_ADMIN, http_accounts_list },
	{ "GET", "/api/v1/accounts/alerts", HTTP_R_ADMIN, http_accounts_alerts },
	{ "GET", "/api/v1/accounts/alerts/{id}", HTTP_R_ADMIN, http_accounts_alert_show },
	{ "GET", "/api/v1/accounts/{user}", HTTP_R_ADMIN, http_accounts_show },
	{ "POST", "/api/v1/accounts/{user}/lift", HTTP_R_ADMIN | HTTP_R_BODY | HTTP_R_OPT_BODY,
	  http_accounts_lift },
	{ "POST", "/api/v1/accounts/{user}/suspend", HTTP_R_ADMIN | HTTP_R_BODY | HTTP_R_OPT_BODY,
	  http_accounts_suspend },
	{ "PUT", "/api/v1/accounts/{user}/trust", HTTP_R_ADMIN | HTTP_R_BODY,
	  http_accounts_trust_put },
	{ "DELETE", "/api/v1/accounts/{user}/trust", HTTP_R_ADMIN, http_accounts_trust_delete },
	{ "GET", "/api/v1/queue", HTTP_R_ADMIN, http_queue_list },
	{ "GET", "/api/v1/quarantine/digest/template", HTTP_R_ADMIN, http_digest_template_show },
	{ "PUT", "/api/v1/quarantine/digest/template", HTTP_R_ADMIN | HTTP_R_BODY,
	  http_digest_template_put },
	{ "POST", "/api/v1/quarantine/digest/preview", HTTP_R_ADMIN | HTTP_R_BODY,
	  http_digest_preview },
	{ "POST", "/api/v1/quarantine/digest/send", HTTP_R_ADMIN | HTTP_R_BODY, http_digest_send },
	{ "GET", "/api/v1/quarantine", 0, http_quarantine_list },
	{ "GET", "/api/v1/quarantine/count", 0, http_quarantine_count },
	{ "POST", "/api/v1/quarantine/release", HTTP_R_BODY, http_quarantine_release },
	{ "POST", "/api/v1/quarantine/delete", HTTP_R_BODY, http_quarantine_delete },
	{ "GET", "/api/v1/quarantine/{id}", 0, http_quarantine_show },
	{ "GET", "/api/v1/quarantine/{id}/raw", 0, http_quarantine_raw },
	{ "GET", "/api/v1/quarantine/{id}/html", 0, http_quarantine_html },
	{ "POST", "/api/v1/quarantine/{id}/learn", HTTP_R_BODY, http_quarantine_learn },
	{ "GET", "/api/v1/greylist", HTTP_R_ADMIN, http_greylist_list },
	{ "DELETE", "/api/v1/greylist", HTTP_R_ADMIN | HTTP_R_BODY, http_greylist_delete_all },
	{ "GET", "/api/v1/greylist/allowed", HTTP_R_ADMIN, http_greylist_allowed_list },
	{ "DELETE", "/api/v1/greylist/allowed/{id}", HTTP_R_ADMIN, http_greylist_allowed_delete },
	{ "DELETE", "/api/v1/greylist/{id}", HTTP_R_ADMIN, http_greylist_delete },
	{ "GET", "/api/v1/queue/summary", HTTP_R_ADMIN, http_queue_summary },
	{ "POST", "/api/v1/queue/release", HTTP_R_ADMIN | HTTP_R_BODY, http_queue_release },
	{ "POST", "/api/v1/queue/retry", HTTP_R_ADMIN | HTTP_R_BODY, http_queue_retry },
	{ "POST", "/api/v1/queue/hold", HTTP_R_ADMIN | HTTP_R_BODY, http_queue_hold },
	{ "POST", "/api/v1/queue/delete", HTTP_R_ADMIN | HTTP_R_BODY, http_queue_delete },
	{ "GET", "/api/v1/queue/{qid}", HTTP_R_ADMIN, http_queue_show },
	{ "GET", "/api/v1/rules", HTTP_R_ADMIN, http_rules_list },
	{ "POST", "/api/v1/rules", HTTP_R_ADMIN | HTTP_R_BODY, http_rules_create },
	{ "GET", "/api/v1/rules/export", HTTP_R_ADMIN, http_rules_export },
	{ "POST", "/api/v1/rules/import", HTTP_R_ADMIN | HTTP_R_BODY, http_rules_import },
	{ "POST", "/api/v1/rules/test", HTTP_R_ADMIN | HTTP_R_BODY, http_rules_test },
	{ "PUT", "/api/v1/rules/order", HTTP_R_ADMIN | HTTP_R_BODY, http_rules_order },
	{ "GET", "/api/v1/rules/{id}", HTTP_R_ADMIN, http_rules_show },
	{ "PUT", "/api/v1/rules/{id}", HTTP_R_ADMIN | HTTP_R_BODY, http_rules_replace },
	{ "PATCH", "/api/v1/rules/{id}", HTTP_R_ADMIN | HTTP_R_BODY, http_rules_patch },
	{ "DELETE", "/api/v1/rules/{id}", HTTP_R_ADMIN, http_rules_delete },
	{ "GET", "/api/v1/dkim/keys", HTTP_R_ADMIN, http_dkim_list },
	{ "POST", "/api/v1/dkim/keys", HTTP_R_ADMIN | HTTP_R_BODY, http_dkim_create },
	{ "GET", "/api/v1/dkim/keys/{id}", HTTP_R_ADMIN, http_dkim_show },
	{ "PATCH", "/api/v1/dkim/keys/{id}", HTTP_R_ADMIN | HTTP_R_BODY, http_dkim_patch },
	{ "DELETE", "/api/v1/dkim/keys/{id}", HTTP_R_ADMIN, http_dkim_delete },
	/* Mailbox rules: three bases, one handler set (http_mailbox.c checks the scope). */
#define MAILBOX_ROUTES(base, fl)                                                          \
	{ "GET", base, fl, http_mailbox_list },                                           \
	{ "POST", base, (fl) | HTTP_R_BODY, http_mailbox_create },                        \
	{ "GET", base "/export", fl, http_mailbox_export },                               \
	{ "POST", base "/import", (fl) | HTTP_R_BODY | HTTP_R_BIG_BODY, http_mailbox_import }, \
	{ "POST", base "/test", (fl) | HTTP_R_BODY, http_mailbox_test },                  \
	{ "POST", base "/apply-quarantine", fl, http_mailbox_apply_quarantine },          \
	{ "GET", base "/sieve", fl, http_sieve_export },                                  \
	{ "POST", base "/sieve", (fl) | HTTP_R_BODY | HTTP_R_BIG_BODY | HTTP_R_TEXT_BODY,       \
	  http_sieve_import },                                                            \
	{ "PUT", base "/order", (fl) | HTTP_R_BODY | HTTP_R_BIG_BODY, http_mailbox_order }, \
	{ "POST", base "/bulk", (fl) | HTTP_R_BODY | HTTP_R_BIG_BODY, http_mailbox_bulk }, \
	{ "POST", base "/{rid}/duplicate", fl, http_mailbox_duplicate },                  \
	{ "GET", base "/{rid}", fl, http_mailbox_show },                                  \
	{ "PUT", base "/{rid}", (fl) | HTTP_R_BODY, http_mailbox_replace },               \
	{ "PATCH", base "/{rid}", (fl) | HTTP_R_BODY, http_mailbox_patch },               \
	{ "DELETE", base "/{rid}", fl, http_mailbox_delete }
	MAILBOX_ROUTES("/api/v1/account/rules", 0),
	MAILBOX_ROUTES("/api/v1/users/{id}/rules", 0),
	MAILBOX_ROUTES("/api/v1/directory/groups/{address}/rules", 0),
#undef MAILBOX_ROUTES
};

static void store_destroy(void *p)
{
	store_close(p);
}

struct store *http_thread_store(struct http_server *h)
{
	struct store *st = pthread_getspecific(h->store_key);
	char err[512];

	if (st != NULL)
		return st;
	st = store_open(h->db_path, 0, err, sizeof(err));
	if (st == NULL) {
		log_error(NULL, "http", "%s", err);
		return NULL;
	}
	pthread_setspecific(h->store_key, st);
	return st;
}

static void count_status(struct http_server *h, unsigned status)
{
	size_t i;

	for (i = 0; i < HTTP_NSTATUS - 1; i++)
		if (http_counted_status[i] == status)
			break;
	atomic_fetch_add(&h->requests[i], 1);
}

static enum MHD_Result queue(struct http_req *r, unsigned status, struct MHD_Response *resp)
{
	enum MHD_Result ret;

	if (resp == NULL)
		return MHD_NO;
	if (r->set_cookie[0] != '\0')
		MHD_add_response_header(resp, "Set-Cookie", r->set_cookie);
	MHD_add_response_header(resp, "Cache-Control", "no-store");
	MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	/* DENY everywhere; a route that is meant to be framed by the console
	 * (the quarantine HTML preview) asks for SAMEORIGIN. */
	MHD_add_response_header(resp, "X-Frame-Options",
				r->frame_options != NULL ? r->frame_options : "DENY");
	if (r->retry_after > 0) {
		char ra[24];

		snprintf(ra, sizeof(ra), "%lld", (long long)r->retry_after);
		MHD_add_response_header(resp, "Retry-After", ra);
	}
	if (status == MHD_HTTP_UNAUTHORIZED)
		MHD_add_response_header(resp, "WWW-Authenticate", "Bearer realm=\"moat\"");
	ret = MHD_queue_response(r->c, status, resp);
	MHD_destroy_response(resp);
	r->replied = 1;
	count_status(r->h, status);
	return ret;
}

enum MHD_Result http_reply_fd(struct http_req *r, unsigned status, const char *ctype,
			      int fd, uint64_t size, const char *const *headers)
{
	struct MHD_Response *resp = MHD_create_response_from_fd(size, fd);
	size_t i;

	if (resp == NULL) {
		close(fd);
		return MHD_NO;
	}
	MHD_add_response_header(resp, "Content-Type", ctype);
	for (i = 0; headers != NULL && headers[i] != NULL && headers[i + 1] != NULL; i += 2)
		MHD_add_response_header(resp, headers[i], headers[i + 1]);
	return queue(r, status, resp);
}

enum MHD_Result http_reply_bytes(struct http_req *r, unsigned status, const char *ctype,
				 char *buf, size_t len, const char *const *headers)
{
	struct MHD_Response *resp;
	size_t i;

	resp = MHD_create_response_from_buffer(len, buf, MHD_RESPMEM_MUST_FREE);
	if (resp == NULL) {
		free(buf);
		return MHD_NO;
	}
	MHD_add_response_header(resp, "Content-Type", ctype);
	for (i = 0; headers != NULL && headers[i] != NULL && headers[i + 1] != NULL; i += 2)
		MHD_add_response_header(resp, headers[i], headers[i + 1]);
	return queue(r, status, resp);
}

enum MHD_Result http_reply_text(struct http_req *r, unsigned status, const char *ctype,
				char *text)
{
	struct MHD_Response *resp;

	resp = MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
	if (resp == NULL) {
		free(text);
		return MHD_NO;
	}
	MHD_add_response_header(resp, "Content-Type", ctype);
	return queue(r, status, resp);
}

enum MHD_Result http_reply_page(struct http_req *r, unsigned status, char *html)
{
	/* A page outside the console: no script at all, a form may post only back here. */
	static const char page_csp[] =
		"default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self';"
		" base-uri 'none'; frame-ancestors 'none'";
	struct MHD_Response *resp;

	resp = MHD_create_response_from_buffer(strlen(html), html, MHD_RESPMEM_MUST_FREE);
	if (resp == NULL) {
		free(html);
		return MHD_NO;
	}
	MHD_add_response_header(resp, "Content-Type", "text/html; charset=utf-8");
	MHD_add_response_header(resp, "Content-Security-Policy", page_csp);
	MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
	return queue(r, status, resp);
}

enum MHD_Result http_reply(struct http_req *r, unsigned status, json_t *body)
{
	struct MHD_Response *resp;
	char *text;

	if (body == NULL) {
		resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
		return queue(r, status, resp);
	}
	text = json_dumps(body, JSON_COMPACT);
	json_decref(body);
	if (text == NULL)
		return MHD_NO;
	return http_reply_text(r, status, "application/json", text);
}

enum MHD_Result http_error(struct http_req *r, unsigned status, const char *code,
			   const char *field, const char *fmt, ...)
{
	char msg[300];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return http_reply(r, status,
			  json_pack("{s:{s:s, s:s, s:o}}", "error", "code", code, "message", msg,
				    "field", field ? json_string(field) : json_null()));
}

enum MHD_Result http_fail_reply(struct http_req *r)
{
	const struct http_fail *f = &r->fail;

	return http_error(r, (unsigned)f->status, f->code, f->field[0] ? f->field : NULL,
			  "%s", f->message);
}

enum MHD_Result http_internal(struct http_req *r, const char *what)
{
	log_error(NULL, "http", "%s %s: %s: %s", r->method, r->route ? r->route->pattern : "-",
		  what, r->st ? store_auth_errmsg(r->st) : "no database");
	return http_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal",
			  NULL, "internal error; see the server log");
}

enum MHD_Result http_internal_rollback(struct http_req *r, const char *what)
{
	enum MHD_Result ret = http_internal(r, what);

	store_rollback(r->st);
	return ret;
}

static void set_fail(struct http_req *r, int status, const char *code, const char *field,
		     const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void set_fail(struct http_req *r, int status, const char *code, const char *field,
		     const char *fmt, ...)
{
	va_list ap;

	r->fail.status = status;
	r->fail.code = code;
	strlcpy_s(r->fail.field, field ? field : "", sizeof(r->fail.field));
	va_start(ap, fmt);
	vsnprintf(r->fail.message, sizeof(r->fail.message), fmt, ap);
	va_end(ap);
}

/* ---- arguments ---- */

const char *http_arg(struct http_req *r, const char *name)
{
	size_t i;

	for (i = 0; i < r->nargs; i++)
		if (strcmp(r->args[i].key, name) == 0)
			return r->args[i].value;
	return NULL;
}

int http_args_allow(struct http_req *r, const char *const *allowed)
{
	size_t i;

	if (r->bad_arg[0] != '\0') {
		set_fail(r, 422, "invalid_parameter", r->bad_arg,
			 "query parameter %s is repeated or one too many", r->bad_arg);
		return -1;
	}
	for (i = 0; i < r->nargs; i++) {
		const char *k = r->args[i].key;

		if (http_pick(k, strlen(k), allowed) < 0) {
			char name[64];

			strlcpy_s(name, k, sizeof(name));
			set_fail(r, 422, "unknown_parameter", name, "unknown query parameter %s",
				 name);
			return -1;
		}
	}
	return 0;
}

int http_arg_i64(struct http_req *r, const char *name, int64_t min, int64_t max,
		 int64_t def, int64_t *out)
{
	const char *v = http_arg(r, name);

	*out = def;
	if (v == NULL)
		return 0;
	if (http_parse_i64(v, strlen(v), min, max, out) < 0) {
		char range[80];

		snprintf(range, sizeof(range), "%lld..%lld", (long long)min, (long long)max);
		set_fail(r, 422, "invalid_parameter", name, "must be an integer in %s", range);
		return -1;
	}
	return 0;
}

int http_arg_time(struct http_req *r, const char *name, int64_t *out)
{
	const char *v = http_arg(r, name);

	*out = 0;
	if (v == NULL)
		return 0;
	if (http_parse_time(v, strlen(v), out) < 0) {
		set_fail(r, 422, "invalid_parameter", name, "%s",
			 "must be unix milliseconds or an RFC 3339 time");
		return -1;
	}
	return 0;
}

int http_arg_pick(struct http_req *r, const char *name, const char *const *allowed,
		  int *idx)
{
	const char *v = http_arg(r, name);

	*idx = -1;
	if (v == NULL)
		return 0;
	*idx = http_pick(v, strlen(v), allowed);
	if (*idx < 0) {
		set_fail(r, 422, "invalid_parameter", name, "%s", "value not allowed");
		return -1;
	}
	return 0;
}

int http_arg_str(struct http_req *r, const char *name, size_t maxlen, const char **out)
{
	const char *v = http_arg(r, name);

	*out = v;
	if (v == NULL)
		return 0;
	if (v[0] == '\0' || strlen(v) > maxlen) {
		set_fail(r, 422, "invalid_parameter", name, "%s",
			 "must be a non-empty string of bounded length");
		return -1;
	}
	return 0;
}

int http_page(struct http_req *r, struct http_page *p)
{
	memset(p, 0, sizeof(*p));
	if (http_arg_i64(r, "limit", 1, r->h->conf->http_max_page, HTTP_DEFAULT_PAGE,
			 &p->limit) < 0)
		return -1;
	if (p->limit > r->h->conf->http_max_page)
		p->limit = r->h->conf->http_max_page;
	if (http_arg_i64(r, "offset", 0, 100000000, 0, &p->offset) < 0)
		return -1;
	p->cursor = http_arg(r, "cursor");
	if (p->cursor != NULL && http_arg(r, "offset") != NULL) {
		set_fail(r, 422, "invalid_parameter", "cursor", "%s",
			 "use cursor or offset, not both");
		return -1;
	}
	if (p->cursor != NULL && (p->cursor[0] == '\0' || strlen(p->cursor) > 64)) {
		set_fail(r, 422, "invalid_parameter", "cursor", "%s", "malformed cursor");
		return -1;
	}
	return 0;
}

int http_not_found(struct http_req *r, const char *what)
{
	set_fail(r, 404, "not_found", NULL, "no such %s", what);
	return -1;
}

int http_param_id(struct http_req *r, size_t i, int64_t *id)
{
	if (i >= r->nparams ||
	    http_parse_i64(r->params[i].p, r->params[i].len, 1, INT64_MAX, id) < 0)
		return http_not_found(r, "object");
	return 0;
}

int http_body(struct http_req *r, const struct http_field *fields, size_t n, json_t **out)
{
	if (http_json_parse(r->body.data ? r->body.data : "", r->body.len, out, &r->fail) < 0)
		return -1;
	if (http_json_check(*out, fields, n, &r->fail) < 0) {
		json_decref(*out);
		*out = NULL;
		return -1;
	}
	return 0;
}

json_t *http_list(json_t *items, const char *next)
{
	return json_pack("{s:o, s:o}", "items", items, "next_cursor",
			 next ? json_string(next) : json_null());
}

json_t *http_time(int64_t ms)
{
	return ms > 0 ? json_integer(ms) : json_null();
}

int http_audit(struct http_req *r, const char *action, const char *type,
	       const char *object_id, json_t *before, json_t *after)
{
	struct store_audit a;
	char *b = before ? json_dumps(before, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	char *af = after ? json_dumps(after, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	int rc;

	memset(&a, 0, sizeof(a));
	a.ts = time_now_ms();
	a.actor_id = r->auth.user_id;
	a.actor = r->auth.user[0] ? r->auth.user : "-";
	a.via = r->auth.via == HTTP_VIA_TOKEN ? "token" :
		r->auth.via == HTTP_VIA_SESSION ? "session" : "anonymous";
	a.client_addr = r->client_addr;
	a.action = action;
	a.object_type = type;
	a.object_id = object_id;
	a.before = b;
	a.after = af;
	rc = store_auth_audit_add(r->st, &a);
	free(b);
	free(af);
	return rc;
}

enum MHD_Result http_audit_commit_reply(struct http_req *r, const char *action,
					const char *type, const char *object_id, json_t *before,
					json_t *after, unsigned status, const char *what)
{
	if (http_audit(r, action, type, object_id, before, after) < 0 ||
	    store_commit(r->st) < 0) {
		json_decref(before);
		json_decref(after);
		return http_internal_rollback(r, what);
	}
	json_decref(before);
	if (status == MHD_HTTP_NO_CONTENT) {
		json_decref(after);
		after = NULL;
	}
	return http_reply(r, status, after);
}

/* ---- connections: per-address limit and head deadline ---- */

/* key: family byte then address (IPv4-mapped IPv6 as IPv4); -1 when not IP. */
static int addr_key(const struct sockaddr *sa, unsigned char key[17], char *text,
		    size_t textsz)
{
	memset(key, 0, 17);
	strlcpy_s(text, "unknown", textsz);
	if (sa == NULL)
		return -1;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;

		key[0] = 4;
		memcpy(key + 1, &s4->sin_addr, 4);
		inet_ntop(AF_INET, &s4->sin_addr, text, (socklen_t)textsz);
		return 0;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;

		if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
			key[0] = 4;
			memcpy(key + 1, s6->sin6_addr.s6_addr + 12, 4);
			inet_ntop(AF_INET, s6->sin6_addr.s6_addr + 12, text, (socklen_t)textsz);
			return 0;
		}
		key[0] = 6;
		memcpy(key + 1, &s6->sin6_addr, 16);
		inet_ntop(AF_INET6, &s6->sin6_addr, text, (socklen_t)textsz);
		return 0;
	}
	return -1;
}

/*
 * Accept policy: refuse a connection from an address that already has
 * http_max_connections_per_ip open.  Counted in the STARTED notice, so
 * accepts racing on several pool threads may overshoot by a few.
 */
static enum MHD_Result accept_policy(void *cls, const struct sockaddr *sa, socklen_t len)
{
	struct http_server *h = cls;
	int64_t limit = h->conf->http_max_connections_per_ip;
	unsigned char key[17];
	char text[64];
	struct http_conn *c;
	int64_t n = 0;
	int64_t now, last;

	(void)len;
	if (limit == 0 || addr_key(sa, key, text, sizeof(text)) < 0)
		return MHD_YES;
	pthread_mutex_lock(&h->conn_mu);
	for (c = h->conns; c != NULL && n < limit; c = c->next)
		if (memcmp(c->key, key, sizeof(key)) == 0)
			n++;
	pthread_mutex_unlock(&h->conn_mu);
	if (n < limit)
		return MHD_YES;
	now = time_mono_ms();
	last = atomic_load(&h->limit_logged_ms);
	if (now - last >= HTTP_LIMIT_LOG_MS &&
	    atomic_compare_exchange_strong(&h->limit_logged_ms, &last, now))
		log_warn(NULL, "http", "HTTP CONNECTION LIMIT from [%s] per_ip=%lld", text,
			 (long long)limit);
	return MHD_NO;
}

static void conn_notify(void *cls, struct MHD_Connection *mc, void **socket_context,
			enum MHD_ConnectionNotificationCode code)
{
	struct http_server *h = cls;
	struct http_conn *c = *socket_context;

	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		const union MHD_ConnectionInfo *fi =
			MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CONNECTION_FD);
		const union MHD_ConnectionInfo *ai =
			MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CLIENT_ADDRESS);

		c = xcalloc(1, sizeof(*c));
		c->fd = fi != NULL ? fi->connect_fd : -1;
		(void)addr_key(ai != NULL ? ai->client_addr : NULL, c->key, c->addr,
			       sizeof(c->addr));
		c->head_since = time_mono_ms();
		pthread_mutex_lock(&h->conn_mu);
		c->next = h->conns;
		if (h->conns != NULL)
			h->conns->prev = c;
		h->conns = c;
		pthread_mutex_unlock(&h->conn_mu);
		*socket_context = c;
		return;
	}
	if (code != MHD_CONNECTION_NOTIFY_CLOSED || c == NULL)
		return;
	pthread_mutex_lock(&h->conn_mu);
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		h->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	pthread_mutex_unlock(&h->conn_mu);
	free(c);
	*socket_context = NULL;
}

/* The head of a request has arrived (since 0), or the next one is awaited from since. */
static void conn_head_done(struct http_server *h, struct MHD_Connection *mc, int64_t since)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(mc, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	struct http_conn *c = ci != NULL ? ci->socket_context : NULL;

	if (c == NULL)
		return;
	pthread_mutex_lock(&h->conn_mu);
	c->head_since = since;
	pthread_mutex_unlock(&h->conn_mu);
}

/* Shuts down every connection whose head is overdue; libmicrohttpd then closes it. */
static void *watchdog(void *arg)
{
	struct http_server *h = arg;
	int64_t deadline = h->conf->http_header_timeout_ms;

	pthread_mutex_lock(&h->conn_mu);
	while (!h->watchdog_stop) {
		int64_t now = time_mono_ms();
		struct http_conn *c;
		struct timespec ts;

		for (c = h->conns; c != NULL; c = c->next) {
			if (c->cut || c->head_since == 0 || c->fd < 0 ||
			    now - c->head_since < deadline)
				continue;
			c->cut = 1;
			(void)shutdown(c->fd, SHUT_RDWR);
			log_warn(NULL, "http", "HTTP HEADER TIMEOUT from [%s] after_ms=%lld",
				 c->addr, (long long)(now - c->head_since));
		}
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += (long)HTTP_WATCHDOG_TICK_MS * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		(void)pthread_cond_timedwait(&h->conn_cv, &h->conn_mu, &ts);
	}
	pthread_mutex_unlock(&h->conn_mu);
	return NULL;
}

/* ---- request lifecycle ---- */

static enum MHD_Result collect_arg(void *cls, enum MHD_ValueKind kind, const char *key,
				  const char *value)
{
	struct http_req *r = cls;
	size_t i;

	(void)kind;
	if (r->bad_arg[0] != '\0')
		return MHD_YES;
	for (i = 0; i < r->nargs; i++) {
		if (strcmp(r->args[i].key, key) == 0) {
			strlcpy_s(r->bad_arg, key, sizeof(r->bad_arg));
			return MHD_YES;
		}
	}
	if (r->nargs == HTTP_MAX_ARGS) {
		strlcpy_s(r->bad_arg, key, sizeof(r->bad_arg));
		return MHD_YES;
	}
	r->args[r->nargs].key = key;
	r->args[r->nargs].value = value ? value : "";
	r->nargs++;
	return MHD_YES;
}

static void client_address(struct http_req *r)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(r->c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	const struct sockaddr *sa = ci ? ci->client_addr : NULL;
	int loopback = 0;

	strlcpy_s(r->client_addr, "unknown", sizeof(r->client_addr));
	if (sa == NULL)
		return;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;

		inet_ntop(AF_INET, &s4->sin_addr, r->client_addr, sizeof(r->client_addr));
		loopback = (ntohl(s4->sin_addr.s_addr) >> 24) == 127;
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;

		inet_ntop(AF_INET6, &s6->sin6_addr, r->client_addr, sizeof(r->client_addr));
		loopback = IN6_IS_ADDR_LOOPBACK(&s6->sin6_addr);
	}
	if (loopback && r->h->conf->http_behind_tls_proxy) {
		const char *xff = MHD_lookup_connection_value(r->c, MHD_HEADER_KIND,
							      "X-Forwarded-For");
		char addr[64];

		if (xff != NULL && http_xff_last(xff, strlen(xff), addr, sizeof(addr)) == 0)
			strlcpy_s(r->client_addr, addr, sizeof(r->client_addr));
	}
}

/* The route for method and url; *path_known when another method would match. */
static const struct http_route *route_find(struct http_req *r, const char *method,
					   const char *url, int *path_known, char *allow,
					   size_t allowsz)
{
	size_t len = strlen(url);
	size_t i;

	*path_known = 0;
	allow[0] = '\0';
	for (i = 0; i < ARRAY_LEN(routes); i++) {
		struct http_span params[HTTP_MAX_PARAMS];
		size_t np;

		if (!http_path_match(routes[i].pattern, url, len, params, HTTP_MAX_PARAMS, &np))
			continue;
		if (strcmp(routes[i].method, method) == 0 ||
		    (strcmp(method, "HEAD") == 0 && strcmp(routes[i].method, "GET") == 0)) {
			memcpy(r->params, params, sizeof(params));
			r->nparams = np;
			return &routes[i];
		}
		*path_known = 1;
		if (allow[0] != '\0')
			strlcpy_s(allow + strlen(allow), ", ", allowsz - strlen(allow));
		strlcpy_s(allow + strlen(allow), routes[i].method, allowsz - strlen(allow));
	}
	return NULL;
}

static int is_json_type(const char *ct)
{
	size_t n = strlen("application/json");

	if (ct == NULL || strncasecmp(ct, "application/json", n) != 0)
		return 0;
	return ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ';
}

static int is_type(const char *ct, const char *want)
{
	size_t n = strlen(want);

	if (ct == NULL || strncasecmp(ct, want, n) != 0)
		return 0;
	return ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ';
}

static int is_text_type(const char *ct)
{
	size_t n = strlen("text/plain");

	if (ct == NULL || strncasecmp(ct, "text/plain", n) != 0)
		return 0;
	return ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ';
}

static enum MHD_Result dispatch(struct http_req *r, const char *url)
{
	const struct http_route *rt;
	char allow[64];
	int known;
	int internal = 0;

	rt = route_find(r, r->method, url, &known, allow, sizeof(allow));
	if (rt == NULL) {
		if (!known && http_static_path(r->method, url))
			return http_static_serve(r, url);
		if (known) {
			struct MHD_Response *resp;
			json_t *err = json_pack("{s:{s:s, s:s, s:n}}", "error", "code",
						"method_not_allowed", "message",
						"method not allowed here", "field");
			char *text = json_dumps(err, JSON_COMPACT);

			json_decref(err);
			if (text == NULL)
				return MHD_NO;
			resp = MHD_create_response_from_buffer(strlen(text), text,
							       MHD_RESPMEM_MUST_FREE);
			if (resp == NULL) {
				free(text);
				return MHD_NO;
			}
			MHD_add_response_header(resp, "Content-Type", "application/json");
			MHD_add_response_header(resp, "Allow", allow);
			return queue(r, MHD_HTTP_METHOD_NOT_ALLOWED, resp);
		}
		return http_error(r, MHD_HTTP_NOT_FOUND, "not_found", NULL, "no such resource");
	}
	r->route = rt;
	if (r->body_too_large)
		return http_error(r, MHD_HTTP_CONTENT_TOO_LARGE, "body_too_large", NULL,
				  "request body larger than %lld bytes", (long long)r->body_max);
	if (!(rt->flags & HTTP_R_BODY) && r->body.len != 0)
		return http_error(r, MHD_HTTP_CONTENT_TOO_LARGE, "body_not_allowed", NULL,
				  "this resource takes no request body");
	if ((rt->flags & HTTP_R_MSG_BODY) &&
	    !is_type(MHD_lookup_connection_value(r->c, MHD_HEADER_KIND, "Content-Type"),
		     "message/rfc822"))
		return http_error(r, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type",
				  NULL, "send Content-Type: message/rfc822");
	if ((rt->flags & HTTP_R_BODY) && !(rt->flags & HTTP_R_MSG_BODY) &&
	    !((rt->flags & HTTP_R_OPT_BODY) && r->body.len == 0) &&
	    !is_json_type(MHD_lookup_connection_value(r->c, MHD_HEADER_KIND, "Content-Type")) &&
	    !((rt->flags & HTTP_R_TEXT_BODY) &&
	      is_text_type(MHD_lookup_connection_value(r->c, MHD_HEADER_KIND, "Content-Type"))))
		return http_error(r, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type",
				  NULL, (rt->flags & HTTP_R_TEXT_BODY) ?
				  "send Content-Type: application/json or text/plain" :
				  "send Content-Type: application/json");
	r->st = http_thread_store(r->h);
	if (r->st == NULL)
		return http_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "unavailable", NULL,
				  "database unavailable");
	MHD_get_connection_values(r->c, MHD_GET_ARGUMENT_KIND, collect_arg, r);
	if (!(rt->flags & HTTP_R_PUBLIC)) {
		if (http_auth_resolve(r, &internal) < 0) {
			if (internal)
				return http_internal(r, "authentication");
			return http_fail_reply(r);
		}
		if (r->auth.via == HTTP_VIA_SESSION && strcmp(r->method, "GET") != 0 &&
		    strcmp(r->method, "HEAD") != 0) {
			const char *tok = MHD_lookup_connection_value(r->c, MHD_HEADER_KIND,
								      "X-CSRF-Token");

			if (tok == NULL || !http_secret_eq(tok, r->auth.csrf))
				return http_error(r, MHD_HTTP_FORBIDDEN, "csrf_failed", NULL,
						  "missing or wrong X-CSRF-Token header");
		}
		if ((rt->flags & HTTP_R_ADMIN) && !r->auth.admin)
			return http_error(r, MHD_HTTP_FORBIDDEN, "forbidden", NULL,
					  "administrators only");
	}
	return rt->fn(r);
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
			      const char *method, const char *version,
			      const char *upload_data, size_t *upload_data_size,
			      void **con_cls)
{
	struct http_server *h = cls;
	struct http_req *r = *con_cls;

	(void)version;
	if (r == NULL) {
		const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
							     "Content-Length");
		const struct http_route *rt;
		char allow[64];
		int known;
		int64_t n;

		conn_head_done(h, c, 0);

		r = xcalloc(1, sizeof(*r));
		r->h = h;
		r->c = c;
		r->method = method;
		/* A whole rule set travels in one body: such routes have their own limit. */
		rt = route_find(r, method, url, &known, allow, sizeof(allow));
		r->body_max = rt != NULL && (rt->flags & HTTP_R_BIG_BODY) ?
			h->conf->rules_max_body : h->conf->http_max_body;
		dynbuf_init(&r->body, (size_t)r->body_max);
		client_address(r);
		*con_cls = r;
		/* A declared length past the limit: answer before reading it. */
		if (cl != NULL && (http_parse_i64(cl, strlen(cl), 0, INT64_MAX, &n) < 0 ||
				   n > r->body_max))
			return http_error(r, MHD_HTTP_CONTENT_TOO_LARGE, "body_too_large", NULL,
					  "request body larger than %lld bytes",
					  (long long)r->body_max);
		return MHD_YES;
	}
	if (r->replied)
		return MHD_YES;
	if (*upload_data_size != 0) {
		if (!r->body_too_large &&
		    dynbuf_add(&r->body, upload_data, *upload_data_size) < 0) {
			r->body_too_large = 1;
			dynbuf_free(&r->body);
			dynbuf_init(&r->body, 0);
		}
		if (r->body_too_large) {
			r->discarded += *upload_data_size;
			if (r->discarded > (size_t)r->body_max * 4) {
				log_warn(NULL, "http", "HTTP BODY LIMIT from [%s]: dropped",
					 r->client_addr);
				return MHD_NO;
			}
		}
		*upload_data_size = 0;
		return MHD_YES;
	}
	return dispatch(r, url);
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls,
		      enum MHD_RequestTerminationCode toe)
{
	struct http_req *r = *con_cls;

	(void)toe;
	/* A kept-alive connection now waits for the next head: its clock starts. */
	conn_head_done(cls, c, time_mono_ms());
	if (r == NULL)
		return;
	dynbuf_free(&r->body);
	free(r);
	*con_cls = NULL;
}

static char *read_pem(const char *path, char *err, size_t errsz)
{
	struct dynbuf b;
	char chunk[4096];
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		snprintf(err, errsz, "%s: %s", path, strerror(errno));
		return NULL;
	}
	dynbuf_init(&b, HTTP_MAX_PEM);
	while ((n = read(fd, chunk, sizeof(chunk))) > 0) {
		if (dynbuf_add(&b, chunk, (size_t)n) < 0) {
			snprintf(err, errsz, "%s: larger than %d bytes", path, HTTP_MAX_PEM);
			goto fail;
		}
	}
	if (n < 0) {
		snprintf(err, errsz, "%s: %s", path, strerror(errno));
		goto fail;
	}
	if (dynbuf_add(&b, "", 1) < 0 || b.len < 2) {
		snprintf(err, errsz, "%s: empty or too large", path);
		goto fail;
	}
	close(fd);
	return b.data;
fail:
	close(fd);
	dynbuf_free(&b);
	return NULL;
}

struct http_server *http_server_new(const struct conf *conf, char *err, size_t errsz)
{
	const struct conf_listen *l = &conf->http_listen;
	struct http_server *h = xcalloc(1, sizeof(*h));
	char why[300];

	h->conf = conf;
	h->fd = -1;
	pthread_mutex_init(&h->conn_mu, NULL);
	pthread_cond_init(&h->conn_cv, NULL);
	if ((conf->http_tls_cert[0] != '\0') != (conf->http_tls_key[0] != '\0')) {
		snprintf(err, errsz, "http_tls_cert and http_tls_key go together");
		http_server_free(h);
		return NULL;
	}
	if (conf->http_tls_cert[0] != '\0') {
		h->tls_cert = read_pem(conf->http_tls_cert, err, errsz);
		if (h->tls_cert == NULL) {
			http_server_free(h);
			return NULL;
		}
		h->tls_key = read_pem(conf->http_tls_key, err, errsz);
		if (h->tls_key == NULL) {
			http_server_free(h);
			return NULL;
		}
		h->tls = 1;
	}
	h->fd = net_listen(l->host, l->port, 256, 0, h->address, sizeof(h->address), why,
			   sizeof(why));
	if (h->fd >= 0)
		return h;
	snprintf(err, errsz, "http_listen %s", why);
	http_server_free(h);
	return NULL;
}

const char *http_server_address(const struct http_server *h)
{
	return h->address;
}

/* Say at start, once, when the console cannot be served (the API still is). */
static void webui_check(const struct conf *conf)
{
	const char *why = http_static_missing(conf->webui_dir);

	if (why != NULL)
		log_warn(NULL, "http", "webui_missing dir=%s reason=\"%s\" console=off api=on",
			 conf->webui_dir, why);
}

int http_server_start(struct http_server *h, const char *db_path, char *err,
		      size_t errsz)
{
	const struct conf *conf = h->conf;
	unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG;
	struct store *st;

	strlcpy_s(h->db_path, db_path, sizeof(h->db_path));
	h->started_ms = time_now_ms();
	st = store_open(h->db_path, 0, err, errsz);
	if (st == NULL)
		return -1;
	if (http_auth_bootstrap(st, err, errsz) < 0) {
		store_close(st);
		return -1;
	}
	store_close(st);
	if (pthread_key_create(&h->store_key, store_destroy) != 0) {
		snprintf(err, errsz, "http: cannot create thread key");
		return -1;
	}
	h->key_made = 1;
	if (h->tls)
		flags |= MHD_USE_TLS;
	webui_check(conf);
	h->mhd = MHD_start_daemon(
		flags, 0, accept_policy, h, handle, h,
		MHD_OPTION_LISTEN_SOCKET, (MHD_socket)h->fd,
		MHD_OPTION_NOTIFY_CONNECTION, conn_notify, h,
		MHD_OPTION_THREAD_POOL_SIZE, (unsigned int)conf->http_threads,
		MHD_OPTION_CONNECTION_LIMIT, (unsigned int)conf->http_max_connections,
		MHD_OPTION_CONNECTION_TIMEOUT,
		(unsigned int)((conf->http_timeout_ms + 999) / 1000),
		MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)HTTP_CONN_MEMORY,
		MHD_OPTION_NOTIFY_COMPLETED, completed, h,
		h->tls ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, h->tls_cert,
		MHD_OPTION_HTTPS_MEM_KEY, h->tls_key,
		MHD_OPTION_END);
	if (h->mhd == NULL) {
		snprintf(err, errsz, "http: cannot start libmicrohttpd on %s%s", h->address,
			 h->tls ? " (check http_tls_cert and http_tls_key)" : "");
		return -1;
	}
	if (pthread_create(&h->watchdog, NULL, watchdog, h) != 0) {
		snprintf(err, errsz, "http: cannot start the watchdog thread");
		return -1;
	}
	h->watchdog_started = 1;
	return 0;
}

void http_server_free(struct http_server *h)
{
	if (h == NULL)
		return;
	if (h->watchdog_started) {
		pthread_mutex_lock(&h->conn_mu);
		h->watchdog_stop = 1;
		pthread_cond_signal(&h->conn_cv);
		pthread_mutex_unlock(&h->conn_mu);
		pthread_join(h->watchdog, NULL);
	}
	if (h->mhd != NULL)
		MHD_stop_daemon(h->mhd); /* joins the pool; thread stores close */
	else if (h->fd >= 0)
		close(h->fd);
	if (h->key_made)
		pthread_key_delete(h->store_key);
	free(h->tls_cert);
	free(h->tls_key);
	pthread_cond_destroy(&h->conn_cv);
	pthread_mutex_destroy(&h->conn_mu);
	free(h);
}
