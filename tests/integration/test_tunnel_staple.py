# SPDX-License-Identifier: Apache-2.0
"""`duet tunnel` asks its server for an OCSP staple and checks it (issue 13; docs/proxy.md
"The server's OCSP staple").

Servers: `duet proxy --ocsp-staple` with `duet ca serve` as the responder (the whole loop), and
`openssl s_server -status_file F` stapling whatever a test made (a revoked response, one signed
by a stranger, an expired one, one for another certificate, garbage), or nothing.  What a user
checks: the local client gets the server's answer or a closed connection without data, the
tunnel's `handshake` log line (reason and reason_code), /metrics.
"""

import re
import socket
import time

import pytest

from conftest import show
from proxyutil import DuetLog, admin_get, free_port, metrics, wait_port
from test_proxy_lifecycle import Echo
from test_proxy_ocsp_staple import load_issuer, leaf_of, make_bad, response
from test_ca_serve import CAServer
from test_proxy_crl_url import CrlServer, der_crl
from test_security_proxy_ops import start


def server_cert(ca, name="localhost"):
    return ca.issued(name, "server", "--san", "dns:localhost", "--san", "ip:127.0.0.1")


def s_server(procs, ca, crt, key, status_file=None, name="s_server", tls12=False):
    """`openssl s_server -www` with the CA's chain, stapling status_file when given (in the
    leaf's certificate entry with TLS 1.3, in a CertificateStatus message with tls12)."""
    port = free_port()
    argv = ["openssl", "s_server", "-accept", "127.0.0.1:%d" % port, "-cert", crt, "-key", key,
            "-cert_chain", ca.issuing, "-www", "-quiet"]
    if status_file is not None:
        argv += ["-status_file", status_file]
    if tls12:
        argv.append("-tls1_2")
    p = procs.start(argv, name)
    wait_port(port, p)
    return port


def tunnel(procs, duet_bin, ca, workdir, target_port, *extra, name="tunnel"):
    """`duet tunnel` to 127.0.0.1:target_port with a client certificate of ca, and an admin."""
    crt, key, _ = ca.issued("app-" + name, "client")
    return start(procs, duet_bin, workdir, "tunnel",
                 ["--target", "127.0.0.1:%d" % target_port, "--server-name", "localhost",
                  "--cert", crt, "--key", key, "--cacert", ca.root, *extra], name)


def get_through(port, payload=b"GET / HTTP/1.0\r\n\r\n"):
    """Send payload to the tunnel's local side; everything that comes back until EOF."""
    c = socket.create_connection(("127.0.0.1", port), timeout=10)
    data = b""
    try:
        c.sendall(payload)
        c.settimeout(10)
        while True:
            d = c.recv(65536)
            if not d:
                break
            data += d
    except OSError:
        pass
    finally:
        c.close()
    return data


def refusal(t, mark):
    return t.log.wait(lambda e: e.get("event") == "handshake" and e.get("result") == "failed",
                      mark)


def staples(t, result):
    return metrics(t.admin).get(
        'duet_tunnel_ocsp_staples_total{listener="tunnel",result="%s"}' % result, 0)


# --- the whole loop: duet ca serve answers, duet proxy staples, duet tunnel checks -------------

@pytest.fixture
def loop(make_ca, duet_bin):
    ca = make_ca("Tunnel Staple Corp")
    serve = CAServer(duet_bin, ca)
    url = "http://127.0.0.1:%d/ocsp" % serve.http_port
    yml = ca.dir / "ca.yaml"
    yml.write_text(yml.read_text().replace("ocsp_urls: []", 'ocsp_urls: ["%s"]' % url))
    crt, key, serial = server_cert(ca)
    serve.start()
    yield ca, serve, crt, key, serial
    if serve.proc is not None and serve.proc.poll() is None:
        serve.stop()


