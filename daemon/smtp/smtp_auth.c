/*
 * smtp_auth: SMTP AUTH (RFC 4954), mechanisms PLAIN and LOGIN, verified
 * against the directory's users (dir_user.password_hash, the Argon2id
 * strings the API writes; the check itself is the API's verify function,
 * handed over by main.c).
 *
 * Threads: the session side runs on the mail loop.  A password check
 * takes tens of milliseconds, so it runs on one worker thread with its own
 * SQLite connection; the answer comes back through an event made active
 * from the worker, and is routed to its session by id (the session may be
 * gone).  While the check and the failure tarpit run the session is PAUSED.
 *
 * Limits: failures are counted per client address in a sliding window
 * (auth_fail_window, in memory); past auth_fail_max_per_addr the client
 * gets 421 and is closed.  Per account the worker asks the login throttle
 * the API uses too (store_auth_login_gate: growing waits per (account,
 * address), auth_fail_max_per_account over all addresses but never for an
 * address that logged in to the account before); a throttled try gets
 * 454 4.7.0 without a check.  Each failure is answered after
 * auth_fail_delay (a timer).
 *
 * Never: log a password, a decoded response or a failed account name; let
 * a password outlive its check (wiped); block the loop.
 */
#include "smtp_internal.h"

#include <ctype.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../account/account.h"
#include "../conf/conf.h"
#include "../dns/dns.h"
#include "../policy/policy.h"
#include "../log/log.h"
#include "../store/store.h"
#include "../store/store_auth.h"
#include "../util/util.h"

#define AUTH_USER_MAX 319
#define AUTH_PASS_MAX 512
#define AUTH_MAX_ADDRS 1000

/* Verified against when the account does not exist: the same work. */
static const char DUMMY_HASH[] =
	"$argon2id$v=19$m=19456,t=2,p=1$bW9hdC1kdW1teS1zYWx0AA"
	"$K8maelziD4SFfMd82RhYA8DlZGvhxQG1OCx9zbE0bn4";

enum auth_step {
	AUTH_NONE,
	AUTH_PLAIN_WAIT,  /* 334 sent, waiting for the PLAIN response */
	AUTH_LOGIN_USER,  /* 334 Username: */
	AUTH_LOGIN_PASS,  /* 334 Password: */
	AUTH_VERIFYING,   /* the worker has the job */
	AUTH_TARPIT,      /* failed; 535 when the timer fires */
};

struct smtp_auth {
	enum auth_step step;
	char user[AUTH_USER_MAX + 1];
	struct event *tarpit;
	char **addrs;          /* the user's directory addresses, lower case */
	size_t naddrs;
	/* recipient-domain check: the last domain looked up and its state */
	char dom[256];
	int dom_state;         /* DOM_* */
	int dom_step;          /* 0 MX, 1 A, 2 AAAA */
	/* From: binding: the header section as it arrives (bounded) */
	char *hdr;
	size_t hdrlen;
	int hdr_state;         /* HDR_* */
};

#define HDR_MAX (32 * 1024)
enum { HDR_OFF, HDR_READING, HDR_DONE, HDR_TOOBIG };

enum { DOM_NONE, DOM_PENDING, DOM_OK, DOM_DEAD, DOM_TEMPFAIL };

struct job {
	struct job *next;
	uint64_t sid;
	char user[AUTH_USER_MAX + 1];
	char pw[AUTH_PASS_MAX + 1];
	char addr[SMTP_ADDR_MAX + 1]; /* the client's address */
	int ok;
	int throttled;         /* refused unchecked by the login throttle */
	int64_t wait_ms;       /* when throttled: how long */
	char name[AUTH_USER_MAX + 1]; /* the canonical name, when ok */
	char **addrs;
	size_t naddrs;
};

struct smtp_authsrv {
	struct smtp_server *srv;
	char *db_path;
	int (*verify)(const char *hash, const char *pw);
	pthread_t thr;
	int started;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct job *todo;
	struct job **todo_tail;
	struct job *done;
	int stop;
	struct event *done_ev;
	struct account_win *fails;
	struct account_engine *accounts; /* rate limits, score, suspension */
};

static void job_free(struct job *j)
{
	size_t i;

	if (j == NULL)
		return;
	explicit_bzero(j->pw, sizeof(j->pw));
	for (i = 0; i < j->naddrs; i++)
		free(j->addrs[i]);
	free(j->addrs);
	free(j);
}

