/*
 * Unit tests for the pure parts of the policy: CIDR parsing and the trie,
 * host and mail lists with wildcards, value validation, DNSBL return-code
 * ranges and reply templates.  Table-driven; failures say got/want.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "policy/policy_internal.h"

static void test_cidr_parse(void **state)
{
	static const struct {
		const char *name, *in;
		int ok, prefix;
	} cases[] = {
		{ "v4 host", "192.0.2.1", 1, 128 },
		{ "v4 /24", "192.0.2.0/24", 1, 120 },
		{ "v4 /0", "0.0.0.0/0", 1, 96 },
		{ "v6 /32", "2001:db8::/32", 1, 32 },
		{ "v6 host", "::1", 1, 128 },
		{ "host bits set", "192.0.2.1/24", 0, 0 },
		{ "prefix too long v4", "192.0.2.0/33", 0, 0 },
		{ "prefix too long v6", "2001:db8::/129", 0, 0 },
		{ "empty prefix", "192.0.2.0/", 0, 0 },
		{ "garbage", "192.0.2", 0, 0 },
		{ "letters", "10.0.0.x/8", 0, 0 },
		{ "negative", "10.0.0.0/-8", 0, 0 },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint8_t a[16];
		int p = -1;
		int rc = policy_cidr_parse(cases[i].in, strlen(cases[i].in), a, &p);

		if ((rc == 0) != cases[i].ok)
			fail_msg("%s: %s: got rc %d, want ok=%d", cases[i].name, cases[i].in, rc,
				 cases[i].ok);
		if (rc == 0 && p != cases[i].prefix)
			fail_msg("%s: got prefix %d, want %d", cases[i].name, p, cases[i].prefix);
	}
}

static void test_trie(void **state)
{
	static const char *const entries[] = {
		"10.0.0.0/8", "10.1.0.0/16", "192.0.2.7", "2001:db8::/32", "2001:db8:1::/48",
	};
	static const struct {
		const char *ip;
		int want; /* index into entries, -1: none */
	} cases[] = {
		{ "10.2.3.4", 0 }, { "10.1.2.3", 1 }, { "192.0.2.7", 2 }, { "192.0.2.8", -1 },
		{ "2001:db8:2::1", 3 }, { "2001:db8:1::5", 4 }, { "2001:db9::1", -1 },
		{ "11.0.0.1", -1 }, { "::ffff:10.1.0.1", 1 },
	};
	struct policy_ref refs[5];
	struct policy_trie *t = policy_trie_new();
	size_t i;

	(void)state;
	for (i = 0; i < 5; i++) {
		uint8_t a[16];
		int p;

		refs[i].id = (int64_t)i;
		refs[i].value = entries[i];
		refs[i].list = "t";
		assert_int_equal(policy_cidr_parse(entries[i], strlen(entries[i]), a, &p), 0);
		policy_trie_insert(t, a, p, &refs[i]);
	}
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint8_t a[16];
		const struct policy_ref *r;

		assert_int_equal(policy_ip_parse(cases[i].ip, strlen(cases[i].ip), a), 0);
		r = policy_trie_lookup(t, a);
		if (cases[i].want < 0 && r != NULL)
			fail_msg("%s: got %s, want no match", cases[i].ip, r->value);
		if (cases[i].want >= 0 && (r == NULL || r->id != cases[i].want))
			fail_msg("%s: got %s, want %s", cases[i].ip, r ? r->value : "none",
				 entries[cases[i].want]);
	}
	policy_trie_free(t);
}

