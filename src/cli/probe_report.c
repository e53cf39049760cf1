/* SPDX-License-Identifier: Apache-2.0 */
/*
 * probe_report.c - the steps of `duet probe`'s report that need no socket:
 * the report's lines and findings, the server's chain as sent and its
 * verification (verify.c, the one path), the OCSP staple, the
 * CertificateRequest against our certificate, the server's alert read in
 * context (diagnose.c) and an HTTP refusal's reason.  docs/cli/probe.md lists
 * the codes and JSON keys, a contract for scripts.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ocsp.h>
#include <openssl/ssl.h>

#include "cli/cli.h"
#include "cli/probe.h"
#include "lib/diagnose.h"
#include "lib/inspect.h"
#include "lib/verify.h"
#include "lib/x509util.h"

/* --- the report --------------------------------------------------------------------- */

/* A line for a human reader (text format only); see probe.h. */
void
probe_say(struct probe *p, const char *fmt, ...)
{
    char line[2048];
    va_list ap;

    if (p->json)
        return;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    cli_put_text(stdout, line);
    fputc('\n', stdout);
}

/* A problem and its fix, printed and kept; see probe.h. */
void
probe_finding(struct probe *p, const char *step, const char *code, bool error, const char *problem,
              const char *fix)
{
    if (error)
        p->failed = true;
    probe_say(p, "  %s: %s", error ? "problem" : "warning", problem);
    probe_say(p, "  fix: %s", fix);
    json_array_append_new(p->findings, json_pack("{s:s,s:s,s:s,s:o,s:s}", "step", step, "code",
                                                 code, "severity", error ? "error" : "warning",
                                                 "problem", cli_json_text(problem), "fix", fix));
}

/* A certificate name as text; see probe.h. */
char *
probe_name_text(const X509_NAME *n)
{
    char *s = x509u_name(n);
    return s != NULL ? s : strdup("?");
}

/* --- the server's side ---------------------------------------------------------------------- */

/* Short text of one certificate: "[i] SUBJECT (serial S)" and a details line. */
static void
say_cert(struct probe *p, int i, X509 *cert, json_t *j)
{
    char nb[32] = "?", na[32] = "?", key[96] = "?";
    int64_t t = 0;
    json_t *sans = json_object_get(j, "sans");
    char sanbuf[1024] = "";
    size_t used = 0;
    size_t k;
    json_t *v;

    if (x509u_time(X509_get0_notBefore(cert), &t))
        x509u_fmt_date(t, nb, sizeof(nb));
    if (x509u_time(X509_get0_notAfter(cert), &t))
        x509u_fmt_date(t, na, sizeof(na));
    if (X509_get0_pubkey(cert) != NULL)
        x509u_key_describe(X509_get0_pubkey(cert), key, sizeof(key), NULL);
    json_array_foreach(sans, k, v)
    {
        const char *s = json_is_string(v) ? json_string_value(v) : "?";
        int w = snprintf(sanbuf + used, sizeof(sanbuf) - used, "%s%s", used ? ", " : "", s);
        if (w < 0 || (size_t)w >= sizeof(sanbuf) - used)
            break;
        used += (size_t)w;
    }
    probe_say(p, "  [%d] %s (serial %s)", i, json_string_value(json_object_get(j, "subject")),
              json_string_value(json_object_get(j, "serial")));
    probe_say(p, "      issuer %s; valid %s to %s%s; %s%s%s",
              json_string_value(json_object_get(j, "issuer")), nb, na,
              json_is_true(json_object_get(j, "expired"))         ? " (EXPIRED)"
              : json_is_true(json_object_get(j, "not_yet_valid")) ? " (NOT YET VALID)"
                                                                  : "",
              key, used ? "; " : "", sanbuf);
}

