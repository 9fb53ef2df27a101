/*
 * conf: the bootstrap configuration — only what moatd needs to start.
 * Policy lives in SQLite, not here.
 *
 * Every key is named once in the table in conf.c with its type, default,
 * minimum and maximum; etc/moatd.conf documents the same keys.  Parsing is
 * a pure function over a buffer: no I/O, so it can be unit-tested and fuzzed.
 */
#ifndef MOAT_CONF_H
#define MOAT_CONF_H

#include <stddef.h>
#include <stdint.h>

#define CONF_MAX_LISTEN 8

struct conf_listen {
	char host[64]; /* literal IPv4 or IPv6 address */
	int port;      /* 0: let the kernel choose */
};

struct conf {
	char data_dir[1024];
	char hostname[256];
	char user[64];
	char log[1024];
	char log_level[16];

	struct conf_listen smtp_listen[CONF_MAX_LISTEN];
	int smtp_listen_count;
	struct conf_listen http_listen;

	int64_t greet_pause_ms;
	int64_t max_command_line;
	int64_t max_text_line;
	int64_t max_recipients;
	int64_t max_message_size;
	int64_t max_errors;             /* protocol errors in a session */
	int64_t max_refusals;           /* policy refusals in an authenticated session */
	int64_t max_refusals_unauth;    /* ... and before AUTH */
	int64_t timeline_max_bytes;     /* a session's conversation kept for the message log */
	int64_t max_sessions;
	int64_t max_sessions_per_client;
	int64_t idle_timeout_ms;
	int64_t data_timeout_ms;
	int64_t session_timeout_ms;
	int64_t shutdown_timeout_ms;
	int64_t data_min_rate;          /* bytes per second that extend the DATA deadline */
	int64_t stress_sessions;        /* percent of max_sessions: stress mode above it */
	int64_t stress_idle_timeout_ms; /* idle_timeout under stress */
	int64_t stress_data_timeout_ms; /* data_timeout under stress */
	int64_t max_header_size;        /* one header field with its folded lines */
	int64_t max_header_count;       /* header fields in one message */
	int64_t mime_max_depth;         /* content stage: nesting of parts */
	int64_t mime_max_parts;         /* content stage: parts walked */
	int64_t mime_max_part_text;     /* content stage: decoded text kept per part */
	int64_t mime_max_text;          /* content stage: decoded text kept per message */
	int64_t mime_max_time_ms;       /* content stage: time for one message's walk */
	int64_t content_workers;        /* content stage: threads */
	int64_t mailbox_rules_cache;    /* bytes of compiled mailbox rule sets kept */
	int64_t spool_min_free;         /* bytes kept free in the spool file system */

	int64_t http_max_connections;
	int64_t http_max_connections_per_ip; /* 0: no per-address limit */
	int64_t http_header_timeout_ms; /* request head complete within, from connect */
	int64_t http_timeout_ms;
	int64_t http_threads;
	/* HTTP API (daemon/http) */
	int64_t http_max_body;          /* bytes of a request body */
	int64_t http_max_page;          /* items per list page */
	int64_t user_sender_list_max;   /* entries in one user's personal sender list */
	int64_t rules_max_body;         /* bytes of a rule-set import body (its own limit) */
	int64_t mailbox_rules_max;      /* rules in one mailbox rule set */
	int64_t mailbox_rule_value_max; /* octets of one condition value in a mailbox rule */
	int64_t mailbox_rules_total_bytes; /* octets of all rules of one mailbox set */
	int64_t http_session_idle_ms;
	int64_t http_session_lifetime_ms;
	int64_t http_login_window_ms;   /* sliding window of failed logins */
	int64_t http_login_max_per_addr;
	int64_t http_login_max_per_account; /* from all addresses, known-good ones exempt */
	int64_t login_throttle_after;   /* failures per (account, address) before waits */
	int64_t login_throttle_delay_ms; /* first wait, doubled per further failure */
	int64_t login_throttle_delay_max_ms;
	char http_tls_cert[1024];       /* PEM; "" = plain HTTP */
	char http_tls_key[1024];
	int64_t http_behind_tls_proxy;  /* bool: cookies Secure, X-Forwarded-For trusted from loopback */
	char webui_dir[1024];           /* the built console (webui/dist); "" = not served */

	/* dns (daemon/dns) */
	char dns_servers[512];       /* "" = /etc/resolv.conf */
	int64_t dns_timeout_ms;
	int64_t dns_tries;
	int64_t dns_cache_entries;

