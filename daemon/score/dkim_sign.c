/*
 * dkim_sign: DKIM signing (RFC 6376, RFC 8463) with OpenSSL, key
 * generation and the DNS record to publish.  See dkim_sign.h.
 *
 * Who calls: the snapshot loader builds a keyset (dkim_keyset_load) off the
 * loop; content workers call dkim_sign_message() on the message as it will
 * be delivered; `moatd dkim sign` does the same from the shell.  A keyset
 * is immutable once built: EVP_PKEYs are only read while signing (each
 * signature has its own EVP_MD_CTX), so any number of workers may sign
 * with one keyset at once.  It is freed with its snapshot.
 *
 * What is signed (relaxed/relaxed): the fields of sign_headers[] that are
 * present, From: always, each named once more than it occurs (RFC 6376
 * 8.15: a field added later breaks the signature); t=; bh= over the whole
 * canonical body (no l=).  Canonicalisation and header splitting are
 * auth_dkim.c's, the verifier's own: one implementation for both sides.
 *
 * Never: a private key in a log line, an error text or a returned string.
 */
#include "dkim_sign.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "../store/store_dkim.h"
#include "../util/util.h"

/* The fields signed when present, in h= order (From: first, always). */
static const char *const sign_headers[] = {
	"from", "to", "cc", "subject", "date", "message-id", "reply-to", "mime-version",
	"content-type", "content-transfer-encoding", "in-reply-to", "references",
};

/* b= is folded into lines of this many base64 characters. */
#define B64_FOLD 72

/* ---- names and encodings ------------------------------------------------- */

int dkim_alg_parse(const char *s, enum auth_dkim_alg *alg)
{
	if (s != NULL && strcmp(s, "rsa-sha256") == 0) {
		*alg = DKIM_RSA_SHA256;
		return 0;
	}
	if (s != NULL && strcmp(s, "ed25519-sha256") == 0) {
		*alg = DKIM_ED25519_SHA256;
		return 0;
	}
	return -1;
}

const char *dkim_alg_name(enum auth_dkim_alg alg)
{
	return alg == DKIM_ED25519_SHA256 ? "ed25519-sha256" : "rsa-sha256";
}

char *dkim_b64_encode(const unsigned char *p, size_t n)
{
	char *out = xmalloc(4 * ((n + 2) / 3) + 1);
	size_t done = 0;
	size_t o = 0;

	/* EVP_EncodeBlock takes an int: feed it in bounded pieces (a multiple of 3). */
	while (done < n) {
		size_t take = n - done > 3 * 4096 ? 3 * 4096 : n - done;

		o += (size_t)EVP_EncodeBlock((unsigned char *)out + o, p + done, (int)take);
		done += take;
	}
	out[o] = '\0';
	return out;
}

char *dkim_dns_value(enum auth_dkim_alg alg, const char *public_b64)
{
	struct dynbuf b;

	dynbuf_init(&b, strlen(public_b64) + 64);
	if (dynbuf_addf(&b, "v=DKIM1; k=%s; p=%s",
			alg == DKIM_ED25519_SHA256 ? "ed25519" : "rsa", public_b64) < 0)
		abort(); /* sized above */
	return b.data;
}

char *dkim_dns_zone_text(const char *value)
{
	size_t n = strlen(value);
	size_t i;
	struct dynbuf b;
	int rc = 0;

	/* The value has no quote or backslash (base64 and fixed tags): no escaping. */
	dynbuf_init(&b, n + 4 * (n / DKIM_TXT_CHUNK + 1) + 1);
	for (i = 0; i < n || i == 0; i += DKIM_TXT_CHUNK) {
		size_t take = n - i > DKIM_TXT_CHUNK ? DKIM_TXT_CHUNK : n - i;

		if (i > 0)
			rc |= dynbuf_add(&b, " ", 1);
		rc |= dynbuf_add(&b, "\"", 1);
		rc |= dynbuf_add(&b, value + i, take);
		rc |= dynbuf_add(&b, "\"", 1);
		if (n == 0)
			break;
	}
	if (rc != 0)
		abort(); /* sized above */
	return b.data;
}

int dkim_dns_name(const char *selector, const char *domain, char *out, size_t outsz)
{
	int n = snprintf(out, outsz, "%s._domainkey.%s", selector, domain);

	return n < 0 || (size_t)n >= outsz ? -1 : 0;
}

