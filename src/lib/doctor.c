/* SPDX-License-Identifier: Apache-2.0 */
/*
 * doctor.c - checks of an mTLS set-up before it fails, without sockets.
 *
 * Each check looks at objects already loaded (or, for a key file, at its
 * inode) and adds findings to a report: a stable code, a severity, where
 * the file was named, one sentence and one fix.  The chain's order and
 * signatures come from diagnose.c's diag_chain_order(), the client's
 * fitness from diag_client_usable(), so `duet doctor` and `duet probe`
 * judge alike.
 * Sentences quote certificate names as OpenSSL prints them: the caller
 * escapes them for a terminal or JSON.
 */
#include <errno.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "lib/diagnose.h"
#include "lib/doctor.h"
#include "lib/x509util.h"

/* The name of a severity; see doctor.h. */
const char *
doctor_sev_name(enum doctor_sev s)
{
    switch (s) {
    case DOCTOR_INFO:
        return "info";
    case DOCTOR_WARNING:
        return "warning";
    case DOCTOR_ERROR:
        return "error";
    }
    return "error";
}

/* strdup() that keeps NULL. */
static bool
dup_opt(const char *s, char **out)
{
    *out = NULL;
    if (s == NULL)
        return true;
    *out = strdup(s);
    return *out != NULL;
}

/* Free the strings of one finding. */
static void
finding_free(struct doctor_finding *f)
{
    free(f->file);
    free(f->key);
    free(f->config);
    free(f->listener);
    free(f->problem);
    free(f->fix);
}

/* Add a finding; see doctor.h. */
void
doctor_add(struct doctor_report *r, enum doctor_sev sev, const char *code,
           const struct doctor_src *src, const char *fix, const char *fmt, ...)
{
    struct doctor_finding f = {.sev = sev, .code = code, .line = src != NULL ? src->line : 0};
    char problem[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(problem, sizeof(problem), fmt, ap);
    va_end(ap);
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 8;
        struct doctor_finding *v = realloc(r->v, cap * sizeof(*v));
        if (v == NULL) {
            r->nomem = true;
            return;
        }
        r->v = v;
        r->cap = cap;
    }
    if (!dup_opt(src != NULL ? src->file : NULL, &f.file) ||
        !dup_opt(src != NULL ? src->key : NULL, &f.key) ||
        !dup_opt(src != NULL ? src->config : NULL, &f.config) ||
        !dup_opt(src != NULL ? src->listener : NULL, &f.listener) ||
        !dup_opt(problem, &f.problem) || !dup_opt(fix, &f.fix)) {
        finding_free(&f);
        r->nomem = true;
        return;
    }
    r->v[r->n++] = f;
}

/* Free the findings; see doctor.h. */
void
doctor_report_clear(struct doctor_report *r)
{
    for (size_t i = 0; i < r->n; i++)
        finding_free(&r->v[i]);
    free(r->v);
    memset(r, 0, sizeof(*r));
}

/* Count by severity; see doctor.h. */
size_t
doctor_count(const struct doctor_report *r, enum doctor_sev sev)
{
    size_t n = 0;

    for (size_t i = 0; i < r->n; i++)
        n += r->v[i].sev == sev;
    return n;
}

/* The first finding with a code; see doctor.h. */
const struct doctor_finding *
doctor_find(const struct doctor_report *r, const char *code)
{
    for (size_t i = 0; i < r->n; i++) {
        if (strcmp(r->v[i].code, code) == 0)
            return &r->v[i];
    }
    return NULL;
}

/* --- the certificate and its key ----------------------------------------------------- */

/* Check a key against its certificate; see doctor.h. */
void
doctor_check_pair(struct doctor_report *r, const struct doctor_src *src, X509 *leaf, EVP_PKEY *key)
{
    char label[512];

    if (X509_check_private_key(leaf, key) == 1)
        return;
    ERR_clear_error();
    x509u_label(leaf, label, sizeof(label));
    doctor_add(r, DOCTOR_ERROR, "key_mismatch", src,
               "give the key made with this certificate (duet cert inspect CERT KEY says whether "
               "they match), or re-issue the certificate for this key",
               "the key does not belong to the certificate %s: every handshake would fail", label);
}

