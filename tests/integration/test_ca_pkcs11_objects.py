# SPDX-License-Identifier: Apache-2.0
"""Key objects duet makes in a PKCS#11 token (docs/ca-ha.md "CA keys in an HSM"), against a real
SoftHSM2 token in a temporary directory: `duet ca init --generate-key` makes the issuing key pair
in the token, `duet ca import-key` moves an existing CA's issuing.key into it.

What a user checks: no issuing key file in the CA directory (or only the renamed, encrypted
backup after an import), certificates and CRLs that verify with openssl, a private key the token
marks sensitive and not extractable with signing as its only use, a key or label already in the
token never overwritten, and a refused or failed step that leaves the CA as it was.
"""

import os
import re
import subprocess

import pytest

from conftest import DuetCA, show
from test_ca_pkcs11 import MODULE, PIN, cert_pubkey, private_key_files, token  # noqa: F401
from test_ca_serve import CAServer, enroll, ocsp_status, openssl

CA_FLAGS = {"p256": "ecdsa-with-SHA256", "p384": "ecdsa-with-SHA384",
            "rsa3072": "sha256WithRSAEncryption"}


def uri(label, kid=None):
    path = "token=duet-ca;object=%s" % label + (";id=%%%s" % kid if kid else "")
    return "pkcs11:%s?module-path=%s" % (path, MODULE)


def objects(tok):
    """pkcs11-tool's listing of the token's objects, one dict per object (label, kind, the
    Usage and Access lines)."""
    p = tok.sh("pkcs11-tool", "--module", MODULE, "--token-label", "duet-ca", "--login", "--pin",
               PIN, "--list-objects")
    out = []
    for block in re.split(r"\n(?=\S)", p.stdout):
        if "Key Object" not in block:
            continue
        field = dict(re.findall(r"^\s+(\w+):\s*(.*)$", block, re.M))
        out.append({"kind": "private" if block.startswith("Private") else "public",
                    "label": field.get("label", ""), "usage": field.get("Usage", ""),
                    "access": field.get("Access", ""), "point": field.get("EC_POINT", "")})
    return out


def token_matches_cert(tok, label, cert):
    """Whether the token's public key of that label is cert's: the EC point pkcs11-tool lists
    (it cannot read a P-384 public key out), or the RSA public key it reads."""
    text = openssl("x509", "-in", cert, "-noout", "-text").stdout.decode()
    m = re.search(r"pub:\n((?:\s+[0-9a-f:]+\n)+)", text)
    if m is None:
        return cert_pubkey(cert) == token_pubkey(tok, label)
    point = re.sub(r"[\s:]", "", m.group(1))
    pubs = [o for o in objects(tok) if o["label"] == label and o["kind"] == "public"]
    # CKA_EC_POINT is the DER OCTET STRING holding the point: 04, its length, the point.
    return len(pubs) == 1 and pubs[0]["point"][4:] == point


def token_pubkey(tok, label):
    der = subprocess.run(["pkcs11-tool", "--module", MODULE, "--token-label", "duet-ca",
                          "--read-object", "--type", "pubkey", "--label", label],
                         capture_output=True, check=True).stdout
    return openssl("pkey", "-pubin", "-inform", "DER", inp=der).stdout.decode()


def issue_and_verify(ca, name):
    crt, _, serial = ca.issued(name, "server", "--san", "dns:%s.corp.example" % name)
    p = openssl("verify", "-CAfile", ca.root, "-untrusted", ca.issuing, "-purpose", "sslserver",
                crt)
    assert p.returncode == 0 and b"OK" in p.stdout, p
    return crt, serial


