/*
 * smtp_client: one outbound SMTP connection on the mail event loop
 * (delivery to downstream servers, the smart host or an MX).
 *
 * The owner (the queue runner) gives it an ordered list of addresses and
 * pulls messages into it: when the session is ready (banner, EHLO,
 * STARTTLS when offered and wanted) it calls ops->next() until that
 * returns NULL, then waits idle for smtp_client_wake() or its idle time.
 * Each message comes back through ops->done() with a reply for every
 * recipient; a message cut off by a lost connection gets 4xx for every
 * recipient without a final reply.  ops->closed() is the last callback;
 * the client frees itself right after it returns.  The owner may free a
 * client at any other time with smtp_client_free() (no callbacks then).
 */
#ifndef MOAT_SMTP_CLIENT_H
#define MOAT_SMTP_CLIENT_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <openssl/ssl.h>

#include "smtp_edit.h"

struct event_base;
struct smtp_client;

#define SMTP_CLIENT_TEXT_MAX 512

enum smtp_client_tls { SMTP_TLS_OFF, SMTP_TLS_OPPORTUNISTIC, SMTP_TLS_VERIFY };

struct smtp_client_target {
	struct sockaddr_storage addr;
	socklen_t addrlen;
	char host[256]; /* name for TLS verification and logs */
};

struct smtp_client_msg {
	const char *qid;           /* for logs */
	const char *sender;
	const char *const *rcpts;
	size_t nrcpts;
	int64_t size;
	int fd;                    /* the spool file, read from offset 0; owner closes */
	int smtputf8;
	int body_8bit;
	/* Per recipient the RCPT TO address when it is not rcpts[i] (plus
	 * method), NULL array or entry: rcpts[i]. */
	const char *const *rcpt_to;
	/* The header edit of these recipients (smtp_edit.h), NULL: none.
	 * The size announced with SIZE= is the spool file's; an edit adds a
	 * few header lines at most. */
	const struct smtp_edit_spec *edit;
	/* Filled by the client before done(): one reply per recipient. */
	int *codes;
	char (*texts)[SMTP_CLIENT_TEXT_MAX];
};

struct smtp_client_ops {
	struct smtp_client_msg *(*next)(void *ctx, struct smtp_client *c);
	void (*done)(void *ctx, struct smtp_client *c, struct smtp_client_msg *m);
	/* established: a session reached the ready state at least once. */
	void (*closed)(void *ctx, struct smtp_client *c, int established, const char *err);
};

struct smtp_client_params {
	const char *helo;
	enum smtp_client_tls tls;
	SSL_CTX *ssl_ctx;          /* needed unless tls is off */
	int64_t idle_ms;           /* idle time before QUIT */
	int64_t connect_ms;
	int64_t command_ms;        /* the RFC 5321 4.5.3.2 time-outs */
	int64_t data_ms;
	int64_t block_ms;
	int64_t dot_ms;
	const char *log_id;        /* destination, for logs */
};

struct smtp_client *smtp_client_new(struct event_base *base, const struct smtp_client_ops *ops,
				    void *ctx, const struct smtp_client_target *targets,
				    size_t ntargets, const struct smtp_client_params *p);
/* An idle client asks next() again. */
void smtp_client_wake(struct smtp_client *c);
int smtp_client_idle(const struct smtp_client *c);
uint64_t smtp_client_id(const struct smtp_client *c);
/* The server talked to now (or last): "host [address]:port", for the timeline. */
void smtp_client_peer(const struct smtp_client *c, char *out, size_t outsz);
/* Close at once, no callbacks (owner's shutdown).  Accepts NULL. */
void smtp_client_free(struct smtp_client *c);

#endif
