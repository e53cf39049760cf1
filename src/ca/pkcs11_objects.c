/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pkcs11_objects.c - key objects made in a PKCS#11 token through the
 * module's own function list (see pkcs11_objects.h): generation
 * (C_GenerateKeyPair), import (C_CreateObject) and undoing either.
 *
 * libp11 0.4.12 refuses to store an EC private key and has no key
 * generation duet could use, so the module is dlopen'ed here and driven with
 * p11-kit's PKCS#11 header.  Each call opens the module, finds the token and
 * logs in, does its work in one read-write session and finalizes the module
 * again (unless someone else in the process had initialized it): libp11
 * (pkcs11.c) can then load the same module afresh to sign.
 */
#include "ca/pkcs11_objects.h"

#include <dlfcn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/rand.h>

#define CRYPTOKI_GNU 1
#include <p11-kit/pkcs11.h>

#include "ca/pkcs11.h"
#include "lib/fileio.h"
#include "lib/x509util.h"

/* An open read-write session on the token a URI names. */
struct p11s {
    struct ca_pkcs11_uri u;
    const char *uri;
    void *dl;
    struct ck_function_list *f;
    bool finalize; /* C_Initialize succeeded here, so C_Finalize belongs to us */
    ck_session_handle_t session;
    bool have_session;
    char label[33]; /* the token's label, for messages */
};

/* A PKCS#11 fixed-width, space-padded field as text. */
static void
padded(char *out, const unsigned char *field, size_t n)
{
    memcpy(out, field, n);
    while (n > 0 && out[n - 1] == ' ')
        n--;
    out[n] = '\0';
}

static bool
field_is(const char *want, const unsigned char *field, size_t n)
{
    char have[64];

    if (want == NULL)
        return true;
    padded(have, field, n);
    return strcmp(want, have) == 0;
}

/* Why C_Login failed, in the words pkcs11.c uses for libp11's errors. */
static const char *
login_reason(ck_rv_t rv)
{
    switch (rv) {
    case CKR_PIN_INCORRECT:
    case CKR_PIN_INVALID:
    case CKR_PIN_LEN_RANGE:
        return "the PIN was refused (wrong PIN)";
    case CKR_PIN_LOCKED:
        return "the PIN is locked (too many wrong PINs; the security officer must reset it)";
    case CKR_PIN_EXPIRED:
        return "the PIN has expired; set a new one on the token";
    default:
        return "the token refused the login";
    }
}

static void
p11s_close(struct p11s *s)
{
    if (s->have_session) {
        /* Login is the whole process's: only when the module is ours to finalize. */
        if (s->finalize)
            s->f->C_Logout(s->session);
        s->f->C_CloseSession(s->session);
    }
    if (s->finalize)
        s->f->C_Finalize(NULL);
    if (s->dl != NULL)
        dlclose(s->dl);
    ca_pkcs11_uri_clear(&s->u);
    memset(s, 0, sizeof(*s));
}

