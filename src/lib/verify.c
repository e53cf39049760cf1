/* SPDX-License-Identifier: Apache-2.0 */
/*
 * verify.c - chain verification for a purpose, a name, a time and the CRLs
 * at hand, on top of OpenSSL's X509_verify_cert (RFC 5280 section 6).
 *
 * OpenSSL builds the path and runs the RFC 5280 checks in strict mode
 * (X509_V_FLAG_X509_STRICT), with policy processing, and stops at the first
 * failure: our callback records it and refuses to continue, so no later check
 * can mask an earlier one.  Trust anchors may be intermediates
 * (X509_V_FLAG_PARTIAL_CHAIN): a certificate given as trusted is trusted.
 * Revocation: with CRLs, every certificate below the trust anchor (or the
 * leaf only, by choice) must be covered by a current CRL from its issuer
 * whose scope includes it (RFC 5280 6.3.3 (b)(2)), signed by that issuer's
 * key or by another certificate of the same CA name that validates to the
 * same trust anchor (6.3.3 (f)); a CRL from another issuer does not count,
 * and an expired one is an error.  duet checks this itself once OpenSSL has
 * accepted the path, from the compact serial sets of revset.c, so a CRL of a
 * million entries costs a hash lookup, not OpenSSL's parsed CRL objects.
 * After OpenSSL accepts the chain, duet adds what OpenSSL does not enforce:
 * RSA keys under 2048 bits, DSA keys and curves other than P-256/384/521 are
 * refused everywhere in the chain; SHA-1 and MD5 signatures are refused on
 * every certificate whose signature the chain relies on; the leaf must carry
 * the extended key usage of the purpose (absence is not "any" in duet) and
 * must not be a CA certificate when a TLS purpose is asked; name constraints
 * as RFC 5280 4.2.1.10 means them, where OpenSSL reads names as text (nc.c:
 * wildcards, the extension's structure, DNS name syntax); the parts of the
 * RFC 5280 profile strict mode leaves out (certprofile.c).  DNS constraints
 * are not applied to the subject CN of a leaf with subjectAltNames.
 * Certificate policies (RFC 5280 6.1): OpenSSL's policy tree with the
 * inputs of 6.1.1 (c), (e), (f), (g) from the parameters, whose zero value is
 * the RFC's default (user-initial-policy-set {anyPolicy}, the three others
 * false); a successful verification can report its valid policy set.
 * Path building (RFC 4158): OpenSSL keeps the first issuer it finds at each
 * step; when that path fails for a reason another issuer could change, the
 * other paths to a trusted certificate are enumerated (pathbuild.c, bounded
 * in counts) and each is verified in full as above; the first that validates
 * wins, else the most promising failure is reported.  The first path costs
 * exactly what it did before.
 * Every failure has a category (enum verify_fail) beside its sentence: from
 * OpenSSL's error code for the checks OpenSSL runs, set where duet's own
 * checks fail for the others.
 */
#include "lib/verify.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <arpa/inet.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/core_names.h>
#include <openssl/x509v3.h>

#include "lib/certprofile.h"
#include "lib/nc.h"
#include "lib/pathbuild.h"
#include "lib/x509util.h"

/* Machine names of the categories; stable, used in logs and by libduet's users. */
static const char *const fail_codes[VERIFY_FAIL_COUNT] = {
    [VERIFY_OK] = "ok",
    [VERIFY_ERROR] = "error",
    [VERIFY_EXPIRED] = "expired",
    [VERIFY_NOT_YET_VALID] = "not_yet_valid",
    [VERIFY_UNKNOWN_CA] = "unknown_ca",
    [VERIFY_ANCHOR_REJECTED] = "anchor_rejected",
    [VERIFY_BAD_SIGNATURE] = "bad_signature",
    [VERIFY_NOT_CA] = "not_ca",
    [VERIFY_PATH_LENGTH] = "path_length",
    [VERIFY_TOO_DEEP] = "too_deep",
    [VERIFY_BAD_EKU] = "purpose",
    [VERIFY_LEAF_IS_CA] = "leaf_is_ca",
    [VERIFY_NAME_MISMATCH] = "name",
    [VERIFY_NAME_CONSTRAINTS] = "name_constraints",
    [VERIFY_CERT_POLICY] = "cert_policy",
    [VERIFY_CRITICAL_EXTENSION] = "critical_extension",
    [VERIFY_MALFORMED] = "malformed",
    [VERIFY_WEAK_KEY] = "weak_key",
    [VERIFY_WEAK_SIGNATURE] = "weak_signature",
    [VERIFY_REVOKED] = "revoked",
    [VERIFY_CRL_MISSING] = "crl_missing",
    [VERIFY_CRL_STALE] = "crl_stale",
    [VERIFY_CRL_NOT_YET_VALID] = "crl_not_yet_valid",
    [VERIFY_CRL_BAD_SIGNATURE] = "crl_bad_signature",
    [VERIFY_CRL_NO_CRL_SIGN] = "crl_no_crl_sign",
    [VERIFY_OTHER] = "other",
};

/* The machine name of a category; see verify.h. */
const char *
verify_fail_code(enum verify_fail f)
{
    return (unsigned)f < VERIFY_FAIL_COUNT ? fail_codes[f] : fail_codes[VERIFY_OTHER];
}

/*
 * The category of a failure OpenSSL reported (an X509_V_ERR_* code).  Codes
 * OpenSSL cannot report here (CRL checking is duet's own) are mapped all the
 * same, so that the category never depends on where a code came from.
 */
static enum verify_fail
fail_of_x509(int code)
{
    switch (code) {
    case X509_V_ERR_CERT_HAS_EXPIRED:
        return VERIFY_EXPIRED;
    case X509_V_ERR_CERT_NOT_YET_VALID:
        return VERIFY_NOT_YET_VALID;
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_CERT_UNTRUSTED:
        return VERIFY_UNKNOWN_CA;
    case X509_V_ERR_CERT_REJECTED:
        return VERIFY_ANCHOR_REJECTED;
    case X509_V_ERR_CERT_SIGNATURE_FAILURE:
    case X509_V_ERR_UNABLE_TO_DECRYPT_CERT_SIGNATURE:
    case X509_V_ERR_UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY:
        return VERIFY_BAD_SIGNATURE;
    case X509_V_ERR_INVALID_CA:
    case X509_V_ERR_KEYUSAGE_NO_CERTSIGN:
        return VERIFY_NOT_CA;
    case X509_V_ERR_PATH_LENGTH_EXCEEDED:
        return VERIFY_PATH_LENGTH;
    case X509_V_ERR_CERT_CHAIN_TOO_LONG:
        return VERIFY_TOO_DEEP;
    case X509_V_ERR_INVALID_PURPOSE:
        return VERIFY_BAD_EKU;
    case X509_V_ERR_HOSTNAME_MISMATCH:
    case X509_V_ERR_IP_ADDRESS_MISMATCH:
        return VERIFY_NAME_MISMATCH;
    case X509_V_ERR_PERMITTED_VIOLATION:
    case X509_V_ERR_EXCLUDED_VIOLATION:
    case X509_V_ERR_SUBTREE_MINMAX:
    case X509_V_ERR_UNSUPPORTED_CONSTRAINT_TYPE:
    case X509_V_ERR_UNSUPPORTED_CONSTRAINT_SYNTAX:
    case X509_V_ERR_UNSUPPORTED_NAME_SYNTAX:
        return VERIFY_NAME_CONSTRAINTS;
    case X509_V_ERR_INVALID_POLICY_EXTENSION:
    case X509_V_ERR_NO_EXPLICIT_POLICY:
        return VERIFY_CERT_POLICY;
    case X509_V_ERR_UNHANDLED_CRITICAL_EXTENSION:
        return VERIFY_CRITICAL_EXTENSION;
    /* The RFC 5280 profile that X509_V_FLAG_X509_STRICT enforces. */
    case X509_V_ERR_ERROR_IN_CERT_NOT_BEFORE_FIELD:
    case X509_V_ERR_ERROR_IN_CERT_NOT_AFTER_FIELD:
    case X509_V_ERR_INVALID_EXTENSION:
    case X509_V_ERR_PATHLEN_INVALID_FOR_NON_CA:
    case X509_V_ERR_PATHLEN_WITHOUT_KU_KEY_CERT_SIGN:
    case X509_V_ERR_KU_KEY_CERT_SIGN_INVALID_FOR_NON_CA:
    case X509_V_ERR_ISSUER_NAME_EMPTY:
    case X509_V_ERR_SUBJECT_NAME_EMPTY:
    case X509_V_ERR_MISSING_AUTHORITY_KEY_IDENTIFIER:
    case X509_V_ERR_MISSING_SUBJECT_KEY_IDENTIFIER:
    case X509_V_ERR_EMPTY_SUBJECT_ALT_NAME:
    case X509_V_ERR_EMPTY_SUBJECT_SAN_NOT_CRITICAL:
    case X509_V_ERR_CA_BCONS_NOT_CRITICAL:
    case X509_V_ERR_AUTHORITY_KEY_IDENTIFIER_CRITICAL:
    case X509_V_ERR_SUBJECT_KEY_IDENTIFIER_CRITICAL:
    case X509_V_ERR_CA_CERT_MISSING_KEY_USAGE:
    case X509_V_ERR_EXTENSIONS_REQUIRE_VERSION_3:
        return VERIFY_MALFORMED;
    case X509_V_ERR_EE_KEY_TOO_SMALL:
    case X509_V_ERR_CA_KEY_TOO_SMALL:
    case X509_V_ERR_EC_KEY_EXPLICIT_PARAMS:
        return VERIFY_WEAK_KEY;
    case X509_V_ERR_CA_MD_TOO_WEAK:
        return VERIFY_WEAK_SIGNATURE;
    case X509_V_ERR_CERT_REVOKED:
        return VERIFY_REVOKED;
    case X509_V_ERR_UNABLE_TO_GET_CRL:
    case X509_V_ERR_DIFFERENT_CRL_SCOPE:
        return VERIFY_CRL_MISSING;
    case X509_V_ERR_CRL_HAS_EXPIRED:
        return VERIFY_CRL_STALE;
    case X509_V_ERR_CRL_NOT_YET_VALID:
        return VERIFY_CRL_NOT_YET_VALID;
    case X509_V_ERR_CRL_SIGNATURE_FAILURE:
        return VERIFY_CRL_BAD_SIGNATURE;
    case X509_V_ERR_KEYUSAGE_NO_CRL_SIGN:
        return VERIFY_CRL_NO_CRL_SIGN;
    default:
        return VERIFY_OTHER;
    }
}

/* What the verification callback saw first. */
struct vstate {
    const struct verify_params *p;
    int64_t now;
    int code;       /* first X509_V_ERR_*, or X509_V_OK */
    int depth;      /* chain index of the certificate it concerns */
    X509 *cert;     /* that certificate (a reference) */
    /* The context's policy tree after a failure (borrowed): what the chain allows. */
    X509_POLICY_TREE *tree;
    X509_STORE_CTX *ctx; /* the verification, for a look at its trusted certificates */
};

