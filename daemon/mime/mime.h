/*
 * mime: reads a whole message once, with GMime 3, into a read-only view
 * that every content check shares (server rules, mailbox rules, later the
 * statistical filter and DKIM).  A message of one text part, or a
 * multipart of text parts and attachments, is read without GMime's parser
 * (same view; docs/content.md).
 *
 * mime_parse() is a pure function over (buf, len): no I/O, no global state
 * but GMime's one-time init (mime_init(), from main before any thread).  It
 * may take milliseconds on a large message, so callers on the event loop run
 * it on a worker.  It never fails on hostile input: a message past a bound
 * (depth, parts, decoded bytes, time) or malformed is still described as far
 * as it was read, with MIME_F_LIMIT / MIME_F_MALFORMED set.
 *
 * Ownership: the view owns every string in it (one arena, freed by
 * mime_view_free()), except raw_body, which points into the caller's buf:
 * buf must outlive the view.  Every string is valid UTF-8.
 *
 * Threads: after mime_init(), mime_parse() may run on several threads at
 * once (no GMime object is shared); a view is read-only.  GMime recurses per
 * nesting level (up to 1024): give workers at least 256 KiB of stack.
 * docs/content.md describes decoding, bounds and costs.
 */
#ifndef MOAT_MIME_H
#define MOAT_MIME_H

#include <stddef.h>
#include <stdint.h>

/* Bounds of one walk; mime_limits_default() fills the defaults. */
struct mime_limits {
	int max_depth;          /* nesting of multiparts and message/rfc822 (default 20) */
	int max_parts;          /* leaf + container parts visited (default 500) */
	size_t max_part_text;   /* decoded UTF-8 kept per text part (default 1 MiB) */
	size_t max_text;        /* decoded UTF-8 kept for the whole message (default 4 MiB) */
	size_t max_headers;     /* top-level header fields kept (default 1000) */
	size_t max_urls;        /* distinct URL hosts kept (default 1000) */
	int64_t max_ms;         /* wall-clock budget for the walk (default 2000); checked
				   between parts, per 4 KiB of text and per header field */
	int keep_parts;         /* also fill plain/html/html_text of the view (the
				   quarantine preview; default 0: the checks do not need them) */
	int gmime_only;         /* never take the fast path (tests and
				   the fuzzer compare the two; default 0) */
};

void mime_limits_default(struct mime_limits *lim);

enum {
	MIME_F_LIMIT = 1 << 0,      /* a bound above was reached: view is partial */
	MIME_F_MALFORMED = 1 << 1,  /* broken structure (no boundary end, bad encoding ...) */
	MIME_F_HTML_ONLY = 1 << 2,  /* text came from HTML parts only */
	MIME_F_ENCRYPTED = 1 << 3,  /* multipart/encrypted or application/pkcs7-mime */
	MIME_F_8BIT_HEADERS = 1 << 4 /* raw 8-bit octets in the top-level header (not
					RFC 2047), or non-UTF-8 octets in a part's header */
};

/* One top-level header field: name as sent, value unfolded and decoded to
 * UTF-8 (RFC 2047 words, RFC 2231 parameters); invalid octets replaced. */
struct mime_header {
	const char *name;
	const char *value;
};

struct mime_attachment {
	const char *name;       /* decoded file name (Content-Disposition filename or
				   Content-Type name), "" when none */
	const char *type;       /* "type/subtype", lower case */
	size_t size;            /* encoded octets of the part */
};

struct mime_view {
	struct mime_header *headers;   /* in message order */
	size_t nheaders;
	const char *text;              /* every text/plain part, and text/html reduced
					  to text, decoded to UTF-8, joined by "\n"
					  (never NULL, no NUL inside) */
	size_t text_len;
	const char *raw_body;          /* the octets after the top-level header, as sent;
					  points into the caller's buffer */
	size_t raw_body_len;
	struct mime_attachment *attachments; /* every leaf part that is not text/plain or
						text/html, and those two with
						Content-Disposition: attachment */
	size_t nattachments;
	const char **url_hosts;        /* distinct host names (lower case, no port, no
					  trailing dot) from URLs in text and HTML
					  href/src attributes */
	size_t nurl_hosts;
	/* With mime_limits.keep_parts only, else NULL and 0: */
	const char *plain;             /* the text/plain parts, joined by "\n" */
	size_t plain_len;
	const char *html;              /* the first text/html part, decoded to UTF-8 */
	size_t html_len;
	const char *html_text;         /* that part reduced to text */
	size_t html_text_len;
	unsigned flags;                /* MIME_F_* */
	int nparts;                    /* parts visited */
	int depth;                     /* deepest nesting seen */
	int64_t parse_us;              /* time the walk took */
	int fast;                      /* 1: read by the fast path, 0: by
					  GMime (the view is the same either way) */
};

/* Once, before any thread starts. */
void mime_init(void);
void mime_shutdown(void);

/* Returns 0 and *out, or -1 only on an internal failure (err filled). */
int mime_parse(const char *buf, size_t len, const struct mime_limits *lim,
	       struct mime_view **out, char *err, size_t errsz);
void mime_view_free(struct mime_view *v);

/*
 * 0 when two views of one message are the same (headers, text, raw body,
 * attachments, URL hosts, flags, parts, depth; not parse_us or fast),
 * else -1 and the first difference described in what.  Tests and the
 * fuzzer compare the fast path's view with GMime's.
 */
int mime_view_cmp(const struct mime_view *a, const struct mime_view *b, char *what, size_t whatsz);

/*
 * Values of header `name` (ASCII case-insensitive), in order: start with
 * *pos = 0; returns NULL after the last one.
 */
const char *mime_header_next(const struct mime_view *v, const char *name, size_t *pos);

#endif
