/*
 * http_messages: the message log (/api/v1/messages) and its statistics over
 * time (/api/v1/stats/messages), its top keys and likely address harvesting
 * (/api/v1/stats/top, /api/v1/stats/harvest), administrators only.  auth_user= lists what
 * one submission account sent (or tried to).
 *
 * Search is newest first by default (sort=ts for oldest first) and pages
 * by an opaque keyset cursor "<ts>.<id>" (or offset).  Statistics are
 * dense buckets of an hour or a day over [from, to), each with counts by
 * result and by check name, at most STATS_MAX_BUCKETS of them.
 */
#include "http_internal.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../store/store.h"
#include "../store/store_auth.h"
#include "../store/store_policy.h"

#define STATS_MAX_BUCKETS 2000
#define HOUR_MS 3600000LL
#define DAY_MS 86400000LL

static json_t *str_or_null(const char *s)
{
	return s ? json_string(s) : json_null();
}

static json_t *row_json(const struct store_log_row *r)
{
	json_t *rcpts = r->recipients ? json_loads(r->recipients, 0, NULL) : NULL;
	json_t *parts = r->score_parts ? json_loads(r->score_parts, 0, NULL) : NULL;
	json_t *o;

	if (!json_is_array(rcpts)) {
		json_decref(rcpts);
		rcpts = json_array();
	}
	if (!json_is_array(parts)) {
		json_decref(parts);
		parts = json_null();
	}
	o = json_pack("{s:I, s:I, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o,"
			 " s:o, s:o, s:o}",
			 "id", (json_int_t)r->id, "ts", (json_int_t)r->ts, "session_id",
			 str_or_null(r->session_id), "qid", str_or_null(r->qid), "client_addr",
			 str_or_null(r->client_addr), "client_name", str_or_null(r->client_name),
			 "helo", str_or_null(r->helo), "sender", str_or_null(r->sender),
			 "recipients", rcpts, "size",
			 r->size >= 0 ? json_integer(r->size) : json_null(), "result",
			 str_or_null(r->result), "code", str_or_null(r->code), "reason",
			 str_or_null(r->reason), "check_name", str_or_null(r->check_name),
			 "entry", str_or_null(r->entry), "auth_user", str_or_null(r->auth_user),
			 "tls", str_or_null(r->tls));
	/* Two decimals, as the X-Moat-Score field shows it. */
	json_object_set_new(o, "score", r->scored ? json_real(round(r->score * 100) / 100)
			    : json_null());
	json_object_set_new(o, "score_parts", parts);
	return o;
}

struct msg_list {
	json_t *items;
	int64_t limit;
	int64_t n;
	int64_t last_ts, last_id;
};

static int add_row(const struct store_log_row *row, void *arg)
{
	struct msg_list *l = arg;

	if (++l->n > l->limit)
		return 1;
	l->last_ts = row->ts;
	l->last_id = row->id;
	json_array_append_new(l->items, row_json(row));
	return 0;
}

enum MHD_Result http_messages_list(struct http_req *r)
{
	static const char *const args[] = { "limit", "offset", "cursor", "from", "to",
					    "client", "sender", "recipient", "result", "reason",
					    "qid", "check", "auth_user", "sort", NULL };
	static const char *const results[] = { "accepted", "refused", "deferred", "aborted",
					       NULL };
	static const char *const sorts[] = { "-ts", "ts", NULL };
	struct store_log_filter f;
	struct http_page p;
	struct msg_list l;
	int result, sort;
	char next[64];

