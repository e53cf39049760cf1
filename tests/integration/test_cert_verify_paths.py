# SPDX-License-Identifier: Apache-2.0
"""Path building (RFC 4158) through `duet cert verify` and `duet proxy`.

One intermediate CA (one subject, one key) holds three certificates, as an operator's PKI
does after a cross-signature and a re-issue:

    Paths Root (trusted)        Paths Other Root (not trusted)
      ├─ Paths CA  (by-root)      └─ Paths CA  (by-other)
      └─ Paths CA  (nc: permitted DNS:other.example, excludes the leaf)
           └─ leaf paths.example (serverAuth, clientAuth), signed by the CA's key

OpenSSL takes the first certificate of the bundle that names the leaf's issuer and stops
there; duet tries the others when that path fails, and when none validates reports the
most promising failure (docs/cli/cert-verify.md, "Path building").
"""

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from proxyutil import DuetLog, client_context, free_port, https_request, refused_attempt

CNF = """\
[ req ]
distinguished_name = dn
prompt = no
[ dn ]
CN = unused
[ root ]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[ ca ]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
[ ca_nc ]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
nameConstraints = critical, permitted;DNS:other.example
[ leaf ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth, clientAuth
subjectAltName = DNS:paths.example
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
"""

CA_SUBJ = "/O=Paths Test/CN=Paths CA"
CA_NAME = "CN=Paths CA,O=Paths Test"


def openssl(*args, cwd=None):
    p = subprocess.run(["openssl", *map(str, args)], capture_output=True, cwd=cwd)
    if p.returncode != 0:
        raise RuntimeError("openssl %s failed:\n%s" % (" ".join(map(str, args)),
                                                       p.stderr.decode(errors="replace")))
    return p.stdout


class PathPKI:
    def __init__(self, d):
        self.d = Path(d)
        (self.d / "x.cnf").write_text(CNF)
        self.n = 0x7000
        self.root = self._selfsigned("root", "/O=Paths Test/CN=Paths Root")
        self.other = self._selfsigned("other", "/O=Paths Test/CN=Paths Other Root")
        self._key("ca")
        openssl("req", "-new", "-config", "x.cnf", "-key", "ca.key", "-subj", CA_SUBJ,
                "-out", "ca.csr", cwd=self.d)
        self.by_root = self._sign("by-root", "ca.csr", "root", "ca")
        self.by_other = self._sign("by-other", "ca.csr", "other", "ca")
        self.nc = self._sign("nc", "ca.csr", "root", "ca_nc")
        self._key("leaf")
        openssl("req", "-new", "-config", "x.cnf", "-key", "leaf.key", "-subj",
                "/O=Paths Test/CN=paths.example", "-out", "leaf.csr", cwd=self.d)
        self.n += 1
        openssl("x509", "-req", "-in", "leaf.csr", "-CA", self.by_root, "-CAkey", "ca.key",
                "-set_serial", self.n, "-days", 20, "-sha256", "-extfile", "x.cnf",
                "-extensions", "leaf", "-out", "leaf.pem", cwd=self.d)
        self.leaf, self.leaf_key = self.d / "leaf.pem", self.d / "leaf.key"
        self.leaf_serial = self.n

    def _key(self, name):
        openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                "-out", "%s.key" % name, cwd=self.d)
        os.chmod(self.d / ("%s.key" % name), 0o600)

    def _selfsigned(self, name, subj):
        self._key(name)
        self.n += 1
        openssl("req", "-x509", "-new", "-config", "x.cnf", "-extensions", "root", "-key",
                "%s.key" % name, "-subj", subj, "-days", 30, "-sha256", "-set_serial", self.n,
                "-out", "%s.pem" % name, cwd=self.d)
        return self.d / ("%s.pem" % name)

    def _sign(self, name, csr, issuer, section):
        self.n += 1
        openssl("x509", "-req", "-in", csr, "-CA", "%s.pem" % issuer, "-CAkey", "%s.key" % issuer,
                "-set_serial", self.n, "-days", 25, "-sha256", "-extfile", "x.cnf",
                "-extensions", section, "-out", "%s.pem" % name, cwd=self.d)
        return self.d / ("%s.pem" % name)

    def lookalikes(self, tag, count, issuer, section):
        """`count` more certificates of Paths CA, each by `issuer` with extensions `section`."""
        return [self._sign("%s-twin%d" % (tag, i), "ca.csr", issuer, section)
                for i in range(count)]

    def bundle(self, name, *certs):
        """A chain file: the leaf, then the certificates given, in that order."""
        path = self.d / ("%s.pem" % name)
        path.write_bytes(b"".join(Path(c).read_bytes() for c in (self.leaf, *certs)))
        return path

    @staticmethod
    def serial(cert):
        h = openssl("x509", "-in", cert, "-noout", "-serial").decode().split("=", 1)[1].strip()
        h = h.upper()
        if len(h) % 2:
            h = "0" + h
        return ":".join(h[i:i + 2] for i in range(0, len(h), 2))


