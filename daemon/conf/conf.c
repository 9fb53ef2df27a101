/*
 * conf: table-driven parser of the bootstrap config.  See conf.h.
 *
 * Syntax: "key = value" per line, '#' starts a comment line, blank lines are
 * ignored, values are taken verbatim after trimming.  A file larger than
 * CONF_MAX_FILE or a line longer than CONF_MAX_LINE is refused.
 */
#include "conf.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../util/util.h"

#define CONF_MAX_FILE (1024 * 1024)
#define CONF_MAX_LINE 4096

enum conf_type { T_STRING, T_INT, T_SIZE, T_DURATION, T_LISTEN_LIST, T_LISTEN,
		 T_LEVEL, T_HOSTNAME, T_BOOL, T_ENUM };

struct conf_key {
	const char *name;
	enum conf_type type;
	size_t offset;
	size_t size;         /* for strings */
	const char *def;     /* default, in config syntax */
	int64_t min;
	int64_t max;
};

/* The values a T_ENUM key takes, "a|b|c". */
static const char *enum_choices(const char *name)
{
	if (strcmp(name, "spool_sync") == 0)
		return "filesystem|file";
	if (strcmp(name, "folder_method") == 0)
		return "header|plus|both";
	if (strcmp(name, "folder_plus_separator") == 0)
		return ".|/|_|-";
	return "opportunistic|off|verify"; /* the TLS policy keys */
}

#define OFF(f) offsetof(struct conf, f)
#define STR(f) OFF(f), sizeof(((struct conf *)0)->f)
#define NUM(f) OFF(f), 0

