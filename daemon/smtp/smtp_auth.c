/*
 * smtp_auth: SMTP AUTH (RFC 4954), mechanisms PLAIN and LOGIN, verified
 * against the directory's users (dir_user.password_hash, the Argon2id
 * strings the API writes; the check itself is the API's verify function,
 * handed over by main.c).
 *
 * Threads: the session side runs on the mail loop.  A password check
 * takes tens of milliseconds, so it runs on one of auth_workers workers
 * (util/worker.h, one thread each, the one with the fewest jobs is given
 * the next), each with its own SQLite connection (opened there on first
 * use); done() on the loop routes the answer to its session by id (the
 * session may be gone).  While a check or the failure tarpit runs the
 * session is PAUSED.  Checks still queued at shutdown are dropped unchecked.
 *
 * What keeps a hammering client from costing a hash per try (all on the
 * loop, before any job):
 *   - a suspended account (policy_auth_suspended) is refused at once with
 *     535 "account suspended", not counted as a failure of the address;
 *   - the credential cache: HMAC-SHA256(key random per process, user NUL
 *     password NUL client address) -> success (canonical name and the
 *     addresses the check loaded) or failure, for auth_cache_ttl /
 *     auth_cache_negative_ttl, at most auth_cache_size entries (least
 *     recently used out).  The client address is part of the key so that
 *     a cached success never answers an address the login throttle would
 *     have stopped (no free oracle for guesses).  The cache is emptied when
 *     the directory's stamp (store_auth_dir_stamp: users, addresses,
 *     password changes, disabled users) changes; a worker reads it every
 *     second, and a check that was under way across a change is not cached;
 *   - one check in flight per account (lower-cased name): a second exchange
 *     with the same key waits for that check's answer (coalesced), others
 *     wait their turn on the loop, at most AUTH_QUEUE_MAX of them (past it
 *     454 at once).  So the workers' queues never hold two jobs of one
 *     account.
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
 * before); a throttled try gets 454 4.7.0 without a check.  An answer from
 * the cache neither consults nor feeds that throttle (it costs nothing and
 * repeats a known answer).  Only failures a check found count for the
 * address (policy_auth_failed): the same wrong password again, from the
 * cache or coalesced, is a stale password, not a guess.  Each failure is
 * answered after auth_fail_delay (a timer).  From AUTH on a session counts
 * against its account, not its address (count_as_account).
 *
 * Never: log a password, a decoded response or a failed account name; keep
 * a password anywhere but in its job until checked (wiped), nor in the
 * cache (only the HMAC); block the loop.
 */
#include "smtp_internal.h"

#include <ctype.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../conf/conf.h"
#include "../policy/policy.h"
#include "../log/log.h"
#include "../store/store.h"
#include "../store/store_auth.h"
#include "../util/stats.h"
#include "../util/util.h"
#include "../util/worker.h"

#define AUTH_USER_MAX 319
#define AUTH_PASS_MAX 512
#define AUTH_MAX_ADDRS 1000
#define AUTH_KEY_LEN 32
#define AUTH_QUEUE_MAX 32      /* exchanges waiting behind one account's check */
#define AUTH_WORKERS_MAX 16
#define FLIGHT_BUCKETS 1024
#define STAMP_MS 1000          /* how often the directory stamp is read */

/* Verified against when the account does not exist: the same work. */
static const char DUMMY_HASH[] =
	"$argon2id$v=19$m=19456,t=2,p=1$bW9hdC1kdW1teS1zYWx0AA"
	"$K8maelziD4SFfMd82RhYA8DlZGvhxQG1OCx9zbE0bn4";

enum auth_step {
	AUTH_NONE,
	AUTH_PLAIN_WAIT,  /* 334 sent, waiting for the PLAIN response */
	AUTH_LOGIN_USER,  /* 334 Username: */
	AUTH_LOGIN_PASS,  /* 334 Password: */
	AUTH_VERIFYING,   /* waiting for a check (a worker's, or the account's turn) */
	AUTH_TARPIT,      /* refused; the reply when the timer fires */
};

struct smtp_auth {
	enum auth_step step;
	char user[AUTH_USER_MAX + 1];
	struct event *tarpit;
	const char *tarpit_code;  /* static strings */
	const char *tarpit_text;
};

