/*
 * rules_eval: one message against a compiled set.
 *
 * 1. Every field class is scanned once: each value of the field (each
 *    header of that name, each attachment, each URL host ...) goes through
 *    the class's Vectorscan databases and hash tables of anchored literals,
 *    raw and, when a case-insensitive literal needs it, folded once; then
 *    through the few PCRE2 regexes.
 *    Matches set bits in a bitset of atoms.  Numbers, networks and flags
 *    are answered directly; list membership (the caller's callback) only
 *    when a rule needs it, then cached.
 * 2. Recipient atoms are answered per recipient.  Recipients whose
 *    recipient atoms came out the same share one walk of the rules, so
 *    content is scanned once and the rules walked once per distinct
 *    outcome, whatever the number of recipients.
 * 3. The walk goes through the rules in order over the bitset: non-final
 *    actions (tag, bcc, score, continue) accumulate, the first final one
 *    decides.  The score and its parts are the caller's numbers, answered
 *    up front like sizes: rules see the score before any rule's points.
 *
 * Scratch: Vectorscan needs writable scratch per concurrent scan.  The set
 * keeps a small pool (mutex, taken and returned once per call) that grows
 * to the number of threads that evaluate at once; it is allocated on first
 * use, so a set that is never evaluated holds none.  PCRE2 limits bound
 * every regex match (a hit counts as no match and is reported).
 */
#include "rules_internal.h"

#include <glib.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../mime/mime.h"
#include "../util/util.h"

/* --- case folding --------------------------------------------------------- */

/* Case-fold and NFC-normalise one segment of UTF-8 (repaired if invalid), appended to out. */
static void fold_segment(GString *out, const char *s, size_t len)
{
	char *fixed = NULL, *cf, *nf;
	const char *src = s;
	size_t srclen = len;

	if (!g_utf8_validate_len(s, len, NULL)) {
		fixed = g_utf8_make_valid(s, (gssize)len);
		src = fixed;
		srclen = strlen(fixed);
	}
	cf = g_utf8_casefold(src, (gssize)srclen);
	nf = g_utf8_normalize(cf, -1, G_NORMALIZE_NFC);
	g_string_append(out, nf != NULL ? nf : cf);
	g_free(nf);
	g_free(cf);
	g_free(fixed);
}

#define ONES8 0x0101010101010101ULL
#define HIGH8 0x8080808080808080ULL

/* Length of the leading run of s without an octet >= 0x80, eight octets a step. */
static size_t ascii_run(const char *s, size_t len)
{
	size_t i = 0;

	for (; len - i >= 8; i += 8) {
		uint64_t x;

		memcpy(&x, s + i, 8);
		if (x & HIGH8)
			break;
	}
	while (i < len && (unsigned char)s[i] < 0x80)
		i++;
	return i;
}

/*
 * g_utf8_validate_len(s, len, NULL) (which refuses NUL too), with the
 * ASCII before the first octet >= 0x80 or NUL taken eight octets a step:
 * most values are ASCII, and GLib's check costs a branch per octet.
 */
static bool utf8_valid(const char *s, size_t len)
{
	size_t i = 0;

	for (; len - i >= 8; i += 8) {
		uint64_t x;

		memcpy(&x, s + i, 8);
		if ((x & HIGH8) != 0 || ((x - ONES8) & ~x & HIGH8) != 0)
			break;
	}
	return g_utf8_validate_len(s + i, len - i, NULL);
}

/*
 * ASCII lower case of n octets into o (octets >= 0x80 copied as they are),
 * eight octets a step: per octet, the low seven bits plus 0x80 - 'A' reach
 * 0x80 from 'A' on, plus 0x80 - 'Z' - 1 only past 'Z', without a carry
 * into the next octet; an octet with its top bit set is left alone.
 */
static void lower_ascii(char *o, const char *s, size_t n)
{
	size_t i = 0;

	for (; n - i >= 8; i += 8) {
		uint64_t x, low, upper;

		memcpy(&x, s + i, 8);
		low = x & ~HIGH8;
		upper = (low + ONES8 * (0x80 - 'A')) & ~(low + ONES8 * (0x80 - 'Z' - 1)) & ~x & HIGH8;
		x |= upper >> 2;
		memcpy(o + i, &x, 8);
	}
	for (; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		o[i] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
	}
}

/*
 * Unicode case folding plus NFC, as a fold of the whole text would give,
 * but paid only where the text is not ASCII: an ASCII character followed
 * by another ASCII character can neither change under NFC nor combine with
 * what comes later, so ASCII runs are lower-cased directly and each
 * non-ASCII run goes through GLib together with the one ASCII character
 * before it (a base letter its combining marks may attach to).
 */
char *rules_fold(const char *s, size_t len, bool bytes_only, size_t *outlen)
{
	GString *out;
	size_t i = 0, emitted = 0;

	if (bytes_only) {
		char *o = g_malloc(len + 1);

		lower_ascii(o, s, len);
		o[len] = '\0';
		*outlen = len;
		return o;
	}
	i = ascii_run(s, len);
	if (i == len) {
		char *o = g_malloc(len + 1);

		lower_ascii(o, s, len);
		o[len] = '\0';
		*outlen = len;
		return o;
	}
	out = g_string_sized_new(len + 16);
	i = 0;
	while (i < len) {
		size_t a, b;

		while (i < len && (unsigned char)s[i] < 0x80)
			i++;
		if (i == len)
			break;
		/* s[i] starts a non-ASCII run [a, b), taking the ASCII character before it. */
		a = i > emitted ? i - 1 : i;
		b = i;
		while (b < len && (unsigned char)s[b] >= 0x80)
			b++;
		if (a > emitted) {
			size_t at = out->len;

			g_string_set_size(out, at + (a - emitted));
			lower_ascii(out->str + at, s + emitted, a - emitted);
		}
		emitted = a;
		fold_segment(out, s + a, b - a);
		emitted = b;
		i = b;
	}
	if (len > emitted) {
		size_t at = out->len;

		g_string_set_size(out, at + (len - emitted));
		lower_ascii(out->str + at, s + emitted, len - emitted);
	}
	*outlen = out->len;
	return g_string_free(out, FALSE);
}

