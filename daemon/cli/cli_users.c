/*
 * cli_users: `moatd users senders NAME [add KIND VALUE | del ID|VALUE]` —
 * a directory user's personal sender list (docs/policy.md "Personal sender
 * lists") from the command line, checked as the API checks it
 * (policy_user_value_check, user_sender_list_max), with an audit row
 * (actor "cli", via "system") in the same transaction as the change.  The
 * change bumps the policy generation, so a running moatd applies it to the
 * next message.
 */
#include "cli.h"

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../policy/policy_validate.h"
#include "../store/store.h"
#include "../store/store_auth.h"
#include "../store/store_userlist.h"
#include "../util/util.h"

static void usage(FILE *out)
{
	fprintf(out,
		"usage: moatd users [-c FILE] [--data-dir DIR] COMMAND ...\n"
		"  senders NAME                     NAME's personal sender list: id, kind, value\n"
		"  senders NAME add allow|block VALUE\n"
		"                                   add user@example.com or @example.com\n"
		"  senders NAME del ID|VALUE        remove an entry\n");
}

static int print_entry(const struct store_sender_entry *e, void *arg)
{
	(void)arg;
	printf("%lld\t%s\t%s\n", (long long)e->id, e->kind, e->value);
	return 0;
}

struct found_entry {
	const char *value;    /* look for this value; NULL: the id given */
	int64_t id;
	char kind[8];
	char found_value[400];
};

static int keep_entry(const struct store_sender_entry *e, void *arg)
{
	struct found_entry *f = arg;

	if (f->value != NULL && strcmp(e->value, f->value) != 0)
		return 0;
	f->id = e->id;
	strlcpy_s(f->kind, e->kind, sizeof(f->kind));
	strlcpy_s(f->found_value, e->value, sizeof(f->found_value));
	return 1;
}

/* A positive decimal id, or 0. */
static int64_t entry_id(const char *s)
{
	int64_t v = 0;

	if (*s == '\0')
		return 0;
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '9' || v > (INT64_MAX - 9) / 10)
			return 0;
		v = v * 10 + (*s - '0');
	}
	return v;
}

static int audit(struct store *st, const char *action, int64_t uid, int64_t id,
		 const char *kind, const char *value, int added)
{
	struct store_audit a;
	char oid[48];
	json_t *o = json_pack("{s:I, s:s, s:s}", "id", (json_int_t)id, "kind", kind, "value",
			      value);
	char *text = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
	int rc;

	json_decref(o);
	snprintf(oid, sizeof(oid), "%lld/%lld", (long long)uid, (long long)id);
	memset(&a, 0, sizeof(a));
	a.ts = time_now_ms();
	a.actor = "cli";
	a.via = "system";
	a.client_addr = "-";
	a.action = action;
	a.object_type = "user_sender";
	a.object_id = oid;
	a.before = added ? NULL : text;
	a.after = added ? text : NULL;
	rc = store_auth_audit_add(st, &a);
	free(text);
	return rc;
}

static int cmd_add(struct store *st, const struct conf *conf, int64_t uid, const char *kind,
		   const char *value)
{
	char norm[400], err[300];
	int64_t n, id;
	int dup;

	if (strcmp(kind, "allow") != 0 && strcmp(kind, "block") != 0) {
		fprintf(stderr, "moatd users: kind is allow or block\n");
		return 2;
	}
	if (policy_user_value_check(value, strlen(value), norm, sizeof(norm), err,
				    sizeof(err)) < 0) {
		fprintf(stderr, "moatd users: %s: %s\n", value, err);
		return 1;
	}
	if (store_begin(st) < 0 || store_userlist_count(st, uid, &n) < 0)
		goto fail;
	if (n >= conf->user_sender_list_max) {
		store_rollback(st);
		fprintf(stderr, "moatd users: the list holds %lld entries, the most allowed"
			" (user_sender_list_max)\n", (long long)n);
		return 1;
	}
	if (store_userlist_add(st, uid, kind, norm, &id, &dup) < 0)
		goto fail;
	if (dup) {
		store_rollback(st);
		fprintf(stderr, "moatd users: %s is already on the list\n", norm);
		return 1;
	}
	if (audit(st, "user_sender.create", uid, id, kind, norm, 1) < 0 || store_commit(st) < 0)
		goto fail;
	printf("%lld\n", (long long)id);
	return 0;
fail:
	fprintf(stderr, "moatd users: %s\n", store_auth_errmsg(st));
	store_rollback(st);
	return 1;
}

static int cmd_del(struct store *st, int64_t uid, const char *what)
{
	struct found_entry f;
	char norm[400], err[300];
	int64_t id = entry_id(what);
	int found = 0, removed;

	memset(&f, 0, sizeof(f));
	if (id == 0) {
		if (policy_user_value_check(what, strlen(what), norm, sizeof(norm), err,
					    sizeof(err)) < 0) {
			fprintf(stderr, "moatd users: %s: not an entry id or value\n", what);
			return 1;
		}
		f.value = norm;
	}
	if (store_begin(st) < 0)
		goto fail;
	if (id != 0 ? store_userlist_get(st, uid, id, keep_entry, &f, &found) < 0
		    : store_userlist_list(st, uid, keep_entry, &f) < 0)
		goto fail;
	if (f.id == 0) {
		store_rollback(st);
		fprintf(stderr, "moatd users: no such entry %s\n", what);
		return 1;
	}
	if (store_userlist_remove(st, uid, f.id, &removed) < 0 ||
	    audit(st, "user_sender.delete", uid, f.id, f.kind, f.found_value, 0) < 0 ||
	    store_commit(st) < 0)
		goto fail;
	printf("removed %lld\n", (long long)f.id);
	return 0;
fail:
	fprintf(stderr, "moatd users: %s\n", store_auth_errmsg(st));
	store_rollback(st);
	return 1;
}

int cli_users_main(int argc, char **argv)
{
	static const char *const verbs[] = { "senders", NULL };
	struct conf conf;
	struct store_user *u = NULL;
	struct store *st;
	const char *cmd;
	int rc, found = 0;

	if (cli_begin("users", &argc, &argv, &conf, verbs, usage, &cmd, &rc) < 0)
		return rc;
	if (!(argc == 1 || (argc == 4 && strcmp(argv[1], "add") == 0) ||
	      (argc == 3 && strcmp(argv[1], "del") == 0))) {
		usage(stderr);
		return 2;
	}
	st = cli_open_store(&conf, "users", 0);
	if (st == NULL)
		return 1;
	u = xcalloc(1, sizeof(*u));
	if (store_auth_user_by_name(st, argv[0], u, &found) < 0) {
		fprintf(stderr, "moatd users: %s\n", store_auth_errmsg(st));
		rc = 1;
	} else if (!found) {
		fprintf(stderr, "moatd users: no such user %s\n", argv[0]);
		rc = 1;
	} else if (argc == 1) {
		rc = store_userlist_list(st, u->id, print_entry, NULL) < 0 ? 1 : 0;
	} else if (argc == 4) {
		rc = cmd_add(st, &conf, u->id, argv[2], argv[3]);
	} else {
		rc = cmd_del(st, u->id, argv[2]);
	}
	free(u);
	store_close(st);
	if (rc == 2)
		usage(stderr);
	return rc;
}
