/*
 * score_bayes: the statistical filter's tokenizer, combiner and in-memory
 * model.  Pure functions over a mime view and counts: no I/O, no logging,
 * no global state.  Learning and loading a model from the store are in
 * score_bayes_learn.c.  docs/score.md explains the choices and the figures
 * behind them.
 */
#include "score_bayes.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../mime/mime.h"
#include "../util/util.h"

/* ---- SipHash-2-4 (reference: github.com/veorq/SipHash) -------------------- */

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))

static uint64_t load64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

#define SIPROUND                                                                  \
	do {                                                                      \
		v0 += v1; v1 = ROTL(v1, 13); v1 ^= v0; v0 = ROTL(v0, 32);         \
		v2 += v3; v3 = ROTL(v3, 16); v3 ^= v2;                            \
		v0 += v3; v3 = ROTL(v3, 21); v3 ^= v0;                            \
		v2 += v1; v1 = ROTL(v1, 17); v1 ^= v2; v2 = ROTL(v2, 32);         \
	} while (0)

uint64_t bayes_siphash(const uint8_t key[16], const void *data, size_t n)
{
	const uint8_t *p = data;
	uint64_t k0 = load64(key), k1 = load64(key + 8);
	uint64_t v0 = 0x736f6d6570736575ULL ^ k0;
	uint64_t v1 = 0x646f72616e646f6dULL ^ k1;
	uint64_t v2 = 0x6c7967656e657261ULL ^ k0;
	uint64_t v3 = 0x7465646279746573ULL ^ k1;
	uint64_t b = (uint64_t)n << 56;
	uint64_t m;
	size_t i, left = n & 7;

	for (i = 0; i + 8 <= n; i += 8) {
		m = load64(p + i);
		v3 ^= m;
		SIPROUND;
		SIPROUND;
		v0 ^= m;
	}
	for (size_t j = 0; j < left; j++)
		b |= (uint64_t)p[i + j] << (8 * j);
	v3 ^= b;
	SIPROUND;
	SIPROUND;
	v0 ^= b;
	v2 ^= 0xff;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	return v0 ^ v1 ^ v2 ^ v3;
}

/* ---- tokenizer --------------------------------------------------------- */

/*
 * Header fields never read: a filter's verdict (X-Spam-*, X-Bogosity, our
 * own X-Moat-*), where a mailbox delivered the copy (Delivered-To and
 * friends: spam traps and the corpus owner's addresses), a mail client's
 * flags, and Date, Delivery-Date, X-Original-Date (when the copy was sent or
 * collected, not what it says).
 */
static const char *const ignored_exact[] = {
	"delivered-to", "x-original-to", "envelope-to", "x-envelope-to", "x-delivered-to",
	"x-bogosity", "status", "x-status", "x-keywords", "x-uid", "x-mozilla-status",
	"x-mozilla-status2", "content-length", "lines", "date", "x-dspam-result",
	"x-dspam-probability", "x-dspam-confidence", "x-dspam-signature", "delivery-date",
	"x-original-date",
};
static const char *const ignored_prefix[] = { "x-spam-", "x-moat-", "x-rspamd-" };

int bayes_header_ignored(const char *name)
{
	size_t len = strlen(name);

	for (size_t i = 0; i < ARRAY_LEN(ignored_exact); i++)
		if (strcasecmp(name, ignored_exact[i]) == 0)
			return 1;
	for (size_t i = 0; i < ARRAY_LEN(ignored_prefix); i++)
		if (ascii_prefix(name, len, ignored_prefix[i]))
			return 1;
	return 0;
}

#define PREFIX_MAX 40
#define TEXT_MAX (PREFIX_MAX + BAYES_WORD_MAX + 8)

struct tok {
	const uint8_t *key;
	struct bayes_tokens *out;
	int keep_text;
	uint64_t win[BAYES_WINDOW - 1];          /* hashes of the last words, newest first */
	char wtext[BAYES_WINDOW - 1][TEXT_MAX];  /* their texts (keep_text only) */
	size_t nwin;
};

