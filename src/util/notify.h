/* SPDX-License-Identifier: Apache-2.0 */
/*
 * notify.h - the service manager's readiness protocol (systemd's sd_notify,
 * Type=notify): one datagram of NEWLINE-separated VAR=value lines to the
 * unix socket named by $NOTIFY_SOCKET.  Without that variable (not started by
 * a service manager) every call does nothing.
 */
#ifndef DUET_UTIL_NOTIFY_H
#define DUET_UTIL_NOTIFY_H

/*
 * Send the state lines in `state` ("READY=1\nSTATUS=..."); a path starting
 * with '@' is an abstract socket.  Returns 0, or -1 when a socket was named
 * but the message could not be sent (the caller logs it; it never stops the
 * daemon).
 */
int notify_send(const char *state);

/* RELOADING=1 with MONOTONIC_USEC, as Type=notify-reload expects, and a STATUS. */
int notify_reloading(void);

#endif
