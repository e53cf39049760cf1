/* SPDX-License-Identifier: Apache-2.0 */
/*
 * metrics.c - counters, gauges and the handshake histogram; see metrics.h.
 */
#include "proxy/metrics.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#ifndef DUET_VERSION
#define DUET_VERSION "unknown"
#endif

static const double buckets[] = {0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0};
#define NBUCKETS (sizeof(buckets) / sizeof(buckets[0]))

static atomic_ulong hs_bucket[NBUCKETS + 1];
static atomic_ulong hs_sum_us;
static atomic_ulong hs_count;
static atomic_long conn_active;
static atomic_long h2_streams_open; /* HTTP/2 streams of clients open now, all workers */
static atomic_ulong conn_total;
static atomic_ulong bytes_up;
static atomic_ulong bytes_down;
static atomic_ulong up_new;
static atomic_ulong up_reused;

struct series {
    char *name;
    char *labels;
    double value;        /* gauges, under series_lock */
    atomic_ullong count; /* counters */
    bool gauge;
    struct series *next;
};

struct metrics_counter {
    struct series s;
};

static pthread_mutex_t series_lock = PTHREAD_MUTEX_INITIALIZER;
static struct series *series_head;

/* Make a listener's handshake counters; see metrics.h. */
void
metrics_handshake_counters(const char *listener, struct metrics_counter *out[TLS_FAIL_COUNT])
{
    char labels[256], ll[128];

    metrics_label(ll, sizeof(ll), listener);
    for (int i = 0; i < TLS_FAIL_COUNT; i++) {
        if (i == TLS_FAIL_NONE)
            snprintf(labels, sizeof(labels), "listener=\"%s\",result=\"ok\"", ll);
        else
            snprintf(labels, sizeof(labels), "listener=\"%s\",result=\"failed\",reason=\"%s\"",
                     ll, tls_fail_name((enum tls_fail)i));
        out[i] = metrics_counter("duet_handshakes_total", labels);
    }
}

void
metrics_handshake(struct metrics_counter *const hs[TLS_FAIL_COUNT], enum tls_fail fail,
                  double seconds)
{
    if ((int)fail < 0 || fail >= TLS_FAIL_COUNT)
        fail = TLS_FAIL_OTHER;
    if (hs != NULL)
        metrics_counter_add(hs[fail], 1);
    size_t i = 0;
    while (i < NBUCKETS && seconds > buckets[i])
        i++;
    atomic_fetch_add(&hs_bucket[i], 1);
    atomic_fetch_add(&hs_sum_us, (unsigned long)(seconds * 1e6));
    atomic_fetch_add(&hs_count, 1);
}

void
metrics_conn_open(void)
{
    atomic_fetch_add(&conn_active, 1);
    atomic_fetch_add(&conn_total, 1);
}

void
metrics_conn_close(void)
{
    atomic_fetch_sub(&conn_active, 1);
}

void
metrics_h2_stream(int delta)
{
    atomic_fetch_add(&h2_streams_open, delta);
}

long
metrics_conn_active(void)
{
    return atomic_load(&conn_active);
}

void
metrics_bytes(uint64_t up, uint64_t down)
{
    atomic_fetch_add(&bytes_up, up);
    atomic_fetch_add(&bytes_down, down);
}

void
metrics_upstream_conn(bool reused)
{
    atomic_fetch_add(reused ? &up_reused : &up_new, 1);
}

static struct series *
find_series(const char *name, const char *labels, bool gauge)
{
    for (struct series *s = series_head; s != NULL; s = s->next) {
        if (s->gauge == gauge && strcmp(s->name, name) == 0 && strcmp(s->labels, labels) == 0)
            return s;
    }
    struct series *s = calloc(1, sizeof(struct metrics_counter));
    if (s == NULL)
        return NULL;
    s->name = strdup(name);
    s->labels = strdup(labels);
    s->gauge = gauge;
    if (s->name == NULL || s->labels == NULL) {
        free(s->name);
        free(s->labels);
        free(s);
        return NULL;
    }
    s->next = series_head;
    series_head = s;
    return s;
}

void
metrics_count(const char *name, const char *labels, uint64_t delta)
{
    metrics_counter_add(metrics_counter(name, labels), delta);
}

struct metrics_counter *
metrics_counter(const char *name, const char *labels)
{
    pthread_mutex_lock(&series_lock);
    struct series *s = find_series(name, labels, false);
    pthread_mutex_unlock(&series_lock);
    return (struct metrics_counter *)s; /* every series is allocated as a metrics_counter */
}