	memset(&f, 0, sizeof(f));
	if (http_args_allow(r, args) < 0 || http_page(r, &p) < 0 ||
	    http_arg_time(r, "from", &f.from) < 0 || http_arg_time(r, "to", &f.to) < 0 ||
	    http_arg_str(r, "client", 64, &f.client) < 0 ||
	    http_arg_str(r, "sender", 320, &f.sender) < 0 ||
	    http_arg_str(r, "recipient", 320, &f.rcpt) < 0 ||
	    http_arg_str(r, "reason", 200, &f.reason) < 0 ||
	    http_arg_str(r, "qid", 64, &f.qid) < 0 ||
	    http_arg_str(r, "check", 64, &f.check_name) < 0 ||
	    http_arg_str(r, "auth_user", 320, &f.auth_user) < 0 ||
	    http_arg_pick(r, "result", results, &result) < 0 ||
	    http_arg_pick(r, "sort", sorts, &sort) < 0)
		return http_fail_reply(r);
	/* sender= (empty) is not allowed above; the null sender is sender=<> */
	if (f.sender != NULL && strcmp(f.sender, "<>") == 0)
		f.sender = "";
	if (f.from != 0 && f.to != 0 && f.to <= f.from)
		return http_error(r, MHD_HTTP_UNPROCESSABLE_CONTENT, "invalid_parameter", "to",
				  "to must be after from");
	if (p.cursor != NULL) {
		if (http_parse_cursor2(p.cursor, strlen(p.cursor), &f.cursor_ts, &f.cursor_id) < 0)
			return http_error(r, MHD_HTTP_UNPROCESSABLE_CONTENT, "invalid_parameter",
					  "cursor", "malformed cursor");
		f.has_cursor = 1;
	}
	f.result = result >= 0 ? results[result] : NULL;
	f.asc = sort == 1;
	f.limit = p.limit + 1;
	f.offset = p.offset;
	memset(&l, 0, sizeof(l));
	l.items = json_array();
	l.limit = p.limit;
	if (store_report_messages(r->st, &f, add_row, &l) < 0) {
		json_decref(l.items);
		return http_internal(r, "messages list");
	}
	snprintf(next, sizeof(next), "%lld.%lld", (long long)l.last_ts, (long long)l.last_id);
	return http_reply(r, MHD_HTTP_OK, http_list(l.items, l.n > p.limit ? next : NULL));
}

static int one_row(const struct store_log_row *row, void *arg)
{
	*(json_t **)arg = row_json(row);
	return 1;
}

enum MHD_Result http_messages_show(struct http_req *r)
{
	static const char *const args[] = { NULL };
	json_t *o = NULL;
	int64_t id;
	int found;

	if (http_args_allow(r, args) < 0 || http_param_id(r, 0, &id) < 0)
		return http_fail_reply(r);
	if (store_report_message_get(r->st, id, one_row, &o, &found) < 0) {
		json_decref(o);
		return http_internal(r, "messages show");
	}
	if (o == NULL)
		return http_error(r, MHD_HTTP_NOT_FOUND, "not_found", NULL, "no such entry");
	return http_reply(r, MHD_HTTP_OK, o);
}

struct stats {
	json_t *buckets;
	int64_t from;
	int64_t bucket_ms;
	const char *group;   /* by_result | by_check */
};

static int add_stat(int64_t bucket, const char *key, int64_t n, void *arg)
{
	struct stats *s = arg;
	int64_t i = (bucket - s->from) / s->bucket_ms;
	json_t *b = json_array_get(s->buckets, (size_t)i);

	if (i < 0 || b == NULL)
		return 0;
	json_object_set_new(json_object_get(b, s->group), key ? key : "none", json_integer(n));
	return 0;
}

enum MHD_Result http_stats_messages(struct http_req *r)
{
	static const char *const args[] = { "from", "to", "bucket", NULL };
	static const char *const buckets[] = { "hour", "day", NULL };
	int64_t from, to, now = time_now_ms(), n, i;
	int bucket;
	struct stats s;

	if (http_args_allow(r, args) < 0 || http_arg_time(r, "from", &from) < 0 ||
	    http_arg_time(r, "to", &to) < 0 || http_arg_pick(r, "bucket", buckets, &bucket) < 0)
		return http_fail_reply(r);
	s.bucket_ms = bucket == 1 ? DAY_MS : HOUR_MS;
	if (to == 0)
		to = now;
	if (from == 0)
		from = to - (bucket == 1 ? 30 * DAY_MS : DAY_MS);
	if (from < 0)
		from = 0;
	from -= from % s.bucket_ms;
	if (to <= from)
		return http_error(r, MHD_HTTP_UNPROCESSABLE_CONTENT, "invalid_parameter", "to",
				  "to must be after from");
	n = (to - from + s.bucket_ms - 1) / s.bucket_ms;
	if (n > STATS_MAX_BUCKETS)
		return http_error(r, MHD_HTTP_UNPROCESSABLE_CONTENT, "invalid_parameter", "from",
				  "at most %d buckets; narrow the range or use bucket=day",
				  STATS_MAX_BUCKETS);
	s.from = from;
	s.buckets = json_array();
	for (i = 0; i < n; i++)
		json_array_append_new(s.buckets,
				      json_pack("{s:I, s:{}, s:{}}", "start",
						(json_int_t)(from + i * s.bucket_ms), "by_result",
						"by_check"));
	s.group = "by_result";
	if (store_report_stats(r->st, from, to, s.bucket_ms, 0, add_stat, &s) < 0)
		goto fail;
	s.group = "by_check";
	if (store_report_stats(r->st, from, to, s.bucket_ms, 1, add_stat, &s) < 0)
		goto fail;
	return http_reply(r, MHD_HTTP_OK,
			  json_pack("{s:I, s:I, s:s, s:I, s:o}", "from", (json_int_t)from, "to",
				    (json_int_t)to, "bucket", buckets[bucket == 1 ? 1 : 0],
				    "bucket_ms", (json_int_t)s.bucket_ms, "buckets", s.buckets));
fail:
	json_decref(s.buckets);
	return http_internal(r, "stats");
}