@pytest.mark.parametrize("key_type,kid", [("p256", "11"), ("p384", "12"), ("rsa3072", "13")])
def test_init_generates_the_issuing_key_in_the_token(token, make_ca, key_type, kid):  # noqa: F811
    label = "gen-" + key_type
    ca = make_ca("Gen Corp", "--key-type", key_type, "--key-uri", uri(label, kid),
                 "--generate-key")
    # No issuing key file: the only key file is the root's.
    assert private_key_files(ca.dir) == ["root.key"]
    assert not (ca.dir / "issuing.key").exists()
    assert 'key_uri: "%s"' % uri(label, kid) in (ca.dir / "ca.yaml").read_text()
    # issuing.crt certifies the key the token made, and signs with it.
    assert token_matches_cert(token, label, ca.issuing)
    crt, serial = issue_and_verify(ca, "web1")
    text = openssl("x509", "-in", crt, "-noout", "-text").stdout.decode()
    assert "Signature Algorithm: %s" % CA_FLAGS[key_type] in text, text
    assert ca.row(serial)["status"] == "valid"
    # The token holds the private key as sensitive, never extractable, made inside it, for
    # signing only; its public half beside it under the same label.
    mine = [o for o in objects(token) if o["label"] == label]
    assert sorted(o["kind"] for o in mine) == ["private", "public"], mine
    priv = [o for o in mine if o["kind"] == "private"][0]
    assert priv["access"] == "sensitive, always sensitive, never extractable, local", priv
    assert priv["usage"] == "sign", priv


def test_generate_key_never_overwrites_an_object_of_the_token(token, run_env, tmp_path):  # noqa: F811
    before = token.public_key_pem()
    n = len(objects(token))
    ca = DuetCA(run_env, tmp_path / "x", "Taken Corp")
    # The label of the key pkcs11-tool made.
    p = ca.init("--key-uri", uri("issuing"), "--generate-key")
    assert p.returncode == 1, show(p)
    assert ('duet ca init: %s: token "duet-ca" already holds an object labelled "issuing"; '
            'refusing to make another key under that label (name a new object=)'
            % uri("issuing")) in p.stderr, show(p)
    # Its id, under a new label.
    p = ca.init("--key-uri", uri("fresh", "01"), "--generate-key")
    assert p.returncode == 1, show(p)
    assert ('%s: token "duet-ca" already holds an object with that id; refusing to make '
            'another key under it (name a new id=)' % uri("fresh", "01")) in p.stderr, show(p)
    # ed25519 cannot sign through libp11: refused before the token is touched.
    p = ca.init("--key-type", "ed25519", "--key-uri", uri("ed"), "--generate-key")
    assert p.returncode == 1, show(p)
    assert "--generate-key: an ed25519 key in a token cannot sign through libp11; expected " \
        "--key-type p256, p384 or rsa3072" in p.stderr, show(p)
    # --generate-key alone is a usage error.
    p = ca.init("--generate-key")
    assert p.returncode == 2 and "--generate-key goes with --key-uri" in p.stderr, show(p)
    assert token.public_key_pem() == before and len(objects(token)) == n
    assert not (ca.dir / "ca.yaml").exists()


def test_generated_key_removed_when_init_fails_after_making_it(token, run_env, tmp_path):  # noqa: F811
    """The store cannot be reached: init fails after the key pairs were made (issuing, root,
    OCSP signer), and removes them, so that the same command (fixed) can run again."""
    ca = DuetCA(run_env, tmp_path / "x", "Retry Corp")
    n = len(objects(token))
    p = ca.init("--key-uri", uri("retry", "21"), "--root-key-uri", uri("retry-root", "22"),
                "--ocsp-key-uri", uri("retry-ocsp", "23"), "--generate-key",
                "--store", "postgres://duet@127.0.0.1:1/nothing")
    assert p.returncode == 1, show(p)
    assert not [o for o in objects(token) if o["label"].startswith("retry")], objects(token)
    assert len(objects(token)) == n
    assert not (ca.dir / "ca.yaml").exists()
    p = ca.init("--key-uri", uri("retry", "21"), "--generate-key")
    assert p.returncode == 0, show(p)
    issue_and_verify(ca, "after-retry")


