/* SPDX-License-Identifier: Apache-2.0 */
/*
 * certfactory.h - keys, certificates and CRLs made to order for the unit
 * tests, with the OpenSSL 3 API only (the build defines OPENSSL_NO_DEPRECATED).
 *
 * A certificate is described by a struct cf_cert_spec whose zero value is a
 * sensible leaf: self-signed, valid from an hour ago for a year, no
 * basicConstraints, keyUsage digitalSignature, SHA-256.  Every certificate
 * carries subjectKeyIdentifier and authorityKeyIdentifier, because duet
 * verifies in OpenSSL's strict mode, which requires them; CA certificates get
 * a critical basicConstraints and keyUsage keyCertSign,cRLSign unless the spec
 * says otherwise.  Times are offsets in seconds from the moment of creation.
 *
 * The helpers are for tests: on any failure they print what failed and
 * abort(), which cmocka reports as a failed test.  Functions returning
 * objects or buffers hand ownership to the caller.
 */
#ifndef DUET_TESTLIB_CERTFACTORY_H
#define DUET_TESTLIB_CERTFACTORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h> /* CRL_REASON_* */

#include "lib/compat.h" /* OSSL_STACK_OF_X509_free on OpenSSL 3.0 */

#define CF_DAY ((int64_t)86400)
#define CF_YEAR (365 * CF_DAY)

enum cf_key_type {
    CF_KEY_EC_P256 = 0,
    CF_KEY_EC_P384,
    CF_KEY_RSA_1024,
    CF_KEY_RSA_2048,
    CF_KEY_ED25519,
    CF_KEY_DSA_1024, /* legacy: for the DSA-signed CRL cases */
    CF_KEY_DSA_2048
};

/* basicConstraints: absent, CA:FALSE, or CA:TRUE. */
enum cf_bc { CF_BC_NONE = 0, CF_BC_LEAF, CF_BC_CA };

/* Extended key usages, as bits. */
#define CF_EKU_SERVER 0x1u
#define CF_EKU_CLIENT 0x2u

enum cf_digest { CF_SHA256 = 0, CF_SHA1 };

/* keyUsage value meaning "no keyUsage extension at all". */
#define CF_KU_NONE ""

/*
 * What a certificate looks like.  Strings and objects are borrowed for the
 * call.  `sans` and `name_constraints` are NULL-terminated arrays of OpenSSL
 * configuration values: {"DNS:a.example", "IP:10.0.0.1", NULL} and
 * {"permitted;DNS:.corp", "excluded;IP:10.0.0.0/255.0.0.0", NULL}.
 */
/* An extension given as its DER value, for what the configuration syntax cannot write. */
struct cf_raw_ext {
    const char *oid; /* dotted or short name; NULL ends a list */
    bool critical;
    const uint8_t *der;
    size_t len;
};

struct cf_cert_spec {
    const char *cn; /* subject commonName; NULL: none */
    const char *o;  /* subject organizationName; NULL: none */
    const char *ou; /* subject organizationalUnitName; NULL: none */
    EVP_PKEY *key;  /* the subject's key; required */
    X509 *issuer;   /* NULL: self-signed with `key` */
    EVP_PKEY *issuer_key;
    uint64_t serial;    /* 0: the next of a process-wide counter */
    int64_t not_before; /* both 0: -1 hour and +1 year */
    int64_t not_after;
    enum cf_bc bc;
    bool has_pathlen; /* with CF_BC_CA: pathLenConstraint = pathlen */
    int pathlen;
    bool bc_noncritical;   /* basicConstraints is critical unless this is set */
    const char *key_usage; /* NULL: default for bc; CF_KU_NONE: none; else a config value */
    unsigned eku;          /* CF_EKU_* bits; 0: no extendedKeyUsage */
    const char *const *sans;
    const char *const *name_constraints;
    enum cf_digest digest;
    /*
     * Further extensions, NULL-terminated, each "shortName=config value" as
     * X509V3_EXT_conf_nid() reads it: "certificatePolicies=1.2.3,1.2.4",
     * "policyConstraints=critical,requireExplicitPolicy:0",
     * "policyMappings=1.2.3:1.2.4", "inhibitAnyPolicy=critical,0".
     */
    const char *const *extensions;
    /* crlDistributionPoints as a configuration value ("URI:http://x/a.crl"); NULL: none */
    const char *crl_dp;
    /*
     * A CRL distribution point whose cRLIssuer is this directoryName (RFC 5280
     * 4.2.1.13, for an indirect CRL), with crl_issuer_dp_uri as its fullName
     * or no distributionPoint when that is NULL; replaces crl_dp.  NULL: none.
     */
    const X509_NAME *crl_issuer_dp;
    const char *crl_issuer_dp_uri;
    /* RFC 5280 profile cases: */
    const char *serial_hex;            /* hex, '-' first for negative; overrides serial */
    bool san_critical;                 /* subjectAltName marked critical */
    bool nc_noncritical;               /* nameConstraints not marked critical */
    bool no_aki;                       /* no authorityKeyIdentifier */
    const struct cf_raw_ext *raw_exts; /* added after the others, up to oid == NULL */
};

