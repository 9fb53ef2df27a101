/*
 * Unit tests for the pure parts of the account alerts (daemon/alert): the
 * webhook URL parser, the HTTP status line, the HMAC signature (a vector
 * computed with Python's hmac module) and the alert mail (headers, line
 * lengths, no client text in the headers).  Table-driven; errors first-class.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "alert/alert.h"
#include "util/util.h"

static void test_url_parse(void **state)
{
	static const struct {
		const char *in;
		int ok, tls;
		const char *host, *port, *path;
	} cases[] = {
		{ "http://127.0.0.1:8080/hooks/moat?x=1", 0, 0, "127.0.0.1", "8080", "/hooks/moat?x=1" },
		{ "https://hooks.example.com", 0, 1, "hooks.example.com", "443", "/" },
		{ "http://h.example?q", 0, 0, "h.example", "80", "/?q" },
		{ "http://[::1]:9/p#frag", 0, 0, "::1", "9", "/p" },
		{ "ftp://h.example/", -1, 0, NULL, NULL, NULL },
		{ "http://", -1, 0, NULL, NULL, NULL },
		{ "http://user:pw@h.example/", -1, 0, NULL, NULL, NULL },
		{ "http://h.example:0/", -1, 0, NULL, NULL, NULL },
		{ "http://h.example:99999/", -1, 0, NULL, NULL, NULL },
		{ "http://h.example:/", -1, 0, NULL, NULL, NULL },
		{ "http://h ex/", -1, 0, NULL, NULL, NULL },
		{ "http://[::1/", -1, 0, NULL, NULL, NULL },
	};
	size_t i;

	(void)state;
	for (i = 0; i < ARRAY_LEN(cases); i++) {
		struct alert_url u;
		int rc = alert_url_parse(cases[i].in, strlen(cases[i].in), &u);

		if (rc != cases[i].ok)
			fail_msg("%s: got %d, want %d", cases[i].in, rc, cases[i].ok);
		if (rc < 0)
			continue;
		assert_int_equal(u.tls, cases[i].tls);
		assert_string_equal(u.host, cases[i].host);
		assert_string_equal(u.port, cases[i].port);
		assert_string_equal(u.path, cases[i].path);
	}
}

static void test_http_status(void **state)
{
	static const struct {
		const char *in;
		int ok, status;
	} cases[] = {
		{ "HTTP/1.1 204 No Content\r\n", 0, 204 },
		{ "HTTP/1.0 500\r\n", 0, 500 },
		{ "HTTP/1.1 200", 0, 200 },
		{ "HTTP/2 200 OK\r\n", -1, 0 },
		{ "HTTP/1.1 2x0 OK\r\n", -1, 0 },
		{ "HTTP/1.1 2000 OK\r\n", -1, 0 },
		{ "HTTP/1.1 099 OK\r\n", -1, 0 },
		{ "SMTP 220", -1, 0 },
		{ "", -1, 0 },
	};
	size_t i;

	(void)state;
	for (i = 0; i < ARRAY_LEN(cases); i++) {
		int st = 0;
		int rc = alert_http_status(cases[i].in, strlen(cases[i].in), &st);

		if (rc != cases[i].ok || (rc == 0 && st != cases[i].status))
			fail_msg("%s: got %d/%d, want %d/%d", cases[i].in, rc, st, cases[i].ok,
				 cases[i].status);
	}
}

static void test_sign(void **state)
{
	char sig[80];
	const char *body = "{\"a\":1}";

	(void)state;
	alert_webhook_sign("key-0123456789abcdef", 1700000000, body, strlen(body), sig);
	assert_string_equal(sig, "sha256=8a091117e0b1ccf5034d0d8c06ab42b29a4451a72f95b56f22afaf6bfb7af0d3");
}

static void test_mail(void **state)
{
	struct alert_mail m;
	struct dynbuf out;
	char *head_end;
	const char *p;

	(void)state;
	memset(&m, 0, sizeof(m));
	m.hostname = "mx.example.com";
	m.from = "MAILER-DAEMON@mx.example.com";
	m.to = "a@example.com, b@example.com";
	m.url_base = "https://console.example.com";
	m.now_ms = 1700000000000;
	m.id = 7;
	m.ts = 1700000000000;
	m.score = 25;
	m.held = 3;
	m.user = "eve\r\nBcc: x@evil.example\xc3\xa9";
	m.actor = "moatd";
	m.signals = "[{\"name\":\"senders\",\"label\":\"distinct senders\",\"value\":4,"
		    "\"weight\":3,\"points\":9}]";
	m.clients = "[{\"addr\":\"192.0.2.7\",\"messages\":12,\"new\":true}]";
	m.samples = "not json";
	dynbuf_init(&out, 256 * 1024);
	assert_int_equal(alert_mail_render(&out, &m), 0);
	assert_non_null(out.data);
	head_end = strstr(out.data, "\r\n\r\n");
	assert_non_null(head_end);
	*head_end = '\0';
	/* Client text never adds a header: CR/LF and 8-bit bytes are '?' in headers. */
	assert_null(strstr(out.data, "\r\nBcc:"));
	assert_non_null(strstr(out.data, "Subject: [moat] account eve??Bcc: x@evil.example?? "
				"suspended (score 25)\r\n"));
	assert_non_null(strstr(out.data, "To: <a@example.com>,\r\n <b@example.com>\r\n"));
	assert_non_null(strstr(out.data, "\r\nMessage-ID: <7."));
	assert_non_null(strstr(out.data, "\r\nDate: "));
	for (p = out.data; *p != '\0'; p++)
		assert_true((unsigned char)*p < 0x80);
	*head_end = '\r';
	for (p = out.data; p < out.data + out.len;) {
		const char *eol = strstr(p, "\r\n");

		assert_non_null(eol);
		assert_true(eol - p <= 998);
		p = eol + 2;
	}
	dynbuf_free(&out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_url_parse),
		cmocka_unit_test(test_http_status),
		cmocka_unit_test(test_sign),
		cmocka_unit_test(test_mail),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
