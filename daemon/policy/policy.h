/*
 * policy: the front-door policy — the checks run at each SMTP step
 * (connect, HELO, MAIL, RCPT, DATA) against an immutable snapshot of the
 * lists and settings in SQLite.
 *
 * The engine (struct policy) lives on the mail event loop.  A worker thread
 * polls the policy generation in the database, builds a new snapshot off
 * the loop and hands it over; the loop swaps it in.  Each session keeps the
 * snapshot it started with, so a change applies to the next connection.
 *
 * A step function returns a verdict at once, or POLICY_PENDING when it
 * waits for DNS or a tarpit delay: the caller then stops reading from the
 * client; the engine calls done(session id) from the loop later, and the
 * caller calls the same step again with the same arguments to collect the
 * verdict.  done() is never called from inside a step function.
 */
#ifndef MOAT_POLICY_H
#define MOAT_POLICY_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct event_base;
struct dns;
struct policy;
struct policy_sess;
struct policy_snap;

enum policy_action {
	POLICY_CONTINUE, /* no opinion: go on */
	POLICY_ACCEPT,   /* accepted by an allow entry: skip the rest of the stage */
	POLICY_REFUSE,   /* permanent: 5xx */
	POLICY_DEFER,    /* temporary: 4xx */
	POLICY_PENDING,  /* waiting: call the step again after done() */
};

struct policy_verdict {
	enum policy_action action;
	char code[16];    /* "554 5.7.1" */
	char text[512];   /* the configured reply text, placeholders expanded */
	char check[32];   /* "conn_deny", "dnsbl", ... */
	char entry[320];  /* "entry 12 192.0.2.0/24" or "" */
	int close;        /* end the session after this reply */
};

typedef void (*policy_done_cb)(uint64_t session_id, void *arg);

struct policy_limits {
	const char *hostname;   /* ours, for the HELO check */
	int64_t max_sessions;   /* the config's total, for the trusted reserve */
};

/*
 * Load the first snapshot from db_path (fails on a database error) and
 * start the watcher thread.
 */
struct policy *policy_new(struct event_base *base, const char *db_path,
			  const struct policy_limits *lim, policy_done_cb done, void *arg,
			  char *err, size_t errsz);
/* Optional: without a resolver, DNS checks are skipped (and logged once). */
void policy_set_dns(struct policy *p, struct dns *dns);
/* Stops the watcher and flushes statistics.  Sessions must be gone. */
void policy_free(struct policy *p);
int64_t policy_generation(const struct policy *p);

/* Per session; local may be NULL.  Takes a reference on the current snapshot. */
struct policy_sess *policy_sess_new(struct policy *p, uint64_t session_id,
				    const struct sockaddr *client, const struct sockaddr *local);
void policy_sess_free(struct policy_sess *ps);

/* nsessions: sessions open now, this one included. */
enum policy_action policy_connect(struct policy_sess *ps, int nsessions,
				  struct policy_verdict *v);
enum policy_action policy_helo(struct policy_sess *ps, const char *helo, size_t len,
			       struct policy_verdict *v);
/* sender: "" for the null sender. */
enum policy_action policy_mail(struct policy_sess *ps, const char *sender,
			       struct policy_verdict *v);
/* nrcpts: recipients accepted so far in this transaction. */
enum policy_action policy_rcpt(struct policy_sess *ps, const char *rcpt, size_t nrcpts,
			       int authenticated, struct policy_verdict *v);
/* Header lines (CRLF-terminated) that checks asked to add; returns length. */
size_t policy_data_headers(const struct policy_sess *ps, char *out, size_t outsz);

/*
 * domain is one of ours (the local_domain list, wildcards included): in the
 * session's snapshot, or in the current one (mail event loop only).  Local
 * domains go to the downstream servers and are not checked for MX.
 */
int policy_sess_local_domain(const struct policy_sess *ps, const char *domain);
int policy_local_domain(const struct policy *p, const char *domain);

/*
 * RFC 5321 4.5.1: where RCPT TO:<Postmaster> without a domain goes — the
 * postmaster_address setting, else postmaster@ the first local_domain
 * entry (in the order added; wildcards skipped).  0 with the address in
 * out, or -1 when there is none.  That address is never refused as an
 * unknown recipient.
 */
int policy_sess_postmaster(const struct policy_sess *ps, char *out, size_t outsz);

/* The forward-confirmed client name, or NULL. */
const char *policy_client_name(const struct policy_sess *ps);

#endif