/* --- state of one evaluation ---------------------------------------------- */

struct ev {
	const struct rules_set *rs;
	const struct rules_input *in;
	uint64_t *bits;
	uint64_t *known;        /* lazy list atoms already asked */
	struct rules_scratch *scr;
	unsigned limit_hits;
	int ip_ok;              /* client_addr parsed: 1, unparsable: 0 */
	uint8_t ip[16];
};

#define BIT_SET(b, i) ((b)[(i) >> 6] |= (uint64_t)1 << ((i) & 63))
#define BIT_CLR(b, i) ((b)[(i) >> 6] &= ~((uint64_t)1 << ((i) & 63)))
#define BIT_GET(b, i) (((b)[(i) >> 6] >> ((i) & 63)) & 1)

struct hs_ctx {
	uint64_t *bits;
	const uint32_t *map;
};

static int on_match(unsigned id, unsigned long long from, unsigned long long to,
		    unsigned flags, void *arg)
{
	struct hs_ctx *h = arg;

	BIT_SET(h->bits, h->map[id]);
	return 0;
}

static void db_scan(struct ev *e, const struct rules_db *db, size_t n, const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < n; i++) {
		struct hs_ctx h = { e->bits, db[i].atom };

		/* len is bounded by the MIME limits (max_text) well below 4 GiB */
		hs_scan(db[i].h->db, s, (unsigned)len, 0, e->scr->hs, on_match, &h);
	}
}

/* Every entry of ls equal to s[0, len) whose hash is h sets its atom. */
static void lset_probe(struct ev *e, const struct rules_lset *ls, uint64_t h, const char *s,
		       size_t len)
{
	size_t j = (size_t)h & ls->mask;

	while (ls->slot[j] != 0) {
		const struct rules_lent *en = &ls->ent[ls->slot[j] - 1];

		if (en->hash == h && en->len == len && memcmp(ls->pool + en->off, s, len) == 0)
			BIT_SET(e->bits, en->atom);
		j = (j + 1) & ls->mask;
	}
}

#define HASLEN(ls, l) ((l) <= (ls)->maxlen && ((ls)->haslen[(l) / 8] >> ((l) % 8)) & 1)

/* The anchored literals of one form: is, starts_with, ends_with. */
static void anch_scan(struct ev *e, const struct rules_class *k, int form, const char *s,
		      size_t len)
{
	const struct rules_lset *is = &k->anch[ANCH_IS][form];
	const struct rules_lset *st = &k->anch[ANCH_START][form];
	const struct rules_lset *en = &k->anch[ANCH_END][form];
	uint64_t h;
	size_t i, n;

	if (is->n > 0 && HASLEN(is, len))
		lset_probe(e, is, rules_lset_hash(s, len, false), s, len);
	if (st->n > 0) {
		h = RULES_FNV_BASIS;
		n = len < st->maxlen ? len : st->maxlen;
		for (i = 0; i < n; i++) {
			h = RULES_FNV_STEP(h, s[i]);
			if (HASLEN(st, i + 1))
				lset_probe(e, st, h, s, i + 1);
		}
	}
	if (en->n > 0) {
		h = RULES_FNV_BASIS;
		n = len < en->maxlen ? len : en->maxlen;
		for (i = 0; i < n; i++) {
			h = RULES_FNV_STEP(h, s[len - 1 - i]);
			if (HASLEN(en, i + 1))
				lset_probe(e, en, h, s + len - 1 - i, i + 1);
		}
	}
}

/*
 * The directly searched "contains" literals of one form: one pass over the
 * value; where the two octets at a position have a key some literal
 * starts with, those literals are compared there.
 */
static void dlit_scan(struct ev *e, const struct rules_dlit *d, const char *s, size_t len)
{
	size_t i, j;

	if (d->n == 0)
		return;
	for (i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];
		unsigned key;
		size_t lo, hi;

		if (d->n1 > 0 && (d->one[ch / 8] >> (ch % 8)) & 1)
			for (j = 0; j < d->n1; j++)
				if ((unsigned char)d->pool[d->ent[j].off] == ch)
					BIT_SET(e->bits, d->ent[j].atom);
		if (i + 1 == len)
			break;
		key = RULES_DKEY(s[i], s[i + 1]);
		if (!((d->first[key / 8] >> (key % 8)) & 1))
			continue;
		/* first entry of this key among the longer literals */
		lo = d->n1;
		hi = d->n;
		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;

			if (d->ent[mid].key < key)
				lo = mid + 1;
			else
				hi = mid;
		}
		for (j = lo; j < d->n && d->ent[j].key == key; j++) {
			const struct rules_dent *en = &d->ent[j];

			if (en->len <= len - i && memcmp(d->pool + en->off, s + i, en->len) == 0)
				BIT_SET(e->bits, en->atom);
		}
	}
}

static bool anch_any(const struct rules_class *k, int form)
{
	int a;

	for (a = 0; a < ANCH_COUNT_; a++)
		if (k->anch[a][form].n > 0)
			return true;
	return false;
}

