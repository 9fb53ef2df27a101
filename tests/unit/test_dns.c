/*
 * Unit tests for dns: dns_reverse_name (pure, table-driven), and, when
 * dnsmasq is installed, real queries through c-ares on a libevent loop
 * against a dnsmasq on 127.0.0.1 with a free port: MX (sorted), null MX,
 * A, AAAA, NXDOMAIN, NODATA, TXT, PTR, the cache, cancellation by
 * dns_free(), and a time-out being TEMPFAIL.  dns_mail: the host choice
 * and the verdict (pure, table-driven), and dns_query_mail() against
 * dnsmasq: live, implicit MX, NXDOMAIN, null MX, no records, dangling MX,
 * an address as MX host, a dangling first MX with a live second.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <event2/event.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <unistd.h>

#include "dns/dns.h"

struct rev_case {
	const char *name;
	int family;
	const char *addr;
	int outsz;
	int want_rc;
	const char *want;
};

static const struct rev_case rev_cases[] = {
	{ "v4 loopback", AF_INET, "127.0.0.2", 64, 0, "2.0.0.127" },
	{ "v4 all digits", AF_INET, "192.168.100.255", 64, 0, "255.100.168.192" },
	{ "v4 zero", AF_INET, "0.0.0.0", 64, 0, "0.0.0.0" },
	{ "v4 buffer exact", AF_INET, "1.2.3.4", 8, 0, "4.3.2.1" },
	{ "v4 buffer short", AF_INET, "1.2.3.4", 7, -1, NULL },
	{ "v6 loopback", AF_INET6, "::1", 80, 0,
	  "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0" },
	{ "v6 doc", AF_INET6, "2001:db8::567:89ab", 80, 0,
	  "b.a.9.8.7.6.5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2" },
	{ "v6 buffer short", AF_INET6, "::1", 63, -1, NULL },
};

static void test_reverse_name(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(rev_cases) / sizeof(rev_cases[0]); i++) {
		const struct rev_case *c = &rev_cases[i];
		struct sockaddr_storage ss;
		char out[128];
		int rc;

		memset(&ss, 0, sizeof(ss));
		ss.ss_family = (sa_family_t)c->family;
		if (c->family == AF_INET)
			inet_pton(AF_INET, c->addr, &((struct sockaddr_in *)&ss)->sin_addr);
		else
			inet_pton(AF_INET6, c->addr, &((struct sockaddr_in6 *)&ss)->sin6_addr);
		rc = dns_reverse_name((struct sockaddr *)&ss, out, (size_t)c->outsz);
		if (rc != c->want_rc)
			fail_msg("%s: got rc %d, want %d", c->name, rc, c->want_rc);
		if (c->want != NULL && strcmp(out, c->want) != 0)
			fail_msg("%s: got %s, want %s", c->name, out, c->want);
	}
}

static void test_reverse_bad_family(void **state)
{
	struct sockaddr_storage ss;
	char out[128];

	(void)state;
	memset(&ss, 0, sizeof(ss));
	ss.ss_family = AF_UNIX;
	assert_int_equal(dns_reverse_name((struct sockaddr *)&ss, out, sizeof(out)), -1);
	assert_int_equal(dns_reverse_name(NULL, out, sizeof(out)), -1);
}

/* ---- dns_mail: the pure parts ------------------------------------------- */

static void mx_add(struct dns_result *r, uint16_t pref, const char *host)
{
	r->u.mx[r->count].preference = pref;
	snprintf(r->u.mx[r->count].host, sizeof(r->u.mx[0].host), "%s", host);
	r->count++;
}