static int vstate_idx = -1;
static CRYPTO_ONCE vstate_once = CRYPTO_ONCE_STATIC_INIT;

static void
vstate_idx_init(void)
{
    vstate_idx = X509_STORE_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL);
}

/*
 * Failures OpenSSL reports that RFC 5280 does not make failures:
 * - RFC 5280 4.1.2.5: "The validity period for a certificate is the period of
 *   time from notBefore through notAfter, inclusive."  OpenSSL counts a
 *   certificate whose notAfter equals the verification time as expired; it is
 *   valid for that last second.
 * - RFC 5280 4.2.1.9 tells CAs to mark basicConstraints critical ("Conforming
 *   CAs MUST include this extension ... and MUST mark it critical"), a rule for
 *   issuers; section 6 path validation only needs cA TRUE, and pyca and Go
 *   accept the non-critical form.  Strict mode refuses it; duet accepts it and
 *   keeps every other check strict mode makes.
 */
static bool
rfc5280_not_a_failure(int code, X509_STORE_CTX *ctx, int64_t now)
{
    X509 *cur = X509_STORE_CTX_get_current_cert(ctx);

    switch (code) {
    case X509_V_ERR_CERT_HAS_EXPIRED:
        return cur != NULL && ASN1_TIME_cmp_time_t(X509_get0_notAfter(cur), (time_t)now) == 0;
    case X509_V_ERR_CA_BCONS_NOT_CRITICAL:
        return true;
    default:
        return false;
    }
}

/*
 * OpenSSL calls this for each check.  The first failure is recorded and ends
 * the verification, except a missing CRL for a trust anchor: an anchor is
 * trusted by configuration, and nothing above it could have revoked it; and an
 * expired leaf when the parameters accept one.
 */
static int
verify_cb(int ok, X509_STORE_CTX *ctx)
{
    struct vstate *st = X509_STORE_CTX_get_ex_data(ctx, vstate_idx);
    int code;
    int depth;

    if (ok || st == NULL)
        return ok;
    code = X509_STORE_CTX_get_error(ctx);
    depth = X509_STORE_CTX_get_error_depth(ctx);
    if (rfc5280_not_a_failure(code, ctx, st->now)) {
        X509_STORE_CTX_set_error(ctx, X509_V_OK);
        return 1;
    }
    if (code == X509_V_ERR_CERT_HAS_EXPIRED && depth == 0 && st->p->accept_expired_leaf)
        return 1; /* the caller decides on an expired leaf (verify.h) */
    if (st->code == X509_V_OK) {
        X509 *cur = X509_STORE_CTX_get_current_cert(ctx);
        st->code = code;
        st->depth = depth;
        if (cur != NULL && X509_up_ref(cur))
            st->cert = cur;
    }
    return 0;
}

/* Whether name parses as an IPv4 or IPv6 literal. */
static bool
is_ip_literal(const char *name)
{
    unsigned char buf[16];

    return inet_pton(AF_INET, name, buf) == 1 || inet_pton(AF_INET6, name, buf) == 1;
}

/* A DNS name: labels of letters, digits, '-', '_' or a leading "*." is refused. */
bool
verify_name_valid(const char *name)
{
    size_t len;
    size_t label = 0;

    if (name == NULL || name[0] == '\0')
        return false;
    if (is_ip_literal(name))
        return true;
    len = strlen(name);
    if (len > 253 + 1)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        if (c == '.') {
            if (label == 0 && !(i == len - 1 && i > 0))
                return false;
            label = 0;
            continue;
        }
        /*
         * Letters, digits and '-' only (RFC 5280 4.2.1.6: a dNSName is in the
         * "preferred name syntax" of RFC 1034 3.5, as modified by RFC 1123):
         * a name with '_' could never match a certificate's DNS name.
         */
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-'))
            return false;
        if (++label > 63)
            return false;
    }
    return true;
}

/* Comma-separated SANs of a certificate, for "its names are ..." hints. */
static void
list_sans(X509 *cert, char *buf, size_t len)
{
    GENERAL_NAMES *gens = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
    size_t off = 0;

    buf[0] = '\0';
    for (int i = 0; gens != NULL && i < sk_GENERAL_NAME_num(gens); i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
        char one[300];
        if (g->type != GEN_DNS && g->type != GEN_URI && g->type != GEN_EMAIL &&
            g->type != GEN_IPADD)
            continue;
        x509u_general_name(g, one, sizeof(one));
        if (one[0] != '\0' && off < len) {
            int w = snprintf(buf + off, len - off, "%s%s", off ? ", " : "", one);
            if (w > 0)
                off += (size_t)w;
        }
    }
    GENERAL_NAMES_free(gens);
}

/* The extended key usages of a certificate by short name ("serverAuth, clientAuth"). */
static void
list_ekus(X509 *cert, char *buf, size_t len)
{
    EXTENDED_KEY_USAGE *eku = X509_get_ext_d2i(cert, NID_ext_key_usage, NULL, NULL);
    size_t off = 0;

    buf[0] = '\0';
    for (int i = 0; eku != NULL && i < sk_ASN1_OBJECT_num(eku); i++) {
        char name[80];
        OBJ_obj2txt(name, sizeof(name), sk_ASN1_OBJECT_value(eku, i), 0);
        int nid = OBJ_obj2nid(sk_ASN1_OBJECT_value(eku, i));
        const char *sn = nid != NID_undef ? OBJ_nid2sn(nid) : name;
        if (off < len) {
            int w = snprintf(buf + off, len - off, "%s%s", off ? ", " : "", sn);
            if (w > 0)
                off += (size_t)w;
        }
    }
    EXTENDED_KEY_USAGE_free(eku);
}

/* Issuers of the CRLs given, for "the CRLs given are from ..." hints. */
static void
list_crl_issuers(const struct revset *rs, char *buf, size_t len)
{
    size_t off = 0;

    buf[0] = '\0';
    for (size_t i = 0; i < revset_count(rs); i++) {
        char *n = x509u_name(revcrl_get0_issuer(revset_get0(rs, i)));
        if (n != NULL && off < len) {
            int w = snprintf(buf + off, len - off, "%s%s", off ? "; " : "", n);
            if (w > 0)
                off += (size_t)w;
        }
        free(n);
    }
}

static const char *
purpose_text(enum duet_purpose p)
{
    return p == DUET_PURPOSE_SERVER ? "TLS server authentication (serverAuth)"
                                    : "TLS client authentication (clientAuth)";
}

/* Which CA's name constraints does cert (at index i) violate? */
static X509 *
constraining_ca(STACK_OF(X509) *chain, int i)
{
    X509 *leaf = sk_X509_value(chain, i);

    for (int j = i + 1; chain != NULL && j < sk_X509_num(chain); j++) {
        X509 *ca = sk_X509_value(chain, j);
        NAME_CONSTRAINTS *nc = X509_get_ext_d2i(ca, NID_name_constraints, NULL, NULL);
        if (nc == NULL)
            continue;
        int rc = NAME_CONSTRAINTS_check(leaf, nc);
        if (rc == X509_V_OK && i == 0)
            rc = NAME_CONSTRAINTS_check_CN(leaf, nc); /* a leaf without subjectAltNames */
        NAME_CONSTRAINTS_free(nc);
        if (rc != X509_V_OK)
            return ca;
    }
    return NULL;
}

/* The OID of the first critical extension OpenSSL does not support. */
static void
unsupported_critical(X509 *cert, char *buf, size_t len)
{
    snprintf(buf, len, "?");
    for (int i = 0; i < X509_get_ext_count(cert); i++) {
        X509_EXTENSION *ext = X509_get_ext(cert, i);
        if (X509_EXTENSION_get_critical(ext) && !X509_supported_extension(ext)) {
            OBJ_obj2txt(buf, (int)len, X509_EXTENSION_get_object(ext), 1);
            return;
        }
    }
}

/* One policy OID for a reader: "anyPolicy" for 2.5.29.32.0, else dotted decimal. */
static void
policy_text(const ASN1_OBJECT *oid, char *buf, size_t len)
{
    if (OBJ_obj2nid(oid) == NID_any_policy)
        snprintf(buf, len, "anyPolicy");
    else if (OBJ_obj2txt(buf, (int)len, oid, 1) <= 0)
        snprintf(buf, len, "?");
}

/* Append "item" to a comma-separated list in buf, bounded. */
static void
list_append(char *buf, size_t len, size_t *off, const char *item)
{
    if (*off < len) {
        int w = snprintf(buf + *off, len - *off, "%s%s", *off ? ", " : "", item);
        if (w > 0)
            *off += (size_t)w;
    }
}

/* The user-initial-policy-set (RFC 5280 6.1.1 (c)) in words. */
static void
acceptable_policies(const struct verify_params *p, char *buf, size_t len)
{
    size_t off = 0;

    buf[0] = '\0';
    for (int i = 0; p->policies != NULL && i < sk_ASN1_OBJECT_num(p->policies); i++) {
        char one[96];
        const ASN1_OBJECT *oid = sk_ASN1_OBJECT_value(p->policies, i);
        if (OBJ_obj2nid(oid) == NID_any_policy)
            break;
        policy_text(oid, one, sizeof(one));
        list_append(buf, len, &off, one);
    }
    if (off == 0 || len == 0)
        snprintf(buf, len, "any policy");
}

/*
 * Which certificate's policyConstraints made an explicit policy required, or
 * NULL when none did (the parameters did).  The explicit_policy counter of
 * RFC 5280 6.1.2 (d), 6.1.4 (h), (i) and 6.1.5 (a), (b), walked as OpenSSL
 * walks it: from below the trust anchor (whose extensions are not processed)
 * to the leaf, one less for each certificate that is not self-issued, lowered
 * to requireExplicitPolicy where a certificate asks for less.
 */
static X509 *
explicit_policy_source(STACK_OF(X509) *chain)
{
    int n = chain != NULL ? sk_X509_num(chain) - 1 : 0;
    long explicit_policy = n + 1;
    X509 *by = NULL;

    for (int i = n - 1; i >= 0 && explicit_policy > 0; i--) {
        X509 *x = sk_X509_value(chain, i);
        POLICY_CONSTRAINTS *pc = X509_get_ext_d2i(x, NID_policy_constraints, NULL, NULL);
        if ((X509_get_extension_flags(x) & EXFLAG_SI) == 0)
            explicit_policy--;
        if (pc != NULL && pc->requireExplicitPolicy != NULL) {
            long skip = ASN1_INTEGER_get(pc->requireExplicitPolicy);
            if (skip >= 0 && skip < explicit_policy) {
                explicit_policy = skip;
                by = x;
            }
        }
        POLICY_CONSTRAINTS_free(pc);
    }
    return explicit_policy == 0 ? by : NULL;
}

