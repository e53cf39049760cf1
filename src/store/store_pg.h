/* SPDX-License-Identifier: Apache-2.0 */
/*
 * store_pg.h - what the PostgreSQL inventory's files share: the connection,
 * the prepared statements by index, running one, and a write inside the
 * caller's transaction or one of its own.  store_pg.c holds the connection,
 * the schema, transactions and certificates; store_pg_token.c the
 * enrollment tokens.
 */
#ifndef DUET_STORE_PG_H
#define DUET_STORE_PG_H

#include <libpq-fe.h>

#include "store/store_impl.h"

/* The prepared statements, by index. */
enum pg_stmt {
    ST_BUMP,
    ST_GEN,
    ST_SERIAL_USED,
    ST_INSERT,
    ST_GET,
    ST_LIST,
    ST_LIST_REVOKED,
    ST_REVOKE,
    ST_LINK,
    ST_CRL,
    ST_CRL_GET,
    ST_CRL_PUT,
    ST_TOK_INSERT,
    ST_TOK_GET,
    ST_TOK_REDEEM,
    ST_TOK_LIST,
    ST_COUNT
};

struct pg_store {
    struct store base;
    PGconn *conn;
    char *url;      /* as given, for reconnecting */
    char *where;    /* the URL with its password masked, for messages */
    char *password; /* the URL's password (NULL: none), scrubbed from server messages */
    bool in_txn;
    bool prepared[ST_COUNT];
    /* store_generation(): gen moves on whenever duet_meta.generation differs from seen. */
    long long seen;
    uint64_t gen;
};

/*
 * Run prepared statement `st` with text parameters (binary ones where formats
 * says so, of the given lengths); results are text.  *res is the result of a
 * statement that succeeded (the caller clears it), NULL after a failure
 * recorded in err, naming the server.  A connection lost outside a
 * transaction is re-established once.
 */
int store_pg_run(struct pg_store *ps, enum pg_stmt st, int n, const char *const *values,
                 const int *lengths, const int *formats, const char *what, PGresult **res,
                 struct duet_err *err) MUST_CHECK;
/*
 * A write outside the caller's transaction runs in one of its own (taking the
 * meta row first, moving the generation on); *own says whether
 * store_pg_write_done() ends it: committed when rc is 0, else rolled back.
 * store_pg_write_done returns rc, or -1 when the commit fails.
 */
int store_pg_write_start(struct pg_store *ps, bool *own, struct duet_err *err) MUST_CHECK;
int store_pg_write_done(struct pg_store *ps, bool own, int rc, struct duet_err *err) MUST_CHECK;
/* A text column as a number (0 for NULL), and as a new string (NULL for NULL). */
long long store_pg_num(const char *text);
char *store_pg_field(const PGresult *r, int row, int col);

/* The token operations of store_ops (store_pg_token.c). */
int store_pg_token_insert(struct store *s, const struct store_token *t, struct duet_err *err);
int store_pg_token_get(struct store *s, const char *id, struct store_token **out,
                       struct duet_err *err);
int store_pg_token_redeem(struct store *s, const char *id, const char *serial, int64_t now,
                          enum store_token_state *state, struct store_token **row,
                          struct duet_err *err);
int store_pg_token_list(struct store *s, struct store_token ***out, size_t *n,
                        struct duet_err *err);

#endif
