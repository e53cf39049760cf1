/* SPDX-License-Identifier: Apache-2.0 */
/*
 * policy.c - ordered allow/deny rules on verified identities, default deny.
 * Matching reads the identity and, for subject fields, the certificate it
 * was made from; nothing here touches sockets or logs.
 */
#include "lib/policy.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/x509.h>

#include "lib/x509util.h"

static const struct {
    const char *tag;
    enum policy_field field;
} tags[] = {{"uri", PF_URI}, {"dns", PF_DNS},     {"ip", PF_IP}, {"email", PF_EMAIL},
            {"cn", PF_CN},   {"ou", PF_OU},       {"o", PF_O},   {"issuer", PF_ISSUER}};

bool
policy_glob(const char *pat, const char *s)
{
    const char *star = NULL;
    const char *back = NULL;

    while (*s) {
        if (*pat == '*') {
            star = pat++;
            back = s;
        } else if (*pat == '?' || *pat == *s) {
            pat++;
            s++;
        } else if (star != NULL) {
            pat = star + 1;
            s = ++back;
        } else {
            return false;
        }
    }
    while (*pat == '*')
        pat++;
    return *pat == '\0';
}

void
policy_pattern_clear(struct policy_pattern *p)
{
    if (p == NULL)
        return;
    free(p->glob);
    p->glob = NULL;
}

/* Parse "type:glob" or "any"; see policy.h. */
int
policy_pattern_parse(const char *text, struct policy_pattern *out, struct duet_err *err)
{
    const char *colon;

    memset(out, 0, sizeof(*out));
    if (text != NULL && strcmp(text, "any") == 0) {
        out->field = PF_ANY;
        return 0;
    }
    if (text != NULL && strcmp(text, "anonymous") == 0) {
        out->field = PF_ANONYMOUS;
        return 0;
    }
    colon = text != NULL ? strchr(text, ':') : NULL;
    if (colon != NULL) {
        size_t tlen = (size_t)(colon - text);
        for (size_t i = 0; i < sizeof(tags) / sizeof(tags[0]); i++) {
            if (strlen(tags[i].tag) == tlen && strncasecmp(text, tags[i].tag, tlen) == 0) {
                if (colon[1] == '\0')
                    return err_set(err, DUET_ERR_INPUT, "pattern \"%s\": nothing after \"%s:\"",
                                   text, tags[i].tag);
                out->field = tags[i].field;
                if (out->field == PF_IP) {
                    /* Canonical text so that ::1 and 0:0::1 compare equal. */
                    unsigned char buf[16];
                    char canon[INET6_ADDRSTRLEN];
                    if (inet_pton(AF_INET, colon + 1, buf) == 1)
                        inet_ntop(AF_INET, buf, canon, sizeof(canon));
                    else if (inet_pton(AF_INET6, colon + 1, buf) == 1)
                        inet_ntop(AF_INET6, buf, canon, sizeof(canon));
                    else
                        return err_set(err, DUET_ERR_INPUT,
                                       "pattern \"%s\": not an IPv4 or IPv6 address", text);
                    out->glob = strdup(canon);
                } else {
                    out->glob = strdup(colon + 1);
                }
                return out->glob != NULL ? 0 : err_nomem(err);
            }
        }
    }
    return err_set(err, DUET_ERR_INPUT,
                   "unknown pattern \"%s\"; expected uri:, dns:, ip:, email:, cn:, ou:, o:, "
                   "issuer: followed by a glob, any or anonymous",
                   text != NULL ? text : "");
}

static bool
san_match(const struct duet_identity *id, enum duet_san_type type, const char *glob)
{
    for (size_t i = 0; i < id->nsans; i++) {
        if (id->sans[i].type == type && policy_glob(glob, id->sans[i].value))
            return true;
    }
    return false;
}

