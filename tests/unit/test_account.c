/*
 * Unit tests for daemon/account: the "S,M,H,D" / "M,H,D" limit parser
 * (table-driven, errors first-class), the sliding-window counters (the
 * two-fixed-window estimate and the exact per-second one), the score's
 * signals from facts, the tracker fed with events (the infected PC of the
 * incident, the own-sender bot, the PR mailing and its resend, a new
 * network, a burst above the learned baseline, a trusted account), the
 * client network of an address, the submission_listen config key and
 * the From: parser.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "account/account.h"
#include "account/account_internal.h"
#include "conf/conf.h"
#include "policy/policy.h"

static void test_parse_limits(void **state)
{
	static const struct {
		const char *name, *in;
		int rc;
		int64_t want[4];
	} cases[] = {
		{ "empty", "", -1, { 0 } },
		{ "one", "5", -1, { 0 } },
		{ "two", "1,2", -1, { 0 } },
		{ "five", "1,2,3,4,5", -1, { 0 } },
		{ "negative", "1,-2,3", -1, { 0 } },
		{ "plus sign", "+1,2,3", -1, { 0 } },
		{ "junk", "1,2,x", -1, { 0 } },
		{ "trailing comma", "1,2,3,", -1, { 0 } },
		{ "space", "1, 2,3 ", -1, { 0 } },
		{ "overflow", "1,2,99999999999999999999", -1, { 0 } },
		{ "second too high", "1001,0,0,0", -1, { 0 } },
		{ "zeros", "0,0,0", 0, { -1, 0, 0, 0 } },
		{ "old form: the default second", "30,300,1000", 0, { -1, 30, 300, 1000 } },
		{ "four", "10,120,1200,5000", 0, { 10, 120, 1200, 5000 } },
		{ "four zeros", "0,0,0,0", 0, { 0, 0, 0, 0 } },
		{ "second at most", "1000,1,1,1", 0, { 1000, 1, 1, 1 } },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int64_t got[4] = { -7, -7, -7, -7 };
		int rc = account_parse_limits(cases[i].in, got);

		if (rc != cases[i].rc)
			fail_msg("%s: got rc %d, want %d", cases[i].name, rc, cases[i].rc);
		if (rc == 0 && memcmp(got, cases[i].want, sizeof(got)) != 0)
			fail_msg("%s: got %lld,%lld,%lld,%lld", cases[i].name, (long long)got[0],
				 (long long)got[1], (long long)got[2], (long long)got[3]);
	}
}

static void test_window(void **state)
{
	struct account_win *w = account_win_new(100);
	int64_t t0 = 1000000;
	int i;

	(void)state;
	assert_int_equal(account_win_count(w, "a", 60000, t0), 0);
	for (i = 0; i < 10; i++)
		account_win_add(w, "a", 60000, t0 + i, 1);
	assert_int_equal(account_win_count(w, "a", 60000, t0 + 100), 10);
	assert_int_equal(account_win_count(w, "b", 60000, t0 + 100), 0);
	assert_int_equal(account_win_count(w, "a", 3600000, t0 + 100), 0); /* per window */
	/* half a window later the previous one still counts, by overlap */
	assert_int_equal(account_win_count(w, "a", 60000, t0 + 90000), 5);
	/* two windows later nothing is left */
	assert_int_equal(account_win_count(w, "a", 60000, t0 + 130000), 0);
	account_win_add(w, "a", 60000, t0 + 130000, 3);
	account_win_clear(w, "a");
	assert_int_equal(account_win_count(w, "a", 60000, t0 + 130001), 0);
	account_win_free(w);
}

/*
 * One-second windows.  The estimate rolls and weighs correctly at that
 * granularity, but ten events at the end of one second still count only
 * by overlap in the next: a sliding second can hold almost twice the
 * limit.  The exact counter never admits more than the limit in any
 * sliding second.
 */
