/* SPDX-License-Identifier: Apache-2.0 */
/*
 * crlfetch.c - CRLs by URL (--crl-url, --crl-from-cdp): fetch each URL over
 * plain HTTP at start and again before the CRL's nextUpdate, check what came
 * back exactly as a --crl file is checked, and rename it into the cache
 * directory only when it is good and newer than the CRL it replaces.  The
 * file watcher of reload.c then reloads (see crlfetch.h).
 *
 * The HTTP client is a small one on a libevent bufferevent, on an event loop
 * and thread of their own (never a worker's): asynchronous DNS (evdns),
 * connect and read timeouts, an HTTP/1.0 GET (so the answer is never chunked,
 * RFC 9112 section 7), a body streamed to a temporary file next to the cache
 * file with a size limit and its SHA-256 taken on the way, so a
 * million-entry CRL costs a read buffer, not copies of itself.  Each failure
 * says which step failed: DNS, connect, timeout, HTTP status, size, or what
 * the CRL check refused.
 *
 * http:// only: a CRL carries its own signature, which is what duet trusts,
 * not the transport (RFC 5280 section 5; CDPs are http:// in practice).
 *
 * A source may also be the OCSP response a listener staples (--ocsp-staple):
 * the same client sends an RFC 6960 GET, staple_end() checks the answer with
 * staple_check() and renames it into place, or removes the cached one when
 * the responder says revoked; the schedules are the CRLs'.
 */
#include "proxy/crlfetch.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/ocsp.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "lib/fileio.h"
#include "lib/load.h"
#include "lib/revset.h"
#include "lib/x509util.h"
#include "proxy/metrics.h"
#include "proxy/staple.h"
#include "util/log.h"

#define HEAD_MAX 16384  /* the reply's status line and headers */
#define CLOCK_SKEW 300  /* seconds a thisUpdate may be ahead of our clock */
#define TOTAL_FACTOR 30 /* a whole fetch may take this many read timeouts */

/* --- the fetcher --------------------------------------------------------------- */

enum src_state { ST_IDLE = 0, ST_CONNECT, ST_HEAD, ST_BODY };

/* What decides whether a CRL replaces another: its first CRL's issuer, number and times. */
struct crl_facts {
    X509_NAME *issuer;
    ASN1_INTEGER *number; /* NULL: none */
    int64_t this_update;
    int64_t next_update; /* the earliest of the file's CRLs */
};

static void
facts_clear(struct crl_facts *f)
{
    X509_NAME_free(f->issuer);
    ASN1_INTEGER_free(f->number);
    memset(f, 0, sizeof(*f));
}

struct crl_src {
    struct crlfetch *f;
    /* An OCSP response to staple (--ocsp-staple) rather than a CRL: for the leaf of cert. */
    bool ocsp;
    char *cert, *listener;
    char req_path[2048];
    X509 *leaf, *issuer; /* read again from cert before each fetch */
    uint64_t max; /* bytes */
    char *url;
    struct crl_url u;
    char *path, *tmp;
    STACK_OF(X509) * signers; /* CAs of the listeners that use it: the CRL's possible signers */
    /* The CRL in the cache file, once checked. */
    bool have;
    struct crl_facts cur;
    unsigned char sha[32];
    int failures;
    int unchanged; /* fetches in a row that brought the cached bytes again */
    struct event *timer;
    /* The fetch in flight. */
    enum src_state st;
    struct bufferevent *bev;
    int fd;
    EVP_MD_CTX *md;
    int64_t clen; /* Content-Length, or -1 until the connection closes */
    uint64_t got;
    double t0;
    bool ok;
    bool first_done; /* the start-up fetch ended */
    char code[32];
    char why[1200];
    struct crlfetch_status pub; /* what /readyz reads, under the fetcher's lock */
};

struct crlfetch {
    struct event_base *base;
    struct evdns_base *dns;
    struct crl_src *srcs;
    size_t n;
    int64_t refresh_ms, timeout_ms;
    uint64_t max_bytes;
    size_t pending; /* fetches in flight during the start */
    bool starting;
    pthread_t thr;
    pthread_mutex_t lock; /* the sources' pub */
};

static double
mono(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double
rand01(void)
{
    uint32_t r = 0;

    if (RAND_bytes((unsigned char *)&r, sizeof(r)) != 1)
        r = (uint32_t)random();
    return (double)r / 4294967296.0;
}

static void
src_labels(const struct crl_src *s, const char *reason, char *buf, size_t len)
{
    char u[1200];

    metrics_label(u, sizeof(u), s->url);
    if (reason != NULL)
        snprintf(buf, len, "url=\"%s\",reason=\"%s\"", u, reason);
    else
        snprintf(buf, len, "url=\"%s\"", u);
}

/*
 * A fetch of s ended (ok: it worked): publish what /readyz says of it, under
 * the lock.  The fetcher's thread is the only writer of s itself.
 */
static void
publish(struct crl_src *s, bool ok)
{
    struct crlfetch_status *p = &s->pub;
    int64_t now = (int64_t)time(NULL);

    pthread_mutex_lock(&s->f->lock);
    p->ocsp = s->ocsp;
    snprintf(p->url, sizeof(p->url), "%s", s->url);
    snprintf(p->file, sizeof(p->file), "%s", s->path);
    snprintf(p->listener, sizeof(p->listener), "%s", s->listener != NULL ? s->listener : "");
    p->have = s->have;
    p->this_update = s->have ? s->cur.this_update : 0;
    p->next_update = s->have ? s->cur.next_update : 0;
    p->failures = s->failures;
    if (ok) {
        p->last_ok = now;
    } else {
        p->last_fail = now;
        snprintf(p->code, sizeof(p->code), "%s", s->code);
        snprintf(p->error, sizeof(p->error), "%s", s->why);
    }
    pthread_mutex_unlock(&s->f->lock);
}

/* Copy the status of the fetcher's URLs; see crlfetch.h. */
size_t
crlfetch_status(struct crlfetch *f, struct crlfetch_status *out, size_t max)
{
    if (f == NULL)
        return 0;
    pthread_mutex_lock(&f->lock);
    for (size_t i = 0; i < f->n && i < max; i++)
        out[i] = f->srcs[i].pub;
    pthread_mutex_unlock(&f->lock);
    return f->n;
}

static void fetch_begin(struct crl_src *s);
static int64_t unchanged_delay(struct crl_src *s, bool unchanged, int64_t next_ms);

static void
timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    fetch_begin(arg);
}

