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

#include <event2/event.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../account/account.h"
#include "../log/log.h"
#include "../mime/mime.h"
#include "../rules/rules.h"
#include "../score/auth.h"
#include "../score/dkim_sign.h"
#include "../score/greylist.h"
#include "../score/score_bayes.h"
#include "../score/score_models.h"
#include "../spool/spool.h"
#include "../store/store.h"
#include "../store/store_rules.h"
#include "../util/util.h"
#include "../util/worker.h"
#include "policy_sheet.h"

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

	/*
	 * The score (docs/score.md).  Two rounds on the worker when sender
	 * authentication runs: PREPARE reads, parses and classifies; the loop
	 * then asks DNS (auth_check_start) and sends the job back for DECIDE.
	 * msg and view live from PREPARE to the end of DECIDE.
	 */
	enum { CJ_PREPARE, CJ_DECIDE } phase;
	int score;                         /* score_enabled */
	int inbound;                       /* not authenticated, relay_net or conn_allow */
	int want_auth;                     /* inbound, sender_auth on, a resolver */
	int outbound;                      /* authenticated, relay_net or conn_allow: signed */
	struct sockaddr_storage sa;        /* the client, for SPF */
	double *dnsbl_w;                   /* weight of each dnsbl[] site */
	char **dnswl;                      /* allow-sites that listed the client */
	double *dnswl_w;
	size_t ndnswl;
	int64_t account_score;             /* the account defence's score, or 0 */
	char *msg;
	size_t len;
	struct mime_view *view;
	double *bayes_prob;                /* per recipient; < 0: no usable model */
	int64_t *bayes_uid;                /* whose model (0: the global one) */
	double bayes_msg_prob;             /* the global model's; < 0: none */
	struct auth_result *auth;          /* NULL: not checked */
	struct auth_check *ac;             /* in flight (loop) */
	struct event *auth_timer;          /* sender_auth_timeout (loop) */
	struct content_job *anext;         /* in p's list of jobs waiting for DNS */
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
	free(r->score_json);
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

/*
 * PREPARE: read the message back, walk it, and classify it with the
 * statistical filter: once with the global model, and again for each
 * recipient whose own model is trained enough.
 */
static void prepare(struct content_job *j)
{
	struct policy_content_result *res = xcalloc(1, sizeof(*res));
	struct policy_snap *sn = j->snap;
	struct mime_limits lim;
	char err[200];
	size_t i;

	res->sid = j->sid;
	res->file = j->file;
	j->file = NULL;
	j->res = res;
	res->verdict.action = POLICY_CONTINUE;
	res->started_ms = time_mono_ms();
	if (spool_file_read_all(res->file, &j->msg, &j->len) < 0) {
		res->io_error = 1;
		return;
	}
	lim = j->p->mime;
	if (mime_parse(j->msg, j->len, &lim, &j->view, err, sizeof(err)) < 0) {
		log_warn(NULL, "policy", "content mime failed: %s", err);
		j->view = NULL;
	}
	if (j->view != NULL) {
		size_t pos = 0;
		const char *hv = mime_header_next(j->view, "Subject", &pos);

		/* What the quarantine list shows; cut at a character boundary. */
		if (hv != NULL)
			copy_utf8(res->subject, sizeof(res->subject), hv);
		pos = 0;
		hv = mime_header_next(j->view, "Message-ID", &pos);
		if (hv != NULL)
			copy_utf8(res->message_id, sizeof(res->message_id), hv);
	}
	j->bayes_msg_prob = -1;
	j->bayes_prob = xcalloc(j->nrcpts + 1, sizeof(double));
	j->bayes_uid = xcalloc(j->nrcpts + 1, sizeof(int64_t));
	for (i = 0; i < j->nrcpts; i++)
		j->bayes_prob[i] = -1;
	if (j->score && j->view != NULL && sn->bayes != NULL) {
		const struct bayes_model *global, *seen[8];
		double seen_prob[8];
		size_t nseen = 0, k;
		int64_t used;
		int tokenized = 0;
		struct bayes_tokens t;
		struct bayes_params bp;
		struct bayes_result br;

		memset(&t, 0, sizeof(t));
		bayes_params_default(&bp);
		global = score_models_for(sn->bayes, 0, sn->set.bayes_min_learned, &used);
		for (i = 0; i <= j->nrcpts; i++) {
			const struct bayes_model *m = global;
			int64_t uid = 0;

			/* i == nrcpts: the message's own probability, the global model's. */
			used = 0;
			if (i < j->nrcpts && score_models_user_of(sn, j->rcpts[i], &uid) == 0)
				m = score_models_for(sn->bayes, uid, sn->set.bayes_min_learned, &used);
			if (m == NULL)
				continue;
			for (k = 0; k < nseen && seen[k] != m; k++)
				;
			if (k == nseen) {
				/* Tokenized once, and only when some model can use it. */
				if (!tokenized) {
					bayes_tokenize(j->view, score_models_key(sn->bayes), 0, &t);
					tokenized = 1;
				}
				bayes_classify(m, &t, &bp, &br);
				if (nseen == ARRAY_LEN(seen))
					nseen--; /* more models than that: the last slot is reused */
				seen[nseen] = m;
				seen_prob[nseen++] = br.prob;
				k = nseen - 1;
			}
			if (i == j->nrcpts) {
				j->bayes_msg_prob = seen_prob[k];
			} else {
				j->bayes_prob[i] = seen_prob[k];
				j->bayes_uid[i] = used;
			}
		}
		bayes_tokens_free(&t);
	}
}

