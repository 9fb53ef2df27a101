/*
 * mailbox_bench: cost of per-user mailbox rule sets (docs/mailbox-rules.md).
 *
 * Builds mailbox sets of the shape users write (deterministic): each rule
 * sorts by a distinct sender, subject word or list header into a folder,
 * a few tag or copy, and none of them matches the message, so a message
 * walks the whole set (the expensive case).  Reports, CPU time per thread:
 *   - compile time and compiled memory of one set of 200 and 10,000 rules;
 *   - rules_eval() of one recipient on a 5 KB message, MIME parse excluded;
 *   - one message to 50 recipients, each with their own 200-rule set;
 *   - the memory 10,000 users x 200 rules would take in the cache;
 *   - an edit of one rule in a 10,000-rule set (a literal; a regex, in a
 *     variant where one rule in ten is a regex) recompiled with
 *     rules_compile_reuse() from the set before the edit, against a full
 *     compile of the edited set.
 *
 *   mailbox_bench [-n ITER]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "mime/mime.h"
#include "rules/rules.h"
#include "util/util.h"

static double cpu_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static json_t *leaf(const char *field, const char *header, const char *op, const char *value)
{
	json_t *l = json_pack("{s:s, s:s, s:s}", "field", field, "op", op, "value", value);

	if (header != NULL)
		json_object_set_new(l, "header", json_string(header));
	return l;
}

/* Variant: one rule in ten a regex; edit: the rule whose value changes (SIZE_MAX: none). */
static int with_regex;
static size_t edit_at = SIZE_MAX;

/* One rule of user u; i makes every value distinct. */
static json_t *make_rule(size_t u, size_t i)
{
	char name[64], val[128], folder[64];
	json_t *when, *acts = json_array();
	const char *mark = i == edit_at ? "edited" : "";

	snprintf(name, sizeof(name), "rule %zu", i);
	snprintf(folder, sizeof(folder), "Ships/Ship%zu/Kind%zu", i % 97, i % 13);
	if (with_regex && i % 10 == 9) {
		snprintf(val, sizeof(val), "voyage\\s+log\\s+%s%zu-%zu\\b", mark, i, u);
		when = leaf("header", "Subject", "matches", val);
	} else switch (i % 4) {
	case 0:
		snprintf(val, sizeof(val), "ship%zu-u%zu@fleet.example", i, u);
		when = leaf("sender", NULL, "is", val);
		break;
	case 1:
		snprintf(val, sizeof(val), "voyage report %s%zu-%zu", mark, i, u);
		when = leaf("header", "Subject", "contains", val);
		break;
	case 2:
		snprintf(val, sizeof(val), "list%zu.u%zu.fleet.example", i, u);
		when = leaf("header", "List-Id", "ends_with", val);
		break;
	default:
		snprintf(val, sizeof(val), "cargo-%zu-%zu", i, u);
		when = json_pack("{s:[o, o]}", "all",
				 leaf("header", "Subject", "contains", val),
				 leaf("to_cc", NULL, "contains", "fleet"));
		break;
	}
	if (i % 10 == 0)
		json_array_append_new(acts, json_pack("{s:s, s:s}", "type", "tag_subject",
						      "prefix", "[fleet] "));
	if (i % 25 == 0)
		json_array_append_new(acts, json_pack("{s:s, s:s}", "type", "copy",
						      "folder", "Archive"));
	json_array_append_new(acts, json_pack("{s:s, s:s}", "type", "move", "folder", folder));
	return json_pack("{s:s, s:b, s:o, s:o}", "name", name, "enabled", 1, "when", when,
			 "actions", acts);
}

static struct rules_set *make_set_from(size_t u, size_t n, const struct rules_set *prev,
				       double *compile_ms)
{
	json_t *arr = json_array();
	struct rules_def *d = NULL;
	struct rules_set *rs;
	char *text, err[400];
	double t0;
	size_t i;

	for (i = 0; i < n; i++)
		json_array_append_new(arr, make_rule(u, i));
	text = json_dumps(arr, JSON_COMPACT);
	json_decref(arr);
	t0 = cpu_us();
	/* What the cache does: parse the stored JSON, compile. */
	if (rules_def_parse_kind(text, strlen(text), RULES_KIND_MAILBOX, &d, err,
				 sizeof(err)) < 0) {
		fprintf(stderr, "parse: %s\n", err);
		exit(1);
	}
	rs = rules_compile_reuse(d, prev, err, sizeof(err));
	if (rs == NULL) {
		fprintf(stderr, "compile: %s\n", err);
		exit(1);
	}
	if (compile_ms != NULL)
		*compile_ms = (cpu_us() - t0) / 1000.0;
	rules_def_free(d);
	free(text);
	return rs;
}

static struct rules_set *make_set(size_t u, size_t n, double *compile_ms)
{
	return make_set_from(u, n, NULL, compile_ms);
}

/*
 * Edit rule `at` of a 10,000-rule set (its value gains a word) and compile
 * the edited set twice: whole, and reusing the set before the edit.
 */
static void bench_edit(const char *what, int regex, size_t at)
{
	struct rules_set *before, *full, *reuse;
	double ms_before, ms_full, ms_reuse;
	unsigned built, reused, fbuilt, freused;

	with_regex = regex;
	edit_at = SIZE_MAX;
	before = make_set_from(0, 10000, NULL, &ms_before);
	edit_at = at;
	full = make_set_from(0, 10000, NULL, &ms_full);
	rules_set_compile_stats(full, &fbuilt, &freused);
	reuse = make_set_from(0, 10000, before, &ms_reuse);
	rules_set_compile_stats(reuse, &built, &reused);
	/* the reused set must not depend on the one it was made from */
	rules_set_free(before);
	printf("10000 rules%s, edit of %s (rule %zu): full compile %.1f ms (%u databases),"
	       " with reuse %.1f ms (%u built, %u reused)\n", regex ? " (10% regex)" : "", what,
	       at, ms_full, fbuilt, ms_reuse, built, reused);
	rules_set_free(full);
	rules_set_free(reuse);
	with_regex = 0;
	edit_at = SIZE_MAX;
}

