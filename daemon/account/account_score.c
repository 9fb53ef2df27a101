/*
 * account_score: the compromised-account model as a pure function of the
 * facts the tracker counted (account_track.c) — named signals with value,
 * weight and points, their JSON for account_state.signals and
 * account_alert.signals, and the human line of the log and the alert's
 * detail.  Also the other pure helpers of the module: the limit parser and
 * the client network of an address.  No I/O, no state; unit-tested.
 *
 * The model (docs/submission.md, "Compromised-account detection"):
 *   senders       3 x (distinct envelope senders tried - 1)
 *   foreign_from  3 x (distinct From: addresses not the account's - 1)
 *   bindings      4 x refused sender bindings (MAIL and From:)
 *   malformed     4 x malformed MAIL FROM
 *   new_network   5 once, a network new to an account with a history
 *   burst         1 per message above the threshold, at most 10
 *   same_content  min(8, domains / 10) for identical content in >= 3
 *                 messages to >= 20 domains, first time for the account
 * Trusted accounts: new_network, burst and same_content score 0.
 * Recipients, recipient domains and dead domains are not signals.
 */
#include "account.h"

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../util/util.h"

static int64_t pos(int64_t v)
{
	return v > 0 ? v : 0;
}

static void sig(struct account_signal *s, const char *name, int64_t value, double weight,
		int64_t points)
{
	s->name = name;
	s->value = value;
	s->weight = weight;
	s->points = points;
}

int64_t account_score_signals(const struct account_facts *f,
			      struct account_signal out[ACCOUNT_NSIGNALS])
{
	struct account_signal *s;
	int64_t total = 0;
	int64_t thr;
	int i;

	memset(out, 0, sizeof(struct account_signal) * ACCOUNT_NSIGNALS);
	s = &out[ACCOUNT_SIG_SENDERS];
	sig(s, "senders", f->senders, ACCOUNT_W_SENDERS, ACCOUNT_W_SENDERS * f->senders);
	strlcpy_s(s->label, "distinct envelope senders tried that are not the account's",
		  sizeof(s->label));

	s = &out[ACCOUNT_SIG_FOREIGN_FROM];
	sig(s, "foreign_from", f->foreign_from, ACCOUNT_W_FOREIGN_FROM,
	    ACCOUNT_W_FOREIGN_FROM * pos(f->foreign_from - 1));
	strlcpy_s(s->label, "distinct From: addresses not the account's", sizeof(s->label));

	s = &out[ACCOUNT_SIG_BINDINGS];
	sig(s, "bindings", f->bindings, ACCOUNT_W_BINDINGS, ACCOUNT_W_BINDINGS * f->bindings);
	strlcpy_s(s->label, "refused sender bindings (MAIL FROM and From:)", sizeof(s->label));

	s = &out[ACCOUNT_SIG_MALFORMED];
	sig(s, "malformed", f->malformed, ACCOUNT_W_MALFORMED, ACCOUNT_W_MALFORMED * f->malformed);
	strlcpy_s(s->label, "malformed MAIL FROM addresses", sizeof(s->label));

	s = &out[ACCOUNT_SIG_NEW_NETWORK];
	sig(s, "new_network", f->new_network ? 1 : 0, ACCOUNT_P_NEW_NETWORK,
	    f->new_network && !f->trusted ? ACCOUNT_P_NEW_NETWORK : 0);
	strlcpy_s(s->label, "client network new to an account with a history", sizeof(s->label));

	s = &out[ACCOUNT_SIG_BURST];
	if (f->baseline_weeks >= ACCOUNT_BASELINE_WEEKS) {
		thr = (int64_t)(ACCOUNT_BURST_FACTOR * f->baseline + 0.5);
		if (thr < f->volume_floor)
			thr = f->volume_floor;
		sig(s, "burst", f->messages_hour, 1, pos(f->messages_hour - thr));
		snprintf(s->label, sizeof(s->label),
			 "messages in the last hour (above %lld: %d x learned %.1f/h)",
			 (long long)thr, ACCOUNT_BURST_FACTOR, f->baseline);
	} else {
		thr = f->volume_floor;
		sig(s, "burst", f->messages_window, 1, pos(f->messages_window - thr));
		snprintf(s->label, sizeof(s->label),
			 "messages in %llds (above %lld; no learned baseline)",
			 (long long)f->window_s, (long long)thr);
	}
	if (s->points > ACCOUNT_BURST_CAP)
		s->points = ACCOUNT_BURST_CAP;
	if (f->trusted)
		s->points = 0;

