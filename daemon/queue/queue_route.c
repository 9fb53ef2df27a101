/*
 * queue_route: routes and the retry schedule — pure functions over the
 * configuration, no I/O.  Called at start (parse) and by the runner for
 * every recipient it leases (queue_route_for).
 */
#include "queue.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../conf/conf.h"
#include "../util/util.h"

static void lower(char *s)
{
	for (; *s != '\0'; s++)
		if (*s >= 'A' && *s <= 'Z')
			*s = (char)(*s + 32);
}

int queue_parse_hostport(const char *s, int default_port, struct queue_hostport *out)
{
	const char *host = s;
	size_t hostlen;
	const char *port = NULL;
	long p = default_port;

	if (*s == '[') {
		const char *close = strchr(s, ']');

		if (close == NULL)
			return -1;
		host = s + 1;
		hostlen = (size_t)(close - host);
		if (close[1] == ':')
			port = close + 2;
		else if (close[1] != '\0')
			return -1;
	} else {
		const char *colon = strchr(s, ':');

		if (colon != NULL && strchr(colon + 1, ':') != NULL)
			return -1; /* bare IPv6 needs brackets */
		hostlen = colon ? (size_t)(colon - s) : strlen(s);
		if (colon != NULL)
			port = colon + 1;
	}
	if (hostlen == 0 || hostlen >= sizeof(out->host))
		return -1;
	if (port != NULL) {
		char *end;

		errno = 0;
		p = strtol(port, &end, 10);
		if (*port == '\0' || *end != '\0' || errno != 0 || p < 1 || p > 65535)
			return -1;
	}
	memcpy(out->host, host, hostlen);
	out->host[hostlen] = '\0';
	if (strspn(out->host, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
		   "0123456789.-:") != hostlen)
		return -1;
	lower(out->host);
	out->port = (int)p;
	return 0;
}

/* Split a comma list; fn(item) for each non-empty trimmed item. */
static int each_item(const char *list, int (*fn)(const char *item, void *arg), void *arg)
{
	const char *p = list;

	while (*p != '\0') {
		size_t len = strcspn(p, ", \t");
		char item[300];

		if (len > 0) {
			if (len >= sizeof(item))
				return -1;
			memcpy(item, p, len);
			item[len] = '\0';
			if (fn(item, arg) < 0)
				return -1;
		}
		p += len;
		while (*p == ',' || *p == ' ' || *p == '\t')
			p++;
	}
	return 0;
}

static int add_down(const char *item, void *arg)
{
	struct queue_routes *r = arg;

	if (r->ndown == QUEUE_MAX_HOSTS)
		return -1;
	if (queue_parse_hostport(item, 25, &r->down[r->ndown]) < 0)
		return -1;
	r->ndown++;
	return 0;
}

static enum queue_tls tls_mode(const char *v)
{
	if (strcmp(v, "off") == 0)
		return QUEUE_TLS_OFF;
	if (strcmp(v, "verify") == 0)
		return QUEUE_TLS_VERIFY;
	return QUEUE_TLS_OPPORTUNISTIC;
}

int queue_routes_parse(struct queue_routes *r, const struct conf *c, char *err,
		       size_t errsz)
{
	memset(r, 0, sizeof(*r));
	if (each_item(c->downstream, add_down, r) < 0) {
		snprintf(err, errsz, "downstream: expected host:port[, host:port]... (at most %d)",
			 QUEUE_MAX_HOSTS);
		return -1;
	}
	if (c->smarthost[0] != '\0') {
		if (queue_parse_hostport(c->smarthost, 25, &r->smart) < 0) {
			snprintf(err, errsz, "smarthost: expected host[:port]: '%s'", c->smarthost);
			return -1;
		}
		r->has_smart = 1;
	}
	r->mx_port = (int)c->mx_port;
	r->down_tls = tls_mode(c->downstream_tls);
	r->out_tls = tls_mode(c->delivery_tls);
	return 0;
}

int queue_route_for(const struct queue_routes *r, const char *rcpt,
		    enum queue_route_kind *kind, char *key, size_t keysz)
{
	const char *at = strrchr(rcpt, '@');
	char domain[256];

	if (at == NULL || at[1] == '\0' || strlen(at + 1) >= sizeof(domain))
		return -1;
	strlcpy_s(domain, at + 1, sizeof(domain));
	lower(domain);
	if (r->is_local != NULL && r->is_local(r->is_local_arg, domain)) {
		*kind = QUEUE_ROUTE_DOWNSTREAM;
		strlcpy_s(key, r->ndown > 0 ? "downstream" : "nodownstream", keysz);
		return 0;
	}
	if (r->has_smart) {
		*kind = QUEUE_ROUTE_SMARTHOST;
		strlcpy_s(key, "smarthost", keysz);
		return 0;
	}
	*kind = QUEUE_ROUTE_MX;
	snprintf(key, keysz, "mx:%s", domain);
	return 0;
}

int64_t queue_backoff_ms(int attempts, int64_t min_ms, int64_t max_ms)
{
	int64_t d = min_ms;
	int i;

	for (i = 0; i < attempts && d < max_ms; i++)
		d *= 2;
	return d < max_ms ? d : max_ms;
}
