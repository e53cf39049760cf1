/* SPDX-License-Identifier: Apache-2.0 */
/*
 * profile_test.c - unit tests of src/ca/profile.c: the issuance policy and
 * ca.yaml.  Tables cover SAN parsing (types in any case, IPv6 in canonical
 * form, unknown types and empty values refused), the glob the patterns use,
 * and profile_check on hand-built profiles: SAN types, patterns, the SPIFFE
 * rule, require_san and the TTL bound.  ca.yaml is loaded from the text
 * ca_init writes, and broken files must be refused with
 * "ca.yaml:LINE:COL: key.path: ...".  Every refusal asserts its words.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ca/profile.h"
#include "lib/err.h"
#include "testlib/certfactory.h"

#define HOUR ((int64_t)3600)
#define DAY (24 * HOUR)

/* ---- profile_san_parse ---- */

static void
test_san_parse_accepts(void **state)
{
    static const struct {
        const char *in;
        unsigned type;
        const char *value;
    } cases[] = {
        {"dns:api.corp.example", PROFILE_SAN_DNS, "api.corp.example"},
        {"DNS:API.Corp.Example", PROFILE_SAN_DNS, "api.corp.example"},
        {"Dns:*.svc.corp.example", PROFILE_SAN_DNS, "*.svc.corp.example"},
        {"ip:10.0.0.1", PROFILE_SAN_IP, "10.0.0.1"},
        {"IP:192.168.1.254", PROFILE_SAN_IP, "192.168.1.254"},
        {"ip:2001:DB8:0:0:0:0:0:1", PROFILE_SAN_IP, "2001:db8::1"},
        {"ip:2001:0db8:0000:0000:0000:ff00:0042:8329", PROFILE_SAN_IP, "2001:db8::ff00:42:8329"},
        {"ip:::1", PROFILE_SAN_IP, "::1"},
        {"uri:spiffe://corp.example/ns/prod/sa/api", PROFILE_SAN_URI,
         "spiffe://corp.example/ns/prod/sa/api"},
        /* One URI, whatever it holds: ',' is an RFC 3986 sub-delim. */
        {"uri:urn:x,IP:10.9.8.7,DNS:*", PROFILE_SAN_URI, "urn:x,IP:10.9.8.7,DNS:*"},
        {"uri:https://corp.example/a%20b?q=1#f", PROFILE_SAN_URI,
         "https://corp.example/a%20b?q=1#f"},
        {"URI:https://corp.example/x", PROFILE_SAN_URI, "https://corp.example/x"},
        {"email:Henry@corp.example", PROFILE_SAN_EMAIL, "Henry@corp.example"},
        {"EMAIL:ops@corp.example", PROFILE_SAN_EMAIL, "ops@corp.example"},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct duet_err err = {0};
        struct profile_san s;

        if (profile_san_parse(cases[i].in, &s, &err) != 0)
            fail_msg("\"%s\" refused: %s", cases[i].in, err.msg);
        if (s.type != cases[i].type || strcmp(s.value, cases[i].value) != 0)
            fail_msg("\"%s\": got type %u value \"%s\", want %u \"%s\"", cases[i].in, s.type,
                     s.value, cases[i].type, cases[i].value);
        profile_san_clear(&s);
        assert_null(s.value);
    }
}

