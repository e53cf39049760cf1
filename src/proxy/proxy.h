/* SPDX-License-Identifier: Apache-2.0 */
/*
 * proxy.h - `duet proxy` (mTLS server side) and `duet tunnel` (client side).
 *
 * Both run the same engine: one libevent loop per worker thread, each with
 * its own listening sockets (SO_REUSEPORT), a shared, reference-counted
 * "generation" of TLS contexts and policy that reload swaps atomically, an
 * admin listener for /metrics, /healthz and /readyz, and JSON-lines logs.
 */
#ifndef DUET_PROXY_PROXY_H
#define DUET_PROXY_PROXY_H

#include "proxy/config.h"

/*
 * Run until SIGTERM or SIGINT.  `cfg` is consumed.  argc/argv are kept to
 * re-read the same flags (or --config file) on SIGHUP and on file changes.
 * Returns the process exit status.
 */
int proxy_run(struct proxy_cfg *cfg, int argc, char **argv);

/* Build every TLS context of a configuration without serving: `--check`. */
int proxy_check(const struct proxy_cfg *cfg, struct duet_err *err) MUST_CHECK;

#endif