enum job_kind { JOB_CHECK, JOB_STAMP };

struct authw;

struct job {
	struct worker_job base;
	enum job_kind kind;
	struct job *qnext;     /* loop: the account's waiting list */
	uint64_t sid;
	uint64_t epoch;        /* the cache's epoch when the check was handed over */
	unsigned char key[AUTH_KEY_LEN];
	char account[AUTH_USER_MAX + 1]; /* lower case: the per-account turn */
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
	struct store_auth_stamp stamp; /* JOB_STAMP: read when ok */
};

/* One account's turn: the check in flight and who waits behind it. */
struct flight {
	struct flight *next;
	char account[AUTH_USER_MAX + 1];
	struct job *running;   /* handed to a worker; NULL between turns */
	struct job *head;
	struct job **tail;
	size_t n;
};

struct centry {
	struct centry *hnext;  /* bucket chain */
	struct centry *prev;   /* LRU list: head is the most recent */
	struct centry *next;
	unsigned char key[AUTH_KEY_LEN];
	int ok;
	int64_t expires;       /* monotonic ms */
	char *name;            /* canonical name, when ok */
	char **addrs;
	size_t naddrs;
};

struct authw {
	struct smtp_authsrv *a;
	struct worker *w;
	struct store *st;      /* worker thread only; opened on first use */
	size_t inflight;       /* loop: jobs handed over, not yet done */
};

struct smtp_authsrv {
	struct smtp_server *srv;
	char *db_path;
	int (*verify)(const char *hash, const char *pw);
	struct authw *aw[AUTH_WORKERS_MAX];
	size_t naw;
	int stopping;          /* smtp_authsrv_free() has begun */
	unsigned char hmac_key[AUTH_KEY_LEN];

	struct flight *flights[FLIGHT_BUCKETS];

	struct centry **ctab;  /* NULL: no cache */
	size_t cbuckets;
	size_t csize;          /* entries now */
	struct centry *lru_head;
	struct centry *lru_tail;
	uint64_t epoch;        /* bumped whenever the cache is emptied */
	struct store_auth_stamp stamp;
	int have_stamp;
	int stamp_busy;
	struct event *stamp_ev;
};

static void free_addrs(char **addrs, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(addrs[i]);
	free(addrs);
}

static char **copy_addrs(char *const *addrs, size_t n)
{
	char **c;
	size_t i;

	if (n == 0)
		return NULL;
	c = xcalloc(n, sizeof(*c));
	for (i = 0; i < n; i++)
		c[i] = xstrdup(addrs[i]);
	return c;
}

