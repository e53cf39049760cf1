/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tls.c - server and client SSL_CTX construction for duet.
 *
 * Peer certificates are verified by verify_store_ctx() from
 * SSL_CTX_set_cert_verify_callback(), so a handshake accepts exactly what
 * `duet cert verify` accepts, and a refusal keeps the same sentence.  TLS 1.3
 * only by default, TLS 1.2 on request with AEAD ECDHE suites only; nothing
 * older.  A server context may issue session tickets; a session resumes only on
 * a context bound to the same listener, trust, CRLs, settings and policy (see
 * "Session binding"), and a resumed session is re-checked for expiry and
 * revocation (tls_check_resumed).
 */
#include "lib/tls.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "lib/fileio.h"
#include "lib/xfcc.h"
#include "lib/identity.h"
#include "lib/load.h"
#include "lib/verify.h"
#include "lib/x509util.h"

/* Verification data attached to an SSL_CTX; immutable after construction. */
/*
 * The verified-chain cache: a peer presenting a chain this context verified
 * before skips the chain's path validation (signatures, constraints, policy)
 * but never the handshake's proof of possession (CertificateVerify, checked by
 * libssl on every handshake).  A hit still checks time (the chain's validity
 * and the CRLs' nextUpdate) and looks every certificate up in the CRLs.  The
 * cache lives in the context, so a reload (new trust, CRLs, certificates)
 * starts with an empty one.  Direct-mapped and bounded; only successes are
 * kept, so refusals always carry the full reason.
 */
#define CHAIN_CACHE_SLOTS 4096

struct chain_entry {
    uint8_t key[32];
    int64_t valid_from;       /* the latest notBefore of the chain */
    int64_t valid_until;      /* the earliest notAfter, or CRL nextUpdate */
    STACK_OF(X509) *chain;    /* leaf first, trust anchor last */
    struct duet_identity *id; /* the leaf's identity, with its XFCC element, made once */
};

struct tls_trust {
    X509_STORE *store;
    struct revset *revs;
    enum duet_crl_scope scope;
    enum duet_purpose purpose;
    bool crl_expired_ok;
    bool expired_leaf_ok;
    pthread_mutex_t cache_lock;
    struct chain_entry *cache; /* CHAIN_CACHE_SLOTS, or NULL */
    bool bound;                /* server: binding holds the session binding digest */
    unsigned char binding[32];
};

/* Per-connection state: the failure sentence and category, the expected server name. */
struct tls_sslstate {
    char *reason;
    enum verify_fail fail; /* VERIFY_OK until a refusal */
    char *name;
    struct duet_identity *id; /* the verified leaf's identity from the chain cache, or NULL */
    X509 *presented;          /* the leaf of a chain verification refused, for the log */
};

/*
 * Ticket keys shared by several duet instances (RFC 5077 4's recommended
 * construction, as OpenSSL applies it): a 16-byte name, an AES-256-CBC key and
 * an HMAC-SHA256 key.  The first key of the file seals new tickets; all of
 * them open tickets, so keys can be rotated by putting the new one first.
 */
#define TICKET_KEY_BYTES 80
#define MAX_TICKET_KEYS TLS_MAX_TICKET_KEYS

struct ticket_key {
    unsigned char name[16];
    unsigned char aes[32];
    unsigned char hmac[32];
};

struct ticket_keys {
    struct ticket_key k[MAX_TICKET_KEYS];
    int n;
};

static int trust_idx = -1;
static int tkeys_idx = -1;
static int ssl_idx = -1;
static CRYPTO_ONCE idx_once = CRYPTO_ONCE_STATIC_INIT;

static void
trust_free_cb(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
    struct tls_trust *t = ptr;

    (void)parent;
    (void)ad;
    (void)idx;
    (void)argl;
    (void)argp;
    if (t == NULL)
        return;
    X509_STORE_free(t->store);
    revset_free(t->revs);
    for (size_t i = 0; t->cache != NULL && i < CHAIN_CACHE_SLOTS; i++) {
        OSSL_STACK_OF_X509_free(t->cache[i].chain);
        identity_free(t->cache[i].id);
    }
    free(t->cache);
    pthread_mutex_destroy(&t->cache_lock);
    free(t);
}

static void
sslstate_free_cb(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
    struct tls_sslstate *s = ptr;

    (void)parent;
    (void)ad;
    (void)idx;
    (void)argl;
    (void)argp;
    if (s == NULL)
        return;
    free(s->reason);
    free(s->name);
    identity_free(s->id);
    X509_free(s->presented);
    free(s);
}

static void
tkeys_free_cb(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
    (void)parent;
    (void)ad;
    (void)idx;
    (void)argl;
    (void)argp;
    if (ptr != NULL) {
        OPENSSL_cleanse(ptr, sizeof(struct ticket_keys));
        free(ptr);
    }
}

static void
idx_init(void)
{
    tkeys_idx = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, tkeys_free_cb);
    trust_idx = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, trust_free_cb);
    ssl_idx = SSL_get_ex_new_index(0, NULL, NULL, NULL, sslstate_free_cb);
}

static struct tls_sslstate *
sslstate(SSL *ssl)
{
    struct tls_sslstate *s = SSL_get_ex_data(ssl, ssl_idx);

    if (s == NULL && (s = calloc(1, sizeof(*s))) != NULL && !SSL_set_ex_data(ssl, ssl_idx, s)) {
        free(s);
        s = NULL;
    }
    return s;
}

/* The label of a metrics category; see tls.h. */
const char *
tls_fail_name(enum tls_fail f)
{
    static const char *const names[] = {"none",    "no_cert", "unknown_ca", "expired",
                                        "revoked", "purpose", "name",       "crl",
                                        "policy",  "name_constraints",      "other",
                                        "staple_revoked", "staple_missing", "staple_bad"};
    return (unsigned)f < TLS_FAIL_COUNT ? names[f] : "other";
}

/*
 * The metrics label of a verification category.  The labels are coarser than
 * the categories and are part of the metrics and log contract: a category
 * added to verify.h is "other" here until a label is agreed for it.
 */
