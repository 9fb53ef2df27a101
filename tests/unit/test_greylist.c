/*
 * Unit tests for greylisting: the network of a client address and the
 * sender key (pure, table-driven, bad input first-class), and the check's
 * states over a real SQLite store in a temporary file with a clock the
 * test sets.  Failures say got/want.
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

#include "score/greylist.h"
#include "store/store.h"
#include "store/store_greylist.h"

static void test_network(void **state)
{
	static const struct {
		const char *name, *in, *want; /* want NULL: refused */
	} cases[] = {
		{ "v4", "192.0.2.77", "192.0.2.0/24" },
		{ "v4 zero", "0.0.0.0", "0.0.0.0/24" },
		{ "v4 top", "255.255.255.255", "255.255.255.0/24" },
		{ "v6", "2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64" },
		{ "v6 short", "2001:db8::1", "2001:db8::/64" },
		{ "v6 upper case", "2001:DB8:A:B::FF", "2001:db8:a:b::/64" },
		{ "v6 loopback", "::1", "::/64" },
		{ "v6 with prefix", "IPv6:2001:db8:1:2::9", "2001:db8:1:2::/64" },
		{ "v6 in brackets", "[2001:db8:1:2::9]", "2001:db8:1:2::/64" },
		{ "v4-mapped", "::ffff:192.0.2.77", "192.0.2.0/24" },
		{ "v4-mapped upper", "::FFFF:198.51.100.1", "198.51.100.0/24" },
		{ "v6 all ones", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
		  "ffff:ffff:ffff:ffff::/64" },
		{ "empty", "", NULL },
		{ "garbage", "mail.example.org", NULL },
		{ "v4 short", "192.0.2", NULL },
		{ "v4 octet too big", "192.0.2.256", NULL },
		{ "v4 leading space", " 192.0.2.1", NULL },
		{ "v4 trailing newline", "192.0.2.1\n", NULL },
		{ "v4 with prefix", "192.0.2.1/24", NULL },
		{ "v6 zone id", "fe80::1%eth0", NULL },
		{ "v6 two ::", "2001::db8::1", NULL },
		{ "v6 too many groups", "1:2:3:4:5:6:7:8:9", NULL },
		{ "brackets only", "[]", NULL },
		{ "IPv6: only", "IPv6:", NULL },
		{ "too long", "0000:0000:0000:0000:0000:0000:0000:0000:0000:0000:0000:0000", NULL },
	};
	char out[GREYLIST_NETWORK_MAX];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = greylist_network(cases[i].in, strlen(cases[i].in), out, sizeof(out));

		if (cases[i].want == NULL) {
			if (rc == 0)
				fail_msg("%s: %s: got %s, want refused", cases[i].name, cases[i].in,
					 out);
			continue;
		}
		if (rc != 0)
			fail_msg("%s: %s: got refused, want %s", cases[i].name, cases[i].in,
				 cases[i].want);
		if (strcmp(out, cases[i].want) != 0)
			fail_msg("%s: %s: got %s, want %s", cases[i].name, cases[i].in, out,
				 cases[i].want);
	}
}

static void test_network_bounds(void **state)
{
	static const char nul[] = "192.0.2.1\0.5";
	char small[8], out[GREYLIST_NETWORK_MAX];

	(void)state;
	/* A NUL inside the given length is not an address. */
	if (greylist_network(nul, sizeof(nul) - 1, out, sizeof(out)) == 0)
		fail_msg("embedded NUL: got %s, want refused", out);
	/* Only len octets are read: the rest of the buffer does not count. */
	if (greylist_network("192.0.2.1xyz", 9, out, sizeof(out)) != 0 ||
	    strcmp(out, "192.0.2.0/24") != 0)
		fail_msg("length-bounded: got refused or wrong, want 192.0.2.0/24");
	if (greylist_network("192.0.2.1", 9, small, sizeof(small)) == 0)
		fail_msg("small output: got %s, want refused", small);
	if (greylist_network(NULL, 0, out, sizeof(out)) == 0)
		fail_msg("NULL: got accepted, want refused");
}