def test_a_good_staple_from_duet_proxy_is_checked_then_a_revoked_server_is_refused(
        loop, procs, tmp_path):
    ca, serve, crt, key, serial = loop
    up = Echo()
    px = start(procs, serve.duet_bin, tmp_path / "px", "proxy",
               ["--target", "127.0.0.1:%d" % up.port, "--mode", "tcp", "--allow", "any",
                "--cert", crt, "--key", key, "--cacert", ca.root, "--ocsp-staple",
                "--crl-cache", tmp_path / "pxcache", "--crl-refresh", "2s"], "px")
    px.log.wait_event("ocsp_staple_fetched")
    t = tunnel(procs, serve.duet_bin, ca, tmp_path / "t", px.port, "--require-staple")
    assert get_through(t.port, b"ping") == b"ping"
    assert staples(t, "good") == 1
    ok = t.log.wait(lambda e: e.get("event") == "handshake" and e.get("result") == "ok")
    assert ok["peer"], ok

    # Revoked at the CA: the proxy stops stapling (it never staples a revoked answer), so the
    # tunnel that requires a staple refuses the server, naming it.
    mark = t.log.mark()
    p = ca.duet("cert", "revoke", serial, "--ca-dir", ca.dir)
    assert p.returncode == 0, show(p)
    px.log.wait(lambda e: e.get("event") == "ocsp_staple_failed", timeout=20)
    for _ in range(50):
        if get_through(t.port, b"ping") == b"":
            break
    ev = refusal(t, mark)
    assert ev["reason_code"] == "staple_missing", ev
    assert ev["reason"] == ("the server localhost (127.0.0.1:%d) sent no OCSP staple "
                            "(--require-staple)" % px.port), ev
    assert staples(t, "missing") >= 1
    m = metrics(t.admin)
    assert m['duet_handshakes_total{listener="tunnel",result="failed",'
             'reason="staple_missing"}'] >= 1, m
    up.close()


# --- openssl s_server stapling what a test made ------------------------------------------------

@pytest.fixture
def fake(make_ca):
    ca = make_ca("Tunnel Fake Staple Corp")
    crt, key, serial = server_cert(ca)
    other, _, _ = server_cert(ca, "other")
    return ca, crt, key, serial, other


def test_a_revoked_staple_refuses_the_server_with_the_date_and_reason(fake, duet_bin, procs,
                                                                      tmp_path):
    ca, crt, key, serial, _ = fake
    issuer, ikey = load_issuer(ca)
    f = tmp_path / "revoked.der"
    f.write_bytes(response(leaf_of(crt), issuer, issuer, ikey, status="revoked"))
    port = s_server(procs, ca, crt, key, f)
    t = tunnel(procs, duet_bin, ca, tmp_path / "t", port)
    mark = t.log.mark()
    assert get_through(t.port) == b"", "the local client got data from a revoked server"
    ev = refusal(t, mark)
    assert ev["reason_code"] == "staple_revoked", ev
    assert ev["reason"].startswith("the server localhost (127.0.0.1:%d): certificate " % port), ev
    assert "(serial %s) was revoked on " % serial in ev["reason"], ev
    assert "(reason: keyCompromise) by the OCSP staple it sent" in ev["reason"], ev
    assert staples(t, "revoked") == 1
    m = metrics(t.admin)
    assert m['duet_handshakes_total{listener="tunnel",result="failed",'
             'reason="staple_revoked"}'] == 1, m
    assert m['duet_handshakes_total{listener="tunnel",result="ok"}'] == 0, m


def not_basic():
    """An OCSPResponse, status successful, whose basic response is garbage: `openssl s_server`
    loads only what parses as an OCSPResponse, so this is the garbage it can staple."""
    oid = bytes([0x06, 0x09, 0x2B, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x01])
    junk = b"<html>not OCSP</html>"
    rb = oid + bytes([0x04, len(junk)]) + junk
    rb = bytes([0x30, len(rb)]) + rb
    body = bytes([0x0A, 0x01, 0x00, 0xA0, len(rb)]) + rb
    return bytes([0x30, len(body)]) + body


