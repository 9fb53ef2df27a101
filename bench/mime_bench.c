/*
 * mime_bench: cost of mime_parse() on real messages.  Reads every regular
 * file of the directories given (or the files themselves), parses each
 * one N times with the default limits and prints the mean time per
 * message, the median and 99th percentile over messages, and the slowest.
 * A leading mbox "From " line (the SpamAssassin corpus has one; a message
 * received over SMTP does not) is skipped.
 *
 *   mime_bench [-n N] DIR|FILE ...
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "mime/mime.h"
#include "util/util.h"

struct msg {
	char *data;
	size_t len;
	double us;
};

static struct msg *msgs;
static size_t nmsgs, capmsgs;

static void load(const char *path)
{
	FILE *f = fopen(path, "rb");
	struct stat st;
	struct msg *m;
	size_t skip = 0;

	if (f == NULL)
		return;
	if (fstat(fileno(f), &st) != 0 || st.st_size <= 0) {
		fclose(f);
		return;
	}
	if (nmsgs == capmsgs) {
		capmsgs = capmsgs ? capmsgs * 2 : 1024;
		msgs = xrealloc(msgs, capmsgs * sizeof(*msgs));
	}
	m = &msgs[nmsgs];
	m->data = xmalloc((size_t)st.st_size);
	m->len = fread(m->data, 1, (size_t)st.st_size, f);
	fclose(f);
	if (m->len > 5 && memcmp(m->data, "From ", 5) == 0) {
		char *nl = memchr(m->data, '\n', m->len);

		skip = nl != NULL ? (size_t)(nl - m->data) + 1 : 0;
	}
	memmove(m->data, m->data + skip, m->len - skip);
	m->len -= skip;
	nmsgs++;
}

static void load_path(const char *path)
{
	struct stat st;
	DIR *d;
	struct dirent *e;

	if (stat(path, &st) != 0)
		return;
	if (!S_ISDIR(st.st_mode)) {
		load(path);
		return;
	}
	d = opendir(path);
	if (d == NULL)
		return;
	for (;;) {
		char sub[4096];
		size_t n;

		e = readdir(d);
		if (e == NULL)
			break;
		n = strlen(e->d_name);
		if (e->d_name[0] == '.' || (n > 5 && strcmp(e->d_name + n - 5, ".json") == 0) ||
		    (n > 3 && strcmp(e->d_name + n - 3, ".js") == 0))
			continue;
		snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
		load_path(sub);
	}
	closedir(d);
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	struct mime_limits lim;
	int n = 10;
	int i = 1;
	double total = 0, *us;
	size_t bytes = 0, limited = 0, slowest = 0;
	char err[128];

	if (argc > 2 && strcmp(argv[1], "-n") == 0) {
		n = (int)strtol(argv[2], NULL, 10);
		i = 3;
	}
	if (n < 1 || i >= argc) {
		fprintf(stderr, "usage: mime_bench [-n N] DIR|FILE ...\n");
		return 2;
	}
	for (; i < argc; i++)
		load_path(argv[i]);
	if (nmsgs == 0) {
		fprintf(stderr, "mime_bench: no messages\n");
		return 1;
	}
	mime_init();
	mime_limits_default(&lim);
	us = xmalloc(nmsgs * sizeof(*us));
	for (size_t m = 0; m < nmsgs; m++) {
		double t0 = now();

		for (int r = 0; r < n; r++) {
			struct mime_view *v;

			if (mime_parse(msgs[m].data, msgs[m].len, &lim, &v, err, sizeof(err)) != 0) {
				fprintf(stderr, "mime_bench: %s\n", err);
				return 1;
			}
			if (r == 0 && (v->flags & MIME_F_LIMIT))
				limited++;
			mime_view_free(v);
		}
		us[m] = (now() - t0) / n;
		total += us[m];
		bytes += msgs[m].len;
		if (us[m] > us[slowest])
			slowest = m;
	}
	printf("messages %zu, runs %d, mean size %zu B, limit hit %zu\n", nmsgs, n,
	       bytes / nmsgs, limited);
	printf("slowest: %.1f us (%zu B)\n", us[slowest], msgs[slowest].len);
	qsort(us, nmsgs, sizeof(*us), cmp);
	printf("mean %.1f us/message, p50 %.1f us, p99 %.1f us, %.1f MB/s\n", total / nmsgs,
	       us[nmsgs / 2], us[nmsgs * 99 / 100], bytes / total);
	mime_shutdown();
	return 0;
}
