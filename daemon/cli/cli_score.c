/*
 * cli_score: `moatd score thresholds [list | set SCOPE NAME [--tag N]
 * [--quarantine N] [--refuse N] [--greylist N] | delete SCOPE NAME]` — the
 * score thresholds of a domain or a directory user (docs/score.md
 * "Thresholds") from the command line.
 *
 * `set` changes only the values given (N a number, or "inherit" to take
 * the value from the domain or the global setting again) and keeps the
 * row's others; the checks are policy_score_set()'s, the ones the API
 * applies.  Every change is audited (actor "cli", via "system") in the
 * transaction that makes it and bumps the policy generation, so a running
 * moatd applies it to the next message.
 */
#include "cli.h"

#include <errno.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../policy/policy_score.h"
#include "../store/store.h"
#include "../store/store_auth.h"
#include "../store/store_score.h"
#include "../util/util.h"

static const char *const value_names[4] = { "tag", "quarantine", "refuse", "greylist" };
static const unsigned value_bits[4] = { SCORE_T_TAG, SCORE_T_QUARANTINE, SCORE_T_REFUSE,
					SCORE_T_GREYLIST };

static void usage(FILE *out)
{
	fprintf(out,
		"usage: moatd score [-c FILE] [--data-dir DIR] thresholds COMMAND ...\n"
		"  thresholds [list]                the global thresholds and every override:\n"
		"                                   scope, name, tag, quarantine, refuse, greylist\n"
		"                                   (- inherits)\n"
		"  thresholds set domain|user NAME [--tag N] [--quarantine N] [--refuse N]\n"
		"                 [--greylist N]    set those values of a domain's or a directory\n"
		"                                   user's override (N: a number, or inherit)\n"
		"  thresholds delete domain|user NAME\n"
		"                                   remove the override\n");
}

static double *value_at(struct score_thresholds *t, int i)
{
	return i == 0 ? &t->tag : i == 1 ? &t->quarantine : i == 2 ? &t->refuse : &t->greylist;
}

static void print_value(const json_t *v)
{
	if (json_is_number(v))
		printf("\t%g", json_number_value(v));
	else
		printf("\t-");
}

static int cmd_list(struct store *st)
{
	json_t *o = policy_score_list_json(st), *g, *it;
	size_t i;
	int k;

	if (o == NULL) {
		fprintf(stderr, "moatd score: %s\n", store_score_errmsg(st));
		return 1;
	}
	printf("scope\tname\ttag\tquarantine\trefuse\tgreylist\n");
	g = json_object_get(o, "global");
	printf("global\t-");
	for (k = 0; k < 4; k++)
		print_value(json_object_get(g, value_names[k]));
	printf("\n");
	json_array_foreach(json_object_get(o, "items"), i, it) {
		printf("%s\t%s", json_string_value(json_object_get(it, "scope")),
		       json_string_value(json_object_get(it, "name")));
		for (k = 0; k < 4; k++)
			print_value(json_object_get(it, value_names[k]));
		printf("\n");
	}
	json_decref(o);
	return 0;
}

/* A decimal number ("5", "-0.5"); 0 or -1. */
static int parse_number(const char *s, double *out)
{
	const char *p = s;
	char *end;

	if (*p == '-' || *p == '+')
		p++;
	if (*p < '0' || *p > '9' || strlen(s) > 24)
		return -1;
	errno = 0;
	*out = strtod(s, &end);
	if (errno != 0 || *end != '\0')
		return -1;
	return 0;
}

