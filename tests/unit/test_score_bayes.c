/*
 * Unit tests for the statistical filter (daemon/score/score_bayes*): the
 * keyed hash against SipHash's reference vectors, the tokenizer (words,
 * numbers, long words, headers with their names, ignored headers, URL hosts,
 * attachments, OSB pairs and their window, duplicates, the feature bound),
 * Robinson's f(w) and the chi-square function against values computed in
 * Python, the combiners, classification on known counts, learning
 * (idempotence, moving, forgetting) and expiry through a real store.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "mime/mime.h"
#include "score/score_bayes.h"
#include "score/score_models.h"
#include "store/store.h"
#include "store/store_bayes.h"
#include "util/util.h"
#include "tmpdb.h"

static const uint8_t KEY[16] = { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15 };

static void tokenize_msg(const char *msg, int keep_text, struct bayes_tokens *t)
{
	struct mime_view *v = NULL;
	struct mime_limits lim;
	char err[128];

	mime_limits_default(&lim);
	if (mime_parse(msg, strlen(msg), &lim, &v, err, sizeof(err)) != 0)
		fail_msg("mime_parse: %s", err);
	bayes_tokenize(v, KEY, keep_text, t);
	mime_view_free(v);
}

static int has_text(const struct bayes_tokens *t, const char *want)
{
	for (size_t i = 0; i < t->n; i++)
		if (strcmp(bayes_feature_text(t, i), want) == 0)
			return 1;
	return 0;
}

/* ---- SipHash-2-4 reference vectors (key 00..0f, message 00..n-1) ------- */

static void test_siphash(void **state)
{
	static const struct {
		size_t len;
		uint64_t want;
	} cases[] = {
		{ 0, 0x726fdb47dd0e0e31ULL },
		{ 1, 0x74f839c593dc67fdULL },
		{ 8, 0x93f5f5799a932462ULL },
		{ 15, 0xa129ca6149be45e5ULL },
	};
	uint8_t msg[64];

	(void)state;
	for (size_t i = 0; i < sizeof(msg); i++)
		msg[i] = (uint8_t)i;
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		uint64_t got = bayes_siphash(KEY, msg, cases[i].len);

		if (got != cases[i].want)
			fail_msg("siphash len %zu: got %016llx, want %016llx", cases[i].len,
				 (unsigned long long)got, (unsigned long long)cases[i].want);
	}
}

/* ---- tokenizer, table-driven -------------------------------------------- */

#define MAXW 8

