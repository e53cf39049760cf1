/* SPDX-License-Identifier: Apache-2.0 */
/*
 * agent.h - `duet agent`: keeps a host's certificates fresh against
 * `duet ca serve` (docs/ca-server.md is the contract, docs/agent.md the
 * operator's page).
 *
 * The agent bootstraps its trust from the configured root fingerprint (never
 * trust on first use), enrolls each certificate once with a one-time token
 * (the key is made here and never leaves the host), renews it over mTLS at
 * about two thirds of its lifetime with jitter, writes files atomically, runs
 * a reload hook, and keeps local copies of the CA's roots and CRL fresh.  A CA
 * that cannot be reached is retried with bounded exponential backoff; a
 * working certificate is never deleted.
 *
 * Modules: config.c (the YAML file), schedule.c (when to renew, backoff),
 * https.c (a small blocking HTTPS client), install.c (what the CA issued:
 * kept pending in the state directory, then installed), crlcheck.c (a
 * fetched CRL checked before it replaces the local copy), agent.c (the
 * lifecycle).
 */
#ifndef DUET_AGENT_AGENT_H
#define DUET_AGENT_AGENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <openssl/ssl.h>

#include "ca/keys.h"
#include "ca/profile.h"
#include "lib/err.h"

/* --- configuration (config.c) --- */

/* One CA endpoint: https://HOST[:PORT]. */
struct agent_url {
    char *text; /* as configured, for messages */
    char *host; /* without brackets for IPv6 literals */
    char *port; /* "443" when not given */
};

enum agent_hook_kind { AGENT_HOOK_NONE = 0, AGENT_HOOK_EXEC, AGENT_HOOK_SIGNAL };

/* One certificate the agent keeps. */
struct agent_cert_cfg {
    char *name;       /* the inventory identity, for logs and the state file */
    char *cert;       /* leaf followed by the issuing CA, PEM, 0644 */
    char *key;        /* private key, PKCS#8 PEM, 0600 */
    char *chain;      /* optional: the issuing chain alone */
    char *roots;      /* optional: the CA roots for local relying parties */
    char *crl;        /* optional: the CA's CRL, kept fresh */
    char *bundle;     /* optional: leaf, chain and key in one file (0600), one rename */
    char *token_file; /* optional: the enrollment token, deleted after use */
    struct profile_san *sans; /* names the enrollment CSR asks for (the token decides) */
    size_t nsans;
    enum ca_key_type key_type;
    bool rekey; /* renew with a new key each time */
    enum agent_hook_kind hook;
    char **hook_argv; /* AGENT_HOOK_EXEC: NULL-terminated */
    size_t hook_argc;
    int hook_signal; /* AGENT_HOOK_SIGNAL */
    char *pid_file;
};

struct agent_cfg {
    char *path; /* the configuration file */
    struct agent_url *urls;
    size_t nurls;
    char *root_fingerprint; /* upper-case colon hex */
    char *state_dir;
    char *log;           /* NULL: stderr */
    int64_t refresh;     /* seconds between CRL and roots refreshes (default 1h) */
    int64_t backoff_min; /* seconds (default 5) */
    int64_t backoff_max; /* seconds (default 600) */
    struct agent_cert_cfg *certs;
    size_t ncerts;
};

/*
 * Read and check a configuration file completely: every error names the file,
 * line, column and key.  *cfg is owned by the caller (agent_config_free), also
 * on failure.
 */
int agent_config_load(const char *path, struct agent_cfg *cfg, struct duet_err *err) MUST_CHECK;
void agent_config_free(struct agent_cfg *cfg);
/* Parse "https://HOST[:PORT][/]" into *u (owned by the caller, agent_url_clear). */
int agent_url_parse(const char *text, struct agent_url *u, struct duet_err *err) MUST_CHECK;
void agent_url_clear(struct agent_url *u);
/*
 * Normalize a SHA-256 fingerprint to upper-case colon hex: accepts colons or
 * none, any case.  Returns a new string or NULL (not 32 bytes of hex).
 */
char *agent_fingerprint_norm(const char *text);

/* --- schedule (schedule.c): pure functions of their arguments --- */

/*
 * When to renew a certificate valid from not_before to not_after: at
 * renew_after when the CA gave one (non-zero and inside the validity), else
 * at two thirds of the lifetime; plus a jitter of rnd modulo 5% of the
 * lifetime (+1), never later than one second before not_after.
 */
int64_t agent_renew_time(int64_t not_before, int64_t not_after, int64_t renew_after, uint64_t rnd);
/* Two thirds of the lifetime, the time `--once` and `--status` use (no jitter). */
int64_t agent_renew_base(int64_t not_before, int64_t not_after, int64_t renew_after);
/*
 * The delay before retry number `attempt` (0 for the first retry): the
 * ceiling min(lo * 2^attempt, hi), of which a random half is taken away
 * (rnd), never under lo: always in [lo, hi].
 */