static void test_window_second(void **state)
{
	struct account_win *w = account_win_new(100);
	int64_t t0 = 5000000;
	int64_t t;
	int admitted = 0;
	int i;

	(void)state;
	for (i = 0; i < 10; i++)
		account_win_add(w, "est", 1000, t0 + 990 + i / 2, 1);
	/* the key's fixed seconds start at its first event, t0 + 990 */
	assert_int_equal(account_win_count(w, "est", 1000, t0 + 995), 10);
	assert_int_equal(account_win_count(w, "est", 1000, t0 + 1989), 10);
	/* 500 ms into the next fixed second the ten weigh as five */
	assert_int_equal(account_win_count(w, "est", 1000, t0 + 2490), 5);
	assert_int_equal(account_win_count(w, "est", 1000, t0 + 3990), 0);

	/* exact, limit 10: a client retrying every 10 ms for 3 s */
	for (t = t0; t < t0 + 3000; t += 10) {
		if (account_win_count_exact(w, "ex", 1000, t) < 10) {
			account_win_add_exact(w, "ex", 1000, t, 10);
			admitted++;
		}
		/* the invariant: never more than 10 in the last 1000 ms */
		assert_true(account_win_count_exact(w, "ex", 1000, t) <= 10);
	}
	assert_int_equal(admitted, 30);
	/* a lower limit (an override) keeps the newest times */
	account_win_add_exact(w, "ex", 1000, t0 + 3000, 3);
	assert_int_equal(account_win_count_exact(w, "ex", 1000, t0 + 3000), 3);
	assert_int_equal(account_win_count_exact(w, "none", 1000, t0), 0);
	account_win_free(w);
}

static void test_window_bounded(void **state)
{
	struct account_win *w = account_win_new(10);
	char key[16];
	int i;

	(void)state;
	for (i = 0; i < 1000; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		account_win_add_exact(w, key, 1000, 1000 + i, 5);
		account_win_add(w, key, 60000, 1000 + i, 1);
	}
	/* the newest survives, memory stays bounded (checked by ASan/valgrind runs) */
	assert_int_equal(account_win_count(w, "k999", 60000, 2000), 1);
	account_win_free(w);
}

/* ---- the score from facts --------------------------------------------- */

