/*
 * cli_mailbox: "moatd mailbox-rules OWNER ..." (also "moatd rules --user
 * NAME ..." and "moatd rules --group ADDRESS ...") — one owner's mailbox
 * rule set from the shell (docs/mailbox-rules.md): list, show, add,
 * delete, enable, disable, order, import, export, test, sieve-export and
 * sieve-import.  OWNER is a directory user's name or address, or a group's
 * address after "@" (@fleet@example.org).  Works on the database directly,
 * with moatd running or not: a change bumps only that set's generation and
 * the running daemon uses it for the next message.  The operations are
 * policy_mbrules' (and rules_sieve's), the same the API makes, with the
 * same checks and limits and an audit row (actor "cli", via "system").
 *
 * Output: a table for list, JSON for show, export, import and test, the
 * script for sieve-export.
 */
#include "cli.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../conf/conf.h"
#include "../policy/policy_mbrules.h"
#include "../rules/rules.h"
#include "../rules/rules_sieve.h"
#include "../store/store.h"
#include "../store/store_auth.h"
#include "../store/store_mailbox.h"
#include "../util/util.h"

#define CLI_MAILBOX_TEST_MAX (1024 * 1024) /* octets of a test message, as the API */

static const struct policy_rules_actor cli_actor = { 0, "cli", "system", NULL };

static void usage(FILE *out)
{
	fprintf(out,
		"usage: moatd mailbox-rules [-c FILE] [--data-dir DIR] OWNER COMMAND [ARGS]\n"
		"       moatd rules [-c FILE] [--data-dir DIR] --user NAME|--group ADDRESS COMMAND [ARGS]\n"
		"OWNER: a directory user's name or address, or @ADDRESS for a group\n"
		"commands:\n"
		"  list [--search TEXT] [--enabled|--disabled]\n"
		"                            the rules in evaluation order (a table)\n"
		"  show ID                   one rule as JSON\n"
		"  add FILE|-                add the rule object in FILE (\"position\": N inserts)\n"
		"  delete ID                 remove a rule\n"
		"  enable ID | disable ID    switch a rule on or off\n"
		"  order ID...               the new evaluation order: every id once\n"
		"  export                    the set as a JSON array\n"
		"  import FILE|- [--append]  replace (or extend) the set with a JSON array\n"
		"  test MESSAGE-FILE|- [--address ADDR]\n"
		"                            dry run of the set on a message (JSON)\n"
		"  sieve-export              the set as a Sieve script (RFC 5228)\n"
		"  sieve-import FILE|- [--append]\n"
		"                            rules from a Sieve script; what is not imported is listed\n");
}

static int fail(const char *cmd, const struct policy_rules_err *e)
{
	fprintf(stderr, "moatd mailbox-rules %s: %s\n", cmd, e->message);
	return 1;
}

/* path ("-": standard input), at most max octets, into b; -1 after a message. */
static int load_file(const char *cmd, const char *path, size_t max, struct dynbuf *b)
{
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
	char chunk[8192];
	size_t n;
	int rc = 0;

	dynbuf_init(b, max);
	if (f == NULL) {
		fprintf(stderr, "moatd mailbox-rules %s: %s: %s\n", cmd, path, strerror(errno));
		return -1;
	}
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		if (dynbuf_add(b, chunk, n) < 0) {
			fprintf(stderr, "moatd mailbox-rules %s: %s: larger than %zu octets\n", cmd,
				path, max);
			dynbuf_free(b);
			rc = -1;
			break;
		}
	}
	if (f != stdin)
		fclose(f);
	return rc;
}

static json_t *load_json(const char *cmd, const char *path, size_t max)
{
	struct dynbuf b;
	json_error_t jerr;
	json_t *j;

	if (load_file(cmd, path, max, &b) < 0)
		return NULL;
	j = json_loadb(b.data ? b.data : "", b.len, JSON_REJECT_DUPLICATES, &jerr);
	dynbuf_free(&b);
	if (j == NULL)
		fprintf(stderr, "moatd mailbox-rules %s: %s: invalid JSON at line %d: %s\n", cmd,
			path, jerr.line, jerr.text);
	return j;
}

struct owner {
	struct policy_mbrules_owner o;
	char label[400];
	char address[320];
};