static void
schedule(struct crl_src *s, int64_t ms)
{
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000)};

    evtimer_add(s->timer, &tv);
}

/*
 * Check the CRL in `path` for source s exactly as a --crl file is checked
 * (revset_add_file), plus what only a fetched CRL needs: each CRL of the
 * file (one, or a bundle such as `duet crl generate` writes) signed by a CA
 * of the listener, its thisUpdate not in the future, its nextUpdate not
 * passed (unless allow_expired).  Fills the first CRL's number and
 * thisUpdate, and the earliest nextUpdate.  On refusal,
 * code (a metric label) and why (a sentence) say why.
 */
static int
crl_check(struct crl_src *s, const char *path, bool allow_expired, struct crl_facts *out,
          char *code, size_t clen, char *why, size_t wlen)
{
    struct revset *rs = revset_new();
    struct duet_err e;
    const struct revcrl *c;
    char *iss = NULL;
    int64_t now = (int64_t)time(NULL);
    char date[40];
    int rc = -1;

    memset(out, 0, sizeof(*out));
    if (rs == NULL) {
        snprintf(code, clen, "internal");
        snprintf(why, wlen, "out of memory");
        goto out;
    }
    err_clear(&e);
    if (revset_add_file(rs, path, &e) != 0) {
        snprintf(code, clen, "not_a_crl");
        snprintf(why, wlen, "not a valid CRL: %.1000s", e.msg);
        goto out;
    }
    for (size_t k = 0; k < revset_count(rs); k++) {
        bool named = false, verified = false;
        int64_t t, n;
        c = revset_get0(rs, k);
        OPENSSL_free(iss);
        iss = x509u_name(revcrl_get0_issuer(c));
        for (int i = 0; i < sk_X509_num(s->signers) && !verified; i++) {
            X509 *ca = sk_X509_value(s->signers, i);
            if (X509_NAME_cmp(X509_get_subject_name(ca), revcrl_get0_issuer(c)) != 0)
                continue;
            named = true;
            verified = revcrl_verify(c, ca);
        }
        if (!named) {
            snprintf(code, clen, "unknown_issuer");
            snprintf(why, wlen,
                     "the CRL is issued by \"%s\", which is none of the CAs of the listener "
                     "(--cacert, or the CA certificates of its --cert chain)",
                     iss != NULL ? iss : "?");
            goto out;
        }
        if (!verified) {
            snprintf(code, clen, "bad_signature");
            snprintf(why, wlen, "bad signature: the CRL does not verify with the key of \"%s\"",
                     iss != NULL ? iss : "?");
            goto out;
        }
        t = revcrl_this_update(c);
        n = revcrl_next_update(c);
        if (t > now + CLOCK_SKEW) {
            x509u_fmt_rfc3339(t, date, sizeof(date));
            snprintf(code, clen, "not_yet_valid");
            snprintf(why, wlen, "the CRL of \"%s\" has a thisUpdate %s in the future",
                     iss != NULL ? iss : "?", date);
            goto out;
        }
        if (!allow_expired && n <= now) {
            x509u_fmt_rfc3339(n, date, sizeof(date));
            snprintf(code, clen, "expired");
            snprintf(why, wlen, "the CRL of \"%s\" is expired: its nextUpdate %s has passed",
                     iss != NULL ? iss : "?", date);
            goto out;
        }
        if (k == 0) {
            /* The first CRL (a bundle's issuing CA's) decides whether it is newer. */
            out->this_update = t;
            out->next_update = n;
            if ((out->issuer = X509_NAME_dup(revcrl_get0_issuer(c))) == NULL ||
                (revcrl_get0_number(c) != NULL &&
                 (out->number = ASN1_INTEGER_dup(revcrl_get0_number(c))) == NULL)) {
                snprintf(code, clen, "internal");
                snprintf(why, wlen, "out of memory");
                goto out;
            }
        } else if (n < out->next_update) {
            out->next_update = n; /* fetched again before the earliest nextUpdate */
        }
    }
    rc = 0;
out:
    if (rc != 0)
        facts_clear(out);
    OPENSSL_free(iss);
    revset_free(rs);
    return rc;
}

/* fsync the directory of path, so that a rename into it survives a crash. */
static bool
sync_dir(const char *path)
{
    char dir[PATH_MAX];
    const char *slash = strrchr(path, '/');
    int fd;
    bool ok;

    if (slash == NULL)
        snprintf(dir, sizeof(dir), ".");
    else
        snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path) + (slash == path), path);
    if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
        return false;
    ok = fsync(fd) == 0;
    close(fd);
    return ok;
}

/* Close the connection and the temporary file of the fetch in flight. */
static void
fetch_reset(struct crl_src *s)
{
    if (s->bev != NULL)
        bufferevent_free(s->bev);
    s->bev = NULL;
    if (s->fd >= 0)
        close(s->fd);
    s->fd = -1;
    EVP_MD_CTX_free(s->md);
    s->md = NULL;
    s->st = ST_IDLE;
}

/* The start-up fetch of s ended: the start goes on when it was the last one. */
static void
start_done(struct crl_src *s)
{
    if (s->f->starting && !s->first_done) {
        s->first_done = true;
        s->f->pending--;
        if (s->f->pending == 0)
            event_base_loopbreak(s->f->base);
    }
}

static void staple_end(struct crl_src *s);