static void test_mail_pick(void **state)
{
	struct dns_result r;
	const char *names[DNS_MAIL_MAX_HOSTS];
	size_t skipped;
	int n;

	(void)state;
	memset(&r, 0, sizeof(r));
	r.type = DNS_MX;
	r.status = DNS_OK;
	mx_add(&r, 0, "");
	n = dns_mail_pick(&r, DNS_MAIL_MAX_HOSTS, names, &skipped);
	if (n != -1)
		fail_msg("null MX: got %d, want -1", n);

	/* "." behind a real host is skipped, as delivery does. */
	memset(&r, 0, sizeof(r));
	mx_add(&r, 10, "mx1.example");
	mx_add(&r, 20, "");
	mx_add(&r, 30, "MX1.example");      /* a duplicate, case aside */
	mx_add(&r, 40, "192.0.2.1");        /* an address is not a host name */
	mx_add(&r, 50, "2001:db8::1");
	mx_add(&r, 60, "mx2.example");
	n = dns_mail_pick(&r, DNS_MAIL_MAX_HOSTS, names, &skipped);
	assert_int_equal(n, 2);
	assert_string_equal(names[0], "mx1.example");
	assert_string_equal(names[1], "mx2.example");
	assert_int_equal(skipped, 2);

	/* Only addresses: nothing to ask. */
	memset(&r, 0, sizeof(r));
	mx_add(&r, 10, "192.0.2.1");
	n = dns_mail_pick(&r, DNS_MAIL_MAX_HOSTS, names, &skipped);
	assert_int_equal(n, 0);
	assert_int_equal(skipped, 1);

	/* Bounded: the first max by preference. */
	memset(&r, 0, sizeof(r));
	mx_add(&r, 1, "a.example");
	mx_add(&r, 2, "b.example");
	mx_add(&r, 3, "c.example");
	n = dns_mail_pick(&r, 2, names, &skipped);
	assert_int_equal(n, 2);
	assert_string_equal(names[1], "b.example");
}

#define H(a, ha, aaaa, haaaa) { DNS_##a, DNS_##aaaa, ha, haaaa }

struct decide_case {
	const char *name;
	struct dns_mail_host h[3];
	size_t n;
	int want_decided;
	enum dns_mail_status want;
};

static const struct decide_case decide_cases[] = {
	{ "one host, A", { H(OK, 1, NODATA, 0) }, 1, 1, DNS_MAIL_LIVE },
	{ "one host, AAAA only", { H(NODATA, 1, OK, 1) }, 1, 1, DNS_MAIL_LIVE },
	{ "one host, nothing", { H(NXDOMAIN, 1, NXDOMAIN, 1) }, 1, 1, DNS_MAIL_DEAD },
	{ "one host, nodata", { H(NODATA, 1, NODATA, 1) }, 1, 1, DNS_MAIL_DEAD },
	{ "one host, AAAA missing", { H(NODATA, 1, NODATA, 0) }, 1, 0, DNS_MAIL_LIVE },
	{ "time-out is never dead", { H(TEMPFAIL, 1, NODATA, 1) }, 1, 1, DNS_MAIL_TEMPFAIL },
	{ "live host beats a time-out",
	  { H(TEMPFAIL, 1, TEMPFAIL, 1), H(OK, 1, NODATA, 0) }, 2, 1, DNS_MAIL_LIVE },
	{ "live before the others answer",
	  { H(NODATA, 0, NODATA, 0), H(NODATA, 0, OK, 1) }, 2, 1, DNS_MAIL_LIVE },
	{ "dangling first, second live",
	  { H(NXDOMAIN, 1, NXDOMAIN, 1), H(OK, 1, OK, 1) }, 2, 1, DNS_MAIL_LIVE },
	{ "all dangling", { H(NXDOMAIN, 1, NXDOMAIN, 1), H(NODATA, 1, NXDOMAIN, 1),
			    H(BADNAME, 1, NODATA, 1) }, 3, 1, DNS_MAIL_DEAD },
	{ "dangling and a time-out",
	  { H(NXDOMAIN, 1, NXDOMAIN, 1), H(NODATA, 1, TEMPFAIL, 1) }, 2, 1, DNS_MAIL_TEMPFAIL },
	{ "dangling, one still asked",
	  { H(NXDOMAIN, 1, NXDOMAIN, 1), H(NODATA, 1, NODATA, 0) }, 2, 0, DNS_MAIL_LIVE },
	{ "cancelled", { H(CANCELLED, 1, CANCELLED, 1) }, 1, 1, DNS_MAIL_CANCELLED },
};

