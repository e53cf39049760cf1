/* SPDX-License-Identifier: Apache-2.0 */
/*
 * diagnose.c - what a failing mTLS connection means, without sockets.
 *
 * Chains are judged as sent: RFC 8446 4.4.2 lets the chain after the leaf
 * arrive in any order, but many peers (and TLS 1.2's RFC 5246 7.4.2) expect
 * each certificate to certify the one before it, and an issuer that is
 * neither sent nor trusted is the most common cause of `unknown_ca`.  A
 * client certificate is compared with the CertificateRequest's CA names
 * (RFC 8446 4.2.4, RFC 5246 7.4.4) before it is sent, so that a refusal can
 * be read in context: the same alert means a different fix after a
 * leaf-only chain than after a full one.
 */
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "lib/diagnose.h"
#include "lib/x509util.h"

/* How many CA certificates the walk up through known certificates may take. */
#define DIAG_MAX_WALK 16

/* The stable name of a chain verdict; see diagnose.h. */
const char *
diag_chain_code(enum diag_chain c)
{
    switch (c) {
    case DIAG_CHAIN_OK:
        return "ok";
    case DIAG_CHAIN_WRONG_ORDER:
        return "wrong_order";
    case DIAG_CHAIN_MISSING:
        return "missing_issuer";
    case DIAG_CHAIN_UNRELATED:
        return "unrelated";
    case DIAG_CHAIN_BAD_SIGNATURE:
        return "bad_signature";
    }
    return "ok";
}

/* The stable name of a client verdict; see diagnose.h. */
const char *
diag_client_code(enum diag_client c)
{
    switch (c) {
    case DIAG_CLIENT_OK:
        return "ok";
    case DIAG_CLIENT_EXPIRED:
        return "expired";
    case DIAG_CLIENT_NOT_YET_VALID:
        return "not_yet_valid";
    case DIAG_CLIENT_EKU:
        return "eku";
    case DIAG_CLIENT_KEY_USAGE:
        return "key_usage";
    case DIAG_CLIENT_IS_CA:
        return "is_ca";
    }
    return "ok";
}

/* The stable name of a CA match; see diagnose.h. */
const char *
diag_ca_match_code(enum diag_ca_match m)
{
    switch (m) {
    case DIAG_CA_NO_NAMES:
        return "no_names";
    case DIAG_CA_SENT:
        return "chains";
    case DIAG_CA_NEEDS_CHAIN:
        return "needs_chain";
    case DIAG_CA_NOT_ACCEPTED:
        return "not_accepted";
    }
    return "no_names";
}

/* Whether `issuer` issued `cert` (names, key identifiers and key usage agree). */
static bool
issued_by(X509 *issuer, X509 *cert)
{
    bool ok = X509_check_issued(issuer, cert) == X509_V_OK;

    ERR_clear_error();
    return ok;
}

/*
 * Whether `issuer`'s key verifies `cert`'s signature.  Names and key
 * identifiers are only what a CA says of itself: another CA of the same name
 * (re-keyed, or someone else's), even with a copied subjectKeyIdentifier,
 * passes issued_by() but not this.
 */
static bool
signed_by(X509 *issuer, X509 *cert)
{
    EVP_PKEY *pub = X509_get0_pubkey(issuer);
    bool ok = pub != NULL && X509_verify(cert, pub) == 1;

    ERR_clear_error();
    return ok;
}

/* Whether a certificate of the store issued `cert`. */
static bool
trusted_issuer(X509_STORE *store, X509 *cert)
{
    X509_STORE_CTX *ctx = NULL;
    X509 *iss = NULL;
    bool found = false;

    if (store == NULL)
        return false;
    ctx = X509_STORE_CTX_new();
    if (ctx == NULL || !X509_STORE_CTX_init(ctx, store, cert, NULL))
        goto out;
    found = X509_STORE_CTX_get1_issuer(&iss, ctx, cert) == 1 && iss != NULL;
out:
    X509_free(iss);
    X509_STORE_CTX_free(ctx);
    ERR_clear_error();
    return found;
}

