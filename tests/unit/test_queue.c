/*
 * Unit tests for the pure parts of daemon/queue: host:port parsing, routes
 * (local domain -> downstream, smart host, MX), the back-off schedule and
 * the RFC 3464 DSN builder.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "conf/conf.h"
#include "queue/queue.h"
#include "util/util.h"

struct hp_case {
	const char *in;
	int want_rc;
	const char *host;
	int port;
};

static const struct hp_case hp_cases[] = {
	{ "127.0.0.1:10025", 0, "127.0.0.1", 10025 },
	{ "Relay.Example.NET", 0, "relay.example.net", 25 },
	{ "relay.example.net:587", 0, "relay.example.net", 587 },
	{ "[::1]:2525", 0, "::1", 2525 },
	{ "[::1]", 0, "::1", 25 },
	{ "::1", -1, NULL, 0 },           /* bare IPv6 needs brackets */
	{ "host:0", -1, NULL, 0 },
	{ "host:65536", -1, NULL, 0 },
	{ "host:", -1, NULL, 0 },
	{ ":25", -1, NULL, 0 },
	{ "bad host:25", -1, NULL, 0 },
	{ "[::1", -1, NULL, 0 },
	{ "h:25x", -1, NULL, 0 },
};

static void test_hostport(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < ARRAY_LEN(hp_cases); i++) {
		const struct hp_case *c = &hp_cases[i];
		struct queue_hostport hp;
		int rc = queue_parse_hostport(c->in, 25, &hp);

		if (rc != c->want_rc)
			fail_msg("%s: got rc %d, want %d", c->in, rc, c->want_rc);
		if (rc == 0 && (strcmp(hp.host, c->host) != 0 || hp.port != c->port))
			fail_msg("%s: got %s port %d, want %s port %d", c->in, hp.host, hp.port,
				 c->host, c->port);
	}
}

struct route_case {
	const char *rcpt;
	int want_rc;
	enum queue_route_kind kind;
	const char *key;
};

/* Stands in for the policy's local_domain list: example.org and example.net. */
static int local_example(const void *arg, const char *domain)
{
	(void)arg;
	return strcmp(domain, "example.org") == 0 || strcmp(domain, "example.net") == 0;
}

static void check_routes(const struct conf *c, const struct route_case *cases, size_t n)
{
	struct queue_routes r;
	char err[256];
	size_t i;

	if (queue_routes_parse(&r, c, err, sizeof(err)) < 0)
		fail_msg("routes refused: %s", err);
	r.is_local = local_example;
	for (i = 0; i < n; i++) {
		enum queue_route_kind kind = QUEUE_ROUTE_MX;
		char key[300] = "";
		int rc = queue_route_for(&r, cases[i].rcpt, &kind, key, sizeof(key));

		if (rc != cases[i].want_rc)
			fail_msg("%s: got rc %d, want %d", cases[i].rcpt, rc, cases[i].want_rc);
		if (rc == 0 && (kind != cases[i].kind || strcmp(key, cases[i].key) != 0))
			fail_msg("%s: got %d %s, want %d %s", cases[i].rcpt, kind, key,
				 cases[i].kind, cases[i].key);
	}
}

static void test_routes(void **state)
{
	static const struct route_case mx[] = {
		{ "bob@Example.ORG", 0, QUEUE_ROUTE_DOWNSTREAM, "downstream" },
		{ "bob@example.net", 0, QUEUE_ROUTE_DOWNSTREAM, "downstream" },
		{ "bob@sub.example.org", 0, QUEUE_ROUTE_MX, "mx:sub.example.org" },
		{ "bob@Gmail.com", 0, QUEUE_ROUTE_MX, "mx:gmail.com" },
		{ "\"a@b\"@example.org", 0, QUEUE_ROUTE_DOWNSTREAM, "downstream" },
		{ "postmaster", -1, QUEUE_ROUTE_MX, "" },
		{ "bob@", -1, QUEUE_ROUTE_MX, "" },
	};
	static const struct route_case nodown[] = {
		{ "bob@example.org", 0, QUEUE_ROUTE_DOWNSTREAM, "nodownstream" },
		{ "bob@gmail.com", 0, QUEUE_ROUTE_MX, "mx:gmail.com" },
	};
	static const struct route_case smart[] = {
		{ "bob@example.org", 0, QUEUE_ROUTE_DOWNSTREAM, "downstream" },
		{ "bob@gmail.com", 0, QUEUE_ROUTE_SMARTHOST, "smarthost" },
	};
	struct conf c;
	char err[256];

	(void)state;
	conf_defaults(&c);
	check_routes(&c, nodown, ARRAY_LEN(nodown));
	assert_int_equal(conf_set(&c, "downstream", "127.0.0.1:10025, 127.0.0.1:10026", err,
				  sizeof(err)), 0);
	check_routes(&c, mx, ARRAY_LEN(mx));
	assert_int_equal(conf_set(&c, "smarthost", "relay.example.net:587", err, sizeof(err)), 0);
	check_routes(&c, smart, ARRAY_LEN(smart));
}

