/* SPDX-License-Identifier: Apache-2.0 */
/*
 * api.c - the public verifier object and identity accessors of libduet.
 *
 * The verifier collects trust anchors, intermediates and CRLs as they are
 * added (each file checked when it is added, so errors name the file), then
 * runs the one verification path in verify.c.  Errors are kept on the object.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/x509.h>

#include "duet.h"
#include "lib/compat.h"
#include "lib/err.h"
#include "lib/fileio.h"
#include "lib/identity.h"
#include "lib/load.h"
#include "lib/verify.h"
#include "lib/x509util.h"

struct duet_verifier {
    struct duet_err err;
    enum verify_fail fail; /* category of the last verification */
    STACK_OF(X509) *trusted;
    STACK_OF(X509) *untrusted;
    struct revset *revs;
    X509_STORE *store; /* built from `trusted` on first use after a change */
    char *password;
    char *name;
    enum duet_purpose purpose;
    bool use_time;
    int64_t time;
    int max_depth;
    enum duet_crl_scope crl_scope;
    STACK_OF(ASN1_OBJECT) *policies; /* user-initial-policy-set; empty: anyPolicy */
    unsigned policy_flags;           /* DUET_POLICY_* */
    char **valid_policies;           /* of the last successful verification */
    size_t nvalid_policies;
    struct duet_identity *identity;
};

const char *
duet_version(void)
{
    return DUET_VERSION;
}

/* A verifier with the defaults described in duet.h; NULL when out of memory. */
struct duet_verifier *
duet_verifier_new(void)
{
    struct duet_verifier *v = calloc(1, sizeof(*v));

    if (v == NULL)
        return NULL;
    v->trusted = sk_X509_new_null();
    v->untrusted = sk_X509_new_null();
    v->revs = revset_new();
    v->policies = sk_ASN1_OBJECT_new_null();
    if (v->trusted == NULL || v->untrusted == NULL || v->revs == NULL || v->policies == NULL) {
        duet_verifier_free(v);
        return NULL;
    }
    v->max_depth = VERIFY_DEFAULT_MAX_DEPTH;
    return v;
}

/* Forget the valid policy set of the last verification. */
static void
clear_valid_policies(struct duet_verifier *v)
{
    for (size_t i = 0; i < v->nvalid_policies; i++)
        free(v->valid_policies[i]);
    free(v->valid_policies);
    v->valid_policies = NULL;
    v->nvalid_policies = 0;
}

/* Free a verifier and everything it holds; NULL is fine. */
void
duet_verifier_free(struct duet_verifier *v)
{
    if (v == NULL)
        return;
    OSSL_STACK_OF_X509_free(v->trusted);
    OSSL_STACK_OF_X509_free(v->untrusted);
    revset_free(v->revs);
    X509_STORE_free(v->store);
    fileio_free_secret(v->password);
    free(v->name);
    verify_policies_free(v->policies);
    clear_valid_policies(v);
    identity_free(v->identity);
    free(v);
}

/* Move every certificate of `from` onto `to`, leaving `from` empty. */
static int
move_certs(STACK_OF(X509) *to, STACK_OF(X509) *from, struct duet_err *err)
{
    while (sk_X509_num(from) > 0) {
        X509 *x = sk_X509_shift(from);
        if (!sk_X509_push(to, x)) {
            X509_free(x);
            return err_nomem(err);
        }
    }
    return 0;
}

static int
add_certs_file(struct duet_verifier *v, STACK_OF(X509) *to, const char *path)
{
    STACK_OF(X509) *certs = NULL;
    int rc;

    err_clear(&v->err);
    if (path == NULL)
        return err_set(&v->err, DUET_ERR_INPUT, "no file given");
    if (load_certs_file(path, v->password, &certs, &v->err) != 0)
        return -1;
    rc = move_certs(to, certs, &v->err);
    OSSL_STACK_OF_X509_free(certs);
    return rc;
}

int
duet_verifier_add_trusted_file(struct duet_verifier *v, const char *path)
{
    X509_STORE_free(v->store);
    v->store = NULL;
    return add_certs_file(v, v->trusted, path);
}

