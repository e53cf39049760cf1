/* SPDX-License-Identifier: Apache-2.0 */
/*
 * throttle.h - the per-address failed-handshake limiter of `duet proxy`.
 *
 * Each client address has a token bucket: every handshake takes a token when
 * it is accepted and a successful one gives it back, so only failed (or
 * abandoned) handshakes cost; `per_second` tokens come back each second, up
 * to `burst`.  An address with less than one token is disconnected at accept,
 * before any TLS work, and no address has more than `burst` handshakes in
 * flight.  IPv6
 * addresses are counted per /64 (one host usually holds a whole /64);
 * IPv4-mapped IPv6 addresses count as the IPv4 address.  Addresses inside an
 * exempt CIDR are never throttled (a NAT gateway or a load balancer that
 * many clients share).
 *
 * The table is fixed-size (no allocation per address) and guarded by one
 * mutex; the bucket arithmetic is a pure function of the entry and the time,
 * for the unit tests.
 */
#ifndef DUET_PROXY_THROTTLE_H
#define DUET_PROXY_THROTTLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "lib/err.h"

/* An exempt network: family AF_INET or AF_INET6, the address, the prefix length. */
struct throttle_cidr {
    int family;
    uint8_t addr[16];
    unsigned prefix;
};

/* What a generation's configuration says about throttling. */
struct throttle_policy {
    double per_second;                  /* tokens returned per second */
    double burst;                       /* bucket size */
    const struct throttle_cidr *exempt; /* never throttled */
    size_t nexempt;
};

/* One address's bucket.  `tokens` may go below zero (a debt) but never below -burst. */
struct throttle_bucket {
    double tokens;
    double last; /* monotonic seconds of the last refill */
};

/* A fresh bucket: full. */
void throttle_bucket_init(struct throttle_bucket *b, const struct throttle_policy *p, double now);
/* Return the tokens earned since the last refill, up to burst. */
void throttle_bucket_refill(struct throttle_bucket *b, const struct throttle_policy *p,
                            double now);
/* A handshake may start if, after the refill, there is a token: it is taken (true). */
bool throttle_bucket_take(struct throttle_bucket *b, const struct throttle_policy *p, double now);
/* A handshake succeeded: its token comes back (never above burst). */
void throttle_bucket_give(struct throttle_bucket *b, const struct throttle_policy *p, double now);

/*
 * Parse "10.0.0.0/8", "2001:db8::/32" or a bare address (a /32 or /128).
 * Host bits beyond the prefix are refused, so a typo does not widen the
 * exemption silently.
 */
int throttle_cidr_parse(const char *text, struct throttle_cidr *out,
                        struct duet_err *err) MUST_CHECK;
/* Whether an address lies inside one of the policy's exempt networks. */
bool throttle_exempt(const struct throttle_policy *p, const struct sockaddr *sa);

struct throttle;

/* A new, empty table, or NULL when out of memory. */
struct throttle *throttle_new(void);
/* NULL is fine. */
void throttle_free(struct throttle *t);

/*
 * Whether the address may start a handshake now, taking its token (always
 * true for exempt addresses and non-IP sockets).  When it may not,
 * *log_refused is set to the number of refusals of this address to report
 * (non-zero at most once a second per address, so a flood makes one log line
 * a second), else 0.
 */
bool throttle_take(struct throttle *t, const struct throttle_policy *p, const struct sockaddr *sa,
                   double now, uint64_t *log_refused);
/* A handshake of the address succeeded: its token comes back. */
void throttle_give_back(struct throttle *t, const struct throttle_policy *p,
                        const struct sockaddr *sa, double now);

#endif
