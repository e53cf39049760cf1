/* SPDX-License-Identifier: Apache-2.0 */
/*
 * doctor.h - what the files of `duet doctor` share: the run's state and the
 * checks of one TLS side (certificate, key, trust bundle, CRLs) given by
 * flags or by a listener of a proxy configuration (doctor_files.c).
 * cmd_doctor.c parses the command line, reads a configuration through the
 * proxy's own parser, checks its listeners and prints the findings.
 */
#ifndef DUET_CLI_DOCTOR_H
#define DUET_CLI_DOCTOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <openssl/x509.h>

#include "lib/doctor.h"

/* Everything a run knows. */
struct doctor_run {
    struct doctor_report rep;
    int64_t now;
    int64_t soon;       /* a certificate expiring within this many seconds is a warning */
    uid_t uid;          /* who runs the check: the owner a key file should have */
    X509_STORE *system; /* the system's public roots, for trust_public_root */
    bool config;        /* from a configuration file: fixes name YAML keys, not flags */
};

/* One TLS side to check: the files, where each was named, and how they are used. */
struct doctor_side {
    const char *cert, *key, *cacert;
    const char *password; /* --password-file's: an encrypted key or PKCS#12; NULL: none */
    char *const *crls; /* the CRL files given (not those fetched by URL) */
    size_t ncrls;
    struct doctor_src cert_src, key_src, cacert_src;
    const struct doctor_src *crl_srcs; /* one per CRL file */
    enum doctor_role role;             /* how `cert` is used */
    bool crl_fetch;         /* CRLs also come by URL (crl_urls, crl_from_cdp): coverage unknown */
    bool crl_leaf_only;     /* crl_scope: leaf */
    bool crl_expired_warns; /* crl_expired: warn */
    bool key_mode_refused;  /* the proxy refuses a key readable by group or others */
    bool peer_crls;         /* CRLs check the peers (a listener), not `cert`'s own chain (flags) */
};

/* Check one side: files readable, key against certificate, chain, role, expiry, trust, CRLs. */
void doctor_check_side(struct doctor_run *run, const struct doctor_side *s);

#endif
