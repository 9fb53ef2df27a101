/*
 * policy_account: the AUTH step and the session's login, and the one door
 * from policy/ to the account defence (account/).  smtp_auth.c reports the
 * outcome of each SASL exchange here; the MAIL, RCPT and DATA stages ask
 * the account engine through the login kept here.  smtp/ never calls
 * account/.
 *
 * Owns: the account engine (started by policy_set_accounts() when AUTH is
 * offered, freed by policy_free()), and per session the login name and
 * the addresses it may send as.
 *
 * In a cluster (policy_set_cluster) also the door to the cluster's rate
 * limits in Redis: policy_cluster_rate() asks once per MAIL or RCPT, the
 * stage waits (PENDING) for the answer, which cluster_redis.c gives within
 * cluster_redis_timeout; the callback carries the session id (the session
 * may be gone) and leaves the answer in the session for the resumed check.
 */
#include "policy_stage.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <hiredis/hiredis.h>

#include "../account/account.h"
#include "../cluster/cluster_redis.h"
#include "../log/log.h"
#include "../util/util.h"

int policy_set_accounts(struct policy *p, const struct conf *conf, const char *db_path,
			char *err, size_t errsz)
{
	p->accounts = account_engine_new(p->base, conf, db_path, err, errsz);
	if (p->accounts == NULL)
		return -1;
	p->conf = conf;
	account_engine_set_cluster(p->accounts, p->redis);
	return 0;
}

void policy_set_cluster(struct policy *p, struct cluster_redis *cr)
{
	p->redis = cr;
	if (p->accounts != NULL)
		account_engine_set_cluster(p->accounts, cr);
}

/* ---- the cluster's rate check ----------------------------------------------- */

/* The callback's argument: a session id, not a pointer (the session may be gone). */
struct crlq {
	struct policy *p;
	uint64_t sid;
};

static void on_rate(void *arg, int ok, const redisReply *r)
{
	struct crlq *q = arg;
	struct policy_sess *ps = policy_sess_find(q->p, q->sid);
	enum cluster_rate_res res;
	size_t subj = 0;
	int window = 0;
	int64_t limit = 0;

	free(q);
	if (ps == NULL || ps->crl != CRL_WAIT)
		return;
	if (!ok || cluster_redis_rate_result(r, &res, &subj, &window, &limit) < 0) {
		log_warn(ps->idstr, "policy", "cluster rate check unanswered: local limits user=%s",
			 ps->user);
		ps->crl = CRL_DOWN;
	} else if (res == CLUSTER_RATE_SUSPENDED) {
		ps->crl = CRL_SUSPENDED;
	} else if (res == CLUSTER_RATE_LIMIT) {
		ps->crl = CRL_LIMIT;
		ps->crl_client = subj == 1;
		ps->crl_window = window;
		ps->crl_limit = limit;
	} else {
		ps->crl = CRL_OK;
	}
	policy_op_done(ps);
}

enum crl_state policy_cluster_rate(struct policy_sess *ps, int rcpt)
{
	struct cluster_redis_rate subj[2];
	struct crlq *q;
	enum crl_state st = ps->crl;

	if (st != CRL_NONE && st != CRL_WAIT) {
		ps->crl = CRL_NONE; /* taken: the next check asks again */
		return st;
	}
	if (ps->p == NULL || ps->p->redis == NULL || !cluster_redis_up(ps->p->redis))
		return CRL_DOWN;
	memset(subj, 0, sizeof(subj));
	subj[0].kind = rcpt ? "ar" : "am";
	subj[0].subject = ps->user;
	subj[1].kind = rcpt ? "cr" : "cm";
	subj[1].subject = ps->addr;
	account_limits(ps->p->accounts, ps->user, rcpt, subj[0].lim, subj[1].lim);
	q = xcalloc(1, sizeof(*q));
	q->p = ps->p;
	q->sid = ps->sid;
	if (cluster_redis_rate(ps->p->redis, ps->user, subj, 2, on_rate, q) < 0) {
		free(q);
		return CRL_DOWN;
	}
	ps->crl = CRL_WAIT;
	ps->npending++;
	return CRL_WAIT;
}

enum policy_action policy_cluster_rate_verdict(struct policy_sess *ps, int rcpt, int *rated,
					       struct policy_verdict *v)
{
	*rated = 0;
	switch (policy_cluster_rate(ps, rcpt)) {
	case CRL_WAIT:
		return POLICY_PENDING;
	case CRL_OK:
		*rated = 1;
		return POLICY_CONTINUE;
	case CRL_LIMIT:
		account_rate_refused(ps->user, ps->addr, rcpt, ps->crl_client, ps->crl_window,
				     ps->crl_limit, v);
		return POLICY_DEFER;
	case CRL_SUSPENDED:
		log_warn(ps->idstr, "policy", "ACCOUNT SUSPENDED IN CLUSTER user=%s from [%s]",
			 ps->user, ps->addr);
		account_suspended_verdict(v);
		return POLICY_REFUSE;
	default:
		return POLICY_CONTINUE; /* no cluster answer: the local counters decide */
	}
}

enum policy_action policy_auth(struct policy_sess *ps, struct policy_verdict *v)
{
	memset(v, 0, sizeof(*v));
	v->action = POLICY_CONTINUE;
	if (ps->p == NULL || ps->p->accounts == NULL ||
	    !account_auth_blocked(ps->p->accounts, ps->addr))
		return POLICY_CONTINUE;
	log_warn(ps->idstr, "policy", "AUTH ADDRESS LIMIT from [%s]", ps->addr);
	policy_verdict_set(v, POLICY_DEFER, "421 4.7.0", "auth_fail_max_per_addr", NULL,
			   "Too many authentication failures, closing");
	v->close = 1;
	return POLICY_DEFER;
}

void policy_auth_failed(struct policy_sess *ps)
{
	if (ps->p != NULL && ps->p->accounts != NULL)
		account_auth_failed(ps->p->accounts, ps->addr);
}

int policy_auth_suspended(struct policy_sess *ps, const char *user)
{
	return ps->p != NULL && ps->p->accounts != NULL && user[0] != '\0' &&
	       account_suspended(ps->p->accounts, user);
}

void policy_sess_auth_free(struct policy_sess *ps)
{
	size_t i;

	for (i = 0; i < ps->nuser_addrs; i++)
		free(ps->user_addrs[i]);
	free(ps->user_addrs);
	ps->user_addrs = NULL;
	ps->nuser_addrs = 0;
	ps->user[0] = '\0';
}

void policy_auth_login(struct policy_sess *ps, const char *user, char **addrs, size_t naddrs)
{
	policy_sess_auth_free(ps);
	ps->dom_state = DOM_NONE;
	if (user == NULL)
		return;
	strlcpy_s(ps->user, user, sizeof(ps->user));
	ps->user_addrs = addrs;
	ps->nuser_addrs = naddrs;
}

int policy_authenticated(const struct policy_sess *ps)
{
	return ps->user[0] != '\0' && ps->p != NULL && ps->p->accounts != NULL;
}

int policy_sender_ok(const struct policy_sess *ps, const char *address)
{
	size_t i;

	if (address[0] == '\0')
		return 0;
	for (i = 0; i < ps->nuser_addrs; i++)
		if (strcasecmp(ps->user_addrs[i], address) == 0)
			return 1;
	return 0;
}
