/*
 * rules_parse: the rule model and its JSON form.
 *
 * rules_def_parse() is a pure function over (json, len): it validates every
 * field, operator, value and action against the limits in rules.h and
 * returns either a complete model or one error naming the exact place in
 * the document ("rules[3].when.all[1].value: ...") so the API can answer
 * 422 naming the rule.  Regular expressions are compiled once with PCRE2
 * here only to validate them (the compiler decides which engine runs them).
 * rules_def_to_json() exports the model so that parse(export(d)) == d.
 *
 * The model owns all its strings; rules_def_free() releases everything.
 */
#include "rules_internal.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "../util/util.h"

#define PATH_MAX_LEN 512

static const char *const field_names[RF_COUNT_] = {
	[RF_SENDER] = "sender", [RF_RECIPIENT] = "recipient",
	[RF_CLIENT_ADDRESS] = "client_address", [RF_CLIENT_NAME] = "client_name",
	[RF_HELO] = "helo", [RF_AUTH_USER] = "auth_user", [RF_HEADER] = "header",
	[RF_BODY] = "body", [RF_RAW_BODY] = "raw_body",
	[RF_ATTACHMENT_NAME] = "attachment_name", [RF_ATTACHMENT_TYPE] = "attachment_type",
	[RF_URL_HOST] = "url_host", [RF_SIZE] = "size", [RF_RECIPIENT_COUNT] = "recipient_count",
	[RF_DNSBL] = "dnsbl", [RF_FLAG] = "flag",
	[RF_IMPORTANCE] = "importance", [RF_TO_CC] = "to_cc",
	[RF_SCORE] = "score", [RF_SCORE_PART] = "score_part",
};

static const char *const op_names[RO_COUNT_] = {
	[RO_CONTAINS] = "contains", [RO_NOT_CONTAINS] = "not_contains", [RO_IS] = "is",
	[RO_IS_NOT] = "is_not", [RO_STARTS_WITH] = "starts_with", [RO_ENDS_WITH] = "ends_with",
	[RO_MATCHES] = "matches", [RO_NOT_MATCHES] = "not_matches", [RO_GT] = "gt",
	[RO_LT] = "lt", [RO_IN_LIST] = "in_list", [RO_IN_NETWORK] = "in_network",
};

static const char *const action_names[] = {
	[RULES_ACT_NONE] = "none", [RULES_ACT_ACCEPT] = "accept", [RULES_ACT_REFUSE] = "refuse",
	[RULES_ACT_DEFER] = "defer", [RULES_ACT_TAG] = "tag",
	[RULES_ACT_QUARANTINE] = "quarantine", [RULES_ACT_HOLD] = "hold",
	[RULES_ACT_DISCARD] = "discard", [RULES_ACT_REDIRECT] = "redirect",
	[RULES_ACT_BCC] = "bcc", [RULES_ACT_STOP] = "stop", [RULES_ACT_CONTINUE] = "continue",
	[RULES_ACT_KEEP] = "keep", [RULES_ACT_MOVE] = "move", [RULES_ACT_COPY] = "copy",
	[RULES_ACT_FORWARD] = "forward", [RULES_ACT_FORWARD_COPY] = "forward_copy",
	[RULES_ACT_IMPORTANCE] = "importance", [RULES_ACT_SCORE] = "score",
};

/*
 * The vocabulary of a mailbox rule's "actions" items and what each becomes
 * in the model.  tag_subject and add_header are both RULES_ACT_TAG (with
 * subject_prefix or header); the rest map one to one.
 */
static const struct {
	const char *name;
	enum rules_action_type type;
	const char *params;         /* allowed keys besides "type", space separated */
} mailbox_actions[] = {
	{ "keep", RULES_ACT_KEEP, "" },
	{ "move", RULES_ACT_MOVE, "folder" },
	{ "copy", RULES_ACT_COPY, "folder" },
	{ "forward", RULES_ACT_FORWARD, "address" },
	{ "forward_copy", RULES_ACT_FORWARD_COPY, "address" },
	{ "quarantine", RULES_ACT_QUARANTINE, "" },
	{ "discard", RULES_ACT_DISCARD, "" },
	{ "refuse", RULES_ACT_REFUSE, "text" },
	{ "tag_subject", RULES_ACT_TAG, "prefix" },
	{ "importance", RULES_ACT_IMPORTANCE, "value" },
	{ "add_header", RULES_ACT_TAG, "name value" },
	{ "stop", RULES_ACT_STOP, "" },
	{ "score", RULES_ACT_SCORE, "points" },
};

static const char *const importance_names[] = { "high", "normal", "low" };

#define OPS_STRING ((1u << RO_CONTAINS) | (1u << RO_NOT_CONTAINS) | (1u << RO_IS) | \
		    (1u << RO_IS_NOT) | (1u << RO_STARTS_WITH) | (1u << RO_ENDS_WITH) | \
		    (1u << RO_MATCHES) | (1u << RO_NOT_MATCHES))
#define OPS_NUMBER ((1u << RO_GT) | (1u << RO_LT) | (1u << RO_IS) | (1u << RO_IS_NOT))

/* Which operators each field takes. */
static const unsigned field_ops[RF_COUNT_] = {
	[RF_SENDER] = OPS_STRING | (1u << RO_IN_LIST),
	[RF_RECIPIENT] = OPS_STRING | (1u << RO_IN_LIST),
	[RF_CLIENT_ADDRESS] = (1u << RO_IS) | (1u << RO_IS_NOT) | (1u << RO_IN_NETWORK) |
			      (1u << RO_IN_LIST),
	[RF_CLIENT_NAME] = OPS_STRING | (1u << RO_IN_LIST),
	[RF_HELO] = OPS_STRING | (1u << RO_IN_LIST),
	[RF_AUTH_USER] = OPS_STRING | (1u << RO_IN_LIST),
	[RF_HEADER] = OPS_STRING | (1u << RO_IN_LIST),
	[RF_BODY] = OPS_STRING,
	[RF_RAW_BODY] = OPS_STRING,
	[RF_ATTACHMENT_NAME] = OPS_STRING | (1u << RO_IN_LIST),
	[RF_ATTACHMENT_TYPE] = OPS_STRING | (1u << RO_IN_LIST),
	[RF_URL_HOST] = OPS_STRING | (1u << RO_IN_LIST),
	[RF_SIZE] = OPS_NUMBER,
	[RF_RECIPIENT_COUNT] = OPS_NUMBER,
	[RF_DNSBL] = OPS_STRING | (1u << RO_IN_LIST),
	[RF_FLAG] = (1u << RO_IS) | (1u << RO_IS_NOT),
	[RF_IMPORTANCE] = (1u << RO_IS) | (1u << RO_IS_NOT),
	[RF_TO_CC] = OPS_STRING | (1u << RO_IN_LIST),
	[RF_SCORE] = OPS_NUMBER,
	[RF_SCORE_PART] = OPS_NUMBER,
};