/* ---- top keys (/api/v1/stats/top) ---- */

static int add_top(const char *key, int64_t n, void *arg)
{
	json_array_append_new(arg, json_pack("{s:s, s:I}", "key", key, "count", (json_int_t)n));
	return 0;
}

static int add_harvest(const struct store_harvest_row *row, void *arg)
{
	json_array_append_new(arg, json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:b}",
					     "client_addr", row->client_addr ? row->client_addr : "",
					     "unknown_recipients", (json_int_t)row->unknown,
					     "distinct_recipients", (json_int_t)row->distinct_rcpts,
					     "deferred", (json_int_t)row->deferred,
					     "first_ts", (json_int_t)row->first_ts,
					     "last_ts", (json_int_t)row->last_ts,
					     "denied", row->denied));
	return 0;
}

enum MHD_Result http_stats_harvest(struct http_req *r)
{
	static const char *const args[] = { "from", "to", "limit", NULL };
	int64_t from, to, limit;
	json_t *items;

	if (http_args_allow(r, args) < 0 ||
	    http_arg_time(r, "from", &from) < 0 || http_arg_time(r, "to", &to) < 0 ||
	    http_arg_i64(r, "limit", 1, 100, 10, &limit) < 0)
		return http_fail_reply(r);
	if (from > 0 && to > 0 && to <= from)
		return http_error(r, MHD_HTTP_UNPROCESSABLE_CONTENT, "invalid_parameter", "to",
				  "to must be after from");
	items = json_array();
	if (store_report_harvest(r->st, from, to, limit, add_harvest, items) < 0) {
		json_decref(items);
		return http_internal(r, "stats harvest");
	}
	return http_reply(r, MHD_HTTP_OK, http_list(items, NULL));
}

enum MHD_Result http_stats_top(struct http_req *r)
{
	static const char *const args[] = { "by", "result", "from", "to", "limit", NULL };
	static const char *const bys[] = { "client", "sender", "recipient_domain", "check",
					   NULL };
	static const enum store_top_by by_of[] = { STORE_TOP_CLIENT, STORE_TOP_SENDER,
						   STORE_TOP_RCPT_DOMAIN, STORE_TOP_CHECK };
	static const char *const results[] = { "refused", "deferred", "accepted", "aborted",
					       NULL };
	int64_t from, to, limit;
	int by, result;
	json_t *items;

	if (http_args_allow(r, args) < 0 || http_arg_pick(r, "by", bys, &by) < 0 ||
	    http_arg_pick(r, "result", results, &result) < 0 ||
	    http_arg_time(r, "from", &from) < 0 || http_arg_time(r, "to", &to) < 0 ||
	    http_arg_i64(r, "limit", 1, 100, 10, &limit) < 0)
		return http_fail_reply(r);
	if (by < 0)
		return http_error(r, MHD_HTTP_UNPROCESSABLE_CONTENT, "invalid_parameter", "by",
				  "by is required: client, sender, recipient_domain or check");
	if (from > 0 && to > 0 && to <= from)
		return http_error(r, MHD_HTTP_UNPROCESSABLE_CONTENT, "invalid_parameter", "to",
				  "to must be after from");
	items = json_array();
	if (store_report_top(r->st, by_of[by], from, to, result >= 0 ? results[result] : NULL,
			     limit, add_top, items) < 0) {
		json_decref(items);
		return http_internal(r, "stats top");
	}
	return http_reply(r, MHD_HTTP_OK, http_list(items, NULL));
}

