/* SPDX-License-Identifier: Apache-2.0 */
/*
 * config_test.c - unit tests of the agent's YAML configuration
 * (src/agent/config.c): a complete file read value by value, and a table of
 * refusals, each asserting the exact "FILE:LINE:COL: key: what" sentence.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "agent/agent.h"
#include "lib/err.h"

#define FP                                                                                         \
    "3f:1a:00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff:00:11:22:33:44:55:66:77:88:99:aa:bb:"   \
    "cc:dd"
#define FPU                                                                                        \
    "3F:1A:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:"   \
    "CC:DD"
#define HEAD                                                                                       \
    "ca_url: https://ca.example:8443\nroot_fingerprint: \"" FP "\"\nstate_dir: /var/lib/a\n"
#define CERT "certificates:\n  - name: web\n    cert: /e/web.crt\n    key: /e/web.key\n"

static char path[64];

static void
write_file(const char *text)
{
    FILE *f = fopen(path, "w");

    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int
group_setup(void **state)
{
    int fd;

    (void)state;
    snprintf(path, sizeof(path), "/tmp/agent_config_test_XXXXXX");
    fd = mkstemp(path);
    if (fd < 0)
        return -1;
    close(fd);
    return 0;
}

static int
group_teardown(void **state)
{
    (void)state;
    unlink(path);
    return 0;
}

static void
test_full(void **state)
{
    struct agent_cfg c;
    struct duet_err err;

    (void)state;
    write_file("ca_url: [https://ca1.example:8443, \"https://[::1]:9443/\"]\n"
               "root_fingerprint: " FPU "\nstate_dir: /var/lib/a\nlog: /var/log/a.jsonl\n"
               "refresh: 30m\nbackoff_min: 2s\nbackoff_max: 5m\n"
               "certificates:\n"
               "  - name: web\n    cert: /e/web.crt\n    key: /e/web.key\n    chain: /e/chain.pem\n"
               "    roots: /e/roots.pem\n    crl: /e/crl.pem\n    key_type: ed25519\n"
               "    rekey: true\n    token_file: /e/token\n    bundle: /e/web.pem\n"
               "    sans: [dns:Web-01.Corp.Example, \"uri:spiffe://corp/web\", ip:10.0.0.1]\n"
               "    on_renew: {exec: [systemctl, reload, nginx]}\n"
               "  - name: proxy\n    cert: /e/p.crt\n    key: /e/p.key\n"
               "    on_renew: {signal: SIGHUP, pid_file: /run/duet.pid}\n");
    assert_int_equal(agent_config_load(path, &c, &err), 0);
    assert_int_equal(c.nurls, 2);
    assert_string_equal(c.urls[0].host, "ca1.example");
    assert_string_equal(c.urls[0].port, "8443");
    assert_string_equal(c.urls[1].host, "::1");
    assert_string_equal(c.urls[1].port, "9443");
    assert_string_equal(c.root_fingerprint, FPU);
    assert_string_equal(c.log, "/var/log/a.jsonl");
    assert_int_equal(c.refresh, 1800);
    assert_int_equal(c.backoff_min, 2);
    assert_int_equal(c.backoff_max, 300);
    assert_int_equal(c.ncerts, 2);
    assert_int_equal(c.certs[0].key_type, CA_KEY_ED25519);
    assert_true(c.certs[0].rekey);
    assert_int_equal(c.certs[0].hook, AGENT_HOOK_EXEC);
    assert_int_equal(c.certs[0].hook_argc, 3);
    assert_string_equal(c.certs[0].hook_argv[2], "nginx");
    assert_null(c.certs[0].hook_argv[3]);
    assert_string_equal(c.certs[0].token_file, "/e/token");
    assert_string_equal(c.certs[0].bundle, "/e/web.pem");
    assert_int_equal(c.certs[0].nsans, 3);
    assert_int_equal(c.certs[0].sans[0].type, PROFILE_SAN_DNS);
    assert_string_equal(c.certs[0].sans[0].value, "web-01.corp.example");
    assert_int_equal(c.certs[0].sans[1].type, PROFILE_SAN_URI);
    assert_string_equal(c.certs[0].sans[1].value, "spiffe://corp/web");
    assert_int_equal(c.certs[0].sans[2].type, PROFILE_SAN_IP);
    assert_null(c.certs[1].bundle);
    assert_int_equal(c.certs[1].nsans, 0);
    assert_int_equal(c.certs[1].key_type, CA_KEY_P256);
    assert_false(c.certs[1].rekey);
    assert_int_equal(c.certs[1].hook, AGENT_HOOK_SIGNAL);
    assert_int_equal(c.certs[1].hook_signal, SIGHUP);
    assert_string_equal(c.certs[1].pid_file, "/run/duet.pid");
    agent_config_free(&c);
}

static void
test_defaults(void **state)
{
    struct agent_cfg c;
    struct duet_err err;

    (void)state;
    write_file(HEAD CERT);
    assert_int_equal(agent_config_load(path, &c, &err), 0);
    assert_int_equal(c.nurls, 1);
    assert_null(c.log);
    assert_int_equal(c.refresh, 3600);
    assert_int_equal(c.backoff_min, 5);
    assert_int_equal(c.backoff_max, 600);
    assert_int_equal(c.certs[0].hook, AGENT_HOOK_NONE);
    assert_null(c.certs[0].chain);
    agent_config_free(&c);
}

static void
test_fingerprint_norm(void **state)
{
    char *s;

    (void)state;
    s = agent_fingerprint_norm("3f1a00112233445566778899aabbccddeeff00112233445566778899aabbccdd");
    assert_string_equal(s, FPU);
    free(s);
    assert_null(agent_fingerprint_norm("3F:1A"));
    assert_null(agent_fingerprint_norm(FP "00"));
    assert_null(agent_fingerprint_norm("zz:1A:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11"
                                       ":22:33:44:55:66:77:88:99:AA:BB:CC:DD"));
}

struct ecase {
    const char *name;
    const char *yaml;
    const char *msg; /* after "PATH:" */
};

