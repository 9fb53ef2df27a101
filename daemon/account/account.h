/*
 * account: defence of authenticated submission — rate limits per account
 * and client address, AUTH failures per client address, and the
 * compromised-account score with suspension (docs/submission.md,
 * "Compromised-account detection").  Runs on the mail event loop only;
 * SQLite only on the engine's worker.
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
 *
 * For short windows (the per-second limits) the estimate is not enough: a
 * burst at the end of one second and the start of the next would let up to
 * twice the limit through in one sliding second.  The _exact variants keep
 * the times of the key's last `keep` events (keep <= ACCOUNT_WIN_KEEP_MAX),
 * so the count over the window is exact up to keep — enough to enforce a
 * limit of keep events in any sliding window.
 */
struct account_win;

#define ACCOUNT_WIN_KEEP_MAX 1000

struct account_win *account_win_new(size_t max_keys);
void account_win_free(struct account_win *w);
/* Events counted for key in the last window_ms, at now (ms). */
int64_t account_win_count(struct account_win *w, const char *key, int64_t window_ms,
			  int64_t now);
/* Count n events for key at now. */
void account_win_add(struct account_win *w, const char *key, int64_t window_ms, int64_t now,
		     int64_t n);
/* Exact count over window_ms, up to the keep of the key's last add_exact. */
int64_t account_win_count_exact(struct account_win *w, const char *key, int64_t window_ms,
				int64_t now);
/* Count one event, keeping the times of the last keep (1..ACCOUNT_WIN_KEEP_MAX). */
void account_win_add_exact(struct account_win *w, const char *key, int64_t window_ms,
			   int64_t now, size_t keep);
/* Forget key (every window). */
void account_win_clear(struct account_win *w, const char *key);

/* ---- the score: named signals ------------------------------------------ */

/* The signals, in the fixed order of the JSON array (account_state.signals). */
enum account_signal_id {
	ACCOUNT_SIG_SENDERS,
	ACCOUNT_SIG_FOREIGN_FROM,
	ACCOUNT_SIG_BINDINGS,
	ACCOUNT_SIG_MALFORMED,
	ACCOUNT_SIG_NEW_NETWORK,
	ACCOUNT_SIG_BURST,
	ACCOUNT_SIG_SAME_CONTENT,
	ACCOUNT_NSIGNALS
};

struct account_signal {
	const char *name;    /* "senders", ... (static) */
	char label[96];      /* what value counts, for the administrator */
	int64_t value;
	double weight;
	int64_t points;
};

/* What the engine counted for one account over its window (account_track.c). */
struct account_facts {
	int64_t senders;          /* distinct envelope senders tried (malformed ones too) */
	int64_t foreign_from;     /* distinct From: addresses not the account's */
	int64_t bindings;         /* refused sender bindings, MAIL and From: */
	int64_t malformed;        /* malformed MAIL FROM (501 5.1.7) */
	int new_network;          /* a message of the window from a network new to an
				   * account that has a history */
	int64_t messages_window;  /* accepted MAIL in the window */
	int64_t messages_hour;    /* accepted MAIL in the last hour */
	double baseline;          /* learned messages per hour, this hour of the week */
	int64_t baseline_weeks;   /* weeks that hour was observed; < 2: not learned */
	int64_t content_messages; /* the most-repeated content of the window: messages */
	int64_t content_domains;  /* ... and its distinct recipient domains */
	int bulk_before;          /* the account sent such bulk before (account_state.bulk_seen) */
	int trusted;              /* trusted for bulk mail now (account_state.trusted_until) */
	int64_t volume_floor;     /* account_volume_floor */
	int64_t window_s;         /* account_window, for the labels */
};

/* Weights and caps of the model (docs/submission.md); named once here. */
#define ACCOUNT_W_SENDERS 3
#define ACCOUNT_W_FOREIGN_FROM 3
#define ACCOUNT_W_BINDINGS 4
#define ACCOUNT_W_MALFORMED 4
#define ACCOUNT_P_NEW_NETWORK 5
#define ACCOUNT_BURST_CAP 10
#define ACCOUNT_BURST_FACTOR 4       /* x the learned baseline */
#define ACCOUNT_BASELINE_WEEKS 2     /* weeks before a baseline counts */
#define ACCOUNT_CONTENT_MESSAGES 3   /* identical content: at least this many messages */
#define ACCOUNT_CONTENT_DOMAINS 20   /* ... to at least this many domains */
#define ACCOUNT_CONTENT_PER 10       /* one point per this many domains */
#define ACCOUNT_CONTENT_CAP 8        /* at most; below account_suspend_score alone */
/*
 * new_network + burst + same_content together: a legitimate mass mailing
 * can show all three, so volume alone stays below the default
 * account_suspend_score (20); a suspension also needs a sign that someone
 * else is using the account (senders, From:, bindings, malformed senders).
 */
#define ACCOUNT_VOLUME_CAP 15

/* Pure: the signals for f, in order, and their sum (the score). */
int64_t account_score_signals(const struct account_facts *f,
			      struct account_signal out[ACCOUNT_NSIGNALS]);
