/*
 * Unit tests for the rules module: every operator on every kind of field,
 * EXCEPT / NOT / AND / OR, first-match with final and non-final actions,
 * per-recipient dispositions, Unicode case folding, both regex engines and
 * their bounds, JSON errors that name the place, and the JSON round trip.
 * Messages are mime_view structs built by hand (no MIME parser needed).
 * Table-driven; failures say got/want.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <pthread.h>
#include <cmocka.h>
#include <glib.h>

#include "mime/mime.h"
#include "rules/rules.h"
#include "rules/rules_internal.h"

/* --- a standard message -------------------------------------------------- */

static struct mime_header hdrs[] = {
	{ "From", "Alice Example <alice@example.com>" },
	{ "To", "bob@example.org" },
	{ "Subject", "Prix spécial ÉTÉ: Free CD music" },    /* as decoded from RFC 2047 */
	{ "Received", "from relay1.example.net by mx.example.org" },
	{ "received", "from [198.51.100.9] by relay1.example.net" },
	{ "List-Id", "<news.example.com>" },
	{ "X-Mailer", "" },
};
static struct mime_attachment atts[] = {
	{ "invoice.pdf.exe", "application/x-msdownload", 2000 },
	{ "Straße.jpg", "image/jpeg", 900 },
};
static const char *hosts[] = { "spam.example.net", "www.example.com" };
static const char body[] = "Hello,\nclick here to unsubscribe from this offer.\nBest offer 2026\n";
static const char raw[] = "SGVsbG8sCmNsaWNr\r\n--b1\r\nContent-Type: text/plain\r\n";

static struct mime_view view;

static int in_list(void *arg, const char *list, const char *value)
{
	static const char *const members[][2] = {
		{ "vip", "alice@example.com" }, { "badhosts", "spam.example.net" },
		{ "nets", "192.0.2.7" }, { "staff", "carol@example.org" },
		{ "bl", "zen.spamhaus.org" }, { "subjects", "Prix spécial ÉTÉ: Free CD music" },
	};
	size_t i;
	int *calls = arg;

	if (calls != NULL)
		(*calls)++;
	for (i = 0; i < sizeof(members) / sizeof(members[0]); i++)
		if (strcmp(members[i][0], list) == 0 && strcmp(members[i][1], value) == 0)
			return 1;
	return 0;
}

static const char *rcpt1[] = { "bob@example.org" };
static const char *dnsbl[] = { "zen.spamhaus.org" };
static const char *flags[] = { "tls", "html_only" };
/* ACCOUNT twice: a part named twice counts with its sum (0.1 + 0.2, not exactly 0.3) */
static const char *part_names[] = { "BAYES", "SPF_FAIL", "DNSBL_zen.spamhaus.org", "RULE_12",
				    "ACCOUNT", "ACCOUNT" };
static const double part_values[] = { 4.2, 2, 3, -1, 0.1, 0.2 };

static void std_input(struct rules_input *in)
{
	memset(&view, 0, sizeof(view));
	view.headers = hdrs;
	view.nheaders = sizeof(hdrs) / sizeof(hdrs[0]);
	view.text = body;
	view.text_len = strlen(body);
	view.raw_body = raw;
	view.raw_body_len = strlen(raw);
	view.attachments = atts;
	view.nattachments = 2;
	view.url_hosts = hosts;
	view.nurl_hosts = 2;

	memset(in, 0, sizeof(*in));
	in->mime = &view;
	in->sender = "alice@example.com";
	in->rcpts = rcpt1;
	in->nrcpts = 1;
	in->client_addr = "192.0.2.7";
	in->client_name = "mail.example.com";
	in->helo = "Mail.Example.com";
	in->auth_user = NULL;
	in->size = 5120;
	in->dnsbl = dnsbl;
	in->ndnsbl = 1;
	in->flags = flags;
	in->nflags = 2;
	in->in_list = in_list;
	in->score = 8.5;
	in->score_part_names = part_names;
	in->score_part_values = part_values;
	in->nscore_parts = sizeof(part_values) / sizeof(part_values[0]);
}

static struct rules_set *compile_json(const char *json, char *err, size_t errsz)
{
	struct rules_def *d = NULL;
	struct rules_set *rs;

	if (rules_def_parse(json, strlen(json), &d, err, errsz) < 0)
		return NULL;
	rs = rules_compile(d, err, errsz);
	rules_def_free(d);
	return rs;
}

/* One rule "when COND then quarantine": does it match the standard input? */
static int leaf_matches(const char *cond, char *err, size_t errsz)
{
	char json[8192];
	struct rules_set *rs;
	struct rules_input in;
	struct rules_result res;
	int m;

	snprintf(json, sizeof(json),
		 "[{\"name\":\"t\",\"enabled\":true,\"when\":%s,\"action\":{\"type\":\"quarantine\"}}]",
		 cond);
	rs = compile_json(json, err, errsz);
	if (rs == NULL)
		return -1;
	std_input(&in);
	assert_int_equal(rules_eval(rs, &in, &res), 0);
	m = res.message->action == RULES_ACT_QUARANTINE;
	rules_result_free(&res);
	rules_set_free(rs);
	return m;
}

static void test_operators(void **state)
{
	static const struct {
		const char *name, *cond;
		int want;
	} cases[] = {
		/* envelope strings */
		{ "sender contains", "{\"field\":\"sender\",\"op\":\"contains\",\"value\":\"@EXAMPLE.com\"}", 1 },
		{ "sender contains sensitive", "{\"field\":\"sender\",\"op\":\"contains\",\"value\":\"@EXAMPLE.com\",\"case\":\"sensitive\"}", 0 },
		{ "sender not_contains", "{\"field\":\"sender\",\"op\":\"not_contains\",\"value\":\"spam\"}", 1 },
		{ "sender is", "{\"field\":\"sender\",\"op\":\"is\",\"value\":\"Alice@Example.com\"}", 1 },
		{ "sender is partial", "{\"field\":\"sender\",\"op\":\"is\",\"value\":\"alice@example.co\"}", 0 },
		{ "sender is_not", "{\"field\":\"sender\",\"op\":\"is_not\",\"value\":\"alice@example.com\"}", 0 },
		{ "sender is empty (null sender)", "{\"field\":\"sender\",\"op\":\"is\",\"value\":\"\"}", 0 },
		{ "sender starts_with", "{\"field\":\"sender\",\"op\":\"starts_with\",\"value\":\"alice@\"}", 1 },
		{ "sender starts_with no", "{\"field\":\"sender\",\"op\":\"starts_with\",\"value\":\"example\"}", 0 },
		{ "sender ends_with", "{\"field\":\"sender\",\"op\":\"ends_with\",\"value\":\".COM\"}", 1 },
		{ "sender ends_with no", "{\"field\":\"sender\",\"op\":\"ends_with\",\"value\":\"alice\"}", 0 },
		{ "sender matches", "{\"field\":\"sender\",\"op\":\"matches\",\"value\":\"^[a-z]+@example\\\\.(com|net)$\"}", 1 },
		{ "sender not_matches", "{\"field\":\"sender\",\"op\":\"not_matches\",\"value\":\"^bob\"}", 1 },
		{ "sender in_list", "{\"field\":\"sender\",\"op\":\"in_list\",\"value\":\"vip\"}", 1 },
		{ "sender in other list", "{\"field\":\"sender\",\"op\":\"in_list\",\"value\":\"staff\"}", 0 },
		{ "recipient is", "{\"field\":\"recipient\",\"op\":\"is\",\"value\":\"bob@example.org\"}", 1 },
		{ "recipient ends_with", "{\"field\":\"recipient\",\"op\":\"ends_with\",\"value\":\"@example.net\"}", 0 },
		{ "helo is (folded)", "{\"field\":\"helo\",\"op\":\"is\",\"value\":\"mail.example.com\"}", 1 },
		{ "helo is sensitive", "{\"field\":\"helo\",\"op\":\"is\",\"value\":\"mail.example.com\",\"case\":\"sensitive\"}", 0 },
		{ "client_name ends_with", "{\"field\":\"client_name\",\"op\":\"ends_with\",\"value\":\"example.com\"}", 1 },
		{ "auth_user absent contains", "{\"field\":\"auth_user\",\"op\":\"contains\",\"value\":\"a\"}", 0 },
		{ "auth_user absent not_contains", "{\"field\":\"auth_user\",\"op\":\"not_contains\",\"value\":\"a\"}", 1 },
		/* network */
		{ "client_address is", "{\"field\":\"client_address\",\"op\":\"is\",\"value\":\"192.0.2.7\"}", 1 },
		{ "client_address is_not", "{\"field\":\"client_address\",\"op\":\"is_not\",\"value\":\"192.0.2.7\"}", 0 },
		{ "client_address in_network", "{\"field\":\"client_address\",\"op\":\"in_network\",\"value\":[\"10.0.0.0/8\",\"192.0.2.0/28\"]}", 1 },
		{ "client_address not in network", "{\"field\":\"client_address\",\"op\":\"in_network\",\"value\":\"192.0.2.8/29\"}", 0 },
		{ "client_address v6 net", "{\"field\":\"client_address\",\"op\":\"in_network\",\"value\":\"2001:db8::/32\"}", 0 },
		{ "client_address in_list", "{\"field\":\"client_address\",\"op\":\"in_list\",\"value\":\"nets\"}", 1 },
		/* headers: any value */
		{ "header From contains", "{\"field\":\"header\",\"header\":\"from\",\"op\":\"contains\",\"value\":\"alice@\"}", 1 },
		{ "header Received any value", "{\"field\":\"header\",\"header\":\"Received\",\"op\":\"contains\",\"value\":\"198.51.100.9\"}", 1 },
		{ "header Received not_contains: no value", "{\"field\":\"header\",\"header\":\"Received\",\"op\":\"not_contains\",\"value\":\"relay1\"}", 0 },
		{ "header Received not_contains", "{\"field\":\"header\",\"header\":\"Received\",\"op\":\"not_contains\",\"value\":\"relay9\"}", 1 },
		{ "header absent contains", "{\"field\":\"header\",\"header\":\"Reply-To\",\"op\":\"contains\",\"value\":\"x\"}", 0 },
		{ "header absent not_contains", "{\"field\":\"header\",\"header\":\"Reply-To\",\"op\":\"not_contains\",\"value\":\"x\"}", 1 },
		{ "header empty value is \"\"", "{\"field\":\"header\",\"header\":\"X-Mailer\",\"op\":\"is\",\"value\":\"\"}", 1 },
		{ "header List-Id is", "{\"field\":\"header\",\"header\":\"List-Id\",\"op\":\"is\",\"value\":\"<news.example.com>\"}", 1 },
		{ "header in_list", "{\"field\":\"header\",\"header\":\"Subject\",\"op\":\"in_list\",\"value\":\"subjects\"}", 1 },
		/* Unicode folding on a decoded subject */
		{ "subject ÉTÉ contains été", "{\"field\":\"header\",\"header\":\"Subject\",\"op\":\"contains\",\"value\":\"été\"}", 1 },
		{ "subject contains SPÉCIAL", "{\"field\":\"header\",\"header\":\"Subject\",\"op\":\"contains\",\"value\":\"SPÉCIAL\"}", 1 },
		{ "subject été sensitive", "{\"field\":\"header\",\"header\":\"Subject\",\"op\":\"contains\",\"value\":\"été\",\"case\":\"sensitive\"}", 0 },
		{ "subject starts_with prix", "{\"field\":\"header\",\"header\":\"Subject\",\"op\":\"starts_with\",\"value\":\"PRIX SP\"}", 1 },
		{ "subject regex caseless unicode", "{\"field\":\"header\",\"header\":\"Subject\",\"op\":\"matches\",\"value\":\"sp[ée]cial été\"}", 1 },
		/* body and raw body */
		{ "body contains", "{\"field\":\"body\",\"op\":\"contains\",\"value\":\"UNSUBSCRIBE\"}", 1 },
		{ "body not_contains", "{\"field\":\"body\",\"op\":\"not_contains\",\"value\":\"viagra\"}", 1 },
		{ "body ends_with", "{\"field\":\"body\",\"op\":\"ends_with\",\"value\":\"offer 2026\\n\"}", 1 },
		{ "body matches digits", "{\"field\":\"body\",\"op\":\"matches\",\"value\":\"offer\\\\s+\\\\d{4}\"}", 1 },
		{ "body \\b word boundary", "{\"field\":\"body\",\"op\":\"matches\",\"value\":\"\\\\bclick\\\\b\"}", 1 },
		{ "body lookahead via PCRE2", "{\"field\":\"body\",\"op\":\"matches\",\"value\":\"offer(?=\\\\.)\"}", 1 },
		{ "body backref via PCRE2 no", "{\"field\":\"body\",\"op\":\"matches\",\"value\":\"(of)\\\\1\"}", 0 },
		{ "body backref via PCRE2 yes", "{\"field\":\"body\",\"op\":\"matches\",\"value\":\"(f)\\\\1\"}", 1 },
		{ "raw_body contains", "{\"field\":\"raw_body\",\"op\":\"contains\",\"value\":\"content-type: TEXT/plain\"}", 1 },
		{ "raw_body sensitive", "{\"field\":\"raw_body\",\"op\":\"contains\",\"value\":\"content-type\",\"case\":\"sensitive\"}", 0 },
		{ "raw_body regex", "{\"field\":\"raw_body\",\"op\":\"matches\",\"value\":\"^--b1\\\\r$\",\"case\":\"sensitive\"}", 0 },
		/* attachments and URLs */
		{ "attachment_name ends_with", "{\"field\":\"attachment_name\",\"op\":\"ends_with\",\"value\":\".EXE\"}", 1 },
		{ "attachment_name full folding", "{\"field\":\"attachment_name\",\"op\":\"contains\",\"value\":\"STRASSE\"}", 1 },
		{ "attachment_type is", "{\"field\":\"attachment_type\",\"op\":\"is\",\"value\":\"image/jpeg\"}", 1 },
		{ "attachment_type not_contains", "{\"field\":\"attachment_type\",\"op\":\"not_contains\",\"value\":\"image\"}", 0 },
		{ "url_host ends_with", "{\"field\":\"url_host\",\"op\":\"ends_with\",\"value\":\".example.net\"}", 1 },
		{ "url_host in_list", "{\"field\":\"url_host\",\"op\":\"in_list\",\"value\":\"badhosts\"}", 1 },
		{ "url_host is", "{\"field\":\"url_host\",\"op\":\"is\",\"value\":\"example.com\"}", 0 },
		/* numbers */
		{ "size gt", "{\"field\":\"size\",\"op\":\"gt\",\"value\":5000}", 1 },
		{ "size gt equal", "{\"field\":\"size\",\"op\":\"gt\",\"value\":5120}", 0 },
		{ "size lt", "{\"field\":\"size\",\"op\":\"lt\",\"value\":5121}", 1 },
		{ "size is", "{\"field\":\"size\",\"op\":\"is\",\"value\":5120}", 1 },
		{ "size is_not", "{\"field\":\"size\",\"op\":\"is_not\",\"value\":5120}", 0 },
		{ "recipient_count gt", "{\"field\":\"recipient_count\",\"op\":\"gt\",\"value\":0}", 1 },
		{ "recipient_count lt", "{\"field\":\"recipient_count\",\"op\":\"lt\",\"value\":1}", 0 },
		/* dnsbl and flags */
		{ "dnsbl contains", "{\"field\":\"dnsbl\",\"op\":\"contains\",\"value\":\"spamhaus\"}", 1 },
		{ "dnsbl is", "{\"field\":\"dnsbl\",\"op\":\"is\",\"value\":\"bl.spamcop.net\"}", 0 },
		{ "dnsbl in_list", "{\"field\":\"dnsbl\",\"op\":\"in_list\",\"value\":\"bl\"}", 1 },
		{ "flag is", "{\"field\":\"flag\",\"op\":\"is\",\"value\":\"tls\"}", 1 },
		{ "flag is unset", "{\"field\":\"flag\",\"op\":\"is\",\"value\":\"encrypted\"}", 0 },
		{ "flag is_not", "{\"field\":\"flag\",\"op\":\"is_not\",\"value\":\"mime_limit\"}", 1 },
		/* groups */
		{ "all", "{\"all\":[{\"field\":\"size\",\"op\":\"gt\",\"value\":1},{\"field\":\"flag\",\"op\":\"is\",\"value\":\"tls\"}]}", 1 },
		{ "all one false", "{\"all\":[{\"field\":\"size\",\"op\":\"gt\",\"value\":1},{\"field\":\"flag\",\"op\":\"is\",\"value\":\"auth\"}]}", 0 },
		{ "any", "{\"any\":[{\"field\":\"size\",\"op\":\"lt\",\"value\":1},{\"field\":\"flag\",\"op\":\"is\",\"value\":\"tls\"}]}", 1 },
		{ "any none", "{\"any\":[{\"field\":\"size\",\"op\":\"lt\",\"value\":1},{\"field\":\"flag\",\"op\":\"is\",\"value\":\"auth\"}]}", 0 },
		{ "not", "{\"not\":{\"field\":\"flag\",\"op\":\"is\",\"value\":\"tls\"}}", 0 },
		{ "nested", "{\"any\":[{\"all\":[{\"field\":\"body\",\"op\":\"contains\",\"value\":\"unsubscribe\"},{\"field\":\"body\",\"op\":\"contains\",\"value\":\"offer\"}]},{\"not\":{\"field\":\"size\",\"op\":\"gt\",\"value\":0}}]}", 1 },
	};
	char err[512];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int got;

		err[0] = '\0';
		got = leaf_matches(cases[i].cond, err, sizeof(err));
		if (got != cases[i].want)
			fail_msg("%s: got %d, want %d (err: %s)", cases[i].name, got, cases[i].want,
				 err);
	}
}

