/* SPDX-License-Identifier: Apache-2.0 */
/*
 * request.c - one request of `duet ca serve` from start to answer: who asks
 * (peer address, the verified client certificate), the checks every /v1
 * endpoint shares (method, Content-Type, size, a JSON object), the answer,
 * the error format of docs/ca-server.md, and the audit line (`ca_request`)
 * with the counters of every request.  Request bodies are never logged: an
 * enrollment token's text reaches neither the log nor a message.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "caserver/caserver_int.h"
#include "lib/tls.h"
#include "lib/x509util.h"
#include "util/log.h"

/* Start a request's context; see caserver_int.h. */
void
caserver_req_begin(struct careq *r, struct casrv *s, struct evhttp_request *req,
                   const char *endpoint, bool tls)
{
    struct evhttp_connection *conn = evhttp_request_get_connection(req);
    char *addr = NULL;
    ev_uint16_t port = 0;

    memset(r, 0, sizeof(*r));
    r->s = s;
    r->req = req;
    r->endpoint = endpoint;
    r->tls = tls;
    r->t0 = caserver_mono();
    if (conn != NULL) {
        evhttp_connection_get_peer(conn, &addr, &port);
        snprintf(r->peer, sizeof(r->peer), "%s:%u", addr != NULL ? addr : "?", (unsigned)port);
    }
    if (tls && conn != NULL) {
        struct bufferevent *bev = evhttp_connection_get_bufferevent(conn);
        SSL *ssl = bev != NULL ? bufferevent_openssl_get_ssl(bev) : NULL;
        struct duet_err err = {.kind = DUET_ERR_NONE};
        if (ssl != NULL && tls_peer_identity(ssl, &r->id, &err) != 0)
            r->id = NULL;
    }
}

/* The audit line and the counters of an answered request. */
static void
req_finish(struct careq *r, int status)
{
    struct log_line l;
    char labels[160], st[8];
    const char *uri = evhttp_request_get_uri(r->req);

    snprintf(st, sizeof(st), "%d", status);
    snprintf(labels, sizeof(labels), "endpoint=\"%s\",status=\"%s\"", r->endpoint, st);
    caserver_metric_add("duet_ca_requests_total", labels, 1);
    if (r->refusal != NULL) {
        snprintf(labels, sizeof(labels), "endpoint=\"%s\",reason=\"%s\"", r->endpoint, r->refusal);
        caserver_metric_add("duet_ca_refused_total", labels, 1);
    }
    log_line_begin(&l, status >= 500 ? "error" : "info", "ca_request");
    log_line_str(&l, "method",
                 evhttp_request_get_command(r->req) == EVHTTP_REQ_POST  ? "POST"
                 : evhttp_request_get_command(r->req) == EVHTTP_REQ_GET ? "GET"
                                                                        : "other");
    /* An OCSP GET carries a long base64 path: the log cuts it like any value. */
    log_line_str(&l, "path", uri != NULL ? uri : "");
    log_line_str(&l, "endpoint", r->endpoint);
    log_line_str(&l, "listener", r->tls ? "https" : "http");
    log_line_str(&l, "peer", r->peer);
    log_line_str(&l, "identity", r->id != NULL ? r->id->name : NULL);
    log_line_str(&l, "identity_serial", r->id != NULL ? r->id->serial : NULL);
    log_line_num(&l, "status", status, 0);
    if (r->issued != NULL)
        log_line_str(&l, "issued", r->issued);
    if (r->renews != NULL)
        log_line_str(&l, "renews", r->renews);
    if (r->grace_renewal) {
        char when[32];
        x509u_fmt_rfc3339(r->expired_at, when, sizeof(when));
        log_line_bool(&l, "grace_renewal", true);
        log_line_str(&l, "expired_at", when);
    }
    if (r->revoked != NULL)
        log_line_str(&l, "revoked", r->revoked);
    if (r->refusal != NULL) {
        log_line_str(&l, "error", r->refusal);
        log_line_str(&l, "detail", r->detail);
    }
    log_line_num(&l, "duration_ms", (caserver_mono() - r->t0) * 1000.0, 3);
    log_line_end(&l);
    identity_free(r->id);
    free(r->issued);
    free(r->revoked);
    free(r->renews);
    r->id = NULL;
    r->issued = r->revoked = r->renews = NULL;
}

