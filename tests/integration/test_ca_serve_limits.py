# SPDX-License-Identifier: Apache-2.0
"""`duet ca serve` at its limits (docs/ca-server.md, "Running it" and "Conventions"): the cap
of --max-connections on each listener, counted over every way a connection ends; and the
answers to what the HTTP layer itself refuses (a body over --max-body, a method nobody
serves, a request libevent cannot parse), each seen on a raw socket as the client sees it.
"""

import errno
import json
import os
import re
import socket
import ssl
import threading
import time

import pytest

from test_ca_serve import CAServer, enroll, make_csr, make_token, serials


def fds(srv):
    return len(os.listdir("/proc/%d/fd" % srv.proc.pid))


def quiet_fds(srv):
    """The server's descriptors once nothing but a /metrics request is open (and that closed)."""
    wait_for("idle listeners", lambda: metric(srv, "duet_ca_connections", "http") == 0 and
             metric(srv, "duet_ca_connections", "https") == 1)
    last = None
    while True:
        time.sleep(0.3)
        n = fds(srv)
        if n == last:
            return n
        last = n


def metric(srv, name, listener=None):
    st, _, m = srv.request("GET", "/metrics")
    assert st == 200, m
    lab = '{listener="%s"}' % listener if listener else ""
    found = re.search(rb"^" + re.escape((name + lab).encode()) + rb" (\d+)$", m, re.M)
    return int(found.group(1)) if found else None


def wait_for(what, pred, timeout=15):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        assert time.monotonic() < deadline, "timed out waiting for " + what
        time.sleep(0.1)


def tls_sock(srv, cert=None, key=None):
    raw = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
    return srv.context(cert, key).wrap_socket(raw, server_hostname="localhost")


def read_all(sock, timeout=10):
    """Everything the server sends until it closes (or the timeout passes)."""
    sock.settimeout(timeout)
    data = b""
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    except (ConnectionResetError, ssl.SSLError):
        pass
    return data


def send_and_half_close(sock, data):
    """Send DATA and our FIN; the server may already have ended the connection (a reset,
    or a close after a refused handshake or a 413), which is one of the endings under test."""
    try:
        if data:
            sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
    except OSError as e:
        if e.errno not in (errno.ENOTCONN, errno.ECONNRESET, errno.EPIPE):
            raise


def responses(data):
    """[(status, headers dict lower-cased, body bytes)] of HTTP/1.1 answers in data."""
    out = []
    while data:
        head, _, rest = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        h = {}
        for ln in lines[1:]:
            k, _, v = ln.partition(":")
            h[k.strip().lower()] = v.strip()
        n = int(h.get("content-length", len(rest)))
        out.append((status, h, rest[:n]))
        data = rest[n:]
    return out


def json_error(resp, status, code):
    st, h, body = resp
    assert st == status, resp
    assert h.get("content-type", "").startswith("application/json"), resp
    err = json.loads(body)
    assert err["error"] == code and err["detail"], err
    return err


@pytest.fixture(scope="module")
def capped(make_ca, duet_bin):
    ca = make_ca("Capped Corp")
    s = CAServer(duet_bin, ca, "--max-connections", "4").start()
    yield s
    s.stop()


def test_max_connections_flag_checked(make_ca, duet_bin, tmp_path):
    ca = make_ca("Flag Corp")
    for bad in ("0", "-3", "many", "1000001", ""):
        p = ca.duet("ca", "serve", "--ca-dir", ca.dir, "--listen", "127.0.0.1:1",
                    "--max-connections", bad)
        assert p.returncode == 2, p
        assert ('--max-connections "%s": expected a number of connections from 1 to 1000000'
                % bad) in p.stderr, p.stderr


def soft_nofile(srv):
    for line in open("/proc/%d/limits" % srv.proc.pid):
        if line.startswith("Max open files"):
            return int(line.split()[3])
    raise AssertionError("no descriptor limit in /proc/PID/limits")


