/* SPDX-License-Identifier: Apache-2.0 */
/*
 * store_sqlite.c - the embedded inventory: one SQLite file in WAL mode.
 *
 * Durability: synchronous=FULL, so a committed row survives power loss, and
 * BEGIN IMMEDIATE for every write so that two `duet` processes on the same
 * CA directory serialise instead of failing halfway.  The serial column is
 * the primary key: a serial can never be stored twice, and rows are never
 * deleted, so a serial is never reused.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "lib/x509util.h"
#include "store/store_impl.h"

/*
 * The schema this binary writes.  Version 1 is the inventory of certificates
 * as duet first made it; each later version is one migration below, applied
 * in order inside one transaction when an older inventory is opened (a new
 * inventory is made as version 1, then migrated, so every path runs the same
 * statements).  meta.schema_version is the version in force (duet releases
 * before version 2 check it and refuse anything else); schema_migrations
 * records when each migration ran.
 */
#define SCHEMA_VERSION 4
#define BUSY_TIMEOUT_MS 10000

/*
 * The wal-index header at the start of the `-shm` file, as SQLite documents
 * it (https://www.sqlite.org/walformat.html, "The WAL-Index Header"): two
 * copies of 48 bytes; its first field is the format version, 3007000 since
 * SQLite 3.7.0, and byte 12 (isInit) is 1 once it is built.
 */
#define WALIDX_HDR_BYTES 48
#define WALIDX_VERSION 3007000u
#define WALIDX_REGION 32768

struct sqlite_store {
    struct store base;
    sqlite3 *db;
    char *path;
    bool in_txn;
    /*
     * The lookup by serial, prepared once: OCSP and every renewal, revocation
     * and issuance ask for one row, and preparing the statement cost more than
     * running it.  Reset after each use, so it never holds a read transaction
     * (and an old snapshot of the inventory) between calls.
     */
    sqlite3_stmt *get_st;
    /*
     * store_generation(): PRAGMA data_version changes when another connection
     * commits, sqlite3_total_changes64() when this one changes a row; gen
     * moves on when either differs from what the last call saw.  The
     * PRAGMA takes and drops a WAL read lock (two fcntl); it is skipped while
     * the wal-index header (walidx_header()) is byte for byte the one read
     * just before the last PRAGMA, and nothing else says otherwise.
     */
    sqlite3_stmt *dv_st;
    int64_t seen_dv;
    int64_t seen_own;
    uint64_t gen;
    bool wal;                           /* journal_mode is WAL (else no wal-index: PRAGMA always) */
    bool have_hdr;                      /* seen_hdr holds a valid header */
    uint8_t seen_hdr[WALIDX_HDR_BYTES]; /* read just before the last PRAGMA data_version */
};

/* Version 1, exactly as the first inventories were made. */
static const char schema_v1_sql[] =
    "CREATE TABLE IF NOT EXISTS meta ("
    "  key TEXT PRIMARY KEY,"
    "  value TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS certificates ("
    "  serial TEXT PRIMARY KEY,"
    "  name TEXT NOT NULL,"
    "  subject TEXT NOT NULL,"
    "  issuer TEXT NOT NULL,"
    "  sans TEXT NOT NULL,"
    "  profile TEXT NOT NULL,"
    "  owner TEXT,"
    "  location TEXT,"
    "  key_fingerprint TEXT NOT NULL,"
    "  not_before INTEGER NOT NULL,"
    "  not_after INTEGER NOT NULL,"
    "  issued_at INTEGER NOT NULL,"
    "  status INTEGER NOT NULL DEFAULT 0 CHECK (status IN (0, 1)),"
    "  revoked_at INTEGER,"
    "  reason INTEGER,"
    "  renews TEXT REFERENCES certificates(serial),"
    "  renewed_by TEXT REFERENCES certificates(serial),"
    "  der BLOB NOT NULL);"
    "CREATE INDEX IF NOT EXISTS certificates_not_after ON certificates(not_after);"
    "CREATE INDEX IF NOT EXISTS certificates_owner ON certificates(owner);"
    "INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', '1');"
    "INSERT OR IGNORE INTO meta(key, value) VALUES ('crl_number', '0');";

/*
 * The migrations, in order: migrations[i] takes the schema from version i + 1
 * to i + 2.  Never edit one that has shipped; add the next.
 */
static const struct {
    const char *what;
    const char *sql;
} migrations[] = {
    {"enrollment tokens",
     "CREATE TABLE schema_migrations ("
     "  version INTEGER PRIMARY KEY,"
     "  applied_at INTEGER NOT NULL,"
     "  description TEXT NOT NULL);"
     /* id is the SHA-256 of the token: the token itself is never stored. */
     "CREATE TABLE tokens ("
     "  id TEXT PRIMARY KEY,"
     "  name TEXT NOT NULL,"
     "  profile TEXT NOT NULL,"
     "  sans TEXT NOT NULL,"
     "  owner TEXT,"
     "  location TEXT,"
     "  created_at INTEGER NOT NULL,"
     "  expires_at INTEGER NOT NULL,"
     "  used_at INTEGER,"
     "  serial TEXT REFERENCES certificates(serial),"
     "  created_by TEXT,"
     "  CHECK ((used_at IS NULL) = (serial IS NULL)));"
     "CREATE INDEX tokens_created_at ON tokens(created_at);"},
    /* NULL in rows revoked before it: who revoked those was never recorded. */
    {"who revoked", "ALTER TABLE certificates ADD COLUMN revoked_by TEXT;"},
    /*
     * The newest CRL signed, one row, which every process on the inventory
     * serves; the revoked rows indexed, to count and list them without a scan.
     */
    {"the published CRL",
     "CREATE TABLE crl ("
     "  id INTEGER PRIMARY KEY CHECK (id = 1),"
     "  number INTEGER NOT NULL,"
     "  this_update INTEGER NOT NULL,"
     "  next_update INTEGER NOT NULL,"
     "  revoked INTEGER NOT NULL,"
     "  der BLOB NOT NULL);"
     "CREATE INDEX certificates_revoked ON certificates(revoked_at) WHERE status = 1;"},
};

