/*
 * smtp_session: one SMTP connection, RFC 5321 server side.
 *
 * Input is processed one command at a time from the bufferevent's input
 * buffer, so pipelined commands are answered in order.  Commands go
 * through one table (OpenSMTPD's {verb, states, check, proceed, flags}):
 * the state mask answers a command out of sequence (503), check_<cmd>
 * parses and refuses with a reply and runs once, proceed_<cmd> asks the
 * policy and acts.  While a verdict is pending (policy, DNS, AUTH, the
 * spool writer's commit) the session is PAUSED: reading stops, nothing
 * more is processed, and the verdict's callback resumes the same
 * proceed_<cmd>, never the check.  smtp/ sees policy verdicts only; the
 * account defence is policy/'s.  State changes only in enter_state();
 * replies only through reply(), which also counts what a 4xx/5xx costs
 * the client: a protocol error (bad syntax, sequence or command; bounded
 * by max_errors) or a policy refusal of a sender or recipient (bounded
 * separately by max_refusals, lower before AUTH), as Postfix keeps its
 * error limits apart from its recipient and rate limits.
 *
 * Lifetime: a session is freed only at the tail of a top-level callback
 * (read, write, event, timer, commit done) by reap(), never in the middle
 * of handling a command: handlers that end the session only mark it
 * CLOSING and return.  Callbacks that can outlive a session (the spool
 * writer) carry its id, and smtp_server_lookup() may find nothing.
 *
 * Never: wait for a CRLF with an unbounded buffer; write a byte of a
 * refused message to the queue; answer 250 before the commit is durable.
 */
#include "smtp_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <jansson.h>
#include <openssl/err.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "../conf/conf.h"
#include "../log/log.h"
#include "../policy/policy.h"
#include "../spool/spool.h"
#include "../util/util.h"

#define SMTP_F_TLSWAIT 0x40  /* 220 to STARTTLS queued; switch when written */
#define SMTP_F_TLSBEV 0x80   /* s->bev is the TLS bufferevent */

#define OUTPUT_HIGH (64 * 1024)  /* stop reading commands past this output */
#define INPUT_HIGH (256 * 1024)  /* stop reading from the socket past this */

static const char *const state_name[] = {
	"GREET_PAUSE", "INIT", "HELO", "MAIL", "RCPT", "DATA", "COMMIT", "CONTENT",
};

/* Facts for one message-log row. */
struct logfacts {
	const char *qid;
	int scored;              /* the content stage gave the message a score */
	double score;
	const char *score_json;
	const char *sender;
	const char *const *rcpts;
	size_t nrcpts;
	int64_t size;
	const char *message_id;  /* NULL: unknown */
};

static void process_input(struct smtp_session *s);
static void reap(struct smtp_session *s);
static void deadline_command(struct smtp_session *s);
static void deadline_resume(struct smtp_session *s);
static void stress_update(struct smtp_server *srv);
static void handle_line(struct smtp_session *s, const char *line, size_t len);
static void command_done(struct smtp_session *s);
static void too_many_errors(struct smtp_session *s);
static void check_limits(struct smtp_session *s);
static void connect_policy(struct smtp_session *s);
static void commit_tx(struct smtp_session *s, const char *const *rcpts, size_t nrcpts,
		      const unsigned char *disp, const char *const *reasons,
		      const char *const *kinds, const char *const *edits,
		      const struct policy_content_result *res);
static void proceed_content(struct smtp_session *s);

static void enter_state(struct smtp_session *s, enum smtp_state st)
{
	if ((unsigned)st >= ARRAY_LEN(state_name))
		abort();
	log_debug(s->idstr, "smtp", "state %s -> %s", state_name[s->state], state_name[st]);
	s->state = st;
}

static struct timeval ms_to_tv(int64_t ms)
{
	struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000) };

	return tv;
}

/* What a 4xx/5xx reply counts toward; 421 ends the session and counts nothing. */
enum reply_count { COUNT_ERROR, COUNT_REFUSAL, COUNT_NONE };

