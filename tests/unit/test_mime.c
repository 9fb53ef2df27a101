/*
 * Unit tests for the message walk (daemon/mime): decoded headers (RFC 2047,
 * RFC 2231, raw 8-bit), bodies (quoted-printable, base64, charsets), HTML
 * reduced to text, URL hosts, attachments, nesting, every bound, the raw
 * body pointer, and the SpamAssassin corpus when scripts/corpus.sh has it.
 */
#include <dirent.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <cmocka.h>

#include <glib.h>

#include "mime/mime.h"
#include "mime/mime_html.h"
#include "util/util.h"

static struct mime_view *parse_lim(const char *msg, size_t len, const struct mime_limits *lim)
{
	struct mime_view *v = NULL;
	char err[128];

	if (mime_parse(msg, len, lim, &v, err, sizeof(err)) != 0)
		fail_msg("mime_parse failed: %s", err);
	if (!g_utf8_validate(v->text, (gssize)v->text_len, NULL))
		fail_msg("text is not valid UTF-8");
	for (size_t i = 0; i < v->nheaders; i++) {
		if (!g_utf8_validate(v->headers[i].value, -1, NULL))
			fail_msg("header %s is not valid UTF-8", v->headers[i].name);
	}
	return v;
}

static struct mime_view *parse(const char *msg)
{
	return parse_lim(msg, strlen(msg), NULL);
}

static const char *header(const struct mime_view *v, const char *name)
{
	size_t pos = 0;

	return mime_header_next(v, name, &pos);
}

/* ---- header and body cases, table-driven ----------------------------- */

static const struct {
	const char *name;
	const char *in;
	const char *hdr;        /* header to look at, NULL: none */
	const char *want_hdr;
	const char *want_text;  /* exact text, NULL: don't compare */
	unsigned want_set;      /* flags that must be set */
	unsigned want_clear;    /* flags that must be clear */
} cases[] = {
	{ "rfc2047 utf-8 B", "Subject: =?UTF-8?B?w6l0w6k=?=\r\n\r\nx\r\n", "subject", "été", "x\r\n",
	  0, MIME_F_8BIT_HEADERS | MIME_F_MALFORMED | MIME_F_LIMIT },
	{ "rfc2047 iso-8859-1 Q", "Subject: =?ISO-8859-1?Q?caf=E9_cr=E8me?=\r\n\r\n", "Subject",
	  "café crème", "", 0, MIME_F_8BIT_HEADERS },
	{ "rfc2047 mixed with plain words",
	  "Subject: =?UTF-8?B?w6k=?= plain =?ISO-8859-1?Q?=E9?=\r\n\r\n", "Subject", "é plain é",
	  NULL, 0, 0 },
	{ "rfc2047 adjacent words joined", "Subject: =?UTF-8?Q?a?= =?UTF-8?Q?b?=\r\n\r\n", "Subject",
	  "ab", NULL, 0, 0 },
	{ "rfc2047 koi8-r", "Subject: =?koi8-r?B?8NLJ18XU?=\r\n\r\n", "Subject", "Привет", NULL,
	  0, 0 },
	{ "folded header unfolded", "Subject: one\r\n two\r\n\tthree\r\n\r\n", "Subject",
	  "one two\tthree", NULL, 0, 0 },
	{ "raw latin1 header", "Subject: caf\xe9\r\n\r\n", "Subject", "café", NULL,
	  MIME_F_8BIT_HEADERS, 0 },
	{ "raw koi8-r header, charset hint",
	  "Subject: \xf0\xd2\xc9\xd7\xc5\xd4\r\nContent-Type: text/plain; charset=koi8-r\r\n\r\n"
	  "\xf0\xd2\xc9\xd7\xc5\xd4\r\n",
	  "Subject", "Привет", "Привет\r\n", MIME_F_8BIT_HEADERS, 0 },
	{ "raw utf-8 header kept", "Subject: \xc3\xa9t\xc3\xa9\r\n\r\n", "Subject", "été", NULL,
	  MIME_F_8BIT_HEADERS, 0 },
	{ "header name as sent", "X-MiXeD-Case: v\r\n\r\n", "x-mixed-case", "v", NULL, 0, 0 },
	{ "content-type in header list",
	  "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\nSubject: s\r\n\r\nb",
	  "content-type", "text/plain; charset=us-ascii", "b", 0, 0 },
	{ "quoted-printable utf-8",
	  "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n"
	  "\r\ncaf=C3=A9 soft=\r\nbreak\r\n",
	  NULL, NULL, "café softbreak\r\n", 0, 0 },
	{ "base64", "Content-Transfer-Encoding: base64\r\n\r\nSGVsbG8gd29ybGQ=\r\n", NULL, NULL,
	  "Hello world", 0, 0 },
	{ "iso-8859-1 body", "Content-Type: text/plain; charset=iso-8859-1\r\n\r\ncaf\xe9", NULL, NULL,
	  "café", 0, 0 },
	{ "windows-1252 body", "Content-Type: text/plain; charset=windows-1252\r\n\r\n\x93q\x94 \x80",
	  NULL, NULL, "“q” €", 0, 0 },
	{ "koi8-r body", "Content-Type: text/plain; charset=koi8-r\r\n\r\n\xf0\xd2\xc9\xd7\xc5\xd4",
	  NULL, NULL, "Привет", 0, 0 },
	{ "shift_jis body", "Content-Type: text/plain; charset=shift_jis\r\n\r\n\x93\xfa\x96\x7b",
	  NULL, NULL, "日本", 0, 0 },
	{ "undeclared 8-bit body read as windows-1252", "Subject: x\r\n\r\ncaf\xe9", NULL, NULL,
	  "café", 0, 0 },
	{ "unknown charset repaired", "Content-Type: text/plain; charset=x-nonsense\r\n\r\na\xffz",
	  NULL, NULL, "aÿz", 0, 0 },
	{ "html only", "Content-Type: text/html\r\n\r\n<p>Hi <b>there</b></p>", NULL, NULL,
	  "Hi there", MIME_F_HTML_ONLY, 0 },
	{ "bare LF", "Subject: lf\nContent-Type: text/plain\n\nline1\nline2\n", "Subject", "lf",
	  "line1\nline2\n", 0, MIME_F_MALFORMED },
	{ "no body", "Subject: only a header\r\n", "Subject", "only a header", "", 0,
	  MIME_F_MALFORMED | MIME_F_LIMIT },
	{ "empty buffer", "", NULL, NULL, "", 0, ~0u },
	{ "mbox From line skipped", "From a@b.example Wed Oct  2 21:15:45 2002\r\nSubject: s\r\n\r\nb",
	  "Subject", "s", "b", 0, MIME_F_MALFORMED },
	{ "repeated trace fields are not malformed",
	  "Received: from a\r\nReceived: from b\r\nX-A: 1\r\nX-A: 2\r\nSubject: s\r\n\r\nb",
	  "Subject", "s", "b", 0, MIME_F_MALFORMED },
	{ "two different subjects are malformed", "Subject: s\r\nSubject: t\r\n\r\nb", "Subject",
	  "s", "b", MIME_F_MALFORMED, 0 },
	{ "no header at all: text", "just some text\r\nSubject: not a header\r\n\r\nmore", NULL,
	  NULL, "just some text\r\nSubject: not a header\r\n\r\nmore", MIME_F_MALFORMED, 0 },
	{ "multipart/alternative joins text",
	  "Content-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\n"
	  "Content-Type: text/plain\r\n\r\nplain\r\n--b\r\nContent-Type: text/html\r\n\r\n"
	  "<i>html</i>\r\n--b--\r\n",
	  NULL, NULL, "plain\nhtml", 0, MIME_F_HTML_ONLY | MIME_F_MALFORMED },
	{ "missing boundary end", "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
	  "Content-Type: text/plain\r\n\r\npart\r\n", NULL, NULL, "part\r\n", MIME_F_MALFORMED, 0 },
	{ "multipart/encrypted",
	  "Content-Type: multipart/encrypted; protocol=\"application/pgp-encrypted\"; boundary=b\r\n"
	  "\r\n--b\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n--b\r\n"
	  "Content-Type: application/octet-stream\r\n\r\nxx\r\n--b--\r\n",
	  NULL, NULL, "", MIME_F_ENCRYPTED, 0 },
	{ "pkcs7", "Content-Type: application/pkcs7-mime; smime-type=enveloped-data\r\n\r\nMIA=\r\n",
	  NULL, NULL, "", MIME_F_ENCRYPTED, 0 },
};

