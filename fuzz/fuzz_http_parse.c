/*
 * libFuzzer harness: the HTTP API's pure parsers (daemon/http/http_parse.c)
 * — route patterns, integers, times, cursors, cookies, bearer tokens,
 * X-Forwarded-For, and strict JSON bodies checked against a field table.
 */
#include <stddef.h>
#include <stdint.h>

#include "http/http_parse.h"
#include "util/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct http_field fields[] = {
	{ "name", HJ_STRING, 1, 64, 0, 0 },
	{ "n", HJ_INT, 0, 0, 0, 100 },
	{ "on", HJ_BOOL, 0, 0, 0, 0 },
	{ "list", HJ_STRING_ARRAY, 0, 8, 0, 0 },
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	struct http_span p[4], tok;
	struct http_fail f;
	size_t np;
	int64_t a, b;
	char out[128];
	json_t *o = NULL;

	http_path_match("/api/v1/users/{id}/x/{y}", s, size, p, 4, &np);
	http_parse_i64(s, size, INT64_MIN, INT64_MAX, &a);
	http_parse_time(s, size, &a);
	http_parse_cursor2(s, size, &a, &b);
	http_cookie_get(s, size, "moat_session", out, sizeof(out));
	http_bearer(s, size, &tok);
	http_valid_name(s, size);
	http_xff_last(s, size, out, sizeof(out));
	if (http_json_parse(s, size, &o, &f) == 0) {
		http_json_check(o, fields, ARRAY_LEN(fields), &f);
		json_decref(o);
	}
	return 0;
}