static void scan_value(struct ev *e, const struct rules_class *k, const char *s, size_t len)
{
	const char *raw = s;
	size_t rlen = len, i;
	char *fixed = NULL;

	if (len == 0)
		for (i = 0; i < k->nempty; i++)
			BIT_SET(e->bits, k->empty[i]);
	if (k->need_utf8 && !utf8_valid(s, len)) {
		/* UTF-8 mode databases are undefined on invalid input: repair a copy */
		fixed = g_utf8_make_valid(s, (gssize)len);
		raw = fixed;
		rlen = strlen(fixed);
	}
	for (i = 0; i < k->npcre; i++)
		if (k->pcre[i].cand != RULES_NO_CAND)
			BIT_CLR(e->bits, e->rs->natoms + k->pcre[i].cand);
	db_scan(e, k->db[FORM_RAW], k->ndb[FORM_RAW], raw, rlen);
	dlit_scan(e, &k->dlit[FORM_RAW], raw, rlen);
	anch_scan(e, k, FORM_RAW, raw, rlen);
	if (k->ndb[FORM_FOLD] > 0 || k->dlit[FORM_FOLD].n > 0 || anch_any(k, FORM_FOLD)) {
		size_t flen;
		char *f = rules_fold(s, len, k->bytes, &flen);

		db_scan(e, k->db[FORM_FOLD], k->ndb[FORM_FOLD], f, flen);
		dlit_scan(e, &k->dlit[FORM_FOLD], f, flen);
		anch_scan(e, k, FORM_FOLD, f, flen);
		g_free(f);
	}
	for (i = 0; i < k->npcre; i++) {
		int rc;

		if (BIT_GET(e->bits, k->pcre[i].atom) ||
		    (k->pcre[i].cand != RULES_NO_CAND &&
		     !BIT_GET(e->bits, e->rs->natoms + k->pcre[i].cand)))
			continue;
		rc = pcre2_match(k->pcre[i].code, (PCRE2_SPTR)s, len, 0, 0, e->scr->md,
				 e->rs->mctx);
		if (rc >= 0)
			BIT_SET(e->bits, k->pcre[i].atom);
		else if (rc == PCRE2_ERROR_MATCHLIMIT || rc == PCRE2_ERROR_DEPTHLIMIT ||
			 rc == PCRE2_ERROR_HEAPLIMIT || rc == PCRE2_ERROR_JIT_STACKLIMIT)
			e->limit_hits++;
	}
	g_free(fixed);
}

/*
 * The values of a non-header field, one call each.  Header values come from
 * the view's header array (a field class per header name).
 */
typedef void (*value_fn)(struct ev *e, const void *arg, const char *s, size_t len);

/* Does the header value s start with word w (case-insensitive, then a non-letter)? */
static bool word_is(const char *s, const char *w)
{
	size_t n = strlen(w);

	while (*s == ' ' || *s == '\t')
		s++;
	return g_ascii_strncasecmp(s, w, n) == 0 && !g_ascii_isalpha(s[n]);
}

/*
 * The field importance: "high", "normal" or "low", from the first of
 * Importance (RFC 2156: high, normal, low), X-Priority (1-2 high, 3 normal,
 * 4-5 low, as mail readers write it) and Priority (RFC 2156: urgent,
 * normal, non-urgent) that says something; "normal" when none does.
 */
static const char *importance_of(const struct mime_view *v)
{
	static const char *const hdrs[] = { "Importance", "X-Priority", "Priority" };
	size_t h, i;

	for (h = 0; v != NULL && h < ARRAY_LEN(hdrs); h++) {
		for (i = 0; i < v->nheaders; i++) {
			const char *val = v->headers[i].value;

			if (v->headers[i].name == NULL || val == NULL ||
			    g_ascii_strcasecmp(v->headers[i].name, hdrs[h]) != 0)
				continue;
			while (*val == ' ' || *val == '\t')
				val++;
			if (h == 1) {
				if (*val == '1' || *val == '2')
					return "high";
				if (*val == '4' || *val == '5')
					return "low";
				if (*val == '3')
					return "normal";
				continue;
			}
			if (word_is(val, "high") || word_is(val, "urgent"))
				return "high";
			if (word_is(val, "low") || word_is(val, "non-urgent"))
				return "low";
			if (word_is(val, "normal"))
				return "normal";
		}
	}
	return "normal";
}

static bool addr_char(unsigned char c)
{
	return c > ' ' && c != '<' && c != '>' && c != ',' && c != ';' && c != ':' &&
	       c != '"' && c != '(' && c != ')' && c != '[' && c != ']' && c != '\\';
}

/*
 * Every address in an address-list header value (To, Cc), one call each:
 * the run of address characters around each '@'.  Display names, groups
 * and comments fall away; a display name that is itself an address gives
 * that address too, which is what a reader sees.
 */
static void addresses_each(struct ev *e, const void *arg, const char *s, value_fn fn)
{
	size_t len = strlen(s), i;

	for (i = 0; i < len; i++) {
		size_t a = i, b = i + 1;

		if (s[i] != '@')
			continue;
		while (a > 0 && addr_char((unsigned char)s[a - 1]))
			a--;
		while (b < len && addr_char((unsigned char)s[b]))
			b++;
		if (a < i && b > i + 1)
			fn(e, arg, s + a, b - a);
		i = b - 1;
	}
}

