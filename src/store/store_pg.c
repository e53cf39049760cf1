/* SPDX-License-Identifier: Apache-2.0 */
/*
 * store_pg.c - the inventory on PostgreSQL (libpq), for several CA nodes on
 * one database.
 *
 * The same contracts as store_sqlite.c, kept by the database: the serial is
 * the primary key (never stored twice, rows never deleted); every write
 * transaction but an issuance first updates the one row of duet_meta, which
 * both serialises those writers as SQLite's BEGIN IMMEDIATE does (so no two
 * transactions can deadlock: the meta row is always the first lock taken)
 * and moves duet_meta.generation on, the change counter every node reads
 * before an OCSP answer; CRL numbers come from the same row, so they grow
 * across nodes in commit order; token redemption and renewal links are
 * conditional UPDATEs whose row count says who won.  An issuance
 * (store_begin_issue) takes no lock on duet_meta, so that nodes sign and
 * commit side by side instead of one after the other: it inserts a new row
 * (the primary key refuses a serial twice) and locks at most one existing
 * row (its token, or the certificate it renews), after no other lock, so it
 * cannot deadlock with a writer that holds the meta row; and a new row
 * changes no OCSP answer a node may keep (answers saying unknown are never
 * kept), so the generation need not move.  Every statement is prepared, with
 * its values as parameters: no SQL is ever built from input.  The
 * connection string may hold a password: messages name the server with it
 * replaced by "***" (store_url_redact), never as given.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/x509util.h"
#include "store/store_pg.h"

/* The schema this binary writes: 1 + the number of migrations below. */
#define PG_SCHEMA_VERSION 2

/* Taken (per transaction) while the schema is created or migrated: one node migrates. */
#define PG_SCHEMA_LOCK 0x64756574 /* "duet" */

/*
 * Version 1: everything duet's SQLite inventory holds at its version 3.  The
 * references between rows are checked at commit, so that `duet ca migrate`
 * copies rows in any order.
 */
static const char schema_v1_sql[] =
    "CREATE TABLE duet_schema ("
    "  version integer PRIMARY KEY,"
    "  applied_at bigint NOT NULL,"
    "  description text NOT NULL);"
    "CREATE TABLE duet_meta ("
    "  id integer PRIMARY KEY CHECK (id = 1),"
    "  crl_number bigint NOT NULL,"
    "  generation bigint NOT NULL);"
    "INSERT INTO duet_meta (id, crl_number, generation) VALUES (1, 0, 1);"
    "CREATE TABLE duet_certificates ("
    "  serial text PRIMARY KEY,"
    "  name text NOT NULL,"
    "  subject text NOT NULL,"
    "  issuer text NOT NULL,"
    "  sans text NOT NULL,"
    "  profile text NOT NULL,"
    "  owner text,"
    "  location text,"
    "  key_fingerprint text NOT NULL,"
    "  not_before bigint NOT NULL,"
    "  not_after bigint NOT NULL,"
    "  issued_at bigint NOT NULL,"
    "  status integer NOT NULL DEFAULT 0 CHECK (status IN (0, 1)),"
    "  revoked_at bigint,"
    "  reason integer,"
    "  renews text REFERENCES duet_certificates(serial) DEFERRABLE INITIALLY DEFERRED,"
    "  renewed_by text REFERENCES duet_certificates(serial) DEFERRABLE INITIALLY DEFERRED,"
    "  der bytea NOT NULL,"
    "  revoked_by text);"
    "CREATE INDEX duet_certificates_not_after ON duet_certificates(not_after);"
    "CREATE INDEX duet_certificates_owner ON duet_certificates(owner);"
    "CREATE TABLE duet_tokens ("
    "  id text PRIMARY KEY,"
    "  name text NOT NULL,"
    "  profile text NOT NULL,"
    "  sans text NOT NULL,"
    "  owner text,"
    "  location text,"
    "  created_at bigint NOT NULL,"
    "  expires_at bigint NOT NULL,"
    "  used_at bigint,"
    "  serial text REFERENCES duet_certificates(serial) DEFERRABLE INITIALLY DEFERRED,"
    "  created_by text,"
    "  CHECK ((used_at IS NULL) = (serial IS NULL)));"
    "CREATE INDEX duet_tokens_created_at ON duet_tokens(created_at);";

/*
 * Version 2: the newest CRL signed, one row, which every node serves (a node
 * adopts it when another one published it); the revoked rows indexed, to
 * count and list them without a scan.
 */
static const char schema_v2_sql[] =
    "CREATE TABLE duet_crl ("
    "  id integer PRIMARY KEY CHECK (id = 1),"
    "  number bigint NOT NULL,"
    "  this_update bigint NOT NULL,"
    "  next_update bigint NOT NULL,"
    "  revoked bigint NOT NULL,"
    "  der bytea NOT NULL);"
    "CREATE INDEX duet_certificates_revoked ON duet_certificates(revoked_at) WHERE status = 1;";

#define CERT_COLUMNS                                                                               \
    "serial, name, subject, issuer, sans, profile, owner, location, key_fingerprint, "             \
    "not_before, not_after, issued_at, status, revoked_at, reason, renews, renewed_by, der, "      \
    "revoked_by"