/*
 * What the chain allows when no acceptable policy is valid: the
 * authority-constrained policy set of the policy tree when OpenSSL kept it,
 * else why the valid_policy_tree became NULL (RFC 5280 6.1.3 (e): a
 * certificate without certificatePolicies; (d): no policy in common).
 */
static void
allowed_policies(X509_POLICY_TREE *tree, STACK_OF(X509) *chain, char *buf, size_t len)
{
    STACK_OF(X509_POLICY_NODE) *nodes = tree != NULL ? X509_policy_tree_get0_policies(tree) : NULL;
    int n = chain != NULL ? sk_X509_num(chain) - 1 : 0;
    size_t off = 0;

    buf[0] = '\0';
    for (int i = 0; i < sk_X509_POLICY_NODE_num(nodes); i++) {
        char one[96];
        policy_text(X509_policy_node_get0_policy(sk_X509_POLICY_NODE_value(nodes, i)), one,
                    sizeof(one));
        list_append(buf, len, &off, one);
    }
    if (off > 0)
        return;
    for (int i = n - 1; i >= 0; i--) {
        X509 *x = sk_X509_value(chain, i);
        if (X509_get_ext_by_NID(x, NID_certificate_policies, -1) < 0) {
            char label[600];
            x509u_label(x, label, sizeof(label));
            snprintf(buf, len, "no policy (certificate %s has no certificatePolicies extension)",
                     label);
            return;
        }
    }
    snprintf(buf, len,
             "no policy (none is named by every certificate, by anyPolicy where it is not "
             "inhibited, or through a policy mapping where mapping is not inhibited)");
}

/*
 * RFC 5280 6.1.5 (g), 6.1.6: an explicit policy is required and the chain is
 * valid for none of the acceptable ones.  The sentence names the leaf, who
 * required the explicit policy, what was acceptable and what the chain allows.
 */
static void
describe_policy_refusal(const struct vstate *st, STACK_OF(X509) *chain, struct duet_err *err)
{
    X509 *leaf = chain != NULL && sk_X509_num(chain) > 0 ? sk_X509_value(chain, 0) : st->cert;
    X509 *by = st->p->require_explicit_policy ? NULL : explicit_policy_source(chain);
    char label[600] = "(unknown)";
    char who[700];
    char acceptable[400];
    char allowed[800];

    if (leaf != NULL)
        x509u_label(leaf, label, sizeof(label));
    if (by != NULL) {
        char bylabel[600];
        x509u_label(by, bylabel, sizeof(bylabel));
        snprintf(who, sizeof(who),
                 "the policyConstraints of %s require an explicit policy (requireExplicitPolicy)",
                 bylabel);
    } else {
        snprintf(who, sizeof(who),
                 "the verification requires an explicit policy (require-explicit-policy)");
    }
    acceptable_policies(st->p, acceptable, sizeof(acceptable));
    allowed_policies(st->tree, chain, allowed, sizeof(allowed));
    err_set(err, DUET_ERR_INVALID,
            "certificate %s is not valid for an acceptable certificate policy and %s: "
            "acceptable: %s; the chain allows: %s",
            label, who, acceptable, allowed);
}

/*
 * Why a trusted certificate with the name of cert's issuer is not its issuer
 * (RFC 5280 6.1: the issuer is matched by name, and by key through the
 * authorityKeyIdentifier 4.2.1.1), into why; returns the trusted certificate
 * (a reference the caller frees) or NULL when the trust store has none of
 * that name.  Only on a refusal: it never costs an accepted chain anything.
 */
static X509 *
issuer_near_miss(X509_STORE_CTX *ctx, X509 *cert, char *why, size_t len)
{
    STACK_OF(X509) *named;
    X509 *cand = NULL;
    int code, ski;

    if (ctx == NULL || cert == NULL ||
        (named = X509_STORE_CTX_get1_certs(ctx, X509_get_issuer_name(cert))) == NULL)
        return NULL;
    if (sk_X509_num(named) > 0 && X509_up_ref(sk_X509_value(named, 0)))
        cand = sk_X509_value(named, 0);
    OSSL_STACK_OF_X509_free(named);
    if (cand == NULL)
        return NULL;
    code = X509_check_issued(cand, cert);
    ski = X509_get_ext_by_NID(cand, NID_subject_key_identifier, -1);
    if (ski >= 0 && X509_EXTENSION_get_critical(X509_get_ext(cand, ski)))
        snprintf(why, len, "its subjectKeyIdentifier is marked critical (RFC 5280 4.2.1.2: "
                 "conforming CAs MUST mark it non-critical)");
    else if ((X509_get_extension_flags(cand) & EXFLAG_KUSAGE) != 0 &&
             (X509_get_key_usage(cand) & KU_KEY_CERT_SIGN) == 0)
        snprintf(why, len, "its keyUsage does not allow certificate signing (keyCertSign)");
    else if ((X509_get_extension_flags(cand) & EXFLAG_INVALID) != 0)
        snprintf(why, len, "it has an invalid extension (for example a critical "
                 "subjectKeyIdentifier, or two extensions of one type)");
    else if ((X509_get_extension_flags(cert) & EXFLAG_INVALID) != 0)
        snprintf(why, len, "the certificate it issued has an invalid extension (for example "
                 "two extensions of one type), so no issuer can be matched to it");
    else if (code == X509_V_ERR_AKID_SKID_MISMATCH)
        snprintf(why, len, "its subjectKeyIdentifier is not the certificate's "
                 "authorityKeyIdentifier (another key of that name)");
    else if (code == X509_V_ERR_AKID_ISSUER_SERIAL_MISMATCH)
        snprintf(why, len, "its issuer and serial number are not the ones the certificate's "
                 "authorityKeyIdentifier names");
    else if (code == X509_V_ERR_KEYUSAGE_NO_CERTSIGN)
        snprintf(why, len, "its keyUsage does not allow certificate signing (keyCertSign)");
    else if (code == X509_V_OK && X509_verify(cert, X509_get0_pubkey(cand)) != 1)
        snprintf(why, len, "its key does not verify the certificate's signature");
    else
        snprintf(why, len, "%s", X509_verify_cert_error_string(code));
    return cand;
}

/*
 * One sentence for the first failure OpenSSL reported, naming the certificate
 * and the check; returns its category.  `chain` is the chain as far as
 * OpenSSL built it.
 */
static enum verify_fail
describe_failure(const struct vstate *st, STACK_OF(X509) *chain, struct duet_err *err)
{
    const struct verify_params *p = st->p;
    X509 *cert = st->cert;
    char label[600];
    char date[32];
    char days[48];
    char hint[600];
    int64_t t = 0;
    enum verify_fail fail = fail_of_x509(st->code);

    if (cert == NULL && chain != NULL && st->depth >= 0 && st->depth < sk_X509_num(chain))
        cert = sk_X509_value(chain, st->depth);
    if (cert != NULL)
        x509u_label(cert, label, sizeof(label));
    else
        snprintf(label, sizeof(label), "at depth %d", st->depth);

    switch (st->code) {
    case X509_V_ERR_CERT_HAS_EXPIRED:
        x509u_time(X509_get0_notAfter(cert), &t);
        x509u_fmt_date(t, date, sizeof(date));
        x509u_fmt_days(t, st->now, days, sizeof(days));
        err_set(err, DUET_ERR_INVALID, "certificate %s expired on %s, %s", label, date, days);
        return fail;
    case X509_V_ERR_CERT_NOT_YET_VALID:
        x509u_time(X509_get0_notBefore(cert), &t);
        x509u_fmt_date(t, date, sizeof(date));
        x509u_fmt_days(t, st->now, days, sizeof(days));
        err_set(err, DUET_ERR_INVALID, "certificate %s is not valid before %s (%s)", label, date,
                days);
        return fail;
    case X509_V_ERR_ERROR_IN_CERT_NOT_BEFORE_FIELD:
    case X509_V_ERR_ERROR_IN_CERT_NOT_AFTER_FIELD:
        err_set(err, DUET_ERR_INVALID, "certificate %s has a malformed validity period", label);
        return fail;
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY: {
        char *iss = x509u_name(X509_get_issuer_name(cert));
        X509 *near = issuer_near_miss(st->ctx, cert, hint, sizeof(hint));
        if (near != NULL) {
            char nlabel[600];
            x509u_label(near, nlabel, sizeof(nlabel));
            err_set(err, DUET_ERR_INVALID,
                    "certificate %s was issued by %s, and the trusted certificate %s has that "
                    "name but cannot be its issuer: %s",
                    label, iss != NULL ? iss : "?", nlabel, hint);
            X509_free(near);
        } else {
            err_set(err, DUET_ERR_INVALID,
                    "certificate %s was issued by %s, which is not among the trusted "
                    "certificates (unknown CA, or a missing intermediate: give it after the leaf "
                    "or as untrusted)",
                    label, iss != NULL ? iss : "?");
        }
        free(iss);
        return fail;
    }
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
        err_set(err, DUET_ERR_INVALID,
                "certificate %s is self-signed and not among the trusted certificates", label);
        return fail;
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
        err_set(err, DUET_ERR_INVALID,
                "the chain ends at self-signed certificate %s, which is not among the trusted "
                "certificates (unknown CA)",
                label);
        return fail;
    case X509_V_ERR_CERT_UNTRUSTED:
    case X509_V_ERR_CERT_REJECTED:
        err_set(err, DUET_ERR_INVALID, "certificate %s is not trusted for this purpose", label);
        return fail;
    case X509_V_ERR_CERT_SIGNATURE_FAILURE:
    case X509_V_ERR_UNABLE_TO_DECRYPT_CERT_SIGNATURE:
    case X509_V_ERR_UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY: {
        char *iss = x509u_name(X509_get_issuer_name(cert));
        err_set(err, DUET_ERR_INVALID,
                "the signature on certificate %s does not verify with the key of its issuer %s",
                label, iss != NULL ? iss : "?");
        free(iss);
        return fail;
    }
    case X509_V_ERR_INVALID_CA: {
        /* OpenSSL's CA check also fails a CA whose keyUsage lacks keyCertSign (4.2.1.3). */
        if ((X509_get_extension_flags(cert) & (EXFLAG_CA | EXFLAG_KUSAGE)) ==
                (EXFLAG_CA | EXFLAG_KUSAGE) &&
            (X509_get_key_usage(cert) & KU_KEY_CERT_SIGN) == 0) {
            err_set(err, DUET_ERR_INVALID,
                    "CA certificate %s has a key usage without keyCertSign, so it may not sign "
                    "certificates",
                    label);
            return fail;
        }
        err_set(err, DUET_ERR_INVALID,
                "certificate %s issues other certificates in this chain but is not a CA "
                "(basicConstraints CA:TRUE is missing)",
                label);
        return fail;
    }
    case X509_V_ERR_KEYUSAGE_NO_CERTSIGN:
        err_set(err, DUET_ERR_INVALID,
                "CA certificate %s has a key usage without keyCertSign, so it may not sign "
                "certificates",
                label);
        return fail;
    case X509_V_ERR_PATH_LENGTH_EXCEEDED: {
        BASIC_CONSTRAINTS *bc = X509_get_ext_d2i(cert, NID_basic_constraints, NULL, NULL);
        long plen = (bc != NULL && bc->pathlen != NULL) ? ASN1_INTEGER_get(bc->pathlen) : -1;
        BASIC_CONSTRAINTS_free(bc);
        err_set(err, DUET_ERR_INVALID,
                "CA certificate %s allows %ld intermediate CA certificate%s below it "
                "(pathLenConstraint) but the chain has %d",
                label, plen, plen == 1 ? "" : "s", st->depth - 1);
        return fail;
    }
    case X509_V_ERR_CERT_CHAIN_TOO_LONG:
        /* OpenSSL names the certificate where the depth ran out; the chain is the leaf's. */
        if (chain != NULL && sk_X509_num(chain) > 0)
            x509u_label(sk_X509_value(chain, 0), label, sizeof(label));
        err_set(err, DUET_ERR_INVALID,
                "the chain of certificate %s needs more intermediate CA certificates than the "
                "maximum depth of %d allows",
                label, p->max_depth_set ? p->max_depth : VERIFY_DEFAULT_MAX_DEPTH);
        return fail;
    case X509_V_ERR_INVALID_PURPOSE:
        list_ekus(cert, hint, sizeof(hint));
        if (st->depth == 0 && hint[0] != '\0')
            err_set(err, DUET_ERR_INVALID,
                    "certificate %s is not valid for %s: its extended key usage is %s", label,
                    purpose_text(p->purpose), hint);
        else if (st->depth == 0)
            err_set(err, DUET_ERR_INVALID,
                    "certificate %s is not valid for %s: its key usage does not allow it", label,
                    purpose_text(p->purpose));
        else
            err_set(err, DUET_ERR_INVALID,
                    "CA certificate %s may not issue certificates for %s: its extended key usage "
                    "is %s",
                    label, purpose_text(p->purpose), hint[0] ? hint : "restricted");
        return fail;
    case X509_V_ERR_HOSTNAME_MISMATCH:
    case X509_V_ERR_IP_ADDRESS_MISMATCH:
        list_sans(cert, hint, sizeof(hint));
        err_set(err, DUET_ERR_INVALID, "certificate %s is not valid for the name %s (%s%s)", label,
                p->name != NULL ? p->name : "?", hint[0] ? "its names: " : "",
                hint[0] ? hint : "it has no subject alternative names; the subject CN is not used");
        return fail;
    case X509_V_ERR_PERMITTED_VIOLATION:
    case X509_V_ERR_EXCLUDED_VIOLATION:
    case X509_V_ERR_SUBTREE_MINMAX:
    case X509_V_ERR_UNSUPPORTED_CONSTRAINT_TYPE:
    case X509_V_ERR_UNSUPPORTED_CONSTRAINT_SYNTAX:
    case X509_V_ERR_UNSUPPORTED_NAME_SYNTAX: {
        X509 *ca = constraining_ca(chain, st->depth);
        char calabel[600] = "an issuing CA";
        if (ca != NULL)
            x509u_label(ca, calabel, sizeof(calabel));
        list_sans(cert, hint, sizeof(hint));
        err_set(err, DUET_ERR_INVALID,
                "certificate %s has a name outside the name constraints of %s (%s; names: %s)",
                label, calabel, X509_verify_cert_error_string(st->code),
                hint[0] ? hint : "subject only");
        return fail;
    }
    case X509_V_ERR_NO_EXPLICIT_POLICY:
        describe_policy_refusal(st, chain, err);
        return fail;
    case X509_V_ERR_INVALID_POLICY_EXTENSION:
        /* RFC 5280 4.2.1.4 (no policy twice), 4.2.1.5 and 6.1.4 (a) (no anyPolicy mapped). */
        err_set(err, DUET_ERR_INVALID,
                "certificate %s has an invalid certificate policy extension: a policy named "
                "twice, a mapping to or from anyPolicy, or a malformed certificatePolicies, "
                "policyMappings, policyConstraints or inhibitAnyPolicy",
                label);
        return fail;
    case X509_V_ERR_UNHANDLED_CRITICAL_EXTENSION:
        unsupported_critical(cert, hint, sizeof(hint));
        err_set(err, DUET_ERR_INVALID,
                "certificate %s has a critical extension duet does not handle (OID %s)", label,
                hint);
        return fail;
    default:
        err_set(err, DUET_ERR_INVALID, "certificate %s failed the check: %s", label,
                X509_verify_cert_error_string(st->code));
        return fail;
    }
}

