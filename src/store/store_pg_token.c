/* SPDX-License-Identifier: Apache-2.0 */
/*
 * store_pg_token.c - enrollment tokens in the PostgreSQL inventory: a row per
 * token (its SHA-256, never its text), redeemed once by one conditional
 * UPDATE whose row count says which of two racing nodes won.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store_pg.h"

/* Row `i` (selected with TOKEN_COLUMNS) as a record; NULL on OOM. */
static struct store_token *
row_to_token(const PGresult *r, int i)
{
    struct store_token *t = calloc(1, sizeof(*t));

    if (t == NULL)
        return NULL;
    t->id = store_pg_field(r, i, 0);
    t->name = store_pg_field(r, i, 1);
    t->profile = store_pg_field(r, i, 2);
    t->owner = store_pg_field(r, i, 4);
    t->location = store_pg_field(r, i, 5);
    t->created_at = store_pg_num(PQgetvalue(r, i, 6));
    t->expires_at = store_pg_num(PQgetvalue(r, i, 7));
    t->used_at = store_pg_num(PQgetvalue(r, i, 8));
    t->serial = store_pg_field(r, i, 9);
    t->created_by = store_pg_field(r, i, 10);
    if (t->id == NULL || t->name == NULL || t->profile == NULL ||
        store_token_sans_split(PQgetvalue(r, i, 3), t) != 0) {
        store_token_free(t);
        return NULL;
    }
    return t;
}

/* See store_pg.h. */
int
store_pg_token_insert(struct store *s, const struct store_token *t, struct duet_err *err)
{
    struct pg_store *ps = (struct pg_store *)s;
    char *sans = store_token_sans_join(t->sans, t->nsans);
    char ca[24], ea[24];
    const char *v[9];
    PGresult *r = NULL;
    bool own = false;
    int rc;

    if (sans == NULL)
        return err_nomem(err);
    snprintf(ca, sizeof(ca), "%lld", (long long)t->created_at);
    snprintf(ea, sizeof(ea), "%lld", (long long)t->expires_at);
    v[0] = t->id;
    v[1] = t->name;
    v[2] = t->profile;
    v[3] = sans;
    v[4] = t->owner;
    v[5] = t->location;
    v[6] = ca;
    v[7] = ea;
    v[8] = t->created_by;
    if (store_pg_write_start(ps, &own, err) != 0) {
        free(sans);
        return -1;
    }
    rc = store_pg_run(ps, ST_TOK_INSERT, 9, v, NULL, NULL, "recording a token", &r, err);
    /* The id only: it is a hash, but a token's traces stay out of messages. */
    if (rc != 0 && strstr(err->msg, "duet_tokens_pkey") != NULL)
        rc = err_set(err, DUET_ERR_INPUT, "%s: this token is already in the inventory", ps->where);
    PQclear(r);
    free(sans);
    return store_pg_write_done(ps, own, rc, err);
}

/* See store_pg.h. */
int
store_pg_token_get(struct store *s, const char *id, struct store_token **out, struct duet_err *err)
{
    struct pg_store *ps = (struct pg_store *)s;
    const char *v[1] = {id};
    PGresult *r = NULL;
    int rc = 0;

    *out = NULL;
    if (store_pg_run(ps, ST_TOK_GET, 1, v, NULL, NULL, "reading a token", &r, err) != 0)
        return -1;
    if (PQntuples(r) > 0 && (*out = row_to_token(r, 0)) == NULL)
        rc = err_nomem(err);
    PQclear(r);
    return rc;
}

/*
 * One conditional UPDATE decides a redemption: a second node's UPDATE waits
 * for the first one's row lock, then finds used_at set and changes nothing,
 * so exactly one of two racing calls changes a row.
 */
int
store_pg_token_redeem(struct store *s, const char *id, const char *serial, int64_t now,
                      enum store_token_state *state, struct store_token **row, struct duet_err *err)
{
    struct pg_store *ps = (struct pg_store *)s;
    struct store_token *t = NULL;
    char nw[24];
    const char *v[3] = {nw, serial, id};
    PGresult *r = NULL;
    bool own = false, won;
    int rc = -1;

    if (serial == NULL)
        return err_set(err, DUET_ERR_INTERNAL, "a token is redeemed for a certificate's serial");
    snprintf(nw, sizeof(nw), "%lld", (long long)now);
    if (store_pg_write_start(ps, &own, err) != 0)
        return -1;
    if (store_pg_run(ps, ST_TOK_REDEEM, 3, v, NULL, NULL, "redeeming a token", &r, err) != 0)
        goto out;
    won = strcmp(PQcmdTuples(r), "1") == 0;
    if (store_pg_token_get(s, id, &t, err) != 0)
        goto out;
    if (won)
        *state = STORE_TOKEN_REDEEMED;
    else if (t == NULL)
        *state = STORE_TOKEN_UNKNOWN;
    else if (t->serial != NULL)
        *state = STORE_TOKEN_USED;
    else
        *state = STORE_TOKEN_EXPIRED;
    if (row != NULL) {
        *row = t;
        t = NULL;
    }
    rc = 0;
out:
    PQclear(r);
    store_token_free(t);
    return store_pg_write_done(ps, own, rc, err);
}

/* See store_pg.h. */
int
store_pg_token_list(struct store *s, struct store_token ***out, size_t *n, struct duet_err *err)
{
    struct pg_store *ps = (struct pg_store *)s;
    struct store_token **list = NULL;
    PGresult *r = NULL;
    int rows;

    *out = NULL;
    *n = 0;
    if (store_pg_run(ps, ST_TOK_LIST, 0, NULL, NULL, NULL, "listing tokens", &r, err) != 0)
        return -1;
    rows = PQntuples(r);
    if (rows > 0 && (list = calloc((size_t)rows, sizeof(*list))) == NULL)
        goto oom;
    for (int i = 0; i < rows; i++) {
        if ((list[i] = row_to_token(r, i)) == NULL) {
            store_tokens_free(list, (size_t)i);
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
