/*
 * rules_bench: cost of a server rule set on real messages.
 *
 * Builds a rule set of a realistic mix (deterministic, seeded): literals on
 * Subject and From, body phrases, URL hosts, attachment names, envelope
 * and list checks, and 10% regular expressions (a few of them only PCRE2
 * can run).  Most rules do not match, so a message walks the whole set,
 * which is the expensive case.  Reports:
 *   - compile time and compiled memory for 1,000 and 10,000 rules;
 *   - CPU time per message of rules_eval() alone and of mime_parse() +
 *     rules_eval(), for messages of about 5 KB and about 50 KB taken from
 *     the directories given (the SpamAssassin corpus).
 *
 *   rules_bench [-n ITER] [-r RULES] DIR ...
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "mime/mime.h"
#include "rules/rules.h"
#include "util/util.h"

struct msg {
	char *data;
	size_t len;
	struct mime_view *view;
};

static struct msg small[64], large[64];
static size_t nsmall, nlarge;

static double cpu_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static void load(const char *path)
{
	FILE *f;
	struct stat st;
	struct msg *m;
	size_t skip = 0;

	if (stat(path, &st) != 0 || !S_ISREG(st.st_mode) ||
	    strstr(path, ".json") != NULL)
		return;
	if (st.st_size >= 4000 && st.st_size <= 6000 && nsmall < 64)
		m = &small[nsmall++];
	else if (st.st_size >= 40000 && st.st_size <= 60000 && nlarge < 64)
		m = &large[nlarge++];
	else
		return;
	f = fopen(path, "rb");
	if (f == NULL)
		exit(1);
	m->data = xmalloc((size_t)st.st_size);
	m->len = fread(m->data, 1, (size_t)st.st_size, f);
	fclose(f);
	if (m->len > 5 && memcmp(m->data, "From ", 5) == 0) {
		char *nl = memchr(m->data, '\n', m->len);

		skip = nl != NULL ? (size_t)(nl - m->data) + 1 : 0;
	}
	memmove(m->data, m->data + skip, m->len - skip);
	m->len -= skip;
}

static void load_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char path[4096];

	if (d == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		load(path);
	}
	closedir(d);
}

static const char *const words[] = {
	"free", "money", "offer", "winner", "credit", "loan", "viagra", "casino", "mortgage",
	"refinance", "investment", "bonus", "prize", "cheap", "discount", "pharmacy", "rolex",
	"replica", "lottery", "urgent", "million", "dollars", "weight", "diet", "pills", "click",
	"unsubscribe", "limited", "guaranteed", "opportunity", "business", "income", "cash",
	"debt", "insurance", "quote", "stock", "alert", "earn", "home", "work", "save", "deal",
	"order", "now", "today", "act", "best", "price", "online",
};
#define NWORDS (sizeof(words) / sizeof(words[0]))

static unsigned long long rng = 88172645463325252ULL;

static unsigned rnd(unsigned n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (unsigned)(rng % n);
}

/* One rule object of the mix; i makes every literal distinct. */
static json_t *make_rule(size_t i)
{
	json_t *r = json_object(), *leaf = json_object(), *act = json_object();
	const char *w1 = words[rnd(NWORDS)], *w2 = words[rnd(NWORDS)];
	unsigned kind = rnd(100);
	char name[64], val[256];

	snprintf(name, sizeof(name), "rule %zu", i);
	json_object_set_new(r, "name", json_string(name));
	if (kind < 30) {                /* Subject phrase */
		snprintf(val, sizeof(val), "%s %s %zu", w1, w2, i);
		json_object_set_new(leaf, "field", json_string("header"));
		json_object_set_new(leaf, "header", json_string("Subject"));
		json_object_set_new(leaf, "op", json_string("contains"));
	} else if (kind < 45) {         /* From domain */
		snprintf(val, sizeof(val), "@%s%zu.example", w1, i);
		json_object_set_new(leaf, "field", json_string("header"));
		json_object_set_new(leaf, "header", json_string("From"));
		json_object_set_new(leaf, "op", json_string(kind < 40 ? "contains" : "ends_with"));
		if (kind >= 40)
			snprintf(val, sizeof(val), "%s%zu.example>", w1, i);
	} else if (kind < 70) {         /* body phrase */
		snprintf(val, sizeof(val), "%s %s %s%zu", w1, w2, words[rnd(NWORDS)], i);
		json_object_set_new(leaf, "field", json_string("body"));
		json_object_set_new(leaf, "op", json_string("contains"));
	} else if (kind < 78) {         /* URL host */
		snprintf(val, sizeof(val), ".%s-%s%zu.example", w1, w2, i);
		json_object_set_new(leaf, "field", json_string("url_host"));
		json_object_set_new(leaf, "op", json_string("ends_with"));
	} else if (kind < 82) {         /* attachment */
		snprintf(val, sizeof(val), "%s%zu.exe", w1, i);
		json_object_set_new(leaf, "field", json_string("attachment_name"));
		json_object_set_new(leaf, "op", json_string("is"));
	} else if (kind < 86) {         /* envelope sender */
		snprintf(val, sizeof(val), "%s%zu@", w1, i);
		json_object_set_new(leaf, "field", json_string("sender"));
		json_object_set_new(leaf, "op", json_string("starts_with"));
	} else if (kind < 90) {         /* sender list */
		snprintf(val, sizeof(val), "list%zu", i % 50);
		json_object_set_new(leaf, "field", json_string("sender"));
		json_object_set_new(leaf, "op", json_string("in_list"));
	} else {                        /* 10% regular expressions */
		unsigned re = rnd(10);

		if (re == 0) /* look-ahead: PCRE2 */
			snprintf(val, sizeof(val), "\\b%s(?=\\s+%s%zu\\b)", w1, w2, i);
		else if (re < 5)
			snprintf(val, sizeof(val), "%s[\\s_.-]*%s\\d{%zu}", w1, w2, 2 + i % 5);
		else
			snprintf(val, sizeof(val), "(%s|%s)\\W{1,3}%zu", w1, w2, i);
		json_object_set_new(leaf, "field", json_string(re < 7 ? "body" : "header"));
		if (re >= 7)
			json_object_set_new(leaf, "header", json_string("Subject"));
		json_object_set_new(leaf, "op", json_string("matches"));
	}
	json_object_set_new(leaf, "value", json_string(val));
	json_object_set_new(r, "when", leaf);
	json_object_set_new(act, "type", json_string(i % 3 ? "quarantine" : "tag"));
	if (i % 3 == 0)
		json_object_set_new(act, "subject_prefix", json_string("[SPAM]"));
	json_object_set_new(r, "action", act);
	return r;
}

