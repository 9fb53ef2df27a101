/*
 * smtp_data: the DATA phase as a pure state machine (RFC 5321 4.5.2).
 *
 * Feed it the octets after the 354 reply; it hands back the message with
 * dot-stuffing removed and stops right after the one end of data there is,
 * <CRLF>.<CRLF>.  A bare LF or bare CR anywhere is fatal (the SMTP
 * smuggling class, CVE-2023-51764): after one the end of the data is
 * ambiguous, so the caller must refuse and end the session.  Overlong
 * lines, NUL octets, oversize messages and header fields past their size
 * or count limits are sticky flags: the data is still consumed to the end
 * so the session stays in sync, and the caller refuses the message there.
 */
#ifndef MOAT_SMTP_DATA_H
#define MOAT_SMTP_DATA_H

#include <stddef.h>
#include <stdint.h>

enum smtp_data_status {
	SMTP_DATA_MORE,    /* all input consumed, need more */
	SMTP_DATA_END,     /* end of data seen; *consumed stops after it */
	SMTP_DATA_BARE_LF, /* fatal */
	SMTP_DATA_BARE_CR, /* fatal */
};

#define SMTP_DATA_ERR_LINE 0x1 /* a line longer than max_line octets */
#define SMTP_DATA_ERR_NUL 0x2  /* a NUL octet */
#define SMTP_DATA_ERR_SIZE 0x4 /* more than max_size octets */
#define SMTP_DATA_8BIT 0x8     /* an octet >= 0x80 (fact, not error) */
#define SMTP_DATA_ERR_HDR_SIZE 0x10  /* a header field longer than max_header_size */
#define SMTP_DATA_ERR_HDR_COUNT 0x20 /* more than max_header_count header fields */

/* A Message-ID longer than this is not kept (RFC 5322 ids are far shorter). */
#define SMTP_DATA_MSGID_MAX 255

/*
 * The header section (RFC 5322 2.2) is followed as the message passes: it
 * ends at the first empty line, or at the first line that is neither a
 * field ("name:" with a printable name) nor a folded continuation (one that
 * starts with SP or HTAB) of one.  A field's size is its octets after
 * unstuffing, every line of it with its CRLF.
 */
struct smtp_data {
	int state;
	size_t line_len;  /* octets of the current line on the wire */
	size_t max_line;  /* including CRLF */
	int64_t size;     /* message octets produced */
	int64_t max_size;
	unsigned flags;

	int hdr;               /* where in the header section, see smtp_data.c */
	int hdr_sol;           /* 1 at the start of a produced line */
	size_t hdr_field_len;  /* octets of the current field so far */
	size_t hdr_count;      /* fields seen */
	size_t max_header_size;
	size_t max_header_count;

	/* The first Message-ID field's value as it passed (for the message log). */
	int mid_pos;           /* octets of "message-id" matched in this name; -1: other */
	int mid_capture;       /* inside the Message-ID field's value */
	int mid_done;          /* one was seen; later ones are ignored */
	size_t mid_len;
	char mid[SMTP_DATA_MSGID_MAX + 1];
};

/* Header limits are off (SIZE_MAX) until smtp_data_header_limits(). */
void smtp_data_init(struct smtp_data *d, size_t max_line, int64_t max_size);
void smtp_data_header_limits(struct smtp_data *d, size_t max_header_size,
			     size_t max_header_count);

/*
 * Consume in[0..len).  Message octets go to out, which must hold len + 1
 * octets (a CR held back from the previous call comes out with its LF);
 * *outlen tells how many were written.  *consumed tells how much
 * of in was used (less than len only at SMTP_DATA_END or a fatal status).
 * No octets are produced once an error flag is set.
 */
/*
 * The message's first Message-ID field: its msg-id without the angle
 * brackets, printable ASCII only, into out (outsz > 0).  0, or -1 (out
 * empty) when there was none or it is not usable.
 */
int smtp_data_message_id(const struct smtp_data *d, char *out, size_t outsz);

enum smtp_data_status smtp_data_feed(struct smtp_data *d, const char *in, size_t len,
				     char *out, size_t *outlen, size_t *consumed);

#endif
