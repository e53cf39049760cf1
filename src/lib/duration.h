/* SPDX-License-Identifier: Apache-2.0 */
/*
 * duration.h - the one parser of durations, for every flag and key that
 * takes one (--ttl, --within, --next-update, ca.yaml's default_ttl, the
 * proxy's timeouts, ...).
 *
 * Syntax: one or more groups of decimal digits and a unit - s, m, h, d
 * (86400 s) or w (7 d), and ms where milliseconds are accepted - as in
 * "720h", "30d", "1h30m", "1w", "250ms"; or bare digits alone, read as
 * seconds ("3600").  No sign, space, fraction or upper-case unit.  A sum of
 * groups is at most 100 years; bare seconds are not capped.
 */
#ifndef DUET_LIB_DURATION_H
#define DUET_LIB_DURATION_H

#include <stdint.h>

#include "lib/err.h"

/*
 * Parse a duration in whole seconds (no "ms" unit).  Zero is a duration
 * ("0s"): callers that need a positive one check.  *seconds is set on
 * success only; the message quotes the text and gives examples.
 */
int duration_parse(const char *text, int64_t *seconds, struct duet_err *err) MUST_CHECK;

/*
 * Parse a duration in milliseconds: the syntax above with "ms" allowed
 * ("500ms", "1s250ms", "10s", bare seconds "5"), then checked to lie within
 * [min_ms, max_ms].  *ms is set on success only.
 */
int duration_parse_ms(const char *text, int64_t min_ms, int64_t max_ms, int64_t *ms,
                      struct duet_err *err) MUST_CHECK;

#endif
