/* SPDX-License-Identifier: Apache-2.0 */
/*
 * gen.c - generations: everything a reload can change (TLS contexts, trust,
 * CRLs, policy, targets), built from one configuration, reference-counted,
 * and swapped whole by reload.c.  One function destroys a generation, whole
 * or half built, with or without its configuration: gen_unref's last
 * reference, gen_build's failure and proxy_check all end there.
 */
#include "proxy/proxy_int.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "lib/load.h"

/*
 * Generations in memory: the current one and the retired ones that open
 * connections (or a reload in progress) still hold.  /metrics shows it as
 * duet_proxy_generations: a count that stays above 1 once the old
 * connections have ended is a leaked reference.
 */
static atomic_long gens_alive;

/*
 * The one destroy path.  What gen_make did not build yet is NULL (calloc'd);
 * the configuration goes too when the generation owns it.
 */
static void
gen_destroy(struct gen *g)
{
    if (g == NULL)
        return;
    if (g->id != 0) /* counted by gen_make once whole */
        atomic_fetch_sub(&gens_alive, 1);
    for (size_t i = 0; g->ls != NULL && i < g->nls; i++) {
        SSL_CTX_free(g->ls[i].ssl_ctx);
        staple_free(g->ls[i].staple);
        OSSL_STACK_OF_X509_free(g->ls[i].ocsp_anchors);
        SSL_CTX_free(g->ls[i].up_ctx);
        tls_ctx_info_clear(&g->ls[i].info);
        free(g->ls[i].down_until);
        free(g->ls[i].authz);
    }
    free(g->ls);
    if (g->owns_cfg)
        proxy_cfg_clear(&g->cfg);
    free(g);
}

/* Take a reference; see proxy_int.h. */
void
gen_ref(struct gen *g)
{
    atomic_fetch_add(&g->refs, 1);
}

static void *
gen_destroy_thread(void *arg)
{
    gen_destroy(arg);
    return NULL;
}

/*
 * Drop a reference.  The last one of a retired generation is often dropped by
 * a worker closing a connection; the generation's memory (tens of MB with a
 * large CRL) is then freed on a low-priority thread of its own, not on the
 * worker, so the handshakes in flight do not wait for it.
 */
void
gen_unref(struct gen *g)
{
    pthread_t t;
    pthread_attr_t attr;

    if (g == NULL || atomic_fetch_sub(&g->refs, 1) != 1)
        return;
    if (pthread_attr_init(&attr) == 0) {
        bool started = pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED) == 0 &&
                       pthread_create(&t, &attr, gen_destroy_thread, g) == 0;
        pthread_attr_destroy(&attr);
        if (started)
            return;
    }
    gen_destroy(g);
}

/* One listener's TLS contexts: toward clients (or the tunnel's target), toward upstreams. */
static int
gen_listener_tls(const struct proxy_cfg *cfg, const struct listener_cfg *l,
                 struct gen_listener *gl, struct duet_err *err)
{
    struct tls_opts o;

    memset(&o, 0, sizeof(o));
    o.cert_file = l->cert;
    o.key_file = l->key;
    o.ca_file = l->cacert;
    o.crl_files = (const char *const *)l->crls;
    o.ncrl_files = l->ncrls;
    o.crl_scope = l->crl_scope;
    o.crl_expired_ok = l->crl_expired_warn;
    o.insecure_crl_dsa = l->insecure_crl_dsa;
    o.tls12 = l->tls12;
    o.verify_optional = l->verify_optional;
    o.insecure_key_mode = cfg->insecure_key_mode;
    if (cfg->role == ROLE_SERVER) {
        o.alpn = l->alpn != NULL ? l->alpn : (l->mode == MODE_HTTP ? "h2,http/1.1" : NULL);
        o.session_tickets = !l->no_tickets;
        o.read_ahead = l->mode == MODE_HTTP; /* drained by forward_client_pull() */
        o.ticket_keys_file = l->ticket_keys;
        o.listener = l->name;  /* sessions resume only under this listener, */
        o.policy = &l->policy; /* trust and policy (see tls.c "Session binding") */
        if (tls_server_ctx_new(&o, &gl->ssl_ctx, &gl->info, err) != 0)
            return -1;
        if (l->ocsp_staple && staple_attach(l, gl->ssl_ctx, &gl->staple, err) != 0)
            return -1;
        /* --ocsp: the issuers a client's leaf may have, to ask its status with. */
        if (l->ocsp != OCSP_OFF && l->cacert != NULL &&
            load_certs_file(l->cacert, NULL, &gl->ocsp_anchors, err) != 0)
            return -1;
        if (l->up_cacert != NULL) {
            struct tls_opts u;
            memset(&u, 0, sizeof(u));
            u.cert_file = l->up_cert;
            u.key_file = l->up_key;
            u.ca_file = l->up_cacert;
            u.insecure_key_mode = cfg->insecure_key_mode;
            u.tls12 = true;
            if (tls_client_ctx_new(&u, &gl->up_ctx, &gl->info, err) != 0)
                return -1;
        }
        return 0;
    }
    o.alpn = l->alpn;
    if (tls_client_ctx_new(&o, &gl->ssl_ctx, &gl->info, err) != 0)
        return -1;
    /* The tunnel asks its server for an OCSP staple (status_request); tunnel.c judges it. */
    if (!l->no_staple_check && !SSL_CTX_set_tlsext_status_type(gl->ssl_ctx, TLSEXT_STATUSTYPE_ocsp))
        return err_set_ssl(err, DUET_ERR_INTERNAL, "cannot ask for OCSP staples");
    return 0;
}

