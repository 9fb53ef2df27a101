/*
 * cli_dkim: `moatd dkim ...` -- the DKIM signing keys from the shell:
 * list, show, generate, enable, disable, delete, and `sign FILE`, which
 * prints a message signed as moatd would sign it on delivery (for
 * operators checking their DNS record, and for tests with an independent
 * verifier).  The key operations are dkim_admin's, the same the API makes,
 * with an audit row (actor "cli", via "system"); a change bumps the policy
 * generation and the running daemon signs with it from the next snapshot.
 *
 * Global options (-c FILE, --data-dir DIR, -o key=value) may stand before
 * or after the command word.  A private key is never printed.
 */
#include "cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../score/dkim_sign.h"
#include "../store/store.h"
#include "../util/util.h"

static const struct dkim_actor cli_actor = { 0, "cli", "system", NULL };

static void usage(FILE *out)
{
	fprintf(out,
		"usage: moatd dkim [-c FILE] [--data-dir DIR] COMMAND [ARGS]\n"
		"commands:\n"
		"  list                          every key and the DNS record to publish\n"
		"  show ID                       one key as JSON\n"
		"  generate DOMAIN SELECTOR [--algorithm rsa-sha256|ed25519-sha256]\n"
		"           [--bits N] [--disabled]\n"
		"                                a new key for a local_domain (RSA %d bits by\n"
		"                                default, %d..%d); prints the DNS record\n"
		"  enable ID | disable ID        sign with the key, or stop\n"
		"  delete ID                     remove a key\n"
		"  sign FILE|-                   the message signed with the enabled keys, on stdout\n",
		DKIM_RSA_BITS_DEFAULT, DKIM_RSA_BITS_MIN, DKIM_RSA_BITS_MAX);
}

static int fail(const char *cmd, const struct dkim_err *e)
{
	fprintf(stderr, "moatd dkim %s: %s%s%s\n", cmd, e->field[0] ? e->field : "",
		e->field[0] ? ": " : "", e->message);
	return 1;
}

static int parse_id(const char *cmd, const char *s, int64_t *id)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < 1) {
		fprintf(stderr, "moatd dkim %s: %s: not a key id\n", cmd, s);
		return -1;
	}
	*id = v;
	return 0;
}

static void print_record(const json_t *k)
{
	printf("%s IN TXT %s\n", json_string_value(json_object_get(k, "record_name")),
	       json_string_value(json_object_get(k, "record_zone")));
}

static int cmd_list(struct store *st)
{
	struct dkim_err e;
	json_t *items = dkim_admin_list(st, &e), *k;
	size_t i;

	if (items == NULL)
		return fail("list", &e);
	printf("%-6s %-8s %-15s %-5s %-30s %s\n", "ID", "ENABLED", "ALGORITHM", "BITS", "DOMAIN",
	       "SELECTOR");
	json_array_foreach(items, i, k) {
		printf("%-6lld %-8s %-15s %-5lld %-30s %s\n",
		       (long long)json_integer_value(json_object_get(k, "id")),
		       json_is_true(json_object_get(k, "enabled")) ? "yes" : "no",
		       json_string_value(json_object_get(k, "algorithm")),
		       (long long)json_integer_value(json_object_get(k, "bits")),
		       json_string_value(json_object_get(k, "domain")),
		       json_string_value(json_object_get(k, "selector")));
	}
	json_decref(items);
	return 0;
}

static int cmd_generate(struct store *st, int argc, char **argv)
{
	const char *alg = "rsa-sha256";
	int64_t bits = 0;
	int enabled = 1;
	struct dkim_err e;
	json_t *k;
	int i;

	if (argc < 2)
		return 2;
	for (i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--algorithm") == 0 && i + 1 < argc) {
			alg = argv[++i];
		} else if (strcmp(argv[i], "--bits") == 0 && i + 1 < argc) {
			char *end;

			errno = 0;
			bits = strtoll(argv[++i], &end, 10);
			if (errno != 0 || *end != '\0' || bits < 1) {
				fprintf(stderr, "moatd dkim generate: --bits %s: not a number\n",
					argv[i]);
				return 2;
			}
		} else if (strcmp(argv[i], "--disabled") == 0) {
			enabled = 0;
		} else {
			fprintf(stderr, "moatd dkim generate: unknown option %s\n", argv[i]);
			return 2;
		}
	}
	k = dkim_admin_create(st, argv[0], argv[1], alg, bits, enabled, &cli_actor, &e);
	if (k == NULL)
		return fail("generate", &e);
	printf("key %lld %s for %s, selector %s; publish:\n",
	       (long long)json_integer_value(json_object_get(k, "id")),
	       enabled ? "enabled" : "made (disabled)",
	       json_string_value(json_object_get(k, "domain")),
	       json_string_value(json_object_get(k, "selector")));
	print_record(k);
	json_decref(k);
	return 0;
}