static void field_each(struct ev *e, enum rules_field f, const char *hname, value_fn fn,
		       const void *arg)
{
	const struct rules_input *in = e->in;
	const struct mime_view *v = in->mime;
	size_t i;

	switch (f) {
	case RF_SENDER:
		if (in->sender != NULL)
			fn(e, arg, in->sender, strlen(in->sender));
		break;
	case RF_CLIENT_ADDRESS:
		if (in->client_addr != NULL)
			fn(e, arg, in->client_addr, strlen(in->client_addr));
		break;
	case RF_CLIENT_NAME:
		if (in->client_name != NULL)
			fn(e, arg, in->client_name, strlen(in->client_name));
		break;
	case RF_HELO:
		if (in->helo != NULL)
			fn(e, arg, in->helo, strlen(in->helo));
		break;
	case RF_AUTH_USER:
		if (in->auth_user != NULL)
			fn(e, arg, in->auth_user, strlen(in->auth_user));
		break;
	case RF_HEADER:
		for (i = 0; v != NULL && i < v->nheaders; i++)
			if (v->headers[i].name != NULL && v->headers[i].value != NULL &&
			    g_ascii_strcasecmp(v->headers[i].name, hname) == 0)
				fn(e, arg, v->headers[i].value, strlen(v->headers[i].value));
		break;
	case RF_BODY:
		if (v != NULL && v->text != NULL)
			fn(e, arg, v->text, v->text_len);
		break;
	case RF_RAW_BODY:
		if (v != NULL && v->raw_body != NULL)
			fn(e, arg, v->raw_body, v->raw_body_len);
		break;
	case RF_ATTACHMENT_NAME:
	case RF_ATTACHMENT_TYPE:
		for (i = 0; v != NULL && i < v->nattachments; i++) {
			const char *s = f == RF_ATTACHMENT_NAME ? v->attachments[i].name :
								   v->attachments[i].type;

			if (s != NULL)
				fn(e, arg, s, strlen(s));
		}
		break;
	case RF_URL_HOST:
		for (i = 0; v != NULL && i < v->nurl_hosts; i++)
			if (v->url_hosts[i] != NULL)
				fn(e, arg, v->url_hosts[i], strlen(v->url_hosts[i]));
		break;
	case RF_IMPORTANCE: {
		const char *imp = importance_of(v);

		fn(e, arg, imp, strlen(imp));
		break;
	}
	case RF_TO_CC:
		for (i = 0; v != NULL && i < v->nheaders; i++)
			if (v->headers[i].name != NULL && v->headers[i].value != NULL &&
			    (g_ascii_strcasecmp(v->headers[i].name, "To") == 0 ||
			     g_ascii_strcasecmp(v->headers[i].name, "Cc") == 0))
				addresses_each(e, arg, v->headers[i].value, fn);
		break;
	case RF_DNSBL:
		for (i = 0; i < in->ndnsbl; i++)
			if (in->dnsbl[i] != NULL)
				fn(e, arg, in->dnsbl[i], strlen(in->dnsbl[i]));
		break;
	default:
		/* recipient is handled per recipient; numbers and flags are direct */
		break;
	}
}

static void scan_cb(struct ev *e, const void *arg, const char *s, size_t len)
{
	scan_value(e, arg, s, len);
}

struct list_ask {
	const char *list;
	bool hit;
};

static void list_cb(struct ev *e, const void *arg, const char *s, size_t len)
{
	struct list_ask *q = (struct list_ask *)arg;

	if (!q->hit && e->in->in_list(e->in->in_list_arg, q->list, s) == 1)
		q->hit = true;
}

static bool net_match(const struct rules_net *n, const uint8_t ip[16])
{
	int full = n->prefix / 8, rest = n->prefix % 8;

	if (memcmp(n->addr, ip, (size_t)full) != 0)
		return false;
	if (rest == 0)
		return true;
	return ((n->addr[full] ^ ip[full]) & (0xff << (8 - rest))) == 0;
}

/*
 * score / score_part against the atom's number.  A part named twice counts
 * with its sum, a part not named as 0.  Sums of decimals are not exact
 * (0.1 + 0.2 is not 0.3), so values within RULES_SCORE_EPSILON are equal,
 * and "gt" and "lt" hold only beyond it: for any score exactly one of gt,
 * lt and is holds.
 */
static bool score_cmp(const struct rules_input *in, const struct rules_atom *a)
{
	double v = 0;
	size_t i;

	if (a->field == RF_SCORE) {
		v = in->score;
	} else {
		for (i = 0; i < in->nscore_parts; i++)
			if (in->score_part_names != NULL && in->score_part_values != NULL &&
			    in->score_part_names[i] != NULL &&
			    g_ascii_strcasecmp(in->score_part_names[i], a->str) == 0)
				v += in->score_part_values[i];
	}
	if (a->op == RO_GT)
		return v > a->dnum + RULES_SCORE_EPSILON;
	if (a->op == RO_LT)
		return v < a->dnum - RULES_SCORE_EPSILON;
	return v >= a->dnum - RULES_SCORE_EPSILON && v <= a->dnum + RULES_SCORE_EPSILON;
}

static bool direct_eval(struct ev *e, const struct rules_atom *a)
{
	const struct rules_input *in = e->in;
	size_t i;
	int64_t v;

	switch (a->kind) {
	case AK_NUM:
		v = a->field == RF_SIZE ? in->size : (int64_t)in->nrcpts;
		if (a->op == RO_GT)
			return v > a->num;
		if (a->op == RO_LT)
			return v < a->num;
		return v == a->num;
	case AK_NET:
		if (!e->ip_ok)
			return false;
		for (i = 0; i < a->nnets; i++)
			if (net_match(&a->nets[i], e->ip))
				return true;
		return false;
	case AK_FLAG:
		for (i = 0; i < in->nflags; i++)
			if (in->flags[i] != NULL && strcasecmp(in->flags[i], a->str) == 0)
				return true;
		return false;
	case AK_SCORE:
		return score_cmp(in, a);
	default:
		return false;
	}
}