/* The message's header section and body as sender authentication reads them. */
static void split_message(const char *msg, size_t len, struct auth_facts *f)
{
	const char *p;

	f->header = msg;
	f->header_len = len;
	f->body = msg + len;
	f->body_len = 0;
	for (p = msg; p + 3 < msg + len; p++) {
		if (p[0] == '\r' && p[1] == '\n' && p[2] == '\r' && p[3] == '\n') {
			f->header_len = (size_t)(p + 2 - msg);
			f->body = p + 4;
			f->body_len = len - (size_t)(p + 4 - msg);
			return;
		}
	}
}

static const struct rules_verdict score_refuse_v = {
	.action = RULES_ACT_REFUSE, .rule = -1, .code = 550, .enhanced = "5.7.1",
	.text = "Message refused as spam",
};
static const struct rules_verdict score_quarantine_v = {
	.action = RULES_ACT_QUARANTINE, .rule = -1, .kind = "spam",
};

static int is_score_verdict(const struct rules_verdict *v)
{
	return v == &score_refuse_v || v == &score_quarantine_v;
}

/* What the score of one recipient came to. */
struct rcpt_score {
	double total;                /* every part, rule points included */
	double bayes;                /* the BAYES part, 0 when none */
	struct score_thresholds th;
	const char *scope;
	const char *action;          /* "none", "tag", "quarantine", "refuse" */
};

/*
 * The common parts of the message: DNS blocklists and allow-lists, sender
 * authentication, the sending account.
 */
static void common_parts(const struct content_job *j, const struct policy_snap *sn,
			 struct score_sheet *sh, const char **flags, size_t *nflags, size_t max)
{
	char name[80], detail[80];
	size_t i;

	for (i = 0; i < j->ndnsbl; i++) {
		snprintf(name, sizeof(name), "DNSBL_%.70s", j->dnsbl[i]);
		score_add(sh, name, j->dnsbl_w[i], NULL);
	}
	for (i = 0; i < j->ndnswl; i++) {
		snprintf(name, sizeof(name), "DNSWL_%.70s", j->dnswl[i]);
		score_add(sh, name, -j->dnswl_w[i], NULL);
	}
	if (j->auth != NULL)
		score_auth_parts(sh, &sn->set, j->auth, flags, nflags, max);
	if (j->account_score > 0 && sn->set.score_account > 0) {
		snprintf(detail, sizeof(detail), "account score %lld", (long long)j->account_score);
		score_add(sh, "ACCOUNT", (double)j->account_score * sn->set.score_account, detail);
	}
}