def test_descriptor_limit_raised_to_what_the_caps_need(make_ca, duet_bin):
    ca = make_ca("Nofile Corp")
    # Room under the hard limit: the soft one is raised to 2 x 300 + 64.
    srv = CAServer(duet_bin, ca, "--max-connections", "300", nofile=(100, 4096)).start()
    try:
        assert soft_nofile(srv) == 664
        assert not [x for x in srv.lines() if x["event"] == "ca_limits"]
    finally:
        srv.stop()
    # No room: it serves, and says why accepting will pause before the cap.
    srv = CAServer(duet_bin, ca, "--max-connections", "300", nofile=100).start()
    try:
        assert soft_nofile(srv) == 100
        warn = [x for x in srv.lines() if x["event"] == "ca_limits"]
        assert len(warn) == 1 and warn[0]["level"] == "warn", warn
        assert warn[0]["msg"] == (
            "the descriptor limit (RLIMIT_NOFILE) is 100, below the 664 that --max-connections "
            "300 needs on both listeners; descriptors run out first and accepting pauses "
            "(ca_accept): raise LimitNOFILE or lower --max-connections"), warn
        st, _, body = srv.request("GET", "/healthz")
        assert st == 200 and body == b"ok\n"
    finally:
        srv.stop()


def test_plain_listener_stops_at_the_cap_and_resumes_when_one_closes(capped):
    srv = capped
    base = quiet_fds(srv)
    idle = [socket.create_connection(("127.0.0.1", srv.http_port), timeout=10)
            for _ in range(4)]
    wait_for("4 accepted", lambda: fds(srv) == base + 4)
    # Beyond the cap: the kernel completes the TCP handshake, the server does not accept.
    late = [socket.create_connection(("127.0.0.1", srv.http_port), timeout=10)
            for _ in range(2)]
    late[0].sendall(b"GET /roots.pem HTTP/1.1\r\nHost: ca\r\nConnection: close\r\n\r\n")
    late[0].settimeout(1.0)
    with pytest.raises(socket.timeout):
        late[0].recv(100)
    assert fds(srv) == base + 4
    # The HTTPS listener has a cap of its own and still serves; /metrics says what happens.
    assert metric(srv, "duet_ca_connections", "http") == 4
    assert metric(srv, "duet_ca_connections_waiting", "http") == 2
    assert metric(srv, "duet_ca_connections_max") == 4
    assert metric(srv, "duet_ca_connection_limit_total", "http") >= 1
    warn = [x for x in srv.lines() if x["event"] == "ca_connections"]
    assert len(warn) == 1 and warn[0]["level"] == "warn", warn
    assert "http listener: 4 connections open" in warn[0]["msg"], warn
    # One closes: the next one waiting is accepted and served.
    idle.pop().close()
    late[0].settimeout(10)
    ans = responses(read_all(late[0]))
    assert len(ans) == 1 and ans[0][0] == 200, ans
    assert ans[0][2] == srv.ca.root.read_bytes()
    for s in idle + late:
        s.close()
    wait_for("all closed", lambda: metric(srv, "duet_ca_connections", "http") == 0)
    assert metric(srv, "duet_ca_connections_waiting", "http") == 0
    wait_for("descriptors back", lambda: fds(srv) == base)
    st, _, body = srv.request("GET", "/roots.pem", tls=False)
    assert st == 200 and body == srv.ca.root.read_bytes()


def test_https_listener_counts_failed_handshakes_and_timeouts_once(capped):
    srv = capped
    base = quiet_fds(srv)
    # Handshakes that fail (plain HTTP on the TLS port) end their connections: nothing stays.
    for _ in range(12):
        with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as s:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: ca\r\n\r\n")
            assert read_all(s) == b""
    assert metric(srv, "duet_ca_connections", "https") == 1  # the /metrics request itself
    # Four idle clients fill the cap; a TLS client beyond it waits in the backlog.
    t0 = time.monotonic()
    idle = [socket.create_connection(("127.0.0.1", srv.port), timeout=30) for _ in range(4)]
    wait_for("4 accepted", lambda: fds(srv) == base + 4)
    result = {}

    def late():
        try:
            result["answer"] = srv.request("GET", "/healthz")
        except Exception as e:  # noqa: BLE001 - reported by the assertion below
            result["error"] = e
        result["at"] = time.monotonic()

    th = threading.Thread(target=late)
    th.start()
    time.sleep(1.5)
    assert "answer" not in result and "error" not in result, result
    assert fds(srv) == base + 4
    # The server's 10 s timeout ends the idle ones (they never sent a byte): then it is served.
    th.join(timeout=30)
    assert "answer" in result, result
    st, _, body = result["answer"]
    assert st == 200 and body == b"ok\n"
    assert result["at"] - t0 >= 9, "served before the idle connections timed out"
    for s in idle:
        assert read_all(s) == b""  # closed by the server
        s.close()
    wait_for("all closed", lambda: metric(srv, "duet_ca_connections", "https") == 1)
    wait_for("descriptors back", lambda: fds(srv) == base)


