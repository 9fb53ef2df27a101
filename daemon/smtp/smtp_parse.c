/*
 * smtp_parse: see smtp_parse.h.  Grammar references are RFC 5321 section
 * 4.1.2 (Mailbox, Local-part, Domain, address-literal) and RFC 6531
 * section 3.3 (UTF-8 in atext and sub-domains).  Strict where a lenient
 * reading could be abused; lenient only where RFC 5321 asks for it (a
 * source route is accepted and ignored, <Postmaster> needs no domain).
 */
#include "smtp_parse.h"

#include <arpa/inet.h>
#include <string.h>
#include <strings.h>

#include "../util/util.h"

static const struct {
	const char *name;
	enum smtp_verb verb;
} verbs[] = {
	{ "HELO", SMTP_V_HELO }, { "EHLO", SMTP_V_EHLO }, { "MAIL", SMTP_V_MAIL },
	{ "RCPT", SMTP_V_RCPT }, { "DATA", SMTP_V_DATA }, { "RSET", SMTP_V_RSET },
	{ "NOOP", SMTP_V_NOOP }, { "QUIT", SMTP_V_QUIT }, { "HELP", SMTP_V_HELP },
	{ "VRFY", SMTP_V_VRFY }, { "EXPN", SMTP_V_EXPN },
	{ "STARTTLS", SMTP_V_STARTTLS }, { "AUTH", SMTP_V_AUTH },
	{ "BDAT", SMTP_V_BDAT },
};

void smtp_parse_command(const char *line, size_t len, struct smtp_command *cmd)
{
	size_t vlen = 0;
	size_t i;

	while (vlen < len && line[vlen] != ' ')
		vlen++;
	cmd->verb = SMTP_V_UNKNOWN;
	for (i = 0; i < ARRAY_LEN(verbs); i++) {
		if (strlen(verbs[i].name) == vlen &&
		    strncasecmp(line, verbs[i].name, vlen) == 0) {
			cmd->verb = verbs[i].verb;
			break;
		}
	}
	while (vlen < len && line[vlen] == ' ')
		vlen++;
	cmd->args = line + vlen;
	cmd->argslen = len - vlen;
	/* Trailing spaces carry no meaning and confuse exact matches. */
	while (cmd->argslen > 0 && cmd->args[cmd->argslen - 1] == ' ')
		cmd->argslen--;
}

int smtp_utf8_valid(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;

	while (i < len) {
		unsigned char c = p[i];
		size_t n;
		uint32_t cp;
		size_t k;

		if (c < 0x80) {
			i++;
			continue;
		} else if (c >= 0xc2 && c <= 0xdf) {
			n = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			n = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 3;
			cp = c & 0x07;
		} else {
			return 0;
		}
		if (len - i - 1 < n)
			return 0;
		for (k = 1; k <= n; k++) {
			if ((p[i + k] & 0xc0) != 0x80)
				return 0;
			cp = (cp << 6) | (p[i + k] & 0x3f);
		}
		if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		i += n + 1;
	}
	return 1;
}

static int is_atext(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
}

static int is_letdig(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* Dot-string or Quoted-string; sets *nonascii when UTF-8 octets appear. */
static int check_local(const char *s, size_t len, int *nonascii)
{
	size_t i;

	if (len == 0 || len > SMTP_LOCAL_MAX)
		return -1;
	if (s[0] == '"') {
		if (len < 2 || s[len - 1] != '"')
			return -1;
		for (i = 1; i < len - 1; i++) {
			unsigned char c = (unsigned char)s[i];

			if (c == '\\') {
				i++;
				if (i >= len - 1 || (unsigned char)s[i] < 32 ||
				    (unsigned char)s[i] > 126)
					return -1;
			} else if (c >= 0x80) {
				*nonascii = 1;
			} else if (c < 32 || c == 127 || c == '"') {
				return -1;
			}
		}
		return 0;
	}
	if (s[0] == '.' || s[len - 1] == '.')
		return -1;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '.') {
			if (s[i + 1] == '.')
				return -1;
		} else if (c >= 0x80) {
			*nonascii = 1;
		} else if (!is_atext(c)) {
			return -1;
		}
	}
	return 0;
}

static int check_address_literal(const char *s, size_t len)
{
	char tmp[64];
	unsigned char addr[16];

	if (len < 3 || s[0] != '[' || s[len - 1] != ']' || len - 2 >= sizeof(tmp))
		return -1;
	memcpy(tmp, s + 1, len - 2);
	tmp[len - 2] = '\0';
	if (strncasecmp(tmp, "IPv6:", 5) == 0)
		return inet_pton(AF_INET6, tmp + 5, addr) == 1 ? 0 : -1;
	return inet_pton(AF_INET, tmp, addr) == 1 ? 0 : -1;
}