static void
test_san_parse_refuses(void **state)
{
    static const struct {
        const char *in;
        const char *msg;
    } cases[] = {
        {"spiffe:corp/x", "unknown type \"spiffe\"; expected dns, ip, uri or email"},
        {"FOO:bar", "unknown type \"foo\""},
        {"dns:", "the name is empty"},
        {"ip:", "the name is empty"},
        {"uri:", "the name is empty"},
        {"email:", "the name is empty"},
        {"api.corp.example", "expected dns:NAME, ip:ADDRESS, uri:URI or email:ADDRESS"},
        {":api.corp.example", "expected dns:NAME"},
        {"", "expected dns:NAME"},
        {"ip:10.0.0.256", "not an IPv4 or IPv6 address"},
        {"ip:api.corp.example", "not an IPv4 or IPv6 address"},
        {"dns:a..corp.example", "not a DNS name"},
        {"dns:bad_name.example", "not a DNS name"},
        {"dns:a.*.example", "not a DNS name"},
        {"uri:corp.example/x", "not a URI"},
        {"email:nobody", "not an email address"},
        {"email:@corp.example", "not an email address"},
        /* issue 9 item 4: control characters, spaces, characters invalid for the type */
        {"uri:spiffe://corp/x\r\nIP:127.0.0.1", "byte 0x0d at offset 15"},
        {"uri:spiffe://corp/x y", "byte 0x20 at offset 15"},
        {"dns:evil.example\x1b", "byte 0x1b at offset 12"},
        {"email:a b@corp.example", "byte 0x20"},
        {"email:a@corp_example", "not an email address"},
        {"uri:spiffe://corp/x\"y", "not a URI"},
        {"uri:spiffe://corp/%zz", "not a URI"},
        {"uri:1http://corp/x", "not a URI"},
        {"dns:a-.corp.example", "not a DNS name"},
        {"ip:10.0.0.1,IP:1.2.3.4", "not an IPv4 or IPv6 address"},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct duet_err err = {0};
        struct profile_san s;

        if (profile_san_parse(cases[i].in, &s, &err) == 0) {
            fail_msg("\"%s\" accepted as \"%s\"", cases[i].in, s.value);
        }
        assert_null(s.value);
        assert_contains(err.msg, cases[i].msg);
        if (cases[i].in[0] != '\0' && strpbrk(cases[i].in, "\r\n\x1b") == NULL)
            assert_contains(err.msg, cases[i].in); /* the message quotes the input */
        /* ... escaped: no control byte of a name reaches a message */
        assert_null(strpbrk(err.msg, "\r\n\x1b"));
        profile_san_clear(&s);
    }
}

/* ---- profile_san_from_name: names from a CSR, checked on their exact bytes ---- */

static GENERAL_NAME *
name_of(int type, const char *bytes, size_t len)
{
    GENERAL_NAME *g = GENERAL_NAME_new();
    ASN1_OCTET_STRING *a = ASN1_OCTET_STRING_new(); /* IA5String and OCTET STRING alike */

    assert_non_null(g);
    assert_non_null(a);
    assert_true(ASN1_STRING_set(a, bytes, (int)len));
    if (type != GEN_IPADD)
        a->type = V_ASN1_IA5STRING;
    GENERAL_NAME_set0_value(g, type, a);
    return g;
}

static void
test_san_from_name(void **state)
{
    static const struct {
        int type;
        const char *bytes;
        size_t len;
        unsigned want_type; /* 0: refused */
        const char *want;   /* the value, or words of the refusal */
    } cases[] = {
        {GEN_URI, "spiffe://c/x,IP:127.0.0.1", 25, PROFILE_SAN_URI, "spiffe://c/x,IP:127.0.0.1"},
        {GEN_DNS, "API.Corp.Example", 16, PROFILE_SAN_DNS, "api.corp.example"},
        {GEN_EMAIL, "ops@corp.example", 16, PROFILE_SAN_EMAIL, "ops@corp.example"},
        {GEN_IPADD, "\x7f\x00\x00\x01", 4, PROFILE_SAN_IP, "127.0.0.1"},
        {GEN_URI, "spiffe://c/x\r\nIP:1.2.3.4", 24, 0,
         "the CSR: URI name \"spiffe://c/x\\x0d\\x0aIP:1.2.3.4\": byte 0x0d at offset 12"},
        {GEN_URI, "spiffe://c/x\0IP:1.2.3.4", 23, 0, "byte 0x00 at offset 12"},
        {GEN_DNS, "a.example\x1b[2J", 13, 0, "byte 0x1b at offset 9"},
        {GEN_DNS, "a,b.example", 11, 0, "not a DNS name"},
        {GEN_IPADD, "\x7f\x00\x00\x01\x01", 5, 0, "malformed IP address name (5 bytes"},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        GENERAL_NAME *g = name_of(cases[i].type, cases[i].bytes, cases[i].len);
        struct profile_san s;
        struct duet_err err = {0};
        int rc = profile_san_from_name(g, "the CSR", &s, &err);

        if (cases[i].want_type != 0) {
            if (rc != 0)
                fail_msg("case %zu refused: %s", i, err.msg);
            assert_int_equal(s.type, cases[i].want_type);
            assert_string_equal(s.value, cases[i].want);
            /* and back to a structure: the same type, one name */
            GENERAL_NAME *back = profile_san_to_name(&s);
            assert_non_null(back);
            assert_int_equal(back->type, cases[i].type);
            GENERAL_NAME_free(back);
        } else {
            if (rc == 0)
                fail_msg("case %zu accepted as \"%s\"", i, s.value);
            assert_null(s.value);
            assert_contains(err.msg, cases[i].want);
            assert_null(strpbrk(err.msg, "\r\n\x1b"));
        }
        profile_san_clear(&s);
        GENERAL_NAME_free(g);
    }
    {
        /* Types duet does not issue are named. */
        GENERAL_NAME *g = GENERAL_NAME_new();
        struct profile_san s;
        struct duet_err err = {0};
        X509_NAME *dn = X509_NAME_new();
        assert_non_null(g);
        GENERAL_NAME_set0_value(g, GEN_DIRNAME, dn);
        assert_int_equal(profile_san_from_name(g, "the CSR", &s, &err), -1);
        assert_contains(err.msg, "the CSR asks for a directoryName name");
        GENERAL_NAME_free(g);
    }
}