void smtp_auth_free(struct smtp_auth *a)
{
	size_t i;

	if (a == NULL)
		return;
	if (a->tarpit != NULL)
		event_free(a->tarpit);
	for (i = 0; i < a->naddrs; i++)
		free(a->addrs[i]);
	free(a->addrs);
	free(a->hdr);
	free(a);
}

/* ---- worker thread ------------------------------------------------------- */

static int addr_cb(const char *address, const char *kind, void *arg)
{
	struct job *j = arg;
	size_t k;
	char *c;

	(void)kind;
	if (j->naddrs >= AUTH_MAX_ADDRS)
		return 1;
	j->addrs = xrealloc(j->addrs, (j->naddrs + 1) * sizeof(char *));
	c = xstrdup(address);
	for (k = 0; c[k] != '\0'; k++)
		c[k] = (char)tolower((unsigned char)c[k]);
	j->addrs[j->naddrs++] = c;
	return 0;
}

/* The login throttle's verdict for j; -1 on a database error (fail closed). */
static int throttle_check(struct smtp_authsrv *a, struct store *st, struct job *j,
			  const char *account)
{
	const struct conf *conf = a->srv->conf;
	struct store_login_limits lim = {
		.window_ms = conf->auth_fail_window_ms,
		.max_per_addr = 0, /* counted on the loop: auth_fail_max_per_addr */
		.max_per_account = conf->auth_fail_max_per_account,
		.throttle_after = conf->login_throttle_after,
		.delay_ms = conf->login_throttle_delay_ms,
		.delay_max_ms = conf->login_throttle_delay_max_ms,
	};
	enum store_login_gate why;

	if (st == NULL ||
	    store_auth_login_gate(st, account, j->addr, time_now_ms(), &lim, &why,
				  &j->wait_ms) < 0) {
		if (st != NULL)
			log_error(NULL, "auth", "login throttle: %s", store_auth_errmsg(st));
		j->throttled = 1;
		j->wait_ms = 60000;
		return -1;
	}
	j->throttled = why != STORE_LOGIN_OK;
	return 0;
}

static void run_job(struct smtp_authsrv *a, struct store **st, struct job *j)
{
	struct store_user *u = xcalloc(1, sizeof(*u));
	char account[AUTH_USER_MAX + 1];
	char err[256];
	int found = 0;
	size_t k;

	if (*st == NULL) {
		*st = store_open(a->db_path, 0, err, sizeof(err));
		if (*st == NULL)
			log_error(NULL, "auth", "cannot open the database: %s", err);
	}
	for (k = 0; j->user[k] != '\0'; k++)
		account[k] = (char)tolower((unsigned char)j->user[k]);
	account[k] = '\0';
	if (throttle_check(a, *st, j, account) < 0 || j->throttled) {
		explicit_bzero(j->pw, sizeof(j->pw));
		free(u);
		return;
	}
	if (*st != NULL && store_auth_user_by_name(*st, j->user, u, &found) < 0) {
		log_error(NULL, "auth", "user lookup failed: %s", store_auth_errmsg(*st));
		found = 0;
	}
	if (found && u->has_password && !u->disabled) {
		j->ok = a->verify(u->password_hash, j->pw);
	} else {
		(void)a->verify(DUMMY_HASH, j->pw);
		j->ok = 0;
	}
	explicit_bzero(j->pw, sizeof(j->pw));
	if (*st != NULL &&
	    (j->ok ? store_auth_login_succeeded(*st, account, j->addr, time_now_ms()) :
	     store_auth_login_failed(*st, account, j->addr, time_now_ms())) < 0)
		log_error(NULL, "auth", "login record failed: %s", store_auth_errmsg(*st));
	if (j->ok) {
		strlcpy_s(j->name, u->name, sizeof(j->name));
		if (store_auth_user_addresses(*st, u->id, addr_cb, j) < 0)
			log_error(NULL, "auth", "address lookup failed: %s",
				  store_auth_errmsg(*st));
	}
	explicit_bzero(u, sizeof(*u));
	free(u);
}

static void *worker(void *arg)
{
	struct smtp_authsrv *a = arg;
	struct store *st = NULL;

	pthread_mutex_lock(&a->mu);
	for (;;) {
		struct job *j;

		while (a->todo == NULL && !a->stop)
			pthread_cond_wait(&a->cv, &a->mu);
		if (a->stop)
			break;
		j = a->todo;
		a->todo = j->next;
		if (a->todo == NULL)
			a->todo_tail = &a->todo;
		pthread_mutex_unlock(&a->mu);
		run_job(a, &st, j);
		pthread_mutex_lock(&a->mu);
		j->next = a->done;
		a->done = j;
		event_active(a->done_ev, EV_READ, 0);
	}
	pthread_mutex_unlock(&a->mu);
	store_close(st);
	return NULL;
}

