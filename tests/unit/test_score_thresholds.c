/*
 * Unit tests for the score thresholds (policy_score.c): the precedence of
 * a recipient's thresholds (user > exact domain > global) on a snapshot
 * built with the loader's add functions, the values the loader refuses,
 * and the checked write (policy_score_set) with the snapshot loaded back
 * from a real SQLite store.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "policy/policy_internal.h"
#include "store/store.h"
#include "store/store_policy.h"
#include "tmpdb.h"

static struct score_override ov(unsigned set, double tag, double q, double refuse, double grey)
{
	struct score_override o;

	o.set = set;
	o.v.tag = tag;
	o.v.quarantine = q;
	o.v.refuse = refuse;
	o.v.greylist = grey;
	return o;
}

/*
 * Global 5 / 10 / 15 / 4 (the defaults).  example.com sets quarantine 8
 * and greylist 3; other.example sets refuse 30; alice (alice@example.com,
 * alias al@other.example) sets tag 2; bob (bob@example.com) has a row that
 * sets nothing; carol (carol@example.com) sets everything.
 */
static struct policy_snap *snap(void)
{
	struct policy_snap *sn = policy_snap_empty();
	struct score_override o;
	char err[200];

	o = ov(SCORE_T_QUARANTINE | SCORE_T_GREYLIST, 0, 8, 0, 3);
	assert_int_equal(policy_snap_add_score(sn, "domain", "Example.COM", &o, err, sizeof(err)),
			 0);
	o = ov(SCORE_T_REFUSE, 0, 0, 30, 0);
	assert_int_equal(policy_snap_add_score(sn, "domain", "other.example", &o, err,
					       sizeof(err)), 0);
	o = ov(SCORE_T_TAG, 2, 0, 0, 0);
	assert_int_equal(policy_snap_add_score(sn, "user", "alice", &o, err, sizeof(err)), 0);
	o = ov(0, 0, 0, 0, 0);
	assert_int_equal(policy_snap_add_score(sn, "user", "bob", &o, err, sizeof(err)), 0);
	o = ov(SCORE_T_ALL, -1, -0.5, 0.25, -2);
	assert_int_equal(policy_snap_add_score(sn, "user", "carol", &o, err, sizeof(err)), 0);
	policy_snap_add_score_address(sn, "alice@example.com", "alice");
	policy_snap_add_score_address(sn, "al@other.example", "alice");
	policy_snap_add_score_address(sn, "bob@example.com", "bob");
	policy_snap_add_score_address(sn, "carol@example.com", "carol");
	/* dave has no row: his address is not added. */
	policy_snap_add_score_address(sn, "dave@example.com", "dave");
	policy_snap_add_dir(sn, "staff@example.com", POLICY_DIR_GROUP);
	return sn;
}

static void test_precedence(void **state)
{
	static const struct {
		const char *rcpt;
		double tag, quarantine, refuse, greylist;
		const char *scope;
	} cases[] = {
		{ "nobody@elsewhere.example", 5, 10, 15, 4, "global" },
		{ "x@example.com", 5, 8, 15, 3, "domain:example.com" },
		{ "X@EXAMPLE.com", 5, 8, 15, 3, "domain:example.com" },
		/* exact domain only: a subdomain is not covered */
		{ "x@sub.example.com", 5, 10, 15, 4, "global" },
		{ "x@other.example", 5, 10, 30, 4, "domain:other.example" },
		/* the user's value, the domain's, then the global one, per value */
		{ "alice@example.com", 2, 8, 15, 3, "user:alice" },
		{ "Alice@Example.com", 2, 8, 15, 3, "user:alice" },
		/* an alias in another domain takes that domain's values */
		{ "al@other.example", 2, 10, 30, 4, "user:alice" },
		/* a row that sets nothing leaves the domain in charge */
		{ "bob@example.com", 5, 8, 15, 3, "domain:example.com" },
		{ "carol@example.com", -1, -0.5, 0.25, -2, "user:carol" },
		{ "dave@example.com", 5, 8, 15, 3, "domain:example.com" },
		/* a group's address is nobody's */
		{ "staff@example.com", 5, 8, 15, 3, "domain:example.com" },
		{ "postmaster", 5, 10, 15, 4, "global" },
		{ "", 5, 10, 15, 4, "global" },
		{ "trailing@", 5, 10, 15, 4, "global" },
	};
	struct policy_snap *sn = snap();
	struct score_thresholds t;
	const char *scope;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		policy_score_thresholds(sn, cases[i].rcpt, &t, &scope);
		if (t.tag != cases[i].tag || t.quarantine != cases[i].quarantine ||
		    t.refuse != cases[i].refuse || t.greylist != cases[i].greylist)
			fail_msg("%s: got %g/%g/%g/%g, want %g/%g/%g/%g", cases[i].rcpt, t.tag,
				 t.quarantine, t.refuse, t.greylist, cases[i].tag,
				 cases[i].quarantine, cases[i].refuse, cases[i].greylist);
		if (strcmp(scope, cases[i].scope) != 0)
			fail_msg("%s: got scope %s, want %s", cases[i].rcpt, scope, cases[i].scope);
	}
	/* NULL rcpt and NULL scope are allowed. */
	policy_score_thresholds(sn, NULL, &t, NULL);
	assert_true(t.tag == 5 && t.refuse == 15);
	policy_snap_free(sn);
}

