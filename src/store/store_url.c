/* SPDX-License-Identifier: Apache-2.0 */
/*
 * store_url.c - PostgreSQL connection strings as duet handles them: which
 * text names a PostgreSQL inventory, the URL with its password masked (for
 * every message) or removed (for ca.yaml), the password itself (to scrub it
 * from a server's words), and the check of an inventory's schema version.
 * No libpq here: these are unit-tested without a server.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store_impl.h"

/* Whether text is a PostgreSQL URL (postgres:// or postgresql://); see store.h. */
bool
store_is_postgres_url(const char *text)
{
    return text != NULL &&
           (strncmp(text, "postgres://", 11) == 0 || strncmp(text, "postgresql://", 13) == 0);
}

/* Where the authority of a URL ends (the first '/', '?' or '#' after the scheme). */
static size_t
authority_end(const char *url, size_t start)
{
    size_t i = start;

    while (url[i] != '\0' && url[i] != '/' && url[i] != '?' && url[i] != '#')
        i++;
    return i;
}

/* A copy of url with its passwords (password=, sslpassword=) masked or removed; see store.h. */
char *
store_url_redact(const char *url, const char *mask)
{
    const char *scheme_end = strstr(url, "://");
    size_t len = strlen(url);
    size_t start, aend, at = 0, colon = 0;
    char *out, *o;
    const char *q;

    if (scheme_end == NULL)
        return strdup(url);
    start = (size_t)(scheme_end - url) + 3;
    aend = authority_end(url, start);
    /* userinfo ends at the last '@' of the authority; its password after the first ':'. */
    for (size_t i = start; i < aend; i++) {
        if (url[i] == '@')
            at = i;
    }
    if (at != 0) {
        for (size_t i = start; i < at; i++) {
            if (url[i] == ':') {
                colon = i;
                break;
            }
        }
    }
    if (mask == NULL)
        mask = "";
    /* Room for the URL and a mask in place of every part. */
    out = malloc(len + 4 * (strlen(mask) + 2) + 1);
    if (out == NULL)
        return NULL;
    o = out;
    if (colon != 0) {
        memcpy(o, url, colon);
        o += colon;
        if (*mask != '\0') {
            *o++ = ':';
            o = stpcpy(o, mask);
        }
        memcpy(o, url + at, aend - at);
        o += aend - at;
    } else {
        memcpy(o, url, aend);
        o += aend;
    }
    /* The path as is, then each query parameter; password=... masked or dropped. */
    q = strchr(url + aend, '?');
    if (q == NULL) {
        o = stpcpy(o, url + aend);
        return out;
    }
    memcpy(o, url + aend, (size_t)(q - (url + aend)));
    o += q - (url + aend);
    {
        const char *p = q + 1;
        bool first = true;

        while (*p != '\0' && *p != '#') {
            size_t n = strcspn(p, "&#");
            size_t klen = strcspn(p, "=&#");
            bool is_pw = p[klen] == '=' && ((klen == 8 && strncmp(p, "password", 8) == 0) ||
                                            (klen == 11 && strncmp(p, "sslpassword", 11) == 0));

            if (!(is_pw && *mask == '\0')) {
                *o++ = first ? '?' : '&';
                first = false;
                if (is_pw) {
                    memcpy(o, p, klen + 1);
                    o += klen + 1;
                    o = stpcpy(o, mask);
                } else {
                    memcpy(o, p, n);
                    o += n;
                }
            }
            p += n;
            if (*p == '&')
                p++;
        }
        o = stpcpy(o, p);
    }
    return out;
}

/* Whether the URL holds a password (in its userinfo or as ?password=); see store.h. */
bool
store_url_has_password(const char *url)
{
    char *bare = store_url_redact(url, NULL);
    bool has = bare == NULL || strcmp(bare, url) != 0;

    free(bare);
    return has;
}

/* The URL's password, percent-decoded; see store_impl.h. */
char *
store_url_password(const char *url)
{
    const char *scheme_end = strstr(url, "://");
    const char *s = NULL;
    size_t n = 0;
    char *out;
    size_t o = 0;

    if (scheme_end != NULL) {
        size_t start = (size_t)(scheme_end - url) + 3;
        size_t aend = authority_end(url, start);
        const char *at = NULL;
        for (size_t i = start; i < aend; i++) {
            if (url[i] == '@')
                at = url + i;
        }
        if (at != NULL) {
            const char *c = memchr(url + start, ':', (size_t)(at - (url + start)));
            if (c != NULL) {
                s = c + 1;
                n = (size_t)(at - s);
            }
        }
        if (s == NULL && (s = strstr(url, "password=")) != NULL) {
            s += 9;
            n = strcspn(s, "&#");
        }
    }
    if (s == NULL || n == 0 || (out = malloc(n + 1)) == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%' && i + 2 < n + 1 && isxdigit((unsigned char)s[i + 1]) &&
            isxdigit((unsigned char)s[i + 2])) {
            char hex[3] = {s[i + 1], s[i + 2], '\0'};
            out[o++] = (char)strtol(hex, NULL, 16);
            i += 2;
        } else {
            out[o++] = s[i];
        }
    }
    out[o] = '\0';
    return out;
}

/* Check an inventory's schema version against the one this duet writes; see store.h. */
int
store_pg_check_version(const char *where, long version, long known, struct duet_err *err)
{
    if (version < 1)
        return err_set(err, DUET_ERR_INPUT,
                       "%s: not a duet inventory (schema version %ld; expected 1 to %ld)", where,
                       version, known);
    if (version > known)
        return err_set(err, DUET_ERR_INPUT,
                       "%s: inventory schema version %ld is newer than this duet knows (%ld); it "
                       "was written by a newer duet: use that version (or newer), never an older "
                       "one",
                       where, version, known);
    return 0;
}