/* Any subject entry of the given NID matching the glob. */
static bool
subject_match(const struct duet_identity *id, int nid, const char *glob)
{
    const X509_NAME *name = id->cert != NULL ? X509_get_subject_name(id->cert) : NULL;
    int idx = -1;

    while (name != NULL && (idx = X509_NAME_get_index_by_NID(name, nid, idx)) >= 0) {
        unsigned char *utf8 = NULL;
        int n = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, idx)));
        bool hit = false;
        if (n >= 0 && memchr(utf8, '\0', (size_t)n) == NULL) {
            char *s = malloc((size_t)n + 1);
            if (s != NULL) {
                memcpy(s, utf8, (size_t)n);
                s[n] = '\0';
                hit = policy_glob(glob, s);
                free(s);
            }
        }
        OPENSSL_free(utf8);
        if (hit)
            return true;
    }
    return false;
}

/* Whether a pattern matches an identity; see policy.h. */
bool
policy_pattern_match(const struct policy_pattern *p, const struct duet_identity *id)
{
    /* A client without a certificate matches "anonymous" and nothing else. */
    if (id == NULL || p->field == PF_ANONYMOUS)
        return id == NULL && p->field == PF_ANONYMOUS;
    switch (p->field) {
    case PF_ANONYMOUS:
        return false;
    case PF_ANY:
        return true;
    case PF_URI:
        if (strncmp(p->glob, "spiffe://", 9) == 0) {
            /* SPIFFE: an identity with more than one URI SAN has no single SPIFFE ID. */
            size_t nuri = 0;
            for (size_t i = 0; i < id->nsans; i++)
                nuri += id->sans[i].type == DUET_SAN_URI;
            if (nuri != 1)
                return false;
        }
        return san_match(id, DUET_SAN_URI, p->glob);
    case PF_DNS:
        return san_match(id, DUET_SAN_DNS, p->glob);
    case PF_IP:
        return san_match(id, DUET_SAN_IP, p->glob);
    case PF_EMAIL:
        return san_match(id, DUET_SAN_EMAIL, p->glob);
    case PF_CN:
        return subject_match(id, NID_commonName, p->glob);
    case PF_OU:
        return subject_match(id, NID_organizationalUnitName, p->glob);
    case PF_O:
        return subject_match(id, NID_organizationName, p->glob);
    case PF_ISSUER:
        return id->issuer != NULL && policy_glob(p->glob, id->issuer);
    }
    return false;
}

static void
rule_clear(struct policy_rule *r)
{
    free(r->name);
    for (size_t i = 0; i < r->nids; i++)
        policy_pattern_clear(&r->ids[i]);
    free(r->ids);
    for (size_t i = 0; i < r->nmethods; i++)
        free(r->methods[i]);
    free(r->methods);
    free(r->host);
    free(r->path);
    free(r->path_prefix);
    memset(r, 0, sizeof(*r));
}

void
policy_clear(struct policy *pol)
{
    if (pol == NULL)
        return;
    for (size_t i = 0; i < pol->nrules; i++)
        rule_clear(&pol->rules[i]);
    free(pol->rules);
    pol->rules = NULL;
    pol->nrules = 0;
}

/* Append a rule; see policy.h. */
int
policy_add_rule(struct policy *pol, const char *name, bool allow, const char *const *patterns,
                size_t npatterns, const char *const *methods, size_t nmethods, const char *host,
                const char *path, const char *path_prefix, struct duet_err *err)
{
    struct policy_rule r;
    struct policy_rule *nr;

    memset(&r, 0, sizeof(r));
    if (npatterns == 0)
        return err_set(err, DUET_ERR_INPUT, "rule %s: no identity pattern", name);
    if (path != NULL && path_prefix != NULL)
        return err_set(err, DUET_ERR_INPUT,
                       "rule %s: path (exact) and path_prefix exclude each other; keep one", name);
    if ((path != NULL && path[0] != '/') || (path_prefix != NULL && path_prefix[0] != '/'))
        return err_set(err, DUET_ERR_INPUT, "rule %s: path \"%s\": a path starts with /", name,
                       path != NULL ? path : path_prefix);
    r.allow = allow;
    r.name = strdup(name);
    r.ids = calloc(npatterns, sizeof(*r.ids));
    r.methods = nmethods > 0 ? calloc(nmethods, sizeof(*r.methods)) : NULL;
    if (r.name == NULL || r.ids == NULL || (nmethods > 0 && r.methods == NULL))
        goto oom;
    for (; r.nids < npatterns; r.nids++) {
        if (policy_pattern_parse(patterns[r.nids], &r.ids[r.nids], err) != 0) {
            err_prefix(err, "rule %s", name);
            rule_clear(&r);
            return -1;
        }
    }
    for (; r.nmethods < nmethods; r.nmethods++) {
        if ((r.methods[r.nmethods] = strdup(methods[r.nmethods])) == NULL)
            goto oom;
    }
    if ((host != NULL && (r.host = strdup(host)) == NULL) ||
        (path != NULL && (r.path = strdup(path)) == NULL) ||
        (path_prefix != NULL && (r.path_prefix = strdup(path_prefix)) == NULL))
        goto oom;
    /* Host names compare case-insensitively (RFC 9110 4.2.3): keep the glob lower-case. */
    for (char *p = r.host; p != NULL && *p; p++)
        *p = (char)((*p >= 'A' && *p <= 'Z') ? *p + 32 : *p);
    nr = realloc(pol->rules, (pol->nrules + 1) * sizeof(*nr));
    if (nr == NULL)
        goto oom;
    pol->rules = nr;
    pol->rules[pol->nrules++] = r;
    return 0;
oom:
    rule_clear(&r);
    return err_nomem(err);
}

