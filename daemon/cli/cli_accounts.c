/*
 * cli_accounts: "moatd accounts ..." — authenticated-submission accounts.
 *   passwd USER   set the directory user's password (read from stdin, one
 *                 line), hashed with the API's Argon2id function.
 *   list [--suspended]     totals, score and suspension of every account
 *   alerts [USER] [-n N]   suspension and lift alerts, newest first
 *   lift USER              end a suspension (the daemon sees it within 1 s)
 *   limits [USER k=v ...]  show, or set, per-account rate-limit overrides
 *                          (messages_minute ... recipients_day; "default")
 * Works on the database directly, while moatd runs or not.  Never prints
 * or logs a password; the buffer holding it is wiped.
 */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../store/store.h"
#include "../store/store_account.h"
#include "../store/store_auth.h"
#include "../util/util.h"

/* The API's hashing (daemon/http/http_auth.c): one hash format for both. */
int http_password_hash(const char *pw, char *out, size_t outsz);

#define PW_MIN 8
#define PW_MAX 1024

static void usage(FILE *out)
{
	fprintf(out,
		"usage: moatd accounts [-c FILE] [--data-dir DIR] COMMAND ...\n"
		"  passwd USER                      set USER's password from stdin (one line)\n"
		"  list [--suspended]               accounts: totals, last score, suspension\n"
		"  alerts [USER] [-n N]             suspension and lift alerts, newest first\n"
		"  lift USER                        end USER's suspension\n"
		"  limits                           per-account rate-limit overrides\n"
		"  limits USER KEY=N|default ...    set overrides; KEY: messages_minute,\n"
		"                                   messages_hour, messages_day, recipients_minute,\n"
		"                                   recipients_hour, recipients_day\n");
}

static int cmd_passwd(struct store *st, const char *name)
{
	struct store_user *u = xcalloc(1, sizeof(*u));
	char pw[PW_MAX + 2];
	char hash[256];
	size_t len;
	int found = 0;
	int rc = 1;

	if (fgets(pw, sizeof(pw), stdin) == NULL) {
		fprintf(stderr, "moatd accounts: no password on stdin\n");
		goto out;
	}
	len = strcspn(pw, "\r\n");
	pw[len] = '\0';
	if (len < PW_MIN || len > PW_MAX) {
		fprintf(stderr, "moatd accounts: a password has %d to %d characters\n", PW_MIN,
			PW_MAX);
		goto out;
	}
	if (store_auth_user_by_name(st, name, u, &found) < 0) {
		fprintf(stderr, "moatd accounts: %s\n", store_auth_errmsg(st));
		goto out;
	}
	if (!found) {
		fprintf(stderr, "moatd accounts: no user \"%s\" (moatd policy user add)\n", name);
		goto out;
	}
	if (http_password_hash(pw, hash, sizeof(hash)) < 0 ||
	    store_auth_user_set_password(st, u->id, hash, time_now_ms()) < 0) {
		fprintf(stderr, "moatd accounts: cannot set the password\n");
		goto out;
	}
	rc = 0;
out:
	explicit_bzero(pw, sizeof(pw));
	explicit_bzero(hash, sizeof(hash));
	free(u);
	return rc;
}

static const char *const limit_keys[STORE_ACCOUNT_NLIMITS] = {
	"messages_minute", "messages_hour", "messages_day",
	"recipients_minute", "recipients_hour", "recipients_day",
};

