/*
 * digest_render: the digest's template language and its message.  Pure:
 * no I/O, bounded dynbufs given by the caller.
 *
 * A template is text with placeholders "{{name}}".  The subject may use
 * {{user}}, {{address}} and {{count}}; the text and HTML parts also
 * {{items}} (the list of held messages with their links) and {{console}}
 * (the console's URL).  Anything else in braces is refused when the
 * template is saved, so a typo never reaches a user.  In the HTML part
 * every value — user name, sender, subject, reason, URLs — is escaped;
 * the template's own markup is the administrator's and is kept as written.
 *
 * The message is multipart/alternative (text, then HTML), both parts UTF-8
 * in base64, so that no line of a sender-chosen subject can break the
 * 998-octet limit or smuggle a header; the Subject header is RFC 2047
 * encoded when it is not plain ASCII.
 */
#include "digest.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "../util/util.h"

const struct digest_template digest_template_default = {
	.subject = "Quarantine: {{count}} new message(s) held for {{address}}",
	.text =
		"Hello {{user}},\n"
		"\n"
		"{{count}} message(s) addressed to you were held in quarantine and not\n"
		"delivered.  If one of them is mail you want, use its Release link;\n"
		"Allow sender also delivers future mail from that sender to you.\n"
		"Each link works once.\n"
		"\n"
		"{{items}}\n"
		"All your held messages: {{console}}\n",
	.html =
		"<!DOCTYPE html>\n"
		"<html><head><meta charset=\"utf-8\"><title>Quarantine digest</title></head>\n"
		"<body style=\"font-family:sans-serif\">\n"
		"<p>Hello {{user}},</p>\n"
		"<p>{{count}} message(s) addressed to you were held in quarantine and not"
		" delivered. If one of them is mail you want, use its <b>Release</b> link;"
		" <b>Allow sender</b> also delivers future mail from that sender to you."
		" Each link works once.</p>\n"
		"{{items}}\n"
		"<p><a href=\"{{console}}\">All your held messages</a></p>\n"
		"</body></html>\n",
};

enum ph { PH_USER, PH_ADDRESS, PH_COUNT, PH_ITEMS, PH_CONSOLE, PH_NONE };

static const char *const ph_names[] = { "user", "address", "count", "items", "console" };

/* The placeholder at s[0..n) ("user"), or PH_NONE. */
static enum ph ph_find(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < ARRAY_LEN(ph_names); i++)
		if (strlen(ph_names[i]) == n && memcmp(ph_names[i], s, n) == 0)
			return (enum ph)i;
	return PH_NONE;
}

/*
 * Walk t: literal runs and placeholders.  A name is trimmed of blanks.
 * 0, or -1 with err (unclosed braces, unknown or disallowed name).
 */
static int check_one(const char *t, int subject, char *err, size_t errsz)
{
	const char *p = t;

	for (;;) {
		const char *open = strstr(p, "{{");
		const char *close;
		const char *a, *b;
		enum ph ph;

		if (open == NULL)
			return 0;
		close = strstr(open + 2, "}}");
		if (close == NULL) {
			snprintf(err, errsz, "\"{{\" without \"}}\"");
			return -1;
		}
		a = open + 2;
		b = close;
		while (a < b && (*a == ' ' || *a == '\t'))
			a++;
		while (b > a && (b[-1] == ' ' || b[-1] == '\t'))
			b--;
		ph = ph_find(a, (size_t)(b - a));
		if (ph == PH_NONE || (subject && (ph == PH_ITEMS || ph == PH_CONSOLE))) {
			char name[40];
			size_t n = (size_t)(b - a);

			log_escape(a, n, name, sizeof(name));
			snprintf(err, errsz, "unknown placeholder {{%s}}; %s", name,
				 subject ? "the subject takes {{user}}, {{address}}, {{count}}"
					 : "use {{user}}, {{address}}, {{count}}, {{items}},"
					   " {{console}}");
			return -1;
		}
		p = close + 2;
	}
}