enum tls_fail
tls_fail_of(enum verify_fail f)
{
    switch (f) {
    case VERIFY_OK:
        return TLS_FAIL_NONE;
    case VERIFY_UNKNOWN_CA:
        return TLS_FAIL_UNKNOWN_CA;
    case VERIFY_EXPIRED:
    case VERIFY_NOT_YET_VALID:
        return TLS_FAIL_EXPIRED;
    case VERIFY_REVOKED:
        return TLS_FAIL_REVOKED;
    case VERIFY_BAD_EKU:
    case VERIFY_LEAF_IS_CA:
        return TLS_FAIL_PURPOSE;
    case VERIFY_NAME_MISMATCH:
        return TLS_FAIL_NAME;
    case VERIFY_NAME_CONSTRAINTS:
        return TLS_FAIL_NAME_CONSTRAINTS;
    case VERIFY_CRL_MISSING:
    case VERIFY_CRL_STALE:
    case VERIFY_CRL_NOT_YET_VALID:
    case VERIFY_CRL_BAD_SIGNATURE:
        return TLS_FAIL_CRL;
    default:
        return TLS_FAIL_OTHER;
    }
}

static atomic_ulong chain_cache_hits;

unsigned long
tls_chain_cache_hits(void)
{
    return atomic_load(&chain_cache_hits);
}

/* SHA-256 over the expected name and the DER of every certificate presented. */
static bool
chain_key(X509_STORE_CTX *ctx, const char *name, uint8_t key[32])
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    STACK_OF(X509) *untrusted = X509_STORE_CTX_get0_untrusted(ctx);
    X509 *leaf = X509_STORE_CTX_get0_cert(ctx);
    unsigned int len = 0;
    bool ok = md != NULL && leaf != NULL && EVP_DigestInit_ex(md, x509u_sha256(), NULL);

    if (ok && name != NULL)
        ok = EVP_DigestUpdate(md, name, strlen(name) + 1);
    for (int i = -1; ok && i < (untrusted != NULL ? sk_X509_num(untrusted) : 0); i++) {
        X509 *x = i < 0 ? leaf : sk_X509_value(untrusted, i);
        uint8_t d[EVP_MAX_MD_SIZE];
        unsigned int dl = 0;
        if (i >= 0 && x == leaf)
            continue; /* the presented chain starts with the leaf itself */
        ok = X509_digest(x, x509u_sha256(), d, &dl) && EVP_DigestUpdate(md, d, dl);
    }
    ok = ok && EVP_DigestFinal_ex(md, key, &len) && len == 32;
    EVP_MD_CTX_free(md);
    return ok;
}

/* Whether a cached chain still holds now: time, and revocation as on a full check. */
static bool
chain_entry_holds(const struct tls_trust *t, const struct chain_entry *e, int64_t now)
{
    struct verify_params p;
    struct duet_err err;

    if (now < e->valid_from || now >= e->valid_until)
        return false;
    memset(&p, 0, sizeof(p));
    /*
     * The trusted certificates too: a CRL signed by another certificate of its
     * CA, or an indirect CRL's issuer, is found there as on the full check;
     * without them such a chain would be verified in full on every handshake.
     */
    p.store = t->store;
    p.revs = t->revs;
    p.crl_scope = t->scope;
    p.accept_expired_crl = t->crl_expired_ok;
    return verify_revocation(e->chain, &p, now, NULL, NULL, NULL, &err) == 0;
}

/*
 * Keep a verified chain, with the leaf's identity and XFCC element made once
 * for every later connection of the same client; returns another reference
 * to that identity for the connection at hand (NULL when it cannot be made).
 */
static struct duet_identity *
chain_cache_store(struct tls_trust *t, const uint8_t key[32], X509_STORE_CTX *ctx)
{
    STACK_OF(X509) *chain = X509_STORE_CTX_get1_chain(ctx);
    struct chain_entry e;
    struct duet_err err;
    int64_t v;

    if (chain == NULL)
        return NULL;
    memcpy(e.key, key, 32);
    e.valid_from = INT64_MIN;
    e.valid_until = INT64_MAX;
    e.chain = chain;
    e.id = NULL;
    if (identity_from_x509(sk_X509_value(chain, 0), &e.id, &err) == 0)
        e.id->xfcc = xfcc_element(e.id); /* before it is shared; NULL is fine */
    for (int i = 0; i < sk_X509_num(chain); i++) {
        X509 *x = sk_X509_value(chain, i);
        if (x509u_time(X509_get0_notBefore(x), &v) && v > e.valid_from)
            e.valid_from = v;
        if (!x509u_time(X509_get0_notAfter(x), &v))
            v = INT64_MIN;
        if (v < e.valid_until)
            e.valid_until = v;
    }
    for (size_t k = 0; !t->crl_expired_ok && k < revset_count(t->revs); k++) {
        v = revcrl_next_update(revset_get0(t->revs, k));
        if (v < e.valid_until)
            e.valid_until = v;
    }
    pthread_mutex_lock(&t->cache_lock);
    struct chain_entry *slot = &t->cache[(key[0] | (key[1] << 8)) % CHAIN_CACHE_SLOTS];
    OSSL_STACK_OF_X509_free(slot->chain);
    identity_free(slot->id);
    *slot = e;
    pthread_mutex_unlock(&t->cache_lock);
    return identity_up_ref(e.id);
}

/*
 * A cache hit that still holds; see the comment at struct chain_entry.  *id
 * gets a reference to the cached identity of the leaf, *chain a copy of the
 * verified chain (references taken; NULL when out of memory), which the
 * caller gives to the X509_STORE_CTX so that SSL_get0_verified_chain() says
 * what a full verification would (the tunnel checks its server's OCSP staple
 * against the issuer in it).
 */
static bool
chain_cache_hit(struct tls_trust *t, const uint8_t key[32], struct duet_identity **id,
                STACK_OF(X509) * *chain)
{
    int64_t now = (int64_t)time(NULL);
    bool hit = false;

    pthread_mutex_lock(&t->cache_lock);
    struct chain_entry *slot = &t->cache[(key[0] | (key[1] << 8)) % CHAIN_CACHE_SLOTS];
    if (slot->chain != NULL && memcmp(slot->key, key, 32) == 0)
        hit = chain_entry_holds(t, slot, now);
    if (hit) {
        *id = identity_up_ref(slot->id);
        *chain = X509_chain_up_ref(slot->chain);
    }
    pthread_mutex_unlock(&t->cache_lock);
    if (hit)
        atomic_fetch_add(&chain_cache_hits, 1);
    return hit;
}

/* Give the connection's state the verified leaf's identity (taking the reference). */
static void
sslstate_set0_identity(struct tls_sslstate *st, struct duet_identity *id)
{
    if (st == NULL) {
        identity_free(id);
        return;
    }
    identity_free(st->id);
    st->id = id;
}

