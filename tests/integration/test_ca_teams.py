# SPDX-License-Identifier: Apache-2.0
"""Teams in duet-issued identities: a profile with `team_from_owner` puts `--owner` in the
subject OU and/or the SPIFFE ID path, so that `duet proxy` rules `ou:payments` and
`uri:spiffe://test-corp/payments/*` admit the payments team's certificates and refuse another
team's, with the reason in the log.  Bad teams are refused with the field named.
"""

import re
import subprocess

import pytest

from proxyutil import openssl, start_http_proxy
from test_proxy_h2 import curl, url

TEAM_PROFILE = """\
  team-client:
    extended_key_usage: [clientAuth]
    default_ttl: 720h
    max_ttl: 2160h
    san_types: [uri]
    require_san: true
    spiffe: true
    uri: ["spiffe://test-corp/*"]
    team_from_owner: [ou, spiffe]
"""

RULES = """\
      - {name: payments-ou, allow: ["ou:payments"], path_prefix: /ou}
      - {name: payments-spiffe, allow: ["uri:spiffe://test-corp/payments/*"], path_prefix: /spiffe}
"""


@pytest.fixture(scope="module")
def teams(dpki):
    """dpki's CA with the team-client profile; pay-alice (payments) and hr-bob (hr)."""
    cfg = dpki.ca / "ca.yaml"
    cfg.write_text(cfg.read_text() + TEAM_PROFILE)
    dpki.issue("team-client", "pay-alice", "--owner", "payments")
    dpki.issue("team-client", "hr-bob", "--owner", "hr")
    return dpki


def subject_and_sans(crt):
    return openssl("x509", "-in", str(crt), "-noout", "-subject", "-ext", "subjectAltName",
                   "-nameopt", "RFC2253")


def test_team_in_subject_and_spiffe_id(teams):
    out = subject_and_sans(teams.pay_alice_crt)
    assert "subject=CN=pay-alice,OU=payments,O=Test Corp" in out, out
    assert "URI:spiffe://test-corp/payments/pay-alice" in out, out
    listed = teams.duet("cert", "list", "--ca-dir", teams.ca, "--format", "json")
    assert '"owner": "payments"' in listed or '"owner":"payments"' in listed, listed


@pytest.fixture(scope="module")
def px(teams, module_procs, tmp_path_factory, echo):
    return start_http_proxy(teams, module_procs, tmp_path_factory.mktemp("teams"), echo.port,
                            rules=RULES)


@pytest.mark.parametrize("path,rule", [("/ou/x", "payments-ou"), ("/spiffe/x", "payments-spiffe")])
def test_team_rules_admit_the_team(teams, px, path, rule):
    mark = px.log.mark()
    status, _, body = curl(teams, url(px, path), cert="pay_alice")
    assert status == 200, body
    ev = px.log.wait_event("authz", mark, path=path)
    assert (ev["decision"], ev["rule"]) == ("allow", rule)
    assert ev["identity"] == "spiffe://test-corp/payments/pay-alice"


@pytest.mark.parametrize("path", ["/ou/x", "/spiffe/x"])
def test_team_rules_refuse_another_team(teams, px, path):
    mark = px.log.mark()
    status, _, _ = curl(teams, url(px, path), cert="hr_bob")
    assert status == 403
    ev = px.log.wait_event("authz", mark, path=path)
    assert (ev["decision"], ev["rule"]) == ("deny", "default-deny")
    assert ev["identity"] == "spiffe://test-corp/hr/hr-bob"


@pytest.mark.parametrize("extra,error", [
    ((), "profile team-client puts the owner's team in the certificate (team_from_owner); "
         "give --owner TEAM"),
    (("--owner", "pay/ments"), "--owner: a team holds no '/' (offset 3): it is one segment of "
                               "the SPIFFE ID; expected letters, digits, '.', '-' or '_'"),
    (("--owner", "pay\x1bments"), "--owner: a team holds the byte 0x1b at offset 3"),
    (("--owner", "payments", "--san", "uri:spiffe://test-corp/hr/x"),
     "profile team-client puts the team in the SPIFFE ID: spiffe://test-corp/hr/x is not under "
     "spiffe://test-corp/payments/ (the owner's team)"),
])
def test_bad_team_refused(teams, tmp_path, extra, error):
    p = subprocess.run([str(teams.duet_bin), "cert", "issue", "x", "--profile", "team-client",
                        "--ca-dir", str(teams.ca), "--out", str(tmp_path), *extra],
                       capture_output=True, text=True, env=teams.env, timeout=60)
    assert p.returncode == 1, (p.returncode, p.stderr)
    assert error in p.stderr, p.stderr
    assert not (tmp_path / "x.crt").exists()


