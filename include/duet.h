/* SPDX-License-Identifier: Apache-2.0 */
/*
 * duet.h - the public C API of libduet.
 *
 * libduet loads certificates and keys, turns a verified certificate into an
 * identity and verifies chains for mutual TLS.  It is shaped like OpenBSD's
 * libtls: opaque objects, secure defaults, the last error kept on the object
 * and readable as one sentence with duet_verifier_error() and as a stable
 * code with duet_verifier_error_code().  No OpenSSL type
 * appears here.  Every call returns 0 on success and -1 on failure, an object
 * or NULL, or a documented value.
 */
#ifndef DUET_H
#define DUET_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* What went wrong, kept on the object beside the message. */
enum duet_err_kind {
    DUET_ERR_NONE = 0,
    DUET_ERR_INVALID = 1, /* verification ran and the certificate is not valid */
    DUET_ERR_INPUT = 2,   /* a file or argument could not be read or parsed */
    DUET_ERR_NOMEM = 3,   /* out of memory */
    DUET_ERR_INTERNAL = 4 /* an unexpected library failure */
};

/* What a certificate is verified for (RFC 5280 4.2.1.12, RFC 5246/8446). */
enum duet_purpose {
    DUET_PURPOSE_ANY = 0,    /* no extended key usage required */
    DUET_PURPOSE_SERVER = 1, /* serverAuth: a TLS server */
    DUET_PURPOSE_CLIENT = 2  /* clientAuth: a TLS client */
};

/* Which certificates of a chain must be covered by a CRL when CRLs are given. */
enum duet_crl_scope {
    DUET_CRL_CHAIN = 0, /* the leaf and every intermediate (default) */
    DUET_CRL_LEAF = 1   /* the leaf only */
};

/* Subject alternative name types carried by an identity. */
enum duet_san_type {
    DUET_SAN_DNS = 1,
    DUET_SAN_IP = 2,
    DUET_SAN_URI = 3,
    DUET_SAN_EMAIL = 4
};

struct duet_identity;
struct duet_verifier;

/* The library version, e.g. "0.1.0". */
const char *duet_version(void);

/*
 * A verifier holds trust anchors, intermediates, CRLs and the parameters of a
 * verification.  Defaults: purpose any, no name, the current time, chains up
 * to 8 certificates below the trust anchor, CRLs checked for the whole chain
 * when any is given.
 */
struct duet_verifier *duet_verifier_new(void);
void duet_verifier_free(struct duet_verifier *v);

/* Add every certificate in a PEM, DER or PKCS#12 file as a trust anchor. */
int duet_verifier_add_trusted_file(struct duet_verifier *v, const char *path);
/* Add trust anchors from PEM or DER in memory. */
int duet_verifier_add_trusted_mem(struct duet_verifier *v, const uint8_t *data, size_t len);
/* Add certificates that may be used to build the chain but are not trusted. */
int duet_verifier_add_untrusted_file(struct duet_verifier *v, const char *path);
/* Add every CRL in a PEM or DER file. */
int duet_verifier_add_crl_file(struct duet_verifier *v, const char *path);
/*
 * Accept CRLs signed with DSA (a legacy algorithm, refused by default), and a
 * DSA key of 2048 bits or more for a CRL signer's own certificate.  Applies to
 * the CRLs added after it.
 */
void duet_verifier_insecure_crl_dsa(struct duet_verifier *v);
/* Password for PKCS#12 files, read from the first line of a file. */
int duet_verifier_set_password_file(struct duet_verifier *v, const char *path);
int duet_verifier_set_purpose(struct duet_verifier *v, enum duet_purpose purpose);
/* A DNS name (wildcards per RFC 6125 6.4.3) or an IPv4/IPv6 literal; NULL clears. */
int duet_verifier_set_name(struct duet_verifier *v, const char *name);
/* Verify at this time (seconds since the epoch) instead of now. */
int duet_verifier_set_time(struct duet_verifier *v, int64_t unix_time);
/* Maximum number of CA certificates between the leaf and the trust anchor. */
int duet_verifier_set_max_depth(struct duet_verifier *v, int depth);
int duet_verifier_set_crl_scope(struct duet_verifier *v, enum duet_crl_scope scope);

