/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pkcs11_module.c - the file and directory checks a PKCS#11 module passes
 * before duet loads it.
 *
 * The module named by key_uri's module-path (or $DUET_PKCS11_MODULE) is
 * code that runs inside the process holding the CA key and the token's PIN:
 * whoever can replace it signs as the CA.  So, as relayd checks a key file's
 * secrecy before reading it, the module must be a regular file at an
 * absolute path, owned by root or by the user duet runs as, and not writable
 * by group or others; the directory holding the name given and the one
 * holding the file it resolves to must be owned and protected alike (else
 * the file could be swapped for another).  System modules under /usr/lib,
 * owned by root and mode 0644 in 0755 directories, pass.
 */
#include "ca/pkcs11.h"

#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/*
 * One path (the module, or a directory holding it): owned by root or the
 * effective user, not writable by group or others.  what names it in the
 * message ("the PKCS#11 module P", "the directory D holding the PKCS#11
 * module P").
 */
static int
check_owner_mode(const char *uri, const char *path, const char *what, struct duet_err *err)
{
    struct stat st;
    uid_t me = geteuid();

    if (stat(path, &st) != 0)
        return err_set(err, DUET_ERR_INPUT, "%s: %s cannot be read: %s", uri, what,
                       strerror(errno));
    if (st.st_uid != 0 && st.st_uid != me)
        return err_set(err, DUET_ERR_INPUT,
                       "%s: %s is owned by uid %lu, not by root or by the user duet runs as "
                       "(uid %lu); refusing to load the module: fix with: chown root %s",
                       uri, what, (unsigned long)st.st_uid, (unsigned long)me, path);
    if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0)
        return err_set(err, DUET_ERR_INPUT,
                       "%s: %s is writable by group or others (mode %03o); refusing to load the "
                       "module: fix with: chmod go-w %s",
                       uri, what, (unsigned)(st.st_mode & 0777), path);
    return 0;
}

/* The directory holding path (a copy in buf), checked as the module is. */
static int
check_dir_of(const char *uri, const char *path, struct duet_err *err)
{
    char buf[PATH_MAX], what[2 * PATH_MAX + 64];
    const char *dir;

    snprintf(buf, sizeof(buf), "%s", path);
    dir = dirname(buf);
    snprintf(what, sizeof(what), "the directory %s holding the PKCS#11 module %s", dir, path);
    return check_owner_mode(uri, dir, what, err);
}

/* Whether the module may be loaded; see pkcs11.h. */
int
ca_pkcs11_module_check(const char *module, const char *uri, struct duet_err *err)
{
    char what[PATH_MAX + 64], *real = NULL;
    struct stat st;
    int rc = -1;

    if (module[0] != '/')
        return err_set(err, DUET_ERR_INPUT,
                       "%s: the PKCS#11 module %s is not an absolute path; expected its full "
                       "path (e.g. /usr/lib/softhsm/libsofthsm2.so), not a name the loader "
                       "searches for",
                       uri, module);
    if ((real = realpath(module, NULL)) == NULL || stat(real, &st) != 0 || !S_ISREG(st.st_mode)) {
        err_set(err, DUET_ERR_INPUT, "%s: the PKCS#11 module %s cannot be loaded", uri, module);
        goto out;
    }
    snprintf(what, sizeof(what), "the PKCS#11 module %s", real);
    /* The file, the directory holding the name given, the one holding the file itself. */
    if (check_owner_mode(uri, real, what, err) != 0 || check_dir_of(uri, module, err) != 0 ||
        (strcmp(module, real) != 0 && check_dir_of(uri, real, err) != 0))
        goto out;
    rc = 0;
out:
    free(real);
    return rc;
}
