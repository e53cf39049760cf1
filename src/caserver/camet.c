/* SPDX-License-Identifier: Apache-2.0 */
/*
 * camet.c - the counters of `duet ca serve` for /metrics, in Prometheus
 * text format 0.0.4.  The server has one thread, so a small list searched
 * linearly is enough: the series are few (endpoints x statuses x reasons).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "caserver/caserver_int.h"

/* Most series kept; more are dropped (and counted in the last one's place). */
#define CAMET_MAX_SERIES 256

struct series {
    char *name;
    char *labels;
    double value;
};

static struct series table[CAMET_MAX_SERIES];
static size_t nseries;

/* Bucket bounds of the OCSP duration histogram, in seconds. */
static const double ocsp_bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5};
#define NBOUNDS (sizeof(ocsp_bounds) / sizeof(ocsp_bounds[0]))
static unsigned long ocsp_buckets[NBOUNDS];
static unsigned long ocsp_count;
static double ocsp_sum;

/* Add to a counter; see caserver_int.h. */
void
caserver_metric_add(const char *name, const char *labels, double delta)
{
    struct series *s;

    for (size_t i = 0; i < nseries; i++) {
        if (strcmp(table[i].name, name) == 0 && strcmp(table[i].labels, labels) == 0) {
            table[i].value += delta;
            return;
        }
    }
    if (nseries == CAMET_MAX_SERIES)
        return;
    s = &table[nseries];
    s->name = strdup(name);
    s->labels = strdup(labels);
    if (s->name == NULL || s->labels == NULL) {
        free(s->name);
        free(s->labels);
        s->name = s->labels = NULL;
        return;
    }
    s->value = delta;
    nseries++;
}

/* One OCSP duration; see caserver_int.h. */
void
caserver_metric_ocsp_duration(double seconds)
{
    for (size_t i = 0; i < NBOUNDS; i++) {
        if (seconds <= ocsp_bounds[i])
            ocsp_buckets[i]++;
    }
    ocsp_count++;
    ocsp_sum += seconds;
}

/* Whether a family's # TYPE line was written already (series are grouped by name). */
static bool
seen_before(size_t i)
{
    for (size_t k = 0; k < i; k++) {
        if (strcmp(table[k].name, table[i].name) == 0)
            return true;
    }
    return false;
}

/* The listeners' gauges: connections open, the cap, those the kernel holds unaccepted. */
static void
connections_write(FILE *out, const struct casrv *s)
{
    fprintf(out, "# TYPE duet_ca_connections gauge\n");
    for (int i = 0; i < 2; i++) {
        if (s->lst[i].lev != NULL)
            fprintf(out, "duet_ca_connections{listener=\"%s\"} %zu\n", s->lst[i].name,
                    s->lst[i].open);
    }
    fprintf(out, "# TYPE duet_ca_connections_max gauge\nduet_ca_connections_max %zu\n",
            s->o->max_connections);
    fprintf(out, "# TYPE duet_ca_connections_waiting gauge\n");
    for (int i = 0; i < 2; i++) {
        long w = caserver_conns_waiting(&s->lst[i]);
        if (w >= 0)
            fprintf(out, "duet_ca_connections_waiting{listener=\"%s\"} %ld\n", s->lst[i].name, w);
    }
}

/* The exposition; see caserver_int.h. */
void
caserver_metrics_write(FILE *out, const struct casrv *s, int64_t now)
{
    for (size_t i = 0; i < nseries; i++) {
        if (seen_before(i))
            continue;
        fprintf(out, "# TYPE %s counter\n", table[i].name);
        for (size_t k = i; k < nseries; k++) {
            if (strcmp(table[k].name, table[i].name) != 0)
                continue;
            if (table[k].labels[0] != '\0')
                fprintf(out, "%s{%s} %.0f\n", table[k].name, table[k].labels, table[k].value);
            else
                fprintf(out, "%s %.0f\n", table[k].name, table[k].value);
        }
    }
    fprintf(out, "# TYPE duet_ca_ocsp_duration_seconds histogram\n");
    for (size_t i = 0; i < NBOUNDS; i++)
        fprintf(out, "duet_ca_ocsp_duration_seconds_bucket{le=\"%g\"} %lu\n", ocsp_bounds[i],
                ocsp_buckets[i]);
    fprintf(out, "duet_ca_ocsp_duration_seconds_bucket{le=\"+Inf\"} %lu\n", ocsp_count);
    fprintf(out, "duet_ca_ocsp_duration_seconds_sum %.6f\n", ocsp_sum);
    fprintf(out, "duet_ca_ocsp_duration_seconds_count %lu\n", ocsp_count);
    fprintf(out,
            "# TYPE duet_ca_inventory_generation_reads_total counter\n"
            "duet_ca_inventory_generation_reads_total %llu\n",
            (unsigned long long)store_generation_reads(ca_store(s->ca)));
    fprintf(out, "# TYPE duet_ca_crl_age_seconds gauge\nduet_ca_crl_age_seconds %lld\n",
            (long long)(now - s->crl_this_update));
    fprintf(out,
            "# TYPE duet_ca_crl_next_update_seconds gauge\nduet_ca_crl_next_update_seconds %lld\n",
            (long long)(s->crl_next_update - now));
    fprintf(out,
            "# TYPE duet_ca_server_certificate_expiry_seconds gauge\n"
            "duet_ca_server_certificate_expiry_seconds %lld\n",
            (long long)(s->cert_not_after - now));
    connections_write(out, s);
}

/* Free the table; see caserver_int.h. */
void
caserver_metrics_clear(void)
{
    for (size_t i = 0; i < nseries; i++) {
        free(table[i].name);
        free(table[i].labels);
    }
    nseries = 0;
}