/* The chain as sent and the order analysis. */
void
probe_report_chain(struct probe *p, STACK_OF(X509) * chain)
{
    json_t *arr = json_array();
    enum diag_chain order;
    int idx = -1;

    json_object_set_new(p->report, "server_chain", arr);
    probe_say(p, "server chain (%d certificate%s, as sent):", sk_X509_num(chain),
              sk_X509_num(chain) == 1 ? "" : "s");
    for (int i = 0; i < sk_X509_num(chain); i++) {
        json_t *j = inspect_cert(sk_X509_value(chain, i), p->now);
        if (j == NULL)
            continue;
        say_cert(p, i, sk_X509_value(chain, i), j);
        json_array_append_new(arr, j);
    }
    order = diag_chain_order(chain, p->store, &idx);
    if (order == DIAG_CHAIN_MISSING && idx > 0 && idx == sk_X509_num(chain) - 1) {
        /*
         * The last CA sent is complete but its issuer, the root, is not
         * trusted here: servers need not send the root (RFC 8446 4.4.2), so
         * this is a matter of trust (verification says so), not of the chain.
         */
        char *iss = probe_name_text(X509_get_issuer_name(sk_X509_value(chain, idx)));
        json_object_set_new(p->report, "server_chain_order",
                            json_pack("{s:s,s:i}", "verdict", "anchor_not_trusted", "index", idx));
        probe_say(p,
                  "  order: each certificate is issued by the next one; the last by %s, "
                  "which %s does not hold",
                  iss, p->cacert_file != NULL ? "--cacert" : "the system store");
        free(iss);
        return;
    }
    json_object_set_new(p->report, "server_chain_order",
                        json_pack("{s:s,s:i}", "verdict", diag_chain_code(order), "index", idx));
    if (order == DIAG_CHAIN_OK) {
        probe_say(p, "  order: each certificate is issued by the next one or by a trusted CA");
    } else {
        X509 *c = sk_X509_value(chain, idx);
        char *subj = probe_name_text(X509_get_subject_name(c));
        char *iss = probe_name_text(X509_get_issuer_name(c));
        char problem[1024];
        const char *code = diag_chain_code(order);

        if (order == DIAG_CHAIN_MISSING) {
            snprintf(problem, sizeof(problem),
                     "missing intermediate: certificate [%d] %s is issued by %s, which the server "
                     "did not send and %s does not hold",
                     idx, subj, iss, p->cacert_file != NULL ? "--cacert" : "the system store");
            probe_finding(
                p, "server_chain", code, false, problem,
                "the server must send the chain: configure it with a file holding its leaf "
                "followed by the issuing CA");
        } else if (order == DIAG_CHAIN_BAD_SIGNATURE) {
            char *next = probe_name_text(X509_get_subject_name(sk_X509_value(chain, idx + 1)));

            snprintf(problem, sizeof(problem),
                     "bad signature: certificate [%d] %s is not signed by the key of certificate "
                     "[%d] %s, which carries its issuer's name: a CA of the same name but "
                     "another key, so clients refuse the chain",
                     idx, subj, idx + 1, next);
            probe_finding(p, "server_chain", code, true, problem,
                          "the server must send the certificate of the CA that really issued its "
                          "certificate (duet cert inspect shows each one's key identifiers)");
            free(next);
        } else if (order == DIAG_CHAIN_WRONG_ORDER) {
            snprintf(problem, sizeof(problem),
                     "wrong order: the issuer of certificate [%d] %s (%s) is sent, but not right "
                     "after it",
                     idx, subj, iss);
            probe_finding(
                p, "server_chain", code, false, problem,
                "the server must send its chain in order: the leaf, then the CA that issued "
                "it, then that CA's issuer");
        } else {
            snprintf(problem, sizeof(problem),
                     "certificate [%d] %s certifies none of the certificates before it", idx, subj);
            probe_finding(p, "server_chain", code, false, problem,
                          "remove the unrelated certificate from the server's chain file");
        }
        free(subj);
        free(iss);
    }
}