/*
 * ---- per UTC day: verdicts per check (/api/v1/stats/checks) and DNSBL
 * results per site (/api/v1/stats/dnsbl) ----
 *
 * Both read the daily counters the mail side keeps (policy_stat, dnsbl_stat),
 * not the message log: dense buckets of the last `days` UTC days, today
 * included, each starting at 00:00 UTC.
 */
#define STATS_DAYS_DEFAULT 30
#define STATS_DAYS_MAX 366

struct daily {
	json_t *buckets;
	json_t *totals;
	int64_t first_day, last_day;
};

static int daily_init(struct http_req *r, struct daily *d)
{
	static const char *const args[] = { "days", NULL };
	int64_t days;

	if (http_args_allow(r, args) < 0 ||
	    http_arg_i64(r, "days", 1, STATS_DAYS_MAX, STATS_DAYS_DEFAULT, &days) < 0)
		return -1;
	d->last_day = time_now_ms() / DAY_MS;
	d->first_day = d->last_day - days + 1;
	d->buckets = json_array();
	d->totals = json_object();
	return 0;
}

static json_t *daily_bucket(struct daily *d, int64_t day, const char *member)
{
	size_t i;

	if (day < d->first_day || day > d->last_day)
		return NULL;
	i = (size_t)(day - d->first_day);
	/* buckets are made dense on first use, up to the day asked for */
	while (json_array_size(d->buckets) <= i)
		json_array_append_new(d->buckets,
				      json_pack("{s:I, s:{}}", "start",
						(json_int_t)((d->first_day +
							      (int64_t)json_array_size(d->buckets)) *
							     DAY_MS),
						member));
	return json_object_get(json_array_get(d->buckets, i), member);
}

static enum MHD_Result daily_reply(struct http_req *r, struct daily *d, const char *member)
{
	daily_bucket(d, d->last_day, member);
	return http_reply(r, MHD_HTTP_OK,
			  json_pack("{s:I, s:I, s:I, s:s, s:o, s:o}", "from",
				    (json_int_t)(d->first_day * DAY_MS), "to",
				    (json_int_t)((d->last_day + 1) * DAY_MS), "bucket_ms",
				    (json_int_t)DAY_MS, "time_zone", "UTC", "buckets", d->buckets,
				    "totals", d->totals));
}

static void daily_free(struct daily *d)
{
	json_decref(d->buckets);
	json_decref(d->totals);
}

static int add_check_day(const char *check, int64_t day, int64_t count, void *arg)
{
	struct daily *d = arg;
	json_t *counts = daily_bucket(d, day, "counts");
	json_t *t;

	if (counts == NULL)
		return 0;
	json_object_set_new(counts, check, json_integer(count));
	t = json_object_get(d->totals, check);
	json_object_set_new(d->totals, check,
			    json_integer((t ? json_integer_value(t) : 0) + count));
	return 0;
}

enum MHD_Result http_stats_checks(struct http_req *r)
{
	struct daily d;

	if (daily_init(r, &d) < 0)
		return http_fail_reply(r);
	if (store_policy_stats(r->st, d.first_day, add_check_day, &d) < 0) {
		daily_free(&d);
		return http_internal(r, "stats checks");
	}
	return daily_reply(r, &d, "counts");
}

static int add_dnsbl_day(const struct store_dnsbl_day *row, void *arg)
{
	struct daily *d = arg;
	json_t *zones = daily_bucket(d, row->day, "zones");
	json_t *t;

	if (zones == NULL)
		return 0;
	json_object_set_new(zones, row->zone,
			    json_pack("{s:I, s:I, s:I}", "queries", (json_int_t)row->queries,
				      "hits", (json_int_t)row->hits, "tempfails",
				      (json_int_t)row->tempfails));
	t = json_object_get(d->totals, row->zone);
	json_object_set_new(d->totals, row->zone,
			    json_integer((t ? json_integer_value(t) : 0) + row->hits));
	return 0;
}

enum MHD_Result http_stats_dnsbl(struct http_req *r)
{
	struct daily d;

	if (daily_init(r, &d) < 0)
		return http_fail_reply(r);
	if (store_policy_dnsbl_daily(r->st, d.first_day, d.last_day, add_dnsbl_day, &d) < 0) {
		daily_free(&d);
		return http_internal(r, "stats dnsbl");
	}
	return daily_reply(r, &d, "zones");
}
