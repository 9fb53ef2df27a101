/*
 * Unit tests for the pure parts of SPF (daemon/score/auth_spf.c): the
 * macro expander with the examples of RFC 7208 section 7.4, its syntax
 * errors, and the record parser on good and bad records.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include <arpa/inet.h>

#include "score/auth.h"

struct expand_case {
	const char *spec;
	int v6;
	const char *want; /* NULL: a syntax error */
};

/* RFC 7208 7.4: sender strong-bad@email.example.com, 192.0.2.3 / 2001:db8::cb01 */
static const struct expand_case expand_cases[] = {
	{ "%{s}", 0, "strong-bad@email.example.com" },
	{ "%{o}", 0, "email.example.com" },
	{ "%{d}", 0, "email.example.com" },
	{ "%{d4}", 0, "email.example.com" },
	{ "%{d3}", 0, "email.example.com" },
	{ "%{d2}", 0, "example.com" },
	{ "%{d1}", 0, "com" },
	{ "%{dr}", 0, "com.example.email" },
	{ "%{d2r}", 0, "example.email" },
	{ "%{l}", 0, "strong-bad" },
	{ "%{l-}", 0, "strong.bad" },
	{ "%{lr}", 0, "strong-bad" },
	{ "%{lr-}", 0, "bad.strong" },
	{ "%{l1r-}", 0, "strong" },
	{ "%{ir}.%{v}._spf.%{d2}", 0, "3.2.0.192.in-addr._spf.example.com" },
	{ "%{lr-}.lp._spf.%{d2}", 0, "bad.strong.lp._spf.example.com" },
	{ "%{lr-}.lp.%{ir}.%{v}._spf.%{d2}", 0,
	  "bad.strong.lp.3.2.0.192.in-addr._spf.example.com" },
	{ "%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}", 0,
	  "3.2.0.192.in-addr.strong.lp._spf.example.com" },
	{ "%{d2}.trusted-domains.example.net", 0, "example.com.trusted-domains.example.net" },
	{ "%{ir}.%{v}._spf.%{d2}", 1,
	  "1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6._spf.example.com" },
	/* escapes, URL encoding of upper-case macros, %{p} not validated */
	{ "a%%b%_c%-d", 0, "a%b c%20d" },
	{ "%{S}", 0, "strong-bad%40email.example.com" },
	{ "%{p}.x", 0, "unknown.x" },
	{ "%{i}", 0, "192.0.2.3" },
	{ "%{h}", 0, "mx.example.org" },
	/* syntax errors */
	{ "%{x}", 0, NULL },
	{ "%{d0}", 0, NULL },
	{ "%{d", 0, NULL },
	{ "%", 0, NULL },
	{ "%a", 0, NULL },
	{ "%{c}", 0, NULL },  /* c r t only in explanations */
	{ "%{}", 0, NULL },
};

static void test_expand(void **state)
{
	struct sockaddr_in sin;
	struct sockaddr_in6 sin6;
	struct auth_spf_macro m;
	size_t i;

	(void)state;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	inet_pton(AF_INET, "192.0.2.3", &sin.sin_addr);
	memset(&sin6, 0, sizeof(sin6));
	sin6.sin6_family = AF_INET6;
	inet_pton(AF_INET6, "2001:db8::cb01", &sin6.sin6_addr);
	memset(&m, 0, sizeof(m));
	m.sender = "strong-bad@email.example.com";
	m.domain = "email.example.com";
	m.helo = "mx.example.org";
	for (i = 0; i < sizeof(expand_cases) / sizeof(expand_cases[0]); i++) {
		const struct expand_case *c = &expand_cases[i];
		char out[512];
		char err[128];
		int rc;

		m.ip = c->v6 ? (const struct sockaddr *)&sin6 : (const struct sockaddr *)&sin;
		rc = auth_spf_expand(c->spec, strlen(c->spec), &m, 0, out, sizeof(out), err,
				     sizeof(err));
		if (c->want == NULL) {
			if (rc != -1)
				fail_msg("%s: got \"%s\", want a syntax error", c->spec, out);
			/* the syntax-only mode agrees */
			assert_int_equal(auth_spf_expand(c->spec, strlen(c->spec), NULL, 0, NULL, 0,
							 err, sizeof(err)), -1);
			continue;
		}
		if (rc != 0)
			fail_msg("%s: got error \"%s\", want \"%s\"", c->spec, err, c->want);
		if (strcmp(out, c->want) != 0)
			fail_msg("%s: got \"%s\", want \"%s\"", c->spec, out, c->want);
	}
}

static void test_expand_exp_and_overflow(void **state)
{
	struct sockaddr_in sin;
	struct auth_spf_macro m;
	char out[16];
	char big[512];
	char err[128];
	const char *spec = "%{c} sent for %{r} at %{t}";

	(void)state;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	inet_pton(AF_INET, "192.0.2.3", &sin.sin_addr);
	memset(&m, 0, sizeof(m));
	m.sender = "a@b.example";
	m.domain = "b.example";
	m.helo = "h";
	m.ip = (const struct sockaddr *)&sin;
	m.receiver = "mx.test";
	m.now = 1234;
	assert_int_equal(auth_spf_expand(spec, strlen(spec), &m, 1, big, sizeof(big), err,
					 sizeof(err)), 0);
	assert_string_equal(big, "192.0.2.3 sent for mx.test at 1234");
	/* too small an output buffer is an error, never a cut name */
	assert_int_equal(auth_spf_expand("%{s}.%{s}", 9, &m, 0, out, sizeof(out), err,
					 sizeof(err)), -1);
}

