/* SPDX-License-Identifier: Apache-2.0 */
/*
 * xfcc.c - identity headers for upstreams: X-Forwarded-Client-Cert (Envoy's
 * syntax, https://www.envoyproxy.io/docs/envoy/latest/configuration/http/
 * http_conn_man/headers#x-forwarded-client-cert).
 */
#include "lib/xfcc.h"
#include "lib/bbuf.h"
#include "lib/x509util.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

int
xfcc_mode_parse(const char *text, enum xfcc_mode *out, struct duet_err *err)
{
    if (text != NULL && strcmp(text, "sanitize") == 0)
        *out = XFCC_SANITIZE;
    else if (text != NULL && strcmp(text, "sanitize_set") == 0)
        *out = XFCC_SANITIZE_SET;
    else if (text != NULL && strcmp(text, "forward_only") == 0)
        *out = XFCC_FORWARD_ONLY;
    else if (text != NULL && strcmp(text, "append_forward") == 0)
        *out = XFCC_APPEND_FORWARD;
    else
        return err_set(err, DUET_ERR_INPUT,
                       "\"%s\" is not a client certificate header mode; expected sanitize, "
                       "forward_only, append_forward or sanitize_set",
                       text != NULL ? text : "");
    return 0;
}

/* True when the byte goes out as %XX: outside visible ASCII (space aside), or '%' itself. */
static bool
needs_pct(unsigned char c)
{
    return c == '%' || c < 0x20 || c > 0x7E;
}

/*
 * Append ";key=value" (no ';' before the first pair), escaped as xfcc.h says:
 * bytes outside visible ASCII and '%' as %XX, then the value in double quotes,
 * with '"' and '\' backslash-escaped, when it holds ',', ';', '=', '"', '\' or
 * a space (or always, with `quote`).  Nothing else reaches the header.
 */
static void
put_kv(struct bbuf *b, bool *first, const char *key, const char *value, bool quote)
{
    static const char hex[] = "0123456789ABCDEF";
    const unsigned char *v = (const unsigned char *)value;

    if (!*first)
        bbuf_put(b, ";", 1);
    *first = false;
    bbuf_str(b, key);
    bbuf_put(b, "=", 1);
    for (const unsigned char *p = v; *p && !quote; p++)
        quote = strchr(",;=\"\\ ", *p) != NULL;
    if (quote)
        bbuf_put(b, "\"", 1);
    for (const unsigned char *p = v; *p; p++) {
        if (needs_pct(*p)) {
            char pct[3] = {'%', hex[*p >> 4], hex[*p & 0xF]};
            bbuf_put(b, pct, 3);
            continue;
        }
        if (*p == '"' || *p == '\\')
            bbuf_put(b, "\\", 1);
        bbuf_put(b, p, 1);
    }
    if (quote)
        bbuf_put(b, "\"", 1);
}

/* One XFCC element; see xfcc.h. */
char *
xfcc_element(const struct duet_identity *id)
{
    static const char hexd[] = "0123456789abcdef";
    uint8_t md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    char hash[2 * EVP_MAX_MD_SIZE + 1];
    struct bbuf b = {0};
    bool first = true;

    if (id->cert == NULL || !X509_digest(id->cert, x509u_sha256(), md, &mdlen))
        return NULL;
    for (unsigned int i = 0; i < mdlen; i++) {
        hash[2 * i] = hexd[md[i] >> 4];
        hash[2 * i + 1] = hexd[md[i] & 0xF];
    }
    hash[2 * mdlen] = '\0';
    put_kv(&b, &first, "Hash", hash, false);
    put_kv(&b, &first, "Subject", id->subject != NULL ? id->subject : "", true);
    for (size_t i = 0; i < id->nsans; i++) {
        if (id->sans[i].type == DUET_SAN_URI)
            put_kv(&b, &first, "URI", id->sans[i].value, false);
    }
    for (size_t i = 0; i < id->nsans; i++) {
        if (id->sans[i].type == DUET_SAN_DNS)
            put_kv(&b, &first, "DNS", id->sans[i].value, false);
    }
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    return (char *)b.p;
}
