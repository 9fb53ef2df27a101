/*
 * dkim_sign: DKIM signing of our own outgoing mail (RFC 6376, RSA and
 * Ed25519 per RFC 8463) and the keys behind it (docs/sender-auth.md,
 * "Signing").
 *
 * dkim_sign.c: key generation, the DNS record to publish, the keyset of a
 * policy snapshot (parsed private keys by domain, immutable once built,
 * freed with the snapshot) and dkim_sign_message(), a pure function apart
 * from OpenSSL, safe on any number of content workers at once.
 * Canonicalisation and header splitting are auth_dkim.c's (auth.h): the
 * signer and the verifier share one implementation.
 *
 * dkim_admin.c: the key operations that the API (http_dkim.c) and `moatd
 * dkim` (cli_dkim.c) share -- list, show, generate, enable/disable,
 * delete -- each one transaction with its audit row ("dkim_key.create",
 * "dkim_key.update", "dkim_key.delete").  A private key never leaves the
 * store through them and is never logged.
 */
#ifndef MOAT_DKIM_SIGN_H
#define MOAT_DKIM_SIGN_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "auth.h"

struct store;

/* RSA modulus sizes a key may be generated with (RFC 8301: 1024 at least). */
#define DKIM_RSA_BITS_DEFAULT 2048
#define DKIM_RSA_BITS_MIN 1024
#define DKIM_RSA_BITS_MAX 4096
#define DKIM_ED25519_BITS 256
/* A selector is one or more DNS labels; this is its whole length. */
#define DKIM_SELECTOR_MAX 63
/* A DNS TXT character-string holds at most 255 octets (RFC 1035 3.3.14). */
#define DKIM_TXT_CHUNK 255

/* ---- keys and records (dkim_sign.c) -------------------------------------- */

/* "rsa-sha256" / "ed25519-sha256" to the algorithm; 0, or -1 when neither. */
int dkim_alg_parse(const char *s, enum auth_dkim_alg *alg);
const char *dkim_alg_name(enum auth_dkim_alg alg);

/*
 * A new key pair: the private key as PKCS#8 PEM and the p= value (base64 of
 * the SubjectPublicKeyInfo for RSA, of the raw key for Ed25519), both
 * malloc'ed for the caller.  bits: RSA only, DKIM_RSA_BITS_MIN..MAX.  0, or
 * -1 with err.
 */
int dkim_key_generate(enum auth_dkim_alg alg, int bits, char **private_pem, char **public_b64,
		      char *err, size_t errsz);

/* n octets as base64 on one line, NUL-terminated, malloc'ed. */
char *dkim_b64_encode(const unsigned char *p, size_t n);

/* The TXT value to publish: "v=DKIM1; k=rsa; p=..." (malloc'ed). */
char *dkim_dns_value(enum auth_dkim_alg alg, const char *public_b64);
/*
 * The same for a zone file: the value as quoted character-strings of at
 * most DKIM_TXT_CHUNK octets, separated by spaces ("\"v=DKIM1; ...\" \"...\"").
 */
char *dkim_dns_zone_text(const char *value);
/* "<selector>._domainkey.<domain>" into out; 0, or -1 when it does not fit. */
int dkim_dns_name(const char *selector, const char *domain, char *out, size_t outsz);

/* ---- the snapshot's keyset (dkim_sign.c) --------------------------------- */

struct dkim_keyset;

struct dkim_keyset *dkim_keyset_new(void);
/*
 * Add a key (domain lower case); with several keys for one domain the one
 * added with the highest id signs.  0, or -1 with err when the PEM does not
 * hold a key of alg.
 */
int dkim_keyset_add(struct dkim_keyset *ks, int64_t id, const char *domain,
		    const char *selector, enum auth_dkim_alg alg, const char *private_pem,
		    char *err, size_t errsz);
size_t dkim_keyset_count(const struct dkim_keyset *ks);
void dkim_keyset_free(struct dkim_keyset *ks);
/*
 * The enabled keys of the store (the snapshot loader, off the loop).  Rows
 * whose key does not load are counted in *skipped and left out.  0 with
 * *out (NULL when there is no key), or -1.
 */
int dkim_keyset_load(struct store *st, struct dkim_keyset **out, int *skipped);

/*
 * The DKIM-Signature field ("DKIM-Signature: v=1; ..." folded with CRLF
 * TAB, no final CRLF) for msg -- the whole message as it will be
 * delivered, header and body, lines ending in CRLF or LF -- when the From:
 * domain (or a parent of it) has a key: 1 with *field (the caller frees),
 * 0 when no key applies (ks NULL too), -1 with err (no single From:
 * address, a header that is not one).  relaxed/relaxed, t= now, h= the
 * fields of DKIM_SIGN_HEADERS present, each listed once more than it
 * occurs so that none can be added after signing.
 */
int dkim_sign_message(const struct dkim_keyset *ks, const char *msg, size_t len, char **field,
		      char *err, size_t errsz);
/* The same at a given time (seconds since the epoch), for tests. */
int dkim_sign_message_at(const struct dkim_keyset *ks, const char *msg, size_t len, int64_t now,
			 char **field, char *err, size_t errsz);

/* ---- key operations (dkim_admin.c) --------------------------------------- */

struct dkim_actor {
	int64_t user_id;           /* 0: no API user (the CLI) */
	const char *name;          /* the user's name, or "cli" */
	const char *via;           /* session | token | system */
	const char *client_addr;   /* NULL: local */
};

/* Why an operation failed: 404, 409, 422 (field names the input) or 500. */
struct dkim_err {
	int status;
	char code[32];             /* not_found | duplicate | invalid_value | internal */
	char field[32];
	char message[300];
};

/*
 * Keys as JSON objects {id, domain, selector, algorithm, bits, enabled,
 * created_at, record_name, record_value, record_zone}: new references, or
 * NULL with e.
 */
json_t *dkim_admin_list(struct store *st, struct dkim_err *e);
json_t *dkim_admin_get(struct store *st, int64_t id, struct dkim_err *e);
/* A new key: domain must be a local_domain; bits 0 is the default. */
json_t *dkim_admin_create(struct store *st, const char *domain, const char *selector,
			  const char *algorithm, int64_t bits, int enabled,
			  const struct dkim_actor *a, struct dkim_err *e);
json_t *dkim_admin_set_enabled(struct store *st, int64_t id, int enabled,
			       const struct dkim_actor *a, struct dkim_err *e);
int dkim_admin_delete(struct store *st, int64_t id, const struct dkim_actor *a,
		      struct dkim_err *e);

#endif
