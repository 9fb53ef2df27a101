/*
 * main: moatd's start and stop.  The only file that knows both the mail
 * side and the HTTP side.
 *
 * Start: flags and config; listeners bound; privileges dropped (when
 * `user` is set and we are root; regaining root must then fail); the data
 * directory locked against a second instance; the database opened and
 * migrated; spool and queue index reconciled; then the spool writer, SMTP
 * and HTTP start and one "ready" line is logged.
 * Stop (SIGTERM/SIGINT): stop accepting, let sessions finish their current
 * message for up to shutdown_timeout, 421 the rest, drain the writer, exit 0.
 * SIGHUP reloads: the config file is read again (the flags still win) and
 * log_level, tls_cert and tls_key take effect; a log file is reopened and
 * the STARTTLS pair loaded again (a pair that fails to load leaves the old
 * one in use); other changed keys are logged as needing a restart.
 * Under systemd (NOTIFY_SOCKET) moatd says READY=1 once ready, RELOADING=1
 * around a reload, STOPPING=1, and WATCHDOG=1 from the loop at half of
 * WATCHDOG_USEC, so a loop that is stuck stops the pings.
 * Errors at start are fatal with exit 1.
 */
#include <errno.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cluster/cluster_pg.h"
#include "cluster/cluster_redis.h"
#include "conf/conf.h"
#include "alert/alert.h"
#include "digest/digest.h"
#include "dns/dns.h"
#include "http/http.h"
#include "policy/policy.h"
#include "log/log.h"
#include "mime/mime.h"
#include "quarantine/quarantine_admin.h"
#include "quarantine/quarantine_purge.h"
#include "score/greylist.h"
#include "queue/queue.h"
#include "smtp/smtp.h"
#include "spool/spool.h"
#include "store/store.h"
#include "store/store_cluster.h"
#include "util/sdnotify.h"
#include "util/util.h"

/* The API's Argon2id check (daemon/http/http_auth.c), shared with SMTP AUTH. */
int http_password_verify(const char *hash, const char *pw);

#define MAX_OVERRIDES 64

struct moatd {
	struct conf conf;
	struct event_base *base;
	struct smtp_server *smtp;
	struct http_server *http;
	struct spool *spool;
	struct spool_writer *writer;
	struct dns *dns;
	struct queue_runner *queue;
	struct quarantine_purger *purger;
	struct digest *digest;
	struct alert *alert;          /* account alerts: mail and webhook */
	struct policy *policy;
	struct cluster_redis *redis;  /* cluster counters; NULL: not in a Redis cluster */
	struct cluster_pg *pg;        /* shared tables; NULL: not in a PostgreSQL cluster */
	struct event *sig_term;
	struct event *sig_int;
	struct event *sig_hup;
	struct event *stop_poll;
	struct event *watchdog;       /* WATCHDOG=1 to the service manager */
	int64_t stop_deadline;
	int lock_fd;
	char db_path[1200];
};

static void usage(FILE *out)
{
	fprintf(out,
		"usage: moatd [-c FILE] [-o key=value]... [--data-dir DIR]\n"
		"             [--smtp-listen ADDR:PORT[,...]] [--http-listen ADDR:PORT] [-t]\n"
		"  -c, --config FILE    read the bootstrap config (see etc/moatd.conf)\n"
		"  -o key=value         set any config key; wins over the file\n"
		"      --data-dir DIR   same as -o data_dir=DIR\n"
		"      --smtp-listen L  same as -o smtp_listen=L\n"
		"      --http-listen L  same as -o http_listen=L\n"
		"  -t, --check-config   print the effective config and exit\n"
		"  -V, --version        print the version and exit\n"
		"       moatd SUBCOMMAND [-c FILE] [--data-dir DIR] ...  (see below)\n");
	for (const struct cli_command *c = cli_commands; c->name != NULL; c++)
		fprintf(out, "  %-20s %s\n", c->name, c->summary);
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void die(const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "moatd: %s\n", msg);
	log_error(NULL, "main", "%s", msg);
	exit(1);
}

/* What the config came from, read again on SIGHUP: the file, then the flags. */
static const char *conf_file;
static char *conf_overrides[MAX_OVERRIDES]; /* "key=value" */
static int conf_noverrides;