/* Record why a connection's peer was refused, for the log and the metrics. */
static void
sslstate_refuse(struct tls_sslstate *st, const char *reason, enum verify_fail fail)
{
    if (st == NULL)
        return;
    free(st->reason);
    st->reason = strdup(reason);
    st->fail = fail;
}

/* libssl hands the peer's chain here instead of calling X509_verify_cert. */
static int
cert_verify_cb(X509_STORE_CTX *ctx, void *arg)
{
    struct tls_trust *t = arg;
    SSL *ssl = X509_STORE_CTX_get_ex_data(ctx, SSL_get_ex_data_X509_STORE_CTX_idx());
    struct tls_sslstate *st = ssl != NULL ? sslstate(ssl) : NULL;
    struct verify_params p;
    struct duet_err err;
    enum verify_fail fail = VERIFY_ERROR;
    uint8_t key[32];
    bool keyed = t->cache != NULL && chain_key(ctx, st != NULL ? st->name : NULL, key);

    struct duet_identity *id = NULL;
    STACK_OF(X509) *chain = NULL;

    if (keyed && chain_cache_hit(t, key, &id, &chain)) {
        X509_STORE_CTX_set_error(ctx, X509_V_OK);
        if (chain != NULL)
            X509_STORE_CTX_set0_verified_chain(ctx, chain);
        sslstate_set0_identity(st, id);
        return 1;
    }
    memset(&p, 0, sizeof(p));
    p.store = t->store;
    p.revs = t->revs;
    p.crl_scope = t->scope;
    p.purpose = t->purpose;
    p.accept_expired_crl = t->crl_expired_ok;
    p.accept_expired_leaf = t->expired_leaf_ok;
    p.name = st != NULL ? st->name : NULL;
    err_clear(&err);
    if (verify_store_ctx(ctx, &p, &fail, &err) == 0) {
        if (keyed)
            sslstate_set0_identity(st, chain_cache_store(t, key, ctx));
        return 1;
    }
    sslstate_refuse(st, err.msg, fail);
    if (st != NULL && X509_STORE_CTX_get0_cert(ctx) != NULL &&
        X509_up_ref(X509_STORE_CTX_get0_cert(ctx))) {
        X509_free(st->presented);
        st->presented = X509_STORE_CTX_get0_cert(ctx);
    }
    return 0;
}

/* The certificate a refused peer presented; see tls.h. */
X509 *
tls_presented_cert(const SSL *ssl)
{
    struct tls_sslstate *s = ssl_idx >= 0 ? SSL_get_ex_data(ssl, ssl_idx) : NULL;

    if (s != NULL && s->presented != NULL)
        return s->presented;
    return SSL_get0_peer_certificate(ssl); /* a resumed session refused by tls_check_resumed */
}

/* The sentence of the last refusal on an SSL; see tls.h. */
const char *
tls_verify_reason(const SSL *ssl)
{
    struct tls_sslstate *s = ssl_idx >= 0 ? SSL_get_ex_data(ssl, ssl_idx) : NULL;

    return s != NULL ? s->reason : NULL;
}

/* The metrics label of the last refusal on an SSL; see tls.h. */
enum tls_fail
tls_verify_fail(const SSL *ssl)
{
    return tls_fail_of(tls_verify_category(ssl));
}

/* The category of the last refusal on an SSL; see tls.h. */
enum verify_fail
tls_verify_category(const SSL *ssl)
{
    struct tls_sslstate *s = ssl_idx >= 0 ? SSL_get_ex_data(ssl, ssl_idx) : NULL;

    return s != NULL ? s->fail : VERIFY_OK;
}

void
tls_ctx_info_clear(struct tls_ctx_info *info)
{
    if (info == NULL)
        return;
    for (size_t i = 0; i < info->nitems; i++) {
        free(info->items[i].what);
        free(info->items[i].file);
    }
    free(info->items);
    memset(info, 0, sizeof(*info));
}

static int
info_add(struct tls_ctx_info *info, const char *kind, const char *name, const char *file,
         int64_t not_after, struct duet_err *err)
{
    struct tls_expiry *n;
    size_t len;

    if (info == NULL)
        return 0;
    n = realloc(info->items, (info->nitems + 1) * sizeof(*n));
    if (n == NULL)
        return err_nomem(err);
    info->items = n;
    len = strlen(kind) + strlen(name) + 2;
    n[info->nitems].what = malloc(len);
    n[info->nitems].file = strdup(file);
    if (n[info->nitems].what == NULL || n[info->nitems].file == NULL) {
        free(n[info->nitems].what);
        free(n[info->nitems].file);
        return err_nomem(err);
    }
    snprintf(n[info->nitems].what, len, "%s %s", kind, name);
    n[info->nitems].not_after = not_after;
    n[info->nitems].this_update = 0;
    info->nitems++;
    return 0;
}

/* Refuse a key file that group or others can read, with the chmod that fixes it. */
static int
check_key_mode(const char *path, struct duet_err *err)
{
    struct stat st;

    if (stat(path, &st) != 0)
        return err_set(err, DUET_ERR_INPUT, "%s: %s", path,
                       errno == ENOENT ? "no such file" : strerror(errno));
    if ((st.st_mode & 077) != 0)
        return err_set(err, DUET_ERR_INPUT,
                       "%s: private key is readable by group or others (mode %03o); fix with: "
                       "chmod 600 %s",
                       path, (unsigned)(st.st_mode & 0777), path);
    return 0;
}

/* Load our certificate chain and key into a context. */
static int
load_keypair(SSL_CTX *ctx, const struct tls_opts *o, struct tls_ctx_info *info,
             struct duet_err *err)
{
    STACK_OF(X509) *certs = NULL;
    EVP_PKEY *key = NULL;
    X509 *leaf;
    int64_t na = 0;
    int rc = -1;

    if (o->key_file == NULL)
        return err_set(err, DUET_ERR_INPUT, "%s: a certificate needs its key (--key)", o->cert_file);
    if (!o->insecure_key_mode && check_key_mode(o->key_file, err) != 0)
        return -1;
    if (load_certs_file(o->cert_file, NULL, &certs, err) != 0 ||
        load_key_file(o->key_file, NULL, &key, err) != 0)
        goto out;
    leaf = sk_X509_shift(certs);
    if (X509_check_private_key(leaf, key) != 1) {
        ERR_clear_error();
        X509_free(leaf);
        err_set(err, DUET_ERR_INPUT, "%s does not belong to the certificate in %s", o->key_file,
                o->cert_file);
        goto out;
    }
    if (!SSL_CTX_use_cert_and_key(ctx, leaf, key, certs, 1)) {
        X509_free(leaf);
        err_set_ssl(err, DUET_ERR_INPUT, "%s: cannot use this certificate and key", o->cert_file);
        goto out;
    }
    {
        char *subj = x509u_name(X509_get_subject_name(leaf));
        x509u_time(X509_get0_notAfter(leaf), &na);
        rc = info_add(info, "certificate", subj != NULL ? subj : "?", o->cert_file, na, err);
        free(subj);
    }
    X509_free(leaf);
out:
    OSSL_STACK_OF_X509_free(certs);
    EVP_PKEY_free(key);
    return rc;
}

