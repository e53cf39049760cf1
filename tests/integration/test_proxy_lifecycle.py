# SPDX-License-Identifier: Apache-2.0
"""The life of a connection through `duet proxy` after its handshake (issue 11, B).

- A reload that makes an open connection's client certificate invalid (a new CRL revokes it,
  or its CA leaves the trust anchors) closes that connection: in http mode after the response
  in flight, in tcp mode at once; logged as `connection_closed` with the reason and counted.
  Connections whose certificate is still good carry on.
- --max-connection-lifetime bounds every connection the same way.
- A handshake refused for its certificate logs what the client presented (subject, serial,
  issuer), marked as unverified, so an operator can tell who was refused.
(WebSocket connections, which end the same way: test_proxy_websocket.py.)
"""

import os
import signal
import socket
import ssl
import time

from proxyutil import (DuetLog, TcpServer, cert_serial, free_port, metrics,
                       openssl)
from proxyutil import closed_by_peer, mtls_connect as connect, read_response as response
from proxyutil import send_get as request
from test_proxy_signals import SlowAnswers
from test_security_proxy_ops import ALICE, start

ANY_TEST_CORP = "uri:spiffe://test-corp/*"


# --- helpers ----------------------------------------------------------------------------------

def args(dpki, target, *extra, cacert=None, crl=None):
    a = ["--target", target, "--cert", dpki.server_crt, "--key", dpki.server_key,
         "--cacert", cacert or dpki.roots]
    if crl is not None:
        a += ["--crl", crl]
    return a + list(extra)


def reload_with(d, mark):
    d.proc.send_signal(signal.SIGHUP)
    reloads = d.log.wait_reloads_settled(mark)
    assert reloads[-1]["result"] == "ok", reloads


class Echo(TcpServer):
    """TCP upstream echoing what it reads."""

    def _conn(self, c):
        try:
            while True:
                d = c.recv(65536)
                if not d:
                    return
                c.sendall(d)
        except OSError:
            pass
        finally:
            c.close()


# --- revocation reaching open connections -----------------------------------------------------

def test_reload_with_a_crl_revoking_a_client_closes_its_open_connection(dpki, procs, tmp_path):
    carol_crt, carol_key = dpki.issue("client", "carol-lc")
    dave_crt, dave_key = dpki.issue("client", "dave-lc")
    crl = tmp_path / "crl.pem"
    dpki.gen_crl(crl)
    up = SlowAnswers()
    d = start(procs, dpki.duet_bin, tmp_path, "proxy",
              args(dpki, "127.0.0.1:%d" % up.port, "--allow", ANY_TEST_CORP, crl=crl), "lc")
    alice = connect(d.port, dpki, dpki.alice_crt, dpki.alice_key)
    carol = connect(d.port, dpki, carol_crt, carol_key)
    dave = connect(d.port, dpki, dave_crt, dave_key)
    for s in (alice, carol, dave):
        request(s, b"/before")
        head, body = response(s)
        assert head.startswith(b"HTTP/1.1 200") and body == b"/before"
    # The CA's work first (signing a CRL takes a moment, more on a sanitizer build), so that
    # the reload surely lands while dave's slow request is in flight: it is answered, then
    # his connection closes.
    dpki.revoke(carol_crt)
    dpki.revoke(dave_crt)
    staged = tmp_path / "crl.new"
    dpki.gen_crl(staged)
    request(dave, b"/slow/40")
    time.sleep(0.3)
    mark = d.log.mark()
    os.replace(staged, crl)
    reload_with(d, mark)

    assert closed_by_peer(carol), "carol's idle connection stayed open after her revocation"
    head, body = response(dave)
    assert head is not None and head.startswith(b"HTTP/1.1 200") and body == b"/slow/40", \
        "the request in flight was cut: %r" % body
    assert b"connection: close" in head.lower(), head
    assert closed_by_peer(dave), "dave's connection stayed open after his revocation"
    # alice is not revoked: her connection carries on.
    request(alice, b"/after")
    head, body = response(alice)
    assert head.startswith(b"HTTP/1.1 200") and body == b"/after"

    for name, crt in (("carol-lc", carol_crt), ("dave-lc", dave_crt)):
        ev = d.log.wait(lambda e, n=name: e.get("event") == "connection_closed" and
                        (e.get("identity") or {}).get("name", "").endswith(n), mark)
        assert ev["reason_code"] == "revoked", ev
        assert "revoked" in ev["reason"], ev
        assert ev["identity"]["serial"] == cert_serial(crt), ev
        assert ev["listener"] and ev["peer"].startswith("127.0.0.1:"), ev
    assert not [e for e in d.log.since(mark, "connection_closed")
                if "alice" in (e.get("identity") or {}).get("name", "")]
    m = metrics(d.admin)
    assert sum(v for k, v in m.items() if k.startswith("duet_connections_closed_total") and
               'reason="revoked"' in k) == 2, m
    alice.close()


