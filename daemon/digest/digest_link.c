/*
 * digest_link: the link key and the signed tokens of digest links.
 *
 * The key file is created once with O_EXCL and fsync'ed (file and
 * directory), so two starts never write two keys and a crash never leaves
 * a short one; any later start reads it and refuses a file of the wrong
 * size or one that group or others may read.  The key lives in one static
 * buffer, written at start-up before any thread reads it.
 *
 * Tokens: base64url(payload) "." base64url(HMAC-SHA256(key, payload)), no
 * padding.  The payload is a compact JSON object {"r": rcpt, "u": user id,
 * "i": item id, "a": action, "x": expiry (unix s), "n": nonce}.  Verifying
 * compares the MAC in constant time (CRYPTO_memcmp) before the payload is
 * parsed at all; a token that fails either way is "forged".
 */
#include "digest.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../util/util.h"

static unsigned char link_key[DIGEST_KEY_LEN];
static int link_key_loaded;

const unsigned char *digest_key(void)
{
	return link_key_loaded ? link_key : NULL;
}

static int read_key(const char *path, char *err, size_t errsz)
{
	unsigned char buf[DIGEST_KEY_LEN + 1];
	struct stat sb;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

	if (fd < 0) {
		snprintf(err, errsz, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
		snprintf(err, errsz, "%s: not a regular file", path);
		goto fail;
	}
	if ((sb.st_mode & 077) != 0) {
		snprintf(err, errsz, "%s: mode %03o; the link key must be readable by its owner"
			 " only (chmod 600)", path, (unsigned)(sb.st_mode & 0777));
		goto fail;
	}
	n = read(fd, buf, sizeof(buf));
	if (n != DIGEST_KEY_LEN || sb.st_size != DIGEST_KEY_LEN) {
		snprintf(err, errsz, "%s: %lld bytes; a link key is exactly %d (remove the file"
			 " to make a new one, which voids every link sent)", path,
			 (long long)sb.st_size, DIGEST_KEY_LEN);
		goto fail;
	}
	memcpy(link_key, buf, DIGEST_KEY_LEN);
	OPENSSL_cleanse(buf, sizeof(buf));
	close(fd);
	link_key_loaded = 1;
	return 0;
fail:
	close(fd);
	return -1;
}

static int create_key(const char *dir, const char *path, char *err, size_t errsz)
{
	unsigned char buf[DIGEST_KEY_LEN];
	int dfd;
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);

	if (fd < 0)
		return errno == EEXIST ? 1 : -1;
	if (RAND_bytes(buf, sizeof(buf)) != 1) {
		snprintf(err, errsz, "%s: no randomness for the link key", path);
		goto fail;
	}
	if (fchmod(fd, 0600) < 0 || write(fd, buf, sizeof(buf)) != (ssize_t)sizeof(buf) ||
	    fsync(fd) < 0) {
		snprintf(err, errsz, "%s: %s", path, strerror(errno));
		goto fail;
	}
	close(fd);
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 || fsync(dfd) < 0) {
		snprintf(err, errsz, "%s: %s", dir, strerror(errno));
		if (dfd >= 0)
			close(dfd);
		return -2;
	}
	close(dfd);
	memcpy(link_key, buf, DIGEST_KEY_LEN);
	OPENSSL_cleanse(buf, sizeof(buf));
	link_key_loaded = 1;
	return 0;
fail:
	OPENSSL_cleanse(buf, sizeof(buf));
	close(fd);
	unlink(path); /* never leave a short key behind */
	return -2;
}

int digest_key_init(const char *data_dir, char *err, size_t errsz)
{
	char dir[1200];
	char path[1300];
	int rc;

	snprintf(dir, sizeof(dir), "%s/secrets", data_dir);
	snprintf(path, sizeof(path), "%s/link.key", dir);
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		snprintf(err, errsz, "%s: %s", dir, strerror(errno));
		return -1;
	}
	rc = create_key(dir, path, err, errsz);
	if (rc == 0)
		return 0;
	if (rc == -2)
		return -1;
	if (rc < 0 && errno != EEXIST) {
		snprintf(err, errsz, "%s: %s", path, strerror(errno));
		return -1;
	}
	return read_key(path, err, errsz);
}

const char *digest_action_name(enum digest_action a)
{
	switch (a) {
	case DIGEST_RELEASE:
		return "release";
	case DIGEST_DELETE:
		return "delete";
	case DIGEST_ALLOW:
		return "allow";
	}
	abort();
}

void digest_link_nonce(struct digest_link *l)
{
	unsigned char b[16];
	size_t i;

	if (RAND_bytes(b, sizeof(b)) != 1)
		random_bytes(b, sizeof(b));
	for (i = 0; i < sizeof(b); i++)
		snprintf(l->nonce + 2 * i, 3, "%02x", b[i]);
}

/* base64url without padding of in[0..n) into out; the length, or 0 when out is too small. */
static size_t b64url_enc(const unsigned char *in, size_t n, char *out, size_t outsz)
{
	static const char tab[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	size_t o = 0;
	size_t i;

	if ((n + 2) / 3 * 4 + 1 > outsz)
		return 0;
	for (i = 0; i + 2 < n; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];

		out[o++] = tab[v >> 18 & 63];
		out[o++] = tab[v >> 12 & 63];
		out[o++] = tab[v >> 6 & 63];
		out[o++] = tab[v & 63];
	}
	if (n - i == 1) {
		uint32_t v = (uint32_t)in[i] << 16;

		out[o++] = tab[v >> 18 & 63];
		out[o++] = tab[v >> 12 & 63];
	} else if (n - i == 2) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;

		out[o++] = tab[v >> 18 & 63];
		out[o++] = tab[v >> 12 & 63];
		out[o++] = tab[v >> 6 & 63];
	}
	out[o] = '\0';
	return o;
}