/* Whether a public key is strong enough; otherwise why not, in `why`. */
static bool
key_acceptable(X509 *cert, char *why, size_t len)
{
    EVP_PKEY *pk = X509_get0_pubkey(cert);
    char desc[64];
    int bits = 0;

    if (pk == NULL) {
        snprintf(why, len, "its public key cannot be decoded");
        return false;
    }
    x509u_key_describe(pk, desc, sizeof(desc), &bits);
    if (EVP_PKEY_is_a(pk, "RSA") || EVP_PKEY_is_a(pk, "RSA-PSS")) {
        if (bits < VERIFY_MIN_RSA_BITS) {
            snprintf(why, len, "its key is %s; at least RSA %d is required", desc,
                     VERIFY_MIN_RSA_BITS);
            return false;
        }
        return true;
    }
    if (EVP_PKEY_is_a(pk, "EC")) {
        char group[64];
        size_t glen = 0;
        if (!EVP_PKEY_get_utf8_string_param(pk, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                            &glen)) {
            snprintf(why, len, "its EC key uses explicit curve parameters");
            return false;
        }
        if (strcmp(group, "prime256v1") == 0 || strcmp(group, "P-256") == 0 ||
            strcmp(group, "secp384r1") == 0 || strcmp(group, "P-384") == 0 ||
            strcmp(group, "secp521r1") == 0 || strcmp(group, "P-521") == 0)
            return true;
        snprintf(why, len, "its key is %s; only P-256, P-384 and P-521 are accepted", desc);
        return false;
    }
    if (EVP_PKEY_is_a(pk, "ED25519") || EVP_PKEY_is_a(pk, "ED448"))
        return true;
    snprintf(why, len, "its key is %s, which duet does not accept", desc);
    return false;
}

/*
 * Whether the signature of a certificate uses an acceptable digest.  The
 * digest comes from OpenSSL's signature info, which also looks inside
 * RSA-PSS parameters; EdDSA has no separate digest.
 */
static bool
sig_acceptable(X509 *cert, char *why, size_t len)
{
    int nid = X509_get_signature_nid(cert);
    int md = NID_undef;
    int pk = NID_undef;
    int secbits = 0;
    uint32_t flags = 0;

    if (nid == NID_ED25519 || nid == NID_ED448)
        return true;
    if (!X509_get_signature_info(cert, &md, &pk, &secbits, &flags)) {
        ERR_clear_error();
        snprintf(why, len, "its signature algorithm %s is not supported",
                 nid != NID_undef ? OBJ_nid2sn(nid) : "(unknown)");
        return false;
    }
    if (md == NID_sha1 || md == NID_md5 || md == NID_md4 || md == NID_md2 || md == NID_mdc2 ||
        md == NID_ripemd160 || md == NID_md5_sha1) {
        snprintf(why, len, "it is signed with %s (%s), which is refused as too weak",
                 nid != NID_undef ? OBJ_nid2sn(nid) : "?", OBJ_nid2sn(md));
        return false;
    }
    return true;
}

/*
 * Whether a CRL signer's own key may be DSA: only on the path of a CRL
 * signer (nest > 0), only its own key (the first certificate), only with
 * `--insecure-crl-signature dsa`, and only of 2048 bits or more (NIST SP
 * 800-131A: DSA below 2048 bits is disallowed even for legacy use).
 */
static bool
legacy_dsa_signer(X509 *cert, const struct verify_params *p, int nest, int i)
{
    EVP_PKEY *pk = X509_get0_pubkey(cert);

    return nest > 0 && i == 0 && revset_allows_crl_dsa(p->revs) && pk != NULL &&
           EVP_PKEY_is_a(pk, "DSA") && EVP_PKEY_get_bits(pk) >= 2048;
}

/*
 * Checks beyond OpenSSL's on an accepted chain: key strength of every
 * certificate, signature digests of all but the trust anchor (whose own
 * signature nothing relies on), and the leaf's role for a TLS purpose.  On
 * failure returns -1 with the sentence, the category in *fail and the chain
 * index of the certificate concerned in *depth.
 */
static int
extra_checks(STACK_OF(X509) *chain, const struct verify_params *p, int nest,
             enum verify_fail *fail, int *depth, struct duet_err *err)
{
    int n = sk_X509_num(chain);
    char label[600];
    char why[256];

    *depth = 0;
    for (int i = 0; i < n; i++) {
        X509 *c = sk_X509_value(chain, i);
        *depth = i;
        if (!key_acceptable(c, why, sizeof(why)) && !legacy_dsa_signer(c, p, nest, i)) {
            x509u_label(c, label, sizeof(label));
            *fail = VERIFY_WEAK_KEY;
            return err_set(err, DUET_ERR_INVALID, "certificate %s has a weak key: %s", label, why);
        }
        if (i < n - 1 && !sig_acceptable(c, why, sizeof(why))) {
            x509u_label(c, label, sizeof(label));
            *fail = VERIFY_WEAK_SIGNATURE;
            return err_set(err, DUET_ERR_INVALID, "certificate %s has a weak signature: %s",
                           label, why);
        }
    }
    *depth = 0;
    if (p->purpose != DUET_PURPOSE_ANY) {
        X509 *leaf = sk_X509_value(chain, 0);
        uint32_t flags = X509_get_extension_flags(leaf);
        uint32_t want = p->purpose == DUET_PURPOSE_SERVER ? XKU_SSL_SERVER : XKU_SSL_CLIENT;
        x509u_label(leaf, label, sizeof(label));
        if ((flags & EXFLAG_CA) != 0) {
            *fail = VERIFY_LEAF_IS_CA;
            return err_set(err, DUET_ERR_INVALID,
                           "certificate %s is a CA certificate (CA:TRUE), not one for %s", label,
                           purpose_text(p->purpose));
        }
        if ((flags & EXFLAG_XKUSAGE) == 0 ||
            (X509_get_extended_key_usage(leaf) & want) == 0) {
            *fail = VERIFY_BAD_EKU;
            return err_set(err, DUET_ERR_INVALID,
                           "certificate %s is not valid for %s: it has no extended key usage "
                           "for it",
                           label, purpose_text(p->purpose));
        }
    }
    return 0;
}

