# SPDX-License-Identifier: Apache-2.0
"""Signals to `duet proxy` (issue 11, B). Graceful shutdown: SIGTERM stops accepting, lets the
requests in flight finish for at most --drain-timeout, closes idle keep-alive connections at
once, and answers /readyz with 503 meanwhile; a second SIGTERM ends the process at once.
SIGUSR1 reopens the log file after logrotate moved it.  Under systemd (Type=notify), the
proxy says READY, RELOADING and STOPPING on $NOTIFY_SOCKET.

The upstream is a raw HTTP server whose `/slow/N` answers after N tenths of a second, so a
request can be in flight when the signal arrives.
"""

import os
import signal
import socket
import ssl
import time

from proxyutil import DuetLog, TcpServer, admin_get, client_context, free_port, statuses
from test_security_proxy_ops import ALICE, pargs, start


class SlowAnswers(TcpServer):
    """HTTP/1.1 keep-alive upstream: `GET /slow/N` is answered after N/10 s, anything else at
    once, each with a 200 and the path as the body."""

    def _conn(self, c):
        buf = b""
        c.settimeout(30)
        try:
            while True:
                head, buf = self.recv_head(c, buf)
                if head is None:
                    return
                path = head.split(b" ")[1]
                if path.startswith(b"/slow/"):
                    time.sleep(int(path[6:]) / 10)
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(path), path))
        except OSError:
            pass
        finally:
            c.close()


def tls(port, dpki):
    ctx = client_context(dpki.roots, dpki.alice_crt, dpki.alice_key)
    return ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=10),
                           server_hostname="localhost")


def get(s, path):
    s.sendall(b"GET %s HTTP/1.1\r\nHost: localhost\r\n\r\n" % path)


def read_all(s):
    out = b""
    try:
        while True:
            d = s.recv(65536)
            if not d:
                break
            out += d
    except (OSError, ssl.SSLError):
        pass
    return out


def proxy(procs, dpki, tmp_path, up, *extra):
    return start(procs, dpki.duet_bin, tmp_path, "proxy",
                 pargs(dpki, "127.0.0.1:%d" % up.port, "--allow", ALICE, "--workers", "2",
                       *extra), "drain")


def test_sigterm_lets_a_request_in_flight_finish_and_refuses_new_ones(dpki, procs, tmp_path):
    up = SlowAnswers()
    d = proxy(procs, dpki, tmp_path, up)
    idle = tls(d.port, dpki)           # an idle keep-alive connection: closed at once
    get(idle, b"/fast")
    assert idle.recv(65536).startswith(b"HTTP/1.1 200")
    busy = tls(d.port, dpki)
    get(busy, b"/slow/20")             # answered 2 s later
    time.sleep(0.3)
    mark = d.log.mark()
    t0 = time.monotonic()
    d.proc.send_signal(signal.SIGTERM)
    ev = d.log.wait_event("shutdown", mark, phase="draining")
    assert ev["open_connections"] == 2 and ev["drain_timeout_ms"] == 30000, ev
    # The idle connection is closed without waiting for the slow one.
    assert read_all(idle) == b""
    assert time.monotonic() - t0 < 1.5
    # While draining: no new connection, and /readyz says so.
    try:
        socket.create_connection(("127.0.0.1", d.port), timeout=2).close()
        refused = False
    except ConnectionRefusedError:
        refused = True
    assert refused, "a new connection was accepted while draining"
    status, text = admin_get(d.admin, "/readyz")
    assert status == 503 and "draining" in text
    # The request in flight gets its whole answer, then the connection and the process end.
    resp = read_all(busy)
    assert statuses(resp) == [200] and resp.endswith(b"/slow/20"), resp
    d.proc.wait(timeout=5)
    assert d.proc.returncode == 0
    took = time.monotonic() - t0
    assert 1.5 < took < 4, took
    ev = d.log.wait_event("shutdown", mark, phase="drained")
    assert ev["open_connections"] == 0
    up.close()


