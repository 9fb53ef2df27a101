/*
 * mime_html: HTML reduced to text, URL hosts found in text and attributes,
 * UTF-8 repair.  Called by mime.c on bytes that are already decoded
 * (transfer encoding undone, converted to UTF-8).
 *
 * This is a reduction for content checks, not a renderer: it must be
 * linear in its input, never read past n, never write more than it was
 * given, and be hard to fool with the tricks spam uses to hide words
 * (comments and soft hyphens inside words, entities for letters).  Every
 * loop below advances its index on every turn; unterminated constructs
 * (a comment, a tag, a quoted attribute) run to the end of the input.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mime/mime_html.h"

/* windows-1252 code points of the octets 0x80..0x9f (WHATWG encoding). */
static const unsigned short cp1252[32] = {
	0x20ac, 0x0081, 0x201a, 0x0192, 0x201e, 0x2026, 0x2020, 0x2021,
	0x02c6, 0x2030, 0x0160, 0x2039, 0x0152, 0x008d, 0x017d, 0x008f,
	0x0090, 0x2018, 0x2019, 0x201c, 0x201d, 0x2022, 0x2013, 0x2014,
	0x02dc, 0x2122, 0x0161, 0x203a, 0x0153, 0x009d, 0x017e, 0x0178,
};

size_t mime_utf8_put(char *out, unsigned cp)
{
	unsigned char *o = (unsigned char *)out;

	if (cp == 0 || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		cp = 0xfffd;
	if (cp < 0x80) {
		o[0] = (unsigned char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (unsigned char)(0xc0 | (cp >> 6));
		o[1] = (unsigned char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (unsigned char)(0xe0 | (cp >> 12));
		o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
		o[2] = (unsigned char)(0x80 | (cp & 0x3f));
		return 3;
	}
	o[0] = (unsigned char)(0xf0 | (cp >> 18));
	o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
	o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
	o[3] = (unsigned char)(0x80 | (cp & 0x3f));
	return 4;
}

/* Length of the valid UTF-8 sequence at s (1..4), 0 if there is none (or NUL). */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
	unsigned c = s[0];
	size_t len;
	unsigned cp;

	/* NUL is not text: it would end the string for a C caller. */
	if (c == 0)
		return 0;
	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		len = 2;
	else if (c >= 0xe0 && c <= 0xef)
		len = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		len = 4;
	else
		return 0;
	if (n < len)
		return 0;
	cp = c & (0x3f >> (len - 1));
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	/* Overlong forms, surrogates and code points past U+10FFFF. */
	if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

/* Eight octets at s are ASCII without NUL (each one 0x01..0x7f). */
static int ascii8(const unsigned char *s)
{
	uint64_t x;

	memcpy(&x, s, sizeof(x));
	return ((x | (x - 0x0101010101010101ULL)) & 0x8080808080808080ULL) == 0;
}

size_t mime_ascii_len(const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0;

	while (n - i >= 8 && ascii8(u + i))
		i += 8;
	while (i < n && u[i] != 0 && u[i] < 0x80)
		i++;
	return i;
}

int mime_utf8_fix(const char *in, size_t n, struct dynbuf *out)
{
	const unsigned char *s = (const unsigned char *)in;
	size_t i = 0;

	while (i < n) {
		size_t run = i;
		size_t k;
		char enc[4];
		unsigned cp;

		for (;;) {
			/* Most mail text is ASCII: take it eight octets a step. */
			while (n - run >= 8 && ascii8(s + run))
				run += 8;
			if (run >= n)
				break;
			k = utf8_seq(s + run, n - run);
			if (k == 0)
				break;
			run += k;
		}
		if (run > i && dynbuf_add(out, in + i, run - i) != 0) {
			/* Keep what fits, cut at a character boundary. */
			size_t room = out->max - out->len;

			dynbuf_add(out, in + i, mime_utf8_valid_len(in + i, room));
			return -1;
		}
		i = run;
		if (i >= n)
			break;
		cp = s[i] >= 0x80 && s[i] < 0xa0 ? cp1252[s[i] - 0x80] : s[i];
		if (dynbuf_add(out, enc, mime_utf8_put(enc, cp)) != 0)
			return -1;
		i++;
	}
	return 0;
}

size_t mime_utf8_valid_len(const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;

	/* Look back at most three octets for the lead of a cut sequence. */
	for (size_t back = 1; back <= 4 && back <= n; back++) {
		unsigned c = u[n - back];
		size_t need;

		if ((c & 0xc0) == 0x80)
			continue;
		if (c < 0x80)
			return n;
		need = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
		return need > back ? n - back : n;
	}
	return n;
}

/* ---- URL hosts ------------------------------------------------------- */

static int host_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '.' || c == '_' || c >= 0x80;
}

/* Octets that end a URL's authority in running text or an attribute. */
static int auth_end(unsigned char c)
{
	if (c <= ' ' || c == 0x7f)
		return 1;
	switch (c) {
	case '/': case '?': case '#': case '\\': case '"': case '\'': case '<': case '>':
	case '(': case ')': case '[': case ']': case '{': case '}': case ',': case ';':
	case '|': case '^': case '`':
		return 1;
	default:
		return 0;
	}
}

/*
 * s starts at the authority of a URL.  Returns how many octets the
 * authority spans, so that the text scan can continue after it.
 */
static size_t host_span(const char *s, size_t n, int www, mime_url_cb cb, void *ctx)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t end = 0;
	size_t start = 0;
	size_t hn;

	while (end < n && !auth_end(u[end]))
		end++;
	for (size_t i = 0; i < end; i++) {
		if (u[i] == '@')
			start = i + 1;
	}
	hn = 0;
	while (start + hn < end && host_char(u[start + hn]))
		hn++;
	while (hn > 0 && s[start + hn - 1] == '.')
		hn--;
	if (hn == 0 || hn > 253 || (www && hn <= 4))
		return end;
	cb(ctx, s + start, hn);
	return end;
}

/* s starts with the k octets of lower-case p, ASCII letters in any case. */
static int prefix_n(const char *s, size_t n, const char *p, size_t k)
{
	if (n < k)
		return 0;
	for (size_t i = 0; i < k; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c >= 'A' && c <= 'Z')
			c = (unsigned char)(c + 32);
		if (c != (unsigned char)p[i])
			return 0;
	}
	return 1;
}

