/*
 * policy_match: the pure lookup structures of the policy snapshot.
 *
 * - A binary trie over 128-bit addresses (IPv4 mapped into ::ffff:0:0/96)
 *   for longest-prefix matching of addresses and CIDR ranges.
 * - Hash sets of lower-cased strings for exact host names, domains and
 *   mail addresses; "*.example.com" entries are kept as "example.com" in a
 *   second set and matched by walking the name's parent domains.
 * - Globs ('*', '?') only for the rare entries that need them, matched in
 *   a linear pass after the sets.
 * - Value validation for each list type, DNSBL return-code ranges, and
 *   reply-text templates.
 *
 * No I/O, no globals.  Lookups allocate nothing, so a snapshot built once
 * can be read by the loop without locks.  A list owns its sets, trie and
 * glob copies; refs belong to the snapshot.
 */
#include "policy_internal.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../util/util.h"

/* --- addresses ------------------------------------------------------------ */

int policy_ip_parse(const char *s, size_t len, uint8_t out[16])
{
	char buf[INET6_ADDRSTRLEN + 1];
	struct in_addr a4;

	if (len == 0 || len >= sizeof(buf))
		return -1;
	memcpy(buf, s, len);
	buf[len] = '\0';
	if (memchr(buf, ':', len) != NULL)
		return inet_pton(AF_INET6, buf, out) == 1 ? 0 : -1;
	if (inet_pton(AF_INET, buf, &a4) != 1)
		return -1;
	memset(out, 0, 10);
	out[10] = 0xff;
	out[11] = 0xff;
	memcpy(out + 12, &a4, 4);
	return 0;
}

int policy_cidr_parse(const char *s, size_t len, uint8_t addr[16], int *prefix)
{
	const char *slash = memchr(s, '/', len);
	size_t alen = slash ? (size_t)(slash - s) : len;
	int v4;
	long p = -1;
	int i;

	if (policy_ip_parse(s, alen, addr) < 0)
		return -1;
	v4 = memchr(s, ':', alen) == NULL;
	if (slash != NULL) {
		const char *q = slash + 1;
		const char *end = s + len;

		if (q == end || end - q > 3)
			return -1;
		p = 0;
		for (; q < end; q++) {
			if (*q < '0' || *q > '9')
				return -1;
			p = p * 10 + (*q - '0');
		}
		if (p > (v4 ? 32 : 128))
			return -1;
		if (v4)
			p += 96;
	} else {
		p = 128;
	}
	/* Host bits must be zero: "192.0.2.1/24" is a mistake worth reporting. */
	for (i = (int)p; i < 128; i++)
		if (addr[i / 8] & (0x80 >> (i % 8)))
			return -1;
	*prefix = (int)p;
	return 0;
}

