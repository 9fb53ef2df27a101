/*
 * http_parse: pure parsers of the HTTP API.  See http_parse.h.
 *
 * Nothing here reads a socket, the clock or the database, and nothing
 * reads past len: every input is outside bytes and may be anything.
 */
#include "http_parse.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "../util/util.h"

int http_path_match(const char *pattern, const char *path, size_t len,
		    struct http_span *params, size_t maxp, size_t *np)
{
	size_t pi = 0;
	size_t i = 0;
	size_t plen = strlen(pattern);

	*np = 0;
	while (pi < plen && i < len) {
		if (pattern[pi] == '{') {
			const char *close = strchr(pattern + pi, '}');
			size_t start = i;

			if (close == NULL)
				return 0;
			while (i < len && path[i] != '/')
				i++;
			if (i == start || *np == maxp)
				return 0;
			params[*np].p = path + start;
			params[*np].len = i - start;
			(*np)++;
			pi = (size_t)(close - pattern) + 1;
			continue;
		}
		if (pattern[pi] != path[i])
			return 0;
		pi++;
		i++;
	}
	return pi == plen && i == len;
}

int http_parse_i64(const char *s, size_t len, int64_t min, int64_t max, int64_t *out)
{
	int neg = 0;
	uint64_t v = 0;
	size_t i = 0;

	if (len > 0 && s[0] == '-') {
		neg = 1;
		i = 1;
	}
	if (i == len || len - i > 19)
		return -1;
	for (; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (v > (uint64_t)INT64_MAX)
		return -1;
	*out = neg ? -(int64_t)v : (int64_t)v;
	if (*out < min || *out > max)
		return -1;
	return 0;
}

static int digits(const char *s, size_t n, int *out)
{
	size_t i;
	int v = 0;

	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return 0;
}

static int days_in_month(int y, int mo)
{
	static const int days[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };

	if (mo == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
		return 29;
	return days[mo - 1];
}

/*
 * RFC 3339 date-time: YYYY-MM-DD"T"HH:MM:SS[.frac]("Z" | ("+"|"-")HH:MM),
 * T and Z in either case, any number of fraction digits (milliseconds are
 * kept, the rest truncated).  A space in the place of the offset's "+" is
 * taken as "+": an unencoded "+" in a query string arrives as a space.
 */
int http_parse_time(const char *s, size_t len, int64_t *ms)
{
	struct tm tm;
	int y, mo, d, h, mi, sec, frac = 0, oh = 0, om = 0, sign = 0;
	size_t i, nfrac;
	time_t t;
	int64_t v;

	if (len > 0 && s[0] >= '0' && s[0] <= '9' && memchr(s, '-', len) == NULL)
		return http_parse_i64(s, len, 0, (int64_t)253402300799999, ms);
	if (len < 20 || len > 64)
		return -1;
	if (s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't') || s[13] != ':' ||
	    s[16] != ':')
		return -1;
	if (digits(s, 4, &y) < 0 || digits(s + 5, 2, &mo) < 0 || digits(s + 8, 2, &d) < 0 ||
	    digits(s + 11, 2, &h) < 0 || digits(s + 14, 2, &mi) < 0 ||
	    digits(s + 17, 2, &sec) < 0)
		return -1;
	i = 19;
	if (s[i] == '.') {
		i++;
		for (nfrac = 0; i < len && s[i] >= '0' && s[i] <= '9'; i++, nfrac++)
			if (nfrac < 3)
				frac = frac * 10 + (s[i] - '0');
		if (nfrac == 0)
			return -1;
		for (; nfrac < 3; nfrac++)
			frac *= 10;
	}
	if (i == len)
		return -1;
	if (s[i] == 'Z' || s[i] == 'z') {
		if (i + 1 != len)
			return -1;
	} else {
		if (s[i] == '+' || s[i] == ' ')
			sign = 1;
		else if (s[i] == '-')
			sign = -1;
		else
			return -1;
		if (len - i != 6 || s[i + 3] != ':' || digits(s + i + 1, 2, &oh) < 0 ||
		    digits(s + i + 4, 2, &om) < 0 || oh > 23 || om > 59)
			return -1;
	}
	if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 ||
	    mi > 59 || sec > 60)
		return -1;
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	t = timegm(&tm);
	if (t < 0)
		return -1;
	/* local time = UTC + offset, so UTC = local time - offset */
	v = (int64_t)t * 1000 + frac - (int64_t)sign * (oh * 60 + om) * 60000;
	if (v < 0)
		return -1;
	*ms = v;
	return 0;
}

