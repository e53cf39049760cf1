/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ocspcheck.c - OCSP checking of client certificates (see ocspcheck.h): the
 * shared cache, the check of a response, and the GET a worker sends on its
 * own loop with libevent's HTTP client.
 *
 * A query belongs to its worker; the connections waiting for it hold a
 * waiter each, which they cancel when they go away, so an answer arriving
 * after its client left finds nobody to call.  The query itself is freed on
 * the loop after its last callback (never inside one of libevent's HTTP
 * callbacks), and its deadline covers the whole exchange, so a responder that
 * accepts and then says nothing, or trickles bytes, costs --ocsp-timeout.
 */
#include "proxy/ocspcheck.h"

#include <arpa/inet.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/dns.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <openssl/evp.h>
#include <openssl/ocsp.h>
#include <openssl/x509v3.h>

#include "lib/x509util.h"
#include "proxy/crlplan.h"
#include "proxy/metrics.h"
#include "proxy/staple.h"
#include "util/log.h"

/* --- the cache ------------------------------------------------------------------ */

struct cache_entry {
    uint8_t key[OCSP_KEY_LEN];
    struct ocsp_answer a;
    struct cache_entry *hnext;               /* the bucket's chain */
    struct cache_entry *lru_prev, *lru_next; /* most recently used first */
};

struct ocsp_cache {
    pthread_mutex_t lock;
    size_t cap, len, nbuckets; /* nbuckets: a power of two */
    struct cache_entry **buckets;
    struct cache_entry *lru_head, *lru_tail;
    STACK_OF(X509) * issuers; /* seen in full handshakes */
};

/* A cache; see ocspcheck.h. */
struct ocsp_cache *
ocsp_cache_new(size_t cap)
{
    struct ocsp_cache *c = calloc(1, sizeof(*c));
    size_t n = 16;

    if (c == NULL || cap == 0)
        goto err;
    while (n < cap && n < ((size_t)1 << 20)) /* longer chains past a million */
        n <<= 1;
    if ((c->buckets = calloc(n, sizeof(*c->buckets))) == NULL ||
        (c->issuers = sk_X509_new_null()) == NULL)
        goto err;
    c->nbuckets = n;
    c->cap = cap;
    pthread_mutex_init(&c->lock, NULL);
    return c;
err:
    if (c != NULL)
        free(c->buckets);
    free(c);
    return NULL;
}

/* Remember an issuer; see ocspcheck.h. */
void
ocsp_cache_add_issuer(struct ocsp_cache *c, X509 *issuer)
{
    pthread_mutex_lock(&c->lock);
    for (int i = 0; i < sk_X509_num(c->issuers); i++) {
        if (X509_cmp(sk_X509_value(c->issuers, i), issuer) == 0)
            goto out;
    }
    if (sk_X509_num(c->issuers) < OCSP_MAX_ISSUERS && X509_up_ref(issuer) &&
        !sk_X509_push(c->issuers, issuer))
        X509_free(issuer);
out:
    pthread_mutex_unlock(&c->lock);
}

/* An issuer seen before; see ocspcheck.h. */
X509 *
ocsp_cache_find_issuer(struct ocsp_cache *c, X509 *leaf)
{
    X509 *found = NULL;

    pthread_mutex_lock(&c->lock);
    found = x509u_find_issuer(leaf, c->issuers, NULL);
    if (found != NULL && !X509_up_ref(found))
        found = NULL;
    pthread_mutex_unlock(&c->lock);
    return found;
}

/* The issuer to name; see ocspcheck.h. */
X509 *
ocsp_issuer_get1(struct ocsp_cache *c, X509 *leaf, STACK_OF(X509) * verified,
                 STACK_OF(X509) * anchors, struct ocsp_result *res)
{
    X509 *issuer = x509u_find_issuer(leaf, verified, anchors);

    if (issuer != NULL) {
        if (verified != NULL)
            ocsp_cache_add_issuer(c, issuer);
        X509_up_ref(issuer);
        return issuer;
    }
    if ((issuer = ocsp_cache_find_issuer(c, leaf)) == NULL) {
        memset(res, 0, sizeof(*res));
        res->kind = OCSP_R_ERROR;
        snprintf(res->code, sizeof(res->code), "no_issuer");
        snprintf(res->why, sizeof(res->why),
                 "the issuer of the certificate is neither in the chain the client sent nor in "
                 "--cacert (nor among the issuers of earlier verified chains), so its OCSP "
                 "status cannot be asked");
    }
    return issuer;
}

