/* SPDX-License-Identifier: Apache-2.0 */
/*
 * logline_fuzz.c - libFuzzer target for the JSON-lines log writer
 * (src/util/log.c).  The input is a Host value (any bytes, repeated up to
 * 64 KiB) and then a program of builder calls: strings of any bytes and
 * lengths, numbers, booleans, objects and arrays opened and closed in any
 * order.  The property is more than "does not crash": each line written by
 * the log_line_* builder, log_event() and log_msg()
 *   - is one line: it ends with the only newline it holds, and has no NUL;
 *   - parses with json_loads (default flags) as an object with the event;
 *   - the builder's line is at most LOG_LINE_MAX bytes;
 *   - the Host value reads back as the bytes that went in, shown by a
 *     reference mapping written here from the Unicode table of well-formed
 *     UTF-8 (other bytes as U+00XX, NUL as U+2400), or as a prefix of that
 *     ending in LOG_TRUNCATED_MARK, with "truncated": true on the line.
 * Any violation abort()s.
 */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <jansson.h>

#include "util/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define HOST_MAX (64 * 1024) /* 1 MiB values are in the unit tests; this keeps runs fast */

static int memfd = -1;

static void
die(const char *what, const char *line)
{
    fprintf(stderr, "logline_fuzz: %s\nline: %.2000s\n", what, line != NULL ? line : "(none)");
    abort();
}

/* Send the log to a memory file this target reads back. */
static void
capture_init(void)
{
    char path[64];
    struct duet_err err;

    if (memfd >= 0)
        return;
    memfd = memfd_create("logline_fuzz", 0);
    if (memfd < 0)
        die("memfd_create failed", NULL);
    snprintf(path, sizeof(path), "/proc/self/fd/%d", memfd);
    if (log_open(path, &err) != 0)
        die(err.msg, NULL);
}

/* What was written since the last call, NUL-terminated (free()); the file is emptied. */
static char *
capture_take(size_t *n)
{
    off_t end = lseek(memfd, 0, SEEK_END);
    char *text;

    if (end < 0 || (text = malloc((size_t)end + 1)) == NULL)
        die("cannot read the log back", NULL);
    if (pread(memfd, text, (size_t)end, 0) != end)
        die("short read of the log", NULL);
    text[end] = '\0';
    if (ftruncate(memfd, 0) != 0)
        die("cannot empty the log", NULL);
    *n = (size_t)end;
    return text;
}

/* Length of the well-formed UTF-8 sequence at p (Unicode 15, table 3-7), or 0. */
static size_t
wellformed(const uint8_t *p, size_t n)
{
    static const struct {
        uint8_t lo0, hi0, lo1, hi1;
        size_t len;
    } t[] = {
        {0x00, 0x7F, 0, 0, 1},       {0xC2, 0xDF, 0x80, 0xBF, 2}, {0xE0, 0xE0, 0xA0, 0xBF, 3},
        {0xE1, 0xEC, 0x80, 0xBF, 3}, {0xED, 0xED, 0x80, 0x9F, 3}, {0xEE, 0xEF, 0x80, 0xBF, 3},
        {0xF0, 0xF0, 0x90, 0xBF, 4}, {0xF1, 0xF3, 0x80, 0xBF, 4}, {0xF4, 0xF4, 0x80, 0x8F, 4},
    };

    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        if (p[0] < t[i].lo0 || p[0] > t[i].hi0)
            continue;
        if (t[i].len > n)
            return 0;
        if (t[i].len > 1 && (p[1] < t[i].lo1 || p[1] > t[i].hi1))
            return 0;
        for (size_t k = 2; k < t[i].len; k++) {
            if (p[k] < 0x80 || p[k] > 0xBF)
                return 0;
        }
        return t[i].len;
    }
    return 0;
}