static const struct rules_parse_opts server_opts = { .kind = RULES_KIND_SERVER };

const char *rules_field_name(enum rules_field f)
{
	return (unsigned)f < RF_COUNT_ ? field_names[f] : "?";
}

const char *rules_op_name(enum rules_op o)
{
	return (unsigned)o < RO_COUNT_ ? op_names[o] : "?";
}

const char *rules_action_name(enum rules_action_type t)
{
	return (unsigned)t < ARRAY_LEN(action_names) ? action_names[t] : "?";
}

bool rules_action_final(enum rules_action_type t)
{
	return !(t == RULES_ACT_TAG || t == RULES_ACT_BCC || t == RULES_ACT_CONTINUE ||
		 t == RULES_ACT_NONE || t == RULES_ACT_COPY || t == RULES_ACT_FORWARD_COPY ||
		 t == RULES_ACT_IMPORTANCE || t == RULES_ACT_SCORE);
}

bool rules_op_negative(enum rules_op o)
{
	return o == RO_NOT_CONTAINS || o == RO_IS_NOT || o == RO_NOT_MATCHES;
}

static int fail(char *err, size_t errsz, const char *path, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int fail(char *err, size_t errsz, const char *path, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (err == NULL || errsz == 0)
		return -1;
	n = snprintf(err, errsz, "%s: ", path);
	if (n < 0 || (size_t)n >= errsz)
		return -1;
	va_start(ap, fmt);
	vsnprintf(err + n, errsz - (size_t)n, fmt, ap);
	va_end(ap);
	return -1;
}

/* Paths are bounded by RULES_DEPTH_MAX levels; a cut one still names the rule. */
static void subpath(char *out, size_t outsz, const char *path, const char *key)
{
	if (snprintf(out, outsz, "%s.%s", path, key) < 0)
		out[0] = '\0';
}

static void subpath_i(char *out, size_t outsz, const char *path, const char *key, size_t i)
{
	if (snprintf(out, outsz, "%s.%s[%zu]", path, key, i) < 0)
		out[0] = '\0';
}

/* Printable text: no control characters (UTF-8 above 0x7f allowed). */
static bool text_ok(const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x20 || c == 0x7f)
			return false;
	}
	return true;
}

/* RFC 5322 ftext: printable ASCII except ':'. */
static bool header_name_ok(const char *s, size_t len)
{
	size_t i;

	if (len == 0 || len > 76)
		return false;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 33 || c > 126 || c == ':')
			return false;
	}
	return true;
}

/* A list name or flag name: [A-Za-z0-9_.-], 1..200. */
static bool ident_ok(const char *s, size_t len)
{
	size_t i;

	if (len == 0 || len > RULES_NAME_MAX)
		return false;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (!isalnum(c) && c != '_' && c != '.' && c != '-')
			return false;
	}
	return true;
}

/* local@domain: a dot-atom or quoted local part is not needed for rules;
 * accept printable ASCII without space, <>, (), comma, one '@', a domain of
 * LDH labels. */
static bool address_ok(const char *s, size_t len)
{
	const char *at;
	size_t i, llen, lablen = 0;

	if (len < 3 || len > 254)
		return false;
	at = memchr(s, '@', len);
	if (at == NULL || at == s || memchr(at + 1, '@', len - (size_t)(at - s) - 1) != NULL)
		return false;
	llen = (size_t)(at - s);
	if (llen > 64)
		return false;
	for (i = 0; i < llen; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c <= 32 || c >= 127 || strchr("<>()[],;:\\\"", c) != NULL)
			return false;
	}
	if (at + 1 == s + len)
		return false;
	for (i = llen + 1; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '.') {
			if (lablen == 0)
				return false;
			lablen = 0;
			continue;
		}
		if (!isalnum(c) && c != '-')
			return false;
		if (++lablen > 63)
			return false;
	}
	return lablen > 0;
}

int rules_ip_parse(const char *s, uint8_t out[16])
{
	struct in_addr a4;

	if (strchr(s, ':') != NULL)
		return inet_pton(AF_INET6, s, out) == 1 ? 0 : -1;
	if (inet_pton(AF_INET, s, &a4) != 1)
		return -1;
	memset(out, 0, 10);
	out[10] = 0xff;
	out[11] = 0xff;
	memcpy(out + 12, &a4, 4);
	return 0;
}

static int cidr_parse(const char *s, struct rules_net *n)
{
	char buf[64];
	const char *slash = strchr(s, '/');
	size_t alen = slash ? (size_t)(slash - s) : strlen(s);
	bool v4;
	long p;
	char *end;
	int i;

	if (alen == 0 || alen >= sizeof(buf))
		return -1;
	memcpy(buf, s, alen);
	buf[alen] = '\0';
	if (rules_ip_parse(buf, n->addr) < 0)
		return -1;
	v4 = strchr(buf, ':') == NULL;
	if (slash == NULL) {
		n->prefix = 128;
		return 0;
	}
	if (!isdigit((unsigned char)slash[1]))
		return -1;
	p = strtol(slash + 1, &end, 10);
	if (*end != '\0' || p < 0 || p > (v4 ? 32 : 128))
		return -1;
	n->prefix = (int)(v4 ? p + 96 : p);
	/* host bits must be zero: "10.0.0.1/8" is a typo more often than not */
	for (i = n->prefix; i < 128; i++)
		if (n->addr[i / 8] & (0x80 >> (i % 8)))
			return -1;
	return 0;
}

/* JSON string with length bound; NULL when not a string. */
static const char *jstr(const json_t *v, size_t *len)
{
	if (!json_is_string(v))
		return NULL;
	*len = json_string_length(v);
	return json_string_value(v);
}

/*
 * A signed decimal: a JSON number, or a string such as "5", "-0.5" or
 * "+2.5" (digits, at most one '.', no exponent), within [-max, max].
 * g_ascii_strtod: the decimal point is '.' whatever the locale.
 */
static int decimal_of(const json_t *v, double max, double *out)
{
	const char *s;
	size_t len, i, digits = 0, dots = 0;
	double d;

	if (json_is_integer(v)) {
		d = (double)json_integer_value(v);
	} else if (json_is_real(v)) {
		d = json_real_value(v);
	} else {
		s = jstr(v, &len);
		if (s == NULL || len == 0 || len > 32)
			return -1;
		for (i = (s[0] == '-' || s[0] == '+') ? 1 : 0; i < len; i++) {
			if (s[i] == '.' && digits > 0 && dots == 0)
				dots++;
			else if (s[i] >= '0' && s[i] <= '9')
				digits++;
			else
				return -1;
		}
		if (digits == 0 || s[len - 1] == '.')
			return -1;
		d = g_ascii_strtod(s, NULL);
	}
	/* NaN fails both comparisons */
	if (!(d >= -max && d <= max))
		return -1;
	*out = d;
	return 0;
}

