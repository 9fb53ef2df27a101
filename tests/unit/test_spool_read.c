/*
 * Unit tests for spool/spool_read: queue ids and paths, the header field
 * walk (unfolding, trimming, where it stops), a field's value by name, and
 * reading the header section of a real file under a data directory.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "spool/spool.h"
#include "spool/spool_read.h"
#include "util/util.h"

static void test_qid_and_path(void **state)
{
	char out[64];

	(void)state;
	assert_int_equal(spool_qid_valid("00A1ff", 6), 1);
	assert_int_equal(spool_qid_valid("", 0), 0);
	assert_int_equal(spool_qid_valid("../x", 4), 0);
	assert_int_equal(spool_qid_valid("0123456789abcdef0123456789abcdef0", 33), 0);
	assert_int_equal(spool_queue_path("/d", "00A1", out, sizeof(out)), 0);
	assert_string_equal(out, "/d/spool/queue/00A1");
	assert_int_equal(spool_queue_path("/d", "../etc", out, sizeof(out)), -1);
	assert_int_equal(spool_queue_path("/a/long/data/dir", "00A1", out, 10), -1);
	errno = 0;
	assert_int_equal(spool_read_open("/d", "zz"), -1);
	assert_int_equal(errno, EINVAL);
}

struct walk_case {
	const char *name;
	const char *in;
	const char *want; /* "name=value|..." */
};

static const struct walk_case walk_cases[] = {
	{ "simple", "Subject: hello\r\nFrom: a@b\r\n\r\nbody", "Subject=hello|From=a@b|" },
	{ "folded", "Subject: one\r\n two\r\n\tthree\r\nX: y\r\n\r\n",
	  "Subject=one two\tthree|X=y|" },
	{ "blanks trimmed", "A:   v  \r\nB:\r\n\r\n", "A=v|B=|" },
	{ "bare LF", "A: 1\nB: 2\n\nbody", "A=1|B=2|" },
	{ "no final line end", "A: 1\r\nB: 2", "A=1|B=2|" },
	{ "not a field stops", "A: 1\r\nnot a field\r\nB: 2\r\n", "A=1|" },
	{ "empty field name stops", "A: 1\r\n: 2\r\nB: 3\r\n", "A=1|" },
	{ "blank in a field name stops", "A: 1\r\nB C: 2\r\n", "A=1|" },
	{ "empty", "", "" },
	{ "starts with the empty line", "\r\nA: 1\r\n", "" },
};

static void test_header_walk(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < ARRAY_LEN(walk_cases); i++) {
		const struct walk_case *c = &walk_cases[i];
		struct dynbuf v;
		struct dynbuf got;
		size_t pos = 0;
		const char *name;
		size_t nl;

		dynbuf_init(&v, 1024);
		dynbuf_init(&got, 4096);
		dynbuf_add(&got, "", 0);
		while (spool_header_next(c->in, strlen(c->in), &pos, &name, &nl, &v) == 1)
			dynbuf_addf(&got, "%.*s=%s|", (int)nl, name, v.data);
		if (strcmp(got.data, c->want) != 0)
			fail_msg("%s: got \"%s\", want \"%s\"", c->name, got.data, c->want);
		dynbuf_free(&v);
		dynbuf_free(&got);
	}
}

static void test_header_get(void **state)
{
	static const char h[] = "Received: from h\r\nSUBJECT: a\r\n b\r\nSubject: second\r\n\r\n";
	struct dynbuf v;

	(void)state;
	dynbuf_init(&v, 1024);
	assert_int_equal(spool_header_get(h, strlen(h), "subject", &v), 1);
	assert_string_equal(v.data, "a b");
	assert_int_equal(spool_header_get(h, strlen(h), "X-None", &v), 0);
	assert_int_equal(v.len, 0);
	dynbuf_free(&v);
	/* A value past the buffer's maximum is cut, never overflows. */
	dynbuf_init(&v, 4);
	assert_int_equal(spool_header_get(h, strlen(h), "received", &v), 1);
	assert_true(v.len <= 4);
	dynbuf_free(&v);
}