struct parse_case {
	const char *rec;
	int ok;
	size_t nterms;
	const char *redirect;
};

static const struct parse_case parse_cases[] = {
	{ "v=spf1", 1, 0, NULL },
	{ "v=spf1 -all", 1, 1, NULL },
	{ "V=SPF1 +a mx -all", 1, 3, NULL },
	{ "v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/32 ~all", 1, 3, NULL },
	{ "v=spf1 a:mail.example.com/24//64 mx/28 include:_spf.example.net ?all", 1, 4, NULL },
	{ "v=spf1 exists:%{ir}.%{l1r+-}._spf.%{d} -all", 1, 2, NULL },
	{ "v=spf1 ptr ptr:example.com -all", 1, 3, NULL },
	{ "v=spf1 redirect=_spf.example.com", 1, 0, "_spf.example.com" },
	{ "v=spf1 a  unknown-mod=anything  exp=explain.%{d} -all", 1, 2, NULL },
	{ "v=spf1   ", 1, 0, NULL },
	/* bad */
	{ "v=spf10 -all", 0, 0, NULL },
	{ "spf1 -all", 0, 0, NULL },
	{ "v=spf1 foo", 0, 0, NULL },
	{ "v=spf1 ip4:192.0.2.300", 0, 0, NULL },
	{ "v=spf1 ip4:192.0.2.0/33", 0, 0, NULL },
	{ "v=spf1 ip6:2001:db8::/129", 0, 0, NULL },
	{ "v=spf1 ip4", 0, 0, NULL },
	{ "v=spf1 include", 0, 0, NULL },
	{ "v=spf1 include:", 0, 0, NULL },
	{ "v=spf1 a:", 0, 0, NULL },
	{ "v=spf1 all:x", 0, 0, NULL },
	{ "v=spf1 a/024", 0, 0, NULL },
	{ "v=spf1 exists:%{z}", 0, 0, NULL },
	{ "v=spf1 redirect=a.example redirect=b.example", 0, 0, NULL },
	{ "v=spf1 redirect=", 0, 0, NULL },
	{ "v=spf1 exp=%{q}", 0, 0, NULL },
	{ "v=spf1 *all", 0, 0, NULL },
};

static void test_parse(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(parse_cases) / sizeof(parse_cases[0]); i++) {
		const struct parse_case *c = &parse_cases[i];
		static struct auth_spf_record r;
		char err[160];
		int rc = auth_spf_parse(c->rec, strlen(c->rec), &r, err, sizeof(err));

		if (c->ok && rc != 0)
			fail_msg("\"%s\": got error \"%s\", want ok", c->rec, err);
		if (!c->ok) {
			if (rc != -1)
				fail_msg("\"%s\": got ok, want an error", c->rec);
			continue;
		}
		if (r.nterms != c->nterms)
			fail_msg("\"%s\": got %zu terms, want %zu", c->rec, r.nterms, c->nterms);
		if (c->redirect != NULL &&
		    (r.redirect_len != strlen(c->redirect) ||
		     memcmp(r.text + r.redirect_off, c->redirect, r.redirect_len) != 0))
			fail_msg("\"%s\": redirect not found", c->rec);
	}
}

static void test_parse_details(void **state)
{
	static struct auth_spf_record r;
	char err[160];
	const char *rec = "v=spf1 -a:mail.example.com/24//64 ~mx/28 ip4:192.0.2.0/24 +all";
	char many[AUTH_SPF_RECORD_MAX + 100];
	size_t n;
	int i;

	(void)state;
	assert_int_equal(auth_spf_parse(rec, strlen(rec), &r, err, sizeof(err)), 0);
	assert_int_equal(r.terms[0].mech, SPF_A);
	assert_int_equal(r.terms[0].qual, '-');
	assert_int_equal(r.terms[0].cidr4, 24);
	assert_int_equal(r.terms[0].cidr6, 64);
	assert_int_equal(r.terms[0].spec_len, strlen("mail.example.com"));
	assert_memory_equal(r.text + r.terms[0].spec_off, "mail.example.com", 16);
	assert_int_equal(r.terms[1].mech, SPF_MX);
	assert_int_equal(r.terms[1].qual, '~');
	assert_int_equal(r.terms[1].cidr4, 28);
	assert_int_equal(r.terms[1].cidr6, -1);
	assert_int_equal(r.terms[1].spec_len, 0);
	assert_int_equal(r.terms[2].mech, SPF_IP4);
	assert_int_equal(r.terms[2].cidr4, 24);
	assert_int_equal(r.terms[3].mech, SPF_ALL);
	assert_int_equal(r.terms[3].qual, '+');

	/* too many terms, and too long a record, are errors */
	n = (size_t)snprintf(many, sizeof(many), "v=spf1");
	for (i = 0; i < AUTH_SPF_MAX_TERMS + 1; i++)
		n += (size_t)snprintf(many + n, sizeof(many) - n, " a");
	assert_int_equal(auth_spf_parse(many, n, &r, err, sizeof(err)), -1);
	memset(many, 'a', sizeof(many));
	memcpy(many, "v=spf1 ", 7);
	assert_int_equal(auth_spf_parse(many, AUTH_SPF_RECORD_MAX + 1, &r, err, sizeof(err)), -1);

	assert_true(auth_spf_is_record("v=spf1"));
	assert_true(auth_spf_is_record("v=spf1 -all"));
	assert_false(auth_spf_is_record("v=spf10"));
	assert_false(auth_spf_is_record("google-site-verification=x"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_expand),
		cmocka_unit_test(test_expand_exp_and_overflow),
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_parse_details),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
