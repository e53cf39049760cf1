/* SPDX-License-Identifier: Apache-2.0 */
/*
 * leanhttp_fuzz.c - libFuzzer target for the strict OCSP request reader of
 * `duet ca serve`'s plain listener (src/caserver/leanhttp.c), which takes
 * bytes from anyone on the network.
 *
 * The properties, stronger than "does not crash":
 *  - split invariance: every prefix of the input reads as "more" or as the
 *    whole input does; when the whole reads as an OCSP request of `total`
 *    bytes, every shorter prefix says "more" and every prefix from `total`
 *    on gives the very same request (pipelined bytes after it change
 *    nothing), so a request split at any byte is read identically;
 *  - a second opinion: a request it reads is read by http-parser (the
 *    proxy's parser, a different implementation) as exactly one complete
 *    message of the same `total` bytes, nothing left over and no error, with
 *    the same method, the same target, the same body, HTTP/1.minor, and kept
 *    alive; so no request is framed one way here and another way by a
 *    conforming reader (no smuggling across the hand-over to evhttp).
 * The first input byte picks the body limit (so the limit's edge is explored).
 */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <http_parser.h>

#include "caserver/leanhttp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* What http-parser saw of the first message. */
struct ref {
    int messages;
    char url[LEANHTTP_MAX_HEAD + 1];
    size_t url_len;
    size_t body_len;
    const uint8_t *body_at; /* where the body's bytes were, contiguous in one call */
    bool body_split;
    bool done;
};

static int
on_url(http_parser *p, const char *at, size_t n)
{
    struct ref *r = p->data;

    if (r->url_len + n > LEANHTTP_MAX_HEAD)
        return 1;
    memcpy(r->url + r->url_len, at, n);
    r->url_len += n;
    return 0;
}

static int
on_body(http_parser *p, const char *at, size_t n)
{
    struct ref *r = p->data;

    if (r->body_len == 0)
        r->body_at = (const uint8_t *)at;
    else if (r->body_at + r->body_len != (const uint8_t *)at)
        r->body_split = true;
    r->body_len += n;
    return 0;
}

static int
on_complete(http_parser *p)
{
    struct ref *r = p->data;

    r->messages++;
    r->done = true;
    http_parser_pause(p, 1); /* stop right after the first message */
    return 0;
}

/* Two reads of one request agree in every field. */
static void
same(const struct leanhttp_req *a, const struct leanhttp_req *b)
{
    assert(a->post == b->post && a->minor == b->minor);
    assert(a->target == b->target && a->target_len == b->target_len);
    assert(a->body == b->body && a->body_len == b->body_len);
    assert(a->total == b->total);
}

/* http-parser's opinion of the request the lean reader read in data[0..r->total). */
static void
cross_check(const uint8_t *data, size_t size, const struct leanhttp_req *r)
{
    http_parser_settings st;
    http_parser p;
    struct ref ref;
    size_t n;

    memset(&st, 0, sizeof(st));
    memset(&ref, 0, sizeof(ref));
    st.on_url = on_url;
    st.on_body = on_body;
    st.on_message_complete = on_complete;
    http_parser_init(&p, HTTP_REQUEST);
    p.data = &ref;
    n = http_parser_execute(&p, &st, (const char *)data, size);
    assert(ref.done && ref.messages == 1);
    assert(HTTP_PARSER_ERRNO(&p) == HPE_OK || HTTP_PARSER_ERRNO(&p) == HPE_PAUSED);
    assert(n == r->total);
    assert(p.method == (r->post ? HTTP_POST : HTTP_GET));
    assert(p.http_major == 1 && p.http_minor == r->minor);
    assert(http_should_keep_alive(&p));
    assert(ref.url_len == r->target_len && memcmp(ref.url, r->target, r->target_len) == 0);
    assert(!ref.body_split && ref.body_len == r->body_len);
    assert(r->body_len == 0 || ref.body_at == r->body);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const size_t limits[4] = {0, 16, 1024, 65536};
    struct leanhttp_req whole, part;
    enum leanhttp_verdict v;
    size_t max_body, step;

    if (size < 1)
        return 0;
    max_body = limits[data[0] & 3];
    data++;
    size--;
    v = caserver_leanhttp_parse(data, size, max_body, &whole);
    if (v == LEANHTTP_OCSP) {
        assert(whole.total > 0 && whole.total <= size);
        assert(whole.body_len <= max_body);
        cross_check(data, size, &whole);
    }
    /* All prefixes of short inputs, a sample of long ones. */
    step = size <= 2048 ? 1 : size / 512;
    for (size_t i = 0; i < size; i += step) {
        enum leanhttp_verdict pv = caserver_leanhttp_parse(data, i, max_body, &part);
        if (v == LEANHTTP_OCSP) {
            if (i < whole.total) {
                assert(pv == LEANHTTP_MORE);
            } else {
                assert(pv == LEANHTTP_OCSP);
                same(&part, &whole);
            }
        } else {
            assert(pv == LEANHTTP_MORE || pv == v);
        }
    }
    return 0;
}
