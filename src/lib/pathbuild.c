/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pathbuild.c - depth-first enumeration of a leaf's certification paths
 * (RFC 4158, "Internet X.509 Public Key Infrastructure: Certification Path
 * Building"), bounded against pathological inputs.
 *
 * RFC 5280 6.1 validates a path; it leaves finding one to the relying party,
 * and RFC 4158 2.4 describes the search: a tree of candidate issuers walked
 * depth first, with loop detection (5.2) and candidates sorted so that the
 * likely ones come first (3.5).  Here the sort is: trusted certificates
 * first (shortest paths end there), then certificates valid at the time of
 * verification, then the order the certificates were given in.  Only the
 * structure is checked here (name and key identifier match, X509_check_issued,
 * and the signature); each complete path is validated in full by the caller.
 * Every bound is a count, so a search costs the same on any machine.
 */
#include "lib/pathbuild.h"

#include <stdlib.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/x509v3.h>

/* The state of one search. */
struct walk {
    STACK_OF(X509) *pool; /* trusted then untrusted, without duplicates; borrowed certs */
    int ntrusted;         /* pool[0 .. ntrusted - 1] are the trusted ones */
    bool *reach;          /* per pool entry: some chain of issuers by name leads to a trusted one */
    STACK_OF(X509) *path;
    int64_t now;
    const struct pathbuild_limits *lim;
    pathbuild_try_fn fn;
    void *arg;
    struct pathbuild_stats *stats;
};

/* The default bounds; see pathbuild.h. */
void
pathbuild_limits_default(struct pathbuild_limits *lim, int max_depth)
{
    lim->max_issuers = PATHBUILD_MAX_ISSUERS;
    lim->max_len = max_depth + 2; /* the leaf and the anchor do not count (X509_VERIFY_PARAM) */
    lim->max_paths = PATHBUILD_MAX_PATHS;
    lim->max_sigchecks = PATHBUILD_MAX_SIGCHECKS;
}

/* Whether sk holds x (the same encoding). */
static bool
holds(STACK_OF(X509) *sk, X509 *x)
{
    for (int i = 0; sk != NULL && i < sk_X509_num(sk); i++) {
        if (X509_cmp(sk_X509_value(sk, i), x) == 0)
            return true;
    }
    return false;
}

/*
 * RFC 4158 5.2: a path must not pass twice through the same subject name and
 * key, even under two certificates (a CA cross-signed back by its own
 * subordinate), or the walk could go round a cycle of cross-certificates.
 */
static bool
on_path(STACK_OF(X509) *path, X509 *x)
{
    EVP_PKEY *k = X509_get0_pubkey(x);

    for (int i = 0; i < sk_X509_num(path); i++) {
        X509 *y = sk_X509_value(path, i);
        if (X509_cmp(x, y) == 0)
            return true;
        if (X509_NAME_cmp(X509_get_subject_name(x), X509_get_subject_name(y)) == 0 && k != NULL &&
            X509_get0_pubkey(y) != NULL && EVP_PKEY_eq(k, X509_get0_pubkey(y)) == 1)
            return true;
    }
    return false;
}

/* Whether x is valid at now (both bounds inclusive, RFC 5280 4.1.2.5). */
static bool
valid_at(X509 *x, int64_t now)
{
    time_t t = (time_t)now;

    return X509_cmp_time(X509_get0_notBefore(x), &t) <= 0 &&
           ASN1_TIME_cmp_time_t(X509_get0_notAfter(x), t) >= 0;
}

/* The sort rank of pool entry i as a candidate issuer: lower is tried first (RFC 4158 3.5). */
static int
rank_of(const struct walk *w, int i)
{
    if (i < w->ntrusted)
        return 0;
    return valid_at(sk_X509_value(w->pool, i), w->now) ? 1 : 2;
}

/* Whether x is a trusted certificate of the pool. */
static bool
is_trusted(const struct walk *w, X509 *x)
{
    for (int i = 0; i < w->ntrusted; i++) {
        if (X509_cmp(sk_X509_value(w->pool, i), x) == 0)
            return true;
    }
    return false;
}

/*
 * RFC 4158 3.5 also prunes branches that cannot end at a trust anchor.  Which
 * untrusted certificates can reach a trusted one through issuers matched by
 * name and key identifier alone (no signature): computed once, so that a peer
 * that sends certificates naming only each other (a mesh of its own CAs)
 * costs name comparisons, not signature checks.  false when memory runs out.
 */
static bool
reachability(struct walk *w, int max_len)
{
    int n = sk_X509_num(w->pool);
    int nu = n - w->ntrusted;
    bool *adj = NULL;
    bool changed = true;

    w->reach = calloc((size_t)n, sizeof(*w->reach));
    if (w->reach == NULL)
        return false;
    for (int i = 0; i < w->ntrusted; i++)
        w->reach[i] = true;
    if (nu == 0)
        return true;
    adj = calloc((size_t)nu * (size_t)n, sizeof(*adj));
    if (adj == NULL)
        return false;
    for (int u = 0; u < nu; u++) {
        X509 *x = sk_X509_value(w->pool, w->ntrusted + u);
        for (int j = 0; j < n; j++)
            adj[(size_t)u * (size_t)n + (size_t)j] =
                j != w->ntrusted + u && X509_check_issued(sk_X509_value(w->pool, j), x) ==
                                            X509_V_OK;
    }
    for (int round = 0; changed && round < max_len; round++) {
        changed = false;
        for (int u = 0; u < nu; u++) {
            if (w->reach[w->ntrusted + u])
                continue;
            for (int j = 0; j < n && !w->reach[w->ntrusted + u]; j++) {
                if (adj[(size_t)u * (size_t)n + (size_t)j] && w->reach[j]) {
                    w->reach[w->ntrusted + u] = true;
                    changed = true;
                }
            }
        }
    }
    free(adj);
    return true;
}

/*
 * Extend the path from its last certificate.  Returns 1 when the callback
 * stopped the search, 0 to go on, -1 on an error; a bound reached sets
 * stats->limited and returns 0 up to the top (no other path is started once
 * the path or signature budget is spent).
 */
static int
extend(struct walk *w)
{
    X509 *cur = sk_X509_value(w->path, sk_X509_num(w->path) - 1);
    X509 *cand[PATHBUILD_MAX_ISSUERS];
    int ncand = 0;
    int rc = 0;

    if (is_trusted(w, cur)) {
        /* A trusted certificate ends the path (X509_V_FLAG_PARTIAL_CHAIN). */
        if (w->stats->paths >= w->lim->max_paths) {
            w->stats->limited = true;
            return 0;
        }
        w->stats->paths++;
        return w->fn(w->arg, w->path);
    }
    if (sk_X509_num(w->path) >= w->lim->max_len) {
        w->stats->limited = true; /* a longer path would be refused as too deep anyway */
        return 0;
    }
    /* The candidates that may lead to an anchor, in rank order, at most max_issuers of them. */
    for (int r = 0; r <= 2; r++) {
        for (int i = 0; i < sk_X509_num(w->pool); i++) {
            X509 *x = sk_X509_value(w->pool, i);
            if (!w->reach[i] || rank_of(w, i) != r || X509_check_issued(x, cur) != X509_V_OK ||
                on_path(w->path, x))
                continue;
            if (ncand >= w->lim->max_issuers || ncand >= PATHBUILD_MAX_ISSUERS) {
                w->stats->limited = true;
                break;
            }
            cand[ncand++] = x;
        }
    }
    for (int i = 0; i < ncand && rc == 0; i++) {
        EVP_PKEY *k = X509_get0_pubkey(cand[i]);
        if (w->stats->paths >= w->lim->max_paths ||
            w->stats->sigchecks >= w->lim->max_sigchecks) {
            w->stats->limited = true;
            return 0;
        }
        w->stats->sigchecks++;
        if (k == NULL || X509_verify(cur, k) != 1)
            continue;
        if (!sk_X509_push(w->path, cand[i]))
            return -1;
        rc = extend(w);
        (void)sk_X509_pop(w->path);
    }
    return rc;
}

/* Walk the candidate paths of a leaf; see pathbuild.h. */
int
pathbuild_run(X509 *leaf, STACK_OF(X509) *trusted, STACK_OF(X509) *untrusted, int64_t now,
              const struct pathbuild_limits *lim, pathbuild_try_fn fn, void *arg,
              struct pathbuild_stats *stats)
{
    struct walk w = {NULL, 0, NULL, NULL, now, lim, fn, arg, stats};
    int rc = -1;

    stats->paths = 0;
    stats->sigchecks = 0;
    stats->limited = false;
    w.pool = sk_X509_new_null();
    w.path = sk_X509_new_null();
    if (w.pool == NULL || w.path == NULL || !sk_X509_push(w.path, leaf))
        goto out;
    for (int i = 0; trusted != NULL && i < sk_X509_num(trusted); i++) {
        X509 *x = sk_X509_value(trusted, i);
        if (!holds(w.pool, x) && !sk_X509_push(w.pool, x))
            goto out;
    }
    w.ntrusted = sk_X509_num(w.pool);
    for (int i = 0; untrusted != NULL && i < sk_X509_num(untrusted); i++) {
        X509 *x = sk_X509_value(untrusted, i);
        if (!holds(w.pool, x) && !sk_X509_push(w.pool, x))
            goto out;
    }
    if (!reachability(&w, lim->max_len))
        goto out;
    rc = extend(&w);
out:
    free(w.reach);
    sk_X509_free(w.pool); /* the certificates belong to the caller */
    sk_X509_free(w.path);
    return rc;
}
