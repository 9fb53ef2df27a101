/*
 * Unit tests for rules_sieve: Sieve import of each supported form (with the
 * rule JSON it gives), what is skipped and why, syntax errors with their
 * line, limits, export of each action and condition, what export leaves
 * out, and the round trip export(import(x)) == export(import(export(...))).
 * Table-driven; failures say got/want.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "rules/rules_sieve.h"

static void check_json(const char *what, json_t *got, const char *want)
{
	json_error_t je;
	json_t *w = json_loads(want, 0, &je);
	char *g;

	if (w == NULL)
		fail_msg("%s: bad want JSON: %s", what, je.text);
	g = json_dumps(got, JSON_SORT_KEYS | JSON_COMPACT);
	if (!json_equal(got, w))
		fail_msg("%s:\n got  %s\n want %s", what, g, want);
	free(g);
	json_decref(w);
}

struct import_case {
	const char *name;
	const char *script;
	const char *want_rules;     /* JSON array */
	const char *want_skipped;   /* JSON array of {"line","reason"} */
};

static const struct import_case import_cases[] = {
	{ "header contains, fileinto and stop",
	  "# rule: reports\nif header :contains \"Subject\" \"noon\" { fileinto \"Fleet\"; stop; }",
	  "[{\"name\":\"reports\",\"enabled\":true,\"when\":{\"field\":\"header\",\"header\":"
	  "\"Subject\",\"op\":\"contains\",\"value\":\"noon\"},\"actions\":[{\"type\":\"move\","
	  "\"folder\":\"Fleet\"}]}]", "[]" },
	{ "matches forms become starts/ends/contains/is/regex",
	  "if anyof (header :matches \"S\" \"ab*\", header :matches \"S\" \"*ab\",\n"
	  " header :matches \"S\" \"*a\\\\*b*\", header :matches \"S\" \"ab\","
	  " header :matches \"S\" \"a?b\") { keep; }",
	  "[{\"name\":\"Sieve line 1\",\"enabled\":true,\"when\":{\"any\":["
	  "{\"field\":\"header\",\"header\":\"S\",\"op\":\"starts_with\",\"value\":\"ab\"},"
	  "{\"field\":\"header\",\"header\":\"S\",\"op\":\"ends_with\",\"value\":\"ab\"},"
	  "{\"field\":\"header\",\"header\":\"S\",\"op\":\"contains\",\"value\":\"a*b\"},"
	  "{\"field\":\"header\",\"header\":\"S\",\"op\":\"is\",\"value\":\"ab\"},"
	  "{\"field\":\"header\",\"header\":\"S\",\"op\":\"matches\",\"value\":\"^a.b$\"}]},"
	  "\"actions\":[{\"type\":\"keep\"}]}]", "[]" },
	{ "address, envelope, size, body, not, copy, redirect",
	  "require [\"envelope\", \"copy\", \"body\"];\n"
	  "if allof (address :domain :is [\"to\", \"cc\"] \"board.example\",\n"
	  "          envelope :localpart :is \"from\" \"boss\", size :under 10K,\n"
	  "          not body :raw :contains \"x\") {\n"
	  "  fileinto :copy \"B\"; redirect :copy \"a@example.org\"; redirect \"b@example.org\";\n}",
	  "[{\"name\":\"Sieve line 2\",\"enabled\":true,\"when\":{\"all\":["
	  "{\"field\":\"to_cc\",\"op\":\"ends_with\",\"value\":\"@board.example\"},"
	  "{\"field\":\"sender\",\"op\":\"starts_with\",\"value\":\"boss@\"},"
	  "{\"field\":\"size\",\"op\":\"lt\",\"value\":10240},"
	  "{\"field\":\"raw_body\",\"op\":\"not_contains\",\"value\":\"x\"}]},"
	  "\"actions\":[{\"type\":\"copy\",\"folder\":\"B\"},{\"type\":\"forward_copy\","
	  "\"address\":\"a@example.org\"},{\"type\":\"forward\",\"address\":\"b@example.org\"}]}]",
	  "[]" },
	{ "if / elsif / else become rules with except",
	  "if size :over 10 { discard; }\nelsif size :under 5 { keep; }\nelse { stop; }",
	  "[{\"name\":\"Sieve line 1\",\"enabled\":true,\"when\":{\"field\":\"size\",\"op\":\"gt\","
	  "\"value\":10},\"actions\":[{\"type\":\"discard\"}]},"
	  "{\"name\":\"Sieve line 2\",\"enabled\":true,\"when\":{\"field\":\"size\",\"op\":\"lt\","
	  "\"value\":5},\"except\":{\"field\":\"size\",\"op\":\"gt\",\"value\":10},"
	  "\"actions\":[{\"type\":\"keep\"}]},"
	  "{\"name\":\"Sieve line 3\",\"enabled\":true,\"when\":{\"not\":{\"any\":["
	  "{\"field\":\"size\",\"op\":\"gt\",\"value\":10},{\"field\":\"size\",\"op\":\"lt\","
	  "\"value\":5}]}},\"actions\":[{\"type\":\"stop\"}]}]", "[]" },
	{ "reject, comparator, multi-line text",
	  "if header :comparator \"i;octet\" :is \"X\" \"Y\" { reject text:\r\nno\r\n.\r\n; }",
	  "[]",
	  "[{\"line\":1,\"reason\":\"rule.actions[0].text: must be 1 to 400 printable "
	  "characters\"}]" },
	{ "unsupported tests, actions and extensions are listed with their line",
	  "require \"vacation\";\nvacation \"away\";\n"
	  "if header :count \"ge\" \"Received\" \"3\" { discard; }\n"
	  "if true { keep; fileinto \"After\"; }\nif false {}\n",
	  "[{\"name\":\"Sieve line 4\",\"enabled\":true,\"when\":{\"not\":{\"field\":\"size\","
	  "\"op\":\"lt\",\"value\":0}},\"actions\":[{\"type\":\"keep\"}]}]",
	  "[{\"line\":2,\"reason\":\"command vacation is not supported\"},"
	  "{\"line\":2,\"reason\":\"a rule with no action that can be imported\"},"
	  "{\"line\":3,\"reason\":\"argument :count is not supported\"},"
	  "{\"line\":4,\"reason\":\"fileinto after an action that ends the rules (use :copy to "
	  "go on)\"},"
	  "{\"line\":5,\"reason\":\"a rule with no action that can be imported\"}]" },
	{ "importance and subject tag forms",
	  "if true { deleteheader \"Importance\"; addheader \"Importance\" \"low\";\n"
	  " if header :matches \"Subject\" \"*\" { deleteheader \"Subject\";"
	  " addheader \"Subject\" \"[x] ${1}\"; } }",
	  "[{\"name\":\"Sieve line 1\",\"enabled\":true,\"when\":{\"not\":{\"field\":\"size\","
	  "\"op\":\"lt\",\"value\":0}},\"actions\":[{\"type\":\"importance\",\"value\":\"low\"},"
	  "{\"type\":\"tag_subject\",\"prefix\":\"[x] \"}]}]", "[]" },
	{ "what export could not write back is not imported",
	  "if true { if header :matches \"Subject\" \"*\" { deleteheader \"Subject\";"
	  " addheader \"Subject\" \"[x] ${1}\"; } }\n"
	  "if true { addheader \"X-A\" \"${1}\"; }\n"
	  "if header :contains \"\xaaubject\" \"y\" { discard; }\n",
	  "[{\"name\":\"Sieve line 1\",\"enabled\":true,\"when\":{\"not\":{\"field\":\"size\","
	  "\"op\":\"lt\",\"value\":0}},\"actions\":[{\"type\":\"tag_subject\",\"prefix\":\"[x] \"}]}]",
	  "[{\"line\":3,\"reason\":\"a header name that is not UTF-8\"},"
	  "{\"line\":2,\"reason\":\"a value holds \\\"${\\\", which Sieve variables would "
	  "expand\"}]" },
};

