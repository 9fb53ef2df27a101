/*
 * policy_content: the end-of-DATA content stage.  The message is complete
 * in its spool file (not yet fsync'ed, not yet acknowledged); this stage
 * reads it back once, walks it with mime_parse(), runs the session
 * snapshot's server rules over it, and turns the rules' verdicts into one
 * answer for the transaction and a disposition per recipient.
 *
 * Threads: policy_content_start() (loop) lends the spool file and a
 * snapshot reference to a job on the content worker; the worker reads,
 * parses, evaluates, tags the file if rules asked for it, and counts rule
 * hits in SQLite on its own connection; done() (loop) finds the session by
 * id and wakes it through the policy's done callback, or, when the session
 * is gone, removes the never-acknowledged file.  Nothing here blocks the
 * loop.
 *
 * One SMTP answer per transaction: when every recipient is refused the
 * message is refused, when every recipient is refused or deferred it is
 * deferred; a refusal or deferral that concerns only some recipients
 * cannot be said in SMTP after DATA, so those recipients are held, with
 * the rule named, for an administrator to release or delete (never
 * bounced to a sender who may be forged, never silently dropped).
 */
#include "policy_stage.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../log/log.h"
#include "../mime/mime.h"
#include "../rules/rules.h"
#include "../spool/spool.h"
#include "../store/store.h"
#include "../store/store_rules.h"
#include "../util/util.h"
#include "../util/worker.h"

#define TAGGED_HEADERS_MAX (16 * 1024) /* octets of headers rules may add */

struct content_job {
	struct worker_job base;
	struct policy *p;
	uint64_t sid;
	struct policy_snap *snap;          /* a reference, dropped on the loop */
	struct spool_file *file;           /* lent by the session */
	struct content_worker *cw;         /* the worker it runs on */
	/* Envelope facts, copied. */
	char *sender;
	char **rcpts;
	size_t nrcpts;
	char client_addr[64];
	char *client_name;
	char *helo;
	char *auth_user;
	char **dnsbl;
	size_t ndnsbl;
	const char *flags[8];
	size_t nflags;
	/* Result, filled on the worker. */
	struct policy_content_result *res;
};

static char *dup_or_null(const char *s)
{
	return s != NULL && s[0] != '\0' ? xstrdup(s) : NULL;
}

void policy_content_result_free(struct policy_content_result *r)
{
	size_t i;

	if (r == NULL)
		return;
	for (i = 0; i < r->nrcpts; i++) {
		free(r->rcpts[i].rcpt);
		free(r->rcpts[i].edit);
	}
	free(r->rcpts);
	spool_file_discard(r->file);
	free(r);
}

/* Copy UTF-8 text into out, cut at a character boundary. */
static void copy_utf8(char *out, size_t outsz, const char *in)
{
	size_t n = strlen(in);

	if (n >= outsz) {
		n = outsz - 1;
		while (n > 0 && ((unsigned char)in[n] & 0xC0) == 0x80)
			n--;
	}
	memcpy(out, in, n);
	out[n] = '\0';
}

static int edit_eq(const char *a, const char *b)
{
	return a == NULL || b == NULL ? a == b : strcmp(a, b) == 0;
}

/* edit: a delivery edit (JSON) the row takes over, or NULL. */
static void add_rcpt_edit(struct policy_content_result *r, size_t *cap, const char *addr,
			  enum policy_action disp, const char *reason, char *edit)
{
	size_t i;

	/* One row per address and edit: a bcc to a recipient already there
	 * adds nothing; a copy to a folder is the same address again. */
	for (i = 0; i < r->nrcpts; i++) {
		if (strcasecmp(r->rcpts[i].rcpt, addr) == 0 && edit_eq(r->rcpts[i].edit, edit)) {
			free(edit);
			return;
		}
	}
	if (r->nrcpts == *cap) {
		*cap = *cap ? *cap * 2 : 8;
		r->rcpts = xrealloc(r->rcpts, *cap * sizeof(*r->rcpts));
	}
	r->rcpts[r->nrcpts].rcpt = xstrdup(addr);
	r->rcpts[r->nrcpts].disp = disp;
	r->rcpts[r->nrcpts].kind[0] = '\0';
	r->rcpts[r->nrcpts].edit = edit;
	strlcpy_s(r->rcpts[r->nrcpts].reason, reason ? reason : "",
		  sizeof(r->rcpts[r->nrcpts].reason));
	r->nrcpts++;
}

