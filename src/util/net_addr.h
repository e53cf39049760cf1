/* SPDX-License-Identifier: Apache-2.0 */
/*
 * net_addr.h - a network address as configured: its text (for logs and
 * metrics) and the sockaddr it stands for.  No sockets are opened here.
 */
#ifndef DUET_UTIL_NET_ADDR_H
#define DUET_UTIL_NET_ADDR_H

#include <stdbool.h>
#include <sys/socket.h>

#include "lib/err.h"

/* An address: host:port (numeric IP) or unix:PATH. */
struct net_addr {
    char *text;
    struct sockaddr_storage ss;
    socklen_t len;
    bool is_unix;
};

/*
 * Parse "127.0.0.1:8443", "[::1]:8443" or "unix:/path" (only where allow_unix);
 * a host name is resolved once, now.  *out is cleared first; free it with
 * net_addr_clear().
 */
int net_addr_parse(const char *text, bool allow_unix, struct net_addr *out,
                   struct duet_err *err) MUST_CHECK;
void net_addr_clear(struct net_addr *a);
/* Loopback (127/8, ::1, ::ffff:127.x.y.z) or a unix socket; see net_addr.c. */
bool net_addr_is_loopback(const struct net_addr *a);
/* Every interface (0.0.0.0, ::, ::ffff:0.0.0.0); see net_addr.c. */
bool net_addr_is_wildcard(const struct net_addr *a);

#endif
