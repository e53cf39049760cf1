/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bbuf_test.c - the growing byte buffer: appends across growths keep every
 * byte, the text stays NUL-terminated, and nothing is appended after a
 * failed growth.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lib/bbuf.h"

static void
test_appends_grow_and_terminate(void **state)
{
    struct bbuf b = {0};
    char want[5000];

    (void)state;
    for (size_t i = 0; i < sizeof(want) - 1; i++)
        want[i] = (char)('a' + i % 26);
    want[sizeof(want) - 1] = '\0';
    for (size_t off = 0; off < sizeof(want) - 1; off += 7) {
        size_t n = sizeof(want) - 1 - off < 7 ? sizeof(want) - 1 - off : 7;
        bbuf_put(&b, want + off, n);
    }
    bbuf_str(&b, "");
    assert_false(b.oom);
    assert_int_equal(b.len, sizeof(want) - 1);
    assert_string_equal((const char *)b.p, want);
    free(b.p);
}

static void
test_nothing_after_a_failed_growth(void **state)
{
    struct bbuf b = {0};

    (void)state;
    bbuf_str(&b, "kept");
    b.oom = true; /* as if realloc had failed */
    bbuf_str(&b, "dropped");
    assert_int_equal(b.len, 4);
    assert_string_equal((const char *)b.p, "kept");
    free(b.p);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_appends_grow_and_terminate),
        cmocka_unit_test(test_nothing_after_a_failed_growth),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
