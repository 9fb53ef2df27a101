/*
 * account: defence of authenticated submission — sliding-window counters
 * keyed by client address or account (AUTH failures, rate limits, the
 * compromised-account score).  Runs on the mail event loop only; no I/O.
 */
#ifndef MOAT_ACCOUNT_H
#define MOAT_ACCOUNT_H

#include <stddef.h>
#include <stdint.h>

#include "../policy/policy.h" /* struct policy_verdict: the one verdict type */

/*
 * Counters of events per (key, window length): each is estimated over the
 * last window_ms from two fixed windows (the current one counted fully, the
 * previous one weighted by how much of it still overlaps), so memory per
 * key is constant.  At most max_keys entries; past it, expired ones are
 * dropped, then the oldest.
 */
struct account_win;

struct account_win *account_win_new(size_t max_keys);
void account_win_free(struct account_win *w);
/* Events counted for key in the last window_ms, at now (ms). */
int64_t account_win_count(struct account_win *w, const char *key, int64_t window_ms,
			  int64_t now);
/* Count n events for key at now. */
void account_win_add(struct account_win *w, const char *key, int64_t window_ms, int64_t now,
		     int64_t n);
/* Forget key (every window). */
void account_win_clear(struct account_win *w, const char *key);

#endif

/* ---- the engine: rate limits, compromise score, suspension ------------- */

/*
 * One engine on the mail loop (policy/ owns it and is its only caller;
 * smtp/ never sees it).  Its worker (util/worker.h)
 * owns a SQLite connection: it persists totals and suspensions, holds the
 * queued mail of a suspended account (store_queue_hold by auth_user), and
 * every second reads suspensions (an administrator's lift) and per-account
 * limit overrides back.  Nothing here blocks the loop.
 */
struct account_engine;
struct conf;
struct event_base;

/*
 * Verdicts are policy verdicts: POLICY_CONTINUE, or POLICY_REFUSE /
 * POLICY_DEFER with code, text and check filled.
 */

struct account_engine *account_engine_new(struct event_base *base, const struct conf *conf,
					  const char *db_path, char *err, size_t errsz);
/* Flushes what is pending and stops the worker.  NULL ok. */
void account_engine_free(struct account_engine *e);

/*
 * MAIL from authenticated user at client addr; bound: the sender belongs
 * to the user.  Counts the attempt; refuses (suspended, binding), defers
 * (rate limit), and may suspend the account when the score crosses the
 * threshold.
 */
enum policy_action account_mail(struct account_engine *e, const char *user,
				const char *addr, const char *sender, int bound,
				struct policy_verdict *v);
/*
 * RCPT of an authenticated user; dead: the domain cannot receive mail
 * (counted; CONTINUE unless that suspended the account: the caller
 * refuses the recipient itself).
 */
enum policy_action account_rcpt(struct account_engine *e, const char *user,
				const char *addr, const char *rcpt, int dead,
				struct policy_verdict *v);
/* A From: header address not the user's (auth_bind_from_header): counted as a refused binding. */
enum policy_action account_from_refused(struct account_engine *e, const char *user,
					const char *from, struct policy_verdict *v);
/* 1 when user is suspended (checked again at end of DATA). */
int account_suspended(struct account_engine *e, const char *user);

/*
 * AUTH failures per client address (auth_fail_window, auth_fail_max_per_addr):
 * 1 when addr may not try again now; count one failure.
 */
int account_auth_blocked(struct account_engine *e, const char *addr);
void account_auth_failed(struct account_engine *e, const char *addr);

/* The score's parts for user now, as text ("score=.. senders=.. ..."). */
int64_t account_score(struct account_engine *e, const char *user, char *detail,
		      size_t detailsz);
/* Parse "N,N,N" (per minute, hour, day; 0 none).  0 or -1. */
int account_parse_limits(const char *s, int64_t out[3]);