static int audit(struct store *st, const char *action, const char *scope, json_t *before,
		 json_t *after)
{
	struct store_audit a;
	const json_t *row = after != NULL ? after : before;
	char oid[400];
	char *b = before ? json_dumps(before, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	char *af = after ? json_dumps(after, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	int rc;

	snprintf(oid, sizeof(oid), "%s/%s", scope,
		 json_string_value(json_object_get(row, "name")));
	memset(&a, 0, sizeof(a));
	a.ts = time_now_ms();
	a.actor = "cli";
	a.via = "system";
	a.client_addr = "-";
	a.action = action;
	a.object_type = "score_threshold";
	a.object_id = oid;
	a.before = b;
	a.after = af;
	rc = store_auth_audit_add(st, &a);
	free(b);
	free(af);
	return rc;
}

/* A refused change: the message, and the exit status. */
static int refused(struct store *st, const struct policy_score_fail *f)
{
	store_rollback(st);
	if (f->kind == POLICY_SCORE_STORE)
		fprintf(stderr, "moatd score: %s\n", f->message);
	else
		fprintf(stderr, "moatd score: %s%s%s\n", f->field[0] ? f->field : "",
			f->field[0] ? ": " : "", f->message);
	return 1;
}

struct current {
	struct score_override o;
};

static int keep_current(const struct store_score_row *r, void *arg)
{
	struct current *c = arg;

	c->o.set = r->set;
	c->o.v.tag = r->tag;
	c->o.v.quarantine = r->quarantine;
	c->o.v.refuse = r->refuse;
	c->o.v.greylist = r->greylist;
	return 1;
}

static int cmd_set(struct store *st, const char *scope, const char *name, int argc,
		   char **argv)
{
	struct policy_score_fail f;
	struct current cur;
	struct score_override given;
	unsigned cleared = 0;
	json_t *before, *after;
	char lname[400];
	int i, k, found;

	memset(&given, 0, sizeof(given));
	for (i = 0; i < argc; i++) {
		for (k = 0; k < 4; k++)
			if (strncmp(argv[i], "--", 2) == 0 && strcmp(argv[i] + 2, value_names[k]) == 0)
				break;
		if (k == 4 || i + 1 == argc) {
			fprintf(stderr, "moatd score: %s: expected --tag, --quarantine, --refuse or"
				" --greylist with a value\n", argv[i]);
			return 2;
		}
		i++;
		if (strcmp(argv[i], "inherit") == 0) {
			cleared |= value_bits[k];
			given.set &= ~value_bits[k];
		} else if (parse_number(argv[i], value_at(&given.v, k)) < 0) {
			fprintf(stderr, "moatd score: %s: %s: expected a number or inherit\n",
				value_names[k], argv[i]);
			return 1;
		} else {
			given.set |= value_bits[k];
			cleared &= ~value_bits[k];
		}
	}
	if (given.set == 0 && cleared == 0) {
		fprintf(stderr, "moatd score: set: give at least one of --tag, --quarantine,"
			" --refuse, --greylist\n");
		return 2;
	}
	/* The domain as the row keys it, so that the current row is found. */
	strlcpy_s(lname, name, sizeof(lname));
	if (strcmp(scope, "domain") == 0)
		for (i = 0; lname[i] != '\0'; i++)
			if (lname[i] >= 'A' && lname[i] <= 'Z')
				lname[i] = (char)(lname[i] + 32);
	memset(&cur, 0, sizeof(cur));
	if (store_begin(st) < 0 ||
	    (policy_score_scope(scope) == 0 &&
	     store_score_get(st, scope, lname, keep_current, &cur, &found) < 0)) {
		fprintf(stderr, "moatd score: %s\n", store_score_errmsg(st));
		store_rollback(st);
		return 1;
	}
	for (k = 0; k < 4; k++) {
		if (given.set & value_bits[k]) {
			*value_at(&cur.o.v, k) = *value_at(&given.v, k);
			cur.o.set |= value_bits[k];
		}
	}
	cur.o.set &= ~cleared;
	if (policy_score_set(st, scope, lname, &cur.o, &before, &after, &f) < 0)
		return refused(st, &f);
	if (audit(st, "score_threshold.set", scope, before, after) < 0 || store_commit(st) < 0) {
		json_decref(before);
		json_decref(after);
		fprintf(stderr, "moatd score: %s\n", store_score_errmsg(st));
		store_rollback(st);
		return 1;
	}
	printf("%s %s:", scope, json_string_value(json_object_get(after, "name")));
	for (k = 0; k < 4; k++) {
		printf(" %s=", value_names[k]);
		if (json_is_number(json_object_get(after, value_names[k])))
			printf("%g", json_number_value(json_object_get(after, value_names[k])));
		else
			printf("inherit");
	}
	printf("\n");
	json_decref(before);
	json_decref(after);
	return 0;
}

static int cmd_delete(struct store *st, const char *scope, const char *name)
{
	struct policy_score_fail f;
	json_t *before;

	if (store_begin(st) < 0) {
		fprintf(stderr, "moatd score: %s\n", store_score_errmsg(st));
		return 1;
	}
	if (policy_score_delete(st, scope, name, &before, &f) < 0)
		return refused(st, &f);
	if (audit(st, "score_threshold.delete", scope, before, NULL) < 0 ||
	    store_commit(st) < 0) {
		json_decref(before);
		fprintf(stderr, "moatd score: %s\n", store_score_errmsg(st));
		store_rollback(st);
		return 1;
	}
	printf("removed %s %s\n", scope, json_string_value(json_object_get(before, "name")));
	json_decref(before);
	return 0;
}

int cli_score_main(int argc, char **argv)
{
	static const char *const verbs[] = { "thresholds", NULL };
	struct conf conf;
	struct store *st;
	const char *cmd, *sub;
	int rc;

	if (cli_begin("score", &argc, &argv, &conf, verbs, usage, &cmd, &rc) < 0)
		return rc;
	sub = argc > 0 ? argv[0] : "list";
	if (!((strcmp(sub, "list") == 0 && argc <= 1) ||
	      (strcmp(sub, "set") == 0 && argc >= 3) ||
	      (strcmp(sub, "delete") == 0 && argc == 3))) {
		usage(stderr);
		return 2;
	}
	if (argc >= 3 && policy_score_scope(argv[1]) < 0) {
		fprintf(stderr, "moatd score: %s: the scope is domain or user\n", argv[1]);
		return 2;
	}
	st = cli_open_store(&conf, "score", strcmp(sub, "list") != 0);
	if (st == NULL)
		return 1;
	if (strcmp(sub, "list") == 0)
		rc = cmd_list(st);
	else if (strcmp(sub, "set") == 0)
		rc = cmd_set(st, argv[1], argv[2], argc - 3, argv + 3);
	else
		rc = cmd_delete(st, argv[1], argv[2]);
	store_close(st);
	if (rc == 2)
		usage(stderr);
	return rc;
}