static void text_add(struct bayes_tokens *t, const char *a, size_t alen, const char *b,
		     size_t blen, uint32_t *off)
{
	size_t need = alen + blen + 1;

	if (t->text_len + need > t->text_cap) {
		size_t cap = t->text_cap ? t->text_cap * 2 : 4096;

		while (cap < t->text_len + need)
			cap *= 2;
		t->text = xrealloc(t->text, cap);
		t->text_cap = cap;
	}
	*off = (uint32_t)t->text_len;
	memcpy(t->text + t->text_len, a, alen);
	memcpy(t->text + t->text_len + alen, b, blen);
	t->text[t->text_len + alen + blen] = '\0';
	t->text_len += need;
}

/* Add one feature; -1 when the bound is reached. */
static int feature(struct tok *k, uint64_t h, uint8_t kind, const char *a, size_t alen,
		   const char *b, size_t blen)
{
	struct bayes_tokens *t = k->out;
	struct bayes_feature *f;

	if (t->made >= BAYES_MAX_FEATURES) {
		t->truncated = 1;
		return -1;
	}
	if (t->n == t->cap) {
		t->cap = t->cap ? t->cap * 2 : 512;
		t->f = xrealloc(t->f, t->cap * sizeof(*t->f));
	}
	f = &t->f[t->n++];
	t->made++;
	f->hash = h != 0 ? h : 1;
	f->kind = kind;
	f->text = 0;
	if (k->keep_text)
		text_add(t, a, alen, b, blen, &f->text);
	return 0;
}

/* A single token: prefix and word hashed together. */
static int single(struct tok *k, const char *prefix, const char *w, size_t wlen, uint64_t *hout)
{
	char buf[TEXT_MAX];
	size_t plen = strlen(prefix);
	uint64_t h;

	if (plen > PREFIX_MAX)
		plen = PREFIX_MAX;
	if (wlen > sizeof(buf) - plen)
		wlen = sizeof(buf) - plen;
	memcpy(buf, prefix, plen);
	memcpy(buf + plen, w, wlen);
	h = bayes_siphash(k->key, buf, plen + wlen);
	if (hout != NULL)
		*hout = h;
	return feature(k, h, BAYES_KIND_SINGLE, buf, plen + wlen, "", 0);
}

/*
 * Orthogonal sparse bigrams: the new word paired with each of the last
 * BAYES_WINDOW-1 words, the distance part of the pair (Siefkes et al.
 * 2004, as CRM114 and rspamd).  The pair's hash is keyed over both words'
 * hashes and the distance.
 */
static int osb(struct tok *k, uint64_t h, const char *text, size_t tlen)
{
	uint8_t buf[17];
	char sep[8];

	for (size_t d = 0; d < k->nwin; d++) {
		memcpy(buf, &k->win[d], 8);
		memcpy(buf + 8, &h, 8);
		buf[16] = (uint8_t)(d + 1);
		if (k->keep_text) {
			/* "a b", "a ~ b", "a ~~ b": one ~ per word skipped */
			size_t n = 0;

			sep[n++] = ' ';
			for (size_t i = 0; i < d; i++)
				sep[n++] = '~';
			if (d > 0)
				sep[n++] = ' ';
			char joined[TEXT_MAX * 2];
			size_t alen = strlen(k->wtext[d]);

			memcpy(joined, k->wtext[d], alen);
			memcpy(joined + alen, sep, n);
			if (feature(k, bayes_siphash(k->key, buf, sizeof(buf)), (uint8_t)(d + 1),
				    joined, alen + n, text, tlen) < 0)
				return -1;
		} else if (feature(k, bayes_siphash(k->key, buf, sizeof(buf)), (uint8_t)(d + 1),
				   "", 0, "", 0) < 0) {
			return -1;
		}
	}
	memmove(&k->win[1], &k->win[0], (BAYES_WINDOW - 2) * sizeof(k->win[0]));
	k->win[0] = h;
	if (k->keep_text) {
		memmove(k->wtext[1], k->wtext[0], (BAYES_WINDOW - 2) * TEXT_MAX);
		if (tlen >= TEXT_MAX)
			tlen = TEXT_MAX - 1;
		memcpy(k->wtext[0], text, tlen);
		k->wtext[0][tlen] = '\0';
	}
	if (k->nwin < BAYES_WINDOW - 1)
		k->nwin++;
	return 0;
}

static int tokchar(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c >= 0x80 || c == '$';
}

static int joiner(unsigned char c)
{
	return c == '.' || c == '-' || c == '\'' || c == '_' || c == '@';
}

