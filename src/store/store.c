/* SPDX-License-Identifier: Apache-2.0 */
/*
 * store.c - the backend-independent part of the inventory: dispatch,
 * records, status, the canonical form of serial numbers and the stored form
 * of a token's SANs.
 */
#include "store/store.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "lib/x509util.h"
#include "store/store_impl.h"

int
store_begin(struct store *s, struct duet_err *err)
{
    return s->ops->begin(s, err);
}

int
store_begin_issue(struct store *s, struct duet_err *err)
{
    return s->ops->begin_issue != NULL ? s->ops->begin_issue(s, err) : s->ops->begin(s, err);
}

int
store_commit(struct store *s, struct duet_err *err)
{
    return s->ops->commit(s, err);
}

void
store_rollback(struct store *s)
{
    s->ops->rollback(s);
}

int
store_serial_used(struct store *s, const char *serial, bool *used, struct duet_err *err)
{
    return s->ops->serial_used(s, serial, used, err);
}

int
store_insert(struct store *s, const struct store_cert *c, struct duet_err *err)
{
    return s->ops->insert(s, c, err);
}

int
store_get(struct store *s, const char *serial, struct store_cert **out, struct duet_err *err)
{
    return s->ops->get(s, serial, out, err);
}

int
store_list(struct store *s, const struct store_filter *f, struct store_cert ***out, size_t *n,
           struct duet_err *err)
{
    return s->ops->list(s, f, false, out, n, err);
}

int
store_list_revoked(struct store *s, struct store_cert ***out, size_t *n, struct duet_err *err)
{
    return s->ops->list(s, NULL, true, out, n, err);
}

int
store_revoke(struct store *s, const char *serial, int64_t when, int reason, const char *by,
             struct duet_err *err)
{
    return s->ops->revoke(s, serial, when, reason, by, err);
}

int
store_link_renewal(struct store *s, const char *old_serial, const char *new_serial,
                   struct duet_err *err)
{
    return s->ops->link_renewal(s, old_serial, new_serial, err);
}

int
store_next_crl_number(struct store *s, uint64_t *number, struct duet_err *err)
{
    return s->ops->next_crl_number(s, number, err);
}

int
store_crl_get(struct store *s, bool with_der, struct store_crl **out, uint64_t *revoked,
              struct duet_err *err)
{
    *out = NULL;
    *revoked = 0;
    return s->ops->crl_get(s, with_der, out, revoked, err);
}

int
store_crl_put(struct store *s, const struct store_crl *c, struct duet_err *err)
{
    return s->ops->crl_put(s, c, err);
}

/* Free a published CRL's record; see store.h. */
void
store_crl_free(struct store_crl *c)
{
    if (c == NULL)
        return;
    free(c->der);
    free(c);
}

int
store_token_insert(struct store *s, const struct store_token *t, struct duet_err *err)
{
    for (size_t i = 0; i < t->nsans; i++) {
        if (strchr(t->sans[i], '\n') != NULL)
            return err_set(err, DUET_ERR_INPUT, "a token's name cannot hold a newline");
    }
    return s->ops->token_insert(s, t, err);
}

int
store_token_get(struct store *s, const char *id, struct store_token **out, struct duet_err *err)
{
    return s->ops->token_get(s, id, out, err);
}

int
store_token_redeem(struct store *s, const char *id, const char *serial, int64_t now,
                   enum store_token_state *state, struct store_token **row, struct duet_err *err)
{
    if (row != NULL)
        *row = NULL;
    return s->ops->token_redeem(s, id, serial, now, state, row, err);
}

int
store_generation(struct store *s, uint64_t *gen, struct duet_err *err)
{
    return s->ops->generation(s, gen, err);
}

uint64_t
store_generation_reads(const struct store *s)
{
    return s->generation_reads;
}

int
store_token_list(struct store *s, struct store_token ***out, size_t *n, struct duet_err *err)
{
    return s->ops->token_list(s, out, n, err);
}

/* Free a token record; NULL is fine. */
void
store_token_free(struct store_token *t)
{
    if (t == NULL)
        return;
    free(t->id);
    free(t->name);
    free(t->profile);
    for (size_t i = 0; t->sans != NULL && i < t->nsans; i++)
        free(t->sans[i]);
    free(t->sans);
    free(t->owner);
    free(t->location);
    free(t->serial);
    free(t->created_by);
    free(t);
}

