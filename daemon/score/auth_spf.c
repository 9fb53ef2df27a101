/*
 * auth_spf: SPF (RFC 7208) check_host() on the loop's resolver.  See auth.h.
 *
 * Pure parts: the record parser (auth_spf_parse) and the macro expander
 * (auth_spf_expand), both over (const char *, size_t), no I/O.
 *
 * Evaluation is a small machine with at most one DNS query in flight: a
 * stack of frames (the record being evaluated, then one per include),
 * each with the index of its current term.  A term that needs DNS issues
 * its query and returns; the answer resumes the machine.  redirect=
 * replaces the frame's record (a tail call).  The limits of RFC 7208
 * 4.6.4 are counted across the whole evaluation: more than 10 terms that
 * query DNS (include a mx ptr exists redirect) or more than 2 void lookups
 * is a permerror; an MX answer with more than 10 names is a permerror.
 *
 * "ptr" is evaluated as never matching (RFC 7208 5.5: it SHOULD NOT be
 * used; it still counts as a DNS term) and %{p} expands to "unknown".
 * exp= is checked for syntax and otherwise ignored: results carry our own
 * reason, not the domain's explanation.
 *
 * Lifetime: a DNS answer may arrive after auth_spf_cancel(); the object
 * lives until then (the flag makes the answer free it), so a callback
 * never touches freed memory.
 */
#include "auth.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../dns/dns.h"
#include "../util/util.h"

#define SPF_MAX_DEPTH (AUTH_SPF_MAX_DNS_TERMS + 1)

/* ---- the record parser -------------------------------------------------- */

int auth_spf_is_record(const char *txt)
{
	return strncasecmp(txt, "v=spf1", 6) == 0 && (txt[6] == '\0' || txt[6] == ' ');
}

static int parse_cidr(const char *s, size_t len, int max, int *out)
{
	int v = 0;
	size_t i;

	if (len == 0 || len > 3 || (len > 1 && s[0] == '0'))
		return -1;
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	if (v > max)
		return -1;
	*out = v;
	return 0;
}

/*
 * Split a "/24" or "/24//64" (dual-cidr-length) off the end of [s, s+*len):
 * *len shrinks to what is before it.  0 or -1.
 */
static int split_dual_cidr(const char *s, size_t *len, int v4ok, int v6ok, int *c4, int *c6)
{
	size_t n = *len;
	size_t i;
	const char *dbl = NULL;
	const char *single = NULL;

	*c4 = -1;
	*c6 = -1;
	/* the cidr part is digits and slashes at the very end */
	for (i = n; i > 0 && ((s[i - 1] >= '0' && s[i - 1] <= '9') || s[i - 1] == '/'); i--)
		;
	for (; i < n; i++) {
		if (s[i] == '/' && i + 1 < n && s[i + 1] == '/' && dbl == NULL) {
			dbl = s + i;
			break;
		}
		if (s[i] == '/' && single == NULL)
			single = s + i;
	}
	if (dbl != NULL) {
		if (!v6ok || parse_cidr(dbl + 2, (size_t)(s + n - dbl - 2), 128, c6) < 0)
			return -1;
		n = (size_t)(dbl - s);
		single = NULL;
		for (i = n; i > 0 && s[i - 1] >= '0' && s[i - 1] <= '9'; i--)
			;
		if (i > 0 && s[i - 1] == '/' && i < n)
			single = s + i - 1;
	}
	if (single != NULL) {
		if (!v4ok || parse_cidr(single + 1, (size_t)(s + n - single - 1),
					v6ok ? 32 : 128, c4) < 0)
			return -1;
		n = (size_t)(single - s);
	}
	*len = n;
	return 0;
}

static int name_is(const char *s, size_t len, const char *name)
{
	return strlen(name) == len && strncasecmp(s, name, len) == 0;
}