/* The audit line and counters of an OCSP answer of the plain listener's lean path. */
void
caserver_audit_ocsp(const char *method, const char *path, size_t path_len, const char *peer,
                    double t0)
{
    struct log_line l;

    caserver_metric_add("duet_ca_requests_total", "endpoint=\"/ocsp\",status=\"200\"", 1);
    /* The same fields, in the same order, as req_finish() writes for this answer. */
    log_line_begin(&l, "info", "ca_request");
    log_line_str(&l, "method", method);
    log_line_strn(&l, "path", path, path_len);
    log_line_str(&l, "endpoint", "/ocsp");
    log_line_str(&l, "listener", "http");
    log_line_str(&l, "peer", peer);
    log_line_str(&l, "identity", NULL);
    log_line_str(&l, "identity_serial", NULL);
    log_line_num(&l, "status", 200, 0);
    log_line_num(&l, "duration_ms", (caserver_mono() - t0) * 1000.0, 3);
    log_line_end(&l);
}

/*
 * Whether the request announced a body that libevent left unread on the
 * connection: it reads one only for the methods it knows may have one
 * (2.1.12: GET, POST, PUT, PATCH, DELETE, OPTIONS, CONNECT).  After a HEAD,
 * a TRACE or an unknown method with a Content-Length or Transfer-Encoding,
 * the body's bytes would be read as the next request: the answer closes the
 * connection instead.
 */
static bool
body_left_unread(struct evhttp_request *req)
{
    enum evhttp_cmd_type m = evhttp_request_get_command(req);
    struct evkeyvalq *in = evhttp_request_get_input_headers(req);
    bool read = m == EVHTTP_REQ_GET || m == EVHTTP_REQ_POST || m == EVHTTP_REQ_PUT ||
                m == EVHTTP_REQ_PATCH || m == EVHTTP_REQ_DELETE || m == EVHTTP_REQ_OPTIONS ||
                m == EVHTTP_REQ_CONNECT;

    return !read && (evhttp_find_header(in, "Content-Length") != NULL ||
                     evhttp_find_header(in, "Transfer-Encoding") != NULL);
}

/* Answer; see caserver_int.h. */
void
caserver_reply(struct careq *r, int status, const char *ctype, const void *body, size_t len)
{
    struct evbuffer *b = evbuffer_new();
    struct evkeyvalq *h = evhttp_request_get_output_headers(r->req);

    if (ctype != NULL)
        evhttp_add_header(h, "Content-Type", ctype);
    evhttp_add_header(h, "Cache-Control", "no-store");
    if (body_left_unread(r->req))
        evhttp_add_header(h, "Connection", "close");
    if (b != NULL && body != NULL && len > 0)
        evbuffer_add(b, body, len);
    evhttp_send_reply(r->req, status, status < 300 ? "OK" : "Error", b);
    if (b != NULL)
        evbuffer_free(b);
    req_finish(r, status);
}

/* Answer a JSON object; see caserver_int.h. */
void
caserver_reply_json(struct careq *r, int status, json_t *obj)
{
    char *text = obj != NULL ? json_dumps(obj, JSON_COMPACT) : NULL;

    json_decref(obj);
    if (text == NULL) {
        static const char oom[] =
            "{\"error\":\"internal_error\",\"detail\":\"out of memory building the answer\"}";
        r->refusal = "internal_error";
        caserver_reply(r, 500, "application/json", oom, sizeof(oom) - 1);
        return;
    }
    caserver_reply(r, status, "application/json", text, strlen(text));
    free(text);
}

/* Answer an error; see caserver_int.h. */
void
caserver_reply_error(struct careq *r, int status, const char *code, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(r->detail, sizeof(r->detail), fmt, ap);
    va_end(ap);
    r->refusal = code;
    caserver_reply_json(r, status, json_pack("{s:s, s:s}", "error", code, "detail", r->detail));
}

/* The name of a method bit, for messages. */
static const char *
method_name(int m)
{
    return m == EVHTTP_REQ_GET ? "GET" : m == EVHTTP_REQ_POST ? "POST" : "HEAD";
}

/* Check the method; see caserver_int.h. */
bool
caserver_method_ok(struct careq *r, int allowed)
{
    int m = (int)evhttp_request_get_command(r->req);
    char list[32] = "";

    if ((m & allowed) != 0)
        return true;
    for (int bit = EVHTTP_REQ_GET; bit <= EVHTTP_REQ_POST; bit <<= 1) {
        if ((allowed & bit) == 0)
            continue;
        if (list[0] != '\0')
            strncat(list, ", ", sizeof(list) - strlen(list) - 1);
        strncat(list, method_name(bit), sizeof(list) - strlen(list) - 1);
    }
    evhttp_add_header(evhttp_request_get_output_headers(r->req), "Allow", list);
    caserver_reply_error(r, 405, "method_not_allowed", "%s takes %s only", r->endpoint, list);
    return false;
}

