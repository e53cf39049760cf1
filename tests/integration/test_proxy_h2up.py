# SPDX-License-Identifier: Apache-2.0
"""HTTP/2 upstreams of `duet proxy` (upstream_protocol h2c, h2; issue 15) against real servers
and a hostile one.

nghttp (Debian's nghttp2-client) through the proxy to an h2c upstream; h2 over mTLS to an
upstream that chooses h2 by ALPN (and a refusal of one that does not); and a raw-frame fake
upstream that answers with what RFC 9113 forbids (connection-specific fields, a header list past
max_header_size, frames that break the protocol, floods of RST_STREAM) or resets and refuses
streams: the client gets a 502 with the reason, or the upstream's RST_STREAM, never the bytes,
and the proxy serves the next request.
"""

import socket
import ssl
import struct
import subprocess
import threading
import time

import pytest

from proxyutil import TcpServer, free_port, start_http_proxy
from test_proxy_h2 import (ACK, CONTINUATION, DATA, END_HEADERS, END_STREAM, GOAWAY, HEADERS,
                           PREFACE, RST_STREAM, SETTINGS, RawH2, curl, frame, good, hpack,
                           rst_code, tool, url)

ALICE = "spiffe://test-corp/alice"
RULES = """\
      - {name: alice-public, allow: ["uri:%s"], path_prefix: /public/}
""" % ALICE

def headers(stream, fields, end=False):
    """A header block as HEADERS and as many CONTINUATION frames as 16 KiB frames need."""
    block = hpack(fields)
    chunks = [block[i:i + 16384] for i in range(0, len(block), 16384)] or [b""]
    out = b""
    for i, ch in enumerate(chunks):
        last = END_HEADERS if i == len(chunks) - 1 else 0
        if i == 0:
            out += frame(HEADERS, last | (END_STREAM if end else 0), stream, ch)
        else:
            out += frame(CONTINUATION, last, stream, ch)
    return out


class FakeH2Upstream(TcpServer):
    """An h2c server speaking frames by hand: each request's HEADERS goes to
    answer(conn_number, stream_id), whose bytes are sent back as they are.  Subclasses may
    take every frame (on_frame) and act after each read (after_frames), with per-connection
    state from new_state()."""

    def __init__(self, answer):
        self.answer = answer
        self.streams = []
        super().__init__()

    def new_state(self):
        return None

    def on_frame(self, c, n, st, ftype, flags, stream, payload):
        """One frame from the proxy; False ends the connection."""
        if ftype == SETTINGS and not flags & ACK:
            c.sendall(frame(SETTINGS, ACK, 0))
        elif ftype == HEADERS:
            with self.lock:
                self.streams.append((n, stream))
            out = self.answer(n, stream)
            if out is None:
                return False
            c.sendall(out)
        return True

    def after_frames(self, c, n, st):
        pass

    def _conn(self, c):
        n = self.accepted
        st = self.new_state()
        buf = b""
        c.sendall(frame(SETTINGS, 0, 0))
        try:
            while len(buf) < len(PREFACE):
                d = c.recv(65536)
                if not d:
                    return
                buf += d
            buf = buf[len(PREFACE):]
            while True:
                while len(buf) >= 9 and len(buf) >= 9 + int.from_bytes(buf[:3], "big"):
                    ln = int.from_bytes(buf[:3], "big")
                    ftype, flags = buf[3], buf[4]
                    stream = int.from_bytes(buf[5:9], "big") & 0x7fffffff
                    payload = buf[9:9 + ln]
                    buf = buf[9 + ln:]
                    if not self.on_frame(c, n, st, ftype, flags, stream, payload):
                        return
                self.after_frames(c, n, st)
                d = c.recv(65536)
                if not d:
                    return
                buf += d
        except OSError:
            return
        finally:
            c.close()


def ok(stream, body=b"fine"):
    return headers(stream, [(":status", "200"), ("content-length", str(len(body)))]) + \
        frame(DATA, END_STREAM, stream, body)