/* The fix for a failed verification of the server, by category. */
static const char *
server_fix(enum verify_fail f, bool chain_missing)
{
    switch (f) {
    case VERIFY_EXPIRED:
        return "the server's certificate must be renewed (duet cert renew SERIAL --ca-dir "
               "CA_DIR, then reload the server)";
    case VERIFY_NOT_YET_VALID:
        return "check the clocks of both machines, or wait until the certificate's notBefore";
    case VERIFY_UNKNOWN_CA:
        return chain_missing ? "the server must send the chain: configure it with a file "
                               "holding its leaf followed by the issuing CA"
                             : "give the CA that issued the server's chain with --cacert "
                               "ROOTS.pem (duet ca roots prints a duet CA's)";
    case VERIFY_NAME_MISMATCH:
        return "connect with a name the certificate carries (--server-name NAME), or reissue it "
               "with that name: duet cert issue NAME --profile server --san dns:NAME";
    case VERIFY_BAD_EKU:
        return "reissue the server's certificate with --profile server (serverAuth)";
    case VERIFY_REVOKED:
        return "the server needs a new certificate: duet cert issue NAME --profile server";
    case VERIFY_CRL_MISSING:
    case VERIFY_CRL_STALE:
        return "give a current CRL of each issuer with --crl (duet crl generate --ca-dir CA_DIR)";
    default:
        return "read the reason above; duet cert verify --purpose server shows the same check";
    }
}

/* Verify the server's chain for the name with duet's one verification path. */
void
probe_report_verification(struct probe *p, STACK_OF(X509) * chain)
{
    struct verify_params vp = {.store = p->store, .revs = p->revs, .purpose = DUET_PURPOSE_SERVER};
    struct duet_err err;
    STACK_OF(X509) *extra = sk_X509_dup(chain);
    const char *name = p->server_name != NULL ? p->server_name : p->host;
    enum verify_fail f = VERIFY_OK;
    const char *trust = p->cacert_file != NULL ? p->cacert_file : "the system store";
    json_t *o;

    err_clear(&err);
    if (extra != NULL)
        (void)sk_X509_shift(extra);
    vp.name = verify_name_valid(name) ? name : NULL;
    vp.crl_scope = DUET_CRL_CHAIN;
    if (verify_chain_ex(&vp, sk_X509_value(chain, 0), extra, NULL, &f, &err) == 0) {
        probe_say(p, "server verification for \"%s\" against %s%s: valid", name,
                  p->cacert_file != NULL ? "--cacert " : "", trust);
        o = json_pack("{s:b,s:s,s:s}", "valid", 1, "name", name, "trust", trust);
    } else {
        json_t *ord = json_object_get(p->report, "server_chain_order");
        bool missing = ord != NULL && strcmp(json_string_value(json_object_get(ord, "verdict")),
                                             "missing_issuer") == 0;
        probe_say(p, "server verification for \"%s\" against %s%s: INVALID", name,
                  p->cacert_file != NULL ? "--cacert " : "", trust);
        o = json_pack("{s:b,s:s,s:s,s:s,s:o}", "valid", 0, "name", name, "trust", trust, "code",
                      verify_fail_code(f), "reason", cli_json_text(err.msg));
        probe_finding(p, "server_verification", verify_fail_code(f), true, err.msg,
                      server_fix(f, missing));
    }
    json_object_set_new(p->report, "server_verification", o);
    sk_X509_free(extra);
}

/*
 * The entry of a stapled response about the server's leaf (RFC 6960 4.1.1
 * CertID, by the issuer sent after the leaf or found in --cacert), or -1.
 * Without a known issuer the first entry is taken.
 */
static int
staple_index(struct probe *p, OCSP_BASICRESP *bs, STACK_OF(X509) * chain)
{
    X509 *leaf = sk_X509_value(chain, 0), *issuer = NULL;
    OCSP_CERTID *id;
    int idx;

    for (int i = 1; i < sk_X509_num(chain) && issuer == NULL; i++) {
        if (X509_check_issued(sk_X509_value(chain, i), leaf) == X509_V_OK)
            issuer = sk_X509_value(chain, i);
    }
    for (int i = 0; i < sk_X509_num(p->cacerts) && issuer == NULL; i++) {
        if (X509_check_issued(sk_X509_value(p->cacerts, i), leaf) == X509_V_OK)
            issuer = sk_X509_value(p->cacerts, i);
    }
    ERR_clear_error();
    if (issuer == NULL)
        return 0;
    if ((id = OCSP_cert_to_id(NULL, leaf, issuer)) == NULL) {
        ERR_clear_error();
        return 0;
    }
    idx = OCSP_resp_find(bs, id, -1);
    OCSP_CERTID_free(id);
    return idx;
}

