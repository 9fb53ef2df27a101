/*
 * Unit tests for the pure parts of DKIM (daemon/score/auth_dkim.c): the
 * DKIM-Signature parser (good and bad fields, rsa-sha1 refused), the key
 * record parser, canonicalisation with the example of RFC 6376 3.4.5, and
 * auth_dkim_verify() on RFC 8463 Appendix A's message, signed with
 * ed25519-sha256 and rsa-sha256, with the keys of A.2 -- plus the same
 * message with a changed body or a changed header.  DMARC's pure parts
 * (record parser, From: domain, organisational domain) are here too.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "score/auth.h"
#include "util/util.h"

/* ---- canonicalisation, RFC 6376 3.4.5 ---------------------------------- */

static void test_canon_rfc_example(void **state)
{
	const char *h1 = "A: X";
	const char *h2 = "B : Y\t\r\n\tZ  ";
	const char *body = " C \r\nD \t E\r\n\r\n\r\n";
	struct dynbuf b;

	(void)state;
	dynbuf_init(&b, 4096);
	assert_int_equal(auth_dkim_canon_header(DKIM_RELAXED, h1, strlen(h1), &b), 0);
	dynbuf_add(&b, "\r\n", 2);
	assert_int_equal(auth_dkim_canon_header(DKIM_RELAXED, h2, strlen(h2), &b), 0);
	dynbuf_add(&b, "\r\n", 2);
	assert_string_equal(b.data, "a:X\r\nb:Y Z\r\n");
	dynbuf_reset(&b);
	assert_int_equal(auth_dkim_canon_header(DKIM_SIMPLE, h1, strlen(h1), &b), 0);
	dynbuf_add(&b, "\r\n", 2);
	assert_int_equal(auth_dkim_canon_header(DKIM_SIMPLE, h2, strlen(h2), &b), 0);
	dynbuf_add(&b, "\r\n", 2);
	assert_string_equal(b.data, "A: X\r\nB : Y\t\r\n\tZ  \r\n");
	dynbuf_reset(&b);
	assert_int_equal(auth_dkim_canon_body(DKIM_RELAXED, body, strlen(body), &b), 0);
	assert_string_equal(b.data, " C\r\nD E\r\n");
	dynbuf_reset(&b);
	assert_int_equal(auth_dkim_canon_body(DKIM_SIMPLE, body, strlen(body), &b), 0);
	assert_string_equal(b.data, " C \r\nD \t E\r\n");
	dynbuf_free(&b);
}

struct body_case {
	const char *name;
	enum auth_dkim_canon c;
	const char *in;
	const char *want;
};

static const struct body_case body_cases[] = {
	{ "simple empty", DKIM_SIMPLE, "", "\r\n" },
	{ "relaxed empty", DKIM_RELAXED, "", "" },
	{ "simple only blank lines", DKIM_SIMPLE, "\r\n\r\n", "\r\n" },
	{ "relaxed only whitespace lines", DKIM_RELAXED, " \r\n\t\r\n", "" },
	{ "simple no final CRLF", DKIM_SIMPLE, "abc", "abc\r\n" },
	{ "relaxed no final CRLF", DKIM_RELAXED, "abc  ", "abc\r\n" },
	{ "bare LF is CRLF", DKIM_SIMPLE, "a\nb\n\n", "a\r\nb\r\n" },
	{ "inner blank lines kept", DKIM_RELAXED, "a\r\n\r\nb\r\n", "a\r\n\r\nb\r\n" },
};

static void test_canon_body_cases(void **state)
{
	size_t i;
	struct dynbuf b;

	(void)state;
	dynbuf_init(&b, 4096);
	for (i = 0; i < sizeof(body_cases) / sizeof(body_cases[0]); i++) {
		const struct body_case *c = &body_cases[i];

		dynbuf_reset(&b);
		assert_int_equal(auth_dkim_canon_body(c->c, c->in, strlen(c->in), &b), 0);
		if (b.len != strlen(c->want) || (b.len > 0 && memcmp(b.data, c->want, b.len) != 0))
			fail_msg("%s: got \"%.*s\", want \"%s\"", c->name, (int)b.len,
				 b.data != NULL ? b.data : "", c->want);
	}
	dynbuf_free(&b);
}

/* ---- the signature parser --------------------------------------------- */