#define TOKEN_COLUMNS                                                                              \
    "id, name, profile, sans, owner, location, created_at, expires_at, used_at, serial, "          \
    "created_by"

static const char *const stmt_sql[ST_COUNT] = {
    [ST_BUMP] = "UPDATE duet_meta SET generation = generation + 1 WHERE id = 1",
    [ST_GEN] = "SELECT generation FROM duet_meta WHERE id = 1",
    [ST_SERIAL_USED] = "SELECT 1 FROM duet_certificates WHERE serial = $1",
    [ST_INSERT] = "INSERT INTO duet_certificates (" CERT_COLUMNS ") VALUES "
                  "($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19)",
    [ST_GET] = "SELECT " CERT_COLUMNS " FROM duet_certificates WHERE serial = $1",
    [ST_LIST] = "SELECT " CERT_COLUMNS " FROM duet_certificates WHERE "
                "($1::bigint = 0 OR (status = 0 AND not_after < $1::bigint)) AND "
                "($2::integer = 0 OR (status = 0 AND not_after > $5::bigint)) AND "
                "($3::integer = 0 OR (status = 0 AND not_after <= $5::bigint)) AND "
                "($4::integer = 0 OR status = 1) AND "
                "($6::text IS NULL OR owner = $6::text) AND "
                "($7::text IS NULL OR profile = $7::text) "
                "ORDER BY not_after, serial",
    [ST_LIST_REVOKED] = "SELECT " CERT_COLUMNS " FROM duet_certificates WHERE status = 1 "
                        "ORDER BY revoked_at, serial",
    [ST_REVOKE] = "UPDATE duet_certificates SET status = 1, revoked_at = $1, reason = $2, "
                  "revoked_by = $3 WHERE serial = $4 AND status = 0",
    [ST_LINK] = "UPDATE duet_certificates SET renewed_by = $1 "
                "WHERE serial = $2 AND renewed_by IS NULL",
    [ST_CRL] = "UPDATE duet_meta SET crl_number = crl_number + 1 WHERE id = 1 "
               "RETURNING crl_number",
    [ST_CRL_GET] = "SELECT (SELECT count(*) FROM duet_certificates WHERE status = 1), c.number, "
                   "c.this_update, c.next_update, c.revoked, CASE WHEN $1::boolean THEN c.der END "
                   "FROM (SELECT 1) AS one LEFT JOIN duet_crl c ON c.id = 1",
    [ST_CRL_PUT] = "INSERT INTO duet_crl (id, number, this_update, next_update, revoked, der) "
                   "VALUES (1, $1, $2, $3, $4, $5) ON CONFLICT (id) DO UPDATE SET "
                   "number = excluded.number, this_update = excluded.this_update, "
                   "next_update = excluded.next_update, revoked = excluded.revoked, "
                   "der = excluded.der WHERE excluded.number > duet_crl.number",
    [ST_TOK_INSERT] = "INSERT INTO duet_tokens (id, name, profile, sans, owner, location, "
                      "created_at, expires_at, used_at, serial, created_by) "
                      "VALUES ($1,$2,$3,$4,$5,$6,$7,$8,NULL,NULL,$9)",
    [ST_TOK_GET] = "SELECT " TOKEN_COLUMNS " FROM duet_tokens WHERE id = $1",
    [ST_TOK_REDEEM] = "UPDATE duet_tokens SET used_at = $1, serial = $2 "
                      "WHERE id = $3 AND used_at IS NULL AND expires_at > $1",
    [ST_TOK_LIST] = "SELECT " TOKEN_COLUMNS " FROM duet_tokens ORDER BY created_at DESC, id",
};

/* --- statements ------------------------------------------------------------ */

/*
 * A server message on one line, without its trailing newline and with the
 * password (should a server ever echo it) masked.
 */
static void
server_message(struct pg_store *ps, const char *msg, char *buf, size_t len)
{
    size_t n;
    char *hit;

    snprintf(buf, len, "%s", msg != NULL ? msg : "");
    for (char *p = buf; *p; p++) {
        if (*p == '\n' || *p == '\r' || *p == '\t')
            *p = ' ';
    }
    n = strlen(buf);
    while (n > 0 && buf[n - 1] == ' ')
        buf[--n] = '\0';
    if (ps->password != NULL && ps->password[0] != '\0') {
        while ((hit = strstr(buf, ps->password)) != NULL)
            memset(hit, '*', strlen(ps->password));
    }
}

/* Record a failure of `what`, naming the server. */
static int
pg_fail(struct pg_store *ps, const PGresult *res, const char *what, struct duet_err *err)
{
    char msg[512];
    const char *state = res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;

    server_message(ps, res != NULL ? PQresultErrorMessage(res) : PQerrorMessage(ps->conn), msg,
                   sizeof(msg));
    if (msg[0] == '\0')
        server_message(ps, PQerrorMessage(ps->conn), msg, sizeof(msg));
    if (PQstatus(ps->conn) == CONNECTION_BAD)
        return err_set(err, DUET_ERR_INPUT,
                       "%s: lost the connection to the inventory database (%s): %s", ps->where,
                       what, msg);
    if (state != NULL &&
        (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0 || strcmp(state, "55P03") == 0))
        return err_set(err, DUET_ERR_INPUT,
                       "%s: the inventory is busy with another node (%s: %s); try again", ps->where,
                       what, msg);
    return err_set(err, DUET_ERR_INPUT, "%s: %s failed: %s", ps->where, what, msg);
}

