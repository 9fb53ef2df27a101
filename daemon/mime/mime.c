/*
 * mime: one GMime 3 walk of a whole message into a read-only view
 * (mime.h).  Called by the content stage on a worker thread, several at
 * once; tests and the fuzzer call it directly.
 *
 * Contract:
 *  - pure over (buf, len): no I/O, no logging, no global state but GMime's
 *    and a few idle iconv descriptors (both set up once by mime_init()).  Every GMime object is created and
 *    dropped inside one call, so threads never share one; GMime's own
 *    shared tables (charset names) are behind its mutex.
 *  - GMime reads the caller's buffer in place (a GByteArray that borrows
 *    buf, parser in persist mode: parts are substreams of it, nothing is
 *    copied).  buf is never written.
 *  - bounded: before GMime sees the message it is cut at the line that
 *    would start too many parts ("gate" below); while GMime parses a
 *    message long enough to hold too many header fields, a header
 *    callback cuts the input short when there are too many or too much
 *    time went by; the walk checks depth, parts and the clock
 *    between parts; decoded text is capped per part and per message.
 *    A bound reached sets MIME_F_LIMIT and the view describes what was
 *    read.  Hostile input never fails the call.
 *  - the view owns its strings (an arena, the text buffer, two arrays);
 *    raw_body points into buf.
 *  - a message of one text part, or a multipart of text parts and
 *    attachments (nested or not), is read without GMime's parser
 *    (fast_path(), with GMime's decoders, charset filters and header
 *    parsers); the view must be the one GMime's walk gives, octet for
 *    octet, and anything the fast path is not sure of goes to GMime.
 */
#include <iconv.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <gmime/gmime.h>

#include "mime/mime.h"
#include "mime/mime_html.h"
#include "util/util.h"

/* Hard ceiling on nesting whatever the configuration: GMime stops at 1024. */
#define MIME_DEPTH_CEILING 1024
/* Lines starting with "--" GMime may see, per allowed part (see gate()). */
#define MIME_DASH_PER_PART 4
/* Header fields GMime may parse in all parts, per allowed part. */
#define MIME_HDRS_PER_PART 8

struct blk {
	struct blk *next;
	size_t used;
	size_t cap;
	char data[];
};

/* The view and everything it owns; v must stay the first member. */
struct view_priv {
	struct mime_view v;
	struct blk *arena;
	char *text;
};

struct walk {
	const struct mime_limits *lim;
	struct view_priv *vp;
	struct mime_view *v;
	int64_t deadline_us;
	int stop;
	int had_plain;
	int had_html;
	struct dynbuf text;     /* the view's text, max lim->max_text */
	struct dynbuf part;     /* one part's decoded octets, max lim->max_part_text */
	struct dynbuf fix;      /* the same as valid UTF-8 */
	struct dynbuf html;     /* one HTML part reduced to text */
	struct dynbuf plain;    /* keep_parts: the text/plain parts */
	size_t natt_cap;
	const char **urls;      /* hash set of hosts, open addressing */
	size_t url_cap;
	size_t url_cap_list;
	/* while GMime parses */
	GByteArray *ba;
	GMimeStream *stream;
	size_t nhdr;
	size_t hdr_cap;
};

static int64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void mime_limits_default(struct mime_limits *lim)
{
	lim->max_depth = 20;
	lim->max_parts = 500;
	lim->max_part_text = 1024 * 1024;
	lim->max_text = 4 * 1024 * 1024;
	lim->max_headers = 1000;
	lim->max_urls = 1000;
	lim->max_ms = 2000;
	lim->keep_parts = 0;
	lim->gmime_only = 0;
}

/*
 * glibc loads a gconv module for each iconv_open() of a non-builtin charset
 * and unloads it when the last descriptor closes: a dlopen()/dlclose() per
 * text part (100-200 us).  Descriptors held from init to shutdown keep the
 * modules of the common mail charsets loaded; they are never used.
 */
static const char *const pinned_charsets[] = {
	"KOI8-R", "KOI8-U", "WINDOWS-1251", "WINDOWS-1250", "WINDOWS-1253", "WINDOWS-1254",
	"WINDOWS-1255", "WINDOWS-1256", "WINDOWS-1257", "ISO-8859-2", "ISO-8859-5",
	"ISO-8859-7", "ISO-8859-9", "ISO-8859-15", "GB2312", "GBK", "GB18030", "BIG5",
	"SHIFT_JIS", "EUC-JP", "ISO-2022-JP", "EUC-KR", "ISO-2022-KR", "TIS-620",
};
static iconv_t pinned[sizeof(pinned_charsets) / sizeof(pinned_charsets[0])];

void mime_init(void)
{
	g_mime_init();
	for (size_t i = 0; i < sizeof(pinned) / sizeof(pinned[0]); i++)
		pinned[i] = iconv_open("UTF-8", pinned_charsets[i]);
}

void mime_shutdown(void)
{
	for (size_t i = 0; i < sizeof(pinned) / sizeof(pinned[0]); i++) {
		if (pinned[i] != (iconv_t)-1)
			iconv_close(pinned[i]);
		pinned[i] = (iconv_t)-1;
	}
	g_mime_shutdown();
}

/* ---- arena ----------------------------------------------------------- */

static void *arena_alloc(struct view_priv *vp, size_t n)
{
	struct blk *b = vp->arena;
	void *p;

	n = (n + 7) & ~(size_t)7;
	if (b == NULL || b->cap - b->used < n) {
		size_t cap = n > 4096 ? n : 4096;

		b = xmalloc(sizeof(*b) + cap);
		b->cap = cap;
		b->used = 0;
		b->next = vp->arena;
		vp->arena = b;
	}
	p = b->data + b->used;
	b->used += n;
	return p;
}

static const char *arena_strndup(struct view_priv *vp, const char *s, size_t n)
{
	char *p = arena_alloc(vp, n + 1);

	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

/* Copy s as valid UTF-8 (other octets read as windows-1252). */
static const char *arena_utf8(struct walk *w, const char *s)
{
	size_t n, k;

	if (s == NULL)
		return "";
	n = strlen(s);
	k = mime_ascii_len(s, n);
	if (k == n || g_utf8_validate(s + k, (gssize)(n - k), NULL))
		return arena_strndup(w->vp, s, n);
	dynbuf_reset(&w->fix);
	mime_utf8_fix(s, n, &w->fix);
	return arena_strndup(w->vp, w->fix.data != NULL ? w->fix.data : "", w->fix.len);
}

/* ---- URL hosts ------------------------------------------------------- */

static uint64_t hash(const char *s)
{
	uint64_t h = 1469598103934665603ULL;

	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

static void url_set_grow(struct walk *w)
{
	size_t cap = w->url_cap ? w->url_cap * 2 : 64;
	const char **t = xcalloc(cap, sizeof(*t));

	for (size_t i = 0; i < w->url_cap; i++) {
		size_t j;

		if (w->urls[i] == NULL)
			continue;
		j = hash(w->urls[i]) & (cap - 1);
		while (t[j] != NULL)
			j = (j + 1) & (cap - 1);
		t[j] = w->urls[i];
	}
	free(w->urls);
	w->urls = t;
	w->url_cap = cap;
}

static void on_url(void *ctx, const char *host, size_t n)
{
	struct walk *w = ctx;
	struct mime_view *v = w->v;
	char low[256];
	const char *h;
	char *down = NULL;
	size_t j;
	int wide = 0;

	if (n >= sizeof(low))
		return;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)host[i];

		low[i] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
		wide |= c >= 0x80;
	}
	low[n] = '\0';
	h = low;
	if (wide) {
		/* An IDN stays UTF-8, lower-cased the Unicode way. */
		if (!g_utf8_validate(low, (gssize)n, NULL))
			return;
		down = g_utf8_strdown(low, (gssize)n);
		h = down;
	}
	if (w->url_cap == 0 || (v->nurl_hosts + 1) * 2 > w->url_cap)
		url_set_grow(w);
	j = hash(h) & (w->url_cap - 1);
	while (w->urls[j] != NULL) {
		if (strcmp(w->urls[j], h) == 0)
			goto out;
		j = (j + 1) & (w->url_cap - 1);
	}
	if (v->nurl_hosts >= w->lim->max_urls) {
		v->flags |= MIME_F_LIMIT;
		goto out;
	}
	if (v->nurl_hosts == w->url_cap_list) {
		w->url_cap_list = w->url_cap_list ? w->url_cap_list * 2 : 16;
		v->url_hosts = xrealloc(v->url_hosts, w->url_cap_list * sizeof(*v->url_hosts));
	}
	w->urls[j] = arena_strndup(w->vp, h, strlen(h));
	v->url_hosts[v->nurl_hosts++] = w->urls[j];
out:
	g_free(down);
}

