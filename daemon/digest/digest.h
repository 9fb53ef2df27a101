/*
 * digest: quarantine digests and the signed single-use links in them
 * (docs/digest.md).
 *
 * A periodic job (digest_start: a loop timer hands each round to a worker
 * thread with its own database connection) finds the users whose digest
 * is due, renders for each one message (text and HTML) listing the items
 * quarantined for them since their last digest, each with release, delete
 * and allow-sender links, and queues it for delivery the way moatd queues
 * its own mail (a spool file in spool/queue and its queue rows).  The HTTP
 * side uses the same functions for the preview and send-now routes and
 * checks links with digest_link_verify().
 *
 * A link is base64url(payload) "." base64url(HMAC-SHA256(key, payload));
 * the key is 32 random bytes in <data_dir>/secrets/link.key (0600),
 * created at the first start, read at later ones.
 */
#ifndef MOAT_DIGEST_H
#define MOAT_DIGEST_H

#include <stddef.h>
#include <stdint.h>

struct conf;
struct dynbuf;
struct event_base;
struct store;

#define DIGEST_KEY_LEN 32
#define DIGEST_TOKEN_MAX 1024   /* a token's length at most, in bytes */
#define DIGEST_URL_MAX 1400     /* a link, base URL included */

/* ---- the link key (digest_link.c) ---- */

/*
 * Read <data_dir>/secrets/link.key, or create it (O_EXCL, fsync'ed, 0600)
 * when missing.  A key of the wrong size, or readable by others, is an
 * error: moatd refuses to start.  Start-up only, before any thread uses
 * digest_key().
 */
int digest_key_init(const char *data_dir, char *err, size_t errsz);
/* The key loaded by digest_key_init(), or NULL before. */
const unsigned char *digest_key(void);

/* ---- links (digest_link.c): pure ---- */

enum digest_action { DIGEST_RELEASE, DIGEST_DELETE, DIGEST_ALLOW };

struct digest_link {
	char rcpt[330];          /* the item's recipient, lower case */
	int64_t user_id;         /* whose digest: the scope the action runs in */
	int64_t item_id;
	enum digest_action action;
	int64_t expires;         /* unix seconds */
	char nonce[33];          /* 16 random bytes in hex: the link acts once */
};

const char *digest_action_name(enum digest_action a);

/* A fresh nonce into l->nonce. */
void digest_link_nonce(struct digest_link *l);
/* The token for l, NUL-terminated, into out.  0, or -1 when out is too small. */
int digest_link_sign(const unsigned char *key, const struct digest_link *l, char *out,
		     size_t outsz);

enum digest_verdict {
	DIGEST_LINK_OK,
	DIGEST_LINK_FORGED,      /* malformed, or the signature does not match */
	DIGEST_LINK_EXPIRED,     /* genuine, past its expiry */
};
/* Check token[0..len) at now_s (unix seconds); *out filled unless FORGED. */
enum digest_verdict digest_link_verify(const unsigned char *key, const char *token,
				       size_t len, int64_t now_s, struct digest_link *out);

/* ---- templates and messages (digest_render.c): pure ---- */

struct digest_template {
	const char *subject;
	const char *text;
	const char *html;
};

/* The built-in template (used while the administrator has stored none). */
extern const struct digest_template digest_template_default;

#define DIGEST_SUBJECT_MAX 200
#define DIGEST_BODY_MAX (64 * 1024)

/*
 * Check t: every "{{name}}" is a placeholder that field allows, every "{{"
 * is closed, no part is too long, the subject has no line break.  0, or -1
 * with *field ("subject", "text", "html") and err.
 */
int digest_template_check(const struct digest_template *t, const char **field, char *err,
			  size_t errsz);

struct digest_entry {
	int64_t id;
	const char *rcpt;
	const char *kind;
	const char *reason;
	const char *sender;
	const char *subject;
	int64_t created_at;                  /* unix ms */
	char release[DIGEST_URL_MAX];        /* "" when the user may not release this kind */
	char del[DIGEST_URL_MAX];
	char allow[DIGEST_URL_MAX];          /* "" with release */
};

struct digest_view {
	const char *user;
	const char *address;
	int64_t count;                       /* items in the digest (may exceed nitems) */
	const struct digest_entry *items;
	size_t nitems;
	const char *console;                 /* the console's URL */
};

/* Render the three parts into subject, text and html (each created by the caller). */
int digest_render(const struct digest_template *t, const struct digest_view *v,
		  struct dynbuf *subject, struct dynbuf *text, struct dynbuf *html);

struct digest_mail {
	const char *from;
	const char *to;
	const char *hostname;
	const char *id;          /* unique: Message-ID left part and MIME boundary */
	int64_t now_ms;
	const char *subject;     /* UTF-8, no line breaks */
	const char *text;        /* UTF-8 */
	const char *html;        /* UTF-8 */
};

/* The whole message (CRLF lines, multipart/alternative) into out.  0 or -1 (too large). */
int digest_message(struct dynbuf *out, const struct digest_mail *m);

/* ---- building, queueing, the periodic job (digest_job.c) ---- */

/*
 * The public base URL of links: digest_url_base, else http(s)://<the HTTP
 * listener's address>; no trailing '/'.
 */
void digest_url_base(const struct conf *conf, const char *http_address, int tls,
		     char *out, size_t outsz);

struct redisContext;

struct digest_ctx {
	const struct conf *conf;
	const char *url_base;
	int64_t now_ms;
	/* In a cluster with Redis: each user's digest of a slot is claimed
	 * there first, so one node sends it; NULL: this node sends alone. */
	struct redisContext *claims;
};

/*
 * Render user's digest of the items created after `after` (0: every item
 * still held).  Preview: links are inert ("/q/preview").  *subject, *text,
 * *html malloc'ed (caller frees); *items how many the digest counts.  0 or
 * -1 with err; *no_user when there is no such user.
 */
int digest_preview(struct store *st, const struct digest_ctx *c, const char *user,
		   char **subject, char **text, char **html, int64_t *items, int *no_user,
		   char *err, size_t errsz);

/*
 * Build user's digest of every item still held and queue it now (the
 * send-now route); digest_last_at becomes now.  0 with *items and qid, or
 * -1 with err; *bad names the problem with user ("no such user", "has no
 * address") when the caller's input is at fault.
 */
int digest_send_now(struct store *st, const struct digest_ctx *c, const char *user,
		    int64_t *items, char *qid, size_t qidsz, const char **bad, char *err,
		    size_t errsz);

struct digest_round {
	int users;               /* due users looked at */
	int sent;                /* digests queued */
	int64_t items;           /* items listed */
	int64_t ms;              /* how long the round took */
};

/* One round of the periodic job on st at c->now_ms (worker thread, bench). */
int digest_run_round(struct store *st, const struct digest_ctx *c, struct digest_round *r,
		     char *err, size_t errsz);

struct digest;
/*
 * Start the job: every digest_check a round runs on a worker thread; after
 * a round that queued mail, kick(kick_arg) runs on the loop.  conf must
 * outlive it.  NULL with err on failure.
 */
struct digest *digest_start(struct event_base *base, const struct conf *conf,
			    const char *db_path, const char *url_base,
			    void (*kick)(void *arg), void *kick_arg, char *err, size_t errsz);
/* Stop: a round under way finishes first.  NULL ok. */
void digest_free(struct digest *d);

#endif