static void test_cases(void **state)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct mime_view *v = parse(cases[i].in);

		if (cases[i].hdr != NULL) {
			const char *got = header(v, cases[i].hdr);

			if (got == NULL || strcmp(got, cases[i].want_hdr) != 0)
				fail_msg("%s: got %s '%s', want '%s'", cases[i].name, cases[i].hdr,
					 got ? got : "(none)", cases[i].want_hdr);
		}
		if (cases[i].want_text != NULL && strcmp(v->text, cases[i].want_text) != 0)
			fail_msg("%s: got text '%s', want '%s'", cases[i].name, v->text,
				 cases[i].want_text);
		if ((v->flags & cases[i].want_set) != cases[i].want_set)
			fail_msg("%s: got flags %#x, want %#x set", cases[i].name, v->flags,
				 cases[i].want_set);
		if ((v->flags & cases[i].want_clear) != 0)
			fail_msg("%s: got flags %#x, want %#x clear", cases[i].name, v->flags,
				 cases[i].want_clear);
		mime_view_free(v);
	}
}

static void test_invalid_rfc2047(void **state)
{
	static const char *const in[] = {
		"Subject: =?UTF-8?B?####?=\r\n\r\n",
		"Subject: =?no-such-charset?Q?abc?=\r\n\r\n",
		"Subject: =?UTF-8?Q?caf=E9?=\r\n\r\n",   /* latin1 octet in a UTF-8 word */
		"Subject: =?UTF-8?B?w6\r\n\r\n",
	};

	for (size_t i = 0; i < sizeof(in) / sizeof(in[0]); i++) {
		struct mime_view *v = parse(in[i]);   /* parse() checks UTF-8 */

		if (header(v, "Subject") == NULL)
			fail_msg("case %zu: got no Subject, want one", i);
		mime_view_free(v);
	}
}

/* ---- HTML reduction and URLs ------------------------------------------ */

struct hosts {
	char list[16][64];
	size_t n;
};

static void collect(void *ctx, const char *h, size_t n)
{
	struct hosts *hs = ctx;

	if (hs->n < 16 && n < 64) {
		memcpy(hs->list[hs->n], h, n);
		hs->list[hs->n][n] = '\0';
		hs->n++;
	}
}

static const struct {
	const char *name;
	const char *in;
	const char *want;
	const char *want_hosts;   /* space-separated, as written */
} html_cases[] = {
	{ "tags and entities", "<p>Hello&nbsp;&amp; <b>wo</b>rld &#233;&#xE9; &euro;&lt;</p>x",
	  "Hello & world éé €<\nx", "" },
	{ "script and style dropped",
	  "<style>p{color:red}</style>A<script>var s=\"</b>\";</script>B<SCRIPT>x</SCRIPT>C",
	  "ABC", "" },
	{ "comment splits no word", "Vi<!-- x -->agra", "Viagra", "" },
	{ "soft hyphen dropped", "Vi&shy;ag&#173;ra", "Viagra", "" },
	{ "numeric without semicolon", "&#86&#105agra", "Viagra", "" },
	{ "whitespace collapsed", "  a \r\n\t b  ", "a b", "" },
	{ "block tags break lines", "a<br>b<div>c</div>d", "a\nb\nc\nd", "" },
	{ "every block tag",
	  "0<P>1<H1>2<h6>3<hr>4<header>5<dd>6<dt>7<pre>8<section>9<article>a<footer>b"
	  "<table>c<ul>d<ol>e<li>f<tr>g<title>h<blockquote>i<br/>j",
	  "0\n1\n2\n3\n4\n5\n6\n7\n8\n9\na\nb\nc\nd\ne\nf\ng\nh\ni\nj", "" },
	{ "near block tags are inline",
	  "0<h7>1<h10>2<hx>3<param>4<pr>5<brx>6<d>7<tab>8<u>9<b>a<span>b<td>c",
	  "0123456789ab c", "" },
	{ "unknown entity kept", "AT&T &bogus; &", "AT&T &bogus; &", "" },
	{ "lone < kept", "1 < 2", "1 < 2", "" },
	{ "unterminated comment", "a<!-- never closed", "a", "" },
	{ "unterminated tag", "a<a href=\"http://x.example", "a", "x.example" },
	{ "href and src", "<a href=\"HTTP://user:pw@Evil.Example.COM.:8080/x\">c</a>"
	  "<img src='//cdn.example.net/i.png'><a href=www.plain.example>w</a>"
	  "<a href=\"mailto:a@b.example\">m</a>",
	  "cwm", "Evil.Example.COM cdn.example.net www.plain.example" },
};

static void test_html(void **state)
{
	for (size_t i = 0; i < sizeof(html_cases) / sizeof(html_cases[0]); i++) {
		struct dynbuf out;
		struct hosts hs = { .n = 0 };
		GString *joined = g_string_new("");

		dynbuf_init(&out, 1 << 16);
		mime_html_to_text(html_cases[i].in, strlen(html_cases[i].in), &out, collect, &hs);
		if (strcmp(out.data ? out.data : "", html_cases[i].want) != 0)
			fail_msg("%s: got '%s', want '%s'", html_cases[i].name, out.data ? out.data : "",
				 html_cases[i].want);
		for (size_t k = 0; k < hs.n; k++)
			g_string_append_printf(joined, "%s%s", k > 0 ? " " : "", hs.list[k]);
		if (strcmp(joined->str, html_cases[i].want_hosts) != 0)
			fail_msg("%s: got hosts '%s', want '%s'", html_cases[i].name, joined->str,
				 html_cases[i].want_hosts);
		g_string_free(joined, TRUE);
		dynbuf_free(&out);
	}
}

static void test_html_cut(void **state)
{
	struct dynbuf out;
	struct hosts hs = { .n = 0 };

	dynbuf_init(&out, 5);
	if (mime_html_to_text("ab\xc3\xa9\xc3\xa9\xc3\xa9", 8, &out, collect, &hs) != -1)
		fail_msg("cut: got 0, want -1");
	if (out.len != 4 || memcmp(out.data, "ab\xc3\xa9", 4) != 0)
		fail_msg("cut: got %zu octets, want 4 cut at a character boundary", out.len);
	dynbuf_free(&out);
}

static int has_host(const struct mime_view *v, const char *h)
{
	for (size_t i = 0; i < v->nurl_hosts; i++) {
		if (strcmp(v->url_hosts[i], h) == 0)
			return 1;
	}
	return 0;
}

static void test_urls(void **state)
{
	static const char *const want[] = {
		"www.example.org", "www.test.co.uk", "münchen.de", "files.example.com",
		"evil.example.com", "cdn.example.net", "10.1.2.3",
	};
	struct mime_view *v = parse(
		"Content-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\n"
		"Content-Type: text/plain; charset=utf-8\r\n\r\n"
		"Visit http://www.Example.org/path, or (www.test.co.uk) and https://MÜNCHEN.de/x\r\n"
		"ftp://files.example.com:21/ http://10.1.2.3/ again HTTP://WWW.EXAMPLE.ORG\r\n"
		"not urls: mailto:x@y.example wwwx.example http:// www.\r\n"
		"--b\r\nContent-Type: text/html\r\n\r\n"
		"<a href=\"https://user@Evil.Example.COM.:8443/p\">here</a>"
		"<img src=\"//cdn.example.net/1.gif\">\r\n--b--\r\n");

	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		if (!has_host(v, want[i]))
			fail_msg("got no host %s, want it (have %zu)", want[i], v->nurl_hosts);
	}
	if (v->nurl_hosts != sizeof(want) / sizeof(want[0]))
		fail_msg("got %zu hosts, want %zu (unique)", v->nurl_hosts,
			 sizeof(want) / sizeof(want[0]));
	mime_view_free(v);
}

/* The text scan: schemes in any case, "www." only after a non-host
 * octet, every octet that ends an authority, URLs at the very end. */
