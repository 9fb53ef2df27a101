/*
 * libFuzzer harness: the header walk over a queued message's header
 * section (spool_header_next / spool_header_get in daemon/spool/spool_read.c),
 * which the queue view, `moatd queue show` and delivery status notifications
 * run over header fields a client sent.
 */
#include <stddef.h>
#include <stdint.h>

#include "spool/spool_read.h"
#include "util/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *buf = (const char *)data;
	const char *name;
	size_t pos = 0, name_len, fields = 0;
	struct dynbuf value;

	dynbuf_init(&value, 4096);
	while (spool_header_next(buf, size, &pos, &name, &name_len, &value) == 1) {
		if (pos > size || name_len == 0 || name + name_len > buf + size)
			__builtin_trap(); /* a field past the input */
		if (++fields > size)
			__builtin_trap(); /* no progress */
	}
	(void)spool_header_get(buf, size, "subject", &value);
	dynbuf_free(&value);
	return 0;
}