int auth_spf_parse(const char *rec, size_t len, struct auth_spf_record *out,
		   char *err, size_t errsz)
{
	size_t i;
	char xerr[128];

	memset(out, 0, sizeof(*out));
	if (len > AUTH_SPF_RECORD_MAX) {
		snprintf(err, errsz, "record longer than %d bytes", AUTH_SPF_RECORD_MAX);
		return -1;
	}
	memcpy(out->text, rec, len);
	out->text[len] = '\0';
	if (memchr(rec, '\0', len) != NULL || !auth_spf_is_record(out->text)) {
		snprintf(err, errsz, "not an SPF record");
		return -1;
	}
	i = 6;
	while (i < len) {
		size_t start;
		size_t tlen;
		const char *t;
		size_t nlen;
		char qual = '+';
		struct auth_spf_term *term;
		const char *arg = NULL;
		size_t alen = 0;
		int c4;
		int c6;

		while (i < len && out->text[i] == ' ')
			i++;
		if (i == len)
			break;
		start = i;
		while (i < len && out->text[i] != ' ')
			i++;
		t = out->text + start;
		tlen = i - start;
		for (size_t k = 0; k < tlen; k++) {
			if ((unsigned char)t[k] < 0x21 || (unsigned char)t[k] > 0x7e) {
				snprintf(err, errsz, "term %zu: not visible ASCII", out->nterms + 1);
				return -1;
			}
		}
		/* A modifier: name "=" macro-string, name = ALPHA *( ALPHA / DIGIT / "-" / "_" / "." ) */
		nlen = 0;
		while (nlen < tlen && ((t[nlen] >= 'a' && t[nlen] <= 'z') ||
				       (t[nlen] >= 'A' && t[nlen] <= 'Z') ||
				       (nlen > 0 && ((t[nlen] >= '0' && t[nlen] <= '9') ||
						     t[nlen] == '-' || t[nlen] == '_' ||
						     t[nlen] == '.'))))
			nlen++;
		if (nlen > 0 && nlen < tlen && t[nlen] == '=') {
			const char *v = t + nlen + 1;
			size_t vlen = tlen - nlen - 1;
			int is_exp = name_is(t, nlen, "exp");

			if (auth_spf_expand(v, vlen, NULL, 0, NULL, 0, xerr, sizeof(xerr)) < 0) {
				snprintf(err, errsz, "%.*s: %s", (int)nlen, t, xerr);
				return -1;
			}
			if (name_is(t, nlen, "redirect") || is_exp) {
				if (vlen == 0) {
					snprintf(err, errsz, "%.*s: no domain", (int)nlen, t);
					return -1;
				}
				if ((is_exp ? out->exp_len : out->redirect_len) != 0) {
					snprintf(err, errsz, "%.*s given twice", (int)nlen, t);
					return -1;
				}
				if (is_exp) {
					out->exp_off = (uint16_t)(v - out->text);
					out->exp_len = (uint16_t)vlen;
				} else {
					out->redirect_off = (uint16_t)(v - out->text);
					out->redirect_len = (uint16_t)vlen;
				}
			}
			continue; /* unknown modifiers are ignored (RFC 7208 6) */
		}
		if (out->nterms == AUTH_SPF_MAX_TERMS) {
			snprintf(err, errsz, "more than %d terms", AUTH_SPF_MAX_TERMS);
			return -1;
		}
		term = &out->terms[out->nterms];
		if (strchr("+-~?", t[0]) != NULL) {
			qual = t[0];
			t++;
			tlen--;
		}
		term->qual = qual;
		term->cidr4 = -1;
		term->cidr6 = -1;
		nlen = 0;
		while (nlen < tlen && t[nlen] != ':' && t[nlen] != '/')
			nlen++;
		if (nlen < tlen) {
			arg = t + nlen + (t[nlen] == ':' ? 1 : 0);
			alen = tlen - nlen - (t[nlen] == ':' ? 1 : 0);
		}
		if (name_is(t, nlen, "all")) {
			term->mech = SPF_ALL;
			if (arg != NULL)
				goto bad;
		} else if (name_is(t, nlen, "include") || name_is(t, nlen, "exists")) {
			term->mech = (t[0] == 'i' || t[0] == 'I') ? SPF_INCLUDE : SPF_EXISTS;
			if (arg == NULL || t[nlen] != ':' || alen == 0)
				goto bad;
		} else if (name_is(t, nlen, "a") || name_is(t, nlen, "mx")) {
			term->mech = nlen == 1 ? SPF_A : SPF_MX;
			if (arg != NULL) {
				if (t[nlen] == '/')
					arg = t + nlen;
				alen = (size_t)(t + tlen - arg);
				if (split_dual_cidr(arg, &alen, 1, 1, &c4, &c6) < 0)
					goto bad;
				term->cidr4 = c4;
				term->cidr6 = c6;
				if (t[nlen] == ':' && alen == 0)
					goto bad;
			}
		} else if (name_is(t, nlen, "ptr")) {
			term->mech = SPF_PTR;
			if (arg != NULL && (t[nlen] != ':' || alen == 0))
				goto bad;
		} else if (name_is(t, nlen, "ip4") || name_is(t, nlen, "ip6")) {
			char ip[64];
			int six = t[2] == '6';
			size_t iplen;

			term->mech = six ? SPF_IP6 : SPF_IP4;
			if (arg == NULL || t[nlen] != ':')
				goto bad;
			iplen = alen;
			if (six)
				c4 = -1;
			{
				const char *slash = memchr(arg, '/', alen);

				if (slash != NULL) {
					iplen = (size_t)(slash - arg);
					if (parse_cidr(slash + 1, alen - iplen - 1, six ? 128 : 32,
						       six ? &c6 : &c4) < 0)
						goto bad;
					if (six)
						term->cidr6 = c6;
					else
						term->cidr4 = c4;
				}
			}
			if (iplen == 0 || iplen >= sizeof(ip))
				goto bad;
			memcpy(ip, arg, iplen);
			ip[iplen] = '\0';
			if (inet_pton(six ? AF_INET6 : AF_INET, ip, six ? (void *)&term->v6 :
				      (void *)&term->v4) != 1)
				goto bad;
			alen = 0;
			arg = NULL;
		} else {
			snprintf(err, errsz, "unknown mechanism \"%.*s\"", (int)(nlen > 40 ? 40 : nlen), t);
			return -1;
		}
		if (arg != NULL && alen > 0) {
			if (auth_spf_expand(arg, alen, NULL, 0, NULL, 0, xerr, sizeof(xerr)) < 0) {
				snprintf(err, errsz, "%.*s: %s", (int)nlen, t, xerr);
				return -1;
			}
			term->spec_off = (uint16_t)(arg - out->text);
			term->spec_len = (uint16_t)alen;
		}
		out->nterms++;
		continue;
bad:
		snprintf(err, errsz, "term %zu (%.*s): bad syntax", out->nterms + 1,
			 (int)(tlen > 60 ? 60 : tlen), t);
		return -1;
	}
	return 0;
}

