# SPDX-License-Identifier: Apache-2.0
"""DSA-signed CRLs: refused by default in `duet cert verify`, `duet proxy` and `duet tunnel`
(flags and YAML) with a sentence naming the file, the algorithm and the flag; accepted with
`--insecure-crl-signature dsa` / `insecure_crl_signature: dsa`, where a DSA CRL-signing
certificate of the CA's name (not a CA of the chain) may sign the CA's CRLs."""

import datetime as dt
import ssl
import subprocess

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec

from indirectpki import NOW, ca_cert, crl, leaf_cert, name
from proxyutil import client_context
from test_cert_verify import assert_bad_input, assert_invalid, assert_valid
from test_proxy import _get_once, proxy_args, start_duet

REFUSAL = ("the CRL of CN=Legacy CA,O=Duet Indirect is signed with dsa_with_SHA256 (DSA), a "
           "legacy algorithm duet refuses by default; to accept it, pass "
           "--insecure-crl-signature dsa (YAML insecure_crl_signature: dsa)")


def pem(path, *objs):
    path.write_bytes(b"".join(o.public_bytes(serialization.Encoding.PEM) for o in objs))
    return path


class LegacyPKI:
    """Root (EC) -> "Legacy CA" (EC) -> leaves; the CA's CRLs are signed by a DSA 2048
    CRL-signing certificate of the same name under the root."""

    def __init__(self, d):
        k_root = ec.generate_private_key(ec.SECP256R1())
        root = ca_cert(name("Legacy Root"), k_root)
        k_ca = ec.generate_private_key(ec.SECP256R1())
        ca = ca_cert(name("Legacy CA"), k_ca, root.subject, k_root)
        k_dsa = dsa.generate_private_key(2048)
        signer = (x509.CertificateBuilder().subject_name(ca.subject).issuer_name(root.subject)
                  .public_key(k_dsa.public_key()).serial_number(x509.random_serial_number())
                  .not_valid_before(NOW - dt.timedelta(days=1))
                  .not_valid_after(NOW + dt.timedelta(days=90))
                  .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                  .add_extension(x509.KeyUsage(False, False, False, False, False, False, True,
                                               False, False), critical=True)
                  .add_extension(x509.SubjectKeyIdentifier.from_public_key(k_dsa.public_key()),
                                 critical=False)
                  .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                      k_root.public_key()), critical=False)
                  .sign(k_root, hashes.SHA256()))
        self.root = pem(d / "root.pem", root)
        self.cacert = pem(d / "root-and-signer.pem", root, signer)
        self.untrusted = pem(d / "untrusted.pem", ca, signer)
        self.leaves = {}
        for label, serial in (("good", 0x51), ("revoked", 0x52)):
            cert, key = leaf_cert(label + ".example", serial, ca, k_ca)
            self.leaves[label] = (pem(d / (label + ".pem"), cert),
                                  pem(d / (label + "-chain.pem"), cert, ca), d / (label + ".key"))
            self.leaves[label][2].write_bytes(key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption()))
            self.leaves[label][2].chmod(0o600)
        self.dsa_crl = pem(d / "legacy-dsa.crl",
                           crl(ca.subject, k_dsa, [(0x52, None, True)], indirect=False))
        self.root_crl = pem(d / "root.crl", crl(root.subject, k_root, [], indirect=False))


@pytest.fixture(scope="module")
def lpki(tmp_path_factory):
    return LegacyPKI(tmp_path_factory.mktemp("legacy-crl"))


def verify(run, lpki, label, *extra):
    return run("cert", "verify", "--trusted", lpki.root, "--untrusted", lpki.untrusted,
               "--purpose", "client", "--crl", lpki.dsa_crl, "--crl", lpki.root_crl, *extra,
               lpki.leaves[label][0])


def test_cert_verify_refuses_dsa_crl_by_default(run, lpki):
    p = verify(run, lpki, "good")
    assert_bad_input(p, lpki.dsa_crl, REFUSAL)


def test_cert_verify_accepts_dsa_crl_with_the_flag(run, lpki):
    assert_valid(verify(run, lpki, "good", "--insecure-crl-signature", "dsa"))
    assert_invalid(verify(run, lpki, "revoked", "--insecure-crl-signature", "dsa"), "52",
                   "was revoked on", "by the CRL of CN=Legacy CA")
    p = run("cert", "verify", "--insecure-crl-signature", "md5", "--trusted", lpki.root,
            lpki.leaves["good"][0])
    assert p.returncode == 2 and '--insecure-crl-signature "md5": expected dsa' in p.stderr, p


RULES = "    rules:\n      - name: any\n        allow: [any]\n"


def check(duet_bin, *args):
    return subprocess.run([str(duet_bin), *map(str, args), "--check"], capture_output=True,
                          text=True, timeout=30)


@pytest.mark.parametrize("cmd", ["proxy", "tunnel"])
def test_proxy_and_tunnel_flags_and_yaml(dpki, lpki, tmp_path, cmd):
    base = ["--listen", "127.0.0.1:0", "--target", "127.0.0.1:9", "--cert", dpki.server_crt,
            "--key", dpki.server_key, "--cacert", lpki.cacert, "--crl", lpki.dsa_crl]
    base += ["--allow", "any"] if cmd == "proxy" else ["--server-name", "localhost"]
    p = check(dpki.duet_bin, cmd, *base)
    assert p.returncode != 0 and REFUSAL in p.stderr and str(lpki.dsa_crl) in p.stderr, p
    p = check(dpki.duet_bin, cmd, *base, "--insecure-crl-signature", "dsa")
    assert p.returncode == 0 and "configuration OK" in p.stdout, p
    for value, ok in (("dsa", True), ("none", False)):
        cfg = tmp_path / ("%s-%s.yaml" % (cmd, value))
        cfg.write_text("""\
listeners:
  - name: l
    listen: 127.0.0.1:0
    cert: %s
    key: %s
    cacert: %s
    crl: [%s]
    insecure_crl_signature: %s
    target: [127.0.0.1:9]
%s""" % (dpki.server_crt, dpki.server_key, lpki.cacert, lpki.dsa_crl, value,
         RULES if cmd == "proxy" else "    server_name: localhost\n"))
        p = check(dpki.duet_bin, cmd, "--config", cfg)
        if ok:
            assert p.returncode == 0 and "configuration OK" in p.stdout, p
        else:
            assert p.returncode != 0 and REFUSAL in p.stderr, p


def test_proxy_with_the_flag_revokes_by_the_dsa_crl(dpki, lpki, procs, fresh_echo, tmp_path):
    args = proxy_args(dpki, "127.0.0.1:%d" % fresh_echo.port, "--allow", "any",
                      "--insecure-crl-signature", "dsa", crl=lpki.dsa_crl, roots=lpki.cacert)
    args += ["--crl", lpki.root_crl]
    d = start_duet(procs, dpki.duet_bin, tmp_path / "p", "proxy", args, "legacy")
    _, chain, key = lpki.leaves["good"]
    status, _, _ = _get_once(d.port, client_context(dpki.roots, chain, key))
    assert status == b"HTTP/1.1 200 OK"
    _, chain, key = lpki.leaves["revoked"]
    mark = d.log.mark()
    with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
        status, _, _ = _get_once(d.port, client_context(dpki.roots, chain, key))
        assert not status.startswith(b"HTTP/1.1 200")
        raise ConnectionError("refused without an exception")
    hs = d.log.wait_event("handshake", mark, result="failed")
    assert "was revoked on" in hs["reason"] and hs["reason_code"] == "revoked", hs