/* The export form of a decimal: an integer when it is one, else a real. */
static json_t *decimal_json(double d)
{
	if (d >= -1e15 && d <= 1e15 && d == (double)(int64_t)d)
		return json_integer((json_int_t)d);
	return json_real(d);
}

/* A score part name: 1..RULES_PART_NAME_MAX printable ASCII, no space. */
static bool part_name_ok(const char *s, size_t len)
{
	size_t i;

	if (len == 0 || len > RULES_PART_NAME_MAX)
		return false;
	for (i = 0; i < len; i++)
		if ((unsigned char)s[i] < 33 || (unsigned char)s[i] > 126)
			return false;
	return true;
}

static void cond_free(struct rules_cond *c)
{
	size_t i;

	if (c == NULL)
		return;
	for (i = 0; i < c->nkids; i++)
		cond_free(c->kids[i]);
	free(c->kids);
	free(c->header);
	free(c->part);
	free(c->str);
	free(c->nets);
	json_decref(c->orig_value);
	free(c);
}

static int lookup(const char *const *names, size_t n, const char *s)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (names[i] != NULL && strcmp(names[i], s) == 0)
			return (int)i;
	return -1;
}

static int check_regex(const char *s, size_t len, bool bytes, bool sensitive, const char *path,
		       char *err, size_t errsz)
{
	uint32_t opts = sensitive ? 0 : PCRE2_CASELESS;
	pcre2_code *code;
	int ec;
	PCRE2_SIZE eo;
	PCRE2_UCHAR msg[160];

	if (!bytes)
		opts |= PCRE2_UTF | PCRE2_MATCH_INVALID_UTF;
	code = pcre2_compile((PCRE2_SPTR)s, len, opts, &ec, &eo, NULL);
	if (code == NULL) {
		if (pcre2_get_error_message(ec, msg, sizeof(msg)) < 0)
			strlcpy_s((char *)msg, "unknown error", sizeof(msg));
		return fail(err, errsz, path, "invalid regular expression: %s at offset %zu",
			    (const char *)msg, (size_t)eo);
	}
	pcre2_code_free(code);
	return 0;
}

static int parse_value(const json_t *v, struct rules_cond *c, const struct rules_parse_opts *o,
		       const char *path, char *err, size_t errsz)
{
	size_t vmax = o->value_max > 0 && o->value_max < RULES_VALUE_MAX ? o->value_max :
									   RULES_VALUE_MAX;
	const char *s;
	size_t len, i;

	if (v == NULL)
		return fail(err, errsz, path, "required");
	if (c->field == RF_SCORE || c->field == RF_SCORE_PART) {
		if (decimal_of(v, RULES_SCORE_VALUE_MAX, &c->dnum) < 0)
			return fail(err, errsz, path, "must be a decimal number from -%d to %d "
				    "(e.g. 5, -0.5 or \"7.5\")", RULES_SCORE_VALUE_MAX,
				    RULES_SCORE_VALUE_MAX);
		return 0;
	}
	if (c->field == RF_SIZE || c->field == RF_RECIPIENT_COUNT) {
		if (!json_is_integer(v) || json_integer_value(v) < 0)
			return fail(err, errsz, path, "must be a non-negative integer");
		c->num = json_integer_value(v);
		return 0;
	}
	if (c->op == RO_IN_NETWORK) {
		size_t n = json_is_array(v) ? json_array_size(v) : 1;

		if (!json_is_array(v) && !json_is_string(v))
			return fail(err, errsz, path, "must be a CIDR string or an array of them");
		if (n == 0 || n > RULES_NETWORKS_MAX)
			return fail(err, errsz, path, "must hold 1 to %d networks", RULES_NETWORKS_MAX);
		c->nets = xcalloc(n, sizeof(*c->nets));
		c->nnets = n;
		for (i = 0; i < n; i++) {
			const json_t *e = json_is_array(v) ? json_array_get(v, i) : v;

			s = jstr(e, &len);
			if (s == NULL || len > 64 || cidr_parse(s, &c->nets[i]) < 0) {
				char p[PATH_MAX_LEN];

				if (json_is_array(v)) {
					if (snprintf(p, sizeof(p), "%s[%zu]", path, i) < 0)
						p[0] = '\0';
				} else
					strlcpy_s(p, path, sizeof(p));
				return fail(err, errsz, p, "invalid network (want address/prefix, "
					    "host bits zero)");
			}
		}
		return 0;
	}
	s = jstr(v, &len);
	if (s == NULL)
		return fail(err, errsz, path, "must be a string");
	if (len > vmax)
		return fail(err, errsz, path, "longer than %zu octets", vmax);
	if (memchr(s, '\0', len) != NULL)
		return fail(err, errsz, path, "contains a NUL character");
	if (c->field == RF_IMPORTANCE) {
		if (lookup(importance_names, ARRAY_LEN(importance_names), s) < 0)
			return fail(err, errsz, path, "must be \"high\", \"normal\" or \"low\"");
	} else if (c->op == RO_IN_LIST) {
		if (!ident_ok(s, len))
			return fail(err, errsz, path, "invalid list name (letters, digits, _ . -)");
	} else if (c->field == RF_FLAG) {
		if (!ident_ok(s, len))
			return fail(err, errsz, path, "invalid flag name (letters, digits, _ . -)");
	} else if (c->field == RF_CLIENT_ADDRESS) {
		c->nets = xcalloc(1, sizeof(*c->nets));
		c->nnets = 1;
		if (len > 64 || rules_ip_parse(s, c->nets[0].addr) < 0)
			return fail(err, errsz, path, "invalid IP address");
		c->nets[0].prefix = 128;
	} else if (len == 0 && c->op != RO_IS && c->op != RO_IS_NOT) {
		return fail(err, errsz, path, "must not be empty for %s", rules_op_name(c->op));
	} else if (c->op == RO_MATCHES || c->op == RO_NOT_MATCHES) {
		if (check_regex(s, len, c->field == RF_RAW_BODY, c->sensitive, path, err, errsz) < 0)
			return -1;
	}
	c->str = xstrndup(s, len);
	return 0;
}

static int parse_cond(const json_t *j, const struct rules_parse_opts *o, const char *path,
		      int depth, size_t *leaves, struct rules_cond **out, char *err, size_t errsz);

static int parse_group(const json_t *j, const struct rules_parse_opts *o, const char *key,
		       enum rules_cond_kind kind, const char *path, int depth, size_t *leaves,
		       struct rules_cond *c, char *err, size_t errsz)
{
	const json_t *arr = json_object_get(j, key);
	char p[PATH_MAX_LEN];
	size_t i;

