/*
 * alert_mail: the text of an account alert e-mail (alert.h).  Pure: no
 * I/O; the notifier writes the result into the queue.
 *
 * Headers are ASCII only (a byte outside printable ASCII in an account
 * name becomes '?'), each well under 998 bytes; the body is text/plain
 * UTF-8 in base64, so no line of client-chosen text (a subject, a sender)
 * can reach 998 bytes or be read as a header or a MIME boundary.
 */
#include "alert.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define FIELD_MAX 300 /* bytes of one client-chosen value in the body */

/* s with control bytes replaced and at most FIELD_MAX bytes; ascii: only printable ASCII. */
static void clean(const char *s, int ascii, char *out, size_t outsz)
{
	size_t i, n = 0;

	if (s == NULL)
		s = "";
	for (i = 0; s[i] != '\0' && n + 1 < outsz && i < FIELD_MAX; i++) {
		unsigned char c = (unsigned char)s[i];

		out[n++] = (c < 0x20 || c == 0x7f || (ascii && c >= 0x80)) ? '?' : (char)c;
	}
	out[n] = '\0';
}

static void fmt_time(int64_t ms, char *out, size_t outsz)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, outsz, "%Y-%m-%d %H:%M:%S UTC", &tm);
}

/* Percent-encode s for a URL's path or query. */
static int add_url_part(struct dynbuf *b, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	int rc = 0;

	for (; *s != '\0' && rc == 0; s++) {
		unsigned char c = (unsigned char)*s;

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    strchr("-._~@", c) != NULL) {
			rc = dynbuf_add(b, s, 1);
		} else {
			char e[3] = { '%', hex[c >> 4], hex[c & 15] };

			rc = dynbuf_add(b, e, 3);
		}
	}
	return rc;
}

static const char *jstr(json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));

	return s != NULL ? s : "";
}

static long long jint(json_t *o, const char *k)
{
	return (long long)json_integer_value(json_object_get(o, k));
}

static int add_signals(struct dynbuf *t, const char *signals, const char *detail)
{
	json_t *a = signals != NULL ? json_loads(signals, 0, NULL) : NULL;
	char v[FIELD_MAX + 1];
	size_t i, shown = 0;
	int rc = 0;

	rc |= dynbuf_addf(t, "Why (each signal: value x weight = points):\n");
	for (i = 0; json_is_array(a) && i < json_array_size(a); i++) {
		json_t *s = json_array_get(a, i);
		char label[FIELD_MAX + 1];

		clean(jstr(s, "name"), 0, v, sizeof(v));
		clean(jstr(s, "label"), 0, label, sizeof(label));
		rc |= dynbuf_addf(t, "  - %s (%s): value %lld, weight %g, %lld points\n", v,
				  label, jint(s, "value"), json_number_value(json_object_get(s, "weight")),
				  jint(s, "points"));
		shown++;
	}
	json_decref(a);
	if (shown == 0) {
		clean(detail, 0, v, sizeof(v));
		rc |= dynbuf_addf(t, "  %s\n", v[0] != '\0' ? v : "(no signal recorded)");
	}
	return rc;
}

static int add_clients(struct dynbuf *t, const char *clients)
{
	json_t *a = clients != NULL ? json_loads(clients, 0, NULL) : NULL;
	char v[FIELD_MAX + 1];
	size_t i;
	int rc = 0;

	rc |= dynbuf_addf(t, "\nClient addresses:\n");
	for (i = 0; json_is_array(a) && i < json_array_size(a); i++) {
		json_t *c = json_array_get(a, i);

		clean(jstr(c, "addr"), 0, v, sizeof(v));
		rc |= dynbuf_addf(t, "  - %s: %lld message%s%s\n", v, jint(c, "messages"),
				  jint(c, "messages") == 1 ? "" : "s",
				  json_is_true(json_object_get(c, "new")) ? " (new for this account)"
				  : "");
	}
	if (!json_is_array(a) || json_array_size(a) == 0)
		rc |= dynbuf_addf(t, "  (none recorded)\n");
	json_decref(a);
	return rc;
}

static int add_samples(struct dynbuf *t, const char *samples)
{
	json_t *a = samples != NULL ? json_loads(samples, 0, NULL) : NULL;
	char v[4][FIELD_MAX + 1];
	size_t i;
	int rc = 0;

	rc |= dynbuf_addf(t, "\nSample messages (up to %d):\n", ALERT_SAMPLES);
	for (i = 0; json_is_array(a) && i < json_array_size(a) && i < ALERT_SAMPLES; i++) {
		json_t *s = json_array_get(a, i);

		clean(jstr(s, "qid"), 0, v[0], sizeof(v[0]));
		clean(jstr(s, "sender"), 0, v[1], sizeof(v[1]));
		clean(jstr(s, "recipient"), 0, v[2], sizeof(v[2]));
		clean(jstr(s, "subject"), 0, v[3], sizeof(v[3]));
		rc |= dynbuf_addf(t,
				  "  %zu. queue id %s, %lld bytes\n"
				  "     from:    <%s>\n"
				  "     to:      <%s>\n"
				  "     subject: %s\n",
				  i + 1, v[0], jint(s, "size"), v[1], v[2], v[3]);
	}
	if (!json_is_array(a) || json_array_size(a) == 0)
		rc |= dynbuf_addf(t, "  (none)\n");
	json_decref(a);
	return rc;
}

