/*
 * libFuzzer harness: the bootstrap config parser.
 */
#include <stddef.h>
#include <stdint.h>

#include "conf/conf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct conf c;
	char err[512];

	conf_defaults(&c);
	conf_parse(&c, (const char *)data, size, "fuzz.conf", err, sizeof(err));
	return 0;
}
