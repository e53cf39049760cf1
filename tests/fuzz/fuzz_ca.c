/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_ca.c - a CA for the fuzz targets, in a temporary directory removed at
 * exit; see fuzz_ca.h.
 */
#include "fuzz_ca.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "lib/err.h"

#define PASS "fuzzing passphrase"

static char tmpdir[96];

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void
cleanup(void)
{
    if (tmpdir[0] != '\0')
        (void)nftw(tmpdir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
}

/* Make and open the target's CA; see fuzz_ca.h. */
struct ca *
fuzz_ca_open(const char *target, const char *name, const char *trust_domain)
{
    struct ca_init_opts o = {0};
    struct duet_err err = {0};
    struct ca *ca = NULL;
    char cadir[128];

    setenv("DUET_CA_KDF_ITERATIONS", "1000", 0);
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/duet-%s.XXXXXX", target);
    if (mkdtemp(tmpdir) == NULL) {
        fprintf(stderr, "%s: CA: cannot make a directory under /tmp\n", target);
        abort();
    }
    atexit(cleanup);
    snprintf(cadir, sizeof(cadir), "%s/ca", tmpdir);
    o.dir = cadir;
    o.name = name;
    o.trust_domain = trust_domain;
    o.key_type = CA_KEY_P256;
    o.passphrase = PASS;
    if (ca_init(&o, &err) != 0 || ca_open(cadir, PASS, &ca, &err) != 0) {
        fprintf(stderr, "%s: CA: %s\n", target, err.msg);
        abort();
    }
    return ca;
}
