/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tls.h - OpenSSL contexts for duet's servers and clients, with every peer
 * certificate checked by the one verification path (verify.c).
 *
 * A context is immutable once built: reloading builds a new one and new
 * connections use it, while open connections keep theirs (SSL objects hold
 * a reference).  The reason a handshake's verification failed is kept on the
 * SSL object, in the same words `duet cert verify` uses, with its category
 * (enum verify_fail) and the metrics label derived from it (enum tls_fail).
 */
#ifndef DUET_LIB_TLS_H
#define DUET_LIB_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "lib/err.h"
#include "lib/identity.h"
#include "lib/policy.h"
#include "lib/verify.h"

/*
 * Why a handshake's peer verification failed, for metrics labels and log
 * reason codes: coarser than enum verify_fail (tls_fail_of()).  The names are
 * a contract with dashboards; the order is that of tls_fail_name().
 */
enum tls_fail {
    TLS_FAIL_NONE = 0,
    TLS_FAIL_NO_CERT,
    TLS_FAIL_UNKNOWN_CA,
    TLS_FAIL_EXPIRED,
    TLS_FAIL_REVOKED,
    TLS_FAIL_PURPOSE,
    TLS_FAIL_NAME,
    TLS_FAIL_CRL,
    TLS_FAIL_POLICY, /* verified, but the identity is not allowed (TCP mode, tunnel) */
    TLS_FAIL_NAME_CONSTRAINTS, /* a name outside an issuer's nameConstraints (RFC 5280 4.2.1.10) */
    TLS_FAIL_OTHER,
    /* The tunnel's server sent an OCSP staple saying revoked, none (required), or a bad one. */
    TLS_FAIL_STAPLE_REVOKED,
    TLS_FAIL_STAPLE_MISSING,
    TLS_FAIL_STAPLE_BAD,
    TLS_FAIL_COUNT
};
const char *tls_fail_name(enum tls_fail f); /* "no_cert", "unknown_ca", ... */
/* The label of a verification category: VERIFY_OK is TLS_FAIL_NONE; never NO_CERT or POLICY. */
enum tls_fail tls_fail_of(enum verify_fail f);

struct tls_opts {
    const char *cert_file;       /* our chain, leaf first; NULL: no certificate (tunnel without) */
    const char *key_file;
    const char *ca_file;         /* trust anchors for the peer's certificate */
    const char *const *crl_files;
    size_t ncrl_files;
    enum duet_crl_scope crl_scope;
    bool tls12;                  /* allow TLS 1.2 (default: TLS 1.3 only) */
    bool verify_optional;        /* server: accept clients without a certificate */
    bool any_purpose;            /* server: client certificates of any extended key usage
                                    (the CA server renews server certificates over mTLS) */
    bool expired_leaf_ok;        /* server: a client certificate past its notAfter (and only
                                    that) passes to the application, which decides on it
                                    (the CA server's renewal grace; verify.h) */
    bool insecure_key_mode;      /* accept key files readable by group/others */
    const char *alpn;            /* comma-separated protocols to offer/accept, or NULL */
    const char *server_name;     /* client: the name the server certificate must carry */
    bool crl_expired_ok;         /* an expired CRL is still used instead of failing handshakes */
    bool insecure_crl_dsa;       /* accept DSA-signed CRLs (revset_insecure_crl_dsa()) */
    bool session_tickets;        /* server: issue one TLS 1.3 ticket per full handshake */
    bool no_chain_cache;         /* verify every presented chain in full (see tls.c) */
    bool read_ahead;             /* server: read whole socket buffers (the caller must drain
                                    what OpenSSL holds: SSL_has_pending) */
    const char *ticket_keys_file; /* server: stateless tickets sealed with these shared keys */
    const char *listener;        /* server: the listener's name, bound into its sessions */
    const struct policy *policy; /* server: the authorization policy, bound into its sessions */
};

/* The expiry of what a context loaded, for metrics. */
struct tls_expiry {
    char *what;      /* "certificate CN=...", "CRL CN=..." */
    char *file;
    int64_t not_after;
    int64_t this_update; /* a CRL's thisUpdate; 0 for a certificate */
};

