# SPDX-License-Identifier: Apache-2.0
"""duet's private CA from the command line: ca init/roots, cert issue/sign/list/show/renew/
revoke/export/expiring and crl generate.

What a user checks: the exit status, the one message on stderr (naming the file, field or
serial and what was expected), the files written (and, on refusal, that nothing was written
and the inventory gained no row), and the certificates' contents as openssl reads them.
The CA under test is made fresh by `make_ca` (conftest.py) for each test that changes it.
"""

import datetime as dt
import hashlib
import json
import os
import pwd
import re
import sqlite3
import stat
import subprocess
import time
from pathlib import Path

import pytest

from pki import colon_hex, openssl

SERIAL_RE = r"[0-9A-F]{2}(?::[0-9A-F]{2}){7,19}"


# --- helpers --------------------------------------------------------------------------------

def show(p):
    return "command: %s\nexit: %s\nstdout: %r\nstderr: %r" % (
        " ".join(map(str, p.args)), p.returncode, p.stdout, p.stderr)


def assert_ok(p, *needles):
    assert p.returncode == 0, show(p)
    for n in needles:
        assert n in p.stdout, "expected %r on stdout\n%s" % (n, show(p))


def assert_refused(p, *needles):
    """Non-zero exit and one clear message on stderr that contains every needle."""
    assert p.returncode != 0, "expected a refusal\n" + show(p)
    msg = p.stderr.strip()
    assert msg, "expected a message on stderr\n" + show(p)
    first = msg.splitlines()[0]
    for n in needles:
        assert n.lower() in first.lower(), "expected %r in the first stderr line\n%s" % (n, show(p))
    return first


def text(*args):
    return openssl(*args).decode()


def x509_text(cert):
    return text("x509", "-in", cert, "-noout", "-text")


def serial_of(cert):
    out = text("x509", "-in", cert, "-noout", "-serial").strip()
    return colon_hex(out.split("=", 1)[1])