	c->kind = kind;
	if (json_object_size(j) != 1)
		return fail(err, errsz, path, "a group holds only \"%s\"", key);
	if (kind == RC_NOT) {
		subpath(p, sizeof(p), path, key);
		c->kids = xcalloc(1, sizeof(*c->kids));
		c->nkids = 1;
		return parse_cond(arr, o, p, depth + 1, leaves, &c->kids[0], err, errsz);
	}
	if (!json_is_array(arr) || json_array_size(arr) == 0) {
		subpath(p, sizeof(p), path, key);
		return fail(err, errsz, p, "must be a non-empty array of conditions");
	}
	c->nkids = json_array_size(arr);
	c->kids = xcalloc(c->nkids, sizeof(*c->kids));
	for (i = 0; i < c->nkids; i++) {
		subpath_i(p, sizeof(p), path, key, i);
		if (parse_cond(json_array_get(arr, i), o, p, depth + 1, leaves, &c->kids[i], err,
			       errsz) < 0)
			return -1;
	}
	return 0;
}

static int parse_leaf(const json_t *j, const struct rules_parse_opts *o, const char *path,
		      struct rules_cond *c, char *err, size_t errsz)
{
	const char *key, *s;
	const json_t *v;
	char p[PATH_MAX_LEN];
	size_t len;
	int k;

	c->kind = RC_LEAF;
	json_object_foreach((json_t *)j, key, v) {
		if (strcmp(key, "field") != 0 && strcmp(key, "op") != 0 &&
		    strcmp(key, "value") != 0 && strcmp(key, "header") != 0 &&
		    strcmp(key, "name") != 0 && strcmp(key, "case") != 0) {
			subpath(p, sizeof(p), path, key);
			return fail(err, errsz, p, "unknown key (want field, op, value, header, "
				    "name, case; or all, any, not)");
		}
	}
	subpath(p, sizeof(p), path, "field");
	s = jstr(json_object_get(j, "field"), &len);
	if (s == NULL)
		return fail(err, errsz, p, "required string");
	k = lookup(field_names, RF_COUNT_, s);
	if (k < 0 || (o->kind != RULES_KIND_MAILBOX && (k == RF_IMPORTANCE || k == RF_TO_CC)))
		return fail(err, errsz, p, "unknown field \"%.40s\"", s);
	c->field = (enum rules_field)k;

	subpath(p, sizeof(p), path, "op");
	s = jstr(json_object_get(j, "op"), &len);
	if (s == NULL)
		return fail(err, errsz, p, "required string");
	k = lookup(op_names, RO_COUNT_, s);
	/* the long names of the numeric operators; exported as gt and lt */
	if (k < 0 && strcmp(s, "greater_than") == 0)
		k = RO_GT;
	else if (k < 0 && strcmp(s, "less_than") == 0)
		k = RO_LT;
	if (k < 0)
		return fail(err, errsz, p, "unknown operator \"%.40s\"", s);
	c->op = (enum rules_op)k;
	if (!(field_ops[c->field] & (1u << c->op)))
		return fail(err, errsz, p, "operator %s does not apply to field %s",
			    rules_op_name(c->op), rules_field_name(c->field));

	subpath(p, sizeof(p), path, "header");
	v = json_object_get(j, "header");
	if (c->field == RF_HEADER) {
		s = jstr(v, &len);
		if (s == NULL)
			return fail(err, errsz, p, "required for field header");
		if (!header_name_ok(s, len))
			return fail(err, errsz, p, "invalid header name (printable ASCII, no ':', "
				    "1 to 76 characters)");
		c->header = xstrndup(s, len);
	} else if (v != NULL) {
		return fail(err, errsz, p, "only for field header");
	}

	subpath(p, sizeof(p), path, "name");
	v = json_object_get(j, "name");
	if (c->field == RF_SCORE_PART) {
		s = jstr(v, &len);
		if (s == NULL)
			return fail(err, errsz, p, "required for field score_part (a part such as "
				    "BAYES, SPF_FAIL or DNSBL_zone)");
		if (!part_name_ok(s, len))
			return fail(err, errsz, p, "invalid score part name (1 to %d printable "
				    "ASCII characters, no space)", RULES_PART_NAME_MAX);
		c->part = xstrndup(s, len);
	} else if (v != NULL) {
		return fail(err, errsz, p, "only for field score_part");
	}

	subpath(p, sizeof(p), path, "case");
	v = json_object_get(j, "case");
	if (v != NULL) {
		s = jstr(v, &len);
		if (s != NULL && strcmp(s, "sensitive") == 0)
			c->sensitive = true;
		else if (s == NULL || strcmp(s, "insensitive") != 0)
			return fail(err, errsz, p, "must be \"insensitive\" or \"sensitive\"");
	}

	subpath(p, sizeof(p), path, "value");
	v = json_object_get(j, "value");
	if (parse_value(v, c, o, p, err, errsz) < 0)
		return -1;
	/* a decimal given as a string exports as the number it is */
	if (c->field == RF_SCORE || c->field == RF_SCORE_PART)
		c->orig_value = decimal_json(c->dnum);
	else
		c->orig_value = json_deep_copy(v);
	return 0;
}

static int parse_cond(const json_t *j, const struct rules_parse_opts *o, const char *path,
		      int depth, size_t *leaves, struct rules_cond **out, char *err, size_t errsz)
{
	struct rules_cond *c;
	int rc;

	*out = NULL;
	if (!json_is_object(j))
		return fail(err, errsz, path, "must be a condition object");
	if (depth > RULES_DEPTH_MAX)
		return fail(err, errsz, path, "conditions nested deeper than %d", RULES_DEPTH_MAX);
	c = xcalloc(1, sizeof(*c));
	*out = c;
	if (json_object_get(j, "all") != NULL)
		rc = parse_group(j, o, "all", RC_ALL, path, depth, leaves, c, err, errsz);
	else if (json_object_get(j, "any") != NULL)
		rc = parse_group(j, o, "any", RC_ANY, path, depth, leaves, c, err, errsz);
	else if (json_object_get(j, "not") != NULL)
		rc = parse_group(j, o, "not", RC_NOT, path, depth, leaves, c, err, errsz);
	else {
		if (++*leaves > RULES_LEAVES_MAX)
			return fail(err, errsz, path, "more than %d conditions in one rule",
				    RULES_LEAVES_MAX);
		rc = parse_leaf(j, o, path, c, err, errsz);
	}
	return rc;
}

static int reply_text(const json_t *a, const char *path, const char *dflt, char **out,
		      char *err, size_t errsz)
{
	const json_t *v = json_object_get(a, "text");
	char p[PATH_MAX_LEN];
	const char *s;
	size_t len;

	if (v == NULL) {
		*out = xstrdup(dflt);
		return 0;
	}
	subpath(p, sizeof(p), path, "text");
	s = jstr(v, &len);
	if (s == NULL || len == 0 || len > RULES_TEXT_MAX || !text_ok(s, len))
		return fail(err, errsz, p, "must be 1 to %d printable characters", RULES_TEXT_MAX);
	*out = xstrndup(s, len);
	return 0;
}

