/* SPDX-License-Identifier: Apache-2.0 */
/*
 * nc.c - duet's own checks of names and name constraints on a chain that
 * OpenSSL accepted (see nc.h).
 *
 * OpenSSL 3.0's NAME_CONSTRAINTS_check() compares a dNSName with a DNS
 * constraint as text: "*.example.com" is "within" example.com and "outside"
 * bar.example.com, so a CA that excludes bar.example.com could still issue a
 * wildcard that a TLS client matches against bar.example.com (the
 * CVE-2025-61727 class).  Here a wildcard stands for every name it can match
 * (RFC 6125 6.4.3: one whole left-most label): it is refused when any of
 * them is excluded, or when not all of them are permitted.  The structure of
 * the extension (RFC 5280 4.2.1.10) and the syntax of DNS names and DNS
 * constraints (RFC 1034 3.5 as amended by RFC 1123 2.1) are checked too,
 * because OpenSSL accepts any string there.  Everything else of name
 * constraints (IP, email, URI, directory names, the subject) stays
 * OpenSSL's, which has already run when these checks do.
 */
#include "lib/nc.h"

#include <stdio.h>
#include <string.h>

#include <openssl/x509v3.h>

#include "lib/x509util.h"

/* Lower-case an ASCII letter. */
static char
lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

/* Whether a and b (n bytes each) are equal without regard to ASCII case. */
static bool
eq_nocase(const char *a, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (lower(a[i]) != lower(b[i]))
            return false;
    }
    return true;
}

/* Host name syntax; see nc.h. */
bool
nc_dns_name_valid(const char *name, size_t len, bool wildcard, char *why, size_t whylen)
{
    char tmp[8];
    const char *s = name;
    size_t n = len;
    size_t label = 0;

    if (why == NULL) {
        why = tmp;
        whylen = sizeof(tmp);
    }
    if (len == 0) {
        snprintf(why, whylen, "it is empty");
        return false;
    }
    if (len > 253) {
        snprintf(why, whylen, "it is longer than 253 characters");
        return false;
    }
    if (wildcard && n > 2 && s[0] == '*' && s[1] == '.') {
        s += 2; /* RFC 6125 6.4.3: a wildcard as the whole left-most label */
        n -= 2;
    }
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '.') {
            if (label == 0) {
                snprintf(why, whylen, "it has an empty label (a leading or doubled dot)");
                return false;
            }
            if (s[i - 1] == '-') {
                snprintf(why, whylen, "a label ends with a hyphen");
                return false;
            }
            label = 0;
            continue;
        }
        if (c == '-' && label == 0) {
            snprintf(why, whylen, "a label starts with a hyphen");
            return false;
        }
        if (c == '_') {
            snprintf(why, whylen, "'_' is not allowed in a host name");
            return false;
        }
        if (c == '*') {
            snprintf(why, whylen,
                     "a wildcard is allowed only as the whole left-most label of an end-entity "
                     "certificate's name");
            return false;
        }
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-')) {
            snprintf(why, whylen, "byte 0x%02X is not allowed in a host name", (unsigned char)c);
            return false;
        }
        if (++label > 63) {
            snprintf(why, whylen, "a label is longer than 63 characters");
            return false;
        }
    }
    if (label == 0) {
        snprintf(why, whylen, "it ends with a dot");
        return false;
    }
    if (s[n - 1] == '-') {
        snprintf(why, whylen, "a label ends with a hyphen");
        return false;
    }
    return true;
}

/* A name in a DNS subtree; see nc.h. */
bool
nc_dns_in_subtree(const char *name, size_t len, const char *base, size_t blen)
{
    if (blen == 0)
        return true;
    if (len < blen || !eq_nocase(name + len - blen, base, blen))
        return false;
    if (base[0] == '.') /* OpenSSL's reading of ".example.com": below it only */
        return len > blen;
    return len == blen || name[len - blen - 1] == '.';
}

/* Some name of a wildcard in a DNS subtree; see nc.h. */
bool
nc_wildcard_meets(const char *rest, size_t rlen, const char *base, size_t blen)
{
    size_t head;

    if (nc_dns_in_subtree(rest, rlen, base, blen))
        return true; /* every name below `rest` is in it */
    /* base is one label on top of rest: "*.example.com" can be "bar.example.com". */
    if (blen < rlen + 2 || base[0] == '.' || base[blen - rlen - 1] != '.' ||
        !eq_nocase(base + blen - rlen, rest, rlen))
        return false;
    head = blen - rlen - 1;
    return memchr(base, '.', head) == NULL;
}

