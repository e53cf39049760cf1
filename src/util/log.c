/* SPDX-License-Identifier: Apache-2.0 */
/*
 * log.c - JSON lines to stderr or a file; see log.h.
 */
#include "util/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static int log_fd = 2;

/* A thread's batch of lines; see log_batch_begin(). */
#define BATCH_BYTES (64 * 1024)
struct batch {
    char *buf;
    size_t len;
    void (*arm)(void *arg);
    void *arg;
    bool armed;
};
static _Thread_local struct batch batch;

/* The time as RFC 3339 with milliseconds; the part up to the second is kept per thread. */
static void
timestamp(char *out, size_t len)
{
    static _Thread_local time_t sec = -1;
    static _Thread_local char head[32];
    struct timeval tv;

    gettimeofday(&tv, NULL);
    if (tv.tv_sec != sec) {
        struct tm tm;
        gmtime_r(&tv.tv_sec, &tm);
        strftime(head, sizeof(head), "%Y-%m-%dT%H:%M:%S", &tm);
        sec = tv.tv_sec;
    }
    snprintf(out, len, "%.20s.%03dZ", head, (int)(tv.tv_usec / 1000 % 1000));
}

/* Write whole lines: straight away, or into this thread's batch. */
static void
emit(const char *data, size_t n)
{
    if (batch.arm == NULL) {
        (void)!write(log_fd, data, n);
        return;
    }
    if (batch.len + n > BATCH_BYTES)
        log_batch_flush();
    if (n > BATCH_BYTES) {
        (void)!write(log_fd, data, n);
        return;
    }
    memcpy(batch.buf + batch.len, data, n);
    batch.len += n;
    if (!batch.armed) {
        batch.armed = true;
        batch.arm(batch.arg);
    }
}

void
log_batch_begin(void (*arm)(void *arg), void *arg)
{
    if (batch.buf == NULL && (batch.buf = malloc(BATCH_BYTES)) == NULL)
        return; /* no batching: lines go out one by one */
    batch.arm = arm;
    batch.arg = arg;
}

void
log_batch_flush(void)
{
    batch.armed = false;
    if (batch.len > 0)
        (void)!write(log_fd, batch.buf, batch.len);
    batch.len = 0;
}

int
log_open(const char *path, struct duet_err *err)
{
    int fd;

    if (path == NULL) {
        log_fd = 2;
        return 0;
    }
    fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0)
        return err_set(err, DUET_ERR_INPUT, "%s: cannot open the log: %s", path, strerror(errno));
    if (log_fd > 2)
        close(log_fd);
    log_fd = fd;
    return 0;
}

void
log_close(void)
{
    if (log_fd > 2)
        close(log_fd);
    log_fd = 2;
}

void
log_event(const char *level, const char *event, json_t *fields)
{
    char ts[48];
    json_t *o = json_object();
    char *line;
    size_t n;

    if (o == NULL) {
        json_decref(fields);
        return;
    }
    timestamp(ts, sizeof(ts));
    json_object_set_new(o, "time", json_string(ts));
    json_object_set_new(o, "level", json_string(level));
    json_object_set_new(o, "event", json_string(event));
    if (fields != NULL) {
        json_object_update(o, fields);
        json_decref(fields);
    }
    line = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6));
    json_decref(o);
    if (line == NULL)
        return;
    n = strlen(line);
    line[n] = '\n'; /* json_dumps leaves room for the terminator; replace it */
    emit(line, n + 1);
    free(line);
}

/* The length of the valid UTF-8 sequence at p (at most n bytes), or 0. */
static size_t
utf8_seq(const unsigned char *p, size_t n)
{
    size_t len;
    unsigned int cp;

    if (p[0] < 0x80)
        return 1;
    if (p[0] >= 0xC2 && p[0] <= 0xDF) {
        len = 2;
        cp = p[0] & 0x1F;
    } else if (p[0] >= 0xE0 && p[0] <= 0xEF) {
        len = 3;
        cp = p[0] & 0x0F;
    } else if (p[0] >= 0xF0 && p[0] <= 0xF4) {
        len = 4;
        cp = p[0] & 0x07;
    } else {
        return 0;
    }
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3F);
    }
    if ((len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
        (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
        return 0;
    return len;
}

static void
line_put(struct log_line *l, const char *s, size_t n)
{
    if (l->truncated || l->len + n + 2 >= sizeof(l->buf)) {
        l->truncated = true;
        return;
    }
    memcpy(l->buf + l->len, s, n);
    l->len += n;
}

static void
line_quoted(struct log_line *l, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s);
    char esc[8];

    line_put(l, "\"", 1);
    for (size_t i = 0; i < n && !l->truncated;) {
        unsigned char c = p[i];
        size_t k;
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            line_put(l, esc, 2);
            i++;
        } else if (c < 0x20 || c == 0x7F) {
            snprintf(esc, sizeof(esc), "\\u%04x", c);
            line_put(l, esc, 6);
            i++;
        } else if ((k = utf8_seq(p + i, n - i)) > 0) {
            line_put(l, s + i, k);
            i += k;
        } else {
            snprintf(esc, sizeof(esc), "\\u%04x", c);
            line_put(l, esc, 6);
            i++;
        }
    }
    line_put(l, "\"", 1);
}

