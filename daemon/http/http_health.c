/*
 * http_health: /healthz (unauthenticated: is the database reachable) and
 * /metrics (Prometheus text exposition 0.0.4, administrators or an admin
 * token: message-log rows by result, queue recipients by state, HTTP
 * requests by status, build info, uptime, the event counters of
 * util/stats.h, the cluster engines' states).  A node whose cluster engine
 * is unreachable answers /healthz 200 with "status": "degraded": it still
 * takes and relays mail.  Counts come from SQLite at
 * scrape time; HTTP counters are the server's atomics.
 */
#include "http_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../cluster/cluster.h"
#include "../store/store.h"
#include "../store/store_auth.h"
#include "../util/stats.h"

#define METRICS_MAX (64 * 1024)

/* {"postgresql": {...}, "redis": {...}} for the engines configured, or NULL. */
static json_t *cluster_json(void)
{
	json_t *o = NULL;
	int i;

	for (i = 0; i < CLUSTER_NENGINES; i++) {
		struct cluster_status cs;

		cluster_status_get((enum cluster_engine)i, &cs);
		if (cs.state == CLUSTER_OFF)
			continue;
		if (o == NULL)
			o = json_object();
		json_object_set_new(o, cluster_engine_name((enum cluster_engine)i),
				    json_pack("{s:s, s:I, s:I, s:I, s:s}", "state",
					      cluster_state_name(cs.state), "since_ms",
					      (json_int_t)cs.since_ms, "outages",
					      (json_int_t)cs.outages, "backlog",
					      (json_int_t)cs.backlog, "error", cs.error));
	}
	return o;
}

enum MHD_Result http_healthz(struct http_req *r)
{
	char err[256];
	json_t *body, *cl;

	if (store_ping(r->st, err, sizeof(err)) < 0)
		return http_reply(r, MHD_HTTP_SERVICE_UNAVAILABLE,
				  json_pack("{s:s, s:s}", "status", "error", "database",
					    "unavailable"));
	body = json_pack("{s:s, s:s, s:i}", "status", cluster_degraded() ? "degraded" : "ok",
			 "version", MOAT_VERSION, "schema", store_schema_version());
	cl = cluster_json();
	if (cl != NULL)
		json_object_set_new(body, "cluster", cl);
	return http_reply(r, MHD_HTTP_OK, body);
}

struct metric_ctx {
	struct dynbuf *b;
	const char *name;
	const char *label;
};

static int add_count(const char *key, int64_t n, void *arg)
{
	struct metric_ctx *m = arg;
	char esc[80];
	size_t i, j = 0;

	/* label values come from CHECK-constrained columns; escape anyway */
	for (i = 0; key != NULL && key[i] != '\0' && j + 2 < sizeof(esc); i++) {
		if (key[i] == '"' || key[i] == '\\' || key[i] == '\n')
			continue;
		esc[j++] = key[i];
	}
	esc[j] = '\0';
	return dynbuf_addf(m->b, "%s{%s=\"%s\"} %lld\n", m->name, m->label, esc,
			   (long long)n) < 0;
}

enum MHD_Result http_metrics(struct http_req *r)
{
	static const char *const args[] = { NULL };
	struct dynbuf b;
	struct metric_ctx m;
	size_t i;
	char *text;

	if (http_args_allow(r, args) < 0)
		return http_fail_reply(r);
	dynbuf_init(&b, METRICS_MAX);
	m.b = &b;
	dynbuf_addf(&b, "# HELP moat_build_info Build information.\n"
			"# TYPE moat_build_info gauge\n"
			"moat_build_info{version=\"%s\",schema=\"%d\"} 1\n",
		    MOAT_VERSION, store_schema_version());
	dynbuf_addf(&b, "# HELP moat_http_uptime_seconds Seconds since the HTTP server started.\n"
			"# TYPE moat_http_uptime_seconds gauge\n"
			"moat_http_uptime_seconds %lld\n",
		    (long long)((time_now_ms() - r->h->started_ms) / 1000));
	dynbuf_addf(&b, "# HELP moat_message_log_entries Message log entries by result.\n"
			"# TYPE moat_message_log_entries gauge\n");
	m.name = "moat_message_log_entries";
	m.label = "result";
	if (store_report_log_counts(r->st, add_count, &m) < 0)
		goto fail;
	dynbuf_addf(&b, "# HELP moat_queue_recipients Queue recipients by state.\n"
			"# TYPE moat_queue_recipients gauge\n");
	m.name = "moat_queue_recipients";
	m.label = "state";
	if (store_report_queue_counts(r->st, add_count, &m) < 0)
		goto fail;
	dynbuf_addf(&b, "# HELP moat_http_requests_total HTTP requests answered, by status.\n"
			"# TYPE moat_http_requests_total counter\n");
	for (i = 0; i < HTTP_NSTATUS; i++) {
		unsigned long long n = atomic_load(&r->h->requests[i]);

		if (i < HTTP_NSTATUS - 1)
			dynbuf_addf(&b, "moat_http_requests_total{code=\"%u\"} %llu\n",
				    http_counted_status[i], n);
		else
			dynbuf_addf(&b, "moat_http_requests_total{code=\"other\"} %llu\n", n);
	}
	for (i = 0; i < STATS_N; i++)
		dynbuf_addf(&b, "# HELP %s %s\n# TYPE %s counter\n%s %llu\n",
			    stats_name((enum stats_counter)i), stats_help((enum stats_counter)i),
			    stats_name((enum stats_counter)i), stats_name((enum stats_counter)i),
			    (unsigned long long)stats_get((enum stats_counter)i));
	dynbuf_addf(&b, "# HELP moat_cluster_engine_up 1 when the cluster engine answers, 0 "
			"when the node runs alone (degraded).\n"
			"# TYPE moat_cluster_engine_up gauge\n"
			"# HELP moat_cluster_backlog Work waiting for the cluster engine.\n"
			"# TYPE moat_cluster_backlog gauge\n"
			"# HELP moat_cluster_outages_total Times the engine became unreachable.\n"
			"# TYPE moat_cluster_outages_total counter\n");
	for (i = 0; i < CLUSTER_NENGINES; i++) {
		struct cluster_status cs;
		const char *en = cluster_engine_name((enum cluster_engine)i);

		cluster_status_get((enum cluster_engine)i, &cs);
		if (cs.state == CLUSTER_OFF)
			continue;
		dynbuf_addf(&b, "moat_cluster_engine_up{engine=\"%s\"} %d\n"
				"moat_cluster_backlog{engine=\"%s\"} %lld\n"
				"moat_cluster_outages_total{engine=\"%s\"} %lld\n",
			    en, cs.state == CLUSTER_UP, en, (long long)cs.backlog, en,
			    (long long)cs.outages);
	}
	if (b.data == NULL)
		goto fail;
	text = b.data; /* ownership passes to the reply */
	return http_reply_text(r, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8",
			       text);
fail:
	dynbuf_free(&b);
	return http_internal(r, "metrics");
}