struct sig_case {
	const char *name;
	const char *v;
	int ok;
	const char *err_has;
};

#define GOOD_TAIL "; bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=; b=AAAA"

static const struct sig_case sig_cases[] = {
	{ "minimal", "v=1; a=rsa-sha256; d=example.com; s=sel; h=from" GOOD_TAIL, 1, NULL },
	{ "folded", "v=1; a=ed25519-sha256;\r\n c=relaxed/simple; d=example.com; s=a.b;\r\n"
		    " h=From : To; i=joe@sub.example.com; l=10; t=1; x=2; q=dns/txt; z=x" GOOD_TAIL,
	  1, NULL },
	{ "rsa-sha1 refused", "v=1; a=rsa-sha1; d=example.com; s=sel; h=from" GOOD_TAIL, 0,
	  "rsa-sha1" },
	{ "unknown alg", "v=1; a=dsa-sha256; d=example.com; s=sel; h=from" GOOD_TAIL, 0,
	  "algorithm" },
	{ "no v", "a=rsa-sha256; d=example.com; s=sel; h=from" GOOD_TAIL, 0, "required" },
	{ "v=2", "v=2; a=rsa-sha256; d=example.com; s=sel; h=from" GOOD_TAIL, 0, "v=" },
	{ "no from in h", "v=1; a=rsa-sha256; d=example.com; s=sel; h=to:subject" GOOD_TAIL, 0,
	  "From" },
	{ "i outside d", "v=1; a=rsa-sha256; d=example.com; s=sel; h=from; i=@evil.com" GOOD_TAIL,
	  0, "i=" },
	{ "i lookalike", "v=1; a=rsa-sha256; d=example.com; s=sel; h=from; i=@badexample.com"
	  GOOD_TAIL, 0, "i=" },
	{ "duplicate tag", "v=1; a=rsa-sha256; d=example.com; d=example.com; s=sel; h=from"
	  GOOD_TAIL, 0, "twice" },
	{ "bad canon", "v=1; a=rsa-sha256; c=loose; d=example.com; s=sel; h=from" GOOD_TAIL, 0,
	  "canon" },
	{ "bad l", "v=1; a=rsa-sha256; d=example.com; s=sel; h=from; l=-1" GOOD_TAIL, 0, "l=" },
	{ "x before t", "v=1; a=rsa-sha256; d=example.com; s=sel; h=from; t=10; x=5" GOOD_TAIL, 0,
	  "x=" },
	{ "q without dns/txt", "v=1; a=rsa-sha256; d=example.com; s=sel; h=from; q=http"
	  GOOD_TAIL, 0, "q=" },
	{ "bad base64", "v=1; a=rsa-sha256; d=example.com; s=sel; h=from; bh=**; b=AAAA", 0,
	  "bh=" },
	{ "tag syntax", "v=1; a=rsa-sha256; =x" GOOD_TAIL, 0, "syntax" },
	{ "empty", "", 0, "required" },
	{ "bad d", "v=1; a=rsa-sha256; d=exa mple.com; s=sel; h=from" GOOD_TAIL, 0, "d=" },
};

static void test_sig_parse(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(sig_cases) / sizeof(sig_cases[0]); i++) {
		const struct sig_case *c = &sig_cases[i];
		static struct auth_dkim_sig sig;
		char err[200] = "";
		int rc = auth_dkim_sig_parse(c->v, strlen(c->v), &sig, err, sizeof(err));

		if (c->ok && rc != 0)
			fail_msg("%s: got error \"%s\", want ok", c->name, err);
		if (!c->ok && rc != -1)
			fail_msg("%s: got ok, want an error", c->name);
		if (!c->ok && strstr(err, c->err_has) == NULL)
			fail_msg("%s: got error \"%s\", want one about \"%s\"", c->name, err,
				 c->err_has);
	}
}

