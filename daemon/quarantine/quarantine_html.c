/*
 * quarantine_html: see quarantine_html.h.  A small tokenizer in the spirit
 * of the HTML5 one (tags, attributes with quoted or bare values, comments,
 * raw-text elements), but it never tries to repair structure: a tag it
 * does not allow is dropped, its text stays.  What it emits it writes
 * itself (names lower-cased, values decoded then escaped), so nothing of
 * the input's markup reaches the output unexamined.
 */
#include "quarantine_html.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "../util/util.h"

#define NAME_MAX_LEN 32
#define VALUE_MAX_LEN 65536

/* Elements kept (without attributes unless listed below). */
static const char *const allowed_tags[] = {
	"a", "abbr", "b", "big", "blockquote", "br", "caption", "center", "code", "col",
	"colgroup", "dd", "del", "div", "dl", "dt", "em", "font", "h1", "h2", "h3", "h4", "h5",
	"h6", "hr", "i", "img", "ins", "kbd", "li", "ol", "p", "pre", "q", "s", "small", "span",
	"strike", "strong", "sub", "sup", "table", "tbody", "td", "tfoot", "th", "thead", "tr",
	"tt", "u", "ul",
};

/* Elements whose content is not text to show: dropped with the element. */
static const char *const raw_tags[] = {
	"script", "style", "textarea", "title", "xmp", "iframe", "noembed", "noframes",
	"noscript", "plaintext", "template", "svg", "math", "object", "applet", "select",
};

/* Attributes kept on any allowed element (checked further where noted). */
static const char *const allowed_attrs[] = {
	"align", "alt", "bgcolor", "border", "cellpadding", "cellspacing", "color", "colspan",
	"dir", "face", "height", "href", "lang", "rowspan", "size", "src", "style", "title",
	"valign", "width",
};

static int in_list(const char *const *list, size_t n, const char *s)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(list[i], s) == 0)
			return 1;
	return 0;
}

static int is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f';
}

