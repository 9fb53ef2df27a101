/*
 * cli_accounts: "moatd accounts ..." — authenticated-submission accounts.
 *   passwd USER   set the directory user's password (read from stdin, one
 *                 line), hashed with the API's Argon2id function.
 *   list [--suspended] [--sort name|score|volume]
 *                          totals, score, volume, trust and suspension
 *   show USER              one account: state, signals, networks, held mail,
 *                          latest alerts
 *   suspend USER [--reason TEXT]      suspend now and hold what it queued
 *   lift USER [--release|--delete]    end a suspension; what was held is
 *                          kept, released or deleted
 *   trust USER --until DATE | --clear trusted for bulk mail until DATE
 *                          (RFC 3339 or unix ms), or no longer
 *                          (suspend, lift and trust: daemon/alert's
 *                          alert_admin_*, the API's very functions, audited)
 *   alerts [USER] [-n N]   suspension and lift alerts, newest first
 *   limits [USER k=v ...]  show, or set, per-account rate-limit overrides
 *                          (messages_second ... recipients_day; "default")
 * Works on the database directly, while moatd runs or not.  Never prints
 * or logs a password; the buffer holding it is wiped.
 */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../alert/alert.h"
#include "../http/http_parse.h"
#include "../queue/queue_admin.h"
#include "../store/store.h"
#include "../store/store_account.h"
#include "../store/store_alert.h"
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
		"  list [--suspended] [--sort name|score|volume]\n"
		"                                   accounts: totals, score, volume, suspension\n"
		"  show USER                        one account: signals, networks, held, alerts\n"
		"  suspend USER [--reason TEXT]     suspend now; hold what it queued lately\n"
		"  alerts [USER] [-n N]             suspension and lift alerts, newest first\n"
		"  lift USER [--release|--delete]   end USER's suspension; what was held is kept,\n"
		"                                   released or deleted\n"
		"  trust USER --until DATE|--clear  trusted for bulk mail until DATE (2027-01-31: to\n"
		"                                    the end of that day, UTC; or RFC 3339)\n"
		"  limits                           per-account rate-limit overrides\n"
		"  limits USER KEY=N|default ...    set overrides; KEY: messages_second,\n"
		"                                   messages_minute, messages_hour, messages_day,\n"
		"                                   recipients_second, recipients_minute,\n"
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
	"messages_second", "messages_minute", "messages_hour", "messages_day",
	"recipients_second", "recipients_minute", "recipients_hour", "recipients_day",
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

static int print_alert(const struct store_alert_row *a, void *arg)
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

/* ---- the administrator's actions and views (alert_admin, store_alert) ---- */

static const struct queue_admin_actor cli_actor = { 0, "cli", "system", NULL };

static int print_account(const struct store_alert_account *a, void *arg)
{
	char when[32], until[32];

	(void)arg;
	fmt_ms(a->suspended, when, sizeof(when));
	fmt_ms(a->trusted_until > time_now_ms() ? a->trusted_until : 0, until, sizeof(until));
	printf("%s\tmessages=%lld\trecipients=%lld\trefused=%lld\tscore=%lld\tsuspended=%s"
	       "\tvolume_day=%lld\ttrusted_until=%s%s%s\n",
	       a->user, (long long)a->messages, (long long)a->recipients, (long long)a->refused,
	       (long long)a->score, when, (long long)a->volume_day, until,
	       a->reason ? "\treason=" : "", a->reason ? a->reason : "");
	return 0;
}

static int cmd_list(struct store *st, int argc, char **argv)
{
	struct store_alert_account_filter f;
	int i;

	memset(&f, 0, sizeof(f));
	f.suspended = -1;
	f.trusted = -1;
	f.now = time_now_ms();
	for (i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--suspended") == 0) {
			f.suspended = 1;
		} else if (strcmp(argv[i], "--sort") == 0 && i + 1 < argc) {
			i++;
			if (strcmp(argv[i], "name") == 0)
				f.sort = STORE_ALERT_BY_NAME;
			else if (strcmp(argv[i], "score") == 0)
				f.sort = STORE_ALERT_BY_SCORE;
			else if (strcmp(argv[i], "volume") == 0)
				f.sort = STORE_ALERT_BY_VOLUME;
			else
				return 2;
			f.desc = f.sort != STORE_ALERT_BY_NAME; /* the worst first */
		} else {
			return 2;
		}
	}
	if (store_alert_accounts(st, &f, 0, INT64_MAX, print_account, NULL) < 0) {
		fprintf(stderr, "moatd accounts: %s\n", store_account_errmsg(st));
		return 1;
	}
	return 0;
}