	/* queue and delivery (daemon/queue) */
	int64_t delivery;            /* bool: run the queue runner */
	char downstream[1024];       /* host:port list, tried in order */
	char smarthost[300];         /* host:port, "" = MX */
	int64_t mx_port;
	char downstream_tls[16];     /* opportunistic | off | verify */
	char spool_sync[16];         /* filesystem | file: how a group commit reaches the disk */
	char delivery_tls[16];       /* smarthost and MX routes */
	char folder_method[8];       /* header | plus | both: how a folder reaches downstream */
	char folder_plus_separator[2]; /* what a folder's '/' becomes in user+folder@domain */
	char delivery_ca_file[1024];
	int64_t queue_lifetime_ms;
	int64_t dead_retention_ms;
	int64_t quarantine_lifetime_ms;       /* a quarantined item is kept this long */
	int64_t quarantine_purge_interval_ms; /* how often expired items are removed */
	int64_t event_retention_ms;     /* message_event rows (timelines) kept this long */
	int64_t retry_min_ms;
	int64_t retry_max_ms;
	int64_t queue_poll_ms;
	int64_t delivery_concurrency;
	int64_t delivery_concurrency_per_destination;
	/* SMTP client time-outs, RFC 5321 section 4.5.3.2 */
	int64_t delivery_connect_timeout_ms;
	int64_t delivery_command_timeout_ms; /* banner, EHLO, STARTTLS, MAIL, RCPT */
	int64_t delivery_data_timeout_ms;    /* DATA initiation: the 354 */
	int64_t delivery_block_timeout_ms;   /* each block of the body */
	int64_t delivery_dot_timeout_ms;     /* the reply to the final dot */
	int64_t hold_undeliverable;  /* bool */
	int64_t dsn_to_local_senders; /* bool */

	/* STARTTLS, AUTH, submission (daemon/smtp/smtp_tls.c, smtp_auth.c) */
	char tls_cert[1024];         /* PEM; both "" = self-signed in data_dir/tls */
	char tls_key[1024];
	struct conf_listen submission_listen[CONF_MAX_LISTEN]; /* AUTH required */
	int submission_listen_count;
	int64_t auth_allow_plaintext; /* bool: offer AUTH before STARTTLS */
	int64_t auth_fail_delay_ms;   /* tarpit before a 535 */
	int64_t auth_fail_window_ms;  /* sliding window of failed AUTH */
	int64_t auth_fail_max_per_addr;
	int64_t auth_fail_max_per_account;
	int64_t auth_cache_ttl_ms;    /* credential cache: successes kept; 0 none */
	int64_t auth_cache_negative_ttl_ms; /* failures kept; 0 none */
	int64_t auth_cache_size;      /* entries at most; 0: no cache */
	int64_t auth_workers;         /* password-checking threads */

	/* account defence (daemon/account): rate limits "per second,minute,hour,day"
	 * (or "minute,hour,day"), 0 none */
	char limit_account_messages[64];
	char limit_account_recipients[64];
	char limit_client_messages[64];   /* per client address, authenticated sessions */
	char limit_client_recipients[64];
	int64_t account_window_ms;        /* sliding window of the compromise score */
	int64_t account_suspend_score;    /* 0: never suspend */
	int64_t account_volume_floor;     /* messages per window never suspicious by volume */
	int64_t recipient_domain_check;   /* bool: authenticated relay needs a mail domain */
	int64_t auth_bind_from_header;    /* bool: From: addresses must be the user's too */

	/* quarantine digests (daemon/digest) */
	char digest_url_base[512];        /* public console URL in links; "" = the HTTP listener */
	int64_t digest_link_lifetime_ms;  /* how long a digest link works */
	int64_t digest_hour;              /* local hour of daily and weekly digests */
	int64_t digest_weekday;           /* weekly digests: 0 Sunday .. 6 Saturday */
	int64_t digest_check_ms;          /* how often the digest job looks for due users */
	int64_t digest_max_items;         /* items listed in one digest */
	/* account alerts (daemon/alert) */
	int64_t alert_webhook_timeout_ms; /* connect + request + response head of one POST */
	int64_t alert_webhook_retry_ms;   /* first retry after it, the second 9 times it later */

	/* cluster mode (daemon/cluster, docs/cluster.md): both "" = one node on SQLite */
	int64_t cluster_node;             /* this node's number, 1..1023; 0 = not in a cluster */
	char cluster_pg[1024];            /* libpq conninfo of the shared PostgreSQL; "" none */
	char cluster_redis[300];          /* host:port of the shared Redis; "" none */
	int64_t cluster_redis_timeout_ms; /* one Redis answer awaited; past it local counters */
	int64_t cluster_retry_ms;         /* reconnect to an unreachable engine every */
};

/* Fill every key with its default. */
void conf_defaults(struct conf *c);

/*
 * Parse a whole config file held in buf.  fname is only used in messages.
 * On error returns -1 and err holds "<fname>:<line>: <key>: <problem>".
 */
int conf_parse(struct conf *c, const char *buf, size_t len, const char *fname,
	       char *err, size_t errsz);

/* Set one key from text (command-line overrides).  0, or -1 with err. */
int conf_set(struct conf *c, const char *key, const char *value, char *err,
	     size_t errsz);

/* Read and parse a file.  0, or -1 with err. */
int conf_load_file(struct conf *c, const char *path, char *err, size_t errsz);

/* Write the effective configuration as a config file. */
void conf_dump(const struct conf *c, int fd);

#endif
