# SPDX-License-Identifier: Apache-2.0
"""`duet probe` against each broken mTLS set-up, with `duet proxy` and nginx
(`ssl_verify_client on`) as the server: every case asserts the cause the probe names (its
finding code and step in JSON, the problem line in text) and the fix it gives, in both formats.

A row names the set-up, what it breaks on the server or on our side, and for each server kind
the finding that must come out. `None` for a server kind means that server cannot be set up
that way (duet proxy always requests a client certificate, speaks TLS 1.3 unless told
`--tls12`, and accepts every signature algorithm OpenSSL offers).
"""

import datetime as _dt
import json
import os

import pytest

from proxyutil import DuetLog, free_port, openssl, pem_blocks, wait_port
from test_probe import NGINX_CONF, show, tool

SERVER_EXTS = """
[ v3_server_ok ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
[ v3_server_clienteku ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
"""


class Broken:
    """Certificates and CRLs for the broken set-ups, next to ProxyPKI's (signed by its issuing
    CA with `openssl ca`, which can back-date and set any extension)."""

    def __init__(self, dpki, directory):
        self.dpki = dpki
        self.dir = directory
        self.ca = dpki.dir / "openssl-ca"
        cnf = self.ca / "ca.cnf"
        if "v3_server_ok" not in cnf.read_text():
            cnf.write_text(cnf.read_text() + SERVER_EXTS)
        self.expired_server = self.sign("srv-expired", "v3_server_ok", -100, -10)
        self.client_eku_server = self.sign("srv-clienteku", "v3_server_clienteku", -1, 30)
        self.leaf_only_server = directory / "srv-leaf.crt"
        self.leaf_only_server.write_text(pem_blocks(dpki.server_crt)[0])
        self.leaf_only_client = directory / "alice-leaf.crt"
        self.leaf_only_client.write_text(pem_blocks(dpki.alice_crt)[0])
        self.server_eku_client = dpki.issue("server", "svc-as-client", "--san",
                                            "dns:svc.example", out=directory / "svc")
        self.ed_client = dpki.issue("client", "edna", "--key-type", "ed25519",
                                    out=directory / "ed")
        # The issuing CA's CRL past its nextUpdate, followed by the (fresh) root CRL.
        self.stale_crl = directory / "stale-crl.pem"
        dpki.duet("crl", "generate", "--ca-dir", dpki.ca, "--out", self.stale_crl,
                  "--next-update", "1s")
        self.stale_after = _dt.datetime.now(_dt.timezone.utc) + _dt.timedelta(seconds=2)

    def sign(self, name, ext, start_days, end_days):
        key = self.dir / (name + ".key")
        openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", key)
        os.chmod(key, 0o600)
        csr = self.dir / (name + ".csr")
        openssl("req", "-new", "-config", self.ca / "ca.cnf", "-key", key,
                "-subj", "/O=Test Corp/CN=localhost", "-out", csr)
        now = _dt.datetime.now(_dt.timezone.utc)
        fmt = lambda t: t.strftime("%y%m%d%H%M%SZ")
        leaf = self.dir / (name + "-leaf.pem")
        openssl("ca", "-batch", "-notext", "-preserveDN", "-config", self.ca / "ca.cnf",
                "-cert", self.dpki.ca / "issuing.crt", "-keyfile", self.dpki.ca / "issuing.key",
                "-passin", "env:DUET_CA_PASSPHRASE", "-in", csr, "-out", leaf, "-extensions", ext,
                "-startdate", fmt(now + _dt.timedelta(days=start_days)),
                "-enddate", fmt(now + _dt.timedelta(days=end_days)), env=self.dpki.env)
        crt = self.dir / (name + ".crt")
        crt.write_text(pem_blocks(leaf)[0] + pem_blocks(self.dpki.ca / "issuing.crt")[0])
        return crt, key

    def wait_stale(self):
        left = (self.stale_after - _dt.datetime.now(_dt.timezone.utc)).total_seconds()
        if left > 0:
            import time
            time.sleep(left)


@pytest.fixture(scope="module")
def broken(dpki, tmp_path_factory):
    return Broken(dpki, tmp_path_factory.mktemp("broken"))


# --- the two servers, each set up as a row asks -----------------------------------------------

