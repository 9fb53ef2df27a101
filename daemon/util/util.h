/*
 * util: the few helpers every module needs.
 *
 * Allocation failure of an internal size aborts (xmalloc and friends): a
 * daemon that cannot get 100 bytes cannot do anything useful.  Sizes chosen
 * by a peer must be bounded by the caller before they reach these.
 */
#ifndef MOAT_UTIL_H
#define MOAT_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

void *xmalloc(size_t n);
void *xcalloc(size_t nmemb, size_t n);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);

/* Copy src into dst of size dstsz, always NUL-terminated; returns strlen(src). */
size_t strlcpy_s(char *dst, const char *src, size_t dstsz);

/* Wall-clock milliseconds since the epoch, and a monotonic counterpart. */
int64_t time_now_ms(void);
int64_t time_mono_ms(void);

/* Fill out with n (at most 256) bytes of kernel randomness. */
void random_bytes(void *out, size_t n);
/* Fill out (size >= 2*nbytes+1) with nbytes of kernel randomness in hex. */
void random_hex(char *out, size_t nbytes);

/*
 * Make client text safe for a log line: printable ASCII kept, everything
 * else as \xNN, cut at outsz-1 with "..." when too long.
 */
void log_escape(const char *in, size_t len, char *out, size_t outsz);

/* Case-insensitive ASCII prefix test. */
bool ascii_prefix(const char *s, size_t len, const char *prefix);

/*
 * A growable byte buffer with a hard maximum, fixed at creation (curl's
 * dynbuf): appending past the maximum fails and leaves the buffer as it was.
 */
struct dynbuf {
	char *data;
	size_t len;
	size_t cap;
	size_t max;
};

void dynbuf_init(struct dynbuf *b, size_t max);
int dynbuf_add(struct dynbuf *b, const void *p, size_t n);
int dynbuf_addf(struct dynbuf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* n octets of s as base64 in lines of 76 and CRLF (a MIME body part).  0 or -1. */
int dynbuf_add_base64(struct dynbuf *b, const char *s, size_t n);
void dynbuf_reset(struct dynbuf *b);
void dynbuf_free(struct dynbuf *b);

#endif
