/*
 * cli_learn: `moatd learn --spam|--ham|--forget PATH...` trains the
 * statistical filter from files, directories (walked, sorted, a few levels
 * deep: maildirs too) and mbox files; `moatd classify FILE...` prints each
 * message's spam probability, the verdict at the default cut-offs and the
 * tokens that decided it.  Both work on the data directory's database
 * directly, with moatd running or not (docs/score.md).
 *
 * Learning is idempotent: a message already learned as that class is
 * counted "already" and changes nothing; learned as the other class it
 * moves.  Changes are written every LEARN_FLUSH messages in one short
 * transaction.  Paths that cannot be read are reported and make the exit
 * status 1, after the other paths are learned.
 */
#include "cli.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "../mime/mime.h"
#include "../score/score_bayes.h"
#include "../store/store.h"
#include "../store/store_bayes.h"
#include "../util/util.h"

#define LEARN_FLUSH 500                      /* messages per write transaction */
#define WALK_DEPTH 4                         /* directory levels walked */
#define MBOX_MAX ((size_t)1 << 30)           /* largest file read (an mbox) */

/* ---- reading messages -------------------------------------------------- */

typedef int (*message_fn)(const char *label, const char *buf, size_t len, void *arg);

struct walk {
	const char *who;
	size_t max_message;
	message_fn fn;
	void *arg;
	int errors;          /* paths that could not be read */
	int skipped;         /* messages over max_message_size */
};

static int read_file(const char *path, char **out, size_t *outlen, char *err, size_t errsz)
{
	FILE *f = fopen(path, "rb");
	struct stat sb;
	char *buf;
	size_t n;

	if (f == NULL) {
		snprintf(err, errsz, "%s", strerror(errno));
		return -1;
	}
	if (fstat(fileno(f), &sb) < 0) {
		snprintf(err, errsz, "%s", strerror(errno));
		fclose(f);
		return -1;
	}
	if ((size_t)sb.st_size > MBOX_MAX) {
		snprintf(err, errsz, "larger than %zu bytes", MBOX_MAX);
		fclose(f);
		return -1;
	}
	buf = xmalloc((size_t)sb.st_size + 1);
	n = fread(buf, 1, (size_t)sb.st_size, f);
	if (ferror(f)) {
		snprintf(err, errsz, "%s", strerror(errno));
		fclose(f);
		free(buf);
		return -1;
	}
	fclose(f);
	buf[n] = '\0';
	*out = buf;
	*outlen = n;
	return 0;
}

static int one_message(struct walk *w, const char *label, const char *buf, size_t len)
{
	if (len > w->max_message) {
		fprintf(stderr, "moatd %s: %s: larger than max_message_size, skipped\n", w->who,
			label);
		w->skipped++;
		return 0;
	}
	return w->fn(label, buf, len, w->arg);
}

/* A file: one message, or an mbox (first line "From ") of one or more. */
static int walk_file(struct walk *w, const char *path)
{
	char err[256];
	char label[1200];
	char *buf;
	size_t len, start = 0, n = 0;
	int rc = 0;

	if (read_file(path, &buf, &len, err, sizeof(err)) < 0) {
		fprintf(stderr, "moatd %s: %s: %s\n", w->who, path, err);
		w->errors++;
		return 0;
	}
	if (len < 5 || memcmp(buf, "From ", 5) != 0) {
		rc = one_message(w, path, buf, len);
		free(buf);
		return rc;
	}
	/* mbox: a message runs from its "From " line to the next one at a line start */
	while (start < len && rc == 0) {
		size_t end = start + 5;
		const char *p;

		p = memmem(buf + end, len - end, "\nFrom ", 6);
		end = p == NULL ? len : (size_t)(p - buf) + 1;
		n++;
		/* the blank line after each message (before the next "From " line and
		 * at the end) is the separator's */
		{
			size_t mlen = end - start;

			if (mlen >= 2 && buf[end - 1] == '\n' && buf[end - 2] == '\n')
				mlen--;
			if (n == 1 && end == len)
				snprintf(label, sizeof(label), "%s", path);
			else
				snprintf(label, sizeof(label), "%s:%zu", path, n);
			rc = one_message(w, label, buf + start, mlen);
		}
		start = end;
	}
	free(buf);
	return rc;
}

