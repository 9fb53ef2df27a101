/*
 * Unit tests for the statistical filter's learning shared in a cluster
 * (schema/027, daemon/store/store_bayes.c): the token BLOB's encoding and
 * its bounds, and a replay between two real stores -- node 1 learns, moves
 * and forgets; node 2 applies the event rows exactly as the cluster moves
 * them (store_cluster_outbox_read's JSON) and ends with the same tokens,
 * counts and key; applying again changes nothing; its own rows, malformed
 * rows and rows under another key are refused; a single node writes no event.
 */
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
#include "store/store_cluster.h"
#include "store/store_internal.h"
#include "util/util.h"
#include "tmpdb.h"

/* ---- the token BLOB ------------------------------------------------------ */

static void test_encode_decode(void **state)
{
	static const struct {
		const char *name;
		uint64_t h[3];
		size_t n;
		uint8_t want[24];
	} cases[] = {
		{ "none", { 0 }, 0, { 0 } },
		{ "little-endian", { 0x0102030405060708ULL }, 1,
		  { 8, 7, 6, 5, 4, 3, 2, 1 } },
		{ "extremes", { 0, UINT64_MAX, 0x8000000000000000ULL }, 3,
		  { 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
		    0, 0, 0, 0, 0, 0, 0, 0x80 } },
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint8_t got[24];
		uint64_t back[3];
		size_t n = 99;

		memset(got, 0xaa, sizeof(got));
		store_bayes_tokens_encode(cases[i].h, cases[i].n, got);
		if (memcmp(got, cases[i].want, cases[i].n * 8) != 0)
			fail_msg("%s: encoded bytes differ", cases[i].name);
		if (cases[i].n * 8 < sizeof(got) && got[cases[i].n * 8] != 0xaa)
			fail_msg("%s: wrote past n * 8 octets", cases[i].name);
		if (store_bayes_tokens_decode(got, cases[i].n * 8, back, 3, &n) != 0)
			fail_msg("%s: decode failed", cases[i].name);
		if (n != cases[i].n)
			fail_msg("%s: got %zu hashes, want %zu", cases[i].name, n, cases[i].n);
		for (size_t k = 0; k < n; k++)
			if (back[k] != cases[i].h[k])
				fail_msg("%s: hash %zu got %llx, want %llx", cases[i].name, k,
					 (unsigned long long)back[k],
					 (unsigned long long)cases[i].h[k]);
	}
}

static void test_decode_errors(void **state)
{
	static const struct {
		const char *name;
		size_t len, max;
	} cases[] = {
		{ "not a multiple of 8", 7, 10 },
		{ "one octet over", 17, 10 },
		{ "more hashes than max", 24, 2 },
	};
	uint8_t blob[32] = { 0 };
	uint64_t out[10];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t n = 99;

		if (store_bayes_tokens_decode(blob, cases[i].len, out, cases[i].max, &n) != -1)
			fail_msg("%s: got success, want -1", cases[i].name);
		if (n != 0)
			fail_msg("%s: got n=%zu, want 0", cases[i].name, n);
	}
}

/* ---- replay between two stores ------------------------------------------- */

static const char SPAM1[] =
	"From: Winner <win@lottery.example>\nTo: you@example.org\n"
	"Subject: You won a FREE prize, claim now\n\n"
	"Click http://prize.example/claim to claim your free cash prize today. Act now!\n";
static const char SPAM2[] =
	"From: Pharmacy <deals@pills.example>\nTo: you@example.org\n"
	"Subject: cheap pills without prescription\n\n"
	"Best prices on pills, discreet shipping, order at http://pills.example/\n";
static const char HAM1[] =
	"From: Alice <alice@example.org>\nTo: bob@example.org\n"
	"Subject: minutes of Tuesday's meeting\n\n"
	"Hi Bob, attached are the minutes; the budget review moves to Thursday.\n";

static void learn(struct store *st, const char *msg, char cls, enum bayes_outcome want)
{
	char err[256];
	enum bayes_outcome o;

	if (score_learn(st, msg, strlen(msg), cls, 0, &o, err, sizeof(err)) != 0)
		fail_msg("learn: %s", err);
	if (o != want)
		fail_msg("learn: outcome %d, want %d", (int)o, (int)want);
}