static char lower(char c)
{
	return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

/* Find needle (lower case) in s[0..n) ignoring ASCII case; index or n. */
static size_t find_ci(const char *s, size_t n, const char *needle)
{
	size_t k = strlen(needle), i, j;

	for (i = 0; i + k <= n; i++) {
		for (j = 0; j < k && lower(s[i + j]) == needle[j]; j++)
			;
		if (j == k)
			return i;
	}
	return n;
}

static int put(struct dynbuf *out, const char *s, size_t n)
{
	return dynbuf_add(out, s, n);
}

static int puts_(struct dynbuf *out, const char *s)
{
	return dynbuf_add(out, s, strlen(s));
}

/* Text content: '<' never reaches here unescaped, '>' and '"' escaped. */
static int put_text(struct dynbuf *out, const char *s, size_t n)
{
	size_t i, start = 0;

	for (i = 0; i < n; i++) {
		const char *rep = s[i] == '>' ? "&gt;" : s[i] == '<' ? "&lt;"
				: s[i] == '\0' ? "" : NULL;

		if (rep == NULL)
			continue;
		if (put(out, s + start, i - start) < 0 || puts_(out, rep) < 0)
			return -1;
		start = i + 1;
	}
	return put(out, s + start, n - start);
}

/* An attribute value, decoded, as a double-quoted value. */
static int put_value(struct dynbuf *out, const char *s, size_t n)
{
	size_t i, start = 0;

	for (i = 0; i < n; i++) {
		const char *rep = s[i] == '&' ? "&amp;" : s[i] == '<' ? "&lt;"
				: s[i] == '>' ? "&gt;" : s[i] == '"' ? "&quot;"
				: s[i] == '\'' ? "&#39;" : s[i] == '\0' ? "" : NULL;

		if (rep == NULL)
			continue;
		if (put(out, s + start, i - start) < 0 || puts_(out, rep) < 0)
			return -1;
		start = i + 1;
	}
	return put(out, s + start, n - start);
}

static size_t utf8_put(char *o, uint32_t cp)
{
	if (cp == 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
		cp = 0xFFFD;
	if (cp < 0x80) {
		o[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (char)(0xC0 | (cp >> 6));
		o[1] = (char)(0x80 | (cp & 0x3F));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (char)(0xE0 | (cp >> 12));
		o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
		o[2] = (char)(0x80 | (cp & 0x3F));
		return 3;
	}
	o[0] = (char)(0xF0 | (cp >> 18));
	o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
	o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
	o[3] = (char)(0x80 | (cp & 0x3F));
	return 4;
}

/*
 * Decode character references of an attribute value into out (at most
 * outsz - 1 bytes, NUL-terminated): numeric ones and the five XML names;
 * others stay as written.  Browsers decode before they look at a URL
 * scheme, so the checks must look at the decoded form.
 */
static size_t decode_value(const char *s, size_t n, char *out, size_t outsz)
{
	static const struct { const char *name; char c; } named[] = {
		{ "amp;", '&' }, { "lt;", '<' }, { "gt;", '>' }, { "quot;", '"' },
		{ "apos;", '\'' }, { "colon;", ':' }, { "tab;", '\t' }, { "newline;", '\n' },
	};
	size_t i = 0, o = 0, k;

	while (i < n && o + 5 < outsz) {
		if (s[i] != '&') {
			out[o++] = s[i++];
			continue;
		}
		if (i + 1 < n && s[i + 1] == '#') {
			size_t j = i + 2;
			uint32_t cp = 0;
			int hex = j < n && (s[j] == 'x' || s[j] == 'X');
			int digits = 0;

			if (hex)
				j++;
			while (j < n) {
				char c = s[j];
				int d = c >= '0' && c <= '9' ? c - '0'
				      : hex && c >= 'a' && c <= 'f' ? c - 'a' + 10
				      : hex && c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;

				if (d < 0)
					break;
				if (cp < 0x110000)
					cp = cp * (hex ? 16 : 10) + (uint32_t)d;
				digits++;
				j++;
			}
			if (digits > 0) {
				if (j < n && s[j] == ';')
					j++;
				o += utf8_put(out + o, cp);
				i = j;
				continue;
			}
		}
		for (k = 0; k < ARRAY_LEN(named); k++) {
			size_t l = strlen(named[k].name);

			if (i + 1 + l <= n && strncasecmp(s + i + 1, named[k].name, l) == 0) {
				out[o++] = named[k].c;
				i += 1 + l;
				break;
			}
		}
		if (k == ARRAY_LEN(named))
			out[o++] = s[i++];
	}
	out[o] = '\0';
	return o;
}

/* The value without white space and control characters, lower case, for scheme checks. */
static void squeeze(const char *v, size_t n, char *out, size_t outsz)
{
	size_t i, o = 0;

	for (i = 0; i < n && o + 1 < outsz; i++)
		if ((unsigned char)v[i] > 0x20 && v[i] != 0x7F)
			out[o++] = lower(v[i]);
	out[o] = '\0';
}

static int value_ok(const char *tag, const char *attr, const char *v, size_t n)
{
	char sq[256];

	squeeze(v, n, sq, sizeof(sq));
	if (strcmp(attr, "href") == 0 || strcmp(attr, "src") == 0) {
		size_t i;

		/* A URL with a control character or a blank inside is not one a
		 * browser reads the way we do: refuse it rather than guess. */
		for (i = 0; i < n; i++)
			if ((unsigned char)v[i] <= 0x20 || v[i] == 0x7F)
				return 0;
	}
	if (strcmp(attr, "href") == 0)
		return strcmp(tag, "a") == 0 && (sq[0] == '#' || strncmp(sq, "mailto:", 7) == 0);
	if (strcmp(attr, "src") == 0)
		return strcmp(tag, "img") == 0 &&
		       (strncmp(sq, "data:image/png;", 15) == 0 ||
			strncmp(sq, "data:image/gif;", 15) == 0 ||
			strncmp(sq, "data:image/jpeg;", 16) == 0 ||
			strncmp(sq, "data:image/webp;", 16) == 0);
	if (strcmp(attr, "style") == 0) {
		size_t i;
		char low[1024];

		/* The whole value, not a prefix: one forbidden word anywhere drops it. */
		if (n >= sizeof(low))
			return 0;
		for (i = 0; i < n; i++) {
			low[i] = lower(v[i]);
			if (v[i] == '\\' || v[i] == '\0' || (unsigned char)v[i] < 0x09)
				return 0;
		}
		low[n] = '\0';
		return strstr(low, "url") == NULL && strstr(low, "expression") == NULL &&
		       strstr(low, "@import") == NULL && strstr(low, "javascript") == NULL &&
		       strstr(low, "behavior") == NULL && strstr(low, "binding") == NULL &&
		       strstr(low, "image") == NULL && strstr(low, "/*") == NULL;
	}
	return 1;
}

/*
 * One tag at in[i] == '<' followed by a letter or '/'.  Returns the index
 * after it; *raw set to the element name whose content is to be skipped.
 */
static size_t tag(const char *in, size_t n, size_t i, struct dynbuf *out, int *err,
		  char *raw, size_t rawsz)
{
	char name[NAME_MAX_LEN + 1], an[NAME_MAX_LEN + 1];
	size_t nl = 0, j = i + 1;
	int closing = 0, keep;

	raw[0] = '\0';
	if (j < n && in[j] == '/') {
		closing = 1;
		j++;
	}
	while (j < n && !is_space(in[j]) && in[j] != '>' && in[j] != '/') {
		if (nl < NAME_MAX_LEN)
			name[nl++] = lower(in[j]);
		j++;
	}
	name[nl] = '\0';
	keep = in_list(allowed_tags, ARRAY_LEN(allowed_tags), name);
	if (!closing && in_list(raw_tags, ARRAY_LEN(raw_tags), name))
		strlcpy_s(raw, name, rawsz);
	if (keep && (puts_(out, closing ? "</" : "<") < 0 || puts_(out, name) < 0))
		*err = 1;
	/* Attributes, until '>'. */
	while (j < n && in[j] != '>') {
		size_t as, al = 0, vs = 0, vl = 0;
		int has_value = 0;

		if (is_space(in[j]) || in[j] == '/') {
			j++;
			continue;
		}
		as = j;
		while (j < n && !is_space(in[j]) && in[j] != '>' && in[j] != '/' && in[j] != '=' &&
		       (j == as || (in[j] != '"' && in[j] != '\'')))
			j++;
		for (al = 0; al < j - as && al < NAME_MAX_LEN; al++)
			an[al] = lower(in[as + al]);
		an[al] = '\0';
		if (j - as > NAME_MAX_LEN)
			an[0] = '\0'; /* too long to be one we keep */
		while (j < n && is_space(in[j]))
			j++;
		if (j < n && in[j] == '=') {
			j++;
			while (j < n && is_space(in[j]))
				j++;
			has_value = 1;
			if (j < n && (in[j] == '"' || in[j] == '\'')) {
				char q = in[j++];

				vs = j;
				while (j < n && in[j] != q)
					j++;
				vl = j - vs;
				if (j < n)
					j++;
			} else {
				vs = j;
				while (j < n && !is_space(in[j]) && in[j] != '>')
					j++;
				vl = j - vs;
			}
		}
		if (!keep || closing || an[0] == '\0' ||
		    !in_list(allowed_attrs, ARRAY_LEN(allowed_attrs), an))
			continue;
		{
			static _Thread_local char dec[VALUE_MAX_LEN + 8];
			size_t dl = has_value ? decode_value(in + vs, vl < VALUE_MAX_LEN ? vl :
							     VALUE_MAX_LEN, dec, sizeof(dec)) : 0;

			if (!has_value)
				dec[0] = '\0';
			if (!value_ok(name, an, dec, dl))
				continue;
			if (puts_(out, " ") < 0 || puts_(out, an) < 0 || puts_(out, "=\"") < 0 ||
			    put_value(out, dec, dl) < 0 || puts_(out, "\"") < 0)
				*err = 1;
		}
	}
	if (keep && puts_(out, ">") < 0)
		*err = 1;
	return j < n ? j + 1 : n;
}

int quarantine_html_sanitize(const char *in, size_t n, struct dynbuf *out)
{
	size_t i = 0, text = 0;
	int err = 0;
	char raw[NAME_MAX_LEN + 1];

	while (i < n && !err) {
		if (in[i] != '<') {
			i++;
			continue;
		}
		if (put_text(out, in + text, i - text) < 0) {
			err = 1;
			break;
		}
		if (i + 1 < n && (is_alpha(in[i + 1]) || (in[i + 1] == '/' && i + 2 < n &&
							 is_alpha(in[i + 2])))) {
			i = tag(in, n, i, out, &err, raw, sizeof(raw));
			if (raw[0] != '\0') {
				/* Skip to the matching end tag (or the end). */
				char end[NAME_MAX_LEN + 3];
				size_t k;

				snprintf(end, sizeof(end), "</%s", raw);
				k = find_ci(in + i, n - i, end);
				i += k;
				if (i < n) {
					const char *gt = memchr(in + i, '>', n - i);

					i = gt != NULL ? (size_t)(gt - in) + 1 : n;
				}
			}
		} else if (i + 3 < n && memcmp(in + i, "<!--", 4) == 0) {
			size_t k = find_ci(in + i + 4, n - i - 4, "-->");

			i = i + 4 + k + (k < n - i - 4 ? 3 : 0);
		} else if (i + 1 < n && (in[i + 1] == '!' || in[i + 1] == '?' || in[i + 1] == '/')) {
			const char *gt = memchr(in + i, '>', n - i);

			i = gt != NULL ? (size_t)(gt - in) + 1 : n;
		} else {
			if (puts_(out, "&lt;") < 0)
				err = 1;
			i++;
		}
		text = i;
	}
	if (!err && text < n && put_text(out, in + text, n - text) < 0)
		err = 1;
	return err ? -1 : 0;
}
