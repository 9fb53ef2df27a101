/*
 * smtp_client: one outbound SMTP connection.  See smtp_client.h.
 *
 * Session: connect (next address on failure, until one gets as far as a
 * 2xx banner and EHLO/HELO), EHLO (HELO when EHLO is refused), STARTTLS
 * when offered and tls is not off (required when tls is verify: no TLS,
 * no mail), EHLO again, then messages: MAIL [SIZE=] [BODY=8BITMIME]
 * [SMTPUTF8], RCPT..., DATA — all written at once when PIPELINING is
 * offered, else one by one — the spool file dot-stuffed, and the final
 * reply applied to every recipient that RCPT accepted.  RSET follows a
 * transaction that did not complete.  QUIT after idle_ms without work.
 *
 * Time-outs are RFC 5321 4.5.3.2: banner 5m, MAIL 5m, RCPT 5m, DATA 2m,
 * each data block 3m, final dot 10m.  Replies are read with a bounded
 * line (SMTP_CLIENT_LINE_MAX); a longer line is a protocol error.
 *
 * Replies are matched to commands by count, never by state alone: every
 * command (and the banner, and the final dot) is queued with the output
 * offset where it ends, and a reply is taken only when a command is
 * outstanding and its last byte has left the output buffer.  A reply
 * before its command was sent, a reply with nothing outstanding (the
 * 421 of a server closing an idle session excepted), a malformed line
 * (no CRLF, bare CR or LF, NUL, not "ddd[ -]", too long, code changing
 * inside a multi-line reply) is a protocol violation: the connection is
 * dropped and the message in progress deferred (451 4.5.0), never taken
 * as delivered.  With PIPELINING MAIL, every RCPT and DATA are
 * outstanding at once; the body and its dot are one more.
 *
 * The body is read from the spool file in chunks while the output buffer
 * is below a watermark: never the whole message in memory.  Local file
 * reads are the only I/O here that is not a socket; they hit the page
 * cache of a file just written.
 */
#include "smtp_client.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <arpa/inet.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../log/log.h"
#include "../util/util.h"

#define SMTP_CLIENT_LINE_MAX 2048
#define BODY_CHUNK 16384
#define OUT_HIGH (256 * 1024)
#define OUT_LOW (64 * 1024)
/*
 * One write(2) may carry this much: the body of an ordinary message and
 * its final dot leave in one segment train instead of 16 KB writes with
 * a small last one (libevent's default cap).
 */
#define OUT_SINGLE_WRITE OUT_HIGH

#define T_QUIT 10000

enum cstate {
	C_CONNECT, C_BANNER, C_EHLO, C_HELO, C_STARTTLS, C_TLS, C_EHLO2,
	C_READY, C_TX, C_BODY, C_DOT, C_DISCARD, C_RSET, C_QUIT,
};

enum expect { X_MAIL, X_RCPT, X_DATA };

struct smtp_client {
	uint64_t id;
	struct event_base *base;
	const struct smtp_client_ops *ops;
	void *ctx;
	struct smtp_client_params p;
	char helo[256];
	char log_id[300];
	struct smtp_client_target *targets;
	size_t ntargets;
	size_t cur;
	struct bufferevent *bev;
	SSL *ssl;
	enum cstate state;
	int established;       /* ever reached C_READY */
	int tls_on;
	int tls_skip;          /* opportunistic TLS failed with this target: plaintext */

	/* capabilities of the current session */
	int cap_pipelining;
	int cap_starttls;
	int cap_8bitmime;
	int cap_smtputf8;
	int64_t cap_size;

	/* the reply being read */
	int rcode;
	char rtext[SMTP_CLIENT_TEXT_MAX];
	int rlines;

	/* the message in progress */
	struct smtp_client_msg *msg;
	size_t nexp;
	size_t exp_pos;
	size_t sent;
	int mail_failed;
	size_t accepted;
	unsigned char *acc;    /* per recipient: RCPT accepted */
	size_t acc_cap;
	int at_sol;
	int last_lf;
	struct smtp_edit edit; /* msg->edit applied while streaming */

	/*
	 * Outstanding commands, oldest first: the output offset (bytes ever
	 * added to this bufferevent's output) at which each one ends.  A
	 * reply is due only for pend[pend_head], once that many bytes have
	 * been written.
	 */
	uint64_t out_added;
	uint64_t *pend;
	size_t pend_head;
	size_t pend_tail;
	size_t pend_cap;
};