/* The guide's example: subject contains music OR cd ... EXCEPT subject
 * does not contain free -> quarantine. */
static void test_except(void **state)
{
	static const char *const rules =
		"[{\"name\":\"guide\",\"enabled\":true,"
		"\"when\":{\"any\":[{\"field\":\"header\",\"header\":\"Subject\",\"op\":\"contains\",\"value\":\"music\"},"
		"{\"field\":\"header\",\"header\":\"Subject\",\"op\":\"contains\",\"value\":\"cd\"}]},"
		"\"except\":{\"field\":\"header\",\"header\":\"Subject\",\"op\":\"not_contains\",\"value\":\"free\"},"
		"\"action\":{\"type\":\"quarantine\"}}]";
	static const struct {
		const char *subject;
		enum rules_action_type want;
	} cases[] = {
		{ "Free CD music", RULES_ACT_QUARANTINE },
		{ "CD music", RULES_ACT_NONE },              /* except: does not contain free */
		{ "free lunch", RULES_ACT_NONE },            /* when false */
		{ "FREE MUSIC", RULES_ACT_QUARANTINE },
	};
	struct mime_header h[1];
	char err[256];
	struct rules_set *rs = compile_json(rules, err, sizeof(err));
	size_t i;

	(void)state;
	assert_non_null(rs);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct rules_input in;
		struct rules_result res;

		std_input(&in);
		h[0].name = "Subject";
		h[0].value = cases[i].subject;
		view.headers = h;
		view.nheaders = 1;
		assert_int_equal(rules_eval(rs, &in, &res), 0);
		if (res.message->action != cases[i].want)
			fail_msg("%s: got %s, want %s", cases[i].subject,
				 rules_action_name(res.message->action),
				 rules_action_name(cases[i].want));
		rules_result_free(&res);
	}
	rules_set_free(rs);
}

#define R(name, cond, action) \
	"{\"name\":\"" name "\",\"enabled\":true,\"when\":" cond ",\"action\":" action "}"
#define TRUE_C "{\"field\":\"size\",\"op\":\"gt\",\"value\":0}"
#define FALSE_C "{\"field\":\"size\",\"op\":\"lt\",\"value\":0}"

static void test_first_match(void **state)
{
	static const struct {
		const char *name, *rules;
		enum rules_action_type want;
		long rule;
		size_t nprefix, nheaders, nbcc, nhits;
	} cases[] = {
		{ "no rules", "[]", RULES_ACT_NONE, -1, 0, 0, 0, 0 },
		{ "first final wins",
		  "[" R("a", TRUE_C, "{\"type\":\"hold\"}") "," R("b", TRUE_C, "{\"type\":\"discard\"}") "]",
		  RULES_ACT_HOLD, 0, 0, 0, 0, 1 },
		{ "non-final accumulate then final",
		  "[" R("t1", TRUE_C, "{\"type\":\"tag\",\"subject_prefix\":\"[SPAM]\"}") ","
		  R("t2", TRUE_C, "{\"type\":\"tag\",\"header\":\"X-Rule: t2\"}") ","
		  R("b", TRUE_C, "{\"type\":\"bcc\",\"address\":\"audit@example.org\"}") ","
		  R("c", TRUE_C, "{\"type\":\"continue\"}") ","
		  R("q", TRUE_C, "{\"type\":\"quarantine\"}") ","
		  R("late", TRUE_C, "{\"type\":\"tag\",\"subject_prefix\":\"[LATE]\"}") "]",
		  RULES_ACT_QUARANTINE, 4, 1, 1, 1, 5 },
		{ "stop keeps tags",
		  "[" R("t", TRUE_C, "{\"type\":\"tag\",\"subject_prefix\":\"[X]\"}") ","
		  R("s", TRUE_C, "{\"type\":\"stop\"}") ","
		  R("r", TRUE_C, "{\"type\":\"refuse\"}") "]",
		  RULES_ACT_STOP, 1, 1, 0, 0, 2 },
		{ "false rules skipped",
		  "[" R("f", FALSE_C, "{\"type\":\"discard\"}") ","
		  R("r", TRUE_C, "{\"type\":\"refuse\",\"code\":554,\"enhanced\":\"5.7.0\",\"text\":\"No\"}") "]",
		  RULES_ACT_REFUSE, 1, 0, 0, 0, 1 },
		{ "disabled skipped",
		  "[{\"name\":\"d\",\"enabled\":false,\"when\":" TRUE_C ",\"action\":{\"type\":\"discard\"}},"
		  R("a", TRUE_C, "{\"type\":\"accept\"}") "]",
		  RULES_ACT_ACCEPT, 1, 0, 0, 0, 1 },
		{ "only non-final", "[" R("c", TRUE_C, "{\"type\":\"continue\"}") "]", RULES_ACT_NONE, -1,
		  0, 0, 0, 1 },
	};
	char err[256];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct rules_set *rs = compile_json(cases[i].rules, err, sizeof(err));
		struct rules_input in;
		struct rules_result res;
		const struct rules_verdict *v;

		if (rs == NULL)
			fail_msg("%s: compile: %s", cases[i].name, err);
		std_input(&in);
		assert_int_equal(rules_eval(rs, &in, &res), 0);
		v = res.message;
		if (v->action != cases[i].want || v->rule != cases[i].rule)
			fail_msg("%s: got %s rule %ld, want %s rule %ld", cases[i].name,
				 rules_action_name(v->action), v->rule,
				 rules_action_name(cases[i].want), cases[i].rule);
		if (v->nsubject_prefixes != cases[i].nprefix || v->nheaders != cases[i].nheaders ||
		    v->nbcc != cases[i].nbcc || res.nhits != cases[i].nhits)
			fail_msg("%s: got prefixes %zu headers %zu bcc %zu hits %zu, want %zu %zu %zu %zu",
				 cases[i].name, v->nsubject_prefixes, v->nheaders, v->nbcc, res.nhits,
				 cases[i].nprefix, cases[i].nheaders, cases[i].nbcc, cases[i].nhits);
		if (v->action == RULES_ACT_REFUSE) {
			assert_int_equal(v->code, 554);
			assert_string_equal(v->enhanced, "5.7.0");
			assert_string_equal(v->text, "No");
			assert_string_equal(v->rule_name, "r");
		}
		if (cases[i].nprefix > 0)
			assert_string_equal(v->subject_prefixes[0], i == 2 ? "[SPAM]" : "[X]");
		if (cases[i].nbcc > 0)
			assert_string_equal(v->bcc[0], "audit@example.org");
		rules_result_free(&res);
		rules_set_free(rs);
	}
}

static void test_per_recipient(void **state)
{
	static const char *const rules =
		"[" R("staff", "{\"field\":\"recipient\",\"op\":\"in_list\",\"value\":\"staff\"}",
		      "{\"type\":\"accept\"}") ","
		R("redir", "{\"field\":\"recipient\",\"op\":\"starts_with\",\"value\":\"old-\"}",
		  "{\"type\":\"redirect\",\"address\":\"new@example.org\"}") ","
		R("spam", "{\"field\":\"body\",\"op\":\"contains\",\"value\":\"unsubscribe\"}",
		  "{\"type\":\"quarantine\"}") "]";
	static const char *rcpts[] = { "carol@example.org", "old-dave@example.org",
				       "erin@example.org", "frank@example.org" };
	static const enum rules_action_type want[] = { RULES_ACT_ACCEPT, RULES_ACT_REDIRECT,
						       RULES_ACT_QUARANTINE, RULES_ACT_QUARANTINE };
	char err[256];
	struct rules_set *rs = compile_json(rules, err, sizeof(err));
	struct rules_input in;
	struct rules_result res;
	int calls = 0;
	size_t i;

	(void)state;
	assert_non_null(rs);
	std_input(&in);
	in.rcpts = rcpts;
	in.nrcpts = 4;
	in.in_list_arg = &calls;
	assert_int_equal(rules_eval(rs, &in, &res), 0);
	assert_int_equal(res.nrcpts, 4);
	for (i = 0; i < 4; i++)
		if (res.rcpt[i]->action != want[i])
			fail_msg("%s: got %s, want %s", rcpts[i], rules_action_name(res.rcpt[i]->action),
				 rules_action_name(want[i]));
	assert_string_equal(res.rcpt[1]->address, "new@example.org");
	/* erin and frank share one outcome: the rules were walked 3 times, not 4 */
	assert_ptr_equal(res.rcpt[2], res.rcpt[3]);
	assert_int_equal(res.nverdicts_, 3);
	assert_int_equal(calls, 4); /* the list was asked once per recipient */
	assert_int_equal(res.nhits, 3);
	rules_result_free(&res);
	rules_set_free(rs);
}

