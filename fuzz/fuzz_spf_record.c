/*
 * libFuzzer harness: the SPF record parser and the macro expander
 * (auth_spf_parse, auth_spf_expand in daemon/score/auth_spf.c), and the
 * DMARC record parser (auth_dmarc_parse) on the same bytes.
 */
#include <arpa/inet.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "score/auth.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct auth_spf_record rec;
	struct auth_dmarc_record dm;
	struct auth_spf_macro m;
	struct sockaddr_in6 sin6;
	char err[200];
	char out[AUTH_SPF_EXPAND_MAX];
	const char *s = (const char *)data;

	auth_spf_parse(s, size, &rec, err, sizeof(err));
	auth_dmarc_parse(s, size, &dm, err, sizeof(err));
	memset(&sin6, 0, sizeof(sin6));
	sin6.sin6_family = AF_INET6;
	inet_pton(AF_INET6, "2001:db8::cb01", &sin6.sin6_addr);
	memset(&m, 0, sizeof(m));
	m.sender = "strong-bad@email.example.com";
	m.domain = "email.example.com";
	m.helo = "mx.example.org";
	m.ip = (const struct sockaddr *)&sin6;
	m.now = 1;
	auth_spf_expand(s, size, &m, size > 0 && (data[0] & 1), out, sizeof(out), err, sizeof(err));
	auth_spf_expand(s, size, &m, 0, out, 8, err, sizeof(err));
	return 0;
}
