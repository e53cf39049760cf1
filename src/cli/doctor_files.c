/* SPDX-License-Identifier: Apache-2.0 */
/*
 * doctor_files.c - `duet doctor`'s checks of one TLS side: the certificate
 * file, its key, the trust bundle and the CRLs, loaded here and judged by
 * src/lib/doctor.c.  A file that cannot be read is itself a finding
 * (file_unreadable), so that one run reports every problem of a set-up.
 *
 * Which CRLs are needed: with any CRL configured, duet (like `duet cert
 * verify --crl`) needs a current CRL for every certificate below the
 * anchor, so each issuer is required (crl_scope: leaf: only the issuers of
 * leaves).  Without CRLs, a certificate that names a CRL distribution point
 * says its issuer publishes one that nobody checks: a warning.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sys/stat.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "cli/doctor.h"
#include "lib/load.h"
#include "lib/x509util.h"

/* Most certificates walked up from a leaf. */
#define DOCTOR_MAX_WALK 16

/* file_unreadable: the loader's sentence, and the fix. */
static void
unreadable(struct doctor_run *run, const struct doctor_src *src, const struct duet_err *err)
{
    doctor_add(&run->rep, DOCTOR_ERROR, "file_unreadable", src,
               "check the path and the file's format (PEM, DER or PKCS#12 without a password); "
               "duet cert inspect FILE shows what it holds",
               "%s", err->msg);
}

/*
 * Whether `src->file` may be read as a file: a FIFO, a device or a
 * directory is file_unreadable, found without a blocking open (a FIFO would
 * wait for a writer forever).  stat() first, then an O_NONBLOCK open and
 * fstat() of what was opened, in case the path changed in between.  A path
 * that cannot be stat'ed is left to the loader, whose error says why.
 */
static bool
regular_file(struct doctor_run *run, const struct doctor_src *src)
{
    struct stat st;
    int fd;
    bool ok;

    if (stat(src->file, &st) != 0)
        return true;
    if (S_ISREG(st.st_mode)) {
        if ((fd = open(src->file, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC)) < 0)
            return true;
        ok = fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
        close(fd);
        if (ok)
            return true;
    }
    doctor_add(&run->rep, DOCTOR_ERROR, "file_unreadable", src,
               "give a regular file: duet reads certificates, keys and CRLs from files, not "
               "from pipes, devices or directories",
               "%s: not a regular file (%s)", src->file,
               S_ISFIFO(st.st_mode)                         ? "a FIFO"
               : S_ISDIR(st.st_mode)                        ? "a directory"
               : S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) ? "a device"
               : S_ISSOCK(st.st_mode)                       ? "a socket"
                                                            : "not a plain file");
    return false;
}

/* The issuer of `cert` among `a` then `b`, other than itself; NULL when none. */
static X509 *
find_issuer(X509 *cert, STACK_OF(X509) * a, STACK_OF(X509) * b)
{
    STACK_OF(X509) * sets[2] = {a, b};

    for (int s = 0; s < 2; s++) {
        for (int i = 0; i < sk_X509_num(sets[s]); i++) {
            X509 *c = sk_X509_value(sets[s], i);
            if (X509_cmp(c, cert) != 0 && X509_check_issued(c, cert) == X509_V_OK)
                return c;
            ERR_clear_error();
        }
    }
    return NULL;
}

/* Whether `ca` issued another CA certificate of the bundle (it is not at the bottom). */
static bool
issues_a_ca(X509 *ca, STACK_OF(X509) * bundle)
{
    for (int i = 0; i < sk_X509_num(bundle); i++) {
        X509 *c = sk_X509_value(bundle, i);
        if (X509_cmp(c, ca) != 0 && (X509_get_extension_flags(c) & EXFLAG_CA) &&
            X509_check_issued(ca, c) == X509_V_OK)
            return true;
        ERR_clear_error();
    }
    return false;
}

/* The fix line for a missing CRL, in the words of the flags or of the YAML. */
static const char *
crl_fix(const struct doctor_run *run)
{
    return run->config ? "add the issuer's CRL to the listener (crl: FILE, made with duet crl "
                         "generate --ca-dir CA_DIR), or fetch it (crl_urls: [URL], or "
                         "crl_from_cdp: true)"
                       : "give the issuer's CRL: --crl FILE (duet crl generate --ca-dir CA_DIR "
                         "makes it)";
}

/*
 * crl_missing as a warning: `cert` names a CRL distribution point and no CRL
 * of its issuer (NULL: unknown, nothing said) is given; `then` says what
 * follows.
 */
static void
cdp_unchecked(struct doctor_run *run, const struct doctor_src *src, X509 *cert, X509 *issuer,
              STACK_OF(X509_CRL) * crls, const char *then)
{
    char uri[256], label[512], why[1024];

    if (issuer == NULL || !doctor_cdp_uri(cert, uri, sizeof(uri)))
        return;
    x509u_label(cert, label, sizeof(label));
    snprintf(why, sizeof(why), "%s names a CRL distribution point (%s) %s", label,
             uri[0] ? uri : "not a URI", then);
    (void)doctor_check_crl_for(&run->rep, src, issuer, crls, DOCTOR_WARNING, why, crl_fix(run));
}

/*
 * Peers' chains end in the bundle: each CA of it that issues the
 * certificates checked needs its CRL when CRLs are configured; without
 * them, an intermediate of the bundle naming a distribution point warns.
 */
