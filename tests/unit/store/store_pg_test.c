/* SPDX-License-Identifier: Apache-2.0 */
/*
 * store_pg_test.c - unit tests of the PostgreSQL inventory's parts that need
 * no server (src/store/store_pg.c): which text is a PostgreSQL URL, the
 * password masked or removed from a URL (in the userinfo, percent-encoded, as
 * a password= parameter, with an '@' inside), the schema version check
 * (older and equal accepted, newer and nonsense refused with the words a user
 * reads), and the refusals of store_open_postgres before and at connecting:
 * a URL of another kind, a control character, a server that is not there -
 * each naming the server with the password masked, never the password.  The
 * operations against a real server are tested by
 * tests/integration/test_ca_postgres.py.
 */
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "lib/err.h"
#include "store/store.h"
#include "store/store_impl.h"

static void
check_redact(const char *url, const char *masked, const char *bare)
{
    char *m = store_url_redact(url, "***");
    char *b = store_url_redact(url, NULL);

    assert_non_null(m);
    assert_non_null(b);
    assert_string_equal(m, masked);
    assert_string_equal(b, bare);
    free(m);
    free(b);
}

static void
test_is_postgres_url(void **state)
{
    (void)state;
    assert_true(store_is_postgres_url("postgres://db/duet"));
    assert_true(store_is_postgres_url("postgresql://u@db:5433/duet"));
    assert_false(store_is_postgres_url("sqlite"));
    assert_false(store_is_postgres_url("mysql://db/duet"));
    assert_false(store_is_postgres_url("host=db dbname=duet"));
    assert_false(store_is_postgres_url("POSTGRES//db"));
    assert_false(store_is_postgres_url(NULL));
}

static void
test_redact_userinfo(void **state)
{
    (void)state;
    check_redact("postgres://duet:s3cret@db.example:5432/ca",
                 "postgres://duet:***@db.example:5432/ca", "postgres://duet@db.example:5432/ca");
    /* as libpq reads it: the first '@' ends the user info (host "w@db", password "p@ss") */
    check_redact("postgresql://duet:p%40ss@w@db/ca?sslmode=require",
                 "postgresql://duet:***@w@db/ca?sslmode=require",
                 "postgresql://duet@w@db/ca?sslmode=require");
    /* a '?' or '#' in the password is part of it for libpq: masked whole */
    check_redact("postgres://u:sec?ret@h/db", "postgres://u:***@h/db", "postgres://u@h/db");
    check_redact("postgres://u:pa#ss@h/db?sslmode=require", "postgres://u:***@h/db?sslmode=require",
                 "postgres://u@h/db?sslmode=require");
    /* no password: unchanged */
    check_redact("postgres://duet@db/ca", "postgres://duet@db/ca", "postgres://duet@db/ca");
    check_redact("postgres://db/ca", "postgres://db/ca", "postgres://db/ca");
    check_redact("postgres://", "postgres://", "postgres://");
    /* an empty password is still masked */
    check_redact("postgres://duet:@db/ca", "postgres://duet:***@db/ca", "postgres://duet@db/ca");
    /* a ':' after the authority is not a password */
    check_redact("postgres://db:5432/ca:x", "postgres://db:5432/ca:x", "postgres://db:5432/ca:x");
}

/* The password libpq would send, for scrubbing a server's message of it. */
static void
test_password_as_libpq_reads_it(void **state)
{
    static const struct {
        const char *url, *want;
    } cases[] = {
        {"postgres://u:p%40ss@w@db/ca", "p@ss"},
        {"postgres://u:sec?ret@h/db", "sec?ret"},
        {"postgres://db/ca?sslpassword=A&password=B", "B"},
        {"postgres://db/ca?password=a&password=b#frag", "b#frag"},
        {"postgres://u@h/db?%70assword=secret", "secret"},
        {"postgres://u@h/db", NULL},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *got = store_url_password(cases[i].url);
        if (cases[i].want == NULL)
            assert_null(got);
        else
            assert_string_equal(got, cases[i].want);
        free(got);
    }
}