def h2c_proxy(dpki, procs, tmp_path, port, extra=""):
    return start_http_proxy(dpki, procs, tmp_path, port, rules=RULES,
                            extra_yaml="    upstream_protocol: h2c\n" + extra)


def test_nghttp_through_the_proxy_to_an_h2c_upstream(dpki, procs, tmp_path):
    up = FakeH2Upstream(lambda n, s: headers(s, [(":status", "200"), ("x-up", "yes")]) +
                        frame(DATA, 0, s, b"hello ") +
                        headers(s, [("x-trailer", "t1")], end=True))
    px = h2c_proxy(dpki, procs, tmp_path, up.port)
    for paths in (["/public/a"], ["/public/b", "/public/c"]):
        p = subprocess.run([tool("nghttp"), "-nv", "--cert", str(dpki.alice_crt), "--key",
                            str(dpki.alice_key)] + [url(px, x) for x in paths],
                           capture_output=True, text=True, timeout=30)
        assert p.returncode == 0, p.stdout + p.stderr
        assert p.stdout.count("x-up: yes") == len(paths), p.stdout
        assert p.stdout.count("x-trailer: t1") == len(paths), p.stdout
    # The second client's two streams went on the connection the first one opened.
    assert up.accepted == 1 and len(up.streams) == 3, up.streams


@pytest.mark.parametrize("what,answer,reason", [
    ("connection-specific field",
     lambda n, s: headers(s, [(":status", "200"), ("connection", "close")], end=True),
     "malformed HTTP/2 response"),
    ("transfer-encoding field",
     lambda n, s: headers(s, [(":status", "200"), ("transfer-encoding", "chunked")], end=True),
     "malformed HTTP/2 response"),
    ("header list past max_header_size",
     lambda n, s: headers(s, [(":status", "200")] +
                          [("x-big-%d" % i, "v" * 1000) for i in range(40)], end=True),
     "header list is larger than 16384 bytes"),
    ("DATA on stream 0",
     lambda n, s: frame(DATA, 0, 0, b"smuggled"),
     "the upstream broke HTTP/2"),
    ("no :status",
     lambda n, s: headers(s, [("x-a", "1")], end=True),
     "malformed HTTP/2 response"),
])
def test_hostile_upstream_gets_a_502_with_the_reason(dpki, procs, tmp_path, what, answer, reason):
    up = FakeH2Upstream(answer)
    px = h2c_proxy(dpki, procs, tmp_path, up.port)
    mark = px.log.mark()
    status, version, body = curl(dpki, url(px, "/public/x"), "--http2")
    assert (status, version) == (502, "2"), body
    assert b"smuggled" not in body and b"close" not in body
    ev = px.log.wait_event("upstream_error", mark)
    assert reason in ev["error"], ev
    assert px.proc.poll() is None


def test_rst_flood_from_the_upstream_is_harmless(dpki, procs, tmp_path):
    def answer(n, s):
        return ok(s) + b"".join(frame(RST_STREAM, 0, s, struct.pack(">I", 8))
                                for _ in range(5000))
    up = FakeH2Upstream(answer)
    px = h2c_proxy(dpki, procs, tmp_path, up.port)
    for i in range(3):
        status, _, body = curl(dpki, url(px, "/public/%d" % i), "--http2")
        assert (status, body) == (200, b"fine")
    assert px.proc.poll() is None


def test_upstream_reset_reaches_the_client_as_reset(dpki, procs, tmp_path):
    up = FakeH2Upstream(lambda n, s: headers(s, [(":status", "200")]) +
                        frame(RST_STREAM, 0, s, struct.pack(">I", 8)))  # CANCEL
    px = h2c_proxy(dpki, procs, tmp_path, up.port)
    p = subprocess.run([tool("nghttp"), "-nv", "--cert", str(dpki.alice_crt), "--key",
                        str(dpki.alice_key), url(px, "/public/r")],
                       capture_output=True, text=True, timeout=30)
    assert "recv RST_STREAM frame" in p.stdout and "error_code=CANCEL" in p.stdout, p.stdout


