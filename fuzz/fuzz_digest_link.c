/*
 * libFuzzer harness: digest link tokens (digest_link_verify in
 * daemon/digest/digest_link.c) and the digest template checker
 * (digest_template_check in digest_render.c), both over outside bytes.
 * The first byte picks which; the key is fixed, so a mutated genuine token
 * reaches the payload parser too.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "digest/digest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const unsigned char key[DIGEST_KEY_LEN] = "fuzz-fuzz-fuzz-fuzz-fuzz-fuzz-k";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct digest_link l;
	char *s;

	if (size == 0)
		return 0;
	if (data[0] & 1) {
		(void)digest_link_verify(key, (const char *)data + 1, size - 1, 1700000000, &l);
		return 0;
	}
	s = malloc(size);
	if (s == NULL)
		return 0;
	memcpy(s, data + 1, size - 1);
	s[size - 1] = '\0';
	{
		struct digest_template t = { s, s, s };
		const char *field = NULL;
		char err[300];

		(void)digest_template_check(&t, &field, err, sizeof(err));
	}
	free(s);
	return 0;
}
