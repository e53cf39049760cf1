# SPDX-License-Identifier: Apache-2.0
"""Outside review (issue 9): CA names, session binding, failed-handshake throttle.

Each test asserts the secure behaviour and failed on the code as reviewed:
- the CA certifies a subject CN taken from the CSR that no profile rule checked, while
  `cn:` patterns authorize in the proxy and the CN is forwarded in XFCC Subject;
- the inventory's SAN record is cut at 4 KiB (mid-name) while the certificate holds more;
- a DNS SAN that is an IP address literal is issued by a profile that does not allow IP names;
- the session binding digest ignores the trust settings of a TRUSTED CERTIFICATE anchor, so a
  reload that withdraws trust for client authentication keeps old tickets resuming;
- waves of concurrent failing handshakes, each fired once the bucket is paid back, get many
  times the documented limit through the failed-handshake throttle.
"""

import signal
import sqlite3
from pathlib import Path

from conftest import show
from proxyutil import free_port
from proxyutil import openssl as proxy_openssl
from test_security_ca import make_csr, openssl, san_list, sign, x509_text
from test_security_proxy_ops import ALICE, failing_waves, pargs, start
from test_security_resume import (get_ticket, listener_yaml, s_client, start_config,
                                  ticket_keys)


def cert_cn(crt):
    out = openssl("x509", "-in", crt, "-noout", "-subject", "-nameopt", "RFC2253")
    subject = out.strip().split("=", 1)[1]
    return [part.split("=", 1)[1] for part in subject.split(",") if part.startswith("CN=")]


# --- CA: the subject CN --------------------------------------------------------------------

def test_csr_cn_that_is_not_a_checked_name_is_not_certified(make_ca, tmp_path):
    """A CSR for spiffe://demo-corp/alice asking for CN=admin: the client profile allows only
    the SPIFFE ID, yet CN=admin was signed.  The proxy authorizes on `cn:` patterns and
    forwards the subject in X-Forwarded-Client-Cert, so the requester picks an identity field
    no profile rule looked at.  Secure: refuse, or make the CN one of the checked names."""
    ca = make_ca("Demo Corp")
    csr = make_csr(tmp_path, "admin", [b"URI.1=spiffe://demo-corp/alice"])
    out = tmp_path / "admin.crt"
    p = sign(ca, csr, "client", out)
    if p.returncode != 0:
        assert not out.exists(), show(p)
        return
    names = [s.split(":", 1)[1] for s in san_list(out)]
    assert set(cert_cn(out)) <= set(names), \
        "the CA certified CN %s that no profile rule checked (names %s)\n%s" % (
            cert_cn(out), names, x509_text(out))


# --- CA: what the inventory records ---------------------------------------------------------

def test_inventory_records_every_san_of_a_large_certificate(make_ca):
    """30 DNS names of about 190 bytes each (a server profile allows any DNS name): the
    certificate holds all 30, the inventory's sans column was cut at 4095 bytes in the middle
    of the 22nd name (row_from_cert's char sans[4096])."""
    ca = make_ca("Demo Corp")
    label = "a" * 60 + "." + "b" * 60 + "." + "c" * 60
    args = []
    for i in range(30):
        args += ["--san", "dns:%s.h%d.corp" % (label, i)]
    crt, _, serial = ca.issued("many", "server", *args)
    in_cert = san_list(crt)
    assert len(in_cert) == 30, x509_text(crt)
    db = sqlite3.connect(str(ca.dir / "inventory.db"))
    try:
        (stored,) = db.execute("SELECT sans FROM certificates WHERE serial = ?",
                               (serial,)).fetchone()
    finally:
        db.close()
    assert stored.split(", ") == in_cert, \
        "inventory sans (%d bytes) differ from the certificate's %d names; ends with %r" % (
            len(stored), len(in_cert), stored[-70:])


# --- CA: IP literals as DNS names -----------------------------------------------------------