/*
 * Session binding.  OpenSSL resumes a session, stateful or from a ticket, in
 * TLS 1.2 and 1.3 alike, only on an SSL whose session id context equals the
 * one the session was made under (ssl_get_prev_session() in ssl/ssl_sess.c
 * treats a mismatch as a cache miss: a full handshake, with the client's
 * certificate verified again).  Shared ticket keys open tickets sealed by
 * another listener or another instance, and tickets outlive a reload; so a
 * server context's session id context is a SHA-256 over everything that
 * decided whether a client was let in:
 *   - the listener's name: two listeners of one configuration never resume
 *     each other's sessions.  Its listen address is left out on purpose:
 *     instances behind one load balancer bind different addresses and share
 *     tickets (--ticket-keys), with the same name, trust and policy;
 *   - the DER of every certificate loaded from ca_file (sorted digests, so
 *     the order in the file does not matter);
 *   - the content of every CRL file, and the CRL scope, expired-CRL handling,
 *     verify optional and TLS 1.2 settings;
 *   - the authorization policy, rule by rule.  The policy is decided again on
 *     every connection (tcp) and request (http), so binding it closes no hole
 *     of its own; it is bound all the same because it is simpler to reason
 *     about (a session resumes only under the exact configuration that
 *     admitted it), at the price of one full handshake per client after a
 *     reload that changes only the rules.
 * Not bound: our own certificate and key, the ticket keys (rotation keeps
 * tickets), ALPN, the chain cache.  Anything that changes the outcome of
 * verification or authorization and is added to tls_opts or to struct
 * policy_rule must be added here.
 */
#define SESSION_BIND_TAG "duet session binding v1"

/* A length, as 8 big-endian bytes. */
static bool
bind_u64(EVP_MD_CTX *md, uint64_t v)
{
    unsigned char b[8];

    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)(v >> (56 - 8 * i));
    return EVP_DigestUpdate(md, b, sizeof(b)) == 1;
}

/* Bytes, prefixed with their length so that no two sequences of fields hash alike. */
static bool
bind_bytes(EVP_MD_CTX *md, const void *p, size_t len)
{
    return bind_u64(md, len) && (len == 0 || EVP_DigestUpdate(md, p, len) == 1);
}

/* A string; NULL hashes unlike "". */
static bool
bind_str(EVP_MD_CTX *md, const char *str)
{
    return str == NULL ? bind_u64(md, UINT64_MAX) : bind_bytes(md, str, strlen(str));
}

/* Every rule of a policy, in order, with every field policy_decide() reads. */
static bool
bind_policy(EVP_MD_CTX *md, const struct policy *pol)
{
    bool ok = bind_u64(md, pol != NULL ? pol->nrules : UINT64_MAX);

    for (size_t i = 0; ok && pol != NULL && i < pol->nrules; i++) {
        const struct policy_rule *r = &pol->rules[i];
        ok = bind_str(md, r->name) && bind_u64(md, r->allow) && bind_u64(md, r->nids);
        for (size_t k = 0; ok && k < r->nids; k++)
            ok = bind_u64(md, (uint64_t)r->ids[k].field) && bind_str(md, r->ids[k].glob);
        ok = ok && bind_u64(md, r->methods != NULL ? r->nmethods : UINT64_MAX);
        for (size_t k = 0; ok && r->methods != NULL && k < r->nmethods; k++)
            ok = bind_str(md, r->methods[k]);
        ok = ok && bind_str(md, r->host) && bind_str(md, r->path) &&
             bind_str(md, r->path_prefix);
    }
    return ok;
}

/* The content of a file (a CRL file, just loaded), mapped rather than copied. */
static int
bind_file(EVP_MD_CTX *md, const char *path, struct duet_err *err)
{
    struct stat st;
    void *map = MAP_FAILED;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    int rc = -1;

    if (fd < 0 || fstat(fd, &st) != 0) {
        err_set(err, DUET_ERR_INPUT, "%s: cannot read it to bind sessions to it: %s", path,
                strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode) || st.st_size <= 0) {
        err_set(err, DUET_ERR_INPUT, "%s: changed while it was read; expected a non-empty file",
                path);
        goto out;
    }
    map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (map == MAP_FAILED) {
        err_set(err, DUET_ERR_INPUT, "%s: cannot read it to bind sessions to it: %s", path,
                strerror(errno));
        goto out;
    }
    if (!bind_bytes(md, map, (size_t)st.st_size)) {
        err_set_ssl(err, DUET_ERR_INTERNAL, "%s: cannot digest it", path);
        goto out;
    }
    rc = 0;
out:
    if (map != MAP_FAILED)
        munmap(map, (size_t)st.st_size);
    if (fd >= 0)
        close(fd);
    return rc;
}

static int
digest_cmp(const void *a, const void *b)
{
    return memcmp(a, b, 32);
}

/* The certificates loaded from ca_file, as the sorted SHA-256 digests of their DER. */
static int
bind_certs(EVP_MD_CTX *md, STACK_OF(X509) *certs, const char *file, struct duet_err *err)
{
    int n = sk_X509_num(certs);
    uint8_t (*d)[32] = calloc(n > 0 ? (size_t)n : 1, sizeof(*d));
    bool ok = d != NULL;

    for (int i = 0; ok && i < n; i++) {
        /*
         * The certificate with its trust settings (a TRUSTED CERTIFICATE's
         * purposes, which OpenSSL honours): withdrawing clientAuth from an
         * anchor must retire the sessions it verified, like removing it.
         */
        unsigned char *der = NULL;
        unsigned int len = 0;
        int dlen = i2d_X509_AUX(sk_X509_value(certs, i), &der);
        ok = dlen > 0 && EVP_Digest(der, (size_t)dlen, d[i], &len, x509u_sha256(), NULL) == 1 &&
             len == 32;
        OPENSSL_free(der);
    }
    if (ok)
        qsort(d, (size_t)n, sizeof(*d), digest_cmp);
    ok = ok && bind_u64(md, (uint64_t)n);
    for (int i = 0; ok && i < n; i++)
        ok = EVP_DigestUpdate(md, d[i], 32) == 1;
    free(d);
    if (!ok)
        return err_set_ssl(err, DUET_ERR_INTERNAL, "%s: cannot digest its certificates", file);
    return 0;
}

