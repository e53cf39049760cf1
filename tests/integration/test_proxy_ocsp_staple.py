# SPDX-License-Identifier: Apache-2.0
"""OCSP stapling of the proxy's own certificate (issue 13): --ocsp-staple, --ocsp-staple-url
(docs/proxy.md#ocsp-stapling).

The responder is `duet ca serve` (/ocsp on its plain listener; the certificate names it in its
authorityInfoAccess through the CA profile's ocsp_urls) for the whole loop, and a small Python
HTTP server answering whatever a test makes (another certificate's response, an expired one, a
tampered one, one signed by a stranger, a revoked one) for the refusals.  What a client sees is
checked with `openssl s_client -status`.
"""

import datetime
import re
import subprocess
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp
from cryptography.x509.oid import NameOID

from conftest import show
from proxyutil import metrics
from test_ca_serve import CAServer
from test_proxy_crl_url import CrlServer
from test_security_proxy_ops import start


def s_client(port, status=True):
    """What `openssl s_client` prints for one handshake with the proxy (TLS 1.3)."""
    argv = ["openssl", "s_client", "-connect", "127.0.0.1:%d" % port, "-servername", "localhost",
            "-tlsextdebug"]
    if status:
        argv.append("-status")
    p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       timeout=20)
    return p.stdout + p.stderr


def stapled_serial(out):
    """The serial of the stapled response's certificate, or None when nothing was stapled."""
    if "OCSP response: no response sent" in out:
        return None
    assert "OCSP Response Status: successful" in out, out
    assert "Cert Status: good" in out, out
    m = re.search(r"Certificate ID:.*?Serial Number: ([0-9A-F]+)", out, re.S)
    assert m, out
    return m.group(1)