static const struct {
	const char *name;
	const char *msg;
	const char *want[MAXW];     /* feature texts that must be there */
	const char *absent[MAXW];   /* and must not */
} tok_cases[] = {
	{ "words are case-folded, OSB pairs over a window of 5",
	  "Subject: x\n\nHello World one two three four\n",
	  { "hello", "world", "hello world", "hello ~ one", "hello ~~ two", "hello ~~~ three",
	    "world ~~~ four", NULL },
	  { "Hello", "hello ~~~~ four", NULL } },
	{ "numbers are bucketed by digits, money keeps its sign",
	  "Subject: x\n\nCall 5551234 for $100 or 3.50\n",
	  { "call", "#7", "$#3", "#3", "call #7", NULL },
	  { "5551234", "$100", NULL } },
	{ "short words skipped, long ones summarised",
	  "Subject: x\n\na I ok aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n",
	  { "ok", "skip:a60", NULL },
	  { "a", "i", NULL } },
	{ "joiners inside a word, not at its ends",
	  "Subject: x\n\ndon't e-mail me at bob@example.com. -- end-\n",
	  { "don't", "e-mail", "bob@example.com", "end", NULL },
	  { "end-", "example.com.", NULL } },
	{ "header fields keep their names; Subject gets pairs",
	  "From: Alice <alice@example.org>\nSubject: Free Money\nX-Mailer: Foo 1.0\n\nbody\n",
	  { "from:alice", "from:alice@example.org", "subject:free", "subject:money",
	    "subject:free subject:money", "x-mailer:foo", "hdr:x-mailer", NULL },
	  { "free", "alice", NULL } },
	{ "addresses in header fields give their domain too, body words do not",
	  "From: Alice <alice@example.org>\nReply-To: bob@Shop.Example.NET\nSubject: a@b.example\n"
	  "\nmail carol@example.com\n",
	  { "from:@example.org", "reply-to:@shop.example.net", "reply-to:bob@shop.example.net",
	    "carol@example.com", NULL },
	  { "subject:@b.example", "@example.com", "received:@example.org", NULL } },
	{ "label headers are never read",
	  "X-Spam-Status: Yes, score=20\nX-Spam-Flag: YES\nDelivered-To: trap@example.net\n"
	  "X-Bogosity: Spam\nDate: Mon, 1 Jan 2024 00:00:00 +0000\nSubject: hi there\n\nbody\n",
	  { "subject:hi", NULL },
	  { "x-spam-status:yes", "hdr:x-spam-status", "hdr:x-spam-flag", "hdr:delivered-to",
	    "delivered-to:trap@example.net", "x-bogosity:spam", "hdr:date", NULL } },
	{ "Received: host names only",
	  "Received: from mx.example.org (mx.example.org [192.0.2.1]) by gw.example.net\n"
	  " with ESMTP id 123; Mon, 1 Jan 2024 00:00:00 +0000\nSubject: x\n\nbody\n",
	  { "received:mx.example.org", "received:gw.example.net", NULL },
	  { "received:from", "received:esmtp", "received:#3", NULL } },
	{ "URL hosts and their domain",
	  "Subject: x\nContent-Type: text/html\n\n<a href=\"http://www.Shop.Example.com/x\">go</a>\n",
	  { "url:www.shop.example.com", "urldom:example.com", "go", NULL },
	  { NULL } },
	{ "attachment types and extensions",
	  "Subject: x\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n\n--b\n"
	  "Content-Type: text/plain\n\nsee attached\n--b\nContent-Type: application/pdf\n"
	  "Content-Disposition: attachment; filename=\"Invoice.PDF\"\n\nxxx\n--b--\n",
	  { "att:application/pdf", "attext:pdf", "see attached", NULL },
	  { NULL } },
	{ "meta tokens from the walk",
	  "Subject: x\nContent-Type: text/html\n\n<p>only html</p>\n",
	  { "meta:html_only", NULL },
	  { "meta:encrypted", NULL } },
};

static void test_tokenizer_cases(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(tok_cases); i++) {
		struct bayes_tokens t;

		tokenize_msg(tok_cases[i].msg, 1, &t);
		for (size_t j = 0; j < MAXW && tok_cases[i].want[j] != NULL; j++)
			if (!has_text(&t, tok_cases[i].want[j]))
				fail_msg("%s: got no feature \"%s\", want it", tok_cases[i].name,
					 tok_cases[i].want[j]);
		for (size_t j = 0; j < MAXW && tok_cases[i].absent[j] != NULL; j++)
			if (has_text(&t, tok_cases[i].absent[j]))
				fail_msg("%s: got feature \"%s\", want none", tok_cases[i].name,
					 tok_cases[i].absent[j]);
		for (size_t j = 1; j < t.n; j++)
			if (t.f[j - 1].hash >= t.f[j].hash)
				fail_msg("%s: features not sorted and unique at %zu",
					 tok_cases[i].name, j);
		bayes_tokens_free(&t);
	}
}

/* Six distinct body words: 6 singles + 1 + 2 + 3 + 4 + 4 pairs, duplicates once. */
static void test_osb_counts(void **state)
{
	struct bayes_tokens a, b, c;
	size_t body_a, body_b;

	(void)state;
	tokenize_msg("Subject: x\n\n", 0, &a);
	tokenize_msg("Subject: x\n\nw1 w2 w3 w4 w5 w6\n", 0, &b);
	body_a = a.n;
	body_b = b.n;
	/* the text~ meta token differs between the two: +1 on b's side, -1 on a's */
	if (body_b - body_a != 6 + 14)
		fail_msg("6 words: got %zu features, want %d", body_b - body_a, 6 + 14);
	tokenize_msg("Subject: x\n\nspam spam spam\n", 1, &c);
	if (!has_text(&c, "spam") || !has_text(&c, "spam spam") || !has_text(&c, "spam ~ spam"))
		fail_msg("repeated word: got no single or pairs");
	if (c.made <= c.n)
		fail_msg("repeated word: got made %zu, n %zu, want duplicates removed", c.made, c.n);
	bayes_tokens_free(&a);
	bayes_tokens_free(&b);
	bayes_tokens_free(&c);
}

