# SPDX-License-Identifier: Apache-2.0
"""duet's OCSP responder, offline: `duet ocsp respond` answering requests that `openssl ocsp`
makes, and `openssl ocsp` checking the answers.

A CA made with `duet ca init`, certificates issued and revoked with the CLI; each answer must
verify with the root as the trust anchor ("Response verify OK") and say good, revoked (with the
reason and time) or unknown as the inventory does, at once after a revocation.  The delegated
OCSP signer that answers is in `duet cert list` under its own profile, and a second run reuses
it.
"""

import datetime as dt
import os
import re
import subprocess

import pytest

from conftest import show


def openssl_ocsp(*args):
    p = subprocess.run(["openssl", "ocsp", *map(str, args)], capture_output=True, text=True,
                       timeout=30)
    return p


def make_request(ca, out, *certs, nonce=False, sha256=False):
    args = ["-issuer", ca.issuing]
    if sha256:
        args = ["-sha256"] + args
    for c in certs:
        args += ["-cert", c]
    args += ["-reqout", out]
    if not nonce:
        args.append("-no_nonce")
    p = openssl_ocsp(*args)
    assert p.returncode == 0, p.stderr
    return out


def respond(ca, req, resp, *extra):
    return ca.duet("ocsp", "respond", "--ca-dir", ca.dir, "--request", req, "--out", resp,
                   "--passphrase-file", ca.passfile, *extra)


def check(ca, resp, *certs, reqin=None):
    """`openssl ocsp -respin` with the root as the trust anchor; the combined output."""
    args = ["-respin", resp, "-CAfile", ca.root]
    if reqin is not None:
        args += ["-reqin", reqin]  # checks the nonce against the request's
    else:
        args += ["-no_nonce", "-issuer", ca.issuing]
        for c in certs:
            args += ["-cert", c]
    args.append("-resp_text")
    p = openssl_ocsp(*args)
    out = p.stdout + p.stderr
    assert p.returncode == 0, out
    assert "Response verify OK" in out, out
    return out


@pytest.fixture
def ocsp_ca(make_ca):
    ca = make_ca("Ocsp Corp")
    good, _, _ = ca.issued("web", "server", "--san", "dns:web.internal")
    bad, _, bad_serial = ca.issued("old", "server", "--san", "dns:old.internal")
    p = ca.duet("cert", "revoke", bad_serial, "--ca-dir", ca.dir, "--reason", "keyCompromise")
    assert p.returncode == 0, show(p)
    return ca, good, bad


def test_good_revoked_and_signer_in_inventory(ocsp_ca, tmp_path):
    ca, good, bad = ocsp_ca
    req = make_request(ca, tmp_path / "req.der", good, bad)
    resp = tmp_path / "resp.der"
    p = respond(ca, req, resp)
    assert p.returncode == 0, show(p)
    assert "issued the OCSP signer" in p.stdout, show(p)
    assert "wrote %s: successful, 1 good, 1 revoked, 0 unknown, no nonce" % resp in p.stdout
    out = check(ca, resp, good, bad)
    assert "%s: good" % good in out, out
    m = re.search(re.escape(str(bad)) + r": revoked\n(.*\n){2}\s*Reason: keyCompromise\n"
                  r"\s*Revocation Time: \w+ +\d+ [\d:]+ \d{4} GMT", out)
    assert m, out
    # Signed by a delegated signer: OCSP Signing, nocheck, in the inventory.
    assert "OCSP Signing" in out and "OCSP No Check" in out, out
    rows = ca.list()
    signers = [r for r in rows if r["profile"] == "ocsp-signer"]
    assert len(signers) == 1, rows
    assert signers[0]["name"] == "Ocsp Corp OCSP responder", signers
    assert signers[0]["status"] == "valid", signers
    assert (ca.dir / "ocsp-signer.crt").is_file()
    key = ca.dir / "ocsp-signer.key"
    assert os.stat(key).st_mode & 0o777 == 0o600
    assert key.read_text().startswith("-----BEGIN ENCRYPTED PRIVATE KEY-----")
    # The table shows it too, for an operator.
    t = ca.duet("cert", "list", "--ca-dir", ca.dir)
    assert "ocsp-signer" in t.stdout, show(t)
    # The signer lives days and is renewed by the CA: a 30-day expiry check does not list it
    # (only the client certificate, which lives less), the Prometheus gauge still shows it.
    e = ca.duet("cert", "expiring", "--ca-dir", ca.dir, "--within", "30d")
    assert "ocsp-signer" not in e.stdout + e.stderr, show(e)
    e = ca.duet("cert", "expiring", "--ca-dir", ca.dir, "--within", "30d", "--format",
                "prometheus")
    assert 'profile="ocsp-signer"' in e.stdout, show(e)

    # A second run reuses the signer: no new row.
    p = respond(ca, req, tmp_path / "resp2.der")
    assert p.returncode == 0, show(p)
    assert "issued the OCSP signer" not in p.stdout, show(p)
    assert len([r for r in ca.list() if r["profile"] == "ocsp-signer"]) == 1


