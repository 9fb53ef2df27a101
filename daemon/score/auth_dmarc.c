/*
 * auth_dmarc: DMARC (RFC 7489) on the results of SPF and DKIM.  See auth.h.
 *
 * The From: domain (one address, else permerror), its organisational
 * domain through libpsl (the newest of the built-in and the system public
 * suffix list), the policy record at _dmarc.<From domain>, else at
 * _dmarc.<organisational domain>; identifier alignment (relaxed: same
 * organisational domain, strict: same name) of the SPF-checked domain and
 * of each passing DKIM d=; pass when one of them is aligned and passed,
 * else fail with the policy (sp= for a subdomain that uses its
 * organisation's record), and pct= sampling: mail left out of the sample
 * gets the next milder disposition (RFC 7489 6.6.4).
 *
 * No record, several records, or a record without a valid p= is "none"
 * (RFC 7489 6.6.3): DMARC does not apply.  A DNS time-out is temperror.
 * Reports (rua=, ruf=) are not sent.
 *
 * At most one DNS query is in flight; cancelling marks the object, which
 * frees itself when the answer comes back.
 */
#include "auth.h"

#include <libpsl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../dns/dns.h"
#include "../util/util.h"

const char *auth_dmarc_policy_name(enum auth_dmarc_policy p)
{
	switch (p) {
	case DMARC_P_NONE:
		return "none";
	case DMARC_P_QUARANTINE:
		return "quarantine";
	case DMARC_P_REJECT:
		return "reject";
	case DMARC_P_UNSET:
		break;
	}
	return "";
}

static int parse_policy(const struct auth_tag *t, enum auth_dmarc_policy *out)
{
	if (t->value_len == 4 && strncasecmp(t->value, "none", 4) == 0)
		*out = DMARC_P_NONE;
	else if (t->value_len == 10 && strncasecmp(t->value, "quarantine", 10) == 0)
		*out = DMARC_P_QUARANTINE;
	else if (t->value_len == 6 && strncasecmp(t->value, "reject", 6) == 0)
		*out = DMARC_P_REJECT;
	else
		return -1;
	return 0;
}

static int tag_is(const struct auth_tag *t, const char *name)
{
	return strlen(name) == t->name_len && strncasecmp(t->name, name, t->name_len) == 0;
}

int auth_dmarc_parse(const char *rec, size_t len, struct auth_dmarc_record *out,
		     char *err, size_t errsz)
{
	struct auth_tag t;
	size_t pos = 0;
	int first = 1;
	int rc;

	out->p = DMARC_P_UNSET;
	out->sp = DMARC_P_UNSET;
	out->adkim_strict = 0;
	out->aspf_strict = 0;
	out->pct = 100;
	while ((rc = auth_tag_next(rec, len, &pos, &t)) == 1) {
		if (first) {
			/* v=DMARC1 must come first, exactly (RFC 7489 6.3) */
			if (!tag_is(&t, "v") || t.value_len != 6 ||
			    memcmp(t.value, "DMARC1", 6) != 0) {
				snprintf(err, errsz, "not a DMARC record (v=DMARC1 first)");
				return -1;
			}
			first = 0;
			continue;
		}
		if (tag_is(&t, "p")) {
			if (parse_policy(&t, &out->p) < 0) {
				snprintf(err, errsz, "p= is not none, quarantine or reject");
				return -1;
			}
		} else if (tag_is(&t, "sp")) {
			if (parse_policy(&t, &out->sp) < 0) {
				snprintf(err, errsz, "sp= is not none, quarantine or reject");
				return -1;
			}
		} else if (tag_is(&t, "adkim") || tag_is(&t, "aspf")) {
			int *strict = t.name[1] == 'd' || t.name[1] == 'D' ? &out->adkim_strict :
									     &out->aspf_strict;

			if (t.value_len == 1 && (t.value[0] == 's' || t.value[0] == 'S'))
				*strict = 1;
			else if (t.value_len == 1 && (t.value[0] == 'r' || t.value[0] == 'R'))
				*strict = 0;
			else {
				snprintf(err, errsz, "%.*s= is not r or s", (int)t.name_len, t.name);
				return -1;
			}
		} else if (tag_is(&t, "pct")) {
			int v = 0;
			size_t i;

			if (t.value_len == 0 || t.value_len > 3) {
				snprintf(err, errsz, "pct= is not 0..100");
				return -1;
			}
			for (i = 0; i < t.value_len; i++) {
				if (t.value[i] < '0' || t.value[i] > '9') {
					snprintf(err, errsz, "pct= is not 0..100");
					return -1;
				}
				v = v * 10 + (t.value[i] - '0');
			}
			if (v > 100) {
				snprintf(err, errsz, "pct= is not 0..100");
				return -1;
			}
			out->pct = v;
		}
		/* rua ruf fo rf ri and unknown tags: ignored */
	}
	if (rc < 0 || first) {
		snprintf(err, errsz, first ? "empty record" : "tag list syntax error");
		return -1;
	}
	if (out->p == DMARC_P_UNSET) {
		snprintf(err, errsz, "no p=");
		return -1;
	}
	return 0;
}