/* Reconnect after a lost connection, outside a transaction only; prepared statements go. */
static bool
pg_reconnect(struct pg_store *ps)
{
    if (ps->in_txn || PQstatus(ps->conn) != CONNECTION_BAD)
        return false;
    PQreset(ps->conn);
    memset(ps->prepared, 0, sizeof(ps->prepared));
    return PQstatus(ps->conn) == CONNECTION_OK;
}

/*
 * Run prepared statement `st` with text parameters (and, where formats says
 * so, binary ones of the given lengths); results are text.  *res is the
 * result for a command that succeeded (the caller clears it), NULL after a
 * failure recorded in err.  A connection lost outside a transaction is
 * re-established once.
 */
int
store_pg_run(struct pg_store *ps, enum pg_stmt st, int n, const char *const *values,
             const int *lengths, const int *formats, const char *what, PGresult **res,
             struct duet_err *err)
{
    char name[16];
    PGresult *r = NULL;

    *res = NULL;
    snprintf(name, sizeof(name), "duet_%d", (int)st);
    for (int attempt = 0; attempt < 2; attempt++) {
        if (!ps->prepared[st]) {
            r = PQprepare(ps->conn, name, stmt_sql[st], 0, NULL);
            if (PQresultStatus(r) != PGRES_COMMAND_OK) {
                if (attempt == 0 && pg_reconnect(ps)) {
                    PQclear(r);
                    continue;
                }
                pg_fail(ps, r, what, err);
                PQclear(r);
                return -1;
            }
            PQclear(r);
            ps->prepared[st] = true;
        }
        r = PQexecPrepared(ps->conn, name, n, values, lengths, formats, 0);
        if (PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK) {
            *res = r;
            return 0;
        }
        if (attempt == 0 && pg_reconnect(ps)) {
            PQclear(r);
            continue;
        }
        break;
    }
    pg_fail(ps, r, what, err);
    PQclear(r);
    return -1;
}

/* A statement without parameters or rows (BEGIN, COMMIT), through the simple protocol. */
static int
pg_command(struct pg_store *ps, const char *sql, const char *what, struct duet_err *err)
{
    PGresult *r = PQexec(ps->conn, sql);

    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK) {
        if (!ps->in_txn && strcmp(sql, "BEGIN") == 0 && pg_reconnect(ps)) {
            PQclear(r);
            r = PQexec(ps->conn, sql);
            if (PQresultStatus(r) == PGRES_COMMAND_OK) {
                PQclear(r);
                return 0;
            }
        }
        pg_fail(ps, r, what, err);
        PQclear(r);
        return -1;
    }
    PQclear(r);
    return 0;
}

/* See store_pg.h. */
long long
store_pg_num(const char *text)
{
    return text != NULL ? strtoll(text, NULL, 10) : 0;
}

/* See store_pg.h. */
char *
store_pg_field(const PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? NULL : strdup(PQgetvalue(r, row, col));
}

/* --- transactions ---------------------------------------------------------- */

static void pg_rollback(struct store *s);

/*
 * Open a write transaction: BEGIN, then lock duet_meta's row by moving the
 * generation on, as SQLite's BEGIN IMMEDIATE takes the write lock at once.
 */
static int
pg_begin(struct store *s, struct duet_err *err)
{
    struct pg_store *ps = (struct pg_store *)s;
    PGresult *r = NULL;

    if (pg_command(ps, "BEGIN", "starting a transaction", err) != 0)
        return -1;
    ps->in_txn = true;
    if (store_pg_run(ps, ST_BUMP, 0, NULL, NULL, NULL, "starting a transaction", &r, err) != 0) {
        pg_rollback(s);
        return -1;
    }
    PQclear(r);
    return 0;
}

/*
 * Open an issuance's transaction (store_begin_issue): BEGIN only, without the
 * meta row, so another node's issuance or write does not hold this one up.
 */
static int
pg_begin_issue(struct store *s, struct duet_err *err)
{
    struct pg_store *ps = (struct pg_store *)s;

    if (pg_command(ps, "BEGIN", "starting a transaction", err) != 0)
        return -1;
    ps->in_txn = true;
    return 0;
}

static int
pg_commit(struct store *s, struct duet_err *err)
{
    struct pg_store *ps = (struct pg_store *)s;
    PGresult *r = PQexec(ps->conn, "COMMIT");
    int rc = 0;

    /* A COMMIT of a failed transaction answers ROLLBACK: that is a failure too. */
    if (PQresultStatus(r) != PGRES_COMMAND_OK || strcmp(PQcmdStatus(r), "COMMIT") != 0) {
        if (PQresultStatus(r) == PGRES_COMMAND_OK)
            rc = err_set(err, DUET_ERR_INPUT, "%s: the transaction was rolled back by the server",
                         ps->where);
        else
            rc = pg_fail(ps, r, "committing", err);
        PQclear(PQexec(ps->conn, "ROLLBACK"));
    }
    PQclear(r);
    ps->in_txn = false;
    return rc;
}

