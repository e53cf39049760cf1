# SPDX-License-Identifier: Apache-2.0
"""`duet ca serve`: the CA as a network service (docs/ca-server.md), with the real binary on
free ports of 127.0.0.1 and the clients a host would use: python's ssl and http.client, curl
and openssl.

Hosts make their own keys and CSRs with openssl; enrollment is by one-time token, renewal and
revocation by the client certificate.  Every refusal is checked for its status, its JSON error
and for issuing nothing; the audit log is checked for its fields and for never holding a
token's text.
"""

import base64
import http.client
import json
import os
import re
import resource
import signal
import socket
import ssl
import subprocess
import threading
import time
import urllib.parse

import pytest

from conftest import show
from proxyutil import free_port


class CAServer:
    """One `duet ca serve` process on free ports; start() again after stop() or kill().

    nofile: the descriptor limit it starts with, N or (soft, hard)."""

    def __init__(self, duet_bin, ca, *extra, nofile=None):
        self.duet_bin, self.ca, self.extra, self.nofile = duet_bin, ca, extra, nofile
        self.port, self.http_port = free_port(), free_port()
        self.log = ca.base / "ca-serve.jsonl"
        self.proc = None

    def start(self):
        env = {k: v for k, v in os.environ.items() if not k.startswith("DUET_CA_PASS")}
        env["DUET_CA_PASSPHRASE_FILE"] = str(self.ca.passfile)
        self.stderr = open(self.ca.base / "ca-serve.stderr", "ab")
        self.proc = subprocess.Popen(
            [str(self.duet_bin), "ca", "serve", "--ca-dir", str(self.ca.dir),
             "--listen", "127.0.0.1:%d" % self.port,
             "--http-listen", "127.0.0.1:%d" % self.http_port,
             "--server-name", "localhost", "--server-name", "127.0.0.1",
             "--log", str(self.log), *map(str, self.extra)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self.stderr, env=env,
            preexec_fn=(lambda: resource.setrlimit(
                resource.RLIMIT_NOFILE, self.nofile if isinstance(self.nofile, tuple)
                else (self.nofile, self.nofile)))
            if self.nofile else None)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, "duet ca serve exited with %s: %s" % (
                self.proc.returncode, (self.ca.base / "ca-serve.stderr").read_text())
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    with socket.create_connection(("127.0.0.1", self.http_port), timeout=0.5):
                        return self
            except OSError:
                time.sleep(0.05)
        raise AssertionError("duet ca serve does not listen")

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            assert self.proc.wait(timeout=10) == 0
        self.stderr.close()

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)
        self.stderr.close()

    def context(self, cert=None, key=None):
        ctx = ssl.create_default_context(cafile=str(self.ca.root))
        if cert is not None:
            ctx.load_cert_chain(str(cert), str(key))
        return ctx

    def request(self, method, path, body=None, ctype="application/json", cert=None, key=None,
                tls=True, headers=None):
        """(status, headers, body): a parsed JSON body for application/json, else bytes."""
        if tls:
            conn = http.client.HTTPSConnection("127.0.0.1", self.port, timeout=20,
                                               context=self.context(cert, key))
        else:
            conn = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=20)
        h = dict(headers or {})
        if body is not None:
            if not isinstance(body, (bytes, str)):
                body = json.dumps(body)
            h["Content-Type"] = ctype
        try:
            conn.request(method, path, body=body, headers=h)
            r = conn.getresponse()
            data = r.read()
            if r.getheader("Content-Type", "").startswith("application/json"):
                data = json.loads(data)
            return r.status, r, data
        finally:
            conn.close()

    def lines(self):
        return [json.loads(x) for x in self.log.read_text().splitlines() if x.strip()]


def make_token(ca, name, profile="server", *extra):
    p = ca.duet("ca", "token", name, "--profile", profile, "--ca-dir", ca.dir,
                "--passphrase-file", ca.passfile, *extra)
    assert p.returncode == 0, show(p)
    return p.stdout.strip()


def make_csr(ca, name, *addext):
    key, req = ca.base / (name + ".key"), ca.base / (name + ".csr")
    args = ["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-nodes", "-keyout", str(key), "-out", str(req), "-subj", "/CN=" + name]
    for a in addext:
        args += ["-addext", a]
    subprocess.run(args, check=True, capture_output=True)
    return key, req.read_text()


