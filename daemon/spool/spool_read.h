/*
 * spool_read: reading acknowledged messages in <data_dir>/spool/queue/.
 * The one place that builds a queued message's path, opens it, reads its
 * header section (bounded) and walks its header fields.  Used by the queue
 * runner (delivery, DSNs), the queue API, the CLI and queue_admin.
 *
 * Any thread may call these: they keep no state.  The field walk is a pure
 * function over (buf, len), unit-tested.
 */
#ifndef MOAT_SPOOL_READ_H
#define MOAT_SPOOL_READ_H

#include <stddef.h>

struct dynbuf;

/* A queue id as we write them: 1 to 32 hexadecimal digits.  1 or 0. */
int spool_qid_valid(const char *s, size_t len);

/* "<data_dir>/spool/queue/<qid>" into out; -1 for a bad qid or no room. */
int spool_queue_path(const char *data_dir, const char *qid, char *out, size_t outsz);

/* Open queue/<qid> read-only for streaming; an fd, or -1 with errno set. */
int spool_read_open(const char *data_dir, const char *qid);

/*
 * The header section of queue/<qid>: at most max bytes, cut after the
 * line end of the last field (the empty line is not included).  buf (size
 * max + 1) is NUL-terminated; *len is the section's length.  0, or -1 when
 * the file cannot be opened (errno set).
 */
int spool_read_headers(const char *data_dir, const char *qid, char *buf, size_t max,
		       size_t *len);

/*
 * Next header field of buf[0..len) from *pos: its name, and its value
 * unfolded (CR of folded lines as spaces, outer blanks trimmed) into
 * value, which is reset first.  1 and *pos advanced, or 0 at the empty
 * line, the end, or a line that is not a field (stop rather than guess).
 */
int spool_header_next(const char *buf, size_t len, size_t *pos, const char **name,
		      size_t *name_len, struct dynbuf *value);

/* The value of the first field called name (any case) into value: 1, or 0 if none. */
int spool_header_get(const char *buf, size_t len, const char *name, struct dynbuf *value);

/*
 * The whole file at path (a queue or quarantine file), NUL-terminated; at
 * most max octets.  NULL when it cannot be read (gone) or, with *too_big
 * set, is larger than max.  Not on the mail loop.
 */
char *spool_read_file(const char *path, size_t max, size_t *len, int *too_big);

#endif