static void test_lazy_list(void **state)
{
	/* the list is asked only when a rule reaches the atom, and once */
	static const char *const rules =
		"[" R("a", "{\"field\":\"flag\",\"op\":\"is\",\"value\":\"tls\"}", "{\"type\":\"accept\"}") ","
		R("b", "{\"field\":\"sender\",\"op\":\"in_list\",\"value\":\"vip\"}", "{\"type\":\"hold\"}") "]";
	static const char *const rules2 =
		"[" R("a", "{\"field\":\"sender\",\"op\":\"in_list\",\"value\":\"staff\"}", "{\"type\":\"continue\"}") ","
		R("b", "{\"not\":{\"field\":\"sender\",\"op\":\"in_list\",\"value\":\"staff\"}}", "{\"type\":\"hold\"}") "]";
	char err[256];
	struct rules_set *rs = compile_json(rules, err, sizeof(err));
	struct rules_input in;
	struct rules_result res;
	int calls = 0;

	(void)state;
	std_input(&in);
	in.in_list_arg = &calls;
	assert_int_equal(rules_eval(rs, &in, &res), 0);
	assert_int_equal(res.message->action, RULES_ACT_ACCEPT);
	assert_int_equal(calls, 0);
	rules_result_free(&res);
	rules_set_free(rs);

	rs = compile_json(rules2, err, sizeof(err));
	assert_int_equal(rules_eval(rs, &in, &res), 0);
	assert_int_equal(res.message->action, RULES_ACT_HOLD);
	assert_int_equal(calls, 1);
	rules_result_free(&res);
	rules_set_free(rs);
}

static void test_engines(void **state)
{
	/* which engine runs a regex: Vectorscan when it can, PCRE2 otherwise */
	static const struct {
		const char *re;
		size_t npcre;
	} cases[] = {
		{ "free\\\\s+money", 0 }, { "(a+)+$", 0 }, { "\\\\bfree\\\\b", 0 },
		{ "(x)\\\\1", 1 }, { "foo(?!bar)", 1 }, { "(?<=\\\\$)\\\\d+", 1 },
	};
	char json[1024], err[256];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct rules_set *rs;
		size_t n = 0, k;

		snprintf(json, sizeof(json),
			 "[" R("r", "{\"field\":\"body\",\"op\":\"matches\",\"value\":\"%s\"}",
			       "{\"type\":\"hold\"}") "]", cases[i].re);
		rs = compile_json(json, err, sizeof(err));
		if (rs == NULL)
			fail_msg("%s: %s", cases[i].re, err);
		for (k = 0; k < rs->nclasses; k++)
			n += rs->classes[k].npcre;
		if (n != cases[i].npcre)
			fail_msg("%s: got %zu PCRE2 regexes, want %zu", cases[i].re, n, cases[i].npcre);
		rules_set_free(rs);
	}
}

/*
 * Regexes that only PCRE2 can run have a Vectorscan prefilter, and PCRE2
 * runs only on a value the prefilter matched: the same hits as PCRE2 on
 * every value, on matching and non-matching texts, every class and form.
 */
static void test_prefilter(void **state)
{
	static const struct {
		const char *field;      /* JSON of the field (and header) */
		const char *re;         /* JSON string contents */
		bool sensitive;
	} pats[] = {
		{ "\"field\":\"body\"", "\\\\bclick(?=\\\\s+here)", false },
		{ "\"field\":\"body\"", "(?<!best )offer\\\\b", false },
		{ "\"field\":\"body\"", "offer(?! 2026)", false },
		{ "\"field\":\"body\"", "(\\\\w)\\\\1\\\\1", false },
		{ "\"field\":\"body\"", "(?<=\\\\$)\\\\d+", false },
		{ "\"field\":\"body\"", "\\\\bSTRASSE(?=\\\\W)", false },
		{ "\"field\":\"body\"", "(?i)été(?= prix)", true },
		{ "\"field\":\"header\",\"header\":\"Subject\"", "spécial(?= ÉTÉ)", false },
		{ "\"field\":\"header\",\"header\":\"Subject\"", "(?<!Prix )spécial", false },
		{ "\"field\":\"header\",\"header\":\"Received\"", "(\\\\w+)\\\\.example\\\\.net by \\\\1", false },
		{ "\"field\":\"raw_body\"", "^--(b\\\\d)(?=\\\\r$)", true },
		{ "\"field\":\"recipient\"", "^(?!bob)\\\\w+@example\\\\.org$", false },
		{ "\"field\":\"sender\"", "(?<=@)example\\\\.(?!net)", false },
	};
	static const char *const bodies[] = {
		"Hello,\nclick here to unsubscribe from this offer.\nBest offer 2026\n",
		"CLICK   HERE now: offer ends, $25 only, aaah zzz\n",
		"best offer\nclick\nhere\nStrasse STRASSE!\nÉTÉ PRIX été prix\n",
		"bad utf-8 \xff\xfe click \xc3 here offer\xe2\x80 $7\n",
		"",
	};
	static const char *const rcpts[] = { "bob@example.org", "carol@example.org",
					     "BOB@EXAMPLE.ORG" };
	static const char *const senders[] = { "alice@example.com", "x@example.net", "" };
	GString *g = g_string_new("[");
	struct rules_set *with, *without;
	unsigned built_with, built_without, reused;
	char err[256];
	size_t i, b, s;

	(void)state;
	for (i = 0; i < sizeof(pats) / sizeof(pats[0]); i++)
		g_string_append_printf(g, "%s{\"name\":\"p%zu\",\"when\":{%s,\"op\":\"matches\","
				       "\"value\":\"%s\"%s},\"action\":{\"type\":\"score\",\"points\":1}}",
				       i ? "," : "", i, pats[i].field, pats[i].re,
				       pats[i].sensitive ? ",\"case\":\"sensitive\"" : "");
	g_string_append_c(g, ']');
	without = NULL;
	rules_regex_prefilter = false;
	without = compile_json(g->str, err, sizeof(err));
	rules_regex_prefilter = true;
	if (without == NULL)
		fail_msg("compile without prefilter: %s", err);
	with = compile_json(g->str, err, sizeof(err));
	if (with == NULL)
		fail_msg("compile: %s", err);
	g_string_free(g, TRUE);
	rules_set_compile_stats(with, &built_with, &reused);
	rules_set_compile_stats(without, &built_without, &reused);
	/* every regex here is PCRE2's; with the prefilter they also have databases */
	assert_int_equal(without->ncand, 0);
	assert_int_equal(with->ncand, sizeof(pats) / sizeof(pats[0]));
	assert_true(built_with > built_without);
	for (b = 0; b < sizeof(bodies) / sizeof(bodies[0]); b++)
		for (s = 0; s < sizeof(senders) / sizeof(senders[0]); s++) {
			struct rules_input in;
			struct rules_result ra, rb;

			std_input(&in);
			view.text = bodies[b];
			view.text_len = strlen(bodies[b]);
			in.sender = senders[s];
			in.rcpts = rcpts;
			in.nrcpts = 3;
			if (b == 4)
				in.mime = NULL;
			assert_int_equal(rules_eval(with, &in, &ra), 0);
			assert_int_equal(rules_eval(without, &in, &rb), 0);
			if (ra.nhits != rb.nhits)
				fail_msg("body %zu sender %zu: %zu hits with the prefilter, %zu without",
					 b, s, ra.nhits, rb.nhits);
			for (i = 0; i < ra.nhits; i++)
				if (ra.hits[i] != rb.hits[i])
					fail_msg("body %zu sender %zu: hit %zu is rule %zu, want %zu", b,
						 s, i, ra.hits[i], rb.hits[i]);
			for (i = 0; i < 3; i++)
				if (ra.rcpt[i]->points != rb.rcpt[i]->points)
					fail_msg("body %zu sender %zu: recipient %zu gets %g points, want %g",
						 b, s, i, ra.rcpt[i]->points, rb.rcpt[i]->points);
			/* the first body matches rule 0: the prefilter does not hide a hit */
			if (b == 0 && s == 0 && (ra.nhits == 0 || ra.hits[0] != 0))
				fail_msg("first body: want rule p0 to hit");
			rules_result_free(&ra);
			rules_result_free(&rb);
		}
	rules_set_free(with);
	rules_set_free(without);
}

/*
 * A walk looks only at the rules some atom that holds can make true (and
 * at those with NOT or lazy lists): random trees over atoms
 * that hold and atoms that do not give the same verdicts, hits and points
 * as a walk of every rule.
 */
