/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ocspcache.c - the table of signed OCSP answers `duet ca serve` reuses.
 *
 * A fixed array of slots, allocated once; a key may live in one of two
 * slots chosen by two halves of its 64-bit FNV-1a hash, and a new answer
 * takes the emptier or older of the two.  So the number of answers is
 * bounded, every operation is O(1), and a flood of distinct keys (each of
 * which costs its sender a signature's wait anyway) only replaces answers.
 * Keys and answers are bounded in size too, so the memory held is at most
 * entries x (CA_OCSP_CACHE_MAX_KEY + CA_OCSP_CACHE_MAX_ANSWER).
 *
 * Freshness is the caller's contract (docs/ca-server.md): answers belong to
 * an epoch - the inventory's generation and the signer's serial - and a new
 * epoch forgets them all; an answer is never served max_age seconds or more
 * after its thisUpdate, nor at or after its nextUpdate.
 */
#include "ca/ocspcache.h"

#include <stdlib.h>
#include <string.h>

struct slot {
    uint64_t hash;
    uint8_t *key; /* NULL: empty */
    size_t klen;
    uint8_t *der;
    size_t len;
    struct ca_ocsp_cache_meta meta;
};

/* A serial's status, one slot per hash (a new serial replaces the old one). */
struct status_slot {
    bool used;
    char serial[CA_OCSP_CACHE_MAX_SERIAL];
    struct ca_ocsp_cache_status st;
};

struct ca_ocsp_cache {
    struct slot *slots;
    size_t nslots;
    struct status_slot *status; /* nslots of them */
    size_t nstatus;             /* used now */
    int64_t max_age;
    bool have_epoch;
    uint64_t generation;
    char *signer_serial;
    /* A batch open (ca_ocsp_cache_batch_open), and its generation once read. */
    bool batch, batch_have;
    uint64_t batch_gen;
    struct ca_ocsp_cache_stats st;
};

/* 64-bit FNV-1a. */
static uint64_t
fnv1a(const uint8_t *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ULL;

    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

static void
slot_clear(struct slot *s)
{
    free(s->key);
    free(s->der);
    memset(s, 0, sizeof(*s));
}

/* A new cache; see ocspcache.h. */
struct ca_ocsp_cache *
ca_ocsp_cache_new(size_t entries, int64_t max_age)
{
    struct ca_ocsp_cache *c = calloc(1, sizeof(*c));

    if (c == NULL)
        return NULL;
    c->nslots = entries > 0 ? entries : CA_OCSP_CACHE_ENTRIES;
    c->max_age = max_age > 0 ? max_age : CA_OCSP_CACHE_AGE;
    if ((c->slots = calloc(c->nslots, sizeof(*c->slots))) == NULL ||
        (c->status = calloc(c->nslots, sizeof(*c->status))) == NULL) {
        free(c->slots);
        free(c);
        return NULL;
    }
    return c;
}

/* Forget every answer. */
static void
cache_flush(struct ca_ocsp_cache *c)
{
    if (c->st.entries > 0)
        c->st.flushes++;
    for (size_t i = 0; i < c->nslots && c->st.entries > 0; i++) {
        if (c->slots[i].key != NULL) {
            slot_clear(&c->slots[i]);
            c->st.entries--;
        }
    }
    for (size_t i = 0; i < c->nslots && c->nstatus > 0; i++) {
        if (c->status[i].used) {
            c->status[i].used = false;
            c->nstatus--;
        }
    }
}

/* Free a cache; NULL is fine. */
void
ca_ocsp_cache_free(struct ca_ocsp_cache *c)
{
    if (c == NULL)
        return;
    cache_flush(c);
    free(c->slots);
    free(c->status);
    free(c->signer_serial);
    free(c);
}

/* Set the epoch, forgetting everything on a change; see ocspcache.h. */
void
ca_ocsp_cache_epoch(struct ca_ocsp_cache *c, uint64_t generation, const char *signer_serial)
{
    if (c->have_epoch && c->generation == generation && c->signer_serial != NULL &&
        strcmp(c->signer_serial, signer_serial) == 0)
        return;
    cache_flush(c);
    free(c->signer_serial);
    c->signer_serial = strdup(signer_serial);
    c->generation = generation;
    /* Without the serial kept (no memory), the next call flushes again: never a stale hit. */
    c->have_epoch = c->signer_serial != NULL;
}

/* The two slots a hash may live in. */
static void
slots_of(const struct ca_ocsp_cache *c, uint64_t h, size_t *a, size_t *b)
{
    *a = (size_t)(h % c->nslots);
    *b = (size_t)((h >> 32 ^ h * 0x9e3779b97f4a7c15ULL) % c->nslots);
}

/* Whether slot s holds key. */
static bool
slot_holds(const struct slot *s, uint64_t h, const uint8_t *key, size_t klen)
{
    return s->key != NULL && s->hash == h && s->klen == klen && memcmp(s->key, key, klen) == 0;
}

/* Whether an answer may still be served at now. */
static bool
fresh(const struct ca_ocsp_cache *c, const struct ca_ocsp_cache_meta *m, int64_t now)
{
    return now >= m->this_update && now - m->this_update < c->max_age && now < m->next_update;
}

/* Look an answer up; see ocspcache.h. */
const uint8_t *
ca_ocsp_cache_get(struct ca_ocsp_cache *c, const uint8_t *key, size_t klen, int64_t now,
                  size_t *len, struct ca_ocsp_cache_meta *meta)
{
    uint64_t h = fnv1a(key, klen);
    size_t i[2];

    *len = 0;
    if (!c->have_epoch || klen == 0 || klen > CA_OCSP_CACHE_MAX_KEY) {
        c->st.misses++;
        return NULL;
    }
    slots_of(c, h, &i[0], &i[1]);
    for (int k = 0; k < 2; k++) {
        struct slot *s = &c->slots[i[k]];
        if (!slot_holds(s, h, key, klen))
            continue;
        if (!fresh(c, &s->meta, now)) {
            slot_clear(s);
            c->st.entries--;
            break;
        }
        c->st.hits++;
        *len = s->len;
        *meta = s->meta;
        return s->der;
    }
    c->st.misses++;
    return NULL;
}

/* Keep an answer; see ocspcache.h. */
bool
ca_ocsp_cache_put(struct ca_ocsp_cache *c, const uint8_t *key, size_t klen, const uint8_t *der,
                  size_t len, const struct ca_ocsp_cache_meta *meta)
{
    uint64_t h = fnv1a(key, klen);
    struct slot *s;
    uint8_t *k = NULL, *d = NULL;
    size_t i[2];

    if (!c->have_epoch || klen == 0 || klen > CA_OCSP_CACHE_MAX_KEY || len == 0 ||
        len > CA_OCSP_CACHE_MAX_ANSWER)
        return false;
    slots_of(c, h, &i[0], &i[1]);
    /* The slot holding this key, else an empty one, else the one with the older answer. */
    if (slot_holds(&c->slots[i[0]], h, key, klen))
        s = &c->slots[i[0]];
    else if (slot_holds(&c->slots[i[1]], h, key, klen))
        s = &c->slots[i[1]];
    else if (c->slots[i[0]].key == NULL)
        s = &c->slots[i[0]];
    else if (c->slots[i[1]].key == NULL)
        s = &c->slots[i[1]];
    else if (c->slots[i[1]].meta.this_update < c->slots[i[0]].meta.this_update)
        s = &c->slots[i[1]];
    else
        s = &c->slots[i[0]];
    if ((k = malloc(klen)) == NULL || (d = malloc(len)) == NULL) {
        free(k);
        return false;
    }
    if (s->key != NULL) {
        slot_clear(s);
        c->st.entries--;
    }
    memcpy(k, key, klen);
    memcpy(d, der, len);
    s->hash = h;
    s->key = k;
    s->klen = klen;
    s->der = d;
    s->len = len;
    s->meta = *meta;
    c->st.entries++;
    return true;
}

/* A serial's status kept in this epoch; see ocspcache.h. */
bool
ca_ocsp_cache_status_get(const struct ca_ocsp_cache *c, const char *serial,
                         struct ca_ocsp_cache_status *st)
{
    size_t n = strlen(serial);
    const struct status_slot *s;

    if (!c->have_epoch || n >= CA_OCSP_CACHE_MAX_SERIAL)
        return false;
    s = &c->status[fnv1a((const uint8_t *)serial, n) % c->nslots];
    if (!s->used || strcmp(s->serial, serial) != 0)
        return false;
    *st = s->st;
    return true;
}

/* Keep a serial's status for this epoch; see ocspcache.h. */
void
ca_ocsp_cache_status_put(struct ca_ocsp_cache *c, const char *serial,
                         const struct ca_ocsp_cache_status *st)
{
    size_t n = strlen(serial);
    struct status_slot *s;

    if (!c->have_epoch || n >= CA_OCSP_CACHE_MAX_SERIAL)
        return;
    s = &c->status[fnv1a((const uint8_t *)serial, n) % c->nslots];
    if (!s->used)
        c->nstatus++;
    memcpy(s->serial, serial, n + 1);
    s->st = *st;
    s->used = true;
}

/* Open a batch; see ocspcache.h. */
void
ca_ocsp_cache_batch_open(struct ca_ocsp_cache *c)
{
    c->batch = true;
    c->batch_have = false;
}

/* Close the batch: the next lookup reads the generation again. */
void
ca_ocsp_cache_batch_close(struct ca_ocsp_cache *c)
{
    c->batch = false;
    c->batch_have = false;
}

/* The generation read in the open batch; false: none yet, or no batch. */
bool
ca_ocsp_cache_batch_generation(const struct ca_ocsp_cache *c, uint64_t *generation)
{
    if (!c->batch || !c->batch_have)
        return false;
    *generation = c->batch_gen;
    return true;
}

/* Keep the generation read for the rest of the open batch (none open: nothing). */
void
ca_ocsp_cache_batch_set(struct ca_ocsp_cache *c, uint64_t generation)
{
    if (!c->batch)
        return;
    c->batch_gen = generation;
    c->batch_have = true;
}

/* The counts; see ocspcache.h. */
void
ca_ocsp_cache_stats(const struct ca_ocsp_cache *c, struct ca_ocsp_cache_stats *st)
{
    *st = c->st;
}

/* The longest reuse; see ocspcache.h. */
int64_t
ca_ocsp_cache_max_age(const struct ca_ocsp_cache *c)
{
    return c->max_age;
}