int policy_sockaddr_ip(const struct sockaddr *sa, uint8_t out[16])
{
	if (sa->sa_family == AF_INET) {
		memset(out, 0, 10);
		out[10] = 0xff;
		out[11] = 0xff;
		memcpy(out + 12, &((const struct sockaddr_in *)sa)->sin_addr, 4);
		return 0;
	}
	if (sa->sa_family == AF_INET6) {
		memcpy(out, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
		return 0;
	}
	return -1;
}

static int ip_is_v4(const uint8_t ip[16])
{
	static const uint8_t pre[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

	return memcmp(ip, pre, 12) == 0;
}

void policy_ip_format(const uint8_t ip[16], char *out, size_t outsz)
{
	if (ip_is_v4(ip))
		inet_ntop(AF_INET, ip + 12, out, (socklen_t)outsz);
	else
		inet_ntop(AF_INET6, ip, out, (socklen_t)outsz);
}

/* Nodes live in one array and refer to each other by index: one free. */
struct trie_node {
	uint32_t child[2];      /* 0: none (node 0 is the root) */
	const struct policy_ref *ref;
};

struct policy_trie {
	struct trie_node *n;
	size_t len, cap;
};

struct policy_trie *policy_trie_new(void)
{
	struct policy_trie *t = xcalloc(1, sizeof(*t));

	t->cap = 64;
	t->n = xcalloc(t->cap, sizeof(*t->n));
	t->len = 1;
	return t;
}

void policy_trie_free(struct policy_trie *t)
{
	if (t == NULL)
		return;
	free(t->n);
	free(t);
}

size_t policy_trie_nodes(const struct policy_trie *t)
{
	return t ? t->len : 0;
}

void policy_trie_insert(struct policy_trie *t, const uint8_t a[16], int prefix,
			const struct policy_ref *ref)
{
	uint32_t cur = 0;
	int i;

	for (i = 0; i < prefix; i++) {
		int bit = (a[i / 8] >> (7 - i % 8)) & 1;

		if (t->n[cur].child[bit] == 0) {
			if (t->len == t->cap) {
				t->cap *= 2;
				t->n = xrealloc(t->n, t->cap * sizeof(*t->n));
			}
			memset(&t->n[t->len], 0, sizeof(t->n[0]));
			t->n[cur].child[bit] = (uint32_t)t->len++;
		}
		cur = t->n[cur].child[bit];
	}
	if (t->n[cur].ref == NULL)
		t->n[cur].ref = ref;
}

const struct policy_ref *policy_trie_lookup(const struct policy_trie *t, const uint8_t a[16])
{
	const struct policy_ref *best;
	uint32_t cur = 0;
	int i;

	if (t == NULL)
		return NULL;
	best = t->n[0].ref;
	for (i = 0; i < 128; i++) {
		int bit = (a[i / 8] >> (7 - i % 8)) & 1;

		cur = t->n[cur].child[bit];
		if (cur == 0)
			break;
		if (t->n[cur].ref != NULL)
			best = t->n[cur].ref;
	}
	return best;
}

/* --- string sets ---------------------------------------------------------- */

static uint64_t hash_lower(const char *s, size_t len)
{
	uint64_t h = 1469598103934665603ULL; /* FNV-1a */
	size_t i;

	for (i = 0; i < len; i++) {
		h ^= (unsigned char)tolower((unsigned char)s[i]);
		h *= 1099511628211ULL;
	}
	return h;
}

static int eq_lower(const char *key, const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (key[i] == '\0' || key[i] != (char)tolower((unsigned char)s[i]))
			return 0;
	return key[len] == '\0';
}

static void strset_grow(struct policy_strset *h)
{
	struct policy_strset n = { NULL, h->cap ? h->cap * 2 : 16, 0 };
	size_t i;

	n.slots = xcalloc(n.cap, sizeof(*n.slots));
	for (i = 0; i < h->cap; i++) {
		if (h->slots[i].key != NULL) {
			size_t b = hash_lower(h->slots[i].key, strlen(h->slots[i].key)) & (n.cap - 1);

			while (n.slots[b].key != NULL)
				b = (b + 1) & (n.cap - 1);
			n.slots[b] = h->slots[i];
			n.count++;
		}
	}
	free(h->slots);
	*h = n;
}

void policy_strset_add(struct policy_strset *h, const char *key, size_t len,
		       const struct policy_ref *ref)
{
	size_t b;
	size_t i;
	char *k;

	if ((h->count + 1) * 2 > h->cap)
		strset_grow(h);
	b = hash_lower(key, len) & (h->cap - 1);
	while (h->slots[b].key != NULL) {
		if (eq_lower(h->slots[b].key, key, len))
			return; /* first entry wins */
		b = (b + 1) & (h->cap - 1);
	}
	k = xmalloc(len + 1);
	for (i = 0; i < len; i++)
		k[i] = (char)tolower((unsigned char)key[i]);
	k[len] = '\0';
	h->slots[b].key = k;
	h->slots[b].ref = ref;
	h->count++;
}

const struct policy_ref *policy_strset_get(const struct policy_strset *h, const char *key,
					   size_t len)
{
	size_t b;

	if (h->count == 0)
		return NULL;
	b = hash_lower(key, len) & (h->cap - 1);
	while (h->slots[b].key != NULL) {
		if (eq_lower(h->slots[b].key, key, len))
			return h->slots[b].ref;
		b = (b + 1) & (h->cap - 1);
	}
	return NULL;
}

void policy_strset_free(struct policy_strset *h)
{
	size_t i;

	for (i = 0; i < h->cap; i++)
		free(h->slots[i].key);
	free(h->slots);
	memset(h, 0, sizeof(*h));
}

/* --- globs and names ------------------------------------------------------ */

int policy_glob(const char *pat, size_t plen, const char *s, size_t slen)
{
	size_t p = 0, i = 0;
	size_t star_p = (size_t)-1, star_i = 0;

	/* Iterative with one backtrack point: linear in practice, no recursion. */
	while (i < slen) {
		if (p < plen && (pat[p] == '?' ||
				 tolower((unsigned char)pat[p]) == tolower((unsigned char)s[i]))) {
			p++;
			i++;
		} else if (p < plen && pat[p] == '*') {
			star_p = p++;
			star_i = i;
		} else if (star_p != (size_t)-1) {
			p = star_p + 1;
			i = ++star_i;
		} else {
			return 0;
		}
	}
	while (p < plen && pat[p] == '*')
		p++;
	return p == plen;
}

int policy_domain_ok(const char *s, size_t len)
{
	size_t label = 0;
	size_t i;

	if (len == 0 || len > 253 || s[0] == '.' || s[len - 1] == '.')
		return 0;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '.') {
			if (label == 0 || s[i - 1] == '-')
				return 0;
			label = 0;
			continue;
		}
		if (!isalnum(c) && c != '-' && c != '_')
			return 0;
		if (label == 0 && c == '-')
			return 0;
		if (++label > 63)
			return 0;
	}
	return s[len - 1] != '-';
}