static void add_rcpt(struct policy_content_result *r, size_t *cap, const char *addr,
		     enum policy_action disp, const char *reason)
{
	add_rcpt_edit(r, cap, addr, disp, reason, NULL);
}

static void rule_label(const struct rules_verdict *v, const struct policy_snap *sn,
		       char *out, size_t outsz)
{
	long id = v->rule >= 0 && (size_t)v->rule < sn->nrules ? (long)sn->rule_ids[v->rule] : -1;

	snprintf(out, outsz, "rule %ld %s", id, v->rule_name ? v->rule_name : "");
}

/* Has the header section of msg a field that starts with hdr (a whole "Name: value")? */
static int has_header_line(const char *msg, size_t hdr_end, const char *line)
{
	size_t n = strlen(line);
	const char *p = msg;

	while ((size_t)(p - msg) < hdr_end) {
		const char *eol = memchr(p, '\n', hdr_end - (size_t)(p - msg));

		if (eol == NULL)
			break;
		if ((size_t)(eol - p) >= n && strncasecmp(p, line, n) == 0)
			return 1;
		p = eol + 1;
	}
	return 0;
}

/*
 * The message with the tags applied: headers added after the first line
 * (our Received:), the Subject prefixed once.  NULL when nothing changes.
 */
static char *apply_tags(const char *msg, size_t len, const char *const *prefixes, size_t np,
			const char *const *headers, size_t nh, size_t *outlen)
{
	const char *sep = NULL, *first_eol, *subj = NULL, *p;
	size_t hdr_end, i, cap, o = 0;
	char *out;
	int changed = 0;

	for (p = msg; p + 3 < msg + len; p++) {
		if (p[0] == '\r' && p[1] == '\n' && p[2] == '\r' && p[3] == '\n') {
			sep = p + 2;
			break;
		}
	}
	hdr_end = sep != NULL ? (size_t)(sep - msg) : len;
	first_eol = memchr(msg, '\n', hdr_end);
	if (first_eol == NULL)
		return NULL;
	cap = len + TAGGED_HEADERS_MAX + 1024;
	out = xmalloc(cap);
	/* Our Received: first, and its folded lines. */
	p = first_eol + 1;
	while ((size_t)(p - msg) < hdr_end && (*p == ' ' || *p == '\t')) {
		const char *eol = memchr(p, '\n', hdr_end - (size_t)(p - msg));

		if (eol == NULL)
			break;
		p = eol + 1;
	}
	memcpy(out, msg, (size_t)(p - msg));
	o = (size_t)(p - msg);
	for (i = 0; i < nh; i++) {
		size_t hl = strlen(headers[i]);

		if (has_header_line(msg, hdr_end, headers[i]) || o + hl + 2 > len + TAGGED_HEADERS_MAX)
			continue;
		memcpy(out + o, headers[i], hl);
		o += hl;
		memcpy(out + o, "\r\n", 2);
		o += 2;
		changed = 1;
	}
	/* Find Subject: in the rest of the header section. */
	{
		const char *q = p;

		while ((size_t)(q - msg) < hdr_end) {
			const char *eol = memchr(q, '\n', hdr_end - (size_t)(q - msg));

			if (strncasecmp(q, "Subject:", 8) == 0) {
				subj = q;
				break;
			}
			if (eol == NULL)
				break;
			q = eol + 1;
		}
	}
	if (np > 0 && subj == NULL) {
		memcpy(out + o, "Subject: ", 9);
		o += 9;
		for (i = 0; i < np; i++) {
			size_t pl = strlen(prefixes[i]);

			memcpy(out + o, prefixes[i], pl);
			o += pl;
		}
		memcpy(out + o, "\r\n", 2);
		o += 2;
		changed = 1;
	}
	if (np > 0 && subj != NULL) {
		const char *v = subj + 8;

		while (*v == ' ' || *v == '\t')
			v++;
		memcpy(out + o, p, (size_t)(v - p));
		o += (size_t)(v - p);
		for (i = 0; i < np; i++) {
			size_t pl = strlen(prefixes[i]);

			/* Tag once: a message that already carries the prefix keeps one. */
			if ((size_t)(msg + len - v) >= pl && strncmp(v, prefixes[i], pl) == 0)
				continue;
			memcpy(out + o, prefixes[i], pl);
			o += pl;
			if (pl > 0 && prefixes[i][pl - 1] != ' ') {
				out[o++] = ' ';
			}
			changed = 1;
		}
		p = v;
	}
	if (!changed) {
		free(out);
		return NULL;
	}
	memcpy(out + o, p, len - (size_t)(p - msg));
	o += len - (size_t)(p - msg);
	*outlen = o;
	return out;
}

