/* SPDX-License-Identifier: Apache-2.0 */
/*
 * render.c - text rendering of the inspection model for a human reader,
 * in the spirit of `step certificate inspect --short`: one labelled line per
 * fact, days left spelled out, chains checked link by link.  Every value goes
 * through cli_put_text(): a name in a certificate cannot drive the terminal.
 */
#include <stdbool.h>
#include <string.h>

#include "cli/cli.h"

#define LABEL_WIDTH 22

/*
 * One labelled line.  Values come from the certificate (names, URLs) and are
 * escaped for the terminal: bytes outside visible ASCII print as \xNN.
 */
static void
line(FILE *out, const char *label, const char *value)
{
    fprintf(out, "  %-*s ", LABEL_WIDTH, label);
    cli_put_text(out, value);
    fputc('\n', out);
}

static const char *
str(const json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));
    return s != NULL ? s : "";
}

/* A JSON string array joined by ", " into buf; false when empty or absent. */
static bool
join(const json_t *arr, char *buf, size_t len)
{
    size_t off = 0;
    size_t i;
    json_t *v;

    buf[0] = '\0';
    if (!json_is_array(arr) || json_array_size(arr) == 0)
        return false;
    json_array_foreach(arr, i, v) {
        const char *s = json_string_value(v);
        if (s == NULL || off >= len)
            continue;
        int w = snprintf(buf + off, len - off, "%s%s", off ? ", " : "", s);
        if (w > 0)
            off += (size_t)w;
    }
    return true;
}

/* Key usage / EKU: "digitalSignature, keyEncipherment (critical)". */
static void
usage_line(FILE *out, const char *label, const json_t *ext)
{
    char buf[512];

    if (!json_is_object(ext))
        return;
    join(json_object_get(ext, "values"), buf, sizeof(buf));
    if (json_is_true(json_object_get(ext, "critical")))
        strncat(buf, " (critical)", sizeof(buf) - strlen(buf) - 1);
    line(out, label, buf);
}

static void
validity_lines(FILE *out, const json_t *o, const char *from_key, const char *to_key)
{
    char buf[160];
    json_t *days = json_object_get(o, "days_left");

    line(out, "Not before:", str(o, from_key));
    if (json_is_integer(days)) {
        long long d = (long long)json_integer_value(days);
        if (json_is_true(json_object_get(o, "expired")))
            snprintf(buf, sizeof(buf), "%s (EXPIRED %lld day%s ago)", str(o, to_key),
                     d < 0 ? -d : d, (d == -1 || d == 1) ? "" : "s");
        else
            snprintf(buf, sizeof(buf), "%s (%lld day%s left)", str(o, to_key), d,
                     d == 1 ? "" : "s");
    } else {
        snprintf(buf, sizeof(buf), "%s", str(o, to_key));
    }
    line(out, "Not after:", buf);
    if (json_is_true(json_object_get(o, "not_yet_valid")))
        line(out, "Note:", "NOT YET VALID");
}

static void
extension_lines(FILE *out, const json_t *o)
{
    char buf[2048];
    const json_t *bc = json_object_get(o, "basic_constraints");
    const json_t *nc = json_object_get(o, "name_constraints");

    if (join(json_object_get(o, "sans"), buf, sizeof(buf)))
        line(out, "SANs:", buf);
    usage_line(out, "Key usage:", json_object_get(o, "key_usage"));
    usage_line(out, "Extended key usage:", json_object_get(o, "extended_key_usage"));
    if (json_is_object(bc)) {
        json_t *pl = json_object_get(bc, "path_len");
        if (json_is_true(json_object_get(bc, "ca")) && json_is_integer(pl))
            snprintf(buf, sizeof(buf), "CA:TRUE, pathlen:%lld", (long long)json_integer_value(pl));
        else
            snprintf(buf, sizeof(buf), "%s",
                     json_is_true(json_object_get(bc, "ca")) ? "CA:TRUE" : "CA:FALSE");
        if (json_is_true(json_object_get(bc, "critical")))
            strncat(buf, " (critical)", sizeof(buf) - strlen(buf) - 1);
        line(out, "Basic constraints:", buf);
    }
    if (json_is_object(nc)) {
        char p[900], x[900];
        bool hp = join(json_object_get(nc, "permitted"), p, sizeof(p));
        bool hx = join(json_object_get(nc, "excluded"), x, sizeof(x));
        snprintf(buf, sizeof(buf), "%s%s%s%s%s", hp ? "permitted " : "", hp ? p : "",
                 (hp && hx) ? "; " : "", hx ? "excluded " : "", hx ? x : "");
        line(out, "Name constraints:", buf);
    }
    if (join(json_object_get(o, "crl_distribution_points"), buf, sizeof(buf)))
        line(out, "CRL distribution:", buf);
    if (join(json_object_get(o, "ocsp"), buf, sizeof(buf)))
        line(out, "OCSP:", buf);
    if (join(json_object_get(o, "ca_issuers"), buf, sizeof(buf)))
        line(out, "CA issuers:", buf);
}