/* ---- the macro expander ------------------------------------------------- */

struct outbuf {
	char *p;
	size_t size;
	size_t len;
	int over;
};

static void out_add(struct outbuf *o, const char *s, size_t n)
{
	if (o->p == NULL)
		return;
	if (n >= o->size - o->len) {
		o->over = 1;
		return;
	}
	memcpy(o->p + o->len, s, n);
	o->len += n;
	o->p[o->len] = '\0';
}

static void ip_dotted(const struct sockaddr *sa, char *out, size_t outsz)
{
	static const char hex[] = "0123456789abcdef";

	if (sa->sa_family == AF_INET) {
		inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, out,
			  (socklen_t)outsz);
		return;
	}
	{
		const unsigned char *b =
			((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr.s6_addr;
		size_t o = 0;
		int i;

		/* 32 nibbles, dot separated, most significant first (RFC 7208 7.3) */
		for (i = 0; i < 16 && o + 4 < outsz; i++) {
			out[o++] = hex[b[i] >> 4];
			out[o++] = '.';
			out[o++] = hex[b[i] & 0xf];
			out[o++] = i < 15 ? '.' : '\0';
		}
	}
}

static int unreserved(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '.' || c == '_' || c == '~';
}

/* One macro's value, transformed (digits, r, delimiters) and maybe URL-escaped. */
static void macro_value(struct outbuf *o, const char *val, size_t digits, int reverse,
			const char *delims, int escape)
{
	const char *parts[128];
	size_t plen[128];
	size_t n = 0;
	size_t first;
	size_t i;
	const char *p = val;

	for (;;) {
		size_t k = strcspn(p, delims);

		if (n == ARRAY_LEN(parts)) {
			o->over = 1;
			return;
		}
		parts[n] = p;
		plen[n] = k;
		n++;
		if (p[k] == '\0')
			break;
		p += k + 1;
	}
	if (reverse) {
		for (i = 0; i < n / 2; i++) {
			const char *tp = parts[i];
			size_t tl = plen[i];

			parts[i] = parts[n - 1 - i];
			plen[i] = plen[n - 1 - i];
			parts[n - 1 - i] = tp;
			plen[n - 1 - i] = tl;
		}
	}
	first = digits > 0 && digits < n ? n - digits : 0;
	for (i = first; i < n; i++) {
		if (i > first)
			out_add(o, ".", 1);
		if (!escape) {
			out_add(o, parts[i], plen[i]);
			continue;
		}
		for (size_t k = 0; k < plen[i]; k++) {
			unsigned char c = (unsigned char)parts[i][k];
			char esc[4];

			if (unreserved(c)) {
				out_add(o, (const char *)&c, 1);
			} else {
				snprintf(esc, sizeof(esc), "%%%02X", c);
				out_add(o, esc, 3);
			}
		}
	}
}

int auth_spf_expand(const char *spec, size_t len, const struct auth_spf_macro *m, int exp,
		    char *out, size_t outsz, char *err, size_t errsz)
{
	struct outbuf o = { out, outsz, 0, 0 };
	size_t i = 0;

	if (out != NULL) {
		if (outsz == 0)
			return -1;
		out[0] = '\0';
	}
	while (i < len) {
		char c = spec[i];
		char letter;
		size_t digits = 0;
		int reverse = 0;
		char delims[8];
		size_t nd = 0;
		char val[AUTH_NAME_MAX + 80];
		const char *v = "";

		if ((unsigned char)c < 0x21 || (unsigned char)c > 0x7e) {
			if (!(exp && c == ' ')) {
				snprintf(err, errsz, "character %zu is not visible ASCII", i + 1);
				return -1;
			}
		}
		if (c != '%') {
			out_add(&o, &c, 1);
			i++;
			continue;
		}
		if (i + 1 == len) {
			snprintf(err, errsz, "'%%' at the end");
			return -1;
		}
		c = spec[i + 1];
		if (c == '%' || c == '_' || c == '-') {
			out_add(&o, c == '%' ? "%" : c == '_' ? " " : "%20", c == '-' ? 3 : 1);
			i += 2;
			continue;
		}
		if (c != '{' || i + 2 >= len) {
			snprintf(err, errsz, "'%%%c' is not a macro", c);
			return -1;
		}
		i += 2;
		letter = spec[i++];
		if (!((letter >= 'a' && letter <= 'z') || (letter >= 'A' && letter <= 'Z'))) {
			snprintf(err, errsz, "macro letter expected");
			return -1;
		}
		if (strchr("slodiphv", (char)(letter | 0x20)) == NULL &&
		    !(exp && strchr("crt", (char)(letter | 0x20)) != NULL)) {
			snprintf(err, errsz, "unknown macro letter '%c'", letter);
			return -1;
		}
		while (i < len && spec[i] >= '0' && spec[i] <= '9') {
			digits = digits * 10 + (size_t)(spec[i] - '0');
			if (digits > 128) {
				snprintf(err, errsz, "macro digits too large");
				return -1;
			}
			i++;
			if (digits == 0) {
				snprintf(err, errsz, "macro digits must not be 0");
				return -1;
			}
		}
		if (i < len && (spec[i] == 'r' || spec[i] == 'R')) {
			reverse = 1;
			i++;
		}
		while (i < len && strchr(".-+,/_=", spec[i]) != NULL && spec[i] != '\0') {
			if (nd + 1 < sizeof(delims) && memchr(delims, spec[i], nd) == NULL)
				delims[nd++] = spec[i];
			i++;
		}
		if (i == len || spec[i] != '}') {
			snprintf(err, errsz, "macro not closed by '}'");
			return -1;
		}
		i++;
		if (nd == 0)
			delims[nd++] = '.';
		delims[nd] = '\0';
		if (m == NULL)
			continue;
		switch (letter | 0x20) {
		case 's':
			v = m->sender;
			break;
		case 'l': {
			const char *at = strrchr(m->sender, '@');
			size_t n = at != NULL ? (size_t)(at - m->sender) : 0;

			if (n == 0 || n >= sizeof(val)) {
				v = "postmaster";
			} else {
				memcpy(val, m->sender, n);
				val[n] = '\0';
				v = val;
			}
			break;
		}
		case 'o': {
			const char *at = strrchr(m->sender, '@');

			v = at != NULL ? at + 1 : m->sender;
			break;
		}
		case 'd':
			v = m->domain;
			break;
		case 'i':
			ip_dotted(m->ip, val, sizeof(val));
			v = val;
			break;
		case 'c':
			if (m->ip->sa_family == AF_INET)
				ip_dotted(m->ip, val, sizeof(val));
			else
				inet_ntop(AF_INET6,
					  &((const struct sockaddr_in6 *)(const void *)m->ip)->sin6_addr,
					  val, sizeof(val));
			v = val;
			break;
		case 'p':
			v = m->ptr != NULL ? m->ptr : "unknown";
			break;
		case 'h':
			v = m->helo;
			break;
		case 'v':
			v = m->ip->sa_family == AF_INET ? "in-addr" : "ip6";
			break;
		case 'r':
			v = m->receiver != NULL ? m->receiver : "unknown";
			break;
		case 't':
			snprintf(val, sizeof(val), "%lld", (long long)m->now);
			v = val;
			break;
		}
		macro_value(&o, v, digits, reverse, delims, letter >= 'A' && letter <= 'Z');
	}
	if (o.over) {
		snprintf(err, errsz, "expansion too long");
		return -1;
	}
	return 0;
}

/* ---- evaluation --------------------------------------------------------- */

struct spf_frame {
	struct auth_spf_record rec;
	char domain[AUTH_NAME_MAX + 1];
	size_t term;
	int need_record;          /* include or redirect: "none" is a permerror */
};

struct auth_spf {
	struct dns *dns;
	auth_spf_cb cb;
	void *arg;
	int cancelled;
	int querying;
	struct sockaddr_storage ip;
	char helo[AUTH_NAME_MAX + 1];
	struct auth_spf_result res;
	struct spf_frame *frames[SPF_MAX_DEPTH];
	size_t depth;
	/* mx: the hosts of the current mx term, asked one after another */
	char (*mx)[AUTH_NAME_MAX + 1];
	size_t nmx;
	size_t mx_at;
};

static void spf_run(struct auth_spf *s);

static void spf_free(struct auth_spf *s)
{
	size_t i;

	for (i = 0; i < SPF_MAX_DEPTH; i++)
		free(s->frames[i]);
	free(s->mx);
	free(s);
}

static void spf_finish(struct auth_spf *s, enum auth_res r, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void spf_finish(struct auth_spf *s, enum auth_res r, const char *fmt, ...)
{
	va_list ap;

	s->res.res = r;
	va_start(ap, fmt);
	vsnprintf(s->res.reason, sizeof(s->res.reason), fmt, ap);
	va_end(ap);
	s->cb(&s->res, s->arg);
	spf_free(s);
}

static struct spf_frame *top(struct auth_spf *s)
{
	return s->frames[s->depth - 1];
}

static enum auth_res qual_result(char q)
{
	switch (q) {
	case '-':
		return AUTH_FAIL;
	case '~':
		return AUTH_SOFTFAIL;
	case '?':
		return AUTH_NEUTRAL;
	default:
		return AUTH_PASS;
	}
}

static void spf_query(struct auth_spf *s, const char *name, enum dns_type t, dns_cb cb)
{
	s->querying = 1;
	dns_query(s->dns, name, t, cb, 0, s);
}

/* Common handling of an answer: 1 to go on, 0 when the check is over. */
static int spf_answer(struct auth_spf *s, const struct dns_result *r, const char *what)
{
	s->querying = 0;
	if (s->cancelled) {
		spf_free(s);
		return 0;
	}
	if (r->status == DNS_TEMPFAIL || r->status == DNS_CANCELLED) {
		spf_finish(s, AUTH_TEMPERROR, "DNS error looking up %s", what);
		return 0;
	}
	return 1;
}

/* A void lookup (RFC 7208 4.6.4): 1 to go on, 0 when the limit ended the check. */
static int spf_void(struct auth_spf *s, const struct dns_result *r)
{
	if (r->status == DNS_OK && r->count > 0)
		return 1;
	if (++s->res.void_lookups > AUTH_SPF_MAX_VOID) {
		spf_finish(s, AUTH_PERMERROR, "more than %d void lookups", AUTH_SPF_MAX_VOID);
		return 0;
	}
	return 1;
}

/*
 * The target name of a term: its expanded domain-spec, or the current
 * domain; cut from the left to 253 octets (RFC 7208 7.3).  0, or -1 after
 * finishing with a permerror.
 */
static int spf_target(struct auth_spf *s, uint16_t off, uint16_t len, char *out, size_t outsz)
{
	struct spf_frame *f = top(s);
	struct auth_spf_macro m;
	char err[128];
	char buf[AUTH_SPF_EXPAND_MAX];
	const char *p;
	size_t n;

	if (len == 0) {
		strlcpy_s(out, f->domain, outsz);
		return 0;
	}
	memset(&m, 0, sizeof(m));
	m.sender = s->res.sender;
	m.domain = f->domain;
	m.ip = (const struct sockaddr *)&s->ip;
	m.helo = s->helo;
	if (auth_spf_expand(f->rec.text + off, len, &m, 0, buf, sizeof(buf), err,
			    sizeof(err)) < 0) {
		spf_finish(s, AUTH_PERMERROR, "%s: %s", f->domain, err);
		return -1;
	}
	p = buf;
	n = strlen(p);
	if (n > 0 && p[n - 1] == '.')
		n--;
	while (n > 253) {
		const char *dot = memchr(p, '.', n);

		if (dot == NULL)
			break;
		n -= (size_t)(dot + 1 - p);
		p = dot + 1;
	}
	if (!auth_domain_ok(p, n, 1) || n >= outsz) {
		spf_finish(s, AUTH_PERMERROR, "%s: invalid target name \"%.60s\"", f->domain, buf);
		return -1;
	}
	memcpy(out, p, n);
	out[n] = '\0';
	return 0;
}

static int spf_count_term(struct auth_spf *s)
{
	if (++s->res.dns_terms > AUTH_SPF_MAX_DNS_TERMS) {
		spf_finish(s, AUTH_PERMERROR, "more than %d DNS lookups", AUTH_SPF_MAX_DNS_TERMS);
		return -1;
	}
	return 0;
}

static int addr_in(const struct sockaddr *sa, int family, const void *addr, int cidr)
{
	const unsigned char *a;
	const unsigned char *b = addr;
	int bits;
	int i;

	if (sa->sa_family != family)
		return 0;
	if (family == AF_INET) {
		a = (const unsigned char *)&((const struct sockaddr_in *)(const void *)sa)->sin_addr;
		bits = cidr < 0 ? 32 : cidr;
	} else {
		a = ((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr.s6_addr;
		bits = cidr < 0 ? 128 : cidr;
	}
	for (i = 0; bits >= 8; i++, bits -= 8)
		if (a[i] != b[i])
			return 0;
	if (bits > 0) {
		unsigned char mask = (unsigned char)(0xff << (8 - bits));

		if ((a[i] & mask) != (b[i] & mask))
			return 0;
	}
	return 1;
}

/* Does an A/AAAA answer hold the client, within the term's cidr? */
static int answer_matches(const struct auth_spf *s, const struct dns_result *r,
			  const struct auth_spf_term *t)
{
	const struct sockaddr *sa = (const struct sockaddr *)&s->ip;
	size_t i;

	if (r->status != DNS_OK)
		return 0;
	for (i = 0; i < r->count; i++) {
		if (r->type == DNS_A && addr_in(sa, AF_INET, &r->u.a[i], t->cidr4))
			return 1;
		if (r->type == DNS_AAAA && addr_in(sa, AF_INET6, &r->u.aaaa[i], t->cidr6))
			return 1;
	}
	return 0;
}

/* The current term matched: its qualifier decides this frame. */
static void spf_frame_result(struct auth_spf *s, enum auth_res r);

static void spf_matched(struct auth_spf *s)
{
	struct spf_frame *f = top(s);

	spf_frame_result(s, qual_result(f->rec.terms[f->term].qual));
}

static void spf_next_term(struct auth_spf *s)
{
	top(s)->term++;
	spf_run(s);
}

static void spf_frame_result(struct auth_spf *s, enum auth_res r)
{
	struct spf_frame *f;

	if (s->depth == 1) {
		f = top(s);
		spf_finish(s, r, "%s: %s", f->domain,
			   r == AUTH_NEUTRAL ? "no mechanism matched (or ?all)" :
			   r == AUTH_PASS ? "the client is allowed" :
			   r == AUTH_FAIL ? "the client is not allowed" :
			   r == AUTH_SOFTFAIL ? "the client is probably not allowed" : "result");
		return;
	}
	/* The end of an include: RFC 7208 5.2's table. */
	free(s->frames[s->depth - 1]);
	s->frames[s->depth - 1] = NULL;
	s->depth--;
	f = top(s);
	switch (r) {
	case AUTH_PASS:
		spf_matched(s);
		return;
	case AUTH_FAIL:
	case AUTH_SOFTFAIL:
	case AUTH_NEUTRAL:
		spf_next_term(s);
		return;
	default:
		spf_finish(s, r, "include in %s", f->domain);
		return;
	}
}

static void on_a(const struct dns_result *r, uint64_t cookie, void *ctx)
{
	struct auth_spf *s = ctx;
	struct spf_frame *f;

	(void)cookie;
	if (!spf_answer(s, r, "an address"))
		return;
	f = top(s);
	if (!spf_void(s, r))
		return;
	if (answer_matches(s, r, &f->rec.terms[f->term]))
		spf_matched(s);
	else
		spf_next_term(s);
}

static void mx_next(struct auth_spf *s);

static void on_mx_host(const struct dns_result *r, uint64_t cookie, void *ctx)
{
	struct auth_spf *s = ctx;
	struct spf_frame *f;

	(void)cookie;
	if (!spf_answer(s, r, "an MX host"))
		return;
	f = top(s);
	if (answer_matches(s, r, &f->rec.terms[f->term])) {
		spf_matched(s);
		return;
	}
	s->mx_at++;
	mx_next(s);
}

static void mx_next(struct auth_spf *s)
{
	enum dns_type t = s->ip.ss_family == AF_INET ? DNS_A : DNS_AAAA;

	while (s->mx_at < s->nmx && s->mx[s->mx_at][0] == '\0')
		s->mx_at++;
	if (s->mx_at == s->nmx) {
		spf_next_term(s);
		return;
	}
	spf_query(s, s->mx[s->mx_at], t, on_mx_host);
}

static void on_mx(const struct dns_result *r, uint64_t cookie, void *ctx)
{
	struct auth_spf *s = ctx;
	size_t i;

	(void)cookie;
	if (!spf_answer(s, r, "MX"))
		return;
	if (!spf_void(s, r))
		return;
	if (r->status != DNS_OK) {
		spf_next_term(s);
		return;
	}
	if (r->count > AUTH_SPF_MAX_MX) {
		spf_finish(s, AUTH_PERMERROR, "%s: more than %d MX names", top(s)->domain,
			   AUTH_SPF_MAX_MX);
		return;
	}
	free(s->mx);
	s->mx = xcalloc(r->count + 1, sizeof(*s->mx));
	for (i = 0; i < r->count; i++)
		strlcpy_s(s->mx[i], r->u.mx[i].host, sizeof(s->mx[i]));
	s->nmx = r->count;
	s->mx_at = 0;
	mx_next(s);
}

static void on_exists(const struct dns_result *r, uint64_t cookie, void *ctx)
{
	struct auth_spf *s = ctx;

	(void)cookie;
	if (!spf_answer(s, r, "an exists name"))
		return;
	if (!spf_void(s, r))
		return;
	if (r->status == DNS_OK && r->count > 0)
		spf_matched(s);
	else
		spf_next_term(s);
}

static void on_record(const struct dns_result *r, uint64_t cookie, void *ctx);

static void spf_lookup_record(struct auth_spf *s)
{
	spf_query(s, top(s)->domain, DNS_TXT_FULL, on_record);
}

static void on_record(const struct dns_result *r, uint64_t cookie, void *ctx)
{
	struct auth_spf *s = ctx;
	struct spf_frame *f;
	const char *rec = NULL;
	const char *t;
	char err[160];
	size_t found = 0;

	(void)cookie;
	if (!spf_answer(s, r, "the SPF record"))
		return;
	f = top(s);
	if (r->status == DNS_NXDOMAIN || r->status == DNS_NODATA) {
		if (f->need_record && !spf_void(s, r))
			return;
	}
	for (t = dns_txt_next(r, NULL); t != NULL; t = dns_txt_next(r, t)) {
		if (auth_spf_is_record(t)) {
			rec = t;
			found++;
		}
	}
	if (found == 0 && r->status == DNS_OK && r->u.txt_full.cut) {
		spf_finish(s, AUTH_TEMPERROR, "%s: TXT records too large to read", f->domain);
		return;
	}
	if (found == 0) {
		if (f->need_record)
			spf_finish(s, AUTH_PERMERROR, "%s: no SPF record to include or redirect to",
				   f->domain);
		else
			spf_finish(s, AUTH_NONE, "%s: no SPF record", f->domain);
		return;
	}
	if (found > 1) {
		spf_finish(s, AUTH_PERMERROR, "%s: more than one SPF record", f->domain);
		return;
	}
	if (auth_spf_parse(rec, strlen(rec), &f->rec, err, sizeof(err)) < 0) {
		spf_finish(s, AUTH_PERMERROR, "%s: %s", f->domain, err);
		return;
	}
	f->term = 0;
	spf_run(s);
}

static void spf_run(struct auth_spf *s)
{
	struct spf_frame *f = top(s);
	char target[AUTH_NAME_MAX + 1];
	const struct sockaddr *sa = (const struct sockaddr *)&s->ip;

	for (; f->term < f->rec.nterms; f->term++) {
		const struct auth_spf_term *t = &f->rec.terms[f->term];

		switch (t->mech) {
		case SPF_ALL:
			spf_matched(s);
			return;
		case SPF_IP4:
			if (addr_in(sa, AF_INET, &t->v4, t->cidr4)) {
				spf_matched(s);
				return;
			}
			continue;
		case SPF_IP6:
			if (addr_in(sa, AF_INET6, &t->v6, t->cidr6)) {
				spf_matched(s);
				return;
			}
			continue;
		case SPF_PTR:
			/* Counted, never matched: see the contract at the top. */
			if (spf_count_term(s) < 0)
				return;
			continue;
		case SPF_A:
		case SPF_MX:
		case SPF_EXISTS:
		case SPF_INCLUDE:
			break;
		}
		if (spf_count_term(s) < 0)
			return;
		if (spf_target(s, t->spec_off, t->spec_len, target, sizeof(target)) < 0)
			return;
		switch (t->mech) {
		case SPF_A:
			spf_query(s, target, sa->sa_family == AF_INET ? DNS_A : DNS_AAAA, on_a);
			return;
		case SPF_MX:
			spf_query(s, target, DNS_MX, on_mx);
			return;
		case SPF_EXISTS:
			spf_query(s, target, DNS_A, on_exists);
			return;
		case SPF_INCLUDE: {
			struct spf_frame *nf;

			if (s->depth == SPF_MAX_DEPTH) {
				spf_finish(s, AUTH_PERMERROR, "includes nested too deep");
				return;
			}
			nf = xcalloc(1, sizeof(*nf));
			strlcpy_s(nf->domain, target, sizeof(nf->domain));
			nf->need_record = 1;
			s->frames[s->depth++] = nf;
			spf_lookup_record(s);
			return;
		}
		default:
			abort();
		}
	}
	if (f->rec.redirect_len > 0) {
		if (spf_count_term(s) < 0)
			return;
		if (spf_target(s, f->rec.redirect_off, f->rec.redirect_len, target,
			       sizeof(target)) < 0)
			return;
		strlcpy_s(f->domain, target, sizeof(f->domain));
		f->need_record = 1;
		memset(&f->rec, 0, sizeof(f->rec));
		spf_lookup_record(s);
		return;
	}
	spf_frame_result(s, AUTH_NEUTRAL);
}

static void on_start(const struct dns_result *r, uint64_t cookie, void *ctx);

struct auth_spf *auth_spf_start(struct dns *d, const struct sockaddr *ip, const char *helo,
				const char *mail_from, auth_spf_cb cb, void *arg)
{
	struct auth_spf *s = xcalloc(1, sizeof(*s));
	const char *at = strrchr(mail_from, '@');
	const char *domain;

	s->dns = d;
	s->cb = cb;
	s->arg = arg;
	memcpy(&s->ip, ip, ip->sa_family == AF_INET ? sizeof(struct sockaddr_in) :
	       sizeof(struct sockaddr_in6));
	strlcpy_s(s->helo, helo != NULL ? helo : "", sizeof(s->helo));
	if (mail_from[0] == '\0') {
		/* RFC 7208 2.4: the null sender is checked as postmaster@HELO. */
		strlcpy_s(s->res.identity, "helo", sizeof(s->res.identity));
		snprintf(s->res.sender, sizeof(s->res.sender), "postmaster@%s", s->helo);
		domain = s->helo;
	} else {
		strlcpy_s(s->res.identity, "mailfrom", sizeof(s->res.identity));
		if (at == NULL)
			snprintf(s->res.sender, sizeof(s->res.sender), "postmaster@%s", mail_from);
		else
			strlcpy_s(s->res.sender, mail_from, sizeof(s->res.sender));
		domain = at != NULL ? at + 1 : mail_from;
	}
	strlcpy_s(s->res.domain, domain, sizeof(s->res.domain));
	s->frames[0] = xcalloc(1, sizeof(*s->frames[0]));
	s->depth = 1;
	strlcpy_s(s->frames[0]->domain, domain, sizeof(s->frames[0]->domain));
	if (!auth_domain_ok(domain, strlen(domain), 1) ||
	    (ip->sa_family != AF_INET && ip->sa_family != AF_INET6)) {
		/*
		 * RFC 7208 4.3: a malformed or single-label domain is "none".
		 * The answer still comes from the loop: ask for a name that
		 * dns_query() refuses at once.
		 */
		s->res.domain[0] = '\0';
		spf_query(s, "", DNS_TXT_FULL, on_start);
		return s;
	}
	spf_lookup_record(s);
	return s;
}

/* Only for a domain that cannot be checked: report "none" from the loop. */
static void on_start(const struct dns_result *r, uint64_t cookie, void *ctx)
{
	struct auth_spf *s = ctx;

	(void)r;
	(void)cookie;
	s->querying = 0;
	if (s->cancelled) {
		spf_free(s);
		return;
	}
	spf_finish(s, AUTH_NONE, "no domain to check");
}

void auth_spf_cancel(struct auth_spf *s)
{
	if (s == NULL)
		return;
	if (s->querying)
		s->cancelled = 1;
	else
		spf_free(s);
}
