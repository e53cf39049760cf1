/* SPDX-License-Identifier: Apache-2.0 */
/*
 * xfcc_test.c - unit tests of the identity headers sent upstream
 * (src/lib/xfcc.c): the X-Forwarded-Client-Cert mode names, the exact XFCC
 * element for a known certificate (the hash computed here with X509_digest),
 * and the quoting of values (the PROXY v2 header is tested in
 * tests/unit/proxy/ppv2_test.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "lib/err.h"
#include "lib/identity.h"
#include "lib/xfcc.h"
#include "testlib/certfactory.h"
#include "testlib/idworld.h"

/* The known certificate's subject, as identity.c renders it (RFC 4514). */
/* ...and inside the XFCC Subject quotes, with '\' and '"' escaped once more. */
#define IDW_KNOWN_SUBJECT_Q "CN=svc \\\\\\\"one\\\\\\\"\\\\, two,O=Corp"

/* Lower-case hex SHA-256 of the certificate's DER, computed independently. */
static void
sha256_hex(X509 *x, char out[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    static const char hex[] = "0123456789abcdef";

    assert_true(X509_digest(x, EVP_sha256(), md, &len));
    assert_int_equal(len, 32);
    for (unsigned int i = 0; i < len; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 0xf];
    }
    out[64] = '\0';
}

/* ---- xfcc_mode_parse ---- */

struct mcase {
    const char *text;
    enum xfcc_mode want;
    bool ok;
};

static const struct mcase mcases[] = {
    {"sanitize", XFCC_SANITIZE, true},         {"sanitize_set", XFCC_SANITIZE_SET, true},
    {"forward_only", XFCC_FORWARD_ONLY, true}, {"append_forward", XFCC_APPEND_FORWARD, true},
    {"Sanitize", XFCC_SANITIZE, false},        {"sanitize ", XFCC_SANITIZE, false},
    {"append", XFCC_SANITIZE, false},          {"", XFCC_SANITIZE, false},
};

static void
test_mode_parse(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(mcases) / sizeof(mcases[0]); i++) {
        const struct mcase *c = &mcases[i];
        enum xfcc_mode m = (enum xfcc_mode)99;
        struct duet_err err;
        char want[256];

        err_clear(&err);
        if (c->ok) {
            if (xfcc_mode_parse(c->text, &m, &err) != 0)
                fail_msg("\"%s\" refused: %s", c->text, err.msg);
            assert_int_equal(m, c->want);
            continue;
        }
        assert_int_equal(xfcc_mode_parse(c->text, &m, &err), -1);
        assert_int_equal(err.kind, DUET_ERR_INPUT);
        snprintf(want, sizeof(want),
                 "\"%s\" is not a client certificate header mode; expected sanitize, "
                 "forward_only, append_forward or sanitize_set",
                 c->text);
        assert_string_equal(err.msg, want);
        assert_int_equal(m, 99);
    }
}

static void
test_mode_parse_null(void **state)
{
    enum xfcc_mode m;
    struct duet_err err;

    (void)state;
    err_clear(&err);
    assert_int_equal(xfcc_mode_parse(NULL, &m, &err), -1);
    assert_string_equal(err.msg, "\"\" is not a client certificate header mode; expected "
                                 "sanitize, forward_only, append_forward or sanitize_set");
}

/* ---- xfcc_element ---- */

/* The element of a known certificate, exactly: URIs then DNS names, in certificate order. */
static void
test_element_known(void **state)
{
    char hash[65];
    char want[1024];
    char *got;

    (void)state;
    sha256_hex(IDW.known, hash);
    snprintf(want, sizeof(want),
             "Hash=%s;Subject=\"" IDW_KNOWN_SUBJECT_Q "\";URI=spiffe://corp/ns/prod/sa/svc;"
             "URI=https://corp.example/svc;DNS=svc.corp;DNS=*.svc.corp",
             hash);
    got = xfcc_element(IDW.id_known);
    assert_non_null(got);
    assert_string_equal(got, want);
    free(got);
}

static void
test_element_one(void **state)
{
    char hash[65];
    char want[512];
    char *got;

    (void)state;
    sha256_hex(IDW.id_one->cert, hash);
    snprintf(want, sizeof(want), "Hash=%s;Subject=\"CN=one.corp\";URI=spiffe://corp/one", hash);
    got = xfcc_element(IDW.id_one);
    assert_non_null(got);
    assert_string_equal(got, want);
    free(got);
}

