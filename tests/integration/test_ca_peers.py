# SPDX-License-Identifier: Apache-2.0
"""Certificates from duet's CA in the hands of real peers.

- openssl verify: each profile is good for its purpose and only that; with duet's CRL file
  (issuing CA's CRL then the root's) and -crl_check_all a revoked certificate is refused.
- GnuTLS certtool: --verify-chain over leaf, issuing CA and root; --verify with a purpose
  and with duet's CRL.
- nginx with `ssl_verify_client on`, `ssl_client_certificate` = `duet ca roots` and `ssl_crl`
  = `duet crl generate`: curl with a duet client certificate gets 200; without one, with a
  revoked one, with one from another CA or with a server-only certificate it is refused, and
  nginx's error log says why.
- PKCS#12 from `duet cert export`, modern and --legacy: NSS pk12util (Firefox, Chrome) and
  Java keytool import them.

Every peer is required: a missing program fails the test (it names the Debian package).
"""

import os
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from proxyutil import free_port

PEER_PATH = os.environ.get("PATH", "") + ":/usr/sbin:/sbin:/usr/bin"


def tool(name, package):
    path = shutil.which(name, path=PEER_PATH)
    if path is None:
        pytest.fail("%s is not installed (Debian package %s; `make deps` installs it)"
                    % (name, package), pytrace=False)
    return path


def sh(*args, **kw):
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, **kw)


def show(p):
    return "command: %s\nexit: %s\nstdout: %r\nstderr: %r" % (
        " ".join(map(str, p.args)), p.returncode, p.stdout, p.stderr)


class Peers:
    """One CA with the certificates every test here uses, and a second, untrusted CA."""


@pytest.fixture(scope="module")
def peers(make_ca, tmp_path_factory):
    ca = make_ca("Demo Corp")
    e = Peers()
    e.ca = ca
    e.dir = tmp_path_factory.mktemp("peers")
    e.server, e.server_key, _ = ca.issued("localhost", "server", "--san", "dns:localhost",
                                          "--san", "ip:127.0.0.1")
    e.alice, e.alice_key, e.alice_serial = ca.issued("alice", "client")
    e.bob, e.bob_key, _ = ca.issued("bob", "peer")
    e.device, e.device_key, _ = ca.issued("sensor-7", "device")
    e.mallory, e.mallory_key, e.mallory_serial = ca.issued("mallory", "client")
    p = ca.duet("cert", "revoke", e.mallory_serial, "--ca-dir", ca.dir, "--reason",
                "keyCompromise")
    assert p.returncode == 0, show(p)

    e.crl = e.dir / "crl.pem"
    p = ca.crl(e.crl)
    assert p.returncode == 0, show(p)
    e.roots = e.dir / "roots.pem"
    p = ca.duet("ca", "roots", "--ca-dir", ca.dir)
    assert p.returncode == 0, show(p)
    e.roots.write_text(p.stdout)

    other = make_ca("Other Org")
    e.other_root = other.root
    e.rogue, e.rogue_key, _ = other.issued("alice", "client")
    return e


def ossl_verify(e, cert, purpose, *extra):
    return sh("openssl", "verify", "-purpose", purpose, "-CAfile", e.roots,
              "-untrusted", e.ca.issuing, *extra, cert)


# --- openssl --------------------------------------------------------------------------------

@pytest.mark.parametrize("who, server_ok, client_ok", [
    ("server", True, False),
    ("alice", False, True),
    ("bob", True, True),
    ("device", False, True),
])
def test_openssl_verifies_each_profile_for_its_purpose_only(peers, who, server_ok, client_ok):
    cert = getattr(peers, who)
    for purpose, ok in (("sslserver", server_ok), ("sslclient", client_ok)):
        p = ossl_verify(peers, cert, purpose)
        if ok:
            assert p.returncode == 0 and p.stdout.strip() == "%s: OK" % cert, show(p)
        else:
            assert p.returncode != 0, show(p)
            assert "unsuitable certificate purpose" in p.stdout + p.stderr, show(p)


