/*
 * queue: delivery of accepted mail — routes, the queue runner, DSNs.
 *
 * The runner lives on the mail event loop; all its SQLite work and file
 * removal happen on one worker thread of its own (see queue_runner.c).
 * Routes and the retry schedule are pure functions, unit-tested.
 */
#ifndef MOAT_QUEUE_H
#define MOAT_QUEUE_H

#include <stddef.h>
#include <stdint.h>

#include "../smtp/smtp_edit.h"

struct conf;
struct dns;
struct dynbuf;
struct event_base;
struct spool;
struct spool_writer;
struct queue_runner;

#define QUEUE_MAX_HOSTS 16

struct queue_hostport {
	char host[256];
	int port;
};

enum queue_tls { QUEUE_TLS_OFF, QUEUE_TLS_OPPORTUNISTIC, QUEUE_TLS_VERIFY };

/* domain is one of ours (the policy's local_domain list): 1 or 0. */
typedef int (*queue_is_local_fn)(const void *arg, const char *domain);

struct queue_routes {
	queue_is_local_fn is_local;   /* NULL: no domain is local */
	const void *is_local_arg;
	struct queue_hostport down[QUEUE_MAX_HOSTS];
	size_t ndown;
	struct queue_hostport smart;
	int has_smart;
	int mx_port;
	enum queue_tls down_tls;
	enum queue_tls out_tls;
};

/* Parse downstream, smarthost and the TLS keys.  0 or -1. */
int queue_routes_parse(struct queue_routes *r, const struct conf *c, char *err,
		       size_t errsz);
void queue_routes_free(struct queue_routes *r);

enum queue_route_kind { QUEUE_ROUTE_DOWNSTREAM, QUEUE_ROUTE_SMARTHOST, QUEUE_ROUTE_MX };

/*
 * Where rcpt goes: a local domain to the downstream servers, anything else
 * to the smart host when set, else to its domain's MX.  key names the
 * destination ("downstream", "smarthost", "mx:<domain>"); -1 when rcpt has
 * no domain.  A local domain while no downstream is configured gives the
 * key "nodownstream": the caller defers it.
 */
int queue_route_for(const struct queue_routes *r, const char *rcpt,
		    enum queue_route_kind *kind, char *key, size_t keysz);

/* "host:port", "[v6]:port" or "host" (default_port).  0 or -1. */
int queue_parse_hostport(const char *s, int default_port, struct queue_hostport *out);

/* Back-off before attempt attempts+1: min * 2^attempts, capped at max. */
int64_t queue_backoff_ms(int attempts, int64_t min_ms, int64_t max_ms);

/* ---- RFC 3464 delivery status notification ----------------------------- */

struct queue_dsn_rcpt {
	const char *rcpt;
	const char *reply;  /* "550 5.1.1 no such user" or a local reason */
};

struct queue_dsn {
	const char *reporting_host;
	const char *qid;
	const char *orig_sender;        /* the DSN goes here */
	int64_t arrival_ms;
	int64_t now_ms;
	const struct queue_dsn_rcpt *rcpts;
	size_t nrcpts;
	const char *headers;            /* the original header section (may be cut) */
	size_t headers_len;
	const char *boundary;           /* MIME boundary, unique */
};

/* A complete message (CRLF lines) in out.  0, or -1 when out is too small. */
int queue_dsn_build(struct dynbuf *out, const struct queue_dsn *d);

/* ---- the runner ----------------------------------------------------------- */

/*
 * Start the runner: takes back every lease (a previous run's in-flight
 * rows become due), starts its worker thread and its poll timer.  conf,
 * dns, spool, writer and is_local_arg must outlive it (DSNs go through the writer).  Blocking: call at start-up only.
 */
/*
 * A recipient's delivery edit (queue_edit.c; docs/mailbox-rules.md).
 * queue_edit_parse() reads the JSON of queue_rcpt.edit; queue_edit_spec()
 * then fills spec (pointing into e) for smtp_edit, with the folder as an
 * X-Moat-Folder field when folder_header.  Parts that cannot go into a
 * header safely are left out and named in warn.
 */
struct queue_edit {
	char *folder;              /* NULL: none */
	char *subject_prefix_raw;  /* as the rule gave it */
	char **headers;            /* "Name: value" */
	size_t nheaders;
	char importance;           /* 'h', 'n', 'l', or 0 */
	char *add;                 /* built by queue_edit_spec */
	size_t add_len;
	char *subject_prefix;      /* encoded (RFC 2047) when not ASCII */
	struct smtp_edit_spec spec;
	char warn[256];
};
int queue_edit_parse(const char *json, struct queue_edit *e, char *err, size_t errsz);
void queue_edit_spec(struct queue_edit *e, int folder_header);
void queue_edit_free(struct queue_edit *e);
/*
 * The plus method (RFC 5233): rcpt "local@domain" and folder "A/B" give
 * "local+A<sep>B@domain".  -1 with *why when the folder cannot be written
 * into a local part (not ASCII, a character outside atext, a dot at the end
 * or two in a row, over 64 octets) or the local part is quoted or already
 * has a +detail.
 */
int queue_edit_plus(const char *rcpt, const char *folder, char sep, char *out, size_t outsz,
		    const char **why);

struct queue_runner *queue_runner_start(struct event_base *base, const struct conf *conf,
					struct dns *dns, struct spool *spool,
					struct spool_writer *writer, const char *db_path,
					queue_is_local_fn is_local, const void *is_local_arg,
					char *err, size_t errsz);
/* New mail was committed: look for due rows now rather than at the next poll. */
void queue_runner_kick(struct queue_runner *q);
/* Close every connection, write the outcomes already known, stop.  NULL ok. */
void queue_runner_free(struct queue_runner *q);

#endif
