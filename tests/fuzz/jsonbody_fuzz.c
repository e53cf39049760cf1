/* SPDX-License-Identifier: Apache-2.0 */
/*
 * jsonbody_fuzz.c - libFuzzer target for the first look `duet ca serve`
 * takes at a /v1 request body (caserver_json_body() in
 * src/caserver/request.c): its Content-Type, its size, strict JSON, an
 * object.
 *
 * The property is more than "does not crash":
 *  - the status says which check refused, in order: 415 exactly when the
 *    Content-Type is not application/json (parameters allowed), else 413
 *    exactly when the body is over the limit, else 400 exactly when jansson,
 *    strict, does not read an object with no duplicate key; the code goes
 *    with the status;
 *  - the sentence of a refusal is exactly one of the fixed sentences with
 *    the numbers filled in, so it never quotes a byte of the body (which may
 *    hold an enrollment token);
 *  - an accepted body is an object that, written out and read again
 *    strictly, is equal to itself.
 *
 * The first input byte chooses the Content-Type; the rest is the body.
 */
#include <assert.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "caserver/caserver_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The limit the target uses: small, so that bodies cross it. */
#define MAX 512

static const char *const ctypes[] = {
    "application/json",
    "application/json; charset=utf-8",
    "APPLICATION/JSON",
    "application/json ",
    "application/jsonx",
    "text/plain",
    "application/json;",
    NULL,
    "",
};
#define NCTYPES (sizeof(ctypes) / sizeof(ctypes[0]))

/* The oracle of "is application/json", written from RFC 9110's media-type grammar. */
static int
is_json_ct(const char *ct)
{
    if (ct == NULL || strncasecmp(ct, "application/json", 16) != 0)
        return 0;
    return ct[16] == '\0' || ct[16] == ';' || ct[16] == ' ';
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct caserver_refusal ref;
    const char *ct;
    const char *body;
    size_t len;
    json_t *j, *strict, *again;
    json_error_t jerr;
    char want[256];
    char *text;

    if (size == 0)
        return 0;
    ct = ctypes[data[0] % NCTYPES];
    body = (const char *)data + 1;
    len = size - 1;
    memset(&ref, 0, sizeof(ref));
    j = caserver_json_body(ct, body, len, MAX, &ref);

    strict =
        is_json_ct(ct) && len <= MAX ? json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr) : NULL;
    if (!is_json_ct(ct)) {
        assert(j == NULL && ref.status == 415 && strcmp(ref.code, "unsupported_media_type") == 0);
        assert(strcmp(ref.detail, "the request body must be Content-Type: application/json") == 0);
    } else if (len > MAX) {
        assert(j == NULL && ref.status == 413 && strcmp(ref.code, "payload_too_large") == 0);
        snprintf(want, sizeof(want),
                 "the request body has %zu bytes; at most %d are accepted (--max-body)", len, MAX);
        assert(strcmp(ref.detail, want) == 0);
    } else if (strict == NULL) {
        assert(j == NULL && ref.status == 400 && strcmp(ref.code, "bad_request") == 0);
        snprintf(want, sizeof(want),
                 "the request body is not JSON (error at line %d, column %d); expected an object",
                 jerr.line, jerr.column);
        assert(strcmp(ref.detail, want) == 0);
    } else if (!json_is_object(strict)) {
        assert(j == NULL && ref.status == 400 && strcmp(ref.code, "bad_request") == 0);
        assert(strcmp(ref.detail, "the request body must be a JSON object") == 0);
    } else {
        /* Accepted: the object itself, and a round trip keeps it. */
        assert(j != NULL && json_is_object(j) && json_equal(j, strict));
        text = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
        assert(text != NULL);
        again = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
        assert(again != NULL && json_equal(again, j));
        json_decref(again);
        free(text);
    }
    json_decref(strict);
    json_decref(j);
    return 0;
}