/*
 * A spam-kind quarantine lifted because the recipient's owner allows the
 * sender on their personal list (policy_user.c; docs/policy.md): 1, and
 * logged as the check user_allow.  Other kinds, refusals and holds are the
 * administrator's and stay.
 */
static int user_allowed(const struct content_job *j, const struct policy_snap *sn,
			const struct rules_verdict *v, const char *rcpt, const char *label)
{
	const struct policy_ref *r;
	char idstr[20], who[400];
	int64_t owner;

	if (v->kind == NULL || strcmp(v->kind, "spam") != 0 || j->sender == NULL ||
	    j->sender[0] == '\0')
		return 0;
	r = policy_user_sender(sn, rcpt, j->sender, &owner);
	if (r == NULL || strcmp(r->list, "user_allow") != 0)
		return 0;
	snprintf(idstr, sizeof(idstr), "%016llx", (unsigned long long)j->sid);
	log_escape(rcpt, strlen(rcpt), who, sizeof(who));
	log_info(idstr, "policy", "user_allow rcpt=<%s> user_id=%lld entry=\"user_allow entry"
		 " %lld %s\" lifted=\"%s\"", who, (long long)owner, (long long)r->id, r->value,
		 label);
	return 1;
}

/* Collects a string into a unique list (no more than max). */
static void uniq_add(const char **list, size_t *n, size_t max, const char *s)
{
	size_t i;

	for (i = 0; i < *n; i++)
		if (strcmp(list[i], s) == 0)
			return;
	if (*n < max)
		list[(*n)++] = s;
}

/* --- mailbox rules (policy_mailbox.c evaluates; here their dispositions) --- */

#define MBOX_EXTRA_MAX 10       /* copies and forward copies per recipient */
#define MBOX_FORWARDS_MAX 3     /* X-Moat-Forwarded fields a forwarded message may carry */

static const struct rules_verdict no_verdict = { .rule = -1 };

/*
 * A user cannot undo the administrator: after a server refuse, defer,
 * hold, quarantine, discard or redirect the recipient's own rules do not
 * run.
 */
static bool mailbox_may_run(enum rules_action_type a)
{
	return a == RULES_ACT_NONE || a == RULES_ACT_ACCEPT || a == RULES_ACT_STOP ||
	       a == RULES_ACT_CONTINUE;
}

static void mbox_label(const struct policy_mbox_out *o, char *out, size_t outsz)
{
	snprintf(out, outsz, "mailbox rule %lld %s", (long long)o->rule_id,
		 o->v != NULL && o->v->rule_name != NULL ? o->v->rule_name : "");
}

static void mbox_log(const char *idstr, const char *rcpt, const struct policy_mbox_out *o,
		     const char *what)
{
	char who[400], name[300];
	const char *rn = o->v != NULL && o->v->rule_name != NULL ? o->v->rule_name : "";

	log_escape(rcpt, strlen(rcpt), who, sizeof(who));
	log_escape(rn, strlen(rn), name, sizeof(name));
	log_info(idstr, "policy", "mailbox rcpt=<%s> set=%lld rule=%lld name=\"%s\" outcome=%s",
		 who, (long long)o->set_id, (long long)o->rule_id, name, what);
}

/*
 * Forward loop protection: the message already went through rcpt's
 * forward (an X-Moat-Forwarded naming rcpt), or through more than
 * MBOX_FORWARDS_MAX forwards.
 */
static int forwarded_before(const struct mime_view *view, const char *rcpt)
{
	size_t pos = 0, n = 0, rl = strlen(rcpt);
	const char *hv;

	while (view != NULL && (hv = mime_header_next(view, "X-Moat-Forwarded", &pos)) != NULL) {
		size_t l;

		while (*hv == ' ' || *hv == '\t' || *hv == '<')
			hv++;
		l = strlen(hv);
		while (l > 0 && (hv[l - 1] == ' ' || hv[l - 1] == '\t' || hv[l - 1] == '>'))
			l--;
		if (l == rl && strncasecmp(hv, rcpt, l) == 0)
			return 1;
		n++;
	}
	return n > MBOX_FORWARDS_MAX;
}

/*
 * The delivery edit of one queued row (docs/mailbox-rules.md): compact
 * JSON with sorted keys, so that equal edits are equal strings and the
 * queue can deliver such recipients together.  NULL when nothing changes.
 */
