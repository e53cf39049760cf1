# SPDX-License-Identifier: Apache-2.0
"""HTTP/2 from clients through `duet proxy` (http mode) to an HTTP/1.1 upstream (issue 15).

Real clients (curl --http2, nghttp) with client certificates: each stream is decided like an
HTTP/1.1 request (policy, the identity header replacing any copy the client sent), request
bodies arrive intact through flow control, many streams share one connection, a client that
negotiates http/1.1 is served as before.  A raw-frame client (the stdlib's ssl and frames built
here) sends what RFC 9113 forbids and a rapid-reset burst: RST_STREAM PROTOCOL_ERROR and GOAWAY
ENHANCE_YOUR_CALM as docs/proxy.md says, and the proxy still serves the next client.
"""

import hashlib
import json
import os
import random
import signal
import socket
import ssl
import string
import struct
import subprocess
import threading
import time

import pytest

from proxyutil import (TcpServer, _EchoHandler, _ThreadingHTTPServer, client_context, free_port,
                       https_request, metrics, start_http_proxy)

ALICE = "spiffe://test-corp/alice"

RULES = """\
      - {name: alice-public, allow: ["uri:%s"], path_prefix: /public/}
      - {name: alice-upload, allow: ["uri:%s"], methods: [POST], path_prefix: /upload/}
""" % (ALICE, ALICE)


def tool(name):
    for d in ("/usr/bin", "/bin", "/usr/local/bin"):
        if os.access(os.path.join(d, name), os.X_OK):
            return os.path.join(d, name)
    pytest.fail("%s is not installed (scripts/deps.sh installs it)" % name, pytrace=False)


def curl(dpki, url, *extra, cert="alice", timeout=30):
    """curl with a client certificate; returns (status, http_version, body bytes)."""
    args = [tool("curl"), "-sS", "--cacert", str(dpki.roots), "-o", "-",
            "-w", "\n%{http_code} %{http_version}"]
    if cert is not None:
        args += ["--cert", str(getattr(dpki, cert + "_crt")),
                 "--key", str(getattr(dpki, cert + "_key"))]
    p = subprocess.run(args + list(extra) + [url], capture_output=True, timeout=timeout)
    assert p.returncode == 0, p.stderr.decode(errors="replace")
    body, _, tail = p.stdout.rpartition(b"\n")
    code, version = tail.decode().split()
    return int(code), version, body


@pytest.fixture
def h2proxy(dpki, procs, tmp_path, echo):
    return start_http_proxy(dpki, procs, tmp_path, echo.port, rules=RULES)


def url(px, path):
    return "https://localhost:%d%s" % (px.port, path)


def xfcc_of(req):
    return [v for k, v in req["headers"] if k.lower().replace("_", "-") ==
            "x-forwarded-client-cert"]


def test_curl_h2_get_carries_identity_not_the_forged_copy(dpki, h2proxy, echo):
    mark = h2proxy.log.mark()
    before = len(echo.requests)
    status, version, body = curl(
        dpki, url(h2proxy, "/public/./a/../hello?x=1"), "--http2",
        "-H", "X-Forwarded-Client-Cert: By=spiffe://forged;URI=spiffe://test-corp/admin",
        "-H", "x_forwarded_client_cert: URI=spiffe://test-corp/admin")
    assert (status, version) == (200, "2"), body
    req = json.loads(body)
    assert req["path"] == "/public/hello?x=1"  # normalised as for HTTP/1.1
    assert len(echo.requests) == before + 1
    xf = xfcc_of(req)
    assert len(xf) == 1 and "URI=%s" % ALICE in xf[0], req["headers"]
    assert "forged" not in json.dumps(req["headers"]) and "admin" not in xf[0]
    hosts = [v for k, v in req["headers"] if k.lower() == "host"]
    assert hosts == ["localhost:%d" % h2proxy.port], req["headers"]
    ev = h2proxy.log.wait_event("authz", mark, path="/public/hello?x=1")
    assert (ev["decision"], ev["rule"], ev["proto"], ev["method"]) == \
        ("allow", "alice-public", "h2", "GET")
    assert ev["identity"] == ALICE