static void test_mail_decide(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(decide_cases) / sizeof(decide_cases[0]); i++) {
		const struct decide_case *c = &decide_cases[i];
		enum dns_mail_status got = DNS_MAIL_LIVE;
		int decided = dns_mail_decide(c->h, c->n, &got);

		if (decided != c->want_decided)
			fail_msg("%s: decided %d, want %d", c->name, decided, c->want_decided);
		if (decided && got != c->want)
			fail_msg("%s: got status %d, want %d", c->name, (int)got, (int)c->want);
	}
}

/* ---- against dnsmasq ---------------------------------------------------- */

static pid_t dnsmasq_pid = -1;
static int dnsmasq_port;

/* A loopback port free for UDP and TCP alike: dnsmasq binds both. */
static int free_udp_port(void)
{
	int tries;

	for (tries = 0; tries < 20; tries++) {
		struct sockaddr_in sin;
		socklen_t len = sizeof(sin);
		int fd = socket(AF_INET, SOCK_DGRAM, 0);
		int tcp;
		int ok;

		memset(&sin, 0, sizeof(sin));
		sin.sin_family = AF_INET;
		sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 ||
		    getsockname(fd, (struct sockaddr *)&sin, &len) < 0) {
			close(fd);
			return -1;
		}
		tcp = socket(AF_INET, SOCK_STREAM, 0);
		ok = bind(tcp, (struct sockaddr *)&sin, sizeof(sin)) == 0;
		close(tcp);
		close(fd);
		if (ok)
			return ntohs(sin.sin_port);
	}
	return -1;
}

/* A TXT record of two 200-octet strings, and a second record at the same name. */
static char long_txt[500];

static int start_dnsmasq(void **state)
{
	char port[32];
	char a200[201];
	char b200[201];

	(void)state;
	if (access("/usr/sbin/dnsmasq", X_OK) != 0)
		return 0;
	dnsmasq_port = free_udp_port();
	snprintf(port, sizeof(port), "--port=%d", dnsmasq_port);
	memset(a200, 'a', 200);
	a200[200] = '\0';
	memset(b200, 'b', 200);
	b200[200] = '\0';
	snprintf(long_txt, sizeof(long_txt), "--txt-record=long.test,%s,%s", a200, b200);
	dnsmasq_pid = fork();
	if (dnsmasq_pid == 0) {
		int devnull = open("/dev/null", 1);

		dup2(devnull, 1);
		dup2(devnull, 2);
		execl("/usr/sbin/dnsmasq", "dnsmasq", "--keep-in-foreground",
		      "--conf-file=/dev/null", "--listen-address=127.0.0.1", "--bind-interfaces",
		      port, "--no-resolv", "--no-hosts", "--user=root", "--group=root",
		      "--pid-file=", "--local-ttl=300",
		      "--mx-host=mx.test,mx2.mx.test,20", "--mx-host=mx.test,mx1.mx.test,10",
		      "--host-record=mx1.mx.test,127.0.0.2", "--host-record=mx2.mx.test,127.0.0.3",
		      "--host-record=v6.test,::1", "--host-record=ptr.test,127.0.0.9",
		      "--dns-rr=null.test,15,000000", "--txt-record=txt.test,hello world",
		      "--mx-host=dangle.test,gone.dangle.test,10",
		      "--mx-host=txtmx.test,txt.test,10",
		      "--mx-host=mixed.test,gone.mixed.test,10",
		      "--mx-host=mixed.test,mx1.mx.test,20",
		      "--mx-host=ipmx.test,192.0.2.1,10",
		      long_txt, "--txt-record=long.test,v=spf1 -all",
		      "--auth-ttl=300", "--local=/test/", (char *)NULL);
		_exit(127);
	}
	/* Wait (at most 5 s) until it answers a query for "test". */
	{
		static const unsigned char q[] = { 0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0,
						   4, 't', 'e', 's', 't', 0, 0, 1, 0, 1 };
		struct sockaddr_in sin;
		struct timeval tv = { 0, 100 * 1000 };
		int fd = socket(AF_INET, SOCK_DGRAM, 0);
		int i;

		memset(&sin, 0, sizeof(sin));
		sin.sin_family = AF_INET;
		sin.sin_port = htons((uint16_t)dnsmasq_port);
		sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		for (i = 0; i < 50; i++) {
			unsigned char ans[512];

			sendto(fd, q, sizeof(q), 0, (struct sockaddr *)&sin, sizeof(sin));
			if (recv(fd, ans, sizeof(ans), 0) > 0)
				break;
			usleep(50 * 1000);
		}
		close(fd);
	}
	return 0;
}