static void test_triggers(void **state)
{
	static const char *const atoms[] = {
		"{\"field\":\"size\",\"op\":\"gt\",\"value\":0}",
		"{\"field\":\"size\",\"op\":\"lt\",\"value\":0}",
		"{\"field\":\"header\",\"header\":\"Subject\",\"op\":\"contains\",\"value\":\"spécial\"}",
		"{\"field\":\"body\",\"op\":\"contains\",\"value\":\"nothing here\"}",
		"{\"field\":\"body\",\"op\":\"matches\",\"value\":\"click(?= here)\"}",
		"{\"field\":\"body\",\"op\":\"not_contains\",\"value\":\"offer\"}",
		"{\"field\":\"recipient\",\"op\":\"is\",\"value\":\"carol@example.org\"}",
		"{\"field\":\"recipient\",\"op\":\"in_list\",\"value\":\"staff\"}",
		"{\"field\":\"sender\",\"op\":\"in_list\",\"value\":\"vip\"}",
		"{\"field\":\"sender\",\"op\":\"in_list\",\"value\":\"nobody\"}",
		"{\"field\":\"flag\",\"op\":\"is\",\"value\":\"auth\"}",
		"{\"field\":\"flag\",\"op\":\"is\",\"value\":\"tls\"}",
	};
	static const char *const actions[] = {
		"{\"type\":\"score\",\"points\":1}", "{\"type\":\"score\",\"points\":0.5}",
		"{\"type\":\"tag\",\"subject_prefix\":\"[x]\"}", "{\"type\":\"hold\"}",
		"{\"type\":\"continue\"}",
	};
	static const char *const rcpts[] = { "bob@example.org", "carol@example.org", "x@y" };
	uint64_t seed = 88172645463325252ULL;
	size_t set, i;

	(void)state;
	for (set = 0; set < 200; set++) {
		GString *g = g_string_new("[");
		struct rules_set *rs;
		struct rules_input in;
		struct rules_result ra, rb;
		char err[256];
		size_t nrules = 1 + set % 12;

		for (i = 0; i < nrules; i++) {
			size_t depth;

			g_string_append_printf(g, "%s{\"name\":\"r%zu\",\"when\":", i ? "," : "", i);
			/* a random tree: NOT, ALL, ANY down to three levels, then an atom */
			for (depth = 0;; depth++) {
				size_t pick;

				seed ^= seed << 13;
				seed ^= seed >> 7;
				seed ^= seed << 17;
				pick = (size_t)(seed % 16);
				if (depth >= 3 || pick >= 6) {
					g_string_append(g, atoms[seed % (sizeof(atoms) / sizeof(atoms[0]))]);
					break;
				}
				if (pick == 0) {
					g_string_append(g, "{\"not\":");
					g_string_append(g, atoms[(seed >> 8) % (sizeof(atoms) / sizeof(atoms[0]))]);
					g_string_append(g, "}");
					break;
				}
				g_string_append_printf(g, "{\"%s\":[%s,%s]}", pick < 3 ? "all" : "any",
						       atoms[(seed >> 8) % (sizeof(atoms) / sizeof(atoms[0]))],
						       atoms[(seed >> 16) % (sizeof(atoms) / sizeof(atoms[0]))]);
				break;
			}
			if (seed % 5 == 0)
				g_string_append_printf(g, ",\"except\":%s",
						       atoms[(seed >> 24) % (sizeof(atoms) / sizeof(atoms[0]))]);
			g_string_append_printf(g, ",\"action\":%s}",
					       actions[(seed >> 32) % (sizeof(actions) / sizeof(actions[0]))]);
		}
		g_string_append_c(g, ']');
		rs = compile_json(g->str, err, sizeof(err));
		if (rs == NULL)
			fail_msg("set %zu: %s\n%s", set, err, g->str);
		std_input(&in);
		in.in_list_arg = NULL;
		in.rcpts = rcpts;
		in.nrcpts = set % 4 == 3 ? 0 : 3;
		assert_int_equal(rules_eval(rs, &in, &ra), 0);
		rules_walk_all = true;
		assert_int_equal(rules_eval(rs, &in, &rb), 0);
		rules_walk_all = false;
		if (ra.nhits != rb.nhits)
			fail_msg("set %zu: %zu hits, every rule walked %zu\n%s", set, ra.nhits, rb.nhits,
				 g->str);
		for (i = 0; i < ra.nhits; i++)
			assert_int_equal(ra.hits[i], rb.hits[i]);
		for (i = 0; i < in.nrcpts; i++) {
			assert_int_equal(ra.rcpt[i]->rule, rb.rcpt[i]->rule);
			assert_int_equal(ra.rcpt[i]->action, rb.rcpt[i]->action);
			assert_true(ra.rcpt[i]->points == rb.rcpt[i]->points);
			assert_int_equal(ra.rcpt[i]->nsubject_prefixes, rb.rcpt[i]->nsubject_prefixes);
		}
		assert_int_equal(ra.message->rule, rb.message->rule);
		rules_result_free(&ra);
		rules_result_free(&rb);
		rules_set_free(rs);
		g_string_free(g, TRUE);
	}
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void test_catastrophic(void **state)
{
	/* (a+)+$ runs in Vectorscan (linear); the look-ahead variant needs
	 * PCRE2, whose match limit stops it: both answer quickly.  Its
	 * prefilter ("b" without the look-ahead) matches, so PCRE2 runs. */
	static const char *const regexes[] = { "(a+)+$", "b(?=(a+)+$)" };
	static char text[40001];
	char json[1024], err[256];
	size_t i;

	(void)state;
	memset(text, 'a', 40000);
	text[39999] = 'b';
	text[40000] = '\0';
	for (i = 0; i < 2; i++) {
		struct rules_set *rs;
		struct rules_input in;
		struct rules_result res;
		double t0;

		snprintf(json, sizeof(json),
			 "[" R("r", "{\"field\":\"body\",\"op\":\"matches\",\"value\":\"%s\"}",
			       "{\"type\":\"hold\"}") "]", regexes[i]);
		rs = compile_json(json, err, sizeof(err));
		assert_non_null(rs);
		std_input(&in);
		view.text = text;
		view.text_len = 40000;
		/* PCRE2 case: "baa...ax", the b is there (no early exit) but $ fails */
		text[0] = i == 0 ? 'a' : 'b';
		text[39999] = i == 0 ? 'b' : 'x';
		t0 = now_ms();
		assert_int_equal(rules_eval(rs, &in, &res), 0);
		if (now_ms() - t0 > 1000)
			fail_msg("%s: took %.0f ms", regexes[i], now_ms() - t0);
		assert_int_equal(res.message->action, RULES_ACT_NONE);
		if (i == 1 && res.regex_limit_hits == 0)
			fail_msg("%s: want a PCRE2 limit hit", regexes[i]);
		rules_result_free(&res);
		rules_set_free(rs);
	}
}

static void test_errors(void **state)
{
	static const struct {
		const char *name, *json, *want;
	} cases[] = {
		{ "not json", "[", "rules: invalid JSON" },
		{ "not array", "{}", "rules: must be an array" },
		{ "rule not object", "[1]", "rules[0]: must be a rule object" },
		{ "no name", "[{\"when\":" TRUE_C ",\"action\":{\"type\":\"hold\"}}]", "rules[0].name: must be" },
		{ "unknown key", "[{\"name\":\"a\",\"expect\":null,\"when\":" TRUE_C ",\"action\":{\"type\":\"hold\"}}]", "rules[0].expect: unknown key" },
		{ "bad regex",
		  "[" R("a", TRUE_C, "{\"type\":\"hold\"}") "," R("a", TRUE_C, "{\"type\":\"hold\"}") ","
		  R("a", TRUE_C, "{\"type\":\"hold\"}") ","
		  R("b", "{\"all\":[" TRUE_C ",{\"field\":\"body\",\"op\":\"matches\",\"value\":\"ab(c\"}]}", "{\"type\":\"hold\"}") "]",
		  "rules[3].when.all[1].value: invalid regular expression: missing closing parenthesis at offset 4" },
		{ "unknown field", "[" R("a", "{\"field\":\"subjekt\",\"op\":\"is\",\"value\":\"x\"}", "{\"type\":\"hold\"}") "]", "rules[0].when.field: unknown field" },
		{ "unknown op", "[" R("a", "{\"field\":\"sender\",\"op\":\"like\",\"value\":\"x\"}", "{\"type\":\"hold\"}") "]", "rules[0].when.op: unknown operator" },
		{ "op for field", "[" R("a", "{\"field\":\"size\",\"op\":\"contains\",\"value\":1}", "{\"type\":\"hold\"}") "]", "rules[0].when.op: operator contains does not apply to field size" },
		{ "size string", "[" R("a", "{\"field\":\"size\",\"op\":\"gt\",\"value\":\"1\"}", "{\"type\":\"hold\"}") "]", "rules[0].when.value: must be a non-negative integer" },
		{ "header missing", "[" R("a", "{\"field\":\"header\",\"op\":\"is\",\"value\":\"x\"}", "{\"type\":\"hold\"}") "]", "rules[0].when.header: required" },
		{ "header bad", "[" R("a", "{\"field\":\"header\",\"header\":\"Sub ject:\",\"op\":\"is\",\"value\":\"x\"}", "{\"type\":\"hold\"}") "]", "rules[0].when.header: invalid header name" },
		{ "header on other", "[" R("a", "{\"field\":\"sender\",\"header\":\"X\",\"op\":\"is\",\"value\":\"x\"}", "{\"type\":\"hold\"}") "]", "rules[0].when.header: only for field header" },
		{ "bad cidr", "[" R("a", "{\"field\":\"client_address\",\"op\":\"in_network\",\"value\":[\"10.0.0.0/8\",\"10.0.0.1/8\"]}", "{\"type\":\"hold\"}") "]", "rules[0].when.value[1]: invalid network" },
		{ "bad ip", "[" R("a", "{\"field\":\"client_address\",\"op\":\"is\",\"value\":\"300.1.1.1\"}", "{\"type\":\"hold\"}") "]", "rules[0].when.value: invalid IP address" },
		{ "empty contains", "[" R("a", "{\"field\":\"body\",\"op\":\"contains\",\"value\":\"\"}", "{\"type\":\"hold\"}") "]", "rules[0].when.value: must not be empty" },
		{ "bad case", "[" R("a", "{\"field\":\"body\",\"op\":\"contains\",\"value\":\"x\",\"case\":\"upper\"}", "{\"type\":\"hold\"}") "]", "rules[0].when.case: must be" },
		{ "empty all", "[" R("a", "{\"all\":[]}", "{\"type\":\"hold\"}") "]", "rules[0].when.all: must be a non-empty array" },
		{ "nested error path", "[" R("a", "{\"any\":[" TRUE_C ",{\"not\":{\"all\":[" TRUE_C ",{\"field\":\"flag\",\"op\":\"is\",\"value\":\"a b\"}]}}]}", "{\"type\":\"hold\"}") "]", "rules[0].when.any[1].not.all[1].value: invalid flag name" },
		{ "list name", "[" R("a", "{\"field\":\"sender\",\"op\":\"in_list\",\"value\":\"no such list!\"}", "{\"type\":\"hold\"}") "]", "rules[0].when.value: invalid list name" },
		{ "in_list body", "[" R("a", "{\"field\":\"body\",\"op\":\"in_list\",\"value\":\"x\"}", "{\"type\":\"hold\"}") "]", "operator in_list does not apply to field body" },
		{ "no action", "[{\"name\":\"a\",\"when\":" TRUE_C "}]", "rules[0].action: required" },
		{ "bad action", "[" R("a", TRUE_C, "{\"type\":\"delete\"}") "]", "rules[0].action.type: unknown action" },
		{ "refuse code", "[" R("a", TRUE_C, "{\"type\":\"refuse\",\"code\":250}") "]", "rules[0].action.code: must be 4xx or 5xx" },
		{ "refuse enhanced class", "[" R("a", TRUE_C, "{\"type\":\"refuse\",\"code\":550,\"enhanced\":\"4.7.1\"}") "]", "rules[0].action.enhanced: class 4 does not match reply code 550" },
		{ "refuse enhanced syntax", "[" R("a", TRUE_C, "{\"type\":\"refuse\",\"enhanced\":\"5.7\"}") "]", "rules[0].action.enhanced: must be" },
		{ "refuse text crlf", "[" R("a", TRUE_C, "{\"type\":\"refuse\",\"text\":\"a\\r\\nb\"}") "]", "rules[0].action.text: must be" },
		{ "defer 5xx", "[" R("a", TRUE_C, "{\"type\":\"defer\",\"code\":550}") "]", "rules[0].action.code: must be 4xx" },
		{ "tag empty", "[" R("a", TRUE_C, "{\"type\":\"tag\"}") "]", "rules[0].action: tag needs" },
		{ "tag header", "[" R("a", TRUE_C, "{\"type\":\"tag\",\"header\":\"X Bad\"}") "]", "rules[0].action.header: must be" },
		{ "redirect address", "[" R("a", TRUE_C, "{\"type\":\"redirect\",\"address\":\"nobody\"}") "]", "rules[0].action.address: must be a mail address" },
		{ "bcc address", "[" R("a", TRUE_C, "{\"type\":\"bcc\",\"address\":\"a@b..c\"}") "]", "rules[0].action.address: must be a mail address" },
		{ "param of other action", "[" R("a", TRUE_C, "{\"type\":\"hold\",\"text\":\"x\"}") "]", "rules[0].action.text: not a parameter of action hold" },
		{ "name too long", "[{\"name\":\"" "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
		  "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
		  "x\",\"when\":" TRUE_C ",\"action\":{\"type\":\"hold\"}}]", "rules[0].name: must be 1 to 200" },
		{ "duplicate key", "[{\"name\":\"a\",\"name\":\"b\",\"when\":" TRUE_C ",\"action\":{\"type\":\"hold\"}}]", "rules: invalid JSON" },
		{ "NUL in value", "[" R("a", "{\"field\":\"body\",\"op\":\"contains\",\"value\":\"a\\u0000b\"}", "{\"type\":\"hold\"}") "]", "is not allowed without JSON_ALLOW_NUL" },
	};
	char err[512];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct rules_def *d = NULL;
		int rc;

		err[0] = '\0';
		rc = rules_def_parse(cases[i].json, strlen(cases[i].json), &d, err, sizeof(err));
		if (rc == 0) {
			rules_def_free(d);
			fail_msg("%s: parsed, want error %s", cases[i].name, cases[i].want);
		}
		if (strstr(err, cases[i].want) == NULL)
			fail_msg("%s: got \"%s\", want \"%s\"", cases[i].name, err, cases[i].want);
		assert_null(d);
	}
}

static void test_limits(void **state)
{
	char *json = malloc(200000), err[512];
	struct rules_def *d = NULL;
	size_t n, i;

	(void)state;
	/* nesting: 16 levels accepted, 17 refused */
	for (int depth = 16; depth <= 17; depth++) {
		n = (size_t)snprintf(json, 200000, "[{\"name\":\"deep\",\"when\":");
		for (i = 1; i < (size_t)depth; i++)
			n += (size_t)snprintf(json + n, 200000 - n, "{\"not\":");
		n += (size_t)snprintf(json + n, 200000 - n, TRUE_C);
		for (i = 1; i < (size_t)depth; i++)
			n += (size_t)snprintf(json + n, 200000 - n, "}");
		snprintf(json + n, 200000 - n, ",\"action\":{\"type\":\"hold\"}}]");
		err[0] = '\0';
		if ((rules_def_parse(json, strlen(json), &d, err, sizeof(err)) == 0) != (depth == 16))
			fail_msg("depth %d: got \"%s\"", depth, err);
		if (depth == 17)
			assert_non_null(strstr(err, "nested deeper than 16"));
		rules_def_free(d);
		d = NULL;
	}
	/* 257 leaves refused */
	n = (size_t)snprintf(json, 200000, "[{\"name\":\"wide\",\"when\":{\"any\":[");
	for (i = 0; i < 257; i++)
		n += (size_t)snprintf(json + n, 200000 - n, "%s" TRUE_C, i ? "," : "");
	snprintf(json + n, 200000 - n, "]},\"action\":{\"type\":\"hold\"}}]");
	assert_int_equal(rules_def_parse(json, strlen(json), &d, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "rules[0].when.any[256]: more than 256 conditions"));
	/* value of 4097 octets refused */
	n = (size_t)snprintf(json, 200000, "[" "{\"name\":\"v\",\"when\":{\"field\":\"body\",\"op\":\"contains\",\"value\":\"");
	memset(json + n, 'x', 4097);
	n += 4097;
	snprintf(json + n, 200000 - n, "\"},\"action\":{\"type\":\"hold\"}}]");
	assert_int_equal(rules_def_parse(json, strlen(json), &d, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "rules[0].when.value: longer than 4096"));
	free(json);
}

