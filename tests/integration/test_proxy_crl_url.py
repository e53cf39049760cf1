# SPDX-License-Identifier: Apache-2.0
"""CRLs by URL in `duet proxy` (issue 13, first part): --crl-url, --crl-from-cdp, --crl-cache,
--crl-refresh (docs/proxy.md#crls-by-url).

The CRLs come from a small Python HTTP server on 127.0.0.1 that serves whatever a test puts
in it (a good CRL, another CA's, a tampered one, an older one, garbage, too much, too slowly),
and from `duet ca serve`'s /crl for the whole loop: revoke at the CA, the proxy refuses the
client on its next refresh and closes its open connection, without a restart.
"""

import base64
import http.server
import json
import os
import signal
import socket
import socketserver
import stat
import subprocess
import threading
import time
from pathlib import Path

import pytest

from conftest import show
from proxyutil import (CA_PASSPHRASE, client_context, closed_by_peer, free_port, metrics,
                       mtls_connect, refused_attempt)
from test_proxy_lifecycle import Echo
from test_security_proxy_ops import start

ANY_TEST_CORP = "uri:spiffe://test-corp/*"


class CrlServer:
    """An HTTP/1.0 server on 127.0.0.1 serving `body` at every path.

    mode: "ok" (status, Content-Length, body), "nolength" (body then close, no length),
    "slow" (a head announcing more than it sends, then silence)."""

    def __init__(self, port=0):
        self.body, self.status, self.mode, self.hits = b"", 200, "ok", 0
        self.reason = None  # the status line's reason phrase, as sent (None: the standard one)
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                outer.hits += 1
                if outer.mode == "slow":
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(outer.body) + 100))
                    self.end_headers()
                    self.wfile.write(outer.body[:20])
                    self.wfile.flush()
                    time.sleep(6)
                    return
                self.send_response(outer.status, outer.reason)
                self.send_header("Content-Type", "application/pkix-crl")
                if outer.mode == "ok":
                    self.send_header("Content-Length", str(len(outer.body)))
                self.end_headers()
                self.wfile.write(outer.body)

            def log_message(self, *args):
                pass

        class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.srv = Server(("127.0.0.1", port), Handler)
        self.port = self.srv.server_address[1]
        self.url = "http://127.0.0.1:%d/issuing.crl" % self.port
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


@pytest.fixture
def crlsrv():
    s = CrlServer()
    yield s
    s.close()


def der_crl(dpki, out, *extra, ca=None):
    """`duet crl generate`'s PEM bundle (the issuing CA's CRL, then the root's), as bytes: what
    a static web server would publish, and what the default --crl-scope chain needs."""
    dpki.duet("crl", "generate", "--ca-dir", ca or dpki.ca, "--out", out, *extra)
    return Path(out).read_bytes()


def tamper_first_signature(pem):
    """The bundle with the last byte of the first CRL's signature flipped."""
    text = pem.decode()
    begin, end = "-----BEGIN X509 CRL-----", "-----END X509 CRL-----"
    i, j = text.index(begin), text.index(end)
    der = bytearray(base64.b64decode("".join(text[i + len(begin):j].split())))
    der[-1] ^= 0x01
    b64 = base64.b64encode(bytes(der)).decode()
    body = "\n".join(b64[k:k + 64] for k in range(0, len(b64), 64))
    return (text[:i] + begin + "\n" + body + "\n" + text[j:]).encode()


def proxy_args(dpki, up, url, cache, *extra):
    return ["--target", "127.0.0.1:%d" % up.port, "--mode", "tcp", "--allow", ANY_TEST_CORP,
            "--cert", dpki.server_crt, "--key", dpki.server_key, "--cacert", dpki.roots,
            "--crl-url", url, "--crl-cache", cache, *extra]


def cache_file(cache):
    files = [f for f in Path(cache).iterdir() if f.name.endswith(".crl")]
    assert len(files) == 1, files
    return files[0]


def assert_refused_revoked(d, dpki, crt, key, mark):
    kind, detail = refused_attempt(d.port, client_context(dpki.roots, crt, key))
    assert kind != "response", "a revoked client got an answer: %r" % detail
    ev = d.log.wait(lambda e: e.get("event") == "handshake" and e.get("result") == "failed",
                    mark)
    assert ev["reason_code"] == "revoked" and "was revoked on" in ev["reason"], ev
    return ev


