/* SPDX-License-Identifier: Apache-2.0 */
/*
 * log.c - JSON lines to stderr or a file; see log.h.
 *
 * One escaper (escape_unit, put_quoted) serves the per-request line builder,
 * log_event and log_msg, so every line follows the same rules: RFC 8259
 * escaping, no raw control byte, invalid UTF-8 shown byte by byte, long values
 * cut inside their string.  Nothing is formatted into a buffer that input can
 * overflow: the line builder's buffer is written only through sink_put(),
 * which checks the room left, and log_event() grows its buffer.
 */
#include "util/log.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdint.h>
#include <stdarg.h>
#include <stdatomic.h>
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
    {
        /* "%.20s.%03dZ" by hand: this runs for every log line */
        size_t hl = strnlen(head, 20);
        int ms = (int)(tv.tv_usec / 1000 % 1000);
        if (len < hl + 6) {
            snprintf(out, len, "%.20s.%03dZ", head, ms);
            return;
        }
        memcpy(out, head, hl);
        out[hl] = '.';
        out[hl + 1] = (char)('0' + ms / 100);
        out[hl + 2] = (char)('0' + ms / 10 % 10);
        out[hl + 3] = (char)('0' + ms % 10);
        out[hl + 4] = 'Z';
        out[hl + 5] = '\0';
    }
}

/*
 * "%.*f" of a value from 0 to below 1e9 with at most 3 decimals, without
 * printf (every audit line has two numbers); false (nothing written) when the
 * value is outside that range or its scaled value lies so near a rounding tie
 * that only printf's exact rounding can say which way it goes.
 */
static bool
fixed_fast(double value, int decimals, char *out, size_t len, int *n)
{
    static const double scales[4] = {1, 10, 100, 1000};
    char digits[24];
    double scaled, frac;
    uint64_t r, ip, fp;
    size_t nd = 0, k = 0;

    if (decimals > 3 || !(value >= 0) || value * scales[decimals] >= 1e9 || len < 24)
        return false;
    scaled = value * scales[decimals];
    frac = scaled - floor(scaled);
    if (fabs(frac - 0.5) < 1e-6)
        return false;
    r = (uint64_t)llround(scaled);
    ip = r / (uint64_t)scales[decimals];
    fp = r % (uint64_t)scales[decimals];
    do {
        digits[nd++] = (char)('0' + ip % 10);
        ip /= 10;
    } while (ip > 0);
    while (nd > 0)
        out[k++] = digits[--nd];
    if (decimals > 0) {
        out[k++] = '.';
        for (int d = decimals - 1; d >= 0; d--) {
            out[k + (size_t)d] = (char)('0' + fp % 10);
            fp /= 10;
        }
        k += (size_t)decimals;
    }
    out[k] = '\0';
    *n = (int)k;
    return true;
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
log_batch_end(void)
{
    log_batch_flush();
    free(batch.buf);
    batch.buf = NULL;
    batch.arm = NULL;
    batch.arg = NULL;
}

void
log_batch_flush(void)
{
    batch.armed = false;
    if (batch.len > 0)
        (void)!write(log_fd, batch.buf, batch.len);
    batch.len = 0;
}

static char log_path[4096]; /* the log file's path, for log_reopen(); empty: stderr */
static atomic_int log_min = 1; /* see log_set_level: 0 debug, 1 info, 2 warn, 3 error */

static const char *const level_names[] = {"debug", "info", "warn", "error"};

/* A level's rank, or -1 for a name that is not a level. */
static int
level_find(const char *level)
{
    for (int i = 0; i < 4; i++) {
        if (level != NULL && strcmp(level, level_names[i]) == 0)
            return i;
    }
    return -1;
}

/* A level's rank; an unknown level counts as info. */
static int
level_rank(const char *level)
{
    int r = level_find(level);
    return r >= 0 ? r : 1;
}

int
log_level_check(const char *name, struct duet_err *err)
{
    if (level_find(name) < 0)
        return err_set(err, DUET_ERR_INPUT, "\"%s\": expected debug, info, warn or error", name);
    return 0;
}

static bool
level_on(const char *level)
{
    return level_rank(level) >= atomic_load_explicit(&log_min, memory_order_relaxed);
}

int
log_set_level(const char *name, struct duet_err *err)
{
    int r = level_find(name);

    if (r < 0)
        return err_set(err, DUET_ERR_INPUT,
                       "log level \"%s\": expected debug, info, warn or error", name);
    atomic_store(&log_min, r);
    return 0;
}

int
log_open(const char *path, struct duet_err *err)
{
    int fd;

    if (path == NULL) {
        log_fd = 2;
        log_path[0] = '\0';
        return 0;
    }
    if (strlen(path) >= sizeof(log_path))
        return err_set(err, DUET_ERR_INPUT, "%s: the log file's path is too long", path);
    fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0)
        return err_set(err, DUET_ERR_INPUT, "%s: cannot open the log: %s", path, strerror(errno));
    if (log_fd > 2)
        close(log_fd);
    log_fd = fd;
    memcpy(log_path, path, strlen(path) + 1);
    return 0;
}

