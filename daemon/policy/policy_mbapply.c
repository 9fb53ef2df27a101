/*
 * policy_mbapply: see policy_mbapply.h.  The set is compiled here, once
 * per call, outside the content workers' cache (this is not the mail path
 * and must not evict what the mail path uses).  Each stored message is
 * read back and parsed once, however many of its items are examined.
 * Nothing is changed until every item has been evaluated; then the
 * releases and deletions are made in steps of at most
 * STORE_QUARANTINE_IDS_MAX items, each step all or nothing.
 */
#include "policy_mbapply.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "policy_stage.h"
#include "../cluster/cluster_pg.h"
#include "../log/log.h"
#include "../mime/mime.h"
#include "../quarantine/quarantine_admin.h"
#include "../rules/rules.h"
#include "../spool/spool_read.h"
#include "../store/store.h"
#include "../store/store_auth.h"
#include "../store/store_mailbox.h"
#include "../store/store_quarantine.h"
#include "../util/util.h"

struct addrs {
	int64_t set;
	char **v;
	size_t n;
};

static int addr_cb(const char *address, int64_t set_id, void *arg)
{
	struct addrs *a = arg;

	if (set_id != a->set)
		return 0;
	a->v = xrealloc(a->v, (a->n + 1) * sizeof(*a->v));
	a->v[a->n++] = xstrdup(address);
	return 0;
}

static int addrs_has(const struct addrs *a, const char *rcpt)
{
	size_t i;

	for (i = 0; i < a->n; i++)
		if (strcasecmp(a->v[i], rcpt) == 0)
			return 1;
	return 0;
}

static void addrs_free(struct addrs *a)
{
	size_t i;

	for (i = 0; i < a->n; i++)
		free(a->v[i]);
	free(a->v);
}

/* "spam,policy" holds kind? */
static int kind_in(const char *list, const char *kind)
{
	size_t kl = strlen(kind);
	const char *p = list;

	while (*p != '\0') {
		const char *e = strchr(p, ',');
		size_t l = e != NULL ? (size_t)(e - p) : strlen(p);

		while (l > 0 && p[0] == ' ') {
			p++;
			l--;
		}
		while (l > 0 && p[l - 1] == ' ')
			l--;
		if (l == kl && strncasecmp(p, kind, kl) == 0)
			return 1;
		if (e == NULL)
			break;
		p = e + 1;
	}
	return 0;
}

struct item {
	int64_t id;
	char *qid, *rcpt, *sender, *client_addr;
	int64_t size;
};

struct walk {
	const struct addrs *addrs;
	const char *kinds;
	struct item *v;
	size_t n;
	int more;
};

static int walk_cb(const struct store_quarantine_row *r, void *arg)
{
	struct walk *w = arg;
	struct item *x;

	if (!addrs_has(w->addrs, r->rcpt) || !kind_in(w->kinds, r->kind))
		return 0;
	if (w->n == POLICY_MBAPPLY_MAX) {
		w->more = 1;
		return 1;
	}
	if (w->n % 256 == 0)
		w->v = xrealloc(w->v, (w->n + 256) * sizeof(*w->v));
	x = &w->v[w->n++];
	x->id = r->id;
	x->qid = xstrdup(r->qid);
	x->rcpt = xstrdup(r->rcpt);
	x->sender = xstrdup(r->sender != NULL ? r->sender : "");
	x->client_addr = xstrdup(r->client_addr != NULL ? r->client_addr : "");
	x->size = r->size;
	return 0;
}

static void walk_free(struct walk *w)
{
	size_t i;

	for (i = 0; i < w->n; i++) {
		free(w->v[i].qid);
		free(w->v[i].rcpt);
		free(w->v[i].sender);
		free(w->v[i].client_addr);
	}
	free(w->v);
}

