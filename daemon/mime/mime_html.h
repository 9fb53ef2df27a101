/*
 * mime_html: the module's private text helpers, used by mime.c only (and
 * by its unit test): HTML reduced to text, URL host names found in text and
 * in HTML attributes.  Pure functions over (const char *, size_t); no
 * GMime, no allocation but the caller's dynbuf.
 */
#ifndef MOAT_MIME_HTML_H
#define MOAT_MIME_HTML_H

#include <stddef.h>

#include "util/util.h"

/*
 * Called with each host name found: raw octets of the URL's host as
 * written (userinfo and port already cut off); the callee normalises.
 */
typedef void (*mime_url_cb)(void *ctx, const char *host, size_t n);

/*
 * Append the text of HTML `in` to `out`: <script>, <style> and comments
 * dropped, tags removed (block tags become a line break), character
 * references decoded, runs of white space collapsed to one.  The host of
 * every href= and src= attribute goes to cb.  Output is never longer than
 * the input.  Returns 0, or -1 when out reached its maximum (the text is
 * then cut at a character boundary).
 */
int mime_html_to_text(const char *in, size_t n, struct dynbuf *out, mime_url_cb cb, void *ctx);

/* Find http://, https://, ftp:// and www. URLs in UTF-8 text; each host goes to cb. */
void mime_url_scan(const char *s, size_t n, mime_url_cb cb, void *ctx);

/*
 * Host of one URL (an attribute value): "scheme://[user@]host[:port]...",
 * "//host..." or "www.host...".  Calls cb once or not at all.
 */
void mime_url_host(const char *s, size_t n, mime_url_cb cb, void *ctx);

/* Append the UTF-8 encoding of code point cp (invalid ones as U+FFFD). */
size_t mime_utf8_put(char *out, unsigned cp);

/*
 * Append `in` to `out` as valid UTF-8: valid sequences are copied, every
 * other octet is read as windows-1252, NUL becomes U+FFFD.  Returns 0, or
 * -1 when out is full (what fits is kept, cut at a character boundary).
 */
int mime_utf8_fix(const char *in, size_t n, struct dynbuf *out);

/* Length of the leading run of s that is ASCII without NUL (octets 0x01..0x7f). */
size_t mime_ascii_len(const char *s, size_t n);

/* Length of the valid UTF-8 prefix of s that ends on a character boundary. */
size_t mime_utf8_valid_len(const char *s, size_t n);

#endif
