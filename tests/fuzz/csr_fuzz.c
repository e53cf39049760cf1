/* SPDX-License-Identifier: Apache-2.0 */
/*
 * csr_fuzz.c - libFuzzer target for the rules that decide what a CSR may get
 * from the CA (src/ca/token.c's ca_token_redeem, which `duet ca serve`'s
 * enrollment calls, and src/ca/issue.c's ca_csr_check/ca_sign_csr behind
 * `duet cert sign`).  The first byte chooses the path (0x80: signed under
 * profile server, else a token of binding byte % 3) and whether the CSR is
 * signed again with a key of the target's (0x40), so that mutations of its
 * names and extensions get past the check of its signature; the rest is
 * taken as a DER CSR.  Property: a certificate issued holds only names the
 * token binds (the direct path: only DNS and IP names, which the server
 * profile allows, each one the CSR asked for), its CN is the token's name,
 * it is not a CA, it has its profile's extended key usage only, and it is
 * valid for at most the profile's max_ttl; a refusal is a non-empty sentence
 * of printable characters.  The CA is made once, in a temporary directory
 * removed at exit.
 */
#define _XOPEN_SOURCE 700
#include <arpa/inet.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>

#include "ca/ca.h"
#include "ca/profile.h"
#include "ca/token.h"
#include "lib/err.h"

#include "fuzz_ca.h"


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* What one token binds, and what its certificate must then hold. */
struct binding {
    const char *name;
    const char *profile;
    const char *sans[4];
    size_t nsans;
    const char *allowed[4]; /* the SANs bound, normalised */
    size_t nallowed;
    uint32_t xku;           /* X509_get_extended_key_usage() of its certificates */
};

static const struct binding BINDINGS[] = {
    {"web", "server", {"dns:web.fuzz.example", "dns:API.fuzz.example", "ip:192.0.2.7"}, 3,
     {"dns:web.fuzz.example", "dns:api.fuzz.example", "ip:192.0.2.7"}, 3, XKU_SSL_SERVER},
    {"alice", "client", {NULL}, 0, {"uri:spiffe://fuzz.example/alice"}, 1, XKU_SSL_CLIENT},
    {"dev", "device", {"email:dev@fuzz.example", "uri:https://fuzz.example/dev"}, 2,
     {"email:dev@fuzz.example", "uri:https://fuzz.example/dev"}, 2, XKU_SSL_CLIENT},
};
#define NBINDINGS (sizeof(BINDINGS) / sizeof(BINDINGS[0]))

static struct {
    bool ready;
    struct ca *ca;
    EVP_PKEY *key; /* signs a CSR again (0x40) */
} F;

static void
fail(const char *what, const char *detail)
{
    fprintf(stderr, "csr_fuzz: %s%s%s\n", what, detail != NULL ? ": " : "",
            detail != NULL ? detail : "");
    abort();
}

static void
setup(void)
{
    F.ca = fuzz_ca_open("csr-fuzz", "Csr Fuzz", "fuzz.example");
    if ((F.key = EVP_EC_gen("P-256")) == NULL)
        fail("key", NULL);
    F.ready = true;
}

/* A refusal: a sentence, printable, with no byte of the input that is not text. */
static void
check_refusal(const struct duet_err *err)
{
    size_t n = strlen(err->msg);

    /* CSR_FUZZ_VERBOSE=1: each refusal, to see what a corpus reaches. */
    if (getenv("CSR_FUZZ_VERBOSE") != NULL)
        fprintf(stderr, "refused: %s\n", err->msg);
    if (n == 0)
        fail("a refusal without a reason", NULL);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)err->msg[i] < 0x20 || (unsigned char)err->msg[i] > 0x7e)
            fail("a refusal with an unprintable byte", err->msg);
}

/* A SAN as "type:value", into buf; false for a type duet never issues. */
static bool
san_text(const GENERAL_NAME *g, char *buf, size_t size)
{
    const ASN1_STRING *s;
    char ip[INET6_ADDRSTRLEN];

    switch (g->type) {
    case GEN_DNS:
        s = g->d.dNSName;
        if (memchr(ASN1_STRING_get0_data(s), 0, (size_t)ASN1_STRING_length(s)) != NULL)
            return false; /* a name with a NUL inside is never one allowed */
        snprintf(buf, size, "dns:%.*s", ASN1_STRING_length(s), ASN1_STRING_get0_data(s));
        break;
    case GEN_URI:
        s = g->d.uniformResourceIdentifier;
        if (memchr(ASN1_STRING_get0_data(s), 0, (size_t)ASN1_STRING_length(s)) != NULL)
            return false; /* a name with a NUL inside is never one allowed */
        snprintf(buf, size, "uri:%.*s", ASN1_STRING_length(s), ASN1_STRING_get0_data(s));
        break;
    case GEN_EMAIL:
        s = g->d.rfc822Name;
        if (memchr(ASN1_STRING_get0_data(s), 0, (size_t)ASN1_STRING_length(s)) != NULL)
            return false; /* a name with a NUL inside is never one allowed */
        snprintf(buf, size, "email:%.*s", ASN1_STRING_length(s), ASN1_STRING_get0_data(s));
        break;
    case GEN_IPADD:
        s = g->d.iPAddress;
        if (ASN1_STRING_length(s) == 4)
            inet_ntop(AF_INET, ASN1_STRING_get0_data(s), ip, sizeof(ip));
        else if (ASN1_STRING_length(s) == 16)
            inet_ntop(AF_INET6, ASN1_STRING_get0_data(s), ip, sizeof(ip));
        else
            return false;
        snprintf(buf, size, "ip:%s", ip);
        break;
    default:
        return false;
    }
    return true;
}

