# SPDX-License-Identifier: Apache-2.0
"""`duet cert verify`: exit codes and the one-line reasons an operator reads.

Contract: exit 0 valid (a stdout line starting "valid:"), exit 1 invalid with one line on
stderr that says "certificate ... (serial AA:BB...)" and why, exit 2 for usage errors and
unreadable input (the message names the file and what was wrong).
"""

import datetime as dt
import re

import pytest


def show(p):
    return "command: %s\nexit: %s\nstdout: %r\nstderr: %r" % (
        " ".join(map(str, p.args)), p.returncode, p.stdout, p.stderr)


def assert_valid(p):
    assert p.returncode == 0, show(p)
    assert any(line.startswith("valid:") for line in p.stdout.splitlines()), show(p)


def assert_invalid(p, serial, *needles):
    """Exit 1, exactly one line on stderr naming the certificate by serial, with each needle."""
    assert p.returncode == 1, show(p)
    assert not any(line.startswith("valid:") for line in p.stdout.splitlines()), show(p)
    reason = p.stderr.strip()
    assert reason and "\n" not in reason, "expected one line on stderr\n" + show(p)
    assert "certificate" in reason, show(p)
    if serial is not None:
        assert "(serial %s" % serial in reason, "expected serial %s\n%s" % (serial, show(p))
    else:
        assert "(serial " in reason, show(p)
    for n in needles:
        assert n in reason, "expected %r\n%s" % (n, show(p))
    return reason


def assert_bad_input(p, path, what):
    """Exit 2, a message naming the file and what was wrong (case-insensitive)."""
    assert p.returncode == 2, show(p)
    assert str(path) in p.stderr, "expected the path %s\n%s" % (path, show(p))
    assert what.lower() in p.stderr.lower(), "expected %r\n%s" % (what, show(p))
    assert not any(line.startswith("valid:") for line in p.stdout.splitlines()), show(p)


def assert_usage(p, *needles):
    assert p.returncode == 2, show(p)
    assert "usage" in p.stderr.lower(), "expected a usage message\n" + show(p)
    for n in needles:
        assert n in p.stderr, "expected %r\n%s" % (n, show(p))


def days_ago(reason):
    m = re.search(r"(\d+) days? ago", reason)
    assert m, "no 'N days ago' in %r" % reason
    return int(m.group(1))


def rfc3339(t):
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


# --- valid chains ---------------------------------------------------------------------------

def test_server_valid_with_untrusted_chain(run, pki):
    assert_valid(run("cert", "verify", "--trusted", pki.root, "--untrusted", pki.int,
                     "--purpose", "server", "--name", "server.example", pki.server))


def test_server_valid_with_chain_in_leaf_file(run, pki):
    assert_valid(run("cert", "verify", "--trusted", pki.root, "--purpose", "server",
                     "--name", "server.example", pki.server_chain))


def test_server_valid_for_its_ip_address(run, pki):
    assert_valid(run("cert", "verify", "--trusted", pki.root, "--purpose", "server",
                     "--name", "127.0.0.1", pki.server_chain))


def test_client_valid(run, pki):
    assert_valid(run("cert", "verify", "--trusted", pki.root, "--untrusted", pki.int,
                     "--purpose", "client", pki.alice))


def test_der_leaf_valid(run, pki):
    assert_valid(run("cert", "verify", "--trusted", pki.root, "--untrusted", pki.int,
                     "--purpose", "server", "--name", "server.example", pki.server_der))


@pytest.mark.parametrize("which", ["alice_p12", "alice_p12_legacy"])
def test_pkcs12_leaf_valid(run, pki, which):
    assert_valid(run("cert", "verify", "--trusted", pki.root, "--purpose", "client",
                     "--password-file", pki.password_file, getattr(pki, which)))


def test_several_trusted_files(run, pki):
    assert_valid(run("cert", "verify", "--trusted", pki.rogue_root, "--trusted", pki.root,
                     "--purpose", "server", "--name", "server.example", pki.server_chain))
    assert_valid(run("cert", "verify", "--trusted", pki.root, "--trusted", pki.rogue_root,
                     "--purpose", "server", "--name", "server.example", pki.rogue_leaf))


# --- time -----------------------------------------------------------------------------------

def test_expired_leaf(run, pki):
    reason = assert_invalid(
        run("cert", "verify", "--trusted", pki.root, "--purpose", "server", pki.expired_chain),
        pki.serial(pki.expired), "expired on", "days ago")
    assert days_ago(reason) in (9, 10, 11), reason


def test_not_yet_valid_leaf(run, pki):
    assert_invalid(
        run("cert", "verify", "--trusted", pki.root, "--purpose", "server", pki.future_chain),
        pki.serial(pki.future), "is not valid before")


def test_at_after_not_after(run, pki):
    _, not_after = pki.dates(pki.server)
    reason = assert_invalid(
        run("cert", "verify", "--trusted", pki.root, "--purpose", "server",
            "--at", rfc3339(not_after + dt.timedelta(days=30)), pki.server_chain),
        pki.serial(pki.server), "expired on", "days ago")
    assert days_ago(reason) in (29, 30, 31), reason


