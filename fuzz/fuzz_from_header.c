/*
 * libFuzzer harness: the From: header address extraction of the optional
 * From: binding (policy_from_addresses in daemon/policy/policy_from.c).
 */
#include <stddef.h>
#include <stdint.h>

#include "policy/policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void cb(const char *addr, size_t alen, void *arg)
{
	size_t *total = arg;

	if (alen > 0)
		*total += (unsigned char)addr[0] + (unsigned char)addr[alen - 1];
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t total = 0;

	policy_from_addresses((const char *)data, size, cb, &total);
	return 0;
}