def serials(ca):
    return sorted(r["serial"] for r in ca.list())


def openssl(*args, inp=None):
    return subprocess.run(["openssl", *map(str, args)], capture_output=True, input=inp)


def enroll(srv, name, tok=None, *addext):
    """Enroll a host: its key and CSR by openssl, the token; returns (crt, key, answer)."""
    ca = srv.ca
    tok = tok or make_token(ca, name, "server", "--san", "dns:%s.corp.example" % name)
    key, csr = make_csr(ca, name, *addext)
    st, _, ans = srv.request("POST", "/v1/enroll", {"token": tok, "csr": csr})
    assert st == 200, ans
    crt = ca.base / (name + ".crt")
    crt.write_text(ans["certificate"])
    return crt, key, ans


@pytest.fixture(scope="module")
def srv(make_ca, duet_bin):
    ca = make_ca("Serve Corp")
    s = CAServer(duet_bin, ca, "--admin-identity", "dns:admin.corp.example").start()
    yield s
    s.stop()


def test_enroll_two_hosts_each_token_once(srv):
    ca = srv.ca
    before = serials(ca)
    toks = {n: make_token(ca, n, "server", "--san", "dns:%s.corp.example" % n,
                          "--owner", "team-" + n) for n in ("host1", "host2")}
    for n, tok in toks.items():
        key, csr = make_csr(ca, n)
        st, _, ans = srv.request("POST", "/v1/enroll", {"token": tok, "csr": csr})
        assert st == 200, ans
        assert set(ans) == {"serial", "certificate", "chain", "not_before", "not_after",
                            "renew_after"}
        assert re.match(r"^[0-9A-F]{2}(:[0-9A-F]{2})+$", ans["serial"])
        crt = ca.base / (n + ".crt")
        crt.write_text(ans["certificate"])
        txt = openssl("x509", "-in", crt, "-noout", "-text").stdout.decode()
        assert "DNS:%s.corp.example" % n in txt
        assert "CA:TRUE" not in txt
        assert ans["chain"] == ca.issuing.read_text()
        # The certificate is for the host's own key.
        pub_c = openssl("x509", "-in", crt, "-noout", "-pubkey").stdout
        pub_k = openssl("pkey", "-in", key, "-pubout").stdout
        assert pub_c == pub_k
        row = ca.row(ans["serial"])
        assert row["owner"] == "team-" + n and row["profile"] == "server"
        # The second use of the token is refused, with the date and serial it produced.
        key2, csr2 = make_csr(ca, n + "-again")
        st, _, err = srv.request("POST", "/v1/enroll", {"token": tok, "csr": csr2})
        assert st == 403 and err["error"] == "token_refused", err
        assert "already used" in err["detail"] and ans["serial"] in err["detail"]
    assert len(serials(ca)) == len(before) + 2


def test_expired_token_refused(srv):
    ca = srv.ca
    tok = make_token(ca, "late", "server", "--san", "dns:late.corp.example", "--ttl", "1s")
    time.sleep(1.5)
    before = serials(ca)
    _, csr = make_csr(ca, "late")
    st, _, err = srv.request("POST", "/v1/enroll", {"token": tok, "csr": csr})
    assert st == 403 and err["error"] == "token_refused" and "expired at" in err["detail"], err
    assert serials(ca) == before


@pytest.mark.parametrize("ext,word", [
    ("subjectAltName=DNS:web3.corp.example,DNS:evil.example", "evil.example"),
    ("basicConstraints=critical,CA:TRUE", "basicConstraints"),
])
def test_csr_beyond_the_token_refused_and_token_kept(srv, ext, word):
    ca = srv.ca
    tok = make_token(ca, "web3", "server", "--san", "dns:web3.corp.example")
    before = serials(ca)
    _, csr = make_csr(ca, "web3", ext)
    st, _, err = srv.request("POST", "/v1/enroll", {"token": tok, "csr": csr})
    assert st == 400 and err["error"] == "csr_refused" and word in err["detail"], err
    assert serials(ca) == before
    # A refused CSR does not use the token up.
    _, good = make_csr(ca, "web3")
    st, _, ans = srv.request("POST", "/v1/enroll", {"token": tok, "csr": good})
    assert st == 200, ans