struct tls_ctx_info {
    struct tls_expiry *items;
    size_t nitems;
    int64_t crl_next_update_min; /* earliest nextUpdate among the CRLs; 0: none */
};
void tls_ctx_info_clear(struct tls_ctx_info *info);

/*
 * A server context: our certificate and key, client certificates required
 * (or optional) and verified for purpose client against ca_file and the
 * CRLs.  Fills *info when not NULL.  Files are checked completely; any
 * problem names the file.
 */
int tls_server_ctx_new(const struct tls_opts *o, SSL_CTX **out, struct tls_ctx_info *info,
                       struct duet_err *err) MUST_CHECK;
/* A client context: our certificate (optional), the server verified for purpose server. */
int tls_client_ctx_new(const struct tls_opts *o, SSL_CTX **out, struct tls_ctx_info *info,
                       struct duet_err *err) MUST_CHECK;

/*
 * Prepare an SSL for a client connection: SNI and the name its certificate
 * must match (an IP literal is matched as an IP SAN).
 */
int tls_client_set_name(SSL *ssl, const char *name, struct duet_err *err) MUST_CHECK;

/*
 * After a failed handshake: the verification sentence (or NULL), its category
 * (VERIFY_OK when verification refused nothing) and that category's metrics
 * label (tls_fail_of(tls_verify_category(ssl))).
 */
const char *tls_verify_reason(const SSL *ssl);
enum verify_fail tls_verify_category(const SSL *ssl);
enum tls_fail tls_verify_fail(const SSL *ssl);

/*
 * A resumed session skips certificate verification.  A server context resumes
 * only sessions made under the same binding (listener name, trust anchors, CRL
 * contents, verification settings and policy: see "Session binding" in tls.c),
 * even when several contexts or instances share ticket keys, so a reload that
 * changes any of these retires earlier sessions.  This re-checks what can
 * change with time alone: the peer certificate's validity, and its serial
 * against the context's CRLs.  Returns 0 when the session may be used; on
 * refusal the reason is kept like a verification failure (tls_verify_reason).
 */
int tls_check_resumed(SSL *ssl, struct duet_err *err) MUST_CHECK;

/*
 * Verify an open connection's peer certificate again, as a new handshake on
 * server context ctx would (a reload's: new anchors, new CRLs), with the
 * chain the peer sent at its handshake.  A resumed session's peer sent no
 * chain: its leaf is checked for expiry and against ctx's CRLs.  Returns 0
 * when the certificate is still accepted (or the peer sent none); otherwise
 * -1 with the sentence in err and the category in *fail.
 */
int tls_reverify(SSL_CTX *ctx, SSL *ssl, enum verify_fail *fail, struct duet_err *err);

/*
 * Whether two server contexts bind sessions alike (the same listener name,
 * anchors, CRL contents, verification settings and policy): a connection
 * verified under one is verified under the other.
 */
bool tls_same_binding(SSL_CTX *a, SSL_CTX *b);

/*
 * The certificate a refused peer presented (the leaf of the chain the
 * verification refused, or a refused resumed session's), for the log; NULL
 * when it sent none.  Not verified: never an identity.  Owned by ssl.
 */
X509 *tls_presented_cert(const SSL *ssl);

/* Most keys a --ticket-keys file may hold. */
#define TLS_MAX_TICKET_KEYS 8

/*
 * Rotate a shared ticket keys file (--ticket-keys): a new random key goes
 * first (it seals new tickets), the keys already there follow (they still open
 * the tickets they sealed), at most `keep` keys in all.  A missing file is
 * created with one key.  The file is checked like the proxy checks it (mode
 * 0600, well-formed keys) and replaced atomically with mode 0600.  *nkeys is
 * the number of keys written.
 */
int tls_ticket_keys_rotate(const char *path, int keep, int *nkeys, struct duet_err *err) MUST_CHECK;

/* How many handshakes the verified-chain cache answered, all contexts together. */
unsigned long tls_chain_cache_hits(void);

/* The verified peer's identity (NULL when the peer sent no certificate). */
int tls_peer_identity(SSL *ssl, struct duet_identity **out, struct duet_err *err) MUST_CHECK;

#endif
