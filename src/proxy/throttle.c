/* SPDX-License-Identifier: Apache-2.0 */
/*
 * throttle.c - the per-address failed-handshake limiter; see throttle.h.
 *
 * Every handshake takes a token when it is accepted and a successful one
 * gives it back, so a handshake that fails (or never finishes) costs its
 * token.  Taking the token at accept, not when the failure is known, is what
 * makes concurrency useless to an attacker: an address can never have more
 * handshakes in flight than it has tokens, so a wave of connections opened at
 * once gets at most `burst` of them started.  (Earlier versions counted only
 * failures: a first version refilled a balance driven below zero as if it were
 * new, and a second let every connection accepted before the first failure
 * landed through, so waves of concurrent failures were never throttled.)
 */
#include "proxy/throttle.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define THROTTLE_SLOTS 4096
#define THROTTLE_PROBES 8
#define THROTTLE_LOG_SECONDS 1.0

struct throttle_entry {
    uint8_t key[16];
    int family;
    bool used;
    struct throttle_bucket bucket;
    uint64_t refused;  /* refusals not yet logged */
    double logged;     /* monotonic seconds of the last refusal logged */
    bool ever_logged;
};

struct throttle {
    pthread_mutex_t lock;
    struct throttle_entry slots[THROTTLE_SLOTS];
};

/* --- buckets ----------------------------------------------------------------- */

void
throttle_bucket_init(struct throttle_bucket *b, const struct throttle_policy *p, double now)
{
    b->tokens = p->burst;
    b->last = now;
}

void
throttle_bucket_refill(struct throttle_bucket *b, const struct throttle_policy *p, double now)
{
    if (now > b->last) {
        b->tokens += (now - b->last) * p->per_second;
        if (b->tokens > p->burst)
            b->tokens = p->burst;
    }
    b->last = now > b->last ? now : b->last;
}

bool
throttle_bucket_take(struct throttle_bucket *b, const struct throttle_policy *p, double now)
{
    throttle_bucket_refill(b, p, now);
    if (b->tokens < 1.0)
        return false;
    b->tokens -= 1.0;
    return true;
}

void
throttle_bucket_give(struct throttle_bucket *b, const struct throttle_policy *p, double now)
{
    throttle_bucket_refill(b, p, now);
    b->tokens += 1.0;
    if (b->tokens > p->burst)
        b->tokens = p->burst;
}

/* --- addresses ----------------------------------------------------------------- */

/*
 * The key an address is counted under: IPv4 (also when IPv4-mapped in IPv6)
 * as its 4 bytes, IPv6 as its /64.  Returns the family, or 0 for other sockets.
 */
static int
addr_key(const struct sockaddr *sa, uint8_t key[16])
{
    memset(key, 0, 16);
    if (sa->sa_family == AF_INET) {
        memcpy(key, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
        return AF_INET;
    }
    if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(a)) {
            memcpy(key, &a->s6_addr[12], 4);
            return AF_INET;
        }
        memcpy(key, a->s6_addr, 8);
        return AF_INET6;
    }
    return 0;
}

/* The full address (not the /64 key) for the exemption check, same family rules. */
static int
addr_full(const struct sockaddr *sa, uint8_t out[16])
{
    memset(out, 0, 16);
    if (sa->sa_family == AF_INET) {
        memcpy(out, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
        return AF_INET;
    }
    if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(a)) {
            memcpy(out, &a->s6_addr[12], 4);
            return AF_INET;
        }
        memcpy(out, a->s6_addr, 16);
        return AF_INET6;
    }
    return 0;
}

int
throttle_cidr_parse(const char *text, struct throttle_cidr *out, struct duet_err *err)
{
    char host[INET6_ADDRSTRLEN + 1];
    const char *slash = text != NULL ? strchr(text, '/') : NULL;
    size_t hlen = slash != NULL ? (size_t)(slash - text) : (text != NULL ? strlen(text) : 0);
    unsigned max;

    memset(out, 0, sizeof(*out));
    if (text == NULL || hlen == 0 || hlen >= sizeof(host))
        return err_set(err, DUET_ERR_INPUT,
                       "\"%s\": expected a network such as 10.0.0.0/8 or 2001:db8::/32",
                       text != NULL ? text : "");
    memcpy(host, text, hlen);
    host[hlen] = '\0';
    if (inet_pton(AF_INET, host, out->addr) == 1) {
        out->family = AF_INET;
        max = 32;
    } else if (inet_pton(AF_INET6, host, out->addr) == 1) {
        out->family = AF_INET6;
        max = 128;
    } else {
        return err_set(err, DUET_ERR_INPUT,
                       "\"%s\": \"%s\" is not an IPv4 or IPv6 address; expected a network such "
                       "as 10.0.0.0/8 or 2001:db8::/32",
                       text, host);
    }
    out->prefix = max;
    if (slash != NULL) {
        char *end = NULL;
        long n = strtol(slash + 1, &end, 10);
        if (slash[1] < '0' || slash[1] > '9' || *end != '\0' || n < 0 || n > (long)max)
            return err_set(err, DUET_ERR_INPUT, "\"%s\": the prefix length must be 0 to %u",
                           text, max);
        out->prefix = (unsigned)n;
    }
    for (unsigned bit = out->prefix; bit < max; bit++) {
        if (out->addr[bit / 8] & (0x80u >> (bit % 8)))
            return err_set(err, DUET_ERR_INPUT,
                           "\"%s\": bits are set beyond the /%u prefix (did you mean a network "
                           "address?)",
                           text, out->prefix);
    }
    return 0;
}