static int add_links(struct dynbuf *t, const struct alert_mail *m)
{
	int rc = 0;

	if (m->url_base == NULL || m->url_base[0] == '\0')
		return 0;
	rc |= dynbuf_addf(t, "\nIn the console:\n  The account:  %s/accounts/", m->url_base);
	rc |= add_url_part(t, m->user);
	rc |= dynbuf_addf(t, "\n  Held mail:    %s/queue?state=held&auth_user=", m->url_base);
	rc |= add_url_part(t, m->user);
	rc |= dynbuf_addf(t, "\n  Message log:  %s/messages?auth_user=", m->url_base);
	rc |= add_url_part(t, m->user);
	rc |= dynbuf_add(t, "\n", 1);
	return rc;
}

/* The comma list of addresses, one a line (folded), each as <addr>. */
static int add_to(struct dynbuf *b, const char *list)
{
	const char *p = list;
	int first = 1;
	int rc = 0;

	while (*p != '\0') {
		size_t n;

		while (*p == ',' || *p == ' ')
			p++;
		n = strcspn(p, ", ");
		if (n > 0 && n <= 320) {
			rc |= dynbuf_addf(b, "%s<%.*s>", first ? "" : ",\r\n ", (int)n, p);
			first = 0;
		}
		p += n;
	}
	rc |= dynbuf_add(b, "\r\n", 2);
	return rc;
}

int alert_mail_render(struct dynbuf *out, const struct alert_mail *m)
{
	struct dynbuf t;
	char user[FIELD_MAX + 1], uascii[FIELD_MAX + 1], actor[FIELD_MAX + 1];
	char when[40], date[64], id[40];
	time_t now = (time_t)(m->now_ms / 1000);
	struct tm tm;
	int rc = 0;

	clean(m->user, 0, user, sizeof(user));
	clean(m->user, 1, uascii, sizeof(uascii));
	clean(m->actor, 0, actor, sizeof(actor));
	fmt_time(m->ts, when, sizeof(when));
	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
	random_hex(id, 8);

	dynbuf_init(&t, 64 * 1024);
	rc |= dynbuf_addf(&t, "The account %s was suspended at %s (score %lld).\n", user, when,
			  (long long)m->score);
	if (strcmp(actor, "moatd") == 0 || actor[0] == '\0')
		rc |= dynbuf_addf(&t, "Suspended automatically: its sending looked like a"
				  " compromised client.\n");
	else
		rc |= dynbuf_addf(&t, "Suspended by %s.\n", actor);
	rc |= dynbuf_add(&t, "\n", 1);
	rc |= add_signals(&t, m->signals, m->detail);
	rc |= add_clients(&t, m->clients);
	rc |= dynbuf_addf(&t, "\nHeld: %lld queued recipients of its mail were moved to held;"
			  " nothing was delivered or deleted.\n", (long long)m->held);
	rc |= add_samples(&t, m->samples);
	rc |= add_links(&t, m);
	rc |= dynbuf_addf(&t, "\nWhat to do: lift the suspension (keep, release or delete what"
			  " was held), or trust the\naccount for bulk mail until a date: in the"
			  " console, or with\n  moatd accounts lift %s [--release|--delete]\n"
			  "  moatd accounts trust %s --until DATE\n"
			  "Until then its SMTP AUTH is refused and nothing it queued is delivered.\n"
			  "\nAlert %lld, sent by moatd on %s.\n", uascii, uascii, (long long)m->id,
			  m->hostname);
	if (rc != 0) {
		dynbuf_free(&t);
		return -1;
	}
	rc |= dynbuf_addf(out,
			  "From: Moat account defence <%s>\r\n"
			  "To: ",
			  m->from);
	rc |= add_to(out, m->to);
	rc |= dynbuf_addf(out,
			  "Subject: [moat] account %s suspended (score %lld)\r\n"
			  "Date: %s\r\n"
			  "Message-ID: <%lld.%s.alert@%s>\r\n"
			  "Auto-Submitted: auto-generated\r\n"
			  "X-Auto-Response-Suppress: All\r\n"
			  "X-Moat-Alert: %lld\r\n"
			  "MIME-Version: 1.0\r\n"
			  "Content-Type: text/plain; charset=utf-8\r\n"
			  "Content-Transfer-Encoding: base64\r\n"
			  "\r\n",
			  uascii, (long long)m->score, date, (long long)m->id, id,
			  m->hostname, (long long)m->id);
	rc |= dynbuf_add_base64(out, t.data, t.len);
	dynbuf_free(&t);
	return rc != 0 ? -1 : 0;
}