/* ---- before and during GMime's parse --------------------------------- */

/*
 * Offset of the body: after the first empty line (CRLF CRLF or LF LF, or
 * an empty first line).  *hdr_end gets the end of the header block.  No
 * empty line: the whole buffer is header and the body is empty.
 */
static size_t body_offset(const char *buf, size_t len, size_t *hdr_end)
{
	size_t i = 0;

	while (i < len) {
		const char *nl;

		if (buf[i] == '\n') {
			*hdr_end = i;
			return i + 1;
		}
		if (buf[i] == '\r' && i + 1 < len && buf[i + 1] == '\n') {
			*hdr_end = i;
			return i + 2;
		}
		nl = memchr(buf + i, '\n', len - i);
		if (nl == NULL)
			break;
		i = (size_t)(nl - buf) + 1;
	}
	*hdr_end = len;
	return len;
}

/*
 * How many octets of buf GMime gets.  Every part after the first starts
 * on a "--" line, so cutting at the (MIME_DASH_PER_PART * max_parts)th
 * such line bounds the parts GMime builds (each costs it a few hundred
 * octets and a couple of microseconds: 25 MB of "--b\r\n\r\n" would be 3
 * million of them) and its boundary scanning.  Text that merely has many
 * lines starting with "--" is cut too, and flagged.
 */
static size_t gate(const char *buf, size_t len, const struct mime_limits *lim, unsigned *flags,
		   size_t *nlines)
{
	size_t max_dash = (size_t)lim->max_parts * MIME_DASH_PER_PART + 16;
	size_t ndash = 0;
	size_t i = 0;

	*nlines = 0;
	if (len > G_MAXUINT - 1) {
		len = G_MAXUINT - 1;
		*flags |= MIME_F_LIMIT;
	}
	while (i < len) {
		const char *nl;

		(*nlines)++;
		if (len - i >= 2 && buf[i] == '-' && buf[i + 1] == '-') {
			ndash++;
			if (ndash > max_dash) {
				*flags |= MIME_F_LIMIT;
				return i;
			}
		}
		nl = memchr(buf + i, '\n', len - i);
		if (nl == NULL)
			break;
		i = (size_t)(nl - buf) + 1;
	}
	return len;
}

/* Ends GMime's input where it has read to: it finishes what it buffered. */
static void cut_input(struct walk *w)
{
	gint64 pos = g_mime_stream_tell(w->stream);

	if (pos >= 0 && (guint64)pos < w->ba->len)
		w->ba->len = (guint)pos;
	w->v->flags |= MIME_F_LIMIT;
}

static void on_header(GMimeParser *parser, const char *name, const char *value, gint64 offset,
		      gpointer data)
{
	struct walk *w = data;

	w->nhdr++;
	if (w->nhdr > w->hdr_cap || now_us() > w->deadline_us)
		cut_input(w);
}

/*
 * The fields a message or part has at most once (RFC 5322 3.6, RFC 2045
 * and RFC 2183): two copies with different values are malformed.  GMime's
 * part parser reports any repeated field with another value, trace and
 * list fields (Received, X-*) included, which nearly every real message
 * has; those are not a fault.
 */
static int single_field(const char *name, size_t len)
{
	static const char *const once[] = {
		"Date", "From", "Sender", "Reply-To", "To", "Cc", "Bcc", "Message-ID",
		"In-Reply-To", "References", "Subject", "MIME-Version", "Content-Type",
		"Content-Transfer-Encoding", "Content-Disposition", "Content-ID",
	};

	for (size_t i = 0; i < sizeof(once) / sizeof(once[0]); i++)
		if (strlen(once[i]) == len && strncasecmp(once[i], name, len) == 0)
			return 1;
	return 0;
}

static void on_warning(gint64 offset, GMimeParserWarning code, const gchar *item, gpointer data)
{
	struct walk *w = data;

	switch (code) {
	case GMIME_CRIT_CONFLICTING_HEADER:
		if (item != NULL && single_field(item, strlen(item)))
			w->v->flags |= MIME_F_MALFORMED;
		break;
	case GMIME_WARN_UNENCODED_8BIT_HEADER:
		w->v->flags |= MIME_F_8BIT_HEADERS;
		break;
	case GMIME_WARN_DUPLICATED_HEADER:
	case GMIME_WARN_DUPLICATED_PARAMETER:
	case GMIME_WARN_INVALID_ADDRESS_LIST:
		break;
	case GMIME_CRIT_NESTING_OVERFLOW:
		w->v->flags |= MIME_F_LIMIT | MIME_F_MALFORMED;
		break;
	case GMIME_WARN_TRUNCATED_MESSAGE:
		/* A header without a body is a complete message. */
		if (w->v->raw_body_len > 0)
			w->v->flags |= MIME_F_MALFORMED;
		break;
	default:
		w->v->flags |= MIME_F_MALFORMED;
		break;
	}
}

/*
 * Raw 8-bit octets in the top-level header block: returns 0 and the
 * block's charset= value in out ("" when none), a hint for GMime's
 * decoding; -1 when the block is 7-bit.
 */
static int charset_hint(const char *hdr, size_t n, char *out, size_t outsz)
{
	int wide = 0;

	for (size_t i = 0; i < n && !wide; i++)
		wide = (unsigned char)hdr[i] >= 0x80;
	if (!wide)
		return -1;
	out[0] = '\0';
	for (size_t i = 7; i < n; i++) {
		size_t j = i + 1;
		size_t k = 0;

		if (hdr[i] != '=' || strncasecmp(hdr + i - 7, "charset", 7) != 0)
			continue;
		if (j < n && hdr[j] == '"')
			j++;
		while (j + k < n && k + 1 < outsz &&
		       (g_ascii_isalnum(hdr[j + k]) || hdr[j + k] == '-' || hdr[j + k] == '_' ||
			hdr[j + k] == '.' || hdr[j + k] == ':'))
			k++;
		memcpy(out, hdr + j, k);
		out[k] = '\0';
		break;
	}
	return 0;
}

/* ---- the walk -------------------------------------------------------- */

/* Append one part's text to the view's text, "\n" between parts. */
static void add_text(struct walk *w, const char *s, size_t n)
{
	size_t sep = w->text.len > 0 ? 1 : 0;
	size_t room = w->text.max - w->text.len;

	if (n == 0)
		return;
	if (room <= sep) {
		w->v->flags |= MIME_F_LIMIT;
		return;
	}
	room -= sep;
	if (n > room) {
		n = mime_utf8_valid_len(s, room);
		w->v->flags |= MIME_F_LIMIT;
	}
	if (n == 0)
		return;
	if (sep)
		dynbuf_add(&w->text, "\n", 1);
	dynbuf_add(&w->text, s, n);
}

/* Charsets that mime_utf8_fix() repairs without iconv (see decode_text()). */
static const char *const utf8_names[] = { "utf-8", "utf8", "us-ascii", "ascii", NULL };
static const char *const latin_names[] = { "iso-8859-1", "latin1", "iso_8859-1", "windows-1252",
					   "cp1252", "x-user-defined", NULL };

static int is_charset(const char *cs, const char *const *names)
{
	for (; *names != NULL; names++) {
		if (g_ascii_strcasecmp(cs, *names) == 0)
			return 1;
	}
	return 0;
}