static void test_vectorscan_limit(void **state)
{
	/* a pattern Vectorscan cannot build is a validation error naming the rule */
	static const char *const rules =
		"[" R("ok", "{\"field\":\"body\",\"op\":\"matches\",\"value\":\"a.b\"}", "{\"type\":\"hold\"}") ","
		R("huge", "{\"all\":[" TRUE_C ",{\"field\":\"body\",\"op\":\"matches\",\"value\":\"a.{5000}b\"}]}", "{\"type\":\"hold\"}") "]";
	char err[512];
	struct rules_set *rs = compile_json(rules, err, sizeof(err));

	(void)state;
	assert_null(rs);
	if (strstr(err, "rules[1].when.all[1].value: pattern set of field body refused by "
			"Vectorscan: Pattern is too large") == NULL)
		fail_msg("got \"%s\"", err);
}

static void test_round_trip(void **state)
{
	static const char *const rules =
		"[{\"name\":\"guide\",\"enabled\":true,\"comment\":\"from the guide\","
		"\"when\":{\"any\":[{\"field\":\"header\",\"header\":\"Subject\",\"op\":\"contains\",\"value\":\"music\"},"
		"{\"field\":\"client_address\",\"op\":\"in_network\",\"value\":[\"10.0.0.0/8\"]},"
		"{\"field\":\"size\",\"op\":\"gt\",\"value\":100},"
		"{\"not\":{\"field\":\"sender\",\"op\":\"matches\",\"value\":\"^a\",\"case\":\"sensitive\"}}]},"
		"\"except\":{\"field\":\"header\",\"header\":\"Subject\",\"op\":\"not_contains\",\"value\":\"free\"},"
		"\"action\":{\"type\":\"refuse\",\"code\":554,\"enhanced\":\"5.7.1\",\"text\":\"Go away\"}},"
		"{\"name\":\"off\",\"enabled\":false,\"when\":" TRUE_C ",\"except\":null,"
		"\"action\":{\"type\":\"tag\",\"subject_prefix\":\"[S]\",\"header\":\"X-S: 1\"}},"
		"{\"name\":\"d\",\"when\":" TRUE_C ",\"action\":{\"type\":\"defer\"}},"
		"{\"name\":\"b\",\"when\":" TRUE_C ",\"action\":{\"type\":\"bcc\",\"address\":\"a@example.org\"}}]";
	struct rules_def *d1 = NULL, *d2 = NULL;
	json_t *j1, *j2;
	char err[256], *s1;

	(void)state;
	assert_int_equal(rules_def_parse(rules, strlen(rules), &d1, err, sizeof(err)), 0);
	j1 = rules_def_to_json(d1);
	s1 = json_dumps(j1, JSON_COMPACT);
	assert_int_equal(rules_def_parse(s1, strlen(s1), &d2, err, sizeof(err)), 0);
	j2 = rules_def_to_json(d2);
	assert_true(json_equal(j1, j2));
	assert_int_equal(rules_def_count(d2), 4);
	assert_string_equal(rules_def_name(d2, 2), "d");
	/* defaults are explicit in the export */
	assert_non_null(strstr(s1, "\"code\":451,\"enhanced\":\"4.7.1\",\"text\":\"Try again later\""));
	assert_non_null(strstr(s1, "\"comment\":\"from the guide\""));
	/* one rule object for the API */
	assert_int_equal(rules_def_check_one(json_array_get(j1, 0), err, sizeof(err)), 0);
	json_object_set_new(json_array_get(j1, 1), "name", json_string(""));
	assert_int_equal(rules_def_check_one(json_array_get(j1, 1), err, sizeof(err)), -1);
	assert_non_null(strstr(err, "rule.name: must be"));
	free(s1);
	json_decref(j1);
	json_decref(j2);
	rules_def_free(d1);
	rules_def_free(d2);
}

static void test_fold(void **state)
{
	static const struct {
		const char *in, *want;
	} cases[] = {
		{ "ABC def", "abc def" },
		{ "ÉTÉ", "été" },
		{ "E\xcc\x81T\xc3\x89", "\xc3\xa9t\xc3\xa9" },  /* decomposed É -> NFC é */
		{ "Straße", "strasse" },
		{ "\xff" "A", "\xef\xbf\xbd" "a" },            /* invalid UTF-8 repaired */
	};
	size_t i, n;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *f = rules_fold(cases[i].in, strlen(cases[i].in), false, &n);

		if (strcmp(f, cases[i].want) != 0 || n != strlen(cases[i].want))
			fail_msg("fold %s: got %s, want %s", cases[i].in, f, cases[i].want);
		g_free(f);
	}
}

/*
 * is / starts_with / ends_with run on hash sets of literals: the cases
 * the automaton answered by itself must still hold — any value of a
 * multi-valued field, a literal as long as the value or longer, literals
 * of many lengths, and two case-insensitive values that fold alike (both
 * atoms fire: all[] of the two needs both).
 */
static void test_anchored(void **state)
{
	static const struct {
		const char *name, *cond;
		int want;
	} cases[] = {
		{ "Received ends_with second value", "{\"field\":\"header\",\"header\":\"received\",\"op\":\"ends_with\",\"value\":\"BY RELAY1.example.net\"}", 1 },
		{ "Received starts_with second value", "{\"field\":\"header\",\"header\":\"Received\",\"op\":\"starts_with\",\"value\":\"from [198.51\",\"case\":\"sensitive\"}", 1 },
		{ "Received is second value", "{\"field\":\"header\",\"header\":\"Received\",\"op\":\"is\",\"value\":\"FROM [198.51.100.9] BY RELAY1.EXAMPLE.NET\"}", 1 },
		{ "Received is_not: a value is", "{\"field\":\"header\",\"header\":\"Received\",\"op\":\"is_not\",\"value\":\"from [198.51.100.9] by relay1.example.net\"}", 0 },
		{ "url_host ends_with second host", "{\"field\":\"url_host\",\"op\":\"ends_with\",\"value\":\".example.com\"}", 1 },
		{ "url_host is second host sensitive", "{\"field\":\"url_host\",\"op\":\"is\",\"value\":\"www.example.com\",\"case\":\"sensitive\"}", 1 },
		{ "url_host is sensitive wrong case", "{\"field\":\"url_host\",\"op\":\"is\",\"value\":\"WWW.example.com\",\"case\":\"sensitive\"}", 0 },
		{ "starts_with whole value", "{\"field\":\"sender\",\"op\":\"starts_with\",\"value\":\"alice@example.com\"}", 1 },
		{ "starts_with longer than value", "{\"field\":\"sender\",\"op\":\"starts_with\",\"value\":\"alice@example.com.\"}", 0 },
		{ "ends_with whole value", "{\"field\":\"sender\",\"op\":\"ends_with\",\"value\":\"ALICE@example.com\"}", 1 },
		{ "ends_with longer than value", "{\"field\":\"sender\",\"op\":\"ends_with\",\"value\":\"xalice@example.com\"}", 0 },
		{ "is prefix only", "{\"field\":\"sender\",\"op\":\"is\",\"value\":\"alice@\"}", 0 },
		{ "many lengths, one fits", "{\"any\":[{\"field\":\"sender\",\"op\":\"starts_with\",\"value\":\"b\"},{\"field\":\"sender\",\"op\":\"starts_with\",\"value\":\"alicf\"},{\"field\":\"sender\",\"op\":\"starts_with\",\"value\":\"alice@example.net\"},{\"field\":\"sender\",\"op\":\"starts_with\",\"value\":\"ALI\"}]}", 1 },
		{ "many lengths, none fits", "{\"any\":[{\"field\":\"sender\",\"op\":\"ends_with\",\"value\":\"b\"},{\"field\":\"sender\",\"op\":\"ends_with\",\"value\":\"example.org\"},{\"field\":\"sender\",\"op\":\"ends_with\",\"value\":\"@example.co\"}]}", 0 },
		{ "folded alike: both atoms", "{\"all\":[{\"field\":\"attachment_name\",\"op\":\"is\",\"value\":\"STRASSE.JPG\"},{\"field\":\"attachment_name\",\"op\":\"is\",\"value\":\"straße.jpg\"}]}", 1 },
		{ "folded alike: ends_with both", "{\"all\":[{\"field\":\"header\",\"header\":\"Subject\",\"op\":\"ends_with\",\"value\":\"ÉTÉ: FREE CD MUSIC\"},{\"field\":\"header\",\"header\":\"Subject\",\"op\":\"ends_with\",\"value\":\"été: free cd music\"}]}", 1 },
		{ "unicode starts_with sensitive", "{\"field\":\"header\",\"header\":\"Subject\",\"op\":\"starts_with\",\"value\":\"Prix spécial É\",\"case\":\"sensitive\"}", 1 },
		{ "unicode starts_with sensitive, folded value", "{\"field\":\"header\",\"header\":\"Subject\",\"op\":\"starts_with\",\"value\":\"prix spécial é\",\"case\":\"sensitive\"}", 0 },
		{ "body starts_with", "{\"field\":\"body\",\"op\":\"starts_with\",\"value\":\"HELLO,\\nclick\"}", 1 },
		{ "body is whole text", "{\"field\":\"body\",\"op\":\"is\",\"value\":\"hello,\\nclick here to unsubscribe from this offer.\\nbest offer 2026\\n\"}", 1 },
		{ "raw_body ends_with ASCII folding", "{\"field\":\"raw_body\",\"op\":\"ends_with\",\"value\":\"TEXT/PLAIN\\r\\n\"}", 1 },
		{ "anchored beside a regex (UTF-8 class)", "{\"all\":[{\"field\":\"header\",\"header\":\"Subject\",\"op\":\"matches\",\"value\":\"cd\\\\s+music$\"},{\"field\":\"header\",\"header\":\"Subject\",\"op\":\"ends_with\",\"value\":\"CD music\",\"case\":\"sensitive\"}]}", 1 },
	};
	char err[512];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int got = leaf_matches(cases[i].cond, err, sizeof(err));

		if (got != cases[i].want)
			fail_msg("%s: got %d, want %d (%s)", cases[i].name, got, cases[i].want,
				 got < 0 ? err : "");
	}
}

/* --- recompiling an edited set with reuse -------------------------------- */

/* Rule i of the reuse base set: every operator over the string fields, regexes included. */
static void reuse_rule(GString *g, size_t i, const char *tweak)
{
	static const char *const fields[] = { "sender", "header\",\"header\":\"Subject",
					      "body", "url_host", "attachment_name",
					      "header\",\"header\":\"Received", "recipient" };
	static const char *const ops[] = { "contains", "not_contains", "is", "is_not",
					   "starts_with", "ends_with", "matches", "not_matches" };
	const char *op = ops[i % 8];
	bool re = strstr(op, "matches") != NULL;
	char val[160], act[80];

	/* Some rules of each operator match the standard message; the rest carry their number. */
	if (i % 7 == 0) {
		static const char *const hit[] = { "example", "zzz", "alice@example.com",
						   "nobody@example.com", "ali", ".COM",
						   "^alice", "^zzz" };

		snprintf(val, sizeof(val), "%s%s", hit[i % 8], tweak);
	} else if (i % 16 < 8) {
		snprintf(val, sizeof(val), "%sv%zu%s", re ? "\\\\bw" : "w", i, tweak);
	} else {
		/* a look-ahead: PCRE2 only */
		snprintf(val, sizeof(val), "%s%zu%s", re ? "(?=q)q" : "q", i, tweak);
	}
	/* mostly non-final, so that a message walks every rule */
	if (i % 4 == 0)
		snprintf(act, sizeof(act), "{\"type\":\"tag\",\"header\":\"X-R: %zu\"}", i);
	else if (i == 590)
		snprintf(act, sizeof(act), "{\"type\":\"quarantine\"}");
	else
		snprintf(act, sizeof(act), "{\"type\":\"continue\"}");
	g_string_append_printf(g, "%s{\"name\":\"r%zu\",\"enabled\":%s,\"when\":{\"field\":\"%s\","
			       "\"op\":\"%s\",\"value\":\"%s\"%s},\"action\":%s}",
			       i > 0 ? "," : "", i, i % 53 == 5 ? "false" : "true",
			       fields[(i / 8) % 7], op, val,
			       i % 3 == 0 ? ",\"case\":\"sensitive\"" : "", act);
}