static void test_read_headers_file(void **state)
{
	char dir[] = "/tmp/test_spool_read.XXXXXX";
	char path[256];
	char buf[64];
	size_t len;
	FILE *f;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/spool", dir);
	assert_int_equal(mkdir(path, 0700), 0);
	snprintf(path, sizeof(path), "%s/spool/queue", dir);
	assert_int_equal(mkdir(path, 0700), 0);
	snprintf(path, sizeof(path), "%s/spool/queue/00A1", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("Subject: t\r\nFrom: a@b\r\n\r\nbody line\r\n", f);
	fclose(f);

	assert_int_equal(spool_read_headers(dir, "00A1", buf, sizeof(buf) - 1, &len), 0);
	assert_string_equal(buf, "Subject: t\r\nFrom: a@b\r\n");
	assert_int_equal(len, strlen(buf));
	/* Bounded: at most max bytes, even without the empty line. */
	assert_int_equal(spool_read_headers(dir, "00A1", buf, 8, &len), 0);
	assert_int_equal(len, 8);
	assert_string_equal(buf, "Subject:");
	/* No file: -1, and an empty section. */
	assert_int_equal(spool_read_headers(dir, "00B2", buf, sizeof(buf) - 1, &len), -1);
	assert_int_equal(len, 0);
	assert_string_equal(buf, "");
	{
		int fd = spool_read_open(dir, "00A1");
		char c4[4];

		assert_true(fd >= 0);
		assert_int_equal(read(fd, c4, 4), 4);
		assert_memory_equal(c4, "Subj", 4);
		close(fd);
	}
	unlink(path);
	snprintf(path, sizeof(path), "%s/spool/queue", dir);
	rmdir(path);
	snprintf(path, sizeof(path), "%s/spool", dir);
	rmdir(path);
	rmdir(dir);
}

/*
 * spool_file_read_all() returns every octet written so far, whether it is
 * still in the 64 KiB write buffer, already in the file, or split between
 * the two; writing may go on afterwards.
 */
static void test_read_all(void **state)
{
	static const struct {
		const char *name;
		size_t total;   /* octets written ... */
		size_t chunk;   /* ... in writes of this size */
	} cases[] = {
		{ "small, buffer only", 100, 100 },
		{ "empty", 0, 1 },
		{ "exactly the buffer", 64 * 1024, 4096 },
		{ "buffer overflowed in small writes", 70000, 1000 },
		{ "one write larger than the buffer", 200000, 200000 },
		{ "large then small", 200010, 200000 },
	};
	static const char *const subdirs[] = { "spool/incoming", "spool/queue", "spool/quarantine",
					       "spool" };
	char dir[] = "/tmp/test_spool_read_all.XXXXXX";
	char err[256], path[128];
	struct spool *sp;

	(void)state;
	assert_non_null(mkdtemp(dir));
	sp = spool_open(dir, err, sizeof(err));
	assert_non_null(sp);
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		struct spool_file *f = spool_file_create(sp, err, sizeof(err));
		char *want = xmalloc(cases[c].total + 3);
		char *got = NULL;
		size_t len = 0, done = 0;

		assert_non_null(f);
		for (size_t i = 0; i < cases[c].total + 3; i++)
			want[i] = (char)('a' + (i * 7 + i / 251) % 26);
		while (done < cases[c].total) {
			size_t n = cases[c].total - done < cases[c].chunk ? cases[c].total - done
									 : cases[c].chunk;

			assert_int_equal(spool_file_write(f, want + done, n), 0);
			done += n;
		}
		if (spool_file_read_all(f, &got, &len) != 0 || len != cases[c].total ||
		    memcmp(got, want, len) != 0 || got[len] != '\0')
			fail_msg("%s: got %zu octets (or different ones), want %zu", cases[c].name, len,
				 cases[c].total);
		free(got);
		/* Written on after a read: the second read has it all, from the file. */
		assert_int_equal(spool_file_write(f, want + done, 3), 0);
		if (spool_file_read_all(f, &got, &len) != 0 || len != cases[c].total + 3 ||
		    memcmp(got, want, len) != 0)
			fail_msg("%s, read again: got %zu octets (or different ones), want %zu",
				 cases[c].name, len, cases[c].total + 3);
		free(got);
		free(want);
		spool_file_discard(f);
	}
	spool_free(sp);
	/* Every file was discarded: the directories are empty. */
	for (size_t i = 0; i < sizeof(subdirs) / sizeof(subdirs[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, subdirs[i]);
		if (rmdir(path) != 0)
			fail_msg("rmdir %s: %s", path, strerror(errno));
	}
	assert_int_equal(rmdir(dir), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_qid_and_path),
		cmocka_unit_test(test_header_walk),
		cmocka_unit_test(test_header_get),
		cmocka_unit_test(test_read_headers_file),
		cmocka_unit_test(test_read_all),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
