/* SPDX-License-Identifier: Apache-2.0 */
/*
 * crlplan.c - the pure parts of CRLs by URL (see crlplan.h): parsing an
 * http:// URL strictly (it comes from a flag, a YAML file or a certificate's
 * CRL distribution point), naming its cache file from its SHA-256 so that a
 * restart finds it, the refresh time at 2/3 of a CRL's validity with jitter
 * and a cap, the retry back-off, and the URLs of a listener.
 */
#include "proxy/crlplan.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/x509v3.h>

#include "lib/load.h"

/* --- URLs, names, schedule (pure) --------------------------------------------- */

/* Parse an http:// URL; see crlplan.h. */
int
crlplan_url_parse(const char *text, struct crl_url *out, struct duet_err *err)
{
    const char *p, *hend, *path;
    size_t hlen;

    memset(out, 0, sizeof(*out));
    for (p = text; *p != '\0'; p++) {
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
            return err_set(err, DUET_ERR_INPUT,
                           "CRL URL \"%.200s\": only visible ASCII characters are allowed", text);
    }
    if (strlen(text) > 1000)
        return err_set(err, DUET_ERR_INPUT, "CRL URL \"%.200s...\": longer than 1000 characters",
                       text);
    if (strncasecmp(text, "https://", 8) == 0)
        return err_set(err, DUET_ERR_INPUT,
                       "CRL URL \"%s\": https:// is not supported; a CRL is signed by its CA, "
                       "so duet fetches it over http://",
                       text);
    if (strncasecmp(text, "http://", 7) != 0)
        return err_set(err, DUET_ERR_INPUT, "CRL URL \"%s\": expected http://HOST[:PORT]/PATH",
                       text);
    p = text + 7;
    path = p + strcspn(p, "/?#");
    if (memchr(p, '@', (size_t)(path - p)) != NULL)
        return err_set(err, DUET_ERR_INPUT,
                       "CRL URL \"%s\": user information (user@host) is not allowed", text);
    if (strchr(text, '#') != NULL)
        return err_set(err, DUET_ERR_INPUT, "CRL URL \"%s\": a fragment (#...) is not allowed",
                       text);
    if (*p == '[') {
        hend = memchr(p, ']', (size_t)(path - p));
        if (hend == NULL || hend == p + 1)
            return err_set(err, DUET_ERR_INPUT, "CRL URL \"%s\": an unterminated [IPv6] host",
                           text);
        hlen = (size_t)(hend - p - 1);
        if (hlen >= sizeof(out->host) || strspn(p + 1, "0123456789abcdefABCDEF:.") < hlen)
            return err_set(err, DUET_ERR_INPUT, "CRL URL \"%s\": a malformed [IPv6] host", text);
        memcpy(out->host, p + 1, hlen);
        hend++;
    } else {
        hend = p + strcspn(p, ":/?");
        if (hend > path)
            hend = path;
        hlen = (size_t)(hend - p);
        if (hlen == 0 || hlen >= sizeof(out->host))
            return err_set(err, DUET_ERR_INPUT, "CRL URL \"%s\": expected a host after http://",
                           text);
        for (const char *c = p; c < hend; c++) {
            if (!(((*c | 0x20) >= 'a' && (*c | 0x20) <= 'z') || (*c >= '0' && *c <= '9') ||
                  *c == '-' || *c == '.' || *c == '_'))
                return err_set(err, DUET_ERR_INPUT,
                               "CRL URL \"%s\": the host may only hold letters, digits, '-', "
                               "'.' and '_'",
                               text);
        }
        memcpy(out->host, p, hlen);
    }
    out->port = 80;
    if (*hend == ':') {
        char *end = NULL;
        long port = strtol(hend + 1, &end, 10);
        if (end == hend + 1 || end != path || port < 1 || port > 65535)
            return err_set(err, DUET_ERR_INPUT, "CRL URL \"%s\": expected a port from 1 to 65535",
                           text);
        out->port = (int)port;
    } else if (hend != path) {
        return err_set(err, DUET_ERR_INPUT, "CRL URL \"%s\": unexpected text after the host", text);
    }
    if (*path == '\0')
        path = "/";
    if (*path == '?')
        snprintf(out->path, sizeof(out->path), "/%s", path);
    else
        snprintf(out->path, sizeof(out->path), "%s", path);
    return 0;
}

