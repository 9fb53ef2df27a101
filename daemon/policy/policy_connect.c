/*
 * policy_connect: the connect stage, before the banner.  Called through
 * policy_connect() by smtp_session.c once per connection (again after a
 * PENDING).  In order: the client address on conn_allow/conn_deny (and
 * relay_net / relay_exempt as facts for RCPT), connection limits and the
 * trusted reserve, reverse DNS (PTR, then forward confirmation), host-name
 * entries, the PTR/FCrDNS requirements, and the DNS blocklists (all sites
 * at once; one verdict from their weights).  A refusal here closes the
 * session, except that with delay_reject every refusal but the connection
 * limits is kept for RCPT (policy.c's stage runner, CHECK_DELAYABLE).
 * DNS trouble never refuses: the check passes and says so.
 */
#include "policy_stage.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "../log/log.h"
#include "../util/util.h"

/* --- DNS answers ---------------------------------------------------------- */

static int addr_equal(const struct policy_sess *ps, const struct dns_result *r, size_t i)
{
	if (r->type == DNS_A)
		return ps->ip[10] == 0xff && memcmp(ps->ip + 12, &r->u.a[i], 4) == 0;
	return memcmp(ps->ip, &r->u.aaaa[i], 16) == 0;
}

static void on_fwd(struct policy_sess *ps, const struct dns_result *r, int idx)
{
	size_t i;

	if (r->status != DNS_OK || ps->fcrdns)
		return;
	for (i = 0; i < r->count; i++) {
		if (addr_equal(ps, r, i)) {
			ps->fcrdns = 1;
			strlcpy_s(ps->name, ps->ptr_names[idx], sizeof(ps->name));
			return;
		}
	}
}

static void on_ptr(struct policy_sess *ps, const struct dns_result *r, int idx)
{
	size_t i;
	int v4 = ps->sa.ss_family == AF_INET;

	(void)idx;
	ps->ptr_status = r->status;
	ps->ptr_known = r->status != DNS_TEMPFAIL && r->status != DNS_CANCELLED;
	if (r->status == DNS_TEMPFAIL)
		log_info(ps->idstr, "policy", "rdns tempfail client=[%s] (passing)", ps->addr);
	if (r->status != DNS_OK)
		return;
	for (i = 0; i < r->count && ps->nptr < MAX_PTR_NAMES; i++) {
		char *n = ps->ptr_names[ps->nptr];

		strlcpy_s(n, r->u.ptr[i], DNS_NAME_MAX + 1);
		if (n[0] != '\0' && n[strlen(n) - 1] == '.')
			n[strlen(n) - 1] = '\0';
		if (!policy_domain_ok(n, strlen(n)))
			continue;
		policy_query(ps, n, v4 ? DNS_A : DNS_AAAA, on_fwd, ps->nptr);
		ps->nptr++;
	}
}

static void on_bl(struct policy_sess *ps, const struct dns_result *r, int idx)
{
	const struct policy_dnsbl_site *site;
	size_t i;

	if ((size_t)idx >= ps->snap->nsites)
		return;
	site = &ps->snap->sites[idx];
	if (r->status == DNS_TEMPFAIL) {
		ps->bl[idx].tempfail = 1;
		log_warn(ps->idstr, "policy", "DNSBL TEMPFAIL zone=%s client=[%s] (passing)",
			 site->zone, ps->addr);
		policy_stat_add(ps->p, site->zone, 1, 0, 0, 0, 1, 0);
		return;
	}
	if (r->status != DNS_OK || r->type != DNS_A)
		return;
	for (i = 0; i < r->count; i++) {
		uint32_t a = ntohl(r->u.a[i].s_addr);

		if (policy_codes_match(&site->codes, a)) {
			ps->bl[idx].hit = 1;
			ps->bl[idx].code = a;
			policy_stat_add(ps->p, site->zone, 1, 0, 0, 1, 0, time_now_ms());
			return;
		}
	}
}

/* --- checks --------------------------------------------------------------- */