static void
pg_rollback(struct store *s)
{
    struct pg_store *ps = (struct pg_store *)s;

    if (ps->in_txn)
        PQclear(PQexec(ps->conn, "ROLLBACK"));
    ps->in_txn = false;
}

/*
 * A write outside the caller's transaction runs in one of its own, so that it
 * too takes the meta row first and moves the generation on.  *own says
 * whether store_pg_write_done() must end it.
 */
int
store_pg_write_start(struct pg_store *ps, bool *own, struct duet_err *err)
{
    *own = false;
    if (ps->in_txn)
        return 0;
    if (pg_begin(&ps->base, err) != 0)
        return -1;
    *own = true;
    return 0;
}

/* See store_pg.h. */
int
store_pg_write_done(struct pg_store *ps, bool own, int rc, struct duet_err *err)
{
    if (!own)
        return rc;
    if (rc != 0) {
        pg_rollback(&ps->base);
        return rc;
    }
    return pg_commit(&ps->base, err);
}

/* --- certificates ---------------------------------------------------------- */

static int
pg_serial_used(struct store *s, const char *serial, bool *used, struct duet_err *err)
{
    struct pg_store *ps = (struct pg_store *)s;
    PGresult *r = NULL;
    const char *v[1] = {serial};

    if (store_pg_run(ps, ST_SERIAL_USED, 1, v, NULL, NULL, "looking up a serial", &r, err) != 0)
        return -1;
    *used = PQntuples(r) > 0;
    PQclear(r);
    return 0;
}

static int
pg_insert(struct store *s, const struct store_cert *c, struct duet_err *err)
{
    struct pg_store *ps = (struct pg_store *)s;
    char nb[24], na[24], ia[24], st[4], ra[24], rs[8];
    const char *v[19];
    int lengths[19] = {0};
    int formats[19] = {0};
    PGresult *r = NULL;
    bool own = false;
    int rc;

    snprintf(nb, sizeof(nb), "%lld", (long long)c->not_before);
    snprintf(na, sizeof(na), "%lld", (long long)c->not_after);
    snprintf(ia, sizeof(ia), "%lld", (long long)c->issued_at);
    snprintf(st, sizeof(st), "%d", (int)c->status);
    snprintf(ra, sizeof(ra), "%lld", (long long)c->revoked_at);
    snprintf(rs, sizeof(rs), "%d", c->reason);
    v[0] = c->serial;
    v[1] = c->name;
    v[2] = c->subject;
    v[3] = c->issuer;
    v[4] = c->sans != NULL ? c->sans : "";
    v[5] = c->profile;
    v[6] = c->owner;
    v[7] = c->location;
    v[8] = c->key_fingerprint;
    v[9] = nb;
    v[10] = na;
    v[11] = ia;
    v[12] = st;
    v[13] = c->status == STORE_REVOKED ? ra : NULL;
    v[14] = c->status == STORE_REVOKED ? rs : NULL;
    v[15] = c->renews;
    v[16] = c->renewed_by;
    v[17] = (const char *)c->der;
    lengths[17] = (int)c->der_len;
    formats[17] = 1;
    v[18] = c->status == STORE_REVOKED ? c->revoked_by : NULL;
    if (store_pg_write_start(ps, &own, err) != 0)
        return -1;
    rc = store_pg_run(ps, ST_INSERT, 19, v, lengths, formats, "recording a certificate", &r, err);
    if (rc != 0 && strstr(err->msg, "duet_certificates_pkey") != NULL)
        rc = err_set(err, DUET_ERR_INPUT, "%s: serial %s is already in the inventory", ps->where,
                     c->serial);
    PQclear(r);
    return store_pg_write_done(ps, own, rc, err);
}

/* Row `i` (selected with CERT_COLUMNS) as a record; NULL on OOM. */
static struct store_cert *
row_to_cert(const PGresult *r, int i)
{
    struct store_cert *c = calloc(1, sizeof(*c));
    unsigned char *der;
    size_t n = 0;

    if (c == NULL)
        return NULL;
    c->serial = store_pg_field(r, i, 0);
    c->name = store_pg_field(r, i, 1);
    c->subject = store_pg_field(r, i, 2);
    c->issuer = store_pg_field(r, i, 3);
    c->sans = store_pg_field(r, i, 4);
    c->profile = store_pg_field(r, i, 5);
    c->owner = store_pg_field(r, i, 6);
    c->location = store_pg_field(r, i, 7);
    c->key_fingerprint = store_pg_field(r, i, 8);
    c->not_before = store_pg_num(PQgetvalue(r, i, 9));
    c->not_after = store_pg_num(PQgetvalue(r, i, 10));
    c->issued_at = store_pg_num(PQgetvalue(r, i, 11));
    c->status = store_pg_num(PQgetvalue(r, i, 12)) == 1 ? STORE_REVOKED : STORE_VALID;
    c->revoked_at = store_pg_num(PQgetvalue(r, i, 13));
    c->reason = (int)store_pg_num(PQgetvalue(r, i, 14));
    c->renews = store_pg_field(r, i, 15);
    c->renewed_by = store_pg_field(r, i, 16);
    der = PQunescapeBytea((const unsigned char *)PQgetvalue(r, i, 17), &n);
    if (der != NULL && n > 0 && (c->der = malloc(n)) != NULL) {
        memcpy(c->der, der, n);
        c->der_len = n;
    }
    PQfreemem(der);
    c->revoked_by = store_pg_field(r, i, 18);
    if (c->serial == NULL || c->name == NULL || c->subject == NULL || c->issuer == NULL ||
        c->sans == NULL || c->profile == NULL || c->key_fingerprint == NULL || c->der == NULL) {
        store_cert_free(c);
        return NULL;
    }
    return c;
}

