# SPDX-License-Identifier: Apache-2.0
"""HTTP/2 upstream connections are shared by every client of a worker and listener (issue 15):
what one client holding a valid certificate does with its streams must not hold up the others.

- A client that never reads its responses keeps, per stream, only the upstream's stream window
  (64 KiB) in the proxy; the upstream connection's own window is given back as bytes arrive, so
  other clients' responses on the same connection still flow (nginx as the h2c upstream).
- Streams that hold the upstream's SETTINGS_MAX_CONCURRENT_STREAMS (a request body that never
  comes) make the proxy open another connection rather than queue other clients behind them, up
  to --upstream-h2-max-connections.
"""

import os
import shutil
import struct
import subprocess
import time

import pytest

from proxyutil import free_port, start_http_proxy, wait_port
from test_proxy_h2 import (ACK, DATA, END_STREAM, HEADERS, RST_STREAM, SETTINGS, WINDOW_UPDATE,
                           RawH2, curl, frame, good, rst_code, url)
from test_proxy_h2up import RULES, FakeH2Upstream, headers, ok

NGINX_H2C = """\
%(user)s
worker_processes 1;
daemon off;
pid %(dir)s/nginx.pid;
events {}
http {
    log_format conns '$connection $request_uri $status';
    access_log %(dir)s/access.log conns;
    client_body_temp_path %(dir)s/body;
    proxy_temp_path %(dir)s/proxy;
    fastcgi_temp_path %(dir)s/fastcgi;
    uwsgi_temp_path %(dir)s/uwsgi;
    scgi_temp_path %(dir)s/scgi;
    server {
        listen 127.0.0.1:%(port)d http2;
        http2_max_concurrent_streams 512;
        root %(dir)s/www;
    }
}
"""


def start_nginx_h2c(procs, tmp_path, files):
    """nginx serving `files` ({path: bytes}) over h2c with prior knowledge on a free port."""
    exe = shutil.which("nginx") or "/usr/sbin/nginx"
    assert os.access(exe, os.X_OK), "nginx is missing (scripts/deps.sh installs it)"
    d = tmp_path / "nginx"
    (d / "www" / "public").mkdir(parents=True)
    for name, data in files.items():
        (d / "www" / name.lstrip("/")).write_bytes(data)
    port = free_port()
    conf = d / "nginx.conf"
    conf.write_text(NGINX_H2C % dict(dir=d, port=port,
                                     user="user root;" if os.geteuid() == 0 else ""))
    p = procs.start([exe, "-p", d, "-c", conf, "-e", d / "error.log"], "nginx-h2c")
    wait_port(port, p)
    return port, d / "access.log"


def test_a_client_that_never_reads_does_not_hold_up_other_clients(dpki, procs, tmp_path):
    """Three connections of 32 streams each (--h2-max-upstreams) ask for 1 MiB and never open
    their windows: 96 streams on the one upstream connection.  Before, each held 256 KiB of the
    connection's 16 MiB response window and other clients' responses waited for
    --h2-stream-timeout; now a second client is answered at once, on that same upstream
    connection, and the attacker's streams still get their whole response once they read."""
    big = os.urandom(1 << 20)
    port, access = start_nginx_h2c(procs, tmp_path, {"/public/big": big,
                                                     "/public/small": b"small answer\n"})
    px = start_http_proxy(dpki, procs, tmp_path, port, rules=RULES,
                          extra_yaml="    upstream_protocol: h2c\n",
                          extra_args=("--upstream-h2-connections", "1",
                                      "--upstream-h2-max-connections", "1"))
    attackers = [RawH2(dpki, px.port) for _ in range(3)]
    got = bytearray()  # the attacker's stream 1, whenever its DATA comes
    try:
        for a in attackers:
            for i in range(32):
                a.request(1 + 2 * i, good("/public/big", px.port))
        # Every stream has its response head: the upstream is sending what windows allow.
        for k, a in enumerate(attackers):
            heads = set()

            def head(f):
                if k == 0 and f[0] == DATA and f[2] == 1:
                    got.extend(f[3])
                return f[0] == HEADERS and (heads.add(f[2]) or len(heads) == 32)
            a.wait_for(head, timeout=20)
            assert len(heads) == 32, heads
        time.sleep(1)
        t0 = time.monotonic()
        status, _, body = curl(dpki, url(px, "/public/small"), "--http2", "-m", "10")
        assert (status, body) == (200, b"small answer\n")
        assert time.monotonic() - t0 < 10
        # The attacker's first stream reads its whole response once it opens its windows.
        a = attackers[0]
        a.send(frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", 1 << 30)) +
               frame(WINDOW_UPDATE, 0, 1, struct.pack(">I", 1 << 30)))

        def more(f):
            if f[0] == DATA and f[2] == 1:
                got.extend(f[3])
                return bool(f[1] & END_STREAM)
            return f[0] == RST_STREAM and f[2] == 1
        f = a.wait_for(more, timeout=20)
        assert f is not None and f[0] == DATA, f
        assert bytes(got) == big
    finally:
        for a in attackers:
            a.close()
    # All of it went over one upstream connection: the sharing was real.
    deadline = time.monotonic() + 10
    lines = []
    while time.monotonic() < deadline:
        lines = access.read_text().split("\n") if access.exists() else []
        if sum(1 for x in lines if "/public/" in x) >= 97:
            break
        time.sleep(0.2)
    conns = {x.split()[0] for x in lines if "/public/" in x}
    assert len(conns) == 1, lines[:5]
    assert any(" /public/small 200" in x for x in lines), lines[-5:]


