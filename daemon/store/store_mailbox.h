/*
 * store_mailbox: SQL of the per-user mailbox rules (schema/017,
 * docs/mailbox-rules.md).
 *
 * A set belongs to one owner, a user or a group; its rules are kept in
 * `position` order.  Used by the API (http_mailbox.c) and `moatd
 * mailbox-rules` through policy_mbrules.c, by the policy snapshot (the
 * sets' generations) and by the content stage (hit counts).  Never called
 * on the mail event loop.  Callers own the transaction around multi-step
 * changes; every change of rules must end with store_mailbox_refresh() in
 * the same transaction so that has_refuse stays true.  Strings passed to
 * callbacks live only during the call.
 */
#ifndef MOAT_STORE_MAILBOX_H
#define MOAT_STORE_MAILBOX_H

#include <stddef.h>
#include <stdint.h>

struct store;

struct store_mailbox_rule {
	int64_t id;
	int64_t position;       /* evaluation order, ascending */
	const char *name;
	int enabled;
	const char *definition; /* the rule object as JSON */
	int64_t created_at;     /* unix ms */
	int64_t updated_at;
	int64_t hits;
	int64_t last_hit;       /* unix ms, 0 never */
};

typedef int (*store_mailbox_rule_fn)(const struct store_mailbox_rule *r, void *arg);

struct store_mailbox_set {
	int64_t id;
	int64_t user_id;        /* 0 for a group's set */
	int64_t group_id;       /* 0 for a user's set */
	int64_t generation;
	int has_refuse;
};

/* The set of a user (group_id 0) or a group (user_id 0); *id 0 when none. */
int store_mailbox_set_find(struct store *st, int64_t user_id, int64_t group_id, int64_t *id);
/* The same, created when missing. */
int store_mailbox_set_ensure(struct store *st, int64_t user_id, int64_t group_id, int64_t *id);
/* Every set in id order (for the policy snapshot); cb non-zero stops. */
int store_mailbox_sets_each(struct store *st,
			    int (*cb)(const struct store_mailbox_set *s, void *arg), void *arg);
/* Every address that owns a set: a user's primary and aliases, a group's address. */
int store_mailbox_addresses(struct store *st,
			    int (*cb)(const char *address, int64_t set_id, void *arg), void *arg);
/*
 * What the snapshot depends on, as three numbers that change when a set is
 * created or removed or its has_refuse flips (fp[0..2]), and one that
 * grows with every edit of any set (fp[3]).
 */
int store_mailbox_fingerprint(struct store *st, int64_t fp[4]);
/* The current generation of set id; *found 0 when the set is gone. */
int store_mailbox_generation(struct store *st, int64_t id, int64_t *gen, int *found);
/*
 * The enabled rules of set id in evaluation order, and the generation they
 * belong to (one read transaction: the caller must not hold one open).
 * *found 0 when the set is gone.
 */
int store_mailbox_enabled_rules(struct store *st, int64_t id, int64_t *gen, int *found,
				int (*cb)(int64_t rule_id, const char *definition, void *arg),
				void *arg);

struct store_mailbox_filter {
	const char *q;          /* substring of name or definition (any case); NULL: all */
	int enabled;            /* -1 all, 0 disabled only, 1 enabled only */
	int64_t from_position;  /* rules at or after this position */
	int64_t limit;          /* 0: no limit */
};
/* Rules of set in order, filtered; cb non-zero stops. */
int store_mailbox_rules_each(struct store *st, int64_t set, const struct store_mailbox_filter *f,
			     store_mailbox_rule_fn cb, void *arg);
/* Rule rid of set (*found 0 when it is not in this set). */
int store_mailbox_rule_get(struct store *st, int64_t set, int64_t rid, store_mailbox_rule_fn cb,
			   void *arg, int *found);
/* Number of rules, next free position and total octets of definitions. */
int store_mailbox_stats(struct store *st, int64_t set, int64_t *count, int64_t *end,
			int64_t *bytes);
/* position < 0 or past the end: appended; otherwise later rules move down one. */
int store_mailbox_rule_add(struct store *st, int64_t set, const char *name, int enabled,
			   const char *definition, int64_t position, int64_t *id);
int store_mailbox_rule_update(struct store *st, int64_t set, int64_t rid, const char *name,
			      int enabled, const char *definition, int *found);
int store_mailbox_rule_delete(struct store *st, int64_t set, int64_t rid, int *found);
int store_mailbox_rules_delete_all(struct store *st, int64_t set);
/* ids must name every rule of the set exactly once; otherwise *mismatch is set and
 * the caller rolls back (rows may have changed). */
int store_mailbox_set_order(struct store *st, int64_t set, const int64_t *ids, size_t n,
			    int *mismatch);
/* Recompute has_refuse of set from its enabled rules. */
int store_mailbox_refresh(struct store *st, int64_t set);
/* One more hit at ts for each rule id (ids since deleted are ignored). */
int store_mailbox_hit(struct store *st, const int64_t *ids, size_t n, int64_t ts);

/* ---- owners ---- */
int store_mailbox_user_exists(struct store *st, int64_t user_id, int *yes);
/* The group of address (lower case); *gid 0 when none. */
int store_mailbox_group_find(struct store *st, const char *address, int64_t *gid);
int store_mailbox_is_manager(struct store *st, int64_t gid, int64_t user_id, int *yes);
/* The user who owns address (dir_address); *uid 0 when none. */
int store_mailbox_user_of(struct store *st, const char *address, int64_t *uid);
/* Is domain (lower case) one of ours: a local_domain entry (exact or *.wildcard)
 * or the domain of a directory address. */
int store_mailbox_domain_local(struct store *st, const char *domain, int *yes);
/* The user's primary address (else the first alias) into buf ("" when none). */
int store_mailbox_primary_address(struct store *st, int64_t uid, char *buf, size_t bufsz);
/*
 * The message-log row log_id when one of its recipients is an address of
 * the owner (a user's primary or alias, or the group's address): its queue
 * id into qid ("" when it has none) and that recipient into rcpt.  *found 0
 * when the row does not exist or is not the owner's.
 */
int store_mailbox_log_message(struct store *st, int64_t log_id, int64_t user_id,
			      int64_t group_id, char *qid, size_t qidsz, char *rcpt,
			      size_t rcptsz, int *found);
/* A policy setting's stored value into buf ("" when unset). */
int store_mailbox_setting(struct store *st, const char *key, char *buf, size_t bufsz);

#endif