/* Quoting of SAN values, on an identity whose SANs the test chooses. */
struct qcase {
    const char *value;
    const char *rendered;
};

static const struct qcase qcases[] = {
    {"spiffe://corp/plain", "spiffe://corp/plain"},
    {"urn:a,b", "\"urn:a,b\""},
    {"urn:a;b", "\"urn:a;b\""},
    {"https://x/?a=b", "\"https://x/?a=b\""},
    {"urn:say\"hi\"", "\"urn:say\\\"hi\\\"\""},
    {"urn:a\"b\\c", "\"urn:a\\\"b\\\\c\""},
    {"urn:,;=\"", "\"urn:,;=\\\"\""},
};

static void
test_element_quoting(void **state)
{
    char hash[65];

    (void)state;
    sha256_hex(IDW.id_one->cert, hash);
    for (size_t i = 0; i < sizeof(qcases) / sizeof(qcases[0]); i++) {
        char subject[] = "CN=x";
        char value[128];
        char want[512];
        struct identity_san sans[2];
        struct duet_identity fake;
        char *got;

        snprintf(value, sizeof(value), "%s", qcases[i].value);
        sans[0] = (struct identity_san){DUET_SAN_URI, value};
        sans[1] = (struct identity_san){DUET_SAN_DNS, value};
        memset(&fake, 0, sizeof(fake));
        fake.subject = subject;
        fake.cert = IDW.id_one->cert;
        fake.sans = sans;
        fake.nsans = 2;
        snprintf(want, sizeof(want), "Hash=%s;Subject=\"CN=x\";URI=%s;DNS=%s", hash,
                 qcases[i].rendered, qcases[i].rendered);
        got = xfcc_element(&fake);
        assert_non_null(got);
        if (strcmp(got, want) != 0)
            fail_msg("value %s: got %s, want %s", qcases[i].value, got, want);
        free(got);
    }
}

/* IP and email SANs are not part of the element. */
static void
test_element_skips_other_sans(void **state)
{
    char *got;

    (void)state;
    got = xfcc_element(IDW.id_known);
    assert_non_null(got);
    assert_null(strstr(got, "10.9.8.7"));
    assert_null(strstr(got, "svc@corp.example"));
    free(got);
}

/* ---- every byte a certificate may hold is escaped (issue 9 item 5) ---- */

/*
 * The documented grammar (xfcc.h), parsed strictly and independently of xfcc.c:
 * key=value pairs separated by ';'; a value is either bare (no ',', ';', '=',
 * '"', '\', space) or "quoted" with \" and \\; inside either, %XX stands for
 * one byte and every other byte is visible ASCII (space only inside quotes).
 * Returns the number of pairs, or fails the test.
 */
struct kv {
    char key[16];
    char *val; /* decoded; free() */
    size_t len;
};

static int
hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

static size_t
xfcc_split(const char *e, struct kv *out, size_t max)
{
    size_t n = 0;
    const char *p = e;

    for (const char *q = e; *q; q++) {
        unsigned char c = (unsigned char)*q;
        if (c < 0x20 || c > 0x7e)
            fail_msg("byte 0x%02x at %zu of the element", c, (size_t)(q - e));
    }
    while (*p) {
        size_t k = 0;
        bool quoted;

        assert_true(n < max);
        while (*p && *p != '=') {
            assert_true(k + 1 < sizeof(out[n].key));
            out[n].key[k++] = *p++;
        }
        out[n].key[k] = '\0';
        if (*p++ != '=')
            fail_msg("no '=' after key %s", out[n].key);
        out[n].val = malloc(strlen(p) + 1);
        assert_non_null(out[n].val);
        out[n].len = 0;
        quoted = *p == '"';
        if (quoted)
            p++;
        for (;;) {
            char c = *p;
            if (quoted && c == '"') {
                p++;
                break;
            }
            if (!quoted && (c == '\0' || c == ';'))
                break;
            if (c == '\0')
                fail_msg("unterminated quoted value for %s", out[n].key);
            if (!quoted && strchr(",=\"\\ ", c) != NULL)
                fail_msg("'%c' in the bare value of %s", c, out[n].key);
            if (quoted && c == '\\') {
                c = p[1];
                if (c != '"' && c != '\\')
                    fail_msg("\\%c inside the quoted value of %s", c, out[n].key);
                out[n].val[out[n].len++] = c;
                p += 2;
                continue;
            }
            if (c == '%') {
                int hi = hexval(p[1]), lo = hi >= 0 ? hexval(p[2]) : -1;
                if (hi < 0 || lo < 0)
                    fail_msg("'%%' not followed by two upper-case hex digits in %s", out[n].key);
                out[n].val[out[n].len++] = (char)(hi << 4 | lo);
                p += 3;
                continue;
            }
            out[n].val[out[n].len++] = c;
            p++;
        }
        out[n].val[out[n].len] = '\0';
        n++;
        if (*p == ';')
            p++;
        else if (*p != '\0')
            fail_msg("'%c' after the value of %s", *p, out[n - 1].key);
    }
    return n;
}

