/* SPDX-License-Identifier: Apache-2.0 */
/*
 * log_test.c - the JSON-lines writer: every line parses as JSON, strings are
 * escaped per RFC 8259, bytes that are not UTF-8 cannot break a line, a long
 * value is cut inside its string on a character boundary and marked, and a line
 * with more fields than fit drops whole fields and says so; the same for
 * log_msg() and log_event().
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "proxy/metrics.h"
#include "util/log.h"

static char path[] = "/tmp/duet-log-test.XXXXXX";

/* Write one line with the given fields, read it back as JSON. */
static json_t *
one_line(const char *const *kv, size_t n)
{
    struct duet_err err;
    struct log_line l;
    int fd = mkstemp(path);
    json_error_t je;
    json_t *j;

    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(log_open(path, &err), 0);
    log_line_begin(&l, "info", "authz");
    for (size_t i = 0; i + 1 < n; i += 2)
        log_line_str(&l, kv[i], kv[i + 1]);
    log_line_end(&l);
    log_close();
    j = json_load_file(path, 0, &je);
    if (j == NULL)
        fail_msg("line does not parse: %s", je.text);
    unlink(path);
    strcpy(path, "/tmp/duet-log-test.XXXXXX");
    return j;
}

static void
test_plain_fields(void **state)
{
    const char *kv[] = {"rule", "--allow any", "identity", NULL};
    json_t *j = one_line(kv, 4);

    (void)state;
    assert_string_equal(json_string_value(json_object_get(j, "event")), "authz");
    assert_string_equal(json_string_value(json_object_get(j, "level")), "info");
    assert_string_equal(json_string_value(json_object_get(j, "rule")), "--allow any");
    assert_true(json_is_null(json_object_get(j, "identity")));
    assert_true(json_is_string(json_object_get(j, "time")));
    json_decref(j);
}

static void
test_escaping(void **state)
{
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"a\"b", "a\"b"},
        {"back\\slash", "back\\slash"},
        {"tab\there", "tab\there"},
        {"new\nline", "new\nline"},
        {"caf\xc3\xa9", "caf\xc3\xa9"},           /* valid UTF-8 kept */
        {"bad\xff" "byte", "bad\xc3\xbf" "byte"}, /* 0xFF -> \u00ff */
        {"cut\xc3", "cut\xc3\x83"},               /* truncated sequence -> \u00c3 */
        {"\xed\xa0\x80", "\xc3\xad\xc2\xa0\xc2\x80"}, /* surrogate: each byte escaped */
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *kv[] = {"path", cases[i].in};
        json_t *j = one_line(kv, 2);
        assert_string_equal(json_string_value(json_object_get(j, "path")), cases[i].out);
        json_decref(j);
    }
}

/*
 * A value longer than a line (the Host header of issue 9 item 3) is cut inside its string, on
 * a character boundary, and marked; the fields after it are kept and the line says so.
 */
static void
test_overlong_value_is_cut_inside(void **state)
{
    char *big = malloc(6000);
    const char *kv[] = {"first", "kept", "path", big, "after", "kept too"};
    const char *path_v;
    json_t *j;

    (void)state;
    memset(big, 'x', 5999);
    big[5999] = '\0';
    j = one_line(kv, 6);
    assert_string_equal(json_string_value(json_object_get(j, "first")), "kept");
    path_v = json_string_value(json_object_get(j, "path"));
    assert_non_null(path_v);
    assert_true(strlen(path_v) <= LOG_VALUE_MAX);
    assert_true(strlen(path_v) > LOG_VALUE_MAX / 2);
    assert_int_equal(strspn(path_v, "x"), strlen(path_v) - strlen(LOG_TRUNCATED_MARK));
    assert_string_equal(path_v + strspn(path_v, "x"), LOG_TRUNCATED_MARK);
    assert_string_equal(json_string_value(json_object_get(j, "after")), "kept too");
    assert_true(json_is_true(json_object_get(j, "truncated")));
    json_decref(j);
    free(big);
}

/* ---- every line is one valid JSON object, whatever the values (issue 9 item 3) ---- */

