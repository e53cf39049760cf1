/* SPDX-License-Identifier: Apache-2.0 */
/*
 * duration.c - durations such as "720h", "1h30m" or "250ms", parsed strictly
 * into seconds or milliseconds; see duration.h for the syntax.
 */
#include "lib/duration.h"

#include <ctype.h>
#include <stdbool.h>
#include <string.h>

#define MAX_SUM_S (100LL * 365 * 86400) /* a sum of groups: 100 years */
#define MAX_DIGITS_VALUE 1000000000LL   /* a group's digits stop growing past this */

/*
 * The syntax of duration.h into milliseconds; ms_unit allows "ms".  Returns
 * false on any deviation.  Every product fits in int64_t: a group's value is
 * below 10^10 and the largest unit is 6.048 * 10^8 ms.
 */
static bool
parse(const char *text, bool ms_unit, int64_t *out_ms)
{
    const char *p = text;
    int64_t total = 0;

    if (text == NULL || *text == '\0')
        return false;
    while (*p) {
        int64_t v = 0;
        int64_t unit;
        if (!isdigit((unsigned char)*p))
            return false;
        while (isdigit((unsigned char)*p)) {
            if (v > MAX_DIGITS_VALUE)
                return false;
            v = v * 10 + (*p++ - '0');
        }
        switch (*p) {
        case 's':
            unit = 1000;
            break;
        case 'm':
            if (p[1] == 's') {
                if (!ms_unit)
                    return false;
                p++;
                unit = 1;
            } else {
                unit = 60 * 1000;
            }
            break;
        case 'h':
            unit = 3600 * 1000;
            break;
        case 'd':
            unit = 86400 * 1000;
            break;
        case 'w':
            unit = 7 * 86400 * 1000LL;
            break;
        case '\0':
            /* Bare digits are seconds, and only alone (a "0h" before them counts as nothing). */
            if (p == text || total != 0)
                return false;
            *out_ms = v * 1000;
            return true;
        default:
            return false;
        }
        p++;
        total += v * unit;
        if (total > MAX_SUM_S * 1000)
            return false;
    }
    *out_ms = total;
    return true;
}

/* A duration in seconds; see duration.h. */
int
duration_parse(const char *text, int64_t *seconds, struct duet_err *err)
{
    int64_t ms = 0;

    if (!parse(text, false, &ms))
        return err_set(err, DUET_ERR_INPUT,
                       "\"%s\" is not a duration; expected e.g. 720h, 30d, 1h30m",
                       text != NULL ? text : "");
    *seconds = ms / 1000;
    return 0;
}

/* A duration in milliseconds within bounds; see duration.h. */
int
duration_parse_ms(const char *text, int64_t min_ms, int64_t max_ms, int64_t *ms,
                  struct duet_err *err)
{
    int64_t v = 0;

    if (!parse(text, true, &v))
        return err_set(err, DUET_ERR_INPUT,
                       "\"%s\" is not a duration; expected e.g. 10s, 500ms, 5m",
                       text != NULL ? text : "");
    if (v < min_ms || v > max_ms)
        return err_set(err, DUET_ERR_INPUT, "\"%s\" is out of range; expected %lld ms to %lld ms",
                       text, (long long)min_ms, (long long)max_ms);
    *ms = v;
    return 0;
}