static bool atom_true(struct ev *e, uint32_t id)
{
	const struct rules_atom *a = &e->rs->atoms[id];

	if (a->kind == AK_LIST && !a->rcpt && !BIT_GET(e->known, id)) {
		struct list_ask q = { a->str, false };

		BIT_SET(e->known, id);
		if (e->in->in_list != NULL)
			field_each(e, (enum rules_field)a->field,
				   a->field == RF_HEADER ? e->rs->classes[a->cls].hname : NULL,
				   list_cb, &q);
		if (q.hit)
			BIT_SET(e->bits, id);
	}
	return BIT_GET(e->bits, id);
}

static bool node_eval(struct ev *e, uint32_t n)
{
	const struct rules_node *nd = &e->rs->nodes[n];
	uint32_t i;

	switch (nd->kind) {
	case RN_ATOM:
		return atom_true(e, nd->a);
	case RN_NOT:
		return !node_eval(e, nd->a);
	case RN_ALL:
		for (i = 0; i < nd->n; i++)
			if (!node_eval(e, e->rs->kids[nd->a + i]))
				return false;
		return true;
	case RN_ANY:
		for (i = 0; i < nd->n; i++)
			if (node_eval(e, e->rs->kids[nd->a + i]))
				return true;
		return false;
	}
	abort();
}

static void push(const char ***arr, size_t *n, const char *s)
{
	*arr = xrealloc(*arr, (*n + 1) * sizeof(**arr));
	(*arr)[(*n)++] = s;
}

/*
 * One action of a mailbox rule: 1 when it ends the walk.  move records its
 * folder and ends it ("final for the inbox"), like keep, forward,
 * quarantine, discard, refuse and stop; copy, forward_copy, importance and
 * the tags accumulate.
 */
static int mailbox_action(struct rules_verdict *v, const struct rules_crule *r, size_t i,
			  const struct rules_action_def *a)
{
	switch (a->type) {
	case RULES_ACT_TAG:
		if (a->subject_prefix != NULL)
			push(&v->subject_prefixes, &v->nsubject_prefixes, a->subject_prefix);
		if (a->header != NULL)
			push(&v->headers, &v->nheaders, a->header);
		return 0;
	case RULES_ACT_COPY:
		if (a->folder != NULL)
			push(&v->copy_folders, &v->ncopy_folders, a->folder);
		return 0;
	case RULES_ACT_FORWARD_COPY:
		if (a->address != NULL)
			push(&v->forward_copies, &v->nforward_copies, a->address);
		return 0;
	case RULES_ACT_IMPORTANCE:
		v->importance = a->value;
		return 0;
	case RULES_ACT_NONE:
	case RULES_ACT_CONTINUE:
	case RULES_ACT_SCORE:
		/* counted for the whole rule by walk() */
		return 0;
	default:
		v->action = a->type;
		v->rule = (long)i;
		v->rule_name = r->name;
		v->code = a->code;
		v->enhanced = a->code ? a->enhanced : NULL;
		v->text = a->text;
		v->address = a->address;
		v->folder = a->type == RULES_ACT_MOVE ? a->folder : NULL;
		v->kind = a->type == RULES_ACT_QUARANTINE ? "spam" : NULL;
		return 1;
	}
}

/* Walk the rules in order for the current bitset. */
/*
 * The rules a walk must look at, in cand (hwords words): those walked
 * always, and those of every atom that holds.  The others cannot match.
 */
bool rules_walk_all;

static void candidates(const struct ev *e, uint64_t *cand, size_t hwords)
{
	const struct rules_set *rs = e->rs;
	size_t w, nw = (rs->natoms + 63) / 64;

	if (rules_walk_all) {
		memset(cand, 0xff, hwords * sizeof(uint64_t));
		return;
	}
	memcpy(cand, rs->always, hwords * sizeof(uint64_t));
	for (w = 0; w < nw; w++) {
		uint64_t x = e->bits[w];

		if (w == nw - 1 && rs->natoms % 64 != 0)
			x &= ((uint64_t)1 << (rs->natoms % 64)) - 1; /* then the candidates */
		while (x != 0) {
			uint32_t a = (uint32_t)(w * 64 + (size_t)__builtin_ctzll(x));
			uint32_t j;

			for (j = rs->trig_off[a]; j < rs->trig_off[a + 1]; j++)
				BIT_SET(cand, rs->trig_rules[j]);
			x &= x - 1;
		}
	}
}

/* The first set bit at or after i, or SIZE_MAX. */
static size_t next_bit(const uint64_t *b, size_t words, size_t i)
{
	size_t w = i / 64;
	uint64_t x;

	if (w >= words)
		return SIZE_MAX;
	x = b[w] & (~(uint64_t)0 << (i % 64));
	while (x == 0) {
		if (++w == words)
			return SIZE_MAX;
		x = b[w];
	}
	return w * 64 + (size_t)__builtin_ctzll(x);
}

