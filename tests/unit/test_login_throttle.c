/*
 * Unit tests for the login throttle's wait (store_login_pair_wait): no wait
 * below the free failures, doubling from the first delay, the cap (also for
 * failure counts whose doubling would overflow), and time already waited.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>

#include "store/store_auth.h"

static void test_pair_wait(void **state)
{
	static const struct store_login_limits lim = {
		.window_ms = 900000, .max_per_addr = 20, .max_per_account = 100,
		.throttle_after = 5, .delay_ms = 2000, .delay_max_ms = 900000,
	};
	static const struct {
		const char *name;
		int64_t failures, newest, now;
		int64_t want;
	} cases[] = {
		{ "none", 0, 0, 1000000, 0 },
		{ "below the free tries", 4, 1000000, 1000000, 0 },
		{ "first wait", 5, 1000000, 1000000, 2000 },
		{ "first wait partly over", 5, 1000000, 1001500, 500 },
		{ "first wait over", 5, 1000000, 1002000, 0 },
		{ "doubled", 6, 1000000, 1000000, 4000 },
		{ "doubled again", 8, 1000000, 1000000, 16000 },
		{ "capped", 15, 1000000, 1000000, 900000 },
		{ "no overflow far past the cap", 5000, 1000000, 1000000, 900000 },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int64_t got = store_login_pair_wait(&lim, cases[i].failures, cases[i].newest,
						    cases[i].now);

		if (got != cases[i].want)
			fail_msg("%s: got %lld, want %lld", cases[i].name, (long long)got,
				 (long long)cases[i].want);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pair_wait),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
