/* SPDX-License-Identifier: Apache-2.0 */
/*
 * store.h - the certificate inventory behind one interface.
 *
 * Every certificate the CA signs is a row: serial, canonical name, subject,
 * SANs, profile, owner, location, key fingerprint, validity, status,
 * revocation time and reason, the certificate it renews, and its DER.  The CA
 * inserts the row inside the transaction in which it picks the serial, before
 * the certificate leaves the CA (DESIGN.md, "Inventory").  SQLite is the
 * embedded default; a PostgreSQL store can implement the same operations.
 */
#ifndef DUET_STORE_H
#define DUET_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/err.h"

/* Stored status; "expired" is derived from not_after at query time. */
enum store_status { STORE_VALID = 0, STORE_REVOKED = 1 };

/* One inventory row.  Strings are owned by the record (store_cert_free). */
struct store_cert {
    char *serial;   /* colon hex, upper case, minimal length: the canonical form */
    char *name;     /* canonical name (identity) */
    char *subject;  /* RFC 4514 */
    char *issuer;   /* RFC 4514 */
    char *sans;     /* "DNS:a, URI:spiffe://x/y", as shown by inspect */
    char *profile;
    char *owner;    /* may be NULL */
    char *location; /* may be NULL */
    char *key_fingerprint; /* SHA-256 of the SubjectPublicKeyInfo, colon hex */
    int64_t not_before;
    int64_t not_after;
    int64_t issued_at;
    enum store_status status;
    int64_t revoked_at; /* when status is STORE_REVOKED */
    int reason;         /* RFC 5280 reason code when revoked */
    char *renews;       /* serial of the certificate this one renews, or NULL */
    char *renewed_by;   /* serial of the certificate that renewed this one, or NULL */
    uint8_t *der;
    size_t der_len;
};

/* What `duet cert list` filters on; zero values mean "any". */
struct store_filter {
    int64_t now;             /* reference time for expired/expiring */
    int64_t expiring_before; /* not_after < this (and unrevoked); 0: any */
    bool only_valid;         /* unrevoked and not expired */
    bool only_expired;       /* unrevoked and expired */
    bool only_revoked;
    const char *owner;
    const char *profile;
};

struct store;

/*
 * Open (creating when `create` is set) the SQLite inventory at path, in WAL
 * mode with a busy timeout.  A missing file without `create`, a file that is
 * not a duet inventory, and a corrupt database are refused with a message
 * naming the path.
 */
int store_open_sqlite(const char *path, bool create, struct store **out,
                      struct duet_err *err) MUST_CHECK;
void store_close(struct store *s);

/*
 * Transactions.  store_begin takes the write lock at once (BEGIN IMMEDIATE)
 * so that serial allocation and insertion cannot interleave with another
 * process; a lock held elsewhere past the busy timeout is reported as
 * "inventory is locked".
 */
int store_begin(struct store *s, struct duet_err *err) MUST_CHECK;
int store_commit(struct store *s, struct duet_err *err) MUST_CHECK;
void store_rollback(struct store *s);

/* Whether a serial was ever used (any status). */
int store_serial_used(struct store *s, const char *serial, bool *used,
                      struct duet_err *err) MUST_CHECK;
/* Insert a row; a serial already present fails (unique index) and says so. */
int store_insert(struct store *s, const struct store_cert *c, struct duet_err *err) MUST_CHECK;
/* Fetch a row by canonical serial; *out is NULL when there is none. */
int store_get(struct store *s, const char *serial, struct store_cert **out,
              struct duet_err *err) MUST_CHECK;
/* Rows matching the filter, ordered by not_after then serial. */
int store_list(struct store *s, const struct store_filter *f, struct store_cert ***out,
               size_t *n, struct duet_err *err) MUST_CHECK;
/* All revoked rows (for CRLs), ordered by revocation time. */
int store_list_revoked(struct store *s, struct store_cert ***out, size_t *n,
                       struct duet_err *err) MUST_CHECK;
/*
 * Mark a row revoked at `when` with an RFC 5280 reason code.  Fails for an
 * unknown serial and for one already revoked (the message gives the date and
 * reason of the first revocation).
 */
int store_revoke(struct store *s, const char *serial, int64_t when, int reason,
                 struct duet_err *err) MUST_CHECK;
/* Record that `new_serial` renews `old_serial`. */
int store_link_renewal(struct store *s, const char *old_serial, const char *new_serial,
                       struct duet_err *err) MUST_CHECK;
/* Take the next CRL number (1, 2, ...), durable with the transaction. */
int store_next_crl_number(struct store *s, uint64_t *number, struct duet_err *err) MUST_CHECK;

void store_cert_free(struct store_cert *c);
void store_certs_free(struct store_cert **v, size_t n);
/* "valid", "expired" or "revoked" at time now. */
const char *store_status_text(const struct store_cert *c, int64_t now);

/*
 * Canonical serial from any form openssl prints: hex in any case, with or
 * without colons or spaces, with or without leading zero bytes ("0x" allowed).
 * Returns a new string (colon hex, upper case) or NULL with the reason.
 */
char *store_serial_canonical(const char *text, struct duet_err *err);

#endif