static uint64_t next_client_id = 1;

static void read_cb(struct bufferevent *bev, void *arg);
static void write_cb(struct bufferevent *bev, void *arg);
static void event_cb(struct bufferevent *bev, short what, void *arg);
static void ready_next(struct smtp_client *c);

static void set_timeout(struct smtp_client *c, int64_t ms)
{
	struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000) };
	struct timeval wtv = { (time_t)(c->p.block_ms / 1000),
			       (suseconds_t)((c->p.block_ms % 1000) * 1000) };

	bufferevent_set_timeouts(c->bev, &tv, &wtv);
}

static void sendf(struct smtp_client *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* A reply is now owed for everything added to the output so far. */
static void expect_reply(struct smtp_client *c)
{
	if (c->pend_tail == c->pend_cap) {
		if (c->pend_head > 0) {
			memmove(c->pend, c->pend + c->pend_head,
				(c->pend_tail - c->pend_head) * sizeof(*c->pend));
			c->pend_tail -= c->pend_head;
			c->pend_head = 0;
		} else {
			c->pend_cap = c->pend_cap ? c->pend_cap * 2 : 16;
			c->pend = xrealloc(c->pend, c->pend_cap * sizeof(*c->pend));
		}
	}
	c->pend[c->pend_tail++] = c->out_added;
}

static size_t outstanding(const struct smtp_client *c)
{
	return c->pend_tail - c->pend_head;
}

/* A new bufferevent (connect, TLS): offsets start again, nothing is owed. */
static void reset_pending(struct smtp_client *c)
{
	c->out_added = 0;
	c->pend_head = 0;
	c->pend_tail = 0;
}

/* Bytes of the output that have left our buffer (written, or handed to TLS). */
static uint64_t out_written(const struct smtp_client *c)
{
	return c->out_added - evbuffer_get_length(bufferevent_get_output(c->bev));
}

/* A reply may start now: one is owed and its command has been sent in full. */
static int reply_due(const struct smtp_client *c)
{
	return outstanding(c) > 0 && c->pend[c->pend_head] <= out_written(c);
}

static void out_add(struct smtp_client *c, const void *data, size_t len)
{
	evbuffer_add(bufferevent_get_output(c->bev), data, len);
	c->out_added += len;
}

/* One command; its reply is owed from now on. */
static void sendf(struct smtp_client *c, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = evbuffer_add_vprintf(bufferevent_get_output(c->bev), fmt, ap);
	va_end(ap);
	if (n > 0)
		c->out_added += (uint64_t)n;
	expect_reply(c);
}

static void drop_bev(struct smtp_client *c)
{
	if (c->bev != NULL) {
		bufferevent_free(c->bev); /* frees the SSL too (BEV_OPT_CLOSE_ON_FREE) */
		c->bev = NULL;
		c->ssl = NULL;
	}
}

static void destroy(struct smtp_client *c)
{
	drop_bev(c);
	free(c->targets);
	free(c->acc);
	free(c->pend);
	free(c);
}

void smtp_client_free(struct smtp_client *c)
{
	if (c == NULL)
		return;
	destroy(c);
}

/* Every recipient without a final reply gets code/text; the message is done. */
static void finish_msg(struct smtp_client *c, int code, const char *text)
{
	struct smtp_client_msg *m = c->msg;
	size_t i;

	if (m == NULL)
		return;
	for (i = 0; i < m->nrcpts; i++) {
		if (m->codes[i] == 0) {
			m->codes[i] = code;
			strlcpy_s(m->texts[i], text, SMTP_CLIENT_TEXT_MAX);
		}
	}
	c->msg = NULL;
	c->ops->done(c->ctx, c, m);
}

static void close_report(struct smtp_client *c, const char *err)
{
	drop_bev(c);
	c->ops->closed(c->ctx, c, c->established, err);
	destroy(c);
}

static int connect_target(struct smtp_client *c);

/*
 * The connection failed.  A message in progress gets 4xx.  Before a
 * session was ever ready on this address, try the next address.
 */
static void fail_status(struct smtp_client *c, const char *status, const char *why)
{
	char text[SMTP_CLIENT_TEXT_MAX];
	const struct smtp_client_target *t = &c->targets[c->cur];
	int before_ready = c->state < C_READY;

	snprintf(text, sizeof(text), "451 %s %s: %s", status, t->host, why);
	log_info(c->log_id, "delivery", "connection failed host=%s reason=\"%s\"", t->host, why);
	if (c->msg != NULL)
		finish_msg(c, 451, text);
	drop_bev(c);
	/*
	 * Opportunistic TLS that cannot be set up (handshake failure or
	 * time-out) is retried once in plaintext on a new connection, as
	 * Postfix does at security level "may": the mail would go in
	 * plaintext to a server that offers no STARTTLS anyway.
	 */
	if ((c->state == C_TLS || c->state == C_STARTTLS) && !c->established &&
	    c->p.tls == SMTP_TLS_OPPORTUNISTIC && !c->tls_skip) {
		c->tls_skip = 1;
		log_warn(c->log_id, "delivery", "TLS FALLBACK host=%s: retrying without TLS",
			 t->host);
		if (connect_target(c) == 0)
			return;
	}
	if (before_ready && !c->established && c->cur + 1 < c->ntargets) {
		c->cur++;
		c->tls_skip = 0;
		if (connect_target(c) == 0)
			return;
	}
	close_report(c, text);
}

static void fail(struct smtp_client *c, const char *why)
{
	fail_status(c, "4.4.2", why);
}

static const char *const state_names[] = {
	"connect", "banner", "ehlo", "helo", "starttls", "tls", "ehlo2",
	"ready", "transaction", "body", "dot", "discard", "rset", "quit",
};

/*
 * The server broke the protocol (a reply nobody asked for, or a line that
 * is not a reply).  Whatever it meant, nothing it says can be trusted:
 * the message in progress is deferred, the connection dropped.
 */
static void violation(struct smtp_client *c, const char *why)
{
	char text[SMTP_CLIENT_TEXT_MAX];

	log_warn(c->msg ? c->msg->qid : c->log_id, "delivery",
		 "PROTOCOL VIOLATION host=%s state=%s outstanding=%zu reason=\"%s\"",
		 c->targets[c->cur].host, state_names[c->state], outstanding(c), why);
	snprintf(text, sizeof(text), "protocol violation: %s", why);
	fail_status(c, "4.5.0", text);
}

static int connect_target(struct smtp_client *c)
{
	const struct smtp_client_target *t = &c->targets[c->cur];

	c->state = C_CONNECT;
	c->tls_on = 0;
	c->cap_pipelining = c->cap_starttls = c->cap_8bitmime = c->cap_smtputf8 = 0;
	c->cap_size = 0;
	c->rlines = 0;
	reset_pending(c);
	c->bev = bufferevent_socket_new(c->base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (c->bev == NULL)
		return -1;
	bufferevent_set_max_single_write(c->bev, OUT_SINGLE_WRITE);
	bufferevent_setcb(c->bev, read_cb, write_cb, event_cb, c);
	set_timeout(c, c->p.connect_ms);
	{
		struct timeval tv = { (time_t)(c->p.connect_ms / 1000),
				      (suseconds_t)((c->p.connect_ms % 1000) * 1000) };

		bufferevent_set_timeouts(c->bev, &tv, &tv);
	}
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	if (bufferevent_socket_connect(c->bev, (const struct sockaddr *)&t->addr,
				       (int)t->addrlen) < 0) {
		drop_bev(c);
		/* try the next one, as a failure would */
		if (c->cur + 1 < c->ntargets) {
			c->cur++;
			c->tls_skip = 0;
			return connect_target(c);
		}
		return -1;
	}
	return 0;
}

struct smtp_client *smtp_client_new(struct event_base *base, const struct smtp_client_ops *ops,
				    void *ctx, const struct smtp_client_target *targets,
				    size_t ntargets, const struct smtp_client_params *p)
{
	struct smtp_client *c = xcalloc(1, sizeof(*c));

	c->id = next_client_id++;
	c->base = base;
	c->ops = ops;
	c->ctx = ctx;
	c->p = *p;
	strlcpy_s(c->helo, p->helo, sizeof(c->helo));
	strlcpy_s(c->log_id, p->log_id ? p->log_id : "-", sizeof(c->log_id));
	c->p.helo = c->helo;
	c->p.log_id = c->log_id;
	c->targets = xmalloc(ntargets * sizeof(*targets));
	memcpy(c->targets, targets, ntargets * sizeof(*targets));
	c->ntargets = ntargets;
	if (ntargets == 0 || connect_target(c) < 0) {
		destroy(c);
		return NULL;
	}
	return c;
}

uint64_t smtp_client_id(const struct smtp_client *c)
{
	return c->id;
}

void smtp_client_peer(const struct smtp_client *c, char *out, size_t outsz)
{
	const struct smtp_client_target *t = &c->targets[c->cur];
	char a[INET6_ADDRSTRLEN] = "?";
	int port = 0;

	if (t->addr.ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&t->addr;

		inet_ntop(AF_INET6, &s6->sin6_addr, a, sizeof(a));
		port = ntohs(s6->sin6_port);
	} else if (t->addr.ss_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)&t->addr;

		inet_ntop(AF_INET, &s4->sin_addr, a, sizeof(a));
		port = ntohs(s4->sin_port);
	}
	snprintf(out, outsz, "%s [%s]:%d", t->host, a, port);
}

int smtp_client_idle(const struct smtp_client *c)
{
	return c->state == C_READY && c->msg == NULL;
}

void smtp_client_wake(struct smtp_client *c)
{
	if (smtp_client_idle(c))
		ready_next(c);
}

static void send_quit(struct smtp_client *c)
{
	c->state = C_QUIT;
	sendf(c, "QUIT\r\n");
	set_timeout(c, T_QUIT);
}

/* ---- transactions -------------------------------------------------------- */

static void send_expect(struct smtp_client *c, size_t i)
{
	struct smtp_client_msg *m = c->msg;

	if (i == 0) {
		char params[128] = "";
		size_t used = 0;

		if (c->cap_size > 0 || c->cap_size == -1)
			used += (size_t)snprintf(params + used, sizeof(params) - used, " SIZE=%lld",
						(long long)m->size);
		if (m->body_8bit && c->cap_8bitmime)
			used += (size_t)snprintf(params + used, sizeof(params) - used,
						" BODY=8BITMIME");
		if (m->smtputf8 && c->cap_smtputf8)
			snprintf(params + used, sizeof(params) - used, " SMTPUTF8");
		sendf(c, "MAIL FROM:<%s>%s\r\n", m->sender, params);
	} else if (i <= m->nrcpts) {
		sendf(c, "RCPT TO:<%s>\r\n",
		      m->rcpt_to != NULL && m->rcpt_to[i - 1] != NULL ? m->rcpt_to[i - 1]
								  : m->rcpts[i - 1]);
	} else {
		sendf(c, "DATA\r\n");
	}
	c->sent = i + 1;
}

static void start_msg(struct smtp_client *c, struct smtp_client_msg *m)
{
	size_t i;

	c->msg = m;
	for (i = 0; i < m->nrcpts; i++) {
		m->codes[i] = 0;
		m->texts[i][0] = '\0';
	}
	if (c->cap_size > 0 && m->size > c->cap_size) {
		char text[SMTP_CLIENT_TEXT_MAX];

		snprintf(text, sizeof(text), "552 5.3.4 message size %lld exceeds %s's limit %lld",
			 (long long)m->size, c->targets[c->cur].host, (long long)c->cap_size);
		finish_msg(c, 552, text);
		ready_next(c);
		return;
	}
	if (m->nrcpts > c->acc_cap) {
		c->acc_cap = m->nrcpts;
		c->acc = xrealloc(c->acc, c->acc_cap);
	}
	memset(c->acc, 0, m->nrcpts);
	c->nexp = m->nrcpts + 2;
	c->exp_pos = 0;
	c->sent = 0;
	c->mail_failed = 0;
	c->accepted = 0;
	c->state = C_TX;
	set_timeout(c, c->p.command_ms);
	if (c->cap_pipelining) {
		for (i = 0; i < c->nexp; i++)
			send_expect(c, i);
	} else {
		send_expect(c, 0);
	}
}

static void ready_next(struct smtp_client *c)
{
	struct smtp_client_msg *m;

	c->state = C_READY;
	c->established = 1;
	m = c->ops->next(c->ctx, c);
	if (m != NULL) {
		start_msg(c, m);
		return;
	}
	set_timeout(c, c->p.idle_ms);
}

/* The transaction ended early: answer the rest, reset, go on. */
static void abort_tx(struct smtp_client *c, int code, const char *text)
{
	finish_msg(c, code, text);
	c->state = C_RSET;
	sendf(c, "RSET\r\n");
	set_timeout(c, c->p.command_ms);
}

/* Message bytes to the output, dot-stuffed (RFC 5321 4.5.2). */
static void stuff_add(void *arg, const char *p, size_t n)
{
	struct smtp_client *c = arg;
	char stuffed[2 * BODY_CHUNK];

	while (n > 0) {
		size_t take = n < BODY_CHUNK ? n : BODY_CHUNK;
		size_t o = 0;
		size_t i;

		for (i = 0; i < take; i++) {
			if (c->at_sol && p[i] == '.')
				stuffed[o++] = '.';
			stuffed[o++] = p[i];
			c->at_sol = p[i] == '\n';
		}
		c->last_lf = p[take - 1] == '\n';
		out_add(c, stuffed, o);
		p += take;
		n -= take;
	}
}

static int fill_body(struct smtp_client *c)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);
	char in[BODY_CHUNK];

	while (evbuffer_get_length(out) < OUT_HIGH) {
		ssize_t n = read(c->msg->fd, in, sizeof(in));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0) {
			if (c->msg->edit != NULL)
				smtp_edit_finish(&c->edit, stuff_add, c);
			/* Same buffer as the last block: one write when it fits. */
			if (!c->last_lf)
				out_add(c, "\r\n", 2);
			out_add(c, ".\r\n", 3);
			expect_reply(c);
			c->state = C_DOT;
			set_timeout(c, c->p.dot_ms);
			return 0;
		}
		if (c->msg->edit != NULL)
			smtp_edit_push(&c->edit, in, (size_t)n, stuff_add, c);
		else
			stuff_add(c, in, (size_t)n);
	}
	return 0;
}