char *policy_mbox_edit(const struct rules_verdict *v, const char *folder,
		       const char *forwarded)
{
	json_t *o = json_object(), *h = json_array();
	char *s = NULL;
	size_t k;

	if (folder != NULL)
		json_object_set_new(o, "folder", json_string(folder));
	if (v->nsubject_prefixes > 0) {
		char pre[1024];
		size_t n = 0;

		pre[0] = '\0';
		for (k = 0; k < v->nsubject_prefixes; k++)
			n += (size_t)snprintf(pre + n, n < sizeof(pre) ? sizeof(pre) - n : 0, "%s",
					      v->subject_prefixes[k]);
		if (n < sizeof(pre))
			json_object_set_new(o, "subject_prefix", json_string(pre));
	}
	for (k = 0; k < v->nheaders; k++)
		json_array_append_new(h, json_string(v->headers[k]));
	if (forwarded != NULL)
		json_array_append_new(h, json_string(forwarded));
	if (json_array_size(h) > 0)
		json_object_set(o, "headers", h);
	if (v->importance != NULL)
		json_object_set_new(o, "importance", json_string(v->importance));
	if (json_object_size(o) > 0)
		s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(h);
	json_decref(o);
	return s;
}

/* One recipient's mailbox verdict (not a refusal) as rows to queue. */
static void mailbox_disposition(struct policy_content_result *res, size_t *cap,
				const struct mime_view *view, const char *rcpt,
				const struct policy_mbox_out *o, const char *idstr)
{
	const struct rules_verdict *v = o->v;
	char label[300], fwd[400], what[600];
	size_t k, extra = 0, before = res->nrcpts;
	int loop = -1;

	mbox_label(o, label, sizeof(label));
	snprintf(fwd, sizeof(fwd), "X-Moat-Forwarded: %s", rcpt);
	switch (v->action) {
	case RULES_ACT_QUARANTINE:
		add_rcpt(res, cap, rcpt, POLICY_QUARANTINE, label);
		if (res->nrcpts > before)
			strlcpy_s(res->rcpts[before].kind, "spam", sizeof(res->rcpts[before].kind));
		mbox_log(idstr, rcpt, o, "quarantined");
		return;
	case RULES_ACT_DISCARD:
		add_rcpt(res, cap, rcpt, POLICY_DISCARD, label);
		mbox_log(idstr, rcpt, o, "discarded");
		return;
	case RULES_ACT_FORWARD:
		loop = forwarded_before(view, rcpt);
		if (!loop) {
			add_rcpt_edit(res, cap, v->address, POLICY_CONTINUE, label,
				      policy_mbox_edit(v, NULL, fwd));
			break;
		}
		/* FORWARD LOOP: delivered to the owner's inbox instead. */
		add_rcpt_edit(res, cap, rcpt, POLICY_CONTINUE, label,
			      policy_mbox_edit(v, NULL, NULL));
		break;
	default:
		/* keep, move, stop, or no final rule: the owner's mailbox */
		add_rcpt_edit(res, cap, rcpt, POLICY_CONTINUE, v->rule >= 0 ? label : "",
			      policy_mbox_edit(v, v->folder, NULL));
		break;
	}
	for (k = 0; k < v->ncopy_folders && extra < MBOX_EXTRA_MAX; k++, extra++)
		add_rcpt_edit(res, cap, rcpt, POLICY_CONTINUE, label,
			      policy_mbox_edit(v, v->copy_folders[k], NULL));
	if (v->nforward_copies > 0 && loop < 0)
		loop = forwarded_before(view, rcpt);
	for (k = 0; k < v->nforward_copies && extra < MBOX_EXTRA_MAX && !loop; k++, extra++)
		add_rcpt_edit(res, cap, v->forward_copies[k], POLICY_CONTINUE, label,
			      policy_mbox_edit(v, NULL, fwd));
	if (v->rule < 0 && v->nsubject_prefixes + v->nheaders + v->ncopy_folders +
	    v->nforward_copies == 0 && v->importance == NULL)
		return; /* no rule matched: nothing to say */
	snprintf(what, sizeof(what), "%s%s%s copies=%zu forward_copies=%zu%s",
		 v->action == RULES_ACT_FORWARD ? (loop ? "inbox" : "forwarded")
		 : v->folder != NULL ? "folder" : "inbox",
		 v->action == RULES_ACT_FORWARD && !loop ? " to=" : "",
		 v->action == RULES_ACT_FORWARD && !loop ? v->address : "",
		 v->ncopy_folders, loop > 0 ? 0 : v->nforward_copies,
		 loop > 0 ? " FORWARD LOOP (X-Moat-Forwarded)" : "");
	mbox_log(idstr, rcpt, o, what);
}