/* The file's text; it must be exactly one line that json_loads (default flags) accepts. */
static json_t *
read_one_line(const char *file, char **text_out)
{
    FILE *f = fopen(file, "r");
    char *text = NULL;
    size_t cap = 0, n = 0, got;
    json_error_t je;
    json_t *j;

    assert_non_null(f);
    do {
        if (n + 65536 > cap) {
            cap = (n + 65536) * 2;
            text = realloc(text, cap);
            assert_non_null(text);
        }
        got = fread(text + n, 1, cap - n - 1, f);
        n += got;
    } while (got > 0);
    fclose(f);
    text[n] = '\0';
    if (n == 0 || text[n - 1] != '\n')
        fail_msg("the log does not end with a newline (%zu bytes)", n);
    if (memchr(text, '\n', n - 1) != NULL)
        fail_msg("more than one line: %.200s", text);
    if (memchr(text, '\0', n) != NULL)
        fail_msg("a NUL byte in the line");
    j = json_loads(text, 0, &je);
    if (j == NULL)
        fail_msg("the line does not parse (%s at %d): %.300s", je.text, je.position, text);
    if (text_out != NULL)
        *text_out = text;
    else
        free(text);
    return j;
}

static void
capture_begin(void)
{
    struct duet_err err;
    int fd;

    strcpy(path, "/tmp/duet-log-test.XXXXXX"); /* a failed test may have left it filled in */
    fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(log_open(path, &err), 0);
}

static json_t *
capture_end(char **text)
{
    json_t *j;

    log_close();
    j = read_one_line(path, text);
    unlink(path);
    strcpy(path, "/tmp/duet-log-test.XXXXXX");
    return j;
}

/* A value of n bytes: ASCII, two-byte UTF-8, and characters JSON escapes, interleaved. */
static char *
mixed_value(size_t n)
{
    static const char unit[] = "ab\xc3\xa9\"\\\n\t<\x01";
    char *v = malloc(n + 1);

    assert_non_null(v);
    for (size_t i = 0; i < n; i++)
        v[i] = unit[i % (sizeof(unit) - 1)];
    /* never end inside the two-byte character */
    if (n > 0 && (unsigned char)v[n - 1] == 0xc3)
        v[n - 1] = 'z';
    v[n] = '\0';
    return v;
}

/* got is what the log kept of want: a prefix cut on a character boundary, then the mark. */
static void
assert_cut_prefix(const char *got, const char *want, const char *what)
{
    size_t gl, ml = strlen(LOG_TRUNCATED_MARK);

    if (got == NULL)
        fail_msg("%s: missing", what);
    gl = strlen(got);
    if (gl < ml || strcmp(got + gl - ml, LOG_TRUNCATED_MARK) != 0)
        fail_msg("%s: not marked as truncated: ...%s", what, got + (gl > 40 ? gl - 40 : 0));
    if (gl > LOG_VALUE_MAX)
        fail_msg("%s: %zu bytes kept, more than %d", what, gl, LOG_VALUE_MAX);
    if (gl - ml < 64 || memcmp(got, want, gl - ml) != 0)
        fail_msg("%s: the %zu bytes kept are not a prefix of the value", what, gl - ml);
}

static const size_t big_sizes[] = {3900, 4090, 5 * 1024, 64 * 1024, 1024 * 1024};

/* The builder: a long Host, a long subject in an object, long SANs in an array. */
static void
test_long_values_line_builder(void **state)
{
    (void)state;
    for (size_t k = 0; k < sizeof(big_sizes) / sizeof(big_sizes[0]); k++) {
        char *v = mixed_value(big_sizes[k]);
        const char *sans[3] = {v, "URI:spiffe://x/short", v};
        struct log_line l;
        json_t *j, *id;
        char *text;

        capture_begin();
        log_line_begin(&l, "warn", "authz");
        log_line_str(&l, "listener", "main");
        log_line_str(&l, "host", v);
        log_line_open(&l, "identity");
        log_line_str(&l, "subject", v);
        log_line_strv(&l, "sans", sans, 3);
        log_line_close(&l);
        log_line_str(&l, "decision", "deny");
        log_line_num(&l, "duration_ms", 1.5, 3);
        log_line_end(&l);
        j = capture_end(&text);
        assert_true(strlen(text) <= LOG_LINE_MAX);
        assert_string_equal(json_string_value(json_object_get(j, "listener")), "main");
        assert_cut_prefix(json_string_value(json_object_get(j, "host")), v, "host");
        /* the decision after the long values is still there */
        assert_string_equal(json_string_value(json_object_get(j, "decision")), "deny");
        assert_true(json_is_true(json_object_get(j, "truncated")));
        id = json_object_get(j, "identity");
        assert_true(json_is_object(id));
        if (json_object_get(id, "subject") != NULL)
            assert_cut_prefix(json_string_value(json_object_get(id, "subject")), v, "subject");
        free(text);
        json_decref(j);
        free(v);
    }
}