/* spool/quarantine/<qid> into *out (NUL-terminated); -1 when unreadable or too large. */
static int read_message(const char *data_dir, const char *qid, char **out, size_t *len)
{
	char path[1400];
	struct stat sb;
	size_t got = 0;
	ssize_t r;
	char *buf;
	int fd;

	*out = NULL;
	if (!spool_qid_valid(qid, strlen(qid)))
		return -1;
	snprintf(path, sizeof(path), "%s/spool/quarantine/%s", data_dir, qid);
	(void)cluster_pg_fetch_quarantine(data_dir, qid); /* quarantined on another node */
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	if (fstat(fd, &sb) < 0 || sb.st_size < 0 || sb.st_size > POLICY_MBAPPLY_MESSAGE_MAX) {
		close(fd);
		return -1;
	}
	buf = xmalloc((size_t)sb.st_size + 1);
	while (got < (size_t)sb.st_size) {
		r = read(fd, buf + got, (size_t)sb.st_size - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	close(fd);
	buf[got] = '\0';
	*out = buf;
	*len = got;
	return 0;
}

enum outcome { KEEP_ITEM, RELEASE_ITEM, DELETE_ITEM };

/*
 * What the set does to the message for rcpt; *edit gets the delivery edit
 * of a release (or NULL).  Only a rule that matched releases: with no
 * match the item was quarantined by the server and stays.
 */
static enum outcome decide(const struct rules_result *rr, char **edit)
{
	const struct rules_verdict *v = rr->nrcpts > 0 ? rr->rcpt[0] : NULL;

	*edit = NULL;
	if (v == NULL || rr->nhits == 0)
		return KEEP_ITEM;
	switch (v->action) {
	case RULES_ACT_DISCARD:
		return DELETE_ITEM;
	case RULES_ACT_QUARANTINE:
	case RULES_ACT_REFUSE:
	case RULES_ACT_DEFER:
	case RULES_ACT_HOLD:
	case RULES_ACT_REDIRECT:
	case RULES_ACT_FORWARD:
		return KEEP_ITEM;
	default:
		*edit = policy_mbox_edit(v, v->folder, NULL);
		return RELEASE_ITEM;
	}
}

static int apply_step(struct store *st, const char *data_dir, enum quarantine_op op,
		      int64_t scope, const int64_t *ids, char *const *edits, size_t n,
		      const struct quarantine_actor *actor, int *done, int *http_status,
		      char *err, size_t errsz)
{
	struct store_quarantine_filter f;
	struct quarantine_result qr;
	size_t off;
	int rc;

	for (off = 0; off < n; off += STORE_QUARANTINE_IDS_MAX) {
		memset(&f, 0, sizeof(f));
		f.owner_user_id = scope;
		f.ids = ids + off;
		f.nids = n - off < STORE_QUARANTINE_IDS_MAX ? n - off : STORE_QUARANTINE_IDS_MAX;
		if (op == QUARANTINE_RELEASE)
			rc = quarantine_admin_release_edits(st, data_dir, &f,
							    (const char *const *)edits + off,
							    actor, &qr, http_status, err, errsz);
		else
			rc = quarantine_admin_apply(st, data_dir, op, &f, QUARANTINE_LIST_NONE,
						    actor, &qr, http_status, err, errsz);
		if (rc < 0)
			return -1;
		*done += qr.recipients;
	}
	return 0;
}

static void audit(struct store *st, const struct quarantine_actor *actor, int64_t set,
		  const struct policy_mbapply_result *res)
{
	struct store_audit a;
	char after[200], oid[32];

	snprintf(after, sizeof(after), "{\"examined\":%d,\"released\":%d,\"deleted\":%d,"
		 "\"kept\":%d}", res->examined, res->released, res->deleted, res->kept);
	snprintf(oid, sizeof(oid), "%lld", (long long)set);
	memset(&a, 0, sizeof(a));
	a.ts = time_now_ms();
	a.actor_id = actor->user_id;
	a.actor = actor->name != NULL ? actor->name : "system";
	a.via = actor->via != NULL ? actor->via : "system";
	a.client_addr = actor->client_addr != NULL ? actor->client_addr : "-";
	a.action = "mailbox_rule.apply_quarantine";
	a.object_type = "mailbox_ruleset";
	a.object_id = oid;
	a.after = after;
	if (store_auth_audit_add(st, &a) < 0)
		log_warn(NULL, "policy", "mailbox apply_quarantine audit row not written"
			 " set=%lld", (long long)set);
}

int policy_mbox_apply_quarantine(struct store *st, const char *data_dir,
				 const struct policy_mbapply_owner *o,
				 const struct quarantine_actor *actor,
				 struct policy_mbapply_result *res, int *http_status, char *err,
				 size_t errsz)
{
	struct addrs addrs = { 0, NULL, 0 };
	struct walk w = { NULL, NULL, NULL, 0, 0 };
	struct store_quarantine_filter f;
	struct rules_set *rs = NULL;
	struct mime_limits lim;
	struct mime_view *view = NULL;
	int64_t *rel_ids = NULL, *del_ids = NULL, set = 0, t0 = time_mono_ms();
	char **edits = NULL, *msg = NULL, kinds[200];
	const char *view_qid = NULL;
	size_t nrel = 0, ndel = 0, i;
	int rc = -1, view_bad = 0;

	memset(res, 0, sizeof(*res));
	*http_status = 500;
	if (store_mailbox_set_find(st, o->user_id, o->group_id, &set) < 0) {
		snprintf(err, errsz, "cannot read the rule set");
		return -1;
	}
	if (set <= 0)
		return 0; /* no rules: nothing to do */
	addrs.set = set;
	if (store_mailbox_addresses(st, addr_cb, &addrs) < 0 ||
	    store_quarantine_setting(st, "quarantine_user_release_kinds",
				     QUARANTINE_USER_KINDS_DEFAULT, kinds, sizeof(kinds)) < 0) {
		snprintf(err, errsz, "database error");
		goto out;
	}
	if (policy_mbox_compile(st, set, &rs, err, errsz) < 0)
		goto out;
	memset(&f, 0, sizeof(f));
	f.owner_user_id = o->scope_user_id;
	if (o->group_id > 0)
		f.rcpt = o->group_address;
	w.addrs = &addrs;
	w.kinds = kinds;
	if (addrs.n > 0 && store_quarantine_walk(st, &f, walk_cb, &w) < 0) {
		snprintf(err, errsz, "cannot read the quarantine");
		goto out;
	}
	res->more = w.more;
	rel_ids = xcalloc(w.n + 1, sizeof(*rel_ids));
	del_ids = xcalloc(w.n + 1, sizeof(*del_ids));
	edits = xcalloc(w.n + 1, sizeof(*edits));
	mime_limits_default(&lim);
	for (i = 0; i < w.n; i++) {
		const struct item *x = &w.v[i];
		const char *rcpts[1] = { x->rcpt };
		struct rules_input in;
		struct rules_result rr;
		char perr[200], *edit = NULL;
		size_t len = 0;

		res->examined++;
		if (view_qid == NULL || strcmp(view_qid, x->qid) != 0) {
			mime_view_free(view);
			view = NULL;
			free(msg);
			msg = NULL;
			view_qid = x->qid;
			view_bad = read_message(data_dir, x->qid, &msg, &len) < 0 ||
				   mime_parse(msg, len, &lim, &view, perr, sizeof(perr)) < 0;
			if (view_bad)
				log_warn(x->qid, "policy", "mailbox apply_quarantine message not"
					 " readable; kept");
		}
		if (rs == NULL || view_bad) {
			res->kept++;
			continue;
		}
		memset(&in, 0, sizeof(in));
		in.mime = view;
		in.sender = x->sender;
		in.rcpts = rcpts;
		in.nrcpts = 1;
		in.client_addr = x->client_addr;
		in.helo = "";
		in.size = x->size;
		memset(&rr, 0, sizeof(rr));
		if (rules_eval(rs, &in, &rr) < 0) {
			res->kept++;
			continue;
		}
		switch (decide(&rr, &edit)) {
		case RELEASE_ITEM:
			rel_ids[nrel] = x->id;
			edits[nrel++] = edit;
			break;
		case DELETE_ITEM:
			del_ids[ndel++] = x->id;
			break;
		default:
			res->kept++;
			break;
		}
		rules_result_free(&rr);
	}
	if (apply_step(st, data_dir, QUARANTINE_RELEASE, o->scope_user_id, rel_ids, edits, nrel,
		       actor, &res->released, http_status, err, errsz) < 0 ||
	    apply_step(st, data_dir, QUARANTINE_DELETE, o->scope_user_id, del_ids, NULL, ndel,
		       actor, &res->deleted, http_status, err, errsz) < 0)
		goto out;
	audit(st, actor, set, res);
	log_info(NULL, "policy", "mailbox apply_quarantine set=%lld by=%s examined=%d"
		 " released=%d deleted=%d kept=%d more=%s ms=%lld", (long long)set,
		 actor->name != NULL ? actor->name : "-", res->examined, res->released,
		 res->deleted, res->kept, res->more ? "yes" : "no",
		 (long long)(time_mono_ms() - t0));
	rc = 0;
out:
	if (rc < 0) {
		log_warn(NULL, "policy", "mailbox apply_quarantine failed set=%lld released=%d"
			 " deleted=%d: %s", (long long)set, res->released, res->deleted, err);
		if (*http_status == 0 || *http_status == 404)
			*http_status = 409; /* an item went away meanwhile: try again */
	}
	for (i = 0; i < nrel; i++)
		free(edits[i]);
	free(edits);
	free(rel_ids);
	free(del_ids);
	mime_view_free(view);
	free(msg);
	rules_set_free(rs);
	walk_free(&w);
	addrs_free(&addrs);
	return rc;
}
