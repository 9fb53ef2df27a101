/*
 * stats: the counters of stats.h, relaxed atomics (a scrape may see one
 * counter a moment ahead of another; each one is exact).
 */
#include "stats.h"

#include <stdatomic.h>
#include <stdlib.h>

static _Atomic uint64_t counters[STATS_N];

static const struct {
	const char *name;
	const char *help;
} info[STATS_N] = {
	[STATS_AUTH_CHECKS] = { "moat_auth_checks_total",
				"SMTP AUTH password hashes verified (Argon2id)." },
	[STATS_AUTH_CACHE_HITS] = { "moat_auth_cache_hits_total",
				    "SMTP AUTH exchanges answered from the credential cache." },
	[STATS_AUTH_COALESCED] = { "moat_auth_coalesced_total",
				   "SMTP AUTH exchanges answered by an identical check in flight." },
	[STATS_AUTH_SUSPENDED] = { "moat_auth_suspended_total",
				   "SMTP AUTH exchanges refused because the account is suspended." },
	[STATS_AUTH_BUSY] = { "moat_auth_busy_total",
			      "SMTP AUTH exchanges refused: too many waiting for one account." },
};

void stats_add(enum stats_counter c, uint64_t n)
{
	if ((unsigned)c >= STATS_N)
		abort();
	atomic_fetch_add_explicit(&counters[c], n, memory_order_relaxed);
}

uint64_t stats_get(enum stats_counter c)
{
	if ((unsigned)c >= STATS_N)
		abort();
	return atomic_load_explicit(&counters[c], memory_order_relaxed);
}

const char *stats_name(enum stats_counter c)
{
	return (unsigned)c < STATS_N ? info[c].name : "";
}

const char *stats_help(enum stats_counter c)
{
	return (unsigned)c < STATS_N ? info[c].help : "";
}
