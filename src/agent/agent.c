/* SPDX-License-Identifier: Apache-2.0 */
/*
 * agent.c - the lifecycle of the certificates `duet agent` keeps: trust
 * bootstrapped from the configured root fingerprint, enrollment with a
 * one-time token, renewal over mTLS, atomic installation, reload hooks, the
 * CRL and roots kept fresh, and the schedule that ties them together.
 *
 * Trust: the roots are fetched once without verifying the server (there is
 * nothing to verify it with yet), and kept only when one of them has the
 * configured SHA-256 fingerprint; that root alone is then the trust anchor of
 * every later connection, checked by the one verification path (lib/tls.h)
 * with the CA's host name.  Nothing else is sent before that check.
 *
 * Files: what the CA issued is kept in the state directory before the live
 * files are written (install.c), so that a certificate the CA issued is never
 * lost; the next run installs a pending one before asking the CA for
 * anything.  A live file is never deleted, whatever the CA answers.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "agent/agent.h"
#include "lib/fileio.h"
#include "lib/load.h"
#include "lib/pemout.h"
#include "lib/tls.h"
#include "lib/verify.h"
#include "lib/x509util.h"
#include "util/log.h"
#include "util/notify.h"

#define HTTP_TIMEOUT 15
#define HOOK_TIMEOUT_MS 60000

/* One certificate while the agent runs. */
struct cstate {
    const struct agent_cert_cfg *c;
    int64_t next;     /* when to act next (daemon) */
    unsigned attempt; /* failures in a row */
};

struct agent {
    const struct agent_cfg *cfg;
    const struct agent_run_opts *opts;
    char *root_path; /* STATE_DIR/root.pem: the only trust anchor */
    SSL_CTX *ctx;    /* verifies the CA against root_path; no client certificate */
    size_t url;      /* the URL that answered last */
};

static volatile sig_atomic_t stop_signal;
static volatile sig_atomic_t wake_signal;

static void
on_stop(int sig)
{
    stop_signal = sig;
}

/* SIGHUP: refresh the CRL and roots files now. */
static void
on_wake(int sig)
{
    wake_signal = sig;
}

static int64_t
now_s(void)
{
    return (int64_t)time(NULL);
}

static uint64_t
rnd64(void)
{
    uint64_t v = 0;

    if (RAND_bytes((unsigned char *)&v, sizeof(v)) != 1)
        v = (uint64_t)now_s() * 2654435761u;
    return v;
}

static char *
path_join(const char *dir, const char *name, const char *ext)
{
    char *p = NULL;

    if (asprintf(&p, "%s/%s%s", dir, name, ext) < 0)
        return NULL;
    return p;
}

/* Whether path does not exist (also when a component of it is not a directory). */
static bool
missing(const char *path)
{
    return access(path, F_OK) != 0 && (errno == ENOENT || errno == ENOTDIR);
}

/* STATE_DIR/NAME.pending.pem: what the CA issued until it is installed (install.c). */
static char *
pending_path(const struct agent_cfg *cfg, const struct agent_cert_cfg *c)
{
    return path_join(cfg->state_dir, c->name, ".pending.pem");
}

/* --- what a certificate file holds --- */

struct certinfo {
    char serial[128];
    int64_t not_before, not_after;
    int64_t renew_after; /* from the state file when it names this serial, else 0 */
};

/* Read the first certificate of path; -1 when it is missing or unreadable (err says which). */
static int
cert_read(const char *path, X509 **out, struct duet_err *err)
{
    STACK_OF(X509) *certs = NULL;

    *out = NULL;
    if (load_certs_file(path, NULL, &certs, err) != 0)
        return -1;
    *out = sk_X509_shift(certs);
    OSSL_STACK_OF_X509_free(certs);
    return 0;
}

static int
info_of(X509 *x, struct certinfo *ci, struct duet_err *err)
{
    char *serial = x509u_serial(X509_get0_serialNumber(x));

    memset(ci, 0, sizeof(ci[0]));
    if (serial == NULL)
        return err_nomem(err);
    snprintf(ci->serial, sizeof(ci->serial), "%s", serial);
    free(serial);
    if (!x509u_time(X509_get0_notBefore(x), &ci->not_before) ||
        !x509u_time(X509_get0_notAfter(x), &ci->not_after))
        return err_set(err, DUET_ERR_INPUT, "a certificate validity cannot be read");
    return 0;
}

/*
 * The state file STATE_DIR/NAME.json, of the last issuance: {"serial",
 * "renew_after", "event"} and, for an enrollment with a token file,
 * "token_file" (deleted once the certificate is installed).  It is written as
 * soon as the CA has issued, before the certificate is installed.  Returns the
 * parsed file when it names `serial` (json_decref), else NULL.
 */
static json_t *
state_get(const struct agent_cfg *cfg, const struct agent_cert_cfg *c, const char *serial)
{
    char *p = path_join(cfg->state_dir, c->name, ".json");
    json_t *j = p != NULL ? json_load_file(p, 0, NULL) : NULL;
    const char *s = json_string_value(json_object_get(j, "serial"));

    free(p);
    if (s == NULL || strcmp(s, serial) != 0) {
        json_decref(j);
        return NULL;
    }
    return j;
}

static void
state_read(const struct agent_cfg *cfg, const struct agent_cert_cfg *c, struct certinfo *ci)
{
    json_t *j = state_get(cfg, c, ci->serial);
    const char *ra = json_string_value(json_object_get(j, "renew_after"));
    int64_t t = 0;

    if (ra != NULL && x509u_parse_time(ra, &t))
        ci->renew_after = t;
    json_decref(j);
}