enum { W_OSB = 1, W_HOSTS = 2, W_ADDR = 4 };

/*
 * The words of s[0..len): runs of letters, digits, non-ASCII octets and
 * '$', joined by . - ' _ @ between them; ASCII case-folded.  Numbers become
 * "#<digits>" ("$#<digits>" for money), over-long words "skip:<c><len/10>"
 * (SpamBayes).  With W_HOSTS only words with a dot and a letter (host
 * names) are kept.  With W_ADDR an address also gives "<prefix>@<domain>":
 * a sender's or a list's domain recurs where local parts do not.  At most
 * max_words; -1 when the feature bound is hit.
 */
static int words(struct tok *k, const char *prefix, const char *s, size_t len, int flags,
		 size_t max_words)
{
	char w[BAYES_WORD_MAX + 1];
	char text[TEXT_MAX];
	size_t i = 0, nw = 0;
	size_t plen = strlen(prefix);

	if (plen > PREFIX_MAX)
		plen = PREFIX_MAX;
	k->nwin = 0;
	while (i < len && nw < max_words) {
		size_t start, wlen, j, tlen;
		int digits = 0, letters = 0, dots = 0, other = 0;
		uint64_t h;

		while (i < len && !tokchar((unsigned char)s[i]))
			i++;
		start = i;
		while (i < len && (tokchar((unsigned char)s[i]) ||
				   (joiner((unsigned char)s[i]) && i + 1 < len &&
				    tokchar((unsigned char)s[i + 1]))))
			i++;
		wlen = i - start;
		if (wlen < BAYES_WORD_MIN)
			continue;
		for (j = start; j < i; j++) {
			unsigned char c = (unsigned char)s[j];

			if (c >= '0' && c <= '9')
				digits++;
			else if (c == '.' || c == ',')
				dots++;
			else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
				letters++;
			else if (c != '$' && c != '-')
				other++;
		}
		if ((flags & W_HOSTS) && (dots == 0 || letters == 0))
			continue;
		if (digits > 0 && letters == 0 && other == 0) {
			tlen = (size_t)snprintf(w, sizeof(w), "%s#%d", s[start] == '$' ? "$" : "",
						digits > 20 ? 20 : digits);
		} else if (wlen > BAYES_WORD_MAX) {
			unsigned char c0 = (unsigned char)s[start];

			tlen = (size_t)snprintf(w, sizeof(w), "skip:%c%zu",
						c0 < 0x80 ? (char)(c0 | (c0 >= 'A' && c0 <= 'Z' ? 0x20 : 0)) : '?',
						wlen / 10 * 10);
		} else {
			for (j = 0; j < wlen; j++) {
				unsigned char c = (unsigned char)s[start + j];

				w[j] = (char)(c >= 'A' && c <= 'Z' ? c | 0x20 : c);
			}
			tlen = wlen;
		}
		nw++;
		memcpy(text, prefix, plen);
		memcpy(text + plen, w, tlen);
		if (single(k, prefix, w, tlen, &h) < 0)
			return -1;
		if ((flags & W_OSB) && osb(k, h, text, plen + tlen) < 0)
			return -1;
		if (flags & W_ADDR) {
			const char *at = memchr(w, '@', tlen);

			if (at != NULL && at + 1 < w + tlen &&
			    single(k, prefix, at, (size_t)(w + tlen - at), NULL) < 0)
				return -1;
		}
	}
	return 0;
}

static int headers(struct tok *k, const struct mime_view *v)
{
	char prefix[PREFIX_MAX + 2];

	for (size_t i = 0; i < v->nheaders; i++) {
		const char *name = v->headers[i].name;
		const char *val = v->headers[i].value;
		size_t nlen = strlen(name), vlen = strlen(val);
		int flags = 0;
		size_t max_words = 50;

		if (bayes_header_ignored(name))
			continue;
		if (nlen > PREFIX_MAX - 1)
			nlen = PREFIX_MAX - 1;
		for (size_t j = 0; j < nlen; j++) {
			unsigned char c = (unsigned char)name[j];

			prefix[j] = (char)(c >= 'A' && c <= 'Z' ? c | 0x20 : c);
		}
		prefix[nlen] = ':';
		prefix[nlen + 1] = '\0';
		if (vlen > BAYES_MAX_HEADER_VALUE)
			vlen = BAYES_MAX_HEADER_VALUE;
		/* Which header fields a message has is a clue of its own. */
		if (single(k, "hdr:", prefix, nlen, NULL) < 0)
			return -1;
		if (strcmp(prefix, "subject:") == 0) {
			flags = W_OSB;
		} else if (strcmp(prefix, "received:") == 0) {
			flags = W_HOSTS;
			max_words = 8;
		} else {
			flags = W_ADDR;
		}
		if (words(k, prefix, val, vlen, flags, max_words) < 0)
			return -1;
	}
	return 0;
}