static void test_sig_parse_fields(void **state)
{
	static struct auth_dkim_sig sig;
	char err[200];
	const char *v = "v=1; a=ed25519-sha256;\r\n c=relaxed; d=Example.com; s=a.b;\r\n"
			" h=From : To; i=joe@sub.example.com; l=10; b=AA\r\n AA ; bh=AAAA";

	(void)state;
	assert_int_equal(auth_dkim_sig_parse(v, strlen(v), &sig, err, sizeof(err)), 0);
	assert_int_equal(sig.alg, DKIM_ED25519_SHA256);
	assert_int_equal(sig.hcanon, DKIM_RELAXED);
	assert_int_equal(sig.bcanon, DKIM_SIMPLE);
	assert_string_equal(sig.d, "Example.com");
	assert_string_equal(sig.s, "a.b");
	assert_int_equal(sig.nh, 2);
	assert_string_equal(sig.h[0], "from");
	assert_string_equal(sig.h[1], "to");
	assert_int_equal(sig.l, 10);
	assert_int_equal(sig.b_len, 3);
	assert_int_equal(sig.bh_len, 3);
	/* b= blanking covers the value and the whitespace up to the ';' */
	assert_memory_equal(v + sig.b_off - 2, "b=AA\r\n AA ;", 11);
	assert_int_equal(sig.b_raw_len, strlen("AA\r\n AA "));
}

static void test_key_parse(void **state)
{
	struct auth_dkim_key k;
	char err[200];
	const char *ok1 = "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=";
	const char *ok2 = "k=rsa; t=y:s; h=sha1:sha256; p=AAAA";
	const char *revoked = "v=DKIM1; p=";
	const char *bad[] = {
		"k=rsa; v=DKIM1; p=AAAA",   /* v not first */
		"v=DKIM2; p=AAAA",
		"k=dsa; p=AAAA",
		"h=sha1; p=AAAA",
		"k=rsa",                    /* no p */
		"p=A*AA",
		"s=web; p=AAAA",
	};
	size_t i;

	(void)state;
	assert_int_equal(auth_dkim_key_parse(ok1, strlen(ok1), &k, err, sizeof(err)), 0);
	assert_int_equal(k.alg, DKIM_ED25519_SHA256);
	assert_int_equal(k.p_len, 32);
	assert_int_equal(auth_dkim_key_parse(ok2, strlen(ok2), &k, err, sizeof(err)), 0);
	assert_true(k.testing);
	assert_true(k.strict);
	assert_int_equal(auth_dkim_key_parse(revoked, strlen(revoked), &k, err, sizeof(err)), 0);
	assert_true(k.revoked);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (auth_dkim_key_parse(bad[i], strlen(bad[i]), &k, err, sizeof(err)) != -1)
			fail_msg("\"%s\": got ok, want an error", bad[i]);
}

/* ---- RFC 8463 Appendix A ------------------------------------------------ */

static const char rfc8463_header[] =
	"DKIM-Signature: v=1; a=ed25519-sha256; c=relaxed/relaxed;\r\n"
	" d=football.example.com; i=@football.example.com;\r\n"
	" q=dns/txt; s=brisbane; t=1528637909; h=from : to :\r\n"
	" subject : date : message-id : from : subject : date;\r\n"
	" bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;\r\n"
	" b=/gCrinpcQOoIfuHNQIbq4pgh9kyIK3AQUdt9OdqQehSwhEIug4D11Bus\r\n"
	" Fa3bT3FY5OsU7ZbnKELq+eXdp1Q1Dw==\r\n"
	"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed;\r\n"
	" d=football.example.com; i=@football.example.com;\r\n"
	" q=dns/txt; s=test; t=1528637909; h=from : to : subject :\r\n"
	" date : message-id : from : subject : date;\r\n"
	" bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;\r\n"
	" b=F45dVWDfMbQDGHJFlXUNB2HKfbCeLRyhDXgFpEL8GwpsRe0IeIixNTe3\r\n"
	" DhCVlUrSjV4BwcVcOF6+FF3Zo9Rpo1tFOeS9mPYQTnGdaSGsgeefOsk2Jz\r\n"
	" dA+L10TeYt9BgDfQNZtKdN1WO//KgIqXP7OdEFE4LjFYNcUxZQ4FADY+8=\r\n"
	"From: Joe SixPack <joe@football.example.com>\r\n"
	"To: Suzie Q <suzie@shopping.example.net>\r\n"
	"Subject: Is dinner ready?\r\n"
	"Date: Fri, 11 Jul 2003 21:00:37 -0700 (PDT)\r\n"
	"Message-ID: <20030712040037.46341.5F8J@football.example.com>\r\n";