static int
state_write(const struct agent_cfg *cfg, const struct agent_cert_cfg *c, const char *serial,
            int64_t renew_after, const char *event, const char *token_file, struct duet_err *err)
{
    char *p = path_join(cfg->state_dir, c->name, ".json");
    char ra[40];
    json_t *j;
    char *text = NULL;
    int rc = -1;

    x509u_fmt_rfc3339(renew_after, ra, sizeof(ra));
    j = json_pack("{s:s, s:s, s:s}", "serial", serial, "renew_after", ra, "event", event);
    if (j != NULL && token_file != NULL)
        json_object_set_new(j, "token_file", json_string(token_file));
    if (p == NULL || j == NULL || (text = json_dumps(j, JSON_COMPACT)) == NULL) {
        err_nomem(err);
        goto out;
    }
    rc = fileio_write_atomic(p, (const uint8_t *)text, strlen(text), 0644, err);
out:
    free(text);
    json_decref(j);
    free(p);
    return rc;
}

/* The certificate's current state; -1 when its file is missing or unreadable. */
static int
cert_current(const struct agent_cfg *cfg, const struct agent_cert_cfg *c, struct certinfo *ci,
             struct duet_err *err)
{
    X509 *x = NULL;
    int rc;

    if (cert_read(c->cert, &x, err) != 0)
        return -1;
    rc = info_of(x, ci, err);
    X509_free(x);
    if (rc == 0)
        state_read(cfg, c, ci);
    return rc;
}

/* --- logging --- */

static void
log_cert(const char *level, const char *event, const struct agent_cert_cfg *c, const char *error,
         json_t *extra)
{
    json_t *f = extra != NULL ? extra : json_object();
    struct certinfo ci;
    struct duet_err e;
    X509 *x = NULL;

    json_object_set_new(f, "certificate", json_string(c->name));
    if (cert_read(c->cert, &x, &e) == 0 && info_of(x, &ci, &e) == 0) {
        json_object_set_new(f, "serial", json_string(ci.serial));
        json_object_set_new(f, "seconds_left", json_integer(ci.not_after - now_s()));
    }
    X509_free(x);
    if (error != NULL)
        json_object_set_new(f, "error", json_string(error));
    log_event(level, event, f);
}

/* --- talking to the CA --- */

/*
 * One request to the CA, trying each configured URL from the one that
 * answered last.  A URL that gives an HTTP answer ends the search, unless
 * the answer is a server error (5xx: a node that lost its database, a load
 * balancer with no node behind it) and another URL is left: then the next
 * one is tried, and the first server error is the answer only when no URL
 * gives a better one.  A server error commits nothing on a duet CA node, so
 * asking another node is safe.
 */
static int
ca_request(struct agent *a, SSL_CTX *ctx, bool verify, const char *method, const char *path,
           const char *json, struct agent_resp *r, struct duet_err *err)
{
    struct duet_err first;
    struct agent_resp failed = {0}; /* the first server error, kept while others are tried */
    size_t failed_url = 0;
    bool have_failed = false;

    err_clear(&first);
    for (size_t i = 0; i < a->cfg->nurls; i++) {
        size_t u = (a->url + i) % a->cfg->nurls;
        if (agent_https(ctx, verify, &a->cfg->urls[u], method, path, json, HTTP_TIMEOUT, r, err) ==
            0) {
            if (r->status >= 500 && r->status <= 599) {
                if (!have_failed) {
                    failed = *r;
                    failed_url = u;
                    have_failed = true;
                    memset(r, 0, sizeof(*r));
                } else {
                    agent_resp_clear(r);
                }
                continue;
            }
            agent_resp_clear(&failed);
            a->url = u;
            return 0;
        }
        if (i == 0)
            first = *err;
    }
    if (have_failed) {
        *r = failed;
        a->url = failed_url;
        return 0;
    }
    if (a->cfg->nurls > 1) {
        *err = first;
        err_prefix(err, "no CA URL answered");
    }
    return -1;
}

/* Turn an error answer {"error", "detail"} into a sentence, with the fix where there is one. */
static int
api_refusal(const struct agent_resp *r, const char *what, struct duet_err *err)
{
    json_t *j = json_loads(r->body != NULL ? r->body : "", 0, NULL);
    const char *code = json_string_value(json_object_get(j, "error"));
    const char *detail = json_string_value(json_object_get(j, "detail"));
    const char *hint = "";

    if (r->status == 409 && code != NULL && strcmp(code, "already_renewed") == 0)
        hint = "; this certificate was renewed already by another request: enroll again with a "
               "new token (duet ca token)";
    else if (r->status == 401 && strcmp(what, "renewal") == 0)
        hint = "; the CA no longer accepts this certificate (expired, revoked or from another CA): "
               "enroll again with a new token (duet ca token)";
    else if (r->status == 403 && code != NULL && strcmp(code, "token_refused") == 0)
        hint = "; make a new token with duet ca token";
    err_set(err, DUET_ERR_INVALID, "the CA refused the %s: HTTP %d %s: %s%s", what, r->status,
            code != NULL ? code : "(no error code)", detail != NULL ? detail : "(no detail)", hint);
    json_decref(j);
    return -1;
}

