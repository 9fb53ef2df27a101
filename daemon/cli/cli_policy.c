/*
 * cli_policy: `moatd policy ...` — list, add, remove and show policy
 * entries, settings, DNSBL sites and the directory, straight in the
 * database (moatd running or not; a running moatd picks the change up
 * within a second through the policy generation).
 *
 * Every input is validated with the same pure functions the daemon uses
 * to compile its snapshot, so what the CLI accepts the daemon applies.
 * Output is one record per line, tab-separated, for scripts.  Exit 0 done,
 * 1 error (message on stderr), 2 usage.
 */
#include "cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "../policy/policy_validate.h"
#include "../store/store.h"
#include "../store/store_policy.h"
#include "../util/util.h"

#define MAX_ARGS 256

static void usage(FILE *out)
{
	size_t i;

	fprintf(out,
		"usage: moatd policy [-c FILE] [--data-dir DIR] COMMAND ...\n"
		"  list [LIST]                      entries: id list value created comment\n"
		"  add LIST VALUE [COMMENT]         add an entry; prints its id\n"
		"  remove ID | remove LIST VALUE    remove an entry\n"
		"  show [ID]                        settings (and generation), or one entry\n"
		"  set KEY VALUE | set KEY --default\n"
		"  dnsbl list | dnsbl stats | dnsbl remove ZONE\n"
		"  dnsbl add ZONE [kind=block|allow] [action=refuse|tag|log] [codes=RANGES]\n"
		"            [weight=N] [enabled=yes|no] [message=TEXT] [comment=TEXT]\n"
		"  dnsbl set ZONE key=value ...\n"
		"  user add NAME ADDRESS [ALIAS ...] | user remove NAME\n"
		"  group add ADDRESS [MEMBER ...] | group remove ADDRESS\n"
		"  directory                        users, aliases and groups\n"
		"  stats [DAYS]                     verdicts per check and day\n"
		"lists:\n");
	for (i = 0; i < policy_list_kind_count; i++)
		fprintf(out, "  %-18s %s\n", policy_list_kinds[i].name, policy_list_kinds[i].summary);
}

static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int fail(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "moatd policy: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return 1;
}