/*
 * Decode one text part into w->part (transfer encoding undone) and then
 * into w->fix as UTF-8.  Returns the UTF-8 in w->fix.
 */
/*
 * A text part's content, read from src through GMime's transfer decoder
 * and charset filter, into w->part, then repaired into w->fix (either
 * walk: the fast path gives it the same octets GMime's part holds).
 */
static void decode_stream(struct walk *w, GMimeStream *src, GMimeContentEncoding enc,
			  const char *cs)
{
	GMimeStream *f = g_mime_stream_filter_new(src);
	int cut = 0;
	char tmp[4096];

	if (enc == GMIME_CONTENT_ENCODING_BASE64 || enc == GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE ||
	    enc == GMIME_CONTENT_ENCODING_UUENCODE) {
		GMimeFilter *b = g_mime_filter_basic_new(enc, FALSE);

		g_mime_stream_filter_add(GMIME_STREAM_FILTER(f), b);
		g_object_unref(b);
	}
	/* UTF-8, ASCII and Latin-1 are repaired by mime_utf8_fix below:
	 * cheaper than an iconv descriptor for the commonest charsets. */
	if (cs != NULL && !is_charset(cs, utf8_names) && !is_charset(cs, latin_names)) {
		GMimeFilter *c = g_mime_filter_charset_new(cs, "UTF-8");

		if (c != NULL) {
			g_mime_stream_filter_add(GMIME_STREAM_FILTER(f), c);
			g_object_unref(c);
		}
	}
	for (;;) {
		ssize_t r = g_mime_stream_read(f, tmp, sizeof(tmp));
		size_t room = w->part.max - w->part.len;

		if (r <= 0)
			break;
		if ((size_t)r > room) {
			dynbuf_add(&w->part, tmp, room);
			cut = 1;
			break;
		}
		dynbuf_add(&w->part, tmp, (size_t)r);
		if (now_us() > w->deadline_us) {
			cut = 1;
			w->stop = 1;
			break;
		}
	}
	g_object_unref(f);
	if (cut)
		w->v->flags |= MIME_F_LIMIT;
	if (w->part.len == 0)
		return;
	if (mime_utf8_fix(w->part.data, cut ? mime_utf8_valid_len(w->part.data, w->part.len)
					    : w->part.len, &w->fix) != 0)
		w->v->flags |= MIME_F_LIMIT;
}

static void decode_text(struct walk *w, GMimePart *part)
{
	const char *cs = g_mime_object_get_content_type_parameter(GMIME_OBJECT(part), "charset");
	GMimeDataWrapper *dw = g_mime_part_get_content(part);
	GMimeStream *src = dw != NULL ? g_mime_data_wrapper_get_stream(dw) : NULL;

	dynbuf_reset(&w->part);
	dynbuf_reset(&w->fix);
	if (src == NULL)
		return;
	g_mime_stream_reset(src);
	decode_stream(w, src, g_mime_data_wrapper_get_encoding(dw), cs);
}

/* One attachment: name as GMime decoded it (or NULL), type lower-cased,
 * size the encoded octets of the part (either walk). */
static void add_attachment(struct walk *w, const char *name, const char *type, const char *sub,
			   size_t size)
{
	struct mime_view *v = w->v;
	struct mime_attachment *a;
	size_t tl = strlen(type);
	size_t sl = strlen(sub);
	char *t;

	if (v->nattachments == w->natt_cap) {
		w->natt_cap = w->natt_cap ? w->natt_cap * 2 : 8;
		v->attachments = xrealloc(v->attachments, w->natt_cap * sizeof(*v->attachments));
	}
	a = &v->attachments[v->nattachments++];
	a->name = arena_utf8(w, name);
	t = arena_alloc(w->vp, tl + sl + 2);
	for (size_t i = 0; i < tl; i++)
		t[i] = g_ascii_tolower(type[i]);
	t[tl] = '/';
	for (size_t i = 0; i < sl; i++)
		t[tl + 1 + i] = g_ascii_tolower(sub[i]);
	t[tl + 1 + sl] = '\0';
	a->type = t;
	a->size = size;
}

enum { LEAF_ATTACHMENT, LEAF_PLAIN, LEAF_HTML };

/*
 * What the walk does with a leaf part of this type and disposition (either
 * walk): text/plain and text/html are text unless disposed as attachment,
 * everything else is an attachment.
 */
static int leaf_kind(struct walk *w, const char *type, const char *sub, const char *disp)
{
	int text = 0, html = 0;

	if (g_ascii_strcasecmp(type, "text") == 0) {
		text = g_ascii_strcasecmp(sub, "plain") == 0;
		html = g_ascii_strcasecmp(sub, "html") == 0;
	}
	if (g_ascii_strcasecmp(type, "application") == 0 &&
	    (g_ascii_strcasecmp(sub, "pkcs7-mime") == 0 || g_ascii_strcasecmp(sub, "x-pkcs7-mime") == 0))
		w->v->flags |= MIME_F_ENCRYPTED;
	if ((!text && !html) || (disp != NULL && g_ascii_strcasecmp(disp, "attachment") == 0))
		return LEAF_ATTACHMENT;
	return text ? LEAF_PLAIN : LEAF_HTML;
}

static void leaf_text(struct walk *w, int text);

static void leaf(struct walk *w, GMimePart *part)
{
	GMimeContentType *ct = g_mime_object_get_content_type(GMIME_OBJECT(part));
	const char *type = ct != NULL ? g_mime_content_type_get_media_type(ct) : NULL;
	const char *sub = ct != NULL ? g_mime_content_type_get_media_subtype(ct) : NULL;
	const char *disp = g_mime_object_get_disposition(GMIME_OBJECT(part));
	int kind;

	if (type == NULL)
		type = "text";
	if (sub == NULL)
		sub = "plain";
	kind = leaf_kind(w, type, sub, disp);
	if (kind == LEAF_ATTACHMENT) {
		GMimeDataWrapper *dw = g_mime_part_get_content(part);
		GMimeStream *s = dw != NULL ? g_mime_data_wrapper_get_stream(dw) : NULL;
		gint64 size = s != NULL ? g_mime_stream_length(s) : 0;

		add_attachment(w, g_mime_part_get_filename(part), type, sub,
			       size > 0 ? (size_t)size : 0);
		return;
	}
	decode_text(w, part);
	leaf_text(w, kind == LEAF_PLAIN);
}

/* One text part, decoded to UTF-8 in w->fix, into the view (either walk). */
static void leaf_text(struct walk *w, int text)
{
	if (w->fix.len == 0)
		return;
	if (text) {
		w->had_plain = 1;
		add_text(w, w->fix.data, w->fix.len);
		if (w->lim->keep_parts) {
			size_t room = w->plain.max - w->plain.len;
			size_t n = w->fix.len + 1 > room ?
				   mime_utf8_valid_len(w->fix.data, room > 0 ? room - 1 : 0) :
				   w->fix.len;

			if (w->plain.len > 0 && n > 0)
				dynbuf_add(&w->plain, "\n", 1);
			dynbuf_add(&w->plain, w->fix.data, n);
		}
		return;
	}
	w->had_html = 1;
	dynbuf_reset(&w->html);
	if (mime_html_to_text(w->fix.data, w->fix.len, &w->html, on_url, w) != 0)
		w->v->flags |= MIME_F_LIMIT;
	if (w->html.len > 0)
		add_text(w, w->html.data, w->html.len);
	if (w->lim->keep_parts && w->v->html == NULL) {
		w->v->html = arena_strndup(w->vp, w->fix.data, w->fix.len);
		w->v->html_len = w->fix.len;
		w->v->html_text = arena_strndup(w->vp, w->html.data != NULL ? w->html.data : "",
						w->html.len);
		w->v->html_text_len = w->html.len;
	}
}