/* log_msg and log_event: the same cut inside the string, whatever the length. */
static void
test_long_values_msg_and_event(void **state)
{
    (void)state;
    for (size_t k = 0; k < sizeof(big_sizes) / sizeof(big_sizes[0]); k++) {
        char *v = mixed_value(big_sizes[k]);
        json_t *j;

        capture_begin();
        log_msg("error", "reload", "%s", v);
        j = capture_end(NULL);
        assert_string_equal(json_string_value(json_object_get(j, "event")), "reload");
        assert_cut_prefix(json_string_value(json_object_get(j, "msg")), v, "msg");
        json_decref(j);

        capture_begin();
        log_event("error", "upstream_error",
                  json_pack("{s:s,s:s,s:{s:s},s:[s]}", "error", v, "upstream", "127.0.0.1:1",
                            "nested", "deep", v, "list", v));
        j = capture_end(NULL);
        assert_cut_prefix(json_string_value(json_object_get(j, "error")), v, "error");
        assert_string_equal(json_string_value(json_object_get(j, "upstream")), "127.0.0.1:1");
        assert_cut_prefix(json_string_value(json_object_get(json_object_get(j, "nested"), "deep")),
                          v, "nested.deep");
        assert_cut_prefix(json_string_value(json_array_get(json_object_get(j, "list"), 0)), v,
                          "list[0]");
        assert_true(json_is_true(json_object_get(j, "truncated")));
        json_decref(j);
        free(v);
    }
}

/* What the log shows for byte b of a value that is not valid UTF-8 there. */
static size_t
shown_as(unsigned char b, char *out)
{
    if (b == 0) { /* U+2400 SYMBOL FOR NULL: json_loads refuses \u0000 by default */
        memcpy(out, "\xe2\x90\x80", 3);
        return 3;
    }
    if (b < 0x80) {
        out[0] = (char)b;
        return 1;
    }
    out[0] = (char)(0xc0 | (b >> 6)); /* the code point U+00XX */
    out[1] = (char)(0x80 | (b & 0x3f));
    return 2;
}

/* Every byte 0x00-0xff in one value (no run of them is valid UTF-8), through every writer. */
static void
test_every_byte(void **state)
{
    unsigned char all[257]; /* 0x00-0xff, then a terminator for the C-string writers */
    char want[1024];
    size_t wl = 0;
    struct log_line l;
    json_t *j, *s;

    (void)state;
    for (int b = 0; b < 256; b++) {
        all[b] = (unsigned char)b;
        wl += shown_as((unsigned char)b, want + wl);
    }
    all[256] = '\0';
    capture_begin();
    log_line_begin(&l, "info", "authz");
    log_line_strn(&l, "path", (const char *)all, 256);
    log_line_str(&l, "tail", (const char *)all + 1); /* a C string: 0x01-0xff */
    log_line_end(&l);
    j = capture_end(NULL);
    s = json_object_get(j, "path");
    assert_int_equal(json_string_length(s), wl);
    assert_memory_equal(json_string_value(s), want, wl);
    s = json_object_get(j, "tail");
    assert_int_equal(json_string_length(s), wl - 3);
    assert_memory_equal(json_string_value(s), want + 3, wl - 3);
    assert_null(json_object_get(j, "truncated"));
    json_decref(j);

    capture_begin();
    log_event("info", "x", json_pack("{s:o}", "raw", json_stringn_nocheck((char *)all, 256)));
    j = capture_end(NULL);
    s = json_object_get(j, "raw");
    assert_int_equal(json_string_length(s), wl);
    assert_memory_equal(json_string_value(s), want, wl);
    json_decref(j);

    capture_begin();
    log_msg("warn", "x", "%s", (const char *)all + 1);
    j = capture_end(NULL);
    s = json_object_get(j, "msg");
    assert_int_equal(json_string_length(s), wl - 3);
    assert_memory_equal(json_string_value(s), want + 3, wl - 3);
    json_decref(j);
}