def bad(case, ca, crt, other):
    """(DER, staple_check code, words of the reason) for a staple that must refuse the server."""
    if case == "not_basic":
        return not_basic(), "not_ocsp", "the response is not a basic OCSP response"
    if case == "try_later":
        return bytes([0x30, 0x03, 0x0A, 0x01, 0x03]), "unsuccessful", \
            'the responder answered "trylater" (responseStatus 3), not "successful"'
    return make_bad(case, ca, crt, other)


def test_tls12_carries_the_staple_too(fake, duet_bin, procs, tmp_path):
    """TLS 1.2 sends the staple in a CertificateStatus message: the same checks apply."""
    ca, crt, key, serial, _ = fake
    issuer, ikey = load_issuer(ca)
    revoked, good = tmp_path / "revoked.der", tmp_path / "good.der"
    revoked.write_bytes(response(leaf_of(crt), issuer, issuer, ikey, status="revoked"))
    good.write_bytes(response(leaf_of(crt), issuer, issuer, ikey))
    port = s_server(procs, ca, crt, key, revoked, tls12=True)
    t = tunnel(procs, duet_bin, ca, tmp_path / "t", port, "--tls12")
    mark = t.log.mark()
    assert get_through(t.port) == b""
    ev = refusal(t, mark)
    assert ev["reason_code"] == "staple_revoked", ev
    assert "(serial %s) was revoked on " % serial in ev["reason"], ev
    port = s_server(procs, ca, crt, key, good, name="good12", tls12=True)
    t = tunnel(procs, duet_bin, ca, tmp_path / "t2", port, "--tls12", "--require-staple",
               name="good12")
    assert get_through(t.port).startswith(b"HTTP/1.0 200 ok")
    ok = t.log.wait(lambda e: e.get("event") == "handshake" and e.get("result") == "ok")
    assert ok["tls_version"] == "TLSv1.2", ok


@pytest.mark.parametrize("case", ["another_certificate", "expired", "bad_signature", "stranger",
                                  "unknown", "not_basic", "try_later"])
def test_a_bad_staple_refuses_the_server(fake, duet_bin, procs, tmp_path, case):
    ca, crt, key, serial, other = fake
    body, code, words = bad(case, ca, crt, other)
    f = tmp_path / (case + ".der")
    f.write_bytes(body)
    port = s_server(procs, ca, crt, key, f)
    t = tunnel(procs, duet_bin, ca, tmp_path / "t", port)
    mark = t.log.mark()
    assert get_through(t.port) == b""
    ev = refusal(t, mark)
    assert ev["reason_code"] == "staple_bad", ev
    assert ev["reason"].startswith(
        "the server localhost (127.0.0.1:%d) sent an OCSP staple that does not hold (%s): "
        % (port, code)), ev
    assert words in ev["reason"], ev
    assert staples(t, "bad") == 1 and staples(t, "good") == 0


def test_a_good_staple_from_s_server_passes(fake, duet_bin, procs, tmp_path):
    """The fake server itself is sound: the same response, untampered, is accepted."""
    ca, crt, key, _, _ = fake
    issuer, ikey = load_issuer(ca)
    f = tmp_path / "good.der"
    f.write_bytes(response(leaf_of(crt), issuer, issuer, ikey))
    port = s_server(procs, ca, crt, key, f)
    t = tunnel(procs, duet_bin, ca, tmp_path / "t", port, "--require-staple")
    assert get_through(t.port).startswith(b"HTTP/1.0 200 ok")
    assert staples(t, "good") == 1
    # Again: the server's chain now comes from the tunnel's verified-chain cache, and the staple
    # is still checked against the issuer in it.
    assert get_through(t.port).startswith(b"HTTP/1.0 200 ok")
    assert staples(t, "good") == 2 and staples(t, "bad") == 0


def test_no_staple_is_accepted_unless_required(fake, duet_bin, procs, tmp_path):
    ca, crt, key, _, _ = fake
    port = s_server(procs, ca, crt, key)
    t = tunnel(procs, duet_bin, ca, tmp_path / "t", port)
    assert get_through(t.port).startswith(b"HTTP/1.0 200 ok")
    assert staples(t, "none") == 1

    r = tunnel(procs, duet_bin, ca, tmp_path / "r", port, "--require-staple", name="required")
    mark = r.log.mark()
    assert get_through(r.port) == b""
    ev = refusal(r, mark)
    assert ev["reason_code"] == "staple_missing", ev
    assert ev["reason"] == ("the server localhost (127.0.0.1:%d) sent no OCSP staple "
                            "(--require-staple)" % port), ev


