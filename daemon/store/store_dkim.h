/*
 * store_dkim: SQL of the DKIM signing keys (schema/022, docs/sender-auth.md).
 *
 * Used by the key operations (dkim_admin.c: the API and `moatd dkim`) and
 * by the snapshot loader.  Never called on the mail event loop.  Every
 * write bumps the policy generation through the schema's triggers; the
 * callers own the transaction around a write and its audit row.  The
 * private key is handed only to callbacks that ask for it (with_private),
 * and strings passed to callbacks live only during the call.
 */
#ifndef MOAT_STORE_DKIM_H
#define MOAT_STORE_DKIM_H

#include <stddef.h>
#include <stdint.h>

struct store;

/* The connection's last error, for messages. */
const char *store_dkim_errmsg(struct store *st);

struct store_dkim_key {
	int64_t id;
	const char *domain;
	const char *selector;
	const char *algorithm;    /* rsa-sha256 | ed25519-sha256 */
	int64_t bits;
	const char *private_pem;  /* NULL unless asked for */
	const char *public_b64;
	int enabled;
	int64_t created_ms;
};

typedef int (*store_dkim_fn)(const struct store_dkim_key *k, void *arg);

/* Every key by domain, then newest first (enabled_only: just the enabled); cb non-zero stops. */
int store_dkim_each(struct store *st, int enabled_only, int with_private, store_dkim_fn cb,
		    void *arg);
/* *found 0 when there is no such key. */
int store_dkim_get(struct store *st, int64_t id, int with_private, store_dkim_fn cb, void *arg,
		   int *found);
/* *dup 1 (and -1) when (domain, selector) exists already. */
int store_dkim_add(struct store *st, const struct store_dkim_key *k, int64_t *id, int *dup);
int store_dkim_set_enabled(struct store *st, int64_t id, int enabled, int *found);
int store_dkim_delete(struct store *st, int64_t id, int *found);
/* *yes 1 when domain (lower case) is a local_domain entry, or under a "*.x" one. */
int store_dkim_local_domain(struct store *st, const char *domain, int *yes);
/* The plain local_domain entries, in order (for the console's choice). */
int store_dkim_local_domains(struct store *st, int (*cb)(const char *domain, void *arg),
			     void *arg);

#endif
