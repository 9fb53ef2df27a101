/*
 * The mailbox kind of the rule model (docs/mailbox-rules.md): the actions
 * vocabulary, its checks with errors naming the place, the importance and
 * to_cc fields, forward targets limited to local domains, and the export
 * round trip parse(export(d)) == d.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "rules/rules.h"

static const char FULL[] =
	"[{\"name\":\"fleet\",\"enabled\":true,"
	"\"when\":{\"all\":[{\"field\":\"to_cc\",\"op\":\"ends_with\",\"value\":\"@fleet.example\"},"
	"{\"field\":\"importance\",\"op\":\"is\",\"value\":\"high\"}]},"
	"\"except\":null,\"comment\":\"sorted\",\"actions\":["
	"{\"type\":\"move\",\"folder\":\"Fleet/Ship \xc3\xa9\"},"
	"{\"type\":\"copy\",\"folder\":\"Archive\"},"
	"{\"type\":\"forward_copy\",\"address\":\"ops@example.org\"},"
	"{\"type\":\"tag_subject\",\"prefix\":\"[fleet] \"},"
	"{\"type\":\"add_header\",\"name\":\"X-Sorted\",\"value\":\"a: b\"},"
	"{\"type\":\"importance\",\"value\":\"low\"},"
	"{\"type\":\"stop\"}]},"
	"{\"name\":\"rest\",\"enabled\":false,\"when\":{\"field\":\"sender\",\"op\":\"is\","
	"\"value\":\"x@y.example\"},\"except\":null,\"actions\":["
	"{\"type\":\"refuse\",\"text\":\"not here\"}]},"
	"{\"name\":\"q\",\"enabled\":true,\"when\":{\"field\":\"size\",\"op\":\"gt\",\"value\":5},"
	"\"except\":null,\"actions\":[{\"type\":\"forward\",\"address\":\"a@b.example\"},"
	"{\"type\":\"quarantine\"},{\"type\":\"discard\"},{\"type\":\"keep\"}]}]";

static void test_round_trip(void **state)
{
	struct rules_def *d = NULL, *d2 = NULL;
	char err[300];
	json_t *a, *b;
	char *ta, *tb;

	(void)state;
	assert_int_equal(rules_def_parse_kind(FULL, strlen(FULL), RULES_KIND_MAILBOX, &d, err,
					      sizeof(err)), 0);
	assert_int_equal(rules_def_count(d), 3);
	assert_int_equal(rules_def_kind(d), RULES_KIND_MAILBOX);
	/* the refusing rule is disabled: no refuse class */
	assert_false(rules_def_has_refuse(d));
	a = rules_def_to_json(d);
	ta = json_dumps(a, JSON_COMPACT | JSON_SORT_KEYS);
	assert_int_equal(rules_def_parse_kind(ta, strlen(ta), RULES_KIND_MAILBOX, &d2, err,
					      sizeof(err)), 0);
	b = rules_def_to_json(d2);
	tb = json_dumps(b, JSON_COMPACT | JSON_SORT_KEYS);
	assert_string_equal(ta, tb);
	/* the export is the input, key for key */
	{
		json_t *in = json_loads(FULL, 0, NULL);
		char *ti = json_dumps(in, JSON_COMPACT | JSON_SORT_KEYS);

		assert_string_equal(ti, ta);
		free(ti);
		json_decref(in);
	}
	free(ta);
	free(tb);
	json_decref(a);
	json_decref(b);
	rules_def_free(d);
	rules_def_free(d2);
}

static void expect_err(const char *json, enum rules_kind kind, const char *want)
{
	struct rules_def *d = NULL;
	char err[300];

	if (rules_def_parse_kind(json, strlen(json), kind, &d, err, sizeof(err)) == 0) {
		rules_def_free(d);
		fail_msg("accepted: %s", json);
	}
	if (strncmp(err, want, strlen(want)) != 0)
		fail_msg("%s: got \"%s\", want \"%s...\"", json, err, want);
}

#define WHEN "\"when\":{\"field\":\"sender\",\"op\":\"contains\",\"value\":\"a\"}"

