/*
 * smtp_edit: the streaming header editor of a recipient's delivery edit.
 * See smtp_edit.h.  Called by smtp_client while it reads the spool file in
 * chunks; the unit test feeds every split of its inputs and the fuzz
 * harness (fuzz/fuzz_smtp_edit.c) checks that a message without an edit
 * comes out byte-identical.  Never buffers more than a field name.
 */
#include "smtp_edit.h"

#include <string.h>
#include <strings.h>

enum {
	S_SOL,      /* start of a header line */
	S_CR,       /* a CR at the start of a line: the blank line, perhaps */
	S_NAME,     /* a field name, until ':' */
	S_PASS,     /* rest of a line that is passed through */
	S_DROP,     /* rest of a line of a field left out */
	S_SUBJ_WS,  /* after "Subject:", before the first byte of the value */
	S_BODY,
};

void smtp_edit_init(struct smtp_edit *e, const struct smtp_edit_spec *spec)
{
	memset(e, 0, sizeof(*e));
	e->spec = spec;
	e->state = S_SOL;
	e->last_lf = 1;
}

static void emit(struct smtp_edit *e, const char *p, size_t n, smtp_edit_out_fn out, void *arg)
{
	if (n == 0)
		return;
	out(arg, p, n);
	e->last_lf = p[n - 1] == '\n';
}

static int has_prefix(const struct smtp_edit *e)
{
	return e->spec->subject_prefix != NULL && e->spec->subject_prefix[0] != '\0';
}

/* The prefix without its trailing white space (before a fold or the end). */
static size_t prefix_trimmed(const struct smtp_edit *e)
{
	size_t n = strlen(e->spec->subject_prefix);

	while (n > 0 && (e->spec->subject_prefix[n - 1] == ' ' ||
			 e->spec->subject_prefix[n - 1] == '\t'))
		n--;
	return n;
}

static void write_add(struct smtp_edit *e, smtp_edit_out_fn out, void *arg)
{
	e->added = 1;
	if (e->spec->add != NULL)
		emit(e, e->spec->add, e->spec->add_len, out, arg);
}

/* A field begins: the added lines go before it, unless it is the first and a Received. */
static void field_start(struct smtp_edit *e, int is_received, smtp_edit_out_fn out, void *arg)
{
	if (e->added == 2)
		write_add(e, out, arg);
	else if (e->added == 0 && (e->fields > 0 || !is_received))
		write_add(e, out, arg);
	else if (e->added == 0)
		e->added = 2; /* after this Received and its continuation lines */
	e->fields++;
}

/* The header ends (blank line or end of message): what is still owed. */
static void header_end(struct smtp_edit *e, smtp_edit_out_fn out, void *arg)
{
	if (e->added != 1)
		write_add(e, out, arg);
	if (has_prefix(e) && !e->subject_seen) {
		e->subject_seen = 1;
		emit(e, "Subject: ", 9, out, arg);
		emit(e, e->spec->subject_prefix, prefix_trimmed(e), out, arg);
		emit(e, "\r\n", 2, out, arg);
	}
}

static size_t name_len_trimmed(const struct smtp_edit *e)
{
	size_t n = e->nlen;

	while (n > 0 && (e->name[n - 1] == ' ' || e->name[n - 1] == '\t'))
		n--;
	return n;
}

static int name_is(const struct smtp_edit *e, const char *want)
{
	size_t n = name_len_trimmed(e);

	return strlen(want) == n && strncasecmp(e->name, want, n) == 0;
}

static int name_dropped(const struct smtp_edit *e)
{
	size_t i;

	for (i = 0; i < e->spec->ndrop; i++)
		if (name_is(e, e->spec->drop[i]))
			return 1;
	return 0;
}

/* The name buffered so far is not a field name we act on: pass it on. */
static void name_flush(struct smtp_edit *e, smtp_edit_out_fn out, void *arg)
{
	field_start(e, 0, out, arg);
	emit(e, e->name, e->nlen, out, arg);
	e->nlen = 0;
	e->state = S_PASS;
}

