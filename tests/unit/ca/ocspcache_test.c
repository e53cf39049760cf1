/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ocspcache_test.c - unit tests of the table of signed OCSP answers
 * (src/ca/ocspcache.c): a kept answer comes back byte for byte with what it
 * said; a new epoch (another inventory generation, another signer) forgets
 * every answer; an answer is never served max_age seconds after its
 * thisUpdate, at its nextUpdate, or before its thisUpdate (a clock set
 * back); keys and answers over the limits are never kept; and the number of
 * answers stays bounded however many distinct keys come.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ca/ocspcache.h"

#define T0 ((int64_t)1700000000)

static const struct ca_ocsp_cache_meta META = {
    .this_update = T0, .next_update = T0 + 3600, .good = 1};

/* A key of 8 bytes made from i. */
static void
key_of(uint32_t i, uint8_t k[8])
{
    for (int b = 0; b < 8; b++)
        k[b] = (uint8_t)(i >> (b % 4 * 8)) ^ (uint8_t)b;
}

/* What get returns, as a string ("" for a miss). */
static const char *
get_text(struct ca_ocsp_cache *c, const char *key, int64_t now)
{
    static char buf[64];
    struct ca_ocsp_cache_meta m;
    size_t len = 0;
    const uint8_t *d = ca_ocsp_cache_get(c, (const uint8_t *)key, strlen(key), now, &len, &m);

    if (d == NULL)
        return "";
    assert_true(len < sizeof(buf));
    memcpy(buf, d, len);
    buf[len] = '\0';
    return buf;
}

static void
put_text(struct ca_ocsp_cache *c, const char *key, const char *answer,
         const struct ca_ocsp_cache_meta *m)
{
    assert_true(ca_ocsp_cache_put(c, (const uint8_t *)key, strlen(key), (const uint8_t *)answer,
                                  strlen(answer), m));
}

/* Hit and miss; the bytes and what they said come back. */
static void
test_hit_and_miss(void **state)
{
    struct ca_ocsp_cache *c = ca_ocsp_cache_new(16, 60);
    struct ca_ocsp_cache_meta m = {0};
    struct ca_ocsp_cache_stats st;
    size_t len = 0;
    struct ca_ocsp_cache_meta revoked = META;

    (void)state;
    assert_non_null(c);
    assert_int_equal(ca_ocsp_cache_max_age(c), 60);
    /* before an epoch, nothing is kept */
    assert_false(ca_ocsp_cache_put(c, (const uint8_t *)"k", 1, (const uint8_t *)"a", 1, &META));
    ca_ocsp_cache_epoch(c, 1, "01:02");
    assert_string_equal(get_text(c, "id-a", T0), "");
    put_text(c, "id-a", "answer-a", &META);
    revoked.good = 0;
    revoked.revoked = 1;
    put_text(c, "id-b", "answer-b", &revoked);
    assert_string_equal(get_text(c, "id-a", T0 + 1), "answer-a");
    assert_string_equal(get_text(c, "id-b", T0 + 1), "answer-b");
    assert_non_null(ca_ocsp_cache_get(c, (const uint8_t *)"id-b", 4, T0, &len, &m));
    assert_int_equal(m.revoked, 1);
    assert_int_equal(m.good, 0);
    assert_int_equal(m.this_update, T0);
    assert_int_equal(m.next_update, T0 + 3600);
    /* a key that is a prefix of another is another key */
    assert_string_equal(get_text(c, "id-", T0), "");
    /* the same epoch again keeps everything */
    ca_ocsp_cache_epoch(c, 1, "01:02");
    assert_string_equal(get_text(c, "id-a", T0), "answer-a");
    /* a new answer for a key replaces the old one */
    put_text(c, "id-a", "answer-a2", &META);
    assert_string_equal(get_text(c, "id-a", T0), "answer-a2");
    ca_ocsp_cache_stats(c, &st);
    assert_int_equal(st.entries, 2);
    assert_int_equal(st.hits, 5);
    assert_int_equal(st.misses, 2);
    ca_ocsp_cache_free(c);
}

