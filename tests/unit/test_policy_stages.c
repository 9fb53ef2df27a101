/*
 * Unit tests for the policy stages: a fake snapshot built in memory, a
 * session without engine or DNS, and each step's verdict (code, check,
 * entry) for a table of cases.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "policy/policy_internal.h"

static struct policy_snap *fake_snap(void)
{
	static const struct {
		const char *list, *value;
	} entries[] = {
		{ "conn_deny", "192.0.2.0/24" },
		{ "conn_allow", "192.0.2.10" },
		{ "conn_deny", "2001:db8:bad::/48" },
		{ "sender_deny", "spammer.example" },
		{ "sender_deny", "*@*.junk.example" },
		{ "sender_allow", "boss@spammer.example" },
		{ "rcpt_deny", "noreply@example.org" },
		{ "local_domain", "example.org" },
		{ "relay_net", "198.51.100.0/24" },
		{ "relay_dest_deny", "*.blocked.example" },
	};
	struct policy_snap *sn = policy_snap_empty();
	char err[200];
	size_t i;

	for (i = 0; i < sizeof(entries) / sizeof(entries[0]); i++)
		if (policy_snap_add(sn, (int64_t)i + 1, entries[i].list, entries[i].value, err,
				    sizeof(err)) < 0)
			fail_msg("fake snapshot: %s %s: %s", entries[i].list, entries[i].value, err);
	policy_snap_add_dir(sn, "alice@example.org", POLICY_DIR_USER);
	policy_snap_add_dir(sn, "al@example.org", POLICY_DIR_ALIAS);
	policy_snap_add_dir(sn, "staff@example.org", POLICY_DIR_GROUP);
	policy_settings_apply(&sn->set, "conn_deny_text", "Go away {ip}");
	policy_settings_apply(&sn->set, "max_recipients", "3");
	policy_settings_apply(&sn->set, "helo_reject_bare_ip", "yes");
	/* The stages' own verdicts; test_delay_reject covers giving them at RCPT. */
	policy_settings_apply(&sn->set, "delay_reject", "no");
	return sn;
}

static void check(const char *name, enum policy_action got, const struct policy_verdict *v,
		  enum policy_action want, const char *code, const char *chk, const char *text)
{
	if (got != want)
		fail_msg("%s: got action %d (%s %s), want %d", name, got, v->code, v->check, want);
	if (code != NULL && strcmp(v->code, code) != 0)
		fail_msg("%s: got code %s, want %s", name, v->code, code);
	if (chk != NULL && strcmp(v->check, chk) != 0)
		fail_msg("%s: got check %s, want %s", name, v->check, chk);
	if (text != NULL && strcmp(v->text, text) != 0)
		fail_msg("%s: got text \"%s\", want \"%s\"", name, v->text, text);
}

static void test_connect(void **state)
{
	static const struct {
		const char *name, *ip;
		int prec_deny;
		enum policy_action want;
		const char *check, *text, *entry;
	} cases[] = {
		{ "denied range", "192.0.2.7", 0, POLICY_REFUSE, "conn_deny", "Go away 192.0.2.7",
		  "conn_deny entry 1 192.0.2.0/24" },
		{ "allow wins", "192.0.2.10", 0, POLICY_CONTINUE, NULL, NULL, NULL },
		{ "deny wins", "192.0.2.10", 1, POLICY_REFUSE, "conn_deny", NULL, NULL },
		{ "v6 denied", "2001:db8:bad::1", 0, POLICY_REFUSE, "conn_deny", NULL,
		  "conn_deny entry 3 2001:db8:bad::/48" },
		{ "other", "203.0.113.5", 0, POLICY_CONTINUE, NULL, NULL, NULL },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct policy_snap *sn = fake_snap();
		struct policy_sess *ps;
		struct policy_verdict v;
		enum policy_action r;

		if (cases[i].prec_deny)
			policy_settings_apply(&sn->set, "conn_precedence", "deny");
		ps = policy_sess_test(sn, cases[i].ip);
		assert_non_null(ps);
		r = policy_connect(ps, 1, &v);
		check(cases[i].name, r, &v, cases[i].want,
		      cases[i].want == POLICY_REFUSE ? "554 5.7.1" : NULL, cases[i].check,
		      cases[i].text);
		if (cases[i].entry != NULL && strcmp(v.entry, cases[i].entry) != 0)
			fail_msg("%s: got entry \"%s\", want \"%s\"", cases[i].name, v.entry,
				 cases[i].entry);
		if (r == POLICY_REFUSE && !v.close)
			fail_msg("%s: a refused connection must close", cases[i].name);
		policy_sess_free(ps);
		policy_snap_free(sn); /* our reference; the session's went with it */
	}
}

