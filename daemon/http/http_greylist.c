/*
 * http_greylist: the greylist's triplets and auto-allowed networks
 * (docs/score.md, "Greylisting"), administrators only.
 *
 *   GET    /api/v1/greylist                ?network&sender&recipient&state&limit&offset|cursor
 *                                          -> {"items", "next_cursor", "total"}
 *   DELETE /api/v1/greylist/{id}           -> 204 (the triplet starts over at its next message)
 *   DELETE /api/v1/greylist                {"confirm": true} -> {"deleted": n}
 *   GET    /api/v1/greylist/allowed        ?limit&offset|cursor
 *                                          -> {"items", "next_cursor", "total", "auto_allow"}
 *   DELETE /api/v1/greylist/allowed/{id}   -> 204 (the network is greylisted again)
 *
 * The network filter takes a client address or a network and matches the
 * network the check keys by, so an administrator can paste the address
 * from the message log.  The sender and recipient filters are exact and
 * case-insensitive, as the keys are stored lower-cased.  Rows past their
 * expiry are not shown (the check purges them a few at a time).  Every
 * deletion is audited in its own transaction.  Nothing here touches the
 * mail side: the next greylist check reads the tables afresh.
 */
#include "http_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../policy/policy_validate.h"
#include "../score/greylist.h"
#include "../store/store.h"
#include "../store/store_greylist.h"
#include "../store/store_policy.h"

#define GL_FILTER_MAX 320

static json_t *triplet_json(const struct store_greylist_row *t)
{
	return json_pack("{s:I, s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:o, s:I, s:I}",
			 "id", (json_int_t)t->id, "network", t->network, "sender", t->sender,
			 "recipient", t->rcpt, "state", t->passed_at > 0 ? "passed" : "waiting",
			 "first_seen", (json_int_t)t->first_seen, "last_seen",
			 (json_int_t)t->last_seen, "attempts", (json_int_t)t->attempts,
			 "passed_at", http_time(t->passed_at), "passes", (json_int_t)t->passes,
			 "expires", (json_int_t)t->expires);
}

static json_t *net_json(const struct store_greylist_net *n)
{
	return json_pack("{s:I, s:s, s:I, s:I, s:I, s:I}", "id", (json_int_t)n->id, "network",
			 n->network, "passes", (json_int_t)n->passes, "first_seen",
			 (json_int_t)n->first_seen, "last_seen", (json_int_t)n->last_seen,
			 "expires", (json_int_t)n->expires);
}

static int add_triplet(const struct store_greylist_row *t, void *arg)
{
	json_array_append_new(arg, triplet_json(t));
	return 0;
}

static int add_net(const struct store_greylist_net *n, void *arg)
{
	json_array_append_new(arg, net_json(n));
	return 0;
}

static int one_triplet(const struct store_greylist_row *t, void *arg)
{
	*(json_t **)arg = triplet_json(t);
	return 1;
}

static int one_net(const struct store_greylist_net *n, void *arg)
{
	*(json_t **)arg = net_json(n);
	return 1;
}

/* The page's offset from the cursor (an offset), when one is given; -1 bad. */
static int cursor_offset(struct http_page *p)
{
	if (p->cursor == NULL)
		return 0;
	return http_parse_i64(p->cursor, strlen(p->cursor), 0, 100000000, &p->offset);
}

/* The network filter: an address, or a network with its /24 or /64. */
static int network_filter(const char *in, char *out, size_t outsz)
{
	const char *slash = strchr(in, '/');
	size_t len = slash ? (size_t)(slash - in) : strlen(in);
	char want[8];

	if (greylist_network(in, len, out, outsz) < 0)
		return -1;
	if (slash == NULL)
		return 0;
	/* A prefix other than the one the check keys by would match nothing. */
	snprintf(want, sizeof(want), "/%s", strchr(out, ':') ? "64" : "24");
	return strcmp(slash, want) == 0 ? 0 : -1;
}

static void lower_in_place(char *s)
{
	for (; *s != '\0'; s++)
		if (*s >= 'A' && *s <= 'Z')
			*s = (char)(*s - 'A' + 'a');
}