class FlowH2Upstream(FakeH2Upstream):
    """An h2c upstream that answers every request with `size` bytes and sends DATA only as the
    proxy's windows allow (its SETTINGS_INITIAL_WINDOW_SIZE, its WINDOW_UPDATEs), as a real
    server does; sent[(conn, stream)] counts what it could send."""

    def __init__(self, size):
        self.size = size
        self.sent = {}
        self.maxwin = {}  # (conn, stream): the largest window the proxy gave it
        super().__init__(None)

    def new_state(self):
        return {"init": 65535, "conn": 65535, "win": {}, "left": {}}

    def on_frame(self, c, n, st, ftype, flags, stream, payload):
        win, left = st["win"], st["left"]
        if ftype == SETTINGS and not flags & ACK:
            for k in range(0, len(payload), 6):
                ident, value = struct.unpack(">HI", payload[k:k + 6])
                if ident == 4:
                    for s in win:
                        win[s] += value - st["init"]
                    st["init"] = value
            c.sendall(frame(SETTINGS, ACK, 0))
        elif ftype == WINDOW_UPDATE:
            inc = int.from_bytes(payload[:4], "big") & 0x7fffffff
            if stream == 0:
                st["conn"] += inc
            elif stream in win:
                win[stream] += inc
                with self.lock:
                    self.maxwin[(n, stream)] = max(self.maxwin.get((n, stream), 0),
                                                   win[stream])
        elif ftype == RST_STREAM:
            left.pop(stream, None)
        elif ftype == HEADERS:
            win[stream], left[stream] = st["init"], self.size
            c.sendall(headers(stream, [(":status", "200"), ("content-length", str(self.size))]))
        return True

    def after_frames(self, c, n, st):
        win, left = st["win"], st["left"]
        for s in list(left):
            while left[s] > 0:
                k = min(left[s], win[s], st["conn"], 16384)
                if k <= 0:
                    break
                left[s] -= k
                win[s] -= k
                st["conn"] -= k
                with self.lock:
                    self.sent[(n, s)] = self.sent.get((n, s), 0) + k
                c.sendall(frame(DATA, END_STREAM if left[s] == 0 else 0, s, b"w" * k))
            if left[s] == 0:
                del left[s]


def test_a_client_that_never_reads_holds_64_KiB_per_stream(dpki, procs, tmp_path):
    """A client that never opens its windows (64 KiB for the whole connection, the HTTP/2
    default) asks for 1 MiB on 10 streams: the upstream may send each stream 64 KiB beyond what
    the client took, so the proxy holds at most 10 x 64 KiB for it (2.5 MiB before).  A client
    that reads gets its whole 1 MiB on the same connection, its stream's window grown to
    256 KiB once it took the first 64 KiB."""
    up = FlowH2Upstream(1 << 20)
    px = start_http_proxy(dpki, procs, tmp_path, up.port, rules=RULES,
                          extra_yaml="    upstream_protocol: h2c\n",
                          extra_args=("--upstream-h2-connections", "1"))
    a = RawH2(dpki, px.port)
    try:
        for i in range(10):
            a.request(1 + 2 * i, good("/public/stall", px.port))
        heads = set()
        a.wait_for(lambda f: f[0] == HEADERS and (heads.add(f[2]) or len(heads) == 10),
                   timeout=20)
        status, _, body = curl(dpki, url(px, "/public/read"), "--http2", "-m", "20")
        assert status == 200 and body == b"w" * (1 << 20), (status, len(body))
        time.sleep(0.5)
        with up.lock:
            stalled = sum(v for (conn, s), v in up.sent.items() if s != 21)
        # What the client took (its 64 KiB connection window) plus 64 KiB per stream.
        assert stalled <= 65535 + 10 * 65536, stalled
        assert up.accepted == 1
        assert max(v for (conn, s), v in up.maxwin.items() if s == 21) > 200000, up.maxwin
        assert max((v for (conn, s), v in up.maxwin.items() if s != 21), default=0) <= 65536, \
            up.maxwin
    finally:
        a.close()