def test_every_way_a_connection_ends_is_uncounted(capped):
    """Each ending path of evhttp, on both listeners: the gauges go back, no descriptor stays."""
    srv = capped
    base = quiet_fds(srv)
    req = b"GET /roots.pem HTTP/1.1\r\nHost: ca\r\n\r\n"
    plain = [
        b"",                                                     # EOF before a byte
        b"GET /roots.pem HTTP/1.1\r\nHost:",                     # EOF inside the head
        req,                                                     # answered, kept alive, EOF
        req + req,                                               # two answers, then EOF
        b"GET /roots.pem HTTP/1.0\r\n\r\n",                      # HTTP/1.0: closed after it
        b"HELLO\r\n\r\n",                                          # libevent's 400
        b"POST /ocsp HTTP/1.1\r\nHost: ca\r\nContent-Length: 10\r\n\r\nabc",  # EOF in a body
        b"BREW /crl HTTP/1.1\r\nHost: ca\r\nContent-Length: 3\r\n\r\nabc",     # 405, closed
        b"POST /ocsp HTTP/1.1\r\nHost: ca\r\nContent-Type: application/ocsp-request\r\n"
        b"Content-Length: 300000\r\n\r\n" + b"\0" * 300000,      # libevent's 413, lingering
    ]
    for data in plain * 2:
        with socket.create_connection(("127.0.0.1", srv.http_port), timeout=10) as s:
            send_and_half_close(s, data)
            read_all(s)
    for data in (b"", b"\x16\x03\x01\x00\x05hello", b"GET / HTTP/1.1\r\n\r\n"):
        with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as s:
            send_and_half_close(s, data)
            read_all(s)
    for close_early in (False, True):
        with tls_sock(srv) as s:  # handshake done, then a request or not
            if not close_early:
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: ca\r\n\r\n")
                s.settimeout(10)
                assert s.recv(100).startswith(b"HTTP/1.1 200")
    # A client that vanishes without a FIN: the server's timeout ends it.
    gone = socket.create_connection(("127.0.0.1", srv.http_port), timeout=10)
    gone.sendall(b"GET /roots.pem HTTP/1.1\r\n")
    wait_for("everything closed", lambda: metric(srv, "duet_ca_connections", "http") == 1 and
             metric(srv, "duet_ca_connections", "https") == 1)
    wait_for("the idle one timed out", lambda: metric(srv, "duet_ca_connections", "http") == 0,
             timeout=20)
    gone.close()
    wait_for("descriptors back", lambda: fds(srv) == base)
    # And the cap still admits four at a time on each listener.
    idle = [socket.create_connection(("127.0.0.1", srv.http_port), timeout=10)
            for _ in range(4)]
    wait_for("4 accepted", lambda: metric(srv, "duet_ca_connections", "http") == 4)
    for s in idle:
        s.close()
    wait_for("all closed", lambda: metric(srv, "duet_ca_connections", "http") == 0)


