/*
 * alert_webhook: a small, bounded HTTP/1.1 client for the alert webhook
 * (alert.h): one POST, Connection: close, over TCP or TLS (OpenSSL; the
 * certificate is checked against the system store and the URL's host
 * unless insecure).  Runs on the notifier's worker thread only, never the
 * loop: the name lookup is getaddrinfo(), connect, handshake, write and
 * the response head share one deadline (timeout_ms), and at most
 * RESP_HEAD_MAX bytes of the answer are read (the status line is all we
 * need; the body is never read).
 */
#include "alert.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/core_names.h>
#include <openssl/params.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define RESP_HEAD_MAX 4096

void alert_webhook_sign(const char *secret, int64_t ts, const char *body, size_t len,
			char out[80])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char mac[EVP_MAX_MD_SIZE];
	char prefix[32];
	EVP_MAC *m = EVP_MAC_fetch(NULL, "HMAC", NULL);
	EVP_MAC_CTX *c = m != NULL ? EVP_MAC_CTX_new(m) : NULL;
	OSSL_PARAM params[2];
	size_t maclen = 0, i;
	int n = snprintf(prefix, sizeof(prefix), "%lld.", (long long)ts);

	/* HMAC over ts "." body, without copying the body. */
	params[0] = OSSL_PARAM_construct_utf8_string("digest", (char *)"SHA256", 0);
	params[1] = OSSL_PARAM_construct_end();
	if (c == NULL ||
	    EVP_MAC_init(c, (const unsigned char *)secret, strlen(secret), params) != 1 ||
	    EVP_MAC_update(c, (const unsigned char *)prefix, (size_t)n) != 1 ||
	    EVP_MAC_update(c, (const unsigned char *)body, len) != 1 ||
	    EVP_MAC_final(c, mac, &maclen, sizeof(mac)) != 1)
		maclen = 0;
	EVP_MAC_CTX_free(c);
	EVP_MAC_free(m);
	memcpy(out, "sha256=", 7);
	for (i = 0; i < maclen && i < 32; i++) {
		out[7 + 2 * i] = hex[mac[i] >> 4];
		out[7 + 2 * i + 1] = hex[mac[i] & 15];
	}
	out[7 + 2 * i] = '\0';
}

int alert_url_parse(const char *s, size_t len, struct alert_url *u)
{
	const char *p, *end = s + len, *host, *hend, *pend;
	size_t i;

	memset(u, 0, sizeof(*u));
	for (i = 0; i < len; i++)
		if ((unsigned char)s[i] <= ' ' || (unsigned char)s[i] >= 127)
			return -1;
	if (len > 7 && strncmp(s, "http://", 7) == 0) {
		p = s + 7;
		strlcpy_s(u->port, "80", sizeof(u->port));
	} else if (len > 8 && strncmp(s, "https://", 8) == 0) {
		p = s + 8;
		u->tls = 1;
		strlcpy_s(u->port, "443", sizeof(u->port));
	} else {
		return -1;
	}
	pend = p;
	while (pend < end && *pend != '/' && *pend != '?' && *pend != '#')
		pend++;
	if (memchr(p, '@', (size_t)(pend - p)) != NULL)
		return -1; /* no user information: a secret has no place in the URL */
	if (p < pend && *p == '[') {
		host = p + 1;
		hend = memchr(host, ']', (size_t)(pend - host));
		if (hend == NULL)
			return -1;
		p = hend + 1;
	} else {
		host = p;
		hend = memchr(p, ':', (size_t)(pend - p));
		if (hend == NULL)
			hend = pend;
		p = hend;
	}
	if (hend == host || (size_t)(hend - host) >= sizeof(u->host))
		return -1;
	memcpy(u->host, host, (size_t)(hend - host));
	if (p < pend) {
		size_t n;

		if (*p != ':')
			return -1;
		p++;
		n = (size_t)(pend - p);
		if (n == 0 || n > 5)
			return -1;
		for (i = 0; i < n; i++)
			if (p[i] < '0' || p[i] > '9')
				return -1;
		memcpy(u->port, p, n);
		u->port[n] = '\0';
		if (strtol(u->port, NULL, 10) < 1 || strtol(u->port, NULL, 10) > 65535)
			return -1;
	}
	if (pend == end || *pend == '#') {
		strlcpy_s(u->path, "/", sizeof(u->path));
	} else {
		const char *frag = memchr(pend, '#', (size_t)(end - pend));
		size_t n = (size_t)((frag != NULL ? frag : end) - pend);

		if (n + 2 > sizeof(u->path))
			return -1;
		if (*pend == '?')
			u->path[0] = '/';
		memcpy(u->path + (*pend == '?'), pend, n);
		u->path[n + (*pend == '?')] = '\0';
	}
	return 0;
}

