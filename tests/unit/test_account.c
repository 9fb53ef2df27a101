/*
 * Unit tests for daemon/account: the "N,N,N" limit parser (table-driven,
 * errors first-class), the approximate sliding-window counters, and the
 * submission_listen config key.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "account/account.h"
#include "conf/conf.h"
#include "policy/policy.h"

static void test_parse_limits(void **state)
{
	static const struct {
		const char *name, *in;
		int rc;
		int64_t want[3];
	} cases[] = {
		{ "empty", "", -1, { 0, 0, 0 } },
		{ "two", "1,2", -1, { 0, 0, 0 } },
		{ "four", "1,2,3,4", -1, { 0, 0, 0 } },
		{ "negative", "1,-2,3", -1, { 0, 0, 0 } },
		{ "junk", "1,2,x", -1, { 0, 0, 0 } },
		{ "space", "1, 2,3 ", -1, { 0, 0, 0 } },
		{ "overflow", "1,2,99999999999999999999", -1, { 0, 0, 0 } },
		{ "zeros", "0,0,0", 0, { 0, 0, 0 } },
		{ "defaults", "30,300,1000", 0, { 30, 300, 1000 } },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int64_t got[3] = { 0, 0, 0 };
		int rc = account_parse_limits(cases[i].in, got);

		if (rc != cases[i].rc)
			fail_msg("%s: got rc %d, want %d", cases[i].name, rc, cases[i].rc);
		if (rc == 0 && memcmp(got, cases[i].want, sizeof(got)) != 0)
			fail_msg("%s: got %lld,%lld,%lld", cases[i].name, (long long)got[0],
				 (long long)got[1], (long long)got[2]);
	}
}

static void test_window(void **state)
{
	struct account_win *w = account_win_new(100);
	int64_t t0 = 1000000;
	int i;

	(void)state;
	assert_int_equal(account_win_count(w, "a", 60000, t0), 0);
	for (i = 0; i < 10; i++)
		account_win_add(w, "a", 60000, t0 + i, 1);
	assert_int_equal(account_win_count(w, "a", 60000, t0 + 100), 10);
	assert_int_equal(account_win_count(w, "b", 60000, t0 + 100), 0);
	assert_int_equal(account_win_count(w, "a", 3600000, t0 + 100), 0); /* per window */
	/* half a window later the previous one still counts, by overlap */
	assert_int_equal(account_win_count(w, "a", 60000, t0 + 90000), 5);
	/* two windows later nothing is left */
	assert_int_equal(account_win_count(w, "a", 60000, t0 + 130000), 0);
	account_win_add(w, "a", 60000, t0 + 130000, 3);
	account_win_clear(w, "a");
	assert_int_equal(account_win_count(w, "a", 60000, t0 + 130001), 0);
	account_win_free(w);
}

static void test_window_bounded(void **state)
{
	struct account_win *w = account_win_new(10);
	char key[16];
	int i;

	(void)state;
	for (i = 0; i < 1000; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		account_win_add(w, key, 60000, 1000 + i, 1);
	}
	/* the newest survives, memory stays bounded (checked by ASan/valgrind runs) */
	assert_int_equal(account_win_count(w, "k999", 60000, 2000), 1);
	account_win_free(w);
}

static void test_submission_listen(void **state)
{
	const char *text = "submission_listen = 127.0.0.1:587, [::1]:0\n";
	struct conf c;
	char err[256];

	(void)state;
	conf_defaults(&c);
	assert_int_equal(c.submission_listen_count, 0);
	assert_int_equal(c.auth_allow_plaintext, 0);
	if (conf_parse(&c, text, strlen(text), "t.conf", err, sizeof(err)) < 0)
		fail_msg("refused: %s", err);
	assert_int_equal(c.submission_listen_count, 2);
	assert_int_equal(c.submission_listen[0].port, 587);
	assert_int_equal(c.smtp_listen_count, 1); /* untouched */
	assert_int_equal(conf_set(&c, "submission_listen", "", err, sizeof(err)), 0);
	assert_int_equal(c.submission_listen_count, 0);
	assert_int_equal(conf_set(&c, "submission_listen", "nope", err, sizeof(err)), -1);
}

static void join_cb(const char *addr, size_t alen, void *arg)
{
	char *out = arg;
	size_t n = strlen(out);

	snprintf(out + n, 512 - n, "%s%.*s", n ? "|" : "", (int)alen, addr);
}

static void test_from_addresses(void **state)
{
	static const struct {
		const char *name, *hdr;
		int want_n;
		const char *want;
	} cases[] = {
		{ "no from", "Subject: x\r\nTo: a@b\r\n\r\nFrom: body@x\r\n", -1, "" },
		{ "empty header", "\r\nFrom: a@b\r\n", -1, "" },
		{ "from without address", "From: nobody\r\n\r\n", 0, "" },
		{ "bare", "From: a@example.com\r\n\r\n", 1, "a@example.com" },
		{ "angle", "from: Alice <alice@example.com>\r\n\r\n", 1, "alice@example.com" },
		{ "quoted comma", "From: \"Doe, <x@evil>\" <d@example.com>\r\n\r\n", 1,
		  "d@example.com" },
		{ "comment", "From: a@example.com (Alice <x@evil>)\r\n\r\n", 1, "a@example.com" },
		{ "folded list", "Subject: s\r\nFrom: A <a@x.org>,\r\n\tb@y.org\r\n\r\n", 2,
		  "a@x.org|b@y.org" },
		{ "group", "From: team: a@x.org, b@x.org;\r\n\r\n", 2, "a@x.org|b@x.org" },
		{ "unterminated angle", "From: A <a@x.org\r\n\r\n", 0, "" },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char got[512] = "";
		int n = policy_from_addresses(cases[i].hdr, strlen(cases[i].hdr), join_cb, got);

		if (n != cases[i].want_n || strcmp(got, cases[i].want) != 0)
			fail_msg("%s: got %d \"%s\", want %d \"%s\"", cases[i].name, n, got,
				 cases[i].want_n, cases[i].want);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_limits),
		cmocka_unit_test(test_window),
		cmocka_unit_test(test_window_bounded),
		cmocka_unit_test(test_submission_listen),
		cmocka_unit_test(test_from_addresses),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