def test_renew_same_key_rekey_and_links(srv):
    ca = srv.ca
    crt, key, first = enroll(srv, "renewer")
    st, _, second = srv.request("POST", "/v1/renew", {}, cert=crt, key=key)
    assert st == 200, second
    assert second["serial"] != first["serial"]
    new = ca.base / "renewer-2.crt"
    new.write_text(second["certificate"])
    assert (openssl("x509", "-in", new, "-noout", "-pubkey").stdout ==
            openssl("x509", "-in", crt, "-noout", "-pubkey").stdout)
    p = ca.duet("cert", "show", second["serial"], "--ca-dir", ca.dir, "--format", "json")
    row = json.loads(p.stdout)
    assert row["renews"] == first["serial"]
    p = ca.duet("cert", "show", first["serial"], "--ca-dir", ca.dir, "--format", "json")
    assert json.loads(p.stdout)["renewed_by"] == second["serial"]
    # Renewing again from the old certificate: 409, naming its successor.
    before = serials(ca)
    st, _, err = srv.request("POST", "/v1/renew", {}, cert=crt, key=key)
    assert st == 409 and err["error"] == "already_renewed", err
    assert err["successor"] == second["serial"]
    assert serials(ca) == before
    # Rekey: the CSR's key is certified, its names ignored.
    key3, csr3 = make_csr(ca, "renewer-3", "subjectAltName=DNS:evil.example")
    st, _, third = srv.request("POST", "/v1/renew", {"csr": csr3}, cert=new, key=key)
    assert st == 200, third
    c3 = ca.base / "renewer-3.crt"
    c3.write_text(third["certificate"])
    assert (openssl("x509", "-in", c3, "-noout", "-pubkey").stdout ==
            openssl("pkey", "-in", key3, "-pubout").stdout)
    txt = openssl("x509", "-in", c3, "-noout", "-text").stdout.decode()
    assert "DNS:renewer.corp.example" in txt and "evil" not in txt
    # A CSR that is not one: 400, nothing issued.
    before = serials(ca)
    st, _, err = srv.request("POST", "/v1/renew", {"csr": "not a csr"}, cert=c3, key=key3)
    assert st == 400 and err["error"] == "csr_refused", err
    assert serials(ca) == before


def test_renew_refused_without_cert_revoked_or_foreign(srv, make_ca):
    ca = srv.ca
    before = serials(ca)
    st, _, err = srv.request("POST", "/v1/renew", {})
    assert st == 401 and err["error"] == "unauthorized", err
    # A certificate of another CA: refused by the TLS layer (its anchors are this CA's).
    other = make_ca("Other Corp")
    ocrt, okey, _ = other.issued("intruder", "client")
    with pytest.raises((ssl.SSLError, ConnectionResetError, BrokenPipeError)):
        srv.request("POST", "/v1/renew", {}, cert=ocrt, key=okey)
    # The same with curl, which the agent's users reach for first.
    p = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--cacert",
                        str(ca.root), "--cert", str(ocrt), "--key", str(okey), "-X", "POST",
                        "-H", "Content-Type: application/json", "-d", "{}",
                        "https://127.0.0.1:%d/v1/renew" % srv.port], capture_output=True,
                       text=True)
    assert p.stdout in ("000", "401"), show(p)
    assert serials(ca) == before
    # A revoked certificate cannot renew.
    crt, key, ans = enroll(srv, "revokedhost")
    p = ca.duet("cert", "revoke", ans["serial"], "--ca-dir", ca.dir)
    assert p.returncode == 0, show(p)
    before = serials(ca)
    st, _, err = srv.request("POST", "/v1/renew", {}, cert=crt, key=key)
    assert st == 401 and err["error"] == "unauthorized" and "revoked" in err["detail"], err
    assert serials(ca) == before


def ocsp_status(srv, crt):
    p = openssl("ocsp", "-issuer", srv.ca.issuing, "-cert", crt, "-url",
                "http://127.0.0.1:%d/ocsp" % srv.http_port, "-CAfile", srv.ca.root)
    return p.stdout.decode() + p.stderr.decode()


