# SPDX-License-Identifier: Apache-2.0
"""HTTP/2 streams that stall, and the HTTP/2 limits as settings (issue 15, docs/proxy.md).

An attacker holding one valid client certificate opens streams whose request body stops,
or whose response waits on a flow-control window it never opens, and keeps the connection
alive with PINGs.  A raw-frame client (test_proxy_h2's) shows what the proxy does: the stream
is reset with RST_STREAM CANCEL after --h2-stream-timeout (logged `h2_stream_timeout`, counted
`reason="stalled"`) and its upstream connection dropped; PINGs do not keep a connection without
HEADERS/DATA past --idle-timeout; a PING or SETTINGS flood read by its sender ends with GOAWAY
ENHANCE_YOUR_CALM; one client connection holds at most --h2-max-upstreams upstream connections
(streams beyond wait for a slot) and --h2-max-held-bytes of response; SIGTERM's GOAWAY goes out
even when every stream is stalled, and a retired connection is closed after the drain timeout.
"""

import json
import signal
import socket
import struct
import subprocess
import threading
import time

import pytest

from proxyutil import TcpServer, free_port, metrics, start_http_proxy
from test_proxy_h2 import (ACK, CANCEL, DATA, END_STREAM, ENHANCE_YOUR_CALM, GOAWAY, HEADERS,
                           PING, RST_STREAM, RULES, SETTINGS, WINDOW_UPDATE, RawH2, curl, ended,
                           frame, good, rst_code, url)

REFUSED_STREAM = 0x7


class StallUpstream(TcpServer):
    """An HTTP/1.1 upstream.  /public/hold*: never answers; /public/big*: answers `big` bytes;
    anything else: a small 200.  Counts request heads, open connections and closed ones."""

    def __init__(self, big=4 * 1024 * 1024):
        self.big = big
        self.heads = []
        self.open = 0
        self.closed_conns = 0
        super().__init__()

    def _conn(self, c):
        with self.lock:
            self.open += 1
        try:
            buf = b""
            while True:
                head, buf = self.recv_head(c, buf)
                if head is None:
                    return
                path = head.split(b" ")[1].decode()
                with self.lock:
                    self.heads.append(path)
                if path.startswith("/public/hold"):
                    while c.recv(65536):
                        pass
                    return
                if path.startswith("/public/big"):
                    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % self.big)
                    chunk = b"x" * 65536
                    left = self.big
                    while left > 0:
                        c.sendall(chunk[:min(left, 65536)])
                        left -= 65536
                    continue
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        except OSError:
            pass
        finally:
            with self.lock:
                self.open -= 1
                self.closed_conns += 1
            c.close()

    def count(self, prefix):
        with self.lock:
            return len([h for h in self.heads if h.startswith(prefix)])


