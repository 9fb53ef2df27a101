/*
 * policy_data: the front door's end of DATA.  smtp_session.c calls
 * policy_data_start() when DATA begins, policy_data() with the message
 * octets as they are spooled, and policy_data_end() once the final dot
 * arrived and the message is complete on disk (before the commit).
 *
 * For an authenticated client: the account suspended while the message
 * came in (not queued); then the message is shown to the account defence
 * (account_message): every From: address that is not the login's (the
 * foreign_from signal; with auth_bind_from_header also a refused binding,
 * and the message refused), a hash of the body and the transaction's
 * recipient domains (the same_content signal).  That may suspend the
 * account and refuse this message.  The header section is kept up to
 * FROM_HDR_MAX octets (per session, allocated on first use); past that
 * only what arrived is looked at.  The body hash covers the first
 * BODY_HASH_MAX octets after the header section, and the body's length:
 * a bounded cost per message, computed as the octets pass.  Also the
 * headers that connect-stage checks asked to add.
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

#define FNV64_OFFSET 1469598103934665603ULL
#define FNV64_PRIME 1099511628211ULL

void policy_data_start(struct policy_sess *ps)
{
	ps->hdrlen = 0;
	ps->hdr_state = HDR_OFF;
	ps->body_state = BODY_OFF;
	if (!policy_authenticated(ps))
		return;
	if (ps->hdr == NULL)
		ps->hdr = xmalloc(FROM_HDR_MAX);
	ps->hdr_state = HDR_READING;
	ps->body_state = BODY_HEADER;
	ps->body_tail = 0x0d0a; /* as if after a line end: a first CRLF is the empty line */
	ps->body_hash = FNV64_OFFSET;
	ps->body_len = 0;
}

static void keep_header(struct policy_sess *ps, const char *p, size_t len)
{
	size_t from;
	size_t i;

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

/* Find the empty line, then hash the body's first BODY_HASH_MAX octets. */
static void hash_body(struct policy_sess *ps, const char *p, size_t len)
{
	size_t i = 0;
	uint64_t h;

	if (ps->body_state == BODY_HEADER) {
		for (; i < len; i++) {
			ps->body_tail = (ps->body_tail << 8) | (unsigned char)p[i];
			if (ps->body_tail == 0x0d0a0d0a) {
				ps->body_state = BODY_TEXT;
				i++;
				break;
			}
		}
		if (ps->body_state != BODY_TEXT)
			return;
	}
	h = ps->body_hash;
	for (; i < len && ps->body_len < BODY_HASH_MAX; i++) {
		h ^= (unsigned char)p[i];
		h *= FNV64_PRIME;
		ps->body_len++;
	}
	ps->body_hash = h;
	ps->body_len += len - i;
}

void policy_data(struct policy_sess *ps, const char *p, size_t len)
{
	if (ps->hdr_state == HDR_READING)
		keep_header(ps, p, len);
	if (ps->body_state != BODY_OFF)
		hash_body(ps, p, len);
}

/* The body's hash with its length folded in; 0 (unknown) without a body. */
static uint64_t body_content(const struct policy_sess *ps)
{
	uint64_t h = ps->body_hash;
	uint64_t n = ps->body_len;
	int i;

	if (ps->body_state != BODY_TEXT || n == 0)
		return 0;
	for (i = 0; i < 8; i++) {
		h ^= (n >> (8 * i)) & 0xff;
		h *= FNV64_PRIME;
	}
	return h != 0 ? h : 1;
}

#define FROM_ADDR_MAX 256  /* an SMTP path's longest (RFC 5321 4.5.3.1.3) */
#define FROMS_MAX 16       /* foreign From: addresses counted per message */

struct from_check {
	const struct policy_sess *ps;
	char bad[FROMS_MAX][FROM_ADDR_MAX + 1];
	int nbad;
};

static void from_cb(const char *addr, size_t alen, void *arg)
{
	struct from_check *fc = arg;
	char a[FROM_ADDR_MAX + 1];
	int i;

	if (alen > FROM_ADDR_MAX)
		alen = FROM_ADDR_MAX;
	memcpy(a, addr, alen);
	a[alen] = '\0';
	if (policy_sender_ok(fc->ps, a))
		return;
	for (i = 0; i < fc->nbad; i++)
		if (strcasecmp(fc->bad[i], a) == 0)
			return;
	if (fc->nbad < FROMS_MAX)
		strlcpy_s(fc->bad[fc->nbad++], a, sizeof(fc->bad[0]));
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

static enum policy_action check_account_message(struct policy_sess *ps,
						const struct policy_snap *sn,
						const struct step_args *a,
						struct policy_verdict *v)
{
	struct from_check *fc;
	const char *froms[FROMS_MAX];
	struct account_message m;
	enum policy_action r;
	int bind;
	int n = -1;
	int i;

	(void)sn;
	(void)a;
	if (!policy_authenticated(ps))
		return POLICY_CONTINUE;
	bind = ps->p->conf != NULL && ps->p->conf->auth_bind_from_header;
	fc = xcalloc(1, sizeof(*fc));
	fc->ps = ps;
	if (ps->hdr != NULL && ps->hdr_state != HDR_OFF)
		n = policy_from_addresses(ps->hdr, ps->hdrlen, from_cb, fc);
	ps->hdr_state = HDR_OFF;
	if (bind && n <= 0) {
		free(fc);
		policy_verdict_set(v, POLICY_REFUSE, "550 5.6.0", "from_binding", NULL,
				   "Message refused: no usable From: header");
		return POLICY_REFUSE;
	}
	if (bind && fc->nbad > 0)
		log_warn(ps->idstr, "policy", "FROM BINDING user=%s from [%s]", ps->user, ps->addr);
	for (i = 0; i < fc->nbad; i++)
		froms[i] = fc->bad[i];
	memset(&m, 0, sizeof(m));
	m.user = ps->user;
	m.addr = ps->addr;
	m.froms = froms;
	m.nfroms = (size_t)fc->nbad;
	m.from_refused = bind && fc->nbad > 0;
	m.content = body_content(ps);
	m.domains = ps->tx_doms;
	m.ndomains = ps->ntx_doms;
	r = account_message(ps->p->accounts, &m, v);
	free(fc);
	return r;
}

static const struct check data_checks[] = {
	{ "account_suspended", check_suspended, 0 },
	{ "account_message", check_account_message, 0 },
};

enum policy_action policy_data_end(struct policy_sess *ps, struct policy_verdict *v)
{
	struct step_args a;
	enum policy_action r;

	memset(&a, 0, sizeof(a));
	r = policy_run_stage(ps, STEP_DATA, data_checks, ARRAY_LEN(data_checks), &a, v);
	ps->hdr_state = HDR_OFF;
	ps->body_state = BODY_OFF;
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