/* A token's SANs, one a line; see store_impl.h. */
char *
store_token_sans_join(char *const *sans, size_t n)
{
    size_t len = 1;
    char *out, *p;

    for (size_t i = 0; i < n; i++)
        len += strlen(sans[i]) + 1;
    if ((out = malloc(len)) == NULL)
        return NULL;
    p = out;
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            *p++ = '\n';
        p = stpcpy(p, sans[i]);
    }
    *p = '\0';
    return out;
}

/* Split stored SANs into t->sans; see store_impl.h. */
int
store_token_sans_split(const char *text, struct store_token *t)
{
    size_t n = *text != '\0' ? 1 : 0;

    for (const char *p = text; *p; p++)
        n += *p == '\n';
    if ((t->sans = calloc(n + 1, sizeof(char *))) == NULL)
        return -1;
    for (const char *p = text; t->nsans < n; t->nsans++) {
        const char *nl = strchr(p, '\n');
        size_t l = nl != NULL ? (size_t)(nl - p) : strlen(p);
        if ((t->sans[t->nsans] = strndup(p, l)) == NULL)
            return -1;
        p += l + (nl != NULL);
    }
    return 0;
}

/* Free a list of token records and the list; NULL is fine. */
void
store_tokens_free(struct store_token **v, size_t n)
{
    if (v == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        store_token_free(v[i]);
    free(v);
}

/* Close a store; NULL is fine. */
void
store_close(struct store *s)
{
    if (s != NULL)
        s->ops->close(s);
}

void
store_cert_free(struct store_cert *c)
{
    if (c == NULL)
        return;
    free(c->serial);
    free(c->name);
    free(c->subject);
    free(c->issuer);
    free(c->sans);
    free(c->profile);
    free(c->owner);
    free(c->location);
    free(c->key_fingerprint);
    free(c->renews);
    free(c->renewed_by);
    free(c->revoked_by);
    free(c->der);
    free(c);
}

void
store_certs_free(struct store_cert **v, size_t n)
{
    if (v == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        store_cert_free(v[i]);
    free(v);
}

const char *
store_status_text(const struct store_cert *c, int64_t now)
{
    if (c->status == STORE_REVOKED)
        return "revoked";
    if (c->not_after <= now)
        return "expired";
    return "valid";
}

/* Canonical serial; see store.h. */
char *
store_serial_canonical(const char *text, struct duet_err *err)
{
    uint8_t bytes[64];
    size_t nhex = 0;
    size_t nbytes;
    size_t start = 0;
    char hex[130];
    const char *p = text;

    if (text == NULL || *text == '\0') {
        err_set(err, DUET_ERR_INPUT, "empty serial number");
        return NULL;
    }
    if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X'))
        p += 2;
    for (; *p != '\0'; p++) {
        if (*p == ':' || *p == ' ')
            continue;
        if (!isxdigit((unsigned char)*p) || nhex + 1 >= sizeof(hex)) {
            err_set(err, DUET_ERR_INPUT,
                    "\"%s\" is not a serial number; expected hex such as 3F:A1:07 or 3fa107",
                    text);
            return NULL;
        }
        hex[nhex++] = (char)toupper((unsigned char)*p);
    }
    if (nhex == 0) {
        err_set(err, DUET_ERR_INPUT, "\"%s\" is not a serial number", text);
        return NULL;
    }
    /* Odd digit counts get a leading zero; then bytes, minus leading zero bytes. */
    nbytes = (nhex + 1) / 2;
    for (size_t i = 0; i < nbytes; i++) {
        size_t hi = 2 * i - (nhex % 2);
        int v = 0;
        for (size_t k = 0; k < 2; k++) {
            size_t idx = hi + k;
            if ((nhex % 2) && i == 0 && k == 0)
                continue;
            char c = hex[idx];
            v = v * 16 + (isdigit((unsigned char)c) ? c - '0' : c - 'A' + 10);
        }
        bytes[i] = (uint8_t)v;
    }
    while (start + 1 < nbytes && bytes[start] == 0)
        start++;
    char *s = x509u_hex_colon(bytes + start, nbytes - start);
    if (s == NULL)
        err_nomem(err);
    return s;
}