int digest_template_check(const struct digest_template *t, const char **field, char *err,
			  size_t errsz)
{
	if (strlen(t->subject) == 0 || strlen(t->subject) > DIGEST_SUBJECT_MAX ||
	    strpbrk(t->subject, "\r\n") != NULL) {
		*field = "subject";
		snprintf(err, errsz, "1 to %d characters on one line", DIGEST_SUBJECT_MAX);
		return -1;
	}
	if (check_one(t->subject, 1, err, errsz) < 0) {
		*field = "subject";
		return -1;
	}
	if (strlen(t->text) == 0 || strlen(t->text) > DIGEST_BODY_MAX) {
		*field = "text";
		snprintf(err, errsz, "1 to %d bytes", DIGEST_BODY_MAX);
		return -1;
	}
	if (check_one(t->text, 0, err, errsz) < 0) {
		*field = "text";
		return -1;
	}
	if (strlen(t->html) == 0 || strlen(t->html) > DIGEST_BODY_MAX) {
		*field = "html";
		snprintf(err, errsz, "1 to %d bytes", DIGEST_BODY_MAX);
		return -1;
	}
	if (check_one(t->html, 0, err, errsz) < 0) {
		*field = "html";
		return -1;
	}
	return 0;
}

enum mode { M_SUBJECT, M_TEXT, M_HTML };

/* s as the mode wants it: HTML-escaped, or with control characters as spaces. */
static int add_value(struct dynbuf *b, const char *s, enum mode m)
{
	int rc = 0;

	for (; *s != '\0' && rc == 0; s++) {
		unsigned char c = (unsigned char)*s;

		if (m == M_HTML) {
			switch (c) {
			case '&':
				rc = dynbuf_add(b, "&amp;", 5);
				continue;
			case '<':
				rc = dynbuf_add(b, "&lt;", 4);
				continue;
			case '>':
				rc = dynbuf_add(b, "&gt;", 4);
				continue;
			case '"':
				rc = dynbuf_add(b, "&quot;", 6);
				continue;
			case '\'':
				rc = dynbuf_add(b, "&#39;", 5);
				continue;
			default:
				break;
			}
		}
		if (c < 0x20 || c == 0x7f)
			c = ' ';
		rc = dynbuf_add(b, &c, 1);
	}
	return rc;
}

static void date_of(int64_t ms, char *out, size_t outsz)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, outsz, "%Y-%m-%d %H:%M UTC", &tm);
}

static int items_text(struct dynbuf *b, const struct digest_view *v)
{
	size_t i;
	int rc = 0;

	if (v->nitems == 0)
		return dynbuf_addf(b, "(no messages are held for you)\n");
	for (i = 0; i < v->nitems && rc == 0; i++) {
		const struct digest_entry *e = &v->items[i];
		char date[40];

		date_of(e->created_at, date, sizeof(date));
		rc |= dynbuf_addf(b, "%s  From: ", date);
		rc |= add_value(b, e->sender[0] != '\0' ? e->sender : "<>", M_TEXT);
		rc |= dynbuf_addf(b, "\n  To: ");
		rc |= add_value(b, e->rcpt, M_TEXT);
		rc |= dynbuf_addf(b, "\n  Subject: ");
		rc |= add_value(b, e->subject, M_TEXT);
		rc |= dynbuf_addf(b, "\n  Reason: ");
		rc |= add_value(b, e->reason, M_TEXT);
		rc |= dynbuf_addf(b, " (%s)\n", e->kind);
		if (e->release[0] != '\0')
			rc |= dynbuf_addf(b, "  Release:      %s\n", e->release);
		rc |= dynbuf_addf(b, "  Delete:       %s\n", e->del);
		if (e->allow[0] != '\0')
			rc |= dynbuf_addf(b, "  Allow sender: %s\n", e->allow);
		rc |= dynbuf_add(b, "\n", 1);
	}
	if (rc == 0 && (int64_t)v->nitems < v->count)
		rc = dynbuf_addf(b, "... and %lld more, listed in the console.\n",
				 (long long)(v->count - (int64_t)v->nitems));
	return rc;
}

