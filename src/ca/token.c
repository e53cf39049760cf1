/* SPDX-License-Identifier: Apache-2.0 */
/*
 * token.c - one-time enrollment tokens: made by the operator with a binding
 * (name, profile, SANs, owner, location), redeemed once by a host with a CSR
 * for its own key.
 *
 * Think of whoever presents a token as an attacker who may have stolen it.
 * The token text is 256 bits from RAND_priv_bytes, stored only as its
 * SHA-256, never quoted in a message.  A redemption gets exactly what the
 * token binds, under the token's profile: the CSR contributes its key and,
 * at most, a choice among the bound names; any other extension it asks for
 * is refused by name rather than ignored, so a host learns at once that it
 * will not get CA:TRUE or another key usage.  The token is spent by the one
 * conditional update of store_token_redeem(), inside the transaction that
 * records the certificate (ca_request.in_txn), so two hosts racing with one
 * token get one certificate between them, and a failed issuance spends
 * nothing.
 */
#include "ca/token.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "ca/team.h"
#include "lib/x509util.h"

#define TOKEN_RANDOM_BYTES 32

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* The tag of a checked SAN's type as --san spells it. */
static const char *
san_tag(unsigned type)
{
    switch (type) {
    case PROFILE_SAN_DNS:
        return "dns";
    case PROFILE_SAN_IP:
        return "ip";
    case PROFILE_SAN_URI:
        return "uri";
    default:
        return "email";
    }
}

/* base64url without padding of n bytes into out (4n/3 rounded up, plus NUL). */
static void
b64url_encode(const uint8_t *in, size_t n, char *out)
{
    size_t o = 0;

    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        size_t left = n - i;
        if (left > 1)
            v |= (uint32_t)in[i + 1] << 8;
        if (left > 2)
            v |= in[i + 2];
        out[o++] = b64url[(v >> 18) & 63];
        out[o++] = b64url[(v >> 12) & 63];
        if (left > 1)
            out[o++] = b64url[(v >> 6) & 63];
        if (left > 2)
            out[o++] = b64url[v & 63];
    }
    out[o] = '\0';
}

/* The token's id; see token.h. */
int
ca_token_id(const char *token, char id[65], struct duet_err *err)
{
    const size_t plen = sizeof(CA_TOKEN_PREFIX) - 1;
    uint8_t md[32];
    const char *last;

    /* The shape only, never the text: a mistyped token may be a real one. */
    if (token == NULL || strlen(token) != CA_TOKEN_LEN ||
        strncmp(token, CA_TOKEN_PREFIX, plen) != 0 ||
        strspn(token + plen, b64url) != CA_TOKEN_LEN - plen)
        return err_set(err, DUET_ERR_INPUT,
                       "not a duet enrollment token (expected %s followed by %zu characters of "
                       "base64url, as printed by duet ca token)",
                       CA_TOKEN_PREFIX, CA_TOKEN_LEN - plen);
    /* 43 characters carry 258 bits: the last one's 2 spare bits are zero in a real token. */
    last = strchr(b64url, token[CA_TOKEN_LEN - 1]);
    if (((size_t)(last - b64url) & 3) != 0)
        return err_set(err, DUET_ERR_INPUT, "not a duet enrollment token (its last character "
                                            "cannot end one)");
    if (EVP_Digest(token, CA_TOKEN_LEN, md, NULL, EVP_sha256(), NULL) != 1)
        return err_set_ssl(err, DUET_ERR_INTERNAL, "cannot hash the token");
    for (size_t i = 0; i < sizeof(md); i++)
        snprintf(id + 2 * i, 3, "%02x", md[i]);
    return 0;
}

/* Wipe and free a token's text; see token.h. */
void
ca_token_text_free(char *token)
{
    if (token == NULL)
        return;
    OPENSSL_cleanse(token, strlen(token));
    free(token);
}

