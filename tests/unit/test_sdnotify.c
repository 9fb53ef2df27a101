/*
 * Unit tests for the sd_notify protocol: datagrams reach a real AF_UNIX
 * socket bound at a path and in the abstract namespace, one message per
 * datagram; the watchdog's environment is parsed strictly.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <cmocka.h>

#include "util/sdnotify.h"

/* A datagram socket bound at name ("@x": abstract); returns its fd. */
static int bind_dgram(const char *name)
{
	struct sockaddr_un sa;
	size_t n = strlen(name);
	socklen_t len;
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	assert_true(n < sizeof(sa.sun_path));
	memcpy(sa.sun_path, name, n);
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
	if (name[0] == '@') {
		sa.sun_path[0] = '\0';
		len--;
	}
	if (bind(fd, (struct sockaddr *)&sa, len) < 0)
		fail_msg("bind %s failed", name);
	return fd;
}

/* The next datagram, NUL-terminated; fails the test if none is waiting. */
static void recv_one(int fd, char *buf, size_t bufsz)
{
	ssize_t r = recv(fd, buf, bufsz - 1, MSG_DONTWAIT);

	if (r < 0)
		fail_msg("no datagram waiting");
	buf[r] = '\0';
}

static void expect_nothing(int fd)
{
	char buf[16];

	if (recv(fd, buf, sizeof(buf), MSG_DONTWAIT) >= 0)
		fail_msg("got an extra datagram, want none");
}

static void test_path_socket(void **state)
{
	char dir[] = "/tmp/moat-sdnotify-XXXXXX";
	char path[128];
	char buf[256];
	char err[256];
	int fd;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/notify", dir);
	fd = bind_dgram(path);
	setenv("NOTIFY_SOCKET", path, 1);
	assert_int_equal(sdnotify_init(err, sizeof(err)), 0);
	assert_true(sdnotify_enabled());
	assert_int_equal(sdnotify_send("READY=1\nSTATUS=ready smtp=127.0.0.1:25", err,
				       sizeof(err)), 0);
	assert_int_equal(sdnotify_send("WATCHDOG=1", err, sizeof(err)), 0);
	/* Two messages, two datagrams: the manager parses each on its own. */
	recv_one(fd, buf, sizeof(buf));
	assert_string_equal(buf, "READY=1\nSTATUS=ready smtp=127.0.0.1:25");
	recv_one(fd, buf, sizeof(buf));
	assert_string_equal(buf, "WATCHDOG=1");
	assert_int_equal(sdnotify_reloading(err, sizeof(err)), 0);
	recv_one(fd, buf, sizeof(buf));
	assert_true(strncmp(buf, "RELOADING=1\nMONOTONIC_USEC=", 27) == 0);
	assert_true(strlen(buf) > 27);
	assert_true(strspn(buf + 27, "0123456789") == strlen(buf + 27));
	expect_nothing(fd);
	sdnotify_close();
	close(fd);
	unlink(path);
	rmdir(dir);
	unsetenv("NOTIFY_SOCKET");
}

static void test_abstract_socket(void **state)
{
	char name[64];
	char buf[64];
	char err[256];
	int fd;

	(void)state;
	snprintf(name, sizeof(name), "@moat-sdnotify-test-%ld", (long)getpid());
	fd = bind_dgram(name);
	setenv("NOTIFY_SOCKET", name, 1);
	assert_int_equal(sdnotify_init(err, sizeof(err)), 0);
	assert_int_equal(sdnotify_send("STOPPING=1", err, sizeof(err)), 0);
	recv_one(fd, buf, sizeof(buf));
	assert_string_equal(buf, "STOPPING=1");
	sdnotify_close();
	close(fd);
	unsetenv("NOTIFY_SOCKET");
}

static void test_unset_and_bad(void **state)
{
	char err[256] = "";

	(void)state;
	unsetenv("NOTIFY_SOCKET");
	assert_int_equal(sdnotify_init(err, sizeof(err)), 0);
	assert_false(sdnotify_enabled());
	/* Outside a service manager every message is a successful no-op. */
	assert_int_equal(sdnotify_send("READY=1", err, sizeof(err)), 0);
	assert_int_equal(sdnotify_reloading(err, sizeof(err)), 0);

	setenv("NOTIFY_SOCKET", "relative/path", 1);
	assert_int_equal(sdnotify_init(err, sizeof(err)), -1);
	assert_non_null(strstr(err, "NOTIFY_SOCKET"));
	assert_false(sdnotify_enabled());
	setenv("NOTIFY_SOCKET", "@", 1);
	assert_int_equal(sdnotify_init(err, sizeof(err)), -1);

	/* A socket nobody listens on: the send fails and says so. */
	setenv("NOTIFY_SOCKET", "/nonexistent/moat/notify", 1);
	assert_int_equal(sdnotify_init(err, sizeof(err)), 0);
	assert_int_equal(sdnotify_send("READY=1", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "send"));
	sdnotify_close();
	unsetenv("NOTIFY_SOCKET");
}

static void test_parse_watchdog(void **state)
{
	static const struct {
		const char *name;
		const char *usec;
		const char *pid;
		pid_t self;
		int want;
		uint64_t want_usec;
	} cases[] = {
		{ "unset", NULL, NULL, 10, 0, 0 },
		{ "empty", "", "10", 10, 0, 0 },
		{ "ours", "30000000", "10", 10, 1, 30000000 },
		{ "no pid: ours", "5000000", NULL, 10, 1, 5000000 },
		{ "another process", "30000000", "11", 10, 0, 0 },
		{ "zero", "0", "10", 10, -1, 0 },
		{ "negative", "-5", "10", 10, -1, 0 },
		{ "junk", "30s", "10", 10, -1, 0 },
		{ "space", " 30", "10", 10, -1, 0 },
		{ "overflow", "18446744073709551616", "10", 10, -1, 0 },
		{ "bad pid", "30000000", "x", 10, -1, 0 },
		{ "pid zero", "30000000", "0", 10, -1, 0 },
		{ "max", "18446744073709551615", "10", 10, 1, UINT64_MAX },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint64_t usec = 0;
		int got = sdnotify_parse_watchdog(cases[i].usec, cases[i].pid, cases[i].self,
						  &usec);

		if (got != cases[i].want)
			fail_msg("%s: got %d, want %d", cases[i].name, got, cases[i].want);
		if (got == 1 && usec != cases[i].want_usec)
			fail_msg("%s: got usec %llu, want %llu", cases[i].name,
				 (unsigned long long)usec, (unsigned long long)cases[i].want_usec);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_unset_and_bad),
		cmocka_unit_test(test_path_socket),
		cmocka_unit_test(test_abstract_socket),
		cmocka_unit_test(test_parse_watchdog),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