static int link_html(struct dynbuf *b, const char *url, const char *label)
{
	int rc = dynbuf_addf(b, " <a href=\"");

	rc |= add_value(b, url, M_HTML);
	rc |= dynbuf_addf(b, "\">%s</a>", label);
	return rc;
}

static int items_html(struct dynbuf *b, const struct digest_view *v)
{
	size_t i;
	int rc = 0;

	if (v->nitems == 0)
		return dynbuf_addf(b, "<p>(no messages are held for you)</p>\n");
	rc |= dynbuf_addf(b, "<table cellpadding=\"4\" style=\"border-collapse:collapse\">\n"
			  "<tr><th align=\"left\">Date</th><th align=\"left\">From</th>"
			  "<th align=\"left\">Subject</th><th align=\"left\">Reason</th>"
			  "<th align=\"left\"></th></tr>\n");
	for (i = 0; i < v->nitems && rc == 0; i++) {
		const struct digest_entry *e = &v->items[i];
		char date[40];

		date_of(e->created_at, date, sizeof(date));
		rc |= dynbuf_addf(b, "<tr style=\"border-top:1px solid #ccc\"><td>%s</td><td>", date);
		rc |= add_value(b, e->sender[0] != '\0' ? e->sender : "<>", M_HTML);
		rc |= dynbuf_addf(b, "</td><td>");
		rc |= add_value(b, e->subject, M_HTML);
		rc |= dynbuf_addf(b, "</td><td>");
		rc |= add_value(b, e->reason, M_HTML);
		rc |= dynbuf_addf(b, " (%s)</td><td>", e->kind);
		if (e->release[0] != '\0')
			rc |= link_html(b, e->release, "Release");
		rc |= link_html(b, e->del, "Delete");
		if (e->allow[0] != '\0')
			rc |= link_html(b, e->allow, "Allow sender");
		rc |= dynbuf_addf(b, "</td></tr>\n");
	}
	rc |= dynbuf_addf(b, "</table>\n");
	if (rc == 0 && (int64_t)v->nitems < v->count)
		rc = dynbuf_addf(b, "<p>... and %lld more, listed in the console.</p>\n",
				 (long long)(v->count - (int64_t)v->nitems));
	return rc;
}

static int render_one(const char *t, const struct digest_view *v, enum mode m,
		      struct dynbuf *out)
{
	const char *p = t;
	int rc = 0;

	while (rc == 0) {
		const char *open = strstr(p, "{{");
		const char *close;
		const char *a, *b;
		char num[24];

		if (open == NULL)
			return dynbuf_add(out, p, strlen(p));
		close = strstr(open + 2, "}}");
		if (close == NULL)
			return dynbuf_add(out, p, strlen(p)); /* checked on save; kept as text */
		rc |= dynbuf_add(out, p, (size_t)(open - p));
		a = open + 2;
		b = close;
		while (a < b && (*a == ' ' || *a == '\t'))
			a++;
		while (b > a && (b[-1] == ' ' || b[-1] == '\t'))
			b--;
		switch (ph_find(a, (size_t)(b - a))) {
		case PH_USER:
			rc |= add_value(out, v->user, m);
			break;
		case PH_ADDRESS:
			rc |= add_value(out, v->address, m);
			break;
		case PH_COUNT:
			snprintf(num, sizeof(num), "%lld", (long long)v->count);
			rc |= dynbuf_add(out, num, strlen(num));
			break;
		case PH_ITEMS:
			if (m == M_TEXT)
				rc |= items_text(out, v);
			else if (m == M_HTML)
				rc |= items_html(out, v);
			break;
		case PH_CONSOLE:
			if (m != M_SUBJECT)
				rc |= add_value(out, v->console, m);
			break;
		case PH_NONE:
			rc |= dynbuf_add(out, open, (size_t)(close + 2 - open));
			break;
		}
		p = close + 2;
	}
	return rc;
}

