/* SPDX-License-Identifier: Apache-2.0 */
/*
 * reqread.c - reading a request head; see reqread.h.
 *
 * The scanner is a byte-at-a-time state machine with no buffer of its own,
 * fed each chunk of the client's bytes just before http-parser is, so that a
 * head http-parser would tolerate but RFC 9112 does not (a space before the
 * colon, obsolete line folding, a bare LF, a control byte) is refused before
 * anything is decided on it.  It never looks at a byte twice: a head trickled
 * one byte per TLS record costs no more than one sent whole.
 */
#include "proxy/reqread.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --- the strict head scanner ------------------------------------------------------------------ */

enum {
    SC_START = 0, /* before the request line; empty lines are skipped (RFC 9112 2.2) */
    SC_START_LF,
    SC_METHOD,
    SC_TARGET_FIRST,
    SC_TARGET,
    SC_VERSION,
    SC_LINE_LF,
    SC_FIELD_FIRST,
    SC_NAME,
    SC_VALUE,
    SC_VALUE_LF,
    SC_END_LF,
    SC_DONE,
    SC_ERROR
};

/* RFC 9110 5.6.2: tchar. */
static bool
tchar(unsigned char c)
{
    static const char extra[] = "!#$%&'*+-.^_`|~";
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c != 0 && strchr(extra, c) != NULL);
}

bool
http_is_token(const char *s)
{
    if (s == NULL || *s == '\0')
        return false;
    for (; *s; s++) {
        if (!tchar((unsigned char)*s))
            return false;
    }
    return true;
}

void
http_scan_init(struct http_scan *s, size_t max_bytes)
{
    memset(s, 0, sizeof(*s));
    s->state = SC_START;
    s->max = max_bytes;
}

/* A byte in words for an error message. */
static void
byte_text(unsigned char c, char *buf, size_t len)
{
    if (c == '\r')
        snprintf(buf, len, "CR");
    else if (c == '\n')
        snprintf(buf, len, "LF");
    else if (c == ' ')
        snprintf(buf, len, "a space");
    else if (c == '\t')
        snprintf(buf, len, "a tab");
    else if (c > 0x20 && c < 0x7f)
        snprintf(buf, len, "'%c'", c);
    else
        snprintf(buf, len, "byte 0x%02x", c);
}

static int
scan_fail(struct http_scan *s, int code, int *status, struct duet_err *err, const char *what,
          unsigned char c)
{
    char b[16];

    byte_text(c, b, sizeof(b));
    s->state = SC_ERROR;
    *status = code;
    return err_set(err, DUET_ERR_INPUT, "malformed request head at byte %zu: %s, found %s",
                   s->bytes, what, b);
}

/* Feed the scanner; see http.h. */
int
http_scan_feed(struct http_scan *s, const char *p, size_t n, size_t *used, int *status,
               struct duet_err *err)
{
    static const char version[] = "HTTP/";

    *used = 0;
    *status = 0;
    if (s->state == SC_DONE)
        return 1;
    if (s->state == SC_ERROR) {
        *status = 400;
        return err_set(err, DUET_ERR_INPUT, "malformed request head");
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (++s->bytes > s->max) {
            s->state = SC_ERROR;
            *status = 431;
            return err_set(err, DUET_ERR_INPUT, "the request head is larger than %zu bytes",
                           s->max);
        }
        switch (s->state) {
        case SC_START:
            if (c == '\r')
                s->state = SC_START_LF;
            else if (tchar(c))
                s->state = SC_METHOD;
            else
                return scan_fail(s, 400, status, err, "expected a method (a token)", c);
            break;
        case SC_START_LF:
            if (c != '\n')
                return scan_fail(s, 400, status, err, "expected LF after CR", c);
            s->state = SC_START;
            break;
        case SC_METHOD:
            if (c == ' ')
                s->state = SC_TARGET_FIRST;
            else if (!tchar(c))
                return scan_fail(s, 400, status, err,
                                 "expected a method (a token) and one space", c);
            break;
        case SC_TARGET_FIRST:
        case SC_TARGET:
            if (c > 0x20 && c < 0x7f) {
                s->state = SC_TARGET;
            } else if (c == ' ' && s->state == SC_TARGET) {
                s->state = SC_VERSION;
                s->vpos = 0;
            } else {
                return scan_fail(s, 400, status, err,
                                 s->state == SC_TARGET_FIRST
                                     ? "expected a request target after one space"
                                     : "expected a request target, one space and HTTP/1.1",
                                 c);
            }
            break;
        case SC_VERSION:
            /* "HTTP/" DIGIT "." DIGIT CR */
            if (s->vpos < 5 ? c != (unsigned char)version[s->vpos]
                            : s->vpos == 6   ? c != '.'
                              : s->vpos == 8 ? c != '\r'
                                             : !(c >= '0' && c <= '9'))
                return scan_fail(s, 400, status, err, "expected HTTP/x.y and CRLF", c);
            if (s->vpos == 5)
                s->major = (unsigned char)(c - '0');
            if (s->vpos == 7)
                s->minor = (unsigned char)(c - '0');
            if (s->vpos == 8) {
                if (s->major != 1 || s->minor > 1) {
                    s->state = SC_ERROR;
                    *status = 505;
                    return err_set(err, DUET_ERR_INPUT,
                                   "HTTP/%u.%u is not supported; expected HTTP/1.1 or HTTP/1.0",
                                   s->major, s->minor);
                }
                s->state = SC_LINE_LF;
            }
            s->vpos++;
            break;
        case SC_LINE_LF:
        case SC_VALUE_LF:
            if (c != '\n')
                return scan_fail(s, 400, status, err, "expected LF after CR", c);
            s->state = SC_FIELD_FIRST;
            break;
        case SC_FIELD_FIRST:
            if (c == '\r')
                s->state = SC_END_LF;
            else if (tchar(c))
                s->state = SC_NAME;
            else if (c == ' ' || c == '\t')
                return scan_fail(s, 400, status, err,
                                 "a field line may not start with whitespace (obsolete line "
                                 "folding, RFC 9112 5.2)",
                                 c);
            else
                return scan_fail(s, 400, status, err, "expected a header name (a token)", c);
            break;
        case SC_NAME:
            if (c == ':')
                s->state = SC_VALUE;
            else if (!tchar(c))
                return scan_fail(s, 400, status, err,
                                 "expected a header name (a token) followed directly by ':'", c);
            break;
        case SC_VALUE:
            if (c == '\r')
                s->state = SC_VALUE_LF;
            else if (c != '\t' && (c < 0x20 || c == 0x7f))
                return scan_fail(s, 400, status, err,
                                 "expected visible characters, spaces or tabs in a header value",
                                 c);
            break;
        case SC_END_LF:
            if (c != '\n')
                return scan_fail(s, 400, status, err, "expected LF after CR", c);
            s->state = SC_DONE;
            *used = i + 1;
            return 1;
        default:
            return scan_fail(s, 400, status, err, "internal scanner state", c);
        }
    }
    *used = n;
    return 0;
}