/* Domain = sub-domain *("." sub-domain); U-labels allowed as non-ASCII. */
static int check_domain(const char *s, size_t len, int *nonascii)
{
	size_t start = 0;
	size_t i;

	if (len == 0 || len > SMTP_DOMAIN_MAX)
		return -1;
	if (s[0] == '[')
		return check_address_literal(s, len);
	for (i = 0; i <= len; i++) {
		if (i == len || s[i] == '.') {
			size_t llen = i - start;

			if (llen == 0 || llen > 63)
				return -1;
			if (s[start] == '-' || s[i - 1] == '-')
				return -1;
			start = i + 1;
			continue;
		}
		if ((unsigned char)s[i] >= 0x80)
			*nonascii = 1;
		else if (!is_letdig((unsigned char)s[i]) && s[i] != '-')
			return -1;
	}
	return 0;
}

enum smtp_parse_result smtp_check_mailbox(const char *s, size_t len, int allow_utf8)
{
	const char *at = NULL;
	int nonascii = 0;
	size_t i;

	if (len == 0 || len > SMTP_PATH_MAX - 2)
		return SMTP_PARSE_ADDRESS;
	/* The last '@' outside a quoted local part separates the domain. */
	if (s[0] == '"') {
		for (i = 1; i < len; i++) {
			if (s[i] == '\\')
				i++;
			else if (s[i] == '"')
				break;
		}
		if (i + 1 < len && s[i + 1] == '@')
			at = s + i + 1;
	} else {
		at = memchr(s, '@', len);
	}
	if (at == NULL)
		return SMTP_PARSE_ADDRESS;
	if (check_local(s, (size_t)(at - s), &nonascii) < 0 ||
	    check_domain(at + 1, len - (size_t)(at - s) - 1, &nonascii) < 0)
		return SMTP_PARSE_ADDRESS;
	if (nonascii) {
		if (!smtp_utf8_valid(s, len))
			return SMTP_PARSE_ADDRESS;
		if (!allow_utf8)
			return SMTP_PARSE_UTF8;
	}
	return SMTP_PARSE_OK;
}

/*
 * Parse "<path>" at the start of s.  On success copies the mailbox (without
 * brackets and source route) to out and sets *rest past the '>'.
 * Non-ASCII is only checked for syntax here; the caller decides whether
 * SMTPUTF8 allows it.
 */
static enum smtp_parse_result parse_path(const char *s, size_t len, int allow_null,
					 char *out, const char **rest, int *nonascii)
{
	const char *end;
	const char *mbox;
	size_t mlen;
	enum smtp_parse_result r;

	if (len < 2 || s[0] != '<')
		return SMTP_PARSE_SYNTAX;
	/* '>' may appear inside a quoted local part; scan with quoting. */
	end = NULL;
	{
		size_t i;
		int quoted = 0;

		for (i = 1; i < len; i++) {
			if (quoted && s[i] == '\\') {
				i++;
				continue;
			}
			if (s[i] == '"')
				quoted = !quoted;
			else if (!quoted && s[i] == '>') {
				end = s + i;
				break;
			}
		}
	}
	if (end == NULL)
		return SMTP_PARSE_SYNTAX;
	mbox = s + 1;
	mlen = (size_t)(end - mbox);
	*rest = end + 1;
	if (mlen + 2 > SMTP_PATH_MAX)
		return SMTP_PARSE_ADDRESS;
	if (mlen == 0) {
		if (!allow_null)
			return SMTP_PARSE_ADDRESS;
		out[0] = '\0';
		return SMTP_PARSE_OK;
	}
	/* A-d-l source route: "@a.example,@b.example:" — accepted, ignored. */
	if (mbox[0] == '@') {
		const char *colon = memchr(mbox, ':', mlen);

		if (colon == NULL)
			return SMTP_PARSE_ADDRESS;
		mlen -= (size_t)(colon + 1 - mbox);
		mbox = colon + 1;
	}
	r = smtp_check_mailbox(mbox, mlen, 1);
	if (r != SMTP_PARSE_OK)
		return r;
	{
		size_t i;

		for (i = 0; i < mlen; i++)
			if ((unsigned char)mbox[i] >= 0x80)
				*nonascii = 1;
	}
	memcpy(out, mbox, mlen);
	out[mlen] = '\0';
	return SMTP_PARSE_OK;
}

/* esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-") */
static int is_keyword(const char *s, size_t len)
{
	size_t i;

	if (len == 0 || !is_letdig((unsigned char)s[0]))
		return 0;
	for (i = 1; i < len; i++)
		if (!is_letdig((unsigned char)s[i]) && s[i] != '-')
			return 0;
	return 1;
}

/* esmtp-value = 1*(%d33-60 / %d62-126) */
static int is_value(const char *s, size_t len)
{
	size_t i;

	if (len == 0)
		return 0;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 33 || c > 126 || c == '=')
			return 0;
	}
	return 1;
}

struct param {
	const char *key;
	size_t keylen;
	const char *value; /* NULL when absent */
	size_t valuelen;
};