/* What every certificate issued must be, whatever path issued it. */
static void
check_cert(X509 *cert, const char *profile, uint32_t xku, const char *cn)
{
    const struct ca_profile *p = ca_config_profile(ca_config(F.ca), profile);
    int days = 0, secs = 0;
    char got[256];

    if (getenv("CSR_FUZZ_VERBOSE") != NULL)
        fprintf(stderr, "issued: profile %s\n", profile);

    if (p == NULL)
        fail("no profile", profile);
    if (X509_check_ca(cert) != 0 || (X509_get_extension_flags(cert) & EXFLAG_CA))
        fail("a certificate issued for a CSR is a CA", profile);
    if (!(X509_get_extension_flags(cert) & EXFLAG_XKUSAGE) ||
        X509_get_extended_key_usage(cert) != xku)
        fail("a certificate issued for a CSR has another extended key usage", profile);
    if (!ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(cert), X509_get0_notAfter(cert)) ||
        (int64_t)days * 86400 + secs > p->max_ttl)
        fail("a certificate issued for a CSR outlives the profile's max_ttl", profile);
    if (cn != NULL) {
        if (X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, got,
                                      sizeof(got)) < 0 ||
            strcmp(got, cn) != 0)
            fail("a certificate issued for a token has another CN", got);
    }
}

/* Every SAN of cert is one of allowed[] (exactly; DNS names in any case, RFC 4343). */
static void
check_sans(X509 *cert, const char *const *allowed, size_t nallowed, const char *why)
{
    GENERAL_NAMES *gens = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
    char text[512];

    for (int i = 0; i < sk_GENERAL_NAME_num(gens); i++) {
        bool ok = false;
        if (san_text(sk_GENERAL_NAME_value(gens, i), text, sizeof(text)))
            for (size_t j = 0; j < nallowed && !ok; j++)
                ok = strcmp(text, allowed[j]) == 0 ||
                     (strncmp(text, "dns:", 4) == 0 && strcasecmp(text, allowed[j]) == 0);
        if (!ok)
            fail(why, text);
    }
    GENERAL_NAMES_free(gens);
}

/* Enrollment: a token of binding b, redeemed with req. */
static void
by_token(const struct binding *b, X509_REQ *req)
{
    struct ca_token_opts o = {.name = b->name, .profile = b->profile, .sans = b->sans,
                              .nsans = b->nsans};
    struct duet_err err = {0};
    char *token = NULL;
    X509 *cert = NULL;

    if (ca_token_create(F.ca, &o, &token, NULL, &err) != 0)
        fail("token", err.msg);
    if (ca_token_redeem(F.ca, token, req, "the CSR", 0, 0, &cert, NULL, NULL, &err) != 0) {
        check_refusal(&err);
    } else {
        check_cert(cert, b->profile, b->xku, b->name);
        check_sans(cert, b->allowed, b->nallowed,
                   "a certificate holds a name the token never bound");
    }
    X509_free(cert);
    ca_token_text_free(token);
}

/* `duet cert sign --profile server`: only names the CSR asks for, of types the profile allows. */
static void
by_sign(X509_REQ *req)
{
    struct ca_sign_opts o = {.profile = "server"};
    struct ca_csr csr = {0};
    struct duet_err err = {0};
    X509 *cert = NULL;

    if (ca_csr_check(req, "the CSR", &o, &csr, &err) != 0 ||
        ca_sign_csr(F.ca, &csr, &o, &cert, NULL, &err) != 0) {
        check_refusal(&err);
    } else {
        char *asked[64];
        size_t n = 0;
        check_cert(cert, "server", XKU_SSL_SERVER, NULL);
        for (int i = 0; i < sk_GENERAL_NAME_num(csr.names) && n < 64; i++) {
            char text[512];
            const GENERAL_NAME *g = sk_GENERAL_NAME_value(csr.names, i);
            if ((g->type == GEN_DNS || g->type == GEN_IPADD) && san_text(g, text, sizeof(text)))
                asked[n++] = strdup(text);
        }
        check_sans(cert, (const char *const *)asked, n,
                   "a signed certificate holds a name the CSR did not ask for");
        for (size_t i = 0; i < n; i++)
            free(asked[i]);
    }
    X509_free(cert);
    ca_csr_clear(&csr);
}

/* The first byte chooses the path and binding (see the top of this file); the rest is a DER CSR. */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const unsigned char *p;
    X509_REQ *req;

    if (!F.ready)
        setup();
    if (size < 1)
        return 0;
    p = data + 1;
    req = d2i_X509_REQ(NULL, &p, (long)(size - 1));
    ERR_clear_error();
    if (req == NULL)
        return 0;
    if ((data[0] & 0x40) &&
        (!X509_REQ_set_pubkey(req, F.key) || X509_REQ_sign(req, F.key, EVP_sha256()) <= 0)) {
        X509_REQ_free(req);
        ERR_clear_error();
        return 0;
    }
    if (data[0] & 0x80)
        by_sign(req);
    else
        by_token(&BINDINGS[(data[0] & 0x3f) % NBINDINGS], req);
    X509_REQ_free(req);
    ERR_clear_error();
    return 0;
}