enum MHD_Result http_greylist_list(struct http_req *r)
{
	static const char *const args[] = { "limit", "offset", "cursor", "network", "sender",
					    "recipient", "state", NULL };
	static const char *const states[] = { "waiting", "passed", NULL };
	struct store_greylist_filter f;
	char net[GREYLIST_NETWORK_MAX], sender[GL_FILTER_MAX + 1], rcpt[GL_FILTER_MAX + 1];
	char next[32];
	const char *vnet, *vsender, *vrcpt;
	struct http_page p;
	json_t *items, *body;
	int64_t total;
	int state;

	memset(&f, 0, sizeof(f));
	if (http_args_allow(r, args) < 0 || http_page(r, &p) < 0 ||
	    http_arg_str(r, "network", 64, &vnet) < 0 ||
	    http_arg_str(r, "sender", GL_FILTER_MAX, &vsender) < 0 ||
	    http_arg_str(r, "recipient", GL_FILTER_MAX, &vrcpt) < 0 ||
	    http_arg_pick(r, "state", states, &state) < 0)
		return http_fail_reply(r);
	if (cursor_offset(&p) < 0)
		return http_error(r, MHD_HTTP_UNPROCESSABLE_CONTENT, "invalid_parameter", "cursor",
				  "malformed cursor");
	if (vnet != NULL) {
		if (network_filter(vnet, net, sizeof(net)) < 0)
			return http_error(r, MHD_HTTP_UNPROCESSABLE_CONTENT, "invalid_parameter",
					  "network", "an IP address, a.b.c.0/24 or an IPv6 /64");
		f.network = net;
	}
	if (vsender != NULL) {
		strlcpy_s(sender, vsender, sizeof(sender));
		lower_in_place(sender);
		f.sender = sender;
	}
	if (vrcpt != NULL) {
		strlcpy_s(rcpt, vrcpt, sizeof(rcpt));
		lower_in_place(rcpt);
		f.rcpt = rcpt;
	}
	f.state = state == 0 ? STORE_GL_WAITING : state == 1 ? STORE_GL_PASSED : STORE_GL_ANY;
	f.now = time_now_ms();
	f.limit = p.limit;
	f.offset = p.offset;
	items = json_array();
	if (store_greylist_list(r->st, &f, add_triplet, items, &total) < 0) {
		json_decref(items);
		return http_internal(r, "greylist list");
	}
	snprintf(next, sizeof(next), "%lld", (long long)(p.offset + p.limit));
	body = http_list(items, p.offset + p.limit < total ? next : NULL);
	json_object_set_new(body, "total", json_integer(total));
	return http_reply(r, MHD_HTTP_OK, body);
}

/* The row deleted, as JSON for the audit row; *out NULL when there is none. */
static int triplet_before(struct store *st, int64_t id, json_t **out)
{
	int found;

	return store_greylist_row(st, id, one_triplet, out, &found);
}

static int net_before(struct store *st, int64_t id, json_t **out)
{
	int found;

	return store_greylist_net_row(st, id, one_net, out, &found);
}

/* DELETE of one triplet or one allowed network, with its audit row. */
static enum MHD_Result delete_one(struct http_req *r, const char *what,
				  int (*before_fn)(struct store *, int64_t, json_t **),
				  int (*del)(struct store *, int64_t, int *), const char *event,
				  const char *object)
{
	static const char *const args[] = { NULL };
	json_t *before = NULL;
	char oid[24];
	int64_t id;
	int deleted;

	if (http_args_allow(r, args) < 0)
		return http_fail_reply(r);
	if (http_param_id(r, 0, &id) < 0)
		return http_error(r, MHD_HTTP_NOT_FOUND, "not_found", NULL, "no such %s", what);
	if (store_begin(r->st) < 0)
		return http_internal(r, "greylist begin");
	if (before_fn(r->st, id, &before) < 0)
		return http_internal_rollback(r, "greylist get");
	if (before == NULL) {
		store_rollback(r->st);
		return http_error(r, MHD_HTTP_NOT_FOUND, "not_found", NULL, "no such %s", what);
	}
	if (del(r->st, id, &deleted) < 0) {
		json_decref(before);
		return http_internal_rollback(r, "greylist delete");
	}
	snprintf(oid, sizeof(oid), "%lld", (long long)id);
	return http_audit_commit_reply(r, event, object, oid, before, NULL, MHD_HTTP_NO_CONTENT,
				       event);
}