static void test_url_scan(void **state)
{
	static const struct {
		const char *in;
		const char *want;   /* hosts as written, space-separated */
	} scans[] = {
		{ "HTTPS://A.example/ FtP://b.example hTtP://c.example", "A.example b.example c.example" },
		{ "wWw.d.example xwww.no.example 1www.no.example", "wWw.d.example" },
		{ "(www.e.example)", "www.e.example" },
		{ "http://f.example|x http://g.example^y http://h.example`z", "f.example g.example h.example" },
		{ "http://i.example{ http://j.example} http://k.example\\", "i.example j.example k.example" },
		{ "http://l.example\x7fq http://m.example\x01", "l.example m.example" },
		{ "hhhhhhhhhhhhhhhhhttp://n.example wwwwwwww.o.example", "n.example" },
		{ "ends with http://p.ex", "p.ex" },
		{ "http://", "" },
		{ "www.", "" },
		{ "ftp:/", "" },
		{ "www.http://q.example", "www.http" },
	};

	for (size_t i = 0; i < sizeof(scans) / sizeof(scans[0]); i++) {
		struct hosts hs = { .n = 0 };
		GString *joined = g_string_new("");

		mime_url_scan(scans[i].in, strlen(scans[i].in), collect, &hs);
		for (size_t k = 0; k < hs.n; k++)
			g_string_append_printf(joined, "%s%s", k > 0 ? " " : "", hs.list[k]);
		if (strcmp(joined->str, scans[i].want) != 0)
			fail_msg("'%s': got hosts '%s', want '%s'", scans[i].in, joined->str,
				 scans[i].want);
		g_string_free(joined, TRUE);
	}
}

/*
 * UTF-8 repair takes ASCII eight octets at a time: an octet that is not
 * ASCII, or a NUL, must be seen at every position of such a block.
 */
static void test_utf8_fix_positions(void **state)
{
	static const struct {
		const char *name;
		const char *in;
		size_t n;
		const char *want;
	} odd[] = {
		{ "NUL", "\0", 1, "\xef\xbf\xbd" },
		{ "0x80 (windows-1252 euro)", "\x80", 1, "\xe2\x82\xac" },
		{ "0xff", "\xff", 1, "\xc3\xbf" },
		{ "valid two-octet", "\xc3\xa9", 2, "\xc3\xa9" },
		{ "valid four-octet", "\xf0\x9f\x98\x80", 4, "\xf0\x9f\x98\x80" },
		{ "0x7f", "\x7f", 1, "\x7f" },
	};
	const char *base = "abcdefghijklmnopqrstuvwxyz0123456789ABCD"; /* 40 octets */
	size_t blen = strlen(base);

	for (size_t k = 0; k < sizeof(odd) / sizeof(odd[0]); k++) {
		for (size_t p = 0; p <= blen; p++) {
			char in[64], want[64];
			size_t wl = strlen(odd[k].want);
			struct dynbuf out;

			memcpy(in, base, p);
			memcpy(in + p, odd[k].in, odd[k].n);
			memcpy(in + p + odd[k].n, base + p, blen - p);
			memcpy(want, base, p);
			memcpy(want + p, odd[k].want, wl);
			memcpy(want + p + wl, base + p, blen - p);
			dynbuf_init(&out, 1024);
			if (mime_utf8_fix(in, blen + odd[k].n, &out) != 0 ||
			    out.len != blen + wl || memcmp(out.data, want, out.len) != 0)
				fail_msg("%s at %zu: got %zu octets '%.*s', want %zu", odd[k].name, p,
					 out.len, (int)out.len, out.data ? out.data : "", blen + wl);
			if (mime_ascii_len(in, blen + odd[k].n) !=
			    (odd[k].in[0] > 0 && (unsigned char)odd[k].in[0] < 0x80 ? blen + 1 : p))
				fail_msg("%s at %zu: got ascii_len %zu", odd[k].name, p,
					 mime_ascii_len(in, blen + odd[k].n));
			dynbuf_free(&out);
		}
	}
}

/*
 * The header cut is set up only when the message has more lines than the
 * cut's bound (max_headers + 8 * max_parts), since every field needs a line:
 * a part with more fields than that is still cut; one with fewer is whole.
 */
static void test_header_cut_lines(void **state)
{
	struct mime_limits lim;
	struct mime_view *v;

	mime_limits_default(&lim);
	lim.max_headers = 1;
	lim.max_parts = 2;      /* cut after 1 + 8 * 2 = 17 fields */
	for (int n = 8; n <= 30; n += 22) {
		GString *g = g_string_new("Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n");

		for (int i = 0; i < n; i++)
			g_string_append_printf(g, "X-%d: y\r\n", i);
		g_string_append(g, "\r\nbody text\r\n--x--\r\n");
		v = parse_lim(g->str, g->len, &lim);
		if (n == 8 && (v->flags != 0 || strcmp(v->text, "body text") != 0))
			fail_msg("%d fields: got flags %#x text '%s', want 0 and the body", n,
				 v->flags, v->text);
		if (n == 30 && !(v->flags & MIME_F_LIMIT))
			fail_msg("%d fields: got flags %#x, want LIMIT (header cut)", n, v->flags);
		mime_view_free(v);
		g_string_free(g, TRUE);
	}
}

/* ---- attachments and nesting ----------------------------------------- */

static void test_attachments(void **state)
{
	struct mime_view *v = parse(
		"Content-Type: multipart/mixed; boundary=\"xx\"\r\n\r\npreamble\r\n--xx\r\n"
		"Content-Type: text/plain\r\n\r\nbody text\r\n--xx\r\n"
		"Content-Type: Application/PDF; name=\"ignored.pdf\"\r\n"
		"Content-Disposition: attachment; filename*0*=UTF-8''%C3%A9t; filename*1*=%C3%A9.pdf\r\n"
		"Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--xx\r\n"
		"Content-Type: image/gif; name=\"=?UTF-8?B?w6l0w6kuZ2lm?=\"\r\n\r\nGIF89a\r\n--xx\r\n"
		"Content-Type: text/plain\r\nContent-Disposition: attachment; filename=notes.txt\r\n\r\n"
		"secret notes\r\n--xx\r\n"
		"Content-Type: application/octet-stream\r\n\r\nnoname\r\n--xx--\r\n");
	static const struct {
		const char *name, *type;
		size_t size;
	} want[] = {
		{ "été.pdf", "application/pdf", 14 },
		{ "été.gif", "image/gif", 8 },
		{ "notes.txt", "text/plain", 14 },
		{ "", "application/octet-stream", 8 },
	};

	if (v->nattachments != 4)
		fail_msg("got %zu attachments, want 4", v->nattachments);
	for (size_t i = 0; i < 4; i++) {
		if (strcmp(v->attachments[i].name, want[i].name) != 0 ||
		    strcmp(v->attachments[i].type, want[i].type) != 0)
			fail_msg("attachment %zu: got '%s' %s, want '%s' %s", i, v->attachments[i].name,
				 v->attachments[i].type, want[i].name, want[i].type);
		/* Encoded size: the octets between the part's header and the next
		 * boundary (the CRLF before the boundary belongs to it). */
		if (v->attachments[i].size < want[i].size - 2 || v->attachments[i].size > want[i].size)
			fail_msg("attachment %zu: got size %zu, want about %zu", i, v->attachments[i].size,
				 want[i].size);
	}
	if (strstr(v->text, "body text") == NULL || strstr(v->text, "secret notes") != NULL)
		fail_msg("got text '%s', want the inline part only", v->text);
	if (v->nparts != 6)
		fail_msg("got nparts %d, want 6", v->nparts);
	mime_view_free(v);
}

static void test_nested_message(void **state)
{
	struct mime_view *v = parse(
		"Subject: outer\r\nContent-Type: multipart/mixed; boundary=o\r\n\r\n--o\r\n"
		"Content-Type: text/plain\r\n\r\nouter text\r\n--o\r\n"
		"Content-Type: message/rfc822\r\n\r\n"
		"Subject: inner\r\nContent-Type: multipart/mixed; boundary=i\r\n\r\n--i\r\n"
		"Content-Type: text/plain\r\n\r\ninner text\r\n--i\r\n"
		"Content-Type: application/zip; name=in.zip\r\n\r\nPK\r\n--i--\r\n"
		"--o--\r\n");

	if (strcmp(v->text, "outer text\ninner text") != 0)
		fail_msg("got text '%s', want 'outer text\\ninner text'", v->text);
	if (v->nattachments != 1 || strcmp(v->attachments[0].name, "in.zip") != 0)
		fail_msg("got %zu attachments, want in.zip", v->nattachments);
	if (strcmp(header(v, "Subject"), "outer") != 0)
		fail_msg("got Subject '%s', want the top-level one", header(v, "Subject"));
	if (v->depth != 3)
		fail_msg("got depth %d, want 3", v->depth);
	mime_view_free(v);
}

/* ---- bounds ---------------------------------------------------------- */

static char *nested(int levels, size_t *len)
{
	GString *g = g_string_new("Subject: deep\r\n");

	for (int i = 0; i < levels; i++)
		g_string_append_printf(g, "Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n",
				       i, i);
	g_string_append(g, "Content-Type: text/plain\r\n\r\nbottom\r\n");
	*len = g->len;
	return g_string_free(g, FALSE);
}