def assert_served(d, dpki, crt, key):
    s = mtls_connect(d.port, dpki, crt, key)
    s.sendall(b"ping")
    assert s.recv(16) == b"ping"
    s.close()


# --- start ------------------------------------------------------------------------------------

def test_start_fetches_the_crl_and_refuses_a_revoked_client(dpki, procs, tmp_path, crlsrv):
    good = der_crl(dpki, tmp_path / "good.crl")
    crlsrv.body = good
    cache = tmp_path / "cache"
    up = Echo()
    d = start(procs, dpki.duet_bin, tmp_path, "proxy", proxy_args(dpki, up, crlsrv.url, cache),
              "start")
    ev = d.log.wait_event("crl_fetched")
    assert ev["url"] == crlsrv.url and ev["bytes"] == len(good), ev
    f = cache_file(cache)
    assert ev["file"] == str(f) and f.name.startswith("127.0.0.1-"), ev
    assert f.read_bytes() == good
    assert stat.S_IMODE(f.stat().st_mode) == 0o644
    assert not [x for x in cache.iterdir() if x.name.endswith(".tmp")]
    mark = d.log.mark()
    assert_refused_revoked(d, dpki, dpki.mallory_crt, dpki.mallory_key, mark)
    assert_served(d, dpki, dpki.alice_crt, dpki.alice_key)
    m = metrics(d.admin)
    series = 'duet_crl_fetch_last_success_timestamp_seconds{url="%s"}' % crlsrv.url
    assert abs(m[series] - time.time()) < 60, m
    # The CRL is one of the listener's, so its expiry is reported like a --crl file's.
    assert [k for k in m if k.startswith("duet_crl_expiry_seconds") and f.name in k], m


def test_check_says_what_it_would_fetch(dpki, tmp_path, crlsrv, run):
    cache = tmp_path / "cache"
    p = run("proxy", "--listen", "127.0.0.1:%d" % free_port(), "--target", "127.0.0.1:1",
            "--mode", "tcp", "--allow", "any", "--cert", dpki.server_crt, "--key",
            dpki.server_key, "--cacert", dpki.roots, "--crl-url", crlsrv.url, "--crl-cache",
            cache, "--check")
    assert p.returncode == 0, show(p)
    lines = p.stdout.splitlines()
    assert lines[-1] == "configuration OK", show(p)
    assert lines[0].startswith("proxy: would fetch the CRL at %s into %s/127.0.0.1-"
                               % (crlsrv.url, cache)), show(p)
    assert lines[0].endswith(".crl (no cached copy yet)"), show(p)
    assert crlsrv.hits == 0  # --check fetches nothing


def test_https_url_is_refused_with_the_reason(dpki, run):
    p = run("proxy", "--listen", "127.0.0.1:%d" % free_port(), "--target", "127.0.0.1:1",
            "--allow", "any", "--cert", dpki.server_crt, "--key", dpki.server_key, "--cacert",
            dpki.roots, "--crl-url", "https://ca.example/crl", "--check")
    assert p.returncode == 2, show(p)
    assert ('CRL URL "https://ca.example/crl": https:// is not supported; a CRL is signed by '
            'its CA, so duet fetches it over http://') in p.stderr, show(p)


def test_server_down_and_no_cache_fails_the_start_naming_the_url(dpki, tmp_path, run):
    port = free_port()
    url = "http://127.0.0.1:%d/issuing.crl" % port
    cache = tmp_path / "cache"
    t0 = time.monotonic()
    p = run("proxy", "--listen", "127.0.0.1:%d" % free_port(), "--target", "127.0.0.1:1",
            "--mode", "tcp", "--allow", "any", "--cert", dpki.server_crt, "--key",
            dpki.server_key, "--cacert", dpki.roots, "--crl-url", url, "--crl-cache", cache,
            "--log", tmp_path / "down.log")
    assert p.returncode != 0, show(p)
    assert time.monotonic() - t0 < 10
    assert ("cannot fetch the CRL at %s: cannot connect to 127.0.0.1 port %d: Connection "
            "refused; no cached copy in %s/127.0.0.1-" % (url, port, cache)) in p.stderr, show(p)
    assert "crl_fetch_failed" in (tmp_path / "down.log").read_text()


