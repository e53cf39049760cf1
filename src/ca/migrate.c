/* SPDX-License-Identifier: Apache-2.0 */
/*
 * migrate.c - `duet ca migrate --to postgres://...`: copy a CA's SQLite
 * inventory into a new PostgreSQL one, verify the copy, and point ca.yaml at
 * it.
 *
 * The copy runs inside a write transaction on the SQLite inventory, so no
 * other duet process can change it meanwhile, and inside one transaction on
 * PostgreSQL, so a failed copy leaves nothing there.  The CRL counter goes on
 * from where SQLite's stood (a CRL number never goes backwards).  Then the
 * PostgreSQL inventory is opened anew and compared with the source: the same
 * number of certificates, every serial with the same DER, status and
 * revocation, the same number of tokens.  The SQLite file is left as it was,
 * a backup of the inventory up to the migration.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ca/ca.h"
#include "lib/fileio.h"

static int
by_serial(const void *a, const void *b)
{
    const struct store_cert *x = *(const struct store_cert *const *)a;
    const struct store_cert *y = *(const struct store_cert *const *)b;

    return strcmp(x->serial, y->serial);
}

/* Every row of src equals the row of dst under the same serial; both sorted here. */
static int
verify_rows(struct store_cert **src, size_t nsrc, struct store_cert **dst, size_t ndst,
            const char *where, struct duet_err *err)
{
    if (nsrc != ndst)
        return err_set(err, DUET_ERR_INPUT,
                       "%s: the copy holds %zu certificates, the SQLite inventory %zu; the "
                       "migration is not complete",
                       where, ndst, nsrc);
    qsort(src, nsrc, sizeof(*src), by_serial);
    qsort(dst, ndst, sizeof(*dst), by_serial);
    for (size_t i = 0; i < nsrc; i++) {
        const struct store_cert *a = src[i], *b = dst[i];
        if (strcmp(a->serial, b->serial) != 0 || a->der_len != b->der_len ||
            memcmp(a->der, b->der, a->der_len) != 0 || a->status != b->status ||
            (a->status == STORE_REVOKED &&
             (a->revoked_at != b->revoked_at || a->reason != b->reason)))
            return err_set(err, DUET_ERR_INPUT,
                           "%s: serial %s differs between the SQLite inventory and the copy", where,
                           a->serial);
    }
    return 0;
}

/* Add `store: "URL"` (without its password) to ca.yaml, which has no store key. */
static int
point_config(struct ca *ca, const char *url, struct duet_err *err)
{
    const char *path = ca_config(ca)->path;
    char *bare = store_url_redact(url, NULL);
    uint8_t *old = NULL;
    size_t len = 0, nlen = 0;
    char *text = NULL;
    FILE *f = NULL;
    int rc = -1;

    if (bare == NULL) {
        err_nomem(err);
        goto out;
    }
    if (fileio_read(path, &old, &len, err) != 0)
        goto out;
    if ((f = open_memstream(&text, &nlen)) == NULL) {
        err_nomem(err);
        goto out;
    }
    fwrite(old, 1, len, f);
    if (len > 0 && old[len - 1] != '\n')
        fputc('\n', f);
    fputs("# The inventory, moved here by duet ca migrate; its password is never written here:\n"
          "# libpq reads it from PGPASSFILE (~/.pgpass) or PGPASSWORD.\nstore: \"",
          f);
    for (const char *p = bare; *p; p++) {
        if (*p == '"' || *p == '\\')
            fputc('\\', f);
        fputc(*p, f);
    }
    fputs("\"\n", f);
    if (fclose(f) != 0 || text == NULL) {
        err_nomem(err);
        goto out;
    }
    rc = fileio_write_atomic(path, (const uint8_t *)text, nlen, 0644, err);
out:
    free(bare);
    free(old);
    free(text);
    return rc;
}