def test_at_before_not_before(run, pki):
    not_before, _ = pki.dates(pki.server)
    assert_invalid(
        run("cert", "verify", "--trusted", pki.root, "--purpose", "server",
            "--at", rfc3339(not_before - dt.timedelta(days=5)), pki.server_chain),
        pki.serial(pki.server), "is not valid before")


def test_at_inside_validity_of_expired_leaf(run, pki):
    not_before, not_after = pki.dates(pki.expired)
    when = not_before + (not_after - not_before) / 2
    assert_valid(run("cert", "verify", "--trusted", pki.root, "--purpose", "server",
                     "--at", rfc3339(when), pki.expired_chain))


# --- trust ----------------------------------------------------------------------------------

def test_unknown_ca(run, pki):
    assert_invalid(
        run("cert", "verify", "--trusted", pki.root, "--purpose", "server",
            "--name", "server.example", pki.rogue_leaf),
        pki.serial(pki.rogue_leaf), "unknown CA")


def test_missing_intermediate_names_the_issuer(run, pki):
    assert_invalid(
        run("cert", "verify", "--trusted", pki.root, "--purpose", "server", pki.server),
        pki.serial(pki.server), "Duet Test Intermediate CA")


def test_self_signed_leaf(run, pki):
    assert_invalid(
        run("cert", "verify", "--trusted", pki.root, "--purpose", "server",
            pki.selfsigned_leaf),
        pki.serial(pki.selfsigned_leaf), "self-signed")


def test_max_depth(run, pki):
    assert_invalid(run("cert", "verify", "--trusted", pki.root, "--purpose", "server",
                       "--max-depth", "0", pki.server_chain), None)
    assert_valid(run("cert", "verify", "--trusted", pki.root, "--purpose", "server",
                     "--max-depth", "5", pki.server_chain))


# --- purpose and name -----------------------------------------------------------------------

def test_client_cert_for_server_purpose(run, pki):
    assert_invalid(
        run("cert", "verify", "--trusted", pki.root, "--purpose", "server", pki.alice_chain),
        pki.serial(pki.alice), "is not valid for TLS server authentication")


def test_server_cert_for_client_purpose(run, pki):
    assert_invalid(
        run("cert", "verify", "--trusted", pki.root, "--purpose", "client", pki.server_chain),
        pki.serial(pki.server), "is not valid for TLS client authentication")


@pytest.mark.parametrize("name", ["other.example", "10.0.0.1", "example"])
def test_wrong_name(run, pki, name):
    assert_invalid(
        run("cert", "verify", "--trusted", pki.root, "--purpose", "server", "--name", name,
            pki.server_chain),
        pki.serial(pki.server), "is not valid for the name", name)


# --- strength -------------------------------------------------------------------------------

def test_weak_key(run, pki):
    assert_invalid(
        run("cert", "verify", "--trusted", pki.root, "--purpose", "server", pki.rsa1024_chain),
        pki.serial(pki.rsa1024), "weak key")


def test_weak_signature(run, pki):
    assert_invalid(
        run("cert", "verify", "--trusted", pki.root, "--purpose", "server", pki.sha1_chain),
        pki.serial(pki.sha1), "weak signature")


# --- revocation -----------------------------------------------------------------------------

def test_crls_of_whole_chain_good_cert(run, pki):
    assert_valid(run("cert", "verify", "--trusted", pki.root, "--crl", pki.root_crl,
                     "--crl", pki.int_crl, "--purpose", "server", "--name", "server.example",
                     pki.server_chain))


def test_revoked_leaf(run, pki):
    assert_invalid(
        run("cert", "verify", "--trusted", pki.root, "--crl", pki.root_crl, "--crl", pki.int_crl,
            "--purpose", "server", pki.revoked_chain),
        pki.serial(pki.revoked), "was revoked on", "reason: keyCompromise")


def test_revoked_leaf_with_leaf_scope(run, pki):
    assert_invalid(
        run("cert", "verify", "--trusted", pki.root, "--crl", pki.int_crl,
            "--crl-scope", "leaf", "--purpose", "server", pki.revoked_chain),
        pki.serial(pki.revoked), "was revoked on", "reason: keyCompromise")


def test_revoked_leaf_without_crl_is_not_checked(run, pki):
    assert_valid(run("cert", "verify", "--trusted", pki.root, "--purpose", "server",
                     pki.revoked_chain))


def test_chain_scope_needs_root_crl(run, pki):
    assert_invalid(
        run("cert", "verify", "--trusted", pki.root, "--crl", pki.int_crl,
            "--purpose", "server", pki.server_chain),
        pki.serial(pki.int), "no CRL from", "Duet Test Root CA")


def test_leaf_scope_needs_only_issuer_crl(run, pki):
    assert_valid(run("cert", "verify", "--trusted", pki.root, "--crl", pki.int_crl,
                     "--crl-scope", "leaf", "--purpose", "server", pki.server_chain))


