/*
 * smtp_auth: SMTP AUTH (RFC 4954), mechanisms PLAIN and LOGIN, verified
 * against the directory's users (dir_user.password_hash, the Argon2id
 * strings the API writes; the check itself is the API's verify function,
 * handed over by main.c).
 *
 * Threads: the session side runs on the mail loop.  A password check
 * takes tens of milliseconds, so it runs on a worker (util/worker.h) with
 * its own SQLite connection (opened there on first use); done() on the
 * loop routes the answer to its session by id (the session may be gone).
 * While the check and the failure tarpit run the session is PAUSED.
 * Checks still queued at shutdown are dropped unchecked.
 *
 * Only the SASL exchange lives here.  What a login then may do (sender
 * binding, rate limits, suspension) is policy/'s: the outcome of each
 * exchange goes to policy_auth_login() / policy_auth_failed(), and the
 * AUTH step of the policy (failures per client address in a sliding
 * window, auth_fail_window; past auth_fail_max_per_addr the client gets
 * 421 and is closed) runs before an exchange starts.  Per account the
 * worker asks the login throttle the API uses too (store_auth_login_gate:
 * growing waits per (account, address), auth_fail_max_per_account over all
 * addresses but never for an address that logged in to the account
 * before); a throttled try gets 454 4.7.0 without a check.  Each failure is answered after
 * auth_fail_delay (a timer).
 *
 * Never: log a password, a decoded response or a failed account name; let
 * a password outlive its check (wiped); block the loop.
 */
#include "smtp_internal.h"

#include <ctype.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../conf/conf.h"
#include "../policy/policy.h"
#include "../log/log.h"
#include "../store/store.h"
#include "../store/store_auth.h"
#include "../util/util.h"
#include "../util/worker.h"

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
};

struct job {
	struct worker_job base;
	uint64_t sid;
	char user[AUTH_USER_MAX + 1];
	char pw[AUTH_PASS_MAX + 1];
	char addr[SMTP_ADDR_MAX + 1]; /* the client's address */
	int ran;               /* checked (not dropped at shutdown) */
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
	struct store *st;      /* worker thread only; opened on first use */
	struct worker *w;
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
	if (a == NULL)
		return;
	if (a->tarpit != NULL)
		event_free(a->tarpit);
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

static void check(struct smtp_authsrv *a, struct store **st, struct job *j)
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

static void run_job(struct worker_job *wj, void *arg)
{
	struct smtp_authsrv *a = arg;
	struct job *j = (struct job *)wj;

	/* Shutting down: nobody waits for the answer any more. */
	if (worker_stopping(a->w)) {
		explicit_bzero(j->pw, sizeof(j->pw));
		return;
	}
	check(a, &a->st, j);
	j->ran = 1;
}

/* ---- loop side ---------------------------------------------------------- */

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
		smtp_session_note(s, "auth", "throttled", NULL,
				  json_pack("{s:s}", "user", j->user));
		smtp_session_auth_resume(s);
		return;
	}
	if (j->ok) {
		strlcpy_s(s->auth_user, j->name, sizeof(s->auth_user));
		if (s->pol != NULL) {
			/* The addresses it may send as: policy/'s from here on. */
			policy_auth_login(s->pol, j->name, j->addrs, j->naddrs);
			j->addrs = NULL;
			j->naddrs = 0;
		}
		sa->step = AUTH_NONE;
		log_info(s->idstr, "smtp", "auth ok user=%s client=[%s]", s->auth_user, s->addr);
		smtp_session_note(s, "auth", "success", NULL,
				  json_pack("{s:s}", "user", s->auth_user));
		smtp_session_reply(s, "235 2.7.0", "Authentication successful");
		smtp_session_auth_resume(s);
		return;
	}
	if (s->pol != NULL)
		policy_auth_failed(s->pol);
	log_warn(s->idstr, "smtp", "AUTH FAILED from [%s]", s->addr);
	smtp_session_note(s, "auth", "failure", NULL, json_pack("{s:s}", "user", j->user));
	sa->step = AUTH_TARPIT;
	if (sa->tarpit == NULL)
		sa->tarpit = evtimer_new(s->srv->base, tarpit_cb, s);
	tv.tv_sec = (time_t)(conf->auth_fail_delay_ms / 1000);
	tv.tv_usec = (suseconds_t)(conf->auth_fail_delay_ms % 1000 * 1000);
	evtimer_add(sa->tarpit, &tv);
}

static void done_job(struct worker_job *wj, void *arg)
{
	struct smtp_authsrv *a = arg;
	struct job *j = (struct job *)wj;
	struct smtp_session *s = smtp_server_lookup(a->srv, j->sid);

	/* s may be gone, or closing: then the answer is dropped. */
	if (j->ran && s != NULL && s->auth != NULL && s->auth->step == AUTH_VERIFYING) {
		if (s->flags & SMTP_F_CLOSING) {
			s->auth->step = AUTH_NONE;
			smtp_session_auth_resume(s);
		} else {
			finish(s, j);
		}
	}
	job_free(j);
}

int smtp_server_set_auth(struct smtp_server *srv, const char *db_path,
			 int (*verify)(const char *hash, const char *password),
			 char *err, size_t errsz)
{
	static const struct worker_ops ops = { run_job, NULL, done_job, NULL, 0, 0 };
	struct smtp_authsrv *a = xcalloc(1, sizeof(*a));

	a->srv = srv;
	a->db_path = xstrdup(db_path);
	a->verify = verify;
	/* What a login may do is the policy's: no AUTH without it. */
	if (srv->policy == NULL) {
		snprintf(err, errsz, "auth: needs the policy engine");
		smtp_authsrv_free(a);
		return -1;
	}
	if (policy_set_accounts(srv->policy, srv->conf, db_path, err, errsz) < 0) {
		smtp_authsrv_free(a);
		return -1;
	}
	a->w = worker_new(srv->base, "auth", &ops, a, err, errsz);
	if (a->w == NULL) {
		smtp_authsrv_free(a);
		return -1;
	}
	srv->authsrv = a;
	return 0;
}

void smtp_authsrv_free(struct smtp_authsrv *a)
{
	if (a == NULL)
		return;
	worker_free(a->w); /* drops what is still queued; the thread is gone after */
	store_close(a->st);
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
	worker_submit(s->srv->authsrv->w, &j->base);
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
	const char *mech = cmd->args;
	const char *sp;
	const char *init = NULL;
	size_t mlen;
	size_t ilen = 0;

	/* Offered, TLS and the sequence: the session's command table. */
	if (s->auth_user[0] != '\0') {
		smtp_session_reply(s, "503 5.5.1", "Error: already authenticated");
		return;
	}
	if (s->pol != NULL) {
		struct policy_verdict v;

		if (policy_auth(s->pol, &v) != POLICY_CONTINUE) {
			smtp_session_reply(s, v.code, v.text);
			s->flags |= SMTP_F_CLOSING;
			bufferevent_disable(s->bev, EV_READ);
			return;
		}
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