static void test_feature_bound(void **state)
{
	struct dynbuf b;
	struct bayes_tokens t;

	(void)state;
	dynbuf_init(&b, 1 << 20);
	dynbuf_add(&b, "Subject: x\n\n", 12);
	for (int i = 0; i < 12000; i++)
		dynbuf_addf(&b, "w%dx ", i);
	dynbuf_add(&b, "\n", 2);
	tokenize_msg(b.data, 0, &t);
	if (!t.truncated || t.made > BAYES_MAX_FEATURES)
		fail_msg("bound: got truncated %d made %zu, want 1 and <= %d", t.truncated, t.made,
			 BAYES_MAX_FEATURES);
	bayes_tokens_free(&t);
	dynbuf_free(&b);
}

static void test_keyed(void **state)
{
	struct mime_view *v = NULL;
	struct mime_limits lim;
	struct bayes_tokens a, b;
	uint8_t key2[16] = { 1 };
	const char *msg = "Subject: hello\n\nsame words here\n";
	char err[128];

	(void)state;
	mime_limits_default(&lim);
	assert_int_equal(mime_parse(msg, strlen(msg), &lim, &v, err, sizeof(err)), 0);
	bayes_tokenize(v, KEY, 0, &a);
	bayes_tokenize(v, key2, 0, &b);
	assert_int_equal(a.n, b.n);
	for (size_t i = 0; i < a.n; i++)
		for (size_t j = 0; j < b.n; j++)
			if (a.f[i].hash == b.f[j].hash)
				fail_msg("two keys: got a shared hash, want none");
	bayes_tokens_free(&a);
	bayes_tokens_free(&b);
	mime_view_free(v);
}

/* ---- combiner ------------------------------------------------------------ */

static void test_token_f(void **state)
{
	static const struct {
		int64_t s, h, ns, nh;
		double want;
	} cases[] = {
		{ 3, 0, 10, 10, 0.875 },               /* (0.5 + 3*1) / 4 */
		{ 0, 3, 10, 10, 0.125 },
		{ 1, 1, 10, 20, 0.6111111111111112 },  /* p = .1/.15, (0.5 + 2p) / 3 */
		{ 0, 0, 10, 10, 0.5 },                 /* unknown: the prior */
		{ 5, 5, 0, 10, 0.5 },                  /* no spam learned: the prior */
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		double got = bayes_token_f(cases[i].s, cases[i].h, cases[i].ns, cases[i].nh, 1.0, 0.5);

		if (fabs(got - cases[i].want) > 1e-12)
			fail_msg("f(%lld,%lld): got %.15g, want %.15g", (long long)cases[i].s,
				 (long long)cases[i].h, got, cases[i].want);
	}
}

/* Values from Python: sum(exp(-m + i*log(m) - lgamma(i+1)) for i in range(v//2)). */
static void test_chi2q(void **state)
{
	static const struct {
		double x2;
		int v;
		double want_ln;
	} cases[] = {
		{ 2, 2, -1.0 },
		{ 10, 4, -3.208240530771945 },
		{ 20, 10, -3.5317838094597778 },
		{ 100, 60, -6.994589731853488 },
		{ 1600, 2000, -5.609401831934336e-12 },
		{ 3000, 1000, -455.4149079932578 },    /* 1.6e-198: underflows a plain sum */
		{ 0, 10, 0.0 },
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		double got = bayes_chi2q_ln(cases[i].x2, cases[i].v);
		/* relative, and absolute near 0 where ln(1 - tiny) has no more digits */
		double tol = fabs(cases[i].want_ln) * 1e-9 + 1e-9;

		if (fabs(got - cases[i].want_ln) > tol)
			fail_msg("ln chi2q(%g, %d): got %.15g, want %.15g", cases[i].x2, cases[i].v,
				 got, cases[i].want_ln);
	}
	assert_true(fabs(bayes_chi2q(2, 2) - 0.36787944117144233) < 1e-15);
	assert_true(fabs(bayes_chi2q(10, 4) - 0.040427681994512805) < 1e-15);
}