def test_leaf_scope_without_issuer_crl(run, pki):
    assert_invalid(
        run("cert", "verify", "--trusted", pki.root, "--crl", pki.root_crl,
            "--crl-scope", "leaf", "--purpose", "server", pki.server_chain),
        pki.serial(pki.server), "no CRL from", "Duet Test Intermediate CA")


def test_expired_crl(run, pki):
    assert_invalid(
        run("cert", "verify", "--trusted", pki.root, "--crl", pki.root_crl,
            "--crl", pki.int_crl_expired, "--purpose", "server", pki.server_chain),
        pki.serial(pki.server), "expired on", "nextUpdate")


# --- unreadable input (exit 2) --------------------------------------------------------------

@pytest.mark.parametrize("which,what", [
    ("truncated", "truncated"),
    ("int_crl_der", "no certificate found"),
    ("empty", "empty"),
    ("a_directory", "directory"),
    ("missing", "no such file"),
])
def test_unreadable_leaf(run, pki, which, what):
    path = getattr(pki, which)
    assert_bad_input(run("cert", "verify", "--trusted", pki.root, path), path, what)


def test_unreadable_trusted(run, pki):
    assert_bad_input(run("cert", "verify", "--trusted", pki.missing, pki.server_chain),
                     pki.missing, "no such file")


def test_unreadable_crl(run, pki):
    assert_bad_input(run("cert", "verify", "--trusted", pki.root, "--crl", pki.truncated,
                         pki.server_chain), pki.truncated, "truncated")


def test_pkcs12_wrong_password(run, pki):
    assert_bad_input(run("cert", "verify", "--trusted", pki.root, "--purpose", "client",
                         "--password-file", pki.wrong_password_file, pki.alice_p12),
                     pki.alice_p12, "password")


# --- usage errors (exit 2) ------------------------------------------------------------------

def test_unknown_option(run, pki):
    assert_usage(run("cert", "verify", "--trusted", pki.root, "--frobnicate", pki.server_chain),
                 "--frobnicate")


def test_missing_leaf(run, pki):
    assert_usage(run("cert", "verify", "--trusted", pki.root))


def test_missing_trusted(run, pki):
    assert_usage(run("cert", "verify", pki.server_chain), "--trusted")


def test_bad_purpose(run, pki):
    assert_usage(run("cert", "verify", "--trusted", pki.root, "--purpose", "banana",
                     pki.server_chain), "banana")


@pytest.mark.parametrize("when", ["yesterday", "2026-13-01T00:00:00Z"])
def test_bad_at_time(run, pki, when):
    assert_usage(run("cert", "verify", "--trusted", pki.root, "--at", when, pki.server_chain),
                 when)


def test_name_with_underscore_is_a_usage_error(run, pki):
    """'_' is in no hostname (RFC 1123), so such a --name could never match a DNS SAN."""
    p = run("cert", "verify", "--trusted", pki.root, "--purpose", "server",
            "--name", "a_b.server.example", pki.server_chain)
    assert_usage(p, '--name: name "a_b.server.example" is neither a DNS name nor an IP address')


def test_bad_crl_scope(run, pki):
    p = run("cert", "verify", "--trusted", pki.root, "--crl", pki.int_crl, "--crl-scope", "all",
            pki.server_chain)
    assert p.returncode == 2, show(p)
    for needle in ('"all"', "chain", "leaf"):  # the bad value and the allowed ones (STYLE.md)
        assert needle in p.stderr, show(p)


# --- certificate policies (RFC 5280 6.1) ----------------------------------------------------
#
# A policy PKI made with the openssl CLI: one root, CAs carrying certificatePolicies,
# policyConstraints, policyMappings and inhibitAnyPolicy, and leaves under them.

import json  # noqa: E402
import subprocess  # noqa: E402

P1 = "1.3.6.1.4.1.55555.7.1"
P2 = "1.3.6.1.4.1.55555.7.2"
ANY = "2.5.29.32.0"

# The policy extensions of each section; CA_LINES or LEAF_LINES are added to each.
POLICY_EXT = """\
[ ca_base ]
[ ca_p1_explicit ]
certificatePolicies = {P1}
policyConstraints = critical, requireExplicitPolicy:0
[ ca_map ]
certificatePolicies = {P1}
policyMappings = critical, {P1}:{P2}
policyConstraints = critical, requireExplicitPolicy:0
[ ca_any_explicit ]
certificatePolicies = {ANY}
policyConstraints = critical, requireExplicitPolicy:0
[ ca_any_inhibit0 ]
certificatePolicies = {ANY}
policyConstraints = critical, requireExplicitPolicy:0
inhibitAnyPolicy = critical, 0
[ ca_any ]
certificatePolicies = {ANY}
[ ca_any_nomap ]
certificatePolicies = {ANY}
policyConstraints = critical, requireExplicitPolicy:0, inhibitPolicyMapping:0
[ leaf_p1 ]
certificatePolicies = {P1}
[ leaf_p2 ]
certificatePolicies = {P2}
[ leaf_none ]
""".format(P1=P1, P2=P2, ANY=ANY)

