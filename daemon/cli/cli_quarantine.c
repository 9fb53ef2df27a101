/*
 * cli_quarantine: "moatd quarantine ..." — list, show, release and delete
 * quarantined mail, by item id (--id, repeatable) or by filter.  Works on
 * the database directly, with moatd running or not: a release hard-links
 * the message into the queue and adds queued rows, which the runner picks
 * up on its next poll.  The changes are quarantine_admin_apply()'s, the
 * same the API makes, with message events and an audit row (actor "cli").
 *
 * Changing operations refuse to run without ids or a filter unless --all
 * is given.  Output: a table, or JSON with --json.
 */
#include "cli.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../quarantine/quarantine_admin.h"
#include "../store/store.h"
#include "../store/store_quarantine.h"
#include "../util/util.h"

static void usage(FILE *out)
{
	fprintf(out,
		"usage: moatd quarantine [-c FILE] [--data-dir DIR] COMMAND [FILTER...] [OPTIONS]\n"
		"commands:\n"
		"  list                    items matching the filter, newest first\n"
		"  show ID                 one item\n"
		"  release                 deliver matching items to their recipients\n"
		"  delete                  remove matching items (and their messages)\n"
		"filters (AND):\n"
		"  --id ID (repeatable)  --recipient ADDR  --sender ADDR (trailing * = prefix)\n"
		"  --subject TEXT  --reason TEXT (substrings)  --kind spam|policy|virus|attachment\n"
		"  --qid QID  --older-than DURATION (30m, 2h, 5d)\n"
		"options: --json  --limit N (list)  --all (change everything: no filter)\n"
		"  --allow-sender (release: add the senders to sender_allow)\n"
		"  --block-sender (delete: add the senders to sender_deny)\n");
}

struct opts {
	struct store_quarantine_filter f;
	int64_t ids[STORE_QUARANTINE_IDS_MAX];
	int json, all, nfilters;
	enum quarantine_sender_list sl;
	int64_t limit;
};

static int parse_opts(int argc, char **argv, struct opts *o)
{
	static const char *const kinds[] = { "spam", "policy", "virus", "attachment" };
	int i;

	o->limit = 100;
	for (i = 0; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		int takes = 1;

		if (strcmp(a, "--json") == 0) {
			o->json = 1;
			takes = 0;
		} else if (strcmp(a, "--all") == 0) {
			o->all = 1;
			takes = 0;
		} else if (strcmp(a, "--allow-sender") == 0) {
			o->sl = QUARANTINE_LIST_ALLOW;
			takes = 0;
		} else if (strcmp(a, "--block-sender") == 0) {
			o->sl = QUARANTINE_LIST_BLOCK;
			takes = 0;
		} else if (v == NULL) {
			fprintf(stderr, "moatd quarantine: unknown option or missing value: %s\n", a);
			return -2;
		} else if (strcmp(a, "--id") == 0) {
			char *end;
			long long id;

			errno = 0;
			id = strtoll(v, &end, 10);
			if (errno != 0 || *end != '\0' || id < 1 ||
			    o->f.nids == STORE_QUARANTINE_IDS_MAX) {
				fprintf(stderr, "moatd quarantine: --id: a positive item id\n");
				return -2;
			}
			o->ids[o->f.nids++] = id;
			o->f.ids = o->ids;
		} else if (strcmp(a, "--recipient") == 0) {
			o->f.rcpt = v;
		} else if (strcmp(a, "--sender") == 0) {
			o->f.sender = v;
		} else if (strcmp(a, "--subject") == 0) {
			o->f.subject = v;
		} else if (strcmp(a, "--reason") == 0) {
			o->f.reason = v;
		} else if (strcmp(a, "--qid") == 0) {
			o->f.qid = v;
		} else if (strcmp(a, "--kind") == 0) {
			size_t k;

			for (k = 0; k < ARRAY_LEN(kinds) && strcmp(kinds[k], v) != 0; k++)
				;
			if (k == ARRAY_LEN(kinds)) {
				fprintf(stderr, "moatd quarantine: --kind: spam, policy, virus or"
					" attachment\n");
				return -2;
			}
			o->f.kind = kinds[k];
		} else if (strcmp(a, "--older-than") == 0) {
			int64_t ms;

			if (cli_parse_age(v, &ms) < 0) {
				fprintf(stderr, "moatd quarantine: --older-than: a duration like 5d\n");
				return -2;
			}
			o->f.until = time_now_ms() - ms;
		} else if (strcmp(a, "--limit") == 0) {
			char *end;

			o->limit = strtoll(v, &end, 10);
			if (*end != '\0' || o->limit < 1 || o->limit > 1000000) {
				fprintf(stderr, "moatd quarantine: --limit: 1..1000000\n");
				return -2;
			}
		} else {
			fprintf(stderr, "moatd quarantine: unknown option: %s\n", a);
			return -2;
		}
		if (takes) {
			i++;
			if (strcmp(a, "--limit") != 0)
				o->nfilters++;
		}
	}
	return 0;
}

