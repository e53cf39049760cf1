/* SPDX-License-Identifier: Apache-2.0 */
/*
 * err.h - the error record every fallible internal function fills.
 *
 * The message lives in a fixed buffer so that reporting out of memory never
 * allocates.  The kind tells callers how to react (the CLI maps it to an exit
 * status); the message is one sentence for a human.
 */
#ifndef DUET_LIB_ERR_H
#define DUET_LIB_ERR_H

#include <stdarg.h>
#include <stddef.h>

#include "duet.h"

#define MUST_CHECK __attribute__((warn_unused_result))
#define PRINTF_LIKE(f, a) __attribute__((format(printf, f, a)))

#define DUET_ERR_MSG_MAX 1024

struct duet_err {
    enum duet_err_kind kind;
    char msg[DUET_ERR_MSG_MAX];
};

/* Reset to "no error". */
void err_clear(struct duet_err *err);
/* Record kind and a formatted message; returns -1 so callers can `return err_set(...)`. */
int err_set(struct duet_err *err, enum duet_err_kind kind, const char *fmt, ...) PRINTF_LIKE(3, 4);
/*
 * Like err_set, then append " (<reason>)" with the last reason OpenSSL queued
 * (if any), and empty the queue.
 */
int err_set_ssl(struct duet_err *err, enum duet_err_kind kind, const char *fmt, ...)
    PRINTF_LIKE(3, 4);
/* Record out of memory. */
int err_nomem(struct duet_err *err);
/* Prepend "prefix: " to the message already recorded. */
void err_prefix(struct duet_err *err, const char *fmt, ...) PRINTF_LIKE(2, 3);

#endif
