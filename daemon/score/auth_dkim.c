/*
 * auth_dkim: DKIM signature verification (RFC 6376) with OpenSSL:
 * rsa-sha256 and ed25519-sha256 (RFC 8463); rsa-sha1 is refused and RSA
 * keys under 1024 bits are not valid (RFC 8301).  See auth.h.
 *
 * Pure parts: the DKIM-Signature parser, the key record parser, header and
 * body canonicalisation and auth_dkim_verify(), which needs only the
 * message, the parsed signature and the parsed key.  The asynchronous
 * part fetches every key (selector._domainkey.domain TXT) at once through
 * dns_query() and verifies each signature as its key arrives.
 *
 * Bounds: at most AUTH_DKIM_MAX_SIGS signatures are verified, header
 * sections of more than AUTH_DKIM_MAX_FIELDS fields are not looked at, and
 * each (body canonicalisation, l=) pair is hashed once per message.  A
 * signature with l= shorter than the body verifies only what it covers:
 * such a pass is reported as neutral, because anything may follow.
 *
 * The cost is one SHA-256 pass over the body per canonicalisation and one
 * public-key operation per signature; the caller decides whether a very
 * large body is hashed on the loop or on a worker.
 */
#include "auth.h"

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "../dns/dns.h"
#include "../util/util.h"

/* ---- parsers ------------------------------------------------------------ */

static int tag_is(const struct auth_tag *t, const char *name)
{
	return strlen(name) == t->name_len && memcmp(t->name, name, t->name_len) == 0;
}

static int val_is(const struct auth_tag *t, const char *v)
{
	return strlen(v) == t->value_len && strncasecmp(t->value, v, t->value_len) == 0;
}

static int copy_val(const struct auth_tag *t, char *out, size_t outsz)
{
	if (t->value_len >= outsz)
		return -1;
	memcpy(out, t->value, t->value_len);
	out[t->value_len] = '\0';
	return 0;
}

