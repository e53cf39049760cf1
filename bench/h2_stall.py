#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""What HTTP/2 clients that stall every stream cost `duet proxy` (docs/performance.md).

Each attacking connection (one valid client certificate, raw frames from
tests/integration/test_proxy_h2.py) sets SETTINGS_INITIAL_WINDOW_SIZE 0 and opens 100 streams
whose responses are 8 MiB each, then only sends PINGs.  Printed per binary: the proxy's RSS
before and after, upstream connections held, and whether another client is still served
(curl --http2, its time).  With --upstream h2c the upstream is nginx serving the same over
HTTP/2 with prior knowledge (upstream_protocol h2c, one shared upstream connection: the
listener's --upstream-h2-connections 1), so the stalled streams share it with the other client.

usage: bench/h2_stall.py [--conns N] [--hold SECONDS] [--upstream http1|h2c] DUET_BINARY...
"""

import argparse
import os
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "integration"))

from proxyutil import Procs, ProxyPKI, start_http_proxy  # noqa: E402
from test_proxy_h2 import PING, RULES, SETTINGS, RawH2, frame, good  # noqa: E402
from test_proxy_h2_limits import StallUpstream, rss_kib  # noqa: E402
from test_proxy_h2up_share import start_nginx_h2c  # noqa: E402


def one(binary, conns, hold, upstream):
    work = Path(tempfile.mkdtemp(prefix="h2stall-"))
    dpki = ProxyPKI(binary, work / "pki")
    procs = Procs(work)
    up = None
    try:
        (work / "px").mkdir()
        if upstream == "h2c":
            big = os.urandom(8 * 1024 * 1024)
            port, _ = start_nginx_h2c(procs, work, {"/public/other": b"other\n",
                                                    "/public/big": big})
            px = start_http_proxy(dpki, procs, work / "px", port, rules=RULES,
                                  extra_yaml="    upstream_protocol: h2c\n",
                                  extra_args=("--upstream-h2-connections", "1"))
        else:
            up = StallUpstream(big=8 * 1024 * 1024)
            px = start_http_proxy(dpki, procs, work / "px", up.port, rules=RULES)
        curl = ["curl", "-sS", "--http2", "--cacert", str(dpki.roots), "--cert",
                str(dpki.alice_crt), "--key", str(dpki.alice_key), "-o", "/dev/null",
                "-m", "20", "-w", "%{http_code} %{time_total}",
                "https://localhost:%d/public/other" % px.port]
        subprocess.run(curl, capture_output=True, timeout=30)
        time.sleep(0.5)
        before = rss_kib(px.proc.pid)
        clients = []
        for _ in range(conns):
            c = RawH2(dpki, px.port)
            c.send(frame(SETTINGS, 0, 0, struct.pack(">HI", 4, 0)))
            for i in range(100):
                c.request(1 + 2 * i, good("/public/big" if up is None else "/public/big-%d" % i,
                                          px.port))
            clients.append(c)
        end = time.monotonic() + hold
        n = 0
        while time.monotonic() < end:
            n += 1
            for c in clients:
                try:
                    c.send(frame(PING, 0, 0, struct.pack(">Q", n)))
                except OSError:
                    pass
            time.sleep(0.5)
        during = rss_kib(px.proc.pid)
        held = up.open if up is not None else "-"
        other = subprocess.run(curl, capture_output=True, text=True, timeout=30).stdout
        for c in clients:
            c.close()
        print("%s (%s upstream): %d stalled connection(s) x 100 streams, %ds: RSS %d -> %d KiB "
              "(+%d KiB), upstream connections held %s, another client: %s" %
              (binary, upstream, conns, hold, before, during, during - before, held, other))
    finally:
        if up is not None:
            up.close()
        procs.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--conns", type=int, default=1)
    ap.add_argument("--hold", type=int, default=5)
    ap.add_argument("--upstream", choices=("http1", "h2c"), default="http1")
    ap.add_argument("binaries", nargs="+")
    a = ap.parse_args()
    for b in a.binaries:
        one(os.path.abspath(b), a.conns, a.hold, a.upstream)


if __name__ == "__main__":
    main()
