/*
 * sieve_moat_eval: Moat's side of bench/sieve_side_by_side.py.
 *
 * Compiles one mailbox rule set (the JSON that GET {base}/export gives)
 * and runs it for one recipient on each message of a list, as the content
 * worker does: mime_parse() of the raw message, then rules_eval().  Prints
 * one line per message with the outcome (the folder, or the final action)
 * and the CPU time (thread clock) of the MIME walk and of the evaluation,
 * each the mean of ITER runs, so that the figures are not the clock's
 * resolution.
 *
 *   sieve_moat_eval RULES.json LIST RCPT ITER
 *
 * LIST: one message a line, "path<TAB>envelope sender".  Output, tab
 * separated: path, outcome, copy folders (comma separated or "-"),
 * mime_us, eval_us, index of the deciding rule (-1: none).  The first line, "# ...", gives the compile time.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mime/mime.h"
#include "rules/rules.h"
#include "util/util.h"

static double cpu_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	size_t cap = 65536, n = 0, got;
	char *buf;

	if (f == NULL) {
		perror(path);
		exit(1);
	}
	buf = xmalloc(cap + 1);
	while ((got = fread(buf + n, 1, cap - n, f)) > 0) {
		n += got;
		if (n == cap) {
			cap *= 2;
			buf = xrealloc(buf, cap + 1);
		}
	}
	fclose(f);
	buf[n] = '\0';
	*len = n;
	return buf;
}

/* What the recipient gets: a folder ("INBOX" for the inbox) or the final action. */
static const char *outcome(const struct rules_verdict *v)
{
	switch (v->action) {
	case RULES_ACT_NONE:
	case RULES_ACT_KEEP:
	case RULES_ACT_STOP:
	case RULES_ACT_MOVE:
		return v->folder != NULL ? v->folder : "INBOX";
	default:
		return rules_action_name(v->action);
	}
}

int main(int argc, char **argv)
{
	struct rules_def *d = NULL;
	struct rules_set *rs;
	struct mime_limits lim;
	char err[400], line[4096];
	const char *rcpt;
	size_t len, iters, i;
	char *text;
	double t0;
	FILE *list;

	if (argc != 5) {
		fprintf(stderr, "usage: sieve_moat_eval RULES.json LIST RCPT ITER\n");
		return 2;
	}
	rcpt = argv[3];
	iters = (size_t)strtoul(argv[4], NULL, 10);
	if (iters == 0)
		iters = 1;
	mime_init();
	mime_limits_default(&lim);
	text = slurp(argv[1], &len);
	t0 = cpu_us();
	if (rules_def_parse_kind(text, len, RULES_KIND_MAILBOX, &d, err, sizeof(err)) < 0) {
		fprintf(stderr, "parse: %s\n", err);
		return 1;
	}
	rs = rules_compile(d, err, sizeof(err));
	if (rs == NULL) {
		fprintf(stderr, "compile: %s\n", err);
		return 1;
	}
	printf("# compile_ms=%.1f memory_mb=%.2f\n", (cpu_us() - t0) / 1000.0,
	       (double)rules_set_memory(rs) / 1e6);
	rules_def_free(d);
	free(text);
	list = fopen(argv[2], "r");
	if (list == NULL) {
		perror(argv[2]);
		return 1;
	}
	while (fgets(line, sizeof(line), list) != NULL) {
		struct mime_view *view = NULL;
		struct rules_input in;
		struct rules_result rr;
		const struct rules_verdict *v;
		double mime_us, eval_us;
		char *tab, *msg;
		size_t mlen, c;

		line[strcspn(line, "\r\n")] = '\0';
		tab = strchr(line, '\t');
		if (tab == NULL)
			continue;
		*tab++ = '\0';
		msg = slurp(line, &mlen);
		t0 = cpu_us();
		for (i = 0; i < iters; i++) {
			if (view != NULL)
				mime_view_free(view);
			if (mime_parse(msg, mlen, &lim, &view, err, sizeof(err)) < 0) {
				fprintf(stderr, "%s: mime: %s\n", line, err);
				return 1;
			}
		}
		mime_us = (cpu_us() - t0) / (double)iters;
		memset(&in, 0, sizeof(in));
		in.mime = view;
		in.sender = tab;
		in.rcpts = &rcpt;
		in.nrcpts = 1;
		in.client_addr = "192.0.2.10";
		in.size = (int64_t)mlen;
		/* one run first: scratch space is allocated on the first use */
		if (rules_eval(rs, &in, &rr) < 0) {
			fprintf(stderr, "%s: eval failed\n", line);
			return 1;
		}
		rules_result_free(&rr);
		t0 = cpu_us();
		for (i = 0; i < iters; i++) {
			rules_eval(rs, &in, &rr);
			rules_result_free(&rr);
		}
		eval_us = (cpu_us() - t0) / (double)iters;
		rules_eval(rs, &in, &rr);
		v = rr.rcpt != NULL ? rr.rcpt[0] : rr.message;
		printf("%s\t%s\t", line, outcome(v));
		for (c = 0; c < v->ncopy_folders; c++)
			printf("%s%s", c ? "," : "", v->copy_folders[c]);
		printf("%s\t%.2f\t%.2f\t%ld\n", v->ncopy_folders ? "" : "-", mime_us, eval_us,
		       v->rule);
		rules_result_free(&rr);
		mime_view_free(view);
		free(msg);
	}
	fclose(list);
	rules_set_free(rs);
	mime_shutdown();
	return 0;
}