static void fmt_time(int64_t ms, char *out, size_t outsz)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	if (ms <= 0) {
		strlcpy_s(out, "-", outsz);
		return;
	}
	gmtime_r(&t, &tm);
	strftime(out, outsz, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int parse_id(const char *s, int64_t *out)
{
	char *end;
	long long v;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0' || v <= 0)
		return -1;
	*out = v;
	return 0;
}

static int text_ok(const char *s, size_t max)
{
	size_t i;

	if (strlen(s) > max)
		return 0;
	for (i = 0; s[i] != '\0'; i++)
		if ((unsigned char)s[i] < ' ' || (unsigned char)s[i] >= 127)
			return 0;
	return 1;
}

/* --- entries -------------------------------------------------------------- */

static int print_entry(const struct store_policy_entry *e, void *arg)
{
	char created[40];

	(void)arg;
	fmt_time(e->created, created, sizeof(created));
	printf("%lld\t%s\t%s\t%s\t%s\n", (long long)e->id, e->list, e->value, created,
	       e->comment);
	return 0;
}

static int cmd_list(struct store *st, int argc, char **argv)
{
	if (argc > 1)
		return 2;
	if (argc == 1 && policy_list_kind_find(argv[0]) == NULL)
		return fail("unknown list \"%s\" (see `moatd policy help`)", argv[0]);
	if (store_policy_entries(st, argc ? argv[0] : NULL, print_entry, NULL) < 0)
		return fail("%s", store_policy_errmsg(st));
	return 0;
}

static int cmd_add(struct store *st, int argc, char **argv)
{
	const struct policy_list_kind *k;
	char norm[400];
	char err[300];
	int64_t id;

	if (argc < 2 || argc > 3)
		return 2;
	k = policy_list_kind_find(argv[0]);
	if (k == NULL)
		return fail("unknown list \"%s\" (see `moatd policy help`)", argv[0]);
	if (policy_value_check(k->type, argv[1], strlen(argv[1]), norm, sizeof(norm), err,
			       sizeof(err)) < 0)
		return fail("%s %s: %s", argv[0], argv[1], err);
	if (argc == 3 && !text_ok(argv[2], 300))
		return fail("comment: printable ASCII, up to 300 characters");
	if (store_policy_entry_add(st, k->name, norm, argc == 3 ? argv[2] : "", &id, err,
				   sizeof(err)) < 0)
		return fail("%s", err);
	printf("%lld\n", (long long)id);
	return 0;
}

static int cmd_remove(struct store *st, int argc, char **argv)
{
	const struct policy_list_kind *k;
	int64_t id;
	int removed = 0;

	if (argc == 1) {
		if (parse_id(argv[0], &id) < 0)
			return fail("\"%s\" is not an entry id", argv[0]);
		if (store_policy_entry_remove(st, id, &removed) < 0)
			return fail("%s", store_policy_errmsg(st));
		if (!removed)
			return fail("no entry %lld", (long long)id);
		return 0;
	}
	if (argc != 2)
		return 2;
	k = policy_list_kind_find(argv[0]);
	if (k == NULL)
		return fail("unknown list \"%s\"", argv[0]);
	{
		char norm[400];
		char err[300];

		if (policy_value_check(k->type, argv[1], strlen(argv[1]), norm, sizeof(norm), err,
				       sizeof(err)) < 0)
			return fail("%s %s: %s", argv[0], argv[1], err);
		if (store_policy_entry_remove_value(st, k->name, norm, &removed) < 0)
			return fail("%s", store_policy_errmsg(st));
	}
	if (!removed)
		return fail("%s holds no %s", argv[0], argv[1]);
	return 0;
}

/* --- settings ------------------------------------------------------------- */

struct setting_row {
	char key[64];
	char value[400];
};

struct settings_read {
	struct setting_row rows[64];
	size_t n;
};

static int read_setting(const char *key, const char *value, void *arg)
{
	struct settings_read *r = arg;

	if (r->n < ARRAY_LEN(r->rows)) {
		strlcpy_s(r->rows[r->n].key, key, sizeof(r->rows[0].key));
		strlcpy_s(r->rows[r->n].value, value, sizeof(r->rows[0].value));
		r->n++;
	}
	return 0;
}

static int cmd_show(struct store *st, int argc, char **argv)
{
	struct settings_read r;
	int64_t gen = 0;
	size_t i, j;

	if (argc == 1) {
		int64_t id;
		int found;

		if (parse_id(argv[0], &id) < 0)
			return fail("\"%s\" is not an entry id", argv[0]);
		if (store_policy_entry_get(st, id, print_entry, NULL, &found) < 0)
			return fail("%s", store_policy_errmsg(st));
		return found ? 0 : fail("no entry %lld", (long long)id);
	}
	if (argc != 0)
		return 2;
	memset(&r, 0, sizeof(r));
	if (store_policy_generation(st, &gen) < 0 ||
	    store_policy_settings(st, read_setting, &r) < 0)
		return fail("%s", store_policy_errmsg(st));
	printf("generation\t%lld\n", (long long)gen);
	for (i = 0; i < policy_setting_count; i++) {
		const struct policy_setting_def *d = &policy_setting_defs[i];
		const char *v = d->def;
		const char *src = "default";

		for (j = 0; j < r.n; j++)
			if (strcmp(r.rows[j].key, d->key) == 0) {
				v = r.rows[j].value;
				src = "set";
			}
		printf("%s\t%s\t%s\n", d->key, v, src);
	}
	return 0;
}

static int cmd_set(struct store *st, int argc, char **argv)
{
	char err[300];
	int removed;

	if (argc != 2)
		return 2;
	if (strcmp(argv[1], "--default") == 0) {
		if (policy_setting_find(argv[0]) == NULL)
			return fail("unknown setting \"%s\"", argv[0]);
		if (store_policy_setting_unset(st, argv[0], &removed) < 0)
			return fail("%s", store_policy_errmsg(st));
		return 0;
	}
	if (policy_setting_check(argv[0], argv[1], err, sizeof(err)) < 0)
		return fail("%s", err);
	if (store_policy_setting_set(st, argv[0], argv[1]) < 0)
		return fail("%s", store_policy_errmsg(st));
	return 0;
}

/* --- DNSBL sites ---------------------------------------------------------- */

struct site_buf {
	char zone[256], kind[16], action[16], message[400], codes[400], comment[400];
	int enabled, weight, found;
	int64_t id, created;
};

static void site_from(struct site_buf *b, const struct store_dnsbl_site *s)
{
	strlcpy_s(b->zone, s->zone, sizeof(b->zone));
	strlcpy_s(b->kind, s->kind, sizeof(b->kind));
	strlcpy_s(b->action, s->action, sizeof(b->action));
	strlcpy_s(b->message, s->message, sizeof(b->message));
	strlcpy_s(b->codes, s->codes, sizeof(b->codes));
	strlcpy_s(b->comment, s->comment, sizeof(b->comment));
	b->enabled = s->enabled;
	b->weight = s->weight;
	b->id = s->id;
	b->created = s->created;
}

static void site_to(const struct site_buf *b, struct store_dnsbl_site *s)
{
	memset(s, 0, sizeof(*s));
	s->zone = b->zone;
	s->kind = b->kind;
	s->action = b->action;
	s->message = b->message;
	s->codes = b->codes;
	s->comment = b->comment;
	s->enabled = b->enabled;
	s->weight = b->weight;
}

/* Apply "key=value" options to a site; 0, or 1 after printing the error. */
static int site_opts(struct site_buf *b, int argc, char **argv)
{
	int i;

	for (i = 0; i < argc; i++) {
		const char *eq = strchr(argv[i], '=');
		const char *v;
		char err[300];
		struct policy_codes c;
		size_t klen;

		if (eq == NULL)
			return fail("%s: expected key=value", argv[i]);
		klen = (size_t)(eq - argv[i]);
		v = eq + 1;
#define KEY(k) (klen == strlen(k) && strncmp(argv[i], k, klen) == 0)
		if (KEY("kind")) {
			if (strcmp(v, "block") != 0 && strcmp(v, "allow") != 0)
				return fail("kind: expected block or allow");
			strlcpy_s(b->kind, v, sizeof(b->kind));
		} else if (KEY("action")) {
			if (strcmp(v, "refuse") != 0 && strcmp(v, "tag") != 0 && strcmp(v, "log") != 0)
				return fail("action: expected refuse, tag or log");
			strlcpy_s(b->action, v, sizeof(b->action));
		} else if (KEY("codes")) {
			if (policy_codes_parse(v, strlen(v), &c, err, sizeof(err)) < 0)
				return fail("%s", err);
			strlcpy_s(b->codes, v, sizeof(b->codes));
		} else if (KEY("weight")) {
			int64_t w;

			if (strcmp(v, "0") == 0)
				w = 0;
			else if (parse_id(v, &w) < 0 || w > 1000)
				return fail("weight: expected an integer from 0 to 1000");
			b->weight = (int)w;
		} else if (KEY("enabled")) {
			if (strcmp(v, "yes") == 0)
				b->enabled = 1;
			else if (strcmp(v, "no") == 0)
				b->enabled = 0;
			else
				return fail("enabled: expected yes or no");
		} else if (KEY("message")) {
			if (!text_ok(v, 300))
				return fail("message: printable ASCII on one line, up to 300 characters");
			strlcpy_s(b->message, v, sizeof(b->message));
		} else if (KEY("comment")) {
			if (!text_ok(v, 300))
				return fail("comment: printable ASCII, up to 300 characters");
			strlcpy_s(b->comment, v, sizeof(b->comment));
		} else {
			return fail("%.*s: unknown DNSBL field (kind, action, codes, weight, enabled,"
				    " message, comment)", (int)klen, argv[i]);
		}
#undef KEY
	}
	return 0;
}

static int print_site(const struct store_dnsbl_site *s, void *arg)
{
	(void)arg;
	printf("%lld\t%s\t%s\t%s\t%s\t%s\tweight=%d\t%s\n", (long long)s->id, s->zone, s->kind,
	       s->enabled ? "enabled" : "disabled", s->action, s->codes, s->weight,
	       s->message[0] ? s->message : "-");
	return 0;
}

static int find_site(const struct store_dnsbl_site *s, void *arg)
{
	struct site_buf *b = arg;

	if (strcmp(s->zone, b->zone) != 0)
		return 0;
	site_from(b, s);
	b->found = 1;
	return 1;
}

static int print_stat(const struct store_dnsbl_stat *s, void *arg)
{
	char last[40];

	(void)arg;
	fmt_time(s->last_hit, last, sizeof(last));
	printf("%s\tqueries=%lld\thits=%lld\thits_today=%lld\ttempfails=%lld\tlast_hit=%s\n",
	       s->zone, (long long)s->queries, (long long)s->hits, (long long)s->hits_today,
	       (long long)s->tempfails, last);
	return 0;
}

static int cmd_dnsbl(struct store *st, int argc, char **argv)
{
	struct site_buf b;
	struct store_dnsbl_site s;
	char err[300];
	int64_t id;
	int n;

	if (argc < 1)
		return 2;
	if (strcmp(argv[0], "list") == 0 && argc == 1)
		return store_policy_sites(st, print_site, NULL) < 0
			? fail("%s", store_policy_errmsg(st)) : 0;
	if (strcmp(argv[0], "stats") == 0 && argc == 1)
		return store_policy_dnsbl_stats(st, time_now_ms() / 86400000, print_stat, NULL) < 0
			? fail("%s", store_policy_errmsg(st)) : 0;
	if (argc < 2)
		return 2;
	if (!policy_domain_ok(argv[1], strlen(argv[1])) || strlen(argv[1]) > 200)
		return fail("%s: not a valid DNS zone", argv[1]);
	memset(&b, 0, sizeof(b));
	strlcpy_s(b.zone, argv[1], sizeof(b.zone));
	for (n = 0; b.zone[n] != '\0'; n++)
		if (b.zone[n] >= 'A' && b.zone[n] <= 'Z')
			b.zone[n] = (char)(b.zone[n] + 32);
	if (strcmp(argv[0], "add") == 0) {
		strlcpy_s(b.kind, "block", sizeof(b.kind));
		strlcpy_s(b.action, "refuse", sizeof(b.action));
		strlcpy_s(b.codes, "127.0.0.2-127.0.0.255", sizeof(b.codes));
		b.enabled = 1;
		b.weight = 1;
		if (site_opts(&b, argc - 2, argv + 2) != 0)
			return 1;
		site_to(&b, &s);
		if (store_policy_site_add(st, &s, &id, err, sizeof(err)) < 0)
			return fail("%s", err);
		printf("%lld\n", (long long)id);
		return 0;
	}
	if (strcmp(argv[0], "set") == 0) {
		if (store_policy_sites(st, find_site, &b) < 0)
			return fail("%s", store_policy_errmsg(st));
		if (!b.found)
			return fail("no DNSBL site %s", b.zone);
		if (site_opts(&b, argc - 2, argv + 2) != 0)
			return 1;
		site_to(&b, &s);
		if (store_policy_site_update(st, &s, &n) < 0)
			return fail("%s", store_policy_errmsg(st));
		return 0;
	}
	if (strcmp(argv[0], "remove") == 0 && argc == 2) {
		if (store_policy_site_remove(st, b.zone, &n) < 0)
			return fail("%s", store_policy_errmsg(st));
		return n ? 0 : fail("no DNSBL site %s", b.zone);
	}
	return 2;
}

/* --- directory ------------------------------------------------------------ */

/* A plain mail address, lower-cased into out. */
static int dir_address(const char *in, char *out, size_t outsz)
{
	char err[300];

	if (strchr(in, '@') == NULL || strchr(in, '*') != NULL || strchr(in, '?') != NULL ||
	    strcmp(in, "<>") == 0 ||
	    policy_value_check(POLICY_LT_MAIL, in, strlen(in), out, outsz, err, sizeof(err)) < 0)
		return fail("%s: not a valid mail address", in);
	return 0;
}

static int cmd_user(struct store *st, int argc, char **argv)
{
	static char addrs[MAX_ARGS][400];
	const char *ptrs[MAX_ARGS];
	char err[400];
	int i, removed;

	if (argc == 2 && strcmp(argv[0], "remove") == 0) {
		if (store_policy_user_remove(st, argv[1], &removed) < 0)
			return fail("%s", store_policy_errmsg(st));
		return removed ? 0 : fail("no user %s", argv[1]);
	}
	if (argc < 3 || strcmp(argv[0], "add") != 0 || argc - 2 > MAX_ARGS)
		return 2;
	if (!text_ok(argv[1], 100) || argv[1][0] == '\0')
		return fail("user name: printable ASCII, 1 to 100 characters");
	for (i = 2; i < argc; i++) {
		if (dir_address(argv[i], addrs[i - 2], sizeof(addrs[0])) != 0)
			return 1;
		ptrs[i - 2] = addrs[i - 2];
	}
	if (store_policy_user_add(st, argv[1], ptrs, (size_t)(argc - 2), err, sizeof(err)) < 0)
		return fail("%s", err);
	return 0;
}

static int cmd_group(struct store *st, int argc, char **argv)
{
	static char members[MAX_ARGS][400];
	const char *ptrs[MAX_ARGS];
	char addr[400];
	char err[400];
	int i, removed;

	if (argc < 2 || argc - 2 > MAX_ARGS)
		return 2;
	if (dir_address(argv[1], addr, sizeof(addr)) != 0)
		return 1;
	if (argc == 2 && strcmp(argv[0], "remove") == 0) {
		if (store_policy_group_remove(st, addr, &removed) < 0)
			return fail("%s", store_policy_errmsg(st));
		return removed ? 0 : fail("no group %s", addr);
	}
	if (strcmp(argv[0], "add") != 0)
		return 2;
	for (i = 2; i < argc; i++) {
		if (dir_address(argv[i], members[i - 2], sizeof(members[0])) != 0)
			return 1;
		ptrs[i - 2] = members[i - 2];
	}
	if (store_policy_group_add(st, addr, "", ptrs, (size_t)(argc - 2), err,
				   sizeof(err)) < 0)
		return fail("%s", err);
	return 0;
}

static int print_dir(const struct store_dir_row *r, void *arg)
{
	(void)arg;
	printf("%s\t%s\t%s\t%s\n", r->address, r->kind, r->owner[0] ? r->owner : "-",
	       r->members ? r->members : "-");
	return 0;
}

static int print_check_stat(const char *check, int64_t day, int64_t count, void *arg)
{
	char date[40];

	(void)arg;
	fmt_time(day * 86400000, date, sizeof(date));
	date[10] = '\0';
	printf("%s\t%s\t%lld\n", date, check, (long long)count);
	return 0;
}

int cli_policy_main(int argc, char **argv)
{
	static const char *const verbs[] = { "list", "add", "remove", "show", "set", "dnsbl",
					     "user", "group", "directory", "stats", NULL };
	struct conf conf;
	struct store *st;
	const char *cmd;
	int rc;

	if (cli_begin("policy", &argc, &argv, &conf, verbs, usage, &cmd, &rc) < 0)
		return rc;
	st = cli_open_store(&conf, "policy", 1);
	if (st == NULL)
		return 1;
	if (strcmp(cmd, "list") == 0) {
		rc = cmd_list(st, argc, argv);
	} else if (strcmp(cmd, "add") == 0) {
		rc = cmd_add(st, argc, argv);
	} else if (strcmp(cmd, "remove") == 0) {
		rc = cmd_remove(st, argc, argv);
	} else if (strcmp(cmd, "show") == 0) {
		rc = cmd_show(st, argc, argv);
	} else if (strcmp(cmd, "set") == 0) {
		rc = cmd_set(st, argc, argv);
	} else if (strcmp(cmd, "dnsbl") == 0) {
		rc = cmd_dnsbl(st, argc, argv);
	} else if (strcmp(cmd, "user") == 0) {
		rc = cmd_user(st, argc, argv);
	} else if (strcmp(cmd, "group") == 0) {
		rc = cmd_group(st, argc, argv);
	} else if (strcmp(cmd, "directory") == 0) {
		rc = argc == 0 ? (store_policy_directory(st, print_dir, NULL) < 0
				  ? fail("%s", store_policy_errmsg(st)) : 0) : 2;
	} else {
		int64_t days = 7;

		if (argc == 1 && parse_id(argv[0], &days) < 0)
			rc = fail("stats: DAYS must be a positive integer");
		else if (argc > 1)
			rc = 2;
		else
			rc = store_policy_stats(st, time_now_ms() / 86400000 - days + 1,
						print_check_stat, NULL) < 0
				? fail("%s", store_policy_errmsg(st)) : 0;
	}
	store_close(st);
	if (rc == 2)
		usage(stderr);
	return rc;
}