static int
pg_get(struct store *s, const char *serial, struct store_cert **out, struct duet_err *err)
{
    struct pg_store *ps = (struct pg_store *)s;
    PGresult *r = NULL;
    const char *v[1] = {serial};
    int rc = 0;

    *out = NULL;
    if (store_pg_run(ps, ST_GET, 1, v, NULL, NULL, "reading a certificate", &r, err) != 0)
        return -1;
    if (PQntuples(r) > 0 && (*out = row_to_cert(r, 0)) == NULL)
        rc = err_nomem(err);
    PQclear(r);
    return rc;
}

static int
pg_list(struct store *s, const struct store_filter *f, bool revoked_only, struct store_cert ***out,
        size_t *n, struct duet_err *err)
{
    struct pg_store *ps = (struct pg_store *)s;
    char eb[24], ov[4], oe[4], orv[4], now[24];
    const char *v[7];
    PGresult *r = NULL;
    struct store_cert **list = NULL;
    int rows, rc;

    *out = NULL;
    *n = 0;
    if (revoked_only) {
        rc =
            store_pg_run(ps, ST_LIST_REVOKED, 0, NULL, NULL, NULL, "listing certificates", &r, err);
    } else {
        snprintf(eb, sizeof(eb), "%lld", (long long)f->expiring_before);
        snprintf(ov, sizeof(ov), "%d", f->only_valid ? 1 : 0);
        snprintf(oe, sizeof(oe), "%d", f->only_expired ? 1 : 0);
        snprintf(orv, sizeof(orv), "%d", f->only_revoked ? 1 : 0);
        snprintf(now, sizeof(now), "%lld", (long long)f->now);
        v[0] = eb;
        v[1] = ov;
        v[2] = oe;
        v[3] = orv;
        v[4] = now;
        v[5] = f->owner;
        v[6] = f->profile;
        rc = store_pg_run(ps, ST_LIST, 7, v, NULL, NULL, "listing certificates", &r, err);
    }
    if (rc != 0)
        return -1;
    rows = PQntuples(r);
    if (rows > 0 && (list = calloc((size_t)rows, sizeof(*list))) == NULL)
        goto oom;
    for (int i = 0; i < rows; i++) {
        if ((list[i] = row_to_cert(r, i)) == NULL) {
            store_certs_free(list, (size_t)i);
            goto oom;
        }
    }
    PQclear(r);
    *out = list;
    *n = (size_t)rows;
    return 0;
oom:
    PQclear(r);
    return err_nomem(err);
}

static int
pg_revoke(struct store *s, const char *serial, int64_t when, int reason, const char *by,
          struct duet_err *err)
{
    struct pg_store *ps = (struct pg_store *)s;
    struct store_cert *c = NULL;
    char w[24], rs[8];
    const char *v[4] = {w, rs, by, serial};
    PGresult *r = NULL;
    bool own = false;
    int rc = -1;

    if (store_pg_write_start(ps, &own, err) != 0)
        return -1;
    if (pg_get(s, serial, &c, err) != 0)
        goto out;
    if (c == NULL) {
        err_set(err, DUET_ERR_INPUT, "serial %s is not in the inventory %s", serial, ps->where);
        goto out;
    }
    if (c->status == STORE_REVOKED) {
        char when_s[32];
        x509u_fmt_rfc3339(c->revoked_at, when_s, sizeof(when_s));
        err_set(err, DUET_ERR_INPUT,
                "certificate %s (serial %s) is already revoked, since %s (reason: %s)", c->name,
                serial, when_s, x509u_crl_reason(c->reason));
        goto out;
    }
    snprintf(w, sizeof(w), "%lld", (long long)when);
    snprintf(rs, sizeof(rs), "%d", reason);
    if (store_pg_run(ps, ST_REVOKE, 4, v, NULL, NULL, "revoking a certificate", &r, err) != 0)
        goto out;
    if (strcmp(PQcmdTuples(r), "1") != 0) {
        err_set(err, DUET_ERR_INPUT, "serial %s could not be revoked", serial);
        goto out;
    }
    rc = 0;
out:
    PQclear(r);
    store_cert_free(c);
    return store_pg_write_done(ps, own, rc, err);
}

