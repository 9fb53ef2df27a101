/*
 * libFuzzer harness: the streaming header editor (daemon/smtp/smtp_edit.c)
 * that the delivery client runs over every queued message.  The first
 * byte picks the edit and a split point; the message is fed in two pieces
 * and must give the same bytes as fed whole; with no edit the output must
 * be the input (a CRLF added at most when the header never ended), and
 * with any edit everything from the blank line on (the body) must come out
 * unchanged.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "smtp/smtp_edit.h"
#include "util/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void out_cb(void *arg, const char *p, size_t n)
{
	if (dynbuf_add(arg, p, n) < 0)
		__builtin_trap();
}

static void edit_all(const struct smtp_edit_spec *spec, const char *in, size_t n, size_t cut,
		     struct dynbuf *b)
{
	struct smtp_edit e;

	smtp_edit_init(&e, spec);
	smtp_edit_push(&e, in, cut, out_cb, b);
	smtp_edit_push(&e, in + cut, n - cut, out_cb, b);
	smtp_edit_finish(&e, out_cb, b);
}

static const char *find_body(const char *p, size_t n)
{
	size_t i;

	for (i = 0; i + 1 < n; i++) {
		if (p[i] == '\n' && p[i + 1] == '\n')
			return p + i + 2;
		if (p[i] == '\n' && i + 2 < n && p[i + 1] == '\r' && p[i + 2] == '\n')
			return p + i + 3;
	}
	return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const drop[] = { "X-Moat-Folder", "Importance", "X-Priority" };
	struct smtp_edit_spec spec = { 0 };
	struct dynbuf whole, split;
	const char *in;
	const char *body;
	size_t n, cut;

	if (size < 2)
		return 0;
	if (data[0] & 1) {
		spec.add = "X-Moat-Folder: A/B\r\n";
		spec.add_len = strlen(spec.add);
	}
	if (data[0] & 2)
		spec.subject_prefix = "[X] ";
	if (data[0] & 4) {
		spec.drop = drop;
		spec.ndrop = 3;
	}
	in = (const char *)data + 2;
	n = size - 2;
	cut = n > 0 ? data[1] % (n + 1) : 0;
	dynbuf_init(&whole, 4 * size + 4096);
	dynbuf_init(&split, 4 * size + 4096);
	edit_all(&spec, in, n, n, &whole);
	edit_all(&spec, in, n, cut, &split);
	if (whole.len != split.len || (whole.len > 0 && memcmp(whole.data, split.data, whole.len)))
		__builtin_trap(); /* depends on how the input was cut */
	if ((data[0] & 7) == 0 && (whole.len < n || (n > 0 && memcmp(whole.data, in, n) != 0)))
		__builtin_trap(); /* no edit must mean no change */
	body = find_body(in, n);
	if (body != NULL) {
		size_t blen = n - (size_t)(body - in);

		if (whole.len < blen || memcmp(whole.data + whole.len - blen, body, blen) != 0)
			__builtin_trap(); /* the body changed */
	}
	dynbuf_free(&whole);
	dynbuf_free(&split);
	return 0;
}