/* ---- key generation ------------------------------------------------------ */

int dkim_key_generate(enum auth_dkim_alg alg, int bits, char **private_pem, char **public_b64,
		      char *err, size_t errsz)
{
	EVP_PKEY_CTX *ctx = NULL;
	EVP_PKEY *pkey = NULL;
	BIO *bio = NULL;
	unsigned char *der = NULL;
	unsigned char raw[32];
	size_t rawlen = sizeof(raw);
	char *pem;
	long pemlen;
	int derlen;
	int rc = -1;

	*private_pem = NULL;
	*public_b64 = NULL;
	if (alg == DKIM_RSA_SHA256 && (bits < DKIM_RSA_BITS_MIN || bits > DKIM_RSA_BITS_MAX)) {
		snprintf(err, errsz, "RSA keys have %d to %d bits", DKIM_RSA_BITS_MIN,
			 DKIM_RSA_BITS_MAX);
		return -1;
	}
	ctx = EVP_PKEY_CTX_new_id(alg == DKIM_RSA_SHA256 ? EVP_PKEY_RSA : EVP_PKEY_ED25519, NULL);
	if (ctx == NULL || EVP_PKEY_keygen_init(ctx) <= 0 ||
	    (alg == DKIM_RSA_SHA256 && EVP_PKEY_CTX_set_rsa_keygen_bits(ctx, bits) <= 0) ||
	    EVP_PKEY_keygen(ctx, &pkey) <= 0) {
		snprintf(err, errsz, "key generation failed");
		goto out;
	}
	bio = BIO_new(BIO_s_mem());
	if (bio == NULL || PEM_write_bio_PrivateKey(bio, pkey, NULL, NULL, 0, NULL, NULL) != 1) {
		snprintf(err, errsz, "key encoding failed");
		goto out;
	}
	pemlen = BIO_get_mem_data(bio, &pem);
	if (pemlen <= 0) {
		snprintf(err, errsz, "key encoding failed");
		goto out;
	}
	if (alg == DKIM_RSA_SHA256) {
		derlen = i2d_PUBKEY(pkey, &der);
		if (derlen <= 0) {
			snprintf(err, errsz, "public key encoding failed");
			goto out;
		}
		*public_b64 = dkim_b64_encode(der, (size_t)derlen);
	} else {
		/* RFC 8463 4.2: p= is the raw 32-octet public key. */
		if (EVP_PKEY_get_raw_public_key(pkey, raw, &rawlen) != 1) {
			snprintf(err, errsz, "public key encoding failed");
			goto out;
		}
		*public_b64 = dkim_b64_encode(raw, rawlen);
	}
	*private_pem = xstrndup(pem, (size_t)pemlen);
	rc = 0;
out:
	OPENSSL_free(der);
	BIO_free(bio);
	EVP_PKEY_free(pkey);
	EVP_PKEY_CTX_free(ctx);
	return rc;
}

/* ---- keyset -------------------------------------------------------------- */

struct dkim_skey {
	int64_t id;
	char *domain;
	char *selector;
	enum auth_dkim_alg alg;
	EVP_PKEY *pkey;
};

struct dkim_keyset {
	struct dkim_skey *keys;   /* kept sorted by domain, then id descending */
	size_t n, cap;
};

static int skey_cmp(const void *a, const void *b)
{
	const struct dkim_skey *x = a;
	const struct dkim_skey *y = b;
	int c = strcmp(x->domain, y->domain);

	if (c != 0)
		return c;
	return x->id > y->id ? -1 : x->id < y->id ? 1 : 0;
}

struct dkim_keyset *dkim_keyset_new(void)
{
	return xcalloc(1, sizeof(struct dkim_keyset));
}