static void bayes_part(struct score_sheet *sh, const struct policy_snap *sn, double prob,
		       int64_t uid)
{
	char detail[80];

	if (prob < 0)
		return;
	snprintf(detail, sizeof(detail), "p=%.3f%s", prob, uid != 0 ? " (own model)" : "");
	score_add(sh, "BAYES", score_bayes_points(&sn->set, prob), detail);
}

/* The label a score verdict leaves in the message log and the queue. */
static void score_label(const struct rcpt_score *rs, char *out, size_t outsz)
{
	snprintf(out, outsz, "score %.2f (%s, %s)", rs->total, rs->action,
		 rs->scope != NULL ? rs->scope : "global");
}

static void verdict_label(const struct rules_verdict *v, const struct policy_snap *sn,
			  const struct rcpt_score *rs, char *out, size_t outsz)
{
	if (is_score_verdict(v))
		score_label(rs, out, outsz);
	else
		rule_label(v, sn, out, outsz);
}

/*
 * Greylisting (docs/score.md): inbound mail whose score is in a
 * recipient's band [greylist, refuse) waits for a retry.  1 with the
 * deferral in res->verdict.
 */
static int greylisted(struct content_job *j, const struct policy_snap *sn,
		      const struct rcpt_score *rs, const bool *decided)
{
	struct greylist_params gp;
	const char *spf_domain = NULL;
	int64_t now = time_now_ms(), wait = 0;
	size_t i;
	int defer = 0;

	if (!j->inbound || j->cw->st == NULL)
		return 0;
	gp.delay_ms = sn->set.greylist_delay_s * 1000;
	gp.window_ms = sn->set.greylist_window_s * 1000;
	gp.lifetime_ms = sn->set.greylist_lifetime_s * 1000;
	gp.auto_allow = sn->set.greylist_auto_allow;
	if (j->auth != NULL && j->auth->spf.res == AUTH_PASS && j->auth->spf.domain[0] != '\0')
		spf_domain = j->auth->spf.domain;
	for (i = 0; i < j->nrcpts; i++) {
		struct greylist_key k;
		enum greylist_res gr;
		int64_t retry = 0;

		if (decided[i] || rs[i].total < rs[i].th.greylist || rs[i].total >= rs[i].th.refuse)
			continue;
		k.client_addr = j->client_addr;
		k.sender = j->sender != NULL ? j->sender : "";
		k.spf_domain = spf_domain;
		k.rcpt = j->rcpts[i];
		if (greylist_check(j->cw->st, &k, &gp, now, &gr, &retry) < 0) {
			log_warn(NULL, "policy", "greylist check failed: let through");
			continue;
		}
		if (gr == GREYLIST_DEFER) {
			defer = 1;
			if (retry > wait)
				wait = retry;
		}
	}
	if (!defer)
		return 0;
	j->res->verdict.action = POLICY_DEFER;
	strlcpy_s(j->res->verdict.code, "451 4.7.1", sizeof(j->res->verdict.code));
	snprintf(j->res->verdict.text, sizeof(j->res->verdict.text),
		 "Greylisted, please try again in %lld seconds", (long long)((wait + 999) / 1000));
	strlcpy_s(j->res->verdict.check, "greylist", sizeof(j->res->verdict.check));
	snprintf(j->res->verdict.entry, sizeof(j->res->verdict.entry), "score %.2f",
		 rs[0].total);
	return 1;
}

/* The texts the score adds to a delivered recipient: X-Moat-Score, Authentication-Results. */
static size_t score_fields(const struct content_job *j, const struct policy_snap *sn,
			   const struct score_sheet *sh, const struct rcpt_score *rs,
			   char **out, size_t max)
{
	struct dynbuf b;
	size_t n = 0;

	if (!j->inbound || sn->set.score_headers == 2 ||
	    (sn->set.score_headers == 1 && rs->total < rs->th.tag))
		return 0;
	dynbuf_init(&b, 4000);
	if (score_header(sh, rs->total, rs->action, &b) == 0 && b.len > 0 && n < max)
		out[n++] = xstrndup(b.data, b.len);
	dynbuf_reset(&b);
	if (j->auth != NULL && dynbuf_add(&b, "Authentication-Results: ", 24) == 0 &&
	    auth_results_format(j->auth, j->p->hostname, &b) == 0 && n < max)
		out[n++] = xstrndup(b.data, b.len);
	dynbuf_free(&b);
	return n;
}

