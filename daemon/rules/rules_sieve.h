/*
 * rules_sieve: a mailbox rule set to and from Sieve (RFC 5228).
 *
 * Export turns a set (the JSON array of mailbox rule objects the API
 * exports) into a script that Dovecot Pigeonhole can run in place of the
 * gateway; what Sieve cannot express is written as a comment and listed.
 * Import reads the subset the editor can express (the shapes export writes
 * and the usual hand-written forms) into rule objects, each validated as a
 * mailbox rule; everything else is listed with its line and a reason.
 * Both are pure functions over memory: no I/O, no logging.  Ownership: the
 * caller frees what is returned (free, json_decref).
 */
#ifndef MOAT_RULES_SIEVE_H
#define MOAT_RULES_SIEVE_H

#include <stddef.h>

#include <jansson.h>

#include "rules.h"

#define RULES_SIEVE_INPUT_MAX (16u << 20)  /* octets of a script to import */
#define RULES_SIEVE_DEPTH_MAX 32           /* nesting of blocks and tests */
#define RULES_SIEVE_NODES_MAX 1000000      /* commands, tests and arguments */
#define RULES_SIEVE_LIST_MAX 1024          /* strings in one string list */

/*
 * The script for rules (a JSON array of mailbox rule objects) as a
 * malloc'ed NUL-terminated string, and in *skipped (new reference) one
 * {"rule": index, "name": name, "reason": text} per rule left out.
 * NULL when rules is not an array.
 */
char *rules_sieve_export(const json_t *rules, json_t **skipped);

struct rules_sieve_err {
	unsigned line;              /* 1-based line of the error */
	char msg[200];
};

/*
 * Import a script.  0 with *rules (array of rule objects, each accepted by
 * rules_def_check_one_opts with o, or the mailbox defaults when o is NULL)
 * and *skipped ([{"line": n, "reason": text}]), or -1 with e filled when
 * the script is not Sieve (syntax) or exceeds a limit.
 */
int rules_sieve_import(const char *text, size_t len, const struct rules_parse_opts *o,
		       json_t **rules, json_t **skipped, struct rules_sieve_err *e);

#endif
