/*
 * cli_rules: "moatd rules ..." — the server mail rules from the shell:
 * list, show, add, delete, enable, disable, export, import, order and the
 * dry run (test).  Works on the database directly, with moatd running or
 * not: a change bumps the policy generation and the running daemon applies
 * it to the next message.  The operations are policy_rules', the same the
 * API makes, with an audit row (actor "cli", via "system").
 *
 * Output: a table for list, JSON for show, export and test.
 */
#include "cli.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../conf/conf.h"
#include "../rules/rules.h"
#include "../policy/policy_rules.h"
#include "../store/store.h"
#include "../util/util.h"

#define CLI_RULES_TO_MAX 1000   /* --to options of one test */

static const struct policy_rules_actor cli_actor = { 0, "cli", "system", NULL };

static void usage(FILE *out)
{
	fprintf(out,
		"usage: moatd rules [-c FILE] [--data-dir DIR] COMMAND [ARGS]\n"
		"commands:\n"
		"  list                      every rule in evaluation order (a table)\n"
		"  show ID                   one rule as JSON\n"
		"  add FILE|-                add the rule object in FILE (\"position\": N inserts)\n"
		"  delete ID                 remove a rule\n"
		"  enable ID | disable ID    switch a rule on or off\n"
		"  export                    the portable set as a JSON array\n"
		"  import FILE|- [--append]  replace (or extend) the set with a JSON array\n"
		"  order ID...               the new evaluation order: every id once\n"
		"  test MESSAGE-FILE [--from ADDR] [--to ADDR]...\n"
		"                            dry run of the stored set on a message (JSON)\n"
		"a user's or a group's mailbox rules: moatd rules --user NAME|--group ADDRESS ...\n"
		"(the same as moatd mailbox-rules, see moatd mailbox-rules help)\n");
}

static int fail(const char *cmd, const struct policy_rules_err *e)
{
	fprintf(stderr, "moatd rules %s: %s\n", cmd, e->message);
	return 1;
}

/* The JSON in path ("-": standard input), at most max octets. */
static json_t *load_json(const char *cmd, const char *path, size_t max)
{
	json_error_t jerr;
	json_t *j;
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
	struct dynbuf b;
	char chunk[8192];
	size_t n;

	if (f == NULL) {
		fprintf(stderr, "moatd rules %s: %s: %s\n", cmd, path, strerror(errno));
		return NULL;
	}
	dynbuf_init(&b, max);
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		if (dynbuf_add(&b, chunk, n) < 0) {
			fprintf(stderr, "moatd rules %s: %s: larger than %zu octets\n", cmd, path,
				max);
			dynbuf_free(&b);
			if (f != stdin)
				fclose(f);
			return NULL;
		}
	}
	if (f != stdin)
		fclose(f);
	j = json_loadb(b.data ? b.data : "", b.len, JSON_REJECT_DUPLICATES, &jerr);
	dynbuf_free(&b);
	if (j == NULL)
		fprintf(stderr, "moatd rules %s: %s: invalid JSON at line %d: %s\n", cmd, path,
			jerr.line, jerr.text);
	return j;
}

static int cmd_list(struct store *st)
{
	struct policy_rules_err e;
	json_t *items = policy_rules_list(st, -1, &e), *r;
	size_t i;

	if (items == NULL)
		return fail("list", &e);
	printf("%-6s %-4s %-8s %-11s %-8s %s\n", "ID", "POS", "ENABLED", "ACTION", "HITS", "NAME");
	json_array_foreach(items, i, r) {
		printf("%-6lld %-4lld %-8s %-11s %-8lld %s\n",
		       (long long)json_integer_value(json_object_get(r, "id")),
		       (long long)json_integer_value(json_object_get(r, "position")),
		       json_is_true(json_object_get(r, "enabled")) ? "yes" : "no",
		       json_string_value(json_object_get(json_object_get(r, "action"), "type")),
		       (long long)json_integer_value(json_object_get(r, "hits")),
		       json_string_value(json_object_get(r, "name")));
	}
	json_decref(items);
	return 0;
}

static int cmd_enable(struct store *st, const char *cmd, int64_t id, int on)
{
	struct policy_rules_err e;
	json_t *body = json_pack("{s:b}", "enabled", on), *o;

	o = policy_rules_patch(st, id, body, &cli_actor, &e);
	json_decref(body);
	if (o == NULL)
		return fail(cmd, &e);
	printf("rule %lld %s\n", (long long)id, on ? "enabled" : "disabled");
	json_decref(o);
	return 0;
}