/* The reference: what a reader of the log should get back for these bytes (free()). */
static char *
reference(const uint8_t *v, size_t n, size_t *outlen)
{
    char *out = malloc(3 * n + 1);
    size_t o = 0;

    if (out == NULL)
        die("out of memory", NULL);
    for (size_t i = 0; i < n;) {
        size_t k = wellformed(v + i, n - i);
        if (v[i] == 0) {
            memcpy(out + o, "\xe2\x90\x80", 3);
            o += 3;
            i++;
        } else if (k > 0) {
            memcpy(out + o, v + i, k);
            o += k;
            i += k;
        } else {
            out[o++] = (char)(0xC0 | (v[i] >> 6));
            out[o++] = (char)(0x80 | (v[i] & 0x3F));
            i++;
        }
    }
    *outlen = o;
    return out;
}

/* One line, valid JSON, an object of this event; returns it. */
static json_t *
check_line(const char *text, size_t n, const char *event)
{
    json_error_t je;
    json_t *j;

    if (n == 0 || text[n - 1] != '\n')
        die("no line, or no newline at its end", text);
    if (memchr(text, '\n', n - 1) != NULL)
        die("a raw newline inside the line", text);
    if (strlen(text) != n)
        die("a NUL byte in the line", text);
    j = json_loads(text, 0, &je);
    if (j == NULL)
        die(je.text, text);
    if (!json_is_object(j) || !json_is_string(json_object_get(j, "event")) ||
        strcmp(json_string_value(json_object_get(j, "event")), event) != 0)
        die("not an object with its event", text);
    return j;
}

/* The Host value read back: exactly the reference, or a marked prefix of it on a cut line. */
static void
check_host(json_t *j, const char *ref, size_t reflen, const char *text)
{
    json_t *h = json_object_get(j, "host");
    const size_t ml = sizeof(LOG_TRUNCATED_MARK) - 1;
    const char *v;
    size_t n;

    if (h == NULL) {
        if (!json_is_true(json_object_get(j, "truncated")))
            die("the host field is missing from a line not marked truncated", text);
        return;
    }
    if (!json_is_string(h))
        die("the host is not a string", text);
    v = json_string_value(h);
    n = json_string_length(h);
    if (n == reflen && memcmp(v, ref, n) == 0)
        return;
    if (n < ml || memcmp(v + n - ml, LOG_TRUNCATED_MARK, ml) != 0)
        die("the host value does not come back", text);
    if (n - ml > reflen || memcmp(v, ref, n - ml) != 0)
        die("the cut host value is not a prefix of the value", text);
    if (!json_is_true(json_object_get(j, "truncated")))
        die("a cut value on a line without \"truncated\": true", text);
}

/* Input reader. */
struct in {
    const uint8_t *p;
    size_t n;
};

static uint8_t
in_u8(struct in *in)
{
    uint8_t v = 0;

    if (in->n > 0) {
        v = *in->p++;
        in->n--;
    }
    return v;
}

static size_t
in_chunk(struct in *in, const uint8_t **out)
{
    size_t len = (size_t)in_u8(in) | (size_t)in_u8(in) << 8;

    if (len > in->n)
        len = in->n;
    *out = in->p;
    in->p += len;
    in->n -= len;
    return len;
}

static const char *
in_key(struct in *in)
{
    static const char *const keys[] = {"k", NULL, "path", "\x01\"k\\\n\xff", "", "truncated"};
    return keys[in_u8(in) % (sizeof(keys) / sizeof(keys[0]))];
}