/* Find the token among the slots with a token; its slot id in *slot. */
static int
find_token(struct p11s *s, const char *module, ck_slot_id_t *slot, struct duet_err *err)
{
    ck_slot_id_t *ids = NULL;
    unsigned long n = 0;
    char names[256] = "";
    size_t used = 0;
    int rc = -1;

    if (s->f->C_GetSlotList(1, NULL, &n) != CKR_OK ||
        (n > 0 && (ids = calloc(n, sizeof(*ids))) == NULL) ||
        (n > 0 && s->f->C_GetSlotList(1, ids, &n) != CKR_OK) || n == 0) {
        err_set(err, DUET_ERR_INPUT, "%s: the module %s lists no slots", s->uri, module);
        goto out;
    }
    for (unsigned long i = 0; i < n; i++) {
        struct ck_token_info ti;
        char label[33];
        if (s->f->C_GetTokenInfo(ids[i], &ti) != CKR_OK || !(ti.flags & CKF_TOKEN_INITIALIZED))
            continue;
        padded(label, ti.label, sizeof(ti.label));
        if (field_is(s->u.token, ti.label, sizeof(ti.label)) &&
            field_is(s->u.serial, ti.serial_number, sizeof(ti.serial_number)) &&
            field_is(s->u.manufacturer, ti.manufacturer_id, sizeof(ti.manufacturer_id)) &&
            field_is(s->u.model, ti.model, sizeof(ti.model))) {
            *slot = ids[i];
            memcpy(s->label, label, sizeof(label));
            if (ti.flags & CKF_WRITE_PROTECTED) {
                err_set(err, DUET_ERR_INPUT, "%s: token \"%s\" is write-protected", s->uri, label);
                goto out;
            }
            rc = 0;
            goto out;
        }
        if (used + 1 < sizeof(names)) {
            int w =
                snprintf(names + used, sizeof(names) - used, "%s\"%s\"", used ? ", " : "", label);
            used += w > 0 ? (size_t)w : 0;
        }
    }
    err_set(err, DUET_ERR_INPUT, "%s: no such token in %s (tokens present: %s)", s->uri, module,
            used > 0 ? names : "none");
out:
    free(ids);
    return rc;
}

/*
 * Load the module, find the token, open a read-write session and log in.
 * On failure everything is released; on success p11s_close() releases it.
 */
static int
p11s_open(struct p11s *s, const char *uri, struct duet_err *err)
{
    CK_C_GetFunctionList get = NULL;
    struct ck_c_initialize_args args;
    struct ck_token_info ti;
    ck_slot_id_t slot = 0;
    const char *module;
    char *pin = NULL;
    ck_rv_t rv;

    memset(s, 0, sizeof(*s));
    s->uri = uri;
    if (ca_pkcs11_uri_parse(uri, &s->u, err) != 0)
        return -1;
    if ((module = ca_pkcs11_module(&s->u, uri, err)) == NULL)
        goto err;
    if ((s->dl = dlopen(module, RTLD_NOW | RTLD_LOCAL)) == NULL ||
        (*(void **)&get = dlsym(s->dl, "C_GetFunctionList")) == NULL || get(&s->f) != CKR_OK ||
        s->f == NULL) {
        err_set(err, DUET_ERR_INPUT, "%s: the PKCS#11 module %s cannot be loaded", uri, module);
        goto err;
    }
    memset(&args, 0, sizeof(args));
    args.flags = CKF_OS_LOCKING_OK;
    rv = s->f->C_Initialize(&args);
    if (rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED) {
        err_set(err, DUET_ERR_INPUT, "%s: the PKCS#11 module %s failed to start (CKR 0x%lx)", uri,
                module, rv);
        goto err;
    }
    s->finalize = rv == CKR_OK;
    if (find_token(s, module, &slot, err) != 0)
        goto err;
    if (s->f->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s->session) !=
        CKR_OK) {
        err_set(err, DUET_ERR_INPUT, "%s: token \"%s\" opens no read-write session", uri, s->label);
        goto err;
    }
    s->have_session = true;
    if (s->f->C_GetTokenInfo(slot, &ti) != CKR_OK) {
        err_set(err, DUET_ERR_INPUT, "%s: token \"%s\" went away", uri, s->label);
        goto err;
    }
    if (ti.flags & CKF_LOGIN_REQUIRED) {
        if (ca_pkcs11_read_pin(&s->u, &pin, err) != 0)
            goto err;
        if (pin == NULL) {
            err_set(err, DUET_ERR_INPUT,
                    "token \"%s\" needs its PIN: set $" CA_PKCS11_PIN_ENV
                    " or name a 0600 file with pin-source=file:PATH (duet ca init --pin-file)",
                    s->label);
            goto err;
        }
        rv = s->f->C_Login(s->session, CKU_USER, (unsigned char *)pin, strlen(pin));
        fileio_free_secret(pin);
        pin = NULL;
        if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN) {
            err_set(err, DUET_ERR_INPUT, "token \"%s\": %s", s->label, login_reason(rv));
            goto err;
        }
    }
    return 0;
