/*
 * cli_authcheck: `moatd authcheck --ip A --helo H --mail-from S FILE` --
 * sender authentication (SPF, DKIM, DMARC: daemon/score/auth.h) of one
 * message file, on a private event loop with c-ares and the configured
 * resolver (dns_servers, dns_timeout, dns_tries) or --dns-server.  Prints
 * the Authentication-Results value and each result with its reason.
 * --repeat N checks the message N times on the same loop and cache and
 * prints the CPU time per check of the runs after the first (DNS cached).
 *
 * Nothing is stored; the data directory is not opened.
 */
#include "cli.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../dns/dns.h"
#include "../score/auth.h"
#include "../util/util.h"

#define AUTHCHECK_FILE_MAX (64 * 1024 * 1024)
#define AUTHCHECK_REPEAT_MAX 100000

static void usage(FILE *out)
{
	fprintf(out,
		"usage: moatd authcheck [-c FILE] [-o key=value] --ip ADDRESS --helo NAME\n"
		"                       --mail-from ADDRESS [--dns-server IP:PORT]\n"
		"                       [--hostname NAME] [--repeat N] FILE|-\n"
		"  SPF (for --mail-from, or postmaster@HELO when it is \"\"), DKIM and DMARC of\n"
		"  the message in FILE, against live DNS; prints the Authentication-Results\n"
		"  value and each result with its reason.  --repeat N: CPU per check with\n"
		"  the answers cached (the runs after the first).\n");
}

struct run {
	struct event_base *base;
	int done;
	struct auth_result res;
};

static void on_done(const struct auth_result *r, void *arg)
{
	struct run *run = arg;

	run->res = *r;
	run->done = 1;
	event_base_loopbreak(run->base);
}

static int read_file(const char *path, struct dynbuf *b)
{
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
	char chunk[65536];
	size_t n;
	int rc = 0;

	if (f == NULL) {
		fprintf(stderr, "moatd authcheck: %s: %s\n", path, strerror(errno));
		return -1;
	}
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		if (dynbuf_add(b, chunk, n) < 0) {
			fprintf(stderr, "moatd authcheck: %s: larger than %d bytes\n", path,
				AUTHCHECK_FILE_MAX);
			rc = -1;
			break;
		}
	}
	if (rc == 0 && ferror(f)) {
		fprintf(stderr, "moatd authcheck: %s: read error\n", path);
		rc = -1;
	}
	if (f != stdin)
		fclose(f);
	return rc;
}

/* Header section (with its final line break) and body (after the blank line). */
static void split_message(const char *m, size_t len, struct auth_facts *f)
{
	size_t i = 0;

	f->header = m;
	f->header_len = len;
	f->body = m + len;
	f->body_len = 0;
	while (i < len) {
		const char *nl = memchr(m + i, '\n', len - i);
		size_t line;

		if (nl == NULL)
			return;
		line = (size_t)(nl - (m + i));
		if (line == 0 || (line == 1 && m[i] == '\r')) {
			f->header_len = i;
			f->body = nl + 1;
			f->body_len = len - (size_t)(nl + 1 - m);
			return;
		}
		i += line + 1;
	}
}

static double cpu_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void print_results(const struct auth_result *r, const char *hostname)
{
	struct dynbuf b;
	size_t i;

	dynbuf_init(&b, 8192);
	if (auth_results_format(r, hostname, &b) == 0)
		printf("Authentication-Results: %s\n", b.data);
	dynbuf_free(&b);
	printf("spf=%s identity=%s domain=%s dns_terms=%u void_lookups=%u reason=\"%s\"\n",
	       auth_res_name(r->spf.res), r->spf.identity, r->spf.domain, r->spf.dns_terms,
	       r->spf.void_lookups, r->spf.reason);
	for (i = 0; i < r->dkim.n; i++)
		printf("dkim=%s d=%s s=%s a=%s reason=\"%s\"\n", auth_res_name(r->dkim.r[i].res),
		       r->dkim.r[i].d, r->dkim.r[i].s, r->dkim.r[i].alg, r->dkim.r[i].reason);
	if (r->dkim.n == 0)
		printf("dkim=none reason=\"no DKIM-Signature\"\n");
	if (r->dkim.not_checked > 0)
		printf("dkim_not_checked=%zu\n", r->dkim.not_checked);
	printf("dmarc=%s from=%s policy_domain=%s p=%s dis=%s reason=\"%s\"\n",
	       auth_res_name(r->dmarc.res), r->dmarc.from_domain, r->dmarc.policy_domain,
	       r->dmarc.policy == DMARC_P_UNSET ? "-" : auth_dmarc_policy_name(r->dmarc.policy),
	       r->dmarc.res == AUTH_FAIL ? auth_dmarc_policy_name(r->dmarc.disposition) : "none",
	       r->dmarc.reason);
}

