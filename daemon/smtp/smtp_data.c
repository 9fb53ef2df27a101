/*
 * smtp_data: see smtp_data.h.
 *
 * States, named by what was seen last on the wire:
 *   SOL     start of a line (after CRLF, or right after the 354)
 *   MID     inside a line
 *   CR      a CR inside a line, LF must follow
 *   DOT     a '.' at the start of a line
 *   DOT_CR  ".\r" at the start of a line, LF must follow: the end
 * A CR that is held back (state CR) is produced together with its LF, so
 * the output only ever holds complete CRLF pairs.
 */
#include "smtp_data.h"

#include <stdint.h>
#include <string.h>

enum { ST_SOL, ST_MID, ST_CR, ST_DOT, ST_DOT_CR };

/*
 * The header section, followed on the produced (unstuffed) octets:
 *   HDR_START  before the first field
 *   HDR_NAME   a line that may start a field: printable octets up to ':'
 *   HDR_FIELD  inside a field (its first line or a folded continuation)
 *   HDR_BODY   past the header section: nothing more is counted
 */
enum { HDR_START, HDR_NAME, HDR_FIELD, HDR_BODY };

void smtp_data_init(struct smtp_data *d, size_t max_line, int64_t max_size)
{
	d->state = ST_SOL;
	d->line_len = 0;
	d->max_line = max_line;
	d->size = 0;
	d->max_size = max_size;
	d->flags = 0;
	d->hdr = HDR_START;
	d->hdr_sol = 1;
	d->hdr_field_len = 0;
	d->hdr_count = 0;
	d->max_header_size = SIZE_MAX;
	d->max_header_count = SIZE_MAX;
	d->mid_pos = 0;
	d->mid_capture = 0;
	d->mid_done = 0;
	d->mid_len = 0;
	d->mid[0] = '\0';
}

void smtp_data_header_limits(struct smtp_data *d, size_t max_header_size,
			     size_t max_header_count)
{
	d->max_header_size = max_header_size;
	d->max_header_count = max_header_count;
}

static void hdr_grow(struct smtp_data *d, size_t n)
{
	d->hdr_field_len += n;
	/* A name that never reaches its ':' is body text, not a field. */
	if (d->hdr == HDR_FIELD && d->hdr_field_len > d->max_header_size)
		d->flags |= SMTP_DATA_ERR_HDR_SIZE;
}

static void mid_end(struct smtp_data *d)
{
	if (d->mid_capture < 0)
		d->mid_len = 0; /* too long: none kept */
	if (d->mid_capture) {
		d->mid_capture = 0;
		d->mid_done = 1;
	}
}

/* One octet of a field name (before its ':'): is it "Message-ID"? */
static void mid_name(struct smtp_data *d, unsigned char c)
{
	static const char want[] = "message-id";

	if (d->mid_pos < 0)
		return;
	if (d->mid_pos < (int)sizeof(want) - 1 &&
	    (c >= 'A' && c <= 'Z' ? c + 32 : c) == (unsigned char)want[d->mid_pos])
		d->mid_pos++;
	else
		d->mid_pos = -1;
}

/* One produced octet of a line (never CR or LF). */
static void hdr_octet(struct smtp_data *d, unsigned char c)
{
	if (d->hdr == HDR_BODY)
		return;
	if (d->hdr_sol) {
		d->hdr_sol = 0;
		/* SP or HTAB first: a folded continuation of the field before. */
		if (!((c == ' ' || c == '\t') && d->hdr == HDR_FIELD)) {
			d->hdr = HDR_NAME;
			d->hdr_field_len = 0;
			d->mid_pos = 0;
			mid_end(d);
		}
	}
	if (d->hdr == HDR_NAME) {
		if (c == ':' && d->hdr_field_len > 0) {
			d->hdr = HDR_FIELD;
			d->hdr_count++;
			if (d->hdr_count > d->max_header_count)
				d->flags |= SMTP_DATA_ERR_HDR_COUNT;
			if (d->mid_pos == 10 && !d->mid_done) {
				d->mid_capture = 1;
				d->mid_len = 0;
			}
			hdr_grow(d, 1);
			return;
		} else if (c < 33 || c > 126 || c == ':') {
			d->hdr = HDR_BODY;
			return;
		}
		mid_name(d, c);
	} else if (d->mid_capture) {
		if (d->mid_len < SMTP_DATA_MSGID_MAX)
			d->mid[d->mid_len++] = (char)c;
		else
			d->mid_capture = -1; /* too long: not kept */
	}
	hdr_grow(d, 1);
}