static void test_sender_key(void **state)
{
	static const struct {
		const char *name, *sender, *spf, *want;
	} cases[] = {
		{ "address lower-cased", "Alice@Example.ORG", NULL, "alice@example.org" },
		{ "null sender", "", NULL, "<>" },
		{ "null sender in brackets", "<>", NULL, "<>" },
		{ "NULL sender", NULL, NULL, "<>" },
		{ "spf domain wins", "bounce-12345@mail.Example.com", "Example.COM", "example.com" },
		{ "spf domain final dot", "a@example.com", "example.com.", "example.com" },
		{ "empty spf domain ignored", "a@example.com", "", "a@example.com" },
		{ "spf domain for null sender", "", "helo.example.net", "helo.example.net" },
	};
	char out[GREYLIST_KEY_MAX + 1];
	char longs[GREYLIST_KEY_MAX + 10];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (greylist_sender_key(cases[i].sender, cases[i].spf, out, sizeof(out)) != 0)
			fail_msg("%s: got refused, want %s", cases[i].name, cases[i].want);
		if (strcmp(out, cases[i].want) != 0)
			fail_msg("%s: got %s, want %s", cases[i].name, out, cases[i].want);
	}
	memset(longs, 'a', sizeof(longs) - 1);
	longs[sizeof(longs) - 1] = '\0';
	if (greylist_sender_key(longs, NULL, out, sizeof(out)) == 0)
		fail_msg("overlong sender: got accepted, want refused");
	if (greylist_sender_key("a@example.org", NULL, out, 4) == 0)
		fail_msg("small output: got accepted, want refused");
}

/* ---- the check over a real store ---- */

struct fixture {
	char path[64];
	struct store *st;
};

static int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));
	char err[256];
	int fd;

	snprintf(fx->path, sizeof(fx->path), "/tmp/moat-greylist-XXXXXX");
	fd = mkstemp(fx->path);
	if (fd < 0)
		return -1;
	close(fd);
	unlink(fx->path);
	fx->st = store_open(fx->path, STORE_MIGRATE, err, sizeof(err));
	if (fx->st == NULL) {
		fprintf(stderr, "store_open: %s\n", err);
		return -1;
	}
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;
	char p[80];

	store_close(fx->st);
	unlink(fx->path);
	snprintf(p, sizeof(p), "%s-wal", fx->path);
	unlink(p);
	snprintf(p, sizeof(p), "%s-shm", fx->path);
	unlink(p);
	free(fx);
	return 0;
}

#define S 1000LL
static const struct greylist_params params = {
	.delay_ms = 300 * S, .window_ms = 3600 * S, .lifetime_ms = 86400 * S, .auto_allow = 2,
};
#define T0 1800000000000LL

static const char *const res_name[] = { "PASS", "DEFER", "ALLOWED" };

static void want(struct store *st, const char *addr, const char *sender, const char *spf,
		 const char *rcpt, int64_t now, enum greylist_res wres, int64_t wretry,
		 const char *what)
{
	struct greylist_key k = { addr, sender, spf, rcpt };
	enum greylist_res res;
	int64_t retry = -1;

	if (greylist_check(st, &k, &params, now, &res, &retry) != 0)
		fail_msg("%s: greylist_check failed", what);
	if (res != wres)
		fail_msg("%s: got %s, want %s", what, res_name[res], res_name[wres]);
	if (wretry >= 0 && retry != wretry)
		fail_msg("%s: got retry in %lld ms, want %lld", what, (long long)retry,
			 (long long)wretry);
}

static void test_check_states(void **state)
{
	struct fixture *fx = *state;
	struct store *st = fx->st;

	want(st, "192.0.2.10", "a@example.org", NULL, "u@example.net", T0, GREYLIST_DEFER,
	     300 * S, "first sight");
	want(st, "192.0.2.10", "a@example.org", NULL, "u@example.net", T0 + 100 * S,
	     GREYLIST_DEFER, 200 * S, "retry too early");
	/* Another address of the /24, case differences: the same triplet. */
	want(st, "192.0.2.99", "A@Example.org", NULL, "U@example.NET", T0 + 300 * S,
	     GREYLIST_PASS, 0, "retry after the delay from a neighbour");
	want(st, "192.0.2.10", "a@example.org", NULL, "u@example.net", T0 + 400 * S,
	     GREYLIST_PASS, 0, "passed triplet used again");
	/* Within the lifetime after its last use it stays passed. */
	want(st, "192.0.2.10", "a@example.org", NULL, "u@example.net", T0 + 400 * S + 86000 * S,
	     GREYLIST_PASS, 0, "passed triplet within its lifetime");
	/* Unused for longer than the lifetime: starts over. */
	want(st, "192.0.2.10", "a@example.org", NULL, "u@example.net",
	     T0 + 400 * S + 86000 * S + 86401 * S, GREYLIST_DEFER, 300 * S,
	     "passed triplet past its lifetime");

	/* Another recipient is another triplet; another network too. */
	want(st, "192.0.2.10", "a@example.org", NULL, "v@example.net", T0, GREYLIST_DEFER,
	     300 * S, "other recipient");
	want(st, "192.0.3.10", "a@example.org", NULL, "u@example.net", T0 + 400 * S,
	     GREYLIST_DEFER, 300 * S, "other network");

	/* A retry after the window: starts over. */
	want(st, "198.51.100.1", "b@example.org", NULL, "u@example.net", T0, GREYLIST_DEFER,
	     300 * S, "window: first sight");
	want(st, "198.51.100.1", "b@example.org", NULL, "u@example.net", T0 + 3901 * S,
	     GREYLIST_DEFER, 300 * S, "window: retry too late starts over");
	want(st, "198.51.100.1", "b@example.org", NULL, "u@example.net", T0 + 4201 * S,
	     GREYLIST_PASS, 0, "window: retry of the new round");
}