static bool
cidr_contains(const struct throttle_cidr *c, int family, const uint8_t addr[16])
{
    unsigned full = c->prefix / 8, rest = c->prefix % 8;

    if (c->family != family)
        return false;
    if (memcmp(c->addr, addr, full) != 0)
        return false;
    if (rest == 0)
        return true;
    uint8_t mask = (uint8_t)(0xffu << (8 - rest));
    return (c->addr[full] & mask) == (addr[full] & mask);
}

bool
throttle_exempt(const struct throttle_policy *p, const struct sockaddr *sa)
{
    uint8_t a[16];
    int family = addr_full(sa, a);

    for (size_t i = 0; family != 0 && i < p->nexempt; i++) {
        if (cidr_contains(&p->exempt[i], family, a))
            return true;
    }
    return false;
}

/* --- the table ------------------------------------------------------------------ */

struct throttle *
throttle_new(void)
{
    struct throttle *t = calloc(1, sizeof(*t));

    if (t == NULL)
        return NULL;
    if (pthread_mutex_init(&t->lock, NULL) != 0) {
        free(t);
        return NULL;
    }
    return t;
}

void
throttle_free(struct throttle *t)
{
    if (t == NULL)
        return;
    pthread_mutex_destroy(&t->lock);
    free(t);
}

/* Whether an entry still says anything: a full bucket is the same as no entry. */
static bool
entry_live(struct throttle_entry *e, const struct throttle_policy *p, double now)
{
    if (!e->used)
        return false;
    throttle_bucket_refill(&e->bucket, p, now);
    return e->bucket.tokens < p->burst || e->refused > 0;
}

/*
 * The entry of an address, under the lock.  With create, a missing one is
 * made in the first free probe slot (an unused one, or one whose bucket has
 * filled up again); when all probes hold live addresses, the fullest of them
 * is forgotten.  Without create, NULL for an address that has no entry.
 */
static struct throttle_entry *
slot_find(struct throttle *t, const struct throttle_policy *p, const struct sockaddr *sa,
          double now, bool create)
{
    uint8_t key[16];
    int family = addr_key(sa, key);
    uint32_t h = 2166136261u;
    struct throttle_entry *free_slot = NULL, *fullest = NULL;

    if (family == 0)
        return NULL;
    h = (h ^ (uint32_t)family) * 16777619u;
    for (int i = 0; i < 16; i++)
        h = (h ^ key[i]) * 16777619u;
    for (uint32_t probe = 0; probe < THROTTLE_PROBES; probe++) {
        struct throttle_entry *e = &t->slots[(h + probe) % THROTTLE_SLOTS];
        if (e->used && e->family == family && memcmp(e->key, key, 16) == 0)
            return e;
        if (free_slot == NULL && !entry_live(e, p, now))
            free_slot = e;
        if (e->used && (fullest == NULL || e->bucket.tokens > fullest->bucket.tokens))
            fullest = e;
    }
    if (!create)
        return NULL;
    struct throttle_entry *e = free_slot != NULL ? free_slot : fullest;
    memset(e, 0, sizeof(*e));
    e->used = true;
    e->family = family;
    memcpy(e->key, key, 16);
    throttle_bucket_init(&e->bucket, p, now);
    return e;
}

bool
throttle_take(struct throttle *t, const struct throttle_policy *p, const struct sockaddr *sa,
              double now, uint64_t *log_refused)
{
    bool ok = true;

    *log_refused = 0;
    if (throttle_exempt(p, sa))
        return true;
    pthread_mutex_lock(&t->lock);
    struct throttle_entry *e = slot_find(t, p, sa, now, true);
    if (e != NULL && !throttle_bucket_take(&e->bucket, p, now)) {
        ok = false;
        e->refused++;
        if (!e->ever_logged || now - e->logged >= THROTTLE_LOG_SECONDS) {
            *log_refused = e->refused;
            e->refused = 0;
            e->logged = now;
            e->ever_logged = true;
        }
    }
    pthread_mutex_unlock(&t->lock);
    return ok;
}

void
throttle_give_back(struct throttle *t, const struct throttle_policy *p, const struct sockaddr *sa,
                   double now)
{
    if (throttle_exempt(p, sa))
        return;
    pthread_mutex_lock(&t->lock);
    struct throttle_entry *e = slot_find(t, p, sa, now, false);
    if (e != NULL)
        throttle_bucket_give(&e->bucket, p, now);
    pthread_mutex_unlock(&t->lock);
}
