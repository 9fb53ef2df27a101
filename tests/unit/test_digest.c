/*
 * Unit tests for the pure parts of quarantine digests (daemon/digest): link
 * tokens (sign, verify, forged, expired, malformed), template checking and
 * rendering (placeholders, HTML escaping), and the message's shape.
 * Table-driven; error cases first-class.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "digest/digest.h"
#include "util/util.h"

static const unsigned char key[DIGEST_KEY_LEN] = "0123456789abcdef0123456789abcdef";
static const unsigned char other[DIGEST_KEY_LEN] = "fedcba9876543210fedcba9876543210";

static void sample(struct digest_link *l)
{
	memset(l, 0, sizeof(*l));
	strlcpy_s(l->rcpt, "alice@example.org", sizeof(l->rcpt));
	l->user_id = 7;
	l->item_id = 42;
	l->action = DIGEST_ALLOW;
	l->expires = 2000000000;
	strlcpy_s(l->nonce, "00112233445566778899aabbccddeeff", sizeof(l->nonce));
}

static void test_link_roundtrip(void **state)
{
	struct digest_link l, got;
	char tok[DIGEST_TOKEN_MAX];

	(void)state;
	sample(&l);
	assert_int_equal(digest_link_sign(key, &l, tok, sizeof(tok)), 0);
	assert_non_null(strchr(tok, '.'));
	assert_null(strpbrk(tok, "+/="));
	assert_int_equal(digest_link_verify(key, tok, strlen(tok), 1900000000, &got),
			 DIGEST_LINK_OK);
	assert_string_equal(got.rcpt, "alice@example.org");
	assert_int_equal(got.user_id, 7);
	assert_int_equal(got.item_id, 42);
	assert_int_equal(got.action, DIGEST_ALLOW);
	assert_string_equal(got.nonce, l.nonce);
	/* At and after the expiry: expired, never OK. */
	assert_int_equal(digest_link_verify(key, tok, strlen(tok), 2000000000, &got),
			 DIGEST_LINK_EXPIRED);
	/* Another key: forged. */
	assert_int_equal(digest_link_verify(other, tok, strlen(tok), 1900000000, &got),
			 DIGEST_LINK_FORGED);
	/* No key loaded: forged. */
	assert_int_equal(digest_link_verify(NULL, tok, strlen(tok), 1900000000, &got),
			 DIGEST_LINK_FORGED);
	/* Too small a buffer. */
	assert_int_equal(digest_link_sign(key, &l, tok, 40), -1);
}

static void test_link_tampered(void **state)
{
	struct digest_link l, got;
	char tok[DIGEST_TOKEN_MAX];
	char bad[DIGEST_TOKEN_MAX];
	size_t i, n;

	(void)state;
	sample(&l);
	assert_int_equal(digest_link_sign(key, &l, tok, sizeof(tok)), 0);
	n = strlen(tok);
	/* Every single changed character is caught. */
	for (i = 0; i < n; i++) {
		memcpy(bad, tok, n + 1);
		bad[i] = bad[i] == 'A' ? 'B' : 'A';
		if (strcmp(bad, tok) == 0)
			continue;
		if (digest_link_verify(key, bad, n, 1900000000, &got) != DIGEST_LINK_FORGED)
			fail_msg("changed character %zu of %s: got accepted", i, tok);
	}
	/* Cut anywhere: forged. */
	for (i = 0; i < n; i++)
		assert_int_equal(digest_link_verify(key, tok, i, 1900000000, &got),
				 DIGEST_LINK_FORGED);
}

static void test_link_malformed(void **state)
{
	static const char *const cases[] = {
		"", ".", "a.", ".a", "abc", "a.b.c", "!!!!.????", "eyJ9.AAAA",
		"e30.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
	};
	struct digest_link got;
	char big[DIGEST_TOKEN_MAX + 10];
	size_t i;

	(void)state;
	for (i = 0; i < ARRAY_LEN(cases); i++)
		if (digest_link_verify(key, cases[i], strlen(cases[i]), 0, &got) !=
		    DIGEST_LINK_FORGED)
			fail_msg("case %zu \"%s\": got accepted, want forged", i, cases[i]);
	memset(big, 'A', sizeof(big));
	big[100] = '.';
	assert_int_equal(digest_link_verify(key, big, sizeof(big), 0, &got), DIGEST_LINK_FORGED);
}