static int apply_config(struct conf *conf, char *err, size_t errsz)
{
	int i;

	conf_defaults(conf);
	if (conf_file != NULL && conf_load_file(conf, conf_file, err, errsz) < 0)
		return -1;
	for (i = 0; i < conf_noverrides; i++) {
		const char *o = conf_overrides[i];
		const char *eq = strchr(o, '=');
		char key[128];
		char sub[1200];

		if (eq == NULL || (size_t)(eq - o) >= sizeof(key)) {
			snprintf(err, errsz, "-o %s: expected key=value", o);
			return -1;
		}
		memcpy(key, o, (size_t)(eq - o));
		key[eq - o] = '\0';
		if (conf_set(conf, key, eq + 1, sub, sizeof(sub)) < 0) {
			snprintf(err, errsz, "command line: %s", sub);
			return -1;
		}
	}
	return 0;
}

static void load_config(struct conf *conf, int argc, char **argv, int *check_only)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "data-dir", required_argument, NULL, 'd' },
		{ "smtp-listen", required_argument, NULL, 's' },
		{ "http-listen", required_argument, NULL, 'l' },
		{ "check-config", no_argument, NULL, 't' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *file = NULL;
	char **overrides = conf_overrides;
	int noverrides = 0;
	char err[1400];
	int opt;

	while ((opt = getopt_long(argc, argv, "c:o:tVh", longopts, NULL)) != -1) {
		char buf[1200];
		const char *key = NULL;

		switch (opt) {
		case 'c':
			file = optarg;
			continue;
		case 'o':
			if (noverrides == MAX_OVERRIDES)
				die("too many -o options");
			overrides[noverrides++] = xstrdup(optarg);
			continue;
		case 'd':
			key = "data_dir";
			break;
		case 's':
			key = "smtp_listen";
			break;
		case 'l':
			key = "http_listen";
			break;
		case 't':
			*check_only = 1;
			continue;
		case 'V':
			printf("moatd %s\n", MOAT_VERSION);
			exit(0);
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			exit(1);
		}
		if (noverrides == MAX_OVERRIDES)
			die("too many options");
		snprintf(buf, sizeof(buf), "%s=%s", key, optarg);
		overrides[noverrides++] = xstrdup(buf);
	}
	if (optind != argc) {
		usage(stderr);
		exit(1);
	}
	conf_file = file;
	conf_noverrides = noverrides;
	if (apply_config(conf, err, sizeof(err)) < 0)
		die("%s", err);
}

static void make_data_dir(const struct conf *conf, const struct passwd *pw)
{
	struct stat sb;

	if (mkdir(conf->data_dir, 0750) == 0) {
		if (pw != NULL && chown(conf->data_dir, pw->pw_uid, pw->pw_gid) < 0)
			die("data_dir %s: chown: %s", conf->data_dir, strerror(errno));
		return;
	}
	if (errno != EEXIST)
		die("data_dir %s: %s", conf->data_dir, strerror(errno));
	if (stat(conf->data_dir, &sb) < 0 || !S_ISDIR(sb.st_mode))
		die("data_dir %s: not a directory", conf->data_dir);
}

static void drop_privileges(const struct passwd *pw)
{
	if (setgroups(0, NULL) < 0 || setgid(pw->pw_gid) < 0 || setuid(pw->pw_uid) < 0)
		die("cannot drop privileges to %s: %s", pw->pw_name, strerror(errno));
	if (setuid(0) == 0)
		die("regained root after dropping privileges; refusing to run");
}

static void lock_data_dir(struct moatd *d)
{
	char path[1200];
	char pid[32];
	int n;

	snprintf(path, sizeof(path), "%s/moatd.lock", d->conf.data_dir);
	d->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
	if (d->lock_fd < 0)
		die("%s: %s", path, strerror(errno));
	if (flock(d->lock_fd, LOCK_EX | LOCK_NB) < 0) {
		char other[32] = "";
		ssize_t r = pread(d->lock_fd, other, sizeof(other) - 1, 0);

		if (r > 0)
			other[strcspn(other, "\n")] = '\0';
		die("another moatd (pid %s) is running on data_dir %s",
		    r > 0 ? other : "?", d->conf.data_dir);
	}
	n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
	if (ftruncate(d->lock_fd, 0) < 0 || pwrite(d->lock_fd, pid, (size_t)n, 0) != n)
		die("%s: cannot write pid: %s", path, strerror(errno));
}

