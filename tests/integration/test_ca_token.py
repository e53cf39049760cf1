# SPDX-License-Identifier: Apache-2.0
"""One-time enrollment tokens from the command line: `duet ca token`, `duet ca token --list`
and `duet cert sign CSR --token`.

The host's key and CSR are made by the openssl CLI, as a host would; the certificate is read
back with `openssl x509`.  A token yields exactly its binding once: the second use, an expired
token, a CSR asking for another name or for CA:TRUE are refused with their reason, the token is
left unused by a refusal, and no message or listing ever shows a token's text.
"""

import json
import re
import sqlite3
import subprocess
import time

import pytest

TOKEN_RE = re.compile(r"^duet1_[A-Za-z0-9_-]{43}$")


def show(p):
    return "command: %s\nexit: %s\nstdout: %r\nstderr: %r" % (
        " ".join(map(str, p.args)), p.returncode, p.stdout, p.stderr)


@pytest.fixture
def ca(make_ca):
    return make_ca("Token Corp")


def token(ca, name, profile, *extra):
    p = ca.duet("ca", "token", name, "--profile", profile, "--ca-dir", ca.dir,
                "--passphrase-file", ca.passfile, *extra)
    assert p.returncode == 0, show(p)
    tok = p.stdout.strip()
    # Only the token on stdout, so that TOKEN=$(duet ca token ...) works.
    assert TOKEN_RE.match(tok), show(p)
    assert p.stdout == tok + "\n"
    assert tok not in p.stderr
    return tok


def csr(ca, name, *addext):
    """The host's own key and a CSR, by openssl; extra -addext values as given."""
    key, req = ca.base / (name + ".key"), ca.base / (name + ".csr")
    args = ["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-nodes", "-keyout", str(key), "-out", str(req), "-subj", "/CN=" + name]
    for a in addext:
        args += ["-addext", a]
    subprocess.run(args, check=True, capture_output=True)
    return req


def sign(ca, req, tok, out):
    return ca.duet("cert", "sign", req, "--token", tok, "--ca-dir", ca.dir, "--out", out,
                   "--passphrase-file", ca.passfile)


def x509_text(cert):
    return subprocess.run(["openssl", "x509", "-in", str(cert), "-noout", "-text"], check=True,
                          capture_output=True, text=True).stdout


def tokens(ca):
    p = ca.duet("ca", "token", "--list", "--ca-dir", ca.dir, "--format", "json")
    assert p.returncode == 0, show(p)
    return p.stdout, json.loads(p.stdout)


def test_enroll_once_with_the_hosts_own_key(ca):
    tok = token(ca, "web", "server", "--san", "dns:web.corp.example", "--san", "ip:10.0.0.7",
                "--owner", "team-web", "--location", "rack 3")
    req = csr(ca, "web")
    out = ca.base / "web.crt"
    p = sign(ca, req, tok, out)
    assert p.returncode == 0, show(p)
    assert tok not in p.stdout + p.stderr
    txt = x509_text(out)
    assert "DNS:web.corp.example, IP Address:10.0.0.7" in txt
    assert "TLS Web Server Authentication" in txt
    assert "TLS Web Client Authentication" not in txt
    assert "CA:FALSE" in txt
    assert "Subject: O = Token Corp, CN = web" in txt
    # The host's key is the one certified.
    pub = subprocess.run(["openssl", "pkey", "-in", str(ca.base / "web.key"), "-pubout"],
                         check=True, capture_output=True, text=True).stdout
    cpub = subprocess.run(["openssl", "x509", "-in", str(out), "-noout", "-pubkey"],
                          check=True, capture_output=True, text=True).stdout
    assert pub == cpub
    serial = re.search(r"serial ([0-9A-F:]+)", p.stdout).group(1)
    row = ca.row(serial)
    assert row["profile"] == "server" and row["owner"] == "team-web"
    assert row["location"] == "rack 3"

    # Second use: refused, naming the date and serial; nothing written.
    p = sign(ca, req, tok, ca.base / "again.crt")
    assert p.returncode == 1, show(p)
    assert re.search(r"enrollment token already used on \d{4}-\d\d-\d\dT[\d:]+Z "
                     r"\(certificate serial %s\)" % re.escape(serial), p.stderr), show(p)
    assert tok not in p.stderr
    assert not (ca.base / "again.crt").exists()

    # The listing: used, with the serial, and never the token's text.
    raw, rows = tokens(ca)
    assert tok not in raw and tok[6:] not in raw
    assert len(rows) == 1
    assert rows[0]["status"] == "used" and rows[0]["serial"] == serial
    assert rows[0]["sans"] == ["dns:web.corp.example", "ip:10.0.0.7"]
    assert rows[0]["name"] == "web" and rows[0]["profile"] == "server"