def test_policy_refusal_on_h2_is_403_with_the_rule(dpki, h2proxy, echo):
    mark = h2proxy.log.mark()
    before = len(echo.requests)
    status, version, body = curl(dpki, url(h2proxy, "/private/x"), "--http2")
    assert (status, version) == (403, "2")
    answer = json.loads(body)
    assert answer == {"error": "forbidden", "rule": "default-deny", "identity": ALICE}
    ev = h2proxy.log.wait_event("authz", mark, path="/private/x")
    assert (ev["decision"], ev["rule"], ev["proto"]) == ("deny", "default-deny", "h2")
    # bob is verified but no rule allows him; /upload/ is for POST only.
    status, _, body = curl(dpki, url(h2proxy, "/public/x"), "--http2", cert="bob")
    assert status == 403 and json.loads(body)["rule"] == "default-deny"
    status, _, body = curl(dpki, url(h2proxy, "/upload/x"), "--http2", "-X", "DELETE")
    assert status == 403
    ev = h2proxy.log.wait_event("authz", mark, path="/upload/x")
    assert (ev["decision"], ev["method"], ev["proto"]) == ("deny", "DELETE", "h2")
    assert len(echo.requests) == before  # none of them reached the upstream


def test_post_body_of_megabytes_arrives_intact(dpki, h2proxy, echo, tmp_path):
    rnd = random.Random(15)
    data = "".join(rnd.choice(string.ascii_letters) for _ in range(3 * 1024 * 1024 + 17))
    f = tmp_path / "body.txt"
    f.write_text(data)
    status, version, body = curl(dpki, url(h2proxy, "/upload/big"), "--http2",
                                 "--data-binary", "@%s" % f, "-H", "Content-Type: text/plain")
    assert (status, version) == (200, "2")
    req = json.loads(body)
    assert req["method"] == "POST" and len(req["body"]) == len(data)
    assert hashlib.sha256(req["body"].encode()).hexdigest() == \
        hashlib.sha256(data.encode()).hexdigest()
    lengths = [v for k, v in req["headers"] if k.lower() == "content-length"]
    assert lengths == [str(len(data))]