_Static_assert(SCHEMA_VERSION == 1 + sizeof(migrations) / sizeof(migrations[0]),
               "SCHEMA_VERSION must be 1 + the number of migrations");

static const char columns[] =
    "serial, name, subject, issuer, sans, profile, owner, location, key_fingerprint, "
    "not_before, not_after, issued_at, status, revoked_at, reason, renews, renewed_by, der, "
    "revoked_by";

/* Record a SQLite failure, naming the inventory file and telling locks apart. */
static int
db_err(struct sqlite_store *ss, struct duet_err *err, const char *what)
{
    int code = sqlite3_errcode(ss->db);

    if (code == SQLITE_BUSY || code == SQLITE_LOCKED)
        return err_set(err, DUET_ERR_INPUT,
                       "%s: inventory is locked by another process (%s); try again", ss->path,
                       what);
    if (code == SQLITE_CORRUPT || code == SQLITE_NOTADB)
        return err_set(err, DUET_ERR_INPUT, "%s: inventory is corrupt or not a database (%s: %s)",
                       ss->path, what, sqlite3_errmsg(ss->db));
    return err_set(err, DUET_ERR_INPUT, "%s: %s failed: %s", ss->path, what,
                   sqlite3_errmsg(ss->db));
}

static int
exec(struct sqlite_store *ss, const char *sql, const char *what, struct duet_err *err)
{
    if (sqlite3_exec(ss->db, sql, NULL, NULL, NULL) != SQLITE_OK)
        return db_err(ss, err, what);
    return 0;
}

static int
sq_begin(struct store *s, struct duet_err *err)
{
    struct sqlite_store *ss = (struct sqlite_store *)s;

    if (exec(ss, "BEGIN IMMEDIATE", "starting a transaction", err) != 0)
        return -1;
    ss->in_txn = true;
    return 0;
}

static int
sq_commit(struct store *s, struct duet_err *err)
{
    struct sqlite_store *ss = (struct sqlite_store *)s;

    if (exec(ss, "COMMIT", "committing", err) != 0) {
        (void)sqlite3_exec(ss->db, "ROLLBACK", NULL, NULL, NULL);
        ss->in_txn = false;
        return -1;
    }
    ss->in_txn = false;
    return 0;
}

static void
sq_rollback(struct store *s)
{
    struct sqlite_store *ss = (struct sqlite_store *)s;

    if (ss->in_txn)
        (void)sqlite3_exec(ss->db, "ROLLBACK", NULL, NULL, NULL);
    ss->in_txn = false;
}

static int
prepare(struct sqlite_store *ss, const char *sql, sqlite3_stmt **st, struct duet_err *err)
{
    if (sqlite3_prepare_v2(ss->db, sql, -1, st, NULL) != SQLITE_OK)
        return db_err(ss, err, "preparing a query");
    return 0;
}