/* Analyse the order of a chain as sent; see diagnose.h. */
enum diag_chain
diag_chain_order(STACK_OF(X509) * chain, X509_STORE *trusted, int *index)
{
    int n = sk_X509_num(chain);

    *index = -1;
    for (int i = 0; i < n; i++) {
        X509 *cert = sk_X509_value(chain, i);

        if (i + 1 < n && issued_by(sk_X509_value(chain, i + 1), cert)) {
            if (signed_by(sk_X509_value(chain, i + 1), cert))
                continue;
            *index = i;
            return DIAG_CHAIN_BAD_SIGNATURE;
        }
        for (int j = i + 2; j < n; j++) {
            X509 *later = sk_X509_value(chain, j);

            if (issued_by(later, cert) && signed_by(later, cert)) {
                *index = i;
                return DIAG_CHAIN_WRONG_ORDER;
            }
        }
        if (x509u_self_issued(cert) || trusted_issuer(trusted, cert)) {
            /* The path is complete here: anything after it certifies nothing sent. */
            if (i + 1 < n) {
                *index = i + 1;
                return DIAG_CHAIN_UNRELATED;
            }
            return DIAG_CHAIN_OK;
        }
        *index = i;
        return DIAG_CHAIN_MISSING;
    }
    return DIAG_CHAIN_OK;
}

/* Check a leaf for client authentication; see diagnose.h. */
enum diag_client
diag_client_usable(X509 *leaf, int64_t now)
{
    uint32_t flags = X509_get_extension_flags(leaf);
    int64_t nb = 0, na = 0;

    if (x509u_time(X509_get0_notAfter(leaf), &na) && na < now)
        return DIAG_CLIENT_EXPIRED;
    if (x509u_time(X509_get0_notBefore(leaf), &nb) && nb > now)
        return DIAG_CLIENT_NOT_YET_VALID;
    if (flags & EXFLAG_CA)
        return DIAG_CLIENT_IS_CA;
    if ((flags & EXFLAG_XKUSAGE) &&
        !(X509_get_extended_key_usage(leaf) & (XKU_SSL_CLIENT | XKU_ANYEKU)))
        return DIAG_CLIENT_EKU;
    if ((flags & EXFLAG_KUSAGE) && !(X509_get_key_usage(leaf) & KU_DIGITAL_SIGNATURE))
        return DIAG_CLIENT_KEY_USAGE;
    return DIAG_CLIENT_OK;
}

/* Whether every certificate of chain is within its validity at now; see diagnose.h. */
bool
diag_chain_current(STACK_OF(X509) * chain, int64_t now)
{
    for (int i = 0; i < sk_X509_num(chain); i++) {
        X509 *x = sk_X509_value(chain, i);
        int64_t nb = 0, na = 0;

        if (!x509u_time(X509_get0_notAfter(x), &na) || na < now ||
            !x509u_time(X509_get0_notBefore(x), &nb) || nb > now)
            return false;
    }
    return true;
}

/* The entry of `names` equal to `name`, or NULL. */
static const X509_NAME *
name_in(const STACK_OF(X509_NAME) * names, const X509_NAME *name)
{
    for (int i = 0; i < sk_X509_NAME_num(names); i++) {
        const X509_NAME *n = sk_X509_NAME_value(names, i);
        if (X509_NAME_cmp(n, name) == 0)
            return n;
    }
    return NULL;
}

/* A certificate of `known` that issued `cert` and is not `cert` itself, or NULL. */
static X509 *
known_issuer(STACK_OF(X509) * known, X509 *cert)
{
    for (int i = 0; i < sk_X509_num(known); i++) {
        X509 *k = sk_X509_value(known, i);
        if (X509_cmp(k, cert) != 0 && issued_by(k, cert))
            return k;
    }
    return NULL;
}

