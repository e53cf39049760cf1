/* SPDX-License-Identifier: Apache-2.0 */
/*
 * probe.h - what the files of `duet probe` share: the probe's state (options,
 * files, what the handshake showed, the report being built) and the report's
 * steps that need no socket (probe_report.c).  cmd_probe.c connects, drives
 * the handshake and calls them in order.
 */
#ifndef DUET_CLI_PROBE_H
#define DUET_CLI_PROBE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "lib/diagnose.h"
#include "lib/err.h"
#include "lib/revset.h"

/* Most bytes of an HTTP answer read (head and the start of the body). */
#define PROBE_HTTP_MAX 16384
/* Most signature algorithms of a CertificateRequest kept (RFC 8446 allows 32767). */
#define PROBE_MAX_SIGALGS 64

/* Everything one probe knows: options, loaded files, what it observed, the report. */
struct probe {
    char host[256], port[8];
    char target[300]; /* HOST:PORT or [IPV6]:PORT, for messages */
    const char *cert_file, *key_file, *cacert_file, *server_name, *path;
    bool json, no_http;
    int64_t timeout_ms;
    STACK_OF(X509) * our_chain; /* --cert: leaf first */
    EVP_PKEY *our_key;
    STACK_OF(X509) * cacerts; /* --cacert */
    X509_STORE *store;        /* --cacert, else the system store */
    struct revset *revs;      /* --crl */
    int fd;
    int64_t deadline; /* monotonic ms */
    /* observed during the handshake */
    bool requested, sent;
    STACK_OF(X509_NAME) * ca_names;
    json_t *sigalgs;
    unsigned sigalg_codes[PROBE_MAX_SIGALGS];
    size_t nsigalgs;
    int alert; /* the first alert the server sent, -1 for none */
    enum diag_client client;
    enum diag_ca_match ca_match;
    bool chain_current; /* every certificate of ours within its validity */
    char *our_serial;
    /* the report */
    json_t *report, *findings;
    bool failed;
    int64_t now;
};

/* A line for a human reader (text format only), escaped for the terminal. */
void probe_say(struct probe *p, const char *fmt, ...) PRINTF_LIKE(2, 3);
/*
 * A problem: "problem:" (or "warning:") and "fix:" lines, and an entry of
 * "findings".  An error means the mTLS connection does not work (exit 1); a
 * warning does not.  `problem` may quote names from certificates: it is
 * escaped for the terminal and for JSON.
 */
void probe_finding(struct probe *p, const char *step, const char *code, bool error,
                   const char *problem, const char *fix);
/* A certificate name as text (RFC 4514), or "?" when memory runs out; the caller frees. */
char *probe_name_text(const X509_NAME *n);

/* The server's chain as sent (each certificate, then diag_chain_order()'s verdict). */
void probe_report_chain(struct probe *p, STACK_OF(X509) * chain);
/* The server's chain verified for the name by verify.c, with the fix on failure. */
void probe_report_verification(struct probe *p, STACK_OF(X509) * chain);
/* The OCSP staple the server sent, if any: status, times, signature. */
void probe_report_staple(struct probe *p, SSL *ssl, STACK_OF(X509) * chain);
/* The CertificateRequest (or its absence) and how our certificate fits it. */
void probe_report_request(struct probe *p);
/* The server's alert read in context (diag_alert_read()), into `ans` and a finding. */
void probe_report_alert(struct probe *p, json_t *ans);
/* What an HTTP refusal's body says: a duet proxy's JSON, nginx's certificate pages. */
void probe_report_http_refusal(struct probe *p, int status, const char *body, size_t blen,
                               json_t *h);

#endif
