/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cmd_ca_init.c - `duet ca init`: a new CA directory (ca_init) with its keys
 * encrypted under the CA passphrase, or the issuing key in a PKCS#11 token
 * (--key-uri, --pin-file; --generate-key makes it there).  Exit 0 on success, 1 when it fails or is
 * refused (nothing is left then), 2 on usage errors.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ca/pkcs11.h"
#include "cli/cli.h"
#include "lib/fileio.h"
#include "lib/x509util.h"

enum {
    O_CA_DIR = 300,
    O_NAME,
    O_KEY_TYPE,
    O_PERMIT_DNS,
    O_PERMIT_URI,
    O_PASSPHRASE_FILE,
    O_OFFLINE_ROOT,
    O_TRUST_DOMAIN,
    O_STORE,
    O_KEY_URI,
    O_PIN_FILE,
    O_FORMAT,
    O_GENERATE_KEY,
    O_OCSP_KEY_URI,
    O_ROOT_KEY_URI,
    O_HELP
};

static const struct cli_flag flags[] = {
    {{"ca-dir", required_argument, NULL, O_CA_DIR}, "DIR", "the new CA directory (created 0700)"},
    {{"name", required_argument, NULL, O_NAME}, "ORG", "the organisation, in the CAs' subjects"},
    {{"key-type", required_argument, NULL, O_KEY_TYPE},
     "p256|p384|ed25519|rsa3072",
     "the CA keys' type (default p256)"},
    {{"trust-domain", required_argument, NULL, O_TRUST_DOMAIN},
     "TD",
     "the SPIFFE trust domain of the identities issued"},
    {{"permit-dns", required_argument, NULL, O_PERMIT_DNS},
     "SUFFIX",
     "name constraint: DNS names only under SUFFIX; repeat for several"},
    {{"permit-uri", required_argument, NULL, O_PERMIT_URI},
     "PREFIX",
     "name constraint: URIs only under PREFIX; repeat for several"},
    {{"offline-root", no_argument, NULL, O_OFFLINE_ROOT},
     NULL,
     "move the root key out of the directory once the issuing CA is signed"},
    {{"passphrase-file", required_argument, NULL, O_PASSPHRASE_FILE},
     "F",
     "the passphrase that encrypts the keys (else DUET_CA_PASSPHRASE)"},
    {{"store", required_argument, NULL, O_STORE},
     "sqlite|postgres://...",
     "where the inventory lives (default sqlite in DIR)"},
    {{"key-uri", required_argument, NULL, O_KEY_URI},
     "'pkcs11:token=T;object=K?module-path=M'",
     "keep the issuing key in a PKCS#11 token"},
    {{"pin-file", required_argument, NULL, O_PIN_FILE},
     "F",
     "the token's PIN (0600; else DUET_PKCS11_PIN), with --key-uri"},
    {{"generate-key", no_argument, NULL, O_GENERATE_KEY},
     NULL,
     "make the issuing key pair inside the token named by --key-uri (never exported)"},
    {{"ocsp-key-uri", required_argument, NULL, O_OCSP_KEY_URI},
     "'pkcs11:...'",
     "keep the delegated OCSP signer's key in a PKCS#11 token"},
    {{"root-key-uri", required_argument, NULL, O_ROOT_KEY_URI},
     "'pkcs11:...'",
     "keep the root key in a PKCS#11 token (not with --offline-root)"},
    {{"format", required_argument, NULL, O_FORMAT},
     "text|json",
     "what is printed: sentences (default) or one JSON object"},
    {{"help", no_argument, NULL, O_HELP}, NULL, "print this help"},
};
static const char init_usage[] =
    "usage: duet ca init --ca-dir DIR --name \"Org Name\" [--key-type p256|p384|ed25519|rsa3072]\n"
    "                    [--trust-domain TD] [--permit-dns SUFFIX]... [--permit-uri PREFIX]...\n"
    "                    [--offline-root] [--passphrase-file F] [--store sqlite|postgres://...]\n"
    "                    [--key-uri 'pkcs11:token=T;object=K?module-path=M' [--pin-file F]\n"
    "                     [--generate-key]] [--ocsp-key-uri 'pkcs11:...']\n"
    "                    [--root-key-uri 'pkcs11:...'] [--format text|json]\n";

