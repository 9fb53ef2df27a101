/*
 * Unit tests for personal sender lists (policy_user.c): the value
 * validator, the snapshot lookup (owner by address, entry by address then
 * @domain), and the RCPT stage's user_block verdict on a session without
 * engine or DNS.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "policy/policy_internal.h"

static void test_value_check(void **state)
{
	static const struct {
		const char *name, *in, *want; /* want NULL: refused */
	} cases[] = {
		{ "address", "Bob@Example.COM", "bob@example.com" },
		{ "domain", "@Example.com", "@example.com" },
		{ "subdomain", "@mail.example.com", "@mail.example.com" },
		{ "bare domain", "example.com", NULL },
		{ "glob local", "*@example.com", NULL },
		{ "glob domain", "@*.example.com", NULL },
		{ "question mark", "a?@example.com", NULL },
		{ "null sender", "<>", NULL },
		{ "empty", "", NULL },
		{ "only at", "@", NULL },
		{ "two ats", "a@b@example.com", NULL },
		{ "no local part", "@", NULL },
		{ "bad domain", "a@exa mple.com", NULL },
		{ "bad domain 2", "a@-example-.com", NULL },
		{ "trailing at", "a@", NULL },
	};
	char norm[400], err[200];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = policy_user_value_check(cases[i].in, strlen(cases[i].in), norm, sizeof(norm),
						 err, sizeof(err));

		if (cases[i].want == NULL && rc == 0)
			fail_msg("%s: got accepted as %s, want refused", cases[i].name, norm);
		if (cases[i].want != NULL && rc != 0)
			fail_msg("%s: got refused (%s), want %s", cases[i].name, err, cases[i].want);
		if (cases[i].want != NULL && strcmp(norm, cases[i].want) != 0)
			fail_msg("%s: got %s, want %s", cases[i].name, norm, cases[i].want);
	}
	/* Longer than any address. */
	{
		char big[400];

		memset(big, 'a', sizeof(big));
		memcpy(big + sizeof(big) - 20, "@example.com", sizeof("@example.com"));
		assert_int_equal(policy_user_value_check(big, strlen(big), norm, sizeof(norm), err,
							 sizeof(err)), -1);
	}
}

static struct policy_snap *user_snap(void)
{
	struct policy_snap *sn = policy_snap_empty();
	char err[200];

	assert_int_equal(policy_snap_add(sn, 1, "local_domain", "example.org", err, sizeof(err)),
			 0);
	policy_snap_add_dir(sn, "alice@example.org", POLICY_DIR_USER);
	policy_snap_add_dir(sn, "al@example.org", POLICY_DIR_ALIAS);
	policy_snap_add_dir(sn, "bob@example.org", POLICY_DIR_USER);
	policy_snap_add_dir(sn, "staff@example.org", POLICY_DIR_GROUP);
	/* alice is user 7, with an alias; bob is user 8; nobody owns staff@. */
	policy_snap_add_user_owner(sn, "alice@example.org", 7);
	policy_snap_add_user_owner(sn, "al@example.org", 7);
	policy_snap_add_user_owner(sn, "bob@example.org", 8);
	assert_int_equal(policy_snap_add_user_entry(sn, 100, 7, "block", "pest@example.net", err,
						    sizeof(err)), 0);
	assert_int_equal(policy_snap_add_user_entry(sn, 101, 7, "allow", "@shop.example", err,
						    sizeof(err)), 0);
	assert_int_equal(policy_snap_add_user_entry(sn, 102, 7, "block", "boss@shop.example",
						    err, sizeof(err)), 0);
	assert_int_equal(policy_snap_add_user_entry(sn, 103, 8, "allow", "pest@example.net", err,
						    sizeof(err)), 0);
	/* Rows a hand-written database may hold: skipped by the loader. */
	assert_int_equal(policy_snap_add_user_entry(sn, 104, 8, "maybe", "x@example.net", err,
						    sizeof(err)), -1);
	assert_int_equal(policy_snap_add_user_entry(sn, 105, 8, "block", "*@example.net", err,
						    sizeof(err)), -1);
	return sn;
}