int http_parse_cursor2(const char *s, size_t len, int64_t *a, int64_t *b)
{
	const char *dot = memchr(s, '.', len);

	if (dot == NULL)
		return -1;
	if (http_parse_i64(s, (size_t)(dot - s), 0, INT64_MAX, a) < 0)
		return -1;
	return http_parse_i64(dot + 1, len - (size_t)(dot - s) - 1, 0, INT64_MAX, b);
}

int http_pick(const char *s, size_t len, const char *const *allowed)
{
	int i;

	for (i = 0; allowed[i] != NULL; i++)
		if (strlen(allowed[i]) == len && memcmp(allowed[i], s, len) == 0)
			return i;
	return -1;
}

int http_cookie_get(const char *hdr, size_t len, const char *name, char *out,
		    size_t outsz)
{
	size_t nlen = strlen(name);
	size_t i = 0;

	while (i < len) {
		size_t start, end, eq;

		while (i < len && (hdr[i] == ' ' || hdr[i] == '\t' || hdr[i] == ';'))
			i++;
		start = i;
		while (i < len && hdr[i] != ';')
			i++;
		end = i;
		while (end > start && (hdr[end - 1] == ' ' || hdr[end - 1] == '\t'))
			end--;
		for (eq = start; eq < end && hdr[eq] != '='; eq++)
			;
		if (eq < end && eq - start == nlen && memcmp(hdr + start, name, nlen) == 0) {
			size_t vs = eq + 1;
			size_t vlen;

			if (end - vs >= 2 && hdr[vs] == '"' && hdr[end - 1] == '"') {
				vs++;
				end--;
			}
			vlen = end - vs;
			if (vlen + 1 > outsz)
				return -1;
			memcpy(out, hdr + vs, vlen);
			out[vlen] = '\0';
			return 0;
		}
	}
	return -1;
}

int http_bearer(const char *hdr, size_t len, struct http_span *tok)
{
	size_t i = 6;

	if (len < 7 || strncasecmp(hdr, "Bearer", 6) != 0 || (hdr[6] != ' ' && hdr[6] != '\t'))
		return -1;
	while (i < len && (hdr[i] == ' ' || hdr[i] == '\t'))
		i++;
	while (len > i && (hdr[len - 1] == ' ' || hdr[len - 1] == '\t'))
		len--;
	if (i == len)
		return -1;
	for (size_t j = i; j < len; j++)
		if (hdr[j] <= ' ' || hdr[j] >= 127)
			return -1;
	tok->p = hdr + i;
	tok->len = len - i;
	return 0;
}

int http_valid_name(const char *s, size_t len)
{
	size_t i;

	if (len == 0 || len > 64 || !isalnum((unsigned char)s[0]))
		return 0;
	for (i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (!isalnum(ch) && ch != '.' && ch != '_' && ch != '@' && ch != '+' &&
		    ch != '-')
			return 0;
	}
	return 1;
}

int http_secret_eq(const char *a, const char *b)
{
	size_t la = strlen(a);
	size_t lb = strlen(b);
	unsigned char diff = la != lb;
	size_t i;

	for (i = 0; i < la && i < lb; i++)
		diff |= (unsigned char)(a[i] ^ b[i]);
	return diff == 0;
}

