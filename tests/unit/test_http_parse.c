/*
 * Unit tests for the pure parsers of the HTTP API (daemon/http/http_parse.c):
 * route patterns, integers, times, cursors, cookies, bearer tokens, names,
 * X-Forwarded-For, strict JSON bodies.  Table-driven; error cases first-class.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "http/http_parse.h"
#include "util/util.h"

static void test_path_match(void **state)
{
	static const struct {
		const char *pattern, *path;
		int want;
		size_t np;
		const char *p0;
	} cases[] = {
		{ "/healthz", "/healthz", 1, 0, NULL },
		{ "/healthz", "/healthz/", 0, 0, NULL },
		{ "/healthz", "/health", 0, 0, NULL },
		{ "/api/v1/users/{id}", "/api/v1/users/42", 1, 1, "42" },
		{ "/api/v1/users/{id}", "/api/v1/users/", 0, 0, NULL },
		{ "/api/v1/users/{id}", "/api/v1/users/4/2", 0, 0, NULL },
		{ "/api/v1/users/{id}", "/api/v1/users", 0, 0, NULL },
		{ "/a/{x}/b/{y}", "/a/1/b/two", 1, 2, "1" },
		{ "/a/{x}/b", "/a/1/c", 0, 0, NULL },
		{ "/", "", 0, 0, NULL },
	};
	size_t i;

	(void)state;
	for (i = 0; i < ARRAY_LEN(cases); i++) {
		struct http_span p[4];
		size_t np = 0;
		int got = http_path_match(cases[i].pattern, cases[i].path, strlen(cases[i].path),
					  p, 4, &np);

		if (got != cases[i].want)
			fail_msg("%s vs %s: got %d, want %d", cases[i].pattern, cases[i].path, got,
				 cases[i].want);
		if (got && np != cases[i].np)
			fail_msg("%s: got %zu params, want %zu", cases[i].path, np, cases[i].np);
		if (got && cases[i].p0 != NULL &&
		    (p[0].len != strlen(cases[i].p0) || memcmp(p[0].p, cases[i].p0, p[0].len) != 0))
			fail_msg("%s: got param %.*s, want %s", cases[i].path, (int)p[0].len, p[0].p,
				 cases[i].p0);
	}
}

static void test_parse_i64(void **state)
{
	static const struct {
		const char *in;
		int64_t min, max;
		int rc;
		int64_t want;
	} cases[] = {
		{ "", 0, 10, -1, 0 },
		{ "-", -5, 10, -1, 0 },
		{ "abc", 0, 10, -1, 0 },
		{ "1 ", 0, 10, -1, 0 },
		{ " 1", 0, 10, -1, 0 },
		{ "+1", 0, 10, -1, 0 },
		{ "11", 0, 10, -1, 0 },
		{ "-1", 0, 10, -1, 0 },
		{ "99999999999999999999", 0, INT64_MAX, -1, 0 },
		{ "9223372036854775808", 0, INT64_MAX, -1, 0 },
		{ "0x10", 0, 100, -1, 0 },
		{ "0", 0, 10, 0, 0 },
		{ "10", 0, 10, 0, 10 },
		{ "-3", -5, 10, 0, -3 },
		{ "9223372036854775807", 0, INT64_MAX, 0, INT64_MAX },
	};
	size_t i;

	(void)state;
	for (i = 0; i < ARRAY_LEN(cases); i++) {
		int64_t got = -999;
		int rc = http_parse_i64(cases[i].in, strlen(cases[i].in), cases[i].min,
					cases[i].max, &got);

		if (rc != cases[i].rc)
			fail_msg("\"%s\": got rc %d, want %d", cases[i].in, rc, cases[i].rc);
		if (rc == 0 && got != cases[i].want)
			fail_msg("\"%s\": got %lld, want %lld", cases[i].in, (long long)got,
				 (long long)cases[i].want);
	}
}

static void test_parse_time(void **state)
{
	static const struct {
		const char *in;
		int rc;
		int64_t want;
	} cases[] = {
		{ "", -1, 0 },
		{ "yesterday", -1, 0 },
		{ "2026-13-01T00:00:00Z", -1, 0 },
		{ "2026-01-01 00:00:00Z", -1, 0 },
		{ "2026-01-01T00:00:00", -1, 0 },
		{ "2026-01-01T00:00:00+1:00", -1, 0 },
		{ "2026-01-01T00:00:00+01:60", -1, 0 },
		{ "2026-01-01T00:00:00+24:00", -1, 0 },
		{ "2026-01-01T00:00:00+0100", -1, 0 },
		{ "2026-01-01T00:00:00+01:00Z", -1, 0 },
		{ "2026-01-01T00:00:00.Z", -1, 0 },
		{ "2026-01-01T00:00:00.1x", -1, 0 },
		{ "2026-02-30T00:00:00Z", -1, 0 },
		{ "2026-04-31T00:00:00Z", -1, 0 },
		{ "1970-01-01T00:30:00+01:00", -1, 0 },
		{ "2026-01-01T24:00:00Z", -1, 0 },
		{ "2026-01-01T00:00:00.12Z", 0, 1767225600120LL },
		{ "1969-12-31T23:59:59Z", -1, 0 },
		{ "-5", -1, 0 },
		{ "0", 0, 0 },
		{ "1700000000000", 0, 1700000000000LL },
		{ "1970-01-01T00:00:00Z", 0, 0 },
		{ "2026-01-01T00:00:00Z", 0, 1767225600000LL },
		{ "2026-01-01T00:00:01.250Z", 0, 1767225601250LL },
		{ "2026-01-01T01:00:00+01:00", 0, 1767225600000LL },
		{ "2026-01-01T01:00:00 01:00", 0, 1767225600000LL },
		{ "2025-12-31T19:30:00-04:30", 0, 1767225600000LL },
		{ "2026-01-01T00:00:00+00:00", 0, 1767225600000LL },
		{ "2026-01-01T00:00:00-00:00", 0, 1767225600000LL },
		{ "2026-01-01t02:00:00.5+02:00", 0, 1767225600500LL },
		{ "2026-01-01T00:00:01.2Z", 0, 1767225601200LL },
		{ "2026-01-01T00:00:01.123456789Z", 0, 1767225601123LL },
		{ "2028-02-29T00:00:00Z", 0, 1835395200000LL },
	};
	size_t i;

	(void)state;
	for (i = 0; i < ARRAY_LEN(cases); i++) {
		int64_t got = -1;
		int rc = http_parse_time(cases[i].in, strlen(cases[i].in), &got);

		if (rc != cases[i].rc)
			fail_msg("\"%s\": got rc %d, want %d", cases[i].in, rc, cases[i].rc);
		if (rc == 0 && got != cases[i].want)
			fail_msg("\"%s\": got %lld, want %lld", cases[i].in, (long long)got,
				 (long long)cases[i].want);
	}
}

static void test_cursor2(void **state)
{
	int64_t a, b;

	(void)state;
	assert_int_equal(http_parse_cursor2("12.34", 5, &a, &b), 0);
	assert_int_equal(a, 12);
	assert_int_equal(b, 34);
	assert_int_equal(http_parse_cursor2("12", 2, &a, &b), -1);
	assert_int_equal(http_parse_cursor2(".1", 2, &a, &b), -1);
	assert_int_equal(http_parse_cursor2("1.", 2, &a, &b), -1);
	assert_int_equal(http_parse_cursor2("1.2.3", 5, &a, &b), -1);
	assert_int_equal(http_parse_cursor2("-1.2", 4, &a, &b), -1);
	assert_int_equal(http_parse_cursor2("a.b", 3, &a, &b), -1);
}

static void test_pick(void **state)
{
	static const char *const allowed[] = { "hour", "day", NULL };

	(void)state;
	assert_int_equal(http_pick("hour", 4, allowed), 0);
	assert_int_equal(http_pick("day", 3, allowed), 1);
	assert_int_equal(http_pick("da", 2, allowed), -1);
	assert_int_equal(http_pick("days", 4, allowed), -1);
	assert_int_equal(http_pick("", 0, allowed), -1);
}

static void test_cookie(void **state)
{
	static const struct {
		const char *hdr;
		int rc;
		const char *want;
	} cases[] = {
		{ "", -1, NULL },
		{ "moat_session", -1, NULL },
		{ "other=1", -1, NULL },
		{ "xmoat_session=1", -1, NULL },
		{ "moat_sessionx=1", -1, NULL },
		{ "moat_session=abc", 0, "abc" },
		{ "a=1; moat_session=abc; b=2", 0, "abc" },
		{ "a=1;moat_session=abc", 0, "abc" },
		{ "moat_session=\"abc\"", 0, "abc" },
		{ "moat_session=", 0, "" },
		{ "moat_session=abc ;", 0, "abc" },
		{ "moat_session=0123456789012345678901234567890123456789", -1, NULL }, /* too long */
	};
	size_t i;

	(void)state;
	for (i = 0; i < ARRAY_LEN(cases); i++) {
		char out[33];
		int rc = http_cookie_get(cases[i].hdr, strlen(cases[i].hdr), "moat_session", out,
					 sizeof(out));

		if (rc != cases[i].rc)
			fail_msg("\"%s\": got rc %d, want %d", cases[i].hdr, rc, cases[i].rc);
		if (rc == 0 && strcmp(out, cases[i].want) != 0)
			fail_msg("\"%s\": got \"%s\", want \"%s\"", cases[i].hdr, out, cases[i].want);
	}
}