static void
bind_text(sqlite3_stmt *st, int i, const char *v)
{
    if (v != NULL)
        sqlite3_bind_text(st, i, v, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(st, i);
}

static int
sq_serial_used(struct store *s, const char *serial, bool *used, struct duet_err *err)
{
    struct sqlite_store *ss = (struct sqlite_store *)s;
    sqlite3_stmt *st = NULL;
    int rc;

    if (prepare(ss, "SELECT 1 FROM certificates WHERE serial = ?", &st, err) != 0)
        return -1;
    bind_text(st, 1, serial);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return db_err(ss, err, "looking up a serial");
    *used = rc == SQLITE_ROW;
    return 0;
}

static int
sq_insert(struct store *s, const struct store_cert *c, struct duet_err *err)
{
    struct sqlite_store *ss = (struct sqlite_store *)s;
    sqlite3_stmt *st = NULL;
    int rc;

    if (prepare(ss,
                "INSERT INTO certificates (serial, name, subject, issuer, sans, profile, owner, "
                "location, key_fingerprint, not_before, not_after, issued_at, status, revoked_at, "
                "reason, renews, renewed_by, der, revoked_by) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                &st, err) != 0)
        return -1;
    bind_text(st, 1, c->serial);
    bind_text(st, 2, c->name);
    bind_text(st, 3, c->subject);
    bind_text(st, 4, c->issuer);
    bind_text(st, 5, c->sans != NULL ? c->sans : "");
    bind_text(st, 6, c->profile);
    bind_text(st, 7, c->owner);
    bind_text(st, 8, c->location);
    bind_text(st, 9, c->key_fingerprint);
    sqlite3_bind_int64(st, 10, c->not_before);
    sqlite3_bind_int64(st, 11, c->not_after);
    sqlite3_bind_int64(st, 12, c->issued_at);
    sqlite3_bind_int(st, 13, (int)c->status);
    if (c->status == STORE_REVOKED) {
        sqlite3_bind_int64(st, 14, c->revoked_at);
        sqlite3_bind_int(st, 15, c->reason);
    } else {
        sqlite3_bind_null(st, 14);
        sqlite3_bind_null(st, 15);
    }
    bind_text(st, 16, c->renews);
    bind_text(st, 17, c->renewed_by);
    sqlite3_bind_blob(st, 18, c->der, (int)c->der_len, SQLITE_TRANSIENT);
    bind_text(st, 19, c->status == STORE_REVOKED ? c->revoked_by : NULL);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc == SQLITE_CONSTRAINT)
        return err_set(err, DUET_ERR_INPUT, "%s: serial %s is already in the inventory",
                       ss->path, c->serial);
    if (rc != SQLITE_DONE)
        return db_err(ss, err, "recording a certificate");
    return 0;
}

static char *
col_text(sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);

    return t != NULL ? strdup((const char *)t) : NULL;
}

/* One row (selected with `columns`) as a record; NULL on OOM. */
static struct store_cert *
row_to_cert(sqlite3_stmt *st)
{
    struct store_cert *c = calloc(1, sizeof(*c));
    const void *blob;
    int n;

    if (c == NULL)
        return NULL;
    c->serial = col_text(st, 0);
    c->name = col_text(st, 1);
    c->subject = col_text(st, 2);
    c->issuer = col_text(st, 3);
    c->sans = col_text(st, 4);
    c->profile = col_text(st, 5);
    c->owner = col_text(st, 6);
    c->location = col_text(st, 7);
    c->key_fingerprint = col_text(st, 8);
    c->not_before = sqlite3_column_int64(st, 9);
    c->not_after = sqlite3_column_int64(st, 10);
    c->issued_at = sqlite3_column_int64(st, 11);
    c->status = sqlite3_column_int(st, 12) == 1 ? STORE_REVOKED : STORE_VALID;
    c->revoked_at = sqlite3_column_int64(st, 13);
    c->reason = sqlite3_column_int(st, 14);
    c->renews = col_text(st, 15);
    c->renewed_by = col_text(st, 16);
    blob = sqlite3_column_blob(st, 17);
    n = sqlite3_column_bytes(st, 17);
    if (blob != NULL && n > 0 && (c->der = malloc((size_t)n)) != NULL) {
        memcpy(c->der, blob, (size_t)n);
        c->der_len = (size_t)n;
    }
    c->revoked_by = col_text(st, 18);
    if (c->serial == NULL || c->name == NULL || c->subject == NULL || c->issuer == NULL ||
        c->sans == NULL || c->profile == NULL || c->key_fingerprint == NULL || c->der == NULL) {
        store_cert_free(c);
        return NULL;
    }
    return c;
}

static int
sq_get(struct store *s, const char *serial, struct store_cert **out, struct duet_err *err)
{
    struct sqlite_store *ss = (struct sqlite_store *)s;
    sqlite3_stmt *st;
    char sql[512];
    int rc;

    *out = NULL;
    if (ss->get_st == NULL) {
        snprintf(sql, sizeof(sql), "SELECT %s FROM certificates WHERE serial = ?", columns);
        if (prepare(ss, sql, &ss->get_st, err) != 0)
            return -1;
    }
    st = ss->get_st;
    bind_text(st, 1, serial);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *out = row_to_cert(st);
        rc = *out != NULL ? 0 : err_nomem(err);
    } else if (rc == SQLITE_DONE) {
        rc = 0;
    } else {
        rc = db_err(ss, err, "reading a certificate");
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc;
}

static int
sq_list(struct store *s, const struct store_filter *f, bool revoked_only,
        struct store_cert ***out, size_t *n, struct duet_err *err)
{
    struct sqlite_store *ss = (struct sqlite_store *)s;
    sqlite3_stmt *st = NULL;
    char sql[1024];
    struct store_cert **v = NULL;
    size_t len = 0, cap = 0;
    int rc;
    int64_t now = f != NULL ? f->now : 0;

    *out = NULL;
    *n = 0;
    if (revoked_only) {
        snprintf(sql, sizeof(sql),
                 "SELECT %s FROM certificates WHERE status = 1 ORDER BY revoked_at, serial",
                 columns);
    } else {
        snprintf(sql, sizeof(sql),
                 "SELECT %s FROM certificates WHERE "
                 "(?1 = 0 OR (status = 0 AND not_after < ?1)) AND "
                 "(?2 = 0 OR (status = 0 AND not_after > ?5)) AND "
                 "(?3 = 0 OR (status = 0 AND not_after <= ?5)) AND "
                 "(?4 = 0 OR status = 1) AND "
                 "(?6 IS NULL OR owner = ?6) AND (?7 IS NULL OR profile = ?7) "
                 "ORDER BY not_after, serial",
                 columns);
    }
    if (prepare(ss, sql, &st, err) != 0)
        return -1;
    if (!revoked_only) {
        sqlite3_bind_int64(st, 1, f->expiring_before);
        sqlite3_bind_int(st, 2, f->only_valid);
        sqlite3_bind_int(st, 3, f->only_expired);
        sqlite3_bind_int(st, 4, f->only_revoked);
        sqlite3_bind_int64(st, 5, now);
        bind_text(st, 6, f->owner);
        bind_text(st, 7, f->profile);
    }
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (len == cap) {
            size_t ncap = cap ? cap * 2 : 64;
            struct store_cert **nv = realloc(v, ncap * sizeof(*v));
            if (nv == NULL)
                goto oom;
            v = nv;
            cap = ncap;
        }
        if ((v[len] = row_to_cert(st)) == NULL)
            goto oom;
        len++;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        store_certs_free(v, len);
        return db_err(ss, err, "listing certificates");
    }
    *out = v;
    *n = len;
    return 0;
oom:
    sqlite3_finalize(st);
    store_certs_free(v, len);
    return err_nomem(err);
}