/* Bootstrap (see the top of the file): root_path holds the configured root, a->ctx trusts it. */
static int
bootstrap(struct agent *a, struct duet_err *err)
{
    const struct agent_cfg *cfg = a->cfg;
    STACK_OF(X509) *certs = NULL;
    X509 *root = NULL;
    SSL_CTX *anon = NULL;
    struct agent_resp r;
    struct tls_opts o;
    char *seen = NULL;
    int rc = -1;

    memset(&r, 0, sizeof(r));
    if (a->ctx != NULL)
        return 0;
    if (load_certs_file(a->root_path, NULL, &certs, err) == 0) {
        char *fp = x509u_fingerprint(sk_X509_value(certs, 0));
        bool ok = fp != NULL && strcmp(fp, cfg->root_fingerprint) == 0;
        free(fp);
        OSSL_STACK_OF_X509_free(certs);
        certs = NULL;
        if (ok)
            goto trust;
    }
    /* Nothing to verify the server with yet: the fingerprint check below is the trust. */
    if ((anon = SSL_CTX_new(TLS_client_method())) == NULL) {
        err_set_ssl(err, DUET_ERR_INTERNAL, "cannot make a TLS context");
        goto out;
    }
    SSL_CTX_set_verify(anon, SSL_VERIFY_NONE, NULL);
    if (ca_request(a, anon, false, "GET", "/roots.pem", NULL, &r, err) != 0)
        goto out;
    if (r.status != 200) {
        err_set(err, DUET_ERR_INPUT, "%s/roots.pem: HTTP %d; expected the CA's roots",
                cfg->urls[a->url].text, r.status);
        goto out;
    }
    if (load_certs_mem("roots.pem", (const uint8_t *)r.body, r.len, NULL, &certs, err) != 0)
        goto out;
    for (int i = 0; i < sk_X509_num(certs) && root == NULL; i++) {
        char *fp = x509u_fingerprint(sk_X509_value(certs, i));
        if (fp != NULL && strcmp(fp, cfg->root_fingerprint) == 0)
            root = sk_X509_value(certs, i);
        if (seen == NULL)
            seen = fp;
        else
            free(fp);
    }
    if (root == NULL) {
        err_set(err, DUET_ERR_INVALID,
                "%s: the CA's root has SHA-256 fingerprint %s, but root_fingerprint is %s: "
                "refusing to trust it (check the fingerprint with `duet ca roots` on the CA, or "
                "whether something sits between this host and the CA)",
                cfg->urls[a->url].text, seen != NULL ? seen : "(none)", cfg->root_fingerprint);
        goto out;
    }
    if (pemout_certs(a->root_path, &root, 1, NULL, err) != 0)
        goto out;
    log_event(
        "info", "agent_bootstrap",
        json_pack("{s:s, s:s}", "root_sha256", cfg->root_fingerprint, "stored", a->root_path));
trust:
    memset(&o, 0, sizeof(o));
    o.ca_file = a->root_path;
    if (tls_client_ctx_new(&o, &a->ctx, NULL, err) != 0)
        goto out;
    rc = 0;
out:
    free(seen);
    agent_resp_clear(&r);
    OSSL_STACK_OF_X509_free(certs);
    SSL_CTX_free(anon);
    return rc;
}

/*
 * Read an issuance answer (enroll and renew answer alike) and check it: the
 * certificate certifies `key`'s public key and verifies against our root with
 * the chain given.  *renew_after: when to renew it.
 */
static int
issued_parse(struct agent *a, const struct agent_resp *r, EVP_PKEY *key, struct agent_issued *is,
             int64_t *renew_after, struct duet_err *err)
{
    json_t *j = json_loads(r->body, 0, NULL);
    const char *pem = json_string_value(json_object_get(j, "certificate"));
    const char *chain = json_string_value(json_object_get(j, "chain"));
    const char *ra = json_string_value(json_object_get(j, "renew_after"));
    STACK_OF(X509) *certs = NULL;
    STACK_OF(X509) *anchors = NULL;
    X509_STORE *store = NULL;
    struct verify_params vp;
    struct certinfo ci;
    int rc = -1;

    memset(is, 0, sizeof(*is));
    if (pem == NULL) {
        err_set(err, DUET_ERR_INPUT, "the CA's answer has no certificate");
        goto out;
    }
    if (load_certs_mem("certificate", (const uint8_t *)pem, strlen(pem), NULL, &certs, err) != 0)
        goto out;
    is->leaf = sk_X509_shift(certs);
    is->chain = certs;
    certs = NULL;
    if (chain != NULL && chain[0] != '\0') {
        if (load_certs_mem("chain", (const uint8_t *)chain, strlen(chain), NULL, &certs, err) != 0)
            goto out;
        /* The chain given apart replaces what followed the leaf. */
        OSSL_STACK_OF_X509_free(is->chain);
        is->chain = certs;
        certs = NULL;
    }
    if (X509_check_private_key(is->leaf, key) != 1) {
        err_set(err, DUET_ERR_INVALID,
                "the CA issued a certificate for another key; not installed");
        goto out;
    }
    if (load_certs_file(a->root_path, NULL, &anchors, err) != 0 ||
        (store = X509_STORE_new()) == NULL ||
        !X509_STORE_add_cert(store, sk_X509_value(anchors, 0))) {
        if (store == NULL)
            err_nomem(err);
        goto out;
    }
    memset(&vp, 0, sizeof(vp));
    vp.store = store;
    vp.untrusted = is->chain;
    vp.purpose = DUET_PURPOSE_ANY;
    if (verify_chain(&vp, is->leaf, NULL, NULL, err) != 0) {
        err_prefix(err, "the certificate the CA issued does not verify against its root");
        goto out;
    }
    if (info_of(is->leaf, &ci, err) != 0)
        goto out;
    snprintf(is->serial, sizeof(is->serial), "%s", ci.serial);
    if (ra == NULL || !x509u_parse_time(ra, renew_after))
        *renew_after = 0;
    *renew_after = agent_renew_base(ci.not_before, ci.not_after, *renew_after);
    rc = 0;
out:
    OSSL_STACK_OF_X509_free(certs);
    OSSL_STACK_OF_X509_free(anchors);
    X509_STORE_free(store);
    json_decref(j);
    return rc;
}