static void test_value_check(void **state)
{
	static const struct {
		const char *name;
		enum policy_list_type type;
		const char *in;
		const char *norm; /* NULL: refused */
	} cases[] = {
		{ "host ip", POLICY_LT_HOST, "192.0.2.1", "192.0.2.1" },
		{ "host cidr", POLICY_LT_HOST, "2001:DB8::/32", "2001:db8::/32" },
		{ "host name", POLICY_LT_HOST, "Mail.Example.com", "mail.example.com" },
		{ "host wildcard", POLICY_LT_HOST, "*.example.com", "*.example.com" },
		{ "host bad cidr", POLICY_LT_HOST, "192.0.2.0/40", NULL },
		{ "host bad ip", POLICY_LT_HOST, "300.1.2.3", NULL },
		{ "host space", POLICY_LT_HOST, "a b", NULL },
		{ "host star mid", POLICY_LT_HOST, "mail.*.com", NULL },
		{ "mail address", POLICY_LT_MAIL, "Spam@Example.com", "spam@example.com" },
		{ "mail @domain", POLICY_LT_MAIL, "@example.com", "example.com" },
		{ "mail domain", POLICY_LT_MAIL, "example.com", "example.com" },
		{ "mail glob", POLICY_LT_MAIL, "spam*@example.com", "spam*@example.com" },
		{ "mail null", POLICY_LT_MAIL, "<>", "<>" },
		{ "mail two ats", POLICY_LT_MAIL, "a@b@c", NULL },
		{ "mail empty local", POLICY_LT_MAIL, "@", NULL },
		{ "mail bad domain", POLICY_LT_MAIL, "a@-x.com", NULL },
		{ "domain", POLICY_LT_DOMAIN, "Example.org", "example.org" },
		{ "domain star", POLICY_LT_DOMAIN, "*", "*" },
		{ "domain address", POLICY_LT_DOMAIN, "a@example.org", NULL },
		{ "empty", POLICY_LT_DOMAIN, "", NULL },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char norm[400];
		char err[200] = "";
		int rc = policy_value_check(cases[i].type, cases[i].in, strlen(cases[i].in), norm,
					    sizeof(norm), err, sizeof(err));

		if (cases[i].norm == NULL && rc == 0)
			fail_msg("%s: %s accepted as %s, want refusal", cases[i].name, cases[i].in,
				 norm);
		if (cases[i].norm != NULL && rc != 0)
			fail_msg("%s: %s refused (%s), want %s", cases[i].name, cases[i].in, err,
				 cases[i].norm);
		if (cases[i].norm != NULL && strcmp(norm, cases[i].norm) != 0)
			fail_msg("%s: got %s, want %s", cases[i].name, norm, cases[i].norm);
		if (rc != 0 && err[0] == '\0')
			fail_msg("%s: refused without a message", cases[i].name);
	}
}

static void test_mail_list(void **state)
{
	static const char *const entries[] = {
		"spam@example.com", "bad.example", "*.evil.example", "bulk*@news.example", "<>",
	};
	static const struct {
		const char *addr;
		int want;
	} cases[] = {
		{ "spam@example.com", 0 }, { "SPAM@EXAMPLE.COM", 0 }, { "ham@example.com", -1 },
		{ "x@bad.example", 1 }, { "x@sub.bad.example", -1 }, { "x@a.evil.example", 2 },
		{ "x@a.b.evil.example", 2 }, { "x@evil.example", -1 },
		{ "bulk42@news.example", 3 }, { "info@news.example", -1 }, { "", 4 },
	};
	struct policy_ref refs[5];
	struct policy_list l;
	size_t i;

	(void)state;
	memset(&l, 0, sizeof(l));
	for (i = 0; i < 5; i++) {
		refs[i].id = (int64_t)i;
		refs[i].value = entries[i];
		refs[i].list = "t";
		policy_list_add(&l, POLICY_LT_MAIL, &refs[i]);
	}
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct policy_ref *r = policy_list_match_mail(&l, cases[i].addr);

		if (cases[i].want < 0 && r != NULL)
			fail_msg("<%s>: got %s, want no match", cases[i].addr, r->value);
		if (cases[i].want >= 0 && (r == NULL || r->id != cases[i].want))
			fail_msg("<%s>: got %s, want %s", cases[i].addr, r ? r->value : "none",
				 entries[cases[i].want]);
	}
	policy_list_free(&l);
}

static void test_host_list(void **state)
{
	static const char *const entries[] = { "mx.example.com", "*.dyn.example.net" };
	static const struct {
		const char *name;
		int want;
	} cases[] = {
		{ "mx.example.com", 0 }, { "MX.Example.Com.", 0 }, { "mx2.example.com", -1 },
		{ "1-2-3-4.dyn.example.net", 1 }, { "dyn.example.net", -1 }, { "", -1 },
	};
	struct policy_ref refs[2];
	struct policy_list l;
	size_t i;

	(void)state;
	memset(&l, 0, sizeof(l));
	for (i = 0; i < 2; i++) {
		refs[i].id = (int64_t)i;
		refs[i].value = entries[i];
		refs[i].list = "t";
		policy_list_add(&l, POLICY_LT_HOST, &refs[i]);
	}
	assert_true(l.has_names);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct policy_ref *r = policy_list_match_host(&l, cases[i].name);

		if ((cases[i].want < 0) != (r == NULL) || (r != NULL && r->id != cases[i].want))
			fail_msg("%s: got %s, want %s", cases[i].name, r ? r->value : "none",
				 cases[i].want < 0 ? "none" : entries[cases[i].want]);
	}
	policy_list_free(&l);
}

static void test_glob(void **state)
{
	static const struct {
		const char *pat, *s;
		int want;
	} cases[] = {
		{ "*", "", 1 }, { "*", "abc", 1 }, { "a*c", "abbbc", 1 }, { "a*c", "abcd", 0 },
		{ "a?c", "abc", 1 }, { "a?c", "ac", 0 }, { "*@x.org", "u@X.ORG", 1 },
		{ "*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 0 },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int got = policy_glob(cases[i].pat, strlen(cases[i].pat), cases[i].s,
				      strlen(cases[i].s));

		if (got != cases[i].want)
			fail_msg("glob %s vs %s: got %d, want %d", cases[i].pat, cases[i].s, got,
				 cases[i].want);
	}
}