ROOT_LINES = ("basicConstraints = critical, CA:TRUE\nkeyUsage = critical, keyCertSign, cRLSign\n"
              "subjectKeyIdentifier = hash\n")
CA_LINES = ROOT_LINES + "authorityKeyIdentifier = keyid:always\n"
LEAF_LINES = ("basicConstraints = critical, CA:FALSE\nkeyUsage = critical, digitalSignature\n"
              "extendedKeyUsage = serverAuth\nsubjectAltName = DNS:policy.example\n"
              "subjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid:always\n")


class PolicyPKI:
    def __init__(self, d):
        self.d = d
        ext = ["[ root ]\n" + ROOT_LINES]
        for block in POLICY_EXT.split("[ ")[1:]:
            name, body = block.split(" ]\n", 1)
            ext.append("[ %s ]\n%s%s" % (name, CA_LINES if name.startswith("ca_") else LEAF_LINES,
                                         body))
        (d / "ext.cnf").write_text("\n".join(ext))
        self.serial = 0x5000
        self.root = self._cert("root", None, "root", "Policy Test Root")

    def _sh(self, *argv):
        subprocess.run(argv, check=True, capture_output=True, cwd=self.d)

    def _cert(self, name, issuer, section, cn):
        """Key and certificate `name` (EC P-256) signed by `issuer` (None: self-signed)."""
        self._sh("openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                 "-out", "%s.key" % name)
        self.serial += 1
        if issuer is None:
            self._sh("openssl", "req", "-new", "-x509", "-key", "%s.key" % name, "-subj",
                     "/CN=%s" % cn, "-days", "30", "-set_serial", str(self.serial),
                     "-config", "ext.cnf", "-extensions", section, "-out", "%s.pem" % name)
        else:
            self._sh("openssl", "req", "-new", "-key", "%s.key" % name, "-subj", "/CN=%s" % cn,
                     "-config", "ext.cnf", "-out", "%s.csr" % name)
            self._sh("openssl", "x509", "-req", "-in", "%s.csr" % name, "-CA",
                     "%s.pem" % issuer, "-CAkey", "%s.key" % issuer, "-set_serial",
                     str(self.serial), "-days", "20", "-extfile", "ext.cnf", "-extensions",
                     section, "-out", "%s.pem" % name)
        return self.d / ("%s.pem" % name)

    def chain(self, name, cas, leaf_section):
        """A leaf under the CAs (top first), written leaf first with the CAs after it."""
        issuer = "root"
        for i, section in enumerate(cas):
            ca = "%s-ca%d" % (name, i)
            self._cert(ca, issuer, section, "%s CA %d" % (name, i))
            issuer = ca
        leaf = self._cert(name, issuer, leaf_section, "%s.example" % name)
        path = self.d / ("%s-chain.pem" % name)
        parts = [leaf.read_text()]
        for i in reversed(range(len(cas))):
            parts.append((self.d / ("%s-ca%d.pem" % (name, i))).read_text())
        path.write_text("".join(parts))
        return path


@pytest.fixture(scope="module")
def ppki(tmp_path_factory):
    p = PolicyPKI(tmp_path_factory.mktemp("policy-pki"))
    p.explicit = p.chain("explicit", ["ca_p1_explicit"], "leaf_p1")
    p.explicit_none = p.chain("explicitnone", ["ca_p1_explicit"], "leaf_none")
    p.mapped = p.chain("mapped", ["ca_map"], "leaf_p2")
    p.nomap = p.chain("nomap", ["ca_any_nomap", "ca_map"], "leaf_p2")
    p.under_any = p.chain("underany", ["ca_any_explicit"], "leaf_p1")
    p.any_inhibited = p.chain("anyinhibited", ["ca_any_inhibit0", "ca_any"], "leaf_p1")
    p.plain = p.chain("plain", ["ca_base"], "leaf_none")
    return p


def verify_policy(run, ppki, chain, *flags):
    return run("cert", "verify", "--trusted", ppki.root, "--purpose", "server", *flags, chain)


def policies_line(p):
    lines = [line for line in p.stdout.splitlines() if line.startswith("policies:")]
    assert len(lines) == 1, show(p)
    return lines[0]


def test_policy_default_inputs_accept_required_explicit_policy(run, ppki):
    """The wrong refusal of issue 12: a CA requiring an explicit policy, a leaf under it."""
    p = verify_policy(run, ppki, ppki.explicit)
    assert_valid(p)
    assert policies_line(p) == "policies: " + P1, show(p)


def test_policy_required_by_ca_and_leaf_names_none(run, ppki):
    reason = assert_invalid(verify_policy(run, ppki, ppki.explicit_none), None,
                            "is not valid for an acceptable certificate policy",
                            "the policyConstraints of CN=explicitnone CA 0",
                            "require an explicit policy (requireExplicitPolicy)",
                            "acceptable: any policy",
                            "the chain allows: no policy (certificate CN=explicitnone.example")
    assert "has no certificatePolicies extension" in reason


def test_policy_json_reports_the_set_and_the_refusal(run, ppki):
    p = verify_policy(run, ppki, ppki.explicit, "--format", "json")
    assert p.returncode == 0, show(p)
    out = json.loads(p.stdout)
    assert out["valid"] is True and out["policies"] == [P1], show(p)
    assert out["name"] == "policy.example", show(p)
    p = verify_policy(run, ppki, ppki.explicit_none, "--format", "json")
    assert p.returncode == 1, show(p)
    out = json.loads(p.stdout)
    assert out["valid"] is False and out["code"] == "cert_policy", show(p)
    assert out["error"] == p.stderr.strip(), show(p)
    p = verify_policy(run, ppki, ppki.plain, "--format", "json")
    assert json.loads(p.stdout)["policies"] == [], show(p)


def test_policy_flag_met_and_unmet(run, ppki):
    p = verify_policy(run, ppki, ppki.explicit, "--policy", P1)
    assert_valid(p)
    assert policies_line(p) == "policies: " + P1, show(p)
    assert_invalid(verify_policy(run, ppki, ppki.explicit, "--policy", P2), None,
                   "acceptable: %s; the chain allows: %s" % (P2, P1))
    # Several --policy: the chain is valid for the one it allows.
    p = verify_policy(run, ppki, ppki.explicit, "--policy", P2, "--policy", P1)
    assert_valid(p)
    assert policies_line(p) == "policies: " + P1, show(p)


def test_policy_flag_without_explicit_requirement_reports_none(run, ppki):
    """RFC 5280 6.1.5 (g): no explicit policy required, so valid, for no acceptable policy."""
    p = verify_policy(run, ppki, ppki.plain, "--policy", P1)
    assert_valid(p)
    assert policies_line(p) == "policies: none", show(p)


def test_require_explicit_policy_flag(run, ppki):
    p = verify_policy(run, ppki, ppki.plain)
    assert_valid(p)
    assert not [ln for ln in p.stdout.splitlines() if ln.startswith("policies:")], show(p)
    assert_invalid(verify_policy(run, ppki, ppki.plain, "--require-explicit-policy"), None,
                   "the verification requires an explicit policy (require-explicit-policy)",
                   "the chain allows: no policy")
    p = verify_policy(run, ppki, ppki.under_any, "--require-explicit-policy")
    assert_valid(p)
    assert policies_line(p) == "policies: " + P1, show(p)


def test_inhibit_policy_mapping_flag(run, ppki):
    p = verify_policy(run, ppki, ppki.mapped)
    assert_valid(p)
    assert policies_line(p) == "policies: " + P1, show(p)  # the issuer's domain
    assert_invalid(verify_policy(run, ppki, ppki.mapped, "--inhibit-policy-mapping"), None,
                   "is not valid for an acceptable certificate policy",
                   "the chain allows: no policy")


def test_inhibit_policy_mapping_constraint(run, ppki):
    assert_invalid(verify_policy(run, ppki, ppki.nomap), None,
                   "the policyConstraints of CN=nomap CA 0")


def test_inhibit_any_policy_flag(run, ppki):
    p = verify_policy(run, ppki, ppki.under_any)
    assert_valid(p)
    assert policies_line(p) == "policies: " + P1, show(p)
    assert_invalid(verify_policy(run, ppki, ppki.under_any, "--inhibit-any-policy"), None,
                   "the policyConstraints of CN=underany CA 0",
                   "the chain allows: no policy")


def test_inhibit_any_policy_extension(run, ppki):
    assert_invalid(verify_policy(run, ppki, ppki.any_inhibited), None,
                   "is not valid for an acceptable certificate policy")


@pytest.mark.parametrize("oid", ["anyPolicy", "1..2", "1.02", "1.2.", "x"])
def test_bad_policy_oid_is_usage(run, ppki, oid):
    assert_usage(verify_policy(run, ppki, ppki.explicit, "--policy", oid), '"%s"' % oid,
                 "dotted decimal")


def test_bad_format_is_usage(run, ppki):
    assert_usage(verify_policy(run, ppki, ppki.explicit, "--format", "yaml"), '"yaml"',
                 "text or json")


# --- CRL scope and CRL signers (RFC 5280 5.2.5, 6.3.3) --------------------------------------
#
# Built with the openssl CLI here, apart from the shared PKI: a root that issues leaves
# directly and publishes partitioned CRLs (issuingDistributionPoint part1 / part2), and a
# root that rolled its key over (a new self-signed root of the same name, a self-issued
# certificate carrying the old key under the new one, CRLs signed with the new key).

from pathlib import Path  # noqa: E402

from pki import CA, openssl  # noqa: E402

SCOPE_EXT = """\
[ req ]
distinguished_name = req_dn
prompt = no
[ req_dn ]
CN = unused
[ v3_root ]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
[ v3_part1 ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:part1.example
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
crlDistributionPoints = URI:http://crl.example/part1.crl
[ v3_part2 ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:part2.example
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
crlDistributionPoints = URI:http://crl.example/part2.crl
[ v3_leaf ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:roll.example
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
[ idp1_ext ]
authorityKeyIdentifier = keyid:always
issuingDistributionPoint = critical, @idp1
[ idp1 ]
fullname = URI:http://crl.example/part1.crl
[ idp2_ext ]
authorityKeyIdentifier = keyid:always
issuingDistributionPoint = critical, @idp2
[ idp2 ]
fullname = URI:http://crl.example/part2.crl
[ idp_none_ext ]
authorityKeyIdentifier = keyid:always
[ crlnum_critical_ext ]
authorityKeyIdentifier = keyid:always
2.5.29.20 = critical, DER:02:01:07
"""


class ScopePKI:
    """The files of the CRL scope and key rollover tests; attributes are Paths."""

    def __init__(self, directory):
        self.dir = Path(directory)
        self.ext_cnf = self.dir / "scope-ext.cnf"
        self.ext_cnf.write_text(SCOPE_EXT)
        self._partitions()
        self._rollover()

    def p(self, name):
        return self.dir / name

    def key(self, name):
        path = self.p(name + ".key")
        openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                "-out", path)
        return path

    def csr(self, name, key, subj):
        path = self.p(name + ".csr")
        openssl("req", "-new", "-config", self.ext_cnf, "-key", key, "-subj", subj, "-out", path)
        return path

    def root(self, name, key, subj):
        path = self.p(name + ".pem")
        openssl("req", "-x509", "-new", "-config", self.ext_cnf, "-extensions", "v3_root",
                "-key", key, "-subj", subj, "-days", "3650", "-sha256", "-out", path)
        return path

    def issue(self, ca, name, subj, ext):
        out = self.p(name + ".pem")
        ca.sign(self.csr(name, self.key(name), subj), out, ext)
        return out

    def gencrl(self, ca, out, section):
        """A CRL with the extensions of `section` (openssl ca reads them from its own file)."""
        cnf = ca.cnf.read_text()
        if "[ %s ]" % section not in cnf:
            ca.cnf.write_text(cnf + "\n" + SCOPE_EXT[SCOPE_EXT.index("[ idp1_ext ]"):])
        openssl("ca", "-batch", "-config", ca.cnf, "-gencrl", "-crldays", "30",
                "-crlexts", section, "-out", out)
        return out

    def _partitions(self):
        subj = "/O=Duet Scope/CN=Duet Scope Root CA"
        self.part_root = self.root("part-root", self.key("part-root"), subj)
        ca = CA(self, "part", self.part_root, self.p("part-root.key"), "7A01")
        self.part1_leaf = self.issue(ca, "part1-leaf", "/CN=part1.example", "v3_part1")
        self.part2_leaf = self.issue(ca, "part2-leaf", "/CN=part2.example", "v3_part2")
        # Partition 1's CRL is made before partition 2's leaf is revoked: it lists nothing.
        self.part1_crl = self.gencrl(ca, self.p("part1.crl"), "idp1_ext")
        ca.revoke(self.part2_leaf, "keyCompromise")
        self.part2_crl = self.gencrl(ca, self.p("part2.crl"), "idp2_ext")
        # A critical cRLNumber: written by hand, with openssl's own cRLNumber turned off.
        self.gencrl(ca, self.p("unused.crl"), "idp1_ext")
        nonum = CA(self, "part-nonum", self.part_root, self.p("part-root.key"), "7A80")
        nonum.cnf.write_text(ca.cnf.read_text().replace(str(ca.dir), str(nonum.dir))
                             .replace("crlnumber = $dir/crlnumber\n", ""))
        self.crlnum_critical_crl = self.gencrl(nonum, self.p("crlnum-critical.crl"),
                                               "crlnum_critical_ext")

    def _rollover(self):
        subj = "/O=Duet Roll/CN=Duet Roll Root CA"
        old_key = self.key("roll-old")
        self.old_root = self.root("roll-old", old_key, subj)
        old = CA(self, "roll-old", self.old_root, old_key, "5E01")
        self.old_leaf = self.issue(old, "roll-revoked", "/CN=roll.example", "v3_leaf")
        self.old_leaf_good = self.issue(old, "roll-good", "/CN=roll.example", "v3_leaf")
        old.revoke(self.old_leaf, "keyCompromise")
        # The new key: a new self-signed root of the same name, and the old key certified
        # under it (a self-issued certificate, RFC 5280 6.1 "self-issued").
        new_key = self.key("roll-new")
        self.new_root = self.root("roll-new", new_key, subj)
        new = CA(self, "roll-new", self.new_root, new_key, "5E80")
        (new.dir / "index.txt").write_bytes((old.dir / "index.txt").read_bytes())
        self.old_with_new = self.p("roll-old-with-new.pem")
        new.sign(self.csr("roll-old-with-new", old_key, subj), self.old_with_new, "v3_root")
        self.new_crl = self.gencrl(new, self.p("roll-new.crl"), "idp_none_ext")

        # Someone else's CA of the same name, with its own empty CRL made later.
        rogue_key = self.key("roll-rogue")
        self.rogue_root = self.root("roll-rogue", rogue_key, subj)
        rogue = CA(self, "roll-rogue", self.rogue_root, rogue_key, "0BAD80")
        self.rogue_crl = self.gencrl(rogue, self.p("roll-rogue.crl"), "idp_none_ext")