/*
 * Open the log file's path again (after logrotate moved it): the new file
 * takes the place of the old one under the same descriptor with dup2(2),
 * which is atomic, so a thread writing a line at that moment writes it whole
 * to one file or the other, never to a closed descriptor.
 */
int
log_reopen(struct duet_err *err)
{
    int fd;

    if (log_path[0] == '\0' || log_fd <= 2)
        return 0; /* stderr: nothing to reopen */
    fd = open(log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0)
        return err_set(err, DUET_ERR_INPUT, "%s: cannot reopen the log: %s", log_path,
                       strerror(errno));
    if (dup3(fd, log_fd, O_CLOEXEC) < 0) {
        int e = errno;
        close(fd);
        return err_set(err, DUET_ERR_INPUT, "%s: cannot reopen the log: %s", log_path,
                       strerror(e));
    }
    close(fd);
    return 0;
}

void
log_close(void)
{
    if (log_fd > 2)
        close(log_fd);
    log_fd = 2;
}

/*
 * Where escaped text goes: a log_line's buffer (fixed; cap keeps room back for
 * the closers and the "truncated" field) or a growing heap buffer (log_event).
 * A put that does not fit sets `failed` and writes nothing.
 */
struct sink {
    char *p;
    size_t len;
    size_t cap;
    bool grow;
    bool failed;
};

static bool
sink_put(struct sink *s, const void *data, size_t n)
{
    if (s->failed)
        return false;
    if (n == 0)
        return true;
    if (s->len > s->cap || n > s->cap - s->len) {
        size_t cap = s->cap;
        char *p;
        if (!s->grow || s->len > s->cap || n > SIZE_MAX / 4 - s->len) {
            s->failed = true;
            return false;
        }
        while (n > cap - s->len)
            cap = cap * 2 + 64;
        if ((p = realloc(s->p, cap)) == NULL) {
            s->failed = true;
            return false;
        }
        s->p = p;
        s->cap = cap;
    }
    memcpy(s->p + s->len, data, n);
    s->len += n;
    return true;
}

/* The length of the valid UTF-8 sequence at p (at most n bytes), or 0 (RFC 3629 section 4). */
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

/*
 * The escaped form of the character at p (n bytes left) into unit; returns its
 * length and sets *used to the input bytes it stands for.  See log.h for the
 * rules: RFC 8259 escapes, controls (C0, DEL, C1) as \u00XX, a byte that does
 * not start valid UTF-8 as the code point U+00XX, NUL as U+2400.
 */
static size_t
escape_unit(const unsigned char *p, size_t n, char unit[8], size_t *used)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char c = p[0];
    unsigned int cp;
    size_t k;

    *used = 1;
    switch (c) {
    case '"':
    case '\\':
        unit[0] = '\\';
        unit[1] = (char)c;
        return 2;
    case '\b':
        memcpy(unit, "\\b", 2);
        return 2;
    case '\f':
        memcpy(unit, "\\f", 2);
        return 2;
    case '\n':
        memcpy(unit, "\\n", 2);
        return 2;
    case '\r':
        memcpy(unit, "\\r", 2);
        return 2;
    case '\t':
        memcpy(unit, "\\t", 2);
        return 2;
    case '\0':
        memcpy(unit, "\xe2\x90\x80", 3);
        return 3;
    default:
        break;
    }
    if ((k = utf8_seq(p, n)) > 1) {
        *used = k;
        if (k == 2 && c == 0xC2 && p[1] < 0xA0) {
            cp = p[1]; /* a C1 control, U+0080-U+009F */
            goto u00;
        }
        memcpy(unit, p, k);
        return k;
    }
    cp = c;
    if (c >= 0x20 && c < 0x7F) {
        unit[0] = (char)c;
        return 1;
    }
    if (c >= 0xA0) { /* not UTF-8 here: the code point U+00XX, two bytes */
        unit[0] = (char)(0xC0 | (c >> 6));
        unit[1] = (char)(0x80 | (c & 0x3F));
        return 2;
    }