/* 0, or -1 when c was freed. */
static int tx_reply(struct smtp_client *c)
{
	struct smtp_client_msg *m = c->msg;
	size_t i = c->exp_pos++;
	int ok = c->rcode >= 200 && c->rcode < 300;
	int is_data = i > m->nrcpts;

	/*
	 * DATA is answered by 354 or an error; MAIL and RCPT never by 3xx.
	 * Anything else is a reply to something else: a 2xx here could be
	 * the server's answer to a dot we have not sent.
	 */
	if (is_data ? (ok || (c->rcode / 100 == 3 && c->rcode != 354)) : c->rcode / 100 == 3) {
		violation(c, is_data ? "DATA answered with neither 354 nor an error"
			  : "MAIL or RCPT answered with 3xx");
		return -1;
	}

	if (i == 0) {
		if (!ok) {
			size_t k;

			c->mail_failed = 1;
			for (k = 0; k < m->nrcpts; k++) {
				m->codes[k] = c->rcode;
				strlcpy_s(m->texts[k], c->rtext, SMTP_CLIENT_TEXT_MAX);
			}
		}
		set_timeout(c, c->p.command_ms);
	} else if (i <= m->nrcpts) {
		if (!c->mail_failed) {
			if (ok) {
				c->acc[i - 1] = 1;
				c->accepted++;
			} else {
				m->codes[i - 1] = c->rcode;
				strlcpy_s(m->texts[i - 1], c->rtext, SMTP_CLIENT_TEXT_MAX);
			}
		}
		if (i == m->nrcpts)
			set_timeout(c, c->p.data_ms);
	} else {
		/* DATA */
		if (c->rcode == 354) {
			if (c->mail_failed || c->accepted == 0) {
				/* A server that says 354 with no recipient: send nothing. */
				sendf(c, ".\r\n");
				finish_msg(c, 451, "451 4.5.0 DATA accepted without recipients");
				c->state = C_DISCARD;
				set_timeout(c, c->p.dot_ms);
				return 0;
			}
			if (lseek(m->fd, 0, SEEK_SET) < 0) {
				/* The server reads everything as body now: RSET would be text. */
				fail_status(c, "4.3.0", "local error: cannot read the spool file");
				return -1;
			}
			c->state = C_BODY;
			c->at_sol = 1;
			c->last_lf = 1;
			if (m->edit != NULL)
				smtp_edit_init(&c->edit, m->edit);
			set_timeout(c, c->p.block_ms);
			bufferevent_setwatermark(c->bev, EV_WRITE, OUT_LOW, 0);
			if (fill_body(c) < 0) {
				fail(c, "cannot read the spool file");
				return -1;
			}
			return 0;
		}
		abort_tx(c, c->rcode, c->rtext);
		return 0;
	}
	if (c->cap_pipelining)
		return 0;
	/* One by one: decide what to send next. */
	if (c->mail_failed) {
		abort_tx(c, c->rcode, c->rtext);
		return 0;
	}
	if (i == m->nrcpts && c->accepted == 0) {
		abort_tx(c, 554, "554 5.5.1 no valid recipients");
		return 0;
	}
	send_expect(c, c->sent);
	return 0;
}

