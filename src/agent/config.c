/* SPDX-License-Identifier: Apache-2.0 */
/*
 * config.c - the agent's YAML configuration (docs/agent.md), read through
 * key tables (lib/ycfg.h): one parse function per key, every error with
 * FILE:LINE:COL and the key's path.  The whole file is checked before the
 * agent does anything.
 */
#include <ctype.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/agent.h"
#include "lib/duration.h"
#include "lib/ycfg.h"

void
agent_url_clear(struct agent_url *u)
{
    if (u == NULL)
        return;
    free(u->text);
    free(u->host);
    free(u->port);
    memset(u, 0, sizeof(*u));
}

/* Parse https://HOST[:PORT][/]; see agent.h. */
int
agent_url_parse(const char *text, struct agent_url *u, struct duet_err *err)
{
    const char *h, *end, *port = NULL;
    size_t hlen;

    memset(u, 0, sizeof(*u));
    if (strncmp(text, "https://", 8) != 0)
        return err_set(err, DUET_ERR_INPUT, "\"%s\": expected https://HOST:PORT", text);
    h = text + 8;
    end = h + strcspn(h, "/");
    if (*end == '/' && end[1] != '\0')
        return err_set(err, DUET_ERR_INPUT,
                       "\"%s\": a CA URL has no path; expected https://HOST:PORT", text);
    if (*h == '[') {
        const char *rb = memchr(h, ']', (size_t)(end - h));
        if (rb == NULL)
            return err_set(err, DUET_ERR_INPUT, "\"%s\": unclosed [ in the host", text);
        hlen = (size_t)(rb - h - 1);
        h++;
        if (rb + 1 < end && rb[1] == ':')
            port = rb + 2;
        else if (rb + 1 != end)
            return err_set(err, DUET_ERR_INPUT, "\"%s\": expected :PORT after ]", text);
    } else {
        const char *colon = memchr(h, ':', (size_t)(end - h));
        hlen = (size_t)((colon != NULL ? colon : end) - h);
        if (colon != NULL)
            port = colon + 1;
    }
    if (hlen == 0)
        return err_set(err, DUET_ERR_INPUT, "\"%s\": no host; expected https://HOST:PORT", text);
    if (port != NULL) {
        size_t plen = (size_t)(end - port);
        long pv = 0;
        if (plen == 0 || plen > 5)
            return err_set(err, DUET_ERR_INPUT, "\"%s\": bad port; expected 1 to 65535", text);
        for (size_t i = 0; i < plen; i++) {
            if (!isdigit((unsigned char)port[i]))
                return err_set(err, DUET_ERR_INPUT, "\"%s\": bad port; expected 1 to 65535", text);
            pv = pv * 10 + (port[i] - '0');
        }
        if (pv < 1 || pv > 65535)
            return err_set(err, DUET_ERR_INPUT, "\"%s\": bad port; expected 1 to 65535", text);
    }
    u->text = strdup(text);
    u->host = strndup(h, hlen);
    u->port = port != NULL ? strndup(port, (size_t)(end - port)) : strdup("443");
    if (u->text == NULL || u->host == NULL || u->port == NULL) {
        agent_url_clear(u);
        return err_nomem(err);
    }
    return 0;
}

/* See agent.h. */
char *
agent_fingerprint_norm(const char *text)
{
    char *out = malloc(32 * 3);
    size_t n = 0;

    if (out == NULL)
        return NULL;
    for (const char *p = text; *p != '\0'; p++) {
        if (*p == ':')
            continue;
        if (!isxdigit((unsigned char)*p) || n >= 64)
            goto err;
        if (n > 0 && n % 2 == 0)
            out[n / 2 * 3 - 1] = ':';
        out[n / 2 * 3 + n % 2] = (char)toupper((unsigned char)*p);
        n++;
    }
    if (n != 64)
        goto err;
    out[32 * 3 - 1] = '\0';
    return out;
err:
    free(out);
    return NULL;
}

static void
cert_cfg_clear(struct agent_cert_cfg *c)
{
    free(c->name);
    free(c->cert);
    free(c->key);
    free(c->chain);
    free(c->roots);
    free(c->crl);
    free(c->bundle);
    free(c->token_file);
    for (size_t i = 0; i < c->nsans; i++)
        profile_san_clear(&c->sans[i]);
    free(c->sans);
    for (size_t i = 0; i < c->hook_argc; i++)
        free(c->hook_argv[i]);
    free(c->hook_argv);
    free(c->pid_file);
}

