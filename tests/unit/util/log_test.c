/* SPDX-License-Identifier: Apache-2.0 */
/*
 * log_test.c - the JSON-lines writer: every line parses as JSON, strings are
 * escaped per RFC 8259, bytes that are not UTF-8 cannot break a line, and an
 * overlong line is cut at a field boundary and marked.
 */
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

static void
test_overlong_line_is_cut_and_marked(void **state)
{
    char *big = malloc(6000);
    const char *kv[] = {"first", "kept", "path", big, "after", "dropped"};
    json_t *j;

    (void)state;
    memset(big, 'x', 5999);
    big[5999] = '\0';
    j = one_line(kv, 6);
    assert_string_equal(json_string_value(json_object_get(j, "first")), "kept");
    assert_null(json_object_get(j, "path"));
    assert_null(json_object_get(j, "after"));
    assert_true(json_is_true(json_object_get(j, "truncated")));
    json_decref(j);
    free(big);
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
    log_batch_begin(NULL, NULL); /* back to writing every line at once */
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_fields),
        cmocka_unit_test(test_nested_and_batched),
        cmocka_unit_test(test_escaping),
        cmocka_unit_test(test_overlong_line_is_cut_and_marked),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