	s = &out[ACCOUNT_SIG_SAME_CONTENT];
	sig(s, "same_content", f->content_domains, 1.0 / ACCOUNT_CONTENT_PER, 0);
	if (f->content_messages >= ACCOUNT_CONTENT_MESSAGES &&
	    f->content_domains >= ACCOUNT_CONTENT_DOMAINS && !f->bulk_before && !f->trusted) {
		s->points = f->content_domains / ACCOUNT_CONTENT_PER;
		if (s->points > ACCOUNT_CONTENT_CAP)
			s->points = ACCOUNT_CONTENT_CAP;
	}
	snprintf(s->label, sizeof(s->label),
		 "recipient domains of identical content (%lld messages; counted up to %d%s)",
		 (long long)f->content_messages, ACCOUNT_CONTENT_CAP * ACCOUNT_CONTENT_PER,
		 f->bulk_before ? "; sent bulk before" : "");

	/* Over the volume cap, same_content gives way first, then burst. */
	{
		static const int vol[] = { ACCOUNT_SIG_SAME_CONTENT, ACCOUNT_SIG_BURST,
					   ACCOUNT_SIG_NEW_NETWORK };
		int64_t excess = -ACCOUNT_VOLUME_CAP;

		for (i = 0; i < 3; i++)
			excess += out[vol[i]].points;
		for (i = 0; i < 3 && excess > 0; i++) {
			int64_t cut = out[vol[i]].points < excess ? out[vol[i]].points : excess;

			out[vol[i]].points -= cut;
			excess -= cut;
		}
	}
	for (i = 0; i < ACCOUNT_NSIGNALS; i++)
		total += out[i].points;
	return total;
}

char *account_signals_json(const struct account_signal s[ACCOUNT_NSIGNALS])
{
	json_t *a = json_array();
	char *out;
	int i;

	for (i = 0; i < ACCOUNT_NSIGNALS; i++) {
		json_t *w = s[i].weight == (double)(int64_t)s[i].weight
			? json_integer((json_int_t)s[i].weight) : json_real(s[i].weight);

		json_array_append_new(a, json_pack("{s:s, s:s, s:I, s:o, s:I}",
						   "name", s[i].name ? s[i].name : "",
						   "label", s[i].label,
						   "value", (json_int_t)s[i].value,
						   "weight", w,
						   "points", (json_int_t)s[i].points));
	}
	out = json_dumps(a, JSON_COMPACT | JSON_REAL_PRECISION(6));
	json_decref(a);
	if (out == NULL)
		abort(); /* jansson allocation failure */
	return out;
}

void account_signals_line(const struct account_signal s[ACCOUNT_NSIGNALS], int64_t score,
			  char *out, size_t outsz)
{
	size_t used;
	int i;
	int n;

	n = snprintf(out, outsz, "score=%lld", (long long)score);
	used = n > 0 && (size_t)n < outsz ? (size_t)n : outsz;
	for (i = 0; i < ACCOUNT_NSIGNALS && used < outsz; i++) {
		n = snprintf(out + used, outsz - used, " %s=%lld:%lld", s[i].name ? s[i].name : "?",
			     (long long)s[i].value, (long long)s[i].points);
		if (n < 0 || (size_t)n >= outsz - used)
			break;
		used += (size_t)n;
	}
}

int account_parse_limits(const char *s, int64_t out[4])
{
	int64_t v[4];
	int n = 0;

	for (;;) {
		char *end;
		long long x;

		if (n == 4 || *s < '0' || *s > '9')
			return -1;
		errno = 0;
		x = strtoll(s, &end, 10);
		if (end == s || errno != 0 || x < 0)
			return -1;
		v[n++] = x;
		s = end;
		if (*s == '\0')
			break;
		if (*s != ',')
			return -1;
		s++;
	}
	if (n == 3) {
		out[0] = -1;
		memcpy(out + 1, v, sizeof(int64_t) * 3);
	} else if (n == 4) {
		memcpy(out, v, sizeof(int64_t) * 4);
	} else {
		return -1;
	}
	return out[0] > ACCOUNT_WIN_KEEP_MAX ? -1 : 0;
}

int account_client_net(const char *addr, char *out, size_t outsz)
{
	unsigned char b[16];
	char txt[INET6_ADDRSTRLEN];
	int n;

	if (inet_pton(AF_INET, addr, b) == 1) {
		n = snprintf(out, outsz, "%u.%u.%u.0/24", b[0], b[1], b[2]);
		return n > 0 && (size_t)n < outsz ? 0 : -1;
	}
	if (inet_pton(AF_INET6, addr, b) != 1)
		return -1;
	/* An IPv4-mapped address is its IPv4 network. */
	if (memcmp(b, "\0\0\0\0\0\0\0\0\0\0\xff\xff", 12) == 0) {
		n = snprintf(out, outsz, "%u.%u.%u.0/24", b[12], b[13], b[14]);
		return n > 0 && (size_t)n < outsz ? 0 : -1;
	}
	memset(b + 8, 0, 8);
	if (inet_ntop(AF_INET6, b, txt, sizeof(txt)) == NULL)
		return -1;
	n = snprintf(out, outsz, "%s/64", txt);
	return n > 0 && (size_t)n < outsz ? 0 : -1;
}
