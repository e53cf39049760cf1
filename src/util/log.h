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
struct log_line {
    char buf[4096];
    size_t len;
    size_t last_good; /* length after the last complete field */
    bool truncated;
};
void log_line_begin(struct log_line *l, const char *level, const char *event);
/* Add "key": "value" (or null when value is NULL). */
void log_line_str(struct log_line *l, const char *key, const char *value);
void log_line_end(struct log_line *l);

/* A message-only event: {"event":..., "msg": "..."}. */
void log_msg(const char *level, const char *event, const char *fmt, ...) PRINTF_LIKE(3, 4);

/* Print "duet: message" to stderr and exit(2): only during start-up. */
void fatal(const char *fmt, ...) PRINTF_LIKE(1, 2) __attribute__((noreturn));

#endif
