# SPDX-License-Identifier: Apache-2.0
"""The request path of `duet proxy` (http mode) against a client that holds a valid certificate
and wants to do something the policy never allowed.

Each test sends raw bytes over mTLS and checks what a user would: the status, the reason in
the JSON log, and the exact bytes the upstream received.  Two upstreams: Python's stock
`http.server` (a lenient parser, as many real services are: what it runs is what an attacker
reaches) and a raw upstream that records every byte and parses what arrives strictly.

The policy: alice may use /public/ only; every other path is denied.  The fixtures (dpki,
module_procs, echo, raw_up, alice, henry) are in conftest.py.
"""

import json
import time

import pytest

from proxyutil import (leaf_der, mtls_exchange, sha256_hex, start_http_proxy, statuses,
                       values)


# --- upstreams and clients ---------------------------------------------------------------------

def exchange(port, ctx, data, timeout=5, pause=None):
    """Send raw bytes over mTLS (a list: one write each, `pause` seconds apart) and read until
    the proxy closes (or timeout)."""
    return mtls_exchange(port, ctx, data, pause=pause or 0.0, timeout=timeout)


# --- fixtures --------------------------------------------------------------------------------

def start_proxy(dpki, procs, workdir, upstream, extra_yaml="", extra_args=()):
    return start_http_proxy(dpki, procs, workdir, upstream.port, extra_yaml=extra_yaml,
                            extra_args=extra_args)


@pytest.fixture(scope="module")
def lenient(dpki, module_procs, echo, tmp_path_factory):
    """The proxy in front of Python's http.server, with the upstream keep-alive pool."""
    return start_proxy(dpki, module_procs, tmp_path_factory.mktemp("lenient"), echo)


@pytest.fixture(scope="module")
def strict(dpki, module_procs, raw_up, tmp_path_factory):
    """The proxy in front of the recording upstream."""
    return start_proxy(dpki, module_procs, tmp_path_factory.mktemp("strict"), raw_up)








def xfcc_of(dpki, name):
    crt = getattr(dpki, name + "_crt")
    return 'Hash=%s;Subject="CN=%s,O=Test Corp";URI=spiffe://test-corp/%s' % (
        sha256_hex(leaf_der(crt)), name, name)


def new_requests(up, before):
    time.sleep(0.2)
    return up.requests[before:]


SMUGGLED = (b"GET /admin/secret HTTP/1.1\r\nHost: localhost\r\n"
            b"X-Forwarded-Client-Cert: URI=spiffe://test-corp/root\r\n\r\n")


# --- 1. framing and Host are never removable by Connection --------------------------------------

@pytest.mark.parametrize("named", [b"Content-Length", b"content-length, close",
                                   b"keep-alive, Transfer-Encoding", b"Host"])
def test_connection_cannot_name_framing_or_host(lenient, alice, echo, named):
    before = len(echo.requests)
    mark = lenient.log.mark()
    if b"transfer" in named.lower():
        body = b"%x\r\n%s\r\n0\r\n\r\n" % (len(SMUGGLED), SMUGGLED)
        framing = b"Transfer-Encoding: chunked\r\n"
    else:
        body = SMUGGLED
        framing = b"Content-Length: %d\r\n" % len(SMUGGLED)
    resp = exchange(lenient.port, alice,
                    b"POST /public/form HTTP/1.1\r\nHost: localhost\r\nConnection: " + named +
                    b"\r\n" + framing + b"\r\n" + body)
    assert statuses(resp) == [400], resp
    assert b"Connection" in resp
    reqs = new_requests(echo, before)
    assert not any(r["path"].startswith("/admin") for r in reqs), reqs
    assert reqs == []
    # Nothing of it lingers on a pooled upstream connection: henry's next request arrives whole.
    ev = [e for e in lenient.log.since(mark, "request_refused")]
    assert ev and ev[0]["status"] == 400 and "Connection" in ev[0]["reason"]