/* ---- session setup --------------------------------------------------------- */

static void parse_cap(struct smtp_client *c, const char *line)
{
	const char *kw = line + 4;

	if (strlen(line) < 4)
		return;
	if (ascii_prefix(kw, strlen(kw), "PIPELINING"))
		c->cap_pipelining = 1;
	else if (ascii_prefix(kw, strlen(kw), "STARTTLS"))
		c->cap_starttls = 1;
	else if (ascii_prefix(kw, strlen(kw), "8BITMIME"))
		c->cap_8bitmime = 1;
	else if (ascii_prefix(kw, strlen(kw), "SMTPUTF8"))
		c->cap_smtputf8 = 1;
	else if (ascii_prefix(kw, strlen(kw), "SIZE")) {
		long long v = 0;

		if (kw[4] == ' ')
			v = strtoll(kw + 5, NULL, 10);
		c->cap_size = v > 0 ? v : -1;
	}
}

static int start_tls(struct smtp_client *c)
{
	const struct smtp_client_target *t = &c->targets[c->cur];
	struct bufferevent *tls;
	unsigned char a[16];

	if (evbuffer_get_length(bufferevent_get_input(c->bev)) > 0)
		return -1; /* bytes after 220: someone is injecting */
	c->ssl = SSL_new(c->p.ssl_ctx);
	if (c->ssl == NULL)
		return -1;
	if (c->p.tls == SMTP_TLS_VERIFY) {
		SSL_set_verify(c->ssl, SSL_VERIFY_PEER, NULL);
		if (inet_pton(AF_INET, t->host, a) == 1 || inet_pton(AF_INET6, t->host, a) == 1)
			X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), t->host);
		else
			SSL_set1_host(c->ssl, t->host);
	} else {
		SSL_set_verify(c->ssl, SSL_VERIFY_NONE, NULL);
	}
	if (inet_pton(AF_INET, t->host, a) != 1 && inet_pton(AF_INET6, t->host, a) != 1)
		SSL_set_tlsext_host_name(c->ssl, t->host);
	tls = bufferevent_openssl_filter_new(c->base, c->bev, c->ssl,
					     BUFFEREVENT_SSL_CONNECTING,
					     BEV_OPT_CLOSE_ON_FREE);
	if (tls == NULL) {
		SSL_free(c->ssl);
		c->ssl = NULL;
		return -1;
	}
	c->bev = tls;
	reset_pending(c);
	bufferevent_set_max_single_write(c->bev, OUT_SINGLE_WRITE);
	bufferevent_setcb(c->bev, read_cb, write_cb, event_cb, c);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	set_timeout(c, c->p.command_ms);
	c->state = C_TLS;
	return 0;
}

