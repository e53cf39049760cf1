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


def test_bad_crl_scope(run, pki):
    p = run("cert", "verify", "--trusted", pki.root, "--crl", pki.int_crl, "--crl-scope", "all",
            pki.server_chain)
    assert p.returncode == 2, show(p)
    for needle in ('"all"', "chain", "leaf"):  # the bad value and the allowed ones (STYLE.md)
        assert needle in p.stderr, show(p)


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
