# SPDX-License-Identifier: Apache-2.0
"""The upstream keep-alive pool of `duet proxy` (http mode): a client that connects for one
request does not cost the upstream a new connection; a pooled connection the upstream closed
is replaced without the client noticing; a reload does not reuse the old generation's
connections; --upstream-keepalive 0 turns the pool off."""

import signal
import socket
import threading


from proxyutil import EchoUpstream, client_context, https_request
from test_proxy import proxy_args, start_duet


def one_request_per_connection(d, ctx, n, path="/"):
    """n requests, each on a new client connection; returns the statuses."""
    out = []
    for i in range(n):
        status, _, conn = https_request(d.port, "%s?i=%d" % (path, i), ctx)
        conn.close()
        out.append(status)
    return out


def test_upstream_connection_is_reused_across_client_connections(dpki, procs, tmp_path):
    up = EchoUpstream()
    try:
        d = start_duet(procs, str(dpki.duet_bin), tmp_path, "proxy",
                       proxy_args(dpki, "127.0.0.1:%d" % up.port, "--allow", "any",
                                  "--workers", "1"), "pool")
        alice = client_context(dpki.roots, dpki.alice_crt, dpki.alice_key)
        assert one_request_per_connection(d, alice, 4) == [200] * 4
        ports = {r["peer"][1] for r in up.requests}
        assert len(up.requests) == 4 and len(ports) == 1, up.requests
        m = d.metrics()
        assert m['duet_upstream_connections_total{kind="new"}'] == 1
        assert m['duet_upstream_connections_total{kind="reused"}'] == 3

        # After a reload, the old generation's idle connection is not used again.
        mark = d.log.mark()
        d.proc.send_signal(signal.SIGHUP)
        assert d.log.wait_reloads_settled(mark)[-1]["result"] == "ok"
        assert one_request_per_connection(d, alice, 2) == [200] * 2
        after = {r["peer"][1] for r in up.requests[4:]}
        assert len(after) == 1 and not after & ports, up.requests
    finally:
        up.close()


def test_upstream_keepalive_zero_turns_the_pool_off(dpki, procs, tmp_path):
    up = EchoUpstream()
    try:
        d = start_duet(procs, str(dpki.duet_bin), tmp_path, "proxy",
                       proxy_args(dpki, "127.0.0.1:%d" % up.port, "--allow", "any",
                                  "--workers", "1", "--upstream-keepalive", "0"), "nopool")
        alice = client_context(dpki.roots, dpki.alice_crt, dpki.alice_key)
        assert one_request_per_connection(d, alice, 3) == [200] * 3
        assert len({r["peer"][1] for r in up.requests}) == 3
        assert d.metrics()['duet_upstream_connections_total{kind="reused"}'] == 0
    finally:
        up.close()


class ClosingUpstream:
    """HTTP/1.1 upstream that answers the first request of each connection (keep-alive) and
    closes the connection, without an answer, on the second: the race of an upstream closing
    an idle connection just as a request is sent on it."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.answered = 0
        self.closed_unanswered = 0
        self.stop = False
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while not self.stop:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._conn, args=(c,), daemon=True).start()

    def _conn(self, c):
        buf = b""
        served = 0
        with c:
            while True:
                while b"\r\n\r\n" not in buf:
                    data = c.recv(65536)
                    if not data:
                        return
                    buf += data
                buf = buf[buf.index(b"\r\n\r\n") + 4:]
                if served == 1:
                    self.closed_unanswered += 1
                    return
                body = b"served\n"
                # Counted before the answer leaves: the test reads the count as soon as the
                # client has the response.
                self.answered += 1
                served += 1
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))

    def close(self):
        self.stop = True
        self.sock.close()


def test_a_pooled_connection_closed_by_the_upstream_is_replaced(dpki, procs, tmp_path):
    up = ClosingUpstream()
    try:
        d = start_duet(procs, str(dpki.duet_bin), tmp_path, "proxy",
                       proxy_args(dpki, "127.0.0.1:%d" % up.port, "--allow", "any",
                                  "--workers", "1"), "stale")
        alice = client_context(dpki.roots, dpki.alice_crt, dpki.alice_key)
        statuses = one_request_per_connection(d, alice, 3)
        assert statuses == [200, 200, 200], statuses
        # Each reused connection was closed under the request, and the request went again on
        # a new connection: the client never saw it.
        assert up.closed_unanswered >= 1 and up.answered == 3
        m = d.metrics()
        assert m['duet_upstream_connections_total{kind="reused"}'] >= 1
        assert not [e for e in d.log.events() if e.get("event") == "upstream_error"]
    finally:
        up.close()


def test_large_bodies_both_ways_on_one_connection(dpki, procs, tmp_path):
    """A 3 MB upload whose echo comes back as a 3 MB response, twice, then a small request,
    on one keep-alive connection: nothing lost, reordered or stuck whether duet writes at
    once or through its buffers."""
    import http.client
    import json as _json
    up = EchoUpstream()
    try:
        d = start_duet(procs, str(dpki.duet_bin), tmp_path, "proxy",
                       proxy_args(dpki, "127.0.0.1:%d" % up.port, "--allow", "any",
                                  "--workers", "1"), "large")
        alice = client_context(dpki.roots, dpki.alice_crt, dpki.alice_key)
        c = http.client.HTTPSConnection("127.0.0.1", d.port, context=alice, timeout=30)
        for i in range(2):
            body = ("%d" % i) * (3 * 1024 * 1024)
            c.request("POST", "/up%d" % i, body=body.encode(),
                      headers={"Content-Type": "text/plain"})
            r = c.getresponse()
            data = r.read()
            assert r.status == 200 and len(data) > len(body)
            echoed = _json.loads(data)
            assert echoed["path"] == "/up%d" % i and echoed["body"] == body
        c.request("GET", "/small")
        r = c.getresponse()
        assert r.status == 200 and _json.loads(r.read())["path"] == "/small"
        c.close()
    finally:
        up.close()


def test_pipelined_requests_in_separate_records_are_all_answered(dpki, procs, tmp_path):
    """Three requests written back to back (three TLS records, likely one TCP segment) before
    reading anything: duet answers all three in order, none left waiting in its TLS buffer."""
    import socket as _socket
    up = EchoUpstream()
    try:
        d = start_duet(procs, str(dpki.duet_bin), tmp_path, "proxy",
                       proxy_args(dpki, "127.0.0.1:%d" % up.port, "--allow", "any",
                                  "--workers", "1"), "pipe")
        alice = client_context(dpki.roots, dpki.alice_crt, dpki.alice_key)
        raw = _socket.create_connection(("127.0.0.1", d.port), timeout=10)
        s = alice.wrap_socket(raw, server_hostname="localhost")
        for i in range(3):
            s.sendall(b"GET /p%d HTTP/1.1\r\nHost: localhost\r\n%s\r\n" % (
                i, b"Connection: close\r\n" if i == 2 else b""))
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        s.close()
        assert data.count(b"HTTP/1.1 200 OK") == 3, data[:500]
        assert [r["path"] for r in up.requests] == ["/p0", "/p1", "/p2"]
    finally:
        up.close()