static void test_routes_errors(void **state)
{
	struct queue_routes r;
	struct conf c;
	char err[256];

	(void)state;
	conf_defaults(&c);
	conf_set(&c, "downstream", "127.0.0.1:99999", err, sizeof(err));
	assert_int_equal(queue_routes_parse(&r, &c, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "downstream"));
	conf_set(&c, "downstream", "127.0.0.1:25", err, sizeof(err));
	conf_set(&c, "smarthost", "a b", err, sizeof(err));
	assert_int_equal(queue_routes_parse(&r, &c, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "smarthost"));
}

static void test_backoff(void **state)
{
	static const struct {
		int attempts;
		int64_t want;
	} cases[] = {
		{ 0, 300000 }, { 1, 600000 }, { 2, 1200000 }, { 3, 2400000 }, { 4, 3600000 },
		{ 50, 3600000 }, { 100000, 3600000 },
	};
	size_t i;

	(void)state;
	for (i = 0; i < ARRAY_LEN(cases); i++) {
		int64_t got = queue_backoff_ms(cases[i].attempts, 300000, 3600000);

		if (got != cases[i].want)
			fail_msg("attempts %d: got %lld, want %lld", cases[i].attempts,
				 (long long)got, (long long)cases[i].want);
	}
}

static void test_dsn(void **state)
{
	static const struct queue_dsn_rcpt rcpts[] = {
		{ "nobody@example.org", "550 5.1.1 <nobody@example.org>: no such user" },
		{ "x@null.test", "556 5.1.10 null MX\r\nInjected: header" },
		{ "y@old.test", "queue lifetime expired" },
	};
	const char headers[] = "Subject: hello\r\nFrom: a@example.net\r\n";
	struct queue_dsn d;
	struct dynbuf b;
	const char *t;

	(void)state;
	memset(&d, 0, sizeof(d));
	d.reporting_host = "mx.example.org";
	d.qid = "0123456789ABCDEF";
	d.orig_sender = "alice@example.net";
	d.arrival_ms = 1700000000000;
	d.now_ms = 1700000100000;
	d.rcpts = rcpts;
	d.nrcpts = ARRAY_LEN(rcpts);
	d.headers = headers;
	d.headers_len = strlen(headers);
	d.boundary = "BOUNDARY42";
	dynbuf_init(&b, 65536);
	assert_int_equal(queue_dsn_build(&b, &d), 0);
	assert_int_equal(dynbuf_add(&b, "", 1), 0);
	t = b.data;
	assert_non_null(strstr(t, "To: <alice@example.net>\r\n"));
	assert_non_null(strstr(t, "Content-Type: multipart/report; report-type=delivery-status;"));
	assert_non_null(strstr(t, "Reporting-MTA: dns; mx.example.org\r\n"));
	assert_non_null(strstr(t, "Final-Recipient: rfc822; nobody@example.org\r\nAction: failed\r\n"
				  "Status: 5.1.1\r\n"));
	assert_non_null(strstr(t, "Status: 5.1.10\r\n"));
	assert_non_null(strstr(t, "Status: 5.0.0\r\n")); /* no enhanced code in the reason */
	assert_null(strstr(t, "\r\nInjected: header")); /* reply text cannot add headers */
	assert_non_null(strstr(t, "Content-Type: text/rfc822-headers\r\n\r\nSubject: hello\r\n"));
	assert_non_null(strstr(t, "\r\n--BOUNDARY42--\r\n"));
	assert_null(strstr(t, "\n\n"));  /* CRLF only */
	dynbuf_free(&b);

	/* Too small a buffer: an error, not a cut message. */
	dynbuf_init(&b, 200);
	assert_int_equal(queue_dsn_build(&b, &d), -1);
	dynbuf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hostport),
		cmocka_unit_test(test_routes),
		cmocka_unit_test(test_routes_errors),
		cmocka_unit_test(test_backoff),
		cmocka_unit_test(test_dsn),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
