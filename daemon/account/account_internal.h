/*
 * account_internal: one account's recent behaviour, shared by the engine
 * (account_engine.c: the loop and its worker) and the tracker
 * (account_track.c: pure bookkeeping and the facts the score is made of;
 * unit-tested in tests/unit/test_account.c).  Not for anyone outside
 * daemon/account/ and its tests.
 *
 * Memory per account is fixed (about 16 KiB, see ACCT_* below): the event
 * ring, the networks, the clients, the content slots and the baseline.
 */
#ifndef MOAT_ACCOUNT_INTERNAL_H
#define MOAT_ACCOUNT_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "account.h"

#define ACCT_NAME_MAX 320
#define ACCT_RING 512          /* events: senders, From: addresses, refusals, messages */
#define ACCT_NETS 16           /* client networks (account_network) kept per account */
#define ACCT_CLIENTS 16        /* client addresses kept per account (the alert's clients) */
#define ACCT_CONTENTS 8        /* distinct contents tracked in the window */
/* Recipient domains kept per content: enough for the cap (8 x 10). */
#define ACCT_CONTENT_DOMS (ACCOUNT_CONTENT_CAP * ACCOUNT_CONTENT_PER)
#define ACCT_HOW 168           /* hours of the week, Monday 00h UTC = 0 */
#define ACCT_NET_MAX 48
#define ACCT_ADDR_MAX 46
#define ACCT_HISTORY_AGE_MS (24 * 3600 * 1000LL) /* a network this old makes a history */
#define ACCT_HISTORY_MESSAGES 20                 /* ... or this many messages */
#define ACCT_BASELINE_ALPHA 0.3                  /* EWMA over weeks */

enum acct_evkind { EV_SENDER, EV_FROM, EV_BIND, EV_MALFORMED, EV_MSG };

struct acct_ev {
	int64_t ts;
	uint32_t h;         /* sender, From: address or client address hash */
	uint8_t kind;
};

/* A two-fixed-window counter (see account.h). */
struct acct_cnt {
	int64_t start, cur, prev;
};

struct acct_net {
	char net[ACCT_NET_MAX];
	int64_t first_seen, last_seen;
	int64_t messages;   /* all time (loaded + counted here) */
	int64_t d_messages; /* not yet flushed */
	int dirty;
};

struct acct_client {
	uint32_t h;
	char addr[ACCT_ADDR_MAX];
	char net[ACCT_NET_MAX];
	int64_t last;
};

struct acct_content {
	uint64_t h;         /* 0: unused */
	int64_t first, last;
	int64_t messages;
	uint32_t doms[ACCT_CONTENT_DOMS];
	uint16_t ndoms;
	uint8_t hit;        /* reached the same_content thresholds */
};

struct acct {
	struct acct *next;
	char user[ACCT_NAME_MAX];
	struct acct_ev ring[ACCT_RING];
	size_t head, n;
	struct acct_cnt msg_win, msg_hour, msg_day;
	struct acct_net nets[ACCT_NETS];
	size_t nnets;
	struct acct_client clients[ACCT_CLIENTS];
	size_t nclients;
	struct acct_content content[ACCT_CONTENTS];
	float base_rate[ACCT_HOW];
	uint16_t base_weeks[ACCT_HOW];
	int64_t hour_start;      /* the clock hour being counted (ms), 0 none yet */
	int64_t hour_count;
	int hour_partial;        /* that hour began before the account was seen */
	int loaded;              /* networks, baseline and bulk history read from SQLite */
	int load_sent;
	int64_t bulk_seen;       /* unix ms the account was first seen sending bulk; 0 never */
	int bulk_dirty;
	char last_client[ACCT_ADDR_MAX];
	int64_t created;         /* unix ms the engine took the account into memory */

	/* Engine state. */
	int suspended;
	int flag_pending;        /* the cluster's suspension flag not yet cleared in Redis */
	int remote_suspended;    /* suspended by another node (the cluster's Redis says) */
	int64_t trusted_until;
	int64_t d_msgs, d_rcpts, d_refused;
	int dirty;
	int64_t score;
	struct account_signal sig[ACCOUNT_NSIGNALS];
	int64_t lim[8];          /* overrides, -1: default (STORE_ACCOUNT_NLIMITS order) */
};

/* Hour of the week of unix ms t (Monday 00h UTC = 0). */
int acct_how(int64_t t);
void acct_init(struct acct *a, const char *user, int64_t now);
/* Events. */
void acct_sender(struct acct *a, int64_t now, const char *sender);
void acct_binding(struct acct *a, int64_t now);
void acct_malformed(struct acct *a, int64_t now);
/* An accepted MAIL from client address addr. */
void acct_mail(struct acct *a, int64_t now, int64_t window_ms, const char *addr);
/* A message at end of DATA: foreign From: addresses, content, recipient domains. */
void acct_message(struct acct *a, int64_t now, int64_t window_ms, const char *const *froms,
		  size_t nfroms, uint64_t content, const uint32_t *doms, size_t ndoms);
/* What SQLite knew, from the worker's load. */
void acct_known_network(struct acct *a, const char *net, int64_t first_seen,
			int64_t last_seen, int64_t messages);
void acct_known_baseline(struct acct *a, int how, double rate, int64_t weeks);
/* One more week's observation of hour how (the worker applies the same). */
void acct_baseline_observe(struct acct *a, int how, int64_t count);
/*
 * The clock hour rolled: 1 with the hour just ended (how, count) when it
 * is to be learned (a whole hour), else 0.
 */
int acct_hour_roll(struct acct *a, int64_t now, int *how, int64_t *count);
/*
 * The facts over the window at now.  Expires old content slots: a slot
 * that reached the thresholds and ends while the account is not
 * suspended marks the account as having sent bulk (bulk_seen).
 */
void acct_facts(struct acct *a, int64_t now, int64_t window_ms, int64_t volume_floor,
		int trusted, struct account_facts *f);
/* Is net new for the account (history, and not known before the window)? */
int acct_net_new(const struct acct *a, const char *net, int64_t now, int64_t window_ms);
/* Messages of client h in the window (from the ring). */
int64_t acct_client_messages(const struct acct *a, uint32_t h, int64_t now,
			     int64_t window_ms);
/* Messages accepted in the last 24 h (estimate). */
int64_t acct_volume_day(struct acct *a, int64_t now);
/*
 * 1 when a may leave memory: no event for idle_ms nor min_ms, flushed, not
 * suspended here or in the cluster (nor a lift still to send to it), not trusted, no
 * limit override, no load from SQLite in flight.
 */
int acct_evictable(const struct acct *a, int64_t now, int64_t idle_ms, int64_t min_ms);
/* Case-insensitive FNV-1a. */
uint64_t acct_hash64(const char *s);

#endif
