/* SPDX-License-Identifier: Apache-2.0 */
/*
 * issue.c - the CA's rules for the three ways a certificate comes to be, on
 * top of ca_issue(): with a key the CA makes (`duet cert issue`), for a CSR
 * (`duet cert sign`, and enrollment in `duet ca serve`) and as the renewal of
 * an inventory row (`duet cert renew`, and renewal by `duet agent`).
 *
 * Nothing here prints or writes a file: each function returns the
 * certificate (and key) or the reason it refused, and front ends render it.
 * A CSR only proposes: its signature must verify, its names are taken as
 * structures and checked one by one by ca_issue() against the profile, and
 * every other extension it asks for is ignored.  A renewal keeps the identity
 * of what it renews (CN, names, profile, owner, location) and links the two
 * rows in the inventory in the transaction that records the new one.
 */
#include "ca/ca.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "ca/team.h"
#include "lib/x509util.h"

/* The default SAN of a profile; see ca.h. */
int
ca_default_san(const struct ca_config *cfg, const char *profile, const char *name,
               const char *owner, char **out, struct duet_err *err)
{
    const struct ca_profile *p = ca_config_profile(cfg, profile);
    bool team = p != NULL && (p->team & PROFILE_TEAM_SPIFFE) && owner != NULL;
    size_t n;

    *out = NULL;
    if (p == NULL)
        return 0;
    /* Checked before it is part of a name, so that the message is about the team. */
    if (team && ca_team_check(owner, "--owner", err) != 0)
        return -1;
    if (p->spiffe) {
        n = strlen(cfg->trust_domain) + (team ? strlen(owner) + 1 : 0) + strlen(name) + 16;
        if ((*out = malloc(n)) == NULL)
            return err_nomem(err);
        snprintf(*out, n, "uri:spiffe://%s/%s%s%s", cfg->trust_domain, team ? owner : "",
                 team ? "/" : "", name);
    } else if ((p->san_types & PROFILE_SAN_DNS) && p->require_san) {
        n = strlen(name) + 8;
        if ((*out = malloc(n)) == NULL)
            return err_nomem(err);
        snprintf(*out, n, "dns:%s", name);
    }
    return 0;
}

/* A new key of key_type, or of ca.yaml's key_type when NULL; NULL with the reason. */
static EVP_PKEY *
new_key(const struct ca *ca, const char *key_type, struct duet_err *err)
{
    enum ca_key_type kt;

    if (ca_key_type_parse(key_type != NULL ? key_type : ca_config(ca)->key_type, &kt, err) != 0)
        return NULL;
    return ca_key_generate(kt, err);
}

/* Issue with a new key; see ca.h. */
int
ca_issue_keypair(struct ca *ca, const struct ca_request *req, const char *key_type, X509 **cert,
                 EVP_PKEY **key, bool *clamped, struct duet_err *err)
{
    struct ca_request r = *req;
    const char *dsans[1];
    char *dsan = NULL;
    int rc = -1;

    *cert = NULL;
    if ((*key = new_key(ca, key_type, err)) == NULL)
        return -1;
    if (r.nsans == 0) {
        if (ca_default_san(ca_config(ca), r.profile, r.cn, r.owner, &dsan, err) != 0)
            goto out;
        if (dsan != NULL) {
            dsans[0] = dsan;
            r.sans = dsans;
            r.nsans = 1;
        }
    }
    r.pubkey = *key;
    rc = ca_issue(ca, &r, cert, clamped, err);
out:
    free(dsan);
    if (rc != 0) {
        EVP_PKEY_free(*key);
        *key = NULL;
    }
    return rc;
}

/*
 * The subjectAltName a CSR asks for, as GENERAL_NAMEs (NULL when it asks for
 * none).  They go to ca_issue as structures: checked and issued name by name,
 * never turned into text that is parsed again.
 */
static int
csr_names(X509_REQ *req, const char *from, GENERAL_NAMES **out, struct duet_err *err)
{
    STACK_OF(X509_EXTENSION) *exts = X509_REQ_get_extensions(req);
    int crit = -1;

    /* crit: -1 no SAN extension, -2 more than one, else it is there (and decoded or not). */
    *out = exts != NULL ? X509V3_get_d2i(exts, NID_subject_alt_name, &crit, NULL) : NULL;
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    ERR_clear_error();
    if (crit == -2)
        return err_set(err, DUET_ERR_INPUT,
                       "%s: the CSR has more than one subjectAltName extension; refusing it", from);
    if (crit >= 0 && *out == NULL)
        return err_set(err, DUET_ERR_INPUT,
                       "%s: the CSR's subjectAltName extension cannot be decoded; refusing it",
                       from);
    return 0;
}

/* The value of the first DNS, URI or email name, for a CN (NULL when there is none). */
static char *
first_name_text(const GENERAL_NAMES *gens)
{
    for (int i = 0; gens != NULL && i < sk_GENERAL_NAME_num(gens); i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
        if (g->type == GEN_DNS || g->type == GEN_URI || g->type == GEN_EMAIL)
            return strndup((const char *)ASN1_STRING_get0_data(g->d.ia5),
                           (size_t)ASN1_STRING_length(g->d.ia5));
    }
    return NULL;
}

