/*
 * policy_mail: the MAIL stage.  Called through policy_mail() by
 * smtp_session.c once per MAIL whose syntax and size smtp/ accepted.  The
 * sender lists (an allow entry skips the rest of the lists), then for an
 * authenticated client the account (account/): binding of the sender to
 * the login, suspension, rate limits, score.  Nothing here waits.
 */
#include "policy_stage.h"

#include <string.h>

#include "../account/account.h"
#include "../log/log.h"
#include "../util/util.h"

static enum policy_action check_sender(struct policy_sess *ps, const struct policy_snap *sn,
				       const struct step_args *a, struct policy_verdict *v)
{
	const struct policy_ref *allow = policy_list_match_mail(&sn->lists[PL_SENDER_ALLOW],
								a->addr);
	const struct policy_ref *deny = policy_list_match_mail(&sn->lists[PL_SENDER_DENY],
							       a->addr);

	switch (policy_allow_deny(allow, deny, sn->set.sender_allow_wins)) {
	case POLICY_REFUSE:
		policy_verdict_set(v, POLICY_REFUSE, "550 5.7.1", "sender_deny", deny, "");
		policy_vtext(ps, v, sn->set.sender_deny_text, NULL);
		return POLICY_REFUSE;
	case POLICY_ACCEPT:
		return POLICY_ACCEPT;
	default:
		return POLICY_CONTINUE;
	}
}

/*
 * An authenticated client's sender: bound to the login, the account not
 * suspended, within its rate limits; counted for the score.  Runs after
 * an allow entry too: sender_allow never lifts an account's limits.
 */
static enum policy_action check_account_mail(struct policy_sess *ps,
					     const struct policy_snap *sn,
					     const struct step_args *a, struct policy_verdict *v)
{
	int bound;

	(void)sn;
	if (!policy_authenticated(ps))
		return POLICY_CONTINUE;
	bound = policy_sender_ok(ps, a->addr);
	if (!bound)
		log_warn(ps->idstr, "policy", "SENDER BINDING user=%s from [%s]", ps->user,
			 ps->addr);
	return account_mail(ps->p->accounts, ps->user, ps->addr, a->addr, bound, v);
}

static const struct check mail_checks[] = {
	{ "sender", check_sender, 0 },
	{ "account", check_account_mail, CHECK_ALWAYS },
};

enum policy_action policy_mail(struct policy_sess *ps, const char *sender,
			       struct policy_verdict *v)
{
	struct step_args a;
	size_t i, n = strlen(sender);

	/* Kept for the recipients' personal lists (policy_rcpt.c). */
	if (n >= sizeof(ps->sender))
		n = 0;
	for (i = 0; i < n; i++)
		ps->sender[i] = (char)((sender[i] >= 'A' && sender[i] <= 'Z') ? sender[i] + 32
				       : sender[i]);
	ps->sender[n] = '\0';
	memset(&a, 0, sizeof(a));
	a.addr = sender;
	return policy_run_stage(ps, STEP_MAIL, mail_checks, ARRAY_LEN(mail_checks), &a, v);
}

