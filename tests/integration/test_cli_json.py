# SPDX-License-Identifier: Apache-2.0
"""`--format json` on the commands that print a result (ca init, cert issue, renew, sign,
expiring), parsed and checked against the certificates themselves; `cert list --expiring D`
and `cert expiring --within D` select the same certificates; `cert list`'s table stays
aligned with long names."""

import json
import re
import subprocess

from conftest import DuetCA, show


def fingerprint(path):
    out = subprocess.run(["openssl", "x509", "-in", str(path), "-noout", "-fingerprint",
                          "-sha256"], capture_output=True, text=True, check=True).stdout
    return out.strip().split("=", 1)[1]


def serial_of(path):
    out = subprocess.run(["openssl", "x509", "-in", str(path), "-noout", "-serial"],
                         capture_output=True, text=True, check=True).stdout
    hexs = out.strip().split("=", 1)[1]
    return ":".join(hexs[i:i + 2] for i in range(0, len(hexs), 2))


def test_ca_init_json_names_the_files_it_made(run_env, tmp_path):
    ca = DuetCA(run_env, tmp_path, "Json Corp")
    p = ca.init("--format", "json")
    assert p.returncode == 0, show(p)
    j = json.loads(p.stdout)
    assert list(j) == ["ca_dir", "name", "root", "issuing", "inventory", "root_key_offline",
                       "key_uri"]
    assert j["name"] == "Json Corp" and j["inventory"] == "inventory.db"
    assert j["root"]["file"] == str(ca.root) and j["issuing"]["file"] == str(ca.issuing)
    assert j["root"]["subject"] == "CN=Json Corp Root CA,O=Json Corp"
    assert j["root"]["fingerprint_sha256"] == fingerprint(ca.root)
    assert j["issuing"]["serial"] == serial_of(ca.issuing)
    assert j["root_key_offline"] is None and j["key_uri"] is None


def test_ca_init_refuses_an_unknown_format(run_env, tmp_path):
    p = DuetCA(run_env, tmp_path, "X Corp").init("--format", "yaml")
    assert p.returncode == 2
    assert p.stderr == 'duet ca init: --format "yaml": expected text or json\n'


def test_issue_renew_and_sign_json(make_ca, tmp_path):
    ca = make_ca("Json Issue")
    p = ca.issue("web", "server", "--format", "json")
    assert p.returncode == 0, show(p)
    j = json.loads(p.stdout)
    assert list(j) == ["action", "serial", "subject", "profile", "not_before", "not_after",
                       "clamped", "key", "certificate", "renews"]
    assert j["action"] == "issued" and j["profile"] == "server" and j["renews"] is None
    assert j["certificate"] == str(ca.out / "web.crt") and j["key"] == str(ca.out / "web.key")
    assert j["serial"] == serial_of(ca.out / "web.crt")
    assert j["subject"] == "CN=web,O=Json Issue"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", j["not_after"])

    p = ca.duet("cert", "renew", j["serial"], "--ca-dir", ca.dir, "--out", ca.out, "--force",
                "--reuse-key", "--passphrase-file", ca.passfile, "--format", "json")
    assert p.returncode == 0, show(p)
    r = json.loads(p.stdout)
    assert r["action"] == "renewed" and r["renews"] == j["serial"] and r["key"] is None
    assert r["serial"] == serial_of(ca.out / "web.crt") != j["serial"]

    key, csr = tmp_path / "c.key", tmp_path / "c.csr"
    subprocess.run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", str(key), "-out", str(csr),
                    "-subj", "/CN=svc"], check=True, capture_output=True)
    p = ca.duet("cert", "sign", csr, "--profile", "client", "--ca-dir", ca.dir, "--out",
                tmp_path / "c.crt", "--san", "uri:spiffe://json-issue/svc", "--passphrase-file",
                ca.passfile, "--format", "json")
    assert p.returncode == 0, show(p)
    s = json.loads(p.stdout)
    assert s["action"] == "signed" and s["key"] is None
    assert s["certificate"] == str(tmp_path / "c.crt")
    assert s["serial"] == serial_of(tmp_path / "c.crt")


def test_expiring_json_and_list_expiring_select_the_same(make_ca):
    ca = make_ca("Json Expiring")
    _, _, short = ca.issued("short", "server", "--ttl", "48h")
    _, _, renewed = ca.issued("renewed", "server", "--ttl", "48h")
    _, _, revoked = ca.issued("revoked", "server", "--ttl", "48h")
    _, _, long_ = ca.issued("long", "server", "--ttl", "2000h")
    p = ca.duet("cert", "renew", renewed, "--ca-dir", ca.dir, "--out", ca.out, "--force",
                "--ttl", "2000h", "--passphrase-file", ca.passfile)
    assert p.returncode == 0, show(p)
    assert ca.duet("cert", "revoke", revoked, "--ca-dir", ca.dir).returncode == 0

    p = ca.duet("cert", "expiring", "--ca-dir", ca.dir, "--within", "7d", "--format", "json")
    assert p.returncode == 1, show(p)
    j = json.loads(p.stdout)
    assert j["within"] == "7d" and j["within_seconds"] == 7 * 86400
    assert [r["serial"] for r in j["expiring"]] == [short]
    assert j["expiring"][0]["days_left"] in (1, 2)

    for flag in ("--expiring", "--within"):
        listed = ca.list(flag, "7d")
        assert [r["serial"] for r in listed] == [short], flag
    # and the other way round: `cert expiring` takes the list's flag name
    p = ca.duet("cert", "expiring", "--ca-dir", ca.dir, "--expiring", "7d", "--format", "json")
    assert [r["serial"] for r in json.loads(p.stdout)["expiring"]] == [short]
    # the list's filters narrow both
    p = ca.duet("cert", "expiring", "--ca-dir", ca.dir, "--within", "7d", "--profile", "client")
    assert p.returncode == 0 and p.stdout == "no certificate expires within 7d\n", show(p)
    assert long_ not in [r["serial"] for r in ca.list("--expiring", "7d")]


def test_list_table_columns_line_up_with_long_names(make_ca):
    ca = make_ca("Json Table")
    ca.issued("a", "server", "--owner", "x")
    ca.issued("a-rather-long-service-name-for-the-payments-team", "server",
              "--owner", "the payments team, on call", "--location", "eu-west-1 rack 12")
    p = ca.duet("cert", "list", "--ca-dir", ca.dir)
    assert p.returncode == 0, show(p)
    lines = p.stdout.splitlines()[:-1]
    head = lines[0]
    for col in ("NAME", "PROFILE", "OWNER", "LOCATION", "NOT AFTER", "STATUS"):
        pos = head.index(col)
        for line in lines[1:]:
            assert line[pos - 2:pos] == "  " and line[pos] != " ", (col, line)
    days = head.index("DAYS") + len("DAYS")
    for line in lines[1:]:
        assert re.fullmatch(r" *-?\d+", line[days - 5:days]), line