static const char rfc8463_body[] =
	"Hi.\r\n\r\nWe lost the game.  Are you hungry yet?\r\n\r\nJoe.\r\n";

static const char key_ed[] = "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=";
static const char key_rsa[] =
	"v=DKIM1; k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDkHlOQoBTzWR"
	"iGs5V6NpP3idY6Wk08a5qhdR6wy5bdOKb2jLQiY/J16JYi0Qvx/byYzCNb3W91y3FutAC"
	"DfzwQ/BC/e/8uBsCR+yz1Lxj+PL6lHvqMKrM3rG4hstT5QjvHO9PzoxZyVYLzBfO2EeC3"
	"Ip3G+2kryOTIKT+l/K4w3QIDAQAB";

static enum auth_res verify_one(const char *header, const char *body, size_t which,
				const char *keyrec, char *reason, size_t rsz)
{
	struct auth_hfield f[32];
	struct auth_msg m = { header, strlen(header), body, strlen(body) };
	struct auth_dkim_bodies *bodies = auth_dkim_bodies_new(&m);
	static struct auth_dkim_sig sig;
	struct auth_dkim_key key;
	char err[200];
	long n = auth_header_split(header, strlen(header), f, 32);
	const char *v;
	enum auth_res r;

	assert_true(n > (long)which);
	v = memchr(f[which].p, ':', f[which].len) + 1;
	if (auth_dkim_sig_parse(v, (size_t)(f[which].p + f[which].len - v), &sig, err,
				sizeof(err)) != 0)
		fail_msg("signature %zu: %s", which, err);
	if (auth_dkim_key_parse(keyrec, strlen(keyrec), &key, err, sizeof(err)) != 0)
		fail_msg("key: %s", err);
	r = auth_dkim_verify(f, (size_t)n, which, &sig, &key, bodies, 1528637909, reason, rsz);
	auth_dkim_bodies_free(bodies);
	return r;
}

static void test_rfc8463_vectors(void **state)
{
	char reason[200];
	enum auth_res r;
	char *changed;

	(void)state;
	r = verify_one(rfc8463_header, rfc8463_body, 0, key_ed, reason, sizeof(reason));
	if (r != AUTH_PASS)
		fail_msg("ed25519: got %s (%s), want pass", auth_res_name(r), reason);
	r = verify_one(rfc8463_header, rfc8463_body, 1, key_rsa, reason, sizeof(reason));
	if (r != AUTH_PASS)
		fail_msg("rsa: got %s (%s), want pass", auth_res_name(r), reason);

	/* bare LF line ends verify the same (relaxed canonicalisation) */
	{
		char lf_h[sizeof(rfc8463_header)];
		char lf_b[sizeof(rfc8463_body)];
		size_t i;
		size_t o = 0;

		for (i = 0; rfc8463_header[i] != '\0'; i++)
			if (rfc8463_header[i] != '\r')
				lf_h[o++] = rfc8463_header[i];
		lf_h[o] = '\0';
		o = 0;
		for (i = 0; rfc8463_body[i] != '\0'; i++)
			if (rfc8463_body[i] != '\r')
				lf_b[o++] = rfc8463_body[i];
		lf_b[o] = '\0';
		r = verify_one(lf_h, lf_b, 0, key_ed, reason, sizeof(reason));
		if (r != AUTH_PASS)
			fail_msg("ed25519 with LF: got %s (%s), want pass", auth_res_name(r), reason);
	}

	/* a changed body: the body hash fails */
	r = verify_one(rfc8463_header, "Hi.\r\n\r\nWe won the game.\r\n", 0, key_ed, reason,
		       sizeof(reason));
	assert_int_equal(r, AUTH_FAIL);
	assert_non_null(strstr(reason, "body hash"));

	/* a changed signed header: the signature fails */
	changed = xstrdup(rfc8463_header);
	memcpy(strstr(changed, "Is dinner"), "Is lunch ", 9);
	r = verify_one(changed, rfc8463_body, 0, key_ed, reason, sizeof(reason));
	assert_int_equal(r, AUTH_FAIL);
	assert_non_null(strstr(reason, "signature"));
	r = verify_one(changed, rfc8463_body, 1, key_rsa, reason, sizeof(reason));
	assert_int_equal(r, AUTH_FAIL);
	free(changed);

	/* the wrong key type for the algorithm, and a revoked key */
	r = verify_one(rfc8463_header, rfc8463_body, 0, key_rsa, reason, sizeof(reason));
	assert_int_equal(r, AUTH_PERMERROR);
	r = verify_one(rfc8463_header, rfc8463_body, 0, "v=DKIM1; k=ed25519; p=", reason,
		       sizeof(reason));
	assert_int_equal(r, AUTH_PERMERROR);
	assert_non_null(strstr(reason, "revoked"));
}