def test_many_concurrent_streams_on_one_connection(dpki, h2proxy, echo):
    before = len(echo.requests)
    p = subprocess.run([tool("nghttp"), "-n", "-s", "-m", "50",
                        "--cert", str(dpki.alice_crt), "--key", str(dpki.alice_key),
                        url(h2proxy, "/public/many")],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    # One statistics line per answered stream (nghttp -s): "+... +...  200  ... /public/many".
    lines = [ln for ln in p.stdout.splitlines() if "/public/many" in ln]
    assert len(lines) == 50, p.stdout
    assert all(" 200 " in ln for ln in lines), p.stdout
    assert len(echo.requests) == before + 50
    assert all(r["path"] == "/public/many" for r in echo.requests[before:])


def test_http11_client_still_served_and_alpn_http11_turns_h2_off(dpki, procs, tmp_path, echo,
                                                                 h2proxy):
    status, body, conn = https_request(h2proxy.port, "/public/old",
                                       client_context(dpki.roots, dpki.alice_crt,
                                                      dpki.alice_key))
    conn.close()
    assert status == 200 and body["path"] == "/public/old"
    status, version, _ = curl(dpki, url(h2proxy, "/public/h1"), "--http1.1")
    assert (status, version) == (200, "1.1")
    d = tmp_path / "h1only"
    d.mkdir()
    px = start_http_proxy(dpki, procs, d, echo.port, rules=RULES,
                          extra_yaml="    alpn: [http/1.1]\n")
    status, version, body = curl(dpki, url(px, "/public/fallback"), "--http2")
    assert (status, version) == (200, "1.1")
    assert json.loads(body)["path"] == "/public/fallback"


def test_h2_requests_are_counted_with_proto_label(dpki, procs, tmp_path, echo):
    admin = free_port()
    px = start_http_proxy(dpki, procs, tmp_path, echo.port, rules=RULES,
                          extra_args=("--admin", "127.0.0.1:%d" % admin))
    assert curl(dpki, url(px, "/public/m"), "--http2")[0] == 200
    assert curl(dpki, url(px, "/denied"), "--http2")[0] == 403
    m = metrics(admin)
    assert m.get('duet_upstream_connections_total{kind="new"}') == 1, m
    # The next client's stream takes the upstream connection the first one gave back.
    assert curl(dpki, url(px, "/public/m2"), "--http2")[0] == 200
    assert metrics(admin).get('duet_upstream_connections_total{kind="reused"}') == 1
    ok = [k for k in m if k.startswith("duet_requests_total") and 'proto="h2"' in k and
          'code="200"' in k]
    no = [k for k in m if k.startswith("duet_requests_total") and 'proto="h2"' in k and
          'code="403"' in k]
    assert ok and m[ok[0]] == 1 and no and m[no[0]] == 1, m
    assert m.get('duet_h2_streams_total{listener="web"}') == 2, m
    m = metrics(admin)
    assert m[ok[0]] == 2 and m.get('duet_h2_streams_total{listener="web"}') == 3, m


# --- a raw-frame client --------------------------------------------------------------------

DATA, HEADERS, RST_STREAM, SETTINGS, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = \
    0, 1, 3, 4, 6, 7, 8, 9
END_STREAM, END_HEADERS, ACK = 0x1, 0x4, 0x1
PROTOCOL_ERROR, CANCEL, ENHANCE_YOUR_CALM = 0x1, 0x8, 0xb
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def frame(ftype, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + \
        struct.pack(">I", stream & 0x7fffffff) + payload


def hpack_int(value, prefix_bits, first=0):
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first | value])
    out = [first | limit]
    value -= limit
    while value >= 128:
        out.append((value & 0x7f) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def hpack(fields):
    """Each field as a literal without indexing, new name, no Huffman (RFC 7541 6.2.2)."""
    out = b""
    for name, value in fields:
        n, v = name.encode(), value.encode()
        out += b"\x00" + hpack_int(len(n), 7) + n + hpack_int(len(v), 7) + v
    return out


class RawH2:
    """One TLS connection with ALPN h2 and alice's certificate, speaking frames by hand."""

    def __init__(self, dpki, port):
        ctx = ssl.create_default_context(cafile=str(dpki.roots))
        ctx.load_cert_chain(str(dpki.alice_crt), str(dpki.alice_key))
        ctx.set_alpn_protocols(["h2"])
        raw = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.s = ctx.wrap_socket(raw, server_hostname="localhost")
        assert self.s.selected_alpn_protocol() == "h2"
        self.buf = b""
        self.s.sendall(PREFACE + frame(SETTINGS, 0, 0))

    def send(self, data):
        self.s.sendall(data)

    def request(self, stream, fields, end_stream=True):
        self.send(frame(HEADERS, END_HEADERS | (END_STREAM if end_stream else 0), stream,
                        hpack(fields)))

    def next_frame(self, timeout=10):
        deadline = time.monotonic() + timeout
        while True:
            if len(self.buf) >= 9:
                n = int.from_bytes(self.buf[:3], "big")
                if len(self.buf) >= 9 + n:
                    ftype, flags = self.buf[3], self.buf[4]
                    stream = int.from_bytes(self.buf[5:9], "big") & 0x7fffffff
                    payload = self.buf[9:9 + n]
                    self.buf = self.buf[9 + n:]
                    if ftype == SETTINGS and not flags & ACK:
                        self.send(frame(SETTINGS, ACK, 0))
                    return ftype, flags, stream, payload
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no frame from the proxy")
            self.s.settimeout(left)
            chunk = self.s.recv(65536)
            if not chunk:
                return None
            self.buf += chunk

    def wait_for(self, pred, timeout=10):
        """Frames until pred(frame) holds; returns it (None when the connection ended)."""
        seen = []
        deadline = time.monotonic() + timeout
        while True:
            f = self.next_frame(max(0.1, deadline - time.monotonic()))
            if f is None:
                return None
            seen.append(f[:3])
            if pred(f):
                return f

    def close(self):
        self.s.close()


def good(path="/public/raw", port=0):
    return [(":method", "GET"), (":scheme", "https"), (":authority", "localhost:%d" % port),
            (":path", path)]


def rst_code(f):
    return int.from_bytes(f[3][:4], "big")


@pytest.mark.parametrize("what,fields", [
    ("uppercase header name", lambda p: good(port=p) + [("X-Upper", "1")]),
    ("connection header", lambda p: good(port=p) + [("connection", "keep-alive")]),
    ("transfer-encoding", lambda p: good(port=p) + [("transfer-encoding", "chunked")]),
    ("te other than trailers", lambda p: good(port=p) + [("te", "gzip")]),
    ("missing :path", lambda p: good(port=p)[:3]),
    ("pseudo-header after a regular one", lambda p: good(port=p)[:3] + [("accept", "*/*"),
                                                                      (":path", "/public/x")]),
    ("repeated :method", lambda p: good(port=p) + [(":method", "GET")]),
    (":path without a slash", lambda p: good("public/x", p)),
    ("LF in a value", lambda p: good(port=p) + [("x-a", "a\nb")]),
    # HTTP/2 allows these; the HTTP/1.1 request they would become does not.
    ("control byte in a value", lambda p: good(port=p) + [("x-a", "a\x17b")]),
    ("non-ASCII in :path", lambda p: good("/public/caf\u00e9", p)),
])
def test_malformed_request_is_reset_with_protocol_error(dpki, h2proxy, echo, what, fields):
    before = len(echo.requests)
    c = RawH2(dpki, h2proxy.port)
    try:
        c.request(1, fields(h2proxy.port))
        f = c.wait_for(lambda f: f[0] in (RST_STREAM, GOAWAY, HEADERS) and f[2] in (0, 1))
        assert f is not None and f[0] == RST_STREAM and f[2] == 1, (what, f)
        assert rst_code(f) == PROTOCOL_ERROR, what
        # The connection goes on: a good request on the next stream is answered.
        c.request(3, good(port=h2proxy.port))
        f = c.wait_for(lambda f: f[2] == 3 and f[0] in (HEADERS, RST_STREAM))
        assert f is not None and f[0] == HEADERS, (what, f)
        assert b"\x88" in f[3][:1] or f[3].startswith(b"\x88"), f  # :status 200 (indexed)
    finally:
        c.close()
    assert len(echo.requests) == before + 1
    assert echo.requests[-1]["path"] == "/public/raw"


def test_malformed_requests_are_logged_with_the_reason(dpki, h2proxy):
    mark = h2proxy.log.mark()
    c = RawH2(dpki, h2proxy.port)
    try:
        c.request(1, good(port=h2proxy.port) + [("x-sp", " padded")])
        f = c.wait_for(lambda f: f[0] == RST_STREAM and f[2] == 1)
        assert f is not None and rst_code(f) == PROTOCOL_ERROR
        c.request(3, good(port=h2proxy.port) + [("X-Upper", "1")])
        f = c.wait_for(lambda f: f[0] == RST_STREAM and f[2] == 3)
        assert f is not None and rst_code(f) == PROTOCOL_ERROR
    finally:
        c.close()
    evs = h2proxy.log.since(mark)
    text = json.dumps([e for e in evs if e.get("event") in ("request_refused", "h2_error")])
    assert "x-sp" in text, evs
    assert "X-Upper" in text, evs


def test_header_list_past_max_header_size_is_431(dpki, procs, tmp_path, echo):
    px = start_http_proxy(dpki, procs, tmp_path, echo.port, rules=RULES,
                          extra_args=("--max-header-size", "4096"))
    mark = px.log.mark()
    before = len(echo.requests)
    c = RawH2(dpki, px.port)
    try:
        c.request(1, good(port=px.port) + [("x-big-%d" % i, "v" * 100) for i in range(60)])
        f = c.wait_for(lambda f: f[2] == 1 and f[0] in (HEADERS, RST_STREAM))
        assert f is not None and f[0] == HEADERS
        body = c.wait_for(lambda f: f[2] == 1 and f[0] == DATA)
        assert json.loads(body[3])["error"] == "header_too_large"
    finally:
        c.close()
    ev = px.log.wait_event("request_refused", mark)
    assert ev["status"] == 431 and ev["proto"] == "h2" and "4096" in ev["reason"]
    assert len(echo.requests) == before


def test_rapid_reset_burst_gets_goaway_and_others_are_served(dpki, h2proxy, echo):
    mark = h2proxy.log.mark()
    c = RawH2(dpki, h2proxy.port)
    try:
        burst = b""
        for i in range(150):
            sid = 1 + 2 * i
            burst += frame(HEADERS, END_HEADERS | END_STREAM, sid,
                           hpack(good("/public/rr", h2proxy.port)))
            burst += frame(RST_STREAM, 0, sid, struct.pack(">I", CANCEL))
        c.send(burst)
        f = c.wait_for(lambda f: f[0] == GOAWAY, timeout=15)
        assert f is not None, "no GOAWAY after a rapid-reset burst"
        assert int.from_bytes(f[3][4:8], "big") == ENHANCE_YOUR_CALM
    finally:
        c.close()
    ev = h2proxy.log.wait_event("h2_abuse", mark)
    assert "rapid reset" in ev["reason"] and ev["h2_error"] == "ENHANCE_YOUR_CALM"
    assert len(h2proxy.log.since(mark, "h2_abuse")) == 1  # one line per connection
    status, version, body = curl(dpki, url(h2proxy, "/public/after"), "--http2")
    assert (status, version) == (200, "2") and json.loads(body)["path"] == "/public/after"


def test_grpc_client_refused_gets_permission_denied(dpki, h2proxy, echo, tmp_path):
    msg = tmp_path / "empty.grpc"
    msg.write_bytes(b"\x00\x00\x00\x00\x00")  # one gRPC message: uncompressed, 0 bytes
    mark = h2proxy.log.mark()
    before = len(echo.requests)
    # nghttp: it sends the message and reads the answer whatever their order on the wire.
    p = subprocess.run([tool("nghttp"), "-v", "-d", str(msg),
                        "-H", "content-type: application/grpc", "-H", "te: trailers",
                        "--cert", str(dpki.alice_crt), "--key", str(dpki.alice_key),
                        url(h2proxy, "/pkg.Admin/Delete")],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stdout + p.stderr
    head = {}
    for ln in p.stdout.splitlines():
        if "recv (stream_id=" in ln:
            name, _, value = ln.split(") ", 1)[1].partition(": ")
            head[name] = value
    assert head[":status"] == "200", p.stdout
    assert head["content-type"] == "application/grpc"
    assert head["grpc-status"] == "7", p.stdout
    assert head["grpc-message"] == "duet proxy: denied by rule default-deny", p.stdout
    # A trailers-only answer: one HEADERS frame that ends the stream, no DATA.
    assert "recv DATA frame" not in p.stdout, p.stdout
    ev = h2proxy.log.wait_event("authz", mark, path="/pkg.Admin/Delete")
    assert (ev["decision"], ev["proto"]) == ("deny", "h2")
    assert len(echo.requests) == before


class TrailerUpstream(TcpServer):
    """Answers every request with a chunked body and a trailer, keeping the connection."""

    def __init__(self):
        self.heads = []
        super().__init__()

    def _conn(self, c):
        buf = b""
        with c:
            while True:
                head, buf = self.recv_head(c, buf)
                if head is None:
                    return
                self.heads.append(head)
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                          b"Transfer-Encoding: chunked\r\nTrailer: x-checksum\r\n"
                          b"Connection: keep-alive, x-hop\r\nX-Hop: secret\r\n\r\n"
                          b"5\r\nhello\r\n6\r\n world\r\n0\r\nx-checksum: abc123\r\n\r\n")


def test_upstream_chunked_trailers_become_h2_trailers(dpki, procs, tmp_path):
    up = TrailerUpstream()
    try:
        px = start_http_proxy(dpki, procs, tmp_path, up.port, rules=RULES)
        hdr = tmp_path / "headers.txt"
        status, version, body = curl(dpki, url(px, "/public/t"), "--http2", "-D", str(hdr))
        assert (status, version, body) == (200, "2", b"hello world")
        text = hdr.read_text().lower()
        assert "x-checksum: abc123" in text, text  # the trailer, after the body
        # Hop-by-hop fields of the HTTP/1.1 response never reach the HTTP/2 client.
        assert "transfer-encoding" not in text and "x-hop" not in text, text
        assert "connection:" not in text, text
        assert up.heads and up.heads[-1].startswith(b"GET /public/t HTTP/1.1\r\n")
    finally:
        up.close()


def ended(c, timeout=10):
    """Frames until the proxy ends the connection: the GOAWAY seen (or None), and True once
    the connection is closed."""
    goaway = None
    try:
        while True:
            f = c.next_frame(timeout)
            if f is None:
                return goaway, True
            if f[0] == GOAWAY:
                goaway = f
    except OSError:  # reset, or TLS ended without close_notify
        return goaway, True
    except TimeoutError:
        return goaway, False


def test_continuation_flood_ends_the_connection(dpki, h2proxy, echo):
    mark = h2proxy.log.mark()
    before = len(echo.requests)
    c = RawH2(dpki, h2proxy.port)
    try:
        block = hpack(good("/public/cont", h2proxy.port))
        c.send(frame(HEADERS, 0, 1, block))  # no END_HEADERS: CONTINUATION frames follow
        flood = b"".join(frame(CONTINUATION, 0, 1, hpack([("x-c%d" % i, "v")]))
                         for i in range(40))
        try:
            c.send(flood)
        except OSError:  # the proxy may have closed already (ssl.SSLError is an OSError)
            pass
        goaway, closed = ended(c)
        assert closed, "the connection stayed open through a CONTINUATION flood"
        assert goaway is not None
        assert int.from_bytes(goaway[3][4:8], "big") == ENHANCE_YOUR_CALM
    finally:
        c.close()
    assert len(echo.requests) == before  # the request never went upstream
    assert h2proxy.log.wait_event("h2_error", mark)
    status, version, _ = curl(dpki, url(h2proxy, "/public/after-cont"), "--http2")
    assert (status, version) == (200, "2")


def test_ping_flood_ends_the_connection(dpki, h2proxy):
    mark = h2proxy.log.mark()
    c = RawH2(dpki, h2proxy.port)
    try:
        flood = b"".join(frame(PING, 0, 0, struct.pack(">Q", i)) for i in range(3000))
        try:
            c.send(flood)
        except OSError:  # the proxy may have closed already (ssl.SSLError is an OSError)
            pass
        _, closed = ended(c)
        assert closed, "the connection stayed open through a PING flood"
        # (its GOAWAY may be lost: the client never read the acks queued before it)
    finally:
        c.close()
    ev = h2proxy.log.wait_event("h2_error", mark)
    assert "flood" in json.dumps(ev).lower(), ev
    status, version, _ = curl(dpki, url(h2proxy, "/public/after-ping"), "--http2")
    assert (status, version) == (200, "2")


class RecordingUpstream(TcpServer):
    """Records every byte each connection sends; answers 200 once a request's body is read
    (Content-Length or chunked, parsed strictly enough for these tests)."""

    def __init__(self):
        self.conns = []
        super().__init__()

    def _conn(self, c):
        rec = []
        self.conns.append(rec)
        buf = b""
        with c:
            head, buf = self.recv_head(c, buf, rec)
            if head is None:
                return
            if b"transfer-encoding: chunked" in head.lower():
                while not buf.endswith(b"0\r\n\r\n"):
                    d = c.recv(65536)
                    if not d:
                        return
                    rec.append(d)
                    buf += d
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")

    def received(self, i):
        return b"".join(self.conns[i])


def test_body_without_content_length_goes_upstream_chunked(dpki, procs, tmp_path):
    up = RecordingUpstream()
    try:
        px = start_http_proxy(dpki, procs, tmp_path, up.port, rules=RULES)
        c = RawH2(dpki, px.port)
        try:
            c.request(1, [(":method", "POST"), (":scheme", "https"),
                          (":authority", "localhost:%d" % px.port), (":path", "/upload/c")],
                      end_stream=False)
            c.send(frame(DATA, 0, 1, b"abc"))
            c.send(frame(DATA, END_STREAM, 1, b"de"))
            f = c.wait_for(lambda f: f[2] == 1 and f[0] in (HEADERS, RST_STREAM))
            assert f is not None and f[0] == HEADERS, f
        finally:
            c.close()
        got = up.received(0)
        head, _, body = got.partition(b"\r\n\r\n")
        assert head.startswith(b"POST /upload/c HTTP/1.1\r\n")
        assert b"\r\nTransfer-Encoding: chunked" in head and b"Content-Length" not in head
        assert body == b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
    finally:
        up.close()


def test_data_beyond_content_length_never_reaches_the_upstream(dpki, procs, tmp_path):
    up = RecordingUpstream()
    try:
        px = start_http_proxy(dpki, procs, tmp_path, up.port, rules=RULES)
        c = RawH2(dpki, px.port)
        try:
            c.request(1, [(":method", "POST"), (":scheme", "https"),
                          (":authority", "localhost:%d" % px.port), (":path", "/upload/s"),
                          ("content-length", "3")], end_stream=False)
            smuggled = b"abcGET /admin HTTP/1.1\r\nHost: x\r\n\r\n"
            c.send(frame(DATA, END_STREAM, 1, smuggled))
            f = c.wait_for(lambda f: f[2] == 1 and f[0] in (HEADERS, RST_STREAM))
            assert f is not None and f[0] == RST_STREAM and rst_code(f) == PROTOCOL_ERROR, f
        finally:
            c.close()
        time.sleep(0.3)
        got = b"".join(up.received(i) for i in range(len(up.conns)))
        assert b"/admin" not in got, got
        assert got.count(b"HTTP/1.1\r\n") <= 1, got
    finally:
        up.close()


class _PeerCertHandler(_EchoHandler):
    def _answer(self):
        self.server.peers.append(self.connection.getpeercert())
        super()._answer()

    do_GET = do_POST = _answer


def test_h2_streams_reach_an_mtls_upstream_with_the_proxys_certificate(dpki, procs, tmp_path):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(dpki.server_crt), str(dpki.server_key))
    ctx.load_verify_locations(str(dpki.roots))
    ctx.verify_mode = ssl.CERT_REQUIRED
    srv = _ThreadingHTTPServer(("127.0.0.1", 0), _PeerCertHandler)
    srv.requests, srv.peers = [], []
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        px = start_http_proxy(dpki, procs, tmp_path, srv.server_address[1], rules=RULES,
                              extra_yaml="    upstream_tls: {cert: %s, key: %s, cacert: %s, "
                                         "server_name: localhost}\n"
                                         % (dpki.gateway_crt, dpki.gateway_key, dpki.roots))
        for i in range(3):
            status, version, body = curl(dpki, url(px, "/public/tls%d" % i), "--http2")
            assert (status, version) == (200, "2"), body
            req = json.loads(body)
            assert req["path"] == "/public/tls%d" % i
            assert "URI=%s" % ALICE in xfcc_of(req)[0]
        subjects = [dict(x[0] for x in p["subject"]) for p in srv.peers]
        assert [s_["commonName"] for s_ in subjects] == ["gateway"] * 3, subjects
    finally:
        srv.shutdown()
        srv.server_close()


