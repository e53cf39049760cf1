# SPDX-License-Identifier: Apache-2.0
"""The lifecycle rules of `duet ca serve` a step-ca or Vault PKI user expects, with the real
binary on 127.0.0.1 (docs/ca-server.md):

- renewal after expiry within a profile's renew_grace (off by default): an expired client
  certificate gets through the TLS layer to the application, which renews it within the grace
  and refuses it with a JSON 401 otherwise (grace off, grace over, revoked, on any other
  endpoint); a certificate of another CA, expired or not, is still refused by the handshake;
- who revoked, in the inventory: the API caller's identity or `cli:` and the login name, shown by
  `duet cert show` and `duet cert list --format json`;
- short-lived by default over the API: enrollment and renewal issue the profile's api_ttl (24h
  unless ca.yaml says otherwise), while `duet cert issue` keeps default_ttl.

Short-lived certificates come from `duet cert issue --ttl 2s`, and the tests wait for them to
expire: the CA server reads the real clock.
"""

import calendar
import json
import os
import pwd
import ssl
import subprocess
import time

import pytest

from conftest import show
from test_ca_serve import CAServer, enroll, make_csr, make_token, openssl, serials

# Profiles appended to the ca.yaml `duet ca init` wrote (profiles is its last key).
EXTRA_PROFILES = """\
  roamer:
    extended_key_usage: [clientAuth]
    default_ttl: 720h
    max_ttl: 2160h
    api_ttl: 2h
    san_types: [dns]
    require_san: true
    spiffe: false
    renew_grace: 1h
  brief:
    extended_key_usage: [clientAuth]
    default_ttl: 720h
    max_ttl: 2160h
    san_types: [dns]
    require_san: true
    spiffe: false
    renew_grace: 3s
"""


@pytest.fixture(scope="module")
def gsrv(make_ca, duet_bin):
    ca = make_ca("Grace Corp")
    cfg = ca.dir / "ca.yaml"
    text = cfg.read_text()
    # What `duet ca init` writes: the new keys, off and a day, in every profile.
    assert text.count("    renew_grace: 0\n") == 4 and text.count("    api_ttl: 24h\n") == 4, text
    cfg.write_text(text + EXTRA_PROFILES)
    s = CAServer(duet_bin, ca, "--admin-identity", "dns:admin.grace.example").start()
    yield s
    s.stop()


def expire(crt):
    """Wait until the certificate in crt is past its notAfter (by the wall clock)."""
    p = openssl("x509", "-in", crt, "-noout", "-enddate")
    end = p.stdout.decode().strip().split("=", 1)[1]
    na = calendar.timegm(time.strptime(end, "%b %d %H:%M:%S %Y GMT"))
    while time.time() < na + 1.2:
        time.sleep(0.2)
    return na


def lifetime(pem_path):
    """notAfter - notBefore of a certificate file, in seconds."""
    out = openssl("x509", "-in", pem_path, "-noout", "-startdate", "-enddate").stdout.decode()
    t = {}
    for line in out.splitlines():
        k, v = line.split("=", 1)
        t[k] = calendar.timegm(time.strptime(v, "%b %d %H:%M:%S %Y GMT"))
    return t["notAfter"] - t["notBefore"]


def shown(ca, serial):
    p = ca.duet("cert", "show", serial, "--ca-dir", ca.dir, "--format", "json")
    assert p.returncode == 0, show(p)
    return json.loads(p.stdout)


