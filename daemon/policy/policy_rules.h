/*
 * policy_rules: the stored server rule set — list, create, replace, patch,
 * delete, order, export, import — and the dry run.  The one home of these
 * operations: the API (http_rules.c) and `moatd rules` (cli_rules.c) parse
 * their input, call here and format the answer.  Unlike the rest of
 * daemon/rules/ (pure), this layer reads the store, the spool and the
 * policy's lists.
 *
 * Every change is one SQLite transaction: the rows change and an audit row
 * ("rule.create", "rule.update", "rule.delete", "rule.order",
 * "rule.import") is written with them, or nothing is; the schema's
 * triggers bump the policy generation.  A rule is checked with
 * rules_def_check_one() and then compiled alone (Vectorscan limits); an
 * import compiles the whole resulting set first.  Called on HTTP threads
 * and in the CLI process, each with its own store connection; never on the
 * mail event loop (a compile can take seconds).
 *
 * Returned JSON is a new reference owned by the caller.
 */
#ifndef MOAT_POLICY_RULES_H
#define MOAT_POLICY_RULES_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

struct store;

/* Who acts, for the audit row. */
struct policy_rules_actor {
	int64_t user_id;           /* 0: no API user (the CLI) */
	const char *name;          /* the user's name, or "cli" */
	const char *via;           /* session | token | system (the CLI) */
	const char *client_addr;   /* NULL: local */
};

/* Why a call failed: status 404, 422 (code and field name the input) or 500. */
struct policy_rules_err {
	int status;
	/* not_found | invalid_rule | unknown_field | invalid_value | internal */
	char code[32];
	char field[200];           /* "" when none */
	char message[600];
};

/*
 * Fill e and return NULL, so that a failing operation ends in one line:
 * fail (status, code, field, message), internal (500 with the store's error),
 * internal_rollback (the same, after rolling the transaction back), model_err
 * (422 for a rule model error "rules[3].when...: reason": the field is the
 * path before ": "; prefix/with rename its first element, e.g. "rules[0]" to
 * "rule").  Shared by the server and the mailbox rule operations.
 */
void *policy_rules_fail(struct policy_rules_err *e, int status, const char *code,
			const char *field, const char *fmt, ...) __attribute__((format(printf, 5, 6)));
void *policy_rules_internal(struct policy_rules_err *e, struct store *st, const char *what);
void *policy_rules_internal_rollback(struct policy_rules_err *e, struct store *st,
				      const char *what);
void *policy_rules_model_err(struct policy_rules_err *e, const char *msg, const char *prefix,
			     const char *with);

/*
 * Check one rule object (po: the parse options; NULL for a server rule) and
 * compile it alone: the normalised object (new reference), or NULL with e
 * (422, field "rule....").
 */
struct rules_parse_opts;
json_t *policy_rules_normalise(const json_t *obj, const struct rules_parse_opts *po,
			       struct policy_rules_err *e);
/* The defaults every stored and exported rule carries (except, comment). */
void policy_rules_fill_defaults(json_t *o);

/* What the dry run needs besides the store. */
struct policy_rules_env {
	const char *data_dir;
	int64_t max_message_size;  /* bound on a spool file read for "last" */
};

/* Every rule in order (enabled: 1 only enabled, 0 only disabled, -1 all). */
json_t *policy_rules_list(struct store *st, int enabled, struct policy_rules_err *e);
json_t *policy_rules_get(struct store *st, int64_t id, struct policy_rules_err *e);
/* body: rule fields and an optional "position" (insert before it). */
json_t *policy_rules_create(struct store *st, const json_t *body,
			   const struct policy_rules_actor *a, struct policy_rules_err *e);
/* body: the full rule fields. */
json_t *policy_rules_replace(struct store *st, int64_t id, const json_t *body,
			    const struct policy_rules_actor *a, struct policy_rules_err *e);
/* body: any of enabled, name, comment. */
json_t *policy_rules_patch(struct store *st, int64_t id, const json_t *body,
			  const struct policy_rules_actor *a, struct policy_rules_err *e);
int policy_rules_delete(struct store *st, int64_t id, const struct policy_rules_actor *a,
		       struct policy_rules_err *e);
/* ids: a JSON array naming every rule once; the new ordered list. */
json_t *policy_rules_order(struct store *st, const json_t *ids,
			  const struct policy_rules_actor *a, struct policy_rules_err *e);
/* The portable set: rule objects without id, position, counters and times. */
json_t *policy_rules_export(struct store *st, struct policy_rules_err *e);
/* {"imported": n, "items": [...]}; nothing changes on any error. */
json_t *policy_rules_import(struct store *st, const json_t *rules, int append,
			   const struct policy_rules_actor *a, struct policy_rules_err *e);
/*
 * The dry run (docs/rules.md "Dry run"): body as the API's POST
 * /rules/test.  Nothing is acted on or counted.  {"results": [...]}.
 */
json_t *policy_rules_test(struct store *st, const struct policy_rules_env *env,
			 const json_t *body, struct policy_rules_err *e);

#endif
