/*
 * http_link: the signed links of quarantine digests, /q/{token}.  Public:
 * the token is the only credential, and it names one recipient, one item,
 * one action and an expiry, signed with the link key (daemon/digest).
 *
 * GET shows a small confirmation page with a form and acts on nothing, so
 * that mail scanners and link previews that fetch URLs change nothing.
 * POST acts once: the token is verified (403 when forged), its expiry
 * checked (410), the item looked up (404 when it is gone), then its nonce
 * is recorded (410 when it was already used: a second POST, or a race
 * with one) and the item released or deleted through
 * quarantine_admin_apply() in the scope of the digest's user, as actor
 * "link:<rcpt>" via "link".  "allow" is a release that also puts the
 * sender on that user's personal allow list.  When the action fails the
 * nonce is forgotten, so the link can be tried again.
 *
 * Pages are plain HTML without script under a Content-Security-Policy that
 * allows none (http_reply_page); every value shown is escaped.
 */
#include "http_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../conf/conf.h"
#include "../digest/digest.h"
#include "../log/log.h"
#include "../quarantine/quarantine_admin.h"
#include "../store/store.h"
#include "../store/store_digest.h"
#include "../store/store_event.h"
#include "../store/store_quarantine.h"

#define PAGE_MAX (64 * 1024)

static void esc(struct dynbuf *b, const char *s)
{
	for (; *s != '\0'; s++) {
		switch (*s) {
		case '&':
			dynbuf_add(b, "&amp;", 5);
			break;
		case '<':
			dynbuf_add(b, "&lt;", 4);
			break;
		case '>':
			dynbuf_add(b, "&gt;", 4);
			break;
		case '"':
			dynbuf_add(b, "&quot;", 6);
			break;
		case '\'':
			dynbuf_add(b, "&#39;", 5);
			break;
		default:
			dynbuf_add(b, s, 1);
			break;
		}
	}
}

/* A page: title, one paragraph of text (escaped), and a form when button is set. */
static enum MHD_Result page(struct http_req *r, unsigned status, const char *title,
			    const char *text, const char *button)
{
	struct dynbuf b;

	dynbuf_init(&b, PAGE_MAX);
	dynbuf_addf(&b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
		    "<meta name=\"viewport\" content=\"width=device-width\">"
		    "<meta name=\"robots\" content=\"noindex\"><title>");
	esc(&b, title);
	dynbuf_addf(&b, "</title><style>body{font-family:sans-serif;max-width:40em;"
		    "margin:3em auto;padding:0 1em}button{font-size:1.1em;padding:.4em 1.2em}"
		    "</style></head>\n<body><h1>");
	esc(&b, title);
	dynbuf_addf(&b, "</h1>\n<p>");
	esc(&b, text);
	dynbuf_addf(&b, "</p>\n");
	if (button != NULL) {
		/* No action attribute: the form posts back to this very URL. */
		dynbuf_addf(&b, "<form method=\"post\"><button type=\"submit\">");
		esc(&b, button);
		dynbuf_addf(&b, "</button></form>\n");
	}
	dynbuf_addf(&b, "</body></html>\n");
	if (dynbuf_add(&b, "", 1) < 0) {
		dynbuf_free(&b);
		return http_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal", NULL,
				  "page too large");
	}
	return http_reply_page(r, status, b.data);
}

static const char *verb(enum digest_action a)
{
	return a == DIGEST_RELEASE ? "Release" : a == DIGEST_DELETE ? "Delete"
	       : "Release and allow sender";
}

/* Verify the path's token; 0 with *l, or -1 after replying. */
static int check_token(struct http_req *r, struct digest_link *l, enum MHD_Result *ret)
{
	static const char *const args[] = { NULL };
	enum digest_verdict v;

	if (http_args_allow(r, args) < 0) {
		*ret = page(r, MHD_HTTP_BAD_REQUEST, "Invalid link",
			    "This link has unexpected parameters. Use the link exactly as it was"
			    " in the digest.", NULL);
		return -1;
	}
	v = r->nparams == 1 ? digest_link_verify(digest_key(), r->params[0].p, r->params[0].len,
						 time_now_ms() / 1000, l)
			    : DIGEST_LINK_FORGED;
	if (v == DIGEST_LINK_FORGED) {
		log_warn(NULL, "http", "digest link forged from [%s]", r->client_addr);
		*ret = page(r, MHD_HTTP_FORBIDDEN, "Invalid link",
			    "This link is not valid. Use the link exactly as it was in the"
			    " digest, or manage your quarantine in the console.", NULL);
		return -1;
	}
	if (v == DIGEST_LINK_EXPIRED) {
		*ret = page(r, MHD_HTTP_GONE, "Link expired",
			    "This link has expired. The message may still be in your quarantine:"
			    " look for it in the console or in a newer digest.", NULL);
		return -1;
	}
	return 0;
}

static enum MHD_Result used_page(struct http_req *r)
{
	return page(r, MHD_HTTP_GONE, "Link already used",
		    "This link has already been used; each link in a digest works once.", NULL);
}

static enum MHD_Result gone_page(struct http_req *r)
{
	return page(r, MHD_HTTP_NOT_FOUND, "Message not found",
		    "This message is no longer in quarantine: it was released, deleted or"
		    " has expired.", NULL);
}

/* "the message from <sender> with subject <subject> to <rcpt>" */
static void describe(char *out, size_t outsz, const struct store_digest_item_info *it,
		     const struct digest_link *l)
{
	snprintf(out, outsz, "the message from %s (subject: \"%s\") to %s",
		 it->sender[0] != '\0' ? it->sender : "<>", it->subject, l->rcpt);
}