def until(pred, timeout=10, step=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(step)
    return pred()


def frames_while_pinging(c, pred, timeout, every=0.3):
    """Frames until pred(frame) holds, sending a PING every `every` seconds meanwhile (what
    keeps a connection busy without progress).  Returns the frame, or None when the
    connection ended, or raises TimeoutError."""
    deadline = time.monotonic() + timeout
    n = 0
    while time.monotonic() < deadline:
        n += 1
        try:
            c.send(frame(PING, 0, 0, struct.pack(">Q", n)))
        except OSError:
            return None
        try:
            f = c.next_frame(every)
        except TimeoutError:
            continue
        except OSError:
            return None
        while f is not None:
            if pred(f):
                return f
            try:
                f = c.next_frame(0.01)
            except TimeoutError:
                break
            except OSError:
                return None
        if f is None:
            return None
    raise TimeoutError("no matching frame within %ss" % timeout)


def post_fields(port, path, length):
    return [(":method", "POST"), (":scheme", "https"), (":authority", "localhost:%d" % port),
            (":path", path), ("content-length", str(length))]


def proxy(dpki, procs, tmp_path, up, *args):
    admin = free_port()
    px = start_http_proxy(dpki, procs, tmp_path, up.port, rules=RULES,
                          extra_args=("--admin", "127.0.0.1:%d" % admin) + tuple(args))
    px.admin = admin
    return px


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS for %d" % pid)


# --- 1. the per-stream inactivity deadline ------------------------------------------------

def test_a_request_body_that_stalls_is_reset_with_cancel(dpki, procs, tmp_path):
    up = StallUpstream()
    px = proxy(dpki, procs, tmp_path, up, "--h2-stream-timeout", "1s")
    mark = px.log.mark()
    c = RawH2(dpki, px.port)
    try:
        c.request(1, post_fields(px.port, "/public/hold-upload", 100), end_stream=False)
        c.send(frame(DATA, 0, 1, b"x" * 10))  # then nothing more of the 100 bytes
        assert until(lambda: up.count("/public/hold-upload") == 1)
        t0 = time.monotonic()
        f = frames_while_pinging(c, lambda f: f[0] == RST_STREAM and f[2] == 1, timeout=8)
        assert f is not None and rst_code(f) == CANCEL, f
        assert time.monotonic() - t0 >= 0.5
    finally:
        c.close()
    ev = px.log.wait_event("h2_stream_timeout", mark)
    assert ev["stream"] == 1 and ev["h2_error"] == "CANCEL", ev
    assert "request body" in ev["reason"] and "1000 ms" in ev["reason"], ev
    assert until(lambda: up.open == 0), "the stalled stream's upstream connection stayed open"
    m = metrics(px.admin)
    assert m.get('duet_h2_stream_resets_total{listener="web",reason="stalled"}') == 1, m


def test_a_response_the_client_window_holds_back_is_reset_with_cancel(dpki, procs, tmp_path):
    up = StallUpstream()
    px = proxy(dpki, procs, tmp_path, up, "--h2-stream-timeout", "1s")
    mark = px.log.mark()
    c = RawH2(dpki, px.port)
    try:
        c.send(frame(SETTINGS, 0, 0, struct.pack(">HI", 4, 0)))  # INITIAL_WINDOW_SIZE 0
        c.request(1, good("/public/big-window", px.port))
        f = c.wait_for(lambda f: f[0] == HEADERS and f[2] == 1)
        assert f is not None
        f = frames_while_pinging(c, lambda f: f[0] == RST_STREAM and f[2] == 1, timeout=8)
        assert f is not None and rst_code(f) == CANCEL, f
    finally:
        c.close()
    ev = px.log.wait_event("h2_stream_timeout", mark)
    assert "window" in ev["reason"], ev
    assert until(lambda: up.open == 0), "the stalled stream's upstream connection stayed open"


def test_a_stream_waiting_on_its_upstream_is_not_reset_as_stalled(dpki, procs, tmp_path):
    """The deadline is about the client: a request sent whole waits for its answer."""
    up = StallUpstream()
    px = proxy(dpki, procs, tmp_path, up, "--h2-stream-timeout", "1s")
    c = RawH2(dpki, px.port)
    try:
        c.request(1, good("/public/hold-answer", px.port))
        with pytest.raises(TimeoutError):
            frames_while_pinging(c, lambda f: f[0] == RST_STREAM, timeout=2.5)
    finally:
        c.close()
    assert px.log.since(0, "h2_stream_timeout") == []


# --- 2. idleness counts HEADERS and DATA; control-frame floods -----------------------------

def test_pings_do_not_keep_a_connection_without_streams_open(dpki, procs, tmp_path):
    up = StallUpstream()
    px = proxy(dpki, procs, tmp_path, up, "--idle-timeout", "1s")
    mark = px.log.mark()
    c = RawH2(dpki, px.port)
    try:
        c.request(1, good("/public/first", px.port))
        assert c.wait_for(lambda f: f[0] == DATA and f[1] & END_STREAM) is not None
        t0 = time.monotonic()
        f = frames_while_pinging(c, lambda f: f[0] == GOAWAY, timeout=8)
        assert f is None or int.from_bytes(f[3][4:8], "big") == 0, f  # NO_ERROR
        _, closed = ended(c, 5)
        assert closed
        assert time.monotonic() - t0 < 6
    finally:
        c.close()
    px.log.wait_event("idle_timeout", mark)


@pytest.mark.parametrize("kind", ["PING", "SETTINGS"])
def test_a_control_frame_flood_read_by_its_sender_gets_enhance_your_calm(dpki, procs, tmp_path,
                                                                         kind):
    """The client reads every acknowledgement (so nghttp2's queued-ack bound never trips) and
    still sends thousands: GOAWAY ENHANCE_YOUR_CALM, `h2_abuse`, others still served."""
    up = StallUpstream()
    px = proxy(dpki, procs, tmp_path, up)
    mark = px.log.mark()
    c = RawH2(dpki, px.port)
    goaway = None
    try:
        for i in range(80):
            if kind == "PING":
                burst = b"".join(frame(PING, 0, 0, struct.pack(">Q", i * 25 + k))
                                 for k in range(25))
            else:
                burst = frame(SETTINGS, 0, 0, struct.pack(">HI", 3, 100)) * 25
            try:
                c.send(burst)
            except OSError:
                break
            acked = 0
            try:  # every acknowledgement read before the next burst: none queues unsent
                while acked < 25 and goaway is None:
                    f = c.next_frame(5)
                    if f is None:
                        break
                    if f[0] == GOAWAY:
                        goaway = f
                    elif f[0] in (PING, SETTINGS) and f[1] & ACK:
                        acked += 1
            except (TimeoutError, OSError):
                pass
            if goaway is not None or acked < 25:
                break
        if goaway is None:
            goaway, _ = ended(c, 5)
        assert goaway is not None, "no GOAWAY after 2000 %s frames" % kind
        assert int.from_bytes(goaway[3][4:8], "big") == ENHANCE_YOUR_CALM
    finally:
        c.close()
    ev = px.log.wait_event("h2_abuse", mark)
    assert ev["reason"].startswith(kind + " flood:"), ev
    assert ev["h2_error"] == "ENHANCE_YOUR_CALM", ev
    assert curl(dpki, url(px, "/public/after-flood"), "--http2")[0] == 200


# --- 3. the per-connection budget ------------------------------------------------------------

def test_upstream_connections_per_client_connection_are_bounded_and_the_rest_wait(
        dpki, procs, tmp_path):
    up = StallUpstream()
    px = proxy(dpki, procs, tmp_path, up, "--h2-max-upstreams", "4")
    c = RawH2(dpki, px.port)
    try:
        for i in range(10):
            c.request(1 + 2 * i, good("/public/hold-%d" % i, px.port))
        c.request(21, good("/public/waits", px.port))
        assert until(lambda: up.count("/public/hold") == 4)
        time.sleep(1)
        assert up.count("/public/hold") == 4 and up.open == 4, up.heads
        assert up.count("/public/waits") == 0
        # Other clients are served meanwhile.
        assert curl(dpki, url(px, "/public/other"), "--http2")[0] == 200
        # A held stream given up by its client frees its slot for the next waiting one.
        for i in range(10):
            c.send(frame(RST_STREAM, 0, 1 + 2 * i, struct.pack(">I", CANCEL)))
        f = c.wait_for(lambda f: f[0] == DATA and f[2] == 21 and f[1] & END_STREAM)
        assert f is not None and f[3] == b"ok"
    finally:
        c.close()


def test_a_stalled_connection_holds_bounded_memory_and_others_are_served(dpki, procs, tmp_path):
    """100 streams of large responses to a client whose windows stay shut: the proxy holds
    at most --h2-max-held-bytes (plus its buffers) and --h2-max-upstreams connections,
    where before it held 256 KiB and an upstream connection per stream (~27 MB)."""
    up = StallUpstream(big=8 * 1024 * 1024)
    px = proxy(dpki, procs, tmp_path, up)
    assert curl(dpki, url(px, "/public/warm"), "--http2")[0] == 200
    time.sleep(0.5)
    before = rss_kib(px.proc.pid)
    c = RawH2(dpki, px.port)
    try:
        c.send(frame(SETTINGS, 0, 0, struct.pack(">HI", 4, 0)))
        for i in range(100):
            c.request(1 + 2 * i, good("/public/big-%d" % i, px.port))
        time.sleep(3)
        grown = rss_kib(px.proc.pid) - before
        assert up.open <= 32, up.open
        assert grown < 8 * 1024, "RSS grew by %d KiB" % grown
        assert curl(dpki, url(px, "/public/during"), "--http2")[0] == 200
    finally:
        c.close()


def test_a_stream_paused_by_the_held_budget_resumes_when_the_holder_goes(dpki, procs, tmp_path):
    """Stream 1's response fills --h2-max-held-bytes (the client never opens its window), so
    stream 3's upstream is not read either; once the client cancels stream 1, stream 3's
    whole response arrives."""
    up = StallUpstream(big=1024 * 1024)
    px = proxy(dpki, procs, tmp_path, up, "--h2-max-held-bytes", "65536")
    c = RawH2(dpki, px.port)
    try:
        c.send(frame(SETTINGS, 0, 0, struct.pack(">HI", 4, 0)))
        c.send(frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", 64 * 1024 * 1024)))
        c.request(1, good("/public/big-holder", px.port))
        assert c.wait_for(lambda f: f[0] == HEADERS and f[2] == 1) is not None
        time.sleep(0.5)
        c.request(3, good("/public/big-paused", px.port))
        c.send(frame(WINDOW_UPDATE, 0, 3, struct.pack(">I", 64 * 1024 * 1024)))
        got = 0
        try:
            while True:
                f = c.next_frame(1.5)
                if f is not None and f[0] == DATA and f[2] == 3:
                    got += len(f[3])
        except TimeoutError:
            pass
        assert got < 1024 * 1024, "stream 3 was not held back by the budget"
        c.send(frame(RST_STREAM, 0, 1, struct.pack(">I", CANCEL)))
        while True:
            f = c.next_frame(10)
            assert f is not None
            if f[0] == DATA and f[2] == 3:
                got += len(f[3])
                if f[1] & END_STREAM:
                    break
        assert got == 1024 * 1024
    finally:
        c.close()


# --- 4. draining and retiring with every stream stalled --------------------------------------

def test_sigterm_goaway_goes_out_while_every_stream_is_stalled(dpki, procs, tmp_path):
    up = StallUpstream()
    px = proxy(dpki, procs, tmp_path, up)
    c = RawH2(dpki, px.port)
    try:
        # The session's opening frames exchanged (our SETTINGS acknowledged, theirs too), so
        # that nothing more comes from this client to wake the connection up.
        assert c.wait_for(lambda f: f[0] == SETTINGS and f[1] & ACK) is not None
        c.request(1, good("/public/hold-drain", px.port))
        assert until(lambda: up.count("/public/hold-drain") == 1)
        time.sleep(0.5)
        mark = px.log.mark()
        px.proc.send_signal(signal.SIGTERM)
        px.log.wait_event("shutdown", mark)
        f = c.wait_for(lambda f: f[0] == GOAWAY, timeout=3)
        assert f is not None, "no GOAWAY while the only stream waits"
        assert int.from_bytes(f[3][:4], "big") == 1
        assert int.from_bytes(f[3][4:8], "big") == 0
    finally:
        c.close()


def test_a_retired_connection_is_closed_after_the_drain_timeout(dpki, procs, tmp_path):
    up = StallUpstream()
    px = proxy(dpki, procs, tmp_path, up, "--max-connection-lifetime", "1s",
               "--drain-timeout", "1s")
    c = RawH2(dpki, px.port)
    try:
        c.request(1, good("/public/hold-retire", px.port))
        px.log.wait_event("connection_closed", 0, timeout=5)
        goaway, closed = ended(c, 6)
        assert goaway is not None and closed, (goaway, closed)
    finally:
        c.close()
    ev = px.log.wait_event("h2_goaway_timeout", 0)
    assert ev["open_streams"] == 1 and "1000 ms" in ev["reason"], ev
    assert until(lambda: up.open == 0)


# --- 5. the limits as settings -----------------------------------------------------------

def test_h2_settings_are_advertised_as_configured(dpki, procs, tmp_path):
    up = StallUpstream()
    px = proxy(dpki, procs, tmp_path, up, "--h2-max-streams", "7",
               "--h2-stream-window", "131072", "--h2-connection-window", "2097152")
    c = RawH2(dpki, px.port)
    try:
        f = c.wait_for(lambda f: f[0] == SETTINGS and not f[1] & ACK)
        got = {}
        for k in range(0, len(f[3]), 6):
            ident, value = struct.unpack(">HI", f[3][k:k + 6])
            got[ident] = value
        assert got[3] == 7 and got[4] == 131072, got
        f = c.wait_for(lambda f: f[0] == WINDOW_UPDATE and f[2] == 0)
        assert int.from_bytes(f[3], "big") == 2097152 - 65535
    finally:
        c.close()


@pytest.mark.parametrize("flag,value,words", [
    ("--h2-max-streams", "0", "1 to 1000 streams"),
    ("--h2-max-streams", "1001", "1 to 1000 streams"),
    ("--h2-stream-window", "1000", "16384 to 16777216 bytes"),
    ("--h2-connection-window", "100000000", "65535 to 67108864 bytes"),
    ("--h2-max-upstreams", "0", "1 to 1000 connections"),
    ("--h2-max-held-bytes", "10", "65536 to 1073741824 bytes"),
    ("--h2-stream-timeout", "0", "duration"),
])
def test_check_names_the_h2_setting_and_its_range(dpki, tmp_path, flag, value, words):
    p = subprocess.run([dpki.duet_bin, "proxy", "--listen", "127.0.0.1:%d" % free_port(),
                        "--cert", dpki.server_crt, "--key", dpki.server_key,
                        "--cacert", dpki.roots, "--target", "127.0.0.1:1", "--allow", "any",
                        flag, value, "--check"], capture_output=True, text=True, timeout=20)
    assert p.returncode == 2, p.stdout
    assert flag in p.stderr and '"%s"' % value in p.stderr and words in p.stderr, p.stderr


def test_check_names_the_yaml_key_of_an_h2_setting(dpki, tmp_path):
    cfg = tmp_path / "proxy.yaml"
    cfg.write_text("""\
listeners:
  - name: web
    listen: 127.0.0.1:%d
    cert: %s
    key: %s
    cacert: %s
    target: [127.0.0.1:1]
    rules:
      - {name: all, allow: [any]}
limits:
  h2_max_upstreams: 5000
""" % (free_port(), dpki.server_crt, dpki.server_key, dpki.roots))
    p = subprocess.run([dpki.duet_bin, "proxy", "--config", cfg, "--check"],
                       capture_output=True, text=True, timeout=20)
    assert p.returncode != 0, p.stdout
    assert "proxy.yaml:11:21: limits.h2_max_upstreams" in p.stderr, p.stderr
    assert "1 to 1000 connections" in p.stderr, p.stderr