static void run_job(struct worker_job *wj, void *arg)
{
	struct content_job *j = (struct content_job *)wj;
	struct policy_content_result *res = xcalloc(1, sizeof(*res));
	struct policy_snap *sn = j->snap;
	struct mime_limits lim;
	struct mime_view *view = NULL;
	struct rules_input in;
	struct rules_result rr;
	const char *prefixes[16], *headers[16];
	size_t nprefix = 0, nheader = 0, cap = 0, i, k, nrefuse = 0, ndefer = 0;
	char *msg = NULL, err[200], label[300], idstr[20];
	size_t len = 0;
	int64_t t0 = time_mono_ms();
	const struct rules_verdict **sv = NULL, **eff = NULL;
	struct policy_mbox_out *mo = NULL;
	struct policy_mbox_msg *mb = NULL;
	bool *run = NULL;

	(void)arg;
	snprintf(idstr, sizeof(idstr), "%016llx", (unsigned long long)j->sid);
	res->sid = j->sid;
	res->file = j->file;
	j->file = NULL;
	j->res = res;
	memset(&rr, 0, sizeof(rr));
	res->verdict.action = POLICY_CONTINUE;
	if (spool_file_read_all(res->file, &msg, &len) < 0) {
		res->io_error = 1;
		goto out;
	}
	lim = j->p->mime;
	if (mime_parse(msg, len, &lim, &view, err, sizeof(err)) < 0) {
		log_warn(NULL, "policy", "content mime failed: %s", err);
		view = NULL;
	}
	if (view != NULL) {
		size_t pos = 0;
		const char *hv = mime_header_next(view, "Subject", &pos);

		/* What the quarantine list shows; cut at a character boundary. */
		if (hv != NULL)
			copy_utf8(res->subject, sizeof(res->subject), hv);
		pos = 0;
		hv = mime_header_next(view, "Message-ID", &pos);
		if (hv != NULL)
			copy_utf8(res->message_id, sizeof(res->message_id), hv);
	}
	memset(&in, 0, sizeof(in));
	in.mime = view;
	in.sender = j->sender != NULL ? j->sender : "";
	in.rcpts = (const char *const *)j->rcpts;
	in.nrcpts = j->nrcpts;
	in.client_addr = j->client_addr;
	in.client_name = j->client_name;
	in.helo = j->helo;
	in.auth_user = j->auth_user;
	in.size = (int64_t)len;
	in.dnsbl = (const char *const *)j->dnsbl;
	in.ndnsbl = j->ndnsbl;
	{
		const char *fl[16];
		size_t nf = 0;

		for (i = 0; i < j->nflags; i++)
			fl[nf++] = j->flags[i];
		if (view != NULL && (view->flags & MIME_F_LIMIT))
			fl[nf++] = "mime_limit";
		if (view != NULL && (view->flags & MIME_F_MALFORMED))
			fl[nf++] = "mime_malformed";
		if (view != NULL && (view->flags & MIME_F_HTML_ONLY))
			fl[nf++] = "html_only";
		if (view != NULL && (view->flags & MIME_F_ENCRYPTED))
			fl[nf++] = "encrypted";
		in.flags = fl;
		in.nflags = nf;
		in.in_list = policy_snap_in_list_cb;
		in.in_list_arg = sn;
		if (sn->rules != NULL && rules_eval(sn->rules, &in, &rr) < 0) {
			log_error(NULL, "policy", "content rules evaluation failed sid=%llu",
				  (unsigned long long)j->sid);
			res->io_error = 1;
			goto out;
		}
		/* Each recipient's server verdict, then its owner's mailbox rules
		 * where the server let it through (on the same view). */
		sv = xcalloc(j->nrcpts + 1, sizeof(*sv));
		eff = xcalloc(j->nrcpts + 1, sizeof(*eff));
		run = xcalloc(j->nrcpts + 1, sizeof(*run));
		mo = xcalloc(j->nrcpts + 1, sizeof(*mo));
		for (i = 0; i < j->nrcpts; i++) {
			sv[i] = i < rr.nrcpts ? rr.rcpt[i] : &no_verdict;
			run[i] = mailbox_may_run(sv[i]->action);
		}
		if (sn->nmbox_sets > 0)
			mb = policy_mbox_eval(j->p->mbox, j->cw->st, sn, &in, run, mo, idstr);
		for (i = 0; i < j->nrcpts; i++)
			eff[i] = mo[i].v != NULL && mo[i].v->action == RULES_ACT_REFUSE ? mo[i].v
											 : sv[i];
	}
	/* Whole-message answers first. */
	for (i = 0; i < j->nrcpts; i++) {
		if (eff[i]->action == RULES_ACT_REFUSE)
			nrefuse++;
		else if (eff[i]->action == RULES_ACT_DEFER)
			ndefer++;
	}
	if (j->nrcpts > 0 && nrefuse + ndefer == j->nrcpts) {
		const struct rules_verdict *v = eff[0];
		size_t vi = 0;

		for (i = 0; i < j->nrcpts && nrefuse < j->nrcpts; i++) {
			if (eff[i]->action == RULES_ACT_DEFER) {
				v = eff[i];
				vi = i;
				break;
			}
		}
		res->verdict.action = v->action == RULES_ACT_REFUSE ? POLICY_REFUSE : POLICY_DEFER;
		snprintf(res->verdict.code, sizeof(res->verdict.code), "%d %s", v->code,
			 v->enhanced ? v->enhanced : (v->code >= 500 ? "5.7.1" : "4.7.1"));
		strlcpy_s(res->verdict.text, v->text ? v->text : "Message refused by policy",
			  sizeof(res->verdict.text));
		if (v != sv[vi]) {
			strlcpy_s(res->verdict.check, "mailbox_rules", sizeof(res->verdict.check));
			mbox_label(&mo[vi], res->verdict.entry, sizeof(res->verdict.entry));
			mbox_log(idstr, j->rcpts[vi], &mo[vi], "refused");
		} else {
			strlcpy_s(res->verdict.check, "rules", sizeof(res->verdict.check));
			rule_label(v, sn, res->verdict.entry, sizeof(res->verdict.entry));
		}
	} else {
		for (i = 0; i < j->nrcpts; i++) {
			const struct rules_verdict *v = eff[i];

			if (v != sv[i])
				mbox_label(&mo[i], label, sizeof(label));
			else
				rule_label(v, sn, label, sizeof(label));
			if (mo[i].v != NULL && v == sv[i])
				mailbox_disposition(res, &cap, view, j->rcpts[i], &mo[i], idstr);
			else switch (v->action) {
			case RULES_ACT_REFUSE:
			case RULES_ACT_DEFER: {
				char why[600];

				snprintf(why, sizeof(why), "%.120s %s: %d %.200s (other recipients accepted)",
					 label, v->action == RULES_ACT_REFUSE ? "refused" : "deferred",
					 v->code, v->text ? v->text : "");
				add_rcpt(res, &cap, j->rcpts[i], POLICY_HOLD, why);
				break;
			}
			case RULES_ACT_QUARANTINE: {
				size_t before = res->nrcpts;

				if (user_allowed(j, sn, v, j->rcpts[i], label)) {
					add_rcpt(res, &cap, j->rcpts[i], POLICY_CONTINUE, "");
					if (res->nrcpts > before)
						res->user_allowed++;
					break;
				}
				add_rcpt(res, &cap, j->rcpts[i], POLICY_QUARANTINE, label);
				if (res->nrcpts > before)
					strlcpy_s(res->rcpts[before].kind,
						  v->kind != NULL ? v->kind : "policy",
						  sizeof(res->rcpts[before].kind));
				break;
			}
			case RULES_ACT_HOLD:
				add_rcpt(res, &cap, j->rcpts[i], POLICY_HOLD, label);
				break;
			case RULES_ACT_DISCARD:
				add_rcpt(res, &cap, j->rcpts[i], POLICY_DISCARD, label);
				break;
			case RULES_ACT_REDIRECT:
				add_rcpt(res, &cap, v->address, POLICY_CONTINUE, label);
				break;
			default:
				add_rcpt(res, &cap, j->rcpts[i], POLICY_CONTINUE,
					 v->rule >= 0 ? label : "");
				break;
			}
			/* The server's own tags and copies, whatever the owner's rules did. */
			v = sv[i];
			if (v->action == RULES_ACT_REFUSE || v->action == RULES_ACT_DEFER ||
			    v->action == RULES_ACT_DISCARD)
				continue;
			for (k = 0; k < v->nbcc; k++)
				add_rcpt(res, &cap, v->bcc[k], POLICY_CONTINUE, "bcc");
			for (k = 0; k < v->nsubject_prefixes; k++)
				uniq_add(prefixes, &nprefix, ARRAY_LEN(prefixes), v->subject_prefixes[k]);
			for (k = 0; k < v->nheaders; k++)
				uniq_add(headers, &nheader, ARRAY_LEN(headers), v->headers[k]);
		}
		if (nprefix > 0 || nheader > 0) {
			size_t tlen = 0;
			char *tagged = apply_tags(msg, len, prefixes, nprefix, headers, nheader, &tlen);

			if (tagged != NULL && spool_file_rewrite(res->file, tagged, tlen) < 0)
				res->io_error = 1;
			free(tagged);
		}
	}
	/* Which rules decided, for the message log. */
	{
		size_t o = 0;

		for (i = 0; i < rr.nhits && o + 80 < sizeof(res->summary); i++) {
			size_t idx = rr.hits[i];

			o += (size_t)snprintf(res->summary + o, sizeof(res->summary) - o, "%s%lld",
					      o ? "," : "rules=",
					      (long long)(idx < sn->nrules ? sn->rule_ids[idx] : -1));
		}
		if (res->user_allowed > 0 && o + 40 < sizeof(res->summary))
			snprintf(res->summary + o, sizeof(res->summary) - o,
				 "%suser_allow=%d (quarantine lifted by the recipient's sender list)",
				 o ? "; " : "", res->user_allowed);
	}
	if (rr.nhits > 0 && j->cw->st != NULL) {
		int64_t ids[64];
		size_t n = 0;

		for (i = 0; i < rr.nhits && n < ARRAY_LEN(ids); i++)
			if (rr.hits[i] < sn->nrules)
				ids[n++] = sn->rule_ids[rr.hits[i]];
		struct store *st = j->cw->st;

		if (store_begin(st) < 0 || store_rules_hit(st, ids, n, time_now_ms()) < 0 ||
		    store_commit(st) < 0) {
			store_rollback(st);
			log_warn(NULL, "policy", "rule hits not counted (rules=%zu)", n);
		}
	}
	res->parse_us = view != NULL ? view->parse_us : 0;
	res->elapsed_ms = time_mono_ms() - t0;
out:
	policy_mbox_msg_free(mb);
	free(mo);
	free(run);
	free(eff);
	free(sv);
	rules_result_free(&rr);
	mime_view_free(view);
	free(msg);
}

