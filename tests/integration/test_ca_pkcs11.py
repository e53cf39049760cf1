# SPDX-License-Identifier: Apache-2.0
"""The issuing CA's key in a PKCS#11 token (docs/ca-ha.md "Keys in an HSM"), with a real
SoftHSM2 token made in a temporary directory (SOFTHSM2_CONF) by softhsm2-util and an EC P-256
key made in it by pkcs11-tool.

What a user checks: `duet ca init --key-uri` leaves no issuing key file, the certificates, CRLs
and OCSP answers verify with openssl against the token's public key, and a wrong PIN or a URI
naming nothing gives a clear sentence that names the token or URI and never the PIN.
"""

import os
import shutil
import subprocess

import pytest

from conftest import show
from test_ca_serve import CAServer, enroll, ocsp_status, openssl

MODULE = "/usr/lib/softhsm/libsofthsm2.so"
PIN = "246810"
SO_PIN = "13579111"


def need(tool, package):
    if shutil.which(tool) is None:
        pytest.fail("%s is missing: install Debian's %s (scripts/deps.sh does)" % (tool, package),
                    pytrace=False)


class Token:
    """A SoftHSM2 token "duet-ca" in tmp_path with an EC P-256 key "issuing" (id 01)."""

    def __init__(self, base, monkeypatch):
        need("softhsm2-util", "softhsm2")
        need("pkcs11-tool", "opensc")
        if not os.path.exists(MODULE):
            pytest.fail("%s is missing: install Debian's softhsm2" % MODULE, pytrace=False)
        self.base = base
        (base / "tokens").mkdir()
        conf = base / "softhsm2.conf"
        conf.write_text("directories.tokendir = %s\nobjectstore.backend = file\n"
                        "log.level = ERROR\n" % (base / "tokens"))
        monkeypatch.setenv("SOFTHSM2_CONF", str(conf))
        monkeypatch.setenv("DUET_PKCS11_PIN", PIN)
        self.sh("softhsm2-util", "--init-token", "--free", "--label", "duet-ca", "--pin", PIN,
                "--so-pin", SO_PIN)
        self.sh("pkcs11-tool", "--module", MODULE, "--token-label", "duet-ca", "--login",
                "--pin", PIN, "--keypairgen", "--key-type", "EC:prime256v1", "--label", "issuing",
                "--id", "01")
        self.uri = "pkcs11:token=duet-ca;object=issuing?module-path=" + MODULE

    def sh(self, *args):
        p = subprocess.run(args, capture_output=True, text=True)
        assert p.returncode == 0, show(p)
        return p

    def public_key_pem(self):
        der = subprocess.run(["pkcs11-tool", "--module", MODULE, "--token-label", "duet-ca",
                              "--read-object", "--type", "pubkey", "--label", "issuing"],
                             capture_output=True, check=True).stdout
        return openssl("pkey", "-pubin", "-inform", "DER", inp=der).stdout.decode()


@pytest.fixture
def token(tmp_path, monkeypatch):
    return Token(tmp_path, monkeypatch)


@pytest.fixture
def hsm_ca(token, make_ca):
    ca = make_ca("HSM Corp", "--key-uri", token.uri)
    ca.token = token
    return ca


def cert_pubkey(path):
    return openssl("x509", "-in", path, "-noout", "-pubkey").stdout.decode()


def private_key_files(d):
    return sorted(f.name for f in d.iterdir() if f.is_file() and b"PRIVATE KEY" in f.read_bytes())


def test_init_and_issue_through_the_token_with_no_issuing_key_file(hsm_ca):
    ca = hsm_ca
    # The issuing certificate certifies the token's key; the only key file is the root's.
    assert cert_pubkey(ca.issuing) == ca.token.public_key_pem()
    assert private_key_files(ca.dir) == ["root.key"]
    assert not (ca.dir / "issuing.key").exists()
    yaml = (ca.dir / "ca.yaml").read_text()
    assert 'key_uri: "%s"' % ca.token.uri in yaml and PIN not in yaml, yaml
    p = openssl("verify", "-CAfile", ca.root, ca.issuing)
    assert p.returncode == 0, p
    crt, key, serial = ca.issued("web1", "server", "--san", "dns:web1.corp.example")
    p = openssl("verify", "-CAfile", ca.root, "-untrusted", ca.issuing, "-purpose", "sslserver",
                crt)
    assert p.returncode == 0 and b"OK" in p.stdout, p
    assert ca.row(serial)["status"] == "valid"
    # Still no issuing key on disk after issuing.
    assert private_key_files(ca.dir) == ["root.key"]