/* The fetch ended (s->ok, or code/why say why not): check, replace, log, schedule. */
static void
fetch_end(struct crl_src *s)
{
    char labels[1400], date[40], cur[40];
    int64_t next_ms;
    bool unchanged = false;

    if (s->ocsp) {
        staple_end(s);
        return;
    }
    if (s->ok && fsync(s->fd) != 0) {
        s->ok = false;
        snprintf(s->code, sizeof(s->code), "cache");
        snprintf(s->why, sizeof(s->why), "cannot write %s: %s", s->tmp, strerror(errno));
    }
    if (s->ok) {
        unsigned char sha[32];
        struct crl_facts got;
        char *iss = NULL, *was = NULL;
        memset(&got, 0, sizeof(got));
        EVP_DigestFinal_ex(s->md, sha, NULL);
        fetch_reset(s);
        if (s->have && memcmp(sha, s->sha, sizeof(sha)) == 0) {
            unchanged = true;
        } else if (crl_check(s, s->tmp, false, &got, s->code, sizeof(s->code), s->why,
                             sizeof(s->why)) != 0) {
            s->ok = false;
        } else if (s->have && X509_NAME_cmp(got.issuer, s->cur.issuer) != 0) {
            /* Another trusted CA's CRL at this URL would leave this one's clients unchecked. */
            iss = x509u_name(got.issuer);
            was = x509u_name(s->cur.issuer);
            s->ok = false;
            snprintf(s->code, sizeof(s->code), "issuer_changed");
            snprintf(s->why, sizeof(s->why),
                     "the CRL is issued by \"%s\", not by \"%s\" like the current one",
                     iss != NULL ? iss : "?", was != NULL ? was : "?");
        } else if (s->have && got.number != NULL && s->cur.number != NULL &&
                   ASN1_INTEGER_cmp(got.number, s->cur.number) <= 0) {
            iss = x509u_serial(got.number);
            was = x509u_serial(s->cur.number);
            s->ok = false;
            snprintf(s->code, sizeof(s->code), "not_newer");
            snprintf(s->why, sizeof(s->why), "its CRLNumber %s is not above the current CRL's %s",
                     iss != NULL ? iss : "?", was != NULL ? was : "?");
        } else if (s->have && (got.number == NULL || s->cur.number == NULL) &&
                   got.this_update <= s->cur.this_update) {
            x509u_fmt_rfc3339(got.this_update, date, sizeof(date));
            x509u_fmt_rfc3339(s->cur.this_update, cur, sizeof(cur));
            s->ok = false;
            snprintf(s->code, sizeof(s->code), "not_newer");
            snprintf(s->why, sizeof(s->why), "its thisUpdate %s is not after the current CRL's %s",
                     date, cur);
        } else if (rename(s->tmp, s->path) != 0 || !sync_dir(s->path)) {
            s->ok = false;
            snprintf(s->code, sizeof(s->code), "cache");
            snprintf(s->why, sizeof(s->why), "cannot rename %s to %s and sync its directory: %s",
                     s->tmp, s->path, strerror(errno));
        } else {
            char *nums = got.number != NULL ? x509u_serial(got.number) : NULL;
            facts_clear(&s->cur);
            s->cur = got;
            memset(&got, 0, sizeof(got));
            memcpy(s->sha, sha, sizeof(sha));
            s->have = true;
            x509u_fmt_rfc3339(s->cur.this_update, date, sizeof(date));
            x509u_fmt_rfc3339(s->cur.next_update, cur, sizeof(cur));
            log_event("info", "crl_fetched",
                      json_pack("{s:s,s:s,s:I,s:s,s:s,s:s?,s:f}", "url", s->url, "file", s->path,
                                "bytes", (json_int_t)s->got, "this_update", date, "next_update",
                                cur, "crl_number", nums, "duration_ms", (mono() - s->t0) * 1000.0));
            OPENSSL_free(nums);
        }
        OPENSSL_free(iss);
        OPENSSL_free(was);
        facts_clear(&got);
        if (!s->ok) {
            char kept[200];
            if (s->have) {
                x509u_fmt_rfc3339(s->cur.this_update, cur, sizeof(cur));
                snprintf(kept, sizeof(kept), "the current CRL (thisUpdate %s)", cur);
            } else {
                snprintf(kept, sizeof(kept), "none");
            }
            log_event("error", "crl_rejected",
                      json_pack("{s:s,s:s,s:s,s:s}", "url", s->url, "reason", s->why, "code",
                                s->code, "kept", kept));
        }
    } else {
        fetch_reset(s);
        log_event(s->have ? "warn" : "error", "crl_fetch_failed",
                  json_pack("{s:s,s:s,s:s,s:s}", "url", s->url, "reason", s->why, "code", s->code,
                            "kept", s->have ? "the cached CRL" : "none"));
    }
    if (s->tmp != NULL)
        (void)unlink(s->tmp); /* nothing once renamed; a refused or partial body otherwise */
    if (s->ok) {
        src_labels(s, NULL, labels, sizeof(labels));
        metrics_gauge_set("duet_crl_fetch_last_success_timestamp_seconds", labels,
                          (double)time(NULL));
        s->failures = 0;
        next_ms = crlplan_refresh_delay_ms((int64_t)time(NULL) * 1000, s->cur.this_update,
                                           s->cur.next_update, s->f->refresh_ms, rand01());
        next_ms = unchanged_delay(s, unchanged, next_ms);
        if (unchanged)
            log_msg("debug", "crl_unchanged", "%s: the CRL is the one in %s", s->url, s->path);
    } else {
        src_labels(s, s->code, labels, sizeof(labels));
        metrics_count("duet_crl_fetch_failures_total", labels, 1);
        s->failures++;
        next_ms = crlplan_retry_delay_ms(s->failures, s->f->refresh_ms, rand01());
    }
    publish(s, s->ok);
    start_done(s);
    schedule(s, next_ms);
}

