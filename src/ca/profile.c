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

#include "ca/keys.h"
#include "ca/pkcs11.h"
#include "lib/duration.h"
#include "lib/policy.h"
#include "lib/ycfg.h"
#include "store/store.h"

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
    free(c->store);
    free(c->key_uri);
    free(c->ocsp_key_uri);
    free(c->root_key_uri);
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

struct name_bit {
    const char *name;
    unsigned bit;
};

/*
 * A YAML list of names, each one of table[0..nt), their bits OR-ed into *out;
 * an unknown name is refused as "unknown WHAT "NAME"; expected EXPECTED".
 */
static int
bits_key(struct ycfg *y, yaml_node_t *v, const char *path, const struct name_bit *table,
         size_t nt, const char *what, const char *expected, unsigned *out, struct duet_err *err)
{
    char **names = NULL;
    size_t n = 0;
    int rc = 0;

    if (ycfg_strings(y, v, path, &names, &n, err) != 0)
        return -1;
    *out = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        size_t k = 0;
        while (k < nt && strcmp(names[i], table[k].name) != 0)
            k++;
        if (k < nt)
            *out |= table[k].bit;
        else
            rc = ycfg_error(y, v, path, err, "unknown %s \"%s\"; expected %s", what, names[i],
                            expected);
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return rc;
}

static int
p_eku(struct ycfg *y, yaml_node_t *v, const char *path, void *t, struct duet_err *err)
{
    static const struct name_bit ekus[] = {{"serverAuth", PROFILE_EKU_SERVER},
                                           {"clientAuth", PROFILE_EKU_CLIENT}};
    struct ca_profile *p = t;

    if (bits_key(y, v, path, ekus, 2, "usage", "serverAuth or clientAuth", &p->eku, err) != 0)
        return -1;
    if (p->eku == 0)
        return ycfg_error(y, v, path, err, "at least one of serverAuth, clientAuth is needed");
    return 0;
}