/* ---- loop side ---------------------------------------------------------- */

static void fail_key(const struct smtp_session *s, char *ka, size_t kasz)
{
	snprintf(ka, kasz, "a:%s", s->addr);
}

static void tarpit_cb(evutil_socket_t fd, short what, void *arg)
{
	struct smtp_session *s = arg;

	(void)fd;
	(void)what;
	s->auth->step = AUTH_NONE;
	if (!(s->flags & SMTP_F_CLOSING))
		smtp_session_reply(s, "535 5.7.8", "Authentication credentials invalid");
	smtp_session_auth_resume(s);
}

static void finish(struct smtp_session *s, struct job *j)
{
	const struct conf *conf = s->srv->conf;
	struct smtp_auth *sa = s->auth;
	char ka[SMTP_ADDR_MAX + 4];
	struct timeval tv;

	if (j->throttled) {
		char text[120];

		sa->step = AUTH_NONE;
		log_warn(s->idstr, "smtp", "AUTH ACCOUNT LIMIT from [%s] retry_after=%lld",
			 s->addr, (long long)((j->wait_ms + 999) / 1000));
		snprintf(text, sizeof(text),
			 "Temporary authentication failure: too many failures, try again in %lld s",
			 (long long)((j->wait_ms + 999) / 1000));
		smtp_session_reply(s, "454 4.7.0", text);
		smtp_session_auth_resume(s);
		return;
	}
	if (j->ok) {
		strlcpy_s(s->auth_user, j->name, sizeof(s->auth_user));
		sa->addrs = j->addrs;
		sa->naddrs = j->naddrs;
		j->addrs = NULL;
		j->naddrs = 0;
		sa->step = AUTH_NONE;
		log_info(s->idstr, "smtp", "auth ok user=%s client=[%s]", s->auth_user, s->addr);
		smtp_session_reply(s, "235 2.7.0", "Authentication successful");
		smtp_session_auth_resume(s);
		return;
	}
	fail_key(s, ka, sizeof(ka));
	account_win_add(s->srv->authsrv->fails, ka, conf->auth_fail_window_ms, time_now_ms(), 1);
	log_warn(s->idstr, "smtp", "AUTH FAILED from [%s]", s->addr);
	sa->step = AUTH_TARPIT;
	if (sa->tarpit == NULL)
		sa->tarpit = evtimer_new(s->srv->base, tarpit_cb, s);
	tv.tv_sec = (time_t)(conf->auth_fail_delay_ms / 1000);
	tv.tv_usec = (suseconds_t)(conf->auth_fail_delay_ms % 1000 * 1000);
	evtimer_add(sa->tarpit, &tv);
}

static void done_cb(evutil_socket_t fd, short what, void *arg)
{
	struct smtp_authsrv *a = arg;
	struct job *list;

	(void)fd;
	(void)what;
	pthread_mutex_lock(&a->mu);
	list = a->done;
	a->done = NULL;
	pthread_mutex_unlock(&a->mu);
	while (list != NULL) {
		struct job *j = list;
		struct smtp_session *s = smtp_server_lookup(a->srv, j->sid);

		list = j->next;
		/* s may be gone, or closing: then the answer is dropped. */
		if (s != NULL && s->auth != NULL && s->auth->step == AUTH_VERIFYING) {
			if (s->flags & SMTP_F_CLOSING) {
				s->auth->step = AUTH_NONE;
				smtp_session_auth_resume(s);
			} else {
				finish(s, j);
			}
		}
		job_free(j);
	}
}

int smtp_server_set_auth(struct smtp_server *srv, const char *db_path,
			 int (*verify)(const char *hash, const char *password),
			 char *err, size_t errsz)
{
	struct smtp_authsrv *a = xcalloc(1, sizeof(*a));

	a->srv = srv;
	a->db_path = xstrdup(db_path);
	a->verify = verify;
	a->todo_tail = &a->todo;
	pthread_mutex_init(&a->mu, NULL);
	pthread_cond_init(&a->cv, NULL);
	a->done_ev = event_new(srv->base, -1, 0, done_cb, a);
	a->fails = account_win_new(100000);
	a->accounts = account_engine_new(srv->base, srv->conf, db_path, err, errsz);
	if (a->accounts == NULL) {
		smtp_authsrv_free(a);
		return -1;
	}
	if (pthread_create(&a->thr, NULL, worker, a) != 0) {
		snprintf(err, errsz, "auth: cannot start the worker thread");
		smtp_authsrv_free(a);
		return -1;
	}
	a->started = 1;
	srv->authsrv = a;
	return 0;
}

