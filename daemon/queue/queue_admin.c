/*
 * queue_admin: see queue_admin.h.  All SQL is in store_queue.c and
 * store_auth.c; the audit row goes through store_auth_audit_add(), the
 * same function the API's other audited changes use, inside the same
 * transaction as the rows it describes.
 */
#include "queue_admin.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../log/log.h"
#include "../spool/spool_read.h"
#include "../store/store.h"
#include "../store/store_auth.h"
#include "../util/util.h"

#define GONE_MAX 100000 /* spool files one delete removes; the rest: reconciliation */

const char *queue_admin_op_name(enum queue_admin_op op)
{
	switch (op) {
	case QUEUE_ADMIN_RELEASE:
		return "release";
	case QUEUE_ADMIN_RETRY:
		return "retry";
	case QUEUE_ADMIN_HOLD:
		return "hold";
	case QUEUE_ADMIN_DELETE:
		return "delete";
	}
	return NULL;
}

struct gone {
	char **qids;
	size_t n;
};

static int gone_cb(const char *qid, void *arg)
{
	struct gone *g = arg;

	if (g->n == GONE_MAX || !spool_qid_valid(qid, strlen(qid)))
		return 0;
	g->qids = xrealloc(g->qids, (g->n + 1) * sizeof(*g->qids));
	g->qids[g->n++] = xstrdup(qid);
	return 0;
}

static void gone_free(struct gone *g)
{
	size_t i;

	for (i = 0; i < g->n; i++)
		free(g->qids[i]);
	free(g->qids);
}

/* The filter as the audit row shows it: the fields given, API names. */
static char *filter_json(const struct store_queue_filter *f)
{
	json_t *o = json_object();
	char *s;

	if (f->qid != NULL)
		json_object_set_new(o, "qid", json_string(f->qid));
	if (f->sender != NULL)
		json_object_set_new(o, "sender", json_string(f->sender));
	if (f->client_addr != NULL)
		json_object_set_new(o, "client", json_string(f->client_addr));
	if (f->rcpt_domain != NULL)
		json_object_set_new(o, "rcpt_domain", json_string(f->rcpt_domain));
	if (f->reason != NULL)
		json_object_set_new(o, "reason", json_string(f->reason));
	if (f->state != NULL)
		json_object_set_new(o, "state", json_string(f->state));
	if (f->received_before != 0)
		json_object_set_new(o, "received_before", json_integer(f->received_before));
	if (f->auth_user != NULL)
		json_object_set_new(o, "auth_user", json_string(f->auth_user));
	if (f->received_after != 0)
		json_object_set_new(o, "received_after", json_integer(f->received_after));
	s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(o);
	return s;
}

static int audit(struct store *st, const struct queue_admin_actor *actor, const char *op,
		 const struct store_queue_filter *f, const struct queue_admin_result *res)
{
	struct store_audit a;
	char action[32];
	char after[96];
	char *before = filter_json(f);
	int rc;

	snprintf(action, sizeof(action), "queue.%s", op);
	snprintf(after, sizeof(after), "{\"messages_removed\":%d,\"recipients\":%d}",
		 res->messages_removed, res->recipients);
	memset(&a, 0, sizeof(a));
	a.ts = time_now_ms();
	a.actor_id = actor->user_id;
	a.actor = actor->name;
	a.via = actor->via;
	a.client_addr = actor->client_addr != NULL ? actor->client_addr : "-";
	a.action = action;
	a.object_type = "queue";
	a.object_id = f->qid;
	a.before = before;
	a.after = after;
	rc = store_auth_audit_add(st, &a);
	free(before);
	return rc;
}

int queue_admin_apply(struct store *st, const char *data_dir, enum queue_admin_op op,
		      const struct store_queue_filter *f, const char *hold_reason,
		      const struct queue_admin_actor *actor, struct queue_admin_result *res,
		      char *err, size_t errsz)
{
	struct store_queue_filter hf;
	struct gone g = { NULL, 0 };
	const char *name = queue_admin_op_name(op);
	int64_t now = time_now_ms();
	int n = 0;
	int rc = -1;
	size_t i;

	memset(res, 0, sizeof(*res));
	if (name == NULL) {
		snprintf(err, errsz, "unknown queue operation");
		return -1;
	}
	if (store_begin(st) < 0) {
		snprintf(err, errsz, "database busy");
		return -1;
	}
	switch (op) {
	case QUEUE_ADMIN_RELEASE:
		rc = store_queue_release(st, f, now, &n);
		break;
	case QUEUE_ADMIN_RETRY:
		rc = store_queue_retry(st, f, now, &n);
		break;
	case QUEUE_ADMIN_HOLD:
		hf = *f;
		hf.reason = NULL; /* hold_reason is what to set; reason does not filter */
		rc = store_queue_hold(st, &hf, hold_reason, &n);
		break;
	case QUEUE_ADMIN_DELETE:
		rc = store_queue_delete(st, f, &n, gone_cb, &g);
		break;
	}
	res->recipients = n;
	res->messages_removed = (int)g.n;
	if (rc < 0 || audit(st, actor, name, f, res) < 0 || store_commit(st) < 0) {
		store_rollback(st);
		gone_free(&g);
		memset(res, 0, sizeof(*res));
		snprintf(err, errsz, "queue %s failed; nothing changed", name);
		return -1;
	}
	for (i = 0; i < g.n; i++) {
		char path[1400];

		if (spool_queue_path(data_dir, g.qids[i], path, sizeof(path)) < 0)
			continue;
		if (unlink(path) < 0 && errno != ENOENT)
			log_warn(g.qids[i], "queue", "delete: %s: %s", path, strerror(errno));
	}
	gone_free(&g);
	log_info(f->qid, "queue", "%s by=%s recipients=%d messages_removed=%d", name,
		 actor->name, res->recipients, res->messages_removed);
	return 0;
}