@pytest.fixture(scope="module")
def paths(tmp_path_factory):
    return PathPKI(tmp_path_factory.mktemp("paths-pki"))


def show(p):
    return "command: %s\nexit: %s\nstdout: %r\nstderr: %r" % (
        " ".join(map(str, p.args)), p.returncode, p.stdout, p.stderr)


def verify(run, paths, chain, *flags):
    return run("cert", "verify", "--trusted", paths.root, "--purpose", "client", *flags, chain)


def test_cross_signed_first_match_leads_to_an_untrusted_root(run, paths):
    """The first certificate of Paths CA in the bundle is the one Paths Other Root signed;
    OpenSSL alone refuses (unknown CA), duet finds the path through the trusted root."""
    chain = paths.bundle("cross", paths.by_other, paths.other, paths.by_root)
    p = verify(run, paths, chain, "--format", "json")
    assert p.returncode == 0, show(p)
    out = json.loads(p.stdout)
    assert out["valid"] is True, show(p)
    # Whatever the order of the bundle.
    chain = paths.bundle("cross-rev", paths.by_root, paths.by_other, paths.other)
    p = verify(run, paths, chain)
    assert p.returncode == 0 and p.stdout.startswith("valid:"), show(p)


def test_constrained_twin_first_and_an_open_twin_after(run, paths):
    chain = paths.bundle("nc-first", paths.nc, paths.by_root)
    p = verify(run, paths, chain)
    assert p.returncode == 0 and p.stdout.startswith("valid:"), show(p)
    # The constrained twin alone: refused for its constraints, no other path to try.
    p = verify(run, paths, paths.bundle("nc-only", paths.nc), "--format", "json")
    assert p.returncode == 1, show(p)
    out = json.loads(p.stdout)
    assert out["code"] == "name_constraints", show(p)
    assert "certification path" not in out["error"], show(p)


def test_no_path_validates_reports_the_one_that_reached_the_trusted_root(run, paths):
    """First match: by-other (to an untrusted root, unknown CA); the other path reaches the
    trusted root but its CA excludes the leaf's name: that refusal is the one reported."""
    chain = paths.bundle("none", paths.by_other, paths.other, paths.nc)
    p = verify(run, paths, chain, "--format", "json")
    assert p.returncode == 1, show(p)
    out = json.loads(p.stdout)
    assert out["valid"] is False and out["code"] == "name_constraints", show(p)
    want = ("certificate CN=paths.example,O=Paths Test (serial %s) has a name outside the name "
            "constraints of %s (serial %s)" % (paths.serial(paths.leaf), CA_NAME,
                                                paths.serial(paths.nc)))
    assert out["error"].startswith(want), show(p)
    assert out["error"].endswith("; 1 other certification path was tried, none valid"), show(p)
    assert out["error"] == p.stderr.strip(), show(p)


def test_lookalikes_that_cannot_reach_the_trusted_root_are_not_followed(run, paths):
    """40 certificates of Paths CA by the untrusted root before the good one: none of them
    names a trusted certificate up its chain, so none is followed (RFC 4158 3.5)."""
    twins = paths.lookalikes("other", 40, "other", "ca")
    chain = paths.bundle("many-other", *twins, paths.other, paths.by_root)
    p = verify(run, paths, chain)
    assert p.returncode == 0 and p.stdout.startswith("valid:"), show(p)