static enum policy_action check_conn_ip(struct policy_sess *ps, const struct policy_snap *sn,
					const struct step_args *a, struct policy_verdict *v)
{
	const struct policy_ref *allow = policy_list_match_ip(&sn->lists[PL_CONN_ALLOW], ps->ip);
	const struct policy_ref *deny = policy_list_match_ip(&sn->lists[PL_CONN_DENY], ps->ip);

	(void)a;
	ps->relay_client = policy_list_match_ip(&sn->lists[PL_RELAY_NET], ps->ip) != NULL;
	ps->relay_exempt = policy_list_match_ip(&sn->lists[PL_RELAY_EXEMPT], ps->ip) != NULL;
	switch (policy_allow_deny(allow, deny, sn->set.conn_allow_wins)) {
	case POLICY_REFUSE:
		policy_verdict_set(v, POLICY_REFUSE, "554 5.7.1", "conn_deny", deny, "");
		policy_vtext(ps, v, sn->set.conn_deny_text, NULL);
		v->close = 1;
		return POLICY_REFUSE;
	case POLICY_ACCEPT:
		ps->trusted = 1;
		return POLICY_CONTINUE;
	default:
		return POLICY_CONTINUE;
	}
}

static enum policy_action check_limits(struct policy_sess *ps, const struct policy_snap *sn,
				       const struct step_args *a, struct policy_verdict *v)
{
	const struct policy_settings *set = &sn->set;
	int64_t reserve;
	int64_t rate;

	(void)a;
	if (ps->p == NULL || ps->trusted)
		return POLICY_CONTINUE;
	/* The reserve only matters when someone is allow-listed to use it. */
	reserve = sn->lists[PL_CONN_ALLOW].count > 0 ? set->trusted_reserve : 0;
	if (reserve >= ps->p->max_sessions)
		reserve = ps->p->max_sessions - 1;
	if (reserve > 0 && ps->nsessions > ps->p->max_sessions - reserve) {
		log_warn(ps->idstr, "policy", "SESSION RESERVE LIMIT from [%s]", ps->addr);
		policy_verdict_set(v, POLICY_DEFER, "421 4.7.0", "session_reserve", NULL,
			"Too many connections, try again later");
		v->close = 1;
		return POLICY_DEFER;
	}
	if (set->client_max_sessions > 0 && ps->client->sessions > set->client_max_sessions) {
		log_warn(ps->idstr, "policy", "CLIENT SESSION LIMIT from [%s]", ps->addr);
		policy_verdict_set(v, POLICY_DEFER, "421 4.7.0", "client_max_sessions", NULL,
			"Too many connections from your address, try again later");
		v->close = 1;
		return POLICY_DEFER;
	}
	rate = policy_client_rate(ps->client, time_now_ms(), 0);
	if (set->client_max_rate > 0 && rate > set->client_max_rate) {
		log_warn(ps->idstr, "policy", "CLIENT RATE LIMIT from [%s] rate=%lld/min",
			 ps->addr, (long long)rate);
		policy_verdict_set(v, POLICY_DEFER, "421 4.7.0", "client_max_rate", NULL,
			"Too many connections from your address, try again later");
		v->close = 1;
		return POLICY_DEFER;
	}
	return POLICY_CONTINUE;
}

static int need_rdns(const struct policy_snap *sn)
{
	return sn->set.reverse_lookup || sn->set.require_ptr || sn->set.require_fcrdns ||
	       sn->lists[PL_CONN_ALLOW].has_names || sn->lists[PL_CONN_DENY].has_names ||
	       sn->lists[PL_RELAY_NET].has_names || sn->lists[PL_RELAY_EXEMPT].has_names ||
	       sn->set.relay_enforce == POLICY_RELAY_EXTERNAL;
}