/* The OCSP staple, when the server sent one: status and validity, not its signature alone. */
void
probe_report_staple(struct probe *p, SSL *ssl, STACK_OF(X509) * chain)
{
    const unsigned char *der = NULL;
    long len = SSL_get_tlsext_status_ocsp_resp(ssl, &der);
    OCSP_RESPONSE *resp = NULL;
    OCSP_BASICRESP *bs = NULL;
    json_t *o;

    if (len <= 0 || der == NULL) {
        probe_say(p, "ocsp staple: none");
        json_object_set_new(p->report, "ocsp_staple", json_null());
        return;
    }
    o = json_object();
    json_object_set_new(p->report, "ocsp_staple", o);
    resp = d2i_OCSP_RESPONSE(NULL, &der, len);
    if (resp == NULL || OCSP_response_status(resp) != OCSP_RESPONSE_STATUS_SUCCESSFUL ||
        (bs = OCSP_response_get1_basic(resp)) == NULL || OCSP_resp_count(bs) < 1) {
        json_object_set_new(o, "status", json_string("unreadable"));
        probe_say(p, "ocsp staple: unreadable or not successful");
        probe_finding(p, "ocsp_staple", "staple_unreadable", false,
                      "the server staples an OCSP response that is not a successful basic response",
                      "check the responder the server fetches its staple from");
        goto out;
    }
    {
        int reason = 0, st;
        ASN1_GENERALIZEDTIME *rev = NULL, *thisu = NULL, *nextu = NULL;
        char tu[32] = "?", nu[32] = "none";
        int64_t t;
        bool sig_ok;

        int idx = staple_index(p, bs, chain);

        if (idx < 0) {
            json_object_set_new(o, "status", json_string("other_certificate"));
            probe_say(p, "ocsp staple: about another certificate");
            probe_finding(p, "ocsp_staple", "staple_other_cert", false,
                          "the server staples an OCSP response that is not about its certificate",
                          "check which certificate the server's staple is fetched for");
            goto out;
        }
        st = OCSP_single_get0_status(OCSP_resp_get0(bs, idx), &reason, &rev, &thisu, &nextu);
        if (thisu != NULL && x509u_time(thisu, &t))
            x509u_fmt_rfc3339(t, tu, sizeof(tu));
        if (nextu != NULL && x509u_time(nextu, &t))
            x509u_fmt_rfc3339(t, nu, sizeof(nu));
        sig_ok = OCSP_basic_verify(bs, chain, p->store, 0) == 1;
        ERR_clear_error();
        json_object_set_new(o, "status", json_string(OCSP_cert_status_str(st)));
        json_object_set_new(o, "this_update", json_string(tu));
        json_object_set_new(o, "next_update", json_string(nu));
        json_object_set_new(o, "signature_valid", json_boolean(sig_ok));
        probe_say(p, "ocsp staple: %s, thisUpdate %s, nextUpdate %s, signature %s",
                  OCSP_cert_status_str(st), tu, nu, sig_ok ? "verified" : "NOT verified");
        if (st == V_OCSP_CERTSTATUS_REVOKED)
            probe_finding(
                p, "ocsp_staple", "staple_revoked", true,
                "the server's own OCSP staple says its certificate is revoked",
                "the server needs a new certificate: duet cert issue NAME --profile server");
        else if (nextu != NULL && x509u_time(nextu, &t) && t < p->now)
            probe_finding(
                p, "ocsp_staple", "staple_stale", false,
                "the server staples an OCSP response past its nextUpdate",
                "the server must refresh its staple (duet proxy: --ocsp-staple refreshes it)");
    }
out:
    OCSP_BASICRESP_free(bs);
    OCSP_RESPONSE_free(resp);
}

/* --- our side: the CertificateRequest and our certificate --------------------------------- */