static void
kv_free(struct kv *kv, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(kv[i].val);
}

/* An identity with the test's subject and one URI and one DNS value; cert from IDW. */
static char *
element_of(const char *subject, const char *uri, const char *dns)
{
    struct identity_san sans[2];
    struct duet_identity fake;

    sans[0] = (struct identity_san){DUET_SAN_URI, (char *)(uintptr_t)uri};
    sans[1] = (struct identity_san){DUET_SAN_DNS, (char *)(uintptr_t)dns};
    memset(&fake, 0, sizeof(fake));
    fake.subject = (char *)(uintptr_t)subject;
    fake.cert = IDW.id_one->cert;
    fake.sans = sans;
    fake.nsans = 2;
    return xfcc_element(&fake);
}

/* Exact renderings: %XX for bytes outside visible ASCII and for '%', then Envoy's quoting. */
static const struct qcase ecases[] = {
    {"urn:a\r\nTransfer-Encoding: chunked", "\"urn:a%0D%0ATransfer-Encoding: chunked\""},
    {"urn:x\ny", "urn:x%0Ay"},
    {"urn:x\ry", "urn:x%0Dy"},
    {"urn:tab\there", "urn:tab%09here"},
    {"urn:del\x7f", "urn:del%7F"},
    {"urn:caf\xc3\xa9", "urn:caf%C3%A9"},
    {"urn:\x80\xff", "urn:%80%FF"},
    {"urn:100%", "urn:100%25"},
    {"urn:%0D", "urn:%250D"},
    {"urn:a b", "\"urn:a b\""},
    {"urn:\x01\x1f", "urn:%01%1F"},
    {"urn:q\"\r\n", "\"urn:q\\\"%0D%0A\""},
    {"urn:b\\s\n,;=", "\"urn:b\\\\s%0A,;=\""},
};

static void
test_element_escapes(void **state)
{
    char hash[65];

    (void)state;
    sha256_hex(IDW.id_one->cert, hash);
    for (size_t i = 0; i < sizeof(ecases) / sizeof(ecases[0]); i++) {
        char want[512];
        char *got = element_of("CN=x", ecases[i].value, ecases[i].value);

        assert_non_null(got);
        snprintf(want, sizeof(want), "Hash=%s;Subject=\"CN=x\";URI=%s;DNS=%s", hash,
                 ecases[i].rendered, ecases[i].rendered);
        if (strcmp(got, want) != 0)
            fail_msg("case %zu: got %s, want %s", i, got, want);
        free(got);
    }
}

/* The Subject is escaped the same way (OpenSSL's RFC 2253 printer is not trusted for it). */
static void
test_subject_escapes(void **state)
{
    char hash[65];
    char want[512];
    char *got;

    (void)state;
    sha256_hex(IDW.id_one->cert, hash);
    got = element_of("CN=a\r\nX-Evil: 1,O=\xff\"%", "urn:u", "d.example");
    assert_non_null(got);
    snprintf(want, sizeof(want),
             "Hash=%s;Subject=\"CN=a%%0D%%0AX-Evil: 1,O=%%FF\\\"%%25\";URI=urn:u;DNS=d.example",
             hash);
    assert_string_equal(got, want);
    free(got);
}