@pytest.fixture(scope="module")
def scope_pki(tmp_path_factory):
    return ScopePKI(tmp_path_factory.mktemp("crlscope"))


def test_crl_of_own_partition_covers(run, scope_pki):
    s = scope_pki
    assert_valid(run("cert", "verify", "--trusted", s.part_root, "--crl", s.part1_crl,
                     "--purpose", "server", s.part1_leaf))


def test_crl_of_other_partition_does_not_pass_a_revoked_leaf(run, pki, scope_pki):
    """The revoked leaf of partition 2 with partition 1's CRL (which does not list it): the
    CRL does not cover it, so it is refused as not covered, never accepted as valid."""
    s = scope_pki
    reason = assert_invalid(
        run("cert", "verify", "--trusted", s.part_root, "--crl", s.part1_crl,
            "--purpose", "server", s.part2_leaf),
        pki.serial(s.part2_leaf), "no CRL given covers certificate CN=part2.example",
        "the CRL of CN=Duet Scope Root CA,O=Duet Scope (%s) does not count" % s.part1_crl,
        "its issuingDistributionPoint is URI:http://crl.example/part1.crl, which is none of "
        "the certificate's CRL distribution points (URI:http://crl.example/part2.crl)")
    assert "valid:" not in reason
    # With its own partition's CRL it is found revoked.
    assert_invalid(
        run("cert", "verify", "--trusted", s.part_root, "--crl", s.part1_crl, "--crl",
            s.part2_crl, "--purpose", "server", s.part2_leaf),
        pki.serial(s.part2_leaf), "was revoked on", "reason: keyCompromise",
        "by the CRL of CN=Duet Scope Root CA,O=Duet Scope")