/* ---- profile_glob ---- */

static void
test_glob(void **state)
{
    static const struct {
        const char *pat, *text;
        bool want;
    } cases[] = {
        {"*.corp.example", "a.corp.example", true},
        {"*.corp.example", "a.b.corp.example", true}, /* '*' crosses dots */
        {"*.corp.example", "corp.example", false},
        {"*.corp.example", "a.corp.example.evil", false},
        {"api.corp.example", "api.corp.example", true},
        {"api.corp.example", "api2.corp.example", false},
        {"spiffe://corp/*", "spiffe://corp/ns/prod/sa/api", true},
        {"spiffe://corp/*", "spiffe://corporate/x", false},
        {"spiffe://corp/ns/*/sa/api", "spiffe://corp/ns/prod/sa/api", true},
        {"spiffe://corp/ns/*/sa/api", "spiffe://corp/ns/prod/sa/web", false},
        {"a?c", "abc", true},
        {"a?c", "ac", false},
        {"a?c", "abbc", false},
        {"ABC", "abc", false}, /* case-sensitive */
        {"a*b*c", "aXXbYYc", true},
        {"a*b*c", "aXXbYY", false},
        {"*x", "xxxx", true},
        {"*", "", true},
        {"*", "anything.at/all", true},
        {"", "", true},
        {"", "a", false},
        {"a", "", false},
        {"**.example", "a.example", true},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (profile_glob(cases[i].pat, cases[i].text) != cases[i].want)
            fail_msg("profile_glob(\"%s\", \"%s\") should be %s", cases[i].pat, cases[i].text,
                     cases[i].want ? "true" : "false");
    }
}

/* ---- profile_check on hand-built profiles ---- */

static char *server_dns[] = {"*.svc.corp.example", "api.corp.example"};
static char *client_email[] = {"*@corp.example"};
static char *spiffe_uri[] = {"spiffe://*"}; /* the pattern lets every URI reach the SPIFFE rule */

static struct ca_profile profiles[] = {
    {
        .name = "server",
        .eku = PROFILE_EKU_SERVER,
        .default_ttl = 30 * DAY,
        .max_ttl = 90 * DAY,
        .san_types = PROFILE_SAN_DNS | PROFILE_SAN_IP,
        .require_san = true,
        .dns = {server_dns, 2},
    },
    {
        .name = "client",
        .eku = PROFILE_EKU_CLIENT,
        .default_ttl = 7 * DAY,
        .max_ttl = 30 * DAY,
        .san_types = PROFILE_SAN_URI | PROFILE_SAN_DNS | PROFILE_SAN_EMAIL,
        .require_san = true,
        .spiffe = true,
        .uri = {spiffe_uri, 1},
        .email = {client_email, 1},
    },
    {
        .name = "device",
        .eku = PROFILE_EKU_CLIENT,
        .default_ttl = 365 * DAY,
        .max_ttl = 730 * DAY,
        .san_types = PROFILE_SAN_DNS | PROFILE_SAN_IP | PROFILE_SAN_URI | PROFILE_SAN_EMAIL,
        .require_san = false,
    },
};

static struct ca_config cfg = {
    .path = "ca.yaml",
    .name = "Corp",
    .trust_domain = "corp.example",
    .key_type = "p256",
    .profiles = profiles,
    .nprofiles = sizeof(profiles) / sizeof(profiles[0]),
};

/*
 * Run profile_check for a profile with SANs given as "type:value" strings
 * (at most 4, NULL-terminated); returns its result and leaves the message.
 */
static int
check(const char *profile, const char *const *names, int64_t ttl, struct duet_err *err)
{
    const struct ca_profile *p = ca_config_profile(&cfg, profile);
    struct profile_san sans[4];
    size_t n = 0;
    int rc;

    if (p == NULL)
        fail_msg("no profile %s", profile);
    for (; names != NULL && names[n] != NULL; n++) {
        struct duet_err perr = {0};
        assert_true(n < 4);
        if (profile_san_parse(names[n], &sans[n], &perr) != 0)
            fail_msg("%s: %s", names[n], perr.msg);
    }
    err_clear(err);
    rc = profile_check(&cfg, p, sans, n, ttl, err);
    for (size_t i = 0; i < n; i++)
        profile_san_clear(&sans[i]);
    return rc;
}

