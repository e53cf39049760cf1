/* SPDX-License-Identifier: Apache-2.0 */
/*
 * schedule.c - when the agent renews and how long it waits after a failure.
 * Pure functions of their arguments (the random value is passed in), so that
 * the bounds are unit-tested.
 */
#include "agent/agent.h"

/* Two thirds of the lifetime, or the CA's renew_after when it is inside the validity. */
int64_t
agent_renew_base(int64_t not_before, int64_t not_after, int64_t renew_after)
{
    int64_t life = not_after - not_before;

    if (life <= 0)
        return not_before;
    if (renew_after > not_before && renew_after < not_after)
        return renew_after;
    return not_before + life / 3 * 2 + (life % 3) * 2 / 3;
}

/* See agent.h: the base time plus up to 5% of the lifetime, before not_after. */
int64_t
agent_renew_time(int64_t not_before, int64_t not_after, int64_t renew_after, uint64_t rnd)
{
    int64_t life = not_after - not_before;
    int64_t at = agent_renew_base(not_before, not_after, renew_after);

    if (life <= 0)
        return at;
    at += (int64_t)(rnd % (uint64_t)(life / 20 + 1));
    if (at > not_after - 1)
        at = not_after - 1;
    return at;
}

/* See agent.h: "equal jitter" exponential backoff, bounded by [lo, hi]. */
int64_t
agent_backoff(unsigned attempt, int64_t lo, int64_t hi, uint64_t rnd)
{
    int64_t cap;
    int64_t d;

    if (lo < 1)
        lo = 1;
    if (hi < lo)
        hi = lo;
    cap = lo;
    for (unsigned i = 0; i < attempt && cap < hi; i++)
        cap *= 2;
    if (cap > hi)
        cap = hi;
    d = cap - (int64_t)(rnd % (uint64_t)(cap / 2 + 1));
    return d < lo ? lo : d;
}