class HoldingUpstream(FakeH2Upstream):
    """SETTINGS_MAX_CONCURRENT_STREAMS 2; the first `hold` streams get no answer at all (a
    request body that never comes keeps them open); the others are answered at once."""

    def __init__(self, hold):
        self.hold = hold
        self.count = 0
        super().__init__(self._answer)

    def _answer(self, n, s):
        with self.lock:
            self.count += 1
            held = self.count <= self.hold
        return b"" if held else ok(s, b"conn %d" % n)

    def _conn(self, c):
        c.sendall(frame(SETTINGS, 0, 0, struct.pack(">HI", 3, 2)))
        super()._conn(c)


def stalled_posts(dpki, port, n):
    """A client connection with n POST streams whose bodies never come."""
    a = RawH2(dpki, port)
    for i in range(n):
        a.request(1 + 2 * i, [(":method", "POST"), (":scheme", "https"),
                              (":authority", "localhost:%d" % port),
                              (":path", "/public/upload")], end_stream=False)
    return a


def test_stalled_streams_do_not_take_every_upstream_slot(dpki, procs, tmp_path):
    """One client's two stalled request bodies fill the upstream connection's 2 stream slots:
    another client's request goes on a new upstream connection instead of waiting behind them
    for --h2-stream-timeout."""
    up = HoldingUpstream(2)
    px = start_http_proxy(dpki, procs, tmp_path, up.port, rules=RULES,
                          extra_yaml="    upstream_protocol: h2c\n",
                          extra_args=("--upstream-h2-connections", "1"))
    a = stalled_posts(dpki, px.port, 2)
    try:
        deadline = time.monotonic() + 10
        while len(up.streams) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(up.streams) == 2, up.streams
        status, _, body = curl(dpki, url(px, "/public/after"), "--http2", "-m", "10")
        assert (status, body) == (200, b"conn 2")
        assert up.accepted == 2
    finally:
        a.close()


def test_upstream_connections_stop_at_the_maximum(dpki, procs, tmp_path):
    """--upstream-h2-max-connections 1: a stream past the upstream's 2 slots waits for one (the
    stalled client's stream is reset by --h2-stream-timeout, 2 s here), on the one connection."""
    up = HoldingUpstream(2)
    px = start_http_proxy(dpki, procs, tmp_path, up.port, rules=RULES,
                          extra_yaml="    upstream_protocol: h2c\n",
                          extra_args=("--upstream-h2-connections", "1",
                                      "--upstream-h2-max-connections", "1",
                                      "--h2-stream-timeout", "2s"))
    mark = px.log.mark()
    a = stalled_posts(dpki, px.port, 2)
    try:
        deadline = time.monotonic() + 10
        while len(up.streams) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        status, _, body = curl(dpki, url(px, "/public/after"), "--http2", "-m", "20")
        assert (status, body) == (200, b"conn 1")
        assert up.accepted == 1
        ev = px.log.wait_event("h2_stream_timeout", mark)
        assert "request body" in ev["reason"], ev
    finally:
        a.close()


def test_max_connections_setting_is_checked(dpki, tmp_path):
    p = subprocess.run([dpki.duet_bin, "proxy", "--listen", "127.0.0.1:0", "--target",
                        "127.0.0.1:1", "--cert", dpki.server_crt, "--key", dpki.server_key,
                        "--cacert", dpki.roots, "--upstream-h2-max-connections", "0", "--check"],
                       capture_output=True, text=True, timeout=20)
    assert p.returncode != 0
    assert "--upstream-h2-max-connections" in p.stderr and "1 to 1024" in p.stderr, p.stderr


class SilentAfterHeadUpstream(FakeH2Upstream):
    """Answers each stream with its response HEADERS and one DATA frame, then nothing more:
    a bidirectional gRPC stream both sides keep open, idle."""

    def __init__(self):
        super().__init__(lambda n, s: headers(s, [(":status", "200"),
                                                  ("content-type", "application/grpc")]) +
                         frame(DATA, 0, s, b"\x00\x00\x00\x00\x01x"))