/* A 5 KB message a fleet reader gets: plain text, a few headers. */
static char *make_message(size_t *len)
{
	size_t cap = 8192, o = 0, i;
	char *m = xmalloc(cap);

	o += (size_t)snprintf(m + o, cap - o,
			      "Received: from mx.fleet.example by gw.example.org\r\n"
			      "From: Harbour Master <harbour@port.example>\r\n"
			      "To: Crew <crew@example.org>, ops@example.org\r\n"
			      "Cc: bridge@example.org\r\n"
			      "Subject: Weekly harbour schedule and berth assignments\r\n"
			      "List-Id: <harbour.port.example>\r\n"
			      "Message-ID: <bench@port.example>\r\n"
			      "Date: Mon, 1 Dec 2026 08:00:00 +0000\r\n"
			      "MIME-Version: 1.0\r\n"
			      "Content-Type: text/plain; charset=utf-8\r\n\r\n");
	for (i = 0; o + 100 < 5000; i++)
		o += (size_t)snprintf(m + o, cap - o, "Berth %zu: vessel arrives at %02zu:00,"
				      " pilot on board, tugs two.\r\n", i, i % 24);
	*len = o;
	return m;
}

int main(int argc, char **argv)
{
	static const size_t sizes[] = { 200, 10000 };
	struct mime_limits lim;
	struct mime_view *view;
	struct rules_input in;
	struct rules_result rr;
	const char *rcpt = "crew@example.org";
	char err[200];
	size_t len, s, i, iters = 2000;
	char *msg;

	if (argc == 3 && strcmp(argv[1], "-n") == 0)
		iters = (size_t)strtoul(argv[2], NULL, 10);
	mime_init();
	mime_limits_default(&lim);
	msg = make_message(&len);
	if (mime_parse(msg, len, &lim, &view, err, sizeof(err)) < 0) {
		fprintf(stderr, "mime: %s\n", err);
		return 1;
	}
	memset(&in, 0, sizeof(in));
	in.mime = view;
	in.sender = "harbour@port.example";
	in.rcpts = &rcpt;
	in.nrcpts = 1;
	in.client_addr = "192.0.2.10";
	in.size = (int64_t)len;
	printf("message: %zu octets\n", len);
	for (s = 0; s < ARRAY_LEN(sizes); s++) {
		double ms, t0, us;
		struct rules_set *rs = make_set(0, sizes[s], &ms);
		size_t n = sizes[s] >= 10000 ? iters / 4 + 1 : iters;

		for (i = 0; i < 10; i++) { /* warm: scratch allocated once */
			rules_eval(rs, &in, &rr);
			rules_result_free(&rr);
		}
		t0 = cpu_us();
		for (i = 0; i < n; i++) {
			rules_eval(rs, &in, &rr);
			rules_result_free(&rr);
		}
		us = (cpu_us() - t0) / (double)n;
		printf("%6zu rules: compile %.1f ms, memory %.2f MB, eval %.2f us per recipient\n",
		       sizes[s], ms, (double)rules_set_memory(rs) / 1e6, us);
		rules_set_free(rs);
	}
	{
		/* 50 recipients, each with their own 200-rule set. */
		struct rules_set *sets[50];
		size_t mem = 0;
		double t0, us;
		size_t n = iters / 10 + 1;

		for (i = 0; i < 50; i++) {
			sets[i] = make_set(i + 1, 200, NULL);
			mem += rules_set_memory(sets[i]);
		}
		for (i = 0; i < 50; i++) {
			rules_eval(sets[i], &in, &rr);
			rules_result_free(&rr);
		}
		t0 = cpu_us();
		for (s = 0; s < n; s++) {
			for (i = 0; i < 50; i++) {
				rules_eval(sets[i], &in, &rr);
				rules_result_free(&rr);
			}
		}
		us = (cpu_us() - t0) / (double)n;
		printf("50 recipients x 200 rules: %.1f us per message\n", us);
		printf("cache for 10,000 users x 200 rules: %.0f MB (%.1f KB per set)\n",
		       (double)mem / 50.0 * 10000.0 / 1e6, (double)mem / 50.0 / 1e3);
		for (i = 0; i < 50; i++)
			rules_set_free(sets[i]);
	}
	bench_edit("a contains literal", 0, 5001);
	bench_edit("an is literal", 0, 5000);
	bench_edit("a regex", 1, 5009);
	{
		/* the regex variant: full compile and evaluation */
		double ms, t0, us;
		struct rules_set *rs;
		size_t n = iters / 4 + 1;

		with_regex = 1;
		rs = make_set(0, 10000, &ms);
		with_regex = 0;
		for (i = 0; i < 10; i++) {
			rules_eval(rs, &in, &rr);
			rules_result_free(&rr);
		}
		t0 = cpu_us();
		for (i = 0; i < n; i++) {
			rules_eval(rs, &in, &rr);
			rules_result_free(&rr);
		}
		us = (cpu_us() - t0) / (double)n;
		printf("10000 rules (10%% regex): compile %.1f ms, memory %.2f MB, eval %.2f us per"
		       " recipient\n", ms, (double)rules_set_memory(rs) / 1e6, us);
		rules_set_free(rs);
	}
	mime_view_free(view);
	free(msg);
	mime_shutdown();
	return 0;
}
