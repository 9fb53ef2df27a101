/*
 * Unit tests for DKIM signing (daemon/score/dkim_sign.c): messages signed
 * by dkim_sign_message() verify with the module's own verifier
 * (auth_dkim_verify(), given the DNS record dkim_dns_value() made) for RSA
 * and Ed25519 keys; relaxed canonicalisation lets whitespace changes pass
 * and content changes fail; an oversigned field added later fails; the key
 * is chosen by the From: domain, else its nearest parent, the newest key
 * of a domain first; the error cases; base64 and the DNS record helpers.
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
#include "score/dkim_sign.h"
#include "util/util.h"

#define NOW 1767225600 /* 2026-01-01 */

struct kp {
	enum auth_dkim_alg alg;
	char *pem;
	char *pub;
};

static struct kp rsa1024, rsa2048, ed;

static void make(struct kp *k, enum auth_dkim_alg alg, int bits)
{
	char err[200];

	k->alg = alg;
	if (dkim_key_generate(alg, bits, &k->pem, &k->pub, err, sizeof(err)) != 0)
		fail_msg("generate: %s", err);
}

static int setup(void **state)
{
	(void)state;
	make(&rsa1024, DKIM_RSA_SHA256, 1024);
	make(&rsa2048, DKIM_RSA_SHA256, 2048);
	make(&ed, DKIM_ED25519_SHA256, 0);
	return 0;
}

static int teardown(void **state)
{
	struct kp *all[] = { &rsa1024, &rsa2048, &ed };

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(all); i++) {
		free(all[i]->pem);
		free(all[i]->pub);
	}
	return 0;
}

static struct dkim_keyset *one_key(const struct kp *k, const char *domain, const char *sel)
{
	struct dkim_keyset *ks = dkim_keyset_new();
	char err[200];

	if (dkim_keyset_add(ks, 1, domain, sel, k->alg, k->pem, err, sizeof(err)) != 0)
		fail_msg("keyset add: %s", err);
	return ks;
}

/* The signed message: the field, a line break, msg (malloc'ed). */
static char *sign(const struct dkim_keyset *ks, const char *msg)
{
	char err[300];
	char *field = NULL;
	char *out;
	int rc = dkim_sign_message_at(ks, msg, strlen(msg), NOW, &field, err, sizeof(err));

	if (rc != 1)
		fail_msg("sign: got %d (%s), want 1", rc, rc < 0 ? err : "no key");
	out = xmalloc(strlen(field) + strlen(msg) + 3);
	snprintf(out, strlen(field) + strlen(msg) + 3, "%s\r\n%s", field, msg);
	free(field);
	return out;
}

/* Verify the first field of signed (a DKIM-Signature) with the key record of k. */
static enum auth_res verify(const char *signed_msg, const struct kp *k, char *reason, size_t rsz,
			    struct auth_dkim_sig *sig)
{
	static struct auth_hfield f[64];
	const char *sep = strstr(signed_msg, "\r\n\r\n");
	const char *lfsep = strstr(signed_msg, "\n\n");
	size_t hlen, blen;
	struct auth_msg m;
	struct auth_dkim_bodies *bodies;
	struct auth_dkim_key key;
	char *rec = dkim_dns_value(k->alg, k->pub);
	char err[200];
	const char *v;
	enum auth_res r;
	long n;

	if (sep == NULL && lfsep == NULL) {
		/* no body: the whole message is the header section */
		hlen = strlen(signed_msg);
		blen = 0;
		m.body = "";
	} else if (sep == NULL || (lfsep != NULL && lfsep < sep)) {
		hlen = (size_t)(lfsep - signed_msg) + 1;
		blen = strlen(lfsep + 2);
		m.body = lfsep + 2;
	} else {
		hlen = (size_t)(sep - signed_msg) + 2;
		blen = strlen(sep + 4);
		m.body = sep + 4;
	}
	m.header = signed_msg;
	m.header_len = hlen;
	m.body_len = blen;
	n = auth_header_split(signed_msg, hlen, f, 64);
	assert_true(n > 0);
	assert_true(ascii_prefix(f[0].p, f[0].len, "DKIM-Signature:"));
	v = memchr(f[0].p, ':', f[0].len) + 1;
	if (auth_dkim_sig_parse(v, (size_t)(f[0].p + f[0].len - v), sig, err, sizeof(err)) != 0)
		fail_msg("signature does not parse: %s", err);
	if (auth_dkim_key_parse(rec, strlen(rec), &key, err, sizeof(err)) != 0)
		fail_msg("key record does not parse: %s", err);
	bodies = auth_dkim_bodies_new(&m);
	r = auth_dkim_verify(f, (size_t)n, 0, sig, &key, bodies, NOW + 10, reason, rsz);
	auth_dkim_bodies_free(bodies);
	free(rec);
	return r;
}