/* A name fit for a subject CN: 1 to 64 characters, none a control character (as ca_issue). */
static int
check_name(const char *name, struct duet_err *err)
{
    if (name == NULL || name[0] == '\0' || strlen(name) > 64)
        return err_set(err, DUET_ERR_INPUT,
                       "the token's name (the certificate's CN) must have 1 to 64 characters");
    for (const char *p = name; *p; p++) {
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            return err_set(err, DUET_ERR_INPUT,
                           "the token's name holds the control character 0x%02x; expected "
                           "printable text",
                           (unsigned)(unsigned char)*p);
    }
    return 0;
}

/*
 * The bound names would pass the issuing CA's name constraints (RFC 5280
 * section 4.2.1.10), which the CA's self-check applies at issuance.
 */
static int
check_name_constraints(X509 *issuing, const GENERAL_NAMES *gens, struct duet_err *err)
{
    NAME_CONSTRAINTS *nc = X509_get_ext_d2i(issuing, NID_name_constraints, NULL, NULL);
    X509 *x = NULL;
    int rc = -1, v;

    if (nc == NULL) {
        ERR_clear_error();
        return 0;
    }
    if ((x = X509_new()) == NULL ||
        (sk_GENERAL_NAME_num(gens) > 0 &&
         X509_add1_ext_i2d(x, NID_subject_alt_name, (void *)(uintptr_t)gens, 0, 0) != 1)) {
        err_set_ssl(err, DUET_ERR_INTERNAL, "cannot check the issuing CA's name constraints");
        goto out;
    }
    /* The check reads the names OpenSSL caches from the extensions: fill that cache first. */
    (void)X509_get_extension_flags(x);
    if ((v = NAME_CONSTRAINTS_check(x, nc)) != X509_V_OK) {
        err_set(err, DUET_ERR_INPUT,
                "a name of this token is outside the issuing CA's name constraints (%s); the CA "
                "could not issue it",
                X509_verify_cert_error_string(v));
        goto out;
    }
    rc = 0;
out:
    X509_free(x);
    NAME_CONSTRAINTS_free(nc);
    return rc;
}

/*
 * Check the binding as issuance will, and fill t's name, profile and SANs
 * (normalised, "type:value").
 */
static int
bind_names(struct ca *ca, const struct ca_token_opts *o, struct store_token *t,
           struct duet_err *err)
{
    const struct ca_config *cfg = ca_config(ca);
    const struct ca_profile *p = ca_config_profile(cfg, o->profile);
    GENERAL_NAMES *gens = NULL;
    char *dsan = NULL;
    const char *const *sans = o->sans;
    const char *dsans[1];
    size_t nsans = o->nsans;
    int rc = -1;

    if (check_name(o->name, err) != 0)
        return -1;
    if (p == NULL || strcmp(p->name, "issuing-ca") == 0) {
        char names[256];
        size_t off = 0;
        names[0] = '\0';
        for (size_t i = 0; i < cfg->nprofiles && off < sizeof(names); i++) {
            if (strcmp(cfg->profiles[i].name, "issuing-ca") != 0)
                off += (size_t)snprintf(names + off, sizeof(names) - off, "%s%s",
                                        off > 0 ? ", " : "", cfg->profiles[i].name);
        }
        return err_set(err, DUET_ERR_INPUT, "profile \"%s\" cannot be bound to a token: it is %s; "
                                            "expected one of %s",
                       o->profile != NULL ? o->profile : "",
                       p == NULL ? "not in ca.yaml" : "reserved", names);
    }
    /* A profile with team_from_owner needs the team now, not when the host enrolls. */
    if (ca_team_require(p, o->owner, "--owner", err) != 0)
        return -1;
    if (nsans == 0) {
        if (ca_default_san(cfg, p->name, o->name, o->owner, &dsan, err) != 0)
            return -1;
        if (dsan != NULL) {
            dsans[0] = dsan;
            sans = dsans;
            nsans = 1;
        }
    }
    if ((gens = GENERAL_NAMES_new()) == NULL ||
        (t->sans = calloc(nsans + 1, sizeof(char *))) == NULL) {
        err_nomem(err);
        goto out;
    }
    for (size_t i = 0; i < nsans; i++) {
        struct profile_san s;
        GENERAL_NAME *g = NULL;
        size_t n;
        if (profile_san_parse(sans[i], &s, err) != 0)
            goto out;
        n = strlen(s.value) + 8;
        if ((g = profile_san_to_name(&s)) == NULL || !sk_GENERAL_NAME_push(gens, g) ||
            (t->sans[t->nsans] = malloc(n)) == NULL) {
            GENERAL_NAME_free(g);
            profile_san_clear(&s);
            err_nomem(err);
            goto out;
        }
        snprintf(t->sans[t->nsans++], n, "%s:%s", san_tag(s.type), s.value);
        profile_san_clear(&s);
    }
    /* The certificate will live the profile's default TTL: check with that. */
    if (profile_check_names(cfg, p, gens, p->default_ttl, err) != 0 ||
        check_name_constraints(ca_issuing_cert(ca), gens, err) != 0)
        goto out;
    if ((t->name = strdup(o->name)) == NULL || (t->profile = strdup(p->name)) == NULL) {
        err_nomem(err);
        goto out;
    }
    rc = 0;
out:
    GENERAL_NAMES_free(gens);
    free(dsan);
    return rc;
}