/*
 * A CSR for key with an empty subject (the token or the presented certificate
 * binds the names) and, when sans are given, a subjectAltName request built
 * as GENERAL_NAMEs: the CA signs only what the token allows and refuses a
 * name beyond it.
 */
static char *
csr_pem(EVP_PKEY *key, const struct profile_san *sans, size_t nsans, struct duet_err *err)
{
    X509_REQ *req = X509_REQ_new();
    BIO *b = BIO_new(BIO_s_mem());
    const EVP_MD *md = EVP_PKEY_get_id(key) == EVP_PKEY_ED25519 ? NULL : x509u_sha256();
    GENERAL_NAMES *gens = NULL;
    STACK_OF(X509_EXTENSION) *exts = NULL;
    char *out = NULL;
    char *data;
    long len;

    if (req == NULL || b == NULL || !X509_REQ_set_version(req, 0) ||
        !X509_REQ_set_pubkey(req, key)) {
        err_set_ssl(err, DUET_ERR_INTERNAL, "cannot make a certificate request");
        goto out;
    }
    if (nsans > 0) {
        X509_EXTENSION *ext = NULL;
        if ((gens = GENERAL_NAMES_new()) == NULL || (exts = sk_X509_EXTENSION_new_null()) == NULL) {
            err_nomem(err);
            goto out;
        }
        for (size_t i = 0; i < nsans; i++) {
            GENERAL_NAME *g = profile_san_to_name(&sans[i]);
            if (g == NULL || !sk_GENERAL_NAME_push(gens, g)) {
                GENERAL_NAME_free(g);
                err_nomem(err);
                goto out;
            }
        }
        if ((ext = X509V3_EXT_i2d(NID_subject_alt_name, 0, gens)) == NULL ||
            !sk_X509_EXTENSION_push(exts, ext)) {
            X509_EXTENSION_free(ext);
            err_set_ssl(err, DUET_ERR_INTERNAL, "cannot encode the subjectAltName request");
            goto out;
        }
        if (!X509_REQ_add_extensions(req, exts)) {
            err_set_ssl(err, DUET_ERR_INTERNAL, "cannot add the subjectAltName request");
            goto out;
        }
    }
    if (!X509_REQ_sign(req, key, md) || !PEM_write_bio_X509_REQ(b, req)) {
        err_set_ssl(err, DUET_ERR_INTERNAL, "cannot make a certificate request");
        goto out;
    }
    len = BIO_get_mem_data(b, &data);
    if ((out = strndup(data, (size_t)len)) == NULL)
        err_nomem(err);
out:
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    GENERAL_NAMES_free(gens);
    BIO_free(b);
    X509_REQ_free(req);
    return out;
}

/* Run the certificate's reload hook; a failing hook is logged, the certificate stays installed. */
static void
run_hook(const struct agent_cert_cfg *c)
{
    if (c->hook == AGENT_HOOK_EXEC) {
        pid_t pid = fork();
        int status = 0, waited = 0;
        if (pid == 0) {
            execvp(c->hook_argv[0], c->hook_argv);
            _exit(127);
        }
        if (pid < 0) {
            log_cert("error", "agent_hook", c, strerror(errno), NULL);
            return;
        }
        while (waitpid(pid, &status, WNOHANG) == 0) {
            struct timespec ts = {0, 50 * 1000 * 1000};
            if ((waited += 50) > HOOK_TIMEOUT_MS) {
                kill(pid, SIGKILL);
                (void)waitpid(pid, &status, 0);
                log_cert("error", "agent_hook", c, "the hook ran longer than 60 s and was killed",
                         NULL);
                return;
            }
            nanosleep(&ts, NULL);
        }
        if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
            log_cert("info", "agent_hook", c, NULL, json_pack("{s:s}", "exec", c->hook_argv[0]));
        else
            log_cert("error", "agent_hook", c, "the hook failed",
                     json_pack("{s:s, s:i}", "exec", c->hook_argv[0], "status",
                               WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status)));
    } else if (c->hook == AGENT_HOOK_SIGNAL) {
        struct duet_err e;
        char *text = NULL;
        long pid;

        if (fileio_read_secret(c->pid_file, &text, &e) != 0) {
            log_cert("error", "agent_hook", c, e.msg, NULL);
            return;
        }
        pid = strtol(text, NULL, 10);
        fileio_free_secret(text);
        if (pid <= 1 || kill((pid_t)pid, c->hook_signal) != 0) {
            log_cert("error", "agent_hook", c,
                     pid <= 1 ? "the pid file holds no process id" : strerror(errno),
                     json_pack("{s:s}", "pid_file", c->pid_file));
            return;
        }
        log_cert(
            "info", "agent_hook", c, NULL,
            json_pack("{s:s, s:I}", "signal", strsignal(c->hook_signal), "pid", (json_int_t)pid));
    }
}

/*
 * Install what the CA issued (kept in `pending` when kept is true) into c's
 * files, then let the pending copy and a spent token file go, log `event` and
 * run the hook.  recovered: it comes from an earlier run's pending copy.
 */
static int
finish(const struct agent_cert_cfg *c, const struct agent_issued *is, const char *pending,
       bool kept, const char *token_file, const char *event, bool recovered,
       struct duet_err *err)
{
    if (agent_install(c, is, err) != 0) {
        struct duet_err e = *err;
        if (kept)
            err_set(err, e.kind,
                    "%s; the certificate the CA issued (serial %s) is kept in %s and the next run "
                    "installs it without asking the CA again",
                    e.msg, is->serial, pending);
        else
            err_set(err, e.kind,
                    "%s; the certificate the CA issued (serial %s) could be neither installed nor "
                    "kept in the state directory: enroll again with a new token",
                    e.msg, is->serial);
        return -1;
    }
    if (unlink(pending) != 0 && errno != ENOENT)
        log_cert("warn", "agent_pending", c, strerror(errno), json_pack("{s:s}", "file", pending));
    if (token_file != NULL && unlink(token_file) != 0 && errno != ENOENT)
        log_cert("warn", "agent_token", c, strerror(errno),
                 json_pack("{s:s}", "token_file", token_file));
    log_cert("info", event, c, NULL, json_pack("{s:b}", "pending", recovered));
    run_hook(c);
    return 0;
}