static const struct {
	const char *name;
	const char *msg;
} messages[] = {
	{ "crlf", "From: Alice <alice@example.com>\r\nTo: bob@example.org\r\n"
		  "Subject: hello\r\nDate: Thu, 1 Jan 2026 00:00:00 +0000\r\n"
		  "Message-ID: <1@example.com>\r\n\r\nHi Bob.\r\n\r\nAlice\r\n" },
	{ "bare lf", "From: alice@example.com\nTo: bob@example.org\nSubject: lf\n\nline one\n"
		     "line two\n" },
	{ "folded, spaced header", "From:   \"Alice A.\"\r\n  <alice@example.com>\r\n"
				   "Subject:  a   long\r\n\tfolded subject  \r\nTo: b@example.org,\r\n"
				   " c@example.org\r\n\r\nbody  with \t spaces  \r\n\r\n\r\n\r\n" },
	{ "empty body", "From: alice@example.com\r\nSubject: nothing\r\n\r\n" },
	{ "no body at all", "From: alice@example.com\r\nSubject: nothing\r\n" },
	{ "two To fields and mime", "From: alice@example.com\r\nTo: a@example.org\r\n"
				    "To: b@example.org\r\nMIME-Version: 1.0\r\n"
				    "Content-Type: text/plain; charset=utf-8\r\n"
				    "Content-Transfer-Encoding: 8bit\r\nX-Other: not signed\r\n\r\n"
				    "caf\xc3\xa9\r\n" },
};

static void sign_verify_with(const struct kp *k)
{
	for (size_t i = 0; i < ARRAY_LEN(messages); i++) {
		struct dkim_keyset *ks = one_key(k, "example.com", "sel1");
		char *s = sign(ks, messages[i].msg);
		struct auth_dkim_sig sig;
		char reason[200];
		enum auth_res r = verify(s, k, reason, sizeof(reason), &sig);

		if (r != AUTH_PASS)
			fail_msg("%s (%s): got %s (%s), want pass", messages[i].name,
				 dkim_alg_name(k->alg), auth_res_name(r), reason);
		assert_int_equal(sig.alg, k->alg);
		assert_int_equal(sig.hcanon, DKIM_RELAXED);
		assert_int_equal(sig.bcanon, DKIM_RELAXED);
		assert_string_equal(sig.d, "example.com");
		assert_string_equal(sig.s, "sel1");
		assert_int_equal(sig.t, NOW);
		assert_int_equal(sig.l, -1);
		free(s);
		dkim_keyset_free(ks);
	}
}

static void test_sign_verify_rsa(void **state)
{
	(void)state;
	sign_verify_with(&rsa1024);
	sign_verify_with(&rsa2048);
}

static void test_sign_verify_ed25519(void **state)
{
	(void)state;
	sign_verify_with(&ed);
}

/* h= lists the present fields, each once more than it occurs. */
static void test_oversigned_list(void **state)
{
	struct dkim_keyset *ks = one_key(&ed, "example.com", "s");
	char *s = sign(ks, messages[5].msg);
	static const char *const want[] = {
		"from", "from", "to", "to", "to", "mime-version", "mime-version", "content-type",
		"content-type", "content-transfer-encoding", "content-transfer-encoding",
	};
	struct auth_dkim_sig sig;
	char reason[200];

	(void)state;
	assert_int_equal(verify(s, &ed, reason, sizeof(reason), &sig), AUTH_PASS);
	if (sig.nh != ARRAY_LEN(want))
		fail_msg("h= has %zu names, want %zu", sig.nh, ARRAY_LEN(want));
	for (size_t i = 0; i < sig.nh; i++)
		if (strcmp(sig.h[i], want[i]) != 0)
			fail_msg("h=[%zu]: got %s, want %s", i, sig.h[i], want[i]);
	free(s);
	dkim_keyset_free(ks);
}

