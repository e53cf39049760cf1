/* SPDX-License-Identifier: Apache-2.0 */
/*
 * loadgen_int.h - what the HTTP/1.1 engine of `duet bench` (loadgen.c) and
 * its HTTP/2 mode (loadh2.c) share: a thread's connections (slots), the
 * latencies and error reasons it counts.
 */
#ifndef DUET_BENCH_LOADGEN_INT_H
#define DUET_BENCH_LOADGEN_INT_H

#include <http_parser.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/bufferevent.h>
#include <event2/event.h>

#include "bench/loadgen.h"

#define MAX_REASONS 32

struct reasons {
    char name[MAX_REASONS][96];
    uint64_t count[MAX_REASONS];
    int n;
};

struct bthread;
struct bench_h2; /* loadh2.c: one connection's HTTP/2 session and its streams */

struct slot {
    struct bthread *t;
    struct bufferevent *bev;
    SSL *ssl;
    SSL_SESSION *session;
    http_parser parser;
    bool done_resp;
    size_t echo_want, echo_got;
    double t_op;
    bool connected;
    bool active;
    bool had_session; /* this connection offered a session to resume */
    struct bench_h2 *h2;
};

struct bthread {
    const struct bench_opts *o;
    SSL_CTX *ctx;
    struct event_base *base;
    struct slot *slots;
    int nslots;
    pthread_t thr;
    double t_measure, t_end;
    uint64_t ok;
    uint64_t resumed;
    uint32_t *lat_us;
    size_t nlat, caplat;
    struct reasons errors;
    int idle_established;
    struct event *stop_ev;
    char request[1024];
    size_t request_len;
};

/* Seconds on the monotonic clock. */
double bench_mono(void);
/* Count one operation started at `start` (seconds): its latency when ok, else its reason;
 * nothing during the warm-up or past the end. */
void bench_record(struct bthread *t, double start, bool ok, const char *reason);
/* Close the slot's connection (a finished one: its session stays resumable). */
void bench_slot_reset(struct slot *s);
/* Close the slot's connection and open a new one while the run lasts; else leave it idle. */
void bench_slot_again(struct slot *s);

/* HTTP/2 mode (loadh2.c).  The connection's handshake chose its protocol: start the session
 * and fill it with --streams requests, or count why not. */
void bench_h2_connected(struct slot *s);
/* Bytes from the server: feed the session; each finished stream is counted and replaced. */
void bench_h2_read(struct slot *s);
/* The connection ended (reason): its streams in flight count as errors. */
void bench_h2_lost(struct slot *s, const char *reason);
/* Free the session and its streams; NULL-safe on s->h2. */
void bench_h2_free(struct slot *s);

#endif
