/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ppv2_test.c - unit tests of the PROXY protocol v2 header that TCP mode
 * sends upstream (src/proxy/ppv2.c), parsed back byte by byte (haproxy
 * doc/proxy-protocol.txt sections 2.1 and 2.2): addresses, ALPN, SNI, the
 * SSL TLV and duet's own TLVs, and values too large for a TLV refused.
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
#include "proxy/ppv2.h"
#include "testlib/certfactory.h"
#include "testlib/idworld.h"

/* The known certificate's subject, as identity.c renders it (RFC 4514). */

/* ---- ppv2_build ---- */

struct tlv {
    uint8_t type;
    const uint8_t *v;
    size_t n;
};

struct pp {
    uint8_t ver_cmd, fam;
    const uint8_t *addr;
    size_t addrlen;
    struct tlv tlvs[16];
    size_t ntlvs;
};

/* Parse TLVs that must fill [p, end) exactly; each type at most once. */
static size_t
parse_tlvs(const uint8_t *p, const uint8_t *end, struct tlv *out, size_t max)
{
    size_t n = 0;

    while (p < end) {
        assert_true(end - p >= 3);
        assert_true(n < max);
        out[n].type = p[0];
        out[n].n = (size_t)p[1] << 8 | p[2];
        out[n].v = p + 3;
        assert_true((size_t)(end - out[n].v) >= out[n].n);
        for (size_t k = 0; k < n; k++) {
            if (out[k].type == out[n].type)
                fail_msg("TLV 0x%02x appears twice", out[n].type);
        }
        p = out[n].v + out[n].n;
        n++;
    }
    assert_ptr_equal(p, end);
    return n;
}

/* Check the fixed part and split the header; every byte must be accounted for. */
static void
pp_parse(const uint8_t *buf, size_t len, struct pp *pp)
{
    static const uint8_t sig[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                    0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};
    size_t body;

    memset(pp, 0, sizeof(*pp));
    assert_true(len >= 16);
    assert_memory_equal(buf, sig, sizeof(sig));
    pp->ver_cmd = buf[12];
    pp->fam = buf[13];
    body = (size_t)buf[14] << 8 | buf[15];
    assert_int_equal(body, len - 16);
    switch (pp->fam) {
    case 0x11:
        pp->addrlen = 12;
        break;
    case 0x21:
        pp->addrlen = 36;
        break;
    case 0x00:
        pp->addrlen = 0;
        break;
    default:
        fail_msg("unexpected family byte 0x%02x", pp->fam);
    }
    assert_true(body >= pp->addrlen);
    pp->addr = buf + 16;
    pp->ntlvs = parse_tlvs(buf + 16 + pp->addrlen, buf + len, pp->tlvs, 16);
}

static const struct tlv *
find(const struct tlv *t, size_t n, uint8_t type)
{
    for (size_t i = 0; i < n; i++) {
        if (t[i].type == type)
            return &t[i];
    }
    return NULL;
}

static void
assert_tlv_str(const struct tlv *t, const char *want, uint8_t type)
{
    if (want == NULL) {
        if (t != NULL)
            fail_msg("TLV 0x%02x present, expected none", type);
        return;
    }
    if (t == NULL)
        fail_msg("TLV 0x%02x missing, expected \"%s\"", type, want);
    assert_int_equal(t->n, strlen(want));
    assert_memory_equal(t->v, want, t->n);
}

enum idsel { NO_ID = 0, ID_ONE, ID_KNOWN, ID_NOCN };

static const struct duet_identity *
idsel(enum idsel s)
{
    return s == ID_ONE ? IDW.id_one : s == ID_KNOWN ? IDW.id_known : s == ID_NOCN ? IDW.id_nocn : NULL;
}

struct ppcase {
    const char *name;
    int src_af, dst_af; /* AF_INET, AF_INET6, AF_UNIX, or 0 for NULL */
    enum idsel id;
    bool resumed;
    const char *alpn, *sni, *version, *cipher;
};

