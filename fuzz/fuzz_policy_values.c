/*
 * libFuzzer harness: the policy's value validators (policy_value_check for
 * every list type, policy_user_value_check for personal sender lists) and,
 * for a personal value that passes, the snapshot lookup it feeds
 * (policy_user_sender): values arrive from API bodies and the CLI.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "policy/policy_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const enum policy_list_type types[] = { POLICY_LT_HOST, POLICY_LT_MAIL,
						       POLICY_LT_DOMAIN };
	const char *s = (const char *)data;
	char norm[400], err[200];
	size_t i;

	for (i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		policy_value_check(types[i], s, size, norm, sizeof(norm), err, sizeof(err));
	if (policy_user_value_check(s, size, norm, sizeof(norm), err, sizeof(err)) == 0) {
		struct policy_snap *sn = policy_snap_empty();

		policy_snap_add_user_owner(sn, "rcpt@example.org", 1);
		if (policy_snap_add_user_entry(sn, 1, 1, "block", norm, err, sizeof(err)) != 0)
			__builtin_trap(); /* what the API accepts, the loader must take */
		if (norm[0] != '@' && policy_user_sender(sn, "rcpt@example.org", norm, NULL) == NULL)
			__builtin_trap(); /* an address entry matches that address */
		policy_snap_free(sn);
	}
	return 0;
}