/* The names of a CRL's issuingDistributionPoint, or of a certificate's CRL distribution points. */
static void
names_text(const GENERAL_NAMES *names, char *buf, size_t len)
{
    size_t off = 0;

    buf[0] = '\0';
    for (int i = 0; names != NULL && i < sk_GENERAL_NAME_num(names) && off < len; i++) {
        char one[300];
        x509u_general_name(sk_GENERAL_NAME_value(names, i), one, sizeof(one));
        int w = snprintf(buf + off, len - off, "%s%s", off ? ", " : "", one);
        if (w > 0)
            off += (size_t)w;
    }
}

/* The full names of a certificate's CRL distribution points, or "" when it has none. */
static void
cdp_text(X509 *cert, char *buf, size_t len)
{
    CRL_DIST_POINTS *cdp = X509_get_ext_d2i(cert, NID_crl_distribution_points, NULL, NULL);
    size_t off = 0;

    buf[0] = '\0';
    for (int i = 0; cdp != NULL && i < sk_DIST_POINT_num(cdp) && off < len; i++) {
        DIST_POINT *dp = sk_DIST_POINT_value(cdp, i);
        char one[400];
        if (dp->distpoint != NULL && dp->distpoint->type == 0)
            names_text(dp->distpoint->name.fullname, one, sizeof(one));
        else
            snprintf(one, sizeof(one), "%s", dp->distpoint != NULL ? "a relative name"
                                                                   : "one without a name");
        if (dp->CRLissuer != NULL || dp->reasons != NULL)
            snprintf(one + strlen(one), sizeof(one) - strlen(one), " (%s)",
                     dp->CRLissuer != NULL ? "with a cRLIssuer" : "for some reasons only");
        int w = snprintf(buf + off, len - off, "%s%s", off ? "; " : "", one);
        if (w > 0)
            off += (size_t)w;
    }
    CRL_DIST_POINTS_free(cdp);
    ERR_clear_error();
}

/*
 * Why a CRL of the certificate's issuer does not cover it (RFC 5280 6.3.3
 * (b)(2)), as the end of a sentence.
 */
static void
scope_text(const struct rev_result *r, X509 *cert, char *buf, size_t len)
{
    char idp[600];
    char cdp[600];

    names_text(revcrl_idp_names(r->crl), idp, sizeof(idp));
    switch (r->scope) {
    case REV_SCOPE_USER_ONLY:
        snprintf(buf, len,
                 "its issuingDistributionPoint limits it to end-entity certificates "
                 "(onlyContainsUserCerts) and this is a CA certificate");
        break;
    case REV_SCOPE_CA_ONLY:
        snprintf(buf, len,
                 "its issuingDistributionPoint limits it to CA certificates "
                 "(onlyContainsCACerts) and this is not a CA certificate");
        break;
    case REV_SCOPE_DP_MISMATCH:
        cdp_text(cert, cdp, sizeof(cdp));
        snprintf(buf, len,
                 "its issuingDistributionPoint is %s, which is none of the certificate's CRL "
                 "distribution points (%s)",
                 idp, cdp);
        break;
    case REV_SCOPE_DP_NO_CDP:
        snprintf(buf, len,
                 "its issuingDistributionPoint is %s and the certificate has no CRL "
                 "distribution point, so only a CRL for all of the issuer's certificates covers "
                 "it (RFC 5280 6.3.3)",
                 idp);
        break;
    case REV_SCOPE_OK:
        snprintf(buf, len, "its scope excludes it");
        break;
    }
}

/*
 * One sentence for a revocation result other than REV_GOOD, its category in
 * *fail; returns its X509_V_ERR_* code.
 */
static int
describe_revocation(const struct rev_result *r, X509 *cert, const struct verify_params *p,
                    int64_t now, enum verify_fail *fail, struct duet_err *err)
{
    char label[600];
    char date[32];
    char days[48];
    char hint[1400];
    char *who = r->crl != NULL ? x509u_name(revcrl_get0_issuer(r->crl))
                               : x509u_name(X509_get_issuer_name(cert));
    const char *w = who != NULL ? who : "?";
    int code = X509_V_ERR_UNSPECIFIED;

    *fail = VERIFY_OTHER;

    x509u_label(cert, label, sizeof(label));
    switch (r->status) {
    case REV_REVOKED:
        x509u_fmt_date(r->date, date, sizeof(date));
        err_set(err, DUET_ERR_INVALID,
                "certificate %s was revoked on %s (reason: %s) by the CRL of %s", label, date,
                r->reason >= 0 ? x509u_crl_reason(r->reason) : "unspecified", w);
        code = X509_V_ERR_CERT_REVOKED;
        *fail = VERIFY_REVOKED;
        break;
    case REV_NO_CRL:
        list_crl_issuers(p->revs, hint, sizeof(hint));
        err_set(err, DUET_ERR_INVALID,
                "no CRL from %s was given to check certificate %s for revocation (the CRLs given "
                "are from: %s)",
                w, label, hint);
        code = X509_V_ERR_UNABLE_TO_GET_CRL;
        *fail = VERIFY_CRL_MISSING;
        break;
    case REV_CRL_EXPIRED:
        x509u_fmt_date(revcrl_next_update(r->crl), date, sizeof(date));
        x509u_fmt_days(revcrl_next_update(r->crl), now, days, sizeof(days));
        err_set(err, DUET_ERR_INVALID,
                "the CRL of %s, needed to check certificate %s, expired on %s, %s (past its "
                "nextUpdate)",
                w, label, date, days);
        code = X509_V_ERR_CRL_HAS_EXPIRED;
        *fail = VERIFY_CRL_STALE;
        break;
    case REV_CRL_NOT_YET_VALID:
        x509u_fmt_date(revcrl_this_update(r->crl), date, sizeof(date));
        err_set(err, DUET_ERR_INVALID,
                "the CRL of %s, needed to check certificate %s, is not valid before %s", w, label,
                date);
        code = X509_V_ERR_CRL_NOT_YET_VALID;
        *fail = VERIFY_CRL_NOT_YET_VALID;
        break;
    case REV_CRL_BAD_SIGNATURE:
        err_set(err, DUET_ERR_INVALID,
                "the CRL naming %s as issuer, needed to check certificate %s, is not signed by "
                "that CA's key%s%s",
                w, label, r->signer_why[0] != '\0' ? "; " : "", r->signer_why);
        code = X509_V_ERR_CRL_SIGNATURE_FAILURE;
        *fail = VERIFY_CRL_BAD_SIGNATURE;
        break;
    case REV_CRL_NO_CRL_SIGN:
        err_set(err, DUET_ERR_INVALID,
                "the CRL of %s cannot be used to check certificate %s: the issuing CA's key "
                "usage does not include cRLSign%s%s",
                w, label, r->signer_why[0] != '\0' ? "; " : "", r->signer_why);
        code = X509_V_ERR_KEYUSAGE_NO_CRL_SIGN;
        *fail = VERIFY_CRL_NO_CRL_SIGN;
        break;
    case REV_CRL_OUT_OF_SCOPE:
        scope_text(r, cert, hint, sizeof(hint));
        err_set(err, DUET_ERR_INVALID,
                "no CRL given covers certificate %s: the CRL of %s (%s) does not count, as %s",
                label, w, revcrl_source(r->crl), hint);
        code = X509_V_ERR_DIFFERENT_CRL_SCOPE;
        *fail = VERIFY_CRL_MISSING;
        break;
    case REV_GOOD:
        break;
    }
    free(who);
    return code;
}

static int store_ctx_verify(X509_STORE_CTX *ctx, const struct verify_params *p, int nest,
                            enum verify_fail *fail, struct duet_err *err);

/* What the search for another signer of a CRL needs (RFC 5280 6.3.3 (f)). */
struct crl_signers {
    const struct verify_params *p;
    STACK_OF(X509) *chain;     /* the verified chain; its last certificate is the trust anchor */
    X509_STORE *store;         /* the trusted certificates; may be NULL */
    STACK_OF(X509) *untrusted; /* may be NULL */
    int64_t now;
    int nest;                  /* 0: the chain asked for; 1: a CRL signer's own path */
};

/* Push an up-referenced certificate; false when memory runs out. */
static bool
pool_push(STACK_OF(X509) *pool, X509 *x)
{
    if (!X509_up_ref(x))
        return false;
    if (!sk_X509_push(pool, x)) {
        X509_free(x);
        return false;
    }
    return true;
}

/*
 * Every certificate at hand, up-referenced: the verified chain, the trusted
 * store's, then the untrusted ones (which a TLS peer chooses, so they come
 * last).  NULL when memory runs out.
 */
static STACK_OF(X509) *
signer_pool(const struct crl_signers *s)
{
    STACK_OF(X509) *pool = sk_X509_new_null();
    bool ok = pool != NULL;

    for (int i = 0; ok && i < sk_X509_num(s->chain); i++)
        ok = pool_push(pool, sk_X509_value(s->chain, i));
    if (ok && s->store != NULL && X509_STORE_lock(s->store)) {
        STACK_OF(X509_OBJECT) *objs = X509_STORE_get0_objects(s->store);
        for (int i = 0; ok && i < sk_X509_OBJECT_num(objs); i++) {
            X509 *x = X509_OBJECT_get0_X509(sk_X509_OBJECT_value(objs, i));
            if (x != NULL)
                ok = pool_push(pool, x);
        }
        X509_STORE_unlock(s->store);
    }
    for (int i = 0; ok && s->untrusted != NULL && i < sk_X509_num(s->untrusted); i++)
        ok = pool_push(pool, sk_X509_value(s->untrusted, i));
    if (!ok) {
        OSSL_STACK_OF_X509_free(pool);
        return NULL;
    }
    return pool;
}

/*
 * Whether `signer`, a certificate of the CRL issuer's name that verifies the
 * CRL and may sign CRLs, is an authority for it: RFC 5280 6.3.3 (f), "Obtain
 * and validate the certification path for the issuer of the complete CRL.
 * The trust anchor for the certification path MUST be the same as the trust
 * anchor used to validate the target certificate."  The trust anchor itself
 * qualifies (a CA's new self-signed root after a key rollover).  Any other
 * certificate is verified as duet verifies any chain, at the same time, with
 * the anchor as the only trusted certificate and everything at hand as
 * untrusted, and its own path checked for revocation with the same CRLs and
 * scope, but only by CRLs its issuers' own keys signed: a CRL signer cannot
 * vouch for itself.  On refusal, the reason in `why`.
 */