def test_no_staple_check_asks_for_none(fake, duet_bin, procs, tmp_path):
    """--no-staple-check: the way out for a server with a broken staple; nothing is asked, so
    a revoked staple is not even sent."""
    ca, crt, key, _, _ = fake
    issuer, ikey = load_issuer(ca)
    f = tmp_path / "revoked.der"
    f.write_bytes(response(leaf_of(crt), issuer, issuer, ikey, status="revoked"))
    port = s_server(procs, ca, crt, key, f)
    t = tunnel(procs, duet_bin, ca, tmp_path / "t", port, "--no-staple-check")
    assert get_through(t.port).startswith(b"HTTP/1.0 200 ok")
    m = metrics(t.admin)
    assert not [k for k in m if k.startswith("duet_tunnel_ocsp_staples_total")], m


def test_require_staple_is_per_listener_in_yaml(fake, duet_bin, procs, tmp_path):
    ca, crt, key, _, _ = fake
    port = s_server(procs, ca, crt, key)
    ccrt, ckey, _ = ca.issued("app-yaml", "client")
    lp, rp, admin = free_port(), free_port(), free_port()
    log = tmp_path / "t.log"
    y = tmp_path / "tunnel.yaml"
    y.write_text("""log: %s
admin: 127.0.0.1:%d
listeners:
  - name: lax
    listen: 127.0.0.1:%d
    target: 127.0.0.1:%d
    cert: %s
    key: %s
    cacert: %s
    server_name: localhost
  - name: strict
    listen: 127.0.0.1:%d
    target: 127.0.0.1:%d
    cert: %s
    key: %s
    cacert: %s
    server_name: localhost
    require_staple: true
""" % (log, admin, lp, port, ccrt, ckey, ca.root, rp, port, ccrt, ckey, ca.root))
    p = procs.start([duet_bin, "tunnel", "--config", y], "yaml")
    dl = DuetLog(log, p, procs)
    dl.wait_event("start", timeout=15)
    assert get_through(lp).startswith(b"HTTP/1.0 200 ok")
    mark = dl.mark()
    assert get_through(rp) == b""
    ev = dl.wait(lambda e: e.get("event") == "handshake" and e.get("result") == "failed", mark)
    assert ev["listener"] == "strict" and ev["reason_code"] == "staple_missing", ev
    m = metrics(admin)
    assert m['duet_tunnel_ocsp_staples_total{listener="lax",result="none"}'] == 1, m
    assert m['duet_tunnel_ocsp_staples_total{listener="strict",result="missing"}'] == 1, m


def test_require_staple_without_asking_is_a_configuration_error(fake, run, tmp_path):
    ca, _, _, _, _ = fake
    ccrt, ckey, _ = ca.issued("app-conf", "client")
    p = run("tunnel", "--listen", "127.0.0.1:1", "--target", "127.0.0.1:1", "--server-name",
            "localhost", "--cert", ccrt, "--key", ckey, "--cacert", ca.root, "--require-staple",
            "--no-staple-check", "--check")
    assert p.returncode == 2, show(p)
    assert ("require_staple: a staple is required but --no-staple-check (staple_check: false) "
            "does not ask for one") in p.stderr, show(p)
    p = run("proxy", "--listen", "127.0.0.1:1", "--target", "127.0.0.1:1", "--allow", "any",
            "--cert", ccrt, "--key", ckey, "--cacert", ca.root, "--require-staple", "--check")
    assert p.returncode == 2, show(p)
    assert "--require-staple is a setting of duet tunnel only" in p.stderr, show(p)


# --- /readyz and /metrics on revocation data fetched by URL ------------------------------------