def test_a_servers_status_line_reaches_the_terminal_and_log_printable(dpki, tmp_path, run,
                                                                      crlsrv):
    """A hostile CRL server's reason phrase with terminal escapes and bytes that are not
    UTF-8: the start fails naming the status, with visible characters only, and the log line
    keeps its URL and reason."""
    crlsrv.status, crlsrv.reason = 404, "Not \x1b]0;owned\x07\x1b[2J\xff here"
    p = run("proxy", "--listen", "127.0.0.1:%d" % free_port(), "--target", "127.0.0.1:1",
            "--mode", "tcp", "--allow", "any", "--cert", dpki.server_crt, "--key",
            dpki.server_key, "--cacert", dpki.roots, "--crl-url", crlsrv.url, "--crl-cache",
            tmp_path / "cache", "--log", tmp_path / "status.log")
    assert p.returncode != 0, show(p)
    assert ('HTTP status 404 ("HTTP/1.0 404 Not ?]0;owned??[2J? here"); expected 200'
            in p.stderr), show(p)
    assert "\x1b" not in p.stderr and "\x07" not in p.stderr, show(p)
    failed = [json.loads(line) for line in (tmp_path / "status.log").read_text().splitlines()
              if '"crl_fetch_failed"' in line]
    assert failed and failed[0]["url"] == crlsrv.url, failed
    assert "Not ?]0;owned" in failed[0]["reason"], failed


def test_a_name_that_does_not_resolve_fails_the_start_with_dns(dpki, tmp_path, run):
    url = "http://no-such-host.invalid/crl"
    p = run("proxy", "--listen", "127.0.0.1:%d" % free_port(), "--target", "127.0.0.1:1",
            "--mode", "tcp", "--allow", "any", "--cert", dpki.server_crt, "--key",
            dpki.server_key, "--cacert", dpki.roots, "--crl-url", url, "--crl-cache",
            tmp_path / "cache", "--crl-fetch-timeout", "1s", "--log", tmp_path / "dns.log")
    assert p.returncode != 0, show(p)
    assert ("cannot fetch the CRL at %s: DNS: cannot resolve no-such-host.invalid: " % url) \
        in p.stderr, show(p)
    assert "; no cached copy in %s/no-such-host.invalid-" % (tmp_path / "cache") in p.stderr


def test_server_down_with_a_cached_copy_starts_offline(dpki, procs, tmp_path):
    srv = CrlServer()
    good = der_crl(dpki, tmp_path / "good.crl")
    srv.body = good
    cache = tmp_path / "cache"
    up = Echo()
    d = start(procs, dpki.duet_bin, tmp_path / "first", "proxy",
              proxy_args(dpki, up, srv.url, cache), "first")
    d.log.wait_event("crl_fetched")
    d.proc.send_signal(signal.SIGTERM)
    d.proc.wait(timeout=10)
    srv.close()

    d = start(procs, dpki.duet_bin, tmp_path / "second", "proxy",
              proxy_args(dpki, up, srv.url, cache, "--crl-refresh", "1s"), "second")
    ev = d.log.wait_event("crl_fetch_failed")
    assert ev["url"] == srv.url and ev["code"] == "connect", ev
    assert "Connection refused" in ev["reason"] and ev["kept"] == "the cached CRL", ev
    ev = d.log.wait_event("crl_offline")
    assert ev["url"] == srv.url, ev
    mark = d.log.mark()
    assert_refused_revoked(d, dpki, dpki.mallory_crt, dpki.mallory_key, mark)
    assert_served(d, dpki, dpki.alice_crt, dpki.alice_key)
    assert cache_file(cache).read_bytes() == good
    # It keeps trying, with back-off, and counts the failures per URL and reason.
    d.log.wait(lambda e: e.get("event") == "crl_fetch_failed", mark, timeout=10)
    m = metrics(d.admin)
    assert m['duet_crl_fetch_failures_total{url="%s",reason="connect"}' % srv.url] >= 2, m


# --- refresh ----------------------------------------------------------------------------------