static bool
signer_accepted(const struct crl_signers *s, X509 *signer, STACK_OF(X509) *pool, char *why,
                size_t len)
{
    X509 *anchor = sk_X509_value(s->chain, sk_X509_num(s->chain) - 1);
    X509_STORE *st = NULL;
    X509_STORE_CTX *ctx = NULL;
    struct verify_params q = *s->p;
    struct duet_err e;
    char label[600];
    char alabel[600];
    bool ok = false;

    if (X509_cmp(signer, anchor) == 0)
        return true;
    err_clear(&e);
    st = X509_STORE_new();
    ctx = X509_STORE_CTX_new();
    q.store = st;
    q.untrusted = pool;
    q.purpose = DUET_PURPOSE_ANY;
    q.name = NULL;
    q.use_time = true;
    q.time = s->now;
    q.accept_expired_leaf = false;
    if (st == NULL || ctx == NULL || !X509_STORE_add_cert(st, anchor) ||
        !X509_STORE_CTX_init(ctx, st, signer, pool)) {
        snprintf(e.msg, sizeof(e.msg), "out of memory");
        goto out;
    }
    ok = store_ctx_verify(ctx, &q, s->nest + 1, NULL, &e) == 0;
out:
    if (!ok) {
        x509u_label(signer, label, sizeof(label));
        x509u_label(anchor, alabel, sizeof(alabel));
        snprintf(why, len,
                 "certificate %s has that name and signs the CRL, but is not that CA's CRL "
                 "signer: its path must validate to the same trust anchor, %s, and %s",
                 label, alabel, e.msg);
    }
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(st);
    ERR_clear_error();
    return ok;
}

/*
 * At most this many certificates are tried as a CRL's signer per CRL and
 * certificate: each costs a signature verification, and a TLS peer can send
 * many certificates of its issuer's name.
 */
#define VERIFY_MAX_CRL_SIGNERS 8

/*
 * The rev_signers search: certificates at hand named as the CRL's issuer (the
 * certificate's issuer, or for an indirect CRL the cRLIssuer its distribution
 * point names, RFC 5280 6.3.3 (b)(1) and (f)), other than the certificate's
 * issuer and the certificate itself, that verify the
 * CRL, carry keyUsage with cRLSign (required here, not only honoured when
 * present: a certificate that signs CRLs for another key of its CA says so)
 * and are accepted by signer_accepted().
 */
static bool
signer_find(void *arg, const struct revcrl *crl, X509 *cert, X509 *issuer, char *why,
            size_t len)
{
    const struct crl_signers *s = arg;
    const X509_NAME *name = revcrl_get0_issuer(crl);
    STACK_OF(X509) *pool = signer_pool(s);
    char label[600];
    bool ok = false;
    int tried = 0;

    for (int i = 0; pool != NULL && !ok && i < sk_X509_num(pool); i++) {
        X509 *x = sk_X509_value(pool, i);
        bool seen = false;
        if (X509_NAME_cmp(X509_get_subject_name(x), name) != 0 || X509_cmp(x, issuer) == 0 ||
            X509_cmp(x, cert) == 0)
            continue;
        for (int j = 0; j < i && !seen; j++)
            seen = X509_cmp(sk_X509_value(pool, j), x) == 0;
        if (seen)
            continue;
        if (++tried > VERIFY_MAX_CRL_SIGNERS) {
            snprintf(why, len, "more than %d certificates of that name were tried as its signer",
                     VERIFY_MAX_CRL_SIGNERS);
            break;
        }
        if (!revcrl_verify(crl, x))
            continue;
        if (!(X509_get_extension_flags(x) & EXFLAG_KUSAGE) ||
            !(X509_get_key_usage(x) & KU_CRL_SIGN)) {
            x509u_label(x, label, sizeof(label));
            snprintf(why, len,
                     "certificate %s has that name and signs the CRL, but its key usage does "
                     "not include cRLSign",
                     label);
            continue;
        }
        ok = signer_accepted(s, x, pool, why, len);
    }
    if (!ok && tried == 0 && X509_NAME_cmp(name, X509_get_issuer_name(cert)) != 0)
        snprintf(why, len,
                 "it is an indirect CRL of another issuer, and no certificate of that name was "
                 "given to validate as its signer (RFC 5280 6.3.3 (f))");
    OSSL_STACK_OF_X509_free(pool);
    return ok;
}

/*
 * Revocation of a chain: verify_revocation(), with the certificates among
 * which other CRL signers are looked for.  `nest` > 0 checks a CRL signer's
 * own path, where no other signer is looked for.
 */
static int
revocation_check(STACK_OF(X509) *chain, const struct verify_params *p, int64_t now,
                 X509_STORE *store, STACK_OF(X509) *untrusted, int nest, int *code, int *depth,
                 enum verify_fail *fail, struct duet_err *err)
{
    int n = sk_X509_num(chain);
    int last = n - 1; /* the anchor, not checked */
    struct crl_signers s = {p, chain, store, untrusted, now, nest};
    struct rev_signers alt = {signer_find, &s};

    if (revset_count(p->revs) == 0)
        return 0;
    if (p->crl_scope == DUET_CRL_LEAF && last > 1)
        last = 1;
    for (int i = 0; i < last; i++) {
        struct rev_result r;
        X509 *cert = sk_X509_value(chain, i);
        revset_check_ex(p->revs, cert, sk_X509_value(chain, i + 1), now, p->accept_expired_crl,
                        nest == 0 ? &alt : NULL, &r);
        if (r.status == REV_GOOD)
            continue;
        enum verify_fail f;
        int c = describe_revocation(&r, cert, p, now, &f, err);
        if (fail != NULL)
            *fail = f;
        if (code != NULL)
            *code = c;
        if (depth != NULL)
            *depth = i;
        return -1;
    }
    return 0;
}

/* {anyPolicy}, the default user-initial-policy-set; built once, never freed. */
static STACK_OF(ASN1_OBJECT) *any_policy_set;
static CRYPTO_ONCE any_policy_once = CRYPTO_ONCE_STATIC_INIT;

static void
any_policy_init(void)
{
    STACK_OF(ASN1_OBJECT) *sk = sk_ASN1_OBJECT_new_null();

    /* OBJ_nid2obj() lends a static object: nothing to free with the stack. */
    if (sk != NULL && !sk_ASN1_OBJECT_push(sk, OBJ_nid2obj(NID_any_policy))) {
        sk_ASN1_OBJECT_free(sk);
        sk = NULL;
    }
    any_policy_set = sk;
}

/*
 * RFC 5280 6.1.1: the inputs of policy processing.  (c) user-initial-policy-set
 * is {anyPolicy} unless the parameters name policies; (e) initial-policy-
 * mapping-inhibit, (f) initial-explicit-policy and (g) initial-any-policy-
 * inhibit are false unless asked for.  The flags are cleared first: a TLS
 * handshake's context inherits its SSL_CTX's, and the parameters decide.
 */
static int
apply_policy_params(X509_VERIFY_PARAM *vp, const struct verify_params *p, struct duet_err *err)
{
    unsigned long flags = 0;
    STACK_OF(ASN1_OBJECT) *set = p->policies;

    X509_VERIFY_PARAM_clear_flags(vp, X509_V_FLAG_EXPLICIT_POLICY | X509_V_FLAG_INHIBIT_MAP |
                                          X509_V_FLAG_INHIBIT_ANY);
    if (p->require_explicit_policy)
        flags |= X509_V_FLAG_EXPLICIT_POLICY;
    if (p->inhibit_policy_mapping)
        flags |= X509_V_FLAG_INHIBIT_MAP;
    if (p->inhibit_any_policy)
        flags |= X509_V_FLAG_INHIBIT_ANY;
    if (flags != 0)
        X509_VERIFY_PARAM_set_flags(vp, flags);
    if (set == NULL || sk_ASN1_OBJECT_num(set) == 0) {
        if (!CRYPTO_THREAD_run_once(&any_policy_once, any_policy_init) || any_policy_set == NULL)
            return err_nomem(err);
        set = any_policy_set;
    }
    if (!X509_VERIFY_PARAM_set1_policies(vp, set))
        return err_nomem(err);
    return 0;
}

/* Revocation of a verified chain; see verify.h. */
int
verify_revocation(STACK_OF(X509) *chain, const struct verify_params *p, int64_t now, int *code,
                  int *depth, enum verify_fail *fail, struct duet_err *err)
{
    return revocation_check(chain, p, now, p->store, p->untrusted, 0, code, depth, fail, err);
}

/* Apply the parameters to a store context; see verify_store_ctx(). */
static int
apply_params(X509_STORE_CTX *ctx, const struct verify_params *p, int64_t now,
             struct duet_err *err)
{
    X509_VERIFY_PARAM *vp = X509_STORE_CTX_get0_param(ctx);
    unsigned long flags = X509_V_FLAG_X509_STRICT | X509_V_FLAG_PARTIAL_CHAIN |
                          X509_V_FLAG_TRUSTED_FIRST | X509_V_FLAG_POLICY_CHECK;
    int depth = p->max_depth_set ? p->max_depth : VERIFY_DEFAULT_MAX_DEPTH;

    X509_VERIFY_PARAM_set_flags(vp, flags);
    if (apply_policy_params(vp, p, err) != 0)
        return -1;
    X509_VERIFY_PARAM_set_depth(vp, depth);
    X509_VERIFY_PARAM_set_time(vp, (time_t)now);
    if (p->purpose != DUET_PURPOSE_ANY) {
        int purpose = p->purpose == DUET_PURPOSE_SERVER ? X509_PURPOSE_SSL_SERVER
                                                        : X509_PURPOSE_SSL_CLIENT;
        if (!X509_VERIFY_PARAM_set_purpose(vp, purpose))
            return err_set_ssl(err, DUET_ERR_INTERNAL, "cannot set verification purpose");
    } else if (!X509_VERIFY_PARAM_set_purpose(vp, X509_PURPOSE_ANY)) {
        /* A TLS handshake's context comes with OpenSSL's TLS purpose: any means any. */
        return err_set_ssl(err, DUET_ERR_INTERNAL, "cannot set verification purpose");
    }
    if (p->name != NULL) {
        if (!verify_name_valid(p->name))
            return err_set(err, DUET_ERR_INPUT, "name %s is neither a DNS name nor an IP address%s",
                           p->name,
                           strchr(p->name, '_') != NULL
                               ? " (a DNS name holds letters, digits, '-' and '.', never '_'; "
                                 "no certificate's DNS name could match it)"
                               : "");
        if (is_ip_literal(p->name)) {
            if (!X509_VERIFY_PARAM_set1_ip_asc(vp, p->name))
                return err_set_ssl(err, DUET_ERR_INPUT, "name %s is not a usable IP address",
                                   p->name);
        } else {
            X509_VERIFY_PARAM_set_hostflags(vp, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS |
                                                    X509_CHECK_FLAG_NEVER_CHECK_SUBJECT);
            if (!X509_VERIFY_PARAM_set1_host(vp, p->name, 0))
                return err_set_ssl(err, DUET_ERR_INPUT, "name %s is not a usable DNS name",
                                   p->name);
        }
    }
    return 0;
}

/*
 * RFC 5280 4.2.1.10 applies DNS name constraints to dNSName subjectAltNames;
 * a subject CN is no DNS name, and duet never matches a host name against
 * one.  OpenSSL 3.0 also applies them to a host-like CN of a leaf without a
 * dNSName (NAME_CONSTRAINTS_check_CN) unless the host flags say never to use
 * the subject; duet says so for a leaf that has subjectAltNames, as pyca and
 * Go do.  Every name OpenSSL checks otherwise (each subjectAltName of every
 * type, the subject as a directoryName, emailAddress attributes of the
 * subject) is still checked.  A leaf without subjectAltNames keeps the CN
 * check: its CN is then its canonical name in duet's identity.
 */
