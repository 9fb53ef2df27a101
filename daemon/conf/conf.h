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
	int64_t max_errors;
	int64_t max_sessions;
	int64_t max_sessions_per_client;
	int64_t idle_timeout_ms;
	int64_t data_timeout_ms;
	int64_t session_timeout_ms;
	int64_t shutdown_timeout_ms;

	int64_t http_max_connections;
	int64_t http_timeout_ms;
	int64_t http_threads;
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