static void walk(struct ev *e, struct rules_verdict *v, uint64_t *hits, uint64_t *cand)
{
	const struct rules_set *rs = e->rs;
	size_t hwords = (rs->nrules + 63) / 64 + 1, i, k;

	memset(v, 0, sizeof(*v));
	v->rule = -1;
	candidates(e, cand, hwords);
	for (i = next_bit(cand, hwords, 0); i < rs->nrules; i = next_bit(cand, hwords, i + 1)) {
		const struct rules_crule *r = &rs->rules[i];
		const struct rules_action_def *a = &r->action;

		if (r->when < 0 || !node_eval(e, (uint32_t)r->when))
			continue;
		if (r->except >= 0 && node_eval(e, (uint32_t)r->except))
			continue;
		BIT_SET(hits, i);
		if (rs->kind == RULES_KIND_MAILBOX) {
			/* a rule that matched adds all its points, also those
			 * listed after the action that decides */
			for (k = 0; k < r->nactions; k++)
				if (r->actions[k].type == RULES_ACT_SCORE)
					v->points += r->actions[k].points;
			for (k = 0; k < r->nactions; k++)
				if (mailbox_action(v, r, i, &r->actions[k]))
					return;
			continue;
		}
		switch (a->type) {
		case RULES_ACT_TAG:
			if (a->subject_prefix != NULL)
				push(&v->subject_prefixes, &v->nsubject_prefixes, a->subject_prefix);
			if (a->header != NULL)
				push(&v->headers, &v->nheaders, a->header);
			break;
		case RULES_ACT_BCC:
			push(&v->bcc, &v->nbcc, a->address);
			break;
		case RULES_ACT_SCORE:
			v->points += a->points;
			break;
		case RULES_ACT_CONTINUE:
		case RULES_ACT_NONE:
			break;
		default:
			v->action = a->type;
			v->rule = (long)i;
			v->rule_name = r->name;
			v->code = a->code;
			v->enhanced = a->code ? a->enhanced : NULL;
			v->text = a->text;
			v->address = a->address;
			v->kind = a->type == RULES_ACT_QUARANTINE ? a->kind : NULL;
			return;
		}
	}
}

static struct rules_scratch *scratch_get(struct rules_set *rs)
{
	struct rules_scratch *s;
	size_t i;
	int f;

	pthread_mutex_lock(&rs->lock);
	s = rs->pool;
	if (s != NULL)
		rs->pool = s->next;
	pthread_mutex_unlock(&rs->lock);
	if (s != NULL)
		return s;
	s = xcalloc(1, sizeof(*s));
	for (i = 0; i < rs->nclasses; i++) {
		const struct rules_class *k = &rs->classes[i];

		for (f = 0; f < 2; f++) {
			size_t j;

			for (j = 0; j < k->ndb[f]; j++) {
				if (hs_alloc_scratch(k->db[f][j].h->db, &s->hs) != HS_SUCCESS) {
					hs_free_scratch(s->hs);
					free(s);
					return NULL;
				}
			}
		}
	}
	s->md = pcre2_match_data_create(1, NULL);
	if (s->md == NULL) {
		hs_free_scratch(s->hs);
		free(s);
		return NULL;
	}
	return s;
}

static void scratch_put(struct rules_set *rs, struct rules_scratch *s)
{
	pthread_mutex_lock(&rs->lock);
	s->next = rs->pool;
	rs->pool = s;
	pthread_mutex_unlock(&rs->lock);
}

static int hdr_find(const struct rules_set *rs, const char *lname)
{
	size_t lo = 0, hi = rs->nhdr;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(lname, rs->classes[rs->hdr_cls[mid]].hname);

		if (c == 0)
			return (int)rs->hdr_cls[mid];
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return -1;
}

static void scan_message(struct ev *e)
{
	const struct rules_set *rs = e->rs;
	const struct mime_view *v = e->in->mime;
	size_t i;

	for (i = 0; i < rs->nclasses; i++) {
		const struct rules_class *k = &rs->classes[i];

		if (k->field == RF_RECIPIENT || k->field == RF_HEADER)
			continue;
		field_each(e, (enum rules_field)k->field, NULL, scan_cb, k);
	}
	/* one pass over the headers, each value to its name's class */
	for (i = 0; rs->nhdr > 0 && v != NULL && i < v->nheaders; i++) {
		const char *name = v->headers[i].name, *val = v->headers[i].value;
		char lname[80];
		size_t j, nl;
		int c;

		if (name == NULL || val == NULL)
			continue;
		nl = strlen(name);
		if (nl >= sizeof(lname))
			continue; /* longer than any header name a rule can hold */
		for (j = 0; j <= nl; j++)
			lname[j] = g_ascii_tolower(name[j]);
		c = hdr_find(rs, lname);
		if (c >= 0)
			scan_value(e, &rs->classes[c], val, strlen(val));
	}
}

/* Recipient atoms for one recipient: scan plus eager list membership. */
static void rcpt_atoms(struct ev *e, const char *rcpt)
{
	const struct rules_set *rs = e->rs;
	const struct rules_class *k;
	size_t i;

	for (i = 0; i < rs->nrcpt_atoms; i++)
		BIT_CLR(e->bits, rs->rcpt_atoms[i]);
	if (rs->field_cls[RF_RECIPIENT] < 0)
		return;
	k = &rs->classes[rs->field_cls[RF_RECIPIENT]];
	scan_value(e, k, rcpt, strlen(rcpt));
	for (i = 0; i < k->nlists; i++) {
		const struct rules_atom *a = &rs->atoms[k->lists[i]];

		if (e->in->in_list != NULL &&
		    e->in->in_list(e->in->in_list_arg, a->str, rcpt) == 1)
			BIT_SET(e->bits, k->lists[i]);
	}
}

static void verdict_clear(struct rules_verdict *v)
{
	free(v->subject_prefixes);
	free(v->headers);
	free(v->bcc);
	free(v->copy_folders);
	free(v->forward_copies);
}