/* --- list values ---------------------------------------------------------- */

static void lower_copy(const char *s, size_t len, char *out, size_t outsz)
{
	size_t i;

	for (i = 0; i < len && i + 1 < outsz; i++)
		out[i] = (char)tolower((unsigned char)s[i]);
	out[i] = '\0';
}

static int has_glob(const char *s, size_t len)
{
	return memchr(s, '*', len) != NULL || memchr(s, '?', len) != NULL;
}

static int glob_chars_ok(const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c <= ' ' || c >= 127 || c == '<' || c == '>' || c == '"' || c == '\\')
			return 0;
	}
	return 1;
}

/* "*.example.com" with a valid domain after the star. */
static int is_wild_domain(const char *s, size_t len)
{
	return len > 2 && s[0] == '*' && s[1] == '.' && policy_domain_ok(s + 2, len - 2);
}

int policy_value_check(enum policy_list_type type, const char *value, size_t len,
		       char *norm, size_t normsz, char *err, size_t errsz)
{
	uint8_t ip[16];
	int prefix;
	const char *at;

	if (len == 0 || len + 1 > normsz || len > 320) {
		snprintf(err, errsz, "empty or too long value");
		return -1;
	}
	if (memchr(value, '\0', len) != NULL || !glob_chars_ok(value, len)) {
		if (!(type == POLICY_LT_MAIL && len == 2 && memcmp(value, "<>", 2) == 0)) {
			snprintf(err, errsz, "invalid characters in value");
			return -1;
		}
	}
	switch (type) {
	case POLICY_LT_HOST:
		if (memchr(value, '/', len) != NULL || memchr(value, ':', len) != NULL ||
		    policy_ip_parse(value, len, ip) == 0) {
			if (policy_cidr_parse(value, len, ip, &prefix) < 0) {
				snprintf(err, errsz, "not a valid address or CIDR range"
					 " (host bits must be zero)");
				return -1;
			}
			lower_copy(value, len, norm, normsz);
			return 0;
		}
		if (is_wild_domain(value, len) || policy_domain_ok(value, len)) {
			/* A dotted quad that failed to parse is a bad address, not a name. */
			size_t i;
			int digits_dots = 1;

			for (i = 0; i < len; i++)
				if (!isdigit((unsigned char)value[i]) && value[i] != '.')
					digits_dots = 0;
			if (digits_dots) {
				snprintf(err, errsz, "not a valid address");
				return -1;
			}
			lower_copy(value, len, norm, normsz);
			return 0;
		}
		snprintf(err, errsz, "not an address, CIDR range, host name or *.domain");
		return -1;
	case POLICY_LT_DOMAIN:
		if ((len == 1 && value[0] == '*') || is_wild_domain(value, len) ||
		    policy_domain_ok(value, len)) {
			lower_copy(value, len, norm, normsz);
			return 0;
		}
		snprintf(err, errsz, "not a domain, *.domain or *");
		return -1;
	case POLICY_LT_MAIL:
		if (len == 2 && memcmp(value, "<>", 2) == 0) {
			lower_copy(value, len, norm, normsz);
			return 0;
		}
		if (value[0] == '@') {
			value++;
			len--;
		}
		at = memchr(value, '@', len);
		if (at == NULL) {
			if (is_wild_domain(value, len) || policy_domain_ok(value, len)) {
				lower_copy(value, len, norm, normsz);
				return 0;
			}
			if (has_glob(value, len) && len > 1) {
				lower_copy(value, len, norm, normsz);
				return 0;
			}
			snprintf(err, errsz, "not an address, domain, *.domain or pattern");
			return -1;
		}
		if (at == value || memchr(at + 1, '@', len - (size_t)(at - value) - 1) != NULL ||
		    (size_t)(at - value) + 1 == len) {
			snprintf(err, errsz, "not a valid mail address or pattern");
			return -1;
		}
		if (!has_glob(value, len) &&
		    !policy_domain_ok(at + 1, len - (size_t)(at - value) - 1)) {
			snprintf(err, errsz, "bad domain in address");
			return -1;
		}
		lower_copy(value, len, norm, normsz);
		return 0;
	}
	snprintf(err, errsz, "unknown list type");
	return -1;
}

