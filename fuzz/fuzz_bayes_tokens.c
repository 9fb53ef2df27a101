/*
 * libFuzzer harness: the statistical filter's tokenizer over the mime view
 * of fuzzed bytes (mime_parse with small limits, as fuzz_mime), with and
 * without token texts.  Checks the tokenizer's contract: the feature bound,
 * features sorted by hash and each once, no zero hash, kinds within the OSB
 * window, texts inside the text buffer; and that a classification against a
 * model made of the message's own tokens stays a probability.
 */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mime/mime.h"
#include "score/score_bayes.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t KEY[16] = { 7, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15 };

static void check(const struct bayes_tokens *t, int keep_text)
{
	if (t->made > BAYES_MAX_FEATURES || t->n > t->made)
		__builtin_trap();
	for (size_t i = 0; i < t->n; i++) {
		if (t->f[i].hash == 0 || t->f[i].kind >= BAYES_WINDOW)
			__builtin_trap();
		if (i > 0 && t->f[i - 1].hash >= t->f[i].hash)
			__builtin_trap();
		if (keep_text && (t->f[i].text >= t->text_len ||
				  strlen(bayes_feature_text(t, i)) >= t->text_len - t->f[i].text))
			__builtin_trap();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	struct mime_limits lim;
	struct mime_view *v;
	struct bayes_tokens a, b;
	struct bayes_params p;
	struct bayes_result r;
	struct bayes_model *m;
	char err[128];
	char *buf;

	if (!ready) {
		mime_init();
		ready = 1;
	}
	if (size > 1 << 20)
		return 0;
	mime_limits_default(&lim);
	lim.max_depth = 8;
	lim.max_parts = 40;
	lim.max_part_text = 16384;
	lim.max_text = 32768;
	lim.max_headers = 60;
	lim.max_urls = 40;
	lim.max_ms = 10000;
	buf = malloc(size ? size : 1);
	memcpy(buf, data, size);
	if (mime_parse(buf, size, &lim, &v, err, sizeof(err)) != 0)
		__builtin_trap();
	bayes_tokenize(v, KEY, 0, &a);
	bayes_tokenize(v, KEY, 1, &b);
	check(&a, 0);
	check(&b, 1);
	/* the same features with and without their texts */
	if (a.n != b.n || (a.n > 0 && memcmp(&a.f[0].hash, &b.f[0].hash, 8) != 0))
		__builtin_trap();
	m = bayes_model_new(3, 2);
	for (size_t i = 0; i < a.n; i++)
		bayes_model_set(m, a.f[i].hash, (uint32_t)(i % 4), (uint32_t)(i % 3));
	bayes_params_default(&p);
	for (int c = BAYES_FISHER; c <= BAYES_OSB; c++) {
		p.combiner = (enum bayes_combiner)c;
		bayes_classify(m, &b, &p, &r);
		if (!(r.prob >= 0.0 && r.prob <= 1.0) || isnan(r.evidence) || r.used > r.known)
			__builtin_trap();
	}
	bayes_model_free(m);
	bayes_tokens_free(&a);
	bayes_tokens_free(&b);
	mime_view_free(v);
	free(buf);
	return 0;
}
