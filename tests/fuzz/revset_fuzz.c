/* SPDX-License-Identifier: Apache-2.0 */
/*
 * revset_fuzz.c - libFuzzer target for the CRL reader behind the compact
 * revocation set (the DER walker in src/lib/revset.c), followed by the
 * accessors and a lookup by name on whatever loaded.
 */
#include <stdint.h>
#include <stdlib.h>

#include <openssl/x509.h>

#include "lib/revset.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct revset *rs = revset_new();
    struct duet_err err;

    if (rs == NULL)
        return 0;
    if (revset_add_mem(rs, "fuzz", data, size, &err) == 0) {
        X509 *x = X509_new();
        for (size_t i = 0; i < revset_count(rs); i++) {
            const struct revcrl *c = revset_get0(rs, i);
            (void)revcrl_entries(c);
            (void)revcrl_next_update(c);
            if (x != NULL && X509_set_issuer_name(x, revcrl_get0_issuer(c))) {
                struct rev_result r;
                revset_check(rs, x, NULL, 1790000000, false, &r);
            }
        }
        (void)revset_bytes(rs);
        X509_free(x);
    }
    revset_free(rs);
    return 0;
}
