/*
 * log: see log.h.  The target is chosen once at start; SIGHUP reopens a
 * file target so that logrotate can move the old one away.  The fd swap is
 * guarded by a mutex because HTTP threads log too.
 */
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "../util/util.h"

enum target_kind { TARGET_STDERR, TARGET_FILE, TARGET_SYSLOG };

static pthread_mutex_t log_mutex = PTHREAD_MUTEX_INITIALIZER;
static enum target_kind target = TARGET_STDERR;
static char target_path[4096];
static int log_fd = 2;
static enum log_level min_level = LOG_LVL_INFO;

static const char *level_name[] = { "debug", "info", "warn", "error", "notice" };

int log_open(const char *spec, enum log_level min, char *err, size_t errsz)
{
	min_level = min;
	if (strcmp(spec, "stderr") == 0) {
		target = TARGET_STDERR;
		log_fd = 2;
		return 0;
	}
	if (strcmp(spec, "syslog") == 0) {
		target = TARGET_SYSLOG;
		openlog("moatd", LOG_PID | LOG_NDELAY, LOG_MAIL);
		return 0;
	}
	target = TARGET_FILE;
	strlcpy_s(target_path, spec, sizeof(target_path));
	log_fd = open(target_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
	if (log_fd < 0) {
		snprintf(err, errsz, "cannot open log file %s: %s", spec, strerror(errno));
		log_fd = 2;
		target = TARGET_STDERR;
		return -1;
	}
	return 0;
}

int log_reopen(void)
{
	int fd;
	int old;

	if (target != TARGET_FILE)
		return 0;
	fd = open(target_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
	if (fd < 0)
		return -1;
	pthread_mutex_lock(&log_mutex);
	old = log_fd;
	log_fd = fd;
	pthread_mutex_unlock(&log_mutex);
	if (old > 2)
		close(old);
	return 0;
}

void log_set_level(enum log_level min)
{
	__atomic_store_n(&min_level, min, __ATOMIC_RELAXED);
}

void log_close(void)
{
	if (target == TARGET_FILE && log_fd > 2)
		close(log_fd);
	if (target == TARGET_SYSLOG)
		closelog();
	log_fd = 2;
	target = TARGET_STDERR;
}

void log_msg(enum log_level lvl, const char *id, const char *module,
	     const char *fmt, ...)
{
	char line[2048];
	char stamp[40];
	struct timespec ts;
	struct tm tm;
	va_list ap;
	int n;
	int m;

	if (lvl < __atomic_load_n(&min_level, __ATOMIC_RELAXED))
		return;
	if (target == TARGET_SYSLOG) {
		static const int prio[] = { LOG_DEBUG, LOG_INFO, LOG_WARNING, LOG_ERR,
					    LOG_NOTICE };

		n = snprintf(line, sizeof(line), "%s %s ", id ? id : "-", module);
		va_start(ap, fmt);
		vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
		va_end(ap);
		syslog(prio[lvl], "%s", line);
		return;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	n = snprintf(line, sizeof(line), "%s.%03ldZ %s %s %s%s", stamp,
		     ts.tv_nsec / 1000000, id ? id : "-", module,
		     lvl == LOG_LVL_WARN || lvl == LOG_LVL_ERROR ? level_name[lvl] : "",
		     lvl == LOG_LVL_WARN || lvl == LOG_LVL_ERROR ? ": " : "");
	va_start(ap, fmt);
	m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	if (m < 0)
		return;
	n += m;
	if ((size_t)n > sizeof(line) - 2)
		n = (int)sizeof(line) - 2;
	line[n++] = '\n';
	pthread_mutex_lock(&log_mutex);
	if (write(log_fd, line, (size_t)n) < 0) {
		/* Nowhere left to report it. */
	}
	pthread_mutex_unlock(&log_mutex);
}
