/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cli_inventory.c - what the certificate commands share about the inventory
 * and what they issue: finding a row from a serial or a certificate file, a
 * row as JSON (for `duet cert list` and `show`), the lines printed about an
 * issued certificate, and its chain file.  Text from certificates and the
 * inventory is escaped for the terminal (cli_put_text) or kept valid in JSON.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "cli/cli.h"
#include "lib/load.h"
#include "lib/pemout.h"
#include "lib/x509util.h"

/* Leaf then issuing CA, PEM; see cli.h. */
int
cli_write_chain(const char *path, X509 *leaf, X509 *issuing, struct duet_err *err)
{
    X509 *chain[2] = {leaf, issuing};

    return pemout_certs(path, chain, 2, NULL, err);
}

/* A certificate's serial and subject (new strings, NULL when out of memory) and notAfter. */
static void
issued_facts(X509 *cert, char **serial, char **subj, char date[32])
{
    int64_t na = 0;

    *serial = x509u_serial(X509_get0_serialNumber(cert));
    *subj = x509u_name(X509_get_subject_name(cert));
    x509u_time(X509_get0_notAfter(cert), &na);
    x509u_fmt_rfc3339(na, date, 32);
}

/* What was issued, as JSON; see cli.h. */
json_t *
cli_issued_json(const char *what, X509 *cert, const char *profile, bool clamped,
                const char *key_path, const char *crt_path, const char *renews)
{
    char *serial, *subj;
    char date[32], from[32];
    int64_t nb = 0;
    json_t *o;

    issued_facts(cert, &serial, &subj, date);
    x509u_time(X509_get0_notBefore(cert), &nb);
    x509u_fmt_rfc3339(nb, from, sizeof(from));
    /* The first word of what: issued, renewed, signed; see docs/cli/cert-issue.md. */
    o = json_pack("{s:s%, s:s?, s:o, s:s?, s:s, s:s, s:b, s:s?, s:s?, s:s?}", "action", what,
                  strcspn(what, " "), "serial", serial, "subject", cli_json_text(subj), "profile",
                  profile, "not_before", from, "not_after", date, "clamped", clamped, "key",
                  key_path, "certificate", crt_path, "renews", renews);
    free(serial);
    free(subj);
    return o;
}

/* Print what was issued; see cli.h. */
void
cli_report_issued(const char *what, X509 *cert, const char *profile, bool clamped,
                  const char *key_path, const char *crt_path, const char *renews, bool json)
{
    char *serial, *subj;
    char date[32];

    if (json) {
        json_t *o = cli_issued_json(what, cert, profile, clamped, key_path, crt_path, renews);
        if (o != NULL)
            json_dumpf(o, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        printf("\n");
        json_decref(o);
        return;
    }
    issued_facts(cert, &serial, &subj, date);
    printf("%s ", what);
    cli_put_text(stdout, subj ? subj : "?");
    printf(" (serial %s), profile %s, valid until %s\n", serial ? serial : "?", profile, date);
    if (clamped)
        printf("note: the validity was cut to the issuing CA's notAfter\n");
    if (key_path != NULL)
        printf("key:         %s\n", key_path);
    if (crt_path != NULL)
        printf("certificate: %s\n", crt_path);
    if (renews != NULL)
        printf("renews:      %s\n", renews);
    free(serial);
    free(subj);
}

/* Find a row from SERIAL or a certificate file; see cli.h. */
int
cli_find_row(struct ca *ca, const char *arg, struct store_cert **row, struct duet_err *err)
{
    char *serial = NULL;
    struct stat st;

    *row = NULL;
    if (stat(arg, &st) == 0 && S_ISREG(st.st_mode)) {
        STACK_OF(X509) *certs = NULL;
        if (load_certs_file(arg, NULL, &certs, err) != 0)
            return -1;
        serial = x509u_serial(X509_get0_serialNumber(sk_X509_value(certs, 0)));
        OSSL_STACK_OF_X509_free(certs);
        if (serial == NULL)
            return err_nomem(err);
    } else if ((serial = store_serial_canonical(arg, err)) == NULL) {
        err_prefix(err, "%s is neither a certificate file nor a serial number", arg);
        return -1;
    }
    if (store_get(ca_store(ca), serial, row, err) != 0) {
        free(serial);
        return -1;
    }
    if (*row == NULL) {
        err_set(err, DUET_ERR_INPUT, "serial %s is not in the inventory of %s", serial, ca_dir(ca));
        free(serial);
        return -1;
    }
    free(serial);
    return 0;
}

/* --- rows as JSON ---------------------------------------------------------- */

/* Inventory text as a JSON string; see cli.h. */
json_t *
cli_json_text(const char *s)
{
    json_t *j;
    char *esc;

    if (s == NULL)
        return json_null();
    if ((j = json_string(s)) != NULL)
        return j;
    esc = cli_text(s);
    j = esc != NULL ? json_string(esc) : NULL;
    free(esc);
    return j != NULL ? j : json_null();
}

/*
 * One GENERAL_NAME as "DNS:x" for JSON, its value whole: a name holding a NUL
 * is shown escaped rather than cut at the NUL.
 */
static json_t *
name_json(const GENERAL_NAME *g)
{
    char buf[600];

    if (g->type == GEN_DNS || g->type == GEN_URI || g->type == GEN_EMAIL) {
        const char *tag = g->type == GEN_DNS ? "DNS" : g->type == GEN_URI ? "URI" : "email";
        const unsigned char *d = ASN1_STRING_get0_data(g->d.ia5);
        size_t n = (size_t)ASN1_STRING_length(g->d.ia5);
        size_t tl = strlen(tag), o = tl + 1;
        bool nul = memchr(d, 0, n) != NULL;
        char *s = malloc(tl + 2 + 4 * n);
        json_t *j;

        if (s == NULL)
            return json_null();
        memcpy(s, tag, tl);
        s[tl] = ':';
        for (size_t i = 0; i < n; i++) {
            if (!nul || (d[i] >= 0x20 && d[i] < 0x7f)) {
                s[o++] = (char)d[i];
            } else {
                snprintf(s + o, 5, "\\x%02x", d[i]);
                o += 4;
            }
        }
        s[o] = '\0';
        j = cli_json_text(s);
        free(s);
        return j;
    }
    x509u_general_name(g, buf, sizeof(buf));
    return cli_json_text(buf);
}

/*
 * The SANs of a row, one JSON string each, read from the certificate itself:
 * the stored "DNS:a, URI:b" text would split a URI holding ", IP:..." in two.
 */
static json_t *
row_sans(const struct store_cert *c)
{
    const unsigned char *p = c->der;
    X509 *x = c->der != NULL ? d2i_X509(NULL, &p, (long)c->der_len) : NULL;
    GENERAL_NAMES *gens = x != NULL ? X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL) : NULL;
    json_t *sans = json_array();

    if (x != NULL) {
        for (int i = 0; sans != NULL && gens != NULL && i < sk_GENERAL_NAME_num(gens); i++)
            json_array_append_new(sans, name_json(sk_GENERAL_NAME_value(gens, i)));
    } else if (sans != NULL && c->sans[0] != '\0') {
        /* No certificate to read: the stored text, split where it was joined. */
        char *copy = strdup(c->sans);
        char *save = NULL;
        for (char *t = copy ? strtok_r(copy, ",", &save) : NULL; t != NULL;
             t = strtok_r(NULL, ",", &save)) {
            while (*t == ' ')
                t++;
            json_array_append_new(sans, cli_json_text(t));
        }
        free(copy);
    }
    GENERAL_NAMES_free(gens);
    X509_free(x);
    ERR_clear_error();
    return sans;
}