static void reply(struct smtp_session *s, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void reply_as(struct smtp_session *s, enum reply_count count, const char *code,
		     const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/*
 * Replies on a plain-text connection are written by the session itself:
 * once per loop pass (all pipelined replies of the pass in one write), from
 * an event made active here, which costs no system call.  Only a write the
 * kernel does not take whole turns the bufferevent's write event on
 * (write_cb finishes it, under the write time-out); so a reply no longer
 * adds and removes write interest with epoll each time.  A TLS
 * bufferevent writes through OpenSSL and keeps its own write event.
 */
static void output_added(struct smtp_session *s)
{
	if (!(s->flags & SMTP_F_TLSBEV) && s->flush != NULL)
		event_active(s->flush, EV_TIMEOUT, 0);
}

/* code is "NNN X.Y.Z"; the line is "<code> <text>\r\n". */
static void vreply(struct smtp_session *s, enum reply_count count, const char *code,
		   const char *fmt, va_list ap) __attribute__((format(printf, 4, 0)));

static void vreply(struct smtp_session *s, enum reply_count count, const char *code,
		   const char *fmt, va_list ap)
{
	char text[512];

	vsnprintf(text, sizeof(text), fmt, ap);
	evbuffer_add_printf(bufferevent_get_output(s->bev), "%s %s\r\n", code, text);
	output_added(s);
	log_debug(s->idstr, "smtp", "reply %s %s", code, text);
	if ((code[0] != '4' && code[0] != '5') || strncmp(code, "421", 3) == 0)
		return;
	if (count == COUNT_ERROR)
		s->errors++;
	else if (count == COUNT_REFUSAL)
		s->refusals++;
}

/* A reply whose 4xx/5xx is the client's protocol error. */
static void reply(struct smtp_session *s, const char *code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vreply(s, COUNT_ERROR, code, fmt, ap);
	va_end(ap);
}

static void reply_as(struct smtp_session *s, enum reply_count count, const char *code,
		     const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vreply(s, count, code, fmt, ap);
	va_end(ap);
}

static void close_session(struct smtp_session *s)
{
	s->flags |= SMTP_F_CLOSING;
	bufferevent_disable(s->bev, EV_READ);
}

/* --- the conversation (docs/timeline.md) ----------------------------------- */

/* Room kept for the closing "truncated" event. */
#define CONV_TAIL 120

/* An identifier JSON takes as it is (the stages and events are). */
static int plain_name(const char *s)
{
	for (; *s != '\0'; s++)
		if (*s == '"' || *s == '\\' || (unsigned char)*s < 0x20)
			return 0;
	return 1;
}

/*
 * One event of the conversation, appended to its JSON text as jansson
 * would write the object {ts, stage, event, recipient, detail} (compact,
 * keys in that order).  The envelope is written here and only the detail
 * goes through jansson: this runs several times per message on the loop.
 */
void smtp_session_note(struct smtp_session *s, const char *stage, const char *event,
		       const char *rcpt, json_t *detail)
{
	struct smtp_conv *c = &s->conv;
	size_t max = (size_t)s->srv->conf->timeline_max_bytes;
	char head[192], *r = NULL, *d = NULL;
	size_t n, hn, rn = 0, dn = 2;
	int k;

	if (rcpt != NULL) {
		json_t *js = json_string(rcpt); /* NULL for invalid UTF-8: no key */

		if (js != NULL)
			r = json_dumps(js, JSON_ENCODE_ANY | JSON_COMPACT);
		json_decref(js);
		rn = r != NULL ? strlen(r) : 0;
	}
	if (detail != NULL && json_object_size(detail) > 0) {
		d = json_dumps(detail, JSON_COMPACT);
		dn = d != NULL ? strlen(d) : 0;
	}
	json_decref(detail);
	k = stage != NULL && event != NULL && plain_name(stage) && plain_name(event)
		? snprintf(head, sizeof(head), "{\"ts\":%lld,\"stage\":\"%s\",\"event\":\"%s\"",
			   (long long)time_now_ms(), stage, event)
		: -1;
	hn = k > 0 && (size_t)k < sizeof(head) ? (size_t)k : 0;
	n = hn + (rn > 0 ? 13 + rn : 0) + 10 + dn + 1;
	if (hn == 0 || dn == 0 || c->len + n + 1 + CONV_TAIL + 2 > max) {
		c->dropped++;
		free(r);
		free(d);
		return;
	}
	if (c->len + n + 1 > c->cap) {
		size_t cap = c->cap ? c->cap : 1024;

		while (cap < c->len + n + 1)
			cap *= 2;
		c->buf = xrealloc(c->buf, cap);
		c->cap = cap;
	}
	if (c->len > 0)
		c->buf[c->len++] = ',';
	memcpy(c->buf + c->len, head, hn);
	c->len += hn;
	if (rn > 0) {
		memcpy(c->buf + c->len, ",\"recipient\":", 13);
		memcpy(c->buf + c->len + 13, r, rn);
		c->len += 13 + rn;
	}
	memcpy(c->buf + c->len, ",\"detail\":", 10);
	memcpy(c->buf + c->len + 10, d != NULL ? d : "{}", dn);
	c->len += 10 + dn;
	c->buf[c->len++] = '}';
	free(r);
	free(d);
}

/* A JSON object of the non-NULL (key, value) pairs; the list ends with NULL. */
static json_t *conv_detail(const char *key, ...)
{
	json_t *o = json_object();
	va_list ap;

	va_start(ap, key);
	while (key != NULL) {
		const char *v = va_arg(ap, const char *);

		if (v != NULL && v[0] != '\0')
			json_object_set_new(o, key, json_string(v));
		key = va_arg(ap, const char *);
	}
	va_end(ap);
	return o;
}

/* The conversation as the JSON array text for a log row (malloc'd). */
static char *conv_json(const struct smtp_session *s)
{
	const struct smtp_conv *c = &s->conv;
	size_t sz = c->len + CONV_TAIL + 4;
	char *out = xmalloc(sz);
	size_t o = 0;

	out[o++] = '[';
	if (c->len > 0) {
		memcpy(out + o, c->buf, c->len);
		o += c->len;
	}
	if (c->dropped > 0)
		o += (size_t)snprintf(out + o, sz - o, "%s{\"ts\":%lld,\"stage\":\"session\","
				      "\"event\":\"truncated\",\"detail\":{\"dropped\":%d}}",
				      c->len > 0 ? "," : "", (long long)time_now_ms(), c->dropped);
	out[o++] = ']';
	out[o] = '\0';
	return out;
}

/* The transaction's events start here (MAIL). */
static void conv_tx_begin(struct smtp_session *s)
{
	if (s->conv.marked)
		return;
	s->conv.marked = 1;
	s->conv.mark = s->conv.len;
	s->conv.mark_dropped = s->conv.dropped;
}

/* The transaction is over and logged: its events go. */
static void conv_tx_end(struct smtp_session *s)
{
	if (!s->conv.marked)
		return;
	s->conv.marked = 0;
	s->conv.len = s->conv.mark;
	s->conv.dropped = s->conv.mark_dropped;
}

/* The connect event, once: who, on which listener, under which name. */
static void conv_connect(struct smtp_session *s)
{
	if (s->conv.connected)
		return;
	s->conv.connected = 1;
	smtp_session_note(s, "connect", "connect", NULL,
			  conv_detail("client_addr", s->addr, "client_name", s->name,
				      "listener", s->submission ? "submission" : "smtp", NULL));
}

/* A refusal or deferral in the conversation, under the current stage. */
static void conv_refusal(struct smtp_session *s, const struct logfacts *f, const char *code,
			 const char *text, const char *check, const char *entry)
{
	const char *stage = s->conv_stage != NULL ? s->conv_stage : "session";
	const char *rcpt = strcmp(stage, "rcpt") == 0 && f->nrcpts == 1 ? f->rcpts[0] : NULL;

	smtp_session_note(s, stage, code[0] == '4' ? "deferred" : "refused", rcpt,
			  conv_detail("code", code, "reason", text, "check", check, "entry", entry,
				      NULL));
}

/* entry: the list entry or site that fired, or NULL. */
static void msglog_entry(struct smtp_session *s, const struct logfacts *f, const char *result,
			 const char *code, const char *reason, const char *check,
			 const char *entry)
{
	struct store_log_entry e;
	json_t *arr = json_array();
	char *rcpts_json;
	char *timeline;
	char sender[SMTP_PATH_MAX * 4 + 8];
	char why[400];
	size_t i;

	for (i = 0; i < f->nrcpts; i++)
		json_array_append_new(arr, json_string(f->rcpts[i]));
	rcpts_json = json_dumps(arr, JSON_COMPACT);
	json_decref(arr);

	memset(&e, 0, sizeof(e));
	e.ts = time_now_ms();
	e.session_id = s->idstr;
	e.qid = f->qid;
	e.client_addr = s->addr;
	e.client_name = s->name;
	e.helo = s->helo[0] ? s->helo : NULL;
	e.sender = f->sender;
	e.recipients_json = rcpts_json ? rcpts_json : "[]";
	e.size = f->size;
	e.result = result;
	e.code = code;
	e.reason = reason;
	e.check_name = check;
	e.entry = entry != NULL && entry[0] != '\0' ? entry : NULL;
	e.auth_user = s->auth_user[0] != '\0' ? s->auth_user : NULL;
	e.tls = s->tls ? s->tls_info : NULL;
	e.message_id = f->message_id;
	e.scored = f->scored;
	e.score = f->score;
	e.score_json = f->score_json;
	timeline = conv_json(s);
	e.timeline_json = timeline;
	if (s->srv->writer != NULL)
		spool_writer_log(s->srv->writer, &e);
	free(timeline);

	log_escape(f->sender ? f->sender : "", f->sender ? strlen(f->sender) : 0,
		   sender, sizeof(sender));
	log_escape(reason ? reason : "", reason ? strlen(reason) : 0, why, sizeof(why));
	log_info(s->idstr, "smtp", "%s%s%s client=%s[%s] from=<%s> rcpts=%zu size=%lld"
		 " code=\"%s\" reason=\"%s\"%s%s%s%s%s%s%s", result, f->qid ? " qid=" : "",
		 f->qid ? f->qid : "", s->name, s->addr, sender, f->nrcpts,
		 (long long)f->size, code, why, check ? " check=" : "", check ? check : "",
		 e.entry ? " entry=\"" : "", e.entry ? e.entry : "", e.entry ? "\"" : "",
		 e.auth_user ? " auth=" : "", e.auth_user ? e.auth_user : "");
	free(rcpts_json);
}

static void msglog(struct smtp_session *s, const struct logfacts *f, const char *result,
		   const char *code, const char *reason, const char *check)
{
	msglog_entry(s, f, result, code, reason, check, NULL);
}

/* Reply with a refusal, counted as count, and write its message-log row. */
static void refuse_as(struct smtp_session *s, enum reply_count count, const struct logfacts *f,
		      const char *code, const char *check, const char *text)
{
	reply_as(s, count, code, "%s", text);
	conv_refusal(s, f, code, text, check, NULL);
	msglog(s, f, code[0] == '4' ? "deferred" : "refused", code, text, check);
}

/* A refusal for what the client sent (a protocol error). */
static void refuse(struct smtp_session *s, const struct logfacts *f, const char *code,
		   const char *check, const char *text)
{
	refuse_as(s, COUNT_ERROR, f, code, check, text);
}

/*
 * Why a message is not taken: one enum for the whole receive path, mapped
 * to its reply here and nowhere else.  What the client sent is refused
 * (5xx); a fault of ours (the spool) is always transient (4xx): a full
 * file system is 452 4.3.1 (RFC 3463 "mail system full"), other I/O
 * errors 451 4.3.0, never a bounce.
 */
enum tx_error {
	TX_OK,
	TX_ERR_SIZE,
	TX_ERR_LINE,
	TX_ERR_NUL,
	TX_ERR_HDR_SIZE,
	TX_ERR_HDR_COUNT,
	TX_ERR_NOSPACE,
	TX_ERR_IO,
};

static const struct {
	const char *code;
	const char *check;
	const char *text;
	const char *tag;   /* upper-case log tag, or NULL */
} tx_errors[] = {
	[TX_OK] = { "250 2.0.0", NULL, "Ok", NULL },
	[TX_ERR_SIZE] = { "552 5.3.4", "max_message_size",
			  "Message size exceeds fixed maximum message size", NULL },
	[TX_ERR_LINE] = { "554 5.6.0", "max_text_line",
			  "Message refused: text line longer than allowed",
			  "TEXT LINE LENGTH LIMIT" },
	[TX_ERR_NUL] = { "554 5.6.0", "nul_octet", "Message refused: NUL octet in message",
			 NULL },
	[TX_ERR_HDR_SIZE] = { "552 5.3.4", "max_header_size",
			      "Message refused: a header field is larger than allowed",
			      "HEADER SIZE LIMIT" },
	[TX_ERR_HDR_COUNT] = { "554 5.6.0", "max_header_count",
			       "Message refused: too many header fields", "HEADER COUNT LIMIT" },
	[TX_ERR_NOSPACE] = { "452 4.3.1", "spool_full",
			     "Insufficient system storage, try again later", "SPOOL FULL" },
	[TX_ERR_IO] = { "451 4.3.0", "spool", "Error: queue file write error, try again later",
			NULL },
};

static enum tx_error tx_error_of_spool(enum spool_err e)
{
	switch (e) {
	case SPOOL_OK:
		return TX_OK;
	case SPOOL_ERR_NOSPACE:
		return TX_ERR_NOSPACE;
	case SPOOL_ERR_IO:
		return TX_ERR_IO;
	}
	return TX_ERR_IO;
}

/* Reply with the refusal for e and write its message-log row. */
static void refuse_tx(struct smtp_session *s, const struct logfacts *f, enum tx_error e)
{
	if ((unsigned)e >= ARRAY_LEN(tx_errors) || e == TX_OK)
		abort(); /* only a failure has a refusal */
	if (tx_errors[e].tag != NULL)
		log_warn(s->idstr, "smtp", "%s from [%s]", tx_errors[e].tag, s->addr);
	refuse(s, f, tx_errors[e].code, tx_errors[e].check, tx_errors[e].text);
}

/*
 * Reply with a policy verdict, a refusal (max_refusals) and not a protocol
 * error; the log row names the check and the entry.
 */
static void verdict_as(struct smtp_session *s, enum reply_count count,
		       const struct logfacts *f, const struct policy_verdict *v)
{
	reply_as(s, count, v->code, "%s", v->text);
	conv_refusal(s, f, v->code, v->text, v->check, v->entry);
	msglog_entry(s, f, v->code[0] == '4' ? "deferred" : "refused", v->code, v->text,
		     v->check, v->entry);
	if (v->close)
		close_session(s);
}

static void refuse_verdict(struct smtp_session *s, const struct logfacts *f,
			   const struct policy_verdict *v)
{
	verdict_as(s, COUNT_REFUSAL, f, v);
}

/*
 * Act on a policy step's result: 1 when the command must stop here
 * (refused, or paused until smtp_session_policy_resume() runs resume).
 */
static int policy_gate(struct smtp_session *s, enum policy_action r,
		       const struct policy_verdict *v, const struct logfacts *f,
		       void (*resume)(struct smtp_session *))
{
	if (r == POLICY_PENDING) {
		s->flags |= SMTP_F_PAUSED;
		s->resume = resume;
		bufferevent_disable(s->bev, EV_READ);
		return 1;
	}
	if (r == POLICY_REFUSE || r == POLICY_DEFER) {
		refuse_verdict(s, f, v);
		return 1;
	}
	return 0;
}

static void tx_free(struct smtp_tx *tx)
{
	size_t i;

	if (tx == NULL)
		return;
	spool_file_discard(tx->file);
	for (i = 0; i < tx->nrcpts; i++)
		free(tx->rcpts[i]);
	free(tx->rcpts);
	free(tx->sender);
	free(tx->score_json);
	free(tx);
}

static void tx_reset(struct smtp_session *s)
{
	tx_free(s->tx);
	s->tx = NULL;
	conv_tx_end(s);
}

static void tx_facts(const struct smtp_session *s, struct logfacts *f)
{
	memset(f, 0, sizeof(*f));
	f->size = -1;
	if (s->tx != NULL) {
		f->sender = s->tx->sender;
		f->rcpts = (const char *const *)s->tx->rcpts;
		f->nrcpts = s->tx->nrcpts;
		if (s->tx->message_id[0] != '\0')
			f->message_id = s->tx->message_id;
		f->scored = s->tx->scored;
		f->score = s->tx->score;
		f->score_json = s->tx->score_json;
	}
}

static void session_free(struct smtp_session *s)
{
	const struct policy_verdict *d = s->pol != NULL ? policy_delayed(s->pol) : NULL;

	if (s->tx != NULL && s->state == SMTP_ST_DATA) {
		struct logfacts f;

		tx_facts(s, &f);
		f.size = s->tx->data.size;
		msglog(s, &f, "aborted", "-", "client disconnected during DATA", NULL);
	}
	if (d != NULL && s->delayed_given == 0 && s->delayed_lifted == 0) {
		/* A delayed refusal never given (no RCPT): logged as it was decided. */
		struct logfacts f;

		memset(&f, 0, sizeof(f));
		f.size = -1;
		conv_tx_end(s);
		msglog_entry(s, &f, d->code[0] == '4' ? "deferred" : "refused", d->code, d->text,
			     d->check, d->entry);
	}
	tx_reset(s);
	free(s->conv.buf);
	policy_sess_free(s->pol);
	smtp_auth_free(s->auth);
	log_info(s->idstr, "smtp", "disconnect client=%s[%s] rcpt=%d/%d", s->name, s->addr,
		 s->rcpts_ok, s->rcpts_seen);
	smtp_server_unlink(s->srv, s);
	stress_update(s->srv);
	if (s->timer != NULL)
		event_free(s->timer);
	if (s->deadline != NULL)
		event_free(s->deadline);
	if (s->flush != NULL)
		event_free(s->flush);
	bufferevent_free(s->bev);
	free(s);
}

/* The one place a session is freed: the tail of a top-level callback. */
static void reap(struct smtp_session *s)
{
	if ((s->flags & SMTP_F_CLOSING) &&
	    evbuffer_get_length(bufferevent_get_output(s->bev)) == 0)
		session_free(s);
}

/* Refuse a connection that broke a rule before its banner. */
static void refuse_connection(struct smtp_session *s, const char *code,
			      const char *check, const char *text)
{
	struct logfacts f;

	conv_connect(s);
	s->conv_stage = "connect";
	tx_facts(s, &f);
	refuse(s, &f, code, check, text);
	close_session(s);
}

static void send_banner(struct smtp_session *s)
{
	reply(s, "220", "%s ESMTP Moat", s->srv->conf->hostname);
	enter_state(s, SMTP_ST_INIT);
	deadline_command(s);
}

static int early_talker(struct smtp_session *s)
{
	char c;
	ssize_t n = recv(s->fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);

	return n > 0 || evbuffer_get_length(bufferevent_get_input(s->bev)) > 0;
}

static void pregreet(struct smtp_session *s)
{
	log_warn(s->idstr, "smtp", "PREGREET from [%s]", s->addr);
	refuse_connection(s, "554 5.5.1", "pregreet",
			  "Protocol error: client spoke before the greeting");
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct smtp_session *s = arg;
	const struct conf *conf = s->srv->conf;
	struct timeval tv;

	(void)fd;
	(void)what;
	if (s->flags & SMTP_F_CLOSING)
		return;
	if (s->state == SMTP_ST_GREET_PAUSE) {
		if (early_talker(s)) {
			pregreet(s);
		} else {
			send_banner(s);
			tv = ms_to_tv(conf->session_timeout_ms - conf->greet_pause_ms);
			evtimer_add(s->timer, &tv);
		}
		reap(s);
		return;
	}
	log_warn(s->idstr, "smtp", "SESSION TIME LIMIT from [%s]", s->addr);
	reply(s, "421 4.4.2", "%s Error: session time limit exceeded, closing",
	      conf->hostname);
	close_session(s);
	reap(s);
}

static void set_read_timeout(struct smtp_session *s, int64_t ms)
{
	struct timeval rd = ms_to_tv(ms);
	struct timeval wr = ms_to_tv(s->srv->conf->idle_timeout_ms);

	bufferevent_set_timeouts(s->bev, &rd, &wr);
}

/* --- deadlines ------------------------------------------------------------
 *
 * The bufferevent read time-out is renewed by every byte, so a client that
 * trickles one byte every few seconds would never meet it.  Deadlines are
 * not: a command line must be complete within idle_timeout of the moment
 * it is awaited (Postfix smtpd_per_record_deadline), and inside DATA the
 * deadline is data_timeout from the 354, moved later only by progress:
 * every octet received buys 1/data_min_rate seconds, never more than a
 * whole data_timeout from now.  While the session waits for us (policy,
 * DNS, AUTH, the spool writer, a client that does not read its replies)
 * the deadline is ignored and started again when reading resumes.
 *
 * Stress: with more than stress_sessions percent of max_sessions in use,
 * new deadlines use the stress time-outs (Postfix ${stress?10}{300}), so
 * that slow or idle clients cannot hold the last sessions.
 */

static int64_t cmd_timeout(const struct smtp_session *s)
{
	const struct conf *conf = s->srv->conf;

	if (s->srv->stressed && conf->stress_idle_timeout_ms < conf->idle_timeout_ms)
		return conf->stress_idle_timeout_ms;
	return conf->idle_timeout_ms;
}

static int64_t data_timeout(const struct smtp_session *s)
{
	const struct conf *conf = s->srv->conf;

	if (s->srv->stressed && conf->stress_data_timeout_ms < conf->data_timeout_ms)
		return conf->stress_data_timeout_ms;
	return conf->data_timeout_ms;
}

/* at: monotonic milliseconds. */
static void deadline_set(struct smtp_session *s, int64_t at)
{
	int64_t now = time_mono_ms();
	struct timeval tv = ms_to_tv(at > now ? at - now : 0);

	s->deadline_ms = at;
	evtimer_add(s->deadline, &tv);
}

static void deadline_command(struct smtp_session *s)
{
	deadline_set(s, time_mono_ms() + cmd_timeout(s));
}

/* Reading starts again after a wait that was ours, not the client's. */
static void deadline_resume(struct smtp_session *s)
{
	if (s->state == SMTP_ST_DATA)
		deadline_set(s, time_mono_ms() + data_timeout(s));
	else
		deadline_command(s);
}

static void deadline_data_progress(struct smtp_session *s, size_t n)
{
	int64_t credit = (int64_t)n * 1000 / s->srv->conf->data_min_rate;
	int64_t cap = time_mono_ms() + data_timeout(s);
	int64_t at = s->deadline_ms + credit;

	if (s->state != SMTP_ST_DATA || credit == 0)
		return;
	deadline_set(s, at < cap ? at : cap);
}

static void deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	struct smtp_session *s = arg;
	int data = s->state == SMTP_ST_DATA;

	(void)fd;
	(void)what;
	if (s->flags & (SMTP_F_CLOSING | SMTP_F_PAUSED | SMTP_F_OUTWAIT) ||
	    s->state == SMTP_ST_GREET_PAUSE || s->state == SMTP_ST_COMMIT ||
	    s->state == SMTP_ST_CONTENT)
		return; /* waiting for us: re-armed when reading resumes */
	log_warn(s->idstr, "smtp", "%s TIMEOUT from [%s] timeout=%lldms stress=%s",
		 data ? "DATA" : "COMMAND", s->addr,
		 (long long)(data ? data_timeout(s) : cmd_timeout(s)),
		 s->srv->stressed ? "yes" : "no");
	reply(s, "421 4.4.2", "%s Error: timeout exceeded, closing", s->srv->conf->hostname);
	close_session(s);
	reap(s);
}

/* Enter or leave stress mode as the session count crosses the threshold. */
static void stress_update(struct smtp_server *srv)
{
	const struct conf *conf = srv->conf;
	int on = (int64_t)srv->nsessions * 100 > conf->stress_sessions * conf->max_sessions;

	if (on == srv->stressed)
		return;
	srv->stressed = on;
	if (on)
		log_warn(NULL, "smtp", "STRESS on sessions=%d max_sessions=%lld"
			 " idle_timeout=%lldms data_timeout=%lldms", srv->nsessions,
			 (long long)conf->max_sessions,
			 (long long)(conf->stress_idle_timeout_ms < conf->idle_timeout_ms
				     ? conf->stress_idle_timeout_ms : conf->idle_timeout_ms),
			 (long long)(conf->stress_data_timeout_ms < conf->data_timeout_ms
				     ? conf->stress_data_timeout_ms : conf->data_timeout_ms));
	else
		log_info(NULL, "smtp", "stress off sessions=%d max_sessions=%lld",
			 srv->nsessions, (long long)conf->max_sessions);
}

static void read_cb(struct bufferevent *bev, void *arg)
{
	struct smtp_session *s = arg;

	(void)bev;
	if (s->state == SMTP_ST_GREET_PAUSE) {
		pregreet(s);
		reap(s);
		return;
	}
	process_input(s);
	reap(s);
}

static void event_cb(struct bufferevent *bev, short what, void *arg);
static void write_cb(struct bufferevent *bev, void *arg);

/*
 * The 220 to STARTTLS has been written: the socket changes hands, and the
 * handshake's end (event_cb, CONNECTED) starts the session over.
 */
static void tls_switch(struct smtp_session *s)
{
	s->flags &= ~SMTP_F_TLSWAIT;
	if (smtp_tls_switch(s, read_cb, write_cb, event_cb) < 0) {
		log_error(s->idstr, "smtp", "tls cannot start for [%s]", s->addr);
		close_session(s);
		return;
	}
	s->flags |= SMTP_F_TLSBEV;
}

/* Everything written: what waited for it (STARTTLS, reading, the end). */
static void write_done(struct smtp_session *s)
{
	if ((s->flags & SMTP_F_TLSWAIT) && !(s->flags & SMTP_F_CLOSING) &&
	    evbuffer_get_length(bufferevent_get_output(s->bev)) == 0) {
		tls_switch(s);
		reap(s);
		return;
	}
	if ((s->flags & SMTP_F_OUTWAIT) && !(s->flags & SMTP_F_CLOSING)) {
		s->flags &= ~SMTP_F_OUTWAIT;
		bufferevent_enable(s->bev, EV_READ);
		deadline_resume(s);
		process_input(s);
	}
	reap(s);
}

static void write_cb(struct bufferevent *bev, void *arg)
{
	struct smtp_session *s = arg;

	(void)bev;
	/* Drained: plain text goes back to writing from flush_cb. */
	if (!(s->flags & SMTP_F_TLSBEV))
		bufferevent_disable(s->bev, EV_WRITE);
	write_done(s);
}

/*
 * One non-blocking write of the output buffer to the socket.  A socket
 * bufferevent keeps the start of its output buffer frozen so that only
 * its own write callback drains it; this is the one other writer.
 */
static int write_out(struct smtp_session *s)
{
	struct evbuffer *out = bufferevent_get_output(s->bev);
	int n;

	evbuffer_unfreeze(out, 1);
	n = evbuffer_write(out, s->fd);
	evbuffer_freeze(out, 1);
	return n;
}

static void flush_cb(evutil_socket_t fd, short what, void *arg)
{
	struct smtp_session *s = arg;
	struct evbuffer *out = bufferevent_get_output(s->bev);

	(void)fd;
	(void)what;
	if (s->flags & SMTP_F_TLSBEV)
		return;
	if (evbuffer_get_length(out) > 0 && write_out(s) < 0 && errno != EAGAIN &&
	    errno != EINTR) {
		/* The peer is gone: as event_cb does for a socket error. */
		log_debug(s->idstr, "smtp", "write failed: %s", strerror(errno));
		session_free(s);
		return;
	}
	if (evbuffer_get_length(out) > 0) {
		bufferevent_enable(s->bev, EV_WRITE);
		return;
	}
	write_done(s);
}

static void event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct smtp_session *s = arg;

	(void)bev;
	if (what & BEV_EVENT_CONNECTED) {
		/* TLS handshake done: everything starts over (CVE-2011-0411). */
		smtp_tls_established(s);
		smtp_session_note(s, "starttls", "tls", NULL,
				  conv_detail("tls", s->tls_info, NULL));
		tx_reset(s);
		s->helo[0] = '\0';
		s->flags &= ~(SMTP_F_ESMTP | SMTP_F_PAUSED);
		smtp_auth_free(s->auth);
		s->auth = NULL;
		s->auth_user[0] = '\0';
		if (s->pol != NULL)
			policy_auth_login(s->pol, NULL, NULL, 0);
		enter_state(s, SMTP_ST_INIT);
		set_read_timeout(s, s->srv->conf->idle_timeout_ms);
		bufferevent_enable(s->bev, EV_READ);
		deadline_command(s);
		process_input(s);
		reap(s);
		return;
	}
	if ((what & BEV_EVENT_ERROR) && (s->flags & SMTP_F_TLSBEV) && !s->tls) {
		unsigned long e = bufferevent_get_openssl_error(s->bev);
		char es[160] = "";

		if (e != 0)
			ERR_error_string_n(e, es, sizeof(es));
		log_warn(s->idstr, "smtp", "TLS HANDSHAKE FAILED from [%s] %s", s->addr, es);
	}
	if ((what & BEV_EVENT_TIMEOUT) && (s->flags & SMTP_F_TLSBEV) && !s->tls) {
		/* No handshake within the idle time: no reply can be sent. */
		log_warn(s->idstr, "smtp", "TLS HANDSHAKE TIMEOUT from [%s]", s->addr);
		session_free(s);
		return;
	}
	if ((what & BEV_EVENT_TIMEOUT) && (what & BEV_EVENT_READING) &&
	    !(s->flags & SMTP_F_CLOSING)) {
		/* The read time-out; the deadlines (deadline_cb) normally come first. */
		log_warn(s->idstr, "smtp", "%s TIMEOUT from [%s]",
			 s->state == SMTP_ST_DATA ? "DATA" : "COMMAND", s->addr);
		reply(s, "421 4.4.2", "%s Error: timeout exceeded, closing",
		      s->srv->conf->hostname);
		close_session(s);
		reap(s);
		return;
	}
	/* EOF, a socket error, or a client that stopped reading our replies. */
	session_free(s);
}

