/*
 * quarantine_admin: see quarantine_admin.h.  All SQL is in
 * store_quarantine.c, store_event.c and store_auth.c.
 *
 * A released copy is a message of its own in the queue, under a new queue
 * id: quarantine/<qid> is hard-linked as queue/<new> (link() never
 * replaces, so the name is ours alone), with its own queue_message row.
 * It never reuses queue/<qid> or the queue rows of the original message:
 * the queue runner deletes a finished message's rows and unlinks its file
 * later, outside any transaction we could see, so a file that is there
 * now may be gone a moment after our commit.  The "quarantine.release"
 * event stays under the original qid and names the copy (queue_qid).
 *
 * Order of a release, for crash safety: inside the transaction the link
 * is made and the queue directory fsync'ed, then the queue rows and the
 * removal of the items are committed; quarantine/<qid> goes only after the
 * commit, when no item of it is left.  A crash before the commit leaves
 * queue/<new> without queue rows, which spool reconciliation removes at
 * start (the items are still there); a crash after it leaves a quarantine
 * file without items, which quarantine_reconcile() removes.
 */
#include "quarantine_admin.h"
#include "quarantine_learn.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../cluster/cluster_pg.h"
#include "../log/log.h"
#include "../policy/policy_validate.h"
#include "../spool/spool.h"
#include "../spool/spool_read.h"
#include "../store/store.h"
#include "../store/store_auth.h"
#include "../store/store_event.h"
#include "../store/store_quarantine.h"
#include "../store/store_userlist.h"
#include "../util/util.h"

#define HEADER_MAX 8192    /* bytes read for the Received: field of a released message */

struct item {
	int64_t id;
	char *qid, *rcpt, *kind, *sender, *client_addr;
	int64_t size, created_at;
};

struct items {
	struct item *v;
	size_t n, cap;
};

static int collect(const struct store_quarantine_row *r, void *arg)
{
	struct items *it = arg;
	struct item *x;

	if (it->n == it->cap) {
		it->cap = it->cap ? it->cap * 2 : 64;
		it->v = xrealloc(it->v, it->cap * sizeof(*it->v));
	}
	x = &it->v[it->n++];
	x->id = r->id;
	x->qid = xstrdup(r->qid);
	x->rcpt = xstrdup(r->rcpt);
	x->kind = xstrdup(r->kind);
	x->sender = xstrdup(r->sender);
	x->client_addr = xstrdup(r->client_addr);
	x->size = r->size;
	x->created_at = r->created_at;
	return 0;
}

static void items_clear(struct items *it)
{
	size_t i;

	for (i = 0; i < it->n; i++) {
		free(it->v[i].qid);
		free(it->v[i].rcpt);
		free(it->v[i].kind);
		free(it->v[i].sender);
		free(it->v[i].client_addr);
	}
	it->n = 0;
}

static void items_free(struct items *it)
{
	items_clear(it);
	free(it->v);
	it->v = NULL;
	it->cap = 0;
}

static int spool_path(const char *data_dir, const char *dir, const char *qid, char *out,
		      size_t outsz)
{
	int n;

	if (!spool_qid_valid(qid, strlen(qid)))
		return -1;
	n = snprintf(out, outsz, "%s/spool/%s/%s", data_dir, dir, qid);
	return n < 0 || (size_t)n >= outsz ? -1 : 0;
}

static void actor_label(const struct quarantine_actor *a, char *out, size_t outsz)
{
	if (a->via != NULL && strcmp(a->via, "cli") == 0)
		snprintf(out, outsz, "cli");
	else if (a->via != NULL && strcmp(a->via, "system") == 0)
		snprintf(out, outsz, "system");
	else if (a->via != NULL && strcmp(a->via, "link") == 0)
		snprintf(out, outsz, "link:%s", a->name != NULL ? a->name : "");
	else
		snprintf(out, outsz, "%s:%s", a->admin ? "admin" : "user",
			 a->name != NULL ? a->name : "");
}

/*
 * The envelope of a message whose queue row is gone, from the quarantine
 * item and our own Received: field at the top of the file:
 * "from HELO (NAME [ADDR]) ... with PROTO id QID; date".
 */