err:
    fileio_free_secret(pin);
    p11s_close(s);
    return -1;
}

/* How many objects match tmpl (0, 1 or "2": more than one), -1 on error. */
static int
count_objects(struct p11s *s, struct ck_attribute *tmpl, unsigned long n)
{
    ck_object_handle_t h[2];
    unsigned long got = 0;

    if (s->f->C_FindObjectsInit(s->session, tmpl, n) != CKR_OK)
        return -1;
    if (s->f->C_FindObjects(s->session, h, 2, &got) != CKR_OK)
        got = (unsigned long)-1;
    s->f->C_FindObjectsFinal(s->session);
    return got == (unsigned long)-1 ? -1 : (int)got;
}

/*
 * Refuse when any object of the token has the URI's label or id: never
 * overwrite a key.  -1 when the search failed, 1 (err set) when taken.
 */
static int
refuse_existing(struct p11s *s, struct duet_err *err)
{
    struct ck_attribute by_label = {CKA_LABEL, s->u.object,
                                    s->u.object != NULL ? strlen(s->u.object) : 0};
    struct ck_attribute by_id = {CKA_ID, s->u.id, s->u.id_len};
    int nl = s->u.object != NULL ? count_objects(s, &by_label, 1) : 0;
    int ni = s->u.id != NULL ? count_objects(s, &by_id, 1) : 0;

    if (nl < 0 || ni < 0)
        return err_set(err, DUET_ERR_INPUT, "%s: the objects of token \"%s\" cannot be searched",
                       s->uri, s->label);
    if (nl > 0)
        return -err_set(err, DUET_ERR_INPUT,
                        "%s: token \"%s\" already holds an object labelled \"%s\"; refusing to "
                        "make another key under that label (name a new object=)",
                        s->uri, s->label, s->u.object);
    if (ni > 0)
        return -err_set(err, DUET_ERR_INPUT,
                        "%s: token \"%s\" already holds an object with that id; refusing to "
                        "make another key under it (name a new id=)",
                        s->uri, s->label);
    return 0;
}

/*
 * The label and id every new object carries: the URI's, and when it names
 * no id, 16 random bytes so the private and public halves pair up.
 */
struct naming {
    uint8_t id[16];
    struct ck_attribute attr[2];
    unsigned long n;
};

static int
naming_init(struct p11s *s, struct naming *nm, struct duet_err *err)
{
    nm->n = 0;
    if (s->u.object != NULL)
        nm->attr[nm->n++] = (struct ck_attribute){CKA_LABEL, s->u.object, strlen(s->u.object)};
    if (s->u.id != NULL) {
        nm->attr[nm->n++] = (struct ck_attribute){CKA_ID, s->u.id, s->u.id_len};
    } else {
        if (RAND_bytes(nm->id, sizeof(nm->id)) != 1)
            return err_set_ssl(err, DUET_ERR_INTERNAL, "no random bytes for a CKA_ID");
        nm->attr[nm->n++] = (struct ck_attribute){CKA_ID, nm->id, sizeof(nm->id)};
    }
    return 0;
}

/* The DER of a named curve's OID, as CKA_EC_PARAMS holds it; *len 0 when unknown. */
static void
ec_params_der(const char *group, uint8_t *out, size_t size, size_t *len)
{
    ASN1_OBJECT *o = OBJ_nid2obj(OBJ_sn2nid(group));
    int n = o != NULL ? i2d_ASN1_OBJECT(o, NULL) : 0;
    unsigned char *p = out;

    *len = 0;
    if (n > 0 && (size_t)n <= size && i2d_ASN1_OBJECT(o, &p) == n)
        *len = (size_t)n;
}

/* CK_TRUE and CK_FALSE for templates (the modules read them, never write). */
static unsigned char yes = 1, no = 0;

