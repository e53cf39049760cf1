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
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/x509v3.h>

/* Certificates pushed on the path, per signature check allowed. */
#define PATHBUILD_STEPS_PER_SIGCHECK 8

/* The state of one search. */
struct walk {
    STACK_OF(X509) *pool; /* trusted then untrusted, without duplicates; borrowed certs */
    int n;                /* certificates in the pool */
    int ntrusted;         /* pool[0 .. ntrusted - 1] are the trusted ones */
    unsigned long *subj;  /* per pool entry: hash of the subject name */
    unsigned long *iss;   /* ... and of the issuer name */
    signed char *rank;    /* per pool entry: sort rank as a candidate issuer (rank_of()) */
    bool *reach;          /* per pool entry: some chain of issuer names leads to a trusted one */
    int k;                /* candidate issuers kept per certificate (rows) */
    int *rows;            /* per pool entry, k slots: its candidate issuers, in rank order */
    int *rowlen;          /* per pool entry: -1 until its row is made */
    signed char *sig;     /* [i * n + j]: 0 unknown, 1 pool[j]'s key verifies pool[i], -1 not */
    signed char *anch;    /* per pool entry: 0 unknown, 1 anchored, -1 not (anchored()) */
    int steps;            /* certificates pushed on the path */
    int *list;            /* anchored()'s work list */
    bool *mark;           /* ... and its membership */
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
    lim->max_badsigs = PATHBUILD_MAX_BAD_SIGCHECKS;
}

/*
 * Whether sk holds x (the same encoding).  The signature values are compared
 * first: two certificates with one signature value are one certificate, so a
 * pool of hundreds costs memcmp()s, not X509_cmp()s.
 */