static int is_fws(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/*
 * The next item of a colon-separated tag value (h=, q=, a key's h=) from
 * *pos, folding white space trimmed, as [*a, *b); 0 once the value is
 * done.  An empty item (between two colons, or after a last one) is an
 * item too, for the callers that refuse it.
 */
static int colon_item(const char *v, size_t len, size_t *pos, size_t *a, size_t *b)
{
	size_t e = *pos;

	if (*pos > len)
		return 0;
	while (e < len && v[e] != ':')
		e++;
	*a = *pos;
	*b = e;
	while (*a < *b && is_fws(v[*a]))
		(*a)++;
	while (*b > *a && is_fws(v[*b - 1]))
		(*b)--;
	*pos = e + 1;
	return 1;
}

/* 1 when the colon-separated value lists word (case-insensitive). */
static int colon_list_has(const char *v, size_t len, const char *word)
{
	size_t wl = strlen(word);
	size_t k = 0;
	size_t a;
	size_t b;

	while (colon_item(v, len, &k, &a, &b))
		if (b - a == wl && strncasecmp(v + a, word, wl) == 0)
			return 1;
	return 0;
}

static int parse_num(const char *s, size_t len, int64_t *out)
{
	int64_t v = 0;
	size_t i;

	if (len == 0 || len > 18)
		return -1;
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return 0;
}

static int parse_canon(const char *s, size_t len, enum auth_dkim_canon *out)
{
	if (len == 6 && strncasecmp(s, "simple", 6) == 0)
		*out = DKIM_SIMPLE;
	else if (len == 7 && strncasecmp(s, "relaxed", 7) == 0)
		*out = DKIM_RELAXED;
	else
		return -1;
	return 0;
}

/* Is d equal to dom, or a subdomain of it?  (case-insensitive) */
static int domain_within(const char *d, size_t dlen, const char *dom)
{
	size_t n = strlen(dom);

	if (dlen == n)
		return strncasecmp(d, dom, n) == 0;
	return dlen > n && d[dlen - n - 1] == '.' && strncasecmp(d + dlen - n, dom, n) == 0;
}

#define SEEN(c) (1u << ((c) - 'a'))

int auth_dkim_sig_parse(const char *v, size_t len, struct auth_dkim_sig *out,
			char *err, size_t errsz)
{
	struct auth_tag t;
	size_t pos = 0;
	uint32_t seen = 0;
	int have_bh = 0;
	int rc;

	memset(out, 0, sizeof(*out));
	out->l = -1;
	out->t = -1;
	out->x = -1;
	while ((rc = auth_tag_next(v, len, &pos, &t)) == 1) {
		uint32_t bit = 0;

		if (t.name_len == 1 && t.name[0] >= 'a' && t.name[0] <= 'z')
			bit = SEEN(t.name[0]);
		else if (tag_is(&t, "bh"))
			bit = 1u << 31;
		if (bit != 0 && (seen & bit) != 0) {
			snprintf(err, errsz, "tag %.*s given twice", (int)t.name_len, t.name);
			return -1;
		}
		seen |= bit;
		if (tag_is(&t, "v")) {
			if (!val_is(&t, "1")) {
				snprintf(err, errsz, "v= is not 1");
				return -1;
			}
		} else if (tag_is(&t, "a")) {
			if (val_is(&t, "rsa-sha256")) {
				out->alg = DKIM_RSA_SHA256;
			} else if (val_is(&t, "ed25519-sha256")) {
				out->alg = DKIM_ED25519_SHA256;
			} else if (val_is(&t, "rsa-sha1")) {
				snprintf(err, errsz, "rsa-sha1 is not accepted (RFC 8301)");
				return -1;
			} else {
				snprintf(err, errsz, "unknown algorithm");
				return -1;
			}
		} else if (tag_is(&t, "b")) {
			long n = auth_b64_decode(t.value, t.value_len, out->b, sizeof(out->b));
			size_t start = t.value_off;
			size_t end = t.value_off + t.value_len;

			if (n <= 0) {
				snprintf(err, errsz, "b= is not base64 or too long");
				return -1;
			}
			out->b_len = (size_t)n;
			/* The value and the whitespace around it (RFC 6376 3.5, b=). */
			while (start > 0 && v[start - 1] != '=')
				start--;
			while (end < len && v[end] != ';')
				end++;
			out->b_off = start;
			out->b_raw_len = end - start;
		} else if (tag_is(&t, "bh")) {
			long n = auth_b64_decode(t.value, t.value_len, out->bh, sizeof(out->bh));

			if (n <= 0) {
				snprintf(err, errsz, "bh= is not base64");
				return -1;
			}
			out->bh_len = (size_t)n;
			have_bh = 1;
		} else if (tag_is(&t, "c")) {
			const char *slash = memchr(t.value, '/', t.value_len);
			size_t hl = slash != NULL ? (size_t)(slash - t.value) : t.value_len;

			if (parse_canon(t.value, hl, &out->hcanon) < 0 ||
			    (slash != NULL && parse_canon(slash + 1, t.value_len - hl - 1,
							  &out->bcanon) < 0)) {
				snprintf(err, errsz, "unknown canonicalisation");
				return -1;
			}
		} else if (tag_is(&t, "d")) {
			if (copy_val(&t, out->d, sizeof(out->d)) < 0 ||
			    !auth_domain_ok(out->d, strlen(out->d), 0)) {
				snprintf(err, errsz, "d= is not a domain");
				out->d[0] = '\0';
				return -1;
			}
		} else if (tag_is(&t, "s")) {
			if (copy_val(&t, out->s, sizeof(out->s)) < 0 ||
			    !auth_domain_ok(out->s, strlen(out->s), 0)) {
				snprintf(err, errsz, "s= is not a selector");
				out->s[0] = '\0';
				return -1;
			}
		} else if (tag_is(&t, "i")) {
			if (copy_val(&t, out->i, sizeof(out->i)) < 0 ||
			    strchr(out->i, '@') == NULL) {
				snprintf(err, errsz, "i= is not an identity");
				return -1;
			}
		} else if (tag_is(&t, "h")) {
			size_t k = 0;
			size_t a;
			size_t b;

			while (colon_item(t.value, t.value_len, &k, &a, &b)) {
				if (b == a || b - a >= sizeof(out->h[0]) ||
				    out->nh == AUTH_DKIM_MAX_HNAMES) {
					snprintf(err, errsz, "h= has an empty, long or %dth name",
						 AUTH_DKIM_MAX_HNAMES + 1);
					return -1;
				}
				for (size_t q = 0; q < b - a; q++) {
					char c = t.value[a + q];

					out->h[out->nh][q] = (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
				}
				out->h[out->nh][b - a] = '\0';
				out->nh++;
			}
		} else if (tag_is(&t, "l")) {
			if (parse_num(t.value, t.value_len, &out->l) < 0) {
				snprintf(err, errsz, "l= is not a number");
				return -1;
			}
		} else if (tag_is(&t, "q")) {
			/* a colon-separated list that must offer dns/txt */
			if (!colon_list_has(t.value, t.value_len, "dns/txt")) {
				snprintf(err, errsz, "q= does not offer dns/txt");
				return -1;
			}
		} else if (tag_is(&t, "t")) {
			if (parse_num(t.value, t.value_len, &out->t) < 0) {
				snprintf(err, errsz, "t= is not a number");
				return -1;
			}
		} else if (tag_is(&t, "x")) {
			if (parse_num(t.value, t.value_len, &out->x) < 0) {
				snprintf(err, errsz, "x= is not a number");
				return -1;
			}
		}
		/* other tags (z= among them) are ignored, RFC 6376 3.2 */
	}
	if (rc < 0) {
		snprintf(err, errsz, "tag list syntax error");
		return -1;
	}
	if ((seen & SEEN('v')) == 0 || (seen & SEEN('a')) == 0 || (seen & SEEN('b')) == 0 ||
	    !have_bh || (seen & SEEN('d')) == 0 || (seen & SEEN('h')) == 0 ||
	    (seen & SEEN('s')) == 0) {
		snprintf(err, errsz, "a required tag (v a b bh d h s) is missing");
		return -1;
	}
	{
		size_t k;
		int from = 0;

		for (k = 0; k < out->nh; k++)
			if (strcmp(out->h[k], "from") == 0)
				from = 1;
		if (!from) {
			snprintf(err, errsz, "h= does not sign From:");
			return -1;
		}
	}
	if (out->i[0] != '\0') {
		const char *at = strrchr(out->i, '@');

		if (!domain_within(at + 1, strlen(at + 1), out->d)) {
			snprintf(err, errsz, "i= is not within d=");
			return -1;
		}
	}
	if (out->t >= 0 && out->x >= 0 && out->x < out->t) {
		snprintf(err, errsz, "x= is before t=");
		return -1;
	}
	return 0;
}

int auth_dkim_key_parse(const char *rec, size_t len, struct auth_dkim_key *out,
			char *err, size_t errsz)
{
	struct auth_tag t;
	size_t pos = 0;
	int first = 1;
	int have_p = 0;
	int rc;

	memset(out, 0, sizeof(*out));
	out->alg = DKIM_RSA_SHA256;
	while ((rc = auth_tag_next(rec, len, &pos, &t)) == 1) {
		if (tag_is(&t, "v")) {
			/* v=DKIM1 exactly, and first when present */
			if (!first || t.value_len != 5 || memcmp(t.value, "DKIM1", 5) != 0) {
				snprintf(err, errsz, "v= is not DKIM1 or not first");
				return -1;
			}
		} else if (tag_is(&t, "k")) {
			if (val_is(&t, "rsa")) {
				out->alg = DKIM_RSA_SHA256;
			} else if (val_is(&t, "ed25519")) {
				out->alg = DKIM_ED25519_SHA256;
			} else {
				snprintf(err, errsz, "unknown key type");
				return -1;
			}
		} else if (tag_is(&t, "h")) {
			if (!colon_list_has(t.value, t.value_len, "sha256")) {
				snprintf(err, errsz, "key does not allow sha256");
				return -1;
			}
		} else if (tag_is(&t, "p")) {
			long n;

			have_p = 1;
			if (t.value_len == 0) {
				out->revoked = 1;
				continue;
			}
			n = auth_b64_decode(t.value, t.value_len, out->p, sizeof(out->p));
			if (n <= 0) {
				snprintf(err, errsz, "p= is not base64 or too long");
				return -1;
			}
			out->p_len = (size_t)n;
		} else if (tag_is(&t, "t")) {
			size_t k;

			for (k = 0; k < t.value_len; k++) {
				if (t.value[k] == 'y')
					out->testing = 1;
				if (t.value[k] == 's')
					out->strict = 1;
			}
		} else if (tag_is(&t, "s")) {
			if (!val_is(&t, "*") && !val_is(&t, "email") &&
			    memmem(t.value, t.value_len, "email", 5) == NULL &&
			    memchr(t.value, '*', t.value_len) == NULL) {
				snprintf(err, errsz, "key is not for email");
				return -1;
			}
		}
		first = 0;
	}
	if (rc < 0) {
		snprintf(err, errsz, "tag list syntax error");
		return -1;
	}
	if (!have_p) {
		snprintf(err, errsz, "no p= in the key record");
		return -1;
	}
	return 0;
}

/* ---- canonicalisation --------------------------------------------------- */

int auth_dkim_canon_header(enum auth_dkim_canon c, const char *f, size_t len,
			   struct dynbuf *out)
{
	const char *colon = memchr(f, ':', len);
	size_t i;
	int rc = 0;

	if (colon == NULL)
		return -1;
	if (c == DKIM_SIMPLE) {
		/* As is, but a bare LF inside the folding is a CRLF. */
		for (i = 0; i < len; i++) {
			if (f[i] == '\n' && (i == 0 || f[i - 1] != '\r'))
				rc |= dynbuf_add(out, "\r\n", 2);
			else
				rc |= dynbuf_add(out, f + i, 1);
		}
		return rc != 0 ? -1 : 0;
	}
	{
		size_t nl = (size_t)(colon - f);
		char name[256];
		int space = 0;
		int started = 0;

		while (nl > 0 && (f[nl - 1] == ' ' || f[nl - 1] == '\t'))
			nl--;
		if (nl >= sizeof(name))
			return -1;
		for (i = 0; i < nl; i++)
			name[i] = (f[i] >= 'A' && f[i] <= 'Z') ? (char)(f[i] + 32) : f[i];
		rc |= dynbuf_add(out, name, nl);
		rc |= dynbuf_add(out, ":", 1);
		for (i = (size_t)(colon - f) + 1; i < len; i++) {
			char ch = f[i];

			if (ch == '\r' || ch == '\n')
				continue; /* unfold */
			if (ch == ' ' || ch == '\t') {
				space = 1;
				continue;
			}
			if (space && started)
				rc |= dynbuf_add(out, " ", 1);
			space = 0;
			started = 1;
			rc |= dynbuf_add(out, &ch, 1);
		}
	}
	return rc != 0 ? -1 : 0;
}

typedef void (*sink_fn)(void *arg, const char *p, size_t n);

/*
 * Canonicalise a body into sink.  Lines end at LF (a CR before it is
 * dropped); trailing empty lines are held back and dropped at the end.
 */
static void canon_body(enum auth_dkim_canon c, const char *b, size_t len, sink_fn sink,
		       void *arg)
{
	size_t pending = 0;
	size_t i = 0;
	int any = 0;

	while (i < len) {
		const char *nl = memchr(b + i, '\n', len - i);
		size_t end = nl != NULL ? (size_t)(nl - b) : len;
		size_t next = nl != NULL ? end + 1 : len;
		size_t le = end;
		int empty;

		if (le > i && b[le - 1] == '\r')
			le--;
		if (c == DKIM_RELAXED) {
			size_t k = i;

			while (k < le && (b[k] == ' ' || b[k] == '\t'))
				k++;
			empty = k == le;
		} else {
			empty = le == i;
		}
		if (empty) {
			pending++;
			i = next;
			continue;
		}
		while (pending > 0) {
			sink(arg, "\r\n", 2);
			pending--;
		}
		if (c == DKIM_SIMPLE) {
			sink(arg, b + i, le - i);
		} else {
			size_t k = i;
			size_t run = i;

			/* runs of WSP become one SP; WSP at the end of the line goes */
			while (k < le) {
				if (b[k] == ' ' || b[k] == '\t') {
					size_t w = k;

					sink(arg, b + run, k - run);
					while (w < le && (b[w] == ' ' || b[w] == '\t'))
						w++;
					if (w < le)
						sink(arg, " ", 1);
					k = w;
					run = w;
					continue;
				}
				k++;
			}
			sink(arg, b + run, le - run);
		}
		sink(arg, "\r\n", 2);
		any = 1;
		i = next;
	}
	if (!any && c == DKIM_SIMPLE)
		sink(arg, "\r\n", 2); /* an empty body is one CRLF (RFC 6376 3.4.3) */
}

struct buf_sink {
	struct dynbuf *b;
	int failed;
};

static void dynbuf_sink(void *arg, const char *p, size_t n)
{
	struct buf_sink *bs = arg;

	if (dynbuf_add(bs->b, p, n) < 0)
		bs->failed = 1;
}

int auth_dkim_canon_body(enum auth_dkim_canon c, const char *b, size_t len,
			 struct dynbuf *out)
{
	struct buf_sink bs = { out, 0 };

	canon_body(c, b, len, dynbuf_sink, &bs);
	return bs.failed ? -1 : 0;
}

struct hash_sink {
	EVP_MD_CTX *md;
	int64_t limit;    /* -1: all */
	uint64_t total;   /* canonical length */
	uint64_t hashed;
};

static void hash_sink(void *arg, const char *p, size_t n)
{
	struct hash_sink *h = arg;
	size_t take = n;

	h->total += n;
	if (h->limit >= 0) {
		uint64_t room = (uint64_t)h->limit > h->hashed ? (uint64_t)h->limit - h->hashed : 0;

		if (take > room)
			take = (size_t)room;
	}
	if (take > 0)
		EVP_DigestUpdate(h->md, p, take);
	h->hashed += take;
}

#define BODY_CACHE 4

struct auth_dkim_bodies {
	struct auth_msg m;
	size_t n;
	struct {
		enum auth_dkim_canon c;
		int64_t l;
		unsigned char hash[32];
		uint64_t total;
	} e[BODY_CACHE];
};

struct auth_dkim_bodies *auth_dkim_bodies_new(const struct auth_msg *m)
{
	struct auth_dkim_bodies *b = xcalloc(1, sizeof(*b));

	b->m = *m;
	return b;
}

void auth_dkim_bodies_free(struct auth_dkim_bodies *b)
{
	free(b);
}

static void body_hash(struct auth_dkim_bodies *b, enum auth_dkim_canon c, int64_t l,
		      unsigned char out[32], uint64_t *total)
{
	struct hash_sink h;
	unsigned int n = 32;
	size_t i;

	for (i = 0; i < b->n; i++) {
		if (b->e[i].c == c && b->e[i].l == l) {
			memcpy(out, b->e[i].hash, 32);
			*total = b->e[i].total;
			return;
		}
	}
	memset(&h, 0, sizeof(h));
	h.md = EVP_MD_CTX_new();
	if (h.md == NULL)
		abort();
	h.limit = l;
	EVP_DigestInit_ex(h.md, EVP_sha256(), NULL);
	canon_body(c, b->m.body != NULL ? b->m.body : "", b->m.body_len, hash_sink, &h);
	EVP_DigestFinal_ex(h.md, out, &n);
	EVP_MD_CTX_free(h.md);
	*total = h.total;
	if (b->n < BODY_CACHE) {
		b->e[b->n].c = c;
		b->e[b->n].l = l;
		memcpy(b->e[b->n].hash, out, 32);
		b->e[b->n].total = h.total;
		b->n++;
	}
}

/* ---- verification ------------------------------------------------------- */

static enum auth_res verdict(char *reason, size_t rsz, enum auth_res r, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static enum auth_res verdict(char *reason, size_t rsz, enum auth_res r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, rsz, fmt, ap);
	va_end(ap);
	return r;
}

static EVP_PKEY *load_key(const struct auth_dkim_key *key)
{
	if (key->alg == DKIM_ED25519_SHA256)
		return EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, key->p, key->p_len);
	{
		const unsigned char *p = key->p;

		return d2i_PUBKEY(NULL, &p, (long)key->p_len);
	}
}

enum auth_res auth_dkim_verify(const struct auth_hfield *fields, size_t nfields,
			       size_t sig_field, const struct auth_dkim_sig *sig,
			       const struct auth_dkim_key *key, struct auth_dkim_bodies *bodies,
			       int64_t now, char *reason, size_t rsz)
{
	unsigned char bh[32];
	uint64_t total = 0;
	struct dynbuf hd;
	char *used = NULL;
	EVP_PKEY *pkey = NULL;
	EVP_MD_CTX *md = NULL;
	enum auth_res res;
	size_t k;
	size_t cap = 4096;
	const struct auth_hfield *sf = &fields[sig_field];
	const char *colon;
	size_t voff;

	if (sig->x >= 0 && now > sig->x)
		return verdict(reason, rsz, AUTH_PERMERROR, "signature expired");
	if (key->revoked)
		return verdict(reason, rsz, AUTH_PERMERROR, "key revoked");
	if (key->alg != sig->alg)
		return verdict(reason, rsz, AUTH_PERMERROR, "key type does not match a=");
	if (key->strict && sig->i[0] != '\0' &&
	    strcasecmp(strrchr(sig->i, '@') + 1, sig->d) != 0)
		return verdict(reason, rsz, AUTH_PERMERROR, "key requires i= domain equal to d=");
	body_hash(bodies, sig->bcanon, sig->l, bh, &total);
	if (sig->bh_len != 32 || memcmp(bh, sig->bh, 32) != 0)
		return verdict(reason, rsz, AUTH_FAIL, "body hash did not verify");

	for (k = 0; k < nfields; k++)
		cap += fields[k].len * 2 + 2;
	dynbuf_init(&hd, cap);
	used = xcalloc(nfields + 1, 1);
	res = AUTH_PERMERROR;
	for (k = 0; k < sig->nh; k++) {
		size_t j = nfields;

		/* The last unused instance, going up (RFC 6376 5.4.2). */
		while (j > 0) {
			j--;
			if (!used[j] && fields[j].name_len == strlen(sig->h[k]) &&
			    strncasecmp(fields[j].p, sig->h[k], fields[j].name_len) == 0) {
				used[j] = 1;
				if (auth_dkim_canon_header(sig->hcanon, fields[j].p, fields[j].len,
							   &hd) < 0 ||
				    dynbuf_add(&hd, "\r\n", 2) < 0) {
					verdict(reason, rsz, AUTH_PERMERROR, "header too large");
					goto out;
				}
				break;
			}
		}
	}
	/* The signature field itself, b= blanked, without its final CRLF. */
	colon = memchr(sf->p, ':', sf->len);
	voff = (size_t)(colon + 1 - sf->p);
	{
		struct dynbuf blank;
		int rc;

		dynbuf_init(&blank, sf->len + 1);
		rc = dynbuf_add(&blank, sf->p, voff + sig->b_off);
		rc |= dynbuf_add(&blank, sf->p + voff + sig->b_off + sig->b_raw_len,
				 sf->len - voff - sig->b_off - sig->b_raw_len);
		if (rc == 0)
			rc = auth_dkim_canon_header(sig->hcanon, blank.data, blank.len, &hd);
		dynbuf_free(&blank);
		if (rc != 0) {
			verdict(reason, rsz, AUTH_PERMERROR, "header too large");
			goto out;
		}
	}
	pkey = load_key(key);
	if (pkey == NULL) {
		verdict(reason, rsz, AUTH_PERMERROR, "key is not a valid %s public key",
			key->alg == DKIM_RSA_SHA256 ? "RSA" : "Ed25519");
		goto out;
	}
	if (key->alg == DKIM_RSA_SHA256 && EVP_PKEY_get_bits(pkey) < AUTH_DKIM_MIN_RSA_BITS) {
		verdict(reason, rsz, AUTH_PERMERROR, "RSA key of %d bits is too short (RFC 8301)",
			EVP_PKEY_get_bits(pkey));
		goto out;
	}
	md = EVP_MD_CTX_new();
	if (md == NULL)
		abort();
	if (key->alg == DKIM_RSA_SHA256) {
		int ok = EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, pkey) == 1 &&
			 EVP_DigestVerifyUpdate(md, hd.data, hd.len) == 1 &&
			 EVP_DigestVerifyFinal(md, sig->b, sig->b_len) == 1;

		res = ok ? AUTH_PASS : AUTH_FAIL;
	} else {
		/* RFC 8463 3: Ed25519 signs the SHA-256 hash of the header data. */
		unsigned char h[32];
		unsigned int hn = 32;
		int ok = EVP_Digest(hd.data, hd.len, h, &hn, EVP_sha256(), NULL) == 1 &&
			 EVP_DigestVerifyInit(md, NULL, NULL, NULL, pkey) == 1 &&
			 EVP_DigestVerify(md, sig->b, sig->b_len, h, hn) == 1;

		res = ok ? AUTH_PASS : AUTH_FAIL;
	}
	if (res == AUTH_FAIL) {
		verdict(reason, rsz, AUTH_FAIL, "signature did not verify");
	} else if (sig->l >= 0 && (uint64_t)sig->l < total) {
		res = verdict(reason, rsz, AUTH_NEUTRAL,
			      "verified, but l= leaves %llu bytes of the body unsigned",
			      (unsigned long long)(total - (uint64_t)sig->l));
	} else if (sig->l >= 0 && (uint64_t)sig->l > total) {
		res = verdict(reason, rsz, AUTH_FAIL, "l= is longer than the body");
	} else {
		verdict(reason, rsz, AUTH_PASS, "signature verified%s",
			key->testing ? " (key in testing mode)" : "");
	}
out:
	EVP_MD_CTX_free(md);
	EVP_PKEY_free(pkey);
	dynbuf_free(&hd);
	free(used);
	return res;
}