/* ':' ends the name in e->name. */
static void name_done(struct smtp_edit *e, smtp_edit_out_fn out, void *arg)
{
	if (name_dropped(e)) {
		field_start(e, 0, out, arg);
		e->drop_cur = 1;
		e->state = S_DROP;
	} else if (name_is(e, "Subject") && !e->subject_seen && has_prefix(e)) {
		field_start(e, 0, out, arg);
		e->subject_seen = 1;
		emit(e, e->name, e->nlen, out, arg);
		emit(e, ":", 1, out, arg);
		e->subj_ws = 0;
		e->state = S_SUBJ_WS;
	} else {
		if (name_is(e, "Subject"))
			e->subject_seen = 1;
		field_start(e, name_is(e, "Received"), out, arg);
		emit(e, e->name, e->nlen, out, arg);
		emit(e, ":", 1, out, arg);
		e->state = S_PASS;
	}
	e->nlen = 0;
}

static void subject_prefix(struct smtp_edit *e, int fold, smtp_edit_out_fn out, void *arg)
{
	if (!e->subj_ws)
		emit(e, " ", 1, out, arg);
	emit(e, e->spec->subject_prefix,
	     fold ? prefix_trimmed(e) : strlen(e->spec->subject_prefix), out, arg);
	e->state = S_PASS;
}

void smtp_edit_push(struct smtp_edit *e, const char *p, size_t n, smtp_edit_out_fn out,
		    void *arg)
{
	size_t i = 0;

	while (i < n) {
		char c = p[i];
		const char *lf;
		size_t run;

		switch (e->state) {
		case S_BODY:
			emit(e, p + i, n - i, out, arg);
			return;
		case S_PASS:
		case S_DROP:
			lf = memchr(p + i, '\n', n - i);
			run = lf != NULL ? (size_t)(lf - (p + i)) + 1 : n - i;
			if (e->state == S_PASS)
				emit(e, p + i, run, out, arg);
			i += run;
			if (lf != NULL) {
				e->drop_cur = e->state == S_DROP;
				e->state = S_SOL;
			}
			break;
		case S_SOL:
			if (c == ' ' || c == '\t') {
				/* A continuation line: it goes where its field goes. */
				e->state = e->drop_cur ? S_DROP : S_PASS;
				break; /* the byte is taken in that state */
			}
			e->drop_cur = 0;
			if (c == '\r') {
				e->state = S_CR;
				i++;
			} else if (c == '\n') {
				header_end(e, out, arg);
				emit(e, "\n", 1, out, arg);
				e->state = S_BODY;
				i++;
			} else {
				e->nlen = 0;
				e->state = S_NAME;
			}
			break;
		case S_CR:
			if (c == '\n') {
				header_end(e, out, arg);
				emit(e, "\r\n", 2, out, arg);
				e->state = S_BODY;
				i++;
			} else {
				/* A bare CR opening a line: not a field we know; pass it. */
				field_start(e, 0, out, arg);
				emit(e, "\r", 1, out, arg);
				e->state = S_PASS;
			}
			break;
		case S_NAME:
			if (c == ':') {
				name_done(e, out, arg);
				i++;
			} else if (c == '\r' || c == '\n' || e->nlen == sizeof(e->name)) {
				name_flush(e, out, arg); /* the byte is taken as passed through */
			} else {
				e->name[e->nlen++] = c;
				i++;
			}
			break;
		case S_SUBJ_WS:
			if (c == ' ' || c == '\t') {
				e->subj_ws = 1;
				emit(e, p + i, 1, out, arg);
				i++;
			} else {
				subject_prefix(e, c == '\r' || c == '\n', out, arg);
			}
			break;
		}
	}
}

void smtp_edit_finish(struct smtp_edit *e, smtp_edit_out_fn out, void *arg)
{
	switch (e->state) {
	case S_BODY:
		return;
	case S_NAME:
		name_flush(e, out, arg);
		break;
	case S_CR:
		field_start(e, 0, out, arg);
		emit(e, "\r", 1, out, arg);
		break;
	case S_SUBJ_WS:
		subject_prefix(e, 1, out, arg);
		break;
	default:
		break;
	}
	if (!e->last_lf)
		emit(e, "\r\n", 2, out, arg);
	header_end(e, out, arg);
	e->state = S_BODY;
}
