/*
 * Unit tests for smtp_parse: verbs, MAIL/RCPT paths and parameters.
 * Table-driven; the error cases are first-class.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "smtp/smtp_parse.h"

static void test_verbs(void **state)
{
	static const struct {
		const char *name;
		const char *line;
		enum smtp_verb want;
		const char *want_args;
	} cases[] = {
		{ "ehlo", "EHLO mx.example.org", SMTP_V_EHLO, "mx.example.org" },
		{ "lowercase", "helo x", SMTP_V_HELO, "x" },
		{ "mail", "MAIL FROM:<a@b.example>", SMTP_V_MAIL, "FROM:<a@b.example>" },
		{ "data no args", "DATA", SMTP_V_DATA, "" },
		{ "trailing spaces", "QUIT   ", SMTP_V_QUIT, "" },
		{ "unknown", "FOO bar", SMTP_V_UNKNOWN, "bar" },
		{ "prefix is not a verb", "MAILX FROM:<a@b>", SMTP_V_UNKNOWN, "FROM:<a@b>" },
		{ "empty", "", SMTP_V_UNKNOWN, "" },
		{ "starttls", "starttls", SMTP_V_STARTTLS, "" },
		{ "bdat", "BDAT 10 LAST", SMTP_V_BDAT, "10 LAST" },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct smtp_command cmd;

		smtp_parse_command(cases[i].line, strlen(cases[i].line), &cmd);
		if (cmd.verb != cases[i].want || cmd.argslen != strlen(cases[i].want_args) ||
		    memcmp(cmd.args, cases[i].want_args, cmd.argslen) != 0)
			fail_msg("%s: got verb %d args '%.*s', want verb %d args '%s'",
				 cases[i].name, cmd.verb, (int)cmd.argslen, cmd.args,
				 cases[i].want, cases[i].want_args);
	}
}

static void test_mail(void **state)
{
	static const struct {
		const char *name;
		const char *args;
		enum smtp_parse_result want;
		const char *want_addr;
		int64_t want_size;
		int want_utf8;
	} cases[] = {
		{ "plain", "FROM:<a@b.example>", SMTP_PARSE_OK, "a@b.example", -1, 0 },
		{ "null sender", "FROM:<>", SMTP_PARSE_OK, "", -1, 0 },
		{ "space after colon", "FROM: <a@b.example>", SMTP_PARSE_OK, "a@b.example", -1, 0 },
		{ "size", "FROM:<a@b.example> SIZE=12345", SMTP_PARSE_OK, "a@b.example", 12345, 0 },
		{ "body 8bit", "FROM:<a@b.example> BODY=8BITMIME", SMTP_PARSE_OK, "a@b.example", -1, 0 },
		{ "smtputf8", "FROM:<\xc3\xbc@b.example> SMTPUTF8", SMTP_PARSE_OK,
		  "\xc3\xbc@b.example", -1, 1 },
		{ "utf8 without param", "FROM:<\xc3\xbc@b.example>", SMTP_PARSE_UTF8, "", -1, 0 },
		{ "invalid utf8", "FROM:<\xc3\x28@b.example> SMTPUTF8", SMTP_PARSE_ADDRESS, "", -1, 1 },
		{ "overlong utf8", "FROM:<\xc0\xaf@b.example> SMTPUTF8", SMTP_PARSE_ADDRESS, "", -1, 1 },
		{ "quoted local", "FROM:<\"a b\"@b.example>", SMTP_PARSE_OK, "\"a b\"@b.example", -1, 0 },
		{ "quoted with >", "FROM:<\"a>b\"@b.example>", SMTP_PARSE_OK, "\"a>b\"@b.example", -1, 0 },
		{ "source route", "FROM:<@r.example,@s.example:a@b.example>", SMTP_PARSE_OK,
		  "a@b.example", -1, 0 },
		{ "address literal", "FROM:<a@[192.0.2.1]>", SMTP_PARSE_OK, "a@[192.0.2.1]", -1, 0 },
		{ "ipv6 literal", "FROM:<a@[IPv6:2001:db8::1]>", SMTP_PARSE_OK,
		  "a@[IPv6:2001:db8::1]", -1, 0 },
		{ "bad literal", "FROM:<a@[300.1.1.1]>", SMTP_PARSE_ADDRESS, "", -1, 0 },
		{ "no brackets", "FROM:a@b.example", SMTP_PARSE_SYNTAX, "", -1, 0 },
		{ "no FROM", "TO:<a@b.example>", SMTP_PARSE_SYNTAX, "", -1, 0 },
		{ "unclosed", "FROM:<a@b.example", SMTP_PARSE_SYNTAX, "", -1, 0 },
		{ "no domain", "FROM:<a>", SMTP_PARSE_ADDRESS, "", -1, 0 },
		{ "double dot", "FROM:<a..b@b.example>", SMTP_PARSE_ADDRESS, "", -1, 0 },
		{ "leading dot", "FROM:<.a@b.example>", SMTP_PARSE_ADDRESS, "", -1, 0 },
		{ "label hyphen", "FROM:<a@-b.example>", SMTP_PARSE_ADDRESS, "", -1, 0 },
		{ "empty label", "FROM:<a@b..example>", SMTP_PARSE_ADDRESS, "", -1, 0 },
		{ "control char", "FROM:<a\x01@b.example>", SMTP_PARSE_ADDRESS, "", -1, 0 },
		{ "local too long",
		  "FROM:<aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa@b.example>",
		  SMTP_PARSE_ADDRESS, "", -1, 0 },
		{ "unknown param", "FROM:<a@b.example> FOO=bar", SMTP_PARSE_PARAM, "", -1, 0 },
		{ "bad size", "FROM:<a@b.example> SIZE=12x", SMTP_PARSE_PARAM, "", -1, 0 },
		{ "size twice", "FROM:<a@b.example> SIZE=1 SIZE=2", SMTP_PARSE_PARAM, "", -1, 0 },
		{ "huge size", "FROM:<a@b.example> SIZE=99999999999999999999", SMTP_PARSE_PARAM, "", -1, 0 },
		{ "bad body", "FROM:<a@b.example> BODY=BINARYMIME", SMTP_PARSE_PARAM, "", -1, 0 },
		{ "smtputf8 with value", "FROM:<a@b.example> SMTPUTF8=1", SMTP_PARSE_PARAM, "", -1, 0 },
		{ "garbage after path", "FROM:<a@b.example>x", SMTP_PARSE_PARAM, "", -1, 0 },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct smtp_mail_args m;
		enum smtp_parse_result r = smtp_parse_mail(cases[i].args, strlen(cases[i].args), &m);

		if (r != cases[i].want)
			fail_msg("%s: got result %d, want %d", cases[i].name, r, cases[i].want);
		if (r != SMTP_PARSE_OK)
			continue;
		if (strcmp(m.addr, cases[i].want_addr) != 0 || m.size != cases[i].want_size ||
		    m.smtputf8 != cases[i].want_utf8)
			fail_msg("%s: got addr '%s' size %lld utf8 %d, want '%s' %lld %d",
				 cases[i].name, m.addr, (long long)m.size, m.smtputf8,
				 cases[i].want_addr, (long long)cases[i].want_size,
				 cases[i].want_utf8);
	}
}

static void test_rcpt(void **state)
{
	static const struct {
		const char *name;
		const char *args;
		int utf8;
		enum smtp_parse_result want;
		const char *want_addr;
	} cases[] = {
		{ "plain", "TO:<a@b.example>", 0, SMTP_PARSE_OK, "a@b.example" },
		{ "postmaster", "TO:<Postmaster>", 0, SMTP_PARSE_OK, "postmaster" },
		{ "null not allowed", "TO:<>", 0, SMTP_PARSE_ADDRESS, "" },
		{ "utf8 allowed", "TO:<\xc3\xbc@b.example>", 1, SMTP_PARSE_OK, "\xc3\xbc@b.example" },
		{ "utf8 refused", "TO:<\xc3\xbc@b.example>", 0, SMTP_PARSE_UTF8, "" },
		{ "utf8 domain", "TO:<a@b\xc3\xbc.example>", 1, SMTP_PARSE_OK, "a@b\xc3\xbc.example" },
		{ "any param refused", "TO:<a@b.example> NOTIFY=NEVER", 0, SMTP_PARSE_PARAM, "" },
		{ "no TO", "<a@b.example>", 0, SMTP_PARSE_SYNTAX, "" },
		{ "no at", "TO:<ab.example>", 0, SMTP_PARSE_ADDRESS, "" },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct smtp_rcpt_args r;
		enum smtp_parse_result got = smtp_parse_rcpt(cases[i].args, strlen(cases[i].args),
							     cases[i].utf8, &r);

		if (got != cases[i].want)
			fail_msg("%s: got result %d, want %d", cases[i].name, got, cases[i].want);
		if (got == SMTP_PARSE_OK && strcmp(r.addr, cases[i].want_addr) != 0)
			fail_msg("%s: got addr '%s', want '%s'", cases[i].name, r.addr,
				 cases[i].want_addr);
	}
}

static void test_helo(void **state)
{
	static const struct {
		const char *name;
		const char *arg;
		int want;
	} cases[] = {
		{ "domain", "mx.example.org", 0 },
		{ "literal", "[192.0.2.1]", 0 },
		{ "empty", "", -1 },
		{ "space", "a b", -1 },
		{ "control", "a\x01", -1 },
		{ "8bit", "\xc3\xbc", -1 },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int got = smtp_check_helo(cases[i].arg, strlen(cases[i].arg));

		if (got != cases[i].want)
			fail_msg("%s: got %d, want %d", cases[i].name, got, cases[i].want);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_verbs),
		cmocka_unit_test(test_mail),
		cmocka_unit_test(test_rcpt),
		cmocka_unit_test(test_helo),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