void
metrics_counter_add(struct metrics_counter *c, uint64_t delta)
{
    if (c != NULL)
        atomic_fetch_add(&c->s.count, delta);
}

/* Count one through a slot that caches the series; see metrics.h. */
void
metrics_slot_count(_Atomic(struct metrics_counter *) *slot, const char *name, const char *fmt,
                   ...)
{
    struct metrics_counter *c = slot != NULL ? atomic_load(slot) : NULL;

    if (c == NULL) {
        char labels[512];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(labels, sizeof(labels), fmt, ap);
        va_end(ap);
        c = metrics_counter(name, labels);
        /* Two threads may both get here: the lock gives them the same series. */
        if (slot != NULL && c != NULL)
            atomic_store(slot, c);
    }
    metrics_counter_add(c, 1);
}

void
metrics_gauge_set(const char *name, const char *labels, double value)
{
    pthread_mutex_lock(&series_lock);
    struct series *s = find_series(name, labels, true);
    if (s != NULL)
        s->value = value;
    pthread_mutex_unlock(&series_lock);
}

void
metrics_gauge_clear(const char *name)
{
    pthread_mutex_lock(&series_lock);
    for (struct series **pp = &series_head; *pp != NULL;) {
        struct series *s = *pp;
        if (s->gauge && strcmp(s->name, name) == 0) {
            *pp = s->next;
            free(s->name);
            free(s->labels);
            free(s);
        } else {
            pp = &s->next;
        }
    }
    pthread_mutex_unlock(&series_lock);
}

/* The length of the well-formed UTF-8 sequence at p (RFC 3629 section 4), or 0. */
static size_t
label_utf8(const unsigned char *p)
{
    size_t len = p[0] >= 0xF0 && p[0] <= 0xF4 ? 4 : p[0] >= 0xE0 ? 3 : p[0] >= 0xC2 ? 2 : 0;
    unsigned char lo = 0x80, hi = 0xBF;

    if (len == 0 || p[0] > 0xF4)
        return 0;
    if (p[0] == 0xE0)
        lo = 0xA0; /* no overlong forms */
    else if (p[0] == 0xED)
        hi = 0x9F; /* no surrogates */
    else if (p[0] == 0xF0)
        lo = 0x90;
    else if (p[0] == 0xF4)
        hi = 0x8F; /* nothing above U+10FFFF */
    if (p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++) {
        if (p[i] < 0x80 || p[i] > 0xBF) /* a NUL ends the check too */
            return 0;
    }
    return len;
}

/*
 * Escape a label value for the text exposition format 0.0.4: '\' as \\, '"'
 * as \", newline as \n.  The format has no escape for other control bytes or
 * for bytes that are not UTF-8 (a scraper refuses the page), so those are
 * written as the four characters \xHH (the backslash itself escaped).  A value
 * that does not fit is cut between characters, never inside an escape or a
 * UTF-8 sequence; buf is always NUL-terminated (len > 0).
 */
void
metrics_label(char *buf, size_t len, const char *value)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)(value != NULL ? value : "");
    size_t o = 0;

    if (len == 0)
        return;
    while (*p) {
        char unit[8];
        size_t ul, used = 1;
        if (*p == '\\' || *p == '"') {
            unit[0] = '\\';
            unit[1] = (char)*p;
            ul = 2;
        } else if (*p == '\n') {
            unit[0] = '\\';
            unit[1] = 'n';
            ul = 2;
        } else if (*p >= 0x20 && *p < 0x7F) {
            unit[0] = (char)*p;
            ul = 1;
        } else if (*p >= 0x80 && (used = label_utf8(p)) > 0) {
            memcpy(unit, p, used);
            ul = used;
        } else {
            used = 1;
            memcpy(unit, "\\\\x", 3);
            unit[3] = hex[*p >> 4];
            unit[4] = hex[*p & 0xF];
            ul = 5;
        }
        if (ul >= len - o)
            break;
        memcpy(buf + o, unit, ul);
        o += ul;
        p += used;
    }
    buf[o] = '\0';
}

