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
 */
#include "policy_stage.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../account/account.h"
#include "../log/log.h"
#include "../util/util.h"

int policy_set_accounts(struct policy *p, const struct conf *conf, const char *db_path,
			char *err, size_t errsz)
{
	p->accounts = account_engine_new(p->base, conf, db_path, err, errsz);
	if (p->accounts == NULL)
		return -1;
	p->conf = conf;
	return 0;
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