static void test_mail_rcpt(void **state)
{
	static const struct {
		const char *name, *ip, *sender, *rcpt;
		size_t nrcpts;
		enum policy_action want;
		const char *code, *check;
	} cases[] = {
		{ "sender domain denied", "203.0.113.5", "x@spammer.example", NULL, 0,
		  POLICY_REFUSE, "550 5.7.1", "sender_deny" },
		{ "sender allowed over deny", "203.0.113.5", "boss@spammer.example", NULL, 0,
		  POLICY_CONTINUE, NULL, NULL },
		{ "sender glob", "203.0.113.5", "a@b.junk.example", NULL, 0, POLICY_REFUSE,
		  "550 5.7.1", "sender_deny" },
		{ "null sender ok", "203.0.113.5", "", NULL, 0, POLICY_CONTINUE, NULL, NULL },
		{ "known user", "203.0.113.5", "s@x.example", "alice@example.org", 0,
		  POLICY_CONTINUE, NULL, NULL },
		{ "known user case", "203.0.113.5", "s@x.example", "Alice@Example.ORG", 0,
		  POLICY_CONTINUE, NULL, NULL },
		{ "alias", "203.0.113.5", "s@x.example", "al@example.org", 0, POLICY_CONTINUE,
		  NULL, NULL },
		{ "unknown local", "203.0.113.5", "s@x.example", "bob@example.org", 0,
		  POLICY_REFUSE, "550 5.1.1", "unknown_recipient" },
		{ "group from outside", "203.0.113.5", "s@x.example", "staff@example.org", 0,
		  POLICY_REFUSE, "550 5.7.1", "group_mail" },
		{ "rcpt denied", "203.0.113.5", "s@x.example", "noreply@example.org", 0,
		  POLICY_REFUSE, "550 5.7.1", "rcpt_deny" },
		{ "relay denied", "203.0.113.5", "s@x.example", "r@elsewhere.example", 0,
		  POLICY_REFUSE, "554 5.7.1", "relay" },
		{ "relay from relay_net", "198.51.100.9", "s@x.example", "r@elsewhere.example", 0,
		  POLICY_CONTINUE, NULL, NULL },
		{ "relay dest denied", "198.51.100.9", "s@x.example", "r@a.blocked.example", 0,
		  POLICY_REFUSE, "554 5.7.1", "relay_dest_deny" },
		{ "too many rcpts", "198.51.100.9", "s@x.example", "alice@example.org", 3,
		  POLICY_DEFER, "452 4.5.3", "max_recipients" },
		{ "routing %", "203.0.113.5", "s@x.example", "alice%x.example@example.org", 0,
		  POLICY_REFUSE, "550 5.7.1", "routing" },
		{ "routing !", "203.0.113.5", "s@x.example", "x.example!alice@example.org", 0,
		  POLICY_REFUSE, "550 5.7.1", "routing" },
		{ "routing quoted @", "203.0.113.5", "s@x.example",
		  "\"alice@x.example\"@example.org", 0, POLICY_REFUSE, "550 5.7.1", "routing" },
		{ "routing from relay_net passes on", "198.51.100.9", "s@x.example",
		  "alice%x.example@example.org", 0, POLICY_REFUSE, "550 5.1.1",
		  "unknown_recipient" },
		{ "% outside local domains is relay's", "203.0.113.5", "s@x.example",
		  "a%b@elsewhere.example", 0, POLICY_REFUSE, "554 5.7.1", "relay" },
		{ "postmaster needs no directory entry", "203.0.113.5", "s@x.example",
		  "Postmaster@example.org", 0, POLICY_CONTINUE, NULL, NULL },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct policy_snap *sn = fake_snap();
		struct policy_sess *ps = policy_sess_test(sn, cases[i].ip);
		struct policy_verdict v;
		enum policy_action r;

		r = policy_connect(ps, 1, &v);
		check(cases[i].name, r, &v, POLICY_CONTINUE, NULL, NULL, NULL);
		r = policy_mail(ps, cases[i].sender, &v);
		if (cases[i].rcpt == NULL) {
			check(cases[i].name, r, &v, cases[i].want, cases[i].code, cases[i].check,
			      NULL);
		} else {
			check(cases[i].name, r, &v, POLICY_CONTINUE, NULL, NULL, NULL);
			r = policy_rcpt(ps, cases[i].rcpt, cases[i].nrcpts, &v);
			check(cases[i].name, r, &v, cases[i].want, cases[i].code, cases[i].check,
			      NULL);
		}
		policy_sess_free(ps);
		policy_snap_free(sn);
	}
}