static void test_codes(void **state)
{
	static const struct {
		const char *in;
		int ok;
		uint32_t probe;
		int want;
	} cases[] = {
		{ "127.0.0.2-127.0.0.11", 1, 0x7f000002, 1 },
		{ "127.0.0.2-127.0.0.11", 1, 0x7f00000b, 1 },
		{ "127.0.0.2-127.0.0.11", 1, 0x7f00000c, 0 },
		{ "127.0.0.2-127.0.0.11", 1, 0x7f000001, 0 },
		{ "127.0.0.4, 127.0.0.10", 1, 0x7f00000a, 1 },
		{ "127.0.0.4, 127.0.0.10", 1, 0x7f000005, 0 },
		{ "", 1, 0x7f000063, 1 },
		{ "any", 1, 0x7f0000ff, 1 },
		{ "127.0.0.11-127.0.0.2", 0, 0, 0 },
		{ "127.0.0", 0, 0, 0 },
		{ "127.0.0.2-", 0, 0, 0 },
		{ "a,b", 0, 0, 0 },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct policy_codes c;
		char err[200] = "";
		int rc = policy_codes_parse(cases[i].in, strlen(cases[i].in), &c, err, sizeof(err));

		if ((rc == 0) != cases[i].ok)
			fail_msg("codes \"%s\": got rc %d (%s), want ok=%d", cases[i].in, rc, err,
				 cases[i].ok);
		if (rc == 0 && policy_codes_match(&c, cases[i].probe) != cases[i].want)
			fail_msg("codes \"%s\" probe %08x: got %d, want %d", cases[i].in,
				 cases[i].probe, !cases[i].want, cases[i].want);
	}
}

static void test_expand(void **state)
{
	static const struct {
		const char *tmpl, *want;
	} cases[] = {
		{ "Blocked: {ip} is listed at {zone}", "Blocked: 192.0.2.1 is listed at bl.test" },
		{ "{ip}{ip}", "192.0.2.1192.0.2.1" },
		{ "no placeholders", "no placeholders" },
		{ "{unknown} {ip", "{unknown} {ip" },
		{ "bad\r\nline", "bad??line" },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char out[200];

		policy_expand(cases[i].tmpl, "192.0.2.1", "bl.test", out, sizeof(out));
		if (strcmp(out, cases[i].want) != 0)
			fail_msg("expand \"%s\": got \"%s\", want \"%s\"", cases[i].tmpl, out,
				 cases[i].want);
	}
	{
		char small[8];

		policy_expand("{zone}{zone}", "1", "abcdef", small, sizeof(small));
		assert_string_equal(small, "abcdefa");
	}
}

static void test_settings(void **state)
{
	static const struct {
		const char *key, *value;
		int ok;
	} cases[] = {
		{ "conn_precedence", "deny", 1 }, { "conn_precedence", "maybe", 0 },
		{ "require_ptr", "yes", 1 }, { "require_ptr", "sure", 0 },
		{ "dnsbl_threshold", "3", 1 }, { "dnsbl_threshold", "0", 0 },
		{ "dnsbl_threshold", "3x", 0 }, { "no_such_key", "1", 0 },
		{ "conn_deny_text", "Go away {ip}", 1 }, { "conn_deny_text", "", 0 },
		{ "conn_deny_text", "two\nlines", 0 }, { "relay_enforce", "external", 1 },
	};
	struct policy_settings s;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char err[200] = "";
		int rc = policy_setting_check(cases[i].key, cases[i].value, err, sizeof(err));

		if ((rc == 0) != cases[i].ok)
			fail_msg("%s=%s: got rc %d (%s), want ok=%d", cases[i].key, cases[i].value,
				 rc, err, cases[i].ok);
	}
	policy_settings_defaults(&s);
	assert_int_equal(s.conn_allow_wins, 1);
	assert_int_equal(s.relay_enforce, POLICY_RELAY_ALL);
	assert_int_equal(s.dnsbl_threshold, 1);
	policy_settings_apply(&s, "conn_precedence", "deny");
	policy_settings_apply(&s, "dnsbl_threshold", "0"); /* invalid: ignored */
	assert_int_equal(s.conn_allow_wins, 0);
	assert_int_equal(s.dnsbl_threshold, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cidr_parse),
		cmocka_unit_test(test_trie),
		cmocka_unit_test(test_value_check),
		cmocka_unit_test(test_mail_list),
		cmocka_unit_test(test_host_list),
		cmocka_unit_test(test_glob),
		cmocka_unit_test(test_codes),
		cmocka_unit_test(test_expand),
		cmocka_unit_test(test_settings),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