def test_expired_certificate_renews_within_grace_once(gsrv):
    ca = gsrv.ca
    crt, key, serial = ca.issued("laptop", "roamer", "--san", "dns:laptop.grace.example",
                                 "--ttl", "2s")
    expire(crt)
    # Anything but renewal refuses it, in JSON, naming the serial and the rule.
    st, _, err = gsrv.request("GET", "/healthz", cert=crt, key=key)
    assert st == 401 and err["error"] == "certificate_expired", err
    assert "only POST /v1/renew accepts an expired certificate" in err["detail"], err
    st, _, err = gsrv.request("POST", "/v1/revoke", {"serial": serial}, cert=crt, key=key)
    assert st == 401 and err["error"] == "certificate_expired", err
    assert shown(ca, serial)["status"] == "expired"
    # Renewal within the profile's hour of grace: a new certificate of the same identity.
    before = serials(ca)
    st, _, ans = gsrv.request("POST", "/v1/renew", {}, cert=crt, key=key)
    assert st == 200, ans
    assert ans["serial"] != serial and ans["serial"] not in before
    new = ca.base / "laptop-2.crt"
    new.write_text(ans["certificate"])
    txt = openssl("x509", "-in", new, "-noout", "-text").stdout.decode()
    assert "DNS:laptop.grace.example" in txt, txt
    # The profile's api_ttl (2h) from now, not the old certificate's 2 seconds.
    assert abs(lifetime(new) - (2 * 3600 + 60)) <= 2, lifetime(new)
    assert shown(ca, ans["serial"])["renews"] == serial
    assert shown(ca, serial)["renewed_by"] == ans["serial"]
    # The audit log and the metrics say it was a grace renewal.
    line = [x for x in gsrv.lines() if x.get("event") == "ca_request" and
            x.get("issued") == ans["serial"]]
    assert len(line) == 1 and line[0]["grace_renewal"] is True, line
    assert line[0]["renews"] == serial and line[0]["expired_at"].endswith("Z"), line
    st, _, metrics = gsrv.request("GET", "/metrics")
    assert 'duet_ca_issued_total{how="renew_grace"} 1' in metrics.decode(), metrics
    # Once: the expired certificate was renewed already.
    before = serials(ca)
    st, _, err = gsrv.request("POST", "/v1/renew", {}, cert=crt, key=key)
    assert st == 409 and err["error"] == "already_renewed", err
    assert err["successor"] == ans["serial"]
    assert serials(ca) == before


def test_grace_off_over_and_revoked_each_refused(gsrv):
    ca = gsrv.ca
    off_crt, off_key, off_serial = ca.issued("offline", "client", "--ttl", "2s")
    brief_crt, brief_key, brief_serial = ca.issued("briefhost", "brief", "--san",
                                                   "dns:briefhost.grace.example", "--ttl", "2s")
    rev_crt, rev_key, rev_serial = ca.issued("stolen", "roamer", "--san",
                                             "dns:stolen.grace.example", "--ttl", "2s")
    p = ca.duet("cert", "revoke", rev_serial, "--ca-dir", ca.dir, "--reason", "keyCompromise")
    assert p.returncode == 0, show(p)
    expire(off_crt)
    expire(brief_crt)
    expire(rev_crt)
    time.sleep(3)  # past brief's 3 seconds of grace
    before = serials(ca)
    # Grace off (the client profile, as duet ca init writes it).
    st, _, err = gsrv.request("POST", "/v1/renew", {}, cert=off_crt, key=off_key)
    assert st == 401 and err["error"] == "certificate_expired", err
    assert err["serial"] == off_serial and err["renew_grace"] == "off", err
    assert err["expired_at"] == shown(ca, off_serial)["not_after"], err
    assert ("the client certificate (serial %s) expired at %s, and profile client allows no "
            "renewal after expiry (renew_grace: off); enroll again with a new token "
            "(duet ca token)" % (off_serial, err["expired_at"])) == err["detail"], err
    # Grace over.
    st, _, err = gsrv.request("POST", "/v1/renew", {}, cert=brief_crt, key=brief_key)
    assert st == 401 and err["error"] == "certificate_expired", err
    assert err["serial"] == brief_serial and err["renew_grace"] == "3s", err
    assert "profile brief allows renewal for 3s after expiry (renew_grace), which ended at" \
        in err["detail"], err
    assert "enroll again with a new token" in err["detail"], err
    # Revoked, then expired within the grace: never renews.
    st, _, err = gsrv.request("POST", "/v1/renew", {}, cert=rev_crt, key=rev_key)
    assert st == 401 and "revoked" in err["detail"] and "keyCompromise" in err["detail"], err
    assert serials(ca) == before
    refused = [x for x in gsrv.lines() if x.get("event") == "ca_request" and
               x.get("endpoint") == "/v1/renew" and x.get("status") == 401]
    assert any(x.get("error") == "certificate_expired" and off_serial in x["detail"]
               for x in refused), refused


def test_other_ca_refused_by_the_handshake_expired_or_not(gsrv, make_ca):
    """Only an expired leaf of this CA passes the TLS layer: another CA's certificate, expired
    or not, is refused by the handshake with an unknown_ca alert, and the server says why."""
    ca = gsrv.ca
    other = make_ca("Elsewhere Corp")
    before = serials(ca)
    for ttl in ("2s", "1h"):
        crt, key, _ = other.issued("intruder" + ttl, "client", "--ttl", ttl)
        if ttl == "2s":
            expire(crt)
        with pytest.raises((ssl.SSLError, ConnectionResetError, BrokenPipeError)):
            gsrv.request("POST", "/v1/renew", {}, cert=crt, key=key)
        p = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % gsrv.port,
                            "-CAfile", str(ca.root), "-cert", str(crt), "-key", str(key),
                            "-ign_eof"], input=b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
                           capture_output=True, timeout=20)
        out = (p.stdout + p.stderr).decode()
        assert "alert unknown ca" in out and "HTTP/1.1" not in out, out
    assert serials(ca) == before
    refused = [x for x in gsrv.lines() if x.get("event") == "ca_handshake_refused"]
    assert len(refused) >= 4, refused
    assert all(x["reason"] == "unknown_ca" and x["alert"] == "unknown CA" and
               "not among the trusted certificates" in x["detail"] and
               x["peer"].startswith("127.0.0.1:") for x in refused), refused