/* Compare a chain we send with the CA names a server accepts; see diagnose.h. */
enum diag_ca_match
diag_ca_match(STACK_OF(X509) * sent, const STACK_OF(X509_NAME) * names, STACK_OF(X509) * known,
              const X509_NAME **matched, X509 **missing)
{
    const X509_NAME *m = NULL;
    X509 *top = NULL, *first = NULL;
    int n = sk_X509_num(sent);

    if (matched != NULL)
        *matched = NULL;
    if (missing != NULL)
        *missing = NULL;
    if (names == NULL || sk_X509_NAME_num(names) == 0)
        return DIAG_CA_NO_NAMES;
    for (int i = 0; i < n; i++) {
        top = sk_X509_value(sent, i);
        if ((m = name_in(names, X509_get_subject_name(top))) != NULL ||
            (m = name_in(names, X509_get_issuer_name(top))) != NULL) {
            if (matched != NULL)
                *matched = m;
            return DIAG_CA_SENT;
        }
        if (i + 1 < n && !issued_by(sk_X509_value(sent, i + 1), top))
            break; /* what follows does not continue this path */
    }
    for (int step = 0; top != NULL && step < DIAG_MAX_WALK; step++) {
        X509 *k = known_issuer(known, top);
        if (k == NULL)
            break;
        if (first == NULL)
            first = k;
        if ((m = name_in(names, X509_get_subject_name(k))) != NULL ||
            (m = name_in(names, X509_get_issuer_name(k))) != NULL) {
            if (matched != NULL)
                *matched = m;
            if (missing != NULL)
                *missing = first;
            return DIAG_CA_NEEDS_CHAIN;
        }
        if (x509u_self_issued(k))
            break;
        top = k;
    }
    /*
     * A leaf sent alone whose issuer we cannot find: it most often is the
     * intermediate the leaf's file should have carried (a leaf-only file is
     * the classic mistake), rather than a CA the server does not accept.
     */
    if (n == 1 && first == NULL && !x509u_self_issued(sk_X509_value(sent, 0)))
        return DIAG_CA_NEEDS_CHAIN;
    return DIAG_CA_NOT_ACCEPTED;
}

/* The TLS name of a SignatureScheme (RFC 8446 4.2.3); see diagnose.h. */
const char *
diag_sigalg_name(unsigned code, char *buf, size_t len)
{
    static const struct {
        unsigned code;
        const char *name;
    } names[] = {
        {0x0202, "dsa_sha1"},
        {0x0302, "dsa_sha224"},
        {0x0402, "dsa_sha256"},
        {0x0502, "dsa_sha384"},
        {0x0602, "dsa_sha512"},
        {0x0201, "rsa_pkcs1_sha1"},
        {0x0203, "ecdsa_sha1"},
        {0x0301, "rsa_pkcs1_sha224"},
        {0x0303, "ecdsa_sha224"},
        {0x0401, "rsa_pkcs1_sha256"},
        {0x0501, "rsa_pkcs1_sha384"},
        {0x0601, "rsa_pkcs1_sha512"},
        {0x0403, "ecdsa_secp256r1_sha256"},
        {0x0503, "ecdsa_secp384r1_sha384"},
        {0x0603, "ecdsa_secp521r1_sha512"},
        {0x0804, "rsa_pss_rsae_sha256"},
        {0x0805, "rsa_pss_rsae_sha384"},
        {0x0806, "rsa_pss_rsae_sha512"},
        {0x0807, "ed25519"},
        {0x0808, "ed448"},
        {0x0809, "rsa_pss_pss_sha256"},
        {0x080a, "rsa_pss_pss_sha384"},
        {0x080b, "rsa_pss_pss_sha512"},
    };

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (names[i].code == code)
            return names[i].name;
    }
    snprintf(buf, len, "0x%04x", code & 0xffffu);
    return buf;
}

/* Whether a key can sign with one of the schemes; see diagnose.h. */
bool
diag_key_fits_sigalgs(const EVP_PKEY *key, const unsigned *codes, size_t n)
{
    char group[64] = "";
    size_t glen = 0;

    if (n == 0)
        return true; /* no list: the defaults of RFC 5246 7.4.1.4.1 apply */
    for (size_t i = 0; i < n; i++) {
        unsigned c = codes[i];
        if (EVP_PKEY_is_a(key, "RSA")) {
            if ((c & 0xff) == 0x01 || (c >= 0x0804 && c <= 0x0806))
                return true;
        } else if (EVP_PKEY_is_a(key, "RSA-PSS")) {
            if (c >= 0x0809 && c <= 0x080b)
                return true;
        } else if (EVP_PKEY_is_a(key, "ED25519")) {
            if (c == 0x0807)
                return true;
        } else if (EVP_PKEY_is_a(key, "ED448")) {
            if (c == 0x0808)
                return true;
        } else if (EVP_PKEY_is_a(key, "EC")) {
            if (glen == 0 &&
                !EVP_PKEY_get_utf8_string_param(key, "group", group, sizeof(group), &glen))
                glen = 0;
            if ((c == 0x0403 && strcmp(group, "prime256v1") == 0) ||
                (c == 0x0503 && strcmp(group, "secp384r1") == 0) ||
                (c == 0x0603 && strcmp(group, "secp521r1") == 0) || c == 0x0203 || c == 0x0303)
                return true;
        } else {
            return true; /* a key type this check does not know: let the handshake tell */
        }
    }
    ERR_clear_error();
    return false;
}