#define prefix(s, n, p) prefix_n((s), (n), (p), sizeof(p) - 1)

/* Length of a URL scheme prefix at s ("http://" ...), 0 if none. */
static size_t scheme_len(const char *s, size_t n)
{
	unsigned char c = n > 0 ? (unsigned char)s[0] | 0x20 : 0;

	if (c == 'h') {
		if (prefix(s, n, "http://"))
			return 7;
		if (prefix(s, n, "https://"))
			return 8;
	} else if (c == 'f' && prefix(s, n, "ftp://")) {
		return 6;
	}
	return 0;
}

void mime_url_host(const char *s, size_t n, mime_url_cb cb, void *ctx)
{
	size_t k;

	while (n > 0 && (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')) {
		s++;
		n--;
	}
	k = scheme_len(s, n);
	if (k > 0)
		host_span(s + k, n - k, 0, cb, ctx);
	else if (prefix(s, n, "//"))
		host_span(s + 2, n - 2, 0, cb, ctx);
	else if (prefix(s, n, "www."))
		host_span(s, n, 1, cb, ctx);
}

/*
 * Where a URL can start at or after from: "http://", "https://" and
 * "ftp://" have a ':' a fixed distance after their start, and "www." a
 * '.', and both octets are rare in text, so memchr() finds them and the
 * start is checked backwards.  Returns the start, or n when there is none.
 * *anchor keeps the search's place (the next ':' or '.' to look at).
 */
static size_t next_scheme(const char *s, size_t n, size_t from, size_t *anchor)
{
	while (*anchor < n) {
		const char *c = memchr(s + *anchor, ':', n - *anchor);
		size_t at, k;

		if (c == NULL)
			break;
		at = (size_t)(c - s);
		*anchor = at + 1;
		/* "ftp:" 3, "http:" 4, "https:" 5 octets before the colon */
		for (k = 3; k <= 5 && k <= at; k++)
			if (at - k >= from && scheme_len(s + at - k, n - at + k) == k + 3)
				return at - k;
	}
	*anchor = n;
	return n;
}

static size_t next_www(const char *s, size_t n, size_t from, size_t *anchor)
{
	while (*anchor < n) {
		const char *d = memchr(s + *anchor, '.', n - *anchor);
		size_t at;

		if (d == NULL)
			break;
		at = (size_t)(d - s);
		*anchor = at + 1;
		if (at >= 3 && at - 3 >= from && prefix(s + at - 3, n - at + 3, "www.") &&
		    (at == 3 || !host_char((unsigned char)s[at - 4])))
			return at - 3;
	}
	*anchor = n;
	return n;
}

/*
 * Every URL's host in running text, in order: at each start a scheme, or
 * "www." after an octet that is not part of a host name; the scan goes on
 * after the URL's authority.
 */
void mime_url_scan(const char *s, size_t n, mime_url_cb cb, void *ctx)
{
	size_t i = 0, colon = 0, dot = 0;
	size_t scheme = next_scheme(s, n, 0, &colon), www = next_www(s, n, 0, &dot);

	while (scheme < n || www < n) {
		if (scheme < www) {
			i = scheme + scheme_len(s + scheme, n - scheme);
			i += host_span(s + i, n - i, 0, cb, ctx);
		} else {
			size_t used = host_span(s + www, n - www, 1, cb, ctx);

			i = www + (used > 0 ? used : 1);
		}
		/* A start inside what was just read is not one. */
		if (scheme < i)
			scheme = next_scheme(s, n, i, &colon);
		if (www < i)
			www = next_www(s, n, i, &dot);
	}
}

/* ---- HTML to text ---------------------------------------------------- */

struct out {
	char *d;
	size_t len;
	size_t cap;
	int sep;        /* 0 none, ' ' or '\n' owed before the next text */
	int full;
};

static void put(struct out *o, const char *s, size_t k)
{
	if (o->full || k == 0)
		return;
	if (o->sep && o->len > 0) {
		if (o->len + 1 > o->cap) {
			o->full = 1;
			return;
		}
		o->d[o->len++] = (char)o->sep;
	}
	o->sep = 0;
	if (k > o->cap - o->len) {
		memcpy(o->d + o->len, s, o->cap - o->len);
		o->len = mime_utf8_valid_len(o->d, o->cap);
		o->full = 1;
		return;
	}
	memcpy(o->d + o->len, s, k);
	o->len += k;
}

static void owe(struct out *o, int sep)
{
	if (sep == '\n' || o->sep == 0)
		o->sep = sep;
}

static const struct {
	const char *name;
	unsigned cp;
} entities[] = {
	{ "amp", '&' }, { "lt", '<' }, { "gt", '>' }, { "quot", '"' }, { "apos", '\'' },
	{ "nbsp", 0xa0 }, { "shy", 0xad }, { "copy", 0xa9 }, { "reg", 0xae },
	{ "trade", 0x2122 }, { "euro", 0x20ac }, { "pound", 0xa3 }, { "yen", 0xa5 },
	{ "cent", 0xa2 }, { "sect", 0xa7 }, { "deg", 0xb0 }, { "middot", 0xb7 },
	{ "laquo", 0xab }, { "raquo", 0xbb }, { "mdash", 0x2014 }, { "ndash", 0x2013 },
	{ "hellip", 0x2026 }, { "bull", 0x2022 }, { "lsquo", 0x2018 }, { "rsquo", 0x2019 },
	{ "ldquo", 0x201c }, { "rdquo", 0x201d }, { "zwnj", 0x200c }, { "zwj", 0x200d },
	{ "times", 0xd7 }, { "eacute", 0xe9 }, { "egrave", 0xe8 }, { "aacute", 0xe1 },
	{ "agrave", 0xe0 }, { "ccedil", 0xe7 }, { "uuml", 0xfc }, { "ouml", 0xf6 },
	{ "auml", 0xe4 }, { "szlig", 0xdf }, { "ntilde", 0xf1 },
};

/*
 * s[0] is '&'.  On a character reference, sets *cp and returns its
 * length; else 0.  Numeric references may lack the ';' (browsers accept
 * them, so spam uses them); named ones need it.
 */
static size_t entity(const char *s, size_t n, unsigned *cp)
{
	size_t i = 1;
	unsigned v = 0;
	int digits = 0;

	if (i < n && s[i] == '#') {
		int hex = 0;

		i++;
		if (i < n && (s[i] == 'x' || s[i] == 'X')) {
			hex = 1;
			i++;
		}
		for (; i < n && digits < 8; i++, digits++) {
			unsigned char c = (unsigned char)s[i];
			unsigned d;

			if (c >= '0' && c <= '9')
				d = c - '0';
			else if (hex && (c | 0x20) >= 'a' && (c | 0x20) <= 'f')
				d = (c | 0x20) - 'a' + 10;
			else
				break;
			v = v * (hex ? 16 : 10) + d;
		}
		if (digits == 0)
			return 0;
		if (i < n && s[i] == ';')
			i++;
		if (v >= 0x80 && v < 0xa0)
			v = cp1252[v - 0x80];
		*cp = v;
		return i;
	}
	while (i < n && i < 10 && ((s[i] | 0x20) >= 'a' && (s[i] | 0x20) <= 'z'))
		i++;
	if (i == 1 || i >= n || s[i] != ';')
		return 0;
	for (size_t e = 0; e < sizeof(entities) / sizeof(entities[0]); e++) {
		if (strlen(entities[e].name) == i - 1 && memcmp(entities[e].name, s + 1, i - 1) == 0) {
			*cp = entities[e].cp;
			return i + 1;
		}
	}
	return 0;
}

static int is_space(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v';
}

static int is_alpha(unsigned char c)
{
	return (c | 0x20) >= 'a' && (c | 0x20) <= 'z';
}

/* Position of the next "</name" (any case) at or after i, or n. */
static size_t find_close(const char *s, size_t n, size_t i, const char *name)
{
	size_t k = strlen(name);

	while (i < n) {
		const char *p = memchr(s + i, '<', n - i);

		if (p == NULL)
			return n;
		i = (size_t)(p - s);
		if (i + 2 + k <= n && s[i + 1] == '/' && strncasecmp(s + i + 2, name, k) == 0)
			return i;
		i++;
	}
	return n;
}

/*
 * Tags that end a line of text: br p div tr li h1..h6 table ul ol
 * blockquote title hr dd dt pre section article header footer.  A switch
 * on the first letter: every tag of an HTML part passes here.
 */
static int block_tag(const char *name)
{
	switch (name[0]) {
	case 'a':
		return strcmp(name, "article") == 0;
	case 'b':
		return strcmp(name, "br") == 0 || strcmp(name, "blockquote") == 0;
	case 'd':
		return strcmp(name, "div") == 0 || strcmp(name, "dd") == 0 ||
		       strcmp(name, "dt") == 0;
	case 'f':
		return strcmp(name, "footer") == 0;
	case 'h':
		return (name[1] >= '1' && name[1] <= '6' && name[2] == '\0') ||
		       strcmp(name, "hr") == 0 || strcmp(name, "header") == 0;
	case 'l':
		return strcmp(name, "li") == 0;
	case 'o':
		return strcmp(name, "ol") == 0;
	case 'p':
		return name[1] == '\0' || strcmp(name, "pre") == 0;
	case 's':
		return strcmp(name, "section") == 0;
	case 't':
		return strcmp(name, "tr") == 0 || strcmp(name, "table") == 0 ||
		       strcmp(name, "title") == 0;
	case 'u':
		return strcmp(name, "ul") == 0;
	default:
		return 0;
	}
}

/*
 * s[i] is '<' and a tag name follows.  Parses the tag to its '>' and
 * returns the index after it; *name gets the lower-case name (cut).
 */
static size_t parse_tag(const char *s, size_t n, size_t i, char *name, size_t namesz, int *closing,
			mime_url_cb cb, void *ctx)
{
	size_t k = 0;

	i++;
	*closing = 0;
	if (i < n && s[i] == '/') {
		*closing = 1;
		i++;
	}
	while (i < n && !is_space((unsigned char)s[i]) && s[i] != '>' && s[i] != '/') {
		if (k + 1 < namesz)
			name[k++] = (char)(s[i] | 0x20);
		i++;
	}
	name[k] = '\0';
	while (i < n) {
		size_t a, alen;
		size_t v = 0, vlen = 0;

		if (is_space((unsigned char)s[i]) || s[i] == '/') {
			i++;
			continue;
		}
		if (s[i] == '>')
			return i + 1;
		a = i;
		while (i < n && !is_space((unsigned char)s[i]) && s[i] != '=' && s[i] != '>')
			i++;
		alen = i - a;
		while (i < n && is_space((unsigned char)s[i]))
			i++;
		if (i < n && s[i] == '=') {
			i++;
			while (i < n && is_space((unsigned char)s[i]))
				i++;
			if (i < n && (s[i] == '"' || s[i] == '\'')) {
				const char *q = memchr(s + i + 1, s[i], n - i - 1);

				v = i + 1;
				vlen = q != NULL ? (size_t)(q - s) - v : n - v;
				i = v + vlen + 1;
			} else {
				v = i;
				while (i < n && !is_space((unsigned char)s[i]) && s[i] != '>')
					i++;
				vlen = i - v;
			}
		}
		if (vlen > 0 && ((alen == 4 && strncasecmp(s + a, "href", 4) == 0) ||
				 (alen == 3 && strncasecmp(s + a, "src", 3) == 0)))
			mime_url_host(s + v, vlen, cb, ctx);
	}
	return n;
}

int mime_html_to_text(const char *in, size_t n, struct dynbuf *outbuf, mime_url_cb cb, void *ctx)
{
	struct out o = { 0 };
	size_t room = outbuf->max - outbuf->len;
	size_t i = 0;
	int rc;

	o.cap = n < room ? n : room;
	o.d = xmalloc(o.cap + 1);
	while (i < n && !o.full) {
		unsigned char c = (unsigned char)in[i];

		if (c == '<') {
			char name[16];
			int closing;

			if (i + 4 <= n && memcmp(in + i, "<!--", 4) == 0) {
				const char *end = memmem(in + i + 4, n - i - 4, "-->", 3);

				i = end != NULL ? (size_t)(end - in) + 3 : n;
				continue;
			}
			if (i + 1 < n && (in[i + 1] == '!' || in[i + 1] == '?')) {
				const char *end = memchr(in + i, '>', n - i);

				i = end != NULL ? (size_t)(end - in) + 1 : n;
				continue;
			}
			if (i + 1 < n && (is_alpha((unsigned char)in[i + 1]) ||
					  (in[i + 1] == '/' && i + 2 < n &&
					   is_alpha((unsigned char)in[i + 2])))) {
				i = parse_tag(in, n, i, name, sizeof(name), &closing, cb, ctx);
				if (!closing && (strcmp(name, "script") == 0 || strcmp(name, "style") == 0))
					i = find_close(in, n, i, name);
				else if (strcmp(name, "td") == 0 || strcmp(name, "th") == 0)
					owe(&o, ' ');
				if (block_tag(name))
					owe(&o, '\n');
				continue;
			}
			put(&o, "<", 1);
			i++;
		} else if (c == '&') {
			unsigned cp;
			size_t k = entity(in + i, n - i, &cp);
			char enc[4];

			if (k == 0) {
				put(&o, "&", 1);
				i++;
				continue;
			}
			i += k;
			/* Invisible characters that split words to fool filters. */
			if (cp == 0xad || (cp >= 0x200b && cp <= 0x200d) || cp == 0xfeff)
				continue;
			if (cp == 0xa0 || cp == '\t' || cp == '\n' || cp == '\r' || cp == ' ') {
				owe(&o, ' ');
				continue;
			}
			put(&o, enc, mime_utf8_put(enc, cp));
		} else if (is_space(c)) {
			owe(&o, ' ');
			i++;
		} else {
			size_t run = i + 1;

			while (run < n && in[run] != '<' && in[run] != '&' &&
			       !is_space((unsigned char)in[run]))
				run++;
			put(&o, in + i, run - i);
			i = run;
		}
	}
	rc = dynbuf_add(outbuf, o.d, o.len);
	free(o.d);
	if (rc != 0 || o.full)
		return -1;
	return 0;
}