def test_who_revoked_api_holder_admin_and_cli(gsrv):
    ca = gsrv.ca
    a_crt, a_key, a = enroll(gsrv, "who-a")
    b_crt, b_key, b = enroll(gsrv, "who-b")
    c_crt, c_key, c_serial = ca.issued("who-c", "server", "--san", "dns:who-c.grace.example")
    ad_crt, ad_key, _ = ca.issued("admin", "server", "--san", "dns:admin.grace.example")
    # The holder revokes its own.
    st, _, ans = gsrv.request("POST", "/v1/revoke", {"serial": a["serial"]}, cert=a_crt,
                              key=a_key)
    assert st == 200, ans
    # The admin revokes another's.
    st, _, ans = gsrv.request("POST", "/v1/revoke", {"serial": b["serial"],
                                                     "reason": "superseded"},
                              cert=ad_crt, key=ad_key)
    assert st == 200, ans
    # An operator with the CLI.
    p = ca.duet("cert", "revoke", c_serial, "--ca-dir", ca.dir)
    assert p.returncode == 0, show(p)
    login = pwd.getpwuid(os.geteuid()).pw_name
    assert shown(ca, a["serial"])["revoked_by"] == "dns:who-a.corp.example"
    assert shown(ca, b["serial"])["revoked_by"] == "dns:admin.grace.example"
    assert shown(ca, c_serial)["revoked_by"] == "cli:" + login
    # The text form, and cert list --format json.
    p = ca.duet("cert", "show", b["serial"], "--ca-dir", ca.dir)
    assert p.returncode == 0, show(p)
    assert [ln.split() for ln in p.stdout.splitlines() if ln.startswith("revoked_by")] == \
        [["revoked_by", "dns:admin.grace.example"]], p.stdout
    rows = {r["serial"]: r for r in ca.list("--status", "revoked")}
    assert rows[a["serial"]]["revoked_by"] == "dns:who-a.corp.example"
    assert rows[c_serial]["revoked_by"] == "cli:" + login
    # A valid row has no revoked_by at all.
    valid = [r for r in ca.list("--status", "valid")]
    assert valid and all("revoked_by" not in r for r in valid), valid
    assert "revoked_by" not in shown(ca, valid[0]["serial"])


def test_api_issues_a_day_by_default_and_the_cli_default_ttl(gsrv):
    ca = gsrv.ca
    # Enrollment under the server profile (default_ttl 2160h): a day over the API.
    crt, key, ans = enroll(gsrv, "dayhost")
    assert abs(lifetime(crt) - (24 * 3600 + 60)) <= 2, lifetime(crt)
    # Renewal over the API: a day as well.
    st, _, ren = gsrv.request("POST", "/v1/renew", {}, cert=crt, key=key)
    assert st == 200, ren
    new = ca.base / "dayhost-2.crt"
    new.write_text(ren["certificate"])
    assert abs(lifetime(new) - (24 * 3600 + 60)) <= 2, lifetime(new)
    # A certificate of the same profile from `duet cert issue`: default_ttl, 90 days.
    cli_crt, _, _ = ca.issued("clihost", "server", "--san", "dns:clihost.grace.example")
    assert abs(lifetime(cli_crt) - (2160 * 3600 + 60)) <= 2, lifetime(cli_crt)
    # An explicit api_ttl (roamer: 2h) through a token.
    tok = make_token(ca, "roaming", "roamer", "--san", "dns:roaming.grace.example")
    rkey, csr = make_csr(ca, "roaming")
    st, _, rans = gsrv.request("POST", "/v1/enroll", {"token": tok, "csr": csr})
    assert st == 200, rans
    rcrt = ca.base / "roaming.crt"
    rcrt.write_text(rans["certificate"])
    assert abs(lifetime(rcrt) - (2 * 3600 + 60)) <= 2, lifetime(rcrt)