static void
subject_cn_unconstrained(X509_STORE_CTX *ctx)
{
    X509 *leaf = X509_STORE_CTX_get0_cert(ctx);
    X509_VERIFY_PARAM *vp = X509_STORE_CTX_get0_param(ctx);

    if (leaf != NULL && X509_get_ext_by_NID(leaf, NID_subject_alt_name, -1) >= 0)
        X509_VERIFY_PARAM_set_hostflags(vp, X509_VERIFY_PARAM_get_hostflags(vp) |
                                                X509_CHECK_FLAG_NEVER_CHECK_SUBJECT);
}

/* Verify with a caller-initialised context; see verify.h. */
int
verify_store_ctx(X509_STORE_CTX *ctx, const struct verify_params *p, enum verify_fail *fail,
                 struct duet_err *err)
{
    return store_ctx_verify(ctx, p, 0, fail, err);
}

/*
 * One verification of the path OpenSSL builds on ctx, and duet's checks on
 * it: verify_store_ctx() without path building.  CRL signers other than the
 * issuers are looked for among `signers` and `pool` (the trusted and
 * untrusted certificates of the verification asked for, which an attempt on
 * another path keeps).  The chain index of the certificate a failure
 * concerns is in *depth (-1 when verification could not run).
 */
static int
attempt(X509_STORE_CTX *ctx, const struct verify_params *p, int nest, X509_STORE *signers,
        STACK_OF(X509) *pool, enum verify_fail *fail, int *depth, struct duet_err *err)
{
    struct vstate st;
    STACK_OF(X509) *chain;
    enum verify_fail f = VERIFY_ERROR;
    int rc = -1;
    int ok;

    if (fail != NULL)
        *fail = VERIFY_ERROR; /* until verification has run */
    memset(&st, 0, sizeof(st));
    st.p = p;
    st.ctx = ctx;
    st.code = X509_V_OK;
    st.depth = -1;
    st.now = p->use_time ? p->time : (int64_t)time(NULL);
    if (!CRYPTO_THREAD_run_once(&vstate_once, vstate_idx_init) || vstate_idx < 0)
        return err_set(err, DUET_ERR_INTERNAL, "cannot register verification state");
    if (apply_params(ctx, p, st.now, err) != 0)
        return -1;
    subject_cn_unconstrained(ctx);
    X509_STORE_CTX_set_verify_cb(ctx, verify_cb);
    if (!X509_STORE_CTX_set_ex_data(ctx, vstate_idx, &st))
        return err_nomem(err);
    ERR_clear_error();
    ok = X509_verify_cert(ctx);
    X509_STORE_CTX_set_ex_data(ctx, vstate_idx, NULL);
    chain = X509_STORE_CTX_get0_chain(ctx);
    if (ok != 1) {
        if (st.code == X509_V_OK) {
            st.code = X509_STORE_CTX_get_error(ctx);
            st.depth = X509_STORE_CTX_get_error_depth(ctx);
        }
        if (st.code == X509_V_OK) {
            err_set_ssl(err, DUET_ERR_INTERNAL, "certificate verification could not run");
            goto out;
        }
        st.tree = X509_STORE_CTX_get0_policy_tree(ctx);
        f = describe_failure(&st, chain, err);
        X509_STORE_CTX_set_error(ctx, st.code);
        goto out;
    }
    if (chain == NULL || sk_X509_num(chain) < 1) {
        err_set(err, DUET_ERR_INTERNAL, "verification produced no chain");
        goto out;
    }
    if (revocation_check(chain, p, st.now, signers, pool, nest, &st.code, &st.depth, &f,
                         err) != 0) {
        X509_STORE_CTX_set_error_depth(ctx, st.depth);
        X509_STORE_CTX_set_current_cert(ctx, sk_X509_value(chain, st.depth));
        X509_STORE_CTX_set_error(ctx, st.code);
        goto out;
    }
    if (extra_checks(chain, p, nest, &f, &st.depth, err) != 0) {
        X509_STORE_CTX_set_error_depth(ctx, st.depth);
        X509_STORE_CTX_set_error(ctx, X509_V_ERR_APPLICATION_VERIFICATION);
        goto out;
    }
    if (nc_check_chain(chain, &f, &st.code, &st.depth, err) != 0 ||
        certprofile_check_chain(chain, &f, &st.depth, err) != 0) {
        if (err->kind != DUET_ERR_INVALID)
            f = VERIFY_ERROR;
        X509_STORE_CTX_set_error_depth(ctx, st.depth);
        X509_STORE_CTX_set_current_cert(ctx, sk_X509_value(chain, st.depth));
        X509_STORE_CTX_set_error(ctx, f == VERIFY_NAME_CONSTRAINTS
                                          ? st.code
                                          : X509_V_ERR_APPLICATION_VERIFICATION);
        goto out;
    }
    f = VERIFY_OK;
    rc = 0;
out:
    if (fail != NULL)
        *fail = f;
    *depth = st.depth;
    X509_free(st.cert);
    ERR_clear_error();
    return rc;
}

/*
 * Whether another path could end a failure: not when it concerns the leaf
 * alone (its own validity, name, purpose, role, encoding, key, signature
 * algorithm, or its serial on its issuer's CRL), which every path shares,
 * nor when verification could not run.
 */
static bool
another_path_may_help(enum verify_fail f, int depth)
{
    switch (f) {
    case VERIFY_OK:
    case VERIFY_ERROR:
    case VERIFY_NAME_MISMATCH:
    case VERIFY_LEAF_IS_CA:
        return false;
    case VERIFY_EXPIRED:
    case VERIFY_NOT_YET_VALID:
    case VERIFY_BAD_EKU:
    case VERIFY_REVOKED:
    case VERIFY_MALFORMED:
    case VERIFY_CRITICAL_EXTENSION:
    case VERIFY_WEAK_KEY:
    case VERIFY_WEAK_SIGNATURE:
        return depth != 0;
    default:
        return true;
    }
}

/*
 * How promising a failed path is, for the failure reported when no path
 * validates: a path that reached a trust anchor beats one that did not
 * (unknown_ca, or too_deep: OpenSSL's own path grew past the depth bound
 * before it reached one, as round a cycle of cross-signatures); then the
 * failure nearest the leaf (a smaller chain index: OpenSSL checks signatures
 * and validity from the anchor down, so more of the path checked out); on a
 * tie the path tried first, so the failure is today's when no other path
 * does better.
 */
static bool
more_promising(enum verify_fail f, int depth, enum verify_fail best_f, int best_depth)
{
    bool anchored = f != VERIFY_UNKNOWN_CA && f != VERIFY_TOO_DEEP;
    bool best_anchored = best_f != VERIFY_UNKNOWN_CA && best_f != VERIFY_TOO_DEEP;

    if (anchored != best_anchored)
        return anchored;
    return depth >= 0 && depth < best_depth;
}

/* The path search of one verification (RFC 4158): what each attempt needs and what it found. */
struct search {
    X509_STORE_CTX *ctx;         /* the verification asked for */
    const struct verify_params *p;
    STACK_OF(X509) *first;       /* the path of the first attempt; borrowed from ctx */
    X509_STORE_CTX *found;       /* the attempt that validated, or NULL */
    /* The most promising failure so far (the first attempt's to begin with). */
    enum verify_fail best_f;
    int best_depth;
    int best_code;               /* its X509_V_ERR_* code, for the context */
    struct duet_err best_err;
    int tried;                   /* paths verified besides the first */
    struct duet_err *err;        /* where a failure to run goes */
};

/* Whether a candidate path is the one the first attempt verified. */
static bool
same_path(STACK_OF(X509) *a, STACK_OF(X509) *b)
{
    if (a == NULL || b == NULL || sk_X509_num(a) != sk_X509_num(b))
        return false;
    for (int i = 0; i < sk_X509_num(a); i++) {
        if (X509_cmp(sk_X509_value(a, i), sk_X509_value(b, i)) != 0)
            return false;
    }
    return true;
}

/*
 * The pathbuild_try_fn of a search: verify one candidate path in full, as
 * the first attempt was (OpenSSL strict mode, then duet's checks, the
 * revocation of the path and the same parameters), with the path's anchor as
 * the only trusted certificate and its intermediates as the only untrusted
 * ones.  Returns 1 when the path validated (kept in s->found), 0 after a
 * failure (kept when more promising), -1 when verification could not run.
 */
static int
try_path(void *arg, STACK_OF(X509) *path)
{
    struct search *s = arg;
    int n = sk_X509_num(path);
    X509_STORE *st = NULL;
    X509_STORE_CTX *ctx = NULL;
    STACK_OF(X509) *mid = NULL;
    struct duet_err e;
    enum verify_fail f = VERIFY_ERROR;
    int depth = -1;
    int rc = -1;

    if (same_path(path, s->first))
        return 0; /* its failure is known */
    err_clear(&e);
    st = X509_STORE_new();
    ctx = X509_STORE_CTX_new();
    mid = sk_X509_new_null();
    if (st == NULL || ctx == NULL || mid == NULL ||
        !X509_STORE_add_cert(st, sk_X509_value(path, n - 1))) {
        err_nomem(s->err);
        goto out;
    }
    for (int i = 1; i < n - 1; i++) {
        if (!sk_X509_push(mid, sk_X509_value(path, i))) {
            err_nomem(s->err);
            goto out;
        }
    }
    if (!X509_STORE_CTX_init(ctx, st, sk_X509_value(path, 0), mid)) {
        err_set_ssl(s->err, DUET_ERR_NOMEM, "cannot start verification");
        goto out;
    }
    /* The settings the first attempt started from (a TLS handshake's, for one). */
    if (!X509_VERIFY_PARAM_set1(X509_STORE_CTX_get0_param(ctx),
                                X509_STORE_CTX_get0_param(s->ctx))) {
        err_nomem(s->err);
        goto out;
    }
    s->tried++;
    if (attempt(ctx, s->p, 0, X509_STORE_CTX_get0_store(s->ctx),
                X509_STORE_CTX_get0_untrusted(s->ctx), &f, &depth, &e) == 0) {
        s->found = ctx;
        ctx = NULL;
        rc = 1;
        goto out;
    }
    if (e.kind != DUET_ERR_INVALID) {
        *s->err = e;
        goto out;
    }
    if (more_promising(f, depth, s->best_f, s->best_depth)) {
        s->best_f = f;
        s->best_depth = depth;
        s->best_code = X509_STORE_CTX_get_error(ctx);
        s->best_err = e;
    }
    rc = 0;
out:
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(st);
    sk_X509_free(mid); /* the certificates belong to the search */
    ERR_clear_error();
    return rc;
}

