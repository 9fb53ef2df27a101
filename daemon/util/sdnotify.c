/*
 * sdnotify: see sdnotify.h.  The protocol (sd_notify(3), systemd's
 * NOTIFY_SOCKET): newline-separated KEY=VALUE assignments in one datagram
 * to an AF_UNIX socket whose address is NOTIFY_SOCKET; a leading '@' names
 * the abstract namespace (the '@' becomes a NUL byte).  The manager reads
 * the sender's credentials, so the socket needs no connect and no reply.
 *
 * A send that fails is reported to the caller, who logs it: readiness is
 * advisory to moatd itself (mail flows either way), and the manager's own
 * time-outs catch a message that never arrived.
 */
#include "sdnotify.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static int notify_fd = -1;
static struct sockaddr_un notify_addr;
static socklen_t notify_len;

int sdnotify_init(char *err, size_t errsz)
{
	const char *e = getenv("NOTIFY_SOCKET");
	size_t n;

	sdnotify_close();
	if (e == NULL || e[0] == '\0')
		return 0;
	n = strlen(e);
	if ((e[0] != '/' && e[0] != '@') || n < 2 || n >= sizeof(notify_addr.sun_path)) {
		snprintf(err, errsz, "NOTIFY_SOCKET %.200s: expected an absolute path or @name"
			 " shorter than %zu bytes", e, sizeof(notify_addr.sun_path));
		return -1;
	}
	memset(&notify_addr, 0, sizeof(notify_addr));
	notify_addr.sun_family = AF_UNIX;
	memcpy(notify_addr.sun_path, e, n);
	if (e[0] == '@')
		notify_addr.sun_path[0] = '\0';
	/* Abstract names are exactly n bytes long; paths carry their NUL. */
	notify_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n +
				 (e[0] == '@' ? 0 : 1));
	notify_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (notify_fd < 0) {
		snprintf(err, errsz, "NOTIFY_SOCKET: socket: %s", strerror(errno));
		return -1;
	}
	return 0;
}

int sdnotify_enabled(void)
{
	return notify_fd >= 0;
}

int sdnotify_send(const char *state, char *err, size_t errsz)
{
	size_t len = strlen(state);
	ssize_t r;

	if (notify_fd < 0)
		return 0;
	do {
		r = sendto(notify_fd, state, len, MSG_NOSIGNAL, (struct sockaddr *)&notify_addr,
			   notify_len);
	} while (r < 0 && errno == EINTR);
	if (r < 0) {
		snprintf(err, errsz, "NOTIFY_SOCKET: send: %s", strerror(errno));
		return -1;
	}
	if ((size_t)r != len) {
		snprintf(err, errsz, "NOTIFY_SOCKET: short send (%zd of %zu bytes)", r, len);
		return -1;
	}
	return 0;
}

int sdnotify_reloading(char *err, size_t errsz)
{
	struct timespec ts;
	char msg[96];

	if (notify_fd < 0)
		return 0;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	snprintf(msg, sizeof(msg), "RELOADING=1\nMONOTONIC_USEC=%llu",
		 (unsigned long long)ts.tv_sec * 1000000ULL +
		 (unsigned long long)ts.tv_nsec / 1000ULL);
	return sdnotify_send(msg, err, errsz);
}

void sdnotify_close(void)
{
	if (notify_fd >= 0)
		close(notify_fd);
	notify_fd = -1;
}

/* A decimal without sign or spaces, no larger than max. */
static int parse_u64(const char *s, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;

	if (s == NULL || s[0] == '\0')
		return -1;
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		if (v > (max - (uint64_t)(*s - '0')) / 10)
			return -1;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	*out = v;
	return 0;
}

int sdnotify_parse_watchdog(const char *usec_str, const char *pid_str, pid_t self,
			    uint64_t *usec)
{
	uint64_t u;
	uint64_t pid;

	if (usec_str == NULL || usec_str[0] == '\0')
		return 0;
	if (parse_u64(usec_str, UINT64_MAX, &u) < 0 || u == 0)
		return -1;
	/* Without WATCHDOG_PID the value is for whoever reads it (sd_watchdog_enabled). */
	if (pid_str != NULL && pid_str[0] != '\0') {
		if (parse_u64(pid_str, INT32_MAX, &pid) < 0 || pid == 0)
			return -1;
		if ((pid_t)pid != self)
			return 0;
	}
	*usec = u;
	return 1;
}

int sdnotify_watchdog_usec(uint64_t *usec)
{
	return sdnotify_parse_watchdog(getenv("WATCHDOG_USEC"), getenv("WATCHDOG_PID"),
				       getpid(), usec);
}