static void iso(int64_t ms, char *out, size_t outsz)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, outsz, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

struct list_ctx {
	int json;
	json_t *arr;
};

static int print_row(const struct store_quarantine_row *q, void *arg)
{
	struct list_ctx *c = arg;
	char created[32], expires[32];

	iso(q->created_at, created, sizeof(created));
	iso(q->expires_at, expires, sizeof(expires));
	if (c->json) {
		json_array_append_new(c->arr, json_pack(
			"{s:I, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:s, s:s}",
			"id", (json_int_t)q->id, "qid", q->qid, "recipient", q->rcpt,
			"kind", q->kind, "reason", q->reason, "sender", q->sender,
			"subject", q->subject, "message_id", q->message_id,
			"client_address", q->client_addr, "size", (json_int_t)q->size,
			"created_at", created, "expires_at", expires));
		return 0;
	}
	printf("%-8lld %-20s %-7s %-30.30s %-30.30s %-30.30s %s\n", (long long)q->id, created,
	       q->kind, q->sender[0] ? q->sender : "<>", q->rcpt, q->subject, q->reason);
	return 0;
}

static int do_list(struct store *st, struct opts *o)
{
	struct list_ctx c = { o->json, o->json ? json_array() : NULL };

	o->f.limit = o->limit;
	if (!o->json)
		printf("%-8s %-20s %-7s %-30s %-30s %-30s %s\n", "ID", "CREATED", "KIND", "SENDER",
		       "RECIPIENT", "SUBJECT", "REASON");
	if (store_quarantine_list(st, &o->f, print_row, &c) < 0) {
		fprintf(stderr, "moatd quarantine: cannot read the quarantine\n");
		json_decref(c.arr);
		return 1;
	}
	if (o->json) {
		char *s = json_dumps(c.arr, JSON_INDENT(2));

		printf("%s\n", s != NULL ? s : "[]");
		free(s);
		json_decref(c.arr);
	}
	return 0;
}

static int do_change(struct store *st, struct opts *o, const char *cmd, const char *data_dir)
{
	static const struct quarantine_actor actor = { 0, 1, "cli", "cli", NULL, 0 };
	enum quarantine_op op = strcmp(cmd, "release") == 0 ? QUARANTINE_RELEASE
							     : QUARANTINE_DELETE;
	struct quarantine_result res;
	char err[300];
	int status = 0;

	if (o->nfilters == 0 && !o->all) {
		fprintf(stderr, "moatd quarantine %s: give --id or a filter, or --all for every"
			" item\n", cmd);
		return 2;
	}
	if ((op == QUARANTINE_RELEASE && o->sl == QUARANTINE_LIST_BLOCK) ||
	    (op == QUARANTINE_DELETE && o->sl == QUARANTINE_LIST_ALLOW)) {
		fprintf(stderr, "moatd quarantine: --allow-sender goes with release,"
			" --block-sender with delete\n");
		return 2;
	}
	if (quarantine_admin_apply(st, data_dir, op, &o->f, o->sl, &actor, &res, &status, err,
				   sizeof(err)) < 0) {
		fprintf(stderr, "moatd quarantine %s: %s\n", cmd, err);
		return 1;
	}
	if (o->json)
		printf("{\"recipients\": %d, \"messages\": %d, \"sender_listed\": %d}\n",
		       res.recipients, res.messages, res.sender_listed);
	else
		printf("%s: %d recipient(s) of %d message(s); %d sender(s) listed\n", cmd,
		       res.recipients, res.messages, res.sender_listed);
	return 0;
}

int cli_quarantine_main(int argc, char **argv)
{
	static const char *const verbs[] = { "list", "show", "release", "delete", NULL };
	struct conf conf;
	struct opts *o;
	struct store *st;
	const char *cmd;
	int rc;

	if (cli_begin("quarantine", &argc, &argv, &conf, verbs, usage, &cmd, &rc) < 0)
		return rc;
	o = xcalloc(1, sizeof(*o));
	if (strcmp(cmd, "show") == 0) {
		char *end;
		long long id = argc > 0 ? strtoll(argv[0], &end, 10) : 0;

		if (argc < 1 || *end != '\0' || id < 1) {
			fprintf(stderr, "moatd quarantine show: an item id\n");
			free(o);
			return 2;
		}
		o->ids[0] = id;
		o->f.ids = o->ids;
		o->f.nids = 1;
		argc--;
		argv++;
	}
	rc = parse_opts(argc, argv, o);
	if (rc < 0) {
		free(o);
		return rc == -2 ? 2 : 1;
	}
	st = cli_open_store(&conf, "quarantine", 0);
	if (st == NULL) {
		free(o);
		return 1;
	}
	if (strcmp(cmd, "list") == 0 || strcmp(cmd, "show") == 0) {
		if (strcmp(cmd, "show") == 0)
			o->json = 1;
		rc = do_list(st, o);
	} else {
		rc = do_change(st, o, cmd, conf.data_dir);
	}
	store_close(st);
	free(o);
	return rc;
}