/* The message in path ("-": standard input), at most max octets. */
static char *read_message(const char *path, size_t max, size_t *len)
{
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
	struct dynbuf b;
	char chunk[8192];
	size_t n;
	int bad = 0;

	if (f == NULL) {
		fprintf(stderr, "moatd dkim sign: %s: %s\n", path, strerror(errno));
		return NULL;
	}
	dynbuf_init(&b, max);
	while (!bad && (n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		if (dynbuf_add(&b, chunk, n) < 0) {
			fprintf(stderr, "moatd dkim sign: %s: larger than %zu octets"
				" (max_message_size)\n", path, max);
			bad = 1;
		}
	}
	if (!bad && ferror(f)) {
		fprintf(stderr, "moatd dkim sign: %s: %s\n", path, strerror(errno));
		bad = 1;
	}
	if (f != stdin)
		fclose(f);
	if (bad) {
		dynbuf_free(&b);
		return NULL;
	}
	*len = b.len;
	return b.data != NULL ? b.data : xstrdup("");
}

static int cmd_sign(struct store *st, const struct conf *conf, int argc, char **argv)
{
	struct dkim_keyset *ks = NULL;
	char err[300];
	char *msg, *field = NULL;
	size_t len = 0;
	int skipped = 0;
	int rc;

	if (argc != 1)
		return 2;
	msg = read_message(argv[0], (size_t)conf->max_message_size, &len);
	if (msg == NULL)
		return 1;
	if (dkim_keyset_load(st, &ks, &skipped) < 0) {
		fprintf(stderr, "moatd dkim sign: reading the keys failed\n");
		free(msg);
		return 1;
	}
	if (skipped > 0)
		fprintf(stderr, "moatd dkim sign: %d stored keys do not load and were left out\n",
			skipped);
	rc = dkim_sign_message(ks, msg, len, &field, err, sizeof(err));
	if (rc == 1) {
		const char *nl = memchr(msg, '\n', len);
		int crlf = nl == NULL || (nl > msg && nl[-1] == '\r');

		/* The field in the message's own line ends. */
		for (const char *p = field; *p != '\0'; p++)
			if (crlf || *p != '\r')
				fputc(*p, stdout);
		fputs(crlf ? "\r\n" : "\n", stdout);
		fwrite(msg, 1, len, stdout);
	} else if (rc == 0) {
		fprintf(stderr, "moatd dkim sign: %s: no enabled key for the From: domain\n",
			argv[0]);
	} else {
		fprintf(stderr, "moatd dkim sign: %s: %s\n", argv[0], err);
	}
	free(field);
	free(msg);
	dkim_keyset_free(ks);
	return rc == 1 ? 0 : 1;
}

static int run(struct store *st, const struct conf *conf, const char *cmd, int argc,
	       char **argv)
{
	struct dkim_err e;
	int64_t id;

	if (strcmp(cmd, "list") == 0)
		return argc == 0 ? cmd_list(st) : 2;
	if (strcmp(cmd, "generate") == 0)
		return cmd_generate(st, argc, argv);
	if (strcmp(cmd, "sign") == 0)
		return cmd_sign(st, conf, argc, argv);
	if (argc != 1)
		return 2;
	if (parse_id(cmd, argv[0], &id) < 0)
		return 1;
	if (strcmp(cmd, "show") == 0) {
		json_t *k = dkim_admin_get(st, id, &e);

		if (k == NULL)
			return fail(cmd, &e);
		cli_print_json(k);
		json_decref(k);
		return 0;
	}
	if (strcmp(cmd, "enable") == 0 || strcmp(cmd, "disable") == 0) {
		json_t *k = dkim_admin_set_enabled(st, id, strcmp(cmd, "enable") == 0, &cli_actor,
						   &e);

		if (k == NULL)
			return fail(cmd, &e);
		printf("key %lld %sd\n", (long long)id, cmd);
		json_decref(k);
		return 0;
	}
	/* delete */
	if (dkim_admin_delete(st, id, &cli_actor, &e) < 0)
		return fail(cmd, &e);
	printf("key %lld deleted\n", (long long)id);
	return 0;
}

/* argv with the global options that follow the command word moved before it. */
static char **hoist_options(int argc, char **argv)
{
	char **out = xcalloc((size_t)argc + 1, sizeof(*out));
	int n = 0;
	int i = 1;

	out[n++] = argv[0];
	/* the leading options, as they are */
	while (i + 1 < argc && argv[i][0] == '-' && argv[i][1] != '\0') {
		out[n++] = argv[i++];
		out[n++] = argv[i++];
	}
	for (int j = i; j < argc; j++) {
		if (j + 1 < argc && (strcmp(argv[j], "--data-dir") == 0 ||
				     strcmp(argv[j], "-c") == 0 || strcmp(argv[j], "--config") == 0 ||
				     strcmp(argv[j], "-o") == 0)) {
			out[n++] = argv[j];
			out[n++] = argv[j + 1];
			j++;
		}
	}
	for (int j = i; j < argc; j++) {
		if (j + 1 < argc && (strcmp(argv[j], "--data-dir") == 0 ||
				     strcmp(argv[j], "-c") == 0 || strcmp(argv[j], "--config") == 0 ||
				     strcmp(argv[j], "-o") == 0)) {
			j++;
			continue;
		}
		out[n++] = argv[j];
	}
	out[n] = NULL;
	return out;
}

int cli_dkim_main(int argc, char **argv)
{
	static const char *const verbs[] = { "list", "show", "generate", "enable", "disable",
					     "delete", "sign", NULL };
	struct conf conf;
	struct store *st;
	const char *cmd;
	char **args = hoist_options(argc, argv);
	char **av = args;
	int ac = argc;
	int status;

	if (cli_begin("dkim", &ac, &av, &conf, verbs, usage, &cmd, &status) < 0) {
		free(args);
		return status;
	}
	st = cli_open_store(&conf, "dkim", 1);
	if (st == NULL) {
		free(args);
		return 1;
	}
	status = run(st, &conf, cmd, ac, av);
	if (status == 2)
		usage(stderr);
	store_close(st);
	free(args);
	return status;
}