def test_goaway_before_the_stream_is_retried_on_a_new_connection(dpki, procs, tmp_path):
    def answer(n, s):
        if n == 1:  # the first connection processes nothing: GOAWAY last_stream_id 0
            return frame(GOAWAY, 0, 0, struct.pack(">II", 0, 0))
        return ok(s, b"second")
    up = FakeH2Upstream(answer)
    px = h2c_proxy(dpki, procs, tmp_path, up.port)
    status, _, body = curl(dpki, url(px, "/public/g"), "--http2")
    assert (status, body) == (200, b"second")
    assert up.accepted == 2


def test_upstream_refusing_the_stream_with_a_body_sent_is_refused_to_the_client(
        dpki, procs, tmp_path):
    up = FakeH2Upstream(lambda n, s: frame(RST_STREAM, 0, s, struct.pack(">I", 7)))
    px = h2c_proxy(dpki, procs, tmp_path, up.port)
    p = subprocess.run([tool("nghttp"), "-nv", "--cert", str(dpki.alice_crt), "--key",
                        str(dpki.alice_key), url(px, "/public/r")],
                       capture_output=True, text=True, timeout=30)
    # Refused each time it is sent (three times), then refused to the client.
    assert "error_code=REFUSED_STREAM" in p.stdout, p.stdout
    assert len(up.streams) == 3, up.streams


def test_unreachable_upstream_is_502(dpki, procs, tmp_path):
    px = h2c_proxy(dpki, procs, tmp_path, free_port())
    mark = px.log.mark()
    status, _, body = curl(dpki, url(px, "/public/u"), "--http2")
    assert status == 502 and b"could not be reached" in body, body
    px.log.wait_event("upstream_error", mark)


@pytest.mark.parametrize("extra,words", [
    ("    upstream_protocol: h2\n",
     "web: upstream_protocol h2 is HTTP/2 over TLS: it needs upstream_tls (upstream_cacert); "
     "for plaintext use h2c"),
    ("    upstream_protocol: h2c\n    upstream_tls: {cacert: ROOTS}\n",
     "web: upstream_protocol h2c is plaintext but upstream_tls is set; expected h2 (HTTP/2 over "
     "TLS) or auto"),
    ("    upstream_protocol: h2c\n    mode: tcp\n",
     "web: upstream_protocol applies to http mode only; tcp mode relays bytes"),
])
def test_config_refuses_upstream_protocols_that_cannot_work(dpki, tmp_path, extra, words):
    cfg = tmp_path / "p.yaml"
    cfg.write_text("""\
listeners:
  - name: web
    listen: 127.0.0.1:0
    cert: %s
    key: %s
    cacert: %s
    target: [127.0.0.1:1]
%s    rules:
%s""" % (dpki.server_crt, dpki.server_key, dpki.roots, extra.replace("ROOTS", str(dpki.roots)),
         RULES))
    p = subprocess.run([str(dpki.duet_bin), "proxy", "--config", str(cfg), "--check"],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode != 0
    assert words in p.stderr, p.stderr


def test_h2_upstream_that_does_not_choose_h2_is_502_with_the_reason(dpki, procs, tmp_path):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(dpki.server_crt), str(dpki.server_key))
    ctx.set_alpn_protocols(["http/1.1"])
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(8)

    def serve():
        while True:
            try:
                c, _ = lsock.accept()
                with ctx.wrap_socket(c, server_side=True) as t:
                    t.recv(100)
            except OSError:
                if lsock.fileno() < 0:
                    return
    threading.Thread(target=serve, daemon=True).start()
    try:
        px = start_http_proxy(
            dpki, procs, tmp_path, lsock.getsockname()[1], rules=RULES,
            extra_yaml="    upstream_protocol: h2\n    upstream_tls: {cacert: %s, "
                       "server_name: localhost}\n" % dpki.roots)
        mark = px.log.mark()
        status, _, body = curl(dpki, url(px, "/public/a"), "--http2")
        assert status == 502, body
        ev = px.log.wait_event("upstream_error", mark)
        assert "did not choose h2 by ALPN (none)" in ev["error"], ev
    finally:
        lsock.close()