static unsigned bucket(size_t n)
{
	unsigned b = 0;

	while (n > 0 && b < 12) {
		n >>= 1;
		b++;
	}
	return b;
}

static int meta(struct tok *k, const struct mime_view *v)
{
	static const struct {
		unsigned bit;
		const char *name;
	} fl[] = {
		{ MIME_F_LIMIT, "mime_limit" },       { MIME_F_MALFORMED, "mime_malformed" },
		{ MIME_F_HTML_ONLY, "html_only" },    { MIME_F_ENCRYPTED, "encrypted" },
		{ MIME_F_8BIT_HEADERS, "8bit_headers" },
	};
	char buf[64];
	int n;

	for (size_t i = 0; i < ARRAY_LEN(fl); i++)
		if ((v->flags & fl[i].bit) && single(k, "meta:", fl[i].name, strlen(fl[i].name),
						     NULL) < 0)
			return -1;
	n = snprintf(buf, sizeof(buf), "parts=%d attachments=%zu", v->nparts > 20 ? 20 : v->nparts,
		     v->nattachments > 10 ? 10 : v->nattachments);
	if (single(k, "meta:", buf, (size_t)n, NULL) < 0)
		return -1;
	n = snprintf(buf, sizeof(buf), "urls~%u", bucket(v->nurl_hosts));
	if (single(k, "meta:", buf, (size_t)n, NULL) < 0)
		return -1;
	n = snprintf(buf, sizeof(buf), "text~%u", bucket(v->text_len));
	return single(k, "meta:", buf, (size_t)n, NULL);
}

static int urls_and_attachments(struct tok *k, const struct mime_view *v)
{
	for (size_t i = 0; i < v->nurl_hosts; i++) {
		const char *host = v->url_hosts[i];
		size_t len = strlen(host);
		const char *dom = host;
		int dots = 0;

		if (single(k, "url:", host, len, NULL) < 0)
			return -1;
		/* and the last two labels: many hosts of one sender's domain */
		for (const char *p = host + len; p > host; p--) {
			if (p[-1] == '.' && ++dots == 2) {
				dom = p;
				break;
			}
		}
		if (dom != host && single(k, "urldom:", dom, strlen(dom), NULL) < 0)
			return -1;
	}
	for (size_t i = 0; i < v->nattachments; i++) {
		const char *name = v->attachments[i].name;
		const char *dot = strrchr(name, '.');

		if (single(k, "att:", v->attachments[i].type, strlen(v->attachments[i].type),
			   NULL) < 0)
			return -1;
		if (dot != NULL && dot[1] != '\0' && strlen(dot + 1) <= 8) {
			char ext[9];
			size_t n = strlen(dot + 1);

			for (size_t j = 0; j < n; j++) {
				unsigned char c = (unsigned char)dot[1 + j];

				ext[j] = (char)(c >= 'A' && c <= 'Z' ? c | 0x20 : c);
			}
			if (single(k, "attext:", ext, n, NULL) < 0)
				return -1;
		}
	}
	return 0;
}

static int cmp_feature(const void *a, const void *b)
{
	const struct bayes_feature *x = a, *y = b;

	if (x->hash != y->hash)
		return x->hash < y->hash ? -1 : 1;
	return x->kind < y->kind ? -1 : x->kind > y->kind;
}

void bayes_tokenize(const struct mime_view *v, const uint8_t key[16], int keep_text,
		    struct bayes_tokens *out)
{
	struct tok *k = xcalloc(1, sizeof(*k));
	size_t tlen = v->text_len;
	size_t i, n;

