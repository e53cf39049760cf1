/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fileio.h - reading input files with errors a user can act on, and writing
 * files atomically (temporary file, fsync, rename).
 */
#ifndef DUET_LIB_FILEIO_H
#define DUET_LIB_FILEIO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "lib/err.h"

/* Largest input file read whole: certificates, CRLs and bundles are smaller. */
#define FILEIO_MAX_INPUT (256u * 1024u * 1024u)

/*
 * Read a whole regular file into a new NUL-terminated buffer (*data, owned
 * by the caller, free()).  Rejects a missing file, a directory, an empty
 * file and one larger than FILEIO_MAX_INPUT, naming the path in the message.
 */
int fileio_read(const char *path, uint8_t **data, size_t *len, struct duet_err *err) MUST_CHECK;

/*
 * Read a password or passphrase: the first line of the file, without its
 * line ending.  The result is owned by the caller; wipe and free it with
 * fileio_free_secret().  An empty first line is an error.
 */
int fileio_read_secret(const char *path, char **secret, struct duet_err *err) MUST_CHECK;
/* Wipe and free a string returned by fileio_read_secret(); NULL is fine. */
void fileio_free_secret(char *secret);

/*
 * Write data to path atomically with the given mode: a temporary file in the
 * same directory, fsync, rename over path, fsync of the directory.
 */
int fileio_write_atomic(const char *path, const uint8_t *data, size_t len, mode_t mode,
                        struct duet_err *err) MUST_CHECK;

#endif