/* Sequences that are not UTF-8 are shown byte by byte; valid ones are kept. */
static void
test_invalid_utf8(void **state)
{
    static const struct {
        const char *in;
        size_t n;
    } cases[] = {
        {"\xc0\x80", 2},         /* overlong NUL */
        {"\xe0\x80\xaf", 3},     /* overlong '/' */
        {"\xf0\x80\x80\xaf", 4}, /* overlong '/' */
        {"\xed\xa0\x80", 3},     /* surrogate */
        {"\xf4\x90\x80\x80", 4}, /* above U+10FFFF */
        {"\xf5\x80\x80\x80", 4}, {"\x80", 1}, {"\xbf\xbf", 2},
        {"\xe2\x82", 2}, /* cut at the end */
        {"\xfe\xff", 2},  {"a\0b", 3},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char want[64];
        size_t wl = 0;
        struct log_line l;
        json_t *j, *s;

        for (size_t k = 0; k < cases[i].n; k++)
            wl += shown_as((unsigned char)cases[i].in[k], want + wl);
        capture_begin();
        log_line_begin(&l, "info", "authz");
        log_line_strn(&l, "host", cases[i].in, cases[i].n);
        log_line_end(&l);
        j = capture_end(NULL);
        s = json_object_get(j, "host");
        if (json_string_length(s) != wl || memcmp(json_string_value(s), want, wl) != 0)
            fail_msg("case %zu: not shown byte by byte", i);
        json_decref(j);
    }
}

/* Numbers JSON cannot hold are null; huge ones keep their exponent. */
static void
test_numbers(void **state)
{
    struct log_line l;
    json_t *j;

    (void)state;
    capture_begin();
    log_line_begin(&l, "info", "x");
    log_line_num(&l, "huge", 1e300, 3);
    log_line_num(&l, "nan", NAN, 3);
    log_line_num(&l, "inf", INFINITY, 3);
    log_line_num(&l, "minus_inf", -INFINITY, 0);
    log_line_num(&l, "many_decimals", 0.5, 500);
    log_line_num(&l, "neg_decimals", 2.25, -4);
    log_line_num(&l, "ms", 12.3456, 3);
    log_line_num(&l, "big_integer", -1.74e41, 0); /* 42 digits with %.0f: found by logline_fuzz */
    log_line_num(&l, "near_int64", 9.3e18, 0);
    log_line_end(&l);
    j = capture_end(NULL);
    assert_true(json_number_value(json_object_get(j, "huge")) > 9.9e299);
    assert_true(json_is_null(json_object_get(j, "nan")));
    assert_true(json_is_null(json_object_get(j, "inf")));
    assert_true(json_is_null(json_object_get(j, "minus_inf")));
    assert_true(json_number_value(json_object_get(j, "many_decimals")) == 0.5);
    assert_true(json_number_value(json_object_get(j, "neg_decimals")) == 2.0);
    assert_true(json_number_value(json_object_get(j, "ms")) == 12.346);
    assert_true(json_number_value(json_object_get(j, "big_integer")) == -1.74e41);
    assert_true(json_number_value(json_object_get(j, "near_int64")) == 9.3e18);
    json_decref(j);
}

/*
 * Numbers with 0 to 3 decimals (the audit lines' status and duration_ms) are
 * written without printf: the text is the one "%.*f" gives, ties and edges
 * included.
 */