static void test_depth_limit(void **state)
{
	size_t len;
	char *msg = nested(1000, &len);
	struct mime_view *v = parse_lim(msg, len, NULL);

	if (!(v->flags & MIME_F_LIMIT) || v->depth > 20 || v->text_len != 0)
		fail_msg("depth 1000: got flags %#x depth %d text %zu, want LIMIT, depth <= 20, no text",
			 v->flags, v->depth, v->text_len);
	mime_view_free(v);
	g_free(msg);
	msg = nested(5, &len);
	v = parse_lim(msg, len, NULL);
	if ((v->flags & MIME_F_LIMIT) || strcmp(v->text, "bottom\r\n") != 0 || v->depth != 5)
		fail_msg("depth 5: got flags %#x depth %d text '%s', want no LIMIT, 5, bottom",
			 v->flags, v->depth, v->text);
	mime_view_free(v);
	g_free(msg);
}

static void test_parts_limit(void **state)
{
	GString *g = g_string_new("Content-Type: multipart/mixed; boundary=x\r\n\r\n");
	struct mime_view *v;

	for (int i = 0; i < 10000; i++)
		g_string_append_printf(g, "--x\r\nContent-Type: text/plain\r\n\r\np%d\r\n", i);
	g_string_append(g, "--x--\r\n");
	v = parse_lim(g->str, g->len, NULL);
	if (!(v->flags & MIME_F_LIMIT) || v->nparts != 500)
		fail_msg("10000 parts: got flags %#x nparts %d, want LIMIT and 500", v->flags, v->nparts);
	if (strncmp(v->text, "p0\np1\np2\n", 9) != 0)
		fail_msg("10000 parts: got text '%.20s', want the first parts", v->text);
	mime_view_free(v);
	g_string_free(g, TRUE);
}

/* Thousands of empty parts: cut before GMime builds them (gate). */
static void test_empty_parts_gate(void **state)
{
	GString *g = g_string_new("Content-Type: multipart/mixed; boundary=x\r\n\r\n");
	struct mime_view *v;

	for (int i = 0; i < 200000; i++)
		g_string_append(g, "--x\r\n\r\n");
	v = parse_lim(g->str, g->len, NULL);
	if (!(v->flags & MIME_F_LIMIT) || v->nparts > 500 || v->parse_us > 500000)
		fail_msg("empty parts: got flags %#x nparts %d in %lld us, want LIMIT, <= 500, fast",
			 v->flags, v->nparts, (long long)v->parse_us);
	mime_view_free(v);
	g_string_free(g, TRUE);
}

/* Millions of header fields in a part: GMime's input is cut. */
static void test_header_bomb(void **state)
{
	GString *g = g_string_new("Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n");
	struct mime_view *v;

	while (g->len < 4 * 1024 * 1024)
		g_string_append(g, "X: y\r\n");
	g_string_append(g, "\r\nbody\r\n--x--\r\n");
	v = parse_lim(g->str, g->len, NULL);
	if (!(v->flags & MIME_F_LIMIT) || v->parse_us > 500000)
		fail_msg("header bomb: got flags %#x in %lld us, want LIMIT, fast", v->flags,
			 (long long)v->parse_us);
	mime_view_free(v);
	g_string_free(g, TRUE);
}

static void test_text_limits(void **state)
{
	struct mime_limits lim;
	GString *g = g_string_new("Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n\r\n");
	struct mime_view *v;

	for (int i = 0; i < 300; i++)
		g_string_append(g, "\xc3\xa9");   /* 600 octets of é */
	g_string_append(g, "\r\n--x\r\n\r\nsecond part\r\n--x--\r\n");
	mime_limits_default(&lim);
	lim.max_part_text = 101;
	lim.max_text = 1000;
	v = parse_lim(g->str, g->len, &lim);
	if (!(v->flags & MIME_F_LIMIT) || strncmp(v->text, "éé", 4) != 0 ||
	    strstr(v->text, "\nsecond part") == NULL || strchr(v->text, '\n') - v->text != 100)
		fail_msg("part text: got flags %#x text_len %zu, want LIMIT, 100 octets then part 2",
			 v->flags, v->text_len);
	mime_view_free(v);
	lim.max_part_text = 1 << 20;
	lim.max_text = 51;
	v = parse_lim(g->str, g->len, &lim);
	if (!(v->flags & MIME_F_LIMIT) || v->text_len != 50)
		fail_msg("message text: got flags %#x text_len %zu, want LIMIT and 50", v->flags,
			 v->text_len);
	mime_view_free(v);
	g_string_free(g, TRUE);
}

static void test_header_and_url_limits(void **state)
{
	struct mime_limits lim;
	GString *g = g_string_new("");
	struct mime_view *v;

	for (int i = 0; i < 10; i++)
		g_string_append_printf(g, "X-N: %d\r\n", i);
	g_string_append(g, "\r\n");
	for (int i = 0; i < 10; i++)
		g_string_append_printf(g, "http://h%d.example/ ", i);
	mime_limits_default(&lim);
	lim.max_headers = 5;
	lim.max_urls = 3;
	v = parse_lim(g->str, g->len, &lim);
	if (!(v->flags & MIME_F_LIMIT) || v->nheaders != 5 || v->nurl_hosts != 3)
		fail_msg("got flags %#x nheaders %zu nurl_hosts %zu, want LIMIT, 5, 3", v->flags,
			 v->nheaders, v->nurl_hosts);
	mime_view_free(v);
	g_string_free(g, TRUE);
}

/* ---- raw body, header iteration --------------------------------------- */

static void test_raw_body(void **state)
{
	static const struct {
		const char *name;
		const char *in;
		size_t want_off;   /* raw_body - in */
	} rb[] = {
		{ "CRLF", "Subject: x\r\n\r\nbody\r\n", 14 },
		{ "bare LF", "Subject: x\n\nbody\n", 12 },
		{ "no separator", "Subject: x\r\n", 12 },
		{ "empty first line", "\r\nbody", 2 },
		{ "folded header", "A: b\r\n c\r\n\r\nz", 12 },
		{ "empty", "", 0 },
	};

	for (size_t i = 0; i < sizeof(rb) / sizeof(rb[0]); i++) {
		size_t len = strlen(rb[i].in);
		struct mime_view *v = parse_lim(rb[i].in, len, NULL);

		if (v->raw_body != rb[i].in + rb[i].want_off ||
		    v->raw_body_len != len - rb[i].want_off)
			fail_msg("%s: got raw_body at %td len %zu, want %zu len %zu", rb[i].name,
				 v->raw_body - rb[i].in, v->raw_body_len, rb[i].want_off,
				 len - rb[i].want_off);
		mime_view_free(v);
	}
}

static void test_header_next(void **state)
{
	struct mime_view *v = parse("Received: one\r\nSubject: s\r\nRECEIVED: two\r\n"
				    "received: three\r\n\r\n");
	static const char *const want[] = { "one", "two", "three" };
	size_t pos = 0;
	const char *got;

	for (size_t i = 0; i < 3; i++) {
		got = mime_header_next(v, "Received", &pos);
		if (got == NULL || strcmp(got, want[i]) != 0)
			fail_msg("Received %zu: got '%s', want '%s'", i, got ? got : "(none)", want[i]);
	}
	if (mime_header_next(v, "Received", &pos) != NULL || mime_header_next(v, "Received", &pos))
		fail_msg("got a fourth Received, want NULL (twice)");
	pos = 0;
	if (mime_header_next(v, "X-None", &pos) != NULL)
		fail_msg("X-None: got a value, want NULL");
	if (v->nheaders != 4 || strcmp(v->headers[2].name, "RECEIVED") != 0)
		fail_msg("got %zu headers, third '%s', want 4 and the name as sent", v->nheaders,
			 v->nheaders > 2 ? v->headers[2].name : "");
	mime_view_free(v);
}

/* ---- threads --------------------------------------------------------- */

static const char *const thread_msgs[] = {
	"Subject: =?koi8-r?B?8NLJ18XU?=\r\nContent-Type: text/plain; charset=shift_jis\r\n\r\n"
	"\x93\xfa\x96\x7b http://a.example/\r\n",
	"Content-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\n"
	"Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n"
	"\r\ncaf=E9 www.b.example\r\n--b\r\nContent-Type: text/html; charset=koi8-r\r\n\r\n"
	"<p>\xf0\xd2\xc9\xd7\xc5\xd4 <a href=\"http://c.example\">x</a></p>\r\n--b--\r\n",
	"Subject: x\r\nContent-Type: multipart/mixed; boundary=q\r\n\r\n--q\r\n"
	"Content-Type: message/rfc822\r\n\r\nSubject: in\r\nContent-Type: text/plain; charset=big5\r\n"
	"\r\n\xa4\xa4\xa4\xe5\r\n--q\r\nContent-Type: application/zip; name=\"=?UTF-8?B?w6kuemlw?=\"\r\n"
	"\r\nPK\r\n--q--\r\n",
};