static void stop_poll_cb(evutil_socket_t fd, short what, void *arg)
{
	struct moatd *d = arg;

	(void)fd;
	(void)what;
	if (smtp_server_session_count(d->smtp) == 0) {
		event_base_loopexit(d->base, NULL);
		return;
	}
	if (time_mono_ms() >= d->stop_deadline) {
		log_warn(NULL, "main", "shutdown grace over; closing %d sessions",
			 smtp_server_session_count(d->smtp));
		smtp_server_close_all(d->smtp);
		event_base_loopexit(d->base, NULL);
	}
}

/* The writer's commit outcome: to the session, and new mail wakes the runner. */
/* The queue routes a local domain's mail downstream: the policy's list decides. */
static int is_local_domain(const void *policy, const char *domain)
{
	return policy_local_domain(policy, domain);
}

static void commit_done(uint64_t session_id, const char *qid, enum spool_err err, void *arg)
{
	struct moatd *d = arg;

	if (session_id != 0) /* 0: a DSN the runner queued itself */
		smtp_server_commit_done(session_id, qid, err, d->smtp);
	if (err == SPOOL_OK && d->queue != NULL)
		queue_runner_kick(d->queue);
}

/* A digest round queued mail: the runner looks now rather than at its next poll. */
static void digest_kick(void *arg)
{
	struct moatd *d = arg;

	if (d->queue != NULL)
		queue_runner_kick(d->queue);
}

/* digest_url_base: an absolute http(s) URL, nothing a link or a header could trip on. */
static void check_url_base(const char *u)
{
	size_t i;

	if (u[0] == '\0')
		return;
	if (strncmp(u, "http://", 7) != 0 && strncmp(u, "https://", 8) != 0)
		die("digest_url_base %s: expected http://host[:port][/path] or https://...", u);
	for (i = 0; u[i] != '\0'; i++)
		if ((unsigned char)u[i] <= 0x20 || (unsigned char)u[i] >= 0x7f ||
		    strchr("\"'<>\\`{}|^", u[i]) != NULL)
			die("digest_url_base %s: character %zu is not allowed in a URL", u, i + 1);
}

static void start_dns(struct moatd *d)
{
	struct dns_config cfg;
	char err[1400];

	memset(&cfg, 0, sizeof(cfg));
	cfg.servers = d->conf.dns_servers;
	cfg.timeout_ms = d->conf.dns_timeout_ms;
	cfg.tries = (int)d->conf.dns_tries;
	cfg.cache_entries = (size_t)d->conf.dns_cache_entries;
	cfg.max_negative_ttl = 3600;
	d->dns = dns_new(d->base, &cfg, err, sizeof(err));
	if (d->dns == NULL)
		die("%s", err);
	smtp_server_set_dns(d->smtp, d->dns);
}

static enum log_level parse_level(const char *s)
{
	return strcmp(s, "debug") == 0 ? LOG_LVL_DEBUG
		: strcmp(s, "warn") == 0 ? LOG_LVL_WARN
		: strcmp(s, "error") == 0 ? LOG_LVL_ERROR
		: LOG_LVL_INFO;
}

static void notify(const char *state)
{
	char err[200];

	if (sdnotify_send(state, err, sizeof(err)) < 0)
		log_warn(NULL, "main", "sd_notify failed error=\"%s\"", err);
}

/* conf_dump()'s "key = value" lines, NUL-terminated; NULL if memfd fails. */
static char *conf_text(const struct conf *c)
{
	int fd = memfd_create("moatd-conf", MFD_CLOEXEC);
	struct stat sb;
	char *buf = NULL;

	if (fd < 0)
		return NULL;
	conf_dump(c, fd);
	if (fstat(fd, &sb) == 0) {
		buf = xmalloc((size_t)sb.st_size + 1);
		if (pread(fd, buf, (size_t)sb.st_size, 0) != sb.st_size) {
			free(buf);
			buf = NULL;
		} else {
			buf[sb.st_size] = '\0';
		}
	}
	close(fd);
	return buf;
}