int rules_eval(const struct rules_set *rs, const struct rules_input *in, struct rules_result *out)
{
	struct ev e;
	size_t words, hwords, pwords, i, j, nout;
	uint64_t *hits, *pats, *cand;
	size_t *which;

	memset(out, 0, sizeof(*out));
	if (rs == NULL || in == NULL)
		return -1;
	words = RULES_EVAL_WORDS(rs);
	hwords = (rs->nrules + 63) / 64 + 1;
	pwords = (rs->nrcpt_atoms + 63) / 64 + 1;
	nout = in->nrcpts ? in->nrcpts : 1;
	memset(&e, 0, sizeof(e));
	e.rs = rs;
	e.in = in;
	e.scr = scratch_get((struct rules_set *)rs);
	if (e.scr == NULL)
		return -1;
	e.bits = xcalloc(words * 2, sizeof(uint64_t));
	e.known = e.bits + words;
	e.ip_ok = in->client_addr != NULL && rules_ip_parse(in->client_addr, e.ip) == 0;
	hits = xcalloc(hwords * 2, sizeof(uint64_t));
	cand = hits + hwords;
	pats = xcalloc(nout * pwords, sizeof(uint64_t));
	which = xcalloc(nout, sizeof(size_t));

	for (i = 0; i < rs->ndirect; i++)
		if (direct_eval(&e, &rs->atoms[rs->direct[i]]))
			BIT_SET(e.bits, rs->direct[i]);
	scan_message(&e);

	out->verdicts_ = xcalloc(nout, sizeof(*out->verdicts_));
	if (in->nrcpts == 0) {
		walk(&e, &out->verdicts_[0], hits, cand);
		out->nverdicts_ = 1;
	}
	for (i = 0; i < in->nrcpts; i++) {
		uint64_t *pat = pats + out->nverdicts_ * pwords;

		rcpt_atoms(&e, in->rcpts[i] ? in->rcpts[i] : "");
		memset(pat, 0, pwords * sizeof(uint64_t));
		for (j = 0; j < rs->nrcpt_atoms; j++)
			if (BIT_GET(e.bits, rs->rcpt_atoms[j]))
				BIT_SET(pat, j);
		for (j = 0; j < out->nverdicts_; j++)
			if (memcmp(pats + j * pwords, pat, pwords * sizeof(uint64_t)) == 0)
				break;
		if (j == out->nverdicts_) {
			walk(&e, &out->verdicts_[j], hits, cand);
			out->nverdicts_++;
		}
		which[i] = j;
	}
	if (in->nrcpts > 0) {
		out->rcpt = xcalloc(in->nrcpts, sizeof(*out->rcpt));
		for (i = 0; i < in->nrcpts; i++)
			out->rcpt[i] = &out->verdicts_[which[i]];
		out->nrcpts = in->nrcpts;
	}
	out->message = &out->verdicts_[0];
	for (i = 0; i < rs->nrules; i++)
		if (BIT_GET(hits, i))
			out->nhits++;
	out->hits = xcalloc(out->nhits ? out->nhits : 1, sizeof(size_t));
	for (i = 0, j = 0; i < rs->nrules; i++)
		if (BIT_GET(hits, i))
			out->hits[j++] = i;
	out->regex_limit_hits = e.limit_hits;

	free(which);
	free(pats);
	free(hits);
	free(e.bits);
	scratch_put((struct rules_set *)rs, e.scr);
	return 0;
}

/*
 * Can node n hold while none of its atoms does?  Without NOT a tree only
 * gains from atoms that hold, so when it cannot, the rule needs one of its
 * atoms to hold.  A NOT, or a list atom asked only when the walk reaches it
 * (its bit is not known before), makes the rule one walked always.
 */
static bool trigger_free(const struct rules_set *rs, uint32_t n)
{
	const struct rules_node *nd = &rs->nodes[n];
	const struct rules_atom *a;
	uint32_t i;
	bool any = false;

	switch (nd->kind) {
	case RN_ATOM:
		a = &rs->atoms[nd->a];
		return a->kind == AK_LIST && !a->rcpt;
	case RN_NOT:
		return true;
	case RN_ALL:
		/* an empty ALL would hold (the parser refuses empty groups) */
		for (i = 0, any = nd->n == 0; i < nd->n; i++)
			any = any || trigger_free(rs, rs->kids[nd->a + i]);
		return any;
	default:
		for (i = 0; i < nd->n; i++)
			any = any || trigger_free(rs, rs->kids[nd->a + i]);
		return any;
	}
}

/* Each atom under node n once in mark (natoms bits); calls fn(arg, atom). */
static void trigger_atoms(const struct rules_set *rs, uint32_t n, uint64_t *mark,
			  void (*fn)(void *arg, uint32_t atom), void *arg)
{
	const struct rules_node *nd = &rs->nodes[n];
	uint32_t i;

	if (nd->kind == RN_ATOM) {
		if (!BIT_GET(mark, nd->a)) {
			BIT_SET(mark, nd->a);
			fn(arg, nd->a);
		}
		return;
	}
	for (i = 0; i < nd->n; i++)
		trigger_atoms(rs, rs->kids[nd->a + i], mark, fn, arg);
}

struct trig_fill {
	struct rules_set *rs;
	uint32_t *fill;     /* next free slot per atom; NULL: count into trig_off */
	uint32_t rule;
};

static void trig_add(void *arg, uint32_t atom)
{
	struct trig_fill *t = arg;

	if (t->fill == NULL)
		t->rs->trig_off[atom + 1]++;
	else
		t->rs->trig_rules[t->fill[atom]++] = t->rule;
}