def wait_draining_line(d, mark_bytes, timeout=10):
    """Read the log without pausing until the `shutdown` event with phase `draining` is in it
    (DuetLog.wait polls every 50 ms, which would give the workers time to close their
    listeners and hide a line written too early)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(d.log.path, "rb") as f:
            f.seek(mark_bytes)
            if b'"phase":"draining"' in f.read():
                return
    raise AssertionError("no draining line in %s within %ss" % (d.log.path, timeout))


def test_once_the_log_says_draining_no_worker_accepts_a_connection(dpki, procs, tmp_path):
    """The draining line means every worker has closed its listening sockets: a client that
    connects right after it is refused by the kernel, whichever worker's socket it would have
    reached.  Several rounds with four workers, many attempts each, right after the line."""
    up = SlowAnswers()
    for rnd in range(4):
        d = proxy(procs, dpki, tmp_path / ("round%d" % rnd), up, "--workers", "4")
        busy = tls(d.port, dpki)
        get(busy, b"/slow/10")         # keeps the process draining for a second
        time.sleep(0.2)
        size = d.log.path.stat().st_size
        d.proc.send_signal(signal.SIGTERM)
        wait_draining_line(d, size)
        accepted = 0
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", d.port), timeout=2).close()
                accepted += 1
            except ConnectionRefusedError:
                pass
        assert accepted == 0, "round %d: %d of 100 connections accepted after the draining " \
            "line" % (rnd, accepted)
        assert statuses(read_all(busy)) == [200]
        d.proc.wait(timeout=10)
        assert d.proc.returncode == 0
    up.close()


def test_drain_timeout_bounds_the_wait(dpki, procs, tmp_path):
    up = SlowAnswers()
    d = proxy(procs, dpki, tmp_path, up, "--drain-timeout", "1s")
    s = tls(d.port, dpki)
    get(s, b"/slow/100")               # 10 s: longer than the drain timeout
    time.sleep(0.3)
    mark = d.log.mark()
    t0 = time.monotonic()
    d.proc.send_signal(signal.SIGTERM)
    d.proc.wait(timeout=5)
    took = time.monotonic() - t0
    assert 0.9 < took < 2.5, took
    ev = d.log.wait_event("shutdown", mark, phase="drain_timeout")
    assert ev["open_connections"] == 1
    s.close()
    up.close()


def test_second_sigterm_ends_at_once(dpki, procs, tmp_path):
    up = SlowAnswers()
    d = proxy(procs, dpki, tmp_path, up)
    s = tls(d.port, dpki)
    get(s, b"/slow/100")
    time.sleep(0.3)
    mark = d.log.mark()
    t0 = time.monotonic()
    d.proc.send_signal(signal.SIGTERM)
    d.log.wait_event("shutdown", mark, phase="draining")
    d.proc.send_signal(signal.SIGTERM)
    d.proc.wait(timeout=5)
    assert time.monotonic() - t0 < 2
    assert d.log.wait_event("shutdown", mark, phase="forced")["open_connections"] == 1
    s.close()
    up.close()


def test_a_keepalive_client_gets_its_response_then_the_connection_closes(dpki, procs, tmp_path):
    """A request that arrives on a kept-alive connection while draining (before it could be
    closed as idle: it was mid-response) is answered, and then the connection closes."""
    up = SlowAnswers()
    d = proxy(procs, dpki, tmp_path, up)
    s = tls(d.port, dpki)
    get(s, b"/slow/10")
    time.sleep(0.2)
    mark = d.log.mark()
    d.proc.send_signal(signal.SIGTERM)
    d.log.wait_event("shutdown", mark, phase="draining")
    resp = read_all(s)
    assert statuses(resp) == [200], resp
    d.proc.wait(timeout=5)
    assert d.proc.returncode == 0
    up.close()


def test_sigusr1_reopens_the_log_after_it_was_moved(dpki, procs, tmp_path):
    up = SlowAnswers()
    d = proxy(procs, dpki, tmp_path, up)
    s = tls(d.port, dpki)
    get(s, b"/before")
    assert s.recv(65536).startswith(b"HTTP/1.1 200")
    d.log.wait_event("authz", 0, path="/before")
    rotated = d.log.path.with_name(d.log.path.name + ".1")
    d.log.path.rename(rotated)
    d.proc.send_signal(signal.SIGUSR1)
    deadline = time.monotonic() + 5
    while not d.log.path.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert d.log.path.exists(), "no new log file after SIGUSR1"
    ev = d.log.wait_event("log_reopen", 0)
    assert ev["signal"] == "SIGUSR1"
    get(s, b"/after")                  # on the same connection, a worker thread's line
    assert s.recv(65536).startswith(b"HTTP/1.1 200")
    d.log.wait_event("authz", 0, path="/after")
    old = rotated.read_text()
    assert '"/before"' in old and '"/after"' not in old
    assert '"/before"' not in d.log.path.read_text()
    s.close()
    up.close()


def test_systemd_notify_ready_reloading_stopping(dpki, procs, tmp_path):
    """Type=notify: READY=1 once the sockets listen, RELOADING=1 (with MONOTONIC_USEC) then
    READY=1 around a SIGHUP reload, STOPPING=1 on SIGTERM, on $NOTIFY_SOCKET."""
    up = SlowAnswers()
    sock_path = tmp_path / "notify.sock"
    ns = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    ns.bind(str(sock_path))
    ns.settimeout(10)
    port, log = free_port(), tmp_path / "notify.log"
    p = procs.start([dpki.duet_bin, "proxy", "--listen", "127.0.0.1:%d" % port,
                     *pargs(dpki, "127.0.0.1:%d" % up.port, "--allow", ALICE),
                     "--log", log], "notify", env=dict(os.environ, NOTIFY_SOCKET=str(sock_path)))
    dl = DuetLog(log, p, procs)
    ready = ns.recv(4096).decode()
    assert "READY=1" in ready.split("\n"), ready
    assert dl.events() and dl.events()[0]["event"] == "start"  # logged before READY
    p.send_signal(signal.SIGHUP)
    reloading = ns.recv(4096).decode().split("\n")
    assert "RELOADING=1" in reloading, reloading
    usec = [ln for ln in reloading if ln.startswith("MONOTONIC_USEC=")]
    assert len(usec) == 1 and int(usec[0].split("=")[1]) > 0, reloading
    again = ns.recv(4096).decode()
    assert "READY=1" in again.split("\n"), again
    dl.wait_event("reload", 0, result="ok")
    p.send_signal(signal.SIGTERM)
    assert "STOPPING=1" in ns.recv(4096).decode().split("\n")
    p.wait(timeout=10)
    ns.close()
    up.close()
