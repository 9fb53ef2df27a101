/*
 * http: the HTTP listener (libmicrohttpd, its own thread pool).  It never
 * touches SMTP state; it reads and writes SQLite through store/, one
 * connection per HTTP thread.
 */
#ifndef MOAT_HTTP_H
#define MOAT_HTTP_H

#include <stddef.h>

struct conf;
struct http_server;

/* Bind http_listen (before privileges are dropped). */
struct http_server *http_server_new(const struct conf *conf, char *err, size_t errsz);
/* "127.0.0.1:8080" with the port resolved. */
const char *http_server_address(const struct http_server *h);
/* Start serving; db_path is opened once per HTTP thread. */
int http_server_start(struct http_server *h, const char *db_path, char *err,
		      size_t errsz);
/* Stop, join the threads, close their databases, free.  Accepts NULL. */
void http_server_free(struct http_server *h);

#endif