/* Every name of a wildcard in a DNS subtree; see nc.h. */
bool
nc_wildcard_within(const char *rest, size_t rlen, const char *base, size_t blen)
{
    /* One label on top of a name in the subtree is in it; nothing else is. */
    return nc_dns_in_subtree(rest, rlen, base, blen);
}

/* A name from a certificate for a sentence: visible ASCII, others as \xNN, bounded. */
static void
printable(const char *s, size_t len, char *out, size_t outlen)
{
    size_t o = 0;

    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        char one[8];
        size_t w = 1;
        if (c > 0x20 && c < 0x7f && c != '"' && c != '\\')
            one[0] = (char)c;
        else
            w = (size_t)snprintf(one, sizeof(one), "\\x%02x", c);
        if (o + w + 4 > outlen) {
            memcpy(out + o, "...", 3);
            o += 3;
            break;
        }
        memcpy(out + o, one, w);
        o += w;
    }
    out[o] = '\0';
}

/* Data and length of a GeneralName's IA5String. */
static void
ia5_of(const GENERAL_NAME *g, const char **s, size_t *len)
{
    *s = (const char *)ASN1_STRING_get0_data(g->d.ia5);
    *len = (size_t)ASN1_STRING_length(g->d.ia5);
}

/* The failure being reported: where, what, and its sentence. */
struct ncfail {
    enum verify_fail *fail;
    int *code;
    int *depth;
    struct duet_err *err;
};

static void
set_fail(const struct ncfail *f, enum verify_fail fail, int code, int depth)
{
    *f->fail = fail;
    *f->code = code;
    *f->depth = depth;
}

/*
 * RFC 5280 4.2.1.10 on one list of DNS constraints: each base is empty (the
 * zero-length dNSName of CA/B BR 7.1.2.10.8: every DNS name) or a host name,
 * written without a leading period.
 */
static int
check_dns_bases(X509 *cert, int i, STACK_OF(GENERAL_SUBTREE) *list, const char *which,
                const struct ncfail *f)
{
    char label[600];
    char shown[300];
    char why[160];

    for (int k = 0; k < sk_GENERAL_SUBTREE_num(list); k++) {
        const GENERAL_NAME *b = sk_GENERAL_SUBTREE_value(list, k)->base;
        const char *s;
        size_t len;
        if (b->type != GEN_DNS)
            continue;
        ia5_of(b, &s, &len);
        if (len == 0)
            continue;
        if (s[0] == '.') {
            x509u_label(cert, label, sizeof(label));
            printable(s, len, shown, sizeof(shown));
            set_fail(f, VERIFY_MALFORMED, X509_V_ERR_UNSUPPORTED_CONSTRAINT_SYNTAX, i);
            return err_set(f->err, DUET_ERR_INVALID,
                           "certificate %s has the %s DNS name constraint \"%s\", which is "
                           "malformed: a dNSName constraint has no leading period (RFC 5280 "
                           "4.2.1.10; that form is for URI and email constraints), and \"%s\" "
                           "would hold that name and every name under it",
                           label, which, shown, shown + 1);
        }
        if (!nc_dns_name_valid(s, len, false, why, sizeof(why))) {
            x509u_label(cert, label, sizeof(label));
            printable(s, len, shown, sizeof(shown));
            set_fail(f, VERIFY_MALFORMED, X509_V_ERR_UNSUPPORTED_CONSTRAINT_SYNTAX, i);
            return err_set(f->err, DUET_ERR_INVALID,
                           "certificate %s has the %s DNS name constraint \"%s\", which is "
                           "malformed: %s (RFC 1034 3.5, RFC 1123 2.1)",
                           label, which, shown, why);
        }
    }
    return 0;
}