static const struct conf_key keys[] = {
	{ "data_dir", T_STRING, STR(data_dir), "./moat-data", 1, 0 },
	{ "hostname", T_HOSTNAME, STR(hostname), "", 0, 0 },
	{ "user", T_STRING, STR(user), "", 0, 0 },
	{ "log", T_STRING, STR(log), "stderr", 1, 0 },
	{ "log_level", T_LEVEL, STR(log_level), "info", 0, 0 },
	{ "smtp_listen", T_LISTEN_LIST, NUM(smtp_listen), "127.0.0.1:2525", 0, 0 },
	{ "http_listen", T_LISTEN, NUM(http_listen), "127.0.0.1:8080", 0, 0 },
	{ "greet_pause", T_DURATION, NUM(greet_pause_ms), "0", 0, 60000 },
	{ "max_command_line", T_SIZE, NUM(max_command_line), "512", 512, 65536 },
	{ "max_text_line", T_SIZE, NUM(max_text_line), "1000", 1000, 1048576 },
	{ "max_recipients", T_INT, NUM(max_recipients), "100", 1, 100000 },
	{ "max_message_size", T_SIZE, NUM(max_message_size), "25M", 1024,
	  (int64_t)2 * 1024 * 1024 * 1024 },
	{ "max_errors", T_INT, NUM(max_errors), "10", 1, 1000 },
	{ "max_refusals", T_INT, NUM(max_refusals), "1000", 1, 1000000 },
	{ "max_refusals_unauth", T_INT, NUM(max_refusals_unauth), "100", 1, 1000000 },
	{ "timeline_max_bytes", T_SIZE, NUM(timeline_max_bytes), "16k", 1024, 262144 },
	{ "max_sessions", T_INT, NUM(max_sessions), "1000", 1, 100000 },
	{ "max_sessions_per_client", T_INT, NUM(max_sessions_per_client), "20", 1, 100000 },
	{ "idle_timeout", T_DURATION, NUM(idle_timeout_ms), "5m", 100, 3600000 },
	{ "data_timeout", T_DURATION, NUM(data_timeout_ms), "3m", 100, 3600000 },
	{ "session_timeout", T_DURATION, NUM(session_timeout_ms), "1h", 1000, 86400000 },
	{ "shutdown_timeout", T_DURATION, NUM(shutdown_timeout_ms), "10s", 0, 600000 },
	{ "data_min_rate", T_SIZE, NUM(data_min_rate), "500", 1, 1024 * 1024 * 1024 },
	{ "stress_sessions", T_INT, NUM(stress_sessions), "80", 1, 100 },
	{ "stress_idle_timeout", T_DURATION, NUM(stress_idle_timeout_ms), "10s", 100, 3600000 },
	{ "stress_data_timeout", T_DURATION, NUM(stress_data_timeout_ms), "10s", 100, 3600000 },
	{ "max_header_size", T_SIZE, NUM(max_header_size), "100k", 1000, 64 * 1024 * 1024 },
	{ "max_header_count", T_INT, NUM(max_header_count), "1000", 10, 100000 },
	{ "mime_max_depth", T_INT, NUM(mime_max_depth), "20", 1, 1000 },
	{ "mime_max_parts", T_INT, NUM(mime_max_parts), "500", 1, 100000 },
	{ "mime_max_part_text", T_SIZE, NUM(mime_max_part_text), "1M", 1024, 256 * 1024 * 1024 },
	{ "mime_max_text", T_SIZE, NUM(mime_max_text), "4M", 1024, 1024 * 1024 * 1024 },
	{ "mime_max_time", T_DURATION, NUM(mime_max_time_ms), "2s", 10, 600000 },
	{ "content_workers", T_INT, NUM(content_workers), "1", 1, 16 },
	{ "mailbox_rules_cache", T_SIZE, NUM(mailbox_rules_cache), "256M", 1024 * 1024,
	  (int64_t)64 * 1024 * 1024 * 1024 },
	{ "spool_sync", T_ENUM, STR(spool_sync), "filesystem", 0, 0 },
	{ "spool_min_free", T_SIZE, NUM(spool_min_free), "0", 0,
	  (int64_t)1024 * 1024 * 1024 * 1024 },
	{ "http_max_connections", T_INT, NUM(http_max_connections), "1024", 1, 65536 },
	{ "http_max_connections_per_ip", T_INT, NUM(http_max_connections_per_ip), "20", 0,
	  65536 },
	{ "http_header_timeout", T_DURATION, NUM(http_header_timeout_ms), "10s", 1000,
	  3600000 },
	{ "http_timeout", T_DURATION, NUM(http_timeout_ms), "30s", 1000, 3600000 },
	{ "http_threads", T_INT, NUM(http_threads), "4", 1, 64 },
	{ "http_max_body", T_SIZE, NUM(http_max_body), "1M", 1024, 64 * 1024 * 1024 },
	{ "http_max_page", T_INT, NUM(http_max_page), "500", 1, 10000 },
	{ "user_sender_list_max", T_INT, NUM(user_sender_list_max), "1000", 1, 100000 },
	{ "rules_max_body", T_SIZE, NUM(rules_max_body), "16M", 1024, 256 * 1024 * 1024 },
	{ "mailbox_rules_max", T_INT, NUM(mailbox_rules_max), "10000", 1, 100000 },
	{ "mailbox_rule_value_max", T_INT, NUM(mailbox_rule_value_max), "4096", 16, 4096 },
	{ "mailbox_rules_total_bytes", T_SIZE, NUM(mailbox_rules_total_bytes), "16M", 64 * 1024,
	  256 * 1024 * 1024 },
	{ "http_session_idle", T_DURATION, NUM(http_session_idle_ms), "30m", 1000,
	  (int64_t)30 * 86400000 },
	{ "http_session_lifetime", T_DURATION, NUM(http_session_lifetime_ms), "12h", 1000,
	  (int64_t)365 * 86400000 },
	{ "http_login_window", T_DURATION, NUM(http_login_window_ms), "15m", 1000, 86400000 },
	{ "http_login_max_per_addr", T_INT, NUM(http_login_max_per_addr), "20", 1, 1000000 },
	{ "http_login_max_per_account", T_INT, NUM(http_login_max_per_account), "100", 1,
	  1000000 },
	{ "login_throttle_after", T_INT, NUM(login_throttle_after), "5", 1, 1000 },
	{ "login_throttle_delay", T_DURATION, NUM(login_throttle_delay_ms), "2s", 100, 3600000 },
	{ "login_throttle_delay_max", T_DURATION, NUM(login_throttle_delay_max_ms), "15m", 1000,
	  86400000 },
	{ "http_tls_cert", T_STRING, STR(http_tls_cert), "", 0, 0 },
	{ "http_tls_key", T_STRING, STR(http_tls_key), "", 0, 0 },
	{ "http_behind_tls_proxy", T_BOOL, NUM(http_behind_tls_proxy), "no", 0, 1 },
	{ "webui_dir", T_STRING, STR(webui_dir), "./webui/dist", 0, 0 },
	/* dns */
	{ "dns_servers", T_STRING, STR(dns_servers), "", 0, 0 },
	{ "dns_timeout", T_DURATION, NUM(dns_timeout_ms), "5s", 100, 60000 },
	{ "dns_tries", T_INT, NUM(dns_tries), "2", 1, 10 },
	{ "dns_cache_entries", T_INT, NUM(dns_cache_entries), "100000", 0, 10000000 },
	/* queue and delivery */
	{ "delivery", T_BOOL, NUM(delivery), "yes", 0, 1 },
	{ "downstream", T_STRING, STR(downstream), "", 0, 0 },
	{ "smarthost", T_STRING, STR(smarthost), "", 0, 0 },
	{ "mx_port", T_INT, NUM(mx_port), "25", 1, 65535 },
	{ "downstream_tls", T_ENUM, STR(downstream_tls), "opportunistic", 0, 0 },
	{ "delivery_tls", T_ENUM, STR(delivery_tls), "opportunistic", 0, 0 },
	{ "folder_method", T_ENUM, STR(folder_method), "header", 0, 0 },
	{ "folder_plus_separator", T_ENUM, STR(folder_plus_separator), ".", 0, 0 },
	{ "delivery_ca_file", T_STRING, STR(delivery_ca_file), "", 0, 0 },
	{ "queue_lifetime", T_DURATION, NUM(queue_lifetime_ms), "5d", 60000,
	  (int64_t)365 * 86400000 },
	{ "dead_retention", T_DURATION, NUM(dead_retention_ms), "7d", 0,
	  (int64_t)365 * 86400000 },
	{ "quarantine_lifetime", T_DURATION, NUM(quarantine_lifetime_ms), "14d", 3600000,
	  (int64_t)365 * 86400000 },
	{ "quarantine_purge_interval", T_DURATION, NUM(quarantine_purge_interval_ms), "5m", 1000,
	  86400000 },
	{ "event_retention", T_DURATION, NUM(event_retention_ms), "90d", 3600000,
	  (int64_t)3650 * 86400000 },
	{ "retry_min", T_DURATION, NUM(retry_min_ms), "5m", 100, 86400000 },
	{ "retry_max", T_DURATION, NUM(retry_max_ms), "1h", 100, (int64_t)7 * 86400000 },
	{ "queue_poll", T_DURATION, NUM(queue_poll_ms), "1s", 50, 60000 },
	{ "delivery_concurrency", T_INT, NUM(delivery_concurrency), "100", 1, 10000 },
	{ "delivery_concurrency_per_destination", T_INT,
	  NUM(delivery_concurrency_per_destination), "20", 1, 10000 },
	{ "delivery_connect_timeout", T_DURATION, NUM(delivery_connect_timeout_ms), "30s", 100,
	  600000 },
	{ "delivery_command_timeout", T_DURATION, NUM(delivery_command_timeout_ms), "5m", 100,
	  3600000 },
	{ "delivery_data_timeout", T_DURATION, NUM(delivery_data_timeout_ms), "2m", 100,
	  3600000 },
	{ "delivery_block_timeout", T_DURATION, NUM(delivery_block_timeout_ms), "3m", 100,
	  3600000 },
	{ "delivery_dot_timeout", T_DURATION, NUM(delivery_dot_timeout_ms), "10m", 100,
	  3600000 },
	{ "hold_undeliverable", T_BOOL, NUM(hold_undeliverable), "yes", 0, 1 },
	{ "dsn_to_local_senders", T_BOOL, NUM(dsn_to_local_senders), "no", 0, 1 },
	/* STARTTLS, AUTH, submission */
	{ "tls_cert", T_STRING, STR(tls_cert), "", 0, 0 },
	{ "tls_key", T_STRING, STR(tls_key), "", 0, 0 },
	{ "submission_listen", T_LISTEN_LIST, NUM(submission_listen), "", 0, 0 },
	{ "auth_allow_plaintext", T_BOOL, NUM(auth_allow_plaintext), "no", 0, 1 },
	{ "auth_fail_delay", T_DURATION, NUM(auth_fail_delay_ms), "1s", 0, 60000 },
	{ "auth_fail_window", T_DURATION, NUM(auth_fail_window_ms), "15m", 1000, 86400000 },
	{ "auth_fail_max_per_addr", T_INT, NUM(auth_fail_max_per_addr), "10", 1, 1000000 },
	{ "auth_fail_max_per_account", T_INT, NUM(auth_fail_max_per_account), "100", 1,
	  1000000 },
	{ "auth_cache_ttl", T_DURATION, NUM(auth_cache_ttl_ms), "5m", 0, 86400000 },
	{ "auth_cache_negative_ttl", T_DURATION, NUM(auth_cache_negative_ttl_ms), "1m", 0,
	  86400000 },
	{ "auth_cache_size", T_INT, NUM(auth_cache_size), "10000", 0, 1000000 },
	{ "auth_workers", T_INT, NUM(auth_workers), "2", 1, 16 },
	/* account defence */
	/* "second,minute,hour,day" (or "minute,hour,day"), checked by account_parse_limits() */
	{ "limit_account_messages", T_STRING, STR(limit_account_messages), "10,300,1200,5000",
	  0, 0 },
	{ "limit_account_recipients", T_STRING, STR(limit_account_recipients),
	  "0,2000,10000,20000", 0, 0 },
	{ "limit_client_messages", T_STRING, STR(limit_client_messages), "0,0,0,0", 0, 0 },
	{ "limit_client_recipients", T_STRING, STR(limit_client_recipients), "0,0,0,0", 0, 0 },
	{ "account_window", T_DURATION, NUM(account_window_ms), "10m", 1000, 86400000 },
	{ "account_suspend_score", T_INT, NUM(account_suspend_score), "20", 0, 1000000 },
	{ "account_volume_floor", T_INT, NUM(account_volume_floor), "50", 1, 1000000 },
	{ "recipient_domain_check", T_BOOL, NUM(recipient_domain_check), "yes", 0, 1 },
	{ "auth_bind_from_header", T_BOOL, NUM(auth_bind_from_header), "no", 0, 1 },
	/* quarantine digests (daemon/digest) */
	{ "digest_url_base", T_STRING, STR(digest_url_base), "", 0, 0 },
	{ "digest_link_lifetime", T_DURATION, NUM(digest_link_lifetime_ms), "7d", 60000,
	  (int64_t)90 * 86400000 },
	{ "digest_hour", T_INT, NUM(digest_hour), "7", 0, 23 },
	{ "digest_weekday", T_INT, NUM(digest_weekday), "1", 0, 6 },
	{ "digest_check", T_DURATION, NUM(digest_check_ms), "5m", 1000, 86400000 },
	{ "digest_max_items", T_INT, NUM(digest_max_items), "500", 1, 10000 },
	/* account alerts (daemon/alert): the webhook's bounds */
	{ "alert_webhook_timeout", T_DURATION, NUM(alert_webhook_timeout_ms), "5s", 1000, 60000 },
	{ "alert_webhook_retry", T_DURATION, NUM(alert_webhook_retry_ms), "1m", 1000, 3600000 },
	{ "cluster_node", T_INT, NUM(cluster_node), "0", 0, 1023 },
	{ "cluster_pg", T_STRING, STR(cluster_pg), "", 0, 0 },
	{ "cluster_redis", T_STRING, STR(cluster_redis), "", 0, 0 },
	{ "cluster_redis_timeout", T_DURATION, NUM(cluster_redis_timeout_ms), "250ms", 10, 10000 },
	{ "cluster_retry", T_DURATION, NUM(cluster_retry_ms), "1s", 100, 60000 },
};