static void test_bearer(void **state)
{
	static const struct {
		const char *hdr;
		int rc;
		const char *want;
	} cases[] = {
		{ "", -1, NULL },
		{ "Bearer", -1, NULL },
		{ "Bearer ", -1, NULL },
		{ "Basic eDp5", -1, NULL },
		{ "Bearerx tok", -1, NULL },
		{ "Bearer tok en", -1, NULL },
		{ "Bearer tok", 0, "tok" },
		{ "bearer   tok  ", 0, "tok" },
		{ "BEARER\ttok", 0, "tok" },
	};
	size_t i;

	(void)state;
	for (i = 0; i < ARRAY_LEN(cases); i++) {
		struct http_span t;
		int rc = http_bearer(cases[i].hdr, strlen(cases[i].hdr), &t);

		if (rc != cases[i].rc)
			fail_msg("\"%s\": got rc %d, want %d", cases[i].hdr, rc, cases[i].rc);
		if (rc == 0 && (t.len != strlen(cases[i].want) ||
				memcmp(t.p, cases[i].want, t.len) != 0))
			fail_msg("\"%s\": got \"%.*s\", want \"%s\"", cases[i].hdr, (int)t.len, t.p,
				 cases[i].want);
	}
}

static void test_names_and_secrets(void **state)
{
	(void)state;
	assert_true(http_valid_name("admin", 5));
	assert_true(http_valid_name("a.b_c@d+e-f", 11));
	assert_false(http_valid_name("", 0));
	assert_false(http_valid_name(".admin", 6));
	assert_false(http_valid_name("has space", 9));
	assert_false(http_valid_name("x\xc3\xa9", 3));
	assert_false(http_valid_name("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 65));
	assert_true(http_secret_eq("abc", "abc"));
	assert_false(http_secret_eq("abc", "abd"));
	assert_false(http_secret_eq("abc", "ab"));
	assert_false(http_secret_eq("", "a"));
}

static void test_xff(void **state)
{
	char out[64];

	(void)state;
	assert_int_equal(http_xff_last("1.2.3.4", 7, out, sizeof(out)), 0);
	assert_string_equal(out, "1.2.3.4");
	assert_int_equal(http_xff_last("9.9.9.9, 1.2.3.4 ", 17, out, sizeof(out)), 0);
	assert_string_equal(out, "1.2.3.4");
	assert_int_equal(http_xff_last("2001:db8::1", 11, out, sizeof(out)), 0);
	assert_int_equal(http_xff_last("", 0, out, sizeof(out)), -1);
	assert_int_equal(http_xff_last(" , ", 3, out, sizeof(out)), -1);
	assert_int_equal(http_xff_last("evil\nhost", 9, out, sizeof(out)), -1);
}

static const struct http_field fields[] = {
	{ "name", HJ_STRING, 1, 8, 0, 0 },
	{ "n", HJ_INT, 0, 0, 1, 10 },
	{ "on", HJ_BOOL, 0, 0, 0, 0 },
	{ "list", HJ_STRING_ARRAY, 0, 2, 0, 0 },
};

static void test_json(void **state)
{
	static const struct {
		const char *in;
		int status;        /* 0: accepted */
		const char *code, *field;
	} cases[] = {
		{ "", 400, "malformed_json", "" },
		{ "{", 400, "malformed_json", "" },
		{ "{\"name\":\"a\",\"name\":\"b\"}", 400, "malformed_json", "" },
		{ "{\"name\":\"a\"} x", 400, "malformed_json", "" },
		{ "{\"name\":\"a\\u0000\"}", 400, "malformed_json", "" },
		{ "[]", 422, "invalid_body", "" },
		{ "1", 422, "invalid_body", "" },
		{ "null", 422, "invalid_body", "" },
		{ "{}", 422, "missing_field", "name" },
		{ "{\"name\":1}", 422, "invalid_type", "name" },
		{ "{\"name\":\"123456789\"}", 422, "invalid_value", "name" },
		{ "{\"name\":\"a\",\"x\":1}", 422, "unknown_field", "x" },
		{ "{\"name\":\"a\",\"n\":\"1\"}", 422, "invalid_type", "n" },
		{ "{\"name\":\"a\",\"n\":1.5}", 422, "invalid_type", "n" },
		{ "{\"name\":\"a\",\"n\":11}", 422, "invalid_value", "n" },
		{ "{\"name\":\"a\",\"on\":1}", 422, "invalid_type", "on" },
		{ "{\"name\":\"a\",\"list\":\"x\"}", 422, "invalid_type", "list" },
		{ "{\"name\":\"a\",\"list\":[1]}", 422, "invalid_type", "list" },
		{ "{\"name\":\"a\",\"list\":[\"\"]}", 422, "invalid_type", "list" },
		{ "{\"name\":\"a\",\"list\":[\"a\",\"b\",\"c\"]}", 422, "invalid_value", "list" },
		{ "{\"name\":\"a\"}", 0, NULL, NULL },
		{ "{\"name\":\"a\",\"n\":10,\"on\":false,\"list\":[\"x\",\"y\"]}", 0, NULL, NULL },
	};
	size_t i;

	(void)state;
	for (i = 0; i < ARRAY_LEN(cases); i++) {
		struct http_fail f;
		json_t *o = NULL;
		int status = 0;

		memset(&f, 0, sizeof(f));
		if (http_json_parse(cases[i].in, strlen(cases[i].in), &o, &f) < 0)
			status = f.status;
		else if (http_json_check(o, fields, ARRAY_LEN(fields), &f) < 0)
			status = f.status;
		json_decref(o);
		if (status != cases[i].status)
			fail_msg("%s: got %d (%s), want %d", cases[i].in, status,
				 f.code ? f.code : "ok", cases[i].status);
		if (status != 0 && (strcmp(f.code, cases[i].code) != 0 ||
				    strcmp(f.field, cases[i].field) != 0))
			fail_msg("%s: got %s/%s, want %s/%s", cases[i].in, f.code, f.field,
				 cases[i].code, cases[i].field);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_path_match),
		cmocka_unit_test(test_parse_i64),
		cmocka_unit_test(test_parse_time),
		cmocka_unit_test(test_cursor2),
		cmocka_unit_test(test_pick),
		cmocka_unit_test(test_cookie),
		cmocka_unit_test(test_bearer),
		cmocka_unit_test(test_names_and_secrets),
		cmocka_unit_test(test_xff),
		cmocka_unit_test(test_json),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