def test_crl_with_critical_crl_number_refused(run, scope_pki):
    s = scope_pki
    assert_bad_input(
        run("cert", "verify", "--trusted", s.part_root, "--crl", s.crlnum_critical_crl,
            "--purpose", "server", s.part1_leaf),
        s.crlnum_critical_crl,
        "the CRL of CN=Duet Scope Root CA,O=Duet Scope marks its cRLNumber extension critical; "
        "RFC 5280 5.2.3 requires it non-critical")


def test_rollover_leaf_revoked_by_new_key_crl(run, pki, scope_pki):
    """A leaf of the old key, on the path leaf -> old key under the new -> new root, is found
    revoked by the CRL the new key signed."""
    s = scope_pki
    assert_invalid(
        run("cert", "verify", "--trusted", s.new_root, "--untrusted", s.old_with_new,
            "--crl", s.new_crl, "--purpose", "server", s.old_leaf),
        pki.serial(s.old_leaf), "was revoked on", "reason: keyCompromise",
        "by the CRL of CN=Duet Roll Root CA,O=Duet Roll")


def test_rollover_good_leaf_covered_by_new_key_crl(run, scope_pki):
    s = scope_pki
    assert_valid(run("cert", "verify", "--trusted", s.new_root, "--untrusted", s.old_with_new,
                     "--crl", s.new_crl, "--purpose", "server", s.old_leaf_good))