/* The name of a TLS alert; see diagnose.h. */
const char *
diag_alert_name(int alert)
{
    /* OpenSSL 3.0 names none of the alerts RFC 8446 6.2 added. */
    switch (alert) {
    case TLS13_AD_MISSING_EXTENSION:
        return "missing extension";
    case TLS13_AD_CERTIFICATE_REQUIRED:
        return "certificate required";
    case TLS1_AD_NO_APPLICATION_PROTOCOL:
        return "no application protocol";
    default:
        return SSL_alert_desc_string_long(alert);
    }
}

/* Fill a reading. */
static void
reading(struct diag_reading *out, const char *code, const char *meaning, const char *fix)
{
    out->code = code;
    snprintf(out->meaning, sizeof(out->meaning), "%s", meaning);
    snprintf(out->fix, sizeof(out->fix), "%s", fix);
}

/* The renewal fix for our own certificate, with its serial when known. */
static void
renew_fix(struct diag_reading *out, const struct diag_alert_ctx *ctx)
{
    snprintf(out->fix, sizeof(out->fix), "renew it: duet cert renew %s --ca-dir CA_DIR",
             ctx->serial != NULL ? ctx->serial : "SERIAL");
}

/* Read an alert about our certificate's purpose or usage, when our own check explains it. */
static bool
usage_reading(const struct diag_alert_ctx *ctx, struct diag_reading *out)
{
    if (!ctx->sent)
        return false;
    switch (ctx->client) {
    case DIAG_CLIENT_EKU:
        reading(out, "client_eku",
                "the server refused our certificate for its purpose: its extended key usage does "
                "not include clientAuth",
                "issue it with --profile client (duet cert issue NAME --profile client)");
        return true;
    case DIAG_CLIENT_KEY_USAGE:
        reading(out, "client_key_usage",
                "the server refused our certificate: its key usage does not allow "
                "digitalSignature, which a client certificate needs",
                "issue it with --profile client (duet cert issue NAME --profile client)");
        return true;
    case DIAG_CLIENT_EXPIRED:
        reading(out, "client_expired", "the server refused our certificate: it has expired", "");
        renew_fix(out, ctx);
        return true;
    case DIAG_CLIENT_NOT_YET_VALID:
        reading(out, "client_not_yet_valid",
                "the server refused our certificate: it is not valid yet",
                "wait until its notBefore, or check the clocks of both machines");
        return true;
    case DIAG_CLIENT_IS_CA:
        reading(out, "client_is_ca",
                "the server refused our certificate: it is a CA certificate, not a client one",
                "issue a client certificate: duet cert issue NAME --profile client");
        return true;
    case DIAG_CLIENT_OK:
        break;
    }
    return false;
}

/* Read unknown_ca with what we know of our chain and the server's CA names. */
static void
unknown_ca_reading(const struct diag_alert_ctx *ctx, struct diag_reading *out)
{
    switch (ctx->ca_match) {
    case DIAG_CA_NEEDS_CHAIN:
        reading(out, "client_chain_incomplete",
                "the server could not build a path from our certificate to a CA it accepts: we "
                "sent it without the intermediate CA that issued it",
                "send the chain: give a file with the leaf followed by the issuing CA");
        return;
    case DIAG_CA_SENT:
        reading(out, "server_lacks_intermediate",
                "our chain leads to a CA the server names, yet the server does not know an "
                "issuer in it: the server most likely lacks our intermediate CA, or a CRL of "
                "one of our CAs (duet proxy refuses with this alert when a CRL it needs is "
                "missing)",
                "add the intermediate CA to the server's trusted CAs (its --cacert), or send "
                "the chain up to the CA it names; on a duet proxy, give a CRL of every CA of "
                "the chain (duet doctor --config lists the missing ones)");
        return;
    case DIAG_CA_NOT_ACCEPTED:
        reading(out, "client_wrong_ca",
                "our certificate is issued by a CA the server does not trust",
                "use a certificate issued by one of the CAs the server accepts (listed above), "
                "or add our CA to the server's trusted CAs");
        return;
    case DIAG_CA_NO_NAMES:
        break;
    }
    reading(out, "unknown_ca",
            "the server does not trust the CA that issued our certificate, or could not build "
            "a path to it",
            "send the chain (the leaf followed by the issuing CA) and check that the server "
            "trusts our root CA");
}