/* After signing: what relaxed canonicalisation forgives, and what it does not. */
static void test_changes(void **state)
{
	static const struct {
		const char *name;
		const char *from, *to;  /* replace the first from with to */
		enum auth_res want;
	} cases[] = {
		{ "unchanged", "", "", AUTH_PASS },
		{ "header whitespace", "Subject: hello", "Subject:   hello  ", AUTH_PASS },
		{ "header name case", "Subject:", "SUBJECT:", AUTH_PASS },
		{ "header refolded", "To: bob@example.org", "To:\r\n bob@example.org", AUTH_PASS },
		{ "body trailing spaces", "Hi Bob.\r\n", "Hi Bob.   \r\n", AUTH_PASS },
		{ "body blank lines added at the end", "Alice\r\n", "Alice\r\n\r\n\r\n", AUTH_PASS },
		{ "unsigned field added", "Subject:", "X-Spam: no\r\nSubject:", AUTH_PASS },
		{ "body changed", "Hi Bob.", "Hi Eve.", AUTH_FAIL },
		{ "subject changed", "Subject: hello", "Subject: hellO", AUTH_FAIL },
		{ "second Subject added", "Date:", "Subject: buy now\r\nDate:", AUTH_FAIL },
		{ "second From added", "To:", "From: mallory@example.net\r\nTo:", AUTH_FAIL },
		{ "Reply-To added", "Date:", "Reply-To: mallory@example.net\r\nDate:", AUTH_PASS },
	};
	struct kp *keys[] = { &rsa1024, &ed };

	(void)state;
	for (size_t k = 0; k < ARRAY_LEN(keys); k++) {
		struct dkim_keyset *ks = one_key(keys[k], "example.com", "sel1");
		char *s = sign(ks, messages[0].msg);

		for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
			struct dynbuf b;
			struct auth_dkim_sig sig;
			char reason[200];
			const char *at = cases[i].from[0] ? strstr(s, cases[i].from) : s;
			enum auth_res r;

			assert_non_null(at);
			dynbuf_init(&b, strlen(s) + 200);
			dynbuf_add(&b, s, (size_t)(at - s));
			dynbuf_add(&b, cases[i].to, strlen(cases[i].to));
			dynbuf_add(&b, at + strlen(cases[i].from), strlen(at + strlen(cases[i].from)));
			r = verify(b.data, keys[k], reason, sizeof(reason), &sig);
			if (r != cases[i].want)
				fail_msg("%s (%s): got %s (%s), want %s", cases[i].name,
					 dkim_alg_name(keys[k]->alg), auth_res_name(r), reason,
					 auth_res_name(cases[i].want));
			dynbuf_free(&b);
		}
		free(s);
		dkim_keyset_free(ks);
	}
}

/* The key of the From: domain, else of its nearest parent; the newest of a domain. */
static void test_key_choice(void **state)
{
	static const struct {
		const char *from;
		int want;            /* 1 signed, 0 no key */
		const char *d, *s;
	} cases[] = {
		{ "a@example.com", 1, "example.com", "new" },
		{ "a@EXAMPLE.COM", 1, "example.com", "new" },
		{ "a@sub.example.com", 1, "example.com", "new" },
		{ "a@deep.sub.example.com", 1, "example.com", "new" },
		{ "a@other.example.com", 1, "other.example.com", "o1" },
		{ "a@x.other.example.com", 1, "other.example.com", "o1" },
		{ "a@example.org", 0, "", "" },
		{ "a@notexample.com", 0, "", "" },
		{ "a@com", 0, "", "" },
	};
	struct dkim_keyset *ks = dkim_keyset_new();
	char err[300];

	(void)state;
	assert_int_equal(dkim_keyset_add(ks, 3, "example.com", "old", DKIM_ED25519_SHA256, ed.pem,
					 err, sizeof(err)), 0);
	assert_int_equal(dkim_keyset_add(ks, 9, "Example.COM", "new", DKIM_RSA_SHA256,
					 rsa1024.pem, err, sizeof(err)), 0);
	assert_int_equal(dkim_keyset_add(ks, 5, "other.example.com", "o1", DKIM_ED25519_SHA256,
					 ed.pem, err, sizeof(err)), 0);
	assert_int_equal(dkim_keyset_count(ks), 3);
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		char msg[300];
		char *field = NULL;
		int rc;

		snprintf(msg, sizeof(msg), "From: %s\r\nSubject: x\r\n\r\nbody\r\n", cases[i].from);
		rc = dkim_sign_message_at(ks, msg, strlen(msg), NOW, &field, err, sizeof(err));
		if (rc != cases[i].want)
			fail_msg("%s: got %d, want %d", cases[i].from, rc, cases[i].want);
		if (rc == 1) {
			char d[100], s[100];

			snprintf(d, sizeof(d), "d=%s;", cases[i].d);
			snprintf(s, sizeof(s), "s=%s;", cases[i].s);
			if (strstr(field, d) == NULL || strstr(field, s) == NULL)
				fail_msg("%s: got %s, want %s %s", cases[i].from, field, d, s);
		} else {
			assert_null(field);
		}
		free(field);
	}
	dkim_keyset_free(ks);
}