/*
 * The CA has issued `is` for c: nothing may lose it now.  The state file and
 * the pending copy first (a failure there is logged, and installing goes on),
 * then the live files.
 */
static int
commit(struct agent *a, const struct agent_cert_cfg *c, const struct agent_issued *is,
       int64_t renew_after, const char *event, const char *token_file, struct duet_err *err)
{
    char *pending = pending_path(a->cfg, c);
    struct duet_err e;
    bool kept = false;
    int rc;

    if (pending == NULL)
        return err_nomem(err);
    if (state_write(a->cfg, c, is->serial, renew_after, event, token_file, &e) != 0)
        log_cert("warn", "agent_state", c, e.msg, NULL);
    if (agent_pending_write(pending, is, &e) != 0)
        log_cert("warn", "agent_pending", c, e.msg, json_pack("{s:s}", "file", pending));
    else
        kept = true;
    rc = finish(c, is, pending, kept, token_file, event, false, err);
    free(pending);
    return rc;
}

/*
 * Install what an earlier run kept in the state directory (the CA issued it,
 * the live files could not be written then).  *found tells whether there was
 * anything; an unusable pending copy is an error naming it.
 */
static int
install_pending(struct agent *a, const struct agent_cert_cfg *c, bool *found,
                struct duet_err *err)
{
    char *pending = pending_path(a->cfg, c);
    struct agent_issued is;
    json_t *st = NULL;
    const char *event, *tf;
    int rc = -1;

    *found = false;
    if (pending == NULL)
        return err_nomem(err);
    rc = agent_pending_read(pending, c->key, &is, err);
    if (rc <= 0)
        goto out;
    *found = true;
    st = state_get(a->cfg, c, is.serial);
    event = json_string_value(json_object_get(st, "event"));
    if (event == NULL ||
        (strcmp(event, "agent_enrolled") != 0 && strcmp(event, "agent_renewed") != 0))
        event = missing(c->cert) ? "agent_enrolled" : "agent_renewed";
    /* The token file named when it was spent, and only the configured one. */
    tf = json_string_value(json_object_get(st, "token_file"));
    if (tf != NULL && (c->token_file == NULL || strcmp(tf, c->token_file) != 0))
        tf = NULL;
    rc = finish(c, &is, pending, true, tf, event, true, err);
out:
    json_decref(st);
    agent_issued_clear(&is);
    free(pending);
    return rc;
}

/* Enroll c: a new key, a CSR, the token; see the top of the file. */
static int
enroll(struct agent *a, const struct agent_cert_cfg *c, const char *token_arg, struct duet_err *err)
{
    EVP_PKEY *key = NULL;
    char *csr = NULL, *token = NULL, *body = NULL;
    struct agent_resp r;
    struct agent_issued is;
    int64_t renew_after = 0;
    json_t *req = NULL;
    int rc = -1;

    memset(&r, 0, sizeof(r));
    memset(&is, 0, sizeof(is));
    if (access(c->key, F_OK) == 0) {
        err_set(err, DUET_ERR_INPUT,
                "%s exists without its certificate %s: not replaced; move it away to enroll",
                c->key, c->cert);
        goto out;
    }
    if (token_arg != NULL) {
        if ((token = strdup(token_arg)) == NULL) {
            err_nomem(err);
            goto out;
        }
    } else if (c->token_file == NULL) {
        err_set(err, DUET_ERR_INPUT,
                "no certificate yet and no token: give --token or token_file (duet ca token on "
                "the CA)");
        goto out;
    } else if (fileio_read_secret(c->token_file, &token, err) != 0) {
        goto out;
    }
    if (bootstrap(a, err) != 0)
        goto out;
    if ((key = ca_key_generate(c->key_type, err)) == NULL ||
        (csr = csr_pem(key, c->sans, c->nsans, err)) == NULL)
        goto out;
    req = json_pack("{s:s, s:s}", "token", token, "csr", csr);
    if (req == NULL || (body = json_dumps(req, JSON_COMPACT)) == NULL) {
        err_nomem(err);
        goto out;
    }
    if (ca_request(a, a->ctx, true, "POST", "/v1/enroll", body, &r, err) != 0)
        goto out;
    if (r.status != 200) {
        api_refusal(&r, "enrollment", err);
        goto out;
    }
    if (issued_parse(a, &r, key, &is, &renew_after, err) != 0)
        goto out;
    is.newkey = key;
    key = NULL;
    if (commit(a, c, &is, renew_after, "agent_enrolled", token_arg == NULL ? c->token_file : NULL,
               err) != 0)
        goto out;
    rc = 0;
out:
    if (body != NULL)
        OPENSSL_cleanse(body, strlen(body));
    free(body);
    json_decref(req);
    if (token != NULL)
        OPENSSL_cleanse(token, strlen(token));
    free(token);
    free(csr);
    EVP_PKEY_free(key);
    agent_issued_clear(&is);
    agent_resp_clear(&r);
    return rc;
}