static int b64url_val(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '-')
		return 62;
	if (c == '_')
		return 63;
	return -1;
}

/* Strict base64url without padding; -1 on any other byte or a bad length. */
static int b64url_dec(const char *in, size_t n, unsigned char *out, size_t outsz,
		      size_t *outlen)
{
	uint32_t acc = 0;
	size_t bits = 0, o = 0, i;

	if (n % 4 == 1)
		return -1;
	for (i = 0; i < n; i++) {
		int v = b64url_val(in[i]);

		if (v < 0)
			return -1;
		acc = acc << 6 | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (o == outsz)
				return -1;
			out[o++] = (unsigned char)(acc >> bits & 0xff);
		}
	}
	/* Unused trailing bits must be zero: one encoding per token. */
	if ((acc & ((1u << bits) - 1)) != 0)
		return -1;
	*outlen = o;
	return 0;
}

static void mac(const unsigned char *key, const void *p, size_t n, unsigned char out[32])
{
	unsigned int len = 32;

	if (HMAC(EVP_sha256(), key, DIGEST_KEY_LEN, p, n, out, &len) == NULL || len != 32)
		abort(); /* OpenSSL without SHA-256: nothing can be signed */
}

int digest_link_sign(const unsigned char *key, const struct digest_link *l, char *out,
		     size_t outsz)
{
	unsigned char sig[32];
	json_t *o;
	char *payload;
	size_t plen, n, m;

	o = json_pack("{s:s, s:I, s:I, s:s, s:I, s:s}", "r", l->rcpt, "u",
		      (json_int_t)l->user_id, "i", (json_int_t)l->item_id, "a",
		      digest_action_name(l->action), "x", (json_int_t)l->expires, "n", l->nonce);
	if (o == NULL)
		return -1;
	payload = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(o);
	if (payload == NULL)
		return -1;
	plen = strlen(payload);
	mac(key, payload, plen, sig);
	n = b64url_enc((const unsigned char *)payload, plen, out, outsz);
	free(payload);
	if (n == 0 || n + 2 > outsz)
		return -1;
	out[n] = '.';
	m = b64url_enc(sig, sizeof(sig), out + n + 1, outsz - n - 1);
	return m == 0 ? -1 : 0;
}

static int pick_action(const char *s, enum digest_action *a)
{
	if (strcmp(s, "release") == 0)
		*a = DIGEST_RELEASE;
	else if (strcmp(s, "delete") == 0)
		*a = DIGEST_DELETE;
	else if (strcmp(s, "allow") == 0)
		*a = DIGEST_ALLOW;
	else
		return -1;
	return 0;
}

/* The payload's fields, all required, of the right types; 0 or -1. */
static int parse_payload(const unsigned char *p, size_t n, struct digest_link *l)
{
	json_error_t je;
	json_t *o = json_loadb((const char *)p, n, JSON_REJECT_DUPLICATES, &je);
	json_t *r, *u, *i, *a, *x, *nc;
	int rc = -1;

	if (o == NULL)
		return -1;
	if (!json_is_object(o) || json_object_size(o) != 6)
		goto out;
	r = json_object_get(o, "r");
	u = json_object_get(o, "u");
	i = json_object_get(o, "i");
	a = json_object_get(o, "a");
	x = json_object_get(o, "x");
	nc = json_object_get(o, "n");
	if (!json_is_string(r) || !json_is_integer(u) || !json_is_integer(i) ||
	    !json_is_string(a) || !json_is_integer(x) || !json_is_string(nc))
		goto out;
	if (json_string_length(r) == 0 || json_string_length(r) >= sizeof(l->rcpt) ||
	    json_string_length(nc) != sizeof(l->nonce) - 1 ||
	    strspn(json_string_value(nc), "0123456789abcdef") != sizeof(l->nonce) - 1)
		goto out;
	if (json_integer_value(u) <= 0 || json_integer_value(i) <= 0)
		goto out;
	if (pick_action(json_string_value(a), &l->action) < 0)
		goto out;
	strlcpy_s(l->rcpt, json_string_value(r), sizeof(l->rcpt));
	strlcpy_s(l->nonce, json_string_value(nc), sizeof(l->nonce));
	l->user_id = json_integer_value(u);
	l->item_id = json_integer_value(i);
	l->expires = json_integer_value(x);
	rc = 0;
out:
	json_decref(o);
	return rc;
}

enum digest_verdict digest_link_verify(const unsigned char *key, const char *token,
				       size_t len, int64_t now_s, struct digest_link *out)
{
	unsigned char payload[DIGEST_TOKEN_MAX];
	unsigned char sig[40];
	unsigned char want[32];
	const char *dot;
	size_t plen, slen;

	memset(out, 0, sizeof(*out));
	if (key == NULL || len == 0 || len > DIGEST_TOKEN_MAX)
		return DIGEST_LINK_FORGED;
	dot = memchr(token, '.', len);
	if (dot == NULL)
		return DIGEST_LINK_FORGED;
	if (b64url_dec(token, (size_t)(dot - token), payload, sizeof(payload), &plen) < 0 ||
	    b64url_dec(dot + 1, len - (size_t)(dot - token) - 1, sig, sizeof(sig), &slen) < 0 ||
	    slen != sizeof(want) || plen == 0)
		return DIGEST_LINK_FORGED;
	mac(key, payload, plen, want);
	if (CRYPTO_memcmp(want, sig, sizeof(want)) != 0)
		return DIGEST_LINK_FORGED;
	if (parse_payload(payload, plen, out) < 0)
		return DIGEST_LINK_FORGED;
	if (now_s >= out->expires)
		return DIGEST_LINK_EXPIRED;
	return DIGEST_LINK_OK;
}