static void test_import(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(import_cases) / sizeof(import_cases[0]); i++) {
		const struct import_case *c = &import_cases[i];
		struct rules_sieve_err e;
		json_t *rules, *skipped;

		if (rules_sieve_import(c->script, strlen(c->script), NULL, &rules, &skipped, &e) < 0)
			fail_msg("%s: got error line %u: %s, want rules", c->name, e.line, e.msg);
		check_json(c->name, rules, c->want_rules);
		check_json(c->name, skipped, c->want_skipped);
		json_decref(rules);
		json_decref(skipped);
	}
}

struct error_case {
	const char *script;
	unsigned line;
	const char *msg;
};

static const struct error_case error_cases[] = {
	{ "keep", 1, "expected ';' or '{' after command keep" },
	{ "\n\nif true { keep;", 3, "expected '}'" },
	{ "keep;\n\"x", 2, "unterminated string" },
	{ "keep;\n}", 2, "'}' without a matching '{'" },
	{ "else { keep; }", 1, "else without a preceding if" },
	{ "/* open", 1, "unterminated /* comment" },
	{ "if size :over 99999999999999999999 { keep; }", 1, "number too large" },
	{ "if size :over 9999999999999999G { keep; }", 1, "number too large" },
	{ "keep;\nreject text: x\n", 2, "text: must end its line" },
	{ "reject text:\nno end\n", 1, "unterminated text: (no line with a lone \".\")" },
	{ "if header [\"a\" \"b\"] \"c\" { keep; }", 1, "',' or ']' in a string list" },
	{ "keep;\n@", 2, "unexpected character '@'" },
	{ "if true keep;", 1, "if needs one test and a block" },
	{ "require 5;", 1, "require needs a string list" },
};