int cli_authcheck_main(int argc, char **argv)
{
	struct conf conf;
	char err[1400];
	const char *ip = NULL;
	const char *helo = NULL;
	const char *mail_from = NULL;
	const char *server = NULL;
	const char *hostname = NULL;
	const char *file = NULL;
	long repeat = 1;
	struct sockaddr_storage ss;
	struct dns_config cfg;
	struct dns *dns = NULL;
	struct event_base *base = NULL;
	struct dynbuf msg;
	struct auth_facts facts;
	struct run run;
	double cpu0 = 0;
	long i;
	int status = 1;

	if (argc >= 2 && (strcmp(argv[1], "help") == 0 || strcmp(argv[1], "-h") == 0 ||
			  strcmp(argv[1], "--help") == 0)) {
		usage(stdout);
		return 0;
	}
	if (cli_load_conf(&argc, &argv, &conf, err, sizeof(err)) < 0) {
		fprintf(stderr, "moatd authcheck: %s\n", err);
		return 1;
	}
	for (i = 0; i < argc; i++) {
		const char *o = argv[i];

		if (o[0] != '-' || strcmp(o, "-") == 0) {
			if (file != NULL || i + 1 != argc) {
				usage(stderr);
				return 2;
			}
			file = o;
			continue;
		}
		if (i + 1 == argc) {
			fprintf(stderr, "moatd authcheck: %s needs a value\n", o);
			return 2;
		}
		if (strcmp(o, "--ip") == 0) {
			ip = argv[++i];
		} else if (strcmp(o, "--helo") == 0) {
			helo = argv[++i];
		} else if (strcmp(o, "--mail-from") == 0) {
			mail_from = argv[++i];
		} else if (strcmp(o, "--dns-server") == 0) {
			server = argv[++i];
		} else if (strcmp(o, "--hostname") == 0) {
			hostname = argv[++i];
		} else if (strcmp(o, "--repeat") == 0) {
			char *end;

			errno = 0;
			repeat = strtol(argv[++i], &end, 10);
			if (errno != 0 || *end != '\0' || repeat < 1 || repeat > AUTHCHECK_REPEAT_MAX) {
				fprintf(stderr, "moatd authcheck: --repeat: expected 1..%d\n",
					AUTHCHECK_REPEAT_MAX);
				return 2;
			}
		} else {
			fprintf(stderr, "moatd authcheck: unknown option %s\n", o);
			usage(stderr);
			return 2;
		}
	}
	if (ip == NULL || helo == NULL || mail_from == NULL || file == NULL) {
		usage(stderr);
		return 2;
	}
	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, ip, &((struct sockaddr_in *)&ss)->sin_addr) == 1) {
		ss.ss_family = AF_INET;
	} else if (inet_pton(AF_INET6, ip, &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1) {
		ss.ss_family = AF_INET6;
	} else {
		fprintf(stderr, "moatd authcheck: --ip %s: not an IPv4 or IPv6 address\n", ip);
		return 2;
	}
	if (mail_from[0] == '<') {
		size_t n = strlen(mail_from);

		if (n < 2 || mail_from[n - 1] != '>') {
			fprintf(stderr, "moatd authcheck: --mail-from %s: unbalanced <>\n", mail_from);
			return 2;
		}
	}
	dynbuf_init(&msg, AUTHCHECK_FILE_MAX);
	if (read_file(file, &msg) < 0)
		goto out;
	base = event_base_new();
	if (base == NULL) {
		fprintf(stderr, "moatd authcheck: cannot create an event loop\n");
		goto out;
	}
	memset(&cfg, 0, sizeof(cfg));
	cfg.servers = server != NULL ? server : conf.dns_servers;
	cfg.timeout_ms = conf.dns_timeout_ms;
	cfg.tries = (int)conf.dns_tries;
	cfg.cache_entries = conf.dns_cache_entries > 0 ? (size_t)conf.dns_cache_entries : 1000;
	cfg.max_negative_ttl = 3600;
	dns = dns_new(base, &cfg, err, sizeof(err));
	if (dns == NULL) {
		fprintf(stderr, "moatd authcheck: %s\n", err);
		goto out;
	}
	{
		/* "<a@b>" as well as "a@b" */
		static char bare[600];
		size_t n = strlen(mail_from);

		if (mail_from[0] == '<' && n - 2 < sizeof(bare)) {
			memcpy(bare, mail_from + 1, n - 2);
			bare[n - 2] = '\0';
			mail_from = bare;
		}
	}
	memset(&facts, 0, sizeof(facts));
	facts.ip = (const struct sockaddr *)&ss;
	facts.helo = helo;
	facts.mail_from = mail_from;
	split_message(msg.data != NULL ? msg.data : "", msg.len, &facts);
	for (i = 0; i < repeat; i++) {
		memset(&run, 0, sizeof(run));
		run.base = base;
		if (i == 1)
			cpu0 = cpu_seconds();
		auth_check_start(dns, &facts, on_done, &run);
		while (!run.done)
			event_base_loop(base, EVLOOP_ONCE);
	}
	print_results(&run.res, hostname != NULL ? hostname : conf.hostname);
	if (repeat > 1)
		fprintf(stderr, "cpu_per_check_us=%.1f runs=%ld (DNS cached)\n",
			(cpu_seconds() - cpu0) * 1e6 / (double)(repeat - 1), repeat - 1);
	status = 0;
out:
	dns_free(dns);
	if (base != NULL)
		event_base_free(base);
	dynbuf_free(&msg);
	return status;
}
