/*
 * auth: the one entry point of sender authentication (auth_check_start:
 * SPF and DKIM at once, then DMARC on their results), the
 * Authentication-Results value, and the small parsers the three checks
 * share (tag lists, base64, domain names, header fields).  See auth.h.
 *
 * Ownership: the check owns its SPF, DKIM and DMARC handles; each of those
 * frees itself after its callback.  Cancelling the check cancels whichever
 * is running (they then free themselves when their DNS answers come back)
 * and frees the check at once: no callback refers to it afterwards.
 */
#include "auth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../util/util.h"

const char *auth_res_name(enum auth_res r)
{
	switch (r) {
	case AUTH_NONE:
		return "none";
	case AUTH_PASS:
		return "pass";
	case AUTH_FAIL:
		return "fail";
	case AUTH_SOFTFAIL:
		return "softfail";
	case AUTH_NEUTRAL:
		return "neutral";
	case AUTH_TEMPERROR:
		return "temperror";
	case AUTH_PERMERROR:
		return "permerror";
	}
	abort();
}

static int is_wsp(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

int auth_tag_next(const char *s, size_t len, size_t *pos, struct auth_tag *t)
{
	size_t i = *pos;
	size_t end;

	while (i < len && is_wsp(s[i]))
		i++;
	if (i == len) {
		*pos = i;
		return 0;
	}
	/* tag-name = ALPHA *ALNUMPUNC */
	if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z')))
		return -1;
	t->name = s + i;
	while (i < len && ((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
			   (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
		i++;
	t->name_len = (size_t)(s + i - t->name);
	while (i < len && is_wsp(s[i]))
		i++;
	if (i == len || s[i] != '=')
		return -1;
	i++;
	while (i < len && is_wsp(s[i]))
		i++;
	t->value = s + i;
	t->value_off = i;
	while (i < len && s[i] != ';') {
		/* tag-value: visible ASCII except ';', and folding whitespace */
		if (!is_wsp(s[i]) && ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e))
			return -1;
		i++;
	}
	end = i;
	while (end > t->value_off && is_wsp(s[end - 1]))
		end--;
	t->value_len = end - t->value_off;
	if (i < len)
		i++; /* the ';' */
	*pos = i;
	return 1;
}

static int b64_val(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

long auth_b64_decode(const char *s, size_t len, unsigned char *out, size_t outsz)
{
	uint32_t acc = 0;
	int bits = 0;
	size_t n = 0;
	size_t pad = 0;
	size_t i;

	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		int v;

		if (is_wsp((char)c))
			continue;
		if (c == '=') {
			pad++;
			continue;
		}
		if (pad > 0)
			return -1; /* data after padding */
		v = b64_val(c);
		if (v < 0)
			return -1;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (n == outsz)
				return -1;
			out[n++] = (unsigned char)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	if (pad > 2 || bits >= 6)
		return -1;
	return (long)n;
}

int auth_domain_ok(const char *s, size_t len, int multi)
{
	size_t label = 0;
	size_t labels = 1;
	size_t i;

	if (len == 0 || len > 253 || s[0] == '.' || s[len - 1] == '.')
		return 0;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '.') {
			if (label == 0)
				return 0;
			label = 0;
			labels++;
			continue;
		}
		if (c <= 0x20 || c >= 0x7f || ++label > 63)
			return 0;
	}
	return !multi || labels >= 2;
}

long auth_header_split(const char *hdr, size_t len, struct auth_hfield *out, size_t max)
{
	size_t n = 0;
	size_t i = 0;

	while (i < len) {
		const char *line = hdr + i;
		const char *nl = memchr(line, '\n', len - i);
		size_t llen = nl != NULL ? (size_t)(nl - line) : len - i;
		size_t next = i + llen + (nl != NULL ? 1 : 0);
		size_t content = llen;

		if (content > 0 && line[content - 1] == '\r')
			content--;
		if (content == 0)
			break; /* the blank line that ends the header section */
		if (line[0] == ' ' || line[0] == '\t') {
			if (n == 0)
				return -1;
			out[n - 1].len = (size_t)(line + content - out[n - 1].p);
		} else {
			const char *colon = memchr(line, ':', content);
			size_t k;

			if (colon == NULL || colon == line)
				return -1;
			for (k = 0; line + k < colon; k++) {
				unsigned char c = (unsigned char)line[k];

				/* obsolete syntax allows WSP before the colon */
				if ((c < 0x21 || c > 0x7e) && c != ' ' && c != '\t')
					return -1;
			}
			if (n == max)
				return -1;
			out[n].p = line;
			out[n].len = content;
			k = (size_t)(colon - line);
			while (k > 0 && (line[k - 1] == ' ' || line[k - 1] == '\t'))
				k--;
			out[n].name_len = k;
			n++;
		}
		i = next;
	}
	return (long)n;
}

/* ---- the whole check --------------------------------------------------- */

struct auth_check {
	struct dns *dns;
	auth_done_cb cb;
	void *arg;
	struct auth_spf *spf;
	struct auth_dkim *dkim;
	struct auth_dmarc *dmarc;
	int spf_done;
	int dkim_done;
	struct auth_msg msg;
	struct auth_result res;
};

static void check_dmarc_done(const struct auth_dmarc_result *r, void *arg)
{
	struct auth_check *c = arg;

	c->dmarc = NULL;
	c->res.dmarc = *r;
	c->cb(&c->res, c->arg);
	free(c);
}

static void check_next(struct auth_check *c)
{
	struct auth_hfield *f;
	struct auth_dmarc_in in;
	long n;
	long i;

	if (!c->spf_done || !c->dkim_done)
		return;
	memset(&in, 0, sizeof(in));
	f = xcalloc(AUTH_DKIM_MAX_FIELDS, sizeof(*f));
	n = auth_header_split(c->msg.header, c->msg.header_len, f, AUTH_DKIM_MAX_FIELDS);
	for (i = 0; i < n; i++) {
		if (f[i].name_len == 4 && strncasecmp(f[i].p, "from", 4) == 0) {
			const char *colon = memchr(f[i].p, ':', f[i].len);

			in.from_count++;
			in.from_value = colon + 1;
			in.from_len = (size_t)(f[i].p + f[i].len - in.from_value);
		}
	}
	in.spf = &c->res.spf;
	in.dkim = &c->res.dkim;
	c->dmarc = auth_dmarc_start(c->dns, &in, check_dmarc_done, c);
	free(f);
}

static void check_spf_done(const struct auth_spf_result *r, void *arg)
{
	struct auth_check *c = arg;

	c->spf = NULL;
	c->res.spf = *r;
	c->spf_done = 1;
	check_next(c);
}

static void check_dkim_done(const struct auth_dkim_results *r, void *arg)
{
	struct auth_check *c = arg;

	c->dkim = NULL;
	c->res.dkim = *r;
	c->dkim_done = 1;
	check_next(c);
}

struct auth_check *auth_check_start(struct dns *d, const struct auth_facts *f, auth_done_cb cb,
				    void *arg)
{
	struct auth_check *c = xcalloc(1, sizeof(*c));

	c->dns = d;
	c->cb = cb;
	c->arg = arg;
	c->msg.header = f->header;
	c->msg.header_len = f->header_len;
	c->msg.body = f->body;
	c->msg.body_len = f->body_len;
	c->spf = auth_spf_start(d, f->ip, f->helo, f->mail_from, check_spf_done, c);
	c->dkim = auth_dkim_start(d, &c->msg, check_dkim_done, c);
	return c;
}

void auth_check_cancel(struct auth_check *c)
{
	if (c == NULL)
		return;
	auth_spf_cancel(c->spf);
	auth_dkim_cancel(c->dkim);
	auth_dmarc_cancel(c->dmarc);
	free(c);
}

/* ---- Authentication-Results ------------------------------------------- */

/* An RFC 8601 pvalue as is when it needs no quoting, else only its domain. */
static const char *pvalue(const char *s)
{
	const char *at = strrchr(s, '@');
	size_t i;

	for (i = 0; s[i] != '\0'; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c <= 0x20 || c >= 0x7f || strchr("()<>[]:;\\\",", c) != NULL)
			return at != NULL ? at + 1 : "";
	}
	return s;
}

int auth_results_format(const struct auth_result *r, const char *authserv_id,
			struct dynbuf *out)
{
	size_t i;
	int rc = 0;

	rc |= dynbuf_addf(out, "%s;", authserv_id);
	if (r->spf.identity[0] != '\0' && strcmp(r->spf.identity, "helo") == 0)
		rc |= dynbuf_addf(out, " spf=%s smtp.helo=%s;", auth_res_name(r->spf.res),
				  pvalue(r->spf.domain));
	else
		rc |= dynbuf_addf(out, " spf=%s smtp.mailfrom=%s;", auth_res_name(r->spf.res),
				  pvalue(r->spf.sender));
	if (r->dkim.n == 0)
		rc |= dynbuf_addf(out, " dkim=none;");
	for (i = 0; i < r->dkim.n; i++) {
		const struct auth_dkim_result *k = &r->dkim.r[i];

		rc |= dynbuf_addf(out, " dkim=%s", auth_res_name(k->res));
		if (k->d[0] != '\0')
			rc |= dynbuf_addf(out, " header.d=%s", pvalue(k->d));
		if (k->s[0] != '\0')
			rc |= dynbuf_addf(out, " header.s=%s", pvalue(k->s));
		if (k->alg[0] != '\0')
			rc |= dynbuf_addf(out, " header.a=%s", k->alg);
		rc |= dynbuf_add(out, ";", 1);
	}
	rc |= dynbuf_addf(out, " dmarc=%s", auth_res_name(r->dmarc.res));
	if (r->dmarc.policy != DMARC_P_UNSET)
		rc |= dynbuf_addf(out, " (p=%s dis=%s)", auth_dmarc_policy_name(r->dmarc.policy),
				  r->dmarc.res == AUTH_FAIL ?
				  auth_dmarc_policy_name(r->dmarc.disposition) : "none");
	if (r->dmarc.from_domain[0] != '\0')
		rc |= dynbuf_addf(out, " header.from=%s", pvalue(r->dmarc.from_domain));
	return rc != 0 ? -1 : 0;
}
