/*
 * smtp_internal: what smtp_server.c and smtp_session.c share.
 */
#ifndef MOAT_SMTP_INTERNAL_H
#define MOAT_SMTP_INTERNAL_H

#include <netinet/in.h>
#include <stdint.h>
#include <sys/socket.h>

#include "smtp.h"
#include "smtp_data.h"
#include "smtp_parse.h"

struct bufferevent;
struct evconnlistener;
struct event;

#define SMTP_ADDR_MAX 64 /* textual IPv6 address with room to spare */
/* A session-count key: a client address, or "@" and an account name. */
#define SMTP_COUNT_KEY_MAX (SMTP_ADDR_MAX + 330)

struct smtp_client;  /* per-address connection count, in smtp_server.c */
struct policy;
struct policy_sess;

enum smtp_state {
	SMTP_ST_GREET_PAUSE, /* connected, banner not sent yet */
	SMTP_ST_INIT,        /* banner sent, no HELO yet */
	SMTP_ST_HELO,        /* greeted, no transaction */
	SMTP_ST_MAIL,        /* MAIL accepted */
	SMTP_ST_RCPT,        /* at least one RCPT accepted */
	SMTP_ST_DATA,        /* receiving the message */
	SMTP_ST_COMMIT,      /* waiting for the spool writer */
	SMTP_ST_CONTENT,     /* waiting for the content stage (rules) */
};

/* One transaction: MAIL to end of DATA or RSET.  Freed by smtp_tx_free(). */
struct smtp_tx {
	char *sender;
	char **rcpts;
	size_t nrcpts;
	size_t rcpt_cap;
	int64_t declared_size;
	int smtputf8;
	int body_8bitmime;
	int rcpt_attempts;   /* RCPT commands checked, accepted or not */
	struct spool_file *file;
	struct smtp_data data;
	int64_t received_at;
	int spool_error;     /* enum spool_err of the first failed write */
	char note[400];      /* the content stage's dispositions, for the message log */
	uint64_t rcpt_class; /* server rules' class of the recipients (rules_rcpt_class) */
	char message_id[SMTP_DATA_MSGID_MAX + 1]; /* "" until end of DATA found one */
	int nqueue, nquarantine, nhold;            /* the committed recipients by disposition */
	/* The content stage's score (docs/score.md), for the message log. */
	int scored;
	double score;
	char *score_json;
};

/*
 * The conversation of a session as the message log keeps it (schema/015,
 * docs/timeline.md): JSON objects {"ts", "stage", "event", "recipient"?,
 * "detail"} joined by commas, at most timeline_max_bytes; what does not
 * fit is counted, not kept.  Events from MAIL on belong to the transaction
 * and are cut off again when it ends (mark).
 */
struct smtp_conv {
	char *buf;
	size_t len, cap;
	size_t mark;         /* length when the transaction began */
	int marked;
	int dropped;         /* events that did not fit */
	int mark_dropped;
	int connected;       /* the connect event is in */
};

#define SMTP_F_CLOSING 0x01   /* final reply queued; free when written */
#define SMTP_F_PAUSED 0x02    /* waiting for a verdict; do not read */
#define SMTP_F_DISCARD 0x04   /* dropping an overlong command line */
#define SMTP_F_OUTWAIT 0x08   /* output buffer full; resume when drained */
#define SMTP_F_ESMTP 0x10     /* EHLO, not HELO */
#define SMTP_F_DRAINING 0x20  /* shutdown: close after the current message */

struct smtp_session {
	uint64_t id;
	char idstr[17];
	struct smtp_server *srv;
	struct smtp_session *hnext;  /* session table chain */
	struct smtp_session *next;   /* list of all sessions */
	struct smtp_session *prev;
	struct smtp_client *client;

	struct bufferevent *bev;
	struct event *timer;         /* greet pause, then session time limit */
	struct event *deadline;      /* the current command line or DATA block */
	struct event *flush;         /* writes the replies of one loop pass (plain text) */
	int64_t deadline_ms;         /* monotonic; 0: not armed */
	int fd;
	char addr[SMTP_ADDR_MAX];
	char name[256];
	char helo[SMTP_DOMAIN_MAX + 1];

	enum smtp_state state;
	unsigned flags;
	int errors;                  /* protocol errors, bounded by max_errors */
	int refusals;                /* policy refusals, bounded by max_refusals(_unauth) */
	int64_t started_ms;
	struct smtp_tx *tx;

	struct policy_sess *pol;     /* front-door policy state; NULL without policy */
	/* Paused for a policy verdict: what runs when it is ready (connect or a proceed_<cmd>). */
	void (*resume)(struct smtp_session *s);
	/* The current command's verb and argument, checked once, kept for its proceed_<cmd>. */
	enum smtp_verb verb;
	union {
		char helo[SMTP_DOMAIN_MAX + 1];
		struct smtp_mail_args mail;
		struct smtp_rcpt_args rcpt;
	} arg;
	int rcpts_seen;              /* RCPT commands in the session (for its log line) */
	int rcpts_ok;                /* ... of them accepted */

