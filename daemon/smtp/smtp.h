/*
 * smtp: the SMTP server side of moatd — listeners, sessions, limits.
 * Everything here runs on the one event loop; main.c is the only caller.
 */
#ifndef MOAT_SMTP_H
#define MOAT_SMTP_H

#include <stddef.h>
#include <stdint.h>

#include "../spool/spool.h" /* enum spool_err */

struct conf;
struct event_base;
struct spool;
struct spool_writer;
struct smtp_server;

/* Bind every smtp_listen address (before privileges are dropped). */
struct smtp_server *smtp_server_new(struct event_base *base, const struct conf *conf,
				    char *err, size_t errsz);
/* "127.0.0.1:2525,[::1]:2525" — the bound addresses, ports resolved. */
void smtp_server_addresses(const struct smtp_server *srv, char *out, size_t outsz);
struct dns;
/* The resolver for sessions (main.c); must outlive the server. */
void smtp_server_set_dns(struct smtp_server *srv, struct dns *dns);

/* Start accepting; spool and writer must outlive the server. */
void smtp_server_start(struct smtp_server *srv, struct spool *spool,
		       struct spool_writer *writer);

struct policy;
/* Front-door policy for new sessions (main.c); must outlive the server. */
void smtp_server_set_policy(struct smtp_server *srv, struct policy *policy);
/* The policy's done callback: a paused session's verdict is ready (arg: srv). */
void smtp_server_policy_done(uint64_t session_id, void *arg);

/*
 * AUTH (smtp_auth.c): verify passwords against the directory at db_path on
 * a worker thread with verify() (the API's Argon2id check, main.c passes
 * it).  Without this call AUTH is not offered.  0, or -1 with err.
 */
int smtp_server_set_auth(struct smtp_server *srv, const char *db_path,
			 int (*verify)(const char *hash, const char *password),
			 char *err, size_t errsz);

/* The spool writer's commit outcome, routed to its session by id. */
void smtp_server_commit_done(uint64_t session_id, const char *qid, enum spool_err err,
			     void *arg);

/*
 * Stop accepting; idle sessions get 421 and close; a session inside DATA
 * or waiting for its commit finishes that message first.
 */
void smtp_server_shutdown(struct smtp_server *srv);
/* After the shutdown grace time: 421 to every session still open. */
void smtp_server_close_all(struct smtp_server *srv);
int smtp_server_session_count(const struct smtp_server *srv);
/*
 * SIGHUP: the STARTTLS certificate and key from conf's tls_cert/tls_key (or
 * the self-signed pair) for new handshakes.  0, or -1 with err and the old
 * pair still served.
 */
int smtp_server_reload_tls(struct smtp_server *srv, const struct conf *conf, char *err,
			   size_t errsz);
void smtp_server_free(struct smtp_server *srv);

#endif