/* Check the order and completeness of a chain as sent; see doctor.h. */
void
doctor_check_chain(struct doctor_report *r, const struct doctor_src *src, STACK_OF(X509) * chain,
                   STACK_OF(X509) * roots)
{
    X509_STORE *store = X509_STORE_new();
    enum diag_chain verdict;
    char label[512], iss[512];
    char *name = NULL;
    int idx = -1;

    if (store == NULL) {
        r->nomem = true;
        return;
    }
    for (int i = 0; i < sk_X509_num(roots); i++) {
        X509 *c = sk_X509_value(roots, i);
        if (x509u_self_issued(c) && !X509_STORE_add_cert(store, c))
            ERR_clear_error(); /* a duplicate is harmless */
    }
    verdict = diag_chain_order(chain, store, &idx);
    X509_STORE_free(store);
    if (verdict == DIAG_CHAIN_OK || idx < 0)
        return;
    x509u_label(sk_X509_value(chain, idx), label, sizeof(label));
    name = x509u_name(X509_get_issuer_name(sk_X509_value(chain, idx)));
    snprintf(iss, sizeof(iss), "%s", name != NULL ? name : "?");
    free(name);
    switch (verdict) {
    case DIAG_CHAIN_WRONG_ORDER:
        doctor_add(r, DOCTOR_WARNING, "chain_wrong_order", src,
                   "write the file in order: the leaf, then the CA that issued it, then that "
                   "CA's issuer",
                   "certificate %d, %s, is not followed by its issuer %s: TLS 1.2 peers and "
                   "strict clients refuse a chain out of order",
                   idx, label, iss);
        return;
    case DIAG_CHAIN_MISSING:
        if (idx > 0 && idx == sk_X509_num(chain) - 1)
            return; /* the last CA sent; its issuer is a root the peers hold */
        if (roots == NULL) {
            /* No trust bundle: its issuer may be a root the peers hold, or a missing CA. */
            doctor_add(r, DOCTOR_WARNING, "chain_issuer_unknown", src,
                       "give the CA's roots with --cacert ROOTS (duet ca roots) to check the "
                       "chain; if the issuer is an intermediate, append it to the file",
                       "certificate %d, %s, is issued by %s, which the file does not carry: "
                       "whether that is a root or an intermediate the file should carry cannot "
                       "be checked without the trusted roots",
                       idx, label, iss);
            return;
        }
        doctor_add(r, DOCTOR_ERROR, "chain_incomplete", src,
                   "append the issuing CA to the file: the leaf followed by the intermediate "
                   "(duet ca roots, or the CA's ca.pem)",
                   "certificate %d, %s, is issued by %s, which the file does not carry (the "
                   "intermediate is missing): peers that trust only the root cannot build a path",
                   idx, label, iss);
        return;
    case DIAG_CHAIN_BAD_SIGNATURE: {
        /* Names and key identifiers agree; a CA of the same name but another key (re-keyed, or
         * another CA's) signed nothing here, and peers refuse the chain. */
        char next_label[512];

        x509u_label(sk_X509_value(chain, idx + 1), next_label, sizeof(next_label));
        doctor_add(r, DOCTOR_ERROR, "chain_bad_signature", src,
                   "replace the CA certificate after it with the certificate of the CA that "
                   "really issued it (duet cert inspect FILE shows each one's key identifiers)",
                   "certificate %d, %s, is not signed by the key of certificate %d, %s, which "
                   "carries its issuer's name: a CA of the same name but another key, so peers "
                   "refuse the chain",
                   idx, label, idx + 1, next_label);
        return;
    }
    case DIAG_CHAIN_UNRELATED:
        doctor_add(r, DOCTOR_WARNING, "chain_unrelated", src,
                   "remove it from the file: only the leaf and the CAs above it belong there",
                   "certificate %d, %s, issued none of the certificates before it", idx, label);
        return;
    case DIAG_CHAIN_OK:
        break;
    }
}

