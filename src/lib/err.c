/* SPDX-License-Identifier: Apache-2.0 */
/*
 * err.c - filling struct duet_err.
 *
 * Messages are formatted into the record's own buffer and truncated, never
 * allocated.  OpenSSL's error queue is drained into the message so that the
 * next operation starts with an empty queue.
 */
#include "lib/err.h"

#include <stdio.h>
#include <string.h>

#include <openssl/err.h>

/* Reset the record to "no error". */
void
err_clear(struct duet_err *err)
{
    if (err == NULL)
        return;
    err->kind = DUET_ERR_NONE;
    err->msg[0] = '\0';
}

static void
err_vset(struct duet_err *err, enum duet_err_kind kind, const char *fmt, va_list ap)
{
    err->kind = kind;
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
}

/* Record a kind and a formatted message.  Always returns -1. */
int
err_set(struct duet_err *err, enum duet_err_kind kind, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL)
        return -1;
    va_start(ap, fmt);
    err_vset(err, kind, fmt, ap);
    va_end(ap);
    return -1;
}

/*
 * Record a message followed by the most specific reason OpenSSL queued, then
 * empty the queue.  Always returns -1.
 */
int
err_set_ssl(struct duet_err *err, enum duet_err_kind kind, const char *fmt, ...)
{
    va_list ap;
    unsigned long e;
    unsigned long last = 0;
    size_t n;

    while ((e = ERR_get_error()) != 0)
        last = e;
    if (err == NULL)
        return -1;
    va_start(ap, fmt);
    err_vset(err, kind, fmt, ap);
    va_end(ap);
    if (last != 0 && ERR_reason_error_string(last) != NULL) {
        n = strlen(err->msg);
        snprintf(err->msg + n, sizeof(err->msg) - n, " (%s)", ERR_reason_error_string(last));
    }
    return -1;
}

/* Record out of memory without allocating.  Always returns -1. */
int
err_nomem(struct duet_err *err)
{
    ERR_clear_error();
    return err_set(err, DUET_ERR_NOMEM, "out of memory");
}

/* Prepend a formatted prefix and ": " to the recorded message, truncating its end. */
void
err_prefix(struct duet_err *err, const char *fmt, ...)
{
    char prefix[256];
    size_t plen;
    size_t mlen;
    va_list ap;

    if (err == NULL)
        return;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof(prefix), fmt, ap);
    va_end(ap);
    plen = strlen(prefix);
    mlen = strnlen(err->msg, sizeof(err->msg) - 1);
    if (plen + 2 + mlen > sizeof(err->msg) - 1)
        mlen = sizeof(err->msg) - 1 - plen - 2;
    memmove(err->msg + plen + 2, err->msg, mlen);
    memcpy(err->msg, prefix, plen);
    err->msg[plen] = ':';
    err->msg[plen + 1] = ' ';
    err->msg[plen + 2 + mlen] = '\0';
}
