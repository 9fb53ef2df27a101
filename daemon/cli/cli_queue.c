/*
 * cli_queue: "moatd queue ..." — list, show, hold, release, retry and
 * delete queued mail, one message (--qid) or every message matching a
 * filter.  Works on the database directly, with moatd running or not: the
 * runner re-reads due rows every queue_poll, so a release or retry applies
 * within a second.  The changes are queue_admin's, the same the API makes,
 * with an audit row (actor "cli"); headers come from spool_read.
 *
 * Changing operations refuse to run without a filter unless --all is
 * given.  Output: a table, or JSON with --json.
 */
#include "cli.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../queue/queue_admin.h"
#include "../spool/spool_read.h"
#include "../store/store.h"
#include "../util/util.h"

static void usage(FILE *out)
{
	fprintf(out,
		"usage: moatd queue [-c FILE] [--data-dir DIR] COMMAND [FILTER...] [OPTIONS]\n"
		"commands:\n"
		"  list                    recipients matching the filter\n"
		"  show QID                one message: envelope, recipients, headers\n"
		"  hold                    queued/deferred -> held   (--reason TEXT)\n"
		"  release                 held/dead -> queued, due now, lifetime restarts\n"
		"  retry                   queued/deferred -> due now\n"
		"  delete                  remove matching recipients (and emptied messages)\n"
		"filters (AND):\n"
		"  --qid QID  --sender ADDR ('<>' for the null sender)  --client IP\n"
		"  --domain DOMAIN (recipient domain)  --reason TEXT (substring of the\n"
		"  failure or held reason)  --state queued|deferred|held|dead|done\n"
		"  --older-than DURATION (received before now - DURATION; 30m, 2h, 5d)\n"
		"options: --json  --limit N (list)  --all (change everything: no filter)\n");
}

struct opts {
	struct store_queue_filter f;
	int json;
	int all;
	const char *hold_reason;
	const char *show_qid;
	int nfilters;
};

static int parse_opts(int argc, char **argv, struct opts *o)
{
	int i;

	for (i = 0; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(a, "--json") == 0) {
			o->json = 1;
			continue;
		}
		if (strcmp(a, "--all") == 0) {
			o->all = 1;
			continue;
		}
		if (a[0] != '-') {
			if (o->show_qid != NULL)
				goto bad;
			o->show_qid = a;
			continue;
		}
		if (v == NULL)
			goto bad;
		i++;
		if (strcmp(a, "--qid") == 0) {
			o->f.qid = v;
		} else if (strcmp(a, "--sender") == 0) {
			o->f.sender = strcmp(v, "<>") == 0 ? "" : v;
		} else if (strcmp(a, "--client") == 0) {
			o->f.client_addr = v;
		} else if (strcmp(a, "--domain") == 0) {
			o->f.rcpt_domain = v;
		} else if (strcmp(a, "--reason") == 0) {
			o->f.reason = v;
			o->hold_reason = v;
		} else if (strcmp(a, "--state") == 0) {
			if (strcmp(v, "queued") != 0 && strcmp(v, "deferred") != 0 &&
			    strcmp(v, "held") != 0 && strcmp(v, "dead") != 0 && strcmp(v, "done") != 0) {
				fprintf(stderr, "moatd queue: --state %s: unknown state\n", v);
				return -1;
			}
			o->f.state = v;
		} else if (strcmp(a, "--older-than") == 0) {
			int64_t ms;

			if (cli_parse_age(v, &ms) < 0) {
				fprintf(stderr, "moatd queue: --older-than %s: expected a duration\n", v);
				return -1;
			}
			o->f.received_before = time_now_ms() - ms;
		} else if (strcmp(a, "--limit") == 0) {
			char *end;

			o->f.limit = strtoll(v, &end, 10);
			if (*end != '\0' || o->f.limit < 0)
				goto bad;
			continue; /* not a filter */
		} else {
			goto bad;
		}
		o->nfilters++;
	}
	return 0;
bad:
	usage(stderr);
	return -2;
}

