/*
 * policy_data: the front door's end of DATA.  smtp_session.c calls
 * policy_data_start() when DATA begins, policy_data() with the message
 * octets as they are spooled, and policy_data_end() once the final dot
 * arrived and the message is complete on disk (before the commit).
 *
 * For an authenticated client: the account suspended while the message
 * came in (not queued), then the From: binding (auth_bind_from_header):
 * every From: address must be one of the login's, counted against the
 * account when not.  The header section is kept up to FROM_HDR_MAX octets
 * (per session, allocated on first use); past that only what arrived is
 * looked at.  Also the headers that connect-stage checks asked to add.
 */
#include "policy_stage.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../account/account.h"
#include "../conf/conf.h"
#include "../log/log.h"
#include "../util/util.h"

void policy_data_start(struct policy_sess *ps)
{
	ps->hdrlen = 0;
	ps->hdr_state = HDR_OFF;
	if (!policy_authenticated(ps) || ps->p->conf == NULL ||
	    !ps->p->conf->auth_bind_from_header)
		return;
	if (ps->hdr == NULL)
		ps->hdr = xmalloc(FROM_HDR_MAX);
	ps->hdr_state = HDR_READING;
}

void policy_data(struct policy_sess *ps, const char *p, size_t len)
{
	size_t from;
	size_t i;

	if (ps->hdr_state != HDR_READING)
		return;
	if (len > FROM_HDR_MAX - ps->hdrlen) {
		len = FROM_HDR_MAX - ps->hdrlen;
		ps->hdr_state = HDR_TOOBIG;
	}
	from = ps->hdrlen > 3 ? ps->hdrlen - 3 : 0;
	memcpy(ps->hdr + ps->hdrlen, p, len);
	ps->hdrlen += len;
	if (ps->hdrlen >= 2 && ps->hdr[0] == '\r' && ps->hdr[1] == '\n') {
		ps->hdr_state = HDR_DONE; /* no header at all */
		return;
	}
	for (i = from; i + 3 < ps->hdrlen; i++) {
		if (memcmp(ps->hdr + i, "\r\n\r\n", 4) == 0) {
			ps->hdr_state = HDR_DONE;
			return;
		}
	}
}

#define FROM_ADDR_MAX 256  /* an SMTP path's longest (RFC 5321 4.5.3.1.3) */

struct from_check {
	const struct policy_sess *ps;
	char bad[FROM_ADDR_MAX + 1];
	int nbad;
};

static void from_cb(const char *addr, size_t alen, void *arg)
{
	struct from_check *fc = arg;
	char a[FROM_ADDR_MAX + 1];

	if (alen > FROM_ADDR_MAX)
		alen = FROM_ADDR_MAX;
	memcpy(a, addr, alen);
	a[alen] = '\0';
	if (!policy_sender_ok(fc->ps, a)) {
		if (fc->nbad++ == 0)
			strlcpy_s(fc->bad, a, sizeof(fc->bad));
	}
}

static enum policy_action check_suspended(struct policy_sess *ps, const struct policy_snap *sn,
					  const struct step_args *a, struct policy_verdict *v)
{
	(void)sn;
	(void)a;
	if (!policy_authenticated(ps) || !account_suspended(ps->p->accounts, ps->user))
		return POLICY_CONTINUE;
	/* Suspended while this message was coming in: not queued. */
	policy_verdict_set(v, POLICY_REFUSE, "550 5.7.1", "account_suspended", NULL,
			   "Account suspended: unusual sending was detected;"
			   " contact your administrator");
	return POLICY_REFUSE;
}

static enum policy_action check_from(struct policy_sess *ps, const struct policy_snap *sn,
				     const struct step_args *a, struct policy_verdict *v)
{
	struct from_check fc;
	int n;

	(void)sn;
	(void)a;
	if (ps->hdr_state == HDR_OFF)
		return POLICY_CONTINUE;
	memset(&fc, 0, sizeof(fc));
	fc.ps = ps;
	n = policy_from_addresses(ps->hdr, ps->hdrlen, from_cb, &fc);
	ps->hdr_state = HDR_OFF;
	if (n <= 0) {
		policy_verdict_set(v, POLICY_REFUSE, "550 5.6.0", "from_binding", NULL,
				   "Message refused: no usable From: header");
		return POLICY_REFUSE;
	}
	if (fc.nbad == 0)
		return POLICY_CONTINUE;
	log_warn(ps->idstr, "policy", "FROM BINDING user=%s from [%s]", ps->user, ps->addr);
	return account_from_refused(ps->p->accounts, ps->user, fc.bad, v);
}

static const struct check data_checks[] = {
	{ "account_suspended", check_suspended, 0 },
	{ "from_binding", check_from, 0 },
};

enum policy_action policy_data_end(struct policy_sess *ps, struct policy_verdict *v)
{
	struct step_args a;
	enum policy_action r;

	memset(&a, 0, sizeof(a));
	r = policy_run_stage(ps, STEP_DATA, data_checks, ARRAY_LEN(data_checks), &a, v);
	ps->hdr_state = HDR_OFF;
	return r;
}

size_t policy_data_headers(const struct policy_sess *ps, char *out, size_t outsz)
{
	size_t used = 0;
	int i;

	if (outsz == 0)
		return 0;
	out[0] = '\0';
	for (i = 0; i < ps->ntags; i++) {
		int n = snprintf(out + used, outsz - used, "X-Moat-Policy: %s\r\n", ps->tags[i]);

		if (n < 0 || (size_t)n >= outsz - used) {
			out[used] = '\0';
			break;
		}
		used += (size_t)n;
	}
	return used;
}