enum { REUSE_N = 600 };

/* The set with rule `at` changed by `edit`: 0 none, 1 value, 2 removed, 3 inserted before it. */
static struct rules_set *reuse_set(size_t at, int edit, const struct rules_set *prev)
{
	GString *g = g_string_new("[");
	struct rules_def *d = NULL;
	struct rules_set *rs;
	char err[512];
	size_t i, k = 0;

	for (i = 0; i < REUSE_N; i++) {
		GString *one = g_string_new(NULL);

		if (edit == 2 && i == at)
			continue;
		if (edit == 3 && i == at) {
			reuse_rule(one, i + 100000, "");
			g_string_append_printf(g, "%s%s", k++ > 0 ? "," : "",
					       one->str[0] == ',' ? one->str + 1 : one->str);
			g_string_truncate(one, 0);
		}
		reuse_rule(one, i, edit == 1 && i == at ? "e" : "");
		g_string_append_printf(g, "%s%s", k++ > 0 ? "," : "",
				       one->str[0] == ',' ? one->str + 1 : one->str);
		g_string_free(one, TRUE);
	}
	g_string_append_c(g, ']');
	if (rules_def_parse(g->str, g->len, &d, err, sizeof(err)) < 0)
		fail_msg("parse: %s", err);
	rs = rules_compile_reuse(d, prev, err, sizeof(err));
	if (rs == NULL)
		fail_msg("compile: %s", err);
	rules_def_free(d);
	g_string_free(g, TRUE);
	return rs;
}

/* Verdicts of a and b on the standard message and variants must be the same. */
static void same_verdicts(const struct rules_set *a, const struct rules_set *b, const char *what)
{
	/* values that match rules 6 (regex), 336 (contains) and 48, 160 (recipient contains) before their edit, and not after */
	static const char *const senders[] = { "alice@example.com", "ALICE@EXAMPLE.COM",
					       "wv336", "x wv6", "bob@example.net" };
	static const char *const rcpts[] = { "bob@example.org", "wv48", "wv160" };
	size_t s;

	for (s = 0; s < sizeof(senders) / sizeof(senders[0]); s++) {
		struct rules_input in;
		struct rules_result ra, rb;
		size_t i;

		std_input(&in);
		in.sender = senders[s];
		in.rcpts = rcpts;
		in.nrcpts = 3;
		assert_int_equal(rules_eval(a, &in, &ra), 0);
		assert_int_equal(rules_eval(b, &in, &rb), 0);
		if (ra.nhits != rb.nhits)
			fail_msg("%s, sender %s: got %zu hits, want %zu", what, senders[s],
				 rb.nhits, ra.nhits);
		for (i = 0; i < ra.nhits; i++)
			if (ra.hits[i] != rb.hits[i])
				fail_msg("%s: hit %zu is rule %zu, want %zu", what, i, rb.hits[i],
					 ra.hits[i]);
		for (i = 0; i < 3; i++)
			if (ra.rcpt[i]->action != rb.rcpt[i]->action ||
			    ra.rcpt[i]->rule != rb.rcpt[i]->rule ||
			    ra.rcpt[i]->nheaders != rb.rcpt[i]->nheaders)
				fail_msg("%s, recipient %zu: got action %d rule %ld, want %d rule %ld",
					 what, i, rb.rcpt[i]->action, rb.rcpt[i]->rule,
					 ra.rcpt[i]->action, ra.rcpt[i]->rule);
		rules_result_free(&ra);
		rules_result_free(&rb);
	}
}

/*
 * An edited set compiled with reuse from the set before the edit gives
 * exactly the verdicts of a full compile of the edited set, for edits of a
 * value, a removal and an insertion at several places (every operator and
 * both regex engines among the rules), reuses the databases the edit did
 * not touch, and outlives the set it reused from.
 */
static void test_reuse(void **state)
{
	static const size_t at[] = { 0, 6, 7, 48, 160, 304, 336, 599 };
	struct rules_set *base = reuse_set(0, 0, NULL);
	unsigned built, reused, total;
	size_t i;
	int edit;

	(void)state;
	rules_set_compile_stats(base, &built, &reused);
	total = built;
	assert_int_equal(reused, 0);
	assert_true(total > 8);
	{
		/* no edit: everything reused */
		struct rules_set *same = reuse_set(0, 0, base);

		rules_set_compile_stats(same, &built, &reused);
		assert_int_equal(built, 0);
		assert_int_equal(reused, total);
		same_verdicts(base, same, "unchanged");
		rules_set_free(same);
	}
	for (edit = 1; edit <= 3; edit++) {
		for (i = 0; i < sizeof(at) / sizeof(at[0]); i++) {
			struct rules_set *prev = reuse_set(0, 0, NULL);
			struct rules_set *full = reuse_set(at[i], edit, NULL);
			struct rules_set *part = reuse_set(at[i], edit, prev);
			char what[64];

			rules_set_compile_stats(part, &built, &reused);
			if (built > 3 || reused + 3 < total)
				fail_msg("edit %d at %zu: built %u reused %u of %u", edit, at[i],
					 built, reused, total);
			/* the reused set stands alone once prev is gone */
			rules_set_free(prev);
			snprintf(what, sizeof(what), "edit %d at rule %zu", edit, at[i]);
			same_verdicts(full, part, what);
			rules_set_free(full);
			rules_set_free(part);
		}
	}
	rules_set_free(base);
}

static void test_set_info(void **state)
{
	/* names and counts for hit statistics; no content and a null sender */
	static const char *const rules =
		"[" R("body", "{\"field\":\"body\",\"op\":\"not_contains\",\"value\":\"x\"}", "{\"type\":\"tag\",\"header\":\"X-A: 1\"}") ","
		R("bounce", "{\"field\":\"sender\",\"op\":\"is\",\"value\":\"\"}", "{\"type\":\"discard\"}") "]";
	char err[256];
	struct rules_set *rs = compile_json(rules, err, sizeof(err));
	struct rules_input in;
	struct rules_result res;

	(void)state;
	assert_non_null(rs);
	assert_int_equal(rules_set_count(rs), 2);
	assert_string_equal(rules_set_name(rs, 1), "bounce");
	assert_null(rules_set_name(rs, 2));
	assert_true(rules_set_memory(rs) > 0);
	memset(&in, 0, sizeof(in));
	in.sender = "";
	assert_int_equal(rules_eval(rs, &in, &res), 0);
	assert_null(res.rcpt);
	assert_int_equal(res.message->action, RULES_ACT_DISCARD);
	assert_string_equal(res.message->rule_name, "bounce");
	assert_int_equal(res.message->nheaders, 1);
	assert_string_equal(res.message->headers[0], "X-A: 1");
	assert_int_equal(res.nhits, 2);
	rules_result_free(&res);
	rules_set_free(rs);
	assert_int_equal(rules_eval(NULL, &in, &res), -1);
}

struct thr {
	struct rules_set *rs;
	const struct rules_input *in;
	int bad;
};

static void *thr_main(void *arg)
{
	struct thr *t = arg;
	int i;

	for (i = 0; i < 200; i++) {
		struct rules_result res;

		if (rules_eval(t->rs, t->in, &res) < 0 || res.message->action != RULES_ACT_HOLD)
			t->bad++;
		rules_result_free(&res);
	}
	return NULL;
}

/* Folding run by run gives what folding the whole text at once gives. */
static void test_fold_runs(void **state)
{
	static const char *const texts[] = {
		"Plain ASCII Text", "Caf\xc3\xa9 au LAIT", "e\xcc\x81t\xc3\xa9 (decomposed)",
		"MA\xc3\x9f und STRASSE", "\xc3\x89T\xc3\x89 \xe2\x80\x99quoted\xe2\x80\x99 x",
		"A\xcc\x8a\xcc\x81" "B", "x\xff\xfe broken \xc3",
		"\xce\xa3\xce\x99\xce\xa3\xce\xa5\xce\xa6\xce\x9f\xce\xa3 end",
		/* past the ASCII taken eight octets a step */
		"Sixteen ASCII Ch\xc3\xa9 AND MORE", "0123456789ABCDEFGHIJ\xff\xfe BROKEN",
		"EIGHT-OK\xc3\x89", "TWENTY-FOUR ASCII OCTETS",
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		size_t flen;
		char *f = rules_fold(texts[i], strlen(texts[i]), false, &flen);
		char *fixed = g_utf8_make_valid(texts[i], -1);
		char *cf = g_utf8_casefold(fixed, -1);
		char *want = g_utf8_normalize(cf, -1, G_NORMALIZE_NFC);

		if (strcmp(f, want) != 0 || flen != strlen(want))
			fail_msg("fold of text %zu: got \"%s\", want \"%s\"", i, f, want);
		g_free(f);
		g_free(fixed);
		g_free(cf);
		g_free(want);
	}
}

/* ASCII lower-casing, eight octets a step, for every octet at every offset. */
static void test_fold_bytes(void **state)
{
	char in[256 + 16];
	size_t off, i;

	(void)state;
	for (off = 0; off < 9; off++) {
		size_t n = 256 + off, flen;
		char *f;

		for (i = 0; i < n; i++)
			in[i] = (char)(i < off ? 'Q' : i - off);
		f = rules_fold(in, n, true, &flen);
		if (flen != n)
			fail_msg("offset %zu: got length %zu, want %zu", off, flen, n);
		for (i = 0; i < n; i++) {
			unsigned char c = (unsigned char)in[i];
			unsigned char want = c >= 'A' && c <= 'Z' ? c + 32 : c;

			if ((unsigned char)f[i] != want)
				fail_msg("offset %zu, octet %zu (0x%02x): got 0x%02x, want 0x%02x", off, i,
					 c, (unsigned char)f[i], want);
		}
		g_free(f);
	}
}

/*
 * A value that is not UTF-8 is repaired before a UTF-8 database scans it,
 * wherever the bad octet is: after a long ASCII run as at the start.
 */
static void test_utf8_repair(void **state)
{
	static const struct {
		const char *sender;
		int want;
	} cases[] = {
		{ "0123456789abcdefghij\xffz@x.org", 1 },
		{ "\xffz0123456789abcdefghij@x.org", 1 },
		{ "0123456789abcdefghij\xc3\xa9z@x.org", 1 },
		{ "0123456789abcdefghij@x.org", 0 },
	};
	const char *json =
		"[{\"name\":\"t\",\"when\":{\"any\":["
		"{\"field\":\"sender\",\"op\":\"matches\",\"value\":\"^0123456789abcdefghij.z@\"},"
		"{\"field\":\"sender\",\"op\":\"matches\",\"value\":\"^.z0123456789abcdefghij@\"}]},"
		"\"action\":{\"type\":\"quarantine\"}}]";
	struct rules_set *rs;
	char err[256];
	size_t i;

	(void)state;
	rs = compile_json(json, err, sizeof(err));
	if (rs == NULL)
		fail_msg("compile: %s", err);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct rules_input in;
		struct rules_result res;
		int got;

		std_input(&in);
		in.sender = cases[i].sender;
		assert_int_equal(rules_eval(rs, &in, &res), 0);
		got = res.message->action == RULES_ACT_QUARANTINE;
		rules_result_free(&res);
		if (got != cases[i].want)
			fail_msg("sender %zu: got match %d, want %d", i, got, cases[i].want);
	}
	rules_set_free(rs);
}