/* One revoked certificate in a CRL. */
#define CF_NO_REASON (-1)
struct cf_revoked {
    uint64_t serial;
    int reason;   /* CRL_REASON_* (0 is unspecified) or CF_NO_REASON */
    int64_t when; /* revocation date, offset from now; 0: one hour ago */
    /*
     * certificateIssuer entry extension (RFC 5280 5.3.3) naming this DN;
     * NULL: none.  A CRL with such entries keeps its entries in the order given.
     */
    const X509_NAME *cert_issuer;
    bool ci_noncritical; /* certificateIssuer not marked critical */
};

/* What a CRL looks like; issuer, issuer_key required. */
struct cf_crl_spec {
    X509 *issuer;
    EVP_PKEY *issuer_key;
    const struct cf_revoked *revoked;
    size_t nrevoked;
    int64_t last_update; /* both 0: -1 hour and +7 days */
    int64_t next_update;
    bool no_next_update; /* omit nextUpdate (RFC 5280 requires it) */
    uint64_t number;     /* cRLNumber; 0: 1 */
    enum cf_digest digest;
    bool number_critical; /* mark cRLNumber critical (RFC 5280 5.2.3 forbids it) */
    /*
     * issuingDistributionPoint as a configuration value, e.g.
     * "critical,fullname:URI:http://x/a.crl,onlyuser:TRUE"; NULL: none.
     */
    const char *idp;
    uint64_t delta_base; /* nonzero: a delta CRL (critical deltaCRLIndicator) on this base */
};

/* A new key of the given type. */
EVP_PKEY *cf_key_new(enum cf_key_type type);
/* A new certificate made from spec. */
X509 *cf_cert_new(const struct cf_cert_spec *spec);
/* A new CRL made from spec. */
X509_CRL *cf_crl_new(const struct cf_crl_spec *spec);

/* A stack of up-referenced certificates from a NULL-terminated list. */
STACK_OF(X509) * cf_certs(X509 *first, ...);
/* A stack of up-referenced CRLs from a NULL-terminated list. */
STACK_OF(X509_CRL) * cf_crls(X509_CRL *first, ...);
/* Free a CRL stack and its CRLs; NULL is fine. */
void cf_crls_free(STACK_OF(X509_CRL) * crls);
/* The CRLs of a stack (NULL: none) as duet holds them: encoded, then read into a revset. */
struct revset *cf_revset(STACK_OF(X509_CRL) * crls);
/* An X509_STORE holding the certificates of a NULL-terminated list. */
X509_STORE *cf_store(X509 *first, ...);

/* PEM or DER encodings in memory (malloc'd, *len set; PEM is also NUL-terminated). */
uint8_t *cf_cert_pem(X509 *cert, size_t *len);
uint8_t *cf_cert_der(X509 *cert, size_t *len);
uint8_t *cf_crl_pem(X509_CRL *crl, size_t *len);
uint8_t *cf_crl_der(X509_CRL *crl, size_t *len);
/* Unencrypted PKCS#8 PEM, or DER in the key type's traditional form. */
uint8_t *cf_key_pem(EVP_PKEY *key, size_t *len);
uint8_t *cf_key_der(EVP_PKEY *key, size_t *len);

/* A new directory under $TMPDIR (or /tmp); the path is malloc'd. */
char *cf_tmpdir(void);
/* Remove a directory and everything below it, then free the path; NULL is fine. */
void cf_tmpdir_remove(char *dir);
/* dir + "/" + name, malloc'd. */
char *cf_path(const char *dir, const char *name);
/* Write bytes to path (mode 0644), replacing it. */
void cf_write_file(const char *path, const void *data, size_t len);
/* Write the certificates of a NULL-terminated list as PEM, in order. */
void cf_write_certs(const char *path, X509 *first, ...);
/* Write the CRLs of a NULL-terminated list as PEM, in order. */
void cf_write_crls(const char *path, X509_CRL *first, ...);
/* Write a private key as unencrypted PKCS#8 PEM. */
void cf_write_key(const char *path, EVP_PKEY *key);
/* Read a whole file (malloc'd, NUL-terminated); NULL when it cannot be read. */
uint8_t *cf_read_file(const char *path, size_t *len);

/*
 * Assert that `hay` contains `needle`, printing both on failure.  Use after
 * including <cmocka.h>.
 */
#define assert_contains(hay, needle)                                                               \
    do {                                                                                           \
        const char *cf_h_ = (hay);                                                                 \
        const char *cf_n_ = (needle);                                                              \
        if (cf_h_ == NULL || strstr(cf_h_, cf_n_) == NULL)                                         \
            fail_msg("expected \"%s\" in \"%s\"", cf_n_, cf_h_ != NULL ? cf_h_ : "(null)");        \
    } while (0)

#endif
