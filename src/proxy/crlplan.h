/* SPDX-License-Identifier: Apache-2.0 */
/*
 * crlplan.h - what CRLs by URL (--crl-url, --crl-from-cdp) fetch, where they
 * keep them and when: the http:// URL parser, the cache file names, the
 * refresh and retry schedules, and the listener's list of URLs.  No sockets:
 * the fetcher is crlfetch.c; the configuration (config.c) uses these to put
 * the cache files among a listener's CRL files.
 */
#ifndef DUET_PROXY_CRLPLAN_H
#define DUET_PROXY_CRLPLAN_H

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
int crlplan_url_parse(const char *text, struct crl_url *out, struct duet_err *err) MUST_CHECK;

/*
 * The cache file of `url` in `dir`: "HOST-HASH.crl", HOST the URL's host
 * with anything but letters, digits, '.' and '-' made '_' (at most 64
 * characters), HASH the first 16 hex digits of the URL's SHA-256, so the
 * same URL finds the same file after a restart and different URLs never
 * share one.  Returns false when buf is too small.
 */
bool crlplan_cache_name(const char *dir, const char *url, char *buf, size_t len);

/*
 * The default cache directory: $CACHE_DIRECTORY (systemd's CacheDirectory=)
 * when set, else /var/cache/duet/crl for root, else
 * $XDG_CACHE_HOME/duet/crl or $HOME/.cache/duet/crl.
 */
void crlplan_default_dir(char *buf, size_t len);

/*
 * Milliseconds from `now_ms` until the next fetch of a CRL valid from
 * this_update to next_update (seconds): at 2/3 of its validity, moved by up
 * to +/- 1/10 of the validity (u in [0, 1) picks where), never later than
 * cap_ms (then cap_ms minus up to a tenth of it, so proxies started together
 * do not fetch together), and never sooner than 1000 ms.
 */
int64_t crlplan_refresh_delay_ms(int64_t now_ms, int64_t this_update, int64_t next_update,
                                 int64_t cap_ms, double u);

/*
 * Milliseconds until the next attempt after `failures` (>= 1) failed fetches
 * in a row: 1 s doubled per failure up to 5 min, never above cap_ms, with
 * +/- 20% jitter (u in [0, 1)), never under 500 ms.
 */
int64_t crlplan_retry_delay_ms(int failures, int64_t cap_ms, double u);

/*
 * The URLs a listener fetches: its --crl-url list, then, with
 * --crl-from-cdp, the http:// CRL distribution points of the certificates of
 * its --cacert file and of its own --cert chain (duplicates removed, other
 * schemes skipped).  With --crl-from-cdp, readable files that name no
 * http:// distribution point are an error (the operator asked for
 * revocation and would get none); an unreadable file is left to the TLS
 * layer, which names it.  *urls is the caller's (free each and the array).
 */
int crlplan_listener_urls(const struct listener_cfg *l, char ***urls, size_t *n,
                          struct duet_err *err) MUST_CHECK;

/*
 * --check: print what would be fetched, one line per URL, with its cache
 * file and whether a cached copy exists; the cache files that do not exist
 * yet are taken out of the listeners' CRL lists, so that checking the rest of
 * the configuration does not fail on them.
 */
void crlplan_check_report(struct proxy_cfg *cfg, FILE *out);

#endif