int dkim_keyset_add(struct dkim_keyset *ks, int64_t id, const char *domain,
		    const char *selector, enum auth_dkim_alg alg, const char *private_pem,
		    char *err, size_t errsz)
{
	BIO *bio = BIO_new_mem_buf(private_pem, -1);
	EVP_PKEY *pkey = bio != NULL ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
	struct dkim_skey nk;
	size_t pos;
	int type;

	BIO_free(bio);
	if (pkey == NULL) {
		snprintf(err, errsz, "private key of %s/%s does not load", domain, selector);
		return -1;
	}
	type = EVP_PKEY_get_base_id(pkey);
	if ((alg == DKIM_RSA_SHA256 && (type != EVP_PKEY_RSA ||
					EVP_PKEY_get_bits(pkey) < AUTH_DKIM_MIN_RSA_BITS)) ||
	    (alg == DKIM_ED25519_SHA256 && type != EVP_PKEY_ED25519)) {
		EVP_PKEY_free(pkey);
		snprintf(err, errsz, "private key of %s/%s is not a %s key", domain, selector,
			 dkim_alg_name(alg));
		return -1;
	}
	if (ks->n == ks->cap) {
		ks->cap = ks->cap ? ks->cap * 2 : 8;
		ks->keys = xrealloc(ks->keys, ks->cap * sizeof(*ks->keys));
	}
	nk.id = id;
	nk.domain = xstrdup(domain);
	for (char *c = nk.domain; *c != '\0'; c++)
		if (*c >= 'A' && *c <= 'Z')
			*c = (char)(*c + 32);
	nk.selector = xstrdup(selector);
	nk.alg = alg;
	nk.pkey = pkey;
	/* Sorted insertion: the keyset is never written once it is shared. */
	pos = ks->n;
	while (pos > 0 && skey_cmp(&ks->keys[pos - 1], &nk) > 0)
		pos--;
	memmove(&ks->keys[pos + 1], &ks->keys[pos], (ks->n - pos) * sizeof(*ks->keys));
	ks->keys[pos] = nk;
	ks->n++;
	return 0;
}

size_t dkim_keyset_count(const struct dkim_keyset *ks)
{
	return ks != NULL ? ks->n : 0;
}

void dkim_keyset_free(struct dkim_keyset *ks)
{
	size_t i;

	if (ks == NULL)
		return;
	for (i = 0; i < ks->n; i++) {
		free(ks->keys[i].domain);
		free(ks->keys[i].selector);
		EVP_PKEY_free(ks->keys[i].pkey);
	}
	free(ks->keys);
	free(ks);
}

