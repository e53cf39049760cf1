/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_ca.h - the CA the fuzz targets that exercise the CA itself share
 * (csr_fuzz.c, ocspreq_fuzz.c): made once per process with ca_init in a fresh
 * directory under /tmp that is removed at exit, its keys under a light KDF so
 * that start-up stays quick.  No cmocka here: a fuzz target aborts.
 */
#ifndef DUET_TESTS_FUZZ_CA_H
#define DUET_TESTS_FUZZ_CA_H

#include "ca/ca.h"

/*
 * A new P-256 CA named name for trust_domain in /tmp/duet-TARGET.XXXXXX/ca,
 * opened with its passphrase; the caller closes it (or lets the process end).
 * On any failure: "TARGET: CA: why" on stderr, then abort().
 */
struct ca *fuzz_ca_open(const char *target, const char *name, const char *trust_domain);

#endif