/* Greet pause, then the banner (or a pregreet refusal). */
static void greet(struct smtp_session *s)
{
	const struct conf *conf = s->srv->conf;

	if (conf->greet_pause_ms > 0) {
		struct timeval tv = ms_to_tv(conf->greet_pause_ms);

		evtimer_add(s->timer, &tv);
	} else if (early_talker(s)) {
		pregreet(s);
	} else {
		struct timeval tv = ms_to_tv(conf->session_timeout_ms);

		send_banner(s);
		evtimer_add(s->timer, &tv);
	}
}

/* A refusal delay_reject kept for RCPT, in the conversation where it was decided. */
static void conv_delayed(struct smtp_session *s, const char *stage)
{
	const struct policy_verdict *d = s->pol != NULL ? policy_delayed(s->pol) : NULL;

	if (d == NULL || (strcmp(stage, "helo") == 0 && strncmp(d->check, "helo", 4) != 0))
		return;
	smtp_session_note(s, stage, "refusal_delayed", NULL,
			  conv_detail("code", d->code, "reason", d->text, "check", d->check,
				      "entry", d->entry, NULL));
}

/*
 * delay_reject: the refusal decided at connect or HELO, given now (RCPT,
 * AUTH) with its own log row.  Not the client's error (max_errors) nor a
 * refusal of its own recipients (max_refusals): delay_reject_max, usually
 * far lower, bounds them instead, then 421 4.7.0 and the end.
 * 1 when the command was answered.  rcpt: the recipient of a RCPT, whose
 * owner may lift a DNSBL refusal (policy_delayed_rcpt); NULL for AUTH.
 */