def test_crl_of_same_named_rogue_ca_does_not_count(run, pki, scope_pki):
    """Another CA of the same name, even trusted for its own chains, cannot sign CRLs for this
    one: its newer empty CRL does not hide the revocation, and alone it covers nothing."""
    s = scope_pki
    assert_invalid(
        run("cert", "verify", "--trusted", s.new_root, "--trusted", s.rogue_root,
            "--untrusted", s.old_with_new, "--crl", s.rogue_crl, "--crl", s.new_crl,
            "--purpose", "server", s.old_leaf),
        pki.serial(s.old_leaf), "was revoked on", "by the CRL of CN=Duet Roll Root CA")
    assert_invalid(
        run("cert", "verify", "--trusted", s.new_root, "--trusted", s.rogue_root,
            "--untrusted", s.old_with_new, "--crl", s.rogue_crl, "--purpose", "server",
            s.old_leaf_good),
        pki.serial(s.old_leaf_good), "is not signed by that CA's key",
        "has that name and signs the CRL, but is not that CA's CRL signer: its path must "
        "validate to the same trust anchor, CN=Duet Roll Root CA,O=Duet Roll (serial %s)"
        % pki.serial(s.new_root))


# --- name constraints (RFC 5280 4.2.1.10) ------------------------------------------------------

@pytest.fixture(scope="module")
def nc_chains(tmp_path_factory):
    from ncpki import NCChain
    base = tmp_path_factory.mktemp("nc")
    return {
        "excluding": NCChain(base / "excl", "Excluding CA", ["excluded;DNS:bar.example.com"]),
        "permitting": NCChain(base / "perm", "Permitting CA",
                              ["permitted;DNS:corp", "permitted;IP:10.0.0.0/255.0.0.0"]),
    }


