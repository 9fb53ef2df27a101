/*
 * libFuzzer harness: the fast path of the message walk (one text part, or
 * a multipart of text parts and attachments cut at its boundaries) against
 * GMime's walk.  Every input is read twice, once with the fast path allowed
 * and once with GMime only (mime_limits.gmime_only), with the default
 * limits and with small ones; whenever the fast path takes the input, the
 * two views must be the same (mime_view_cmp: headers, text, raw body,
 * attachments, URL hosts, flags, parts, depth).  An input the fast path
 * declines is read by GMime both times and so compares equal trivially.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mime/mime.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void both_ways(const char *buf, size_t size, const struct mime_limits *lim)
{
	struct mime_limits slow = *lim;
	struct mime_view *a, *b;
	char err[128], diff[600];

	slow.gmime_only = 1;
	if (mime_parse(buf, size, lim, &a, err, sizeof(err)) != 0 ||
	    mime_parse(buf, size, &slow, &b, err, sizeof(err)) != 0)
		__builtin_trap();
	if (b->fast)
		__builtin_trap();
	if (a->fast && mime_view_cmp(a, b, diff, sizeof(diff)) != 0) {
		fprintf(stderr, "fast path and GMime differ: %s\n", diff);
		__builtin_trap();
	}
	mime_view_free(a);
	mime_view_free(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	struct mime_limits lim;
	char *buf;

	if (!ready) {
		mime_init();
		ready = 1;
	}
	if (size > 1 << 18)
		return 0;
	/* An exact-size copy, so that ASan sees any read past the input. */
	buf = malloc(size ? size : 1);
	memcpy(buf, data, size);
	mime_limits_default(&lim);
	lim.max_ms = 60000; /* the clock must not make the two walks differ */
	both_ways(buf, size, &lim);
	lim.max_part_text = 4096;
	lim.max_text = 300;
	lim.max_headers = 12;
	lim.max_urls = 3;
	lim.keep_parts = 1;
	both_ways(buf, size, &lim);
	free(buf);
	return 0;
}