static void test_errors(void **state)
{
	static const struct {
		const char *name;
		const char *msg;
		int want;
	} cases[] = {
		{ "no From", "To: a@example.com\r\n\r\nx\r\n", -1 },
		{ "two From", "From: a@example.com\r\nFrom: b@example.com\r\n\r\nx\r\n", -1 },
		{ "two addresses", "From: a@example.com, b@example.com\r\n\r\nx\r\n", -1 },
		{ "From without a domain", "From: alice\r\n\r\nx\r\n", -1 },
		{ "not a header", "this is not a header\r\n\r\nx\r\n", -1 },
		{ "continuation first", " From: a@example.com\r\n\r\nx\r\n", -1 },
		{ "empty message", "", -1 },
	};
	struct dkim_keyset *ks = one_key(&ed, "example.com", "s");
	char *field = NULL;
	char err[300];

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		int rc;

		err[0] = '\0';
		rc = dkim_sign_message_at(ks, cases[i].msg, strlen(cases[i].msg), NOW, &field, err,
					  sizeof(err));
		if (rc != cases[i].want)
			fail_msg("%s: got %d, want %d", cases[i].name, rc, cases[i].want);
		assert_null(field);
		assert_true(err[0] != '\0');
	}
	/* No keyset, or an empty one: nothing to sign with, not an error. */
	assert_int_equal(dkim_sign_message(NULL, messages[0].msg, strlen(messages[0].msg), &field,
					   err, sizeof(err)), 0);
	dkim_keyset_free(ks);
	ks = dkim_keyset_new();
	assert_int_equal(dkim_sign_message(ks, messages[0].msg, strlen(messages[0].msg), &field,
					   err, sizeof(err)), 0);
	assert_null(field);
	/* A PEM that is not a key, or a key of the other algorithm. */
	assert_int_equal(dkim_keyset_add(ks, 1, "example.com", "s", DKIM_RSA_SHA256,
					 "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
					 err, sizeof(err)), -1);
	assert_int_equal(dkim_keyset_add(ks, 1, "example.com", "s", DKIM_RSA_SHA256, ed.pem, err,
					 sizeof(err)), -1);
	assert_int_equal(dkim_keyset_add(ks, 1, "example.com", "s", DKIM_ED25519_SHA256,
					 rsa1024.pem, err, sizeof(err)), -1);
	assert_null(strstr(err, "PRIVATE")); /* no key material in the error */
	assert_int_equal(dkim_keyset_count(ks), 0);
	dkim_keyset_free(ks);
}

static void test_generate_limits(void **state)
{
	static const struct {
		enum auth_dkim_alg alg;
		int bits;
		int want;
	} cases[] = {
		{ DKIM_RSA_SHA256, 512, -1 },
		{ DKIM_RSA_SHA256, 1023, -1 },
		{ DKIM_RSA_SHA256, 4097, -1 },
		{ DKIM_RSA_SHA256, 0, -1 },
	};
	char err[200];

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		char *pem = NULL, *pub = NULL;
		int rc = dkim_key_generate(cases[i].alg, cases[i].bits, &pem, &pub, err, sizeof(err));

		if (rc != cases[i].want)
			fail_msg("bits %d: got %d, want %d", cases[i].bits, rc, cases[i].want);
		assert_null(pem);
		assert_null(pub);
	}
	/* The published halves: SubjectPublicKeyInfo for RSA, 32 raw octets for Ed25519. */
	{
		unsigned char raw[600];

		assert_int_equal(auth_b64_decode(ed.pub, strlen(ed.pub), raw, sizeof(raw)), 32);
		assert_true(auth_b64_decode(rsa2048.pub, strlen(rsa2048.pub), raw, sizeof(raw)) > 256);
		assert_non_null(strstr(ed.pem, "-----BEGIN PRIVATE KEY-----"));
	}
}