/* --- compiled lists ------------------------------------------------------- */

static void add_glob(struct policy_list *l, const char *pat, const struct policy_ref *ref)
{
	l->globs = xrealloc(l->globs, (l->nglobs + 1) * sizeof(*l->globs));
	l->globs[l->nglobs].pat = xstrdup(pat);
	l->globs[l->nglobs].ref = ref;
	l->nglobs++;
}

void policy_list_add(struct policy_list *l, enum policy_list_type type,
		     const struct policy_ref *ref)
{
	const char *v = ref->value;
	size_t len = strlen(v);
	uint8_t ip[16];
	int prefix;

	l->count++;
	if (type == POLICY_LT_HOST && policy_cidr_parse(v, len, ip, &prefix) == 0) {
		if (l->trie == NULL)
			l->trie = policy_trie_new();
		policy_trie_insert(l->trie, ip, prefix, ref);
		return;
	}
	if (type == POLICY_LT_HOST)
		l->has_names = 1;
	if (is_wild_domain(v, len)) {
		policy_strset_add(&l->wild, v + 2, len - 2, ref);
		return;
	}
	if (type == POLICY_LT_MAIL && strcmp(v, "<>") == 0) {
		policy_strset_add(&l->addrs, "", 0, ref);
		return;
	}
	if (has_glob(v, len)) {
		/* "*@example.com" is just the domain. */
		if (type == POLICY_LT_MAIL && len > 2 && v[0] == '*' && v[1] == '@' &&
		    !has_glob(v + 2, len - 2)) {
			policy_strset_add(&l->exact, v + 2, len - 2, ref);
			return;
		}
		add_glob(l, v, ref);
		return;
	}
	if (type == POLICY_LT_MAIL && strchr(v, '@') != NULL) {
		policy_strset_add(&l->addrs, v, len, ref);
		return;
	}
	policy_strset_add(&l->exact, v, len, ref);
}

void policy_list_free(struct policy_list *l)
{
	size_t i;

	policy_trie_free(l->trie);
	policy_strset_free(&l->exact);
	policy_strset_free(&l->wild);
	policy_strset_free(&l->addrs);
	for (i = 0; i < l->nglobs; i++)
		free(l->globs[i].pat);
	free(l->globs);
	memset(l, 0, sizeof(*l));
}

const struct policy_ref *policy_list_match_ip(const struct policy_list *l, const uint8_t ip[16])
{
	return policy_trie_lookup(l->trie, ip);
}

/* Exact name, then each parent domain against the wildcard set. */
static const struct policy_ref *match_name(const struct policy_list *l, const char *name,
					   size_t len)
{
	const struct policy_ref *r;
	size_t i;

	if (len > 0 && name[len - 1] == '.')
		len--; /* a PTR answer may end in the root */
	r = policy_strset_get(&l->exact, name, len);
	if (r != NULL)
		return r;
	if (l->wild.count == 0)
		return NULL;
	for (i = 0; i < len; i++)
		if (name[i] == '.') {
			r = policy_strset_get(&l->wild, name + i + 1, len - i - 1);
			if (r != NULL)
				return r;
		}
	return NULL;
}

static const struct policy_ref *match_globs(const struct policy_list *l, const char *s,
					    size_t len)
{
	size_t i;

	for (i = 0; i < l->nglobs; i++)
		if (policy_glob(l->globs[i].pat, strlen(l->globs[i].pat), s, len))
			return l->globs[i].ref;
	return NULL;
}

const struct policy_ref *policy_list_match_host(const struct policy_list *l, const char *name)
{
	if (name == NULL || name[0] == '\0')
		return NULL;
	return match_name(l, name, strlen(name));
}

