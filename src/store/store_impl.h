/* SPDX-License-Identifier: Apache-2.0 */
/*
 * store_impl.h - what a store backend implements.  store.c dispatches the
 * public store_* calls to these operations; each backend embeds struct store
 * as its first member.
 */
#ifndef DUET_STORE_IMPL_H
#define DUET_STORE_IMPL_H

#include "store/store.h"

struct store_ops {
    int (*begin)(struct store *s, struct duet_err *err);
    /* A transaction that only records new certificates; NULL: begin (store_begin_issue). */
    int (*begin_issue)(struct store *s, struct duet_err *err);
    int (*commit)(struct store *s, struct duet_err *err);
    void (*rollback)(struct store *s);
    int (*serial_used)(struct store *s, const char *serial, bool *used, struct duet_err *err);
    int (*insert)(struct store *s, const struct store_cert *c, struct duet_err *err);
    int (*get)(struct store *s, const char *serial, struct store_cert **out,
               struct duet_err *err);
    int (*list)(struct store *s, const struct store_filter *f, bool revoked_only,
                struct store_cert ***out, size_t *n, struct duet_err *err);
    int (*revoke)(struct store *s, const char *serial, int64_t when, int reason, const char *by,
                  struct duet_err *err);
    int (*link_renewal)(struct store *s, const char *old_serial, const char *new_serial,
                        struct duet_err *err);
    int (*next_crl_number)(struct store *s, uint64_t *number, struct duet_err *err);
    int (*crl_get)(struct store *s, bool with_der, struct store_crl **out, uint64_t *revoked,
                   struct duet_err *err);
    int (*crl_put)(struct store *s, const struct store_crl *c, struct duet_err *err);
    int (*token_insert)(struct store *s, const struct store_token *t, struct duet_err *err);
    int (*token_get)(struct store *s, const char *id, struct store_token **out,
                     struct duet_err *err);
    int (*token_redeem)(struct store *s, const char *id, const char *serial, int64_t now,
                        enum store_token_state *state, struct store_token **row,
                        struct duet_err *err);
    int (*token_list)(struct store *s, struct store_token ***out, size_t *n,
                      struct duet_err *err);
    int (*generation)(struct store *s, uint64_t *gen, struct duet_err *err);
    void (*close)(struct store *s);
};

/* The refusal of store_crl_put for a CRL not newer than the published one (where, number). */
#define STORE_CRL_NOT_NEWER                                                                        \
    "%s: CRL number %llu is not above the CRL already published; CRL numbers only grow (the "     \
    "published CRL's number is above the inventory's CRL counter: was the inventory edited?)"

struct store {
    const struct store_ops *ops;
    /* Times the generation op asked the database (store_generation_reads()). */
    uint64_t generation_reads;
};

/*
 * A token's SANs as both backends store them, in one text column: one a line
 * (a token's SAN passed profile_san_parse, as a DNS name, IP address, URI or
 * email address, so it holds no newline).  join
 * returns a new string (the caller frees it), NULL when out of memory; split
 * fills t->sans and t->nsans from such a text (t->sans NULL-terminated, freed
 * with the token), -1 when out of memory.
 */
char *store_token_sans_join(char *const *sans, size_t n);
int store_token_sans_split(const char *text, struct store_token *t);

/*
 * The password of a PostgreSQL URL (after the user name, else a password=
 * parameter), percent-decoded, for scrubbing it from a server's messages;
 * NULL when there is none (or out of memory).  The caller wipes and frees it.
 */
char *store_url_password(const char *url);

#endif
