/*
 * rules_sieve: mailbox rules to and from Sieve (RFC 5228).
 *
 * Export writes one `if` per rule, preceded by "# rule: NAME", and ends a
 * rule with `stop` where its actions are final in the gateway (keep, move,
 * forward, discard, refuse, stop), so that the script delivers the message
 * as the gateway would.  Conditions the mail server cannot evaluate at
 * delivery (client address, DNSBL, lists, attachments, the spam score ...)
 * and the gateway's own quarantine and score points are left out with a
 * comment and listed.
 *
 * Import is a small hand-written parser: a tokenizer, a recursive descent
 * into a tree of commands (bounded in input size, depth, nodes and list
 * length), then a walk that turns each top-level `if`/`elsif`/`else` (and
 * actions outside any `if`) into one rule.  A syntax error fails the whole
 * script with its line; a command or test outside the subset is skipped
 * with its line and reason.  Each produced rule is validated by the rule
 * model, so what is returned can be stored as is.
 *
 * Called by the API (http_sieve.c) on an HTTP thread, by the unit tests
 * and by the fuzz harness.  Nothing here does I/O or logs.
 */
#include "rules_sieve.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../util/util.h"

/* An always-false condition: "size under 0"; "not" of it is always true.
 * Export writes `size :under 0`, so both survive a round trip. */
static json_t *cond_false(void)
{
	return json_pack("{s:s, s:s, s:i}", "field", "size", "op", "lt", "value", 0);
}

static json_t *cond_true(void)
{
	return json_pack("{s:o}", "not", cond_false());
}

/* ======================================================================
 * Export
 * ====================================================================== */

enum { EXT_FILEINTO, EXT_COPY, EXT_BODY, EXT_REGEX, EXT_ENVELOPE, EXT_REJECT,
       EXT_EDITHEADER, EXT_VARIABLES, EXT_MAILBOX, EXT_COMPARATOR_OCTET, EXT_COUNT_ };

static const char *const ext_names[EXT_COUNT_] = {
	"fileinto", "copy", "body", "regex", "envelope", "reject", "editheader", "variables",
	"mailbox", "comparator-i;octet",
};

struct exp {
	struct dynbuf out;      /* the rules part of the script */
	bool ext[EXT_COUNT_];   /* extensions the whole script requires */
	bool rext[EXT_COUNT_];  /* extensions of the rule being written */
	char why[200];          /* why the rule being written is left out */
	bool vars;              /* the script requires variables: "${" would expand */
	bool bad_var;           /* the rule being written holds "${" */
};

static void put(struct exp *x, const char *s)
{
	/* the buffer's maximum is far above any set the model accepts */
	(void)dynbuf_add(&x->out, s, strlen(s));
}

/* A quoted string: only '"' and '\' need escaping (RFC 5228 2.4.2). */
static void put_str(struct exp *x, const char *s, size_t len)
{
	size_t i;

	if (x->vars && len >= 2 && memmem(s, len, "${", 2) != NULL)
		x->bad_var = true;
	put(x, "\"");
	for (i = 0; i < len; i++) {
		if (s[i] == '"' || s[i] == '\\')
			(void)dynbuf_add(&x->out, "\\", 1);
		(void)dynbuf_add(&x->out, &s[i], 1);
	}
	put(x, "\"");
}

static void put_cstr(struct exp *x, const char *s)
{
	put_str(x, s, strlen(s));
}

/* The key of a :matches test: '*', '?' and '\' of the value are literal. */
static void put_glob(struct exp *x, const char *s, bool star_before, bool star_after)
{
	struct dynbuf g;
	size_t i, n = strlen(s);

	dynbuf_init(&g, 2 * n + 3);
	if (star_before)
		(void)dynbuf_add(&g, "*", 1);
	for (i = 0; i < n; i++) {
		if (s[i] == '*' || s[i] == '?' || s[i] == '\\')
			(void)dynbuf_add(&g, "\\", 1);
		(void)dynbuf_add(&g, &s[i], 1);
	}
	if (star_after)
		(void)dynbuf_add(&g, "*", 1);
	put_str(x, g.data ? g.data : "", g.len);
	dynbuf_free(&g);
}