static int stop_dnsmasq(void **state)
{
	(void)state;
	if (dnsmasq_pid > 0) {
		kill(dnsmasq_pid, SIGTERM);
		waitpid(dnsmasq_pid, NULL, 0);
	}
	return 0;
}

struct answer {
	int done;
	struct dns_result r;
	uint64_t cookie;
	struct event_base *base;
	int *outstanding;
};

static void on_answer(const struct dns_result *r, uint64_t cookie, void *ctx)
{
	struct answer *a = ctx;

	a->done++;
	a->r = *r;
	a->cookie = cookie;
	if (--*a->outstanding == 0)
		event_base_loopbreak(a->base);
}

static struct dns *new_dns(struct event_base *base, int port, int timeout_ms)
{
	char servers[64];
	struct dns_config cfg = { 0 };
	char err[256];
	struct dns *d;

	snprintf(servers, sizeof(servers), "127.0.0.1:%d", port);
	cfg.servers = servers;
	cfg.timeout_ms = timeout_ms;
	cfg.tries = 1;
	cfg.cache_entries = 100;
	d = dns_new(base, &cfg, err, sizeof(err));
	if (d == NULL)
		fail_msg("dns_new: %s", err);
	return d;
}

static void run_one(struct event_base *base, struct dns *d, const char *name,
		    enum dns_type type, struct answer *a)
{
	int outstanding = 1;
	struct timeval limit = { 10, 0 };

	memset(a, 0, sizeof(*a));
	a->base = base;
	a->outstanding = &outstanding;
	dns_query(d, name, type, on_answer, 42, a);
	assert_int_equal(a->done, 0); /* never from inside dns_query */
	event_base_loopexit(base, &limit);
	event_base_dispatch(base);
	if (a->done != 1)
		fail_msg("%s: got %d callbacks, want 1", name, a->done);
	assert_int_equal(a->cookie, 42);
}