static int read_env(const char *path, const struct item *x, struct store_quarantine_env *e,
		    char *helo, size_t helosz, char *name, size_t namesz)
{
	char buf[HEADER_MAX + 1];
	struct dynbuf v;
	size_t len = 0;
	ssize_t r;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int eight = 0;

	if (fd < 0)
		return -1;
	while (len < HEADER_MAX) {
		r = read(fd, buf + len, HEADER_MAX - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		len += (size_t)r;
	}
	buf[len] = '\0';
	/* body_8bit: the delivery client must know whether 8BITMIME is needed. */
	{
		char chunk[65536];
		size_t i;

		for (i = 0; i < len && !eight; i++)
			if ((unsigned char)buf[i] >= 0x80)
				eight = 1;
		while (!eight && (r = read(fd, chunk, sizeof(chunk))) > 0)
			for (i = 0; i < (size_t)r; i++)
				if ((unsigned char)chunk[i] >= 0x80) {
					eight = 1;
					break;
				}
	}
	close(fd);
	memset(e, 0, sizeof(*e));
	e->qid = x->qid;
	e->sender = x->sender;
	e->client_addr = x->client_addr;
	e->size = x->size;
	e->received_at = x->created_at;
	e->body_8bit = eight;
	strlcpy_s(helo, "unknown", helosz);
	strlcpy_s(name, "unknown", namesz);
	dynbuf_init(&v, 2048);
	if (spool_header_get(buf, len, "Received", &v) == 1 && v.data != NULL &&
	    strncmp(v.data, "from ", 5) == 0) {
		const char *p = v.data + 5;
		const char *sp = strchr(p, ' ');
		const char *with = strstr(p, " with ");

		if (sp != NULL && (size_t)(sp - p) < helosz) {
			memcpy(helo, p, (size_t)(sp - p));
			helo[sp - p] = '\0';
			if (sp[1] == '(') {
				const char *b = strstr(sp + 2, " [");

				if (b != NULL && (size_t)(b - sp - 2) < namesz) {
					memcpy(name, sp + 2, (size_t)(b - sp - 2));
					name[b - sp - 2] = '\0';
				}
			}
		}
		if (with != NULL && strncmp(with + 6, "UTF8", 4) == 0)
			e->smtputf8 = 1;
	}
	dynbuf_free(&v);
	e->helo = helo;
	e->client_name = name;
	return 0;
}

/* The filter as the audit row shows it. */
static char *filter_json(const struct store_quarantine_filter *f, enum quarantine_sender_list sl)
{
	json_t *o = json_object();
	char *s;
	size_t i;

	if (f->ids != NULL) {
		json_t *a = json_array();

		for (i = 0; i < f->nids; i++)
			json_array_append_new(a, json_integer(f->ids[i]));
		json_object_set_new(o, "ids", a);
	}
#define PUT(k, v) if ((v) != NULL) json_object_set_new(o, k, json_string(v))
	PUT("recipient", f->rcpt);
	PUT("sender", f->sender);
	PUT("subject", f->subject);
	PUT("reason", f->reason);
	PUT("kind", f->kind);
	PUT("qid", f->qid);
	PUT("q", f->q);
#undef PUT
	if (f->since != 0)
		json_object_set_new(o, "since", json_integer(f->since));
	if (f->until != 0)
		json_object_set_new(o, "until", json_integer(f->until));
	if (f->owner_user_id != 0)
		json_object_set_new(o, "owner_user_id", json_integer(f->owner_user_id));
	if (sl != QUARANTINE_LIST_NONE)
		json_object_set_new(o, "sender_list",
				    json_string(sl == QUARANTINE_LIST_ALLOW ? "allow" : "block"));
	s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(o);
	return s;
}

static int audit(struct store *st, const struct quarantine_actor *actor, const char *op,
		 const struct store_quarantine_filter *f, enum quarantine_sender_list sl,
		 const struct quarantine_result *res)
{
	struct store_audit a;
	char action[40], after[128];
	char *before = filter_json(f, sl);
	int rc;

	snprintf(action, sizeof(action), "quarantine.%s", op);
	snprintf(after, sizeof(after),
		 "{\"messages\":%d,\"recipients\":%d,\"sender_listed\":%d}",
		 res->messages, res->recipients, res->sender_listed);
	memset(&a, 0, sizeof(a));
	a.ts = time_now_ms();
	a.actor_id = actor->user_id;
	a.actor = actor->name != NULL ? actor->name : "system";
	a.via = actor->via != NULL ? actor->via : "system";
	a.client_addr = actor->client_addr != NULL ? actor->client_addr : "-";
	a.action = action;
	a.object_type = "quarantine";
	a.object_id = f->qid;
	a.before = before;
	a.after = after;
	rc = store_auth_audit_add(st, &a);
	free(before);
	return rc;
}

/* Sender of x on the list sl: global for an admin, personal otherwise. */
static int sender_list(struct store *st, const struct item *x, enum quarantine_sender_list sl,
		       const struct quarantine_actor *actor, int *added)
{
	char norm[400], err[200];
	int64_t n, id;
	int dup;

	*added = 0;
	if (sl == QUARANTINE_LIST_NONE || x->sender[0] == '\0')
		return 0; /* the null sender <> cannot be listed */
	if (actor->admin || actor->user_id == 0) {
		if (policy_value_check(POLICY_LT_MAIL, x->sender, strlen(x->sender), norm,
				       sizeof(norm), err, sizeof(err)) < 0)
			return 0; /* an address the lists cannot hold: not listed */
		return store_quarantine_policy_list_add(st, sl == QUARANTINE_LIST_ALLOW ?
							"sender_allow" : "sender_deny", norm,
							"from quarantine", added);
	}
	if (policy_user_value_check(x->sender, strlen(x->sender), norm, sizeof(norm), err,
				    sizeof(err)) < 0)
		return 0;
	/* A full personal list takes no more entries: the item is still released or deleted. */
	if (store_userlist_count(st, actor->user_id, &n) < 0)
		return -1;
	if (n >= actor->sender_list_max)
		return 0;
	if (store_userlist_add(st, actor->user_id, sl == QUARANTINE_LIST_ALLOW ? "allow" : "block",
			       norm, &id, &dup) < 0)
		return -1;
	*added = !dup;
	return 0;
}

struct qids {
	char **v;
	size_t n;
};

static int qids_has(const struct qids *q, const char *qid)
{
	size_t i;

	for (i = 0; i < q->n; i++)
		if (strcmp(q->v[i], qid) == 0)
			return 1;
	return 0;
}

static void qids_add(struct qids *q, const char *qid)
{
	q->v = xrealloc(q->v, (q->n + 1) * sizeof(*q->v));
	q->v[q->n++] = xstrdup(qid);
}

static void qids_free(struct qids *q)
{
	size_t i;

	for (i = 0; i < q->n; i++)
		free(q->v[i]);
	free(q->v);
	q->v = NULL;
	q->n = 0;
}

/* After the commit: quarantine/<qid> of every message with no item left. */
static void remove_files(struct store *st, const char *data_dir, const struct qids *q)
{
	size_t i;

	for (i = 0; i < q->n; i++) {
		char path[1400];
		int64_t left = 1;

		if (store_quarantine_qid_rows(st, q->v[i], &left) < 0 || left > 0)
			continue;
		if (spool_path(data_dir, "quarantine", q->v[i], path, sizeof(path)) < 0)
			continue;
		if (unlink(path) < 0 && errno != ENOENT)
			log_warn(q->v[i], "quarantine", "remove %s: %s", path, strerror(errno));
	}
}

static int fsync_dir(const char *data_dir, const char *dir)
{
	char path[1200];
	int fd, rc;

	snprintf(path, sizeof(path), "%s/spool/%s", data_dir, dir);
	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	rc = fsync(fd);
	close(fd);
	return rc;
}

#define NEW_QID_TRIES 8

/*
 * queue/<new> as a hard link of qpath under a queue id no file and no
 * queue row has; new[] gets the id.  link() fails with EEXIST rather than
 * replace, so the file is this release's alone.
 */
static int link_copy(struct store *st, const char *data_dir, const char *qpath,
		     char new[SPOOL_QID_LEN + 1], char *err, size_t errsz)
{
	char spath[1400];
	int tries, has;

	for (tries = 0; tries < NEW_QID_TRIES; tries++) {
		spool_new_qid(new);
		if (store_quarantine_queue_has(st, new, &has) < 0) {
			snprintf(err, errsz, "queue index unreadable");
			return -1;
		}
		if (has)
			continue;
		if (spool_path(data_dir, "queue", new, spath, sizeof(spath)) < 0) {
			snprintf(err, errsz, "bad queue id %.40s", new);
			return -1;
		}
		if (link(qpath, spath) == 0)
			return 0;
		if (errno != EEXIST) {
			snprintf(err, errsz, "link %s: %s", new, strerror(errno));
			return -1;
		}
	}
	snprintf(err, errsz, "no free queue id after %d tries", NEW_QID_TRIES);
	return -1;
}

/*
 * Release x inside the transaction: the first item of a message in this
 * transaction makes its copy (queue file and queue_message row, see the
 * top of this file); every item adds its recipient to the copy.  copies
 * maps the original qid (v[2i]) to the copy's (v[2i+1]); *copy_qid points
 * at the copy's id.  edit: the recipient's delivery edit (queue_rcpt.edit)
 * or NULL.
 */
static int release_one(struct store *st, const char *data_dir, const struct item *x,
		       const char *edit, struct qids *copies, int *dir_dirty,
		       const char **copy_qid, char *err, size_t errsz)
{
	char qpath[1400], helo[300], name[300], nq[SPOOL_QID_LEN + 1];
	struct store_quarantine_env e;
	const char *to = NULL;
	int added = 0;
	size_t i;

	for (i = 0; i + 1 < copies->n; i += 2)
		if (strcmp(copies->v[i], x->qid) == 0)
			to = copies->v[i + 1];
	if (to == NULL) {
		if (spool_path(data_dir, "quarantine", x->qid, qpath, sizeof(qpath)) < 0) {
			snprintf(err, errsz, "bad queue id %.40s", x->qid);
			return -1;
		}
		/* Quarantined on another node of a cluster: its file comes first. */
		(void)cluster_pg_fetch_quarantine(data_dir, x->qid);
		if (read_env(qpath, x, &e, helo, sizeof(helo), name, sizeof(name)) < 0) {
			snprintf(err, errsz, "message %s: %s", x->qid, strerror(errno));
			return -1;
		}
		if (link_copy(st, data_dir, qpath, nq, err, errsz) < 0)
			return -1;
		/* Recorded before the insert: a failure from here on unlinks it. */
		qids_add(copies, x->qid);
		qids_add(copies, nq);
		*dir_dirty = 1;
		to = copies->v[copies->n - 1];
		e.qid = to;
		if (store_quarantine_queue_add(st, &e) < 0) {
			snprintf(err, errsz, "queue insert %s failed", to);
			return -1;
		}
	}
	if (store_quarantine_queue_rcpt_edit(st, to, x->rcpt, edit, time_now_ms(), &added) < 0) {
		snprintf(err, errsz, "queue recipient insert %s failed", to);
		return -1;
	}
	*copy_qid = to;
	return 0;
}

/* The edit of item id: edits[i] belongs to f->ids[i]; NULL for none. */
static const char *edit_of(const struct store_quarantine_filter *f, const char *const *edits,
			   int64_t id)
{
	size_t i;

	if (edits == NULL || f->ids == NULL)
		return NULL;
	for (i = 0; i < f->nids; i++)
		if (f->ids[i] == id)
			return edits[i];
	return NULL;
}

/*
 * One transaction: the items of f (at most limit; all when 0) are
 * released or deleted; *more 1 when a full chunk was done.  audit_too:
 * the call's audit row goes into this transaction.  edits: see
 * quarantine_admin_release_edits() (NULL: none).
 */
static int run_chunk(struct store *st, const char *data_dir, enum quarantine_op op,
		     const struct store_quarantine_filter *f, const char *const *edits,
		     int64_t limit, int64_t *after,
		     enum quarantine_sender_list sl, const struct quarantine_actor *actor,
		     const char *event, struct quarantine_result *res, int expect_ids,
		     int write_audit, int *more, int *http_status, char *err, size_t errsz)
{
	struct store_quarantine_filter cf = *f;
	struct items it = { NULL, 0, 0 };
	struct qids touched = { NULL, 0 }, copies = { NULL, 0 };
	struct quarantine_result part = { 0, 0, 0 };
	char who[400], detail[128];
	int dir_dirty = 0;
	size_t i;

	*more = 0;
	cf.after_id = *after;
	cf.limit = limit;
	if (store_begin(st) < 0) {
		snprintf(err, errsz, "database busy");
		*http_status = 503;
		return -1;
	}
	if (store_quarantine_walk(st, &cf, collect, &it) < 0)
		goto fail;
	if (expect_ids && it.n != f->nids) {
		/* An id outside the scope is not found: never say it exists. */
		store_rollback(st);
		items_free(&it);
		snprintf(err, errsz, "no such quarantine item");
		*http_status = 404;
		return -1;
	}
	actor_label(actor, who, sizeof(who));
	for (i = 0; i < it.n; i++) {
		const struct item *x = &it.v[i];
		const char *copy_qid = NULL;
		struct store_event_row e;
		int added = 0;

		if (op == QUARANTINE_RELEASE &&
		    release_one(st, data_dir, x, edit_of(f, edits, x->id), &copies, &dir_dirty,
				&copy_qid, err, errsz) < 0)
			goto fail_kept;
		if (store_quarantine_remove(st, x->id) < 0)
			goto fail;
		if (sender_list(st, x, sl, actor, &added) < 0)
			goto fail;
		part.sender_listed += added;
		/* copy_qid is [0-9a-f] only (new_qid): no JSON escaping needed. */
		snprintf(detail, sizeof(detail), "{%s%s%s%s%s%s}",
			 copy_qid != NULL ? "\"queue_qid\":\"" : "",
			 copy_qid != NULL ? copy_qid : "", copy_qid != NULL ? "\"" : "",
			 copy_qid != NULL && sl != QUARANTINE_LIST_NONE ? "," : "",
			 sl != QUARANTINE_LIST_NONE ? "\"sender_list\":" : "",
			 sl == QUARANTINE_LIST_ALLOW ? "\"allow\"" :
			 sl == QUARANTINE_LIST_BLOCK ? "\"block\"" : "");
		memset(&e, 0, sizeof(e));
		e.qid = x->qid;
		e.rcpt = x->rcpt;
		e.event = event;
		e.detail = detail;
		e.actor = who;
		if (store_event_add(st, &e) < 0)
			goto fail;
		part.recipients++;
		if (!qids_has(&touched, x->qid)) {
			qids_add(&touched, x->qid);
			part.messages++;
		}
		*after = x->id;
	}
	if (dir_dirty && fsync_dir(data_dir, "queue") < 0) {
		snprintf(err, errsz, "spool/queue fsync: %s", strerror(errno));
		goto fail_kept;
	}
	if (write_audit || (limit > 0 && (int64_t)it.n < limit)) {
		struct quarantine_result total = *res;

		total.recipients += part.recipients;
		total.messages += part.messages;
		total.sender_listed += part.sender_listed;
		if (actor->via == NULL || strcmp(actor->via, "system") != 0) {
			if (audit(st, actor, op == QUARANTINE_RELEASE ? "release" : "delete", f, sl,
				  &total) < 0)
				goto fail;
		}
	}
	if (store_commit(st) < 0)
		goto fail;
	res->recipients += part.recipients;
	res->messages += part.messages;
	res->sender_listed += part.sender_listed;
	*more = limit > 0 && (int64_t)it.n == limit;
	remove_files(st, data_dir, &touched);
	items_free(&it);
	qids_free(&touched);
	qids_free(&copies);
	return 0;
fail:
	snprintf(err, errsz, "database error; nothing changed in this step");
fail_kept:
	store_rollback(st);
	/* The copies of a release that did not commit: their names are ours
	 * alone (link_copy) and no queue row names them any more, so nobody
	 * else can be using them.  Reconciliation would remove them at start;
	 * removing them now keeps queue/ clean. */
	for (i = 0; i + 1 < copies.n; i += 2) {
		char spath[1400];

		if (spool_path(data_dir, "queue", copies.v[i + 1], spath, sizeof(spath)) == 0)
			unlink(spath);
	}
	items_free(&it);
	qids_free(&touched);
	qids_free(&copies);
	*http_status = 500;
	return -1;
}

static int apply(struct store *st, const char *data_dir, enum quarantine_op op,
		 const struct store_quarantine_filter *f, const char *const *edits,
		 enum quarantine_sender_list sl, const struct quarantine_actor *actor,
		 struct quarantine_result *res, int *http_status, char *err, size_t errsz)
{
	const char *event = op == QUARANTINE_RELEASE ? "quarantine.release"
						      : "quarantine.delete";
	const char *name = op == QUARANTINE_RELEASE ? "release" : "delete";
	char kinds[200];
	int64_t after = 0;
	int more = 1;

	memset(res, 0, sizeof(*res));
	*http_status = 0;
	if (f->ids != NULL && (f->nids == 0 || f->nids > STORE_QUARANTINE_IDS_MAX)) {
		snprintf(err, errsz, "ids: 1 to %d items", STORE_QUARANTINE_IDS_MAX);
		*http_status = 422;
		return -1;
	}
	if (f->ids != NULL) {
		size_t i, j;

		for (i = 0; i < f->nids; i++)
			for (j = 0; j < i; j++)
				if (f->ids[i] == f->ids[j]) {
					snprintf(err, errsz, "ids: %lld named twice",
						 (long long)f->ids[i]);
					*http_status = 422;
					return -1;
				}
	}
	/* The kinds an end user may release (policy setting). */
	if (op == QUARANTINE_RELEASE && !actor->admin && actor->user_id != 0) {
		struct store_quarantine_filter kf = *f;
		int64_t n = 0;

		if (store_quarantine_setting(st, "quarantine_user_release_kinds",
					     QUARANTINE_USER_KINDS_DEFAULT, kinds,
					     sizeof(kinds)) < 0) {
			snprintf(err, errsz, "database error");
			*http_status = 500;
			return -1;
		}
		kf.kind_not_in = kinds;
		if (store_quarantine_count(st, &kf, &n) < 0) {
			snprintf(err, errsz, "database error");
			*http_status = 500;
			return -1;
		}
		if (n > 0) {
			snprintf(err, errsz, "%lld item(s) of a kind you may not release"
				 " (allowed: %s)", (long long)n, kinds);
			*http_status = 403;
			return -1;
		}
	}
	if (f->ids != NULL) {
		if (run_chunk(st, data_dir, op, f, edits, 0, &after, sl, actor, event, res, 1, 1, &more,
			      http_status, err, errsz) < 0)
			return -1;
	} else {
		while (more) {
			if (run_chunk(st, data_dir, op, f, NULL, QUARANTINE_CHUNK, &after, sl, actor,
				      event, res, 0, 0, &more, http_status, err, errsz) < 0) {
				log_warn(NULL, "quarantine", "%s stopped by=%s recipients=%d: %s", name,
					 actor->name != NULL ? actor->name : "-", res->recipients,
					 err);
				return -1;
			}
		}
	}
	log_info(f->qid, "quarantine", "%s by=%s via=%s recipients=%d messages=%d"
		 " sender_listed=%d", name, actor->name != NULL ? actor->name : "-",
		 actor->via != NULL ? actor->via : "-", res->recipients, res->messages,
		 res->sender_listed);
	return 0;
}

int quarantine_admin_apply(struct store *st, const char *data_dir, enum quarantine_op op,
			   const struct store_quarantine_filter *f, enum quarantine_sender_list sl,
			   const struct quarantine_actor *actor, struct quarantine_result *res,
			   int *http_status, char *err, size_t errsz)
{
	/* A person's release of spam is ham the filter got wrong (quarantine_learn.h);
	 * read and learned before the files go, written once released. */
	struct quarantine_learn *rl = op == QUARANTINE_RELEASE
		? quarantine_learn_begin(st, data_dir, f, actor) : NULL;
	int rc = apply(st, data_dir, op, f, NULL, sl, actor, res, http_status, err, errsz);

	quarantine_learn_end(rl, rc == 0 || res->recipients > 0);
	return rc;
}

int quarantine_admin_release_edits(struct store *st, const char *data_dir,
				   const struct store_quarantine_filter *f,
				   const char *const *edits, const struct quarantine_actor *actor,
				   struct quarantine_result *res, int *http_status, char *err,
				   size_t errsz)
{
	if (f->ids == NULL) {
		memset(res, 0, sizeof(*res));
		snprintf(err, errsz, "ids: required with edits");
		*http_status = 422;
		return -1;
	}
	return apply(st, data_dir, QUARANTINE_RELEASE, f, edits, QUARANTINE_LIST_NONE, actor,
		     res, http_status, err, errsz);
}

int quarantine_purge(struct store *st, const char *data_dir, int64_t now, int max_items,
		     char *err, size_t errsz)
{
	static const struct quarantine_actor sys = { 0, 1, "system", "system", NULL, 0 };
	struct store_quarantine_filter f;
	struct quarantine_result res = { 0, 0, 0 };
	int64_t after = 0;
	int more = 1, status = 0;

	memset(&f, 0, sizeof(f));
	f.expires_before = now;
	while (more && res.recipients < max_items) {
		after = 0; /* removed rows are gone: each chunk starts at the oldest */
		if (run_chunk(st, data_dir, QUARANTINE_DELETE, &f, NULL, QUARANTINE_CHUNK, &after,
			      QUARANTINE_LIST_NONE, &sys, "quarantine.expire", &res, 0, 0, &more,
			      &status, err, errsz) < 0)
			return -1;
	}
	return res.recipients;
}

struct rec_ctx {
	struct store *st;
	const char *data_dir;
	struct quarantine_reconcile_stats *stats;
	int failed;
	int cluster; /* files may live in PostgreSQL: keep items without one */
};

static int check_qid(const char *qid, void *arg)
{
	struct rec_ctx *c = arg;
	char path[1400];
	struct stat sb;
	int n = 0;

	if (spool_path(c->data_dir, "quarantine", qid, path, sizeof(path)) == 0 &&
	    stat(path, &sb) == 0) {
		c->stats->kept++;
		return 0;
	}
	if (c->cluster) {
		/* Quarantined on another node: fetched when it is first read. */
		c->stats->kept++;
		return 0;
	}
	if (store_quarantine_remove_qid(c->st, qid, &n) < 0) {
		c->failed = 1;
		return 1;
	}
	log_error(qid, "quarantine", "LOST MESSAGE quarantine items without a file removed"
		  " items=%d", n);
	c->stats->rows_removed += n;
	return 0;
}

int quarantine_reconcile(struct store *st, const char *data_dir, int cluster,
			 struct quarantine_reconcile_stats *stats, char *err, size_t errsz)
{
	struct rec_ctx c = { st, data_dir, stats, 0, cluster };
	char dir[1200];
	struct dirent *de;
	DIR *d;

	memset(stats, 0, sizeof(*stats));
	snprintf(dir, sizeof(dir), "%s/spool/quarantine", data_dir);
	if (store_begin(st) < 0) {
		snprintf(err, errsz, "quarantine reconcile: cannot begin transaction");
		return -1;
	}
	d = opendir(dir);
	if (d == NULL) {
		snprintf(err, errsz, "%s: %s", dir, strerror(errno));
		store_rollback(st);
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		int64_t n = 0;
		char path[1400];

		if (de->d_name[0] == '.')
			continue;
		if (!spool_qid_valid(de->d_name, strlen(de->d_name))) {
			log_warn(NULL, "quarantine", "reconcile unexpected file"
				 " spool/quarantine/%.64s left alone", de->d_name);
			continue;
		}
		if (store_quarantine_qid_rows(st, de->d_name, &n) < 0) {
			closedir(d);
			store_rollback(st);
			snprintf(err, errsz, "quarantine reconcile: cannot read the index");
			return -1;
		}
		if (n == 0 && spool_path(data_dir, "quarantine", de->d_name, path,
					 sizeof(path)) == 0) {
			log_warn(de->d_name, "quarantine", "reconcile orphan quarantine file removed"
				 " (never acknowledged)");
			unlink(path);
			stats->files_removed++;
		}
	}
	closedir(d);
	if (store_quarantine_qids(st, check_qid, &c) < 0 || c.failed) {
		store_rollback(st);
		snprintf(err, errsz, "quarantine reconcile: cannot update the index");
		return -1;
	}
	if (store_commit(st) < 0) {
		store_rollback(st);
		snprintf(err, errsz, "quarantine reconcile: cannot commit");
		return -1;
	}
	return 0;
}