/*
 * The score's fields in each delivered row of a recipient: the DKIM
 * signature of outbound mail, X-Moat-Score and Authentication-Results of
 * inbound mail, and the tag (subject prefix, X-Spam-Flag).
 */
static void apply_score_edits(struct content_job *j, const struct policy_snap *sn,
			      const struct score_sheet *common, const struct rcpt_score *rs,
			      const size_t *row_from, const size_t *row_to, const char *msg,
			      size_t len)
{
	struct policy_content_result *res = j->res;
	char *signature = NULL, err[200];
	size_t i, r;

	if (j->outbound && sn->dkim != NULL) {
		int rc = dkim_sign_message(sn->dkim, msg, len, &signature, err, sizeof(err));

		if (rc < 0)
			log_warn(NULL, "policy", "dkim signing failed: %s", err);
		if (rc != 1)
			signature = NULL;
	}
	for (i = 0; i < j->nrcpts; i++) {
		char *fields[4];
		const char *hdrs[4];
		size_t nfields = 0, n = 0;
		const char *prefix = NULL;
		struct score_sheet sh;

		if (row_from[i] == row_to[i])
			continue;
		if (signature != NULL)
			hdrs[n++] = signature;
		if (j->score) {
			sh = *common;
			bayes_part(&sh, sn, j->bayes_prob[i], j->bayes_uid[i]);
			if (rs[i].total - sh.total > 0.0005 || sh.total - rs[i].total > 0.0005)
				score_add(&sh, "RULES", rs[i].total - sh.total, NULL);
			nfields = score_fields(j, sn, &sh, &rs[i], fields, ARRAY_LEN(fields));
			for (r = 0; r < nfields; r++)
				hdrs[n++] = fields[r];
			if (strcmp(rs[i].action, "tag") == 0) {
				hdrs[n++] = "X-Spam-Flag: YES";
				prefix = sn->set.score_tag_subject;
			}
		}
		for (r = row_from[i]; r < row_to[i] && n > 0; r++)
			if (res->rcpts[r].disp == POLICY_CONTINUE)
				res->rcpts[r].edit = score_edit_merge(res->rcpts[r].edit, prefix,
								      hdrs, n);
		for (r = 0; r < nfields; r++)
			free(fields[r]);
	}
	free(signature);
}

/* bayes_autolearn (docs/score.md): score is the message's without its BAYES part. */
static void autolearn(struct content_job *j, const struct policy_snap *sn, double score)
{
	char cls = 0, err[200];

	if (!sn->set.bayes_autolearn || !j->inbound || j->cw->st == NULL)
		return;
	if (score >= sn->set.bayes_autolearn_spam)
		cls = 's';
	else if (score <= sn->set.bayes_autolearn_ham)
		cls = 'h';
	if (cls == 0)
		return;
	if (score_autolearn(j->cw->st, j->msg, j->len, cls, 0, err, sizeof(err)) < 0)
		log_warn(NULL, "policy", "autolearn failed: %s", err);
}


/*
 * DECIDE: the server rules (which see the score so far), the score's
 * thresholds per recipient, greylisting, the mailbox rules, and the
 * disposition of every recipient.
 */
