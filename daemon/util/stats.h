/*
 * stats: process-wide event counters that /metrics exports (Prometheus
 * counters).  Any thread may add; the HTTP threads read.  A counter is
 * named once here, with its metric name and help text in stats.c, so that
 * the module that counts and the page that shows it never meet (smtp/
 * counts, http/ prints).
 */
#ifndef MOAT_STATS_H
#define MOAT_STATS_H

#include <stdint.h>

enum stats_counter {
	STATS_AUTH_CHECKS,      /* Argon2id verifications run for SMTP AUTH */
	STATS_AUTH_CACHE_HITS,  /* SMTP AUTH answered from the credential cache */
	STATS_AUTH_COALESCED,   /* answered by an identical check already running */
	STATS_AUTH_SUSPENDED,   /* refused at once: the account is suspended */
	STATS_AUTH_BUSY,        /* refused at once: too many waiting for the account */
	STATS_N
};

void stats_add(enum stats_counter c, uint64_t n);
uint64_t stats_get(enum stats_counter c);
/* The metric's name ("moat_..._total") and its help text. */
const char *stats_name(enum stats_counter c);
const char *stats_help(enum stats_counter c);

#endif