@pytest.mark.parametrize("san", ["uri:spiffe://test-corp/hr/x", "uri:spiffe://test-corp/payments"])
def test_token_outside_the_team_is_refused_when_made(teams, san):
    """A token promises a certificate: one the CA would refuse at enrollment (a SPIFFE ID
    outside the owner's team path) is refused by `duet ca token` itself, and not recorded."""
    p = subprocess.run([str(teams.duet_bin), "ca", "token", "x", "--profile", "team-client",
                        "--ca-dir", str(teams.ca), "--owner", "payments", "--san", san],
                       capture_output=True, text=True, env=teams.env, timeout=60)
    assert p.returncode == 1, (p.returncode, p.stdout, p.stderr)
    assert ("profile team-client puts the team in the SPIFFE ID: %s is not under "
            "spiffe://test-corp/payments/ (the owner's team)" % san[4:]) in p.stderr, p.stderr
    assert "duet1_" not in p.stdout


def test_token_inside_the_team_is_made(teams):
    p = subprocess.run([str(teams.duet_bin), "ca", "token", "x", "--profile", "team-client",
                        "--ca-dir", str(teams.ca), "--owner", "payments",
                        "--san", "uri:spiffe://test-corp/payments/x"],
                       capture_output=True, text=True, env=teams.env, timeout=60)
    assert p.returncode == 0, p.stderr


LATE_PROFILE = TEAM_PROFILE.replace("team-client", "late-team").replace(
    "    team_from_owner: [ou, spiffe]\n", "")

OWNER_ERRORS = [
    ("late-space", ("--owner", "pay ments"),
     r"the owner of serial [0-9A-F:]+ in the inventory: a team holds the byte 0x20 at offset 3"),
    ("late-none", (),
     r"profile late-team puts the owner's team in the certificate \(team_from_owner\); the "
     r"owner of serial [0-9A-F:]+ in the inventory is not set"),
]


def test_renewal_names_the_inventory_owner_after_team_from_owner_is_added(teams, tmp_path):
    """team_from_owner added to a profile with certificates and tokens already issued: their
    renewals and redemptions fail closed, and the error names where the team came from (the
    owner in the inventory, the token's owner), not an --owner these commands do not take."""

    cfg = teams.ca / "ca.yaml"
    cfg.write_text(cfg.read_text() + LATE_PROFILE)
    for name, extra, _ in OWNER_ERRORS:
        teams.issue("late-team", name, "--san", "uri:spiffe://test-corp/%s" % name, *extra,
                    out=tmp_path)
    token = teams.duet("ca", "token", "late-token", "--profile", "late-team", "--ca-dir",
                       teams.ca, "--owner", "pay ments", "--san",
                       "uri:spiffe://test-corp/late-token").strip()
    key = tmp_path / "late-token.key"
    openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", key)
    openssl("req", "-new", "-key", key, "-subj", "/CN=late-token", "-out",
            tmp_path / "late-token.csr", "-addext",
            "subjectAltName=URI:spiffe://test-corp/late-token")
    cfg.write_text(cfg.read_text() + "    team_from_owner: [spiffe]\n")
    p = subprocess.run([str(teams.duet_bin), "cert", "sign", str(tmp_path / "late-token.csr"),
                        "--token", token, "--ca-dir", str(teams.ca), "--out",
                        str(tmp_path / "late-token.crt")],
                       capture_output=True, text=True, env=teams.env, timeout=60)
    assert p.returncode == 1, (p.returncode, p.stderr)
    assert "the token's owner: a team holds the byte 0x20 at offset 3" in p.stderr, p.stderr
    assert not (tmp_path / "late-token.crt").exists()
    (tmp_path / "renewed").mkdir()
    for name, _, error in OWNER_ERRORS:
        p = subprocess.run([str(teams.duet_bin), "cert", "renew", str(tmp_path / (name + ".crt")),
                            "--ca-dir", str(teams.ca), "--out", str(tmp_path / "renewed")],
                           capture_output=True, text=True, env=teams.env, timeout=60)
        assert p.returncode == 1, (p.returncode, p.stderr)
        assert re.search(error, p.stderr), p.stderr
        assert "--owner" not in p.stderr, p.stderr
        assert not (tmp_path / "renewed" / (name + ".crt")).exists()