/*
 * The delay after a fetch that brought the bytes already cached: a document
 * past 2/3 of its validity is due at once (refresh delay 1 s), so a server
 * that keeps serving it would be asked every second; back off as after a
 * failure instead (1 s doubling to 5 min, at most --crl-refresh), and start
 * over once a new document arrives.
 */
static int64_t
unchanged_delay(struct crl_src *s, bool unchanged, int64_t next_ms)
{
    int64_t backoff;

    if (!unchanged) {
        s->unchanged = 0;
        return next_ms;
    }
    s->unchanged++;
    backoff = crlplan_retry_delay_ms(s->unchanged, s->f->refresh_ms, rand01());
    return backoff > next_ms ? backoff : next_ms;
}

static void fetch_fail(struct crl_src *s, const char *code, const char *fmt, ...) PRINTF_LIKE(3, 4);

static void
fetch_fail(struct crl_src *s, const char *code, const char *fmt, ...)
{
    va_list ap;

    s->ok = false;
    snprintf(s->code, sizeof(s->code), "%s", code);
    va_start(ap, fmt);
    vsnprintf(s->why, sizeof(s->why), fmt, ap);
    va_end(ap);
    fetch_end(s);
}

/* The reply's head: status 200, no Transfer-Encoding, a Content-Length within the limit. */
static int
parse_head(struct crl_src *s, const char *head)
{
    const char *line = head, *eol;
    int status = 0;

    if (sscanf(head, "HTTP/1.%*1[01] %3d", &status) != 1) {
        fetch_fail(s, "http", "the server's reply is not HTTP/1.0 or HTTP/1.1");
        return -1;
    }
    if (status != 200) {
        /* The server's status line, printable ASCII only: it reaches logs and a terminal. */
        char line_text[101];
        size_t n = 0;
        eol = strstr(head, "\r\n");
        for (const char *c = head;
             n + 1 < sizeof(line_text) && *c != '\0' && (eol == NULL || c < eol); c++)
            line_text[n++] = (*c >= 0x20 && *c <= 0x7e) ? *c : '?';
        line_text[n] = '\0';
        fetch_fail(s, "http_status", "HTTP status %d (\"%s\"); expected 200", status, line_text);
        return -1;
    }
    s->clen = -1;
    while ((eol = strstr(line, "\r\n")) != NULL && eol != line) {
        line = eol + 2;
        if (strncasecmp(line, "Content-Length:", 15) == 0) {
            char *end = NULL;
            const char *v = line + 15 + strspn(line + 15, " \t");
            unsigned long long n = strtoull(v, &end, 10);
            if (end == v || (*end != '\r' && *end != ' ' && *end != '\t')) {
                fetch_fail(s, "http", "the reply's Content-Length is malformed");
                return -1;
            }
            if (s->clen >= 0 && (uint64_t)s->clen != n) {
                fetch_fail(s, "http", "the reply has two different Content-Length headers");
                return -1;
            }
            if (n > s->max) {
                fetch_fail(s, "too_large",
                           "the reply announces %llu bytes, more than the limit of %llu%s", n,
                           (unsigned long long)s->max, s->ocsp ? "" : " (--crl-max-size)");
                return -1;
            }
            s->clen = (int64_t)n;
        } else if (strncasecmp(line, "Transfer-Encoding:", 18) == 0) {
            fetch_fail(s, "http",
                       "the reply to an HTTP/1.0 request is sent with a "
                       "Transfer-Encoding, which HTTP/1.0 does not have");
            return -1;
        }
    }
    return 0;
}

/* Move the body from the input buffer to the temporary file (and the digest). */
static int
take_body(struct crl_src *s, struct evbuffer *in)
{
    size_t len;

    while ((len = evbuffer_get_length(in)) > 0) {
        struct evbuffer_iovec v;
        ssize_t w;
        if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
            break;
        if (s->clen >= 0 && s->got + v.iov_len > (uint64_t)s->clen)
            v.iov_len = (size_t)((uint64_t)s->clen - s->got);
        if (s->got + v.iov_len > s->max) {
            fetch_fail(s, "too_large", "the reply is larger than the limit of %llu bytes%s",
                       (unsigned long long)s->max, s->ocsp ? "" : " (--crl-max-size)");
            return -1;
        }
        w = write(s->fd, v.iov_base, v.iov_len);
        if (w < 0) {
            fetch_fail(s, "cache", "cannot write %s: %s", s->tmp, strerror(errno));
            return -1;
        }
        EVP_DigestUpdate(s->md, v.iov_base, (size_t)w);
        s->got += (uint64_t)w;
        evbuffer_drain(in, (size_t)w);
        if (s->clen >= 0 && s->got == (uint64_t)s->clen) {
            s->ok = true;
            fetch_end(s);
            return -1;
        }
    }
    return 0;
}

static void
read_cb(struct bufferevent *bev, void *arg)
{
    struct crl_src *s = arg;
    struct evbuffer *in = bufferevent_get_input(bev);

    if (mono() - s->t0 > (double)(s->f->timeout_ms * TOTAL_FACTOR) / 1000.0) {
        fetch_fail(s, "timeout", "the transfer took longer than %lld s",
                   (long long)(s->f->timeout_ms * TOTAL_FACTOR / 1000));
        return;
    }
    if (s->st == ST_HEAD) {
        struct evbuffer_ptr p = evbuffer_search(in, "\r\n\r\n", 4, NULL);
        char head[HEAD_MAX + 1];
        if (p.pos < 0) {
            if (evbuffer_get_length(in) > HEAD_MAX)
                fetch_fail(s, "http", "the reply's head is larger than %d bytes", HEAD_MAX);
            return;
        }
        if (p.pos + 4 > HEAD_MAX) {
            fetch_fail(s, "http", "the reply's head is larger than %d bytes", HEAD_MAX);
            return;
        }
        evbuffer_remove(in, head, (size_t)p.pos + 4);
        head[p.pos + 4] = '\0';
        if (parse_head(s, head) != 0)
            return;
        s->st = ST_BODY;
        if (s->clen == 0) {
            fetch_fail(s, "not_a_crl", "the reply is empty");
            return;
        }
    }
    (void)take_body(s, in);
}