/* The first (newest) key of domain, or NULL; ks sorted. */
static const struct dkim_skey *keyset_find(const struct dkim_keyset *ks, const char *domain)
{
	size_t lo = 0;
	size_t hi = ks->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (strcmp(ks->keys[mid].domain, domain) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < ks->n && strcmp(ks->keys[lo].domain, domain) == 0 ? &ks->keys[lo] : NULL;
}

/* The key for a From: domain: its own, else that of the nearest parent. */
static const struct dkim_skey *key_for(const struct dkim_keyset *ks, const char *domain)
{
	const char *d = domain;

	while (d != NULL && *d != '\0') {
		const struct dkim_skey *k = keyset_find(ks, d);
		const char *dot;

		if (k != NULL)
			return k;
		dot = strchr(d, '.');
		/* Stop before a single label: nobody signs for a top-level domain. */
		if (dot == NULL || strchr(dot + 1, '.') == NULL)
			break;
		d = dot + 1;
	}
	return NULL;
}

struct load {
	struct dkim_keyset *ks;
	int skipped;
};

static int load_key(const struct store_dkim_key *k, void *arg)
{
	struct load *l = arg;
	enum auth_dkim_alg alg;
	char err[300];

	if (k->private_pem == NULL || dkim_alg_parse(k->algorithm, &alg) < 0 ||
	    dkim_keyset_add(l->ks, k->id, k->domain, k->selector, alg, k->private_pem, err,
			    sizeof(err)) < 0)
		l->skipped++;
	return 0;
}

int dkim_keyset_load(struct store *st, struct dkim_keyset **out, int *skipped)
{
	struct load l = { dkim_keyset_new(), 0 };

	*out = NULL;
	if (store_dkim_each(st, 1, 1, load_key, &l) < 0) {
		dkim_keyset_free(l.ks);
		return -1;
	}
	*skipped += l.skipped;
	if (l.ks->n == 0) {
		dkim_keyset_free(l.ks);
		return 0;
	}
	*out = l.ks;
	return 0;
}

/* ---- signing ------------------------------------------------------------- */

/* Where the body starts: after the blank line ending the header (len when none). */
static size_t body_start(const char *msg, size_t len)
{
	size_t i = 0;

	while (i < len) {
		const char *nl = memchr(msg + i, '\n', len - i);
		size_t end;

		if (nl == NULL)
			return len;
		end = (size_t)(nl - msg);
		if (end == i || (end == i + 1 && msg[i] == '\r'))
			return end + 1;
		i = end + 1;
	}
	return len;
}

static int name_is(const struct auth_hfield *f, const char *name)
{
	return f->name_len == strlen(name) && strncasecmp(f->p, name, f->name_len) == 0;
}

static int fail(char *err, size_t errsz, const char *msg)
{
	snprintf(err, errsz, "%s", msg);
	return -1;
}

/* Add base64 text to the field, folded into lines of B64_FOLD characters. */
static int add_folded_b64(struct dynbuf *f, const char *b64, size_t col)
{
	size_t n = strlen(b64);
	size_t i = 0;
	int rc = 0;

	while (i < n) {
		size_t room = col < B64_FOLD ? B64_FOLD - col : 0;
		size_t take;

		if (room == 0) {
			rc |= dynbuf_add(f, "\r\n\t", 3);
			col = 1;
			continue;
		}
		take = n - i < room ? n - i : room;
		rc |= dynbuf_add(f, b64 + i, take);
		col += take;
		i += take;
	}
	return rc;
}

/* Sign data (the canonical header input) with k: the signature, malloc'ed, or NULL. */
static unsigned char *sign_data(const struct dkim_skey *k, const char *data, size_t len,
				size_t *siglen)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned char *sig = NULL;
	int ok;

	if (md == NULL)
		abort();
	if (k->alg == DKIM_RSA_SHA256) {
		ok = EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, k->pkey) == 1 &&
		     EVP_DigestSignUpdate(md, data, len) == 1 &&
		     EVP_DigestSignFinal(md, NULL, siglen) == 1;
		if (ok) {
			sig = xmalloc(*siglen);
			ok = EVP_DigestSignFinal(md, sig, siglen) == 1;
		}
	} else {
		/* RFC 8463 3: PureEdDSA over the SHA-256 hash of the data. */
		unsigned char h[32];
		unsigned int hn = sizeof(h);

		ok = EVP_Digest(data, len, h, &hn, EVP_sha256(), NULL) == 1 &&
		     EVP_DigestSignInit(md, NULL, NULL, NULL, k->pkey) == 1 &&
		     EVP_DigestSign(md, NULL, siglen, h, hn) == 1;
		if (ok) {
			sig = xmalloc(*siglen);
			ok = EVP_DigestSign(md, sig, siglen, h, hn) == 1;
		}
	}
	EVP_MD_CTX_free(md);
	if (!ok) {
		free(sig);
		return NULL;
	}
	return sig;
}

