/* SPDX-License-Identifier: Apache-2.0 */
/*
 * err_test.c - unit tests of src/lib/err.c: setting, prefixing and clearing
 * the error record, draining OpenSSL's queue into the message, and
 * truncation of messages longer than the fixed buffer.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/err.h>
#include <openssl/pem.h>

#include "lib/err.h"

static void
test_set_and_clear(void **state)
{
    struct duet_err err;

    (void)state;
    err_clear(&err);
    assert_int_equal(err.kind, DUET_ERR_NONE);
    assert_string_equal(err.msg, "");
    assert_int_equal(err_set(&err, DUET_ERR_INPUT, "%s: line %d", "a.pem", 3), -1);
    assert_int_equal(err.kind, DUET_ERR_INPUT);
    assert_string_equal(err.msg, "a.pem: line 3");
    err_clear(&err);
    assert_int_equal(err.kind, DUET_ERR_NONE);
    assert_string_equal(err.msg, "");
    /* A NULL record is tolerated. */
    assert_int_equal(err_set(NULL, DUET_ERR_INPUT, "x"), -1);
    err_clear(NULL);
    err_prefix(NULL, "p");
}

static void
test_prefix(void **state)
{
    struct duet_err err;

    (void)state;
    err_clear(&err);
    err_set(&err, DUET_ERR_INVALID, "certificate expired");
    err_prefix(&err, "%s:%d", "peer.pem", 2);
    assert_string_equal(err.msg, "peer.pem:2: certificate expired");
    assert_int_equal(err.kind, DUET_ERR_INVALID);
    err_prefix(&err, "outer");
    assert_string_equal(err.msg, "outer: peer.pem:2: certificate expired");
}

static void
test_nomem(void **state)
{
    struct duet_err err;

    (void)state;
    err_clear(&err);
    ERR_raise(ERR_LIB_PEM, PEM_R_NO_START_LINE);
    assert_int_equal(err_nomem(&err), -1);
    assert_int_equal(err.kind, DUET_ERR_NOMEM);
    assert_string_equal(err.msg, "out of memory");
    assert_int_equal(ERR_peek_error(), 0);
}

static void
test_set_ssl_appends_reason_and_drains(void **state)
{
    struct duet_err err;

    (void)state;
    err_clear(&err);
    ERR_clear_error();
    ERR_raise(ERR_LIB_PEM, PEM_R_BAD_BASE64_DECODE);
    ERR_raise(ERR_LIB_PEM, PEM_R_NO_START_LINE);
    assert_int_equal(err_set_ssl(&err, DUET_ERR_INPUT, "%s: cannot read", "k.pem"), -1);
    assert_int_equal(err.kind, DUET_ERR_INPUT);
    /* The last reason queued, which is the most specific one. */
    assert_string_equal(err.msg, "k.pem: cannot read (no start line)");
    assert_int_equal(ERR_peek_error(), 0);
}

static void
test_set_ssl_without_queue(void **state)
{
    struct duet_err err;

    (void)state;
    ERR_clear_error();
    err_clear(&err);
    assert_int_equal(err_set_ssl(&err, DUET_ERR_INTERNAL, "plain"), -1);
    assert_int_equal(err.kind, DUET_ERR_INTERNAL);
    assert_string_equal(err.msg, "plain");
    /* With a NULL record the queue is still emptied. */
    ERR_raise(ERR_LIB_PEM, PEM_R_NO_START_LINE);
    assert_int_equal(err_set_ssl(NULL, DUET_ERR_INTERNAL, "x"), -1);
    assert_int_equal(ERR_peek_error(), 0);
}

static void
test_truncation(void **state)
{
    static char longtext[3 * DUET_ERR_MSG_MAX];
    struct duet_err err;

    (void)state;
    memset(longtext, 'a', sizeof(longtext) - 1);
    longtext[sizeof(longtext) - 1] = '\0';
    err_clear(&err);
    err_set(&err, DUET_ERR_INPUT, "%s", longtext);
    assert_int_equal(strlen(err.msg), DUET_ERR_MSG_MAX - 1);
    assert_int_equal(err.msg[0], 'a');

    /* A prefix on a full message keeps the prefix and stays terminated. */
    err_prefix(&err, "file.pem");
    assert_int_equal(strlen(err.msg), DUET_ERR_MSG_MAX - 1);
    assert_true(strncmp(err.msg, "file.pem: aaa", 13) == 0);

    /* The OpenSSL reason does not overflow a full message either. */
    ERR_raise(ERR_LIB_PEM, PEM_R_NO_START_LINE);
    err_set_ssl(&err, DUET_ERR_INPUT, "%s", longtext);
    assert_int_equal(strlen(err.msg), DUET_ERR_MSG_MAX - 1);
    assert_int_equal(ERR_peek_error(), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_set_and_clear),
        cmocka_unit_test(test_prefix),
        cmocka_unit_test(test_nomem),
        cmocka_unit_test(test_set_ssl_appends_reason_and_drains),
        cmocka_unit_test(test_set_ssl_without_queue),
        cmocka_unit_test(test_truncation),
    };

    return cmocka_run_group_tests_name("err", tests, NULL, NULL);
}
