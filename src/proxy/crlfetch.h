/* SPDX-License-Identifier: Apache-2.0 */
/*
 * crlfetch.h - CRLs by URL for `duet proxy` and `duet tunnel` (--crl-url,
 * --crl-from-cdp): where each URL's CRL is cached, when it is fetched again,
 * and the fetcher that keeps the cache fresh.
 *
 * A fetched CRL lives in the cache directory under a name made from its URL,
 * and the configuration lists that file among the listener's CRLs, so it is
 * loaded, checked and swapped in exactly like a --crl file: the file watcher
 * of reload.c notices the new file and the reload keeps open connections
 * (retiring those whose certificate is now revoked).  The fetcher only ever
 * renames a CRL into place after checking it (structure, signature by a CA
 * of the listener, times, newer than the one it replaces).
 */
#ifndef DUET_PROXY_CRLFETCH_H
#define DUET_PROXY_CRLFETCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "lib/err.h"
#include "proxy/config.h"

/* A parsed http:// URL: host (no brackets), port, path with its query ("/" at least). */
struct crl_url {
    char host[256];
    int port;
    char path[1024];
};

/*
 * Parse `text` as http://HOST[:PORT][/PATH]: HOST a DNS name, an IPv4
 * address or a bracketed IPv6 address; no user information, no fragment,
 * visible ASCII only.  https:// is refused with the reason (a CRL is signed;
 * duet fetches it over plain HTTP).  Errors name the URL.
 */
int crlfetch_url_parse(const char *text, struct crl_url *out, struct duet_err *err) MUST_CHECK;

/*
 * The cache file of `url` in `dir`: "HOST-HASH.crl", HOST the URL's host
 * with anything but letters, digits, '.' and '-' made '_' (at most 64
 * characters), HASH the first 16 hex digits of the URL's SHA-256, so the
 * same URL finds the same file after a restart and different URLs never
 * share one.  Returns false when buf is too small.
 */
bool crlfetch_cache_name(const char *dir, const char *url, char *buf, size_t len);

/*
 * The default cache directory: $CACHE_DIRECTORY (systemd's CacheDirectory=)
 * when set, else /var/cache/duet/crl for root, else
 * $XDG_CACHE_HOME/duet/crl or $HOME/.cache/duet/crl.
 */
void crlfetch_default_dir(char *buf, size_t len);

/*
 * Milliseconds from `now_ms` until the next fetch of a CRL valid from
 * this_update to next_update (seconds): at 2/3 of its validity, moved by up
 * to +/- 1/10 of the validity (u in [0, 1) picks where), never later than
 * cap_ms (then cap_ms minus up to a tenth of it, so proxies started together
 * do not fetch together), and never sooner than 1000 ms.
 */
int64_t crlfetch_refresh_delay_ms(int64_t now_ms, int64_t this_update, int64_t next_update,
                                  int64_t cap_ms, double u);

/*
 * Milliseconds until the next attempt after `failures` (>= 1) failed fetches
 * in a row: 1 s doubled per failure up to 5 min, never above cap_ms, with
 * +/- 20% jitter (u in [0, 1)), never under 500 ms.
 */
int64_t crlfetch_retry_delay_ms(int failures, int64_t cap_ms, double u);

/*
 * The URLs a listener fetches: its --crl-url list, then, with
 * --crl-from-cdp, the http:// CRL distribution points of the certificates of
 * its --cacert file and of its own --cert chain (duplicates removed, other
 * schemes skipped).  *urls is the caller's (free each and the array).
 */
int crlfetch_listener_urls(const struct listener_cfg *l, char ***urls, size_t *n,
                           struct duet_err *err) MUST_CHECK;

/*
 * --check: print what would be fetched, one line per URL, with its cache
 * file and whether a cached copy exists; the cache files that do not exist
 * yet are taken out of the listeners' CRL lists, so that checking the rest of
 * the configuration does not fail on them.
 */
void crlfetch_check_report(struct proxy_cfg *cfg, FILE *out);

struct crlfetch;

/*
 * Fetch every CRL URL of cfg now (on an event loop of its own, before any
 * worker runs), then keep refreshing them on a thread of their own.  Fails,
 * naming the URL and what happened, when a CRL can be had neither from its
 * URL nor from the cache.  *out is NULL when cfg has no CRL URL.
 */
int crlfetch_start(const struct proxy_cfg *cfg, struct crlfetch **out,
                   struct duet_err *err) MUST_CHECK;

#endif