static void test_global_follows_settings(void **state)
{
	struct policy_snap *sn = policy_snap_empty();
	struct score_thresholds t;
	const char *scope;

	(void)state;
	policy_settings_apply(&sn->set, "score_tag", "3.5");
	policy_settings_apply(&sn->set, "score_refuse", "-2");
	policy_score_thresholds(sn, "a@example.com", &t, &scope);
	if (t.tag != 3.5 || t.quarantine != 10 || t.refuse != -2 || t.greylist != 4)
		fail_msg("got %g/%g/%g/%g, want 3.5/10/-2/4", t.tag, t.quarantine, t.refuse,
			 t.greylist);
	assert_string_equal(scope, "global");
	policy_snap_free(sn);
}

static void test_add_refused(void **state)
{
	static const struct {
		const char *name, *scope, *row;
		unsigned set;
		double v;
	} cases[] = {
		{ "unknown scope", "group", "staff", SCORE_T_TAG, 1 },
		{ "bad domain", "domain", "exa mple.com", SCORE_T_TAG, 1 },
		{ "empty domain", "domain", "", SCORE_T_TAG, 1 },
		{ "empty user", "user", "", SCORE_T_TAG, 1 },
		{ "above range", "domain", "example.com", SCORE_T_TAG, 1000.5 },
		{ "below range", "domain", "example.com", SCORE_T_QUARANTINE, -1001 },
		{ "four decimals", "domain", "example.com", SCORE_T_REFUSE, 1.0005 },
	};
	struct policy_snap *sn = policy_snap_empty();
	struct score_override o;
	char err[200];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		o = ov(cases[i].set, cases[i].v, cases[i].v, cases[i].v, cases[i].v);
		if (policy_snap_add_score(sn, cases[i].scope, cases[i].row, &o, err,
					  sizeof(err)) == 0)
			fail_msg("%s: got accepted, want refused", cases[i].name);
	}
	assert_int_equal(sn->nscore_rows, 0);
	/* A value the row does not set is not checked. */
	o = ov(SCORE_T_TAG, 1, 5000, 5000, 5000);
	assert_int_equal(policy_snap_add_score(sn, "domain", "example.com", &o, err, sizeof(err)),
			 0);
	assert_int_equal(policy_score_value_ok(-1000), 0);
	assert_int_equal(policy_score_value_ok(1000), 0);
	assert_int_equal(policy_score_value_ok(0.125), 0);
	assert_int_equal(policy_score_value_ok(0.1), 0);
	assert_int_equal(policy_score_value_ok(0.0001), -1);
	policy_snap_free(sn);
}


/* One write in its own transaction; the failure's kind and field, or 0 and "". */
static int put(struct store *st, const char *scope, const char *name, struct score_override o,
	       struct policy_score_fail *f)
{
	json_t *before = NULL, *after = NULL;
	int rc;

	assert_int_equal(store_begin(st), 0);
	rc = policy_score_set(st, scope, name, &o, &before, &after, f);
	if (rc == 0)
		assert_int_equal(store_commit(st), 0);
	else
		store_rollback(st);
	json_decref(before);
	json_decref(after);
	return rc;
}