def duet_server(dpki, procs, workdir, echo_port, cert, key, crl, extra):
    port, log = free_port(), workdir / "proxy.log"
    argv = [dpki.duet_bin, "proxy", "--listen", "127.0.0.1:%d" % port,
            "--target", "127.0.0.1:%d" % echo_port, "--cert", cert, "--key", key,
            "--cacert", dpki.roots, "--crl", crl, "--allow", "any", "--log", log, *extra]
    p = procs.start(argv, "proxy")
    DuetLog(log, p, procs).wait_event("start", timeout=10)
    return port


def nginx_server(dpki, procs, workdir, cert, key, crl, extra):
    prefix = workdir / "nginx"
    for d in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (prefix / d).mkdir(parents=True)
    port = free_port()
    conf = NGINX_CONF.format(prefix=prefix, port=port, cert=cert, key=key, roots=dpki.roots)
    lines = ["        ssl_crl %s;" % crl] if crl is not None else []
    if not any(d.startswith("ssl_protocols ") for d in extra):
        lines.append("        ssl_protocols TLSv1.2 TLSv1.3;")  # nginx 1.22 stops at 1.2
    for directive in extra:
        if directive.startswith("ssl_verify_client "):
            conf = conf.replace("        ssl_verify_client on;\n", "")
        lines.append("        %s;" % directive)
    conf = conf.replace("        ssl_verify_depth 2;\n",
                        "        ssl_verify_depth 2;\n" + "".join(l + "\n" for l in lines))
    (prefix / "nginx.conf").write_text(conf)
    p = procs.start([tool("nginx", "nginx"), "-p", prefix, "-c", prefix / "nginx.conf",
                     "-e", prefix / "error.log"], "nginx")
    wait_port(port, p)
    return port


# --- the table ------------------------------------------------------------------------------
# Each row: (id, server set-up, our side, {server kind: (step, code, problem part, fix part)}).
# The server set-up: cert/key ("good" or a Broken attribute), crl ("good", "stale", None),
# extra duet flags / nginx directives.  Our side: client cert/key and --server-name.

def client(b, which):
    d = b.dpki
    return {
        "alice": (d.alice_crt, d.alice_key),
        "expired": (d.expired_crt, d.expired_key),
        "leaf_only": (b.leaf_only_client, d.alice_key),
        "other_ca": (d.eve_crt, d.eve_key),
        "server_eku": b.server_eku_client,
        "revoked": (d.mallory_crt, d.mallory_key),
        "ed25519": b.ed_client,
    }[which]


ROWS = [
    ("expired_server", {"cert": "expired_server"}, {"client": "alice"},
     {"duet": ("server_verification", "expired", "expired on", "must be renewed"),
      "nginx": ("server_verification", "expired", "expired on", "must be renewed")}),
    ("server_sends_leaf_only", {"cert": "leaf_only_server"}, {"client": "alice"},
     {"duet": ("server_chain", "missing_issuer", "missing intermediate",
               "the server must send the chain"),
      "nginx": ("server_chain", "missing_issuer", "missing intermediate",
                "the server must send the chain")}),
    ("server_with_client_eku", {"cert": "client_eku_server"}, {"client": "alice"},
     {"duet": ("server_verification", "purpose", "not valid for TLS server authentication",
               "--profile server"),
      "nginx": ("server_verification", "purpose", "not valid for TLS server authentication",
                "--profile server")}),
    ("name_mismatch", {}, {"client": "alice", "name": "wrong.example"},
     {"duet": ("server_verification", "name", "is not valid for the name wrong.example",
               "--server-name NAME"),
      "nginx": ("server_verification", "name", "is not valid for the name wrong.example",
                "--server-name NAME")}),
    ("expired_client", {}, {"client": "expired"},
     {"duet": ("server_answer", "client_expired", "it has expired", "duet cert renew"),
      "nginx": ("http", "client_cert_error", "it has expired", "duet cert renew")}),
    ("client_sends_leaf_only", {}, {"client": "leaf_only"},
     {"duet": ("server_answer", "client_chain_incomplete", "without the intermediate",
               "send the chain"),
      "nginx": ("http", "client_cert_error", "without the intermediate", "send the chain")}),
    ("client_from_another_ca", {}, {"client": "other_ca"},
     {"duet": ("server_answer", "client_wrong_ca", "a CA the server does not trust",
               "accepts"),
      "nginx": ("http", "client_cert_error", "a CA the server does not trust", "accepts")}),
    ("client_with_server_eku", {}, {"client": "server_eku"},
     {"duet": ("server_answer", "client_eku", "does not include clientAuth", "--profile client"),
      "nginx": ("http", "client_cert_error", "does not include clientAuth",
                "--profile client")}),
    ("revoked_client", {}, {"client": "revoked"},
     {"duet": ("server_answer", "client_revoked", "on a revocation list", "issue a new"),
      "nginx": ("http", "client_cert_error", "revoked", "issue a new one")}),
    ("stale_crl_on_the_server", {"crl": "stale"}, {"client": "alice"},
     {"duet": ("server_answer", "server_crl_stale", "passed its nextUpdate",
               "install a current CRL"),
      "nginx": ("http", "client_cert_error", "passed its nextUpdate",
                "install a current one")}),
    ("server_not_requesting", {"nginx": ["ssl_verify_client off"]}, {"client": "alice"},
     {"duet": None,
      "nginx": ("client_certificate_request", "not_requested", "did not ask for a client certificate",
                "ssl_verify_client on")}),
    ("tls12_only_server", {"nginx": ["ssl_protocols TLSv1.2"]}, {"client": "alice"},
     {"duet": None,
      "nginx": ("tls", "tls12_only", "does not speak TLS 1.3", "--tls12")}),
    ("no_shared_signature_algorithm",
     {"nginx": ["ssl_conf_command ClientSignatureAlgorithms ECDSA+SHA256"]},
     {"client": "ed25519"},
     {"duet": None,
      "nginx": ("client_certificate", "no_shared_sigalg", "no shared signature algorithm",
                "--key-type")}),
]