/* The signals as the JSON array of account_state.signals (malloc'd; caller frees). */
char *account_signals_json(const struct account_signal s[ACCOUNT_NSIGNALS]);
/* The human line: "score=N senders=V:P ...". */
void account_signals_line(const struct account_signal s[ACCOUNT_NSIGNALS], int64_t score,
			  char *out, size_t outsz);

/* Parse "S,M,H,D" (per second, minute, hour, day) or the older "M,H,D"
 * (the second then -1: the setting's default per-second value); 0 is no
 * limit; the second at most ACCOUNT_WIN_KEEP_MAX.  0 or -1. */
int account_parse_limits(const char *s, int64_t out[4]);

/* The client network of a textual address: "192.0.2.0/24", "2001:db8::/64".  0 or -1. */
int account_client_net(const char *addr, char *out, size_t outsz);

/* ---- the engine: rate limits, compromise score, suspension ------------- */

/*
 * One engine on the mail loop (policy/ owns it and is its only caller;
 * smtp/ never sees it).  Its worker (util/worker.h) owns a SQLite
 * connection: it loads an account's known networks, learned baseline and
 * bulk history when the account is first seen, persists totals, signals,
 * networks and baselines, records suspensions with their alert, holds the
 * queued mail of a suspended account (store_queue_hold by auth_user), and
 * every second reads suspensions, trust and per-account limit overrides
 * back.  Nothing here blocks the loop.
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
 * threshold.  rated: the cluster's Redis already decided the rate limits
 * and let this one through (account_limits()): the local windows still
 * count it, but do not decide.
 */
enum policy_action account_mail(struct account_engine *e, const char *user,
				const char *addr, const char *sender, int bound, int rated,
				struct policy_verdict *v);
/*
 * A MAIL FROM of an authenticated user that smtp/ answered 501 5.1.7
 * (sender: the path as written, cut).  Counted (malformed, and as a
 * sender tried); may suspend.  The 501 stands.
 */
void account_malformed(struct account_engine *e, const char *user, const char *addr,
		       const char *sender);
/*
 * RCPT of an authenticated user; dead: the domain cannot receive mail
 * (not a signal: CONTINUE unless the account is suspended; the caller
 * refuses the recipient itself).  Else the recipient rate limits.
 */
enum policy_action account_rcpt(struct account_engine *e, const char *user,
				const char *addr, const char *rcpt, int dead, int rated,
				struct policy_verdict *v);

/* ---- cluster mode (docs/cluster.md): the rate limits decided in Redis ---- */

struct cluster_redis;
/*
 * The node's Redis connection (NULL: none): a suspension sets the
 * account's flag there, a lift clears it, and the users other nodes
 * suspended are read back every half second and refused here too
 * (account_suspended: AUTH).  Not owned; NULL before it is freed.
 */
void account_engine_set_cluster(struct account_engine *e, struct cluster_redis *cr);
/*
 * The limits that apply now to user at client addr, for messages (rcpt 0)
 * or recipients (rcpt 1): the account's (its overrides applied; none for a
 * trusted account) and the client address's, per second, minute, hour and
 * day; 0 where there is none.
 */
void account_limits(struct account_engine *e, const char *user, int rcpt, int64_t account[4],
		    int64_t client[4]);
/*
 * v: the deferral for a limit the cluster refused, the same reply as the
 * local one (451 4.7.1 "Rate limit exceeded: ..."); client: the client
 * address's limit, else the account's; window 0..3.  Logged.
 */
void account_rate_refused(const char *user, const char *addr, int rcpt, int client,
			  int window, int64_t limit, struct policy_verdict *v);
/* v: the refusal of a suspended account (550 5.7.1). */
void account_suspended_verdict(struct policy_verdict *v);

/* One message of an authenticated session at the end of DATA, before the 250. */
struct account_message {
	const char *user;
	const char *addr;               /* client address */
	const char *const *froms;       /* From: addresses that are not the account's */
	size_t nfroms;
	int from_refused;               /* auth_bind_from_header refuses this message */
	uint64_t content;               /* hash of the body (0: unknown) */
	const uint32_t *domains;        /* distinct recipient domains (hashes) */
	size_t ndomains;
};
/*
 * Counts the message's From: addresses and content; refuses it when that
 * suspended the account (550 5.7.1) or when from_refused (553 5.7.1).
 */
enum policy_action account_message(struct account_engine *e, const struct account_message *m,
				   struct policy_verdict *v);
/* 1 when user is suspended, here or in the cluster (checked again at end of DATA). */
int account_suspended(struct account_engine *e, const char *user);

/* The 32-bit hash the engine uses for recipient domains (case-insensitive). */
uint32_t account_hash32(const char *s, size_t len);

/*
 * AUTH failures per client address (auth_fail_window, auth_fail_max_per_addr):
 * 1 when addr may not try again now; count one failure.
 */
int account_auth_blocked(struct account_engine *e, const char *addr);
void account_auth_failed(struct account_engine *e, const char *addr);

/* The score's parts for user now, as text ("score=.. senders=.. ..."). */
int64_t account_score(struct account_engine *e, const char *user, char *detail,
		      size_t detailsz);

#endif