def wait_readyz(admin, pred, timeout=20):
    deadline = time.monotonic() + timeout
    while True:
        status, text = admin_get(admin, "/readyz")
        if pred(status, text):
            return status, text
        if time.monotonic() > deadline:
            raise AssertionError("/readyz never matched: %d\n%s" % (status, text))
        time.sleep(0.2)


def test_readyz_shows_a_failing_crl_url_then_503_once_its_cached_crl_passes(dpki, procs,
                                                                          tmp_path):
    srv = CrlServer()
    try:
        srv.body = der_crl(dpki, tmp_path / "short.crl", "--next-update", "8s")
        up = Echo()
        cache = tmp_path / "cache"
        d = start(procs, dpki.duet_bin, tmp_path / "px", "proxy",
                  ["--target", "127.0.0.1:%d" % up.port, "--mode", "tcp", "--allow", "any",
                   "--cert", dpki.server_crt, "--key", dpki.server_key, "--cacert", dpki.roots,
                   "--crl-url", srv.url, "--crl-cache", cache, "--crl-refresh", "2s"], "px")
        d.log.wait_event("crl_fetched")
        f = [p for p in cache.iterdir() if p.name.endswith(".crl")][0]
        m = metrics(d.admin)
        ages = {k: v for k, v in m.items()
                if k.startswith("duet_crl_age_seconds{") and 'file="%s"' % f in k}
        assert ages and all(0 <= v < 60 for v in ages.values()), m
        assert [k for k in m if k.startswith("duet_crl_expiry_seconds{") and str(f) in k], m
        status, text = admin_get(d.admin, "/readyz")
        assert status == 200, text
        assert re.search(r"CRL %s: cached copy \d+ s old \(thisUpdate [0-9T:Z-]+\), nextUpdate "
                         r"[0-9T:Z-]+ \(in \d+ s\)\n" % re.escape(srv.url), text), text
        assert "failed" not in text, text

        # The URL starts failing: still ready while the cached CRL holds, and the body says
        # what fails and how old the cached copy is.
        srv.status = 500
        status, text = wait_readyz(d.admin, lambda s, t: "fetch failed" in t
                                   or "fetches failed" in t)
        assert status == 200, text
        assert re.search(r"CRL %s: the last \d+ fetch(es)? failed, the latest at [0-9T:Z-]+ "
                         r"\(http_status\): HTTP status 500 " % re.escape(srv.url), text), text

        # Its nextUpdate passes: 503, and why.
        status, text = wait_readyz(d.admin, lambda s, t: s == 503)
        assert "proxy: a CRL passed its nextUpdate" in text, text
        assert re.search(r"CRL %s: cached copy \d+ s old .*\(\d+ s ago\): passed\n"
                         % re.escape(srv.url), text), text
        up.close()
    finally:
        srv.close()


def test_readyz_reports_a_missing_staple_without_503(make_ca, duet_bin, procs, tmp_path):
    """A listener with --ocsp-staple whose responder is down: served without a staple, so
    ready; the body says there is none and why the fetches fail."""
    ca = make_ca("No Staple Readyz Corp")
    crt, key, _ = server_cert(ca)
    up = Echo()
    url = "http://127.0.0.1:%d/ocsp" % free_port()
    d = start(procs, duet_bin, tmp_path / "px", "proxy",
              ["--target", "127.0.0.1:%d" % up.port, "--mode", "tcp", "--allow", "any",
               "--cert", crt, "--key", key, "--cacert", ca.root, "--ocsp-staple",
               "--ocsp-staple-url", url, "--crl-cache", tmp_path / "cache"], "px")
    status, text = admin_get(d.admin, "/readyz")
    assert status == 200, text
    assert "proxy: no current OCSP staple: clients that ask for one get none (they are still " \
        "served)\n" in text, text
    assert "proxy: OCSP staple from %s: nothing cached: clients that ask get no staple\n" % url \
        in text, text
    assert re.search(r"proxy: OCSP staple from %s: the last \d+ fetch(es)? failed, the latest at "
                     r"[0-9T:Z-]+ \(connect\): " % re.escape(url), text), text
    up.close()