/*
 * Trust anchors, CRLs and the verify callback.  With `bind` (a server
 * context), what was loaded is fed to the session binding digest.
 */
static int
load_trust(SSL_CTX *ctx, const struct tls_opts *o, enum duet_purpose purpose,
           struct tls_ctx_info *info, EVP_MD_CTX *bind, struct duet_err *err)
{
    struct tls_trust *t = calloc(1, sizeof(*t));
    STACK_OF(X509) *anchors = NULL;
    STACK_OF(X509_NAME) *names = NULL;
    int64_t now = (int64_t)time(NULL);

    if (t == NULL)
        return err_nomem(err);
    t->purpose = purpose;
    t->scope = o->crl_scope;
    t->crl_expired_ok = o->crl_expired_ok;
    t->expired_leaf_ok = o->expired_leaf_ok;
    pthread_mutex_init(&t->cache_lock, NULL);
    t->cache = o->no_chain_cache ? NULL : calloc(CHAIN_CACHE_SLOTS, sizeof(*t->cache));
    if (!SSL_CTX_set_ex_data(ctx, trust_idx, t)) {
        free(t);
        return err_nomem(err);
    }
    if (o->ca_file == NULL)
        return err_set(err, DUET_ERR_INPUT, "the certificates to trust are required (--cacert)");
    if (load_certs_file(o->ca_file, NULL, &anchors, err) != 0)
        return -1;
    if (bind != NULL && bind_certs(bind, anchors, o->ca_file, err) != 0) {
        OSSL_STACK_OF_X509_free(anchors);
        return -1;
    }
    t->store = X509_STORE_new();
    names = purpose != DUET_PURPOSE_SERVER ? sk_X509_NAME_new_null() : NULL;
    if (t->store == NULL || (purpose != DUET_PURPOSE_SERVER && names == NULL)) {
        OSSL_STACK_OF_X509_free(anchors);
        sk_X509_NAME_pop_free(names, X509_NAME_free);
        return err_nomem(err);
    }
    for (int i = 0; i < sk_X509_num(anchors); i++) {
        X509 *a = sk_X509_value(anchors, i);
        X509_NAME *dup;
        if (!X509_STORE_add_cert(t->store, a)) {
            ERR_clear_error(); /* a duplicate is harmless */
        }
        if (names != NULL && (dup = X509_NAME_dup(X509_get_subject_name(a))) != NULL &&
            !sk_X509_NAME_push(names, dup))
            X509_NAME_free(dup);
    }
    OSSL_STACK_OF_X509_free(anchors);
    if (names != NULL)
        SSL_CTX_set_client_CA_list(ctx, names); /* announced in CertificateRequest */
    if (o->ncrl_files > 0 && (t->revs = revset_new()) == NULL)
        return err_nomem(err);
    if (t->revs != NULL && o->insecure_crl_dsa)
        revset_insecure_crl_dsa(t->revs);
    for (size_t i = 0; i < o->ncrl_files; i++) {
        size_t first = revset_count(t->revs);
        if (revset_add_file(t->revs, o->crl_files[i], err) != 0)
            return -1;
        if (bind != NULL && bind_file(bind, o->crl_files[i], err) != 0)
            return -1;
        for (size_t k = first; k < revset_count(t->revs); k++) {
            const struct revcrl *c = revset_get0(t->revs, k);
            int64_t nu = revcrl_next_update(c);
            char *iss = x509u_name(revcrl_get0_issuer(c));
            if (info != NULL && (info->crl_next_update_min == 0 || nu < info->crl_next_update_min))
                info->crl_next_update_min = nu;
            int rc = info_add(info, "CRL", iss != NULL ? iss : "?", o->crl_files[i], nu, err);
            free(iss);
            if (rc == 0 && info != NULL)
                info->items[info->nitems - 1].this_update = revcrl_this_update(c);
            if (rc != 0)
                return -1;
        }
    }
    (void)now;
    SSL_CTX_set1_verify_cert_store(ctx, t->store);
    SSL_CTX_set_cert_verify_callback(ctx, cert_verify_cb, t);
    return 0;
}

/* ALPN list "a,b" to wire format (RFC 7301); *out malloc'd. */
static int
alpn_wire(const char *list, unsigned char **out, unsigned int *len, struct duet_err *err)
{
    size_t n = strlen(list);
    unsigned char *w = malloc(n + 1);
    size_t o = 0;
    const char *p = list;

    if (w == NULL)
        return err_nomem(err);
    while (*p) {
        const char *e = strchr(p, ',');
        size_t l = e != NULL ? (size_t)(e - p) : strlen(p);
        if (l == 0 || l > 255) {
            free(w);
            return err_set(err, DUET_ERR_INPUT, "ALPN list \"%s\": empty or overlong protocol", list);
        }
        w[o++] = (unsigned char)l;
        memcpy(w + o, p, l);
        o += l;
        p += l;
        if (*p == ',')
            p++;
    }
    *out = w;
    *len = (unsigned int)o;
    return 0;
}

struct alpn_cfg {
    unsigned char *wire;
    unsigned int len;
};

static int alpn_idx = -1;

static void
alpn_free_cb(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
    struct alpn_cfg *a = ptr;

    (void)parent;
    (void)ad;
    (void)idx;
    (void)argl;
    (void)argp;
    if (a != NULL) {
        free(a->wire);
        free(a);
    }
}

/* Server ALPN: the first of our protocols the client offers; none in common: no ALPN. */
static int
alpn_select_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen, const unsigned char *in,
               unsigned int inlen, void *arg)
{
    struct alpn_cfg *a = arg;
    unsigned char *sel = NULL;

    (void)ssl;
    if (SSL_select_next_proto(&sel, outlen, a->wire, a->len, in, inlen) == OPENSSL_NPN_NEGOTIATED) {
        *out = sel;
        return SSL_TLSEXT_ERR_OK;
    }
    return SSL_TLSEXT_ERR_NOACK;
}