/* Keys of nc that differ from the running config and need a restart: logged. */
static void log_restart_keys(const struct conf *running, const struct conf *nc)
{
	static const char *const live[] = { "log_level", "tls_cert", "tls_key", NULL };
	char *a = conf_text(running);
	char *b = conf_text(nc);
	const char *la = a;
	const char *lb = b;

	/* Both dumps list the same keys in the same order, one a line. */
	for (; la != NULL && lb != NULL && *la != '\0' && *lb != '\0';
	     la += strcspn(la, "\n") + 1, lb += strcspn(lb, "\n") + 1) {
		size_t na = strcspn(la, "\n");
		size_t nb = strcspn(lb, "\n");
		size_t klen = strcspn(lb, " ");
		int i;

		if (la[na] == '\0' || lb[nb] == '\0')
			break; /* conf_dump ends every line with a newline */
		if (na == nb && memcmp(la, lb, na) == 0)
			continue;
		for (i = 0; live[i] != NULL; i++)
			if (strlen(live[i]) == klen && strncmp(lb, live[i], klen) == 0)
				break;
		if (live[i] == NULL)
			log_warn(NULL, "main", "reload key=%.*s changed; needs a restart",
				 (int)klen, lb);
	}
	free(a);
	free(b);
}

/*
 * SIGHUP.  The file is read again with the same flags on top; a file with
 * an error changes nothing.  Live: log_level, tls_cert, tls_key, the log
 * file (reopened for logrotate) and the STARTTLS pair (loaded again even
 * when its paths are unchanged, for renewed certificates).
 */
static void reload(struct moatd *d)
{
	struct conf *nc = xmalloc(sizeof(*nc));
	char err[1400];
	char status[900];
	char addrs[700];

	if (sdnotify_reloading(err, sizeof(err)) < 0)
		log_warn(NULL, "main", "sd_notify failed error=\"%s\"", err);
	log_notice(NULL, "main", "reloading");
	if (apply_config(nc, err, sizeof(err)) < 0) {
		log_error(NULL, "main", "reload config error=\"%s\"; keeping the running"
			  " configuration", err);
	} else {
		log_restart_keys(&d->conf, nc);
		strlcpy_s(d->conf.log_level, nc->log_level, sizeof(d->conf.log_level));
		strlcpy_s(d->conf.tls_cert, nc->tls_cert, sizeof(d->conf.tls_cert));
		strlcpy_s(d->conf.tls_key, nc->tls_key, sizeof(d->conf.tls_key));
		log_set_level(parse_level(d->conf.log_level));
	}
	free(nc);
	if (log_reopen() < 0)
		log_error(NULL, "main", "reload cannot reopen the log");
	else
		log_info(NULL, "main", "log reopened");
	if (smtp_server_reload_tls(d->smtp, &d->conf, err, sizeof(err)) < 0)
		log_error(NULL, "main", "reload tls failed error=\"%s\"; keeping the old"
			  " certificate", err);
	else
		log_info(NULL, "main", "reload tls certificate loaded");
	smtp_server_addresses(d->smtp, addrs, sizeof(addrs));
	snprintf(status, sizeof(status), "READY=1\nSTATUS=ready smtp=%s http=%s", addrs,
		 http_server_address(d->http));
	notify(status);
	log_notice(NULL, "main", "reloaded");
}

static void watchdog_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	notify("WATCHDOG=1");
}

static void signal_cb(evutil_socket_t sig, short what, void *arg)
{
	struct moatd *d = arg;
	struct timeval tick = { 0, 50 * 1000 };

	(void)what;
	if (sig == SIGHUP) {
		reload(d);
		return;
	}
	if (d->stop_poll != NULL)
		return;
	notify("STOPPING=1");
	log_notice(NULL, "main", "stopping sessions=%d", smtp_server_session_count(d->smtp));
	smtp_server_shutdown(d->smtp);
	d->stop_deadline = time_mono_ms() + d->conf.shutdown_timeout_ms;
	d->stop_poll = event_new(d->base, -1, EV_PERSIST, stop_poll_cb, d);
	event_add(d->stop_poll, &tick);
}

