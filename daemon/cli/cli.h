/*
 * cli: moatd's administrative subcommands ("moatd queue ...", "moatd
 * policy ..."), for scripts and for use before the API.  Each works on
 * the data directory's database directly, while moatd runs or not: a
 * change bumps what the daemon watches, so it applies without a restart.
 *
 * A subcommand returns the process exit status: 0 done, 1 error (message
 * on stderr), 2 usage.
 */
#ifndef MOAT_CLI_H
#define MOAT_CLI_H

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>

#include "../conf/conf.h"

/*
 * Consume leading global options (-c FILE, -o key=value, --data-dir DIR)
 * from argv (argv[0] is the subcommand name), load the configuration, and
 * leave argc and argv at the first remaining word.  0, or -1 with err.
 */
int cli_load_conf(int *argc, char ***argv, struct conf *conf, char *err, size_t errsz);

/*
 * The start every subcommand shares: the configuration (cli_load_conf),
 * help ("help", "-h", "--help": usage on stdout, exit 0; nothing: usage on
 * stderr, exit 2) and the verb, which must be one of verbs (NULL-ended).
 * 0 with *verb set and argc/argv at the word after it; otherwise -1 with
 * *status the exit status, the message already printed.
 */
int cli_begin(const char *who, int *argc, char ***argv, struct conf *conf,
	      const char *const *verbs, void (*usage)(FILE *), const char **verb, int *status);

/* j on stdout, indented, keys in their order, and a newline. */
void cli_print_json(const json_t *j);
/* A rule id (>= 1) from s, or -1 after "moatd WHO CMD: S: not a rule id". */
int cli_parse_rule_id(const char *who, const char *cmd, const char *s, int64_t *id);
/* "--older-than" ages: N, Ns, Nm, Nh, Nd (N >= 0) in ms.  0 or -1. */
int cli_parse_age(const char *v, int64_t *ms);

struct store;

/*
 * Open the data directory's database for a subcommand.  With create, the
 * directory and the database are made when missing and migrated (so that
 * policy can be prepared before the first start).  NULL after printing
 * "moatd <who>: <reason>" to stderr.
 */
struct store *cli_open_store(const struct conf *conf, const char *who, int create);

struct cli_command {
	const char *name;
	int (*main)(int argc, char **argv);
	const char *summary;
};

/* Subcommands, in daemon/cli/cli_<name>.c; the table is in cli.c. */
extern const struct cli_command cli_commands[];

/* daemon/cli/cli_queue.c */
int cli_queue_main(int argc, char **argv);
/* daemon/cli/cli_quarantine.c */
int cli_quarantine_main(int argc, char **argv);
int cli_policy_main(int argc, char **argv);
int cli_accounts_main(int argc, char **argv);
int cli_rules_main(int argc, char **argv);
/* daemon/cli/cli_mailbox.c */
int cli_mailbox_main(int argc, char **argv);
/* daemon/cli/cli_users.c */
int cli_users_main(int argc, char **argv);
/* daemon/cli/cli_score.c */
int cli_score_main(int argc, char **argv);
/* daemon/cli/cli_authcheck.c */
int cli_authcheck_main(int argc, char **argv);
/* daemon/cli/cli_dkim.c */
int cli_dkim_main(int argc, char **argv);
/* daemon/cli/cli_learn.c */
int cli_learn_main(int argc, char **argv);
int cli_classify_main(int argc, char **argv);
/* daemon/cli/cli_backup.c */
int cli_backup_main(int argc, char **argv);
int cli_restore_main(int argc, char **argv);

/* Run argv[1] as a subcommand when it names one; -1 when it does not. */
int cli_dispatch(int argc, char **argv);

#endif