static int walk_path(struct walk *w, const char *path, int depth)
{
	struct stat sb;
	struct dirent **ents;
	char sub[1100];
	int n, rc = 0;

	if (stat(path, &sb) < 0) {
		fprintf(stderr, "moatd %s: %s: %s\n", w->who, path, strerror(errno));
		w->errors++;
		return 0;
	}
	if (S_ISREG(sb.st_mode))
		return walk_file(w, path);
	if (!S_ISDIR(sb.st_mode)) {
		fprintf(stderr, "moatd %s: %s: not a file or a directory\n", w->who, path);
		w->errors++;
		return 0;
	}
	if (depth >= WALK_DEPTH)
		return 0;
	n = scandir(path, &ents, NULL, alphasort);
	if (n < 0) {
		fprintf(stderr, "moatd %s: %s: %s\n", w->who, path, strerror(errno));
		w->errors++;
		return 0;
	}
	for (int i = 0; i < n; i++) {
		/* dot files: ".", "..", editors' and maildir's scratch */
		if (rc == 0 && ents[i]->d_name[0] != '.') {
			if ((size_t)snprintf(sub, sizeof(sub), "%s/%s", path, ents[i]->d_name) >=
			    sizeof(sub)) {
				fprintf(stderr, "moatd %s: %s/%s: path too long\n", w->who, path,
					ents[i]->d_name);
				w->errors++;
			} else {
				rc = walk_path(w, sub, depth + 1);
			}
		}
		free(ents[i]);
	}
	free(ents);
	return rc;
}

static double cpu_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int parse_uid(const char *who, const char *s, int64_t *uid)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < 1) {
		fprintf(stderr, "moatd %s: --user %s: not a user id\n", who, s);
		return -1;
	}
	*uid = v;
	return 0;
}

/* ---- learn --------------------------------------------------------------- */

static void learn_usage(FILE *out)
{
	fprintf(out,
		"usage: moatd learn [-c FILE] [--data-dir DIR] --spam|--ham|--forget [--user ID]"
		" PATH...\n"
		"  PATH: a message file, an mbox, or a directory of them (maildirs too)\n"
		"  --spam, --ham   learn the messages as that class (a message learned as the\n"
		"                  other class moves; one learned before is not counted twice)\n"
		"  --forget        unlearn the messages\n"
		"  --user ID       the directory user's own model (default: the global one)\n"
		"Tokens not learned for %d days with a count of at most %d are expired after.\n",
		BAYES_EXPIRE_DAYS, BAYES_EXPIRE_MAX_COUNT);
}

struct learn_run {
	struct bayes_learner *l;
	char cls;
	size_t counts[5];    /* per enum bayes_outcome */
	int failed;          /* a message or a flush failed */
};

static int learn_one(const char *label, const char *buf, size_t len, void *arg)
{
	struct learn_run *r = arg;
	enum bayes_outcome o;
	char err[300];

	if (bayes_learn(r->l, buf, len, r->cls, &o, err, sizeof(err)) < 0) {
		fprintf(stderr, "moatd learn: %s: %s\n", label, err);
		r->failed = 1;
		return -1;
	}
	r->counts[o]++;
	if (bayes_learner_pending(r->l) >= LEARN_FLUSH &&
	    bayes_learner_flush(r->l, err, sizeof(err)) < 0) {
		fprintf(stderr, "moatd learn: %s\n", err);
		r->failed = 1;
		return -1;
	}
	return 0;
}

