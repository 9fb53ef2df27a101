/*
 * Unit tests for the config parser: every value type, the error messages
 * naming file, line and key, and overrides.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "conf/conf.h"

static void test_good(void **state)
{
	const char *text =
		"# comment\n"
		"\n"
		"data_dir = /var/lib/moat\n"
		"  max_recipients=50  \n"
		"max_message_size = 10M\r\n"
		"idle_timeout = 90s\n"
		"greet_pause = 1500ms\n"
		"session_timeout = 2h\n"
		"smtp_listen = 127.0.0.1:25, [::1]:587\n"
		"http_listen = [::1]:0\n";
	struct conf c;
	char err[512];

	(void)state;
	conf_defaults(&c);
	if (conf_parse(&c, text, strlen(text), "t.conf", err, sizeof(err)) < 0)
		fail_msg("valid config refused: %s", err);
	assert_string_equal(c.data_dir, "/var/lib/moat");
	assert_int_equal(c.max_recipients, 50);
	assert_int_equal(c.max_message_size, 10 * 1024 * 1024);
	assert_int_equal(c.idle_timeout_ms, 90000);
	assert_int_equal(c.greet_pause_ms, 1500);
	assert_int_equal(c.session_timeout_ms, 2 * 3600 * 1000);
	assert_int_equal(c.smtp_listen_count, 2);
	assert_string_equal(c.smtp_listen[1].host, "::1");
	assert_int_equal(c.smtp_listen[1].port, 587);
	assert_string_equal(c.http_listen.host, "::1");
	assert_int_equal(c.http_listen.port, 0);
}

static void test_defaults(void **state)
{
	struct conf c;

	(void)state;
	conf_defaults(&c);
	assert_int_equal(c.max_command_line, 512);
	assert_int_equal(c.max_text_line, 1000);
	assert_int_equal(c.max_recipients, 100);
	assert_int_equal(c.smtp_listen_count, 1);
	assert_int_equal(c.smtp_listen[0].port, 2525);
	assert_int_equal(c.http_listen.port, 8080);
	assert_true(c.hostname[0] != '\0');
}

static void test_bad(void **state)
{
	static const struct {
		const char *name;
		const char *text;
		const char *want; /* substring of the error */
	} cases[] = {
		{ "unknown key", "a = 1\nnope = 2\n", "t.conf:2: nope: unknown key" },
		{ "no equals", "max_errors 5\n", "t.conf:1: max_errors: expected" },
		{ "not a number", "max_errors = five\n", "t.conf:1: max_errors: not a number" },
		{ "negative", "max_errors = -1\n", "t.conf:1: max_errors:" },
		{ "below minimum", "max_command_line = 100\n", "t.conf:1: max_command_line:" },
		{ "above maximum", "max_recipients = 1000000\n", "t.conf:1: max_recipients:" },
		{ "bad unit", "idle_timeout = 5 minutes\n", "t.conf:1: idle_timeout: not a duration" },
		{ "bad size", "max_message_size = 10X\n", "t.conf:1: max_message_size: not a size" },
		{ "bad listen", "smtp_listen = localhost:25\n", "t.conf:1: smtp_listen: not an address" },
		{ "bad port", "http_listen = 127.0.0.1:70000\n", "t.conf:1: http_listen: not an address" },
		{ "bad level", "log_level = loud\n", "t.conf:1: log_level:" },
		{ "bad hostname", "hostname = a b\n", "t.conf:1: hostname: not a host name" },
		{ "empty data_dir", "data_dir =\n", "t.conf:1: data_dir: must not be empty" },
		{ "overflow", "max_message_size = 99999999999999999999\n", "t.conf:1: max_message_size:" },
		{ "overflow in hours", "session_timeout = 888888888888884h\n",
		  "t.conf:1: session_timeout: not a duration" },
		{ "overflow in days", "queue_lifetime = 106751991167301d\n",
		  "t.conf:1: queue_lifetime: not a duration" },
		{ "overflow in G", "max_message_size = 8589934592G\n",
		  "t.conf:1: max_message_size: not a size" },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct conf c;
		char err[512] = "";
		const char *text = cases[i].text;

		/* "unknown key": the first line's key is unknown too; test line 2. */
		if (strcmp(cases[i].name, "unknown key") == 0)
			text = "max_errors = 1\nnope = 2\n";
		conf_defaults(&c);
		if (conf_parse(&c, text, strlen(text), "t.conf", err, sizeof(err)) == 0)
			fail_msg("%s: accepted, want error '%s'", cases[i].name, cases[i].want);
		if (strstr(err, cases[i].want) == NULL)
			fail_msg("%s: got error '%s', want it to contain '%s'", cases[i].name, err,
				 cases[i].want);
	}
}

static void test_set(void **state)
{
	struct conf c;
	char err[512];

	(void)state;
	conf_defaults(&c);
	assert_int_equal(conf_set(&c, "max_recipients", "7", err, sizeof(err)), 0);
	assert_int_equal(c.max_recipients, 7);
	assert_int_equal(conf_set(&c, "bogus", "7", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "bogus: unknown key"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_bad),
		cmocka_unit_test(test_set),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