static void test_errors(void **state)
{
	size_t i;
	char deep[400];

	(void)state;
	for (i = 0; i < sizeof(error_cases) / sizeof(error_cases[0]); i++) {
		const struct error_case *c = &error_cases[i];
		struct rules_sieve_err e;
		json_t *rules, *skipped;

		if (rules_sieve_import(c->script, strlen(c->script), NULL, &rules, &skipped, &e) == 0)
			fail_msg("%s: got rules, want error line %u", c->script, c->line);
		if (e.line != c->line || strstr(e.msg, c->msg) == NULL)
			fail_msg("%s: got line %u \"%s\", want line %u \"%s\"", c->script, e.line,
				 e.msg, c->line, c->msg);
		assert_null(rules);
		assert_null(skipped);
	}
	/* nesting beyond the bound is an error, not a deep recursion */
	{
		struct rules_sieve_err e;
		json_t *rules, *skipped;
		size_t n = 0;

		n += (size_t)snprintf(deep, sizeof(deep), "if ");
		for (i = 0; i < 40; i++)
			n += (size_t)snprintf(deep + n, sizeof(deep) - n, "not ");
		snprintf(deep + n, sizeof(deep) - n, "true { keep; }");
		assert_int_equal(rules_sieve_import(deep, strlen(deep), NULL, &rules, &skipped, &e),
				 -1);
		assert_non_null(strstr(e.msg, "nested deeper"));
		assert_int_equal(rules_sieve_import("keep;", RULES_SIEVE_INPUT_MAX + 1, NULL,
						    &rules, &skipped, &e), -1);
		assert_non_null(strstr(e.msg, "larger than"));
	}
}

/* Drop the comment lines (the header names the rule count) in place. */
static void strip_comments(char *s)
{
	char *r = s, *w = s;

	while (*r != '\0') {
		size_t n = strcspn(r, "\n");

		if (r[n] == '\n')
			n++;
		if (r[0] != '#') {
			memmove(w, r, n);
			w += n;
		}
		r += n;
	}
	*w = '\0';
}

static const char *const export_set =
	"[{\"name\":\"a\",\"when\":{\"field\":\"header\",\"header\":\"Subject\",\"op\":"
	"\"starts_with\",\"value\":\"x*y\"},\"actions\":[{\"type\":\"move\",\"folder\":\"F\"}]},"
	"{\"name\":\"b\",\"enabled\":false,\"when\":{\"field\":\"sender\",\"op\":\"is_not\","
	"\"value\":\"q@example.org\"},\"except\":{\"field\":\"size\",\"op\":\"gt\",\"value\":9},"
	"\"actions\":[{\"type\":\"add_header\",\"name\":\"X-A\",\"value\":\"1\"},{\"type\":"
	"\"refuse\",\"text\":\"no \\\"thanks\\\"\"},{\"type\":\"keep\"}]},"
	"{\"name\":\"c\",\"when\":{\"field\":\"client_address\",\"op\":\"in_network\",\"value\":"
	"\"10.0.0.0/8\"},\"actions\":[{\"type\":\"discard\"}]},"
	"{\"name\":\"d\",\"when\":{\"field\":\"helo\",\"op\":\"is\",\"value\":\"x\"},"
	"\"actions\":[{\"type\":\"discard\"}]},"
	"{\"name\":\"e\",\"when\":{\"field\":\"body\",\"op\":\"contains\",\"value\":\"z\"},"
	"\"actions\":[{\"type\":\"quarantine\"}]}]";