def import_key(ca, key_uri, *extra, **kw):
    return ca.duet("ca", "import-key", "--ca-dir", ca.dir, "--key-uri", key_uri,
                   "--passphrase-file", ca.passfile, *extra, **kw)


@pytest.mark.parametrize("key_type,kid", [("p256", "31"), ("p384", "32"), ("rsa3072", "33")])
def test_import_key_moves_the_issuing_key_into_the_token(token, make_ca, tmp_path,  # noqa: F811
                                                         monkeypatch, key_type, kid):
    ca = make_ca("Moving Corp", "--key-type", key_type)
    _, before = issue_and_verify(ca, "before")
    issuing_pub = cert_pubkey(ca.issuing)
    monkeypatch.delenv("DUET_PKCS11_PIN")
    pin = tmp_path / "pin"
    pin.write_text(PIN + "\n")
    os.chmod(pin, 0o600)
    label = "moved-" + key_type
    p = import_key(ca, uri(label, kid), "--pin-file", pin)
    assert p.returncode == 0, show(p)
    assert ("%s/issuing.key is now %s/issuing-offline.key, still encrypted with the CA "
            "passphrase: move it offline as a backup, or shred it" % (ca.dir, ca.dir)) \
        in p.stdout, show(p)
    # ca.yaml signs through the token, the PIN from the file; the old key file is the
    # renamed, still encrypted backup.
    yaml = (ca.dir / "ca.yaml").read_text()
    assert 'key_uri: "%s&pin-source=file:%s"' % (uri(label, kid), pin) in yaml, yaml
    assert PIN not in yaml
    assert private_key_files(ca.dir) == ["issuing-offline.key", "root.key"]
    assert (ca.dir / "issuing-offline.key").read_text().startswith(
        "-----BEGIN ENCRYPTED PRIVATE KEY-----")
    # The token holds this CA's key, sensitive and not extractable, for signing only.
    assert token_matches_cert(token, label, ca.issuing)
    priv = [o for o in objects(token) if o["label"] == label and o["kind"] == "private"]
    assert len(priv) == 1 and priv[0]["usage"] == "sign", priv
    assert "sensitive" in priv[0]["access"] and "extractable" not in priv[0]["access"], priv
    # The CA goes on under the same issuing certificate, without the key file.
    (ca.dir / "issuing-offline.key").rename(tmp_path / "offline.key")
    _, after = issue_and_verify(ca, "after")
    assert cert_pubkey(ca.issuing) == issuing_pub
    assert ca.row(before)["status"] == "valid" and ca.row(after)["status"] == "valid"
    p = ca.crl(tmp_path / "after.crl")
    assert p.returncode == 0, show(p)
    p = openssl("crl", "-in", tmp_path / "after.crl", "-CAfile", ca.issuing, "-noout")
    assert b"verify OK" in p.stderr + p.stdout, p
    # Done once: a second import is refused.
    p = import_key(ca, uri(label + "-again", "3f"))
    assert p.returncode == 1, show(p)
    assert "%s/ca.yaml: the issuing key is already in a token" % ca.dir in p.stderr, show(p)