static void test_live(void **state)
{
	struct event_base *base;
	struct dns *d;
	struct answer a;
	struct dns_stats st;
	char buf[64];

	(void)state;
	if (dnsmasq_pid <= 0)
		skip();
	base = event_base_new();
	d = new_dns(base, dnsmasq_port, 2000);

	run_one(base, d, "mx.test", DNS_MX, &a);
	assert_int_equal(a.r.status, DNS_OK);
	assert_int_equal(a.r.count, 2);
	assert_int_equal(a.r.u.mx[0].preference, 10);
	assert_string_equal(a.r.u.mx[0].host, "mx1.mx.test");
	assert_string_equal(a.r.u.mx[1].host, "mx2.mx.test");
	assert_false(a.r.from_cache);

	run_one(base, d, "MX.test.", DNS_MX, &a); /* case and trailing dot: cached */
	assert_int_equal(a.r.status, DNS_OK);
	assert_true(a.r.from_cache);
	assert_int_equal(a.r.count, 2);

	run_one(base, d, "null.test", DNS_MX, &a);
	assert_int_equal(a.r.status, DNS_OK);
	assert_int_equal(a.r.count, 1);
	assert_string_equal(a.r.u.mx[0].host, "");

	run_one(base, d, "mx1.mx.test", DNS_A, &a);
	assert_int_equal(a.r.status, DNS_OK);
	assert_int_equal(a.r.count, 1);
	inet_ntop(AF_INET, &a.r.u.a[0], buf, sizeof(buf));
	assert_string_equal(buf, "127.0.0.2");

	run_one(base, d, "v6.test", DNS_AAAA, &a);
	assert_int_equal(a.r.status, DNS_OK);
	inet_ntop(AF_INET6, &a.r.u.aaaa[0], buf, sizeof(buf));
	assert_string_equal(buf, "::1");

	run_one(base, d, "v6.test", DNS_A, &a);
	assert_int_equal(a.r.status, DNS_NODATA);

	run_one(base, d, "nothere.test", DNS_A, &a);
	assert_int_equal(a.r.status, DNS_NXDOMAIN);

	run_one(base, d, "txt.test", DNS_TXT, &a);
	assert_int_equal(a.r.status, DNS_OK);
	assert_string_equal(a.r.u.txt[0], "hello world");

	/* DNS_TXT cuts at 255 octets (unchanged); DNS_TXT_FULL keeps records whole. */
	run_one(base, d, "long.test", DNS_TXT, &a);
	assert_int_equal(a.r.status, DNS_OK);
	assert_int_equal(a.r.count, 2);
	assert_int_equal(strlen(a.r.u.txt[strlen(a.r.u.txt[0]) == 11 ? 1 : 0]), DNS_NAME_MAX);
	{
		const char *t1;
		const char *t2;
		const char *want_long = NULL;
		const char *want_spf = NULL;
		int pass;

		for (pass = 0; pass < 2; pass++) {
			run_one(base, d, "long.test", DNS_TXT_FULL, &a);
			assert_int_equal(a.r.status, DNS_OK);
			assert_int_equal(a.r.count, 2);
			assert_int_equal(a.r.from_cache, pass == 1);
			assert_false(a.r.u.txt_full.cut);
			t1 = dns_txt_next(&a.r, NULL);
			assert_non_null(t1);
			t2 = dns_txt_next(&a.r, t1);
			assert_non_null(t2);
			assert_null(dns_txt_next(&a.r, t2));
			want_long = strlen(t1) == 400 ? t1 : t2;
			want_spf = want_long == t1 ? t2 : t1;
			assert_int_equal(strlen(want_long), 400);
			assert_int_equal(want_long[199], 'a');
			assert_int_equal(want_long[200], 'b');
			assert_string_equal(want_spf, "v=spf1 -all");
		}
	}
	run_one(base, d, "nothere.test", DNS_TXT_FULL, &a);
	assert_int_equal(a.r.status, DNS_NXDOMAIN);
	assert_null(dns_txt_next(&a.r, NULL));

	run_one(base, d, "9.0.0.127.in-addr.arpa", DNS_PTR, &a);
	assert_int_equal(a.r.status, DNS_OK);
	assert_string_equal(a.r.u.ptr[0], "ptr.test");

	run_one(base, d, "bad..name", DNS_A, &a);
	assert_int_equal(a.r.status, DNS_BADNAME);

	dns_get_stats(d, &st);
	assert_true(st.cache_hits >= 1);
	assert_true(st.cache_size >= 3);
	dns_free(d);
	event_base_free(base);
}

struct mail_answer {
	int done;
	struct dns_mail_result r;
	struct event_base *base;
};

static void on_mail(const struct dns_mail_result *r, uint64_t cookie, void *ctx)
{
	struct mail_answer *a = ctx;

	(void)cookie;
	a->done++;
	a->r = *r;
	event_base_loopbreak(a->base);
}

static void run_mail(struct event_base *base, struct dns *d, const char *domain,
		     struct mail_answer *a)
{
	struct timeval limit = { 10, 0 };

	memset(a, 0, sizeof(*a));
	a->base = base;
	dns_query_mail(d, domain, on_mail, 1, a);
	assert_int_equal(a->done, 0); /* never from inside the call */
	event_base_loopexit(base, &limit);
	event_base_dispatch(base);
	if (a->done != 1)
		fail_msg("%s: got %d callbacks, want 1", domain, a->done);
}

struct mail_case {
	const char *domain;
	enum dns_mail_status want;
	enum dns_mail_why why;
	const char *host;
};