static void test_export(void **state)
{
	static const char *const want[] = {
		"require [\"fileinto\", \"envelope\", \"reject\", \"editheader\", \"mailbox\"];\n",
		"# rule: a\nif header :matches \"Subject\" \"x\\\\*y*\" {\n"
		"    fileinto :create \"F\";\n    stop;\n}\n",
		"# rule: b\nif allof (false, allof (not envelope :is \"from\" \"q@example.org\", "
		"not anyof (size :over 9))) {\n    addheader \"X-A\" \"1\";\n"
		"    reject \"no \\\"thanks\\\"\";\n    stop;\n}\n",
		"# not exported: rule c: operator in_network has no Sieve test\n",
		"# not exported: rule d: field helo has no Sieve test at delivery\n",
		"# not exported: rule e: action quarantine has no Sieve equivalent",
	};
	json_t *set = json_loads(export_set, 0, NULL), *skipped, *rules, *sk2;
	struct rules_sieve_err e;
	char *text, *again;
	size_t i;

	(void)state;
	text = rules_sieve_export(set, &skipped);
	assert_non_null(text);
	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		if (strstr(text, want[i]) == NULL)
			fail_msg("export lacks\n%s\n--- got\n%s", want[i], text);
	check_json("skipped", skipped,
		   "[{\"rule\":2,\"name\":\"c\",\"reason\":\"operator in_network has no Sieve test\"},"
		   "{\"rule\":3,\"name\":\"d\",\"reason\":\"field helo has no Sieve test at delivery\"},"
		   "{\"rule\":4,\"name\":\"e\",\"reason\":\"action quarantine has no Sieve equivalent "
		   "at the mail server\"}]");
	/* import gives the first two rules back as they were */
	assert_int_equal(rules_sieve_import(text, strlen(text), NULL, &rules, &sk2, &e), 0);
	assert_int_equal(json_array_size(rules), 2);
	assert_int_equal(json_array_size(sk2), 0);
	check_json("rule a", json_object_get(json_array_get(rules, 0), "when"),
		   "{\"field\":\"header\",\"header\":\"Subject\",\"op\":\"starts_with\","
		   "\"value\":\"x*y\"}");
	check_json("rule b", json_array_get(rules, 1),
		   "{\"name\":\"b\",\"enabled\":false,\"when\":{\"field\":\"sender\",\"op\":"
		   "\"is_not\",\"value\":\"q@example.org\"},\"except\":{\"field\":\"size\",\"op\":"
		   "\"gt\",\"value\":9},\"actions\":[{\"type\":\"add_header\",\"name\":\"X-A\","
		   "\"value\":\"1\"},{\"type\":\"refuse\",\"text\":\"no \\\"thanks\\\"\"}]}");
	/* and exporting those is the same script, the left-out comments aside */
	json_decref(sk2);
	again = rules_sieve_export(rules, &sk2);
	strip_comments(text);
	strip_comments(again);
	if (strcmp(text, again) != 0)
		fail_msg("export(import(export)) differs:\n%s\n--- want\n%s", again, text);
	free(again);
	free(text);
	json_decref(sk2);
	json_decref(rules);
	json_decref(skipped);
	json_decref(set);
	/* a set of keep rules needs no require line at all */
	set = json_loads("[{\"name\":\"k\",\"when\":{\"field\":\"size\",\"op\":\"lt\",\"value\":1},"
			 "\"actions\":[{\"type\":\"keep\"}]}]", 0, NULL);
	text = rules_sieve_export(set, &skipped);
	assert_null(strstr(text, "require"));
	free(text);
	json_decref(skipped);
	json_decref(set);
	assert_null(rules_sieve_export(json_null(), &skipped));
	/* the gateway's spam score: neither its test nor its points exist at delivery */
	set = json_loads("[{\"name\":\"s\",\"when\":{\"field\":\"score\",\"op\":\"gt\","
			 "\"value\":5},\"actions\":[{\"type\":\"move\",\"folder\":\"Junk\"}]},"
			 "{\"name\":\"p\",\"when\":{\"field\":\"size\",\"op\":\"gt\",\"value\":1},"
			 "\"actions\":[{\"type\":\"score\",\"points\":2.5}]},"
			 "{\"name\":\"q\",\"when\":{\"field\":\"size\",\"op\":\"gt\",\"value\":1},"
			 "\"actions\":[{\"type\":\"move\",\"folder\":\"Junk\"},{\"type\":\"score\",\"points\":1}]}]",
			 0, NULL);
	text = rules_sieve_export(set, &skipped);
	assert_non_null(strstr(text, "# not exported: rule s: field score (the gateway's spam "
				     "score) has no Sieve test at delivery\n"));
	assert_non_null(strstr(text, "# not exported: rule p: action score (points for the "
				     "gateway's spam score) has no Sieve equivalent"));
	/* points after the deciding action count in the gateway too: that rule is left out whole */
	assert_non_null(strstr(text, "# not exported: rule q: action score"));
	assert_int_equal(json_array_size(skipped), 3);
	free(text);
	json_decref(skipped);
	json_decref(set);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_import),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_export),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