def test_revocation_and_crl_signed_by_the_token(hsm_ca, tmp_path):
    ca = hsm_ca
    crt, _, serial = ca.issued("gone", "client")
    p = ca.duet("cert", "revoke", serial, "--ca-dir", ca.dir, "--reason", "keyCompromise")
    assert p.returncode == 0, show(p)
    p = ca.crl(tmp_path / "ca.crl")
    assert p.returncode == 0, show(p)
    p = openssl("crl", "-in", tmp_path / "ca.crl", "-CAfile", ca.issuing, "-noout", "-text")
    assert b"verify OK" in p.stderr + p.stdout, p
    assert serial.replace(":", "") in p.stdout.decode().replace(":", "").upper(), p.stdout
    p = openssl("verify", "-crl_check", "-CRLfile", tmp_path / "ca.crl", "-CAfile", ca.root,
                "-untrusted", ca.issuing, crt)
    assert p.returncode != 0 and b"certificate revoked" in p.stdout + p.stderr, p


def test_wrong_pin_names_the_token_never_the_pin(hsm_ca):
    ca = hsm_ca
    before = len(ca.list())
    p = ca.duet("cert", "issue", "web2", "--profile", "server", "--ca-dir", ca.dir, "--out",
                ca.out, "--passphrase-file", ca.passfile, env={"DUET_PKCS11_PIN": "999111"})
    assert p.returncode == 1, show(p)
    assert 'token "duet-ca": the PIN was refused (wrong PIN)' in p.stderr, show(p)
    assert "999111" not in p.stderr + p.stdout and PIN not in p.stderr + p.stdout
    assert len(ca.list()) == before
    # No PIN at all: what to set.
    p = ca.duet("crl", "generate", "--ca-dir", ca.dir, "--out", ca.base / "x.crl",
                "--passphrase-file", ca.passfile, env={"DUET_PKCS11_PIN": None})
    assert p.returncode == 1 and 'token "duet-ca" needs its PIN' in p.stderr, show(p)
    assert "DUET_PKCS11_PIN" in p.stderr


@pytest.mark.parametrize("edit,want", [
    (("token=duet-ca", "token=absent"), 'no such token in %s (tokens present: "duet-ca")' % MODULE),
    (("object=issuing", "object=absent"), 'token "duet-ca" holds no private key of that object'),
])
def test_missing_token_or_key_names_the_uri(hsm_ca, edit, want):
    ca = hsm_ca
    y = ca.dir / "ca.yaml"
    y.write_text(y.read_text().replace(edit[0], edit[1]))
    p = ca.issue("web3", "server", "--san", "dns:web3.corp.example")
    assert p.returncode == 1, show(p)
    uri = ca.token.uri.replace(edit[0], edit[1])
    assert (uri + ": ") in p.stderr and want in p.stderr, show(p)
    assert PIN not in p.stderr


def test_init_refuses_a_uri_naming_nothing_and_leaves_no_ca(token, run_env, tmp_path):
    from conftest import DuetCA
    ca = DuetCA(run_env, tmp_path / "x", "Nothing Corp")
    p = ca.init("--key-uri", token.uri.replace("object=issuing", "object=nope"))
    assert p.returncode == 1, show(p)
    assert "holds no private key of that object label" in p.stderr, show(p)
    assert not (ca.dir / "ca.yaml").exists() and not (ca.dir / "root.key").exists()
    # A PIN in the URI is refused, and not repeated.
    p = ca.init("--key-uri", token.uri + "&pin-value=" + PIN)
    assert p.returncode == 1 and "pin-value is not accepted" in p.stderr, show(p)
    assert PIN not in p.stderr
    # A wrong PIN at init: nothing is made.
    p = ca.init("--key-uri", token.uri, env={"DUET_PKCS11_PIN": "000000"})
    assert p.returncode == 1 and "the PIN was refused" in p.stderr, show(p)
    assert not (ca.dir / "ca.yaml").exists()