static int
duration_key(struct ycfg *y, yaml_node_t *v, const char *path, int64_t *out, struct duet_err *err)
{
    const char *s = ycfg_scalar(v);
    struct duet_err derr;

    if (s == NULL || duration_parse(s, out, &derr) != 0 || *out <= 0)
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
p_api_ttl(struct ycfg *y, yaml_node_t *v, const char *path, void *t, struct duet_err *err)
{
    return duration_key(y, v, path, &((struct ca_profile *)t)->api_ttl, err);
}

/* renew_grace: 0 or off (no renewal after expiry), else a duration of at most 30 days. */
static int
p_renew_grace(struct ycfg *y, yaml_node_t *v, const char *path, void *t, struct duet_err *err)
{
    struct ca_profile *p = t;
    const char *s = ycfg_scalar(v);
    struct duet_err derr;

    if (s != NULL && (strcmp(s, "0") == 0 || strcmp(s, "off") == 0)) {
        p->renew_grace = 0;
        return 0;
    }
    if (s == NULL || duration_parse(s, &p->renew_grace, &derr) != 0 || p->renew_grace < 0)
        return ycfg_error(y, v, path, err,
                          "\"%s\" is not a grace period; expected 0 (off) or a duration of at "
                          "most 30d, e.g. 72h",
                          s != NULL ? s : "(not a scalar)");
    if (p->renew_grace > PROFILE_MAX_RENEW_GRACE)
        return ycfg_error(y, v, path, err,
                          "%s is longer than 30 days; the grace after expiry is for machines "
                          "that were off a while, at most 30d (720h): enroll the others again",
                          s);
    return 0;
}

static int
p_san_types(struct ycfg *y, yaml_node_t *v, const char *path, void *t, struct duet_err *err)
{
    static const struct name_bit types[] = {{"dns", PROFILE_SAN_DNS},
                                            {"ip", PROFILE_SAN_IP},
                                            {"uri", PROFILE_SAN_URI},
                                            {"email", PROFILE_SAN_EMAIL}};

    return bits_key(y, v, path, types, 4, "SAN type", "dns, ip, uri or email",
                    &((struct ca_profile *)t)->san_types, err);
}

/* team_from_owner: [ou], [spiffe] or both; see team.h. */
static int
p_team(struct ycfg *y, yaml_node_t *v, const char *path, void *t, struct duet_err *err)
{
    static const struct name_bit places[] = {{"ou", PROFILE_TEAM_OU},
                                             {"spiffe", PROFILE_TEAM_SPIFFE}};

    return bits_key(y, v, path, places, 2, "place for the team", "ou or spiffe",
                    &((struct ca_profile *)t)->team, err);
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

/* A list of URLs to embed in certificates: each must be a URI of RFC 3986 characters. */
static int
url_list_key(struct ycfg *y, yaml_node_t *v, const char *path, struct strlist *l,
             struct duet_err *err)
{
    if (list_key(y, v, path, l, err) != 0)
        return -1;
    for (size_t i = 0; i < l->n; i++) {
        if (!profile_uri_ok(l->v[i], strlen(l->v[i])))
            return ycfg_error(y, v, path, err,
                              "\"%s\" is not a URL; expected scheme://host/path in RFC 3986 "
                              "characters, e.g. http://ca.corp/issuing.crl",
                              l->v[i]);
    }
    return 0;
}

static int
p_crl_urls(struct ycfg *y, yaml_node_t *v, const char *path, void *t, struct duet_err *err)
{
    return url_list_key(y, v, path, &((struct ca_profile *)t)->crl_urls, err);
}

static int
p_ocsp_urls(struct ycfg *y, yaml_node_t *v, const char *path, void *t, struct duet_err *err)
{
    return url_list_key(y, v, path, &((struct ca_profile *)t)->ocsp_urls, err);
}

static int
p_wildcard(struct ycfg *y, yaml_node_t *v, const char *path, void *t, struct duet_err *err)
{
    return ycfg_bool(y, v, path, &((struct ca_profile *)t)->wildcard, err);
}

static const struct ycfg_key profile_keys[] = {
    {"extended_key_usage", p_eku, true},
    {"default_ttl", p_default_ttl, true},
    {"max_ttl", p_max_ttl, true},
    {"api_ttl", p_api_ttl, false},
    {"renew_grace", p_renew_grace, false},
    {"san_types", p_san_types, true},
    {"require_san", p_require_san, false},
    {"spiffe", p_spiffe, false},
    {"wildcard", p_wildcard, false},
    {"team_from_owner", p_team, false},
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

/*
 * store: "sqlite" (inventory.db in the CA directory, the default) or a
 * PostgreSQL URL.  The value is never echoed: it may hold a password.
 */
static int
c_store(struct ycfg *y, yaml_node_t *v, const char *path, void *t, struct duet_err *err)
{
    struct ca_config *c = t;

    if (ycfg_string(y, v, path, &c->store, err) != 0)
        return -1;
    if (strcmp(c->store, "sqlite") != 0 && !store_is_postgres_url(c->store))
        return ycfg_error(y, v, path, err,
                          "expected sqlite or a PostgreSQL URL "
                          "(postgres://[user@]host[:port]/database)");
    return 0;
}

/* A PKCS#11 URI value into *slot, refused as ca_pkcs11_uri_parse() refuses it. */
static int
uri_value(struct ycfg *y, yaml_node_t *v, const char *path, char **slot, struct duet_err *err)
{
    struct ca_pkcs11_uri u;
    struct duet_err perr;

    if (ycfg_string(y, v, path, slot, err) != 0)
        return -1;
    if (ca_pkcs11_uri_parse(*slot, &u, &perr) != 0)
        return ycfg_error(y, v, path, err, "%s", perr.msg);
    ca_pkcs11_uri_clear(&u);
    return 0;
}

static int
c_key_uri(struct ycfg *y, yaml_node_t *v, const char *path, void *t, struct duet_err *err)
{
    return uri_value(y, v, path, &((struct ca_config *)t)->key_uri, err);
}

static int
c_root_key_uri(struct ycfg *y, yaml_node_t *v, const char *path, void *t, struct duet_err *err)
{
    return uri_value(y, v, path, &((struct ca_config *)t)->root_key_uri, err);
}

static int
c_ocsp_key_uri(struct ycfg *y, yaml_node_t *v, const char *path, void *t, struct duet_err *err)
{
    return uri_value(y, v, path, &((struct ca_config *)t)->ocsp_key_uri, err);
}

/* The value node of `key` in a mapping (the mapping itself when the key is absent). */
static yaml_node_t *
map_value(struct ycfg *y, yaml_node_t *map, const char *key)
{
    for (yaml_node_pair_t *pp = map->data.mapping.pairs.start; pp < map->data.mapping.pairs.top;
         pp++) {
        const char *k = ycfg_scalar(ycfg_node(y, pp->key));
        if (k != NULL && strcmp(k, key) == 0)
            return ycfg_node(y, pp->value);
    }
    return map;
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
        if (p->api_ttl > p->max_ttl) {
            char kpath[300];
            snprintf(kpath, sizeof(kpath), "%s.api_ttl", ppath);
            return ycfg_error(y, map_value(y, ycfg_node(y, pp->value), "api_ttl"), kpath, err,
                              "%s is longer than max_ttl (%s); expected at most that",
                              ycfg_scalar(map_value(y, ycfg_node(y, pp->value), "api_ttl")),
                              ycfg_scalar(map_value(y, ycfg_node(y, pp->value), "max_ttl")));
        }
        if (p->api_ttl == 0)
            p->api_ttl = p->default_ttl < PROFILE_API_TTL ? p->default_ttl : PROFILE_API_TTL;
        if (p->spiffe && !(p->san_types & PROFILE_SAN_URI))
            return ycfg_error(y, ycfg_node(y, pp->value), ppath, err,
                              "spiffe: true needs uri among san_types");
        if ((p->team & PROFILE_TEAM_SPIFFE) && !p->spiffe)
            return ycfg_error(y, ycfg_node(y, pp->value), ppath, err,
                              "team_from_owner: [spiffe] needs spiffe: true");
    }
    return 0;
}

static const struct ycfg_key config_keys[] = {
    {"name", c_name, true},
    {"trust_domain", c_trust_domain, true},
    {"key_type", c_key_type, false},
    {"offline_root", c_offline_root, false},
    {"store", c_store, false},
    {"key_uri", c_key_uri, false},
    {"ocsp_key_uri", c_ocsp_key_uri, false},
    {"root_key_uri", c_root_key_uri, false},
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

/*
 * A name for a message: visible ASCII as is, every other byte as \xNN, cut
 * (with "...") to fit.  Names come from requests and CSRs: a terminal or log
 * must never receive their control bytes.
 */
static const char *
quote(const char *s, size_t len, char *buf, size_t cap)
{
    size_t o = 0;

    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        size_t need = (c >= 0x20 && c < 0x7f) ? 1 : 4;
        if (o + need + 4 > cap) {
            memcpy(buf + o, "...", 3);
            o += 3;
            break;
        }
        if (need == 1)
            buf[o++] = (char)c;
        else
            o += (size_t)snprintf(buf + o, cap - o, "\\x%02x", c);
    }
    buf[o] = '\0';
    return buf;
}

/* The first byte that is not visible ASCII (0x21-0x7e), or -1 when there is none. */
static long
first_invisible(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= 0x20 || c >= 0x7f)
            return (long)i;
    }
    return -1;
}