/* A produced CRLF. */
static void hdr_eol(struct smtp_data *d)
{
	if (d->hdr == HDR_BODY)
		return;
	if (d->hdr_sol || d->hdr == HDR_NAME) {
		/* The empty line, or a line that is not a field: the body starts. */
		d->hdr = HDR_BODY;
		mid_end(d);
		return;
	}
	hdr_grow(d, 2);
	d->hdr_sol = 1;
}

#define ERRORS (SMTP_DATA_ERR_LINE | SMTP_DATA_ERR_NUL | SMTP_DATA_ERR_SIZE | \
		SMTP_DATA_ERR_HDR_SIZE | SMTP_DATA_ERR_HDR_COUNT)

static void emit(struct smtp_data *d, char *out, size_t *o, char c)
{
	if (d->flags & ERRORS)
		return;
	if (d->size >= d->max_size) {
		d->flags |= SMTP_DATA_ERR_SIZE;
		return;
	}
	out[(*o)++] = c;
	d->size++;
}

static void count_octet(struct smtp_data *d, unsigned char c)
{
	d->line_len++;
	/* +2: the CRLF that must still end this line */
	if (d->line_len + 2 > d->max_line)
		d->flags |= SMTP_DATA_ERR_LINE;
	if (c == '\0')
		d->flags |= SMTP_DATA_ERR_NUL;
	else if (c >= 0x80)
		d->flags |= SMTP_DATA_8BIT;
}

enum smtp_data_status smtp_data_feed(struct smtp_data *d, const char *in, size_t len,
				     char *out, size_t *outlen, size_t *consumed)
{
	size_t o = 0;
	size_t i;

	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)in[i];

		switch (d->state) {
		case ST_SOL:
			d->line_len = 0;
			if (c == '.') {
				d->line_len = 1;
				d->state = ST_DOT;
			} else if (c == '\r') {
				d->state = ST_CR;
			} else if (c == '\n') {
				goto bare_lf;
			} else {
				count_octet(d, c);
				hdr_octet(d, c);
				emit(d, out, &o, (char)c);
				d->state = ST_MID;
			}
			break;
		case ST_MID:
			if (c == '\r') {
				d->state = ST_CR;
			} else if (c == '\n') {
				goto bare_lf;
			} else {
				count_octet(d, c);
				hdr_octet(d, c);
				emit(d, out, &o, (char)c);
			}
			break;
		case ST_CR:
			if (c != '\n')
				goto bare_cr;
			emit(d, out, &o, '\r');
			emit(d, out, &o, '\n');
			hdr_eol(d);
			d->state = ST_SOL;
			break;
		case ST_DOT:
			if (c == '\r') {
				d->state = ST_DOT_CR;
			} else if (c == '\n') {
				goto bare_lf;
			} else {
				/* The leading dot is stuffing: drop it, keep the rest. */
				count_octet(d, c);
				hdr_octet(d, c);
				emit(d, out, &o, (char)c);
				d->state = ST_MID;
			}
			break;
		case ST_DOT_CR:
			if (c != '\n')
				goto bare_cr;
			*outlen = o;
			*consumed = i + 1;
			return SMTP_DATA_END;
		}
	}
	*outlen = o;
	*consumed = len;
	return SMTP_DATA_MORE;
bare_lf:
	*outlen = o;
	*consumed = i + 1;
	return SMTP_DATA_BARE_LF;
bare_cr:
	*outlen = o;
	*consumed = i + 1;
	return SMTP_DATA_BARE_CR;
}

int smtp_data_message_id(const struct smtp_data *d, char *out, size_t outsz)
{
	const char *p = d->mid;
	size_t len;
	size_t i;

	out[0] = '\0';
	if (!d->mid_done && d->mid_capture != 1)
		return -1; /* none, or the header section never ended it */
	if (d->mid_capture < 0 || d->mid_len == 0)
		return -1;
	len = d->mid_len;
	while (len > 0 && (*p == ' ' || *p == '\t')) {
		p++;
		len--;
	}
	while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t'))
		len--;
	if (len >= 2 && p[0] == '<') {
		const char *gt = memchr(p, '>', len);

		if (gt == NULL)
			return -1;
		len = (size_t)(gt - p) - 1;
		p++;
	}
	if (len == 0 || len >= outsz)
		return -1;
	for (i = 0; i < len; i++)
		if ((unsigned char)p[i] <= ' ' || (unsigned char)p[i] >= 127)
			return -1;
	memcpy(out, p, len);
	out[len] = '\0';
	return 0;
}