@pytest.mark.parametrize("alpn", [True, False])
def test_curl_prior_knowledge_through_the_tunnel(dpki, procs, tmp_path, alpn):
    """curl --http2-prior-knowledge to `duet tunnel --alpn h2`: HTTP/2 end to end with mTLS
    between tunnel and proxy.  Without --alpn h2 the proxy reads HTTP/1.1 and the preface fails."""
    from test_proxy import start_tunnel
    up = FakeH2Upstream(lambda n, s: ok(s, b"tunnelled"))
    px = h2c_proxy(dpki, procs, tmp_path, up.port)
    t = start_tunnel(procs, dpki, tmp_path / "tn", px.port, "--server-name", "localhost",
                     *(("--alpn", "h2") if alpn else ()))
    p = subprocess.run([tool("curl"), "-sS", "--http2-prior-knowledge", "-o", "-", "-w",
                        "\n%{http_code} %{http_version}",
                        "http://127.0.0.1:%d/public/t" % t.port],
                       capture_output=True, timeout=30)
    if alpn:
        assert p.returncode == 0, p.stderr
        assert p.stdout == b"tunnelled\n200 2", p.stdout
    else:
        assert not p.stdout.endswith(b"200 2"), p.stdout


class LimitedUpstream(FakeH2Upstream):
    """SETTINGS_MAX_CONCURRENT_STREAMS 1; each stream answered once `together` streams arrived
    (across connections; 5 s at most), so streams that share a connection are held back."""

    def __init__(self, together):
        self.barrier = threading.Barrier(together, timeout=5)
        super().__init__(self._answer)

    def _answer(self, n, s):
        try:
            self.barrier.wait()
        except threading.BrokenBarrierError:
            pass
        return ok(s, b"conn %d" % n)

    def _conn(self, c):
        c.sendall(frame(SETTINGS, 0, 0, struct.pack(">HI", 3, 1)))
        super()._conn(c)