/* RFC 1035 2.3.1 LDH labels (lower case: callers fold), optional leading "*." label. */
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
    if (label == 0 || s[strlen(s) - 1] == '-')
        return false;
    /*
     * A last label of digits only is an IPv4 address written as a name
     * ("127.0.0.1"): certified as a DNS name, it matches that address in
     * verifiers that check host names as text (RFC 1123 2.1, CA/B BR 7.1.4.2.1).
     */
    return strspn(s + strlen(s) - label, "0123456789") != label;
}

/* RFC 3986 2.2/2.3: unreserved, gen-delims and sub-delims; '%' is checked by the caller. */
static bool
uri_char(unsigned char c)
{
    return isalnum(c) || strchr("-._~:/?#[]@!$&'()*+,;=", c) != NULL;
}

/* URI of RFC 3986 characters with a scheme (3.1); see profile.h. */
bool
profile_uri_ok(const char *s, size_t len)
{
    size_t i = 0;

    if (len == 0 || !isalpha((unsigned char)s[0]))
        return false;
    while (i < len && (isalnum((unsigned char)s[i]) || s[i] == '+' || s[i] == '-' || s[i] == '.'))
        i++;
    if (i >= len || s[i] != ':' || i + 1 >= len)
        return false;
    for (i++; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '%') {
            if (i + 2 >= len || !isxdigit((unsigned char)s[i + 1]) ||
                !isxdigit((unsigned char)s[i + 2]))
                return false;
            i += 2;
        } else if (c == 0 || c > 0x7e || !uri_char(c)) {
            return false;
        }
    }
    return true;
}