def test_refresh_revokes_without_restart_and_closes_the_open_connection(dpki, procs, tmp_path,
                                                                          crlsrv):
    carol_crt, carol_key = dpki.issue("client", "carol-url")
    crlsrv.body = der_crl(dpki, tmp_path / "before.crl")
    up = Echo()
    d = start(procs, dpki.duet_bin, tmp_path, "proxy",
              proxy_args(dpki, up, crlsrv.url, tmp_path / "cache", "--crl-refresh", "1s"),
              "refresh")
    first = d.log.wait_event("crl_fetched")
    carol = mtls_connect(d.port, dpki, carol_crt, carol_key)
    alice = mtls_connect(d.port, dpki, dpki.alice_crt, dpki.alice_key)
    for s in (carol, alice):
        s.sendall(b"hello")
        assert s.recv(16) == b"hello"

    dpki.revoke(carol_crt)
    after = der_crl(dpki, tmp_path / "after.crl")
    mark = d.log.mark()
    crlsrv.body = after
    ev = d.log.wait(lambda e: e.get("event") == "crl_fetched", mark, timeout=10)
    assert int(ev["crl_number"].replace(":", ""), 16) > \
        int(first["crl_number"].replace(":", ""), 16), (first, ev)
    reload = d.log.wait(lambda e: e.get("event") == "reload", mark, timeout=10)
    assert reload["result"] == "ok", reload

    # The open connection of the revoked client ends as a CRL file reload ends it.
    assert closed_by_peer(carol), "carol's open connection stayed open after her revocation"
    closed = d.log.wait(lambda e: e.get("event") == "connection_closed", mark)
    assert closed["reason_code"] == "revoked" and "carol-url" in closed["identity"]["name"], \
        closed
    alice.sendall(b"still")
    assert alice.recv(16) == b"still"
    alice.close()
    m2 = d.log.mark()
    assert_refused_revoked(d, dpki, carol_crt, carol_key, m2)
    # Fetching the same CRL again changes nothing: no reload.
    time.sleep(2.5)
    assert crlsrv.hits >= 3
    assert not d.log.since(m2, "reload")


# --- what is never taken ----------------------------------------------------------------------

