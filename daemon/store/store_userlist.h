/*
 * store_userlist: SQL of end users' self-service objects (schema/014) —
 * personal sender lists (user_sender_list) and group managers
 * (dir_group_manager).
 *
 * Used by the HTTP API (on its threads, each with its own store) and by
 * the policy watcher when it builds a snapshot (never on the mail loop).
 * Writes never commit: the caller wraps the change and its audit entry in
 * one transaction.  A change to either table bumps the policy generation
 * through triggers in the schema.  Returns 0 or -1.  Strings passed to
 * callbacks live only during the call; a callback returns non-zero to stop.
 */
#ifndef MOAT_STORE_USERLIST_H
#define MOAT_STORE_USERLIST_H

#include <stddef.h>
#include <stdint.h>

struct store;

struct store_sender_entry {
	int64_t id;
	int64_t user_id;
	const char *kind;     /* allow | block */
	const char *value;    /* user@example.com or @example.com, lower case */
	int64_t created;      /* unix ms */
};

typedef int (*store_sender_cb)(const struct store_sender_entry *e, void *arg);

/* One user's entries in id order. */
int store_userlist_list(struct store *st, int64_t user_id, store_sender_cb cb, void *arg);
int store_userlist_count(struct store *st, int64_t user_id, int64_t *n);
/* Entry id of user_id; *found 0 when that user has no such entry. */
int store_userlist_get(struct store *st, int64_t user_id, int64_t id, store_sender_cb cb,
		       void *arg, int *found);
/* *dup 1 (nothing added, 0 returned) when the user already lists value. */
int store_userlist_add(struct store *st, int64_t user_id, const char *kind, const char *value,
		       int64_t *id, int *dup);
int store_userlist_remove(struct store *st, int64_t user_id, int64_t id, int *removed);

/* For the snapshot: every entry of every user, by user. */
int store_userlist_all(struct store *st, store_sender_cb cb, void *arg);
/* For the snapshot: the directory addresses (primary and alias) of every
 * user who has at least one entry. */
int store_userlist_owners(struct store *st,
			  int (*cb)(const char *address, int64_t user_id, void *arg), void *arg);

/* Group managers.  *found 0: no such group. */
int store_userlist_managers(struct store *st, const char *group,
			    int (*cb)(int64_t user_id, const char *name, void *arg), void *arg,
			    int *found);
/* *found 0: no such group; *added 0: already a manager. */
int store_userlist_manager_add(struct store *st, const char *group, int64_t user_id,
			       int *found, int *added);
int store_userlist_manager_remove(struct store *st, const char *group, int64_t user_id,
				  int *found, int *removed);

#endif