static int print_alert_row(const struct store_alert_row *a, void *arg)
{
	char when[32];

	(void)arg;
	fmt_ms(a->ts, when, sizeof(when));
	printf("alert\t%lld\t%s\t%s\tscore=%lld\theld=%lld\tby=%s%s%s\t%s\n", (long long)a->id,
	       when, a->kind, (long long)a->score, (long long)a->held, a->actor ? a->actor : "-",
	       a->action ? "\taction=" : "", a->action ? a->action : "", a->detail ? a->detail : "");
	return 0;
}

static int print_network(const char *net, int64_t first, int64_t last, int64_t msgs, void *arg)
{
	char f[32], l[32];

	(void)arg;
	fmt_ms(first, f, sizeof(f));
	fmt_ms(last, l, sizeof(l));
	printf("network\t%s\tfirst_seen=%s\tlast_seen=%s\tmessages=%lld\n", net, f, l,
	       (long long)msgs);
	return 0;
}

static int show_signals(const struct store_alert_account *a, void *arg)
{
	json_t *sig = a->signals != NULL ? json_loads(a->signals, 0, NULL) : NULL;
	size_t i;

	print_account(a, arg);
	for (i = 0; json_is_array(sig) && i < json_array_size(sig); i++) {
		json_t *s = json_array_get(sig, i);
		const char *name = json_string_value(json_object_get(s, "name"));

		printf("signal\t%s\tvalue=%lld\tweight=%lld\tpoints=%lld\n", name ? name : "?",
		       (long long)json_integer_value(json_object_get(s, "value")),
		       (long long)json_integer_value(json_object_get(s, "weight")),
		       (long long)json_integer_value(json_object_get(s, "points")));
	}
	json_decref(sig);
	return 1;
}

static int cmd_show(struct store *st, const char *user)
{
	struct store_alert_filter f;
	int64_t held = 0;
	int found, known;

	if (store_alert_user_known(st, user, &known) < 0 ||
	    store_alert_account_get(st, user, show_signals, NULL, &found) < 0)
		goto fail;
	if (!known) {
		fprintf(stderr, "moatd accounts: no account \"%s\"\n", user);
		return 1;
	}
	if (!found)
		printf("%s\tmessages=0\trecipients=0\trefused=0\tscore=0\tsuspended=-"
		       "\tvolume_day=0\ttrusted_until=-\n", user);
	if (store_alert_held_count(st, user, &held) < 0)
		goto fail;
	printf("held\t%lld\n", (long long)held);
	memset(&f, 0, sizeof(f));
	f.user = user;
	if (store_alert_networks(st, user, 50, print_network, NULL) < 0 ||
	    store_alert_list(st, &f, 10, print_alert_row, NULL) < 0)
		goto fail;
	return 0;
fail:
	fprintf(stderr, "moatd accounts: %s\n", store_account_errmsg(st));
	return 1;
}

static int cmd_suspend(struct store *st, const struct conf *conf, int argc, char **argv)
{
	const char *reason = "";
	char err[200];
	int64_t id, held;
	enum alert_result r;
	size_t i;

	if (argc == 3 && strcmp(argv[1], "--reason") == 0)
		reason = argv[2];
	else if (argc != 1)
		return 2;
	if (strlen(reason) > ALERT_REASON_MAX) {
		fprintf(stderr, "moatd accounts: --reason: at most %d bytes\n", ALERT_REASON_MAX);
		return 2;
	}
	for (i = 0; reason[i] != '\0'; i++) {
		if ((unsigned char)reason[i] < ' ' || reason[i] == 0x7f) {
			fprintf(stderr, "moatd accounts: --reason: one line of text\n");
			return 2;
		}
	}
	r = alert_admin_suspend(st, conf->data_dir, argv[0], reason, conf->account_window_ms,
				&cli_actor, &id, &held, err, sizeof(err));
	if (r == ALERT_UNKNOWN) {
		fprintf(stderr, "moatd accounts: no account \"%s\"\n", argv[0]);
		return 1;
	}
	if (r == ALERT_ALREADY) {
		fprintf(stderr, "moatd accounts: %s is already suspended\n", argv[0]);
		return 1;
	}
	if (r != ALERT_DONE) {
		fprintf(stderr, "moatd accounts: %s\n", err);
		return 1;
	}
	printf("suspended %s held=%lld alert=%lld\n", argv[0], (long long)held, (long long)id);
	return 0;
}

