# SPDX-License-Identifier: Apache-2.0
"""Revocation at scale: `duet proxy` with a CRL of 200,000 revoked serials refuses the revoked
client and lets the others in, and a reload to a new large CRL happens while handshakes go on,
without a single failed handshake; `duet cert verify` reads the same CRL.

The large CRLs are written by build/tests/mkcrl (signed by the test CA's issuing key); the
root's CRL comes from `duet crl generate`, as in a real bundle."""

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from proxyutil import CA_PASSPHRASE, EchoUpstream, Procs, ProxyPKI, client_context, \
    https_request, refused_attempt
from test_proxy import proxy_args, start_duet

ENTRIES = 200000


@pytest.fixture(scope="module")
def mkcrl(duet_bin):
    p = Path(os.environ.get("DUET_MKCRL", str(Path(duet_bin).parent / "tests" / "mkcrl")))
    if not p.is_file():
        pytest.fail("mkcrl not found at %s (it is built with the tests)" % p, pytrace=False)
    return p


@pytest.fixture(scope="module")
def pki(duet_bin, tmp_path_factory):
    return ProxyPKI(duet_bin, tmp_path_factory.mktemp("revscale-pki"))


def root_crl_block(pki):
    """The root CA's CRL: the second PEM block of `duet crl generate`'s bundle."""
    text = pki.crl.read_text()
    marker = "-----BEGIN X509 CRL-----"
    blocks = [marker + b for b in text.split(marker)[1:]]
    assert len(blocks) == 2, "expected the issuing CRL then the root CRL"
    return blocks[1]


def big_crl(mkcrl, pki, out, revoked):
    """A CRL of the issuing CA with ENTRIES random serials plus `revoked`, then the root CRL."""
    tmp = Path(str(out) + ".issuing")
    argv = [str(mkcrl), "--cert", str(pki.ca / "issuing.crt"), "--key",
            str(pki.ca / "issuing.key"), "--pass-env", "DUET_CA_PASSPHRASE", "--count",
            str(ENTRIES), "--out", str(tmp)]
    for crt in revoked:
        argv += ["--revoke", str(crt)]
    p = subprocess.run(argv, capture_output=True, text=True, timeout=60,
                       env=dict(os.environ, DUET_CA_PASSPHRASE=CA_PASSPHRASE))
    assert p.returncode == 0, p.stderr
    staged = Path(str(out) + ".new")
    staged.write_text(tmp.read_text() + root_crl_block(pki))
    os.replace(staged, out)  # the proxy never sees half a file
    tmp.unlink()
    return out


def test_cert_verify_reads_a_large_crl(run, mkcrl, pki, tmp_path):
    crl = big_crl(mkcrl, pki, tmp_path / "big.pem", [pki.mallory_crt])
    p = run("cert", "verify", "--trusted", pki.roots, "--purpose", "client", "--crl", crl,
            pki.mallory_crt)
    assert p.returncode == 1, p.stdout + p.stderr
    assert "CN=mallory" in p.stderr and "was revoked on" in p.stderr
    assert "reason: keyCompromise" in p.stderr and "by the CRL of CN=Test Corp Issuing CA" \
        in p.stderr
    p = run("cert", "verify", "--trusted", pki.roots, "--purpose", "client", "--crl", crl,
            pki.alice_crt)
    assert p.returncode == 0, p.stderr


def bench_json(p):
    out, err = p.communicate(timeout=60)
    assert out, err
    return json.loads(out), err


def test_proxy_reloads_a_large_crl_while_handshakes_continue(mkcrl, pki, tmp_path):
    procs = Procs(tmp_path)
    up = EchoUpstream()
    try:
        crl = big_crl(mkcrl, pki, tmp_path / "crl.pem", [pki.mallory_crt])
        d = start_duet(procs, str(pki.duet_bin), tmp_path / "proxy", "proxy",
                       proxy_args(pki, "127.0.0.1:%d" % up.port, "--allow", "any",
                                  "--workers", "1", crl=crl), "revscale")
        alice = client_context(pki.roots, pki.alice_crt, pki.alice_key)
        status, _, _ = https_request(d.port, "/before", alice)
        assert status == 200

        mallory = client_context(pki.roots, pki.mallory_crt, pki.mallory_key)
        kind, _ = refused_attempt(d.port, mallory)
        assert kind != "response"
        fail = d.log.wait(lambda e: e.get("event") == "handshake" and e.get("result") == "failed",
                          what="mallory's refused handshake")
        assert "CN=mallory" in fail["reason"] and "was revoked on" in fail["reason"], fail

        # Full handshakes from alice, while the CRL is replaced by a new large one that also
        # revokes bob, and the proxy reloads it.
        bench = subprocess.Popen(
            [str(pki.duet_bin), "bench", "--target", "127.0.0.1:%d" % d.port, "--server-name",
             "localhost", "--cacert", str(pki.roots), "--cert", str(pki.alice_crt), "--key",
             str(pki.alice_key), "--mode", "full", "--threads", "1", "--concurrency", "2",
             "--duration", "5s", "--warmup", "0s", "--format", "json"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(1.0)
        mark = d.log.mark()
        big_crl(mkcrl, pki, crl, [pki.mallory_crt, pki.bob_crt])
        d.proc.send_signal(signal.SIGHUP)
        reloads = d.log.wait_reloads_settled(mark, timeout=20)
        assert reloads[-1]["result"] == "ok", reloads
        r, err = bench_json(bench)
        assert bench.returncode == 0, (r, err)
        assert r["errors_total"] == 0 and r["completed"] > 0, r

        # The new CRL is in force: bob is refused, alice still gets in.
        bob = client_context(pki.roots, pki.bob_crt, pki.bob_key)
        mark = d.log.mark()
        kind, _ = refused_attempt(d.port, bob)
        assert kind != "response"
        fail = d.log.wait(lambda e: e.get("event") == "handshake" and
                          e.get("result") == "failed", mark=mark, what="bob's refused handshake")
        assert "CN=bob" in fail["reason"] and "was revoked on" in fail["reason"], fail
        status, _, _ = https_request(d.port, "/after", alice)
        assert status == 200
    finally:
        procs.close()
        up.close()


def test_crl_not_signed_by_its_issuer_is_refused(run, mkcrl, pki, tmp_path):
    """A CRL that names the issuing CA but is signed by another key (here, Other Corp's issuing
    key) does not count: the check says so instead of treating the client as not revoked."""
    forged = tmp_path / "forged.pem"
    p = subprocess.run([str(mkcrl), "--cert", str(pki.ca / "issuing.crt"), "--key",
                        str(pki.other_ca / "issuing.key"), "--pass-env", "DUET_CA_PASSPHRASE",
                        "--count", "10", "--out", str(forged)],
                       capture_output=True, text=True, timeout=60,
                       env=dict(os.environ, DUET_CA_PASSPHRASE=CA_PASSPHRASE))
    assert p.returncode == 0, p.stderr
    forged.write_text(forged.read_text() + root_crl_block(pki))
    p = run("cert", "verify", "--trusted", pki.roots, "--purpose", "client", "--crl", forged,
            pki.alice_crt)
    assert p.returncode == 1, p.stdout + p.stderr
    assert "the CRL naming CN=Test Corp Issuing CA" in p.stderr
    assert "is not signed by that CA's key" in p.stderr and "CN=alice" in p.stderr