static void decide(struct content_job *j)
{
	struct policy_content_result *res = j->res;
	struct policy_snap *sn = j->snap;
	struct mime_view *view = j->view;
	struct rules_input in;
	struct rules_result rr;
	struct score_sheet common, msgsheet;
	const char *prefixes[16], *headers[16], *fl[48], *part_names[SCORE_PARTS_MAX];
	double part_values[SCORE_PARTS_MAX];
	size_t nprefix = 0, nheader = 0, cap = 0, i, k, nrefuse = 0, ndefer = 0, nf = 0;
	size_t nscore_refuse = 0;
	char label[300], idstr[20];
	const char *msg = j->msg;
	size_t len = j->len;
	char *tagged = NULL;
	size_t tlen = 0;
	const struct rules_verdict **sv = NULL, **eff = NULL;
	struct policy_mbox_out *mo = NULL;
	struct policy_mbox_msg *mb = NULL;
	struct rcpt_score *rs = NULL;
	size_t *row_from = NULL, *row_to = NULL;
	bool *run = NULL, *decided = NULL;
	double msg_score;
	size_t best = 0;

	snprintf(idstr, sizeof(idstr), "%016llx", (unsigned long long)j->sid);
	memset(&rr, 0, sizeof(rr));
	memset(&common, 0, sizeof(common));
	memset(&in, 0, sizeof(in));
	if (res->io_error || j->msg == NULL)
		goto out;
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
	if (j->score) {
		common_parts(j, sn, &common, fl, &nf, ARRAY_LEN(fl));
		if (j->bayes_msg_prob >= 0)
			fl[nf++] = j->bayes_msg_prob >= BAYES_SPAM_CUTOFF ? "bayes_spam"
				 : j->bayes_msg_prob <= BAYES_HAM_CUTOFF ? "bayes_ham" : "bayes_unsure";
	}
	in.flags = fl;
	in.nflags = nf;
	in.in_list = policy_snap_in_list_cb;
	in.in_list_arg = sn;
	/* The rules see the score before their own points: the common parts and
	 * the global model's BAYES. */
	{
		msgsheet = common;
		bayes_part(&msgsheet, sn, j->bayes_msg_prob, 0);
		for (i = 0; i < msgsheet.n; i++) {
			part_names[i] = msgsheet.p[i].name;
			part_values[i] = msgsheet.p[i].points;
		}
		in.score = msgsheet.total;
		in.score_part_names = part_names;
		in.score_part_values = part_values;
		in.nscore_parts = msgsheet.n;
		if (sn->rules != NULL && rules_eval(sn->rules, &in, &rr) < 0) {
			log_error(NULL, "policy", "content rules evaluation failed sid=%llu",
				  (unsigned long long)j->sid);
			res->io_error = 1;
			goto out;
		}
	}
	sv = xcalloc(j->nrcpts + 1, sizeof(*sv));
	eff = xcalloc(j->nrcpts + 1, sizeof(*eff));
	run = xcalloc(j->nrcpts + 1, sizeof(*run));
	decided = xcalloc(j->nrcpts + 1, sizeof(*decided));
	mo = xcalloc(j->nrcpts + 1, sizeof(*mo));
	rs = xcalloc(j->nrcpts + 1, sizeof(*rs));
	row_from = xcalloc(j->nrcpts + 1, sizeof(*row_from));
	row_to = xcalloc(j->nrcpts + 1, sizeof(*row_to));
	for (i = 0; i < j->nrcpts; i++) {
		enum rules_action_type a;

		sv[i] = i < rr.nrcpts ? rr.rcpt[i] : &no_verdict;
		a = sv[i]->action;
		/* An allow rule (accept) or an administrator's own final action
		 * leaves the score nothing to decide. */
		decided[i] = !j->score || !(a == RULES_ACT_NONE || a == RULES_ACT_STOP ||
					     a == RULES_ACT_CONTINUE);
		rs[i].bayes = j->bayes_prob[i] >= 0 ? score_bayes_points(&sn->set, j->bayes_prob[i])
			    : 0;
		rs[i].total = common.total + rs[i].bayes + sv[i]->points;
		rs[i].action = "none";
		policy_score_thresholds(sn, j->rcpts[i], &rs[i].th, &rs[i].scope);
	}
	if (j->score && greylisted(j, sn, rs, decided)) {
		res->scored = 1;
		res->score = j->nrcpts > 0 ? rs[0].total : common.total;
		strlcpy_s(res->score_action, "greylist", sizeof(res->score_action));
		goto hits;
	}
	/* The score's refusals and quarantines; the rest may meet mailbox rules. */
	for (i = 0; i < j->nrcpts; i++) {
		eff[i] = sv[i];
		if (!decided[i] && rs[i].total >= rs[i].th.refuse) {
			eff[i] = &score_refuse_v;
			rs[i].action = "refuse";
			nscore_refuse++;
		} else if (!decided[i] && rs[i].total >= rs[i].th.quarantine) {
			eff[i] = &score_quarantine_v;
			rs[i].action = "quarantine";
		}
		run[i] = !is_score_verdict(eff[i]) && mailbox_may_run(sv[i]->action);
	}
	/* Refused as a whole only when every recipient is: else quarantined. */
	for (i = 0; i < j->nrcpts && nscore_refuse > 0; i++) {
		if (eff[i] == &score_refuse_v && !(nscore_refuse == j->nrcpts))
			eff[i] = &score_quarantine_v;
	}
	if (sn->nmbox_sets > 0) {
		/* Mailbox rules see the message's score with the server rules' points. */
		in.score = j->nrcpts > 0 ? rs[0].total : common.total;
		mb = policy_mbox_eval(j->p->mbox, j->cw->st, sn, &in, run, mo, idstr);
	}
	for (i = 0; i < j->nrcpts; i++) {
		if (mo[i].v != NULL) {
			rs[i].total += mo[i].v->points;
			if (mo[i].v->action == RULES_ACT_REFUSE)
				eff[i] = mo[i].v;
		}
		if (!decided[i] && !is_score_verdict(eff[i]) && rs[i].total >= rs[i].th.tag &&
		    j->score)
			rs[i].action = "tag";
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
		if (is_score_verdict(v)) {
			strlcpy_s(res->verdict.check, "score", sizeof(res->verdict.check));
			score_label(&rs[vi], res->verdict.entry, sizeof(res->verdict.entry));
		} else if (v != sv[vi]) {
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

			row_from[i] = res->nrcpts;
			if (v != sv[i] && !is_score_verdict(v))
				mbox_label(&mo[i], label, sizeof(label));
			else
				verdict_label(v, sn, &rs[i], label, sizeof(label));
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
					rs[i].action = "none";
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
			    v->action == RULES_ACT_DISCARD) {
				row_to[i] = res->nrcpts;
				continue;
			}
			for (k = 0; k < v->nbcc; k++)
				add_rcpt(res, &cap, v->bcc[k], POLICY_CONTINUE, "bcc");
			row_to[i] = res->nrcpts;
			for (k = 0; k < v->nsubject_prefixes; k++)
				uniq_add(prefixes, &nprefix, ARRAY_LEN(prefixes), v->subject_prefixes[k]);
			for (k = 0; k < v->nheaders; k++)
				uniq_add(headers, &nheader, ARRAY_LEN(headers), v->headers[k]);
		}
		if (nprefix > 0 || nheader > 0) {
			tagged = apply_tags(msg, len, prefixes, nprefix, headers, nheader, &tlen);
			if (tagged != NULL && spool_file_rewrite(res->file, tagged, tlen) < 0)
				res->io_error = 1;
			if (tagged != NULL) {
				msg = tagged;
				len = tlen;
			}
		}
		apply_score_edits(j, sn, &common, rs, row_from, row_to, msg, len);
	}
	/* The message's score in the log: its highest recipient's. */
	for (i = 1; i < j->nrcpts; i++)
		if (rs[i].total > rs[best].total)
			best = i;
	msg_score = j->nrcpts > 0 ? rs[best].total : common.total;
	if (j->score) {
		struct score_sheet sh = common;

		if (j->nrcpts > 0) {
			bayes_part(&sh, sn, j->bayes_prob[best], j->bayes_uid[best]);
			if (sv[best]->points != 0)
				score_add(&sh, "RULES", sv[best]->points, NULL);
			if (mo[best].v != NULL && mo[best].v->points != 0)
				score_add(&sh, "MAILBOX_RULES", mo[best].v->points, NULL);
		}
		res->scored = 1;
		res->score = msg_score;
		res->score_json = score_json(&sh);
		strlcpy_s(res->score_action, j->nrcpts > 0 ? rs[best].action : "none",
			  sizeof(res->score_action));
		autolearn(j, sn, msg_score - (j->nrcpts > 0 ? rs[best].bayes : 0));
	}