/* OWNER into o: a user (name or address) or "@" + a group's address. */
static int resolve_owner(struct store *st, const struct conf *conf, const char *word,
			 int group, struct owner *ow)
{
	char low[320];
	size_t i, n;
	int found = 0;

	memset(ow, 0, sizeof(*ow));
	ow->o.rules_max = conf->mailbox_rules_max;
	ow->o.value_max = conf->mailbox_rule_value_max;
	ow->o.total_bytes = conf->mailbox_rules_total_bytes;
	ow->o.label = ow->label;
	if (word[0] == '@' && !group) {
		group = 1;
		word++;
	}
	n = strlen(word);
	if (n == 0 || n >= sizeof(low)) {
		fprintf(stderr, "moatd mailbox-rules: owner \"%s\": a user or @group address\n",
			word);
		return -1;
	}
	for (i = 0; i <= n; i++)
		low[i] = (char)((word[i] >= 'A' && word[i] <= 'Z') ? word[i] + 32 : word[i]);
	if (group) {
		if (store_mailbox_group_find(st, low, &ow->o.group_id) < 0)
			goto internal;
		if (ow->o.group_id == 0) {
			fprintf(stderr, "moatd mailbox-rules: %s: no such group\n", word);
			return -1;
		}
		snprintf(ow->label, sizeof(ow->label), "group %s", low);
		strlcpy_s(ow->address, low, sizeof(ow->address));
		return 0;
	}
	{
		struct store_user u;

		if (store_auth_user_by_name(st, word, &u, &found) < 0)
			goto internal;
		if (found) {
			ow->o.user_id = u.id;
			snprintf(ow->label, sizeof(ow->label), "user %s", u.name);
		}
	}
	if (!found && strchr(low, '@') != NULL) {
		if (store_mailbox_user_of(st, low, &ow->o.user_id) < 0)
			goto internal;
		snprintf(ow->label, sizeof(ow->label), "user id %lld", (long long)ow->o.user_id);
	}
	if (ow->o.user_id == 0) {
		fprintf(stderr, "moatd mailbox-rules: %s: no such user (a name or an address; "
				"@ADDRESS for a group)\n", word);
		return -1;
	}
	if (store_mailbox_primary_address(st, ow->o.user_id, ow->address,
					  sizeof(ow->address)) < 0)
		goto internal;
	return 0;
internal:
	fprintf(stderr, "moatd mailbox-rules: %s\n", store_auth_errmsg(st));
	return -1;
}

static int cmd_list(struct store *st, const struct owner *ow, int argc, char **argv)
{
	struct policy_mbrules_query q = { NULL, -1, 0, 0 };
	struct policy_rules_err e;
	json_t *out, *r;
	size_t i;
	int k;

	for (k = 0; k < argc; k++) {
		if (strcmp(argv[k], "--search") == 0 && k + 1 < argc)
			q.q = argv[++k];
		else if (strcmp(argv[k], "--enabled") == 0)
			q.enabled = 1;
		else if (strcmp(argv[k], "--disabled") == 0)
			q.enabled = 0;
		else
			return 2;
	}
	out = policy_mbrules_list(st, &ow->o, &q, &e);
	if (out == NULL)
		return fail("list", &e);
	printf("%-6s %-5s %-8s %-8s %s\n", "ID", "POS", "ENABLED", "HITS", "NAME");
	json_array_foreach(json_object_get(out, "items"), i, r) {
		printf("%-6lld %-5lld %-8s %-8lld %s\n",
		       (long long)json_integer_value(json_object_get(r, "id")),
		       (long long)json_integer_value(json_object_get(r, "position")),
		       json_is_true(json_object_get(r, "enabled")) ? "yes" : "no",
		       (long long)json_integer_value(json_object_get(r, "hits")),
		       json_string_value(json_object_get(r, "name")));
	}
	json_decref(out);
	return 0;
}

static int cmd_test(struct store *st, const struct owner *ow, int argc, char **argv)
{
	struct policy_rules_err e;
	const char *file = NULL, *addr = ow->address[0] ? ow->address : "postmaster@localhost";
	struct dynbuf b;
	json_t *out;
	int k;

	for (k = 0; k < argc; k++) {
		if (strcmp(argv[k], "--address") == 0 && k + 1 < argc)
			addr = argv[++k];
		else if ((argv[k][0] != '-' || strcmp(argv[k], "-") == 0) && file == NULL)
			file = argv[k];
		else
			return 2;
	}
	if (file == NULL)
		return 2;
	if (load_file("test", file, CLI_MAILBOX_TEST_MAX, &b) < 0)
		return 1;
	if (b.len == 0) {
		fprintf(stderr, "moatd mailbox-rules test: %s: empty message\n", file);
		dynbuf_free(&b);
		return 1;
	}
	out = policy_mbrules_test(st, &ow->o, addr, b.data, b.len, &e);
	dynbuf_free(&b);
	if (out == NULL)
		return fail("test", &e);
	cli_print_json(out);
	json_decref(out);
	return 0;
}