/* Renew c over mTLS with its current certificate and key (a new key with rekey). */
static int
renew(struct agent *a, const struct agent_cert_cfg *c, struct duet_err *err)
{
    SSL_CTX *mtls = NULL;
    EVP_PKEY *cur = NULL, *newkey = NULL;
    char *csr = NULL, *body = NULL;
    struct agent_resp r;
    struct agent_issued is;
    struct tls_opts o;
    int64_t renew_after = 0;
    int rc = -1;

    memset(&r, 0, sizeof(r));
    memset(&is, 0, sizeof(is));
    if (bootstrap(a, err) != 0)
        goto out;
    memset(&o, 0, sizeof(o));
    o.cert_file = c->cert;
    o.key_file = c->key;
    o.ca_file = a->root_path;
    if (tls_client_ctx_new(&o, &mtls, NULL, err) != 0)
        goto out;
    if (c->rekey) {
        json_t *j;
        if ((newkey = ca_key_generate(c->key_type, err)) == NULL ||
            (csr = csr_pem(newkey, NULL, 0, err)) == NULL)
            goto out;
        j = json_pack("{s:s}", "csr", csr);
        body = j != NULL ? json_dumps(j, JSON_COMPACT) : NULL;
        json_decref(j);
    } else {
        body = strdup("{}");
    }
    if (body == NULL) {
        err_nomem(err);
        goto out;
    }
    if (ca_request(a, mtls, true, "POST", "/v1/renew", body, &r, err) != 0)
        goto out;
    if (r.status != 200) {
        api_refusal(&r, "renewal", err);
        goto out;
    }
    if (newkey == NULL && load_key_file(c->key, NULL, &cur, err) != 0)
        goto out;
    if (issued_parse(a, &r, newkey != NULL ? newkey : cur, &is, &renew_after, err) != 0)
        goto out;
    is.newkey = newkey;
    newkey = NULL;
    if (commit(a, c, &is, renew_after, "agent_renewed", NULL, err) != 0)
        goto out;
    rc = 0;
out:
    free(body);
    free(csr);
    EVP_PKEY_free(cur);
    EVP_PKEY_free(newkey);
    SSL_CTX_free(mtls);
    agent_issued_clear(&is);
    agent_resp_clear(&r);
    return rc;
}

/*
 * The CA certificates for checking a CRL: the pinned root (*root) and what
 * follows the leaf in the certificate file and the chain file (*chain); when
 * the host has none yet, the CA's GET /chain.pem over the verified connection.
 * issuers_of in crlcheck.c keeps only those that verify against the root.
 */
static int
crl_issuers(struct agent *a, const struct agent_cert_cfg *c, X509 **root, STACK_OF(X509) **chain,
            struct duet_err *err)
{
    STACK_OF(X509) *anchors = NULL;
    const char *files[2] = {c->cert, c->chain};

    *root = NULL;
    if ((*chain = sk_X509_new_null()) == NULL)
        return err_nomem(err);
    if (load_certs_file(a->root_path, NULL, &anchors, err) != 0)
        return -1;
    *root = sk_X509_shift(anchors);
    OSSL_STACK_OF_X509_free(anchors);
    for (size_t f = 0; f < 3; f++) {
        STACK_OF(X509) *certs = NULL;
        struct agent_resp r;
        struct duet_err e;

        memset(&r, 0, sizeof(r));
        if (f < 2 && (files[f] == NULL || missing(files[f]) ||
                      load_certs_file(files[f], NULL, &certs, &e) != 0))
            continue;
        if (f == 2 && (sk_X509_num(*chain) > 0 ||
                       ca_request(a, a->ctx, true, "GET", "/chain.pem", NULL, &r, &e) != 0 ||
                       r.status != 200 ||
                       load_certs_mem("/chain.pem", (const uint8_t *)r.body, r.len, NULL, &certs,
                                      &e) != 0)) {
            agent_resp_clear(&r);
            continue;
        }
        agent_resp_clear(&r);
        if (f == 0)
            X509_free(sk_X509_shift(certs));
        while (sk_X509_num(certs) > 0) {
            X509 *x = sk_X509_shift(certs);
            if (!sk_X509_push(*chain, x))
                X509_free(x);
        }
        OSSL_STACK_OF_X509_free(certs);
    }
    return 0;
}

/* Fetch one distribution file (/crl.pem, /roots.pem) into path after checking what it is. */
static int
refresh_file(struct agent *a, const struct agent_cert_cfg *c, const char *urlpath,
             const char *path, bool crl, struct duet_err *err)
{
    struct agent_resp r;
    STACK_OF(X509) *certs = NULL;
    X509 *root = NULL;
    int rc = -1;

    memset(&r, 0, sizeof(r));
    if (ca_request(a, a->ctx, true, "GET", urlpath, NULL, &r, err) != 0)
        goto out;
    if (r.status != 200) {
        err_set(err, DUET_ERR_INPUT, "GET %s: HTTP %d", urlpath, r.status);
        goto out;
    }
    if (crl) {
        char label[64];
        struct duet_err e;
        snprintf(label, sizeof(label), "GET %s", urlpath);
        if (crl_issuers(a, c, &root, &certs, err) != 0)
            goto out;
        if (agent_crl_check(label, (const uint8_t *)r.body, r.len, root, certs, path, now_s(),
                            &e) != 0) {
            err_set(err, e.kind, "%s; %s kept as it was", e.msg, path);
            goto out;
        }
    } else {
        bool found = false;
        if (load_certs_mem(urlpath, (const uint8_t *)r.body, r.len, NULL, &certs, err) != 0)
            goto out;
        for (int i = 0; i < sk_X509_num(certs) && !found; i++) {
            char *fp = x509u_fingerprint(sk_X509_value(certs, i));
            found = fp != NULL && strcmp(fp, a->cfg->root_fingerprint) == 0;
            free(fp);
        }
        if (!found) {
            err_set(err, DUET_ERR_INVALID,
                    "GET %s: the configured root is not among them; %s kept as it was", urlpath,
                    path);
            goto out;
        }
    }
    rc = fileio_write_atomic(path, (const uint8_t *)r.body, r.len, 0644, err);
out:
    X509_free(root);
    OSSL_STACK_OF_X509_free(certs);
    agent_resp_clear(&r);
    return rc;
}