def test_expired_token_refused(ca):
    tok = token(ca, "late", "client", "--ttl", "1s")
    req = csr(ca, "late")
    time.sleep(2.1)
    p = sign(ca, req, tok, ca.base / "late.crt")
    assert p.returncode == 1, show(p)
    assert re.search(r"enrollment token expired at \d{4}-\d\d-\d\dT[\d:]+Z", p.stderr), show(p)
    _, rows = tokens(ca)
    assert rows[0]["status"] == "expired" and rows[0]["serial"] is None


def test_csr_asking_beyond_the_token_refused_and_token_kept(ca):
    tok = token(ca, "a", "client")  # binds uri:spiffe://token-corp/a
    _, rows = tokens(ca)
    td_uri = rows[0]["sans"][0][len("uri:"):]
    assert td_uri.endswith("/a")
    cases = [
        (("subjectAltName=URI:%s,DNS:a.corp.example" % td_uri,),
         "the CSR asks for name dns:a.corp.example, which is not bound to this enrollment token"),
        (("subjectAltName=URI:%sb" % td_uri[:-1],),
         "which is not bound to this enrollment token"),
        (("basicConstraints=critical,CA:TRUE",), "the CSR asks for extension basicConstraints"),
        (("keyUsage=critical,keyCertSign",), "the CSR asks for extension keyUsage"),
        (("extendedKeyUsage=serverAuth",), "the CSR asks for extension extendedKeyUsage"),
    ]
    for i, (addext, want) in enumerate(cases):
        req = csr(ca, "bad%d" % i, *addext)
        p = sign(ca, req, tok, ca.base / ("bad%d.crt" % i))
        assert p.returncode == 1, show(p)
        assert want in p.stderr, show(p)
        assert tok not in p.stderr
        _, rows = tokens(ca)
        assert rows[0]["status"] == "unused", "a refused CSR spent the token\n" + show(p)
    # A client token never yields a server certificate; the right CSR works.
    req = csr(ca, "good", "subjectAltName=URI:" + td_uri)
    p = sign(ca, req, tok, ca.base / "good.crt")
    assert p.returncode == 0, show(p)
    txt = x509_text(ca.base / "good.crt")
    assert "URI:" + td_uri in txt
    assert "TLS Web Client Authentication" in txt
    assert "TLS Web Server Authentication" not in txt


def test_token_usage_and_creation_refusals(ca):
    req = csr(ca, "x")
    # --token replaces the binding options: both is a usage error.
    p = ca.duet("cert", "sign", req, "--token", "duet1_" + "A" * 43, "--profile", "server",
                "--ca-dir", ca.dir, "--out", ca.base / "x.crt")
    assert p.returncode == 2, show(p)
    assert "--token replaces --profile" in p.stderr
    # Unknown and malformed tokens, never quoted back.
    bogus = "duet1_" + "Q" * 42 + "A"
    p = sign(ca, req, bogus, ca.base / "x.crt")
    assert p.returncode == 1 and "unknown enrollment token" in p.stderr, show(p)
    assert bogus not in p.stderr
    p = sign(ca, req, "not-a-token-secret", ca.base / "x.crt")
    assert p.returncode == 1 and "not a duet enrollment token" in p.stderr, show(p)
    assert "not-a-token-secret" not in p.stderr
    # A token never promises what the profile refuses.
    p = ca.duet("ca", "token", "a", "--profile", "client", "--san", "dns:a.corp.example",
                "--ca-dir", ca.dir, "--passphrase-file", ca.passfile)
    assert p.returncode == 1 and p.stdout == "", show(p)
    assert "profile client" in p.stderr
    p = ca.duet("ca", "token", "a", "--profile", "nosuch", "--ca-dir", ca.dir,
                "--passphrase-file", ca.passfile)
    assert p.returncode == 1 and "profile \"nosuch\"" in p.stderr, show(p)
    p = ca.duet("ca", "token", "a", "--profile", "client", "--ttl", "169h", "--ca-dir", ca.dir,
                "--passphrase-file", ca.passfile)
    assert p.returncode == 1 and "7 days" in p.stderr, show(p)
    _, rows = tokens(ca)
    assert rows == []


def test_old_inventory_migrated(ca):
    """An inventory of schema version 1 (as earlier duet made it) opens and is migrated."""
    db = ca.dir / "inventory.db"
    con = sqlite3.connect(db)
    con.executescript("DROP TABLE tokens; DROP TABLE schema_migrations;"
                      "DROP TABLE crl; DROP INDEX certificates_revoked;"
                      "ALTER TABLE certificates DROP COLUMN revoked_by;"
                      "UPDATE meta SET value = '1' WHERE key = 'schema_version';")
    con.close()
    token(ca, "m", "client")
    con = sqlite3.connect(db)
    assert con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == ("4",)
    con.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    con.commit()
    con.close()
    p = ca.duet("ca", "token", "--list", "--ca-dir", ca.dir)
    assert p.returncode == 1, show(p)
    assert str(db) in p.stderr and "schema version 99 is newer than this duet knows" in p.stderr