#define NAMES(...) ((const char *const[]){__VA_ARGS__, NULL})

static void
test_config_profile_lookup(void **state)
{
    (void)state;
    assert_ptr_equal(ca_config_profile(&cfg, "client"), &profiles[1]);
    assert_null(ca_config_profile(&cfg, "Client"));
    assert_null(ca_config_profile(&cfg, "nope"));
    assert_null(ca_config_profile(&cfg, NULL));
}

static void
test_check_accepts(void **state)
{
    struct duet_err err = {0};

    (void)state;
    if (check("server", NAMES("dns:a.svc.corp.example", "dns:API.corp.example", "ip:10.1.2.3"),
              30 * DAY, &err) != 0)
        fail_msg("server: %s", err.msg);
    /* Exactly the maximum is fine. */
    if (check("server", NAMES("dns:x.y.svc.corp.example"), 90 * DAY, &err) != 0)
        fail_msg("server at max_ttl: %s", err.msg);
    if (check("client",
              NAMES("uri:spiffe://corp.example/ns/prod/sa/api", "dns:api.corp.example",
                    "email:ops@corp.example"),
              DAY, &err) != 0)
        fail_msg("client: %s", err.msg);
    /* require_san off: no names at all. */
    if (check("device", NULL, 365 * DAY, &err) != 0)
        fail_msg("device: %s", err.msg);
}

static void
test_check_refuses(void **state)
{
    static const struct {
        const char *what;
        const char *profile;
        const char *names[4];
        int64_t ttl;
        const char *msg[3];
    } cases[] = {
        {"SAN type not allowed",
         "server",
         {"dns:a.svc.corp.example", "uri:spiffe://corp.example/x"},
         DAY,
         {"name uri:spiffe://corp.example/x is not allowed by profile server",
          "(it allows dns, ip)"}},
        {"email on server",
         "server",
         {"email:a@corp.example"},
         DAY,
         {"name email:a@corp.example is not allowed by profile server"}},
        {"DNS pattern mismatch",
         "server",
         {"dns:evil.example"},
         DAY,
         {"name dns:evil.example is not allowed by profile server",
          "must match one of *.svc.corp.example, api.corp.example"}},
        {"DNS pattern: the bare suffix does not match *.",
         "server",
         {"dns:svc.corp.example"},
         DAY,
         {"name dns:svc.corp.example is not allowed", "must match one of"}},
        {"email pattern mismatch",
         "client",
         {"uri:spiffe://corp.example/a", "email:eve@evil.example"},
         DAY,
         {"name email:eve@evil.example is not allowed by profile client",
          "must match one of *@corp.example"}},
        {"URI pattern mismatch",
         "client",
         {"uri:https://corp.example/a"},
         DAY,
         {"name uri:https://corp.example/a is not allowed by profile client",
          "must match one of spiffe://*"}},
        {"SPIFFE: no URI SAN",
         "client",
         {"dns:api.corp.example"},
         DAY,
         {"profile client requires exactly one URI SAN", "spiffe://corp.example/", "0 given"}},
        {"SPIFFE: two URI SANs",
         "client",
         {"uri:spiffe://corp.example/a", "uri:spiffe://corp.example/b"},
         DAY,
         {"profile client requires exactly one URI SAN", "2 given"}},
        {"SPIFFE: wrong trust domain",
         "client",
         {"uri:spiffe://other.example/ns/prod"},
         DAY,
         {"URI spiffe://other.example/ns/prod is not a SPIFFE ID of trust domain corp.example",
          "expected spiffe://corp.example/PATH"}},
        {"SPIFFE: trust domain only as a prefix",
         "client",
         {"uri:spiffe://corp.example.evil/x"},
         DAY,
         {"URI spiffe://corp.example.evil/x is not a SPIFFE ID of trust domain corp.example"}},
        {"SPIFFE: empty path",
         "client",
         {"uri:spiffe://corp.example/"},
         DAY,
         {"URI spiffe://corp.example/ is not a SPIFFE ID"}},
        {"SPIFFE: injected names in the path",
         "client",
         {"uri:spiffe://corp.example/x,IP:10.9.8.7,DNS:*"},
         DAY,
         {"is not a SPIFFE ID: its path must be", "SPIFFE ID specification"}},
        {"SPIFFE: dot segment",
         "client",
         {"uri:spiffe://corp.example/a/../b"},
         DAY,
         {"is not a SPIFFE ID: its path must be"}},
        {"wildcard without wildcard: true",
         "server",
         {"dns:*.svc.corp.example"},
         DAY,
         {"name dns:*.svc.corp.example is a wildcard, which profile server does not issue",
          "wildcard: true"}},
        {"ttl over max",
         "server",
         {"dns:a.svc.corp.example"},
         91 * DAY,
         {"ttl of 2184 hours is over the maximum of 2160 hours of profile server"}},
        {"ttl zero", "server", {"dns:a.svc.corp.example"}, 0, {"ttl must be positive"}},
        {"require_san",
         "server",
         {NULL},
         DAY,
         {"profile server requires at least one subject alternative name"}},
        {"require_san on a SPIFFE profile",
         "client",
         {NULL},
         DAY,
         {"profile client requires at least one subject alternative name"}},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct duet_err err = {0};
        if (check(cases[i].profile, cases[i].names, cases[i].ttl, &err) == 0)
            fail_msg("%s: accepted", cases[i].what);
        for (size_t k = 0; k < 3 && cases[i].msg[k] != NULL; k++) {
            if (strstr(err.msg, cases[i].msg[k]) == NULL)
                fail_msg("%s: expected \"%s\" in \"%s\"", cases[i].what, cases[i].msg[k],
                         err.msg);
        }
    }
}