static int delayed_refusal(struct smtp_session *s, const struct logfacts *f, const char *rcpt)
{
	const struct policy_verdict *d = s->pol == NULL ? NULL
		: rcpt != NULL ? policy_delayed_rcpt(s->pol, rcpt) : policy_delayed(s->pol);
	struct policy_verdict v;

	if (d == NULL) {
		if (rcpt != NULL && policy_delayed(s->pol) != NULL)
			s->delayed_lifted++;
		return 0;
	}
	if (s->delayed_given >= policy_delay_reject_max(s->pol)) {
		log_warn(s->idstr, "smtp", "DELAYED REJECT LIMIT from [%s] refused=%d", s->addr,
			 s->delayed_given);
		reply(s, "421 4.7.0", "%s Error: too many refused commands, closing",
		      s->srv->conf->hostname);
		smtp_session_note(s, "session", "closed", NULL,
				  conv_detail("code", "421 4.7.0", "reason", "delay_reject_max",
					      NULL));
		close_session(s);
		return 1;
	}
	v = *d;
	v.close = 0;
	s->delayed_given++;
	/* Counted by delay_reject_max, neither max_errors nor max_refusals. */
	verdict_as(s, COUNT_NONE, f, &v);
	return 1;
}

/*
 * The connect stage of the policy, before the banner; may pause for DNS
 * (reading stays on, so that a client talking first is still caught).
 */
static void connect_policy(struct smtp_session *s)
{
	struct policy_verdict v;
	struct logfacts f;
	const char *name;

	if (s->pol != NULL) {
		enum policy_action r = policy_connect(s->pol, s->srv->nsessions, &v);

		if (r == POLICY_PENDING) {
			/* Reading stays on: a client talking first is still caught. */
			s->flags |= SMTP_F_PAUSED;
			s->resume = connect_policy;
			return;
		}
		name = policy_client_name(s->pol);
		if (name != NULL)
			strlcpy_s(s->name, name, sizeof(s->name));
		conv_connect(s);
		s->conv_stage = "connect";
		if (r == POLICY_REFUSE || r == POLICY_DEFER) {
			tx_facts(s, &f);
			refuse_verdict(s, &f, &v);
			close_session(s);
			return;
		}
		conv_delayed(s, "connect");
	} else {
		conv_connect(s);
	}
	greet(s);
}

void smtp_session_policy_resume(struct smtp_session *s)
{
	void (*resume)(struct smtp_session *) = s->resume;

	s->resume = NULL;
	s->flags &= ~SMTP_F_PAUSED;
	if (resume == NULL || (s->flags & SMTP_F_CLOSING)) {
		/* Closing, or nothing waits for the policy any more. */
		reap(s);
		return;
	}
	if (resume == connect_policy) {
		connect_policy(s);
	} else {
		/* The command's proceed_<cmd>: its checks ran before the wait. */
		resume(s);
		if (s->tx == NULL && !(s->flags & SMTP_F_PAUSED))
			conv_tx_end(s);
		command_done(s);
		if (!(s->flags & (SMTP_F_CLOSING | SMTP_F_PAUSED))) {
			bufferevent_enable(s->bev, EV_READ);
			deadline_resume(s);
			process_input(s);
		}
	}
	reap(s);
}

void smtp_session_accept(struct smtp_server *srv, int fd, const struct sockaddr *sa,
			 socklen_t salen, int submission)
{
	const struct conf *conf = srv->conf;
	struct smtp_session *s = xcalloc(1, sizeof(*s));
	int client_sessions;

	(void)salen;
	s->srv = srv;
	s->fd = fd;
	s->submission = submission;
	s->started_ms = time_mono_ms();
	s->state = SMTP_ST_GREET_PAUSE;
	strlcpy_s(s->name, "unknown", sizeof(s->name));
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;

		if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr))
			inet_ntop(AF_INET, &s6->sin6_addr.s6_addr[12], s->addr, sizeof(s->addr));
		else
			inet_ntop(AF_INET6, &s6->sin6_addr, s->addr, sizeof(s->addr));
	} else {
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, s->addr,
			  sizeof(s->addr));
	}
	s->bev = bufferevent_socket_new(srv->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (s->bev == NULL) {
		close(fd);
		free(s);
		return;
	}
	smtp_server_link(srv, s);
	client_sessions = smtp_server_client_acquire(srv, s);
	bufferevent_setcb(s->bev, read_cb, write_cb, event_cb, s);
	bufferevent_setwatermark(s->bev, EV_READ, 0, INPUT_HIGH);
	set_read_timeout(s, conf->idle_timeout_ms);
	bufferevent_enable(s->bev, EV_READ);
	s->flush = event_new(srv->base, -1, 0, flush_cb, s);
	s->timer = evtimer_new(srv->base, timer_cb, s);
	s->deadline = evtimer_new(srv->base, deadline_cb, s);
	log_info(s->idstr, "smtp", "connect client=[%s]", s->addr);
	stress_update(srv);

	if (srv->shutting_down) {
		reply(s, "421 4.3.2", "%s Service shutting down", conf->hostname);
		close_session(s);
	} else if (srv->nsessions > conf->max_sessions) {
		log_warn(s->idstr, "smtp", "SESSION LIMIT from [%s]", s->addr);
		refuse_connection(s, "421 4.7.0", "max_sessions",
				  "Too many connections, try again later");
	} else if (client_sessions > conf->max_sessions_per_client) {
		log_warn(s->idstr, "smtp", "CLIENT SESSION LIMIT from [%s]", s->addr);
		refuse_connection(s, "421 4.7.0", "max_sessions_per_client",
				  "Too many connections from your address, try again later");
	} else {
		if (srv->policy != NULL) {
			struct sockaddr_storage local;
			socklen_t llen = sizeof(local);
			int have_local = getsockname(fd, (struct sockaddr *)&local, &llen) == 0;

			s->pol = policy_sess_new(srv->policy, s->id, sa,
						 have_local ? (struct sockaddr *)&local : NULL);
		}
		connect_policy(s);
	}
	reap(s);
}

/* --- commands ---------------------------------------------------------- */