static int
sq_revoke(struct store *s, const char *serial, int64_t when, int reason, const char *by,
          struct duet_err *err)
{
    struct sqlite_store *ss = (struct sqlite_store *)s;
    struct store_cert *c = NULL;
    sqlite3_stmt *st = NULL;
    int rc;

    if (sq_get(s, serial, &c, err) != 0)
        return -1;
    if (c == NULL)
        return err_set(err, DUET_ERR_INPUT, "serial %s is not in the inventory %s", serial,
                       ss->path);
    if (c->status == STORE_REVOKED) {
        char when_s[32];
        x509u_fmt_rfc3339(c->revoked_at, when_s, sizeof(when_s));
        err_set(err, DUET_ERR_INPUT,
                "certificate %s (serial %s) is already revoked, since %s (reason: %s)", c->name,
                serial, when_s, x509u_crl_reason(c->reason));
        store_cert_free(c);
        return -1;
    }
    store_cert_free(c);
    if (prepare(ss,
                "UPDATE certificates SET status = 1, revoked_at = ?, reason = ?, revoked_by = ? "
                "WHERE serial = ? AND status = 0",
                &st, err) != 0)
        return -1;
    sqlite3_bind_int64(st, 1, when);
    sqlite3_bind_int(st, 2, reason);
    bind_text(st, 3, by);
    bind_text(st, 4, serial);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return db_err(ss, err, "revoking a certificate");
    if (sqlite3_changes(ss->db) != 1)
        return err_set(err, DUET_ERR_INPUT, "serial %s could not be revoked", serial);
    return 0;
}

static int
sq_link_renewal(struct store *s, const char *old_serial, const char *new_serial,
                struct duet_err *err)
{
    struct sqlite_store *ss = (struct sqlite_store *)s;
    sqlite3_stmt *st = NULL;
    int rc;

    struct store_cert *row = NULL;

    /*
     * Only a certificate not renewed yet: two renewals of one certificate
     * racing from two processes (duet ca serve, duet cert renew) each checked
     * renewed_by before their transaction; the second one fails here, inside
     * its transaction, so its certificate is never committed.
     */
    if (prepare(ss,
                "UPDATE certificates SET renewed_by = ? WHERE serial = ? AND renewed_by IS NULL",
                &st, err) != 0)
        return -1;
    bind_text(st, 1, new_serial);
    bind_text(st, 2, old_serial);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return db_err(ss, err, "linking a renewal");
    if (sqlite3_changes(ss->db) == 1)
        return 0;
    if (store_get(s, old_serial, &row, err) != 0)
        return -1;
    if (row == NULL)
        return err_set(err, DUET_ERR_INPUT, "serial %s is not in the inventory", old_serial);
    rc = err_set(err, DUET_ERR_INPUT,
                 "certificate %s was renewed already, by certificate %s; renew with that one",
                 old_serial, row->renewed_by != NULL ? row->renewed_by : "?");
    store_cert_free(row);
    return rc;
}

static int
sq_next_crl_number(struct store *s, uint64_t *number, struct duet_err *err)
{
    struct sqlite_store *ss = (struct sqlite_store *)s;
    sqlite3_stmt *st = NULL;
    int rc;

    if (prepare(ss,
                "UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'crl_number' "
                "RETURNING CAST(value AS INTEGER)",
                &st, err) != 0)
        return -1;
    rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        sqlite3_finalize(st);
        return db_err(ss, err, "taking the next CRL number");
    }
    *number = (uint64_t)sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return 0;
}

/* The published CRL and the count of revoked rows, in one statement (one snapshot). */
static int
sq_crl_get(struct store *s, bool with_der, struct store_crl **out, uint64_t *revoked,
           struct duet_err *err)
{
    struct sqlite_store *ss = (struct sqlite_store *)s;
    struct store_crl *c = NULL;
    sqlite3_stmt *st = NULL;
    int rc = -1;