static void test_postmaster(void **state)
{
	struct policy_snap *sn = policy_snap_empty();
	struct policy_sess *ps;
	char out[320];
	char err[200];

	(void)state;
	ps = policy_sess_test(sn, "203.0.113.5");
	if (policy_sess_postmaster(ps, out, sizeof(out)) != -1)
		fail_msg("no local domain: got %s, want -1", out);
	policy_sess_free(ps);
	/* Wildcards are skipped; the first plain domain added wins. */
	assert_int_equal(policy_snap_add(sn, 1, "local_domain", "*.wild.example", err,
					 sizeof(err)), 0);
	assert_int_equal(policy_snap_add(sn, 2, "local_domain", "First.example", err,
					 sizeof(err)), 0);
	assert_int_equal(policy_snap_add(sn, 3, "local_domain", "second.example", err,
					 sizeof(err)), 0);
	ps = policy_sess_test(sn, "203.0.113.5");
	assert_int_equal(policy_sess_postmaster(ps, out, sizeof(out)), 0);
	assert_string_equal(out, "postmaster@first.example");
	policy_sess_free(ps);
	policy_settings_apply(&sn->set, "postmaster_address", "abuse@second.example");
	ps = policy_sess_test(sn, "203.0.113.5");
	assert_int_equal(policy_sess_postmaster(ps, out, sizeof(out)), 0);
	assert_string_equal(out, "abuse@second.example");
	policy_sess_free(ps);
	policy_snap_free(sn);
	/* The setting's validator. */
	assert_int_equal(policy_setting_check("postmaster_address", "", err, sizeof(err)), 0);
	assert_int_equal(policy_setting_check("postmaster_address", "a@b.example", err,
					      sizeof(err)), 0);
	assert_int_equal(policy_setting_check("postmaster_address", "not an address", err,
					      sizeof(err)), -1);
	assert_int_equal(policy_setting_check("postmaster_address", "a%b@c.example", err,
					      sizeof(err)), -1);
	assert_int_equal(policy_setting_check("postmaster_address", "a@", err, sizeof(err)),
			 -1);
}

static void test_helo(void **state)
{
	static const struct {
		const char *name, *helo;
		enum policy_action want;
		const char *code, *check;
	} cases[] = {
		{ "domain", "mail.example.net", POLICY_CONTINUE, NULL, NULL },
		{ "literal", "[192.0.2.1]", POLICY_CONTINUE, NULL, NULL },
		{ "v6 literal", "[IPv6:2001:db8::1]", POLICY_CONTINUE, NULL, NULL },
		{ "bare ip", "192.0.2.1", POLICY_REFUSE, "550 5.7.1", "helo_bare_ip" },
		{ "bad syntax", "bad_name!", POLICY_REFUSE, "501 5.5.2", "helo_syntax" },
		{ "bad literal", "[300.1.1.1]", POLICY_REFUSE, "501 5.5.2", "helo_syntax" },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct policy_snap *sn = fake_snap();
		struct policy_sess *ps = policy_sess_test(sn, "203.0.113.5");
		struct policy_verdict v;
		enum policy_action r;

		policy_connect(ps, 1, &v);
		r = policy_helo(ps, cases[i].helo, strlen(cases[i].helo), &v);
		check(cases[i].name, r, &v, cases[i].want, cases[i].code, cases[i].check, NULL);
		policy_sess_free(ps);
		policy_snap_free(sn);
	}
}

/*
 * delay_reject (the default): a connect or HELO refusal answers CONTINUE and
 * waits in policy_delayed() for RCPT; a new HELO is judged anew; the
 * setting off gives the refusal at once.
 */