static void job_free(struct job *j)
{
	if (j == NULL)
		return;
	explicit_bzero(j->pw, sizeof(j->pw));
	explicit_bzero(j->key, sizeof(j->key));
	free_addrs(j->addrs, j->naddrs);
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
static int throttle_check(struct smtp_authsrv *a, struct store *st, struct job *j)
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
	    store_auth_login_gate(st, j->account, j->addr, time_now_ms(), &lim, &why,
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

static struct store *worker_store(struct authw *aw)
{
	char err[256];

	if (aw->st == NULL) {
		aw->st = store_open(aw->a->db_path, 0, err, sizeof(err));
		if (aw->st == NULL)
			log_error(NULL, "auth", "cannot open the database: %s", err);
	}
	return aw->st;
}

static void check(struct authw *aw, struct job *j)
{
	struct smtp_authsrv *a = aw->a;
	struct store *st = worker_store(aw);
	struct store_user *u = xcalloc(1, sizeof(*u));
	int found = 0;

	if (throttle_check(a, st, j) < 0 || j->throttled) {
		explicit_bzero(j->pw, sizeof(j->pw));
		free(u);
		return;
	}
	if (st != NULL && store_auth_user_by_name(st, j->user, u, &found) < 0) {
		log_error(NULL, "auth", "user lookup failed: %s", store_auth_errmsg(st));
		found = 0;
	}
	if (found && u->has_password && !u->disabled) {
		j->ok = a->verify(u->password_hash, j->pw);
	} else {
		(void)a->verify(DUMMY_HASH, j->pw);
		j->ok = 0;
	}
	stats_add(STATS_AUTH_CHECKS, 1);
	explicit_bzero(j->pw, sizeof(j->pw));
	if (st != NULL &&
	    (j->ok ? store_auth_login_succeeded(st, j->account, j->addr, time_now_ms()) :
	     store_auth_login_failed(st, j->account, j->addr, time_now_ms())) < 0)
		log_error(NULL, "auth", "login record failed: %s", store_auth_errmsg(st));
	if (j->ok) {
		strlcpy_s(j->name, u->name, sizeof(j->name));
		if (store_auth_user_addresses(st, u->id, addr_cb, j) < 0)
			log_error(NULL, "auth", "address lookup failed: %s",
				  store_auth_errmsg(st));
	}
	explicit_bzero(u, sizeof(*u));
	free(u);
}

static void run_job(struct worker_job *wj, void *arg)
{
	struct authw *aw = arg;
	struct job *j = (struct job *)wj;
	struct store *st;

	/* Shutting down: nobody waits for the answer any more. */
	if (worker_stopping(aw->w)) {
		explicit_bzero(j->pw, sizeof(j->pw));
		return;
	}
	if (j->kind == JOB_STAMP) {
		st = worker_store(aw);
		j->ok = st != NULL && store_auth_dir_stamp(st, &j->stamp) == 0;
		if (st != NULL && !j->ok)
			log_error(NULL, "auth", "directory stamp: %s", store_auth_errmsg(st));
	} else {
		check(aw, j);
	}
	j->ran = 1;
}

/* ---- loop side: the credential cache --------------------------------------- */

static void key_of(const struct smtp_authsrv *a, const char *user, size_t ulen,
		   const char *pw, size_t plen, const char *addr, unsigned char out[AUTH_KEY_LEN])
{
	unsigned char buf[AUTH_USER_MAX + 1 + AUTH_PASS_MAX + 1 + SMTP_ADDR_MAX + 1];
	size_t alen = strlen(addr);
	size_t n = 0;
	unsigned int olen = AUTH_KEY_LEN;

	/* Lengths are bounded by submit() and the session's address field. */
	if (ulen > AUTH_USER_MAX || plen > AUTH_PASS_MAX || alen > SMTP_ADDR_MAX)
		abort();
	memcpy(buf + n, user, ulen);
	n += ulen;
	buf[n++] = '\0';
	memcpy(buf + n, pw, plen);
	n += plen;
	buf[n++] = '\0';
	memcpy(buf + n, addr, alen);
	n += alen;
	if (HMAC(EVP_sha256(), a->hmac_key, AUTH_KEY_LEN, buf, n, out, &olen) == NULL ||
	    olen != AUTH_KEY_LEN)
		abort(); /* HMAC-SHA256 over memory cannot fail */
	explicit_bzero(buf, sizeof(buf));
}

static size_t cbucket(const struct smtp_authsrv *a, const unsigned char *key)
{
	uint64_t h;

	memcpy(&h, key, sizeof(h)); /* an HMAC: already uniform */
	return (size_t)(h % a->cbuckets);
}

static void lru_unlink(struct smtp_authsrv *a, struct centry *e)
{
	if (e->prev != NULL)
		e->prev->next = e->next;
	else
		a->lru_head = e->next;
	if (e->next != NULL)
		e->next->prev = e->prev;
	else
		a->lru_tail = e->prev;
	e->prev = NULL;
	e->next = NULL;
}

static void lru_push(struct smtp_authsrv *a, struct centry *e)
{
	e->prev = NULL;
	e->next = a->lru_head;
	if (a->lru_head != NULL)
		a->lru_head->prev = e;
	a->lru_head = e;
	if (a->lru_tail == NULL)
		a->lru_tail = e;
}

static void centry_remove(struct smtp_authsrv *a, struct centry *e)
{
	struct centry **pp = &a->ctab[cbucket(a, e->key)];

	while (*pp != e)
		pp = &(*pp)->hnext;
	*pp = e->hnext;
	lru_unlink(a, e);
	free(e->name);
	free_addrs(e->addrs, e->naddrs);
	free(e);
	a->csize--;
}

static void cache_flush(struct smtp_authsrv *a)
{
	a->epoch++;
	while (a->lru_head != NULL)
		centry_remove(a, a->lru_head);
}

/* A live entry for key, made the most recent; NULL when none. */
static struct centry *cache_get(struct smtp_authsrv *a, const unsigned char *key)
{
	struct centry *e;

	if (a->ctab == NULL)
		return NULL;
	for (e = a->ctab[cbucket(a, key)]; e != NULL; e = e->hnext)
		if (memcmp(e->key, key, AUTH_KEY_LEN) == 0)
			break;
	if (e == NULL)
		return NULL;
	if (e->expires <= time_mono_ms()) {
		centry_remove(a, e);
		return NULL;
	}
	lru_unlink(a, e);
	lru_push(a, e);
	return e;
}

static void cache_put(struct smtp_authsrv *a, const struct job *j)
{
	const struct conf *conf = a->srv->conf;
	int64_t ttl = j->ok ? conf->auth_cache_ttl_ms : conf->auth_cache_negative_ttl_ms;
	struct centry *e;
	size_t b;

	if (a->ctab == NULL || ttl <= 0)
		return;
	e = cache_get(a, j->key);
	if (e != NULL)
		centry_remove(a, e);
	while (a->csize >= (size_t)conf->auth_cache_size && a->lru_tail != NULL)
		centry_remove(a, a->lru_tail);
	e = xcalloc(1, sizeof(*e));
	memcpy(e->key, j->key, AUTH_KEY_LEN);
	e->ok = j->ok;
	e->expires = time_mono_ms() + ttl;
	if (j->ok) {
		e->name = xstrdup(j->name);
		e->addrs = copy_addrs(j->addrs, j->naddrs);
		e->naddrs = j->naddrs;
	}
	b = cbucket(a, e->key);
	e->hnext = a->ctab[b];
	a->ctab[b] = e;
	lru_push(a, e);
	a->csize++;
}

/* ---- loop side: answers ---------------------------------------------------- */

static void tarpit_cb(evutil_socket_t fd, short what, void *arg)
{
	struct smtp_session *s = arg;

	(void)fd;
	(void)what;
	s->auth->step = AUTH_NONE;
	if (!(s->flags & SMTP_F_CLOSING))
		smtp_session_reply(s, s->auth->tarpit_code, s->auth->tarpit_text);
	smtp_session_auth_resume(s);
}

/* Answer code/text after auth_fail_delay, without holding the loop. */
static void tarpit(struct smtp_session *s, const char *code, const char *text)
{
	const struct conf *conf = s->srv->conf;
	struct smtp_auth *sa = s->auth;
	struct timeval tv;

	sa->step = AUTH_TARPIT;
	sa->tarpit_code = code;
	sa->tarpit_text = text;
	if (!(s->flags & SMTP_F_PAUSED)) {
		s->flags |= SMTP_F_PAUSED;
		bufferevent_disable(s->bev, EV_READ);
	}
	if (sa->tarpit == NULL)
		sa->tarpit = evtimer_new(s->srv->base, tarpit_cb, s);
	tv.tv_sec = (time_t)(conf->auth_fail_delay_ms / 1000);
	tv.tv_usec = (suseconds_t)(conf->auth_fail_delay_ms % 1000 * 1000);
	evtimer_add(sa->tarpit, &tv);
}

/*
 * From AUTH on (a login, or a suspended account's refusal) a session counts
 * against its account, not its client address, under the same
 * max_sessions_per_client: offices share one NAT address, and one
 * account's bot must not take its neighbours' places.  0, or -1 when the
 * account already has that many (421 sent, the session closing).
 */
static int count_as_account(struct smtp_session *s, const char *user)
{
	char key[SMTP_COUNT_KEY_MAX];
	size_t i;

	key[0] = '@';
	for (i = 0; user[i] != '\0' && i + 2 < sizeof(key); i++)
		key[i + 1] = (char)tolower((unsigned char)user[i]);
	key[i + 1] = '\0';
	if (smtp_server_client_rekey(s->srv, s, key) <= s->srv->conf->max_sessions_per_client)
		return 0;
	log_warn(s->idstr, "smtp", "ACCOUNT SESSION LIMIT from [%s]", s->addr);
	smtp_session_reply(s, "421 4.7.0", "Too many connections for this account, try again later");
	s->flags |= SMTP_F_CLOSING;
	bufferevent_disable(s->bev, EV_READ);
	return -1;
}

/*
 * resume: the session was paused for the answer (a check's done()); else
 * the answer comes within the AUTH command itself, which must not resume
 * (the session's input loop is still on the stack).
 */
static void login_ok(struct smtp_session *s, const char *name, char *const *addrs,
		     size_t naddrs, const char *via, int resume)
{
	if (count_as_account(s, name) < 0) {
		s->auth->step = AUTH_NONE;
		if (resume)
			smtp_session_auth_resume(s);
		return;
	}
	strlcpy_s(s->auth_user, name, sizeof(s->auth_user));
	if (s->pol != NULL) /* the addresses it may send as: policy/'s from here on */
		policy_auth_login(s->pol, name, copy_addrs(addrs, naddrs), naddrs);
	s->auth->step = AUTH_NONE;
	log_info(s->idstr, "smtp", "auth ok user=%s client=[%s] via=%s", s->auth_user, s->addr,
		 via);
	smtp_session_note(s, "auth", "success", NULL, json_pack("{s:s}", "user", s->auth_user));
	smtp_session_reply(s, "235 2.7.0", "Authentication successful");
	if (resume)
		smtp_session_auth_resume(s);
}

/*
 * checked: a password check ran for this answer.  Only those count toward
 * the address's limit (auth_fail_max_per_addr): the same wrong password
 * again (answered from the cache, or by the check it waited for) is a
 * client with a stale password, not someone guessing, and must not lock
 * out everyone behind the same address.
 */
static void login_failed(struct smtp_session *s, int checked)
{
	if (s->pol != NULL && checked)
		policy_auth_failed(s->pol);
	log_warn(s->idstr, "smtp", "AUTH FAILED from [%s]", s->addr);
	smtp_session_note(s, "auth", "failure", NULL, json_pack("{s:s}", "user", s->auth->user));
	tarpit(s, "535 5.7.8", "Authentication credentials invalid");
}

static void login_throttled(struct smtp_session *s, int64_t wait_ms)
{
	char text[120];

	s->auth->step = AUTH_NONE;
	log_warn(s->idstr, "smtp", "AUTH ACCOUNT LIMIT from [%s] retry_after=%lld", s->addr,
		 (long long)((wait_ms + 999) / 1000));
	snprintf(text, sizeof(text),
		 "Temporary authentication failure: too many failures, try again in %lld s",
		 (long long)((wait_ms + 999) / 1000));
	smtp_session_reply(s, "454 4.7.0", text);
	smtp_session_note(s, "auth", "throttled", NULL, json_pack("{s:s}", "user", s->auth->user));
	smtp_session_auth_resume(s);
}

/*
 * The session sid if it still waits for a check; NULL when it is gone.  A
 * session closing meanwhile is released here (no answer) and NULL returned.
 */
static struct smtp_session *waiting(struct smtp_authsrv *a, uint64_t sid)
{
	struct smtp_session *s = smtp_server_lookup(a->srv, sid);

	if (s == NULL || s->auth == NULL || s->auth->step != AUTH_VERIFYING)
		return NULL;
	if (s->flags & SMTP_F_CLOSING) {
		s->auth->step = AUTH_NONE;
		smtp_session_auth_resume(s);
		return NULL;
	}
	return s;
}

/* The result of check r, for session sid (r's own, or a coalesced one). */
static void deliver(struct smtp_authsrv *a, uint64_t sid, const struct job *r, int coalesced)
{
	struct smtp_session *s = waiting(a, sid);

	if (s == NULL)
		return;
	if (coalesced)
		stats_add(STATS_AUTH_COALESCED, 1);
	if (r->throttled)
		login_throttled(s, r->wait_ms);
	else if (r->ok)
		login_ok(s, r->name, r->addrs, r->naddrs, coalesced ? "coalesced" : "check", 1);
	else
		login_failed(s, !coalesced);
}

static void answer_cached(struct smtp_session *s, const struct centry *e, int resume)
{
	stats_add(STATS_AUTH_CACHE_HITS, 1);
	if (e->ok)
		login_ok(s, e->name, e->addrs, e->naddrs, "cache", resume);
	else
		login_failed(s, 0);
}

/* ---- loop side: one check per account -------------------------------------- */

static size_t fbucket(const char *account)
{
	uint64_t h = 1469598103934665603ULL; /* FNV-1a */
	size_t i;

	for (i = 0; account[i] != '\0'; i++) {
		h ^= (unsigned char)account[i];
		h *= 1099511628211ULL;
	}
	return (size_t)(h % FLIGHT_BUCKETS);
}

static struct flight *flight_get(struct smtp_authsrv *a, const char *account, int create)
{
	size_t b = fbucket(account);
	struct flight *f;

	for (f = a->flights[b]; f != NULL; f = f->next)
		if (strcmp(f->account, account) == 0)
			return f;
	if (!create)
		return NULL;
	f = xcalloc(1, sizeof(*f));
	strlcpy_s(f->account, account, sizeof(f->account));
	f->tail = &f->head;
	f->next = a->flights[b];
	a->flights[b] = f;
	return f;
}

static void flight_remove(struct smtp_authsrv *a, struct flight *f)
{
	struct flight **pp = &a->flights[fbucket(f->account)];

	while (*pp != f)
		pp = &(*pp)->next;
	*pp = f->next;
	free(f);
}

/* Unlink and return the waiting job after prev (NULL: the first). */
static struct job *queue_take(struct flight *f, struct job *prev)
{
	struct job *j = prev != NULL ? prev->qnext : f->head;

	if (prev != NULL)
		prev->qnext = j->qnext;
	else
		f->head = j->qnext;
	if (f->tail == &j->qnext)
		f->tail = prev != NULL ? &prev->qnext : &f->head;
	j->qnext = NULL;
	f->n--;
	return j;
}

static void queue_add(struct flight *f, struct job *j)
{
	j->qnext = NULL;
	*f->tail = j;
	f->tail = &j->qnext;
	f->n++;
}

/* Drop waiting jobs whose sessions are gone. */
static void queue_purge(struct smtp_authsrv *a, struct flight *f)
{
	struct job *prev = NULL;

	while ((prev != NULL ? prev->qnext : f->head) != NULL) {
		struct job *j = prev != NULL ? prev->qnext : f->head;

		if (waiting(a, j->sid) == NULL)
			job_free(queue_take(f, prev));
		else
			prev = j;
	}
}

static struct authw *least_busy(struct smtp_authsrv *a)
{
	struct authw *best = a->aw[0];
	size_t i;

	for (i = 1; i < a->naw; i++)
		if (a->aw[i]->inflight < best->inflight)
			best = a->aw[i];
	return best;
}

static void hand_over(struct smtp_authsrv *a, struct job *j)
{
	struct authw *aw = least_busy(a);

	j->epoch = a->epoch;
	aw->inflight++;
	worker_submit(aw->w, &j->base);
}

/*
 * The account's next turn: waiting exchanges whose answer is now cached are
 * answered, the first that is not becomes the check in flight.  f is freed
 * when nothing is left.
 */
static void drain(struct smtp_authsrv *a, struct flight *f)
{
	while (f->running == NULL && f->head != NULL) {
		struct job *j = queue_take(f, NULL);
		struct smtp_session *s = waiting(a, j->sid);
		struct centry *e;

		if (s == NULL) {
			job_free(j);
			continue;
		}
		e = cache_get(a, j->key);
		if (e != NULL) {
			answer_cached(s, e, 1);
			job_free(j);
			continue;
		}
		f->running = j;
		hand_over(a, j);
	}
	if (f->running == NULL && f->head == NULL)
		flight_remove(a, f);
}

/*
 * Answers resume sessions, whose input may start another exchange at once
 * (submit() re-entered): so every job is out of the account's list before
 * its session is answered, and only drain() frees a turn.
 */
static void check_done(struct smtp_authsrv *a, struct job *j)
{
	struct flight *f = flight_get(a, j->account, 0);
	int final = j->ran && !j->throttled;
	struct job *prev = NULL;
	struct job *same = NULL;
	struct job **same_tail = &same;

	/* One check in flight per account, and it is this one. */
	if (f == NULL || f->running != j)
		abort();
	f->running = NULL;
	/* A check that ran across a directory change is not kept. */
	if (final && j->epoch == a->epoch)
		cache_put(a, j);
	/* The same credentials from the same address: the same answer. */
	while (final && (prev != NULL ? prev->qnext : f->head) != NULL) {
		struct job *w = prev != NULL ? prev->qnext : f->head;

		if (memcmp(w->key, j->key, AUTH_KEY_LEN) == 0) {
			*same_tail = queue_take(f, prev);
			same_tail = &w->qnext;
		} else {
			prev = w;
		}
	}
	if (j->ran)
		deliver(a, j->sid, j, 0);
	while (same != NULL) {
		struct job *w = same;

		same = w->qnext;
		deliver(a, w->sid, j, 1);
		job_free(w);
	}
	drain(a, f);
}

static void stamp_done(struct smtp_authsrv *a, struct job *j)
{
	struct timeval tv = { STAMP_MS / 1000, (STAMP_MS % 1000) * 1000 };

	a->stamp_busy = 0;
	if (j->ran && j->ok) {
		if (!a->have_stamp || memcmp(&a->stamp, &j->stamp, sizeof(a->stamp)) != 0) {
			if (a->have_stamp)
				log_info(NULL, "auth", "credential cache emptied: directory changed"
					 " entries=%zu", a->csize);
			cache_flush(a);
			a->stamp = j->stamp;
			a->have_stamp = 1;
		}
	}
	evtimer_add(a->stamp_ev, &tv);
}

static void done_job(struct worker_job *wj, void *arg)
{
	struct authw *aw = arg;
	struct smtp_authsrv *a = aw->a;
	struct job *j = (struct job *)wj;

	aw->inflight--;
	/* Stopping: the sessions and the turns are being torn down. */
	if (!a->stopping) {
		if (j->kind == JOB_STAMP)
			stamp_done(a, j);
		else
			check_done(a, j);
	}
	job_free(j);
}

static void stamp_cb(evutil_socket_t fd, short what, void *arg)
{
	struct smtp_authsrv *a = arg;
	struct job *j;
	struct authw *aw;

	(void)fd;
	(void)what;
	if (a->stamp_busy || a->stopping)
		return;
	j = xcalloc(1, sizeof(*j));
	j->kind = JOB_STAMP;
	a->stamp_busy = 1;
	aw = least_busy(a);
	aw->inflight++;
	worker_submit(aw->w, &j->base);
}

int smtp_server_set_auth(struct smtp_server *srv, const char *db_path,
			 int (*verify)(const char *hash, const char *password),
			 char *err, size_t errsz)
{
	static const struct worker_ops ops = { run_job, NULL, done_job, NULL, 0, 0 };
	const struct conf *conf = srv->conf;
	struct smtp_authsrv *a = xcalloc(1, sizeof(*a));
	size_t i;

	a->srv = srv;
	a->db_path = xstrdup(db_path);
	a->verify = verify;
	random_bytes(a->hmac_key, sizeof(a->hmac_key));
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
	for (i = 0; i < (size_t)conf->auth_workers && i < AUTH_WORKERS_MAX; i++) {
		struct authw *aw = xcalloc(1, sizeof(*aw));

		aw->a = a;
		a->aw[a->naw++] = aw;
		aw->w = worker_new(srv->base, "auth", &ops, aw, err, errsz);
		if (aw->w == NULL) {
			smtp_authsrv_free(a);
			return -1;
		}
	}
	if (a->naw == 0) {
		snprintf(err, errsz, "auth: auth_workers must be at least 1");
		smtp_authsrv_free(a);
		return -1;
	}
	if (conf->auth_cache_size > 0 &&
	    (conf->auth_cache_ttl_ms > 0 || conf->auth_cache_negative_ttl_ms > 0)) {
		a->cbuckets = (size_t)conf->auth_cache_size;
		a->ctab = xcalloc(a->cbuckets, sizeof(*a->ctab));
		a->stamp_ev = evtimer_new(srv->base, stamp_cb, a);
		if (a->stamp_ev == NULL) {
			snprintf(err, errsz, "auth: cannot create the cache timer");
			smtp_authsrv_free(a);
			return -1;
		}
		/* Nothing is cached before the first stamp is read. */
		stamp_cb(-1, 0, a);
	}
	srv->authsrv = a;
	return 0;
}

void smtp_authsrv_free(struct smtp_authsrv *a)
{
	size_t i;

	if (a == NULL)
		return;
	a->stopping = 1;
	if (a->stamp_ev != NULL)
		event_free(a->stamp_ev);
	/* Drops what is still queued; done() only frees it now. */
	for (i = 0; i < a->naw; i++) {
		worker_free(a->aw[i]->w);
		store_close(a->aw[i]->st);
		free(a->aw[i]);
	}
	/* The checks in flight were freed by their done(); the waiting are here. */
	for (i = 0; i < FLIGHT_BUCKETS; i++) {
		while (a->flights[i] != NULL) {
			struct flight *f = a->flights[i];

			while (f->head != NULL)
				job_free(queue_take(f, NULL));
			a->flights[i] = f->next;
			free(f);
		}
	}
	if (a->ctab != NULL) {
		while (a->lru_head != NULL)
			centry_remove(a, a->lru_head);
		free(a->ctab);
	}
	explicit_bzero(a->hmac_key, sizeof(a->hmac_key));
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
	struct flight *f;
	struct centry *e;
	struct job *j;
	size_t k;

	sa->step = AUTH_NONE;
	if (ulen == 0 || ulen > AUTH_USER_MAX || plen > AUTH_PASS_MAX ||
	    memchr(user, '\0', ulen) != NULL || memchr(pw, '\0', plen) != NULL) {
		smtp_session_reply(s, "501 5.5.2", "Malformed authentication response");
		return;
	}
	memcpy(sa->user, user, ulen);
	sa->user[ulen] = '\0';
	/*
	 * Suspended: refused without a check and not counted against the
	 * address, so that a bot cannot lock out others behind the same NAT.
	 */
	if (s->pol != NULL && policy_auth_suspended(s->pol, sa->user)) {
		stats_add(STATS_AUTH_SUSPENDED, 1);
		if (count_as_account(s, sa->user) < 0)
			return;
		log_warn(s->idstr, "smtp", "AUTH SUSPENDED from [%s]", s->addr);
		smtp_session_note(s, "auth", "suspended", NULL, json_pack("{s:s}", "user", sa->user));
		tarpit(s, "535 5.7.8",
		       "Authentication refused: account suspended; contact your administrator");
		return;
	}
	j = xcalloc(1, sizeof(*j));
	j->kind = JOB_CHECK;
	j->sid = s->id;
	strlcpy_s(j->addr, s->addr, sizeof(j->addr));
	memcpy(j->user, user, ulen);
	memcpy(j->pw, pw, plen);
	for (k = 0; k < ulen; k++)
		j->account[k] = (char)tolower((unsigned char)user[k]);
	key_of(a, user, ulen, pw, plen, s->addr, j->key);
	e = cache_get(a, j->key);
	if (e != NULL) {
		job_free(j);
		answer_cached(s, e, 0);
		return;
	}
	f = flight_get(a, j->account, 1);
	if (f->running != NULL || f->head != NULL) {
		if (f->n >= AUTH_QUEUE_MAX)
			queue_purge(a, f);
		if (f->n >= AUTH_QUEUE_MAX) {
			job_free(j);
			stats_add(STATS_AUTH_BUSY, 1);
			log_warn(s->idstr, "smtp", "AUTH ACCOUNT BUSY from [%s] waiting=%zu", s->addr,
				 f->n);
			smtp_session_reply(s, "454 4.7.0",
					   "Temporary authentication failure: too many attempts for"
					   " this account under way, try again later");
			return;
		}
		queue_add(f, j);
	} else {
		f->running = j;
		hand_over(a, j);
	}
	sa->step = AUTH_VERIFYING;
	s->flags |= SMTP_F_PAUSED;
	bufferevent_disable(s->bev, EV_READ);
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
