/*
 * queue_edit: a recipient's delivery edit (queue_rcpt.edit, JSON written by
 * the mailbox rules at end of DATA) turned into what the delivery client
 * applies: the header lines to add, the Subject prefix, the fields to
 * leave out (smtp_edit_spec), and the RCPT TO address of the plus method.
 * Pure functions, no I/O; the queue runner calls them on the loop for each
 * leased recipient.  A field or value that cannot be written into a header
 * safely is left out and reported in warn, never passed on raw (a CR or LF
 * in a value would let a rule inject header lines).
 */
#include "queue.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../util/util.h"

#define EDIT_LINE_MAX 900    /* a header value longer than this is left out */
#define EDIT_FIELD_MAX 4000  /* octets of a folded header value of an edit */
#define EDIT_HEADERS_MAX 32  /* header lines of one edit */
#define EW_RAW_MAX 45        /* octets per encoded word: 60 base64 + 12 <= 75 */
#define LOCAL_PART_MAX 64    /* RFC 5321 4.5.3.1.1 */

static const char *const drop_always[] = { "X-Moat-Folder" };
static const char *const drop_importance[] = { "X-Moat-Folder", "Importance", "X-Priority" };

static void warn_add(struct queue_edit *e, const char *what)
{
	size_t used = strlen(e->warn);

	snprintf(e->warn + used, sizeof(e->warn) - used, "%s%s", used > 0 ? "; " : "", what);
}

static int is_ascii_text(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s > 0x7e || ((unsigned char)*s < 0x20 && *s != '\t'))
			return 0;
	return 1;
}

/* No control character but tab: nothing that could end or fold a line. */
static int is_safe_value(const char *s)
{
	for (; *s != '\0'; s++)
		if (((unsigned char)*s < 0x20 && *s != '\t') || *s == 0x7f)
			return 0;
	return 1;
}