/*
 * From: "Name <local@domain>", "local@domain (comment)", quoted strings and
 * comments skipped.  Exactly one address.
 */
int auth_from_domain(const char *v, size_t len, char *out, size_t outsz)
{
	char addr[512];
	size_t an = 0;
	size_t i;
	int depth = 0;
	int quoted = 0;
	int angle = 0;
	int angles = 0;
	size_t addresses = 1;
	const char *at;
	size_t dl;
	size_t k;

	/* Collect the addr-spec: inside <> when there is one, else everything. */
	for (i = 0; i < len; i++) {
		char c = v[i];

		if (quoted) {
			if (c == '\\' && i + 1 < len)
				i++;
			else if (c == '"')
				quoted = 0;
			continue;
		}
		if (depth > 0) {
			if (c == '\\' && i + 1 < len)
				i++;
			else if (c == '(')
				depth++;
			else if (c == ')')
				depth--;
			continue;
		}
		if (c == '(') {
			depth = 1;
			continue;
		}
		if (c == '"' && !angle) {
			quoted = 1;
			continue;
		}
		if (c == '<') {
			if (angle)
				return -1;
			angle = 1;
			angles++;
			an = 0;
			continue;
		}
		if (c == '>') {
			if (!angle)
				return -1;
			angle = 0;
			continue;
		}
		if (c == ',' && !angle) {
			addresses++;
			continue;
		}
		if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
			continue;
		if (angles > 0 && !angle)
			continue; /* text after <...> */
		if (an + 1 >= sizeof(addr))
			return -1;
		addr[an++] = c;
	}
	addr[an] = '\0';
	if (quoted || depth > 0 || angle || addresses != 1 || angles > 1)
		return -1;
	at = strrchr(addr, '@');
	if (at == NULL)
		return -1;
	at++;
	dl = strlen(at);
	if (dl > 0 && at[dl - 1] == '.')
		dl--;
	if (!auth_domain_ok(at, dl, 0) || dl >= outsz || at[0] == '[')
		return -1;
	for (k = 0; k < dl; k++)
		out[k] = (at[k] >= 'A' && at[k] <= 'Z') ? (char)(at[k] + 32) : at[k];
	out[dl] = '\0';
	return 0;
}

static const psl_ctx_t *psl;
static pthread_once_t psl_once = PTHREAD_ONCE_INIT;

static void psl_load(void)
{
	/* The newer of the built-in list and the system's (publicsuffix package). */
	psl = psl_latest(NULL);
	if (psl == NULL)
		psl = psl_builtin();
}

int auth_org_domain(const char *domain, char *out, size_t outsz)
{
	char lower[AUTH_NAME_MAX + 1];
	const char *reg;
	size_t i;
	size_t n = strlen(domain);

	if (n == 0 || n >= sizeof(lower))
		return -1;
	for (i = 0; i <= n; i++)
		lower[i] = (domain[i] >= 'A' && domain[i] <= 'Z') ? (char)(domain[i] + 32) : domain[i];
	pthread_once(&psl_once, psl_load);
	reg = psl != NULL ? psl_registrable_domain(psl, lower) : NULL;
	/* A public suffix itself (or no list): the name is its own organisation. */
	if (reg == NULL)
		reg = lower;
	if (strlen(reg) >= outsz)
		return -1;
	strlcpy_s(out, reg, outsz);
	return 0;
}

/* ---- evaluation --------------------------------------------------------- */

struct auth_dmarc {
	struct dns *dns;
	auth_dmarc_cb cb;
	void *arg;
	int cancelled;
	int asked_org;
	char org[AUTH_NAME_MAX + 1];
	struct auth_spf_result spf;
	struct auth_dkim_results dkim;
	struct auth_dmarc_result res;
};