    if (prepare(ss,
                "SELECT (SELECT count(*) FROM certificates WHERE status = 1), crl.number, "
                "crl.this_update, crl.next_update, crl.revoked, CASE WHEN ?1 THEN crl.der END "
                "FROM (SELECT 1) LEFT JOIN crl ON crl.id = 1",
                &st, err) != 0)
        return -1;
    sqlite3_bind_int(st, 1, with_der ? 1 : 0);
    if (sqlite3_step(st) != SQLITE_ROW) {
        db_err(ss, err, "reading the published CRL");
        goto out;
    }
    *revoked = (uint64_t)sqlite3_column_int64(st, 0);
    if (sqlite3_column_type(st, 1) != SQLITE_NULL) {
        if ((c = calloc(1, sizeof(*c))) == NULL) {
            err_nomem(err);
            goto out;
        }
        c->number = (uint64_t)sqlite3_column_int64(st, 1);
        c->this_update = sqlite3_column_int64(st, 2);
        c->next_update = sqlite3_column_int64(st, 3);
        c->revoked = (uint64_t)sqlite3_column_int64(st, 4);
        if (with_der) {
            const void *blob = sqlite3_column_blob(st, 5);
            int len = sqlite3_column_bytes(st, 5);
            if (blob != NULL && len > 0 && (c->der = malloc((size_t)len)) == NULL) {
                store_crl_free(c);
                c = NULL;
                err_nomem(err);
                goto out;
            }
            if (blob != NULL && len > 0) {
                memcpy(c->der, blob, (size_t)len);
                c->der_len = (size_t)len;
            }
        }
    }
    *out = c;
    rc = 0;
out:
    sqlite3_finalize(st);
    return rc;
}

/* Replace the published CRL with a newer one only (the number decides). */
static int
sq_crl_put(struct store *s, const struct store_crl *c, struct duet_err *err)
{
    struct sqlite_store *ss = (struct sqlite_store *)s;
    sqlite3_stmt *st = NULL;
    int rc;

    if (prepare(ss,
                "INSERT INTO crl (id, number, this_update, next_update, revoked, der) "
                "VALUES (1, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET "
                "number = excluded.number, this_update = excluded.this_update, "
                "next_update = excluded.next_update, revoked = excluded.revoked, "
                "der = excluded.der WHERE excluded.number > crl.number",
                &st, err) != 0)
        return -1;
    sqlite3_bind_int64(st, 1, (sqlite3_int64)c->number);
    sqlite3_bind_int64(st, 2, c->this_update);
    sqlite3_bind_int64(st, 3, c->next_update);
    sqlite3_bind_int64(st, 4, (sqlite3_int64)c->revoked);
    sqlite3_bind_blob(st, 5, c->der, (int)c->der_len, SQLITE_TRANSIENT);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return db_err(ss, err, "publishing the CRL");
    if (sqlite3_changes(ss->db) != 1)
        return err_set(err, DUET_ERR_INPUT, STORE_CRL_NOT_NEWER, ss->path,
                       (unsigned long long)c->number);
    return 0;
}

/* --- enrollment tokens --------------------------------------------------- */

static const char token_columns[] =
    "id, name, profile, sans, owner, location, created_at, expires_at, used_at, serial, "
    "created_by";

/* One row (selected with `token_columns`) as a record; NULL on OOM. */
static struct store_token *
row_to_token(sqlite3_stmt *st)
{
    struct store_token *t = calloc(1, sizeof(*t));
    const unsigned char *sans;

    if (t == NULL)
        return NULL;
    t->id = col_text(st, 0);
    t->name = col_text(st, 1);
    t->profile = col_text(st, 2);
    sans = sqlite3_column_text(st, 3);
    t->owner = col_text(st, 4);
    t->location = col_text(st, 5);
    t->created_at = sqlite3_column_int64(st, 6);
    t->expires_at = sqlite3_column_int64(st, 7);
    t->used_at = sqlite3_column_int64(st, 8);
    t->serial = col_text(st, 9);
    t->created_by = col_text(st, 10);
    if (t->id == NULL || t->name == NULL || t->profile == NULL ||
        store_token_sans_split(sans != NULL ? (const char *)sans : "", t) != 0) {
        store_token_free(t);
        return NULL;
    }
    return t;
}

static int
sq_token_insert(struct store *s, const struct store_token *t, struct duet_err *err)
{
    struct sqlite_store *ss = (struct sqlite_store *)s;
    sqlite3_stmt *st = NULL;
    char *sans = store_token_sans_join(t->sans, t->nsans);
    int rc;

    if (sans == NULL)
        return err_nomem(err);
    if (prepare(ss,
                "INSERT INTO tokens (id, name, profile, sans, owner, location, created_at, "
                "expires_at, used_at, serial, created_by) VALUES (?,?,?,?,?,?,?,?,NULL,NULL,?)",
                &st, err) != 0) {
        free(sans);
        return -1;
    }
    bind_text(st, 1, t->id);
    bind_text(st, 2, t->name);
    bind_text(st, 3, t->profile);
    bind_text(st, 4, sans);
    bind_text(st, 5, t->owner);
    bind_text(st, 6, t->location);
    sqlite3_bind_int64(st, 7, t->created_at);
    sqlite3_bind_int64(st, 8, t->expires_at);
    bind_text(st, 9, t->created_by);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    free(sans);
    /* The id only: it is a hash, but a token's traces stay out of messages. */
    if (rc == SQLITE_CONSTRAINT)
        return err_set(err, DUET_ERR_INPUT, "%s: this token is already in the inventory",
                       ss->path);
    if (rc != SQLITE_DONE)
        return db_err(ss, err, "recording a token");
    return 0;
}