static void test_score_signals(void **state)
{
	static const struct {
		const char *name;
		struct account_facts f;
		int64_t want[ACCOUNT_NSIGNALS];
		int64_t total;
	} cases[] = {
		{ "nothing", { .volume_floor = 50 }, { 0 }, 0 },
		{ "own senders (aliases too) are not counted", { .volume_floor = 50 }, { 0 }, 0 },
		{ "one foreign sender", { .senders = 1, .volume_floor = 50 }, { 3 }, 3 },
		{ "three foreign senders", { .senders = 3, .volume_floor = 50 }, { 9 }, 9 },
		{ "one shared From:", { .foreign_from = 1, .volume_floor = 50 },
		  { 0 }, 0 },
		{ "7 foreign From:", { .foreign_from = 7, .volume_floor = 50 }, { 0, 18 }, 18 },
		{ "bindings and malformed", { .bindings = 2, .malformed = 3, .volume_floor = 50 },
		  { 0, 0, 8, 12 }, 20 },
		{ "new network", { .new_network = 1, .volume_floor = 50 }, { 0, 0, 0, 0, 5 }, 5 },
		{ "new network, trusted", { .new_network = 1, .trusted = 1, .volume_floor = 50 },
		  { 0 }, 0 },
		{ "volume at the floor", { .messages_window = 50, .volume_floor = 50 }, { 0 }, 0 },
		{ "volume above the floor", { .messages_window = 53, .volume_floor = 50 },
		  { 0, 0, 0, 0, 0, 3 }, 3 },
		{ "volume capped", { .messages_window = 500, .volume_floor = 50 },
		  { 0, 0, 0, 0, 0, 10 }, 10 },
		{ "baseline: below 4x", { .messages_window = 500, .messages_hour = 390,
					  .baseline = 100, .baseline_weeks = 3,
					  .volume_floor = 50 }, { 0 }, 0 },
		{ "baseline: above 4x", { .messages_hour = 406, .baseline = 100,
					  .baseline_weeks = 2, .volume_floor = 50 },
		  { 0, 0, 0, 0, 0, 6 }, 6 },
		{ "baseline: floor wins", { .messages_hour = 55, .baseline = 2,
					    .baseline_weeks = 5, .volume_floor = 50 },
		  { 0, 0, 0, 0, 0, 5 }, 5 },
		{ "baseline of 1 week: not learned", { .messages_window = 40, .messages_hour = 400,
						       .baseline = 1, .baseline_weeks = 1,
						       .volume_floor = 50 }, { 0 }, 0 },
		{ "burst, trusted", { .messages_window = 500, .trusted = 1, .volume_floor = 50 },
		  { 0 }, 0 },
		{ "content: 2 messages", { .content_messages = 2, .content_domains = 300,
					   .volume_floor = 50 }, { 0 }, 0 },
		{ "content: 19 domains", { .content_messages = 9, .content_domains = 19,
					   .volume_floor = 50 }, { 0 }, 0 },
		{ "content: 20 domains", { .content_messages = 3, .content_domains = 20,
					   .volume_floor = 50 }, { 0, 0, 0, 0, 0, 0, 2 }, 2 },
		{ "content: capped", { .content_messages = 10, .content_domains = 80,
				       .volume_floor = 50 }, { 0, 0, 0, 0, 0, 0, 8 }, 8 },
		{ "content: bulk before", { .content_messages = 10, .content_domains = 80,
					    .bulk_before = 1, .volume_floor = 50 }, { 0 }, 0 },
		{ "content: trusted", { .content_messages = 10, .content_domains = 80,
					.trusted = 1, .volume_floor = 50 }, { 0 }, 0 },
		{ "all volume signals: capped at 15", { .new_network = 1, .messages_window = 500,
							.content_messages = 10, .content_domains = 80,
							.volume_floor = 50 }, { 0, 0, 0, 0, 5, 10, 0 }, 15 },
		{ "volume cap: burst gives way after content", { .new_network = 1,
								 .messages_window = 70,
								 .content_messages = 10,
								 .content_domains = 30,
								 .volume_floor = 50 },
		  { 0, 0, 0, 0, 5, 10, 0 }, 15 },
		{ "volume at the cap plus one foreign From:", { .new_network = 1,
								.messages_window = 500,
								.foreign_from = 3,
								.volume_floor = 50 },
		  { 0, 6, 0, 0, 5, 10, 0 }, 21 },
		{ "trusted keeps bindings and senders", { .senders = 4, .foreign_from = 3,
							  .bindings = 1, .trusted = 1,
							  .volume_floor = 50 }, { 12, 6, 4 }, 22 },
	};
	static const char *const names[ACCOUNT_NSIGNALS] = {
		"senders", "foreign_from", "bindings", "malformed", "new_network", "burst",
		"same_content",
	};
	size_t i;
	int k;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct account_signal s[ACCOUNT_NSIGNALS];
		int64_t total = account_score_signals(&cases[i].f, s);

		for (k = 0; k < ACCOUNT_NSIGNALS; k++) {
			if (strcmp(s[k].name, names[k]) != 0)
				fail_msg("%s: signal %d is %s, want %s", cases[i].name, k, s[k].name,
					 names[k]);
			if (s[k].points != cases[i].want[k])
				fail_msg("%s: %s got %lld points, want %lld", cases[i].name,
					 names[k], (long long)s[k].points,
					 (long long)cases[i].want[k]);
		}
		if (total != cases[i].total)
			fail_msg("%s: got score %lld, want %lld", cases[i].name, (long long)total,
				 (long long)cases[i].total);
	}
}

static void test_signals_json(void **state)
{
	struct account_facts f = { .foreign_from = 7, .volume_floor = 50, .window_s = 600 };
	struct account_signal s[ACCOUNT_NSIGNALS];
	char line[512];
	char *j;

	(void)state;
	account_score_signals(&f, s);
	j = account_signals_json(s);
	assert_non_null(strstr(j, "{\"name\":\"senders\","));
	assert_non_null(strstr(j, "\"name\":\"foreign_from\",\"label\":\"distinct From: "
			       "addresses not the account's\",\"value\":7,\"weight\":3,"
			       "\"points\":18}"));
	assert_non_null(strstr(j, "\"name\":\"same_content\""));
	assert_non_null(strstr(j, "\"weight\":0.1"));
	assert_true(strstr(j, "senders") < strstr(j, "foreign_from"));
	assert_true(strstr(j, "burst") < strstr(j, "same_content"));
	free(j);
	account_signals_line(s, 18, line, sizeof(line));
	assert_string_equal(line, "score=18 senders=0:0 foreign_from=7:18 bindings=0:0 "
			    "malformed=0:0 new_network=0:0 burst=0:0 same_content=0:0");
}

/* ---- the tracker fed with events ----------------------------------------- */

#define WIN 600000LL
#define FLOOR 50
#define T0 1767571200000LL /* Monday 2026-01-05 00:00 UTC */