void
agent_config_free(struct agent_cfg *cfg)
{
    if (cfg == NULL)
        return;
    free(cfg->path);
    for (size_t i = 0; i < cfg->nurls; i++)
        agent_url_clear(&cfg->urls[i]);
    free(cfg->urls);
    free(cfg->root_fingerprint);
    free(cfg->state_dir);
    free(cfg->log);
    for (size_t i = 0; i < cfg->ncerts; i++)
        cert_cfg_clear(&cfg->certs[i]);
    free(cfg->certs);
    memset(cfg, 0, sizeof(*cfg));
}

/* --- top-level keys --- */

static int
add_url(struct ycfg *y, yaml_node_t *n, const char *p, struct agent_cfg *c, struct duet_err *err)
{
    const char *s = ycfg_scalar(n);
    struct agent_url *nu;

    if (s == NULL)
        return ycfg_error(y, n, p, err, "expected a URL https://HOST:PORT");
    nu = realloc(c->urls, (c->nurls + 1) * sizeof(*nu));
    if (nu == NULL)
        return err_nomem(err);
    c->urls = nu;
    if (agent_url_parse(s, &c->urls[c->nurls], err) != 0)
        return ycfg_error(y, n, p, err, "%s", err->msg);
    c->nurls++;
    return 0;
}

static int
k_ca_url(struct ycfg *y, yaml_node_t *v, const char *p, void *t, struct duet_err *err)
{
    struct agent_cfg *c = t;
    int idx = 0;

    if (v != NULL && v->type == YAML_SEQUENCE_NODE) {
        if (v->data.sequence.items.top == v->data.sequence.items.start)
            return ycfg_error(y, v, p, err, "an empty list; expected at least one URL");
        for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top;
             it++, idx++) {
            char path[300];
            snprintf(path, sizeof(path), "%s[%d]", p, idx);
            if (add_url(y, ycfg_node(y, *it), path, c, err) != 0)
                return -1;
        }
        return 0;
    }
    return add_url(y, v, p, c, err);
}

static int
k_root_fp(struct ycfg *y, yaml_node_t *v, const char *p, void *t, struct duet_err *err)
{
    struct agent_cfg *c = t;
    const char *s = ycfg_scalar(v);

    if (s == NULL || (c->root_fingerprint = agent_fingerprint_norm(s)) == NULL)
        return ycfg_error(y, v, p, err,
                          "expected the root's SHA-256 fingerprint, 32 bytes of hex with or "
                          "without colons (root_sha256 of GET /v1/ca)");
    return 0;
}

static int
k_state_dir(struct ycfg *y, yaml_node_t *v, const char *p, void *t, struct duet_err *err)
{
    return ycfg_string(y, v, p, &((struct agent_cfg *)t)->state_dir, err);
}

static int
k_log(struct ycfg *y, yaml_node_t *v, const char *p, void *t, struct duet_err *err)
{
    return ycfg_string(y, v, p, &((struct agent_cfg *)t)->log, err);
}

static int
duration_key(struct ycfg *y, yaml_node_t *v, const char *p, int64_t lo, int64_t *out,
             struct duet_err *err)
{
    const char *s = ycfg_scalar(v);

    if (s == NULL || duration_parse(s, out, err) != 0)
        return ycfg_error(y, v, p, err, "\"%s\" is not a duration; expected e.g. 1h, 30m, 5s",
                          s != NULL ? s : "(not a scalar)");
    if (*out < lo)
        return ycfg_error(y, v, p, err, "\"%s\" is too short; at least %lld s", s, (long long)lo);
    return 0;
}

static int
k_refresh(struct ycfg *y, yaml_node_t *v, const char *p, void *t, struct duet_err *err)
{
    return duration_key(y, v, p, 1, &((struct agent_cfg *)t)->refresh, err);
}

static int
k_backoff_min(struct ycfg *y, yaml_node_t *v, const char *p, void *t, struct duet_err *err)
{
    return duration_key(y, v, p, 1, &((struct agent_cfg *)t)->backoff_min, err);
}

static int
k_backoff_max(struct ycfg *y, yaml_node_t *v, const char *p, void *t, struct duet_err *err)
{
    return duration_key(y, v, p, 1, &((struct agent_cfg *)t)->backoff_max, err);
}

/* --- keys of one certificate --- */

#define CERT_STR(fn, field)                                                                        \
    static int fn(struct ycfg *y, yaml_node_t *v, const char *p, void *t, struct duet_err *err)    \
    {                                                                                              \
        return ycfg_string(y, v, p, &((struct agent_cert_cfg *)t)->field, err);                    \
    }