def test_revoke_holder_admin_and_others(srv):
    ca = srv.ca
    a_crt, a_key, a = enroll(srv, "holder-a")
    b_crt, b_key, b = enroll(srv, "holder-b")
    out = ocsp_status(srv, a_crt)
    assert "Response verify OK" in out and ": good" in out, out
    # Another holder's certificate: 403.
    st, _, err = srv.request("POST", "/v1/revoke", {"serial": b["serial"]}, cert=a_crt, key=a_key)
    assert st == 403 and err["error"] == "forbidden", err
    # Without a certificate: 401.
    st, _, err = srv.request("POST", "/v1/revoke", {"serial": b["serial"]})
    assert st == 401, err
    # The holder revokes its own.
    st, _, ans = srv.request("POST", "/v1/revoke", {"serial": a["serial"],
                                                    "reason": "keyCompromise"},
                             cert=a_crt, key=a_key)
    assert st == 200, ans
    assert ans["serial"] == a["serial"] and ans["reason"] == "keyCompromise"
    out = ocsp_status(srv, a_crt)
    assert "Response verify OK" in out and ": revoked" in out, out
    assert "Reason: keyCompromise" in out, out
    # The CRL served is signed again at once and lists it.
    st, resp, der = srv.request("GET", "/crl", tls=False)
    assert st == 200 and resp.getheader("Content-Type") == "application/pkix-crl"
    txt = openssl("crl", "-inform", "DER", "-noout", "-text", inp=der).stdout.decode()
    assert a["serial"].replace(":", "") in txt.replace(":", "").upper(), txt
    # Again: 409.
    st, _, err = srv.request("POST", "/v1/revoke", {"serial": b["serial"]}, cert=a_crt, key=a_key)
    assert st == 401, err  # a's certificate is revoked now: it authenticates nothing
    # The admin identity revokes another's certificate; unknown serials are 404.
    ad_crt, ad_key, _ = ca.issued("admin", "server", "--san", "dns:admin.corp.example")
    st, _, err = srv.request("POST", "/v1/revoke", {"serial": "01:02:03"}, cert=ad_crt,
                             key=ad_key)
    assert st == 404 and err["error"] == "not_found", err
    st, _, ans = srv.request("POST", "/v1/revoke", {"serial": b["serial"]}, cert=ad_crt,
                             key=ad_key)
    assert st == 200 and ans["reason"] == "unspecified", ans
    st, _, err = srv.request("POST", "/v1/revoke", {"serial": b["serial"]}, cert=ad_crt,
                             key=ad_key)
    assert st == 409 and err["error"] == "already_revoked", err
    assert ": revoked" in ocsp_status(srv, b_crt)
    # OCSP by GET with the base64 request in the path (RFC 6960 A.1).
    reqf = ca.base / "ocsp.req"
    p = openssl("ocsp", "-issuer", ca.issuing, "-cert", b_crt, "-reqout", reqf, "-no_nonce")
    assert p.returncode == 0, p
    b64 = urllib.parse.quote(base64.b64encode(reqf.read_bytes()).decode(), safe="")
    st, resp, der = srv.request("GET", "/ocsp/" + b64, tls=False)
    assert st == 200 and resp.getheader("Content-Type") == "application/ocsp-response"
    respf = ca.base / "ocsp.resp"
    respf.write_bytes(der)
    p = openssl("ocsp", "-respin", respf, "-issuer", ca.issuing, "-cert", b_crt, "-CAfile",
                ca.root)
    out = p.stdout.decode() + p.stderr.decode()
    assert "Response verify OK" in out and ": revoked" in out, out
    # The PEM CRL, the roots and the chain.
    st, _, pem = srv.request("GET", "/crl.pem", tls=False)
    assert st == 200 and pem.startswith(b"-----BEGIN X509 CRL-----")
    st, _, roots = srv.request("GET", "/roots.pem", tls=False)
    assert st == 200 and roots.decode() == ca.root.read_text()
    st, _, chain = srv.request("GET", "/chain.pem")
    assert st == 200 and chain.decode() == ca.issuing.read_text() + ca.root.read_text()