def test_openssl_with_duets_crl_rejects_the_revoked_certificate(peers):
    p = ossl_verify(peers, peers.alice, "sslclient", "-crl_check_all", "-CRLfile", peers.crl)
    assert p.returncode == 0 and "OK" in p.stdout, show(p)
    p = ossl_verify(peers, peers.mallory, "sslclient", "-crl_check_all", "-CRLfile", peers.crl)
    assert p.returncode != 0, show(p)
    assert "certificate revoked" in p.stdout + p.stderr, show(p)
    # Without the CRL the revoked certificate is otherwise perfectly valid.
    p = ossl_verify(peers, peers.mallory, "sslclient")
    assert p.returncode == 0, show(p)


def test_openssl_rejects_a_certificate_from_another_ca(peers):
    p = ossl_verify(peers, peers.rogue, "sslclient")
    assert p.returncode != 0, show(p)
    assert "unable to get local issuer certificate" in p.stdout + p.stderr, show(p)


# --- GnuTLS ---------------------------------------------------------------------------------

def test_gnutls_verify_chain(peers, tmp_path):
    certtool = tool("certtool", "gnutls-bin")
    chain = tmp_path / "chain.pem"
    chain.write_text(peers.alice.read_text() + peers.ca.root.read_text())
    p = sh(certtool, "--verify-chain", "--infile", chain)
    assert p.returncode == 0, show(p)
    assert "Chain verification output: Verified. The certificate is trusted." in p.stdout, show(p)

    # A leaf of another CA presented with this CA's intermediate and root does not chain.
    bad = tmp_path / "bad.pem"
    bad.write_text(Path(peers.rogue).read_text().split("-----END CERTIFICATE-----")[0]
                   + "-----END CERTIFICATE-----\n" + peers.ca.issuing.read_text()
                   + peers.ca.root.read_text())
    p = sh(certtool, "--verify-chain", "--infile", bad)
    assert p.returncode != 0, show(p)
    assert "Not verified" in p.stdout, show(p)


@pytest.mark.parametrize("who, oid, ok", [
    ("server", "1.3.6.1.5.5.7.3.1", True),
    ("server", "1.3.6.1.5.5.7.3.2", False),
    ("alice", "1.3.6.1.5.5.7.3.2", True),
    ("alice", "1.3.6.1.5.5.7.3.1", False),
])
def test_gnutls_verify_purpose(peers, who, oid, ok):
    certtool = tool("certtool", "gnutls-bin")
    p = sh(certtool, "--verify", "--load-ca-certificate", peers.roots, "--verify-purpose", oid,
           "--infile", getattr(peers, who))
    if ok:
        assert p.returncode == 0 and "Chain verification output: Verified." in p.stdout, show(p)
    else:
        assert p.returncode != 0 and "Not verified" in p.stdout, show(p)


def test_gnutls_with_duets_crl(peers):
    certtool = tool("certtool", "gnutls-bin")
    p = sh(certtool, "--verify-crl", "--load-ca-certificate", peers.ca.issuing,
           "--infile", peers.crl)
    assert p.returncode == 0 and "Verified" in p.stdout, show(p)
    p = sh(certtool, "--verify", "--load-ca-certificate", peers.roots, "--load-crl", peers.crl,
           "--infile", peers.alice)
    assert p.returncode == 0 and "The certificate is trusted" in p.stdout, show(p)
    p = sh(certtool, "--verify", "--load-ca-certificate", peers.roots, "--load-crl", peers.crl,
           "--infile", peers.mallory)
    assert p.returncode != 0, show(p)
    assert "revoked" in p.stdout, show(p)


# --- nginx ----------------------------------------------------------------------------------

NGINX_CONF = """\
daemon off;
master_process off;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log info;
events {{ worker_connections 64; }}
http {{
    access_log {prefix}/access.log;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    server {{
        listen 127.0.0.1:{port} ssl;
        server_name localhost;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        ssl_client_certificate {roots};
        ssl_verify_client on;
        ssl_verify_depth 2;
        ssl_crl {crl};
        location / {{
            default_type text/plain;
            return 200 "verify=$ssl_client_verify subject=$ssl_client_s_dn\\n";
        }}
    }}
}}
"""


