/*
 * smtp_tls: STARTTLS for the SMTP server side.
 *
 * smtp_tls_new() runs at start-up, before privileges are dropped: it loads
 * tls_cert/tls_key (PEM) or, when both are empty, a self-signed pair kept in
 * <data_dir>/tls/ (made on first run: EC P-256, CN=hostname, 10 years).
 * TLS 1.2 and later, OpenSSL's default cipher lists.
 *
 * smtp_tls_switch() is called by smtp_session.c once the "220 Ready to
 * start TLS" reply has left the plain bufferevent: that bufferevent is freed
 * without closing the socket and a server-side OpenSSL bufferevent takes the
 * same socket.  The caller refused STARTTLS if any byte was buffered after
 * it (CVE-2011-0411), and resets HELO, transaction and AUTH state when the
 * handshake completes (BEV_EVENT_CONNECTED).
 *
 * smtp_tls_reload() (SIGHUP, on the loop) builds a new context from the
 * files and swaps it in only when it loaded; sessions keep the one they
 * started their handshake with.
 *
 * Owns: the SSL_CTX.  The session owns its bufferevent (and through it the
 * SSL object and the socket).
 */
#include "smtp_internal.h"

#include <errno.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../conf/conf.h"
#include "../log/log.h"
#include "../util/util.h"

#define INPUT_HIGH (256 * 1024) /* as in smtp_session.c */
#define CERT_DAYS (3650L)

struct smtp_tls {
	SSL_CTX *ctx;
};

static void ssl_err(char *err, size_t errsz, const char *what, const char *path)
{
	char e[256];

	ERR_error_string_n(ERR_get_error(), e, sizeof(e));
	snprintf(err, errsz, "tls: %s %s: %s", what, path, e);
}

/* Write PEM through a temporary file and rename: never a half-written key. */
static int write_pem(const char *path, EVP_PKEY *key, X509 *crt, char *err, size_t errsz)
{
	char tmp[1300];
	FILE *f;
	int fd;
	int ok;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, key != NULL ? 0600 : 0644);
	if (fd < 0) {
		snprintf(err, errsz, "tls: %s: %s", tmp, strerror(errno));
		return -1;
	}
	f = fdopen(fd, "w");
	if (f == NULL) {
		close(fd);
		snprintf(err, errsz, "tls: %s: %s", tmp, strerror(errno));
		return -1;
	}
	if (key != NULL)
		ok = PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL) == 1;
	else
		ok = PEM_write_X509(f, crt) == 1;
	ok = fflush(f) == 0 && fsync(fileno(f)) == 0 && ok;
	if (fclose(f) != 0)
		ok = 0;
	if (!ok || rename(tmp, path) < 0) {
		snprintf(err, errsz, "tls: cannot write %s", path);
		unlink(tmp);
		return -1;
	}
	return 0;
}

/* A self-signed EC P-256 certificate for hostname into cert/key paths. */
static int make_self_signed(const char *host, const char *cert, const char *key,
			    char *err, size_t errsz)
{
	EVP_PKEY *pk = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	X509_NAME *name;
	unsigned char serial[16];
	BIGNUM *bn = NULL;
	int rc = -1;

	if (pk == NULL || x == NULL || RAND_bytes(serial, sizeof(serial)) != 1) {
		ssl_err(err, errsz, "cannot generate a key for", key);
		goto out;
	}
	serial[0] &= 0x7f; /* positive */
	bn = BN_bin2bn(serial, sizeof(serial), NULL);
	if (bn == NULL || BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) == NULL ||
	    X509_set_version(x, 2) != 1 ||
	    X509_gmtime_adj(X509_getm_notBefore(x), 0) == NULL ||
	    X509_gmtime_adj(X509_getm_notAfter(x), CERT_DAYS * 86400L) == NULL ||
	    X509_set_pubkey(x, pk) != 1) {
		ssl_err(err, errsz, "cannot build", cert);
		goto out;
	}
	name = X509_get_subject_name(x);
	if (X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)host,
				       -1, -1, 0) != 1 ||
	    X509_set_issuer_name(x, name) != 1 || X509_sign(x, pk, EVP_sha256()) == 0) {
		ssl_err(err, errsz, "cannot sign", cert);
		goto out;
	}
	if (write_pem(key, pk, NULL, err, errsz) < 0 || write_pem(cert, NULL, x, err, errsz) < 0)
		goto out;
	log_notice(NULL, "smtp", "tls generated self-signed certificate cn=%s cert=%s", host,
		   cert);
	rc = 0;
out:
	BN_free(bn);
	X509_free(x);
	EVP_PKEY_free(pk);
	return rc;
}

/*
 * The certificate and key files: tls_cert/tls_key, or the self-signed pair
 * in <data_dir>/tls (made when missing).
 */
