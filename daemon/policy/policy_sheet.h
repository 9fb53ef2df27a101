/*
 * policy_sheet: the score sheet of one message and what it is turned into
 * (policy_sheet.c).  Pure; used by the content stage on its workers and by
 * unit tests.
 */
#ifndef MOAT_POLICY_SHEET_H
#define MOAT_POLICY_SHEET_H

#include <stddef.h>

#include "../score/auth.h"
#include "policy_internal.h"

struct dynbuf;

#define SCORE_PARTS_MAX 48

struct score_part {
	char name[80];      /* "BAYES", "SPF_FAIL", "DNSBL_zone", "RULE_12" ... */
	char detail[80];    /* "p=0.912", a domain, a rule name; "" */
	double points;
};

struct score_sheet {
	struct score_part p[SCORE_PARTS_MAX];
	size_t n;
	double total;
};

/* One more part (silently not kept past SCORE_PARTS_MAX). */
void score_add(struct score_sheet *s, const char *name, double points, const char *detail);
/* SPF, DKIM and DMARC as parts under set's weights, and their flags for the rules. */
void score_auth_parts(struct score_sheet *s, const struct policy_settings *set,
		      const struct auth_result *r, const char **flags, size_t *nflags,
		      size_t maxflags);
/* The statistical filter's points for a spam probability. */
double score_bayes_points(const struct policy_settings *set, double prob);
/* "X-Moat-Score: 7.30 (tag); BAYES=4.10, SPF_FAIL=2.00", folded.  0 or -1 (out full). */
int score_header(const struct score_sheet *s, double total, const char *action,
		 struct dynbuf *out);
/* The parts as a JSON array [{"name","points","detail"}] (caller frees). */
char *score_json(const struct score_sheet *s);
/*
 * edit (a delivery edit as JSON, or NULL; taken over) with prefix put in
 * front of its subject prefix and headers put first among its header
 * fields.  The new edit (caller frees); edit itself when nothing is added.
 */
char *score_edit_merge(char *edit, const char *prefix, const char *const *headers, size_t n);

#endif