static void send_ehlo(struct smtp_client *c, enum cstate st)
{
	c->state = st;
	c->cap_pipelining = c->cap_starttls = c->cap_8bitmime = c->cap_smtputf8 = 0;
	c->cap_size = 0;
	sendf(c, "EHLO %s\r\n", c->helo);
	set_timeout(c, c->p.command_ms);
}

/* 0, or -1 when c was freed. */
static int after_ehlo(struct smtp_client *c)
{
	if (c->state == C_EHLO && c->cap_starttls && c->p.tls != SMTP_TLS_OFF && !c->tls_skip) {
		c->state = C_STARTTLS;
		sendf(c, "STARTTLS\r\n");
		set_timeout(c, c->p.command_ms);
		return 0;
	}
	if (c->p.tls == SMTP_TLS_VERIFY && !c->tls_on) {
		fail(c, "TLS required (verify) but STARTTLS not offered");
		return -1;
	}
	log_debug(c->log_id, "delivery", "session ready host=%s tls=%s pipelining=%d",
		  c->targets[c->cur].host, c->tls_on ? "yes" : "no", c->cap_pipelining);
	ready_next(c);
	return 0;
}

/* One complete reply in c->rcode / c->rtext.  May free c (via fail). */
static int handle_reply(struct smtp_client *c)
{
	int ok = c->rcode >= 200 && c->rcode < 300;

	switch (c->state) {
	case C_BANNER:
		if (c->rcode != 220) {
			fail(c, c->rtext);
			return -1;
		}
		send_ehlo(c, C_EHLO);
		return 0;
	case C_EHLO:
	case C_EHLO2:
		if (!ok) {
			if (c->state == C_EHLO && c->rcode >= 500 && c->p.tls != SMTP_TLS_VERIFY) {
				c->state = C_HELO;
				sendf(c, "HELO %s\r\n", c->helo);
				return 0;
			}
			fail(c, c->rtext);
			return -1;
		}
		return after_ehlo(c);
	case C_HELO:
		if (!ok) {
			fail(c, c->rtext);
			return -1;
		}
		return after_ehlo(c);
	case C_STARTTLS:
		if (c->rcode != 220) {
			if (c->p.tls == SMTP_TLS_VERIFY) {
				fail(c, c->rtext);
				return -1;
			}
			c->state = C_EHLO2; /* go on in plain text */
			return after_ehlo(c);
		}
		if (start_tls(c) < 0) {
			fail(c, "cannot start TLS");
			return -1;
		}
		return 1; /* the bufferevent changed: stop reading the old one */
	case C_TX:
		return tx_reply(c);
	case C_DOT:
		if (c->rcode / 100 == 3) {
			violation(c, "final dot answered with 3xx");
			return -1;
		}
		finish_msg(c, c->rcode, c->rtext);
		ready_next(c);
		return 0;
	case C_DISCARD:
	case C_RSET:
		ready_next(c);
		return 0;
	case C_READY:
		/* Only a 421 gets here (read_cb): the server closes an idle session. */
		log_info(c->log_id, "delivery", "server closing host=%s reply=\"%s\"",
			 c->targets[c->cur].host, c->rtext);
		send_quit(c);
		return 0;
	case C_QUIT:
		close_report(c, NULL);
		return -1;
	case C_CONNECT:
	case C_TLS:
	case C_BODY:
		/* Not reached: read_cb takes no reply that nothing is owed for. */
		violation(c, "unexpected reply");
		return -1;
	}
	abort();
}