struct digest {
	char text[256];
	size_t nheaders, nattachments, nurls;
};

static void digest(const char *msg, struct digest *d)
{
	struct mime_view *v = NULL;
	char err[64];

	memset(d, 0, sizeof(*d));
	if (mime_parse(msg, strlen(msg), NULL, &v, err, sizeof(err)) != 0)
		return;
	snprintf(d->text, sizeof(d->text), "%s", v->text);
	d->nheaders = v->nheaders;
	d->nattachments = v->nattachments;
	d->nurls = v->nurl_hosts;
	mime_view_free(v);
}

static struct digest thread_want[3];

static void *thread_run(void *arg)
{
	long bad = 0;

	for (int r = 0; r < 300; r++) {
		for (size_t i = 0; i < 3; i++) {
			struct digest d;

			digest(thread_msgs[i], &d);
			bad += memcmp(&d, &thread_want[i], sizeof(d)) != 0;
		}
	}
	return (void *)bad;
}

/* Several threads at once (charset conversions, RFC 2047, nesting) get
 * what one thread gets: no GMime state is shared between walks. */
static void test_threads(void **state)
{
	pthread_t t[4];

	for (size_t i = 0; i < 3; i++) {
		digest(thread_msgs[i], &thread_want[i]);
		if (thread_want[i].text[0] == '\0')
			fail_msg("message %zu: got no text, want some", i);
	}
	for (int i = 0; i < 4; i++)
		pthread_create(&t[i], NULL, thread_run, NULL);
	for (int i = 0; i < 4; i++) {
		void *bad;

		pthread_join(t[i], &bad);
		if (bad != NULL)
			fail_msg("thread %d: got %ld views unlike the single-thread ones, want 0", i,
				 (long)bad);
	}
}

/* ---- the fast path against GMime's walk ------------------------------- */

/* Multipart messages the fast path took (corpus report). */
static size_t fast_multipart_taken;

/*
 * Parse msg with the fast path allowed and with GMime only; the views
 * must be the same.  Returns whether the fast path took the message.
 */
static int same_both_ways(const char *what, const char *msg, size_t len,
			  const struct mime_limits *base)
{
	struct mime_limits lim, slow;
	struct mime_view *a, *b;
	char diff[600];
	int fast;

	if (base != NULL)
		lim = *base;
	else
		mime_limits_default(&lim);
	slow = lim;
	slow.gmime_only = 1;
	a = parse_lim(msg, len, &lim);
	b = parse_lim(msg, len, &slow);
	if (b->fast)
		fail_msg("%s: got the fast path with gmime_only, want GMime", what);
	if (mime_view_cmp(a, b, diff, sizeof(diff)) != 0)
		fail_msg("%s (fast=%d): views differ: %s", what, a->fast, diff);
	fast = a->fast;
	fast_multipart_taken += a->fast && a->nparts > 1;
	mime_view_free(a);
	mime_view_free(b);
	return fast;
}