/* Another generation or another signer forgets every answer. */
static void
test_new_epoch_forgets(void **state)
{
    struct ca_ocsp_cache *c = ca_ocsp_cache_new(16, 60);
    struct ca_ocsp_cache_stats st;

    (void)state;
    ca_ocsp_cache_epoch(c, 7, "AA");
    put_text(c, "id-a", "answer-a", &META);
    ca_ocsp_cache_epoch(c, 8, "AA");
    assert_string_equal(get_text(c, "id-a", T0), "");
    put_text(c, "id-a", "answer-a", &META);
    assert_string_equal(get_text(c, "id-a", T0), "answer-a");
    ca_ocsp_cache_epoch(c, 8, "AB");
    assert_string_equal(get_text(c, "id-a", T0), "");
    put_text(c, "id-a", "answer-a", &META);
    /* back to an earlier generation is a change too */
    ca_ocsp_cache_epoch(c, 7, "AB");
    assert_string_equal(get_text(c, "id-a", T0), "");
    ca_ocsp_cache_stats(c, &st);
    assert_int_equal(st.entries, 0);
    assert_int_equal(st.flushes, 3);
    ca_ocsp_cache_free(c);
}

/* The age rule: less than max_age after thisUpdate, before nextUpdate, not before thisUpdate. */
static void
test_age(void **state)
{
    struct ca_ocsp_cache *c = ca_ocsp_cache_new(16, 60);
    struct ca_ocsp_cache_meta shortlived = {.this_update = T0, .next_update = T0 + 30, .good = 1};

    (void)state;
    ca_ocsp_cache_epoch(c, 1, "AA");
    put_text(c, "id-a", "answer-a", &META);
    assert_string_equal(get_text(c, "id-a", T0 - 1), "");
    put_text(c, "id-a", "answer-a", &META);
    assert_string_equal(get_text(c, "id-a", T0 + 59), "answer-a");
    assert_string_equal(get_text(c, "id-a", T0 + 60), "");
    /* gone for good, even if the clock comes back */
    assert_string_equal(get_text(c, "id-a", T0 + 1), "");
    put_text(c, "id-b", "answer-b", &shortlived);
    assert_string_equal(get_text(c, "id-b", T0 + 29), "answer-b");
    assert_string_equal(get_text(c, "id-b", T0 + 30), "");
    ca_ocsp_cache_free(c);
}

/* Keys and answers over the limits are refused; an empty one too. */
static void
test_limits(void **state)
{
    struct ca_ocsp_cache *c = ca_ocsp_cache_new(16, 60);
    uint8_t *big = calloc(1, CA_OCSP_CACHE_MAX_ANSWER + 1);
    size_t len;
    struct ca_ocsp_cache_meta m;

    (void)state;
    assert_non_null(big);
    ca_ocsp_cache_epoch(c, 1, "AA");
    assert_false(
        ca_ocsp_cache_put(c, big, CA_OCSP_CACHE_MAX_KEY + 1, (const uint8_t *)"a", 1, &META));
    assert_null(ca_ocsp_cache_get(c, big, CA_OCSP_CACHE_MAX_KEY + 1, T0, &len, &m));
    assert_true(ca_ocsp_cache_put(c, big, CA_OCSP_CACHE_MAX_KEY, (const uint8_t *)"a", 1, &META));
    assert_non_null(ca_ocsp_cache_get(c, big, CA_OCSP_CACHE_MAX_KEY, T0, &len, &m));
    assert_false(
        ca_ocsp_cache_put(c, (const uint8_t *)"k", 1, big, CA_OCSP_CACHE_MAX_ANSWER + 1, &META));
    assert_false(ca_ocsp_cache_put(c, (const uint8_t *)"k", 1, big, 0, &META));
    assert_false(ca_ocsp_cache_put(c, big, 0, (const uint8_t *)"a", 1, &META));
    free(big);
    ca_ocsp_cache_free(c);
}

/* However many keys come, at most `entries` answers are kept; recent ones mostly survive. */
static void
test_bounded(void **state)
{
    struct ca_ocsp_cache *c = ca_ocsp_cache_new(64, 60);
    struct ca_ocsp_cache_stats st;
    uint8_t k[8];
    size_t len, found = 0;
    struct ca_ocsp_cache_meta m = META;

    (void)state;
    ca_ocsp_cache_epoch(c, 1, "AA");
    for (uint32_t i = 0; i < 10000; i++) {
        key_of(i, k);
        m.this_update = T0 + i / 1000;
        assert_true(ca_ocsp_cache_put(c, k, sizeof(k), (const uint8_t *)"answer", 6, &m));
        ca_ocsp_cache_stats(c, &st);
        assert_true(st.entries <= 64);
    }
    for (uint32_t i = 0; i < 10000; i++) {
        struct ca_ocsp_cache_meta got;
        key_of(i, k);
        if (ca_ocsp_cache_get(c, k, sizeof(k), T0 + 10, &len, &got) != NULL)
            found++;
    }
    assert_true(found <= 64);
    /* two slots per key: the table fills well past what one slot per key would keep */
    assert_true(found >= 40);
    ca_ocsp_cache_free(c);
}