static int
sq_token_get(struct store *s, const char *id, struct store_token **out, struct duet_err *err)
{
    struct sqlite_store *ss = (struct sqlite_store *)s;
    sqlite3_stmt *st = NULL;
    char sql[256];
    int rc;

    *out = NULL;
    snprintf(sql, sizeof(sql), "SELECT %s FROM tokens WHERE id = ?", token_columns);
    if (prepare(ss, sql, &st, err) != 0)
        return -1;
    bind_text(st, 1, id);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *out = row_to_token(st);
        sqlite3_finalize(st);
        return *out != NULL ? 0 : err_nomem(err);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return db_err(ss, err, "reading a token");
    return 0;
}

/*
 * The single statement that decides a redemption: it changes the row only
 * while the token is unused and unexpired, and SQLite runs it under the
 * database's write lock, so of two racing calls exactly one changes a row.
 */
static int
sq_token_redeem(struct store *s, const char *id, const char *serial, int64_t now,
                enum store_token_state *state, struct store_token **row, struct duet_err *err)
{
    struct sqlite_store *ss = (struct sqlite_store *)s;
    struct store_token *t = NULL;
    sqlite3_stmt *st = NULL;
    int rc;

    if (serial == NULL)
        return err_set(err, DUET_ERR_INTERNAL, "a token is redeemed for a certificate's serial");
    if (prepare(ss,
                "UPDATE tokens SET used_at = ?1, serial = ?2 "
                "WHERE id = ?3 AND used_at IS NULL AND expires_at > ?1",
                &st, err) != 0)
        return -1;
    sqlite3_bind_int64(st, 1, now);
    bind_text(st, 2, serial);
    bind_text(st, 3, id);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return db_err(ss, err, "redeeming a token");
    if (sqlite3_changes(ss->db) == 1) {
        *state = STORE_TOKEN_REDEEMED;
        if (row == NULL)
            return 0;
        return sq_token_get(s, id, row, err);
    }
    /* Nothing changed: say why, from the row as it is now. */
    if (sq_token_get(s, id, &t, err) != 0)
        return -1;
    if (t == NULL)
        *state = STORE_TOKEN_UNKNOWN;
    else if (t->serial != NULL)
        *state = STORE_TOKEN_USED;
    else
        *state = STORE_TOKEN_EXPIRED;
    if (row != NULL)
        *row = t;
    else
        store_token_free(t);
    return 0;
}

static int
sq_token_list(struct store *s, struct store_token ***out, size_t *n, struct duet_err *err)
{
    struct sqlite_store *ss = (struct sqlite_store *)s;
    sqlite3_stmt *st = NULL;
    struct store_token **v = NULL;
    size_t len = 0, cap = 0;
    char sql[256];
    int rc;

    *out = NULL;
    *n = 0;
    snprintf(sql, sizeof(sql), "SELECT %s FROM tokens ORDER BY created_at DESC, id",
             token_columns);
    if (prepare(ss, sql, &st, err) != 0)
        return -1;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (len == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            struct store_token **nv = realloc(v, ncap * sizeof(*v));
            if (nv == NULL)
                goto oom;
            v = nv;
            cap = ncap;
        }
        if ((v[len] = row_to_token(st)) == NULL)
            goto oom;
        len++;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        store_tokens_free(v, len);
        return db_err(ss, err, "listing tokens");
    }
    *out = v;
    *n = len;
    return 0;
oom:
    sqlite3_finalize(st);
    store_tokens_free(v, len);
    return err_nomem(err);
}

/*
 * Copy the inventory's wal-index header, from SQLite's own mapping of the
 * `-shm` file (the VFS's xShmMap on the connection's file: the memory every
 * SQLite connection on this inventory, in any process, reads and writes),
 * into hdr.  Every commit in WAL mode, by any connection, rewrites it before
 * the commit counts as done: it bumps iChange and mxFrame (the frames of
 * the log) within one log, and a new log gets new salts; so an unchanged
 * header means no commit since.  True only when the header can be trusted:
 * WAL mode, region 0 already mapped by SQLite, the documented version, built
 * (isInit), and both copies equal (a writer is not halfway through: SQLite's
 * readers use the same test).  False sends the caller to the PRAGMA.
 */
static bool
walidx_header(struct sqlite_store *ss, uint8_t hdr[WALIDX_HDR_BYTES])
{
    sqlite3_file *f = NULL;
    void volatile *p = NULL;
    uint8_t second[WALIDX_HDR_BYTES];
    const uint8_t *shm;
    uint32_t version;

    if (!ss->wal ||
        sqlite3_file_control(ss->db, "main", SQLITE_FCNTL_FILE_POINTER, &f) != SQLITE_OK ||
        f == NULL || f->pMethods == NULL || f->pMethods->iVersion < 2 ||
        f->pMethods->xShmMap == NULL ||
        f->pMethods->xShmMap(f, 0, WALIDX_REGION, 0, &p) != SQLITE_OK || p == NULL)
        return false;
    shm = (const uint8_t *)(uintptr_t)p;
    /* In SQLite's order: the first copy, a barrier, the second (writers go the other way). */
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
    memcpy(hdr, shm, WALIDX_HDR_BYTES);
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
    memcpy(second, shm + WALIDX_HDR_BYTES, WALIDX_HDR_BYTES);
    memcpy(&version, hdr, sizeof(version));
    return version == WALIDX_VERSION && hdr[12] == 1 &&
           memcmp(hdr, second, WALIDX_HDR_BYTES) == 0;
}