int alert_http_status(const char *buf, size_t len, int *status)
{
	int v = 0;
	size_t i;

	if (len < 12 || strncmp(buf, "HTTP/1.", 7) != 0 || buf[7] < '0' || buf[7] > '9' ||
	    buf[8] != ' ')
		return -1;
	for (i = 9; i < 12; i++) {
		if (buf[i] < '0' || buf[i] > '9')
			return -1;
		v = v * 10 + (buf[i] - '0');
	}
	if (len > 12 && buf[12] != ' ' && buf[12] != '\r')
		return -1;
	if (v < 100)
		return -1;
	*status = v;
	return 0;
}

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait for events on fd until deadline; 0 ready, -1 time-out or error. */
static int wait_fd(int fd, short events, int64_t deadline)
{
	for (;;) {
		struct pollfd p = { fd, events, 0 };
		int64_t left = deadline - mono_ms();
		int r;

		if (left <= 0)
			return -1;
		r = poll(&p, 1, (int)left);
		if (r > 0)
			return 0;
		if (r < 0 && errno != EINTR)
			return -1;
	}
}

static int connect_to(const struct alert_url *u, int64_t deadline, char *err, size_t errsz)
{
	struct addrinfo hints, *res = NULL, *ai;
	int fd = -1;
	int gai;

	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_ADDRCONFIG;
	gai = getaddrinfo(u->host, u->port, &hints, &res);
	if (gai != 0) {
		snprintf(err, errsz, "%s: %s", u->host, gai_strerror(gai));
		return -1;
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		int soerr = 0;
		socklen_t sl = sizeof(soerr);

		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
			    ai->ai_protocol);
		if (fd < 0)
			continue;
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		if (errno == EINPROGRESS && wait_fd(fd, POLLOUT, deadline) == 0 &&
		    getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0 && soerr == 0)
			break;
		snprintf(err, errsz, "connect %s:%s: %s", u->host, u->port,
			 soerr != 0 ? strerror(soerr) : mono_ms() >= deadline ? "timed out"
			 : strerror(errno));
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	return fd;
}

struct conn {
	int fd;
	SSL *ssl;
};

/* Drive one TLS call to completion within the deadline; >0 done, <=0 failed. */
static int tls_wait(struct conn *c, int r, int64_t deadline)
{
	int e = SSL_get_error(c->ssl, r);

	if (e == SSL_ERROR_WANT_READ)
		return wait_fd(c->fd, POLLIN, deadline) == 0 ? 0 : -1;
	if (e == SSL_ERROR_WANT_WRITE)
		return wait_fd(c->fd, POLLOUT, deadline) == 0 ? 0 : -1;
	return -1;
}