/* Who revoked a revoked row: "unknown" for a revocation the inventory predates recording. */
static json_t *
revoked_by(const struct store_cert *c)
{
    return c->revoked_by != NULL ? cli_json_text(c->revoked_by) : json_string("unknown");
}

/* One inventory row as JSON; see cli.h. */
json_t *
cli_row_json(const struct store_cert *c, int64_t now, bool full)
{
    char nb[32], na[32];
    json_t *j;

    x509u_fmt_rfc3339(c->not_before, nb, sizeof(nb));
    x509u_fmt_rfc3339(c->not_after, na, sizeof(na));
    j = json_pack("{s:s,s:o,s:o,s:o,s:s,s:o,s:o,s:s,s:s,s:I,s:s}", "serial", c->serial, "name",
                  cli_json_text(c->name), "subject", cli_json_text(c->subject), "sans",
                  row_sans(c), "profile", c->profile, "owner", cli_json_text(c->owner),
                  "location", cli_json_text(c->location), "not_before", nb, "not_after", na,
                  "days_left",
                  (json_int_t)((c->not_after - now) / 86400), "status", store_status_text(c, now));
    if (j != NULL && !full && c->status == STORE_REVOKED)
        json_object_set_new(j, "revoked_by", revoked_by(c));
    if (j != NULL && full) {
        char buf[32];
        json_object_set_new(j, "issuer", cli_json_text(c->issuer));
        json_object_set_new(j, "key_fingerprint", json_string(c->key_fingerprint));
        x509u_fmt_rfc3339(c->issued_at, buf, sizeof(buf));
        json_object_set_new(j, "issued_at", json_string(buf));
        if (c->status == STORE_REVOKED) {
            x509u_fmt_rfc3339(c->revoked_at, buf, sizeof(buf));
            json_object_set_new(j, "revoked_at", json_string(buf));
            json_object_set_new(j, "revocation_reason", json_string(x509u_crl_reason(c->reason)));
            json_object_set_new(j, "revoked_by", revoked_by(c));
        }
        json_object_set_new(j, "renews", c->renews ? json_string(c->renews) : json_null());
        json_object_set_new(j, "renewed_by",
                            c->renewed_by ? json_string(c->renewed_by) : json_null());
    }
    return j;
}

/* Whether `cert expiring` reports the row (and `cert list --expiring` lists it); see cli.h. */
bool
cli_row_expiring(const struct store_cert *c, int64_t now, int64_t within)
{
    /* Unrevoked and not replaced by a renewal; already expired ones count too. */
    if (c->status == STORE_REVOKED || c->renewed_by != NULL)
        return false;
    /*
     * The OCSP signer lives days and the CA server renews it: it counts
     * only once it has expired (the responder then cannot answer).
     */
    if (c->profile != NULL && strcmp(c->profile, CA_PROFILE_OCSP_SIGNER) == 0 && c->not_after > now)
        return false;
    return c->not_after <= now + within;
}
