/*
 * policy_rcpt: the RCPT stage.  Called through policy_rcpt() by
 * smtp_session.c once per RCPT whose syntax smtp/ accepted (again after a
 * PENDING, resuming where it waited).  In order: an authenticated
 * client's recipient domain (may wait for DNS), the harvest limit (may
 * wait for its tarpit), max_recipients, the recipient lists, routing in
 * the local part, relay control, the directory (unknown recipients feed
 * the harvest count), and last the account's rate limits and score (in a
 * cluster asked of Redis first: may wait up to cluster_redis_timeout).
 * Also: local domains and <Postmaster> for smtp/ and the queue.
 */
#include "policy_stage.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../account/account.h"
#include "../conf/conf.h"
#include "../log/log.h"
#include "../util/util.h"

static enum policy_action check_harvest(struct policy_sess *ps, const struct policy_snap *sn,
					const struct step_args *a, struct policy_verdict *v)
{
	const struct policy_settings *set = &sn->set;

	(void)a;
	if (ps->tarpit == A_DONE) {
		ps->tarpit = A_NONE;
		goto defer;
	}
	if (ps->p == NULL || ps->trusted || set->harvest_threshold == 0 ||
	    policy_harvest_count(ps->client, time_now_ms(), set->harvest_window_s * 1000) <
	    (size_t)set->harvest_threshold)
		return POLICY_CONTINUE;
	if (set->harvest_tarpit_ms > 0) {
		policy_tarpit_start(ps, set->harvest_tarpit_ms);
		return POLICY_PENDING;
	}
defer:
	log_warn(ps->idstr, "policy", "HARVEST LIMIT from [%s]", ps->addr);
	policy_verdict_set(v, POLICY_DEFER, "450 4.7.1", "harvest", NULL, "");
	policy_vtext(ps, v, set->harvest_text, NULL);
	return POLICY_DEFER;
}

static enum policy_action check_max_rcpt(struct policy_sess *ps, const struct policy_snap *sn,
					 const struct step_args *a, struct policy_verdict *v)
{
	(void)ps;
	if (sn->set.max_recipients > 0 && a->nrcpts >= (size_t)sn->set.max_recipients) {
		policy_verdict_set(v, POLICY_DEFER, "452 4.5.3", "max_recipients", NULL,
			"Error: too many recipients");
		return POLICY_DEFER;
	}
	return POLICY_CONTINUE;
}

static enum policy_action check_rcpt_lists(struct policy_sess *ps, const struct policy_snap *sn,
					   const struct step_args *a, struct policy_verdict *v)
{
	const struct policy_ref *allow = policy_list_match_mail(&sn->lists[PL_RCPT_ALLOW],
								a->addr);
	const struct policy_ref *deny = policy_list_match_mail(&sn->lists[PL_RCPT_DENY], a->addr);

	if (policy_allow_deny(allow, deny, sn->set.rcpt_allow_wins) == POLICY_REFUSE) {
		policy_verdict_set(v, POLICY_REFUSE, "550 5.7.1", "rcpt_deny", deny, "");
		policy_vtext(ps, v, sn->set.rcpt_deny_text, NULL);
		return POLICY_REFUSE;
	}
	/* An allowed recipient still goes through relay and directory checks. */
	return POLICY_CONTINUE;
}

static const char *domain_of(const char *addr)
{
	const char *at = strrchr(addr, '@');

	return at ? at + 1 : "";
}

int policy_is_local(const struct policy_snap *sn, const char *addr)
{
	return policy_list_match_domain(&sn->lists[PL_LOCAL_DOMAIN], domain_of(addr)) != NULL;
}

int policy_sess_local_domain(const struct policy_sess *ps, const char *domain)
{
	return policy_list_match_domain(&ps->snap->lists[PL_LOCAL_DOMAIN], domain) != NULL;
}

int policy_local_domain(const struct policy *p, const char *domain)
{
	return p->cur != NULL &&
	       policy_list_match_domain(&p->cur->lists[PL_LOCAL_DOMAIN], domain) != NULL;
}

/* name, or a parent domain of it, is a local domain. */
static int within_local(const struct policy_snap *sn, const char *name)
{
	const char *p = name;

	while (p != NULL && *p != '\0') {
		if (policy_list_match_domain(&sn->lists[PL_LOCAL_DOMAIN], p) != NULL)
			return 1;
		p = strchr(p, '.');
		if (p != NULL)
			p++;
	}
	return 0;
}