static void test_check_spf_and_null(void **state)
{
	struct fixture *fx = *state;
	struct store *st = fx->st;

	want(st, "203.0.113.5", "bounce-1@mail.example.com", "example.com", "u@example.net", T0,
	     GREYLIST_DEFER, 300 * S, "spf: first sight");
	/* A different address of the same SPF-passed domain is the same triplet. */
	want(st, "203.0.113.6", "bounce-2@mail.example.com", "example.com", "u@example.net",
	     T0 + 301 * S, GREYLIST_PASS, 0, "spf: other address of the domain");
	/* Without SPF the address is the key again. */
	want(st, "203.0.113.6", "bounce-3@mail.example.com", NULL, "u@example.net",
	     T0 + 302 * S, GREYLIST_DEFER, 300 * S, "spf: no pass, new address");
	want(st, "203.0.113.7", "", NULL, "u@example.net", T0, GREYLIST_DEFER, 300 * S,
	     "null sender: first sight");
	want(st, "203.0.113.7", "<>", NULL, "u@example.net", T0 + 300 * S, GREYLIST_PASS, 0,
	     "null sender: retry");
}

static void test_check_auto_allow(void **state)
{
	struct fixture *fx = *state;
	struct store *st = fx->st;
	const char *rcpts[] = { "a@example.net", "b@example.net", "c@example.net" };
	size_t i;

	for (i = 0; i < 2; i++) {
		want(st, "2001:db8:5:6::1", "s@example.org", NULL, rcpts[i], T0, GREYLIST_DEFER,
		     300 * S, "auto-allow: first sight");
		want(st, "2001:db8:5:6::2", "s@example.org", NULL, rcpts[i], T0 + 300 * S,
		     GREYLIST_PASS, 0, "auto-allow: retry");
	}
	/* Two triplets passed (auto_allow 2): the /64 is no longer greylisted. */
	want(st, "2001:db8:5:6:ffff::3", "new@example.org", NULL, rcpts[2], T0 + 400 * S,
	     GREYLIST_ALLOWED, 0, "auto-allow: allowed network");
	want(st, "2001:db8:5:7::1", "new@example.org", NULL, rcpts[2], T0 + 400 * S,
	     GREYLIST_DEFER, 300 * S, "auto-allow: the next /64 is not");
	/* Allowed networks are forgotten after the lifetime without mail. */
	want(st, "2001:db8:5:6::1", "x@example.org", NULL, rcpts[2], T0 + 400 * S + 86401 * S,
	     GREYLIST_DEFER, 300 * S, "auto-allow: past its lifetime");
}

static int count_rows(const struct store_greylist_row *r, void *arg)
{
	(void)r;
	(*(int *)arg)++;
	return 0;
}

static void test_check_purge_and_bad_input(void **state)
{
	struct fixture *fx = *state;
	struct store *st = fx->st;
	struct store_greylist_filter f;
	struct greylist_key bad = { "not-an-ip", "a@example.org", NULL, "u@example.net" };
	enum greylist_res res;
	int64_t retry, total;
	int n = 0;

	if (greylist_check(st, &bad, &params, T0, &res, &retry) == 0)
		fail_msg("bad address: got 0, want -1");
	if (res != GREYLIST_PASS)
		fail_msg("bad address: got %s, want PASS", res_name[res]);
	want(st, "192.0.2.1", "p@example.org", NULL, "u@example.net", T0, GREYLIST_DEFER, -1,
	     "purge: first sight");
	/* Far in the future: the row has expired and the check purges it. */
	want(st, "192.0.2.200", "q@example.org", NULL, "u@example.net", T0 + 10 * 86400 * S,
	     GREYLIST_DEFER, -1, "purge: a later check");
	memset(&f, 0, sizeof(f));
	f.now = 0; /* every row, expired or not */
	if (store_greylist_list(st, &f, count_rows, &n, &total) != 0)
		fail_msg("list failed");
	if (total != 1 || n != 1)
		fail_msg("after purge: got %lld rows, want 1", (long long)total);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_network),
		cmocka_unit_test(test_network_bounds),
		cmocka_unit_test(test_sender_key),
		cmocka_unit_test_setup_teardown(test_check_states, setup, teardown),
		cmocka_unit_test_setup_teardown(test_check_spf_and_null, setup, teardown),
		cmocka_unit_test_setup_teardown(test_check_auto_allow, setup, teardown),
		cmocka_unit_test_setup_teardown(test_check_purge_and_bad_input, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