static void
event_cb(struct bufferevent *bev, short what, void *arg)
{
    struct crl_src *s = arg;
    static const char *const steps[] = {"", "connecting", "waiting for the reply's head",
                                        "reading the body"};

    if (what & BEV_EVENT_CONNECTED) {
        char req[1400], hostport[300];
        bool v6 = strchr(s->u.host, ':') != NULL;
        int n;
        if (s->u.port == 80)
            snprintf(hostport, sizeof(hostport), "%s%s%s", v6 ? "[" : "", s->u.host, v6 ? "]" : "");
        else
            snprintf(hostport, sizeof(hostport), "%s%s%s:%d", v6 ? "[" : "", s->u.host,
                     v6 ? "]" : "", s->u.port);
        n = snprintf(req, sizeof(req),
                     "GET %s HTTP/1.0\r\nHost: %s\r\nUser-Agent: duet/" DUET_VERSION
                     "\r\nAccept: %s\r\nConnection: close\r\n\r\n",
                     s->ocsp ? s->req_path : s->u.path, hostport,
                     s->ocsp ? "application/ocsp-response" : "application/pkix-crl, */*");
        if (n < 0 || (size_t)n >= sizeof(req)) {
            fetch_fail(s, "internal", "the request for %s is longer than %zu bytes", s->url,
                       sizeof(req) - 1);
            return;
        }
        s->st = ST_HEAD;
        bufferevent_write(bev, req, (size_t)n);
        bufferevent_enable(bev, EV_READ);
        return;
    }
    if (what & BEV_EVENT_TIMEOUT) {
        fetch_fail(s, "timeout", "timed out after %lld ms %s (--crl-fetch-timeout)",
                   (long long)s->f->timeout_ms, steps[s->st]);
        return;
    }
    if (what & BEV_EVENT_EOF) {
        if (s->st == ST_BODY) {
            read_cb(bev, s);
            if (s->st != ST_BODY)
                return; /* read_cb ended it */
            if (s->clen >= 0) {
                fetch_fail(s, "truncated", "the connection closed after %llu of %lld bytes",
                           (unsigned long long)s->got, (long long)s->clen);
                return;
            }
            if (s->got == 0) {
                fetch_fail(s, "not_a_crl", "the reply is empty");
                return;
            }
            s->ok = true;
            fetch_end(s);
            return;
        }
        fetch_fail(s, "http", "the connection closed before a complete reply head");
        return;
    }
    if (what & BEV_EVENT_ERROR) {
        int dnserr = bufferevent_socket_get_dns_error(bev);
        int e = EVUTIL_SOCKET_ERROR();
        if (dnserr != 0)
            fetch_fail(s, "dns", "DNS: cannot resolve %s: %s", s->u.host,
                       evutil_gai_strerror(dnserr));
        else if (s->st == ST_CONNECT)
            fetch_fail(s, "connect", "cannot connect to %s port %d: %s", s->u.host, s->u.port,
                       evutil_socket_error_to_string(e));
        else
            fetch_fail(s, "read", "the connection failed while %s: %s", steps[s->st],
                       evutil_socket_error_to_string(e));
    }
}

/*
 * An OCSP source before each fetch: its certificate file read again (the
 * agent may have renewed it), the issuer found in it, the GET path made.
 */
static int
ocsp_prepare(struct crl_src *s)
{
    STACK_OF(X509) *chain = NULL;
    struct duet_err e;
    X509 *iss;
    int rc = -1;

    err_clear(&e);
    if (load_certs_file(s->cert, NULL, &chain, &e) != 0) {
        fetch_fail(s, "certificate", "cannot read the certificate to staple for: %.1000s", e.msg);
        goto out;
    }
    if ((iss = staple_find_issuer(chain, NULL)) == NULL) {
        fetch_fail(s, "certificate",
                   "%s does not carry the issuer of its certificate, which the OCSP request "
                   "names; put the issuing CA certificate after it",
                   s->cert);
        goto out;
    }
    X509_free(s->leaf);
    X509_free(s->issuer);
    s->leaf = sk_X509_value(chain, 0);
    s->issuer = iss;
    X509_up_ref(s->leaf);
    X509_up_ref(s->issuer);
    if (!staple_get_path(s->leaf, s->issuer, s->u.path, s->req_path, sizeof(s->req_path))) {
        fetch_fail(s, "internal", "cannot make the OCSP request");
        goto out;
    }
    rc = 0;
out:
    OSSL_STACK_OF_X509_free(chain);
    return rc;
}

/*
 * Whether the file at path holds exactly der: the same response fetched
 * again is not renamed into place, which would reload the configuration.
 */
static bool
same_file(const char *path, const uint8_t *der, size_t len)
{
    uint8_t *cur = NULL;
    size_t clen = 0;
    struct duet_err e;
    bool same;

    err_clear(&e);
    if (access(path, F_OK) != 0 || fileio_read(path, &cur, &clen, &e) != 0)
        return false;
    same = clen == len && memcmp(cur, der, len) == 0;
    free(cur);
    return same;
}

/*
 * An OCSP fetch ended: check the response for this certificate, rename it
 * into place when it may be stapled; a revoked or unknown status removes
 * the cached response too (a good one must not be stapled any longer).
 */