static const struct conf_key *find_key(const char *name)
{
	size_t i;

	for (i = 0; i < ARRAY_LEN(keys); i++)
		if (strcmp(keys[i].name, name) == 0)
			return &keys[i];
	return NULL;
}

struct unit {
	const char *suffix;
	int64_t mul;
};

static const struct unit size_units[] = {
	{ "", 1 }, { "k", 1024 }, { "K", 1024 }, { "M", 1024 * 1024 },
	{ "G", 1024 * 1024 * 1024 },
};

static const struct unit time_units[] = {
	{ "", 1000 }, { "ms", 1 }, { "s", 1000 }, { "m", 60000 }, { "h", 3600000 },
	{ "d", 86400000 },
};

/* Parse a non-negative decimal with an optional unit suffix. */
static int parse_scaled(const char *v, const struct unit *units, size_t nunits,
			int64_t *out)
{
	char *end;
	unsigned long long n;
	size_t i;

	if (*v < '0' || *v > '9')
		return -1;
	errno = 0;
	n = strtoull(v, &end, 10);
	if (errno != 0)
		return -1;
	for (i = 0; i < nunits; i++) {
		if (strcmp(end, units[i].suffix) == 0) {
			/* Out of int64 range is out of every key's range: refuse, never wrap. */
			if (n > (unsigned long long)(INT64_MAX / units[i].mul))
				return -1;
			*out = (int64_t)n * units[i].mul;
			return 0;
		}
	}
	return -1;
}