def test_refused_upload_is_answered_then_stopped_with_rst_no_error(dpki, h2proxy, echo):
    before = len(echo.requests)
    c = RawH2(dpki, h2proxy.port)
    try:
        c.request(1, [(":method", "POST"), (":scheme", "https"),
                      (":authority", "localhost:%d" % h2proxy.port), (":path", "/private/up"),
                      ("content-length", "100000")], end_stream=False)
        c.send(frame(DATA, 0, 1, b"x" * 1000))
        frames = []
        f = c.wait_for(lambda f: (frames.append(f) or True) and f[2] == 1 and f[0] == RST_STREAM)
        assert f is not None and rst_code(f) == 0, frames  # NO_ERROR: stop sending, no error
        kinds = [x[0] for x in frames if x[2] == 1]
        assert kinds[0] == HEADERS and DATA in kinds, kinds  # the 403 came first, whole
        body = b"".join(x[3] for x in frames if x[2] == 1 and x[0] == DATA)
        assert json.loads(body)["rule"] == "default-deny"
        # The connection goes on.
        c.request(3, good(port=h2proxy.port))
        f = c.wait_for(lambda f: f[2] == 3 and f[0] in (HEADERS, RST_STREAM))
        assert f is not None and f[0] == HEADERS
    finally:
        c.close()
    assert len(echo.requests) == before + 1