def test_import_key_refused_leaves_the_ca_on_its_file(token, make_ca, tmp_path):  # noqa: F811
    ca = make_ca("Staying Corp")
    yaml = (ca.dir / "ca.yaml").read_text()
    key = (ca.dir / "issuing.key").read_bytes()
    n = len(objects(token))
    cases = [
        # A label the token already uses: never overwritten.
        ((uri("issuing"),), {},
         '%s: token "duet-ca" already holds an object labelled "issuing"' % uri("issuing")),
        # A wrong PIN names the token, never the PIN.
        ((uri("new", "41"),), {"env": {"DUET_PKCS11_PIN": "999111"}},
         'token "duet-ca": the PIN was refused (wrong PIN)'),
        # No such token.
        ((uri("new", "41").replace("token=duet-ca", "token=absent"),), {},
         'no such token in %s (tokens present: "duet-ca")' % MODULE),
    ]
    for args, kw, want in cases:
        p = import_key(ca, *args, **kw)
        assert p.returncode == 1, show(p)
        assert want in p.stderr, show(p)
        assert "999111" not in p.stderr and PIN not in p.stderr
    # A wrong CA passphrase: the key file cannot be read.
    bad = tmp_path / "bad.pass"
    bad.write_text("not the passphrase at all\n")
    os.chmod(bad, 0o600)
    p = ca.duet("ca", "import-key", "--ca-dir", ca.dir, "--key-uri", uri("new", "41"),
                "--passphrase-file", bad)
    assert p.returncode == 1, show(p)
    # issuing.key of another CA (the same passphrase): refused before the token is touched.
    other = make_ca("Other Corp")
    (ca.dir / "issuing.key").rename(tmp_path / "mine.key")
    (ca.dir / "issuing.key").write_bytes((other.dir / "issuing.key").read_bytes())
    os.chmod(ca.dir / "issuing.key", 0o600)
    p = import_key(ca, uri("new", "41"))
    assert p.returncode == 1, show(p)
    assert ("%s/issuing.key does not belong to %s/issuing.crt; nothing was imported"
            % (ca.dir, ca.dir)) in p.stderr, show(p)
    (tmp_path / "mine.key").replace(ca.dir / "issuing.key")
    # Nothing changed: the token, ca.yaml, issuing.key; the CA still signs with its file.
    assert len(objects(token)) == n
    assert (ca.dir / "ca.yaml").read_text() == yaml
    assert (ca.dir / "issuing.key").read_bytes() == key
    assert not (ca.dir / "issuing-offline.key").exists()
    issue_and_verify(ca, "still")


def test_import_key_refuses_an_ed25519_key_before_touching_the_token(token, make_ca):  # noqa: F811
    ca = make_ca("Edwards Corp", "--key-type", "ed25519")
    n = len(objects(token))
    p = import_key(ca, uri("ed", "51"))
    assert p.returncode == 1, show(p)
    assert ("%s: the key is Ed25519; a token key for duet is EC P-256, P-384 or "
            "RSA 2048+" % uri("ed", "51")) in p.stderr, show(p)
    assert len(objects(token)) == n and (ca.dir / "issuing.key").exists()


def test_ocsp_signer_key_in_the_token_signs_ca_serve_answers(token, make_ca, duet_bin):  # noqa: F811
    """`ca init --ocsp-key-uri ... --generate-key`: the delegated OCSP signer's key is made in
    the token beside the issuing key; `duet ca serve` certifies it and answers OCSP through it
    (one libp11 context for both keys), and no ocsp-signer.key is ever written."""
    ca = make_ca("Ocsp Corp", "--key-uri", uri("o-issuing", "61"), "--ocsp-key-uri",
                 uri("o-ocsp", "62"), "--generate-key")
    assert 'ocsp_key_uri: "%s"' % uri("o-ocsp", "62") in (ca.dir / "ca.yaml").read_text()
    srv = CAServer(duet_bin, ca).start()
    try:
        crt, key, ans = enroll(srv, "host-o")
        out = ocsp_status(srv, crt)
        assert "Response verify OK" in out and ": good" in out, out
        # The answer's signer is the delegated certificate, whose key is the token's o-ocsp.
        assert (ca.dir / "ocsp-signer.crt").exists()
        assert token_matches_cert(token, "o-ocsp", ca.dir / "ocsp-signer.crt")
        assert not token_matches_cert(token, "o-issuing", ca.dir / "ocsp-signer.crt")
        st, _, rv = srv.request("POST", "/v1/revoke", {"serial": ans["serial"],
                                                       "reason": "superseded"},
                                cert=crt, key=key)
        assert st == 200, rv
        out = ocsp_status(srv, crt)
        assert "Response verify OK" in out and ": revoked" in out, out
    finally:
        srv.stop()
    # Keys in files: the root's and the server's TLS key only.
    assert private_key_files(ca.dir) == ["ca-server.key", "root.key"]
    priv = [o for o in objects(token) if o["label"] == "o-ocsp" and o["kind"] == "private"]
    assert len(priv) == 1 and "never extractable" in priv[0]["access"], priv
    assert PIN not in (ca.base / "ca-serve.stderr").read_text()