static int parse_listen(const char *v, struct conf_listen *l)
{
	const char *colon;
	const char *host;
	size_t hostlen;
	char *end;
	long port;
	unsigned char addr[16];
	char tmp[64];

	if (v[0] == '[') {
		const char *close = strchr(v, ']');

		if (close == NULL || close[1] != ':')
			return -1;
		host = v + 1;
		hostlen = (size_t)(close - host);
		colon = close + 1;
	} else {
		colon = strrchr(v, ':');
		if (colon == NULL)
			return -1;
		host = v;
		hostlen = (size_t)(colon - v);
	}
	if (hostlen == 0 || hostlen >= sizeof(tmp))
		return -1;
	memcpy(tmp, host, hostlen);
	tmp[hostlen] = '\0';
	if (inet_pton(AF_INET, tmp, addr) != 1 && inet_pton(AF_INET6, tmp, addr) != 1)
		return -1;
	errno = 0;
	port = strtol(colon + 1, &end, 10);
	if (colon[1] == '\0' || *end != '\0' || errno != 0 || port < 0 || port > 65535)
		return -1;
	strlcpy_s(l->host, tmp, sizeof(l->host));
	l->port = (int)port;
	return 0;
}

static int set_value(struct conf *c, const struct conf_key *k, const char *v,
		     char *why, size_t whysz)
{
	char *base = (char *)c;
	int64_t n = 0;

	switch (k->type) {
	case T_STRING:
	case T_HOSTNAME:
		if (strlen(v) >= k->size) {
			snprintf(why, whysz, "value longer than %zu characters", k->size - 1);
			return -1;
		}
		if (k->min > 0 && v[0] == '\0') {
			snprintf(why, whysz, "must not be empty");
			return -1;
		}
		if (k->type == T_HOSTNAME && strspn(v, "abcdefghijklmnopqrstuvwxyz"
			"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") != strlen(v)) {
			snprintf(why, whysz, "not a host name: '%s'", v);
			return -1;
		}
		strlcpy_s(base + k->offset, v, k->size);
		return 0;
	case T_LEVEL:
		if (strcmp(v, "debug") != 0 && strcmp(v, "info") != 0 &&
		    strcmp(v, "warn") != 0 && strcmp(v, "error") != 0) {
			snprintf(why, whysz, "must be debug, info, warn or error");
			return -1;
		}
		strlcpy_s(base + k->offset, v, k->size);
		return 0;
	case T_BOOL:
		if (strcmp(v, "yes") == 0 || strcmp(v, "on") == 0 || strcmp(v, "true") == 0) {
			n = 1;
		} else if (strcmp(v, "no") == 0 || strcmp(v, "off") == 0 ||
			   strcmp(v, "false") == 0) {
			n = 0;
		} else {
			snprintf(why, whysz, "must be yes or no: '%s'", v);
			return -1;
		}
		break;
	case T_ENUM: {
		const char *p = enum_choices(k->name);
		size_t vlen = strlen(v);

		while (p != NULL && *p != '\0') {
			size_t len = strcspn(p, "|");

			if (len == vlen && strncmp(p, v, len) == 0 && vlen < k->size) {
				strlcpy_s(base + k->offset, v, k->size);
				return 0;
			}
			p += len;
			if (*p == '|')
				p++;
		}
		snprintf(why, whysz, "must be one of %s: '%s'", enum_choices(k->name), v);
		return -1;
	}
	case T_INT:
		if (parse_scaled(v, size_units, 1, &n) < 0) {
			snprintf(why, whysz, "not a number: '%s'", v);
			return -1;
		}
		break;
	case T_SIZE:
		if (parse_scaled(v, size_units, ARRAY_LEN(size_units), &n) < 0) {
			snprintf(why, whysz, "not a size (number with k, M or G): '%s'", v);
			return -1;
		}
		break;
	case T_DURATION:
		if (parse_scaled(v, time_units, ARRAY_LEN(time_units), &n) < 0) {
			snprintf(why, whysz, "not a duration (number with ms, s, m, h or d): '%s'", v);
			return -1;
		}
		break;
	case T_LISTEN: {
		struct conf_listen l;

		if (parse_listen(v, &l) < 0) {
			snprintf(why, whysz, "not an address:port: '%s'", v);
			return -1;
		}
		*(struct conf_listen *)(base + k->offset) = l;
		return 0;
	}
	case T_LISTEN_LIST: {
		struct conf_listen list[CONF_MAX_LISTEN];
		char item[128];
		const char *p = v;
		int count = 0;

		while (*p != '\0') {
			size_t len = strcspn(p, ",");
			size_t s = 0;

			while (s < len && p[s] == ' ')
				s++;
			while (len > s && p[len - 1] == ' ')
				len--;
			if (len - s >= sizeof(item) || count == CONF_MAX_LISTEN) {
				snprintf(why, whysz, "at most %d addresses", CONF_MAX_LISTEN);
				return -1;
			}
			memcpy(item, p + s, len - s);
			item[len - s] = '\0';
			if (parse_listen(item, &list[count]) < 0) {
				snprintf(why, whysz, "not an address:port: '%s'", item);
				return -1;
			}
			count++;
			p += strcspn(p, ",");
			if (*p == ',')
				p++;
		}
		if (k->offset == OFF(submission_listen)) {
			/* May be empty: no submission listener. */
			memcpy(c->submission_listen, list, sizeof(list[0]) * (size_t)count);
			c->submission_listen_count = count;
			return 0;
		}
		if (count == 0) {
			snprintf(why, whysz, "needs at least one address:port");
			return -1;
		}
		memcpy(c->smtp_listen, list, sizeof(list[0]) * (size_t)count);
		c->smtp_listen_count = count;
		return 0;
	}
	}
	if (n < k->min || n > k->max) {
		snprintf(why, whysz, "'%s' is out of range [%lld, %lld]", v,
			 (long long)k->min, (long long)k->max);
		return -1;
	}
	*(int64_t *)(base + k->offset) = n;
	return 0;
}

