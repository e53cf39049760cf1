# SPDX-License-Identifier: Apache-2.0
"""`duet cert inspect`: what it reports about certificates, chains, PKCS#12, CSRs, CRLs and
keys, checked against what the openssl CLI says about the same files.

Where the contract leaves a representation open (serial as "51:A0" or "51A0", spki_sha256 as
hex or base64), the tests compare values, not spellings.
"""

import base64
import binascii
import datetime as dt
import json
import re

import pytest

RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")


def show(p):
    return "command: %s\nexit: %s\nstdout: %.2000r\nstderr: %r" % (
        " ".join(map(str, p.args)), p.returncode, p.stdout, p.stderr)


def inspect_json(run, *args):
    """Runs `duet cert inspect --format json ARGS`; returns the parsed array."""
    p = run("cert", "inspect", "--format", "json", *args)
    assert p.returncode == 0, show(p)
    try:
        doc = json.loads(p.stdout)
    except ValueError as e:
        pytest.fail("stdout is not JSON (%s)\n%s" % (e, show(p)))
    assert isinstance(doc, list), show(p)
    return doc


def one_file(run, path, *opts):
    doc = inspect_json(run, *opts, path)
    assert len(doc) == 1, doc
    entry = doc[0]
    assert entry["file"] == str(path), entry
    return entry


def of_type(entry, kind):
    return [o for o in entry["objects"] if o["type"] == kind]


