/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pathbuild.h - the other certification paths of a leaf, depth first and
 * bounded (RFC 4158 path building), for verify.c to try when the path
 * OpenSSL built first fails.
 *
 * OpenSSL 3.0's X509_verify_cert picks one issuer per step (the first that
 * matches by name and key identifier, preferring a time-valid one) and never
 * goes back.  When several certificates could issue the same certificate
 * (cross-signed CAs, an expired intermediate and its renewal, CAs of one name
 * with different constraints), pathbuild_run() walks the candidate paths from
 * the leaf to a trusted certificate and hands each complete one to a
 * callback, which verifies it in full.  The walk is bounded in issuers per
 * certificate, length, complete paths and signature checks (and failed
 * ones), none of which depends on the clock: a peer that sends many
 * look-alike certificates or a cycle of cross-signatures gets a refusal, not
 * a long search, and a peer without a CA's signature pays for at most
 * PATHBUILD_MAX_BAD_SIGCHECKS checks with the trust store's keys.
 */
#ifndef DUET_LIB_PATHBUILD_H
#define DUET_LIB_PATHBUILD_H

#include <stdbool.h>
#include <stdint.h>

#include <openssl/x509.h>

#include "lib/err.h" /* MUST_CHECK */

/* Candidate issuers tried per certificate (after the cheap name/key-identifier match). */
#define PATHBUILD_MAX_ISSUERS 8
/* Complete paths handed to the callback, in one search. */
#define PATHBUILD_MAX_PATHS 32
/* Signatures checked while looking for issuers, in one search. */
#define PATHBUILD_MAX_SIGCHECKS 128
/* Of those, signatures that did not verify, in one search. */
#define PATHBUILD_MAX_BAD_SIGCHECKS 8

/* The bounds of one search; pathbuild_limits_default() fills the constants above. */
struct pathbuild_limits {
    int max_issuers;
    int max_len; /* certificates in a path, leaf and trust anchor included */
    int max_paths;
    int max_sigchecks;
    int max_badsigs; /* signature checks that failed */
};

/* What a search did. */
struct pathbuild_stats {
    int paths;     /* complete paths handed to the callback */
    int sigchecks; /* signatures checked */
    int badsigs;   /* of those, the ones that did not verify */
    bool limited;  /* a bound cut the search short: some path may not have been tried */
};

/*
 * Called with each complete path: the leaf first, a trusted certificate
 * last, each certificate's signature verified by the next one's key (the
 * stack and its certificates are borrowed for the call).  Returns 1 to stop
 * the search (the path is the one), 0 to go on, -1 to stop on an error.
 */
typedef int (*pathbuild_try_fn)(void *arg, STACK_OF(X509) *path);

/* The default bounds, for paths of at most max_depth certificates between leaf and anchor. */
void pathbuild_limits_default(struct pathbuild_limits *lim, int max_depth);

/*
 * Walk the paths from `leaf` to a certificate of `trusted`, issuers taken
 * from `trusted` and `untrusted` (both may be NULL; borrowed), depth first.
 * At each certificate the candidates are those X509_check_issued() accepts,
 * not already on the path (by certificate, or by subject and key: RFC 4158
 * 5.2 loop detection), tried trusted first, then valid at `now`, then in the
 * order given; of the first max_issuers of them, those that are anchored (a
 * chain of signatures runs from them to a trusted certificate, checked from
 * the trusted end: no key a trusted key has not vouched for ever checks a
 * signature) and whose key verifies the certificate's signature are
 * followed.  A search checks at most max_sigchecks signatures, at most
 * max_badsigs of which fail.  A path ends at the first trusted
 * certificate (every trusted certificate is an anchor, as with
 * X509_V_FLAG_PARTIAL_CHAIN).  Returns 1 when the callback stopped the
 * search, 0 when it ended (all paths tried or a bound reached: see
 * stats->limited), -1 when the callback failed or memory ran out.
 */
int pathbuild_run(X509 *leaf, STACK_OF(X509) *trusted, STACK_OF(X509) *untrusted, int64_t now,
                  const struct pathbuild_limits *lim, pathbuild_try_fn fn, void *arg,
                  struct pathbuild_stats *stats) MUST_CHECK;

#endif
