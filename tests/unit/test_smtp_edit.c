/*
 * Unit tests for the streaming header editor (daemon/smtp/smtp_edit.c):
 * each case is fed whole, byte by byte, and split in two at every offset;
 * every way must give the wanted output.  Also the plus-address mapping
 * and the edit builder of daemon/queue/queue_edit.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "queue/queue.h"
#include "smtp/smtp_edit.h"
#include "util/util.h"

static const char *const drop_imp[] = { "X-Moat-Folder", "Importance", "X-Priority" };

struct edit_case {
	const char *name;
	const char *add;
	const char *prefix;
	int drop;         /* drop_imp */
	const char *in;
	const char *want;
};

static const struct edit_case cases[] = {
	{ "no edit is the identity", NULL, NULL, 0,
	  "Received: x\r\nSubject: hi\r\n\r\nbody\r\n.\r\n",
	  "Received: x\r\nSubject: hi\r\n\r\nbody\r\n.\r\n" },
	{ "added after the first Received and its continuation", "X-A: 1\r\n", NULL, 0,
	  "Received: from a\r\n\tby b\r\nReceived: c\r\nSubject: s\r\n\r\nB\r\n",
	  "Received: from a\r\n\tby b\r\nX-A: 1\r\nReceived: c\r\nSubject: s\r\n\r\nB\r\n" },
	{ "added first when the first field is not Received", "X-A: 1\r\n", NULL, 0,
	  "From: a@b\r\nReceived: c\r\n\r\nB",
	  "X-A: 1\r\nFrom: a@b\r\nReceived: c\r\n\r\nB" },
	{ "subject prefixed", NULL, "[X] ", 0,
	  "Received: r\r\nSubject: hello\r\n\r\nSubject: body stays\r\n",
	  "Received: r\r\nSubject: [X] hello\r\n\r\nSubject: body stays\r\n" },
	{ "folded subject", NULL, "[X] ", 0,
	  "Subject: a long\r\n subject line\r\nTo: t\r\n\r\n",
	  "Subject: [X] a long\r\n subject line\r\nTo: t\r\n\r\n" },
	{ "subject folded at once", NULL, "[X] ", 0,
	  "Subject:\r\n folded\r\n\r\n",
	  "Subject: [X]\r\n folded\r\n\r\n" },
	{ "subject without space, odd case", NULL, "[X] ", 0,
	  "sUBJECT:hi\r\n\r\n", "sUBJECT: [X] hi\r\n\r\n" },
	{ "only the first Subject", NULL, "[X] ", 0,
	  "Subject: a\r\nSubject: b\r\n\r\n", "Subject: [X] a\r\nSubject: b\r\n\r\n" },
	{ "missing subject added", "X-A: 1\r\n", "[X] ", 0,
	  "Received: r\r\nFrom: f\r\n\r\nbody",
	  "Received: r\r\nX-A: 1\r\nFrom: f\r\nSubject: [X]\r\n\r\nbody" },
	{ "importance replaced with folded old ones", "Importance: high\r\n", NULL, 1,
	  "Importance: low\r\n cont\r\nX-Priority: 5\r\nX-Moat-Folder: Junk\r\nTo: t\r\n\r\nX-Priority: 5\r\n",
	  "Importance: high\r\nTo: t\r\n\r\nX-Priority: 5\r\n" },
	{ "header only, no blank line", "X-A: 1\r\n", "[P] ", 0,
	  "From: f\r\nTo: t", "X-A: 1\r\nFrom: f\r\nTo: t\r\nSubject: [P]\r\n" },
	{ "empty message", "X-A: 1\r\n", NULL, 0, "", "X-A: 1\r\n" },
	{ "bare LF lines", "X-A: 1\r\n", "[X] ", 0,
	  "Received: r\nSubject: s\n\nb\n", "Received: r\nX-A: 1\r\nSubject: [X] s\n\nb\n" },
	{ "line without colon passes", "X-A: 1\r\n", NULL, 0,
	  "garbage line\r\n\r\n", "X-A: 1\r\ngarbage line\r\n\r\n" },
	{ "long field name passes",
	  NULL, "[X] ", 0,
	  "X-Very-Long-Name-Xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx: v\r\n\r\n",
	  "X-Very-Long-Name-Xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx: v\r\n"
	  "Subject: [X]\r\n\r\n" },
	{ "body is never touched", "X-A: 1\r\n", "[X] ", 1,
	  "Subject: s\r\n\r\nImportance: low\r\nSubject: t\r\n\r\n",
	  "X-A: 1\r\nSubject: [X] s\r\n\r\nImportance: low\r\nSubject: t\r\n\r\n" },
};

static void out_cb(void *arg, const char *p, size_t n)
{
	struct dynbuf *b = arg;

	assert_int_equal(dynbuf_add(b, p, n), 0);
}

static void run(const struct edit_case *c, const size_t *cuts, size_t ncuts, const char *how)
{
	struct smtp_edit_spec spec = { c->add, c->add ? strlen(c->add) : 0, c->prefix,
				       drop_imp, c->drop ? 3 : 1 };
	struct smtp_edit e;
	struct dynbuf b;
	size_t len = strlen(c->in);
	size_t pos = 0;
	size_t i;

	dynbuf_init(&b, 1 << 20);
	smtp_edit_init(&e, &spec);
	for (i = 0; i <= ncuts; i++) {
		size_t end = i < ncuts ? cuts[i] : len;

		smtp_edit_push(&e, c->in + pos, end - pos, out_cb, &b);
		pos = end;
	}
	smtp_edit_finish(&e, out_cb, &b);
	if (b.len != strlen(c->want) || memcmp(b.data ? b.data : "", c->want, b.len) != 0)
		fail_msg("%s (%s): got \"%.*s\", want \"%s\"", c->name, how, (int)b.len,
			 b.data ? b.data : "", c->want);
	dynbuf_free(&b);
}

