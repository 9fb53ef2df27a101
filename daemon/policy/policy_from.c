/*
 * policy_from: the addresses of a message's From: field, for the From:
 * binding of authenticated senders (policy_data.c).  A pure function over
 * (const char *, size_t): no I/O, no allocation; unit-tested
 * (tests/unit/test_account.c) and fuzzed (fuzz/fuzz_from_header.c).
 * Bounded: an unfolded value past 4 KiB and a display part past 1 KiB are
 * cut, never overrun.
 */
#include "policy.h"

#include <string.h>
#include <strings.h>

/* One element of an address list: the <angle> part, else the bare addr-spec. */
static int emit(const char *ang, size_t alen, const char *plain, size_t plen,
		void (*cb)(const char *, size_t, void *), void *arg)
{
	while (plen > 0 && (plain[0] == ' ' || plain[0] == '\t')) {
		plain++;
		plen--;
	}
	while (plen > 0 && (plain[plen - 1] == ' ' || plain[plen - 1] == '\t'))
		plen--;
	if (ang != NULL) {
		cb(ang, alen, arg);
		return 1;
	}
	if (plen > 0 && memchr(plain, '@', plen) != NULL) {
		cb(plain, plen, arg);
		return 1;
	}
	return 0;
}

/* RFC 5322 address-list in v[0..n): quoted strings and comments skipped. */
static int parse_list(const char *v, size_t n, void (*cb)(const char *, size_t, void *),
		      void *arg)
{
	char plain[1024];
	size_t plen = 0;
	const char *ang = NULL;
	size_t alen = 0;
	int depth = 0;
	int count = 0;
	size_t i;

	for (i = 0; i < n; i++) {
		char c = v[i];

		if (depth > 0) {
			if (c == '\\')
				i++;
			else if (c == '(')
				depth++;
			else if (c == ')')
				depth--;
			continue;
		}
		if (c == '"') {
			for (i++; i < n && v[i] != '"'; i++)
				if (v[i] == '\\')
					i++;
			continue;
		}
		if (c == '(') {
			depth = 1;
			continue;
		}
		if (c == '<') {
			const char *end = memchr(v + i + 1, '>', n - i - 1);

			if (end == NULL)
				return count; /* unterminated: the rest is not an address */
			ang = v + i + 1;
			alen = (size_t)(end - ang);
			i = (size_t)(end - v);
			continue;
		}
		if (c == ':') {
			plen = 0; /* a group's display name */
			continue;
		}
		if (c == ',' || c == ';') {
			count += emit(ang, alen, plain, plen, cb, arg);
			ang = NULL;
			plen = 0;
			continue;
		}
		if (plen < sizeof(plain))
			plain[plen++] = c;
	}
	count += emit(ang, alen, plain, plen, cb, arg);
	return count;
}

int policy_from_addresses(const char *hdr, size_t len,
			  void (*cb)(const char *addr, size_t alen, void *arg), void *arg)
{
	size_t i = 0;

	while (i < len) {
		const char *lf = memchr(hdr + i, '\n', len - i);
		size_t eol = lf != NULL ? (size_t)(lf - hdr) : len;

		if (eol == i || (eol == i + 1 && hdr[i] == '\r'))
			break; /* the empty line: end of the header section */
		if (eol - i >= 5 && strncasecmp(hdr + i, "From:", 5) == 0) {
			char val[4096];
			size_t vn = 0;
			size_t j = i + 5;

			/* Unfold: continuation lines start with SP or HT. */
			for (;;) {
				for (; j < eol && vn < sizeof(val); j++)
					val[vn++] = hdr[j] == '\r' ? ' ' : hdr[j];
				if (eol + 1 < len && (hdr[eol + 1] == ' ' || hdr[eol + 1] == '\t')) {
					j = eol + 1;
					lf = memchr(hdr + j, '\n', len - j);
					eol = lf != NULL ? (size_t)(lf - hdr) : len;
					continue;
				}
				break;
			}
			return parse_list(val, vn, cb, arg);
		}
		i = eol + 1;
	}
	return -1;
}