/* Check a leaf's fitness for its role; see doctor.h. */
void
doctor_check_role(struct doctor_report *r, const struct doctor_src *src, X509 *leaf,
                  enum doctor_role role)
{
    uint32_t flags = X509_get_extension_flags(leaf);
    const char *profile = role == DOCTOR_ROLE_SERVER ? "server" : "client";
    char label[512], fix[160];

    x509u_label(leaf, label, sizeof(label));
    snprintf(fix, sizeof(fix), "issue it with --profile %s (duet cert issue NAME --profile %s)",
             profile, profile);
    if (flags & EXFLAG_CA) {
        doctor_add(r, DOCTOR_ERROR, "cert_is_ca", src, fix,
                   "%s is a CA certificate, not a TLS %s certificate", label, profile);
        return;
    }
    if ((flags & EXFLAG_XKUSAGE) &&
        !(X509_get_extended_key_usage(leaf) &
          (XKU_ANYEKU | (role == DOCTOR_ROLE_SERVER ? XKU_SSL_SERVER : XKU_SSL_CLIENT)))) {
        if (role == DOCTOR_ROLE_SERVER)
            doctor_add(r, DOCTOR_ERROR, "eku_no_server_auth", src, fix,
                       "%s is used as a TLS server certificate but its extended key usage does "
                       "not include serverAuth: clients refuse it",
                       label);
        else
            doctor_add(r, DOCTOR_ERROR, "eku_no_client_auth", src, fix,
                       "%s is used as a TLS client certificate but its extended key usage does "
                       "not include clientAuth: servers refuse it",
                       label);
        return;
    }
    if ((flags & EXFLAG_KUSAGE) && !(X509_get_key_usage(leaf) & KU_DIGITAL_SIGNATURE))
        doctor_add(r, DOCTOR_ERROR, "key_usage", src, fix,
                   "%s has a key usage without digitalSignature, which a TLS %s certificate "
                   "needs",
                   label, profile);
}

/* Check a certificate's validity at now; see doctor.h. */
void
doctor_check_validity(struct doctor_report *r, const struct doctor_src *src, X509 *cert, bool is_ca,
                      int64_t now, int64_t soon)
{
    char label[512], date[32], days[48], fix[256];
    char *serial = x509u_serial(X509_get0_serialNumber(cert));
    int64_t nb = 0, na = 0;

    x509u_label(cert, label, sizeof(label));
    if (is_ca)
        snprintf(fix, sizeof(fix),
                 "re-issue the CA certificate (duet ca init for a root, or from its parent CA) "
                 "and deploy it where it is trusted");
    else
        snprintf(fix, sizeof(fix), "renew it: duet cert renew %s --ca-dir CA_DIR",
                 serial != NULL ? serial : "SERIAL");
    free(serial);
    if (x509u_time(X509_get0_notAfter(cert), &na) && na < now) {
        x509u_fmt_date(na, date, sizeof(date));
        x509u_fmt_days(na, now, days, sizeof(days));
        doctor_add(r, DOCTOR_ERROR, "cert_expired", src, fix, "%s expired on %s (%s)", label, date,
                   days);
        return;
    }
    if (x509u_time(X509_get0_notBefore(cert), &nb) && nb > now) {
        x509u_fmt_date(nb, date, sizeof(date));
        x509u_fmt_days(nb, now, days, sizeof(days));
        doctor_add(r, DOCTOR_ERROR, "cert_not_yet_valid", src,
                   "wait until its notBefore, or check this machine's clock (and the CA's)",
                   "%s is not valid before %s (%s)", label, date, days);
        return;
    }
    if (na != 0 && na - now <= soon) {
        x509u_fmt_date(na, date, sizeof(date));
        doctor_add(r, DOCTOR_WARNING, "cert_expiring", src, fix,
                   "%s expires on %s (%lld day%s left)", label, date,
                   (long long)((na - now) / 86400), (na - now) / 86400 == 1 ? "" : "s");
    }
}

