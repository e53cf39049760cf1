/* SPDX-License-Identifier: Apache-2.0 */
/*
 * caserver.h - `duet ca serve`: the CA of one directory as a network service
 * (docs/ca-server.md is the contract).  One process, one libevent loop: the
 * HTTPS API (enrollment by token, renewal and revocation by the client
 * certificate, the CA's description) on evhttp over TLS, and the plain HTTP
 * listener for what is signed anyway (CRL, roots, OCSP).  The issuing key is
 * decrypted once, by the caller, and stays in this process.
 */
#ifndef DUET_CASERVER_H
#define DUET_CASERVER_H

#include <stddef.h>
#include <stdint.h>

#include "ca/ca.h"
#include "lib/err.h"

/* Defaults of the options (docs/ca-server.md "Running it"). */
#define CASERVER_CRL_VALIDITY (24 * 3600LL)
#define CASERVER_MAX_BODY 65536
#define CASERVER_MAX_CONNECTIONS 1024
/*
 * The HTTP layer reads a body of at most this many times --max-body: up to
 * there the server answers 413 itself (JSON); beyond, libevent refuses it
 * unread with its own 413 page (docs/ca-server.md, Conventions).
 */
#define CASERVER_BODY_READ_FACTOR 4
/* Seconds a client has to send a request's headers and body, and to read the answer. */
#define CASERVER_TIMEOUT 10
/* Longest --ocsp-cache-age, seconds. */
#define CASERVER_OCSP_CACHE_AGE_MAX 300
/* Files of the server's own certificate in the CA directory. */
#define CASERVER_FILE_CERT "ca-server.crt"
#define CASERVER_FILE_KEY "ca-server.key"
/* The anchors client certificates are verified against: the issuing CA and the root. */
#define CASERVER_FILE_TRUST "ca-server-trust.pem"

/* What `duet ca serve` was told; strings borrowed for the life of the server. */
struct caserver_opts {
    const char *listen;              /* HTTPS API, "ADDR:PORT" */
    const char *http_listen;         /* plain HTTP for /crl, /roots.pem, /ocsp; may be NULL */
    const char *const *server_names; /* names of the server certificate ("dns"/"ip" inferred) */
    size_t nserver_names;
    const char *const *admin_ids; /* identity patterns allowed to revoke any certificate */
    size_t nadmin_ids;
    const char *public_url; /* base of crl_url/ocsp_url in /v1/ca; may be NULL */
    int64_t crl_validity;   /* seconds */
    int64_t ocsp_validity;  /* seconds */
    int64_t ocsp_cache_age; /* longest reuse of a signed answer, seconds; 0: never reused */
    size_t max_body;        /* bytes */
    size_t max_connections; /* open connections per listener */
};

/*
 * Serve the CA (opened with its passphrase) until SIGTERM or SIGINT: make or
 * renew the server certificate, the OCSP signer and the CRL, bind the
 * listeners, then run the loop.  Returns 0 after a clean stop, -1 when it
 * could not start (err says why).
 */
int caserver_run(struct ca *ca, const struct caserver_opts *o, struct duet_err *err) MUST_CHECK;

#endif