/* local@domain: visible ASCII, one '@', a DNS domain (RFC 5280 4.2.1.6 rfc822Name). */
static bool
email_ok(const char *s)
{
    const char *at = strchr(s, '@');
    char *domain;
    bool ok;

    if (at == NULL || at == s || at[1] == '\0' || strchr(at + 1, '@') != NULL)
        return false;
    if ((domain = strdup(at + 1)) == NULL)
        return false;
    for (char *p = domain; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    ok = domain[0] != '*' && dns_name_ok(domain);
    free(domain);
    return ok;
}

/*
 * Check one value of a known type, from `src` (the text shown in messages:
 * "--san \"dns:x\"" or "the CSR's DNS name \"x\"").  On success out->value is
 * the normalised copy: DNS in lower case, IP in canonical text.
 */
static int
san_value(unsigned type, const char *val, size_t len, const char *src, struct profile_san *out,
          struct duet_err *err)
{
    long bad = first_invisible(val, len);
    char *v = NULL;

    memset(out, 0, sizeof(*out));
    if (len == 0)
        return err_set(err, DUET_ERR_INPUT, "%s: the name is empty", src);
    if (bad >= 0)
        return err_set(err, DUET_ERR_INPUT,
                       "%s: byte 0x%02x at offset %ld is a control character, a space or not "
                       "ASCII; names hold visible ASCII only",
                       src, (unsigned char)val[bad], bad);
    if ((v = strndup(val, len)) == NULL)
        return err_nomem(err);
    switch (type) {
    case PROFILE_SAN_DNS:
        for (char *p = v; *p; p++)
            *p = (char)tolower((unsigned char)*p);
        if (!dns_name_ok(v)) {
            free(v);
            return err_set(err, DUET_ERR_INPUT,
                           "%s: not a DNS name (letters, digits, '-' in dot-separated labels; "
                           "\"*.\" only as the whole first label)",
                           src);
        }
        break;
    case PROFILE_SAN_IP: {
        unsigned char buf[16];
        char canon[INET6_ADDRSTRLEN];
        if (inet_pton(AF_INET, v, buf) == 1)
            inet_ntop(AF_INET, buf, canon, sizeof(canon));
        else if (inet_pton(AF_INET6, v, buf) == 1)
            inet_ntop(AF_INET6, buf, canon, sizeof(canon));
        else {
            free(v);
            return err_set(err, DUET_ERR_INPUT, "%s: not an IPv4 or IPv6 address", src);
        }
        free(v);
        if ((v = strdup(canon)) == NULL)
            return err_nomem(err);
        break;
    }
    case PROFILE_SAN_URI:
        if (!profile_uri_ok(v, len)) {
            free(v);
            return err_set(err, DUET_ERR_INPUT,
                           "%s: not a URI; expected scheme:... in RFC 3986 characters, e.g. "
                           "spiffe://corp/hr/henry",
                           src);
        }
        break;
    case PROFILE_SAN_EMAIL:
        if (!email_ok(v)) {
            free(v);
            return err_set(err, DUET_ERR_INPUT,
                           "%s: not an email address; expected local@domain in visible ASCII",
                           src);
        }
        break;
    default:
        free(v);
        return err_set(err, DUET_ERR_INTERNAL, "%s: unknown SAN type %u", src, type);
    }
    out->type = type;
    out->value = v;
    return 0;
}

/* Parse "type:value"; see profile.h. */
int
profile_san_parse(const char *text, struct profile_san *out, struct duet_err *err)
{
    const char *colon = strchr(text, ':');
    char type[8];
    char q[300], src[320];
    size_t tlen;
    unsigned t;

    memset(out, 0, sizeof(*out));
    quote(text, strlen(text), q, sizeof(q));
    if (colon == NULL || (tlen = (size_t)(colon - text)) == 0 || tlen >= sizeof(type))
        return err_set(err, DUET_ERR_INPUT,
                       "--san \"%s\": expected dns:NAME, ip:ADDRESS, uri:URI or email:ADDRESS",
                       q);
    for (size_t i = 0; i < tlen; i++)
        type[i] = (char)tolower((unsigned char)text[i]);
    type[tlen] = '\0';
    if (strcmp(type, "dns") == 0)
        t = PROFILE_SAN_DNS;
    else if (strcmp(type, "ip") == 0)
        t = PROFILE_SAN_IP;
    else if (strcmp(type, "uri") == 0)
        t = PROFILE_SAN_URI;
    else if (strcmp(type, "email") == 0)
        t = PROFILE_SAN_EMAIL;
    else {
        char qt[40];
        return err_set(err, DUET_ERR_INPUT,
                       "--san \"%s\": unknown type \"%s\"; expected dns, ip, uri or email", q,
                       quote(type, tlen, qt, sizeof(qt)));
    }
    snprintf(src, sizeof(src), "--san \"%s\"", q);
    return san_value(t, colon + 1, strlen(colon + 1), src, out, err);
}

static const char *
gen_type_name(int type)
{
    switch (type) {
    case GEN_OTHERNAME:
        return "otherName";
    case GEN_X400:
        return "x400Address";
    case GEN_DIRNAME:
        return "directoryName";
    case GEN_EDIPARTY:
        return "ediPartyName";
    case GEN_RID:
        return "registeredID";
    }
    return "unknown";
}

/* Check a GENERAL_NAME's exact bytes; see profile.h. */
int
profile_san_from_name(const GENERAL_NAME *g, const char *what, struct profile_san *out,
                      struct duet_err *err)
{
    const ASN1_STRING *a = NULL;
    unsigned type;
    const char *tag;
    char q[300], src[400];

    memset(out, 0, sizeof(*out));
    switch (g->type) {
    case GEN_DNS:
        type = PROFILE_SAN_DNS, tag = "DNS", a = g->d.dNSName;
        break;
    case GEN_URI:
        type = PROFILE_SAN_URI, tag = "URI", a = g->d.uniformResourceIdentifier;
        break;
    case GEN_EMAIL:
        type = PROFILE_SAN_EMAIL, tag = "email", a = g->d.rfc822Name;
        break;
    case GEN_IPADD: {
        const ASN1_OCTET_STRING *ip = g->d.iPAddress;
        int n = ASN1_STRING_length(ip);
        char canon[INET6_ADDRSTRLEN];
        if ((n != 4 && n != 16) ||
            inet_ntop(n == 4 ? AF_INET : AF_INET6, ASN1_STRING_get0_data(ip), canon,
                      sizeof(canon)) == NULL)
            return err_set(err, DUET_ERR_INPUT,
                           "%s asks for a malformed IP address name (%d bytes; expected 4 or 16)",
                           what, n);
        out->type = PROFILE_SAN_IP;
        out->value = strdup(canon);
        return out->value != NULL ? 0 : err_nomem(err);
    }
    default:
        return err_set(err, DUET_ERR_INPUT,
                       "%s asks for a %s name, a type duet does not issue; expected DNS, IP, URI "
                       "or email",
                       what, gen_type_name(g->type));
    }
    {
        const char *d = (const char *)ASN1_STRING_get0_data(a);
        size_t len = (size_t)ASN1_STRING_length(a);
        snprintf(src, sizeof(src), "%s: %s name \"%s\"", what, tag, quote(d, len, q, sizeof(q)));
        return san_value(type, d, len, src, out, err);
    }
}

/* A GENERAL_NAME from a checked SAN; see profile.h. */
GENERAL_NAME *
profile_san_to_name(const struct profile_san *s)
{
    GENERAL_NAME *g = GENERAL_NAME_new();
    ASN1_STRING *a = NULL;
    int type;

    if (g == NULL)
        return NULL;
    if (s->type == PROFILE_SAN_IP) {
        unsigned char buf[16];
        int n = inet_pton(AF_INET, s->value, buf) == 1    ? 4
                : inet_pton(AF_INET6, s->value, buf) == 1 ? 16
                                                          : 0;
        type = GEN_IPADD;
        a = n > 0 ? ASN1_OCTET_STRING_new() : NULL;
        if (a != NULL && !ASN1_OCTET_STRING_set(a, buf, n)) {
            ASN1_OCTET_STRING_free(a);
            a = NULL;
        }
    } else {
        type = s->type == PROFILE_SAN_DNS   ? GEN_DNS
               : s->type == PROFILE_SAN_URI ? GEN_URI
                                            : GEN_EMAIL;
        a = ASN1_IA5STRING_new();
        if (a != NULL && !ASN1_STRING_set(a, s->value, (int)strlen(s->value))) {
            ASN1_IA5STRING_free(a);
            a = NULL;
        }
    }
    if (a == NULL) {
        GENERAL_NAME_free(g);
        return NULL;
    }
    GENERAL_NAME_set0_value(g, type, a);
    return g;
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

/*
 * SPIFFE ID path (SPIFFE-ID specification 2.2): non-empty segments of
 * letters, digits, '.', '-' and '_', none of them "." or "..", no trailing
 * '/', no query, fragment or percent-encoding.
 */
static bool
spiffe_path_ok(const char *path)
{
    const char *seg = path;

    for (const char *c = path;; c++) {
        if (*c == '/' || *c == '\0') {
            size_t n = (size_t)(c - seg);
            if (n == 0 || (n == 1 && seg[0] == '.') || (n == 2 && seg[0] == '.' && seg[1] == '.'))
                return false;
            if (*c == '\0')
                return true;
            seg = c + 1;
            continue;
        }
        if (!(isalnum((unsigned char)*c) || *c == '.' || *c == '-' || *c == '_'))
            return false;
    }
}

/* Check a request against a profile; see profile.h. */
int
profile_check(const struct ca_config *cfg, const struct ca_profile *p,
              const struct profile_san *sans, size_t nsans, int64_t ttl, struct duet_err *err)
{
    size_t nuri = 0;
    char pats[512];
    char prefix[300];

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
    snprintf(prefix, sizeof(prefix), "spiffe://%s/", cfg->trust_domain);
    for (size_t i = 0; i < nsans; i++)
        nuri += sans[i].type == PROFILE_SAN_URI;
    /* The SPIFFE rule first: "no SPIFFE ID" says more than "DNS is not allowed". */
    if (p->spiffe && nuri != 1)
        return err_set(err, DUET_ERR_INPUT,
                       "profile %s requires exactly one URI SAN, a SPIFFE ID %s... (SPIFFE "
                       "rule); %zu given",
                       p->name, prefix, nuri);
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
        if (s->type == PROFILE_SAN_DNS && strncmp(s->value, "*.", 2) == 0 && !p->wildcard)
            return err_set(err, DUET_ERR_INPUT,
                           "name dns:%s is a wildcard, which profile %s does not issue "
                           "(wildcard: true in %s allows it)",
                           s->value, p->name, cfg->path != NULL ? cfg->path : "ca.yaml");
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
    }
    for (size_t i = 0; p->spiffe && i < nsans; i++) {
        const char *v = sans[i].value;
        if (sans[i].type != PROFILE_SAN_URI)
            continue;
        if (strncmp(v, prefix, strlen(prefix)) != 0 || v[strlen(prefix)] == '\0')
            return err_set(err, DUET_ERR_INPUT,
                           "URI %s is not a SPIFFE ID of trust domain %s; expected %sPATH", v,
                           cfg->trust_domain, prefix);
        if (!spiffe_path_ok(v + strlen(prefix)))
            return err_set(err, DUET_ERR_INPUT,
                           "URI %s is not a SPIFFE ID: its path must be '/'-separated segments "
                           "of letters, digits, '.', '-' and '_' (SPIFFE ID specification 2.2)",
                           v);
    }
    return 0;
}

/* profile_check on the GENERAL_NAMEs that will be signed; see profile.h. */
int
profile_check_names(const struct ca_config *cfg, const struct ca_profile *p,
                    const GENERAL_NAMES *names, int64_t ttl, struct duet_err *err)
{
    int n = names != NULL ? sk_GENERAL_NAME_num(names) : 0;
    struct profile_san *sans = calloc((size_t)n + 1, sizeof(*sans));
    int k = 0;
    int rc = -1;

    if (sans == NULL)
        return err_nomem(err);
    for (; k < n; k++) {
        if (profile_san_from_name(sk_GENERAL_NAME_value(names, k), "the certificate", &sans[k],
                                  err) != 0)
            goto out;
    }
    rc = profile_check(cfg, p, sans, (size_t)n, ttl, err);
out:
    for (int i = 0; i < k; i++)
        profile_san_clear(&sans[i]);
    free(sans);
    return rc;
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
            "# default_ttl: what duet cert issue/sign give; api_ttl: what duet ca serve gives\n"
            "# (enrollment and renewal; at most max_ttl).  renew_grace: how long after expiry a\n"
            "# certificate may still renew over the API (machines that were off): 0 is off,\n"
            "# at most 30d.\n"
            "name: \"%s\"\n"
            "trust_domain: %s\n"
            "key_type: %s\n"
            "offline_root: %s\n"
            "profiles:\n"
            "  server:\n"
            "    extended_key_usage: [serverAuth]\n"
            "    default_ttl: 2160h\n"
            "    max_ttl: 8760h\n"
            "    api_ttl: 24h\n"
            "    renew_grace: 0\n"
            "    san_types: [dns, ip]\n"
            "    require_san: true\n"
            "    spiffe: false\n"
            "    wildcard: false\n"
            "    dns: []\n"
            "    crl_urls: []\n"
            "    ocsp_urls: []\n"
            "  client:\n"
            "    extended_key_usage: [clientAuth]\n"
            "    default_ttl: 720h\n"
            "    max_ttl: 2160h\n"
            "    api_ttl: 24h\n"
            "    renew_grace: 0\n"
            "    # The SPIFFE ID only: add dns or email (with patterns) to allow more.\n"
            "    san_types: [uri]\n"
            "    require_san: true\n"
            "    spiffe: true\n"
            "    uri: [\"spiffe://%s/*\"]\n"
            "    crl_urls: []\n"
            "    ocsp_urls: []\n"
            "  peer:\n"
            "    extended_key_usage: [serverAuth, clientAuth]\n"
            "    default_ttl: 720h\n"
            "    max_ttl: 2160h\n"
            "    api_ttl: 24h\n"
            "    renew_grace: 0\n"
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
            "    api_ttl: 24h\n"
            "    renew_grace: 0\n"
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