static void test_delay_reject(void **state)
{
	struct policy_snap *sn = fake_snap();
	struct policy_sess *ps;
	struct policy_verdict v;
	const struct policy_verdict *d;

	(void)state;
	policy_settings_apply(&sn->set, "delay_reject", "yes");
	ps = policy_sess_test(sn, "192.0.2.7"); /* on conn_deny */
	check("delayed connect", policy_connect(ps, 1, &v), &v, POLICY_CONTINUE, NULL, NULL,
	      NULL);
	d = policy_delayed(ps);
	if (d == NULL)
		fail_msg("delayed connect: got no delayed verdict, want conn_deny");
	check("delayed connect verdict", d->action, d, POLICY_REFUSE, "554 5.7.1", "conn_deny",
	      "Go away 192.0.2.7");
	assert_int_equal(d->close, 0);
	check("MAIL after delayed connect", policy_mail(ps, "s@x.example", &v), &v,
	      POLICY_CONTINUE, NULL, NULL, NULL);
	policy_sess_free(ps);

	ps = policy_sess_test(sn, "203.0.113.5");
	policy_connect(ps, 1, &v);
	assert_null(policy_delayed(ps));
	check("delayed helo", policy_helo(ps, "192.0.2.1", 9, &v), &v, POLICY_CONTINUE, NULL,
	      NULL, NULL);
	d = policy_delayed(ps);
	if (d == NULL)
		fail_msg("delayed helo: got no delayed verdict, want helo_bare_ip");
	check("delayed helo verdict", d->action, d, POLICY_REFUSE, "550 5.7.1", "helo_bare_ip",
	      NULL);
	check("good helo", policy_helo(ps, "client.example", 14, &v), &v, POLICY_CONTINUE, NULL,
	      NULL, NULL);
	if (policy_delayed(ps) != NULL)
		fail_msg("good helo: got delayed %s, want none", policy_delayed(ps)->check);
	policy_sess_free(ps);

	policy_settings_apply(&sn->set, "delay_reject", "no");
	ps = policy_sess_test(sn, "192.0.2.7");
	check("setting off", policy_connect(ps, 1, &v), &v, POLICY_REFUSE, "554 5.7.1",
	      "conn_deny", NULL);
	assert_null(policy_delayed(ps));
	policy_sess_free(ps);
	policy_snap_free(sn);
}

/* A snapshot of 10,000 entries still answers each lookup quickly. */
static void test_many_entries(void **state)
{
	struct policy_snap *sn = policy_snap_empty();
	struct policy_sess *ps;
	struct policy_verdict v;
	char val[64], err[200];
	int i;

	(void)state;
	for (i = 0; i < 10000; i++) {
		snprintf(val, sizeof(val), "10.%d.%d.0/24", i / 256, i % 256);
		assert_int_equal(policy_snap_add(sn, i + 1, "conn_deny", val, err, sizeof(err)), 0);
	}
	policy_settings_apply(&sn->set, "delay_reject", "no");
	ps = policy_sess_test(sn, "10.39.15.77");
	assert_int_equal(policy_connect(ps, 1, &v), POLICY_REFUSE);
	assert_string_equal(v.entry, "conn_deny entry 10000 10.39.15.0/24");
	policy_sess_free(ps);
	ps = policy_sess_test(sn, "11.0.0.1");
	assert_int_equal(policy_connect(ps, 1, &v), POLICY_CONTINUE);
	policy_sess_free(ps);
	{
		/* Not an assertion: the figure for bench/README.md. */
		struct timespec t0, t1;
		const int n = 200000;

		clock_gettime(CLOCK_MONOTONIC, &t0);
		for (i = 0; i < n; i++) {
			ps = policy_sess_test(sn, (i & 1) ? "11.0.0.1" : "10.39.15.77");
			policy_connect(ps, 1, &v);
			policy_mail(ps, "someone@example.net", &v);
			policy_rcpt(ps, "r@example.org", 0, &v);
			policy_sess_free(ps);
		}
		clock_gettime(CLOCK_MONOTONIC, &t1);
		print_message("connect+MAIL+RCPT stages, 10000 entries: %.0f ns per session\n",
			      ((double)(t1.tv_sec - t0.tv_sec) * 1e9 +
			       (double)(t1.tv_nsec - t0.tv_nsec)) / n);
	}
	policy_snap_free(sn);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_connect),
		cmocka_unit_test(test_delay_reject),
		cmocka_unit_test(test_mail_rcpt),
		cmocka_unit_test(test_postmaster),
		cmocka_unit_test(test_helo),
		cmocka_unit_test(test_many_entries),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