def parse_time(s):
    assert isinstance(s, str) and RFC3339.match(s), "not RFC 3339 UTC: %r" % (s,)
    return dt.datetime.strptime(s[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=dt.timezone.utc)


def same_serial(got, colon_hex):
    """A hex serial, with or without colons, equals the expected one."""
    assert isinstance(got, str), got
    return int(got.replace(":", ""), 16) == int(colon_hex.replace(":", ""), 16)


def digest_matches(got, digest):
    """got encodes the raw digest as hex (colons optional, any case) or base64."""
    assert isinstance(got, str) and got, got
    h = got.replace(":", "")
    try:
        if len(h) == 2 * len(digest) and binascii.unhexlify(h) == digest:
            return True
    except (binascii.Error, ValueError):
        pass
    for dec in (base64.b64decode, base64.urlsafe_b64decode):
        try:
            if dec(got + "=" * (-len(got) % 4)) == digest:
                return True
        except (binascii.Error, ValueError):
            pass
    return False


def bare_hex(s):
    return s.replace(":", "").upper()


def check_certificate(obj, pki, cert):
    """Fields that must agree with openssl for every certificate object."""
    assert obj["type"] == "certificate", obj
    assert same_serial(obj["serial"], pki.serial(cert)), (obj["serial"], pki.serial(cert))
    assert obj["version"] == 3, obj["version"]
    nb, na = pki.dates(cert)
    assert parse_time(obj["not_before"]) == nb, obj["not_before"]
    assert parse_time(obj["not_after"]) == na, obj["not_after"]
    assert isinstance(obj["days_left"], int) and not isinstance(obj["days_left"], bool)
    now = dt.datetime.now(dt.timezone.utc)
    expect = (na - now).total_seconds() / 86400
    assert abs(obj["days_left"] - expect) <= 1.01, (obj["days_left"], expect)
    assert obj["expired"] is (na < now), obj["expired"]
    assert obj["fingerprint_sha256"] == pki.fingerprint(cert), obj["fingerprint_sha256"]
    assert digest_matches(obj["spki_sha256"], pki.spki_sha256(cert)), obj["spki_sha256"]
    assert bare_hex(obj["subject_key_id"]) == pki.ski(cert), obj["subject_key_id"]
    for key in ("subject", "issuer", "signature_algorithm", "self_signed", "sans",
                "key_usage", "extended_key_usage", "basic_constraints", "name_constraints",
                "crl_distribution_points", "ocsp", "ca_issuers", "authority_key_id", "key"):
        assert key in obj, "missing %r in %r" % (key, obj)
    assert isinstance(obj["sans"], list)
    for key in ("crl_distribution_points", "ocsp", "ca_issuers"):
        assert isinstance(obj[key], list), (key, obj[key])


# --- certificates and chains ----------------------------------------------------------------

def test_pem_chain_leaf_then_issuer(run, pki):
    entry = one_file(run, pki.server_chain)
    assert entry["format"] == "PEM"
    certs = entry["objects"]
    assert [o["type"] for o in certs] == ["certificate", "certificate"], certs

    leaf, ca = certs
    check_certificate(leaf, pki, pki.server)
    assert "server.example" in leaf["subject"], leaf["subject"]
    assert "Duet Test Intermediate CA" in leaf["issuer"], leaf["issuer"]
    assert leaf["key"]["description"] == "EC P-256", leaf["key"]
    assert leaf["key"]["bits"] == 256, leaf["key"]
    assert "EC" in leaf["key"]["type"].upper(), leaf["key"]
    assert re.search(r"ecdsa.*sha-?256", leaf["signature_algorithm"], re.I), leaf
    assert leaf["self_signed"] is False
    assert leaf["expired"] is False
    assert leaf["sans"] == ["DNS:server.example", "IP:127.0.0.1"], leaf["sans"]
    assert leaf["key_usage"] == {"critical": True, "values": ["digitalSignature"]}
    assert leaf["extended_key_usage"] == {"critical": False, "values": ["serverAuth"]}
    assert leaf["basic_constraints"] == {"critical": True, "ca": False, "path_len": None}
    assert leaf["name_constraints"] is None
    assert any("http://127.0.0.1/int.crl" in s for s in leaf["crl_distribution_points"]), leaf
    assert any("http://127.0.0.1:8080/ocsp" in s for s in leaf["ocsp"]), leaf["ocsp"]
    assert any("http://127.0.0.1/int.der" in s for s in leaf["ca_issuers"]), leaf["ca_issuers"]
    assert pki.ski(pki.int) in bare_hex(leaf["authority_key_id"]), leaf["authority_key_id"]
    assert leaf["signed_by_next"] is True

    check_certificate(ca, pki, pki.int)
    assert "Duet Test Intermediate CA" in ca["subject"]
    assert "Duet Test Root CA" in ca["issuer"]
    assert ca["basic_constraints"] == {"critical": True, "ca": True, "path_len": 0}
    assert ca["key_usage"]["critical"] is True
    assert sorted(ca["key_usage"]["values"]) == ["cRLSign", "keyCertSign"], ca["key_usage"]
    assert ca["extended_key_usage"] is None
    assert ca["sans"] == []
    assert ca["self_signed"] is False
    assert pki.ski(pki.root) in bare_hex(ca["authority_key_id"]), ca["authority_key_id"]
    assert ca.get("signed_by_next") is None, "the last certificate has no next: %r" % ca


def test_pem_leaf_then_unrelated_cert(run, pki):
    entry = one_file(run, pki.server_root_pem)
    leaf, root = entry["objects"]
    check_certificate(leaf, pki, pki.server)
    check_certificate(root, pki, pki.root)
    assert leaf["signed_by_next"] is False
    assert root["self_signed"] is True
    assert root["basic_constraints"] == {"critical": True, "ca": True, "path_len": None}


def test_client_certificate(run, pki):
    entry = one_file(run, pki.alice)
    (alice,) = entry["objects"]
    check_certificate(alice, pki, pki.alice)
    assert alice["sans"] == ["URI:spiffe://corp/alice"]
    assert alice["extended_key_usage"] == {"critical": False, "values": ["clientAuth"]}
    assert alice["crl_distribution_points"] == [] and alice["ocsp"] == []


def test_name_constraints(run, pki):
    (ca,) = one_file(run, pki.constrained)["objects"]
    check_certificate(ca, pki, pki.constrained)
    nc = ca["name_constraints"]
    assert nc is not None and nc["critical"] is True, nc
    assert any(".example" in s for s in nc["permitted"]), nc
    assert not any("bad.example" in s for s in nc["permitted"]), nc
    assert any("bad.example" in s for s in nc["excluded"]), nc


def test_expired_certificate(run, pki):
    (cert,) = one_file(run, pki.expired)["objects"]
    check_certificate(cert, pki, pki.expired)
    assert cert["expired"] is True
    assert -11 <= cert["days_left"] <= -9, cert["days_left"]


def test_rsa_key(run, pki):
    (cert,) = one_file(run, pki.rsa1024)["objects"]
    check_certificate(cert, pki, pki.rsa1024)
    assert cert["key"]["description"] == "RSA 1024", cert["key"]
    assert cert["key"]["bits"] == 1024
    assert "RSA" in cert["key"]["type"].upper()


def test_sha1_signature(run, pki):
    (cert,) = one_file(run, pki.sha1)["objects"]
    check_certificate(cert, pki, pki.sha1)
    assert re.search(r"sha-?1\b", cert["signature_algorithm"], re.I), cert["signature_algorithm"]


def test_der_certificate(run, pki):
    entry = one_file(run, pki.server_der)
    assert entry["format"] == "DER"
    (cert,) = entry["objects"]
    check_certificate(cert, pki, pki.server)
    assert "signed_by_next" not in cert or cert["signed_by_next"] is None


@pytest.mark.parametrize("which", ["alice_p12", "alice_p12_legacy"])
def test_pkcs12(run, pki, which):
    path = getattr(pki, which)
    entry = one_file(run, path, "--password-file", pki.password_file)
    assert entry["format"] == "PKCS#12"
    certs = of_type(entry, "certificate")
    fps = [c["fingerprint_sha256"] for c in certs]
    assert sorted(fps) == sorted([pki.fingerprint(pki.alice), pki.fingerprint(pki.int)]), fps
    alice = certs[fps.index(pki.fingerprint(pki.alice))]
    check_certificate(alice, pki, pki.alice)
    (key,) = of_type(entry, "private_key")
    assert key["key"]["description"] == "EC P-256", key
    assert key["spki_sha256"] == alice["spki_sha256"], "the key does not match the certificate"


def test_pkcs12_wrong_password(run, pki):
    p = run("cert", "inspect", "--format", "json", "--password-file", pki.wrong_password_file,
            pki.alice_p12)
    assert p.returncode == 2, show(p)
    assert str(pki.alice_p12) in p.stderr and "password" in p.stderr.lower(), show(p)


# --- CSRs -----------------------------------------------------------------------------------

def test_csr(run, pki):
    entry = one_file(run, pki.csr_pem)
    assert entry["format"] == "PEM"
    (csr,) = entry["objects"]
    assert csr["type"] == "csr", csr
    assert "csr.example" in csr["subject"]
    assert csr["key"]["description"] == "EC P-256"
    assert re.search(r"ecdsa.*sha-?256", csr["signature_algorithm"], re.I), csr
    assert csr["signature_valid"] is True
    assert csr["sans"] == ["DNS:csr.example", "DNS:www.csr.example", "IP:127.0.0.1"]
    assert csr["key_usage"] == {"critical": True, "values": ["digitalSignature"]}
    assert csr["extended_key_usage"] == {"critical": False,
                                         "values": ["serverAuth", "clientAuth"]}
    assert csr["basic_constraints"] == {"critical": True, "ca": False, "path_len": None}


def test_csr_with_bad_signature(run, pki):
    entry = one_file(run, pki.csr_tampered_der)
    assert entry["format"] == "DER"
    (csr,) = entry["objects"]
    assert csr["type"] == "csr"
    assert "csq.example" in csr["subject"]
    assert csr["signature_valid"] is False


# --- CRLs -----------------------------------------------------------------------------------

@pytest.mark.parametrize("which,fmt", [("int_crl", "PEM"), ("int_crl_der", "DER")])
def test_crl_with_revoked_entry(run, pki, which, fmt):
    entry = one_file(run, getattr(pki, which))
    assert entry["format"] == fmt
    (crl,) = entry["objects"]
    assert crl["type"] == "crl", crl
    assert "Duet Test Intermediate CA" in crl["issuer"]
    assert crl["version"] == 2, crl["version"]
    this_update, next_update = pki.crl_dates(pki.int_crl)
    assert parse_time(crl["this_update"]) == this_update
    assert parse_time(crl["next_update"]) == next_update
    assert crl.get("crl_number") not in (None, ""), crl
    assert re.search(r"ecdsa.*sha-?256", crl["signature_algorithm"], re.I), crl
    assert crl["expired"] is False
    assert crl["revoked_count"] == 1
    (rev,) = crl["revoked"]
    assert same_serial(rev["serial"], pki.serial(pki.revoked)), rev
    parse_time(rev["revocation_date"])
    assert rev["reason"] == "keyCompromise", rev


def test_crl_empty(run, pki):
    (crl,) = one_file(run, pki.root_crl)["objects"]
    assert "Duet Test Root CA" in crl["issuer"]
    assert crl["revoked_count"] == 0 and crl["revoked"] == [], crl


def test_crl_expired(run, pki):
    (crl,) = one_file(run, pki.int_crl_expired)["objects"]
    assert crl["expired"] is True, crl
    assert parse_time(crl["next_update"]) < dt.datetime.now(dt.timezone.utc)


# --- keys -----------------------------------------------------------------------------------

def test_private_key(run, pki):
    entry = one_file(run, pki.server_key)
    assert entry["format"] == "PEM"
    (key,) = entry["objects"]
    assert key["type"] == "private_key", key
    assert key["encrypted"] is False
    assert key["key"]["description"] == "EC P-256" and key["key"]["bits"] == 256, key
    assert digest_matches(key["spki_sha256"], pki.spki_sha256(pki.server)), key


def test_encrypted_private_key(run, pki):
    entry = one_file(run, pki.server_key_encrypted, "--password-file", pki.password_file)
    (key,) = entry["objects"]
    assert key["type"] == "private_key", key
    assert key["encrypted"] is True
    assert digest_matches(key["spki_sha256"], pki.spki_sha256(pki.server)), key


# --- several files, text output -------------------------------------------------------------

def test_several_files_in_order(run, pki):
    files = [pki.server_der, pki.int_crl, pki.csr_pem, pki.server_key]
    doc = inspect_json(run, *files)
    assert [e["file"] for e in doc] == [str(f) for f in files]
    assert [e["objects"][0]["type"] for e in doc] == ["certificate", "crl", "csr", "private_key"]


@pytest.mark.parametrize("opts", [(), ("--format", "text")])
def test_text_chain(run, pki, opts):
    p = run("cert", "inspect", *opts, pki.server_chain)
    assert p.returncode == 0, show(p)
    out = p.stdout
    for needle in ("Subject:", "Issuer:", "Serial:", "SHA-256 fingerprint:", "days",
                   "Signed by next:", "server.example", "Duet Test Intermediate CA",
                   pki.fingerprint(pki.server), pki.fingerprint(pki.int)):
        assert needle in out, "expected %r\n%s" % (needle, show(p))
    serial = pki.serial(pki.server)
    assert serial in out or serial.replace(":", "") in out, show(p)
    assert out.count("Subject:") == 2, show(p)


# --- unreadable input (exit 2) --------------------------------------------------------------

@pytest.mark.parametrize("which,what", [
    ("truncated", "truncated"),
    ("empty", "empty"),
    ("a_directory", "directory"),
    ("missing", "no such file"),
    ("garbage", ""),
])
@pytest.mark.parametrize("fmt", ["text", "json"])
def test_unreadable(run, pki, which, what, fmt):
    path = getattr(pki, which)
    p = run("cert", "inspect", "--format", fmt, path)
    assert p.returncode == 2, show(p)
    assert str(path) in p.stderr, show(p)
    assert what.lower() in p.stderr.lower(), "expected %r\n%s" % (what, show(p))


def test_bad_format_option(run, pki):
    p = run("cert", "inspect", "--format", "yaml", pki.server)
    assert p.returncode == 2, show(p)
    for needle in ("yaml", "text", "json"):  # the bad value and the allowed ones (STYLE.md)
        assert needle in p.stderr, show(p)
