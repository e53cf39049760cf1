/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cmd_cert_verify.c - `duet cert verify`, the contract of DESIGN.md: exit 0
 * valid, 1 invalid with a one-line reason on stderr, 2 usage error or
 * unreadable input.  Verification itself is libduet's (duet_verifier), the
 * one path the proxy, the tunnel and the agent also take.
 */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/pem.h>

#include "cli/cli.h"
#include "duet.h"
#include "lib/verify.h"
#include "lib/x509util.h"

enum {
    OPT_TRUSTED = 256,
    OPT_UNTRUSTED,
    OPT_PURPOSE,
    OPT_NAME,
    OPT_AT,
    OPT_CRL,
    OPT_CRL_SCOPE,
    OPT_MAX_DEPTH,
    OPT_PASSWORD_FILE,
    OPT_POLICY,
    OPT_REQUIRE_EXPLICIT_POLICY,
    OPT_INHIBIT_POLICY_MAPPING,
    OPT_INHIBIT_ANY_POLICY,
    OPT_FORMAT,
    OPT_INSECURE_CRL_SIGNATURE,
    OPT_HELP
};

static const struct cli_flag flags[] = {
    {{"trusted", required_argument, NULL, OPT_TRUSTED},
     "ROOTS.pem",
     "the trust anchors; repeat for several files"},
    {{"untrusted", required_argument, NULL, OPT_UNTRUSTED},
     "CHAIN.pem",
     "intermediates that may complete the chain; repeat for several"},
    {{"purpose", required_argument, NULL, OPT_PURPOSE},
     "server|client",
     "the key usage required of the leaf"},
    {{"name", required_argument, NULL, OPT_NAME}, "HOSTNAME_OR_IP", "the name the leaf must carry"},
    {{"at", required_argument, NULL, OPT_AT},
     "RFC3339_TIME",
     "verify as at that time (default now)"},
    {{"crl", required_argument, NULL, OPT_CRL},
     "CRL.pem",
     "check revocation against this CRL; repeat for several"},
    {{"crl-scope", required_argument, NULL, OPT_CRL_SCOPE},
     "chain|leaf",
     "which certificates need a CRL (default chain)"},
    {{"max-depth", required_argument, NULL, OPT_MAX_DEPTH}, "N", "the most intermediates allowed"},
    {{"password-file", required_argument, NULL, OPT_PASSWORD_FILE},
     "F",
     "the password of PKCS#12 inputs"},
    {{"policy", required_argument, NULL, OPT_POLICY},
     "OID",
     "an acceptable certificate policy; repeat for several"},
    {{"require-explicit-policy", no_argument, NULL, OPT_REQUIRE_EXPLICIT_POLICY},
     NULL,
     "the chain must carry an acceptable policy"},
    {{"inhibit-policy-mapping", no_argument, NULL, OPT_INHIBIT_POLICY_MAPPING},
     NULL,
     "refuse policy mappings"},
    {{"inhibit-any-policy", no_argument, NULL, OPT_INHIBIT_ANY_POLICY},
     NULL,
     "anyPolicy does not match every policy"},
    {{"format", required_argument, NULL, OPT_FORMAT},
     "text|json",
     "the output format (default text)"},
    {{"insecure-crl-signature", required_argument, NULL, OPT_INSECURE_CRL_SIGNATURE},
     "dsa",
     "accept CRLs signed with DSA (legacy CAs only)"},
    {{"help", no_argument, NULL, OPT_HELP}, NULL, "print this help"},
};

static void
verify_usage(FILE *out)
{
    cli_flags_help(
        out,
        "usage: duet cert verify --trusted ROOTS.pem [--untrusted CHAIN.pem]...\n"
        "                        [--purpose server|client] [--name HOSTNAME_OR_IP]\n"
        "                        [--at RFC3339_TIME] [--crl CRL.pem]... [--crl-scope chain|leaf]\n"
        "                        [--max-depth N] [--password-file F] [--policy OID]...\n"
        "                        [--require-explicit-policy] [--inhibit-policy-mapping]\n"
        "                        [--inhibit-any-policy] [--format text|json]\n"
        "                        [--insecure-crl-signature dsa] LEAF.pem|HOST:PORT\n"
        "exit 0 valid, 1 invalid (reason on stderr), 2 usage error or unreadable input\n",
        flags, CLI_NFLAGS(flags));
}