def test_smuggled_bytes_never_reach_the_next_client(lenient, alice, echo):
    # A permitted request first, so that its upstream connection goes to the pool.
    before = len(echo.requests)
    ok = exchange(lenient.port, alice,
                  b"GET /public/a HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
    assert statuses(ok) == [200]
    exchange(lenient.port, alice,
             b"POST /public/b HTTP/1.1\r\nHost: localhost\r\nConnection: Content-Length\r\n"
             b"Content-Length: %d\r\n\r\n%s" % (len(SMUGGLED), SMUGGLED))
    after = exchange(lenient.port, alice,
                     b"GET /public/c HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
    assert statuses(after) == [200]
    body = json.loads(after.split(b"\r\n\r\n", 1)[1])
    assert body["path"] == "/public/c"
    paths = [r["path"] for r in new_requests(echo, before)]
    assert paths == ["/public/a", "/public/c"], paths


def test_forwarded_framing_is_regenerated(strict, alice, raw_up, dpki):
    before = len(raw_up.requests)
    resp = exchange(strict.port, alice,
                    b"POST /public/len HTTP/1.1\r\nhost: localhost\r\ncontent-length: 5\r\n"
                    b"Connection: keep-alive\r\n\r\nhello"
                    b"POST /public/chunked HTTP/1.1\r\nHost: localhost\r\n"
                    b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                    b"3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nX-Trailer: t\r\n\r\n")
    assert statuses(resp) == [200, 200], resp
    reqs = new_requests(raw_up, before)
    assert raw_up.errors == []
    assert [r["target"] for r in reqs] == ["/public/len", "/public/chunked"]
    first, second = reqs
    assert values(first, "Content-Length") == ["5"] and values(first, "Transfer-Encoding") == []
    assert first["body"] == b"hello"
    assert values(second, "Transfer-Encoding") == ["chunked"]
    assert values(second, "Content-Length") == [] and second["body"] == b"abcde"
    assert b"ext=1" not in b"".join(raw_up.raw)
    for r in reqs:
        assert values(r, "Host") == ["localhost"]
        assert values(r, "X-Forwarded-Client-Cert") == [xfcc_of(dpki, "alice")]
        assert values(r, "Connection") == []


FRAMING_REFUSED = [
    ("cl-and-te", b"Content-Length: 3\r\nTransfer-Encoding: chunked\r\n", 400),
    ("two-cl", b"Content-Length: 3\r\nContent-Length: 3\r\n", 400),
    ("te-gzip", b"Transfer-Encoding: gzip, chunked\r\n", 501),
    ("te-identity", b"Transfer-Encoding: identity\r\n", 501),
    ("two-te", b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", 400),
    ("cl-sign", b"Content-Length: +3\r\n", 400),
    ("cl-underscore", b"Content_Length: 3\r\n", 400),
    ("te-underscore", b"Transfer_Encoding: chunked\r\n", 400),
]


@pytest.mark.parametrize("case,framing,status", FRAMING_REFUSED,
                         ids=[c[0] for c in FRAMING_REFUSED])
def test_ambiguous_framing_refused(strict, alice, raw_up, case, framing, status):
    before = len(raw_up.requests)
    resp = exchange(strict.port, alice,
                    b"POST /public/x HTTP/1.1\r\nHost: localhost\r\n" + framing + b"\r\nabc")
    assert statuses(resp) == [status], resp
    assert new_requests(raw_up, before) == []


def test_transfer_encoding_in_http10_refused(strict, alice, raw_up):
    before = len(raw_up.requests)
    resp = exchange(strict.port, alice,
                    b"POST /public/x HTTP/1.0\r\nHost: localhost\r\n"
                    b"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n")
    assert statuses(resp) == [400], resp
    assert new_requests(raw_up, before) == []


# --- 2 and 10. header names: tokens only, no folding, one Host, no look-alikes ------------------

BAD_HEADS = [
    ("space-before-colon", b"GET /public/x HTTP/1.1\r\nHost: localhost\r\nContent-Length : 5\r\n"
                           b"\r\nhello"),
    ("xfcc-space", b"GET /public/x HTTP/1.1\r\nHost: localhost\r\n"
                   b"X-Forwarded-Client-Cert : URI=spiffe://test-corp/root\r\n\r\n"),
    ("first-line-space", b"GET /public/x HTTP/1.1\r\n Host: localhost\r\nHost: localhost\r\n\r\n"),
    ("folded", b"GET /public/x HTTP/1.1\r\nHost: localhost\r\nX-A: a\r\n b\r\n\r\n"),
    ("tab-folded", b"GET /public/x HTTP/1.1\r\nHost: localhost\r\nX-A: a\r\n\tb\r\n\r\n"),
    ("ctl-in-name", b"GET /public/x HTTP/1.1\r\nHost: localhost\r\nX\x01A: a\r\n\r\n"),
    ("empty-name", b"GET /public/x HTTP/1.1\r\nHost: localhost\r\n: a\r\n\r\n"),
    ("bare-lf", b"GET /public/x HTTP/1.1\nHost: localhost\n\n"),
    ("bare-cr", b"GET /public/x HTTP/1.1\r\nHost: localhost\rX-A: b\r\n\r\n"),
    ("nul-in-value", b"GET /public/x HTTP/1.1\r\nHost: localhost\r\nX-A: a\x00b\r\n\r\n"),
    ("two-hosts", b"GET /public/x HTTP/1.1\r\nHost: localhost\r\nHost: evil\r\n\r\n"),
    ("host-space", b"GET /public/x HTTP/1.1\r\nHost : localhost\r\n\r\n"),
    ("host-bad-chars", b"GET /public/x HTTP/1.1\r\nHost: local host\r\n\r\n"),
    ("host-underscore-twin", b"GET /public/x HTTP/1.1\r\nHost: localhost\r\nHOST: evil\r\n\r\n"),
    ("no-host-11", b"GET /public/x HTTP/1.1\r\nX-A: b\r\n\r\n"),
    ("http09", b"GET /public/x\r\n\r\n"),
    ("double-space", b"GET  /public/x HTTP/1.1\r\nHost: localhost\r\n\r\n"),
    ("asterisk-get", b"GET * HTTP/1.1\r\nHost: localhost\r\n\r\n"),
    ("absolute-form", b"GET http://evil/public/x HTTP/1.1\r\nHost: localhost\r\n\r\n"),
]


@pytest.mark.parametrize("case,data", BAD_HEADS, ids=[c[0] for c in BAD_HEADS])
def test_malformed_heads_get_400_and_reach_nobody(strict, alice, raw_up, case, data):
    before = len(raw_up.requests)
    before_raw = len(raw_up.raw)
    mark = strict.log.mark()
    resp = exchange(strict.port, alice, data)
    assert statuses(resp) == [400], resp
    assert new_requests(raw_up, before) == []
    assert raw_up.raw[before_raw:] == []
    ev = strict.log.wait_event("request_refused", mark)
    assert ev["status"] == 400 and ev["reason"] and ev["peer"].startswith("127.0.0.1:")
    assert ev["identity"] == "spiffe://test-corp/alice"


@pytest.mark.parametrize("version", [b"HTTP/2.0", b"HTTP/9.9", b"HTTP/1.2", b"HTTP/0.9"])
def test_unusual_http_versions_get_505(strict, alice, raw_up, version):
    before = len(raw_up.requests)
    resp = exchange(strict.port, alice, b"GET /public/x " + version + b"\r\nHost: localhost\r\n\r\n")
    assert statuses(resp) == [505], resp
    assert new_requests(raw_up, before) == []


def test_identity_header_lookalikes_never_reach_the_upstream(strict, alice, raw_up, dpki):
    before = len(raw_up.requests)
    resp = exchange(strict.port, alice,
                    b"GET /public/look HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
                    b"X_Forwarded_Client_Cert: URI=spiffe://test-corp/root\r\n"
                    b"x-forwarded_client-cert: URI=spiffe://test-corp/root\r\n"
                    b"X_Forwarded_For: 10.6.6.6\r\nX-Forwarded-For: 10.6.6.7\r\n"
                    b"X_Forwarded_Proto: http\r\nForwarded: for=10.6.6.6;proto=http\r\n"
                    b"X-Real-IP: 10.6.6.6\r\nX-Real_IP: 10.6.6.6\r\nX-Forwarded-Host: evil\r\n"
                    b"X-Kept_Header: yes\r\n\r\n")
    assert statuses(resp) == [200], resp
    (req,) = new_requests(raw_up, before)
    norm = lambda n: n.lower().replace("_", "-")
    names = [norm(n) for n, _ in req["headers"]]
    assert values(req, "X-Forwarded-Client-Cert") == [xfcc_of(dpki, "alice")]
    assert names.count("x-forwarded-client-cert") == 1
    assert values(req, "X-Forwarded-For") == ["127.0.0.1"] and names.count("x-forwarded-for") == 1
    assert values(req, "X-Forwarded-Proto") == ["https"]
    assert values(req, "X-Real-IP") == ["127.0.0.1"] and names.count("x-real-ip") == 1
    assert values(req, "Forwarded") == ["for=127.0.0.1;proto=https"]
    assert "x-forwarded-host" not in names
    assert b"10.6.6" not in req["head"] and b"root" not in req["head"]
    # An ordinary header with an underscore is left alone.
    assert values(req, "X-Kept_Header") == ["yes"]


def test_forwarded_headers_append_mode(dpki, module_procs, raw_up, tmp_path_factory, alice):
    p = start_proxy(dpki, module_procs, tmp_path_factory.mktemp("fwd-append"), raw_up,
                    extra_yaml="    forwarded_headers: append\n")
    before = len(raw_up.requests)
    resp = exchange(p.port, alice,
                    b"GET /public/fwd HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
                    b"X-Forwarded-For: 10.1.1.1\r\nForwarded: for=10.1.1.1\r\n"
                    b"X-Real-IP: 10.6.6.6\r\n\r\n")
    assert statuses(resp) == [200], resp
    (req,) = new_requests(raw_up, before)
    assert values(req, "X-Forwarded-For") == ["10.1.1.1, 127.0.0.1"]
    assert values(req, "Forwarded") == ["for=10.1.1.1, for=127.0.0.1;proto=https"]
    assert values(req, "X-Real-IP") == ["127.0.0.1"]


def test_policy_and_upstream_see_the_same_host_and_path(strict, alice, henry, raw_up):
    # henry is not allowed anywhere; alice only on /public/.
    before = len(raw_up.requests)
    assert statuses(exchange(strict.port, henry,
                             b"GET /public/x HTTP/1.1\r\nHost: localhost\r\n\r\n")) == [403]
    assert statuses(exchange(strict.port, alice,
                             b"GET /public/../admin HTTP/1.1\r\nHost: localhost\r\n\r\n")) == [403]
    assert new_requests(raw_up, before) == []


# --- 11. a deadline for the request head -------------------------------------------------------

def test_slow_request_head_gets_408(dpki, module_procs, raw_up, tmp_path_factory, alice):
    p = start_proxy(dpki, module_procs, tmp_path_factory.mktemp("slowhead"), raw_up,
                    extra_args=("--request-header-timeout", "1s"))
    mark = p.log.mark()
    start = time.monotonic()
    parts = [b"GET /public/slow HTTP/1.1\r\n"] + [b"X-A: b\r\n"] * 30
    resp = exchange(p.port, alice, parts, pause=0.2, timeout=10)
    took = time.monotonic() - start
    assert statuses(resp) == [408], resp
    assert took < 4, took
    ev = p.log.wait_event("request_refused", mark)
    assert ev["status"] == 408 and "1000 ms" in ev["reason"]
    # A head that arrives in time, on a kept-alive connection, is not cut.
    resp = exchange(p.port, alice,
                    [b"GET /public/a HTTP/1.1\r\nHost: localhost\r\n\r\n",
                     b"GET /public/b HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"],
                    pause=1.5)
    assert statuses(resp) == [200, 200], resp