/* --- CRLs ------------------------------------------------------------------------------ */

/* Check one CRL's freshness; see doctor.h. */
void
doctor_check_crl_fresh(struct doctor_report *r, const struct doctor_src *src, X509_CRL *crl,
                       int64_t now, int64_t soon, bool expired_warns)
{
    char *iss = x509u_name(X509_CRL_get_issuer(crl));
    const char *who = iss != NULL ? iss : "?";
    const ASN1_TIME *next = X509_CRL_get0_nextUpdate(crl);
    char date[32], days[48];
    int64_t nu = 0, tu = 0;

    if (x509u_time(X509_CRL_get0_lastUpdate(crl), &tu) && tu > now) {
        /* RFC 5280 6.3.3 (b): a CRL is used from its thisUpdate; before it OpenSSL refuses it. */
        x509u_fmt_rfc3339(tu, date, sizeof(date));
        x509u_fmt_days(tu, now, days, sizeof(days));
        doctor_add(r, DOCTOR_ERROR, "crl_not_yet_valid", src,
                   "check this machine's clock (and the CA's), or publish a CRL dated now "
                   "(duet crl generate --ca-dir CA_DIR) and replace the file",
                   "the CRL of %s is not valid before its thisUpdate %s (%s): duet proxy refuses "
                   "every handshake that needs it",
                   who, date, days);
    } else if (next == NULL || !x509u_time(next, &nu)) {
        doctor_add(r, DOCTOR_WARNING, "crl_no_next_update", src,
                   "have the CA publish CRLs with a nextUpdate (duet crl generate does)",
                   "the CRL of %s has no nextUpdate: nobody can tell when it is stale", who);
    } else if (nu < now) {
        x509u_fmt_rfc3339(nu, date, sizeof(date));
        x509u_fmt_days(nu, now, days, sizeof(days));
        doctor_add(r, expired_warns ? DOCTOR_WARNING : DOCTOR_ERROR, "crl_expired", src,
                   "publish a new one (duet crl generate --ca-dir CA_DIR) and replace the file, "
                   "or fetch it by URL (crl_urls, --crl-url) so it stays fresh",
                   "the CRL of %s is past its nextUpdate %s (%s)%s", who, date, days,
                   expired_warns ? "" : ": handshakes that need it are refused");
    } else if (nu - now <= soon) {
        x509u_fmt_rfc3339(nu, date, sizeof(date));
        x509u_fmt_days(nu, now, days, sizeof(days));
        doctor_add(r, DOCTOR_WARNING, "crl_expiring", src,
                   "publish a new one before then (duet crl generate --ca-dir CA_DIR), or fetch "
                   "it by URL (crl_urls, --crl-url) so it stays fresh",
                   "the CRL of %s reaches its nextUpdate %s (%s)", who, date, days);
    }
    free(iss);
}

/* Whether `crls` hold one issued (and signed) by `issuer`; see doctor.h. */
bool
doctor_check_crl_for(struct doctor_report *r, const struct doctor_src *src, X509 *issuer,
                     STACK_OF(X509_CRL) * crls, enum doctor_sev sev, const char *why,
                     const char *fix)
{
    char *name = NULL;

    for (int i = 0; i < sk_X509_CRL_num(crls); i++) {
        X509_CRL *crl = sk_X509_CRL_value(crls, i);
        EVP_PKEY *pub = X509_get0_pubkey(issuer);
        if (X509_NAME_cmp(X509_CRL_get_issuer(crl), X509_get_subject_name(issuer)) == 0 &&
            pub != NULL && X509_CRL_verify(crl, pub) == 1)
            return true;
        ERR_clear_error();
    }
    name = x509u_name(X509_get_subject_name(issuer));
    doctor_add(r, sev, "crl_missing", src, fix, "no CRL of %s is given: %s",
               name != NULL ? name : "?", why);
    free(name);
    return false;
}