hits:
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
			o += (size_t)snprintf(res->summary + o, sizeof(res->summary) - o,
				 "%suser_allow=%d (quarantine lifted by the recipient's sender list)",
				 o ? "; " : "", res->user_allowed);
		if (res->scored && o + 40 < sizeof(res->summary))
			snprintf(res->summary + o, sizeof(res->summary) - o, "%sscore=%.2f (%s)",
				 o ? "; " : "", res->score, res->score_action);
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
	res->elapsed_ms = time_mono_ms() - res->started_ms;
out:
	free(tagged);
	free(row_to);
	free(row_from);
	free(rs);
	policy_mbox_msg_free(mb);
	free(mo);
	free(decided);
	free(run);
	free(eff);
	free(sv);
	rules_result_free(&rr);
}

static void run_job(struct worker_job *wj, void *arg)
{
	struct content_job *j = (struct content_job *)wj;

	(void)arg;
	if (j->phase == CJ_PREPARE) {
		prepare(j);
		if (j->want_auth && !j->res->io_error)
			return; /* the loop asks DNS, then DECIDE */
	}
	decide(j);
	mime_view_free(j->view);
	j->view = NULL;
	free(j->msg);
	j->msg = NULL;
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
	free(j->dnsbl_w);
	for (i = 0; i < j->ndnswl; i++)
		free(j->dnswl[i]);
	free(j->dnswl);
	free(j->dnswl_w);
	mime_view_free(j->view);
	free(j->msg);
	free(j->bayes_prob);
	free(j->bayes_uid);
	free(j->auth);
	free(j);
}