def _bad_bodies(dpki, tmp_path):
    old = der_crl(dpki, tmp_path / "old.crl")
    good = der_crl(dpki, tmp_path / "good.crl")
    newer = tamper_first_signature(der_crl(dpki, tmp_path / "newer.crl"))
    other = der_crl(dpki, tmp_path / "other.crl", ca=dpki.other_ca)
    expired = der_crl(dpki, tmp_path / "expired.crl", "--next-update", "1s")
    return good, {
        "bad-signature": (newer, "ok", 200, "bad_signature",
                          "bad signature: the CRL does not verify with the key of"),
        "another-trusted-issuer": ((dpki.ca / "root.crl").read_bytes(), "ok", 200,
                                   "issuer_changed",
                                   'the CRL is issued by "CN=Test Corp Root CA,O=Test Corp", not '
                                   'by "CN=Test Corp Issuing CA,O=Test Corp" like the current '
                                   'one'),
        "other-ca": (other, "ok", 200, "unknown_issuer",
                     "which is none of the CAs of the listener"),
        "older-crl-number": (old, "ok", 200, "not_newer", "is not above the current CRL's"),
        "expired": (expired, "ok", 200, "expired", "is expired: its nextUpdate"),
        "garbage": (b"<html>not a CRL</html>\n" * 20, "ok", 200, "not_a_crl",
                    "not a valid CRL"),
        "truncated": (good[:len(good) // 2], "ok", 200, "not_a_crl", "not a valid CRL"),
        "oversize-announced": (b"0" * 9000, "ok", 200, "too_large",
                               "the reply announces 9000 bytes, more than the limit of 4096"),
        "oversize-streamed": (b"0" * 9000, "nolength", 200, "too_large",
                              "the reply is larger than the limit of 4096 bytes"),
        "slow-body": (good, "slow", 200, "timeout",
                      "timed out after 1000 ms reading the body"),
        "http-404": (b"no such CRL", "ok", 404, "http_status", "HTTP status 404"),
    }


BAD = ["bad-signature", "another-trusted-issuer", "other-ca", "older-crl-number", "expired",
       "garbage", "truncated", "oversize-announced", "oversize-streamed", "slow-body", "http-404"]


@pytest.mark.parametrize("case", BAD)
def test_a_bad_crl_is_refused_logged_and_the_good_one_kept(dpki, procs, tmp_path, crlsrv, case):
    good, bad = _bad_bodies(dpki, tmp_path)
    body, mode, status, code, words = bad[case]
    crlsrv.body = good
    cache = tmp_path / "cache"
    up = Echo()
    d = start(procs, dpki.duet_bin, tmp_path, "proxy",
              proxy_args(dpki, up, crlsrv.url, cache, "--crl-refresh", "1s",
                         "--crl-fetch-timeout", "1s", "--crl-max-size", "4096"), "bad")
    d.log.wait_event("crl_fetched")
    if case == "expired":
        time.sleep(1.5)
    mark = d.log.mark()
    crlsrv.body, crlsrv.mode, crlsrv.status = body, mode, status
    ev = d.log.wait(lambda e: e.get("event") in ("crl_rejected", "crl_fetch_failed"), mark,
                    timeout=15)
    assert ev["url"] == crlsrv.url and ev["code"] == code, ev
    assert words in ev["reason"], ev
    if ev["event"] == "crl_rejected":
        assert ev["kept"].startswith("the current CRL (thisUpdate "), ev
    # The good CRL stays: in the cache, and in force.
    assert cache_file(cache).read_bytes() == good
    assert not d.log.since(mark, "reload")
    assert_refused_revoked(d, dpki, dpki.mallory_crt, dpki.mallory_key, d.log.mark())
    assert_served(d, dpki, dpki.alice_crt, dpki.alice_key)
    m = metrics(d.admin)
    assert m['duet_crl_fetch_failures_total{url="%s",reason="%s"}' % (crlsrv.url, code)] >= 1, m


# --- the whole loop with duet ca serve ------------------------------------------------------

def test_revoked_at_duet_ca_serve_is_refused_after_the_next_refresh(duet_bin, make_ca, procs,
                                                                     tmp_path):
    from test_ca_serve import CAServer
    ca = make_ca("Loop Corp")
    srv_crt, srv_key, _ = ca.issued("localhost", "server", "--san", "dns:localhost", "--san",
                                    "ip:127.0.0.1")
    carol_crt, carol_key, serial = ca.issued("carol", "client")
    serve = CAServer(duet_bin, ca).start()
    try:
        up = Echo()
        url = "http://127.0.0.1:%d/crl" % serve.http_port
        d = start(procs, duet_bin, tmp_path, "proxy",
                  ["--target", "127.0.0.1:%d" % up.port, "--mode", "tcp", "--allow", "any",
                   "--cert", srv_crt, "--key", srv_key, "--cacert", ca.root, "--crl-url", url,
                   # /crl is the issuing CA's CRL; the root's (which covers the issuing CA,
                   # and changes once a year) is a file beside it.
                   "--crl", ca.dir / "root.crl",
                   "--crl-cache", tmp_path / "cache", "--crl-refresh", "1s"], "loop")
        assert d.log.wait_event("crl_fetched")["url"] == url
        ctx = client_context(ca.root, carol_crt, carol_key)
        s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", d.port),
                                                                   timeout=10),
                            server_hostname="localhost")
        s.sendall(b"open")
        assert s.recv(16) == b"open"

        mark = d.log.mark()
        st, _, ans = serve.request("POST", "/v1/revoke", {"serial": serial}, cert=carol_crt,
                                   key=carol_key)
        assert st == 200, ans
        d.log.wait(lambda e: e.get("event") == "crl_fetched", mark, timeout=15)
        assert closed_by_peer(s), "the revoked client's open connection stayed open"
        closed = d.log.wait(lambda e: e.get("event") == "connection_closed", mark)
        assert closed["reason_code"] == "revoked", closed
        kind, detail = refused_attempt(d.port, ctx)
        assert kind != "response", detail
        ev = d.log.wait(lambda e: e.get("event") == "handshake" and
                        e.get("result") == "failed", mark)
        assert ev["reason_code"] == "revoked" and "was revoked on" in ev["reason"], ev
    finally:
        serve.stop()


# --- --crl-from-cdp ---------------------------------------------------------------------------