static void test_combine(void **state)
{
	static const double f2[] = { 0.9, 0.8 };
	static const double sym[] = { 0.9, 0.1 };
	double spammy[100], hammy[100], ev, p;

	(void)state;
	/* By hand (Python): qh = e^-m(1+m) of -2 ln(.72), qs of -2 ln(.02). */
	p = bayes_combine(f2, NULL, 2, BAYES_FISHER, &ev);
	if (fabs(p - 0.9291412340556515) > 1e-12 || fabs(ev - 2.275886611646114) > 1e-9)
		fail_msg("fisher {.9,.8}: got %.15g ev %.15g, want 0.929141234055652 ev 2.2758866",
			 p, ev);
	p = bayes_combine(f2, NULL, 2, BAYES_GEOMEAN, &ev);
	if (fabs(p - 0.8500353580087906) > 1e-12)
		fail_msg("geomean {.9,.8}: got %.15g, want 0.850035358008791", p);
	p = bayes_combine(sym, NULL, 2, BAYES_FISHER, &ev);
	if (fabs(p - 0.5) > 1e-12 || fabs(ev) > 1e-9)
		fail_msg("fisher {.9,.1}: got %g ev %g, want 0.5 and 0", p, ev);
	assert_true(bayes_combine(NULL, NULL, 0, BAYES_FISHER, &ev) == 0.5);
	for (int i = 0; i < 100; i++) {
		spammy[i] = 0.99;
		hammy[i] = 0.01;
	}
	/* Saturated probabilities still order by evidence. */
	double ev50, ev100;

	p = bayes_combine(spammy, NULL, 50, BAYES_FISHER, &ev50);
	assert_true(p > 0.999999);
	p = bayes_combine(spammy, NULL, 100, BAYES_FISHER, &ev100);
	assert_true(p > 0.999999);
	if (!(ev100 > ev50 && ev50 > 0))
		fail_msg("evidence: got %g for 50 and %g for 100 spammy tokens, want 0 < 50 < 100",
			 ev50, ev100);
	p = bayes_combine(hammy, NULL, 100, BAYES_FISHER, &ev);
	assert_true(p < 1e-6 && ev < 0);

	/* A word's 4 OSB pairs count as one token in Fisher's method: a word
	 * and its pairs weigh what two single tokens weigh; geometric means
	 * take every token once. */
	static const double f5[] = { 0.9, 0.8, 0.8, 0.8, 0.8 };
	static const uint8_t kind5[] = { 0, 1, 2, 3, 4 };
	double ev2;

	p = bayes_combine(f5, kind5, 5, BAYES_FISHER, &ev);
	if (fabs(p - 0.9291412340556515) > 1e-12 || fabs(ev - 2.275886611646114) > 1e-9)
		fail_msg("fisher, a word and its 4 pairs: got %.15g ev %.15g, want those of {.9,.8}",
			 p, ev);
	p = bayes_combine(f5, NULL, 5, BAYES_FISHER, &ev2);
	if (!(ev2 > ev))
		fail_msg("fisher, 5 single tokens: got evidence %g, want more than %g", ev2, ev);
	p = bayes_combine(f5, kind5, 5, BAYES_GEOMEAN, &ev);
	if (fabs(p - bayes_combine(f5, NULL, 5, BAYES_GEOMEAN, &ev2)) > 1e-15)
		fail_msg("geomean: pairs weighted, want every token once");
}

static const char SPAM_MSG[] =
	"From: deals@cheap.example\nSubject: Cheap pills now\n\n"
	"Buy cheap pills now, limited offer, click here http://pills.example/buy\n";
#define HAM_TEXT                                                   \
	"From: carol@example.org\nSubject: Minutes of the meeting\n\n" \
	"Attached are the minutes of Tuesday's meeting about the build.\n"
static const char HAM_MSG[] = HAM_TEXT;