static void
key_line(FILE *out, const json_t *o)
{
    const json_t *k = json_object_get(o, "key");

    line(out, "Key:", json_is_object(k) ? str(k, "description") : "(cannot be decoded)");
}

static void
render_cert(FILE *out, const json_t *o, size_t idx, size_t total)
{
    const json_t *sbn = json_object_get(o, "signed_by_next");

    if (total > 1)
        fprintf(out, "Certificate %zu of %zu\n", idx, total);
    else
        fprintf(out, "Certificate\n");
    line(out, "Subject:", str(o, "subject"));
    line(out, "Issuer:", str(o, "issuer"));
    line(out, "Serial:", str(o, "serial"));
    validity_lines(out, o, "not_before", "not_after");
    key_line(out, o);
    line(out, "Signature algorithm:", str(o, "signature_algorithm"));
    if (json_is_true(json_object_get(o, "self_signed")))
        line(out, "Self-signed:", "yes");
    extension_lines(out, o);
    if (json_is_string(json_object_get(o, "subject_key_id")))
        line(out, "Subject key ID:", str(o, "subject_key_id"));
    if (json_is_string(json_object_get(o, "authority_key_id")))
        line(out, "Authority key ID:", str(o, "authority_key_id"));
    line(out, "SHA-256 fingerprint:", str(o, "fingerprint_sha256"));
    line(out, "SPKI SHA-256:", str(o, "spki_sha256"));
    if (json_is_true(json_object_get(o, "matches_private_key")))
        line(out, "Private key:", "in this file, matches");
    if (json_is_boolean(sbn)) {
        char buf[64];
        snprintf(buf, sizeof(buf), "%s (certificate %zu)",
                 json_is_true(sbn) ? "yes" : "NO", idx + 1);
        line(out, "Signed by next:", buf);
    }
}

static void
render_csr(FILE *out, const json_t *o)
{
    fprintf(out, "Certificate request\n");
    line(out, "Subject:", str(o, "subject"));
    key_line(out, o);
    line(out, "Signature algorithm:", str(o, "signature_algorithm"));
    line(out, "Signature:",
         json_is_true(json_object_get(o, "signature_valid")) ? "valid" : "INVALID");
    extension_lines(out, o);
    line(out, "SPKI SHA-256:", str(o, "spki_sha256"));
}

static void
render_crl(FILE *out, const json_t *o)
{
    char buf[160];
    size_t i;
    json_t *r;
    const json_t *revoked = json_object_get(o, "revoked");

    fprintf(out, "Certificate revocation list\n");
    line(out, "Issuer:", str(o, "issuer"));
    line(out, "CRL number:", json_is_string(json_object_get(o, "crl_number"))
                                 ? str(o, "crl_number") : "(none)");
    line(out, "This update:", str(o, "this_update"));
    snprintf(buf, sizeof(buf), "%s%s",
             json_is_string(json_object_get(o, "next_update")) ? str(o, "next_update") : "(none)",
             json_is_true(json_object_get(o, "expired")) ? " (EXPIRED)" : "");
    line(out, "Next update:", buf);
    line(out, "Signature algorithm:", str(o, "signature_algorithm"));
    snprintf(buf, sizeof(buf), "%lld",
             (long long)json_integer_value(json_object_get(o, "revoked_count")));
    line(out, "Revoked certificates:", buf);
    json_array_foreach(revoked, i, r) {
        const char *reason = json_string_value(json_object_get(r, "reason"));
        fputs("    ", out);
        cli_put_text(out, str(r, "serial"));
        fputs("  ", out);
        cli_put_text(out, str(r, "revocation_date"));
        fputs("  ", out);
        cli_put_text(out, reason != NULL ? reason : "");
        fputc('\n', out);
    }
}

static void
render_key(FILE *out, const json_t *o)
{
    fprintf(out, "Private key\n");
    key_line(out, o);
    line(out, "Stored encrypted:", json_is_true(json_object_get(o, "encrypted")) ? "yes" : "no");
    line(out, "SPKI SHA-256:", str(o, "spki_sha256"));
}

/* Print one inspected file; see cli.h. */
void
render_inspect_text(FILE *out, const json_t *file)
{
    const json_t *objs = json_object_get(file, "objects");
    size_t ncert = 0, icert = 0;
    size_t i;
    json_t *o;

    json_array_foreach(objs, i, o) {
        if (strcmp(str(o, "type"), "certificate") == 0)
            ncert++;
    }
    cli_put_text(out, str(file, "file"));
    fprintf(out, " (");
    cli_put_text(out, str(file, "format"));
    fprintf(out, ")\n");
    json_array_foreach(objs, i, o) {
        const char *type = str(o, "type");
        if (strcmp(type, "certificate") == 0)
            render_cert(out, o, ++icert, ncert);
        else if (strcmp(type, "csr") == 0)
            render_csr(out, o);
        else if (strcmp(type, "crl") == 0)
            render_crl(out, o);
        else if (strcmp(type, "private_key") == 0)
            render_key(out, o);
    }
    fputc('\n', out);
}
