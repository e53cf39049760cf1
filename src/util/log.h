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
 * The least severe level written: "debug", "info" (the default), "warn" or
 * "error"; lines of a lower level cost nothing.  Anything else is refused.
 */
int log_set_level(const char *name, struct duet_err *err) MUST_CHECK;
/* Whether name is a level, without setting it (configuration checks): 0, or -1 and why. */
int log_level_check(const char *name, struct duet_err *err) MUST_CHECK;
/* Reopen the log file by its path (SIGUSR1, after logrotate); nothing for stderr. */
int log_reopen(struct duet_err *err) MUST_CHECK;

/*
 * Write one event; takes ownership of `fields` (may be NULL).  level is
 * "info", "warn" or "error".  Strings anywhere in `fields` (even made with
 * json_string_nocheck) are written as described below.
 */
void log_event(const char *level, const char *event, json_t *fields);

/*
 * How values are written, in every line (log_line_*, log_event, log_msg):
 * strings are escaped per RFC 8259 and the line never holds a raw control
 * byte, so one event is always one line.  Bytes that are not valid UTF-8
 * (overlong forms, surrogates, cut sequences) are shown one by one as the code
 * point U+00XX; a NUL byte is shown as U+2400 (SYMBOL FOR NULL), since many
 * JSON readers refuse \u0000.  A string whose escaped form is longer than
 * LOG_VALUE_MAX bytes is cut inside the string, on a character and escape
 * boundary, and ends with LOG_TRUNCATED_MARK; the line then also gets
 * "truncated": true.  Numbers that JSON cannot hold (NaN, infinities) are null.
 */
#define LOG_VALUE_MAX 1024
#define LOG_TRUNCATED_MARK "\xe2\x80\xa6[truncated]" /* "...[truncated]", U+2026 first */

/*
 * A line built field by field into a fixed buffer, for events written per
 * request: no JSON tree, one write(2).  Every write into the buffer is
 * bounded; room for closing what is open and for "truncated": true is kept
 * back, so the line is valid JSON whatever is added.  A field that does not
 * fit is left out whole (the line gets "truncated": true) and later, smaller
 * fields may still go in.  A key given inside an array is ignored; a NULL key
 * inside an object is written as "".  Containers deeper than LOG_LINE_DEPTH
 * and what is added in them are left out; log_line_end() closes what is open.
 */
#define LOG_LINE_DEPTH 8
#define LOG_LINE_MAX 8192
struct log_line {
    char buf[LOG_LINE_MAX];
    size_t len;
    int depth;        /* objects and arrays written and not yet closed */
    int skipped;      /* objects and arrays left out (no room, too deep) and not yet closed */
    char closers[LOG_LINE_DEPTH];
    bool first;       /* no field yet in the innermost open container */
    bool nospace;     /* the field being written did not fit */
    bool truncated;   /* a value was cut or a field left out */
    bool off;         /* below the log level: nothing is built or written */
};
void log_line_begin(struct log_line *l, const char *level, const char *event);
/* Add "key": "value" (or null when value is NULL). */
void log_line_str(struct log_line *l, const char *key, const char *value);
/* Add "key": "value" from n bytes that may hold anything, NUL included. */
void log_line_strn(struct log_line *l, const char *key, const char *value, size_t n);
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
/* Flush, stop batching and free the calling thread's buffer: lines go out one by one. */
void log_batch_end(void);

/* A message-only event: {"event":..., "msg": "..."}; the message has no length limit before
 * it is cut like any value. */
void log_msg(const char *level, const char *event, const char *fmt, ...) PRINTF_LIKE(3, 4);

/* Print "duet: message" to stderr and exit(2): only during start-up. */
void fatal(const char *fmt, ...) PRINTF_LIKE(1, 2) __attribute__((noreturn));

#endif