static int parse_reply(const json_t *a, const char *path, struct rules_action_def *ad,
		       char *err, size_t errsz)
{
	bool defer = ad->type == RULES_ACT_DEFER;
	const json_t *v;
	char p[PATH_MAX_LEN];
	const char *s;
	size_t len;
	unsigned cls, subj, det;
	char tail;

	ad->code = defer ? 451 : 550;
	v = json_object_get(a, "code");
	if (v != NULL) {
		subpath(p, sizeof(p), path, "code");
		if (!json_is_integer(v))
			return fail(err, errsz, p, "must be an integer");
		ad->code = (int)json_integer_value(v);
		if (json_integer_value(v) < 400 || json_integer_value(v) > (defer ? 499 : 599))
			return fail(err, errsz, p, "must be %s", defer ? "4xx" : "4xx or 5xx");
	}
	snprintf(ad->enhanced, sizeof(ad->enhanced), "%d.7.1", ad->code / 100);
	v = json_object_get(a, "enhanced");
	if (v != NULL) {
		subpath(p, sizeof(p), path, "enhanced");
		s = jstr(v, &len);
		if (s == NULL || len >= sizeof(ad->enhanced) ||
		    sscanf(s, "%1u.%3u.%3u%c", &cls, &subj, &det, &tail) != 3 ||
		    strspn(s, "0123456789.") != len)
			return fail(err, errsz, p, "must be an enhanced status code like 5.7.1");
		if ((int)cls != ad->code / 100)
			return fail(err, errsz, p, "class %u does not match reply code %d", cls,
				    ad->code);
		strlcpy_s(ad->enhanced, s, sizeof(ad->enhanced));
	}
	return reply_text(a, path, defer ? "Try again later" : "Message refused by policy",
			  &ad->text, err, errsz);
}

/* The "score" action's points: a signed decimal, not 0, |points| <= RULES_POINTS_MAX. */
static int parse_points(const json_t *a, const char *path, struct rules_action_def *ad,
			char *err, size_t errsz)
{
	char p[PATH_MAX_LEN];
	const json_t *v = json_object_get(a, "points");

	subpath(p, sizeof(p), path, "points");
	if (v == NULL)
		return fail(err, errsz, p, "required (a signed decimal such as 2.5 or -1)");
	if (decimal_of(v, RULES_POINTS_MAX, &ad->points) < 0 ||
	    (ad->points > -RULES_SCORE_EPSILON && ad->points < RULES_SCORE_EPSILON))
		return fail(err, errsz, p, "must be a decimal number from -%d to %d, not 0 "
			    "(e.g. 2.5, -1 or \"+20\")", RULES_POINTS_MAX, RULES_POINTS_MAX);
	return 0;
}

static int parse_action(const json_t *a, const char *path, struct rules_action_def *ad,
			char *err, size_t errsz)
{
	static const char *const allowed[] = {
		[RULES_ACT_REFUSE] = "code enhanced text", [RULES_ACT_DEFER] = "code enhanced text",
		[RULES_ACT_TAG] = "subject_prefix header", [RULES_ACT_REDIRECT] = "address",
		[RULES_ACT_BCC] = "address", [RULES_ACT_QUARANTINE] = "kind",
		[RULES_ACT_SCORE] = "points",
	};
	char p[PATH_MAX_LEN];
	const char *key, *s;
	const json_t *v;
	size_t len;
	int k;

	if (!json_is_object(a))
		return fail(err, errsz, path, "must be an action object");
	subpath(p, sizeof(p), path, "type");
	s = jstr(json_object_get(a, "type"), &len);
	if (s == NULL)
		return fail(err, errsz, p, "required string");
	k = lookup(action_names, ARRAY_LEN(action_names), s);
	if (k <= 0 || (k > RULES_ACT_CONTINUE && k != RULES_ACT_SCORE))
		return fail(err, errsz, p, "unknown action \"%.40s\"", s);
	ad->type = (enum rules_action_type)k;
	json_object_foreach((json_t *)a, key, v) {
		const char *ok = (size_t)k < ARRAY_LEN(allowed) ? allowed[k] : NULL;
		const char *hit;
		size_t kl = strlen(key);

		if (strcmp(key, "type") == 0)
			continue;
		hit = ok ? strstr(ok, key) : NULL;
		if (hit == NULL || (hit[kl] != ' ' && hit[kl] != '\0') ||
		    (hit != ok && hit[-1] != ' ')) {
			subpath(p, sizeof(p), path, key);
			return fail(err, errsz, p, "not a parameter of action %s", s);
		}
	}
	switch (ad->type) {
	case RULES_ACT_REFUSE:
	case RULES_ACT_DEFER:
		return parse_reply(a, path, ad, err, errsz);
	case RULES_ACT_TAG:
		v = json_object_get(a, "subject_prefix");
		if (v != NULL) {
			subpath(p, sizeof(p), path, "subject_prefix");
			s = jstr(v, &len);
			if (s == NULL || len == 0 || len > RULES_NAME_MAX || !text_ok(s, len))
				return fail(err, errsz, p, "must be 1 to %d printable characters",
					    RULES_NAME_MAX);
			ad->subject_prefix = xstrndup(s, len);
		}
		v = json_object_get(a, "header");
		if (v != NULL) {
			const char *colon;

			subpath(p, sizeof(p), path, "header");
			s = jstr(v, &len);
			colon = s ? memchr(s, ':', len) : NULL;
			if (colon == NULL || !header_name_ok(s, (size_t)(colon - s)) ||
			    len > 900 || !text_ok(colon, len - (size_t)(colon - s)))
				return fail(err, errsz, p, "must be \"Name: value\" (name printable "
					    "ASCII without ':', no line breaks)");
			ad->header = xstrndup(s, len);
		}
		if (ad->subject_prefix == NULL && ad->header == NULL)
			return fail(err, errsz, path, "tag needs subject_prefix or header");
		return 0;
	case RULES_ACT_SCORE:
		return parse_points(a, path, ad, err, errsz);
	case RULES_ACT_REDIRECT:
	case RULES_ACT_BCC:
		subpath(p, sizeof(p), path, "address");
		s = jstr(json_object_get(a, "address"), &len);
		if (s == NULL || !address_ok(s, len))
			return fail(err, errsz, p, "must be a mail address local@domain");
		ad->address = xstrndup(s, len);
		return 0;
	case RULES_ACT_QUARANTINE:
		/* The quarantine item's kind: end users may release spam and
		 * policy items (docs/quarantine.md); virus and attachment are
		 * set by the scanners, never by a rule. */
		strlcpy_s(ad->kind, "policy", sizeof(ad->kind));
		v = json_object_get(a, "kind");
		if (v != NULL) {
			subpath(p, sizeof(p), path, "kind");
			s = jstr(v, &len);
			if (s == NULL || (strcmp(s, "spam") != 0 && strcmp(s, "policy") != 0))
				return fail(err, errsz, p, "must be \"spam\" or \"policy\"");
			strlcpy_s(ad->kind, s, sizeof(ad->kind));
		}
		return 0;
	default:
		return 0;
	}
}