static void
peer_crls(struct doctor_run *run, const struct doctor_side *s, STACK_OF(X509) * bundle,
          STACK_OF(X509_CRL) * crls, bool any)
{
    for (int i = 0; i < sk_X509_num(bundle); i++) {
        X509 *ca = sk_X509_value(bundle, i);

        if (!(X509_get_extension_flags(ca) & EXFLAG_CA))
            continue;
        if (any && !s->crl_fetch) {
            if (s->crl_leaf_only && issues_a_ca(ca, bundle))
                continue;
            (void)doctor_check_crl_for(&run->rep, &s->cacert_src, ca, crls, DOCTOR_ERROR,
                                       "with CRLs configured, a peer certificate it issued has "
                                       "no current CRL and every such handshake is refused",
                                       crl_fix(run));
            continue;
        }
        if (!any && !x509u_self_issued(ca))
            cdp_unchecked(run, &s->cacert_src, ca, find_issuer(ca, bundle, NULL), crls,
                          "that nothing checks: a revoked certificate would be accepted");
    }
}

/*
 * The certificate's own path (flags): walk up from the leaf through the
 * file and the bundle; each certificate below the anchor needs its issuer's
 * CRL when CRLs are given, and warns when it names a distribution point.
 */
static void
own_crls(struct doctor_run *run, const struct doctor_side *s, STACK_OF(X509) * chain,
         STACK_OF(X509) * bundle, STACK_OF(X509_CRL) * crls, bool any)
{
    X509 *cert = sk_X509_value(chain, 0);

    for (int step = 0; cert != NULL && step < DOCTOR_MAX_WALK; step++) {
        X509 *issuer;
        char label[512], why[1024];

        if (x509u_self_issued(cert))
            return;
        if ((issuer = find_issuer(cert, chain, bundle)) == NULL)
            return;
        x509u_label(cert, label, sizeof(label));
        if (any && !(s->crl_leaf_only && step > 0)) {
            snprintf(why, sizeof(why),
                     "with CRLs given, %s needs its issuer's current CRL and is refused without "
                     "it",
                     label);
            (void)doctor_check_crl_for(&run->rep, &s->cert_src, issuer, crls, DOCTOR_ERROR, why,
                                       crl_fix(run));
        } else if (!any) {
            cdp_unchecked(run, &s->cert_src, cert, issuer, crls,
                          "peers that check it need the CRL, and this check cannot tell whether "
                          "it is revoked");
        }
        cert = issuer;
    }
}

/* Check one side; see doctor.h. */
void
doctor_check_side(struct doctor_run *run, const struct doctor_side *s)
{
    STACK_OF(X509) *chain = NULL, *bundle = NULL;
    STACK_OF(X509_CRL) *crls = sk_X509_CRL_new_null();
    EVP_PKEY *key = NULL;
    struct duet_err err;
    bool any_crl = s->ncrls > 0;

    err_clear(&err);
    if (crls == NULL) {
        run->rep.nomem = true;
        return;
    }
    if (s->cert != NULL && regular_file(run, &s->cert_src) &&
        load_certs_file(s->cert, s->password, &chain, &err) != 0) {
        unreadable(run, &s->cert_src, &err);
        chain = NULL;
    }
    if (s->key != NULL && regular_file(run, &s->key_src) &&
        doctor_check_key_file(&run->rep, &s->key_src, run->uid, s->key_mode_refused)) {
        doctor_check_dirs(&run->rep, &s->key_src, "the private key");
        if (load_key_file(s->key, s->password, &key, &err) != 0) {
            unreadable(run, &s->key_src, &err);
            key = NULL;
        }
    }
    if (s->cacert != NULL && regular_file(run, &s->cacert_src)) {
        if (load_certs_file(s->cacert, NULL, &bundle, &err) != 0) {
            unreadable(run, &s->cacert_src, &err);
            bundle = NULL;
        } else {
            doctor_check_dirs(&run->rep, &s->cacert_src, "the trust bundle");
        }
    }
    for (size_t i = 0; i < s->ncrls; i++) {
        STACK_OF(X509_CRL) *some = NULL;
        if (!regular_file(run, &s->crl_srcs[i]))
            continue;
        if (load_crls_file(s->crls[i], &some, &err) != 0) {
            unreadable(run, &s->crl_srcs[i], &err);
            continue;
        }
        doctor_check_dirs(&run->rep, &s->crl_srcs[i], "the CRL");
        for (int k = 0; k < sk_X509_CRL_num(some); k++) {
            X509_CRL *crl = sk_X509_CRL_value(some, k);
            doctor_check_crl_fresh(&run->rep, &s->crl_srcs[i], crl, run->now, 2 * 86400,
                                   s->crl_expired_warns);
            if (X509_CRL_up_ref(crl) && !sk_X509_CRL_push(crls, crl))
                X509_CRL_free(crl);
        }
        sk_X509_CRL_pop_free(some, X509_CRL_free);
    }
    if (chain != NULL) {
        X509 *leaf = sk_X509_value(chain, 0);
        if (key != NULL)
            doctor_check_pair(&run->rep, &s->key_src, leaf, key);
        doctor_check_chain(&run->rep, &s->cert_src, chain, bundle);
        doctor_check_role(&run->rep, &s->cert_src, leaf, s->role);
        for (int i = 0; i < sk_X509_num(chain); i++)
            doctor_check_validity(&run->rep, &s->cert_src, sk_X509_value(chain, i), i > 0, run->now,
                                  run->soon);
    }
    if (bundle != NULL)
        doctor_check_trust(&run->rep, &s->cacert_src, bundle, run->system, run->now);
    if (s->peer_crls && bundle != NULL)
        peer_crls(run, s, bundle, crls, any_crl);
    else if (!s->peer_crls && chain != NULL)
        own_crls(run, s, chain, bundle, crls, any_crl);
    OSSL_STACK_OF_X509_free(chain);
    OSSL_STACK_OF_X509_free(bundle);
    sk_X509_CRL_pop_free(crls, X509_CRL_free);
    EVP_PKEY_free(key);
}