/* Generate a key pair in the token; see pkcs11_objects.h. */
int
ca_pkcs11_generate(const char *uri, enum ca_key_type t, struct duet_err *err)
{
    unsigned long modulus_bits = 3072;
    uint8_t e65537[] = {0x01, 0x00, 0x01};
    ck_object_class_t pub_class = CKO_PUBLIC_KEY, priv_class = CKO_PRIVATE_KEY;
    struct ck_mechanism mech = {CKM_EC_KEY_PAIR_GEN, NULL, 0};
    ck_object_handle_t pub = 0, priv = 0;
    uint8_t params[16];
    size_t params_len = 0;
    struct naming nm;
    struct p11s s;
    ck_rv_t rv;
    int rc = -1;

    if (t == CA_KEY_ED25519)
        return err_set(err, DUET_ERR_INPUT,
                       "--generate-key: an ed25519 key in a token cannot sign through libp11; "
                       "expected --key-type p256, p384 or rsa3072");
    if (p11s_open(&s, uri, err) != 0)
        return -1;
    if (refuse_existing(&s, err) != 0 || naming_init(&s, &nm, err) != 0)
        goto out;
    {
        struct ck_attribute pubt[10] = {
            {CKA_CLASS, &pub_class, sizeof(pub_class)},
            {CKA_TOKEN, &yes, 1},
            {CKA_PRIVATE, &no, 1},
            {CKA_VERIFY, &yes, 1},
            {CKA_ENCRYPT, &no, 1},
            {CKA_WRAP, &no, 1},
        };
        struct ck_attribute privt[12] = {
            {CKA_CLASS, &priv_class, sizeof(priv_class)},
            {CKA_TOKEN, &yes, 1},
            {CKA_PRIVATE, &yes, 1},
            {CKA_SENSITIVE, &yes, 1},
            {CKA_EXTRACTABLE, &no, 1},
            {CKA_SIGN, &yes, 1},
            {CKA_DECRYPT, &no, 1},
            {CKA_UNWRAP, &no, 1},
            {CKA_DERIVE, &no, 1},
        };
        unsigned long np = 6, nv = 9;
        if (t == CA_KEY_RSA3072) {
            mech.mechanism = CKM_RSA_PKCS_KEY_PAIR_GEN;
            pubt[np++] =
                (struct ck_attribute){CKA_MODULUS_BITS, &modulus_bits, sizeof(modulus_bits)};
            pubt[np++] = (struct ck_attribute){CKA_PUBLIC_EXPONENT, e65537, sizeof(e65537)};
        } else {
            ec_params_der(t == CA_KEY_P384 ? "secp384r1" : "prime256v1", params, sizeof(params),
                          &params_len);
            pubt[np++] = (struct ck_attribute){CKA_EC_PARAMS, params, params_len};
        }
        for (unsigned long i = 0; i < nm.n; i++) {
            pubt[np++] = nm.attr[i];
            privt[nv++] = nm.attr[i];
        }
        rv = s.f->C_GenerateKeyPair(s.session, &mech, pubt, np, privt, nv, &pub, &priv);
    }
    if (rv != CKR_OK) {
        err_set(err, DUET_ERR_INPUT,
                "%s: token \"%s\" did not generate a %s key pair (CKR 0x%lx%s)", uri, s.label,
                ca_key_type_name(t), rv,
                rv == CKR_MECHANISM_INVALID || rv == CKR_ATTRIBUTE_VALUE_INVALID ||
                        rv == CKR_TEMPLATE_INCONSISTENT
                    ? ": the token does not make this key type; try another --key-type"
                    : "");
        goto out;
    }
    rc = 0;
out:
    p11s_close(&s);
    return rc;
}

