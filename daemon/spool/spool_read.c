/*
 * spool_read: see spool_read.h.  Files are only read here, never written:
 * a message in queue/ was fsync'ed before its rows were committed, and it
 * is removed only after its rows are gone, so a reader finds either the
 * whole file or none (ENOENT, reported to the caller).
 */
#include "spool_read.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../util/util.h"

int spool_qid_valid(const char *s, size_t len)
{
	size_t i;

	if (len == 0 || len > 32)
		return 0;
	for (i = 0; i < len; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f') ||
		      (s[i] >= 'A' && s[i] <= 'F')))
			return 0;
	return 1;
}

int spool_queue_path(const char *data_dir, const char *qid, char *out, size_t outsz)
{
	int n;

	if (!spool_qid_valid(qid, strlen(qid)))
		return -1;
	n = snprintf(out, outsz, "%s/spool/queue/%s", data_dir, qid);
	return n < 0 || (size_t)n >= outsz ? -1 : 0;
}

int spool_read_open(const char *data_dir, const char *qid)
{
	char path[1400];

	if (spool_queue_path(data_dir, qid, path, sizeof(path)) < 0) {
		errno = EINVAL;
		return -1;
	}
	return open(path, O_RDONLY | O_CLOEXEC);
}

int spool_read_headers(const char *data_dir, const char *qid, char *buf, size_t max,
		       size_t *len)
{
	size_t n = 0;
	size_t i = 0;
	int fd = spool_read_open(data_dir, qid);

	*len = 0;
	buf[0] = '\0';
	if (fd < 0)
		return -1;
	while (n < max) {
		ssize_t r = read(fd, buf + n, max - n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	/* Cut at the first empty line (CRLF, or a bare LF). */
	while (i < n) {
		if (buf[i] == '\n' || (buf[i] == '\r' && i + 1 < n && buf[i + 1] == '\n'))
			break;
		while (i < n && buf[i] != '\n')
			i++;
		if (i < n)
			i++;
	}
	*len = i < n ? i : n;
	buf[*len] = '\0';
	return 0;
}

/* Append what fits: a value longer than value's maximum is cut. */
static void add_cut(struct dynbuf *value, const char *p, size_t n)
{
	if (n > value->max - value->len)
		n = value->max - value->len;
	dynbuf_add(value, p, n);
}

int spool_header_next(const char *buf, size_t len, size_t *pos, const char **name,
		      size_t *name_len, struct dynbuf *value)
{
	size_t i = *pos;
	size_t start = i;
	size_t colon;
	char *val;
	size_t vl;
	size_t k;

	dynbuf_reset(value);
	if (i >= len || buf[i] == '\r' || buf[i] == '\n')
		return 0;
	while (i < len && buf[i] != '\n')
		i++;
	/* A field name is one or more printable characters but ':' (RFC 5322 ftext). */
	for (colon = start; colon < i && buf[colon] != ':'; colon++)
		if ((unsigned char)buf[colon] < 33 || (unsigned char)buf[colon] > 126)
			return 0;
	if (colon == i || colon == start)
		return 0;
	add_cut(value, buf + colon + 1,
		   i - colon - 1 - (i > colon + 1 && buf[i - 1] == '\r'));
	if (i < len)
		i++;
	while (i < len && (buf[i] == ' ' || buf[i] == '\t')) { /* folded: unfold */
		size_t s2 = i;

		while (i < len && buf[i] != '\n')
			i++;
		add_cut(value, buf + s2, i - s2 - (buf[i - 1] == '\r'));
		if (i < len)
			i++;
	}
	/* dynbuf keeps data NUL-terminated and allocated after any add. */
	val = value->data;
	vl = value->len;
	while (vl > 0 && (val[vl - 1] == '\r' || val[vl - 1] == ' '))
		vl--;
	k = 0;
	while (k < vl && (val[k] == ' ' || val[k] == '\t'))
		k++;
	memmove(val, val + k, vl - k);
	vl -= k;
	val[vl] = '\0';
	for (k = 0; k < vl; k++)
		if (val[k] == '\r')
			val[k] = ' ';
	value->len = vl;
	*name = buf + start;
	*name_len = colon - start;
	*pos = i;
	return 1;
}

int spool_header_get(const char *buf, size_t len, const char *name, struct dynbuf *value)
{
	size_t pos = 0;
	size_t want = strlen(name);
	const char *n;
	size_t nl;

	while (spool_header_next(buf, len, &pos, &n, &nl, value) == 1)
		if (nl == want && strncasecmp(n, name, nl) == 0)
			return 1;
	dynbuf_reset(value);
	return 0;
}

char *spool_read_file(const char *path, size_t max, size_t *len, int *too_big)
{
	struct stat sb;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t got = 0;
	char *buf;

	*len = 0;
	*too_big = 0;
	if (fd < 0)
		return NULL;
	if (fstat(fd, &sb) < 0) {
		close(fd);
		return NULL;
	}
	if ((size_t)sb.st_size > max) {
		*too_big = 1;
		close(fd);
		return NULL;
	}
	buf = xmalloc((size_t)sb.st_size + 1);
	while (got < (size_t)sb.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)sb.st_size - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	buf[got] = '\0';
	*len = got;
	return buf;
}