static void walk(struct walk *w, GMimeObject *obj, int depth)
{
	struct mime_view *v = w->v;

	if (obj == NULL || w->stop)
		return;
	if (v->nparts >= w->lim->max_parts || now_us() > w->deadline_us) {
		v->flags |= MIME_F_LIMIT;
		w->stop = 1;
		return;
	}
	v->nparts++;
	if (depth > v->depth)
		v->depth = depth;
	if (GMIME_IS_MESSAGE_PART(obj)) {
		GMimeMessage *m = g_mime_message_part_get_message(GMIME_MESSAGE_PART(obj));

		if (m == NULL || g_mime_message_get_mime_part(m) == NULL)
			return;
		if (depth + 1 > w->lim->max_depth || depth + 1 > MIME_DEPTH_CEILING) {
			v->flags |= MIME_F_LIMIT;
			return;
		}
		walk(w, g_mime_message_get_mime_part(m), depth + 1);
		return;
	}
	if (GMIME_IS_MULTIPART(obj)) {
		GMimeMultipart *mp = GMIME_MULTIPART(obj);
		int n = g_mime_multipart_get_count(mp);

		if (GMIME_IS_MULTIPART_ENCRYPTED(obj))
			v->flags |= MIME_F_ENCRYPTED;
		if (n > 0 && (depth + 1 > w->lim->max_depth || depth + 1 > MIME_DEPTH_CEILING)) {
			v->flags |= MIME_F_LIMIT;
			return;
		}
		for (int i = 0; i < n && !w->stop; i++)
			walk(w, g_mime_multipart_get_part(mp, i), depth + 1);
		return;
	}
	if (GMIME_IS_PART(obj))
		leaf(w, GMIME_PART(obj));
}

/* Top-level fields in message order. */
static void headers(struct walk *w, GMimeObject *top)
{
	GMimeHeaderList *list = g_mime_object_get_header_list(top);
	struct mime_view *v = w->v;
	size_t total = list != NULL ? (size_t)g_mime_header_list_get_count(list) : 0;

	if (total > w->lim->max_headers) {
		total = w->lim->max_headers;
		v->flags |= MIME_F_LIMIT;
	}
	if (total == 0)
		return;
	v->headers = arena_alloc(w->vp, total * sizeof(*v->headers));
	for (size_t i = 0; i < total; i++) {
		GMimeHeader *h = g_mime_header_list_get_header_at(list, (int)i);
		/* GMime has decoded the value while parsing (and keeps it). */
		v->headers[i].name = arena_utf8(w, g_mime_header_get_name(h));
		v->headers[i].value = arena_utf8(w, g_mime_header_get_value(h));
	}
	v->nheaders = total;
}

/* ---- the fast path: one text part, or a multipart of such parts ------- */

/*
 * Most mail is one text part: a header and a text/plain or text/html body
 * in 7bit, 8bit, quoted-printable or base64, in UTF-8, ASCII or Latin-1.
 * Such a message is read here without GMime's parser, whose objects (one
 * per header field, the part, streams, filters) and their teardown were
 * most of the walk.  Whatever GMime would compute is computed by GMime's
 * own functions with the same parser options, so with the same results
 * and the same warnings: header unfolding and RFC 2047 decoding, the
 * Content-Type and Content-Disposition parses, the
 * Content-Transfer-Encoding name, the transfer decoders.  The rest follows
 * what GMime's parser does with such a message (gmime-parser.c:
 * step_headers(), header_buffer_parse(), check_header_conflict(),
 * parser_scan_content()).
 *
 * Most of the rest is a multipart whose parts are text parts,
 * attachments and other multiparts of such parts.  Its body is cut at the
 * boundary lines where GMime's parser cuts it (fast_split():
 * parser_construct_multipart(), parser_scan_multipart_subparts(),
 * check_boundary()), each part's header is split like the top-level one,
 * and the parts go through the walk's own logic in the walk's order
 * (fast_multi_view(): leaf_kind(), add_attachment(), leaf_text()).
 *
 * Anything this path is not sure of (a line GMime would warn about, a
 * NUL or bare CR in a header, a second Content-Type, a single part
 * disposed as an attachment, another type or encoding, a text larger than
 * max_part_text, a message part, a nested multipart without its end
 * boundary, a boundary string inside a line, a message the gate or the
 * header cut would touch, more parts than max_parts or nesting past
 * max_depth) makes it return -1 before the view is changed, and
 * GMime reads the message.  The views are the same octet for octet:
 * test_mime compares the two walks over the corpus, fuzz/fuzz_mime_fast.c
 * over whatever the fuzzer makes.
 */
#define FAST_MAX_FIELDS 256
/* Parts below the top-level multipart this path reads, and their nesting;
 * more go to GMime. */
#define FAST_MAX_CHILDREN 64
#define FAST_MAX_NESTING 4
/*
 * GMime's parser judges a line by its first FAST_BOUNDARY_LINE_MAX octets
 * or more: a line is cut in pieces only when more than its look-ahead (128
 * octets) of it waits at the end of its buffer.  Longer lines that start
 * with the boundary are left to GMime.
 */
#define FAST_BOUNDARY_LINE_MAX 100
/* RFC 2046: a boundary is 1 to 70 characters. */
#define FAST_BOUNDARY_MAX 70

struct fast_field {
	const char *name;   /* in buf, without the blanks before the colon */
	size_t name_len;
	const char *raw;    /* after the colon, through the last line's LF (GMime's raw value) */
	size_t raw_len;
};

/* One header block, split. */
struct fast_head {
	struct fast_field f[FAST_MAX_FIELDS];
	size_t nf;
	const struct fast_field *ct, *cte, *cd; /* NULL when absent */
	char *u;                                /* room for any value unfolded */
};

/* One part below the top-level multipart, read but not yet in the view. */
struct fast_child {
	const char *in;                 /* the content GMime's substream would hold
					   (a multipart: its body) */
	size_t n;
	GMimeContentEncoding enc;
	GMimeContentType *type;         /* NULL: no Content-Type, so text/plain */
	GMimeContentDisposition *disp;  /* NULL: none */
	int depth;                      /* 1 for the top-level multipart's children */
	int multi;                      /* a multipart: its parts follow it */
};

/* The parts in the order walk() visits them (depth first). */
struct fast_multi {
	struct fast_child c[FAST_MAX_CHILDREN];
	size_t n;
	int no_end;     /* no end boundary: the last part runs to the end */
};

/* The boundaries in force, innermost first (GMime's boundary stack). */
struct fast_bounds {
	const char *b;
	const struct fast_bounds *up;
};

/* A child's place in the body: [start, end), and what GMime cuts off its end. */
struct fast_span {
	size_t start, end;
	size_t cut;
};

static int name_is(const struct fast_field *f, const char *name)
{
	return f->name_len == strlen(name) && strncasecmp(f->name, name, f->name_len) == 0;
}

/* A value GMime's RFC 2047 decoder leaves as it is: ASCII, no "=?". */
static int plain_ascii(const char *s, size_t n)
{
	const char *p = s, *end = s + n;

	if (mime_ascii_len(s, n) != n)
		return 0;
	while ((p = memchr(p, '=', (size_t)(end - p))) != NULL) {
		if (p + 1 < end && p[1] == '?')
			return 0;
		p++;
	}
	return 1;
}

/*
 * GMime's g_mime_utils_header_unfold() of a raw value into out (room for
 * raw_len + 1): white space (space, tab, CR, LF) cut at both ends, CR and
 * LF removed.  Returns the length; out is NUL-terminated.
 */
