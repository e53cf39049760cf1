# SPDX-License-Identifier: Apache-2.0
"""A HEAD request the proxy refuses itself (403 by the policy, 400 for a malformed path) is
answered with the status and the headers only, as RFC 9110 9.3.2 requires: on HTTP/1.1 no
body follows the head (a client would read it as the next response), on HTTP/2 the HEADERS
frame carries END_STREAM (else curl fails "(92) PROTOCOL_ERROR" and nghttp waits)."""

import json
import subprocess

import pytest

from proxyutil import client_context, mtls_exchange, start_http_proxy
from test_proxy_h2 import RULES, curl, tool, url


@pytest.fixture(scope="module")
def px(dpki, module_procs, tmp_path_factory, echo):
    return start_http_proxy(dpki, module_procs, tmp_path_factory.mktemp("head-refusals"),
                            echo.port, rules=RULES)


REFUSED = [("/private/x", 403), ("/public/a;b", 400)]


def http11(dpki, px, method, path):
    """One raw HTTP/1.1 request: (head, what follows it until the proxy closes)."""
    ctx = client_context(dpki.roots, dpki.alice_crt, dpki.alice_key)
    got = mtls_exchange(px.port, ctx, [("%s %s HTTP/1.1\r\nHost: localhost\r\n\r\n"
                                        % (method, path)).encode()])
    head, sep, rest = got.partition(b"\r\n\r\n")
    assert sep, got
    return head, rest


@pytest.mark.parametrize("path,status", REFUSED)
def test_http11_refused_head_has_no_body(dpki, px, path, status):
    head, rest = http11(dpki, px, "HEAD", path)
    assert head.startswith(b"HTTP/1.1 %d " % status), head
    assert b"Content-Type: application/json" in head, head
    assert rest == b"", rest


@pytest.mark.parametrize("path,status", REFUSED)
def test_http11_refused_get_still_has_the_json_body(dpki, px, path, status):
    head, rest = http11(dpki, px, "GET", path)
    assert head.startswith(b"HTTP/1.1 %d " % status), head
    length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
    assert len(rest) == length and "error" in json.loads(rest), rest


@pytest.mark.parametrize("http", ["--http1.1", "--http2"])
@pytest.mark.parametrize("path,status", REFUSED)
def test_curl_head_refused(dpki, px, echo, path, status, http):
    before = len(echo.requests)
    got, version, body = curl(dpki, url(px, path), "-I", http, "--path-as-is")
    assert got == status
    assert version == ("2" if http == "--http2" else "1.1")
    assert b"content-type: application/json" in body.lower(), body
    assert len(echo.requests) == before


def test_nghttp_head_refused_ends_on_the_headers(dpki, px):
    p = subprocess.run([tool("nghttp"), "-v", "-H", ":method: HEAD",
                        "--cert", str(dpki.alice_crt), "--key", str(dpki.alice_key),
                        url(px, "/private/x")], capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stdout + p.stderr
    recv = [ln for ln in p.stdout.splitlines() if "recv HEADERS frame" in ln]
    assert recv and "flags=0x05" in recv[0], p.stdout  # END_STREAM | END_HEADERS
    assert ":status: 403" in p.stdout, p.stdout
    assert "recv DATA frame" not in p.stdout, p.stdout


def test_allowed_head_still_reaches_the_upstream(dpki, px, echo):
    before = len(echo.requests)
    got, _, _ = curl(dpki, url(px, "/public/x"), "-I", "--http2")
    assert got == 200
    assert len(echo.requests) == before + 1
