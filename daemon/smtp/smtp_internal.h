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

struct smtp_client;  /* per-address connection count, in smtp_server.c */

enum smtp_state {
	SMTP_ST_GREET_PAUSE, /* connected, banner not sent yet */
	SMTP_ST_INIT,        /* banner sent, no HELO yet */
	SMTP_ST_HELO,        /* greeted, no transaction */
	SMTP_ST_MAIL,        /* MAIL accepted */
	SMTP_ST_RCPT,        /* at least one RCPT accepted */
	SMTP_ST_DATA,        /* receiving the message */
	SMTP_ST_COMMIT,      /* waiting for the spool writer */
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
	struct spool_file *file;
	struct smtp_data data;
	int64_t received_at;
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
	int fd;
	char addr[SMTP_ADDR_MAX];
	char name[256];
	char helo[SMTP_DOMAIN_MAX + 1];

	enum smtp_state state;
	unsigned flags;
	int errors;
	int64_t started_ms;
	struct smtp_tx *tx;
};

struct smtp_server {
	struct event_base *base;
	const struct conf *conf;
	struct spool *spool;
	struct spool_writer *writer;

	struct evconnlistener *listeners[8];
	char listen_addrs[8][80];
	int nlisteners;

	struct smtp_session **table; /* by id */
	size_t table_size;
	struct smtp_session *sessions;
	int nsessions;
	uint64_t next_id;

	struct smtp_client **clients; /* by address */
	size_t clients_size;

	int shutting_down;
	char *line;                   /* max_command_line + 1 scratch */
	char *scratch;                /* DATA unstuffing scratch */
	size_t scratch_size;
};

/* smtp_server.c */
/* Give s an id and enter it in the session table. */
void smtp_server_link(struct smtp_server *srv, struct smtp_session *s);
/* Count s against its client address; returns that address's sessions. */
int smtp_server_client_acquire(struct smtp_server *srv, struct smtp_session *s);
struct smtp_session *smtp_server_lookup(struct smtp_server *srv, uint64_t id);
void smtp_server_unlink(struct smtp_server *srv, struct smtp_session *s);

/* smtp_session.c */
void smtp_session_accept(struct smtp_server *srv, int fd, const struct sockaddr *sa,
			 socklen_t salen);
void smtp_session_commit_done(struct smtp_session *s, const char *qid, int ok);
/* Shutdown: 421 now when idle, else after the current message. */
void smtp_session_drain(struct smtp_session *s);
/* Shutdown grace over: 421 and free at once. */
void smtp_session_kill(struct smtp_session *s);

#endif
