/*
 * alert: account alerts leave moatd — the notifier — and the
 * administrator's actions on an account, one home for the API and the CLI.
 *
 * The notifier (alert.c) is a worker (util/worker.h) with its own SQLite
 * connection, ticked every second by a loop timer (one tick under way at
 * most).  It reads account_alert rows with notified = 0 that are at least
 * ALERT_SETTLE_MS old (the engine records how much it held just after the
 * suspension), and for each:
 *   kind 'suspended': an e-mail to the administrators, written into
 *     moatd's own queue (spool_inject.h) in the same transaction that sets
 *     notified, so it is queued exactly once; then the webhook, if set;
 *   kind 'lifted': the webhook only (the administrator who lifted knows);
 *   any other kind: nothing, notified = -1.
 * A failed webhook is tried again on later ticks (alert_webhook_retry,
 * then 9 times that; three tries in all) and then logged as
 * ALERT WEBHOOK FAILED.  Retries live in memory: a restart drops them.
 * Nothing here runs on the loop but the timer and the job's done().
 *
 * The actions (alert_admin.c) each change account_state, record an
 * alert row and an audit row in one transaction, and act on the queue
 * through queue_admin (audited there): called on HTTP threads and in the
 * CLI, each with its own store connection.
 */
#ifndef MOAT_ALERT_H
#define MOAT_ALERT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "../util/util.h"

struct conf;
struct event_base;
struct store;
struct queue_admin_actor;

#define ALERT_SETTLE_MS 1000     /* an alert waits this long before it goes out */
#define ALERT_REASON_MAX 200     /* a manual suspension's reason, bytes */
#define ALERT_TRUST_MAX_DAYS 366 /* trust at most this far ahead */
#define ALERT_SAMPLES 5          /* sample messages in an alert */

/* ---- the notifier ---- */

struct alert;
/*
 * Start the notifier: db_path its database, url_base the console's public
 * base (digest_url_base(): links in the mail), kick(kick_arg) called on
 * the loop after a mail was queued (the queue runner's kick).
 */
struct alert *alert_start(struct event_base *base, const struct conf *conf,
			  const char *db_path, const char *url_base,
			  void (*kick)(void *arg), void *kick_arg, char *err, size_t errsz);
/* Stop: a tick under way finishes first.  NULL ok. */
void alert_free(struct alert *a);

/* ---- pure parts (alert_mail.c, alert_webhook.c), unit-testable ---- */

/* What the alert mail says; JSON fields as stored (text or NULL). */
struct alert_mail {
	const char *hostname;    /* Message-ID's right side */
	const char *from;        /* From: header */
	const char *to;          /* To: header (comma list) */
	const char *url_base;    /* console links; "" none */
	int64_t now_ms;
	int64_t id, ts, score, held;
	const char *user, *detail, *actor;
	const char *signals, *clients, *samples;
};
/* The whole RFC 5322 message into out (created with its maximum).  0, or -1 too big. */
int alert_mail_render(struct dynbuf *out, const struct alert_mail *m);

/* "sha256=<hex of HMAC-SHA256(secret, ts "." body)>" into out. */
void alert_webhook_sign(const char *secret, int64_t ts, const char *body, size_t len,
			char out[80]);
/*
 * An http:// or https:// URL: host (brackets off an IPv6 literal), port
 * (80/443 unless given) and path ("/" when none).  0, or -1 if malformed.
 */
struct alert_url {
	int tls;
	char host[256];
	char port[8];
	char path[1024];
};
int alert_url_parse(const char *s, size_t len, struct alert_url *u);
/* The status code of an HTTP/1.x response head in buf[0..len).  0, or -1. */
int alert_http_status(const char *buf, size_t len, int *status);
/*
 * POST body to url with the signature headers; timeout_ms bounds the
 * connection and the response head; insecure: no certificate check.
 * *status the HTTP status (0 when none came).  0 on a 2xx, else -1 and err.
 */
int alert_webhook_post(const char *url, const char *secret, int insecure,
		       int64_t timeout_ms, const char *body, size_t len, int *status,
		       char *err, size_t errsz);

/* ---- the actions (alert_admin.c) ---- */

enum alert_result {
	ALERT_DONE = 0,
	ALERT_ERROR = -1,        /* err filled; nothing changed */
	ALERT_UNKNOWN = -2,      /* no such account */
	ALERT_ALREADY = -3,      /* suspend: already suspended */
	ALERT_NOT_SUSPENDED = -4, /* lift: not suspended */
	ALERT_NOT_TRUSTED = -5   /* end of trust: not trusted */
};

enum alert_held { ALERT_HELD_KEEP, ALERT_HELD_RELEASE, ALERT_HELD_DELETE };

/*
 * Suspend user now: holds what it queued in the last window_ms (queued
 * and deferred recipients of its messages), records the alert (actor,
 * notified 0: mail and webhook go out) and the audit row "account.suspend".
 * The running daemon applies it within a second (the account worker reads
 * suspensions back).  *alert_id and *held set on success.
 */
enum alert_result alert_admin_suspend(struct store *st, const char *data_dir,
				      const char *user, const char *reason, int64_t window_ms,
				      const struct queue_admin_actor *actor, int64_t *alert_id,
				      int64_t *held, char *err, size_t errsz);
/*
 * Lift user's suspension; what its messages have held is kept, released
 * or deleted (queue_admin, audited) first.  Alert 'lifted' with the action.
 */
enum alert_result alert_admin_lift(struct store *st, const char *data_dir, const char *user,
				   enum alert_held held, const struct queue_admin_actor *actor,
				   int64_t *released, int64_t *deleted, char *err, size_t errsz);
/* Trust user for bulk mail until (unix ms; 0 clears), alert 'trusted' / 'untrusted'. */
enum alert_result alert_admin_trust(struct store *st, const char *user, int64_t until,
				    const struct queue_admin_actor *actor, char *err,
				    size_t errsz);
/*
 * Up to ALERT_SAMPLES held messages of user as the samples JSON array text
 * (malloc'ed; "[]" when none): qid, sender, recipient, Subject (from the
 * spool file), size.
 */
char *alert_samples_json(struct store *st, const char *data_dir, const char *user);

/*
 * An alert row as the API and the webhook show it: times in unix ms (null
 * when none), the JSON columns parsed ([] when none or unreadable).
 */
struct store_alert_row;
json_t *alert_row_json(const struct store_alert_row *a);

#endif