/* Check a CSR and choose its CN; see ca.h. */
int
ca_csr_check(X509_REQ *req, const char *from, const struct ca_sign_opts *o, struct ca_csr *out,
             struct duet_err *err)
{
    EVP_PKEY *pk = X509_REQ_get0_pubkey(req);

    memset(out, 0, sizeof(*out));
    if (pk == NULL || X509_REQ_verify(req, pk) != 1) {
        ERR_clear_error();
        return err_set(err, DUET_ERR_INPUT,
                       "%s: the CSR's signature does not verify with its own key; refusing it",
                       from);
    }
    out->pubkey = pk;
    if (csr_names(req, from, &out->names, err) != 0)
        goto err;
    out->cn = o->name != NULL ? strdup(o->name) : x509u_name_cn(X509_REQ_get_subject_name(req));
    out->cn_from_request = o->name == NULL && out->cn != NULL;
    /*
     * A CN from the request must be one of the names certified, all of them
     * printable ASCII: one that is not is refused here, without quoting it
     * (a C1 control or a bidi override would reach terminals and logs).
     */
    for (size_t i = 0; out->cn_from_request && out->cn[i] != '\0'; i++) {
        unsigned char c = (unsigned char)out->cn[i];
        if (c < 0x20 || c > 0x7e) {
            err_set(err, DUET_ERR_INPUT,
                    "%s: its subject CN holds the byte 0x%02x at offset %zu, which none of the "
                    "names certified can hold; give --name to choose the certificate's name",
                    from, c, i);
            goto err;
        }
    }
    if (out->cn == NULL && o->nsans > 0) {
        const char *colon = strchr(o->sans[0], ':');
        out->cn = strdup(colon != NULL ? colon + 1 : o->sans[0]);
    }
    if (out->cn == NULL)
        out->cn = first_name_text(out->names);
    if (out->cn == NULL) {
        err_set(err, DUET_ERR_INPUT, "%s: the CSR has no CN and no SAN; give --name", from);
        goto err;
    }
    return 0;
err:
    ca_csr_clear(out);
    return -1;
}

/* Free what ca_csr_check filled; the X509_REQ is not touched. */
void
ca_csr_clear(struct ca_csr *c)
{
    if (c == NULL)
        return;
    GENERAL_NAMES_free(c->names);
    free(c->cn);
    memset(c, 0, sizeof(*c));
}

/* Sign a checked CSR; see ca.h. */
int
ca_sign_csr(struct ca *ca, const struct ca_csr *csr, const struct ca_sign_opts *o, X509 **cert,
            bool *clamped, struct duet_err *err)
{
    struct ca_request req = {.profile = o->profile,
                             .cn = csr->cn,
                             .sans = o->sans,
                             .nsans = o->nsans,
                             .names = csr->names,
                             .names_from = "the CSR",
                             .cn_from_request = csr->cn_from_request,
                             .ttl = o->ttl,
                             .owner = o->owner,
                             .location = o->location,
                             .pubkey = csr->pubkey,
                             .now = o->now};

    return ca_issue(ca, &req, cert, clamped, err);
}

/* Whether a row may be renewed, and what the renewal keeps; see ca.h. */
int
ca_renew_check(const struct store_cert *row, struct ca_renewal *out, struct duet_err *err)
{
    const unsigned char *p = row->der;

    memset(out, 0, sizeof(*out));
    if (row->status == STORE_REVOKED)
        return err_set(err, DUET_ERR_INPUT,
                       "certificate %s (serial %s) is revoked; issue a new one instead", row->name,
                       row->serial);
    if (strcmp(row->profile, "issuing-ca") == 0)
        return err_set(err, DUET_ERR_INPUT,
                       "serial %s is the issuing CA; a new issuing CA needs the root key and is "
                       "not made by duet cert renew",
                       row->serial);
    if (row->renewed_by != NULL)
        return err_set(err, DUET_ERR_INPUT, "certificate %s (serial %s) was already renewed by %s",
                       row->name, row->serial, row->renewed_by);
    out->row = row;
    out->old = row->der != NULL ? d2i_X509(NULL, &p, (long)row->der_len) : NULL;
    if (out->old == NULL || (out->cn = x509u_name_cn(X509_get_subject_name(out->old))) == NULL) {
        ERR_clear_error();
        ca_renewal_clear(out);
        return err_set(err, DUET_ERR_INTERNAL, "the stored certificate %s cannot be read",
                       row->serial);
    }
    out->names = X509_get_ext_d2i(out->old, NID_subject_alt_name, NULL, NULL);
    return 0;
}