/* Whether a certificate names a CRL distribution point; see doctor.h. */
bool
doctor_cdp_uri(X509 *cert, char *buf, size_t len)
{
    STACK_OF(DIST_POINT) *dps = X509_get_ext_d2i(cert, NID_crl_distribution_points, NULL, NULL);
    bool any = dps != NULL && sk_DIST_POINT_num(dps) > 0;

    if (len > 0)
        buf[0] = '\0';
    for (int i = 0; len > 0 && i < sk_DIST_POINT_num(dps) && buf[0] == '\0'; i++) {
        DIST_POINT *dp = sk_DIST_POINT_value(dps, i);
        if (dp->distpoint == NULL || dp->distpoint->type != 0)
            continue;
        for (int k = 0; k < sk_GENERAL_NAME_num(dp->distpoint->name.fullname); k++) {
            GENERAL_NAME *g = sk_GENERAL_NAME_value(dp->distpoint->name.fullname, k);
            if (g->type == GEN_URI) {
                const ASN1_STRING *s = g->d.uniformResourceIdentifier;
                snprintf(buf, len, "%.*s", ASN1_STRING_length(s),
                         (const char *)ASN1_STRING_get0_data(s));
                break;
            }
        }
    }
    CRL_DIST_POINTS_free(dps);
    ERR_clear_error();
    return any;
}

/* --- files and trust ------------------------------------------------------------------- */

/* Check a key file's mode and owner; see doctor.h. */
bool
doctor_check_key_file(struct doctor_report *r, const struct doctor_src *src, uid_t uid,
                      bool mode_refused)
{
    struct stat st;
    char fix[600], owner[64], runner[64];
    struct passwd *pw;

    if (stat(src->file, &st) != 0) {
        doctor_add(r, DOCTOR_ERROR, "key_unreadable", src,
                   "check the path, and that the user running duet may read it",
                   "the key file cannot be read: %s", strerror(errno));
        return false;
    }
    if (st.st_mode & (S_IRWXG | S_IRWXO)) {
        snprintf(fix, sizeof(fix), "chmod 600 %s", src->file);
        doctor_add(
            r, mode_refused ? DOCTOR_ERROR : DOCTOR_WARNING, "key_mode", src, fix,
            "the private key's mode is %04o: group or others may %s it%s",
            (unsigned)(st.st_mode & 07777), (st.st_mode & (S_IRGRP | S_IROTH)) ? "read" : "change",
            mode_refused ? "; duet proxy refuses such a key (insecure_key_mode is off)" : "");
    }
    if (st.st_uid != uid) {
        pw = getpwuid(st.st_uid);
        snprintf(owner, sizeof(owner), "%s", pw != NULL ? pw->pw_name : "");
        if (owner[0] == '\0')
            snprintf(owner, sizeof(owner), "uid %lu", (unsigned long)st.st_uid);
        pw = getpwuid(uid);
        snprintf(runner, sizeof(runner), "%s", pw != NULL ? pw->pw_name : "");
        if (runner[0] == '\0')
            snprintf(runner, sizeof(runner), "%lu", (unsigned long)uid);
        snprintf(fix, sizeof(fix), "chown %s %s (as the user duet runs as)", runner, src->file);
        doctor_add(r, DOCTOR_WARNING, "key_owner", src, fix,
                   "the private key is owned by %s, not by the user running this check (%s): "
                   "another account controls it",
                   owner, runner);
    }
    return true;
}

/*
 * Whether `dir` may be written by group or others without the sticky bit
 * (S_ISVTX: only a file's owner may then rename or remove it, as on /tmp):
 * 2 by others, 1 by the group only, 0 neither (or it cannot be stat'ed).
 */
