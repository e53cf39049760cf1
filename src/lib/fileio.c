/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fileio.c - input files read whole with errors that name the path and say
 * what was expected, and atomic writes for keys and certificates.
 */
#include "lib/fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

/* Read a regular file whole; see fileio.h. */
int
fileio_read(const char *path, uint8_t **data, size_t *len, struct duet_err *err)
{
    int fd = -1;
    uint8_t *buf = NULL;
    struct stat st;
    size_t got = 0;
    ssize_t n;

    *data = NULL;
    *len = 0;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            err_set(err, DUET_ERR_INPUT, "%s: no such file", path);
        else
            err_set(err, DUET_ERR_INPUT, "%s: cannot open: %s", path, strerror(errno));
        goto err;
    }
    if (fstat(fd, &st) != 0) {
        err_set(err, DUET_ERR_INPUT, "%s: cannot stat: %s", path, strerror(errno));
        goto err;
    }
    if (S_ISDIR(st.st_mode)) {
        err_set(err, DUET_ERR_INPUT, "%s: is a directory; expected a file", path);
        goto err;
    }
    if (S_ISREG(st.st_mode) && st.st_size == 0) {
        err_set(err, DUET_ERR_INPUT, "%s: file is empty", path);
        goto err;
    }
    if (S_ISREG(st.st_mode) && (uint64_t)st.st_size > FILEIO_MAX_INPUT) {
        err_set(err, DUET_ERR_INPUT, "%s: file is %lld bytes; the limit is %u", path,
                (long long)st.st_size, FILEIO_MAX_INPUT);
        goto err;
    }
    /* Regular files are read in one allocation; pipes grow as needed. */
    size_t cap = S_ISREG(st.st_mode) ? (size_t)st.st_size + 1 : 65536;
    buf = malloc(cap);
    if (buf == NULL) {
        err_nomem(err);
        goto err;
    }
    for (;;) {
        if (got + 1 >= cap) {
            if (cap >= FILEIO_MAX_INPUT) {
                err_set(err, DUET_ERR_INPUT, "%s: input is larger than %u bytes", path,
                        FILEIO_MAX_INPUT);
                goto err;
            }
            uint8_t *nb = realloc(buf, cap * 2);
            if (nb == NULL) {
                err_nomem(err);
                goto err;
            }
            buf = nb;
            cap *= 2;
        }
        n = read(fd, buf + got, cap - got - 1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            err_set(err, DUET_ERR_INPUT, "%s: cannot read: %s", path, strerror(errno));
            goto err;
        }
        if (n == 0)
            break;
        got += (size_t)n;
    }
    if (got == 0) {
        err_set(err, DUET_ERR_INPUT, "%s: file is empty", path);
        goto err;
    }
    buf[got] = '\0';
    close(fd);
    *data = buf;
    *len = got;
    return 0;
err:
    free(buf);
    if (fd >= 0)
        close(fd);
    return -1;
}

/* Read the first line of a file as a secret; see fileio.h. */
int
fileio_read_secret(const char *path, char **secret, struct duet_err *err)
{
    uint8_t *data = NULL;
    size_t len = 0;
    size_t n = 0;
    char *s = NULL;

    *secret = NULL;
    if (fileio_read(path, &data, &len, err) != 0)
        return -1;
    while (n < len && data[n] != '\n' && data[n] != '\r')
        n++;
    if (n == 0) {
        OPENSSL_cleanse(data, len);
        free(data);
        return err_set(err, DUET_ERR_INPUT, "%s: first line is empty; expected a password", path);
    }
    s = malloc(n + 1);
    if (s == NULL) {
        OPENSSL_cleanse(data, len);
        free(data);
        return err_nomem(err);
    }
    memcpy(s, data, n);
    s[n] = '\0';
    OPENSSL_cleanse(data, len);
    free(data);
    *secret = s;
    return 0;
}

/* Wipe and free a secret string. */
void
fileio_free_secret(char *secret)
{
    if (secret == NULL)
        return;
    OPENSSL_cleanse(secret, strlen(secret));
    free(secret);
}

/* Write a file atomically; see fileio.h. */
int
fileio_write_atomic(const char *path, const uint8_t *data, size_t len, mode_t mode,
                    struct duet_err *err)
{
    char tmp[4096];
    char dirbuf[4096];
    int fd = -1;
    int dfd = -1;
    size_t off = 0;

    if (snprintf(tmp, sizeof(tmp), "%s.tmp.XXXXXX", path) >= (int)sizeof(tmp))
        return err_set(err, DUET_ERR_INPUT, "%s: path is too long", path);
    fd = mkstemp(tmp);
    if (fd < 0)
        return err_set(err, DUET_ERR_INPUT, "%s: cannot create temporary file: %s", path,
                       strerror(errno));
    if (fchmod(fd, mode) != 0) {
        err_set(err, DUET_ERR_INPUT, "%s: cannot set mode: %s", tmp, strerror(errno));
        goto err;
    }
    while (off < len) {
        ssize_t n = write(fd, data + off, len - off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            err_set(err, DUET_ERR_INPUT, "%s: cannot write: %s", tmp, strerror(errno));
            goto err;
        }
        off += (size_t)n;
    }
    if (fsync(fd) != 0) {
        err_set(err, DUET_ERR_INPUT, "%s: fsync failed: %s", tmp, strerror(errno));
        goto err;
    }
    if (close(fd) != 0) {
        fd = -1;
        err_set(err, DUET_ERR_INPUT, "%s: close failed: %s", tmp, strerror(errno));
        goto err;
    }
    fd = -1;
    if (rename(tmp, path) != 0) {
        err_set(err, DUET_ERR_INPUT, "%s: cannot rename into place: %s", path, strerror(errno));
        goto err;
    }
    snprintf(dirbuf, sizeof(dirbuf), "%s", path);
    dfd = open(dirname(dirbuf), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        (void)fsync(dfd);
        close(dfd);
    }
    return 0;
err:
    if (fd >= 0)
        close(fd);
    unlink(tmp);
    return -1;
}