def test_crl_from_cdp_fetches_the_distribution_point_of_the_ca_profile(duet_bin, make_ca, procs,
                                                                       tmp_path, run, crlsrv):
    ca = make_ca("Cdp Corp")
    yml = ca.dir / "ca.yaml"
    url = "http://127.0.0.1:%d/issuing.crl" % crlsrv.port
    yml.write_text(yml.read_text().replace("crl_urls: []", 'crl_urls: ["%s"]' % url))
    srv_crt, srv_key, _ = ca.issued("localhost", "server", "--san", "dns:localhost", "--san",
                                    "ip:127.0.0.1")
    mal_crt, mal_key, mal_serial = ca.issued("mal", "client")
    ok_crt, ok_key, _ = ca.issued("okay", "client")
    p = ca.duet("cert", "revoke", mal_serial, "--ca-dir", ca.dir)
    assert p.returncode == 0, show(p)
    p = ca.crl(tmp_path / "cdp.crl")
    assert p.returncode == 0, show(p)
    crlsrv.body = (tmp_path / "cdp.crl").read_bytes()
    common = ["--target", "127.0.0.1:1", "--mode", "tcp", "--allow", "any", "--cert", srv_crt,
              "--key", srv_key, "--cacert", ca.root, "--crl-from-cdp", "--crl-cache",
              tmp_path / "cache"]

    p = run("proxy", "--listen", "127.0.0.1:%d" % free_port(), *common, "--check")
    assert p.returncode == 0, show(p)
    assert "proxy: would fetch the CRL at %s into " % url in p.stdout, show(p)

    up = Echo()
    common[1] = "127.0.0.1:%d" % up.port
    d = start(procs, duet_bin, tmp_path, "proxy", common, "cdp")
    assert d.log.wait_event("crl_fetched")["url"] == url
    mark = d.log.mark()
    kind, detail = refused_attempt(d.port, client_context(ca.root, mal_crt, mal_key))
    assert kind != "response", detail
    ev = d.log.wait(lambda e: e.get("event") == "handshake" and e.get("result") == "failed",
                    mark)
    assert ev["reason_code"] == "revoked", ev
    s = client_context(ca.root, ok_crt, ok_key).wrap_socket(
        socket.create_connection(("127.0.0.1", d.port), timeout=10),
        server_hostname="localhost")
    s.sendall(b"cdp")
    assert s.recv(16) == b"cdp"
    s.close()


def test_crl_from_cdp_without_a_distribution_point_is_an_error(dpki, run):
    p = run("proxy", "--listen", "127.0.0.1:%d" % free_port(), "--target", "127.0.0.1:1",
            "--allow", "any", "--cert", dpki.server_crt, "--key", dpki.server_key, "--cacert",
            dpki.roots, "--crl-from-cdp", "--check")
    assert p.returncode == 2, show(p)
    assert ("proxy: --crl-from-cdp: no http:// CRL distribution point in the certificates of "
            "%s or %s; name the CRL with --crl-url" % (dpki.roots, dpki.server_crt)) in p.stderr, \
        show(p)


def test_tunnel_fetches_its_crl_url_too(dpki, procs, tmp_path, crlsrv):
    """duet tunnel checks the server's certificate against the fetched CRL: the proxy's own
    certificate revoked -> the tunnel refuses the server."""
    srv_crt, srv_key = dpki.issue("server", "revoked-srv", "--san", "dns:localhost", "--san",
                                  "ip:127.0.0.1")
    dpki.revoke(srv_crt)
    crlsrv.body = der_crl(dpki, tmp_path / "t.crl")
    up = Echo()
    px = start(procs, dpki.duet_bin, tmp_path / "px", "proxy",
               ["--target", "127.0.0.1:%d" % up.port, "--mode", "tcp", "--allow", "any",
                "--cert", srv_crt, "--key", srv_key, "--cacert", dpki.roots], "px")
    tn = start(procs, dpki.duet_bin, tmp_path / "tn", "tunnel",
               ["--target", "127.0.0.1:%d" % px.port, "--server-name", "localhost",
                "--cert", dpki.alice_crt, "--key", dpki.alice_key, "--cacert", dpki.roots,
                "--crl-url", crlsrv.url, "--crl-cache", tmp_path / "cache"], "tn")
    assert tn.log.wait_event("crl_fetched")["url"] == crlsrv.url
    mark = tn.log.mark()
    c = socket.create_connection(("127.0.0.1", tn.port), timeout=10)
    c.sendall(b"x")
    try:
        c.settimeout(10)
        data = c.recv(16)
    except OSError:
        data = b""
    c.close()
    assert data == b""
    ev = tn.log.wait(lambda e: e.get("event") == "handshake" and e.get("result") == "failed",
                     mark)
    assert "was revoked on" in ev["reason"], ev