/* ---- DMARC's pure parts ------------------------------------------------- */

static void test_dmarc_parse(void **state)
{
	struct auth_dmarc_record r;
	char err[120];
	const char *ok = "v=DMARC1; p=reject; sp=quarantine; adkim=s; aspf=r; pct=50; "
			 "rua=mailto:d@example.com";
	const char *bad[] = {
		"v=DMARC1",                   /* no p */
		"p=reject; v=DMARC1",         /* v not first */
		"v=dmarc1; p=reject",
		"v=DMARC1; p=block",
		"v=DMARC1; p=none; pct=101",
		"v=DMARC1; p=none; adkim=x",
		"",
	};
	size_t i;

	(void)state;
	assert_int_equal(auth_dmarc_parse(ok, strlen(ok), &r, err, sizeof(err)), 0);
	assert_int_equal(r.p, DMARC_P_REJECT);
	assert_int_equal(r.sp, DMARC_P_QUARANTINE);
	assert_true(r.adkim_strict);
	assert_false(r.aspf_strict);
	assert_int_equal(r.pct, 50);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (auth_dmarc_parse(bad[i], strlen(bad[i]), &r, err, sizeof(err)) != -1)
			fail_msg("\"%s\": got ok, want an error", bad[i]);
}

struct from_case {
	const char *v;
	const char *want; /* NULL: -1 */
};

static const struct from_case from_cases[] = {
	{ " Joe SixPack <joe@Football.Example.com>", "football.example.com" },
	{ " joe@example.com", "example.com" },
	{ " joe@example.com (Joe, \"the\" man)", "example.com" },
	{ " \"Doe, John\" <john@example.org>", "example.org" },
	{ " \"a@b.com\" <x@c.example>", "c.example" },
	{ " a@b.example, c@d.example", NULL },
	{ " undisclosed", NULL },
	{ " <>", NULL },
	{ " Joe <joe@[192.0.2.1]>", NULL },
	{ " <a@b.example", NULL },
	{ "", NULL },
};

static void test_from_domain(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(from_cases) / sizeof(from_cases[0]); i++) {
		char out[256];
		int rc = auth_from_domain(from_cases[i].v, strlen(from_cases[i].v), out,
					  sizeof(out));

		if (from_cases[i].want == NULL && rc != -1)
			fail_msg("\"%s\": got %s, want an error", from_cases[i].v, out);
		if (from_cases[i].want != NULL &&
		    (rc != 0 || strcmp(out, from_cases[i].want) != 0))
			fail_msg("\"%s\": got %s, want %s", from_cases[i].v, rc == 0 ? out : "error",
				 from_cases[i].want);
	}
}

static void test_org_domain(void **state)
{
	char out[256];

	(void)state;
	assert_int_equal(auth_org_domain("mail.sub.Example.COM", out, sizeof(out)), 0);
	assert_string_equal(out, "example.com");
	assert_int_equal(auth_org_domain("a.b.example.co.uk", out, sizeof(out)), 0);
	assert_string_equal(out, "example.co.uk");
	assert_int_equal(auth_org_domain("x.example.test", out, sizeof(out)), 0);
	assert_string_equal(out, "example.test");
	assert_int_equal(auth_org_domain("co.uk", out, sizeof(out)), 0);
	assert_string_equal(out, "co.uk");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_canon_rfc_example),
		cmocka_unit_test(test_canon_body_cases),
		cmocka_unit_test(test_sig_parse),
		cmocka_unit_test(test_sig_parse_fields),
		cmocka_unit_test(test_key_parse),
		cmocka_unit_test(test_rfc8463_vectors),
		cmocka_unit_test(test_dmarc_parse),
		cmocka_unit_test(test_from_domain),
		cmocka_unit_test(test_org_domain),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