void smtp_authsrv_free(struct smtp_authsrv *a)
{
	if (a == NULL)
		return;
	if (a->started) {
		pthread_mutex_lock(&a->mu);
		a->stop = 1;
		pthread_cond_signal(&a->cv);
		pthread_mutex_unlock(&a->mu);
		pthread_join(a->thr, NULL);
	}
	while (a->todo != NULL) {
		struct job *j = a->todo;

		a->todo = j->next;
		job_free(j);
	}
	while (a->done != NULL) {
		struct job *j = a->done;

		a->done = j->next;
		job_free(j);
	}
	event_free(a->done_ev);
	account_win_free(a->fails);
	account_engine_free(a->accounts);
	pthread_mutex_destroy(&a->mu);
	pthread_cond_destroy(&a->cv);
	free(a->db_path);
	free(a);
}

/* Base64 (RFC 4648, padding required) into out; length or -1. */
static int b64_decode(const char *in, size_t len, char *out, size_t outsz)
{
	static const char alpha[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t i;
	size_t o = 0;
	unsigned v = 0;
	int bits = 0;
	size_t pad = 0;

	if (len % 4 != 0)
		return -1;
	for (i = 0; i < len; i++) {
		const char *p;

		if (in[i] == '=') {
			pad++;
			continue;
		}
		if (pad > 0 || in[i] == '\0')
			return -1; /* data after padding */
		p = strchr(alpha, in[i]);
		if (p == NULL)
			return -1;
		v = (v << 6) | (unsigned)(p - alpha);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (o >= outsz)
				return -1;
			out[o++] = (char)((v >> bits) & 0xff);
		}
	}
	if (pad > 2)
		return -1;
	return (int)o;
}

static void submit(struct smtp_session *s, const char *user, size_t ulen, const char *pw,
		   size_t plen)
{
	struct smtp_authsrv *a = s->srv->authsrv;
	struct smtp_auth *sa = s->auth;
	struct job *j;

	sa->step = AUTH_NONE;
	if (ulen == 0 || ulen > AUTH_USER_MAX || plen > AUTH_PASS_MAX ||
	    memchr(user, '\0', ulen) != NULL || memchr(pw, '\0', plen) != NULL) {
		smtp_session_reply(s, "501 5.5.2", "Malformed authentication response");
		return;
	}
	memcpy(sa->user, user, ulen);
	sa->user[ulen] = '\0';
	j = xcalloc(1, sizeof(*j));
	j->sid = s->id;
	strlcpy_s(j->addr, s->addr, sizeof(j->addr));
	memcpy(j->user, user, ulen);
	memcpy(j->pw, pw, plen);
	sa->step = AUTH_VERIFYING;
	s->flags |= SMTP_F_PAUSED;
	bufferevent_disable(s->bev, EV_READ);
	pthread_mutex_lock(&a->mu);
	*a->todo_tail = j;
	a->todo_tail = &j->next;
	pthread_cond_signal(&a->cv);
	pthread_mutex_unlock(&a->mu);
}

/* PLAIN: [authzid] NUL authcid NUL passwd; authzid must be empty or authcid. */
static void plain_response(struct smtp_session *s, const char *b64, size_t len)
{
	char buf[1024];
	const char *authcid;
	const char *pw;
	const char *nul1;
	const char *nul2;
	int n = b64_decode(b64, len, buf, sizeof(buf));

	if (n < 0) {
		s->auth->step = AUTH_NONE;
		smtp_session_reply(s, "501 5.5.2", "Cannot decode response");
		return;
	}
	nul1 = memchr(buf, '\0', (size_t)n);
	nul2 = nul1 != NULL ? memchr(nul1 + 1, '\0', (size_t)(buf + n - nul1 - 1)) : NULL;
	if (nul2 == NULL) {
		explicit_bzero(buf, sizeof(buf));
		s->auth->step = AUTH_NONE;
		smtp_session_reply(s, "501 5.5.2", "Malformed authentication response");
		return;
	}
	authcid = nul1 + 1;
	pw = nul2 + 1;
	if (nul1 != buf && ((size_t)(nul1 - buf) != (size_t)(nul2 - authcid) ||
			    memcmp(buf, authcid, (size_t)(nul1 - buf)) != 0)) {
		explicit_bzero(buf, sizeof(buf));
		s->auth->step = AUTH_NONE;
		smtp_session_reply(s, "535 5.7.8", "Authorization identity not permitted");
		return;
	}
	submit(s, authcid, (size_t)(nul2 - authcid), pw, (size_t)(buf + n - pw));
	explicit_bzero(buf, sizeof(buf));
}