static void test_every_split(void **state)
{
	size_t k, cut;

	(void)state;
	for (k = 0; k < ARRAY_LEN(cases); k++) {
		const struct edit_case *c = &cases[k];
		size_t len = strlen(c->in);
		size_t all[512];
		size_t i;

		run(c, NULL, 0, "whole");
		for (cut = 0; cut <= len; cut++) {
			char how[32];

			snprintf(how, sizeof(how), "split at %zu", cut);
			run(c, &cut, 1, how);
		}
		assert_true(len < ARRAY_LEN(all));
		for (i = 0; i < len; i++)
			all[i] = i;
		run(c, all, len, "byte by byte");
	}
}

struct plus_case {
	const char *rcpt;
	const char *folder;
	char sep;
	const char *want; /* NULL: skipped */
};

static const struct plus_case plus_cases[] = {
	{ "alice@example.org", "Projects/Ship-7", '.', "alice+Projects.Ship-7@example.org" },
	{ "alice@example.org", "A/B", '/', "alice+A/B@example.org" },
	{ "alice@example.org", "A/B", '_', "alice+A_B@example.org" },
	{ "alice@example.org", "Inbox", '.', "alice+Inbox@example.org" },
	{ "alice@example.org", "With space", '.', NULL },
	{ "alice@example.org", "Caf\xc3\xa9", '.', NULL },
	{ "alice@example.org", "A./B", '.', NULL },        /* two dots */
	{ "alice@example.org", "A/", '.', NULL },          /* dot at the end */
	{ "alice+x@example.org", "A", '.', NULL },         /* already a detail */
	{ "\"a b\"@example.org", "A", '.', NULL },
	{ "alice@example.org", "a123456789a123456789a123456789a123456789a123456789a12345678", '.',
	  NULL },                                          /* over 64 */
};

static void test_plus(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < ARRAY_LEN(plus_cases); i++) {
		const struct plus_case *c = &plus_cases[i];
		char out[300];
		const char *why = NULL;
		int rc = queue_edit_plus(c->rcpt, c->folder, c->sep, out, sizeof(out), &why);

		if (c->want == NULL && rc == 0)
			fail_msg("%s %s: got %s, want skipped", c->rcpt, c->folder, out);
		if (c->want != NULL && (rc != 0 || strcmp(out, c->want) != 0))
			fail_msg("%s %s: got %s, want %s", c->rcpt, c->folder,
				 rc == 0 ? out : why, c->want);
	}
}

static void test_edit_build(void **state)
{
	struct queue_edit e;
	char err[128];

	(void)state;
	assert_int_equal(queue_edit_parse("{\"folder\":\"A/B\",\"subject_prefix\":\"[X] \","
					  "\"headers\":[\"X-Moat-Forwarded: a@b\",\"Bad\\r\\nX: y\","
					  "\"NoColon\"],\"importance\":\"high\"}",
					  &e, err, sizeof(err)), 0);
	queue_edit_spec(&e, 1);
	assert_string_equal(e.add, "X-Moat-Forwarded: a@b\r\nX-Moat-Folder: A/B\r\n"
			    "Importance: high\r\nX-Priority: 1 (Highest)\r\n");
	assert_string_equal(e.subject_prefix, "[X] ");
	assert_int_equal(e.spec.ndrop, 3);
	assert_non_null(strstr(e.warn, "header left out"));
	queue_edit_free(&e);

	/* Not ASCII: RFC 2047 encoded words. */
	assert_int_equal(queue_edit_parse("{\"folder\":\"Caf\xc3\xa9\",\"subject_prefix\":"
					  "\"[\xc3\x9c] \"}", &e, err, sizeof(err)), 0);
	queue_edit_spec(&e, 1);
	assert_string_equal(e.add, "X-Moat-Folder: =?UTF-8?B?Q2Fmw6k=?=\r\n");
	assert_string_equal(e.subject_prefix, "=?UTF-8?B?W8OcXSA=?= ");
	queue_edit_free(&e);

	/* A folded field moatd wrote (a DKIM signature, the score): kept as it is. */
	assert_int_equal(queue_edit_parse("{\"headers\":[\"DKIM-Signature: v=1; a=rsa-sha256;\\r\\n\\t"
					  "b=abc\",\"X-Bad: a\\r\\nb\"]}", &e, err, sizeof(err)), 0);
	queue_edit_spec(&e, 1);
	assert_string_equal(e.add, "DKIM-Signature: v=1; a=rsa-sha256;\r\n\tb=abc\r\n");
	assert_non_null(strstr(e.warn, "header left out"));
	queue_edit_free(&e);

	assert_int_equal(queue_edit_parse("[1]", &e, err, sizeof(err)), -1);
	queue_edit_free(&e);
	assert_int_equal(queue_edit_parse("{\"folder\":\"a", &e, err, sizeof(err)), -1);
	queue_edit_free(&e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_split),
		cmocka_unit_test(test_plus),
		cmocka_unit_test(test_edit_build),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