u00:
    memcpy(unit, "\\u00", 4);
    unit[4] = hex[cp >> 4];
    unit[5] = hex[cp & 0xF];
    return 6;
}

/*
 * A JSON string of the n bytes at v, its escaped form at most `limit` bytes
 * (at least the mark's length plus a little); a longer one is cut on a unit
 * boundary and ends with LOG_TRUNCATED_MARK, and *cut is set.  False when the
 * sink is full.
 */
/* A byte that stands for itself in a JSON string. */
static inline bool
plain(unsigned char c)
{
    return (unsigned char)(c - 0x20) < 0x5F && c != '"' && c != '\\';
}

static bool
put_quoted(struct sink *s, const char *v, size_t n, size_t limit, bool *cut)
{
    const unsigned char *p = (const unsigned char *)v;
    const size_t marklen = sizeof(LOG_TRUNCATED_MARK) - 1;
    size_t start, keep;
    char unit[8];

    /* Most values are short and plain: quoted and copied at once (a log line per request). */
    if (n + marklen <= limit && !s->failed && s->len <= s->cap && n + 2 <= s->cap - s->len) {
        size_t i = 0;
        while (i < n && plain(p[i]))
            i++;
        if (i == n) {
            s->p[s->len] = '"';
            memcpy(s->p + s->len + 1, v, n);
            s->p[s->len + 1 + n] = '"';
            s->len += n + 2;
            return true;
        }
    }
    if (!sink_put(s, "\"", 1))
        return false;
    start = keep = s->len;
    for (size_t i = 0; i < n;) {
        size_t used, ul, r = 0;
        size_t room = limit > s->len - start ? limit - (s->len - start) : 0;
        /*
         * A run of characters that stand for themselves goes in with one copy
         * (most values are plain ASCII: this is the per-request cost of a log
         * line); the run is looked at only as far as it could still fit.
         */
        while (i + r < n && r < room && plain(p[i + r]))
            r++;
        if (r > 0 && r + marklen <= room) {
            if (!sink_put(s, p + i, r))
                return false;
            keep = s->len;
            i += r;
            continue;
        }
        ul = escape_unit(p + i, n - i, unit, &used);
        if (s->len - start + ul > limit) {
            s->len = keep;
            sink_put(s, LOG_TRUNCATED_MARK, marklen);
            *cut = true;
            break;
        }
        if (!sink_put(s, unit, ul))
            return false;
        if (s->len - start + marklen <= limit)
            keep = s->len;
        i += used;
    }
    return sink_put(s, "\"", 1);
}

/* ---- log_event: a JSON tree written with the same escaping ---- */

#define EVENT_DEPTH 32

static bool put_value(struct sink *s, json_t *v, int depth, bool *cut);

/* The members of an object, "k":v,... (first: no comma before the first one). */
static bool
put_members(struct sink *s, json_t *o, int depth, bool first, bool *cut)
{
    const char *key;
    size_t klen;
    json_t *v;

    json_object_keylen_foreach(o, key, klen, v)
    {
        if (!first)
            sink_put(s, ",", 1);
        first = false;
        put_quoted(s, key, klen, LOG_VALUE_MAX, cut);
        sink_put(s, ":", 1);
        put_value(s, v, depth + 1, cut);
    }
    return !s->failed;
}