void
log_line_begin(struct log_line *l, const char *level, const char *event)
{
    char ts[48];

    timestamp(ts, sizeof(ts));
    l->len = 0;
    l->depth = 0;
    l->first = false;
    l->truncated = false;
    line_put(l, "{\"time\":", 8);
    line_quoted(l, ts);
    line_put(l, ",\"level\":", 9);
    line_quoted(l, level);
    line_put(l, ",\"event\":", 9);
    line_quoted(l, event);
    l->last_good = l->len;
}

/* The separator and "key": of a new field (no key inside an array). */
static void
line_key(struct log_line *l, const char *key)
{
    if (!l->first)
        line_put(l, ",", 1);
    l->first = false;
    if (key != NULL) {
        line_quoted(l, key);
        line_put(l, ":", 1);
    }
}

/* A field is complete: the line may be cut here (only at the top level). */
static void
line_done(struct log_line *l)
{
    if (!l->truncated && l->depth == 0)
        l->last_good = l->len;
}

void
log_line_str(struct log_line *l, const char *key, const char *value)
{
    if (l->truncated)
        return;
    line_key(l, key);
    if (value != NULL)
        line_quoted(l, value);
    else
        line_put(l, "null", 4);
    line_done(l);
}

void
log_line_bool(struct log_line *l, const char *key, bool value)
{
    if (l->truncated)
        return;
    line_key(l, key);
    line_put(l, value ? "true" : "false", value ? 4 : 5);
    line_done(l);
}

void
log_line_num(struct log_line *l, const char *key, double value, int decimals)
{
    char num[64];
    int n;

    if (l->truncated)
        return;
    n = snprintf(num, sizeof(num), "%.*f", decimals, value);
    line_key(l, key);
    line_put(l, num, n > 0 ? (size_t)n : 0);
    line_done(l);
}

void
log_line_strv(struct log_line *l, const char *key, const char *const *values, size_t n)
{
    if (l->truncated)
        return;
    line_key(l, key);
    line_put(l, "[", 1);
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            line_put(l, ",", 1);
        line_quoted(l, values[i]);
    }
    line_put(l, "]", 1);
    line_done(l);
}

static void
line_open(struct log_line *l, const char *key, char open, char close)
{
    if (l->truncated)
        return;
    if (l->depth >= LOG_LINE_DEPTH) {
        l->truncated = true;
        return;
    }
    line_key(l, key);
    line_put(l, &open, 1);
    l->closers[l->depth++] = close;
    l->first = true;
}

void
log_line_open(struct log_line *l, const char *key)
{
    line_open(l, key, '{', '}');
}

void
log_line_open_array(struct log_line *l, const char *key)
{
    line_open(l, key, '[', ']');
}

void
log_line_close(struct log_line *l)
{
    if (l->truncated || l->depth == 0)
        return;
    l->depth--;
    line_put(l, &l->closers[l->depth], 1);
    l->first = false;
    line_done(l);
}

void
log_line_end(struct log_line *l)
{
    static const char tail[] = ",\"truncated\":true";

    if (l->truncated) {
        l->len = l->last_good;
        memcpy(l->buf + l->len, tail, sizeof(tail) - 1);
        l->len += sizeof(tail) - 1;
    }
    l->buf[l->len++] = '}';
    l->buf[l->len++] = '\n';
    emit(l->buf, l->len);
}

void
log_msg(const char *level, const char *event, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    log_event(level, event, json_pack("{s:s}", "msg", msg));
}

void
fatal(const char *fmt, ...)
{
    va_list ap;

    fputs("duet: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(2);
}