def test_rsa_key_by_id_weak_key_refused_and_a_foreign_key_named(token, make_ca, run_env,
                                                                tmp_path):
    from conftest import DuetCA
    for label, kid, kind in (("rsaca", "02", "rsa:2048"), ("weak", "03", "rsa:1024")):
        token.sh("pkcs11-tool", "--module", MODULE, "--token-label", "duet-ca", "--login",
                 "--pin", PIN, "--keypairgen", "--key-type", kind, "--label", label, "--id", kid)
    # An RSA key named by its CKA_ID alone.
    ca = make_ca("RSA HSM Corp", "--key-uri",
                 "pkcs11:token=duet-ca;id=%02?module-path=" + MODULE)
    assert "Public-Key: (2048 bit)" in openssl("x509", "-in", ca.issuing, "-noout",
                                               "-text").stdout.decode()
    crt, _, _ = ca.issued("r1", "server", "--san", "dns:r1.corp.example")
    assert openssl("verify", "-CAfile", ca.root, "-untrusted", ca.issuing, crt).returncode == 0
    # A key too weak to certify is refused before anything is made.
    weak = DuetCA(run_env, tmp_path / "w", "Weak Corp")
    p = weak.init("--key-uri", "pkcs11:token=duet-ca;object=weak?module-path=" + MODULE)
    assert p.returncode == 1, show(p)
    assert "the token's key cannot be a CA key: the subject's key is RSA 1024" in p.stderr
    assert not weak.dir.exists() or not any(weak.dir.iterdir())
    # ca.yaml pointed at another key of the token: named, nothing signed.
    y = ca.dir / "ca.yaml"
    y.write_text(y.read_text().replace("id=%02", "object=issuing"))
    p = ca.issue("r2", "server", "--san", "dns:r2.corp.example")
    assert p.returncode == 1, show(p)
    assert ("pkcs11:token=duet-ca;object=issuing?module-path=%s: the token's key does not "
            "belong to %s/issuing.crt" % (MODULE, ca.dir)) in p.stderr, show(p)


def test_pin_file_recorded_as_pin_source(token, run_env, tmp_path, monkeypatch):
    from conftest import DuetCA
    monkeypatch.delenv("DUET_PKCS11_PIN")
    pin = tmp_path / "pin"
    pin.write_text(PIN + "\n")
    os.chmod(pin, 0o600)
    ca = DuetCA(run_env, tmp_path / "p", "Pinfile Corp")
    p = ca.init("--key-uri", token.uri, "--pin-file", pin)
    assert p.returncode == 0, show(p)
    yaml = (ca.dir / "ca.yaml").read_text()
    assert "pin-source=file:%s" % pin in yaml and PIN not in yaml, yaml
    crt, _, _ = ca.issued("db1", "server", "--san", "dns:db1.corp.example")
    assert openssl("verify", "-CAfile", ca.root, "-untrusted", ca.issuing, crt).returncode == 0
    os.chmod(pin, 0o644)
    p = ca.issue("db2", "server", "--san", "dns:db2.corp.example")
    assert p.returncode == 1, show(p)
    assert "%s: the PIN file is readable by group or others (mode 644)" % pin in p.stderr