enum MHD_Result http_link_show(struct http_req *r)
{
	struct digest_link l;
	struct store_digest_item_info it;
	enum MHD_Result ret;
	char text[1800];
	char what[1200];
	int found, used;

	if (check_token(r, &l, &ret) < 0)
		return ret;
	if (store_digest_nonce_seen(r->st, l.nonce, &used) < 0 ||
	    store_digest_item_get(r->st, l.item_id, l.rcpt, &it, &found) < 0)
		return http_internal(r, "digest link");
	if (used)
		return used_page(r);
	if (!found)
		return gone_page(r);
	describe(what, sizeof(what), &it, &l);
	snprintf(text, sizeof(text), "%s %s?%s", verb(l.action), what,
		 l.action == DIGEST_ALLOW ? " Future mail from this sender will reach you"
					    " without quarantine." : "");
	return page(r, MHD_HTTP_OK, "Confirm", text, verb(l.action));
}

/* The digest.link event: which link acted on which item. */
static void link_event(struct http_req *r, const struct digest_link *l, const char *qid)
{
	struct store_event_row e;
	char detail[64];
	char actor[400];

	memset(&e, 0, sizeof(e));
	snprintf(detail, sizeof(detail), "{\"action\":\"%s\"}", digest_action_name(l->action));
	snprintf(actor, sizeof(actor), "link:%s", l->rcpt);
	e.qid = qid;
	e.rcpt = l->rcpt;
	e.event = "digest.link";
	e.detail = detail;
	e.actor = actor;
	if (store_begin(r->st) < 0)
		goto fail;
	if (store_event_add(r->st, &e) < 0 || store_commit(r->st) < 0) {
		store_rollback(r->st);
		goto fail;
	}
	return;
fail:
	log_error(qid, "http", "digest link event not recorded: %s", store_digest_errmsg(r->st));
}

static void forget(struct http_req *r, const struct digest_link *l)
{
	if (store_begin(r->st) < 0)
		return;
	if (store_digest_nonce_forget(r->st, l->nonce) < 0 || store_commit(r->st) < 0)
		store_rollback(r->st);
}

enum MHD_Result http_link_act(struct http_req *r)
{
	struct digest_link l;
	struct store_digest_item_info it;
	struct store_quarantine_filter f;
	struct quarantine_actor actor;
	struct quarantine_result res;
	enum MHD_Result ret;
	char text[1800];
	char what[1200];
	char err[300];
	int found, used, status = 500;
	int64_t id;

	if (check_token(r, &l, &ret) < 0)
		return ret;
	if (store_digest_item_get(r->st, l.item_id, l.rcpt, &it, &found) < 0)
		return http_internal(r, "digest link");
	if (store_begin(r->st) < 0)
		return http_internal(r, "digest link begin");
	if (store_digest_nonce_use(r->st, l.nonce, time_now_ms(), l.expires * 1000, &used) < 0)
		return http_internal_rollback(r, "digest link nonce");
	if (used) {
		store_rollback(r->st);
		return used_page(r);
	}
	if (!found) {
		/* Nothing to do: the nonce stays unrecorded, the page says why. */
		store_rollback(r->st);
		return gone_page(r);
	}
	if (store_commit(r->st) < 0)
		return http_internal_rollback(r, "digest link nonce");

	memset(&f, 0, sizeof(f));
	id = l.item_id;
	f.owner_user_id = l.user_id;
	f.ids = &id;
	f.nids = 1;
	f.rcpt = l.rcpt;
	memset(&actor, 0, sizeof(actor));
	actor.user_id = l.user_id;
	actor.admin = 0;
	actor.name = l.rcpt;
	actor.via = "link";
	actor.client_addr = r->client_addr;
	actor.sender_list_max = r->h->conf->user_sender_list_max;
	memset(&res, 0, sizeof(res));
	if (quarantine_admin_apply(r->st, r->h->conf->data_dir,
				   l.action == DIGEST_DELETE ? QUARANTINE_DELETE : QUARANTINE_RELEASE,
				   &f, l.action == DIGEST_ALLOW ? QUARANTINE_LIST_ALLOW
								 : QUARANTINE_LIST_NONE,
				   &actor, &res, &status, err, sizeof(err)) < 0) {
		forget(r, &l);
		if (status == 404)
			return gone_page(r);
		if (status == 403)
			return page(r, MHD_HTTP_FORBIDDEN, "Not allowed",
				    "Messages held for this reason can only be released by an"
				    " administrator. Ask your mail administrator for help.", NULL);
		if (status == 422)
			return page(r, MHD_HTTP_UNPROCESSABLE_CONTENT, "Not possible", err, NULL);
		log_error(it.qid, "http", "digest link %s failed: %s",
			  digest_action_name(l.action), err);
		return page(r, MHD_HTTP_SERVICE_UNAVAILABLE, "Try again later",
			    "The action could not be completed right now. The link still works:"
			    " try again in a few minutes.", NULL);
	}
	if (res.recipients == 0) {
		forget(r, &l);
		return gone_page(r);
	}
	link_event(r, &l, it.qid);
	log_info(it.qid, "http", "digest link action=%s rcpt=<%s> from [%s]",
		 digest_action_name(l.action), l.rcpt, r->client_addr);
	describe(what, sizeof(what), &it, &l);
	if (l.action == DIGEST_DELETE)
		snprintf(text, sizeof(text), "Deleted %s.", what);
	else if (l.action == DIGEST_RELEASE)
		snprintf(text, sizeof(text), "Released %s; it is on its way to you.", what);
	else
		snprintf(text, sizeof(text), "Released %s; it is on its way to you. Future mail"
			 " from %s will not be held for you.", what, it.sender);
	return page(r, MHD_HTTP_OK, "Done", text, NULL);
}