def test_reload_removing_a_trust_anchor_closes_connections_from_that_ca(dpki, procs, tmp_path):
    both = tmp_path / "both.pem"
    other_root = dpki.dir / "other-roots.pem"
    other_root.write_text(dpki.duet("ca", "roots", "--ca-dir", dpki.other_ca))
    both.write_text(dpki.roots.read_text() + other_root.read_text())
    up = Echo()
    d = start(procs, dpki.duet_bin, tmp_path, "proxy",
              args(dpki, "127.0.0.1:%d" % up.port, "--mode", "tcp", "--allow", "any",
                   cacert=both), "anchors")
    eve = connect(d.port, dpki, dpki.eve_crt, dpki.eve_key)
    alice = connect(d.port, dpki, dpki.alice_crt, dpki.alice_key)
    for s in (eve, alice):
        s.sendall(b"ping")
        assert s.recv(16) == b"ping"

    mark = d.log.mark()
    staged = tmp_path / "both.new"
    staged.write_text(dpki.roots.read_text())
    os.replace(staged, both)
    reload_with(d, mark)

    assert closed_by_peer(eve), "eve's tcp connection stayed open after her CA was removed"
    alice.sendall(b"still")
    assert alice.recv(16) == b"still"
    ev = d.log.wait(lambda e: e.get("event") == "connection_closed", mark)
    assert ev["reason_code"] == "unknown_ca", ev
    assert "eve" in ev["identity"]["name"], ev
    alice.close()


# --- --max-connection-lifetime ----------------------------------------------------------------

def test_max_connection_lifetime_closes_keepalive_after_the_response(dpki, procs, tmp_path):
    up = SlowAnswers()
    d = start(procs, dpki.duet_bin, tmp_path, "proxy",
              args(dpki, "127.0.0.1:%d" % up.port, "--allow", ALICE,
                   "--max-connection-lifetime", "2s"), "lifetime")
    s = connect(d.port, dpki, dpki.alice_crt, dpki.alice_key)
    t0 = time.monotonic()
    done = 0
    last = None
    while time.monotonic() - t0 < 8:
        request(s, b"/slow/4")           # each answered 0.4 s later: the connection stays busy
        head, body = response(s)
        if head is None:
            break
        assert head.startswith(b"HTTP/1.1 200") and body == b"/slow/4", (head, body)
        done += 1
        last = head
        if b"connection: close" in head.lower():
            break
    elapsed = time.monotonic() - t0
    assert last is not None and b"connection: close" in last.lower(), \
        "the response that crossed the lifetime did not say Connection: close: %r" % last
    assert closed_by_peer(s)
    assert 2.0 <= elapsed < 4.0, elapsed
    assert done >= 4
    ev = d.log.wait_event("connection_closed")
    assert ev["reason_code"] == "max_lifetime", ev
    assert "--max-connection-lifetime" in ev["reason"], ev


