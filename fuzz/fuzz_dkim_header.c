/*
 * libFuzzer harness: the DKIM-Signature parser and the key record parser
 * (auth_dkim_sig_parse, auth_dkim_key_parse in daemon/score/auth_dkim.c),
 * the From: domain (auth_from_domain), and the header splitter and both
 * canonicalisations on the same bytes.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "score/auth.h"
#include "util/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct auth_dkim_sig sig;
	static struct auth_dkim_key key;
	static struct auth_hfield f[64];
	const char *s = (const char *)data;
	char err[200];
	char dom[256];
	struct dynbuf b;
	long n;
	long i;

	auth_dkim_sig_parse(s, size, &sig, err, sizeof(err));
	auth_dkim_key_parse(s, size, &key, err, sizeof(err));
	auth_from_domain(s, size, dom, sizeof(dom));
	dynbuf_init(&b, 1 << 20);
	n = auth_header_split(s, size, f, 64);
	for (i = 0; i < n; i++) {
		auth_dkim_canon_header(DKIM_RELAXED, f[i].p, f[i].len, &b);
		auth_dkim_canon_header(DKIM_SIMPLE, f[i].p, f[i].len, &b);
	}
	dynbuf_reset(&b);
	auth_dkim_canon_body(DKIM_RELAXED, s, size, &b);
	dynbuf_reset(&b);
	auth_dkim_canon_body(DKIM_SIMPLE, s, size, &b);
	dynbuf_free(&b);
	return 0;
}