/* Run the builder program of the rest of the input. */
static void
run_program(struct log_line *l, struct in *in)
{
    char *buf = NULL;

    while (in->n > 0) {
        const uint8_t *c;
        size_t len;
        double d;
        uint8_t op = in_u8(in);
        const char *key = in_key(in);

        switch (op % 9) {
        case 0: /* a C string (up to its first NUL), or null */
            len = in_chunk(in, &c);
            free(buf);
            buf = malloc(len + 1);
            if (buf == NULL)
                return;
            memcpy(buf, c, len);
            buf[len] = '\0';
            log_line_str(l, key, len == 1 && c[0] == 0xFF ? NULL : buf);
            break;
        case 1:
            len = in_chunk(in, &c);
            log_line_strn(l, key, (const char *)c, len);
            break;
        case 2:
            log_line_bool(l, key, in_u8(in) & 1);
            break;
        case 3: {
            uint8_t b[8];
            for (int i = 0; i < 8; i++)
                b[i] = in_u8(in);
            memcpy(&d, b, sizeof(d));
            log_line_num(l, key, d, (int8_t)in_u8(in));
            break;
        }
        case 4:
            log_line_open(l, key);
            break;
        case 5:
            log_line_open_array(l, key);
            break;
        case 6:
            log_line_close(l);
            break;
        case 7: { /* an array of up to 4 strings */
            const char *v[4];
            char *s[4] = {NULL, NULL, NULL, NULL};
            size_t k = in_u8(in) % 5;
            for (size_t i = 0; i < k; i++) {
                len = in_chunk(in, &c);
                s[i] = strndup((const char *)c, len);
                v[i] = s[i] != NULL ? s[i] : "";
            }
            log_line_strv(l, key, v, k);
            for (size_t i = 0; i < k; i++)
                free(s[i]);
            break;
        }
        default: { /* a long value: a chunk repeated up to 64 KiB */
            size_t rep = (size_t)in_u8(in) * 256 + 1;
            char *big;
            len = in_chunk(in, &c);
            if (len == 0 || len * rep > 65536)
                rep = len == 0 ? 0 : 65536 / len;
            big = malloc(len * rep + 1);
            if (big == NULL)
                return;
            for (size_t i = 0; i < rep; i++)
                memcpy(big + i * len, c, len);
            log_line_strn(l, key, big, len * rep);
            free(big);
            break;
        }
        }
    }
    free(buf);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct in in = {data, size};
    const uint8_t *hv;
    size_t hlen, rep, reflen, n;
    uint8_t *host;
    char *ref, *text;
    struct log_line *l;
    json_t *j;

    capture_init();
    /* the Host value: a chunk, repeated (the count is the next byte) up to HOST_MAX */
    hlen = in_chunk(&in, &hv);
    rep = (size_t)in_u8(&in) * 64 + 1;
    if (hlen == 0 || hlen * rep > HOST_MAX)
        rep = hlen == 0 ? 0 : HOST_MAX / hlen;
    host = malloc(hlen * rep + 1);
    l = malloc(sizeof(*l));
    if (host == NULL || l == NULL) {
        free(host);
        free(l);
        return 0;
    }
    for (size_t i = 0; i < rep; i++)
        memcpy(host + i * hlen, hv, hlen);
    hlen *= rep;
    host[hlen] = '\0';
    ref = reference(host, hlen, &reflen);

    /* the builder, as log_authz() uses it, then the program */
    log_line_begin(l, "warn", "authz");
    log_line_str(l, "decision", "deny");
    log_line_strn(l, "host", (const char *)host, hlen);
    run_program(l, &in);
    log_line_end(l);
    text = capture_take(&n);
    if (n > LOG_LINE_MAX)
        die("the line is longer than LOG_LINE_MAX", text);
    j = check_line(text, n, "authz");
    check_host(j, ref, reflen, text);
    json_decref(j);
    free(text);

    /* log_event with the same bytes (not checked for UTF-8 by jansson) */
    log_event("info", "event", json_pack("{s:o,s:[o]}", "host",
                                         json_stringn_nocheck((const char *)host, hlen), "list",
                                         json_stringn_nocheck((const char *)host, hlen)));
    text = capture_take(&n);
    j = check_line(text, n, "event");
    check_host(j, ref, reflen, text);
    json_decref(j);
    free(text);

    /* log_msg: the value up to its first NUL */
    log_msg("error", "msg", "%s", (const char *)host);
    text = capture_take(&n);
    j = check_line(text, n, "msg");
    if (!json_is_string(json_object_get(j, "msg")))
        die("no msg", text);
    json_decref(j);
    free(text);

    free(ref);
    free(host);
    free(l);
    return 0;
}
