/*
 * http_static: serves the built web console (conf webui_dir, normally
 * webui/dist) for GET and HEAD requests that match no API route.
 *
 * Called by the router in http.c only for paths outside /api, /healthz and
 * /metrics (http_static_path).  A path that names a regular file under the
 * root is served with its MIME type; any other path without a file
 * extension gets index.html (the single-page app routes on the client);
 * a missing file with an extension, or under /assets/, is a 404.  When
 * the console is not built (webui_dir or its index.html missing) every such
 * path gets a 404 whose message says so, and start-up logs
 * webui_missing once (http.c); the API is not affected.
 *
 * Must never happen: a file outside the root.  Every path segment that
 * starts with '.' is refused, the resolved path (realpath, so symlinks are
 * followed first) must lie under the resolved root, and the file is opened
 * O_NOFOLLOW and checked with fstat to be a regular file of at most
 * HTTP_STATIC_MAX_FILE bytes.  The file descriptor is handed to
 * libmicrohttpd, which closes it.
 *
 * Headers: a strict Content-Security-Policy (no inline script or style
 * elements, no other origins, no framing), nosniff; Cache-Control
 * "public, max-age=31536000, immutable" for /assets/ (Vite names those by
 * content hash) and "no-cache" for everything else (index.html first).
 */
#include "http_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../conf/conf.h"

#define HTTP_STATIC_MAX_FILE (16 * 1024 * 1024)
#define HTTP_STATIC_MAX_URL 1024

static const char csp[] =
	"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
	"connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
	"form-action 'self'; frame-ancestors 'none'";

static const struct {
	const char *ext;
	const char *type;
} mime_types[] = {
	{ ".html", "text/html; charset=utf-8" },
	{ ".js", "text/javascript; charset=utf-8" },
	{ ".mjs", "text/javascript; charset=utf-8" },
	{ ".css", "text/css; charset=utf-8" },
	{ ".json", "application/json" },
	{ ".map", "application/json" },
	{ ".webmanifest", "application/manifest+json" },
	{ ".svg", "image/svg+xml" },
	{ ".png", "image/png" },
	{ ".ico", "image/x-icon" },
	{ ".webp", "image/webp" },
	{ ".woff2", "font/woff2" },
	{ ".woff", "font/woff" },
	{ ".txt", "text/plain; charset=utf-8" },
};

int http_static_path(const char *method, const char *url)
{
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
		return 0;
	if (url[0] != '/')
		return 0;
	if (strcmp(url, "/api") == 0 || strncmp(url, "/api/", 5) == 0)
		return 0;
	if (strcmp(url, "/healthz") == 0 || strcmp(url, "/metrics") == 0)
		return 0;
	return 1;
}

/* The last segment's extension (".js"), or NULL. */
static const char *extension(const char *path)
{
	const char *slash = strrchr(path, '/');
	const char *dot = strrchr(slash ? slash : path, '.');

	return dot;
}

static const char *mime_of(const char *path)
{
	const char *ext = extension(path);
	size_t i;

	if (ext == NULL)
		return "application/octet-stream";
	for (i = 0; i < ARRAY_LEN(mime_types); i++)
		if (strcasecmp(ext, mime_types[i].ext) == 0)
			return mime_types[i].type;
	return "application/octet-stream";
}

/* 0 when url is a clean absolute path: bounded, no segment starting with '.', no '\\'. */
static int clean_url(const char *url)
{
	size_t len = strlen(url);
	size_t i;

	if (len == 0 || len > HTTP_STATIC_MAX_URL || url[0] != '/')
		return -1;
	for (i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)url[i];

		if (ch < 0x20 || ch == 0x7f || ch == '\\')
			return -1;
		if (ch == '/' && url[i + 1] == '.')
			return -1;
	}
	return 0;
}

/*
 * Opens root/rel when it resolves to a regular file under root; -1 otherwise.
 * *st is filled on success.
 */