def test_wildcard_that_can_match_an_excluded_name_is_refused(run, nc_chains):
    c = nc_chains["excluding"]
    chain, _, crt = c.leaf("wild", "wild.example.com", ["DNS:*.example.com"])
    assert_invalid(run("cert", "verify", "--trusted", c.root, "--purpose", "server", chain),
                   c.serial(crt),
                   "certificate CN=wild.example.com,O=NC Test (serial %s) has the wildcard DNS "
                   "name *.example.com, which can stand for names in the excluded subtree "
                   "DNS:bar.example.com of the name constraints of CN=Excluding CA,O=NC Test "
                   "(serial %s) (RFC 5280 4.2.1.10)" % (c.serial(crt), c.serial(c.inter)))
    # Its twin: a plain name beside the excluded one is fine, and so is the wildcard under a
    # CA that excludes a name it cannot stand for.
    chain, _, _ = c.leaf("foo", "foo.example.com", ["DNS:foo.example.com"])
    assert_valid(run("cert", "verify", "--trusted", c.root, "--purpose", "server",
                     "--name", "foo.example.com", chain))


def test_dns_constraints_leave_the_cn_of_a_leaf_with_sans_alone(run, nc_chains):
    c = nc_chains["permitting"]
    # Only an IP address (inside) beside a host-like CN outside the DNS constraint.
    chain, _, _ = c.leaf("iponly", "evil.example", ["IP:10.0.0.7"])
    assert_valid(run("cert", "verify", "--trusted", c.root, "--purpose", "server",
                     "--name", "10.0.0.7", chain))
    # The IP address outside is still refused, and so is a DNS name outside.
    for name, san in (("ipout", "IP:192.168.0.7"), ("dnsout", "DNS:evil.example")):
        chain, _, crt = c.leaf(name, "evil.example", [san])
        assert_invalid(run("cert", "verify", "--trusted", c.root, "--purpose", "server", chain),
                       c.serial(crt), "has a name outside the name constraints of "
                       "CN=Permitting CA,O=NC Test")


def test_malformed_dns_name_under_a_permitted_subtree_is_refused(run, nc_chains):
    c = nc_chains["permitting"]
    chain, _, crt = c.leaf("under", "app.corp", ["DNS:my_app.corp"])
    assert_invalid(run("cert", "verify", "--trusted", c.root, "--purpose", "server", chain),
                   c.serial(crt),
                   "has the DNS name \"my_app.corp\" in its subject alternative names, which is "
                   "not a valid host name: '_' is not allowed in a host name")
    chain, _, _ = c.leaf("hyphen", "my-app.corp", ["DNS:my-app.corp"])
    assert_valid(run("cert", "verify", "--trusted", c.root, "--purpose", "server",
                     "--name", "my-app.corp", chain))


def test_an_extension_that_is_not_der_is_refused(run, tmp_path):
    """x509-limbo webpki::malformed-aia: a leaf made by openssl with garbage as its
    authorityInfoAccess; the twin with a real one verifies."""
    ext = tmp_path / "ext.cnf"
    ext.write_text("[ root ]\n" + ROOT_LINES + "[ good ]\n" + LEAF_LINES +
                   "authorityInfoAccess = OCSP;URI:http://ocsp.example\n"
                   "[ bad ]\n" + LEAF_LINES + "1.3.6.1.5.5.7.1.1 = DER:6d616c666f726d6564\n")

    def sh(*argv):
        subprocess.run(argv, check=True, capture_output=True, cwd=tmp_path)

    for name in ("root", "leaf"):
        sh("openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
           "-out", "%s.key" % name)
    sh("openssl", "req", "-new", "-x509", "-key", "root.key", "-subj", "/CN=AIA Root",
       "-days", "30", "-set_serial", "4096", "-config", str(ext), "-extensions", "root",
       "-out", "root.pem")
    sh("openssl", "req", "-new", "-key", "leaf.key", "-subj", "/CN=policy.example",
       "-config", str(ext), "-out", "leaf.csr")
    for serial, section in ((4097, "good"), (4098, "bad")):
        sh("openssl", "x509", "-req", "-in", "leaf.csr", "-CA", "root.pem", "-CAkey", "root.key",
           "-set_serial", str(serial), "-days", "20", "-extfile", str(ext), "-extensions",
           section, "-out", "%s.pem" % section)
    assert_valid(run("cert", "verify", "--trusted", tmp_path / "root.pem", "--purpose", "server",
                     "--name", "policy.example", tmp_path / "good.pem"))
    assert_invalid(run("cert", "verify", "--trusted", tmp_path / "root.pem", "--purpose",
                       "server", "--name", "policy.example", tmp_path / "bad.pem"),
                   "10:02", "CN=policy.example", "has a malformed authorityInfoAccess extension",
                   "is not the DER of the extension's syntax (RFC 5280 4.2)")