static SSL_CTX *
base_ctx(const SSL_METHOD *m, const struct tls_opts *o, struct duet_err *err)
{
    SSL_CTX *ctx;

    if (!CRYPTO_THREAD_run_once(&idx_once, idx_init) || trust_idx < 0 || ssl_idx < 0) {
        err_set(err, DUET_ERR_INTERNAL, "cannot register TLS state");
        return NULL;
    }
    if (alpn_idx < 0)
        alpn_idx = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, alpn_free_cb);
    ctx = SSL_CTX_new(m);
    if (ctx == NULL) {
        err_set_ssl(err, DUET_ERR_INTERNAL, "cannot create a TLS context");
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, o->tls12 ? TLS1_2_VERSION : TLS1_3_VERSION);
    SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION);
    SSL_CTX_set_cipher_list(ctx, "ECDHE+AESGCM:ECDHE+CHACHA20");
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                                 SSL_OP_NO_TICKET | SSL_OP_NO_COMPRESSION);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_num_tickets(ctx, 0);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    return ctx;
}


/*
 * Read ticket keys: one per line, 160 hex digits (80 bytes: name, AES key,
 * HMAC key); '#' starts a comment.  The file must be readable by its owner
 * only, like a private key.
 */
static int
load_ticket_keys(const char *path, bool insecure_mode, struct ticket_keys *out,
                 struct duet_err *err)
{
    uint8_t *data = NULL;
    size_t len = 0;
    int line = 0;
    int rc = -1;

    memset(out, 0, sizeof(*out));
    if (!insecure_mode && check_key_mode(path, err) != 0)
        return -1;
    if (fileio_read(path, &data, &len, err) != 0)
        return -1;
    for (char *p = (char *)data; p != NULL && *p != '\0';) {
        char *nl = strchr(p, '\n');
        size_t n = nl != NULL ? (size_t)(nl - p) : strlen(p);
        unsigned char raw[TICKET_KEY_BYTES];
        size_t k = 0;
        bool blank = true;

        line++;
        for (size_t i = 0; i < n; i++) {
            if (p[i] == '#')
                break;
            if (p[i] == ' ' || p[i] == '\t' || p[i] == '\r')
                continue;
            blank = false;
            int hi = x509u_hexval((unsigned char)p[i]);
            int lo = i + 1 < n ? x509u_hexval((unsigned char)p[i + 1]) : -1;
            if (hi < 0 || lo < 0 || k >= sizeof(raw)) {
                err_set(err, DUET_ERR_INPUT,
                        "%s:%d: expected %d hex digits (a 16-byte name, a 32-byte AES key, a "
                        "32-byte HMAC key); generate one with: openssl rand -hex 80",
                        path, line, 2 * TICKET_KEY_BYTES);
                goto out;
            }
            raw[k++] = (unsigned char)(hi * 16 + lo);
            i++;
        }
        if (!blank) {
            if (k != sizeof(raw)) {
                err_set(err, DUET_ERR_INPUT,
                        "%s:%d: a ticket key is %d hex digits; this line has %zu", path, line,
                        2 * TICKET_KEY_BYTES, 2 * k);
                goto out;
            }
            if (out->n == MAX_TICKET_KEYS) {
                err_set(err, DUET_ERR_INPUT, "%s: more than %d ticket keys", path, MAX_TICKET_KEYS);
                goto out;
            }
            memcpy(out->k[out->n].name, raw, 16);
            memcpy(out->k[out->n].aes, raw + 16, 32);
            memcpy(out->k[out->n].hmac, raw + 48, 32);
            out->n++;
        }
        OPENSSL_cleanse(raw, sizeof(raw));
        p = nl != NULL ? nl + 1 : NULL;
    }
    if (out->n == 0) {
        err_set(err, DUET_ERR_INPUT, "%s: no ticket key; generate one with: openssl rand -hex 80",
                path);
        goto out;
    }
    rc = 0;
out:
    OPENSSL_cleanse(data, len);
    free(data);
    return rc;
}

/* Rotate a ticket keys file; see tls.h. */
int
tls_ticket_keys_rotate(const char *path, int keep, int *nkeys, struct duet_err *err)
{
    struct ticket_keys old;
    unsigned char fresh[TICKET_KEY_BYTES];
    char *text = NULL;
    size_t cap, off = 0;
    int n = 0;
    int rc = -1;
    struct stat st;

    memset(&old, 0, sizeof(old));
    *nkeys = 0;
    if (keep < 2 || keep > MAX_TICKET_KEYS)
        return err_set(err, DUET_ERR_INPUT,
                       "keys to keep: expected 2 to %d (the new key and at least the one before "
                       "it, which still opens the tickets it sealed)",
                       MAX_TICKET_KEYS);
    if (stat(path, &st) == 0) {
        if (load_ticket_keys(path, false, &old, err) != 0)
            return -1;
    } else if (errno != ENOENT) {
        return err_set(err, DUET_ERR_INPUT, "%s: %s", path, strerror(errno));
    }
    if (RAND_bytes(fresh, sizeof(fresh)) != 1) {
        err_set_ssl(err, DUET_ERR_INTERNAL, "cannot draw a random ticket key");
        goto out;
    }
    cap = (size_t)keep * (2 * TICKET_KEY_BYTES + 1) + 1;
    if ((text = malloc(cap)) == NULL) {
        err_nomem(err);
        goto out;
    }
    for (int i = -1; i < old.n && n < keep; i++, n++) {
        const unsigned char *parts[3];
        if (i < 0) {
            parts[0] = fresh;
            parts[1] = fresh + 16;
            parts[2] = fresh + 48;
        } else {
            parts[0] = old.k[i].name;
            parts[1] = old.k[i].aes;
            parts[2] = old.k[i].hmac;
        }
        for (int k = 0; k < 3; k++) {
            size_t len = k == 0 ? 16 : 32;
            for (size_t j = 0; j < len; j++) {
                static const char hex[] = "0123456789abcdef";
                text[off++] = hex[parts[k][j] >> 4];
                text[off++] = hex[parts[k][j] & 15];
            }
        }
        text[off++] = '\n';
    }
    if (fileio_write_atomic(path, (const uint8_t *)text, off, 0600, err) != 0)
        goto out;
    *nkeys = n;
    rc = 0;
out:
    OPENSSL_cleanse(fresh, sizeof(fresh));
    OPENSSL_cleanse(&old, sizeof(old));
    if (text != NULL) {
        OPENSSL_cleanse(text, cap);
        free(text);
    }
    return rc;
}