def wait_unstapled(port, timeout=15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = s_client(port)
        if "OCSP response: no response sent" in out:
            return out
        time.sleep(0.3)
    raise AssertionError("the proxy still staples:\n" + out)


@pytest.fixture
def loop(make_ca, duet_bin):
    """(ca, serve, crt, key, serial): a server certificate whose AIA names serve's /ocsp."""
    ca = make_ca("Staple Corp")
    serve = CAServer(duet_bin, ca)
    url = "http://127.0.0.1:%d/ocsp" % serve.http_port
    yml = ca.dir / "ca.yaml"
    yml.write_text(yml.read_text().replace("ocsp_urls: []", 'ocsp_urls: ["%s"]' % url))
    crt, key, serial = ca.issued("localhost", "server", "--san", "dns:localhost", "--san",
                                 "ip:127.0.0.1")
    serve.start()
    yield ca, serve, crt, key, serial
    if serve.proc is not None and serve.proc.poll() is None:
        serve.stop()


def proxy_args(ca, crt, key, cache, *extra):
    return ["--target", "127.0.0.1:1", "--mode", "tcp", "--allow", "any", "--cert", crt,
            "--key", key, "--cacert", ca.root, "--ocsp-staple", "--crl-cache", cache, *extra]


def bare(serial):
    return serial.replace(":", "")


# --- the whole loop with duet ca serve -------------------------------------------------------

def test_staples_good_then_nothing_once_revoked(loop, procs, tmp_path):
    ca, serve, crt, key, serial = loop
    url = "http://127.0.0.1:%d/ocsp" % serve.http_port
    d = start(procs, serve.duet_bin, tmp_path, "proxy",
              proxy_args(ca, crt, key, tmp_path / "cache", "--crl-refresh", "2s"), "staple")
    ev = d.log.wait_event("ocsp_staple_fetched")
    assert ev["url"] == url and ev["serial"] == serial and ev["unchanged"] is False, ev
    assert ev["file"].startswith(str(tmp_path / "cache" / "127.0.0.1-")), ev
    assert ev["file"].endswith(".ocsp"), ev
    out = s_client(d.port)
    assert stapled_serial(out) == bare(serial), out
    assert 'TLS server extension "status request"' in out, out
    m = metrics(d.admin)
    assert 3000 < m['duet_ocsp_staple_expiry_seconds{listener="proxy"}'] <= 3600, m
    assert 0 <= m['duet_ocsp_staple_age_seconds{listener="proxy"}'] < 600, m

    # GnuTLS asks too, and checks the staple against the CA.
    g = subprocess.run(["gnutls-cli", "--ocsp", "--x509cafile", str(ca.root), "-p", str(d.port),
                        "localhost"], stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       timeout=20)
    assert "- Options: OCSP status request," in g.stdout, g.stdout + g.stderr
    assert "- Status: The certificate is trusted." in g.stdout, g.stdout + g.stderr

    # A client that does not ask gets no staple.
    out = s_client(d.port, status=False)
    assert "Verify return code" in out or "Cipher" in out, out
    assert 'TLS server extension "status request"' not in out, out

    # Revoked at the CA: the next refresh removes the staple; nothing is stapled, and the log
    # says why.
    mark = d.log.mark()
    p = ca.duet("cert", "revoke", serial, "--ca-dir", ca.dir)
    assert p.returncode == 0, show(p)
    ev = d.log.wait(lambda e: e.get("event") == "ocsp_staple_failed", mark, timeout=20)
    assert ev["code"] == "revoked" and ev["serial"] == serial, ev
    assert ("the responder says the certificate (serial %s) was revoked on " % serial
            in ev["reason"]), ev
    assert ev["kept"] == "none: the cached response is removed", ev
    out = wait_unstapled(d.port)
    assert "Cert Status: revoked" not in out, out
    assert not list((tmp_path / "cache").glob("*.ocsp"))
    m = metrics(d.admin)
    assert m.get('duet_ocsp_staple_fetch_failures_total{url="%s",reason="revoked"}' % url, 0) \
        >= 1, m
    assert 'duet_ocsp_staple_expiry_seconds{listener="proxy"}' not in m, m


def test_responder_down_at_start_staples_from_the_cache(loop, procs, tmp_path):
    ca, serve, crt, key, serial = loop
    cache = tmp_path / "cache"
    d = start(procs, serve.duet_bin, tmp_path, "proxy", proxy_args(ca, crt, key, cache), "first")
    d.log.wait_event("ocsp_staple_fetched")
    d.proc.terminate()
    d.proc.wait(timeout=10)
    serve.stop()

    d2 = start(procs, serve.duet_bin, tmp_path, "proxy", proxy_args(ca, crt, key, cache),
               "second")
    ev = d2.log.wait_event("ocsp_staple_failed")
    assert ev["code"] == "connect" and ev["source"] == "fetch", ev
    assert ev["kept"].startswith("the cached response (nextUpdate "), ev
    off = d2.log.wait_event("ocsp_staple_offline")
    assert off["effect"].startswith("stapling the cached response"), off
    assert stapled_serial(s_client(d2.port)) == bare(serial)


def test_a_certificate_without_a_responder_is_an_error(make_ca, run, tmp_path):
    ca = make_ca("No Aia Corp")
    crt, key, _ = ca.issued("localhost", "server", "--san", "dns:localhost")
    p = run("proxy", "--listen", "127.0.0.1:1", "--target", "127.0.0.1:1", "--allow", "any",
            "--cert", crt, "--key", key, "--cacert", ca.root, "--ocsp-staple", "--check")
    assert p.returncode == 2, show(p)
    assert ("--ocsp-staple: the certificate in %s names no http:// OCSP responder in its "
            "authorityInfoAccess; give one with --ocsp-staple-url" % crt) in p.stderr, show(p)
    p = run("proxy", "--listen", "127.0.0.1:1", "--target", "127.0.0.1:1", "--allow", "any",
            "--cert", crt, "--key", key, "--cacert", ca.root, "--ocsp-staple",
            "--ocsp-staple-url", "https://ocsp.example/", "--check")
    assert p.returncode == 2, show(p)
    assert 'OCSP URL "https://ocsp.example/": only http:// is supported' in p.stderr, show(p)


# --- responses that must not be stapled, from a fake responder -------------------------------

def load_issuer(ca):
    cert = x509.load_pem_x509_certificate(ca.issuing.read_bytes())
    key = serialization.load_pem_private_key((ca.dir / "issuing.key").read_bytes(),
                                             ca.passphrase.encode())
    return cert, key


def leaf_of(path):
    return x509.load_pem_x509_certificate(path.read_bytes())


def response(leaf, issuer, signer_cert, signer_key, status="good", this=None, nxt=None,
             certs=None):
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    this = this or now - datetime.timedelta(minutes=1)
    nxt = nxt or now + datetime.timedelta(hours=1)
    b = ocsp.OCSPResponseBuilder()
    st = {"good": ocsp.OCSPCertStatus.GOOD, "revoked": ocsp.OCSPCertStatus.REVOKED,
          "unknown": ocsp.OCSPCertStatus.UNKNOWN}[status]
    b = b.add_response(cert=leaf, issuer=issuer, algorithm=hashes.SHA1(), cert_status=st,
                       this_update=this, next_update=nxt,
                       revocation_time=now - datetime.timedelta(minutes=5)
                       if status == "revoked" else None,
                       revocation_reason=x509.ReasonFlags.key_compromise
                       if status == "revoked" else None)
    b = b.responder_id(ocsp.OCSPResponderEncoding.HASH, signer_cert)
    if certs:
        b = b.certificates(certs)
    return b.sign(signer_key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def stranger():
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Stranger OCSP")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.OCSP_SIGNING]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    return cert, key


def make_bad(case, ca, crt, other_crt):
    issuer, ikey = load_issuer(ca)
    leaf = leaf_of(crt)
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    if case == "another_certificate":
        return response(leaf_of(other_crt), issuer, issuer, ikey), "wrong_certificate", \
            "it answers for another certificate"
    if case == "expired":
        return response(leaf, issuer, issuer, ikey, this=now - datetime.timedelta(hours=2),
                        nxt=now - datetime.timedelta(hours=1)), "expired", \
            "the response is expired: its nextUpdate "
    if case == "bad_signature":
        der = bytearray(response(leaf, issuer, issuer, ikey))
        der[-1] ^= 0x01
        return bytes(der), "bad_signature", \
            'bad signature: the response does not verify with the key of "'
    if case == "stranger":
        sc, sk = stranger()
        return response(leaf, issuer, sc, sk, certs=[sc]), "unknown_signer", \
            'the response is signed by "CN=Stranger OCSP", which is neither the certificate\'s ' \
            'issuer'
    if case == "revoked":
        return response(leaf, issuer, issuer, ikey, status="revoked"), "revoked", \
            "was revoked on "
    if case == "unknown":
        return response(leaf, issuer, issuer, ikey, status="unknown"), "unknown", \
            'status "unknown", not "good"'
    if case == "too_large":
        return b"\x30" * 70000, "too_large", "more than the limit of 65536"
    if case == "garbage":
        return b"<html>not OCSP</html>", "not_ocsp", "the reply is not a DER OCSP response"
    raise AssertionError(case)


@pytest.mark.parametrize("case", ["another_certificate", "expired", "bad_signature", "stranger",
                                  "revoked", "unknown", "garbage", "too_large"])
def test_a_bad_response_is_not_stapled_and_the_reason_logged(make_ca, duet_bin, procs,
                                                             tmp_path, case):
    ca = make_ca("Fake Responder Corp")
    crt, key, serial = ca.issued("localhost", "server", "--san", "dns:localhost", "--san",
                                 "ip:127.0.0.1")
    other, _, _ = ca.issued("other", "server", "--san", "dns:other")
    fake = CrlServer()
    try:
        fake.body, code, words = make_bad(case, ca, crt, other)
        d = start(procs, duet_bin, tmp_path, "proxy",
                  proxy_args(ca, crt, key, tmp_path / "cache", "--ocsp-staple-url",
                             fake.url), case)
        ev = d.log.wait_event("ocsp_staple_failed")
        assert ev["code"] == code and words in ev["reason"], ev
        assert ev["url"] == fake.url and ev["serial"] == serial, ev
        assert ev["kept"].startswith("none"), ev
        assert fake.hits >= 1
        out = s_client(d.port)
        assert "OCSP response: no response sent" in out, out
        assert not list((tmp_path / "cache").glob("*.ocsp"))
        m = metrics(d.admin)
        assert m['duet_ocsp_staple_fetch_failures_total{url="%s",reason="%s"}'
                 % (fake.url, code)] >= 1, m
    finally:
        fake.close()


def test_a_good_response_from_the_fake_responder_is_stapled(make_ca, duet_bin, procs,
                                                             tmp_path):
    """The fake responder itself is sound: the same response, untampered, is stapled."""
    ca = make_ca("Fake Good Corp")
    crt, key, serial = ca.issued("localhost", "server", "--san", "dns:localhost", "--san",
                                 "ip:127.0.0.1")
    issuer, ikey = load_issuer(ca)
    fake = CrlServer()
    try:
        fake.body = response(leaf_of(crt), issuer, issuer, ikey)
        d = start(procs, duet_bin, tmp_path, "proxy",
                  proxy_args(ca, crt, key, tmp_path / "cache", "--ocsp-staple-url", fake.url),
                  "good")
        d.log.wait_event("ocsp_staple_fetched")
        assert stapled_serial(s_client(d.port)) == bare(serial)
        # The same answer fetched again is left in place: no reload for it.
        d2 = start(procs, duet_bin, tmp_path, "proxy",
                   proxy_args(ca, crt, key, tmp_path / "cache", "--ocsp-staple-url", fake.url),
                   "again")
        ev = d2.log.wait_event("ocsp_staple_fetched")
        assert ev["unchanged"] is True, ev
        assert stapled_serial(s_client(d2.port)) == bare(serial)
    finally:
        fake.close()


def test_a_staple_past_its_next_update_is_no_longer_sent(make_ca, duet_bin, procs, tmp_path):
    """A response valid for a few seconds is stapled, then, once its nextUpdate passes and the
    responder has nothing newer, the handshakes get no staple and the log says so once."""
    ca = make_ca("Short Staple Corp")
    crt, key, serial = ca.issued("localhost", "server", "--san", "dns:localhost", "--san",
                                 "ip:127.0.0.1")
    issuer, ikey = load_issuer(ca)
    now = datetime.datetime.now(datetime.timezone.utc)
    fake = CrlServer()
    try:
        fake.body = response(leaf_of(crt), issuer, issuer, ikey,
                             this=now - datetime.timedelta(seconds=1),
                             nxt=now + datetime.timedelta(seconds=5))
        d = start(procs, duet_bin, tmp_path, "proxy",
                  proxy_args(ca, crt, key, tmp_path / "cache", "--ocsp-staple-url", fake.url),
                  "short")
        d.log.wait_event("ocsp_staple_fetched")
        assert stapled_serial(s_client(d.port)) == bare(serial)
        time.sleep(max(0.0, (now + datetime.timedelta(seconds=6)
                             - datetime.datetime.now(datetime.timezone.utc)).total_seconds()))
        out = s_client(d.port)
        assert "OCSP response: no response sent" in out, out
        s_client(d.port)
        # The proxy itself noticed: at the handshake, or when a reload read the cached file.
        ev = d.log.wait(lambda e: e.get("event") == "ocsp_staple_failed" and
                        e.get("code") == "expired" and e.get("source") in ("handshake", "cache"),
                        timeout=10)
        assert ev["listener"] == "proxy", ev
        fails = [e for e in d.log.events() if e.get("event") == "ocsp_staple_failed"
                 and e.get("source") == "handshake"]
        assert len(fails) <= 1, fails
    finally:
        fake.close()
