/* SPDX-License-Identifier: Apache-2.0 */
/*
 * store.h - the certificate inventory behind one interface.
 *
 * Every certificate the CA signs is a row: serial, canonical name, subject,
 * SANs, profile, owner, location, key fingerprint, validity, status,
 * revocation time, reason and who revoked it, the certificate it renews, and
 * its DER.  The CA inserts the row inside the transaction in which it picks
 * the serial, before the certificate leaves the CA (DESIGN.md, "Inventory").  SQLite is the
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
    /*
     * Who revoked it, when revoked: "cli:<login>" for `duet cert revoke`, the
     * API caller's identity ("uri:spiffe://corp/admin/alice", "dns:host") for
     * POST /v1/revoke.  NULL: not revoked, or revoked before the inventory
     * recorded it (schema version 3).
     */
    char *revoked_by;
    char *renews;       /* serial of the certificate this one renews, or NULL */
    char *renewed_by;   /* serial of the certificate that renewed this one, or NULL */
    uint8_t *der;
    size_t der_len;
};

/*
 * One enrollment token (DESIGN.md "Lifecycle").  The token's text is never
 * stored: `id` is the SHA-256 of it, lower-case hex, and a presented token is
 * found by hashing it.  The row binds what the certificate will be (name,
 * profile, SANs, inventory fields) and records its single use.  Strings are
 * owned by the record (store_token_free).
 */
struct store_token {
    char *id;          /* SHA-256 of the token text, 64 lower-case hex digits */
    char *name;        /* the certificate's CN */
    char *profile;
    char **sans;       /* "dns:H", "ip:A", "uri:U", "email:E"; none holds '\n' */
    size_t nsans;
    char *owner;       /* may be NULL */
    char *location;    /* may be NULL */
    int64_t created_at;
    int64_t expires_at; /* usable while now < expires_at */
    int64_t used_at;    /* 0: unused */
    char *serial;       /* the certificate it produced, or NULL while unused */
    char *created_by;   /* who made it (a login name), may be NULL */
};