const struct policy_ref *policy_list_match_domain(const struct policy_list *l,
						  const char *domain)
{
	size_t len = strlen(domain);
	const struct policy_ref *r = match_name(l, domain, len);

	return r != NULL ? r : match_globs(l, domain, len);
}

const struct policy_ref *policy_list_match_mail(const struct policy_list *l, const char *addr)
{
	size_t len = strlen(addr);
	const char *at = strrchr(addr, '@');
	const struct policy_ref *r;

	if (l->count == 0)
		return NULL;
	r = policy_strset_get(&l->addrs, addr, len);
	if (r != NULL)
		return r;
	if (at != NULL) {
		r = match_name(l, at + 1, strlen(at + 1));
		if (r != NULL)
			return r;
	}
	if (len == 0)
		return NULL; /* the null sender matches only "<>" */
	return match_globs(l, addr, len);
}

/* --- DNSBL codes and templates -------------------------------------------- */

static int parse_v4(const char *s, size_t len, uint32_t *out)
{
	char buf[INET_ADDRSTRLEN];
	struct in_addr a;

	if (len == 0 || len >= sizeof(buf))
		return -1;
	memcpy(buf, s, len);
	buf[len] = '\0';
	if (inet_pton(AF_INET, buf, &a) != 1)
		return -1;
	*out = ntohl(a.s_addr);
	return 0;
}

int policy_codes_parse(const char *s, size_t len, struct policy_codes *c, char *err,
		       size_t errsz)
{
	size_t i = 0;

	memset(c, 0, sizeof(*c));
	if (len == 0 || (len == 3 && memcmp(s, "any", 3) == 0)) {
		c->r[0].lo = 0x7f000000;
		c->r[0].hi = 0x7fffffff;
		c->n = 1;
		return 0;
	}
	while (i < len) {
		size_t start = i;
		size_t end;
		const char *dash;
		uint32_t lo, hi;

		while (i < len && s[i] != ',')
			i++;
		end = i;
		i++; /* the comma */
		while (start < end && s[start] == ' ')
			start++;
		while (end > start && s[end - 1] == ' ')
			end--;
		dash = memchr(s + start, '-', end - start);
		if (dash != NULL) {
			if (parse_v4(s + start, (size_t)(dash - s - start), &lo) < 0 ||
			    parse_v4(dash + 1, (size_t)(s + end - dash - 1), &hi) < 0)
				goto bad;
		} else {
			if (parse_v4(s + start, end - start, &lo) < 0)
				goto bad;
			hi = lo;
		}
		if (lo > hi) {
			snprintf(err, errsz, "return codes: range %.*s is backwards",
				 (int)(end - start), s + start);
			return -1;
		}
		if (c->n == POLICY_CODES_MAX) {
			snprintf(err, errsz, "return codes: more than %d ranges", POLICY_CODES_MAX);
			return -1;
		}
		c->r[c->n].lo = lo;
		c->r[c->n].hi = hi;
		c->n++;
		continue;
bad:
		snprintf(err, errsz, "return codes: \"%.*s\" is not an IPv4 address or a"
			 " range a.b.c.d-e.f.g.h", (int)(end - start), s + start);
		return -1;
	}
	if (c->n == 0) {
		snprintf(err, errsz, "return codes: empty list");
		return -1;
	}
	return 0;
}

int policy_codes_match(const struct policy_codes *c, uint32_t a)
{
	size_t i;

	for (i = 0; i < c->n; i++)
		if (a >= c->r[i].lo && a <= c->r[i].hi)
			return 1;
	return 0;
}

void policy_expand(const char *tmpl, const char *ip, const char *zone, char *out,
		   size_t outsz)
{
	size_t o = 0;
	const char *p = tmpl;

	if (outsz == 0)
		return;
	while (*p != '\0' && o + 1 < outsz) {
		const char *sub = NULL;

		if (strncmp(p, "{ip}", 4) == 0) {
			sub = ip;
			p += 4;
		} else if (strncmp(p, "{zone}", 6) == 0) {
			sub = zone;
			p += 6;
		}
		if (sub != NULL) {
			while (*sub != '\0' && o + 1 < outsz)
				out[o++] = *sub++;
			continue;
		}
		out[o++] = (*p >= ' ' && *p < 127) ? *p : '?';
		p++;
	}
	out[o] = '\0';
}