static void test_template_check(void **state)
{
	static const struct {
		const char *subject, *text, *html;
		const char *field; /* NULL: accepted */
	} cases[] = {
		{ "Held: {{count}}", "{{items}}", "<p>{{items}}</p>", NULL },
		{ "{{ user }} {{address}}", "{{console}} {{user}}", "x", NULL },
		{ "plain", "no placeholders", "<b>none</b>", NULL },
		{ "", "t", "h", "subject" },
		{ "two\nlines", "t", "h", "subject" },
		{ "{{items}}", "t", "h", "subject" },
		{ "{{console}}", "t", "h", "subject" },
		{ "s", "{{unknown}}", "h", "text" },
		{ "s", "{{user", "h", "text" },
		{ "s", "", "h", "text" },
		{ "s", "t", "{{Items}}", "html" },
		{ "s", "t", "{{}}", "html" },
	};
	size_t i;

	(void)state;
	for (i = 0; i < ARRAY_LEN(cases); i++) {
		struct digest_template t = { cases[i].subject, cases[i].text, cases[i].html };
		const char *field = NULL;
		char err[300];
		int rc = digest_template_check(&t, &field, err, sizeof(err));

		if (cases[i].field == NULL && rc != 0)
			fail_msg("case %zu: got refused (%s: %s), want accepted", i, field, err);
		if (cases[i].field != NULL && (rc == 0 || strcmp(field, cases[i].field) != 0))
			fail_msg("case %zu: got %s, want field %s", i, rc == 0 ? "accepted" : field,
				 cases[i].field);
	}
	assert_int_equal(digest_template_check(&digest_template_default, &(const char *){ NULL },
					       (char[300]){ 0 }, 300), 0);
}

static void test_render_escapes(void **state)
{
	struct digest_entry e;
	struct digest_view v;
	struct digest_template t = { "{{count}} for {{user}}", "T {{items}}",
				     "<p>{{user}}</p>{{items}}" };
	struct dynbuf s, tx, h, msg;
	struct digest_mail m;

	(void)state;
	memset(&e, 0, sizeof(e));
	e.rcpt = "a@example.org";
	e.kind = "spam";
	e.reason = "rule 1 <b>x</b>";
	e.sender = "s@example.net";
	e.subject = "<script>alert(1)</script> & \"q\"";
	e.created_at = 1700000000000;
	strlcpy_s(e.release, "http://h/q/a.b", sizeof(e.release));
	strlcpy_s(e.del, "http://h/q/c.d", sizeof(e.del));
	v.user = "<i>bob</i>";
	v.address = "bob@example.org";
	v.count = 3;
	v.items = &e;
	v.nitems = 1;
	v.console = "http://h/my/quarantine";
	dynbuf_init(&s, 4096);
	dynbuf_init(&tx, 65536);
	dynbuf_init(&h, 65536);
	assert_int_equal(digest_render(&t, &v, &s, &tx, &h), 0);
	assert_string_equal(s.data, "3 for <i>bob</i>");
	assert_non_null(strstr(tx.data, "<script>alert(1)</script> & \"q\""));
	assert_non_null(strstr(tx.data, "Release:      http://h/q/a.b"));
	assert_null(strstr(tx.data, "Allow sender"));      /* no allow URL, no line */
	assert_non_null(strstr(tx.data, "and 2 more"));
	assert_null(strstr(h.data, "<script>"));
	assert_null(strstr(h.data, "<i>bob"));
	assert_non_null(strstr(h.data, "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;q&quot;"));
	assert_non_null(strstr(h.data, "rule 1 &lt;b&gt;x&lt;/b&gt;"));
	assert_non_null(strstr(h.data, "<a href=\"http://h/q/c.d\">Delete</a>"));

	m.from = "postmaster@example.org";
	m.to = "bob@example.org";
	m.hostname = "mx.example.org";
	m.id = "abc";
	m.now_ms = 1700000000000;
	m.subject = "Gr\xc3\xbc\xc3\x9f""e aus K\xc3\xb6ln, viele Gr\xc3\xbc\xc3\x9f""e, "
		    "noch mehr Gr\xc3\xbc\xc3\x9f""e";
	m.text = tx.data;
	m.html = h.data;
	dynbuf_init(&msg, 1 << 20);
	assert_int_equal(digest_message(&msg, &m), 0);
	assert_int_equal(dynbuf_add(&msg, "", 1), 0);
	assert_non_null(strstr(msg.data, "Subject: =?UTF-8?B?"));
	assert_non_null(strstr(msg.data, "?=\r\n =?UTF-8?B?"));  /* folded words */
	assert_non_null(strstr(msg.data, "multipart/alternative; boundary=\"=_moat_abc\""));
	assert_non_null(strstr(msg.data, "\r\n--=_moat_abc--\r\n"));
	{
		/* No line longer than 998 octets, no bare LF. */
		const char *p = msg.data;
		size_t len = 0;

		for (; *p != '\0'; p++) {
			if (*p == '\n') {
				assert_true(p > msg.data && p[-1] == '\r');
				len = 0;
				continue;
			}
			assert_true(++len <= 998);
		}
	}
	dynbuf_free(&s);
	dynbuf_free(&tx);
	dynbuf_free(&h);
	dynbuf_free(&msg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_link_roundtrip),
		cmocka_unit_test(test_link_tampered),
		cmocka_unit_test(test_link_malformed),
		cmocka_unit_test(test_template_check),
		cmocka_unit_test(test_render_escapes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