/* Seal (enc) or open a ticket with the shared keys; see load_ticket_keys. */
static int
ticket_key_cb(SSL *s, unsigned char key_name[16], unsigned char *iv, EVP_CIPHER_CTX *cctx,
              EVP_MAC_CTX *hctx, int enc)
{
    struct ticket_keys *tk = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(s), tkeys_idx);
    struct ticket_key *k = NULL;
    OSSL_PARAM params[3];
    int i;

    if (tk == NULL || tk->n == 0)
        return -1;
    if (enc) {
        k = &tk->k[0];
        memcpy(key_name, k->name, 16);
        if (RAND_bytes(iv, 16) != 1 ||
            !EVP_EncryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, k->aes, iv))
            return -1;
        i = 1;
    } else {
        for (i = 0; i < tk->n; i++) {
            if (memcmp(key_name, tk->k[i].name, 16) == 0) {
                k = &tk->k[i];
                break;
            }
        }
        if (k == NULL)
            return 0; /* unknown key: a full handshake */
        if (!EVP_DecryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, k->aes, iv))
            return -1;
        i = i == 0 ? 1 : 2; /* an older key: renew the ticket under the current one */
    }
    params[0] = OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, k->hmac, 32);
    params[1] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0);
    params[2] = OSSL_PARAM_construct_end();
    if (!EVP_MAC_CTX_set_params(hctx, params))
        return -1;
    return i;
}

/* A server context; see tls.h. */
int
tls_server_ctx_new(const struct tls_opts *o, SSL_CTX **out, struct tls_ctx_info *info,
                   struct duet_err *err)
{
    SSL_CTX *ctx = base_ctx(TLS_server_method(), o, err);
    EVP_MD_CTX *bind = EVP_MD_CTX_new();
    unsigned char sid_ctx[32];
    unsigned int sid_len = 0;

    *out = NULL;
    if (ctx == NULL)
        goto err;
    if (o->read_ahead)
        SSL_CTX_set_read_ahead(ctx, 1);
    if (o->cert_file == NULL) {
        err_set(err, DUET_ERR_INPUT, "the server certificate is required (--cert)");
        goto err;
    }
    if (bind == NULL || !EVP_DigestInit_ex(bind, x509u_sha256(), NULL) ||
        !bind_str(bind, SESSION_BIND_TAG) || !bind_str(bind, o->listener)) {
        err_set_ssl(err, DUET_ERR_INTERNAL, "cannot start the session binding digest");
        goto err;
    }
    if (load_keypair(ctx, o, info, err) != 0 ||
        load_trust(ctx, o, o->any_purpose ? DUET_PURPOSE_ANY : DUET_PURPOSE_CLIENT, info, bind,
                   err) != 0)
        goto err;
    /* See "Session binding" above. */
    if (!bind_u64(bind, (uint64_t)o->crl_scope) || !bind_u64(bind, o->any_purpose) ||
        !bind_u64(bind, o->crl_expired_ok) || !bind_u64(bind, o->insecure_crl_dsa) ||
        !bind_u64(bind, o->verify_optional) ||
        !bind_u64(bind, o->tls12) || !bind_u64(bind, o->expired_leaf_ok) ||
        !bind_policy(bind, o->policy) || !EVP_DigestFinal_ex(bind, sid_ctx, &sid_len) ||
        sid_len != sizeof(sid_ctx) || sid_len > SSL_MAX_SID_CTX_LENGTH ||
        !SSL_CTX_set_session_id_context(ctx, sid_ctx, sid_len)) {
        err_set_ssl(err, DUET_ERR_INTERNAL, "cannot bind sessions to this configuration");
        goto err;
    }
    {
        struct tls_trust *t = SSL_CTX_get_ex_data(ctx, trust_idx);
        if (t != NULL) {
            memcpy(t->binding, sid_ctx, sizeof(t->binding));
            t->bound = true;
        }
    }
    SSL_CTX_set_verify(ctx,
                       SSL_VERIFY_PEER | (o->verify_optional ? 0 : SSL_VERIFY_FAIL_IF_NO_PEER_CERT),
                       NULL);
    if (o->session_tickets && o->ticket_keys_file != NULL) {
        /*
         * Stateless tickets sealed with shared keys: any duet holding the same
         * file opens them, and resumes them only under the same session binding
         * (the same listener name, trust, CRLs and policy; see "Session
         * binding").  Each ticket carries the session with the client
         * certificate, and a resumed session is re-checked (tls_check_resumed)
         * for what changes with time alone.
         */
        struct ticket_keys *tk = calloc(1, sizeof(*tk));
        if (tk == NULL) {
            err_nomem(err);
            goto err;
        }
        if (load_ticket_keys(o->ticket_keys_file, o->insecure_key_mode, tk, err) != 0 ||
            !SSL_CTX_set_ex_data(ctx, tkeys_idx, tk)) {
            OPENSSL_cleanse(tk, sizeof(*tk));
            free(tk);
            if (err->kind == DUET_ERR_NONE)
                err_nomem(err);
            goto err;
        }
        SSL_CTX_clear_options(ctx, SSL_OP_NO_TICKET);
        SSL_CTX_set_num_tickets(ctx, 1);
        SSL_CTX_set_timeout(ctx, 3600);
        SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, ticket_key_cb);
    } else if (o->session_tickets) {
        /*
         * Stateful TLS 1.3 tickets, one per handshake (a resumption gets a
         * fresh one: clients use a TLS 1.3 ticket once, RFC 8446 C.4): with
         * SSL_OP_NO_TICKET kept, OpenSSL stores the session (a reference to the
         * verified client certificate) in the context's cache and the ticket is
         * only its identifier, so neither issuing nor resuming serialises or
         * re-parses the certificate.  The cache belongs to the context: a
         * reload retires every ticket.
         */
        SSL_CTX_set_num_tickets(ctx, 1);
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
        SSL_CTX_sess_set_cache_size(ctx, 20000);
        SSL_CTX_set_timeout(ctx, 3600);
    }
    if (o->alpn != NULL) {
        struct alpn_cfg *a = calloc(1, sizeof(*a));
        if (a == NULL || alpn_wire(o->alpn, &a->wire, &a->len, err) != 0 ||
            !SSL_CTX_set_ex_data(ctx, alpn_idx, a)) {
            if (a != NULL && err->kind == DUET_ERR_NONE)
                err_nomem(err);
            free(a);
            goto err;
        }
        SSL_CTX_set_alpn_select_cb(ctx, alpn_select_cb, a);
    }
    EVP_MD_CTX_free(bind);
    *out = ctx;
    return 0;
err:
    EVP_MD_CTX_free(bind);
    SSL_CTX_free(ctx);
    return -1;
}

