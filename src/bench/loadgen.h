/* SPDX-License-Identifier: Apache-2.0 */
/*
 * loadgen.h - `duet bench`: an mTLS load generator (wrk and h2load cannot
 * present client certificates), over HTTP/1.1 or HTTP/2.
 */
#ifndef DUET_BENCH_LOADGEN_H
#define DUET_BENCH_LOADGEN_H

#include <stdbool.h>
#include <stdint.h>

#include "lib/err.h"
#include "util/net_addr.h"

enum bench_mode { BENCH_FULL = 0, BENCH_RESUME, BENCH_KEEPALIVE, BENCH_IDLE, BENCH_H2 };

struct bench_opts {
    struct net_addr target;
    const char *server_name;  /* SNI and the name the server certificate must carry */
    const char *cert, *key, *cacert;
    enum bench_mode mode;
    int concurrency;          /* connections in flight (idle: connections held) */
    int streams;              /* h2: requests in flight on each connection */
    int threads;
    int64_t duration_ms;
    int64_t warmup_ms;
    const char *path;         /* HTTP path; NULL with payload */
    const char *payload;      /* raw TCP: send this, wait for as many bytes back */
    bool tls12;
    bool json;
    bool insecure_key_mode;
};

/* Run the benchmark and print the report; returns the exit status (1 when any error). */
int bench_run(const struct bench_opts *o, struct duet_err *err);

#endif
