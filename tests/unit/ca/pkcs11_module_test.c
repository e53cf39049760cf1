/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pkcs11_module_test.c - unit tests of src/ca/pkcs11_module.c: which
 * PKCS#11 module paths duet agrees to load, and the sentence that names the
 * path, what is wrong with it and the command that fixes it.  Nothing is
 * loaded: the checks run on files made here (and on /etc/passwd, a
 * root-owned file in a root-owned directory, as a system module is).
 * Loading through SoftHSM2 is tested in tests/integration/test_ca_pkcs11_module.py.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "ca/pkcs11.h"
#include "lib/err.h"

#define URI "pkcs11:token=t;object=k"

struct fixture {
    char dir[64];
    char mod[128];  /* dir/libmod.so */
    char link[128]; /* dir/open/libmod.so -> ../libmod.so, in a 0777 directory */
    char open[128]; /* dir/open */
};

static int
setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    FILE *fp;

    if (f == NULL)
        return -1;
    snprintf(f->dir, sizeof(f->dir), "/tmp/duet-p11mod-XXXXXX");
    if (mkdtemp(f->dir) == NULL)
        return -1;
    snprintf(f->mod, sizeof(f->mod), "%s/libmod.so", f->dir);
    snprintf(f->open, sizeof(f->open), "%s/open", f->dir);
    snprintf(f->link, sizeof(f->link), "%s/open/libmod.so", f->dir);
    if ((fp = fopen(f->mod, "w")) == NULL)
        return -1;
    fputs("not really a module\n", fp);
    fclose(fp);
    if (chmod(f->mod, 0755) != 0 || chmod(f->dir, 0755) != 0 || mkdir(f->open, 0755) != 0 ||
        chmod(f->open, 0777) != 0 || symlink("../libmod.so", f->link) != 0)
        return -1;
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    struct fixture *f = *state;

    unlink(f->link);
    rmdir(f->open);
    unlink(f->mod);
    rmdir(f->dir);
    free(f);
    return 0;
}

static void
test_accepted(void **state)
{
    struct fixture *f = *state;
    struct duet_err err = {0};

    /* Root's, in root's directories: as /usr/lib/softhsm/libsofthsm2.so is. */
    assert_int_equal(ca_pkcs11_module_check("/etc/passwd", URI, &err), 0);
    /* The user's own, 0755 in a 0755 directory. */
    assert_int_equal(ca_pkcs11_module_check(f->mod, URI, &err), 0);
    chmod(f->mod, 0644);
    assert_int_equal(ca_pkcs11_module_check(f->mod, URI, &err), 0);
}

static void
test_refused(void **state)
{
    struct fixture *f = *state;
    struct duet_err err = {0};
    char want[1024];

    /* Group- or other-writable module. */
    for (mode_t m = 0; m < 2; m++) {
        mode_t mode = m == 0 ? 0775 : 0757;
        chmod(f->mod, mode);
        assert_int_equal(ca_pkcs11_module_check(f->mod, URI, &err), -1);
        snprintf(want, sizeof(want),
                 URI ": the PKCS#11 module %s is writable by group or others (mode %03o); "
                     "refusing to load the module: fix with: chmod go-w %s",
                 f->mod, (unsigned)mode, f->mod);
        assert_string_equal(err.msg, want);
    }
    chmod(f->mod, 0755);
    /* Its directory writable by others. */
    chmod(f->dir, 0777);
    assert_int_equal(ca_pkcs11_module_check(f->mod, URI, &err), -1);
    snprintf(want, sizeof(want),
             URI ": the directory %s holding the PKCS#11 module %s is writable by group or others "
                 "(mode 777); refusing to load the module: fix with: chmod go-w %s",
             f->dir, f->mod, f->dir);
    assert_string_equal(err.msg, want);
    chmod(f->dir, 0755);
    /* A good file named through a link in a directory anyone can write to. */
    assert_int_equal(ca_pkcs11_module_check(f->link, URI, &err), -1);
    snprintf(want, sizeof(want),
             URI ": the directory %s holding the PKCS#11 module %s is writable by group or others "
                 "(mode 777); refusing to load the module: fix with: chmod go-w %s",
             f->open, f->link, f->open);
    assert_string_equal(err.msg, want);
    /* A name the loader would search for, and a path that holds nothing. */
    assert_int_equal(ca_pkcs11_module_check("libsofthsm2.so", URI, &err), -1);
    assert_string_equal(err.msg, URI ": the PKCS#11 module libsofthsm2.so is not an absolute "
                                     "path; expected its full path (e.g. "
                                     "/usr/lib/softhsm/libsofthsm2.so), not a name the loader "
                                     "searches for");
    assert_int_equal(ca_pkcs11_module_check("/nonexistent/lib.so", URI, &err), -1);
    assert_string_equal(err.msg, URI ": the PKCS#11 module /nonexistent/lib.so cannot be loaded");
    assert_int_equal(ca_pkcs11_module_check(f->dir, URI, &err), -1);
    snprintf(want, sizeof(want), URI ": the PKCS#11 module %s cannot be loaded", f->dir);
    assert_string_equal(err.msg, want);
    /* Owned by someone else (only root can hand a file over; CI runs as root). */
    if (geteuid() == 0) {
        assert_int_equal(chown(f->mod, 1, (gid_t)-1), 0);
        assert_int_equal(ca_pkcs11_module_check(f->mod, URI, &err), -1);
        snprintf(want, sizeof(want),
                 URI ": the PKCS#11 module %s is owned by uid 1, not by root or by the user duet "
                     "runs as (uid 0); refusing to load the module: fix with: chown root %s",
                 f->mod, f->mod);
        assert_string_equal(err.msg, want);
        assert_int_equal(chown(f->mod, 0, (gid_t)-1), 0);
    }
}

static void
test_every_loader_checks(void **state)
{
    struct fixture *f = *state;
    struct ca_pkcs11_uri u;
    struct duet_err err = {0};
    char uri[256], want[1024];

    /* ca_pkcs11_module(), which libp11's loader and pkcs11_objects.c both go through. */
    chmod(f->mod, 0777);
    snprintf(uri, sizeof(uri), URI "?module-path=%s", f->mod);
    assert_int_equal(ca_pkcs11_uri_parse(uri, &u, &err), 0);
    assert_null(ca_pkcs11_module(&u, uri, &err));
    snprintf(want, sizeof(want),
             "%s: the PKCS#11 module %s is writable by group or others (mode 777); refusing to "
             "load the module: fix with: chmod go-w %s",
             uri, f->mod, f->mod);
    assert_string_equal(err.msg, want);
    ca_pkcs11_uri_clear(&u);
    chmod(f->mod, 0755);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_accepted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_every_loader_checks, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