static void fmt_age(int64_t ms, char *out, size_t outsz)
{
	int64_t s = ms > 0 ? ms / 1000 : 0;

	if (s < 120)
		snprintf(out, outsz, "%llds", (long long)s);
	else if (s < 7200)
		snprintf(out, outsz, "%lldm", (long long)(s / 60));
	else if (s < 172800)
		snprintf(out, outsz, "%lldh", (long long)(s / 3600));
	else
		snprintf(out, outsz, "%lldd", (long long)(s / 86400));
}

static json_t *row_json(const struct store_queue_row *r)
{
	json_t *o = json_object();

	json_object_set_new(o, "qid", json_string(r->qid));
	json_object_set_new(o, "rcpt", json_string(r->rcpt));
	json_object_set_new(o, "state", json_string(r->state));
	json_object_set_new(o, "sender", json_string(r->sender));
	json_object_set_new(o, "client_addr", json_string(r->client_addr));
	json_object_set_new(o, "auth_user", r->auth_user ? json_string(r->auth_user) : json_null());
	json_object_set_new(o, "attempts", json_integer(r->attempts));
	json_object_set_new(o, "received_at", json_integer(r->received_at));
	json_object_set_new(o, "next_attempt", json_integer(r->next_attempt));
	json_object_set_new(o, "size", json_integer(r->size));
	json_object_set_new(o, "last_error", r->last_error ? json_string(r->last_error) : json_null());
	json_object_set_new(o, "reason", r->reason ? json_string(r->reason) : json_null());
	json_object_set_new(o, "route", r->route ? json_string(r->route) : json_null());
	return o;
}

struct list_ctx {
	json_t *arr;
	int n;
	int64_t now;
};

static int list_row(const struct store_queue_row *r, void *arg)
{
	struct list_ctx *lc = arg;

	if (lc->arr != NULL) {
		json_array_append_new(lc->arr, row_json(r));
	} else {
		char age[32];
		const char *why = r->reason ? r->reason : r->last_error ? r->last_error : "";

		fmt_age(lc->now - r->received_at, age, sizeof(age));
		printf("%-16s %-8s %3d %5s %-28.28s %-30.30s %s\n", r->qid, r->state, r->attempts,
		       age, r->sender[0] ? r->sender : "<>", r->rcpt, why);
	}
	lc->n++;
	return 0;
}

static int do_list(struct store *st, struct opts *o)
{
	struct list_ctx lc = { NULL, 0, time_now_ms() };

	if (o->json)
		lc.arr = json_array();
	else
		printf("%-16s %-8s %3s %5s %-28s %-30s %s\n", "QID", "STATE", "TRY", "AGE", "SENDER",
		       "RECIPIENT", "REASON");
	if (store_queue_list(st, &o->f, list_row, &lc) < 0) {
		fprintf(stderr, "moatd queue: list failed\n");
		json_decref(lc.arr);
		return 1;
	}
	if (o->json) {
		json_dumpf(lc.arr, stdout, JSON_INDENT(2));
		printf("\n");
		json_decref(lc.arr);
	} else {
		printf("%d recipient(s)\n", lc.n);
	}
	return 0;
}