def test_ca_serve_enrolls_and_signs_crl_and_ocsp_through_the_token(hsm_ca, duet_bin):
    ca = hsm_ca
    srv = CAServer(duet_bin, ca).start()
    try:
        crt, key, ans = enroll(srv, "host-a")
        p = openssl("verify", "-CAfile", ca.root, "-untrusted", ca.issuing, crt)
        assert p.returncode == 0, p
        out = ocsp_status(srv, crt)
        assert "Response verify OK" in out and ": good" in out, out
        st, _, rv = srv.request("POST", "/v1/revoke", {"serial": ans["serial"],
                                                       "reason": "superseded"},
                                cert=crt, key=key)
        assert st == 200, rv
        st, _, der = srv.request("GET", "/crl", tls=False)
        assert st == 200
        (ca.base / "served.crl").write_bytes(der)
        p = openssl("crl", "-inform", "DER", "-in", ca.base / "served.crl", "-CAfile",
                    ca.issuing, "-noout", "-text")
        assert b"verify OK" in p.stdout + p.stderr, p
        assert ans["serial"].replace(":", "") in p.stdout.decode().replace(":", "").upper()
        out = ocsp_status(srv, crt)
        assert "Response verify OK" in out and ": revoked" in out, out
        # The server's TLS key and the delegated OCSP signer's key are files (encrypted with
        # the CA passphrase); the issuing key stays in the token.
        assert private_key_files(ca.dir) == ["ca-server.key", "ocsp-signer.key", "root.key"]
        assert not (ca.dir / "issuing.key").exists()
    finally:
        srv.stop()
    assert PIN not in (ca.base / "ca-serve.stderr").read_text()
    assert PIN not in srv.log.read_text()


def test_an_existing_issuing_key_moved_into_a_token(token, make_ca, tmp_path):
    """The manual route docs/ca-ha.md leaves for tokens that `duet ca import-key` cannot write
    to (a key put in by another tool, then `key_uri:` added by hand): the key file is decrypted
    with openssl, written into the token with pkcs11-tool, `key_uri:` added to ca.yaml and
    issuing.key removed; the CA goes on issuing under the same issuing certificate, and a URI
    naming another key of the token is refused, naming it.  `duet ca import-key` itself is
    tested in test_ca_pkcs11_objects.py."""
    ca = make_ca("Moving Corp")
    _, _, before = ca.issued("before", "server", "--san", "dns:before.corp.example")
    issuing_pub = cert_pubkey(ca.issuing)
    der, pub = tmp_path / "issuing.der", tmp_path / "issuing.pub.der"
    p = openssl("pkey", "-in", ca.dir / "issuing.key", "-passin", "file:%s" % ca.passfile,
                "-outform", "DER", "-out", der)
    assert p.returncode == 0, p
    p = openssl("pkey", "-in", der, "-inform", "DER", "-pubout", "-outform", "DER", "-out", pub)
    assert p.returncode == 0, p
    for f, kind in ((der, "privkey"), (pub, "pubkey")):
        token.sh("pkcs11-tool", "--module", MODULE, "--token-label", "duet-ca", "--login",
                 "--pin", PIN, "--write-object", str(f), "--type", kind, "--label", "moved",
                 "--id", "02")
    der.unlink()
    yaml = ca.dir / "ca.yaml"
    kept = yaml.read_text()
    # First a URI naming the token's other key (not this CA's): refused, nothing issued.
    yaml.write_text(kept + 'key_uri: "%s"\n' % token.uri)
    (ca.dir / "issuing.key").rename(tmp_path / "issuing.key.bak")
    n = len(ca.list())
    p = ca.issue("wrong", "server", "--san", "dns:wrong.corp.example")
    assert p.returncode == 1, show(p)
    assert "%s: the token's key does not belong to %s/issuing.crt" % (token.uri, ca.dir) \
        in p.stderr, show(p)
    assert len(ca.list()) == n and not (ca.out / "wrong.crt").exists()
    # The key moved: issued under the same issuing certificate, no issuing key file.
    uri = token.uri.replace("object=issuing", "object=moved")
    yaml.write_text(kept + 'key_uri: "%s"\n' % uri)
    crt, _, serial = ca.issued("after", "server", "--san", "dns:after.corp.example")
    p = openssl("verify", "-CAfile", ca.root, "-untrusted", ca.issuing, "-purpose", "sslserver",
                crt)
    assert p.returncode == 0 and b"OK" in p.stdout, p
    assert cert_pubkey(ca.issuing) == issuing_pub
    assert ca.row(serial)["status"] == "valid" and ca.row(before)["status"] == "valid"
    assert private_key_files(ca.dir) == ["root.key"]
    p = ca.crl(tmp_path / "after.crl")
    assert p.returncode == 0, show(p)
    p = openssl("crl", "-in", tmp_path / "after.crl", "-CAfile", ca.issuing, "-noout")
    assert b"verify OK" in p.stderr + p.stdout, p