static int64_t score_of(struct acct *a, int64_t now, int trusted,
			struct account_signal s[ACCOUNT_NSIGNALS])
{
	struct account_facts f;

	acct_facts(a, now, WIN, FLOOR, trusted, &f);
	return account_score_signals(&f, s);
}

/*
 * The infected PC of the incident: per message a malformed MAIL FROM
 * (`agds`, `bgssd`, `zsd;js`), a random foreign sender (553), then its own
 * sender (accepted; dead domains are not signals).
 */
static void test_track_seed_pc(void **state)
{
	static const char *const junk[] = { "agds", "bgssd", "zsd;js@x.test", "qwe" };
	struct account_signal s[ACCOUNT_NSIGNALS];
	struct acct *a = malloc(sizeof(*a));
	int64_t t = T0;
	int64_t sc = 0;
	int msg;
	char rnd[64];

	(void)state;
	acct_init(a, "infected", t);
	a->loaded = 1;
	for (msg = 0; msg < 4 && sc < 20; msg++) {
		acct_malformed(a, t);
		acct_sender(a, t, junk[msg]);
		sc = score_of(a, t, 0, s);
		if (sc >= 20)
			break;
		snprintf(rnd, sizeof(rnd), "x%d@random%d.example", msg, msg);
		acct_sender(a, t, rnd);
		acct_binding(a, t);
		sc = score_of(a, t, 0, s);
		if (sc >= 20)
			break;
		acct_mail(a, t, WIN, "192.0.2.7"); /* its own sender: not a signal */
		sc = score_of(a, t, 0, s);
		t += 1000;
	}
	/* message 1: 4 + 4 + 3 x 2 = 14; message 2, malformed: 8 + 4 + 3 x 3 = 21 */
	if (msg != 1 || sc != 21)
		fail_msg("seed PC: got score %lld at message %d, want 21 at message 2",
			 (long long)sc, msg + 1);
	assert_int_equal(s[ACCOUNT_SIG_MALFORMED].points, 8);
	assert_int_equal(s[ACCOUNT_SIG_BINDINGS].points, 4);
	assert_int_equal(s[ACCOUNT_SIG_SENDERS].value, 3);
	free(a);
}

/*
 * The own-sender bot: valid envelope sender, a new From: per message, 3
 * large domains, identical body.  foreign_from alone: 3 x (n - 1) >= 20
 * at the 8th message.
 */
static void test_track_bot(void **state)
{
	struct account_signal s[ACCOUNT_NSIGNALS];
	struct acct *a = malloc(sizeof(*a));
	uint32_t doms[3] = { 11, 22, 33 };
	int64_t t = T0 + 3600000;
	int64_t sc = 0;
	int n;

	(void)state;
	acct_init(a, "bot", t);
	a->loaded = 1;
	for (n = 1; n <= 50; n++) {
		char from[64];
		const char *froms[1] = { from };

		snprintf(from, sizeof(from), "promo%d@shop%d.example", n, n);
		acct_mail(a, t, WIN, "198.51.100.9");
		acct_message(a, t, WIN, froms, 1, 0xfeed, doms, 3);
		sc = score_of(a, t, 0, s);
		if (sc >= 20)
			break;
		t += 100;
	}
	if (n != 8 || sc != 21)
		fail_msg("bot: got score %lld at message %d, want 21 at message 8", (long long)sc,
			 n);
	assert_int_equal(s[ACCOUNT_SIG_FOREIGN_FROM].points, 21);
	assert_int_equal(s[ACCOUNT_SIG_SENDERS].points, 0);
	assert_int_equal(s[ACCOUNT_SIG_SAME_CONTENT].points, 0); /* 3 domains */
	free(a);
}

/*
 * The PR mailing: one message to 700 live recipients at 350 domains in 10
 * transactions of (up to) 80 distinct domains kept each, same content and
 * own From:; then a resend of 7 transactions in the same window.
 */
