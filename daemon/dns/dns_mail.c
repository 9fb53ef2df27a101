/*
 * dns_mail: does a domain receive mail?  See dns_query_mail() in dns.h.
 * Called by the recipient-domain check of policy/ (policy_rcpt.c).
 *
 * One heap request per domain asked.  It owns a reference for itself
 * until the verdict is given and one for every dns_query() it started;
 * dns_query() promises each callback exactly once (DNS_CANCELLED when
 * dns_free() runs), so the request is freed by whichever comes last: the
 * verdict or the last answer.  After the verdict the late answers still
 * land in the resolver cache and are otherwise dropped, so a live primary
 * MX host answers the caller without waiting for a backup host whose
 * servers time out.  No DNS parsing here: c-ares parses in dns.c.
 */
#include "dns.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../util/util.h"

struct mail_req {
	struct dns *d;
	dns_mail_cb cb;
	uint64_t cookie;
	void *ctx;
	int refs;
	int done;                /* the verdict was given */
	uint32_t ttl;            /* smallest TTL of every answer so far */
	uint32_t mx_ttl;         /* of the MX answer */
	char domain[DNS_NAME_MAX + 1];
	size_t nhosts;
	size_t skipped;          /* MX hosts that are IP addresses */
	char names[DNS_MAIL_MAX_HOSTS][DNS_NAME_MAX + 1];
	struct dns_mail_host hosts[DNS_MAIL_MAX_HOSTS];
	int implicit;            /* no MX: the domain's own A/AAAA */
};

/* A query of req: which host (or the domain itself) and which type. */
struct mail_sub {
	struct mail_req *req;
	size_t host;
};

const char *dns_mail_why_name(enum dns_mail_why w)
{
	switch (w) {
	case DNS_MAIL_NXDOMAIN:
		return "nxdomain";
	case DNS_MAIL_NULL_MX:
		return "null_mx";
	case DNS_MAIL_NO_RECORDS:
		return "no_records";
	case DNS_MAIL_MX_NO_ADDRESS:
		return "mx_no_address";
	case DNS_MAIL_WHY_NONE:
		break;
	}
	return "";
}

static int is_ip_address(const char *name)
{
	unsigned char a[16];

	return inet_pton(AF_INET, name, a) == 1 || inet_pton(AF_INET6, name, a) == 1;
}

int dns_mail_pick(const struct dns_result *mx, size_t max, const char **names, size_t *skipped)
{
	size_t n = 0;
	size_t i;
	size_t j;

	*skipped = 0;
	if (mx->count == 0)
		return 0;
	/* RFC 7505: "." as the most preferred host says "no mail" (as delivery reads it). */
	if (mx->u.mx[0].host[0] == '\0')
		return -1;
	for (i = 0; i < mx->count && n < max; i++) {
		const char *h = mx->u.mx[i].host;
		int dup = 0;

		if (h[0] == '\0')
			continue;
		if (is_ip_address(h)) {
			(*skipped)++;
			continue;
		}
		for (j = 0; j < n && !dup; j++)
			dup = strcasecmp(names[j], h) == 0;
		if (!dup)
			names[n++] = h;
	}
	return (int)n;
}

static int has_address(enum dns_status s)
{
	return s == DNS_OK;
}

static int no_address(enum dns_status s)
{
	return s == DNS_NXDOMAIN || s == DNS_NODATA || s == DNS_BADNAME;
}

int dns_mail_decide(const struct dns_mail_host *h, size_t n, enum dns_mail_status *out)
{
	size_t i;
	int missing = 0;
	int failed = 0;

	for (i = 0; i < n; i++) {
		if ((h[i].have_a && has_address(h[i].a)) ||
		    (h[i].have_aaaa && has_address(h[i].aaaa))) {
			*out = DNS_MAIL_LIVE;
			return 1;
		}
	}
	for (i = 0; i < n; i++) {
		if (!h[i].have_a || !h[i].have_aaaa) {
			missing = 1;
			continue;
		}
		if (h[i].a == DNS_CANCELLED || h[i].aaaa == DNS_CANCELLED) {
			*out = DNS_MAIL_CANCELLED;
			return 1;
		}
		if (!no_address(h[i].a) || !no_address(h[i].aaaa))
			failed = 1; /* TEMPFAIL: this host may have an address */
	}
	if (missing)
		return 0;
	*out = failed ? DNS_MAIL_TEMPFAIL : DNS_MAIL_DEAD;
	return 1;
}

static void req_unref(struct mail_req *q)
{
	if (--q->refs == 0)
		free(q);
}

static void min_ttl(struct mail_req *q, const struct dns_result *r)
{
	if (r->status != DNS_TEMPFAIL && r->status != DNS_CANCELLED && r->ttl < q->ttl)
		q->ttl = r->ttl;
}

