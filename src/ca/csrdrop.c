/* SPDX-License-Identifier: Apache-2.0 */
/*
 * csrdrop.c - the parts of a CSR that the signed certificate does not carry;
 * see csrdrop.h.  Nothing here decides what is signed: ca_issue() and the
 * profile did; this only reports the difference, read from both structures.
 */
#include "ca/csrdrop.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

const char *
ca_drop_kind_name(enum ca_drop_kind k)
{
    switch (k) {
    case CA_DROP_SUBJECT:
        return "subject";
    case CA_DROP_SAN:
        return "san";
    case CA_DROP_EXTENSION:
        return "extension";
    case CA_DROP_ATTRIBUTE:
        return "attribute";
    }
    return "?";
}

const char *
ca_drop_reason(enum ca_drop_kind k)
{
    switch (k) {
    case CA_DROP_SUBJECT:
        return "the CA writes the subject: the CN, O of ca.yaml, the profile's team";
    case CA_DROP_SAN:
        return "not among the names certified";
    case CA_DROP_EXTENSION:
        return "the profile decides the extensions";
    case CA_DROP_ATTRIBUTE:
        return "CSR attributes are never used";
    }
    return "";
}

void
ca_drops_free(struct ca_drop *d, size_t n)
{
    for (size_t i = 0; d != NULL && i < n; i++) {
        free(d[i].name);
        free(d[i].value);
    }
    free(d);
}

/* The short name of an object, else its dotted OID; NULL when out of memory. */
static char *
obj_name(const ASN1_OBJECT *o)
{
    char buf[128];
    int nid = OBJ_obj2nid(o);

    if (nid != NID_undef && OBJ_nid2sn(nid) != NULL)
        return strdup(OBJ_nid2sn(nid));
    if (OBJ_obj2txt(buf, sizeof(buf), o, 1) <= 0)
        snprintf(buf, sizeof(buf), "?");
    return strdup(buf);
}

/* Append one entry; takes ownership of name and value. */
static int
push(struct ca_drop **v, size_t *n, enum ca_drop_kind k, char *name, char *value, bool critical,
     struct duet_err *err)
{
    struct ca_drop *nv;

    if (name == NULL || (nv = realloc(*v, (*n + 1) * sizeof(**v))) == NULL) {
        free(name);
        free(value);
        return err_nomem(err);
    }
    *v = nv;
    (*v)[*n].kind = k;
    (*v)[*n].name = name;
    (*v)[*n].value = value;
    (*v)[*n].critical = critical;
    (*n)++;
    return 0;
}

/* An ASN1_STRING as a new UTF-8 string; the front end escapes it for its sink. */
static char *
utf8_of(const ASN1_STRING *s)
{
    unsigned char *u = NULL;
    int len = ASN1_STRING_to_UTF8(&u, s);
    char *out;

    if (len < 0) {
        ERR_clear_error();
        return strdup("(undecodable)");
    }
    out = malloc((size_t)len + 1);
    if (out != NULL) {
        /* An embedded NUL would cut the text short: show it as a visible byte. */
        for (int i = 0; i < len; i++)
            out[i] = u[i] == 0 ? '?' : (char)u[i];
        out[len] = '\0';
    }
    OPENSSL_free(u);
    return out;
}

/* Subject entries of the CSR that the certificate's subject does not hold (same type, value). */
static int
subject_drops(X509_REQ *req, X509 *cert, struct ca_drop **v, size_t *n, struct duet_err *err)
{
    const X509_NAME *rn = X509_REQ_get_subject_name(req);
    const X509_NAME *cn = X509_get_subject_name(cert);

    for (int i = 0; i < X509_NAME_entry_count(rn); i++) {
        const X509_NAME_ENTRY *e = X509_NAME_get_entry(rn, i);
        const ASN1_OBJECT *o = X509_NAME_ENTRY_get_object(e);
        char *val = utf8_of(X509_NAME_ENTRY_get_data(e));
        bool kept = false;

        if (val == NULL)
            return err_nomem(err);
        for (int k = 0; k < X509_NAME_entry_count(cn) && !kept; k++) {
            const X509_NAME_ENTRY *c = X509_NAME_get_entry(cn, k);
            char *cv;
            if (OBJ_cmp(X509_NAME_ENTRY_get_object(c), o) != 0)
                continue;
            if ((cv = utf8_of(X509_NAME_ENTRY_get_data(c))) == NULL) {
                free(val);
                return err_nomem(err);
            }
            kept = strcmp(cv, val) == 0;
            free(cv);
        }
        if (kept)
            free(val);
        else if (push(v, n, CA_DROP_SUBJECT, obj_name(o), val, false, err) != 0)
            return -1;
    }
    return 0;
}

