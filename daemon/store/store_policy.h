/*
 * store_policy: SQL of the front-door policy — list entries, settings,
 * DNSBL sites, the directory, and policy statistics (schema/003).
 *
 * Used by the policy watcher thread (to build snapshots and flush
 * statistics) and by `moatd policy` (and later the API).  Never called on
 * the mail event loop.  Every write to a policy table bumps the policy
 * generation through triggers in the schema.  Returns 0 or -1; err filled
 * where taken.  Strings passed to callbacks live only during the call.
 */
#ifndef MOAT_STORE_POLICY_H
#define MOAT_STORE_POLICY_H

#include <stddef.h>
#include <stdint.h>

struct store;

int store_policy_generation(struct store *st, int64_t *gen);
/* The connection's last error, for messages. */
const char *store_policy_errmsg(struct store *st);
/* A read transaction, so that a snapshot sees one consistent state. */
int store_policy_read_begin(struct store *st);
void store_policy_read_end(struct store *st);

struct store_policy_entry {
	int64_t id;
	const char *list;
	const char *value;
	const char *comment;
	int64_t created;      /* unix ms */
};

/* *id receives the new entry's id; a duplicate (list, value) is an error. */
int store_policy_entry_add(struct store *st, const char *list, const char *value,
			   const char *comment, int64_t *id, char *err, size_t errsz);
/*
 * Change value and/or comment (NULL: keep) of entry id; never commits (the
 * caller's transaction).  *found 0 when no such id; a duplicate (list,
 * value) sets *dup and returns -1.
 */
int store_policy_entry_update(struct store *st, int64_t id, const char *value,
			      const char *comment, int *found, int *dup);
/* *removed: rows deleted (0 when none matched). */
int store_policy_entry_remove(struct store *st, int64_t id, int *removed);
int store_policy_entry_remove_value(struct store *st, const char *list, const char *value,
				    int *removed);
/* list NULL: every list.  cb returns non-zero to stop. */
int store_policy_entries(struct store *st, const char *list,
			 int (*cb)(const struct store_policy_entry *e, void *arg), void *arg);
int store_policy_entry_get(struct store *st, int64_t id,
			   int (*cb)(const struct store_policy_entry *e, void *arg), void *arg,
			   int *found);

int store_policy_setting_set(struct store *st, const char *key, const char *value);
/* A setting's stored value into out ("" and *found 0 when unset). */
int store_policy_setting(struct store *st, const char *key, char *out, size_t outsz, int *found);
int store_policy_setting_unset(struct store *st, const char *key, int *removed);
int store_policy_settings(struct store *st,
			  int (*cb)(const char *key, const char *value, void *arg), void *arg);

struct store_dnsbl_site {
	int64_t id;
	const char *zone;
	const char *kind;     /* block | allow */
	int enabled;
	const char *action;   /* refuse | tag | log */
	const char *message;
	const char *codes;
	int weight;
	const char *comment;
	int64_t created;
};

int store_policy_site_add(struct store *st, const struct store_dnsbl_site *s, int64_t *id,
			  char *err, size_t errsz);
/* Update every field of the site named s->zone; *found 0 when none. */
int store_policy_site_update(struct store *st, const struct store_dnsbl_site *s, int *found);
int store_policy_site_remove(struct store *st, const char *zone, int *removed);
int store_policy_sites(struct store *st,
		       int (*cb)(const struct store_dnsbl_site *s, void *arg), void *arg);

/* The directory. */
int store_policy_user_add(struct store *st, const char *name, const char *const *addrs,
			  size_t naddrs, char *err, size_t errsz);
int store_policy_user_remove(struct store *st, const char *name, int *removed);
/* Inside the caller's transaction; *taken when the address is in use. */
int store_policy_group_add_tx(struct store *st, const char *address, const char *name,
			      const char *const *members, size_t nmembers, int *taken,
			      char *err, size_t errsz);
int store_policy_group_add(struct store *st, const char *address, const char *name,
			   const char *const *members, size_t nmembers, char *err, size_t errsz);
int store_policy_group_remove(struct store *st, const char *address, int *removed);

/*
 * Single directory edits for the API.  None of these commits: the caller
 * wraps the edit and its audit entry in one transaction.
 */
/* *taken 1 (nothing added) when the address is anyone's address or a group. */
int store_policy_address_add(struct store *st, int64_t user_id, const char *address,
			      const char *kind, int *taken);
/* *removed 0 when that user does not have the address. */
int store_policy_address_remove(struct store *st, int64_t user_id, const char *address,
				int *removed);
/* *found 0: no such group; *added 0: already a member. */
int store_policy_member_add(struct store *st, const char *group, const char *member,
			    int *found, int *added);
int store_policy_member_remove(struct store *st, const char *group, const char *member,
			       int *found, int *removed);

struct store_dir_row {
	const char *address;
	const char *kind;     /* primary | alias | group */
	const char *owner;    /* user name, or group name */
	const char *members;  /* groups: comma-separated members; else NULL */
	const char *managers; /* groups: comma-separated user names, NULL when none */
};
int store_policy_directory(struct store *st,
			   int (*cb)(const struct store_dir_row *r, void *arg), void *arg);

/* Statistics: add deltas to the row of (name, UTC day). */
int store_policy_stat_add(struct store *st, const char *check, int64_t day, int64_t count);
int store_policy_dnsbl_stat_add(struct store *st, const char *zone, int64_t day,
				int64_t queries, int64_t hits, int64_t tempfails,
				int64_t last_hit);

struct store_dnsbl_stat {
	const char *zone;
	int64_t queries, hits, tempfails, last_hit, hits_today;
};
int store_policy_dnsbl_stats(struct store *st, int64_t today,
			     int (*cb)(const struct store_dnsbl_stat *s, void *arg), void *arg);
int store_policy_stats(struct store *st, int64_t since_day,
		       int (*cb)(const char *check, int64_t day, int64_t count, void *arg),
		       void *arg);
/* Per zone and UTC day (unix day number) in [from_day, to_day], by day then zone. */
struct store_dnsbl_day {
	const char *zone;
	int64_t day, queries, hits, tempfails;
};
int store_policy_dnsbl_daily(struct store *st, int64_t from_day, int64_t to_day,
			     int (*cb)(const struct store_dnsbl_day *d, void *arg), void *arg);

#endif
