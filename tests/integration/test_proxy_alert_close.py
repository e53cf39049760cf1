# SPDX-License-Identifier: Apache-2.0
"""A client refused at the handshake reads the proxy's alert, even when it wrote first.

With TLS 1.3 a client finishes its side of the handshake before the server has looked at its
certificate, so clients (curl, browsers, gRPC) send their request at once.  If the proxy closed
the socket right after its fatal alert, the unread request would make the kernel answer with a
TCP reset, and the client would see "connection reset by peer" instead of `certificate_required`
or `unknown_ca`: the one word that says what is wrong.  The proxy closes gracefully instead
(shutdown for writing, a short bounded drain, then close), and still frees the connection.
"""

import os
import socket
import ssl
import time

from proxyutil import DuetLog, free_port

REQUEST = b"GET / HTTP/1.1\r\nHost: localhost\r\n" + b"X-Pad: " + b"a" * 4000 + b"\r\n\r\n"


def start_proxy(procs, duet_bin, dpki, echo, tmp_path):
    port = free_port()
    log = tmp_path / "proxy.log"
    p = procs.start([duet_bin, "proxy", "--listen", "127.0.0.1:%d" % port,
                     "--target", "127.0.0.1:%d" % echo.port, "--cert", dpki.server_crt,
                     "--key", dpki.server_key, "--cacert", dpki.roots, "--allow", "any",
                     "--log", log], "proxy")
    dl = DuetLog(log, p, procs)
    dl.wait_event("start", timeout=15)
    return port, dl, p


def write_then_read(port, ctx):
    """Handshake, write a request at once, then read: the exception the client gets."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    s = ctx.wrap_socket(raw, server_hostname="localhost")
    try:
        s.sendall(REQUEST)
        time.sleep(0.05)   # the request is in the proxy's receive buffer before it refuses
        s.sendall(REQUEST)
        data = s.recv(100)
        return "read %r" % data
    except ssl.SSLError as e:
        return "alert: %s" % (e.reason or "%s %s" % (type(e).__name__, e))
    except OSError as e:
        return "socket: %s" % e
    finally:
        s.close()


def tls13_ctx(dpki, cert=None, key=None):
    ctx = ssl.create_default_context(cafile=str(dpki.roots))
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    if cert is not None:
        ctx.load_cert_chain(str(cert), str(key))
    return ctx


def test_client_without_certificate_reads_certificate_required(procs, duet_bin, dpki, echo,
                                                                tmp_path):
    port, log, _ = start_proxy(procs, duet_bin, dpki, echo, tmp_path)
    seen = [write_then_read(port, tls13_ctx(dpki)) for _ in range(10)]
    assert seen == ["alert: TLSV13_ALERT_CERTIFICATE_REQUIRED"] * 10, seen
    ev = log.wait_event("handshake", result="failed")
    assert "no certificate" in ev["reason"], ev


def test_client_of_another_ca_reads_unknown_ca(procs, duet_bin, dpki, echo, tmp_path):
    """eve's certificate comes from another CA."""
    port, log, _ = start_proxy(procs, duet_bin, dpki, echo, tmp_path)
    ctx = tls13_ctx(dpki, dpki.eve_crt, dpki.eve_key)
    seen = [write_then_read(port, ctx) for _ in range(10)]
    assert seen == ["alert: TLSV1_ALERT_UNKNOWN_CA"] * 10, seen
    ev = log.wait_event("handshake", result="failed")
    assert "not among the trusted certificates" in ev["reason"], ev


def test_lingering_refusals_do_not_pile_up(procs, duet_bin, dpki, echo, tmp_path):
    """Clients that never close after the alert cost the proxy nothing once the drain ends."""
    port, log, proc = start_proxy(procs, duet_bin, dpki, echo, tmp_path)
    base = len(os.listdir("/proc/%d/fd" % proc.pid))
    held = []
    for _ in range(50):
        raw = socket.create_connection(("127.0.0.1", port), timeout=10)
        s = tls13_ctx(dpki).wrap_socket(raw, server_hostname="localhost")
        s.sendall(REQUEST)
        held.append(s)
    time.sleep(4)
    fds = len(os.listdir("/proc/%d/fd" % proc.pid))
    assert fds <= base + 2, "the proxy holds %d descriptors, %d before" % (fds, base)
    for s in held:
        s.close()