static bool
put_value(struct sink *s, json_t *v, int depth, bool *cut)
{
    char num[64];
    int n;

    if (depth > EVENT_DEPTH) {
        *cut = true;
        return sink_put(s, "null", 4);
    }
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        sink_put(s, "{", 1);
        put_members(s, v, depth, true, cut);
        return sink_put(s, "}", 1);
    case JSON_ARRAY:
        sink_put(s, "[", 1);
        for (size_t i = 0; i < json_array_size(v); i++) {
            if (i > 0)
                sink_put(s, ",", 1);
            put_value(s, json_array_get(v, i), depth + 1, cut);
        }
        return sink_put(s, "]", 1);
    case JSON_STRING:
        return put_quoted(s, json_string_value(v), json_string_length(v), LOG_VALUE_MAX, cut);
    case JSON_INTEGER:
        n = snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return sink_put(s, num, (size_t)n);
    case JSON_REAL:
        if (!isfinite(json_real_value(v)))
            return sink_put(s, "null", 4);
        /* jansson's form with JSON_REAL_PRECISION(6): %.6g, with ".0" when it looks integral */
        n = snprintf(num, sizeof(num), "%.6g", json_real_value(v));
        if (strpbrk(num, ".e") == NULL)
            n = snprintf(num, sizeof(num), "%.6g.0", json_real_value(v));
        return sink_put(s, num, (size_t)n);
    case JSON_TRUE:
        return sink_put(s, "true", 4);
    case JSON_FALSE:
        return sink_put(s, "false", 5);
    case JSON_NULL:
    default:
        return sink_put(s, "null", 4);
    }
}

