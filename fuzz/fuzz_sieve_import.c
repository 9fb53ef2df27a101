/*
 * libFuzzer harness: the Sieve importer (rules_sieve_import).  Any input
 * gets either rules and a skipped list or one error with a line; the
 * rules it returns export to a script that imports again to the same
 * rules, and exporting those gives the same script (a fixed point).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rules/rules_sieve.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rules_sieve_err e;
	json_t *rules = NULL, *skipped = NULL, *rules2 = NULL, *skipped2 = NULL;
	json_t *rules3 = NULL, *skipped3 = NULL, *ex1 = NULL, *ex2 = NULL;
	char *s1 = NULL, *s2 = NULL;

	if (size > 65536)
		return 0;
	if (rules_sieve_import((const char *)data, size, NULL, &rules, &skipped, &e) < 0) {
		if (e.line == 0 || e.msg[0] == '\0')
			abort();
		return 0;
	}
	s1 = rules_sieve_export(rules, &ex1);
	if (s1 == NULL || json_array_size(ex1) != 0)
		abort();    /* what import produced, export can write */
	if (rules_sieve_import(s1, strlen(s1), NULL, &rules2, &skipped2, &e) < 0)
		abort();
	if (json_array_size(skipped2) != 0 || json_array_size(rules2) != json_array_size(rules))
		abort();
	s2 = rules_sieve_export(rules2, &ex2);
	if (s2 == NULL || strcmp(s1, s2) != 0)
		abort();
	if (rules_sieve_import(s2, strlen(s2), NULL, &rules3, &skipped3, &e) < 0 ||
	    !json_equal(rules2, rules3))
		abort();
	free(s1);
	free(s2);
	json_decref(rules);
	json_decref(skipped);
	json_decref(rules2);
	json_decref(skipped2);
	json_decref(rules3);
	json_decref(skipped3);
	json_decref(ex1);
	json_decref(ex2);
	return 0;
}