/* How many headers of this name the request has (names compare without case). */
static int
header_count(struct evkeyvalq *h, const char *name)
{
    const struct evkeyval *kv;
    int n = 0;

    for (kv = h->tqh_first; kv != NULL; kv = kv->next.tqe_next) {
        if (strcasecmp(kv->key, name) == 0)
            n++;
    }
    return n;
}

/* Check the framing; see caserver_int.h. */
bool
caserver_framing_ok(struct careq *r)
{
    struct evkeyvalq *in = evhttp_request_get_input_headers(r->req);
    int cl = header_count(in, "Content-Length"), te = header_count(in, "Transfer-Encoding");

    if (cl <= 1 && (cl == 0 || te == 0))
        return true;
    /* The bytes after what libevent took as the body must not be read as a request. */
    evhttp_add_header(evhttp_request_get_output_headers(r->req), "Connection", "close");
    caserver_reply_error(r, 400, "bad_request",
                         "the request has %s; expected one Content-Length or a Transfer-Encoding "
                         "(RFC 9112 section 6.3)",
                         cl > 1 ? "more than one Content-Length"
                                : "both Content-Length and Transfer-Encoding");
    return false;
}

/* Check the body's size; see caserver_int.h. */
bool
caserver_body_size_ok(struct careq *r)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(r->req);
    size_t len = in != NULL ? evbuffer_get_length(in) : 0;

    if (len <= r->s->o->max_body)
        return true;
    caserver_reply_error(r, 413, "payload_too_large",
                         "the request body has %zu bytes; at most %zu are accepted (--max-body)",
                         len, r->s->o->max_body);
    return false;
}

/* Whether a Content-Type header is application/json (parameters such as charset allowed). */
static bool
is_json_type(const char *ct)
{
    static const char want[] = "application/json";
    size_t n = sizeof(want) - 1;

    if (ct == NULL || strncasecmp(ct, want, n) != 0)
        return false;
    return ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ';
}

/* Refuse: fill ref with status, code and sentence; NULL for the caller to return. */
static json_t *refuse(struct caserver_refusal *ref, int status, const char *code, const char *fmt,
                      ...) PRINTF_LIKE(4, 5);

static json_t *
refuse(struct caserver_refusal *ref, int status, const char *code, const char *fmt, ...)
{
    va_list ap;

    ref->status = status;
    ref->code = code;
    va_start(ap, fmt);
    vsnprintf(ref->detail, sizeof(ref->detail), fmt, ap);
    va_end(ap);
    return NULL;
}

/* Decide on a body; see caserver_int.h. */
json_t *
caserver_json_body(const char *ctype, const char *body, size_t len, size_t max,
                   struct caserver_refusal *ref)
{
    json_error_t jerr;
    json_t *j;

    if (!is_json_type(ctype))
        return refuse(ref, 415, "unsupported_media_type",
                      "the request body must be Content-Type: application/json");
    if (len > max)
        return refuse(ref, 413, "payload_too_large",
                      "the request body has %zu bytes; at most %zu are accepted (--max-body)", len,
                      max);
    /* Strict: no duplicate keys, no NUL in strings; jansson bounds the nesting depth. */
    j = json_loadb(len > 0 ? body : "", len, JSON_REJECT_DUPLICATES, &jerr);
    /* jerr.text quotes the input ("near '...'"), which may be a token: never repeated. */
    if (j == NULL)
        return refuse(ref, 400, "bad_request",
                      "the request body is not JSON (error at line %d, column %d); expected an "
                      "object",
                      jerr.line, jerr.column);
    if (!json_is_object(j)) {
        json_decref(j);
        return refuse(ref, 400, "bad_request", "the request body must be a JSON object");
    }
    return j;
}

/* The body as a JSON object; see caserver_int.h. */
json_t *
caserver_body_json(struct careq *r)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(r->req);
    const char *ct = evhttp_find_header(evhttp_request_get_input_headers(r->req), "Content-Type");
    size_t len = in != NULL ? evbuffer_get_length(in) : 0;
    const char *body = len > 0 ? (const char *)evbuffer_pullup(in, -1) : "";
    struct caserver_refusal ref;
    json_t *j = caserver_json_body(ct, body, len, r->s->o->max_body, &ref);

    if (j == NULL)
        caserver_reply_error(r, ref.status, ref.code, "%s", ref.detail);
    return j;
}