static const char *
help_for(const char *name)
{
    static const struct {
        const char *name, *help, *type;
    } h[] = {
        {"duet_handshakes_total",
         "TLS handshakes by listener, result and failure reason (no reason when ok).", "counter"},
        {"duet_authz_decisions_total", "Authorization decisions by rule.", "counter"},
        {"duet_upstream_failures_total", "Failed upstream connections by upstream.", "counter"},
        {"duet_reloads_total", "Configuration reloads by result.", "counter"},
        {"duet_proxy_generations",
         "Configurations in memory: the current one and retired ones still used by open "
         "connections.",
         "gauge"},
        {"duet_throttled_total", "Connections refused by the per-IP failed-handshake limit.", "counter"},
        {"duet_connections_closed_total",
         "Open connections the proxy ended: certificate no longer valid after a reload "
         "(reason as in handshakes), or max_lifetime.", "counter"},
        {"duet_requests_total", "HTTP requests by listener and status class.", "counter"},
        {"duet_h2_streams_total", "HTTP/2 streams (requests) opened by clients.", "counter"},
        {"duet_upstream_h2_streams_total",
         "Streams opened on HTTP/2 upstream connections, by upstream protocol (h2c, h2).",
         "counter"},
        {"duet_h2_stream_resets_total",
         "HTTP/2 streams reset, by reason (client, cancel, error, upstream, stalled, "
         "rapid_reset_goaway, control_flood_goaway, queue_timeout).",
         "counter"},
        {"duet_certificate_expiry_seconds",
         "Deprecated: use duet_certificate_not_after_timestamp_seconds - time(). Seconds until a "
         "loaded certificate expires.",
         "gauge"},
        {"duet_certificate_not_after_timestamp_seconds",
         "The notAfter of a loaded certificate (Unix time).", "gauge"},
        {"duet_crl_next_update_timestamp_seconds",
         "The nextUpdate of a loaded CRL (Unix time).", "gauge"},
        {"duet_crl_this_update_timestamp_seconds",
         "The thisUpdate of a loaded CRL (Unix time).", "gauge"},
        {"duet_crl_expiry_seconds", "Seconds until a loaded CRL passes its nextUpdate.", "gauge"},
        {"duet_crl_age_seconds", "Seconds since the thisUpdate of a loaded CRL.", "gauge"},
        {"duet_tunnel_ocsp_staples_total",
         "Tunnel handshakes by what the server's OCSP staple said (good, none, missing, revoked, "
         "bad).",
         "counter"},
        {"duet_crl_fetch_last_success_timestamp_seconds",
         "When a CRL URL was last fetched successfully (Unix time).", "gauge"},
        {"duet_crl_fetch_failures_total", "Failed CRL fetches by URL and reason.", "counter"},
        {"duet_ocsp_staple_age_seconds",
         "Seconds since the thisUpdate of the OCSP response a listener staples.", "gauge"},
        {"duet_ocsp_staple_expiry_seconds",
         "Seconds until the OCSP response a listener staples passes its nextUpdate.", "gauge"},
        {"duet_ocsp_staple_fetch_last_success_timestamp_seconds",
         "When an OCSP response to staple was last fetched and accepted (Unix time).", "gauge"},
        {"duet_ocsp_staple_fetch_failures_total",
         "Failed or refused fetches of an OCSP response to staple, by URL and reason.",
         "counter"},
        {"duet_ocsp_queries_total",
         "OCSP queries about client certificates by listener and result.", "counter"},
        {"duet_ocsp_cache_hits_total",
         "Client certificate checks answered by the OCSP cache, by listener.", "counter"},
        {"duet_ocsp_fail_open_total",
         "Clients accepted under --ocsp prefer without a good OCSP answer, by result.",
         "counter"},
        {"duet_ocsp_query_duration_seconds_bucket",
         "OCSP query latency histogram buckets (seconds).", "counter"},
        {"duet_ocsp_query_duration_seconds_count", "OCSP queries timed.", "counter"},
        {"duet_ocsp_query_duration_seconds_sum", "Seconds spent in OCSP queries.", "gauge"},
    };
    for (size_t i = 0; i < sizeof(h) / sizeof(h[0]); i++) {
        if (strcmp(h[i].name, name) == 0)
            return h[i].help;
    }
    return "duet metric.";
}

/*
 * A series' name and labels ('k="v",k2="v2"', values escaped by
 * metrics_label), leaving out any label whose value is empty; see metrics.h.
 */
