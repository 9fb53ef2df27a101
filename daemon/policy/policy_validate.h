/*
 * policy_validate: the pure validators of policy values, shared by the
 * policy engine, `moatd policy` and the HTTP API so that every way in
 * accepts exactly the same entries and settings.  No I/O, no globals
 * beyond the constant tables.
 */
#ifndef MOAT_POLICY_VALIDATE_H
#define MOAT_POLICY_VALIDATE_H

#include <stddef.h>
#include <stdint.h>

/* A valid DNS host name or domain (letters, digits, '-', dots; lengths). */
int policy_domain_ok(const char *s, size_t len);

/* --- list kinds -------------------------------------------------------------- */

enum policy_list_type {
	POLICY_LT_HOST,   /* addresses, CIDR, host names, *.domain */
	POLICY_LT_MAIL,   /* addresses, domains, *.domain, globs, <> */
	POLICY_LT_DOMAIN, /* domains, *.domain, * */
};

struct policy_list_kind {
	const char *name;
	enum policy_list_type type;
	const char *summary;
};
extern const struct policy_list_kind policy_list_kinds[];
extern const size_t policy_list_kind_count;
const struct policy_list_kind *policy_list_kind_find(const char *name);

/*
 * Is value acceptable for a list of this type?  0, or -1 with err.  norm
 * receives the canonical form that is stored (lower-cased, "@dom" -> "dom").
 */
int policy_value_check(enum policy_list_type type, const char *value, size_t len,
		       char *norm, size_t normsz, char *err, size_t errsz);

/*
 * A personal sender list entry (policy_user.c): "user@example.com" or
 * "@example.com", no patterns.  0 with the canonical form (lower case, the
 * domain form keeps its '@') in norm, or -1 with err.
 */
int policy_user_value_check(const char *value, size_t len, char *norm, size_t normsz,
			    char *err, size_t errsz);

/* --- DNSBL return codes ------------------------------------------------------- */

#define POLICY_CODES_MAX 16
struct policy_codes {
	struct {
		uint32_t lo, hi;   /* host order */
	} r[POLICY_CODES_MAX];
	size_t n;
};
/* "127.0.0.2-127.0.0.11,127.0.0.20"; "" or "any" means any 127.0.0.0/8 answer. */
int policy_codes_parse(const char *s, size_t len, struct policy_codes *c, char *err,
		       size_t errsz);

/* --- settings ------------------------------------------------------------------ */

/* NUM: a decimal number ("5", "-0.5") between min and max. */
enum policy_set_type { POLICY_ST_BOOL, POLICY_ST_INT, POLICY_ST_ENUM, POLICY_ST_TEXT, POLICY_ST_NUM };

struct policy_setting_def {
	const char *key;
	enum policy_set_type type;
	const char *def;
	int64_t min, max;
	const char *choices;   /* "a|b|c" for ENUM */
	const char *summary;
};
extern const struct policy_setting_def policy_setting_defs[];
extern const size_t policy_setting_count;
const struct policy_setting_def *policy_setting_find(const char *key);
/* 0, or -1 with err: the value is valid for the key. */
int policy_setting_check(const char *key, const char *value, char *err, size_t errsz);

#endif