enum MHD_Result http_greylist_delete(struct http_req *r)
{
	return delete_one(r, "triplet", triplet_before, store_greylist_delete, "greylist.delete",
			  "greylist_triplet");
}

static const struct http_field confirm_fields[] = {
	{ "confirm", HJ_BOOL, 1, 0, 0, 0 },
};

enum MHD_Result http_greylist_delete_all(struct http_req *r)
{
	static const char *const args[] = { NULL };
	json_t *body;
	int64_t n;
	int yes;

	if (http_args_allow(r, args) < 0 ||
	    http_body(r, confirm_fields, ARRAY_LEN(confirm_fields), &body) < 0)
		return http_fail_reply(r);
	yes = json_is_true(json_object_get(body, "confirm"));
	json_decref(body);
	if (!yes)
		return http_error(r, MHD_HTTP_UNPROCESSABLE_CONTENT, "invalid_value", "confirm",
				  "confirm must be true to delete every triplet");
	if (store_begin(r->st) < 0)
		return http_internal(r, "greylist begin");
	if (store_greylist_delete_all(r->st, &n) < 0)
		return http_internal_rollback(r, "greylist delete all");
	return http_audit_commit_reply(r, "greylist.delete_all", "greylist_triplet", "*", NULL,
				       json_pack("{s:I}", "deleted", (json_int_t)n), MHD_HTTP_OK,
				       "greylist delete all");
}

/* The auto_allow setting in force: stored, else its default. */
static int auto_allow_setting(struct http_req *r, int64_t *out)
{
	const struct policy_setting_def *d = policy_setting_find("greylist_auto_allow");
	char v[32];
	int found;

	*out = 5;
	if (store_policy_setting(r->st, "greylist_auto_allow", v, sizeof(v), &found) < 0)
		return -1;
	if (!found) {
		if (d == NULL || d->def == NULL)
			return 0;
		strlcpy_s(v, d->def, sizeof(v));
	}
	if (http_parse_i64(v, strlen(v), 0, 1000000, out) < 0)
		*out = 5; /* a hand-written bad value: the snapshot uses the default too */
	return 0;
}

enum MHD_Result http_greylist_allowed_list(struct http_req *r)
{
	static const char *const args[] = { "limit", "offset", "cursor", NULL };
	struct http_page p;
	json_t *items, *body;
	int64_t total = 0, auto_allow;
	char next[32];

	if (http_args_allow(r, args) < 0 || http_page(r, &p) < 0)
		return http_fail_reply(r);
	if (cursor_offset(&p) < 0)
		return http_error(r, MHD_HTTP_UNPROCESSABLE_CONTENT, "invalid_parameter", "cursor",
				  "malformed cursor");
	if (auto_allow_setting(r, &auto_allow) < 0)
		return http_internal(r, "greylist setting");
	items = json_array();
	/* auto_allow 0: the feature is off and no network is allowed. */
	if (auto_allow > 0 &&
	    store_greylist_nets(r->st, auto_allow, time_now_ms(), p.limit, p.offset, add_net,
				items, &total) < 0) {
		json_decref(items);
		return http_internal(r, "greylist allowed");
	}
	snprintf(next, sizeof(next), "%lld", (long long)(p.offset + p.limit));
	body = http_list(items, p.offset + p.limit < total ? next : NULL);
	json_object_set_new(body, "total", json_integer(total));
	json_object_set_new(body, "auto_allow", json_integer(auto_allow));
	return http_reply(r, MHD_HTTP_OK, body);
}

enum MHD_Result http_greylist_allowed_delete(struct http_req *r)
{
	return delete_one(r, "network", net_before, store_greylist_net_delete,
			  "greylist.network_delete", "greylist_network");
}