CERT_STR(c_name, name)
CERT_STR(c_cert, cert)
CERT_STR(c_key, key)
CERT_STR(c_chain, chain)
CERT_STR(c_roots, roots)
CERT_STR(c_crl, crl)
CERT_STR(c_bundle, bundle)
CERT_STR(c_token_file, token_file)

static int
c_key_type(struct ycfg *y, yaml_node_t *v, const char *p, void *t, struct duet_err *err)
{
    const char *s = ycfg_scalar(v);

    if (s == NULL)
        return ycfg_error(y, v, p, err, "expected a key type");
    if (ca_key_type_parse(s, &((struct agent_cert_cfg *)t)->key_type, err) != 0)
        return ycfg_error(y, v, p, err, "%s", err->msg);
    return 0;
}

/* sans: [dns:H, ip:A, uri:U, email:E]: checked as `duet ca token --san` checks them. */
static int
c_sans(struct ycfg *y, yaml_node_t *v, const char *p, void *t, struct duet_err *err)
{
    struct agent_cert_cfg *c = t;
    int idx = 0;

    if (v == NULL || v->type != YAML_SEQUENCE_NODE)
        return ycfg_error(y, v, p, err, "expected a list such as [dns:web-01.corp.example]");
    c->nsans = 0;
    c->sans = calloc((size_t)(v->data.sequence.items.top - v->data.sequence.items.start) + 1,
                     sizeof(*c->sans));
    if (c->sans == NULL)
        return err_nomem(err);
    for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top;
         it++, idx++) {
        yaml_node_t *n = ycfg_node(y, *it);
        const char *s = ycfg_scalar(n);
        char path[300];

        snprintf(path, sizeof(path), "%s[%d]", p, idx);
        if (s == NULL)
            return ycfg_error(y, n, path, err, "expected dns:H, ip:A, uri:U or email:E");
        if (profile_san_parse(s, &c->sans[c->nsans], err) != 0)
            return ycfg_error(y, n, path, err, "%s", err->msg);
        c->nsans++;
    }
    return 0;
}

static int
c_rekey(struct ycfg *y, yaml_node_t *v, const char *p, void *t, struct duet_err *err)
{
    return ycfg_bool(y, v, p, &((struct agent_cert_cfg *)t)->rekey, err);
}

static const struct {
    const char *name;
    int sig;
} signals[] = {
    {"SIGHUP", SIGHUP},   {"SIGUSR1", SIGUSR1}, {"SIGUSR2", SIGUSR2},
    {"SIGTERM", SIGTERM}, {"SIGINT", SIGINT},
};

static int
h_exec(struct ycfg *y, yaml_node_t *v, const char *p, void *t, struct duet_err *err)
{
    struct agent_cert_cfg *c = t;

    if (ycfg_strings(y, v, p, &c->hook_argv, &c->hook_argc, err) != 0)
        return -1;
    if (c->hook_argc == 0)
        return ycfg_error(y, v, p, err, "an empty command; expected [program, args...]");
    return 0;
}

static int
h_signal(struct ycfg *y, yaml_node_t *v, const char *p, void *t, struct duet_err *err)
{
    struct agent_cert_cfg *c = t;
    const char *s = ycfg_scalar(v);

    for (size_t i = 0; s != NULL && i < sizeof(signals) / sizeof(signals[0]); i++) {
        if (strcmp(s, signals[i].name) == 0 || strcmp(s, signals[i].name + 3) == 0) {
            c->hook_signal = signals[i].sig;
            return 0;
        }
    }
    return ycfg_error(y, v, p, err, "\"%s\": expected SIGHUP, SIGUSR1, SIGUSR2, SIGTERM or SIGINT",
                      s != NULL ? s : "(not a scalar)");
}

static int
h_pid_file(struct ycfg *y, yaml_node_t *v, const char *p, void *t, struct duet_err *err)
{
    return ycfg_string(y, v, p, &((struct agent_cert_cfg *)t)->pid_file, err);
}

static const struct ycfg_key hook_keys[] = {
    {"exec", h_exec, false},
    {"signal", h_signal, false},
    {"pid_file", h_pid_file, false},
    {NULL, NULL, false},
};

static int
c_on_renew(struct ycfg *y, yaml_node_t *v, const char *p, void *t, struct duet_err *err)
{
    struct agent_cert_cfg *c = t;

    if (ycfg_map(y, v, p, hook_keys, c, err) != 0)
        return -1;
    if (c->hook_argc > 0 && (c->hook_signal != 0 || c->pid_file != NULL))
        return ycfg_error(y, v, p, err, "either exec, or signal with pid_file; not both");
    if (c->hook_argc > 0) {
        c->hook = AGENT_HOOK_EXEC;
        return 0;
    }
    if (c->hook_signal == 0 || c->pid_file == NULL)
        return ycfg_error(
            y, v, p, err,
            "expected {exec: [program, args...]} or {signal: SIGHUP, pid_file: PATH}");
    c->hook = AGENT_HOOK_SIGNAL;
    return 0;
}

