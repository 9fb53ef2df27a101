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

/*
 * The one verdict type of the daemon: every check of every stage, the
 * account defence (account/) included, answers with it; smtp/ sees no
 * other.  The front-door stages (connect to RCPT) use CONTINUE to PENDING;
 * the actions after PENDING are dispositions of the end-of-DATA content
 * stage, per recipient, and never come out of a front-door step.
 */
enum policy_action {
	POLICY_CONTINUE,   /* no opinion: go on */
	POLICY_ACCEPT,     /* accepted by an allow entry: skip the rest of the stage */
	POLICY_REFUSE,     /* permanent: 5xx */
	POLICY_DEFER,      /* temporary: 4xx */
	POLICY_PENDING,    /* waiting: call the step again after done() */
	POLICY_TAG,        /* deliver with subject_prefix and/or header added */
	POLICY_QUARANTINE, /* keep in quarantine, do not deliver */
	POLICY_HOLD,       /* keep in the queue, held, for an administrator */
	POLICY_DISCARD,    /* accept and drop */
	POLICY_REDIRECT,   /* deliver to address instead of the recipient */
	POLICY_BCC,        /* deliver, and a copy to address */
};

struct policy_verdict {
	enum policy_action action;
	char code[16];    /* "554 5.7.1" */
	char text[512];   /* the configured reply text, placeholders expanded */
	char check[32];   /* "conn_deny", "dnsbl", ... */
	char entry[320];  /* "entry 12 192.0.2.0/24" or "" */
	int close;        /* end the session after this reply */
	/* TAG */
	char subject_prefix[64];  /* "[SPAM] " or "" */
	char header[256];         /* one header line without CRLF, or "" */
	/* REDIRECT, BCC */
	char address[320];
};

typedef void (*policy_done_cb)(uint64_t session_id, void *arg);

struct mime_limits;

struct policy_limits {
	const char *hostname;   /* ours, for the HELO check */
	int64_t max_sessions;   /* the config's total, for the trusted reserve */
	const struct mime_limits *mime; /* the content stage's bounds; NULL: defaults */
	int content_workers;    /* threads of the content stage; 0: one */
	int64_t mailbox_rules_cache; /* bytes of compiled mailbox sets; 0: 256M */
};

#define POLICY_MAX_CONTENT_WORKERS 16

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

/*
 * The steps, in SMTP order.  Each runs its stage's checks (policy_connect.c,
 * policy_helo.c, policy_mail.c, policy_rcpt.c, policy_data.c) and answers
 * with one verdict: CONTINUE (go on), REFUSE or DEFER (reply with v), or
 * PENDING (stop reading; after done() call the same step again with the
 * same arguments: the stage resumes where it waited and runs no check
 * twice).
 */
/* nsessions: sessions open now, this one included. */
enum policy_action policy_connect(struct policy_sess *ps, int nsessions,
				  struct policy_verdict *v);
enum policy_action policy_helo(struct policy_sess *ps, const char *helo, size_t len,
			       struct policy_verdict *v);
/*
 * sender: "" for the null sender.  The sender lists, then for an
 * authenticated session the account: sender binding, suspension, rate
 * limits, score.  Never PENDING today.
 */
enum policy_action policy_mail(struct policy_sess *ps, const char *sender,
			       struct policy_verdict *v);
/*
 * A MAIL whose sender smtp/ answered 501 5.1.7 (args: the command's
 * arguments as received, "FROM:<agds> ...").  For an authenticated
 * session it counts against the account (malformed sender); smtp/ keeps
 * its 501.
 */
void policy_mail_malformed(struct policy_sess *ps, const char *args, size_t len);
/*
 * nrcpts: recipients accepted so far in this transaction.  For an
 * authenticated session first the recipient domain (MX, A, AAAA, null MX:
 * may wait for DNS), last the account's rate limits and score.
 */
enum policy_action policy_rcpt(struct policy_sess *ps, const char *rcpt, size_t nrcpts,
			       struct policy_verdict *v);
/*
 * End of DATA for the front door: the account suspended meanwhile, and
 * the From: binding (auth_bind_from_header).  policy_data_start() when
 * DATA starts, policy_data() with the message octets as spooled.
 */
void policy_data_start(struct policy_sess *ps);
void policy_data(struct policy_sess *ps, const char *p, size_t len);
enum policy_action policy_data_end(struct policy_sess *ps, struct policy_verdict *v);
/* Header lines (CRLF-terminated) that checks asked to add; returns length. */
size_t policy_data_headers(const struct policy_sess *ps, char *out, size_t outsz);

/* ---- AUTH and the account defence (policy_account.c) -------------------- */

struct conf;
/*
 * Start the account defence (account/: rate limits, score, suspension,
 * AUTH failures per client address) with the config's limits; called when
 * AUTH is offered.  conf must outlive p.  0, or -1 with err.
 */
int policy_set_accounts(struct policy *p, const struct conf *conf, const char *db_path,
			char *err, size_t errsz);
struct cluster_redis;
/*
 * Cluster mode (docs/cluster.md): the node's Redis connection, asked for
 * the rate limits at MAIL and RCPT of authenticated sessions (the stage
 * waits at most cluster_redis_timeout; without an answer the local
 * counters decide).  Before policy_set_accounts().  Not owned: it must
 * outlive every session, and policy_free() comes after it is freed.
 */