/* Recipients split into classes only where a refuse/defer outcome could differ. */
static void test_rcpt_class(void **state)
{
	static const struct {
		const char *name;
		const char *set;
		const char *a, *b;
		int same;
	} cases[] = {
		{ "no rule looks at recipients",
		  "[{\"name\":\"r\",\"when\":{\"field\":\"size\",\"op\":\"gt\",\"value\":1},"
		  "\"action\":{\"type\":\"refuse\"}}]", "a@x.org", "b@x.org", 1 },
		{ "a refuse rule on the recipient",
		  "[{\"name\":\"r\",\"when\":{\"field\":\"recipient\",\"op\":\"is\",\"value\":\"b@x.org\"},"
		  "\"action\":{\"type\":\"refuse\"}}]", "a@x.org", "b@x.org", 0 },
		{ "both miss the refuse rule",
		  "[{\"name\":\"r\",\"when\":{\"field\":\"recipient\",\"op\":\"is\",\"value\":\"b@x.org\"},"
		  "\"action\":{\"type\":\"refuse\"}}]", "a@x.org", "c@x.org", 1 },
		{ "recipient rule after the last refuse",
		  "[{\"name\":\"r\",\"when\":{\"field\":\"size\",\"op\":\"gt\",\"value\":1},"
		  "\"action\":{\"type\":\"defer\"}},"
		  "{\"name\":\"q\",\"when\":{\"field\":\"recipient\",\"op\":\"is\",\"value\":\"b@x.org\"},"
		  "\"action\":{\"type\":\"quarantine\"}}]", "a@x.org", "b@x.org", 1 },
		{ "recipient rule before a refuse (may stop it)",
		  "[{\"name\":\"q\",\"when\":{\"field\":\"recipient\",\"op\":\"is\",\"value\":\"b@x.org\"},"
		  "\"action\":{\"type\":\"accept\"}},"
		  "{\"name\":\"r\",\"when\":{\"field\":\"size\",\"op\":\"gt\",\"value\":1},"
		  "\"action\":{\"type\":\"refuse\"}}]", "a@x.org", "b@x.org", 0 },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char err[300];
		struct rules_set *rs = compile_json(cases[i].set, err, sizeof(err));
		uint64_t ca, cb;

		if (rs == NULL)
			fail_msg("%s: does not compile: %s", cases[i].name, err);
		ca = rules_rcpt_class(rs, cases[i].a, NULL, NULL);
		cb = rules_rcpt_class(rs, cases[i].b, NULL, NULL);
		if ((ca == cb) != cases[i].same)
			fail_msg("%s: classes %s, want %s", cases[i].name,
				 ca == cb ? "equal" : "different", cases[i].same ? "equal" : "different");
		rules_set_free(rs);
	}
}

static void test_threads(void **state)
{
	static const char *const rules =
		"[" R("a", "{\"field\":\"body\",\"op\":\"contains\",\"value\":\"offer\"}", "{\"type\":\"hold\"}") "]";
	char err[256];
	struct thr t[4];
	pthread_t th[4];
	struct rules_set *rs = compile_json(rules, err, sizeof(err));
	struct rules_input in;
	int i;

	(void)state;
	std_input(&in); /* one input, read by every thread */
	for (i = 0; i < 4; i++) {
		t[i].rs = rs;
		t[i].in = &in;
		t[i].bad = 0;
	}
	for (i = 0; i < 4; i++)
		pthread_create(&th[i], NULL, thr_main, &t[i]);
	for (i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(t[i].bad, 0);
	}
	rules_set_free(rs);
}

/*
 * "contains" literals searched directly give exactly the verdicts of the
 * same literals in Vectorscan databases: every field kind (single and
 * multi-valued, per recipient, the body that always keeps Vectorscan),
 * case-sensitive and folded, Unicode folding, one-octet literals, literals
 * at either end of a value and longer than it, with as many literals in
 * the Subject class as the direct search takes, one less and one more.
 */
static void direct_rule(GString *g, size_t i, const char *field, const char *op, const char *val,
			bool sensitive)
{
	g_string_append_printf(g, "%s{\"name\":\"d%zu\",\"enabled\":true,\"when\":{\"field\":\"%s\","
			       "\"op\":\"%s\",\"value\":\"%s\"%s},\"action\":{\"type\":\"tag\","
			       "\"header\":\"X-D: %zu\"}}",
			       i > 0 ? "," : "", i, field, op, val,
			       sensitive ? ",\"case\":\"sensitive\"" : "", i);
}

static struct rules_set *direct_set(size_t nsubject, size_t direct_max, unsigned *built)
{
	static const char *const fields[] = { "sender", "header\",\"header\":\"Subject",
					      "header\",\"header\":\"Received", "helo",
					      "attachment_name", "url_host", "recipient", "body" };
	/* hits and misses of the standard message and the variants in test_direct_search */
	static const char *const vals[] = {
		"example", "EXAMPLE", "alice@", "Prix", "prix", "spécial", "SPÉCIAL", "ÉTÉ",
		"été", "music", "music!", "Free CD music and more", "P", "c", "x", "é", "ß",
		"strasse", "STRASSE", "Straße", "relay1", "198.51.100.9", "[198", "by",
		"invoice.pdf.exe", ".EXE", "spam.example", "www.", "bob@", "carol", "offer",
		"Offer 2026", "\\u0130stanbul", "zzz", "ample.co", "m",
	};
	size_t i, n = 0, f, v;
	GString *g = g_string_new("[");
	struct rules_def *d = NULL;
	struct rules_set *rs;
	size_t saved = rules_direct_lit_max;
	char err[256], val[32];
	unsigned reused;

	for (f = 0; f < sizeof(fields) / sizeof(fields[0]); f++)
		for (v = 0; v < sizeof(vals) / sizeof(vals[0]); v++) {
			bool sens = (v + f) % 3 == 0;

			if (f == 1 && !sens)
				continue;       /* the folded Subject class is counted below */
			direct_rule(g, n, fields[f], (v + f) % 5 == 4 ? "not_contains" : "contains",
				    vals[v], sens);
			n++;
		}
	/* exactly nsubject folded "contains" literals on Subject (distinct after folding) */
	for (i = 0; i < nsubject; i++) {
		if (i < sizeof(vals) / sizeof(vals[0]) && strcmp(vals[i], "EXAMPLE") != 0 &&
		    strcmp(vals[i], "prix") != 0 && strcmp(vals[i], "SPÉCIAL") != 0 &&
		    strcmp(vals[i], "été") != 0 && strcmp(vals[i], "STRASSE") != 0 &&
		    strcmp(vals[i], "ß") != 0)
			snprintf(val, sizeof(val), "%s", vals[i]);
		else
			snprintf(val, sizeof(val), "pad %zu", i);
		direct_rule(g, n++, fields[1], "contains", val, false);
	}
	g_string_append_c(g, ']');
	if (rules_def_parse(g->str, g->len, &d, err, sizeof(err)) < 0)
		fail_msg("parse: %s", err);
	rules_direct_lit_max = direct_max;
	rs = rules_compile(d, err, sizeof(err));
	rules_direct_lit_max = saved;
	if (rs == NULL)
		fail_msg("compile: %s", err);
	rules_def_free(d);
	g_string_free(g, TRUE);
	rules_set_compile_stats(rs, built, &reused);
	return rs;
}

static void test_direct_search(void **state)
{
	static struct mime_header hdrs2[] = {
		{ "Subject", "STRASSE m" }, { "Received", "x" }, { "received", "" },
		{ "To", "Carol <carol@example.org>, bob@example.net" }, { "Cc", "\"ß\" <s@x>" },
	};
	static const char *const rcpts[] = { "bob@example.org", "carol@example.org", "m" };
	const size_t max = RULES_DIRECT_LIT_MAX_DEFAULT;
	const size_t counts[] = { 1, max - 1, max, max + 1 };
	size_t c, k;

	(void)state;
	assert_int_equal(rules_direct_lit_max, max);
	for (c = 0; c < sizeof(counts) / sizeof(counts[0]); c++) {
		unsigned built_direct, built_hs;
		struct rules_set *direct = direct_set(counts[c], max, &built_direct);
		struct rules_set *hs = direct_set(counts[c], 0, &built_hs);

		/*
		 * Vectorscan path: body and one database per other class and form
		 * (raw and folded literal sets on 6 fields, 2 on Subject when
		 * folded ones exist); direct: the body only, plus the Subject's
		 * folded literals once they pass the limit.
		 */
		assert_true(built_hs > 10);
		assert_int_equal(built_direct, counts[c] > max ? 3 : 2);
		for (k = 0; k < 4; k++) {
			struct rules_input in;
			struct rules_result ra, rb;
			size_t i;

			std_input(&in);
			in.rcpts = rcpts;
			in.nrcpts = 3;
			if (k == 1)
				in.sender = "ALICE@EXAMPLE.COM";
			if (k == 2) {
				view.headers = hdrs2;
				view.nheaders = sizeof(hdrs2) / sizeof(hdrs2[0]);
				in.sender = "m";
			}
			if (k == 3)
				in.mime = NULL;
			assert_int_equal(rules_eval(hs, &in, &ra), 0);
			assert_int_equal(rules_eval(direct, &in, &rb), 0);
			if (ra.nhits != rb.nhits)
				fail_msg("%zu Subject literals, input %zu: direct %zu hits, Vectorscan %zu",
					 counts[c], k, rb.nhits, ra.nhits);
			for (i = 0; i < ra.nhits; i++)
				if (ra.hits[i] != rb.hits[i])
					fail_msg("%zu Subject literals, input %zu: hit %zu is rule %zu, want %zu",
						 counts[c], k, i, rb.hits[i], ra.hits[i]);
			if (k == 0)
				assert_true(ra.nhits > 40);
			for (i = 0; i < 3; i++)
				assert_int_equal(ra.rcpt[i]->nheaders, rb.rcpt[i]->nheaders);
			rules_result_free(&ra);
			rules_result_free(&rb);
		}
		rules_set_free(direct);
		rules_set_free(hs);
	}
}

#define SCORE_C(op, v) "{\"field\":\"score\",\"op\":\"" op "\",\"value\":" v "}"
#define PART_C(name, op, v) \
	"{\"field\":\"score_part\",\"name\":\"" name "\",\"op\":\"" op "\",\"value\":" v "}"
#define POINTS(v) "{\"type\":\"score\",\"points\":" v "}"

/* The fields score and score_part against std_input: score 8.5 and its parts. */
static void test_score_fields(void **state)
{
	static const struct {
		const char *name, *cond;
		int want;
	} cases[] = {
		{ "score gt below", SCORE_C("gt", "8"), 1 },
		{ "score gt equal", SCORE_C("gt", "8.5"), 0 },
		{ "score gt above", SCORE_C("gt", "9"), 0 },
		{ "score lt above", SCORE_C("lt", "10"), 1 },
		{ "score lt equal", SCORE_C("lt", "8.5"), 0 },
		{ "score is", SCORE_C("is", "8.5"), 1 },
		{ "score is string", SCORE_C("is", "\"8.5\""), 1 },
		{ "score is other", SCORE_C("is", "8"), 0 },
		{ "score is_not", SCORE_C("is_not", "8.5"), 0 },
		{ "score is_not other", SCORE_C("is_not", "-8.5"), 1 },
		{ "greater_than alias", SCORE_C("greater_than", "\"+5\""), 1 },
		{ "less_than alias", SCORE_C("less_than", "-1"), 0 },
		{ "negative value", SCORE_C("gt", "\"-0.5\""), 1 },
		{ "part gt", PART_C("BAYES", "gt", "4"), 1 },
		{ "part name any case", PART_C("bayes", "gt", "4"), 1 },
		{ "part lt", PART_C("BAYES", "lt", "4"), 0 },
		{ "part is integer", PART_C("SPF_FAIL", "is", "2"), 1 },
		{ "part with dots", PART_C("DNSBL_zen.spamhaus.org", "gt", "2.5"), 1 },
		{ "negative part", PART_C("RULE_12", "lt", "-0.5"), 1 },
		{ "absent part is 0", PART_C("DKIM_PASS", "is", "0"), 1 },
		{ "absent part not below 0", PART_C("DKIM_PASS", "lt", "0"), 0 },
		{ "absent part not above 0", PART_C("DKIM_PASS", "gt", "\"-0.001\""), 1 },
		{ "part named twice sums, within epsilon", PART_C("ACCOUNT", "is", "0.3"), 1 },
		{ "sum not above its value", PART_C("ACCOUNT", "gt", "0.3"), 0 },
		{ "sum not below its value", PART_C("ACCOUNT", "lt", "0.3"), 0 },
		{ "and", "{\"all\":[" SCORE_C("gt", "5") "," PART_C("BAYES", "lt", "5") "]}", 1 },
		{ "not", "{\"not\":" SCORE_C("gt", "100") "}", 1 },
	};
	char err[256];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int got = leaf_matches(cases[i].cond, err, sizeof(err));

		if (got < 0)
			fail_msg("%s: compile: %s", cases[i].name, err);
		if (got != cases[i].want)
			fail_msg("%s: got %d, want %d", cases[i].name, got, cases[i].want);
	}
}