/* A BIGNUM parameter of key as big-endian bytes of at least min bytes; NULL on error. */
static uint8_t *
bn_param(EVP_PKEY *key, const char *name, size_t min, size_t *len)
{
    BIGNUM *bn = NULL;
    uint8_t *out = NULL;
    int n;

    if (EVP_PKEY_get_bn_param(key, name, &bn) != 1)
        return NULL;
    n = BN_num_bytes(bn);
    *len = (size_t)n > min ? (size_t)n : min;
    if ((out = OPENSSL_secure_zalloc(*len > 0 ? *len : 1)) != NULL &&
        BN_bn2binpad(bn, out, (int)*len) < 0) {
        OPENSSL_secure_clear_free(out, *len);
        out = NULL;
    }
    BN_clear_free(bn);
    return out;
}

/* The attributes of an imported key: values copied from the key, wiped by attrs_clear. */
struct key_attrs {
    struct ck_attribute pub[14], priv[22];
    unsigned long npub, npriv;
    uint8_t *owned[10];
    size_t owned_len[10];
    size_t nowned;
    ck_key_type_t type;
    uint8_t params[16];
    uint8_t point[160];
};

static void
attrs_clear(struct key_attrs *a)
{
    for (size_t i = 0; i < a->nowned; i++)
        OPENSSL_secure_clear_free(a->owned[i], a->owned_len[i]);
    OPENSSL_cleanse(a, sizeof(*a));
}

/* Add a BIGNUM of key to both templates (pub true) or the private one. */
static bool
add_bn(struct key_attrs *a, EVP_PKEY *key, const char *name, ck_attribute_type_t type, size_t min,
       bool pub)
{
    size_t len = 0;
    uint8_t *v = bn_param(key, name, min, &len);

    if (v == NULL || a->nowned >= sizeof(a->owned) / sizeof(a->owned[0])) {
        if (v != NULL)
            OPENSSL_secure_clear_free(v, len);
        return false;
    }
    a->owned[a->nowned] = v;
    a->owned_len[a->nowned++] = len;
    a->priv[a->npriv++] = (struct ck_attribute){type, v, len};
    if (pub)
        a->pub[a->npub++] = (struct ck_attribute){type, v, len};
    return true;
}

/* Fill the key-specific attributes of both templates, or say why the key cannot go in. */
static int
attrs_of_key(struct key_attrs *a, EVP_PKEY *key, const char *uri, struct duet_err *err)
{
    char desc[64];

    if (EVP_PKEY_is_a(key, "EC")) {
        uint8_t raw[133];
        size_t params_len = 0, raw_len = 0, bits = (size_t)EVP_PKEY_get_bits(key);
        unsigned char *p = a->point;
        ASN1_OCTET_STRING *os = NULL;
        int n;

        a->type = CKK_EC;
        if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, desc, sizeof(desc),
                                           NULL) != 1 ||
            (strcmp(desc, "prime256v1") != 0 && strcmp(desc, "secp384r1") != 0))
            goto refused;
        ec_params_der(desc, a->params, sizeof(a->params), &params_len);
        if (params_len == 0 ||
            EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_PUB_KEY, raw, sizeof(raw),
                                            &raw_len) != 1 ||
            (os = ASN1_OCTET_STRING_new()) == NULL ||
            ASN1_OCTET_STRING_set(os, raw, (int)raw_len) != 1 ||
            (n = i2d_ASN1_OCTET_STRING(os, NULL)) <= 0 || (size_t)n > sizeof(a->point) ||
            i2d_ASN1_OCTET_STRING(os, &p) != n) {
            ASN1_OCTET_STRING_free(os);
            return err_set_ssl(err, DUET_ERR_INTERNAL,
                               "%s: the key's public point cannot be "
                               "encoded",
                               uri);
        }
        ASN1_OCTET_STRING_free(os);
        a->pub[a->npub++] = (struct ck_attribute){CKA_EC_PARAMS, a->params, params_len};
        a->pub[a->npub++] = (struct ck_attribute){CKA_EC_POINT, a->point, (size_t)n};
        a->priv[a->npriv++] = (struct ck_attribute){CKA_EC_PARAMS, a->params, params_len};
        if (!add_bn(a, key, OSSL_PKEY_PARAM_PRIV_KEY, CKA_VALUE, (bits + 7) / 8, false))
            return err_set_ssl(err, DUET_ERR_INPUT, "%s: the key's private value cannot be read",
                               uri);
        return 0;
    }
    if (EVP_PKEY_is_a(key, "RSA") && EVP_PKEY_get_bits(key) >= 2048) {
        a->type = CKK_RSA;
        if (!add_bn(a, key, OSSL_PKEY_PARAM_RSA_N, CKA_MODULUS, 0, true) ||
            !add_bn(a, key, OSSL_PKEY_PARAM_RSA_E, CKA_PUBLIC_EXPONENT, 0, true) ||
            !add_bn(a, key, OSSL_PKEY_PARAM_RSA_D, CKA_PRIVATE_EXPONENT, 0, false) ||
            !add_bn(a, key, OSSL_PKEY_PARAM_RSA_FACTOR1, CKA_PRIME_1, 0, false) ||
            !add_bn(a, key, OSSL_PKEY_PARAM_RSA_FACTOR2, CKA_PRIME_2, 0, false) ||
            !add_bn(a, key, OSSL_PKEY_PARAM_RSA_EXPONENT1, CKA_EXPONENT_1, 0, false) ||
            !add_bn(a, key, OSSL_PKEY_PARAM_RSA_EXPONENT2, CKA_EXPONENT_2, 0, false) ||
            !add_bn(a, key, OSSL_PKEY_PARAM_RSA_COEFFICIENT1, CKA_COEFFICIENT, 0, false))
            return err_set_ssl(err, DUET_ERR_INPUT,
                               "%s: the RSA key lacks its CRT values (p, q, dP, dQ, qInv)", uri);
        return 0;
    }