static struct ppcase ppcases[] = {
    {"IPv4, one URI SAN", AF_INET, AF_INET, ID_ONE, false, "h2", "api.corp", "TLSv1.3",
     "TLS_AES_128_GCM_SHA256"},
    {"IPv6, two URI SANs", AF_INET6, AF_INET6, ID_KNOWN, false, "http/1.1", "api.corp", "TLSv1.3",
     "TLS_AES_256_GCM_SHA384"},
    {"resumed session", AF_INET, AF_INET, ID_ONE, true, NULL, NULL, "TLSv1.3",
     "TLS_CHACHA20_POLY1305_SHA256"},
    {"no client certificate", AF_INET, AF_INET, NO_ID, false, "h2", "api.corp", "TLSv1.2",
     "ECDHE-ECDSA-AES128-GCM-SHA256"},
    {"no CN", AF_INET6, AF_INET6, ID_NOCN, false, NULL, "api.corp", "TLSv1.3", NULL},
    {"unix socket: LOCAL", AF_UNIX, AF_UNIX, ID_ONE, false, "h2", NULL, "TLSv1.3",
     "TLS_AES_128_GCM_SHA256"},
    {"mixed families: LOCAL", AF_INET, AF_INET6, ID_ONE, false, NULL, NULL, NULL, NULL},
    {"no addresses: LOCAL", 0, 0, NO_ID, false, NULL, NULL, NULL, NULL},
};

struct addrs {
    struct sockaddr_in s4, d4;
    struct sockaddr_in6 s6, d6;
    struct sockaddr_un su, du;
};

static const struct sockaddr *
addr_of(struct addrs *a, int af, bool src)
{
    switch (af) {
    case AF_INET:
        return (const struct sockaddr *)(src ? &a->s4 : &a->d4);
    case AF_INET6:
        return (const struct sockaddr *)(src ? &a->s6 : &a->d6);
    case AF_UNIX:
        return (const struct sockaddr *)(src ? &a->su : &a->du);
    default:
        return NULL;
    }
}