static int cmd_test(struct store *st, const struct conf *conf, int argc, char **argv)
{
	struct policy_rules_env env;
	struct policy_rules_err e;
	json_t *body, *rcpts, *out;
	struct dynbuf b;
	char chunk[8192];
	const char *file = NULL;
	FILE *f;
	size_t n;
	int i;

	body = json_object();
	rcpts = json_array();
	for (i = 0; i < argc; i++) {
		if ((strcmp(argv[i], "--from") == 0 || strcmp(argv[i], "--to") == 0) &&
		    i + 1 < argc) {
			if (strcmp(argv[i], "--from") == 0)
				json_object_set_new(body, "sender", json_string(argv[i + 1]));
			else if (json_array_size(rcpts) < CLI_RULES_TO_MAX)
				json_array_append_new(rcpts, json_string(argv[i + 1]));
			i++;
		} else if (argv[i][0] != '-' && file == NULL) {
			file = argv[i];
		} else {
			usage(stderr);
			json_decref(body);
			json_decref(rcpts);
			return 2;
		}
	}
	if (file == NULL) {
		usage(stderr);
		json_decref(body);
		json_decref(rcpts);
		return 2;
	}
	if (json_array_size(rcpts) > 0)
		json_object_set_new(body, "recipients", rcpts);
	else
		json_decref(rcpts);
	f = strcmp(file, "-") == 0 ? stdin : fopen(file, "rb");
	if (f == NULL) {
		fprintf(stderr, "moatd rules test: %s: %s\n", file, strerror(errno));
		json_decref(body);
		return 1;
	}
	dynbuf_init(&b, (size_t)conf->max_message_size);
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		if (dynbuf_add(&b, chunk, n) < 0) {
			fprintf(stderr, "moatd rules test: %s: larger than max_message_size\n", file);
			dynbuf_free(&b);
			json_decref(body);
			if (f != stdin)
				fclose(f);
			return 1;
		}
	}
	if (f != stdin)
		fclose(f);
	json_object_set_new(body, "message", json_stringn_nocheck(b.data ? b.data : "", b.len));
	dynbuf_free(&b);
	env.data_dir = conf->data_dir;
	env.max_message_size = conf->max_message_size;
	out = policy_rules_test(st, &env, body, &e);
	json_decref(body);
	if (out == NULL)
		return fail("test", &e);
	cli_print_json(out);
	json_decref(out);
	return 0;
}

static int run(struct store *st, const struct conf *conf, const char *cmd, int argc,
	       char **argv)
{
	struct policy_rules_err e;
	json_t *j, *o;
	int64_t id;
	int i;

	if (strcmp(cmd, "list") == 0)
		return argc == 0 ? cmd_list(st) : 2;
	if (strcmp(cmd, "export") == 0) {
		if (argc != 0)
			return 2;
		o = policy_rules_export(st, &e);
		if (o == NULL)
			return fail(cmd, &e);
		cli_print_json(o);
		json_decref(o);
		return 0;
	}
	if (strcmp(cmd, "test") == 0)
		return cmd_test(st, conf, argc, argv);
	if (strcmp(cmd, "order") == 0) {
		if (argc == 0)
			return 2;
		j = json_array();
		for (i = 0; i < argc; i++) {
			if (cli_parse_rule_id("rules", cmd, argv[i], &id) < 0) {
				json_decref(j);
				return 1;
			}
			json_array_append_new(j, json_integer(id));
		}
		o = policy_rules_order(st, j, &cli_actor, &e);
		json_decref(j);
		if (o == NULL)
			return fail(cmd, &e);
		json_decref(o);
		printf("order set (%d rules)\n", argc);
		return 0;
	}
	if (strcmp(cmd, "add") == 0 || strcmp(cmd, "import") == 0) {
		int append = 0;

		if (strcmp(cmd, "import") == 0 && argc == 2 && strcmp(argv[1], "--append") == 0)
			append = 1;
		else if (argc != 1)
			return 2;
		j = load_json(cmd, argv[0], (size_t)conf->http_max_body);
		if (j == NULL)
			return 1;
		if (strcmp(cmd, "add") == 0)
			o = policy_rules_create(st, j, &cli_actor, &e);
		else
			o = policy_rules_import(st, j, append, &cli_actor, &e);
		json_decref(j);
		if (o == NULL)
			return fail(cmd, &e);
		if (strcmp(cmd, "add") == 0)
			printf("rule %lld added\n",
			       (long long)json_integer_value(json_object_get(o, "id")));
		else
			printf("%lld rules imported\n",
			       (long long)json_integer_value(json_object_get(o, "imported")));
		json_decref(o);
		return 0;
	}
	/* show, delete, enable, disable: one id */
	if (argc != 1)
		return 2;
	if (cli_parse_rule_id("rules", cmd, argv[0], &id) < 0)
		return 1;
	if (strcmp(cmd, "show") == 0) {
		o = policy_rules_get(st, id, &e);
		if (o == NULL)
			return fail(cmd, &e);
		cli_print_json(o);
		json_decref(o);
		return 0;
	}
	if (strcmp(cmd, "delete") == 0) {
		if (policy_rules_delete(st, id, &cli_actor, &e) < 0)
			return fail(cmd, &e);
		printf("rule %lld deleted\n", (long long)id);
		return 0;
	}
	return cmd_enable(st, cmd, id, strcmp(cmd, "enable") == 0);
}

int cli_rules_main(int argc, char **argv)
{
	static const char *const verbs[] = { "list", "show", "add", "delete", "enable", "disable",
					     "export", "import", "order", "test", NULL };
	struct conf conf;
	struct store *st;
	const char *cmd;
	int status, i;

	/* --user NAME / --group ADDRESS before the command: that owner's mailbox rules */
	for (i = 1; i + 1 < argc && argv[i][0] == '-'; i += 2)
		if (strcmp(argv[i], "--user") == 0 || strcmp(argv[i], "--group") == 0)
			return cli_mailbox_main(argc, argv);
	if (cli_begin("rules", &argc, &argv, &conf, verbs, usage, &cmd, &status) < 0)
		return status;
	st = cli_open_store(&conf, "rules", 1);
	if (st == NULL)
		return 1;
	status = run(st, &conf, cmd, argc, argv);
	if (status == 2)
		usage(stderr);
	store_close(st);
	return status;
}