	memset(out, 0, sizeof(*out));
	k->key = key;
	k->out = out;
	k->keep_text = keep_text;
	if (tlen > BAYES_MAX_TEXT)
		tlen = BAYES_MAX_TEXT;
	/* Cheap, bounded sources first, so that a huge body cannot crowd them out. */
	if (meta(k, v) == 0 && urls_and_attachments(k, v) == 0 && headers(k, v) == 0)
		(void)words(k, "", v->text, tlen, W_OSB, SIZE_MAX);
	free(k);
	if (out->n == 0)
		return;
	qsort(out->f, out->n, sizeof(out->f[0]), cmp_feature);
	for (i = 1, n = 1; i < out->n; i++)
		if (out->f[i].hash != out->f[n - 1].hash)
			out->f[n++] = out->f[i];
	out->n = n;
}

void bayes_tokens_free(struct bayes_tokens *t)
{
	if (t == NULL)
		return;
	free(t->f);
	free(t->text);
	memset(t, 0, sizeof(*t));
}

const char *bayes_feature_text(const struct bayes_tokens *t, size_t i)
{
	if (t->text == NULL || i >= t->n)
		return "";
	return t->text + t->f[i].text;
}

/* ---- combiner ---------------------------------------------------------- */

void bayes_params_default(struct bayes_params *p)
{
	p->combiner = BAYES_FISHER;
	/* bogofilter's strength and minimum deviation; chosen on the corpus
	 * (docs/score.md, "Combiner"): with OSB pairs many tokens agree, and
	 * only the strong ones should vote. */
	p->s = 0.02;
	p->x = 0.5;
	p->min_dev = 0.375;
	p->pair_esf = BAYES_PAIR_ESF;
	p->max_used = 0;
	p->max_distance = BAYES_WINDOW - 1;
}

static const char *const combiner_names[] = { "fisher", "geomean", "osb" };

const char *bayes_combiner_name(enum bayes_combiner c)
{
	return (size_t)c < ARRAY_LEN(combiner_names) ? combiner_names[c] : "?";
}

int bayes_combiner_parse(const char *s, enum bayes_combiner *c)
{
	for (size_t i = 0; i < ARRAY_LEN(combiner_names); i++) {
		if (strcmp(s, combiner_names[i]) == 0) {
			*c = (enum bayes_combiner)i;
			return 0;
		}
	}
	return -1;
}

/*
 * The chi-square survival function for even v is a Poisson sum:
 * e^-m * sum_{i < v/2} m^i / i!, m = x2 / 2 (SpamBayes' chi2Q).  Summed in
 * plain doubles from e^-m up, it underflows to 0 once m passes ~745 (many
 * strong tokens) and the spam tail's ordering is lost; so the terms are
 * summed relative to the largest one, whose logarithm comes from lgamma:
 * the logarithm of the tail is exact far below the smallest double.
 */
double bayes_chi2q_ln(double x2, int v)
{
	double m, lm, lmax, sum, t;
	int k, top, i, sign;

	if (x2 <= 0 || v < 2)
		return 0.0;
	m = x2 / 2.0;
	lm = log(m);
	k = v / 2 - 1;                    /* last index of the sum */
	top = m < (double)k ? (int)m : k; /* the largest term's index */
	lmax = -m + top * lm - lgamma_r(top + 1.0, &sign); /* _r: no global signgam */
	sum = 1.0;
	t = 1.0;
	for (i = top; i > 0; i--) {       /* t_{i-1} = t_i * i / m */
		t *= (double)i / m;
		sum += t;
		if (t < 1e-17 * sum)
			break;
	}
	t = 1.0;
	for (i = top; i < k; i++) {       /* t_{i+1} = t_i * m / (i + 1) */
		t *= m / (double)(i + 1);
		sum += t;
		if (t < 1e-17 * sum)
			break;
	}
	t = lmax + log(sum);
	return t < 0.0 ? t : 0.0;
}

double bayes_chi2q(double x2, int v)
{
	return exp(bayes_chi2q_ln(x2, v));
}

double bayes_token_f(int64_t spam, int64_t ham, int64_t nspam, int64_t nham, double s,
		     double x)
{
	double ps, ph, p, n;

	if (nspam <= 0 || nham <= 0)
		return x;
	if (spam > nspam)
		spam = nspam;
	if (ham > nham)
		ham = nham;
	n = (double)(spam + ham);
	if (n <= 0)
		return x;
	ps = (double)spam / (double)nspam;
	ph = (double)ham / (double)nham;
	p = ps / (ps + ph);
	return (s * x + n * p) / (s + n);
}