static void unlink_auth_job(struct policy *p, struct content_job *j)
{
	struct content_job **pp;

	for (pp = &p->auth_jobs; *pp != NULL; pp = &(*pp)->anext) {
		if (*pp == j) {
			*pp = j->anext;
			j->anext = NULL;
			return;
		}
	}
}

/* Sender authentication answered (loop): back to the same worker for DECIDE. */
static void auth_done(const struct auth_result *r, void *arg)
{
	struct content_job *j = arg;

	j->ac = NULL;
	event_free(j->auth_timer);
	j->auth_timer = NULL;
	unlink_auth_job(j->p, j);
	j->auth = xmalloc(sizeof(*j->auth));
	*j->auth = *r;
	j->phase = CJ_DECIDE;
	worker_submit(j->cw->w, &j->base);
}

/*
 * sender_auth_timeout ran out (loop): the message is judged without sender
 * authentication, never held up by a slow name server.  The check frees
 * itself when its queries come back.
 */
static void auth_timed_out(evutil_socket_t fd, short what, void *arg)
{
	struct content_job *j = arg;
	char idstr[20];

	(void)fd;
	(void)what;
	snprintf(idstr, sizeof(idstr), "%016llx", (unsigned long long)j->sid);
	log_info(idstr, "policy", "sender_auth timeout after %llds: judged without it",
		 (long long)j->snap->set.sender_auth_timeout_s);
	auth_check_cancel(j->ac);
	j->ac = NULL;
	event_free(j->auth_timer);
	j->auth_timer = NULL;
	unlink_auth_job(j->p, j);
	j->phase = CJ_DECIDE;
	worker_submit(j->cw->w, &j->base);
}

/* PREPARE is done (loop): ask DNS about the sender.  0, or -1 when it cannot start. */
static int start_auth(struct content_job *j)
{
	struct auth_facts f;

	memset(&f, 0, sizeof(f));
	split_message(j->msg, j->len, &f);
	f.ip = (const struct sockaddr *)&j->sa;
	f.helo = j->helo != NULL ? j->helo : "";
	f.mail_from = j->sender != NULL ? j->sender : "";
	j->ac = auth_check_start(j->p->dns, &f, auth_done, j);
	if (j->ac == NULL)
		return -1;
	{
		struct timeval tv = { j->snap->set.sender_auth_timeout_s, 0 };

		j->auth_timer = evtimer_new(j->p->base, auth_timed_out, j);
		evtimer_add(j->auth_timer, &tv);
	}
	j->anext = j->p->auth_jobs;
	j->p->auth_jobs = j;
	return 0;
}

