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
 * Stop the fetcher's thread (a fetch in flight is abandoned; its temporary
 * file is truncated by the next run) and free the fetcher, before the
 * process exits: OpenSSL's exit-time cleanup must not run under a fetch.
 * NULL is fine.
 */
void crlfetch_stop(struct crlfetch *f);

#endif
