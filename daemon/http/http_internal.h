/*
 * http_internal: what the http_*.c files share — the request, the route
 * table's shape, reply helpers and argument helpers.  Not part of the
 * module's face (http.h).
 *
 * A struct http_req lives from the first callback of a request to
 * libmicrohttpd's completion notice and is owned by http.c.  Handlers run
 * on an HTTP pool thread with that thread's own store (r->st), reply
 * exactly once through http_reply*() and return its result.  Strings in
 * r->args and r->params point into libmicrohttpd's buffers and are valid
 * until the handler returns.
 */
#ifndef MOAT_HTTP_INTERNAL_H
#define MOAT_HTTP_INTERNAL_H

#include <jansson.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "http.h"
#include "http_parse.h"
#include "../util/util.h"

struct conf;
struct store;

#define HTTP_MAX_PARAMS 4
#define HTTP_MAX_ARGS 32
#define HTTP_DEFAULT_PAGE 50

/* Status codes counted for /metrics; the last slot is "other". */
#define HTTP_NSTATUS 17
extern const unsigned http_counted_status[HTTP_NSTATUS - 1];

struct http_server {
	const struct conf *conf;
	int fd;
	char address[80];
	char db_path[1200];
	struct MHD_Daemon *mhd;
	pthread_key_t store_key;
	int key_made;
	int tls;                    /* serving HTTPS */
	char *tls_cert, *tls_key;   /* PEM, read before privileges are dropped */
	_Atomic uint64_t requests[HTTP_NSTATUS];
	int64_t started_ms;
	/* Open connections (http.c): per-address counts and the head deadline. */
	pthread_mutex_t conn_mu;
	pthread_cond_t conn_cv;     /* wakes the watchdog to stop */
	struct http_conn *conns;    /* every open connection, under conn_mu */
	pthread_t watchdog;
	int watchdog_started;
	int watchdog_stop;          /* under conn_mu */
	_Atomic int64_t limit_logged_ms; /* last CONNECTION LIMIT line (rate limit) */
};

enum http_via { HTTP_VIA_NONE, HTTP_VIA_SESSION, HTTP_VIA_TOKEN };

struct http_auth {
	enum http_via via;
	int64_t user_id;
	char user[320];
	char role[8];              /* the account's role */
	int admin;                 /* effective: admin role and not a user-scoped token */
	int64_t token_id;
	char session_hash[65];
	char csrf[80];
	int64_t created, expires, last_seen;
};

struct http_arg {
	const char *key;
	const char *value;
};

struct http_req {
	struct http_server *h;
	struct MHD_Connection *c;
	const char *method;
	struct dynbuf body;
	int body_too_large;
	int64_t body_max;          /* this request's body limit (route's) */
	size_t discarded;
	int replied;
	const struct http_route *route;
	struct http_span params[HTTP_MAX_PARAMS];
	size_t nparams;
	struct http_arg args[HTTP_MAX_ARGS];
	size_t nargs;
	char bad_arg[80];          /* a duplicate or excess query parameter */
	struct store *st;
	char client_addr[64];
	struct http_auth auth;
	char set_cookie[600];      /* added to the reply when not "" */
	int64_t retry_after;       /* seconds; Retry-After added when > 0 */
	const char *frame_options; /* X-Frame-Options; NULL: DENY */
	struct http_fail fail;     /* filled by the helpers that return -1 */
};

typedef enum MHD_Result (*http_handler)(struct http_req *r);

enum {
	HTTP_R_PUBLIC = 1,  /* no authentication */
	HTTP_R_ADMIN = 2,   /* administrators only (403 for users) */
	HTTP_R_BODY = 4,    /* takes a JSON body */
	HTTP_R_BIG_BODY = 8, /* body bounded by rules_max_body instead of http_max_body */
	HTTP_R_TEXT_BODY = 16, /* with HTTP_R_BODY: text/plain is accepted as well */
	HTTP_R_OPT_BODY = 32, /* with HTTP_R_BODY: the body may be left out (no Content-Type) */
	HTTP_R_MSG_BODY = 64, /* with HTTP_R_BODY: the body is a message (message/rfc822) */
};

struct http_route {
	const char *method;
	const char *pattern;
	int flags;
	http_handler fn;
};

/* ---- replies (http.c); each consumes body ---- */
enum MHD_Result http_reply(struct http_req *r, unsigned status, json_t *body);
enum MHD_Result http_reply_text(struct http_req *r, unsigned status, const char *ctype,
				char *text);
/* len bytes (binary ok, buf consumed) or a file (fd consumed), with extra
 * headers as name, value pairs ending in NULL. */
enum MHD_Result http_reply_bytes(struct http_req *r, unsigned status, const char *ctype,
				 char *buf, size_t len, const char *const *headers);