/* The events node 1's outbox holds, as JSON bodies, in order. */
static size_t events_of(struct store *st, char ***bodies)
{
	struct store_cluster_batch b;
	size_t n = 0;

	assert_int_equal(store_cluster_outbox_read(st, 1000, &b), 0);
	*bodies = xcalloc(b.n + 1, sizeof(**bodies));
	for (size_t i = 0; i < b.n; i++)
		if (strcmp(b.v[i].tbl, "bayes_event") == 0 && b.v[i].body != NULL)
			(*bodies)[n++] = xstrdup(b.v[i].body);
	store_cluster_batch_free(&b);
	return n;
}

struct dump {
	char buf[64 * 1024];
	size_t len;
};

static int dump_token(uint64_t hash, int64_t spam, int64_t ham, void *arg)
{
	struct dump *d = arg;
	int n = snprintf(d->buf + d->len, sizeof(d->buf) - d->len, "%llx:%lld:%lld\n",
			 (unsigned long long)hash, (long long)spam, (long long)ham);

	if (n < 0 || (size_t)n >= sizeof(d->buf) - d->len)
		fail_msg("token dump too long");
	d->len += (size_t)n;
	return 0;
}

static void model_dump(struct store *st, struct dump *d)
{
	int64_t s, h;

	memset(d, 0, sizeof(*d));
	assert_int_equal(store_bayes_model_get(st, 0, &s, &h), 0);
	d->len = (size_t)snprintf(d->buf, sizeof(d->buf), "spam=%lld ham=%lld\n", (long long)s,
				  (long long)h);
	assert_int_equal(store_bayes_tokens_foreach(st, 0, dump_token, d), 0);
}

/* want_first < 0: any outcome of the first row. */
static void apply_all(struct store *st, int64_t self, char **bodies, size_t n, int want_first)
{
	char err[256];

	assert_int_equal(store_begin(st), 0);
	for (size_t i = 0; i < n; i++) {
		enum store_bayes_replay res;

		if (store_bayes_event_apply(st, bodies[i], self, &res, err, sizeof(err)) != 0)
			fail_msg("apply %zu: %s", i, err);
		if (i == 0 && want_first >= 0 && res != (enum store_bayes_replay)want_first)
			fail_msg("apply 0: outcome %d, want %d", (int)res, (int)want_first);
	}
	assert_int_equal(store_commit(st), 0);
}