static void
staple_end(struct crl_src *s)
{
    char labels[1400], tu[40], nu[40], kept[200];
    struct staple_facts got;
    char *serial = s->leaf != NULL ? x509u_serial(X509_get0_serialNumber(s->leaf)) : NULL;
    bool definitive = false, unchanged = false;
    int64_t next_ms, now = (int64_t)time(NULL);

    if (s->ok && fsync(s->fd) != 0) {
        s->ok = false;
        snprintf(s->code, sizeof(s->code), "cache");
        snprintf(s->why, sizeof(s->why), "cannot write %s: %s", s->tmp, strerror(errno));
    }
    fetch_reset(s);
    if (s->ok) {
        uint8_t *der = NULL;
        size_t len = 0;
        struct duet_err e;
        err_clear(&e);
        if (fileio_read(s->tmp, &der, &len, &e) != 0) {
            s->ok = false;
            snprintf(s->code, sizeof(s->code), "cache");
            snprintf(s->why, sizeof(s->why), "%.1000s", e.msg);
        } else if (staple_check(der, len, s->leaf, s->issuer, now, &got, s->code,
                                sizeof(s->code), s->why, sizeof(s->why)) != 0) {
            s->ok = false;
            /* Only a current answer, not older than the cached one, ends stapling: an old
             * signed "unknown" replayed over http must not remove a good response. */
            definitive = (got.status == V_OCSP_CERTSTATUS_REVOKED ||
                          got.status == V_OCSP_CERTSTATUS_UNKNOWN) &&
                         got.this_update <= now + STAPLE_CLOCK_SKEW && got.next_update > now &&
                         (!s->have || got.this_update >= s->cur.this_update);
        } else if (!(unchanged = same_file(s->path, der, len)) &&
                   (rename(s->tmp, s->path) != 0 || !sync_dir(s->path))) {
            s->ok = false;
            snprintf(s->code, sizeof(s->code), "cache");
            snprintf(s->why, sizeof(s->why), "cannot rename %s to %s and sync its directory: %s",
                     s->tmp, s->path, strerror(errno));
        } else {
            s->have = true;
            s->cur.this_update = got.this_update;
            s->cur.next_update = got.next_update;
            x509u_fmt_rfc3339(got.this_update, tu, sizeof(tu));
            x509u_fmt_rfc3339(got.next_update, nu, sizeof(nu));
            log_event("info", "ocsp_staple_fetched",
                      json_pack("{s:s,s:s,s:s,s:s?,s:I,s:s,s:s,s:b,s:f}", "listener",
                                s->listener, "url", s->url, "file", s->path, "serial", serial,
                                "bytes", (json_int_t)len, "this_update", tu, "next_update", nu,
                                "unchanged", unchanged, "duration_ms",
                                (mono() - s->t0) * 1000.0));
        }
        free(der);
    }
    if (!s->ok) {
        if (definitive) {
            (void)unlink(s->path);
            (void)sync_dir(s->path);
            s->have = false;
            snprintf(kept, sizeof(kept), "none: the cached response is removed");
        } else if (s->have && s->cur.next_update > now) {
            x509u_fmt_rfc3339(s->cur.next_update, nu, sizeof(nu));
            snprintf(kept, sizeof(kept), "the cached response (nextUpdate %s)", nu);
        } else {
            snprintf(kept, sizeof(kept), "none");
        }
        log_event("error", "ocsp_staple_failed",
                  json_pack("{s:s,s:s,s:s,s:s?,s:s,s:s,s:s}", "listener", s->listener, "source",
                            "fetch", "url", s->url, "serial", serial, "code", s->code, "reason",
                            s->why, "kept", kept));
    }
    (void)unlink(s->tmp);
    if (s->ok) {
        src_labels(s, NULL, labels, sizeof(labels));
        metrics_gauge_set("duet_ocsp_staple_fetch_last_success_timestamp_seconds", labels,
                          (double)now);
        s->failures = 0;
        next_ms = crlplan_refresh_delay_ms(now * 1000, s->cur.this_update, s->cur.next_update,
                                           s->f->refresh_ms, rand01());
        next_ms = unchanged_delay(s, unchanged, next_ms);
    } else {
        src_labels(s, s->code, labels, sizeof(labels));
        metrics_count("duet_ocsp_staple_fetch_failures_total", labels, 1);
        s->failures++;
        next_ms = crlplan_retry_delay_ms(s->failures, s->f->refresh_ms, rand01());
    }
    OPENSSL_free(serial);
    publish(s, s->ok);
    start_done(s);
    schedule(s, next_ms);
}

