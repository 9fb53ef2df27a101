/*
 * smtp_server: listening sockets, the table of live sessions (by id, for
 * callbacks that must not hold pointers), per-client-address connection
 * counts, and shutdown.  Sessions themselves are in smtp_session.c.
 */
#include "smtp_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../conf/conf.h"
#include "../log/log.h"
#include "../util/net.h"
#include "../util/util.h"

/* Sessions per client address, or per account ("@" name) once authenticated. */
struct smtp_client {
	struct smtp_client *next;
	char addr[SMTP_COUNT_KEY_MAX];
	int sessions;
};

static uint64_t hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ULL; /* FNV-1a */

	while (*s != '\0') {
		h ^= (unsigned char)*s++;
		h *= 1099511628211ULL;
	}
	return h;
}

static int bind_listener(const struct conf_listen *l, char *bound, size_t boundsz,
			 char *err, size_t errsz)
{
	char why[300];
	int fd = net_listen(l->host, l->port, 1024, 1, bound, boundsz, why, sizeof(why));

	if (fd < 0)
		snprintf(err, errsz, "smtp listener %s", why);
	return fd;
}

static void accept_cb(struct evconnlistener *lis, evutil_socket_t fd,
		      struct sockaddr *sa, int salen, void *arg)
{
	struct smtp_server *srv = arg;
	int i;
	int submission = 0;

	for (i = srv->nsmtp_listeners; i < srv->nlisteners; i++)
		if (srv->listeners[i] == lis)
			submission = 1;
	/*
	 * Replies are small writes that the client waits for; with Nagle on,
	 * a reply written while an earlier one is unacknowledged waits for
	 * the peer's delayed ACK (about 40 ms).  Only AF_INET/AF_INET6 here.
	 */
	if (sa->sa_family == AF_INET || sa->sa_family == AF_INET6) {
		int one = 1;

		if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0)
			log_debug(NULL, "smtp", "TCP_NODELAY: %s", strerror(errno));
	}
	smtp_session_accept(srv, fd, sa, (socklen_t)salen, submission);
}

static void accept_error_cb(struct evconnlistener *lis, void *arg)
{
	int e = EVUTIL_SOCKET_ERROR();

	(void)lis;
	(void)arg;
	/* EMFILE and friends: logged, and the listener keeps going. */
	log_error(NULL, "smtp", "accept failed: %s", evutil_socket_error_to_string(e));
}

struct smtp_server *smtp_server_new(struct event_base *base, const struct conf *conf,
				    char *err, size_t errsz)
{
	struct smtp_server *srv = xcalloc(1, sizeof(*srv));
	int i;

	srv->base = base;
	srv->conf = conf;
	srv->table_size = 4096;
	srv->table = xcalloc(srv->table_size, sizeof(*srv->table));
	srv->clients_size = 4096;
	srv->clients = xcalloc(srv->clients_size, sizeof(*srv->clients));
	srv->next_id = ((uint64_t)time_now_ms() << 16);
	srv->line = xmalloc((size_t)conf->max_command_line + 1);
	srv->scratch_size = 64 * 1024;
	srv->scratch = xmalloc(srv->scratch_size);
	srv->tls = smtp_tls_new(conf, err, errsz);
	if (srv->tls == NULL) {
		smtp_server_free(srv);
		return NULL;
	}
	/* smtp_listen first, then submission_listen (AUTH required there). */
	for (i = 0; i < conf->smtp_listen_count + conf->submission_listen_count; i++) {
		const struct conf_listen *l = i < conf->smtp_listen_count
			? &conf->smtp_listen[i]
			: &conf->submission_listen[i - conf->smtp_listen_count];
		int fd = bind_listener(l, srv->listen_addrs[i],
				       sizeof(srv->listen_addrs[i]), err, errsz);

		if (fd < 0) {
			smtp_server_free(srv);
			return NULL;
		}
		srv->listeners[i] = evconnlistener_new(base, accept_cb, srv,
						       LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC |
						       LEV_OPT_DISABLED, -1, fd);
		if (srv->listeners[i] == NULL) {
			close(fd);
			snprintf(err, errsz, "smtp_listen: cannot create listener");
			smtp_server_free(srv);
			return NULL;
		}
		evconnlistener_set_error_cb(srv->listeners[i], accept_error_cb);
		srv->nlisteners++;
		if (i < conf->smtp_listen_count)
			srv->nsmtp_listeners++;
	}
	return srv;
}

void smtp_server_addresses(const struct smtp_server *srv, char *out, size_t outsz)
{
	size_t used = 0;
	int i;

	out[0] = '\0';
	for (i = 0; i < srv->nlisteners && used < outsz; i++) {
		int n = snprintf(out + used, outsz - used, "%s%s", i ? "," : "",
				 srv->listen_addrs[i]);

		if (n < 0)
			break;
		used += (size_t)n;
	}
}

void smtp_server_start(struct smtp_server *srv, struct spool *spool,
		       struct spool_writer *writer)
{
	int i;

	srv->spool = spool;
	srv->writer = writer;
	for (i = 0; i < srv->nlisteners; i++)
		evconnlistener_enable(srv->listeners[i]);
}