int smtp_auth_in_exchange(const struct smtp_session *s)
{
	return s->auth != NULL && (s->auth->step == AUTH_PLAIN_WAIT ||
				   s->auth->step == AUTH_LOGIN_USER ||
				   s->auth->step == AUTH_LOGIN_PASS);
}

void smtp_auth_line(struct smtp_session *s, const char *line, size_t len)
{
	struct smtp_auth *sa = s->auth;
	char buf[AUTH_PASS_MAX + 4];
	int n;

	if (len == 1 && line[0] == '*') {
		sa->step = AUTH_NONE;
		smtp_session_reply(s, "501 5.7.0", "Authentication cancelled");
		return;
	}
	switch (sa->step) {
	case AUTH_PLAIN_WAIT:
		plain_response(s, line, len);
		return;
	case AUTH_LOGIN_USER:
		n = b64_decode(line, len, buf, sizeof(buf));
		if (n <= 0 || n > AUTH_USER_MAX || memchr(buf, '\0', (size_t)n) != NULL) {
			sa->step = AUTH_NONE;
			smtp_session_reply(s, "501 5.5.2", "Cannot decode response");
			return;
		}
		memcpy(sa->user, buf, (size_t)n);
		sa->user[n] = '\0';
		sa->step = AUTH_LOGIN_PASS;
		smtp_session_reply(s, "334", "UGFzc3dvcmQ6");
		return;
	case AUTH_LOGIN_PASS:
		n = b64_decode(line, len, buf, sizeof(buf));
		if (n < 0) {
			sa->step = AUTH_NONE;
			smtp_session_reply(s, "501 5.5.2", "Cannot decode response");
			return;
		}
		{
			char user[AUTH_USER_MAX + 1];

			strlcpy_s(user, sa->user, sizeof(user));
			submit(s, user, strlen(user), buf, (size_t)n);
		}
		explicit_bzero(buf, sizeof(buf));
		return;
	default:
		abort(); /* only called inside an exchange */
	}
}

void smtp_auth_command(struct smtp_session *s, const struct smtp_command *cmd)
{
	const struct conf *conf = s->srv->conf;
	char ka[SMTP_ADDR_MAX + 4];
	const char *mech = cmd->args;
	const char *sp;
	const char *init = NULL;
	size_t mlen;
	size_t ilen = 0;

	if (s->srv->authsrv == NULL) {
		smtp_session_reply(s, "502 5.5.1", "Error: command not implemented");
		return;
	}
	if (!s->tls && !conf->auth_allow_plaintext) {
		smtp_session_reply(s, "538 5.7.11", "Encryption required: issue STARTTLS first");
		return;
	}
	if (s->state == SMTP_ST_INIT) {
		smtp_session_reply(s, "503 5.5.1", "Error: send HELO/EHLO first");
		return;
	}
	if (s->auth_user[0] != '\0') {
		smtp_session_reply(s, "503 5.5.1", "Error: already authenticated");
		return;
	}
	if (s->state != SMTP_ST_HELO) {
		smtp_session_reply(s, "503 5.5.1", "Error: MAIL transaction in progress");
		return;
	}
	fail_key(s, ka, sizeof(ka));
	if (account_win_count(s->srv->authsrv->fails, ka, conf->auth_fail_window_ms,
			      time_now_ms()) >= conf->auth_fail_max_per_addr) {
		log_warn(s->idstr, "smtp", "AUTH ADDRESS LIMIT from [%s]", s->addr);
		smtp_session_reply(s, "421 4.7.0", "Too many authentication failures, closing");
		s->flags |= SMTP_F_CLOSING;
		bufferevent_disable(s->bev, EV_READ);
		return;
	}
	if (cmd->argslen == 0) {
		smtp_session_reply(s, "501 5.5.4", "Syntax: AUTH mechanism [initial-response]");
		return;
	}
	sp = memchr(cmd->args, ' ', cmd->argslen);
	mlen = sp != NULL ? (size_t)(sp - mech) : cmd->argslen;
	if (sp != NULL) {
		init = sp + 1;
		ilen = cmd->argslen - mlen - 1;
	}
	if (s->auth == NULL)
		s->auth = xcalloc(1, sizeof(*s->auth));
	if (mlen == 5 && strncasecmp(mech, "PLAIN", 5) == 0) {
		if (init == NULL) {
			s->auth->step = AUTH_PLAIN_WAIT;
			smtp_session_reply(s, "334", "");
		} else if (ilen == 1 && init[0] == '=') {
			plain_response(s, "", 0);
		} else {
			plain_response(s, init, ilen);
		}
	} else if (mlen == 5 && strncasecmp(mech, "LOGIN", 5) == 0) {
		s->auth->step = AUTH_LOGIN_USER;
		if (init == NULL)
			smtp_session_reply(s, "334", "VXNlcm5hbWU6");
		else
			smtp_auth_line(s, init, ilen);
	} else {
		smtp_session_reply(s, "504 5.5.4", "Unrecognized authentication type");
	}
}