def test_large_response_to_a_client_with_small_windows_arrives_whole(dpki, h2proxy, echo,
                                                                     tmp_path):
    """The client's windows (16 KiB per stream, 32 KiB per connection) pace the response:
    the proxy holds what the window does not let out and reads the upstream as it drains."""
    rnd = random.Random(44487)
    data = "".join(rnd.choice(string.ascii_letters) for _ in range(2 * 1024 * 1024))
    f = tmp_path / "up.txt"
    f.write_text(data)
    out = tmp_path / "out.json"
    with open(out, "wb") as sink:
        p = subprocess.run([tool("nghttp"), "-w", "14", "-W", "15", "-d", str(f),
                            "--cert", str(dpki.alice_crt), "--key", str(dpki.alice_key),
                            url(h2proxy, "/upload/window")],
                           stdout=sink, stderr=subprocess.PIPE, text=False, timeout=120)
    assert p.returncode == 0, p.stderr
    req = json.loads(out.read_bytes())
    assert req["path"] == "/upload/window" and len(req["body"]) == len(data)
    assert hashlib.sha256(req["body"].encode()).hexdigest() == \
        hashlib.sha256(data.encode()).hexdigest()


class SlowUpstream(TcpServer):
    """Answers each request once told to (self.go), so a test can act while it waits."""

    def __init__(self):
        self.go = threading.Event()
        self.asked = threading.Event()
        super().__init__()

    def _conn(self, c):
        with c:
            head, _ = self.recv_head(c, b"")
            if head is None:
                return
            self.asked.set()
            self.go.wait(30)
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\nConnection: close\r\n\r\nslow")


