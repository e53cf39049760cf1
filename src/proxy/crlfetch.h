/* SPDX-License-Identifier: Apache-2.0 */
/*
 * crlfetch.h - the fetcher of CRLs by URL for `duet proxy` and `duet tunnel`
 * (--crl-url, --crl-from-cdp), which keeps the cache directory fresh; what
 * it fetches, where it keeps it and when are crlplan.h's.
 *
 * A fetched CRL lives in the cache directory under a name made from its URL,
 * and the configuration lists that file among the listener's CRLs, so it is
 * loaded, checked and swapped in exactly like a --crl file: the file watcher
 * of reload.c notices the new file and the reload keeps open connections
 * (retiring those whose certificate is now revoked).  The fetcher only ever
 * renames a CRL into place after checking it (structure, signature by a CA
 * of the listener, times, newer than the one it replaces).
 *
 * The same fetcher keeps the OCSP response of each listener with
 * --ocsp-staple in the cache directory (staple.h): asked for with a GET,
 * checked by staple_check(), renamed into place when it may be stapled and
 * removed when the responder says revoked or unknown.  A staple that cannot
 * be had never stops the start.
 */
#ifndef DUET_PROXY_CRLFETCH_H
#define DUET_PROXY_CRLFETCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/err.h"
#include "proxy/config.h"
#include "proxy/crlplan.h"

struct crlfetch;

/*
 * Fetch every CRL URL of cfg now (on an event loop of its own, before any
 * worker runs), then keep refreshing them on a thread of their own.  Fails,
 * naming the URL and what happened, when a CRL can be had neither from its
 * URL nor from the cache.  *out is NULL when cfg has no CRL URL and no
 * --ocsp-staple.
 */
int crlfetch_start(const struct proxy_cfg *cfg, struct crlfetch **out,
                   struct duet_err *err) MUST_CHECK;

/*
 * What the fetcher knows of one URL, for /readyz: a copy taken under the
 * fetcher's lock (crlfetch_status), so the admin listener never reads what
 * the fetcher's thread is writing.
 */
struct crlfetch_status {
    bool ocsp;              /* a listener's staple (listener names it), not a CRL */
    char url[512];
    char file[512];         /* the cache file */
    char listener[128];     /* ocsp: the listener that staples it */
    bool have;              /* a checked copy is in the cache file */
    int64_t this_update;    /* of that copy */
    int64_t next_update;
    int failures;           /* fetches that failed in a row (0: the last one worked) */
    int64_t last_ok;        /* Unix time of the last fetch that worked; 0: none since start */
    int64_t last_fail;      /* of the last one that failed; 0: none since start */
    char code[32];          /* the last failure's code (a metrics reason) */
    char error[1200];       /* and its sentence */
};

/*
 * Copy the status of at most max URLs into out; returns how many the fetcher
 * has (which may be more than max).  f may be NULL (nothing fetched by URL).
 */
size_t crlfetch_status(struct crlfetch *f, struct crlfetch_status *out, size_t max);

/*
 * Stop the fetcher's thread (a fetch in flight is abandoned; its temporary
 * file is truncated by the next run) and free the fetcher, before the
 * process exits: OpenSSL's exit-time cleanup must not run under a fetch.
 * NULL is fine.
 */
void crlfetch_stop(struct crlfetch *f);

#endif
