/*
 * Unit tests for the DATA state machine: dot-unstuffing, the one end of
 * data, bare LF/CR (SMTP smuggling), overlong lines, NUL, size, and input
 * split at every possible point.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "smtp/smtp_data.h"

struct outcome {
	enum smtp_data_status status;
	unsigned flags;
	char out[4096];
	size_t outlen;
	size_t consumed;
};

/* Header limits for run(); off unless a test sets them. */
static size_t hdr_size_limit = SIZE_MAX;
static size_t hdr_count_limit = SIZE_MAX;

/* Feed in pieces of `step` octets (0: all at once). */
static void run(const char *in, size_t len, size_t step, size_t max_line, int64_t max_size,
		struct outcome *o)
{
	struct smtp_data d;
	size_t pos = 0;

	smtp_data_init(&d, max_line, max_size);
	smtp_data_header_limits(&d, hdr_size_limit, hdr_count_limit);
	o->outlen = 0;
	o->status = SMTP_DATA_MORE;
	while (pos < len) {
		size_t n = step == 0 || len - pos < step ? len - pos : step;
		size_t outlen;
		size_t used;

		o->status = smtp_data_feed(&d, in + pos, n, o->out + o->outlen, &outlen, &used);
		o->outlen += outlen;
		pos += used;
		if (o->status != SMTP_DATA_MORE)
			break;
	}
	o->consumed = pos;
	o->flags = d.flags;
}

static const struct {
	const char *name;
	const char *in;
	enum smtp_data_status want;
	const char *want_out;   /* NULL: don't compare */
	size_t want_consumed;   /* 0: all of in */
	unsigned want_flags;
} cases[] = {
	{ "simple", "Subject: x\r\n\r\nbody\r\n.\r\n", SMTP_DATA_END,
	  "Subject: x\r\n\r\nbody\r\n", 0, 0 },
	{ "empty message", ".\r\n", SMTP_DATA_END, "", 0, 0 },
	{ "unstuff", "..x\r\n.\r\n", SMTP_DATA_END, ".x\r\n", 0, 0 },
	{ "lone dot line stuffed", "..\r\n.\r\n", SMTP_DATA_END, ".\r\n", 0, 0 },
	{ "dot mid line", "a.b\r\n.\r\n", SMTP_DATA_END, "a.b\r\n", 0, 0 },
	{ "stops after end", "a\r\n.\r\nMAIL FROM:<x@y>\r\n", SMTP_DATA_END, "a\r\n", 6, 0 },
	{ "more", "a\r\nb", SMTP_DATA_MORE, "a\r\nb", 0, 0 },
	{ "bare LF", "a\nb\r\n.\r\n", SMTP_DATA_BARE_LF, NULL, 2, 0 },
	{ "smuggling LF.LF", "a\r\n\n.\n", SMTP_DATA_BARE_LF, NULL, 4, 0 },
	{ "smuggling CR.CR", "a\r\n\r.\r", SMTP_DATA_BARE_CR, NULL, 5, 0 },
	{ "bare CR", "a\rb\r\n.\r\n", SMTP_DATA_BARE_CR, NULL, 3, 0 },
	{ "dot then LF", "a\r\n.\n", SMTP_DATA_BARE_LF, NULL, 5, 0 },
	{ "dot CR then x", "a\r\n.\rx", SMTP_DATA_BARE_CR, NULL, 6, 0 },
	{ "NUL", "a\0b\r\n.\r\n", SMTP_DATA_END, NULL, 0, SMTP_DATA_ERR_NUL },
	{ "8bit", "\xc3\xbc\r\n.\r\n", SMTP_DATA_END, "\xc3\xbc\r\n", 0, SMTP_DATA_8BIT },
};

static void test_cases(void **state)
{
	size_t i;
	size_t step;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		/* "NUL" holds an embedded NUL: measure up to the end marker. */
		size_t len = strlen(cases[i].in);

		if (strcmp(cases[i].name, "NUL") == 0)
			len = 8;
		for (step = 0; step <= len; step++) {
			struct outcome o;
			size_t want_consumed = cases[i].want_consumed ? cases[i].want_consumed : len;

			run(cases[i].in, len, step, 1000, 1 << 20, &o);
			if (o.status != cases[i].want)
				fail_msg("%s (step %zu): got status %d, want %d", cases[i].name,
					 step, o.status, cases[i].want);
			if (o.consumed != want_consumed)
				fail_msg("%s (step %zu): got consumed %zu, want %zu", cases[i].name,
					 step, o.consumed, want_consumed);
			if ((o.flags & cases[i].want_flags) != cases[i].want_flags)
				fail_msg("%s (step %zu): got flags %#x, want %#x", cases[i].name,
					 step, o.flags, cases[i].want_flags);
			if (cases[i].want_out != NULL &&
			    (o.outlen != strlen(cases[i].want_out) ||
			     memcmp(o.out, cases[i].want_out, o.outlen) != 0))
				fail_msg("%s (step %zu): got output '%.*s', want '%s'",
					 cases[i].name, step, (int)o.outlen, o.out,
					 cases[i].want_out);
		}
	}
}