refused:
    x509u_key_describe(key, desc, sizeof(desc), NULL);
    return err_set(err, DUET_ERR_INPUT,
                   "%s: the key is %s; a token key for duet is EC P-256, P-384 or RSA 2048+", uri,
                   desc);
}

/* Write a key into the token; see pkcs11_objects.h. */
int
ca_pkcs11_import(const char *uri, EVP_PKEY *key, struct duet_err *err)
{
    ck_object_class_t pub_class = CKO_PUBLIC_KEY, priv_class = CKO_PRIVATE_KEY;
    ck_object_handle_t pub = 0, priv = 0;
    struct key_attrs *a = OPENSSL_secure_zalloc(sizeof(*a));
    struct naming nm;
    struct p11s s;
    ck_rv_t rv;
    int rc = -1, taken;

    memset(&s, 0, sizeof(s));
    if (a == NULL)
        return err_nomem(err);
    a->pub[a->npub++] = (struct ck_attribute){CKA_CLASS, &pub_class, sizeof(pub_class)};
    a->pub[a->npub++] = (struct ck_attribute){CKA_KEY_TYPE, &a->type, sizeof(a->type)};
    a->pub[a->npub++] = (struct ck_attribute){CKA_TOKEN, &yes, 1};
    a->pub[a->npub++] = (struct ck_attribute){CKA_PRIVATE, &no, 1};
    a->pub[a->npub++] = (struct ck_attribute){CKA_VERIFY, &yes, 1};
    a->pub[a->npub++] = (struct ck_attribute){CKA_ENCRYPT, &no, 1};
    a->pub[a->npub++] = (struct ck_attribute){CKA_WRAP, &no, 1};
    a->priv[a->npriv++] = (struct ck_attribute){CKA_CLASS, &priv_class, sizeof(priv_class)};
    a->priv[a->npriv++] = (struct ck_attribute){CKA_KEY_TYPE, &a->type, sizeof(a->type)};
    a->priv[a->npriv++] = (struct ck_attribute){CKA_TOKEN, &yes, 1};
    a->priv[a->npriv++] = (struct ck_attribute){CKA_PRIVATE, &yes, 1};
    a->priv[a->npriv++] = (struct ck_attribute){CKA_SENSITIVE, &yes, 1};
    a->priv[a->npriv++] = (struct ck_attribute){CKA_EXTRACTABLE, &no, 1};
    a->priv[a->npriv++] = (struct ck_attribute){CKA_SIGN, &yes, 1};
    a->priv[a->npriv++] = (struct ck_attribute){CKA_DECRYPT, &no, 1};
    a->priv[a->npriv++] = (struct ck_attribute){CKA_UNWRAP, &no, 1};
    a->priv[a->npriv++] = (struct ck_attribute){CKA_DERIVE, &no, 1};
    if (attrs_of_key(a, key, uri, err) != 0)
        goto out;
    if (p11s_open(&s, uri, err) != 0)
        goto out;
    if ((taken = refuse_existing(&s, err)) != 0) {
        rc = taken > 0 ? CA_PKCS11_TAKEN : -1;
        goto out;
    }
    if (naming_init(&s, &nm, err) != 0)
        goto out;
    for (unsigned long i = 0; i < nm.n; i++) {
        a->pub[a->npub++] = nm.attr[i];
        a->priv[a->npriv++] = nm.attr[i];
    }
    rv = s.f->C_CreateObject(s.session, a->priv, a->npriv, &priv);
    if (rv != CKR_OK) {
        err_set(err, DUET_ERR_INPUT,
                "%s: token \"%s\" refused to store the private key (CKR 0x%lx); a hardware "
                "HSM may refuse imported keys by policy: its vendor's tool (key wrapping) is "
                "then the way in",
                uri, s.label, rv);
        goto out;
    }
    rv = s.f->C_CreateObject(s.session, a->pub, a->npub, &pub);
    if (rv != CKR_OK) {
        s.f->C_DestroyObject(s.session, priv);
        err_set(err, DUET_ERR_INPUT,
                "%s: token \"%s\" refused to store the public key (CKR 0x%lx); nothing was "
                "left in it",
                uri, s.label, rv);
        goto out;
    }
    rc = 0;
out:
    p11s_close(&s);
    attrs_clear(a);
    OPENSSL_secure_free(a);
    return rc;
}