def test_many_candidate_issuers_are_bounded(run, paths):
    """40 certificates of Paths CA by the trusted root, each excluding the leaf's name, before
    the good one: the search follows at most 8 candidates per certificate, stops, refuses at
    once and says why (the good one, 41st, is beyond the bound)."""
    twins = paths.lookalikes("nc", 40, "root", "ca_nc")
    chain = paths.bundle("many-nc", *twins, paths.by_root)
    start = time.monotonic()
    p = verify(run, paths, chain, "--format", "json")
    elapsed = time.monotonic() - start
    assert p.returncode == 1, show(p)
    out = json.loads(p.stdout)
    assert out["code"] == "name_constraints", show(p)
    reason = p.stderr.strip()
    assert "\n" not in reason and reason == out["error"], show(p)
    assert reason.startswith(
        "certificate CN=paths.example,O=Paths Test (serial %s) has a name outside the name "
        "constraints of %s (serial %s)" % (paths.serial(paths.leaf), CA_NAME,
                                           paths.serial(twins[0]))), show(p)
    assert reason.endswith("; path building stopped at its bounds (8 issuers per certificate, "
                           "32 paths, 128 signatures) after 7 other certification paths, "
                           "none valid"), show(p)
    assert elapsed < 5, "took %.1f s" % elapsed
    # Within the bound, the good certificate is found.
    chain = paths.bundle("some-nc", *twins[:5], paths.by_root)
    p = verify(run, paths, chain)
    assert p.returncode == 0 and p.stdout.startswith("valid:"), show(p)


# --- the proxy: the same verdicts from the one verification path --------------------------

@pytest.fixture(scope="module")
def proxy(dpki, paths, module_procs, echo, tmp_path_factory):
    """HTTP mode in front of the echo upstream, clients from Paths Root only, any verified
    client allowed (a refusal must come from verification)."""
    workdir = tmp_path_factory.mktemp("paths-proxy-run")
    port = free_port()
    log = workdir / "proxy.log"
    p = module_procs.start([dpki.duet_bin, "proxy", "--listen", "127.0.0.1:%d" % port,
                            "--target", "127.0.0.1:%d" % echo.port,
                            "--cert", dpki.server_crt, "--key", dpki.server_key,
                            "--cacert", paths.root, "--allow", "any", "--log", log],
                           "paths-proxy")
    dl = DuetLog(log, p, module_procs)
    dl.wait_event("start", timeout=10)
    return port, dl


def test_proxy_client_bundle_with_the_wrong_first_issuer(dpki, paths, proxy, echo, run):
    port, log = proxy
    chain = paths.bundle("proxy-cross", paths.by_other, paths.other, paths.by_root)
    mark = log.mark()
    status, body, conn = https_request(port, "/hello",
                                       client_context(dpki.roots, chain, paths.leaf_key))
    conn.close()
    assert status == 200, body
    hs = log.wait_event("handshake", mark, result="ok")
    assert hs["identity"]["name"] == "paths.example", hs
    # A second connection with the same bundle: the chain cache gives the same verdict.
    mark = log.mark()
    status, body, conn = https_request(port, "/hello",
                                       client_context(dpki.roots, chain, paths.leaf_key))
    conn.close()
    assert status == 200, body
    log.wait_event("handshake", mark, result="ok")


def test_proxy_refusal_is_the_cli_sentence(dpki, paths, proxy, echo, run):
    port, log = proxy
    chain = paths.bundle("proxy-none", paths.by_other, paths.other, paths.nc)
    requests_before = len(echo.requests)
    mark = log.mark()
    kind, detail = refused_attempt(port, client_context(dpki.roots, chain, paths.leaf_key))
    assert kind != "response", "a refused client got an answer: %r" % detail
    ev = log.wait_event("handshake", mark, result="failed")
    p = verify(run, paths, chain)
    assert p.returncode == 1, show(p)
    assert ev["reason"] == p.stderr.strip(), (ev, show(p))
    assert ev["reason"].endswith("; 1 other certification path was tried, none valid"), ev
    assert len(echo.requests) == requests_before
