/*
 * dkim_admin: the DKIM key operations -- list, show, generate,
 * enable/disable, delete.  The one home of these operations: the API
 * (http_dkim.c) and `moatd dkim` (cli_dkim.c) parse their input, call here
 * and format the answer.  See dkim_sign.h.
 *
 * Each change is one transaction with its audit row; the schema's triggers
 * bump the policy generation, so the running daemon signs with the new set
 * from its next snapshot.  Keys are generated before the transaction (an
 * RSA 4096 key can take seconds).  Only keys for a local_domain are made:
 * Moat signs its own mail, nobody else's.  The private key is never put in
 * a returned object, an audit row or an error text.  Called on HTTP
 * threads and in the CLI process, never on the mail event loop.
 */
#include "dkim_sign.h"

#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../store/store.h"
#include "../store/store_auth.h"
#include "../store/store_dkim.h"
#include "../util/util.h"

static void *efail(struct dkim_err *e, int status, const char *code, const char *field,
		   const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void *efail(struct dkim_err *e, int status, const char *code, const char *field,
		   const char *fmt, ...)
{
	va_list ap;

	e->status = status;
	strlcpy_s(e->code, code, sizeof(e->code));
	strlcpy_s(e->field, field != NULL ? field : "", sizeof(e->field));
	va_start(ap, fmt);
	vsnprintf(e->message, sizeof(e->message), fmt, ap);
	va_end(ap);
	return NULL;
}

static void *einternal(struct dkim_err *e, struct store *st, const char *what)
{
	return efail(e, 500, "internal", NULL, "%s: %s", what, store_dkim_errmsg(st));
}

static void *einternal_rollback(struct dkim_err *e, struct store *st, const char *what)
{
	/* The message first: rolling back clears it. */
	einternal(e, st, what);
	store_rollback(st);
	return NULL;
}

static json_t *key_json(const struct store_dkim_key *k)
{
	enum auth_dkim_alg alg = DKIM_RSA_SHA256;
	char name[2 * AUTH_NAME_MAX + 16];
	char *value, *zone;
	json_t *o;

	dkim_alg_parse(k->algorithm, &alg);
	if (dkim_dns_name(k->selector, k->domain, name, sizeof(name)) < 0)
		name[0] = '\0';
	value = dkim_dns_value(alg, k->public_b64);
	zone = dkim_dns_zone_text(value);
	o = json_pack("{s:I, s:s, s:s, s:s, s:I, s:b, s:I, s:s, s:s, s:s}",
		      "id", (json_int_t)k->id, "domain", k->domain, "selector", k->selector,
		      "algorithm", k->algorithm, "bits", (json_int_t)k->bits,
		      "enabled", k->enabled, "created_at", (json_int_t)k->created_ms,
		      "record_name", name, "record_value", value, "record_zone", zone);
	free(value);
	free(zone);
	if (o == NULL)
		abort();
	return o;
}

static int collect(const struct store_dkim_key *k, void *arg)
{
	json_array_append_new(arg, key_json(k));
	return 0;
}

static int take_one(const struct store_dkim_key *k, void *arg)
{
	*(json_t **)arg = key_json(k);
	return 1;
}

json_t *dkim_admin_list(struct store *st, struct dkim_err *e)
{
	json_t *items = json_array();

	if (store_dkim_each(st, 0, 0, collect, items) < 0) {
		json_decref(items);
		return einternal(e, st, "dkim keys");
	}
	return items;
}

/* The key as JSON, or NULL with e (404 or 500). */
static json_t *get(struct store *st, int64_t id, struct dkim_err *e)
{
	json_t *o = NULL;
	int found;

	if (store_dkim_get(st, id, 0, take_one, &o, &found) < 0) {
		json_decref(o);
		return einternal(e, st, "dkim key");
	}
	if (!found || o == NULL)
		return efail(e, 404, "not_found", NULL, "no such key");
	return o;
}

json_t *dkim_admin_get(struct store *st, int64_t id, struct dkim_err *e)
{
	return get(st, id, e);
}

static int audit(struct store *st, const struct dkim_actor *a, const char *action, int64_t id,
		 const json_t *before, const json_t *after)
{
	struct store_audit r;
	char oid[24];
	char *b = before ? json_dumps(before, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	char *af = after ? json_dumps(after, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	int rc;

	memset(&r, 0, sizeof(r));
	snprintf(oid, sizeof(oid), "%lld", (long long)id);
	r.ts = time_now_ms();
	r.actor_id = a->user_id;
	r.actor = a->name;
	r.via = a->via;
	r.client_addr = a->client_addr != NULL ? a->client_addr : "-";
	r.action = action;
	r.object_type = "dkim_key";
	r.object_id = oid;
	r.before = b;
	r.after = af;
	rc = store_auth_audit_add(st, &r);
	free(b);
	free(af);
	return rc;
}

/* A selector: dot-separated labels of letters, digits and '-', at most DKIM_SELECTOR_MAX. */
static int selector_ok(const char *s)
{
	size_t n = strlen(s);
	size_t label = 0;
	size_t i;

	if (n == 0 || n > DKIM_SELECTOR_MAX)
		return 0;
	for (i = 0; i < n; i++) {
		char c = s[i];

		if (c == '.') {
			if (label == 0 || s[i - 1] == '-')
				return 0;
			label = 0;
			continue;
		}
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-'))
			return 0;
		if (c == '-' && label == 0)
			return 0;
		label++;
	}
	return label > 0 && s[n - 1] != '-';
}

static void lower(char *s)
{
	for (; *s != '\0'; s++)
		if (*s >= 'A' && *s <= 'Z')
			*s = (char)(*s + 32);
}

json_t *dkim_admin_create(struct store *st, const char *domain_in, const char *selector_in,
			  const char *algorithm, int64_t bits, int enabled,
			  const struct dkim_actor *a, struct dkim_err *e)
{
	struct store_dkim_key k;
	enum auth_dkim_alg alg;
	char domain[AUTH_NAME_MAX + 1];
	char selector[DKIM_SELECTOR_MAX + 1];
	char err[200];
	char *priv = NULL;
	char *pub = NULL;
	json_t *after;
	int64_t id;
	int yes, dup;

	if (domain_in == NULL || strlen(domain_in) >= sizeof(domain) ||
	    !auth_domain_ok(domain_in, strlen(domain_in), 1))
		return efail(e, 422, "invalid_value", "domain", "not a domain name");
	strlcpy_s(domain, domain_in, sizeof(domain));
	lower(domain);
	if (selector_in == NULL || !selector_ok(selector_in))
		return efail(e, 422, "invalid_value", "selector",
			     "labels of letters, digits and '-', separated by dots, up to %d"
			     " characters", DKIM_SELECTOR_MAX);
	strlcpy_s(selector, selector_in, sizeof(selector));
	lower(selector);
	if (algorithm == NULL)
		algorithm = "rsa-sha256";
	if (dkim_alg_parse(algorithm, &alg) < 0)
		return efail(e, 422, "invalid_value", "algorithm", "rsa-sha256 or ed25519-sha256");
	if (alg == DKIM_RSA_SHA256) {
		if (bits == 0)
			bits = DKIM_RSA_BITS_DEFAULT;
		if (bits < DKIM_RSA_BITS_MIN || bits > DKIM_RSA_BITS_MAX)
			return efail(e, 422, "invalid_value", "bits", "RSA keys have %d to %d bits",
				     DKIM_RSA_BITS_MIN, DKIM_RSA_BITS_MAX);
	} else {
		if (bits != 0 && bits != DKIM_ED25519_BITS)
			return efail(e, 422, "invalid_value", "bits",
				     "Ed25519 keys have %d bits", DKIM_ED25519_BITS);
		bits = DKIM_ED25519_BITS;
	}
	if (store_dkim_local_domain(st, domain, &yes) < 0)
		return einternal(e, st, "dkim local domain");
	if (!yes)
		return efail(e, 422, "invalid_value", "domain",
			     "%s is not a local_domain: only our own mail is signed", domain);
	if (dkim_key_generate(alg, (int)bits, &priv, &pub, err, sizeof(err)) < 0)
		return efail(e, 500, "internal", NULL, "%s", err);
	memset(&k, 0, sizeof(k));
	k.domain = domain;
	k.selector = selector;
	k.algorithm = dkim_alg_name(alg);
	k.bits = bits;
	k.private_pem = priv;
	k.public_b64 = pub;
	k.enabled = enabled ? 1 : 0;
	k.created_ms = time_now_ms();
	if (store_begin(st) < 0) {
		after = einternal(e, st, "dkim key begin");
		goto out;
	}
	if (store_dkim_add(st, &k, &id, &dup) < 0) {
		if (dup) {
			store_rollback(st);
			after = efail(e, 409, "duplicate", "selector",
				      "%s already has a key with selector %s", domain, selector);
		} else {
			after = einternal_rollback(e, st, "dkim key add");
		}
		goto out;
	}
	after = get(st, id, e);
	if (after == NULL) {
		store_rollback(st);
		goto out;
	}
	if (audit(st, a, "dkim_key.create", id, NULL, after) < 0 || store_commit(st) < 0) {
		json_decref(after);
		after = einternal_rollback(e, st, "dkim key add");
	}
out:
	/* The private key leaves memory as soon as it is stored. */
	if (priv != NULL) {
		OPENSSL_cleanse(priv, strlen(priv));
		free(priv);
	}
	free(pub);
	return after;
}

json_t *dkim_admin_set_enabled(struct store *st, int64_t id, int enabled,
			       const struct dkim_actor *a, struct dkim_err *e)
{
	json_t *before, *after;
	int found;

	if (store_begin(st) < 0)
		return einternal(e, st, "dkim key begin");
	before = get(st, id, e);
	if (before == NULL) {
		store_rollback(st);
		return NULL;
	}
	if (store_dkim_set_enabled(st, id, enabled, &found) < 0) {
		json_decref(before);
		return einternal_rollback(e, st, "dkim key update");
	}
	after = get(st, id, e);
	if (after == NULL) {
		json_decref(before);
		store_rollback(st);
		return NULL;
	}
	if (audit(st, a, "dkim_key.update", id, before, after) < 0 || store_commit(st) < 0) {
		json_decref(before);
		json_decref(after);
		return einternal_rollback(e, st, "dkim key update");
	}
	json_decref(before);
	return after;
}

int dkim_admin_delete(struct store *st, int64_t id, const struct dkim_actor *a,
		      struct dkim_err *e)
{
	json_t *before;
	int found;

	if (store_begin(st) < 0) {
		einternal(e, st, "dkim key begin");
		return -1;
	}
	before = get(st, id, e);
	if (before == NULL) {
		store_rollback(st);
		return -1;
	}
	if (store_dkim_delete(st, id, &found) < 0 ||
	    audit(st, a, "dkim_key.delete", id, before, NULL) < 0 || store_commit(st) < 0) {
		json_decref(before);
		einternal_rollback(e, st, "dkim key delete");
		return -1;
	}
	json_decref(before);
	return 0;
}