/* A folder: UTF-8, '/'-separated segments, none empty, "." or "..". */
static bool folder_ok(const char *s, size_t len)
{
	size_t i, seg = 0;

	if (len == 0 || len > RULES_FOLDER_MAX || !text_ok(s, len) ||
	    !g_utf8_validate(s, (gssize)len, NULL))
		return false;
	for (i = 0; i <= len; i++) {
		if (i < len && s[i] != '/')
			continue;
		if (i == seg || (i - seg == 1 && s[seg] == '.') ||
		    (i - seg == 2 && s[seg] == '.' && s[seg + 1] == '.'))
			return false;
		seg = i + 1;
	}
	return true;
}

static int parse_forward(const json_t *a, const struct rules_parse_opts *o, const char *path,
			 struct rules_action_def *ad, char *err, size_t errsz)
{
	char p[PATH_MAX_LEN], dom[256];
	const char *s, *at;
	size_t len, i;

	subpath(p, sizeof(p), path, "address");
	s = jstr(json_object_get(a, "address"), &len);
	if (s == NULL || !address_ok(s, len))
		return fail(err, errsz, p, "must be a mail address local@domain");
	at = memchr(s, '@', len);
	for (i = 0; at + 1 + i < s + len && i + 1 < sizeof(dom); i++)
		dom[i] = (char)tolower((unsigned char)at[1 + i]);
	dom[i] = '\0';
	if (!o->forward_external && o->is_local != NULL && o->is_local(o->is_local_arg, dom) != 1)
		return fail(err, errsz, p, "forwarding is allowed to local domains only (%s is not "
			    "one; see mailbox_forward_external)", dom);
	ad->address = xstrndup(s, len);
	return 0;
}

static int parse_mailbox_action(const json_t *a, const struct rules_parse_opts *o,
				const char *path, struct rules_action_def *ad, char *err,
				size_t errsz)
{
	char p[PATH_MAX_LEN];
	const char *key, *s, *name, *params = NULL;
	const json_t *v;
	size_t len, nlen, i;

	if (!json_is_object(a))
		return fail(err, errsz, path, "must be an action object");
	subpath(p, sizeof(p), path, "type");
	name = jstr(json_object_get(a, "type"), &len);
	if (name == NULL)
		return fail(err, errsz, p, "required string");
	for (i = 0; i < ARRAY_LEN(mailbox_actions); i++)
		if (strcmp(mailbox_actions[i].name, name) == 0)
			break;
	if (i == ARRAY_LEN(mailbox_actions))
		return fail(err, errsz, p, "unknown action \"%.40s\" (want keep, move, copy, "
			    "forward, forward_copy, quarantine, discard, refuse, tag_subject, "
			    "importance, add_header, stop, score)", name);
	ad->type = mailbox_actions[i].type;
	params = mailbox_actions[i].params;
	json_object_foreach((json_t *)a, key, v) {
		const char *hit;
		size_t kl = strlen(key);

		if (strcmp(key, "type") == 0)
			continue;
		hit = kl > 0 ? strstr(params, key) : NULL;
		if (hit == NULL || (hit[kl] != ' ' && hit[kl] != '\0') ||
		    (hit != params && hit[-1] != ' ')) {
			subpath(p, sizeof(p), path, key);
			return fail(err, errsz, p, "not a parameter of action %s", name);
		}
	}
	switch (ad->type) {
	case RULES_ACT_MOVE:
	case RULES_ACT_COPY:
		subpath(p, sizeof(p), path, "folder");
		s = jstr(json_object_get(a, "folder"), &len);
		if (s == NULL || !folder_ok(s, len))
			return fail(err, errsz, p, "must be a folder name: UTF-8, 1 to %d octets, "
				    "segments separated by '/', none empty or \"..\", no control "
				    "characters", RULES_FOLDER_MAX);
		ad->folder = xstrndup(s, len);
		return 0;
	case RULES_ACT_FORWARD:
	case RULES_ACT_FORWARD_COPY:
		return parse_forward(a, o, path, ad, err, errsz);
	case RULES_ACT_SCORE:
		return parse_points(a, path, ad, err, errsz);
	case RULES_ACT_QUARANTINE:
		/* the recipient's own quarantine, which end users may release */
		strlcpy_s(ad->kind, "spam", sizeof(ad->kind));
		return 0;
	case RULES_ACT_REFUSE:
		ad->code = 550;
		strlcpy_s(ad->enhanced, "5.7.1", sizeof(ad->enhanced));
		return reply_text(a, path, "Message refused by the recipient", &ad->text, err,
				  errsz);
	case RULES_ACT_IMPORTANCE:
		subpath(p, sizeof(p), path, "value");
		s = jstr(json_object_get(a, "value"), &len);
		if (s == NULL || lookup(importance_names, ARRAY_LEN(importance_names), s) < 0)
			return fail(err, errsz, p, "must be \"high\", \"normal\" or \"low\"");
		ad->value = xstrndup(s, len);
		return 0;
	case RULES_ACT_TAG:
		if (strcmp(name, "tag_subject") == 0) {
			subpath(p, sizeof(p), path, "prefix");
			s = jstr(json_object_get(a, "prefix"), &len);
			if (s == NULL || len == 0 || len > RULES_NAME_MAX || !text_ok(s, len))
				return fail(err, errsz, p, "must be 1 to %d printable characters",
					    RULES_NAME_MAX);
			ad->subject_prefix = xstrndup(s, len);
			return 0;
		}
		subpath(p, sizeof(p), path, "name");
		name = jstr(json_object_get(a, "name"), &nlen);
		/* X-Moat-* carry the folder and the forward loop guard downstream */
		if (name == NULL || !header_name_ok(name, nlen) ||
		    (nlen >= 7 && g_ascii_strncasecmp(name, "X-Moat-", 7) == 0))
			return fail(err, errsz, p, "must be a header name (printable ASCII, no ':', "
				    "1 to 76 characters, not X-Moat-*)");
		subpath(p, sizeof(p), path, "value");
		s = jstr(json_object_get(a, "value"), &len);
		if (s == NULL || len > 900 || !text_ok(s, len))
			return fail(err, errsz, p, "must be at most 900 printable characters, no "
				    "line breaks");
		ad->header = xmalloc(nlen + len + 3);
		memcpy(ad->header, name, nlen);
		memcpy(ad->header + nlen, ": ", 2);
		memcpy(ad->header + nlen + 2, s, len);
		ad->header[nlen + len + 2] = '\0';
		return 0;
	default:
		return 0;
	}
}