static void test_classify(void **state)
{
	struct bayes_tokens ts, th, tn;
	struct bayes_params p;
	struct bayes_result r;
	struct bayes_model *m = bayes_model_new(10, 10);
	struct bayes_model *empty = bayes_model_new(0, 0);
	uint32_t s, h;

	(void)state;
	tokenize_msg(SPAM_MSG, 1, &ts);
	tokenize_msg(HAM_MSG, 1, &th);
	tokenize_msg("Subject: Cheap pills now\n\nbuy cheap pills now, special offer, click here"
		     " http://pills.example/order\n", 1, &tn);
	for (size_t i = 0; i < ts.n; i++)
		bayes_model_set(m, ts.f[i].hash, 9, 0);
	/* tokens of both (header names, meta) are neutral */
	for (size_t i = 0; i < th.n; i++)
		bayes_model_set(m, th.f[i].hash, bayes_model_get(m, th.f[i].hash, &s, &h) ? 9 : 0, 9);
	bayes_params_default(&p);
	for (int c = BAYES_FISHER; c <= BAYES_OSB; c++) {
		p.combiner = (enum bayes_combiner)c;
		bayes_classify(m, &tn, &p, &r);
		/* geometric means are less extreme: above 0.5 is its "spam" here */
		if (p.combiner == BAYES_GEOMEAN ? r.prob <= 0.6 :
		    r.prob < BAYES_SPAM_CUTOFF || strcmp(r.verdict, "spam") != 0 || r.nclues == 0)
			fail_msg("%s: new spam: got %g %s, want spam", bayes_combiner_name(p.combiner),
				 r.prob, r.verdict);
		bayes_classify(m, &th, &p, &r);
		if (r.prob > BAYES_HAM_CUTOFF || strcmp(r.verdict, "ham") != 0)
			fail_msg("%s: ham: got %g %s, want ham", bayes_combiner_name(p.combiner),
				 r.prob, r.verdict);
	}
	/* the "why": the strongest clue is a spam token of the message */
	p.combiner = BAYES_FISHER;
	bayes_classify(m, &tn, &p, &r);
	{
		int seen = 0;

		for (size_t i = 0; i < r.nclues; i++) {
			const char *txt = bayes_feature_text(&tn, r.clues[i].feature);

			if (r.clues[i].f > 0.9 && r.clues[i].spam == 9 &&
			    (strstr(txt, "pills") != NULL || strstr(txt, "cheap") != NULL))
				seen++;
		}
		if (seen < 3)
			fail_msg("why: got %d spam clues naming cheap or pills, want >= 3", seen);
	}
	bayes_classify(empty, &tn, &p, &r);
	if (r.prob != 0.5 || strcmp(r.verdict, "unsure") != 0)
		fail_msg("empty model: got %g %s, want 0.5 unsure", r.prob, r.verdict);
	bayes_model_free(m);
	bayes_model_free(empty);
	bayes_tokens_free(&ts);
	bayes_tokens_free(&th);
	bayes_tokens_free(&tn);
}

static void test_model_map(void **state)
{
	struct bayes_model *m = bayes_model_new(1, 1);
	uint32_t s, h;

	(void)state;
	for (uint64_t i = 1; i <= 50000; i++)
		bayes_model_set(m, i * 0x9e3779b97f4a7c15ULL, (uint32_t)i, (uint32_t)(i + 1));
	assert_int_equal(bayes_model_size(m), 50000);
	for (uint64_t i = 1; i <= 50000; i += 997) {
		if (!bayes_model_get(m, i * 0x9e3779b97f4a7c15ULL, &s, &h) || s != i || h != i + 1)
			fail_msg("model: token %llu: got %u/%u, want %llu/%llu", (unsigned long long)i,
				 s, h, (unsigned long long)i, (unsigned long long)i + 1);
	}
	assert_int_equal(bayes_model_get(m, 12345, &s, &h), 0);
	bayes_model_free(m);
}

/* ---- learning and expiry through a real store ------------------------------ */


static enum bayes_outcome learn(struct bayes_learner *l, const char *msg, char cls)
{
	enum bayes_outcome o;
	char err[300];

	if (bayes_learn(l, msg, strlen(msg), cls, &o, err, sizeof(err)) < 0)
		fail_msg("bayes_learn: %s", err);
	return o;
}