/* ---- asynchronous: fetch the keys, verify ------------------------------- */

struct auth_dkim {
	struct dns *dns;
	auth_dkim_cb cb;
	void *arg;
	int cancelled;
	size_t pending;           /* DNS queries in flight */
	struct auth_msg msg;
	struct auth_hfield *fields;
	size_t nfields;
	size_t sig_field[AUTH_DKIM_MAX_SIGS];
	struct auth_dkim_sig *sigs; /* AUTH_DKIM_MAX_SIGS */
	struct auth_dkim_bodies *bodies;
	struct auth_dkim_results res;
};

static void dkim_free(struct auth_dkim *k)
{
	free(k->fields);
	free(k->sigs);
	auth_dkim_bodies_free(k->bodies);
	free(k);
}

static void dkim_answer_done(struct auth_dkim *k)
{
	if (--k->pending > 0)
		return;
	if (k->cancelled) {
		dkim_free(k);
		return;
	}
	k->cb(&k->res, k->arg);
	dkim_free(k);
}

static void on_key(const struct dns_result *r, uint64_t cookie, void *ctx)
{
	struct auth_dkim *k = ctx;
	size_t idx = (size_t)cookie;
	struct auth_dkim_result *out;
	struct auth_dkim_key key;
	char err[AUTH_REASON_MAX];
	const char *t;
	int parsed = 0;

	if (k->cancelled || idx >= k->res.n) {
		dkim_answer_done(k);
		return;
	}
	out = &k->res.r[idx];
	err[0] = '\0';
	if (r->status == DNS_TEMPFAIL || r->status == DNS_CANCELLED) {
		out->res = AUTH_TEMPERROR;
		snprintf(out->reason, sizeof(out->reason), "DNS error fetching the key");
	} else if (r->status != DNS_OK) {
		out->res = AUTH_PERMERROR;
		snprintf(out->reason, sizeof(out->reason), "no key record at %.60s._domainkey.%.80s",
			 k->sigs[idx].s, k->sigs[idx].d);
	} else {
		for (t = dns_txt_next(r, NULL); t != NULL && !parsed; t = dns_txt_next(r, t))
			if (auth_dkim_key_parse(t, strlen(t), &key, err, sizeof(err)) == 0)
				parsed = 1;
		if (!parsed) {
			out->res = AUTH_PERMERROR;
			snprintf(out->reason, sizeof(out->reason), "key record: %.150s",
				 err[0] != '\0' ? err : "too large to read");
		} else {
			out->res = auth_dkim_verify(k->fields, k->nfields, k->sig_field[idx],
						    &k->sigs[idx], &key, k->bodies,
						    (int64_t)time(NULL), out->reason,
						    sizeof(out->reason));
		}
	}
	dkim_answer_done(k);
}