/* The cache file of a URL; see crlplan.h. */
bool
crlplan_cache_name(const char *dir, const char *url, char *buf, size_t len)
{
    struct crl_url u;
    struct duet_err e;
    unsigned char md[32];
    unsigned int mdlen = 0;
    char host[65];
    size_t h = 0;
    int n;

    if (crlplan_url_parse(url, &u, &e) != 0)
        snprintf(u.host, sizeof(u.host), "url");
    for (const char *c = u.host; *c != '\0' && h < sizeof(host) - 1; c++) {
        bool ok = ((*c | 0x20) >= 'a' && (*c | 0x20) <= 'z') || (*c >= '0' && *c <= '9') ||
                  *c == '.' || *c == '-';
        host[h++] = ok ? *c : '_';
    }
    host[h] = '\0';
    if (EVP_Digest(url, strlen(url), md, &mdlen, EVP_sha256(), NULL) != 1)
        return false;
    n = snprintf(buf, len, "%s/%s-%02x%02x%02x%02x%02x%02x%02x%02x.crl", dir, host, md[0], md[1],
                 md[2], md[3], md[4], md[5], md[6], md[7]);
    return n > 0 && (size_t)n < len;
}

/* The default cache directory; see crlplan.h. */
void
crlplan_default_dir(char *buf, size_t len)
{
    const char *e = getenv("CACHE_DIRECTORY");

    if (e != NULL && *e != '\0') {
        /* systemd may list several, separated by ':'; the first is ours. */
        snprintf(buf, len, "%.*s/crl", (int)strcspn(e, ":"), e);
        return;
    }
    if (geteuid() == 0) {
        snprintf(buf, len, "/var/cache/duet/crl");
        return;
    }
    if ((e = getenv("XDG_CACHE_HOME")) != NULL && *e == '/') {
        snprintf(buf, len, "%s/duet/crl", e);
        return;
    }
    e = getenv("HOME");
    snprintf(buf, len, "%s/.cache/duet/crl", e != NULL && *e == '/' ? e : "/tmp");
}

/* When to fetch again; see crlplan.h. */
int64_t
crlplan_refresh_delay_ms(int64_t now_ms, int64_t this_update, int64_t next_update, int64_t cap_ms,
                         double u)
{
    int64_t validity_ms = (next_update - this_update) * 1000;
    int64_t delay;

    if (u < 0 || u >= 1)
        u = 0.5;
    if (validity_ms <= 0) {
        delay = cap_ms;
    } else {
        double at = (double)this_update * 1000.0 + (double)validity_ms * 2.0 / 3.0 +
                    (u * 2.0 - 1.0) * (double)validity_ms / 10.0;
        delay = (int64_t)(at - (double)now_ms);
    }
    if (delay > cap_ms)
        delay = cap_ms - (int64_t)(u * (double)cap_ms / 10.0);
    if (delay < 1000)
        delay = 1000;
    return delay;
}

/* When to try again after failures; see crlplan.h. */
int64_t
crlplan_retry_delay_ms(int failures, int64_t cap_ms, double u)
{
    int64_t base = 1000;
    int64_t d;

    if (u < 0 || u >= 1)
        u = 0.5;
    for (int i = 1; i < failures && base < 300000; i++)
        base *= 2;
    if (base > 300000)
        base = 300000;
    if (base > cap_ms)
        base = cap_ms;
    d = (int64_t)((double)base * (0.8 + 0.4 * u));
    return d < 500 ? 500 : d;
}

/* --- which URLs ----------------------------------------------------------------- */

static int
url_push(char ***v, size_t *n, const char *s, struct duet_err *err)
{
    char **nv;

    for (size_t i = 0; i < *n; i++) {
        if (strcmp((*v)[i], s) == 0)
            return 0;
    }
    if ((nv = realloc(*v, (*n + 1) * sizeof(char *))) == NULL)
        return err_nomem(err);
    *v = nv;
    if ((nv[*n] = strdup(s)) == NULL)
        return err_nomem(err);
    (*n)++;
    return 0;
}