static enum policy_action check_rdns(struct policy_sess *ps, const struct policy_snap *sn,
				     const struct step_args *a, struct policy_verdict *v)
{
	(void)a;
	(void)v;
	if (ps->rdns == A_DONE)
		return POLICY_CONTINUE;
	if (ps->rdns == A_WAIT) {
		ps->rdns = A_DONE;
		log_debug(ps->idstr, "policy", "rdns client=[%s] ptr=%s name=%s fcrdns=%d",
			  ps->addr, ps->nptr ? ps->ptr_names[0] : "-",
			  ps->name[0] ? ps->name : "-", ps->fcrdns);
		return POLICY_CONTINUE;
	}
	if (!need_rdns(sn) || policy_sess_dns(ps) == NULL) {
		ps->rdns = A_DONE;
		return POLICY_CONTINUE;
	}
	ps->rdns = A_WAIT;
	policy_query_ptr(ps, on_ptr);
	return POLICY_PENDING;
}

static enum policy_action check_conn_name(struct policy_sess *ps, const struct policy_snap *sn,
					  const struct step_args *a, struct policy_verdict *v)
{
	const struct policy_ref *allow;
	const struct policy_ref *deny;

	(void)a;
	if (!ps->fcrdns)
		return POLICY_CONTINUE;
	if (!ps->relay_client)
		ps->relay_client = policy_list_match_host(&sn->lists[PL_RELAY_NET], ps->name) != NULL;
	if (!ps->relay_exempt)
		ps->relay_exempt =
			policy_list_match_host(&sn->lists[PL_RELAY_EXEMPT], ps->name) != NULL;
	if (ps->trusted)
		return POLICY_CONTINUE;
	allow = policy_list_match_host(&sn->lists[PL_CONN_ALLOW], ps->name);
	deny = policy_list_match_host(&sn->lists[PL_CONN_DENY], ps->name);
	switch (policy_allow_deny(allow, deny, sn->set.conn_allow_wins)) {
	case POLICY_REFUSE:
		policy_verdict_set(v, POLICY_REFUSE, "554 5.7.1", "conn_deny", deny, "");
		policy_vtext(ps, v, sn->set.conn_deny_text, NULL);
		v->close = 1;
		return POLICY_REFUSE;
	case POLICY_ACCEPT:
		ps->trusted = 1;
		return POLICY_CONTINUE;
	default:
		return POLICY_CONTINUE;
	}
}

static enum policy_action check_rdns_require(struct policy_sess *ps,
					     const struct policy_snap *sn,
					     const struct step_args *a, struct policy_verdict *v)
{
	(void)a;
	if (ps->trusted || ps->p == NULL || ps->p->dns == NULL)
		return POLICY_CONTINUE;
	/* A temporary failure proves nothing: pass (fail open). */
	if (sn->set.require_ptr && ps->ptr_known && ps->nptr == 0) {
		policy_verdict_set(v, POLICY_REFUSE, "550 5.7.25", "require_ptr", NULL, "");
		policy_vtext(ps, v, sn->set.require_ptr_text, NULL);
		v->close = 1;
		return POLICY_REFUSE;
	}
	if (sn->set.require_fcrdns && !ps->fcrdns &&
	    (ps->ptr_known || ps->nptr > 0)) {
		policy_verdict_set(v, POLICY_REFUSE, "550 5.7.25", "require_fcrdns", NULL, "");
		policy_vtext(ps, v, sn->set.require_fcrdns_text, NULL);
		v->close = 1;
		return POLICY_REFUSE;
	}
	return POLICY_CONTINUE;
}

static enum policy_action dnsbl_verdict(struct policy_sess *ps, const struct policy_snap *sn,
					struct policy_verdict *v)
{
	const struct policy_dnsbl_site *worst = NULL;
	char code[INET_ADDRSTRLEN];
	int score = 0;
	size_t i;