def test_body_over_max_body_gets_the_api_413(srv_limits):
    srv = srv_limits
    ca = srv.ca
    before = serials(ca)
    tok = make_token(ca, "big", "server", "--san", "dns:big.corp.example")
    _, csr = make_csr(ca, "big")
    body = json.dumps({"token": tok, "csr": csr, "pad": "x" * 70000}).encode()
    # With Content-Length.
    with tls_sock(srv) as s:
        s.sendall(b"POST /v1/enroll HTTP/1.1\r\nHost: ca\r\nContent-Type: application/json\r\n"
                  b"Content-Length: %d\r\n\r\n" % len(body) + body +
                  b"GET /healthz HTTP/1.1\r\nHost: ca\r\nConnection: close\r\n\r\n")
        ans = responses(read_all(s))
    assert len(ans) == 2, ans
    err = json_error(ans[0], 413, "payload_too_large")
    assert err["detail"] == ("the request body has %d bytes; at most 65536 are accepted "
                             "(--max-body)" % len(body)), err
    assert ans[1][0] == 200 and ans[1][2] == b"ok\n"  # the connection goes on
    # Chunked.
    chunks = b"".join(b"%x\r\n" % len(body[i:i + 8000]) + body[i:i + 8000] + b"\r\n"
                      for i in range(0, len(body), 8000)) + b"0\r\n\r\n"
    with tls_sock(srv) as s:
        s.sendall(b"POST /v1/enroll HTTP/1.1\r\nHost: ca\r\nContent-Type: application/json\r\n"
                  b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n" + chunks)
        ans = responses(read_all(s))
    assert len(ans) == 1, ans
    json_error(ans[0], 413, "payload_too_large")
    # On the plain listener too (POST /ocsp).
    with socket.create_connection(("127.0.0.1", srv.http_port), timeout=10) as s:
        s.sendall(b"POST /ocsp HTTP/1.1\r\nHost: ca\r\nContent-Type: application/ocsp-request"
                  b"\r\nConnection: close\r\nContent-Length: 70000\r\n\r\n" + b"\0" * 70000)
        ans = responses(read_all(s))
    json_error(ans[0], 413, "payload_too_large")
    assert serials(ca) == before
    audit = [x for x in srv.lines() if x["event"] == "ca_request" and x["status"] == 413]
    assert len(audit) == 3 and all(x["error"] == "payload_too_large" for x in audit), audit
    # The token was not used up: it enrolls now.
    st, _, ans = srv.request("POST", "/v1/enroll", {"token": tok, "csr": csr})
    assert st == 200, ans


def test_body_far_over_max_body_refused_unread_by_libevent(srv_limits):
    """Beyond 4 x --max-body libevent refuses the body itself (documented: its HTML 413)."""
    srv = srv_limits
    before = serials(srv.ca)
    with tls_sock(srv) as s:
        s.sendall(b"POST /v1/enroll HTTP/1.1\r\nHost: ca\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 10485760\r\n\r\n")
        s.sendall(b" " * (10 * 1024 * 1024))
        ans = responses(read_all(s, timeout=20))
    assert len(ans) == 1 and ans[0][0] == 413, ans
    assert ans[0][1].get("connection") == "close"
    for te in (b"chunked",):
        with tls_sock(srv) as s:
            s.sendall(b"POST /v1/enroll HTTP/1.1\r\nHost: ca\r\nContent-Type: application/json"
                      b"\r\nTransfer-Encoding: " + te + b"\r\n\r\n")
            try:
                for _ in range(40):
                    s.sendall(b"2000\r\n" + b" " * 0x2000 + b"\r\n")
            except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
                pass
            ans = responses(read_all(s, timeout=20))
        assert ans and ans[0][0] == 413, ans
    assert serials(srv.ca) == before
    st, _, body = srv.request("GET", "/healthz")
    assert st == 200 and body == b"ok\n"


def test_methods_nobody_serves_get_the_api_405(srv_limits):
    srv = srv_limits
    for method in (b"BREW", b"PROPFIND", b"PUT"):
        with tls_sock(srv) as s:
            s.sendall(method + b" /v1/enroll HTTP/1.1\r\nHost: ca\r\nConnection: close\r\n\r\n")
            ans = responses(read_all(s))
        assert len(ans) == 1, ans
        err = json_error(ans[0], 405, "method_not_allowed")
        assert ans[0][1]["allow"] == "POST", ans
        assert err["detail"] == "/v1/enroll takes POST only", err
    # A method whose body libevent does not read: the answer closes the connection, so the
    # body is never taken for a request of its own.
    inner = b"POST /v1/revoke HTTP/1.1\r\nHost: ca\r\nContent-Type: application/json\r\n" \
            b"Content-Length: 2\r\n\r\n{}"
    for method in (b"TRACE", b"BREW", b"HEAD"):
        with tls_sock(srv) as s:
            s.sendall(method + b" /v1/renew HTTP/1.1\r\nHost: ca\r\nContent-Length: %d\r\n\r\n"
                      % len(inner) + inner)
            data = read_all(s)
        ans = responses(data) if method != b"HEAD" else [(int(data.split(b" ")[1]), {}, b"")]
        assert len(ans) == 1 and ans[0][0] == 405, data
        assert data.count(b"HTTP/1.1 ") == 1, data
    # Unknown paths stay 404 whatever the method.
    with tls_sock(srv) as s:
        s.sendall(b"BREW /coffee HTTP/1.1\r\nHost: ca\r\nConnection: close\r\n\r\n")
        ans = responses(read_all(s))
    json_error(ans[0], 404, "not_found")
    st, _, body = srv.request("GET", "/healthz")
    assert st == 200 and body == b"ok\n"


def test_ambiguous_framing_gets_400_and_a_close(srv_limits):
    """Two Content-Lengths, or one with Transfer-Encoding (RFC 9112 6.3): nothing smuggled."""
    srv = srv_limits
    before = serials(srv.ca)
    smuggled = b"GET /v1/nothing HTTP/1.1\r\nHost: ca\r\n\r\n"
    head = b"POST /v1/renew HTTP/1.1\r\nHost: ca\r\nContent-Type: application/json\r\n"
    # Two lengths: libevent takes the first; the server refuses the request, in JSON.
    with tls_sock(srv) as s:
        s.sendall(head + b"Content-Length: 2\r\nContent-Length: %d\r\n\r\n{}"
                  % (2 + len(smuggled)) + smuggled)
        ans = responses(read_all(s))
    assert len(ans) == 1, ans
    err = json_error(ans[0], 400, "bad_request")
    assert err["detail"] == ("the request has more than one Content-Length; expected one "
                             "Content-Length or a Transfer-Encoding (RFC 9112 section 6.3)"), err
    assert ans[0][1]["connection"] == "close"
    # A length beside a Transfer-Encoding: Debian's libevent 2.1.12 refuses it itself (its
    # HTML 400, documented); the server would refuse it in JSON.  Either way, one 400, closed.
    for te in (b"chunked", b"gzip"):
        with tls_sock(srv) as s:
            s.sendall(head + b"Content-Length: 7\r\nTransfer-Encoding: " + te + b"\r\n\r\n"
                      b"2\r\n{}\r\n0\r\n\r\n" + smuggled)
            ans = responses(read_all(s))
        assert len(ans) == 1 and ans[0][0] == 400, ans
        assert ans[0][1]["connection"] == "close", ans
    assert serials(srv.ca) == before


def test_unparsable_requests_get_libevents_400_and_a_close(srv_limits):
    """Documented: libevent answers these itself (no hook in 2.1.12), with HTML."""
    srv = srv_limits
    for bad in (b"HELLO\r\n\r\n", b"GET /v1/ca HTTP/9\r\n\r\n",
                b"GET /v1/ca HTTP/1.1\r\nHost: ca\r\nX: " + b"a" * 20000 + b"\r\n\r\n",
                b"POST /v1/enroll HTTP/1.1\r\nHost: ca\r\nContent-Length: -1\r\n\r\n"):
        with tls_sock(srv) as s:
            s.sendall(bad)
            data = read_all(s)
        assert data.startswith(b"HTTP/1.1 400 "), (bad[:40], data)
        assert b"Connection: close" in data, data
    st, _, body = srv.request("GET", "/healthz")
    assert st == 200 and body == b"ok\n"


def test_foreign_certificate_on_renew_is_refused_clearly(srv_limits, make_ca):
    """Another CA's client certificate on /v1/renew: nothing issued, and the client learns why."""
    srv = srv_limits
    ca = srv.ca
    enroll(srv, "native")
    before = serials(ca)
    other = make_ca("Foreign Corp")
    ocrt, okey, _ = other.issued("intruder", "client")
    with tls_sock(srv, ocrt, okey) as s:
        # TLS 1.3: the client's handshake ends before the server has checked its certificate;
        # nothing is sent yet, so that the server's answer is read, not reset.
        s.settimeout(3)
        try:
            first = s.recv(1)
        except ssl.SSLError as e:
            # Refused in the handshake: the alert names the reason (what curl and openssl
            # print too: "tlsv1 alert unknown ca").
            assert "alert unknown ca" in str(e).lower(), e
        except socket.timeout:
            # Or the handshake is accepted and the request refused in HTTP: 401, in JSON.
            s.settimeout(10)
            s.sendall(b"POST /v1/renew HTTP/1.1\r\nHost: ca\r\nContent-Type: application/json"
                      b"\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")
            err = json_error(responses(read_all(s))[0], 401, "unauthorized")
            assert "Foreign Corp" in err["detail"] or "this CA" in err["detail"], err
        else:
            raise AssertionError("the server sent %r before any request" % first)
    assert serials(ca) == before


@pytest.fixture(scope="module")
def srv_limits(make_ca, duet_bin):
    ca = make_ca("Limits Corp")
    s = CAServer(duet_bin, ca).start()
    yield s
    s.stop()