static int do_show(struct store *st, struct opts *o, const char *data_dir)
{
	struct list_ctx lc = { json_array(), 0, time_now_ms() };
	struct store_queue_filter f;
	char head[8192];
	size_t hlen;
	int present;

	if (o->show_qid == NULL) {
		fprintf(stderr, "moatd queue show: which QID?\n");
		json_decref(lc.arr);
		return 2;
	}
	memset(&f, 0, sizeof(f));
	f.qid = o->show_qid;
	if (store_queue_list(st, &f, list_row, &lc) < 0 || lc.n == 0) {
		fprintf(stderr, "moatd queue show: %s: no such message\n", o->show_qid);
		json_decref(lc.arr);
		return 1;
	}
	present = spool_read_headers(data_dir, o->show_qid, head, sizeof(head) - 1, &hlen) == 0;
	if (o->json) {
		json_t *root = json_object();

		json_object_set_new(root, "qid", json_string(o->show_qid));
		json_object_set_new(root, "recipients", lc.arr);
		json_object_set_new(root, "headers", json_string(head));
		json_object_set_new(root, "spool_file", json_boolean(present));
		json_dumpf(root, stdout, JSON_INDENT(2));
		printf("\n");
		json_decref(root);
		return 0;
	}
	{
		size_t i;

		for (i = 0; i < json_array_size(lc.arr); i++) {
			json_t *r = json_array_get(lc.arr, i);

			if (i == 0)
				printf("qid: %s\nsender: <%s>\nclient: %s\nauth_user: %s\nsize: %lld\n",
				       o->show_qid, json_string_value(json_object_get(r, "sender")),
				       json_string_value(json_object_get(r, "client_addr")),
				       json_is_string(json_object_get(r, "auth_user"))
				       ? json_string_value(json_object_get(r, "auth_user")) : "-",
				       (long long)json_integer_value(json_object_get(r, "size")));
			printf("rcpt: <%s> state=%s attempts=%lld error=%s\n",
			       json_string_value(json_object_get(r, "rcpt")),
			       json_string_value(json_object_get(r, "state")),
			       (long long)json_integer_value(json_object_get(r, "attempts")),
			       json_is_string(json_object_get(r, "last_error"))
			       ? json_string_value(json_object_get(r, "last_error")) : "-");
		}
		printf("--- headers%s ---\n%s", present ? "" : " (spool file missing)", head);
	}
	json_decref(lc.arr);
	return 0;
}

static int do_change(struct store *st, struct opts *o, const char *cmd, const char *data_dir)
{
	/* via "system": the audit log's word for a change made without the API */
	static const struct queue_admin_actor actor = { 0, "cli", "system", NULL };
	struct queue_admin_result res;
	enum queue_admin_op op;
	char err[128];

	if (o->nfilters == 0 && !o->all) {
		fprintf(stderr, "moatd queue %s: give a filter, or --all to change every message\n",
			cmd);
		return 2;
	}
	if (strcmp(cmd, "release") == 0)
		op = QUEUE_ADMIN_RELEASE;
	else if (strcmp(cmd, "retry") == 0)
		op = QUEUE_ADMIN_RETRY;
	else if (strcmp(cmd, "hold") == 0)
		op = QUEUE_ADMIN_HOLD; /* --reason is the reason to set here */
	else
		op = QUEUE_ADMIN_DELETE;
	if (queue_admin_apply(st, data_dir, op, &o->f, o->hold_reason, &actor, &res, err,
			      sizeof(err)) < 0) {
		fprintf(stderr, "moatd queue %s: %s\n", cmd, err);
		return 1;
	}
	if (o->json)
		printf("{\"command\": \"%s\", \"recipients\": %d, \"messages_removed\": %d}\n",
		       cmd, res.recipients, res.messages_removed);
	else
		printf("%s: %d recipient(s)\n", cmd, res.recipients);
	return 0;
}

int cli_queue_main(int argc, char **argv)
{
	static const char *const verbs[] = { "list", "show", "hold", "release", "retry", "delete",
					     NULL };
	struct conf conf;
	struct opts o;
	struct store *st;
	const char *cmd;
	int rc;

	if (cli_begin("queue", &argc, &argv, &conf, verbs, usage, &cmd, &rc) < 0)
		return rc;
	memset(&o, 0, sizeof(o));
	rc = parse_opts(argc, argv, &o);
	if (rc < 0)
		return rc == -2 ? 2 : 1;
	if (strcmp(cmd, "show") != 0 && o.show_qid != NULL) {
		o.f.qid = o.show_qid; /* "moatd queue delete QID" */
		o.nfilters++;
	}
	st = cli_open_store(&conf, "queue", 0);
	if (st == NULL)
		return 1;
	if (strcmp(cmd, "list") == 0)
		rc = do_list(st, &o);
	else if (strcmp(cmd, "show") == 0)
		rc = do_show(st, &o, conf.data_dir);
	else
		rc = do_change(st, &o, cmd, conf.data_dir);
	store_close(st);
	return rc;
}