/* Copy the tokens, their use included, into dst (inside its transaction). */
static int
copy_tokens(struct store *dst, struct store_token **v, size_t n, struct duet_err *err)
{
    for (size_t i = 0; i < n; i++) {
        enum store_token_state state;

        if (store_token_insert(dst, v[i], err) != 0)
            return -1;
        if (v[i]->serial == NULL)
            continue;
        if (store_token_redeem(dst, v[i]->id, v[i]->serial, v[i]->used_at, &state, NULL, err) != 0)
            return -1;
        if (state != STORE_TOKEN_REDEEMED)
            return err_set(err, DUET_ERR_INPUT,
                           "a used token (of %s) could not be recorded as used in the copy",
                           v[i]->name);
    }
    return 0;
}

/* Copy and verify the inventory, then point ca.yaml at it; see ca.h. */
int
ca_migrate(struct ca *ca, const char *url, struct ca_migrate_result *res, struct duet_err *err)
{
    const struct ca_config *cfg = ca_config(ca);
    struct store *src = ca_store(ca), *dst = NULL;
    struct store_filter all = {0};
    struct store_cert **certs = NULL, **copied = NULL;
    struct store_token **tokens = NULL, **tcopied = NULL;
    size_t ncerts = 0, ncopied = 0, ntokens = 0, ntcopied = 0;
    char *where = store_url_redact(url, "***");
    uint64_t next_crl = 0, got = 0;
    bool src_txn = false;
    int rc = -1;

    memset(res, 0, sizeof(*res));
    if (where == NULL)
        return err_nomem(err);
    if (cfg->store != NULL && strcmp(cfg->store, "sqlite") != 0) {
        err_set(err, DUET_ERR_INPUT,
                "%s: the inventory is on PostgreSQL already (store: in %s); duet ca migrate "
                "copies the SQLite inventory",
                ca_dir(ca), cfg->path);
        goto out;
    }
    /*
     * The SQLite write lock for the whole copy; the CRL number taken here is
     * the next one, and the transaction is rolled back at the end: the source
     * is left exactly as it was.
     */
    if (store_begin(src, err) != 0)
        goto out;
    src_txn = true;
    if (store_next_crl_number(src, &next_crl, err) != 0 ||
        store_list(src, &all, &certs, &ncerts, err) != 0 ||
        store_token_list(src, &tokens, &ntokens, err) != 0)
        goto out;
    if (store_open_postgres(url, true, &dst, err) != 0 || store_begin(dst, err) != 0)
        goto out;
    for (size_t i = 0; i < ncerts; i++) {
        if (store_insert(dst, certs[i], err) != 0)
            goto rollback;
    }
    if (copy_tokens(dst, tokens, ntokens, err) != 0)
        goto rollback;
    /* The counter stands at next_crl - 1, as SQLite's did. */
    for (got = 0; got + 1 < next_crl;) {
        if (store_next_crl_number(dst, &got, err) != 0)
            goto rollback;
    }
    if (store_commit(dst, err) != 0)
        goto out;
    store_close(dst);
    dst = NULL;
    /* Verify what was committed, read afresh. */
    if (store_open_postgres(url, false, &dst, err) != 0 ||
        store_list(dst, &all, &copied, &ncopied, err) != 0 ||
        store_token_list(dst, &tcopied, &ntcopied, err) != 0)
        goto out;
    if (verify_rows(certs, ncerts, copied, ncopied, where, err) != 0)
        goto out;
    if (ntcopied != ntokens) {
        err_set(err, DUET_ERR_INPUT, "%s: the copy holds %zu tokens, the SQLite inventory %zu",
                where, ntcopied, ntokens);
        goto out;
    }
    res->certs = ncerts;
    res->tokens = ntokens;
    res->crl_number = next_crl - 1;
    if (cfg->store == NULL) {
        if (point_config(ca, url, err) != 0)
            goto out;
        res->config_updated = true;
    }
    rc = 0;
    goto out;
rollback:
    store_rollback(dst);
out:
    if (src_txn)
        store_rollback(src);
    store_close(dst);
    store_certs_free(certs, ncerts);
    store_certs_free(copied, ncopied);
    store_tokens_free(tokens, ntokens);
    store_tokens_free(tcopied, ntcopied);
    free(where);
    return rc;
}