static void free_job(struct content_job *j)
{
	size_t i;

	free(j->sender);
	for (i = 0; i < j->nrcpts; i++)
		free(j->rcpts[i]);
	free(j->rcpts);
	free(j->client_name);
	free(j->helo);
	free(j->auth_user);
	for (i = 0; i < j->ndnsbl; i++)
		free(j->dnsbl[i]);
	free(j->dnsbl);
	free(j);
}

static void done_job(struct worker_job *wj, void *arg)
{
	struct content_job *j = (struct content_job *)wj;
	struct policy *p = arg;
	struct policy_sess *ps = policy_sess_find(p, j->sid);

	j->cw->busy--;
	policy_snap_unref(j->snap);
	if (j->res == NULL) {
		/* Never ran (worker stopping): the file goes back to nobody. */
		j->res = xcalloc(1, sizeof(*j->res));
		j->res->sid = j->sid;
		j->res->file = j->file;
		j->res->io_error = 1;
		j->file = NULL;
	}
	if (ps == NULL || ps->content != NULL) {
		/* The session went away meanwhile: its file was never acknowledged. */
		policy_content_result_free(j->res);
	} else {
		if (j->res->user_allowed > 0)
			policy_stat_add(p, "user_allow", 0, j->res->user_allowed, 0, 0, 0, 0);
		ps->content = j->res;
		p->done(j->sid, p->done_arg);
	}
	free_job(j);
}