	/* STARTTLS and AUTH (smtp_tls.c, smtp_auth.c) */
	int submission;              /* accepted on a submission listener */
	int tls;                     /* TLS handshake done */
	char tls_info[128];          /* "version=TLSv1.3 cipher=..." once tls */
	struct smtp_auth *auth;      /* AUTH exchange and its result; smtp_auth.c owns */
	char auth_user[320];         /* "" until AUTH succeeded */

	struct smtp_conv conv;       /* the conversation, for the message log */
	const char *conv_stage;      /* the stage a refusal belongs to ("rcpt", ...) */
	int delayed_given;           /* delay_reject refusals given so far */
	int delayed_lifted;          /* ... and recipients a personal allow exempted */
};

struct smtp_server {
	struct event_base *base;
	const struct conf *conf;
	struct spool *spool;
	struct spool_writer *writer;
	struct dns *dns;              /* set by smtp_server_set_dns() */

	struct evconnlistener *listeners[16];
	char listen_addrs[16][80];
	int nlisteners;
	int nsmtp_listeners;          /* the first ones; the rest are submission */
	struct smtp_tls *tls;         /* server TLS context (smtp_tls.c) */
	struct smtp_authsrv *authsrv; /* AUTH verifier worker (smtp_auth.c); NULL: no AUTH */

	struct smtp_session **table; /* by id */
	size_t table_size;
	struct smtp_session *sessions;
	int nsessions;
	uint64_t next_id;

	struct smtp_client **clients; /* by address */
	size_t clients_size;

	int shutting_down;
	int stressed;                 /* sessions above stress_sessions percent */
	struct policy *policy;        /* NULL: no front-door policy */
	char *line;                   /* max_command_line + 1 scratch */
	char *scratch;                /* DATA unstuffing scratch */
	size_t scratch_size;
};

/* smtp_server.c */
/* Give s an id and enter it in the session table. */
void smtp_server_link(struct smtp_server *srv, struct smtp_session *s);
/* Count s against its client address; returns that address's sessions. */
int smtp_server_client_acquire(struct smtp_server *srv, struct smtp_session *s);
void smtp_server_client_release(struct smtp_server *srv, struct smtp_session *s);
/*
 * Count s against key instead (an account, "@" and its name, once the
 * client authenticates); returns the sessions counted against key.
 */
int smtp_server_client_rekey(struct smtp_server *srv, struct smtp_session *s, const char *key);
struct smtp_session *smtp_server_lookup(struct smtp_server *srv, uint64_t id);
void smtp_server_unlink(struct smtp_server *srv, struct smtp_session *s);

/* smtp_tls.c: the server context; self-signed pair made on first run. */
struct smtp_tls *smtp_tls_new(const struct conf *conf, char *err, size_t errsz);
void smtp_tls_free(struct smtp_tls *t);
/* SIGHUP: load the pair again; the old context stays on failure. */
int smtp_tls_reload(struct smtp_tls *t, const struct conf *conf, char *err, size_t errsz);
/*
 * After the 220 to STARTTLS has been written: swap s->bev for a TLS
 * bufferevent on the same socket (server side).  0, or -1 (s must close).
 */
int smtp_tls_switch(struct smtp_session *s, void (*rd)(struct bufferevent *, void *),
		    void (*wr)(struct bufferevent *, void *),
		    void (*ev)(struct bufferevent *, short, void *));
/* Handshake done: fill s->tls_info. */
void smtp_tls_established(struct smtp_session *s);

/* smtp_auth.c */
struct smtp_authsrv;
struct smtp_auth;
struct smtp_command;
void smtp_auth_free(struct smtp_auth *a);
/* The AUTH command; replies itself; may pause s (PAUSED) until verified. */
void smtp_auth_command(struct smtp_session *s, const struct smtp_command *cmd);
/* 1 when s is inside an AUTH exchange and line is its continuation. */
int smtp_auth_in_exchange(const struct smtp_session *s);
void smtp_auth_line(struct smtp_session *s, const char *line, size_t len);
void smtp_authsrv_free(struct smtp_authsrv *a);

/* smtp_session.c */
void smtp_session_accept(struct smtp_server *srv, int fd, const struct sockaddr *sa,
			 socklen_t salen, int submission);
void smtp_session_commit_done(struct smtp_session *s, const char *qid, enum spool_err err);
/* The policy verdict s was paused for is ready. */
void smtp_session_policy_resume(struct smtp_session *s);
/* Shutdown: 421 now when idle, else after the current message. */
void smtp_session_drain(struct smtp_session *s);
/* Shutdown grace over: 421 and free at once. */
void smtp_session_kill(struct smtp_session *s);
/* smtp_auth.c -> session: the exchange ended (reply already queued); read on. */
void smtp_session_auth_resume(struct smtp_session *s);
/* For smtp_auth.c: a reply line through the session's one reply(). */
void smtp_session_reply(struct smtp_session *s, const char *code, const char *text);
/*
 * Add an event to the session's conversation (docs/timeline.md); detail
 * (a JSON object, may be NULL) is consumed; rcpt may be NULL.
 */
struct json_t;
void smtp_session_note(struct smtp_session *s, const char *stage, const char *event,
		       const char *rcpt, struct json_t *detail);

#endif