int digest_render(const struct digest_template *t, const struct digest_view *v,
		  struct dynbuf *subject, struct dynbuf *text, struct dynbuf *html)
{
	int rc = 0;

	rc |= render_one(t->subject, v, M_SUBJECT, subject);
	rc |= dynbuf_add(subject, "", 1);
	rc |= render_one(t->text, v, M_TEXT, text);
	rc |= dynbuf_add(text, "", 1);
	rc |= render_one(t->html, v, M_HTML, html);
	rc |= dynbuf_add(html, "", 1);
	if (rc != 0)
		return -1;
	/* The NULs end C strings; the lengths stay those of the content. */
	subject->len--;
	text->len--;
	html->len--;
	return 0;
}

static int is_ascii(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s >= 0x7f || (unsigned char)*s < 0x20)
			return 0;
	return 1;
}

/* Subject: plain, or RFC 2047 B-encoded words never splitting a UTF-8 sequence. */
static int add_subject(struct dynbuf *b, const char *s)
{
	size_t n = strlen(s);
	size_t i = 0;
	int rc = 0;

	if (is_ascii(s))
		return dynbuf_addf(b, "Subject: %s\r\n", s);
	rc |= dynbuf_addf(b, "Subject:");
	while (i < n && rc == 0) {
		unsigned char enc[80];
		size_t take = n - i < 45 ? n - i : 45;

		/* Back up to a character boundary (not before a continuation byte). */
		while (take > 1 && i + take < n && ((unsigned char)s[i + take] & 0xc0) == 0x80)
			take--;
		EVP_EncodeBlock(enc, (const unsigned char *)s + i, (int)take);
		if (i > 0)
			rc |= dynbuf_add(b, "\r\n", 2); /* folded: one encoded word a line */
		rc |= dynbuf_addf(b, " =?UTF-8?B?%s?=", enc);
		i += take;
	}
	rc |= dynbuf_add(b, "\r\n", 2);
	return rc;
}

int digest_message(struct dynbuf *out, const struct digest_mail *m)
{
	time_t t = (time_t)(m->now_ms / 1000);
	struct tm tm;
	char date[64];
	int rc = 0;

	gmtime_r(&t, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
	rc |= dynbuf_addf(out, "From: <%s>\r\nTo: <%s>\r\n", m->from, m->to);
	rc |= add_subject(out, m->subject);
	rc |= dynbuf_addf(out,
		"Date: %s\r\n"
		"Message-ID: <%s.digest@%s>\r\n"
		"Auto-Submitted: auto-generated\r\n"
		"X-Auto-Response-Suppress: All\r\n"
		"MIME-Version: 1.0\r\n"
		"Content-Type: multipart/alternative; boundary=\"=_moat_%s\"\r\n"
		"\r\n"
		"This is a multi-part message in MIME format.\r\n"
		"\r\n"
		"--=_moat_%s\r\n"
		"Content-Type: text/plain; charset=utf-8\r\n"
		"Content-Transfer-Encoding: base64\r\n"
		"\r\n",
		date, m->id, m->hostname, m->id, m->id);
	rc |= dynbuf_add_base64(out, m->text, strlen(m->text));
	rc |= dynbuf_addf(out,
		"\r\n--=_moat_%s\r\n"
		"Content-Type: text/html; charset=utf-8\r\n"
		"Content-Transfer-Encoding: base64\r\n"
		"\r\n", m->id);
	rc |= dynbuf_add_base64(out, m->html, strlen(m->html));
	rc |= dynbuf_addf(out, "\r\n--=_moat_%s--\r\n", m->id);
	return rc != 0 ? -1 : 0;
}