int policy_content_init(struct policy *p, int n, char *err, size_t errsz)
{
	static const struct worker_ops ops = { run_job, NULL, done_job, NULL, 0, 0 };
	char name[32];
	int i;

	n = n < 1 ? 1 : n > POLICY_MAX_CONTENT_WORKERS ? POLICY_MAX_CONTENT_WORKERS : n;
	for (i = 0; i < n; i++) {
		struct content_worker *cw = &p->content[i];

		cw->st = store_open(p->db_path, 0, err, errsz);
		if (cw->st == NULL)
			goto fail;
		snprintf(name, sizeof(name), "content-%d", i);
		cw->w = worker_new(p->base, name, &ops, p, err, errsz);
		if (cw->w == NULL) {
			store_close(cw->st);
			cw->st = NULL;
			goto fail;
		}
		p->ncontent++;
	}
	return 0;
fail:
	policy_content_fini(p);
	return -1;
}

void policy_content_fini(struct policy *p)
{
	size_t i;

	for (i = 0; i < p->ncontent; i++) {
		worker_free(p->content[i].w);
		store_close(p->content[i].st);
		p->content[i].w = NULL;
		p->content[i].st = NULL;
	}
	p->ncontent = 0;
}

int policy_content_wanted(const struct policy_sess *ps)
{
	return ps != NULL && ps->p != NULL && ps->p->ncontent > 0 && ps->snap != NULL &&
	       (ps->snap->rules != NULL || ps->snap->nmbox_sets > 0);
}