@pytest.mark.parametrize("conns", [4, 1])
def test_upstream_stream_limit_opens_more_connections_up_to_the_setting(dpki, procs, tmp_path,
                                                                        conns):
    up = LimitedUpstream(3 if conns == 4 else 1)
    px = h2c_proxy(dpki, procs, tmp_path, up.port,
                   extra="") if conns == 4 else start_http_proxy(
        dpki, procs, tmp_path, up.port, rules=RULES,
        extra_yaml="    upstream_protocol: h2c\n",
        extra_args=("--upstream-h2-connections", "1", "--upstream-h2-max-connections", "1"))
    p = subprocess.run([tool("nghttp"), "-n", "--stat", "--cert", str(dpki.alice_crt), "--key",
                        str(dpki.alice_key)] + [url(px, "/public/%d" % i) for i in range(3)],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stdout + p.stderr
    # 4 allowed: the three streams on three connections, none waiting for another;
    # 1 allowed: all on one connection, one at a time as the upstream's limit says.
    assert up.accepted == (3 if conns == 4 else 1), (up.accepted, up.streams)
    assert len(up.streams) == 3


def test_upstream_ignoring_flow_control_loses_its_connection(dpki, procs, tmp_path):
    """DATA past the 64 KiB window the proxy gave: FLOW_CONTROL_ERROR, the bytes never reach the
    client (its stream is reset after the head it had), and the proxy serves the next stream."""
    def answer(n, s):
        if s == 1:
            return headers(s, [(":status", "200")]) + \
                b"".join(frame(DATA, 0, s, b"z" * 16384) for _ in range(100))
        return ok(s, b"next")
    up = FakeH2Upstream(answer)
    px = h2c_proxy(dpki, procs, tmp_path, up.port)
    mark = px.log.mark()
    # A client that never opens its window: the proxy can pass it 64 KiB, no more, so the
    # upstream's window stays as the proxy gave it whatever the timing.
    c = RawH2(dpki, px.port)
    try:
        c.request(1, good("/public/flood", px.port))
        frames = []
        f = c.wait_for(lambda f: (frames.append(f) or True) and f[2] == 1 and
                       f[0] == RST_STREAM, timeout=20)
        assert f is not None and rst_code(f) == 2, frames  # INTERNAL_ERROR
        got = sum(len(x[3]) for x in frames if x[0] == DATA and x[2] == 1)
        assert got <= 65535, got
    finally:
        c.close()
    ev = px.log.wait_event("upstream_error", mark)
    assert "FLOW_CONTROL_ERROR" in ev["error"], ev
    status, _, body = curl(dpki, url(px, "/public/after"), "--http2")
    assert (status, body) == (200, b"next")
    assert up.accepted == 1 and len(up.streams) == 2  # the same upstream connection


def test_upstream_resets_of_held_responses_give_the_window_back(dpki, procs, tmp_path):
    """300 streams each sent a full 64 KiB stream window of DATA, then reset by the upstream
    while the client (a 64 KiB window) holds most of it: 19 MB the connection's 16 MiB window
    must get back, or the upstream connection dies of FLOW_CONTROL_ERROR.  Then a normal answer
    on it."""
    count = [0]

    def answer(n, s):
        count[0] += 1
        if count[0] <= 300:
            return headers(s, [(":status", "200")]) + \
                b"".join(frame(DATA, 0, s, b"h" * 16384) for _ in range(4)) + \
                frame(RST_STREAM, 0, s, struct.pack(">I", 8))
        return ok(s, b"still here")
    up = FakeH2Upstream(answer)
    px = start_http_proxy(dpki, procs, tmp_path, up.port, rules=RULES,
                          extra_yaml="    upstream_protocol: h2c\n",
                          extra_args=("--upstream-h2-connections", "1"))
    mark = px.log.mark()
    for _ in range(3):  # 100 streams on each of three clients: within their reset budgets
        c = RawH2(dpki, px.port)
        try:
            ids = {1 + 2 * i for i in range(100)}
            for sid in sorted(ids):
                c.request(sid, good("/public/held", px.port))
            c.wait_for(lambda f: f[0] == RST_STREAM and (ids.discard(f[2]) or not ids),
                       timeout=30)
            assert not ids, sorted(ids)[:5]
        finally:
            c.close()
    assert count[0] == 300, count
    status, _, body = curl(dpki, url(px, "/public/after"), "--http2")
    assert (status, body) == (200, b"still here")
    assert up.accepted == 1
    assert not [e for e in px.log.events()[mark:] if e.get("event") == "upstream_error"]


class OneAtATimeUpstream(FakeH2Upstream):
    """SETTINGS_MAX_CONCURRENT_STREAMS 1.  The first stream of the first connection is held
    until release() sends GOAWAY naming it as the last, then its answer; the others are
    answered at once."""

    def __init__(self):
        self.release_ev = threading.Event()
        self.socks = {}
        super().__init__(self._answer)

    def _answer(self, n, s):
        if n == 1 and s == 1:
            def later():
                self.release_ev.wait(20)
                try:
                    self.socks[1].sendall(frame(GOAWAY, 0, 0, struct.pack(">II", 1, 0)) +
                                          ok(1, b"first"))
                except OSError:
                    pass
            threading.Thread(target=later, daemon=True).start()
            return b""
        return ok(s, b"conn %d" % n)

    def _conn(self, c):
        self.socks[self.accepted] = c
        c.sendall(frame(SETTINGS, 0, 0, struct.pack(">HI", 3, 1)))
        super()._conn(c)


def test_goaway_over_a_waiting_stream_sends_it_once(dpki, procs, tmp_path):
    """A stream waiting for the upstream's only slot when the upstream sends GOAWAY goes once
    to a new connection (a POST or a gRPC call must not run twice), and both clients' streams
    are answered."""
    up = OneAtATimeUpstream()
    px = start_http_proxy(dpki, procs, tmp_path, up.port, rules=RULES,
                          extra_yaml="    upstream_protocol: h2c\n",
                          extra_args=("--upstream-h2-connections", "1",
                                      "--upstream-h2-max-connections", "1"))
    c = RawH2(dpki, px.port)
    try:
        c.request(1, good("/public/first", px.port))
        deadline = time.monotonic() + 10
        while not up.streams and time.monotonic() < deadline:
            time.sleep(0.05)
        c.request(3, good("/public/second", px.port))
        time.sleep(0.5)  # the second stream waits in the proxy for the upstream's slot
        up.release_ev.set()
        bodies = {}

        def done(f):
            if f[0] == DATA:
                bodies[f[2]] = bodies.get(f[2], b"") + f[3]
            return len([k for k in bodies if bodies[k].startswith(b"first") or
                        bodies[k].startswith(b"conn")]) == 2 and f[1] & END_STREAM
        assert c.wait_for(done, timeout=20) is not None, bodies
        assert bodies == {1: b"first", 3: b"conn 2"}, bodies
    finally:
        c.close()
    time.sleep(0.5)
    assert up.streams == [(1, 1), (2, 1)], up.streams


def test_client_reset_before_the_upstream_heard_of_the_stream(dpki, procs, tmp_path):
    """HEADERS and RST_STREAM in one write, 20 times: each upstream stream ends before its
    HEADERS went (nghttp2 closes what it opened for it), and the proxy frees each once (the
    ASan build aborted here) and serves the next request."""
    up = LimitedUpstream(1)
    px = start_http_proxy(dpki, procs, tmp_path, up.port, rules=RULES,
                          extra_yaml="    upstream_protocol: h2c\n",
                          extra_args=("--upstream-h2-connections", "1"))
    status, _, body = curl(dpki, url(px, "/public/warm"), "--http2")
    assert (status, body) == (200, b"conn 1")
    c = RawH2(dpki, px.port)
    try:
        for i in range(20):
            sid = 1 + 2 * i
            c.send(frame(HEADERS, END_HEADERS | END_STREAM, sid,
                         hpack(good("/public/gone", px.port))) +
                   frame(RST_STREAM, 0, sid, struct.pack(">I", 8)))
        time.sleep(1)
        c.request(41, good("/public/after", px.port))
        f = c.wait_for(lambda f: f[0] == DATA and f[2] == 41, timeout=10)
        assert f is not None and f[3].startswith(b"conn "), f
    finally:
        c.close()
    assert px.proc.poll() is None
    assert not [e for e in px.log.events() if e.get("level") == "error"], px.log.events()[-3:]


def test_upstream_resets_do_not_count_as_the_clients_rapid_reset(dpki, procs, tmp_path):
    """An upstream that answers and then resets every stream (CANCEL): 120 requests one after
    the other on one client connection, which never resets a stream itself, are each reset
    with the upstream's code; the client is not taken for a rapid-reset attacker (no GOAWAY
    ENHANCE_YOUR_CALM, no h2_abuse blaming its identity)."""
    def answer(n, s):
        return headers(s, [(":status", "200")]) + frame(DATA, 0, s, b"part") + \
            frame(RST_STREAM, 0, s, struct.pack(">I", 8))
    up = FakeH2Upstream(answer)
    px = h2c_proxy(dpki, procs, tmp_path, up.port)
    mark = px.log.mark()
    c = RawH2(dpki, px.port)
    try:
        for i in range(120):
            sid = 1 + 2 * i
            c.request(sid, good("/public/reset-%d" % i, px.port))
            f = c.wait_for(lambda f: f[2] in (0, sid) and f[0] in (RST_STREAM, GOAWAY),
                           timeout=10)
            assert f is not None and f[0] == RST_STREAM and rst_code(f) == 8, (i, f)
    finally:
        c.close()
    assert not [e for e in px.log.events()[mark:] if e.get("event") == "h2_abuse"]