static void fmt_ms(int64_t ms, char *out, size_t outsz)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	if (ms <= 0) {
		snprintf(out, outsz, "-");
		return;
	}
	gmtime_r(&t, &tm);
	strftime(out, outsz, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int print_state(const struct store_account_state *a, void *arg)
{
	char when[32];

	(void)arg;
	fmt_ms(a->suspended, when, sizeof(when));
	printf("%s\tmessages=%lld\trecipients=%lld\trefused=%lld\tscore=%lld\tsuspended=%s%s%s\n",
	       a->user, (long long)a->messages, (long long)a->recipients, (long long)a->refused,
	       (long long)a->score, when, a->reason ? "\treason=" : "", a->reason ? a->reason : "");
	return 0;
}

static int print_alert(const struct store_account_alert *a, void *arg)
{
	char when[32];

	(void)arg;
	fmt_ms(a->ts, when, sizeof(when));
	printf("%lld\t%s\t%s\t%s\tscore=%lld\theld=%lld\t%s\n", (long long)a->id, when,
	       a->user, a->kind, (long long)a->score, (long long)a->held, a->detail);
	return 0;
}

static int print_limits(const char *user, const int64_t v[STORE_ACCOUNT_NLIMITS], void *arg)
{
	int i;

	(void)arg;
	printf("%s", user);
	for (i = 0; i < STORE_ACCOUNT_NLIMITS; i++) {
		if (v[i] < 0)
			printf("\t%s=default", limit_keys[i]);
		else
			printf("\t%s=%lld", limit_keys[i], (long long)v[i]);
	}
	printf("\n");
	return 0;
}

struct find_limits {
	const char *user;
	int64_t *v;
};

static int find_limits_cb(const char *user, const int64_t v[STORE_ACCOUNT_NLIMITS], void *arg)
{
	struct find_limits *f = arg;

	if (strcmp(user, f->user) == 0)
		memcpy(f->v, v, sizeof(int64_t) * STORE_ACCOUNT_NLIMITS);
	return 0;
}

static int cmd_limits(struct store *st, int argc, char **argv)
{
	int64_t v[STORE_ACCOUNT_NLIMITS];
	struct find_limits fl = { NULL, v };
	int i;
	int k;

	if (argc == 0)
		return store_account_limits(st, print_limits, NULL) < 0 ? 1 : 0;
	for (k = 0; k < STORE_ACCOUNT_NLIMITS; k++)
		v[k] = -1;
	fl.user = argv[0];
	if (store_account_limits(st, find_limits_cb, &fl) < 0)
		return 1;
	for (i = 1; i < argc; i++) {
		const char *eq = strchr(argv[i], '=');
		int done = 0;

		for (k = 0; eq != NULL && k < STORE_ACCOUNT_NLIMITS; k++) {
			if (strlen(limit_keys[k]) != (size_t)(eq - argv[i]) ||
			    strncmp(argv[i], limit_keys[k], (size_t)(eq - argv[i])) != 0)
				continue;
			if (strcmp(eq + 1, "default") == 0) {
				v[k] = -1;
			} else {
				char *end;
				long long n = strtoll(eq + 1, &end, 10);

				if (end == eq + 1 || *end != '\0' || n < 0) {
					fprintf(stderr, "moatd accounts: %s: not a count\n", argv[i]);
					return 2;
				}
				v[k] = n;
			}
			done = 1;
		}
		if (!done) {
			fprintf(stderr, "moatd accounts: %s: expected KEY=N|default\n", argv[i]);
			return 2;
		}
	}
	if (store_account_set_limits(st, argv[0], v) < 0) {
		fprintf(stderr, "moatd accounts: %s\n", store_account_errmsg(st));
		return 1;
	}
	return 0;
}

static int cmd_rest(struct store *st, const char *cmd, int argc, char **argv)
{
	if (strcmp(cmd, "list") == 0) {
		int susp = argc == 1 && strcmp(argv[0], "--suspended") == 0;

		if (argc > 1 || (argc == 1 && !susp))
			return 2;
		return store_account_states(st, susp, print_state, NULL) < 0 ? 1 : 0;
	}
	if (strcmp(cmd, "alerts") == 0) {
		const char *user = NULL;
		int64_t n = 50;
		int i;

		for (i = 0; i < argc; i++) {
			if (strcmp(argv[i], "-n") == 0 && i + 1 < argc) {
				char *end;

				n = strtoll(argv[++i], &end, 10);
				if (*end != '\0' || n <= 0)
					return 2;
			} else if (user == NULL) {
				user = argv[i];
			} else {
				return 2;
			}
		}
		return store_account_alerts(st, user, n, print_alert, NULL) < 0 ? 1 : 0;
	}
	if (strcmp(cmd, "lift") == 0) {
		int changed = 0;

		if (argc != 1)
			return 2;
		if (store_account_lift(st, argv[0], "lifted with moatd accounts lift", time_now_ms(),
				       &changed) < 0) {
			fprintf(stderr, "moatd accounts: %s\n", store_account_errmsg(st));
			return 1;
		}
		if (!changed) {
			fprintf(stderr, "moatd accounts: %s is not suspended\n", argv[0]);
			return 1;
		}
		printf("lifted %s\n", argv[0]);
		return 0;
	}
	if (strcmp(cmd, "limits") == 0)
		return cmd_limits(st, argc, argv);
	return 2;
}

int cli_accounts_main(int argc, char **argv)
{
	static const char *const verbs[] = { "passwd", "list", "alerts", "lift", "limits", NULL };
	struct conf conf;
	struct store *st;
	const char *cmd;
	int rc;

	if (cli_begin("accounts", &argc, &argv, &conf, verbs, usage, &cmd, &rc) < 0)
		return rc;
	if (strcmp(cmd, "passwd") == 0 && argc != 1) {
		usage(stderr);
		return 2;
	}
	st = cli_open_store(&conf, "accounts", 1);
	if (st == NULL)
		return 1;
	if (strcmp(cmd, "passwd") == 0)
		rc = cmd_passwd(st, argv[0]);
	else
		rc = cmd_rest(st, cmd, argc, argv);
	store_close(st);
	if (rc == 2)
		usage(stderr);
	return rc;
}