def test_sigterm_sends_goaway_and_lets_the_stream_in_flight_finish(dpki, procs, tmp_path):
    up = SlowUpstream()
    try:
        px = start_http_proxy(dpki, procs, tmp_path, up.port, rules=RULES)
        c = RawH2(dpki, px.port)
        try:
            c.request(1, good("/public/slow", px.port))
            assert up.asked.wait(10)
            mark = px.log.mark()
            px.proc.send_signal(signal.SIGTERM)
            px.log.wait_event("shutdown", mark)
            # The next event on the connection (the answer arriving) announces the end.
            up.go.set()
            frames = []
            f = c.wait_for(lambda f: (frames.append(f) or True) and f[0] == DATA and f[2] == 1
                           and f[1] & END_STREAM)
            assert f is not None and f[3] == b"slow", frames
            goaways = [x for x in frames if x[0] == GOAWAY]
            assert goaways, frames
            assert int.from_bytes(goaways[0][3][:4], "big") == 1  # last stream: the one served
            assert int.from_bytes(goaways[0][3][4:8], "big") == 0  # NO_ERROR
            assert c.next_frame(10) is None  # then the connection ends
        finally:
            c.close()
    finally:
        up.go.set()
        up.close()


# --- what a client that stops reading, or makes the proxy reset, gets ---------------------