/* ---- ca.yaml ---- */

static struct {
    char *dir;
} F;

static int
setup(void **state)
{
    (void)state;
    F.dir = cf_tmpdir();
    return 0;
}

static int
teardown(void **state)
{
    (void)state;
    cf_tmpdir_remove(F.dir);
    F.dir = NULL;
    return 0;
}

/* Write text to <tmp>/ca.yaml and load it; returns ca_config_load's result. */
static int
load_text(const char *text, struct ca_config *c, struct duet_err *err)
{
    char *path = cf_path(F.dir, "ca.yaml");
    int rc;

    cf_write_file(path, text, strlen(text));
    rc = ca_config_load(path, c, err);
    free(path);
    return rc;
}

static void
test_default_yaml_loads(void **state)
{
    struct ca_config c;
    struct duet_err err = {0};
    const struct ca_profile *p;
    char *yaml = profile_default_yaml("Acme \"Q\" \\ Corp", "acme.example", "p384", true);

    (void)state;
    assert_non_null(yaml);
    if (load_text(yaml, &c, &err) != 0)
        fail_msg("default ca.yaml refused: %s\n%s", err.msg, yaml);
    free(yaml);
    assert_string_equal(c.name, "Acme \"Q\" \\ Corp");
    assert_string_equal(c.trust_domain, "acme.example");
    assert_string_equal(c.key_type, "p384");
    assert_true(c.offline_root);
    assert_contains(c.path, "ca.yaml");
    assert_int_equal(c.nprofiles, 4);

    p = ca_config_profile(&c, "server");
    assert_non_null(p);
    assert_int_equal(p->eku, PROFILE_EKU_SERVER);
    assert_int_equal(p->default_ttl, 2160 * HOUR);
    assert_int_equal(p->max_ttl, 8760 * HOUR);
    assert_int_equal(p->san_types, PROFILE_SAN_DNS | PROFILE_SAN_IP);
    assert_true(p->require_san);
    assert_false(p->spiffe);
    assert_false(p->wildcard);
    /* What duet ca serve issues: a day; no renewal after expiry. */
    assert_int_equal(p->api_ttl, 24 * HOUR);
    assert_int_equal(p->renew_grace, 0);
    for (size_t i = 0; i < c.nprofiles; i++) {
        assert_int_equal(c.profiles[i].api_ttl, 24 * HOUR);
        assert_int_equal(c.profiles[i].renew_grace, 0);
    }

    p = ca_config_profile(&c, "client");
    assert_non_null(p);
    assert_int_equal(p->eku, PROFILE_EKU_CLIENT);
    assert_true(p->spiffe);
    /* issue 9 item 11: a client asserts its SPIFFE ID only, no DNS or email name. */
    assert_int_equal(p->san_types, PROFILE_SAN_URI);
    assert_int_equal(p->uri.n, 1);
    assert_string_equal(p->uri.v[0], "spiffe://acme.example/*");
    assert_true(p->default_ttl <= p->max_ttl);

    p = ca_config_profile(&c, "peer");
    assert_non_null(p);
    assert_int_equal(p->eku, PROFILE_EKU_SERVER | PROFILE_EKU_CLIENT);
    assert_true(p->spiffe);

    p = ca_config_profile(&c, "device");
    assert_non_null(p);
    assert_int_equal(p->eku, PROFILE_EKU_CLIENT);
    assert_false(p->require_san);
    assert_int_equal(p->san_types,
                     PROFILE_SAN_DNS | PROFILE_SAN_IP | PROFILE_SAN_URI | PROFILE_SAN_EMAIL);

    /* The default profiles enforce what they say: a client needs its SPIFFE ID. */
    {
        struct profile_san s;
        assert_int_equal(profile_san_parse("uri:spiffe://other/x", &s, &err), 0);
        assert_int_equal(profile_check(&c, ca_config_profile(&c, "client"), &s, 1, DAY, &err), -1);
        assert_contains(err.msg, "not allowed by profile client");
        profile_san_clear(&s);
    }
    ca_config_clear(&c);
    assert_null(c.profiles);
    assert_int_equal(c.nprofiles, 0);
    ca_config_clear(&c); /* twice is fine */
    ca_config_clear(NULL);
}