int
duet_verifier_add_trusted_mem(struct duet_verifier *v, const uint8_t *data, size_t len)
{
    STACK_OF(X509) *certs = NULL;
    int rc;

    err_clear(&v->err);
    X509_STORE_free(v->store);
    v->store = NULL;
    if (load_certs_mem("trusted certificates", data, len, NULL, &certs, &v->err) != 0)
        return -1;
    rc = move_certs(v->trusted, certs, &v->err);
    OSSL_STACK_OF_X509_free(certs);
    return rc;
}

int
duet_verifier_add_untrusted_file(struct duet_verifier *v, const char *path)
{
    return add_certs_file(v, v->untrusted, path);
}

/*
 * Add the CRLs of a file.  A CRL without nextUpdate is refused here: duet
 * cannot tell when it goes stale (RFC 5280 5.1.2.5 requires the field).
 */
int
duet_verifier_add_crl_file(struct duet_verifier *v, const char *path)
{
    err_clear(&v->err);
    if (path == NULL)
        return err_set(&v->err, DUET_ERR_INPUT, "no file given");
    return revset_add_file(v->revs, path, &v->err);
}

/* See duet.h. */
void
duet_verifier_insecure_crl_dsa(struct duet_verifier *v)
{
    revset_insecure_crl_dsa(v->revs);
}

int
duet_verifier_set_password_file(struct duet_verifier *v, const char *path)
{
    char *pw = NULL;

    err_clear(&v->err);
    if (fileio_read_secret(path, &pw, &v->err) != 0)
        return -1;
    fileio_free_secret(v->password);
    v->password = pw;
    return 0;
}

int
duet_verifier_set_purpose(struct duet_verifier *v, enum duet_purpose purpose)
{
    err_clear(&v->err);
    if (purpose != DUET_PURPOSE_ANY && purpose != DUET_PURPOSE_SERVER &&
        purpose != DUET_PURPOSE_CLIENT)
        return err_set(&v->err, DUET_ERR_INPUT, "unknown purpose %d", (int)purpose);
    v->purpose = purpose;
    return 0;
}

int
duet_verifier_set_name(struct duet_verifier *v, const char *name)
{
    char *copy = NULL;

    err_clear(&v->err);
    if (name != NULL) {
        if (!verify_name_valid(name))
            return err_set(&v->err, DUET_ERR_INPUT,
                           "name \"%s\" is neither a DNS name nor an IP address", name);
        if ((copy = strdup(name)) == NULL)
            return err_nomem(&v->err);
    }
    free(v->name);
    v->name = copy;
    return 0;
}

int
duet_verifier_set_time(struct duet_verifier *v, int64_t unix_time)
{
    err_clear(&v->err);
    v->use_time = true;
    v->time = unix_time;
    return 0;
}

int
duet_verifier_set_max_depth(struct duet_verifier *v, int depth)
{
    err_clear(&v->err);
    if (depth < 0 || depth > 32)
        return err_set(&v->err, DUET_ERR_INPUT, "maximum depth %d is out of range 0..32", depth);
    v->max_depth = depth;
    return 0;
}

int
duet_verifier_set_crl_scope(struct duet_verifier *v, enum duet_crl_scope scope)
{
    err_clear(&v->err);
    if (scope != DUET_CRL_CHAIN && scope != DUET_CRL_LEAF)
        return err_set(&v->err, DUET_ERR_INPUT, "unknown CRL scope %d", (int)scope);
    v->crl_scope = scope;
    return 0;
}

/*
 * A policy OID in dotted decimal only: digits and single dots, at least two
 * arcs; OpenSSL's parser alone would also take names ("anyPolicy") and
 * leading zeros.
 */
static bool
policy_oid_valid(const char *oid)
{
    size_t arcs = 0;

    for (const char *c = oid; *c != '\0'; c++) {
        if (*c == '.')
            return false; /* empty arc */
        if (*c == '0' && c[1] >= '0' && c[1] <= '9')
            return false; /* leading zero */
        while (*c >= '0' && *c <= '9')
            c++;
        arcs++;
        if (*c == '\0')
            break;
        if (*c != '.' || c[1] == '\0')
            return false;
    }
    return arcs >= 2;
}