static void
run_ppv2(void **state)
{
    const struct ppcase *c = *state;
    static const uint8_t src4[4] = {192, 0, 2, 1}, dst4[4] = {198, 51, 100, 2};
    struct addrs a;
    struct ppv2_info info;
    const struct duet_identity *id = idsel(c->id);
    struct duet_err err;
    uint8_t *buf = NULL;
    size_t len = 0;
    struct pp pp;
    const struct tlv *ssl, *t;
    struct tlv sub[8];
    size_t nsub;
    bool ip4 = c->src_af == AF_INET && c->dst_af == AF_INET;
    bool ip6 = c->src_af == AF_INET6 && c->dst_af == AF_INET6;
    size_t nuri = 0;
    const char *uri = NULL;
    size_t expect_tlvs = 1; /* SSL */

    memset(&a, 0, sizeof(a));
    a.s4.sin_family = a.d4.sin_family = AF_INET;
    memcpy(&a.s4.sin_addr, src4, 4);
    memcpy(&a.d4.sin_addr, dst4, 4);
    a.s4.sin_port = htons(51000);
    a.d4.sin_port = htons(443);
    a.s6.sin6_family = a.d6.sin6_family = AF_INET6;
    assert_int_equal(inet_pton(AF_INET6, "2001:db8::10", &a.s6.sin6_addr), 1);
    assert_int_equal(inet_pton(AF_INET6, "2001:db8::443", &a.d6.sin6_addr), 1);
    a.s6.sin6_port = htons(51001);
    a.d6.sin6_port = htons(8443);
    a.su.sun_family = a.du.sun_family = AF_UNIX;

    memset(&info, 0, sizeof(info));
    info.src = addr_of(&a, c->src_af, true);
    info.dst = addr_of(&a, c->dst_af, false);
    info.alpn = c->alpn;
    info.sni = c->sni;
    info.tls_version = c->version;
    info.cipher = c->cipher;
    info.id = id;
    info.resumed = c->resumed;

    err_clear(&err);
    if (ppv2_build(&info, &buf, &len, &err) != 0)
        fail_msg("ppv2_build: %s", err.msg);
    pp_parse(buf, len, &pp);

    /* Version 2 with PROXY (0x21) for TCP over IP; LOCAL (0x20) otherwise. */
    assert_int_equal(pp.ver_cmd, ip4 || ip6 ? 0x21 : 0x20);
    assert_int_equal(pp.fam, ip4 ? 0x11 : ip6 ? 0x21 : 0x00);
    if (ip4) {
        static const uint8_t want[12] = {192, 0, 2, 1, 198, 51, 100, 2, 0xC7, 0x38, 0x01, 0xBB};
        assert_memory_equal(pp.addr, want, 12);
    } else if (ip6) {
        uint8_t want[36];
        memcpy(want, &a.s6.sin6_addr, 16);
        memcpy(want + 16, &a.d6.sin6_addr, 16);
        want[32] = 0xC7; /* 51001 */
        want[33] = 0x39;
        want[34] = 0x20; /* 8443 */
        want[35] = 0xFB;
        assert_memory_equal(pp.addr, want, 36);
    }

    assert_tlv_str(find(pp.tlvs, pp.ntlvs, PP2_TYPE_ALPN), c->alpn, PP2_TYPE_ALPN);
    assert_tlv_str(find(pp.tlvs, pp.ntlvs, PP2_TYPE_AUTHORITY), c->sni, PP2_TYPE_AUTHORITY);
    expect_tlvs += (c->alpn != NULL) + (c->sni != NULL);

    /* PP2_TYPE_SSL: client flags, verify (0 only for a verified certificate), sub-TLVs. */
    ssl = find(pp.tlvs, pp.ntlvs, PP2_TYPE_SSL);
    assert_non_null(ssl);
    assert_true(ssl->n >= 5);
    assert_int_equal(ssl->v[0], PP2_CLIENT_SSL | (id == NULL   ? 0
                                                  : c->resumed ? PP2_CLIENT_CERT_SESS
                                                               : PP2_CLIENT_CERT_CONN));
    {
        uint32_t verify = (uint32_t)ssl->v[1] << 24 | (uint32_t)ssl->v[2] << 16 |
                          (uint32_t)ssl->v[3] << 8 | ssl->v[4];
        if (id != NULL)
            assert_int_equal(verify, 0);
        else
            assert_int_not_equal(verify, 0);
    }
    nsub = parse_tlvs(ssl->v + 5, ssl->v + ssl->n, sub, 8);
    assert_tlv_str(find(sub, nsub, PP2_SUBTYPE_SSL_VERSION), c->version, PP2_SUBTYPE_SSL_VERSION);
    assert_tlv_str(find(sub, nsub, PP2_SUBTYPE_SSL_CN), id != NULL ? id->cn : NULL,
                   PP2_SUBTYPE_SSL_CN);
    assert_tlv_str(find(sub, nsub, PP2_SUBTYPE_SSL_CIPHER), c->cipher, PP2_SUBTYPE_SSL_CIPHER);
    assert_int_equal(nsub,
                     (c->version != NULL) + (id != NULL && id->cn != NULL) + (c->cipher != NULL));

    /* duet's TLVs: the URI only when there is exactly one, the DER whenever verified. */
    for (size_t i = 0; id != NULL && i < id->nsans; i++) {
        if (id->sans[i].type == DUET_SAN_URI) {
            nuri++;
            uri = id->sans[i].value;
        }
    }
    assert_tlv_str(find(pp.tlvs, pp.ntlvs, PP2_TYPE_DUET_URI), nuri == 1 ? uri : NULL,
                   PP2_TYPE_DUET_URI);
    expect_tlvs += nuri == 1;
    t = find(pp.tlvs, pp.ntlvs, PP2_TYPE_DUET_CERT);
    if (id == NULL) {
        assert_null(t);
    } else {
        unsigned char *der = NULL;
        int dlen = i2d_X509(id->cert, &der);
        assert_true(dlen > 0);
        assert_non_null(t);
        assert_int_equal(t->n, (size_t)dlen);
        assert_memory_equal(t->v, der, (size_t)dlen);
        OPENSSL_free(der);
        expect_tlvs++;
    }
    assert_int_equal(pp.ntlvs, expect_tlvs);
    free(buf);
}

