/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bbuf.h - a growing byte buffer for building wire formats (PROXY protocol
 * headers, HTTP heads) without stdio.  A failed growth is remembered: callers
 * append freely and check `oom` once at the end.  The bytes are always
 * followed by a NUL, so text can be used as a C string.
 */
#ifndef DUET_LIB_BBUF_H
#define DUET_LIB_BBUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct bbuf {
    uint8_t *p;
    size_t len, cap;
    bool oom;
};

/* Append n bytes. */
void bbuf_put(struct bbuf *b, const void *data, size_t n);
/* Append a C string, without its NUL. */
void bbuf_str(struct bbuf *b, const char *s);

#endif