static int
sq_generation(struct store *s, uint64_t *gen, struct duet_err *err)
{
    struct sqlite_store *ss = (struct sqlite_store *)s;
    uint8_t hdr[WALIDX_HDR_BYTES];
    bool have_hdr;
    int64_t dv, own;

    own = (int64_t)sqlite3_total_changes64(ss->db);
    /* Nothing committed anywhere and nothing changed here since the last PRAGMA: gen as it is. */
    if (ss->gen != 0 && ss->have_hdr && own == ss->seen_own && walidx_header(ss, hdr) &&
        memcmp(hdr, ss->seen_hdr, WALIDX_HDR_BYTES) == 0) {
        *gen = ss->gen;
        return 0;
    }
    /* The header before the PRAGMA: a commit in between makes the next call ask again. */
    have_hdr = walidx_header(ss, hdr);
    s->generation_reads++;
    if (ss->dv_st == NULL && prepare(ss, "PRAGMA data_version", &ss->dv_st, err) != 0)
        return -1;
    if (sqlite3_step(ss->dv_st) != SQLITE_ROW) {
        db_err(ss, err, "reading the data version");
        sqlite3_reset(ss->dv_st);
        return -1;
    }
    dv = sqlite3_column_int64(ss->dv_st, 0);
    sqlite3_reset(ss->dv_st);
    own = (int64_t)sqlite3_total_changes64(ss->db);
    /* The first call moves gen from 0 (never returned) to 1. */
    if (ss->gen == 0 || dv != ss->seen_dv || own != ss->seen_own) {
        ss->gen++;
        ss->seen_dv = dv;
        ss->seen_own = own;
    }
    ss->have_hdr = have_hdr;
    if (have_hdr)
        memcpy(ss->seen_hdr, hdr, WALIDX_HDR_BYTES);
    *gen = ss->gen;
    return 0;
}

static void
sq_close(struct store *s)
{
    struct sqlite_store *ss = (struct sqlite_store *)s;

    if (ss->in_txn)
        sq_rollback(s);
    sqlite3_finalize(ss->get_st);
    sqlite3_finalize(ss->dv_st);
    sqlite3_close(ss->db);
    free(ss->path);
    free(ss);
}

static const struct store_ops sqlite_ops = {
    .begin = sq_begin,
    .commit = sq_commit,
    .rollback = sq_rollback,
    .serial_used = sq_serial_used,
    .insert = sq_insert,
    .get = sq_get,
    .list = sq_list,
    .revoke = sq_revoke,
    .link_renewal = sq_link_renewal,
    .next_crl_number = sq_next_crl_number,
    .crl_get = sq_crl_get,
    .crl_put = sq_crl_put,
    .token_insert = sq_token_insert,
    .token_get = sq_token_get,
    .token_redeem = sq_token_redeem,
    .token_list = sq_token_list,
    .generation = sq_generation,
    .close = sq_close,
};

/* --- schema versions ------------------------------------------------------ */

/*
 * The schema version of an open inventory (meta.schema_version).  A database
 * without it, or with a value that is not a positive number, is not a duet
 * inventory; a corrupt file says so.
 */
static int
schema_version(struct sqlite_store *ss, int *version, struct duet_err *err)
{
    sqlite3_stmt *st = NULL;
    const unsigned char *text;
    char *end = NULL;
    long v = 0;
    int rc = -1;

    if (sqlite3_prepare_v2(ss->db, "SELECT value FROM meta WHERE key = 'schema_version'", -1, &st,
                           NULL) != SQLITE_OK) {
        int code = sqlite3_errcode(ss->db);
        if (code == SQLITE_NOTADB || code == SQLITE_CORRUPT)
            db_err(ss, err, "reading the schema");
        else
            err_set(err, DUET_ERR_INPUT, "%s: not a duet inventory (%s)", ss->path,
                    sqlite3_errmsg(ss->db));
        goto out;
    }
    if (sqlite3_step(st) != SQLITE_ROW || (text = sqlite3_column_text(st, 0)) == NULL ||
        (v = strtol((const char *)text, &end, 10)) <= 0 || *end != '\0' || v > 1000000) {
        err_set(err, DUET_ERR_INPUT, "%s: not a duet inventory (no schema version it knows)",
                ss->path);
        goto out;
    }
    *version = (int)v;
    rc = 0;
out:
    sqlite3_finalize(st);
    return rc;
}

/* The refusal of an inventory written by a newer duet. */
static int
schema_newer(struct sqlite_store *ss, int version, struct duet_err *err)
{
    return err_set(err, DUET_ERR_INPUT,
                   "%s: inventory schema version %d is newer than this duet knows (%d); it was "
                   "written by a newer duet: use that version (or newer), never an older one",
                   ss->path, version, SCHEMA_VERSION);
}

/*
 * Bring the schema to SCHEMA_VERSION inside the caller's open transaction:
 * read the version again (another process may have migrated meanwhile), run
 * each later migration in order, record each in schema_migrations and set
 * meta.schema_version.  Any failure leaves the caller to roll back, so an
 * inventory is never half migrated.
 */