static const struct mail_case mail_cases[] = {
	{ "mx.test", DNS_MAIL_LIVE, DNS_MAIL_WHY_NONE, "mx1.mx.test" },
	{ "v6.test", DNS_MAIL_LIVE, DNS_MAIL_WHY_NONE, "v6.test" },      /* no MX, AAAA */
	{ "mx1.mx.test", DNS_MAIL_LIVE, DNS_MAIL_WHY_NONE, "mx1.mx.test" }, /* no MX, A */
	{ "nothere.test", DNS_MAIL_DEAD, DNS_MAIL_NXDOMAIN, "" },
	{ "null.test", DNS_MAIL_DEAD, DNS_MAIL_NULL_MX, "" },
	{ "txt.test", DNS_MAIL_DEAD, DNS_MAIL_NO_RECORDS, "" },
	{ "dangle.test", DNS_MAIL_DEAD, DNS_MAIL_MX_NO_ADDRESS, "" },
	{ "txtmx.test", DNS_MAIL_DEAD, DNS_MAIL_MX_NO_ADDRESS, "" },
	{ "ipmx.test", DNS_MAIL_LIVE, DNS_MAIL_WHY_NONE, "" },  /* delivery connects to it */
	{ "mixed.test", DNS_MAIL_LIVE, DNS_MAIL_WHY_NONE, "mx1.mx.test" },
	{ "bad..name", DNS_MAIL_DEAD, DNS_MAIL_NXDOMAIN, "" },
};

static void test_mail_live(void **state)
{
	struct event_base *base;
	struct dns *d;
	struct mail_answer a;
	size_t i;

	(void)state;
	if (dnsmasq_pid <= 0)
		skip();
	base = event_base_new();
	d = new_dns(base, dnsmasq_port, 2000);
	for (i = 0; i < sizeof(mail_cases) / sizeof(mail_cases[0]); i++) {
		const struct mail_case *c = &mail_cases[i];

		run_mail(base, d, c->domain, &a);
		if (a.r.status != c->want || a.r.why != c->why)
			fail_msg("%s: got status %d why %s, want %d %s", c->domain,
				 (int)a.r.status, dns_mail_why_name(a.r.why), (int)c->want,
				 dns_mail_why_name(c->why));
		if (strcmp(a.r.host, c->host) != 0)
			fail_msg("%s: got host \"%s\", want \"%s\"", c->domain, a.r.host, c->host);
		if (c->want != DNS_MAIL_TEMPFAIL && c->why != DNS_MAIL_NXDOMAIN && a.r.ttl == 0)
			fail_msg("%s: got ttl 0, want the answers' TTL", c->domain);
	}
	dns_free(d);
	event_base_free(base);
}

static void test_mail_timeout_and_cancel(void **state)
{
	struct event_base *base = event_base_new();
	struct dns *d;
	struct mail_answer a;
	int port = free_udp_port(); /* nobody listens */

	(void)state;
	d = new_dns(base, port, 300);
	run_mail(base, d, "x.test", &a);
	assert_int_equal(a.r.status, DNS_MAIL_TEMPFAIL);

	memset(&a, 0, sizeof(a));
	a.base = base;
	dns_query_mail(d, "y.test", on_mail, 7, &a);
	dns_free(d); /* pending: called with DNS_MAIL_CANCELLED, nothing leaks */
	assert_int_equal(a.done, 1);
	assert_int_equal(a.r.status, DNS_MAIL_CANCELLED);
	event_base_free(base);
}

static void test_timeout_and_cancel(void **state)
{
	struct event_base *base = event_base_new();
	struct dns *d;
	struct answer a;
	struct answer b;
	int outstanding = 1;
	int port = free_udp_port(); /* nobody listens: ICMP refused or time-out */

	(void)state;
	d = new_dns(base, port, 300);
	run_one(base, d, "x.test", DNS_A, &a);
	assert_int_equal(a.r.status, DNS_TEMPFAIL);

	memset(&b, 0, sizeof(b));
	b.base = base;
	b.outstanding = &outstanding;
	dns_query(d, "y.test", DNS_MX, on_answer, 7, &b);
	dns_free(d); /* pending: called with DNS_CANCELLED */
	assert_int_equal(b.done, 1);
	assert_int_equal(b.r.status, DNS_CANCELLED);
	event_base_free(base);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reverse_name),
		cmocka_unit_test(test_reverse_bad_family),
		cmocka_unit_test(test_live),
		cmocka_unit_test(test_timeout_and_cancel),
		cmocka_unit_test(test_mail_pick),
		cmocka_unit_test(test_mail_decide),
		cmocka_unit_test(test_mail_live),
		cmocka_unit_test(test_mail_timeout_and_cancel),
	};

	return cmocka_run_group_tests(tests, start_dnsmasq, stop_dnsmasq);
}