/* Undo a generation or an import of this process; see pkcs11_objects.h. */
int
ca_pkcs11_destroy(const char *uri, struct duet_err *err)
{
    ck_object_class_t classes[2] = {CKO_PRIVATE_KEY, CKO_PUBLIC_KEY};
    struct p11s s;
    int rc = 0;

    if (p11s_open(&s, uri, err) != 0)
        return -1;
    for (size_t c = 0; c < 2; c++) {
        struct ck_attribute t[3] = {{CKA_CLASS, &classes[c], sizeof(classes[c])}};
        unsigned long n = 1, got = 0;
        ck_object_handle_t h[8];
        if (s.u.object != NULL)
            t[n++] = (struct ck_attribute){CKA_LABEL, s.u.object, strlen(s.u.object)};
        if (s.u.id != NULL)
            t[n++] = (struct ck_attribute){CKA_ID, s.u.id, s.u.id_len};
        if (s.f->C_FindObjectsInit(s.session, t, n) != CKR_OK) {
            rc = -1;
            continue;
        }
        if (s.f->C_FindObjects(s.session, h, 8, &got) != CKR_OK)
            got = 0, rc = -1;
        s.f->C_FindObjectsFinal(s.session);
        for (unsigned long i = 0; i < got; i++)
            if (s.f->C_DestroyObject(s.session, h[i]) != CKR_OK)
                rc = -1;
    }
    if (rc != 0)
        err_set(err, DUET_ERR_INPUT,
                "%s: the key objects duet made in token \"%s\" could not all be removed; delete "
                "them with pkcs11-tool --delete-object",
                uri, s.label);
    p11s_close(&s);
    return rc;
}