static enum policy_action check_relay(struct policy_sess *ps, const struct policy_snap *sn,
				      const struct step_args *a, struct policy_verdict *v)
{
	const struct policy_settings *set = &sn->set;
	const char *dom = domain_of(a->addr);
	const struct policy_ref *r;
	int enforce;

	if (policy_is_local(sn, a->addr))
		return POLICY_CONTINUE;
	switch (set->relay_enforce) {
	case POLICY_RELAY_NONE:
		enforce = 0;
		break;
	case POLICY_RELAY_EXTERNAL:
		/* Hosts whose confirmed name is inside our own domains are internal. */
		enforce = !(ps->fcrdns && within_local(sn, ps->name));
		break;
	default:
		enforce = 1;
	}
	if (!enforce || ps->relay_exempt)
		return POLICY_CONTINUE;
	r = policy_list_match_domain(&sn->lists[PL_RELAY_DEST_DENY], dom);
	if (r != NULL) {
		policy_verdict_set(v, POLICY_REFUSE, "554 5.7.1", "relay_dest_deny", r, "");
		policy_vtext(ps, v, set->relay_text, NULL);
		return POLICY_REFUSE;
	}
	if (!(ps->relay_client || (a->authenticated && set->relay_auth))) {
		policy_verdict_set(v, POLICY_REFUSE, "554 5.7.1", "relay", NULL, "");
		policy_vtext(ps, v, set->relay_text, NULL);
		return POLICY_REFUSE;
	}
	if (sn->lists[PL_RELAY_DEST_ALLOW].count > 0 &&
	    policy_list_match_domain(&sn->lists[PL_RELAY_DEST_ALLOW], dom) == NULL) {
		policy_verdict_set(v, POLICY_REFUSE, "554 5.7.1", "relay_dest_allow", NULL, "");
		policy_vtext(ps, v, set->relay_text, NULL);
		return POLICY_REFUSE;
	}
	return POLICY_CONTINUE;
}

/* See policy.h; sn is the session's snapshot. */
static int postmaster_of(const struct policy_snap *sn, char *out, size_t outsz)
{
	int n;

	if (sn->set.postmaster_address[0] != '\0')
		n = snprintf(out, outsz, "%s", sn->set.postmaster_address);
	else if (sn->first_local[0] != '\0')
		n = snprintf(out, outsz, "postmaster@%s", sn->first_local);
	else
		return -1;
	return n > 0 && (size_t)n < outsz ? 0 : -1;
}

int policy_sess_postmaster(const struct policy_sess *ps, char *out, size_t outsz)
{
	return postmaster_of(ps->snap, out, outsz);
}

/*
 * Source routing hidden in the local part of one of our own domains'
 * recipients: user%other@ours, other!user@ours, "user@other"@ours.  A
 * downstream server that honours any of them makes us an open relay
 * (Postfix allow_untrusted_routing); clients we trust may use them.
 */
static enum policy_action check_routing(struct policy_sess *ps, const struct policy_snap *sn,
					const struct step_args *a, struct policy_verdict *v)
{
	const char *at = strrchr(a->addr, '@');

	if (sn->set.allow_untrusted_routing || ps->trusted || ps->relay_client ||
	    ps->relay_exempt || a->authenticated || at == NULL || !policy_is_local(sn, a->addr))
		return POLICY_CONTINUE;
	if (memchr(a->addr, '%', (size_t)(at - a->addr)) == NULL &&
	    memchr(a->addr, '!', (size_t)(at - a->addr)) == NULL &&
	    memchr(a->addr, '@', (size_t)(at - a->addr)) == NULL)
		return POLICY_CONTINUE;
	log_warn(ps->idstr, "policy", "ROUTING IN LOCAL PART from [%s]", ps->addr);
	policy_verdict_set(v, POLICY_REFUSE, "550 5.7.1", "routing", NULL,
		"Recipient address rejected: %, ! or @ in the local part is not accepted");
	return POLICY_REFUSE;
}

static enum policy_action check_directory(struct policy_sess *ps, const struct policy_snap *sn,
					  const struct step_args *a, struct policy_verdict *v)
{
	const struct policy_settings *set = &sn->set;
	const struct policy_ref *r;
	char pm[400];

	if (!set->recipient_verify || !policy_is_local(sn, a->addr))
		return POLICY_CONTINUE;
	/* RFC 5321 4.5.1: the postmaster is always there, listed or not. */
	if (postmaster_of(sn, pm, sizeof(pm)) == 0 && strcasecmp(pm, a->addr) == 0)
		return POLICY_CONTINUE;
	r = policy_strset_get(&sn->dir, a->addr, strlen(a->addr));
	if (r == NULL) {
		if (ps->p != NULL && set->harvest_threshold > 0)
			policy_harvest_add(ps->client, time_now_ms(), set->harvest_window_s * 1000,
				    (size_t)set->harvest_threshold);
		policy_verdict_set(v, POLICY_REFUSE, "550 5.1.1", "unknown_recipient", NULL, "");
		policy_vtext(ps, v, set->unknown_rcpt_text, NULL);
		return POLICY_REFUSE;
	}
	if (r->id == POLICY_DIR_GROUP && !a->authenticated && !set->group_mail_external) {
		policy_verdict_set(v, POLICY_REFUSE, "550 5.7.1", "group_mail", r, "");
		policy_vtext(ps, v, set->group_text, NULL);
		return POLICY_REFUSE;
	}
	return POLICY_CONTINUE;
}