static void done_job(struct worker_job *wj, void *arg)
{
	struct content_job *j = (struct content_job *)wj;
	struct policy *p = arg;
	struct policy_sess *ps;

	if (j->phase == CJ_PREPARE && j->want_auth && j->res != NULL && !j->res->io_error) {
		if (!p->stopping && start_auth(j) == 0)
			return;
		/* No DNS round: decided without sender authentication. */
		j->want_auth = 0;
		j->phase = CJ_DECIDE;
		if (!p->stopping) {
			worker_submit(j->cw->w, &j->base);
			return;
		}
		j->res->io_error = 1;
	}
	ps = policy_sess_find(p, j->sid);
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

	/* Jobs waiting for DNS: their sessions are gone, their files never acknowledged. */
	while (p->auth_jobs != NULL) {
		struct content_job *j = p->auth_jobs;

		p->auth_jobs = j->anext;
		auth_check_cancel(j->ac);
		event_free(j->auth_timer);
		j->cw->busy--;
		policy_snap_unref(j->snap);
		policy_content_result_free(j->res);
		free_job(j);
	}

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
	const struct policy_snap *sn;
	int inbound;
	int64_t used;

	if (ps == NULL || ps->p == NULL || ps->p->ncontent == 0 || ps->snap == NULL)
		return 0;
	sn = ps->snap;
	if (sn->rules != NULL || sn->nmbox_sets > 0)
		return 1;
	inbound = ps->user[0] == '\0' && !ps->trusted && !ps->relay_client;
	if (!inbound && sn->dkim != NULL)
		return 1;
	if (!sn->set.score_enabled)
		return 0;
	/*
	 * Inbound mail is always scored (thresholds per domain or user may act
	 * on any score).  Outbound mail only with something to score it with, a
	 * trained filter or the account's signals (docs/score.md), so plain
	 * relaying costs no MIME walk.
	 */
	return inbound ||
	       score_models_for(sn->bayes, 0, sn->set.bayes_min_learned, &used) != NULL ||
	       ps->user[0] != '\0';
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
		j->dnsbl_w = xcalloc(ps->snap->nsites + 1, sizeof(double));
		j->dnswl = xcalloc(ps->snap->nsites + 1, sizeof(char *));
		j->dnswl_w = xcalloc(ps->snap->nsites + 1, sizeof(double));
		for (i = 0; i < ps->snap->nsites; i++) {
			const struct policy_dnsbl_site *site = &ps->snap->sites[i];

			if (!ps->bl[i].hit || !site->enabled)
				continue;
			if (site->allow) {
				j->dnswl_w[j->ndnswl] = site->weight;
				j->dnswl[j->ndnswl++] = xstrdup(site->zone);
			} else {
				j->dnsbl_w[j->ndnsbl] = site->weight;
				j->dnsbl[j->ndnsbl++] = xstrdup(site->zone);
			}
		}
	}
	if (env->tls)
		j->flags[j->nflags++] = "tls";
	if (ps->user[0] != '\0')
		j->flags[j->nflags++] = "auth";
	if (ps->trusted)
		j->flags[j->nflags++] = "trusted";
	if (ps->relay_client)
		j->flags[j->nflags++] = "relay_client";
	j->score = ps->snap->set.score_enabled;
	j->outbound = ps->user[0] != '\0' || ps->trusted || ps->relay_client;
	j->inbound = !j->outbound;
	j->want_auth = j->score && j->inbound && ps->snap->set.sender_auth && ps->p->dns != NULL;
	memcpy(&j->sa, &ps->sa, sizeof(j->sa));
	if (ps->user[0] != '\0' && ps->p->accounts != NULL)
		j->account_score = account_score(ps->p->accounts, ps->user, NULL, 0);
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