/* Read a TLS alert in context; see diagnose.h. */
void
diag_alert_read(int alert, const struct diag_alert_ctx *ctx, struct diag_reading *out)
{
    char text[320];

    switch (alert) {
    case SSL3_AD_CERTIFICATE_EXPIRED:
        if (ctx->sent && ctx->client == DIAG_CLIENT_EXPIRED) {
            (void)usage_reading(ctx, out);
            return;
        }
        if (ctx->sent && ctx->chain_current && ctx->client == DIAG_CLIENT_OK) {
            /* OpenSSL sends this alert for X509_V_ERR_CRL_HAS_EXPIRED too (ssl_verify_alarm_type) */
            reading(out, "server_crl_stale",
                    "the server says a certificate of our chain has expired, yet every certificate "
                    "we sent is valid now: most likely the server's CRL of our issuer has passed "
                    "its nextUpdate (OpenSSL reports a stale CRL with this alert), or a CA "
                    "certificate the server holds itself has expired, or its clock is wrong",
                    "the server's operator must install a current CRL (duet crl generate --ca-dir "
                    "CA_DIR, or let duet proxy fetch it: --crl-url), renew an expired CA "
                    "certificate of its trust store, or set its clock; its log names the check");
            return;
        }
        reading(out, "chain_expired",
                "the server says a certificate of our chain has expired (an intermediate CA, or "
                "our certificate by a clock that differs from ours)",
                "renew the expired certificate (duet cert inspect shows each one's validity) and "
                "check the clocks of both machines");
        return;
    case SSL3_AD_CERTIFICATE_REVOKED:
        reading(out, "client_revoked",
                "the server found our certificate (or a CA above it) on a revocation list",
                "issue a new certificate: duet cert issue NAME --profile client --ca-dir CA_DIR");
        return;
    case TLS13_AD_CERTIFICATE_REQUIRED:
        if (!ctx->sent) {
            reading(out, "no_client_cert",
                    "the server requires a client certificate and we sent none",
                    "give one: --cert CLIENT.crt --key CLIENT.key (issued with --profile "
                    "client)");
            return;
        }
        reading(out, "client_cert_not_used",
                "the server requires a client certificate and did not get a usable one: its "
                "signature algorithms may not include our key's",
                "use a key type the server accepts (its signature algorithms are listed above)");
        return;
    case TLS1_AD_UNKNOWN_CA:
        if (!ctx->sent && ctx->requested) {
            reading(out, "no_client_cert",
                    "the server refused the connection without a client certificate",
                    "give one: --cert CLIENT.crt --key CLIENT.key (issued with --profile "
                    "client)");
            return;
        }
        unknown_ca_reading(ctx, out);
        return;
    case SSL3_AD_BAD_CERTIFICATE:
    case SSL3_AD_UNSUPPORTED_CERTIFICATE:
    case SSL3_AD_CERTIFICATE_UNKNOWN:
        if (usage_reading(ctx, out))
            return;
        if (!ctx->sent && ctx->requested) {
            reading(out, "no_client_cert",
                    "the server refused the connection without a client certificate",
                    "give one: --cert CLIENT.crt --key CLIENT.key (issued with --profile "
                    "client)");
            return;
        }
        if (ctx->sent &&
            (ctx->ca_match == DIAG_CA_NEEDS_CHAIN || ctx->ca_match == DIAG_CA_NOT_ACCEPTED)) {
            unknown_ca_reading(ctx, out);
            return;
        }
        if (ctx->sent && ctx->chain_current && ctx->client == DIAG_CLIENT_OK &&
            ctx->ca_match == DIAG_CA_SENT && !ctx->http_page) {
            /*
             * OpenSSL sends bad_certificate for a certificate or CRL not yet valid
             * (ssl_x509err2alert); revocation and stale CRLs have alerts of their own.
             */
            reading(out, "server_clock_behind",
                    "the server refused our certificate as not valid although it is valid now "
                    "by our clock: most likely the server's clock is behind (before our "
                    "certificate's notBefore), or its CRL of our issuer is not valid yet (its "
                    "thisUpdate ahead of the server's clock)",
                    "compare the server's clock with ours (duet cert inspect shows our "
                    "certificate's notBefore); the server's log names the check");
            return;
        }
        if (ctx->sent && ctx->chain_current && ctx->client == DIAG_CLIENT_OK &&
            ctx->ca_match == DIAG_CA_SENT) {
            /* an error page names no check: what is left when our chain is current and fit */
            reading(out, "client_revoked_or_stale_crl",
                    "the server refused our certificate although it is valid, usable for "
                    "clientAuth and chains to a CA the server accepts: most likely the server "
                    "found it (or its CA) revoked, or its CRL of our issuer has passed its "
                    "nextUpdate",
                    "if ours is revoked, issue a new one (duet cert issue NAME --profile client "
                    "--ca-dir CA_DIR); if the server's CRL is stale, its operator must install a "
                    "current one (duet crl generate); the server's log names the check");
            return;
        }
        snprintf(text, sizeof(text),
                 "the server refused our certificate (%s) without naming the check that failed",
                 diag_alert_name(alert));
        reading(out, "client_cert_refused", text,
                "check it as the server would: duet cert verify --purpose client --trusted "
                "SERVER_ROOTS.pem --untrusted CHAIN.pem CLIENT.crt, and read the server's log");
        return;
    case SSL3_AD_HANDSHAKE_FAILURE:
        /* What a TLS 1.2 server sends for any refused client certificate (RFC 5246 7.4.6). */
        if (ctx->requested && !ctx->sent) {
            reading(out, "no_client_cert",
                    "the server refused the connection without a client certificate",
                    "give one: --cert CLIENT.crt --key CLIENT.key (issued with --profile "
                    "client)");
            return;
        }
        if (ctx->requested && usage_reading(ctx, out))
            return;
        if (ctx->requested &&
            (ctx->ca_match == DIAG_CA_NEEDS_CHAIN || ctx->ca_match == DIAG_CA_NOT_ACCEPTED)) {
            unknown_ca_reading(ctx, out);
            return;
        }
        reading(out, "no_common_parameters",
                "the server found nothing in common with what we offered: TLS version, cipher "
                "suite, group or signature algorithm (a TLS 1.2 server also sends this when it "
                "refuses a client certificate)",
                "compare the server's TLS settings with what was offered (listed above)");
        return;
    case TLS1_AD_PROTOCOL_VERSION:
        reading(out, "protocol_version", "the server speaks no TLS version we offered (1.2, 1.3)",
                "enable TLS 1.2 or 1.3 on the server");
        return;
    case TLS1_AD_DECRYPT_ERROR:
        reading(out, "decrypt_error",
                "a signature did not verify: our private key may not belong to our certificate",
                "give the key that belongs to the certificate (duet cert inspect CERT KEY says "
                "whether they match)");
        return;
    case TLS1_AD_ACCESS_DENIED:
        reading(out, "access_denied",
                "the server verified our certificate but its policy refuses this identity",
                "ask the server's operator for a rule that admits our identity");
        return;
    case TLS1_AD_UNRECOGNIZED_NAME:
        reading(out, "unrecognized_name",
                "the server has no certificate for the name we sent (SNI)",
                "give the name the server serves with --server-name NAME");
        return;
    case TLS1_AD_INTERNAL_ERROR:
        reading(out, "internal_error", "the server failed internally during the handshake",
                "read the server's log");
        return;
    default:
        break;
    }
    snprintf(text, sizeof(text), "the server ended the connection with the alert %s",
             diag_alert_name(alert));
    reading(out, "alert", text, "read the server's log for its reason");
}