int cli_learn_main(int argc, char **argv)
{
	struct conf conf;
	struct store *st;
	struct learn_run r;
	struct walk w;
	char err[1400];
	int64_t uid = 0, ns, nh, ntok, removed = 0;
	int i, npaths = 0, have_cls = 0, status;
	double t0, ms;

	if (cli_load_conf(&argc, &argv, &conf, err, sizeof(err)) < 0) {
		fprintf(stderr, "moatd learn: %s\n", err);
		return 1;
	}
	memset(&r, 0, sizeof(r));
	for (i = 0; i < argc; i++) {
		const char *a = argv[i];

		if (strcmp(a, "help") == 0 || strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			learn_usage(stdout);
			return 0;
		}
		if (strcmp(a, "--spam") == 0 || strcmp(a, "--ham") == 0 ||
		    strcmp(a, "--forget") == 0) {
			char c = a[2] == 's' ? 's' : a[2] == 'h' ? 'h' : 0;

			if (have_cls && c != r.cls) {
				fprintf(stderr, "moatd learn: one of --spam, --ham, --forget\n");
				return 2;
			}
			r.cls = c;
			have_cls = 1;
		} else if (strcmp(a, "--user") == 0) {
			if (i + 1 >= argc || parse_uid("learn", argv[i + 1], &uid) < 0)
				return 2;
			i++;
		} else if (a[0] == '-' && a[1] != '\0') {
			fprintf(stderr, "moatd learn: unknown option %s\n", a);
			learn_usage(stderr);
			return 2;
		} else {
			argv[npaths++] = argv[i];
		}
	}
	if (!have_cls || npaths == 0) {
		learn_usage(stderr);
		return 2;
	}
	st = cli_open_store(&conf, "learn", 1);
	if (st == NULL)
		return 1;
	r.l = bayes_learner_open(st, uid, err, sizeof(err));
	if (r.l == NULL) {
		fprintf(stderr, "moatd learn: %s\n", err);
		store_close(st);
		return 1;
	}
	memset(&w, 0, sizeof(w));
	w.who = "learn";
	w.max_message = (size_t)conf.max_message_size;
	w.fn = learn_one;
	w.arg = &r;
	t0 = cpu_ms();
	for (i = 0; i < npaths && !r.failed; i++)
		walk_path(&w, argv[i], 0);
	if (!r.failed && bayes_learner_flush(r.l, err, sizeof(err)) < 0) {
		fprintf(stderr, "moatd learn: %s\n", err);
		r.failed = 1;
	}
	ms = cpu_ms() - t0;
	if (!r.failed && bayes_expire(st, uid, time_now_ms() / 86400000LL, BAYES_EXPIRE_DAYS,
				      BAYES_EXPIRE_MAX_COUNT, &removed) < 0) {
		fprintf(stderr, "moatd learn: expiry: %s\n", store_bayes_errmsg(st));
		r.failed = 1;
	}
	if (store_bayes_model_get(st, uid, &ns, &nh) < 0 ||
	    store_bayes_token_count(st, uid, &ntok) < 0) {
		ns = nh = ntok = -1;
	}
	printf("learned %zu, already %zu, moved %zu, forgotten %zu, not learned %zu,"
	       " skipped %d, unreadable %d\n",
	       r.counts[BAYES_LEARNED], r.counts[BAYES_ALREADY], r.counts[BAYES_MOVED],
	       r.counts[BAYES_FORGOTTEN], r.counts[BAYES_NOT_LEARNED], w.skipped, w.errors);
	printf("model %lld: spam %lld, ham %lld, tokens %lld, expired %lld; %.0f ms CPU\n",
	       (long long)uid, (long long)ns, (long long)nh, (long long)ntok, (long long)removed,
	       ms);
	status = r.failed || w.errors > 0 ? 1 : 0;
	bayes_learner_free(r.l);
	store_close(st);
	return status;
}

/* ---- classify ------------------------------------------------------------ */

static void classify_usage(FILE *out)
{
	fprintf(out,
		"usage: moatd classify [-c FILE] [--data-dir DIR] [--user ID] [--top N]"
		" [--combiner fisher|geomean|osb] FILE...\n"
		"  evaluation: [--min-dev D] [--max-used N] [--strength S] [--max-distance 0-4]\n"
		"  (docs/score.md)\n"
		"  prints per message: FILE, the spam probability (0 ham .. 1 spam), the verdict\n"
		"  (ham <= %.2f < unsure < %.2f <= spam) and the evidence (ln of the ham tail\n"
		"  over the spam tail: orders messages whose probability is 0 or 1), then the\n"
		"  N (default 5) tokens that decided most: f(w), spam and ham counts, the token\n",
		BAYES_HAM_CUTOFF, BAYES_SPAM_CUTOFF);
}

struct classify_run {
	const struct bayes_model *m;
	const uint8_t *key;
	struct bayes_params p;
	struct mime_limits lim;
	int top;
	size_t n;
	double tok_ms;        /* CPU of tokenize + score */
	double mime_ms;       /* CPU of the message walk */
	int failed;
};

static int classify_one(const char *label, const char *buf, size_t len, void *arg)
{
	struct classify_run *c = arg;
	struct mime_view *v;
	struct bayes_tokens t;
	struct bayes_result r;
	char err[300];
	double t0, t1;

	bayes_strip_from_line(&buf, &len);
	t0 = cpu_ms();
	if (mime_parse(buf, len, &c->lim, &v, err, sizeof(err)) < 0) {
		fprintf(stderr, "moatd classify: %s: %s\n", label, err);
		c->failed = 1;
		return 0;
	}
	t1 = cpu_ms();
	bayes_tokenize(v, c->key, c->top > 0, &t);
	bayes_classify(c->m, &t, &c->p, &r);
	c->tok_ms += cpu_ms() - t1;
	c->mime_ms += t1 - t0;
	c->n++;
	printf("%s\t%.6f\t%s\t%.4f\n", label, r.prob, r.verdict, r.evidence);
	for (size_t i = 0; i < r.nclues && (int)i < c->top; i++) {
		char esc[200];
		const char *txt = bayes_feature_text(&t, r.clues[i].feature);

		log_escape(txt, strlen(txt), esc, sizeof(esc));
		printf("\t%.4f\tspam=%u\tham=%u\t%s\n", r.clues[i].f, r.clues[i].spam,
		       r.clues[i].ham, esc);
	}
	bayes_tokens_free(&t);
	mime_view_free(v);
	return 0;
}