static void test_track_pr_mailing(void **state)
{
	struct account_signal s[ACCOUNT_NSIGNALS];
	struct acct *a = malloc(sizeof(*a));
	int64_t t = T0 + 7200000;
	int64_t sc;
	int tx;

	(void)state;
	acct_init(a, "pr", t);
	a->loaded = 1;
	for (tx = 0; tx < 17; tx++) {
		uint32_t doms[35];
		int d;

		for (d = 0; d < 35; d++)
			doms[d] = (uint32_t)(1000 + (tx % 10) * 35 + d);
		acct_mail(a, t, WIN, "192.0.2.44");
		acct_message(a, t, WIN, NULL, 0, 0xabcdef, doms, 35);
		sc = score_of(a, t, 0, s);
		if (sc >= 20)
			fail_msg("PR: suspended at transaction %d (score %lld)", tx + 1,
				 (long long)sc);
		t += 2000;
	}
	sc = score_of(a, t, 0, s);
	/* same content to 80+ domains the first time: capped at 8; nothing else */
	assert_int_equal(s[ACCOUNT_SIG_SAME_CONTENT].points, 8);
	assert_int_equal(s[ACCOUNT_SIG_SAME_CONTENT].value, 80);
	assert_int_equal(sc, 8);
	/* the episode ends without a suspension: remembered as bulk mail ... */
	sc = score_of(a, t + WIN + 1, 0, s);
	assert_int_equal(sc, 0);
	assert_true(a->bulk_seen > 0 && a->bulk_dirty);
	/* ... so the next such mailing scores 0 */
	t += WIN + 60000;
	for (tx = 0; tx < 5; tx++) {
		uint32_t doms[35];
		int d;

		for (d = 0; d < 35; d++)
			doms[d] = (uint32_t)(5000 + tx * 35 + d);
		acct_mail(a, t, WIN, "192.0.2.44");
		acct_message(a, t, WIN, NULL, 0, 0x1234, doms, 35);
	}
	assert_int_equal(score_of(a, t, 0, s), 0);
	assert_int_equal(s[ACCOUNT_SIG_SAME_CONTENT].value, 80);
	free(a);
}

/* A client network new to an account with a history scores 5, once. */
static void test_track_new_network(void **state)
{
	struct account_signal s[ACCOUNT_NSIGNALS];
	struct acct *a = malloc(sizeof(*a));
	int64_t t = T0 + 10 * 86400000LL;
	int i;

	(void)state;
	/* brand new account: no history, 0 */
	acct_init(a, "alice", t);
	a->loaded = 1;
	acct_mail(a, t, WIN, "203.0.113.5");
	score_of(a, t, 0, s);
	assert_int_equal(s[ACCOUNT_SIG_NEW_NETWORK].points, 0);

	/* known office network from last month; until loaded nothing is known: 0 */
	acct_init(a, "alice", t);
	acct_mail(a, t, WIN, "203.0.113.5");
	assert_int_equal(score_of(a, t, 0, s), 0);
	acct_known_network(a, "192.0.2.0/24", t - 30 * 86400000LL, t - 86400000LL, 400);
	a->loaded = 1;
	score_of(a, t, 0, s);
	assert_int_equal(s[ACCOUNT_SIG_NEW_NETWORK].points, 5);
	/* twice from the new network: still 5 (once) */
	acct_mail(a, t + 1000, WIN, "203.0.113.6");
	score_of(a, t + 1000, 0, s);
	assert_int_equal(s[ACCOUNT_SIG_NEW_NETWORK].points, 5);
	/* trusted: 0 */
	score_of(a, t + 1000, 1, s);
	assert_int_equal(s[ACCOUNT_SIG_NEW_NETWORK].points, 0);
	/* from the known network only, a window later: 0 */
	acct_mail(a, t + WIN + 5000, WIN, "192.0.2.99");
	score_of(a, t + WIN + 5000, 0, s);
	assert_int_equal(s[ACCOUNT_SIG_NEW_NETWORK].points, 0);

	/* a history of 20 messages on a network first seen before the window */
	acct_init(a, "bob", t);
	a->loaded = 1;
	for (i = 0; i < 20; i++)
		acct_mail(a, t + i, WIN, "192.0.2.1");
	acct_mail(a, t + WIN + 100, WIN, "2001:db8:1:2::77");
	score_of(a, t + WIN + 100, 0, s);
	assert_int_equal(s[ACCOUNT_SIG_NEW_NETWORK].points, 5);
	assert_int_equal(acct_client_messages(a, account_hash32("2001:db8:1:2::77", 16),
					      t + WIN + 100, WIN), 1);
	free(a);
}