static void flush(struct bayes_learner *l)
{
	char err[300];

	if (bayes_learner_flush(l, err, sizeof(err)) < 0)
		fail_msg("flush: %s", err);
}

static void model_counts(struct store *st, int64_t *ns, int64_t *nh)
{
	assert_int_equal(store_bayes_model_get(st, 0, ns, nh), 0);
}

static void test_learning(void **state)
{
	struct tmpdb d;
	struct bayes_learner *l;
	struct bayes_model *m;
	struct bayes_tokens t;
	struct mime_view *v;
	struct mime_limits lim;
	uint8_t key[16];
	char err[300];
	int64_t ns, nh, used, n1, n2;
	uint32_t s, h;

	(void)state;
	tmpdb_open(&d);
	l = bayes_learner_open(d.st, 0, err, sizeof(err));
	if (l == NULL)
		fail_msg("learner: %s", err);
	assert_int_equal(learn(l, SPAM_MSG, 's'), BAYES_LEARNED);
	/* again in the same batch, and with an mbox line and CR LF: the same message */
	assert_int_equal(learn(l, SPAM_MSG, 's'), BAYES_ALREADY);
	assert_int_equal(learn(l, HAM_MSG, 'h'), BAYES_LEARNED);
	flush(l);
	assert_int_equal(learn(l, "From x@y Mon Jan  1 00:00:00 2024\n" HAM_TEXT, 'h'),
			 BAYES_ALREADY);
	model_counts(d.st, &ns, &nh);
	assert_true(ns == 1 && nh == 1);
	assert_int_equal(store_bayes_token_count(d.st, 0, &n1), 0);

	/* the model as classification loads it */
	assert_int_equal(bayes_model_load(d.st, 0, &m, key, &used, err, sizeof(err)), 0);
	mime_limits_default(&lim);
	assert_int_equal(mime_parse(SPAM_MSG, strlen(SPAM_MSG), &lim, &v, err, sizeof(err)), 0);
	bayes_tokenize(v, key, 0, &t);
	mime_view_free(v);
	assert_int_equal(bayes_model_size(m), n1);
	for (size_t i = 0; i < t.n; i++) {
		if (!bayes_model_get(m, t.f[i].hash, &s, &h) || s != 1)
			fail_msg("learned spam token %zu: got spam %u, want 1", i, s);
	}
	bayes_model_free(m);

	/* the ham, learned as spam: it moves */
	assert_int_equal(learn(l, HAM_MSG, 's'), BAYES_MOVED);
	flush(l);
	model_counts(d.st, &ns, &nh);
	if (ns != 2 || nh != 0)
		fail_msg("moved: got spam %lld ham %lld, want 2 and 0", (long long)ns, (long long)nh);
	/* forget both: counts go back to nothing, and expiry drops the zero rows */
	assert_int_equal(learn(l, HAM_MSG, 0), BAYES_FORGOTTEN);
	assert_int_equal(learn(l, SPAM_MSG, 0), BAYES_FORGOTTEN);
	assert_int_equal(learn(l, SPAM_MSG, 0), BAYES_NOT_LEARNED);
	flush(l);
	model_counts(d.st, &ns, &nh);
	assert_true(ns == 0 && nh == 0);
	assert_int_equal(bayes_expire(d.st, 0, time_now_ms() / 86400000LL, BAYES_EXPIRE_DAYS,
				      BAYES_EXPIRE_MAX_COUNT, &n2), 0);
	assert_int_equal(n2, n1);                        /* every row went ... */
	assert_int_equal(store_bayes_token_count(d.st, 0, &n2), 0);
	assert_int_equal(n2, 0);                         /* ... and none is left */
	bayes_tokens_free(&t);
	bayes_learner_free(l);
	tmpdb_close(&d);
}

