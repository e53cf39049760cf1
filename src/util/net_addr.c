/* SPDX-License-Identifier: Apache-2.0 */
/*
 * net_addr.c - the addresses the proxy, the tunnel and `duet bench` listen on
 * and connect to: "IP:PORT", "[IPv6]:PORT", "unix:PATH", or (for targets) a
 * name resolved once, when the configuration is read.
 */
#include "util/net_addr.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

/* Parse an address; see net_addr.h. */
int
net_addr_parse(const char *text, bool allow_unix, struct net_addr *out, struct duet_err *err)
{
    char host[256];
    const char *port;
    char *end = NULL;
    long p;

    memset(out, 0, sizeof(*out));
    if (text == NULL || text[0] == '\0')
        return err_set(err, DUET_ERR_INPUT, "empty address");
    if (strncmp(text, "unix:", 5) == 0) {
        struct sockaddr_un *sun = (struct sockaddr_un *)&out->ss;
        if (!allow_unix)
            return err_set(err, DUET_ERR_INPUT, "%s: a unix socket is not allowed here", text);
        if (strlen(text + 5) == 0 || strlen(text + 5) >= sizeof(sun->sun_path))
            return err_set(err, DUET_ERR_INPUT, "%s: unix socket path is empty or too long", text);
        sun->sun_family = AF_UNIX;
        strcpy(sun->sun_path, text + 5);
        out->len = sizeof(*sun);
        out->is_unix = true;
    } else {
        if (text[0] == '[') {
            const char *rb = strchr(text, ']');
            if (rb == NULL || rb[1] != ':' || (size_t)(rb - text - 1) >= sizeof(host))
                return err_set(err, DUET_ERR_INPUT, "%s: expected [IPv6]:PORT", text);
            memcpy(host, text + 1, (size_t)(rb - text - 1));
            host[rb - text - 1] = '\0';
            port = rb + 2;
        } else {
            const char *colon = strrchr(text, ':');
            if (colon == NULL || (size_t)(colon - text) >= sizeof(host))
                return err_set(err, DUET_ERR_INPUT, "%s: expected ADDRESS:PORT%s", text,
                               allow_unix ? " or unix:PATH" : "");
            memcpy(host, text, (size_t)(colon - text));
            host[colon - text] = '\0';
            port = colon + 1;
        }
        p = strtol(port, &end, 10);
        if (end == port || *end != '\0' || p < 0 || p > 65535)
            return err_set(err, DUET_ERR_INPUT, "%s: port \"%s\" is not a number 0-65535", text,
                           port);
        struct sockaddr_in *in4 = (struct sockaddr_in *)&out->ss;
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&out->ss;
        if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
            in4->sin_family = AF_INET;
            in4->sin_port = htons((uint16_t)p);
            out->len = sizeof(*in4);
        } else if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
            in6->sin6_family = AF_INET6;
            in6->sin6_port = htons((uint16_t)p);
            out->len = sizeof(*in6);
        } else {
            /* A host name: resolve once, now (targets of the tunnel, mostly). */
            struct addrinfo hints, *res = NULL;
            memset(&hints, 0, sizeof(hints));
            hints.ai_socktype = SOCK_STREAM;
            if (host[0] == '\0' || getaddrinfo(host, port, &hints, &res) != 0 || res == NULL)
                return err_set(err, DUET_ERR_INPUT, "%s: \"%s\" is not an IP address or a name "
                               "that resolves",
                               text, host);
            memcpy(&out->ss, res->ai_addr, res->ai_addrlen);
            out->len = res->ai_addrlen;
            freeaddrinfo(res);
        }
    }
    if ((out->text = strdup(text)) == NULL)
        return err_nomem(err);
    return 0;
}

/* Free an address's text and zero it; NULL is fine. */
void
net_addr_clear(struct net_addr *a)
{
    if (a == NULL)
        return;
    free(a->text);
    memset(a, 0, sizeof(*a));
}

/*
 * Whether an address is on loopback: 127/8, ::1, a unix socket, or the
 * IPv4-mapped ::ffff:127.x.y.z, which an IPv6 socket reaches only through
 * 127.x.y.z (RFC 4291 2.5.5.2).  Neither the deprecated IPv4-compatible
 * ::127.0.0.1 nor NAT64's 64:ff9b::127.0.0.1 is: both route off the machine.
 */
bool
net_addr_is_loopback(const struct net_addr *a)
{
    if (a->is_unix)
        return true;
    if (a->ss.ss_family == AF_INET) {
        const struct sockaddr_in *in4 = (const struct sockaddr_in *)(const void *)&a->ss;
        return (ntohl(in4->sin_addr.s_addr) >> 24) == 127;
    }
    if (a->ss.ss_family == AF_INET6) {
        const struct in6_addr *in6 =
            &((const struct sockaddr_in6 *)(const void *)&a->ss)->sin6_addr;
        return IN6_IS_ADDR_LOOPBACK(in6) || (IN6_IS_ADDR_V4MAPPED(in6) && in6->s6_addr[12] == 127);
    }
    return false;
}

/*
 * Whether an address is every interface: 0.0.0.0 (however spelled: "0"
 * resolves to it), :: (or 0:0:0:0:0:0:0:0), or the IPv4-mapped
 * ::ffff:0.0.0.0, on which an IPv6 socket accepts every IPv4 client
 * (RFC 4291 2.5.5.2).  A unix socket is not.
 */
bool
net_addr_is_wildcard(const struct net_addr *a)
{
    static const uint8_t zero4[4];

    if (a->is_unix)
        return false;
    if (a->ss.ss_family == AF_INET)
        return ((const struct sockaddr_in *)(const void *)&a->ss)->sin_addr.s_addr ==
               htonl(INADDR_ANY);
    if (a->ss.ss_family == AF_INET6) {
        const struct in6_addr *in6 =
            &((const struct sockaddr_in6 *)(const void *)&a->ss)->sin6_addr;
        return IN6_IS_ADDR_UNSPECIFIED(in6) ||
               (IN6_IS_ADDR_V4MAPPED(in6) && memcmp(&in6->s6_addr[12], zero4, 4) == 0);
    }
    return false;
}