def ext(cert, name):
    """The lines of one extension as `openssl x509 -ext` prints them ('' when absent)."""
    p = subprocess.run(["openssl", "x509", "-in", str(cert), "-noout", "-ext", name],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    return p.stdout


def sans(cert):
    out = ext(cert, "subjectAltName").splitlines()
    if len(out) < 2:
        return []
    return [s.strip().replace("IP Address:", "IP:") for s in out[1].split(",")]


def pem_blocks(path, kind="CERTIFICATE"):
    data = Path(path).read_text()
    return re.findall(r"-----BEGIN %s-----.*?-----END %s-----\n?" % (kind, kind), data, re.S)


def pubkey(path, is_key=False):
    if is_key:
        return text("pkey", "-in", path, "-pubout")
    return text("x509", "-in", path, "-noout", "-pubkey")


def not_after(cert):
    out = text("x509", "-in", cert, "-noout", "-enddate").strip().split("=", 1)[1]
    return dt.datetime.strptime(" ".join(out.split()), "%b %d %H:%M:%S %Y %Z").replace(
        tzinfo=dt.timezone.utc)


def parse_rfc3339(s):
    return dt.datetime.strptime(s, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.timezone.utc)


def now():
    return dt.datetime.now(dt.timezone.utc)


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def listing(directory):
    """Every file under a directory with its bytes, to prove a refusal wrote nothing."""
    d = Path(directory)
    return {str(f.relative_to(d)): f.read_bytes() for f in sorted(d.rglob("*")) if f.is_file()}


def serials(ca):
    return sorted(r["serial"] for r in ca.list())


def verify(ca, cert, purpose, *extra):
    return subprocess.run(["openssl", "verify", "-purpose", purpose, "-CAfile", str(ca.root),
                           "-untrusted", str(ca.issuing), *map(str, extra), str(cert)],
                          capture_output=True, text=True)


class Unchanged:
    """Context: the out directory and the inventory are the same after the block."""

    def __init__(self, ca, *dirs):
        self.ca = ca
        self.dirs = [Path(d) for d in (dirs or (ca.out,))]

    def __enter__(self):
        self.before = [listing(d) for d in self.dirs]
        self.rows = serials(self.ca)
        return self

    def __exit__(self, *exc):
        if exc[0] is None:
            for d, before in zip(self.dirs, self.before):
                assert listing(d) == before, "a refused command wrote into %s" % d
            assert serials(self.ca) == self.rows, "a refused command added an inventory row"
        return False


@pytest.fixture
def ca(make_ca):
    return make_ca("Demo Corp")


# --- ca init and ca roots -----------------------------------------------------------------

def test_init_creates_encrypted_keys_certificates_profiles_and_inventory(ca):
    d = ca.dir
    for f in ("ca.yaml", "root.crt", "root.key", "root.crl", "issuing.crt", "issuing.key",
              "inventory.db"):
        assert (d / f).is_file(), "ca init did not write %s" % f
    for key in ("root.key", "issuing.key"):
        assert mode(d / key) == 0o600, "%s has mode %o, expected 600" % (key, mode(d / key))
        body = (d / key).read_text()
        assert body.startswith("-----BEGIN ENCRYPTED PRIVATE KEY-----"), body[:60]
        assert "BEGIN PRIVATE KEY" not in body and "BEGIN EC PRIVATE KEY" not in body

    root = x509_text(ca.root)
    assert "Subject: O = Demo Corp, CN = Demo Corp Root CA" in root, root
    assert "Issuer: O = Demo Corp, CN = Demo Corp Root CA" in root, root
    assert "CA:TRUE" in ext(ca.root, "basicConstraints")
    issuing = x509_text(ca.issuing)
    assert "Issuer: O = Demo Corp, CN = Demo Corp Root CA" in issuing, issuing
    assert "CA:TRUE, pathlen:0" in ext(ca.issuing, "basicConstraints")
    ku = ext(ca.issuing, "keyUsage")
    assert "critical" in ku and "Certificate Sign" in ku and "CRL Sign" in ku, ku
    assert "OK" in text("verify", "-CAfile", ca.root, ca.issuing)

    yaml = (d / "ca.yaml").read_text()
    for profile in ("server:", "client:", "peer:", "device:"):
        assert re.search(r"^\s+%s" % profile, yaml, re.M), "no %s profile\n%s" % (profile, yaml)
    assert "trust_domain: demo-corp" in yaml, yaml

    # SQLite, in WAL mode (header bytes 18 and 19 are 2), with the issuing CA on record.
    header = (d / "inventory.db").read_bytes()[:20]
    assert header[:16] == b"SQLite format 3\x00" and header[18:20] == b"\x02\x02", header
    rows = ca.list()
    assert [r["serial"] for r in rows] == [serial_of(ca.issuing)], rows


def test_init_refuses_without_passphrase_and_writes_nothing(run_env, tmp_path):
    p = run_env("ca", "init", "--ca-dir", tmp_path / "ca", "--name", "Demo Corp")
    msg = assert_refused(p, "passphrase")
    assert "--passphrase-file" in msg and "DUET_CA_PASSPHRASE" in msg, show(p)
    assert not (tmp_path / "ca").exists() or not any((tmp_path / "ca").iterdir())


def test_init_refuses_a_short_passphrase(run_env, tmp_path):
    p = run_env("ca", "init", "--ca-dir", tmp_path / "ca", "--name", "Demo Corp",
                env={"DUET_CA_PASSPHRASE": "seven77"})
    assert_refused(p, "at least 8")
    assert not (tmp_path / "ca").exists() or not any((tmp_path / "ca").iterdir())


def test_init_refuses_an_unreadable_passphrase_file(run_env, tmp_path):
    missing = tmp_path / "no-such-pass"
    p = run_env("ca", "init", "--ca-dir", tmp_path / "ca", "--name", "Demo Corp",
                "--passphrase-file", missing)
    assert_refused(p, str(missing))
    assert not (tmp_path / "ca").exists() or not any((tmp_path / "ca").iterdir())


def test_init_refuses_a_dns_constraint_with_a_leading_period(run_env, tmp_path):
    # RFC 5280 4.2.1.10: ".corp" is the URI/email form; duet's verifier refuses it in a DNS
    # constraint, so a CA made with it could issue nothing that verifies.
    p = run_env("ca", "init", "--ca-dir", tmp_path / "ca", "--name", "Demo Corp",
                "--permit-dns", ".corp", env={"DUET_CA_PASSPHRASE": "init passphrase"})
    assert_refused(p, '--permit-dns ".corp": a DNS name constraint has no leading period '
                      "(RFC 5280 4.2.1.10); write corp, which permits that name and every name "
                      "under it")
    assert not (tmp_path / "ca").exists() or not any((tmp_path / "ca").iterdir())


def test_passphrase_from_the_environment(run_env, tmp_path):
    env = {"DUET_CA_PASSPHRASE": "env passphrase 1"}
    cadir, out = tmp_path / "ca", tmp_path / "out"
    out.mkdir()
    assert_ok(run_env("ca", "init", "--ca-dir", cadir, "--name", "Env Org", env=env))
    assert_ok(run_env("cert", "issue", "web", "--profile", "server", "--ca-dir", cadir,
                      "--out", out, env=env), "serial")
    assert (out / "web.crt").is_file()

    p = run_env("cert", "issue", "web2", "--profile", "server", "--ca-dir", cadir,
                "--out", out, env={"DUET_CA_PASSPHRASE": "not the passphrase"})
    assert_refused(p, "wrong CA passphrase", "issuing.key")
    p = run_env("cert", "issue", "web2", "--profile", "server", "--ca-dir", cadir, "--out", out)
    assert_refused(p, "passphrase")
    assert sorted(os.listdir(out)) == ["web.crt", "web.key"]


def test_init_refuses_to_overwrite_an_existing_ca(ca):
    before = listing(ca.dir)
    p = ca.init()
    assert_refused(p, str(ca.dir), "already")
    after = listing(ca.dir)
    for f in ("root.crt", "root.key", "issuing.crt", "issuing.key", "ca.yaml"):
        assert after[f] == before[f], "%s changed" % f


@pytest.mark.parametrize("key_type, alg", [
    ("p256", "NIST CURVE: P-256"),
    ("p384", "NIST CURVE: P-384"),
    ("ed25519", "ED25519"),
    ("rsa3072", "Public-Key: (3072 bit)"),
])
def test_init_key_types_sign_verifiable_chains(make_ca, key_type, alg):
    ca = make_ca("Kt Org", "--key-type", key_type)
    for cert in (ca.root, ca.issuing):
        assert alg in x509_text(cert), "%s of a %s CA\n%s" % (cert.name, key_type, x509_text(cert))
    crt, key, serial = ca.issued("web", "server")
    p = verify(ca, crt, "sslserver")
    assert p.returncode == 0 and "OK" in p.stdout, p.stdout + p.stderr
    assert serial_of(crt) == serial


def test_offline_root_keeps_the_root_key_apart_and_the_intermediate_signs(make_ca, tmp_path):
    ca = make_ca("Offline Org", "--offline-root")
    assert not (ca.dir / "root.key").exists()
    off = ca.dir / "root-offline.key"
    assert mode(off) == 0o600
    assert off.read_text().startswith("-----BEGIN ENCRYPTED PRIVATE KEY-----")

    # The operator moves the root key away; issuing and CRLs still work.
    off.rename(tmp_path / "root-offline.key")
    crt, _, serial = ca.issued("web", "server")
    assert verify(ca, crt, "sslserver").returncode == 0
    crl = tmp_path / "crl.pem"
    assert_ok(ca.crl(crl))
    assert len(pem_blocks(crl, "X509 CRL")) == 2


def test_roots_prints_the_trust_bundle(ca):
    p = ca.duet("ca", "roots", "--ca-dir", ca.dir)
    assert_ok(p)
    blocks = re.findall(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", p.stdout, re.S)
    assert blocks == [b.strip() for b in pem_blocks(ca.root)], p.stdout
    # (That ran without any passphrase.)  A directory that holds no CA is named.
    nope = ca.base / "nope"
    assert_refused(ca.duet("ca", "roots", "--ca-dir", nope), str(nope), "ca.yaml")
    assert_refused(ca.duet("cert", "list", "--ca-dir", nope), str(nope), "ca.yaml")


def test_name_constraints_from_init_are_enforced_at_issue(make_ca):
    ca = make_ca("Acme", "--trust-domain", "acme.test", "--permit-dns", "acme.test",
                 "--permit-uri", "spiffe://acme.test/")
    nc = ext(ca.issuing, "nameConstraints")
    assert "critical" in nc and "DNS:acme.test" in nc and "acme.test" in nc.split("URI:")[1], nc

    crt, _, _ = ca.issued("www.acme.test", "server")
    assert verify(ca, crt, "sslserver").returncode == 0
    crt, _, _ = ca.issued("svc", "peer")
    assert sans(crt) == ["URI:spiffe://acme.test/svc"]

    with Unchanged(ca):
        p = ca.issue("evil.example", "server")
        assert_refused(p, "evil.example", "name constraints")


def test_trust_domain_is_derived_from_the_name_or_given(make_ca):
    crt, _, _ = make_ca("Demo Corp").issued("alice", "client")
    assert sans(crt) == ["URI:spiffe://demo-corp/alice"]
    crt, _, _ = make_ca("Demo Corp", "--trust-domain", "prod.example").issued("alice", "client")
    assert sans(crt) == ["URI:spiffe://prod.example/alice"]


# --- cert issue -----------------------------------------------------------------------------

@pytest.mark.parametrize("profile, eku, want_sans", [
    ("server", "TLS Web Server Authentication", ["DNS:web1"]),
    ("client", "TLS Web Client Authentication", ["URI:spiffe://demo-corp/web1"]),
    ("peer", "TLS Web Server Authentication, TLS Web Client Authentication",
     ["URI:spiffe://demo-corp/web1"]),
    ("device", "TLS Web Client Authentication", []),
])
def test_issue_profile_defaults(ca, profile, eku, want_sans):
    p = ca.issue("web1", profile)
    assert_ok(p)
    crt, key = ca.out / "web1.crt", ca.out / "web1.key"
    serial = serial_of(crt)
    assert re.search(r"serial %s\b" % re.escape(serial), p.stdout), show(p)

    assert mode(key) == 0o600, "key mode %o" % mode(key)
    assert pubkey(key, is_key=True) == pubkey(crt)
    blocks = pem_blocks(crt)
    assert len(blocks) == 2, "expected leaf then issuing CA in %s" % crt
    assert blocks[1].strip() == ca.issuing.read_text().strip()

    t = x509_text(crt)
    assert "Subject: O = Demo Corp, CN = web1" in t, t
    assert "Issuer: O = Demo Corp, CN = Demo Corp Issuing CA" in t, t
    assert "critical\n                CA:FALSE" in t, t
    assert ext(crt, "extendedKeyUsage").splitlines()[1].strip() == eku
    ku = ext(crt, "keyUsage")
    assert "critical" in ku and "Digital Signature" in ku, ku
    assert sans(crt) == want_sans
    purpose = "sslserver" if profile == "server" else "sslclient"
    assert verify(ca, crt, purpose).returncode == 0

    row = ca.row(serial)
    assert row["name"] == (want_sans[0].split(":", 1)[1] if profile in ("client", "peer")
                           else "web1"), row
    assert row["profile"] == profile and row["status"] == "valid", row
    assert row["subject"] == "CN=web1,O=Demo Corp", row
    assert row["sans"] == want_sans, row
    assert parse_rfc3339(row["not_after"]) == not_after(crt), row


def test_issue_with_sans_ttl_owner_location(ca):
    crt, _, serial = ca.issued("api", "server", "--san", "dns:api.internal", "--san",
                               "ip:10.1.2.3", "--ttl", "48h", "--owner", "team-payments",
                               "--location", "eu-west/k8s")
    assert sans(crt) == ["DNS:api.internal", "IP:10.1.2.3"]
    left = (not_after(crt) - now()).total_seconds()
    assert 47.9 * 3600 < left <= 48 * 3600, left
    row = ca.row(serial)
    assert (row["owner"], row["location"]) == ("team-payments", "eu-west/k8s"), row
    assert row["days_left"] in (1, 2), row
    assert row["sans"] == ["DNS:api.internal", "IP:10.1.2.3"], row


def test_issue_refuses_ttl_over_the_profile_maximum(ca):
    with Unchanged(ca):
        p = ca.issue("web", "server", "--ttl", "9000h")
        assert_refused(p, "ttl", "9000", "8760", "server")


def test_issue_refuses_a_bad_duration(ca):
    with Unchanged(ca):
        assert_refused(ca.issue("web", "server", "--ttl", "banana"), "--ttl", "banana")


def test_issue_refuses_names_the_profile_does_not_allow(ca):
    with Unchanged(ca):
        assert_refused(ca.issue("x", "client", "--san", "uri:spiffe://other.org/x"),
                       "spiffe://other.org/x", "client", "spiffe://demo-corp/")
        assert_refused(ca.issue("x", "server", "--san", "uri:spiffe://demo-corp/x"),
                       "spiffe://demo-corp/x", "server")
        assert_refused(ca.issue("x", "peer", "--san", "uri:spiffe://demo-corp/a",
                                "--san", "uri:spiffe://demo-corp/b"), "exactly one URI")
        assert_refused(ca.issue("x", "client", "--san", "dns:x.demo"), "exactly one URI")
        assert_refused(ca.issue("x", "server", "--san", "smtp:x@y"), "smtp")


def test_issue_refuses_an_unknown_profile(ca):
    with Unchanged(ca):
        assert_refused(ca.issue("x", "codesign"), "codesign")


def test_issue_refuses_a_wrong_passphrase(ca, tmp_path):
    wrong = tmp_path / "wrong.pass"
    wrong.write_text("definitely wrong\n")
    os.chmod(wrong, 0o600)
    with Unchanged(ca):
        p = ca.duet("cert", "issue", "web", "--profile", "server", "--ca-dir", ca.dir,
                    "--out", ca.out, "--passphrase-file", wrong)
        assert_refused(p, "issuing.key", "wrong CA passphrase")


def test_issue_refuses_to_overwrite_without_force(ca):
    crt, key, first = ca.issued("web", "server")
    old = (crt.read_bytes(), key.read_bytes())
    with Unchanged(ca):
        assert_refused(ca.issue("web", "server"), "web.crt", "already exists", "--force")
    assert (crt.read_bytes(), key.read_bytes()) == old
    _, _, second = ca.issued("web", "server", "--force")
    assert second != first and serial_of(crt) == second
    assert set(serials(ca)) >= {first, second}


def test_issue_refuses_an_out_directory_that_is_a_file(ca):
    # A missing --out DIR is created (test_cli_export.py); a file in its place is refused.
    (ca.base / "afile").write_text("x\n")
    with Unchanged(ca):
        assert_refused(ca.issue("web", "server", out=ca.base / "afile"), "not a directory")


def test_never_issues_past_the_issuing_ca(ca):
    yaml = ca.dir / "ca.yaml"
    yaml.write_text(yaml.read_text().replace("max_ttl: 17520h", "max_ttl: 200000h"))
    p = ca.issue("longlived", "device", "--ttl", "100000h")
    limit = not_after(ca.issuing)
    if p.returncode == 0:
        crt = ca.out / "longlived.crt"
        assert not_after(crt) <= limit, (not_after(crt), limit)
        assert "issuing CA" in p.stdout + p.stderr, "the cut is not reported\n" + show(p)
        assert parse_rfc3339(ca.row(serial_of(crt))["not_after"]) == not_after(crt)
    else:
        assert_refused(p, "issuing")
        assert not (ca.out / "longlived.crt").exists()


def test_profile_urls_from_ca_yaml_are_embedded(ca):
    yaml = ca.dir / "ca.yaml"
    y = yaml.read_text()
    y = y.replace("crl_urls: []", 'crl_urls: ["http://pki.demo.test/issuing.crl"]')
    y = y.replace("ocsp_urls: []", 'ocsp_urls: ["http://ocsp.demo.test/"]')
    yaml.write_text(y)
    crt, _, _ = ca.issued("web", "server")
    assert "URI:http://pki.demo.test/issuing.crl" in ext(crt, "crlDistributionPoints")
    assert "OCSP - URI:http://ocsp.demo.test/" in ext(crt, "authorityInfoAccess")


def test_corrupt_inventory_is_refused(ca):
    db = ca.dir / "inventory.db"
    db.write_bytes(b"this is not an sqlite database, not at all" * 100)
    for suffix in ("-wal", "-shm"):
        Path(str(db) + suffix).unlink(missing_ok=True)
    before = listing(ca.out)
    assert_refused(ca.issue("web", "server"), "inventory.db", "corrupt")
    assert listing(ca.out) == before
    p = ca.duet("cert", "list", "--ca-dir", ca.dir)
    assert_refused(p, "inventory.db", "corrupt")


def test_locked_inventory_is_refused_and_nothing_is_written(ca):
    """Another process holds the write lock past duet's busy timeout (10 s)."""
    rows = serials(ca)
    db = sqlite3.connect(str(ca.dir / "inventory.db"), isolation_level=None)
    try:
        db.execute("BEGIN EXCLUSIVE")
        p = ca.issue("web", "server")
    finally:
        db.execute("ROLLBACK")
        db.close()
    assert_refused(p, "inventory.db", "locked")
    assert listing(ca.out) == {}
    assert serials(ca) == rows


# --- cert sign ------------------------------------------------------------------------------

def make_csr(tmp_path, cn, *exts, name="req"):
    key = tmp_path / (name + ".key")
    openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", key)
    csr = tmp_path / (name + ".csr")
    args = ["req", "-new", "-key", key, "-subj", "/CN=" + cn, "-out", csr]
    for e in exts:
        args += ["-addext", e]
    openssl(*args)
    return csr, key


def test_sign_a_csr_the_ca_decides_the_extensions(ca, tmp_path):
    csr, key = make_csr(tmp_path, "api.internal", "subjectAltName=DNS:api.internal",
                        "basicConstraints=critical,CA:TRUE",
                        "extendedKeyUsage=codeSigning")
    out = tmp_path / "api.crt"
    p = ca.duet("cert", "sign", csr, "--profile", "server", "--ca-dir", ca.dir, "--out", out,
                "--passphrase-file", ca.passfile, "--owner", "team-api")
    assert_ok(p)
    serial = serial_of(out)
    assert serial in p.stdout, show(p)
    assert pubkey(key, is_key=True) == pubkey(out)
    assert len(pem_blocks(out)) == 2
    assert "CA:FALSE" in ext(out, "basicConstraints")
    assert ext(out, "extendedKeyUsage").splitlines()[1].strip() == "TLS Web Server Authentication"
    assert sans(out) == ["DNS:api.internal"]
    assert verify(ca, out, "sslserver").returncode == 0
    row = ca.row(serial)
    assert (row["name"], row["profile"], row["owner"]) == ("api.internal", "server",
                                                           "team-api"), row


def test_sign_says_which_csr_fields_it_dropped(ca, tmp_path):
    """The subject attributes, extensions and attributes a CSR asks for and the certificate
    does not carry: one line each on stderr, and the same list in --format json; the challenge
    password is named, never shown."""
    key = tmp_path / "d.key"
    openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", key)
    conf = tmp_path / "req.cnf"
    conf.write_text("[req]\nprompt = no\ndistinguished_name = dn\nattributes = attrs\n"
                    "[dn]\nC = US\nO = Evil Corp\nCN = api.internal\n"
                    "[attrs]\nchallengePassword = hunter2-secret\n")
    csr = tmp_path / "d.csr"
    openssl("req", "-new", "-key", key, "-config", conf, "-out", csr,
            "-addext", "subjectAltName=DNS:api.internal",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "extendedKeyUsage=codeSigning")
    p = ca.duet("cert", "sign", csr, "--profile", "server", "--ca-dir", ca.dir, "--out",
                tmp_path / "d.crt", "--passphrase-file", ca.passfile)
    assert_ok(p)
    lines = [x for x in p.stderr.splitlines() if "dropped from the CSR" in x]
    assert lines == [
        'duet cert sign: dropped from the CSR: subject C="US"; the CA writes the subject: the '
        "CN, O of ca.yaml, the profile's team",
        'duet cert sign: dropped from the CSR: subject O="Evil Corp"; the CA writes the '
        "subject: the CN, O of ca.yaml, the profile's team",
        'duet cert sign: dropped from the CSR: extension basicConstraints="CA:TRUE" (critical); '
        "the profile decides the extensions",
        'duet cert sign: dropped from the CSR: extension extendedKeyUsage="Code Signing"; the '
        "profile decides the extensions",
        "duet cert sign: dropped from the CSR: attribute challengePassword; CSR attributes are "
        "never used",
    ], p.stderr
    assert "hunter2" not in p.stderr + p.stdout

    p = ca.duet("cert", "sign", csr, "--profile", "server", "--ca-dir", ca.dir, "--out",
                tmp_path / "d2.crt", "--passphrase-file", ca.passfile, "--name", "api",
                "--format", "json")
    assert_ok(p)
    doc = json.loads(p.stdout)
    assert doc["serial"] == serial_of(tmp_path / "d2.crt") and doc["profile"] == "server"
    assert doc["subject"].startswith("CN=api,")
    got = [(d["kind"], d["name"], d["value"]) for d in doc["dropped"]]
    assert got == [("subject", "C", "US"), ("subject", "O", "Evil Corp"),
                   ("subject", "CN", "api.internal"),
                   ("extension", "basicConstraints", "CA:TRUE"),
                   ("extension", "extendedKeyUsage", "Code Signing"),
                   ("attribute", "challengePassword", None)], doc
    assert doc["dropped"][3]["critical"] is True
    assert len([x for x in p.stderr.splitlines() if "dropped from the CSR" in x]) == 6

    # A CSR that asks only for what the certificate holds: nothing is reported.
    plain, _ = make_csr(tmp_path, "api.internal", "subjectAltName=DNS:api.internal",
                        name="plain")
    p = ca.duet("cert", "sign", plain, "--profile", "server", "--ca-dir", ca.dir, "--out",
                tmp_path / "p.crt", "--passphrase-file", ca.passfile)
    assert_ok(p)
    assert "dropped" not in p.stderr, p.stderr


def test_sign_says_a_lower_cased_dns_name_was_signed_as_such(ca, tmp_path):
    """The CA writes DNS names in lower case: a CSR asking for DNS:API.Internal gets
    api.internal, which is that name (RFC 4343), so it is reported as signed so, not dropped."""
    csr, _ = make_csr(tmp_path, "api.internal", "subjectAltName=DNS:API.Internal", name="upper")
    p = ca.duet("cert", "sign", csr, "--profile", "server", "--ca-dir", ca.dir, "--out",
                tmp_path / "u.crt", "--passphrase-file", ca.passfile)
    assert_ok(p)
    assert sans(tmp_path / "u.crt") == ["DNS:api.internal"]
    assert ('duet cert sign: san DNS="API.Internal" signed as "api.internal"; the CA writes DNS '
            'names in lower case' in p.stderr.splitlines()), p.stderr
    assert "dropped" not in p.stderr, p.stderr

    p = ca.duet("cert", "sign", csr, "--profile", "server", "--ca-dir", ca.dir, "--out",
                tmp_path / "u2.crt", "--passphrase-file", ca.passfile, "--format", "json")
    assert_ok(p)
    doc = json.loads(p.stdout)
    assert doc["dropped"] == [], doc
    assert [(d["kind"], d["name"], d["value"], d["signed_as"]) for d in doc["changed"]] == [
        ("san", "DNS", "API.Internal", "api.internal")], doc


def test_sign_refuses_a_csr_with_a_bad_signature(ca, tmp_path):
    csr, _ = make_csr(tmp_path, "api.internal", "subjectAltName=DNS:api.internal")
    der = bytearray(openssl("req", "-in", csr, "-outform", "DER"))
    der[-6] ^= 0x5A  # inside the signature value
    bad = tmp_path / "bad.csr"
    bad.write_bytes(openssl("req", "-inform", "DER", "-outform", "PEM", input=bytes(der)))
    # (openssl 3.0 `req -verify` exits 0 either way; its message tells.)
    check = subprocess.run(["openssl", "req", "-in", str(bad), "-verify", "-noout"],
                           capture_output=True, text=True)
    assert "verify failure" in check.stderr, "the CSR should not verify: " + check.stderr
    out = tmp_path / "bad.crt"
    with Unchanged(ca):
        p = ca.duet("cert", "sign", bad, "--profile", "server", "--ca-dir", ca.dir,
                    "--out", out, "--passphrase-file", ca.passfile)
        assert_refused(p, "bad.csr", "signature")
    assert not out.exists()


def test_sign_refuses_names_not_allowed_and_ttl_over_max(ca, tmp_path):
    csr, _ = make_csr(tmp_path, "evil", "subjectAltName=URI:spiffe://other.org/evil")
    out = tmp_path / "evil.crt"
    with Unchanged(ca):
        p = ca.duet("cert", "sign", csr, "--profile", "client", "--ca-dir", ca.dir,
                    "--out", out, "--passphrase-file", ca.passfile)
        assert_refused(p, "spiffe://other.org/evil", "client")
        good, _ = make_csr(tmp_path, "ok", "subjectAltName=DNS:ok.internal", name="ok")
        p = ca.duet("cert", "sign", good, "--profile", "server", "--ca-dir", ca.dir,
                    "--out", out, "--ttl", "10000h", "--passphrase-file", ca.passfile)
        assert_refused(p, "ttl", "8760")
    assert not out.exists()


def test_sign_refuses_a_file_that_is_not_a_csr(ca, tmp_path):
    junk = tmp_path / "junk.csr"
    junk.write_text("-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n"
                    "-----END CERTIFICATE REQUEST-----\n")
    out = tmp_path / "junk.crt"
    with Unchanged(ca):
        p = ca.duet("cert", "sign", junk, "--profile", "server", "--ca-dir", ca.dir,
                    "--out", out, "--passphrase-file", ca.passfile)
        assert_refused(p, "junk.csr")
    assert not out.exists()


def test_every_signing_command_refuses_without_the_passphrase(ca, tmp_path):
    _, _, serial = ca.issued("web", "server")
    csr, _ = make_csr(tmp_path, "api.internal", "subjectAltName=DNS:api.internal")
    commands = {
        "cert issue": ["cert", "issue", "other", "--profile", "server", "--ca-dir", ca.dir,
                       "--out", ca.out],
        "cert sign": ["cert", "sign", csr, "--profile", "server", "--ca-dir", ca.dir,
                      "--out", tmp_path / "api.crt"],
        "cert renew": ["cert", "renew", serial, "--ca-dir", ca.dir, "--out", tmp_path],
        "crl generate": ["crl", "generate", "--ca-dir", ca.dir, "--out", tmp_path / "crl.pem"],
    }
    with Unchanged(ca, ca.out, tmp_path):
        for what, args in commands.items():
            p = ca.duet(*args)
            msg = assert_refused(p, "passphrase")
            assert "--passphrase-file" in msg or "DUET_CA_PASSPHRASE" in msg, (what, show(p))


# --- cert list and cert show ----------------------------------------------------------------

LIST_KEYS = {"serial", "name", "subject", "sans", "profile", "owner", "location", "not_before",
             "not_after", "days_left", "status"}


def test_list_json_csv_table_and_filters(ca):
    _, _, web = ca.issued("web", "server", "--owner", "ops", "--location", "dc1")
    _, _, alice = ca.issued("alice", "client", "--owner", "alice@demo")
    _, _, dev = ca.issued("dev", "device", "--ttl", "240h")
    assert_ok(ca.duet("cert", "revoke", dev, "--ca-dir", ca.dir, "--reason", "superseded"))

    rows = ca.list()
    for r in rows:
        # A revoked row also says who revoked it: this user, with the CLI.
        assert set(r) == LIST_KEYS | ({"revoked_by"} if r["serial"] == dev else set()), r
        if r["serial"] == dev:
            assert r["revoked_by"] == "cli:" + pwd.getpwuid(os.geteuid()).pw_name, r
        assert re.fullmatch(SERIAL_RE, r["serial"]), r["serial"]
        assert isinstance(r["days_left"], int) and isinstance(r["sans"], list), r
    by = {r["serial"]: r for r in rows}
    assert {web, alice, dev} <= set(by)
    assert by[web]["name"] == "web" and by[web]["owner"] == "ops" and by[web]["location"] == "dc1"
    assert by[alice]["name"] == "spiffe://demo-corp/alice"
    assert by[dev]["status"] == "revoked" and by[dev]["days_left"] in (9, 10), by[dev]
    for r in (by[web], by[alice]):
        left = (parse_rfc3339(r["not_after"]) - now()).total_seconds() / 86400
        assert abs(r["days_left"] - left) <= 1, r
        assert parse_rfc3339(r["not_before"]) <= now()

    assert [r["serial"] for r in ca.list("--status", "revoked")] == [dev]
    assert web in [r["serial"] for r in ca.list("--status", "valid")]
    assert dev not in [r["serial"] for r in ca.list("--status", "valid")]
    assert [r["serial"] for r in ca.list("--owner", "ops")] == [web]
    assert [r["serial"] for r in ca.list("--profile", "client")] == [alice]
    # --expiring 30d: alice (720h) and the revoked dev cert at most; not web (90 days).
    expiring = [r["serial"] for r in ca.list("--expiring", "31d")]
    assert alice in expiring and web not in expiring, expiring

    p = ca.duet("cert", "list", "--ca-dir", ca.dir, "--format", "csv")
    assert_ok(p)
    lines = p.stdout.strip().splitlines()
    assert lines[0] == "serial,name,profile,owner,location,not_after,days_left,status", lines[0]
    assert any(line.startswith(web + ",web,server,ops,dc1,") and line.endswith(",valid")
               for line in lines), lines

    p = ca.duet("cert", "list", "--ca-dir", ca.dir)
    assert_ok(p, web, alice, dev)
    dev_line = next(line for line in p.stdout.splitlines() if line.startswith(dev))
    assert dev_line.split()[-1] == "revoked", dev_line


def test_list_refuses_a_bad_filter(ca):
    assert_refused(ca.duet("cert", "list", "--ca-dir", ca.dir, "--status", "sleepy"), "sleepy")
    assert_refused(ca.duet("cert", "list", "--ca-dir", ca.dir, "--format", "xml"), "xml")


def test_list_shows_an_expired_certificate_as_expired(ca):
    _, _, serial = ca.issued("brief", "server", "--ttl", "1s")
    time.sleep(2.1)
    assert ca.row(serial)["status"] == "expired"
    assert [r["serial"] for r in ca.list("--status", "expired")] == [serial]


@pytest.mark.parametrize("form", ["colon-upper", "bare-lower", "certfile"])
def test_show_one_certificate(ca, form):
    crt, key, serial = ca.issued("web", "server", "--owner", "ops")
    arg = {"colon-upper": serial, "bare-lower": serial.replace(":", "").lower(),
           "certfile": crt}[form]
    p = ca.duet("cert", "show", arg, "--ca-dir", ca.dir, "--format", "json")
    assert_ok(p)
    obj = json.loads(p.stdout)
    assert LIST_KEYS <= set(obj), obj
    assert (obj["serial"], obj["name"], obj["owner"], obj["status"]) == (serial, "web", "ops",
                                                                         "valid"), obj
    spki = openssl("pkey", "-in", key, "-pubout", "-outform", "DER")
    assert obj["key_fingerprint"] == colon_hex(hashlib.sha256(spki).hexdigest()), obj

    p = ca.duet("cert", "show", arg, "--ca-dir", ca.dir)
    assert_ok(p, serial, "web", "server")


def test_show_an_unknown_serial(ca):
    p = ca.duet("cert", "show", "0A:0B:0C:0D:0E:0F:10:11", "--ca-dir", ca.dir)
    assert_refused(p, "A:0B:0C:0D:0E:0F:10:11", "not in the inventory")


# --- cert renew -----------------------------------------------------------------------------

def test_renew_new_key_same_names_linked_in_the_inventory(ca, tmp_path):
    crt, key, old = ca.issued("alice", "client", "--owner", "alice@demo", "--location", "hq")
    out = tmp_path / "renewed"
    out.mkdir()
    p = ca.duet("cert", "renew", old, "--ca-dir", ca.dir, "--out", out, "--ttl", "2000h",
                "--passphrase-file", ca.passfile)
    assert_ok(p, old)
    new_crt, new_key = out / "alice.crt", out / "alice.key"
    new = serial_of(new_crt)
    assert new != old and new in p.stdout, show(p)
    assert mode(new_key) == 0o600
    assert pubkey(new_crt) != pubkey(crt) and pubkey(new_key, is_key=True) == pubkey(new_crt)
    assert sans(new_crt) == sans(crt) == ["URI:spiffe://demo-corp/alice"]
    assert ext(new_crt, "extendedKeyUsage") == ext(crt, "extendedKeyUsage")
    assert not_after(new_crt) > not_after(crt)
    assert verify(ca, new_crt, "sslclient").returncode == 0

    old_row = json.loads(ca.duet("cert", "show", old, "--ca-dir", ca.dir,
                                 "--format", "json").stdout)
    new_row = json.loads(ca.duet("cert", "show", new, "--ca-dir", ca.dir,
                                 "--format", "json").stdout)
    assert old_row["renewed_by"] == new and new_row["renews"] == old, (old_row, new_row)
    assert (new_row["profile"], new_row["owner"], new_row["location"]) == ("client",
                                                                           "alice@demo", "hq")

    # The old certificate no longer counts as expiring: it has a successor.
    p = ca.duet("cert", "expiring", "--ca-dir", ca.dir, "--within", "31d")
    assert p.returncode == 0 and old not in p.stdout, show(p)


def test_renew_by_certificate_file_reusing_the_key(ca, tmp_path):
    crt, key, old = ca.issued("web", "server")
    out = tmp_path / "renewed"
    out.mkdir()
    p = ca.duet("cert", "renew", crt, "--reuse-key", "--ca-dir", ca.dir, "--out", out,
                "--passphrase-file", ca.passfile)
    assert_ok(p, old)
    assert pubkey(out / "web.crt") == pubkey(crt)
    assert serial_of(out / "web.crt") != old


def test_renew_refuses_an_unknown_serial(ca, tmp_path):
    with Unchanged(ca, ca.out, tmp_path):
        p = ca.duet("cert", "renew", "DE:AD:BE:EF:00:11:22:33", "--ca-dir", ca.dir,
                    "--out", tmp_path, "--passphrase-file", ca.passfile)
        assert_refused(p, "DE:AD:BE:EF:00:11:22:33", "not in the inventory")


# --- cert revoke ----------------------------------------------------------------------------

@pytest.mark.parametrize("form", ["colon-upper", "colon-lower", "bare-upper", "bare-lower",
                                  "openssl-serial", "certfile"])
def test_revoke_accepts_the_serial_forms_openssl_prints(ca, form):
    crt, _, serial = ca.issued("web", "server")
    bare = serial.replace(":", "")
    arg = {
        "colon-upper": serial,
        "colon-lower": serial.lower(),
        "bare-upper": bare,
        "bare-lower": bare.lower(),
        # `openssl x509 -serial` prints "serial=8EA5..." ; `-text` prints "8e:a5:...".
        "openssl-serial": text("x509", "-in", crt, "-noout", "-serial").strip().split("=")[1],
        "certfile": crt,
    }[form]
    p = ca.duet("cert", "revoke", arg, "--ca-dir", ca.dir, "--reason", "keyCompromise")
    assert_ok(p, serial, "keyCompromise")
    assert ca.row(serial)["status"] == "revoked"


def test_revoke_twice_says_since_when(ca):
    _, _, serial = ca.issued("web", "server")
    before = now().replace(microsecond=0)
    assert_ok(ca.duet("cert", "revoke", serial, "--ca-dir", ca.dir, "--reason",
                      "cessationOfOperation"))
    rows = serials(ca)
    p = ca.duet("cert", "revoke", serial.lower(), "--ca-dir", ca.dir, "--reason",
                "keyCompromise")
    msg = assert_refused(p, serial, "already revoked", "since", "cessationOfOperation")
    m = re.search(r"since (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)", msg)
    assert m, msg
    assert before <= parse_rfc3339(m.group(1)) <= now(), msg
    assert serials(ca) == rows


def test_revoke_refuses_unknown_serial_and_bad_reason(ca):
    _, _, serial = ca.issued("web", "server")
    assert_refused(ca.duet("cert", "revoke", "01:02:03:04:05:06:07:08", "--ca-dir", ca.dir),
                   "01:02:03:04:05:06:07:08", "not in the inventory")
    assert_refused(ca.duet("cert", "revoke", "zz:top", "--ca-dir", ca.dir), "zz:top")
    assert_refused(ca.duet("cert", "revoke", serial, "--ca-dir", ca.dir, "--reason",
                           "boredom"), "boredom")
    assert ca.row(serial)["status"] == "valid"


def test_revoke_needs_no_passphrase(ca):
    _, _, serial = ca.issued("web", "server")
    p = ca.duet("cert", "revoke", serial, "--ca-dir", ca.dir, "--reason", "superseded",
                env={"DUET_CA_PASSPHRASE": None})
    assert_ok(p, serial)


# --- crl generate ---------------------------------------------------------------------------

def crl_text(path, der=False):
    args = ["crl", "-in", path, "-noout", "-text"]
    if der:
        args[1:1] = ["-inform", "DER"]
    return text(*args)


def test_crl_pem_issuing_then_root_with_reasons_dates_and_numbers(ca, tmp_path):
    _, _, a = ca.issued("a", "server")
    _, _, b = ca.issued("b", "server")
    _, _, keep = ca.issued("keep", "server")
    t0 = now().replace(microsecond=0)
    assert_ok(ca.duet("cert", "revoke", a, "--ca-dir", ca.dir, "--reason", "keyCompromise"))
    assert_ok(ca.duet("cert", "revoke", b, "--ca-dir", ca.dir, "--reason", "affiliationChanged"))

    first = tmp_path / "crl1.pem"
    p = ca.crl(first, "--next-update", "48h")
    assert_ok(p, str(first))
    blocks = pem_blocks(first, "X509 CRL")
    assert len(blocks) == 2, "expected the issuing CA's CRL then the root's"
    issuing_crl, root_crl = tmp_path / "i.pem", tmp_path / "r.pem"
    issuing_crl.write_text(blocks[0])
    root_crl.write_text(blocks[1])

    t = crl_text(issuing_crl)
    assert "Version 2 (0x1)" in t and "Issuer: O = Demo Corp, CN = Demo Corp Issuing CA" in t, t
    assert "X509v3 CRL Number" in t and "Authority Key Identifier" in t, t
    entries = dict(re.findall(r"Serial Number: ([0-9A-F]+)\n.*?CRL Reason Code: *\n *(\S.*?)\n",
                              t, re.S))
    assert entries == {a.replace(":", ""): "Key Compromise",
                       b.replace(":", ""): "Affiliation Changed"}, t
    for d in re.findall(r"Revocation Date: (.*)\n", t):
        when = dt.datetime.strptime(" ".join(d.split()), "%b %d %H:%M:%S %Y %Z").replace(
            tzinfo=dt.timezone.utc)
        assert t0 <= when <= now(), d
    last = text("crl", "-in", issuing_crl, "-noout", "-lastupdate").strip().split("=")[1]
    nxt = text("crl", "-in", issuing_crl, "-noout", "-nextupdate").strip().split("=")[1]
    parse = lambda s: dt.datetime.strptime(" ".join(s.split()), "%b %d %H:%M:%S %Y %Z")
    assert parse(nxt) - parse(last) == dt.timedelta(hours=48), (last, nxt)
    assert "verify OK" in subprocess.run(
        ["openssl", "crl", "-in", str(issuing_crl), "-CAfile", str(ca.issuing), "-noout"],
        capture_output=True, text=True).stderr

    rt = crl_text(root_crl)
    assert "Issuer: O = Demo Corp, CN = Demo Corp Root CA" in rt, rt
    assert "verify OK" in subprocess.run(
        ["openssl", "crl", "-in", str(root_crl), "-CAfile", str(ca.root), "-noout"],
        capture_output=True, text=True).stderr

    n1 = int(text("crl", "-in", issuing_crl, "-noout", "-crlnumber").strip().split("=")[1], 16)
    der = tmp_path / "crl.der"
    assert_ok(ca.crl(der, "--der"))
    dt_ = crl_text(der, der=True)
    assert "Issuer: O = Demo Corp, CN = Demo Corp Issuing CA" in dt_
    assert a.replace(":", "") in dt_ and b.replace(":", "") in dt_
    assert keep.replace(":", "") not in dt_
    n2 = int(text("crl", "-inform", "DER", "-in", der, "-noout",
                  "-crlnumber").strip().split("=")[1], 16)
    assert n2 > n1, (n1, n2)


def test_crl_refuses_a_wrong_passphrase(ca, tmp_path):
    wrong = tmp_path / "wrong"
    wrong.write_text("not the passphrase\n")
    os.chmod(wrong, 0o600)
    out = tmp_path / "crl.pem"
    p = ca.duet("crl", "generate", "--ca-dir", ca.dir, "--out", out, "--passphrase-file", wrong)
    assert_refused(p, "wrong CA passphrase")
    assert not out.exists()


# --- cert export ----------------------------------------------------------------------------

@pytest.fixture
def exported(ca, tmp_path):
    crt, key, serial = ca.issued("web", "server")
    pw = tmp_path / "p12.pass"
    pw.write_text("export-secret\n")
    os.chmod(pw, 0o600)  # export refuses a password file others can read
    return crt, key, pw


def p12_info(p12, pw, legacy=False):
    args = ["openssl", "pkcs12", "-in", str(p12), "-info", "-noout", "-passin", "file:%s" % pw]
    if legacy:
        args.insert(2, "-legacy")
    p = subprocess.run(args, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    return p.stdout + p.stderr


@pytest.mark.parametrize("legacy", [False, True])
def test_export_p12(ca, exported, tmp_path, legacy):
    crt, key, pw = exported
    out = tmp_path / "web.p12"
    args = ["cert", "export", "--cert", crt, "--key", key, "--format", "p12",
            "--password-file", pw, "--out", out]
    if legacy:
        args.append("--legacy")
    assert_ok(ca.duet(*args), str(out))
    info = p12_info(out, pw, legacy)
    if legacy:
        assert "pbeWithSHA1And3-KeyTripleDES-CBC" in info and "MAC: sha1" in info, info
        assert "AES-256" not in info, info
    else:
        assert "PBES2, PBKDF2, AES-256-CBC" in info and "MAC: sha256" in info, info
        assert "TripleDES" not in info, info
    assert info.count("Certificate bag") == 2, info  # leaf and issuing CA
    p = subprocess.run(["openssl", "pkcs12", "-in", str(out), "-nokeys", "-passin",
                        "file:%s" % pw] + (["-legacy"] if legacy else []),
                       capture_output=True, text=True)
    assert "friendlyName: web" in p.stdout, p.stdout
    certs = re.findall(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", p.stdout,
                       re.S)
    assert {c.strip() for c in certs} == {b.strip() for b in pem_blocks(crt)}


def test_export_der_and_pem(ca, exported, tmp_path):
    crt, key, _ = exported
    der = tmp_path / "web.der"
    assert_ok(ca.duet("cert", "export", "--cert", crt, "--format", "der", "--out", der))
    assert serial_of(crt) in colon_hex(text("x509", "-inform", "DER", "-in", der, "-noout",
                                            "-serial").strip().split("=")[1])
    pem = tmp_path / "web.pem"
    assert_ok(ca.duet("cert", "export", "--cert", crt, "--key", key, "--format", "pem",
                      "--out", pem))
    assert pem_blocks(pem)[:2] == pem_blocks(crt)
    # A DER file holds the certificate only: a key given with it is a mistake, not ignored.
    p = ca.duet("cert", "export", "--cert", crt, "--key", key, "--format", "der",
                "--out", tmp_path / "x.der")
    assert p.returncode == 2 and "--format der holds the certificate only" in p.stderr
    assert not (tmp_path / "x.der").exists()


def test_export_refuses_a_key_that_does_not_match(ca, exported, tmp_path):
    crt, _, pw = exported
    _, other_key, _ = ca.issued("other", "server")
    out = tmp_path / "bad.p12"
    p = ca.duet("cert", "export", "--cert", crt, "--key", other_key, "--format", "p12",
                "--password-file", pw, "--out", out)
    assert_refused(p, str(other_key), "does not belong")
    assert not out.exists()
    p = ca.duet("cert", "export", "--cert", crt, "--key", other_key.with_name("web.key"),
                "--format", "p12", "--out", out)
    assert_refused(p, "--password-file")
    assert not out.exists()


# --- cert expiring --------------------------------------------------------------------------

def test_expiring_exit_status_text_and_prometheus(ca):
    _, _, soon = ca.issued("soon", "server", "--ttl", "240h", "--owner", "ops")
    _, _, later = ca.issued("later", "server", "--ttl", "2000h")
    _, _, gone = ca.issued("gone", "server", "--ttl", "24h")
    assert_ok(ca.duet("cert", "revoke", gone, "--ca-dir", ca.dir))

    p = ca.duet("cert", "expiring", "--ca-dir", ca.dir, "--within", "30d")
    assert p.returncode == 1, show(p)
    assert soon in p.stdout and later not in p.stdout and gone not in p.stdout, show(p)

    p = ca.duet("cert", "expiring", "--ca-dir", ca.dir, "--within", "5d")
    assert p.returncode == 0, show(p)
    assert soon not in p.stdout

    p = ca.duet("cert", "expiring", "--ca-dir", ca.dir, "--within", "30d", "--format",
                "prometheus")
    assert p.returncode == 1, show(p)
    m = re.search(r'^duet_certificate_expiry_seconds\{[^}]*serial="%s"[^}]*\} (\d+)$'
                  % re.escape(soon), p.stdout, re.M)
    assert m, p.stdout
    assert abs(int(m.group(1)) - 240 * 3600) < 120, m.group(0)
    assert re.search(r'^duet_certificates_expiring\{within="30d"\} 1$', p.stdout, re.M), p.stdout
    assert "# TYPE duet_certificate_expiry_seconds gauge" in p.stdout
    assert 'serial="%s"' % gone not in p.stdout


def test_expiring_needs_a_window(ca):
    p = ca.duet("cert", "expiring", "--ca-dir", ca.dir)
    assert p.returncode not in (0, 1), show(p)
    assert "--within" in p.stderr, show(p)


def test_signing_refuses_a_passphrase_file_others_can_read(ca, tmp_path):
    loose = tmp_path / "loose.pass"
    loose.write_text(ca.passphrase + "\n")
    os.chmod(loose, 0o644)
    with Unchanged(ca):
        p = ca.duet("cert", "issue", "web", "--profile", "server", "--ca-dir", ca.dir,
                    "--out", ca.out, "--passphrase-file", loose)
        assert_refused(p, str(loose), "readable by group or others", "chmod 600")
