# SPDX-License-Identifier: Apache-2.0
"""A reload (SIGHUP) of `duet proxy` while OCSP re-checks of open connections are in flight
(docs/proxy.md "Open connections after a reload"): the responder holds the question about
alice's certificate while the proxy reloads twice; its "revoked", once released, still closes
alice's open connection, and each retired configuration is freed once its last connection
ends (duet_proxy_generations on /metrics).  Run on the ASan build too (docs/development.md).

Responder: the Python one of test_proxy_ocsp_check.py, whose "held:revoked" waits for the
test before answering.
"""

import signal
import socket

from proxyutil import metrics, wait_metric
from test_proxy_ocsp_check import Responder, ctx_of, proxy, serial_int, world  # noqa: F401
from test_proxy_ocsp_recheck import keep_open, still_serves


def test_reload_while_a_recheck_is_in_flight(world, duet_bin, procs, echo,  # noqa: F811
                                             tmp_path):
    ca, crt, key, alice, bob, _ = world
    fake = Responder(ca, [alice[0], bob[0]])
    try:
        d = proxy(procs, duet_bin, tmp_path, ca, crt, key, echo, "rr", "--ocsp", "require",
                  "--ocsp-url", fake.url, "--ocsp-recheck", "1s", "--ocsp-timeout", "20s",
                  "--workers", "2")
        a, b = keep_open(d.port, ca, alice), keep_open(d.port, ca, bob)
        assert metrics(d.admin)["duet_proxy_generations"] == 1
        # Alice's next re-check is held at the responder: a query in flight.
        fake.behaviour[serial_int(alice[2])] = "held:revoked"
        assert fake.held_asked.wait(15), fake.asked
        # Two reloads while it is held.  The first configuration keeps alice's and bob's
        # connections; the second has none and goes when the third replaces it.
        for _ in range(2):
            mark = d.log.mark()
            d.proc.send_signal(signal.SIGHUP)
            ev = d.log.wait_event("reload", mark, timeout=15)
            assert ev["result"] == "ok", ev
        wait_metric(d.admin, "duet_proxy_generations", 2)
        # The answer comes in after the reloads: alice's connection still ends.
        mark = d.log.mark()
        fake.release.set()
        ev = d.log.wait_event("connection_closed", mark, timeout=15)
        assert ev["reason_code"] == "revoked" and ev["identity"]["serial"] == alice[2], ev
        assert " was revoked on " in ev["reason"] and fake.url in ev["reason"], ev
        a.settimeout(10)
        assert a.recv(65536) == b""
        a.close()
        # Bob's connection of the first configuration serves on; a new one gets the new.
        still_serves(b)
        b2 = keep_open(d.port, ca, bob)
        # Alice cannot come back: the answer is cached.
        s = socket.create_connection(("127.0.0.1", d.port), timeout=10)
        try:
            c = ctx_of(ca, alice).wrap_socket(s, server_hostname="localhost")
            c.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
            assert c.recv(65536) == b""
        except (ConnectionError, OSError):
            pass
        finally:
            s.close()
        assert d.log.wait(lambda e: e.get("event") == "handshake" and
                          e.get("result") == "failed" and
                          (e.get("client_cert") or {}).get("serial") == alice[2], mark,
                          timeout=15)
        # The first configuration goes with bob's last connection of it.
        b.close()
        wait_metric(d.admin, "duet_proxy_generations", 1, timeout=10)
        still_serves(b2)
        b2.close()
        assert d.proc.poll() is None
        closed = [e for e in d.log.events() if e.get("event") == "connection_closed"]
        assert len(closed) == 1, closed
    finally:
        fake.release.set()
        fake.close()