static void
write_series(FILE *out, const char *name, const char *labels)
{
    bool open = false;
    const char *p = labels;

    fputs(name, out);
    while (*p) {
        const char *eq = strchr(p, '=');
        const char *v, *end;
        if (eq == NULL || eq[1] != '"')
            break; /* labels are built by this program: never happens */
        v = eq + 2;
        for (end = v; *end && *end != '"'; end += (*end == '\\' && end[1] != '\0') ? 2 : 1)
            ;
        if (*end != '"')
            break;
        if (end > v) {
            fputs(open ? "," : "{", out);
            fwrite(p, 1, (size_t)(end + 1 - p), out);
            open = true;
        }
        p = end[1] == ',' ? end + 2 : end + 1;
    }
    if (open)
        fputc('}', out);
}

void
metrics_write(FILE *out)
{
    unsigned long cum = 0;
    char ov[128];

    metrics_label(ov, sizeof(ov), OpenSSL_version(OPENSSL_VERSION_STRING));
    fprintf(out,
            "# HELP duet_build_info The duet build and the OpenSSL it runs with.\n"
            "# TYPE duet_build_info gauge\n"
            "duet_build_info{version=\"%s\",openssl=\"%s\"} 1\n",
            DUET_VERSION, ov);
    fprintf(out, "# HELP duet_handshake_duration_seconds Time from accept to the end of the "
                 "handshake.\n# TYPE duet_handshake_duration_seconds histogram\n");
    for (size_t i = 0; i < NBUCKETS; i++) {
        cum += atomic_load(&hs_bucket[i]);
        fprintf(out, "duet_handshake_duration_seconds_bucket{le=\"%g\"} %lu\n", buckets[i], cum);
    }
    cum += atomic_load(&hs_bucket[NBUCKETS]);
    fprintf(out, "duet_handshake_duration_seconds_bucket{le=\"+Inf\"} %lu\n", cum);
    fprintf(out, "duet_handshake_duration_seconds_sum %.6f\n",
            (double)atomic_load(&hs_sum_us) / 1e6);
    fprintf(out, "duet_handshake_duration_seconds_count %lu\n", atomic_load(&hs_count));
    fprintf(out, "# HELP duet_chain_cache_hits_total Handshakes whose client chain was answered by "
                 "the verified-chain cache.\n# TYPE duet_chain_cache_hits_total counter\n"
                 "duet_chain_cache_hits_total %lu\n",
            tls_chain_cache_hits());
    fprintf(out, "# HELP duet_connections_active Client connections open now.\n"
                 "# TYPE duet_connections_active gauge\nduet_connections_active %ld\n",
            atomic_load(&conn_active));
    fprintf(out, "# HELP duet_h2_streams_open HTTP/2 streams of clients open now.\n"
                 "# TYPE duet_h2_streams_open gauge\nduet_h2_streams_open %ld\n",
            atomic_load(&h2_streams_open));
    fprintf(out, "# HELP duet_connections_total Client connections accepted.\n"
                 "# TYPE duet_connections_total counter\nduet_connections_total %lu\n",
            atomic_load(&conn_total));
    fprintf(out, "# HELP duet_bytes_total Bytes relayed by direction.\n"
                 "# TYPE duet_bytes_total counter\n"
                 "duet_bytes_total{direction=\"client_to_upstream\"} %lu\n"
                 "duet_bytes_total{direction=\"upstream_to_client\"} %lu\n",
            atomic_load(&bytes_up), atomic_load(&bytes_down));
    fprintf(out, "# HELP duet_upstream_connections_total Upstream connections taken for requests: "
                 "newly opened, or reused from the idle pool.\n"
                 "# TYPE duet_upstream_connections_total counter\n"
                 "duet_upstream_connections_total{kind=\"new\"} %lu\n"
                 "duet_upstream_connections_total{kind=\"reused\"} %lu\n",
            atomic_load(&up_new), atomic_load(&up_reused));
    pthread_mutex_lock(&series_lock);
    /* Group by name: print HELP/TYPE once per name. */
    for (struct series *s = series_head; s != NULL; s = s->next) {
        bool first = true;
        for (struct series *t = series_head; t != s; t = t->next) {
            if (strcmp(t->name, s->name) == 0) {
                first = false;
                break;
            }
        }
        if (!first)
            continue;
        fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", s->name, help_for(s->name), s->name,
                s->gauge ? "gauge" : "counter");
        for (struct series *t = s; t != NULL; t = t->next) {
            if (strcmp(t->name, s->name) != 0)
                continue;
            write_series(out, t->name, t->labels);
            if (t->gauge)
                fprintf(out, " %.17g\n", t->value);
            else
                fprintf(out, " %llu\n", (unsigned long long)atomic_load(&t->count));
        }
    }
    pthread_mutex_unlock(&series_lock);
}
