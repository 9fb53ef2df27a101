/*
 * libFuzzer harness: the alert webhook client's parsers over outside bytes
 * (daemon/alert/alert_webhook.c): alert_url_parse (the administrator's
 * alert_webhook_url) and alert_http_status (the head a receiver answers).
 * The first byte picks which.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "alert/alert.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	if (data[0] & 1) {
		struct alert_url u;

		if (alert_url_parse((const char *)data + 1, size - 1, &u) == 0 &&
		    (memchr(u.host, '\0', sizeof(u.host)) == NULL ||
		     memchr(u.port, '\0', sizeof(u.port)) == NULL ||
		     memchr(u.path, '\0', sizeof(u.path)) == NULL || u.host[0] == '\0'))
			__builtin_trap(); /* a parsed URL has terminated, non-empty fields */
	} else {
		int status = 0;

		if (alert_http_status((const char *)data + 1, size - 1, &status) == 0 &&
		    (status < 100 || status > 999))
			__builtin_trap();
	}
	return 0;
}