static int reply_code(const char *line)
{
	return (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
}

/*
 * A reply line: "ddd" or "ddd text" or "ddd-text", first digit 2-5, no
 * control bytes that could only come from a broken or hostile server.
 */
static int line_ok(const char *line, size_t len)
{
	size_t i;

	if (len < 3 || line[0] < '2' || line[0] > '5' || line[1] < '0' || line[1] > '9' ||
	    line[2] < '0' || line[2] > '9' || (len > 3 && line[3] != ' ' && line[3] != '-'))
		return 0;
	for (i = 3; i < len; i++)
		if (line[i] == '\0' || line[i] == '\r' || line[i] == '\n')
			return 0;
	return 1;
}

static void read_cb(struct bufferevent *bev, void *arg)
{
	struct smtp_client *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);

	for (;;) {
		struct evbuffer_ptr p;
		size_t eol_len = 0;
		char line[SMTP_CLIENT_LINE_MAX];
		size_t len;
		int rc;

		if (evbuffer_get_length(in) == 0)
			return;
		/*
		 * Bytes at the start of a reply while none is owed: a reply to
		 * a command still in our buffer, or to nothing at all.  An idle
		 * session (C_READY) may get the 421 of a server that closes.
		 */
		if (c->rlines == 0 && !reply_due(c) && c->state != C_READY) {
			violation(c, outstanding(c) > 0 ? "reply before its command was sent"
				  : "reply with no command outstanding");
			return;
		}
		p = evbuffer_search_eol(in, NULL, &eol_len, EVBUFFER_EOL_CRLF_STRICT);
		if (p.pos < 0) {
			if (evbuffer_get_length(in) >= SMTP_CLIENT_LINE_MAX)
				violation(c, "reply line too long");
			return;
		}
		len = (size_t)p.pos;
		if (len >= sizeof(line)) {
			violation(c, "reply line too long");
			return;
		}
		evbuffer_remove(in, line, len);
		evbuffer_drain(in, eol_len);
		line[len] = '\0';
		if (!line_ok(line, len)) {
			violation(c, "malformed reply");
			return;
		}
		if (c->rlines == 0) {
			c->rcode = reply_code(line);
			log_escape(line, len, c->rtext, sizeof(c->rtext));
			if (c->state == C_READY && !reply_due(c) && c->rcode != 421) {
				violation(c, "reply with no command outstanding");
				return;
			}
		} else if (reply_code(line) != c->rcode) {
			violation(c, "reply code changed inside a multi-line reply");
			return;
		}
		c->rlines++;
		if ((c->state == C_EHLO || c->state == C_EHLO2) && c->rlines > 1)
			parse_cap(c, line);
		if (len > 3 && line[3] == '-') {
			if (c->rlines > 1000) {
				violation(c, "reply too long");
				return;
			}
			continue;
		}
		c->rlines = 0;
		if (outstanding(c) > 0)
			c->pend_head++; /* this command is answered */
		if (c->pend_head == c->pend_tail)
			c->pend_head = c->pend_tail = 0;
		/*
		 * A 421 is the server closing the session (RFC 5321 3.8),
		 * whatever it answers: the rest of the transaction would only
		 * meet a closed connection, so defer it with the server's words.
		 */
		if (c->rcode == 421 && c->state >= C_TX && c->state <= C_RSET) {
			log_info(c->msg ? c->msg->qid : c->log_id, "delivery",
				 "server closing host=%s state=%s reply=\"%s\"",
				 c->targets[c->cur].host, state_names[c->state], c->rtext);
			if (c->msg != NULL)
				finish_msg(c, 421, c->rtext);
			close_report(c, NULL);
			return;
		}
		rc = handle_reply(c);
		if (rc != 0)
			return; /* c freed, or a new bufferevent */
		if (c->bev == NULL)
			return;
	}
}