def test_bad_input_each_with_json_error_and_nothing_issued(srv):
    ca = srv.ca
    before = serials(ca)
    tok = make_token(ca, "bad", "server", "--san", "dns:bad.corp.example")
    st, _, err = srv.request("POST", "/v1/enroll", {"token": tok, "csr": "-----BEGIN "
                                                    "CERTIFICATE REQUEST-----\nAAAA\n-----END "
                                                    "CERTIFICATE REQUEST-----\n"})
    assert st == 400 and err["error"] == "csr_refused", err
    _, csr = make_csr(ca, "bad")
    wrong = tok[:-4] + ("AAAA" if not tok.endswith("AAAA") else "BBBB")
    st, _, err = srv.request("POST", "/v1/enroll", {"token": wrong, "csr": csr})
    assert st == 403 and err["error"] == "token_refused", err
    st, _, err = srv.request("POST", "/v1/enroll", {"token": tok})
    assert st == 400 and err["error"] == "bad_request", err
    st, _, err = srv.request("POST", "/v1/enroll", "[" * 3000 + "]" * 3000)
    assert st == 400 and err["error"] == "bad_request", err
    st, _, err = srv.request("POST", "/v1/enroll", "{\"token\": 1", ctype="application/json")
    assert st == 400 and err["error"] == "bad_request", err
    st, _, err = srv.request("POST", "/v1/enroll", json.dumps({"token": tok, "csr": csr}),
                             ctype="text/plain")
    assert st == 415 and err["error"] == "unsupported_media_type", err
    st, resp, err = srv.request("POST", "/v1/enroll", b"{" + b" " * (100 * 1024) + b"}")
    assert st == 413 and err["error"] == "payload_too_large", err
    assert err["detail"] == ("the request body has 102402 bytes; at most 65536 are accepted "
                             "(--max-body)"), err
    st, _, err = srv.request("GET", "/v1/nothing")
    assert st == 404 and err["error"] == "not_found", err
    st, _, err = srv.request("GET", "/v1/enroll", tls=False)
    assert st == 404 and err["error"] == "not_found", err  # the API is not on plain HTTP
    st, resp, err = srv.request("GET", "/v1/enroll")
    assert st == 405 and err["error"] == "method_not_allowed", err
    assert resp.getheader("Allow") == "POST"
    st, _, err = srv.request("DELETE", "/v1/revoke")
    assert st == 405 and err["error"] == "method_not_allowed", err
    assert serials(ca) == before
    # The token survived all that.
    st, _, ans = srv.request("POST", "/v1/enroll", {"token": tok, "csr": csr})
    assert st == 200, ans


def test_ca_description_health_metrics_and_audit_log(srv):
    ca = srv.ca
    st, _, info = srv.request("GET", "/v1/ca")
    assert st == 200
    fp = openssl("x509", "-in", ca.root, "-noout", "-fingerprint", "-sha256").stdout.decode()
    assert info["root_sha256"] == fp.strip().split("=", 1)[1]
    assert info["name"] == "Serve Corp"
    st, _, body = srv.request("GET", "/healthz")
    assert st == 200 and body == b"ok\n"
    tok = make_token(ca, "metered", "server", "--san", "dns:metered.corp.example")
    crt, key, ans = enroll(srv, "metered", tok)
    st, _, _ = srv.request("POST", "/v1/enroll", {"token": tok, "csr": "x"})
    assert st == 403
    # curl, as an operator would scrape it.
    p = subprocess.run(["curl", "-sf", "--cacert", str(ca.root),
                        "https://127.0.0.1:%d/metrics" % srv.port], capture_output=True,
                       text=True)
    assert p.returncode == 0, show(p)
    m = p.stdout
    issued = re.search(r'^duet_ca_issued_total\{how="enroll"\} (\d+)$', m, re.M)
    assert issued and int(issued.group(1)) >= 3, m
    assert re.search(r'^duet_ca_requests_total\{endpoint="/v1/enroll",status="200"\} \d+$', m,
                     re.M), m
    assert re.search(r'^duet_ca_refused_total\{endpoint="/v1/enroll",reason="token_refused"\} '
                     r'\d+$', m, re.M), m
    assert "duet_ca_crl_age_seconds " in m and "duet_ca_crl_next_update_seconds " in m
    assert "duet_ca_ocsp_duration_seconds_count" in m
    lines = srv.lines()
    reqs = [x for x in lines if x["event"] == "ca_request"]
    mine = [x for x in reqs if x.get("issued") == ans["serial"]]
    assert len(mine) == 1, reqs[-5:]
    for k in ("time", "level", "method", "path", "peer", "identity", "status", "duration_ms"):
        assert k in mine[0], mine[0]
    assert mine[0]["status"] == 200 and mine[0]["path"] == "/v1/enroll"
    assert mine[0]["peer"].startswith("127.0.0.1:")
    refused = [x for x in reqs if x.get("error") == "token_refused"]
    assert refused and all(x["status"] == 403 for x in refused)
    renewals = [x for x in reqs if x.get("renews")]
    assert renewals and all(x["identity"] for x in renewals)
    # No token's text anywhere in the log.
    text = srv.log.read_text()
    assert not re.search(r"duet1_[A-Za-z0-9_-]{8}", text)
    assert tok not in text and tok[6:20] not in text