static int check_helo(struct smtp_session *s, const struct smtp_command *cmd)
{
	if (smtp_check_helo(cmd->args, cmd->argslen) < 0) {
		reply(s, "501 5.5.4", "Syntax: %s hostname",
		      cmd->verb == SMTP_V_EHLO ? "EHLO" : "HELO");
		return -1;
	}
	memcpy(s->arg.helo, cmd->args, cmd->argslen);
	s->arg.helo[cmd->argslen] = '\0';
	return 0;
}

static void proceed_helo(struct smtp_session *s)
{
	const struct conf *conf = s->srv->conf;
	int ehlo = s->verb == SMTP_V_EHLO;

	s->conv_stage = "helo";
	if (s->pol != NULL) {
		struct policy_verdict v;
		struct logfacts f;

		tx_facts(s, &f);
		if (policy_gate(s, policy_helo(s->pol, s->arg.helo, strlen(s->arg.helo), &v), &v,
				&f, proceed_helo))
			return;
	}
	tx_reset(s);
	strlcpy_s(s->helo, s->arg.helo, sizeof(s->helo));
	smtp_session_note(s, "helo", ehlo ? "ehlo" : "helo", NULL,
			  conv_detail("name", s->helo, NULL));
	conv_delayed(s, "helo");
	if (ehlo)
		s->flags |= SMTP_F_ESMTP;
	else
		s->flags &= ~SMTP_F_ESMTP;
	enter_state(s, SMTP_ST_HELO);
	if (!ehlo) {
		reply(s, "250", "%s", conf->hostname);
		return;
	}
	output_added(s);
	evbuffer_add_printf(bufferevent_get_output(s->bev),
			    "250-%s\r\n"
			    "250-PIPELINING\r\n"
			    "250-SIZE %lld\r\n"
			    "250-8BITMIME\r\n"
			    "250-ENHANCEDSTATUSCODES\r\n"
			    "%s%s"
			    "250 SMTPUTF8\r\n",
			    conf->hostname, (long long)conf->max_message_size,
			    !s->tls && s->srv->tls != NULL ? "250-STARTTLS\r\n" : "",
			    s->srv->authsrv != NULL && (s->tls || conf->auth_allow_plaintext)
			    ? "250-AUTH PLAIN LOGIN\r\n" : "");
}

/*
 * Room in the spool for a message of size octets (-1: not declared):
 * spool_min_free must stay free after it (Postfix queue_minfree).  The
 * figure is the writer thread's cached statvfs(), so this never touches
 * the file system from the loop; an unknown figure lets mail in.
 */
static int spool_room(const struct smtp_session *s, int64_t size)
{
	int64_t avail = spool_free_bytes(s->srv->spool);
	int64_t need = s->srv->conf->spool_min_free + (size > 0 ? size : 0);

	if (avail < 0)
		return 1;
	if (avail < need || avail == 0) {
		log_debug(s->idstr, "smtp", "spool free=%lld need=%lld", (long long)avail,
			  (long long)need);
		return 0;
	}
	return 1;
}

static int check_mail(struct smtp_session *s, const struct smtp_command *cmd)
{
	const struct conf *conf = s->srv->conf;
	struct smtp_mail_args *args = &s->arg.mail;
	struct logfacts f = { .size = -1 };

	s->conv_stage = "mail";
	conv_tx_begin(s);
	switch (smtp_parse_mail(cmd->args, cmd->argslen, args)) {
	case SMTP_PARSE_OK:
		break;
	case SMTP_PARSE_SYNTAX:
		/* A login's malformed sender counts against the account, <> or not (agds). */
		if (s->pol != NULL)
			policy_mail_malformed(s->pol, cmd->args, cmd->argslen);
		reply(s, "501 5.5.4", "Syntax: MAIL FROM:<address>");
		return -1;
	case SMTP_PARSE_ADDRESS:
		if (s->pol != NULL)
			policy_mail_malformed(s->pol, cmd->args, cmd->argslen);
		reply(s, "501 5.1.7", "Bad sender address syntax");
		return -1;
	case SMTP_PARSE_PARAM:
		reply(s, "555 5.5.4", "Unsupported or malformed MAIL parameter");
		return -1;
	case SMTP_PARSE_UTF8:
		reply(s, "553 5.6.7", "Non-ASCII address requires SMTPUTF8");
		return -1;
	}
	f.sender = args->addr;
	if (s->submission && s->auth_user[0] == '\0') {
		refuse(s, &f, "530 5.7.0", "auth_required", "Authentication required");
		return -1;
	}
	if (args->size > conf->max_message_size) {
		refuse_tx(s, &f, TX_ERR_SIZE);
		return -1;
	}
	if (!spool_room(s, args->size)) {
		refuse_tx(s, &f, TX_ERR_NOSPACE);
		return -1;
	}
	return 0;
}

static void proceed_mail(struct smtp_session *s)
{
	const struct smtp_mail_args *args = &s->arg.mail;
	struct smtp_tx *tx;

	if (s->pol != NULL) {
		/* Sender lists; for a login also binding, suspension, rate limits. */
		struct policy_verdict v;
		struct logfacts f = { .size = -1, .sender = args->addr };

		if (policy_gate(s, policy_mail(s->pol, args->addr, &v), &v, &f, proceed_mail))
			return;
	}
	tx = xcalloc(1, sizeof(*tx));
	tx->sender = xstrdup(args->addr);
	tx->declared_size = args->size;
	tx->smtputf8 = args->smtputf8;
	tx->body_8bitmime = args->body == SMTP_BODY_8BITMIME;
	s->tx = tx;
	enter_state(s, SMTP_ST_MAIL);
	reply(s, "250 2.1.0", "Ok");
	{
		json_t *d = conv_detail("sender", args->addr[0] != '\0' ? args->addr : "<>",
					NULL);

		if (args->size > 0)
			json_object_set_new(d, "size", json_integer(args->size));
		smtp_session_note(s, "mail", "accepted", NULL, d);
	}
}

/* Facts for the message-log row of one refused recipient. */
static void rcpt_facts(const struct smtp_session *s, struct logfacts *f, const char **one)
{
	tx_facts(s, f);
	*one = s->arg.rcpt.addr;
	f->rcpts = one;
	f->nrcpts = 1;
}

/* Counts the attempt: once per RCPT, however long its policy waits. */
static int check_rcpt(struct smtp_session *s, const struct smtp_command *cmd)
{
	const struct conf *conf = s->srv->conf;
	struct smtp_rcpt_args *args = &s->arg.rcpt;
	struct smtp_tx *tx = s->tx;
	struct logfacts f;
	const char *one;

	s->conv_stage = "rcpt";
	s->rcpts_seen++;
	tx->rcpt_attempts++;
	switch (smtp_parse_rcpt(cmd->args, cmd->argslen, tx->smtputf8, args)) {
	case SMTP_PARSE_OK:
		break;
	case SMTP_PARSE_SYNTAX:
		reply(s, "501 5.5.4", "Syntax: RCPT TO:<address>");
		return -1;
	case SMTP_PARSE_ADDRESS:
		reply(s, "501 5.1.3", "Bad recipient address syntax");
		return -1;
	case SMTP_PARSE_PARAM:
		reply(s, "555 5.5.4", "Unsupported or malformed RCPT parameter");
		return -1;
	case SMTP_PARSE_UTF8:
		reply(s, "553 5.6.7", "Non-ASCII address requires SMTPUTF8");
		return -1;
	}
	if (strchr(args->addr, '@') == NULL) {
		/* <Postmaster> (the parser lets no other bare local part through). */
		char pm[sizeof(args->addr)];

		if (s->pol == NULL || policy_sess_postmaster(s->pol, pm, sizeof(pm)) < 0) {
			rcpt_facts(s, &f, &one);
			refuse_as(s, COUNT_REFUSAL, &f, "451 4.3.5", "postmaster",
			       "<Postmaster>: no postmaster address configured"
			       " (no local domain and no postmaster_address)");
			return -1;
		}
		strlcpy_s(args->addr, pm, sizeof(args->addr));
	}
	if (tx->nrcpts >= (size_t)conf->max_recipients) {
		rcpt_facts(s, &f, &one);
		/* RFC 5321 4.5.3.1.10: a client must expect it; a refusal, not an error. */
		refuse_as(s, COUNT_REFUSAL, &f, "452 4.5.3", "max_recipients",
			  "Error: too many recipients");
		return -1;
	}
	return 0;
}

static void proceed_rcpt(struct smtp_session *s)
{
	struct smtp_tx *tx = s->tx;

	if (s->pol != NULL) {
		/* One verdict: the recipient domain of a login (may wait for DNS),
		 * the lists, relay, directory, harvest, the account's limits. */
		struct policy_verdict v;
		struct logfacts f;
		const char *one;

		uint64_t cls;

		rcpt_facts(s, &f, &one);
		if (delayed_refusal(s, &f, s->arg.rcpt.addr))
			return;
		if (policy_gate(s, policy_rcpt(s->pol, s->arg.rcpt.addr, tx->nrcpts, &v), &v, &f,
				proceed_rcpt))
			return;
		/* One SMTP answer after DATA must hold for every recipient. */
		cls = policy_content_rcpt_class(s->pol, s->arg.rcpt.addr);
		if (tx->nrcpts > 0 && cls != tx->rcpt_class) {
			/* Asked of the client, neither its error nor a refusal. */
			refuse_as(s, COUNT_NONE, &f, "452 4.5.3", "rcpt_class",
				  "Recipient needs a separate transaction, send it again");
			return;
		}
		tx->rcpt_class = cls;
	}
	if (tx->nrcpts == tx->rcpt_cap) {
		tx->rcpt_cap = tx->rcpt_cap ? tx->rcpt_cap * 2 : 8;
		tx->rcpts = xrealloc(tx->rcpts, tx->rcpt_cap * sizeof(char *));
	}
	tx->rcpts[tx->nrcpts++] = xstrdup(s->arg.rcpt.addr);
	s->rcpts_ok++;
	enter_state(s, SMTP_ST_RCPT);
	reply(s, "250 2.1.5", "Ok");
	smtp_session_note(s, "rcpt", "accepted", s->arg.rcpt.addr, NULL);
}