static const struct {
	const char *name;
	const char *msg;
	int fast;       /* want the fast path to take it */
} fast_cases[] = {
	/* Taken: the common single text part. */
	{ "no content-type", "From: a@b\r\nSubject: hi\r\n\r\nhello\r\n", 1 },
	{ "lf only", "From: a@b\nSubject: hi\n\nhello\n", 1 },
	{ "mbox line", "From a@b Mon Jan  1 00:00:00 2024\nSubject: x\n\nbody\n", 1 },
	{ "empty body", "Subject: x\r\n\r\n", 1 },
	{ "plain qp latin1",
	  "Subject: x\r\nContent-Type: text/plain; charset=iso-8859-1\r\n"
	  "Content-Transfer-Encoding: quoted-printable\r\n\r\ncaf=E9 au lait=\r\n soft\r\n", 1 },
	{ "html base64",
	  "Subject: x\r\nContent-Type: text/html; charset=\"utf-8\"\r\n"
	  "Content-Transfer-Encoding: base64\r\n\r\n"
	  "PGh0bWw+PGEgaHJlZj0iaHR0cDovL0V4YW1wbGUuQ09NL3giPmNsaWNrPC9hPiAmYW1wOyBz\r\n"
	  "ZWUgd3d3LmZvby5vcmc8L2h0bWw+\r\n", 1 },
	{ "charset on a folded line",
	  "Subject: x\r\nContent-Type: text/plain;\r\n\tcharset=\"us-ascii\"\r\n\r\nhi\r\n", 1 },
	{ "rfc 2047 subject",
	  "Subject: =?utf-8?q?caf=C3=A9?= =?iso-8859-1?b?6Q==?=\r\n\r\nx\r\n", 1 },
	{ "invalid rfc 2047", "Subject: =?utf-8?q?a b?=\r\n\r\nx\r\n", 1 },
	{ "raw 8-bit header", "Subject: caf\xe9\r\nContent-Type: text/plain; charset=koi8-r\r\n"
	  "\r\nx\r\n", 1 },
	/* Other charsets go through GMime's charset filter on the same octets. */
	{ "koi8-r body", "Content-Type: text/plain; charset=koi8-r\r\n\r\n\xf0\xd2\xc9\xd7\xc5\xd4\r\n",
	  1 },
	{ "iso-8859-15 quoted-printable", "Content-Type: text/plain; charset=iso-8859-15\r\n"
	  "Content-Transfer-Encoding: quoted-printable\r\n\r\n=A4 caf=E9 www.a.example\r\n", 1 },
	{ "shift_jis cut sequence", "Content-Type: text/plain; charset=shift_jis\r\n\r\n\x93\xfa\x96", 1 },
	{ "unknown charset", "Content-Type: text/html; charset=x-nonsense\r\n\r\n<p>a\xffz</p>", 1 },
	{ "charset default", "Content-Type: text/html; charset=default\r\n\r\n<b>caf\xe9</b>", 1 },
	{ "big5 html in multipart/related",
	  "Content-Type: multipart/related; boundary=r\r\n\r\n--r\r\n"
	  "Content-Type: multipart/alternative; boundary=a\r\n\r\n--a\r\n"
	  "Content-Type: text/html; charset=big5\r\nContent-Transfer-Encoding: base64\r\n\r\n"
	  "PGh0bWw+pHCo5zwvaHRtbD4=\r\n--a--\r\n--r--\r\n", 1 },
	{ "utf-16 base64", "Content-Type: text/plain; charset=utf-16\r\n"
	  "Content-Transfer-Encoding: base64\r\n\r\n//5oAGkA\r\n", 1 },
	{ "raw utf-8 header", "Subject: caf\xc3\xa9\r\n\r\nx\r\n", 1 },
	{ "folded subject", "Subject: a\r\n  b\r\n\tc \r\n\r\nx\r\n", 1 },
	{ "conflicting received",
	  "Received: from a\r\nReceived: from b\r\nSubject: x\r\n\r\nx\r\n", 1 },
	{ "duplicate subject same value", "Subject: x\r\nsubject: x\r\n\r\nx\r\n", 1 },
	{ "conflicting subject", "Subject: x\r\nSubject: y\r\n\r\nx\r\n", 1 },
	{ "conflicting content-transfer-encoding",
	  "Content-Transfer-Encoding: 7bit\r\nContent-Transfer-Encoding: 8bit\r\n\r\nx\r\n", 0 },
	{ "blank before colon", "Subject : x\r\nX-A\t: y\r\n\r\nx\r\n", 1 },
	{ "nul and 8-bit in body", "Subject: x\r\n\r\na\x00b\xff\xe9t\xc3\xa9\r\n", 1 },
	{ "unknown encoding", "Content-Transfer-Encoding: x-foo\r\n\r\nx\r\n", 1 },
	{ "bad base64", "Content-Transfer-Encoding: base64\r\n\r\n!!a=b===c\r\n", 1 },
	/* Taken: a multipart of text parts and attachments, cut where GMime's parser cuts. */
	{ "multipart",
	  "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\nx\r\n--b--\r\n", 1 },
	{ "multipart preface and epilogue",
	  "Content-Type: multipart/alternative; boundary=\"b1\"\r\n\r\n"
	  "This is a multi-part message in MIME format.\r\n--b1\r\n"
	  "Content-Type: text/plain; charset=us-ascii\r\n\r\nplain http://a.example/\r\n\r\n"
	  "--b1\r\nContent-Type: text/html\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
	  "<p>ht=\r\nml <a href=3D\"http://b.example/\">x</a></p>\r\n--b1--\r\n"
	  "epilogue\r\n--b1\r\nContent-Type: text/plain\r\n\r\nnot a part\r\n", 1 },
	{ "multipart lf",
	  "Content-Type: multipart/alternative; boundary=b1\n\n--b1\nContent-Type: text/plain\n\n"
	  "one\n\n--b1\nContent-Type: text/html\n\n<b>two</b>\n--b1--\n", 1 },
	{ "multipart lf text crlf boundaries",
	  "Content-Type: multipart/mixed; boundary=b\n\n--b\n\nabc\n--b\r\n\nxyz\r\n--b--\n", 1 },
	{ "multipart crlf text lf boundaries",
	  "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\nabc\r\n--b\n\r\nx\r\n--b--\n", 1 },
	{ "multipart cut below empty",
	  "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\n\n--b\r\n\r\n--b--\r\n", 1 },
	{ "multipart no end boundary",
	  "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\nfirst\r\n--b\r\n\r\nlast\r\n", 1 },
	{ "multipart no end boundary, no final line end",
	  "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\nlast", 1 },
	{ "multipart end boundary at the end without line end",
	  "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\nx\r\n--b--", 1 },
	{ "multipart boundaries with trailing blanks",
	  "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b \t\r\n\r\nx\r\n--b\t\r\r\n\r\ny\r\n"
	  "--b--  \r\n", 1 },
	{ "multipart boundary-like lines",
	  "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\n--bx\r\n--b--x\r\n-- b\r\n"
	  "--b\r\n\r\ny\r\n--b--\r\n", 1 },
	{ "multipart boundary ending in dashes",
	  "Content-Type: multipart/mixed; boundary=\"b--\"\r\n\r\n--b--\r\n\r\nx\r\n--b--\r\n\r\ny\r\n"
	  "--b----\r\n", 1 },
	{ "multipart part without header",
	  "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\n\r\n--b\r\n\r\n--b--\r\n", 1 },
	{ "multipart inline text parts",
	  "Content-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\n"
	  "Content-Type: text/plain; charset=\"iso-8859-1\"\r\nContent-Disposition: inline\r\n"
	  "Content-Transfer-Encoding: 7bit\r\n\r\ncaf\xe9\r\n--b\r\nContent-Type: text/html\r\n"
	  "Content-Disposition: inline\r\n\r\n<p>caf&eacute;</p>\r\n--b--\r\n", 1 },
	{ "multipart attachments",
	  "Content-Type: multipart/mixed; boundary=\"=_x\"\r\n\r\n--=_x\r\n"
	  "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n"
	  "aMOpbGxv\r\n--=_x\r\nContent-Type: application/octet-stream; name=\"a.bin\"\r\n"
	  "Content-Transfer-Encoding: base64\r\nContent-Disposition: attachment;\r\n"
	  "\tfilename=\"report.pdf\"\r\n\r\nAAEC\r\n--=_x\r\n"
	  "Content-Type: text/plain; name=notes.txt\r\nContent-Disposition: attachment\r\n\r\n"
	  "not text\r\n--=_x\r\nContent-Type: IMAGE/GIF\r\n\r\nGIF89a\r\n"
	  "--=_x\r\nContent-Type: application/pkcs7-mime\r\n\r\nx\r\n--=_x--\r\n", 1 },
	{ "multipart signed",
	  "Content-Type: multipart/signed; micalg=pgp-sha1; protocol=\"application/pgp-signature\";\r\n"
	  "\tboundary=\"sig\"\r\n\r\n--sig\r\nContent-Type: text/plain\r\n\r\nsigned text\r\n"
	  "--sig\r\nContent-Type: application/pgp-signature; name=signature.asc\r\n\r\n"
	  "-----BEGIN PGP SIGNATURE-----\r\nabc\r\n-----END PGP SIGNATURE-----\r\n--sig--\r\n", 1 },
	{ "multipart conflicting part fields",
	  "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-ID: <a@b>\r\n"
	  "Content-ID: <c@d>\r\nX-A: 1\r\nX-A: 2\r\n\r\nx\r\n--b--\r\n", 1 },
	{ "multipart nested",
	  "Content-Type: multipart/related; boundary=o\r\n\r\n--o\r\n"
	  "Content-Type: multipart/alternative; boundary=i\r\n\r\ninner preface\r\n--i\r\n\r\n"
	  "plain\r\n--i\r\nContent-Type: text/html\r\n\r\n<b>html</b>\r\n--i--\r\n"
	  "inner epilogue --i\r\n--o\r\nContent-Type: image/png; name=a.png\r\n"
	  "Content-Transfer-Encoding: base64\r\nContent-ID: <a@b>\r\n\r\niVBORw0K\r\n--o--\r\n", 1 },
	{ "multipart nested lf, three levels",
	  "Content-Type: multipart/mixed; boundary=a\n\n--a\nContent-Type: multipart/related; "
	  "boundary=b\n\n--b\nContent-Type: multipart/alternative; boundary=c\n\n--c\n\none\n"
	  "--c--\n--b\nContent-Type: text/html\n\n<p>two</p>\n--b--\n\n--a\n\nthree\n--a--\n", 1 },
	{ "multipart nested in an unterminated outer",
	  "Content-Type: multipart/mixed; boundary=o\r\n\r\n--o\r\n"
	  "Content-Type: multipart/alternative; boundary=i\r\n\r\n--i\r\n\r\nx\r\n--i--\r\n", 1 },
	{ "multipart nested, inner boundary the outer one and more",
	  "Content-Type: multipart/mixed; boundary=\"=_x\"\r\n\r\n--=_x\r\n"
	  "Content-Type: multipart/alternative; boundary=\"=_xAA\"\r\n\r\n--=_xAA\r\n\r\nx\r\n"
	  "--=_xAA--\r\n\r\n--=_x\r\nContent-Type: application/zip\r\n\r\nPK\r\n--=_x--\r\n", 1 },
	{ "multipart nested, inner boundary a prefix of the outer",
	  "Content-Type: multipart/related; boundary=ab\r\n\r\n--ab\r\n"
	  "Content-Type: multipart/alternative; boundary=a\r\n\r\n--a\r\n\r\nx\r\n--a--\r\n"
	  "--ab--\r\n", 1 },
	{ "multipart boundaries with a space and odd characters",
	  "Content-Type: multipart/mixed; boundary=\"= Multipart Boundary 1\"\r\n\r\n"
	  "--= Multipart Boundary 1\r\n\r\nx\r\n--= Multipart Boundary 1 \r\n\r\ny\r\n"
	  "--= Multipart Boundary 1--\r\n", 1 },
	{ "multipart boundary of hashes",
	  "Content-Type: multipart/alternative; boundary=\"####\"\r\n\r\n--####\r\n\r\nx\r\n"
	  "--#####\r\n--####--\r\n", 1 },
	{ "multipart with a disposition",
	  "Content-Type: multipart/signed; boundary=s; protocol=\"application/pgp-signature\"\r\n"
	  "Content-Disposition: inline\r\n\r\n--s\r\n\r\nx\r\n--s\r\n"
	  "Content-Type: application/pgp-signature\r\n\r\nsig\r\n--s--\r\n", 1 },
	{ "multipart with a bad disposition",
	  "Content-Type: multipart/mixed; boundary=s\r\nContent-Disposition: ;;=\r\n\r\n"
	  "--s\r\nContent-Disposition: \"\r\n\r\nx\r\n--s--\r\n", 1 },
	{ "multipart bad part type",
	  "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text\r\n\r\nx\r\n"
	  "--b--\r\n", 1 },
	/* Left to GMime. */
	{ "multipart boundary inside a line",
	  "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\ntext --b\r\n--b--\r\n", 0 },
	{ "multipart long boundary line",
	  "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\nx\r\n--b"
	  "                                                                      "
	  "                                                  \r\n\r\ny\r\n--b--\r\n", 0 },
	{ "multipart nested without inner end boundary",
	  "Content-Type: multipart/related; boundary=o\r\n\r\n--o\r\n"
	  "Content-Type: multipart/alternative; boundary=i\r\n\r\n--i\r\n\r\nx\r\n--o--\r\n", 0 },
	{ "multipart nested, inner boundary the outer one and a blank",
	  "Content-Type: multipart/related; boundary=a\r\n\r\n--a\r\n"
	  "Content-Type: multipart/alternative; boundary=\"a \"\r\n\r\n--a \r\n\r\nx\r\n--a --\r\n"
	  "--a--\r\n", 0 },
	{ "multipart nested, outer end boundary is the inner one",
	  "Content-Type: multipart/related; boundary=\"a--\"\r\n\r\n--a--\r\n"
	  "Content-Type: multipart/alternative; boundary=a\r\n\r\n--a\r\n\r\nx\r\n--a--\r\n"
	  "--a----\r\n", 0 },
	{ "multipart nested, outer boundary inside an inner line",
	  "Content-Type: multipart/related; boundary=o\r\n\r\n--o\r\n"
	  "Content-Type: multipart/alternative; boundary=i\r\n\r\n--i\r\n\r\nx --o\r\n--i--\r\n"
	  "--o--\r\n", 0 },
	{ "multipart message child",
	  "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: message/rfc822\r\n"
	  "\r\nSubject: inner\r\n\r\nx\r\n--b--\r\n", 0 },
	{ "multipart without boundary", "Content-Type: multipart/mixed\r\n\r\n--b\r\n\r\nx\r\n", 0 },
	{ "multipart boundary with a tab",
	  "Content-Type: multipart/mixed; boundary=\"a\tb\"\r\n\r\n--a\tb\r\n\r\nx\r\n--a\tb--\r\n", 0 },
	{ "single part with a disposition and a boundary",
	  "Content-Type: text/plain; boundary=b\r\nContent-Disposition: inline\r\n\r\n"
	  "--b\r\n\r\nx\r\n", 1 },
	/* A single text part's disposition: parsed with its warnings; inline or
	 * any other stays text, attachment is left to GMime. */
	{ "single part inline", "Subject: s\r\nContent-Type: text/plain; charset=us-ascii\r\n"
	  "Content-Disposition: inline\r\n\r\nhello www.a.example\r\n", 1 },
	{ "single part inline with a filename",
	  "Content-Disposition: inline; filename=\"a.txt\"\r\n\r\nhello\r\n", 1 },
	{ "single part odd disposition", "Content-Disposition: x-whatever\r\n\r\nhello\r\n", 1 },
	{ "single part bad disposition", "Content-Disposition: ;;=\r\n\r\nhello\r\n", 1 },
	{ "single part ATTACHMENT", "Content-Type: text/html\r\n"
	  "Content-Disposition: ATTACHMENT; filename=a.html\r\n\r\n<p>x</p>\r\n", 0 },
	{ "multipart end boundary first",
	  "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b--\r\n--b\r\n\r\nx\r\n", 0 },
	{ "multipart no boundary line", "Content-Type: multipart/mixed; boundary=b\r\n\r\nx\r\n", 0 },
	{ "multipart part header into boundary",
	  "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n"
	  "--b--\r\n", 0 },
	{ "multipart boundary at the end without line end",
	  "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\nx\r\n--b", 0 },
	{ "multipart encrypted",
	  "Content-Type: multipart/encrypted; boundary=b\r\n\r\n--b\r\n\r\nx\r\n--b--\r\n", 0 },
	{ "multipart koi8-r child",
	  "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
	  "Content-Type: text/plain; charset=koi8-r\r\n\r\n\xf0\xd2\r\n--b--\r\n", 1 },
	{ "multipart 8-bit part header",
	  "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nX-A: caf\xc3\xa9\r\n\r\nx\r\n"
	  "--b--\r\n", 0 },
	{ "multipart invalid part field",
	  "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nnot a field\r\n\r\nx\r\n"
	  "--b--\r\n", 0 },
	{ "multipart uuencoded child",
	  "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
	  "Content-Transfer-Encoding: x-uuencode\r\n\r\nbegin 644 a\r\n--b--\r\n", 0 },
	{ "uuencode", "Content-Transfer-Encoding: x-uuencode\r\n\r\nbegin 644 a\r\n", 0 },
	{ "disposition", "Content-Disposition: attachment\r\n\r\nx\r\n", 0 },
	{ "attachment type", "Content-Type: application/pdf\r\n\r\nx\r\n", 0 },
	{ "two content-types",
	  "Content-Type: text/plain\r\nContent-Type: text/html\r\n\r\nx\r\n", 0 },
	{ "comment in type", "Content-Type: (c) text/plain\r\n\r\nx\r\n", 0 },
	{ "bare cr", "Subject: a\rb\r\n\r\nx\r\n", 0 },
	{ "no empty line", "Subject: x\r\nFrom: y\r\n", 0 },
	{ "first line no field", "hello world\r\n\r\nx\r\n", 0 },
	{ "continuation first", " Subject: x\r\n\r\nx\r\n", 0 },
	{ "invalid name later", "Subject: x\r\nbad name: y\r\n\r\nx\r\n", 0 },
	{ "no header", "\r\nbody only\r\n", 0 },
	{ "encoded content-type", "Content-Type: =?us-ascii?q?text/html?=\r\n\r\nx\r\n", 0 },
};

