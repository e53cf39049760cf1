# SPDX-License-Identifier: Apache-2.0
"""OCSP on `duet ca serve`'s plain listener read and answered without libevent's request path
(docs/ca-server.md, "OCSP on the plain listener"), against the real binary with raw sockets.

The lean path answers exactly what evhttp would (same head, same bytes, same audit line and
counters) and hands a connection to evhttp, at a request boundary and for good, at the first
request it does not read: other endpoints, framing games (two Content-Lengths, a negative or
huge one, Transfer-Encoding, smuggled requests in a body), heads over its limit, bodies over
--max-body, answers the client leaves unread. Requests split at every byte read the same as
whole ones; a stalled head times out as before; connections still count toward
--max-connections.
"""

import base64
import socket
import time
import urllib.parse

import pytest

from test_ca_serve import CAServer, openssl
from test_ca_serve_limits import json_error, metric, read_all, responses, wait_for


@pytest.fixture(scope="module")
def srv(make_ca, duet_bin):
    ca = make_ca("Lean Corp")
    s = CAServer(duet_bin, ca).start()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def req(srv):
    """(DER request without a nonce, its GET target) for a certificate of srv's CA."""
    ca = srv.ca
    crt, _, _ = ca.issued("lean", "server", "--san", "dns:lean.example")
    f = ca.base / "lean.req"
    p = openssl("ocsp", "-issuer", ca.issuing, "-cert", crt, "-reqout", f, "-no_nonce")
    assert p.returncode == 0, p
    der = f.read_bytes()
    target = "/ocsp/" + urllib.parse.quote(base64.b64encode(der).decode(), safe="")
    return der, target.encode()


def post(der, extra=b"", version=b"1.1"):
    return (b"POST /ocsp HTTP/" + version + b"\r\nHost: ca\r\nContent-Type: "
            b"application/ocsp-request\r\n" + extra + b"Content-Length: %d\r\n\r\n" % len(der)
            + der)


def get(target, extra=b""):
    return b"GET " + target + b" HTTP/1.1\r\nHost: ca\r\n" + extra + b"\r\n"