/* A GENERAL_NAME as "DNS:x" text split into type and value. */
static int
san_drop(GENERAL_NAME *g, struct ca_drop **v, size_t *n, struct duet_err *err)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *data = NULL, *text, *colon;
    long len;
    int rc;

    if (b == NULL)
        return err_nomem(err);
    GENERAL_NAME_print(b, g);
    len = BIO_get_mem_data(b, &data);
    text = strndup(data != NULL ? data : "", (size_t)(len > 0 ? len : 0));
    BIO_free(b);
    if (text == NULL)
        return err_nomem(err);
    colon = strchr(text, ':');
    if (colon == NULL)
        return push(v, n, CA_DROP_SAN, text, NULL, false, err);
    *colon = '\0';
    rc = push(v, n, CA_DROP_SAN, strdup(text), strdup(colon + 1), false, err);
    free(text);
    return rc;
}

/* Whether the certificate holds an extension equal to x (OID, criticality, value). */
static bool
cert_has_ext(X509 *cert, X509_EXTENSION *x)
{
    int i = X509_get_ext_by_OBJ(cert, X509_EXTENSION_get_object(x), -1);
    X509_EXTENSION *c = i >= 0 ? X509_get_ext(cert, i) : NULL;

    return c != NULL && X509_EXTENSION_get_critical(c) == X509_EXTENSION_get_critical(x) &&
           ASN1_OCTET_STRING_cmp(X509_EXTENSION_get_data(c), X509_EXTENSION_get_data(x)) == 0;
}

/* An extension's value as OpenSSL prints it, on one line; NULL when it has no printer. */
static char *
ext_text(X509_EXTENSION *x)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *data = NULL, *out = NULL;
    long len;

    if (b == NULL)
        return NULL;
    if (X509V3_EXT_print(b, x, 0, 0) == 1 && (len = BIO_get_mem_data(b, &data)) > 0 &&
        (out = strndup(data, (size_t)len)) != NULL) {
        for (char *p = out; *p; p++)
            *p = *p == '\n' || *p == '\r' ? ' ' : *p;
        for (size_t n = strlen(out); n > 0 && out[n - 1] == ' '; n--)
            out[n - 1] = '\0';
    }
    ERR_clear_error();
    BIO_free(b);
    return out;
}

/* Requested extensions: the SAN name by name, every other one whole. */
static int
ext_drops(X509_REQ *req, X509 *cert, struct ca_drop **v, size_t *n, struct duet_err *err)
{
    STACK_OF(X509_EXTENSION) *exts = X509_REQ_get_extensions(req);
    GENERAL_NAMES *have = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
    int rc = 0;

    ERR_clear_error();
    for (int i = 0; rc == 0 && i < sk_X509_EXTENSION_num(exts); i++) {
        X509_EXTENSION *x = sk_X509_EXTENSION_value(exts, i);
        const ASN1_OBJECT *o = X509_EXTENSION_get_object(x);
        if (OBJ_obj2nid(o) == NID_subject_alt_name) {
            GENERAL_NAMES *want = X509V3_EXT_d2i(x);
            for (int k = 0; rc == 0 && want != NULL && k < sk_GENERAL_NAME_num(want); k++) {
                GENERAL_NAME *g = sk_GENERAL_NAME_value(want, k);
                bool kept = false;
                for (int j = 0; have != NULL && j < sk_GENERAL_NAME_num(have) && !kept; j++)
                    kept = GENERAL_NAME_cmp(g, sk_GENERAL_NAME_value(have, j)) == 0;
                if (!kept)
                    rc = san_drop(g, v, n, err);
            }
            GENERAL_NAMES_free(want);
            ERR_clear_error();
            continue;
        }
        if (!cert_has_ext(cert, x))
            rc = push(v, n, CA_DROP_EXTENSION, obj_name(o), ext_text(x),
                      X509_EXTENSION_get_critical(x), err);
    }
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    GENERAL_NAMES_free(have);
    return rc;
}

/* CSR attributes besides the extension request, by name only. */
static int
attr_drops(X509_REQ *req, struct ca_drop **v, size_t *n, struct duet_err *err)
{
    for (int i = 0; i < X509_REQ_get_attr_count(req); i++) {
        const ASN1_OBJECT *o = X509_ATTRIBUTE_get0_object(X509_REQ_get_attr(req, i));
        int nid = OBJ_obj2nid(o);
        if (nid == NID_ext_req || nid == NID_ms_ext_req)
            continue;
        if (push(v, n, CA_DROP_ATTRIBUTE, obj_name(o), NULL, false, err) != 0)
            return -1;
    }
    return 0;
}

/* Compare a CSR with its certificate; see csrdrop.h. */
int
ca_csr_drops(X509_REQ *req, X509 *cert, struct ca_drop **out, size_t *n, struct duet_err *err)
{
    *out = NULL;
    *n = 0;
    if (subject_drops(req, cert, out, n, err) != 0 || ext_drops(req, cert, out, n, err) != 0 ||
        attr_drops(req, out, n, err) != 0) {
        ca_drops_free(*out, *n);
        *out = NULL;
        *n = 0;
        return -1;
    }
    return 0;
}