static void
test_redact_query_parameter(void **state)
{
    (void)state;
    check_redact("postgres://duet@db/ca?password=s3cret", "postgres://duet@db/ca?password=***",
                 "postgres://duet@db/ca");
    check_redact("postgres://db/ca?sslmode=verify-full&password=s3cret&connect_timeout=5",
                 "postgres://db/ca?sslmode=verify-full&password=***&connect_timeout=5",
                 "postgres://db/ca?sslmode=verify-full&connect_timeout=5");
    /* libpq has no fragment: "b#frag" is the password */
    check_redact("postgres://db/ca?password=a&password=b#frag",
                 "postgres://db/ca?password=***&password=***", "postgres://db/ca");
    /* libpq decodes keys: %70assword is password */
    check_redact("postgres://u@h/db?%70assword=secret", "postgres://u@h/db?%70assword=***",
                 "postgres://u@h/db");
    /* many short passwords: the mask is longer than each (the copy must still fit) */
    check_redact("postgres://h/d?password=&password=&password=&password=&password=&password="
                 "&password=&password=&password=&password=",
                 "postgres://h/d?password=***&password=***&password=***&password=***&password="
                 "***&password=***&password=***&password=***&password=***&password=***",
                 "postgres://h/d");
    /* the client key's password too */
    check_redact("postgres://db/ca?sslkey=k.pem&sslpassword=kp",
                 "postgres://db/ca?sslkey=k.pem&sslpassword=***", "postgres://db/ca?sslkey=k.pem");
    /* a parameter merely ending in "password" is left alone */
    check_redact("postgres://db/ca?xpassword=1", "postgres://db/ca?xpassword=1",
                 "postgres://db/ca?xpassword=1");
}

static void
test_has_password(void **state)
{
    (void)state;
    assert_true(store_url_has_password("postgres://u:p@db/ca"));
    assert_true(store_url_has_password("postgres://u@db/ca?password=p"));
    assert_false(store_url_has_password("postgres://u@db/ca"));
    assert_false(store_url_has_password("postgres://db/ca?sslmode=require"));
}

static void
test_check_version(void **state)
{
    struct duet_err err = {.kind = DUET_ERR_NONE};

    (void)state;
    assert_int_equal(store_pg_check_version("postgres://db/ca", 1, 1, &err), 0);
    assert_int_equal(store_pg_check_version("postgres://db/ca", 1, 3, &err), 0);
    assert_int_equal(store_pg_check_version("postgres://db/ca", 3, 3, &err), 0);
    assert_int_equal(store_pg_check_version("postgres://db/ca", 4, 3, &err), -1);
    assert_string_equal(err.msg,
                        "postgres://db/ca: inventory schema version 4 is newer than this duet "
                        "knows (3); it was written by a newer duet: use that version (or "
                        "newer), never an older one");
    assert_int_equal(store_pg_check_version("postgres://db/ca", 0, 3, &err), -1);
    assert_string_equal(err.msg, "postgres://db/ca: not a duet inventory (schema version 0; "
                                 "expected 1 to 3)");
    assert_int_equal(store_pg_check_version("postgres://db/ca", -5, 3, &err), -1);
    assert_non_null(strstr(err.msg, "not a duet inventory"));
}

static void
test_open_refuses_other_urls(void **state)
{
    struct duet_err err = {.kind = DUET_ERR_NONE};
    struct store *s = (struct store *)&err;

    (void)state;
    assert_int_equal(store_open_postgres("mysql://root:hunter2@db/ca", false, &s, &err), -1);
    assert_null(s);
    assert_non_null(strstr(err.msg, "expected a PostgreSQL URL"));
    assert_null(strstr(err.msg, "hunter2"));
    assert_int_equal(store_open_postgres("postgres://u:pw@db/ca\nstore: x", false, &s, &err), -1);
    assert_non_null(strstr(err.msg, "control character"));
    assert_null(strstr(err.msg, "pw@"));
}

/* A port on 127.0.0.1 where nothing listens (bound, then closed). */
static int
dead_port(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

static void
test_open_names_an_unreachable_server_without_its_password(void **state)
{
    struct duet_err err = {.kind = DUET_ERR_NONE};
    struct store *s = NULL;
    char url[128], want[160];
    int port = dead_port();

    (void)state;
    snprintf(url, sizeof(url), "postgres://duet:Pa55-w0rd@127.0.0.1:%d/ca?connect_timeout=5", port);
    snprintf(want, sizeof(want),
             "postgres://duet:***@127.0.0.1:%d/ca?connect_timeout=5: cannot connect to the "
             "inventory database (",
             port);
    assert_int_equal(store_open_postgres(url, false, &s, &err), -1);
    assert_null(s);
    assert_int_equal(strncmp(err.msg, want, strlen(want)), 0);
    assert_non_null(strstr(err.msg, "expected a PostgreSQL server there"));
    assert_null(strstr(err.msg, "Pa55-w0rd"));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_is_postgres_url),
        cmocka_unit_test(test_redact_userinfo),
        cmocka_unit_test(test_redact_query_parameter),
        cmocka_unit_test(test_password_as_libpq_reads_it),
        cmocka_unit_test(test_has_password),
        cmocka_unit_test(test_check_version),
        cmocka_unit_test(test_open_refuses_other_urls),
        cmocka_unit_test(test_open_names_an_unreachable_server_without_its_password),
    };

    return cmocka_run_group_tests_name("store_pg", tests, NULL, NULL);
}