/*
 * Host without a port, compared case-insensitively via a lower-case copy (the
 * rule's glob was lower-cased by policy_add_rule).  An IPv6 literal keeps its
 * brackets and colons ("[::1]:8443" is "[::1]"); one trailing dot is dropped;
 * a host too long for any DNS name never matches rather than being compared
 * truncated.
 */
static bool
host_match(const char *glob, const char *host)
{
    char buf[256];
    size_t n = 0;
    const char *p = host;
    bool v6;

    if (host == NULL)
        return false;
    v6 = *p == '[';
    for (; *p && (v6 || *p != ':'); p++) {
        if (n + 1 >= sizeof(buf))
            return false;
        buf[n++] = (char)((*p >= 'A' && *p <= 'Z') ? *p + 32 : *p);
        if (v6 && *p == ']')
            v6 = false;
    }
    /* "admin.corp." is the same host as "admin.corp" (an absolute DNS name). */
    if (n > 1 && buf[n - 1] == '.')
        n--;
    buf[n] = '\0';
    return policy_glob(glob, buf);
}

/* Exact or per-segment path match; see policy.h. */
bool
policy_path_match(const char *rule, bool exact, const char *target)
{
    size_t rlen = strlen(rule);
    size_t plen;

    if (target == NULL)
        return false;
    /* The query is not part of the path (RFC 3986 3.4); nothing after '?' is looked at. */
    plen = strcspn(target, "?");
    if (exact)
        return plen == rlen && memcmp(target, rule, rlen) == 0;
    if (plen < rlen || memcmp(target, rule, rlen) != 0)
        return false;
    /* A prefix ending in '/' ends at a segment boundary; else the next byte must start one. */
    return rlen > 0 && (rule[rlen - 1] == '/' || plen == rlen || target[rlen] == '/');
}

/* Decide; see policy.h. */
struct policy_decision
policy_decide(const struct policy *pol, const struct policy_request *req)
{
    struct policy_decision d = {false, "default-deny", -1};

    for (size_t i = 0; i < pol->nrules; i++) {
        const struct policy_rule *r = &pol->rules[i];
        bool id_ok = false;

        for (size_t k = 0; k < r->nids && !id_ok; k++)
            id_ok = policy_pattern_match(&r->ids[k], req->id);
        if (!id_ok)
            continue;
        if (r->nmethods > 0) {
            bool m_ok = false;
            for (size_t k = 0; k < r->nmethods && !m_ok; k++)
                m_ok = req->method != NULL && strcasecmp(r->methods[k], req->method) == 0;
            if (!m_ok)
                continue;
        }
        if (r->host != NULL && !host_match(r->host, req->host))
            continue;
        if (r->path != NULL && !policy_path_match(r->path, true, req->path))
            continue;
        if (r->path_prefix != NULL && !policy_path_match(r->path_prefix, false, req->path))
            continue;
        d.allow = r->allow;
        d.rule = r->name;
        d.index = (int)i;
        return d;
    }
    return d;
}