static void
test_numbers_as_printf_writes_them(void **state)
{
    static const double edge[] = {0,     0.0005,      0.0015,   0.00049999, 1.0005,   2.5,
                                  0.125, 200,         999.9995, 12.3456,    0.001,    1e9 - 1,
                                  1e9,   123456.7894, -0.2,     -3.5,       0.9999996};
    uint64_t x = 0x9e3779b97f4a7c15ULL;

    (void)state;
    for (size_t i = 0; i < 2000; i++) {
        double v;
        int dec = (int)(i % 4);
        char want[64], *text = NULL, key[8];
        struct log_line l;
        json_t *j;
        const char *at;

        if (i < sizeof(edge) / sizeof(edge[0]) * 4) {
            v = edge[i / 4];
        } else {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            v = (double)(x % 100000000) / (double)(1u << (x >> 60));
        }
        snprintf(want, sizeof(want), "%.*f", dec, v);
        capture_begin();
        log_line_begin(&l, "info", "x");
        log_line_num(&l, "n", v, dec);
        log_line_end(&l);
        j = capture_end(&text);
        snprintf(key, sizeof(key), "\"n\":");
        at = text != NULL ? strstr(text, key) : NULL;
        if (at == NULL || strncmp(at + 4, want, strlen(want)) != 0 || at[4 + strlen(want)] != '}')
            fail_msg("%.17g with %d decimals: %s, printf writes %s", v, dec, text, want);
        free(text);
        json_decref(j);
    }
}

/* Containers left open, closed twice, nested too deep, keys where none go: still JSON. */
static void
test_structure_misuse(void **state)
{
    struct log_line l;
    json_t *j, *o;

    (void)state;
    capture_begin();
    log_line_begin(&l, "info", "x");
    log_line_close(&l); /* nothing open */
    log_line_str(&l, NULL, "no key at the top");
    for (int i = 0; i < LOG_LINE_DEPTH + 4; i++)
        log_line_open(&l, "o");
    log_line_str(&l, "deepest", "x");
    for (int i = 0; i < LOG_LINE_DEPTH + 4; i++)
        log_line_close(&l);
    log_line_open_array(&l, "a");
    log_line_str(&l, "key in an array", "y");
    log_line_open(&l, NULL);
    log_line_bool(&l, "b", true);
    /* left open */
    log_line_end(&l);
    j = capture_end(NULL);
    o = json_object_get(j, "o");
    for (int i = 1; i < LOG_LINE_DEPTH && o != NULL; i++)
        o = json_object_get(o, "o");
    assert_true(json_is_object(o));
    assert_true(json_is_true(json_object_get(j, "truncated")));
    assert_string_equal(json_string_value(json_array_get(json_object_get(j, "a"), 0)), "y");
    assert_true(json_is_true(json_object_get(json_array_get(json_object_get(j, "a"), 1), "b")));
    json_decref(j);
}

/* A line with more than fits: full fields are dropped, the line stays valid and bounded. */
static void
test_full_line(void **state)
{
    char *v = malloc(901);
    struct log_line l;
    char key[16];
    char *text;
    json_t *j;

    (void)state;
    assert_non_null(v);
    memset(v, 'v', 900);
    v[900] = '\0';
    capture_begin();
    log_line_begin(&l, "info", "x");
    for (int i = 0; i < 40; i++) {
        snprintf(key, sizeof(key), "f%d", i);
        log_line_open(&l, key);
        log_line_str(&l, "v", v);
        log_line_close(&l);
    }
    log_line_end(&l);
    j = capture_end(&text);
    assert_true(strlen(text) <= LOG_LINE_MAX);
    assert_true(json_is_true(json_object_get(j, "truncated")));
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "f0"), "v")), v);
    assert_null(json_object_get(j, "f39"));
    free(text);
    json_decref(j);
    free(v);
}

/*
 * The Prometheus label escaper (src/proxy/metrics.c) does for /metrics what
 * the log does for lines; it is tested here because this is the unit test
 * linked with the proxy code.  Text format 0.0.4: \\, \" and \n; bytes the
 * format cannot carry (controls, not UTF-8) as the text \xHH; cut between
 * characters.
 */