int64_t agent_backoff(unsigned attempt, int64_t lo, int64_t hi, uint64_t rnd);

/* --- HTTPS (https.c) --- */

struct agent_resp {
    int status;
    char *body; /* NUL-terminated, owned (free) */
    size_t len;
};

/* Largest answer body read. */
#define AGENT_MAX_BODY (1024u * 1024u)

/*
 * One HTTP/1.1 request over TLS with ctx (`Connection: close`), blocking with
 * `timeout` seconds for the connection and for each read or write.  When
 * verify_name, the server certificate must carry the URL's host (ctx is a
 * tls_client_ctx_new context); otherwise nothing is checked (bootstrap only).
 * json: the request body (application/json) or NULL.  Fills *r (owned by the
 * caller, agent_resp_clear) with any status; fails only when no answer came.
 */
int agent_https(SSL_CTX *ctx, bool verify_name, const struct agent_url *u, const char *method,
                const char *path, const char *json, int timeout, struct agent_resp *r,
                struct duet_err *err) MUST_CHECK;
void agent_resp_clear(struct agent_resp *r);

/* --- installation (install.c) --- */

/* What the CA issued, until it is installed. */
struct agent_issued {
    X509 *leaf;
    STACK_OF(X509) * chain; /* the issuing chain that follows the leaf (no root) */
    EVP_PKEY *newkey;       /* the key made for it (enrollment, rekey); NULL: the key file stays */
    char serial[128];       /* the leaf's, colon hex */
};

void agent_issued_clear(struct agent_issued *is);

/*
 * Keep what the CA issued in the state directory before any live file is
 * touched: `pending` (STATE_DIR/NAME.pending.pem) receives the leaf, the chain
 * and the new key when there is one (then mode 0600), atomically.  Once the CA has
 * issued, a failure to write the live files loses nothing: the next run
 * installs from there without asking the CA again.
 */
int agent_pending_write(const char *pending, const struct agent_issued *is,
                        struct duet_err *err) MUST_CHECK;
/*
 * Read a pending issuance: 1 and *is filled (owned by the caller) when
 * `pending` exists, 0 when it does not, -1 when it cannot be used (err names
 * the file).  A pending file without a key is for the key in key_path: the
 * certificate must certify that key, as a pending key must match its
 * certificate.
 */
int agent_pending_read(const char *pending, const char *key_path, struct agent_issued *is,
                       struct duet_err *err) MUST_CHECK;

/*
 * Install `is` into the files of c.  A new key and its certificate are written
 * completely to NAME.agent-new files first, then renamed key first,
 * certificate second; a kept key means the certificate alone is replaced.
 * Then the chain file, and the bundle (leaf, chain, key: one file, one
 * rename, so its reader always holds a matching pair).  Errors name the
 * file.
 */
int agent_install(const struct agent_cert_cfg *c, const struct agent_issued *is,
                  struct duet_err *err) MUST_CHECK;

/* --- CRLs (crlcheck.c) --- */

/*
 * Whether a fetched CRL file (PEM: one CRL or several, e.g. the issuing CA's
 * and the root's) may replace the local copy at `local`.  Each CRL must pass
 * duet's CRL checks (lib/revset.h: structure, a nextUpdate, no delta CRL, no
 * critical extension duet does not handle), name an issuer among `root` and
 * the certificates of `chain` that verify against it, carry that issuer's
 * signature, and be current at `now` (thisUpdate at most 5 minutes ahead,
 * nextUpdate after now).  A CRL older than the local copy's CRL of the same
 * issuer (a lower cRLNumber, or an earlier thisUpdate without numbers) is
 * refused; a local copy that fails these checks itself counts for nothing.
 * 0 when it may replace it; -1 with the reason in err.
 */
int agent_crl_check(const char *label, const uint8_t *data, size_t len, X509 *root,
                    STACK_OF(X509) * chain, const char *local, int64_t now,
                    struct duet_err *err) MUST_CHECK;

/* --- the lifecycle (agent.c) --- */

struct agent_run_opts {
    const char *token; /* --token: for the one certificate that needs enrolling */
    bool once;         /* do what is due now, then return */
};

/*
 * Run the agent: with opts->once, enroll or renew what is due now and return
 * 0 when nothing was needed or everything worked, -1 on any failure (the
 * files are left as they were); otherwise loop until SIGTERM or SIGINT.
 */
int agent_run(const struct agent_cfg *cfg, const struct agent_run_opts *opts,
              struct duet_err *err) MUST_CHECK;

/*
 * Each certificate's state as a JSON array (name, state, serial, not_after,
 * renew_after, seconds_left, and pending: the file of an issued certificate
 * waiting to be installed, which makes the state install_pending) into *out
 * (owned by the caller).  Reads files
 * only; nothing goes over the network.
 */
int agent_status(const struct agent_cfg *cfg, json_t **out, struct duet_err *err) MUST_CHECK;

#endif