/*
 * A value longer than a TLV can hold is refused with the TLV named, never cut
 * or left out: a certificate over 64 KiB used to be dropped from the header
 * silently; a CN over 64 KiB used to wrap the 16-bit length.
 */
static void
test_ppv2_oversized_values(void **state)
{
    static const struct idw_rawsan big_template = {GEN_DNS, NULL, 0};
    struct sockaddr_in a;
    struct ppv2_info info;
    struct duet_identity fake;
    struct duet_err err;
    struct idw_rawsan big = big_template;
    char *v = malloc(70001);
    char want[256];
    uint8_t *buf = NULL;
    size_t len = 0;
    X509 *x;
    int derlen;

    (void)state;
    assert_non_null(v);
    memset(v, 'a', 70000);
    v[70000] = '\0';
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    memset(&info, 0, sizeof(info));
    info.src = info.dst = (const struct sockaddr *)&a;
    info.tls_version = "TLSv1.3";

    /* a certificate of more than 64 KiB (a long DNS name), with no SAN in the identity */
    big.v = v;
    big.n = 70000;
    x = idw_leaf_raw_sans("big", &big, 1);
    derlen = i2d_X509(x, NULL);
    assert_true(derlen > 0xFFFF);
    memset(&fake, 0, sizeof(fake));
    fake.subject = (char *)"CN=big";
    fake.cert = x;
    info.id = &fake;
    err_clear(&err);
    assert_int_equal(ppv2_build(&info, &buf, &len, &err), -1);
    assert_null(buf);
    snprintf(want, sizeof(want),
             "the PROXY v2 TLV for the client certificate (0xe1) would hold %d bytes; "
             "at most 65535 fit",
             derlen);
    assert_string_equal(err.msg, want);
    X509_free(x);

    /* a CN of 70000 bytes */
    memset(&fake, 0, sizeof(fake));
    fake.subject = (char *)"CN=x";
    fake.cn = v;
    fake.cert = IDW.id_one->cert;
    err_clear(&err);
    assert_int_equal(ppv2_build(&info, &buf, &len, &err), -1);
    assert_string_equal(err.msg, "the PROXY v2 TLV for the client CN (0x22) would hold 70000 "
                                 "bytes; at most 65535 fit");
    free(v);
}

int
main(void)
{
    static const struct CMUnitTest fixed[] = {
        cmocka_unit_test(test_ppv2_oversized_values),
    };
    enum { NP = sizeof(ppcases) / sizeof(ppcases[0]), NF = sizeof(fixed) / sizeof(fixed[0]) };
    static char names[NP][96];
    struct CMUnitTest tests[NF + NP];
    size_t n = 0;

    for (size_t i = 0; i < NF; i++)
        tests[n++] = fixed[i];
    /* One named test per PROXY v2 case, so that TAP reports each. */
    for (size_t i = 0; i < NP; i++) {
        snprintf(names[i], sizeof(names[i]), "ppv2: %s", ppcases[i].name);
        tests[n++] = (struct CMUnitTest){
            .name = names[i], .test_func = run_ppv2, .initial_state = &ppcases[i]};
    }
    return _cmocka_run_group_tests("ppv2", tests, n, idw_setup, idw_teardown);
}