int
duet_verifier_add_policy(struct duet_verifier *v, const char *oid)
{
    ASN1_OBJECT *o;

    err_clear(&v->err);
    if (oid == NULL) {
        sk_ASN1_OBJECT_pop_free(v->policies, ASN1_OBJECT_free);
        v->policies = sk_ASN1_OBJECT_new_null();
        return v->policies != NULL ? 0 : err_nomem(&v->err);
    }
    if (!policy_oid_valid(oid) || (o = OBJ_txt2obj(oid, 1)) == NULL) {
        ERR_clear_error();
        return err_set(&v->err, DUET_ERR_INPUT,
                       "policy \"%s\" is not an OID in dotted decimal such as 2.23.140.1.2.1 "
                       "(2.5.29.32.0 is anyPolicy)",
                       oid);
    }
    if (!sk_ASN1_OBJECT_push(v->policies, o)) {
        ASN1_OBJECT_free(o);
        return err_nomem(&v->err);
    }
    return 0;
}

int
duet_verifier_set_policy_flags(struct duet_verifier *v, unsigned flags)
{
    const unsigned known =
        DUET_POLICY_REQUIRE_EXPLICIT | DUET_POLICY_INHIBIT_MAPPING | DUET_POLICY_INHIBIT_ANY;

    err_clear(&v->err);
    if ((flags & ~known) != 0)
        return err_set(&v->err, DUET_ERR_INPUT, "unknown policy flags 0x%x", flags & ~known);
    v->policy_flags = flags;
    return 0;
}

/* Keep a verification's valid policy set as dotted OIDs on the verifier. */
static int
keep_valid_policies(struct duet_verifier *v, STACK_OF(ASN1_OBJECT) *set)
{
    int n = sk_ASN1_OBJECT_num(set);

    if (n <= 0)
        return 0;
    v->valid_policies = calloc((size_t)n, sizeof(char *));
    if (v->valid_policies == NULL)
        return err_nomem(&v->err);
    for (int i = 0; i < n; i++) {
        char buf[128];
        int len = OBJ_obj2txt(buf, sizeof(buf), sk_ASN1_OBJECT_value(set, i), 1);
        if (len <= 0 || (size_t)len >= sizeof(buf))
            return err_set(&v->err, DUET_ERR_INTERNAL, "a valid policy OID cannot be written");
        if ((v->valid_policies[i] = strdup(buf)) == NULL)
            return err_nomem(&v->err);
        v->nvalid_policies++;
    }
    return 0;
}

size_t
duet_verifier_policy_count(const struct duet_verifier *v)
{
    return v->nvalid_policies;
}

const char *
duet_verifier_policy(const struct duet_verifier *v, size_t i)
{
    return i < v->nvalid_policies ? v->valid_policies[i] : NULL;
}

/* Build the trust store from the anchors added so far. */
static int
build_store(struct duet_verifier *v)
{
    if (v->store != NULL)
        return 0;
    if (sk_X509_num(v->trusted) == 0)
        return err_set(&v->err, DUET_ERR_INPUT, "no trusted certificates were given");
    v->store = X509_STORE_new();
    if (v->store == NULL)
        return err_nomem(&v->err);
    for (int i = 0; i < sk_X509_num(v->trusted); i++) {
        /* Adding the same certificate twice is harmless. */
        if (!X509_STORE_add_cert(v->store, sk_X509_value(v->trusted, i))) {
            X509_STORE_free(v->store);
            v->store = NULL;
            return err_set_ssl(&v->err, DUET_ERR_INTERNAL, "cannot add a trusted certificate");
        }
    }
    return 0;
}

