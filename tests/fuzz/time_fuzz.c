/* SPDX-License-Identifier: Apache-2.0 */
/*
 * time_fuzz.c - libFuzzer target for the RFC 3339 parser behind
 * `duet cert verify --at` and for the verification name check.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/verify.h"
#include "lib/x509util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    int64_t t;

    if (s == NULL)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    (void)x509u_parse_time(s, &t);
    (void)verify_name_valid(s);
    free(s);
    return 0;
}
