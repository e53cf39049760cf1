/* SPDX-License-Identifier: Apache-2.0 */
/*
 * doctor.h - checks of an mTLS set-up before it fails, without sockets:
 * a key against its certificate, the order and completeness of a chain,
 * a certificate's fitness for its role (EKU, key usage), validity and
 * expiry soon, CRLs present and fresh for each issuer that needs one, a
 * key file's mode and owner, and a trust bundle that holds public roots or
 * expired CAs.  `duet doctor` (src/cli/cmd_doctor.c) loads the files of a
 * proxy configuration or of its flags and calls these; each problem becomes
 * one finding with a stable code, a severity, the file and the place it
 * was named, one sentence and one fix (docs/cli/doctor.md lists them).
 */
#ifndef DUET_LIB_DOCTOR_H
#define DUET_LIB_DOCTOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "lib/err.h"

enum doctor_sev { DOCTOR_INFO = 0, DOCTOR_WARNING, DOCTOR_ERROR };

/* "info", "warning" or "error". */
const char *doctor_sev_name(enum doctor_sev s);

/*
 * Where a file was named: a flag ("--cert") or a YAML key
 * ("listeners[0].cert") with the configuration file and the key's line.
 * Strings are borrowed for the call; `config` NULL and `line` 0 for flags.
 */
struct doctor_src {
    const char *file;     /* the file concerned (may be NULL for a setting) */
    const char *key;      /* the flag or YAML key path */
    const char *config;   /* the YAML file, or NULL */
    size_t line;          /* the key's 1-based line in `config`, 0: none */
    const char *listener; /* the listener's name, or NULL */
};

/* One finding: what is wrong, where, and the fix; strings owned by the report. */
struct doctor_finding {
    enum doctor_sev sev;
    const char *code; /* stable, static: "key_mismatch", "cert_expired", ... */
    char *file, *key, *config, *listener;
    size_t line;
    char *problem; /* may quote names from certificates: escape it for its sink */
    char *fix;
};

/* The findings of one run, in the order they were found. */
struct doctor_report {
    struct doctor_finding *v;
    size_t n, cap;
    bool nomem; /* a finding was lost for want of memory */
};

/*
 * Add a finding: `code` must be a static string; `src` is copied; the
 * problem is formatted from fmt.  Out of memory sets r->nomem.
 */
void doctor_add(struct doctor_report *r, enum doctor_sev sev, const char *code,
                const struct doctor_src *src, const char *fix, const char *fmt, ...)
    PRINTF_LIKE(6, 7);
/* Free the findings; the report is empty and reusable afterwards. */
void doctor_report_clear(struct doctor_report *r);
/* How many findings of this severity. */
size_t doctor_count(const struct doctor_report *r, enum doctor_sev sev);
/* The first finding with this code, or NULL (for tests and callers that branch on one). */
const struct doctor_finding *doctor_find(const struct doctor_report *r, const char *code);

/* key_mismatch: `key` is not the private key of `leaf`. */
void doctor_check_pair(struct doctor_report *r, const struct doctor_src *src, X509 *leaf,
                       EVP_PKEY *key);

/*
 * chain_wrong_order, chain_incomplete, chain_unrelated, chain_bad_signature:
 * `chain` is the certificate file as it will be sent (leaf first); each
 * certificate followed by one with its issuer's name must verify with that
 * one's key.  `roots` (may be NULL) are the trusted certificates peers are
 * assumed to hold; only the self-issued ones count, since a peer that trusts
 * the root does not necessarily hold an intermediate.  A chain whose last
 * CA's issuer is simply not given is fine: peers hold their roots.  Without
 * `roots`, a leaf whose issuer is not sent is chain_issuer_unknown (a
 * warning): that issuer may be a root or a missing intermediate.
 */
void doctor_check_chain(struct doctor_report *r, const struct doctor_src *src,
                        STACK_OF(X509) * chain, STACK_OF(X509) * roots);

/* The purpose a certificate is used for. */
enum doctor_role { DOCTOR_ROLE_SERVER = 0, DOCTOR_ROLE_CLIENT };

/*
 * eku_no_server_auth, eku_no_client_auth, key_usage, cert_is_ca: whether
 * `leaf` fits `role` as TLS server or client (RFC 5280 4.2.1.12, 4.2.1.3).
 */
void doctor_check_role(struct doctor_report *r, const struct doctor_src *src, X509 *leaf,
                       enum doctor_role role);

/*
 * cert_expired, cert_not_yet_valid, cert_expiring: `cert` at `now`, expiring
 * meaning within `soon` seconds.  `is_ca` chooses the fix (renew a leaf,
 * re-issue a CA certificate).
 */
void doctor_check_validity(struct doctor_report *r, const struct doctor_src *src, X509 *cert,
                           bool is_ca, int64_t now, int64_t soon);

/*
 * crl_not_yet_valid: one CRL at `now` before its thisUpdate (an error: the
 * proxy refuses it).  crl_expired, crl_expiring: past its nextUpdate is an
 * error unless `expired_warns` (the proxy's crl_expired: warn), within
 * `soon` seconds of it a warning.  A CRL without nextUpdate is
 * crl_no_next_update.
 */
void doctor_check_crl_fresh(struct doctor_report *r, const struct doctor_src *src, X509_CRL *crl,
                            int64_t now, int64_t soon, bool expired_warns);

/*
 * crl_missing: whether `crls` hold a CRL issued by `issuer` (same name, and
 * signed by its key).  `sev` and `why` say how much it matters and why it is
 * needed ("with CRLs configured, every certificate below the anchor needs
 * one", "... names a CRL distribution point"); `fix` is the fix line.
 * Returns true when one is there.
 */
bool doctor_check_crl_for(struct doctor_report *r, const struct doctor_src *src, X509 *issuer,
                          STACK_OF(X509_CRL) * crls, enum doctor_sev sev, const char *why,
                          const char *fix);

/*
 * key_mode, key_owner: a private key file readable by group or others
 * (an error when `mode_refused`, as the proxy refuses it without
 * insecure_key_mode, else a warning), or owned by another user than `uid`.
 * key_unreadable when it cannot be stat'ed.  Returns false then.
 */
bool doctor_check_key_file(struct doctor_report *r, const struct doctor_src *src, uid_t uid,
                           bool mode_refused);

/*
 * dir_writable: a directory on the way to src->file (as written, then as
 * resolved) that group or others may write without the sticky bit, so that
 * they can swap the file: an error when others may, a warning when only the
 * group may.  `what` names the file in the sentence ("the private key").
 */
void doctor_check_dirs(struct doctor_report *r, const struct doctor_src *src, const char *what);

/*
 * trust_public_root, trust_extra_roots, trust_ca_expired, trust_not_ca: a
 * bundle of certificates trusted for peers.  `system` (may be NULL) is the
 * system's store of public roots (/etc/ssl/certs); a self-signed certificate
 * of the bundle found there is a public root, and so is a CA certificate that
 * is not self-issued but chains to one there (an intermediate of a public CA:
 * the proxy trusts partial chains).  More than one self-signed root
 * without any public one is information (a CA rotation looks so).
 */
void doctor_check_trust(struct doctor_report *r, const struct doctor_src *src,
                        STACK_OF(X509) * bundle, X509_STORE *system, int64_t now);

/* Whether `cert` names a CRL distribution point; the first URI into buf ("" if none). */
bool doctor_cdp_uri(X509 *cert, char *buf, size_t len);

#endif