static void test_line_limit(void **state)
{
	char in[1100];
	struct outcome o;

	(void)state;
	/* 998 octets + CRLF = 1000: allowed. */
	memset(in, 'x', 998);
	memcpy(in + 998, "\r\n.\r\n", 5);
	run(in, 1003, 0, 1000, 1 << 20, &o);
	if (o.status != SMTP_DATA_END || (o.flags & SMTP_DATA_ERR_LINE))
		fail_msg("998 octets: got status %d flags %#x, want END without ERR_LINE",
			 o.status, o.flags);
	/* 999 octets + CRLF = 1001: refused, but consumed to the end. */
	memset(in, 'x', 999);
	memcpy(in + 999, "\r\n.\r\n", 5);
	run(in, 1004, 7, 1000, 1 << 20, &o);
	if (o.status != SMTP_DATA_END || !(o.flags & SMTP_DATA_ERR_LINE))
		fail_msg("999 octets: got status %d flags %#x, want END with ERR_LINE",
			 o.status, o.flags);
	/* A stuffed dot counts on the wire: "." + 998 octets is 1001 with CRLF. */
	in[0] = '.';
	memset(in + 1, 'x', 998);
	memcpy(in + 999, "\r\n.\r\n", 5);
	run(in, 1004, 0, 1000, 1 << 20, &o);
	if (!(o.flags & SMTP_DATA_ERR_LINE))
		fail_msg("stuffed 999 octets: got flags %#x, want ERR_LINE", o.flags);
}

static void test_size_limit(void **state)
{
	const char *in = "0123456789\r\n0123456789\r\n.\r\n";
	struct outcome o;

	(void)state;
	run(in, strlen(in), 0, 1000, 24, &o);
	if (o.status != SMTP_DATA_END || (o.flags & SMTP_DATA_ERR_SIZE) || o.outlen != 24)
		fail_msg("exact size: got status %d flags %#x outlen %zu, want END, no error, 24",
			 o.status, o.flags, o.outlen);
	run(in, strlen(in), 3, 1000, 23, &o);
	if (o.status != SMTP_DATA_END || !(o.flags & SMTP_DATA_ERR_SIZE) ||
	    o.consumed != strlen(in))
		fail_msg("over size: got status %d flags %#x consumed %zu, want END with ERR_SIZE",
			 o.status, o.flags, o.consumed);
}

/*
 * Header limits: a field's size is its unstuffed octets with the CRLF of
 * each of its lines, folded continuations included; the header section
 * ends at the empty line or at the first line that is not a field.
 */
static const struct {
	const char *name;
	const char *in;
	size_t max_size;
	size_t max_count;
	unsigned want_flags;   /* of the two header flags */
} hdr_cases[] = {
	{ "field at size", "Subject: abcd\r\n\r\nbody\r\n.\r\n", 15, 100, 0 },
	{ "field one over", "Subject: abcd\r\n\r\nbody\r\n.\r\n", 14, 100,
	  SMTP_DATA_ERR_HDR_SIZE },
	{ "folded at size", "X: a\r\n b\r\n\tc\r\n\r\n.\r\n", 14, 100, 0 },
	{ "folded one over", "X: a\r\n b\r\n\tc\r\n\r\n.\r\n", 13, 100,
	  SMTP_DATA_ERR_HDR_SIZE },
	{ "second field over", "A: 1\r\nB: 22222\r\n\r\n.\r\n", 9, 100,
	  SMTP_DATA_ERR_HDR_SIZE },
	{ "stuffed dot counts once", "..X: y\r\n\r\n.\r\n", 7, 100, 0 },
	{ "count at limit", "A: 1\r\nB: 2\r\nC: 3\r\n\r\n.\r\n", 100, 3, 0 },
	{ "count one over", "A: 1\r\nB: 2\r\nC: 3\r\n\r\n.\r\n", 100, 2,
	  SMTP_DATA_ERR_HDR_COUNT },
	{ "continuations are one field", "A: 1\r\n 2\r\n 3\r\n\r\n.\r\n", 100, 1, 0 },
	{ "body lines not counted", "A: 1\r\n\r\nB: 2\r\nC: 3333333333\r\n.\r\n", 8, 1, 0 },
	{ "no header section", "no header here\r\nB: 2\r\nC: 3\r\n.\r\n", 100, 1, 0 },
	{ "non-field line ends headers", "A: 1\r\nnot a field\r\nB: 2\r\n.\r\n", 100, 1, 0 },
	{ "leading space is body", " A: 1\r\nB: 2\r\nC: 3\r\n.\r\n", 100, 1, 0 },
	{ "empty name is body", ": x\r\nB: 2\r\nC: 3\r\n.\r\n", 100, 1, 0 },
	{ "long body line", "A: 1\r\n\r\nxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\r\n.\r\n", 8, 100, 0 },
	{ "no empty line before dot", "A: 1\r\nB: 2\r\n.\r\n", 100, 1,
	  SMTP_DATA_ERR_HDR_COUNT },
};