/* Free a cache; see ocspcheck.h. */
void
ocsp_cache_free(struct ocsp_cache *c)
{
    if (c == NULL)
        return;
    for (struct cache_entry *e = c->lru_head, *next; e != NULL; e = next) {
        next = e->lru_next;
        free(e);
    }
    free(c->buckets);
    OSSL_STACK_OF_X509_free(c->issuers);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

static size_t
bucket_of(const struct ocsp_cache *c, const uint8_t key[OCSP_KEY_LEN])
{
    uint64_t h;

    memcpy(&h, key, sizeof(h)); /* the key is a digest already */
    return (size_t)(h & (c->nbuckets - 1));
}

static struct cache_entry **
find_slot(struct ocsp_cache *c, const uint8_t key[OCSP_KEY_LEN])
{
    struct cache_entry **p = &c->buckets[bucket_of(c, key)];

    while (*p != NULL && memcmp((*p)->key, key, OCSP_KEY_LEN) != 0)
        p = &(*p)->hnext;
    return p;
}

static void
lru_unlink(struct ocsp_cache *c, struct cache_entry *e)
{
    if (e->lru_prev != NULL)
        e->lru_prev->lru_next = e->lru_next;
    else
        c->lru_head = e->lru_next;
    if (e->lru_next != NULL)
        e->lru_next->lru_prev = e->lru_prev;
    else
        c->lru_tail = e->lru_prev;
    e->lru_prev = e->lru_next = NULL;
}

static void
lru_push(struct ocsp_cache *c, struct cache_entry *e)
{
    e->lru_prev = NULL;
    e->lru_next = c->lru_head;
    if (c->lru_head != NULL)
        c->lru_head->lru_prev = e;
    c->lru_head = e;
    if (c->lru_tail == NULL)
        c->lru_tail = e;
}

/* Unlink and free the entry *slot points at. */
static void
drop(struct ocsp_cache *c, struct cache_entry **slot)
{
    struct cache_entry *e = *slot;

    *slot = e->hnext;
    lru_unlink(c, e);
    c->len--;
    free(e);
}

/* A cached answer; see ocspcheck.h. */
bool
ocsp_cache_get(struct ocsp_cache *c, const uint8_t key[OCSP_KEY_LEN], int64_t now,
               struct ocsp_answer *out)
{
    struct cache_entry **slot;
    bool hit = false;

    pthread_mutex_lock(&c->lock);
    slot = find_slot(c, key);
    if (*slot != NULL && (*slot)->a.expires <= now) {
        drop(c, slot);
    } else if (*slot != NULL) {
        *out = (*slot)->a;
        lru_unlink(c, *slot);
        lru_push(c, *slot);
        hit = true;
    }
    pthread_mutex_unlock(&c->lock);
    return hit;
}

/* Keep an answer; see ocspcheck.h. */
void
ocsp_cache_put(struct ocsp_cache *c, const uint8_t key[OCSP_KEY_LEN], const struct ocsp_answer *a,
               int64_t now)
{
    struct cache_entry **slot, *e;

    if (a->expires <= now)
        return;
    pthread_mutex_lock(&c->lock);
    slot = find_slot(c, key);
    if (*slot != NULL) {
        (*slot)->a = *a;
        lru_unlink(c, *slot);
        lru_push(c, *slot);
        goto out;
    }
    if (c->len >= c->cap && c->lru_tail != NULL) {
        struct cache_entry **victim = find_slot(c, c->lru_tail->key);
        drop(c, victim);
        slot = find_slot(c, key); /* the victim may have been in the same chain */
    }
    if ((e = calloc(1, sizeof(*e))) == NULL)
        goto out;
    memcpy(e->key, key, OCSP_KEY_LEN);
    e->a = *a;
    *slot = e;
    lru_push(c, e);
    c->len++;
out:
    pthread_mutex_unlock(&c->lock);
}

/* Entries kept; see ocspcheck.h. */
size_t
ocsp_cache_len(struct ocsp_cache *c)
{
    size_t n;

    pthread_mutex_lock(&c->lock);
    n = c->len;
    pthread_mutex_unlock(&c->lock);
    return n;
}

/* The cache key; see ocspcheck.h. */
bool
ocsp_cache_key(X509 *leaf, uint8_t key[OCSP_KEY_LEN])
{
    unsigned int kl = 0;

    return X509_digest(leaf, EVP_sha256(), key, &kl) == 1 && kl == OCSP_KEY_LEN;
}

/* --- responses ------------------------------------------------------------------ */

/* What a response answers; see ocspcheck.h. */
int
ocsp_evaluate(const unsigned char *der, size_t len, X509 *leaf, X509 *issuer, int64_t now,
              struct ocsp_answer *out, char *code, size_t clen, char *why, size_t wlen)
{
    struct staple_facts f;
    int rc;

    memset(out, 0, sizeof(*out));
    out->reason = -1;
    rc = staple_check(der, len, leaf, issuer, now, &f, code, clen, why, wlen);
    out->this_update = f.this_update;
    if (rc == 0) {
        out->status = V_OCSP_CERTSTATUS_GOOD;
        out->expires = f.next_update;
        return 0;
    }
    if (strcmp(code, "no_next_update") == 0) {
        /*
         * Every other check passed (it is the last one).  Without a nextUpdate
         * only a fresh answer says anything about now: an old one, replayed by
         * whoever sits between the proxy and an http:// responder, would keep
         * a revoked client in for ever.
         */
        if (f.this_update < now - OCSP_NO_NEXT_UPDATE_MAX_AGE) {
            snprintf(code, clen, "stale");
            snprintf(why, wlen,
                     "the response has no nextUpdate and its thisUpdate is %lld s old (at most "
                     "%d s is taken from a responder that sets none)",
                     (long long)(now - f.this_update), OCSP_NO_NEXT_UPDATE_MAX_AGE);
            return -1;
        }
        out->status = V_OCSP_CERTSTATUS_GOOD;
        out->expires = now + OCSP_NO_NEXT_UPDATE_SECS;
        return 0;
    }
    if (strcmp(code, "revoked") == 0) {
        out->status = V_OCSP_CERTSTATUS_REVOKED;
        out->revoked_at = f.revoked_at;
        out->reason = f.reason;
        out->expires = f.next_update > now ? f.next_update : now + OCSP_NO_NEXT_UPDATE_SECS;
        return 0;
    }
    if (strcmp(code, "unknown") == 0) {
        out->status = V_OCSP_CERTSTATUS_UNKNOWN;
        out->expires = 0; /* never kept: the responder may learn of the certificate soon */
        return 0;
    }
    return -1;
}

/* The responder of a leaf; see ocspcheck.h. */
bool
ocsp_responder_of(X509 *leaf, const char *override, char **url)
{
    STACK_OF(OPENSSL_STRING) *aia = NULL;

    *url = NULL;
    if (override != NULL) {
        *url = strdup(override);
        return *url != NULL;
    }
    aia = X509_get1_ocsp(leaf);
    for (int i = 0; i < sk_OPENSSL_STRING_num(aia) && *url == NULL; i++) {
        const char *u = sk_OPENSSL_STRING_value(aia, i);
        if (strncasecmp(u, "http://", 7) == 0)
            *url = strdup(u);
    }
    X509_email_free(aia);
    return *url != NULL;
}

/* --- metrics ---------------------------------------------------------------------- */

static const double latency_buckets[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5};
static pthread_mutex_t latency_lock = PTHREAD_MUTEX_INITIALIZER;
static double latency_sum;

/* The words of a result; see ocspcheck.h. */
const char *
ocsp_result_name(enum ocsp_result_kind k)
{
    static const char *const names[] = {"good", "revoked", "unknown", "error", "timeout"};

    return (size_t)k < sizeof(names) / sizeof(names[0]) ? names[k] : "error";
}

/* Failures in a row per listener (ocsp_failures), for the few listeners a proxy has. */
#define HEALTH_SLOTS 64

static struct {
    char listener[128];
    int failures;
    char last[300];
} health[HEALTH_SLOTS];
static pthread_mutex_t health_lock = PTHREAD_MUTEX_INITIALIZER;

static void
health_note(const char *listener, const struct ocsp_result *r)
{
    /*
     * Only the responder's own failures count: a response refused by its
     * checks can come of what a client sent, and one client must not be able
     * to take the proxy out of its load balancer's rotation.
     */
    static const char *const responder_codes[] = {"connect", "http_status", "not_http",
                                                  "too_large", "unsuccessful"};
    enum ocsp_result_kind k = r->kind;
    size_t i;

    if (k == OCSP_R_ERROR) {
        bool responder = false;
        for (i = 0; i < sizeof(responder_codes) / sizeof(responder_codes[0]); i++)
            responder = responder || strcmp(r->code, responder_codes[i]) == 0;
        if (!responder)
            return; /* neither a failure of the responder nor an answer */
    }

    pthread_mutex_lock(&health_lock);
    for (i = 0; i < HEALTH_SLOTS && health[i].listener[0] != '\0' &&
                strcmp(health[i].listener, listener) != 0;
         i++)
        ;
    if (i < HEALTH_SLOTS) {
        snprintf(health[i].listener, sizeof(health[i].listener), "%s", listener);
        if (k == OCSP_R_ERROR || k == OCSP_R_TIMEOUT) {
            health[i].failures++;
            snprintf(health[i].last, sizeof(health[i].last), "%.299s", r->why);
        } else {
            health[i].failures = 0;
            health[i].last[0] = '\0';
        }
    }
    pthread_mutex_unlock(&health_lock);
}

/* A listener's failures in a row; see ocspcheck.h. */
int
ocsp_failures(const char *listener, char *last, size_t len)
{
    int n = 0;

    if (len > 0)
        last[0] = '\0';
    pthread_mutex_lock(&health_lock);
    for (size_t i = 0; i < HEALTH_SLOTS && health[i].listener[0] != '\0'; i++) {
        if (strcmp(health[i].listener, listener) == 0) {
            n = health[i].failures;
            snprintf(last, len, "%s", health[i].last);
            break;
        }
    }
    pthread_mutex_unlock(&health_lock);
    return n;
}

static void
count_query(const char *listener, enum ocsp_result_kind k, double secs)
{
    char ll[128], labels[256];
    double sum;

    metrics_label(ll, sizeof(ll), listener);
    snprintf(labels, sizeof(labels), "listener=\"%s\",result=\"%s\"", ll, ocsp_result_name(k));
    metrics_count("duet_ocsp_queries_total", labels, 1);
    /* The latency as a Prometheus histogram: cumulative buckets, a count and a sum. */
    for (size_t i = 0; i < sizeof(latency_buckets) / sizeof(latency_buckets[0]); i++) {
        if (secs <= latency_buckets[i]) {
            snprintf(labels, sizeof(labels), "le=\"%g\"", latency_buckets[i]);
            metrics_count("duet_ocsp_query_duration_seconds_bucket", labels, 1);
        }
    }
    metrics_count("duet_ocsp_query_duration_seconds_bucket", "le=\"+Inf\"", 1);
    metrics_count("duet_ocsp_query_duration_seconds_count", "", 1);
    pthread_mutex_lock(&latency_lock);
    latency_sum += secs;
    sum = latency_sum;
    pthread_mutex_unlock(&latency_lock);
    metrics_gauge_set("duet_ocsp_query_duration_seconds_sum", "", sum);
}

/* A cache hit; see ocspcheck.h. */
void
ocsp_count_cache_hit(const char *listener)
{
    char ll[128], labels[160];

    metrics_label(ll, sizeof(ll), listener);
    snprintf(labels, sizeof(labels), "listener=\"%s\"", ll);
    metrics_count("duet_ocsp_cache_hits_total", labels, 1);
}

/* --- queries -------------------------------------------------------------------------- */

struct ocsp_waiter {
    struct ocsp_query *q;
    struct ocsp_waiter *prev, *next;
    ocsp_done_fn done;
    void *arg;
};

struct ocsp_query {
    struct ocsp_worker *ow;
    struct ocsp_query *prev, *next; /* the worker's queries in flight */
    uint8_t key[OCSP_KEY_LEN];
    struct ocsp_cache *cache;
    X509 *leaf, *issuer; /* references */
    char listener[128];
    char url[300];
    struct evhttp_connection *evcon;
    struct event *deadline;
    double t0;
    int timeout_ms;
    enum evhttp_request_error http_error;
    bool http_failed;
    bool done;
    struct ocsp_waiter *waiters;
};

struct ocsp_worker {
    struct event_base *base;
    struct evdns_base *dns; /* made when a responder is named by a host name */
    struct ocsp_query *queries;
};

static double
mono(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
result_set(struct ocsp_result *r, enum ocsp_result_kind k, const char *url, const char *code,
           const char *why)
{
    memset(r, 0, sizeof(*r));
    r->kind = k;
    snprintf(r->url, sizeof(r->url), "%s", url != NULL ? url : "");
    snprintf(r->code, sizeof(r->code), "%s", code != NULL ? code : "");
    snprintf(r->why, sizeof(r->why), "%s", why != NULL ? why : "");
}

/* Free a query that ended, on the loop after its last callback. */
static void
query_free_cb(evutil_socket_t fd, short what, void *arg)
{
    struct ocsp_query *q = arg;

    (void)fd;
    (void)what;
    if (q->evcon != NULL)
        evhttp_connection_free(q->evcon);
    if (q->deadline != NULL)
        event_free(q->deadline);
    X509_free(q->leaf);
    X509_free(q->issuer);
    free(q);
}

/*
 * The query ended with r: it leaves the worker's list (a new handshake asks
 * again or finds the cache), every waiter is told, and the free is scheduled
 * on the deadline timer (query_send() made it before anything can finish).
 */
static void
query_finish(struct ocsp_query *q, struct ocsp_result *r)
{
    struct ocsp_worker *ow = q->ow;

    if (q->done)
        return;
    q->done = true;
    if (q->deadline != NULL)
        event_del(q->deadline);
    if (q->prev != NULL)
        q->prev->next = q->next;
    else
        ow->queries = q->next;
    if (q->next != NULL)
        q->next->prev = q->prev;
    count_query(q->listener, r->kind, mono() - q->t0);
    health_note(q->listener, r);
    while (q->waiters != NULL) {
        struct ocsp_waiter *w = q->waiters;
        q->waiters = w->next;
        if (q->waiters != NULL)
            q->waiters->prev = NULL;
        w->q = NULL;
        w->done(w->arg, r);
        free(w);
    }
    /*
     * Freed by the deadline timer, made active now: this may run inside one
     * of evhttp's callbacks, whose connection must outlive it.  Activating an
     * event allocates nothing, so it cannot fail.
     */
    event_active(q->deadline, EV_TIMEOUT, 1);
}

static void
deadline_cb(evutil_socket_t fd, short what, void *arg)
{
    struct ocsp_query *q = arg;
    struct ocsp_result r;
    char why[400];

    (void)fd;
    (void)what;
    if (q->done) { /* made active by query_finish(): the query ended, free it */
        query_free_cb(fd, what, q);
        return;
    }
    /* Not inside an HTTP callback: the connection can go now, its request with it. */
    if (q->evcon != NULL) {
        evhttp_connection_free(q->evcon);
        q->evcon = NULL;
    }
    snprintf(why, sizeof(why), "the OCSP responder %s did not answer within %d ms (--ocsp-timeout)",
             q->url, q->timeout_ms);
    result_set(&r, OCSP_R_TIMEOUT, q->url, "timeout", why);
    query_finish(q, &r);
}

static const char *
http_error_words(enum evhttp_request_error e)
{
    switch (e) {
    case EVREQ_HTTP_TIMEOUT:
        return "the connection timed out";
    case EVREQ_HTTP_EOF:
        return "the connection closed before a complete answer";
    case EVREQ_HTTP_INVALID_HEADER:
        return "the answer is not a valid HTTP response";
    case EVREQ_HTTP_BUFFER_ERROR:
        return "connecting or reading failed";
    case EVREQ_HTTP_DATA_TOO_LONG:
        return "the answer is larger than 64 KiB";
    default:
        return "the request failed";
    }
}

static void
http_error_cb(enum evhttp_request_error e, void *arg)
{
    struct ocsp_query *q = arg;

    q->http_failed = true;
    q->http_error = e;
}

/* The printable start of a responder's bytes, for a sentence. */
static void
printable(const char *in, size_t n, char *out, size_t len)
{
    size_t o = 0;

    for (size_t i = 0; i < n && o + 1 < len; i++)
        out[o++] = (in[i] >= 0x20 && in[i] < 0x7f && in[i] != '"') ? in[i] : '?';
    out[o] = '\0';
}

static void
response_cb(struct evhttp_request *req, void *arg)
{
    struct ocsp_query *q = arg;
    struct ocsp_result r;
    char why[700], code[32], line[64];
    int status;

    if (q->done)
        return;
    if (req == NULL || (status = evhttp_request_get_response_code(req)) == 0) {
        const char *c = "connect";
        if (q->http_failed && q->http_error == EVREQ_HTTP_DATA_TOO_LONG)
            c = "too_large";
        else if (q->http_failed && q->http_error == EVREQ_HTTP_INVALID_HEADER)
            c = "not_http";
        snprintf(why, sizeof(why), "asking the OCSP responder %s failed: %s", q->url,
                 q->http_failed ? http_error_words(q->http_error) : "the request failed");
        result_set(&r, OCSP_R_ERROR, q->url, c, why);
        query_finish(q, &r);
        return;
    }
    if (status != 200) {
        const char *rl = evhttp_request_get_response_code_line(req);
        printable(rl != NULL ? rl : "", rl != NULL ? strlen(rl) : 0, line, sizeof(line));
        snprintf(why, sizeof(why), "the OCSP responder %s answered HTTP %d \"%s\", not 200", q->url,
                 status, line);
        result_set(&r, OCSP_R_ERROR, q->url, "http_status", why);
        query_finish(q, &r);
        return;
    }
    {
        struct evbuffer *in = evhttp_request_get_input_buffer(req);
        size_t n = evbuffer_get_length(in);
        const unsigned char *der = n > 0 && n <= OCSP_MAX_RESPONSE ? evbuffer_pullup(in, -1) : NULL;
        struct ocsp_answer a;
        int64_t now = (int64_t)time(NULL);
        char inner[600];

        if (der == NULL) {
            snprintf(why, sizeof(why), "the OCSP responder %s sent %s", q->url,
                     n == 0 ? "an empty answer" : "an answer larger than 64 KiB");
            result_set(&r, OCSP_R_ERROR, q->url, "not_ocsp", why);
            query_finish(q, &r);
            return;
        }
        if (ocsp_evaluate(der, n, q->leaf, q->issuer, now, &a, code, sizeof(code), inner,
                          sizeof(inner)) != 0) {
            snprintf(why, sizeof(why), "the answer of the OCSP responder %s is refused: %.340s",
                     q->url, inner);
            result_set(&r, OCSP_R_ERROR, q->url, code, why);
            query_finish(q, &r);
            return;
        }
        a.checked = now;
        ocsp_cache_put(q->cache, q->key, &a, now);
        result_set(&r,
                   a.status == V_OCSP_CERTSTATUS_GOOD      ? OCSP_R_GOOD
                   : a.status == V_OCSP_CERTSTATUS_REVOKED ? OCSP_R_REVOKED
                                                           : OCSP_R_UNKNOWN,
                   q->url, "", "");
        if (r.kind == OCSP_R_UNKNOWN)
            snprintf(r.why, sizeof(r.why),
                     "the OCSP responder %s does not know the certificate: status \"unknown\"",
                     q->url);
        r.answer = a;
        query_finish(q, &r);
    }
}

/* Send the GET of q; -1 with r filled when it cannot be sent. */
static int
query_send(struct ocsp_query *q, struct ocsp_result *r)
{
    struct crl_url u;
    struct duet_err err;
    struct evhttp_request *req = NULL;
    struct timeval tv = {q->timeout_ms / 1000, (q->timeout_ms % 1000) * 1000};
    struct evdns_base *dns = NULL;
    char path[4096], hostport[300], why[700];
    struct in6_addr a6;
    struct in_addr a4;

    err_clear(&err);
    if (crlplan_url_parse(q->url, &u, &err) != 0) {
        snprintf(why, sizeof(why), "the OCSP responder URL is not usable: %.600s", err.msg);
        result_set(r, OCSP_R_ERROR, q->url, "url", why);
        return -1;
    }
    if (!staple_get_path(q->leaf, q->issuer, u.path, path, sizeof(path))) {
        snprintf(why, sizeof(why), "the OCSP request for the responder %s cannot be made", q->url);
        result_set(r, OCSP_R_ERROR, q->url, "request", why);
        return -1;
    }
    if (inet_pton(AF_INET, u.host, &a4) != 1 && inet_pton(AF_INET6, u.host, &a6) != 1) {
        if (q->ow->dns == NULL)
            q->ow->dns = evdns_base_new(q->ow->base, EVDNS_BASE_INITIALIZE_NAMESERVERS |
                                                         EVDNS_BASE_DISABLE_WHEN_INACTIVE);
        dns = q->ow->dns;
        if (dns == NULL) {
            snprintf(why, sizeof(why), "the OCSP responder %s: no DNS resolver is available",
                     q->url);
            result_set(r, OCSP_R_ERROR, q->url, "dns", why);
            return -1;
        }
    }
    q->evcon = evhttp_connection_base_new(q->ow->base, dns, u.host, (unsigned short)u.port);
    q->deadline = evtimer_new(q->ow->base, deadline_cb, q);
    if (q->evcon == NULL || q->deadline == NULL || evtimer_add(q->deadline, &tv) != 0 ||
        (req = evhttp_request_new(response_cb, q)) == NULL) {
        result_set(r, OCSP_R_ERROR, q->url, "internal", "out of memory");
        return -1;
    }
    tv.tv_sec += 1; /* evhttp's own timeouts only back the deadline up */
    evhttp_connection_set_timeout_tv(q->evcon, &tv);
    evhttp_connection_set_retries(q->evcon, 0);
    evhttp_connection_set_max_body_size(q->evcon, OCSP_MAX_RESPONSE);
    evhttp_connection_set_max_headers_size(q->evcon, 16384);
    evhttp_request_set_error_cb(req, http_error_cb);
    if (u.port == 80)
        snprintf(hostport, sizeof(hostport), "%s", u.host);
    else if (strchr(u.host, ':') != NULL)
        snprintf(hostport, sizeof(hostport), "[%s]:%d", u.host, u.port);
    else
        snprintf(hostport, sizeof(hostport), "%s:%d", u.host, u.port);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Host", hostport);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Connection", "close");
    evhttp_add_header(evhttp_request_get_output_headers(req), "Accept",
                      "application/ocsp-response");
    /* evhttp_make_request frees the request when it fails. */
    if (evhttp_make_request(q->evcon, req, EVHTTP_REQ_GET, path) != 0) {
        snprintf(why, sizeof(why), "the request to the OCSP responder %s cannot be sent", q->url);
        result_set(r, OCSP_R_ERROR, q->url, "connect", why);
        return -1;
    }
    return 0;
}

/* The sentence of a revoked answer; see ocspcheck.h. */
void
ocsp_revoked_why(X509 *leaf, const struct ocsp_result *res, char *why, size_t len)
{
    char label[600], date[32];

    x509u_label(leaf, label, sizeof(label));
    x509u_fmt_date(res->answer.revoked_at, date, sizeof(date));
    snprintf(why, len, "certificate %s was revoked on %s (reason: %s) by the OCSP responder %s",
             label, date,
             res->answer.reason >= 0 ? x509u_crl_reason(res->answer.reason) : "unspecified",
             res->url[0] != '\0' ? res->url : "(none)");
}

/* A cached answer; see ocspcheck.h. */
bool
ocsp_check_cached(const struct ocsp_ask *ask, struct ocsp_result *res)
{
    uint8_t key[OCSP_KEY_LEN];
    struct ocsp_answer a;
    char *url = NULL;

    if (!ocsp_cache_key(ask->leaf, key) ||
        !ocsp_cache_get(ask->cache, key, (int64_t)time(NULL), &a))
        return false;
    memset(res, 0, sizeof(*res));
    res->kind = a.status == V_OCSP_CERTSTATUS_REVOKED ? OCSP_R_REVOKED : OCSP_R_GOOD;
    res->answer = a;
    res->cached = true;
    if (res->kind == OCSP_R_REVOKED && ocsp_responder_of(ask->leaf, ask->url, &url))
        snprintf(res->url, sizeof(res->url), "%s", url);
    free(url);
    ocsp_count_cache_hit(ask->listener);
    return true;
}

/* Ask about a leaf; see ocspcheck.h. */
int
ocsp_check_begin(struct ocsp_worker **owp, const struct ocsp_ask *ask, ocsp_done_fn done, void *arg,
                 struct ocsp_waiter **wt, struct ocsp_result *res)
{
    uint8_t key[OCSP_KEY_LEN];
    struct ocsp_query *q = NULL;
    struct ocsp_waiter *w = NULL;
    char *url = NULL;

    *wt = NULL;
    if (!ocsp_cache_key(ask->leaf, key)) {
        result_set(res, OCSP_R_ERROR, "", "internal", "the OCSP cache key cannot be made");
        return 1;
    }
    if (!ocsp_responder_of(ask->leaf, ask->url, &url)) {
        result_set(res, OCSP_R_ERROR, "", "no_responder",
                   "the certificate names no http:// OCSP responder in its authorityInfoAccess "
                   "and no --ocsp-url is given");
        count_query(ask->listener, OCSP_R_ERROR, 0);
        return 1;
    }
    if (*owp == NULL) {
        if ((*owp = calloc(1, sizeof(**owp))) == NULL) {
            result_set(res, OCSP_R_ERROR, url, "internal", "out of memory");
            free(url);
            return 1;
        }
        (*owp)->base = ask->base;
    }
    if ((w = calloc(1, sizeof(*w))) == NULL) {
        result_set(res, OCSP_R_ERROR, url, "internal", "out of memory");
        free(url);
        return 1;
    }
    w->done = done;
    w->arg = arg;
    /* A query for the same certificate and responder in flight on this worker: share it. */
    for (q = (*owp)->queries; q != NULL; q = q->next) {
        if (memcmp(q->key, key, OCSP_KEY_LEN) == 0 && strcmp(q->url, url) == 0)
            break;
    }
    if (q == NULL) {
        if ((q = calloc(1, sizeof(*q))) == NULL) {
            result_set(res, OCSP_R_ERROR, url, "internal", "out of memory");
            free(url);
            free(w);
            return 1;
        }
        q->ow = *owp;
        memcpy(q->key, key, OCSP_KEY_LEN);
        q->cache = ask->cache;
        X509_up_ref(ask->leaf);
        X509_up_ref(ask->issuer);
        q->leaf = ask->leaf;
        q->issuer = ask->issuer;
        snprintf(q->listener, sizeof(q->listener), "%s", ask->listener);
        snprintf(q->url, sizeof(q->url), "%s", url);
        q->timeout_ms = ask->timeout_ms;
        q->t0 = mono();
        if (query_send(q, res) != 0) {
            count_query(q->listener, res->kind, mono() - q->t0);
            health_note(q->listener, res);
            query_free_cb(-1, 0, q); /* nothing of libevent's runs for it yet */
            free(url);
            free(w);
            return 1;
        }
        q->next = (*owp)->queries;
        if (q->next != NULL)
            q->next->prev = q;
        (*owp)->queries = q;
    }
    w->q = q;
    w->next = q->waiters;
    if (w->next != NULL)
        w->next->prev = w;
    q->waiters = w;
    *wt = w;
    free(url);
    return 0;
}

/* A waiter goes away; see ocspcheck.h. */
void
ocsp_waiter_cancel(struct ocsp_waiter *w)
{
    struct ocsp_query *q;

    if (w == NULL || (q = w->q) == NULL)
        return;
    if (w->prev != NULL)
        w->prev->next = w->next;
    else
        q->waiters = w->next;
    if (w->next != NULL)
        w->next->prev = w->prev;
    free(w);
}
