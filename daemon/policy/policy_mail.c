/*
 * policy_mail: the MAIL stage.  Called through policy_mail() by
 * smtp_session.c once per MAIL whose syntax and size smtp/ accepted.  The
 * sender lists (an allow entry skips the rest of the lists), then for an
 * authenticated client the account (account/): binding of the sender to
 * the login, suspension, rate limits, score.  In a cluster the rate
 * limits and the suspension flag are asked of Redis first (the stage waits
 * at most cluster_redis_timeout; without an answer the local counters
 * decide, as on a single node).
 * Also the door for MAIL commands smtp/ refused as malformed (501 5.1.7):
 * for a login they count against the account.
 */
#include "policy_stage.h"

#include <string.h>

#include "../account/account.h"
#include "../log/log.h"
#include "../util/util.h"

#define SENDER_RAW_MAX 257 /* a path's longest (RFC 5321 4.5.3.1.3), and a NUL */

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
	int rated = 0;

	(void)sn;
	if (!policy_authenticated(ps))
		return POLICY_CONTINUE;
	bound = policy_sender_ok(ps, a->addr);
	if (bound && !account_suspended(ps->p->accounts, ps->user)) {
		/* A refused binding is not counted anywhere: it needs no cluster answer. */
		enum policy_action r = policy_cluster_rate_verdict(ps, 0, &rated, v);

		if (r != POLICY_CONTINUE)
			return r;
	} else if (!bound) {
		log_warn(ps->idstr, "policy", "SENDER BINDING user=%s from [%s]", ps->user,
			 ps->addr);
	}
	return account_mail(ps->p->accounts, ps->user, ps->addr, a->addr, bound, rated, v);
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
	ps->ntx_doms = 0; /* a new transaction */
	memset(&a, 0, sizeof(a));
	a.addr = sender;
	return policy_run_stage(ps, STEP_MAIL, mail_checks, ARRAY_LEN(mail_checks), &a, v);
}

/*
 * The sender path as written, for the distinct-sender count: between the
 * angle brackets when there are any, else the first word after "FROM:";
 * cut to outsz - 1.
 */
static void raw_sender(const char *args, size_t len, char *out, size_t outsz)
{
	const char *p = args;
	const char *end = args + len;
	const char *lt = memchr(args, '<', len);
	size_t n = 0;

	if (lt != NULL) {
		p = lt + 1;
		while (p < end && *p != '>' && n + 1 < outsz)
			out[n++] = *p++;
	} else {
		const char *colon = memchr(args, ':', len);

		p = colon != NULL ? colon + 1 : args;
		while (p < end && (*p == ' ' || *p == '\t'))
			p++;
		while (p < end && *p != ' ' && *p != '\t' && n + 1 < outsz)
			out[n++] = *p++;
	}
	out[n] = '\0';
}

void policy_mail_malformed(struct policy_sess *ps, const char *args, size_t len)
{
	char raw[SENDER_RAW_MAX];

	if (!policy_authenticated(ps))
		return;
	raw_sender(args, len, raw, sizeof(raw));
	log_warn(ps->idstr, "policy", "MALFORMED SENDER user=%s from [%s]", ps->user, ps->addr);
	account_malformed(ps->p->accounts, ps->user, ps->addr, raw);
}