static void test_fast_path(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(fast_cases) / sizeof(fast_cases[0]); i++) {
		size_t len = strlen(fast_cases[i].msg);
		int fast;

		/* "nul and 8-bit in body" has a NUL: its length is its literal's. */
		if (strcmp(fast_cases[i].name, "nul and 8-bit in body") == 0)
			len = sizeof("Subject: x\r\n\r\na\x00b\xff\xe9t\xc3\xa9\r\n") - 1;
		fast = same_both_ways(fast_cases[i].name, fast_cases[i].msg, len, NULL);
		if (fast != fast_cases[i].fast)
			fail_msg("%s: got fast=%d, want %d", fast_cases[i].name, fast,
				 fast_cases[i].fast);
	}
}

/* Small limits: the fast path must cut where GMime's walk cuts. */
static void test_fast_path_limits(void **state)
{
	static const char msg[] =
		"Subject: x\r\nTo: a\r\nCc: b\r\n\r\n"
		"see http://a.example/ http://b.example/ http://c.example/ and more text\r\n";
	struct mime_limits lim;

	(void)state;
	mime_limits_default(&lim);
	lim.max_headers = 2;
	if (same_both_ways("max_headers", msg, sizeof(msg) - 1, &lim))
		fail_msg("max_headers: got the fast path past the header bound, want GMime");
	mime_limits_default(&lim);
	lim.max_urls = 2;
	lim.max_text = 20;
	if (!same_both_ways("max_urls, max_text", msg, sizeof(msg) - 1, &lim))
		fail_msg("max_urls, max_text: got GMime, want the fast path");
	mime_limits_default(&lim);
	lim.max_part_text = 16;
	if (same_both_ways("max_part_text", msg, sizeof(msg) - 1, &lim))
		fail_msg("max_part_text: got the fast path for a body past it, want GMime");
	mime_limits_default(&lim);
	lim.keep_parts = 1;
	same_both_ways("keep_parts", msg, sizeof(msg) - 1, &lim);
}

/*
 * Long lines around GMime's 4 KiB read buffer: GMime reads a line longer
 * than its look-ahead in pieces and checks each piece's start for a
 * boundary (with this header, "--b" after 4018 octets of a line starts a
 * part for GMime).  Long lines are taken and cut alike; a boundary string
 * inside a line, wherever the pieces fall, is left to GMime.
 */
static void test_fast_path_long_lines(void **state)
{
	(void)state;
	for (size_t pad = 3990; pad < 4050; pad++) {
		for (int inside = 0; inside < 2; inside++) {
			GString *m = g_string_new("Content-Type: multipart/mixed; boundary=b\r\n\r\n"
						  "--b\r\nContent-Type: text/plain\r\n\r\n");
			int fast;

			for (size_t i = 0; i < pad; i++)
				g_string_append_c(m, 'a');
			if (inside)
				g_string_append(m, "--b\r\n");
			g_string_append(m, "\r\n--b\r\n\r\n");
			for (size_t i = 0; i < pad * 2; i++)
				g_string_append_c(m, i % 97 == 96 ? '\n' : 'z');
			g_string_append(m, "\n--b--\r\n");
			fast = same_both_ways("long lines", m->str, m->len, NULL);
			if (fast != !inside)
				fail_msg("long lines (pad %zu, boundary inside %d): got fast=%d, want %d",
					 pad, inside, fast, !inside);
			g_string_free(m, TRUE);
		}
	}
}

/* Small limits on a multipart: the fast path reads it within them or
 * leaves it to GMime, never a different view. */