static void test_header_limits(void **state)
{
	size_t i;
	size_t step;
	struct outcome o;

	(void)state;
	for (i = 0; i < sizeof(hdr_cases) / sizeof(hdr_cases[0]); i++) {
		for (step = 0; step <= 3; step++) {
			unsigned got;

			hdr_size_limit = hdr_cases[i].max_size;
			hdr_count_limit = hdr_cases[i].max_count;
			run(hdr_cases[i].in, strlen(hdr_cases[i].in), step, 1000, 1 << 20, &o);
			got = o.flags & (SMTP_DATA_ERR_HDR_SIZE | SMTP_DATA_ERR_HDR_COUNT);
			if (o.status != SMTP_DATA_END || o.consumed != strlen(hdr_cases[i].in))
				fail_msg("%s (step %zu): got status %d consumed %zu, want END"
					 " and all input", hdr_cases[i].name, step, o.status,
					 o.consumed);
			if (got != hdr_cases[i].want_flags)
				fail_msg("%s (step %zu): got header flags %#x, want %#x",
					 hdr_cases[i].name, step, got, hdr_cases[i].want_flags);
		}
	}
	hdr_size_limit = SIZE_MAX;
	hdr_count_limit = SIZE_MAX;
}

/* The first Message-ID field, found whatever the split of the input. */
static void test_message_id(void **state)
{
	static const struct {
		const char *name;
		const char *in;
		int want_rc;
		const char *want;
	} mid_cases[] = {
		{ "plain", "Subject: x\r\nMessage-ID: <a.b@example.net>\r\n\r\nbody\r\n.\r\n",
		  0, "a.b@example.net" },
		{ "case and folding", "message-id:\r\n  <f@x.example>\r\nTo: y\r\n\r\n.\r\n",
		  0, "f@x.example" },
		{ "first of two", "Message-Id: <1@x>\r\nMessage-Id: <2@x>\r\n\r\n.\r\n",
		  0, "1@x" },
		{ "resent is not it", "Resent-Message-ID: <r@x>\r\n\r\n.\r\n", -1, "" },
		{ "in the body only", "Subject: x\r\n\r\nMessage-ID: <b@x>\r\n.\r\n", -1, "" },
		{ "no brackets", "Message-ID: bare@x\r\n\r\n.\r\n", 0, "bare@x" },
		{ "space inside", "Message-ID: <a b@x>\r\n\r\n.\r\n", -1, "" },
		{ "unclosed", "Message-ID: <a@x\r\n\r\n.\r\n", -1, "" },
		{ "none", "Subject: x\r\n\r\n.\r\n", -1, "" },
	};
	size_t i, step;

	(void)state;
	for (i = 0; i < sizeof(mid_cases) / sizeof(mid_cases[0]); i++) {
		for (step = 0; step < 8; step++) {
			struct smtp_data d;
			char out[4096];
			char id[SMTP_DATA_MSGID_MAX + 1];
			size_t len = strlen(mid_cases[i].in);
			size_t pos = 0;
			int rc;

			smtp_data_init(&d, 1000, 100000);
			while (pos < len) {
				size_t n = step == 0 || len - pos < step ? len - pos : step;
				size_t outlen, used;

				if (smtp_data_feed(&d, mid_cases[i].in + pos, n, out, &outlen, &used) !=
				    SMTP_DATA_MORE) {
					pos += used;
					break;
				}
				pos += used;
			}
			rc = smtp_data_message_id(&d, id, sizeof(id));
			if (rc != mid_cases[i].want_rc || strcmp(id, mid_cases[i].want) != 0)
				fail_msg("%s (step %zu): got %d \"%s\", want %d \"%s\"", mid_cases[i].name,
					 step, rc, id, mid_cases[i].want_rc, mid_cases[i].want);
		}
	}
	{
		/* Longer than SMTP_DATA_MSGID_MAX: not kept. */
		char in[600];
		char out[700];
		char id[SMTP_DATA_MSGID_MAX + 1];
		struct smtp_data d;
		size_t outlen, used;
		int n = snprintf(in, sizeof(in), "Message-ID: <%0300d@x>\r\n\r\n.\r\n", 7);

		smtp_data_init(&d, 1000, 100000);
		smtp_data_feed(&d, in, (size_t)n, out, &outlen, &used);
		assert_int_equal(smtp_data_message_id(&d, id, sizeof(id)), -1);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cases),
		cmocka_unit_test(test_line_limit),
		cmocka_unit_test(test_size_limit),
		cmocka_unit_test(test_header_limits),
		cmocka_unit_test(test_message_id),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