/*
 * Messages are independent, so the stage runs on several threads: a single
 * one is a serial step every message of every session waits in, and on a
 * busy machine each hand-off to it waits for its turn on a core.
 */
static void submit_least_busy(struct policy *p, struct content_job *j)
{
	struct content_worker *cw = &p->content[0];
	size_t i;

	for (i = 1; i < p->ncontent; i++)
		if (p->content[i].busy < cw->busy)
			cw = &p->content[i];
	cw->busy++;
	j->cw = cw;
	worker_submit(cw->w, &j->base);
}

void policy_content_start(struct policy_sess *ps, struct spool_file *f,
			  const struct policy_content_env *env)
{
	struct content_job *j = xcalloc(1, sizeof(*j));
	size_t i;

	j->p = ps->p;
	j->sid = ps->sid;
	j->snap = ps->snap;
	ps->snap->refs++; /* on the loop, as every snapshot reference */
	j->file = f;
	j->sender = xstrdup(env->sender != NULL ? env->sender : "");
	j->rcpts = xcalloc(env->nrcpts + 1, sizeof(char *));
	for (i = 0; i < env->nrcpts; i++)
		j->rcpts[i] = xstrdup(env->rcpts[i]);
	j->nrcpts = env->nrcpts;
	strlcpy_s(j->client_addr, ps->addr, sizeof(j->client_addr));
	j->client_name = dup_or_null(ps->name);
	j->helo = dup_or_null(env->helo);
	j->auth_user = dup_or_null(ps->user);
	if (ps->bl != NULL) {
		j->dnsbl = xcalloc(ps->snap->nsites + 1, sizeof(char *));
		for (i = 0; i < ps->snap->nsites; i++)
			if (ps->bl[i].hit && !ps->snap->sites[i].allow)
				j->dnsbl[j->ndnsbl++] = xstrdup(ps->snap->sites[i].zone);
	}
	if (env->tls)
		j->flags[j->nflags++] = "tls";
	if (ps->user[0] != '\0')
		j->flags[j->nflags++] = "auth";
	if (ps->trusted)
		j->flags[j->nflags++] = "trusted";
	if (ps->relay_client)
		j->flags[j->nflags++] = "relay_client";
	submit_least_busy(ps->p, j);
}

uint64_t policy_content_rcpt_class(const struct policy_sess *ps, const char *rcpt)
{
	const struct policy_mbox_set *set;
	uint64_t cls, h = 1469598103934665603ULL; /* FNV-1a */
	size_t i;

	if (!policy_content_wanted(ps))
		return 0;
	cls = ps->snap->rules != NULL
		? rules_rcpt_class(ps->snap->rules, rcpt, policy_snap_in_list_cb, ps->snap) : 0;
	/*
	 * A recipient whose owner's rules can refuse gets a transaction of its
	 * own: its refusal after DATA is then the answer to the whole
	 * transaction, and nobody else's mail is refused or held with it.
	 */
	set = policy_mbox_find(ps->snap, rcpt);
	if (set == NULL || !set->has_refuse)
		return cls;
	for (i = 0; rcpt[i] != '\0'; i++) {
		h ^= (unsigned char)rcpt[i];
		h *= 1099511628211ULL;
	}
	h ^= (uint64_t)set->id;
	h *= 1099511628211ULL;
	return cls ^ h;
}

struct policy_content_result *policy_content_take(struct policy_sess *ps)
{
	struct policy_content_result *r = ps->content;

	ps->content = NULL;
	return r;
}