/* Burst: the learned per-hour baseline over weeks, and the floor without one. */
static void test_track_burst(void **state)
{
	struct account_signal s[ACCOUNT_NSIGNALS];
	struct acct *a = malloc(sizeof(*a));
	int64_t t = T0 + 9 * 3600000LL; /* Monday 09h */
	int how = acct_how(t);
	int64_t count;
	int h2;
	int i;

	(void)state;
	assert_int_equal(how, 9);
	assert_int_equal(acct_how(T0 - 1), 167); /* Sunday 23h */
	acct_init(a, "sales", t);
	a->loaded = 1;
	/* no baseline: 60 messages in the window, floor 50: 10 */
	for (i = 0; i < 60; i++)
		acct_mail(a, t + i * 1000, WIN, "192.0.2.3");
	score_of(a, t + 60000, 0, s);
	assert_int_equal(s[ACCOUNT_SIG_BURST].points, 10);
	assert_int_equal(s[ACCOUNT_SIG_BURST].value, 60);

	/* learned: 30/h on Mondays at 09h for 3 weeks; 60 is below 4 x 30 */
	acct_baseline_observe(a, how, 30);
	acct_baseline_observe(a, how, 30);
	acct_baseline_observe(a, how, 30);
	assert_int_equal(a->base_weeks[how], 3);
	score_of(a, t + 60000, 0, s);
	assert_int_equal(s[ACCOUNT_SIG_BURST].points, 0);
	/* 125 in the hour: 5 above 120 */
	for (i = 0; i < 65; i++)
		acct_mail(a, t + 61000 + i * 1000, WIN * 6, "192.0.2.3");
	score_of(a, t + 130000, 0, s);
	assert_int_equal(s[ACCOUNT_SIG_BURST].value, 125);
	assert_int_equal(s[ACCOUNT_SIG_BURST].points, 5);

	/* the hour rolls: the first (partial) hour is not learned, the next one is */
	assert_int_equal(acct_hour_roll(a, t + 3600000, &h2, &count), 0);
	acct_mail(a, t + 3600000 + 5, WIN, "192.0.2.3");
	assert_int_equal(acct_hour_roll(a, t + 2 * 3600000 + 5, &h2, &count), 1);
	assert_int_equal(h2, 10);
	assert_int_equal(count, 1);
	free(a);
}

static void test_client_net(void **state)
{
	static const struct {
		const char *in, *want;
	} cases[] = {
		{ "192.0.2.77", "192.0.2.0/24" },
		{ "::ffff:198.51.100.1", "198.51.100.0/24" },
		{ "2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64" },
		{ "::1", "::/64" },
		{ "not an address", NULL },
		{ "", NULL },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char out[64];
		int rc = account_client_net(cases[i].in, out, sizeof(out));

		if (cases[i].want == NULL) {
			if (rc != -1)
				fail_msg("%s: got %s, want an error", cases[i].in, out);
		} else if (rc != 0 || strcmp(out, cases[i].want) != 0) {
			fail_msg("%s: got %d %s, want %s", cases[i].in, rc, rc == 0 ? out : "",
				 cases[i].want);
		}
	}
}

static void test_submission_listen(void **state)
{
	const char *text = "submission_listen = 127.0.0.1:587, [::1]:0\n";
	struct conf c;
	char err[256];

	(void)state;
	conf_defaults(&c);
	assert_int_equal(c.submission_listen_count, 0);
	assert_int_equal(c.auth_allow_plaintext, 0);
	if (conf_parse(&c, text, strlen(text), "t.conf", err, sizeof(err)) < 0)
		fail_msg("refused: %s", err);
	assert_int_equal(c.submission_listen_count, 2);
	assert_int_equal(c.submission_listen[0].port, 587);
	assert_int_equal(c.smtp_listen_count, 1); /* untouched */
	assert_int_equal(conf_set(&c, "submission_listen", "", err, sizeof(err)), 0);
	assert_int_equal(c.submission_listen_count, 0);
	assert_int_equal(conf_set(&c, "submission_listen", "nope", err, sizeof(err)), -1);
}

static void join_cb(const char *addr, size_t alen, void *arg)
{
	char *out = arg;
	size_t n = strlen(out);

	snprintf(out + n, 512 - n, "%s%.*s", n ? "|" : "", (int)alen, addr);
}

