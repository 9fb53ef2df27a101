/*
 * policy_sheet: the score sheet of one message — named parts with points,
 * what sender authentication and the statistical filter are worth under
 * the snapshot's weights, and the texts the score leaves behind (the
 * X-Moat-Score field, the JSON of the message log, a recipient's delivery
 * edit with the score's header fields).  Pure functions; the content stage
 * (policy_content.c) calls them on its worker.  docs/score.md describes the
 * parts and their default weights.
 */
#include "policy_sheet.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../util/util.h"

void score_add(struct score_sheet *s, const char *name, double points, const char *detail)
{
	struct score_part *p;

	if (s->n >= SCORE_PARTS_MAX)
		return;
	p = &s->p[s->n++];
	strlcpy_s(p->name, name, sizeof(p->name));
	strlcpy_s(p->detail, detail != NULL ? detail : "", sizeof(p->detail));
	p->points = points;
	s->total += points;
}

static void flag(const char **flags, size_t *n, size_t max, const char *f)
{
	if (*n < max)
		flags[(*n)++] = f;
}

void score_auth_parts(struct score_sheet *s, const struct policy_settings *set,
		      const struct auth_result *r, const char **flags, size_t *nflags,
		      size_t maxflags)
{
	static const char *const spf_flags[] = {
		[AUTH_NONE] = "spf_none", [AUTH_PASS] = "spf_pass", [AUTH_FAIL] = "spf_fail",
		[AUTH_SOFTFAIL] = "spf_softfail", [AUTH_NEUTRAL] = "spf_neutral",
		[AUTH_TEMPERROR] = "spf_temperror", [AUTH_PERMERROR] = "spf_permerror",
	};
	char detail[80];
	size_t i, pass = 0, fail = 0;

	flag(flags, nflags, maxflags, spf_flags[r->spf.res]);
	snprintf(detail, sizeof(detail), "%.70s", r->spf.domain);
	if (r->spf.res == AUTH_PASS)
		score_add(s, "SPF_PASS", set->score_spf_pass, detail);
	else if (r->spf.res == AUTH_FAIL)
		score_add(s, "SPF_FAIL", set->score_spf_fail, detail);
	else if (r->spf.res == AUTH_SOFTFAIL)
		score_add(s, "SPF_SOFTFAIL", set->score_spf_softfail, detail);

	for (i = 0; i < r->dkim.n; i++) {
		if (r->dkim.r[i].res == AUTH_PASS)
			pass++;
		else if (r->dkim.r[i].res == AUTH_FAIL || r->dkim.r[i].res == AUTH_PERMERROR)
			fail++;
	}
	if (pass > 0) {
		for (i = 0; i < r->dkim.n && r->dkim.r[i].res != AUTH_PASS; i++)
			;
		flag(flags, nflags, maxflags, "dkim_pass");
		score_add(s, "DKIM_PASS", set->score_dkim_pass, r->dkim.r[i].d);
	} else if (fail > 0) {
		flag(flags, nflags, maxflags, "dkim_fail");
		score_add(s, "DKIM_FAIL", set->score_dkim_fail, r->dkim.r[0].d);
	} else {
		flag(flags, nflags, maxflags, "dkim_none");
	}

	if (r->dmarc.res == AUTH_PASS) {
		flag(flags, nflags, maxflags, "dmarc_pass");
		score_add(s, "DMARC_PASS", set->score_dmarc_pass, r->dmarc.from_domain);
	} else if (r->dmarc.res == AUTH_FAIL) {
		flag(flags, nflags, maxflags, "dmarc_fail");
		snprintf(detail, sizeof(detail), "%.60s p=%s", r->dmarc.from_domain,
			 auth_dmarc_policy_name(r->dmarc.policy));
		score_add(s, "DMARC_FAIL", r->dmarc.disposition == DMARC_P_QUARANTINE ||
			  r->dmarc.disposition == DMARC_P_REJECT ? set->score_dmarc_fail
			  : set->score_dmarc_fail_none, detail);
	} else {
		flag(flags, nflags, maxflags, "dmarc_none");
	}
}

double score_bayes_points(const struct policy_settings *set, double prob)
{
	if (prob >= 0.5)
		return set->score_bayes_spam * (prob - 0.5) * 2.0;
	return -set->score_bayes_ham * (0.5 - prob) * 2.0;
}

/* Points as the header and the log show them: two decimals, no "-0.00". */
static void fmt_points(char *out, size_t outsz, double v)
{
	if (fabs(v) < 0.005)
		v = 0;
	snprintf(out, outsz, "%.2f", v);
}

int score_header(const struct score_sheet *s, double total, const char *action,
		 struct dynbuf *out)
{
	char pts[32];
	size_t i, line;

	fmt_points(pts, sizeof(pts), total);
	if (dynbuf_addf(out, "X-Moat-Score: %s (%s)", pts, action) < 0)
		return -1;
	line = out->len;
	for (i = 0; i < s->n; i++) {
		char item[160];
		int n;

		fmt_points(pts, sizeof(pts), s->p[i].points);
		n = snprintf(item, sizeof(item), "%s %s=%s", i == 0 ? ";" : ",", s->p[i].name, pts);
		if (n < 0 || (size_t)n >= sizeof(item))
			continue;
		/* Folded before a line would pass 78 octets (RFC 5322 2.1.1). */
		if (out->len - line + (size_t)n > 76) {
			if (dynbuf_add(out, "\r\n\t", 3) < 0)
				return -1;
			line = out->len - 1;
			if (dynbuf_add(out, item + 2, (size_t)n - 2) < 0)
				return -1;
			continue;
		}
		if (dynbuf_add(out, item, (size_t)n) < 0)
			return -1;
	}
	return 0;
}

char *score_json(const struct score_sheet *s)
{
	json_t *arr = json_array();
	char *out;
	size_t i;

	for (i = 0; i < s->n; i++) {
		json_t *o = json_object();

		json_object_set_new(o, "name", json_string(s->p[i].name));
		json_object_set_new(o, "points", json_real(round(s->p[i].points * 1000) / 1000));
		if (s->p[i].detail[0] != '\0') {
			json_t *d = json_string(s->p[i].detail); /* NULL when not UTF-8 */

			if (d != NULL)
				json_object_set_new(o, "detail", d);
		}
		json_array_append_new(arr, o);
	}
	out = json_dumps(arr, JSON_COMPACT | JSON_REAL_PRECISION(6));
	json_decref(arr);
	return out;
}

char *score_edit_merge(char *edit, const char *prefix, const char *const *headers, size_t n)
{
	json_t *o = NULL, *h;
	json_error_t je;
	char *s;
	size_t i;

	if ((prefix == NULL || prefix[0] == '\0') && n == 0)
		return edit;
	if (edit != NULL)
		o = json_loads(edit, 0, &je);
	if (o == NULL || !json_is_object(o)) {
		json_decref(o);
		o = json_object();
	}
	free(edit);
	if (prefix != NULL && prefix[0] != '\0') {
		json_t *old = json_object_get(o, "subject_prefix");
		char both[1024];

		snprintf(both, sizeof(both), "%s%s", prefix,
			 json_is_string(old) ? json_string_value(old) : "");
		json_object_set_new(o, "subject_prefix", json_string(both));
	}
	h = json_object_get(o, "headers");
	if (!json_is_array(h)) {
		h = json_array();
		json_object_set_new(o, "headers", h);
	}
	/* Ours first: the score and authentication results head the fields. */
	for (i = n; i > 0; i--)
		json_array_insert_new(h, 0, json_string(headers[i - 1]));
	s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(o);
	return s;
}