static int cmd_sieve_export(struct store *st, const struct owner *ow)
{
	struct policy_rules_err e;
	json_t *arr, *skipped = NULL, *x;
	char *text;
	size_t i;

	arr = policy_mbrules_export(st, &ow->o, &e);
	if (arr == NULL)
		return fail("sieve-export", &e);
	text = rules_sieve_export(arr, &skipped);
	json_decref(arr);
	if (text == NULL) {
		json_decref(skipped);
		fprintf(stderr, "moatd mailbox-rules sieve-export: the set cannot be exported\n");
		return 1;
	}
	fputs(text, stdout);
	free(text);
	/* the script names them as comments too; stderr tells a script's caller */
	json_array_foreach(skipped, i, x)
		fprintf(stderr, "not exported: rule %s: %s\n",
			json_string_value(json_object_get(x, "name")),
			json_string_value(json_object_get(x, "reason")));
	json_decref(skipped);
	return 0;
}

static int cmd_sieve_import(struct store *st, const struct conf *conf, const struct owner *ow,
			    int argc, char **argv)
{
	struct policy_rules_err e;
	struct rules_sieve_err se;
	struct dynbuf b;
	json_t *rules, *skipped, *out;
	int append = 0;

	if (argc == 2 && strcmp(argv[1], "--append") == 0)
		append = 1;
	else if (argc != 1)
		return 2;
	if (load_file("sieve-import", argv[0], (size_t)conf->rules_max_body, &b) < 0)
		return 1;
	if (rules_sieve_import(b.data ? b.data : "", b.len, NULL, &rules, &skipped, &se) < 0) {
		fprintf(stderr, "moatd mailbox-rules sieve-import: %s: line %u: %s\n", argv[0],
			se.line, se.msg);
		dynbuf_free(&b);
		return 1;
	}
	dynbuf_free(&b);
	out = policy_mbrules_import(st, &ow->o, rules, append, &cli_actor, &e);
	json_decref(rules);
	if (out == NULL) {
		json_decref(skipped);
		return fail("sieve-import", &e);
	}
	json_object_set_new(out, "skipped", skipped);
	cli_print_json(out);
	json_decref(out);
	return 0;
}

static int cmd_order(struct store *st, const struct owner *ow, int argc, char **argv)
{
	struct policy_rules_err e;
	json_t *j, *o;
	int64_t id;
	int i;

	if (argc == 0)
		return 2;
	j = json_array();
	for (i = 0; i < argc; i++) {
		if (cli_parse_rule_id("mailbox-rules", "order", argv[i], &id) < 0) {
			json_decref(j);
			return 1;
		}
		json_array_append_new(j, json_integer(id));
	}
	o = policy_mbrules_order(st, &ow->o, j, &cli_actor, &e);
	json_decref(j);
	if (o == NULL)
		return fail("order", &e);
	json_decref(o);
	printf("order set (%d rules)\n", argc);
	return 0;
}