static void test_store_writes(void **state)
{
	static const char *const alice[] = { "alice@example.com", "al@other.example" };
	static const struct {
		const char *name, *scope, *row;
		struct score_override o;
		int kind;             /* POLICY_SCORE_* */
		const char *field;
	} cases[] = {
		{ "domain ok", "domain", "Example.com",
		  { SCORE_T_TAG | SCORE_T_QUARANTINE, { -100, -100, 0, 0 } }, POLICY_SCORE_OK, "" },
		{ "quarantine under the global tag", "domain", "other.example",
		  { SCORE_T_QUARANTINE, { 0, 4, 0, 0 } }, POLICY_SCORE_INVALID, "quarantine" },
		{ "tag over the global quarantine", "domain", "other.example",
		  { SCORE_T_TAG, { 11, 0, 0, 0 } }, POLICY_SCORE_INVALID, "tag" },
		{ "refuse under the global quarantine", "domain", "other.example",
		  { SCORE_T_REFUSE, { 0, 0, 9, 0 } }, POLICY_SCORE_INVALID, "refuse" },
		{ "both given out of order", "domain", "other.example",
		  { SCORE_T_QUARANTINE | SCORE_T_REFUSE, { 0, 20, 18, 0 } }, POLICY_SCORE_INVALID,
		  "quarantine" },
		{ "greylist is free", "domain", "other.example",
		  { SCORE_T_GREYLIST, { 0, 0, 0, 99 } }, POLICY_SCORE_OK, "" },
		{ "bad domain", "domain", "not a domain",
		  { SCORE_T_TAG, { 1, 0, 0, 0 } }, POLICY_SCORE_INVALID, "name" },
		{ "out of range", "domain", "example.net",
		  { SCORE_T_TAG, { -1000.5, 0, 0, 0 } }, POLICY_SCORE_INVALID, "tag" },
		{ "unknown user", "user", "nobody",
		  { SCORE_T_TAG, { 1, 0, 0, 0 } }, POLICY_SCORE_NO_SUCH, "name" },
		{ "unknown scope", "group", "staff",
		  { SCORE_T_TAG, { 1, 0, 0, 0 } }, POLICY_SCORE_NO_SUCH, "scope" },
		/* alice's addresses are in example.com (quarantine -100) and
		 * other.example (global 10): a tag of 0 is above the first */
		{ "user over each of its domains", "user", "alice",
		  { SCORE_T_TAG, { 0, 0, 0, 0 } }, POLICY_SCORE_INVALID, "tag" },
		{ "user ok", "user", "alice",
		  { SCORE_T_TAG | SCORE_T_REFUSE, { -200, 0, 40, 0 } }, POLICY_SCORE_OK, "" },
	};
	struct tmpdb d;
	struct policy_score_fail f;
	struct policy_snap *sn;
	struct score_thresholds t;
	const char *scope;
	json_t *before, *list;
	char err[300];
	size_t i;

	(void)state;
	tmpdb_open(&d);
	assert_int_equal(store_policy_user_add(d.st, "alice", alice, 2, err, sizeof(err)), 0);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = put(d.st, cases[i].scope, cases[i].row, cases[i].o, &f);

		if ((rc == 0) != (cases[i].kind == POLICY_SCORE_OK))
			fail_msg("%s: got rc %d (%s), want kind %d", cases[i].name, rc, f.message,
				 cases[i].kind);
		if (rc < 0 && ((int)f.kind != cases[i].kind || strcmp(f.field, cases[i].field) != 0))
			fail_msg("%s: got kind %d field \"%s\" (%s), want kind %d field \"%s\"",
				 cases[i].name, (int)f.kind, f.field, f.message, cases[i].kind,
				 cases[i].field);
	}
	list = policy_score_list_json(d.st);
	assert_non_null(list);
	assert_int_equal(json_array_size(json_object_get(list, "items")), 3);
	json_decref(list);

	/* What the watcher builds from it. */
	sn = policy_snap_load_store(d.st, 0, err, sizeof(err));
	if (sn == NULL)
		fail_msg("load: %s", err);
	policy_score_thresholds(sn, "alice@example.com", &t, &scope);
	if (t.tag != -200 || t.quarantine != -100 || t.refuse != 40 || t.greylist != 4)
		fail_msg("alice: got %g/%g/%g/%g", t.tag, t.quarantine, t.refuse, t.greylist);
	assert_string_equal(scope, "user:alice");
	policy_score_thresholds(sn, "al@other.example", &t, &scope);
	if (t.tag != -200 || t.quarantine != 10 || t.refuse != 40 || t.greylist != 99)
		fail_msg("al: got %g/%g/%g/%g", t.tag, t.quarantine, t.refuse, t.greylist);
	policy_score_thresholds(sn, "x@example.com", &t, &scope);
	assert_true(t.tag == -100 && t.quarantine == -100 && t.refuse == 15);
	assert_string_equal(scope, "domain:example.com");
	policy_snap_free(sn);

	/* Removing the domain's row; removing it again is NO_SUCH. */
	assert_int_equal(store_begin(d.st), 0);
	assert_int_equal(policy_score_delete(d.st, "domain", "EXAMPLE.com", &before, &f), 0);
	assert_string_equal(json_string_value(json_object_get(before, "name")), "example.com");
	json_decref(before);
	assert_int_equal(store_commit(d.st), 0);
	assert_int_equal(store_begin(d.st), 0);
	assert_int_equal(policy_score_delete(d.st, "domain", "example.com", &before, &f), -1);
	assert_int_equal(f.kind, POLICY_SCORE_NO_SUCH);
	store_rollback(d.st);
	sn = policy_snap_load_store(d.st, 0, err, sizeof(err));
	assert_non_null(sn);
	policy_score_thresholds(sn, "x@example.com", &t, &scope);
	assert_true(t.tag == 5 && t.quarantine == 10);
	assert_string_equal(scope, "global");
	policy_snap_free(sn);
	tmpdb_close(&d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_precedence),
		cmocka_unit_test(test_global_follows_settings),
		cmocka_unit_test(test_add_refused),
		cmocka_unit_test(test_store_writes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