class HoldingUpstream(TcpServer):
    """Counts request heads; answers each with a large body (big bytes) or nothing; keeps the
    connection open."""

    def __init__(self, big=0):
        self.heads = 0
        self.big = big
        super().__init__()

    def _conn(self, c):
        buf = b""
        try:
            head, buf = self.recv_head(c, buf)
            if head is None:
                return
            with self.lock:
                self.heads += 1
            if self.big:
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % self.big)
                chunk = b"x" * 65536
                left = self.big
                while left > 0:
                    c.sendall(chunk[:min(left, 65536)])
                    left -= 65536
            while c.recv(65536):
                pass
        except OSError:
            pass


def test_a_retired_connection_that_reads_nothing_forwards_no_new_stream(dpki, procs, tmp_path):
    """Past --max-connection-lifetime (as after a revocation on reload or by OCSP), the
    GOAWAY may wait behind unread data; streams the client opens afterwards are refused
    (REFUSED_STREAM) and never reach the upstream or the policy."""
    up = HoldingUpstream(big=32 * 1024 * 1024)
    px = start_http_proxy(dpki, procs, tmp_path, up.port, rules=RULES,
                          extra_args=["--max-connection-lifetime", "2s"])
    raw = RawH2(dpki, px.port)
    raw.next_frame()
    raw.send(frame(SETTINGS, 0, 0, struct.pack(">HI", 4, 0x7fffffff)) +
             frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", 0x7fffffff - 65535)))
    raw.request(1, [(":method", "GET"), (":scheme", "https"),
                    (":authority", "localhost:%d" % px.port), (":path", "/public/big")])
    px.log.wait_event("connection_closed", 0, timeout=15)  # retired; we read nothing
    mark = px.log.mark()
    heads = up.heads
    for i in range(20):
        raw.request(3 + 2 * i, [(":method", "GET"), (":scheme", "https"),
                                (":authority", "localhost:%d" % px.port),
                                (":path", "/public/after-retire-%d" % i)])
    time.sleep(2)
    assert up.heads == heads, "streams opened after the retirement reached the upstream"
    assert [e for e in px.log.since(mark, "authz")] == []


def test_streams_the_proxy_resets_count_toward_the_rapid_reset_bound(dpki, procs, tmp_path):
    """Requests the proxy must reset (DATA beyond their content-length) free their slot like
    a client's RST_STREAM: past the bound the client gets GOAWAY ENHANCE_YOUR_CALM, not an
    upstream connection per stream (CVE-2025-8671)."""
    up = HoldingUpstream()
    px = start_http_proxy(dpki, procs, tmp_path, up.port, rules=RULES)
    raw = RawH2(dpki, px.port)
    raw.next_frame()
    sid, goaway, closed = 1, None, False
    fields = [(":method", "POST"), (":scheme", "https"), (":authority", "localhost:%d" % px.port),
              (":path", "/public/upload"), ("content-length", "1")]
    try:
        for _ in range(8):
            ids = []
            for _ in range(50):
                raw.request(sid, fields, end_stream=False)
                ids.append(sid)
                sid += 2
            for s_ in ids:
                raw.send(frame(DATA, END_STREAM, s_, b"ab"))
            time.sleep(0.2)
    except OSError:
        closed = True
    try:
        while goaway is None:
            f = raw.next_frame(5)
            if f is None:
                closed = True
                break
            if f[0] == GOAWAY:
                goaway = int.from_bytes(f[3][4:8], "big")
    except (TimeoutError, socket.timeout, OSError):
        pass
    assert goaway == ENHANCE_YOUR_CALM or closed, (goaway, closed)
    assert up.heads <= 150, up.heads
    ev = px.log.wait_event("h2_abuse", 0, timeout=10)
    assert "streams reset within" in ev["reason"], ev


def test_open_streams_are_a_gauge_that_returns_to_zero(dpki, procs, tmp_path):
    """duet_h2_streams_open counts the streams clients hold open now, on every worker."""
    up = HoldingUpstream()
    admin = free_port()
    px = start_http_proxy(dpki, procs, tmp_path, up.port, rules=RULES,
                          extra_args=["--admin", "127.0.0.1:%d" % admin])
    assert metrics(admin)["duet_h2_streams_open"] == 0
    raw = RawH2(dpki, px.port)
    raw.next_frame()
    for i in range(3):  # answered by nobody: the upstream holds them
        raw.request(1 + 2 * i, good("/public/held-%d" % i, px.port))
    deadline = time.monotonic() + 10
    while metrics(admin)["duet_h2_streams_open"] != 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert metrics(admin)["duet_h2_streams_open"] == 3
    raw.send(frame(RST_STREAM, 0, 1, struct.pack(">I", 8)))  # CANCEL one
    deadline = time.monotonic() + 10
    while metrics(admin)["duet_h2_streams_open"] != 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert metrics(admin)["duet_h2_streams_open"] == 2
    raw.close()  # the connection ends with two streams open
    deadline = time.monotonic() + 10
    while metrics(admin)["duet_h2_streams_open"] != 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert metrics(admin)["duet_h2_streams_open"] == 0