static int
dir_open_to(const char *dir, mode_t *mode)
{
    struct stat st;

    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode) || (st.st_mode & S_ISVTX))
        return 0;
    *mode = st.st_mode & 07777;
    return (st.st_mode & S_IWOTH) ? 2 : (st.st_mode & S_IWGRP) ? 1 : 0;
}

/*
 * The worst directory on the way to `path` (absolute): each parent up to
 * "/", others-writable before group-writable, the innermost first among
 * equals.  Its path into `worst` (length `len`), its mode into *mode.
 */
static int
walk_parents(const char *path, char *worst, size_t len, mode_t *mode, int level)
{
    char buf[PATH_MAX];
    char *slash;

    if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
        return level;
    while ((slash = strrchr(buf, '/')) != NULL) {
        mode_t m = 0;
        int l;
        if (slash == buf)
            slash[1] = '\0';
        else
            slash[0] = '\0';
        if ((l = dir_open_to(buf, &m)) > level) {
            level = l;
            *mode = m;
            snprintf(worst, len, "%s", buf);
        }
        if (slash == buf)
            break;
    }
    return level;
}

/* Check the directories above a file; see doctor.h. */
void
doctor_check_dirs(struct doctor_report *r, const struct doctor_src *src, const char *what)
{
    char abs[PATH_MAX], cwd[PATH_MAX], worst[PATH_MAX] = "", fix[PATH_MAX + 160];
    char *real = NULL;
    mode_t mode = 0;
    int level = 0;

    if (src->file == NULL || src->file[0] == '\0')
        return;
    if (src->file[0] == '/')
        snprintf(abs, sizeof(abs), "%s", src->file);
    else if (getcwd(cwd, sizeof(cwd)) == NULL ||
             snprintf(abs, sizeof(abs), "%s/%s", cwd, src->file) >= (int)sizeof(abs))
        return;
    /* The path as written (a symlink in an open directory can be swapped), then as resolved. */
    level = walk_parents(abs, worst, sizeof(worst), &mode, level);
    if ((real = realpath(abs, NULL)) != NULL)
        level = walk_parents(real, worst, sizeof(worst), &mode, level);
    free(real);
    if (level == 0)
        return;
    snprintf(fix, sizeof(fix),
             "chmod go-w %s (or keep the file in a directory only its owner and root may write)",
             worst);
    doctor_add(r, level == 2 ? DOCTOR_ERROR : DOCTOR_WARNING, "dir_writable", src, fix,
               "the directory %s is writable by %s (mode %04o, no sticky bit): %s can rename "
               "%s and put their own in its place",
               worst, level == 2 ? "others" : "its group", (unsigned)mode,
               level == 2 ? "any local user" : "any member of its group", what);
}

/* Whether the store holds a certificate equal to `cert` (by its subject). */
static bool
in_store(X509_STORE *store, X509 *cert)
{
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    STACK_OF(X509) *found = NULL;
    bool hit = false;

    if (ctx == NULL || !X509_STORE_CTX_init(ctx, store, NULL, NULL))
        goto out;
    found = X509_STORE_CTX_get1_certs(ctx, X509_get_subject_name(cert));
    for (int i = 0; i < sk_X509_num(found) && !hit; i++)
        hit = X509_cmp(sk_X509_value(found, i), cert) == 0;
out:
    OSSL_STACK_OF_X509_free(found);
    X509_STORE_CTX_free(ctx);
    ERR_clear_error();
    return hit;
}

/*
 * Whether `cert`, a CA that is not self-issued, chains to a root of the
 * system store (through the bundle's other certificates if need be); the
 * root's name into `root` then.  Times are not checked: an expired one is
 * trust_ca_expired of its own.
 */