static int tls_paths(const struct conf *conf, char *cert, size_t certsz, char *key,
		     size_t keysz, char *err, size_t errsz)
{
	char dir[1100];

	if (conf->tls_cert[0] == '\0' && conf->tls_key[0] == '\0') {
		snprintf(dir, sizeof(dir), "%s/tls", conf->data_dir);
		snprintf(cert, certsz, "%s/cert.pem", dir);
		snprintf(key, keysz, "%s/key.pem", dir);
		if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
			snprintf(err, errsz, "tls: %s: %s", dir, strerror(errno));
			return -1;
		}
		if ((access(cert, R_OK) < 0 || access(key, R_OK) < 0) &&
		    make_self_signed(conf->hostname[0] ? conf->hostname : "localhost", cert, key,
				     err, errsz) < 0)
			return -1;
		return 0;
	}
	if (conf->tls_cert[0] == '\0' || conf->tls_key[0] == '\0') {
		snprintf(err, errsz, "tls: set both tls_cert and tls_key, or neither");
		return -1;
	}
	strlcpy_s(cert, conf->tls_cert, certsz);
	strlcpy_s(key, conf->tls_key, keysz);
	return 0;
}

/* A server context holding the pair; NULL with err.  Nothing is half-loaded. */
static SSL_CTX *tls_ctx_new(const struct conf *conf, char *err, size_t errsz)
{
	char cert[1200];
	char key[1200];
	SSL_CTX *ctx;

	if (tls_paths(conf, cert, sizeof(cert), key, sizeof(key), err, errsz) < 0)
		return NULL;
	ctx = SSL_CTX_new(TLS_server_method());
	if (ctx == NULL) {
		ssl_err(err, errsz, "cannot create context", "");
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
			    SSL_OP_CIPHER_SERVER_PREFERENCE);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
		ssl_err(err, errsz, "cannot load certificate", cert);
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		ssl_err(err, errsz, "cannot load key", key);
		goto fail;
	}
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

struct smtp_tls *smtp_tls_new(const struct conf *conf, char *err, size_t errsz)
{
	struct smtp_tls *t = xcalloc(1, sizeof(*t));

	t->ctx = tls_ctx_new(conf, err, errsz);
	if (t->ctx == NULL) {
		smtp_tls_free(t);
		return NULL;
	}
	return t;
}

/*
 * SIGHUP: a new context from the files named in conf.  Sessions already in
 * TLS keep the old context through their SSL object's reference; new
 * STARTTLS handshakes get the new one.  On failure the old one stays.
 */
int smtp_tls_reload(struct smtp_tls *t, const struct conf *conf, char *err, size_t errsz)
{
	SSL_CTX *ctx = tls_ctx_new(conf, err, errsz);

	if (ctx == NULL)
		return -1;
	SSL_CTX_free(t->ctx);
	t->ctx = ctx;
	return 0;
}

void smtp_tls_free(struct smtp_tls *t)
{
	if (t == NULL)
		return;
	SSL_CTX_free(t->ctx);
	free(t);
}

int smtp_tls_switch(struct smtp_session *s, void (*rd)(struct bufferevent *, void *),
		    void (*wr)(struct bufferevent *, void *),
		    void (*ev)(struct bufferevent *, short, void *))
{
	const struct conf *conf = s->srv->conf;
	struct timeval rdtv = { (time_t)(conf->idle_timeout_ms / 1000),
				(suseconds_t)(conf->idle_timeout_ms % 1000 * 1000) };
	struct bufferevent *nb;
	SSL *ssl;

	ssl = SSL_new(s->srv->tls->ctx);
	if (ssl == NULL)
		return -1;
	/* The plain bufferevent goes, the socket stays. */
	bufferevent_disable(s->bev, EV_READ | EV_WRITE);
	bufferevent_setcb(s->bev, NULL, NULL, NULL, NULL);
	bufferevent_setfd(s->bev, -1);
	bufferevent_free(s->bev);
	nb = bufferevent_openssl_socket_new(s->srv->base, s->fd, ssl,
					    BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
	if (nb == NULL)
		abort(); /* allocation failure: the socket would have no owner */
	bufferevent_openssl_set_allow_dirty_shutdown(nb, 1);
	s->bev = nb;
	bufferevent_setcb(nb, rd, wr, ev, s);
	bufferevent_setwatermark(nb, EV_READ, 0, INPUT_HIGH);
	bufferevent_set_timeouts(nb, &rdtv, &rdtv);
	bufferevent_enable(nb, EV_READ | EV_WRITE);
	return 0;
}

void smtp_tls_established(struct smtp_session *s)
{
	SSL *ssl = bufferevent_openssl_get_ssl(s->bev);

	s->tls = 1;
	if (ssl != NULL)
		snprintf(s->tls_info, sizeof(s->tls_info), "version=%s cipher=%s",
			 SSL_get_version(ssl), SSL_get_cipher_name(ssl));
	log_info(s->idstr, "smtp", "tls established client=[%s] %s", s->addr, s->tls_info);
}
