/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bbuf.c - a growing byte buffer; see bbuf.h.
 */
#include "lib/bbuf.h"

#include <stdlib.h>
#include <string.h>

void
bbuf_put(struct bbuf *b, const void *data, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        uint8_t *np = realloc(b->p, cap);
        if (np == NULL) {
            b->oom = true;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->len, data, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void
bbuf_str(struct bbuf *b, const char *s)
{
    bbuf_put(b, s, strlen(s));
}