/* A profile "server" whose line 9 is replaced by the case's line. */
#define YAML_HEAD                                                                                  \
    "name: Corp\n"                                                                                 \
    "trust_domain: corp\n"                                                                         \
    "profiles:\n"                                                                                  \
    "  server:\n"                                                                                  \
    "    extended_key_usage: [serverAuth]\n"

static void
test_default_yaml_defaults(void **state)
{
    struct ca_config c;
    struct duet_err err = {0};
    char *yaml = profile_default_yaml("Corp", "corp", "ed25519", false);

    (void)state;
    assert_non_null(yaml);
    if (load_text(yaml, &c, &err) != 0)
        fail_msg("%s", err.msg);
    free(yaml);
    assert_string_equal(c.key_type, "ed25519");
    assert_false(c.offline_root);
    ca_config_clear(&c);

    /* key_type may be left out: p256. */
    if (load_text("name: X\ntrust_domain: x\nprofiles:\n  s:\n    extended_key_usage: "
                  "[serverAuth]\n    default_ttl: 1h\n    max_ttl: 2h\n    san_types: [dns]\n",
                  &c, &err) != 0)
        fail_msg("%s", err.msg);
    assert_string_equal(c.key_type, "p256");
    assert_int_equal(c.nprofiles, 1);
    assert_true(c.profiles[0].require_san); /* default on */
    assert_false(c.profiles[0].spiffe);
    assert_int_equal(c.profiles[0].default_ttl, HOUR);
    /* A ca.yaml from before api_ttl: 24h, or default_ttl when that is shorter; grace off. */
    assert_int_equal(c.profiles[0].api_ttl, HOUR);
    assert_int_equal(c.profiles[0].renew_grace, 0);
    ca_config_clear(&c);
    if (load_text("name: X\ntrust_domain: x\nprofiles:\n  s:\n    extended_key_usage: "
                  "[serverAuth]\n    default_ttl: 720h\n    max_ttl: 2160h\n    san_types: [dns]\n",
                  &c, &err) != 0)
        fail_msg("%s", err.msg);
    assert_int_equal(c.profiles[0].api_ttl, 24 * HOUR);
    assert_int_equal(c.profiles[0].renew_grace, 0);
    ca_config_clear(&c);
}

/* api_ttl and renew_grace as written: any order, "off" or 0, up to the bounds. */
static void
test_api_ttl_and_grace_keys(void **state)
{
    static const struct {
        const char *lines;
        int64_t api_ttl, grace;
    } cases[] = {
        {"    api_ttl: 2h\n    renew_grace: 72h\n", 2 * HOUR, 72 * HOUR},
        {"    renew_grace: off\n    api_ttl: 48h\n", 48 * HOUR, 0},
        {"    renew_grace: 0\n", 24 * HOUR, 0},
        {"    renew_grace: 0s\n", 24 * HOUR, 0},
        {"    renew_grace: 30d\n", 24 * HOUR, 30 * DAY},
        {"    renew_grace: 90s\n", 24 * HOUR, 90},
        {"    api_ttl: 48h\n    renew_grace: 1h30m\n", 48 * HOUR, 90 * 60},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct ca_config c;
        struct duet_err err = {0};
        char yaml[512];

        snprintf(yaml, sizeof(yaml),
                 YAML_HEAD "    default_ttl: 24h\n    max_ttl: 48h\n    san_types: [dns]\n%s",
                 cases[i].lines);
        if (load_text(yaml, &c, &err) != 0)
            fail_msg("case %zu refused: %s", i, err.msg);
        assert_int_equal(c.profiles[0].api_ttl, cases[i].api_ttl);
        assert_int_equal(c.profiles[0].renew_grace, cases[i].grace);
        ca_config_clear(&c);
    }
}