static size_t unfold(const struct fast_field *f, char *out)
{
	const char *p = f->raw, *end = f->raw + f->raw_len;
	size_t n = 0;

	while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
		p++;
	while (end > p && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r' || end[-1] == '\n'))
		end--;
	for (; p < end; p++) {
		if (*p != '\r' && *p != '\n')
			out[n++] = *p;
	}
	out[n] = '\0';
	return n;
}

/*
 * The header fields of [start, hdr_end), a block that ends with a line
 * feed (or is empty); -1 on anything GMime would warn about or treat
 * specially.
 */
static int fast_fields(const char *buf, size_t start, size_t hdr_end, struct fast_field *f,
		       size_t *nf)
{
	size_t i = start;

	*nf = 0;
	if (memchr(buf + start, '\0', hdr_end - start) != NULL)
		return -1;
	while (i < hdr_end) {
		const char *nl = memchr(buf + i, '\n', hdr_end - i);
		size_t e, k;
		const char *cr;

		if (nl == NULL)
			return -1;
		e = (size_t)(nl - buf);
		/* A CR is only allowed as the line's CRLF. */
		cr = memchr(buf + i, '\r', e - i);
		if (cr != NULL && cr != nl - 1)
			return -1;
		if (buf[i] == ' ' || buf[i] == '\t') {
			if (*nf == 0)
				return -1;
			f[*nf - 1].raw_len = (size_t)(nl + 1 - f[*nf - 1].raw);
			i = e + 1;
			continue;
		}
		k = i;
		while (k < e && buf[k] > ' ' && buf[k] < 0x7f && buf[k] != ':')
			k++;
		if (k == i || *nf == FAST_MAX_FIELDS)
			return -1;
		f[*nf].name = buf + i;
		f[*nf].name_len = k - i;
		while (k < e && (buf[k] == ' ' || buf[k] == '\t'))
			k++;
		if (k == e || buf[k] != ':')
			return -1;
		f[*nf].raw = buf + k + 1;
		f[*nf].raw_len = e - k;
		(*nf)++;
		i = e + 1;
	}
	return 0;
}

/*
 * Split the header block [start, end) into h (h->u to be freed by the
 * caller, also on failure); -1 on what fast_fields() declines or a second
 * Content-Type, Content-Transfer-Encoding or Content-Disposition (GMime's
 * part keeps the last of some, its parser reads the first of others).
 */
static int fast_head(const char *buf, size_t start, size_t end, struct fast_head *h)
{
	size_t umax = 0;

	h->ct = h->cte = h->cd = NULL;
	h->u = NULL;
	if (fast_fields(buf, start, end, h->f, &h->nf) < 0)
		return -1;
	for (size_t i = 0; i < h->nf; i++) {
		const struct fast_field *x = &h->f[i];
		const struct fast_field **slot = NULL;

		if (x->raw_len > umax)
			umax = x->raw_len;
		if (x->name_len < 8 || strncasecmp(x->name, "Content-", 8) != 0)
			continue;
		if (name_is(x, "Content-Type"))
			slot = &h->ct;
		else if (name_is(x, "Content-Transfer-Encoding"))
			slot = &h->cte;
		else if (name_is(x, "Content-Disposition"))
			slot = &h->cd;
		if (slot == NULL)
			continue;
		if (*slot != NULL)
			return -1;
		*slot = x;
	}
	h->u = xmalloc(umax + 1);
	return 0;
}

/* The block's transfer encoding as GMime names it; -1 on uuencode (its
 * decoder has a state the one-shot decode below does not keep) or a value
 * RFC 2047 decoding could change. */
static int fast_encoding(const struct fast_head *h, GMimeContentEncoding *enc)
{
	*enc = GMIME_CONTENT_ENCODING_DEFAULT;
	if (h->cte == NULL)
		return 0;
	if (!plain_ascii(h->cte->raw, h->cte->raw_len))
		return -1;
	unfold(h->cte, h->u);
	*enc = g_mime_content_encoding_from_string(h->u);
	return *enc == GMIME_CONTENT_ENCODING_UUENCODE ? -1 : 0;
}

/*
 * The block's Content-Type as GMime's object gets it (*out NULL when there
 * is none: text/plain); -1 where it could differ from the parser's.  GMime
 * picks the part's class (leaf or multipart) from the raw value and its
 * type from the unfolded one: take only values where the two agree, type
 * and subtype on the first line, no comment before them.
 */
static int fast_type(const struct fast_head *h, GMimeParserOptions *opts, GMimeContentType **out)
{
	const struct fast_field *ct = h->ct;
	const char *nl, *semi;

	*out = NULL;
	if (ct == NULL)
		return 0;
	nl = memchr(ct->raw, '\n', ct->raw_len);
	semi = memchr(ct->raw, ';', ct->raw_len);
	if (!plain_ascii(ct->raw, ct->raw_len))
		return -1;
	if (semi == NULL ? (size_t)(nl - ct->raw) + 1 != ct->raw_len : semi > nl)
		return -1;
	if (memchr(ct->raw, '(', semi != NULL ? (size_t)(semi - ct->raw) : ct->raw_len) != NULL)
		return -1;
	unfold(ct, h->u);
	*out = g_mime_content_type_parse(opts, h->u);
	if (g_mime_content_type_get_media_type(*out) == NULL ||
	    g_mime_content_type_get_media_subtype(*out) == NULL)
		return -1;
	return 0;
}

static int type_is(GMimeContentType *t, const char *type, const char *sub)
{
	const char *mt = t != NULL ? g_mime_content_type_get_media_type(t) : "text";
	const char *st = t != NULL ? g_mime_content_type_get_media_subtype(t) : "plain";

	return g_ascii_strcasecmp(mt, type) == 0 &&
	       (sub == NULL || g_ascii_strcasecmp(st, sub) == 0);
}

/* A text part this path decodes: text/plain or text/html, any charset
 * (fast_decode()). */
static int fast_text_ok(GMimeContentType *t)
{
	return type_is(t, "text", "plain") || type_is(t, "text", "html");
}

/*
 * GMime's check_header_conflict() on every field of a block: a field
 * repeated with another raw value is malformed when it is one a part has
 * at most once (on_warning()).
 */
static void fast_conflicts(struct walk *w, const struct fast_head *h)
{
	for (size_t i = 0; i < h->nf; i++) {
		const struct fast_field *x = &h->f[i];

		for (size_t k = 0; k < i; k++) {
			const struct fast_field *y = &h->f[k];

			if (y->name_len != x->name_len ||
			    strncasecmp(y->name, x->name, x->name_len) != 0)
				continue;
			if ((y->raw_len != x->raw_len || memcmp(y->raw, x->raw, x->raw_len) != 0) &&
			    single_field(x->name, x->name_len))
				w->v->flags |= MIME_F_MALFORMED;
			break;
		}
	}
}

/* The top-level fields into the view, decoded as GMime decodes them. */
static void fast_view_headers(struct walk *w, const struct fast_head *h, GMimeParserOptions *opts)
{
	struct mime_view *v = w->v;

	v->headers = arena_alloc(w->vp, h->nf * sizeof(*v->headers));
	for (size_t i = 0; i < h->nf; i++) {
		size_t un = unfold(&h->f[i], h->u);

		v->headers[i].name = arena_strndup(w->vp, h->f[i].name, h->f[i].name_len);
		if (plain_ascii(h->u, un)) {
			v->headers[i].value = arena_strndup(w->vp, h->u, un);
		} else {
			char *d = g_mime_utils_header_decode_text(opts, h->u);

			v->headers[i].value = arena_utf8(w, d);
			g_free(d);
		}
	}
	v->nheaders = h->nf;
	fast_conflicts(w, h);
}

/*
 * n octets of content in transfer encoding enc and charset cs (of type t,
 * NULL: none) into w->fix as UTF-8, as decode_text() gives them: directly
 * for UTF-8, ASCII and Latin-1, through the same GMime filters over the
 * same octets for any other charset.
 */
static void fast_decode(struct walk *w, const char *in, size_t n, GMimeContentEncoding enc,
			GMimeContentType *t)
{
	const char *cs = t != NULL ? g_mime_content_type_get_parameter(t, "charset") : NULL;

	dynbuf_reset(&w->part);
	dynbuf_reset(&w->fix);
	if (n == 0)
		return;
	if (cs != NULL && !is_charset(cs, utf8_names) && !is_charset(cs, latin_names)) {
		/* Borrowed, as the parse borrows the message; freed with FALSE. */
		GByteArray *ba = g_byte_array_new_take((guint8 *)(uintptr_t)in, n);
		GMimeStream *src = g_mime_stream_mem_new_with_byte_array(ba);

		g_mime_stream_mem_set_owner(GMIME_STREAM_MEM(src), FALSE);
		decode_stream(w, src, enc, cs);
		g_object_unref(src);
		g_byte_array_free(ba, FALSE);
		return;
	}
	if (enc == GMIME_CONTENT_ENCODING_BASE64 || enc == GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE) {
		GMimeEncoding st;
		char *out;
		size_t k;

		g_mime_encoding_init_decode(&st, enc);
		out = xmalloc(g_mime_encoding_outlen(&st, n) + 1);
		k = g_mime_encoding_step(&st, in, n, out);
		if (k > 0 && mime_utf8_fix(out, k, &w->fix) != 0)
			w->v->flags |= MIME_F_LIMIT;
		free(out);
	} else if (mime_utf8_fix(in, n, &w->fix) != 0) {
		w->v->flags |= MIME_F_LIMIT;
	}
}

/* GMime's is_lwsp(): space, tab, CR, LF. */
static int lwsp_only(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n')
			return 0;
	}
	return 1;
}

