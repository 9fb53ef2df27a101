/*
 * libFuzzer harness: the rule-set JSON parser, the compiler, one
 * evaluation against a fixed message and the recipient classes of two
 * addresses.  The rule count is capped so that one input compiles in
 * milliseconds.  A parsed set must export to JSON that parses again
 * (round trip), and the walk of the rules some test can make true must
 * give what a walk of every rule gives.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mime/mime.h"
#include "rules/rules.h"
#include "rules/rules_internal.h"

#define FUZZ_RULES_MAX 32

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int in_list(void *arg, const char *list, const char *value)
{
	(void)arg;
	return strcmp(list, value) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct mime_header hdrs[] = {
		{ "From", "Alice <alice@example.com>" }, { "Subject", "Prix spécial ÉTÉ" },
		{ "Received", "from a by b" }, { "X-Empty", "" },
	};
	static struct mime_attachment atts[] = { { "a.exe", "application/octet-stream", 10 } };
	static const char *hosts[] = { "example.net" };
	static const char *rcpts[] = { "bob@example.org", "carol@example.org" };
	static const char *flags[] = { "tls" };
	static const char *part_names[] = { "BAYES", "DNSBL_zen.spamhaus.org", "BAYES" };
	static const double part_values[] = { 2.5, 3, -0.25 };
	static const char body[] = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab unsubscribe \xff offer";
	struct mime_view v;
	struct rules_input in;
	struct rules_result res;
	struct rules_def *d = NULL, *d2 = NULL;
	struct rules_set *rs;
	char err[512], *s;
	json_t *j;

	if (rules_def_parse((const char *)data, size, &d, err, sizeof(err)) < 0)
		return 0;
	j = rules_def_to_json(d);
	s = json_dumps(j, JSON_COMPACT);
	if (s == NULL || rules_def_parse(s, strlen(s), &d2, err, sizeof(err)) < 0)
		abort(); /* export must parse again */
	free(s);
	json_decref(j);
	rules_def_free(d2);
	if (rules_def_count(d) > FUZZ_RULES_MAX) {
		rules_def_free(d);
		return 0;
	}
	rs = rules_compile(d, err, sizeof(err));
	rules_def_free(d);
	if (rs == NULL)
		return 0;
	memset(&v, 0, sizeof(v));
	v.headers = hdrs;
	v.nheaders = 4;
	v.text = body;
	v.text_len = sizeof(body) - 1;
	v.raw_body = body;
	v.raw_body_len = sizeof(body) - 1;
	v.attachments = atts;
	v.nattachments = 1;
	v.url_hosts = hosts;
	v.nurl_hosts = 1;
	memset(&in, 0, sizeof(in));
	in.mime = &v;
	in.sender = "";
	in.rcpts = rcpts;
	in.nrcpts = 2;
	in.client_addr = "2001:db8::1";
	in.helo = "h\xc3";
	in.size = 100;
	in.flags = flags;
	in.nflags = 1;
	in.in_list = in_list;
	in.score = 7.25;
	in.score_part_names = part_names;
	in.score_part_values = part_values;
	in.nscore_parts = 3;
	if (rules_eval(rs, &in, &res) == 0) {
		struct rules_result all;
		size_t i;

		rules_walk_all = true;
		if (rules_eval(rs, &in, &all) != 0)
			abort();
		rules_walk_all = false;
		if (all.nhits != res.nhits)
			abort();
		for (i = 0; i < res.nhits; i++)
			if (all.hits[i] != res.hits[i])
				abort();
		for (i = 0; i < in.nrcpts; i++)
			if (all.rcpt[i]->rule != res.rcpt[i]->rule ||
			    all.rcpt[i]->action != res.rcpt[i]->action ||
			    !(all.rcpt[i]->points == res.rcpt[i]->points))
				abort();
		rules_result_free(&all);
		rules_result_free(&res);
	}
	/* The recipient class the loop asks for at RCPT, from what the compile prepared. */
	(void)rules_rcpt_class(rs, rcpts[0], in_list, NULL);
	(void)rules_rcpt_class(rs, "", in_list, NULL);
	rules_set_free(rs);
	return 0;
}
