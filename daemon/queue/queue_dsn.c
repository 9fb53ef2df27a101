/*
 * queue_dsn: an RFC 3464 delivery status notification (multipart/report;
 * report-type=delivery-status) for recipients that became dead.  Pure:
 * builds the whole message into a bounded dynbuf, no I/O.  The runner
 * sends one only to an authenticated local sender (dsn_to_local_senders),
 * never to a remote one: held undeliverable mail tells harvesters nothing.
 */
#include "queue.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "../util/util.h"

static void rfc5322_date(int64_t ms, char *out, size_t outsz)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, outsz, "%a, %d %b %Y %H:%M:%S +0000", &tm);
}

/* The enhanced status code in a reply ("550 5.1.1 ..." -> "5.1.1"). */
static void status_of(const char *reply, char *out, size_t outsz)
{
	const char *p = reply;
	size_t n;

	if (strlen(p) > 4 && (p[0] == '4' || p[0] == '5') && p[3] == ' ') {
		p += 4;
		n = strspn(p, "0123456789.");
		if (n >= 5 && n < outsz && p[1] == '.') {
			memcpy(out, p, n);
			out[n] = '\0';
			return;
		}
	}
	strlcpy_s(out, "5.0.0", outsz);
}

/* Copy s with CR and LF replaced by spaces (header-safe). */
static int add_flat(struct dynbuf *b, const char *s)
{
	for (; *s != '\0'; s++) {
		char c = (*s == '\r' || *s == '\n') ? ' ' : *s;

		if (dynbuf_add(b, &c, 1) < 0)
			return -1;
	}
	return 0;
}

int queue_dsn_build(struct dynbuf *out, const struct queue_dsn *d)
{
	char date[64];
	char arrival[64];
	size_t i;
	int rc = 0;

	rfc5322_date(d->now_ms, date, sizeof(date));
	rfc5322_date(d->arrival_ms, arrival, sizeof(arrival));
	rc |= dynbuf_addf(out,
		"From: Mail Delivery System <MAILER-DAEMON@%s>\r\n"
		"To: <%s>\r\n"
		"Subject: Undelivered Mail Returned to Sender\r\n"
		"Date: %s\r\n"
		"Message-ID: <%s.dsn@%s>\r\n",
		d->reporting_host, d->orig_sender, date, d->qid, d->reporting_host);
	rc |= dynbuf_addf(out,
		"Auto-Submitted: auto-replied\r\n"
		"MIME-Version: 1.0\r\n"
		"Content-Type: multipart/report; report-type=delivery-status;\r\n"
		"\tboundary=\"%s\"\r\n"
		"\r\n"
		"This is a MIME-encapsulated message.\r\n"
		"\r\n"
		"--%s\r\n"
		"Content-Type: text/plain; charset=us-ascii\r\n"
		"\r\n"
		"Your message (queue id %s) could not be delivered to the following\r\n"
		"recipients:\r\n\r\n",
		d->boundary, d->boundary, d->qid);
	for (i = 0; i < d->nrcpts; i++) {
		rc |= dynbuf_addf(out, "<%s>: ", d->rcpts[i].rcpt);
		rc |= add_flat(out, d->rcpts[i].reply);
		rc |= dynbuf_add(out, "\r\n", 2);
	}
	rc |= dynbuf_addf(out,
		"\r\n--%s\r\n"
		"Content-Type: message/delivery-status\r\n"
		"\r\n"
		"Reporting-MTA: dns; %s\r\n"
		"X-Moat-Queue-ID: %s\r\n"
		"Arrival-Date: %s\r\n",
		d->boundary, d->reporting_host, d->qid, arrival);
	for (i = 0; i < d->nrcpts; i++) {
		char status[16];

		status_of(d->rcpts[i].reply, status, sizeof(status));
		rc |= dynbuf_addf(out,
			"\r\n"
			"Final-Recipient: rfc822; %s\r\n"
			"Action: failed\r\n"
			"Status: %s\r\n"
			"Last-Attempt-Date: %s\r\n"
			"Diagnostic-Code: smtp; ",
			d->rcpts[i].rcpt, status, date);
		rc |= add_flat(out, d->rcpts[i].reply);
		rc |= dynbuf_add(out, "\r\n", 2);
	}
	rc |= dynbuf_addf(out,
		"\r\n--%s\r\n"
		"Content-Type: text/rfc822-headers\r\n"
		"\r\n", d->boundary);
	if (d->headers_len > 0)
		rc |= dynbuf_add(out, d->headers, d->headers_len);
	if (d->headers_len > 0 && d->headers[d->headers_len - 1] != '\n')
		rc |= dynbuf_add(out, "\r\n", 2);
	rc |= dynbuf_addf(out, "\r\n--%s--\r\n", d->boundary);
	return rc != 0 ? -1 : 0;
}