static void test_expiry(void **state)
{
	static const struct {
		uint64_t hash;
		int64_t spam, ham, day;
		int kept;
	} rows[] = {
		{ 42, 1, 0, 100, 0 },     /* old and rare: goes */
		{ 43, 5, 0, 100, 1 },     /* old but common: kept */
		{ 44, 0, 1, 1000, 1 },    /* rare but recent: kept */
		{ 45, 1, 1, 100, 1 },     /* old, count 2 > 1: kept */
		{ 46, 0, 0, 1000, 0 },    /* nothing left: goes */
	};
	struct tmpdb d;
	int64_t removed, s, h;

	(void)state;
	tmpdb_open(&d);
	assert_int_equal(store_begin(d.st), 0);
	for (size_t i = 0; i < ARRAY_LEN(rows); i++) {
		assert_int_equal(store_bayes_token_add(d.st, 0, rows[i].hash, rows[i].spam + 1,
						       rows[i].ham + 1, rows[i].day), 0);
		assert_int_equal(store_bayes_token_add(d.st, 0, rows[i].hash, -1, -1, 0), 0);
	}
	/* a user's model is not touched by the global expiry */
	assert_int_equal(store_bayes_token_add(d.st, 7, 42, 1, 0, 100), 0);
	assert_int_equal(store_commit(d.st), 0);
	assert_int_equal(bayes_expire(d.st, 0, 1000, 180, 1, &removed), 0);
	assert_int_equal(removed, 2);
	for (size_t i = 0; i < ARRAY_LEN(rows); i++) {
		assert_int_equal(store_bayes_token_get(d.st, 0, rows[i].hash, &s, &h), 0);
		if ((s + h > 0) != rows[i].kept)
			fail_msg("expiry of %llu: got counts %lld/%lld, want %s",
				 (unsigned long long)rows[i].hash, (long long)s, (long long)h,
				 rows[i].kept ? "kept" : "gone");
	}
	assert_int_equal(store_bayes_token_get(d.st, 7, 42, &s, &h), 0);
	assert_int_equal(s, 1);
	tmpdb_close(&d);
}

/*
 * The models the mail side uses: a model counts once it has min_learned of
 * each class (the global one and a user's own alike); a user without
 * enough falls back to the global model; loads at one generation share the
 * token data, and learning moves the generation.
 */
static void test_models(void **state)
{
	static const struct {
		int64_t min_learned, uid;
		int want;            /* 0 none, 1 the global model, 2 the user's own */
	} cases[] = {
		{ 1, 0, 1 }, { 1, 7, 2 }, { 1, 8, 1 },
		{ 2, 7, 1 },         /* the user has 1 of each: not enough, the global one */
		{ 2, 0, 1 },
		{ 3, 0, 0 }, { 3, 7, 0 }, /* nothing has 3 of each */
	};
	struct tmpdb d;
	struct bayes_learner *l;
	struct score_models *a, *b;
	const struct bayes_model *ga, *gb;
	char err[300], spam2[600], ham2[600];
	int64_t used, g1, g2;

	(void)state;
	tmpdb_open(&d);
	snprintf(spam2, sizeof(spam2), "%s\nAnother cheap offer.\n", SPAM_MSG);
	snprintf(ham2, sizeof(ham2), "%s\nSee you on Monday.\n", HAM_MSG);
	l = bayes_learner_open(d.st, 0, err, sizeof(err));
	if (l == NULL)
		fail_msg("learner: %s", err);
	learn(l, SPAM_MSG, 's');
	learn(l, spam2, 's');
	learn(l, HAM_MSG, 'h');
	learn(l, ham2, 'h');
	flush(l);
	bayes_learner_free(l);
	l = bayes_learner_open(d.st, 7, err, sizeof(err));
	learn(l, SPAM_MSG, 's');
	learn(l, HAM_MSG, 'h');
	flush(l);
	bayes_learner_free(l);

	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		struct score_models *m = score_models_load(d.st, cases[i].min_learned, err,
							   sizeof(err));
		const struct bayes_model *bm;
		int64_t ns, nh;
		int got;

		if (m == NULL)
			fail_msg("load: %s", err);
		bm = score_models_for(m, cases[i].uid, cases[i].min_learned, &used);
		got = 0;
		if (bm != NULL) {
			bayes_model_counts(bm, &ns, &nh);
			got = used == 0 && ns == 2 && nh == 2 ? 1 : used == 7 && ns == 1 ? 2 : -1;
		}
		if (got != cases[i].want)
			fail_msg("min_learned %lld uid %lld: got %d (used %lld), want %d",
				 (long long)cases[i].min_learned, (long long)cases[i].uid, got,
				 (long long)used, cases[i].want);
		score_models_free(m);
	}

	/* Two loads at one generation share the tokens; learning moves it. */
	a = score_models_load(d.st, 1, err, sizeof(err));
	b = score_models_load(d.st, 1, err, sizeof(err));
	assert_non_null(a);
	assert_non_null(b);
	ga = score_models_for(a, 0, 1, &used);
	gb = score_models_for(b, 0, 1, &used);
	assert_ptr_equal(ga, gb);
	assert_memory_equal(score_models_key(a), score_models_key(b), 16);
	g1 = score_models_generation(a);
	score_models_free(b);
	l = bayes_learner_open(d.st, 0, err, sizeof(err));
	learn(l, "Subject: third\n\nA third ham.\n", 'h');
	flush(l);
	bayes_learner_free(l);
	b = score_models_load(d.st, 1, err, sizeof(err));
	assert_non_null(b);
	g2 = score_models_generation(b);
	if (g2 != g1 + 1)
		fail_msg("generation after a flush: got %lld, want %lld", (long long)g2,
			 (long long)g1 + 1);
	gb = score_models_for(b, 0, 1, &used);
	assert_true(gb != ga);
	/* a still holds the old tokens, readable after the shared slot moved on */
	assert_true(bayes_model_size(ga) > 0);
	score_models_free(a);
	score_models_free(b);
	score_models_cache_drop();
	tmpdb_close(&d);
}