/* The client fix for one of our own certificate's problems. */
static void
client_problem(struct probe *p, X509 *leaf)
{
    char problem[512], fix[256];
    char *subj = probe_name_text(X509_get_subject_name(leaf));
    const char *what = "";

    switch (p->client) {
    case DIAG_CLIENT_EXPIRED: {
        char na[32] = "?";
        int64_t t;
        if (x509u_time(X509_get0_notAfter(leaf), &t))
            x509u_fmt_rfc3339(t, na, sizeof(na));
        snprintf(problem, sizeof(problem), "our certificate %s expired on %s", subj, na);
        snprintf(fix, sizeof(fix), "renew it: duet cert renew %s --ca-dir CA_DIR",
                 p->our_serial != NULL ? p->our_serial : "SERIAL");
        break;
    }
    case DIAG_CLIENT_NOT_YET_VALID:
        snprintf(problem, sizeof(problem), "our certificate %s is not valid yet", subj);
        snprintf(fix, sizeof(fix), "wait until its notBefore, or check this machine's clock");
        break;
    case DIAG_CLIENT_EKU:
        what = "its extended key usage does not include clientAuth";
        /* fall through */
    case DIAG_CLIENT_KEY_USAGE:
        if (*what == '\0')
            what = "its key usage does not include digitalSignature";
        snprintf(problem, sizeof(problem),
                 "our certificate %s is not usable as a client "
                 "certificate: %s",
                 subj, what);
        snprintf(fix, sizeof(fix),
                 "issue it with --profile client (duet cert issue NAME "
                 "--profile client)");
        break;
    case DIAG_CLIENT_IS_CA:
        snprintf(problem, sizeof(problem), "our certificate %s is a CA certificate", subj);
        snprintf(fix, sizeof(fix),
                 "issue a client certificate: duet cert issue NAME --profile "
                 "client");
        break;
    case DIAG_CLIENT_OK:
        free(subj);
        return;
    }
    probe_finding(p, "client_certificate", diag_client_code(p->client), true, problem, fix);
    free(subj);
}