void rules_trigger_prepare(struct rules_set *rs)
{
	size_t hwords = (rs->nrules + 63) / 64 + 1, words = (rs->natoms + 63) / 64 + 1, i;
	uint64_t *mark = xcalloc(words, sizeof(uint64_t));
	struct trig_fill t = { rs, NULL, 0 };
	int pass;

	rs->always = xcalloc(hwords, sizeof(uint64_t));
	rs->trig_off = xcalloc(rs->natoms + 1, sizeof(uint32_t));
	for (i = 0; i < rs->nrules; i++)
		if (rs->rules[i].when >= 0 && trigger_free(rs, (uint32_t)rs->rules[i].when))
			BIT_SET(rs->always, i);
	/* two passes: count the rules of each atom, then fill them in */
	for (pass = 0; pass < 2; pass++) {
		if (pass == 1) {
			for (i = 0; i < rs->natoms; i++)
				rs->trig_off[i + 1] += rs->trig_off[i];
			rs->trig_rules = xcalloc(rs->trig_off[rs->natoms] + 1, sizeof(uint32_t));
			t.fill = xcalloc(rs->natoms + 1, sizeof(uint32_t));
			memcpy(t.fill, rs->trig_off, rs->natoms * sizeof(uint32_t));
		}
		for (i = 0; i < rs->nrules; i++) {
			if (rs->rules[i].when < 0 || BIT_GET(rs->always, i))
				continue;
			memset(mark, 0, words * sizeof(uint64_t));
			t.rule = (uint32_t)i;
			trigger_atoms(rs, (uint32_t)rs->rules[i].when, mark, trig_add, &t);
		}
	}
	rs->mem += hwords * sizeof(uint64_t) +
		   (rs->natoms + 1 + rs->trig_off[rs->natoms]) * sizeof(uint32_t);
	free(t.fill);
	free(mark);
}

/* Mark in mask every recipient atom under node n. */
static void mark_rcpt_atoms(const struct rules_set *rs, uint32_t n, uint64_t *mask)
{
	const struct rules_node *nd = &rs->nodes[n];
	uint32_t i;

	switch (nd->kind) {
	case RN_ATOM:
		if (rs->atoms[nd->a].rcpt)
			BIT_SET(mask, nd->a);
		return;
	case RN_NOT:
		mark_rcpt_atoms(rs, nd->a, mask);
		return;
	default:
		for (i = 0; i < nd->n; i++)
			mark_rcpt_atoms(rs, rs->kids[nd->a + i], mask);
		return;
	}
}

void rules_rcpt_class_prepare(struct rules_set *rs)
{
	uint64_t *mask;
	size_t words, last = SIZE_MAX, i, cap = 0;

	/* Only rules up to the last refuse/defer can change the SMTP answer. */
	for (i = 0; i < rs->nrules; i++)
		if (rs->rules[i].when >= 0 && (rs->rules[i].action.type == RULES_ACT_REFUSE ||
					       rs->rules[i].action.type == RULES_ACT_DEFER))
			last = i;
	rs->class_on = last != SIZE_MAX && rs->nrcpt_atoms > 0;
	if (!rs->class_on)
		return;
	words = (rs->natoms + 63) / 64 + 1;
	mask = xcalloc(words, sizeof(uint64_t));
	for (i = 0; i <= last; i++) {
		if (rs->rules[i].when >= 0)
			mark_rcpt_atoms(rs, (uint32_t)rs->rules[i].when, mask);
		if (rs->rules[i].except >= 0)
			mark_rcpt_atoms(rs, (uint32_t)rs->rules[i].except, mask);
	}
	for (i = 0; i < rs->nrcpt_atoms; i++) {
		if (!BIT_GET(mask, rs->rcpt_atoms[i]))
			continue;
		if (rs->nclass_atoms == cap) {
			cap = cap ? cap * 2 : 16;
			rs->class_atoms = xrealloc(rs->class_atoms, cap * sizeof(uint32_t));
		}
		rs->class_atoms[rs->nclass_atoms++] = rs->rcpt_atoms[i];
	}
	free(mask);
}

uint64_t rules_rcpt_class(const struct rules_set *rs, const char *rcpt,
			  int (*in_list)(void *arg, const char *list, const char *value),
			  void *in_list_arg)
{
	struct rules_input in;
	struct ev e;
	uint64_t h = 1469598103934665603ULL; /* FNV-1a */
	size_t words, i;

	if (rs == NULL || !rs->class_on)
		return 0;
	words = RULES_EVAL_WORDS(rs);
	memset(&in, 0, sizeof(in));
	in.in_list = in_list;
	in.in_list_arg = in_list_arg;
	memset(&e, 0, sizeof(e));
	e.rs = rs;
	e.in = &in;
	e.scr = scratch_get((struct rules_set *)rs);
	if (e.scr == NULL)
		return 0;
	e.bits = xcalloc(words * 2, sizeof(uint64_t));
	e.known = e.bits + words;
	rcpt_atoms(&e, rcpt != NULL ? rcpt : "");
	for (i = 0; i < rs->nclass_atoms; i++) {
		uint32_t a = rs->class_atoms[i];

		h ^= (uint64_t)a * 2 + BIT_GET(e.bits, a);
		h *= 1099511628211ULL;
	}
	scratch_put((struct rules_set *)rs, e.scr);
	free(e.bits);
	return h;
}

void rules_result_free(struct rules_result *r)
{
	size_t i;

	if (r == NULL)
		return;
	for (i = 0; i < r->nverdicts_; i++)
		verdict_clear(&r->verdicts_[i]);
	free(r->verdicts_);
	free(r->rcpt);
	free(r->hits);
	memset(r, 0, sizeof(*r));
}