static void test_errors(void **state)
{
	(void)state;
	expect_err("[{\"name\":\"x\"," WHEN ",\"actions\":[]}]", RULES_KIND_MAILBOX,
		   "rules[0].actions: must be an array of 1 to 8");
	expect_err("[{\"name\":\"x\"," WHEN ",\"actions\":[{\"type\":\"keep\"},{\"type\":\"keep\"},"
		   "{\"type\":\"keep\"},{\"type\":\"keep\"},{\"type\":\"keep\"},{\"type\":\"keep\"},"
		   "{\"type\":\"keep\"},{\"type\":\"keep\"},{\"type\":\"keep\"}]}]",
		   RULES_KIND_MAILBOX, "rules[0].actions: must be an array of 1 to 8");
	expect_err("[{\"name\":\"x\"," WHEN ",\"action\":{\"type\":\"accept\"}}]", RULES_KIND_MAILBOX,
		   "rules[0].action: unknown key");
	expect_err("[{\"name\":\"x\"," WHEN ",\"actions\":[{\"type\":\"accept\"}]}]",
		   RULES_KIND_MAILBOX, "rules[0].actions[0].type: unknown action");
	expect_err("[{\"name\":\"x\"," WHEN ",\"actions\":[{\"type\":\"keep\"},{\"type\":\"move\","
		   "\"folder\":\"A/../B\"}]}]", RULES_KIND_MAILBOX, "rules[0].actions[1].folder:");
	expect_err("[{\"name\":\"x\"," WHEN ",\"actions\":[{\"type\":\"move\",\"folder\":\"A//B\"}]}]",
		   RULES_KIND_MAILBOX, "rules[0].actions[0].folder:");
	expect_err("[{\"name\":\"x\"," WHEN ",\"actions\":[{\"type\":\"move\",\"folder\":\"/A\"}]}]",
		   RULES_KIND_MAILBOX, "rules[0].actions[0].folder:");
	expect_err("[{\"name\":\"x\"," WHEN ",\"actions\":[{\"type\":\"move\",\"folder\":\"A\\u0001\"}]}]",
		   RULES_KIND_MAILBOX, "rules[0].actions[0].folder:");
	expect_err("[{\"name\":\"x\"," WHEN ",\"actions\":[{\"type\":\"move\",\"folder\":\"A\","
		   "\"address\":\"a@b.c\"}]}]", RULES_KIND_MAILBOX,
		   "rules[0].actions[0].address: not a parameter of action move");
	expect_err("[{\"name\":\"x\"," WHEN ",\"actions\":[{\"type\":\"forward\",\"address\":\"nope\"}]}]",
		   RULES_KIND_MAILBOX, "rules[0].actions[0].address:");
	expect_err("[{\"name\":\"x\"," WHEN ",\"actions\":[{\"type\":\"importance\",\"value\":\"urgent\"}]}]",
		   RULES_KIND_MAILBOX, "rules[0].actions[0].value:");
	expect_err("[{\"name\":\"x\"," WHEN ",\"actions\":[{\"type\":\"add_header\",\"name\":\"X-Moat-Folder\","
		   "\"value\":\"x\"}]}]", RULES_KIND_MAILBOX, "rules[0].actions[0].name:");
	expect_err("[{\"name\":\"x\",\"when\":{\"field\":\"importance\",\"op\":\"contains\",\"value\":\"h\"},"
		   "\"actions\":[{\"type\":\"keep\"}]}]", RULES_KIND_MAILBOX, "rules[0].when.op:");
	/* server rules know neither the new fields nor the new actions */
	expect_err("[{\"name\":\"x\",\"when\":{\"field\":\"to_cc\",\"op\":\"contains\",\"value\":\"h\"},"
		   "\"action\":{\"type\":\"accept\"}}]", RULES_KIND_SERVER, "rules[0].when.field:");
	expect_err("[{\"name\":\"x\"," WHEN ",\"action\":{\"type\":\"move\"}}]", RULES_KIND_SERVER,
		   "rules[0].action.type: unknown action");
	expect_err("[{\"name\":\"x\"," WHEN ",\"actions\":[{\"type\":\"keep\"}]}]", RULES_KIND_SERVER,
		   "rules[0].actions: unknown key");
}

static int only_example_org(void *arg, const char *domain)
{
	(void)arg;
	return strcmp(domain, "example.org") == 0;
}

static void test_forward_local(void **state)
{
	struct rules_parse_opts o = { .kind = RULES_KIND_MAILBOX, .is_local = only_example_org };
	json_t *r = json_loads("{\"name\":\"x\"," WHEN ",\"actions\":[{\"type\":\"keep\"},"
			       "{\"type\":\"forward\",\"address\":\"a@Elsewhere.net\"}]}", 0, NULL);
	json_t *ok = json_loads("{\"name\":\"x\"," WHEN ",\"actions\":[{\"type\":\"forward\","
				"\"address\":\"a@Example.ORG\"}]}", 0, NULL);
	char err[300];

	(void)state;
	assert_int_equal(rules_def_check_one_opts(r, &o, err, sizeof(err)), -1);
	assert_string_equal(err, "rule.actions[1].address: forwarding is allowed to local domains "
			    "only (elsewhere.net is not one; see mailbox_forward_external)");
	assert_int_equal(rules_def_check_one_opts(ok, &o, err, sizeof(err)), 0);
	o.forward_external = true;
	assert_int_equal(rules_def_check_one_opts(r, &o, err, sizeof(err)), 0);
	/* the value bound of the caller */
	o.value_max = 3;
	assert_int_equal(rules_def_check_one_opts(ok, &o, err, sizeof(err)), 0);
	json_object_set_new(json_object_get(ok, "when"), "value", json_string("abcd"));
	assert_int_equal(rules_def_check_one_opts(ok, &o, err, sizeof(err)), -1);
	assert_string_equal(err, "rule.when.value: longer than 3 octets");
	json_decref(r);
	json_decref(ok);
}

static void test_has_refuse(void **state)
{
	static const char J[] = "[{\"name\":\"x\"," WHEN ",\"actions\":[{\"type\":\"tag_subject\","
				"\"prefix\":\"[x]\"},{\"type\":\"refuse\"}]}]";
	struct rules_def *d = NULL;
	char err[300];

	(void)state;
	assert_int_equal(rules_def_parse_kind(J, strlen(J), RULES_KIND_MAILBOX, &d, err,
					      sizeof(err)), 0);
	assert_true(rules_def_has_refuse(d));
	rules_def_free(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_forward_local),
		cmocka_unit_test(test_has_refuse),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