/* A boundary of printable ASCII (space included), as long as RFC 2046
 * allows: no control octet that could end or split a line. */
static int fast_boundary_ok(const char *b)
{
	size_t n = strlen(b);

	if (n == 0 || n > FAST_BOUNDARY_MAX)
		return 0;
	for (size_t i = 0; i < n; i++) {
		if (b[i] < 0x20 || b[i] > 0x7e)
			return 0;
	}
	return 1;
}

enum { FB_NONE, FB_NEXT, FB_END };

/*
 * GMime's check_boundary() with one boundary in force, on a line without
 * its LF: one trailing CR is dropped; "--" b "--" then only blanks is the
 * end boundary (tried first), "--" b then only blanks the next one.
 */
static int fast_bline(const char *s, size_t n, const char *b, size_t bl)
{
	if (n > 0 && s[n - 1] == '\r')
		n--;
	if (n < bl + 2 || s[0] != '-' || s[1] != '-' || memcmp(s + 2, b, bl) != 0)
		return FB_NONE;
	if (n >= bl + 4 && s[bl + 2] == '-' && s[bl + 3] == '-' &&
	    lwsp_only(s + bl + 4, n - bl - 4))
		return FB_END;
	return lwsp_only(s + bl + 2, n - bl - 2) ? FB_NEXT : FB_NONE;
}

/*
 * The children of the multipart body [body, len) with boundary b, where
 * GMime's parser puts them:
 *  - a boundary line is one fast_bline() takes, at a line start;
 *  - the preface before the first boundary and the epilogue after the
 *    end boundary belong to no child (the epilogue is read with no
 *    boundary in force: anything goes there);
 *  - a child starts after its boundary line's LF and ends where the next
 *    boundary line starts, less the line end before it: GMime drops two
 *    octets when the boundary line itself ends in CR, else one (it looks
 *    at the boundary line, not at the line before), never below empty;
 *  - with no end boundary the last child runs to the end of the input and
 *    GMime warns the message truncated (*no_end).
 * -1 for GMime: "--" b anywhere but at a line start (GMime reads long
 * lines in pieces and would take a piece that starts with it for a line),
 * a line starting with it longer than FAST_BOUNDARY_LINE_MAX, no
 * boundary, an end boundary first (no children), a boundary line without
 * LF at the end of the input (GMime: truncated), too many children.
 */
static int fast_split(const char *buf, size_t body, size_t len, const char *b,
		      struct fast_span *sp, size_t *nsp, int *no_end)
{
	size_t bl = strlen(b), i = body, stop = len;
	char pat[FAST_BOUNDARY_MAX + 2];
	const char *p, *end;
	int open = 0;

	*nsp = 0;
	*no_end = 0;
	pat[0] = '-';
	pat[1] = '-';
	memcpy(pat + 2, b, bl);
	while (i < len) {
		const char *nl = memchr(buf + i, '\n', len - i);
		size_t e = nl != NULL ? (size_t)(nl - buf) : len;
		int kind;

		if (e - i < bl + 2 || memcmp(buf + i, pat, bl + 2) != 0) {
			i = e + 1;
			continue;
		}
		if (e - i > FAST_BOUNDARY_LINE_MAX)
			return -1;
		kind = fast_bline(buf + i, e - i, b, bl);
		if (kind != FB_NONE) {
			if (open) {
				sp[*nsp - 1].end = i;
				sp[*nsp - 1].cut = buf[e - 1] == '\r' ? 2 : 1;
			} else if (kind == FB_END) {
				return -1;
			}
			if (kind == FB_END) {
				stop = i;
				open = 2;
				break;
			}
			if (nl == NULL || *nsp == FAST_MAX_CHILDREN)
				return -1;
			sp[*nsp].start = e + 1;
			sp[*nsp].end = len;
			sp[*nsp].cut = 0;
			(*nsp)++;
			open = 1;
		}
		i = e + 1;
	}
	if (!open)
		return -1;
	*no_end = open == 1;
	/* Every "--" b up to the end boundary must start a line. */
	end = buf + stop;
	for (p = buf + body; (p = memmem(p, (size_t)(end - p), pat, bl + 2)) != NULL; p++) {
		if (p > buf + body && p[-1] != '\n')
			return -1;
	}
	return 0;
}

/*
 * One child of the span: its header (an empty line must end it before the
 * span does: else GMime warns of a part without content), its type,
 * disposition and encoding.  Every value must be plain ASCII: GMime
 * decodes each one while parsing, and such values decode to themselves
 * without a warning.  Parses that warn (a bad type or disposition) warn
 * into the view's flags as they do in GMime's parse.
 */
static int fast_child(struct walk *w, const char *buf, const struct fast_span *sp,
		      GMimeParserOptions *opts, struct fast_child *c)
{
	struct fast_head h;
	size_t hend, off = sp->start + body_offset(buf + sp->start, sp->end - sp->start, &hend);
	size_t n = sp->end - off;
	int rc = -1;

	h.u = NULL;
	if (hend >= sp->end - sp->start || fast_head(buf, sp->start, sp->start + hend, &h) < 0)
		goto out;
	for (size_t i = 0; i < h.nf; i++) {
		if (!plain_ascii(h.f[i].raw, h.f[i].raw_len))
			goto out;
	}
	if (fast_encoding(&h, &c->enc) < 0 || fast_type(&h, opts, &c->type) < 0)
		goto out;
	/* A message part is a message of its own: left to GMime. */
	if (type_is(c->type, "message", NULL))
		goto out;
	c->multi = type_is(c->type, "multipart", NULL);
	if (h.cd != NULL) {
		unfold(h.cd, h.u);
		c->disp = g_mime_content_disposition_parse(opts, h.u);
	}
	c->in = buf + off;
	c->n = c->multi ? n : n > sp->cut ? n - sp->cut : 0;
	if ((type_is(c->type, "text", "plain") || type_is(c->type, "text", "html")) &&
	    (!fast_text_ok(c->type) || c->n > w->lim->max_part_text))
		goto out;
	fast_conflicts(w, &h);
	rc = 0;
out:
	free(h.u);
	return rc;
}

static void fast_multi_free(struct fast_multi *m)
{
	for (size_t i = 0; i < m->n; i++) {
		if (m->c[i].type != NULL)
			g_object_unref(m->c[i].type);
		if (m->c[i].disp != NULL)
			g_object_unref(m->c[i].disp);
	}
	m->n = 0;
}

/*
 * A line that could be a boundary line of b and of a boundary in force:
 * one boundary is the other followed by nothing but blanks and dashes
 * ("b" and "b--", "b" and "b ").  Which one GMime takes then depends on
 * the order it tries them; such a nesting is left to it.
 */
static int fast_bounds_clash(const char *b, const struct fast_bounds *up)
{
	for (; up != NULL; up = up->up) {
		const char *s = strlen(b) < strlen(up->b) ? b : up->b;
		const char *l = s == b ? up->b : b;
		size_t sl = strlen(s);

		if (strncmp(s, l, sl) == 0 && strspn(l + sl, " \t-") == strlen(l + sl))
			return 1;
	}
	return 0;
}