static struct rules_set *build(size_t n, double *compile_ms, size_t *json_bytes)
{
	json_t *arr = json_array();
	struct rules_def *d;
	struct rules_set *rs;
	char err[512], *s;
	double t0;
	size_t i;

	rng = 88172645463325252ULL;
	for (i = 0; i < n; i++)
		json_array_append_new(arr, make_rule(i));
	s = json_dumps(arr, JSON_COMPACT);
	json_decref(arr);
	*json_bytes = strlen(s);
	t0 = cpu_us();
	if (rules_def_parse(s, strlen(s), &d, err, sizeof(err)) < 0) {
		fprintf(stderr, "parse: %s\n", err);
		exit(1);
	}
	rs = rules_compile(d, err, sizeof(err));
	*compile_ms = (cpu_us() - t0) / 1e3;
	rules_def_free(d);
	free(s);
	if (rs == NULL) {
		fprintf(stderr, "compile: %s\n", err);
		exit(1);
	}
	return rs;
}

static int in_list(void *arg, const char *list, const char *value)
{
	(void)arg;
	(void)list;
	(void)value;
	return 0;
}

static void input_for(struct rules_input *in, const struct mime_view *v, size_t len)
{
	static const char *rcpts[] = { "bob@example.org", "carol@example.org" };

	memset(in, 0, sizeof(*in));
	in->mime = v;
	in->sender = "someone@example.net";
	in->rcpts = rcpts;
	in->nrcpts = 2;
	in->client_addr = "198.51.100.7";
	in->helo = "mail.example.net";
	in->size = (int64_t)len;
	in->in_list = in_list;
}