static bool
chains_to_system(X509_STORE *system, X509 *cert, STACK_OF(X509) * bundle, char *root, size_t len)
{
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    STACK_OF(X509) *path = NULL;
    bool pub = false;

    if (ctx == NULL || !X509_STORE_CTX_init(ctx, system, cert, bundle))
        goto out;
    X509_STORE_CTX_set_flags(ctx, X509_V_FLAG_NO_CHECK_TIME);
    if (X509_verify_cert(ctx) == 1 && (path = X509_STORE_CTX_get0_chain(ctx)) != NULL &&
        sk_X509_num(path) > 1) {
        char *name = x509u_name(X509_get_subject_name(sk_X509_value(path, sk_X509_num(path) - 1)));
        snprintf(root, len, "%s", name != NULL ? name : "?");
        free(name);
        pub = true;
    }
out:
    X509_STORE_CTX_free(ctx);
    ERR_clear_error();
    return pub;
}

/* Check a trust bundle; see doctor.h. */
void
doctor_check_trust(struct doctor_report *r, const struct doctor_src *src, STACK_OF(X509) * bundle,
                   X509_STORE *system, int64_t now)
{
    int n = sk_X509_num(bundle), roots = 0, pub = 0;
    char first_pub[512] = "", first_root[512] = "", label[512], date[32], days[48];

    for (int i = 0; i < n; i++) {
        X509 *c = sk_X509_value(bundle, i);
        int64_t na = 0;

        x509u_label(c, label, sizeof(label));
        if (!(X509_get_extension_flags(c) & EXFLAG_CA))
            doctor_add(r, DOCTOR_WARNING, "trust_not_ca", src,
                       "keep only CA certificates in the trust bundle (duet ca roots prints "
                       "them)",
                       "certificate %d, %s, is not a CA certificate: trusting a leaf directly "
                       "is pinning, and it issues nobody",
                       i, label);
        if (x509u_time(X509_get0_notAfter(c), &na) && na < now) {
            x509u_fmt_date(na, date, sizeof(date));
            x509u_fmt_days(na, now, days, sizeof(days));
            doctor_add(r, DOCTOR_WARNING, "trust_ca_expired", src,
                       "remove it from the bundle, and deploy the CA's new certificate if it "
                       "was re-issued",
                       "certificate %d, %s, expired on %s (%s): no chain through it verifies", i,
                       label, date, days);
        }
        if (!x509u_self_issued(c)) {
            char root[512];
            if (system != NULL && (X509_get_extension_flags(c) & EXFLAG_CA) &&
                chains_to_system(system, c, bundle, root, sizeof(root)))
                doctor_add(r, DOCTOR_WARNING, "trust_public_root", src,
                           "trust only your private CA: write its roots alone to the file (duet "
                           "ca roots --ca-dir CA_DIR > roots.pem)",
                           "certificate %d, %s, is an intermediate of a public CA: it chains to "
                           "%s of the system store, and a chain ending at any certificate of the "
                           "bundle is accepted, so anyone it certifies would be",
                           i, label, root);
            continue;
        }
        roots++;
        if (first_root[0] == '\0')
            snprintf(first_root, sizeof(first_root), "%s", label);
        if (system != NULL && in_store(system, c)) {
            if (pub++ == 0)
                snprintf(first_pub, sizeof(first_pub), "%s", label);
        }
    }
    if (pub > 0)
        doctor_add(r, DOCTOR_WARNING, "trust_public_root", src,
                   "trust only your private CA: write its roots alone to the file (duet ca "
                   "roots --ca-dir CA_DIR > roots.pem)",
                   "%d certificate%s of the bundle %s public root%s also found in the system "
                   "store (first: %s): anyone a public CA certifies would be accepted",
                   pub, pub == 1 ? "" : "s", pub == 1 ? "is a" : "are", pub == 1 ? "" : "s",
                   first_pub);
    else if (roots > 1)
        doctor_add(r, DOCTOR_INFO, "trust_extra_roots", src,
                   "if only one private CA was meant, keep only its root (duet ca roots "
                   "--ca-dir CA_DIR)",
                   "the bundle holds %d root CAs (first: %s): every one of them may certify "
                   "peers",
                   roots, first_root);
}
