# SPDX-License-Identifier: Apache-2.0
"""Integration tests for `duet proxy` (mTLS gateway) and `duet tunnel` (client side).

Real peers on 127.0.0.1: curl, openssl s_client, gnutls-cli, Python ssl and nginx; upstreams
are an HTTP echo server that returns the request it received and a TCP server that parses
the PROXY v2 header.  The PKI comes from duet's own CA (see proxyutil.ProxyPKI).  Each mTLS
case covers the right certificate, none, and wrong or revoked ones, and asserts the reason
written to the log and the metric counted for it.
"""

import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import time
from pathlib import Path

import pytest

from proxyutil import (DuetLog, ProxyV2Upstream, admin_get, cert_serial, client_context, free_port,
                       header_values, https_request, leaf_der, metrics, refused_attempt, sha256_hex,
                       wait_metric, wait_port)

HS_FAILED = 'duet_handshakes_total{listener="proxy",result="failed",reason="%s"}'
HS_OK = 'duet_handshakes_total{listener="proxy",result="ok"}'
REQUEST = b"GET %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"


# --- fixtures --------------------------------------------------------------------------------

class Duet:
    """A running `duet proxy` or `duet tunnel`."""

    def __init__(self, proc, port, admin, log, workdir):
        self.proc, self.port, self.admin, self.log, self.dir = proc, port, admin, log, workdir

    def metrics(self):
        return metrics(self.admin)