static void on_none(const struct dns_result *r, uint64_t cookie, void *ctx)
{
	(void)r;
	(void)cookie;
	dkim_answer_done(ctx);
}

struct auth_dkim *auth_dkim_start(struct dns *d, const struct auth_msg *m, auth_dkim_cb cb,
				  void *arg)
{
	struct auth_dkim *k = xcalloc(1, sizeof(*k));
	long n;
	size_t i;

	k->dns = d;
	k->cb = cb;
	k->arg = arg;
	k->msg = *m;
	k->fields = xcalloc(AUTH_DKIM_MAX_FIELDS, sizeof(*k->fields));
	k->sigs = xcalloc(AUTH_DKIM_MAX_SIGS, sizeof(*k->sigs));
	k->bodies = auth_dkim_bodies_new(m);
	n = auth_header_split(m->header, m->header_len, k->fields, AUTH_DKIM_MAX_FIELDS);
	k->nfields = n > 0 ? (size_t)n : 0;
	/* One query in flight from here, so that cb never runs inside this call. */
	k->pending = 1;
	for (i = 0; i < k->nfields; i++) {
		const struct auth_hfield *f = &k->fields[i];
		struct auth_dkim_result *out;
		struct auth_dkim_sig *sig;
		char name[2 * AUTH_NAME_MAX + 16];
		const char *v;

		if (f->name_len != 14 || strncasecmp(f->p, "dkim-signature", 14) != 0)
			continue;
		if (k->res.n == AUTH_DKIM_MAX_SIGS) {
			k->res.not_checked++;
			continue;
		}
		out = &k->res.r[k->res.n];
		sig = &k->sigs[k->res.n];
		k->sig_field[k->res.n] = i;
		v = memchr(f->p, ':', f->len) + 1;
		if (auth_dkim_sig_parse(v, (size_t)(f->p + f->len - v), sig, out->reason,
					sizeof(out->reason)) < 0) {
			out->res = AUTH_PERMERROR;
			strlcpy_s(out->d, sig->d, sizeof(out->d));
			strlcpy_s(out->s, sig->s, sizeof(out->s));
			k->res.n++;
			continue;
		}
		strlcpy_s(out->d, sig->d, sizeof(out->d));
		strlcpy_s(out->s, sig->s, sizeof(out->s));
		strlcpy_s(out->i, sig->i, sizeof(out->i));
		strlcpy_s(out->alg, sig->alg == DKIM_RSA_SHA256 ? "rsa-sha256" : "ed25519-sha256",
			  sizeof(out->alg));
		snprintf(name, sizeof(name), "%s._domainkey.%s", sig->s, sig->d);
		k->pending++;
		dns_query(d, name, DNS_TXT_FULL, on_key, k->res.n, k);
		k->res.n++;
	}
	dns_query(d, "", DNS_TXT_FULL, on_none, 0, k);
	return k;
}

void auth_dkim_cancel(struct auth_dkim *k)
{
	if (k != NULL)
		k->cancelled = 1;
}