static void test_fast_path_multipart_limits(void **state)
{
	static const char msg[] =
		"Subject: x\r\nContent-Type: multipart/alternative; boundary=b\r\n\r\n"
		"--b\r\nContent-Type: text/plain\r\n\r\nplain text http://a.example/ here\r\n"
		"--b\r\nContent-Type: text/html\r\n\r\n<p>html <a href=\"http://b.example/\">x</a>"
		"</p>\r\n--b\r\nContent-Type: text/plain\r\n\r\nmore text\r\n--b--\r\n";
	static const char nested[] =
		"Content-Type: multipart/mixed; boundary=o\r\n\r\n--o\r\n"
		"Content-Type: multipart/alternative; boundary=i\r\n\r\n--i\r\n\r\nplain\r\n"
		"--i\r\nContent-Type: text/html\r\n\r\n<b>html</b>\r\n--i--\r\n--o\r\n"
		"Content-Type: image/gif\r\n\r\nGIF89a\r\n--o--\r\n";
	struct mime_limits lim;

	(void)state;
	mime_limits_default(&lim);
	lim.max_parts = 3;
	if (same_both_ways("multipart max_parts", msg, sizeof(msg) - 1, &lim))
		fail_msg("multipart max_parts: got the fast path past the part bound, want GMime");
	lim.max_parts = 4;
	if (!same_both_ways("multipart max_parts 4", msg, sizeof(msg) - 1, &lim))
		fail_msg("multipart max_parts 4: got GMime, want the fast path");
	mime_limits_default(&lim);
	lim.max_depth = 0;
	if (same_both_ways("multipart max_depth", msg, sizeof(msg) - 1, &lim))
		fail_msg("multipart max_depth: got the fast path past the depth bound, want GMime");
	if (same_both_ways("multipart nested max_depth", nested, sizeof(nested) - 1, &lim))
		fail_msg("multipart nested max_depth 0: got the fast path, want GMime");
	lim.max_depth = 1;
	if (same_both_ways("multipart nested max_depth 1", nested, sizeof(nested) - 1, &lim))
		fail_msg("multipart nested max_depth 1: got the fast path, want GMime");
	lim.max_depth = 2;
	if (!same_both_ways("multipart nested max_depth 2", nested, sizeof(nested) - 1, &lim))
		fail_msg("multipart nested max_depth 2: got GMime, want the fast path");
	mime_limits_default(&lim);
	lim.max_parts = 4;
	if (same_both_ways("multipart nested max_parts", nested, sizeof(nested) - 1, &lim))
		fail_msg("multipart nested max_parts 4: got the fast path for 5 parts, want GMime");
	mime_limits_default(&lim);
	lim.max_part_text = 20;
	if (same_both_ways("multipart max_part_text", msg, sizeof(msg) - 1, &lim))
		fail_msg("multipart max_part_text: got the fast path for a part past it, want GMime");
	mime_limits_default(&lim);
	lim.max_text = 30;
	lim.max_urls = 1;
	lim.keep_parts = 1;
	if (!same_both_ways("multipart max_text, max_urls, keep_parts", msg, sizeof(msg) - 1, &lim))
		fail_msg("multipart max_text: got GMime, want the fast path");
}

/* ---- the SpamAssassin corpus ----------------------------------------- */

/* scripts/corpus.sh of this source tree (found from this file's path). */
static int corpus_dir(char *out, size_t outsz)
{
	const char *self = __FILE__;
	const char *tail = strstr(self, "tests/unit/test_mime.c");
	char cmd[1200];
	FILE *p;
	size_t n;

	if (tail == NULL)
		return -1;
	snprintf(cmd, sizeof(cmd), "'%.*sscripts/corpus.sh' 2>/dev/null", (int)(tail - self), self);
	p = popen(cmd, "r");
	if (p == NULL)
		return -1;
	n = fread(out, 1, outsz - 1, p);
	if (pclose(p) != 0 || n == 0)
		return -1;
	while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == '\r'))
		n--;
	out[n] = '\0';
	return 0;
}

static void test_corpus(void **state)
{
	static const char *const groups[] = { "easy-ham-1", "easy-ham-2", "hard-ham-1", "spam-1",
					      "spam-2" };
	char dir[1024];
	size_t total = 0, with_text = 0, nfast = 0, nfast_crlf = 0, nmulti = 0;

	fast_multipart_taken = 0;
	if (getenv("MOAT_SKIP_CORPUS") != NULL || corpus_dir(dir, sizeof(dir)) != 0) {
		print_message("corpus not available (scripts/corpus.sh), skipped\n");
		skip();
	}
	for (size_t g = 0; g < sizeof(groups) / sizeof(groups[0]); g++) {
		char path[1400];
		DIR *d;
		struct dirent *e;

		snprintf(path, sizeof(path), "%s/%s", dir, groups[g]);
		d = opendir(path);
		if (d == NULL)
			fail_msg("corpus: got no directory %s, want it", path);
		for (;;) {
			char file[1800];
			gchar *buf;
			gsize len;
			struct mime_view *v;
			size_t n;

			e = readdir(d);
			if (e == NULL)
				break;
			n = strlen(e->d_name);
			if (n < 4 || strcmp(e->d_name + n - 4, ".txt") != 0)
				continue;
			snprintf(file, sizeof(file), "%s/%s", path, e->d_name);
			if (!g_file_get_contents(file, &buf, &len, NULL))
				fail_msg("corpus: cannot read %s", file);
			v = parse_lim(buf, len, NULL);
			if (v->nheaders == 0)
				fail_msg("corpus %s: got no header, want some", file);
			total++;
			with_text += v->text_len > 0;
			nmulti += v->nparts > 1;
			mime_view_free(v);
			/* The fast path and GMime agree, as stored and as SMTP brings
			 * it (no mbox line, CRLF). */
			nfast += same_both_ways(file, buf, len, NULL);
			{
				GString *crlf = g_string_sized_new(len + len / 16);
				const char *p = buf, *end = buf + len;
				const char *nl = len > 5 && memcmp(buf, "From ", 5) == 0 ?
						 memchr(buf, '\n', len) : NULL;

				if (nl != NULL)
					p = nl + 1;
				for (; p < end; p++) {
					if (*p == '\n' && (p == buf || p[-1] != '\r'))
						g_string_append_c(crlf, '\r');
					g_string_append_c(crlf, *p);
				}
				nfast_crlf += same_both_ways(file, crlf->str, crlf->len, NULL);
				g_string_free(crlf, TRUE);
			}
			g_free(buf);
		}
		closedir(d);
	}
	/* Nearly every message in it has text; a few are attachments only. */
	if (total < 6000 || with_text < total * 95 / 100)
		fail_msg("corpus: got %zu messages, %zu with text, want >= 6000 and 95%% with text",
			 total, with_text);
	print_message("corpus: %zu messages parsed, %zu with text; fast path took %zu as stored "
		      "and %zu as sent over SMTP, each the same as GMime's view; of the %zu "
		      "multipart messages it took %zu as stored or sent\n", total, with_text, nfast,
		      nfast_crlf, nmulti, fast_multipart_taken);
	/* Most of the corpus is one text part or a multipart of text parts and
	 * attachments: the fast path must take them (90 % and 463 of the 504
	 * multipart messages when written). */
	if (nfast_crlf < total * 85 / 100)
		fail_msg("corpus: got %zu messages on the fast path, want at least 85%% of %zu",
			 nfast_crlf, total);
	if (fast_multipart_taken < nmulti * 2 * 80 / 100)
		fail_msg("corpus: got %zu multipart readings on the fast path, want at least 80%% "
			 "of %zu", fast_multipart_taken, nmulti * 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cases),
		cmocka_unit_test(test_invalid_rfc2047),
		cmocka_unit_test(test_html),
		cmocka_unit_test(test_html_cut),
		cmocka_unit_test(test_urls),
		cmocka_unit_test(test_url_scan),
		cmocka_unit_test(test_utf8_fix_positions),
		cmocka_unit_test(test_header_cut_lines),
		cmocka_unit_test(test_attachments),
		cmocka_unit_test(test_nested_message),
		cmocka_unit_test(test_depth_limit),
		cmocka_unit_test(test_parts_limit),
		cmocka_unit_test(test_empty_parts_gate),
		cmocka_unit_test(test_header_bomb),
		cmocka_unit_test(test_text_limits),
		cmocka_unit_test(test_header_and_url_limits),
		cmocka_unit_test(test_raw_body),
		cmocka_unit_test(test_header_next),
		cmocka_unit_test(test_threads),
		cmocka_unit_test(test_fast_path),
		cmocka_unit_test(test_fast_path_limits),
		cmocka_unit_test(test_fast_path_multipart_limits),
		cmocka_unit_test(test_fast_path_long_lines),
		cmocka_unit_test(test_corpus),
	};
	int rc;

	mime_init();
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	mime_shutdown();
	return rc;
}
