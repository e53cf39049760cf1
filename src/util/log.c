/* SPDX-License-Identifier: Apache-2.0 */
/*
 * log.c - JSON lines to stderr or a file; see log.h.
 */
#include "util/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static int log_fd = 2;

int
log_open(const char *path, struct duet_err *err)
{
    int fd;

    if (path == NULL) {
        log_fd = 2;
        return 0;
    }
    fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0)
        return err_set(err, DUET_ERR_INPUT, "%s: cannot open the log: %s", path, strerror(errno));
    if (log_fd > 2)
        close(log_fd);
    log_fd = fd;
    return 0;
}

void
log_close(void)
{
    if (log_fd > 2)
        close(log_fd);
    log_fd = 2;
}

void
log_event(const char *level, const char *event, json_t *fields)
{
    struct timeval tv;
    struct tm tm;
    char ts[40];
    json_t *o = json_object();
    char *line;
    size_t n;

    if (o == NULL) {
        json_decref(fields);
        return;
    }
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + strlen(ts), sizeof(ts) - strlen(ts), ".%03ldZ", (long)(tv.tv_usec / 1000));
    json_object_set_new(o, "time", json_string(ts));
    json_object_set_new(o, "level", json_string(level));
    json_object_set_new(o, "event", json_string(event));
    if (fields != NULL) {
        json_object_update(o, fields);
        json_decref(fields);
    }
    line = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6));
    json_decref(o);
    if (line == NULL)
        return;
    n = strlen(line);
    line[n] = '\n'; /* json_dumps leaves room for the terminator; replace it */
    (void)!write(log_fd, line, n + 1);
    free(line);
}

void
log_msg(const char *level, const char *event, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    log_event(level, event, json_pack("{s:s}", "msg", msg));
}

void
fatal(const char *fmt, ...)
{
    va_list ap;

    fputs("duet: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(2);
}
