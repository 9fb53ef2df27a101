/*
 * http_parse: the pure parsers of the HTTP API — no I/O, no allocation
 * except jansson's in http_json_parse — each over (const char *, size_t) so
 * that they are unit-tested (tests/unit/test_http_parse.c) and fuzzable.
 */
#ifndef MOAT_HTTP_PARSE_H
#define MOAT_HTTP_PARSE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

struct http_span {
	const char *p;
	size_t len;
};

/*
 * Match path against pattern ("/api/v1/users/{id}"): literal segments
 * equal, a "{name}" segment any non-empty segment, which lands in
 * params[*np] in order.  Returns 1 on a match, 0 otherwise.
 */
int http_path_match(const char *pattern, const char *path, size_t len,
		    struct http_span *params, size_t maxp, size_t *np);

/* A decimal integer in [min, max], nothing else (no sign but '-', no blanks). */
int http_parse_i64(const char *s, size_t len, int64_t min, int64_t max, int64_t *out);

/*
 * A time: unix milliseconds ("1700000000000") or an RFC 3339 date-time with
 * "Z" or any offset ("2026-11-22T08:00:00Z", "2026-11-22T09:00:00.5+01:00";
 * a space stands for the offset's "+").  0, or -1.
 */
int http_parse_time(const char *s, size_t len, int64_t *ms);

/* "<a>.<b>" of two non-negative integers (a message-log cursor). */
int http_parse_cursor2(const char *s, size_t len, int64_t *a, int64_t *b);

/* The index of s in the NULL-terminated list allowed, or -1. */
int http_pick(const char *s, size_t len, const char *const *allowed);

/*
 * The value of cookie name in a Cookie header ("a=1; b=2").  0 and out
 * filled when present and shorter than outsz; -1 otherwise.
 */
int http_cookie_get(const char *hdr, size_t len, const char *name, char *out,
		    size_t outsz);

/* "Bearer <token>" (scheme case-insensitive): *tok points into hdr.  0, or -1. */
int http_bearer(const char *hdr, size_t len, struct http_span *tok);

/* A user or token name: 1..64 of [A-Za-z0-9._@+-], starting alphanumeric. */
int http_valid_name(const char *s, size_t len);

/* Constant-time comparison of two NUL-terminated strings; 1 when equal. */
int http_secret_eq(const char *a, const char *b);

/* The last address of an X-Forwarded-For list, trimmed, into out.  0, or -1. */
int http_xff_last(const char *hdr, size_t len, char *out, size_t outsz);

/* ---- strict JSON bodies ---- */

enum http_jtype { HJ_STRING, HJ_INT, HJ_BOOL, HJ_STRING_ARRAY };

struct http_field {
	const char *name;
	enum http_jtype type;
	int required;
	size_t maxlen;  /* strings: bytes; arrays: items; 0 no limit */
	int64_t min, max; /* integers */
};

struct http_fail {
	int status;          /* 400 or 422 */
	const char *code;    /* malformed_json | invalid_body | unknown_field | ... */
	char message[200];
	char field[80];
};

/* Parse a whole body: an object, no duplicate keys.  0, or -1 (400) with f. */
int http_json_parse(const char *buf, size_t len, json_t **out, struct http_fail *f);
/* Every key known, every required present, every type right.  0, or -1 (422). */
int http_json_check(json_t *obj, const struct http_field *fields, size_t n,
		    struct http_fail *f);

#endif