/*
 * The multipart of type t at the given depth with its body at [body, len)
 * into m, its parts after the ones already there; -1 for GMime (see
 * fast_split(), fast_child()).  A nested multipart's body ends where its
 * parent's next boundary line starts (up: the boundaries in force): GMime
 * reads it with both boundaries in force, the inner one first, so it is
 * taken only when no line in it can be the parent's boundary (no
 * boundary a prefix of another) and it has its end boundary (else GMime
 * warns of a malformed multipart and resumes the parent in a way of its
 * own).
 */
static int fast_multipart(struct walk *w, const char *buf, size_t body, size_t len,
			  GMimeContentType *t, GMimeParserOptions *opts, struct fast_multi *m,
			  int depth, const struct fast_bounds *up)
{
	struct fast_bounds in = { g_mime_content_type_get_parameter(t, "boundary"), up };
	struct fast_span sp[FAST_MAX_CHILDREN];
	size_t nsp;
	int no_end;

	/* encrypted sets a flag, digest changes the children's default type */
	if (type_is(t, "multipart", "encrypted") || type_is(t, "multipart", "digest") ||
	    in.b == NULL || !fast_boundary_ok(in.b) || fast_bounds_clash(in.b, up) ||
	    depth + 1 > w->lim->max_depth || depth + 1 > FAST_MAX_NESTING)
		return -1;
	if (fast_split(buf, body, len, in.b, sp, &nsp, &no_end) < 0 || (no_end && depth > 0))
		return -1;
	if (depth == 0)
		m->no_end = no_end;
	for (size_t i = 0; i < nsp; i++) {
		struct fast_child *c = &m->c[m->n];

		if (m->n == FAST_MAX_CHILDREN)
			return -1;
		memset(c, 0, sizeof(*c));
		c->depth = depth + 1;
		m->n++;
		if (fast_child(w, buf, &sp[i], opts, c) < 0)
			return -1;
		if (c->multi && fast_multipart(w, buf, (size_t)(c->in - buf), sp[i].end, c->type,
					       opts, m, depth + 1, &in) < 0)
			return -1;
	}
	return 0;
}

/* The parts into the view, as walk() and leaf() put GMime's. */
static void fast_multi_view(struct walk *w, const struct fast_multi *m)
{
	struct mime_view *v = w->v;

	v->nparts = 1;
	if (m->no_end)
		v->flags |= MIME_F_MALFORMED;
	for (size_t i = 0; i < m->n; i++) {
		const struct fast_child *c = &m->c[i];
		GMimeContentType *t = c->type;
		GMimeContentDisposition *d = c->disp;
		const char *type = t != NULL ? g_mime_content_type_get_media_type(t) : "text";
		const char *sub = t != NULL ? g_mime_content_type_get_media_subtype(t) : "plain";
		const char *disp = d != NULL ? g_mime_content_disposition_get_disposition(d) : NULL;
		int kind;

		/* walk()'s clock between parts (max_parts was checked before) */
		if (now_us() > w->deadline_us) {
			v->flags |= MIME_F_LIMIT;
			break;
		}
		v->nparts++;
		if (c->depth > v->depth)
			v->depth = c->depth;
		if (c->multi)
			continue;
		kind = leaf_kind(w, type, sub, disp);
		if (kind == LEAF_ATTACHMENT) {
			/* g_mime_part_get_filename() */
			const char *name = NULL;

			if (d != NULL)
				name = g_mime_content_disposition_get_parameter(d, "filename");
			if (name == NULL && t != NULL)
				name = g_mime_content_type_get_parameter(t, "name");
			add_attachment(w, name, type, sub, c->n);
			continue;
		}
		fast_decode(w, c->in, c->n, c->enc, c->type);
		leaf_text(w, kind == LEAF_PLAIN);
	}
}

static int fast_path(struct walk *w, const char *buf, size_t start, size_t hdr_end, size_t body,
		     size_t len, GMimeParserOptions *opts)
{
	struct mime_view *v = w->v;
	struct fast_head h;
	struct fast_multi m;
	GMimeContentEncoding enc;
	GMimeContentType *t = NULL;
	unsigned flags0 = v->flags;
	int multi, rc = -1;

	m.n = 0;
	if (w->lim->gmime_only || start >= hdr_end || hdr_end >= len)
		return -1;
	if (fast_head(buf, start, hdr_end, &h) < 0 || h.nf > w->lim->max_headers)
		goto out;
	if (fast_encoding(&h, &enc) < 0 || fast_type(&h, opts, &t) < 0)
		goto out;
	multi = type_is(t, "multipart", NULL);
	/* GMime parses a disposition, with its warnings, whatever the part.  It
	 * decides what a leaf is (leaf_kind()): a text part disposed as an
	 * attachment is left to GMime; inline or any other, it stays text. */
	if (h.cd != NULL) {
		GMimeContentDisposition *d;
		const char *dv;
		int attachment;

		if (!plain_ascii(h.cd->raw, h.cd->raw_len))
			goto out;
		unfold(h.cd, h.u);
		d = g_mime_content_disposition_parse(opts, h.u);
		dv = g_mime_content_disposition_get_disposition(d);
		attachment = dv != NULL && g_ascii_strcasecmp(dv, "attachment") == 0;
		g_object_unref(d);
		if (!multi && attachment)
			goto out;
	}
	if (multi) {
		m.no_end = 0;
		if (memchr(buf + body, '\0', len - body) != NULL ||
		    fast_multipart(w, buf, body, len, t, opts, &m, 0, NULL) < 0 ||
		    m.n + 1 > (size_t)w->lim->max_parts)
			goto out;
	} else if (!fast_text_ok(t) || len - body > w->lim->max_part_text) {
		goto out;
	}

	/* From here on the message is this path's. */
	v->fast = 1;
	fast_view_headers(w, &h, opts);
	if (multi) {
		fast_multi_view(w, &m);
	} else {
		/* The body is the part's content, to the end of the input. */
		v->nparts = 1;
		fast_decode(w, buf + body, len - body, enc, t);
		leaf_text(w, type_is(t, "text", "plain"));
	}
	rc = 0;
out:
	if (rc < 0)
		v->flags = flags0; /* the parses may have warned */
	fast_multi_free(&m);
	if (t != NULL)
		g_object_unref(t);
	free(h.u);
	return rc;
}

int mime_parse(const char *buf, size_t len, const struct mime_limits *limits,
	       struct mime_view **out, char *err, size_t errsz)
{
	struct mime_limits lim;
	struct walk w;
	struct view_priv *vp;
	struct mime_view *v;
	int64_t t0 = now_us();
	size_t hdr_end = 0, body, glen, skip = 0, nlines = 0;
	GMimeParserOptions *opts = NULL;
	GMimeParser *parser = NULL;
	GMimeObject *top = NULL;
	char hint[48];

	if (out == NULL || (buf == NULL && len > 0)) {
		if (err != NULL && errsz > 0)
			strlcpy_s(err, "mime_parse: no buffer or no result pointer", errsz);
		return -1;
	}
	if (limits != NULL)
		lim = *limits;
	else
		mime_limits_default(&lim);
	if (lim.max_depth < 0)
		lim.max_depth = 0;
	if (lim.max_parts < 1)
		lim.max_parts = 1;
	if (lim.max_ms < 1)
		lim.max_ms = 1;

	vp = xcalloc(1, sizeof(*vp));
	v = &vp->v;
	memset(&w, 0, sizeof(w));
	w.lim = &lim;
	w.vp = vp;
	w.v = v;
	w.deadline_us = t0 + lim.max_ms * 1000;
	dynbuf_init(&w.text, lim.max_text);
	dynbuf_init(&w.part, lim.max_part_text);
	dynbuf_init(&w.fix, lim.max_part_text);
	dynbuf_init(&w.html, lim.max_part_text);
	dynbuf_init(&w.plain, lim.max_text);

