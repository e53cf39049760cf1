/* SPDX-License-Identifier: Apache-2.0 */
/*
 * evlog.h - log batching for a libevent loop thread (log_batch_begin() in
 * log.h): the lines of one loop turn leave in one write(2).  Shared by the
 * proxy's workers and `duet ca serve`.
 */
#ifndef DUET_UTIL_EVLOG_H
#define DUET_UTIL_EVLOG_H

#include <event2/event.h>

/*
 * Batch the calling thread's log lines, flushed on the turn of base's loop
 * after the first line of a batch was written.  base must outlive the
 * batching: call log_batch_end() before freeing it.
 */
void log_batch_on_loop(struct event_base *base);

#endif
