/*
 * policy_helo: the HELO/EHLO stage.  Called through policy_helo() by
 * smtp_session.c for each HELO or EHLO whose syntax smtp/ accepted (again
 * after a PENDING).  The name's syntax as the settings want it, a bare
 * address, our own name or address, then (helo_require_resolve) an A or
 * AAAA record for it.  Trusted clients skip the stage; a DNS time-out
 * passes.
 */
#include "policy_stage.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "../log/log.h"
#include "../util/util.h"

static void on_helo(struct policy_sess *ps, const struct dns_result *r, int idx)
{
	(void)idx;
	if (r->status == DNS_OK) {
		ps->helo_found = 1;
	} else if (r->status == DNS_TEMPFAIL) {
		ps->helo_tempfail = 1;
	} else if (r->type == DNS_A && !ps->helo_try_aaaa) {
		/* No A: try AAAA before calling the name unresolvable. */
		ps->helo_try_aaaa = 1;
		policy_query(ps, ps->helo, DNS_AAAA, on_helo, 0);
	}
}

/* A HELO argument that is a domain or an address literal. */
static int helo_syntax_ok(const char *h, size_t len)
{
	uint8_t ip[16];

	if (len >= 2 && h[0] == '[' && h[len - 1] == ']') {
		if (len > 7 && strncasecmp(h + 1, "IPv6:", 5) == 0)
			return policy_ip_parse(h + 6, len - 7, ip) == 0 &&
			       memchr(h + 6, ':', len - 7) != NULL;
		return policy_ip_parse(h + 1, len - 2, ip) == 0 &&
		       memchr(h + 1, ':', len - 2) == NULL;
	}
	if (policy_ip_parse(h, len, ip) == 0)
		return 1; /* bare address: syntax-wise tolerated; its own check below */
	return policy_domain_ok(h, len);
}

static enum policy_action check_helo(struct policy_sess *ps, const struct policy_snap *sn,
				     const struct step_args *a, struct policy_verdict *v)
{
	const struct policy_settings *set = &sn->set;
	const char *h = a->helo;
	size_t len = a->helolen;
	uint8_t ip[16];

	if (ps->trusted)
		return POLICY_CONTINUE;
	if (set->helo_required_syntax && !helo_syntax_ok(h, len)) {
		policy_verdict_set(v, POLICY_REFUSE, "501 5.5.2", "helo_syntax", NULL, "");
		policy_vtext(ps, v, set->helo_text, NULL);
		snprintf(v->text + strlen(v->text), sizeof(v->text) - strlen(v->text),
			 ": invalid name");
		return POLICY_REFUSE;
	}
	if (set->helo_reject_bare_ip && policy_ip_parse(h, len, ip) == 0) {
		policy_verdict_set(v, POLICY_REFUSE, "550 5.7.1", "helo_bare_ip", NULL, "");
		policy_vtext(ps, v, set->helo_text, NULL);
		snprintf(v->text + strlen(v->text), sizeof(v->text) - strlen(v->text),
			 ": address literal needs brackets");
		return POLICY_REFUSE;
	}
	if (set->helo_reject_own) {
		int own = ps->p != NULL && strlen(ps->p->hostname) == len &&
			  strncasecmp(ps->p->hostname, h, len) == 0;

		if (!own && ps->has_local && len >= 2 && h[0] == '[' && h[len - 1] == ']') {
			size_t off = (len > 7 && strncasecmp(h + 1, "IPv6:", 5) == 0) ? 6 : 1;

			own = policy_ip_parse(h + off, len - off - 1, ip) == 0 &&
			      memcmp(ip, ps->local_ip, 16) == 0;
		}
		if (!own && ps->has_local && policy_ip_parse(h, len, ip) == 0)
			own = memcmp(ip, ps->local_ip, 16) == 0;
		if (own) {
			policy_verdict_set(v, POLICY_REFUSE, "550 5.7.1", "helo_own", NULL, "");
			policy_vtext(ps, v, set->helo_text, NULL);
			snprintf(v->text + strlen(v->text), sizeof(v->text) - strlen(v->text),
				 ": you are not me");
			return POLICY_REFUSE;
		}
	}
	return POLICY_CONTINUE;
}

static enum policy_action check_helo_dns(struct policy_sess *ps, const struct policy_snap *sn,
					 const struct step_args *a, struct policy_verdict *v)
{
	uint8_t ip[16];

	if (ps->helo_dns == A_WAIT) {
		ps->helo_dns = A_NONE; /* a later HELO starts over */
		if (ps->helo_found)
			return POLICY_CONTINUE;
		if (ps->helo_tempfail) {
			log_info(ps->idstr, "policy", "helo tempfail name=%s (passing)", ps->helo);
			return POLICY_CONTINUE;
		}
		policy_verdict_set(v, POLICY_REFUSE, "550 5.7.1", "helo_resolve", NULL, "");
		policy_vtext(ps, v, sn->set.helo_text, NULL);
		snprintf(v->text + strlen(v->text), sizeof(v->text) - strlen(v->text),
			 ": host not found");
		return POLICY_REFUSE;
	}
	if (ps->trusted || !sn->set.helo_require_resolve || a->helolen == 0 ||
	    a->helo[0] == '[' || policy_ip_parse(a->helo, a->helolen, ip) == 0 ||
	    a->helolen >= sizeof(ps->helo) || !policy_domain_ok(a->helo, a->helolen) ||
	    policy_sess_dns(ps) == NULL)
		return POLICY_CONTINUE;
	memcpy(ps->helo, a->helo, a->helolen);
	ps->helo[a->helolen] = '\0';
	ps->helo_found = 0;
	ps->helo_tempfail = 0;
	ps->helo_try_aaaa = 0;
	ps->helo_dns = A_WAIT;
	policy_query(ps, ps->helo, DNS_A, on_helo, 0);
	return POLICY_PENDING;
}

static const struct check helo_checks[] = {
	{ "helo", check_helo, CHECK_DELAYABLE },
	{ "helo_resolve", check_helo_dns, CHECK_DELAYABLE },
};

enum policy_action policy_helo(struct policy_sess *ps, const char *helo, size_t len,
			       struct policy_verdict *v)
{
	struct step_args a;

	memset(&a, 0, sizeof(a));
	a.helo = helo;
	a.helolen = len;
	if (ps->step != STEP_HELO)
		ps->delayed[1].action = POLICY_CONTINUE; /* a new HELO is judged anew */
	return policy_run_stage(ps, STEP_HELO, helo_checks, ARRAY_LEN(helo_checks), &a, v);
}