static void test_digest(void **state)
{
	uint8_t a[32], b[32], c[32], e[32];
	const char *lf = "Subject: x\n\nbody\n";
	const char *crlf = "Subject: x\r\n\r\nbody\r\n";
	const char *mbox = "From a@b Mon Jan  1 00:00:00 2024\nSubject: x\n\nbody\n";
	const char *other = "Subject: y\n\nbody\n";
	const char *trail = "Subject: x\r\n\r\nbody\r\n\r\n\n";
	uint8_t f[32];

	(void)state;
	bayes_message_digest(lf, strlen(lf), a);
	bayes_message_digest(crlf, strlen(crlf), b);
	bayes_message_digest(mbox, strlen(mbox), c);
	bayes_message_digest(other, strlen(other), e);
	bayes_message_digest(trail, strlen(trail), f);
	assert_memory_equal(a, f, 32);
	assert_memory_equal(a, b, 32);
	assert_memory_equal(a, c, 32);
	assert_memory_not_equal(a, e, 32);
}

static void test_ignored_headers(void **state)
{
	static const struct {
		const char *name;
		int want;
	} cases[] = {
		{ "X-Spam-Status", 1 }, { "x-spam-level", 1 }, { "Delivered-To", 1 },
		{ "X-Original-To", 1 }, { "X-Bogosity", 1 },   { "X-Moat-Score", 1 },
		{ "Date", 1 },          { "Subject", 0 },      { "From", 0 },
		{ "X-Spammer", 0 },     { "Received", 0 },     { "List-Id", 0 },
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(cases); i++)
		if (bayes_header_ignored(cases[i].name) != cases[i].want)
			fail_msg("%s: got ignored=%d, want %d", cases[i].name, !cases[i].want,
				 cases[i].want);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_siphash),
		cmocka_unit_test(test_tokenizer_cases),
		cmocka_unit_test(test_osb_counts),
		cmocka_unit_test(test_feature_bound),
		cmocka_unit_test(test_keyed),
		cmocka_unit_test(test_ignored_headers),
		cmocka_unit_test(test_token_f),
		cmocka_unit_test(test_chi2q),
		cmocka_unit_test(test_combine),
		cmocka_unit_test(test_classify),
		cmocka_unit_test(test_model_map),
		cmocka_unit_test(test_digest),
		cmocka_unit_test(test_learning),
		cmocka_unit_test(test_expiry),
		cmocka_unit_test(test_models),
	};
	int rc;

	mime_init();
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	mime_shutdown();
	return rc;
}