	for (i = 0; i < sn->nsites; i++) {
		if (ps->bl[i].hit && sn->sites[i].allow) {
			log_info(ps->idstr, "policy", "dnswl hit zone=%s client=[%s]: exempt",
				 sn->sites[i].zone, ps->addr);
			return POLICY_CONTINUE;
		}
	}
	for (i = 0; i < sn->nsites; i++) {
		const struct policy_dnsbl_site *s = &sn->sites[i];
		struct in_addr ca;

		if (!ps->bl[i].hit || s->allow)
			continue;
		ca.s_addr = htonl(ps->bl[i].code);
		inet_ntop(AF_INET, &ca, code, sizeof(code));
		log_info(ps->idstr, "policy", "dnsbl hit zone=%s client=[%s] code=%s action=%s",
			 s->zone, ps->addr, code, s->action == POLICY_DNSBL_REFUSE ? "refuse"
			 : s->action == POLICY_DNSBL_TAG ? "tag" : "log");
		if (s->action == POLICY_DNSBL_TAG && ps->ntags < MAX_TAGS) {
			snprintf(ps->tags[ps->ntags++], sizeof(ps->tags[0]),
				 "dnsbl=%s client=%s code=%s", s->zone, ps->addr, code);
			policy_stat_add(ps->p, "dnsbl_tag", 0, 1, 0, 0, 0, 0);
		} else if (s->action == POLICY_DNSBL_REFUSE) {
			score += s->weight;
			if (worst == NULL || s->weight > worst->weight)
				worst = s;
		}
	}
	if (worst == NULL || score < sn->set.dnsbl_threshold)
		return POLICY_CONTINUE;
	policy_verdict_set(v, POLICY_REFUSE, "554 5.7.1", "dnsbl", NULL, "");
	snprintf(v->entry, sizeof(v->entry), "dnsbl_site %lld %s score=%d",
		 (long long)worst->id, worst->zone, score);
	policy_vtext(ps, v, worst->message[0] ? worst->message : sn->set.dnsbl_default_text,
	      worst->zone);
	v->close = 1;
	return POLICY_REFUSE;
}

static enum policy_action check_dnsbl(struct policy_sess *ps, const struct policy_snap *sn,
				      const struct step_args *a, struct policy_verdict *v)
{
	char rev[80];
	char name[DNS_NAME_MAX + 1];
	size_t i;
	int n = 0;

	(void)a;
	if (ps->dnsbl == A_WAIT) {
		ps->dnsbl = A_DONE;
		return dnsbl_verdict(ps, sn, v);
	}
	if (ps->dnsbl == A_DONE || ps->trusted || sn->nsites == 0)
		return POLICY_CONTINUE;
	if (policy_sess_dns(ps) == NULL ||
	    dns_reverse_name((struct sockaddr *)&ps->sa, rev, sizeof(rev)) < 0) {
		ps->dnsbl = A_DONE;
		return POLICY_CONTINUE;
	}
	/* Every enabled site at once; the verdict waits for all of them. */
	for (i = 0; i < sn->nsites; i++) {
		if (!sn->sites[i].enabled)
			continue;
		if (snprintf(name, sizeof(name), "%s.%s", rev, sn->sites[i].zone) >=
		    (int)sizeof(name))
			continue;
		policy_stat_add(ps->p, sn->sites[i].zone, 1, 0, 1, 0, 0, 0);
		policy_query(ps, name, DNS_A, on_bl, (int)i);
		n++;
	}
	ps->dnsbl = n > 0 ? A_WAIT : A_DONE;
	return n > 0 ? POLICY_PENDING : POLICY_CONTINUE;
}

/* Every refusal but the connection limits may wait for RCPT (delay_reject). */
static const struct check connect_checks[] = {
	{ "conn_ip", check_conn_ip, CHECK_DELAYABLE },
	{ "limits", check_limits, 0 },
	{ "rdns", check_rdns, 0 },
	{ "conn_name", check_conn_name, CHECK_DELAYABLE },
	{ "rdns_require", check_rdns_require, CHECK_DELAYABLE },
	{ "dnsbl", check_dnsbl, CHECK_DELAYABLE },
};

enum policy_action policy_connect(struct policy_sess *ps, int nsessions,
				  struct policy_verdict *v)
{
	struct step_args a;

	memset(&a, 0, sizeof(a));
	ps->nsessions = nsessions;
	return policy_run_stage(ps, STEP_CONNECT, connect_checks, ARRAY_LEN(connect_checks), &a, v);
}

