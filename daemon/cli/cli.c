/*
 * cli: subcommand table and the options every subcommand shares.
 */
#include "cli.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../mime/mime.h"
#include "../store/store.h"
#include "../util/util.h"

/* Each subcommand adds one line here. */
const struct cli_command cli_commands[] = {
	{ "queue", cli_queue_main, "list, show, release, retry, delete queued mail" },
	{ "quarantine", cli_quarantine_main, "list, show, release, delete quarantined mail" },
	{ "policy", cli_policy_main, "list, add, remove and show policy entries and settings" },
	{ "accounts", cli_accounts_main, "submission accounts: passwords, counters, suspensions" },
	{ "rules", cli_rules_main, "server mail rules: list, add, order, import, export, test" },
	{ "mailbox-rules", cli_mailbox_main, "one user's or group's mailbox rules (also rules --user)" },
	{ "users", cli_users_main, "directory users' personal sender lists" },
	{ "score", cli_score_main, "score thresholds per domain and per user" },
	{ "authcheck", cli_authcheck_main, "SPF, DKIM and DMARC of a message file against live DNS" },
	{ "dkim", cli_dkim_main, "DKIM signing keys: list, generate, enable, delete; sign a message" },
	{ "learn", cli_learn_main, "train the statistical filter from files, directories, mboxes" },
	{ "classify", cli_classify_main, "spam probability of messages, and the tokens that decided" },
	{ "backup", cli_backup_main, "copy the database, spool, quarantine and keys while moatd runs" },
	{ "restore", cli_restore_main, "check a backup and put it into an empty data directory" },
	{ NULL, NULL, NULL },
};

int cli_load_conf(int *argc, char ***argv, struct conf *conf, char *err, size_t errsz)
{
	int i = 1;

	conf_defaults(conf);
	/* Two passes so that flags win over the file wherever they stand. */
	for (i = 1; i + 1 < *argc && (*argv)[i][0] == '-'; i += 2) {
		if (strcmp((*argv)[i], "-c") == 0 || strcmp((*argv)[i], "--config") == 0) {
			if (conf_load_file(conf, (*argv)[i + 1], err, errsz) < 0)
				return -1;
		}
	}
	for (i = 1; i + 1 < *argc && (*argv)[i][0] == '-'; i += 2) {
		const char *opt = (*argv)[i];
		const char *val = (*argv)[i + 1];

		if (strcmp(opt, "-c") == 0 || strcmp(opt, "--config") == 0) {
			continue;
		} else if (strcmp(opt, "--data-dir") == 0) {
			if (conf_set(conf, "data_dir", val, err, errsz) < 0)
				return -1;
		} else if (strcmp(opt, "-o") == 0) {
			char key[128];
			const char *eq = strchr(val, '=');

			if (eq == NULL || (size_t)(eq - val) >= sizeof(key)) {
				snprintf(err, errsz, "-o %s: expected key=value", val);
				return -1;
			}
			memcpy(key, val, (size_t)(eq - val));
			key[eq - val] = '\0';
			if (conf_set(conf, key, eq + 1, err, errsz) < 0)
				return -1;
		} else {
			break;
		}
	}
	*argc -= i;
	*argv += i;
	return 0;
}

int cli_dispatch(int argc, char **argv)
{
	const struct cli_command *c;

	if (argc < 2)
		return -1;
	for (c = cli_commands; c->name != NULL; c++) {
		if (strcmp(argv[1], c->name) == 0) {
			int rc;

			/* Any command may read a message (a dry run, learning, a
			 * release that learns): GMime's one-time set-up first. */
			mime_init();
			rc = c->main(argc - 1, argv + 1);
			mime_shutdown();
			return rc;
		}
	}
	return -1;
}

int cli_begin(const char *who, int *argc, char ***argv, struct conf *conf,
	      const char *const *verbs, void (*usage)(FILE *), const char **verb, int *status)
{
	char err[1400];
	const char *word;
	size_t i;

	if (cli_load_conf(argc, argv, conf, err, sizeof(err)) < 0) {
		fprintf(stderr, "moatd %s: %s\n", who, err);
		*status = 1;
		return -1;
	}
	if (*argc < 1) {
		usage(stderr);
		*status = 2;
		return -1;
	}
	word = (*argv)[0];
	if (strcmp(word, "help") == 0 || strcmp(word, "-h") == 0 || strcmp(word, "--help") == 0) {
		usage(stdout);
		*status = 0;
		return -1;
	}
	for (i = 0; verbs[i] != NULL && strcmp(verbs[i], word) != 0; i++)
		;
	if (verbs[i] == NULL) {
		fprintf(stderr, "moatd %s: unknown command \"%s\"\n", who, word);
		usage(stderr);
		*status = 2;
		return -1;
	}
	*verb = word;
	(*argc)--;
	(*argv)++;
	return 0;
}

struct store *cli_open_store(const struct conf *conf, const char *who, int create)
{
	char path[1200];
	char err[1400];
	struct store *st;

	if (create && mkdir(conf->data_dir, 0750) < 0 && errno != EEXIST) {
		fprintf(stderr, "moatd %s: data_dir %s: %s\n", who, conf->data_dir,
			strerror(errno));
		return NULL;
	}
	snprintf(path, sizeof(path), "%s/moat.db", conf->data_dir);
	st = store_open(path, create ? STORE_MIGRATE : 0, err, sizeof(err));
	if (st == NULL)
		fprintf(stderr, "moatd %s: %s\n", who, err);
	return st;
}

int cli_parse_age(const char *v, int64_t *ms)
{
	char *end;
	long long n;

	errno = 0;
	n = strtoll(v, &end, 10);
	if (errno != 0 || n < 0 || end == v)
		return -1;
	if (strcmp(end, "") == 0 || strcmp(end, "s") == 0)
		*ms = n * 1000;
	else if (strcmp(end, "m") == 0)
		*ms = n * 60000;
	else if (strcmp(end, "h") == 0)
		*ms = n * 3600000;
	else if (strcmp(end, "d") == 0)
		*ms = n * 86400000;
	else
		return -1;
	return 0;
}

void cli_print_json(const json_t *j)
{
	char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);

	if (s != NULL) {
		fputs(s, stdout);
		fputc('\n', stdout);
	}
	free(s);
}

int cli_parse_rule_id(const char *who, const char *cmd, const char *s, int64_t *id)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < 1) {
		fprintf(stderr, "moatd %s %s: %s: not a rule id\n", who, cmd, s);
		return -1;
	}
	*id = v;
	return 0;
}