static void write_received(struct smtp_session *s)
{
	const struct conf *conf = s->srv->conf;
	struct smtp_tx *tx = s->tx;
	char date[64];
	char hdr[1400];
	struct tm tm;
	time_t now = (time_t)(tx->received_at / 1000);
	const char *proto;
	int n;

	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
	{
		/* RFC 3848 / 6531: ESMTP, ESMTPS, ESMTPA, ESMTPSA (UTF8SMTP...). */
		static const char *const protos[2][4] = {
			{ "ESMTP", "ESMTPS", "ESMTPA", "ESMTPSA" },
			{ "UTF8SMTP", "UTF8SMTPS", "UTF8SMTPA", "UTF8SMTPSA" },
		};
		int k = (s->tls ? 1 : 0) + (s->auth_user[0] != '\0' ? 2 : 0);

		if (tx->smtputf8)
			proto = protos[1][k];
		else if ((s->flags & SMTP_F_ESMTP) || k != 0)
			proto = protos[0][k];
		else
			proto = "SMTP";
	}
	n = snprintf(hdr, sizeof(hdr),
		     "Received: from %s (%s [%s])\r\n"
		     "\t%s%s%sby %s (Moat) with %s id %s",
		     s->helo, s->name, s->addr, s->tls ? "(" : "", s->tls ? s->tls_info : "",
		     s->tls ? ")\r\n\t" : "", conf->hostname, proto,
		     spool_file_qid(tx->file));
	/* One recipient is named; more would disclose the others. */
	if (tx->nrcpts == 1 && n > 0 && (size_t)n < sizeof(hdr))
		n += snprintf(hdr + n, sizeof(hdr) - (size_t)n, "\r\n\tfor <%s>",
			      tx->rcpts[0]);
	if (n > 0 && (size_t)n < sizeof(hdr))
		n += snprintf(hdr + n, sizeof(hdr) - (size_t)n, "; %s\r\n", date);
	if (n < 0 || (size_t)n >= sizeof(hdr))
		abort(); /* every field above is bounded */
	spool_file_write(tx->file, hdr, (size_t)n);
	if (s->pol != NULL) {
		/* Headers the policy asked for (a DNSBL site with action tag). */
		size_t hn = policy_data_headers(s->pol, hdr, sizeof(hdr));

		if (hn > 0)
			spool_file_write(tx->file, hdr, hn);
	}
}

static int check_data(struct smtp_session *s, const struct smtp_command *cmd)
{
	s->conv_stage = "data";
	if (cmd->argslen > 0) {
		reply(s, "501 5.5.4", "Syntax: DATA");
		return -1;
	}
	if (s->state == SMTP_ST_MAIL) {
		/* RFC 5321 3.3: 554 when every RCPT failed, 503 when there was none. */
		if (s->tx->rcpt_attempts > 0)
			reply(s, "554 5.5.1", "Error: no valid recipients");
		else
			reply(s, "503 5.5.1", "Error: need RCPT command");
		return -1;
	}
	return 0;
}

static void proceed_data(struct smtp_session *s)
{
	const struct conf *conf = s->srv->conf;
	struct smtp_tx *tx = s->tx;
	char err[256];

	tx->file = spool_file_create(s->srv->spool, err, sizeof(err));
	if (tx->file == NULL) {
		struct logfacts f;
		enum tx_error e = tx_error_of_spool(spool_err_from_errno(errno));

		log_error(s->idstr, "smtp", "%s", err);
		tx_facts(s, &f);
		refuse_tx(s, &f, e);
		return;
	}
	tx->spool_error = SPOOL_OK;
	tx->received_at = time_now_ms();
	write_received(s);
	if (s->pol != NULL)
		policy_data_start(s->pol);
	smtp_data_init(&tx->data, (size_t)conf->max_text_line, conf->max_message_size);
	smtp_data_header_limits(&tx->data, (size_t)conf->max_header_size,
				(size_t)conf->max_header_count);
	enter_state(s, SMTP_ST_DATA);
	set_read_timeout(s, conf->data_timeout_ms);
	deadline_set(s, time_mono_ms() + data_timeout(s));
	reply(s, "354", "End data with <CR><LF>.<CR><LF>");
	smtp_session_note(s, "data", "start", NULL,
			  conv_detail("qid", spool_file_qid(tx->file), NULL));
}

static int check_starttls(struct smtp_session *s, const struct smtp_command *cmd)
{
	struct evbuffer *in = bufferevent_get_input(s->bev);

	if (cmd->argslen > 0) {
		reply(s, "501 5.5.4", "Syntax: STARTTLS");
		return -1;
	}
	if (evbuffer_get_length(in) > 0) {
		/* CVE-2011-0411: nothing sent in the clear may count after TLS. */
		log_warn(s->idstr, "smtp", "STARTTLS PIPELINING from [%s]", s->addr);
		evbuffer_drain(in, evbuffer_get_length(in));
		reply(s, "554 5.5.1", "Error: command pipelined after STARTTLS, closing");
		close_session(s);
		return -1;
	}
	return 0;
}

static void proceed_starttls(struct smtp_session *s)
{
	reply(s, "220 2.0.0", "Ready to start TLS");
	s->flags |= SMTP_F_TLSWAIT | SMTP_F_PAUSED;
	bufferevent_disable(s->bev, EV_READ);
}

/* The SASL exchange answers (and pauses) by itself: smtp_auth.c. */
static int check_auth(struct smtp_session *s, const struct smtp_command *cmd)
{
	struct logfacts f;

	s->conv_stage = "auth";
	tx_facts(s, &f);
	/* A client refused at connect or HELO gets no login either (the stricter outcome). */
	if (!delayed_refusal(s, &f, NULL))
		smtp_auth_command(s, cmd);
	return -1;
}

void smtp_session_reply(struct smtp_session *s, const char *code, const char *text)
{
	reply(s, code, "%s", text);
}

void smtp_session_auth_resume(struct smtp_session *s)
{
	s->flags &= ~SMTP_F_PAUSED;
	check_limits(s);
	if (!(s->flags & SMTP_F_CLOSING)) {
		bufferevent_enable(s->bev, EV_READ);
		deadline_resume(s);
		process_input(s);
	}
	reap(s);
}

static void proceed_rset(struct smtp_session *s)
{
	tx_reset(s);
	if (s->state != SMTP_ST_INIT)
		enter_state(s, SMTP_ST_HELO);
	reply(s, "250 2.0.0", "Ok");
}

static void proceed_noop(struct smtp_session *s)
{
	reply(s, "250 2.0.0", "Ok");
}

static void proceed_quit(struct smtp_session *s)
{
	reply(s, "221 2.0.0", "Bye");
	close_session(s);
}

static void proceed_help(struct smtp_session *s)
{
	reply(s, "214 2.0.0", "Commands: EHLO HELO MAIL RCPT DATA RSET NOOP QUIT HELP VRFY");
}

static void proceed_vrfy(struct smtp_session *s)
{
	/* Disclose nothing: the same answer for any argument. */
	reply(s, "252 2.1.5", "Cannot VRFY user, but will accept message and attempt delivery");
}

static void proceed_not_implemented(struct smtp_session *s)
{
	reply(s, "502 5.5.1", "Error: command not implemented");
}

static void proceed_unknown(struct smtp_session *s)
{
	reply(s, "500 5.5.2", "Error: command not recognized");
}

/* --- the command table ---------------------------------------------------- */

#define ST_INIT (1u << SMTP_ST_INIT)
#define ST_HELO (1u << SMTP_ST_HELO)
#define ST_MAIL (1u << SMTP_ST_MAIL)
#define ST_RCPT (1u << SMTP_ST_RCPT)
#define ST_ANY (ST_INIT | ST_HELO | ST_MAIL | ST_RCPT)

#define CMD_ENDS_SESSION 0x01  /* the session may be gone: touch nothing after */
#define CMD_NEEDS_HELO 0x02    /* out of sequence before HELO: "send HELO/EHLO first" */
#define CMD_NEEDS_TLS 0x04     /* 538 before STARTTLS unless auth_allow_plaintext */
#define CMD_IF_TLS 0x08        /* offered while a TLS context exists and TLS is off */
#define CMD_IF_AUTH 0x10       /* offered when AUTH is configured */

/*
 * {verb, states, check, proceed, flags, text}: a command outside states
 * gets "503 5.5.1 <text>"; check (may be NULL) parses, refuses with a
 * reply (-1) and runs once; proceed (may be NULL) asks the policy and
 * acts, and is what runs again when a verdict it waited for is ready.
 */
static const struct smtp_cmd {
	enum smtp_verb verb;
	unsigned states;
	int (*check)(struct smtp_session *, const struct smtp_command *);
	void (*proceed)(struct smtp_session *);
	unsigned flags;
	const char *out_of_sequence;
} commands[] = {
	{ SMTP_V_HELO, ST_ANY, check_helo, proceed_helo, 0, NULL },
	{ SMTP_V_EHLO, ST_ANY, check_helo, proceed_helo, 0, NULL },
	{ SMTP_V_MAIL, ST_HELO, check_mail, proceed_mail, CMD_NEEDS_HELO,
	  "Error: nested MAIL command" },
	{ SMTP_V_RCPT, ST_MAIL | ST_RCPT, check_rcpt, proceed_rcpt, 0,
	  "Error: need MAIL command" },
	{ SMTP_V_DATA, ST_MAIL | ST_RCPT, check_data, proceed_data, 0,
	  "Error: need RCPT command" },
	{ SMTP_V_RSET, ST_ANY, NULL, proceed_rset, 0, NULL },
	{ SMTP_V_NOOP, ST_ANY, NULL, proceed_noop, 0, NULL },
	{ SMTP_V_QUIT, ST_ANY, NULL, proceed_quit, CMD_ENDS_SESSION, NULL },
	{ SMTP_V_HELP, ST_ANY, NULL, proceed_help, 0, NULL },
	{ SMTP_V_VRFY, ST_ANY, NULL, proceed_vrfy, 0, NULL },
	{ SMTP_V_EXPN, ST_ANY, NULL, proceed_not_implemented, 0, NULL },
	{ SMTP_V_STARTTLS, ST_HELO, check_starttls, proceed_starttls,
	  CMD_IF_TLS | CMD_NEEDS_HELO, "Error: MAIL transaction in progress" },
	{ SMTP_V_AUTH, ST_HELO, check_auth, NULL, CMD_IF_AUTH | CMD_NEEDS_TLS | CMD_NEEDS_HELO,
	  "Error: MAIL transaction in progress" },
	{ SMTP_V_BDAT, ST_ANY, NULL, proceed_not_implemented, 0, NULL },
	{ SMTP_V_UNKNOWN, ST_ANY, NULL, proceed_unknown, 0, NULL },
};