/* RFC 5280 4.2.1.10 on the nameConstraints extension of the certificate at index i. */
static int
check_structure(X509 *cert, int i, const struct ncfail *f)
{
    char label[600];
    int crit = -1;
    NAME_CONSTRAINTS *nc = X509_get_ext_d2i(cert, NID_name_constraints, &crit, NULL);
    int np;
    int ne;
    int rc = -1;

    if (nc == NULL) {
        if (crit == -1)
            return 0; /* none */
        x509u_label(cert, label, sizeof(label));
        set_fail(f, VERIFY_MALFORMED, X509_V_ERR_INVALID_EXTENSION, i);
        return err_set(f->err, DUET_ERR_INVALID,
                       "certificate %s has a nameConstraints extension that cannot be decoded",
                       label);
    }
    np = nc->permittedSubtrees != NULL ? sk_GENERAL_SUBTREE_num(nc->permittedSubtrees) : -1;
    ne = nc->excludedSubtrees != NULL ? sk_GENERAL_SUBTREE_num(nc->excludedSubtrees) : -1;
    if (i == 0 && (X509_get_extension_flags(cert) & EXFLAG_CA) == 0) {
        x509u_label(cert, label, sizeof(label));
        set_fail(f, VERIFY_MALFORMED, X509_V_ERR_INVALID_EXTENSION, i);
        err_set(f->err, DUET_ERR_INVALID,
                "certificate %s carries a nameConstraints extension but is not a CA certificate "
                "(RFC 5280 4.2.1.10: it MUST be used only in a CA certificate)",
                label);
        goto out;
    }
    if (np <= 0 && ne <= 0) {
        x509u_label(cert, label, sizeof(label));
        set_fail(f, VERIFY_MALFORMED, X509_V_ERR_INVALID_EXTENSION, i);
        err_set(f->err, DUET_ERR_INVALID,
                "certificate %s has a nameConstraints extension without any permitted or "
                "excluded subtree (RFC 5280 4.2.1.10: at least one of them MUST be present)",
                label);
        goto out;
    }
    if (np == 0 || ne == 0) {
        x509u_label(cert, label, sizeof(label));
        set_fail(f, VERIFY_MALFORMED, X509_V_ERR_INVALID_EXTENSION, i);
        err_set(f->err, DUET_ERR_INVALID,
                "certificate %s has a nameConstraints extension with an empty list of %s "
                "subtrees (RFC 5280 4.2.1.10: a list holds at least one subtree)",
                label, np == 0 ? "permitted" : "excluded");
        goto out;
    }
    if (check_dns_bases(cert, i, nc->permittedSubtrees, "permitted", f) != 0 ||
        check_dns_bases(cert, i, nc->excludedSubtrees, "excluded", f) != 0)
        goto out;
    rc = 0;
out:
    NAME_CONSTRAINTS_free(nc);
    return rc;
}

/*
 * The DNS names of the subjectAltName of the certificate at index i (`gens`,
 * may be NULL): host names, with a wildcard left-most label in the leaf only.
 */
static int
check_dns_sans(X509 *cert, int i, const GENERAL_NAMES *gens, const struct ncfail *f)
{
    char label[600];
    char shown[300];
    char why[160];

    for (int k = 0; gens != NULL && k < sk_GENERAL_NAME_num(gens); k++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, k);
        const char *s;
        size_t len;
        if (g->type != GEN_DNS)
            continue;
        ia5_of(g, &s, &len);
        if (nc_dns_name_valid(s, len, i == 0, why, sizeof(why)))
            continue;
        x509u_label(cert, label, sizeof(label));
        printable(s, len, shown, sizeof(shown));
        set_fail(f, VERIFY_MALFORMED, X509_V_ERR_UNSUPPORTED_NAME_SYNTAX, i);
        return err_set(f->err, DUET_ERR_INVALID,
                       "certificate %s has the DNS name \"%s\" in its subject alternative "
                       "names, which is not a valid host name: %s (RFC 1034 3.5, RFC 1123 2.1)",
                       label, shown, why);
    }
    return 0;
}

/*
 * One wildcard DNS name of the leaf (`*.rest`) against the constraints of
 * the CA `ca`: no name it stands for excluded, all of them
 * permitted when DNS names are restricted.
 */
static int
check_wildcard(X509 *leaf, const char *name, size_t len, X509 *ca, const NAME_CONSTRAINTS *nc,
               const struct ncfail *f)
{
    const char *rest = name + 2;
    size_t rlen = len - 2;
    char label[600];
    char calabel[600];
    char shown[300];
    char base[300];
    bool restricted = false;
    bool inside = false;

    for (int k = 0; nc->excludedSubtrees != NULL && k < sk_GENERAL_SUBTREE_num(nc->excludedSubtrees);
         k++) {
        const GENERAL_NAME *b = sk_GENERAL_SUBTREE_value(nc->excludedSubtrees, k)->base;
        const char *s;
        size_t blen;
        if (b->type != GEN_DNS)
            continue;
        ia5_of(b, &s, &blen);
        if (!nc_wildcard_meets(rest, rlen, s, blen))
            continue;
        x509u_label(leaf, label, sizeof(label));
        x509u_label(ca, calabel, sizeof(calabel));
        printable(name, len, shown, sizeof(shown));
        printable(s, blen, base, sizeof(base));
        set_fail(f, VERIFY_NAME_CONSTRAINTS, X509_V_ERR_EXCLUDED_VIOLATION, 0);
        return err_set(f->err, DUET_ERR_INVALID,
                       "certificate %s has the wildcard DNS name %s, which can stand for names "
                       "in the excluded subtree DNS:%s of the name constraints of %s (RFC 5280 "
                       "4.2.1.10)",
                       label, shown, blen > 0 ? base : "(every DNS name)", calabel);
    }
    for (int k = 0;
         nc->permittedSubtrees != NULL && k < sk_GENERAL_SUBTREE_num(nc->permittedSubtrees); k++) {
        const GENERAL_NAME *b = sk_GENERAL_SUBTREE_value(nc->permittedSubtrees, k)->base;
        const char *s;
        size_t blen;
        if (b->type != GEN_DNS)
            continue;
        restricted = true;
        ia5_of(b, &s, &blen);
        if (nc_wildcard_within(rest, rlen, s, blen)) {
            inside = true;
            break;
        }
    }
    if (!restricted || inside)
        return 0;
    x509u_label(leaf, label, sizeof(label));
    x509u_label(ca, calabel, sizeof(calabel));
    printable(name, len, shown, sizeof(shown));
    set_fail(f, VERIFY_NAME_CONSTRAINTS, X509_V_ERR_PERMITTED_VIOLATION, 0);
    return err_set(f->err, DUET_ERR_INVALID,
                   "certificate %s has the wildcard DNS name %s, which can stand for names "
                   "outside the DNS subtrees permitted by the name constraints of %s (RFC 5280 "
                   "4.2.1.10)",
                   label, shown, calabel);
}