/* A batch reuses its first generation read; outside one, nothing is reused. */
static void
test_batch(void **state)
{
    struct ca_ocsp_cache *c = ca_ocsp_cache_new(16, 60);
    uint64_t g = 0;

    (void)state;
    assert_false(ca_ocsp_cache_batch_generation(c, &g));
    ca_ocsp_cache_batch_set(c, 7); /* no batch: not kept */
    assert_false(ca_ocsp_cache_batch_generation(c, &g));
    ca_ocsp_cache_batch_open(c);
    assert_false(ca_ocsp_cache_batch_generation(c, &g)); /* nothing read yet */
    ca_ocsp_cache_batch_set(c, 8);
    assert_true(ca_ocsp_cache_batch_generation(c, &g));
    assert_int_equal(g, 8);
    ca_ocsp_cache_batch_close(c);
    assert_false(ca_ocsp_cache_batch_generation(c, &g));
    /* a new batch never starts with the last one's read */
    ca_ocsp_cache_batch_open(c);
    assert_false(ca_ocsp_cache_batch_generation(c, &g));
    ca_ocsp_cache_batch_close(c);
    ca_ocsp_cache_free(c);
}

/* Rows' statuses live in the epoch: forgotten by a new one, never kept without one. */
static void
test_status_rows(void **state)
{
    struct ca_ocsp_cache *c = ca_ocsp_cache_new(16, 60);
    struct ca_ocsp_cache_status st = {.revoked = true, .revoked_at = T0, .reason = 1}, got;
    char longest[CA_OCSP_CACHE_MAX_SERIAL + 1];

    (void)state;
    ca_ocsp_cache_status_put(c, "01:02", &st); /* no epoch yet: not kept */
    assert_false(ca_ocsp_cache_status_get(c, "01:02", &got));
    ca_ocsp_cache_epoch(c, 1, "AA");
    ca_ocsp_cache_status_put(c, "01:02", &st);
    assert_true(ca_ocsp_cache_status_get(c, "01:02", &got));
    assert_true(got.revoked);
    assert_int_equal(got.revoked_at, T0);
    assert_int_equal(got.reason, 1);
    assert_false(ca_ocsp_cache_status_get(c, "01:03", &got));
    ca_ocsp_cache_epoch(c, 1, "AA"); /* the same epoch keeps it */
    assert_true(ca_ocsp_cache_status_get(c, "01:02", &got));
    ca_ocsp_cache_epoch(c, 2, "AA"); /* a write anywhere forgets it */
    assert_false(ca_ocsp_cache_status_get(c, "01:02", &got));
    ca_ocsp_cache_status_put(c, "01:02", &st);
    ca_ocsp_cache_epoch(c, 2, "BB"); /* so does a new signer */
    assert_false(ca_ocsp_cache_status_get(c, "01:02", &got));
    memset(longest, 'A', sizeof(longest) - 1);
    longest[sizeof(longest) - 1] = '\0';
    ca_ocsp_cache_status_put(c, longest, &st);
    assert_false(ca_ocsp_cache_status_get(c, longest, &got));
    /* many serials: each is its own or missing, never another's */
    for (int i = 0; i < 200; i++) {
        char sn[16];
        struct ca_ocsp_cache_status s2 = {.revoked = i % 2 == 0, .revoked_at = i};
        snprintf(sn, sizeof(sn), "%02X:%02X", i / 256, i % 256);
        ca_ocsp_cache_status_put(c, sn, &s2);
    }
    for (int i = 0; i < 200; i++) {
        char sn[16];
        snprintf(sn, sizeof(sn), "%02X:%02X", i / 256, i % 256);
        if (ca_ocsp_cache_status_get(c, sn, &got)) {
            assert_int_equal(got.revoked_at, i);
            assert_int_equal(got.revoked, i % 2 == 0);
        }
    }
    ca_ocsp_cache_free(c);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hit_and_miss), cmocka_unit_test(test_new_epoch_forgets),
        cmocka_unit_test(test_age),          cmocka_unit_test(test_limits),
        cmocka_unit_test(test_bounded),      cmocka_unit_test(test_batch),
        cmocka_unit_test(test_status_rows),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