/* 0 when c may run now; else the refusal is sent. */
static int command_allowed(struct smtp_session *s, const struct smtp_cmd *c)
{
	if (((c->flags & CMD_IF_TLS) && (s->tls || s->srv->tls == NULL)) ||
	    ((c->flags & CMD_IF_AUTH) && s->srv->authsrv == NULL)) {
		reply(s, "502 5.5.1", "Error: command not implemented");
		return -1;
	}
	if ((c->flags & CMD_NEEDS_TLS) && !s->tls && !s->srv->conf->auth_allow_plaintext) {
		reply(s, "538 5.7.11", "Encryption required: issue STARTTLS first");
		return -1;
	}
	if (!(c->states & (1u << s->state))) {
		reply(s, "503 5.5.1", "%s", s->state == SMTP_ST_INIT && (c->flags & CMD_NEEDS_HELO)
		      ? "Error: send HELO/EHLO first"
		      : c->out_of_sequence != NULL ? c->out_of_sequence
		      : "Error: bad sequence of commands");
		return -1;
	}
	return 0;
}

static void too_many_errors(struct smtp_session *s)
{
	log_warn(s->idstr, "smtp", "ERROR LIMIT from [%s]", s->addr);
	reply(s, "421 4.7.0", "%s Error: too many errors, closing", s->srv->conf->hostname);
	close_session(s);
}

/*
 * Policy refusals past the session's limit: a client that keeps sending
 * recipients it is refused for (an address harvester, a bot) is closed,
 * while one that is refused now and then (dead domains in a mailing, a
 * rate limit) carries on.  Logged REFUSAL LIMIT.
 */
static void too_many_refusals(struct smtp_session *s)
{
	log_warn(s->idstr, "smtp", "REFUSAL LIMIT from [%s] refused=%d", s->addr, s->refusals);
	reply(s, "421 4.7.0", "%s Too many refused recipients, closing", s->srv->conf->hostname);
	smtp_session_note(s, "session", "closed", NULL,
			  conv_detail("code", "421 4.7.0", "reason", "max_refusals", NULL));
	close_session(s);
}

/* Before AUTH the lower limit: harvesters do not log in. */
static int64_t refusal_limit(const struct smtp_session *s)
{
	const struct conf *conf = s->srv->conf;

	return s->auth_user[0] != '\0' ? conf->max_refusals : conf->max_refusals_unauth;
}

/* After a command (or its resumed proceed_<cmd>): the error and refusal limits. */
static void check_limits(struct smtp_session *s)
{
	if (s->flags & SMTP_F_CLOSING)
		return;
	if (s->errors >= s->srv->conf->max_errors)
		too_many_errors(s);
	else if (s->refusals >= refusal_limit(s))
		too_many_refusals(s);
}

static void command_done(struct smtp_session *s)
{
	check_limits(s);
}

static void handle_line(struct smtp_session *s, const char *line, size_t len)
{
	struct smtp_command cmd;
	const struct smtp_cmd *c = NULL;
	size_t i;

	if (smtp_auth_in_exchange(s)) {
		/* A continuation of AUTH: never parsed as a command, never logged. */
		smtp_auth_line(s, line, len);
	} else if (memchr(line, '\0', len) != NULL) {
		reply(s, "500 5.5.2", "Error: NUL character in command");
	} else {
		smtp_parse_command(line, len, &cmd);
		for (i = 0; i < ARRAY_LEN(commands) && c == NULL; i++)
			if (commands[i].verb == cmd.verb)
				c = &commands[i];
		if (c == NULL)
			abort(); /* the table names every verb */
		s->verb = cmd.verb;
		if (command_allowed(s, c) == 0 && (c->check == NULL || c->check(s, &cmd) == 0) &&
		    c->proceed != NULL)
			c->proceed(s);
		if (c->flags & CMD_ENDS_SESSION)
			return;
		if (s->tx == NULL && !(s->flags & SMTP_F_PAUSED))
			conv_tx_end(s); /* a refused MAIL: its events are logged */
	}
	command_done(s);
}

/* --- end of DATA --------------------------------------------------------- */

static void end_of_data(struct smtp_session *s)
{
	struct smtp_tx *tx = s->tx;
	struct logfacts f;
	enum tx_error e;

	set_read_timeout(s, s->srv->conf->idle_timeout_ms);
	deadline_command(s);
	s->conv_stage = "data";
	(void)smtp_data_message_id(&tx->data, tx->message_id, sizeof(tx->message_id));
	tx_facts(s, &f);
	f.size = tx->data.size;
	/* What the client sent first: it decides whether a retry can help. */
	if (tx->data.flags & SMTP_DATA_ERR_SIZE)
		e = TX_ERR_SIZE;
	else if (tx->data.flags & SMTP_DATA_ERR_LINE)
		e = TX_ERR_LINE;
	else if (tx->data.flags & SMTP_DATA_ERR_NUL)
		e = TX_ERR_NUL;
	else if (tx->data.flags & SMTP_DATA_ERR_HDR_SIZE)
		e = TX_ERR_HDR_SIZE;
	else if (tx->data.flags & SMTP_DATA_ERR_HDR_COUNT)
		e = TX_ERR_HDR_COUNT;
	else
		e = tx_error_of_spool(spool_file_error(tx->file));
	if (e != TX_OK) {
		enter_state(s, SMTP_ST_HELO);
		refuse_tx(s, &f, e);
		tx_reset(s);
		return;
	}
	if (s->pol != NULL) {
		/* The front door's end of DATA (account suspended meanwhile, From: binding). */
		struct policy_verdict v;

		if (policy_data_end(s->pol, &v) != POLICY_CONTINUE) {
			enter_state(s, SMTP_ST_HELO);
			refuse_verdict(s, &f, &v);
			tx_reset(s);
			return;
		}
	}
	{
		json_t *d = conv_detail("message_id", tx->message_id, NULL);

		json_object_set_new(d, "size", json_integer(tx->data.size));
		smtp_session_note(s, "data", "end", NULL, d);
	}
	if (s->pol != NULL && policy_content_wanted(s->pol)) {
		/* Server rules read the message first; the file is lent meanwhile. */
		struct policy_content_env ce;

		memset(&ce, 0, sizeof(ce));
		ce.sender = tx->sender;
		ce.rcpts = (const char *const *)tx->rcpts;
		ce.nrcpts = tx->nrcpts;
		ce.helo = s->helo;
		ce.tls = s->tls;
		policy_content_start(s->pol, tx->file, &ce);
		tx->file = NULL;
		enter_state(s, SMTP_ST_CONTENT);
		s->resume = proceed_content;
		s->flags |= SMTP_F_PAUSED;
		bufferevent_disable(s->bev, EV_READ);
		return;
	}
	commit_tx(s, (const char *const *)tx->rcpts, tx->nrcpts, NULL, NULL, NULL, NULL, NULL);
}

/* Hand the message to the spool writer: durable, then 250 (commit_done). */
static void commit_tx(struct smtp_session *s, const char *const *rcpts, size_t nrcpts,
		      const unsigned char *disp, const char *const *reasons,
		      const char *const *kinds, const char *const *edits,
		      const struct policy_content_result *res)
{
	struct smtp_tx *tx = s->tx;
	struct spool_envelope env;
	size_t i;

	memset(&env, 0, sizeof(env));
	env.sender = tx->sender;
	env.rcpts = rcpts;
	env.nrcpts = nrcpts;
	env.rcpt_disp = disp;
	env.rcpt_reason = reasons;
	env.rcpt_kind = kinds;
	env.rcpt_edit = edits;
	env.subject = res != NULL ? res->subject : NULL;
	env.message_id = res != NULL ? res->message_id : NULL;
	env.client_addr = s->addr;
	env.client_name = s->name;
	env.helo = s->helo;
	env.auth_user = s->auth_user[0] != '\0' ? s->auth_user : NULL;
	env.received_at = tx->received_at;
	env.smtputf8 = tx->smtputf8;
	env.body_8bit = (tx->data.flags & SMTP_DATA_8BIT) != 0;
	tx->nqueue = tx->nquarantine = tx->nhold = 0;
	for (i = 0; i < nrcpts; i++) {
		if (disp != NULL && disp[i] == SPOOL_RCPT_QUARANTINE)
			tx->nquarantine++;
		else if (disp != NULL && disp[i] == SPOOL_RCPT_HOLD)
			tx->nhold++;
		else
			tx->nqueue++;
	}
	/* The writer owns the file from here on. */
	spool_writer_commit(s->srv->writer, tx->file, &env, s->id);
	tx->file = NULL;
	enter_state(s, SMTP_ST_COMMIT);
	s->flags |= SMTP_F_PAUSED;
	bufferevent_disable(s->bev, EV_READ);
}

/*
 * The content stage answered (through the policy's done callback): one
 * reply for the transaction, and each recipient queued, held, quarantined
 * or dropped as the rules said.
 */
