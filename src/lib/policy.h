/* SPDX-License-Identifier: Apache-2.0 */
/*
 * policy.h - authorization by verified identity, default deny (DESIGN.md
 * "Authorization").
 *
 * A policy is an ordered list of rules.  A rule matches on the identity (any
 * of its patterns) and, in HTTP mode, on method, host and path: an exact
 * path, or a path prefix matched segment by segment (see policy_path_match).  The
 * first matching rule decides allow or deny; no match denies, and the decision
 * names the rule that made it.  Patterns:
 *   uri:GLOB    a URI SAN (for spiffe:// patterns the identity must carry
 *               exactly one URI SAN: the SPIFFE rule)
 *   dns:GLOB    a DNS SAN          ip:ADDR       an IP SAN
 *   email:GLOB  an email SAN       cn:GLOB       the subject commonName
 *   ou:GLOB     an organizationalUnit of the subject
 *   o:GLOB      an organization of the subject
 *   issuer:GLOB the issuer DN (RFC 4514)
 *   any         any verified certificate
 *   anonymous   no certificate at all (a listener with verify: optional); the
 *               only pattern a client without a certificate can match
 * GLOB uses '*' for any run of characters and '?' for one.
 */
#ifndef DUET_LIB_POLICY_H
#define DUET_LIB_POLICY_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/err.h"
#include "lib/identity.h"

enum policy_field {
    PF_ANY = 0, PF_URI, PF_DNS, PF_IP, PF_EMAIL, PF_CN, PF_OU, PF_O, PF_ISSUER, PF_ANONYMOUS
};

struct policy_pattern {
    enum policy_field field;
    char *glob; /* NULL for PF_ANY and PF_ANONYMOUS */
};

struct policy_rule {
    char *name;
    bool allow;
    struct policy_pattern *ids; /* any one matching is enough */
    size_t nids;
    char **methods;             /* NULL: any method */
    size_t nmethods;
    char *host;                 /* glob, lower-cased; matched without the port; NULL: any */
    char *path;                 /* exact path (query aside); NULL: see path_prefix */
    char *path_prefix;          /* per-segment prefix; NULL with path NULL: any path */
};

struct policy {
    struct policy_rule *rules;
    size_t nrules;
};

/* What is being decided. */
struct policy_request {
    const struct duet_identity *id; /* verified identity, or NULL when none was presented */
    const char *method;             /* NULL in TCP mode */
    const char *host;
    const char *path;
};

struct policy_decision {
    bool allow;
    const char *rule; /* the deciding rule's name, or "default-deny" */
    int index;        /* the deciding rule's position, or -1 for the default */
};

/* Parse one identity pattern such as "uri:spiffe://corp/hr/..."; errors list the types. */
int policy_pattern_parse(const char *text, struct policy_pattern *out,
                         struct duet_err *err) MUST_CHECK;
void policy_pattern_clear(struct policy_pattern *p);

/*
 * Append a rule that allows (or denies) the identity patterns given, with
 * optional HTTP conditions (NULL for any).  `path` (exact) and `path_prefix`
 * exclude each other; each starts with '/'.  The policy copies everything.
 */
int policy_add_rule(struct policy *pol, const char *name, bool allow,
                    const char *const *patterns, size_t npatterns, const char *const *methods,
                    size_t nmethods, const char *host, const char *path, const char *path_prefix,
                    struct duet_err *err) MUST_CHECK;

/*
 * Whether a request target (path, then an optional "?query" that is never
 * looked at) meets a rule's path condition.  `exact`: the path equals `rule`
 * byte for byte ("/health" admits "/health" and "/health?x", not "/health/" or
 * "/healthz").  Otherwise `rule` is a prefix of whole segments: "/api" admits
 * "/api" and "/api/x" but not "/apix"; "/api/" admits "/api/" and "/api/x"
 * but not "/api"; "/" admits every path.  Both sides are compared after the
 * proxy's normalisation, case-sensitively.
 */
bool policy_path_match(const char *rule, bool exact, const char *target);
void policy_clear(struct policy *pol);

/* Whether a pattern matches an identity. */
bool policy_pattern_match(const struct policy_pattern *p, const struct duet_identity *id);

/* Decide; see the file comment.  Never fails. */
struct policy_decision policy_decide(const struct policy *pol, const struct policy_request *req);

/* Glob with '*' and '?' (case-sensitive). */
bool policy_glob(const char *pattern, const char *text);

#endif