/*
 * Only a certificate not renewed yet: of two renewals racing on two nodes the
 * second one's UPDATE waits for the first one's row lock, then finds
 * renewed_by set and changes nothing, so its certificate is never committed.
 */
static int
pg_link_renewal(struct store *s, const char *old_serial, const char *new_serial,
                struct duet_err *err)
{
    struct pg_store *ps = (struct pg_store *)s;
    const char *v[2] = {new_serial, old_serial};
    struct store_cert *row = NULL;
    PGresult *r = NULL;
    bool own = false;
    int rc = -1;

    if (store_pg_write_start(ps, &own, err) != 0)
        return -1;
    if (store_pg_run(ps, ST_LINK, 2, v, NULL, NULL, "linking a renewal", &r, err) != 0)
        goto out;
    if (strcmp(PQcmdTuples(r), "1") == 0) {
        rc = 0;
        goto out;
    }
    if (pg_get(s, old_serial, &row, err) != 0)
        goto out;
    if (row == NULL)
        err_set(err, DUET_ERR_INPUT, "serial %s is not in the inventory", old_serial);
    else
        err_set(err, DUET_ERR_INPUT,
                "certificate %s was renewed already, by certificate %s; renew with that one",
                old_serial, row->renewed_by != NULL ? row->renewed_by : "?");
out:
    PQclear(r);
    store_cert_free(row);
    return store_pg_write_done(ps, own, rc, err);
}

/* The next CRL number from duet_meta's row: locked until commit, so numbers follow commits. */
static int
pg_next_crl_number(struct store *s, uint64_t *number, struct duet_err *err)
{
    struct pg_store *ps = (struct pg_store *)s;
    PGresult *r = NULL;
    bool own = false;
    int rc = -1;

    if (store_pg_write_start(ps, &own, err) != 0)
        return -1;
    if (store_pg_run(ps, ST_CRL, 0, NULL, NULL, NULL, "taking the next CRL number", &r, err) != 0)
        goto out;
    if (PQntuples(r) != 1) {
        err_set(err, DUET_ERR_INPUT, "%s: the inventory has no CRL counter (duet_meta is empty)",
                ps->where);
        goto out;
    }
    *number = (uint64_t)store_pg_num(PQgetvalue(r, 0, 0));
    rc = 0;
out:
    PQclear(r);
    return store_pg_write_done(ps, own, rc, err);
}

/* The published CRL and the count of revoked rows, in one statement (one snapshot). */
static int
pg_crl_get(struct store *s, bool with_der, struct store_crl **out, uint64_t *revoked,
           struct duet_err *err)
{
    struct pg_store *ps = (struct pg_store *)s;
    const char *v[1] = {with_der ? "true" : "false"};
    struct store_crl *c = NULL;
    PGresult *r = NULL;
    int rc = -1;

    if (store_pg_run(ps, ST_CRL_GET, 1, v, NULL, NULL, "reading the published CRL", &r, err) != 0)
        return -1;
    if (PQntuples(r) != 1) {
        err_set(err, DUET_ERR_INPUT, "%s: reading the published CRL returned %d rows", ps->where,
                PQntuples(r));
        goto out;
    }
    *revoked = (uint64_t)store_pg_num(PQgetvalue(r, 0, 0));
    if (!PQgetisnull(r, 0, 1)) {
        if ((c = calloc(1, sizeof(*c))) == NULL) {
            err_nomem(err);
            goto out;
        }
        c->number = (uint64_t)store_pg_num(PQgetvalue(r, 0, 1));
        c->this_update = store_pg_num(PQgetvalue(r, 0, 2));
        c->next_update = store_pg_num(PQgetvalue(r, 0, 3));
        c->revoked = (uint64_t)store_pg_num(PQgetvalue(r, 0, 4));
        if (with_der && !PQgetisnull(r, 0, 5)) {
            size_t n = 0;
            unsigned char *der = PQunescapeBytea((const unsigned char *)PQgetvalue(r, 0, 5), &n);
            if (der == NULL || (n > 0 && (c->der = malloc(n)) == NULL)) {
                PQfreemem(der);
                store_crl_free(c);
                c = NULL;
                err_nomem(err);
                goto out;
            }
            memcpy(c->der, der, n);
            c->der_len = n;
            PQfreemem(der);
        }
    }
    *out = c;
    rc = 0;
out:
    PQclear(r);
    return rc;
}

