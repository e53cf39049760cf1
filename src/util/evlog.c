/* SPDX-License-Identifier: Apache-2.0 */
/*
 * evlog.c - a loop thread's log lines written once per loop turn: the first
 * line of a batch schedules a zero timeout, which runs on the next turn of
 * the loop after the events at hand, so the lines of every request and
 * handshake handled in one turn leave in one write(2) instead of one each.
 */
#include "util/evlog.h"

#include "util/log.h"

/* The loop turn after log lines were written: write them. */
static void
flush_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    log_batch_flush();
}

/* The first line of a batch: schedule its flush, or write it now if that fails. */
static void
arm(void *arg)
{
    static const struct timeval zero = {0, 0};
    struct event_base *base = arg;

    if (event_base_once(base, -1, EV_TIMEOUT, flush_cb, NULL, &zero) != 0)
        log_batch_flush();
}

void
log_batch_on_loop(struct event_base *base)
{
    log_batch_begin(arm, base);
}