static bool
holds(STACK_OF(X509) *sk, X509 *x)
{
    const ASN1_BIT_STRING *sx;
    const ASN1_BIT_STRING *sy;

    X509_get0_signature(&sx, NULL, x);
    for (int i = 0; sk != NULL && i < sk_X509_num(sk); i++) {
        X509 *y = sk_X509_value(sk, i);
        X509_get0_signature(&sy, NULL, y);
        if (sx != NULL && sy != NULL && ASN1_STRING_cmp(sx, sy) != 0)
            continue;
        if (X509_cmp(y, x) == 0)
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
 * untrusted certificates can reach a trusted one through issuer names alone
 * (hashes compared, no signature and no extension parsed): a peer's
 * certificates that name only each other are never candidates.  Computed
 * once, in at most max_len rounds.
 */
static void
reachability(struct walk *w, int max_len)
{
    bool changed = true;

    for (int i = 0; i < w->ntrusted; i++)
        w->reach[i] = true;
    for (int round = 0; changed && round < max_len; round++) {
        changed = false;
        for (int u = w->ntrusted; u < w->n; u++) {
            for (int j = 0; j < w->n && !w->reach[u]; j++) {
                if (j != u && w->reach[j] && w->subj[j] == w->iss[u]) {
                    w->reach[u] = true;
                    changed = true;
                }
            }
        }
    }
}

/*
 * The candidate issuers of x (pool entry `self`, or -1 for the leaf): the
 * reachable pool entries X509_check_issued() accepts, in rank order, at most
 * `max` of them.  Subject hashes are compared first, so a pool of unrelated
 * names costs integer comparisons.
 */
static int
candidates(const struct walk *w, X509 *x, int self, int *out, int max)
{
    unsigned long iss = self >= 0 ? w->iss[self] : X509_issuer_name_hash(x);
    int len = 0;

    for (int r = 0; r <= 2 && len < max; r++) {
        for (int j = 0; j < w->n && len < max; j++) {
            if (j == self || w->rank[j] != r || !w->reach[j] || w->subj[j] != iss ||
                X509_check_issued(sk_X509_value(w->pool, j), x) != X509_V_OK)
                continue;
            out[len++] = j;
        }
    }
    return len;
}

/*
 * The candidate issuers of pool entry i, made once: the first k of them,
 * enough for every walk (max_issuers beyond the at most max_len that a path
 * can hold, and one more to tell that there are more than max_issuers).
 */
static const int *
row(struct walk *w, int i, int *len)
{
    if (w->rowlen[i] < 0)
        w->rowlen[i] = candidates(w, sk_X509_value(w->pool, i), i,
                                  w->rows + (size_t)i * (size_t)w->k, w->k);
    *len = w->rowlen[i];
    return w->rows + (size_t)i * (size_t)w->k;
}

/*
 * Whether the key of pool entry j verifies the signature on x (pool entry i,
 * or -1 for the leaf), each pair checked once.  Returns 1 or 0, or -1 when
 * the signature budget (max_sigchecks checks, max_badsigs of them failed)
 * is spent.
 */
static int
sig_ok(struct walk *w, int i, X509 *x, int j)
{
    signed char *memo = i >= 0 ? &w->sig[(size_t)i * (size_t)w->n + (size_t)j] : NULL;
    EVP_PKEY *k;
    bool ok;

    if (memo != NULL && *memo != 0)
        return *memo > 0;
    if (w->stats->sigchecks >= w->lim->max_sigchecks ||
        w->stats->badsigs >= w->lim->max_badsigs) {
        w->stats->limited = true;
        return -1;
    }
    w->stats->sigchecks++;
    k = X509_get0_pubkey(sk_X509_value(w->pool, j));
    ok = k != NULL && X509_verify(x, k) == 1;
    if (!ok)
        w->stats->badsigs++;
    if (memo != NULL)
        *memo = ok ? 1 : -1;
    return ok ? 1 : 0;
}

/* Whether pool entry i is known to be anchored: trusted, or signed by an anchored key. */
static bool
is_anchored(const struct walk *w, int i)
{
    return i < w->ntrusted || w->anch[i] > 0;
}

/*
 * Whether pool entry c is anchored: a chain of at most max_len certificates,
 * each signed by the key of the next, runs from it to a trusted certificate
 * (RFC 4158 3.5 pruning, with signatures).  The keys that check a signature
 * here are only those of anchored certificates, found from the trusted end
 * down (a trusted key, or one a trusted key certified, and so on): a key of
 * the peer's own choosing never verifies anything, so a peer without a CA's
 * signature cannot make the search spend more than failed checks with the
 * trust store's keys.  Every path the walk can complete passes only through
 * anchored certificates (each is signed by the next), so nothing valid is
 * pruned.  Returns 1 or 0, or -1 when the signature budget is spent.
 */
static int
anchored(struct walk *w, int c)
{
    int nlist = 0;
    int rc = 0;

    if (is_anchored(w, c))
        return 1;
    if (w->anch[c] < 0)
        return 0;
    /* The certificates above c by candidate issuer, not known either way. */
    w->list[nlist++] = c;
    w->mark[c] = true;
    for (int l = 0; l < nlist; l++) {
        int u = w->list[l];
        int len;
        const int *r;
        if (is_anchored(w, u))
            continue;
        r = row(w, u, &len);
        for (int m = 0; m < len; m++) {
            if (!w->mark[r[m]] && w->anch[r[m]] >= 0) {
                w->mark[r[m]] = true;
                w->list[nlist++] = r[m];
            }
        }
    }
    /* From the trusted end down: round d finds those d signatures away. */
    for (int round = 0; round < w->lim->max_len && rc == 0; round++) {
        bool changed = false;
        for (int l = 0; l < nlist && rc == 0; l++) {
            int u = w->list[l];
            int len;
            const int *r;
            if (is_anchored(w, u))
                continue;
            r = row(w, u, &len);
            for (int m = 0; m < len; m++) {
                int ok;
                if (!is_anchored(w, r[m]))
                    continue;
                ok = sig_ok(w, u, sk_X509_value(w->pool, u), r[m]);
                if (ok < 0) {
                    rc = -1;
                    break;
                }
                if (ok > 0) {
                    w->anch[u] = 1;
                    changed = true;
                    break;
                }
            }
            if (w->anch[c] > 0)
                rc = 1;
        }
        if (!changed)
            break;
    }
    for (int l = 0; l < nlist; l++) {
        int u = w->list[l];
        w->mark[u] = false;
        /* The rounds ended without a budget cut: the others are known not anchored. */
        if (rc == 0 && !is_anchored(w, u))
            w->anch[u] = -1;
    }
    return rc;
}

/*
 * Extend the path from its last certificate (pool entry `cur`, or -1 for the
 * leaf).  Returns 1 when the callback stopped the search, 0 to go on, -1 on
 * an error; a bound reached sets stats->limited and returns 0 up to the top
 * (no other path is started once the path or signature budget is spent).
 */
static int
extend(struct walk *w, int cur)
{
    X509 *x = sk_X509_value(w->path, sk_X509_num(w->path) - 1);
    int leafrow[PATHBUILD_MAX_ISSUERS + 2];
    int cand[PATHBUILD_MAX_ISSUERS];
    const int *r;
    int len;
    int ncand = 0;
    int rc = 0;

    if (cur >= 0 ? cur < w->ntrusted : is_trusted(w, x)) {
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
    if (cur >= 0) {
        r = row(w, cur, &len);
    } else {
        len = candidates(w, x, -1, leafrow, PATHBUILD_MAX_ISSUERS + 2);
        r = leafrow;
    }
    /* The candidates not on the path yet, in rank order, at most max_issuers of them. */
    for (int m = 0; m < len; m++) {
        if (on_path(w->path, sk_X509_value(w->pool, r[m])))
            continue;
        if (ncand >= w->lim->max_issuers || ncand >= PATHBUILD_MAX_ISSUERS) {
            w->stats->limited = true;
            break;
        }
        cand[ncand++] = r[m];
    }
    for (int i = 0; i < ncand && rc == 0; i++) {
        int ok;
        if (w->stats->paths >= w->lim->max_paths) {
            w->stats->limited = true;
            return 0;
        }
        ok = anchored(w, cand[i]);
        if (ok > 0)
            ok = sig_ok(w, cur, x, cand[i]);
        if (ok < 0)
            return 0; /* the signature budget is spent: stats->limited says so */
        if (ok == 0)
            continue;
        /* Signatures already checked are free: the edges followed have a bound of their own. */
        if (++w->steps > PATHBUILD_STEPS_PER_SIGCHECK * w->lim->max_sigchecks) {
            w->stats->limited = true;
            return 0;
        }
        if (!sk_X509_push(w->path, sk_X509_value(w->pool, cand[i])))
            return -1;
        rc = extend(w, cand[i]);
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
    struct walk w;
    size_t n;
    int rc = -1;

    memset(&w, 0, sizeof(w));
    w.now = now;
    w.lim = lim;
    w.fn = fn;
    w.arg = arg;
    w.stats = stats;
    stats->paths = 0;
    stats->sigchecks = 0;
    stats->badsigs = 0;
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
    w.n = sk_X509_num(w.pool);
    n = (size_t)w.n + 1; /* never a zero-size allocation */
    w.k = PATHBUILD_MAX_ISSUERS + (lim->max_len > 0 ? lim->max_len : 0) + 1;
    w.subj = calloc(n, sizeof(*w.subj));
    w.iss = calloc(n, sizeof(*w.iss));
    w.rank = calloc(n, sizeof(*w.rank));
    w.reach = calloc(n, sizeof(*w.reach));
    w.rows = calloc(n * (size_t)w.k, sizeof(*w.rows));
    w.rowlen = calloc(n, sizeof(*w.rowlen));
    w.sig = calloc(n * n, sizeof(*w.sig));
    w.anch = calloc(n, sizeof(*w.anch));
    w.list = calloc(n, sizeof(*w.list));
    w.mark = calloc(n, sizeof(*w.mark));
    if (w.subj == NULL || w.iss == NULL || w.rank == NULL || w.reach == NULL || w.rows == NULL ||
        w.rowlen == NULL || w.sig == NULL || w.anch == NULL || w.list == NULL || w.mark == NULL)
        goto out;
    for (int i = 0; i < w.n; i++) {
        w.subj[i] = X509_subject_name_hash(sk_X509_value(w.pool, i));
        w.iss[i] = X509_issuer_name_hash(sk_X509_value(w.pool, i));
        w.rank[i] = (signed char)rank_of(&w, i);
        w.rowlen[i] = -1;
    }
    reachability(&w, lim->max_len);
    rc = extend(&w, -1);
out:
    free(w.subj);
    free(w.iss);
    free(w.rank);
    free(w.reach);
    free(w.rows);
    free(w.rowlen);
    free(w.sig);
    free(w.anch);
    free(w.list);
    free(w.mark);
    sk_X509_free(w.pool); /* the certificates belong to the caller */
    sk_X509_free(w.path);
    return rc;
}