static int skip_rule(struct exp *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int skip_rule(struct exp *x, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(x->why, sizeof(x->why), fmt, ap);
	va_end(ap);
	return -1;
}

static const char *positive_op(const char *op, bool *neg)
{
	*neg = true;
	if (strcmp(op, "not_contains") == 0)
		return "contains";
	if (strcmp(op, "is_not") == 0)
		return "is";
	if (strcmp(op, "not_matches") == 0)
		return "matches";
	*neg = false;
	return op;
}

static const char *jget_str(const json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

static int exp_cond(struct exp *x, const json_t *c);

static int exp_group(struct exp *x, const json_t *arr, const char *word)
{
	size_t i;

	if (!json_is_array(arr) || json_array_size(arr) == 0)
		return skip_rule(x, "%s: not a list of conditions", word);
	put(x, word);
	put(x, " (");
	for (i = 0; i < json_array_size(arr); i++) {
		if (i > 0)
			put(x, ", ");
		if (exp_cond(x, json_array_get(arr, i)) < 0)
			return -1;
	}
	put(x, ")");
	return 0;
}

/* The comparator and match type of a positive string operator. */
static int exp_match_tags(struct exp *x, const char *op, bool sensitive)
{
	if (sensitive) {
		put(x, ":comparator \"i;octet\" ");
		x->rext[EXT_COMPARATOR_OCTET] = true;
	}
	if (strcmp(op, "contains") == 0)
		put(x, ":contains ");
	else if (strcmp(op, "is") == 0)
		put(x, ":is ");
	else if (strcmp(op, "starts_with") == 0 || strcmp(op, "ends_with") == 0)
		put(x, ":matches ");
	else if (strcmp(op, "matches") == 0) {
		put(x, ":regex ");
		x->rext[EXT_REGEX] = true;
	} else
		return skip_rule(x, "operator %s has no Sieve match type", op);
	return 0;
}

static void exp_key(struct exp *x, const char *op, const char *v)
{
	if (strcmp(op, "starts_with") == 0)
		put_glob(x, v, false, true);
	else if (strcmp(op, "ends_with") == 0)
		put_glob(x, v, true, false);
	else
		put_cstr(x, v);
}

static int exp_leaf(struct exp *x, const json_t *c)
{
	const char *field = jget_str(c, "field"), *op = jget_str(c, "op");
	const char *cs = jget_str(c, "case"), *v;
	const json_t *val = json_object_get(c, "value");
	bool sensitive = cs != NULL && strcmp(cs, "sensitive") == 0, neg;
	char num[32];

	if (field == NULL || op == NULL)
		return skip_rule(x, "%s", "a condition without field or op");
	if (strcmp(op, "in_list") == 0 || strcmp(op, "in_network") == 0)
		return skip_rule(x, "operator %s has no Sieve test", op);
	if (strcmp(field, "score") == 0 || strcmp(field, "score_part") == 0)
		return skip_rule(x, "field %s (the gateway's spam score) has no Sieve test at "
				 "delivery", field);
	if (strcmp(field, "size") == 0) {
		if (!json_is_integer(val))
			return skip_rule(x, "%s", "size without a number");
		snprintf(num, sizeof(num), "%lld", (long long)json_integer_value(val));
		if (strcmp(op, "gt") == 0 || strcmp(op, "lt") == 0) {
			put(x, op[0] == 'g' ? "size :over " : "size :under ");
			put(x, num);
		} else if (strcmp(op, "is") == 0) {
			put(x, "allof (not size :over ");
			put(x, num);
			put(x, ", not size :under ");
			put(x, num);
			put(x, ")");
		} else if (strcmp(op, "is_not") == 0) {
			put(x, "anyof (size :over ");
			put(x, num);
			put(x, ", size :under ");
			put(x, num);
			put(x, ")");
		} else {
			return skip_rule(x, "size operator %s has no Sieve test", op);
		}
		return 0;
	}
	v = json_string_value(val);
	if (v == NULL)
		return skip_rule(x, "field %s without a string value", field);
	if (strcmp(field, "header") != 0 && strcmp(field, "sender") != 0 &&
	    strcmp(field, "recipient") != 0 && strcmp(field, "to_cc") != 0 &&
	    strcmp(field, "body") != 0 && strcmp(field, "raw_body") != 0)
		return skip_rule(x, "field %s has no Sieve test at delivery", field);
	op = positive_op(op, &neg);
	if (neg)
		put(x, "not ");
	if (strcmp(field, "header") == 0) {
		const char *h = jget_str(c, "header");

		if (h == NULL)
			return skip_rule(x, "%s", "header condition without a header name");
		put(x, "header ");
		if (exp_match_tags(x, op, sensitive) < 0)
			return -1;
		put_cstr(x, h);
	} else if (strcmp(field, "sender") == 0 || strcmp(field, "recipient") == 0) {
		put(x, "envelope ");
		x->rext[EXT_ENVELOPE] = true;
		if (exp_match_tags(x, op, sensitive) < 0)
			return -1;
		put(x, field[0] == 's' ? "\"from\"" : "\"to\"");
	} else if (strcmp(field, "to_cc") == 0) {
		put(x, "address ");
		if (exp_match_tags(x, op, sensitive) < 0)
			return -1;
		put(x, "[\"to\", \"cc\"]");
	} else {
		put(x, "body ");
		x->rext[EXT_BODY] = true;
		if (exp_match_tags(x, op, sensitive) < 0)
			return -1;
		put(x, field[0] == 'b' ? ":text" : ":raw");
	}
	put(x, " ");
	exp_key(x, op, v);
	return 0;
}

static int exp_cond(struct exp *x, const json_t *c)
{
	const json_t *g;

	if (!json_is_object(c))
		return skip_rule(x, "%s", "a condition that is not an object");
	if ((g = json_object_get(c, "all")) != NULL)
		return exp_group(x, g, "allof");
	if ((g = json_object_get(c, "any")) != NULL)
		return exp_group(x, g, "anyof");
	if ((g = json_object_get(c, "not")) != NULL) {
		put(x, "not ");
		return exp_cond(x, g);
	}
	return exp_leaf(x, c);
}

/* One action; *final when the gateway stops after it. */
static int exp_action(struct exp *x, const json_t *a, bool *final)
{
	const char *t = jget_str(a, "type");

	*final = false;
	if (t == NULL)
		return skip_rule(x, "%s", "an action without type");
	put(x, "    ");
	if (strcmp(t, "keep") == 0) {
		put(x, "keep;\n");
		*final = true;
	} else if (strcmp(t, "move") == 0 || strcmp(t, "copy") == 0) {
		const char *f = jget_str(a, "folder");

		if (f == NULL)
			return skip_rule(x, "%s", "a folder action without folder");
		x->rext[EXT_FILEINTO] = true;
		x->rext[EXT_MAILBOX] = true;
		put(x, "fileinto :create ");
		if (t[0] == 'c') {
			put(x, ":copy ");
			x->rext[EXT_COPY] = true;
		}
		put_cstr(x, f);
		put(x, ";\n");
		*final = t[0] == 'm';
	} else if (strcmp(t, "forward") == 0 || strcmp(t, "forward_copy") == 0) {
		const char *ad = jget_str(a, "address");

		if (ad == NULL)
			return skip_rule(x, "%s", "a forward without address");
		put(x, "redirect ");
		if (t[7] == '_') {
			put(x, ":copy ");
			x->rext[EXT_COPY] = true;
		}
		put_cstr(x, ad);
		put(x, ";\n");
		*final = t[7] != '_';
	} else if (strcmp(t, "discard") == 0) {
		put(x, "discard;\n");
		*final = true;
	} else if (strcmp(t, "refuse") == 0) {
		const char *tx = jget_str(a, "text");

		x->rext[EXT_REJECT] = true;
		put(x, "reject ");
		put_cstr(x, tx ? tx : "Message refused by the recipient");
		put(x, ";\n");
		*final = true;
	} else if (strcmp(t, "stop") == 0) {
		put(x, "stop;\n");
		*final = true;
	} else if (strcmp(t, "add_header") == 0) {
		const char *n = jget_str(a, "name"), *v = jget_str(a, "value");

		if (n == NULL || v == NULL)
			return skip_rule(x, "%s", "add_header without name or value");
		x->rext[EXT_EDITHEADER] = true;
		put(x, "addheader ");
		put_cstr(x, n);
		put(x, " ");
		put_cstr(x, v);
		put(x, ";\n");
	} else if (strcmp(t, "importance") == 0) {
		const char *v = jget_str(a, "value");

		if (v == NULL)
			return skip_rule(x, "%s", "importance without value");
		x->rext[EXT_EDITHEADER] = true;
		put(x, "deleteheader \"Importance\";\n    addheader \"Importance\" ");
		put_cstr(x, v);
		put(x, ";\n");
	} else if (strcmp(t, "tag_subject") == 0) {
		const char *p = jget_str(a, "prefix");

		if (p == NULL)
			return skip_rule(x, "%s", "tag_subject without prefix");
		/* ${1} is what "*" matched: the whole subject */
		x->rext[EXT_EDITHEADER] = true;
		x->rext[EXT_VARIABLES] = true;
		put(x, "if header :matches \"Subject\" \"*\" {\n"
		       "        deleteheader \"Subject\";\n        addheader \"Subject\" ");
		put_str(x, p, strlen(p));
		/* the prefix itself must not be expanded: checked by put_str */
		x->out.len--;
		put(x, "${1}\";\n    }\n");
	} else {
		return skip_rule(x, "action %s has no Sieve equivalent at the mail server", t);
	}
	return 0;
}

static bool set_uses_vars(const json_t *rules)
{
	size_t i, j;
	const json_t *r, *a;

	json_array_foreach(rules, i, r) {
		json_array_foreach(json_object_get(r, "actions"), j, a) {
			const char *t = jget_str(a, "type");

			if (t != NULL && strcmp(t, "tag_subject") == 0)
				return true;
		}
	}
	return false;
}

/* One rule at the end of x->out, or -1 with x->why (x->out is then cut back). */
static int exp_rule(struct exp *x, const json_t *r)
{
	const json_t *when = json_object_get(r, "when"), *except = json_object_get(r, "except");
	const json_t *acts = json_object_get(r, "actions"), *a;
	const char *name = jget_str(r, "name");
	bool disabled = json_is_false(json_object_get(r, "enabled")), final = false;
	size_t i;

	if (name == NULL || strchr(name, '\n') != NULL || strchr(name, '\r') != NULL)
		return skip_rule(x, "%s", "a rule without a one-line name");
	if (!json_is_array(acts) || json_array_size(acts) == 0)
		return skip_rule(x, "%s", "a rule without actions");
	/* also after the deciding action, where the loop below stops: the rule is left out whole */
	json_array_foreach(acts, i, a) {
		const char *t = jget_str(a, "type");

		if (t != NULL && strcmp(t, "score") == 0)
			return skip_rule(x, "%s", "action score (points for the gateway's spam score) "
					 "has no Sieve equivalent at the mail server");
	}
	put(x, "# rule: ");
	put(x, name);
	put(x, "\nif ");
	/* A disabled rule stays in the script and never runs: "allof (false, ...)". */
	if (disabled)
		put(x, "allof (false, ");
	if (except != NULL && !json_is_null(except)) {
		put(x, "allof (");
		if (exp_cond(x, when) < 0)
			return -1;
		/* "not anyof (E)" rather than "not E" so that import finds the except part */
		put(x, ", not anyof (");
		if (exp_cond(x, except) < 0)
			return -1;
		put(x, "))");
	} else if (exp_cond(x, when) < 0) {
		return -1;
	}
	if (disabled)
		put(x, ")");
	put(x, " {\n");
	json_array_foreach(acts, i, a) {
		if (exp_action(x, a, &final) < 0)
			return -1;
		if (final)
			break;
	}
	/* every final action stops the gateway's walk; Sieve goes on unless told */
	if (final && strcmp(jget_str(json_array_get(acts, i), "type"), "stop") != 0)
		put(x, "    stop;\n");
	put(x, "}\n");
	if (x->bad_var)
		return skip_rule(x, "%s", "a value holds \"${\", which Sieve variables would "
			    "expand");
	return 0;
}

char *rules_sieve_export(const json_t *rules, json_t **skipped)
{
	struct exp x;
	struct dynbuf all;
	const json_t *r;
	size_t i, k;
	bool any = false;

	*skipped = NULL;
	if (!json_is_array(rules))
		return NULL;
	memset(&x, 0, sizeof(x));
	dynbuf_init(&x.out, SIZE_MAX / 2);
	*skipped = json_array();
	x.vars = set_uses_vars(rules);
	json_array_foreach(rules, i, r) {
		size_t mark = x.out.len;
		const char *name = jget_str(r, "name");

		memset(x.rext, 0, sizeof(x.rext));
		x.bad_var = false;
		x.why[0] = '\0';
		if (exp_rule(&x, r) < 0) {
			x.out.len = mark;
			json_array_append_new(*skipped,
					      json_pack("{s:I, s:s, s:s}", "rule", (json_int_t)i,
							"name", name ? name : "", "reason", x.why));
			put(&x, "# not exported: rule ");
			for (k = 0; name != NULL && name[k] != '\0'; k++)
				if (name[k] != '\n' && name[k] != '\r')
					(void)dynbuf_add(&x.out, &name[k], 1);
			put(&x, ": ");
			put(&x, x.why);
			put(&x, "\n");
			continue;
		}
		any = true;
		for (k = 0; k < EXT_COUNT_; k++)
			x.ext[k] = x.ext[k] || x.rext[k];
	}
	dynbuf_init(&all, SIZE_MAX / 2);
	(void)dynbuf_addf(&all, "# Sieve script (RFC 5228) exported by Moat from %zu mailbox "
			  "rules.\n", json_array_size(rules));
	if (any) {
		bool first = true;

		(void)dynbuf_add(&all, "require [", 9);
		for (k = 0; k < EXT_COUNT_; k++) {
			if (!x.ext[k])
				continue;
			(void)dynbuf_addf(&all, "%s\"%s\"", first ? "" : ", ", ext_names[k]);
			first = false;
		}
		(void)dynbuf_add(&all, "];\n", 3);
		/* "require [];" is not valid Sieve: a set of keep/discard rules needs none */
		if (first)
			all.len -= 12;
	}
	(void)dynbuf_add(&all, "\n", 1);
	if (x.out.len > 0)
		(void)dynbuf_add(&all, x.out.data, x.out.len);
	(void)dynbuf_add(&all, "", 1);
	dynbuf_free(&x.out);
	return all.data;
}

/* ======================================================================
 * Import: tokenizer
 * ====================================================================== */

enum tok { T_EOF, T_IDENT, T_TAG, T_NUM, T_STR, T_LBRACK, T_RBRACK, T_LPAREN, T_RPAREN,
	   T_LBRACE, T_RBRACE, T_SEMI, T_COMMA };

struct lex {
	const char *p, *end;
	unsigned line;
	/* the current token */
	enum tok t;
	unsigned tline;
	char *s;                /* ident, tag (without ':'), string: malloc'ed */
	size_t slen;
	int64_t num;
	char *note;             /* "# rule: NAME" seen just before this token */
	char *pending;          /* the last such comment not yet attached */
	size_t nodes;
	struct rules_sieve_err *e;
};

static int lex_fail(struct lex *l, unsigned line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int lex_fail(struct lex *l, unsigned line, const char *fmt, ...)
{
	va_list ap;

	l->e->line = line;
	va_start(ap, fmt);
	vsnprintf(l->e->msg, sizeof(l->e->msg), fmt, ap);
	va_end(ap);
	return -1;
}

/* Skip white space and comments; remember a "# rule: NAME" comment. */
static int lex_space(struct lex *l)
{
	while (l->p < l->end) {
		char c = *l->p;

		if (c == '\n') {
			l->line++;
			l->p++;
		} else if (c == ' ' || c == '\t' || c == '\r') {
			l->p++;
		} else if (c == '#') {
			const char *eol = memchr(l->p, '\n', (size_t)(l->end - l->p));
			const char *stop = eol ? eol : l->end;
			const char *b = l->p + 1;

			while (b < stop && *b == ' ')
				b++;
			if ((size_t)(stop - b) > 6 && memcmp(b, "rule: ", 6) == 0) {
				size_t n = (size_t)(stop - b - 6), k;
				bool ok = true;

				if (n > 0 && b[6 + n - 1] == '\r')
					n--;
				/* the name as export wrote it; control bytes: not a name */
				for (k = 0; k < n; k++)
					if ((unsigned char)b[6 + k] < 0x20 || b[6 + k] == 0x7f)
						ok = false;
				free(l->pending);
				l->pending = ok && n > 0 && n <= RULES_NAME_MAX ?
					     xstrndup(b + 6, n) : NULL;
			}
			l->p = stop;
		} else if (c == '/' && l->p + 1 < l->end && l->p[1] == '*') {
			unsigned start = l->line;

			l->p += 2;
			for (;;) {
				if (l->p + 1 >= l->end)
					return lex_fail(l, start, "%s", "unterminated /* comment");
				if (*l->p == '\n')
					l->line++;
				if (l->p[0] == '*' && l->p[1] == '/')
					break;
				l->p++;
			}
			l->p += 2;
		} else {
			break;
		}
	}
	return 0;
}

static int lex_quoted(struct lex *l)
{
	struct dynbuf b;
	unsigned start = l->line;

	dynbuf_init(&b, RULES_SIEVE_INPUT_MAX);
	l->p++;
	for (;;) {
		char c;

		if (l->p >= l->end) {
			dynbuf_free(&b);
			return lex_fail(l, start, "%s", "unterminated string");
		}
		c = *l->p++;
		if (c == '"')
			break;
		if (c == '\\') {
			if (l->p >= l->end)
				continue;
			c = *l->p++;
		}
		if (c == '\n')
			l->line++;
		(void)dynbuf_add(&b, &c, 1);
	}
	(void)dynbuf_add(&b, "", 1);
	l->slen = b.len - 1;
	l->s = b.data;
	return 0;
}

/* text: ... CRLF "." CRLF, with dot-stuffing (RFC 5228 2.4.2). */
static int lex_multiline(struct lex *l)
{
	struct dynbuf b;
	unsigned start = l->line;
	const char *eol;

	l->p += 5;
	while (l->p < l->end && (*l->p == ' ' || *l->p == '\t'))
		l->p++;
	if (l->p < l->end && *l->p == '#') {
		eol = memchr(l->p, '\n', (size_t)(l->end - l->p));
		l->p = eol ? eol : l->end;
	}
	if (l->p < l->end && *l->p == '\r')
		l->p++;
	if (l->p >= l->end || *l->p != '\n')
		return lex_fail(l, start, "%s", "text: must end its line");
	l->p++;
	l->line++;
	dynbuf_init(&b, RULES_SIEVE_INPUT_MAX);
	for (;;) {
		const char *s = l->p;
		size_t n;

		if (s >= l->end) {
			dynbuf_free(&b);
			return lex_fail(l, start, "%s", "unterminated text: (no line with a lone \".\")");
		}
		eol = memchr(s, '\n', (size_t)(l->end - s));
		n = eol ? (size_t)(eol - s) : (size_t)(l->end - s);
		l->p = eol ? eol + 1 : l->end;
		l->line++;
		if (n > 0 && s[n - 1] == '\r')
			n--;
		if (n == 1 && s[0] == '.')
			break;
		if (n > 0 && s[0] == '.') {
			s++;
			n--;
		}
		(void)dynbuf_add(&b, s, n);
		(void)dynbuf_add(&b, "\r\n", 2);
	}
	l->line--;      /* the line of "." ends the token; its newline is counted */
	(void)dynbuf_add(&b, "", 1);
	l->slen = b.len - 1;
	l->s = b.data;
	return 0;
}

static int lex_next(struct lex *l)
{
	char c;

	free(l->s);
	l->s = NULL;
	free(l->note);
	l->note = NULL;
	if (lex_space(l) < 0)
		return -1;
	l->tline = l->line;
	l->note = l->pending;
	l->pending = NULL;
	if (++l->nodes > RULES_SIEVE_NODES_MAX)
		return lex_fail(l, l->line, "more than %s tokens", "1000000");
	if (l->p >= l->end) {
		l->t = T_EOF;
		return 0;
	}
	c = *l->p;
	switch (c) {
	case '[': l->t = T_LBRACK; l->p++; return 0;
	case ']': l->t = T_RBRACK; l->p++; return 0;
	case '(': l->t = T_LPAREN; l->p++; return 0;
	case ')': l->t = T_RPAREN; l->p++; return 0;
	case '{': l->t = T_LBRACE; l->p++; return 0;
	case '}': l->t = T_RBRACE; l->p++; return 0;
	case ';': l->t = T_SEMI; l->p++; return 0;
	case ',': l->t = T_COMMA; l->p++; return 0;
	case '"':
		l->t = T_STR;
		return lex_quoted(l);
	default:
		break;
	}
	if (isdigit((unsigned char)c)) {
		int64_t v = 0, mul = 1;

		while (l->p < l->end && isdigit((unsigned char)*l->p)) {
			if (v > (INT64_MAX - 9) / 10)
				return lex_fail(l, l->line, "%s", "number too large");
			v = v * 10 + (*l->p++ - '0');
		}
		if (l->p < l->end && strchr("KkMmGg", *l->p) != NULL && *l->p != '\0') {
			char q = (char)toupper((unsigned char)*l->p++);

			mul = q == 'K' ? 1024 : q == 'M' ? 1024 * 1024 : 1024 * 1024 * 1024;
		}
		if (v > INT64_MAX / mul)
			return lex_fail(l, l->line, "%s", "number too large");
		l->num = v * mul;
		l->t = T_NUM;
		return 0;
	}
	if (c == ':' || isalpha((unsigned char)c) || c == '_') {
		const char *s = c == ':' ? l->p + 1 : l->p;
		const char *q = s;

		while (q < l->end && (isalnum((unsigned char)*q) || *q == '_'))
			q++;
		if (q == s)
			return lex_fail(l, l->line, "%s", "':' without a tag name");
		if (q - s > 64)
			return lex_fail(l, l->line, "%s", "identifier longer than 64 characters");
		if (c != ':' && q - s == 4 && memcmp(s, "text", 4) == 0 && q < l->end &&
		    *q == ':') {
			l->t = T_STR;
			return lex_multiline(l);
		}
		l->s = xstrndup(s, (size_t)(q - s));
		l->slen = (size_t)(q - s);
		l->t = c == ':' ? T_TAG : T_IDENT;
		l->p = q;
		return 0;
	}
	if ((unsigned char)c >= 0x20 && (unsigned char)c < 0x7f) {
		char what[2] = { c, '\0' };

		return lex_fail(l, l->line, "unexpected character '%s'", what);
	}
	return lex_fail(l, l->line, "%s", "unexpected byte outside a string");
}

/* ======================================================================
 * Import: the command tree
 * ====================================================================== */

enum arg_kind { A_TAG, A_NUM, A_STRS };

struct sarg {
	enum arg_kind k;
	char *tag;
	int64_t num;
	char **s;
	size_t *slen;
	size_t ns;
};

struct scmd {
	char *name;
	unsigned line;
	char *note;
	struct sarg *args;
	size_t nargs;
	struct scmd **tests;
	size_t ntests;
	bool block;
	struct scmd **kids;     /* the block's commands */
	size_t nkids;
};

static void scmd_free(struct scmd *c)
{
	size_t i, j;

	if (c == NULL)
		return;
	for (i = 0; i < c->nargs; i++) {
		free(c->args[i].tag);
		for (j = 0; j < c->args[i].ns; j++)
			free(c->args[i].s[j]);
		free(c->args[i].s);
		free(c->args[i].slen);
	}
	free(c->args);
	for (i = 0; i < c->ntests; i++)
		scmd_free(c->tests[i]);
	free(c->tests);
	for (i = 0; i < c->nkids; i++)
		scmd_free(c->kids[i]);
	free(c->kids);
	free(c->name);
	free(c->note);
	free(c);
}

static void push_ptr(void *arrp, size_t *n, void *item)
{
	void ***arr = arrp;

	*arr = xrealloc(*arr, (*n + 1) * sizeof(**arr));
	(*arr)[(*n)++] = item;
}

static int parse_test(struct lex *l, int depth, struct scmd **out);

static int expect(struct lex *l, enum tok t, const char *what)
{
	if (l->t != t)
		return lex_fail(l, l->tline, "expected %s", what);
	return lex_next(l);
}

/* arguments: tags, numbers, strings and string lists */
static int parse_args(struct lex *l, struct scmd *c)
{
	for (;;) {
		struct sarg a;

		memset(&a, 0, sizeof(a));
		if (l->t == T_TAG) {
			a.k = A_TAG;
			a.tag = l->s;
			l->s = NULL;
		} else if (l->t == T_NUM) {
			a.k = A_NUM;
			a.num = l->num;
		} else if (l->t == T_STR) {
			a.k = A_STRS;
			a.s = xmalloc(sizeof(*a.s));
			a.slen = xmalloc(sizeof(*a.slen));
			a.s[0] = l->s;
			a.slen[0] = l->slen;
			a.ns = 1;
			l->s = NULL;
		} else if (l->t == T_LBRACK) {
			a.k = A_STRS;
			c->args = xrealloc(c->args, (c->nargs + 1) * sizeof(*c->args));
			c->args[c->nargs++] = a;
			if (lex_next(l) < 0)
				return -1;
			for (;;) {
				struct sarg *p = &c->args[c->nargs - 1];

				if (l->t != T_STR)
					return lex_fail(l, l->tline, "%s", "expected a string in [ ]");
				if (p->ns >= RULES_SIEVE_LIST_MAX)
					return lex_fail(l, l->tline, "%s", "more than 1024 strings in "
							"one list");
				p->s = xrealloc(p->s, (p->ns + 1) * sizeof(*p->s));
				p->slen = xrealloc(p->slen, (p->ns + 1) * sizeof(*p->slen));
				p->s[p->ns] = l->s;
				p->slen[p->ns++] = l->slen;
				l->s = NULL;
				if (lex_next(l) < 0)
					return -1;
				if (l->t == T_RBRACK)
					break;
				if (expect(l, T_COMMA, "',' or ']' in a string list") < 0)
					return -1;
			}
			if (lex_next(l) < 0)
				return -1;
			continue;
		} else {
			return 0;
		}
		c->args = xrealloc(c->args, (c->nargs + 1) * sizeof(*c->args));
		c->args[c->nargs++] = a;
		if (lex_next(l) < 0)
			return -1;
	}
}

/* after the arguments: one test, or a test list in ( ) */
static int parse_tests(struct lex *l, int depth, struct scmd *c)
{
	struct scmd *t;

	if (l->t == T_LPAREN) {
		if (lex_next(l) < 0)
			return -1;
		for (;;) {
			int rc = parse_test(l, depth + 1, &t);

			if (t != NULL)
				push_ptr(&c->tests, &c->ntests, t);
			if (rc < 0)
				return -1;
			if (l->t == T_RPAREN)
				break;
			if (expect(l, T_COMMA, "',' or ')' in a test list") < 0)
				return -1;
		}
		return lex_next(l);
	}
	if (l->t == T_IDENT) {
		int rc = parse_test(l, depth + 1, &t);

		if (t != NULL)
			push_ptr(&c->tests, &c->ntests, t);
		if (rc < 0)
			return -1;
	}
	return 0;
}

static int parse_test(struct lex *l, int depth, struct scmd **out)
{
	struct scmd *c;

	*out = NULL;
	if (depth > RULES_SIEVE_DEPTH_MAX)
		return lex_fail(l, l->tline, "%s", "tests nested deeper than 32");
	if (l->t != T_IDENT)
		return lex_fail(l, l->tline, "%s", "expected a test");
	c = xcalloc(1, sizeof(*c));
	*out = c;
	c->name = l->s;
	l->s = NULL;
	c->line = l->tline;
	if (lex_next(l) < 0 || parse_args(l, c) < 0 || parse_tests(l, depth, c) < 0)
		return -1;
	return 0;
}

static int parse_block(struct lex *l, int depth, struct scmd ***kids, size_t *nkids);

static int parse_command(struct lex *l, int depth, struct scmd **out)
{
	struct scmd *c;

	*out = NULL;
	if (l->t != T_IDENT)
		return lex_fail(l, l->tline, "%s", "expected a command");
	c = xcalloc(1, sizeof(*c));
	*out = c;
	c->name = l->s;
	l->s = NULL;
	c->note = l->note;
	l->note = NULL;
	c->line = l->tline;
	if (lex_next(l) < 0 || parse_args(l, c) < 0 || parse_tests(l, depth, c) < 0)
		return -1;
	if (l->t == T_SEMI)
		return lex_next(l);
	if (l->t != T_LBRACE)
		return lex_fail(l, l->tline, "expected ';' or '{' after command %s", c->name);
	c->block = true;
	if (lex_next(l) < 0)
		return -1;
	if (parse_block(l, depth + 1, &c->kids, &c->nkids) < 0)
		return -1;
	return expect(l, T_RBRACE, "'}'");
}

/* commands until '}' or the end */
static int parse_block(struct lex *l, int depth, struct scmd ***kids, size_t *nkids)
{
	if (depth > RULES_SIEVE_DEPTH_MAX)
		return lex_fail(l, l->tline, "%s", "blocks nested deeper than 32");
	while (l->t != T_RBRACE && l->t != T_EOF) {
		struct scmd *c;
		int rc = parse_command(l, depth, &c);

		if (c != NULL)
			push_ptr(kids, nkids, c);
		if (rc < 0)
			return -1;
	}
	return 0;
}

/* ======================================================================
 * Import: commands to rules
 * ====================================================================== */

struct imp {
	json_t *rules;
	json_t *skipped;
	json_t *lines;          /* the line of each of rules */
	const struct rules_parse_opts *o;
	char why[240];
	unsigned why_line;
};

static void imp_skip(struct imp *m, unsigned line, const char *reason)
{
	json_array_append_new(m->skipped, json_pack("{s:I, s:s}", "line", (json_int_t)line,
						    "reason", reason));
}

/* Fills m->why for the caller to skip with; returns NULL for chaining. */
static json_t *imp_why(struct imp *m, unsigned line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static json_t *imp_why(struct imp *m, unsigned line, const char *fmt, ...)
{
	va_list ap;

	m->why_line = line;
	va_start(ap, fmt);
	vsnprintf(m->why, sizeof(m->why), fmt, ap);
	va_end(ap);
	return NULL;
}

struct targs {
	const char *match;          /* is contains matches regex */
	const char *addrpart;       /* all localpart domain */
	const char *comparator;
	const char *transform;      /* body: text raw content */
	const char *size;           /* over under */
	const char *bad;            /* a tag outside the subset */
	const struct sarg *pos[3];
	size_t npos;
	int64_t num;
	bool hasnum;
};

static void targs_read(const struct scmd *t, struct targs *a)
{
	size_t i;

	memset(a, 0, sizeof(*a));
	a->match = "is";
	a->addrpart = "all";
	a->transform = "text";
	for (i = 0; i < t->nargs; i++) {
		const struct sarg *g = &t->args[i];
		const char *tag = g->tag;

		if (g->k == A_NUM) {
			a->num = g->num;
			a->hasnum = true;
		} else if (g->k == A_STRS) {
			if (a->npos < ARRAY_LEN(a->pos))
				a->pos[a->npos++] = g;
			else
				a->bad = "too many arguments";
		} else if (strcmp(tag, "is") == 0 || strcmp(tag, "contains") == 0 ||
			   strcmp(tag, "matches") == 0 || strcmp(tag, "regex") == 0) {
			a->match = tag;
		} else if (strcmp(tag, "all") == 0 || strcmp(tag, "localpart") == 0 ||
			   strcmp(tag, "domain") == 0) {
			a->addrpart = tag;
		} else if (strcmp(tag, "text") == 0 || strcmp(tag, "raw") == 0) {
			a->transform = tag;
		} else if (strcmp(tag, "over") == 0 || strcmp(tag, "under") == 0) {
			a->size = tag;
		} else if (strcmp(tag, "comparator") == 0 && i + 1 < t->nargs &&
			   t->args[i + 1].k == A_STRS && t->args[i + 1].ns == 1) {
			a->comparator = t->args[++i].s[0];
		} else {
			a->bad = tag;
		}
	}
}

static bool has_nul(const struct sarg *g)
{
	size_t i;

	for (i = 0; i < g->ns; i++)
		if (strlen(g->s[i]) != g->slen[i])
			return true;
	return false;
}

/* A :matches key as an operator and value (malloc'ed); regex when needed. */
static void glob_to_op(const char *s, size_t n, const char **op, char **val)
{
	struct dynbuf lit, re;
	size_t i, nwild = 0, nstar = 0;
	bool lead = false, trail = false, q = false;

	dynbuf_init(&lit, n + 1);
	dynbuf_init(&re, 2 * n + 3);
	(void)dynbuf_add(&re, "^", 1);
	for (i = 0; i < n; i++) {
		char c = s[i];

		if (c == '\\' && i + 1 < n) {
			c = s[++i];
		} else if (c == '*' || c == '?') {
			nwild++;
			if (c == '?')
				q = true;
			else
				nstar++;
			if (c == '*' && i == 0)
				lead = true;
			if (c == '*' && i == n - 1)
				trail = true;
			(void)dynbuf_add(&re, c == '*' ? ".*" : ".", c == '*' ? 2 : 1);
			continue;
		}
		(void)dynbuf_add(&lit, &c, 1);
		if (strchr("\\^$.|?*+()[]{}", c) != NULL)
			(void)dynbuf_add(&re, "\\", 1);
		(void)dynbuf_add(&re, &c, 1);
	}
	(void)dynbuf_add(&re, "$", 2);
	(void)dynbuf_add(&lit, "", 1);
	*op = "matches";
	if (!q && lit.len > 1 && nwild == nstar) {
		if (nwild == 0)
			*op = "is";
		else if (nwild == 1 && trail && !lead)
			*op = "starts_with";
		else if (nwild == 1 && lead && !trail)
			*op = "ends_with";
		else if (nwild == 2 && lead && trail)
			*op = "contains";
	} else if (nwild == 0) {
		*op = "is";
	}
	if (strcmp(*op, "matches") == 0) {
		*val = re.data;
		dynbuf_free(&lit);
	} else {
		*val = lit.data;
		dynbuf_free(&re);
	}
}

/* One leaf for a positive match type; NULL with m->why. */
static json_t *imp_leaf(struct imp *m, unsigned line, const char *field, const char *header,
			const char *match, const char *s, size_t n, bool sensitive)
{
	json_t *o;
	const char *op = "is";
	char *v = NULL;

	if (strcmp(match, "matches") == 0) {
		glob_to_op(s, n, &op, &v);
	} else {
		op = strcmp(match, "regex") == 0 ? "matches" : match;
		v = xstrndup(s, n);
	}
	if (v[0] == '\0' && strcmp(op, "is") != 0) {
		free(v);
		return imp_why(m, line, "%s", "an empty key matches every message: not imported");
	}
	o = json_pack("{s:s, s:s, s:s}", "field", field, "op", op, "value", v);
	free(v);
	if (o == NULL)
		return imp_why(m, line, "%s", "a key that is not UTF-8");
	if (header != NULL) {
		json_t *h = json_string(header);

		/* NULL: not UTF-8, as a header name that is not a field name can be. */
		if (h == NULL) {
			json_decref(o);
			return imp_why(m, line, "%s", "a header name that is not UTF-8");
		}
		json_object_set_new(o, "header", h);
	}
	if (sensitive)
		json_object_set_new(o, "case", json_string("sensitive"));
	return o;
}

/* names x keys as one leaf or an any-group */
static json_t *imp_product(struct imp *m, const struct scmd *t, const char *field,
			   const struct sarg *names, const struct sarg *keys, const char *match,
			   bool sensitive, const char *kpre, const char *kpost)
{
	json_t *any = json_array(), *leaf;
	size_t i, j, nn = names ? names->ns : 1;

	if (nn * keys->ns > RULES_LEAVES_MAX) {
		json_decref(any);
		return imp_why(m, t->line, "%s", "more than 256 name and key pairs in one test");
	}
	for (i = 0; i < nn; i++) {
		for (j = 0; j < keys->ns; j++) {
			size_t kl = keys->slen[j], pl = strlen(kpre), ql = strlen(kpost);
			char *k = xmalloc(pl + kl + ql + 1);

			memcpy(k, kpre, pl);
			memcpy(k + pl, keys->s[j], kl);
			memcpy(k + pl + kl, kpost, ql + 1);
			leaf = imp_leaf(m, t->line, field, names ? names->s[i] : NULL, match, k,
					pl + kl + ql, sensitive);
			free(k);
			if (leaf == NULL) {
				json_decref(any);
				return NULL;
			}
			json_array_append_new(any, leaf);
		}
	}
	if (json_array_size(any) == 1) {
		leaf = json_incref(json_array_get(any, 0));
		json_decref(any);
		return leaf;
	}
	return json_pack("{s:o}", "any", any);
}

static bool lower_eq(const char *a, const char *b)
{
	return strcasecmp(a, b) == 0;
}

static json_t *imp_test(struct imp *m, const struct scmd *t);

static json_t *imp_group(struct imp *m, const struct scmd *t, const char *key)
{
	json_t *arr = json_array(), *c;
	size_t i;

	if (t->nargs > 0 || t->ntests == 0) {
		json_decref(arr);
		return imp_why(m, t->line, "%s needs a list of tests", t->name);
	}
	for (i = 0; i < t->ntests; i++) {
		c = imp_test(m, t->tests[i]);
		if (c == NULL) {
			json_decref(arr);
			return NULL;
		}
		json_array_append_new(arr, c);
	}
	return json_pack("{s:o}", key, arr);
}

static json_t *imp_not(struct imp *m, const struct scmd *t)
{
	json_t *c;
	const char *op;

	if (t->nargs > 0 || t->ntests != 1)
		return imp_why(m, t->line, "%s", "not needs one test");
	c = imp_test(m, t->tests[0]);
	if (c == NULL)
		return NULL;
	/* a negated leaf is the model's negative operator, as export writes it */
	op = json_string_value(json_object_get(c, "op"));
	if (op != NULL) {
		const char *neg = strcmp(op, "contains") == 0 ? "not_contains" :
				  strcmp(op, "is") == 0 ? "is_not" :
				  strcmp(op, "matches") == 0 ? "not_matches" : NULL;
		const char *f = json_string_value(json_object_get(c, "field"));

		if (neg != NULL && f != NULL && strcmp(f, "size") != 0) {
			json_object_set_new(c, "op", json_string(neg));
			return c;
		}
	}
	return json_pack("{s:o}", "not", c);
}

static json_t *imp_test(struct imp *m, const struct scmd *t)
{
	struct targs a;
	bool sensitive = false;

	if (strcmp(t->name, "allof") == 0)
		return imp_group(m, t, "all");
	if (strcmp(t->name, "anyof") == 0)
		return imp_group(m, t, "any");
	if (strcmp(t->name, "not") == 0)
		return imp_not(m, t);
	if (t->ntests > 0)
		return imp_why(m, t->line, "test %s takes no tests", t->name);
	if (strcmp(t->name, "true") == 0 && t->nargs == 0)
		return cond_true();
	if (strcmp(t->name, "false") == 0 && t->nargs == 0)
		return cond_false();
	targs_read(t, &a);
	if (a.bad != NULL)
		return imp_why(m, t->line, "argument :%s is not supported", a.bad);
	if (a.comparator != NULL) {
		if (strcmp(a.comparator, "i;octet") == 0)
			sensitive = true;
		else if (strcmp(a.comparator, "i;ascii-casemap") != 0)
			return imp_why(m, t->line, "comparator \"%.60s\" is not supported",
				       a.comparator);
	}
	if (strcmp(t->name, "size") == 0) {
		if (a.size == NULL || !a.hasnum || a.npos != 0)
			return imp_why(m, t->line, "%s", "size needs :over or :under and a number");
		return json_pack("{s:s, s:s, s:I}", "field", "size", "op",
				 a.size[0] == 'o' ? "gt" : "lt", "value", (json_int_t)a.num);
	}
	if (a.hasnum || a.size != NULL)
		return imp_why(m, t->line, "test %s takes no number", t->name);
	if (strcmp(t->name, "exists") == 0) {
		static const char any_value[] = "^";

		if (a.npos != 1 || has_nul(a.pos[0]))
			return imp_why(m, t->line, "%s", "exists needs a list of header names");
		{
			struct sarg k = { A_STRS, NULL, 0, NULL, NULL, 1 };
			char *ks[1] = { (char *)any_value };
			size_t kl[1] = { 1 };
			json_t *c;

			k.s = ks;
			k.slen = kl;
			c = imp_product(m, t, "header", a.pos[0], &k, "regex", false, "", "");
			/* exists "A" "B" needs both: all, not any */
			if (c != NULL && json_object_get(c, "any") != NULL) {
				json_t *arr = json_incref(json_object_get(c, "any"));

				json_decref(c);
				c = json_pack("{s:o}", "all", arr);
			}
			return c;
		}
	}
	if (a.npos != (strcmp(t->name, "body") == 0 ? 1u : 2u))
		return imp_why(m, t->line, "test %s: wrong number of arguments", t->name);
	if (has_nul(a.pos[0]) || has_nul(a.pos[a.npos - 1]))
		return imp_why(m, t->line, "%s", "a string with a NUL character");
	if (strcmp(t->name, "header") == 0) {
		if (strcmp(a.addrpart, "all") != 0)
			return imp_why(m, t->line, "%s", "header takes no address part");
		return imp_product(m, t, "header", a.pos[0], a.pos[1], a.match, sensitive, "", "");
	}
	if (strcmp(t->name, "body") == 0) {
		return imp_product(m, t, a.transform[0] == 't' ? "body" : "raw_body", NULL,
				   a.pos[0], a.match, sensitive, "", "");
	}
	if (strcmp(t->name, "address") == 0 || strcmp(t->name, "envelope") == 0) {
		const struct sarg *h = a.pos[0];
		const char *field = NULL, *match = a.match, *pre = "", *post = "";
		bool env = t->name[0] == 'e';

		if (env && h->ns == 1 && lower_eq(h->s[0], "from"))
			field = "sender";
		else if (env && h->ns == 1 && lower_eq(h->s[0], "to"))
			field = "recipient";
		else if (!env && h->ns == 2 && ((lower_eq(h->s[0], "to") && lower_eq(h->s[1], "cc")) ||
						(lower_eq(h->s[0], "cc") && lower_eq(h->s[1], "to"))))
			field = "to_cc";
		if (env && field == NULL)
			return imp_why(m, t->line, "%s", "envelope parts other than from and to are not "
				       "supported");
		if (strcmp(a.addrpart, "all") != 0 && strcmp(match, "is") != 0)
			return imp_why(m, t->line, ":%s with a match other than :is is not supported",
				       a.addrpart);
		if (field != NULL) {
			/* the whole address: the domain is what follows '@' */
			if (strcmp(a.addrpart, "domain") == 0) {
				match = "matches";
				pre = "*@";
			} else if (strcmp(a.addrpart, "localpart") == 0) {
				match = "matches";
				post = "@*";
			}
			if (*pre || *post) {
				/* keys become :matches patterns: escape their wildcards */
				struct sarg k = *a.pos[1];
				json_t *c;
				size_t i;

				k.s = xcalloc(k.ns, sizeof(*k.s));
				k.slen = xcalloc(k.ns, sizeof(*k.slen));
				for (i = 0; i < k.ns; i++) {
					struct dynbuf g;
					size_t j;

					dynbuf_init(&g, 2 * a.pos[1]->slen[i] + 1);
					for (j = 0; j < a.pos[1]->slen[i]; j++) {
						char ch = a.pos[1]->s[i][j];

						if (ch == '*' || ch == '?' || ch == '\\')
							(void)dynbuf_add(&g, "\\", 1);
						(void)dynbuf_add(&g, &ch, 1);
					}
					(void)dynbuf_add(&g, "", 1);
					k.s[i] = g.data;
					k.slen[i] = g.len - 1;
				}
				c = imp_product(m, t, field, NULL, &k, match, sensitive, pre, post);
				for (i = 0; i < k.ns; i++)
					free(k.s[i]);
				free(k.s);
				free(k.slen);
				return c;
			}
			return imp_product(m, t, field, NULL, a.pos[1], match, sensitive, "", "");
		}
		/* other headers (From, Sender, Reply-To ...): the address is in the text */
		if (strcmp(match, "is") != 0 && strcmp(match, "contains") != 0)
			return imp_why(m, t->line, "address :%s on headers other than To and Cc is "
				       "not supported", match);
		if (strcmp(a.addrpart, "domain") == 0)
			pre = "@";
		else if (strcmp(a.addrpart, "localpart") == 0)
			post = "@";
		return imp_product(m, t, "header", h, a.pos[1], "contains", sensitive, pre, post);
	}
	return imp_why(m, t->line, "test %s is not supported", t->name);
}

static bool one_str(const struct scmd *c, size_t i)
{
	return i < c->nargs && c->args[i].k == A_STRS && c->args[i].ns == 1 &&
	       strlen(c->args[i].s[0]) == c->args[i].slen[0];
}

/* `if header :matches "Subject" "*" { deleteheader "Subject";
 *  addheader "Subject" "PREFIX${1}"; }`: the prefix (malloc'ed) or NULL. */
static char *tag_subject_shape(const struct scmd *c)
{
	const struct scmd *t, *d, *a;
	const char *v;
	size_t n;

	if (c->ntests != 1 || c->nargs != 0 || c->nkids != 2)
		return NULL;
	t = c->tests[0];
	d = c->kids[0];
	a = c->kids[1];
	if (strcmp(t->name, "header") != 0 || t->nargs != 3 || t->args[0].k != A_TAG ||
	    strcmp(t->args[0].tag, "matches") != 0 || !one_str(t, 1) || !one_str(t, 2) ||
	    !lower_eq(t->args[1].s[0], "subject") || strcmp(t->args[2].s[0], "*") != 0)
		return NULL;
	if (strcmp(d->name, "deleteheader") != 0 || d->nargs != 1 || !one_str(d, 0) ||
	    !lower_eq(d->args[0].s[0], "subject") || d->block || d->ntests)
		return NULL;
	if (strcmp(a->name, "addheader") != 0 || a->nargs != 2 || !one_str(a, 0) ||
	    !one_str(a, 1) || !lower_eq(a->args[0].s[0], "subject") || a->block || a->ntests)
		return NULL;
	v = a->args[1].s[0];
	n = strlen(v);
	if (n <= 4 || strcmp(v + n - 4, "${1}") != 0)
		return NULL;
	return xstrndup(v, n - 4);
}

/* The actions of a block; skipped commands are listed.  Returns the array
 * (possibly empty). */
static json_t *imp_actions(struct imp *m, struct scmd *const *kids, size_t n)
{
	json_t *acts = json_array(), *a;
	bool final = false;
	size_t i;
	char why[200];

	for (i = 0; i < n; i++) {
		const struct scmd *c = kids[i];
		const char *nm = c->name;
		bool copy = false, create_ok = false, bad_tag = false;
		size_t j, npos = 0, first = 0;

		a = NULL;
		if (final) {
			if (strcmp(nm, "stop") == 0 && c->nargs == 0 && !c->block)
				continue;
			snprintf(why, sizeof(why), "%.60s after an action that ends the rules "
				 "(use :copy to go on)", nm);
			imp_skip(m, c->line, why);
			continue;
		}
		if (json_array_size(acts) == RULES_ACTIONS_MAX) {
			imp_skip(m, c->line, "more than 8 actions in one rule");
			continue;
		}
		if (strcmp(nm, "if") == 0 && c->block) {
			char *p = tag_subject_shape(c);

			if (p != NULL) {
				a = json_pack("{s:s, s:s}", "type", "tag_subject", "prefix", p);
				free(p);
			}
			if (a == NULL) {
				imp_skip(m, c->line, "an if inside a rule (other than the subject "
					 "tag form) is not supported");
				continue;
			}
			json_array_append_new(acts, a);
			continue;
		}
		if (c->block || c->ntests > 0) {
			snprintf(why, sizeof(why), "command %.60s is not supported inside a rule", nm);
			imp_skip(m, c->line, why);
			continue;
		}
		for (j = 0; j < c->nargs; j++) {
			if (c->args[j].k == A_TAG) {
				if (strcmp(c->args[j].tag, "copy") == 0)
					copy = true;
				else if (strcmp(c->args[j].tag, "create") == 0)
					create_ok = true;
				else
					bad_tag = true;
			} else {
				if (npos == 0)
					first = j;
				npos++;
			}
		}
		if (bad_tag || (create_ok && strcmp(nm, "fileinto") != 0) ||
		    (copy && strcmp(nm, "fileinto") != 0 && strcmp(nm, "redirect") != 0)) {
			snprintf(why, sizeof(why), "%.60s with an argument that is not supported", nm);
			imp_skip(m, c->line, why);
			continue;
		}
		if ((strcmp(nm, "keep") == 0 || strcmp(nm, "discard") == 0 ||
		     strcmp(nm, "stop") == 0) && npos == 0) {
			a = json_pack("{s:s}", "type", nm);
			final = true;
		} else if (strcmp(nm, "fileinto") == 0 && npos == 1 && one_str(c, first)) {
			a = json_pack("{s:s, s:s}", "type", copy ? "copy" : "move", "folder",
				      c->args[first].s[0]);
			final = !copy;
		} else if (strcmp(nm, "redirect") == 0 && npos == 1 && one_str(c, first)) {
			a = json_pack("{s:s, s:s}", "type", copy ? "forward_copy" : "forward",
				      "address", c->args[first].s[0]);
			final = !copy;
		} else if ((strcmp(nm, "reject") == 0 || strcmp(nm, "ereject") == 0) && npos == 1 &&
			   one_str(c, first)) {
			a = json_pack("{s:s, s:s}", "type", "refuse", "text", c->args[first].s[0]);
			final = true;
		} else if (strcmp(nm, "addheader") == 0 && npos == 2 && one_str(c, first) &&
			   one_str(c, first + 1)) {
			a = json_pack("{s:s, s:s, s:s}", "type", "add_header", "name",
				      c->args[first].s[0], "value", c->args[first + 1].s[0]);
		} else if (strcmp(nm, "deleteheader") == 0 && c->nargs == 1 && one_str(c, 0) &&
			   lower_eq(c->args[0].s[0], "importance") && i + 1 < n &&
			   strcmp(kids[i + 1]->name, "addheader") == 0 && kids[i + 1]->nargs == 2 &&
			   one_str(kids[i + 1], 0) && one_str(kids[i + 1], 1) &&
			   lower_eq(kids[i + 1]->args[0].s[0], "importance")) {
			/* deleteheader + addheader "Importance": set importance */
			a = json_pack("{s:s, s:s}", "type", "importance", "value",
				      kids[i + 1]->args[1].s[0]);
			i++;
		} else {
			snprintf(why, sizeof(why), "command %.60s is not supported", nm);
			imp_skip(m, c->line, why);
			continue;
		}
		if (a == NULL) {
			imp_skip(m, c->line, "a string that is not UTF-8");
			continue;
		}
		json_array_append_new(acts, a);
	}
	return acts;
}

/* The rule {name, enabled, when, except, actions}; all json_t consumed. */
static void imp_rule(struct imp *m, unsigned line, const char *name, bool enabled,
		     json_t *when, json_t *except, json_t *acts)
{
	json_t *r;
	char err[300], dflt[64];

	if (json_array_size(acts) == 0) {
		json_decref(when);
		json_decref(except);
		json_decref(acts);
		imp_skip(m, line, "a rule with no action that can be imported");
		return;
	}
	if (name == NULL) {
		snprintf(dflt, sizeof(dflt), "Sieve line %u", line);
		name = dflt;
	}
	r = json_pack("{s:s, s:b, s:o, s:o}", "name", name, "enabled", enabled, "when", when,
		      "actions", acts);
	if (r == NULL) {
		json_decref(except);
		imp_skip(m, line, "a rule name that is not UTF-8");
		return;
	}
	if (except != NULL)
		json_object_set_new(r, "except", except);
	if (rules_def_check_one_opts(r, m->o, err, sizeof(err)) < 0) {
		json_decref(r);
		imp_skip(m, line, err);
		return;
	}
	json_array_append_new(m->rules, r);
	json_array_append_new(m->lines, json_integer(line));
}

/*
 * What export could not write back is not taken in, so that import and
 * export stay each other's inverse: a value with "${" in a set that uses
 * Sieve variables (the subject pattern) would be expanded there.  Leaving
 * rules out never makes another rule unexportable, so this ends.
 */
static void imp_keep_exportable(struct imp *m)
{
	for (;;) {
		json_t *sk = NULL;
		char *script = rules_sieve_export(m->rules, &sk);
		size_t n = json_array_size(sk), k;

		free(script);
		for (k = n; k > 0; k--) {
			json_t *e = json_array_get(sk, k - 1);
			size_t idx = (size_t)json_integer_value(json_object_get(e, "rule"));
			const char *why = json_string_value(json_object_get(e, "reason"));

			imp_skip(m, (unsigned)json_integer_value(json_array_get(m->lines, idx)),
				 why != NULL ? why : "a rule that cannot be exported again");
			json_array_remove(m->rules, idx);
			json_array_remove(m->lines, idx);
		}
		json_decref(sk);
		if (n == 0)
			return;
	}
}

/* allof (false, X): a disabled rule; allof (W, not anyof (E)): when W except E. */
static void split_cond(json_t *full, bool *enabled, json_t **when, json_t **except)
{
	json_t *all = json_object_get(full, "all"), *f = cond_false(), *n, *any;

	*enabled = true;
	*except = NULL;
	*when = full;
	if (json_is_array(all) && json_array_size(all) >= 2 &&
	    json_equal(json_array_get(all, 0), f)) {
		*enabled = false;
		if (json_array_size(all) == 2) {
			*when = json_incref(json_array_get(all, 1));
		} else {
			json_t *rest = json_array();
			size_t i;

			for (i = 1; i < json_array_size(all); i++)
				json_array_append(rest, json_array_get(all, i));
			*when = json_pack("{s:o}", "all", rest);
		}
		json_decref(full);
		full = *when;
	}
	json_decref(f);
	all = json_object_get(full, "all");
	if (json_is_array(all) && json_array_size(all) == 2) {
		n = json_object_get(json_array_get(all, 1), "not");
		any = json_object_get(n, "any");
		if (json_is_array(any) && json_array_size(any) == 1) {
			*when = json_incref(json_array_get(all, 0));
			*except = json_incref(json_array_get(any, 0));
			json_decref(full);
		}
	}
}

/* any of conds (a reference), or the one cond */
static json_t *any_of(json_t *conds)
{
	if (json_array_size(conds) == 1)
		return json_incref(json_array_get(conds, 0));
	return json_pack("{s:O}", "any", conds);
}

static int imp_top(struct imp *m, struct scmd *const *kids, size_t n, struct rules_sieve_err *e)
{
	json_t *prev = NULL;    /* tests of the if/elsif chain so far; NULL: none or broken */
	bool chain = false;
	size_t i;

	for (i = 0; i < n; i++) {
		const struct scmd *c = kids[i];
		const char *nm = c->name;
		bool is_if = strcmp(nm, "if") == 0, is_elsif = strcmp(nm, "elsif") == 0;
		bool is_else = strcmp(nm, "else") == 0;

		if ((is_elsif || is_else) && !chain) {
			json_decref(prev);
			e->line = c->line;
			snprintf(e->msg, sizeof(e->msg), "%s without a preceding if", nm);
			return -1;
		}
		if (is_if || is_elsif || is_else) {
			json_t *full, *when, *except, *acts;
			bool enabled;

			if (!c->block || (is_else ? c->ntests != 0 : c->ntests != 1) || c->nargs) {
				json_decref(prev);
				e->line = c->line;
				snprintf(e->msg, sizeof(e->msg), "%s needs %sa block", nm,
					 is_else ? "" : "one test and ");
				return -1;
			}
			if (is_if) {
				json_decref(prev);
				prev = json_array();
			}
			chain = !is_else;
			if (prev == NULL) {
				imp_skip(m, c->line, "follows a branch that was not imported");
				continue;
			}
			if (is_else) {
				full = json_array_size(prev) ? json_pack("{s:o}", "not", any_of(prev)) :
							       cond_true();
			} else {
				full = imp_test(m, c->tests[0]);
				if (full == NULL) {
					imp_skip(m, m->why_line, m->why);
					json_decref(prev);
					prev = NULL;
					continue;
				}
			}
			/* the chain's earlier tests become the except part */
			json_incref(full);
			split_cond(full, &enabled, &when, &except);
			if (!is_else && json_array_size(prev) > 0) {
				json_t *ex = json_copy(prev);

				if (except != NULL)
					json_array_append_new(ex, except);
				except = any_of(ex);
				json_decref(ex);
			}
			if (!is_else)
				json_array_append(prev, full);
			json_decref(full);
			acts = imp_actions(m, c->kids, c->nkids);
			imp_rule(m, c->line, c->note, enabled, when, except, acts);
			continue;
		}
		chain = false;
		if (strcmp(nm, "require") == 0) {
			if (c->nargs != 1 || c->args[0].k != A_STRS || c->block || c->ntests) {
				json_decref(prev);
				e->line = c->line;
				snprintf(e->msg, sizeof(e->msg), "%s", "require needs a string list");
				return -1;
			}
			continue;
		}
		{
			/* actions outside any if: one rule that always applies */
			size_t j = i;

			while (j + 1 < n && strcmp(kids[j + 1]->name, "if") != 0 &&
			       strcmp(kids[j + 1]->name, "require") != 0 &&
			       strcmp(kids[j + 1]->name, "elsif") != 0 &&
			       strcmp(kids[j + 1]->name, "else") != 0)
				j++;
			imp_rule(m, c->line, c->note, true, cond_true(), NULL,
				 imp_actions(m, &kids[i], j - i + 1));
			i = j;
		}
	}
	json_decref(prev);
	return 0;
}

int rules_sieve_import(const char *text, size_t len, const struct rules_parse_opts *o,
		       json_t **rules, json_t **skipped, struct rules_sieve_err *e)
{
	static const struct rules_parse_opts mailbox = { .kind = RULES_KIND_MAILBOX,
							 .forward_external = true };
	struct lex l;
	struct imp m;
	struct scmd **kids = NULL;
	size_t nkids = 0, i;
	int rc = -1;

	*rules = NULL;
	*skipped = NULL;
	memset(e, 0, sizeof(*e));
	if (len > RULES_SIEVE_INPUT_MAX) {
		e->line = 1;
		snprintf(e->msg, sizeof(e->msg), "script larger than %u octets",
			 RULES_SIEVE_INPUT_MAX);
		return -1;
	}
	memset(&l, 0, sizeof(l));
	l.p = text;
	l.end = text + len;
	l.line = 1;
	l.e = e;
	memset(&m, 0, sizeof(m));
	m.o = o ? o : &mailbox;
	if (lex_next(&l) < 0 || parse_block(&l, 0, &kids, &nkids) < 0)
		goto out;
	if (l.t != T_EOF) {
		lex_fail(&l, l.tline, "%s", "'}' without a matching '{'");
		goto out;
	}
	m.rules = json_array();
	m.lines = json_array();
	m.skipped = json_array();
	if (imp_top(&m, kids, nkids, e) < 0) {
		json_decref(m.rules);
		json_decref(m.lines);
		json_decref(m.skipped);
		goto out;
	}
	imp_keep_exportable(&m);
	json_decref(m.lines);
	*rules = m.rules;
	*skipped = m.skipped;
	rc = 0;
out:
	for (i = 0; i < nkids; i++)
		scmd_free(kids[i]);
	free(kids);
	free(l.s);
	free(l.note);
	free(l.pending);
	return rc;
}