void rules_action_clear(struct rules_action_def *a)
{
	free(a->text);
	free(a->subject_prefix);
	free(a->header);
	free(a->address);
	free(a->folder);
	free(a->value);
	memset(a, 0, sizeof(*a));
}

void rules_action_copy(struct rules_action_def *dst, const struct rules_action_def *src)
{
	*dst = *src;
	dst->text = src->text ? xstrdup(src->text) : NULL;
	dst->subject_prefix = src->subject_prefix ? xstrdup(src->subject_prefix) : NULL;
	dst->header = src->header ? xstrdup(src->header) : NULL;
	dst->address = src->address ? xstrdup(src->address) : NULL;
	dst->folder = src->folder ? xstrdup(src->folder) : NULL;
	dst->value = src->value ? xstrdup(src->value) : NULL;
}

static void rule_clear(struct rules_rule *r)
{
	size_t i;

	free(r->name);
	cond_free(r->when);
	cond_free(r->except);
	rules_action_clear(&r->action);
	for (i = 0; i < r->nactions; i++)
		rules_action_clear(&r->actions[i]);
	free(r->actions);
	free(r->comment);
	memset(r, 0, sizeof(*r));
}

static int parse_actions(const json_t *v, const struct rules_parse_opts *o, const char *path,
			 struct rules_rule *r, char *err, size_t errsz)
{
	char p[PATH_MAX_LEN];
	size_t i, n;

	if (v == NULL)
		return fail(err, errsz, path, "required");
	n = json_is_array(v) ? json_array_size(v) : 0;
	if (n == 0 || n > RULES_ACTIONS_MAX)
		return fail(err, errsz, path, "must be an array of 1 to %d actions",
			    RULES_ACTIONS_MAX);
	r->actions = xcalloc(n, sizeof(*r->actions));
	r->nactions = n;
	for (i = 0; i < n; i++) {
		if (snprintf(p, sizeof(p), "%s[%zu]", path, i) < 0)
			p[0] = '\0';
		if (parse_mailbox_action(json_array_get(v, i), o, p, &r->actions[i], err,
					 errsz) < 0)
			return -1;
	}
	return 0;
}

static int parse_rule(const json_t *j, const struct rules_parse_opts *o, const char *path,
		      struct rules_rule *r, char *err, size_t errsz)
{
	bool mailbox = o->kind == RULES_KIND_MAILBOX;
	const char *act_key = mailbox ? "actions" : "action";
	char p[PATH_MAX_LEN];
	const char *key, *s;
	const json_t *v;
	size_t len, leaves = 0;

	if (!json_is_object(j))
		return fail(err, errsz, path, "must be a rule object");
	json_object_foreach((json_t *)j, key, v) {
		if (strcmp(key, "name") != 0 && strcmp(key, "enabled") != 0 &&
		    strcmp(key, "when") != 0 && strcmp(key, "except") != 0 &&
		    strcmp(key, act_key) != 0 && strcmp(key, "comment") != 0) {
			subpath(p, sizeof(p), path, key);
			return fail(err, errsz, p, "unknown key (want name, enabled, when, except, "
				    "%s, comment)", act_key);
		}
	}
	subpath(p, sizeof(p), path, "name");
	s = jstr(json_object_get(j, "name"), &len);
	if (s == NULL || len == 0 || len > RULES_NAME_MAX || !text_ok(s, len))
		return fail(err, errsz, p, "must be 1 to %d printable characters", RULES_NAME_MAX);
	r->name = xstrndup(s, len);

	r->enabled = true;
	v = json_object_get(j, "enabled");
	if (v != NULL) {
		subpath(p, sizeof(p), path, "enabled");
		if (!json_is_boolean(v))
			return fail(err, errsz, p, "must be true or false");
		r->enabled = json_is_true(v);
	}
	v = json_object_get(j, "comment");
	if (v != NULL && !json_is_null(v)) {
		subpath(p, sizeof(p), path, "comment");
		s = jstr(v, &len);
		if (s == NULL || len > RULES_COMMENT_MAX || memchr(s, '\0', len) != NULL)
			return fail(err, errsz, p, "must be a string of at most %d octets",
				    RULES_COMMENT_MAX);
		r->comment = xstrndup(s, len);
	}
	subpath(p, sizeof(p), path, "when");
	v = json_object_get(j, "when");
	if (v == NULL)
		return fail(err, errsz, p, "required");
	if (parse_cond(v, o, p, 1, &leaves, &r->when, err, errsz) < 0)
		return -1;
	v = json_object_get(j, "except");
	if (v != NULL && !json_is_null(v)) {
		subpath(p, sizeof(p), path, "except");
		if (parse_cond(v, o, p, 1, &leaves, &r->except, err, errsz) < 0)
			return -1;
	}
	if (mailbox) {
		subpath(p, sizeof(p), path, "actions");
		return parse_actions(json_object_get(j, "actions"), o, p, r, err, errsz);
	}
	subpath(p, sizeof(p), path, "action");
	v = json_object_get(j, "action");
	if (v == NULL)
		return fail(err, errsz, p, "required");
	return parse_action(v, p, &r->action, err, errsz);
}

int rules_def_from_json(const json_t *arr, struct rules_def **out, char *err, size_t errsz)
{
	return rules_def_from_json_opts(arr, &server_opts, out, err, errsz);
}

int rules_def_from_json_opts(const json_t *arr, const struct rules_parse_opts *o,
			     struct rules_def **out, char *err, size_t errsz)
{
	struct rules_def *d;
	char p[64];
	size_t i;

	*out = NULL;
	if (!json_is_array(arr))
		return fail(err, errsz, "rules", "must be an array of rule objects");
	if (json_array_size(arr) > RULES_COUNT_MAX)
		return fail(err, errsz, "rules", "more than %d rules", RULES_COUNT_MAX);
	d = xcalloc(1, sizeof(*d));
	d->kind = o->kind;
	d->n = json_array_size(arr);
	d->rules = xcalloc(d->n ? d->n : 1, sizeof(*d->rules));
	for (i = 0; i < d->n; i++) {
		snprintf(p, sizeof(p), "rules[%zu]", i);
		if (parse_rule(json_array_get(arr, i), o, p, &d->rules[i], err, errsz) < 0) {
			rules_def_free(d);
			return -1;
		}
	}
	*out = d;
	return 0;
}

int rules_def_parse(const char *json, size_t len, struct rules_def **out, char *err,
		    size_t errsz)
{
	return rules_def_parse_kind(json, len, RULES_KIND_SERVER, out, err, errsz);
}