static struct ecase ecases[] = {
    {"http_url", "ca_url: http://ca:80\n",
     "1:9: ca_url: \"http://ca:80\": expected https://HOST:PORT"},
    {"url_path", "ca_url: https://ca:80/x\n",
     "1:9: ca_url: \"https://ca:80/x\": a CA URL has no path; expected https://HOST:PORT"},
    {"url_port", "ca_url: [https://ca:99999]\n",
     "1:10: ca_url[0]: \"https://ca:99999\": bad port; expected 1 to 65535"},
    {"no_fp", "ca_url: https://ca:1\nstate_dir: s\n" CERT,
     "1:1: root_fingerprint: required key is missing"},
    {"short_fp", "root_fingerprint: AB:CD\n",
     "1:19: root_fingerprint: expected the root's SHA-256 fingerprint, 32 bytes of hex with or "
     "without colons (root_sha256 of GET /v1/ca)"},
    {"unknown_key", HEAD "renew: 1h\n" CERT,
     "4:1: renew: unknown key; expected one of ca_url, root_fingerprint, state_dir, log, refresh, "
     "backoff_min, backoff_max, certificates"},
    {"no_certs", HEAD "certificates: []\n",
     "4:15: certificates: expected a list of certificates, at least one"},
    {"cert_no_key", HEAD "certificates:\n  - name: web\n    cert: a\n",
     "5:5: certificates[0].key: required key is missing"},
    {"bad_name", HEAD "certificates:\n  - {name: ../x, cert: a, key: b}\n",
     "5:5: certificates[0]: name \"../x\": expected 1 to 64 letters, digits, '.', '-', '_', '@' "
     "(it names the state file)"},
    {"same_file", HEAD "certificates:\n  - {name: w, cert: a, key: a}\n",
     "5:5: certificates[0]: cert and key must be two files"},
    {"twice",
     HEAD "certificates:\n  - {name: w, cert: a, key: b}\n  - {name: w, cert: c, key: d}\n",
     "6:5: certificates[1]: name \"w\" is given twice"},
    {"key_type", HEAD "certificates:\n  - {name: w, cert: a, key: b, key_type: rsa1024}\n", NULL},
    {"hook_both",
     HEAD "certificates:\n  - {name: w, cert: a, key: b, on_renew: {exec: [x], "
          "signal: HUP}}\n",
     "5:42: certificates[0].on_renew: either exec, or signal with pid_file; not both"},
    {"hook_nopid", HEAD "certificates:\n  - {name: w, cert: a, key: b, on_renew: {signal: HUP}}\n",
     "5:42: certificates[0].on_renew: expected {exec: [program, args...]} or {signal: SIGHUP, "
     "pid_file: PATH}"},
    {"hook_signal",
     HEAD "certificates:\n  - {name: w, cert: a, key: b, on_renew: {signal: KILL, "
          "pid_file: p}}\n",
     "5:51: certificates[0].on_renew.signal: \"KILL\": expected SIGHUP, SIGUSR1, SIGUSR2, SIGTERM "
     "or SIGINT"},
    {"backoff", HEAD "backoff_min: 10m\nbackoff_max: 1m\n" CERT, NULL},
    {"bundle_is_cert", HEAD "certificates:\n  - {name: w, cert: a, key: b, bundle: a}\n",
     "5:5: certificates[0]: bundle must be a file of its own, not cert, key or chain"},
    {"sans_scalar", HEAD "certificates:\n  - {name: w, cert: a, key: b, sans: dns:x}\n",
     "5:38: certificates[0].sans: expected a list such as [dns:web-01.corp.example]"},
    {"sans_bad",
     HEAD "certificates:\n  - {name: w, cert: a, key: b, sans: [dns:ok, \"dns:a b\"]}\n", NULL},
    {"sans_type", HEAD "certificates:\n  - {name: w, cert: a, key: b, sans: [rid:1.2.3]}\n", NULL},
};

static void
run_error(void **state)
{
    const struct ecase *e = *state;
    struct agent_cfg c;
    struct duet_err err;
    char want[1200];

    write_file(e->yaml);
    assert_int_equal(agent_config_load(path, &c, &err), -1);
    assert_int_equal(err.kind, DUET_ERR_INPUT);
    if (e->msg != NULL) {
        snprintf(want, sizeof(want), "%s:%s", path, e->msg);
        assert_string_equal(err.msg, want);
    } else {
        assert_non_null(strstr(err.msg, path));
    }
    agent_config_free(&c);
}

int
main(void)
{
    static const struct CMUnitTest fixed[] = {
        cmocka_unit_test(test_full),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_fingerprint_norm),
    };
    enum { NE = sizeof(ecases) / sizeof(ecases[0]), NF = sizeof(fixed) / sizeof(fixed[0]) };
    struct CMUnitTest tests[NE + NF];
    size_t n = 0;

    for (size_t i = 0; i < NE; i++)
        tests[n++] = (struct CMUnitTest){
            .name = ecases[i].name, .test_func = run_error, .initial_state = &ecases[i]};
    for (size_t i = 0; i < NF; i++)
        tests[n++] = fixed[i];
    return _cmocka_run_group_tests("agent_config", tests, n, group_setup, group_teardown);
}
