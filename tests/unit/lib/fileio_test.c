/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fileio_test.c - unit tests of src/lib/fileio.c: reading input files (and
 * the messages for empty, missing and directory paths), reading secrets
 * (first line only, any line ending), and atomic writes (mode, content,
 * replacement, no temporary file left behind).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dirent.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "lib/fileio.h"
#include "testlib/certfactory.h"

static char *dir;

static char *
put(const char *name, const char *text)
{
    char *p = cf_path(dir, name);

    cf_write_file(p, text, strlen(text));
    return p;
}

/* Assert "<path>: <rest>" as the whole message, with kind DUET_ERR_INPUT. */
static void
assert_err(const struct duet_err *err, const char *path, const char *rest)
{
    char want[2048];

    assert_int_equal(err->kind, DUET_ERR_INPUT);
    snprintf(want, sizeof(want), "%s: %s", path, rest);
    assert_string_equal(err->msg, want);
}

static void
test_read_regular(void **state)
{
    static const char text[] = "hello\0world";
    char *p = cf_path(dir, "regular.bin");
    uint8_t *data = NULL;
    size_t len = 0;
    struct duet_err err;

    (void)state;
    err_clear(&err);
    cf_write_file(p, text, sizeof(text) - 1);
    assert_int_equal(fileio_read(p, &data, &len, &err), 0);
    assert_int_equal(err.kind, DUET_ERR_NONE);
    assert_int_equal(len, sizeof(text) - 1);
    assert_memory_equal(data, text, len);
    assert_int_equal(data[len], '\0');
    free(data);
    free(p);
}

static void
test_read_empty(void **state)
{
    char *p = put("empty", "");
    uint8_t *data = (uint8_t *)p;
    size_t len = 7;
    struct duet_err err;

    (void)state;
    err_clear(&err);
    assert_int_equal(fileio_read(p, &data, &len, &err), -1);
    assert_null(data);
    assert_int_equal(len, 0);
    assert_err(&err, p, "file is empty");
    free(p);
}

static void
test_read_directory(void **state)
{
    uint8_t *data = NULL;
    size_t len = 0;
    struct duet_err err;

    (void)state;
    err_clear(&err);
    assert_int_equal(fileio_read(dir, &data, &len, &err), -1);
    assert_null(data);
    assert_err(&err, dir, "is a directory; expected a file");
}

static void
test_read_missing(void **state)
{
    char *p = cf_path(dir, "missing");
    uint8_t *data = NULL;
    size_t len = 0;
    struct duet_err err;

    (void)state;
    err_clear(&err);
    assert_int_equal(fileio_read(p, &data, &len, &err), -1);
    assert_err(&err, p, "no such file");
    free(p);
}

static void
test_read_secret(void **state)
{
    static const struct {
        const char *text;
        const char *want;
    } cases[] = {
        {"s3cret\nsecond line\n", "s3cret"},    {"s3cret", "s3cret"},
        {"crlf pass\r\nnext\r\n", "crlf pass"}, {"cr-only\rrest", "cr-only"},
        {" spaces kept \n", " spaces kept "},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *p = put("secret", cases[i].text);
        char *s = NULL;
        struct duet_err err;

        err_clear(&err);
        assert_int_equal(fileio_read_secret(p, &s, &err), 0);
        assert_string_equal(s, cases[i].want);
        fileio_free_secret(s);
        free(p);
    }
    fileio_free_secret(NULL);
}

static void
test_read_secret_empty_first_line(void **state)
{
    static const char *const texts[] = {"\nsecond", "\r\nsecond"};

    (void)state;
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        char *p = put("secret-empty", texts[i]);
        char *s = (char *)1;
        struct duet_err err;

        err_clear(&err);
        assert_int_equal(fileio_read_secret(p, &s, &err), -1);
        assert_null(s);
        assert_err(&err, p, "first line is empty; expected a password");
        free(p);
    }
}

static void
test_read_secret_missing(void **state)
{
    char *p = cf_path(dir, "no-secret");
    char *s = NULL;
    struct duet_err err;

    (void)state;
    err_clear(&err);
    assert_int_equal(fileio_read_secret(p, &s, &err), -1);
    assert_null(s);
    assert_err(&err, p, "no such file");
    free(p);
}

/* Number of directory entries other than . and .. */
static int
count_entries(const char *path)
{
    DIR *d = opendir(path);
    struct dirent *e;
    int n = 0;

    assert_non_null(d);
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            n++;
    }
    closedir(d);
    return n;
}

static void
test_write_atomic(void **state)
{
    static const char content[] = "-----BEGIN PRIVATE KEY-----\nsecret\n";
    char *sub = cf_path(dir, "atomic");
    char *p = cf_path(sub, "key.pem");
    uint8_t *back;
    size_t len = 0;
    struct stat st;
    struct duet_err err;

    (void)state;
    err_clear(&err);
    assert_int_equal(mkdir(sub, 0700), 0);
    assert_int_equal(fileio_write_atomic(p, (const uint8_t *)content, strlen(content), 0600, &err),
                     0);
    assert_int_equal(stat(p, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(st.st_mode & 07777, 0600);
    back = cf_read_file(p, &len);
    assert_non_null(back);
    assert_int_equal(len, strlen(content));
    assert_memory_equal(back, content, len);
    free(back);
    assert_int_equal(count_entries(sub), 1); /* no temporary file left */

    /* Replacing a looser file gives the new mode and content. */
    assert_int_equal(chmod(p, 0644), 0);
    assert_int_equal(fileio_write_atomic(p, (const uint8_t *)"new", 3, 0600, &err), 0);
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    back = cf_read_file(p, &len);
    assert_int_equal(len, 3);
    assert_memory_equal(back, "new", 3);
    free(back);
    assert_int_equal(count_entries(sub), 1);

    /* Another mode is honoured exactly, whatever the umask. */
    assert_int_equal(fileio_write_atomic(p, (const uint8_t *)"pub", 3, 0644, &err), 0);
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0644);
    free(p);
    free(sub);
}

static void
test_write_atomic_missing_dir(void **state)
{
    char *p = cf_path(dir, "no-such-dir/key.pem");
    struct duet_err err;

    (void)state;
    err_clear(&err);
    assert_int_equal(fileio_write_atomic(p, (const uint8_t *)"x", 1, 0600, &err), -1);
    assert_int_equal(err.kind, DUET_ERR_INPUT);
    assert_contains(err.msg, p);
    assert_contains(err.msg, "cannot create temporary file");
    free(p);
}

static int
setup(void **state)
{
    (void)state;
    dir = cf_tmpdir();
    return 0;
}

static int
teardown(void **state)
{
    (void)state;
    cf_tmpdir_remove(dir);
    dir = NULL;
    return 0;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_read_regular),
        cmocka_unit_test(test_read_empty),
        cmocka_unit_test(test_read_directory),
        cmocka_unit_test(test_read_missing),
        cmocka_unit_test(test_read_secret),
        cmocka_unit_test(test_read_secret_empty_first_line),
        cmocka_unit_test(test_read_secret_missing),
        cmocka_unit_test(test_write_atomic),
        cmocka_unit_test(test_write_atomic_missing_dir),
    };

    return cmocka_run_group_tests_name("fileio", tests, setup, teardown);
}