/* Split " KEY[=VALUE] KEY..." into params; -1 on bad syntax or too many. */
static int split_params(const char *s, size_t len, struct param *params, int max)
{
	size_t i = 0;
	int n = 0;

	while (i < len) {
		size_t start;
		size_t tlen;
		const char *eq;

		if (s[i] != ' ')
			return -1;
		while (i < len && s[i] == ' ')
			i++;
		if (i == len)
			break;
		start = i;
		while (i < len && s[i] != ' ')
			i++;
		tlen = i - start;
		if (n == max)
			return -1;
		eq = memchr(s + start, '=', tlen);
		params[n].key = s + start;
		params[n].keylen = eq ? (size_t)(eq - (s + start)) : tlen;
		params[n].value = eq ? eq + 1 : NULL;
		params[n].valuelen = eq ? tlen - params[n].keylen - 1 : 0;
		if (!is_keyword(params[n].key, params[n].keylen))
			return -1;
		if (eq != NULL && !is_value(params[n].value, params[n].valuelen))
			return -1;
		n++;
	}
	return n;
}

static int key_is(const struct param *p, const char *name)
{
	return strlen(name) == p->keylen && strncasecmp(p->key, name, p->keylen) == 0;
}

static int value_is(const struct param *p, const char *v)
{
	return p->value != NULL && strlen(v) == p->valuelen &&
	       strncasecmp(p->value, v, p->valuelen) == 0;
}

/* Skip "FROM:" / "TO:" and optional spaces (a common, harmless leniency). */
static const char *skip_prefix(const char *args, size_t len, const char *prefix)
{
	size_t n = strlen(prefix);

	if (!ascii_prefix(args, len, prefix))
		return NULL;
	args += n;
	len -= n;
	while (len > 0 && *args == ' ') {
		args++;
		len--;
	}
	return args;
}

enum smtp_parse_result smtp_parse_mail(const char *args, size_t len,
				       struct smtp_mail_args *out)
{
	struct param params[8];
	const char *p = skip_prefix(args, len, "FROM:");
	const char *rest;
	enum smtp_parse_result r;
	int nonascii = 0;
	int n;
	int i;

	out->addr[0] = '\0';
	out->size = -1;
	out->body = SMTP_BODY_NONE;
	out->smtputf8 = 0;
	if (p == NULL)
		return SMTP_PARSE_SYNTAX;
	r = parse_path(p, len - (size_t)(p - args), 1, out->addr, &rest, &nonascii);
	if (r != SMTP_PARSE_OK)
		return r;
	n = split_params(rest, len - (size_t)(rest - args), params, (int)ARRAY_LEN(params));
	if (n < 0)
		return SMTP_PARSE_PARAM;
	for (i = 0; i < n; i++) {
		const struct param *q = &params[i];

		if (key_is(q, "SIZE")) {
			int64_t v = 0;
			size_t k;

			if (out->size >= 0 || q->value == NULL || q->valuelen > 18)
				return SMTP_PARSE_PARAM;
			for (k = 0; k < q->valuelen; k++) {
				if (q->value[k] < '0' || q->value[k] > '9')
					return SMTP_PARSE_PARAM;
				v = v * 10 + (q->value[k] - '0');
			}
			out->size = v;
		} else if (key_is(q, "BODY")) {
			if (out->body != SMTP_BODY_NONE)
				return SMTP_PARSE_PARAM;
			if (value_is(q, "7BIT"))
				out->body = SMTP_BODY_7BIT;
			else if (value_is(q, "8BITMIME"))
				out->body = SMTP_BODY_8BITMIME;
			else
				return SMTP_PARSE_PARAM;
		} else if (key_is(q, "SMTPUTF8")) {
			if (out->smtputf8 || q->value != NULL)
				return SMTP_PARSE_PARAM;
			out->smtputf8 = 1;
		} else {
			return SMTP_PARSE_PARAM;
		}
	}
	if (nonascii && !out->smtputf8)
		return SMTP_PARSE_UTF8;
	return SMTP_PARSE_OK;
}

enum smtp_parse_result smtp_parse_rcpt(const char *args, size_t len, int smtputf8,
				       struct smtp_rcpt_args *out)
{
	struct param params[4];
	const char *p = skip_prefix(args, len, "TO:");
	const char *rest;
	enum smtp_parse_result r;
	int nonascii = 0;
	int n;

	out->addr[0] = '\0';
	if (p == NULL)
		return SMTP_PARSE_SYNTAX;
	/* RFC 5321 4.5.1: <Postmaster> without a domain must be accepted. */
	if (len - (size_t)(p - args) >= 12 && strncasecmp(p, "<postmaster>", 12) == 0) {
		memcpy(out->addr, "postmaster", 11);
		rest = p + 12;
	} else {
		r = parse_path(p, len - (size_t)(p - args), 0, out->addr, &rest, &nonascii);
		if (r != SMTP_PARSE_OK)
			return r;
	}
	n = split_params(rest, len - (size_t)(rest - args), params, (int)ARRAY_LEN(params));
	if (n != 0)
		return SMTP_PARSE_PARAM;
	if (nonascii && !smtputf8)
		return SMTP_PARSE_UTF8;
	return SMTP_PARSE_OK;
}

int smtp_check_helo(const char *s, size_t len)
{
	size_t i;

	if (len == 0 || len > SMTP_DOMAIN_MAX)
		return -1;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c <= 32 || c >= 127)
			return -1;
	}
	return 0;
}
