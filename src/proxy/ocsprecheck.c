/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ocsprecheck.c - open connections re-checked under --ocsp (--ocsp-recheck):
 * a client revoked after its handshake loses its open connections once its
 * responder says so, not only when it connects again.
 *
 * Each worker has a timer that fires every --ocsp-recheck.  It walks the
 * worker's open client connections on listeners with --ocsp prefer or
 * require and takes each distinct client certificate once (by its cache key):
 *   - a cached "revoked" answer retires its connections at once (another
 *     worker's handshake learnt it);
 *   - an answer younger than --ocsp-recheck (by `checked`, the time it came
 *     in) is left alone;
 *   - otherwise (older, or gone from the cache at its nextUpdate) the worker
 *     asks the responder again with ocspcheck.c's query, on its own loop,
 *     never blocking it: one query per certificate, at most RECHECK_MAX_FLIGHT
 *     in flight per worker (the rest wait for the next round).
 * A "revoked" answer retires the certificate's connections on every worker
 * through conn_ocsp_close_revoked() (the `connection_closed` line with the
 * responder's sentence).  A responder that fails or says "unknown" leaves
 * them open, under prefer and require alike, with an `ocsp_recheck_failed`
 * line: require refuses new handshakes without a good answer, but closing
 * every open connection whenever the responder is down would turn its
 * outage into one of the service.
 *
 * So a revoked client's open connection ends within about twice
 * --ocsp-recheck of the revocation (an answer just under the age at one round
 * is asked about at the next), plus the query's time.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/ocsp.h>

#include "lib/x509util.h"
#include "proxy/proxy_int.h"
#include "util/log.h"

/* Queries one worker's re-check keeps in flight at most; more wait for the next round. */
#define RECHECK_MAX_FLIGHT 256

/* One question in flight: what it is about, for the answer. */
struct recheck_q {
    struct ocsp_recheck *rc;
    struct recheck_q *prev, *next;
    struct ocsp_waiter *wt;
    uint8_t key[OCSP_KEY_LEN];
    X509 *leaf; /* a reference */
    char listener[128];
};

struct ocsp_recheck {
    struct worker *w;
    struct event *timer;
    struct recheck_q *flight;
    int nflight;
};

/* Whether q's certificate is asked about already (this round or an earlier one). */
static bool
in_flight(const struct ocsp_recheck *rc, const uint8_t key[OCSP_KEY_LEN])
{
    for (const struct recheck_q *q = rc->flight; q != NULL; q = q->next) {
        if (memcmp(q->key, key, OCSP_KEY_LEN) == 0)
            return true;
    }
    return false;
}

static void
q_unlink_free(struct recheck_q *q)
{
    struct ocsp_recheck *rc = q->rc;

    if (q->prev != NULL)
        q->prev->next = q->next;
    else
        rc->flight = q->next;
    if (q->next != NULL)
        q->next->prev = q->prev;
    rc->nflight--;
    X509_free(q->leaf);
    free(q);
}

/*
 * What the responder said about a certificate with open connections:
 * revoked closes them; good changes nothing (ocspcheck.c cached it); anything
 * else is logged and leaves them open.
 */
static void
recheck_outcome(struct ocsp_recheck *rc, const struct recheck_q *q, const struct ocsp_result *r)
{
    char why[1600], *serial = NULL;
    struct log_line line;

    if (r->kind == OCSP_R_GOOD)
        return;
    if (r->kind == OCSP_R_REVOKED) {
        ocsp_revoked_why(q->leaf, r, why, sizeof(why));
        conn_ocsp_close_revoked(rc->w->px, q->key, why);
        return;
    }
    serial = x509u_serial(X509_get0_serialNumber(q->leaf));
    log_line_begin(&line, "warn", "ocsp_recheck_failed");
    log_line_str(&line, "listener", q->listener);
    log_line_str(&line, "responder", r->url[0] != '\0' ? r->url : "(none)");
    log_line_str(&line, "serial", serial);
    log_line_str(&line, "result", ocsp_result_name(r->kind));
    log_line_str(&line, "code", r->kind == OCSP_R_UNKNOWN ? "unknown" : r->code);
    log_line_str(&line, "reason", r->why);
    log_line_str(&line, "outcome", "kept open");
    log_line_end(&line);
    OPENSSL_free(serial);
}

/* A re-check's answer is in (on the worker's loop). */
static void
recheck_done(void *arg, const struct ocsp_result *r)
{
    struct recheck_q *q = arg;

    q->wt = NULL; /* ocspcheck.c frees the waiter */
    recheck_outcome(q->rc, q, r);
    q_unlink_free(q);
}

/*
 * Ask again about c's client (its certificate leaf, cache key key), unless
 * its answer is young enough; a cached revoked answer closes its connections.
 */
static void
recheck_one(struct ocsp_recheck *rc, struct conn *c, X509 *leaf, const uint8_t key[OCSP_KEY_LEN],
            int64_t now, int age_ms)
{
    struct ocsp_cache *cache = rc->w->px->ocsp_cache;
    struct ocsp_answer a;
    struct ocsp_ask ask;
    struct ocsp_result res;
    struct recheck_q *q = NULL;
    X509 *issuer = NULL;
    char why[1600], *url = NULL;

    if (ocsp_cache_get(cache, key, now, &a)) {
        if (a.status == V_OCSP_CERTSTATUS_REVOKED) {
            memset(&res, 0, sizeof(res));
            res.kind = OCSP_R_REVOKED;
            res.answer = a;
            res.cached = true;
            if (ocsp_responder_of(leaf, c->gl->cfg->ocsp_url, &url))
                snprintf(res.url, sizeof(res.url), "%s", url);
            free(url);
            ocsp_revoked_why(leaf, &res, why, sizeof(why));
            conn_ocsp_close_revoked(rc->w->px, key, why);
            return;
        }
        if ((now - a.checked) * 1000 < (int64_t)age_ms)
            return;
    }
    /* The chain the client sent may be gone: --cacert, then issuers of verified chains. */
    issuer = ocsp_issuer_get1(cache, leaf, NULL, c->gl->ocsp_anchors, &res);
    if ((q = calloc(1, sizeof(*q))) == NULL) {
        X509_free(issuer);
        return;
    }
    q->rc = rc;
    memcpy(q->key, key, OCSP_KEY_LEN);
    X509_up_ref(leaf);
    q->leaf = leaf;
    snprintf(q->listener, sizeof(q->listener), "%s", c->gl->cfg->name);
    q->next = rc->flight;
    if (q->next != NULL)
        q->next->prev = q;
    rc->flight = q;
    rc->nflight++;
    if (issuer == NULL) {
        recheck_done(q, &res);
        return;
    }
    conn_ocsp_ask(c, leaf, &ask); /* c is on this worker: its loop is rc->w's */
    ask.issuer = issuer;
    if (ocsp_check_begin(&rc->w->ocsp, &ask, recheck_done, q, &q->wt, &res) != 0)
        recheck_done(q, &res); /* decided at once: no responder, or it could not be sent */
    X509_free(issuer);
}

/* Arm the timer for the next round, at the current configuration's --ocsp-recheck. */
static void
recheck_arm(struct ocsp_recheck *rc)
{
    struct gen *g = gen_current(rc->w->px);
    int ms = g->cfg.ocsp_recheck_ms > 0 ? g->cfg.ocsp_recheck_ms : 300000;
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

    gen_unref(g);
    evtimer_add(rc->timer, &tv);
}

/* One round over the worker's open connections. */
static void
recheck_cb(evutil_socket_t fd, short what, void *arg)
{
    struct ocsp_recheck *rc = arg;
    struct gen *g = gen_current(rc->w->px);
    int age_ms = g->cfg.ocsp_recheck_ms;
    int64_t now = (int64_t)time(NULL);

    (void)fd;
    (void)what;
    for (struct conn *c = rc->w->conns, *next; c != NULL; c = next) {
        uint8_t key[OCSP_KEY_LEN];
        X509 *leaf;

        next = c->wnext; /* conn_retire is deferred to each worker's loop: nothing is freed */
        if (rc->nflight >= RECHECK_MAX_FLIGHT)
            break;
        if (c->state != CONN_OPEN || c->retiring || !c->mode->client_tls || c->ssl == NULL ||
            c->gl->cfg->ocsp == OCSP_OFF ||
            (leaf = SSL_get0_peer_certificate(c->ssl)) == NULL || !ocsp_cache_key(leaf, key) ||
            in_flight(rc, key))
            continue;
        recheck_one(rc, c, leaf, key, now, age_ms);
    }
    gen_unref(g);
    recheck_arm(rc);
}

/* Start a worker's re-check timer; see proxy_int.h. */
void
ocsp_recheck_start(struct worker *w)
{
    struct ocsp_recheck *rc;

    if (w->px->ocsp_cache == NULL || w->recheck != NULL)
        return;
    if ((rc = calloc(1, sizeof(*rc))) == NULL ||
        (rc->timer = evtimer_new(w->base, recheck_cb, rc)) == NULL) {
        free(rc);
        log_msg("warn", "ocsp_recheck", "worker %d: out of memory: open connections are not "
                                        "asked about again (--ocsp-recheck)", w->idx);
        return;
    }
    rc->w = w;
    w->recheck = rc;
    recheck_arm(rc);
}
