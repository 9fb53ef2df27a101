/*
 * log: the daemon's operational log, one line per event:
 *   <time> <id> <module> <event> key=value ...
 * to stderr, a file (reopened on SIGHUP) or syslog.  Safe from any thread:
 * each line is one write(2).  Client text must go through log_escape()
 * first; AUTH data never reaches a log call.
 */
#ifndef MOAT_LOG_H
#define MOAT_LOG_H

#include <stddef.h>

/* NOTICE is for the few lifecycle lines (ready, stopping, stopped) that
 * scripts wait for: written whatever log_level says. */
enum log_level { LOG_LVL_DEBUG, LOG_LVL_INFO, LOG_LVL_WARN, LOG_LVL_ERROR, LOG_LVL_NOTICE };

/* target: "stderr", "syslog" or a file path.  0, or -1 with err filled. */
int log_open(const char *target, enum log_level min, char *err, size_t errsz);
/* Reopen a file target (after rotation); no-op for stderr and syslog. */
int log_reopen(void);
void log_close(void);
/* SIGHUP: lines below min are dropped from now on (any thread may log meanwhile). */
void log_set_level(enum log_level min);

/* id: a session or queue id, or NULL for "-". */
void log_msg(enum log_level lvl, const char *id, const char *module,
	     const char *fmt, ...) __attribute__((format(printf, 4, 5)));

#define log_debug(id, mod, ...) log_msg(LOG_LVL_DEBUG, id, mod, __VA_ARGS__)
#define log_info(id, mod, ...) log_msg(LOG_LVL_INFO, id, mod, __VA_ARGS__)
#define log_warn(id, mod, ...) log_msg(LOG_LVL_WARN, id, mod, __VA_ARGS__)
#define log_error(id, mod, ...) log_msg(LOG_LVL_ERROR, id, mod, __VA_ARGS__)
#define log_notice(id, mod, ...) log_msg(LOG_LVL_NOTICE, id, mod, __VA_ARGS__)

#endif