static void proceed_content(struct smtp_session *s)
{
	struct policy_content_result *res = policy_content_take(s->pol);
	struct smtp_tx *tx = s->tx;
	const char **rcpts;
	const char **reasons;
	const char **kinds;
	const char **edits;
	unsigned char *disp;
	struct logfacts f;
	size_t i, n = 0, o = 0;

	if (s->state != SMTP_ST_CONTENT || res == NULL || tx == NULL)
		abort(); /* only a session in the content stage is resumed here */
	tx->file = res->file;
	res->file = NULL;
	s->conv_stage = "rules";
	if (res->scored) {
		json_error_t je;
		json_t *d = json_object();
		json_t *parts = res->score_json != NULL ? json_loads(res->score_json, 0, &je) : NULL;

		tx->scored = 1;
		tx->score = res->score;
		free(tx->score_json);
		tx->score_json = res->score_json;
		res->score_json = NULL;
		json_object_set_new(d, "score", json_real(res->score));
		json_object_set_new(d, "action", json_string(res->score_action));
		if (parts != NULL)
			json_object_set_new(d, "parts", parts);
		smtp_session_note(s, "score", res->score_action, NULL, d);
	}
	tx_facts(s, &f);
	f.size = tx->data.size;
	if (res->summary[0] != '\0')
		smtp_session_note(s, "rules", "matched", NULL,
				  conv_detail("rules", res->summary, NULL));
	if (res->io_error) {
		enter_state(s, SMTP_ST_HELO);
		refuse_tx(s, &f, TX_ERR_IO);
		tx_reset(s);
		policy_content_result_free(res);
		return;
	}
	if (res->verdict.action == POLICY_REFUSE || res->verdict.action == POLICY_DEFER) {
		enter_state(s, SMTP_ST_HELO);
		refuse_verdict(s, &f, &res->verdict);
		tx_reset(s);
		policy_content_result_free(res);
		return;
	}
	rcpts = xcalloc(res->nrcpts + 1, sizeof(char *));
	reasons = xcalloc(res->nrcpts + 1, sizeof(char *));
	kinds = xcalloc(res->nrcpts + 1, sizeof(char *));
	edits = xcalloc(res->nrcpts + 1, sizeof(char *));
	disp = xcalloc(res->nrcpts + 1, 1);
	for (i = 0; i < res->nrcpts; i++) {
		const struct policy_content_rcpt *r = &res->rcpts[i];
		const char *what = r->disp == POLICY_QUARANTINE ? "quarantined"
				 : r->disp == POLICY_HOLD ? "held"
				 : r->disp == POLICY_DISCARD ? "discarded" : NULL;

		if (what != NULL && o + 40 < sizeof(tx->note))
			o += (size_t)snprintf(tx->note + o, sizeof(tx->note) - o, "%s%s %.80s (%.60s)",
					      o ? "; " : "", what, r->rcpt, r->reason);
		smtp_session_note(s, "rules", "disposition", r->rcpt,
				  conv_detail("disposition", what != NULL ? what : "deliver",
					      "reason", r->reason, NULL));
		if (r->disp == POLICY_DISCARD)
			continue;
		rcpts[n] = r->rcpt;
		reasons[n] = r->reason;
		kinds[n] = r->kind[0] != '\0' ? r->kind : NULL;
		edits[n] = r->edit;
		disp[n] = r->disp == POLICY_QUARANTINE ? SPOOL_RCPT_QUARANTINE
			: r->disp == POLICY_HOLD ? SPOOL_RCPT_HOLD : SPOOL_RCPT_QUEUE;
		n++;
	}
	if (res->summary[0] != '\0' && o + 20 < sizeof(tx->note))
		snprintf(tx->note + o, sizeof(tx->note) - o, "%s%s", o ? "; " : "", res->summary);
	if (n == 0) {
		/* Every recipient discarded: accepted, and nothing kept. */
		reply(s, "250 2.0.0", "Ok: message accepted");
		msglog_entry(s, &f, "accepted", "250 2.0.0", tx->note, "rules", NULL);
		enter_state(s, SMTP_ST_HELO);
		tx_reset(s);
	} else {
		commit_tx(s, rcpts, n, disp, reasons, kinds, edits, res);
	}
	free(rcpts);
	free(reasons);
	free(kinds);
	free(edits);
	free(disp);
	policy_content_result_free(res);
}

void smtp_session_commit_done(struct smtp_session *s, const char *qid, enum spool_err err)
{
	int ok = err == SPOOL_OK;
	struct logfacts f;

	if (s->state != SMTP_ST_COMMIT)
		abort(); /* only a committing session waits for the writer */
	tx_facts(s, &f);
	f.qid = qid;
	f.size = s->tx->data.size;
	s->conv_stage = "spool";
	if (ok) {
		json_t *d = conv_detail("qid", qid, NULL);

		json_object_set_new(d, "queued", json_integer(s->tx->nqueue));
		json_object_set_new(d, "quarantined", json_integer(s->tx->nquarantine));
		json_object_set_new(d, "held", json_integer(s->tx->nhold));
		smtp_session_note(s, "spool", s->tx->nqueue > 0 ? "queued"
				  : s->tx->nquarantine > 0 ? "quarantined" : "held", NULL, d);
	}
	if (s->flags & SMTP_F_CLOSING) {
		/* A time limit ended the session meanwhile; the mail is queued. */
		if (ok)
			msglog(s, &f, "accepted", "250 2.0.0", "queued, client gone", NULL);
		tx_reset(s);
		enter_state(s, SMTP_ST_HELO);
		reap(s);
		return;
	}
	if (ok) {
		reply(s, "250 2.0.0", "Ok: queued as %s", qid);
		msglog_entry(s, &f, "accepted", "250 2.0.0",
			     s->tx->note[0] != '\0' ? s->tx->note : "queued",
			     s->tx->note[0] != '\0' ? "rules" : NULL, NULL);
	} else {
		f.qid = NULL;
		refuse_tx(s, &f, tx_error_of_spool(err));
	}
	tx_reset(s);
	enter_state(s, SMTP_ST_HELO);
	s->flags &= ~SMTP_F_PAUSED;
	deadline_command(s);
	if (s->flags & SMTP_F_DRAINING) {
		reply(s, "421 4.3.2", "%s Service shutting down", s->srv->conf->hostname);
		close_session(s);
	} else if (!(s->flags & SMTP_F_CLOSING)) {
		bufferevent_enable(s->bev, EV_READ);
		process_input(s);
	}
	reap(s);
}

static void data_fatal(struct smtp_session *s, const char *what)
{
	struct logfacts f;

	log_warn(s->idstr, "smtp", "BARE %s from [%s]", what, s->addr);
	s->conv_stage = "data";
	tx_facts(s, &f);
	f.size = s->tx->data.size;
	refuse(s, &f, "554 5.5.2", "bare_newline",
	       strcmp(what, "LF") == 0
	       ? "Error: bare <LF> received in message data, closing"
	       : "Error: bare <CR> received in message data, closing");
	tx_reset(s);
	enter_state(s, SMTP_ST_HELO);
	close_session(s);
}

/* Feed buffered input to the DATA machine; 0 when it needs more input. */
static int feed_data(struct smtp_session *s)
{
	struct evbuffer *in = bufferevent_get_input(s->bev);
	struct smtp_tx *tx = s->tx;
	struct evbuffer_iovec vec;
	enum smtp_data_status st;
	size_t outlen;
	size_t used;
	size_t len;

	if (evbuffer_peek(in, -1, NULL, &vec, 1) < 1 || vec.iov_len == 0)
		return 0;
	/* The machine may produce one octet more than it is given. */
	len = vec.iov_len < s->srv->scratch_size - 1 ? vec.iov_len : s->srv->scratch_size - 1;
	st = smtp_data_feed(&tx->data, vec.iov_base, len, s->srv->scratch, &outlen, &used);
	if (outlen > 0 && spool_file_write(tx->file, s->srv->scratch, outlen) < 0 &&
	    tx->spool_error == SPOOL_OK) {
		/* Keep reading to the end; the message is deferred there. */
		tx->spool_error = spool_file_error(tx->file);
		log_error(s->idstr, "smtp", "spool write failed qid=%s error=%s",
			  spool_file_qid(tx->file),
			  tx->spool_error == SPOOL_ERR_NOSPACE ? "no-space" : "io");
	}
	if (outlen > 0 && s->pol != NULL)
		policy_data(s->pol, s->srv->scratch, outlen);
	evbuffer_drain(in, used);
	deadline_data_progress(s, used);
	switch (st) {
	case SMTP_DATA_MORE:
		return 1;
	case SMTP_DATA_END:
		end_of_data(s);
		return 1;
	case SMTP_DATA_BARE_LF:
		data_fatal(s, "LF");
		return 1;
	case SMTP_DATA_BARE_CR:
		data_fatal(s, "CR");
		return 1;
	}
	abort();
}

/*
 * Take one command line off the input; 0 when there is none yet.  Never
 * looks further than max_command_line octets for the LF: a longer line is
 * discarded as it arrives and answered once it ends.
 */
static int next_line(struct smtp_session *s)
{
	struct evbuffer *in = bufferevent_get_input(s->bev);
	size_t max = (size_t)s->srv->conf->max_command_line;
	size_t avail = evbuffer_get_length(in);
	size_t look = avail < max ? avail : max;
	const char *p;
	const char *lf;
	size_t len;

	if (avail == 0)
		return 0;
	p = (const char *)evbuffer_pullup(in, (ev_ssize_t)look);
	lf = memchr(p, '\n', look);
	if (lf == NULL) {
		if (avail >= max) {
			/* No end in sight within the limit: drop what we have. */
			evbuffer_drain(in, look);
			if (!(s->flags & SMTP_F_DISCARD))
				log_warn(s->idstr, "smtp", "LINE LENGTH LIMIT from [%s]", s->addr);
			s->flags |= SMTP_F_DISCARD;
			return 1;
		}
		return 0;
	}
	len = (size_t)(lf - p) + 1;
	if (s->flags & SMTP_F_DISCARD) {
		evbuffer_drain(in, len);
		deadline_command(s);
		s->flags &= ~SMTP_F_DISCARD;
		reply(s, "500 5.5.2", "Error: line too long");
		check_limits(s);
		return 1;
	}
	memcpy(s->srv->line, p, len);
	evbuffer_drain(in, len);
	deadline_command(s); /* the next line is awaited from now */
	len--; /* the LF */
	if (len > 0 && s->srv->line[len - 1] == '\r')
		len--;
	s->srv->line[len] = '\0';
	handle_line(s, s->srv->line, len);
	return 1;
}

static void process_input(struct smtp_session *s)
{
	while (!(s->flags & (SMTP_F_CLOSING | SMTP_F_PAUSED | SMTP_F_OUTWAIT))) {
		int progressed;

		if (evbuffer_get_length(bufferevent_get_output(s->bev)) > OUTPUT_HIGH) {
			/* A client that pipelines but never reads waits for itself. */
			s->flags |= SMTP_F_OUTWAIT;
			bufferevent_disable(s->bev, EV_READ);
			break;
		}
		if (s->state == SMTP_ST_DATA)
			progressed = feed_data(s);
		else
			progressed = next_line(s);
		if ((s->flags & SMTP_F_DRAINING) && s->state < SMTP_ST_DATA &&
		    !(s->flags & SMTP_F_CLOSING)) {
			reply(s, "421 4.3.2", "%s Service shutting down", s->srv->conf->hostname);
			close_session(s);
		}
		if (!progressed)
			break;
	}
}

/* --- shutdown ------------------------------------------------------------ */

void smtp_session_drain(struct smtp_session *s)
{
	if (s->flags & SMTP_F_CLOSING)
		return;
	if (s->state == SMTP_ST_DATA || s->state == SMTP_ST_COMMIT ||
	    s->state == SMTP_ST_CONTENT) {
		s->flags |= SMTP_F_DRAINING;
		return;
	}
	reply(s, "421 4.3.2", "%s Service shutting down", s->srv->conf->hostname);
	close_session(s);
	/* Flushed by the loop; reaped by write_cb once written. */
}

void smtp_session_kill(struct smtp_session *s)
{
	if (!(s->flags & SMTP_F_CLOSING)) {
		struct evbuffer *out = bufferevent_get_output(s->bev);

		evbuffer_add_printf(out, "421 4.3.2 %s Service shutting down\r\n",
				    s->srv->conf->hostname);
		/* Best effort: one non-blocking write, then the socket goes. */
		if (!(s->flags & SMTP_F_TLSBEV))
			(void)write_out(s);
	}
	session_free(s);
}
