# SPDX-License-Identifier: Apache-2.0
"""Open connections re-checked under --ocsp (issue 13): --ocsp-recheck asks the responder again
about the clients of open connections, once per certificate, and a revoked answer closes them
(docs/proxy.md#ocsp-checking-of-client-certificates).

Responders: `duet ca serve`, and the Python responder of test_proxy_ocsp_check.py, which answers
what a test wants per serial and lists the serials it was asked about.
"""

import socket
import time

import pytest

from conftest import show
from proxyutil import metrics
from test_proxy_ocsp_check import (Responder, ctx_of, proxy, read_response, serial_int,
                                   served_by_ca_serve, world)  # noqa: F401 (world: a fixture)


def keep_open(port, ca, who, path=b"/one"):
    """A keep-alive connection of who that has had one request served."""
    s = ctx_of(ca, who).wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=10),
                                    server_hostname="localhost")
    s.sendall(b"GET " + path + b" HTTP/1.1\r\nHost: localhost\r\n\r\n")
    assert read_response(s).startswith(b"HTTP/1.1 200")
    return s


def still_serves(s):
    s.sendall(b"GET /again HTTP/1.1\r\nHost: localhost\r\n\r\n")
    assert read_response(s).startswith(b"HTTP/1.1 200")


@pytest.mark.parametrize("mode", ["prefer", "require"])
def test_a_client_revoked_at_duet_ca_serve_loses_its_open_connection(make_ca, duet_bin, procs,
                                                                     echo, tmp_path, mode):
    """Alice and bob keep connections open; alice is revoked at `duet ca serve` and nobody
    connects again: within a round or two of --ocsp-recheck the proxy asks again, closes
    alice's connection with the responder's sentence, and bob's keeps serving."""
    ca, serve, url, (crt, key), alice, bob = served_by_ca_serve(make_ca, duet_bin, "Recheck Corp")
    try:
        d = proxy(procs, duet_bin, tmp_path, ca, crt, key, echo, "recheck", "--ocsp", mode,
                  "--ocsp-recheck", "1s", "--workers", "2")
        a, b = keep_open(d.port, ca, alice), keep_open(d.port, ca, bob)
        mark = d.log.mark()
        p = ca.duet("cert", "revoke", alice[2], "--ca-dir", ca.dir, "--reason", "keyCompromise")
        assert p.returncode == 0, show(p)
        ev = d.log.wait_event("connection_closed", mark, timeout=15)
        assert ev["reason_code"] == "revoked" and ev["identity"]["serial"] == alice[2], ev
        assert ev["reason"].startswith("open connection: certificate CN=alice"), ev
        assert " was revoked on " in ev["reason"], ev
        assert "(reason: keyCompromise) by the OCSP responder %s" % url in ev["reason"], ev
        a.settimeout(10)
        assert a.recv(65536) == b""
        still_serves(b)
        time.sleep(2.5)  # more rounds: bob's good answers change nothing
        still_serves(b)
        closed = [e for e in d.log.events() if e.get("event") == "connection_closed"]
        assert len(closed) == 1, closed
        m = metrics(d.admin)
        assert m['duet_connections_closed_total{listener="proxy",reason="revoked"}'] == 1, m
        assert m['duet_ocsp_queries_total{listener="proxy",result="revoked"}'] >= 1, m
        a.close()
        b.close()
    finally:
        serve.stop()


@pytest.mark.parametrize("mode", ["prefer", "require"])
@pytest.mark.parametrize("how", ["http500", "unknown"])
def test_a_failing_responder_leaves_open_connections_open(world, duet_bin, procs, echo,
                                                          tmp_path, mode, how):
    """The responder fails (or no longer knows the certificate) when asked again: the
    connection stays open under prefer and require alike, with an `ocsp_recheck_failed` line."""
    ca, crt, key, alice, _, _ = world
    fake = Responder(ca, [alice[0]])
    try:
        d = proxy(procs, duet_bin, tmp_path, ca, crt, key, echo, "fails", "--ocsp", mode,
                  "--ocsp-url", fake.url, "--ocsp-recheck", "1s")
        a = keep_open(d.port, ca, alice)
        mark = d.log.mark()
        fake.behaviour[serial_int(alice[2])] = how
        ev = d.log.wait_event("ocsp_recheck_failed", mark, timeout=15)
        assert ev["serial"] == alice[2] and ev["outcome"] == "kept open", ev
        assert ev["responder"] == fake.url, ev
        if how == "http500":
            assert ev["result"] == "error" and ev["code"] == "http_status", ev
            assert "answered HTTP 500" in ev["reason"], ev
        else:
            assert ev["result"] == "unknown" and ev["code"] == "unknown", ev
            assert 'does not know the certificate: status "unknown"' in ev["reason"], ev
        still_serves(a)
        assert not [e for e in d.log.events() if e.get("event") == "connection_closed"]
        a.close()
    finally:
        fake.close()


def test_one_query_per_certificate_not_per_connection(world, duet_bin, procs, echo, tmp_path):
    """Three open connections of alice and one of bob on one worker: each round asks about
    each certificate once; a connection that closed is not asked about any more."""
    ca, crt, key, alice, bob, _ = world
    fake = Responder(ca, [alice[0], bob[0]])
    try:
        d = proxy(procs, duet_bin, tmp_path, ca, crt, key, echo, "once", "--ocsp", "require",
                  "--ocsp-url", fake.url, "--ocsp-recheck", "1s", "--workers", "1",
                  "--no-session-tickets")
        conns = [keep_open(d.port, ca, alice) for _ in range(3)]
        conns.append(keep_open(d.port, ca, bob))
        sa, sb = serial_int(alice[2]), serial_int(bob[2])
        assert fake.asked == [sa, sb], fake.asked  # the handshakes: the cache answers twice
        t0 = time.monotonic()
        deadline = t0 + 20
        while fake.asked.count(sa) < 4 and time.monotonic() < deadline:
            time.sleep(0.05)
        elapsed = time.monotonic() - t0
        na, nb = fake.asked.count(sa), fake.asked.count(sb)
        assert na >= 4, fake.asked
        # At most one question per certificate per 1-second round (per connection: 3 a round).
        assert na - 1 <= elapsed + 1 and abs(na - nb) <= 1, (elapsed, fake.asked)
        for s in conns[:3]:
            still_serves(s)
        conns[3].close()
        time.sleep(1.5)
        nb = fake.asked.count(sb)
        time.sleep(2.5)
        assert fake.asked.count(sb) == nb, fake.asked
        for s in conns[:3]:
            s.close()
    finally:
        fake.close()


def test_the_flag_is_checked(world, run):
    ca, crt, key, _, _, _ = world
    base = ["proxy", "--listen", "127.0.0.1:1", "--target", "127.0.0.1:1", "--allow", "any",
            "--cert", crt, "--key", key, "--cacert", ca.root, "--ocsp", "prefer"]
    p = run(*base, "--ocsp-recheck", "often", "--check")
    assert p.returncode == 2 and "--ocsp-recheck" in p.stderr, show(p)
    p = run(*base, "--ocsp-recheck", "30s", "--check")
    assert p.returncode == 0 and "configuration OK" in p.stdout, show(p)