static void
test_metrics_label(void **state)
{
    static const struct {
        const char *in;
        size_t len;
        const char *out;
    } cases[] = {
        {"plain", 64, "plain"},
        {"a\"b\\c\nd", 64, "a\\\"b\\\\c\\nd"},
        {"cr\rx", 64, "cr\\\\x0dx"},
        {"\x01\x7f\x1b[31m", 64, "\\\\x01\\\\x7f\\\\x1b[31m"},
        {"caf\xc3\xa9", 64, "caf\xc3\xa9"},
        {"\xff\xc3(\xed\xa0\x80", 64, "\\\\xff\\\\xc3(\\\\xed\\\\xa0\\\\x80"},
        {"ab\"cd", 6, "ab\\\"c"},
        {"ab\"cd", 4, "ab"},        /* never half an escape */
        {"abc\xc3\xa9", 5, "abc"},  /* never half a character */
        {"\r", 5, ""},
        {NULL, 8, ""},
    };
    char buf[64];
    char *text = NULL;
    size_t tlen = 0;
    FILE *f;

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        memset(buf, 'Z', sizeof(buf));
        metrics_label(buf, cases[i].len, cases[i].in);
        if (strcmp(buf, cases[i].out) != 0)
            fail_msg("case %zu: got %s, want %s", i, buf, cases[i].out);
    }
    /* the exposition stays one series per line, printable */
    metrics_label(buf, sizeof(buf), "evil\r\n\"} 1\nduet_fake 9\x01\xff");
    {
        char labels[128];
        snprintf(labels, sizeof(labels), "listener=\"%s\"", buf);
        metrics_count("duet_test_labels_total", labels, 1);
    }
    f = open_memstream(&text, &tlen);
    assert_non_null(f);
    metrics_write(f);
    fclose(f);
    assert_null(strstr(text, "\nduet_fake"));
    assert_non_null(strstr(text, "\nduet_test_labels_total{listener=\"evil\\\\x0d\\n\\\"} 1\\nduet_fake "
                                 "9\\\\x01\\\\xff\"} 1\n"));
    for (size_t i = 0; i < tlen; i++) {
        unsigned char c = (unsigned char)text[i];
        if ((c < 0x20 && c != '\n') || c >= 0x7f)
            fail_msg("byte 0x%02x at %zu of /metrics", c, i);
    }
    free(text);
}

/* Nested objects, arrays, booleans and numbers parse; so does a batch, once flushed. */
static int arms;

static void
count_arm(void *arg)
{
    (void)arg;
    arms++;
}

static void
test_nested_and_batched(void **state)
{
    struct duet_err err;
    struct log_line l;
    const char *sans[] = {"URI:spiffe://x/a", "DNS:a.example"};
    int fd = mkstemp(path);
    json_error_t je;
    json_t *j;
    FILE *f;
    char text[8192];
    size_t n;

    (void)state;
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(log_open(path, &err), 0);
    log_batch_begin(count_arm, NULL);
    for (int i = 0; i < 2; i++) {
        log_line_begin(&l, "info", "handshake");
        log_line_open(&l, "identity");
        log_line_str(&l, "name", "a");
        log_line_strv(&l, "sans", sans, 2);
        log_line_open_array(&l, "more");
        log_line_str(&l, NULL, "x\"y");
        log_line_close(&l);
        log_line_close(&l);
        log_line_bool(&l, "resumed", i == 1);
        log_line_num(&l, "duration_ms", 1.23456, 3);
        log_line_end(&l);
    }
    assert_int_equal(arms, 1); /* the first line armed the flush */
    f = fopen(path, "r");
    assert_non_null(f);
    assert_int_equal(fread(text, 1, sizeof(text), f), 0); /* nothing written yet */
    fclose(f);
    log_batch_flush();
    f = fopen(path, "r");
    n = fread(text, 1, sizeof(text) - 1, f);
    fclose(f);
    text[n] = '\0';
    log_close();
    unlink(path);
    strcpy(path, "/tmp/duet-log-test.XXXXXX");
    char *second = strchr(text, '\n');
    assert_non_null(second);
    *second++ = '\0';
    for (int i = 0; i < 2; i++) {
        j = json_loads(i == 0 ? text : second, 0, &je);
        if (j == NULL)
            fail_msg("line %d does not parse: %s", i, je.text);
        json_t *id = json_object_get(j, "identity");
        assert_string_equal(json_string_value(json_object_get(id, "name")), "a");
        assert_int_equal(json_array_size(json_object_get(id, "sans")), 2);
        assert_string_equal(json_string_value(json_array_get(json_object_get(id, "more"), 0)),
                            "x\"y");
        assert_true(json_is_boolean(json_object_get(j, "resumed")));
        assert_true(json_real_value(json_object_get(j, "duration_ms")) > 1.234);
        json_decref(j);
    }
    log_batch_end(); /* back to writing every line at once; the buffer is freed */
}