/* Verify the first certificate of certs with the rest as extra intermediates. */
static int
verify_certs(struct duet_verifier *v, STACK_OF(X509) *certs)
{
    struct verify_params p;
    STACK_OF(X509) *extra = NULL;
    STACK_OF(ASN1_OBJECT) *valid = NULL;
    X509 *leaf = sk_X509_value(certs, 0);
    int rc = -1;

    if (build_store(v) != 0)
        return -1;
    memset(&p, 0, sizeof(p));
    p.store = v->store;
    p.untrusted = v->untrusted;
    p.revs = v->revs;
    p.purpose = v->purpose;
    p.name = v->name;
    p.use_time = v->use_time;
    p.time = v->time;
    p.max_depth_set = true;
    p.max_depth = v->max_depth;
    p.crl_scope = v->crl_scope;
    p.policies = v->policies;
    p.require_explicit_policy = (v->policy_flags & DUET_POLICY_REQUIRE_EXPLICIT) != 0;
    p.inhibit_policy_mapping = (v->policy_flags & DUET_POLICY_INHIBIT_MAPPING) != 0;
    p.inhibit_any_policy = (v->policy_flags & DUET_POLICY_INHIBIT_ANY) != 0;
    p.valid_policies = &valid;
    extra = sk_X509_new_null();
    if (extra == NULL)
        return err_nomem(&v->err);
    for (int i = 1; i < sk_X509_num(certs); i++) {
        if (!sk_X509_push(extra, sk_X509_value(certs, i))) {
            err_nomem(&v->err);
            goto out;
        }
    }
    if (verify_chain_ex(&p, leaf, extra, NULL, &v->fail, &v->err) != 0)
        goto out;
    if (keep_valid_policies(v, valid) != 0) {
        clear_valid_policies(v);
        goto out;
    }
    if (identity_from_x509(leaf, &v->identity, &v->err) != 0)
        goto out;
    rc = 0;
out:
    verify_policies_free(valid);
    sk_X509_free(extra);
    return rc;
}

int
duet_verifier_verify_file(struct duet_verifier *v, const char *leaf_path)
{
    STACK_OF(X509) *certs = NULL;
    int rc;

    err_clear(&v->err);
    v->fail = VERIFY_OK;
    identity_free(v->identity);
    v->identity = NULL;
    clear_valid_policies(v);
    if (leaf_path == NULL)
        return err_set(&v->err, DUET_ERR_INPUT, "no certificate file given");
    if (load_certs_file(leaf_path, v->password, &certs, &v->err) != 0)
        return -1;
    rc = verify_certs(v, certs);
    OSSL_STACK_OF_X509_free(certs);
    return rc;
}

int
duet_verifier_verify_mem(struct duet_verifier *v, const uint8_t *data, size_t len)
{
    STACK_OF(X509) *certs = NULL;
    int rc;

    err_clear(&v->err);
    v->fail = VERIFY_OK;
    identity_free(v->identity);
    v->identity = NULL;
    clear_valid_policies(v);
    if (load_certs_mem("certificate", data, len, v->password, &certs, &v->err) != 0)
        return -1;
    rc = verify_certs(v, certs);
    OSSL_STACK_OF_X509_free(certs);
    return rc;
}

const struct duet_identity *
duet_verifier_identity(const struct duet_verifier *v)
{
    return v->identity;
}

const char *
duet_verifier_error(const struct duet_verifier *v)
{
    return v->err.kind == DUET_ERR_NONE ? NULL : v->err.msg;
}

enum duet_err_kind
duet_verifier_error_kind(const struct duet_verifier *v)
{
    return v->err.kind;
}

/*
 * The category of the last error when a certificate was refused
 * (DUET_ERR_INVALID), as verify.c names it; NULL for any other error or none.
 */
const char *
duet_verifier_error_code(const struct duet_verifier *v)
{
    if (v->err.kind != DUET_ERR_INVALID)
        return NULL;
    if (v->fail == VERIFY_OK || v->fail == VERIFY_ERROR)
        return verify_fail_code(VERIFY_OTHER); /* not from a verification; never expected */
    return verify_fail_code(v->fail);
}

const char *
duet_identity_name(const struct duet_identity *id)
{
    return id->name;
}

const char *
duet_identity_subject(const struct duet_identity *id)
{
    return id->subject;
}

const char *
duet_identity_issuer(const struct duet_identity *id)
{
    return id->issuer;
}

const char *
duet_identity_serial(const struct duet_identity *id)
{
    return id->serial;
}

const char *
duet_identity_fingerprint(const struct duet_identity *id)
{
    return id->fingerprint;
}

int64_t
duet_identity_not_before(const struct duet_identity *id)
{
    return id->not_before;
}

int64_t
duet_identity_not_after(const struct duet_identity *id)
{
    return id->not_after;
}

size_t
duet_identity_san_count(const struct duet_identity *id)
{
    return id->nsans;
}

const char *
duet_identity_san(const struct duet_identity *id, size_t i, enum duet_san_type *type)
{
    if (i >= id->nsans)
        return NULL;
    if (type != NULL)
        *type = id->sans[i].type;
    return id->sans[i].value;
}