/* A client context; see tls.h. */
int
tls_client_ctx_new(const struct tls_opts *o, SSL_CTX **out, struct tls_ctx_info *info,
                   struct duet_err *err)
{
    SSL_CTX *ctx = base_ctx(TLS_client_method(), o, err);

    *out = NULL;
    if (ctx == NULL)
        return -1;
    if ((o->cert_file != NULL && load_keypair(ctx, o, info, err) != 0) ||
        load_trust(ctx, o, DUET_PURPOSE_SERVER, info, NULL, err) != 0)
        goto err;
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    if (o->alpn != NULL) {
        unsigned char *w = NULL;
        unsigned int len = 0;
        if (alpn_wire(o->alpn, &w, &len, err) != 0)
            goto err;
        SSL_CTX_set_alpn_protos(ctx, w, len);
        free(w);
    }
    *out = ctx;
    return 0;
err:
    SSL_CTX_free(ctx);
    return -1;
}

int
tls_client_set_name(SSL *ssl, const char *name, struct duet_err *err)
{
    struct tls_sslstate *st = sslstate(ssl);
    unsigned char buf[16];

    if (st == NULL || (st->name = strdup(name)) == NULL)
        return err_nomem(err);
    /* RFC 6066: SNI carries host names only, never IP literals. */
    if (inet_pton(AF_INET, name, buf) != 1 && inet_pton(AF_INET6, name, buf) != 1 &&
        !SSL_set_tlsext_host_name(ssl, name))
        return err_set_ssl(err, DUET_ERR_INPUT, "server name %s cannot be sent", name);
    return 0;
}

int
tls_peer_identity(SSL *ssl, struct duet_identity **out, struct duet_err *err)
{
    X509 *peer = SSL_get0_peer_certificate(ssl);
    struct tls_sslstate *st = SSL_get_ex_data(ssl, ssl_idx);

    *out = NULL;
    if (peer == NULL)
        return 0;
    if (st != NULL && st->id != NULL) {
        /* Made when the chain was verified (or found in the chain cache). */
        *out = st->id;
        st->id = NULL;
        return 0;
    }
    return identity_from_x509(peer, out, err);
}

/*
 * What can make a certificate verified earlier invalid without its chain
 * changing: its validity ends, or a CRL of trust t lists it.  `what` starts
 * the sentence ("resumed session", "open connection").  0 when it still
 * holds; otherwise the sentence in err and the category in *fail.
 */
static int
recheck_leaf(const struct tls_trust *t, X509 *peer, const char *what, enum verify_fail *fail,
             struct duet_err *err)
{
    char label[600];
    char date[32];
    char days[48];
    int64_t now = (int64_t)time(NULL);
    int64_t na = 0;
    struct rev_result r;

    if (!x509u_time(X509_get0_notAfter(peer), &na) || na <= now) {
        x509u_label(peer, label, sizeof(label));
        x509u_fmt_date(na, date, sizeof(date));
        x509u_fmt_days(na, now, days, sizeof(days));
        *fail = VERIFY_EXPIRED;
        return err_set(err, DUET_ERR_INVALID, "%s: certificate %s expired on %s, %s", what,
                       label, date, days);
    }
    revset_check(t->revs, peer, NULL, now, t->crl_expired_ok, &r);
    if (r.status == REV_REVOKED) {
        char *by = x509u_name(revcrl_get0_issuer(r.crl));
        x509u_label(peer, label, sizeof(label));
        x509u_fmt_date(r.date, date, sizeof(date));
        err_set(err, DUET_ERR_INVALID,
                "%s: certificate %s was revoked on %s (reason: %s) by the CRL of %s", what,
                label, date, r.reason >= 0 ? x509u_crl_reason(r.reason) : "unspecified",
                by != NULL ? by : "?");
        free(by);
        *fail = VERIFY_REVOKED;
        return -1;
    }
    return 0;
}

/* Re-check a resumed session's peer; see tls.h. */
int
tls_check_resumed(SSL *ssl, struct duet_err *err)
{
    struct tls_trust *t = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), trust_idx);
    X509 *peer = SSL_get0_peer_certificate(ssl);
    enum verify_fail fail = VERIFY_OK;

    if (peer == NULL || t == NULL)
        return 0;
    if (recheck_leaf(t, peer, "resumed session", &fail, err) != 0) {
        sslstate_refuse(sslstate(ssl), err->msg, fail);
        return -1;
    }
    return 0;
}

/* Verify an open connection's peer again, under another context's trust; see tls.h. */
int
tls_reverify(SSL_CTX *ctx, SSL *ssl, enum verify_fail *fail, struct duet_err *err)
{
    struct tls_trust *t = SSL_CTX_get_ex_data(ctx, trust_idx);
    X509 *peer = SSL_get0_peer_certificate(ssl);
    STACK_OF(X509) *sent = SSL_get_peer_cert_chain(ssl);
    struct tls_sslstate *st = SSL_get_ex_data(ssl, ssl_idx);
    X509_STORE_CTX *xc = NULL;
    struct verify_params p;
    int rc = -1;

    *fail = VERIFY_OK;
    if (peer == NULL || t == NULL)
        return 0;
    if (SSL_session_reused(ssl) || sent == NULL) {
        /* A resumed session carries the leaf alone: what can be checked on it. */
        return recheck_leaf(t, peer, "open connection", fail, err);
    }
    if ((xc = X509_STORE_CTX_new()) == NULL || !X509_STORE_CTX_init(xc, t->store, peer, sent)) {
        *fail = VERIFY_ERROR;
        err_set_ssl(err, DUET_ERR_INTERNAL, "cannot verify the open connection's certificate");
        goto out;
    }
    memset(&p, 0, sizeof(p));
    p.store = t->store;
    p.revs = t->revs;
    p.crl_scope = t->scope;
    p.purpose = t->purpose;
    p.accept_expired_crl = t->crl_expired_ok;
    p.accept_expired_leaf = t->expired_leaf_ok;
    p.name = st != NULL ? st->name : NULL;
    rc = verify_store_ctx(xc, &p, fail, err);
out:
    X509_STORE_CTX_free(xc);
    return rc;
}

/* Whether two server contexts bind sessions alike; see tls.h. */
bool
tls_same_binding(SSL_CTX *a, SSL_CTX *b)
{
    const struct tls_trust *ta = SSL_CTX_get_ex_data(a, trust_idx);
    const struct tls_trust *tb = SSL_CTX_get_ex_data(b, trust_idx);

    return ta != NULL && tb != NULL && ta->bound && tb->bound &&
           memcmp(ta->binding, tb->binding, sizeof(ta->binding)) == 0;
}