/*
 * The recipient's owner blocks the sender on their personal list
 * (policy_user.c): this recipient is refused, the others of the
 * transaction are not.  After the directory, so that an unknown
 * recipient is told so first.
 */
static enum policy_action check_user_block(struct policy_sess *ps,
					   const struct policy_snap *sn,
					   const struct step_args *a, struct policy_verdict *v)
{
	const struct policy_ref *r;

	if (ps->sender[0] == '\0')
		return POLICY_CONTINUE;
	r = policy_user_sender(sn, a->addr, ps->sender, NULL);
	if (r == NULL || strcmp(r->list, "user_block") != 0)
		return POLICY_CONTINUE;
	policy_verdict_set(v, POLICY_REFUSE, "550 5.7.1", "user_block", r,
			   "Sender blocked by recipient");
	return POLICY_REFUSE;
}

/*
 * An authenticated client's recipient domain must receive mail (RFC 5321
 * 5.1, RFC 7505; dns_query_mail() in dns.h): dead is NXDOMAIN, a null MX,
 * no MX and no address, or MX hosts none of which has an address; a DNS
 * time-out or SERVFAIL with no live host defers (451), never refuses.  Our
 * own domains and address literals are not looked up.  A verdict is
 * remembered for the session (DOM_MEMO_MAX domains, no longer than the
 * answers' TTL; a time-out for DOM_TEMPFAIL_MEMO_S, so that the other
 * recipients at a domain whose servers do not answer are deferred at once
 * instead of each waiting out dns_timeout x dns_tries again); across
 * sessions the resolver cache answers.
 */
#define DOM_TEMPFAIL_MEMO_S 60

static void on_dom(struct policy_sess *ps, const struct dns_mail_result *r)
{
	if (ps->dom_state != DOM_PENDING)
		return;
	ps->dom_why = (int)r->why;
	ps->dom_ttl = r->ttl;
	switch (r->status) {
	case DNS_MAIL_LIVE:
		ps->dom_state = DOM_OK;
		break;
	case DNS_MAIL_DEAD:
		ps->dom_state = DOM_DEAD;
		log_info(ps->idstr, "policy", "dead domain domain=%s why=%s mx_hosts=%zu",
			 ps->dom, dns_mail_why_name(r->why), r->hosts);
		break;
	default:
		ps->dom_state = DOM_TEMPFAIL;
		log_info(ps->idstr, "policy", "domain lookup tempfail domain=%s", ps->dom);
		break;
	}
}

static const struct dom_memo *memo_get(struct policy_sess *ps, const char *dom)
{
	int64_t now = time_mono_ms();
	size_t i;

	for (i = 0; i < DOM_MEMO_MAX; i++) {
		struct dom_memo *m = &ps->dom_memo[i];

		if (m->name[0] == '\0' || strcmp(m->name, dom) != 0)
			continue;
		if (m->expires <= now) {
			m->name[0] = '\0';
			return NULL;
		}
		return m;
	}
	return NULL;
}

static void memo_put(struct policy_sess *ps, const char *dom, enum dom_state st, int why,
		     uint32_t ttl)
{
	struct dom_memo *m = &ps->dom_memo[ps->dom_memo_next];

	if (ttl == 0)
		return;
	ps->dom_memo_next = (ps->dom_memo_next + 1) % DOM_MEMO_MAX;
	strlcpy_s(m->name, dom, sizeof(m->name));
	m->state = st;
	m->why = why;
	m->expires = time_mono_ms() + (int64_t)ttl * 1000;
}