static int
schema_upgrade(struct sqlite_store *ss, struct duet_err *err)
{
    int version = 0;

    if (schema_version(ss, &version, err) != 0)
        return -1;
    if (version > SCHEMA_VERSION)
        return schema_newer(ss, version, err);
    for (; version < SCHEMA_VERSION; version++) {
        sqlite3_stmt *st = NULL;
        char what[96];
        int rc;

        snprintf(what, sizeof(what), "migrating the schema to version %d (%s)", version + 1,
                 migrations[version - 1].what);
        if (exec(ss, migrations[version - 1].sql, what, err) != 0)
            return -1;
        if (prepare(ss,
                    "INSERT INTO schema_migrations (version, applied_at, description) "
                    "VALUES (?, strftime('%s', 'now'), ?)",
                    &st, err) != 0)
            return -1;
        sqlite3_bind_int(st, 1, version + 1);
        sqlite3_bind_text(st, 2, migrations[version - 1].what, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
        sqlite3_finalize(st);
        if (rc != SQLITE_DONE)
            return db_err(ss, err, what);
        if (prepare(ss, "UPDATE meta SET value = ? WHERE key = 'schema_version'", &st, err) != 0)
            return -1;
        sqlite3_bind_int(st, 1, version + 1);
        rc = sqlite3_step(st);
        sqlite3_finalize(st);
        if (rc != SQLITE_DONE || sqlite3_changes(ss->db) != 1)
            return db_err(ss, err, what);
    }
    return 0;
}

/*
 * Put the inventory in WAL mode, and note whether it is (a file system
 * without shared memory leaves it in another mode: store_generation() then
 * always asks SQLite).
 */
static int
journal_wal(struct sqlite_store *ss, struct duet_err *err)
{
    sqlite3_stmt *st = NULL;
    const unsigned char *mode;

    if (prepare(ss, "PRAGMA journal_mode=WAL", &st, err) != 0)
        return -1;
    if (sqlite3_step(st) != SQLITE_ROW) {
        sqlite3_finalize(st);
        return db_err(ss, err, "enabling WAL");
    }
    mode = sqlite3_column_text(st, 0);
    ss->wal = mode != NULL && strcmp((const char *)mode, "wal") == 0;
    sqlite3_finalize(st);
    return 0;
}

/* Open or create the SQLite inventory; see store.h. */
int
store_open_sqlite(const char *path, bool create, struct store **out, struct duet_err *err)
{
    struct sqlite_store *ss = NULL;
    struct stat sb;
    int version = 0;
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX;

    *out = NULL;
    if (!create && stat(path, &sb) != 0)
        return err_set(err, DUET_ERR_INPUT, "%s: no inventory here (run duet ca init first)",
                       path);
    if (create) {
        /* The inventory names owners and locations: readable by its owner only. */
        int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        if (fd >= 0)
            close(fd);
        flags |= SQLITE_OPEN_CREATE;
    }
    ss = calloc(1, sizeof(*ss));
    if (ss == NULL || (ss->path = strdup(path)) == NULL) {
        free(ss);
        return err_nomem(err);
    }
    ss->base.ops = &sqlite_ops;
    if (sqlite3_open_v2(path, &ss->db, flags, NULL) != SQLITE_OK) {
        err_set(err, DUET_ERR_INPUT, "%s: cannot open inventory: %s", path,
                ss->db != NULL ? sqlite3_errmsg(ss->db) : "out of memory");
        goto err;
    }
    sqlite3_busy_timeout(ss->db, BUSY_TIMEOUT_MS);
    sqlite3_extended_result_codes(ss->db, 0);
    if (journal_wal(ss, err) != 0 ||
        exec(ss, "PRAGMA synchronous=FULL", "setting synchronous", err) != 0 ||
        exec(ss, "PRAGMA foreign_keys=ON", "enabling foreign keys", err) != 0)
        goto err;
    if (create) {
        /* A new inventory is made as version 1, then migrated like any other. */
        if (exec(ss, "BEGIN IMMEDIATE", "creating the schema", err) != 0)
            goto err;
        if (exec(ss, schema_v1_sql, "creating the schema", err) != 0 ||
            schema_upgrade(ss, err) != 0 || exec(ss, "COMMIT", "creating the schema", err) != 0) {
            (void)sqlite3_exec(ss->db, "ROLLBACK", NULL, NULL, NULL);
            goto err;
        }
    }
    /* Is it ours, and a version we understand?  Older ones are migrated in place. */
    if (schema_version(ss, &version, err) != 0)
        goto err;
    if (version > SCHEMA_VERSION) {
        schema_newer(ss, version, err);
        goto err;
    }
    if (version < SCHEMA_VERSION) {
        if (exec(ss, "BEGIN IMMEDIATE", "migrating the schema", err) != 0)
            goto err;
        if (schema_upgrade(ss, err) != 0 || exec(ss, "COMMIT", "migrating the schema", err) != 0) {
            (void)sqlite3_exec(ss->db, "ROLLBACK", NULL, NULL, NULL);
            goto err;
        }
    }
    *out = &ss->base;
    return 0;
err:
    sqlite3_close(ss->db);
    free(ss->path);
    free(ss);
    return -1;
}