/* Every byte 0x01-0xff, alone and in runs, in every field: visible ASCII out, same bytes back. */
static void
test_every_byte_round_trips(void **state)
{
    char all[256];

    (void)state;
    for (int b = 1; b < 256; b++) {
        char v[8];
        char *got;
        struct kv kv[8];
        size_t n;

        snprintf(v, sizeof(v), "x%cy", b);
        got = element_of(v, v, v);
        assert_non_null(got);
        n = xfcc_split(got, kv, 8);
        assert_int_equal(n, 4);
        assert_string_equal(kv[0].key, "Hash");
        assert_string_equal(kv[1].key, "Subject");
        assert_string_equal(kv[2].key, "URI");
        assert_string_equal(kv[3].key, "DNS");
        for (size_t k = 1; k < 4; k++) {
            if (kv[k].len != 3 || memcmp(kv[k].val, v, 3) != 0)
                fail_msg("byte 0x%02x: %s came back as %s (element %s)", b, kv[k].key, kv[k].val,
                         got);
        }
        kv_free(kv, n);
        free(got);
    }
    for (int b = 1; b < 256; b++)
        all[b - 1] = (char)b;
    all[255] = '\0';
    {
        char *got = element_of(all, all, all);
        struct kv kv[8];
        size_t n;

        assert_non_null(got);
        n = xfcc_split(got, kv, 8);
        assert_int_equal(n, 4);
        for (size_t k = 1; k < 4; k++) {
            assert_int_equal(kv[k].len, 255);
            assert_memory_equal(kv[k].val, all, 255);
        }
        kv_free(kv, n);
        free(got);
    }
}

/*
 * A certificate whose SANs hold CR, LF, DEL and bytes above 0x7f (IA5Strings
 * built with the OpenSSL API, as a careless CA could issue them): the element
 * holds only visible ASCII and gives back the exact names.  A DNS name with a
 * NUL makes no identity at all.
 */
static void
test_certificate_with_raw_sans(void **state)
{
    static const char uri[] = "spiffe://t/x\r\nTransfer-Encoding: chunked";
    static const char dns[] = "a\r\nb\x7f\xc3\xa9.example";
    static const char email[] = "m\r\n@x.example";
    static const struct idw_rawsan r[] = {
        {GEN_URI, uri, sizeof(uri) - 1},
        {GEN_DNS, dns, sizeof(dns) - 1},
        {GEN_EMAIL, email, sizeof(email) - 1},
    };
    static const struct idw_rawsan nul[] = {{GEN_DNS, "ok.example\0.evil", 16}};
    struct duet_identity *id = NULL;
    struct duet_err err;
    struct kv kv[8];
    char hash[65];
    X509 *x = idw_leaf_raw_sans("svc\r\nX: y", r, 3);
    char *got;
    size_t n;

    (void)state;
    id = idw_identity_of(x);
    got = xfcc_element(id);
    assert_non_null(got);
    assert_null(strchr(got, '\r'));
    assert_null(strchr(got, '\n'));
    n = xfcc_split(got, kv, 8);
    assert_int_equal(n, 4);
    sha256_hex(x, hash);
    assert_string_equal(kv[0].val, hash);
    assert_string_equal(kv[1].val, id->subject);
    assert_string_equal(kv[2].key, "URI");
    assert_int_equal(kv[2].len, sizeof(uri) - 1);
    assert_memory_equal(kv[2].val, uri, sizeof(uri) - 1);
    assert_string_equal(kv[3].key, "DNS");
    assert_int_equal(kv[3].len, sizeof(dns) - 1);
    assert_memory_equal(kv[3].val, dns, sizeof(dns) - 1);
    kv_free(kv, n);
    free(got);
    identity_free(id);
    X509_free(x);

    x = idw_leaf_raw_sans("nul", nul, 1);
    err_clear(&err);
    id = NULL;
    assert_int_equal(identity_from_x509(x, &id, &err), -1);
    assert_null(id);
    assert_string_equal(err.msg,
                        "the DNS subject alternative name is malformed (embedded NUL or bad length)");
    X509_free(x);
}

int
main(void)
{
    static const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mode_parse),      cmocka_unit_test(test_mode_parse_null),
        cmocka_unit_test(test_element_known),   cmocka_unit_test(test_element_one),
        cmocka_unit_test(test_element_quoting), cmocka_unit_test(test_element_skips_other_sans),
        cmocka_unit_test(test_element_escapes), cmocka_unit_test(test_subject_escapes),
        cmocka_unit_test(test_every_byte_round_trips),
        cmocka_unit_test(test_certificate_with_raw_sans),
    };

    return cmocka_run_group_tests_name("xfcc", tests, idw_setup, idw_teardown);
}
