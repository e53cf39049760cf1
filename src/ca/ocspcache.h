/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ocspcache.h - signed OCSP answers kept for reuse by `duet ca serve`, under
 * the rule of docs/ca-server.md: an answer is served again only while the
 * inventory and the signer are those it was made with, and for at most
 * max_age seconds after its thisUpdate.  The table does not decide what may
 * go in (ocsp.c does: one CertID, no nonce, a successful answer); it keeps
 * bytes under a key, bounded in number and size, and forgets them all when
 * its epoch changes.  One thread only.
 */
#ifndef DUET_CA_OCSPCACHE_H
#define DUET_CA_OCSPCACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/err.h"

/* Default number of answers kept. */
#define CA_OCSP_CACHE_ENTRIES 4096
/* Default longest reuse of an answer, in seconds after its thisUpdate. */
#define CA_OCSP_CACHE_AGE 60
/* Longest key kept (a CertID's DER); a longer one is never cached. */
#define CA_OCSP_CACHE_MAX_KEY 256
/* Longest answer kept; a longer one is never cached. */
#define CA_OCSP_CACHE_MAX_ANSWER 8192

struct ca_ocsp_cache;

/* What a cached answer said, kept with its bytes. */
struct ca_ocsp_cache_meta {
    int64_t this_update;
    int64_t next_update;
    size_t good, revoked, unknown;
};

/* Longest serial kept in the status table (colon hex of 20 octets and its NUL). */
#define CA_OCSP_CACHE_MAX_SERIAL 64

/* What the inventory said of a certificate of the issuing CA (status table). */
struct ca_ocsp_cache_status {
    bool revoked;
    int64_t revoked_at;
    int reason;
};

/* Counts since the cache was made, for /metrics. */
struct ca_ocsp_cache_stats {
    uint64_t hits;
    uint64_t misses;
    uint64_t flushes; /* times the epoch changed with answers kept */
    size_t entries;   /* answers kept now */
};

/*
 * A cache of at most `entries` answers (0: CA_OCSP_CACHE_ENTRIES), each
 * served for at most max_age seconds after its thisUpdate (0:
 * CA_OCSP_CACHE_AGE).  NULL when out of memory.
 */
struct ca_ocsp_cache *ca_ocsp_cache_new(size_t entries, int64_t max_age);
void ca_ocsp_cache_free(struct ca_ocsp_cache *c);

/*
 * Say in which epoch answers are looked up and kept from now on: the
 * inventory's generation (store_generation) and the signer (its serial).
 * When either differs from the last call, every answer is forgotten first.
 */
void ca_ocsp_cache_epoch(struct ca_ocsp_cache *c, uint64_t generation, const char *signer_serial);

/*
 * The answer kept under key (borrowed: valid until the next call on c), or
 * NULL: none, or its thisUpdate is in the future, max_age or more seconds
 * old, or its nextUpdate reached.  *meta is filled on a hit.
 */
const uint8_t *ca_ocsp_cache_get(struct ca_ocsp_cache *c, const uint8_t *key, size_t klen,
                                 int64_t now, size_t *len, struct ca_ocsp_cache_meta *meta);

/*
 * Keep a copy of an answer under key, replacing the one that held its slot.
 * False when nothing was kept: a key or answer over the limits above, or no
 * memory (the cache is an optimisation: the caller goes on).
 */
bool ca_ocsp_cache_put(struct ca_ocsp_cache *c, const uint8_t *key, size_t klen, const uint8_t *der,
                       size_t len, const struct ca_ocsp_cache_meta *meta);

/*
 * A batch: one inventory generation read for the answers of several requests.
 * Between ca_ocsp_cache_batch_open() and _close(), the first generation read
 * (ca_ocsp_cache_batch_set) is reused by every lookup (batch_generation true)
 * instead of asking the inventory again.  The caller opens a batch only for
 * requests all received before it opened: a read made inside the batch then
 * started after each of them arrived, so a revocation committed before any
 * of them arrived is seen by its answer.  Outside a batch, batch_generation
 * is false and batch_set does nothing.
 */
void ca_ocsp_cache_batch_open(struct ca_ocsp_cache *c);
void ca_ocsp_cache_batch_close(struct ca_ocsp_cache *c);
bool ca_ocsp_cache_batch_generation(const struct ca_ocsp_cache *c, uint64_t *generation);
void ca_ocsp_cache_batch_set(struct ca_ocsp_cache *c, uint64_t generation);

/*
 * The status table: what the inventory said of a serial (a row of the
 * issuing CA's, found), kept in the same epoch as the answers and forgotten
 * with them, so that an answer signed afresh (a nonce, several CertIDs)
 * needs no read of the row while the generation is unchanged.  A serial not
 * found is never kept (it may be issued the next moment, which does not move
 * the generation on PostgreSQL).  get: false when not kept or no epoch is
 * set; put: nothing kept for a serial over CA_OCSP_CACHE_MAX_SERIAL - 1.
 */
bool ca_ocsp_cache_status_get(const struct ca_ocsp_cache *c, const char *serial,
                              struct ca_ocsp_cache_status *st);
void ca_ocsp_cache_status_put(struct ca_ocsp_cache *c, const char *serial,
                              const struct ca_ocsp_cache_status *st);

/* The counts; see struct ca_ocsp_cache_stats. */
void ca_ocsp_cache_stats(const struct ca_ocsp_cache *c, struct ca_ocsp_cache_stats *st);

/* The longest reuse of an answer, in seconds. */
int64_t ca_ocsp_cache_max_age(const struct ca_ocsp_cache *c);

#endif