/* The log moved away and reopened: earlier lines in the moved file, later ones in the new. */
static void
test_reopen_after_move(void **state)
{
    char dir[] = "/tmp/duet-log-reopen.XXXXXX";
    char live[64], moved[64], buf[256];
    struct duet_err err;
    FILE *f;
    size_t n;

    (void)state;
    assert_non_null(mkdtemp(dir));
    snprintf(live, sizeof(live), "%s/proxy.jsonl", dir);
    snprintf(moved, sizeof(moved), "%s/proxy.jsonl.1", dir);
    assert_int_equal(log_open(live, &err), 0);
    log_event("info", "first", NULL);
    assert_int_equal(rename(live, moved), 0);
    assert_int_equal(log_reopen(&err), 0);
    log_event("info", "second", NULL);
    log_close();
    f = fopen(moved, "r");
    assert_non_null(f);
    n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    fclose(f);
    assert_non_null(strstr(buf, "\"first\""));
    assert_null(strstr(buf, "\"second\""));
    f = fopen(live, "r");
    assert_non_null(f);
    n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    fclose(f);
    assert_non_null(strstr(buf, "\"second\""));
    assert_null(strstr(buf, "\"first\""));
    /* On stderr there is nothing to reopen. */
    assert_int_equal(log_open(NULL, &err), 0);
    assert_int_equal(log_reopen(&err), 0);
    unlink(live);
    unlink(moved);
    rmdir(dir);
}

/* Below the level nothing is built or written; at or above it, as usual. */
static void
test_log_level(void **state)
{
    char file[] = "/tmp/duet-log-level.XXXXXX";
    struct duet_err err;
    struct log_line l;
    char buf[512];
    int fd = mkstemp(file);
    ssize_t n;

    (void)state;
    assert_true(fd >= 0);
    assert_int_equal(log_open(file, &err), 0);
    assert_int_equal(log_set_level("warn", &err), 0);
    log_line_begin(&l, "info", "authz");
    log_line_open(&l, "identity");
    log_line_str(&l, "name", "x");
    log_line_close(&l);
    log_line_num(&l, "n", 1.5, 1);
    log_line_end(&l);
    log_event("info", "quiet", NULL);
    log_msg("debug", "quiet", "%s", "no");
    log_line_begin(&l, "warn", "loud");
    log_line_str(&l, "k", "v");
    log_line_end(&l);
    log_event("error", "louder", json_pack("{s:s}", "k", "v"));
    assert_int_equal(log_set_level("chatty", &err), -1);
    assert_string_equal(err.msg, "log level \"chatty\": expected debug, info, warn or error");
    assert_int_equal(log_set_level("info", &err), 0);
    log_close();
    n = read(fd, buf, sizeof(buf) - 1);
    assert_true(n > 0);
    buf[n] = '\0';
    close(fd);
    unlink(file);
    assert_null(strstr(buf, "quiet"));
    assert_null(strstr(buf, "authz"));
    assert_non_null(strstr(buf, "\"event\":\"loud\""));
    assert_non_null(strstr(buf, "\"event\":\"louder\""));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_fields),
        cmocka_unit_test(test_nested_and_batched),
        cmocka_unit_test(test_escaping),
        cmocka_unit_test(test_overlong_value_is_cut_inside),
        cmocka_unit_test(test_long_values_line_builder),
        cmocka_unit_test(test_long_values_msg_and_event),
        cmocka_unit_test(test_every_byte),
        cmocka_unit_test(test_invalid_utf8),
        cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_structure_misuse),
        cmocka_unit_test(test_full_line),
        cmocka_unit_test(test_metrics_label),
        cmocka_unit_test(test_reopen_after_move),
        cmocka_unit_test(test_log_level),
        cmocka_unit_test(test_numbers_as_printf_writes_them),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
