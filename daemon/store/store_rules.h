/*
 * store_rules: SQL of the server mail rules (schema/011, docs/rules.md).
 *
 * Used by the API (http_rules.c), `moatd rules`, the policy watcher (to
 * compile the enabled set into a snapshot) and the spool writer (hit
 * counts).  Never called on the mail event loop.  Writes other than hit
 * counts bump the policy generation through the schema's triggers.
 * Callers own the transaction around multi-step changes.  Strings passed to
 * callbacks live only during the call.
 */
#ifndef MOAT_STORE_RULES_H
#define MOAT_STORE_RULES_H

#include <stddef.h>
#include <stdint.h>

struct store;

struct store_rule {
	int64_t id;
	int64_t position;      /* evaluation order, ascending */
	const char *name;
	int enabled;
	const char *definition; /* the rule object as JSON */
	int64_t created_at;     /* unix ms */
	int64_t updated_at;
	int64_t hits;
	int64_t last_hit;       /* unix ms, 0 never */
};

typedef int (*store_rule_fn)(const struct store_rule *r, void *arg);

/* Every rule in evaluation order (enabled_only: just the enabled ones); cb non-zero stops. */
int store_rules_each(struct store *st, int enabled_only, store_rule_fn cb, void *arg);
int store_rule_get(struct store *st, int64_t id, store_rule_fn cb, void *arg, int *found);
int store_rules_count(struct store *st, int64_t *n);
/* position < 0 or past the end: appended; otherwise later rules move down one. */
int store_rule_add(struct store *st, const char *name, int enabled, const char *definition,
		   int64_t position, int64_t *id);
int store_rule_update(struct store *st, int64_t id, const char *name, int enabled,
		      const char *definition, int *found);
int store_rule_delete(struct store *st, int64_t id, int *found);
int store_rules_delete_all(struct store *st);
/*
 * The new order: ids must name every rule exactly once (*mismatch set and
 * nothing changed otherwise).
 */
int store_rules_set_order(struct store *st, const int64_t *ids, size_t n, int *mismatch);
/* One more hit, at ts, for each id (ids of rules since deleted are ignored). */
int store_rules_hit(struct store *st, const int64_t *ids, size_t n, int64_t ts);

/* A queued message's envelope, for the dry run over recent mail (read only). */
struct store_rule_msg {
	char *qid;
	char *sender;
	char *client_addr;
	char *client_name;
	char *helo;
	char *auth_user;        /* NULL when not authenticated */
	int64_t size;
	char **rcpts;
	size_t nrcpts;
};
/* The last n messages of the queue, newest first; free with store_rules_recent_free. */
int store_rules_recent(struct store *st, size_t n, struct store_rule_msg **out, size_t *nout);
void store_rules_recent_free(struct store_rule_msg *m, size_t n);

#endif