def test_unknown_serial_and_sha256(ocsp_ca, tmp_path):
    ca, good, _ = ocsp_ca
    # A serial the CA never issued, under the CA's issuer hashes.
    req = tmp_path / "req.der"
    p = openssl_ocsp("-issuer", ca.issuing, "-serial", "0x1234567890ABCDEF", "-reqout", req,
                     "-no_nonce")
    assert p.returncode == 0, p.stderr
    resp = tmp_path / "resp.der"
    p = respond(ca, req, resp)
    assert p.returncode == 0, show(p)
    assert "0 good, 0 revoked, 1 unknown" in p.stdout, show(p)
    p = openssl_ocsp("-respin", resp, "-CAfile", ca.root, "-no_nonce", "-issuer", ca.issuing,
                     "-serial", "0x1234567890ABCDEF")
    out = p.stdout + p.stderr
    assert "Response verify OK" in out and "0x1234567890ABCDEF: unknown" in out, out

    # SHA-256 CertIDs are answered with SHA-256.
    req = make_request(ca, tmp_path / "req256.der", good, sha256=True)
    p = respond(ca, req, resp)
    assert p.returncode == 0, show(p)
    p = openssl_ocsp("-respin", resp, "-CAfile", ca.root, "-no_nonce", "-sha256", "-issuer",
                     ca.issuing, "-cert", good, "-resp_text")
    out = p.stdout + p.stderr
    assert "Response verify OK" in out and "%s: good" % good in out, out
    assert "Hash Algorithm: sha256" in out, out


def test_nonce_is_echoed(ocsp_ca, tmp_path):
    ca, good, _ = ocsp_ca
    req = make_request(ca, tmp_path / "req.der", good, nonce=True)
    resp = tmp_path / "resp.der"
    p = respond(ca, req, resp)
    assert p.returncode == 0, show(p)
    assert "nonce echoed" in p.stdout, show(p)
    out = check(ca, resp, reqin=req)
    assert "Cert Status: good" in out and "OCSP Nonce" in out, out
    assert "Nonce Verify error" not in out, out


def test_revocation_shows_in_the_next_response(ocsp_ca, tmp_path):
    ca, good, _ = ocsp_ca
    req = make_request(ca, tmp_path / "req.der", good)
    resp = tmp_path / "resp.der"
    assert respond(ca, req, resp).returncode == 0
    assert "%s: good" % good in check(ca, resp, good)
    p = ca.duet("cert", "revoke", good, "--ca-dir", ca.dir, "--reason", "superseded")
    assert p.returncode == 0, show(p)
    p = respond(ca, req, resp)
    assert p.returncode == 0, show(p)
    out = check(ca, resp, good)
    assert "%s: revoked" % good in out and "Reason: superseded" in out, out


def test_other_ca_is_unauthorized_and_garbage_is_malformed(ocsp_ca, make_ca, tmp_path):
    ca, _, _ = ocsp_ca
    other = make_ca("Other Corp")
    crt, _, _ = other.issued("x", "server", "--san", "dns:x.internal")
    req = make_request(other, tmp_path / "req.der", crt)
    resp = tmp_path / "resp.der"
    p = respond(ca, req, resp)
    assert p.returncode == 1, show(p)
    assert "wrote %s: unauthorized" % resp in p.stdout, show(p)
    assert "another issuer" in p.stderr, show(p)
    p = openssl_ocsp("-respin", resp, "-resp_text", "-noverify")
    assert "unauthorized" in (p.stdout + p.stderr), p.stdout + p.stderr

    junk = tmp_path / "junk.der"
    junk.write_bytes(b"\x30\x82\xff\xff not an OCSP request")
    p = respond(ca, junk, resp)
    assert p.returncode == 1, show(p)
    assert "malformedRequest" in p.stdout and "not one DER OCSPRequest" in p.stderr, show(p)
    p = openssl_ocsp("-respin", resp, "-resp_text", "-noverify")
    assert "malformedrequest" in (p.stdout + p.stderr).lower(), p.stdout + p.stderr


def test_usage_and_validity(ocsp_ca, tmp_path):
    ca, good, _ = ocsp_ca
    p = ca.duet("ocsp", "respond", "--ca-dir", ca.dir)
    assert p.returncode == 2 and "--request FILE" in p.stderr, show(p)
    p = ca.duet("ocsp", "respond", "--ca-dir", ca.dir, "--request", "x", "--out", "y",
                "--validity", "soon")
    assert p.returncode == 2 and "--validity" in p.stderr, show(p)
    req = make_request(ca, tmp_path / "req.der", good)
    resp = tmp_path / "resp.der"
    p = respond(ca, req, resp, "--validity", "10m")
    assert p.returncode == 0, show(p)
    out = check(ca, resp, good)
    this = re.search(r"This Update: (.*)\n", out).group(1)
    nxt = re.search(r"Next Update: (.*)\n", out).group(1)
    fmt = "%b %d %H:%M:%S %Y GMT"
    parse = lambda s: dt.datetime.strptime(" ".join(s.split()), fmt)  # noqa: E731
    assert (parse(nxt) - parse(this)).total_seconds() == 600, out
    # Without the passphrase nothing is signed.
    p = ca.duet("ocsp", "respond", "--ca-dir", ca.dir, "--request", req, "--out",
                tmp_path / "none.der")
    assert p.returncode == 1 and "passphrase" in p.stderr, show(p)
    assert not (tmp_path / "none.der").exists()
