/*
 * Unit tests: the URL host scan of message text (mime_url_scan) finds the
 * hosts a position-by-position reading finds, in the same order.  The scan
 * looks for the ':' of a scheme and the '.' of "www." with memchr(); the
 * reference below tries every position, as the scan's contract says.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "mime/mime_html.h"

struct hosts {
	char buf[65536];
	size_t len;
	size_t n;
};

static void collect(void *ctx, const char *host, size_t n)
{
	struct hosts *h = ctx;

	if (h->len + n + 1 < sizeof(h->buf)) {
		memcpy(h->buf + h->len, host, n);
		h->buf[h->len + n] = '\n';
		h->len += n + 1;
	}
	h->n++;
}

/* ---- the reference: every position in turn -------------------------- */

static int ref_host_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '.' || c == '_' || c >= 0x80;
}

static int ref_ci_prefix(const char *s, size_t n, const char *p)
{
	size_t k = strlen(p);

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

static size_t ref_scheme(const char *s, size_t n)
{
	if (ref_ci_prefix(s, n, "http://"))
		return 7;
	if (ref_ci_prefix(s, n, "https://"))
		return 8;
	if (ref_ci_prefix(s, n, "ftp://"))
		return 6;
	return 0;
}

static int ref_auth_end(unsigned char c)
{
	return c <= ' ' || c == 0x7f || (c != 0 && strchr("/?#\\\"'<>()[]{},;|^`", c) != NULL);
}

static size_t ref_span(const char *s, size_t n, int www, struct hosts *h)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t end = 0, start = 0, hn = 0;

	while (end < n && !ref_auth_end(u[end]))
		end++;
	for (size_t i = 0; i < end; i++)
		if (u[i] == '@')
			start = i + 1;
	while (start + hn < end && ref_host_char(u[start + hn]))
		hn++;
	while (hn > 0 && s[start + hn - 1] == '.')
		hn--;
	if (hn == 0 || hn > 253 || (www && hn <= 4))
		return end;
	collect(h, s + start, hn);
	return end;
}

static void ref_scan(const char *s, size_t n, struct hosts *h)
{
	size_t i = 0;

	while (i < n) {
		size_t k = ref_scheme(s + i, n - i);

		if (k > 0) {
			i += k;
			i += ref_span(s + i, n - i, 0, h);
		} else if (ref_ci_prefix(s + i, n - i, "www.") &&
			   (i == 0 || !ref_host_char((unsigned char)s[i - 1]))) {
			size_t used = ref_span(s + i, n - i, 1, h);

			i += used > 0 ? used : 1;
		} else {
			i++;
		}
	}
}

static void same(const char *s, size_t n, const char *what)
{
	static struct hosts a, b;

	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	mime_url_scan(s, n, collect, &a);
	ref_scan(s, n, &b);
	if (a.n != b.n || a.len != b.len || memcmp(a.buf, b.buf, a.len) != 0)
		fail_msg("%s: got %zu hosts \"%.*s\", want %zu \"%.*s\" in \"%.*s\"", what, a.n,
			 (int)a.len, a.buf, b.n, (int)b.len, b.buf, (int)(n < 300 ? n : 300), s);
}

static void test_cases(void **state)
{
	static const char *const cases[] = {
		"",
		"see http://www.example.com/x and https://b.example.net.",
		"HTTP://UPPER.EXAMPLE/ and Www.Mixed.example, ftp://files.example.org/a",
		"www.a.b www.ab xwww.c.example .www.d.example -www.e.example (www.f.example)",
		"user@http://x.example http://user:pw@host.example:8080/p",
		"www.http://x.example/ https://www.y.example/www.z.example",
		"https:/no.example http:no.example ftp:/ ://x www.",
		"httphttp://a.example wwwww.b.example www.www.c.example",
		"http://", "www.", "http://.", "www...example", "a:b:c:d.e.f",
		"\xc3\xa9www.utf8.example https://\xc3\xa9t\xc3\xa9.example/",
		"http://a.example http://b.example http://c.example",
		"ftp://ftp.example/ www.ftp.example ftp.example",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		same(cases[i], strlen(cases[i]), cases[i]);
}

/* Random texts made of URL pieces: schemes, "www.", dots, colons, slashes,
 * '@', letters of both cases, blanks and 8-bit octets. */
static void test_random(void **state)
{
	static const char *const pieces[] = {
		"http://", "https://", "ftp://", "HTTP://", "www.", "WWW.", "ww", "w", "h", "http",
		"https", "ftp", ":", "://", "/", ".", "..", "@", "a", "B", "x1", "-", "_", " ", "\n",
		"<", ">", "(", "\"", "\xc3\xa9", "\xff", "example", ".com", ":8080", "?q=1",
	};
	static char text[4096];
	uint64_t seed = 0x9e3779b97f4a7c15ULL;

	(void)state;
	for (int round = 0; round < 20000; round++) {
		size_t n = 0;
		int parts;

		seed ^= seed << 13;
		seed ^= seed >> 7;
		seed ^= seed << 17;
		parts = (int)(seed % 60);
		for (int p = 0; p < parts; p++) {
			const char *piece;
			size_t k;

			seed ^= seed << 13;
			seed ^= seed >> 7;
			seed ^= seed << 17;
			piece = pieces[seed % (sizeof(pieces) / sizeof(pieces[0]))];
			k = strlen(piece);
			if (n + k >= sizeof(text))
				break;
			memcpy(text + n, piece, k);
			n += k;
		}
		same(text, n, "random");
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cases),
		cmocka_unit_test(test_random),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