int dkim_sign_message_at(const struct dkim_keyset *ks, const char *msg, size_t len, int64_t now,
			 char **field, char *err, size_t errsz)
{
	struct auth_hfield *fields = NULL;
	const struct dkim_skey *k;
	struct dynbuf body, hd, f;
	char from_domain[AUTH_NAME_MAX + 1];
	unsigned char bh[32];
	unsigned int bhn = sizeof(bh);
	unsigned char *sig = NULL;
	char *bh64 = NULL;
	char *b64 = NULL;
	char *used = NULL;
	size_t counts[ARRAY_LEN(sign_headers)];
	size_t bstart, hlen, nfields, siglen = 0, i, j, col;
	size_t from_idx = 0;
	size_t nfrom = 0;
	long n;
	int rc = -1;

	*field = NULL;
	if (ks == NULL || ks->n == 0)
		return 0;
	bstart = body_start(msg, len);
	hlen = bstart;
	fields = xcalloc(AUTH_DKIM_MAX_FIELDS, sizeof(*fields));
	dynbuf_init(&body, 2 * (len - bstart) + 3);
	dynbuf_init(&hd, 2 * bstart + 8192);
	dynbuf_init(&f, 8192);
	n = auth_header_split(msg, hlen, fields, AUTH_DKIM_MAX_FIELDS);
	if (n < 0) {
		fail(err, errsz, "the header section is not a list of fields (or has too many)");
		goto out;
	}
	nfields = (size_t)n;
	for (i = 0; i < nfields; i++) {
		if (name_is(&fields[i], "from")) {
			from_idx = i;
			nfrom++;
		}
	}
	if (nfrom != 1) {
		fail(err, errsz, nfrom == 0 ? "no From: field" : "more than one From: field");
		goto out;
	}
	{
		const struct auth_hfield *fr = &fields[from_idx];
		const char *v = fr->p + fr->name_len;

		while (*v != ':')
			v++;
		v++;
		if (auth_from_domain(v, (size_t)(fr->p + fr->len - v), from_domain,
				     sizeof(from_domain)) < 0) {
			fail(err, errsz, "From: does not hold a single address with a domain");
			goto out;
		}
	}
	k = key_for(ks, from_domain);
	if (k == NULL) {
		rc = 0;
		goto out;
	}

	/* bh=: SHA-256 of the relaxed body. */
	if (auth_dkim_canon_body(DKIM_RELAXED, msg + bstart, len - bstart, &body) < 0) {
		fail(err, errsz, "body too large");
		goto out;
	}
	if (EVP_Digest(body.data != NULL ? body.data : "", body.len, bh, &bhn, EVP_sha256(),
		       NULL) != 1) {
		fail(err, errsz, "body hash failed");
		goto out;
	}
	bh64 = dkim_b64_encode(bh, bhn);

	/* The field without b='s value. */
	for (j = 0; j < ARRAY_LEN(sign_headers); j++) {
		counts[j] = 0;
		for (i = 0; i < nfields; i++)
			if (name_is(&fields[i], sign_headers[j]))
				counts[j]++;
	}
	if (dynbuf_addf(&f, "DKIM-Signature: v=1; a=%s; c=relaxed/relaxed; d=%s; s=%s;\r\n"
			"\tt=%lld; h=", dkim_alg_name(k->alg), k->domain, k->selector,
			(long long)now) < 0)
		goto toolong;
	col = 8;
	{
		int first = 1;

		for (j = 0; j < ARRAY_LEN(sign_headers); j++) {
			size_t c;
			size_t nl = strlen(sign_headers[j]);

			if (counts[j] == 0)
				continue;
			for (c = 0; c <= counts[j]; c++) {
				if (!first && col + nl + 1 > B64_FOLD) {
					if (dynbuf_add(&f, ":\r\n\t", 4) < 0)
						goto toolong;
					col = 1;
				} else if (!first) {
					if (dynbuf_add(&f, ":", 1) < 0)
						goto toolong;
					col++;
				}
				if (dynbuf_add(&f, sign_headers[j], nl) < 0)
					goto toolong;
				col += nl;
				first = 0;
			}
		}
	}
	if (dynbuf_addf(&f, ";\r\n\tbh=%s;\r\n\tb=", bh64) < 0)
		goto toolong;

	/* The header hash input: each h= name picks the last unused instance
	 * going up (RFC 6376 5.4.2); an oversigned name finds none and adds
	 * nothing. */
	used = xcalloc(nfields + 1, 1);
	for (j = 0; j < ARRAY_LEN(sign_headers); j++) {
		size_t c;

		for (c = 0; c < counts[j]; c++) {
			i = nfields;
			while (i > 0) {
				i--;
				if (!used[i] && name_is(&fields[i], sign_headers[j])) {
					used[i] = 1;
					if (auth_dkim_canon_header(DKIM_RELAXED, fields[i].p,
								   fields[i].len, &hd) < 0 ||
					    dynbuf_add(&hd, "\r\n", 2) < 0)
						goto toolong;
					break;
				}
			}
		}
	}
	if (auth_dkim_canon_header(DKIM_RELAXED, f.data, f.len, &hd) < 0)
		goto toolong;
	sig = sign_data(k, hd.data, hd.len, &siglen);
	if (sig == NULL) {
		fail(err, errsz, "signing failed");
		goto out;
	}
	b64 = dkim_b64_encode(sig, siglen);
	if (add_folded_b64(&f, b64, 3) < 0)
		goto toolong;
	*field = f.data;
	f.data = NULL;
	rc = 1;
	goto out;
toolong:
	fail(err, errsz, "header too large to sign");
out:
	free(fields);
	free(used);
	free(sig);
	free(bh64);
	free(b64);
	dynbuf_free(&body);
	dynbuf_free(&hd);
	dynbuf_free(&f);
	return rc;
}

int dkim_sign_message(const struct dkim_keyset *ks, const char *msg, size_t len, char **field,
		      char *err, size_t errsz)
{
	return dkim_sign_message_at(ks, msg, len, (int64_t)time(NULL), field, err, errsz);
}
