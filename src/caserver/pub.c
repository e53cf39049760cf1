/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pub.c - what `duet ca serve` publishes to anyone, on both listeners: the
 * CRL (signed by server.c and kept in memory), the roots and the chain, OCSP
 * answers (RFC 6960, GET and POST, computed by ca_ocsp_respond at the moment
 * they are asked for); and, on HTTPS, /healthz and /metrics.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <openssl/evp.h>
#include <openssl/ocsp.h>

#include "caserver/caserver_int.h"

/* GET /crl, /crl.pem; see caserver_int.h. */
void
caserver_pub_crl(struct careq *r, bool pem)
{
    if (!caserver_method_ok(r, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD))
        return;
    /* Another node may have revoked or published a newer CRL: never serve an older one. */
    caserver_crl_check(r->s);
    if (pem)
        caserver_reply(r, 200, "application/x-pem-file", r->s->crl_pem, r->s->crl_pem_len);
    else
        caserver_reply(r, 200, "application/pkix-crl", r->s->crl_der, r->s->crl_der_len);
}

/* GET /roots.pem, /chain.pem; see caserver_int.h. */
void
caserver_pub_pem(struct careq *r, const char *pem)
{
    if (!caserver_method_ok(r, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD))
        return;
    caserver_reply(r, 200, "application/x-pem-file", pem, strlen(pem));
}

/* The DER request of GET /ocsp/{base64}; see caserver_int.h. */
bool
caserver_ocsp_get_der(const char *path, uint8_t **out, size_t *len)
{
    size_t tlen = 0, pad = 0;
    char *text = evhttp_uridecode(path, 0, &tlen);
    uint8_t *der = NULL;
    int n;

    *out = NULL;
    if (text == NULL)
        return false;
    if (tlen == 0 || tlen % 4 != 0 || tlen > 4 * ((CA_OCSP_MAX_REQUEST + 2) / 3) ||
        strlen(text) != tlen || (der = malloc(tlen / 4 * 3 + 1)) == NULL) {
        free(text);
        return false;
    }
    while (pad < 2 && pad < tlen && text[tlen - 1 - pad] == '=')
        pad++;
    n = EVP_DecodeBlock(der, (const unsigned char *)text, (int)tlen);
    free(text);
    if (n < 0 || (size_t)n < pad) {
        free(der);
        return false;
    }
    *out = der;
    *len = (size_t)n - pad;
    return true;
}

/* Answer one DER OCSP request and count it; see caserver_int.h. */
int
caserver_ocsp_answer(struct casrv *s, const uint8_t *req, size_t len, double t0, uint8_t **resp,
                     size_t *resp_len, struct duet_err *err)
{
    struct ca_ocsp_summary sum;
    char labels[64];

    if (ca_ocsp_respond_cached(s->ca, s->signer, s->ocsp_cache, req, len, caserver_now(),
                               s->o->ocsp_validity, resp, resp_len, &sum, err) != 0)
        return -1;
    /* The commonest labels are literals: no formatting on the cached path. */
    if (sum.status == OCSP_RESPONSE_STATUS_SUCCESSFUL) {
        caserver_metric_add("duet_ca_ocsp_requests_total", "status=\"successful\"", 1);
    } else {
        snprintf(labels, sizeof(labels), "status=\"%s\"", ca_ocsp_status_name(sum.status));
        caserver_metric_add("duet_ca_ocsp_requests_total", labels, 1);
    }
    if (sum.cache != NULL && strcmp(sum.cache, CA_OCSP_CACHE_HIT) == 0) {
        caserver_metric_add("duet_ca_ocsp_cache_total", "result=\"" CA_OCSP_CACHE_HIT "\"", 1);
    } else if (sum.cache != NULL) {
        snprintf(labels, sizeof(labels), "result=\"%s\"", sum.cache);
        caserver_metric_add("duet_ca_ocsp_cache_total", labels, 1);
    }
    caserver_metric_ocsp_duration(caserver_mono() - t0);
    return 0;
}

/* POST /ocsp, GET /ocsp/{base64}; see caserver_int.h. */
void
caserver_pub_ocsp(struct careq *r, const char *path)
{
    struct duet_err err = {.kind = DUET_ERR_NONE};
    uint8_t *req = NULL, *resp = NULL;
    size_t len = 0, resp_len = 0;
    double t0 = caserver_mono();
    enum evhttp_cmd_type m = evhttp_request_get_command(r->req);

    if (m == EVHTTP_REQ_POST && path[0] == '\0') {
        struct evbuffer *in = evhttp_request_get_input_buffer(r->req);
        const char *ct =
            evhttp_find_header(evhttp_request_get_input_headers(r->req), "Content-Type");
        if (ct == NULL || strcasecmp(ct, "application/ocsp-request") != 0) {
            caserver_reply_error(r, 415, "unsupported_media_type",
                                 "an OCSP request is POSTed as Content-Type: "
                                 "application/ocsp-request");
            return;
        }
        len = evbuffer_get_length(in);
        if ((req = malloc(len + 1)) == NULL) {
            caserver_reply_error(r, 500, "internal_error", "out of memory");
            return;
        }
        evbuffer_copyout(in, req, len);
    } else if (m == EVHTTP_REQ_GET && path[0] == '/') {
        if (!caserver_ocsp_get_der(path + 1, &req, &len)) {
            caserver_reply_error(r, 400, "bad_request",
                                 "GET /ocsp/{request}: the request must be DER in base64, URL "
                                 "encoded (RFC 6960 appendix A.1)");
            return;
        }
    } else {
        if (path[0] == '\0')
            evhttp_add_header(evhttp_request_get_output_headers(r->req), "Allow", "POST");
        caserver_reply_error(r, path[0] == '\0' ? 405 : 404,
                             path[0] == '\0' ? "method_not_allowed" : "not_found",
                             "OCSP is POST /ocsp or GET /ocsp/{base64 request}");
        return;
    }
    if (caserver_ocsp_answer(r->s, req, len, t0, &resp, &resp_len, &err) != 0) {
        free(req);
        caserver_reply_error(r, 500, "internal_error", "%s", err.msg);
        return;
    }
    free(req);
    caserver_reply(r, 200, "application/ocsp-response", resp, resp_len);
    free(resp);
}

/* GET /healthz; see caserver_int.h. */
void
caserver_pub_healthz(struct careq *r)
{
    if (!caserver_method_ok(r, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD))
        return;
    caserver_reply(r, 200, "text/plain", "ok\n", 3);
}

/* GET /metrics; see caserver_int.h. */
void
caserver_pub_metrics(struct careq *r)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f;

    if (!caserver_method_ok(r, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD))
        return;
    if ((f = open_memstream(&text, &len)) == NULL) {
        caserver_reply_error(r, 500, "internal_error", "out of memory");
        return;
    }
    caserver_metrics_write(f, r->s, caserver_now());
    fclose(f);
    caserver_reply(r, 200, "text/plain; version=0.0.4", text, len);
    free(text);
}