static void write_cb(struct bufferevent *bev, void *arg)
{
	struct smtp_client *c = arg;

	(void)bev;
	if (c->state == C_BODY && fill_body(c) < 0)
		fail(c, "cannot read the spool file");
}

static void event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct smtp_client *c = arg;
	char why[256];

	(void)bev;
	if (what & BEV_EVENT_CONNECTED) {
		if (c->state == C_CONNECT) {
			int one = 1;

			/*
			 * Commands and the tail of a body are small writes the
			 * server waits for; Nagle would hold them for the peer's
			 * delayed ACK (~40 ms a message).
			 */
			if (setsockopt(bufferevent_getfd(c->bev), IPPROTO_TCP, TCP_NODELAY, &one,
				       sizeof(one)) < 0)
				log_debug(c->log_id, "delivery", "TCP_NODELAY: %s", strerror(errno));
			c->state = C_BANNER;
			expect_reply(c); /* the banner: owed before we send anything */
			set_timeout(c, c->p.command_ms);
		} else if (c->state == C_TLS) {
			c->tls_on = 1;
			send_ehlo(c, C_EHLO2);
		}
		return;
	}
	if ((what & BEV_EVENT_TIMEOUT) && c->state == C_READY) {
		send_quit(c);
		bufferevent_enable(c->bev, EV_READ | EV_WRITE);
		return;
	}
	if (c->state == C_QUIT || (c->state == C_READY && (what & BEV_EVENT_EOF))) {
		close_report(c, NULL);
		return;
	}
	if (what & BEV_EVENT_TIMEOUT) {
		fail(c, "time-out");
		return;
	}
	if (what & BEV_EVENT_EOF) {
		if (c->rlines > 0 || evbuffer_get_length(bufferevent_get_input(c->bev)) > 0)
			violation(c, "connection closed inside a reply");
		else
			fail(c, "connection closed by the server");
		return;
	}
	if (c->state == C_TLS) {
		unsigned long e = bufferevent_get_openssl_error(c->bev);

		snprintf(why, sizeof(why), "TLS handshake failed: %s",
			 e ? ERR_reason_error_string(e) : "connection closed");
		fail(c, why);
		return;
	}
	snprintf(why, sizeof(why), "%s", evutil_socket_error_to_string(
		 EVUTIL_SOCKET_ERROR()));
	fail(c, why);
}