static void test_replay(void **state)
{
	struct tmpdb a, b;
	struct dump da, db;
	char err[256];
	char **ev;
	size_t n;
	uint8_t ka[16], kb[16];
	int found;
	int64_t gen0, gen1;
	enum store_bayes_replay res;

	(void)state;
	tmpdb_open(&a);
	tmpdb_open(&b);
	if (store_cluster_install(a.st, 1, 1, err, sizeof(err)) < 0 ||
	    store_cluster_install(b.st, 2, 1, err, sizeof(err)) < 0)
		fail_msg("install: %s", err);

	learn(a.st, SPAM1, 's', BAYES_LEARNED);
	learn(a.st, SPAM2, 's', BAYES_LEARNED);
	learn(a.st, HAM1, 'h', BAYES_LEARNED);
	learn(a.st, SPAM1, 's', BAYES_ALREADY);   /* no event */
	learn(a.st, SPAM2, 'h', BAYES_MOVED);
	learn(a.st, SPAM1, 0, BAYES_FORGOTTEN);
	n = events_of(a.st, &ev);
	assert_int_equal(n, 5);

	assert_int_equal(store_bayes_generation(b.st, &gen0), 0);
	apply_all(b.st, 2, ev, n, STORE_BAYES_REPLAY_LEARNED);
	assert_int_equal(store_bayes_generation(b.st, &gen1), 0);
	assert_true(gen1 > gen0);

	model_dump(a.st, &da);
	model_dump(b.st, &db);
	assert_string_equal(db.buf, da.buf);
	assert_int_equal(store_bayes_key_get(a.st, ka, &found), 0);
	assert_int_equal(store_bayes_key_get(b.st, kb, &found), 0);
	assert_true(found);
	assert_memory_equal(ka, kb, 16);
	/* What node 2 applied is not its own learning: nothing to share again. */
	{
		char **again;
		size_t m = events_of(b.st, &again);

		assert_int_equal(m, 0);
		free(again);
	}

	/* The newest row again: nothing to do. */
	assert_int_equal(store_bayes_event_apply(b.st, ev[n - 1], 2, &res, err, sizeof(err)), 0);
	assert_int_equal(res, STORE_BAYES_REPLAY_ALREADY);
	/* Every row again, in order (a node pulling everything at its join): the
	 * same end state. */
	apply_all(b.st, 2, ev, n, -1);
	model_dump(b.st, &db);
	assert_string_equal(db.buf, da.buf);

	/* Node 1's own rows are never applied to node 1. */
	assert_int_equal(store_bayes_event_apply(a.st, ev[0], 1, &res, err, sizeof(err)), 0);
	assert_int_equal(res, STORE_BAYES_REPLAY_OWN);

	/* Malformed rows: an error naming the row, nothing applied. */
	{
		static const char *const bad[] = {
			"{}",
			"{\"origin\": 1, \"uid\": 0, \"class\": \"x\", \"digest\": \"00\","
			" \"hash_key\": \"00\", \"tokens\": \"\"}",
			"not json",
		};

		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
			if (store_bayes_event_apply(b.st, bad[i], 2, &res, err, sizeof(err)) != -1)
				fail_msg("bad row %zu: got success, want -1", i);
	}

	for (size_t i = 0; i < n; i++)
		free(ev[i]);
	free(ev);
	tmpdb_close(&a);
	tmpdb_close(&b);
}

static void test_other_key_is_refused(void **state)
{
	struct tmpdb a, b;
	struct dump before, after;
	char err[256];
	char **ev;
	size_t n;
	enum store_bayes_replay res;

	(void)state;
	tmpdb_open(&a);
	tmpdb_open(&b);
	if (store_cluster_install(a.st, 1, 1, err, sizeof(err)) < 0 ||
	    store_cluster_install(b.st, 2, 1, err, sizeof(err)) < 0)
		fail_msg("install: %s", err);
	learn(a.st, SPAM1, 's', BAYES_LEARNED);
	learn(b.st, HAM1, 'h', BAYES_LEARNED); /* node 2 made a key of its own */
	n = events_of(a.st, &ev);
	assert_int_equal(n, 1);
	model_dump(b.st, &before);
	assert_int_equal(store_bayes_event_apply(b.st, ev[0], 2, &res, err, sizeof(err)), 0);
	assert_int_equal(res, STORE_BAYES_REPLAY_KEY_MISMATCH);
	model_dump(b.st, &after);
	assert_string_equal(after.buf, before.buf);
	free(ev[0]);
	free(ev);
	tmpdb_close(&a);
	tmpdb_close(&b);
}

static void test_single_node_writes_no_event(void **state)
{
	struct tmpdb a;
	sqlite3_stmt *s;
	sqlite3_int64 rows = -1;
	int64_t node = -1;

	(void)state;
	tmpdb_open(&a);
	assert_int_equal(store_bayes_event_node(a.st, &node), 0);
	assert_int_equal(node, 0);
	learn(a.st, SPAM1, 's', BAYES_LEARNED);
	learn(a.st, SPAM1, 'h', BAYES_MOVED);
	assert_int_equal(sqlite3_prepare_v2(store_db(a.st), "SELECT count(*) FROM bayes_event",
					    -1, &s, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(s), SQLITE_ROW);
	rows = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	assert_int_equal(rows, 0);
	tmpdb_close(&a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_encode_decode),
		cmocka_unit_test(test_decode_errors),
		cmocka_unit_test(test_replay),
		cmocka_unit_test(test_other_key_is_refused),
		cmocka_unit_test(test_single_node_writes_no_event),
	};
	int rc;

	mime_init();
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	mime_shutdown();
	return rc;
}