int http_xff_last(const char *hdr, size_t len, char *out, size_t outsz)
{
	size_t end = len;
	size_t start;

	while (end > 0 && (hdr[end - 1] == ' ' || hdr[end - 1] == '\t' || hdr[end - 1] == ','))
		end--;
	start = end;
	while (start > 0 && hdr[start - 1] != ',')
		start--;
	while (start < end && (hdr[start] == ' ' || hdr[start] == '\t'))
		start++;
	if (start == end || end - start + 1 > outsz)
		return -1;
	for (size_t i = start; i < end; i++)
		if (!isxdigit((unsigned char)hdr[i]) && hdr[i] != '.' && hdr[i] != ':')
			return -1;
	memcpy(out, hdr + start, end - start);
	out[end - start] = '\0';
	return 0;
}

static void fail(struct http_fail *f, int status, const char *code, const char *field,
		 const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void fail(struct http_fail *f, int status, const char *code, const char *field,
		 const char *fmt, ...)
{
	va_list ap;

	f->status = status;
	f->code = code;
	strlcpy_s(f->field, field ? field : "", sizeof(f->field));
	va_start(ap, fmt);
	vsnprintf(f->message, sizeof(f->message), fmt, ap);
	va_end(ap);
}

int http_json_parse(const char *buf, size_t len, json_t **out, struct http_fail *f)
{
	json_error_t je;
	json_t *v;

	*out = NULL;
	v = json_loadb(buf, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
	if (v == NULL) {
		fail(f, 400, "malformed_json", NULL, "request body is not valid JSON: %s",
		     je.text);
		return -1;
	}
	if (!json_is_object(v)) {
		json_decref(v);
		fail(f, 422, "invalid_body", NULL, "request body must be a JSON object");
		return -1;
	}
	*out = v;
	return 0;
}

int http_json_check(json_t *obj, const struct http_field *fields, size_t n,
		    struct http_fail *f)
{
	const char *key;
	json_t *v;
	size_t i;

	json_object_foreach(obj, key, v) {
		for (i = 0; i < n; i++)
			if (strcmp(fields[i].name, key) == 0)
				break;
		if (i == n) {
			fail(f, 422, "unknown_field", key, "unknown field %s", key);
			return -1;
		}
	}
	for (i = 0; i < n; i++) {
		const struct http_field *fd = &fields[i];
		const char *nm = fd->name;

		v = json_object_get(obj, nm);
		if (v == NULL) {
			if (fd->required) {
				fail(f, 422, "missing_field", nm, "%s is required", nm);
				return -1;
			}
			continue;
		}
		switch (fd->type) {
		case HJ_STRING:
			if (!json_is_string(v)) {
				fail(f, 422, "invalid_type", nm, "%s must be a string", nm);
				return -1;
			}
			if (fd->maxlen > 0 && json_string_length(v) > fd->maxlen) {
				fail(f, 422, "invalid_value", nm, "%s is too long", nm);
				return -1;
			}
			if (memchr(json_string_value(v), '\0', json_string_length(v)) != NULL) {
				fail(f, 422, "invalid_value", nm, "%s contains NUL", nm);
				return -1;
			}
			break;
		case HJ_INT:
			if (!json_is_integer(v)) {
				fail(f, 422, "invalid_type", nm, "%s must be an integer", nm);
				return -1;
			}
			if (json_integer_value(v) < fd->min || json_integer_value(v) > fd->max) {
				fail(f, 422, "invalid_value", nm, "%s is out of range", nm);
				return -1;
			}
			break;
		case HJ_BOOL:
			if (!json_is_boolean(v)) {
				fail(f, 422, "invalid_type", nm, "%s must be a boolean", nm);
				return -1;
			}
			break;
		case HJ_STRING_ARRAY: {
			size_t j;
			json_t *item;

			if (!json_is_array(v)) {
				fail(f, 422, "invalid_type", nm, "%s must be an array of strings", nm);
				return -1;
			}
			if (fd->maxlen > 0 && json_array_size(v) > fd->maxlen) {
				fail(f, 422, "invalid_value", nm, "%s has too many items", nm);
				return -1;
			}
			json_array_foreach(v, j, item) {
				if (!json_is_string(item) || json_string_length(item) == 0 ||
				    json_string_length(item) > 320) {
					fail(f, 422, "invalid_type", nm,
					     "%s must be an array of strings", nm);
					return -1;
				}
			}
			break;
		}
		}
	}
	return 0;
}