static void dmarc_finish(struct auth_dmarc *m, enum auth_res r, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void dmarc_finish(struct auth_dmarc *m, enum auth_res r, const char *fmt, ...)
{
	va_list ap;

	m->res.res = r;
	va_start(ap, fmt);
	vsnprintf(m->res.reason, sizeof(m->res.reason), fmt, ap);
	va_end(ap);
	m->cb(&m->res, m->arg);
	free(m);
}

static int aligned(const char *id, const char *from, const char *from_org, int strict)
{
	char org[AUTH_NAME_MAX + 1];

	if (strcasecmp(id, from) == 0)
		return 1;
	if (strict || auth_org_domain(id, org, sizeof(org)) < 0)
		return 0;
	return strcasecmp(org, from_org) == 0;
}

static enum auth_dmarc_policy milder(enum auth_dmarc_policy p)
{
	return p == DMARC_P_REJECT ? DMARC_P_QUARANTINE : DMARC_P_NONE;
}

static void dmarc_judge(struct auth_dmarc *m, const struct auth_dmarc_record *rec)
{
	const char *from = m->res.from_domain;
	const char *why_spf = "";
	size_t i;
	int sub = strcasecmp(m->res.policy_domain, from) != 0;

	m->res.policy = sub && rec->sp != DMARC_P_UNSET ? rec->sp : rec->p;
	m->res.disposition = DMARC_P_NONE;
	if (m->spf.res == AUTH_PASS && strcmp(m->spf.identity, "mailfrom") == 0) {
		if (aligned(m->spf.domain, from, m->org, rec->aspf_strict)) {
			dmarc_finish(m, AUTH_PASS, "SPF passed for %s, aligned with %s",
				     m->spf.domain, from);
			return;
		}
		why_spf = "SPF passed but not aligned";
	}
	for (i = 0; i < m->dkim.n; i++) {
		const struct auth_dkim_result *k = &m->dkim.r[i];

		if (k->res == AUTH_PASS && aligned(k->d, from, m->org, rec->adkim_strict)) {
			dmarc_finish(m, AUTH_PASS, "DKIM passed for %s, aligned with %s", k->d,
				     from);
			return;
		}
	}
	m->res.disposition = m->res.policy;
	if (rec->pct < 100) {
		uint32_t r;

		random_bytes(&r, sizeof(r));
		if (r % 100 >= (uint32_t)rec->pct)
			m->res.disposition = milder(m->res.policy);
	}
	dmarc_finish(m, AUTH_FAIL, "no aligned SPF or DKIM pass for %s%s%s", from,
		     why_spf[0] != '\0' ? ": " : "", why_spf);
}

static void on_policy(const struct dns_result *r, uint64_t cookie, void *ctx);

static void ask(struct auth_dmarc *m, const char *domain)
{
	char name[AUTH_NAME_MAX + 16];

	strlcpy_s(m->res.policy_domain, domain, sizeof(m->res.policy_domain));
	snprintf(name, sizeof(name), "_dmarc.%s", domain);
	dns_query(m->dns, name, DNS_TXT_FULL, on_policy, 0, m);
}

static void on_policy(const struct dns_result *r, uint64_t cookie, void *ctx)
{
	struct auth_dmarc *m = ctx;
	struct auth_dmarc_record rec;
	const char *t;
	const char *found = NULL;
	size_t n = 0;
	char err[120];

	(void)cookie;
	if (m->cancelled) {
		free(m);
		return;
	}
	if (r->status == DNS_TEMPFAIL || r->status == DNS_CANCELLED) {
		dmarc_finish(m, AUTH_TEMPERROR, "DNS error looking up _dmarc.%s",
			     m->res.policy_domain);
		return;
	}
	for (t = dns_txt_next(r, NULL); t != NULL; t = dns_txt_next(r, t)) {
		if (strncmp(t, "v=DMARC1", 8) == 0 &&
		    (t[8] == ';' || t[8] == ' ' || t[8] == '\t' || t[8] == '\0')) {
			found = t;
			n++;
		}
	}
	if (n == 0 && !m->asked_org && strcmp(m->org, m->res.from_domain) != 0) {
		m->asked_org = 1;
		ask(m, m->org);
		return;
	}
	if (n == 0) {
		dmarc_finish(m, AUTH_NONE, "no DMARC record for %s", m->res.from_domain);
		return;
	}
	if (n > 1) {
		dmarc_finish(m, AUTH_NONE, "more than one DMARC record at _dmarc.%s",
			     m->res.policy_domain);
		return;
	}
	if (auth_dmarc_parse(found, strlen(found), &rec, err, sizeof(err)) < 0) {
		dmarc_finish(m, AUTH_NONE, "_dmarc.%s: %s", m->res.policy_domain, err);
		return;
	}
	dmarc_judge(m, &rec);
}

static void on_bad_from(const struct dns_result *r, uint64_t cookie, void *ctx)
{
	struct auth_dmarc *m = ctx;

	(void)r;
	(void)cookie;
	if (m->cancelled) {
		free(m);
		return;
	}
	dmarc_finish(m, AUTH_PERMERROR, "%s", m->res.reason);
}

struct auth_dmarc *auth_dmarc_start(struct dns *d, const struct auth_dmarc_in *in,
				    auth_dmarc_cb cb, void *arg)
{
	struct auth_dmarc *m = xcalloc(1, sizeof(*m));

	m->dns = d;
	m->cb = cb;
	m->arg = arg;
	m->spf = *in->spf;
	m->dkim = *in->dkim;
	m->res.policy = DMARC_P_UNSET;
	m->res.disposition = DMARC_P_NONE;
	if (in->from_count != 1 ||
	    auth_from_domain(in->from_value, in->from_len, m->res.from_domain,
			     sizeof(m->res.from_domain)) < 0 ||
	    auth_org_domain(m->res.from_domain, m->org, sizeof(m->org)) < 0) {
		m->res.from_domain[0] = '\0';
		snprintf(m->res.reason, sizeof(m->res.reason), "%s",
			 in->from_count == 0 ? "no From: field" :
			 in->from_count > 1 ? "more than one From: field" :
			 "From: is not one address with a domain");
		/* Answer from the loop, never inside this call. */
		dns_query(d, "", DNS_TXT_FULL, on_bad_from, 0, m);
		return m;
	}
	ask(m, m->res.from_domain);
	return m;
}

void auth_dmarc_cancel(struct auth_dmarc *m)
{
	if (m != NULL)
		m->cancelled = 1;
}