/*
 * Every SMTP session, HTTP connection, delivery connection and spool file
 * holds a descriptor; the common soft limit of 1024 is below what the
 * configured limits allow.  Raise the soft limit to the hard one (as root,
 * before dropping privileges, the hard one can be raised too) and say when
 * it is still short.
 */
static void raise_fd_limit(const struct conf *c)
{
	struct rlimit rl;
	rlim_t want = (rlim_t)(c->max_sessions + c->http_max_connections +
			       c->delivery_concurrency) * 2 + 256;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return;
	if (geteuid() == 0 && rl.rlim_max != RLIM_INFINITY && rl.rlim_max < want)
		rl.rlim_max = want;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
		(void)getrlimit(RLIMIT_NOFILE, &rl);
	}
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want)
		log_warn(NULL, "main", "open file limit %llu is below the %llu the configured"
			 " session, HTTP and delivery limits may need",
			 (unsigned long long)rl.rlim_cur, (unsigned long long)want);
}

/*
 * The epoll changelist folds the interest changes one loop iteration makes
 * on a descriptor (reading paused and resumed around a policy verdict, a
 * write event added and removed) into at most one epoll_ctl.  Safe here:
 * no descriptor is dup()ed while it has events.
 */
static struct event_base *new_event_base(void)
{
	struct event_config *cfg = event_config_new();
	struct event_base *base;

