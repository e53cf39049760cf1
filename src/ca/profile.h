/* SPDX-License-Identifier: Apache-2.0 */
/*
 * profile.h - ca.yaml: the CA's configuration and its issuance profiles.
 *
 * A profile decides everything that goes into a certificate besides the
 * subject's names and key: extended and plain key usage, default and maximum
 * TTL, which SAN types are allowed and which patterns each must match, the
 * SPIFFE rule (exactly one URI SAN), and the CRL and OCSP URLs to embed.
 * The requester (or its CSR) only proposes names; the profile checks them.
 */
#ifndef DUET_CA_PROFILE_H
#define DUET_CA_PROFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/x509v3.h>

#include "lib/err.h"

#define PROFILE_EKU_SERVER 0x1u
#define PROFILE_EKU_CLIENT 0x2u

/* api_ttl when ca.yaml gives none: short-lived certificates for hosts that renew themselves. */
#define PROFILE_API_TTL ((int64_t)24 * 3600)
/* The longest renew_grace: a grace is for machines off a short while, not a second lifetime. */
#define PROFILE_MAX_RENEW_GRACE ((int64_t)30 * 24 * 3600)

#define PROFILE_SAN_DNS 0x1u
#define PROFILE_SAN_IP 0x2u
#define PROFILE_SAN_URI 0x4u
#define PROFILE_SAN_EMAIL 0x8u

/* Where team_from_owner puts the owner's team (team.h). */
#define PROFILE_TEAM_OU 0x1u     /* an organizationalUnitName of the subject */
#define PROFILE_TEAM_SPIFFE 0x2u /* the first segment of the SPIFFE ID's path */

struct strlist {
    char **v;
    size_t n;
};

struct ca_profile {
    char *name;
    unsigned eku;          /* PROFILE_EKU_* */
    int64_t default_ttl;   /* seconds */
    int64_t max_ttl;
    /*
     * Validity of what `duet ca serve` issues (enrollment and renewal):
     * ca.yaml's api_ttl (at most max_ttl), else PROFILE_API_TTL or default_ttl
     * when that is shorter.
     */
    int64_t api_ttl;
    /*
     * How long after its notAfter a certificate of this profile may still
     * renew over the API (a machine that was off); 0: not at all (the
     * default).  At most PROFILE_MAX_RENEW_GRACE.
     */
    int64_t renew_grace;
    unsigned san_types;    /* PROFILE_SAN_* allowed */
    bool require_san;      /* at least one SAN */
    bool spiffe;           /* exactly one URI SAN, spiffe://<trust domain>/... */
    bool wildcard;         /* DNS names may start with "*." (off unless ca.yaml says so) */
    unsigned team;         /* team_from_owner: PROFILE_TEAM_*; 0: the owner is inventory only */
    struct strlist dns;    /* glob patterns a DNS SAN must match; empty: any */
    struct strlist uri;    /* glob patterns a URI SAN must match; empty: any */
    struct strlist email;  /* glob patterns an email SAN must match; empty: any */
    struct strlist crl_urls;
    struct strlist ocsp_urls;
};

struct ca_config {
    char *path;           /* of ca.yaml, for messages */
    char *name;           /* organisation */
    char *trust_domain;   /* SPIFFE trust domain */
    char *key_type;       /* for new leaf keys by default */
    bool offline_root;
    char *store;          /* store: NULL or "sqlite": inventory.db; else a PostgreSQL URL */
    char *key_uri;        /* key_uri: the issuing key in a PKCS#11 token (RFC 7512), or NULL */
    char *ocsp_key_uri;   /* ocsp_key_uri: the OCSP signer's key in a token, or NULL (a file) */
    char *root_key_uri;   /* root_key_uri: the root key in a token, or NULL (root.key) */
    struct ca_profile *profiles;
    size_t nprofiles;
};

/*
 * Parse ca.yaml.  Keys are checked through a table; an unknown key, a wrong
 * type or a bad value is reported as "ca.yaml:LINE:COL: profiles.client.max_ttl:
 * ...; expected ...".
 */
int ca_config_load(const char *path, struct ca_config *out, struct duet_err *err) MUST_CHECK;
void ca_config_clear(struct ca_config *c);
const struct ca_profile *ca_config_profile(const struct ca_config *c, const char *name);

/* One requested SAN, parsed from "dns:H", "ip:A", "uri:U" or "email:E". */
struct profile_san {
    unsigned type;  /* PROFILE_SAN_* */
    char *value;    /* normalised: DNS lower case, IP in canonical text */
};

/*
 * Parse "type:value" (type case-insensitive) as given to --san.  The value is
 * checked strictly for its type: DNS names are LDH labels with an optional
 * leading "*." (whether a wildcard may be issued is the profile's decision),
 * IP addresses go through inet_pton (v4 or v6), URIs hold RFC 3986 characters
 * only and start with a scheme, email addresses are local@domain in visible
 * ASCII.  Control characters, spaces and bytes outside ASCII are refused
 * everywhere; the message names the SAN (escaped) and what was expected.
 */
int profile_san_parse(const char *text, struct profile_san *out, struct duet_err *err) MUST_CHECK;
void profile_san_clear(struct profile_san *s);

/*
 * The same checks on a GENERAL_NAME taken from a CSR or a certificate (`what`
 * names it in messages, e.g. "the CSR"): the exact bytes of the name are
 * checked, so an embedded NUL, CR or LF is refused, never truncated.  Types
 * other than DNS, IP, URI and email are refused.
 */
int profile_san_from_name(const GENERAL_NAME *g, const char *what, struct profile_san *out,
                          struct duet_err *err) MUST_CHECK;

/* A new GENERAL_NAME holding a checked SAN, built as a structure; NULL when out of memory. */
GENERAL_NAME *profile_san_to_name(const struct profile_san *s);

/*
 * Check names and TTL against a profile: every SAN type allowed, every value
 * matching the profile's patterns, the SPIFFE rule, a SAN present when
 * required, ttl <= max_ttl.  Messages name the offending name and the rule.
 */
int profile_check(const struct ca_config *cfg, const struct ca_profile *p,
                  const struct profile_san *sans, size_t nsans, int64_t ttl,
                  struct duet_err *err) MUST_CHECK;

/*
 * profile_check on the subjectAltName structure that will be signed: each
 * GENERAL_NAME is read back from its bytes (profile_san_from_name) and the
 * whole list checked, so what is checked is exactly what is issued.
 */
int profile_check_names(const struct ca_config *cfg, const struct ca_profile *p,
                        const GENERAL_NAMES *names, int64_t ttl, struct duet_err *err) MUST_CHECK;

/* Whether text is a URI of RFC 3986 characters that starts with a scheme (section 3.1). */
bool profile_uri_ok(const char *text, size_t len);

/* Glob match with '*' (any run, including dots) and '?', case-sensitive. */
bool profile_glob(const char *pattern, const char *text);

/* The ca.yaml text ca_init writes for a new CA. */
char *profile_default_yaml(const char *name, const char *trust_domain, const char *key_type,
                           bool offline_root);

#endif