static enum policy_action check_rcpt_domain(struct policy_sess *ps,
					    const struct policy_snap *sn,
					    const struct step_args *a, struct policy_verdict *v)
{
	const char *dom = domain_of(a->addr);
	const struct dom_memo *m;
	enum dom_state st;
	int why;

	if (!policy_authenticated(ps) || ps->p->conf == NULL ||
	    !ps->p->conf->recipient_domain_check || strchr(a->addr, '@') == NULL ||
	    dom[0] == '[' || strlen(dom) >= sizeof(ps->dom) || policy_is_local(sn, a->addr) ||
	    policy_sess_dns(ps) == NULL)
		return POLICY_CONTINUE;
	if (ps->dom_state != DOM_NONE && ps->dom_state != DOM_PENDING &&
	    strcmp(ps->dom, dom) == 0) {
		/* Resumed with the answer for this recipient (a->addr is lower case). */
		st = ps->dom_state;
		why = ps->dom_why;
		ps->dom_state = DOM_NONE;
		memo_put(ps, dom, st, why, st == DOM_TEMPFAIL ? DOM_TEMPFAIL_MEMO_S : ps->dom_ttl);
	} else if ((m = memo_get(ps, dom)) != NULL) {
		st = m->state;
		why = m->why;
	} else {
		strlcpy_s(ps->dom, dom, sizeof(ps->dom));
		ps->dom_state = DOM_PENDING;
		policy_query_mail(ps, ps->dom, on_dom);
		return POLICY_PENDING;
	}
	switch (st) {
	case DOM_OK:
		return POLICY_CONTINUE;
	case DOM_TEMPFAIL:
		policy_verdict_set(v, POLICY_DEFER, "451 4.4.3", "rcpt_domain", NULL, "");
		snprintf(v->text, sizeof(v->text),
			 "Recipient domain %.200s: DNS lookup failed, try again later", dom);
		return POLICY_DEFER;
	case DOM_DEAD:
		if (account_rcpt(ps->p->accounts, ps->user, ps->addr, a->raw, 1, 0, v) !=
		    POLICY_CONTINUE)
			return v->action; /* that suspended the account */
		policy_verdict_set(v, POLICY_REFUSE, "550 5.1.2", "rcpt_domain", NULL, "");
		snprintf(v->text, sizeof(v->text),
			 "Recipient address rejected: domain %.180s does not accept mail", dom);
		/* Why, for the message log: nxdomain, null_mx, no_records, mx_no_address. */
		snprintf(v->entry, sizeof(v->entry), "%s",
			 dns_mail_why_name((enum dns_mail_why)why));
		return POLICY_REFUSE;
	default:
		abort(); /* DOM_NONE or DOM_PENDING is not an answer */
	}
}

/* An authenticated client's recipient: the account's rate limits; its domain noted. */
static enum policy_action check_account_rcpt(struct policy_sess *ps,
					     const struct policy_snap *sn,
					     const struct step_args *a, struct policy_verdict *v)
{
	const char *dom = domain_of(a->addr);
	int rated = 0;
	uint32_t h;
	size_t i;

	(void)sn;
	if (!policy_authenticated(ps))
		return POLICY_CONTINUE;
	/* In a cluster, Redis decides the recipient limits first. */
	if (!account_suspended(ps->p->accounts, ps->user)) {
		enum policy_action r = policy_cluster_rate_verdict(ps, 1, &rated, v);

		if (r != POLICY_CONTINUE)
			return r;
	}
	if (account_rcpt(ps->p->accounts, ps->user, ps->addr, a->raw, 0, rated, v) !=
	    POLICY_CONTINUE)
		return v->action;
	/* The transaction's distinct domains, for the identical-content signal. */
	h = account_hash32(dom, strlen(dom));
	for (i = 0; i < ps->ntx_doms && ps->tx_doms[i] != h; i++)
		;
	if (i == ps->ntx_doms && ps->ntx_doms < TX_DOMS_MAX)
		ps->tx_doms[ps->ntx_doms++] = h;
	return POLICY_CONTINUE;
}

static const struct check rcpt_checks[] = {
	{ "rcpt_domain", check_rcpt_domain, 0 },
	{ "harvest", check_harvest, 0 },
	{ "max_recipients", check_max_rcpt, 0 },
	{ "rcpt_lists", check_rcpt_lists, 0 },
	{ "routing", check_routing, 0 },
	{ "relay", check_relay, 0 },
	{ "directory", check_directory, 0 },
	{ "user_block", check_user_block, 0 },
	{ "account", check_account_rcpt, CHECK_ALWAYS },
};

enum policy_action policy_rcpt(struct policy_sess *ps, const char *rcpt, size_t nrcpts,
			       struct policy_verdict *v)
{
	struct step_args a;
	char lower[600];
	size_t i;

	for (i = 0; rcpt[i] != '\0' && i + 1 < sizeof(lower); i++)
		lower[i] = (char)((rcpt[i] >= 'A' && rcpt[i] <= 'Z') ? rcpt[i] + 32 : rcpt[i]);
	lower[i] = '\0';
	memset(&a, 0, sizeof(a));
	a.addr = lower;
	a.raw = rcpt;
	a.nrcpts = nrcpts;
	a.authenticated = policy_authenticated(ps);
	return policy_run_stage(ps, STEP_RCPT, rcpt_checks, ARRAY_LEN(rcpt_checks), &a, v);
}