/* Every wildcard DNS name of the leaf (`gens`) against the constraints of every CA above it. */
static int
check_wildcards(STACK_OF(X509) *chain, const GENERAL_NAMES *gens, const struct ncfail *f)
{
    X509 *leaf = sk_X509_value(chain, 0);
    int rc = 0;

    for (int k = 0; rc == 0 && gens != NULL && k < sk_GENERAL_NAME_num(gens); k++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, k);
        const char *s;
        size_t len;
        if (g->type != GEN_DNS)
            continue;
        ia5_of(g, &s, &len);
        if (len < 3 || s[0] != '*' || s[1] != '.')
            continue;
        for (int j = 1; rc == 0 && j < sk_X509_num(chain); j++) {
            X509 *ca = sk_X509_value(chain, j);
            NAME_CONSTRAINTS *nc;
            if (X509_get_ext_by_NID(ca, NID_name_constraints, -1) < 0)
                continue;
            nc = X509_get_ext_d2i(ca, NID_name_constraints, NULL, NULL);
            if (nc == NULL) /* it decoded in check_structure(): out of memory; fail closed */
                return err_nomem(f->err);
            rc = check_wildcard(leaf, s, len, ca, nc, f);
            NAME_CONSTRAINTS_free(nc);
        }
    }
    return rc;
}

/*
 * The subjectAltName of a certificate decoded into *out (NULL when it has
 * none).  One that is present but does not decode fails closed: OpenSSL
 * accepted the certificate, so that is memory running out.
 */
static int
sans_of(X509 *cert, GENERAL_NAMES **out, struct duet_err *err)
{
    *out = NULL;
    if (X509_get_ext_by_NID(cert, NID_subject_alt_name, -1) < 0)
        return 0;
    *out = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
    return *out != NULL ? 0 : err_nomem(err);
}

/* The checks of this module on an accepted chain; see nc.h. */
int
nc_check_chain(STACK_OF(X509) *chain, enum verify_fail *fail, int *code, int *depth,
               struct duet_err *err)
{
    struct ncfail f = {fail, code, depth, err};
    GENERAL_NAMES *leaf_sans;
    int n = sk_X509_num(chain);
    int rc;

    if (n < 1)
        return 0;
    /* The constraints first, from the anchor down: they decide what the names below mean. */
    for (int i = n - 1; i >= 0; i--) {
        X509 *cert = sk_X509_value(chain, i);
        if (X509_get_ext_by_NID(cert, NID_name_constraints, -1) >= 0 &&
            check_structure(cert, i, &f) != 0)
            return -1;
    }
    /* The anchor is trusted by configuration; its own names are not relied on. */
    for (int i = 1; i < n - 1; i++) {
        GENERAL_NAMES *gens;
        if (sans_of(sk_X509_value(chain, i), &gens, err) != 0)
            return -1;
        rc = check_dns_sans(sk_X509_value(chain, i), i, gens, &f);
        GENERAL_NAMES_free(gens);
        if (rc != 0)
            return -1;
    }
    if (n < 2)
        return 0; /* a leaf given as trusted */
    if (sans_of(sk_X509_value(chain, 0), &leaf_sans, err) != 0)
        return -1;
    rc = check_dns_sans(sk_X509_value(chain, 0), 0, leaf_sans, &f);
    if (rc == 0)
        rc = check_wildcards(chain, leaf_sans, &f);
    GENERAL_NAMES_free(leaf_sans);
    return rc;
}