/* Give the verdict once; drops the request's own reference. */
static void finish(struct mail_req *q, enum dns_mail_status st, enum dns_mail_why why,
		   const char *host)
{
	struct dns_mail_result res;

	if (q->done)
		return;
	q->done = 1;
	memset(&res, 0, sizeof(res));
	res.status = st;
	res.why = st == DNS_MAIL_DEAD ? why : DNS_MAIL_WHY_NONE;
	res.ttl = q->ttl == UINT32_MAX ? 0 : q->ttl;
	res.hosts = q->implicit ? 0 : q->nhosts + q->skipped;
	if (host != NULL)
		strlcpy_s(res.host, host, sizeof(res.host));
	q->cb(&res, q->cookie, q->ctx);
	req_unref(q);
}

static void addr_cb(const struct dns_result *r, uint64_t cookie, void *ctx)
{
	struct mail_sub *sub = ctx;
	struct mail_req *q = sub->req;
	struct dns_mail_host *h = &q->hosts[sub->host];
	enum dns_mail_status st;

	(void)cookie;
	if (!q->done) {
		if (r->type == DNS_A) {
			h->a = r->status;
			h->have_a = 1;
		} else {
			h->aaaa = r->status;
			h->have_aaaa = 1;
		}
		if (r->status == DNS_OK) {
			/* Live: the verdict rests on the MX and this answer only. */
			q->ttl = r->ttl < q->mx_ttl ? r->ttl : q->mx_ttl;
		} else {
			min_ttl(q, r);
		}
		if (dns_mail_decide(q->hosts, q->nhosts, &st))
			finish(q, st, q->implicit ? DNS_MAIL_NO_RECORDS : DNS_MAIL_MX_NO_ADDRESS,
			       st == DNS_MAIL_LIVE ? q->names[sub->host] : NULL);
	}
	free(sub);
	req_unref(q);
}

static void ask_addresses(struct mail_req *q, size_t i)
{
	static const enum dns_type types[] = { DNS_A, DNS_AAAA };
	size_t t;

	for (t = 0; t < ARRAY_LEN(types); t++) {
		struct mail_sub *sub = xcalloc(1, sizeof(*sub));

		sub->req = q;
		sub->host = i;
		q->refs++;
		dns_query(q->d, q->names[i], types[t], addr_cb, 0, sub);
	}
}

static void mx_cb(const struct dns_result *r, uint64_t cookie, void *ctx)
{
	struct mail_req *q = ctx;
	const char *names[DNS_MAIL_MAX_HOSTS];
	int n;
	size_t i;

	(void)cookie;
	min_ttl(q, r);
	q->mx_ttl = q->ttl;
	switch (r->status) {
	case DNS_CANCELLED:
		finish(q, DNS_MAIL_CANCELLED, DNS_MAIL_WHY_NONE, NULL);
		break;
	case DNS_TEMPFAIL:
		finish(q, DNS_MAIL_TEMPFAIL, DNS_MAIL_WHY_NONE, NULL);
		break;
	case DNS_NXDOMAIN:
	case DNS_BADNAME:
		finish(q, DNS_MAIL_DEAD, DNS_MAIL_NXDOMAIN, NULL);
		break;
	case DNS_NODATA:
		/* RFC 5321 5.1: no MX, the domain is its own implicit MX. */
		q->implicit = 1;
		q->nhosts = 1;
		strlcpy_s(q->names[0], q->domain, sizeof(q->names[0]));
		ask_addresses(q, 0);
		break;
	case DNS_OK:
		n = dns_mail_pick(r, DNS_MAIL_MAX_HOSTS, names, &q->skipped);
		if (n < 0) {
			finish(q, DNS_MAIL_DEAD, DNS_MAIL_NULL_MX, NULL);
			break;
		}
		if (q->skipped > 0) {
			/*
			 * An MX host written as an IP address is not a host name (RFC
			 * 5321 5.1), but delivery (queue_runner.c) connects to it, so
			 * the domain is not refused as dead for it.
			 */
			q->ttl = q->mx_ttl;
			finish(q, DNS_MAIL_LIVE, DNS_MAIL_WHY_NONE, NULL);
			break;
		}
		if (n == 0) {
			finish(q, DNS_MAIL_DEAD, DNS_MAIL_MX_NO_ADDRESS, NULL);
			break;
		}
		q->nhosts = (size_t)n;
		for (i = 0; i < q->nhosts; i++)
			strlcpy_s(q->names[i], names[i], sizeof(q->names[i]));
		for (i = 0; i < q->nhosts; i++)
			ask_addresses(q, i);
		break;
	}
	req_unref(q);
}

void dns_query_mail(struct dns *d, const char *domain, dns_mail_cb cb, uint64_t cookie,
		    void *ctx)
{
	struct mail_req *q = xcalloc(1, sizeof(*q));

	q->d = d;
	q->cb = cb;
	q->cookie = cookie;
	q->ctx = ctx;
	q->ttl = UINT32_MAX;
	q->refs = 2; /* the verdict's and the MX query's */
	strlcpy_s(q->domain, domain, sizeof(q->domain));
	dns_query(d, domain, DNS_MX, mx_cb, 0, q);
}
