/*
 * greylist: the greylist check of the score's greylist band (docs/score.md,
 * "Greylisting").  A message from a (client network, sender, recipient)
 * triplet never seen is deferred; a real MTA retries after the delay and
 * passes, most spamware never comes back.
 *
 * greylist_check() runs on a content worker with that worker's own store
 * connection, never on the mail loop (it writes SQLite), outside any
 * transaction of the caller.  greylist_network() and greylist_sender_key()
 * are pure functions over outside bytes (unit-tested).  Nothing here logs.
 */
#ifndef MOAT_GREYLIST_H
#define MOAT_GREYLIST_H

#include <stddef.h>
#include <stdint.h>

struct store;

/* Longest network text ("2001:db8:1:2::/64", "192.0.2.0/24") plus NUL. */
#define GREYLIST_NETWORK_MAX 48
/* Longest sender or recipient key accepted (octets, without NUL). */
#define GREYLIST_KEY_MAX 512
/* Expired rows are purged at most this often, this many a time. */
#define GREYLIST_PURGE_INTERVAL_MS 60000
#define GREYLIST_PURGE_BATCH 1000
/* An allowed network's expiry is pushed back at most this often, so that
 * a busy network does not cost a write per message. */
#define GREYLIST_TOUCH_MS 60000

struct greylist_params {
	int64_t delay_ms;     /* a retry passes from first_seen + delay ... */
	int64_t window_ms;    /* ... to first_seen + delay + window */
	int64_t lifetime_ms;  /* a passed triplet / an allowed network, after its last use */
	int64_t auto_allow;   /* passed triplets that allow their network; 0 never */
};

struct greylist_key {
	const char *client_addr;  /* textual IP; the module makes /24 or /64 */
	const char *sender;       /* envelope sender, "" for <> */
	const char *spf_domain;   /* non-NULL when SPF passed: key by this domain */
	const char *rcpt;
};

enum greylist_res { GREYLIST_PASS, GREYLIST_DEFER, GREYLIST_ALLOWED /* auto-allowed network */ };

/*
 * Look up and record the triplet at now_ms.  *res PASS (with *retry_in_ms
 * 0), DEFER (with the ms until a retry can pass) or ALLOWED.  0, or -1 on
 * a store error or a client address that is not an IP address (then *res
 * is PASS: the caller decides whether to fail open).
 */
int greylist_check(struct store *st, const struct greylist_key *k, const struct greylist_params *p,
		   int64_t now_ms, enum greylist_res *res, int64_t *retry_in_ms);

/*
 * Cluster mode (docs/cluster.md): triplets and auto-allowed networks live
 * in the cluster's Redis at address ("host:port"), so that a retry passes
 * whichever node it reaches.  Each content worker thread keeps its own
 * blocking connection (timeout_ms for the connect and for each reply);
 * on any Redis error the SQLite greylist decides that message, and Redis
 * is not tried again on that thread for retry_ms.  Called once at start,
 * before the first greylist_check().
 */
void greylist_set_cluster(const char *address, int64_t timeout_ms, int64_t retry_ms);

/*
 * The network of a textual client address: IPv4 a.b.c.0/24, IPv6 its /64
 * in RFC 5952 form, an IPv4-mapped IPv6 address as IPv4.  Accepts an
 * optional "IPv6:" prefix or brackets, refuses zone ids.  0 or -1.
 */
int greylist_network(const char *addr, size_t len, char *out, size_t outsz);

/*
 * The sender part of the key: spf_domain (lower-cased, without a final
 * dot) when not NULL and not empty, else "<>" for the null sender, else the
 * address lower-cased.  0, or -1 when it does not fit outsz or is longer
 * than GREYLIST_KEY_MAX.
 */
int greylist_sender_key(const char *sender, const char *spf_domain, char *out, size_t outsz);

#endif