/* A duration as ca.yaml would write it: the largest unit that divides it ("72h", "30d"). */
static void
duration_text(int64_t s, char *buf, size_t len)
{
    if (s % 86400 == 0)
        snprintf(buf, len, "%lldd", (long long)(s / 86400));
    else if (s % 3600 == 0)
        snprintf(buf, len, "%lldh", (long long)(s / 3600));
    else if (s % 60 == 0)
        snprintf(buf, len, "%lldm", (long long)(s / 60));
    else
        snprintf(buf, len, "%llds", (long long)s);
}

/* When a row may renew by presenting itself; see ca.h. */
int
ca_renew_window(const struct ca_config *cfg, const struct store_cert *row, int64_t now,
                struct ca_window *out, struct duet_err *err)
{
    const struct ca_profile *p = ca_config_profile(cfg, row->profile);
    bool ca_row = strcmp(row->profile, "issuing-ca") == 0 ||
                  strcmp(row->profile, CA_PROFILE_OCSP_SIGNER) == 0;
    char when[32], end[32];

    memset(out, 0, sizeof(*out));
    out->grace = p != NULL && !ca_row ? p->renew_grace : 0;
    if (out->grace > 0)
        duration_text(out->grace, out->grace_text, sizeof(out->grace_text));
    else
        snprintf(out->grace_text, sizeof(out->grace_text), "off");
    if (row->status == STORE_REVOKED) {
        x509u_fmt_rfc3339(row->revoked_at, when, sizeof(when));
        return err_set(err, DUET_ERR_INPUT,
                       "certificate %s was revoked on %s (%s); a revoked certificate never "
                       "renews: enroll again with a new token (duet ca token)",
                       row->serial, when, x509u_crl_reason(row->reason));
    }
    if (now < row->not_before) {
        x509u_fmt_rfc3339(row->not_before, when, sizeof(when));
        return err_set(err, DUET_ERR_INPUT, "certificate %s is not valid yet (valid from %s)",
                       row->serial, when);
    }
    if (now <= row->not_after) /* valid through its notAfter second (RFC 5280 4.1.2.5) */
        return 0;
    x509u_fmt_rfc3339(row->not_after, when, sizeof(when));
    if (ca_row)
        return err_set(err, DUET_ERR_INPUT,
                       "certificate %s (profile %s) expired at %s; the CA's own certificates "
                       "are never renewed after expiry",
                       row->serial, row->profile, when);
    if (out->grace == 0)
        return err_set(err, DUET_ERR_INPUT,
                       "the client certificate (serial %s) expired at %s, and profile %s allows "
                       "no renewal after expiry (renew_grace: off); enroll again with a new "
                       "token (duet ca token)",
                       row->serial, when, row->profile);
    if (now >= row->not_after + out->grace) {
        x509u_fmt_rfc3339(row->not_after + out->grace, end, sizeof(end));
        return err_set(err, DUET_ERR_INPUT,
                       "the client certificate (serial %s) expired at %s; profile %s allows "
                       "renewal for %s after expiry (renew_grace), which ended at %s; enroll "
                       "again with a new token (duet ca token)",
                       row->serial, when, row->profile, out->grace_text, end);
    }
    out->in_grace = true;
    return 0;
}

/* Free what ca_renew_check filled; the row is not touched. */
void
ca_renewal_clear(struct ca_renewal *r)
{
    if (r == NULL)
        return;
    X509_free(r->old);
    free(r->cn);
    GENERAL_NAMES_free(r->names);
    memset(r, 0, sizeof(*r));
}

/* Renew; see ca.h. */
int
ca_renew(struct ca *ca, const struct ca_renewal *r, const struct ca_renew_opts *o, X509 **cert,
         EVP_PKEY **key, bool *clamped, struct duet_err *err)
{
    const struct store_cert *row = r->row;
    EVP_PKEY *pub = NULL;
    int rc = -1;

    *cert = NULL;
    *key = NULL;
    if (o->reuse_key) {
        if ((pub = X509_get_pubkey(r->old)) == NULL)
            return err_set_ssl(err, DUET_ERR_INTERNAL,
                               "the key of the stored certificate %s cannot be read", row->serial);
    } else if (o->pubkey != NULL) {
        if (!EVP_PKEY_up_ref(o->pubkey))
            return err_nomem(err);
        pub = o->pubkey;
    } else if ((*key = new_key(ca, o->key_type, err)) == NULL) {
        return -1;
    }
    {
        /* Same length of validity as the certificate renewed, unless told otherwise. */
        int64_t ttl = o->ttl != 0 ? o->ttl : row->not_after - row->not_before - 60;
        struct ca_request req = {.profile = row->profile,
                                 .cn = r->cn,
                                 .names = r->names,
                                 .names_from = "the certificate renewed",
                                 .ttl = ttl,
                                 .owner = row->owner,
                                 .location = row->location,
                                 .pubkey = pub != NULL ? pub : *key,
                                 .renews = row->serial,
                                 .now = o->now};
        rc = ca_issue(ca, &req, cert, clamped, err);
    }
    EVP_PKEY_free(pub);
    if (rc != 0) {
        EVP_PKEY_free(*key);
        *key = NULL;
    }
    return rc;
}