int smtp_auth_sender_ok(const struct smtp_session *s, const char *sender)
{
	size_t i;

	if (s->auth == NULL || sender[0] == '\0')
		return 0;
	for (i = 0; i < s->auth->naddrs; i++)
		if (strcasecmp(s->auth->addrs[i], sender) == 0)
			return 1;
	return 0;
}

/* ---- authenticated MAIL and RCPT: binding, limits, score, dead domains ---- */

int smtp_auth_mail(struct smtp_session *s, const char *sender, struct account_reply *r)
{
	int bound = smtp_auth_sender_ok(s, sender);

	if (!bound)
		log_warn(s->idstr, "smtp", "SENDER BINDING user=%s from [%s]", s->auth_user,
			 s->addr);
	return account_mail(s->srv->authsrv->accounts, s->auth_user, s->addr, sender, bound, r)
		== ACCOUNT_OK ? 0 : -1;
}

int smtp_auth_suspended(struct smtp_session *s)
{
	return s->auth_user[0] != '\0' &&
	       account_suspended(s->srv->authsrv->accounts, s->auth_user);
}

static void dom_cb(const struct dns_result *res, uint64_t cookie, void *ctx)
{
	struct smtp_server *srv = ctx;
	struct smtp_session *s;
	struct smtp_auth *sa;
	static const enum dns_type next[] = { DNS_A, DNS_AAAA };

	if (res->status == DNS_CANCELLED)
		return; /* dns_free() at shutdown: srv may be gone already */
	s = smtp_server_lookup(srv, cookie);
	if (s == NULL || s->auth == NULL || s->auth->dom_state != DOM_PENDING)
		return; /* the session went, or moved on */
	sa = s->auth;
	if (res->status == DNS_TEMPFAIL) {
		sa->dom_state = DOM_TEMPFAIL;
	} else if (res->status == DNS_OK && res->type == DNS_MX) {
		/* RFC 7505: a single MX with the root as host says "no mail". */
		sa->dom_state = res->count == 1 && res->u.mx[0].host[0] == '\0' ? DOM_DEAD : DOM_OK;
	} else if (res->status == DNS_OK) {
		sa->dom_state = DOM_OK;
	} else if (res->status == DNS_NXDOMAIN || res->status == DNS_BADNAME ||
		   sa->dom_step >= 2) {
		sa->dom_state = DOM_DEAD;
	} else {
		/* NODATA: no MX, then A, then AAAA (RFC 5321 5.1 implicit MX). */
		dns_query(srv->dns, sa->dom, next[sa->dom_step++], dom_cb, s->id, srv);
		return;
	}
	smtp_session_policy_resume(s);
}