def conn(srv, timeout=10):
    s = socket.create_connection(("127.0.0.1", srv.http_port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def read_answers(s, n, timeout=10):
    """The next n answers on a kept-alive connection (not waiting for a close)."""
    s.settimeout(timeout)
    data = b""
    while True:
        try:
            got = responses(data)
            if len(got) >= n and sum(len(b) for _, _, b in got) == sum(
                    int(h.get("content-length", -1)) for _, h, _ in got):
                return got
        except (ValueError, IndexError):
            pass
        chunk = s.recv(65536)
        if not chunk:
            return responses(data)
        data += chunk


def lean_count(srv):
    return sum(1 for x in srv.lines() if x["event"] == "ca_request" and x["endpoint"] == "/ocsp")


def expected_answer(srv, der):
    """The answer evhttp's path gives (Connection: close takes the request there)."""
    with conn(srv) as s:
        s.sendall(post(der, b"Connection: close\r\n"))
        ans = responses(read_all(s))
    assert len(ans) == 1 and ans[0][0] == 200, ans
    assert ans[0][1]["content-type"] == "application/ocsp-response"
    return ans[0]


def test_lean_answer_is_the_one_evhttp_gives(srv, req):
    der, target = req
    st, h_evhttp, body = expected_answer(srv, der)
    with conn(srv) as s:
        s.sendall(post(der) + get(target))
        raw = b""
        while raw.count(b"\r\n\r\n") < 2 or len(responses(raw)[-1][2]) < len(body):
            raw += s.recv(65536)
        ans = responses(raw)
        # HTTP/1.0 as ab sends it: kept alive only when asked, and said so.
        s.sendall(post(der, b"Connection: Keep-Alive\r\n", b"1.0"))
        one0 = read_answers(s, 1)
    for a in ans:
        assert a[0] == 200 and a[2] == body, a
        assert list(a[1]) == ["content-type", "cache-control", "date", "content-length"], a
        assert {k: v for k, v in a[1].items() if k != "date"} == {
            k: v for k, v in h_evhttp.items() if k not in ("date", "connection")}
    assert raw.startswith(b"HTTP/1.1 200 OK\r\n")
    assert one0[0][0] == 200 and one0[0][2] == body
    assert one0[0][1]["connection"] == "keep-alive"


def test_pipelined_requests_split_at_every_byte(srv, req):
    der, target = req
    body = expected_answer(srv, der)[2]
    stream = post(der) + get(target) + post(der)
    with conn(srv) as s:
        for i in range(1, len(stream)):
            s.sendall(stream[:i])
            time.sleep(0.002)
            s.sendall(stream[i:])
            ans = read_answers(s, 3)
            assert [a[0] for a in ans] == [200, 200, 200], (i, ans)
            assert all(a[2] == body for a in ans), i


def test_connection_handed_to_evhttp_at_the_first_other_request(srv, req):
    der, target = req
    body = expected_answer(srv, der)[2]
    st, _, crl = srv.request("GET", "/crl", tls=False)
    st, _, roots = srv.request("GET", "/roots.pem", tls=False)
    before = lean_count(srv)
    with conn(srv) as s:
        s.sendall(post(der) + b"GET /crl HTTP/1.1\r\nHost: ca\r\n\r\n" + post(der) + get(target) +
                  b"GET /roots.pem HTTP/1.1\r\nHost: ca\r\n\r\n" +
                  b"POST /ocsp HTTP/1.1\r\nHost: ca\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 2\r\nConnection: close\r\n\r\n{}")
        ans = responses(read_all(s))
    assert [a[0] for a in ans] == [200, 200, 200, 200, 200, 415], ans
    assert ans[0][2] == ans[2][2] == ans[3][2] == body
    assert ans[1][2] == crl and ans[4][2] == roots
    json_error(ans[5], 415, "unsupported_media_type")
    wait_for("audit lines", lambda: lean_count(srv) == before + 4)
    lines = [x for x in srv.lines() if x["event"] == "ca_request" and x["endpoint"] == "/ocsp"]
    # The lean line and evhttp's carry the same fields.
    lean, ev = lines[-4], lines[-3]
    assert list(lean) == list(ev), (lean, ev)
    for k in lean:
        assert lean[k] == ev[k] or k in ("time", "duration_ms"), (k, lean, ev)
    assert lean["listener"] == "http" and lean["status"] == 200 and lean["path"] == "/ocsp"
    assert lines[-2]["method"] == "GET" and lines[-2]["path"] == target.decode()


SMUGGLED = [
    # (name, bytes after one lean request, statuses expected after the first 200)
    ("two Content-Lengths", b"Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello", [400]),
    ("Content-Length and Transfer-Encoding",
     b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n%GET%", [400]),
    ("negative Content-Length", b"Content-Length: -5\r\n\r\n%GET%", [400]),
    ("huge Content-Length", b"Content-Length: 99999999999999999999\r\n\r\n%GET%", []),
    ("folded Content-Length", b"Content-Length: 5\r\n 0\r\n\r\nhello%GET%", [400]),
]


@pytest.mark.parametrize("name,rest,statuses", SMUGGLED, ids=[x[0] for x in SMUGGLED])
def test_framing_games_after_a_lean_answer_get_evhttps_refusal(srv, req, name, rest, statuses):
    der, target = req
    body = expected_answer(srv, der)[2]
    smuggled = get(target)
    with conn(srv) as s:
        s.sendall(post(der))
        assert read_answers(s, 1)[0][2] == body
        s.sendall(b"POST /ocsp HTTP/1.1\r\nHost: ca\r\nContent-Type: application/ocsp-request\r\n"
                  + rest.replace(b"%GET%", smuggled))
        ans = responses(read_all(s, timeout=15))
    # Refused, the connection closed, and the request hidden in the body never answered.
    assert [a[0] for a in ans] == statuses, (name, ans)
    if statuses:
        assert ans[0][1].get("connection") == "close", ans


def test_transfer_encoding_and_bare_lf_go_to_evhttp(srv, req):
    der, _ = req
    body = expected_answer(srv, der)[2]
    chunked = (b"POST /ocsp HTTP/1.1\r\nHost: ca\r\nContent-Type: application/ocsp-request\r\n"
               b"Transfer-Encoding: chunked\r\n\r\n%x\r\n" % len(der) + der + b"\r\n0\r\n\r\n")
    bare_lf = (b"POST /ocsp HTTP/1.1\nHost: ca\nContent-Type: application/ocsp-request\n"
               b"Content-Length: %d\n\n" % len(der) + der)
    with conn(srv) as s:
        s.sendall(post(der) + chunked + post(der) + bare_lf + post(der, b"Connection: close\r\n"))
        ans = responses(read_all(s))
    assert [a[0] for a in ans] == [200] * 5 and all(a[2] == body for a in ans), ans


def test_oversized_head_and_body_get_the_same_answers_as_before(srv, req):
    der, _ = req
    body = expected_answer(srv, der)[2]
    with conn(srv) as s:
        # A head over the lean reader's 4 KiB (evhttp's limit is 16 KiB): answered by evhttp.
        s.sendall(post(der) + post(der, b"X-Pad: " + b"a" * 6000 + b"\r\n"))
        ans = read_answers(s, 2)
        assert [a[2] == body for a in ans] == [True, True], ans
        # A body over --max-body: the API's 413, and the connection goes on.
        s.sendall(b"POST /ocsp HTTP/1.1\r\nHost: ca\r\nContent-Type: application/ocsp-request"
                  b"\r\nContent-Length: 70000\r\n\r\n" + b"\0" * 70000 + post(der))
        ans = read_answers(s, 2, timeout=15)
    json_error(ans[0], 413, "payload_too_large")
    assert ans[1][0] == 200 and ans[1][2] == body
    with conn(srv) as s:
        # A head over evhttp's own limit: its 400, the connection closed.
        s.sendall(post(der) + post(der, b"X-Pad: " + b"a" * 20000 + b"\r\n") + post(der))
        ans = responses(read_all(s))
    assert [a[0] for a in ans] == [200, 400], ans


def test_no_header_injection_from_the_request(srv, req):
    der, target = req
    with conn(srv) as s:
        s.sendall(get(b"/ocsp/%0d%0aSet-Cookie:%20x=1", b"X: y\r\nConnection: close\r\n"))
        ans = responses(read_all(s))
    assert len(ans) == 1 and "set-cookie" not in ans[0][1], ans
    json_error(ans[0], 400, "bad_request")


def test_answers_left_unread_stay_in_order(srv, req):
    """1,000 pipelined requests sent before any answer is read: all answered, in order (past
    64 KiB of answers waiting, the connection goes to evhttp, which answers one at a time)."""
    der, target = req
    body = expected_answer(srv, der)[2]
    n = 1000
    with conn(srv, timeout=30) as s:
        s.sendall((post(der) + get(target)) * (n // 2) + b"GET /healthz HTTP/1.1\r\n"
                  b"Connection: close\r\n\r\n")
        ans = responses(read_all(s, timeout=30))
    assert len(ans) == n + 1, len(ans)
    assert all(a[0] == 200 and a[2] == body for a in ans[:n])
    json_error(ans[n], 404, "not_found")


def test_stalled_head_times_out_and_others_are_answered(srv, req):
    der, _ = req
    body = expected_answer(srv, der)[2]
    t0 = time.monotonic()
    stall = conn(srv, timeout=30)
    stall.sendall(post(der)[:-3])  # all but the last 3 bytes of the body
    with conn(srv) as s:
        s.sendall(post(der))
        assert read_answers(s, 1)[0][2] == body
    assert read_all(stall, timeout=30) == b""  # closed without an answer
    took = time.monotonic() - t0
    stall.close()
    assert 8 < took < 25, took


def test_lean_connections_count_toward_max_connections(make_ca, duet_bin, req):
    der, _ = req
    ca = make_ca("Lean Cap Corp")
    srv = CAServer(duet_bin, ca, "--max-connections", "1").start()
    try:
        crt, _, _ = ca.issued("capped", "server", "--san", "dns:capped.example")
        f = ca.base / "capped.req"
        assert openssl("ocsp", "-issuer", ca.issuing, "-cert", crt, "-reqout", f,
                       "-no_nonce").returncode == 0
        der = f.read_bytes()
        wait_for("no connection", lambda: metric(srv, "duet_ca_connections", "http") == 0)
        first = conn(srv)
        first.sendall(post(der))
        assert read_answers(first, 1)[0][0] == 200
        assert metric(srv, "duet_ca_connections", "http") == 1
        second = conn(srv)
        second.sendall(post(der, b"Connection: close\r\n"))
        second.settimeout(1.5)
        with pytest.raises(socket.timeout):
            second.recv(1)
        first.close()
        ans = responses(read_all(second))
        assert ans and ans[0][0] == 200, ans
        second.close()
        wait_for("all closed", lambda: metric(srv, "duet_ca_connections", "http") == 0)
    finally:
        srv.stop()


def test_lean_reads_end_reset_and_timeout_close_and_uncount(make_ca, duet_bin):
    """On the lean path the server reads the socket itself (one recv per read, no FIONREAD):
    a client that closes after its answers, one that resets the connection in the middle of a
    request, and one that stops halfway through a head are each closed and uncounted, as
    evhttp's reading would, the last after the read timeout (10 s); others are answered."""
    ca = make_ca("Lean Ends Corp")
    srv = CAServer(duet_bin, ca).start()
    try:
        crt, _, _ = ca.issued("ends", "server", "--san", "dns:ends.example")
        f = ca.base / "ends.req"
        assert openssl("ocsp", "-issuer", ca.issuing, "-cert", crt, "-reqout", f,
                       "-no_nonce").returncode == 0
        der = f.read_bytes()
        wait_for("no connection", lambda: metric(srv, "duet_ca_connections", "http") == 0)
        socks = []
        for _ in range(3):
            s = conn(srv, timeout=30)
            # two answers each: the second request is read by the lean path's own recv
            s.sendall(post(der))
            assert read_answers(s, 1)[0][0] == 200
            s.sendall(post(der))
            assert read_answers(s, 1)[0][0] == 200
            socks.append(s)
        assert metric(srv, "duet_ca_connections", "http") == 3
        closed, reset, stalled = socks
        closed.close()
        reset.sendall(post(der)[:20])
        reset.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        reset.close()
        t0 = time.monotonic()
        stalled.sendall(post(der)[:30])
        wait_for("two closed", lambda: metric(srv, "duet_ca_connections", "http") == 1)
        with conn(srv) as s:
            s.sendall(post(der, b"Connection: close\r\n"))
            assert responses(read_all(s))[0][0] == 200
        assert read_all(stalled, timeout=30) == b""  # closed by the server, no answer
        took = time.monotonic() - t0
        stalled.close()
        assert 8 < took < 25, took
        wait_for("all closed", lambda: metric(srv, "duet_ca_connections", "http") == 0)
        assert srv.proc.poll() is None
    finally:
        srv.stop()