CASES = [pytest.param(kind, row, id="%s-%s" % (row[0], kind))
         for row in ROWS for kind in ("duet", "nginx") if row[3][kind] is not None]


def finding(doc, step, code):
    for f in doc["findings"]:
        if f["step"] == step and f["code"] == code:
            return f
    raise AssertionError("no finding %s/%s in %s" % (step, code,
                                                      json.dumps(doc["findings"], indent=1)))


@pytest.mark.parametrize("kind,row", CASES)
def test_probe_names_the_cause_and_the_fix(run, dpki, broken, echo, procs, tmp_path, kind, row):
    name, server, ours, expect = row
    step, code, problem_part, fix_part = expect[kind]
    cert, key = dpki.server_crt, dpki.server_key
    if "cert" in server:
        got = getattr(broken, server["cert"])
        cert, key = got if isinstance(got, tuple) else (got, dpki.server_key)
    crl = dpki.crl
    if server.get("crl") == "stale":
        broken.wait_stale()
        crl = broken.stale_crl
    if kind == "duet":
        port = duet_server(dpki, procs, tmp_path, echo.port, cert, key, crl, server.get("duet", []))
    else:
        port = nginx_server(dpki, procs, tmp_path, cert, key, crl, server.get("nginx", []))
    ccrt, ckey = client(broken, ours["client"])
    args = ["probe", "127.0.0.1:%d" % port, "--cert", ccrt, "--key", ckey, "--cacert",
            dpki.roots, "--server-name", ours.get("name", "localhost")]
    t = run(*args)
    j = run(*args, "--format", "json")
    doc = json.loads(j.stdout)
    f = finding(doc, step, code)
    # The cause, in JSON and in the text a person reads, then its fix on the next line.
    assert problem_part in f["problem"], f
    assert fix_part in f["fix"], f
    lines = t.stdout.splitlines()
    at = [i for i, l in enumerate(lines)
          if l.strip().startswith(("problem: ", "warning: ")) and problem_part in l]
    assert at, show(t)
    assert lines[at[0] + 1].strip() == "fix: " + f["fix"], show(t)
    if code != "tls12_only":
        assert t.returncode == j.returncode == 1 and doc["ok"] is False, show(t)
        assert t.stdout.rstrip().endswith("the mTLS connection does NOT work"), show(t)
    else:
        # a warning alone: the connection works, but duet tunnel needs --tls12 for it
        assert f["severity"] == "warning", f
        assert t.returncode == j.returncode == 0 and doc["ok"] is True, show(t)
    if step == "http":
        assert doc["http"]["refusal"]["by"] == "nginx", doc["http"]


def test_probe_refuses_a_key_that_is_not_the_certificates(run, dpki):
    """A set-up problem found before connecting: the key of another certificate."""
    p = run("probe", "127.0.0.1:1", "--cert", dpki.alice_crt, "--key", dpki.bob_key,
            "--cacert", dpki.roots)
    assert p.returncode == 2, show(p)
    assert "%s: the key does not belong to the first certificate of %s" % (
        dpki.bob_key, dpki.alice_crt) in p.stderr, show(p)