static void test_from_addresses(void **state)
{
	static const struct {
		const char *name, *hdr;
		int want_n;
		const char *want;
	} cases[] = {
		{ "no from", "Subject: x\r\nTo: a@b\r\n\r\nFrom: body@x\r\n", -1, "" },
		{ "empty header", "\r\nFrom: a@b\r\n", -1, "" },
		{ "from without address", "From: nobody\r\n\r\n", 0, "" },
		{ "bare", "From: a@example.com\r\n\r\n", 1, "a@example.com" },
		{ "angle", "from: Alice <alice@example.com>\r\n\r\n", 1, "alice@example.com" },
		{ "quoted comma", "From: \"Doe, <x@evil>\" <d@example.com>\r\n\r\n", 1,
		  "d@example.com" },
		{ "comment", "From: a@example.com (Alice <x@evil>)\r\n\r\n", 1, "a@example.com" },
		{ "folded list", "Subject: s\r\nFrom: A <a@x.org>,\r\n\tb@y.org\r\n\r\n", 2,
		  "a@x.org|b@y.org" },
		{ "group", "From: team: a@x.org, b@x.org;\r\n\r\n", 2, "a@x.org|b@x.org" },
		{ "unterminated angle", "From: A <a@x.org\r\n\r\n", 0, "" },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char got[512] = "";
		int n = policy_from_addresses(cases[i].hdr, strlen(cases[i].hdr), join_cb, got);

		if (n != cases[i].want_n || strcmp(got, cases[i].want) != 0)
			fail_msg("%s: got %d \"%s\", want %d \"%s\"", cases[i].name, n, got,
				 cases[i].want_n, cases[i].want);
	}
}

/* ---- which accounts may leave memory ----------------------------------- */

static void test_evictable(void **state)
{
	static const int64_t H = 3600000;
	struct acct *a = malloc(sizeof(*a));
	int64_t t0 = 1764460800000LL; /* a Monday, 00h UTC */

	(void)state;
	assert_non_null(a);
	acct_init(a, "alice", t0);
	a->loaded = 1;
	assert_int_equal(acct_evictable(a, t0 + H - 1, H, 20 * 60000), 0); /* not idle yet */
	assert_int_equal(acct_evictable(a, t0 + H, H, 20 * 60000), 1);
	assert_int_equal(acct_evictable(a, t0 + H, H, 2 * H), 0);          /* two long windows */
	acct_mail(a, t0 + H, 600000, "192.0.2.7");
	assert_int_equal(acct_evictable(a, t0 + H + 1000, H, 0), 0);       /* just sent */
	assert_int_equal(acct_evictable(a, t0 + 2 * H, H, 0), 0);          /* network unwritten */
	assert_int_equal(a->nnets, 1);
	a->nets[0].dirty = 0;                                             /* the flush wrote it */
	assert_int_equal(acct_evictable(a, t0 + 2 * H, H, 0), 1);
	a->suspended = 1;
	assert_int_equal(acct_evictable(a, t0 + 3 * H, H, 0), 0);
	a->suspended = 0;
	a->trusted_until = t0 + 10 * H;
	assert_int_equal(acct_evictable(a, t0 + 3 * H, H, 0), 0);
	a->trusted_until = 0;
	a->lim[1] = 5;
	assert_int_equal(acct_evictable(a, t0 + 3 * H, H, 0), 0);           /* an override */
	a->lim[1] = -1;
	a->dirty = 1;
	assert_int_equal(acct_evictable(a, t0 + 3 * H, H, 0), 0);           /* not flushed */
	a->dirty = 0;
	a->score = 3;
	assert_int_equal(acct_evictable(a, t0 + 3 * H, H, 0), 0);
	a->score = 0;
	a->loaded = 0;
	a->load_sent = 1;
	assert_int_equal(acct_evictable(a, t0 + 3 * H, H, 0), 0);           /* load in flight */
	a->loaded = 1;
	assert_int_equal(acct_evictable(a, t0 + 3 * H, H, 0), 1);
	free(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_limits),
		cmocka_unit_test(test_window),
		cmocka_unit_test(test_window_second),
		cmocka_unit_test(test_window_bounded),
		cmocka_unit_test(test_score_signals),
		cmocka_unit_test(test_signals_json),
		cmocka_unit_test(test_track_seed_pc),
		cmocka_unit_test(test_track_bot),
		cmocka_unit_test(test_track_pr_mailing),
		cmocka_unit_test(test_track_new_network),
		cmocka_unit_test(test_track_burst),
		cmocka_unit_test(test_client_net),
		cmocka_unit_test(test_submission_listen),
		cmocka_unit_test(test_from_addresses),
		cmocka_unit_test(test_evictable),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
