/*
 * quarantine_html: the HTML part of a quarantined message made safe to
 * show in the console's <iframe sandbox> (GET /api/v1/quarantine/{id}/html).
 * A pure function over (const char *, size_t): no I/O, no allocation but
 * the caller's dynbuf; fuzzed (fuzz/fuzz_quarantine_html.c).
 *
 * What comes out: only tags of an allow list (text formatting, lists,
 * tables, links, images) with only harmless attributes; script, style,
 * iframe, object, embed, form, input and every other tag removed (the
 * text of raw-text elements such as script and style removed with them);
 * no on* attribute; href only "#..." or "mailto:"; img src only inline
 * data: images (png, gif, jpeg, webp); style attributes without url(),
 * expression(), @import or escapes; comments, doctype and processing
 * instructions dropped; every attribute value re-quoted and escaped.  The
 * Content-Security-Policy of the route is the second line of defence.
 */
#ifndef MOAT_QUARANTINE_HTML_H
#define MOAT_QUARANTINE_HTML_H

#include <stddef.h>

struct dynbuf;

/* Append the sanitised form of in to out.  0, or -1 when out is full (cut). */
int quarantine_html_sanitize(const char *in, size_t n, struct dynbuf *out);

#endif