static int acquire_key(struct smtp_server *srv, struct smtp_session *s, const char *key)
{
	size_t b = hash_str(key) % srv->clients_size;
	struct smtp_client *c;

	for (c = srv->clients[b]; c != NULL; c = c->next)
		if (strcmp(c->addr, key) == 0)
			break;
	if (c == NULL) {
		c = xcalloc(1, sizeof(*c));
		strlcpy_s(c->addr, key, sizeof(c->addr));
		c->next = srv->clients[b];
		srv->clients[b] = c;
	}
	c->sessions++;
	s->client = c;
	return c->sessions;
}

int smtp_server_client_acquire(struct smtp_server *srv, struct smtp_session *s)
{
	return acquire_key(srv, s, s->addr);
}

int smtp_server_client_rekey(struct smtp_server *srv, struct smtp_session *s, const char *key)
{
	smtp_server_client_release(srv, s);
	return acquire_key(srv, s, key);
}

void smtp_server_client_release(struct smtp_server *srv, struct smtp_session *s)
{
	struct smtp_client **pp;
	struct smtp_client *c = s->client;
	size_t b;

	if (c == NULL)
		return;
	s->client = NULL;
	if (--c->sessions > 0)
		return;
	b = hash_str(c->addr) % srv->clients_size;
	for (pp = &srv->clients[b]; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			free(c);
			return;
		}
	}
	abort(); /* a counted client missing from its bucket */
}

void smtp_server_link(struct smtp_server *srv, struct smtp_session *s)
{
	size_t b;

	s->id = ++srv->next_id;
	snprintf(s->idstr, sizeof(s->idstr), "%016llx", (unsigned long long)s->id);
	b = s->id % srv->table_size;
	s->hnext = srv->table[b];
	srv->table[b] = s;
	s->prev = NULL;
	s->next = srv->sessions;
	if (srv->sessions != NULL)
		srv->sessions->prev = s;
	srv->sessions = s;
	srv->nsessions++;
}

void smtp_server_unlink(struct smtp_server *srv, struct smtp_session *s)
{
	struct smtp_session **pp;

	for (pp = &srv->table[s->id % srv->table_size]; *pp != NULL; pp = &(*pp)->hnext) {
		if (*pp == s) {
			*pp = s->hnext;
			break;
		}
	}
	if (s->prev != NULL)
		s->prev->next = s->next;
	else
		srv->sessions = s->next;
	if (s->next != NULL)
		s->next->prev = s->prev;
	srv->nsessions--;
	smtp_server_client_release(srv, s);
}

struct smtp_session *smtp_server_lookup(struct smtp_server *srv, uint64_t id)
{
	struct smtp_session *s;

	for (s = srv->table[id % srv->table_size]; s != NULL; s = s->hnext)
		if (s->id == id)
			return s;
	return NULL;
}

void smtp_server_set_policy(struct smtp_server *srv, struct policy *policy)
{
	srv->policy = policy;
}

void smtp_server_policy_done(uint64_t session_id, void *arg)
{
	struct smtp_server *srv = arg;
	struct smtp_session *s = smtp_server_lookup(srv, session_id);

	if (s != NULL) /* else the client left while we were asking */
		smtp_session_policy_resume(s);
}

void smtp_server_commit_done(uint64_t session_id, const char *qid, enum spool_err err,
			     void *arg)
{
	struct smtp_server *srv = arg;
	struct smtp_session *s = smtp_server_lookup(srv, session_id);

	if (s == NULL) {
		/* The client left before its 250; the message is queued anyway. */
		if (err == SPOOL_OK)
			log_info(qid, "smtp", "committed after client disconnect session=%016llx",
				 (unsigned long long)session_id);
		return;
	}
	smtp_session_commit_done(s, qid, err);
}

void smtp_server_shutdown(struct smtp_server *srv)
{
	struct smtp_session *s;
	struct smtp_session *next;
	int i;

	srv->shutting_down = 1;
	for (i = 0; i < srv->nlisteners; i++) {
		evconnlistener_free(srv->listeners[i]);
		srv->listeners[i] = NULL;
	}
	srv->nlisteners = 0;
	for (s = srv->sessions; s != NULL; s = next) {
		next = s->next;
		smtp_session_drain(s);
	}
}

void smtp_server_close_all(struct smtp_server *srv)
{
	while (srv->sessions != NULL)
		smtp_session_kill(srv->sessions);
}

int smtp_server_session_count(const struct smtp_server *srv)
{
	return srv->nsessions;
}

int smtp_server_reload_tls(struct smtp_server *srv, const struct conf *conf, char *err,
			   size_t errsz)
{
	return smtp_tls_reload(srv->tls, conf, err, errsz);
}

void smtp_server_free(struct smtp_server *srv)
{
	size_t b;
	int i;

	if (srv == NULL)
		return;
	smtp_server_close_all(srv);
	for (i = 0; i < (int)ARRAY_LEN(srv->listeners); i++)
		if (srv->listeners[i] != NULL)
			evconnlistener_free(srv->listeners[i]);
	smtp_authsrv_free(srv->authsrv);
	smtp_tls_free(srv->tls);
	for (b = 0; b < srv->clients_size; b++) {
		while (srv->clients[b] != NULL) {
			struct smtp_client *c = srv->clients[b];

			srv->clients[b] = c->next;
			free(c);
		}
	}
	free(srv->clients);
	free(srv->table);
	free(srv->line);
	free(srv->scratch);
	free(srv);
}