/* The trusted certificates of a store, up-referenced; NULL when memory runs out. */
static STACK_OF(X509) *
store_certs(X509_STORE *store)
{
    STACK_OF(X509) *sk = sk_X509_new_null();
    bool ok = sk != NULL;

    if (ok && store != NULL && X509_STORE_lock(store)) {
        STACK_OF(X509_OBJECT) *objs = X509_STORE_get0_objects(store);
        for (int i = 0; ok && i < sk_X509_OBJECT_num(objs); i++) {
            X509 *x = X509_OBJECT_get0_X509(sk_X509_OBJECT_value(objs, i));
            if (x != NULL)
                ok = pool_push(sk, x);
        }
        X509_STORE_unlock(store);
    }
    if (!ok) {
        OSSL_STACK_OF_X509_free(sk);
        return NULL;
    }
    return sk;
}

/* Append a clause to a failure's sentence, cut at the buffer's end. */
static void PRINTF_LIKE(2, 3)
append_clause(struct duet_err *err, const char *fmt, ...)
{
    size_t len = strlen(err->msg);
    va_list ap;

    if (len + 1 >= sizeof(err->msg))
        return;
    va_start(ap, fmt);
    vsnprintf(err->msg + len, sizeof(err->msg) - len, fmt, ap);
    va_end(ap);
}

/*
 * Path building after the first path failed (RFC 4158; RFC 5280 6.1 leaves
 * finding the path to the relying party): every other path from the leaf to
 * a trusted certificate, depth first and bounded (pathbuild.h), each
 * verified in full by try_path().  On the first that validates, ctx takes its
 * chain and no error, and *fail is VERIFY_OK.  When none does, err and ctx
 * hold the most promising failure (more_promising()), with a clause saying
 * how many paths were tried and whether a bound ended the search.  The
 * first attempt's failure is in *fail, *depth and err on entry.
 */
static int
build_paths(X509_STORE_CTX *ctx, const struct verify_params *p, enum verify_fail *fail,
            int depth, struct duet_err *err)
{
    struct search s;
    struct pathbuild_limits lim;
    struct pathbuild_stats stats;
    STACK_OF(X509) *trusted = store_certs(X509_STORE_CTX_get0_store(ctx));
    STACK_OF(X509) *chain = NULL;
    struct duet_err run;
    int64_t now = p->use_time ? p->time : (int64_t)time(NULL);
    int found;
    int rc = -1;

    memset(&s, 0, sizeof(s));
    err_clear(&run);
    s.ctx = ctx;
    s.p = p;
    s.first = X509_STORE_CTX_get0_chain(ctx);
    s.best_f = *fail;
    s.best_depth = depth;
    s.best_code = X509_STORE_CTX_get_error(ctx);
    s.best_err = *err;
    s.err = &run;
    if (trusted == NULL) {
        *fail = VERIFY_ERROR;
        return err_nomem(err);
    }
    pathbuild_limits_default(&lim, p->max_depth_set ? p->max_depth : VERIFY_DEFAULT_MAX_DEPTH);
    found = pathbuild_run(X509_STORE_CTX_get0_cert(ctx), trusted,
                          X509_STORE_CTX_get0_untrusted(ctx), now, &lim, try_path, &s, &stats);
    if (found < 0) {
        if (run.kind == DUET_ERR_NONE)
            err_nomem(&run);
        *err = run;
        *fail = VERIFY_ERROR;
        goto out;
    }
    if (found == 1 && s.found != NULL) {
        chain = X509_STORE_CTX_get1_chain(s.found);
        if (chain == NULL) {
            *fail = VERIFY_ERROR;
            err_nomem(err);
            goto out;
        }
        if (p->valid_policies != NULL &&
            verify_valid_policies(s.found, p->valid_policies, err) != 0) {
            OSSL_STACK_OF_X509_free(chain);
            *fail = VERIFY_ERROR;
            goto out;
        }
        X509_STORE_CTX_set0_verified_chain(ctx, chain);
        X509_STORE_CTX_set_error_depth(ctx, 0);
        X509_STORE_CTX_set_current_cert(ctx, X509_STORE_CTX_get0_cert(ctx));
        X509_STORE_CTX_set_error(ctx, X509_V_OK);
        err_clear(err);
        *fail = VERIFY_OK;
        rc = 0;
        goto out;
    }
    *err = s.best_err;
    *fail = s.best_f;
    X509_STORE_CTX_set_error_depth(ctx, s.best_depth);
    X509_STORE_CTX_set_error(ctx, s.best_code != X509_V_OK ? s.best_code
                                                           : X509_V_ERR_APPLICATION_VERIFICATION);
    if (stats.limited)
        append_clause(err,
                      "; path building stopped at its bounds (%d issuers per certificate, "
                      "%d paths, %d signatures) after %d other certification paths, none valid",
                      lim.max_issuers, lim.max_paths, lim.max_sigchecks, s.tried);
    else if (s.tried > 0)
        append_clause(err, "; %d other certification path%s tried, none valid", s.tried,
                      s.tried == 1 ? " was" : "s were");
out:
    X509_STORE_CTX_free(s.found);
    OSSL_STACK_OF_X509_free(trusted);
    return rc;
}

/* verify_store_ctx(); `nest` > 0 verifies a CRL signer's path (see revocation_check()). */
static int
store_ctx_verify(X509_STORE_CTX *ctx, const struct verify_params *p, int nest,
                 enum verify_fail *fail, struct duet_err *err)
{
    enum verify_fail f = VERIFY_ERROR;
    int depth = -1;
    int rc;

    rc = attempt(ctx, p, nest, X509_STORE_CTX_get0_store(ctx), X509_STORE_CTX_get0_untrusted(ctx),
                 &f, &depth, err);
    /* Only a failed path pays for path building; a CRL signer's own path does not search. */
    if (rc != 0 && nest == 0 && err->kind == DUET_ERR_INVALID && another_path_may_help(f, depth))
        rc = build_paths(ctx, p, &f, depth, err);
    if (fail != NULL)
        *fail = f;
    return rc;
}

/* Verify a leaf against the parameters; see verify.h. */
int
verify_chain(const struct verify_params *p, X509 *leaf, STACK_OF(X509) *extra,
             STACK_OF(X509) **chain_out, struct duet_err *err)
{
    return verify_chain_ex(p, leaf, extra, chain_out, NULL, err);
}

/* Verify a leaf and report the category of the outcome; see verify.h. */
int
verify_chain_ex(const struct verify_params *p, X509 *leaf, STACK_OF(X509) *extra,
                STACK_OF(X509) **chain_out, enum verify_fail *fail, struct duet_err *err)
{
    X509_STORE_CTX *ctx = NULL;
    STACK_OF(X509) *untrusted = NULL;
    int rc = -1;

    if (fail != NULL)
        *fail = VERIFY_ERROR; /* until verification has run */
    if (chain_out != NULL)
        *chain_out = NULL;
    if (p->valid_policies != NULL)
        *p->valid_policies = NULL;
    if (p->store == NULL)
        return err_set(err, DUET_ERR_INPUT, "no trusted certificates were given");
    untrusted = sk_X509_new_null();
    ctx = X509_STORE_CTX_new();
    if (untrusted == NULL || ctx == NULL) {
        err_nomem(err);
        goto out;
    }
    for (int i = 0; p->untrusted != NULL && i < sk_X509_num(p->untrusted); i++) {
        if (!sk_X509_push(untrusted, sk_X509_value(p->untrusted, i))) {
            err_nomem(err);
            goto out;
        }
    }
    for (int i = 0; extra != NULL && i < sk_X509_num(extra); i++) {
        if (!sk_X509_push(untrusted, sk_X509_value(extra, i))) {
            err_nomem(err);
            goto out;
        }
    }
    if (!X509_STORE_CTX_init(ctx, p->store, leaf, untrusted)) {
        err_set_ssl(err, DUET_ERR_NOMEM, "cannot start verification");
        goto out;
    }
    if (verify_store_ctx(ctx, p, fail, err) != 0)
        goto out;
    /* A path other than the first one stored its policies already (build_paths()). */
    if (p->valid_policies != NULL && *p->valid_policies == NULL &&
        verify_valid_policies(ctx, p->valid_policies, err) != 0) {
        if (fail != NULL)
            *fail = VERIFY_ERROR;
        goto out;
    }
    if (chain_out != NULL) {
        *chain_out = X509_STORE_CTX_get1_chain(ctx);
        if (*chain_out == NULL) {
            if (fail != NULL)
                *fail = VERIFY_ERROR;
            err_nomem(err);
            goto out;
        }
    }
    rc = 0;
out:
    if (rc != 0 && p->valid_policies != NULL) {
        verify_policies_free(*p->valid_policies);
        *p->valid_policies = NULL;
    }
    X509_STORE_CTX_free(ctx);
    sk_X509_free(untrusted); /* the certificates belong to the caller */
    return rc;
}

/* Free a stack of policy OIDs; see verify.h. */
void
verify_policies_free(STACK_OF(ASN1_OBJECT) *policies)
{
    sk_ASN1_OBJECT_pop_free(policies, ASN1_OBJECT_free);
}

/*
 * The valid policy set of a successful verification; see verify.h.  With
 * anyPolicy in the user-initial-policy-set OpenSSL 3.0 lends the
 * authority-constrained policy set (RFC 5280 6.1.5 (g)(iii): the whole tree),
 * else the user-constrained one (6.1.5 (g)(ii)); a node's valid_policy is
 * the policy in the trust anchor's domain, as 6.1.6 reports it.
 */
int
verify_valid_policies(X509_STORE_CTX *ctx, STACK_OF(ASN1_OBJECT) **out, struct duet_err *err)
{
    X509_POLICY_TREE *tree = X509_STORE_CTX_get0_policy_tree(ctx);
    STACK_OF(X509_POLICY_NODE) *nodes = tree != NULL ? X509_policy_tree_get0_user_policies(tree)
                                                     : NULL;
    STACK_OF(ASN1_OBJECT) *set = sk_ASN1_OBJECT_new_null();

    *out = NULL;
    if (set == NULL)
        return err_nomem(err);
    for (int i = 0; i < sk_X509_POLICY_NODE_num(nodes); i++) {
        const ASN1_OBJECT *oid =
            X509_policy_node_get0_policy(sk_X509_POLICY_NODE_value(nodes, i));
        bool seen = false;
        ASN1_OBJECT *copy;
        for (int j = 0; j < sk_ASN1_OBJECT_num(set) && !seen; j++)
            seen = OBJ_cmp(sk_ASN1_OBJECT_value(set, j), oid) == 0;
        if (seen || oid == NULL)
            continue;
        copy = OBJ_dup(oid);
        if (copy == NULL || !sk_ASN1_OBJECT_push(set, copy)) {
            ASN1_OBJECT_free(copy);
            verify_policies_free(set);
            return err_nomem(err);
        }
    }
    *out = set;
    return 0;
}