def test_max_connection_lifetime_in_tcp_mode(dpki, procs, tmp_path):
    up = Echo()
    d = start(procs, dpki.duet_bin, tmp_path, "proxy",
              args(dpki, "127.0.0.1:%d" % up.port, "--mode", "tcp", "--allow", ALICE,
                   "--max-connection-lifetime", "1500ms"), "lifetime-tcp")
    s = connect(d.port, dpki, dpki.alice_crt, dpki.alice_key)
    t0 = time.monotonic()
    s.sendall(b"x")
    assert s.recv(1) == b"x"
    assert closed_by_peer(s, timeout=5)
    assert 1.4 <= time.monotonic() - t0 < 3.5
    ev = d.log.wait_event("connection_closed")
    assert ev["reason_code"] == "max_lifetime", ev


def test_max_connection_lifetime_bad_value_is_refused(dpki, procs, tmp_path, run):
    p = run("proxy", "--listen", "127.0.0.1:%d" % free_port(),
            *args(dpki, "127.0.0.1:9", "--allow", ALICE, "--max-connection-lifetime", "soon"))
    assert p.returncode == 2, p
    assert "--max-connection-lifetime" in p.stderr and "soon" in p.stderr, p.stderr


def test_max_connection_lifetime_from_yaml(dpki, procs, tmp_path):
    up = Echo()
    port = free_port()
    cfg = tmp_path / "proxy.yaml"
    cfg.write_text("""\
listeners:
  - name: t
    listen: 127.0.0.1:%(port)d
    mode: tcp
    cert: %(cert)s
    key: %(key)s
    cacert: %(roots)s
    target: [127.0.0.1:%(up)d]
    rules:
      - {name: alice, allow: ["%(alice)s"]}
limits:
  max_connection_lifetime: 1s
log: %(log)s
workers: 1
""" % dict(port=port, cert=dpki.server_crt, key=dpki.server_key, roots=dpki.roots,
           up=up.port, alice=ALICE, log=tmp_path / "y.log"))
    p = procs.start([dpki.duet_bin, "proxy", "--config", cfg], "yaml")
    log = DuetLog(tmp_path / "y.log", p, procs)
    log.wait_event("start", timeout=15)
    s = connect(port, dpki, dpki.alice_crt, dpki.alice_key)
    assert closed_by_peer(s, timeout=5)
    assert log.wait_event("connection_closed")["reason_code"] == "max_lifetime"


# --- what a refused client presented ----------------------------------------------------------

def test_refused_handshake_logs_the_certificate_presented(dpki, procs, tmp_path):
    up = Echo()
    d = start(procs, dpki.duet_bin, tmp_path, "proxy",
              args(dpki, "127.0.0.1:%d" % up.port, "--allow", ALICE), "presented")
    for crt, key, code in ((dpki.eve_crt, dpki.eve_key, "unknown_ca"),
                           (dpki.expired_crt, dpki.expired_key, "expired")):
        mark = d.log.mark()
        try:
            s = connect(d.port, dpki, crt, key)
            s.settimeout(5)
            s.recv(1)
        except (OSError, ssl.SSLError):
            pass
        ev = d.log.wait(lambda e: e.get("event") == "handshake" and e.get("result") == "failed",
                        mark)
        assert ev["reason_code"] == code, ev
        assert ev["identity"] is None, ev
        pc = ev["client_cert"]
        assert pc["verified"] is False, ev
        assert pc["serial"] == cert_serial(crt), ev
        subj = openssl("x509", "-in", crt, "-noout", "-subject", "-nameopt", "RFC2253")
        iss = openssl("x509", "-in", crt, "-noout", "-issuer", "-nameopt", "RFC2253")
        assert pc["subject"] == subj.strip().split("=", 1)[1], (pc, subj)
        assert pc["issuer"] == iss.strip().split("=", 1)[1], (pc, iss)
    # No certificate: nothing presented, no field.
    mark = d.log.mark()
    ctx = ssl.create_default_context(cafile=str(dpki.roots))
    try:
        s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", d.port), timeout=5),
                            server_hostname="localhost")
        s.recv(1)
    except (OSError, ssl.SSLError):
        pass
    ev = d.log.wait(lambda e: e.get("event") == "handshake" and e.get("result") == "failed", mark)
    assert ev["reason_code"] == "no_cert" and "client_cert" not in ev, ev