static void test_lookup(void **state)
{
	static const struct {
		const char *rcpt, *sender;
		int64_t want_id;         /* 0: no entry */
		int64_t want_owner;
	} cases[] = {
		{ "alice@example.org", "pest@example.net", 100, 7 },
		{ "ALICE@Example.org", "Pest@EXAMPLE.net", 100, 7 },
		{ "al@example.org", "pest@example.net", 100, 7 },      /* an alias is hers */
		{ "alice@example.org", "deals@shop.example", 101, 7 }, /* @domain */
		{ "alice@example.org", "boss@shop.example", 102, 7 },  /* address before domain */
		{ "alice@example.org", "x@sub.shop.example", 0, 7 },   /* not subdomains */
		{ "alice@example.org", "friend@example.net", 0, 7 },
		{ "bob@example.org", "pest@example.net", 103, 8 },
		{ "bob@example.org", "deals@shop.example", 0, 8 },
		{ "staff@example.org", "pest@example.net", 0, 0 },     /* a group is nobody's */
		{ "carol@example.org", "pest@example.net", 0, 0 },
		{ "alice@example.org", "", 0, 0 },                     /* the null sender */
	};
	struct policy_snap *sn = user_snap();
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int64_t owner = -1;
		const struct policy_ref *r = policy_user_sender(sn, cases[i].rcpt, cases[i].sender,
								&owner);
		int64_t got = r != NULL ? r->id : 0;

		if (got != cases[i].want_id)
			fail_msg("%s from %s: got entry %lld, want %lld", cases[i].rcpt,
				 cases[i].sender, (long long)got, (long long)cases[i].want_id);
		if (cases[i].want_id != 0 && owner != cases[i].want_owner)
			fail_msg("%s: got owner %lld, want %lld", cases[i].rcpt, (long long)owner,
				 (long long)cases[i].want_owner);
	}
	policy_snap_free(sn);
}

static void test_rcpt_user_block(void **state)
{
	static const struct {
		const char *sender, *rcpt;
		enum policy_action want;
		const char *code, *check, *entry;
	} cases[] = {
		{ "pest@example.net", "alice@example.org", POLICY_REFUSE, "550 5.7.1", "user_block",
		  "user_block entry 100 pest@example.net" },
		{ "pest@example.net", "al@example.org", POLICY_REFUSE, "550 5.7.1", "user_block",
		  "user_block entry 100 pest@example.net" },
		{ "pest@example.net", "bob@example.org", POLICY_CONTINUE, "", "", "" },
		{ "pest@example.net", "staff@example.org", POLICY_REFUSE, "550 5.7.1", "group_mail",
		  "directory entry 3 staff@example.org" },
		{ "boss@shop.example", "alice@example.org", POLICY_REFUSE, "550 5.7.1", "user_block",
		  "user_block entry 102 boss@shop.example" },
		{ "deals@shop.example", "alice@example.org", POLICY_CONTINUE, "", "", "" },
		{ "", "alice@example.org", POLICY_CONTINUE, "", "", "" },
		/* An unknown recipient is told so first. */
		{ "pest@example.net", "nobody@example.org", POLICY_REFUSE, "550 5.1.1",
		  "unknown_recipient", "" },
	};
	struct policy_snap *sn = user_snap();
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct policy_sess *ps = policy_sess_test(sn, "203.0.113.5");
		struct policy_verdict v;
		enum policy_action r;

		assert_non_null(ps);
		assert_int_equal(policy_mail(ps, cases[i].sender, &v), POLICY_CONTINUE);
		r = policy_rcpt(ps, cases[i].rcpt, 0, &v);
		if (r != cases[i].want)
			fail_msg("%s -> %s: got action %d (%s), want %d", cases[i].sender,
				 cases[i].rcpt, r, v.check, cases[i].want);
		if (strcmp(v.code, cases[i].code) != 0 || strcmp(v.check, cases[i].check) != 0)
			fail_msg("%s -> %s: got %s %s, want %s %s", cases[i].sender, cases[i].rcpt,
				 v.code, v.check, cases[i].code, cases[i].check);
		if (strncmp(v.entry, cases[i].entry, strlen(cases[i].entry)) != 0 ||
		    (cases[i].entry[0] == '\0' && v.entry[0] != '\0' && r == POLICY_CONTINUE))
			fail_msg("%s -> %s: got entry \"%s\", want \"%s\"", cases[i].sender,
				 cases[i].rcpt, v.entry, cases[i].entry);
		if (r == POLICY_REFUSE && strcmp(v.check, "user_block") == 0 &&
		    strcmp(v.text, "Sender blocked by recipient") != 0)
			fail_msg("got text \"%s\"", v.text);
		policy_sess_free(ps);
	}
	policy_snap_free(sn);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_value_check),
		cmocka_unit_test(test_lookup),
		cmocka_unit_test(test_rcpt_user_block),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
