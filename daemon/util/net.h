/*
 * net: listening sockets.  Bound by main before privileges are dropped;
 * the SMTP and HTTP servers take the descriptors.
 */
#ifndef MOAT_NET_H
#define MOAT_NET_H

#include <stddef.h>

/*
 * Bind and listen on host (a literal IPv4 or IPv6 address) and port (0: the
 * kernel chooses).  IPv6 sockets are v6-only.  Returns the descriptor and
 * writes "host:port" or "[host]:port", with the port actually bound, to
 * bound; or -1 with "host:port: reason" in err.
 */
int net_listen(const char *host, int port, int backlog, int nonblock, char *bound,
	       size_t boundsz, char *err, size_t errsz);

#endif