/* --- the reader behind http-parser's callbacks ------------------------------------------------ */

void
http_reader_reset(struct http_reader *rd)
{
    for (size_t i = 0; i < rd->nhdrs; i++) {
        free(rd->hdrs[i].name);
        free(rd->hdrs[i].value);
    }
    rd->nhdrs = 0;
    free(rd->url);
    rd->url = NULL;
    rd->url_len = rd->url_cap = 0;
    rd->name_len = rd->name_cap = rd->value_len = rd->value_cap = 0;
    rd->last_was_value = false;
    rd->head_bytes = 0;
    rd->too_large = false;
    rd->nomem = false;
    http_scan_init(&rd->scan, rd->max_head);
}

void
http_reader_clear(struct http_reader *rd)
{
    http_reader_reset(rd);
    free(rd->hdrs);
    rd->hdrs = NULL;
    rd->hcap = 0;
}

static int
append(char **dst, size_t *len, size_t *cap, const char *at, size_t n)
{
    /*
     * http-parser hands a value over in as many pieces as the client sent
     * records: the buffer grows by doubling, so a head trickled a byte at a
     * time costs no more than one sent whole.
     */
    if (*dst == NULL || *len + n + 1 > *cap) {
        size_t c = *cap > 0 ? *cap : 32;
        char *nd;
        while (c < *len + n + 1)
            c *= 2;
        if ((nd = realloc(*dst, c)) == NULL)
            return -1;
        *dst = nd;
        *cap = c;
    }
    memcpy(*dst + *len, at, n);
    *len += n;
    (*dst)[*len] = '\0';
    return 0;
}

static bool
head_limit(struct http_reader *rd, size_t n)
{
    rd->head_bytes += n;
    if (rd->head_bytes > rd->max_head) {
        rd->too_large = true;
        return true;
    }
    return false;
}

int
http_reader_on_url(http_parser *p, const char *at, size_t n)
{
    struct http_reader *rd = p->data;

    if (head_limit(rd, n))
        return -1;
    if (append(&rd->url, &rd->url_len, &rd->url_cap, at, n) != 0) {
        rd->nomem = true;
        return -1;
    }
    return 0;
}

int
http_reader_on_header_field(http_parser *p, const char *at, size_t n)
{
    struct http_reader *rd = p->data;

    if (head_limit(rd, n))
        return -1;
    if (rd->nhdrs == 0 || rd->last_was_value) {
        if (rd->nhdrs == rd->hcap) {
            size_t cap = rd->hcap ? rd->hcap * 2 : 16;
            struct http_header *nh = realloc(rd->hdrs, cap * sizeof(*nh));
            if (nh == NULL) {
                rd->nomem = true;
                return -1;
            }
            rd->hdrs = nh;
            rd->hcap = cap;
        }
        rd->hdrs[rd->nhdrs].name = NULL;
        rd->hdrs[rd->nhdrs].value = NULL;
        rd->nhdrs++;
        rd->last_was_value = false;
        rd->name_len = rd->name_cap = rd->value_len = rd->value_cap = 0;
    }
    if (append(&rd->hdrs[rd->nhdrs - 1].name, &rd->name_len, &rd->name_cap, at, n) != 0) {
        rd->nomem = true;
        return -1;
    }
    return 0;
}

int
http_reader_on_header_value(http_parser *p, const char *at, size_t n)
{
    struct http_reader *rd = p->data;
    struct http_header *h;

    if (head_limit(rd, n) || rd->nhdrs == 0)
        return -1;
    h = &rd->hdrs[rd->nhdrs - 1];
    rd->last_was_value = true;
    /* An empty value is "" (it may come as a call with no bytes, or none at all). */
    if (append(&h->value, &rd->value_len, &rd->value_cap, at, n) != 0) {
        rd->nomem = true;
        return -1;
    }
    return 0;
}