# --- a million entries over HTTP --------------------------------------------------------------

MILLION = 1000000


def test_a_million_entry_crl_is_fetched_and_refreshed_while_handshakes_go_on(duet_bin, dpki,
                                                                             procs, tmp_path):
    """The default size limit takes a million-entry CRL; it is streamed to the cache (the
    proxy's peak memory stays near what two loaded CRL sets cost, not a multiple of the body),
    and a refresh to another one loses no handshake."""
    mkcrl = Path(os.environ.get("DUET_MKCRL", str(Path(duet_bin).parent / "tests" / "mkcrl")))
    assert mkcrl.is_file(), "mkcrl is built with the tests: %s" % mkcrl
    root_pem = (dpki.ca / "root.crl").read_bytes()

    def big(number, revoked):
        out = tmp_path / ("big%d.der" % number)
        argv = [str(mkcrl), "--cert", str(dpki.ca / "issuing.crt"), "--key",
                str(dpki.ca / "issuing.key"), "--pass-env", "DUET_CA_PASSPHRASE", "--count",
                str(MILLION), "--number", str(number), "--out", str(out), "--der"]
        for crt in revoked:
            argv += ["--revoke", str(crt)]
        p = subprocess.run(argv, capture_output=True, text=True, timeout=120,
                           env=dict(os.environ, DUET_CA_PASSPHRASE=CA_PASSPHRASE))
        assert p.returncode == 0, p.stderr
        pem = subprocess.run(["openssl", "crl", "-inform", "DER", "-in", str(out)],
                             capture_output=True, check=True, timeout=120).stdout
        return pem + root_pem

    first = big(1, [dpki.mallory_crt])
    assert len(first) > 60 * 1024 * 1024  # PEM, as a static server would publish it
    srv = CrlServer()
    srv.body = first
    up = Echo()
    try:
        d = start(procs, duet_bin, tmp_path, "proxy",
                  proxy_args(dpki, up, srv.url, tmp_path / "cache", "--crl-refresh", "1s"),
                  "million", start_timeout=None)
        # The start-up waits for the 66 MB fetch, then loads a million entries: each stage has
        # its own bound, long enough for a loaded machine (a proxy that dies ends the wait).
        ev = d.log.wait_event("crl_fetched", timeout=180)
        assert ev["bytes"] == len(first), ev
        d.log.wait_event("start", timeout=180)
        assert_refused_revoked(d, dpki, dpki.mallory_crt, dpki.mallory_key, d.log.mark())

        second = big(2, [dpki.mallory_crt, dpki.bob_crt])
        mark = d.log.mark()
        srv.body = second
        failures, done = [], 0
        deadline = time.monotonic() + 240  # parsing 66 MB twice takes long on a loaded machine
        while time.monotonic() < deadline:
            try:
                assert_served(d, dpki, dpki.alice_crt, dpki.alice_key)
                done += 1
            except (OSError, AssertionError) as e:
                failures.append(repr(e))
            if [r for r in d.log.since(mark, "reload") if r.get("result") == "ok"]:
                break
        reloads = d.log.since(mark, "reload")
        assert reloads and reloads[-1]["result"] == "ok", reloads
        assert failures == [] and done > 0, failures
        assert_refused_revoked(d, dpki, dpki.bob_crt, dpki.bob_key, d.log.mark())
        # Peak memory: two CRL sets (the old generation and the new) and the check's set, about
        # 35 bytes an entry each, far from copies of a 66 MB body.
        hwm_kb = int([line.split()[1] for line in
                      Path("/proc/%d/status" % d.proc.pid).read_text().splitlines()
                      if line.startswith("VmHWM:")][0])
        assert hwm_kb < 300 * 1024, "peak RSS %d MiB" % (hwm_kb // 1024)
    finally:
        srv.close()