/* Whether a refresh target is missing or older than the refresh interval. */
static bool
stale(const struct agent_cfg *cfg, const char *path)
{
    struct stat st;

    return stat(path, &st) != 0 || now_s() - (int64_t)st.st_mtime >= cfg->refresh;
}

/* Refresh the CRL and roots files of every certificate; with only_stale, those stale only. */
static int
refresh_all(struct agent *a, bool only_stale, struct duet_err *err)
{
    int rc = 0;

    for (size_t i = 0; i < a->cfg->ncerts; i++) {
        const struct agent_cert_cfg *c = &a->cfg->certs[i];
        struct duet_err e;
        if (c->crl != NULL && (!only_stale || stale(a->cfg, c->crl)) &&
            (bootstrap(a, &e) != 0 || refresh_file(a, c, "/crl.pem", c->crl, true, &e) != 0)) {
            log_cert("warn", "agent_refresh_failed", c, e.msg, json_pack("{s:s}", "file", c->crl));
            *err = e;
            rc = -1;
        }
        if (c->roots != NULL && (!only_stale || stale(a->cfg, c->roots)) &&
            (bootstrap(a, &e) != 0 || refresh_file(a, c, "/roots.pem", c->roots, false, &e) != 0)) {
            log_cert("warn", "agent_refresh_failed", c, e.msg,
                     json_pack("{s:s}", "file", c->roots));
            *err = e;
            rc = -1;
        }
    }
    return rc;
}

/*
 * Act on one certificate: install what an earlier run kept pending, else
 * enroll when it has no certificate file, renew when past its renewal time.
 * *acted tells whether anything was due.
 */
static int
act(struct agent *a, const struct agent_cert_cfg *c, const char *token, bool *acted,
    struct duet_err *err)
{
    struct certinfo ci;
    struct duet_err e;

    *acted = false;
    if (install_pending(a, c, acted, err) != 0) {
        *acted = true;
        return -1;
    }
    if (*acted)
        return 0;
    if (missing(c->cert)) {
        *acted = true;
        return enroll(a, c, token, err);
    }
    if (cert_current(a->cfg, c, &ci, &e) != 0) {
        *acted = true;
        *err = e;
        return -1;
    }
    if (now_s() < agent_renew_base(ci.not_before, ci.not_after, ci.renew_after))
        return 0;
    *acted = true;
    return renew(a, c, err);
}

/* The token --token gives, for the one certificate that needs enrolling. */
static int
token_for(const struct agent_cfg *cfg, const char *token, const char **out, struct duet_err *err)
{
    size_t n = 0;

    *out = NULL;
    if (token == NULL)
        return 0;
    for (size_t i = 0; i < cfg->ncerts; i++)
        n += missing(cfg->certs[i].cert);
    if (n > 1)
        return err_set(err, DUET_ERR_INPUT,
                       "--token is for one certificate, and %zu need enrolling: give each a "
                       "token_file",
                       n);
    *out = token;
    return 0;
}

static int
run_once(struct agent *a, struct duet_err *err)
{
    int rc = 0;

    for (size_t i = 0; i < a->cfg->ncerts; i++) {
        const struct agent_cert_cfg *c = &a->cfg->certs[i];
        const char *token = NULL;
        struct duet_err e;
        bool acted = false;

        if (token_for(a->cfg, a->opts->token, &token, &e) != 0 ||
            act(a, c, token, &acted, &e) != 0) {
            log_cert("error", "agent_failed", c, e.msg, NULL);
            *err = e;
            rc = -1;
        } else if (!acted) {
            log_cert("info", "agent_nothing_due", c, NULL, NULL);
        }
    }
    {
        struct duet_err e;
        if (refresh_all(a, true, &e) != 0) {
            if (rc == 0)
                *err = e;
            rc = -1;
        }
    }
    return rc;
}

/* The time of the next action on c after a success (renewal time with jitter). */
static int64_t
next_renewal(const struct agent *a, const struct agent_cert_cfg *c)
{
    struct certinfo ci;
    struct duet_err e;

    if (cert_current(a->cfg, c, &ci, &e) != 0)
        return now_s();
    return agent_renew_time(ci.not_before, ci.not_after, ci.renew_after, rnd64());
}