static void
test_config_errors(void **state)
{
    static const struct {
        const char *what;
        const char *yaml;
        const char *msg[3];
    } cases[] = {
        {"unknown profile key",
         YAML_HEAD "    default_ttl: 24h\n    max_ttl: 48h\n    san_types: [dns]\n"
                   "    colour: blue\n",
         {"ca.yaml:9:5: profiles.server.colour: unknown key",
          "expected one of extended_key_usage, default_ttl, max_ttl"}},
        {"unknown top-level key",
         "colour: blue\n" YAML_HEAD,
         {"ca.yaml:1:1: colour: unknown key", "expected one of name, trust_domain"}},
        {"max_ttl of the wrong type",
         YAML_HEAD "    default_ttl: 24h\n    max_ttl: [1]\n    san_types: [dns]\n",
         {"ca.yaml:7:14: profiles.server.max_ttl:", "is not a duration", "expected"}},
        {"bad duration",
         YAML_HEAD "    default_ttl: 10x\n    max_ttl: 48h\n    san_types: [dns]\n",
         {"ca.yaml:6:18: profiles.server.default_ttl:", "\"10x\" is not a duration",
          "expected e.g. 720h"}},
        {"negative duration",
         YAML_HEAD "    default_ttl: 24h\n    max_ttl: -1h\n    san_types: [dns]\n",
         {"ca.yaml:7:14: profiles.server.max_ttl:", "\"-1h\" is not a duration"}},
        {"unknown SAN type",
         YAML_HEAD "    default_ttl: 24h\n    max_ttl: 48h\n    san_types: [dns, spiffe]\n",
         {"ca.yaml:8:16: profiles.server.san_types:",
          "unknown SAN type \"spiffe\"; expected dns, ip, uri or email"}},
        {"unknown place for the team",
         YAML_HEAD "    default_ttl: 24h\n    max_ttl: 48h\n    san_types: [dns]\n"
                   "    team_from_owner: [o]\n",
         {"ca.yaml:9:22: profiles.server.team_from_owner:",
          "unknown place for the team \"o\"; expected ou or spiffe"}},
        {"team in the SPIFFE ID of a profile without SPIFFE IDs",
         YAML_HEAD "    default_ttl: 24h\n    max_ttl: 48h\n    san_types: [dns]\n"
                   "    team_from_owner: [ou, spiffe]\n",
         {"profiles.server:", "team_from_owner: [spiffe] needs spiffe: true"}},
        {"unknown usage",
         "name: Corp\ntrust_domain: corp\nprofiles:\n  server:\n"
         "    extended_key_usage: [codeSigning]\n",
         {"ca.yaml:5:25: profiles.server.extended_key_usage:",
          "unknown usage \"codeSigning\"; expected serverAuth or clientAuth"}},
        {"not a boolean",
         YAML_HEAD "    default_ttl: 24h\n    max_ttl: 48h\n    san_types: [dns]\n"
                   "    require_san: maybe\n",
         {"ca.yaml:9:18: profiles.server.require_san:", "\"maybe\" is not a boolean"}},
        {"missing required key",
         YAML_HEAD "    default_ttl: 24h\n    san_types: [dns]\n",
         {"ca.yaml:", "profiles.server.max_ttl: required key is missing"}},
        {"missing profiles",
         "name: Corp\ntrust_domain: corp\n",
         {"ca.yaml:", "profiles: required key is missing"}},
        {"default over max",
         YAML_HEAD "    default_ttl: 48h\n    max_ttl: 24h\n    san_types: [dns]\n",
         {"ca.yaml:5:5: profiles.server:", "default_ttl is longer than max_ttl"}},
        {"grace over 30 days",
         YAML_HEAD "    default_ttl: 24h\n    max_ttl: 48h\n    san_types: [dns]\n"
                   "    renew_grace: 31d\n",
         {"ca.yaml:9:18: profiles.server.renew_grace:", "31d is longer than 30 days",
          "at most 30d (720h)"}},
        {"grace not a duration",
         YAML_HEAD "    default_ttl: 24h\n    max_ttl: 48h\n    san_types: [dns]\n"
                   "    renew_grace: soon\n",
         {"ca.yaml:9:18: profiles.server.renew_grace:", "\"soon\" is not a grace period",
          "expected 0 (off) or a duration of at most 30d"}},
        {"grace negative",
         YAML_HEAD "    default_ttl: 24h\n    max_ttl: 48h\n    san_types: [dns]\n"
                   "    renew_grace: -1h\n",
         {"ca.yaml:9:18: profiles.server.renew_grace:", "\"-1h\" is not a grace period"}},
        {"grace a list",
         YAML_HEAD "    default_ttl: 24h\n    max_ttl: 48h\n    san_types: [dns]\n"
                   "    renew_grace: [1h]\n",
         {"ca.yaml:9:18: profiles.server.renew_grace:", "(not a scalar)"}},
        {"api_ttl over max_ttl",
         YAML_HEAD "    default_ttl: 24h\n    api_ttl: 72h\n    max_ttl: 48h\n"
                   "    san_types: [dns]\n",
         {"ca.yaml:7:14: profiles.server.api_ttl:", "72h is longer than max_ttl (48h)"}},
        {"api_ttl zero",
         YAML_HEAD "    default_ttl: 24h\n    max_ttl: 48h\n    san_types: [dns]\n"
                   "    api_ttl: 0\n",
         {"ca.yaml:9:14: profiles.server.api_ttl:", "\"0\" is not a duration"}},
        {"spiffe without uri",
         YAML_HEAD "    default_ttl: 24h\n    max_ttl: 48h\n    san_types: [dns]\n"
                   "    spiffe: true\n",
         {"ca.yaml:5:5: profiles.server:", "spiffe: true needs uri among san_types"}},
        {"bad trust domain",
         "name: Corp\ntrust_domain: Corp.Example\nprofiles: {}\n",
         {"ca.yaml:2:15: trust_domain:", "\"Corp.Example\" is not a SPIFFE trust domain"}},
        {"bad key type",
         "name: Corp\ntrust_domain: corp\nkey_type: rsa1024\n",
         {"ca.yaml:3:11: key_type:", "key type \"rsa1024\" is not supported"}},
        {"profiles not a mapping",
         "name: Corp\ntrust_domain: corp\nprofiles: [server]\n",
         {"ca.yaml:3:11: profiles:", "expected a mapping of profile names to profiles"}},
        {"no profiles",
         "name: Corp\ntrust_domain: corp\nprofiles: {}\n",
         {"ca.yaml:3:11: profiles:", "at least one profile is needed"}},
        {"name not a string",
         "name: [a, b]\ntrust_domain: corp\n",
         {"ca.yaml:1:7: name:", "expected a string"}},
        {"YAML syntax", "name: Corp\ntrust_domain: [corp\n", {"ca.yaml:"}},
        {"top level not a mapping", "- a\n- b\n", {"ca.yaml:1:1:", "expected a mapping"}},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct ca_config c;
        struct duet_err err = {0};

        memset(&c, 0x5a, sizeof(c));
        if (load_text(cases[i].yaml, &c, &err) == 0) {
            ca_config_clear(&c);
            fail_msg("%s: accepted", cases[i].what);
        }
        for (size_t k = 0; k < 3 && cases[i].msg[k] != NULL; k++) {
            if (strstr(err.msg, cases[i].msg[k]) == NULL)
                fail_msg("%s: expected \"%s\" in \"%s\"", cases[i].what, cases[i].msg[k],
                         err.msg);
        }
        /* Nothing half-built is handed back. */
        assert_null(c.profiles);
        assert_null(c.name);
        assert_int_equal(c.nprofiles, 0);
        ca_config_clear(&c);
    }
}

static void
test_config_missing_file(void **state)
{
    struct ca_config c;
    struct duet_err err = {0};
    char *path = cf_path(F.dir, "absent.yaml");

    (void)state;
    assert_int_equal(ca_config_load(path, &c, &err), -1);
    assert_contains(err.msg, path);
    assert_null(c.profiles);
    free(path);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_san_parse_accepts),     cmocka_unit_test(test_san_parse_refuses),
        cmocka_unit_test(test_san_from_name),         cmocka_unit_test(test_glob),
        cmocka_unit_test(test_config_profile_lookup), cmocka_unit_test(test_check_accepts),
        cmocka_unit_test(test_check_refuses),         cmocka_unit_test(test_default_yaml_loads),
        cmocka_unit_test(test_default_yaml_defaults), cmocka_unit_test(test_api_ttl_and_grace_keys),
        cmocka_unit_test(test_config_errors),         cmocka_unit_test(test_config_missing_file),
    };

    return cmocka_run_group_tests_name("profile", tests, setup, teardown);
}