def test_an_idle_stream_whose_response_began_is_not_reset(dpki, procs, tmp_path):
    """A bidirectional stream on an HTTP/2 upstream (a gRPC watch): the client sent its first
    message and keeps its side open, the upstream answered the head and one message.  Idle
    past --h2-stream-timeout, it is not the client holding the stream up: it stays open."""
    up = SilentAfterHeadUpstream()
    px = start_http_proxy(dpki, procs, tmp_path, up.port, rules=RULES,
                          extra_yaml="    upstream_protocol: h2c\n",
                          extra_args=("--h2-stream-timeout", "1s"))
    mark = px.log.mark()
    c = RawH2(dpki, px.port)
    try:
        c.send(frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", 1 << 20)))
        c.request(1, [(":method", "POST"), (":scheme", "https"),
                      (":authority", "localhost:%d" % px.port), (":path", "/public/watch"),
                      ("content-type", "application/grpc"), ("te", "trailers")],
                  end_stream=False)
        c.send(frame(DATA, 0, 1, b"\x00\x00\x00\x00\x01q"))
        f = c.wait_for(lambda f: f[0] == DATA and f[2] == 1, timeout=10)
        assert f is not None
        with pytest.raises(TimeoutError):
            c.wait_for(lambda f: f[0] == RST_STREAM, timeout=3)
    finally:
        c.close()
    assert not [e for e in px.log.events()[mark:] if e.get("event") == "h2_stream_timeout"]


def test_a_client_connection_holds_at_most_h2_max_upstreams_upstream_streams(dpki, procs,
                                                                             tmp_path):
    """--h2-max-upstreams 2 on an HTTP/2 upstream: of 4 streams, 2 go upstream at once and the
    others wait in the proxy, their request bodies kept; as the first end, the waiting ones go,
    each with its whole body, and all 4 are answered."""
    class BodyUpstream(FakeH2Upstream):
        """Holds each stream until its body ended, then answers with the body's length."""

        def new_state(self):
            return {}

        def on_frame(self, c, n, bodies, ftype, flags, sid, payload):
            if ftype == SETTINGS and not flags & ACK:
                c.sendall(frame(SETTINGS, ACK, 0))
            elif ftype == HEADERS:
                with self.lock:
                    self.streams.append(sid)
                bodies[sid] = b""
            elif ftype == DATA:
                bodies[sid] += payload
                if payload:
                    inc = struct.pack(">I", len(payload))
                    c.sendall(frame(WINDOW_UPDATE, 0, 0, inc) + frame(WINDOW_UPDATE, 0, sid, inc))
            if ftype in (HEADERS, DATA) and flags & END_STREAM:
                c.sendall(ok(sid, b"%d" % len(bodies[sid])))
            return True

    up = BodyUpstream(None)
    px = start_http_proxy(dpki, procs, tmp_path, up.port, rules=RULES,
                          extra_yaml="    upstream_protocol: h2c\n",
                          extra_args=("--h2-max-upstreams", "2"))
    c = RawH2(dpki, px.port)
    try:
        for i in range(4):
            c.request(1 + 2 * i, [(":method", "POST"), (":scheme", "https"),
                                  (":authority", "localhost:%d" % px.port),
                                  (":path", "/public/up-%d" % i)], end_stream=False)
        time.sleep(0.5)
        with up.lock:
            assert len(up.streams) == 2, up.streams  # two wait in the proxy
        for i in range(4):
            c.send(frame(DATA, 0, 1 + 2 * i, b"b" * (1000 * (i + 1))))
        time.sleep(0.3)
        for i in range(4):
            c.send(frame(DATA, END_STREAM, 1 + 2 * i, b"e"))
        bodies = {}

        def done(f):
            if f[0] == DATA:
                bodies[f[2]] = bodies.get(f[2], b"") + f[3]
            return len(bodies) == 4 and all(bodies.values())
        assert c.wait_for(done, timeout=10) is not None, bodies
        assert bodies == {1 + 2 * i: b"%d" % (1000 * (i + 1) + 1) for i in range(4)}, bodies
    finally:
        c.close()
    assert len(up.streams) == 4


class SilentUpstream(FakeH2Upstream):
    """SETTINGS_MAX_CONCURRENT_STREAMS 1, and no answer to any stream: the first stream holds
    the upstream's only slot for good."""

    def __init__(self):
        super().__init__(lambda n, s: b"")

    def _conn(self, c):
        c.sendall(frame(SETTINGS, 0, 0, struct.pack(">HI", 3, 1)))
        super()._conn(c)


def test_streams_cancelled_while_waiting_for_an_upstream_slot_are_freed(dpki, procs, tmp_path,
                                                                        monkeypatch):
    """Every upstream slot is taken (one connection, one slot, held): 30 client connections
    each open 32 POSTs with 32 KiB of body, which wait for the slot, then go away.  The proxy
    frees each waiting stream and its body when its client goes, not when a slot frees (which
    here is never): its memory stays flat (it grew by 1 MiB per client connection before)."""
    from test_proxy_h2_limits import rss_kib
    if "ASAN_OPTIONS" in os.environ:  # the ASan build keeps what is freed in quarantine
        monkeypatch.setenv("ASAN_OPTIONS", os.environ["ASAN_OPTIONS"] + ":quarantine_size_mb=0")
    up = SilentUpstream()
    px = start_http_proxy(dpki, procs, tmp_path, up.port, rules=RULES,
                          extra_yaml="    upstream_protocol: h2c\n",
                          extra_args=("--upstream-h2-connections", "1",
                                      "--upstream-h2-max-connections", "1"))
    holder = RawH2(dpki, px.port)
    holder.request(1, good("/public/hold", px.port))
    deadline = time.monotonic() + 10
    while not up.streams and time.monotonic() < deadline:
        time.sleep(0.05)
    before = rss_kib(px.proc.pid)
    try:
        for _ in range(30):
            c = RawH2(dpki, px.port)
            for i in range(32):
                sid = 1 + 2 * i
                c.request(sid, [(":method", "POST"), (":scheme", "https"),
                                (":authority", "localhost:%d" % px.port),
                                (":path", "/public/upload")], end_stream=False)
                c.send(frame(DATA, 0, sid, b"u" * 16384) + frame(DATA, 0, sid, b"u" * 16384))
            time.sleep(0.05)
            c.close()
        time.sleep(1)
        grown = rss_kib(px.proc.pid) - before
        assert grown < 10 * 1024, grown  # 30 x 32 x 32 KiB = 30 MiB of bodies alone
    finally:
        holder.close()
    assert px.proc.poll() is None


def test_a_stream_waiting_for_a_slot_is_refused_after_the_stream_timeout(dpki, procs, tmp_path):
    """--h2-max-upstreams 1: a resting bidirectional stream (its response began) holds the
    connection's only upstream slot, as it may; a GET behind it waits --h2-stream-timeout, then
    is refused with REFUSED_STREAM (it never reached the upstream: the client may send it
    again), logged with a reason that names the limit, not the client."""
    up = SilentAfterHeadUpstream()
    px = start_http_proxy(dpki, procs, tmp_path, up.port, rules=RULES,
                          extra_yaml="    upstream_protocol: h2c\n",
                          extra_args=("--h2-max-upstreams", "1", "--h2-stream-timeout", "1s"))
    mark = px.log.mark()
    c = RawH2(dpki, px.port)
    try:
        c.request(1, [(":method", "POST"), (":scheme", "https"),
                      (":authority", "localhost:%d" % px.port), (":path", "/public/watch"),
                      ("content-type", "application/grpc"), ("te", "trailers")],
                  end_stream=False)
        assert c.wait_for(lambda f: f[0] == DATA and f[2] == 1, timeout=10) is not None
        c.request(3, good("/public/behind", px.port))
        f = c.wait_for(lambda f: f[0] == RST_STREAM, timeout=10)
        assert f is not None and f[2] == 3 and rst_code(f) == 7, f  # REFUSED_STREAM
    finally:
        c.close()
    ev = px.log.wait_event("h2_stream_timeout", mark)
    assert ev["stream"] == 3 and ev["h2_error"] == "REFUSED_STREAM", ev
    assert "--h2-max-upstreams" in ev["reason"], ev
    assert len(up.streams) == 1, up.streams


def test_streams_waiting_for_a_slot_are_refused_when_the_connection_is_retired(dpki, procs,
                                                                              tmp_path):
    """--h2-max-upstreams 1 --max-connection-lifetime 2s: the stream waiting behind the held
    one never goes upstream after the GOAWAY; it is refused with REFUSED_STREAM at once."""
    up = SilentUpstream()
    px = start_http_proxy(dpki, procs, tmp_path, up.port, rules=RULES,
                          extra_yaml="    upstream_protocol: h2c\n",
                          extra_args=("--h2-max-upstreams", "1",
                                      "--max-connection-lifetime", "2s"))
    c = RawH2(dpki, px.port)
    try:
        c.request(1, good("/public/hold", px.port))
        c.request(3, good("/public/waits", px.port))
        f = c.wait_for(lambda f: f[0] == RST_STREAM and f[2] == 3, timeout=10)
        assert f is not None and rst_code(f) == 7, f
        time.sleep(1.5)
    finally:
        c.close()
    time.sleep(0.5)
    assert len(up.streams) == 1, up.streams