int rules_def_parse_kind(const char *json, size_t len, enum rules_kind kind,
			 struct rules_def **out, char *err, size_t errsz)
{
	struct rules_parse_opts o = { .kind = kind };
	json_error_t jerr;
	json_t *root;
	int rc;

	*out = NULL;
	root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL)
		return fail(err, errsz, "rules", "invalid JSON at line %d column %d: %s", jerr.line,
			    jerr.column, jerr.text);
	rc = rules_def_from_json_opts(root, &o, out, err, errsz);
	json_decref(root);
	return rc;
}

int rules_def_check_one(const json_t *obj, char *err, size_t errsz)
{
	return rules_def_check_one_opts(obj, &server_opts, err, errsz);
}

int rules_def_check_one_opts(const json_t *obj, const struct rules_parse_opts *o, char *err,
			     size_t errsz)
{
	struct rules_rule r;
	int rc;

	memset(&r, 0, sizeof(r));
	rc = parse_rule(obj, o, "rule", &r, err, errsz);
	rule_clear(&r);
	return rc;
}

bool rules_def_has_refuse(const struct rules_def *d)
{
	size_t i, k;

	for (i = 0; d != NULL && i < d->n; i++) {
		const struct rules_rule *r = &d->rules[i];

		if (!r->enabled)
			continue;
		if (r->action.type == RULES_ACT_REFUSE || r->action.type == RULES_ACT_DEFER)
			return true;
		for (k = 0; k < r->nactions; k++)
			if (r->actions[k].type == RULES_ACT_REFUSE)
				return true;
	}
	return false;
}

enum rules_kind rules_def_kind(const struct rules_def *d)
{
	return d ? d->kind : RULES_KIND_SERVER;
}

void rules_def_free(struct rules_def *d)
{
	size_t i;

	if (d == NULL)
		return;
	for (i = 0; i < d->n; i++)
		rule_clear(&d->rules[i]);
	free(d->rules);
	free(d);
}

size_t rules_def_count(const struct rules_def *d)
{
	return d ? d->n : 0;
}

const char *rules_def_name(const struct rules_def *d, size_t i)
{
	return d && i < d->n ? d->rules[i].name : NULL;
}

/* --- export --------------------------------------------------------------- */

static json_t *cond_to_json(const struct rules_cond *c)
{
	json_t *o = json_object(), *arr;
	size_t i;

	switch (c->kind) {
	case RC_ALL:
	case RC_ANY:
		arr = json_array();
		for (i = 0; i < c->nkids; i++)
			json_array_append_new(arr, cond_to_json(c->kids[i]));
		json_object_set_new(o, c->kind == RC_ALL ? "all" : "any", arr);
		break;
	case RC_NOT:
		json_object_set_new(o, "not", cond_to_json(c->kids[0]));
		break;
	case RC_LEAF:
		json_object_set_new(o, "field", json_string(rules_field_name(c->field)));
		if (c->header != NULL)
			json_object_set_new(o, "header", json_string(c->header));
		if (c->part != NULL)
			json_object_set_new(o, "name", json_string(c->part));
		json_object_set_new(o, "op", json_string(rules_op_name(c->op)));
		json_object_set(o, "value", c->orig_value);
		if (c->sensitive)
			json_object_set_new(o, "case", json_string("sensitive"));
		break;
	}
	return o;
}

static json_t *action_to_json(const struct rules_action_def *a)
{
	json_t *o = json_object();

	json_object_set_new(o, "type", json_string(rules_action_name(a->type)));
	if (a->type == RULES_ACT_REFUSE || a->type == RULES_ACT_DEFER) {
		json_object_set_new(o, "code", json_integer(a->code));
		json_object_set_new(o, "enhanced", json_string(a->enhanced));
		json_object_set_new(o, "text", json_string(a->text));
	}
	if (a->subject_prefix != NULL)
		json_object_set_new(o, "subject_prefix", json_string(a->subject_prefix));
	if (a->header != NULL)
		json_object_set_new(o, "header", json_string(a->header));
	if (a->address != NULL)
		json_object_set_new(o, "address", json_string(a->address));
	if (a->type == RULES_ACT_QUARANTINE && a->kind[0] != '\0' && strcmp(a->kind, "policy") != 0)
		json_object_set_new(o, "kind", json_string(a->kind));
	if (a->type == RULES_ACT_SCORE)
		json_object_set_new(o, "points", decimal_json(a->points));
	return o;
}

static json_t *mailbox_action_to_json(const struct rules_action_def *a)
{
	json_t *o = json_object();
	const char *colon;

	switch (a->type) {
	case RULES_ACT_TAG:
		if (a->subject_prefix != NULL) {
			json_object_set_new(o, "type", json_string("tag_subject"));
			json_object_set_new(o, "prefix", json_string(a->subject_prefix));
			break;
		}
		/* stored as "Name: value" by parse_mailbox_action */
		colon = strchr(a->header, ':');
		json_object_set_new(o, "type", json_string("add_header"));
		json_object_set_new(o, "name", json_stringn(a->header, (size_t)(colon - a->header)));
		json_object_set_new(o, "value", json_string(colon + 2));
		break;
	default:
		json_object_set_new(o, "type", json_string(rules_action_name(a->type)));
		if (a->folder != NULL)
			json_object_set_new(o, "folder", json_string(a->folder));
		if (a->address != NULL)
			json_object_set_new(o, "address", json_string(a->address));
		if (a->value != NULL)
			json_object_set_new(o, "value", json_string(a->value));
		if (a->type == RULES_ACT_REFUSE)
			json_object_set_new(o, "text", json_string(a->text));
		if (a->type == RULES_ACT_SCORE)
			json_object_set_new(o, "points", decimal_json(a->points));
		break;
	}
	return o;
}

json_t *rules_def_to_json(const struct rules_def *d)
{
	json_t *arr = json_array();
	size_t i;

	for (i = 0; d != NULL && i < d->n; i++) {
		const struct rules_rule *r = &d->rules[i];
		json_t *o = json_object();

		json_object_set_new(o, "name", json_string(r->name));
		json_object_set_new(o, "enabled", json_boolean(r->enabled));
		json_object_set_new(o, "when", cond_to_json(r->when));
		json_object_set_new(o, "except", r->except ? cond_to_json(r->except) : json_null());
		if (d->kind == RULES_KIND_MAILBOX) {
			json_t *acts = json_array();
			size_t k;

			for (k = 0; k < r->nactions; k++)
				json_array_append_new(acts, mailbox_action_to_json(&r->actions[k]));
			json_object_set_new(o, "actions", acts);
		} else {
			json_object_set_new(o, "action", action_to_json(&r->action));
		}
		if (r->comment != NULL)
			json_object_set_new(o, "comment", json_string(r->comment));
		json_array_append_new(arr, o);
	}
	return arr;
}