def test_kill_during_enrollments_loses_nothing(make_ca, duet_bin):
    ca = make_ca("Crash Corp")
    srv = CAServer(duet_bin, ca).start()
    names = ["c%02d" % i for i in range(24)]
    toks = {n: make_token(ca, n, "server", "--san", "dns:%s.corp.example" % n) for n in names}
    csrs = {n: make_csr(ca, n)[1] for n in names}
    got = {}
    stop = threading.Event()

    def run():
        for n in names:
            if stop.is_set():
                return
            try:
                st, _, ans = srv.request("POST", "/v1/enroll", {"token": toks[n], "csr": csrs[n]})
                if st == 200:
                    got[n] = ans["serial"]
            except (OSError, http.client.HTTPException):
                pass

    t = threading.Thread(target=run)
    t.start()
    deadline = time.monotonic() + 20
    while len(got) < 6 and time.monotonic() < deadline:
        time.sleep(0.01)
    srv.kill()
    stop.set()
    t.join(timeout=30)
    srv.start()
    try:
        for n in names:
            if n in got:
                continue
            st, _, ans = srv.request("POST", "/v1/enroll", {"token": toks[n], "csr": csrs[n]})
            if st == 200:
                got[n] = ans["serial"]
            else:
                # Issued before the kill, answer lost: the token names its certificate.
                assert st == 403 and "already used" in ans["detail"], ans
                got[n] = re.search(r"serial ([0-9A-F:]+)", ans["detail"]).group(1)
    finally:
        srv.stop()
    rows = ca.list()
    inv = [r["serial"] for r in rows]
    assert len(inv) == len(set(inv)), "a serial appears twice in the inventory"
    for n, s in got.items():
        assert s in inv, "certificate %s of %s is not in the inventory" % (s, n)
    assert len(set(got.values())) == len(names)
    p = ca.duet("ca", "token", "--list", "--ca-dir", ca.dir, "--format", "json")
    used = [t for t in json.loads(p.stdout) if t["serial"]]
    assert len(used) == len(names) and all(t["serial"] in inv for t in used)


def cert_serial_of(path):
    out = openssl("x509", "-in", path, "-noout", "-serial").stdout.decode()
    return out.strip().split("=", 1)[1]


def test_server_certificate_kept_then_renewed_and_linked(make_ca, duet_bin):
    ca = make_ca("Own Cert Corp")
    srv = CAServer(duet_bin, ca).start()
    crt = ca.dir / "ca-server.crt"
    first = cert_serial_of(crt)
    assert oct(os.stat(ca.dir / "ca-server.key").st_mode & 0o777) == "0o600"
    # The clients' view: the API's certificate verifies against the root, for 127.0.0.1.
    st, _, _ = srv.request("GET", "/healthz")
    assert st == 200
    srv.stop()
    srv.start()
    assert cert_serial_of(crt) == first  # still good: kept
    srv.stop()
    # A new --server-name: a new certificate, recorded as renewing the old one.
    srv2 = CAServer(duet_bin, ca, "--server-name", "ca.corp.example").start()
    try:
        second = cert_serial_of(crt)
        assert second != first
        txt = openssl("x509", "-in", crt, "-noout", "-text").stdout.decode()
        assert "DNS:ca.corp.example" in txt and "IP Address:127.0.0.1" in txt
        p = ca.duet("cert", "show", second, "--ca-dir", ca.dir, "--format", "json")
        row = json.loads(p.stdout)
        assert int(row["renews"].replace(":", ""), 16) == int(first, 16), row
        assert row["owner"] == "duet-ca-serve" and row["profile"] == "server"
    finally:
        srv2.stop()