static double clampf(double f)
{
	if (f < 1e-9)
		return 1e-9;
	if (f > 1.0 - 1e-9)
		return 1.0 - 1e-9;
	return f;
}

/*
 * The combination of n f values; kind[i] > 0 marks an OSB pair, which counts
 * pair_esf of a token in Fisher's method (its "effective size", as
 * bogofilter's ESF): a word's 4 pairs share that word and its neighbours,
 * so they are far from the independent tokens chi-square assumes, and
 * counted whole they make a phrase shout.  Each pair's ln f is weighted and
 * the degrees of freedom are those of the weighted count.  Geometric means
 * are means already and take every token once.
 */
static double combine(const double *f, const uint8_t *kind, size_t n, enum bayes_combiner c,
		      double pair_esf, double *evidence)
{
	double lh = 0, ls = 0, qh, qs, wsum = 0;
	long df;

	*evidence = 0.0;
	if (n == 0)
		return 0.5;
	if (c == BAYES_GEOMEAN)
		pair_esf = 1.0;
	for (size_t i = 0; i < n; i++) {
		double v = clampf(f[i]);
		double w = kind != NULL && kind[i] > 0 ? pair_esf : 1.0;

		lh += w * log(v);
		ls += w * log1p(-v);
		wsum += w;
	}
	if (c == BAYES_GEOMEAN) {
		double pp = -expm1(ls / (double)n);  /* spamminess */
		double qq = -expm1(lh / (double)n);  /* hamminess */

		if (pp <= 0 || qq <= 0)
			return 0.5;
		*evidence = log(pp) - log(qq);
		return pp / (pp + qq);
	}
	/* chi-square takes an even number of degrees of freedom: 2 per
	 * (weighted) token, at least one token's worth */
	df = lround(wsum);
	if (df < 1)
		df = 1;
	if (df > BAYES_MAX_FEATURES)
		df = BAYES_MAX_FEATURES;
	/*
	 * Fisher: how unlikely the f values would be if they were uniform,
	 * each way; prob = (S - H + 1) / 2 with S = 1 - qs, H = 1 - qh.  The
	 * evidence (ln qh - ln qs) orders messages where prob saturates.
	 */
	qh = bayes_chi2q_ln(-2.0 * lh, (int)(2 * df));
	qs = bayes_chi2q_ln(-2.0 * ls, (int)(2 * df));
	*evidence = qh - qs;
	return (1.0 + exp(qh) - exp(qs)) / 2.0;
}

double bayes_combine(const double *f, const uint8_t *kind, size_t n, enum bayes_combiner c,
		     double *evidence)
{
	return combine(f, kind, n, c, BAYES_PAIR_ESF, evidence);
}

/* ---- model ------------------------------------------------------------- */

struct bayes_slot {
	uint64_t hash;     /* 0: empty */
	uint32_t spam, ham;
};

struct bayes_model {
	struct bayes_slot *slot;
	size_t cap;        /* power of two */
	size_t n;
	int64_t nspam, nham;
};

struct bayes_model *bayes_model_new(int64_t nspam, int64_t nham)
{
	struct bayes_model *m = xcalloc(1, sizeof(*m));

	m->cap = 1024;
	m->slot = xcalloc(m->cap, sizeof(*m->slot));
	m->nspam = nspam;
	m->nham = nham;
	return m;
}

void bayes_model_free(struct bayes_model *m)
{
	if (m == NULL)
		return;
	free(m->slot);
	free(m);
}

/* Hashes are keyed SipHash outputs: their low bits are already uniform. */
static struct bayes_slot *find(struct bayes_slot *slot, size_t cap, uint64_t h)
{
	size_t i = (size_t)h & (cap - 1);

	while (slot[i].hash != 0 && slot[i].hash != h)
		i = (i + 1) & (cap - 1);
	return &slot[i];
}