static void run(const char *label, struct rules_set *rs, struct msg *m, size_t n, int iter)
{
	struct mime_limits lim;
	double t0, eval_us, full_us;
	size_t i, matched = 0;
	int k;

	if (n == 0) {
		printf("%-6s no messages of that size found\n", label);
		return;
	}
	mime_limits_default(&lim);
	for (i = 0; i < n; i++) {
		char err[256];

		if (m[i].view == NULL && mime_parse(m[i].data, m[i].len, &lim, &m[i].view, err,
						    sizeof(err)) < 0) {
			fprintf(stderr, "mime_parse: %s\n", err);
			exit(1);
		}
	}
	t0 = cpu_us();
	for (k = 0; k < iter; k++) {
		for (i = 0; i < n; i++) {
			struct rules_input in;
			struct rules_result res;

			input_for(&in, m[i].view, m[i].len);
			rules_eval(rs, &in, &res);
			matched += res.nhits > 0;
			rules_result_free(&res);
		}
	}
	eval_us = (cpu_us() - t0) / ((double)iter * (double)n);
	t0 = cpu_us();
	for (k = 0; k < iter; k++) {
		for (i = 0; i < n; i++) {
			struct rules_input in;
			struct rules_result res;
			struct mime_view *v;
			char err[256];

			mime_parse(m[i].data, m[i].len, &lim, &v, err, sizeof(err));
			input_for(&in, v, m[i].len);
			rules_eval(rs, &in, &res);
			rules_result_free(&res);
			mime_view_free(v);
		}
	}
	full_us = (cpu_us() - t0) / ((double)iter * (double)n);
	printf("%-6s %3zu messages x %d: rules only %8.1f us/msg, mime_parse + rules %8.1f us/msg"
	       " (%zu evaluations hit a rule)\n", label, n, iter, eval_us, full_us, matched);
}

int main(int argc, char **argv)
{
	int iter = 20, i = 1;
	size_t nrules = 1000, jb;
	struct rules_set *rs;
	double ms;

	while (i < argc && argv[i][0] == '-') {
		if (strcmp(argv[i], "-n") == 0 && i + 1 < argc)
			iter = (int)strtol(argv[i + 1], NULL, 10);
		else if (strcmp(argv[i], "-r") == 0 && i + 1 < argc)
			nrules = (size_t)strtoull(argv[i + 1], NULL, 10);
		i += 2;
	}
	if (iter < 1)
		iter = 1;
	mime_init();
	for (; i < argc; i++)
		load_dir(argv[i]);

	rs = build(10000, &ms, &jb);
	printf("compile 10000 rules: %8.1f ms CPU (parse + compile of %zu bytes of JSON), "
	       "compiled set %zu KiB\n", ms, jb, rules_set_memory(rs) / 1024);
	rules_set_free(rs);
	rs = build(nrules, &ms, &jb);
	printf("compile %5zu rules: %8.1f ms CPU (parse + compile of %zu bytes of JSON), "
	       "compiled set %zu KiB\n", nrules, ms, jb, rules_set_memory(rs) / 1024);
	run("~5KB", rs, small, nsmall, iter);
	run("~50KB", rs, large, nlarge, iter);
	rules_set_free(rs);
	for (size_t k = 0; k < nsmall; k++) {
		mime_view_free(small[k].view);
		free(small[k].data);
	}
	for (size_t k = 0; k < nlarge; k++) {
		mime_view_free(large[k].view);
		free(large[k].data);
	}
	mime_shutdown();
	return 0;
}