int cli_classify_main(int argc, char **argv)
{
	struct conf conf;
	struct store *st;
	struct bayes_model *m;
	struct classify_run c;
	struct walk w;
	uint8_t key[16];
	char err[1400];
	int64_t uid = 0, used_uid, ns, nh;
	int i, npaths = 0;
	double t0, load_ms;

	if (cli_load_conf(&argc, &argv, &conf, err, sizeof(err)) < 0) {
		fprintf(stderr, "moatd classify: %s\n", err);
		return 1;
	}
	memset(&c, 0, sizeof(c));
	bayes_params_default(&c.p);
	c.top = 5;
	for (i = 0; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(a, "help") == 0 || strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			classify_usage(stdout);
			return 0;
		}
		if (strcmp(a, "--user") == 0) {
			if (v == NULL || parse_uid("classify", v, &uid) < 0)
				return 2;
			i++;
		} else if (strcmp(a, "--top") == 0) {
			char *end;
			long n = v != NULL ? strtol(v, &end, 10) : -1;

			if (v == NULL || *end != '\0' || n < 0 || n > BAYES_MAX_CLUES) {
				fprintf(stderr, "moatd classify: --top: 0 to %d\n", BAYES_MAX_CLUES);
				return 2;
			}
			c.top = (int)n;
			i++;
		} else if (strcmp(a, "--max-distance") == 0) {
			char *end;
			long n = v != NULL ? strtol(v, &end, 10) : -1;

			if (v == NULL || *end != '\0' || n < 0 || n > BAYES_WINDOW - 1) {
				fprintf(stderr, "moatd classify: --max-distance: 0 to %d\n",
					BAYES_WINDOW - 1);
				return 2;
			}
			c.p.max_distance = (int)n;
			i++;
		} else if (strcmp(a, "--min-dev") == 0 || strcmp(a, "--strength") == 0 ||
			   strcmp(a, "--max-used") == 0) {
			char *end;
			double d = v != NULL ? strtod(v, &end) : -1;

			if (v == NULL || *end != '\0' || !(d >= 0 && d <= 1e6)) {
				fprintf(stderr, "moatd classify: %s: a number >= 0\n", a);
				return 2;
			}
			if (a[2] == 'm' && a[3] == 'i')
				c.p.min_dev = d < 0.5 ? d : 0.49;
			else if (a[2] == 's')
				c.p.s = d > 0 ? d : 1e-6;
			else
				c.p.max_used = (size_t)d;
			i++;
		} else if (strcmp(a, "--combiner") == 0) {
			if (v == NULL || bayes_combiner_parse(v, &c.p.combiner) < 0) {
				fprintf(stderr,
					"moatd classify: --combiner: fisher, geomean or osb\n");
				return 2;
			}
			i++;
		} else if (a[0] == '-' && a[1] != '\0') {
			fprintf(stderr, "moatd classify: unknown option %s\n", a);
			classify_usage(stderr);
			return 2;
		} else {
			argv[npaths++] = argv[i];
		}
	}
	if (npaths == 0) {
		classify_usage(stderr);
		return 2;
	}
	st = cli_open_store(&conf, "classify", 0);
	if (st == NULL)
		return 1;
	t0 = cpu_ms();
	if (bayes_model_load(st, uid, &m, key, &used_uid, err, sizeof(err)) < 0) {
		fprintf(stderr, "moatd classify: %s\n", err);
		store_close(st);
		return 1;
	}
	load_ms = cpu_ms() - t0;
	store_close(st);
	bayes_model_counts(m, &ns, &nh);
	if (ns == 0 || nh == 0)
		fprintf(stderr, "moatd classify: the model has %lld spam and %lld ham learned:"
			" every message is unsure until both are learned (moatd learn)\n",
			(long long)ns, (long long)nh);
	c.m = m;
	c.key = key;
	mime_limits_default(&c.lim);
	memset(&w, 0, sizeof(w));
	w.who = "classify";
	w.max_message = (size_t)conf.max_message_size;
	w.fn = classify_one;
	w.arg = &c;
	for (i = 0; i < npaths; i++)
		walk_path(&w, argv[i], 0);
	fprintf(stderr,
		"moatd classify: %zu messages, model %lld (spam %lld, ham %lld, %zu tokens,"
		" loaded in %.0f ms CPU); per message %.1f us CPU tokenize+score, %.1f us"
		" message walk\n",
		c.n, (long long)used_uid, (long long)ns, (long long)nh, bayes_model_size(m), load_ms,
		c.n ? c.tok_ms * 1000.0 / (double)c.n : 0.0,
		c.n ? c.mime_ms * 1000.0 / (double)c.n : 0.0);
	bayes_model_free(m);
	return c.failed || w.errors > 0 ? 1 : 0;
}
