/* SPDX-License-Identifier: Apache-2.0 */
/*
 * profile.c - ca.yaml and the issuance policy of each profile.
 *
 * Parsing goes through key tables (one function per key); a new config is
 * built completely before it is used.  The policy check is what makes "the
 * CA, not the requester, decides": a name is issued only when its type is
 * allowed by the profile and it matches one of the profile's patterns, and
 * client and peer certificates carry exactly one SPIFFE ID in the CA's trust
 * domain unless the operator turns that rule off.
 */
#include "ca/profile.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>

#include "ca/ca.h"
#include "lib/policy.h"
#include "lib/ycfg.h"

static void
strlist_clear(struct strlist *l)
{
    for (size_t i = 0; l->v != NULL && i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

static void
profile_clear(struct ca_profile *p)
{
    free(p->name);
    strlist_clear(&p->dns);
    strlist_clear(&p->uri);
    strlist_clear(&p->email);
    strlist_clear(&p->crl_urls);
    strlist_clear(&p->ocsp_urls);
}

void
ca_config_clear(struct ca_config *c)
{
    if (c == NULL)
        return;
    free(c->path);
    free(c->name);
    free(c->trust_domain);
    free(c->key_type);
    for (size_t i = 0; i < c->nprofiles; i++)
        profile_clear(&c->profiles[i]);
    free(c->profiles);
    memset(c, 0, sizeof(*c));
}

const struct ca_profile *
ca_config_profile(const struct ca_config *c, const char *name)
{
    for (size_t i = 0; name != NULL && i < c->nprofiles; i++) {
        if (strcmp(c->profiles[i].name, name) == 0)
            return &c->profiles[i];
    }
    return NULL;
}

/* --- profile keys ------------------------------------------------------ */

static int
p_eku(struct ycfg *y, yaml_node_t *v, const char *path, void *t, struct duet_err *err)
{
    struct ca_profile *p = t;
    char **names = NULL;
    size_t n = 0;
    int rc = 0;

    if (ycfg_strings(y, v, path, &names, &n, err) != 0)
        return -1;
    p->eku = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (strcmp(names[i], "serverAuth") == 0)
            p->eku |= PROFILE_EKU_SERVER;
        else if (strcmp(names[i], "clientAuth") == 0)
            p->eku |= PROFILE_EKU_CLIENT;
        else
            rc = ycfg_error(y, v, path, err, "unknown usage \"%s\"; expected serverAuth or clientAuth",
                            names[i]);
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    if (rc == 0 && p->eku == 0)
        rc = ycfg_error(y, v, path, err, "at least one of serverAuth, clientAuth is needed");
    return rc;
}

static int
duration_key(struct ycfg *y, yaml_node_t *v, const char *path, int64_t *out, struct duet_err *err)
{
    const char *s = ycfg_scalar(v);

    if (s == NULL || !ca_duration_parse(s, out) || *out <= 0)
        return ycfg_error(y, v, path, err, "\"%s\" is not a duration; expected e.g. 720h, 30d, 1h30m",
                          s != NULL ? s : "(not a scalar)");
    return 0;
}

static int
p_default_ttl(struct ycfg *y, yaml_node_t *v, const char *path, void *t, struct duet_err *err)
{
    return duration_key(y, v, path, &((struct ca_profile *)t)->default_ttl, err);
}

static int
p_max_ttl(struct ycfg *y, yaml_node_t *v, const char *path, void *t, struct duet_err *err)
{
    return duration_key(y, v, path, &((struct ca_profile *)t)->max_ttl, err);
}

static int
p_san_types(struct ycfg *y, yaml_node_t *v, const char *path, void *t, struct duet_err *err)
{
    struct ca_profile *p = t;
    char **names = NULL;
    size_t n = 0;
    int rc = 0;

    if (ycfg_strings(y, v, path, &names, &n, err) != 0)
        return -1;
    p->san_types = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (strcmp(names[i], "dns") == 0)
            p->san_types |= PROFILE_SAN_DNS;
        else if (strcmp(names[i], "ip") == 0)
            p->san_types |= PROFILE_SAN_IP;
        else if (strcmp(names[i], "uri") == 0)
            p->san_types |= PROFILE_SAN_URI;
        else if (strcmp(names[i], "email") == 0)
            p->san_types |= PROFILE_SAN_EMAIL;
        else
            rc = ycfg_error(y, v, path, err, "unknown SAN type \"%s\"; expected dns, ip, uri or email",
                            names[i]);
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return rc;
}

static int
p_require_san(struct ycfg *y, yaml_node_t *v, const char *path, void *t, struct duet_err *err)
{
    return ycfg_bool(y, v, path, &((struct ca_profile *)t)->require_san, err);
}

static int
p_spiffe(struct ycfg *y, yaml_node_t *v, const char *path, void *t, struct duet_err *err)
{
    return ycfg_bool(y, v, path, &((struct ca_profile *)t)->spiffe, err);
}

static int
list_key(struct ycfg *y, yaml_node_t *v, const char *path, struct strlist *l, struct duet_err *err)
{
    strlist_clear(l);
    return ycfg_strings(y, v, path, &l->v, &l->n, err);
}

static int
p_dns(struct ycfg *y, yaml_node_t *v, const char *path, void *t, struct duet_err *err)
{
    return list_key(y, v, path, &((struct ca_profile *)t)->dns, err);
}

static int
p_uri(struct ycfg *y, yaml_node_t *v, const char *path, void *t, struct duet_err *err)
{
    return list_key(y, v, path, &((struct ca_profile *)t)->uri, err);
}

static int
p_email(struct ycfg *y, yaml_node_t *v, const char *path, void *t, struct duet_err *err)
{
    return list_key(y, v, path, &((struct ca_profile *)t)->email, err);
}

static int
p_crl_urls(struct ycfg *y, yaml_node_t *v, const char *path, void *t, struct duet_err *err)
{
    return list_key(y, v, path, &((struct ca_profile *)t)->crl_urls, err);
}

static int
p_ocsp_urls(struct ycfg *y, yaml_node_t *v, const char *path, void *t, struct duet_err *err)
{
    return list_key(y, v, path, &((struct ca_profile *)t)->ocsp_urls, err);
}

static const struct ycfg_key profile_keys[] = {
    {"extended_key_usage", p_eku, true},
    {"default_ttl", p_default_ttl, true},
    {"max_ttl", p_max_ttl, true},
    {"san_types", p_san_types, true},
    {"require_san", p_require_san, false},
    {"spiffe", p_spiffe, false},
    {"dns", p_dns, false},
    {"uri", p_uri, false},
    {"email", p_email, false},
    {"crl_urls", p_crl_urls, false},
    {"ocsp_urls", p_ocsp_urls, false},
    {NULL, NULL, false},
};

/* --- top-level keys ---------------------------------------------------- */

static int
c_name(struct ycfg *y, yaml_node_t *v, const char *path, void *t, struct duet_err *err)
{
    return ycfg_string(y, v, path, &((struct ca_config *)t)->name, err);
}

static int
c_trust_domain(struct ycfg *y, yaml_node_t *v, const char *path, void *t, struct duet_err *err)
{
    struct ca_config *c = t;

    if (ycfg_string(y, v, path, &c->trust_domain, err) != 0)
        return -1;
    for (const char *p = c->trust_domain; *p; p++) {
        if (!(islower((unsigned char)*p) || isdigit((unsigned char)*p) || *p == '-' || *p == '.' ||
              *p == '_'))
            return ycfg_error(y, v, path, err,
                              "\"%s\" is not a SPIFFE trust domain; expected lower-case letters, "
                              "digits, '-', '.', '_'",
                              c->trust_domain);
    }
    if (c->trust_domain[0] == '\0')
        return ycfg_error(y, v, path, err, "trust domain is empty");
    return 0;
}

static int
c_key_type(struct ycfg *y, yaml_node_t *v, const char *path, void *t, struct duet_err *err)
{
    struct ca_config *c = t;
    enum ca_key_type kt;
    struct duet_err kerr;

    if (ycfg_string(y, v, path, &c->key_type, err) != 0)
        return -1;
    if (ca_key_type_parse(c->key_type, &kt, &kerr) != 0)
        return ycfg_error(y, v, path, err, "%s", kerr.msg);
    return 0;
}

static int
c_offline_root(struct ycfg *y, yaml_node_t *v, const char *path, void *t, struct duet_err *err)
{
    return ycfg_bool(y, v, path, &((struct ca_config *)t)->offline_root, err);
}

static int
c_profiles(struct ycfg *y, yaml_node_t *v, const char *path, void *t, struct duet_err *err)
{
    struct ca_config *c = t;
    size_t n;

    if (v == NULL || v->type != YAML_MAPPING_NODE)
        return ycfg_error(y, v, path, err, "expected a mapping of profile names to profiles");
    n = (size_t)(v->data.mapping.pairs.top - v->data.mapping.pairs.start);
    if (n == 0)
        return ycfg_error(y, v, path, err, "at least one profile is needed");
    c->profiles = calloc(n, sizeof(*c->profiles));
    if (c->profiles == NULL)
        return err_nomem(err);
    for (yaml_node_pair_t *pp = v->data.mapping.pairs.start; pp < v->data.mapping.pairs.top; pp++) {
        yaml_node_t *k = ycfg_node(y, pp->key);
        const char *name = ycfg_scalar(k);
        struct ca_profile *p = &c->profiles[c->nprofiles];
        char ppath[256];

        if (name == NULL || name[0] == '\0')
            return ycfg_error(y, k, path, err, "expected a profile name");
        if (ca_config_profile(c, name) != NULL)
            return ycfg_error(y, k, path, err, "profile \"%s\" is defined twice", name);
        if ((p->name = strdup(name)) == NULL)
            return err_nomem(err);
        p->require_san = true;
        c->nprofiles++;
        snprintf(ppath, sizeof(ppath), "%s.%s", path, name);
        if (ycfg_map(y, ycfg_node(y, pp->value), ppath, profile_keys, p, err) != 0)
            return -1;
        if (p->default_ttl > p->max_ttl)
            return ycfg_error(y, ycfg_node(y, pp->value), ppath, err,
                              "default_ttl is longer than max_ttl");
        if (p->spiffe && !(p->san_types & PROFILE_SAN_URI))
            return ycfg_error(y, ycfg_node(y, pp->value), ppath, err,
                              "spiffe: true needs uri among san_types");
    }
    return 0;
}

static const struct ycfg_key config_keys[] = {
    {"name", c_name, true},
    {"trust_domain", c_trust_domain, true},
    {"key_type", c_key_type, false},
    {"offline_root", c_offline_root, false},
    {"profiles", c_profiles, true},
    {NULL, NULL, false},
};

/* Parse ca.yaml; see profile.h. */
int
ca_config_load(const char *path, struct ca_config *out, struct duet_err *err)
{
    struct ycfg y;
    struct ca_config c;

    memset(out, 0, sizeof(*out));
    memset(&c, 0, sizeof(c));
    if (ycfg_load(path, &y, err) != 0)
        return -1;
    if (ycfg_map(&y, ycfg_root(&y), "", config_keys, &c, err) != 0)
        goto err;
    if ((c.path = strdup(path)) == NULL ||
        (c.key_type == NULL && (c.key_type = strdup("p256")) == NULL)) {
        err_nomem(err);
        goto err;
    }
    ycfg_free(&y);
    *out = c;
    return 0;
err:
    ycfg_free(&y);
    ca_config_clear(&c);
    return -1;
}

/* --- names and policy -------------------------------------------------- */

void
profile_san_clear(struct profile_san *s)
{
    if (s == NULL)
        return;
    free(s->value);
    s->value = NULL;
}

static bool
dns_name_ok(const char *s)
{
    size_t label = 0;
    size_t len = strlen(s);

    if (len == 0 || len > 253)
        return false;
    if (strncmp(s, "*.", 2) == 0)
        s += 2; /* a wildcard as the whole left-most label */
    for (const char *p = s; *p; p++) {
        if (*p == '.') {
            if (label == 0 || p[-1] == '-')
                return false;
            label = 0;
            continue;
        }
        if (!(islower((unsigned char)*p) || isdigit((unsigned char)*p) ||
              (*p == '-' && label > 0)))
            return false;
        if (++label > 63)
            return false;
    }
    return label > 0;
}

/* Parse "type:value"; see profile.h. */
int
profile_san_parse(const char *text, struct profile_san *out, struct duet_err *err)
{
    const char *colon = strchr(text, ':');
    char type[8];
    const char *val;
    size_t tlen;

    memset(out, 0, sizeof(*out));
    if (colon == NULL || (tlen = (size_t)(colon - text)) == 0 || tlen >= sizeof(type))
        return err_set(err, DUET_ERR_INPUT,
                       "--san \"%s\": expected dns:NAME, ip:ADDRESS, uri:URI or email:ADDRESS",
                       text);
    for (size_t i = 0; i < tlen; i++)
        type[i] = (char)tolower((unsigned char)text[i]);
    type[tlen] = '\0';
    val = colon + 1;
    if (*val == '\0')
        return err_set(err, DUET_ERR_INPUT, "--san \"%s\": the name is empty", text);
    if (strcmp(type, "dns") == 0) {
        char *v = strdup(val);
        if (v == NULL)
            return err_nomem(err);
        for (char *p = v; *p; p++)
            *p = (char)tolower((unsigned char)*p);
        if (!dns_name_ok(v)) {
            free(v);
            return err_set(err, DUET_ERR_INPUT,
                           "--san \"%s\": not a DNS name (letters, digits, '-' in dot-separated "
                           "labels; \"*.\" only as the whole first label)",
                           text);
        }
        out->type = PROFILE_SAN_DNS;
        out->value = v;
    } else if (strcmp(type, "ip") == 0) {
        unsigned char buf[16];
        char canon[INET6_ADDRSTRLEN];
        if (inet_pton(AF_INET, val, buf) == 1)
            inet_ntop(AF_INET, buf, canon, sizeof(canon));
        else if (inet_pton(AF_INET6, val, buf) == 1)
            inet_ntop(AF_INET6, buf, canon, sizeof(canon));
        else
            return err_set(err, DUET_ERR_INPUT, "--san \"%s\": not an IPv4 or IPv6 address", text);
        out->type = PROFILE_SAN_IP;
        out->value = strdup(canon);
    } else if (strcmp(type, "uri") == 0) {
        const char *sep = strstr(val, "://");
        if (sep == NULL || sep == val || strpbrk(val, " \t\r\n") != NULL)
            return err_set(err, DUET_ERR_INPUT,
                           "--san \"%s\": not a URI; expected scheme://authority/path, e.g. "
                           "spiffe://corp/hr/henry",
                           text);
        out->type = PROFILE_SAN_URI;
        out->value = strdup(val);
    } else if (strcmp(type, "email") == 0) {
        const char *at = strchr(val, '@');
        if (at == NULL || at == val || at[1] == '\0' || strchr(at + 1, '@') != NULL)
            return err_set(err, DUET_ERR_INPUT, "--san \"%s\": not an email address", text);
        out->type = PROFILE_SAN_EMAIL;
        out->value = strdup(val);
    } else {
        return err_set(err, DUET_ERR_INPUT,
                       "--san \"%s\": unknown type \"%s\"; expected dns, ip, uri or email", text,
                       type);
    }
    if (out->value == NULL)
        return err_nomem(err);
    return 0;
}

/* Glob with '*' and '?'; see profile.h.  One matcher for CA patterns and proxy rules. */
bool
profile_glob(const char *pat, const char *s)
{
    return policy_glob(pat, s);
}

static const char *
san_type_name(unsigned t)
{
    switch (t) {
    case PROFILE_SAN_DNS:
        return "dns";
    case PROFILE_SAN_IP:
        return "ip";
    case PROFILE_SAN_URI:
        return "uri";
    case PROFILE_SAN_EMAIL:
        return "email";
    }
    return "?";
}

static bool
matches_any(const struct strlist *l, const char *v)
{
    if (l->n == 0)
        return true;
    for (size_t i = 0; i < l->n; i++) {
        if (profile_glob(l->v[i], v))
            return true;
    }
    return false;
}

static void
join_list(const struct strlist *l, char *buf, size_t len)
{
    size_t off = 0;

    buf[0] = '\0';
    for (size_t i = 0; i < l->n && off < len; i++)
        off += (size_t)snprintf(buf + off, len - off, "%s%s", i ? ", " : "", l->v[i]);
}

/* Check a request against a profile; see profile.h. */
int
profile_check(const struct ca_config *cfg, const struct ca_profile *p,
              const struct profile_san *sans, size_t nsans, int64_t ttl, struct duet_err *err)
{
    size_t nuri = 0;
    char pats[512];

    if (ttl > p->max_ttl)
        return err_set(err, DUET_ERR_INPUT,
                       "ttl of %lld hours is over the maximum of %lld hours of profile %s",
                       (long long)(ttl / 3600), (long long)(p->max_ttl / 3600), p->name);
    if (ttl <= 0)
        return err_set(err, DUET_ERR_INPUT, "ttl must be positive");
    if (p->require_san && nsans == 0)
        return err_set(err, DUET_ERR_INPUT,
                       "profile %s requires at least one subject alternative name (--san)",
                       p->name);
    for (size_t i = 0; i < nsans; i++) {
        const struct profile_san *s = &sans[i];
        const struct strlist *l = NULL;

        if (!(p->san_types & s->type)) {
            char allowed[40] = "";
            static const unsigned bits[] = {PROFILE_SAN_DNS, PROFILE_SAN_IP, PROFILE_SAN_URI,
                                            PROFILE_SAN_EMAIL};
            for (size_t k = 0; k < 4; k++) {
                if (p->san_types & bits[k]) {
                    if (allowed[0] != '\0')
                        strcat(allowed, ", ");
                    strcat(allowed, san_type_name(bits[k]));
                }
            }
            return err_set(err, DUET_ERR_INPUT,
                           "name %s:%s is not allowed by profile %s (it allows %s)",
                           san_type_name(s->type), s->value, p->name,
                           allowed[0] ? allowed : "no names");
        }
        if (s->type == PROFILE_SAN_DNS)
            l = &p->dns;
        else if (s->type == PROFILE_SAN_URI)
            l = &p->uri;
        else if (s->type == PROFILE_SAN_EMAIL)
            l = &p->email;
        if (l != NULL && !matches_any(l, s->value)) {
            join_list(l, pats, sizeof(pats));
            return err_set(err, DUET_ERR_INPUT,
                           "name %s:%s is not allowed by profile %s: it must match one of %s",
                           san_type_name(s->type), s->value, p->name, pats);
        }
        if (s->type == PROFILE_SAN_URI)
            nuri++;
    }
    if (p->spiffe) {
        char prefix[300];
        snprintf(prefix, sizeof(prefix), "spiffe://%s/", cfg->trust_domain);
        if (nuri != 1)
            return err_set(err, DUET_ERR_INPUT,
                           "profile %s requires exactly one URI SAN, a SPIFFE ID %s... (SPIFFE "
                           "rule); %zu given",
                           p->name, prefix, nuri);
        for (size_t i = 0; i < nsans; i++) {
            if (sans[i].type != PROFILE_SAN_URI)
                continue;
            if (strncmp(sans[i].value, prefix, strlen(prefix)) != 0 ||
                sans[i].value[strlen(prefix)] == '\0')
                return err_set(err, DUET_ERR_INPUT,
                               "URI %s is not a SPIFFE ID of trust domain %s; expected %sPATH",
                               sans[i].value, cfg->trust_domain, prefix);
        }
    }
    return 0;
}

/* The ca.yaml of a new CA; see profile.h. */
char *
profile_default_yaml(const char *name, const char *trust_domain, const char *key_type,
                     bool offline_root)
{
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    char qname[512];
    size_t q = 0;

    if (f == NULL)
        return NULL;
    /* Double-quoted YAML scalar: escape backslash and quote. */
    for (const char *p = name; *p && q + 3 < sizeof(qname); p++) {
        if (*p == '"' || *p == '\\')
            qname[q++] = '\\';
        qname[q++] = *p;
    }
    qname[q] = '\0';
    fprintf(f,
            "# duet CA configuration, written by `duet ca init`.\n"
            "# Profiles decide what the CA puts in a certificate; requests only propose names.\n"
            "# Durations: s, m, h, d, w (e.g. 720h, 30d, 1h30m).  Patterns: '*' matches any run.\n"
            "name: \"%s\"\n"
            "trust_domain: %s\n"
            "key_type: %s\n"
            "offline_root: %s\n"
            "profiles:\n"
            "  server:\n"
            "    extended_key_usage: [serverAuth]\n"
            "    default_ttl: 2160h\n"
            "    max_ttl: 8760h\n"
            "    san_types: [dns, ip]\n"
            "    require_san: true\n"
            "    spiffe: false\n"
            "    dns: []\n"
            "    crl_urls: []\n"
            "    ocsp_urls: []\n"
            "  client:\n"
            "    extended_key_usage: [clientAuth]\n"
            "    default_ttl: 720h\n"
            "    max_ttl: 2160h\n"
            "    san_types: [uri, dns, email]\n"
            "    require_san: true\n"
            "    spiffe: true\n"
            "    uri: [\"spiffe://%s/*\"]\n"
            "    crl_urls: []\n"
            "    ocsp_urls: []\n"
            "  peer:\n"
            "    extended_key_usage: [serverAuth, clientAuth]\n"
            "    default_ttl: 720h\n"
            "    max_ttl: 2160h\n"
            "    san_types: [uri, dns, ip]\n"
            "    require_san: true\n"
            "    spiffe: true\n"
            "    uri: [\"spiffe://%s/*\"]\n"
            "    crl_urls: []\n"
            "    ocsp_urls: []\n"
            "  device:\n"
            "    extended_key_usage: [clientAuth]\n"
            "    default_ttl: 8760h\n"
            "    max_ttl: 17520h\n"
            "    san_types: [dns, ip, uri, email]\n"
            "    require_san: false\n"
            "    spiffe: false\n"
            "    crl_urls: []\n"
            "    ocsp_urls: []\n",
            qname, trust_domain, key_type, offline_root ? "true" : "false", trust_domain,
            trust_domain);
    if (fclose(f) != 0) {
        free(out);
        return NULL;
    }
    return out;
}