void conf_defaults(struct conf *c)
{
	char why[256];
	size_t i;

	memset(c, 0, sizeof(*c));
	for (i = 0; i < ARRAY_LEN(keys); i++)
		if (set_value(c, &keys[i], keys[i].def, why, sizeof(why)) < 0)
			abort(); /* a default that does not parse is a build bug */
	if (gethostname(c->hostname, sizeof(c->hostname)) < 0 || c->hostname[0] == '\0')
		strlcpy_s(c->hostname, "localhost", sizeof(c->hostname));
	c->hostname[sizeof(c->hostname) - 1] = '\0';
}

int conf_set(struct conf *c, const char *key, const char *value, char *err,
	     size_t errsz)
{
	const struct conf_key *k = find_key(key);
	char why[256];

	if (k == NULL) {
		snprintf(err, errsz, "%s: unknown key", key);
		return -1;
	}
	if (set_value(c, k, value, why, sizeof(why)) < 0) {
		snprintf(err, errsz, "%s: %s", key, why);
		return -1;
	}
	return 0;
}

static const char *trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
		*--e = '\0';
	return s;
}

int conf_parse(struct conf *c, const char *buf, size_t len, const char *fname,
	       char *err, size_t errsz)
{
	char line[CONF_MAX_LINE + 1];
	size_t pos = 0;
	int lineno = 0;

	if (len > CONF_MAX_FILE) {
		snprintf(err, errsz, "%s: larger than %d bytes", fname, CONF_MAX_FILE);
		return -1;
	}
	while (pos < len) {
		const char *nl = memchr(buf + pos, '\n', len - pos);
		size_t llen = nl ? (size_t)(nl - (buf + pos)) : len - pos;
		const char *key;
		const char *value;
		char *eq;
		char sub[CONF_MAX_LINE + 300];

		lineno++;
		if (llen > CONF_MAX_LINE) {
			snprintf(err, errsz, "%s:%d: line longer than %d characters",
				 fname, lineno, CONF_MAX_LINE);
			return -1;
		}
		if (memchr(buf + pos, '\0', llen) != NULL) {
			snprintf(err, errsz, "%s:%d: NUL character", fname, lineno);
			return -1;
		}
		memcpy(line, buf + pos, llen);
		line[llen] = '\0';
		pos += llen + (nl ? 1 : 0);

		key = trim(line);
		if (*key == '\0' || *key == '#')
			continue;
		eq = strchr(line, '=');
		if (eq == NULL) {
			int keylen = (int)strcspn(key, " \t");

			snprintf(err, errsz, "%s:%d: %.*s: expected 'key = value'", fname,
				 lineno, keylen, key);
			return -1;
		}
		*eq = '\0';
		key = trim(line);
		value = trim(eq + 1);
		if (conf_set(c, key, value, sub, sizeof(sub)) < 0) {
			snprintf(err, errsz, "%s:%d: %s", fname, lineno, sub);
			return -1;
		}
	}
	return 0;
}