static const struct ycfg_key cert_keys[] = {
    {"name", c_name, true},          {"cert", c_cert, true},    {"key", c_key, true},
    {"chain", c_chain, false},       {"roots", c_roots, false}, {"crl", c_crl, false},
    {"key_type", c_key_type, false}, {"rekey", c_rekey, false}, {"token_file", c_token_file, false},
    {"on_renew", c_on_renew, false}, {"bundle", c_bundle, false}, {"sans", c_sans, false},
    {NULL, NULL, false},
};

/* Whether a certificate name can name the state file: letters, digits, '.', '-', '_', '@'. */
static bool
safe_name(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > 64 || s[0] == '.')
        return false;
    for (size_t i = 0; i < n; i++) {
        if (!isalnum((unsigned char)s[i]) && strchr(".-_@", s[i]) == NULL)
            return false;
    }
    return true;
}

static int
k_certificates(struct ycfg *y, yaml_node_t *v, const char *p, void *t, struct duet_err *err)
{
    struct agent_cfg *c = t;
    size_t n;
    int idx = 0;

    if (v == NULL || v->type != YAML_SEQUENCE_NODE ||
        v->data.sequence.items.top == v->data.sequence.items.start)
        return ycfg_error(y, v, p, err, "expected a list of certificates, at least one");
    n = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
    if ((c->certs = calloc(n, sizeof(*c->certs))) == NULL)
        return err_nomem(err);
    for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top;
         it++, idx++) {
        yaml_node_t *cn = ycfg_node(y, *it);
        struct agent_cert_cfg *cc = &c->certs[c->ncerts++];
        char path[300];

        cc->key_type = CA_KEY_P256;
        snprintf(path, sizeof(path), "%s[%d]", p, idx);
        if (ycfg_map(y, cn, path, cert_keys, cc, err) != 0)
            return -1;
        if (!safe_name(cc->name))
            return ycfg_error(y, cn, path, err,
                              "name \"%s\": expected 1 to 64 letters, digits, '.', '-', '_', '@' "
                              "(it names the state file)",
                              cc->name);
        if (strcmp(cc->cert, cc->key) == 0)
            return ycfg_error(y, cn, path, err, "cert and key must be two files");
        if (cc->bundle != NULL &&
            (strcmp(cc->bundle, cc->cert) == 0 || strcmp(cc->bundle, cc->key) == 0 ||
             (cc->chain != NULL && strcmp(cc->bundle, cc->chain) == 0)))
            return ycfg_error(y, cn, path, err,
                              "bundle must be a file of its own, not cert, key or chain");
        for (size_t j = 0; j + 1 < c->ncerts; j++) {
            if (strcmp(c->certs[j].name, cc->name) == 0)
                return ycfg_error(y, cn, path, err, "name \"%s\" is given twice", cc->name);
        }
    }
    return 0;
}

static const struct ycfg_key top_keys[] = {
    {"ca_url", k_ca_url, true},
    {"root_fingerprint", k_root_fp, true},
    {"state_dir", k_state_dir, true},
    {"log", k_log, false},
    {"refresh", k_refresh, false},
    {"backoff_min", k_backoff_min, false},
    {"backoff_max", k_backoff_max, false},
    {"certificates", k_certificates, true},
    {NULL, NULL, false},
};

/* Read and check the configuration; see agent.h. */
int
agent_config_load(const char *path, struct agent_cfg *cfg, struct duet_err *err)
{
    struct ycfg y;
    int rc = -1;

    memset(cfg, 0, sizeof(*cfg));
    memset(&y, 0, sizeof(y));
    cfg->refresh = 3600;
    cfg->backoff_min = 5;
    cfg->backoff_max = 600;
    if ((cfg->path = strdup(path)) == NULL)
        return err_nomem(err);
    if (ycfg_load(path, &y, err) != 0)
        goto out;
    if (ycfg_map(&y, ycfg_root(&y), "", top_keys, cfg, err) != 0)
        goto out;
    if (cfg->backoff_max < cfg->backoff_min) {
        err_set(err, DUET_ERR_INPUT, "%s: backoff_max is shorter than backoff_min", path);
        goto out;
    }
    rc = 0;
out:
    ycfg_free(&y);
    return rc;
}