/* rules_verdict.points: the score actions of the rules reached that matched. */
static void test_score_points(void **state)
{
	static const struct {
		const char *name, *rules;
		enum rules_action_type want;
		double points;
		size_t nhits;
	} cases[] = {
		{ "no rules", "[]", RULES_ACT_NONE, 0, 0 },
		{ "points add up",
		  "[" R("a", TRUE_C, POINTS("2.5")) "," R("b", TRUE_C, POINTS("\"-1\"")) ","
		  R("t", TRUE_C, "{\"type\":\"tag\",\"subject_prefix\":\"[S]\"}") "]",
		  RULES_ACT_NONE, 1.5, 3 },
		{ "not final: the next rule decides",
		  "[" R("a", TRUE_C, POINTS("20")) "," R("q", TRUE_C, "{\"type\":\"quarantine\"}") ","
		  R("late", TRUE_C, POINTS("5")) "]",
		  RULES_ACT_QUARANTINE, 20, 2 },
		{ "rules that do not match add nothing",
		  "[" R("f", FALSE_C, POINTS("7")) "," R("a", TRUE_C, POINTS("0.25")) "]",
		  RULES_ACT_NONE, 0.25, 1 },
		{ "disabled rules add nothing",
		  "[{\"name\":\"d\",\"enabled\":false,\"when\":" TRUE_C ",\"action\":" POINTS("9") "},"
		  R("a", TRUE_C, POINTS("-3")) "]",
		  RULES_ACT_NONE, -3, 1 },
		{ "except holds: no points",
		  "[{\"name\":\"e\",\"when\":" TRUE_C ",\"except\":" SCORE_C("gt", "1")
		  ",\"action\":" POINTS("4") "}]",
		  RULES_ACT_NONE, 0, 0 },
		/* the score rules see is the one before any rule's points */
		{ "score before points",
		  "[" R("big", TRUE_C, POINTS("100")) ","
		  R("r", SCORE_C("gt", "50"), "{\"type\":\"refuse\"}") "]",
		  RULES_ACT_NONE, 100, 1 },
		{ "subject adds points",
		  "[" R("v", "{\"field\":\"header\",\"header\":\"Subject\",\"op\":\"contains\",\"value\":\"music\"}",
		        POINTS("\"+20\"")) "," R("r", PART_C("BAYES", "gt", "1"), "{\"type\":\"hold\"}") "]",
		  RULES_ACT_HOLD, 20, 2 },
	};
	char err[256];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct rules_set *rs = compile_json(cases[i].rules, err, sizeof(err));
		struct rules_input in;
		struct rules_result res;
		const struct rules_verdict *v;

		if (rs == NULL)
			fail_msg("%s: compile: %s", cases[i].name, err);
		std_input(&in);
		assert_int_equal(rules_eval(rs, &in, &res), 0);
		v = res.message;
		if (v->action != cases[i].want || v->points < cases[i].points - 1e-9 ||
		    v->points > cases[i].points + 1e-9 || res.nhits != cases[i].nhits)
			fail_msg("%s: got %s points %g hits %zu, want %s points %g hits %zu",
				 cases[i].name, rules_action_name(v->action), v->points, res.nhits,
				 rules_action_name(cases[i].want), cases[i].points, cases[i].nhits);
		rules_result_free(&res);
		rules_set_free(rs);
	}
}

/* Points per recipient, mailbox points, the 452 class, errors, round trip. */
static void test_score_rules(void **state)
{
	static const char *const rcpts[] = { "bob@example.org", "carol@example.org",
					     "dave@other.example" };
	static const char per_rcpt[] =
		"[" R("c", "{\"field\":\"recipient\",\"op\":\"is\",\"value\":\"carol@example.org\"}",
		      POINTS("3")) "," R("all", TRUE_C, POINTS("1")) "]";
	/* the refusing rule tests the score and the recipient's domain */
	static const char cls[] =
		"[" R("r", "{\"all\":[" SCORE_C("gt", "5") ",{\"field\":\"recipient\",\"op\":"
		      "\"ends_with\",\"value\":\"@example.org\"}]}", "{\"type\":\"refuse\"}") "]";
	static const char mbox[] =
		"[{\"name\":\"m\",\"when\":" TRUE_C ",\"actions\":[" POINTS("3") ","
		"{\"type\":\"move\",\"folder\":\"Junk\"}," POINTS("2") "]},"
		"{\"name\":\"after\",\"when\":" TRUE_C ",\"actions\":[" POINTS("50") "]}]";
	static const struct {
		const char *name, *json, *want;
		enum rules_kind kind;
	} errs[] = {
		{ "points missing", "[" R("a", TRUE_C, "{\"type\":\"score\"}") "]",
		  "rules[0].action.points: required", RULES_KIND_SERVER },
		{ "points zero", "[" R("a", TRUE_C, POINTS("0")) "]",
		  "rules[0].action.points: must be a decimal number from -1000 to 1000, not 0", RULES_KIND_SERVER },
		{ "points too large", "[" R("a", TRUE_C, POINTS("1000.5")) "]",
		  "rules[0].action.points: must be", RULES_KIND_SERVER },
		{ "points not a number", "[" R("a", TRUE_C, POINTS("\"lots\"")) "]",
		  "rules[0].action.points: must be", RULES_KIND_SERVER },
		{ "points exponent", "[" R("a", TRUE_C, POINTS("\"1e3\"")) "]",
		  "rules[0].action.points: must be", RULES_KIND_SERVER },
		{ "points trailing dot", "[" R("a", TRUE_C, POINTS("\"2.\"")) "]",
		  "rules[0].action.points: must be", RULES_KIND_SERVER },
		{ "points bool", "[" R("a", TRUE_C, POINTS("true")) "]",
		  "rules[0].action.points: must be", RULES_KIND_SERVER },
		{ "points on other action", "[" R("a", TRUE_C, "{\"type\":\"hold\",\"points\":1}") "]",
		  "rules[0].action.points: not a parameter of action hold", RULES_KIND_SERVER },
		{ "score value string", "[" R("a", SCORE_C("gt", "\"high\""), "{\"type\":\"hold\"}") "]",
		  "rules[0].when.value: must be a decimal number", RULES_KIND_SERVER },
		{ "score value too large", "[" R("a", SCORE_C("gt", "1000001"), "{\"type\":\"hold\"}") "]",
		  "rules[0].when.value: must be a decimal number", RULES_KIND_SERVER },
		{ "score op", "[" R("a", SCORE_C("contains", "1"), "{\"type\":\"hold\"}") "]",
		  "rules[0].when.op: operator contains does not apply to field score", RULES_KIND_SERVER },
		{ "part name missing",
		  "[" R("a", "{\"field\":\"score_part\",\"op\":\"gt\",\"value\":1}", "{\"type\":\"hold\"}") "]",
		  "rules[0].when.name: required for field score_part", RULES_KIND_SERVER },
		{ "part name space", "[" R("a", "{\"all\":[" TRUE_C "," PART_C("SPF FAIL", "gt", "1") "]}", "{\"type\":\"hold\"}") "]",
		  "rules[0].when.all[1].name: invalid score part name", RULES_KIND_SERVER },
		{ "name on other field",
		  "[" R("a", "{\"field\":\"score\",\"name\":\"BAYES\",\"op\":\"gt\",\"value\":1}", "{\"type\":\"hold\"}") "]",
		  "rules[0].when.name: only for field score_part", RULES_KIND_SERVER },
		{ "mailbox points", "[{\"name\":\"m\",\"when\":" TRUE_C ",\"actions\":[{\"type\":\"keep\"}," POINTS("\"x\"") "]}]",
		  "rules[0].actions[1].points: must be", RULES_KIND_MAILBOX },
	};
	static const char round[] =
		"[" R("a", "{\"any\":[" SCORE_C("greater_than", "\"5.5\"") "," PART_C("DNSBL_zen.spamhaus.org", "lt", "-0.5") "]}",
		      POINTS("\"+20\"")) "," R("b", TRUE_C, POINTS("-0.5")) "]";
	static const char round_want[] =
		"[{\"name\":\"a\",\"enabled\":true,\"when\":{\"any\":["
		"{\"field\":\"score\",\"op\":\"gt\",\"value\":5.5},"
		"{\"field\":\"score_part\",\"name\":\"DNSBL_zen.spamhaus.org\",\"op\":\"lt\",\"value\":-0.5}]},"
		"\"except\":null,\"action\":{\"type\":\"score\",\"points\":20}},"
		"{\"name\":\"b\",\"enabled\":true,\"when\":" TRUE_C ",\"except\":null,"
		"\"action\":{\"type\":\"score\",\"points\":-0.5}}]";
	struct rules_def *d = NULL, *d2 = NULL;
	struct rules_set *rs;
	struct rules_input in;
	struct rules_result res;
	char err[300], *s1, *s2;
	json_t *j1, *j2;
	size_t i;

	(void)state;
	/* each recipient gets the points of the rules that matched for it */
	rs = compile_json(per_rcpt, err, sizeof(err));
	assert_non_null(rs);
	std_input(&in);
	in.rcpts = rcpts;
	in.nrcpts = 3;
	assert_int_equal(rules_eval(rs, &in, &res), 0);
	assert_true(res.rcpt[0]->points == 1 && res.rcpt[1]->points == 4 && res.rcpt[2]->points == 1);
	rules_result_free(&res);
	rules_set_free(rs);

	/* conditions on the score never split recipients into classes */
	rs = compile_json(cls, err, sizeof(err));
	assert_non_null(rs);
	assert_true(rules_rcpt_class(rs, rcpts[0], NULL, NULL) ==
		    rules_rcpt_class(rs, rcpts[1], NULL, NULL));
	assert_true(rules_rcpt_class(rs, rcpts[0], NULL, NULL) !=
		    rules_rcpt_class(rs, rcpts[2], NULL, NULL));
	rules_set_free(rs);

	/* a mailbox rule adds all its points, those after its deciding action too */
	assert_int_equal(rules_def_parse_kind(mbox, strlen(mbox), RULES_KIND_MAILBOX, &d, err,
					      sizeof(err)), 0);
	rs = rules_compile(d, err, sizeof(err));
	assert_non_null(rs);
	std_input(&in);
	assert_int_equal(rules_eval(rs, &in, &res), 0);
	if (res.message->action != RULES_ACT_MOVE || res.message->points != 5)
		fail_msg("mailbox: got %s points %g, want move points 5",
			 rules_action_name(res.message->action), res.message->points);
	assert_string_equal(res.message->folder, "Junk");
	rules_result_free(&res);
	rules_set_free(rs);
	j1 = rules_def_to_json(d);
	s1 = json_dumps(j1, JSON_COMPACT);
	assert_non_null(strstr(s1, "{\"type\":\"score\",\"points\":3},{\"type\":\"move\""));
	free(s1);
	json_decref(j1);
	rules_def_free(d);
	d = NULL;

	for (i = 0; i < sizeof(errs) / sizeof(errs[0]); i++) {
		err[0] = '\0';
		if (rules_def_parse_kind(errs[i].json, strlen(errs[i].json), errs[i].kind, &d, err,
					 sizeof(err)) == 0) {
			rules_def_free(d);
			fail_msg("%s: parsed, want error %s", errs[i].name, errs[i].want);
		}
		if (strstr(err, errs[i].want) == NULL)
			fail_msg("%s: got \"%s\", want \"%s\"", errs[i].name, err, errs[i].want);
	}

	/* export: numbers as numbers, the long operator names as gt/lt; parse(export) == export */
	assert_int_equal(rules_def_parse(round, strlen(round), &d, err, sizeof(err)), 0);
	j1 = rules_def_to_json(d);
	s1 = json_dumps(j1, JSON_COMPACT);
	if (strcmp(s1, round_want) != 0)
		fail_msg("export: got %s, want %s", s1, round_want);
	assert_int_equal(rules_def_parse(s1, strlen(s1), &d2, err, sizeof(err)), 0);
	j2 = rules_def_to_json(d2);
	s2 = json_dumps(j2, JSON_COMPACT);
	assert_string_equal(s1, s2);
	free(s1);
	free(s2);
	json_decref(j1);
	json_decref(j2);
	rules_def_free(d);
	rules_def_free(d2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_operators),
		cmocka_unit_test(test_except),
		cmocka_unit_test(test_first_match),
		cmocka_unit_test(test_per_recipient),
		cmocka_unit_test(test_lazy_list),
		cmocka_unit_test(test_engines),
		cmocka_unit_test(test_prefilter),
		cmocka_unit_test(test_triggers),
		cmocka_unit_test(test_catastrophic),
		cmocka_unit_test(test_vectorscan_limit),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_fold),
		cmocka_unit_test(test_set_info),
		cmocka_unit_test(test_threads),
		cmocka_unit_test(test_rcpt_class),
		cmocka_unit_test(test_fold_runs),
		cmocka_unit_test(test_utf8_repair),
		cmocka_unit_test(test_fold_bytes),
		cmocka_unit_test(test_anchored),
		cmocka_unit_test(test_reuse),
		cmocka_unit_test(test_direct_search),
		cmocka_unit_test(test_score_fields),
		cmocka_unit_test(test_score_points),
		cmocka_unit_test(test_score_rules),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