/*
 * Certificate policies (RFC 5280 6.1).  By default any policy is acceptable
 * (user-initial-policy-set = {anyPolicy}) and none is required; a chain whose
 * CAs require an explicit policy (policyConstraints) must then be valid for
 * at least one policy.
 */
enum duet_policy_flag {
    DUET_POLICY_REQUIRE_EXPLICIT = 0x1, /* initial-explicit-policy */
    DUET_POLICY_INHIBIT_MAPPING = 0x2,  /* initial-policy-mapping-inhibit */
    DUET_POLICY_INHIBIT_ANY = 0x4       /* initial-any-policy-inhibit */
};
/*
 * Add a policy OID in dotted decimal ("2.23.140.1.2.1"; "2.5.29.32.0" is
 * anyPolicy) to the acceptable set; NULL empties it, back to any policy.
 */
int duet_verifier_add_policy(struct duet_verifier *v, const char *oid);
/* DUET_POLICY_* bits, or 0 (the default) for none. */
int duet_verifier_set_policy_flags(struct duet_verifier *v, unsigned flags);

/*
 * Verify the first certificate in a file as the leaf; any further
 * certificates in the file are used as untrusted intermediates.  Returns 0
 * when valid and -1 otherwise; duet_verifier_error_kind() tells an invalid
 * certificate (DUET_ERR_INVALID) from unreadable input (DUET_ERR_INPUT).
 */
int duet_verifier_verify_file(struct duet_verifier *v, const char *leaf_path);
/* Same, for PEM or DER in memory. */
int duet_verifier_verify_mem(struct duet_verifier *v, const uint8_t *data, size_t len);

/* The identity of the leaf of the last successful verification; borrowed. */
const struct duet_identity *duet_verifier_identity(const struct duet_verifier *v);
/*
 * The valid policy set of the last successful verification (RFC 5280 6.1.6):
 * the acceptable policies the chain is valid for, in the trust anchor's
 * policy domain, as dotted OIDs ("2.5.29.32.0" when valid for any policy).
 * Zero policies when a certificate names none and none was required.
 * Strings are borrowed until the next verification.
 */
size_t duet_verifier_policy_count(const struct duet_verifier *v);
/* The i-th policy of that set; NULL when i is out of range. */
const char *duet_verifier_policy(const struct duet_verifier *v, size_t i);
/* The last error as one sentence, or NULL when there is none. */
const char *duet_verifier_error(const struct duet_verifier *v);
enum duet_err_kind duet_verifier_error_kind(const struct duet_verifier *v);
/*
 * Why the last verification refused the certificate, for programs: a stable
 * snake_case name ("expired", "unknown_ca", "revoked", "name", "purpose",
 * "crl_stale", ...: the list is in docs/libduet.md), borrowed and never
 * reworded.  NULL when the last error is not DUET_ERR_INVALID, or none.
 */
const char *duet_verifier_error_code(const struct duet_verifier *v);

/*
 * Identity of a verified certificate.  Strings are borrowed and valid as long
 * as the identity.  The canonical name is the URI SAN if there is exactly one,
 * else the first DNS SAN, else the subject CN, else the subject.
 */
const char *duet_identity_name(const struct duet_identity *id);
const char *duet_identity_subject(const struct duet_identity *id);   /* RFC 4514 */
const char *duet_identity_issuer(const struct duet_identity *id);    /* RFC 4514 */
const char *duet_identity_serial(const struct duet_identity *id);    /* hex, colons */
const char *duet_identity_fingerprint(const struct duet_identity *id); /* SHA-256 of DER */
int64_t duet_identity_not_before(const struct duet_identity *id);
int64_t duet_identity_not_after(const struct duet_identity *id);
size_t duet_identity_san_count(const struct duet_identity *id);
/* The i-th SAN's value, its type in *type; NULL when i is out of range. */
const char *duet_identity_san(const struct duet_identity *id, size_t i, enum duet_san_type *type);

#ifdef __cplusplus
}
#endif
#endif /* DUET_H */