static int cmd_lift(struct store *st, const struct conf *conf, int argc, char **argv)
{
	enum alert_held held = ALERT_HELD_KEEP;
	char err[200];
	int64_t released, deleted;
	enum alert_result r;

	if (argc == 2 && strcmp(argv[1], "--release") == 0)
		held = ALERT_HELD_RELEASE;
	else if (argc == 2 && strcmp(argv[1], "--delete") == 0)
		held = ALERT_HELD_DELETE;
	else if (argc != 1)
		return 2;
	r = alert_admin_lift(st, conf->data_dir, argv[0], held, &cli_actor, &released, &deleted,
			     err, sizeof(err));
	if (r == ALERT_UNKNOWN || r == ALERT_NOT_SUSPENDED) {
		fprintf(stderr, "moatd accounts: %s is not suspended\n", argv[0]);
		return 1;
	}
	if (r != ALERT_DONE) {
		fprintf(stderr, "moatd accounts: %s\n", err);
		return 1;
	}
	printf("lifted %s released=%lld deleted=%lld\n", argv[0], (long long)released,
	       (long long)deleted);
	return 0;
}

static int cmd_trust(struct store *st, int argc, char **argv)
{
	int64_t until = 0, now = time_now_ms();
	char err[200];
	enum alert_result r;

	if (argc == 2 && strcmp(argv[1], "--clear") == 0) {
		until = 0;
	} else if (argc == 3 && strcmp(argv[1], "--until") == 0) {
		char day_end[32];
		const char *t = argv[2];

		/* A date alone (2027-01-31) is trusted to the end of that day, UTC. */
		if (strlen(t) == 10 && t[4] == '-' && t[7] == '-') {
			snprintf(day_end, sizeof(day_end), "%sT23:59:59Z", t);
			t = day_end;
		}
		if (http_parse_time(t, strlen(t), &until) < 0) {
			fprintf(stderr, "moatd accounts: --until: expected a date (2027-01-31), an"
				" RFC 3339 time (2027-01-31T18:00:00Z) or unix ms\n");
			return 1;
		}
		if (until <= now || until > now + (int64_t)ALERT_TRUST_MAX_DAYS * 86400000) {
			fprintf(stderr, "moatd accounts: --until: must be in the future, at most %d"
				" days ahead\n", ALERT_TRUST_MAX_DAYS);
			return 1;
		}
	} else {
		return 2;
	}
	r = alert_admin_trust(st, argv[0], until, &cli_actor, err, sizeof(err));
	if (r == ALERT_UNKNOWN) {
		fprintf(stderr, "moatd accounts: no account \"%s\"\n", argv[0]);
		return 1;
	}
	if (r == ALERT_NOT_TRUSTED) {
		fprintf(stderr, "moatd accounts: %s is not trusted\n", argv[0]);
		return 1;
	}
	if (r != ALERT_DONE) {
		fprintf(stderr, "moatd accounts: %s\n", err);
		return 1;
	}
	printf(until > 0 ? "trusted %s\n" : "untrusted %s\n", argv[0]);
	return 0;
}

static int cmd_rest(struct store *st, const struct conf *conf, const char *cmd, int argc,
		    char **argv)
{
	if (strcmp(cmd, "list") == 0)
		return cmd_list(st, argc, argv);
	if (strcmp(cmd, "show") == 0)
		return argc == 1 ? cmd_show(st, argv[0]) : 2;
	if (strcmp(cmd, "suspend") == 0)
		return argc >= 1 ? cmd_suspend(st, conf, argc, argv) : 2;
	if (strcmp(cmd, "trust") == 0)
		return argc >= 1 ? cmd_trust(st, argc, argv) : 2;
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
		{
			struct store_alert_filter f = { user, NULL, 0 };

			return store_alert_list(st, &f, n, print_alert, NULL) < 0 ? 1 : 0;
		}
	}
	if (strcmp(cmd, "lift") == 0)
		return argc >= 1 ? cmd_lift(st, conf, argc, argv) : 2;
	if (strcmp(cmd, "limits") == 0)
		return cmd_limits(st, argc, argv);
	return 2;
}

int cli_accounts_main(int argc, char **argv)
{
	static const char *const verbs[] = { "passwd", "list", "alerts", "lift", "limits", "show",
					     "suspend", "trust", NULL };
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
		rc = cmd_rest(st, &conf, cmd, argc, argv);
	store_close(st);
	if (rc == 2)
		usage(stderr);
	return rc;
}