void bayes_model_set(struct bayes_model *m, uint64_t hash, uint32_t spam, uint32_t ham)
{
	struct bayes_slot *s;

	if (hash == 0)
		hash = 1;
	if ((m->n + 1) * 2 > m->cap) {
		size_t cap = m->cap * 2;
		struct bayes_slot *ns = xcalloc(cap, sizeof(*ns));

		for (size_t i = 0; i < m->cap; i++)
			if (m->slot[i].hash != 0)
				*find(ns, cap, m->slot[i].hash) = m->slot[i];
		free(m->slot);
		m->slot = ns;
		m->cap = cap;
	}
	s = find(m->slot, m->cap, hash);
	if (s->hash == 0)
		m->n++;
	s->hash = hash;
	s->spam = spam;
	s->ham = ham;
}

int bayes_model_get(const struct bayes_model *m, uint64_t hash, uint32_t *spam,
		    uint32_t *ham)
{
	const struct bayes_slot *s = find(m->slot, m->cap, hash != 0 ? hash : 1);

	if (s->hash == 0) {
		*spam = 0;
		*ham = 0;
		return 0;
	}
	*spam = s->spam;
	*ham = s->ham;
	return 1;
}

size_t bayes_model_size(const struct bayes_model *m)
{
	return m->n;
}

void bayes_model_counts(const struct bayes_model *m, int64_t *nspam, int64_t *nham)
{
	*nspam = m->nspam;
	*nham = m->nham;
}

struct cand {
	double dev;
	double f;
	size_t i;
	uint32_t spam, ham;
	uint8_t kind;
};

static int cmp_cand(const void *a, const void *b)
{
	const struct cand *x = a, *y = b;

	if (x->dev != y->dev)
		return x->dev > y->dev ? -1 : 1;
	return x->i < y->i ? -1 : x->i > y->i;
}

/*
 * Strength of the prior per feature kind for the "osb" combiner: a single
 * word needs the usual evidence, a pair of words further apart needs more
 * before it moves away from 0.5 (a distant pair is a weaker, noisier clue;
 * rspamd weighs OSB pairs by distance the same way).
 */
static const double osb_strength[BAYES_WINDOW] = { 1.0, 1.0, 2.0, 4.0, 8.0 };

void bayes_classify(const struct bayes_model *m, const struct bayes_tokens *t,
		    const struct bayes_params *p, struct bayes_result *r)
{
	struct cand *c;
	double *f;
	uint8_t *kind;
	size_t nc = 0, use;

	memset(r, 0, sizeof(*r));
	r->prob = 0.5;
	r->verdict = "unsure";
	if (m->nspam <= 0 || m->nham <= 0 || t->n == 0)
		return;
	c = xmalloc(t->n * sizeof(*c));
	for (size_t i = 0; i < t->n; i++) {
		uint32_t sp, hm;
		double s = p->s, fv;

		if (t->f[i].kind > p->max_distance)
			continue;
		if (!bayes_model_get(m, t->f[i].hash, &sp, &hm) || sp + hm == 0)
			continue;
		r->known++;
		if (p->combiner == BAYES_OSB && t->f[i].kind < BAYES_WINDOW)
			s *= osb_strength[t->f[i].kind];
		fv = bayes_token_f(sp, hm, m->nspam, m->nham, s, p->x);
		if (fabs(fv - 0.5) < p->min_dev)
			continue;
		c[nc].dev = fabs(fv - 0.5);
		c[nc].f = fv;
		c[nc].i = i;
		c[nc].spam = sp;
		c[nc].ham = hm;
		c[nc].kind = t->f[i].kind;
		nc++;
	}
	qsort(c, nc, sizeof(*c), cmp_cand);
	use = p->max_used > 0 && nc > p->max_used ? p->max_used : nc;
	f = xmalloc((use + 1) * sizeof(*f));
	kind = xmalloc(use + 1);
	for (size_t i = 0; i < use; i++) {
		f[i] = c[i].f;
		kind[i] = c[i].kind;
	}
	r->used = use;
	r->prob = combine(f, kind, use, p->combiner, p->pair_esf, &r->evidence);
	for (size_t i = 0; i < use && r->nclues < BAYES_MAX_CLUES; i++) {
		struct bayes_clue *cl = &r->clues[r->nclues++];

		cl->feature = c[i].i;
		cl->f = c[i].f;
		cl->spam = c[i].spam;
		cl->ham = c[i].ham;
	}
	if (r->prob >= BAYES_SPAM_CUTOFF)
		r->verdict = "spam";
	else if (r->prob <= BAYES_HAM_CUTOFF)
		r->verdict = "ham";
	free(f);
	free(kind);
	free(c);
}
