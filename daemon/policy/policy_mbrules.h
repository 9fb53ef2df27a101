/*
 * policy_mbrules: the stored per-user mailbox rule sets (docs/mailbox-rules.md)
 * — list, create, replace, patch, delete, order, bulk, duplicate, export,
 * import and the dry run.  The one home of these operations: the API
 * (http_mailbox.c) and `moatd mailbox-rules` parse their input, resolve the
 * owner and its scope, call here and format the answer.
 *
 * Every change is one SQLite transaction: the rules change, the set's
 * has_refuse is recomputed, and an audit row ("mailbox_rule.create",
 * ".update", ".delete", ".order", ".bulk", ".import") is written with
 * them, or nothing is.  The schema's triggers bump the set's generation
 * (not the policy's).  Called on HTTP threads and in the CLI process, never
 * on the mail event loop (a compile can take a second at 10,000 rules).
 * Errors reuse struct policy_rules_err (404, 422 naming the field, 500).
 */
#ifndef MOAT_POLICY_MBRULES_H
#define MOAT_POLICY_MBRULES_H

#include <stdint.h>

#include <jansson.h>

#include "policy_rules.h"

struct store;

/* Whose set, and the limits that apply to it. */
struct policy_mbrules_owner {
	int64_t user_id;            /* a user's set, or 0 */
	int64_t group_id;           /* a group's set, or 0 */
	const char *label;          /* "user 12" / "group x@y", for the audit row */
	int64_t rules_max;          /* mailbox_rules_max */
	int64_t value_max;          /* mailbox_rule_value_max */
	int64_t total_bytes;        /* mailbox_rules_total_bytes */
};

struct policy_mbrules_query {
	const char *q;              /* NULL: all */
	int enabled;                /* -1 all */
	int64_t cursor;             /* first position */
	int64_t limit;              /* 0: all */
};

/* {"items": [...], "next_cursor": "n" | null} */
json_t *policy_mbrules_list(struct store *st, const struct policy_mbrules_owner *o,
			    const struct policy_mbrules_query *q, struct policy_rules_err *e);
json_t *policy_mbrules_get(struct store *st, const struct policy_mbrules_owner *o, int64_t rid,
			   struct policy_rules_err *e);
json_t *policy_mbrules_create(struct store *st, const struct policy_mbrules_owner *o,
			      const json_t *body, const struct policy_rules_actor *a,
			      struct policy_rules_err *e);
json_t *policy_mbrules_replace(struct store *st, const struct policy_mbrules_owner *o,
			       int64_t rid, const json_t *body, const struct policy_rules_actor *a,
			       struct policy_rules_err *e);
/* body: any of enabled, name, comment. */
json_t *policy_mbrules_patch(struct store *st, const struct policy_mbrules_owner *o, int64_t rid,
			     const json_t *body, const struct policy_rules_actor *a,
			     struct policy_rules_err *e);
int policy_mbrules_delete(struct store *st, const struct policy_mbrules_owner *o, int64_t rid,
			  const struct policy_rules_actor *a, struct policy_rules_err *e);
json_t *policy_mbrules_order(struct store *st, const struct policy_mbrules_owner *o,
			     const json_t *ids, const struct policy_rules_actor *a,
			     struct policy_rules_err *e);
/* op: "enable", "disable" or "delete"; {"changed": n}. */
json_t *policy_mbrules_bulk(struct store *st, const struct policy_mbrules_owner *o,
			    const json_t *ids, const char *op, const struct policy_rules_actor *a,
			    struct policy_rules_err *e);
/* A copy placed right after the rule, named "<name> (copy)". */
json_t *policy_mbrules_duplicate(struct store *st, const struct policy_mbrules_owner *o,
				 int64_t rid, const struct policy_rules_actor *a,
				 struct policy_rules_err *e);
json_t *policy_mbrules_export(struct store *st, const struct policy_mbrules_owner *o,
			      struct policy_rules_err *e);
/* {"imported": n, "total": m}; nothing changes on any error. */
json_t *policy_mbrules_import(struct store *st, const struct policy_mbrules_owner *o,
			      const json_t *rules, int append, const struct policy_rules_actor *a,
			      struct policy_rules_err *e);
/*
 * The dry run over a raw message (at most max_message octets) for the
 * owner's address: {"address", "rules": [{"id","name","matched"}...],
 * "outcome": {...}}.  Nothing is acted on or counted.
 */
json_t *policy_mbrules_test(struct store *st, const struct policy_mbrules_owner *o,
			    const char *address, const char *msg, size_t len,
			    struct policy_rules_err *e);
/*
 * For the dry run over one of the owner's recent messages: the message of
 * message-log row log_id, read from the spool queue (not yet delivered) or
 * the quarantine, when one of the row's recipients is the owner's address
 * (written into address).  A malloc'ed buffer of *len octets (at most max),
 * or NULL with e: 404 (field message_log_id) for a row that does not exist
 * or is not the owner's, 422 when the message is no longer kept or is
 * larger than max.
 */
char *policy_mbrules_log_message(struct store *st, const char *data_dir, size_t max,
				 const struct policy_mbrules_owner *o, int64_t log_id,
				 char *address, size_t addrsz, size_t *len,
				 struct policy_rules_err *e);

#endif