/* What the server asked for, and how our certificate fits it. */
void
probe_report_request(struct probe *p)
{
    json_t *req = json_object(), *names = json_array();
    X509 *leaf = p->our_chain != NULL ? sk_X509_value(p->our_chain, 0) : NULL;
    char line[2048];
    size_t used = 0;

    json_object_set_new(p->report, "client_certificate_request", req);
    json_object_set_new(req, "requested", json_boolean(p->requested));
    json_object_set_new(req, "ca_names", names);
    json_object_set_new(req, "signature_algorithms", json_incref(p->sigalgs));
    if (!p->requested) {
        probe_say(p, "client certificate: the server did not ask for one");
        probe_finding(
            p, "client_certificate_request", "not_requested", true,
            "the server did not ask for a client certificate: this port does not use mutual "
            "TLS, so it cannot know who we are",
            "require client certificates on the server (duet proxy always does; nginx: "
            "ssl_verify_client on with ssl_client_certificate)");
    } else {
        line[0] = '\0';
        for (int i = 0; i < sk_X509_NAME_num(p->ca_names); i++) {
            char *n = probe_name_text(sk_X509_NAME_value(p->ca_names, i));
            int w = snprintf(line + used, sizeof(line) - used, "%s%s", i ? "; " : "", n);
            json_array_append_new(names, cli_json_text(n));
            free(n);
            if (w > 0 && (size_t)w < sizeof(line) - used)
                used += (size_t)w;
        }
        probe_say(p, "client certificate: requested");
        probe_say(p, "  accepted CAs: %s", used ? line : "none named (any CA it trusts)");
        used = 0;
        line[0] = '\0';
        for (size_t i = 0; i < json_array_size(p->sigalgs); i++) {
            int w = snprintf(line + used, sizeof(line) - used, "%s%s", i ? ", " : "",
                             json_string_value(json_array_get(p->sigalgs, i)));
            if (w > 0 && (size_t)w < sizeof(line) - used)
                used += (size_t)w;
        }
        probe_say(p, "  signature algorithms: %s", used ? line : "not given");
    }
    if (leaf == NULL) {
        json_object_set_new(p->report, "client_certificate", json_null());
        if (p->requested)
            probe_say(p, "  ours: none given (--cert, --key)");
        return;
    }
    {
        const X509_NAME *matched = NULL;
        X509 *missing = NULL;
        char *subj = probe_name_text(X509_get_subject_name(leaf));
        char *iss = probe_name_text(X509_get_issuer_name(leaf));
        json_t *cc;

        p->client = diag_client_usable(leaf, p->now);
        p->chain_current = diag_chain_current(p->our_chain, p->now);
        p->ca_match = diag_ca_match(p->our_chain, p->requested ? p->ca_names : NULL, p->cacerts,
                                    &matched, &missing);
        cc = json_pack("{s:o,s:o,s:o,s:i,s:s,s:s,s:b}", "subject", cli_json_text(subj), "issuer",
                       cli_json_text(iss), "serial", cli_json_text(p->our_serial), "chain_length",
                       sk_X509_num(p->our_chain), "usable", diag_client_code(p->client), "ca_match",
                       diag_ca_match_code(p->ca_match), "sent", p->sent);
        json_object_set_new(p->report, "client_certificate", cc);
        probe_say(p, "  ours: %s (serial %s), %d certificate%s, %s", subj,
                  p->our_serial ? p->our_serial : "?", sk_X509_num(p->our_chain),
                  sk_X509_num(p->our_chain) == 1 ? "" : "s",
                  p->client == DIAG_CLIENT_OK ? "usable for clientAuth"
                                              : "NOT usable for clientAuth");
        client_problem(p, leaf);
        if (matched != NULL) {
            char *m = probe_name_text(matched);
            json_object_set_new(cc, "accepted_ca", cli_json_text(m));
            if (p->ca_match == DIAG_CA_SENT)
                probe_say(p, "  our chain leads to the accepted CA %s", m);
            free(m);
        }
        if (p->ca_match == DIAG_CA_NEEDS_CHAIN) {
            char *ms = probe_name_text(missing != NULL ? X509_get_subject_name(missing)
                                                       : X509_get_issuer_name(leaf));
            char problem[1024];
            if (missing != NULL)
                snprintf(problem, sizeof(problem),
                         "missing intermediate: our certificate reaches a CA the server accepts "
                         "only through %s, which we do not send (%s holds %d certificate%s)",
                         ms, p->cert_file, sk_X509_num(p->our_chain),
                         sk_X509_num(p->our_chain) == 1 ? "" : "s");
            else
                snprintf(problem, sizeof(problem),
                         "missing intermediate: %s holds only our leaf, issued by %s, which is "
                         "not a CA the server accepts: the server needs that intermediate CA to "
                         "reach one it accepts",
                         p->cert_file, ms);
            json_object_set_new(cc, "missing_intermediate", cli_json_text(ms));
            probe_finding(p, "client_certificate", "needs_chain", true, problem,
                          "send the chain: give a file with the leaf followed by the issuing CA");
            free(ms);
        } else if (p->ca_match == DIAG_CA_NOT_ACCEPTED) {
            char problem[1024];
            snprintf(problem, sizeof(problem),
                     "our certificate %s is issued by %s, which leads to none of the CAs the "
                     "server accepts",
                     subj, iss);
            probe_finding(
                p, "client_certificate", "not_accepted", true, problem,
                "use a certificate issued by one of the accepted CAs listed above, or have "
                "the server trust our CA");
        }
        if (p->requested && !diag_key_fits_sigalgs(p->our_key, p->sigalg_codes, p->nsigalgs)) {
            char key[96], problem[512];
            x509u_key_describe(p->our_key, key, sizeof(key), NULL);
            snprintf(problem, sizeof(problem),
                     "no shared signature algorithm: the server accepts none our %s key can "
                     "make, so no certificate is sent",
                     key);
            json_object_set_new(cc, "sent", json_false());
            p->sent = false;
            probe_finding(p, "client_certificate", "no_shared_sigalg", true, problem,
                          "issue a certificate with a key type the server accepts (listed above): "
                          "duet cert issue NAME --profile client --key-type TYPE");
        }
        free(subj);
        free(iss);
    }
}

/* --- the server's answer ------------------------------------------------------------------- */

/* The server's alert, read in context, as the answer and a finding. */
void
probe_report_alert(struct probe *p, json_t *ans)
{
    struct diag_alert_ctx ctx = {.requested = p->requested,
                                 .sent = p->sent,
                                 .client = p->client,
                                 .ca_match = p->ca_match,
                                 .chain_current = p->chain_current,
                                 .serial = p->our_serial};
    struct diag_reading r;

    diag_alert_read(p->alert, &ctx, &r);
    probe_say(p, "server answer: alert %s", diag_alert_name(p->alert));
    json_object_set_new(ans, "result", json_string("alert"));
    json_object_set_new(ans, "alert", json_string(diag_alert_name(p->alert)));
    json_object_set_new(ans, "alert_code", json_integer(p->alert));
    json_object_set_new(ans, "meaning", json_string(r.code));
    probe_finding(p, "server_answer", r.code, true, r.meaning, r.fix);
}