enum MHD_Result http_reply_fd(struct http_req *r, unsigned status, const char *ctype,
			      int fd, uint64_t size, const char *const *headers);
/* An HTML page (malloc'ed, consumed) with a script-free Content-Security-Policy. */
enum MHD_Result http_reply_page(struct http_req *r, unsigned status, char *html);
enum MHD_Result http_error(struct http_req *r, unsigned status, const char *code,
			   const char *field, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
enum MHD_Result http_fail_reply(struct http_req *r);
/* A store failure: logged with the SQLite message, 500 without it. */
enum MHD_Result http_internal(struct http_req *r, const char *what);
/* The same inside a transaction, then rolled back: logging first keeps SQLite's message. */
enum MHD_Result http_internal_rollback(struct http_req *r, const char *what);

/* ---- arguments (http.c); -1 fills r->fail ---- */
const char *http_arg(struct http_req *r, const char *name);
int http_args_allow(struct http_req *r, const char *const *allowed);
/* Absent: *out = def. */
int http_arg_i64(struct http_req *r, const char *name, int64_t min, int64_t max,
		 int64_t def, int64_t *out);
/* Absent: *out = 0. */
int http_arg_time(struct http_req *r, const char *name, int64_t *out);
/* Absent: *idx = -1. */
int http_arg_pick(struct http_req *r, const char *name, const char *const *allowed,
		  int *idx);
/* A string filter: absent NULL; present must be 1..maxlen bytes. */
int http_arg_str(struct http_req *r, const char *name, size_t maxlen, const char **out);

struct http_page {
	int64_t limit;
	int64_t offset;
	const char *cursor;        /* NULL when none */
};
/* limit (1..http_max_page), offset and cursor (not both). */
int http_page(struct http_req *r, struct http_page *p);
/* 404 "no such <what>" in r->fail; returns -1. */
int http_not_found(struct http_req *r, const char *what);
/* The path parameter i as a positive id; -1 (404) when not one. */
int http_param_id(struct http_req *r, size_t i, int64_t *id);
/* Parse and check the JSON body against fields; *out owned by the caller. */
int http_body(struct http_req *r, const struct http_field *fields, size_t n,
	      json_t **out);

/* {"items": items, "next_cursor": next or null} (items consumed). */
json_t *http_list(json_t *items, const char *next);
/* A unix-ms time, or null when 0. */
json_t *http_time(int64_t ms);
/* The thread's store, or NULL. */
struct store *http_thread_store(struct http_server *h);

/* Record a change in the audit log (inside the caller's transaction). */
int http_audit(struct http_req *r, const char *action, const char *type,
	       const char *object_id, json_t *before, json_t *after);
/*
 * End a change: audit it, commit, and reply status with after as the body
 * (no body for 204).  Takes before and after (either may be NULL) and frees
 * them, on failure too; a failure is answered as http_internal_rollback(what).
 */
enum MHD_Result http_audit_commit_reply(struct http_req *r, const char *action,
					const char *type, const char *object_id, json_t *before,
					json_t *after, unsigned status, const char *what);

/* ---- http_auth.c ---- */
/* Authenticate from Authorization or the session cookie; -1 fills r->fail (401). */
int http_auth_resolve(struct http_req *r, int *internal);
/* Create the first administrator when there is none (start-up, main thread). */
int http_auth_bootstrap(struct store *st, char *err, size_t errsz);
int http_password_hash(const char *pw, char *out, size_t outsz);
int http_password_verify(const char *hash, const char *pw);
void http_sha256_hex(const char *s, size_t len, char out[65]);
/* Minimum and maximum password length. */
#define HTTP_PASSWORD_MIN 8
#define HTTP_PASSWORD_MAX 1024

enum MHD_Result http_session_create(struct http_req *r);
enum MHD_Result http_session_show(struct http_req *r);
enum MHD_Result http_session_delete(struct http_req *r);
enum MHD_Result http_account_show(struct http_req *r);
enum MHD_Result http_account_password(struct http_req *r);

/* ---- http_users.c ---- */
struct store_user;
json_t *http_user_json(const struct store_user *u);
enum MHD_Result http_users_list(struct http_req *r);
enum MHD_Result http_users_create(struct http_req *r);
enum MHD_Result http_users_show(struct http_req *r);
enum MHD_Result http_users_update(struct http_req *r);
enum MHD_Result http_users_delete(struct http_req *r);

/* ---- http_account_lists.c: personal sender lists, group managers ---- */
enum MHD_Result http_account_senders_list(struct http_req *r);
enum MHD_Result http_account_senders_add(struct http_req *r);
enum MHD_Result http_account_senders_delete(struct http_req *r);
enum MHD_Result http_user_senders_list(struct http_req *r);
enum MHD_Result http_user_senders_add(struct http_req *r);
enum MHD_Result http_user_senders_delete(struct http_req *r);
enum MHD_Result http_group_managers_list(struct http_req *r);
enum MHD_Result http_group_managers_add(struct http_req *r);
enum MHD_Result http_group_managers_delete(struct http_req *r);

/* ---- http_digest.c: digest interval, template, preview, send now ---- */
enum MHD_Result http_account_digest_show(struct http_req *r);
enum MHD_Result http_account_digest_put(struct http_req *r);
enum MHD_Result http_digest_template_show(struct http_req *r);
enum MHD_Result http_digest_template_put(struct http_req *r);
enum MHD_Result http_digest_preview(struct http_req *r);
enum MHD_Result http_digest_send(struct http_req *r);

/* ---- http_link.c: the signed links of digests (/q/{token}, public) ---- */
enum MHD_Result http_link_show(struct http_req *r);
enum MHD_Result http_link_act(struct http_req *r);

/* ---- http_tokens.c ---- */
enum MHD_Result http_tokens_list(struct http_req *r);
enum MHD_Result http_tokens_create(struct http_req *r);
enum MHD_Result http_tokens_show(struct http_req *r);
enum MHD_Result http_tokens_revoke(struct http_req *r);

/* ---- http_messages.c ---- */
enum MHD_Result http_messages_list(struct http_req *r);
enum MHD_Result http_messages_show(struct http_req *r);
enum MHD_Result http_stats_messages(struct http_req *r);
enum MHD_Result http_stats_top(struct http_req *r);
enum MHD_Result http_stats_harvest(struct http_req *r);
enum MHD_Result http_stats_checks(struct http_req *r);
enum MHD_Result http_stats_dnsbl(struct http_req *r);

/* ---- http_timeline.c ---- */
enum MHD_Result http_timeline_message(struct http_req *r);
enum MHD_Result http_timeline_find(struct http_req *r);

/* ---- http_audit.c ---- */
enum MHD_Result http_audit_list(struct http_req *r);

/* ---- http_policy.c ---- */
enum MHD_Result http_policy_entries_list(struct http_req *r);
enum MHD_Result http_policy_entries_create(struct http_req *r);
enum MHD_Result http_policy_entries_show(struct http_req *r);
enum MHD_Result http_policy_entries_update(struct http_req *r);
enum MHD_Result http_policy_entries_delete(struct http_req *r);
enum MHD_Result http_policy_settings_list(struct http_req *r);
enum MHD_Result http_policy_settings_put(struct http_req *r);
enum MHD_Result http_policy_settings_delete(struct http_req *r);
enum MHD_Result http_policy_dnsbl_list(struct http_req *r);
enum MHD_Result http_policy_dnsbl_create(struct http_req *r);
enum MHD_Result http_policy_dnsbl_update(struct http_req *r);
enum MHD_Result http_policy_dnsbl_delete(struct http_req *r);
enum MHD_Result http_directory_list(struct http_req *r);
enum MHD_Result http_directory_group_create(struct http_req *r);
enum MHD_Result http_directory_group_delete(struct http_req *r);
enum MHD_Result http_user_address_add(struct http_req *r);
enum MHD_Result http_user_address_delete(struct http_req *r);
enum MHD_Result http_group_member_add(struct http_req *r);
enum MHD_Result http_group_member_delete(struct http_req *r);
/* A directory address, checked and lower-cased as `moatd policy user` does; 0 or -1. */
int http_dir_address(const char *in, char *out, size_t outsz);

/* ---- http_queue.c ---- */
enum MHD_Result http_queue_list(struct http_req *r);
enum MHD_Result http_queue_summary(struct http_req *r);
enum MHD_Result http_queue_show(struct http_req *r);
enum MHD_Result http_queue_release(struct http_req *r);
enum MHD_Result http_queue_retry(struct http_req *r);
enum MHD_Result http_queue_hold(struct http_req *r);
enum MHD_Result http_queue_delete(struct http_req *r);

/* ---- http_rules.c ---- */
enum MHD_Result http_rules_list(struct http_req *r);
enum MHD_Result http_rules_create(struct http_req *r);
enum MHD_Result http_rules_show(struct http_req *r);
enum MHD_Result http_rules_replace(struct http_req *r);
enum MHD_Result http_rules_patch(struct http_req *r);
enum MHD_Result http_rules_delete(struct http_req *r);
enum MHD_Result http_rules_order(struct http_req *r);
enum MHD_Result http_rules_export(struct http_req *r);
enum MHD_Result http_rules_import(struct http_req *r);
enum MHD_Result http_rules_test(struct http_req *r);

/* ---- http_dkim.c: DKIM signing keys ---- */
enum MHD_Result http_dkim_list(struct http_req *r);
enum MHD_Result http_dkim_create(struct http_req *r);
enum MHD_Result http_dkim_show(struct http_req *r);
enum MHD_Result http_dkim_patch(struct http_req *r);
enum MHD_Result http_dkim_delete(struct http_req *r);

/* ---- http_mailbox.c: mailbox rules under /account/rules, /users/{id}/rules and
 * /directory/groups/{address}/rules ---- */
enum MHD_Result http_mailbox_list(struct http_req *r);
enum MHD_Result http_mailbox_create(struct http_req *r);
enum MHD_Result http_mailbox_export(struct http_req *r);
enum MHD_Result http_mailbox_import(struct http_req *r);
enum MHD_Result http_mailbox_test(struct http_req *r);
enum MHD_Result http_mailbox_apply_quarantine(struct http_req *r);
enum MHD_Result http_mailbox_order(struct http_req *r);
enum MHD_Result http_mailbox_bulk(struct http_req *r);
enum MHD_Result http_mailbox_duplicate(struct http_req *r);
enum MHD_Result http_mailbox_show(struct http_req *r);
enum MHD_Result http_mailbox_replace(struct http_req *r);
enum MHD_Result http_mailbox_patch(struct http_req *r);
enum MHD_Result http_mailbox_delete(struct http_req *r);
struct policy_mbrules_owner;
/* The owner of the set at r's base; -1 fills r->fail (404) or sets *internal. */
int http_mailbox_scope(struct http_req *r, struct policy_mbrules_owner *o, char *label,
		       size_t labelsz, int *internal);
/* ---- http_sieve.c: {base}/sieve, the set as a Sieve script ---- */
enum MHD_Result http_sieve_export(struct http_req *r);
enum MHD_Result http_sieve_import(struct http_req *r);

/* ---- http_accounts.c ---- */
enum MHD_Result http_accounts_list(struct http_req *r);
enum MHD_Result http_accounts_alerts(struct http_req *r);
enum MHD_Result http_accounts_lift(struct http_req *r);
enum MHD_Result http_accounts_show(struct http_req *r);
enum MHD_Result http_accounts_alert_show(struct http_req *r);
enum MHD_Result http_accounts_suspend(struct http_req *r);
enum MHD_Result http_accounts_trust_put(struct http_req *r);
enum MHD_Result http_accounts_trust_delete(struct http_req *r);

/* ---- http_score.c: score thresholds per domain and user ---- */
enum MHD_Result http_score_thresholds_list(struct http_req *r);
enum MHD_Result http_score_thresholds_put(struct http_req *r);
enum MHD_Result http_score_thresholds_delete(struct http_req *r);
enum MHD_Result http_account_score_show(struct http_req *r);
enum MHD_Result http_account_score_put(struct http_req *r);

/* ---- http_health.c ---- */
enum MHD_Result http_healthz(struct http_req *r);
enum MHD_Result http_metrics(struct http_req *r);

/* ---- http_static.c: the web console (webui_dir) ---- */
/* 1 for a GET or HEAD path outside /api, /healthz and /metrics. */
int http_static_path(const char *method, const char *url);
enum MHD_Result http_static_serve(struct http_req *r, const char *url);
/* Why the console in dir cannot be served (a short text), or NULL: it can, or dir is "". */
const char *http_static_missing(const char *dir);

/* ---- http_greylist.c: triplets and auto-allowed networks ---- */
enum MHD_Result http_greylist_list(struct http_req *r);
enum MHD_Result http_greylist_delete(struct http_req *r);
enum MHD_Result http_greylist_delete_all(struct http_req *r);
enum MHD_Result http_greylist_allowed_list(struct http_req *r);
enum MHD_Result http_greylist_allowed_delete(struct http_req *r);

/* http_quarantine.c */
enum MHD_Result http_quarantine_list(struct http_req *r);
enum MHD_Result http_quarantine_count(struct http_req *r);
enum MHD_Result http_quarantine_show(struct http_req *r);
enum MHD_Result http_quarantine_raw(struct http_req *r);
enum MHD_Result http_quarantine_html(struct http_req *r);
enum MHD_Result http_quarantine_release(struct http_req *r);
enum MHD_Result http_quarantine_delete(struct http_req *r);
enum MHD_Result http_quarantine_learn(struct http_req *r);

/* ---- http_learn.c: teaching the statistical filter ---- */
enum MHD_Result http_learn_post(struct http_req *r);
enum MHD_Result http_messages_learn(struct http_req *r);
enum MHD_Result http_bayes_show(struct http_req *r);
/* {"class": "spam"|"ham"|"forget"} from the body: *cls 's', 'h' or 0; -1 fills r->fail. */
int http_learn_class(struct http_req *r, char *cls, const char **name);
/* Learn the message file at path into the global model and, with uid, the
 * user's own; 409 (field id) when the file is gone. */
enum MHD_Result http_learn_file(struct http_req *r, const char *path, char cls,
				const char *cls_name, int64_t uid, const char *what);
#endif