/* Replace the published CRL with a newer one only (the number decides). */
static int
pg_crl_put(struct store *s, const struct store_crl *c, struct duet_err *err)
{
    struct pg_store *ps = (struct pg_store *)s;
    char num[24], tu[24], nu[24], rev[24];
    const char *v[5] = {num, tu, nu, rev, (const char *)c->der};
    const int lengths[5] = {0, 0, 0, 0, (int)c->der_len};
    const int formats[5] = {0, 0, 0, 0, 1};
    PGresult *r = NULL;
    bool own = false;
    int rc = -1;

    snprintf(num, sizeof(num), "%llu", (unsigned long long)c->number);
    snprintf(tu, sizeof(tu), "%lld", (long long)c->this_update);
    snprintf(nu, sizeof(nu), "%lld", (long long)c->next_update);
    snprintf(rev, sizeof(rev), "%llu", (unsigned long long)c->revoked);
    if (store_pg_write_start(ps, &own, err) != 0)
        return -1;
    if (store_pg_run(ps, ST_CRL_PUT, 5, v, lengths, formats, "publishing the CRL", &r, err) != 0)
        goto out;
    if (strcmp(PQcmdTuples(r), "1") != 0) {
        err_set(err, DUET_ERR_INPUT, STORE_CRL_NOT_NEWER, ps->where, (unsigned long long)c->number);
        goto out;
    }
    rc = 0;
out:
    PQclear(r);
    return store_pg_write_done(ps, own, rc, err);
}

/*
 * duet_meta.generation as this connection sees it: every write transaction,
 * on any node, moved it on; this handle's own uncommitted writes are visible
 * to it.  One indexed read of one row.
 */
static int
pg_generation(struct store *s, uint64_t *gen, struct duet_err *err)
{
    struct pg_store *ps = (struct pg_store *)s;
    PGresult *r = NULL;
    long long g;

    s->generation_reads++;
    if (store_pg_run(ps, ST_GEN, 0, NULL, NULL, NULL, "reading the inventory's generation", &r,
                     err) != 0)
        return -1;
    if (PQntuples(r) != 1) {
        PQclear(r);
        return err_set(err, DUET_ERR_INPUT,
                       "%s: the inventory has no generation (duet_meta "
                       "is empty)",
                       ps->where);
    }
    g = store_pg_num(PQgetvalue(r, 0, 0));
    PQclear(r);
    /* The first call moves gen from 0 (never returned) to 1. */
    if (ps->gen == 0 || g != ps->seen) {
        ps->gen++;
        ps->seen = g;
    }
    *gen = ps->gen;
    return 0;
}

static void
pg_close(struct store *s)
{
    struct pg_store *ps = (struct pg_store *)s;

    if (ps->in_txn)
        pg_rollback(s);
    PQfinish(ps->conn);
    free(ps->url);
    free(ps->where);
    if (ps->password != NULL) {
        memset(ps->password, 0, strlen(ps->password));
        free(ps->password);
    }
    free(ps);
}

static const struct store_ops pg_ops = {
    .begin = pg_begin,
    .begin_issue = pg_begin_issue,
    .commit = pg_commit,
    .rollback = pg_rollback,
    .serial_used = pg_serial_used,
    .insert = pg_insert,
    .get = pg_get,
    .list = pg_list,
    .revoke = pg_revoke,
    .link_renewal = pg_link_renewal,
    .next_crl_number = pg_next_crl_number,
    .crl_get = pg_crl_get,
    .crl_put = pg_crl_put,
    .token_insert = store_pg_token_insert,
    .token_get = store_pg_token_get,
    .token_redeem = store_pg_token_redeem,
    .token_list = store_pg_token_list,
    .generation = pg_generation,
    .close = pg_close,
};

/* --- opening and the schema ------------------------------------------------ */

/* The schema version in force, 0 when the database holds no duet inventory. */
static int
schema_version(struct pg_store *ps, long *version, struct duet_err *err)
{
    PGresult *r = PQexec(ps->conn, "SELECT to_regclass('duet_schema') IS NOT NULL");
    int rc = -1;

    *version = 0;
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        pg_fail(ps, r, "reading the schema version", err);
        goto out;
    }
    if (strcmp(PQgetvalue(r, 0, 0), "t") != 0) {
        rc = 0;
        goto out;
    }
    PQclear(r);
    r = PQexec(ps->conn, "SELECT coalesce(max(version), 0) FROM duet_schema");
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        pg_fail(ps, r, "reading the schema version", err);
        goto out;
    }
    *version = (long)store_pg_num(PQgetvalue(r, 0, 0));
    rc = 0;
out:
    PQclear(r);
    return rc;
}

/*
 * The schema's versions, in order: migrations[i] takes version i to i + 1
 * (the first one makes the inventory).  Never edit one that has shipped; add
 * the next.
 */
static const struct {
    const char *what;
    const char *sql;
} migrations[] = {
    {"the inventory", schema_v1_sql},
    {"the published CRL", schema_v2_sql},
};

_Static_assert(PG_SCHEMA_VERSION == sizeof(migrations) / sizeof(migrations[0]),
               "PG_SCHEMA_VERSION must be 1 + the number of migrations");