static void
sleep_until(int64_t t)
{
    while (!stop_signal && !wake_signal && now_s() < t) {
        struct timespec ts = {0, 250 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

static int
run_daemon(struct agent *a, struct duet_err *err)
{
    const struct agent_cfg *cfg = a->cfg;
    struct cstate *cs = calloc(cfg->ncerts, sizeof(*cs));
    int64_t refresh_next = 0;
    unsigned refresh_attempt = 0;
    struct sigaction sa;

    if (cs == NULL)
        return err_nomem(err);
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_stop;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = on_wake;
    sigaction(SIGHUP, &sa, NULL);
    for (size_t i = 0; i < cfg->ncerts; i++) {
        char *pending = pending_path(cfg, &cfg->certs[i]);
        json_t *f;

        cs[i].c = &cfg->certs[i];
        if (pending != NULL && !missing(pending)) {
            /* An earlier run's issuance waits in the state directory: install it first. */
            cs[i].next = 0;
            f = json_pack("{s:s, s:s}", "action", "install_pending", "pending", pending);
        } else if (missing(cs[i].c->cert)) {
            cs[i].next = 0;
            f = json_pack("{s:s}", "action", "enroll");
        } else {
            int64_t in;
            cs[i].next = next_renewal(a, cs[i].c);
            in = cs[i].next - now_s();
            f = json_pack("{s:s, s:I}", "action", "renew", "renew_in",
                          (json_int_t)(in > 0 ? in : 0));
        }
        free(pending);
        log_cert("info", "agent_scheduled", cs[i].c, NULL, f);
    }
    log_event("info", "agent_started", json_pack("{s:i}", "certificates", (int)cfg->ncerts));
    if (notify_send("READY=1\nSTATUS=keeping certificates fresh") != 0)
        log_msg("warn", "agent_notify", "the service manager could not be told we are ready");
    while (!stop_signal) {
        int64_t next;
        if (wake_signal) {
            wake_signal = 0;
            refresh_next = 0;
            log_event("info", "agent_wake", json_pack("{s:s}", "signal", "SIGHUP"));
        }
        for (size_t i = 0; i < cfg->ncerts && !stop_signal; i++) {
            struct duet_err e;
            const char *token = NULL;
            bool acted = false;
            if (now_s() < cs[i].next)
                continue;
            if (token_for(cfg, a->opts->token, &token, &e) == 0 &&
                act(a, cs[i].c, token, &acted, &e) == 0) {
                cs[i].attempt = 0;
                cs[i].next = next_renewal(a, cs[i].c);
                continue;
            }
            if (e.kind == DUET_ERR_INVALID && a->ctx == NULL) {
                /* The CA's root is not the configured one: nothing can be trusted; stop. */
                log_cert("error", "agent_failed", cs[i].c, e.msg, NULL);
                *err = e;
                free(cs);
                return -1;
            }
            {
                int64_t d =
                    agent_backoff(cs[i].attempt++, cfg->backoff_min, cfg->backoff_max, rnd64());
                cs[i].next = now_s() + d;
                log_cert("warn", "agent_retry", cs[i].c, e.msg,
                         json_pack("{s:I, s:i}", "retry_in", (json_int_t)d, "attempt",
                                   (int)cs[i].attempt));
            }
        }
        if (!stop_signal && now_s() >= refresh_next) {
            struct duet_err e;
            if (refresh_all(a, false, &e) == 0) {
                refresh_attempt = 0;
                refresh_next = now_s() + cfg->refresh;
            } else {
                refresh_next = now_s() + agent_backoff(refresh_attempt++, cfg->backoff_min,
                                                       cfg->backoff_max, rnd64());
            }
        }
        next = refresh_next;
        for (size_t i = 0; i < cfg->ncerts; i++)
            next = cs[i].next < next ? cs[i].next : next;
        sleep_until(next);
    }
    (void)notify_send("STOPPING=1");
    log_event("info", "agent_stopped",
              json_pack("{s:s}", "signal", strsignal(stop_signal != 0 ? stop_signal : SIGTERM)));
    free(cs);
    return 0;
}

/* Run the agent; see agent.h. */
int
agent_run(const struct agent_cfg *cfg, const struct agent_run_opts *opts, struct duet_err *err)
{
    struct agent a;
    int rc = -1;

    memset(&a, 0, sizeof(a));
    a.cfg = cfg;
    a.opts = opts;
    if (mkdir(cfg->state_dir, 0700) != 0 && errno != EEXIST) {
        err_set(err, DUET_ERR_INPUT, "state_dir %s: %s", cfg->state_dir, strerror(errno));
        return -1;
    }
    if ((a.root_path = path_join(cfg->state_dir, "root", ".pem")) == NULL)
        return err_nomem(err);
    rc = opts->once ? run_once(&a, err) : run_daemon(&a, err);
    SSL_CTX_free(a.ctx);
    free(a.root_path);
    return rc;
}

/* Each certificate's state; see agent.h. */
int
agent_status(const struct agent_cfg *cfg, json_t **out, struct duet_err *err)
{
    json_t *arr = json_array();
    int64_t now = now_s();

    *out = NULL;
    if (arr == NULL)
        return err_nomem(err);
    for (size_t i = 0; i < cfg->ncerts; i++) {
        const struct agent_cert_cfg *c = &cfg->certs[i];
        json_t *o = json_pack("{s:s, s:s}", "name", c->name, "cert", c->cert);
        struct certinfo ci;
        struct duet_err e;

        if (o == NULL) {
            json_decref(arr);
            return err_nomem(err);
        }
        if (cert_current(cfg, c, &ci, &e) != 0) {
            json_object_set_new(
                o, "state",
                json_string(missing(c->cert) ? "not_enrolled" : "unreadable"));
            json_object_set_new(o, "error", json_string(e.msg));
        } else {
            char na[40], ra[40];
            int64_t at = agent_renew_base(ci.not_before, ci.not_after, ci.renew_after);
            x509u_fmt_rfc3339(ci.not_after, na, sizeof(na));
            x509u_fmt_rfc3339(at, ra, sizeof(ra));
            json_object_set_new(o, "state",
                                json_string(now >= ci.not_after ? "expired"
                                            : now >= at         ? "renewal_due"
                                                                : "valid"));
            json_object_set_new(o, "serial", json_string(ci.serial));
            json_object_set_new(o, "not_after", json_string(na));
            json_object_set_new(o, "renew_after", json_string(ra));
            json_object_set_new(o, "seconds_left", json_integer(ci.not_after - now));
        }
        {
            char *pending = pending_path(cfg, c);
            /* Issued and kept: the next run installs it without asking the CA. */
            if (pending != NULL && !missing(pending)) {
                json_object_set_new(o, "pending", json_string(pending));
                json_object_set_new(o, "state", json_string("install_pending"));
            }
            free(pending);
        }
        json_array_append_new(arr, o);
    }
    *out = arr;
    return 0;
}