/* Make a token; see token.h. */
int
ca_token_create(struct ca *ca, const struct ca_token_opts *o, char **token,
                struct store_token **row, struct duet_err *err)
{
    uint8_t rnd[TOKEN_RANDOM_BYTES];
    char text[CA_TOKEN_LEN + 4];
    char id[65];
    struct store_token *t = calloc(1, sizeof(*t));
    int64_t now = o->now != 0 ? o->now : (int64_t)time(NULL);
    int64_t ttl = o->ttl != 0 ? o->ttl : CA_TOKEN_DEFAULT_TTL;
    int rc = -1;

    *token = NULL;
    if (row != NULL)
        *row = NULL;
    if (t == NULL)
        return err_nomem(err);
    if (ttl < 0 || ttl > CA_TOKEN_MAX_TTL) {
        err_set(err, DUET_ERR_INPUT,
                "a token lives from 1 second to 7 days (168h); %lld seconds is not allowed",
                (long long)ttl);
        goto out;
    }
    if (bind_names(ca, o, t, err) != 0)
        goto out;
    if ((o->owner != NULL && (t->owner = strdup(o->owner)) == NULL) ||
        (o->location != NULL && (t->location = strdup(o->location)) == NULL) ||
        (o->created_by != NULL && (t->created_by = strdup(o->created_by)) == NULL)) {
        err_nomem(err);
        goto out;
    }
    /* The private DRBG: the bytes are a secret, as a key is. */
    if (RAND_priv_bytes(rnd, sizeof(rnd)) != 1) {
        err_set_ssl(err, DUET_ERR_INTERNAL, "cannot draw random bytes for a token");
        goto out;
    }
    memcpy(text, CA_TOKEN_PREFIX, sizeof(CA_TOKEN_PREFIX) - 1);
    b64url_encode(rnd, sizeof(rnd), text + sizeof(CA_TOKEN_PREFIX) - 1);
    if (ca_token_id(text, id, err) != 0)
        goto out;
    if ((t->id = strdup(id)) == NULL) {
        err_nomem(err);
        goto out;
    }
    t->created_at = now;
    t->expires_at = now + ttl;
    if (store_token_insert(ca_store(ca), t, err) != 0)
        goto out;
    if ((*token = strdup(text)) == NULL) {
        err_nomem(err);
        goto out;
    }
    if (row != NULL) {
        *row = t;
        t = NULL;
    }
    rc = 0;
out:
    OPENSSL_cleanse(rnd, sizeof(rnd));
    OPENSSL_cleanse(text, sizeof(text));
    store_token_free(t);
    return rc;
}