static int open_under(const char *root, const char *rel, struct stat *st)
{
	char joined[PATH_MAX];
	char *real;
	size_t rootlen = strlen(root);
	int n;
	int fd;

	n = snprintf(joined, sizeof(joined), "%s%s", root, rel);
	if (n < 0 || (size_t)n >= sizeof(joined))
		return -1;
	real = realpath(joined, NULL);
	if (real == NULL)
		return -1;
	if (strncmp(real, root, rootlen) != 0 || real[rootlen] != '/') {
		free(real);
		return -1;
	}
	fd = open(real, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	free(real);
	if (fd < 0)
		return -1;
	if (fstat(fd, st) < 0 || !S_ISREG(st->st_mode) || st->st_size > HTTP_STATIC_MAX_FILE) {
		close(fd);
		return -1;
	}
	return fd;
}

static enum MHD_Result not_found(struct http_req *r, const char *what)
{
	return http_error(r, MHD_HTTP_NOT_FOUND, "not_found", NULL, "%s", what);
}

const char *http_static_missing(const char *dir)
{
	char index[PATH_MAX];
	struct stat st;
	int n;

	if (dir[0] == '\0')
		return NULL;
	if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode))
		return "webui_dir is not a directory";
	n = snprintf(index, sizeof(index), "%s/index.html", dir);
	if (n < 0 || (size_t)n >= sizeof(index) || stat(index, &st) < 0 ||
	    !S_ISREG(st.st_mode))
		return "webui_dir has no index.html";
	if (access(index, R_OK) < 0)
		return "webui_dir/index.html is not readable";
	return NULL;
}

/* The console is not built: say so, and that the API still answers. */
static enum MHD_Result not_built(struct http_req *r, const char *why)
{
	return http_error(r, MHD_HTTP_NOT_FOUND, "not_found", NULL,
			  "the web console is not installed on this server (%s); build it with"
			  " 'npm ci && npm run build' in webui/ or set webui_dir. The API under"
			  " /api/v1 works", why);
}

enum MHD_Result http_static_serve(struct http_req *r, const char *url)
{
	const char *dir = r->h->conf->webui_dir;
	const char *rel = url;
	struct MHD_Response *resp;
	struct stat st;
	char *root;
	int immutable = 0;
	int fd;
	const char *why;
	enum MHD_Result ret;

	if (dir[0] == '\0')
		return not_found(r, "the web console is not configured (webui_dir)");
	if (clean_url(url) < 0)
		return not_found(r, "no such file");
	why = http_static_missing(dir);
	if (why != NULL)
		return not_built(r, why);
	root = realpath(dir, NULL);
	if (root == NULL)
		return not_built(r, "webui_dir cannot be resolved");
	if (strcmp(url, "/") == 0)
		rel = "/index.html";
	fd = open_under(root, rel, &st);
	if (fd >= 0) {
		immutable = strncmp(rel, "/assets/", 8) == 0;
	} else if (strncmp(url, "/assets/", 8) != 0 && extension(url) == NULL) {
		rel = "/index.html";   /* a client-side route */
		fd = open_under(root, rel, &st);
	}
	free(root);
	if (fd < 0)
		return not_found(r, "no such file");
	resp = MHD_create_response_from_fd((uint64_t)st.st_size, fd);
	if (resp == NULL) {
		close(fd);
		return MHD_NO;
	}
	MHD_add_response_header(resp, "Content-Type", mime_of(rel));
	MHD_add_response_header(resp, "Cache-Control",
				immutable ? "public, max-age=31536000, immutable" : "no-cache");
	MHD_add_response_header(resp, "Content-Security-Policy", csp);
	MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(resp, "X-Frame-Options", "DENY");
	MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
	ret = MHD_queue_response(r->c, MHD_HTTP_OK, resp);
	MHD_destroy_response(resp);
	r->replied = 1;
	return ret;
}
