/* SPDX-License-Identifier: Apache-2.0 */
/*
 * store_url.c - PostgreSQL connection strings as duet handles them: which
 * text names a PostgreSQL inventory, the URL with its password masked (for
 * every message) or removed (for ca.yaml), the password itself (to scrub it
 * from a server's words), and the check of an inventory's schema version.
 * No libpq here: these are unit-tested without a server.
 */
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

/*
 * The parts of a postgres:// URL as libpq reads them (fe-connect.c), which
 * decides where a password sits: the user info runs from after "://" to the
 * first '@' before any '/' (a '?' or '#' inside a password stays in it), its
 * password after the first ':'; the query starts at the first '?' after the
 * user info and is split on '&' only (libpq has no fragment: a '#' is part of
 * a value), its keys percent-decoded.
 */
struct url_parts {
    size_t at;    /* the '@' ending the user info, or 0 */
    size_t colon; /* the ':' before the password in the user info, or 0 */
    size_t query; /* the '?' starting the query, or the URL's length */
};

static bool
url_parts(const char *url, struct url_parts *u)
{
    const char *scheme_end = strstr(url, "://");
    size_t start, i;

    memset(u, 0, sizeof(*u));
    if (scheme_end == NULL)
        return false;
    start = (size_t)(scheme_end - url) + 3;
    for (i = start; url[i] != '\0' && url[i] != '@' && url[i] != '/'; i++)
        ;
    if (url[i] == '@') {
        u->at = i;
        for (size_t k = start; k < i; k++) {
            if (url[k] == ':') {
                u->colon = k;
                break;
            }
        }
    }
    i = u->at != 0 ? u->at : start;
    while (url[i] != '\0' && url[i] != '?')
        i++;
    u->query = i;
    return true;
}

static int
hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)(c | 0x20);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Whether the query key p[0..klen) percent-decodes to name (libpq decodes keys). */
static bool
key_is(const char *p, size_t klen, const char *name)
{
    size_t k = 0;

    for (size_t i = 0; i < klen; i++, k++) {
        char c = p[i];
        if (c == '%' && i + 2 < klen && hexval(p[i + 1]) >= 0 && hexval(p[i + 2]) >= 0) {
            c = (char)(hexval(p[i + 1]) * 16 + hexval(p[i + 2]));
            i += 2;
        }
        if (name[k] == '\0' || name[k] != c)
            return false;
    }
    return name[k] == '\0';
}

/* A copy of url with its passwords (password=, sslpassword=) masked or removed; see store.h. */
char *
store_url_redact(const char *url, const char *mask)
{
    struct url_parts u;
    size_t len = strlen(url), mlen;
    const char *p;
    bool first = true;
    char *out, *o;

    if (!url_parts(url, &u))
        return strdup(url);
    if (mask == NULL)
        mask = "";
    mlen = strlen(mask);
    /* Every masked part is at least one byte of the URL: at most len + 1 masks. */
    out = malloc(len + 2 + mlen * (len + 1));
    if (out == NULL)
        return NULL;
    o = out;
    if (u.colon != 0) {
        memcpy(o, url, u.colon);
        o += u.colon;
        if (mlen > 0) {
            *o++ = ':';
            o = stpcpy(o, mask);
        }
        memcpy(o, url + u.at, u.query - u.at);
        o += u.query - u.at;
    } else {
        memcpy(o, url, u.query);
        o += u.query;
    }
    *o = '\0';
    if (url[u.query] == '\0')
        return out;
    for (p = url + u.query + 1; *p != '\0';) {
        size_t n = strcspn(p, "&");
        size_t klen = strcspn(p, "=&");
        bool is_pw = p[klen] == '=' &&
                     (key_is(p, klen, "password") || key_is(p, klen, "sslpassword"));

        if (!(is_pw && mlen == 0)) {
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
    *o = '\0';
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
    struct url_parts u;
    const char *s = NULL;
    size_t n = 0;
    char *out;
    size_t o = 0;

    if (url_parts(url, &u)) {
        if (u.colon != 0) {
            s = url + u.colon + 1;
            n = u.at - u.colon - 1;
        } else if (url[u.query] != '\0') {
            /* libpq takes the last of a repeated key. */
            for (const char *p = url + u.query + 1; *p != '\0';) {
                size_t plen = strcspn(p, "&"), klen = strcspn(p, "=&");
                if (p[klen] == '=' && key_is(p, klen, "password")) {
                    s = p + klen + 1;
                    n = plen - klen - 1;
                }
                p += plen;
                if (*p == '&')
                    p++;
            }
        }
    }
    if (s == NULL || n == 0 || (out = malloc(n + 1)) == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
            out[o++] = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
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