/* What store_token_redeem found. */
enum store_token_state {
    STORE_TOKEN_REDEEMED = 0, /* it was unused and unexpired: now marked used */
    STORE_TOKEN_UNKNOWN,      /* no token has this id */
    STORE_TOKEN_USED,         /* used before (used_at, serial in the row) */
    STORE_TOKEN_EXPIRED,      /* unused, but expires_at <= now */
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
 * mode with a busy timeout.  An inventory of an older schema version is
 * migrated in place, in one transaction, and the new version recorded.  A
 * missing file without `create`, a file that is not a duet inventory, a
 * corrupt database and one whose schema version is newer than this binary
 * knows are refused with a message naming the path.
 */
int store_open_sqlite(const char *path, bool create, struct store **out,
                      struct duet_err *err) MUST_CHECK;
/*
 * Open (creating the schema when `create` is set) the PostgreSQL inventory at
 * url (postgres://[user[:password]@]host[:port]/database[?param=value...],
 * libpq's environment - PGPASSFILE, PGPASSWORD, PGSSLMODE - filling what it
 * leaves out).  The schema is made and migrated by duet in one transaction
 * under an advisory lock.  Refused, each naming the server with its password
 * masked: a URL of another kind, a server that cannot be reached, failed
 * authentication, a database without a duet inventory (without `create`), one
 * that already holds one (with `create`), and a schema version newer than
 * this duet knows.
 */
int store_open_postgres(const char *url, bool create, struct store **out,
                        struct duet_err *err) MUST_CHECK;
/* Whether text names a PostgreSQL inventory (starts with postgres:// or postgresql://). */
bool store_is_postgres_url(const char *text);
/*
 * A copy of a URL with its passwords (after the user name, and the password=
 * and sslpassword= query parameters) replaced by mask, or removed with the separator when mask
 * is NULL; the rest as given.  NULL when out of memory.
 */
char *store_url_redact(const char *url, const char *mask);
/* Whether a URL holds a password. */
bool store_url_has_password(const char *url);
/*
 * Check a PostgreSQL inventory's schema version against `known` (the
 * version this duet writes): below 1 is not a duet inventory, above known
 * was written by a newer duet; both are refused naming `where`.
 */
int store_pg_check_version(const char *where, long version, long known,
                           struct duet_err *err) MUST_CHECK;
void store_close(struct store *s);

/*
 * Transactions.  store_begin takes the write lock at once (BEGIN IMMEDIATE)
 * so that serial allocation and insertion cannot interleave with another
 * process; a lock held elsewhere past the busy timeout is reported as
 * "inventory is locked".
 */
int store_begin(struct store *s, struct duet_err *err) MUST_CHECK;
/*
 * A transaction for an issuance: it draws a serial, inserts the certificate's
 * row and may spend a token or link a renewal (conditional updates of one row
 * each), nothing else - no revocation, no CRL number.  SQLite: store_begin.
 * PostgreSQL: no lock on the shared meta row and the generation is not moved,
 * so several nodes issue side by side; the serial stays the primary key (a
 * serial drawn twice fails the insert), and a new row changes no OCSP answer
 * that may be kept (an answer saying unknown is never kept, ocsp.c).
 */
int store_begin_issue(struct store *s, struct duet_err *err) MUST_CHECK;
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
 * Mark a row revoked at `when` with an RFC 5280 reason code, by `by` (who
 * revoked it, kept as given; NULL: not known).  Fails for an unknown serial
 * and for one already revoked (the message gives the date and reason of the
 * first revocation).
 */
int store_revoke(struct store *s, const char *serial, int64_t when, int reason, const char *by,
                 struct duet_err *err) MUST_CHECK;
/* Record that `new_serial` renews `old_serial`. */
int store_link_renewal(struct store *s, const char *old_serial, const char *new_serial,
                       struct duet_err *err) MUST_CHECK;
/* Take the next CRL number (1, 2, ...), durable with the transaction. */
int store_next_crl_number(struct store *s, uint64_t *number, struct duet_err *err) MUST_CHECK;

/*
 * The issuing CA's newest published CRL: every CRL that ca_crl signs is
 * recorded, so that every process on the inventory (several `duet ca serve`
 * nodes) serves the same document, or a newer one.  der is NULL when it was
 * not asked for.
 */
struct store_crl {
    uint64_t number;
    int64_t this_update;
    int64_t next_update;
    uint64_t revoked; /* revoked rows in the inventory when it was signed */
    uint8_t *der;
    size_t der_len;
};

/*
 * The newest published CRL (*out NULL when none was published yet; its DER
 * only with with_der) and the number of revoked rows in the inventory now
 * (revocations are never undone, so the set of revoked certificates changed
 * exactly when this number did), read together, at one moment.
 */
int store_crl_get(struct store *s, bool with_der, struct store_crl **out, uint64_t *revoked,
                  struct duet_err *err) MUST_CHECK;
/*
 * Publish a CRL, inside the transaction that took its number: it replaces the
 * one published only when its number is greater, so the published CRL never
 * goes back; one not newer is refused, saying so.
 */
int store_crl_put(struct store *s, const struct store_crl *c, struct duet_err *err) MUST_CHECK;
void store_crl_free(struct store_crl *c);

/*
 * Record a new token.  An id already present fails and says so; a SAN holding
 * a newline is refused (the list is stored one name a line).
 */
int store_token_insert(struct store *s, const struct store_token *t,
                       struct duet_err *err) MUST_CHECK;
/* Fetch a token by id; *out is NULL when there is none. */
int store_token_get(struct store *s, const char *id, struct store_token **out,
                    struct duet_err *err) MUST_CHECK;
/*
 * Use a token once: mark it used at `now` by `serial` only if it exists, is
 * unused and now < expires_at - decided by one conditional update whose count
 * of changed rows says whether this call won, so two redemptions racing (in
 * two processes, two CA nodes) cannot both succeed.  Returns 0 with *state
 * saying what happened, and *row (when row is not NULL) the token as it is
 * after the call (NULL for an unknown id); -1 only when the store fails.
 * Inside a transaction, a rollback makes the token unused again.
 */
int store_token_redeem(struct store *s, const char *id, const char *serial, int64_t now,
                       enum store_token_state *state, struct store_token **row,
                       struct duet_err *err) MUST_CHECK;
/* Every token, newest first (for `duet ca token --list`). */
int store_token_list(struct store *s, struct store_token ***out, size_t *n,
                     struct duet_err *err) MUST_CHECK;
void store_token_free(struct store_token *t);
void store_tokens_free(struct store_token **v, size_t n);

/*
 * The inventory's generation as this handle sees it: a number that changes
 * whenever anything may have been written to the inventory since the last
 * call - by this handle (any statement that changed a row, committed or not)
 * or by another connection that committed, in this process or another one -
 * and stays the same otherwise (PostgreSQL: every write but an issuance in a
 * store_begin_issue transaction).  Cheap enough to ask before every OCSP
 * answer (SQLite: PRAGMA data_version and the handle's own change count, no
 * table read).  Never the same number again after it changed.
 */
int store_generation(struct store *s, uint64_t *gen, struct duet_err *err) MUST_CHECK;
/*
 * How many store_generation() calls asked the database itself (PostgreSQL:
 * every call; SQLite: only those where the wal-index header in the `-shm`
 * mapping had changed, could not be read or was not trusted - the others
 * made no system call).  For tests and the performance notes.
 */
uint64_t store_generation_reads(const struct store *s);

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