/* Why a known token cannot be used at `now` (0 when it can). */
static int
token_unusable(const struct store_token *t, int64_t now, struct duet_err *err)
{
    char when[32];

    if (t->serial != NULL) {
        x509u_fmt_rfc3339(t->used_at, when, sizeof(when));
        return err_set(err, DUET_ERR_INPUT,
                       "enrollment token already used on %s (certificate serial %s); ask the CA "
                       "operator for a new one",
                       when, t->serial);
    }
    if (t->expires_at <= now) {
        x509u_fmt_rfc3339(t->expires_at, when, sizeof(when));
        return err_set(err, DUET_ERR_INPUT,
                       "enrollment token expired at %s; ask the CA operator for a new one", when);
    }
    return 0;
}

/* The name of an extension for a message: its short name, or its OID. */
static void
ext_name(const X509_EXTENSION *e, char *buf, size_t len)
{
    const ASN1_OBJECT *obj = X509_EXTENSION_get_object((X509_EXTENSION *)(uintptr_t)e);
    int nid = OBJ_obj2nid(obj);

    if (nid != NID_undef)
        snprintf(buf, len, "%s", OBJ_nid2sn(nid));
    else if (OBJ_obj2txt(buf, (int)len, obj, 1) <= 0)
        snprintf(buf, len, "(unreadable)");
}

/*
 * Check a CSR for a token: the signature verifies with its own key, it asks
 * for no extension but one subjectAltName, and each name that asks for is
 * bound to the token.  *chosen (NULL-terminated, borrowed from t) receives
 * the bound names to certify, in the token's order: those asked for, or all
 * when the CSR asks for none.
 */
static int
check_csr(X509_REQ *req, const char *from, const struct store_token *t, const char **chosen,
          size_t *nchosen, struct duet_err *err)
{
    STACK_OF(X509_EXTENSION) *exts = X509_REQ_get_extensions(req);
    EVP_PKEY *pk = X509_REQ_get0_pubkey(req);
    GENERAL_NAMES *gens = NULL;
    bool *want = calloc(t->nsans + 1, sizeof(bool));
    int nsan = 0, rc = -1;

    *nchosen = 0;
    if (want == NULL) {
        err_nomem(err);
        goto out;
    }
    if (pk == NULL || X509_REQ_verify(req, pk) != 1) {
        err_set(err, DUET_ERR_INPUT,
                "%s: the CSR's signature does not verify with its own key; refusing it", from);
        goto out;
    }
    for (int i = 0; exts != NULL && i < sk_X509_EXTENSION_num(exts); i++) {
        const X509_EXTENSION *e = sk_X509_EXTENSION_value(exts, i);
        char name[80];
        if (OBJ_obj2nid(X509_EXTENSION_get_object((X509_EXTENSION *)(uintptr_t)e)) ==
                NID_subject_alt_name &&
            nsan++ == 0)
            continue;
        ext_name(e, name, sizeof(name));
        err_set(err, DUET_ERR_INPUT,
                "%s: the CSR asks for extension %s%s; a certificate from an enrollment token "
                "takes its extensions from profile %s only, so a CSR may ask for subjectAltName "
                "and nothing else",
                from, name, nsan > 1 ? " twice" : "", t->profile);
        goto out;
    }
    if (nsan == 1) {
        gens = X509V3_get_d2i(exts, NID_subject_alt_name, NULL, NULL);
        if (gens == NULL) {
            err_set(err, DUET_ERR_INPUT,
                    "%s: the CSR's subjectAltName extension cannot be decoded; refusing it", from);
            goto out;
        }
    }
    /* Each name asked for, read strictly from its bytes, must be one the token binds. */
    for (int i = 0; gens != NULL && i < sk_GENERAL_NAME_num(gens); i++) {
        struct profile_san s;
        bool bound = false;
        if (profile_san_from_name(sk_GENERAL_NAME_value(gens, i), "the CSR", &s, err) != 0) {
            err_prefix(err, "%s", from);
            goto out;
        }
        for (size_t k = 0; k < t->nsans && !bound; k++) {
            const char *colon = strchr(t->sans[k], ':');
            size_t tl = colon != NULL ? (size_t)(colon - t->sans[k]) : 0;
            if (colon != NULL && strlen(san_tag(s.type)) == tl &&
                strncmp(t->sans[k], san_tag(s.type), tl) == 0 && strcmp(colon + 1, s.value) == 0)
                bound = want[k] = true;
        }
        if (!bound) {
            err_set(err, DUET_ERR_INPUT,
                    "%s: the CSR asks for name %s:%s, which is not bound to this enrollment "
                    "token; ask only for the token's names (or none)",
                    from, san_tag(s.type), s.value);
            profile_san_clear(&s);
            goto out;
        }
        profile_san_clear(&s);
    }
    for (size_t k = 0; k < t->nsans; k++) {
        if (want[k] || gens == NULL || sk_GENERAL_NAME_num(gens) == 0)
            chosen[(*nchosen)++] = t->sans[k];
    }
    chosen[*nchosen] = NULL;
    rc = 0;
out:
    ERR_clear_error();
    GENERAL_NAMES_free(gens);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    free(want);
    return rc;
}