/* The valid policy set for a reader: "none", or OIDs with anyPolicy named. */
static void
print_policies(const struct duet_verifier *v)
{
    size_t n = duet_verifier_policy_count(v);

    printf("policies: ");
    if (n == 0)
        printf("none");
    for (size_t i = 0; i < n; i++) {
        const char *oid = duet_verifier_policy(v, i);
        printf("%s%s%s", i ? ", " : "", oid,
               strcmp(oid, "2.5.29.32.0") == 0 ? " (anyPolicy)" : "");
    }
    printf("\n");
}

/*
 * The outcome as one JSON object on stdout: valid with the identity and the
 * valid policy set, or invalid with the category and the reason.  ASCII only:
 * names from certificates arrive as \uXXXX, never raw.
 */
static void
print_json(const struct duet_verifier *v, bool valid)
{
    json_t *o = json_object();
    json_t *pols = json_array();

    if (o == NULL || pols == NULL) {
        json_decref(o);
        json_decref(pols);
        fprintf(stderr, "duet cert verify: out of memory\n");
        return;
    }
    json_object_set_new(o, "valid", json_boolean(valid));
    if (valid) {
        const struct duet_identity *id = duet_verifier_identity(v);
        json_object_set_new(o, "name", cli_json_text(duet_identity_name(id)));
        json_object_set_new(o, "subject", cli_json_text(duet_identity_subject(id)));
        json_object_set_new(o, "serial", cli_json_text(duet_identity_serial(id)));
        for (size_t i = 0; i < duet_verifier_policy_count(v); i++)
            json_array_append_new(pols, json_string(duet_verifier_policy(v, i)));
        json_object_set_new(o, "policies", pols);
    } else {
        json_decref(pols);
        json_object_set_new(o, "code", json_string(duet_verifier_error_code(v)));
        json_object_set_new(o, "error", cli_json_text(duet_verifier_error(v)));
    }
    json_dumpf(o, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
    fputc('\n', stdout);
    json_decref(o);
}

/* Report a verifier error and map it to the exit status of the contract. */
static int
verifier_fail(struct duet_verifier *v)
{
    const char *msg = duet_verifier_error(v);

    /* The reason quotes names from the certificate: escaped for the terminal. */
    cli_put_text(stderr, msg != NULL ? msg : "verification failed");
    fputc('\n', stderr);
    return duet_verifier_error_kind(v) == DUET_ERR_INVALID ? EXIT_INVALID : EXIT_USAGE;
}

/*
 * Verify the chain a live endpoint sends (leaf first, the rest untrusted, as a
 * file's would be), for its host name unless --name was given.  Returns
 * EXIT_OK when the verifier ran and accepted it, EXIT_INVALID when it ran and
 * refused it (the reason on the verifier), EXIT_USAGE after printing why the
 * chain could not be fetched.
 */
static int
verify_endpoint(struct duet_verifier *v, const char *target, bool name_given)
{
    STACK_OF(X509) *chain = NULL;
    struct duet_err err;
    char *host = NULL, *pem = NULL;
    BIO *mem = NULL;
    long len;
    int rc = EXIT_USAGE;

    err_clear(&err);
    if (cli_fetch_chain(target, 10000, &chain, &host, &err) != 0) {
        fprintf(stderr, "duet cert verify: ");
        cli_put_text(stderr, err.msg);
        fputc('\n', stderr);
        goto out;
    }
    if (!name_given && verify_name_valid(host) && duet_verifier_set_name(v, host) != 0) {
        fprintf(stderr, "duet cert verify: %s\n", duet_verifier_error(v));
        goto out;
    }
    if ((mem = BIO_new(BIO_s_mem())) == NULL) {
        fprintf(stderr, "duet cert verify: out of memory\n");
        goto out;
    }
    for (int i = 0; i < sk_X509_num(chain); i++) {
        if (!PEM_write_bio_X509(mem, sk_X509_value(chain, i))) {
            fprintf(stderr, "duet cert verify: out of memory\n");
            goto out;
        }
    }
    len = BIO_get_mem_data(mem, &pem);
    if (duet_verifier_verify_mem(v, (const uint8_t *)pem, (size_t)len) == 0)
        rc = EXIT_OK;
    else
        rc = EXIT_INVALID;
out:
    BIO_free(mem);
    free(host);
    OSSL_STACK_OF_X509_free(chain);
    return rc;
}

/*
 * `duet cert verify`.  Files are loaded in the order given; any unreadable
 * one ends the command with exit 2 before verification starts.
 */
int
cmd_cert_verify(int argc, char **argv)
{
    struct option opts[CLI_NFLAGS(flags) + 1];
    struct duet_verifier *v = duet_verifier_new();
    const char **trusted = calloc((size_t)argc, sizeof(char *));
    const char **untrusted = calloc((size_t)argc, sizeof(char *));
    const char **crls = calloc((size_t)argc, sizeof(char *));
    const char *password_file = NULL;
    unsigned policy_flags = 0;
    bool policy_asked = false; /* any policy option: the text output always names the set */
    bool json = false, name_given = false;
    int ntrusted = 0, nuntrusted = 0, ncrls = 0;
    int rc = EXIT_USAGE;
    int c;

    if (v == NULL || trusted == NULL || untrusted == NULL || crls == NULL) {
        fprintf(stderr, "duet cert verify: out of memory\n");
        goto out;
    }
    cli_flags_longopts(flags, CLI_NFLAGS(flags), opts);
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        switch (c) {
        case OPT_TRUSTED:
            trusted[ntrusted++] = optarg;
            break;
        case OPT_UNTRUSTED:
            untrusted[nuntrusted++] = optarg;
            break;
        case OPT_CRL:
            crls[ncrls++] = optarg;
            break;
        case OPT_PASSWORD_FILE:
            password_file = optarg;
            break;
        case OPT_PURPOSE:
            if (strcmp(optarg, "server") == 0) {
                (void)duet_verifier_set_purpose(v, DUET_PURPOSE_SERVER);
            } else if (strcmp(optarg, "client") == 0) {
                (void)duet_verifier_set_purpose(v, DUET_PURPOSE_CLIENT);
            } else {
                fprintf(stderr, "duet cert verify: --purpose \"%s\": expected server or client\n",
                        optarg);
                verify_usage(stderr);
                goto out;
            }
            break;
        case OPT_NAME:
            name_given = true;
            if (duet_verifier_set_name(v, optarg) != 0) {
                fprintf(stderr, "duet cert verify: --name: %s\n", duet_verifier_error(v));
                verify_usage(stderr);
                goto out;
            }
            break;
        case OPT_AT: {
            int64_t t;
            if (!x509u_parse_time(optarg, &t)) {
                fprintf(stderr,
                        "duet cert verify: --at \"%s\": expected an RFC 3339 time such as "
                        "2026-10-01T12:00:00Z\n",
                        optarg);
                verify_usage(stderr);
                goto out;
            }
            (void)duet_verifier_set_time(v, t);
            break;
        }
        case OPT_CRL_SCOPE:
            if (strcmp(optarg, "chain") == 0) {
                (void)duet_verifier_set_crl_scope(v, DUET_CRL_CHAIN);
            } else if (strcmp(optarg, "leaf") == 0) {
                (void)duet_verifier_set_crl_scope(v, DUET_CRL_LEAF);
            } else {
                fprintf(stderr, "duet cert verify: --crl-scope \"%s\": expected chain or leaf\n",
                        optarg);
                verify_usage(stderr);
                goto out;
            }
            break;
        case OPT_MAX_DEPTH: {
            char *end = NULL;
            long d = strtol(optarg, &end, 10);
            if (end == optarg || *end != '\0' || duet_verifier_set_max_depth(v, (int)d) != 0 ||
                d < 0 || d > 32) {
                fprintf(stderr, "duet cert verify: --max-depth \"%s\": expected 0 to 32\n", optarg);
                verify_usage(stderr);
                goto out;
            }
            break;
        }
        case OPT_POLICY:
            if (duet_verifier_add_policy(v, optarg) != 0) {
                fprintf(stderr, "duet cert verify: --policy: %s\n", duet_verifier_error(v));
                verify_usage(stderr);
                goto out;
            }
            policy_asked = true;
            break;
        case OPT_REQUIRE_EXPLICIT_POLICY:
            policy_flags |= DUET_POLICY_REQUIRE_EXPLICIT;
            policy_asked = true;
            break;
        case OPT_INHIBIT_POLICY_MAPPING:
            policy_flags |= DUET_POLICY_INHIBIT_MAPPING;
            policy_asked = true;
            break;
        case OPT_INHIBIT_ANY_POLICY:
            policy_flags |= DUET_POLICY_INHIBIT_ANY;
            policy_asked = true;
            break;
        case OPT_FORMAT:
            if (!cli_format("duet cert verify", optarg, &json)) {
                verify_usage(stderr);
                goto out;
            }
            break;
        case OPT_INSECURE_CRL_SIGNATURE:
            if (strcmp(optarg, "dsa") != 0) {
                fprintf(stderr,
                        "duet cert verify: --insecure-crl-signature \"%s\": expected dsa (the "
                        "only legacy CRL signature duet can be told to accept)\n",
                        optarg);
                verify_usage(stderr);
                goto out;
            }
            duet_verifier_insecure_crl_dsa(v);
            break;
        case OPT_HELP:
            verify_usage(stdout);
            rc = EXIT_OK;
            goto out;
        default: /* ':' too */
            cli_bad_option("duet cert verify", c, argv);
            verify_usage(stderr);
            goto out;
        }
    }
    if (optind != argc - 1) {
        fprintf(stderr, optind >= argc ? "duet cert verify: no certificate to verify was given\n"
                                       : "duet cert verify: exactly one certificate file is "
                                         "verified at a time\n");
        verify_usage(stderr);
        goto out;
    }
    if (ntrusted == 0) {
        fprintf(stderr, "duet cert verify: --trusted ROOTS.pem is required\n");
        verify_usage(stderr);
        goto out;
    }
    (void)duet_verifier_set_policy_flags(v, policy_flags); /* only known bits */
    if (password_file != NULL && duet_verifier_set_password_file(v, password_file) != 0) {
        rc = verifier_fail(v);
        goto out;
    }
    for (int i = 0; i < ntrusted; i++) {
        if (duet_verifier_add_trusted_file(v, trusted[i]) != 0) {
            rc = verifier_fail(v);
            goto out;
        }
    }
    for (int i = 0; i < nuntrusted; i++) {
        if (duet_verifier_add_untrusted_file(v, untrusted[i]) != 0) {
            rc = verifier_fail(v);
            goto out;
        }
    }
    for (int i = 0; i < ncrls; i++) {
        if (duet_verifier_add_crl_file(v, crls[i]) != 0) {
            rc = verifier_fail(v);
            goto out;
        }
    }
    if (cli_is_endpoint(argv[optind])) {
        rc = verify_endpoint(v, argv[optind], name_given);
        if (rc == EXIT_USAGE)
            goto out;
    } else {
        rc = duet_verifier_verify_file(v, argv[optind]) != 0 ? EXIT_INVALID : EXIT_OK;
    }
    if (rc != EXIT_OK) {
        if (json && duet_verifier_error_kind(v) == DUET_ERR_INVALID)
            print_json(v, false);
        rc = verifier_fail(v);
        goto out;
    }
    if (json) {
        print_json(v, true);
    } else {
        const struct duet_identity *id = duet_verifier_identity(v);
        printf("valid: ");
        cli_put_text(stdout, duet_identity_name(id));
        printf(" (subject ");
        cli_put_text(stdout, duet_identity_subject(id));
        printf(", serial ");
        cli_put_text(stdout, duet_identity_serial(id));
        printf(")\n");
        if (policy_asked || duet_verifier_policy_count(v) > 0)
            print_policies(v);
    }
    rc = EXIT_OK;
out:
    free(trusted);
    free(untrusted);
    free(crls);
    duet_verifier_free(v);
    return rc;
}