static void base64(struct dynbuf *b, const unsigned char *p, size_t n)
{
	static const char tab[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t i;

	for (i = 0; i + 2 < n; i += 3) {
		char o[4] = { tab[p[i] >> 2], tab[((p[i] & 3) << 4) | (p[i + 1] >> 4)],
			      tab[((p[i + 1] & 15) << 2) | (p[i + 2] >> 6)], tab[p[i + 2] & 63] };

		dynbuf_add(b, o, 4);
	}
	if (n - i == 1) {
		char o[4] = { tab[p[i] >> 2], tab[(p[i] & 3) << 4], '=', '=' };

		dynbuf_add(b, o, 4);
	} else if (n - i == 2) {
		char o[4] = { tab[p[i] >> 2], tab[((p[i] & 3) << 4) | (p[i + 1] >> 4)],
			      tab[(p[i + 1] & 15) << 2], '=' };

		dynbuf_add(b, o, 4);
	}
}

/*
 * s as RFC 2047 encoded words (UTF-8, B), each whole characters and at
 * most 75 octets, folded onto continuation lines: readers join adjacent
 * encoded words without the white space between them.
 */
static void encoded_words(struct dynbuf *b, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n = strlen(s);
	size_t i = 0;

	while (i < n) {
		size_t k = n - i < EW_RAW_MAX ? n - i : EW_RAW_MAX;

		/* Back off to a character boundary (not before a continuation octet). */
		while (i + k < n && k > 1 && (p[i + k] & 0xc0) == 0x80)
			k--;
		if (i > 0)
			dynbuf_add(b, "\r\n ", 3);
		dynbuf_add(b, "=?UTF-8?B?", 10);
		base64(b, p + i, k);
		dynbuf_add(b, "?=", 2);
		i += k;
	}
}

/* ASCII text that may be folded (CRLF and a space or tab): written as it is. */
static int is_ascii_folded(const char *s)
{
	for (; *s != '\0'; s++) {
		if (s[0] == '\r' && s[1] == '\n' && (s[2] == ' ' || s[2] == '\t')) {
			s++;
			continue;
		}
		if ((unsigned char)*s > 0x7e || ((unsigned char)*s < 0x20 && *s != '\t'))
			return 0;
	}
	return 1;
}

static void add_field(struct dynbuf *b, const char *name, size_t name_len, const char *value)
{
	dynbuf_add(b, name, name_len);
	dynbuf_add(b, ": ", 2);
	if (is_ascii_folded(value))
		dynbuf_add(b, value, strlen(value));
	else
		encoded_words(b, value);
	dynbuf_add(b, "\r\n", 2);
}

/*
 * A header value written by moatd itself (a DKIM signature, the score): it
 * may be folded, CRLF followed by a space or a tab, each line at most 998
 * octets (RFC 5322 2.1.1) and the whole at most EDIT_FIELD_MAX; no other
 * control character but tab.
 */
static int is_safe_folded(const char *s)
{
	size_t line = 0, total = 0;

	for (; *s != '\0'; s++, line++, total++) {
		if (s[0] == '\r' && s[1] == '\n' && (s[2] == ' ' || s[2] == '\t')) {
			s++;
			total++;
			line = 0;
			continue;
		}
		if (((unsigned char)*s < 0x20 && *s != '\t') || *s == 0x7f || line > 990)
			return 0;
	}
	return total <= EDIT_FIELD_MAX;
}

/* "Name: value" of an edit's headers: a field name of printable ASCII, a safe value. */
static int add_header_line(struct queue_edit *e, struct dynbuf *b, const char *line)
{
	const char *colon = strchr(line, ':');
	const char *v;
	size_t i, nlen;

	if (colon == NULL || colon == line || colon - line > 76)
		return -1;
	nlen = (size_t)(colon - line);
	for (i = 0; i < nlen; i++)
		if ((unsigned char)line[i] < 33 || (unsigned char)line[i] > 126)
			return -1;
	v = colon + 1;
	while (*v == ' ' || *v == '\t')
		v++;
	if (!is_safe_folded(v))
		return -1;
	(void)e;
	add_field(b, line, nlen, v);
	return 0;
}

int queue_edit_parse(const char *json, struct queue_edit *out, char *err, size_t errsz)
{
	json_error_t je;
	json_t *root;
	json_t *v;

	memset(out, 0, sizeof(*out));
	root = json_loads(json, JSON_REJECT_DUPLICATES, &je);
	if (root == NULL || !json_is_object(root)) {
		snprintf(err, errsz, "edit is not a JSON object");
		json_decref(root);
		return -1;
	}
	v = json_object_get(root, "folder");
	if (json_is_string(v) && json_string_length(v) > 0 && json_string_length(v) <= 255 &&
	    is_safe_value(json_string_value(v)))
		out->folder = xstrdup(json_string_value(v));
	else if (v != NULL)
		warn_add(out, "folder left out");
	v = json_object_get(root, "subject_prefix");
	if (json_is_string(v) && json_string_length(v) <= EDIT_LINE_MAX &&
	    is_safe_value(json_string_value(v)) && json_string_length(v) > 0)
		out->subject_prefix_raw = xstrdup(json_string_value(v));
	else if (v != NULL)
		warn_add(out, "subject_prefix left out");
	v = json_object_get(root, "importance");
	if (json_is_string(v) && (strcmp(json_string_value(v), "high") == 0 ||
				  strcmp(json_string_value(v), "normal") == 0 ||
				  strcmp(json_string_value(v), "low") == 0))
		out->importance = json_string_value(v)[0];
	else if (v != NULL)
		warn_add(out, "importance left out");
	v = json_object_get(root, "headers");
	if (json_is_array(v)) {
		size_t i;

		for (i = 0; i < json_array_size(v); i++) {
			json_t *h = json_array_get(v, i);

			if (i >= EDIT_HEADERS_MAX || !json_is_string(h)) {
				warn_add(out, "header left out");
				continue;
			}
			out->headers = xrealloc(out->headers, (out->nheaders + 1) * sizeof(char *));
			out->headers[out->nheaders++] = xstrdup(json_string_value(h));
		}
	} else if (v != NULL) {
		warn_add(out, "headers left out");
	}
	json_decref(root);
	return 0;
}

void queue_edit_spec(struct queue_edit *e, int folder_header)
{
	struct dynbuf b;
	size_t i;

	free(e->add);
	free(e->subject_prefix);
	e->add = NULL;
	e->subject_prefix = NULL;
	dynbuf_init(&b, 64 * 1024);
	for (i = 0; i < e->nheaders; i++)
		if (add_header_line(e, &b, e->headers[i]) < 0)
			warn_add(e, "header left out");
	if (e->folder != NULL && folder_header)
		add_field(&b, "X-Moat-Folder", 13, e->folder);
	if (e->importance != 0) {
		add_field(&b, "Importance", 10, e->importance == 'h' ? "high"
			  : e->importance == 'l' ? "low" : "normal");
		add_field(&b, "X-Priority", 10, e->importance == 'h' ? "1 (Highest)"
			  : e->importance == 'l' ? "5 (Lowest)" : "3 (Normal)");
	}
	e->add_len = b.len;
	e->add = b.data; /* NULL when nothing was added */
	if (e->subject_prefix_raw != NULL) {
		if (is_ascii_text(e->subject_prefix_raw)) {
			e->subject_prefix = xstrdup(e->subject_prefix_raw);
		} else {
			struct dynbuf p;

			/* The white space inside the word: it would vanish between two words. */
			dynbuf_init(&p, 16 * 1024);
			encoded_words(&p, e->subject_prefix_raw);
			dynbuf_add(&p, " ", 1);
			e->subject_prefix = p.data;
		}
	}
	memset(&e->spec, 0, sizeof(e->spec));
	e->spec.add = e->add;
	e->spec.add_len = e->add_len;
	e->spec.subject_prefix = e->subject_prefix;
	e->spec.drop = e->importance != 0 ? drop_importance : drop_always;
	e->spec.ndrop = e->importance != 0 ? ARRAY_LEN(drop_importance) : ARRAY_LEN(drop_always);
}

static int atext(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

int queue_edit_plus(const char *rcpt, const char *folder, char sep, char *out, size_t outsz,
		    const char **why)
{
	const char *at = strrchr(rcpt, '@');
	struct dynbuf b;
	size_t llen, i;
	int rc = -1;

	if (at == NULL || at == rcpt) {
		*why = "recipient without a local part";
		return -1;
	}
	llen = (size_t)(at - rcpt);
	if (rcpt[0] == '"') {
		*why = "quoted local part";
		return -1;
	}
	if (memchr(rcpt, '+', llen) != NULL) {
		*why = "local part already has a +detail";
		return -1;
	}
	dynbuf_init(&b, 1024);
	dynbuf_add(&b, rcpt, llen);
	dynbuf_add(&b, "+", 1);
	for (i = 0; folder[i] != '\0'; i++) {
		unsigned char c = (unsigned char)folder[i];

		if (c == '/')
			c = (unsigned char)sep;
		if (!atext(c) && c != '.') {
			*why = c >= 0x80 ? "folder is not ASCII" : "folder has a character a local part"
				" cannot carry";
			goto out;
		}
		if (c == '.' && (folder[i + 1] == '\0' || b.data[b.len - 1] == '.')) {
			*why = "folder gives a dot at the end or two dots";
			goto out;
		}
		dynbuf_add(&b, &c, 1);
	}
	if (b.len > LOCAL_PART_MAX) {
		*why = "local part over 64 octets";
		goto out;
	}
	dynbuf_add(&b, at, strlen(at));
	if (b.len + 1 > outsz) {
		*why = "address too long";
		goto out;
	}
	memcpy(out, b.data, b.len);
	out[b.len] = '\0';
	rc = 0;
out:
	dynbuf_free(&b);
	return rc;
}

void queue_edit_free(struct queue_edit *e)
{
	size_t i;

	if (e == NULL)
		return;
	for (i = 0; i < e->nheaders; i++)
		free(e->headers[i]);
	free(e->headers);
	free(e->folder);
	free(e->subject_prefix_raw);
	free(e->subject_prefix);
	free(e->add);
	memset(e, 0, sizeof(*e));
}