	if (cfg == NULL)
		return NULL;
	event_config_set_flag(cfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
	base = event_base_new_with_config(cfg);
	event_config_free(cfg);
	return base;
}

int main(int argc, char **argv)
{
	struct moatd d;
	struct passwd *pw = NULL;
	struct spool_reconcile_stats rs;
	struct store *st;
	char err[1400];
	char smtp_addrs[700];
	int check_only = 0;

	int sub = cli_dispatch(argc, argv);

	if (sub >= 0)
		return sub;
	memset(&d, 0, sizeof(d));
	d.lock_fd = -1;
	load_config(&d.conf, argc, argv, &check_only);
	if (check_only) {
		conf_dump(&d.conf, 1);
		return 0;
	}
	if ((d.conf.cluster_pg[0] != '\0' || d.conf.cluster_redis[0] != '\0') &&
	    d.conf.cluster_node == 0)
		die("cluster_pg or cluster_redis is set but cluster_node is 0: give every node"
		    " of the cluster its own cluster_node (1..1023)");
	if (log_open(d.conf.log, parse_level(d.conf.log_level), err, sizeof(err)) < 0)
		die("%s", err);
	if (sdnotify_init(err, sizeof(err)) < 0)
		die("%s", err);
	mime_init(); /* before any thread: GMime's one-time set-up */
	signal(SIGPIPE, SIG_IGN);
	raise_fd_limit(&d.conf);

	if (d.conf.user[0] != '\0') {
		pw = getpwnam(d.conf.user);
		if (pw == NULL)
			die("user %s: no such user", d.conf.user);
		/* Started as that user already (a systemd unit's User=): nothing to drop. */
		if (geteuid() != 0 && geteuid() == pw->pw_uid && getuid() == pw->pw_uid)
			pw = NULL;
		else if (geteuid() != 0)
			die("user = %s needs moatd to start as root or as %s", d.conf.user,
			    d.conf.user);
	} else if (geteuid() == 0) {
		log_warn(NULL, "main", "running as root; set 'user' to drop privileges");
	}
	make_data_dir(&d.conf, pw);

	if (evthread_use_pthreads() < 0)
		die("libevent without thread support");
	d.base = new_event_base();
	if (d.base == NULL)
		die("cannot create the event loop");
	d.smtp = smtp_server_new(d.base, &d.conf, err, sizeof(err));
	if (d.smtp == NULL)
		die("%s", err);
	d.http = http_server_new(&d.conf, err, sizeof(err));
	if (d.http == NULL)
		die("%s", err);
	if (pw != NULL)
		drop_privileges(pw);

	lock_data_dir(&d);
	check_url_base(d.conf.digest_url_base);
	if (digest_key_init(d.conf.data_dir, err, sizeof(err)) < 0)
		die("%s", err);
	snprintf(d.db_path, sizeof(d.db_path), "%s/moat.db", d.conf.data_dir);
	st = store_open(d.db_path, STORE_MIGRATE, err, sizeof(err));
	if (st == NULL)
		die("%s", err);
	/* Before anything writes: from here every change to a shared table is captured. */
	if (store_cluster_install(st, d.conf.cluster_node, d.conf.cluster_pg[0] != '\0', err,
				  sizeof(err)) < 0)
		die("%s", err);
	d.spool = spool_open(d.conf.data_dir, err, sizeof(err));
	if (d.spool == NULL)
		die("%s", err);
	spool_set_sync(d.spool, strcmp(d.conf.spool_sync, "filesystem") == 0);
	spool_set_quarantine_lifetime(d.spool, d.conf.quarantine_lifetime_ms);
	if (spool_reconcile(d.spool, st, &rs, err, sizeof(err)) < 0)
		die("%s", err);
	log_info(NULL, "spool", "reconciled queued=%d incoming_removed=%d orphans_removed=%d"
		 " lost=%d", rs.kept, rs.incoming_removed, rs.orphans_removed, rs.rows_lost);
	{
		struct quarantine_reconcile_stats qs;

		if (quarantine_reconcile(st, d.conf.data_dir, d.conf.cluster_pg[0] != '\0', &qs,
					 err, sizeof(err)) < 0)
			die("%s", err);
		log_info(NULL, "quarantine", "reconciled kept=%d orphans_removed=%d lost=%d",
			 qs.kept, qs.files_removed, qs.rows_removed);
	}
	store_close(st);
	if (spool_pool_start(d.spool, err, sizeof(err)) < 0)
		die("%s", err);
	if (d.conf.cluster_pg[0] != '\0') {
		/* Connects in the background: the node works on its SQLite copy until then. */
		d.pg = cluster_pg_start(&d.conf, d.db_path, err, sizeof(err));
		if (d.pg == NULL)
			die("%s", err);
	}

	start_dns(&d);
	d.writer = spool_writer_start(d.base, d.spool, d.db_path, commit_done,
				      &d, err, sizeof(err));
	if (d.writer == NULL)
		die("%s", err);
	d.purger = quarantine_purger_start(d.base, d.db_path, d.conf.data_dir,
					   d.conf.quarantine_purge_interval_ms, err, sizeof(err));
	if (d.purger == NULL)
		die("%s", err);
	{
		struct mime_limits mime;
		struct policy_limits lim = { d.conf.hostname, d.conf.max_sessions, &mime,
					     (int)d.conf.content_workers,
					     d.conf.mailbox_rules_cache };

		mime_limits_default(&mime);
		mime.max_depth = (int)d.conf.mime_max_depth;
		mime.max_parts = (int)d.conf.mime_max_parts;
		mime.max_part_text = (size_t)d.conf.mime_max_part_text;
		mime.max_text = (size_t)d.conf.mime_max_text;
		mime.max_ms = d.conf.mime_max_time_ms;

		d.policy = policy_new(d.base, d.db_path, &lim, smtp_server_policy_done, d.smtp,
				      err, sizeof(err));
		if (d.policy == NULL)
			die("%s", err);
		policy_set_dns(d.policy, d.dns);
		if (d.conf.cluster_redis[0] != '\0') {
			/* Connects in the background: mail flows on local counters until then. */
			d.redis = cluster_redis_new(d.base, &d.conf, err, sizeof(err));
			if (d.redis == NULL)
				die("%s", err);
			policy_set_cluster(d.policy, d.redis);
			greylist_set_cluster(d.conf.cluster_redis, d.conf.cluster_redis_timeout_ms,
					     d.conf.cluster_retry_ms);
		}
		smtp_server_set_policy(d.smtp, d.policy);
	}
	if (smtp_server_set_auth(d.smtp, d.db_path, http_password_verify, err, sizeof(err)) < 0)
		die("%s", err);
	smtp_server_start(d.smtp, d.spool, d.writer);
	if (d.conf.delivery) {
		d.queue = queue_runner_start(d.base, &d.conf, d.dns, d.spool, d.writer,
					     d.db_path, is_local_domain, d.policy, err, sizeof(err));
		if (d.queue == NULL)
			die("%s", err);
	}
	if (http_server_start(d.http, d.db_path, err, sizeof(err)) < 0)
		die("%s", err);
	{
		char base[DIGEST_URL_MAX];

		digest_url_base(&d.conf, http_server_address(d.http),
				d.conf.http_tls_cert[0] != '\0', base, sizeof(base));
		d.digest = digest_start(d.base, &d.conf, d.db_path, base, digest_kick, &d, err,
					sizeof(err));
		if (d.digest == NULL)
			die("%s", err);
		/* Alert mail links to the console like digests do; it kicks the runner too. */
		d.alert = alert_start(d.base, &d.conf, d.db_path, base, digest_kick, &d, err,
				      sizeof(err));
		if (d.alert == NULL)
			die("%s", err);
	}

	d.sig_term = evsignal_new(d.base, SIGTERM, signal_cb, &d);
	d.sig_int = evsignal_new(d.base, SIGINT, signal_cb, &d);
	d.sig_hup = evsignal_new(d.base, SIGHUP, signal_cb, &d);
	event_add(d.sig_term, NULL);
	event_add(d.sig_int, NULL);
	event_add(d.sig_hup, NULL);

	smtp_server_addresses(d.smtp, smtp_addrs, sizeof(smtp_addrs));
	log_notice(NULL, "main", "ready smtp=%s http=%s pid=%ld version=%s", smtp_addrs,
		 http_server_address(d.http), (long)getpid(), MOAT_VERSION);
	{
		char status[900];
		uint64_t wd_usec;
		int wd = sdnotify_watchdog_usec(&wd_usec);

		snprintf(status, sizeof(status), "READY=1\nSTATUS=ready smtp=%s http=%s\nMAINPID=%ld",
			 smtp_addrs, http_server_address(d.http), (long)getpid());
		notify(status);
		if (wd < 0)
			log_warn(NULL, "main", "WATCHDOG_USEC is malformed; no watchdog pings");
		if (wd == 1) {
			/* Half the manager's interval, as sd_watchdog_enabled(3) advises. */
			struct timeval tv = { (time_t)(wd_usec / 2 / 1000000),
					      (suseconds_t)(wd_usec / 2 % 1000000) };

			d.watchdog = event_new(d.base, -1, EV_PERSIST, watchdog_cb, &d);
			event_add(d.watchdog, &tv);
			log_info(NULL, "main", "watchdog interval_ms=%llu",
				 (unsigned long long)(wd_usec / 2 / 1000));
		}
	}

	event_base_dispatch(d.base);

	smtp_server_free(d.smtp);
	dns_free(d.dns);              /* pending lookups are cancelled here */
	digest_free(d.digest);        /* before the runner: its last round may kick it */
	alert_free(d.alert);          /* the same */
	queue_runner_free(d.queue);   /* its in-flight rows stay leased */
	policy_set_cluster(d.policy, NULL);
	cluster_redis_free(d.redis);  /* pending answers find their sessions gone */
	policy_free(d.policy); /* after every session (and the resolver) is gone */
	quarantine_purger_free(d.purger);
	spool_writer_stop(d.writer);
	http_server_free(d.http);
	cluster_pg_stop(d.pg);        /* what it has not pushed stays in the outbox */
	spool_free(d.spool);
	if (d.stop_poll != NULL)
		event_free(d.stop_poll);
	if (d.watchdog != NULL)
		event_free(d.watchdog);
	event_free(d.sig_term);
	event_free(d.sig_int);
	event_free(d.sig_hup);
	event_base_free(d.base);
	mime_shutdown();
	log_notice(NULL, "main", "stopped");
	log_close();
	sdnotify_close();
	for (int i = 0; i < conf_noverrides; i++)
		free(conf_overrides[i]);
	close(d.lock_fd);
	libevent_global_shutdown();
	return 0;
}