static int send_all(struct conn *c, const char *p, size_t n, int64_t deadline)
{
	while (n > 0) {
		ssize_t w;

		if (c->ssl != NULL) {
			int r = SSL_write(c->ssl, p, (int)(n > 65536 ? 65536 : n));

			if (r <= 0) {
				if (tls_wait(c, r, deadline) < 0)
					return -1;
				continue;
			}
			w = r;
		} else {
			w = send(c->fd, p, n, MSG_NOSIGNAL);
			if (w < 0) {
				if ((errno == EAGAIN || errno == EINTR) &&
				    wait_fd(c->fd, POLLOUT, deadline) == 0)
					continue;
				return -1;
			}
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Read until the status line is complete (or the head limit); bytes read, or -1. */
static ssize_t read_head(struct conn *c, char *buf, size_t cap, int64_t deadline)
{
	size_t len = 0;

	while (len < cap && memchr(buf, '\n', len) == NULL) {
		ssize_t r;

		if (c->ssl != NULL) {
			int n = SSL_read(c->ssl, buf + len, (int)(cap - len));

			if (n <= 0) {
				if (SSL_get_error(c->ssl, n) == SSL_ERROR_ZERO_RETURN)
					break;
				if (tls_wait(c, n, deadline) < 0)
					return len > 0 ? (ssize_t)len : -1;
				continue;
			}
			r = n;
		} else {
			r = recv(c->fd, buf + len, cap - len, 0);
			if (r < 0) {
				if ((errno == EAGAIN || errno == EINTR) &&
				    wait_fd(c->fd, POLLIN, deadline) == 0)
					continue;
				return -1;
			}
			if (r == 0)
				break;
		}
		len += (size_t)r;
	}
	return (ssize_t)len;
}

int alert_webhook_post(const char *url, const char *secret, int insecure,
		       int64_t timeout_ms, const char *body, size_t len, int *status,
		       char *err, size_t errsz)
{
	int64_t deadline = mono_ms() + timeout_ms;
	struct alert_url u;
	struct conn c = { -1, NULL };
	SSL_CTX *ctx = NULL;
	char head[2048], sig[80], resp[RESP_HEAD_MAX];
	int64_t ts = (int64_t)time(NULL);
	ssize_t got;
	int hn, rc = -1;

	*status = 0;
	if (alert_url_parse(url, strlen(url), &u) < 0) {
		snprintf(err, errsz, "malformed webhook URL");
		return -1;
	}
	c.fd = connect_to(&u, deadline, err, errsz);
	if (c.fd < 0)
		return -1;
	if (u.tls) {
		int r;

		ctx = SSL_CTX_new(TLS_client_method());
		if (ctx == NULL)
			goto tls_fail;
		SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
		if (!insecure) {
			if (SSL_CTX_set_default_verify_paths(ctx) != 1)
				goto tls_fail;
			SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
		}
		c.ssl = SSL_new(ctx);
		if (c.ssl == NULL || SSL_set_fd(c.ssl, c.fd) != 1)
			goto tls_fail;
		SSL_set_tlsext_host_name(c.ssl, u.host);
		if (!insecure && SSL_set1_host(c.ssl, u.host) != 1)
			goto tls_fail;
		while ((r = SSL_connect(c.ssl)) != 1) {
			if (tls_wait(&c, r, deadline) < 0)
				goto tls_fail;
		}
	}
	alert_webhook_sign(secret, ts, body, len, sig);
	hn = snprintf(head, sizeof(head),
		      "POST %s HTTP/1.1\r\n"
		      "Host: %s%s%s%s%s\r\n"
		      "User-Agent: moatd\r\n"
		      "Content-Type: application/json\r\n"
		      "Content-Length: %zu\r\n"
		      "X-Moat-Timestamp: %lld\r\n"
		      "X-Moat-Signature: %s\r\n"
		      "Connection: close\r\n"
		      "\r\n",
		      u.path, strchr(u.host, ':') != NULL ? "[" : "", u.host,
		      strchr(u.host, ':') != NULL ? "]" : "",
		      (strcmp(u.port, u.tls ? "443" : "80") == 0) ? "" : ":",
		      (strcmp(u.port, u.tls ? "443" : "80") == 0) ? "" : u.port, len,
		      (long long)ts, sig);
	if (hn < 0 || (size_t)hn >= sizeof(head)) {
		snprintf(err, errsz, "webhook request head too long");
		goto out;
	}
	if (send_all(&c, head, (size_t)hn, deadline) < 0 ||
	    send_all(&c, body, len, deadline) < 0) {
		snprintf(err, errsz, "sending to %s:%s: %s", u.host, u.port,
			 mono_ms() >= deadline ? "timed out" : "connection lost");
		goto out;
	}
	got = read_head(&c, resp, sizeof(resp), deadline);
	if (got <= 0 || alert_http_status(resp, (size_t)got, status) < 0) {
		snprintf(err, errsz, "no HTTP answer from %s:%s%s", u.host, u.port,
			 mono_ms() >= deadline ? " (timed out)" : "");
		goto out;
	}
	if (*status < 200 || *status > 299) {
		snprintf(err, errsz, "%s:%s answered %d", u.host, u.port, *status);
		goto out;
	}
	rc = 0;
	goto out;
tls_fail:
	{
		unsigned long e = ERR_get_error();
		long v = c.ssl != NULL ? SSL_get_verify_result(c.ssl) : X509_V_OK;

		if (v != X509_V_OK)
			snprintf(err, errsz, "TLS with %s: certificate: %s", u.host,
				 X509_verify_cert_error_string(v));
		else
			snprintf(err, errsz, "TLS with %s: %s", u.host,
				 e != 0 ? ERR_reason_error_string(e) : mono_ms() >= deadline
				 ? "timed out" : "handshake failed");
	}
out:
	ERR_clear_error();
	if (c.ssl != NULL)
		SSL_free(c.ssl);
	SSL_CTX_free(ctx);
	close(c.fd);
	return rc;
}