/* What an HTTP refusal says; see probe.h. */
void
probe_report_http_refusal(struct probe *p, int status, const char *body, size_t blen, json_t *h)
{
    json_error_t jerr;
    json_t *j = blen > 0 && body[0] == '{' ? json_loadb(body, blen, 0, &jerr) : NULL;
    const char *error = j != NULL ? json_string_value(json_object_get(j, "error")) : NULL;
    char problem[1024];

    if (status == 403 && error != NULL && strcmp(error, "forbidden") == 0) {
        const char *rule = json_string_value(json_object_get(j, "rule"));
        const char *id = json_string_value(json_object_get(j, "identity"));
        json_object_set_new(h, "refusal",
                            json_pack("{s:s,s:o,s:o}", "by", "duet proxy", "rule",
                                      cli_json_text(rule), "identity", cli_json_text(id)));
        snprintf(problem, sizeof(problem),
                 "the duet proxy verified our certificate and its policy refused the request: "
                 "rule %s decided for identity %s",
                 rule != NULL ? rule : "?", id != NULL ? id : "(none)");
        probe_finding(
            p, "http", "policy_denied", true, problem,
            "ask the proxy's operator for a rule that admits this identity for this path, "
            "or request a path it allows (--path)");
    } else if (error != NULL) {
        const char *detail = json_string_value(json_object_get(j, "detail"));
        json_object_set_new(h, "refusal",
                            json_pack("{s:s,s:o,s:o}", "by", "duet proxy", "error",
                                      cli_json_text(error), "detail", cli_json_text(detail)));
        snprintf(problem, sizeof(problem), "the duet proxy refused the request (%s): %s", error,
                 detail != NULL ? detail : "no detail");
        probe_finding(p, "http", "refused", status == 403, problem,
                      "read the detail above; the proxy's log has the same line");
    } else if (status == 496 || (status == 400 && blen > 0 &&
                                 memmem(body, blen, "No required SSL certificate", 27))) {
        json_object_set_new(h, "refusal",
                            json_pack("{s:s,s:s}", "by", "nginx", "error", "no_client_cert"));
        probe_finding(
            p, "http", "no_client_cert", true,
            "the server (nginx) requires a client certificate and got none",
            "give one: --cert CLIENT.crt --key CLIENT.key (issued with --profile client)");
    } else if (status == 495 ||
               (status == 400 && blen > 0 && memmem(body, blen, "SSL certificate error", 21))) {
        /* nginx's own words for a failed verification: read like a bad_certificate alert */
        struct diag_alert_ctx ctx = {.requested = p->requested,
                                     .sent = p->sent,
                                     .client = p->client,
                                     .ca_match = p->ca_match,
                                     .chain_current = p->chain_current,
                                     .http_page = true,
                                     .serial = p->our_serial};
        struct diag_reading r;

        diag_alert_read(SSL3_AD_BAD_CERTIFICATE, &ctx, &r);
        json_object_set_new(h, "refusal",
                            json_pack("{s:s,s:s,s:s}", "by", "nginx", "error", "client_cert_error",
                                      "meaning", r.code));
        if (strcmp(r.code, "client_cert_refused") != 0) {
            snprintf(problem, sizeof(problem),
                     "the server (nginx) could not verify our client certificate (\"The SSL "
                     "certificate error\"): %s",
                     r.meaning);
            probe_finding(p, "http", "client_cert_error", true, problem, r.fix);
        } else {
            probe_finding(p, "http", "client_cert_error", true,
                          "the server (nginx) could not verify our client certificate; its "
                          "error log names the check",
                          "compare our chain with the accepted CAs above (send the chain, use a "
                          "certificate of an accepted CA, renew an expired one)");
        }
    } else if (status == 403) {
        probe_finding(p, "http", "forbidden", true, "the server answered 403 Forbidden",
                      "ask the server's operator what admits this identity");
    }
    json_decref(j);
}
