/*
 * http: libmicrohttpd server and router.  See http.h.
 *
 * Limits: connection count, per-connection memory (which bounds request
 * line and headers), time-out and thread count come from the config.  Every
 * answer is JSON; an error is {"error":{"code","message","field"}}.
 */
#include "http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../conf/conf.h"
#include "../log/log.h"
#include "../store/store.h"
#include "../util/util.h"

#define HTTP_CONN_MEMORY (64 * 1024)

struct http_server {
	const struct conf *conf;
	int fd;
	char address[80];
	char db_path[1200];
	struct MHD_Daemon *mhd;
	pthread_key_t store_key;
	int key_made;
};

static void store_destroy(void *p)
{
	store_close(p);
}

/* The calling HTTP thread's own connection, opened on first use. */
static struct store *thread_store(struct http_server *h)
{
	struct store *st = pthread_getspecific(h->store_key);
	char err[512];

	if (st != NULL)
		return st;
	st = store_open(h->db_path, 0, err, sizeof(err));
	if (st == NULL) {
		log_error(NULL, "http", "%s", err);
		return NULL;
	}
	pthread_setspecific(h->store_key, st);
	return st;
}

static enum MHD_Result send_json(struct MHD_Connection *c, unsigned status, json_t *body)
{
	char *text = json_dumps(body, JSON_COMPACT);
	struct MHD_Response *r;
	enum MHD_Result ret;

	json_decref(body);
	if (text == NULL)
		return MHD_NO;
	r = MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
	MHD_add_response_header(r, "Content-Type", "application/json");
	MHD_add_response_header(r, "Cache-Control", "no-store");
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result send_error(struct MHD_Connection *c, unsigned status,
				  const char *code, const char *message, const char *field)
{
	json_t *err = json_pack("{s:s, s:s, s:o}", "code", code, "message", message,
				"field", field ? json_string(field) : json_null());

	return send_json(c, status, json_pack("{s:o}", "error", err));
}

static enum MHD_Result healthz(struct http_server *h, struct MHD_Connection *c)
{
	struct store *st = thread_store(h);
	char err[256];

	if (st == NULL || store_ping(st, err, sizeof(err)) < 0)
		return send_json(c, MHD_HTTP_SERVICE_UNAVAILABLE,
				 json_pack("{s:s, s:s}", "status", "error", "database",
					   "unavailable"));
	return send_json(c, MHD_HTTP_OK,
			 json_pack("{s:s, s:s, s:i}", "status", "ok", "version",
				   MOAT_VERSION, "schema", store_schema_version()));
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
			      const char *method, const char *version,
			      const char *upload_data, size_t *upload_data_size,
			      void **con_cls)
{
	struct http_server *h = cls;

	(void)version;
	(void)upload_data;
	/* First call per request: headers only.  Bodies are not taken yet. */
	if (*con_cls == NULL) {
		*con_cls = h;
		return MHD_YES;
	}
	if (*upload_data_size != 0)
		return send_error(c, MHD_HTTP_CONTENT_TOO_LARGE, "body_not_allowed",
				  "this resource takes no request body", NULL);
	if (strcmp(url, "/healthz") == 0) {
		if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
			return send_error(c, MHD_HTTP_METHOD_NOT_ALLOWED, "method_not_allowed",
					  "use GET", NULL);
		return healthz(h, c);
	}
	return send_error(c, MHD_HTTP_NOT_FOUND, "not_found", "no such resource", NULL);
}

struct http_server *http_server_new(const struct conf *conf, char *err, size_t errsz)
{
	const struct conf_listen *l = &conf->http_listen;
	struct http_server *h = xcalloc(1, sizeof(*h));
	struct sockaddr_storage ss;
	socklen_t sslen;
	int one = 1;

	h->conf = conf;
	memset(&ss, 0, sizeof(ss));
	if (strchr(l->host, ':') != NULL) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)l->port);
		inet_pton(AF_INET6, l->host, &s6->sin6_addr);
		sslen = sizeof(*s6);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)l->port);
		inet_pton(AF_INET, l->host, &s4->sin_addr);
		sslen = sizeof(*s4);
	}
	h->fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (h->fd < 0)
		goto fail;
	setsockopt(h->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(h->fd, (struct sockaddr *)&ss, sslen) < 0 || listen(h->fd, 256) < 0)
		goto fail;
	sslen = sizeof(ss);
	getsockname(h->fd, (struct sockaddr *)&ss, &sslen);
	if (ss.ss_family == AF_INET6)
		snprintf(h->address, sizeof(h->address), "[%s]:%d", l->host,
			 ntohs(((struct sockaddr_in6 *)&ss)->sin6_port));
	else
		snprintf(h->address, sizeof(h->address), "%s:%d", l->host,
			 ntohs(((struct sockaddr_in *)&ss)->sin_port));
	return h;
fail:
	snprintf(err, errsz, "http_listen %s:%d: %s", l->host, l->port, strerror(errno));
	if (h->fd >= 0)
		close(h->fd);
	free(h);
	return NULL;
}

const char *http_server_address(const struct http_server *h)
{
	return h->address;
}

int http_server_start(struct http_server *h, const char *db_path, char *err,
		      size_t errsz)
{
	const struct conf *conf = h->conf;

	strlcpy_s(h->db_path, db_path, sizeof(h->db_path));
	if (pthread_key_create(&h->store_key, store_destroy) != 0) {
		snprintf(err, errsz, "http: cannot create thread key");
		return -1;
	}
	h->key_made = 1;
	h->mhd = MHD_start_daemon(
		MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG,
		0, NULL, NULL, handle, h,
		MHD_OPTION_LISTEN_SOCKET, (MHD_socket)h->fd,
		MHD_OPTION_THREAD_POOL_SIZE, (unsigned int)conf->http_threads,
		MHD_OPTION_CONNECTION_LIMIT, (unsigned int)conf->http_max_connections,
		MHD_OPTION_CONNECTION_TIMEOUT,
		(unsigned int)((conf->http_timeout_ms + 999) / 1000),
		MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)HTTP_CONN_MEMORY,
		MHD_OPTION_END);
	if (h->mhd == NULL) {
		snprintf(err, errsz, "http: cannot start libmicrohttpd on %s", h->address);
		return -1;
	}
	return 0;
}

void http_server_free(struct http_server *h)
{
	if (h == NULL)
		return;
	if (h->mhd != NULL)
		MHD_stop_daemon(h->mhd); /* joins the pool; thread stores close */
	else if (h->fd >= 0)
		close(h->fd);
	if (h->key_made)
		pthread_key_delete(h->store_key);
	free(h);
}
