/*
 * libFuzzer harness: the message walk (mime_parse) with small limits, so
 * that inputs reach every bound.  Checks the view's invariants: text and
 * header values are valid UTF-8 within their bounds, raw_body lies inside
 * the input, counts stay under the limits.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "mime/mime.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	struct mime_limits lim;
	struct mime_view *v;
	char err[128];
	char *buf;
	size_t pos = 0;

	if (!ready) {
		mime_init();
		ready = 1;
	}
	if (size > 1 << 20)
		return 0;
	mime_limits_default(&lim);
	lim.max_depth = 8;
	lim.max_parts = 40;
	lim.max_part_text = 4096;
	lim.max_text = 8192;
	lim.max_headers = 30;
	lim.max_urls = 20;
	lim.max_ms = 10000;
	/* An exact-size copy, so that ASan sees any read past the input. */
	buf = malloc(size ? size : 1);
	memcpy(buf, data, size);
	if (mime_parse(buf, size, &lim, &v, err, sizeof(err)) != 0)
		__builtin_trap();
	if (v->text_len > lim.max_text || strlen(v->text) != v->text_len ||
	    !g_utf8_validate(v->text, (gssize)v->text_len, NULL))
		__builtin_trap();
	if (v->nheaders > lim.max_headers || v->nurl_hosts > lim.max_urls ||
	    v->nparts > lim.max_parts || v->depth > lim.max_depth)
		__builtin_trap();
	if (v->raw_body < buf || v->raw_body + v->raw_body_len != buf + size)
		__builtin_trap();
	for (size_t i = 0; i < v->nheaders; i++) {
		if (!g_utf8_validate(v->headers[i].value, -1, NULL) ||
		    !g_utf8_validate(v->headers[i].name, -1, NULL))
			__builtin_trap();
	}
	for (size_t i = 0; i < v->nurl_hosts; i++) {
		if (v->url_hosts[i][0] == '\0' || !g_utf8_validate(v->url_hosts[i], -1, NULL))
			__builtin_trap();
	}
	for (size_t i = 0; i < v->nattachments; i++) {
		if (strchr(v->attachments[i].type, '/') == NULL ||
		    !g_utf8_validate(v->attachments[i].name, -1, NULL))
			__builtin_trap();
	}
	(void)mime_header_next(v, "subject", &pos);
	mime_view_free(v);
	free(buf);
	return 0;
}
