/*
 * libFuzzer harness: the DATA state machine.  The input is fed twice, at
 * once and in 7-octet pieces, and both runs must agree: splitting the
 * input differently must never change what is accepted (the heart of the
 * smuggling class).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/smtp_data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static enum smtp_data_status run(const uint8_t *in, size_t len, size_t step, char *out,
				 size_t *outlen, size_t *consumed, unsigned *flags)
{
	struct smtp_data d;
	enum smtp_data_status st = SMTP_DATA_MORE;
	size_t pos = 0;

	smtp_data_init(&d, 1000, 1 << 16);
	/* Small header limits, so that inputs reach them. */
	smtp_data_header_limits(&d, 200, 8);
	*outlen = 0;
	while (pos < len) {
		size_t n = len - pos < step ? len - pos : step;
		size_t o;
		size_t used;

		st = smtp_data_feed(&d, (const char *)in + pos, n, out + *outlen, &o, &used);
		if (used > n || o > n + 1)
			__builtin_trap();
		*outlen += o;
		pos += used;
		if (st != SMTP_DATA_MORE)
			break;
	}
	*consumed = pos;
	*flags = d.flags;
	return st;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *a;
	char *b;
	size_t alen, blen, ac, bc;
	unsigned af, bf;
	enum smtp_data_status as, bs;

	if (size > 1 << 16)
		return 0;
	a = malloc(size + 2);
	b = malloc(size + 2);
	as = run(data, size, size ? size : 1, a, &alen, &ac, &af);
	bs = run(data, size, 7, b, &blen, &bc, &bf);
	if (as != bs || ac != bc || af != bf || alen != blen || memcmp(a, b, alen) != 0)
		__builtin_trap();
	free(a);
	free(b);
	return 0;
}