def start_duet(procs, duet_bin, workdir, sub, args, name, port=None, admin=True):
    """Start `duet SUB --listen 127.0.0.1:PORT ARGS --log F [--admin ...]`; wait for its
    start event (logged once the sockets listen)."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    admin_port = free_port() if admin else None
    log = workdir / (name + ".log")
    argv = [duet_bin, sub, "--listen", "127.0.0.1:%d" % port, *args, "--log", log]
    if admin:
        argv += ["--admin", "127.0.0.1:%d" % admin_port]
    p = procs.start(argv, name)
    dl = DuetLog(log, p, procs)
    dl.wait_event("start", timeout=10)
    return Duet(p, port, admin_port, dl, workdir)


def proxy_args(dpki, target, *extra, cert=None, key=None, crl=None, roots=None):
    return ["--target", target, "--cert", cert or dpki.server_crt, "--key", key or dpki.server_key,
            "--cacert", roots or dpki.roots, "--crl", crl or dpki.crl, *extra]


@pytest.fixture(scope="module")
def basic(dpki, module_procs, echo, tmp_path_factory):
    """HTTP mode, only alice allowed, the CRL that revokes mallory."""
    return start_duet(module_procs, dpki.duet_bin, tmp_path_factory.mktemp("basic"), "proxy",
                      proxy_args(dpki, "127.0.0.1:%d" % echo.port,
                                 "--allow", "uri:spiffe://test-corp/alice", "--workers", "2"),
                      "basic")


@pytest.fixture(scope="module")
def tls12_proxy(dpki, module_procs, echo, tmp_path_factory):
    return start_duet(module_procs, dpki.duet_bin, tmp_path_factory.mktemp("tls12"), "proxy",
                      proxy_args(dpki, "127.0.0.1:%d" % echo.port,
                                 "--allow", "uri:spiffe://test-corp/alice", "--tls12"),
                      "tls12")


def expected_xfcc(crt, name):
    """The X-Forwarded-Client-Cert element duet sends for a test-corp client NAME."""
    return 'Hash=%s;Subject="CN=%s,O=Test Corp";URI=spiffe://test-corp/%s' % (
        sha256_hex(leaf_der(crt)), name, name)


def alice_ctx(dpki):
    return client_context(dpki.roots, dpki.alice_crt, dpki.alice_key)


def json_objects(text):
    """Every JSON object of a text made of concatenated objects (curl's output)."""
    dec = json.JSONDecoder()
    out, i = [], 0
    while i < len(text):
        while i < len(text) and text[i].isspace():
            i += 1
        if i >= len(text):
            break
        obj, i = dec.raw_decode(text, i)
        out.append(obj)
    return out


def handshakes(log, mark, result=None):
    return [e for e in log.since(mark, "handshake") if result is None or e["result"] == result]


def cert_verify_reason(dpki, crt, crl=None):
    """What `duet cert verify` says about a client certificate (chain given as untrusted)."""
    p = subprocess.run([str(dpki.duet_bin), "cert", "verify", "--trusted", str(dpki.roots),
                        "--purpose", "client", "--crl", str(crl or dpki.crl),
                        "--untrusted", str(crt), str(crt)],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 1, "duet cert verify accepted %s: %s%s" % (crt, p.stdout, p.stderr)
    return p.stderr.strip()


# --- the right certificate, with every kind of peer -------------------------------------------

def test_curl_keepalive_allowed_identity_gets_200_with_identity_header(basic, dpki, echo):
    mark = basic.log.mark()
    ok_before = basic.metrics().get(HS_OK, 0)
    base = "https://localhost:%d" % basic.port
    p = subprocess.run(["curl", "-sS", "-v", "--cacert", dpki.roots, "--cert", dpki.alice_crt,
                        "--key", dpki.alice_key, "--resolve", "localhost:%d:127.0.0.1" % basic.port,
                        base + "/curl/one", base + "/curl/two?q=1"],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    # One connection, two requests on it.
    assert "Re-using existing connection" in p.stderr, p.stderr
    bodies = json_objects(p.stdout)
    assert [b["path"] for b in bodies] == ["/curl/one", "/curl/two?q=1"]
    for b in bodies:
        assert header_values(b, "X-Forwarded-Client-Cert") == [
            expected_xfcc(dpki.alice_crt, "alice")]
        assert header_values(b, "X-Forwarded-For") == ["127.0.0.1"]
        assert header_values(b, "X-Forwarded-Proto") == ["https"]
    basic.log.wait(lambda e: e.get("event") == "authz" and e.get("path") == "/curl/two?q=1",
                   mark, what="authz for /curl/two")
    hs = handshakes(basic.log, mark)
    assert len(hs) == 1 and hs[0]["result"] == "ok", hs
    assert hs[0]["identity"]["name"] == "spiffe://test-corp/alice"
    authz = basic.log.since(mark, "authz")
    assert [(a["decision"], a["rule"], a["peer"], a["path"]) for a in authz] == [
        ("allow", "--allow uri:spiffe://test-corp/alice", hs[0]["peer"], "/curl/one"),
        ("allow", "--allow uri:spiffe://test-corp/alice", hs[0]["peer"], "/curl/two?q=1")]
    wait_metric(basic.admin, HS_OK, ok_before + 1)


def test_python_ssl_client_and_handshake_log(basic, dpki):
    mark = basic.log.mark()
    status, body, conn = https_request(basic.port, "/python", alice_ctx(dpki))
    cipher = conn.sock.cipher()[0]
    conn.close()
    assert status == 200
    assert body["path"] == "/python"
    assert header_values(body, "X-Forwarded-Client-Cert") == [
        expected_xfcc(dpki.alice_crt, "alice")]
    hs = basic.log.wait_event("handshake", mark, result="ok")
    fp = sha256_hex(leaf_der(dpki.alice_crt)).upper()
    assert hs["identity"] == {
        "name": "spiffe://test-corp/alice",
        "subject": "CN=alice,O=Test Corp",
        "sans": ["URI:spiffe://test-corp/alice"],
        "serial": cert_serial(dpki.alice_crt),
        "fingerprint": ":".join(fp[i:i + 2] for i in range(0, len(fp), 2)),
        "issuer": "CN=Test Corp Issuing CA,O=Test Corp",
    }
    assert hs["tls_version"] == "TLSv1.3"
    assert hs["cipher"] == cipher
    assert hs["resumed"] is False
    assert isinstance(hs["duration_ms"], (int, float)) and hs["duration_ms"] >= 0
    assert "reason" not in hs


def run_s_client(port, dpki, *flags, cert=True, path=b"/s_client"):
    args = ["openssl", "s_client", "-connect", "127.0.0.1:%d" % port, "-servername", "localhost",
            "-CAfile", str(dpki.roots), "-verify_return_error", "-ign_eof", *flags]
    if cert:
        args += ["-cert", str(dpki.alice_crt), "-key", str(dpki.alice_key),
                 "-cert_chain", str(dpki.alice_crt)]
    return subprocess.run(args, input=REQUEST % path, capture_output=True, timeout=20)


CA_NAMES = b"Acceptable client certificate CA names\nO = Test Corp, CN = Test Corp Root CA\n"


def test_openssl_s_client_tls13_sees_certificate_request(basic, dpki):
    mark = basic.log.mark()
    p = run_s_client(basic.port, dpki, "-tls1_3", path=b"/s_client/13")
    out = p.stdout
    assert CA_NAMES in out, out.decode(errors="replace")
    assert b"New, TLSv1.3, Cipher is " in out
    assert b"Verification: OK" in out
    assert b"HTTP/1.1 200 OK" in out
    assert expected_xfcc(dpki.alice_crt, "alice").encode() in out.replace(b'\\"', b'"')
    hs = basic.log.wait_event("handshake", mark, result="ok")
    assert hs["tls_version"] == "TLSv1.3"


def test_openssl_s_client_tls12_only_with_flag(basic, tls12_proxy, dpki):
    # With --tls12: TLS 1.2 works, and the CertificateRequest names the trusted root.
    mark = tls12_proxy.log.mark()
    p = run_s_client(tls12_proxy.port, dpki, "-tls1_2", path=b"/s_client/12")
    out = p.stdout
    assert CA_NAMES in out, out.decode(errors="replace")
    assert b"New, TLSv1.2, Cipher is ECDHE-" in out
    assert b"HTTP/1.1 200 OK" in out
    hs = tls12_proxy.log.wait_event("handshake", mark, result="ok")
    assert hs["tls_version"] == "TLSv1.2"
    assert hs["identity"]["name"] == "spiffe://test-corp/alice"
    # Nothing older than TLS 1.2, even with --tls12.
    mark = tls12_proxy.log.mark()
    p = run_s_client(tls12_proxy.port, dpki, "-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0")
    assert b"HTTP/1.1" not in p.stdout
    ev = tls12_proxy.log.wait_event("handshake", mark, result="failed")
    assert "unsupported protocol" in ev["reason"]
    # Without --tls12 the default proxy speaks TLS 1.3 only.
    mark = basic.log.mark()
    before = basic.metrics().get(HS_FAILED % "other", 0)
    p = run_s_client(basic.port, dpki, "-tls1_2")
    assert b"HTTP/1.1" not in p.stdout
    ev = basic.log.wait_event("handshake", mark, result="failed")
    assert "unsupported protocol" in ev["reason"]
    wait_metric(basic.admin, HS_FAILED % "other", before + 1)


def test_gnutls_cli(basic, dpki):
    gnutls = shutil.which("gnutls-cli")
    assert gnutls, "gnutls-cli is missing (apt-get install gnutls-bin)"
    mark = basic.log.mark()
    p = subprocess.run([gnutls, "--x509cafile", str(dpki.roots),
                        "--x509certfile", str(dpki.alice_crt),
                        "--x509keyfile", str(dpki.alice_key), "-p", str(basic.port), "localhost"],
                       input=REQUEST % b"/gnutls", capture_output=True, timeout=20)
    out = p.stdout.decode(errors="replace")
    assert "- Handshake was completed" in out, out + p.stderr.decode(errors="replace")
    assert "(TLS1.3-X.509)" in out
    assert "HTTP/1.1 200 OK" in out
    assert '"path": "/gnutls"' in out
    assert expected_xfcc(dpki.alice_crt, "alice") in out.replace('\\"', '"')
    hs = basic.log.wait_event("handshake", mark, result="ok")
    assert hs["identity"]["name"] == "spiffe://test-corp/alice"


SPOOFED_XFCC = 'By=spiffe://test-corp/admin;Hash=00;Subject="CN=admin";URI=spiffe://test-corp/admin'


def spoofed_request(port, ctx, path):
    """A request carrying forged identity headers (two spellings of XFCC, XFF and XFP)."""
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=5)
    conn.putrequest("GET", path)
    conn.putheader("X-Forwarded-Client-Cert", SPOOFED_XFCC)
    conn.putheader("x-forwarded-client-cert", "URI=spiffe://test-corp/root")
    conn.putheader("X-Forwarded-For", "10.6.6.6")
    conn.putheader("X-Forwarded-Proto", "http")
    conn.endheaders()
    r = conn.getresponse()
    body = json.loads(r.read())
    conn.close()
    assert r.status == 200, body
    return body


def test_spoofed_identity_headers_are_replaced(basic, dpki, echo):
    body = spoofed_request(basic.port, alice_ctx(dpki), "/spoof")
    assert header_values(body, "X-Forwarded-Client-Cert") == [
        expected_xfcc(dpki.alice_crt, "alice")]
    assert header_values(body, "X-Forwarded-For") == ["127.0.0.1"]
    assert header_values(body, "X-Forwarded-Proto") == ["https"]


XFCC_MODES = [
    # mode, what the upstream receives given the client's two forged headers
    ("sanitize", lambda mine: [mine]),
    ("sanitize_set", lambda mine: [mine]),
    ("forward_only", lambda mine: [SPOOFED_XFCC + ",URI=spiffe://test-corp/root"]),
    ("append_forward", lambda mine: [SPOOFED_XFCC + ",URI=spiffe://test-corp/root," + mine]),
]


@pytest.mark.parametrize("mode,expect", XFCC_MODES, ids=[m[0] for m in XFCC_MODES])
def test_client_cert_header_modes(dpki, procs, fresh_echo, tmp_path, mode, expect):
    d = start_duet(procs, dpki.duet_bin, tmp_path, "proxy",
                   proxy_args(dpki, "127.0.0.1:%d" % fresh_echo.port,
                              "--allow", "uri:spiffe://test-corp/alice",
                              "--client-cert-header", mode, "--workers", "1"),
                   "xfcc", admin=False)
    body = spoofed_request(d.port, alice_ctx(dpki), "/xfcc/" + mode)
    assert header_values(body, "X-Forwarded-Client-Cert") == expect(
        expected_xfcc(dpki.alice_crt, "alice"))


def test_admin_healthz_readyz_and_metrics(basic):
    assert admin_get(basic.admin, "/healthz")[0] == 200
    status, text = admin_get(basic.admin, "/readyz")
    assert status == 200, text
    m = basic.metrics()
    assert "duet_connections_active" in m
    assert m['duet_certificate_expiry_seconds{listener="proxy",subject="CN=localhost,O=Test Corp",'
             'file="%s"}' % basic_arg(basic, "--cert")] > 80 * 86400
    crl_series = [k for k in m if k.startswith("duet_crl_expiry_seconds{")]
    assert any('issuer="CN=Test Corp Issuing CA,O=Test Corp"' in k for k in crl_series), crl_series
    assert any('issuer="CN=Test Corp Root CA,O=Test Corp"' in k for k in crl_series), crl_series
    for reason in ("no_cert", "unknown_ca", "expired", "revoked", "purpose"):
        assert HS_FAILED % reason in m


def basic_arg(d, flag):
    argv = d.proc.args
    return argv[argv.index(flag) + 1]


# --- refused: none, unknown CA, expired, revoked, serverAuth-only -----------------------------

REFUSALS = [
    # id, client certificate (None: none), metric reason, words the log reason must contain
    ("no-certificate", None, "no_cert", "the client presented no certificate"),
    ("unknown-ca", "eve", "unknown_ca", "unknown CA"),
    ("expired", "expired", "expired", "expired on"),
    ("revoked", "mallory", "revoked", "was revoked on"),
    ("server-auth-only", "localhost", "purpose", "is not valid for TLS client authentication"),
]


@pytest.mark.parametrize("case,name,reason,words", REFUSALS, ids=[r[0] for r in REFUSALS])
def test_refused_client_logged_and_counted(basic, dpki, echo, case, name, reason, words):
    series = HS_FAILED % reason
    before = basic.metrics()[series]
    requests_before = len(echo.requests)
    mark = basic.log.mark()
    if name is None:
        ctx = client_context(dpki.roots)
    else:
        ctx = client_context(dpki.roots, getattr(dpki, name + "_crt"),
                             getattr(dpki, name + "_key"))
    kind, detail = refused_attempt(basic.port, ctx)
    assert kind != "response", "a refused client got an answer: %r" % detail
    ev = basic.log.wait_event("handshake", mark, result="failed")
    assert words in ev["reason"], ev
    assert ev["reason_code"] == reason, ev  # the metric's category, for machines
    if name is not None:
        # The same sentence `duet cert verify` prints for this certificate.
        assert ev["reason"] == cert_verify_reason(dpki, getattr(dpki, name + "_crt"))
    wait_metric(basic.admin, series, before + 1)
    assert basic.log.since(mark, "authz") == []
    assert len(echo.requests) == requests_before


def test_valid_but_not_allowed_gets_403_naming_the_rule(basic, dpki, echo):
    series = ('duet_authz_decisions_total{listener="proxy",rule="default-deny",'
              'decision="deny"}')
    before = basic.metrics().get(series, 0)
    mark = basic.log.mark()
    ctx = client_context(dpki.roots, dpki.bob_crt, dpki.bob_key)
    status, body, conn = https_request(basic.port, "/not-for-bob", ctx)
    conn.close()
    assert status == 403
    assert body == {"error": "forbidden", "rule": "default-deny",
                    "identity": "spiffe://test-corp/bob"}
    ev = basic.log.wait_event("authz", mark, decision="deny")
    assert ev["rule"] == "default-deny"
    assert ev["identity"] == "spiffe://test-corp/bob"
    assert ev["path"] == "/not-for-bob"
    assert handshakes(basic.log, mark)[0]["result"] == "ok"  # the certificate itself was fine
    wait_metric(basic.admin, series, before + 1)
    assert not any(r["path"] == "/not-for-bob" for r in echo.requests)


# --- per-path rules from a YAML configuration -------------------------------------------------

def test_per_path_rules_from_config(dpki, procs, fresh_echo, tmp_path):
    port, admin = free_port(), free_port()
    log = tmp_path / "web.log"
    cfg = tmp_path / "proxy.yaml"
    cfg.write_text("""\
listeners:
  - name: web
    listen: 127.0.0.1:%(port)d
    mode: http
    cert: %(cert)s
    key: %(key)s
    cacert: %(roots)s
    crl: [%(crl)s]
    target: [127.0.0.1:%(up)d]
    rules:
      - {name: hr-staff, allow: ["uri:spiffe://test-corp/henry"], path_prefix: /hr/}
      - {name: everyone-public, allow: [any], path_prefix: /public/}
admin: 127.0.0.1:%(admin)d
log: %(log)s
workers: 1
""" % dict(port=port, cert=dpki.server_crt, key=dpki.server_key, roots=dpki.roots,
           crl=dpki.crl, up=fresh_echo.port, admin=admin, log=log))
    check = subprocess.run([str(dpki.duet_bin), "proxy", "--config", str(cfg), "--check"],
                           capture_output=True, text=True, timeout=30)
    assert check.returncode == 0 and "configuration OK" in check.stdout, check
    # A global flag given with --config overrides the file (workers: 1 there).
    p = procs.start([dpki.duet_bin, "proxy", "--config", cfg, "--workers", "2"], "web")
    dl = DuetLog(log, p, procs)
    assert dl.wait_event("start")["workers"] == 2
    henry = client_context(dpki.roots, dpki.henry_crt, dpki.henry_key)
    alice = alice_ctx(dpki)

    def get(ctx, path):
        mark = dl.mark()
        status, body, conn = https_request(port, path, ctx)
        conn.close()
        ev = dl.wait_event("authz", mark)
        return status, body, ev

    status, body, ev = get(henry, "/hr/payroll")
    assert status == 200 and body["path"] == "/hr/payroll"
    assert (ev["decision"], ev["rule"]) == ("allow", "hr-staff")
    assert header_values(body, "X-Forwarded-Client-Cert") == [
        expected_xfcc(dpki.henry_crt, "henry")]

    status, body, ev = get(henry, "/customers/42")
    assert status == 403
    assert body == {"error": "forbidden", "rule": "default-deny",
                    "identity": "spiffe://test-corp/henry"}
    assert (ev["decision"], ev["rule"], ev["path"]) == ("deny", "default-deny", "/customers/42")

    # Dot segments are resolved before the policy sees the path.
    status, body, ev = get(henry, "/hr/../customers/42")
    assert status == 403 and body["rule"] == "default-deny"
    assert ev["path"] == "/customers/42"

    status, body, ev = get(alice, "/public/index.html")
    assert status == 200 and body["path"] == "/public/index.html"
    assert (ev["decision"], ev["rule"]) == ("allow", "everyone-public")

    status, body, ev = get(alice, "/hr/payroll")
    assert status == 403 and body["rule"] == "default-deny"
    assert body["identity"] == "spiffe://test-corp/alice"

    # An encoded slash is refused rather than guessed at.
    status, body, conn = https_request(port, "/hr/..%2Fcustomers/42", henry)
    conn.close()
    assert status == 400, body

    assert [r["path"] for r in fresh_echo.requests] == ["/hr/payroll", "/public/index.html"]
    m = metrics(admin)
    assert m['duet_authz_decisions_total{listener="web",rule="hr-staff",decision="allow"}'] == 1
    assert m['duet_authz_decisions_total{listener="web",rule="everyone-public",'
             'decision="allow"}'] == 1
    assert m['duet_authz_decisions_total{listener="web",rule="default-deny",'
             'decision="deny"}'] == 3


# --- tcp mode with PROXY protocol v2 ----------------------------------------------------------

@pytest.fixture
def ppv2_upstream():
    up = ProxyV2Upstream()
    yield up
    up.close()


def test_tcp_mode_proxy_v2_header_parsed_by_upstream(dpki, procs, ppv2_upstream, tmp_path):
    d = start_duet(procs, dpki.duet_bin, tmp_path, "proxy",
                   proxy_args(dpki, "127.0.0.1:%d" % ppv2_upstream.port, "--mode", "tcp",
                              "--proxy-protocol", "--allow", "uri:spiffe://test-corp/alice",
                              "--workers", "1"),
                   "tcp")
    mark = d.log.mark()
    raw = socket.create_connection(("127.0.0.1", d.port), timeout=5)
    s = alice_ctx(dpki).wrap_socket(raw, server_hostname="localhost")
    try:
        f = s.makefile("rb")
        info = json.loads(f.readline())
        assert "error" not in info, info
        assert info["ver_cmd"] == 0x21  # version 2, PROXY
        assert info["family"] == 0x11  # TCP over IPv4
        assert (info["src"], info["src_port"]) == s.getsockname()
        assert (info["dst"], info["dst_port"]) == ("127.0.0.1", d.port)
        assert info["ssl_client"] == 0x01 | 0x02  # PP2_CLIENT_SSL | PP2_CLIENT_CERT_CONN
        assert info["ssl_verify"] == 0
        assert info["ssl_sub"]["0x21"] == "TLSv1.3"
        assert info["ssl_sub"]["0x22"] == "alice"  # PP2_SUBTYPE_SSL_CN
        assert info["ssl_sub"]["0x23"] == s.cipher()[0]
        assert info["tlvs"]["0xe0"] == [b"spiffe://test-corp/alice".hex()]
        assert info["tlvs"]["0xe1"] == [leaf_der(dpki.alice_crt).hex()]
        # Then bytes both ways, unchanged, large enough to need several TLS records.
        payload = os.urandom(300000)
        s.sendall(payload)
        got = b""
        while len(got) < len(payload):
            chunk = f.read1(65536)
            assert chunk, "connection closed after %d bytes" % len(got)
            got += chunk
        assert got == payload
    finally:
        s.close()
    ev = d.log.wait_event("authz", mark)
    assert (ev["decision"], ev["rule"]) == ("allow", "--allow uri:spiffe://test-corp/alice")
    assert handshakes(d.log, mark, "ok")[0]["identity"]["name"] == "spiffe://test-corp/alice"

    # A verified client the policy does not allow never reaches the upstream.
    accepted = ppv2_upstream.accepted
    mark = d.log.mark()
    ctx = client_context(dpki.roots, dpki.bob_crt, dpki.bob_key)
    raw = socket.create_connection(("127.0.0.1", d.port), timeout=5)
    s = ctx.wrap_socket(raw, server_hostname="localhost")
    try:
        s.sendall(b"hello?")
        try:
            assert s.recv(100) == b""
        except (ssl.SSLError, ConnectionError):
            pass
    finally:
        s.close()
    ev = d.log.wait_event("authz", mark)
    assert (ev["decision"], ev["rule"], ev["identity"]) == (
        "deny", "default-deny", "spiffe://test-corp/bob")
    time.sleep(0.2)
    assert ppv2_upstream.accepted == accepted


# --- reload -----------------------------------------------------------------------------------

@pytest.mark.parametrize("trigger", ["sighup", "file-change"])
def test_cert_and_crl_swap_keeps_open_connection(dpki, procs, fresh_echo, tmp_path, trigger):
    carol = "carol-" + trigger
    carol_crt, carol_key = dpki.issue("client", carol)
    live = tmp_path / "live"
    server_crt, server_key = dpki.copy("localhost", live, "server")
    crl = live / "crl.pem"
    dpki.gen_crl(crl)
    d = start_duet(procs, dpki.duet_bin, tmp_path, "proxy",
                   proxy_args(dpki, "127.0.0.1:%d" % fresh_echo.port,
                              "--allow", "uri:spiffe://test-corp/*",
                              cert=server_crt, key=server_key, crl=crl),
                   "reload")
    old_der = leaf_der(server_crt)

    # A keep-alive connection opened before the reload.
    keep = http.client.HTTPSConnection(
        "127.0.0.1", d.port, context=alice_ctx(dpki), timeout=5)
    keep.request("GET", "/keep/1")
    r = keep.getresponse()
    assert r.status == 200 and json.loads(r.read())["path"] == "/keep/1"
    keep_sock = keep.sock
    keep_peer = keep_sock.getsockname()
    assert keep_sock.getpeercert(binary_form=True) == old_der

    carol_ctx = client_context(dpki.roots, carol_crt, carol_key)
    status, _, c = https_request(d.port, "/carol/before", carol_ctx)
    c.close()
    assert status == 200

    # New server certificate and a CRL that revokes carol, staged then moved into place.
    staging = tmp_path / "staging"
    new_crt, new_key = dpki.issue("server", "localhost-next", "--san", "dns:localhost",
                                  "--san", "ip:127.0.0.1", out=staging)
    dpki.revoke(carol_crt)
    dpki.gen_crl(staging / "crl.pem")
    new_der = leaf_der(new_crt)
    assert new_der != old_der
    mark = d.log.mark()
    os.replace(staging / "crl.pem", crl)
    os.replace(new_key, server_key)
    os.replace(new_crt, server_crt)
    if trigger == "sighup":
        d.proc.send_signal(signal.SIGHUP)
        d.log.wait_event("reload_requested", mark, trigger="SIGHUP")
    reloads = d.log.wait_reloads_settled(mark)
    assert reloads[-1]["result"] == "ok", reloads
    if trigger == "file-change":
        assert d.log.since(mark, "reload_requested")[0]["trigger"] == "file change"

    # New connections get the new certificate and the new CRL.
    status, body, c = https_request(d.port, "/after/new", alice_ctx(dpki))
    assert status == 200
    assert c.sock.getpeercert(binary_form=True) == new_der
    c.close()
    m2 = d.log.mark()
    kind, detail = refused_attempt(d.port, carol_ctx)
    assert kind != "response", detail
    ev = d.log.wait_event("handshake", m2, result="failed")
    assert "was revoked on" in ev["reason"], ev
    assert ev["reason"] == cert_verify_reason(dpki, carol_crt, crl)
    wait_metric(d.admin, HS_FAILED % "revoked", 1)

    # The connection opened before the reload carries on, on the same socket.
    keep.request("GET", "/keep/2")
    r = keep.getresponse()
    assert r.status == 200 and json.loads(r.read())["path"] == "/keep/2"
    assert keep.sock is keep_sock
    assert keep.sock.getpeercert(binary_form=True) == old_der
    keep.close()
    ev = d.log.wait(lambda e: e.get("event") == "authz" and e.get("path") == "/keep/2", mark)
    assert ev["decision"] == "allow"
    assert not any(h["peer"] == "%s:%d" % keep_peer for h in handshakes(d.log, mark))
    m = d.metrics()
    assert m['duet_reloads_total{result="ok"}'] >= 1
    assert any('subject="CN=localhost-next,O=Test Corp"' in k for k in m
               if k.startswith("duet_certificate_expiry_seconds")), m


def test_broken_cert_on_reload_keeps_the_old_one(dpki, procs, fresh_echo, tmp_path):
    live = tmp_path / "live"
    server_crt, server_key = dpki.copy("localhost", live, "server")
    d = start_duet(procs, dpki.duet_bin, tmp_path, "proxy",
                   proxy_args(dpki, "127.0.0.1:%d" % fresh_echo.port,
                              "--allow", "uri:spiffe://test-corp/alice",
                              cert=server_crt, key=server_key),
                   "broken")
    old_der = leaf_der(server_crt)
    text = server_crt.read_text()
    mark = d.log.mark()
    server_crt.write_text(text[: len(text) // 3])  # a truncated PEM
    d.proc.send_signal(signal.SIGHUP)
    d.log.wait_event("reload_requested", mark, trigger="SIGHUP")
    reloads = d.log.wait_reloads_settled(mark)
    assert reloads and all(r["result"] == "failed" for r in reloads), reloads
    assert str(server_crt) in reloads[-1]["reason"], reloads[-1]
    assert d.proc.poll() is None
    status, body, c = https_request(d.port, "/still-serving", alice_ctx(dpki))
    assert status == 200 and body["path"] == "/still-serving"
    assert c.sock.getpeercert(binary_form=True) == old_der
    c.close()
    m = d.metrics()
    assert m['duet_reloads_total{result="failed"}'] >= 1
    assert m.get('duet_reloads_total{result="ok"}', 0) == 0


# --- upstream failure -------------------------------------------------------------------------

def test_upstream_down_gives_502_and_readyz_fails(dpki, procs, tmp_path):
    dead = free_port()
    d = start_duet(procs, dpki.duet_bin, tmp_path, "proxy",
                   proxy_args(dpki, "127.0.0.1:%d" % dead,
                              "--allow", "uri:spiffe://test-corp/alice"),
                   "down")
    mark = d.log.mark()
    status, body, c = https_request(d.port, "/nobody-home", alice_ctx(dpki))
    c.close()
    assert status == 502
    assert body["error"] == "bad_gateway", body
    ev = d.log.wait_event("upstream_error", mark)
    assert ev["upstream"] == "127.0.0.1:%d" % dead
    status, text = admin_get(d.admin, "/readyz")
    assert status == 503
    assert "no upstream reachable" in text
    assert admin_get(d.admin, "/healthz")[0] == 200
    assert d.metrics()['duet_upstream_failures_total{upstream="127.0.0.1:%d"}' % dead] >= 1


# --- handshake timeout ------------------------------------------------------------------------

def closed_after(sock, timeout):
    """Seconds until the peer closes sock (EOF or reset), or None after timeout."""
    t0 = time.monotonic()
    sock.settimeout(timeout)
    try:
        while True:
            data = sock.recv(4096)
            if not data:
                break
    except ConnectionResetError:
        pass
    except socket.timeout:
        return None
    return time.monotonic() - t0


@pytest.fixture
def hs_timeout_proxy(dpki, procs, echo, tmp_path):
    return start_duet(procs, dpki.duet_bin, tmp_path, "proxy",
                      proxy_args(dpki, "127.0.0.1:%d" % echo.port,
                                 "--allow", "uri:spiffe://test-corp/alice",
                                 "--handshake-timeout", "1s"),
                      "hs")


CLIENT_HELLO_START = bytes.fromhex("160301020001")  # a handshake record, then silence


@pytest.mark.parametrize("sends", [b"", CLIENT_HELLO_START], ids=["nothing", "partial-hello"])
def test_stalled_handshake_closed_at_timeout(hs_timeout_proxy, sends):
    d = hs_timeout_proxy
    mark = d.log.mark()
    s = socket.create_connection(("127.0.0.1", d.port), timeout=5)
    try:
        if sends:
            s.sendall(sends)
        took = closed_after(s, 5)
    finally:
        s.close()
    assert took is not None, "the proxy kept a stalled handshake open for 5 s"
    assert 0.8 <= took <= 2.5, took
    ev = d.log.wait_event("handshake", mark, result="failed")
    assert ev["reason"] == "the TLS handshake did not finish within 1000 ms"


def test_trickling_handshake_closed_at_timeout(hs_timeout_proxy):
    """A client that keeps the handshake alive with a byte now and then is still cut off
    when the handshake timeout has passed since it connected."""
    d = hs_timeout_proxy
    s = socket.create_connection(("127.0.0.1", d.port), timeout=5)
    t0 = time.monotonic()
    closed = None
    try:
        s.settimeout(0.3)
        s.sendall(CLIENT_HELLO_START[:5])
        for _ in range(15):  # up to 4.5 s of one byte per 0.3 s
            try:
                data = s.recv(4096)
                if not data:
                    closed = time.monotonic() - t0
                    break
            except socket.timeout:
                pass
            except ConnectionResetError:
                closed = time.monotonic() - t0
                break
            try:
                s.sendall(b"\x01")
            except (BrokenPipeError, ConnectionResetError):
                closed = time.monotonic() - t0
                break
    finally:
        s.close()
    assert closed is not None, "a trickling handshake was kept open past 4.5 s (timeout 1 s)"
    assert closed <= 2.5, closed


# --- key file permissions ---------------------------------------------------------------------

def test_key_readable_by_others_refused_at_start(dpki, tmp_path, run):
    crt, key = dpki.copy("localhost", tmp_path, "server")
    os.chmod(key, 0o644)
    p = run("proxy", "--listen", "127.0.0.1:%d" % free_port(), "--target", "127.0.0.1:1",
            "--cert", crt, "--key", key, "--cacert", dpki.roots, "--allow", "any", timeout=10)
    assert p.returncode != 0
    assert "chmod 600 %s" % key in p.stderr, p.stderr


# --- the tunnel -------------------------------------------------------------------------------

def start_tunnel(procs, dpki, workdir, target_port, *extra, name="tunnel", cert=True):
    args = ["--target", "127.0.0.1:%d" % target_port, "--cacert", dpki.roots, *extra]
    if cert:
        args += ["--cert", dpki.alice_crt, "--key", dpki.alice_key]
    return start_duet(procs, dpki.duet_bin, workdir, "tunnel", args, name, admin=False)


def curl_plain(port, path):
    return subprocess.run(["curl", "-sS", "http://127.0.0.1:%d%s" % (port, path)],
                          capture_output=True, text=True, timeout=20)


def test_tunnel_brings_plain_curl_through_with_alices_identity(basic, dpki, echo, procs,
                                                               tmp_path):
    t = start_tunnel(procs, dpki, tmp_path, basic.port, "--server-name", "localhost")
    mark = basic.log.mark()
    p = curl_plain(t.port, "/via/tunnel")
    assert p.returncode == 0, p.stderr
    body = json.loads(p.stdout)
    assert body["path"] == "/via/tunnel"
    assert header_values(body, "X-Forwarded-Client-Cert") == [
        expected_xfcc(dpki.alice_crt, "alice")]
    hs = basic.log.wait_event("handshake", mark, result="ok")
    assert hs["identity"]["name"] == "spiffe://test-corp/alice"
    ths = t.log.wait_event("handshake", 0, result="ok")
    assert ths["identity"]["subject"] == "CN=localhost,O=Test Corp"


def test_tunnel_without_certificate_is_refused_by_the_proxy(basic, dpki, procs, tmp_path):
    t = start_tunnel(procs, dpki, tmp_path, basic.port, "--server-name", "localhost",
                     cert=False)
    mark = basic.log.mark()
    p = curl_plain(t.port, "/via/tunnel/nocert")
    assert p.returncode != 0 and "/via/tunnel/nocert" not in p.stdout, p
    ev = basic.log.wait_event("handshake", mark, result="failed")
    assert ev["reason"] == "the client presented no certificate"


def test_tunnel_refuses_server_with_wrong_name(basic, dpki, procs, tmp_path):
    t = start_tunnel(procs, dpki, tmp_path, basic.port, "--server-name", "wrong.example")
    p = curl_plain(t.port, "/via/tunnel/wrong-name")
    assert p.returncode != 0 and "wrong-name" not in p.stdout, p
    ev = t.log.wait_event("handshake", 0, result="failed")
    assert "is not valid for the name wrong.example" in ev["reason"], ev


def test_tunnel_to_a_port_nobody_listens_on_says_it_cannot_connect(dpki, procs, tmp_path):
    """The log names the target and the socket error, not a TLS handshake that never began."""
    dead = free_port()
    t = start_tunnel(procs, dpki, tmp_path, dead, "--server-name", "localhost")
    p = curl_plain(t.port, "/via/tunnel/nobody")
    assert p.returncode != 0, p
    ev = t.log.wait_event("handshake", 0, result="failed")
    assert ev["reason"] == "cannot connect to 127.0.0.1:%d: Connection refused" % dead, ev


def test_tunnel_to_a_target_that_accepts_then_resets_is_not_called_unreachable(dpki, procs,
                                                                              tmp_path):
    """A target that took the connection and reset it during the handshake was reached."""
    import struct
    import threading
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)

    def serve():
        try:
            conn, _ = srv.accept()
            conn.recv(5)  # a part of the ClientHello
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()  # RST
        except OSError:
            pass

    threading.Thread(target=serve, daemon=True).start()
    try:
        t = start_tunnel(procs, dpki, tmp_path, srv.getsockname()[1], "--server-name",
                         "localhost")
        p = curl_plain(t.port, "/via/tunnel/reset")
        assert p.returncode != 0, p
        ev = t.log.wait_event("handshake", 0, result="failed")
    finally:
        srv.close()
    assert not ev["reason"].startswith("cannot connect"), ev


# --- nginx requiring a client certificate -----------------------------------------------------

NGINX_CONF = """\
daemon off;
master_process off;
worker_processes 1;
pid %(dir)s/nginx.pid;
error_log %(dir)s/error.log info;
events { worker_connections 64; }
http {
    access_log %(dir)s/access.log;
    client_body_temp_path %(dir)s/body;
    proxy_temp_path %(dir)s/proxy;
    fastcgi_temp_path %(dir)s/fastcgi;
    uwsgi_temp_path %(dir)s/uwsgi;
    scgi_temp_path %(dir)s/scgi;
    server {
        listen 127.0.0.1:%(port)d ssl;
        server_name localhost;
        ssl_certificate %(cert)s;
        ssl_certificate_key %(key)s;
        ssl_client_certificate %(roots)s;
        ssl_verify_client on;
        ssl_verify_depth 3;
        ssl_protocols TLSv1.2 TLSv1.3;
        location / {
            default_type text/plain;
            set $xfcc $http_x_forwarded_client_cert;
            return 200 "dn=$ssl_client_s_dn verify=$ssl_client_verify xfcc=$xfcc\\n";
        }
    }
}
"""


@pytest.fixture
def nginx(dpki, procs, tmp_path):
    exe = shutil.which("nginx") or "/usr/sbin/nginx"
    assert os.access(exe, os.X_OK), "nginx is missing (apt-get install nginx-light)"
    d = tmp_path / "nginx"
    d.mkdir()
    port = free_port()
    conf = d / "nginx.conf"
    conf.write_text(NGINX_CONF % dict(dir=d, port=port, cert=dpki.server_crt,
                                      key=dpki.server_key, roots=dpki.roots))
    p = procs.start([exe, "-p", d, "-c", conf, "-e", d / "error.log"], "nginx")
    wait_port(port, p)
    # nginx really requires a client certificate.
    r = subprocess.run(["curl", "-sS", "--cacert", dpki.roots, "--resolve",
                        "localhost:%d:127.0.0.1" % port, "https://localhost:%d/" % port],
                       capture_output=True, text=True, timeout=20)
    assert "No required SSL certificate was sent" in r.stdout, r
    return port


def test_nginx_requiring_client_cert_behind_tunnel(dpki, procs, nginx, tmp_path):
    t = start_tunnel(procs, dpki, tmp_path, nginx, "--server-name", "localhost")
    p = curl_plain(t.port, "/nginx")
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("dn=CN=alice,O=Test Corp verify=SUCCESS"), p.stdout


def test_nginx_behind_proxy_upstream_mtls(dpki, procs, nginx, tmp_path):
    d = start_duet(procs, dpki.duet_bin, tmp_path, "proxy",
                   proxy_args(dpki, "127.0.0.1:%d" % nginx,
                              "--allow", "uri:spiffe://test-corp/alice",
                              "--upstream-cert", dpki.gateway_crt,
                              "--upstream-key", dpki.gateway_key,
                              "--upstream-cacert", dpki.roots, "--upstream-name", "localhost"),
                   "upmtls")
    ctx = alice_ctx(dpki)
    status, body, c = https_request(d.port, "/through-proxy", ctx)
    c.close()
    assert status == 200, body
    assert body.startswith("dn=CN=gateway,O=Test Corp verify=SUCCESS xfcc=" +
                           expected_xfcc(dpki.alice_crt, "alice")), body


def _get_once(port, ctx, session=None):
    """One request on a new connection, offering `session`; returns (status line, session, reused)."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=5)
    ts = ctx.wrap_socket(raw, server_hostname="localhost", session=session)
    try:
        ts.sendall(b"GET /resume HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        data = b""
        while True:
            chunk = ts.recv(65536)
            if not chunk:
                break
            data += chunk
        return data.split(b"\r\n", 1)[0], ts.session, ts.session_reused
    finally:
        ts.close()


def test_resumption_carries_the_identity_and_reload_retires_tickets(dpki, procs, fresh_echo,
                                                                     tmp_path):
    """TLS 1.3 resumption: the resumed connection is forwarded with the client's identity;
    after the client is revoked and the CRL reloaded, its ticket no longer resumes and the
    full handshake that follows refuses it."""
    rita_crt, rita_key = dpki.issue("client", "rita", out=tmp_path / "rita")
    crl = tmp_path / "crl.pem"
    shutil.copy(dpki.crl, crl)
    d = start_duet(procs, dpki.duet_bin, tmp_path / "resume", "proxy",
                   proxy_args(dpki, "127.0.0.1:%d" % fresh_echo.port, "--allow", "any",
                              crl=crl), "resume")
    ctx = client_context(dpki.roots, rita_crt, rita_key)
    status, session, reused = _get_once(d.port, ctx)
    assert status == b"HTTP/1.1 200 OK" and not reused
    assert session is not None
    mark = d.log.mark()
    status, session2, reused = _get_once(d.port, ctx, session)
    assert status == b"HTTP/1.1 200 OK"
    assert reused, "the second connection should resume with the ticket of the first"
    hs = d.log.wait_event("handshake", mark, result="ok")
    assert hs["resumed"] is True
    assert hs["identity"]["name"] == "spiffe://test-corp/rita"
    xfcc = header_values(fresh_echo.requests[-1], "X-Forwarded-Client-Cert")
    assert any("URI=spiffe://test-corp/rita" in v for v in xfcc), xfcc

    dpki.revoke(rita_crt)
    fresh = dpki.gen_crl(tmp_path / "crl-new.pem")
    mark = d.log.mark()
    shutil.copy(fresh, crl)
    d.proc.send_signal(signal.SIGHUP)
    d.log.wait_event("reload", mark, result="ok")
    mark = d.log.mark()
    with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
        status, _, reused = _get_once(d.port, ctx, session2)
        assert not status.startswith(b"HTTP/1.1 200"), "a revoked client must not get through"
        raise ConnectionError("refused without an exception")
    hs = d.log.wait_event("handshake", mark, result="failed")
    assert "was revoked on" in hs["reason"], hs
    assert "(reason:" in hs["reason"]


def test_chain_cache_answers_repeat_clients_but_never_an_expired_certificate(
        dpki, procs, fresh_echo, tmp_path):
    """A client presenting the same chain again is answered by the verified-chain cache
    (the metric counts it), yet once its certificate has expired the cached chain is not
    used: the handshake is refused with the expiry in the log."""
    short_crt, short_key = dpki.issue("client", "brief", "--ttl", "6s", out=tmp_path / "brief")
    d = start_duet(procs, dpki.duet_bin, tmp_path / "cache", "proxy",
                   proxy_args(dpki, "127.0.0.1:%d" % fresh_echo.port, "--allow", "any",
                              "--no-session-tickets"), "cache")
    ctx = client_context(dpki.roots, short_crt, short_key)
    before = metrics(d.admin).get("duet_chain_cache_hits_total", 0)
    for _ in range(3):
        status, _, _ = _get_once(d.port, ctx)
        assert status == b"HTTP/1.1 200 OK"
    hits = metrics(d.admin).get("duet_chain_cache_hits_total", 0)
    assert hits - before >= 2, "repeat handshakes with one chain should hit the cache"
    time.sleep(7)
    mark = d.log.mark()
    with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
        status, _, _ = _get_once(d.port, ctx)
        assert not status.startswith(b"HTTP/1.1 200"), "an expired certificate must not get in"
        raise ConnectionError("refused without an exception")
    hs = d.log.wait_event("handshake", mark, result="failed")
    assert "expired on" in hs["reason"], hs


def test_shared_ticket_keys_resume_across_instances_and_recheck_revocation(
        dpki, procs, fresh_echo, tmp_path):
    """Two proxies with the same --ticket-keys file: a ticket from one resumes on the
    other with the client's identity. A ticket is bound to the listener's trust, CRLs and
    policy: once the client is revoked and the CRL reloaded, its ticket no longer resumes and
    the full handshake refuses the revoked certificate."""
    crt, key = dpki.issue("client", "roaming", out=tmp_path / "roaming")
    keys = tmp_path / "ticket.keys"
    keys.write_text(subprocess.run(["openssl", "rand", "-hex", "80"], capture_output=True,
                                   text=True, check=True).stdout)
    os.chmod(keys, 0o600)
    crl = tmp_path / "crl.pem"
    shutil.copy(dpki.crl, crl)
    args = proxy_args(dpki, "127.0.0.1:%d" % fresh_echo.port, "--allow", "any",
                      "--ticket-keys", keys, crl=crl)
    a = start_duet(procs, dpki.duet_bin, tmp_path / "a", "proxy", args, "a")
    b = start_duet(procs, dpki.duet_bin, tmp_path / "b", "proxy", args, "b")
    ctx = client_context(dpki.roots, crt, key)
    status, ticket, reused = _get_once(a.port, ctx)
    assert status == b"HTTP/1.1 200 OK" and not reused
    mark = b.log.mark()
    status, ticket2, reused = _get_once(b.port, ctx, ticket)
    assert status == b"HTTP/1.1 200 OK"
    assert reused, "B should resume the ticket A issued"
    hs = b.log.wait_event("handshake", mark, result="ok")
    assert hs["resumed"] is True and hs["identity"]["name"] == "spiffe://test-corp/roaming"

    dpki.revoke(crt)
    mark = b.log.mark()
    shutil.copy(dpki.gen_crl(tmp_path / "crl-new.pem"), crl)
    b.proc.send_signal(signal.SIGHUP)
    b.log.wait_event("reload", mark, result="ok")
    mark = b.log.mark()
    with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
        status, _, _ = _get_once(b.port, ctx, ticket2)
        assert not status.startswith(b"HTTP/1.1 200"), "a revoked client must not resume"
        raise ConnectionError("refused without an exception")
    hs = b.log.wait_event("handshake", mark, result="failed")
    assert "was revoked on" in hs["reason"] and hs.get("resumed") is not True, hs
    assert "was revoked on" in hs["reason"]


def test_rotated_ticket_keys_still_open_the_tickets_they_sealed(dpki, procs, fresh_echo,
                                                                 tmp_path, run):
    """`duet ticket-keys rotate` on a running pair of proxies: a ticket sealed before the
    rotation still resumes (the old key stays below the new one); once rotated out (--keep 2,
    two more rotations) it no longer does, and the client simply gets a full handshake."""
    keys = tmp_path / "ticket.keys"
    p = run("ticket-keys", "rotate", keys)
    assert p.returncode == 0 and "1 key in the file" in p.stdout, p.stderr
    assert (os.stat(keys).st_mode & 0o777) == 0o600
    args = proxy_args(dpki, "127.0.0.1:%d" % fresh_echo.port, "--allow", "any",
                      "--ticket-keys", keys)
    a = start_duet(procs, dpki.duet_bin, tmp_path / "a", "proxy", args, "a")
    b = start_duet(procs, dpki.duet_bin, tmp_path / "b", "proxy", args, "b")
    ctx = alice_ctx(dpki)
    status, ticket, reused = _get_once(a.port, ctx)
    assert status == b"HTTP/1.1 200 OK" and not reused

    def rotate_and_reload():
        # The file watcher may reload the rotated file too, before or after the SIGHUP's
        # reload: wait until no reload is pending, so that the next rotation's marks come
        # after every reload of this one.
        marks = (a.log.mark(), b.log.mark())
        p = run("ticket-keys", "rotate", keys, "--keep", "2")
        assert p.returncode == 0, p.stderr
        for d in (a, b):
            d.proc.send_signal(signal.SIGHUP)
        for d, m in zip((a, b), marks):
            reloads = d.log.wait_reloads_settled(m)
            assert reloads[-1]["result"] == "ok", reloads

    rotate_and_reload()
    status, _, reused = _get_once(b.port, ctx, ticket)
    assert status == b"HTTP/1.1 200 OK" and reused, "the old key must still open its ticket"
    rotate_and_reload()
    status, _, reused = _get_once(a.port, ctx, ticket)
    assert status == b"HTTP/1.1 200 OK" and not reused, "a rotated-out key opens nothing"


def test_ticket_keys_file_is_checked(dpki, tmp_path, run):
    bad = tmp_path / "bad.keys"
    bad.write_text("00ff\n")
    os.chmod(bad, 0o600)
    p = run("proxy", "--listen", "127.0.0.1:%d" % free_port(), "--target", "127.0.0.1:9",
            "--cert", dpki.server_crt, "--key", dpki.server_key, "--cacert", dpki.roots,
            "--allow", "any", "--ticket-keys", bad, "--check")
    assert p.returncode == 1, p.stderr
    assert "%s:1: a ticket key is 160 hex digits" % bad in p.stderr
    os.chmod(bad, 0o644)
    p = run("proxy", "--listen", "127.0.0.1:%d" % free_port(), "--target", "127.0.0.1:9",
            "--cert", dpki.server_crt, "--key", dpki.server_key, "--cacert", dpki.roots,
            "--allow", "any", "--ticket-keys", bad, "--check")
    assert p.returncode == 1 and "chmod 600" in p.stderr, p.stderr


def test_ticket_keys_rotate_refuses_what_the_proxy_would(tmp_path, run):
    """`duet ticket-keys rotate` checks the file like the proxy does and leaves a bad one as
    it was; a wrong --keep is a usage error."""
    keys = tmp_path / "ticket.keys"
    keys.write_text("00ff\n")
    os.chmod(keys, 0o600)
    p = run("ticket-keys", "rotate", keys)
    assert p.returncode == 1 and "%s:1: a ticket key is 160 hex digits" % keys in p.stderr, p
    assert keys.read_text() == "00ff\n"
    keys.unlink()
    assert run("ticket-keys", "rotate", keys).returncode == 0
    os.chmod(keys, 0o644)
    p = run("ticket-keys", "rotate", keys)
    assert p.returncode == 1 and "chmod 600" in p.stderr, p.stderr
    p = run("ticket-keys", "rotate", keys, "--keep", "1")
    assert p.returncode == 2 and "--keep \"1\": expected 2 to 8" in p.stderr, p.stderr
    p = run("ticket-keys", "turn", keys)
    assert p.returncode == 2 and "expected rotate" in p.stderr, p.stderr


@pytest.mark.parametrize("value", ["-1", "2000", "many"])
def test_upstream_keepalive_flag_is_checked(dpki, run, value):
    p = run("proxy", "--listen", "127.0.0.1:%d" % free_port(), "--target", "127.0.0.1:9",
            "--cert", dpki.server_crt, "--key", dpki.server_key, "--cacert", dpki.roots,
            "--allow", "any", "--upstream-keepalive", value, "--check")
    assert p.returncode == 2, p.stderr
    assert '--upstream-keepalive: "%s": expected 0 (off) to 1024 idle connections' % value \
        in p.stderr, p.stderr


def test_unusable_crl_is_refused_at_start_naming_the_file(dpki, tmp_path, run):
    """A CRL file that is cut short, or holds no CRL, stops the proxy before it listens, with
    the file and what is wrong with it."""
    cut = tmp_path / "cut.pem"
    text = dpki.crl.read_text()
    cut.write_text(text[: len(text) // 3])
    notcrl = tmp_path / "cert-not-crl.pem"
    notcrl.write_text(dpki.alice_crt.read_text())
    for crl, words in ((cut, "has no END line"), (notcrl, "no CRL found")):
        p = run("proxy", "--listen", "127.0.0.1:%d" % free_port(), "--target", "127.0.0.1:9",
                "--cert", dpki.server_crt, "--key", dpki.server_key, "--cacert", dpki.roots,
                "--allow", "any", "--crl", crl, "--check")
        assert p.returncode == 1, p.stderr
        assert str(crl) in p.stderr and words in p.stderr, p.stderr