int smtp_auth_rcpt_domain(struct smtp_session *s, const char *rcpt, struct account_reply *r)
{
	struct smtp_auth *sa = s->auth;
	const char *at = strrchr(rcpt, '@');
	const char *dom;
	size_t i;

	memset(r, 0, sizeof(*r));
	if (s->auth_user[0] == '\0' || sa == NULL || s->srv->dns == NULL ||
	    !s->srv->conf->recipient_domain_check || at == NULL)
		return 0;
	dom = at + 1;
	if (dom[0] == '[' || strlen(dom) >= sizeof(sa->dom) ||
	    (s->pol != NULL && policy_sess_local_domain(s->pol, dom)))
		return 0; /* address literals and our own domains are not checked */
	if (sa->dom_state == DOM_NONE || strcasecmp(sa->dom, dom) != 0) {
		for (i = 0; dom[i] != '\0'; i++)
			sa->dom[i] = (char)tolower((unsigned char)dom[i]);
		sa->dom[i] = '\0';
		sa->dom_state = DOM_PENDING;
		sa->dom_step = 0;
		dns_query(s->srv->dns, sa->dom, DNS_MX, dom_cb, s->id, s->srv);
		return 1;
	}
	switch (sa->dom_state) {
	case DOM_PENDING:
		return 1;
	case DOM_OK:
		return 0;
	case DOM_TEMPFAIL:
		sa->dom_state = DOM_NONE; /* ask again next time */
		strlcpy_s(r->code, "451 4.4.3", sizeof(r->code));
		snprintf(r->text, sizeof(r->text),
			 "Recipient domain %.200s: DNS lookup failed, try again later", sa->dom);
		strlcpy_s(r->check, "rcpt_domain", sizeof(r->check));
		return -1;
	default:
		(void)account_rcpt(s->srv->authsrv->accounts, s->auth_user, s->addr, rcpt, 1, r);
		if (r->code[0] == '\0') {
			strlcpy_s(r->code, "550 5.1.2", sizeof(r->code));
			snprintf(r->text, sizeof(r->text),
				 "Recipient address rejected: domain %.180s does not accept mail",
				 sa->dom);
			strlcpy_s(r->check, "rcpt_domain", sizeof(r->check));
		}
		return -1;
	}
}

int smtp_auth_rcpt(struct smtp_session *s, const char *rcpt, struct account_reply *r)
{
	return account_rcpt(s->srv->authsrv->accounts, s->auth_user, s->addr, rcpt, 0, r)
		== ACCOUNT_OK ? 0 : -1;
}

/* ---- From: header binding (auth_bind_from_header) ------------------------- */

/* One element of an address list: the <angle> part, else the bare addr-spec. */
static int emit(const char *ang, size_t alen, const char *plain, size_t plen,
		void (*cb)(const char *, size_t, void *), void *arg)
{
	while (plen > 0 && (plain[0] == ' ' || plain[0] == '\t')) {
		plain++;
		plen--;
	}
	while (plen > 0 && (plain[plen - 1] == ' ' || plain[plen - 1] == '\t'))
		plen--;
	if (ang != NULL) {
		cb(ang, alen, arg);
		return 1;
	}
	if (plen > 0 && memchr(plain, '@', plen) != NULL) {
		cb(plain, plen, arg);
		return 1;
	}
	return 0;
}

/* RFC 5322 address-list in v[0..n): quoted strings and comments skipped. */
static int parse_list(const char *v, size_t n, void (*cb)(const char *, size_t, void *),
		      void *arg)
{
	char plain[1024];
	size_t plen = 0;
	const char *ang = NULL;
	size_t alen = 0;
	int depth = 0;
	int count = 0;
	size_t i;

	for (i = 0; i < n; i++) {
		char c = v[i];

		if (depth > 0) {
			if (c == '\\')
				i++;
			else if (c == '(')
				depth++;
			else if (c == ')')
				depth--;
			continue;
		}
		if (c == '"') {
			for (i++; i < n && v[i] != '"'; i++)
				if (v[i] == '\\')
					i++;
			continue;
		}
		if (c == '(') {
			depth = 1;
			continue;
		}
		if (c == '<') {
			const char *end = memchr(v + i + 1, '>', n - i - 1);

			if (end == NULL)
				return count; /* unterminated: the rest is not an address */
			ang = v + i + 1;
			alen = (size_t)(end - ang);
			i = (size_t)(end - v);
			continue;
		}
		if (c == ':') {
			plen = 0; /* a group's display name */
			continue;
		}
		if (c == ',' || c == ';') {
			count += emit(ang, alen, plain, plen, cb, arg);
			ang = NULL;
			plen = 0;
			continue;
		}
		if (plen < sizeof(plain))
			plain[plen++] = c;
	}
	count += emit(ang, alen, plain, plen, cb, arg);
	return count;
}