void
log_event(const char *level, const char *event, json_t *fields)
{
    char ts[48];
    json_t *o = NULL;
    struct sink s = {.grow = true};
    bool cut = false;

    if (!level_on(level) || (o = json_object()) == NULL) {
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
    sink_put(&s, "{", 1);
    put_members(&s, o, 0, true, &cut);
    if (cut && json_object_get(o, "truncated") == NULL)
        sink_put(&s, ",\"truncated\":true", 17);
    sink_put(&s, "}\n", 2);
    json_decref(o);
    if (!s.failed)
        emit(s.p, s.len);
    free(s.p);
}

/* ---- log_line: per-request lines in a fixed buffer ---- */

static const char line_tail[] = ",\"truncated\":true";

/*
 * The line's buffer as a sink.  Kept back: a closer for each open level (and
 * `extra` for levels about to open), the tail and "}\n"; so len + depth + the
 * tail + 2 never exceeds the buffer, and closing and ending always have room.
 */
static struct sink
line_sink(struct log_line *l, size_t extra)
{
    size_t keep = (size_t)l->depth + extra + sizeof(line_tail) - 1 + 2;

    return (struct sink){.p = l->buf, .len = l->len, .cap = sizeof(l->buf) - keep};
}

/* The limit for a string written now: LOG_VALUE_MAX, or what the line has left. */
static size_t
line_limit(const struct sink *s)
{
    size_t left = s->cap - s->len;

    left = left > 2 ? left - 2 : 0; /* the quotes */
    return left < LOG_VALUE_MAX ? left : LOG_VALUE_MAX;
}

void
log_line_begin(struct log_line *l, const char *level, const char *event)
{
    char ts[48];
    struct sink s;
    bool cut = false;

    l->len = 0;
    l->depth = 0;
    l->skipped = 0;
    l->off = !level_on(level);
    if (l->off)
        return;
    timestamp(ts, sizeof(ts));
    l->first = false;
    l->nospace = false;
    l->truncated = false;
    s = line_sink(l, 0);
    sink_put(&s, "{\"time\":", 8);
    put_quoted(&s, ts, strlen(ts), LOG_VALUE_MAX, &cut);
    sink_put(&s, ",\"level\":", 9);
    put_quoted(&s, level, strlen(level), LOG_VALUE_MAX, &cut);
    sink_put(&s, ",\"event\":", 9);
    put_quoted(&s, event, strlen(event), LOG_VALUE_MAX, &cut);
    l->len = s.failed ? 1 : s.len; /* cannot fail with short names; "{" if it did */
    l->first = s.failed;
    l->truncated = cut || s.failed;
}

/*
 * Start a field: the comma and, in an object, "key":.  False (and the line
 * marked truncated) when it is inside a container that was left out.
 */
static bool
field_begin(struct log_line *l, struct sink *s, const char *key, size_t extra)
{
    bool cut = false;
    bool in_array;

    if (l->off)
        return false;
    in_array = l->depth > 0 && l->closers[l->depth - 1] == ']';
    if (l->skipped > 0) {
        l->truncated = true;
        return false;
    }
    *s = line_sink(l, extra);
    if (!l->first)
        sink_put(s, ",", 1);
    if (!in_array) {
        const char *k = key != NULL ? key : "";
        put_quoted(s, k, strlen(k), LOG_VALUE_MAX, &cut);
        sink_put(s, ":", 1);
    }
    l->truncated |= cut;
    return true;
}

/* Finish a field: keep it, or, when it did not fit, leave it out whole. */
static bool
field_end(struct log_line *l, struct sink *s, bool cut)
{
    if (s->failed) {
        l->truncated = true;
        return false;
    }
    l->len = s->len;
    l->first = false;
    l->truncated |= cut;
    return true;
}

void
log_line_strn(struct log_line *l, const char *key, const char *value, size_t n)
{
    struct sink s;
    bool cut = false;

    if (!field_begin(l, &s, key, 0))
        return;
    if (value == NULL)
        sink_put(&s, "null", 4);
    else
        put_quoted(&s, value, n, line_limit(&s), &cut);
    field_end(l, &s, cut);
}

void
log_line_str(struct log_line *l, const char *key, const char *value)
{
    log_line_strn(l, key, value, value != NULL ? strlen(value) : 0);
}

void
log_line_bool(struct log_line *l, const char *key, bool value)
{
    struct sink s;

    if (!field_begin(l, &s, key, 0))
        return;
    sink_put(&s, value ? "true" : "false", value ? 4 : 5);
    field_end(l, &s, false);
}

void
log_line_num(struct log_line *l, const char *key, double value, int decimals)
{
    char num[64];
    int n;
    struct sink s;

    if (!field_begin(l, &s, key, 0))
        return;
    if (!isfinite(value)) {
        sink_put(&s, "null", 4); /* JSON has no NaN or infinity */
    } else {
        decimals = decimals < 0 ? 0 : decimals > 17 ? 17 : decimals;
        /*
         * Beyond 1e15, %f writes integers of many digits that readers (jansson) cannot hold
         * in a 64-bit integer; %.17g keeps an exponent from 1e17 on and is at most 24 bytes.
         */
        if (fixed_fast(value, decimals, num, sizeof(num), &n))
            ;
        else if (fabs(value) < 1e15)
            n = snprintf(num, sizeof(num), "%.*f", decimals, value);
        else
            n = snprintf(num, sizeof(num), "%.17g", value);
        sink_put(&s, num, n > 0 ? (size_t)n : 0);
    }
    field_end(l, &s, false);
}

void
log_line_strv(struct log_line *l, const char *key, const char *const *values, size_t n)
{
    log_line_open_array(l, key);
    for (size_t i = 0; i < n; i++)
        log_line_str(l, NULL, values[i]);
    log_line_close(l);
}

static void
line_open(struct log_line *l, const char *key, char open, char close)
{
    struct sink s;

    if (l->off)
        return;
    if (l->skipped > 0 || l->depth >= LOG_LINE_DEPTH || !field_begin(l, &s, key, 1)) {
        l->skipped++;
        l->truncated = true;
        return;
    }
    sink_put(&s, &open, 1);
    if (!field_end(l, &s, false)) {
        l->skipped++;
        return;
    }
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
    if (l->off)
        return;
    if (l->skipped > 0) {
        l->skipped--;
        return;
    }
    if (l->depth == 0)
        return;
    /* room for every closer is kept back (line_sink) */
    l->buf[l->len++] = l->closers[--l->depth];
    l->first = false;
}

void
log_line_end(struct log_line *l)
{
    if (l->off)
        return;
    while (l->depth > 0)
        l->buf[l->len++] = l->closers[--l->depth];
    if (l->truncated) {
        memcpy(l->buf + l->len, line_tail, sizeof(line_tail) - 1);
        l->len += sizeof(line_tail) - 1;
    }
    l->buf[l->len++] = '}';
    l->buf[l->len++] = '\n';
    emit(l->buf, l->len);
}

void
log_msg(const char *level, const char *event, const char *fmt, ...)
{
    char small[256];
    char *msg = small;
    va_list ap;
    int n;

    if (!level_on(level))
        return;
    va_start(ap, fmt);
    n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    if ((size_t)n >= sizeof(small)) {
        /* the whole message on the heap; it is cut like any value when written */
        if ((msg = malloc((size_t)n + 1)) != NULL) {
            va_start(ap, fmt);
            vsnprintf(msg, (size_t)n + 1, fmt, ap);
            va_end(ap);
        } else {
            msg = small;
            n = (int)sizeof(small) - 1;
        }
    }
    log_event(level, event, json_pack("{s:o}", "msg", json_stringn_nocheck(msg, (size_t)n)));
    if (msg != small)
        free(msg);
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
