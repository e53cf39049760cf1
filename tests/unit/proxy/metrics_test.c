/* SPDX-License-Identifier: Apache-2.0 */
/*
 * metrics_test.c - unit tests of the proxy's counters (src/proxy/metrics.c)
 * as the request path uses them: metrics_slot_count() caches a series in a
 * slot on its first count and counts in it afterwards, into the same series
 * and the same /metrics line that metrics_count() would have written, shared
 * by every slot of the same labels (one per generation) and by threads; a
 * series that never counted is not scraped.  The label escaper is tested in
 * tests/unit/util/log_test.c.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proxy/metrics.h"

/* The /metrics page now (the caller frees it). */
static char *
scrape(void)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);

    assert_non_null(f);
    metrics_write(f);
    assert_int_equal(fclose(f), 0);
    return text;
}

/* How many lines of text begin with prefix. */
static int
lines_with(const char *text, const char *prefix)
{
    int n = 0;
    size_t plen = strlen(prefix);

    for (const char *p = text; p != NULL && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
        if (strncmp(p, prefix, plen) == 0)
            n++;
    }
    return n;
}

/* The first count finds the series; later ones add to it, on the line metrics_count writes. */
static void
test_slot_counts_in_the_series_metrics_count_writes(void **state)
{
    _Atomic(struct metrics_counter *) slot = NULL;
    char *text;

    (void)state;
    for (int i = 0; i < 3; i++)
        metrics_slot_count(&slot, "duet_requests_total", "listener=\"%s\",code=\"%d\"", "web", 200);
    assert_ptr_equal(atomic_load(&slot),
                     metrics_counter("duet_requests_total", "listener=\"web\",code=\"200\""));
    metrics_count("duet_requests_total", "listener=\"web\",code=\"200\"", 1);
    text = scrape();
    assert_non_null(strstr(text, "\n# HELP duet_requests_total HTTP requests by listener and "
                                 "status class.\n# TYPE duet_requests_total counter\n"));
    assert_int_equal(lines_with(text, "duet_requests_total{listener=\"web\",code=\"200\"} 4\n"), 1);
    assert_int_equal(lines_with(text, "duet_requests_total{"), 1);
    assert_int_equal(lines_with(text, "# HELP duet_requests_total "), 1);
    free(text);
}

/* Once the slot holds a series, fmt and its arguments are not read again. */
static void
test_slot_formats_labels_only_on_first_count(void **state)
{
    _Atomic(struct metrics_counter *) slot = NULL;
    char *text;

    (void)state;
    metrics_slot_count(&slot, "duet_t_first_total", "listener=\"%s\",reason=\"%s\"", "a", "client");
    metrics_slot_count(&slot, "duet_t_first_total", "listener=\"%s\",reason=\"%s\"", "a", "cancel");
    metrics_slot_count(&slot, "duet_t_other_total", "%s", "never=\"read\"");
    text = scrape();
    assert_int_equal(lines_with(text, "duet_t_first_total{listener=\"a\",reason=\"client\"} 3\n"), 1);
    assert_null(strstr(text, "cancel"));
    assert_null(strstr(text, "duet_t_other_total"));
    free(text);
}

/*
 * Without a slot (a status code outside the caller's array) every count finds
 * its series by its labels; a series nothing counted in is not on the page.
 */
static void
test_no_slot_finds_the_series_each_time(void **state)
{
    _Atomic(struct metrics_counter *) unused = NULL;
    char *text;

    (void)state;
    metrics_slot_count(NULL, "duet_t_wide_total", "code=\"%d\"", 700);
    metrics_slot_count(NULL, "duet_t_wide_total", "code=\"%d\"", 999);
    metrics_slot_count(NULL, "duet_t_wide_total", "code=\"%d\"", 700);
    text = scrape();
    assert_int_equal(lines_with(text, "duet_t_wide_total{code=\"700\"} 2\n"), 1);
    assert_int_equal(lines_with(text, "duet_t_wide_total{code=\"999\"} 1\n"), 1);
    assert_int_equal(lines_with(text, "# TYPE duet_t_wide_total counter\n"), 1);
    assert_null(atomic_load(&unused));
    assert_null(strstr(text, "duet_t_never_total"));
    free(text);
}

/* A reload gives the listener new slots: they find the series the old ones count in. */
static void
test_slots_of_two_generations_share_the_series(void **state)
{
    _Atomic(struct metrics_counter *) old_gen = NULL, new_gen = NULL;
    char *text;

    (void)state;
    metrics_slot_count(&old_gen, "duet_t_reload_total", "listener=\"%s\"", "web");
    metrics_slot_count(&new_gen, "duet_t_reload_total", "listener=\"%s\"", "web");
    metrics_slot_count(&old_gen, "duet_t_reload_total", "listener=\"%s\"", "web");
    assert_ptr_equal(atomic_load(&old_gen), atomic_load(&new_gen));
    text = scrape();
    assert_int_equal(lines_with(text, "duet_t_reload_total{listener=\"web\"} 3\n"), 1);
    assert_int_equal(lines_with(text, "duet_t_reload_total"), 1);
    free(text);
}

#define THREADS 4
#define COUNTS 50000

static _Atomic(struct metrics_counter *) shared_slot;
static pthread_barrier_t start;

static void *
count_many(void *arg)
{
    (void)arg;
    pthread_barrier_wait(&start); /* all threads race for the empty slot */
    for (int i = 0; i < COUNTS; i++)
        metrics_slot_count(&shared_slot, "duet_t_threads_total", "listener=\"%s\"", "web");
    return NULL;
}

/* Workers that find the slot empty at once make one series, and no count is lost. */
static void
test_threads_share_one_slot(void **state)
{
    pthread_t thr[THREADS];
    char line[96], *text;

    (void)state;
    assert_int_equal(pthread_barrier_init(&start, NULL, THREADS), 0);
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&thr[i], NULL, count_many, NULL), 0);
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_join(thr[i], NULL), 0);
    pthread_barrier_destroy(&start);
    text = scrape();
    snprintf(line, sizeof(line), "duet_t_threads_total{listener=\"web\"} %d\n", THREADS * COUNTS);
    assert_int_equal(lines_with(text, line), 1);
    assert_int_equal(lines_with(text, "duet_t_threads_total"), 1);
    free(text);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_slot_counts_in_the_series_metrics_count_writes),
        cmocka_unit_test(test_slot_formats_labels_only_on_first_count),
        cmocka_unit_test(test_no_slot_finds_the_series_each_time),
        cmocka_unit_test(test_slots_of_two_generations_share_the_series),
        cmocka_unit_test(test_threads_share_one_slot),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
