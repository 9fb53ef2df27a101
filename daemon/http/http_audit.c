/*
 * http_audit: the audit log (/api/v1/audit), administrators only, newest
 * first, paged by id cursor or offset.  Entries are written by the
 * handlers that change something (http_audit() in http.c), in the same
 * transaction as the change; this file only reads them.
 */
#include "http_internal.h"

#include <stdio.h>
#include <string.h>

#include "../store/store.h"
#include "../store/store_auth.h"

static json_t *json_or_null(const char *s)
{
	json_t *v = s ? json_loads(s, JSON_DECODE_ANY, NULL) : NULL;

	return v ? v : json_null();
}

struct audit_list {
	json_t *items;
	int64_t limit, n, last_id;
};

static int add_entry(const struct store_audit *a, void *arg)
{
	struct audit_list *l = arg;

	if (++l->n > l->limit)
		return 1;
	l->last_id = a->id;
	json_array_append_new(
		l->items,
		json_pack("{s:I, s:I, s:o, s:s, s:s, s:s, s:s, s:s, s:o, s:o, s:o}", "id",
			  (json_int_t)a->id, "ts", (json_int_t)a->ts, "actor_id",
			  a->actor_id > 0 ? json_integer(a->actor_id) : json_null(), "actor",
			  a->actor, "via", a->via, "client_addr", a->client_addr, "action",
			  a->action, "object_type", a->object_type, "object_id",
			  a->object_id ? json_string(a->object_id) : json_null(), "before",
			  json_or_null(a->before), "after", json_or_null(a->after)));
	return 0;
}

enum MHD_Result http_audit_list(struct http_req *r)
{
	static const char *const args[] = { "limit", "offset", "cursor", "from", "to",
					    "actor", "action", "object_type", NULL };
	struct store_audit_filter f;
	struct http_page p;
	struct audit_list l;
	char next[32];

	memset(&f, 0, sizeof(f));
	if (http_args_allow(r, args) < 0 || http_page(r, &p) < 0 ||
	    http_arg_time(r, "from", &f.from) < 0 || http_arg_time(r, "to", &f.to) < 0 ||
	    http_arg_str(r, "actor", 320, &f.actor) < 0 ||
	    http_arg_str(r, "action", 64, &f.action) < 0 ||
	    http_arg_str(r, "object_type", 64, &f.object_type) < 0)
		return http_fail_reply(r);
	if (p.cursor != NULL &&
	    http_parse_i64(p.cursor, strlen(p.cursor), 1, INT64_MAX, &f.before_id) < 0)
		return http_error(r, MHD_HTTP_UNPROCESSABLE_CONTENT, "invalid_parameter", "cursor",
				  "malformed cursor");
	f.limit = p.limit + 1;
	f.offset = p.offset;
	memset(&l, 0, sizeof(l));
	l.items = json_array();
	l.limit = p.limit;
	if (store_auth_audit_list(r->st, &f, add_entry, &l) < 0) {
		json_decref(l.items);
		return http_internal(r, "audit list");
	}
	snprintf(next, sizeof(next), "%lld", (long long)l.last_id);
	return http_reply(r, MHD_HTTP_OK, http_list(l.items, l.n > p.limit ? next : NULL));
}