class Nginx:
    def __init__(self, prefix, port, proc):
        self.prefix, self.port, self.proc = prefix, port, proc
        self.log = prefix / "error.log"
        self.url = "https://127.0.0.1:%d/" % port
        self.log_mark = 0

    def log_since_mark(self):
        data = self.log.read_text(errors="replace") if self.log.exists() else ""
        return data[self.log_mark:]

    def mark(self):
        self.log_mark = len(self.log.read_text(errors="replace")) if self.log.exists() else 0


@pytest.fixture(scope="module")
def nginx(peers, tmp_path_factory):
    binary = tool("nginx", "nginx")
    prefix = tmp_path_factory.mktemp("nginx")
    for d in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (prefix / d).mkdir()
    port = free_port()
    conf = prefix / "nginx.conf"
    conf.write_text(NGINX_CONF.format(prefix=prefix, port=port, cert=peers.server,
                                      key=peers.server_key, roots=peers.roots, crl=peers.crl))
    proc = subprocess.Popen([binary, "-p", str(prefix), "-c", str(conf), "-e",
                             str(prefix / "error.log")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    server = Nginx(prefix, port, proc)
    deadline = time.monotonic() + 10
    try:
        while True:
            if proc.poll() is not None:
                pytest.fail("nginx exited with %s at start-up:\n%s\n%s" % (
                    proc.returncode, proc.stderr.read(), server.log_since_mark()), pytrace=False)
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail("nginx did not listen on 127.0.0.1:%d within 10 s:\n%s"
                                % (port, server.log_since_mark()), pytrace=False)
                time.sleep(0.05)
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def curl(peers, nginx, cert=None, key=None):
    binary = tool("curl", "curl")
    args = [binary, "-sS", "--max-time", "10", "--cacert", peers.roots,
            "-o", "-", "-w", "\nstatus=%{http_code}"]
    if cert:
        args += ["--cert", cert, "--key", key]
    nginx.mark()
    p = sh(*args, nginx.url)
    m = re.search(r"\nstatus=(\d+)$", p.stdout)
    status = int(m.group(1)) if m else None
    time.sleep(0.05)  # let nginx flush the error log line
    return p, status, nginx.log_since_mark()


def test_nginx_accepts_a_duet_client_certificate(peers, nginx):
    p, status, log = curl(peers, nginx, peers.alice, peers.alice_key)
    assert p.returncode == 0 and status == 200, show(p) + log
    assert "verify=SUCCESS subject=CN=alice,O=Demo Corp" in p.stdout, show(p)
    # A peer certificate (serverAuth and clientAuth) is a client too.
    p, status, log = curl(peers, nginx, peers.bob, peers.bob_key)
    assert status == 200 and "CN=bob" in p.stdout, show(p) + log


def refused(p, status):
    """nginx refuses either with its 400 page or by failing the handshake."""
    if status == 400:
        return True
    return p.returncode != 0 and status in (None, 0)


def test_nginx_refuses_no_certificate(peers, nginx):
    p, status, log = curl(peers, nginx)
    assert status == 400, show(p) + log
    assert "No required SSL certificate was sent" in p.stdout, show(p)
    assert "client sent no required SSL certificate" in log, log


def test_nginx_refuses_a_revoked_certificate(peers, nginx):
    p, status, log = curl(peers, nginx, peers.mallory, peers.mallory_key)
    assert refused(p, status), show(p) + log
    if status == 400:
        assert "The SSL certificate error" in p.stdout, show(p)
    assert "certificate revoked" in log, log


def test_nginx_refuses_a_certificate_from_another_ca(peers, nginx):
    p, status, log = curl(peers, nginx, peers.rogue, peers.rogue_key)
    assert refused(p, status), show(p) + log
    if status == 400:
        assert "The SSL certificate error" in p.stdout, show(p)
    # nginx's verify callback lets OpenSSL go on after the missing issuer, so the error it
    # logs last may be the missing CRL of that foreign issuer; either way it is a verify error.
    assert re.search(r"client SSL certificate verify error: \((2|3|20|21):", log), log


def test_nginx_refuses_a_server_only_certificate_as_client(peers, nginx):
    p, status, log = curl(peers, nginx, peers.server, peers.server_key)
    assert refused(p, status), show(p) + log
    assert "unsuitable certificate purpose" in log or "unsupported certificate purpose" in log, log


# --- PKCS#12 into NSS and Java --------------------------------------------------------------

P12_PASSWORD = "p12 export secret"


@pytest.fixture(scope="module")
def p12s(peers, tmp_path_factory):
    d = tmp_path_factory.mktemp("p12")
    pw = d / "p12.pass"
    pw.write_text(P12_PASSWORD + "\n")
    os.chmod(pw, 0o600)  # cert export refuses a password file others can read
    out = {}
    for legacy in (False, True):
        f = d / ("alice-legacy.p12" if legacy else "alice.p12")
        args = ["cert", "export", "--cert", peers.alice, "--key", peers.alice_key,
                "--format", "p12", "--password-file", pw, "--out", f]
        if legacy:
            args.append("--legacy")
        p = peers.ca.duet(*args)
        assert p.returncode == 0, show(p)
        out[legacy] = f
    return out, pw


@pytest.mark.parametrize("legacy", [False, True], ids=["modern", "legacy"])
def test_nss_pk12util_imports(p12s, tmp_path, legacy):
    certutil = tool("certutil", "libnss3-tools")
    pk12util = tool("pk12util", "libnss3-tools")
    files, pw = p12s
    db = "sql:%s" % tmp_path
    p = sh(certutil, "-N", "-d", db, "--empty-password")
    assert p.returncode == 0, show(p)

    wrong = tmp_path / "wrong.pass"
    wrong.write_text("not the password\n")
    p = sh(pk12util, "-i", files[legacy], "-d", db, "-w", wrong)
    assert p.returncode != 0, show(p)

    p = sh(pk12util, "-i", files[legacy], "-d", db, "-w", pw)
    assert p.returncode == 0 and "PKCS12 IMPORT SUCCESSFUL" in p.stdout, show(p)
    p = sh(certutil, "-L", "-d", db)
    assert re.search(r"^alice\s+u,u,u$", p.stdout, re.M), show(p)
    assert "Demo Corp Issuing CA" in p.stdout, show(p)
    p = sh(certutil, "-K", "-d", db)
    assert re.search(r"ec\s+[0-9a-f]+\s+alice$", p.stdout, re.M), show(p)


@pytest.mark.parametrize("legacy", [False, True], ids=["modern", "legacy"])
def test_java_keytool_lists(p12s, peers, legacy):
    keytool = tool("keytool", "openjdk-17-jre-headless")
    files, _ = p12s
    p = sh(keytool, "-list", "-v", "-storetype", "PKCS12", "-keystore", files[legacy],
           "-storepass", P12_PASSWORD)
    assert p.returncode == 0, show(p)
    out = p.stdout
    assert "Your keystore contains 1 entry" in out, show(p)
    assert "Alias name: alice" in out and "Entry type: PrivateKeyEntry" in out, show(p)
    assert "Certificate chain length: 2" in out, show(p)
    assert "Owner: CN=alice, O=Demo Corp" in out, show(p)
    assert "Owner: CN=Demo Corp Issuing CA, O=Demo Corp" in out, show(p)
    serial = peers.alice_serial.replace(":", "").lower().lstrip("0")
    assert "Serial number: %s" % serial in out, show(p)

    p = sh(keytool, "-list", "-storetype", "PKCS12", "-keystore", files[legacy],
           "-storepass", "wrong password")
    assert p.returncode != 0 and "password was incorrect" in p.stdout + p.stderr, show(p)