/* Record version v as applied, inside the open transaction. */
static int
schema_record(struct pg_store *ps, long v, const char *what, struct duet_err *err)
{
    char vs[24], at[24];
    const char *vals[3] = {vs, at, what};
    PGresult *r;
    int rc = 0;

    snprintf(vs, sizeof(vs), "%ld", v);
    snprintf(at, sizeof(at), "%lld", (long long)time(NULL));
    r = PQexecParams(ps->conn,
                     "INSERT INTO duet_schema (version, applied_at, description) "
                     "VALUES ($1, $2, $3)",
                     3, NULL, vals, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        rc = pg_fail(ps, r, "recording the schema version", err);
    PQclear(r);
    return rc;
}

/*
 * Create (with `create`) or migrate the schema, in one transaction under an
 * advisory lock, so that two nodes starting at once never both do it and an
 * inventory is never half made or half migrated.
 */
static int
schema_prepare(struct pg_store *ps, bool create, struct duet_err *err)
{
    char lock[64];
    long version = 0;

    if (pg_command(ps, "BEGIN", "preparing the schema", err) != 0)
        return -1;
    ps->in_txn = true;
    snprintf(lock, sizeof(lock), "SELECT pg_advisory_xact_lock(%d)", PG_SCHEMA_LOCK);
    if (pg_command(ps, lock, "locking the schema", err) != 0 ||
        schema_version(ps, &version, err) != 0)
        goto err;
    if (create && version != 0) {
        err_set(err, DUET_ERR_INPUT,
                "%s: this database already holds a duet inventory (schema version %ld); "
                "refusing to make another one in it",
                ps->where, version);
        goto err;
    }
    if (!create && version == 0) {
        err_set(err, DUET_ERR_INPUT,
                "%s: no duet inventory in this database (create one with duet ca init --store)",
                ps->where);
        goto err;
    }
    if (version != 0 && store_pg_check_version(ps->where, version, PG_SCHEMA_VERSION, err) != 0)
        goto err;
    for (; version < PG_SCHEMA_VERSION; version++) {
        char what[128];
        snprintf(what, sizeof(what), "migrating the schema to version %ld (%s)", version + 1,
                 migrations[version].what);
        if (pg_command(ps, migrations[version].sql, what, err) != 0 ||
            schema_record(ps, version + 1, migrations[version].what, err) != 0)
            goto err;
    }
    if (pg_command(ps, "COMMIT", "preparing the schema", err) != 0)
        goto err;
    ps->in_txn = false;
    return 0;
err:
    pg_rollback(&ps->base);
    return -1;
}

/* The server's notices and warnings are not duet's output: libpq would print them on stderr. */
static void
quiet_notice(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

/* Open (creating the schema when `create` is set) the inventory at a URL; see store.h. */
int
store_open_postgres(const char *url, bool create, struct store **out, struct duet_err *err)
{
    struct pg_store *ps = NULL;
    char msg[512];

    *out = NULL;
    if (!store_is_postgres_url(url))
        return err_set(err, DUET_ERR_INPUT,
                       "store: expected a PostgreSQL URL (postgres://[user@]host[:port]/database)");
    for (const unsigned char *p = (const unsigned char *)url; *p; p++) {
        if (*p < 0x20 || *p == 0x7f)
            return err_set(err, DUET_ERR_INPUT,
                           "store: the PostgreSQL URL holds a control character; expected "
                           "visible characters only");
    }
    ps = calloc(1, sizeof(*ps));
    if (ps == NULL)
        return err_nomem(err);
    ps->base.ops = &pg_ops;
    if ((ps->url = strdup(url)) == NULL || (ps->where = store_url_redact(url, "***")) == NULL) {
        err_nomem(err);
        goto err;
    }
    ps->password = store_url_password(url);
    {
        /*
         * Defaults before the URL, which overrides them, kept by every
         * reconnection: a server that does not answer is given up after
         * 10 s, not the kernel's TCP timeout; a write waits for another
         * node's transaction as long as SQLite's busy timeout, then fails
         * saying so.
         */
        static const char *const keys[] = {"connect_timeout", "application_name", "options",
                                           "dbname", NULL};
        const char *values[] = {"10", "duet", "-c lock_timeout=10s -c client_min_messages=warning",
                                url, NULL};
        ps->conn = PQconnectdbParams(keys, values, 1);
    }
    if (ps->conn == NULL) {
        err_nomem(err);
        goto err;
    }
    PQsetNoticeProcessor(ps->conn, quiet_notice, NULL);
    if (PQstatus(ps->conn) != CONNECTION_OK) {
        server_message(ps, PQerrorMessage(ps->conn), msg, sizeof(msg));
        if (strstr(msg, "password authentication failed") != NULL ||
            strstr(msg, "no password supplied") != NULL ||
            strstr(msg, "authentication failed") != NULL)
            err_set(err, DUET_ERR_INPUT,
                    "%s: authentication failed at the inventory database (%s); give the "
                    "password through PGPASSFILE or PGPASSWORD",
                    ps->where, msg);
        else
            err_set(err, DUET_ERR_INPUT,
                    "%s: cannot connect to the inventory database (%s); expected a PostgreSQL "
                    "server there",
                    ps->where, msg);
        goto err;
    }
    if (PQserverVersion(ps->conn) < 100000) {
        err_set(err, DUET_ERR_INPUT, "%s: PostgreSQL %d is too old for duet; expected 10 or newer",
                ps->where, PQserverVersion(ps->conn) / 10000);
        goto err;
    }
    if (schema_prepare(ps, create, err) != 0)
        goto err;
    *out = &ps->base;
    return 0;
err:
    pg_close(&ps->base);
    return -1;
}