/* What the step inside the issuance transaction needs and reports. */
struct redeem_ctx {
    const char *id;
    int64_t now;
    struct store_token *used; /* the token as used */
};

/*
 * Spend the token for the certificate being issued: the one conditional
 * update of store_token_redeem decides, so a token spent by another process
 * since it was read is refused here and the issuance rolled back.
 */
static int
redeem_in_txn(struct store *s, const char *serial, void *arg, struct duet_err *err)
{
    struct redeem_ctx *r = arg;
    enum store_token_state state = STORE_TOKEN_UNKNOWN;
    struct store_token *t = NULL;

    if (store_token_redeem(s, r->id, serial, r->now, &state, &t, err) != 0)
        return -1;
    if (state == STORE_TOKEN_REDEEMED) {
        r->used = t;
        return 0;
    }
    if (state == STORE_TOKEN_UNKNOWN || t == NULL)
        err_set(err, DUET_ERR_INPUT, "unknown enrollment token");
    else if (token_unusable(t, r->now, err) == 0)
        err_set(err, DUET_ERR_INTERNAL, "the enrollment token could not be used");
    store_token_free(t);
    return -1;
}

/* Redeem a token with a CSR; see token.h. */
int
ca_token_redeem(struct ca *ca, const char *token, X509_REQ *req, const char *from, int64_t now,
                int64_t ttl, X509 **cert, bool *clamped, struct store_token **row,
                struct duet_err *err)
{
    struct redeem_ctx ctx = {.now = now != 0 ? now : (int64_t)time(NULL)};
    struct store_token *t = NULL;
    const char **chosen = NULL;
    size_t nchosen = 0;
    char id[65];
    int rc = -1;

    *cert = NULL;
    if (row != NULL)
        *row = NULL;
    if (clamped != NULL)
        *clamped = false;
    if (ca_token_id(token, id, err) != 0)
        return -1;
    if (store_token_get(ca_store(ca), id, &t, err) != 0)
        return -1;
    if (t == NULL)
        return err_set(err, DUET_ERR_INPUT,
                       "unknown enrollment token (not made by this CA, or mistyped)");
    /* Early and clear; the update inside the transaction decides for good. */
    if (token_unusable(t, ctx.now, err) != 0)
        goto out;
    if ((chosen = calloc(t->nsans + 1, sizeof(char *))) == NULL) {
        err_nomem(err);
        goto out;
    }
    if (check_csr(req, from, t, chosen, &nchosen, err) != 0)
        goto out;
    ctx.id = id;
    {
        struct ca_request r = {.profile = t->profile,
                               .cn = t->name,
                               .sans = chosen,
                               .nsans = nchosen,
                               .owner = t->owner,
                               .location = t->location,
                               .pubkey = X509_REQ_get0_pubkey(req),
                               .ttl = ttl,
                               .now = ctx.now,
                               .in_txn = redeem_in_txn,
                               .in_txn_arg = &ctx};
        if (ca_issue(ca, &r, cert, clamped, err) != 0)
            goto out;
    }
    if (row != NULL) {
        *row = ctx.used;
        ctx.used = NULL;
    }
    rc = 0;
out:
    store_token_free(ctx.used);
    store_token_free(t);
    free(chosen);
    return rc;
}