static void test_b64(void **state)
{
	/* RFC 4648 10. */
	static const struct {
		const char *in, *want;
	} cases[] = {
		{ "", "" }, { "f", "Zg==" }, { "fo", "Zm8=" }, { "foo", "Zm9v" },
		{ "foob", "Zm9vYg==" }, { "fooba", "Zm9vYmE=" }, { "foobar", "Zm9vYmFy" },
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		char *got = dkim_b64_encode((const unsigned char *)cases[i].in, strlen(cases[i].in));

		if (strcmp(got, cases[i].want) != 0)
			fail_msg("b64(%s): got %s, want %s", cases[i].in, got, cases[i].want);
		free(got);
	}
	/* Longer than one encoder piece, and round trip. */
	{
		size_t n = 40000;
		unsigned char *in = xmalloc(n), *back = xmalloc(n);
		char *enc;

		for (size_t i = 0; i < n; i++)
			in[i] = (unsigned char)(i * 7 + 3);
		enc = dkim_b64_encode(in, n);
		assert_int_equal(strlen(enc), 4 * ((n + 2) / 3));
		assert_null(strchr(enc, '\n'));
		assert_int_equal(auth_b64_decode(enc, strlen(enc), back, n), (long)n);
		assert_memory_equal(in, back, n);
		free(in);
		free(back);
		free(enc);
	}
}

static void test_dns_record(void **state)
{
	char name[100];
	char *v, *z;

	(void)state;
	v = dkim_dns_value(DKIM_ED25519_SHA256, "AAAA");
	assert_string_equal(v, "v=DKIM1; k=ed25519; p=AAAA");
	z = dkim_dns_zone_text(v);
	assert_string_equal(z, "\"v=DKIM1; k=ed25519; p=AAAA\"");
	free(v);
	free(z);
	z = dkim_dns_zone_text("");
	assert_string_equal(z, "\"\"");
	free(z);

	/* An RSA 2048 record is longer than one character-string. */
	v = dkim_dns_value(DKIM_RSA_SHA256, rsa2048.pub);
	assert_true(strlen(v) > DKIM_TXT_CHUNK);
	assert_true(ascii_prefix(v, strlen(v), "v=DKIM1; k=rsa; p=MII"));
	z = dkim_dns_zone_text(v);
	{
		/* Quoted strings of at most 255 octets that join to the value. */
		struct dynbuf joined;
		const char *p = z;
		size_t strings = 0;

		dynbuf_init(&joined, strlen(z) + 1);
		while (*p != '\0') {
			const char *q;

			assert_int_equal(*p, '"');
			q = strchr(p + 1, '"');
			assert_non_null(q);
			assert_true((size_t)(q - p - 1) <= DKIM_TXT_CHUNK);
			dynbuf_add(&joined, p + 1, (size_t)(q - p - 1));
			strings++;
			p = q + 1;
			if (*p == ' ')
				p++;
		}
		assert_int_equal(strings, (strlen(v) + DKIM_TXT_CHUNK - 1) / DKIM_TXT_CHUNK);
		assert_string_equal(joined.data, v);
		dynbuf_free(&joined);
	}
	free(v);
	free(z);
	assert_int_equal(dkim_dns_name("sel1", "example.com", name, sizeof(name)), 0);
	assert_string_equal(name, "sel1._domainkey.example.com");
	assert_int_equal(dkim_dns_name("sel1", "example.com", name, 10), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sign_verify_rsa),
		cmocka_unit_test(test_sign_verify_ed25519),
		cmocka_unit_test(test_oversigned_list),
		cmocka_unit_test(test_changes),
		cmocka_unit_test(test_key_choice),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_generate_limits),
		cmocka_unit_test(test_b64),
		cmocka_unit_test(test_dns_record),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
