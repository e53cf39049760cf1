/* SPDX-License-Identifier: Apache-2.0 */
/*
 * load_fuzz.c - libFuzzer target for the content-sniffing loader: PEM with
 * any blocks, DER certificates/CRLs/CSRs/keys and PKCS#12, followed by the
 * inspection model built from whatever loaded (the code `duet cert inspect`
 * runs on untrusted files).
 */
#include <stdint.h>
#include <stdlib.h>

#include "lib/inspect.h"
#include "lib/load.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct load_bundle b;
    struct duet_err err;

    if (load_bundle_mem("fuzz", data, size, "password", &b, &err) == 0) {
        json_t *j = inspect_bundle("fuzz", &b, 1790000000);
        json_decref(j);
    }
    load_bundle_clear(&b);
    return 0;
}
