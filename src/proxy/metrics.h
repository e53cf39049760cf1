/* SPDX-License-Identifier: Apache-2.0 */
/*
 * metrics.h - the proxy's Prometheus metrics, shared by worker threads.
 *
 * Fixed series (handshake results by reason, the handshake duration
 * histogram, active connections, bytes) are atomics; labelled series that
 * depend on configuration (authorization decisions by rule, upstream
 * failures, reloads) live in a small table under a mutex.
 */
#ifndef DUET_PROXY_METRICS_H
#define DUET_PROXY_METRICS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "lib/tls.h"

struct metrics_counter;
/*
 * The handshake counters of one listener, one per result and reason
 * (duet_handshakes_total{listener,result[,reason]}), made once when the
 * listener is built so that every series exists from the start at 0 (rate()
 * needs a first sample).  Entries may be NULL when out of memory.
 */
void metrics_handshake_counters(const char *listener, struct metrics_counter *out[TLS_FAIL_COUNT]);
/* Count a handshake in its listener's counters and the duration histogram. */
void metrics_handshake(struct metrics_counter *const hs[TLS_FAIL_COUNT], enum tls_fail fail,
                       double seconds);
void metrics_conn_open(void);
void metrics_conn_close(void);
long metrics_conn_active(void);
/* An HTTP/2 stream of a client opened (+1) or freed (-1): the duet_h2_streams_open gauge. */
void metrics_h2_stream(int delta);
void metrics_bytes(uint64_t client_to_upstream, uint64_t upstream_to_client);
/* One upstream connection used for a request: newly opened, or reused from the idle pool. */
void metrics_upstream_conn(bool reused);
/* Add to a labelled counter, e.g. ("duet_authz_decisions_total", "rule=\"hr\",decision=\"allow\""). */
void metrics_count(const char *name, const char *labels, uint64_t delta);
/*
 * A counter series, found or made once (it lives as long as the process), for
 * hot paths: metrics_counter_add() is one atomic addition.  NULL when out of
 * memory; metrics_counter_add() accepts NULL.
 */
struct metrics_counter *metrics_counter(const char *name, const char *labels);
void metrics_counter_add(struct metrics_counter *c, uint64_t delta);
/*
 * Count one in a series cached in a slot the caller keeps (a generation's
 * listener), for per-request counters.  The first count finds or makes
 * name{labels}, the labels formatted from fmt (values already escaped by
 * metrics_label), and stores the series in the slot; every later count is an
 * atomic load and metrics_counter_add(), with no formatting, lock or list
 * walk, and fmt's arguments are not read.  Lazy like metrics_count(): a series
 * that never counted is not scraped.  slot NULL (a status code outside the
 * caller's array): nothing is cached, the series is found each time.
 */
void metrics_slot_count(_Atomic(struct metrics_counter *) *slot, const char *name,
                        const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Set a labelled gauge (certificate and CRL expiry). */
void metrics_gauge_set(const char *name, const char *labels, double value);
/* Drop every gauge of a name (before setting the current ones on reload). */
void metrics_gauge_clear(const char *name);
/*
 * Prometheus text exposition format 0.0.4: HELP and TYPE once per family, then
 * its series; a label whose value is empty is left out (Prometheus reads an
 * empty value as no label), so no series says reason="".
 */
void metrics_write(FILE *out);
/* Escape a label value (backslash, quote, newline) into buf. */
void metrics_label(char *buf, size_t len, const char *value);

#endif
