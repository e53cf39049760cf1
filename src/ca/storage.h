/* SPDX-License-Identifier: Apache-2.0 */
/*
 * storage.h - the CA's keys at rest: every encrypted key of a CA directory
 * re-encrypted with today's key derivation (lib/pemout.h), under the same
 * passphrase or a new one (`duet ca rekey-storage`).
 */
#ifndef DUET_CA_STORAGE_H
#define DUET_CA_STORAGE_H

#include <stddef.h>

#include "lib/err.h"

/* One key file re-encrypted, and how it was protected before and after. */
struct ca_rekeyed {
    char *file;       /* the path */
    char before[160]; /* pemout_key_kdf()'s words */
    char after[160];
};

/*
 * Re-encrypt every encrypted PKCS#8 key (*.key) of the CA directory: all are
 * decrypted with passphrase first (a key readable by group or others, or one
 * the passphrase does not open, stops everything before a file changes), then
 * each is written again beside itself and renamed over the old one, under
 * new_passphrase when not NULL (at least CA_MIN_PASSPHRASE characters), else
 * the same passphrase.  Keys elsewhere (an offline root moved to removable
 * media) are not touched: run it there with --ca-dir pointing at them.
 * On success *out lists what was done (ca_rekeyed_free).
 */
int ca_rekey_storage(const char *dir, const char *passphrase, const char *new_passphrase,
                     struct ca_rekeyed **out, size_t *n, struct duet_err *err) MUST_CHECK;
void ca_rekeyed_free(struct ca_rekeyed *v, size_t n);

#endif