int smtp_from_addresses(const char *hdr, size_t len,
			void (*cb)(const char *addr, size_t alen, void *arg), void *arg)
{
	size_t i = 0;

	while (i < len) {
		const char *lf = memchr(hdr + i, '\n', len - i);
		size_t eol = lf != NULL ? (size_t)(lf - hdr) : len;

		if (eol == i || (eol == i + 1 && hdr[i] == '\r'))
			break; /* the empty line: end of the header section */
		if (eol - i >= 5 && strncasecmp(hdr + i, "From:", 5) == 0) {
			char val[4096];
			size_t vn = 0;
			size_t j = i + 5;

			/* Unfold: continuation lines start with SP or HT. */
			for (;;) {
				for (; j < eol && vn < sizeof(val); j++)
					val[vn++] = hdr[j] == '\r' ? ' ' : hdr[j];
				if (eol + 1 < len && (hdr[eol + 1] == ' ' || hdr[eol + 1] == '\t')) {
					j = eol + 1;
					lf = memchr(hdr + j, '\n', len - j);
					eol = lf != NULL ? (size_t)(lf - hdr) : len;
					continue;
				}
				break;
			}
			return parse_list(val, vn, cb, arg);
		}
		i = eol + 1;
	}
	return -1;
}

void smtp_auth_data_start(struct smtp_session *s)
{
	struct smtp_auth *sa = s->auth;

	if (sa == NULL)
		return;
	sa->hdrlen = 0;
	sa->hdr_state = HDR_OFF;
	if (s->auth_user[0] == '\0' || !s->srv->conf->auth_bind_from_header)
		return;
	if (sa->hdr == NULL)
		sa->hdr = xmalloc(HDR_MAX);
	sa->hdr_state = HDR_READING;
}

void smtp_auth_data(struct smtp_session *s, const char *p, size_t len)
{
	struct smtp_auth *sa = s->auth;
	size_t from;
	size_t i;

	if (sa == NULL || sa->hdr_state != HDR_READING)
		return;
	if (len > HDR_MAX - sa->hdrlen) {
		len = HDR_MAX - sa->hdrlen;
		sa->hdr_state = HDR_TOOBIG;
	}
	from = sa->hdrlen > 3 ? sa->hdrlen - 3 : 0;
	memcpy(sa->hdr + sa->hdrlen, p, len);
	sa->hdrlen += len;
	if (sa->hdrlen >= 2 && sa->hdr[0] == '\r' && sa->hdr[1] == '\n') {
		sa->hdr_state = HDR_DONE; /* no header at all */
		return;
	}
	for (i = from; i + 3 < sa->hdrlen; i++) {
		if (memcmp(sa->hdr + i, "\r\n\r\n", 4) == 0) {
			sa->hdr_state = HDR_DONE;
			return;
		}
	}
}

struct from_check {
	const struct smtp_session *s;
	char bad[SMTP_PATH_MAX + 1];
	int nbad;
};

static void from_cb(const char *addr, size_t alen, void *arg)
{
	struct from_check *fc = arg;
	char a[SMTP_PATH_MAX + 1];

	if (alen > SMTP_PATH_MAX)
		alen = SMTP_PATH_MAX;
	memcpy(a, addr, alen);
	a[alen] = '\0';
	if (!smtp_auth_sender_ok(fc->s, a)) {
		if (fc->nbad++ == 0)
			strlcpy_s(fc->bad, a, sizeof(fc->bad));
	}
}

int smtp_auth_data_end(struct smtp_session *s, struct account_reply *r)
{
	struct smtp_auth *sa = s->auth;
	struct from_check fc;
	int n;

	memset(r, 0, sizeof(*r));
	if (sa == NULL || sa->hdr_state == HDR_OFF)
		return 0;
	memset(&fc, 0, sizeof(fc));
	fc.s = s;
	n = smtp_from_addresses(sa->hdr, sa->hdrlen, from_cb, &fc);
	sa->hdr_state = HDR_OFF;
	if (n <= 0) {
		strlcpy_s(r->code, "550 5.6.0", sizeof(r->code));
		strlcpy_s(r->text, "Message refused: no usable From: header", sizeof(r->text));
		strlcpy_s(r->check, "from_binding", sizeof(r->check));
		return -1;
	}
	if (fc.nbad == 0)
		return 0;
	log_warn(s->idstr, "smtp", "FROM BINDING user=%s from [%s]", s->auth_user, s->addr);
	(void)account_from_refused(s->srv->authsrv->accounts, s->auth_user, fc.bad, r);
	return -1;
}