def test_ocsp_key_uri_naming_nothing_refused_at_init(token, run_env, tmp_path):  # noqa: F811
    ca = DuetCA(run_env, tmp_path / "x", "Nokey Corp")
    p = ca.init("--key-uri", uri("issuing"), "--ocsp-key-uri", uri("absent"))
    assert p.returncode == 1, show(p)
    assert '%s: token "duet-ca" holds no private key of that object label' % uri("absent") \
        in p.stderr, show(p)
    assert not (ca.dir / "ca.yaml").exists()
    p = ca.init("--ocsp-key-uri", "file:/x")
    assert p.returncode == 2 and "--ocsp-key-uri: expected a PKCS#11 URI" in p.stderr, show(p)


def root_crl_verifies(ca, tmp_path):
    p = ca.duet("crl", "generate", "--root", "--ca-dir", ca.dir, "--out", tmp_path / "r.crl",
                "--passphrase-file", ca.passfile)
    assert p.returncode == 0, show(p)
    p = openssl("crl", "-in", ca.dir / "root.crl", "-CAfile", ca.root, "-noout")
    assert b"verify OK" in p.stdout + p.stderr, p


def test_every_ca_key_in_the_token_and_no_key_file(token, make_ca, tmp_path):  # noqa: F811
    """`--root-key-uri`, `--key-uri` and `--ocsp-key-uri` with `--generate-key`: the root
    certifies itself and the issuing CA through the token, `crl generate --root` signs through
    it (the same libp11 context as the issuing key), and the CA directory holds no private key."""
    ca = make_ca("Tokens Corp", "--root-key-uri", uri("t-root", "71"), "--key-uri",
                 uri("t-issuing", "72"), "--ocsp-key-uri", uri("t-ocsp", "73"), "--generate-key")
    assert private_key_files(ca.dir) == []
    assert 'root_key_uri: "%s"' % uri("t-root", "71") in (ca.dir / "ca.yaml").read_text()
    assert token_matches_cert(token, "t-root", ca.root)
    assert token_matches_cert(token, "t-issuing", ca.issuing)
    assert openssl("verify", "-CAfile", ca.root, ca.issuing).returncode == 0
    issue_and_verify(ca, "all-token")
    root_crl_verifies(ca, tmp_path)
    assert private_key_files(ca.dir) == []


def test_root_key_in_the_token_issuing_key_in_a_file(token, make_ca, run_env,  # noqa: F811
                                                     tmp_path):
    # The key pkcs11-tool made ("issuing", id 01) serves as the root key.
    ca = make_ca("Root Token Corp", "--root-key-uri", uri("issuing"))
    assert private_key_files(ca.dir) == ["issuing.key"]
    assert cert_pubkey(ca.root) == token.public_key_pem()
    issue_and_verify(ca, "file-issuing")
    root_crl_verifies(ca, tmp_path)
    # --offline-root has no file to take away: refused, nothing made.
    other = DuetCA(run_env, tmp_path / "o", "Offline Corp")
    p = other.init("--root-key-uri", uri("issuing"), "--offline-root")
    assert p.returncode == 1, show(p)
    assert "--root-key-uri and --offline-root: the root key stays in its token; there is no " \
        "key file to take offline" in p.stderr, show(p)
    assert not (other.dir / "ca.yaml").exists()