def test_dns_san_that_is_an_ip_literal_is_refused(make_ca, tmp_path):
    """A profile allowing DNS names but not IP addresses must not issue dNSName 127.0.0.1:
    RFC 5280/CA-B Forum forbid it, and hostname matchers fed an address string (OpenSSL's
    X509_check_host, `openssl s_client -verify_hostname`) accept it as that address."""
    ca = make_ca("Demo Corp")
    yaml = ca.dir / "ca.yaml"
    text = yaml.read_text()
    assert "san_types: [dns, ip]" in text
    yaml.write_text(text.replace("san_types: [dns, ip]", "san_types: [dns]", 1))
    p = ca.issue("flag", "server", "--san", "dns:127.0.0.1")
    assert p.returncode != 0, "issued dNSName 127.0.0.1 from a dns-only profile\n" + show(p)
    csr = make_csr(tmp_path, "lit", [b"DNS.1=10.9.8.7"])
    out = tmp_path / "lit.crt"
    p = sign(ca, csr, "server", out)
    assert p.returncode != 0, "signed dNSName 10.9.8.7 from a dns-only profile\n%s\n%s" % (
        show(p), x509_text(out) if out.exists() else "")


# --- session binding: anchor trust settings -------------------------------------------------

def test_reload_withdrawing_client_trust_of_an_anchor_retires_tickets(dpki, procs, fresh_echo,
                                                                      tmp_path):
    """The trust file is replaced by the same root as a TRUSTED CERTIFICATE trusted for
    emailProtection only (`openssl x509 -addtrust emailProtection -trustout`) and the proxy
    reloaded: full handshakes of alice now fail (the anchor is not trusted for clientAuth),
    but alice's ticket from before still resumed, because bind_certs() digests the bare
    certificate DER and leaves out the auxiliary trust that changed the verdict."""
    keys = ticket_keys(tmp_path / "ticket.keys")
    cacert = tmp_path / "cacert.pem"
    cacert.write_text(Path(dpki.roots).read_text())
    port = free_port()
    log, proc = start_config(procs, dpki, tmp_path, [
        listener_yaml("web", port, dpki, cacert, keys, fresh_echo.port,
                      "uri:spiffe://test-corp/alice")])
    sess = tmp_path / "alice.sess"
    get_ticket(port, dpki, dpki.alice_crt, dpki.alice_key, sess, log)

    aux = proxy_openssl("x509", "-in", dpki.roots, "-addtrust", "emailProtection", "-trustout")
    cacert.write_text(aux)
    mark = log.mark()
    proc.send_signal(signal.SIGHUP)
    log.wait_event("reload", mark, result="ok")

    # Proof that the new trust refuses alice on a full handshake.
    mark = log.mark()
    out, err = s_client(port, dpki, dpki.alice_crt, dpki.alice_key)
    assert "HTTP/1.1 200" not in out, "the new trust still admits alice:\n" + out + err
    hs = log.wait_event("handshake", mark, result="failed")
    assert "not trusted for this purpose" in hs["reason"], hs

    before = len(fresh_echo.requests)
    out, err = s_client(port, dpki, dpki.alice_crt, dpki.alice_key, sess_in=sess)
    assert "Reused," not in out and "HTTP/1.1 200" not in out, \
        "a ticket from before the trust change resumed:\n" + out
    assert len(fresh_echo.requests) == before


# --- the failed-handshake throttle ---------------------------------------------------------

def test_waves_of_concurrent_failures_after_pay_back_stay_near_the_limit(dpki, procs, echo,
                                                                         tmp_path):
    """Wait until the bucket is full again, open 50 connections at once, fail them all,
    repeat.  When only failures were counted, every connection accepted before the first
    failure landed got through: 3 waves got about 150 failed handshakes through a limit of
    burst + rate * elapsed.  Now each handshake takes its token at accept."""
    burst, rate, waves, concurrency = 3, 1, 3, 50
    d = start(procs, dpki.duet_bin, tmp_path, "proxy",
              pargs(dpki, "127.0.0.1:%d" % echo.port, "--allow", ALICE, "--workers", "1",
                    "--failed-handshake-burst", str(burst),
                    "--failed-handshake-rate", str(rate)), "waves")
    attempts, failed, refused, elapsed, mark = failing_waves(
        d, waves, concurrency, pause=(burst + 1) / rate + 0.5)  # the bucket full again
    limit = burst + rate * elapsed + 2
    assert failed <= limit, "%d failed handshakes got through in %.1f s (limit %.0f); " \
        "%d refused" % (failed, elapsed, limit, refused)