static int run(struct store *st, const struct conf *conf, const struct owner *ow,
	       const char *cmd, int argc, char **argv)
{
	struct policy_rules_err e;
	json_t *j, *o;
	int64_t id;

	if (strcmp(cmd, "list") == 0)
		return cmd_list(st, ow, argc, argv);
	if (strcmp(cmd, "test") == 0)
		return cmd_test(st, ow, argc, argv);
	if (strcmp(cmd, "order") == 0)
		return cmd_order(st, ow, argc, argv);
	if (strcmp(cmd, "sieve-import") == 0)
		return cmd_sieve_import(st, conf, ow, argc, argv);
	if (strcmp(cmd, "export") == 0 || strcmp(cmd, "sieve-export") == 0) {
		if (argc != 0)
			return 2;
		if (strcmp(cmd, "sieve-export") == 0)
			return cmd_sieve_export(st, ow);
		o = policy_mbrules_export(st, &ow->o, &e);
		if (o == NULL)
			return fail(cmd, &e);
		cli_print_json(o);
		json_decref(o);
		return 0;
	}
	if (strcmp(cmd, "add") == 0 || strcmp(cmd, "import") == 0) {
		int add = strcmp(cmd, "add") == 0, append = 0;

		if (!add && argc == 2 && strcmp(argv[1], "--append") == 0)
			append = 1;
		else if (argc != 1)
			return 2;
		j = load_json(cmd, argv[0], (size_t)(add ? conf->http_max_body :
							  conf->rules_max_body));
		if (j == NULL)
			return 1;
		o = add ? policy_mbrules_create(st, &ow->o, j, &cli_actor, &e) :
			  policy_mbrules_import(st, &ow->o, j, append, &cli_actor, &e);
		json_decref(j);
		if (o == NULL)
			return fail(cmd, &e);
		if (add)
			printf("rule %lld added\n",
			       (long long)json_integer_value(json_object_get(o, "id")));
		else
			printf("%lld rules imported, %lld in the set\n",
			       (long long)json_integer_value(json_object_get(o, "imported")),
			       (long long)json_integer_value(json_object_get(o, "total")));
		json_decref(o);
		return 0;
	}
	/* show, delete, enable, disable: one id */
	if (argc != 1)
		return 2;
	if (cli_parse_rule_id("mailbox-rules", cmd, argv[0], &id) < 0)
		return 1;
	if (strcmp(cmd, "show") == 0) {
		o = policy_mbrules_get(st, &ow->o, id, &e);
		if (o == NULL)
			return fail(cmd, &e);
		cli_print_json(o);
		json_decref(o);
		return 0;
	}
	if (strcmp(cmd, "delete") == 0) {
		if (policy_mbrules_delete(st, &ow->o, id, &cli_actor, &e) < 0)
			return fail(cmd, &e);
		printf("rule %lld deleted\n", (long long)id);
		return 0;
	}
	j = json_pack("{s:b}", "enabled", strcmp(cmd, "enable") == 0);
	o = policy_mbrules_patch(st, &ow->o, id, j, &cli_actor, &e);
	json_decref(j);
	if (o == NULL)
		return fail(cmd, &e);
	json_decref(o);
	printf("rule %lld %s\n", (long long)id, strcmp(cmd, "enable") == 0 ? "enabled" :
									    "disabled");
	return 0;
}

int cli_mailbox_main(int argc, char **argv)
{
	static const char *const verbs[] = { "list", "show", "add", "delete", "enable",
					     "disable", "order", "export", "import", "test",
					     "sieve-export", "sieve-import", NULL };
	struct conf conf;
	struct owner ow;
	struct store *st;
	const char *owner, *cmd;
	char err[1400];
	int status, group = 0;
	size_t i;

	if (cli_load_conf(&argc, &argv, &conf, err, sizeof(err)) < 0) {
		fprintf(stderr, "moatd mailbox-rules: %s\n", err);
		return 1;
	}
	if (argc >= 1 && (strcmp(argv[0], "help") == 0 || strcmp(argv[0], "-h") == 0 ||
			  strcmp(argv[0], "--help") == 0)) {
		usage(stdout);
		return 0;
	}
	/* "--user NAME" / "--group ADDRESS" (as moatd rules passes them) or OWNER */
	if (argc >= 2 && (strcmp(argv[0], "--user") == 0 || strcmp(argv[0], "--group") == 0)) {
		group = strcmp(argv[0], "--group") == 0;
		argc--;
		argv++;
	}
	if (argc < 2 || argv[0][0] == '-') {
		usage(stderr);
		return 2;
	}
	owner = argv[0];
	cmd = argv[1];
	for (i = 0; verbs[i] != NULL && strcmp(verbs[i], cmd) != 0; i++)
		;
	if (verbs[i] == NULL) {
		fprintf(stderr, "moatd mailbox-rules: unknown command \"%s\"\n", cmd);
		usage(stderr);
		return 2;
	}
	st = cli_open_store(&conf, "mailbox-rules", 1);
	if (st == NULL)
		return 1;
	if (resolve_owner(st, &conf, owner, group, &ow) < 0) {
		store_close(st);
		return 1;
	}
	status = run(st, &conf, &ow, cmd, argc - 2, argv + 2);
	if (status == 2)
		usage(stderr);
	store_close(st);
	return status;
}