/* The http:// fullName URIs of the CRL distribution points of each certificate of a file. */
static int
cdp_urls(const char *file, char ***v, size_t *n, bool *read, size_t *seen, struct duet_err *err)
{
    STACK_OF(X509) *certs = NULL;
    struct duet_err e;
    int rc = -1;

    /* An unreadable file is left to the TLS layer, which names it when it loads it. */
    if (load_certs_file(file, NULL, &certs, &e) != 0) {
        rc = 0;
        goto out;
    }
    *read = true;
    for (int i = 0; i < sk_X509_num(certs); i++) {
        STACK_OF(DIST_POINT) *dps =
            X509_get_ext_d2i(sk_X509_value(certs, i), NID_crl_distribution_points, NULL, NULL);
        for (int k = 0; dps != NULL && k < sk_DIST_POINT_num(dps); k++) {
            DIST_POINT *dp = sk_DIST_POINT_value(dps, k);
            if (dp->distpoint == NULL || dp->distpoint->type != 0 || dp->CRLissuer != NULL)
                continue; /* a relative name, or an indirect CRL: not ours to fetch */
            for (int j = 0; j < sk_GENERAL_NAME_num(dp->distpoint->name.fullname); j++) {
                GENERAL_NAME *g = sk_GENERAL_NAME_value(dp->distpoint->name.fullname, j);
                char url[1100];
                struct crl_url u;
                int len;
                if (g->type != GEN_URI)
                    continue;
                len = ASN1_STRING_length(g->d.uniformResourceIdentifier);
                if (len <= 0 || len >= (int)sizeof(url))
                    continue;
                memcpy(url, ASN1_STRING_get0_data(g->d.uniformResourceIdentifier), (size_t)len);
                url[len] = '\0';
                if (crlplan_url_parse(url, &u, &e) != 0)
                    continue; /* ldap://, https:// or malformed: skipped */
                (*seen)++;
                if (url_push(v, n, url, err) != 0) {
                    sk_DIST_POINT_pop_free(dps, DIST_POINT_free);
                    goto out;
                }
            }
        }
        sk_DIST_POINT_pop_free(dps, DIST_POINT_free);
    }
    rc = 0;
out:
    OSSL_STACK_OF_X509_free(certs);
    return rc;
}

/* A listener's URLs; see crlplan.h. */
int
crlplan_listener_urls(const struct listener_cfg *l, char ***urls, size_t *n, struct duet_err *err)
{
    *urls = NULL;
    *n = 0;
    for (size_t i = 0; i < l->ncrl_urls; i++) {
        if (url_push(urls, n, l->crl_urls[i], err) != 0)
            goto err;
    }
    if (l->crl_from_cdp) {
        bool read = false;
        size_t seen = 0;
        if (l->cacert != NULL && cdp_urls(l->cacert, urls, n, &read, &seen, err) != 0)
            goto err;
        if (l->cert != NULL && cdp_urls(l->cert, urls, n, &read, &seen, err) != 0)
            goto err;
        if (read && seen == 0) {
            err_set(err, DUET_ERR_INPUT,
                    "%s: --crl-from-cdp: no http:// CRL distribution point in the certificates "
                    "of %s%s%s; name the CRL with --crl-url",
                    l->name, l->cacert != NULL ? l->cacert : "", l->cert != NULL ? " or " : "",
                    l->cert != NULL ? l->cert : "");
            goto err;
        }
    }
    return 0;
err:
    for (size_t i = 0; i < *n; i++)
        free((*urls)[i]);
    free(*urls);
    *urls = NULL;
    *n = 0;
    return -1;
}

/* --check: what would be fetched; see crlplan.h. */
void
crlplan_check_report(struct proxy_cfg *cfg, FILE *out)
{
    for (size_t i = 0; i < cfg->nlisteners; i++) {
        struct listener_cfg *l = &cfg->listeners[i];
        size_t first = l->ncrls - l->ncrl_fetched;
        size_t keep = first;
        for (size_t k = 0; k < l->ncrl_fetched; k++) {
            const char *path = l->crls[first + k];
            bool cached = access(path, R_OK) == 0;
            fprintf(out, "%s: would fetch the CRL at %s into %s (%s)\n", l->name,
                    l->crl_fetch_urls[k], path,
                    cached ? "a cached copy exists" : "no cached copy yet");
            if (cached)
                l->crls[keep++] = l->crls[first + k];
            else
                free(l->crls[first + k]);
        }
        for (size_t k = 0; k < l->ncrl_fetched; k++)
            free(l->crl_fetch_urls[k]);
        free(l->crl_fetch_urls);
        l->crl_fetch_urls = NULL;
        l->ncrls = keep;
        l->ncrl_fetched = 0; /* what is left is checked like any CRL file */
    }
}
