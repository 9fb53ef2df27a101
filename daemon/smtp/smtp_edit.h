/*
 * smtp_edit: the per-recipient edit of a message's header section, applied
 * while the delivery client streams the spool file (docs/mailbox-rules.md,
 * "Folders at a gateway").  A pure push parser: bytes in, bytes out through
 * a callback, no I/O, any split of the input across calls gives the same
 * output.  Memory is constant: only a field name is ever buffered.
 *
 * What it changes, and nothing else:
 *   - spec->add (whole header lines, each ending in CRLF) goes at the top:
 *     after the first field when that is a Received: field (the trace field
 *     moatd added on reception), else before the first field;
 *   - fields named in spec->drop (with their continuation lines) are left
 *     out (Importance/X-Priority replaced by the edit's, a forged
 *     X-Moat-Folder);
 *   - spec->subject_prefix goes in front of the first Subject's value
 *     (folded lines included); a header without Subject gets one.
 * The body, and every other byte of the header, passes through unchanged.
 */
#ifndef MOAT_SMTP_EDIT_H
#define MOAT_SMTP_EDIT_H

#include <stddef.h>

#define SMTP_EDIT_NAME_MAX 80 /* a longer field name is passed through as it is */

struct smtp_edit_spec {
	const char *add;            /* header lines ending CRLF, or NULL */
	size_t add_len;
	const char *subject_prefix; /* NULL or "": the Subject stays */
	const char *const *drop;    /* field names (case-insensitive) to leave out */
	size_t ndrop;
};

typedef void (*smtp_edit_out_fn)(void *arg, const char *p, size_t n);

struct smtp_edit {
	const struct smtp_edit_spec *spec;
	int state;
	int added;        /* spec->add written (or pending after Received: added=2) */
	int fields;       /* header fields begun */
	int subject_seen;
	int subj_ws;      /* white space seen after "Subject:" */
	int drop_cur;     /* the current field is being left out */
	int last_lf;      /* the last byte written was a LF (or nothing written) */
	size_t nlen;
	char name[SMTP_EDIT_NAME_MAX];
};

/* spec must outlive e. */
void smtp_edit_init(struct smtp_edit *e, const struct smtp_edit_spec *spec);
/* Push n bytes of the message; out() receives the edited bytes. */
void smtp_edit_push(struct smtp_edit *e, const char *p, size_t n, smtp_edit_out_fn out,
		    void *arg);
/*
 * End of the message.  When it ended inside the header section, whatever
 * is still owed (the added lines, a Subject) is written, after a CRLF if
 * the last line was not complete.
 */
void smtp_edit_finish(struct smtp_edit *e, smtp_edit_out_fn out, void *arg);

#endif