def test_crl_signed_again_before_a_third_of_its_life_is_left(make_ca, duet_bin):
    ca = make_ca("CRL Timer Corp")
    srv = CAServer(duet_bin, ca, "--crl-validity", "3s").start()
    try:
        def last_update():
            st, _, der = srv.request("GET", "/crl", tls=False)
            assert st == 200
            txt = openssl("crl", "-inform", "DER", "-noout", "-lastupdate", "-nextupdate",
                          inp=der).stdout.decode()
            return txt
        a = last_update()
        time.sleep(3.2)
        b = last_update()
        assert a != b, (a, b)
        st, _, m = srv.request("GET", "/metrics")
        age = re.search(rb"^duet_ca_crl_age_seconds (\d+)$", m, re.M)
        assert age and int(age.group(1)) <= 3, m
    finally:
        srv.stop()


def test_slow_clients_are_cut_off(srv):
    """A client that never finishes its handshake or its headers is disconnected."""
    t0 = time.monotonic()
    with socket.create_connection(("127.0.0.1", srv.port)) as a, \
            socket.create_connection(("127.0.0.1", srv.http_port)) as b:
        b.sendall(b"GET /crl HTTP/1.1\r\nHost: x\r\n")
        a.settimeout(30)
        b.settimeout(30)
        assert a.recv(100) == b""
        assert b.recv(100) == b""
    assert time.monotonic() - t0 < 25


def test_certificate_expiring_on_a_kept_alive_connection_renews_nothing(srv):
    """Validity is checked per request, not only at the handshake."""
    ca = srv.ca
    crt, key, serial = ca.issued("shortlived", "client", "--ttl", "4s")
    conn = http.client.HTTPSConnection("127.0.0.1", srv.port, timeout=20,
                                       context=srv.context(crt, key))
    try:
        conn.request("GET", "/healthz")
        r = conn.getresponse()
        assert r.status == 200 and r.read() == b"ok\n"
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:  # keep the connection alive past the expiry
            time.sleep(1)
            conn.request("GET", "/healthz")
            r = conn.getresponse()
            r.read()
        before = serials(ca)
        conn.request("POST", "/v1/renew", body="{}",
                     headers={"Content-Type": "application/json"})
        r = conn.getresponse()
        err = json.loads(r.read())
        assert r.status == 401 and err["error"] == "certificate_expired", err
        assert "allows no renewal after expiry (renew_grace: off)" in err["detail"], err
        assert err["renew_grace"] == "off" and err["profile"] == "client", err
        assert serials(ca) == before
    finally:
        conn.close()


def test_kept_alive_answers_do_not_wait_for_the_clients_delayed_ack(srv):
    """An HTTPS answer is two TLS records (head, body).  With Nagle's algorithm on the
    server's socket the body waits for the client's delayed ACK of the head, 40 ms on
    Linux, on every request of a kept-alive connection after the first: an agent or a
    script renewing over one connection would get 25 answers a second at most."""
    conn = http.client.HTTPSConnection("127.0.0.1", srv.port, timeout=20,
                                       context=srv.context())
    took = []
    try:
        for _ in range(21):
            t0 = time.monotonic()
            conn.request("GET", "/healthz")
            r = conn.getresponse()
            assert r.status == 200 and r.read() == b"ok\n"
            took.append(time.monotonic() - t0)
    finally:
        conn.close()
    took = sorted(took[1:])
    # Delayed ACKs make every one of these at least 40 ms; without them each is about 1 ms.
    assert took[len(took) // 2] < 0.030, ["%.1f ms" % (t * 1000) for t in took]


def test_out_of_descriptors_pauses_accepting_and_recovers(make_ca, duet_bin):
    ca = make_ca("Descriptor Corp")
    srv = CAServer(duet_bin, ca, nofile=48).start()
    socks = []
    try:
        for _ in range(80):
            socks.append(socket.create_connection(("127.0.0.1", srv.port), timeout=5))
        time.sleep(0.5)
        assert srv.proc.poll() is None
        warn = [x for x in srv.lines() if x["event"] == "ca_accept"]
        assert warn and warn[0]["level"] == "warn", srv.lines()[-3:]
        for s in socks:
            s.close()
        socks = []
        deadline = time.monotonic() + 15
        while True:
            try:
                st, _, body = srv.request("GET", "/healthz")
                if st == 200:
                    break
            except (OSError, ssl.SSLError):
                pass
            assert time.monotonic() < deadline, "the server does not accept again"
            time.sleep(0.2)
    finally:
        for s in socks:
            s.close()
        srv.stop()