void policy_set_cluster(struct policy *p, struct cluster_redis *cr);
/*
 * The AUTH step, before an exchange starts: a client address past
 * auth_fail_max_per_addr failures is refused (421, close).
 */
enum policy_action policy_auth(struct policy_sess *ps, struct policy_verdict *v);
/* An exchange failed: one failure for the client address. */
void policy_auth_failed(struct policy_sess *ps);
/*
 * 1 when user (as typed in the exchange: dir_user.name, compared exactly,
 * as the account engine keys it) is suspended: AUTH is then refused at once,
 * without a password check and without counting a failure.
 */
int policy_auth_suspended(struct policy_sess *ps, const char *user);
/*
 * An exchange succeeded: user, and the addresses it may send as (lower
 * case; the array and its strings are taken over).  NULL user: forget the
 * login (STARTTLS).
 */
void policy_auth_login(struct policy_sess *ps, const char *user, char **addrs, size_t naddrs);

/*
 * Pure: the addresses of the From: field in a header section (CRLF lines,
 * unfolded here); cb(addr, len) for each.  Number found, or -1 without a
 * From: field.  (policy_from.c)
 */
int policy_from_addresses(const char *hdr, size_t len,
			  void (*cb)(const char *addr, size_t alen, void *arg), void *arg);

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

/* ---- end of DATA: the content stage (policy_content.c) ------------------ */

struct spool_file;

/* What the content stage decided for one recipient. */
struct policy_content_rcpt {
	char *rcpt;                /* the address to queue (a redirect's target, a bcc) */
	enum policy_action disp;   /* CONTINUE (deliver), QUARANTINE, HOLD or DISCARD */
	char reason[200];          /* the rule: "rule 12 name", or "" */
	char kind[12];             /* QUARANTINE: "spam" or "policy" (the rule's kind) */
	/* The recipient's delivery edit from its mailbox rules (JSON: folder,
	 * subject_prefix, headers, importance), or NULL.  The same address may
	 * come twice with different edits (a copy to a folder). */
	char *edit;
};

struct policy_content_result {
	uint64_t sid;
	/* REFUSE or DEFER: the answer to the whole transaction; else CONTINUE. */
	struct policy_verdict verdict;
	struct policy_content_rcpt *rcpts;  /* what to queue, in order */
	size_t nrcpts;
	char summary[400];         /* "rules=3,7": every rule that matched */
	int user_allowed;          /* spam quarantines lifted by personal allow entries */
	/* The message's Subject and Message-ID (decoded, cut), for the quarantine index. */
	char subject[256];
	char message_id[256];
	struct spool_file *file;   /* the message, back to the session */
	int io_error;              /* the file could not be read or tagged */
	int64_t parse_us, elapsed_ms, started_ms;
	/* The score (docs/score.md): the highest recipient's, with its parts. */
	int scored;
	double score;
	char score_action[16];     /* none, tag, quarantine, refuse, greylist */
	char *score_json;          /* [{"name","points","detail"}], or NULL */
};

/* The envelope the rules see; copied by policy_content_start(). */
struct policy_content_env {
	const char *sender;
	const char *const *rcpts;
	size_t nrcpts;
	const char *helo;
	int tls;
};

/* 1 when the session's snapshot has server rules or mailbox rule sets to run. */
int policy_content_wanted(const struct policy_sess *ps);
/*
 * Lend the complete (unacknowledged) spool file to the content worker; the
 * session stops reading.  When the answer is in, done(session id) is
 * called and policy_content_take() hands it over, the file included.
 */
void policy_content_start(struct policy_sess *ps, struct spool_file *f,
			  const struct policy_content_env *env);
struct policy_content_result *policy_content_take(struct policy_sess *ps);
/*
 * The recipient's class under the session's server rules (rules_rcpt_class):
 * a transaction takes recipients of one class only, so that refuse and
 * defer at the end of DATA hold for all of them.  0 without rules.
 */
uint64_t policy_content_rcpt_class(const struct policy_sess *ps, const char *rcpt);
/* Frees r and discards its file (if still in r).  NULL ok. */
void policy_content_result_free(struct policy_content_result *r);

/* The forward-confirmed client name, or NULL. */
const char *policy_client_name(const struct policy_sess *ps);

/*
 * delay_reject (Postfix smtpd_delay_reject): with the setting on, a
 * refusal that a connect-stage check (client lists, reverse DNS, DNSBL)
 * or a HELO check decides makes its step answer CONTINUE; the verdict is
 * kept here and smtp/ gives it at each RCPT (and AUTH), so that the
 * message log names the sender and the recipients.  The connect stage's
 * verdict first, else the latest HELO's; NULL when there is none.
 * Connection limits are never delayed.
 */
const struct policy_verdict *policy_delayed(const struct policy_sess *ps);
/*
 * The same for one recipient (policy_user.c): a delayed DNSBL refusal is
 * lifted (NULL, logged as user_allow) when the recipient's owner allows
 * the sender on their personal list (docs/policy.md).
 */
const struct policy_verdict *policy_delayed_rcpt(struct policy_sess *ps, const char *rcpt);
/* delay_reject_max: delayed refusals a session gets before 421 and close. */
int64_t policy_delay_reject_max(const struct policy_sess *ps);

#endif
