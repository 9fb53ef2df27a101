/*
 * libFuzzer harness for the quarantine HTML sanitiser: never crashes, stays
 * within its output bound, and what it emits has no script element, no
 * on* attribute and no javascript: or remote URL in an attribute.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "quarantine/quarantine_html.h"
#include "util/util.h"

static int has_ci(const char *s, size_t n, const char *needle)
{
	size_t k = strlen(needle), i;

	for (i = 0; i + k <= n; i++)
		if (strncasecmp(s + i, needle, k) == 0)
			return 1;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dynbuf out;

	dynbuf_init(&out, 1 << 20);
	(void)quarantine_html_sanitize((const char *)data, size, &out);
	if (out.len > out.max)
		abort();
	/* Text never holds a raw '<' and values never a raw '"': every <...> is a tag we
	 * wrote, ` name="value"` after the element name. */
	for (size_t i = 0; out.data != NULL && i < out.len; i++) {
		const char *p, *end;

		if (out.data[i] != '<')
			continue;
		end = memchr(out.data + i, '>', out.len - i);
		if (end == NULL)
			abort();
		p = out.data + i + 1;
		if (has_ci(p, (size_t)(end - p), "script") && strncasecmp(p, "script", 6) == 0)
			abort();
		if (strncasecmp(p, "iframe", 6) == 0)
			abort();
		while (p < end && *p != ' ')
			p++;
		while (p < end) {
			const char *eq = memchr(p, '=', (size_t)(end - p));
			const char *q1, *q2;

			if (*p != ' ' || eq == NULL || eq[1] != '"')
				abort();
			q1 = eq + 2;
			q2 = memchr(q1, '"', (size_t)(end - q1));
			if (q2 == NULL)
				abort();
			if (strncasecmp(p + 1, "on", 2) == 0)
				abort();
			if (strncmp(p + 1, "src=", 4) == 0 && strncasecmp(q1, "data:image/", 11) != 0)
				abort();
			if (strncmp(p + 1, "href=", 5) == 0 && q1[0] != '#' &&
			    strncasecmp(q1, "mailto:", 7) != 0)
				abort();
			if (strncmp(p + 1, "style=", 6) == 0 &&
			    (has_ci(q1, (size_t)(q2 - q1), "javascript") ||
			     has_ci(q1, (size_t)(q2 - q1), "url")))
				abort();
			p = q2 + 1;
		}
		i = (size_t)(end - out.data);
	}
	dynbuf_free(&out);
	return 0;
}
