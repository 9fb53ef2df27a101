/*
 * http_quarantine: GET /api/v1/quarantine, administrators only — the
 * quarantined recipients, newest first, filtered by recipient, sender or
 * queue id, paged by cursor.  The message itself is
 * spool/quarantine/<qid>.  Release, preview and end-user access build on
 * this index (docs/rules.md "Quarantine").
 */
#include "http_internal.h"

#include <stdio.h>
#include <string.h>

#include "../store/store_quarantine.h"

struct q_page {
	json_t *items;
	int64_t n;
};

static int add_row(const struct store_quarantine_row *q, void *arg)
{
	struct q_page *p = arg;

	json_array_append_new(p->items, json_pack(
		"{s:s, s:s, s:s, s:s, s:s, s:I, s:o}", "qid", q->qid, "recipient", q->rcpt,
		"reason", q->reason, "sender", q->sender, "client_address", q->client_addr,
		"size", (json_int_t)q->size, "created_at", http_time(q->created_at)));
	p->n++;
	return 0;
}

enum MHD_Result http_quarantine_list(struct http_req *r)
{
	static const char *const args[] = { "limit", "offset", "cursor", "recipient", "sender",
					    "qid", NULL };
	struct store_quarantine_filter f;
	struct http_page pg;
	struct q_page p = { NULL, 0 };
	char next[32];

	memset(&f, 0, sizeof(f));
	if (http_args_allow(r, args) < 0 || http_page(r, &pg) < 0 ||
	    http_arg_str(r, "recipient", 320, &f.rcpt) < 0 ||
	    http_arg_str(r, "sender", 320, &f.sender) < 0 ||
	    http_arg_str(r, "qid", 32, &f.qid) < 0)
		return http_fail_reply(r);
	if (pg.cursor != NULL &&
	    http_parse_i64(pg.cursor, strlen(pg.cursor), 0, 100000000, &pg.offset) < 0)
		return http_error(r, MHD_HTTP_UNPROCESSABLE_CONTENT, "invalid_parameter", "cursor",
				  "malformed cursor");
	f.offset = pg.offset;
	f.limit = pg.limit + 1;
	p.items = json_array();
	if (store_quarantine_list(r->st, &f, add_row, &p) < 0) {
		json_decref(p.items);
		return http_internal(r, "quarantine list");
	}
	if (p.n > pg.limit)
		json_array_remove(p.items, json_array_size(p.items) - 1);
	snprintf(next, sizeof(next), "%lld", (long long)(pg.offset + pg.limit));
	return http_reply(r, MHD_HTTP_OK, http_list(p.items, p.n > pg.limit ? next : NULL));
}