/* Start a fetch of s: a temporary file, then the connection. */
static void
fetch_begin(struct crl_src *s)
{
    struct timeval tv = {(time_t)(s->f->timeout_ms / 1000),
                         (suseconds_t)((s->f->timeout_ms % 1000) * 1000)};

    if (s->st != ST_IDLE)
        return;
    s->ok = false;
    if (s->ocsp && ocsp_prepare(s) != 0)
        return;
    s->got = 0;
    s->clen = -1;
    s->t0 = mono();
    s->fd = open(s->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (s->fd < 0) {
        fetch_fail(s, "cache", "cannot create %s: %s", s->tmp, strerror(errno));
        return;
    }
    s->md = EVP_MD_CTX_new();
    if (s->md == NULL || EVP_DigestInit_ex(s->md, EVP_sha256(), NULL) != 1) {
        fetch_fail(s, "internal", "cannot start a SHA-256 digest");
        return;
    }
    s->bev = bufferevent_socket_new(s->f->base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (s->bev == NULL) {
        fetch_fail(s, "internal", "cannot create a connection");
        return;
    }
    s->st = ST_CONNECT;
    bufferevent_setcb(s->bev, read_cb, NULL, event_cb, s);
    bufferevent_set_timeouts(s->bev, &tv, &tv);
    if (bufferevent_socket_connect_hostname(s->bev, s->f->dns, AF_UNSPEC, s->u.host, s->u.port) !=
        0) {
        int dnserr = bufferevent_socket_get_dns_error(s->bev);
        if (dnserr != 0)
            fetch_fail(s, "dns", "DNS: cannot resolve %s: %s", s->u.host,
                       evutil_gai_strerror(dnserr));
        else
            fetch_fail(s, "connect", "cannot connect to %s port %d: %s", s->u.host, s->u.port,
                       evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
    }
}

/* Add the CA certificates of a file to a source's possible signers. */
static int
add_signers(struct crl_src *s, const char *file, bool ca_only, struct duet_err *err)
{
    STACK_OF(X509) *certs = NULL;

    if (file == NULL)
        return 0;
    if (load_certs_file(file, NULL, &certs, err) != 0)
        return -1;
    for (int i = 0; i < sk_X509_num(certs); i++) {
        X509 *c = sk_X509_value(certs, i);
        if (ca_only && X509_check_ca(c) == 0)
            continue;
        if (!X509_up_ref(c) || !sk_X509_push(s->signers, c)) {
            OSSL_STACK_OF_X509_free(certs);
            return err_nomem(err);
        }
    }
    OSSL_STACK_OF_X509_free(certs);
    return 0;
}

/* The source of `url` (made on first sight), with the listener's CAs among its signers. */
static int
src_add(struct crlfetch *f, const struct proxy_cfg *cfg, const struct listener_cfg *l,
        const char *url, const char *path, struct duet_err *err)
{
    struct crl_src *s = NULL;
    char tmp[PATH_MAX];

    for (size_t i = 0; i < f->n && s == NULL; i++) {
        if (strcmp(f->srcs[i].url, url) == 0)
            s = &f->srcs[i];
    }
    if (s == NULL) {
        struct crl_src *ns = realloc(f->srcs, (f->n + 1) * sizeof(*ns));
        if (ns == NULL)
            return err_nomem(err);
        f->srcs = ns;
        s = &f->srcs[f->n++];
        memset(s, 0, sizeof(*s));
        s->f = f;
        s->fd = -1;
        snprintf(tmp, sizeof(tmp), "%s.tmp", path);
        if ((s->url = strdup(url)) == NULL || (s->path = strdup(path)) == NULL ||
            (s->tmp = strdup(tmp)) == NULL || (s->signers = sk_X509_new_null()) == NULL)
            return err_nomem(err);
        if (crlplan_url_parse(url, &s->u, err) != 0)
            return -1;
        s->max = f->max_bytes;
    }
    (void)cfg;
    if (add_signers(s, l->cacert, false, err) != 0 || add_signers(s, l->cert, true, err) != 0)
        return -1;
    return 0;
}

/* The staple source of a listener with --ocsp-staple (one per cache file). */
static int
src_add_staple(struct crlfetch *f, const struct listener_cfg *l, struct duet_err *err)
{
    struct crl_src *s, *ns;
    char tmp[PATH_MAX];

    for (size_t i = 0; i < f->n; i++) {
        if (strcmp(f->srcs[i].path, l->staple_file) == 0)
            return 0;
    }
    if ((ns = realloc(f->srcs, (f->n + 1) * sizeof(*ns))) == NULL)
        return err_nomem(err);
    f->srcs = ns;
    s = &f->srcs[f->n++];
    memset(s, 0, sizeof(*s));
    s->f = f;
    s->fd = -1;
    s->ocsp = true;
    s->max = 65536;
    snprintf(tmp, sizeof(tmp), "%s.tmp", l->staple_file);
    if ((s->url = strdup(l->staple_url)) == NULL || (s->path = strdup(l->staple_file)) == NULL ||
        (s->tmp = strdup(tmp)) == NULL || (s->cert = strdup(l->cert)) == NULL ||
        (s->listener = strdup(l->name)) == NULL || (s->signers = sk_X509_new_null()) == NULL)
        return err_nomem(err);
    return crlplan_url_parse(s->url, &s->u, err);
}

/* A cached staple from an earlier run: known (for the log) when it may still be stapled. */
static void
staple_load_cache(struct crl_src *s)
{
    STACK_OF(X509) *chain = NULL;
    struct duet_err e;
    uint8_t *der = NULL;
    size_t len = 0;
    struct staple_facts got;
    char code[32], why[1200];
    X509 *iss;

    err_clear(&e);
    if (access(s->path, F_OK) != 0 || load_certs_file(s->cert, NULL, &chain, &e) != 0 ||
        (iss = staple_find_issuer(chain, NULL)) == NULL ||
        fileio_read(s->path, &der, &len, &e) != 0)
        goto out;
    if (staple_check(der, len, sk_X509_value(chain, 0), iss, (int64_t)time(NULL), &got, code,
                     sizeof(code), why, sizeof(why)) == 0) {
        s->have = true;
        s->cur.this_update = got.this_update;
        s->cur.next_update = got.next_update;
    }
out:
    free(der);
    OSSL_STACK_OF_X509_free(chain);
}

/* A cached copy from an earlier run: used when it passes the checks (expired is allowed). */
static void
src_load_cache(struct crl_src *s)
{
    FILE *fp;
    char code[32], why[1200];
    struct crl_facts got;

    if (s->ocsp) {
        staple_load_cache(s);
        return;
    }
    if (access(s->path, F_OK) != 0)
        return;
    if (crl_check(s, s->path, true, &got, code, sizeof(code), why, sizeof(why)) != 0) {
        log_event("warn", "crl_rejected",
                  json_pack("{s:s,s:s,s:s,s:s,s:s}", "url", s->url, "file", s->path, "reason", why,
                            "code", code, "kept", "none: the cached copy is not used"));
        return;
    }
    if ((fp = fopen(s->path, "rb")) != NULL) {
        EVP_MD_CTX *md = EVP_MD_CTX_new();
        unsigned char buf[65536];
        size_t r;
        if (md != NULL && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1) {
            while ((r = fread(buf, 1, sizeof(buf), fp)) > 0)
                EVP_DigestUpdate(md, buf, r);
            EVP_DigestFinal_ex(md, s->sha, NULL);
        }
        EVP_MD_CTX_free(md);
        fclose(fp);
    }
    s->have = true;
    s->cur = got;
}

static void *
fetch_thread(void *arg)
{
    struct crlfetch *f = arg;

    event_base_loop(f->base, EVLOOP_NO_EXIT_ON_EMPTY);
    return NULL;
}

/* mkdir -p, each new level 0755 (CRLs are public). */
static int
mkdirs(const char *dir, struct duet_err *err)
{
    char p[PATH_MAX];
    size_t n = strlen(dir);

    if (n == 0 || n >= sizeof(p))
        return err_set(err, DUET_ERR_INPUT, "--crl-cache \"%s\": not a usable directory", dir);
    memcpy(p, dir, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (p[i] != '/' && p[i] != '\0')
            continue;
        p[i] = '\0';
        if (mkdir(p, 0755) != 0 && errno != EEXIST)
            return err_set(err, DUET_ERR_INPUT, "--crl-cache: cannot create the directory %s: %s",
                           p, strerror(errno));
        p[i] = i == n ? '\0' : '/';
    }
    return 0;
}

/* A fetcher that did not start (its thread never ran): everything it holds. */
static void
crlfetch_free(struct crlfetch *f)
{
    if (f == NULL)
        return;
    for (size_t i = 0; i < f->n; i++) {
        struct crl_src *s = &f->srcs[i];
        fetch_reset(s);
        if (s->timer != NULL)
            event_free(s->timer);
        facts_clear(&s->cur);
        OSSL_STACK_OF_X509_free(s->signers);
        X509_free(s->leaf);
        X509_free(s->issuer);
        free(s->cert);
        free(s->listener);
        free(s->url);
        free(s->path);
        free(s->tmp);
    }
    free(f->srcs);
    if (f->dns != NULL)
        evdns_base_free(f->dns, 0);
    if (f->base != NULL)
        event_base_free(f->base);
    pthread_mutex_destroy(&f->lock);
    free(f);
}

/* Stop the fetcher's thread and free it; see crlfetch.h. */
void
crlfetch_stop(struct crlfetch *f)
{
    if (f == NULL)
        return;
    event_base_loopbreak(f->base);
    pthread_join(f->thr, NULL);
    crlfetch_free(f);
}

/* Fetch every URL now, then keep them fresh; see crlfetch.h. */
int
crlfetch_start(const struct proxy_cfg *cfg, struct crlfetch **out, struct duet_err *err)
{
    struct crlfetch *f = NULL;
    size_t total = 0;

    *out = NULL;
    for (size_t i = 0; i < cfg->nlisteners; i++)
        total += cfg->listeners[i].ncrl_fetched + (cfg->listeners[i].staple_file != NULL);
    if (total == 0)
        return 0;
    if ((f = calloc(1, sizeof(*f))) == NULL)
        return err_nomem(err);
    pthread_mutex_init(&f->lock, NULL);
    f->refresh_ms = cfg->crl_refresh_ms;
    f->timeout_ms = cfg->crl_timeout_ms;
    f->max_bytes = (uint64_t)cfg->crl_max_bytes;
    if (mkdirs(cfg->crl_cache, err) != 0)
        goto err;
    for (size_t i = 0; i < cfg->nlisteners; i++) {
        const struct listener_cfg *l = &cfg->listeners[i];
        size_t first = l->ncrls - l->ncrl_fetched;
        for (size_t k = 0; k < l->ncrl_fetched; k++) {
            if (src_add(f, cfg, l, l->crl_fetch_urls[k], l->crls[first + k], err) != 0)
                goto err;
        }
        if (l->staple_file != NULL && src_add_staple(f, l, err) != 0)
            goto err;
    }
    if ((f->base = event_base_new()) == NULL ||
        (f->dns = evdns_base_new(f->base, EVDNS_BASE_INITIALIZE_NAMESERVERS |
                                              EVDNS_BASE_DISABLE_WHEN_INACTIVE)) == NULL) {
        err_set(err, DUET_ERR_INTERNAL, "cannot set up the CRL fetcher's event loop and resolver");
        goto err;
    }
    {
        /* Name resolution is bounded like the rest of a fetch (evdns's own defaults: 5 s, 3 tries).
         */
        char secs[24];
        snprintf(secs, sizeof(secs), "%lld",
                 (long long)(f->timeout_ms < 1000 ? 1 : f->timeout_ms / 1000));
        (void)evdns_base_set_option(f->dns, "timeout:", secs);
        (void)evdns_base_set_option(f->dns, "attempts:", "2");
    }
    f->starting = true;
    f->pending = f->n;
    for (size_t i = 0; i < f->n; i++) {
        struct crl_src *s = &f->srcs[i];
        if ((s->timer = evtimer_new(f->base, timer_cb, s)) == NULL) {
            err_nomem(err);
            goto err;
        }
        src_load_cache(s);
    }
    for (size_t i = 0; i < f->n; i++)
        fetch_begin(&f->srcs[i]);
    if (f->pending > 0)
        event_base_dispatch(f->base);
    f->starting = false;
    for (size_t i = 0; i < f->n; i++) {
        struct crl_src *s = &f->srcs[i];
        if (s->ocsp) {
            if (!s->ok)
                log_event("warn", "ocsp_staple_offline",
                          json_pack("{s:s,s:s,s:s,s:s}", "listener", s->listener, "url", s->url,
                                    "file", s->path, "effect",
                                    s->have ? "stapling the cached response; fetching again "
                                              "with back-off"
                                            : "stapling nothing; fetching again with back-off"));
            continue;
        }
        if (!s->have) {
            err_set(err, DUET_ERR_INPUT, "cannot fetch the CRL at %s: %s; no cached copy in %s",
                    s->url, s->why, s->path);
            goto err;
        }
        if (!s->ok)
            log_event("warn", "crl_offline",
                      json_pack("{s:s,s:s,s:s}", "url", s->url, "file", s->path, "effect",
                                "starting with the cached CRL; fetching again with back-off"));
    }
    if (pthread_create(&f->thr, NULL, fetch_thread, f) != 0) {
        err_set(err, DUET_ERR_INTERNAL, "cannot start the CRL fetcher's thread");
        goto err;
    }
    *out = f;
    return 0;
err:
    crlfetch_free(f);
    return -1;
}