/* A CA certificate of the new directory as JSON: its file, subject, serial, validity, SHA-256. */
static json_t *
ca_cert_json(X509 *cert, const char *dir, const char *file)
{
    char *serial = x509u_serial(X509_get0_serialNumber(cert));
    char *subj = x509u_name(X509_get_subject_name(cert));
    char *fp = x509u_fingerprint(cert);
    char *path = cli_path_in(dir, file, "");
    int64_t na = 0;
    char date[32];
    json_t *j;

    x509u_time(X509_get0_notAfter(cert), &na);
    x509u_fmt_rfc3339(na, date, sizeof(date));
    j = json_pack("{s:s?, s:o, s:s?, s:s, s:s?}", "file", path, "subject", cli_json_text(subj),
                  "serial", serial, "not_after", date, "fingerprint_sha256", fp);
    free(serial);
    free(subj);
    free(fp);
    free(path);
    return j;
}

/* What `ca init --format json` prints; see docs/cli/ca-init.md. */
static int
print_init_json(const struct ca_init_opts *o, const char *store_where, struct duet_err *err)
{
    struct ca *ca = NULL;
    json_t *j;

    if (cli_open_ca(o->dir, false, NULL, &ca, err) != 0)
        return -1;
    j = json_pack("{s:s, s:o, s:o, s:o, s:s, s:s?, s:s?}", "ca_dir", o->dir, "name",
                  cli_json_text(o->name), "root",
                  ca_cert_json(ca_root_cert(ca), o->dir, CA_FILE_ROOT_CERT), "issuing",
                  ca_cert_json(ca_issuing_cert(ca), o->dir, CA_FILE_ISSUING_CERT), "inventory",
                  o->store == NULL      ? CA_FILE_INVENTORY
                  : store_where != NULL ? store_where
                                        : "PostgreSQL",
                  "root_key_offline", o->offline_root ? CA_FILE_ROOT_KEY_OFFLINE : NULL, "key_uri",
                  o->key_uri);
    ca_close(ca);
    if (j == NULL)
        return err_nomem(err);
    json_dumpf(j, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    printf("\n");
    json_decref(j);
    return 0;
}

/* `duet ca init`; see cli_ca_usage(). */
int
cmd_ca_init(int argc, char **argv)
{
    struct option opts[CLI_NFLAGS(flags) + 1];
    struct ca_init_opts o;
    const char **dns = calloc((size_t)argc + 1, sizeof(char *));
    const char **uri = calloc((size_t)argc + 1, sizeof(char *));
    const char *pass_file = NULL;
    char *pass = NULL;
    char *store_where = NULL;
    bool json = false;
    struct duet_err err = {.kind = DUET_ERR_NONE};
    int rc = EXIT_USAGE;
    int c;

    memset(&o, 0, sizeof(o));
    o.key_type = CA_KEY_P256;
    o.permit_dns = dns;
    o.permit_uri = uri;
    if (dns == NULL || uri == NULL)
        goto out;
    cli_flags_longopts(flags, CLI_NFLAGS(flags), opts);
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        switch (c) {
        case O_CA_DIR:
            o.dir = optarg;
            break;
        case O_NAME:
            o.name = optarg;
            break;
        case O_TRUST_DOMAIN:
            o.trust_domain = optarg;
            break;
        case O_KEY_TYPE:
            if (ca_key_type_parse(optarg, &o.key_type, &err) != 0) {
                fprintf(stderr, "duet ca init: --key-type: %s\n", err.msg);
                goto out;
            }
            break;
        case O_PERMIT_DNS:
            dns[o.npermit_dns++] = optarg;
            break;
        case O_PERMIT_URI:
            uri[o.npermit_uri++] = optarg;
            break;
        case O_OFFLINE_ROOT:
            o.offline_root = true;
            break;
        case O_PASSPHRASE_FILE:
            pass_file = optarg;
            break;
        case O_STORE:
            if (strcmp(optarg, "sqlite") == 0) {
                o.store = NULL;
            } else if (store_is_postgres_url(optarg)) {
                o.store = optarg;
            } else {
                /* Not echoed: a mistyped URL may still hold a password. */
                fprintf(stderr, "duet ca init: --store: expected sqlite or a PostgreSQL URL "
                                "(postgres://[user@]host[:port]/database)\n");
                goto out;
            }
            break;
        case O_KEY_URI:
            if (!ca_pkcs11_is_uri(optarg)) {
                fprintf(stderr, "duet ca init: --key-uri: expected a PKCS#11 URI "
                                "(pkcs11:token=LABEL;object=LABEL, RFC 7512)\n");
                goto out;
            }
            o.key_uri = optarg;
            break;
        case O_PIN_FILE:
            o.pin_file = optarg;
            break;
        case O_FORMAT:
            if (!cli_format("duet ca init", optarg, &json))
                goto out;
            break;
        case O_GENERATE_KEY:
            o.generate_key = true;
            break;
        case O_OCSP_KEY_URI:
        case O_ROOT_KEY_URI:
            if (!ca_pkcs11_is_uri(optarg)) {
                fprintf(stderr,
                        "duet ca init: --%s-key-uri: expected a PKCS#11 URI "
                        "(pkcs11:token=LABEL;object=LABEL, RFC 7512)\n",
                        c == O_OCSP_KEY_URI ? "ocsp" : "root");
                goto out;
            }
            *(c == O_OCSP_KEY_URI ? &o.ocsp_key_uri : &o.root_key_uri) = optarg;
            break;
        case O_HELP:
            cli_flags_help(stdout, init_usage, flags, CLI_NFLAGS(flags));
            rc = EXIT_OK;
            goto out;
        default:
            cli_bad_option("duet ca init", c, argv); /* a value may be a URL with a password */
            cli_ca_usage(stderr);
            goto out;
        }
    }
    if (optind != argc || o.dir == NULL || o.name == NULL) {
        fprintf(stderr, "duet ca init: --ca-dir DIR and --name \"Org Name\" are required\n");
        cli_ca_usage(stderr);
        goto out;
    }
    if (o.pin_file != NULL && o.key_uri == NULL && o.ocsp_key_uri == NULL &&
        o.root_key_uri == NULL) {
        fprintf(stderr, "duet ca init: --pin-file goes with --key-uri (the PIN of its token)\n");
        goto out;
    }
    if (o.generate_key && o.key_uri == NULL && o.ocsp_key_uri == NULL && o.root_key_uri == NULL) {
        fprintf(stderr, "duet ca init: --generate-key goes with --key-uri (the token and the "
                        "label of the key to make)\n");
        goto out;
    }
    if (cli_protect_secrets(&err) != 0 || cli_passphrase(pass_file, &pass, &err) != 0) {
        rc = cli_fail("duet ca init", &err);
        goto out;
    }
    o.passphrase = pass;
    if (ca_init(&o, &err) != 0) {
        rc = cli_fail("duet ca init", &err);
        goto out;
    }
    store_where = o.store != NULL ? store_url_redact(o.store, "***") : NULL;
    if (json) {
        rc = print_init_json(&o, store_where, &err) == 0 ? EXIT_OK : cli_fail("duet ca init", &err);
        goto out;
    }
    printf("created CA \"%s\" in %s: %s, %s, %s%s, inventory %s\n", o.name, o.dir,
           CA_FILE_ROOT_CERT, CA_FILE_ISSUING_CERT, CA_FILE_CONFIG,
           o.offline_root ? ", root key in " CA_FILE_ROOT_KEY_OFFLINE " (move it offline)" : "",
           o.store == NULL       ? CA_FILE_INVENTORY
           : store_where != NULL ? store_where
                                 : "PostgreSQL");
    if (o.store != NULL && store_url_has_password(o.store))
        printf("note: the password of --store is not written to %s: give it to every duet "
               "command through PGPASSFILE (~/.pgpass) or PGPASSWORD\n",
               CA_FILE_CONFIG);
    if (o.generate_key && o.key_uri != NULL)
        printf("the issuing key (%s) was generated in its PKCS#11 token and cannot be "
               "extracted from it\n",
               ca_key_type_name(o.key_type));
    if (o.generate_key && o.root_key_uri != NULL)
        printf("the root key (%s) was generated in its PKCS#11 token and cannot be "
               "extracted from it; no root key file was written\n",
               ca_key_type_name(o.key_type));
    else if (o.root_key_uri != NULL)
        printf("the root key stays in its PKCS#11 token (root_key_uri in %s); no root key file "
               "was written\n",
               CA_FILE_CONFIG);
    if (o.generate_key && o.ocsp_key_uri != NULL)
        printf("the OCSP signer's key (%s) was generated in its PKCS#11 token and cannot be "
               "extracted from it\n",
               ca_key_type_name(o.key_type));
    if (o.ocsp_key_uri != NULL)
        printf("OCSP answers are signed with the token's key (ocsp_key_uri in %s); no "
               "%s is written\n",
               CA_FILE_CONFIG, CA_FILE_OCSP_KEY);
    if (o.key_uri != NULL)
        printf("the issuing key stays in its PKCS#11 token (key_uri in %s); no issuing key "
               "file was written\n",
               CA_FILE_CONFIG);
    printf("trust bundle for clients and servers: duet ca roots --ca-dir %s\n", o.dir);
    rc = EXIT_OK;
out:
    free(store_where);
    fileio_free_secret(pass);
    free(dns);
    free(uri);
    return rc;
}
