/*
 * sdnotify: the service manager's readiness protocol (sd_notify(3)), written
 * directly on an AF_UNIX datagram socket so that moatd needs no libsystemd.
 *
 * sdnotify_init() reads NOTIFY_SOCKET once at start (a path, or "@name" for
 * the abstract namespace); without it every call here does nothing and
 * returns 0, so moatd behaves the same outside systemd.  Each message is one
 * datagram ("READY=1\nSTATUS=...").  Called from the event loop thread only.
 */
#ifndef MOAT_SDNOTIFY_H
#define MOAT_SDNOTIFY_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Read NOTIFY_SOCKET.  0 (also when unset), or -1 with err (malformed). */
int sdnotify_init(char *err, size_t errsz);
/* 1 when NOTIFY_SOCKET was set and valid. */
int sdnotify_enabled(void);
/* Send one datagram; 0 when sent or disabled, -1 with err. */
int sdnotify_send(const char *state, char *err, size_t errsz);
/* "RELOADING=1\nMONOTONIC_USEC=<now>": before a reload, READY=1 follows it. */
int sdnotify_reloading(char *err, size_t errsz);
void sdnotify_close(void);

/*
 * The watchdog: from WATCHDOG_USEC and WATCHDOG_PID (either may be NULL),
 * 1 with *usec when the manager expects WATCHDOG=1 from process self, 0
 * when not (unset, or meant for another process), -1 when malformed.
 * Pure: no environment, no I/O.
 */
int sdnotify_parse_watchdog(const char *usec_str, const char *pid_str, pid_t self,
			    uint64_t *usec);
/* The same from this process's environment. */
int sdnotify_watchdog_usec(uint64_t *usec);

#endif