	body = buf != NULL ? body_offset(buf, len, &hdr_end) : 0;
	v->raw_body = buf != NULL ? buf + body : "";
	v->raw_body_len = len - body;
	if (len == 0)
		goto done;

	glen = gate(buf, len, &lim, &v->flags, &nlines);
	opts = g_mime_parser_options_new();
	g_mime_parser_options_set_warning_callback(opts, on_warning, &w);
	if (charset_hint(buf, hdr_end, hint, sizeof(hint)) == 0) {
		const char *fallback[] = { "UTF-8", hint, "windows-1252", NULL };

		v->flags |= MIME_F_8BIT_HEADERS;
		if (hint[0] == '\0')
			fallback[1] = "windows-1252";
		g_mime_parser_options_set_fallback_charsets(opts, fallback);
	}
	/* An mbox "From " line before the header (archives, test corpora) is
	 * skipped, as mail readers do; GMime would refuse the header. */
	if (len > 5 && memcmp(buf, "From ", 5) == 0) {
		const char *nl = memchr(buf, '\n', glen);

		skip = nl != NULL ? (size_t)(nl - buf) + 1 : glen;
	}
	w.hdr_cap = lim.max_headers + (size_t)lim.max_parts * MIME_HDRS_PER_PART;
	if (glen == len && nlines <= w.hdr_cap &&
	    fast_path(&w, buf, skip, hdr_end, body, len, opts) == 0)
		goto tail;
	/* Borrow buf: GMime reads it in place; freed below with FALSE. */
	w.ba = g_byte_array_new_take((guint8 *)(uintptr_t)(buf + skip), glen - skip);
	w.stream = g_mime_stream_mem_new_with_byte_array(w.ba);
	g_mime_stream_mem_set_owner(GMIME_STREAM_MEM(w.stream), FALSE);
	parser = g_mime_parser_new_with_stream(w.stream);
	g_mime_parser_set_format(parser, GMIME_FORMAT_MESSAGE);
	/*
	 * Every header field takes at least one line of its own, so a message
	 * of no more lines than hdr_cap cannot reach the header cut, and
	 * GMime's parse of it is linear in its octets.  Only longer ones pay
	 * for the callback: a regex match per field and a regex compiled
	 * per walk, about 6 % of the walk of a typical 5 KB message.
	 */
	if (nlines > w.hdr_cap)
		g_mime_parser_set_header_regex(parser, "^", on_header, &w);
	/* The top level as a part, not a GMimeMessage: the same fields in one
	 * list, without the address and date parsing we do not use. */
	top = g_mime_parser_construct_part(parser, opts);
	/* A cut only ends the parse; parts must read what they were given. */
	w.ba->len = (guint)(glen - skip);
	if (top != NULL) {
		headers(&w, top);
		walk(&w, top, 0);
	} else {
		/* GMime found no header at all (the first line is not a field):
		 * mail readers show such a message as text, so the checks see it
		 * as text too, not as nothing. */
		v->flags |= MIME_F_MALFORMED;
		dynbuf_reset(&w.fix);
		if (mime_utf8_fix(buf + skip, glen - skip, &w.fix) != 0)
			v->flags |= MIME_F_LIMIT;
		add_text(&w, w.fix.data, w.fix.len);
		w.had_plain = 1;
	}
tail:
	if (w.had_html && !w.had_plain)
		v->flags |= MIME_F_HTML_ONLY;
	if (w.text.len > 0)
		mime_url_scan(w.text.data, w.text.len, on_url, &w);

done:
	vp->text = w.text.data;
	v->text = vp->text != NULL ? vp->text : "";
	v->text_len = w.text.len;
	if (lim.keep_parts) {
		v->plain = arena_strndup(vp, w.plain.data != NULL ? w.plain.data : "", w.plain.len);
		v->plain_len = w.plain.len;
	}
	dynbuf_free(&w.plain);
	if (top != NULL)
		g_object_unref(top);
	if (parser != NULL)
		g_object_unref(parser);
	if (w.stream != NULL)
		g_object_unref(w.stream);
	if (w.ba != NULL)
		g_byte_array_free(w.ba, FALSE);
	if (opts != NULL)
		g_mime_parser_options_free(opts);
	dynbuf_free(&w.part);
	dynbuf_free(&w.fix);
	dynbuf_free(&w.html);
	free(w.urls);
	v->parse_us = now_us() - t0;
	*out = v;
	return 0;
}

void mime_view_free(struct mime_view *v)
{
	struct view_priv *vp = (struct view_priv *)v;
	struct blk *b;

	if (v == NULL)
		return;
	b = vp->arena;
	while (b != NULL) {
		struct blk *next = b->next;

		free(b);
		b = next;
	}
	free(vp->text);
	free(v->attachments);
	free(v->url_hosts);
	free(vp);
}

const char *mime_header_next(const struct mime_view *v, const char *name, size_t *pos)
{
	for (size_t i = *pos; i < v->nheaders; i++) {
		if (strcasecmp(v->headers[i].name, name) == 0) {
			*pos = i + 1;
			return v->headers[i].value;
		}
	}
	*pos = v->nheaders;
	return NULL;
}

static int str_differs(const char *a, const char *b)
{
	return (a == NULL) != (b == NULL) || (a != NULL && strcmp(a, b) != 0);
}

static int mem_differs(const char *a, size_t an, const char *b, size_t bn)
{
	return an != bn || (an > 0 && memcmp(a, b, an) != 0);
}

int mime_view_cmp(const struct mime_view *a, const struct mime_view *b, char *what, size_t whatsz)
{
	size_t i;

#define DIFF(...) do { snprintf(what, whatsz, __VA_ARGS__); return -1; } while (0)
	if (a->flags != b->flags)
		DIFF("flags %#x vs %#x", a->flags, b->flags);
	if (a->nparts != b->nparts || a->depth != b->depth)
		DIFF("parts %d/%d depth %d/%d", a->nparts, b->nparts, a->depth, b->depth);
	if (a->nheaders != b->nheaders)
		DIFF("nheaders %zu vs %zu", a->nheaders, b->nheaders);
	for (i = 0; i < a->nheaders; i++) {
		if (str_differs(a->headers[i].name, b->headers[i].name) ||
		    str_differs(a->headers[i].value, b->headers[i].value))
			DIFF("header %zu: \"%s: %s\" vs \"%s: %s\"", i, a->headers[i].name,
			     a->headers[i].value, b->headers[i].name, b->headers[i].value);
	}
	if (mem_differs(a->text, a->text_len, b->text, b->text_len))
		DIFF("text (%zu vs %zu octets)", a->text_len, b->text_len);
	if (mem_differs(a->raw_body, a->raw_body_len, b->raw_body, b->raw_body_len))
		DIFF("raw body (%zu vs %zu octets)", a->raw_body_len, b->raw_body_len);
	if (mem_differs(a->plain, a->plain_len, b->plain, b->plain_len) ||
	    mem_differs(a->html, a->html_len, b->html, b->html_len) ||
	    mem_differs(a->html_text, a->html_text_len, b->html_text, b->html_text_len))
		DIFF("kept parts");
	if (a->nattachments != b->nattachments)
		DIFF("nattachments %zu vs %zu", a->nattachments, b->nattachments);
	for (i = 0; i < a->nattachments; i++) {
		if (str_differs(a->attachments[i].name, b->attachments[i].name) ||
		    str_differs(a->attachments[i].type, b->attachments[i].type) ||
		    a->attachments[i].size != b->attachments[i].size)
			DIFF("attachment %zu", i);
	}
	if (a->nurl_hosts != b->nurl_hosts)
		DIFF("nurl_hosts %zu vs %zu", a->nurl_hosts, b->nurl_hosts);
	for (i = 0; i < a->nurl_hosts; i++) {
		if (str_differs(a->url_hosts[i], b->url_hosts[i]))
			DIFF("url host %zu: %s vs %s", i, a->url_hosts[i], b->url_hosts[i]);
	}
#undef DIFF
	return 0;
}