int conf_load_file(struct conf *c, const char *path, char *err, size_t errsz)
{
	char *buf;
	size_t len = 0;
	ssize_t n;
	int fd;
	int rc;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errsz, "%s: %s", path, strerror(errno));
		return -1;
	}
	buf = xmalloc(CONF_MAX_FILE + 1);
	while ((n = read(fd, buf + len, CONF_MAX_FILE + 1 - len)) > 0) {
		len += (size_t)n;
		if (len > CONF_MAX_FILE)
			break;
	}
	close(fd);
	if (n < 0) {
		snprintf(err, errsz, "%s: %s", path, strerror(errno));
		free(buf);
		return -1;
	}
	rc = conf_parse(c, buf, len, path, err, errsz);
	free(buf);
	return rc;
}

static void dump_listen(char *out, size_t outsz, const struct conf_listen *l)
{
	if (strchr(l->host, ':') != NULL)
		snprintf(out, outsz, "[%s]:%d", l->host, l->port);
	else
		snprintf(out, outsz, "%s:%d", l->host, l->port);
}

void conf_dump(const struct conf *c, int fd)
{
	const char *base = (const char *)c;
	size_t i;

	for (i = 0; i < ARRAY_LEN(keys); i++) {
		const struct conf_key *k = &keys[i];
		char val[1200];
		int j;

		switch (k->type) {
		case T_STRING:
		case T_HOSTNAME:
		case T_LEVEL:
		case T_ENUM:
			snprintf(val, sizeof(val), "%s", base + k->offset);
			break;
		case T_BOOL:
			snprintf(val, sizeof(val), "%s",
				 *(const int64_t *)(base + k->offset) ? "yes" : "no");
			break;
		case T_INT:
		case T_SIZE:
			snprintf(val, sizeof(val), "%lld",
				 (long long)*(const int64_t *)(base + k->offset));
			break;
		case T_DURATION:
			snprintf(val, sizeof(val), "%lldms",
				 (long long)*(const int64_t *)(base + k->offset));
			break;
		case T_LISTEN:
			dump_listen(val, sizeof(val),
				    (const struct conf_listen *)(base + k->offset));
			break;
		case T_LISTEN_LIST:
			val[0] = '\0';
			for (j = 0; j < (k->offset == OFF(submission_listen)
					 ? c->submission_listen_count : c->smtp_listen_count); j++) {
				char one[100];
				size_t used = strlen(val);

				dump_listen(one, sizeof(one), k->offset == OFF(submission_listen)
					    ? &c->submission_listen[j] : &c->smtp_listen[j]);
				snprintf(val + used, sizeof(val) - used, "%s%s",
					 j > 0 ? "," : "", one);
			}
			break;
		}
		dprintf(fd, "%s = %s\n", k->name, val);
	}
}
