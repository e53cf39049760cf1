/* SPDX-License-Identifier: Apache-2.0 */
/*
 * log.h - the daemon's JSON-lines event log (src/lib never logs).
 *
 * One JSON object per line, written with a single write(2) so that lines
 * from several worker threads never interleave.  Every event has "time"
 * (RFC 3339 with milliseconds), "level" and "event".
 */
#ifndef DUET_UTIL_LOG_H
#define DUET_UTIL_LOG_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "lib/err.h"

/* Send events to a file (appending, 0640) or, with NULL, to stderr. */
int log_open(const char *path, struct duet_err *err) MUST_CHECK;
void log_close(void);

/*
 * Write one event; takes ownership of `fields` (may be NULL).  level is
 * "info", "warn" or "error".
 */
void log_event(const char *level, const char *event, json_t *fields);

/*
 * A line built field by field into a fixed buffer, for events written per
 * request: no JSON tree, one write(2).  Strings are escaped per RFC 8259;
 * bytes that are not valid UTF-8 are written as \u00XX.  A line that would
 * not fit is cut at the last whole field and gets "truncated": true.
 */
#define LOG_LINE_DEPTH 8
struct log_line {
    char buf[4096];
    size_t len;
    size_t last_good; /* length after the last complete top-level field */
    int depth;        /* objects and arrays opened and not yet closed */
    char closers[LOG_LINE_DEPTH];
    bool first;       /* no field yet in the innermost open object */
    bool truncated;
};
void log_line_begin(struct log_line *l, const char *level, const char *event);
/* Add "key": "value" (or null when value is NULL). */
void log_line_str(struct log_line *l, const char *key, const char *value);
/* Add "key": true/false. */
void log_line_bool(struct log_line *l, const char *key, bool value);
/* Add "key": a number with `decimals` digits after the point. */
void log_line_num(struct log_line *l, const char *key, double value, int decimals);
/* Add "key": ["v0", "v1", ...] from n strings. */
void log_line_strv(struct log_line *l, const char *key, const char *const *values, size_t n);
/*
 * Open "key": { ... } or "key": [ ... ] (NULL key: an element of an array);
 * what is added until log_line_close() goes in it (array elements with a NULL
 * key).  At most LOG_LINE_DEPTH levels.
 */
void log_line_open(struct log_line *l, const char *key);
void log_line_open_array(struct log_line *l, const char *key);
void log_line_close(struct log_line *l);
void log_line_end(struct log_line *l);

/*
 * Batching for an event-loop thread: lines this thread writes are kept in a
 * buffer of its own and written together, by one write(2), when the thread
 * calls log_batch_flush() (an event loop does so once per iteration, after
 * the events it handled) or when the buffer fills.  `arm` is called, with
 * `arg`, when the first line enters an empty buffer, so the loop can schedule
 * the flush.  Without it, every line is written at once.
 */
void log_batch_begin(void (*arm)(void *arg), void *arg);
void log_batch_flush(void);

/* A message-only event: {"event":..., "msg": "..."}. */
void log_msg(const char *level, const char *event, const char *fmt, ...) PRINTF_LIKE(3, 4);

/* Print "duet: message" to stderr and exit(2): only during start-up. */
void fatal(const char *fmt, ...) PRINTF_LIKE(1, 2) __attribute__((noreturn));

#endif