/*
 * Build a generation from cfg.  take: the generation owns cfg's memory from
 * now on (cfg is zeroed); otherwise it borrows it (proxy_check).  On failure
 * cfg is untouched and still the caller's.
 */
static int
gen_make(struct proxy_cfg *cfg, bool take, struct gen **out, struct duet_err *err)
{
    static atomic_ulong next_id = 1;
    struct gen *g = calloc(1, sizeof(*g));

    *out = NULL;
    if (g == NULL)
        return err_nomem(err);
    g->ls = calloc(cfg->nlisteners, sizeof(*g->ls));
    if (g->ls == NULL) {
        err_nomem(err);
        goto err;
    }
    g->nls = cfg->nlisteners;
    for (size_t i = 0; i < cfg->nlisteners; i++) {
        const struct listener_cfg *l = &cfg->listeners[i];
        struct gen_listener *gl = &g->ls[i];

        gl->cfg = l;
        gl->down_until = calloc(l->ntargets, sizeof(*gl->down_until));
        gl->authz = calloc((l->policy.nrules + 1) * 2, sizeof(*gl->authz));
        metrics_handshake_counters(l->name, gl->hs);
        metrics_label(gl->mlabel, sizeof(gl->mlabel), l->name);
        if (gl->down_until == NULL || gl->authz == NULL) {
            err_nomem(err);
            goto err;
        }
        if (gen_listener_tls(cfg, l, gl, err) != 0) {
            if (cfg->nlisteners > 1)
                err_prefix(err, "listener %s", l->name);
            goto err;
        }
    }
    /* gl->cfg points into cfg's listener array, which g->cfg shares: same memory. */
    g->cfg = *cfg;
    g->owns_cfg = take;
    if (take)
        memset(cfg, 0, sizeof(*cfg));
    atomic_init(&g->refs, 1);
    g->id = atomic_fetch_add(&next_id, 1);
    atomic_fetch_add(&gens_alive, 1);
    *out = g;
    return 0;
err:
    gen_destroy(g); /* owns_cfg is false: cfg still belongs to the caller */
    return -1;
}

/* Build a generation that takes cfg; see proxy_int.h. */
int
gen_build(struct proxy_cfg *cfg, struct gen **out, struct duet_err *err)
{
    return gen_make(cfg, true, out, err);
}

/* The current generation, referenced; see proxy_int.h. */
struct gen *
gen_current(struct proxy *px)
{
    struct gen *g;

    pthread_mutex_lock(&px->lock);
    g = px->gen;
    gen_ref(g);
    pthread_mutex_unlock(&px->lock);
    return g;
}

/* Generations not yet freed; see proxy_int.h. */
long
gen_alive(void)
{
    return atomic_load(&gens_alive);
}

/* Whether a reload replaced g; see proxy_int.h. */
bool
gen_retired(struct proxy *px, const struct gen *g)
{
    bool retired;

    pthread_mutex_lock(&px->lock);
    retired = px->gen != g;
    pthread_mutex_unlock(&px->lock);
    return retired;
}

/* Build every TLS context of a configuration without serving: `--check`. */
int
proxy_check(const struct proxy_cfg *cfg, struct duet_err *err)
{
    struct proxy_cfg borrowed = *cfg;
    struct gen *g = NULL;

    if (gen_make(&borrowed, false, &g, err) != 0)
        return -1;
    gen_destroy(g);
    return 0;
}
