# SPDX-License-Identifier: Apache-2.0
"""duet agent against a fake `duet ca serve` (agent_fake_ca.py) that signs with the real CLI.

Enrollment with a token, the root fingerprint checked before anything is sent, --once exit
codes, renewals of 60-second certificates in a row with exec and signal hooks, a CA that is
down then up again, and key and certificate on disk that always match.

The tests that need a certificate due set `ca.renew_in` (the CA's renew_after, seconds after
issuance) before the certificate is issued: the agent renews when the CA says, so they wait a
few seconds instead of the 20 s until two thirds of a 60 s certificate backdated by a minute.
"""
import json
import os
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from agent_fake_ca import FakeCA  # noqa: E402
from proxyutil import free_port  # noqa: E402


@pytest.fixture
def ca(tmp_path, duet_bin):
    fake = FakeCA(tmp_path / "ca-host", str(duet_bin), ttl="60s")
    yield fake
    fake.down()


def write_config(path, ca, host, fingerprint=None, hook=None, extra=""):
    host.mkdir(parents=True, exist_ok=True)
    hook_text = ""
    if hook is not None:
        hook_text = "    on_renew: %s\n" % json.dumps(hook)
    path.write_text(
        "ca_url: %s\n"
        "root_fingerprint: \"%s\"\n"
        "state_dir: %s/state\n"
        "log: %s/agent.log\n"
        "backoff_min: 1s\n"
        "backoff_max: 4s\n"
        "%s"
        "certificates:\n"
        "  - name: web\n"
        "    cert: %s/web.crt\n"
        "    key: %s/web.key\n"
        "    chain: %s/chain.pem\n"
        "    roots: %s/roots.pem\n"
        "    crl: %s/crl.pem\n"
        "    token_file: %s/token\n"
        "%s" % (ca.url, fingerprint or ca.root_sha256, host, host, extra,
                host, host, host, host, host, host, hook_text))
    return path


def agent(duet_bin, *args, timeout=60):
    return subprocess.run([str(duet_bin), "agent", *args], capture_output=True, text=True,
                          timeout=timeout)


def serial_of(path):
    return subprocess.run(["openssl", "x509", "-in", str(path), "-noout", "-serial"],
                          capture_output=True, text=True, check=True).stdout.strip()


def pub_of_cert(path):
    r = subprocess.run(["openssl", "x509", "-in", str(path), "-noout", "-pubkey"],
                       capture_output=True, text=True)
    return r.stdout if r.returncode == 0 else None


def pub_of_key(path):
    r = subprocess.run(["openssl", "pkey", "-in", str(path), "-pubout"],
                       capture_output=True, text=True)
    return r.stdout if r.returncode == 0 else None


def log_events(host):
    p = host / "agent.log"
    if not p.exists():
        return []
    return [json.loads(line) for line in p.read_text().splitlines() if line.strip()]


def wait_until_due(duet_bin, cfg):
    """Sleep until the certificate is past renew_after (as --status computes it)."""
    while True:
        st = json.loads(agent(duet_bin, "--config", str(cfg), "--status", "--format",
                              "json").stdout)
        if st[0]["state"] != "valid":
            return
        time.sleep(0.5)


def enroll(duet_bin, ca, tmp_path, **kw):
    host = tmp_path / "host"
    cfg = write_config(tmp_path / "agent.yaml", ca, host, **kw)
    (host / "token").write_text(ca.token() + "\n")
    r = agent(duet_bin, "--config", str(cfg), "--once")
    assert r.returncode == 0, r.stderr
    return host, cfg


def test_enroll_with_token_file(duet_bin, ca, tmp_path):
    host, cfg = enroll(duet_bin, ca, tmp_path)
    assert not (host / "token").exists(), "the token file is deleted after use"
    assert stat.S_IMODE(os.stat(host / "web.key").st_mode) == 0o600
    assert pub_of_cert(host / "web.crt") == pub_of_key(host / "web.key")
    r = subprocess.run(["openssl", "verify", "-CAfile", ca.root, "-untrusted",
                        str(host / "chain.pem"), str(host / "web.crt")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "BEGIN X509 CRL" in (host / "crl.pem").read_text()
    assert (host / "roots.pem").read_text() == ca.roots_pem()
    assert len(ca.saw("POST", "/v1/enroll")) == 1
    ev = [e for e in log_events(host) if e["event"] == "agent_enrolled"]
    assert ev and ev[0]["certificate"] == "web" and 0 < ev[0]["seconds_left"] <= 60
    st = json.loads(agent(duet_bin, "--config", str(cfg), "--status", "--format", "json").stdout)
    assert st[0]["name"] == "web" and st[0]["state"] == "valid"
    assert st[0]["serial"].replace(":", "") == serial_of(host / "web.crt").split("=")[1]
    assert 0 < st[0]["seconds_left"] <= 60


def test_enroll_with_token_option(duet_bin, ca, tmp_path):
    host = tmp_path / "host"
    cfg = write_config(tmp_path / "agent.yaml", ca, host)
    r = agent(duet_bin, "--config", str(cfg), "--once", "--token", ca.token())
    assert r.returncode == 0, r.stderr
    assert pub_of_cert(host / "web.crt") == pub_of_key(host / "web.key")


def test_wrong_root_fingerprint_refused_before_anything_is_sent(duet_bin, ca, tmp_path):
    host = tmp_path / "host"
    wrong = ":".join(["AB"] * 32)
    cfg = write_config(tmp_path / "agent.yaml", ca, host, fingerprint=wrong)
    (host / "token").write_text(ca.token() + "\n")
    r = agent(duet_bin, "--config", str(cfg), "--once")
    assert r.returncode == 1
    assert wrong in r.stderr and ca.root_sha256 in r.stderr, r.stderr
    assert "refusing to trust" in r.stderr
    assert ca.saw("POST", "/v1/enroll") == []
    assert (host / "token").exists(), "the token is not spent"
    assert not (host / "web.crt").exists() and not (host / "web.key").exists()
    # The daemon stops too: nothing can be trusted.
    r = agent(duet_bin, "--config", str(cfg), timeout=30)
    assert r.returncode == 1 and "refusing to trust" in r.stderr


def test_config_errors_name_file_line_and_key(duet_bin, tmp_path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("ca_url: http://ca:8443\nroot_fingerprint: AB\nstate_dir: s\n"
                   "certificates: []\n")
    r = agent(duet_bin, "--config", str(cfg), "--check")
    assert r.returncode == 2
    assert "bad.yaml:1:9: ca_url:" in r.stderr and "https://HOST:PORT" in r.stderr
    cfg.write_text("ca_url: https://ca:8443\nstate_dir: s\ncertificates:\n"
                   "  - {name: web, cert: a.crt, key: a.key}\n")
    r = agent(duet_bin, "--config", str(cfg), "--check")
    assert r.returncode == 2 and "root_fingerprint: required key is missing" in r.stderr


def test_once_exit_codes(duet_bin, ca, tmp_path):
    ca.renew_in = 10  # time enough for the run that finds nothing due, on a loaded machine
    host, cfg = enroll(duet_bin, ca, tmp_path)
    before = serial_of(host / "web.crt")
    # Nothing due: exit 0, no renewal asked.
    r = agent(duet_bin, "--config", str(cfg), "--once")
    assert r.returncode == 0, r.stderr
    assert ca.saw("POST", "/v1/renew") == []
    assert serial_of(host / "web.crt") == before
    # Past renew_after: the CA down, a failure, files untouched.
    wait_until_due(duet_bin, cfg)
    ca.down()
    key_before = (host / "web.key").read_bytes()
    crt_before = (host / "web.crt").read_bytes()
    r = agent(duet_bin, "--config", str(cfg), "--once")
    assert r.returncode == 1
    assert "cannot connect" in r.stderr, r.stderr
    assert (host / "web.key").read_bytes() == key_before
    assert (host / "web.crt").read_bytes() == crt_before
    failed = [e for e in log_events(host) if e["event"] == "agent_failed"]
    assert failed and failed[-1]["certificate"] == "web" and "seconds_left" in failed[-1]
    # The CA back: the renewal works, exit 0.
    ca.up()
    r = agent(duet_bin, "--config", str(cfg), "--once")
    assert r.returncode == 0, r.stderr
    assert len(ca.saw("POST", "/v1/renew")) == 1
    assert serial_of(host / "web.crt") != before
    assert pub_of_cert(host / "web.crt") == pub_of_key(host / "web.key")


def test_ca_answering_503_is_a_failure(duet_bin, ca, tmp_path):
    host = tmp_path / "host"
    cfg = write_config(tmp_path / "agent.yaml", ca, host)
    (host / "token").write_text(ca.token() + "\n")
    agent(duet_bin, "--config", str(cfg), "--once")  # bootstraps and enrolls
    (host / "crl.pem").unlink()
    ca.fail = 503
    r = agent(duet_bin, "--config", str(cfg), "--once")
    assert r.returncode == 1 and "HTTP 503" in r.stderr


class SighupRecorder:
    """A python process that counts SIGHUPs, with a pid file."""

    def __init__(self, tmp_path):
        self.count_file = tmp_path / "hups"
        self.pid_file = tmp_path / "reloader.pid"
        code = ("import signal, sys, time\n"
                "n = 0\n"
                "def h(s, f):\n"
                "    global n\n"
                "    n += 1\n"
                "    open(sys.argv[1], 'w').write(str(n))\n"
                "signal.signal(signal.SIGHUP, h)\n"
                "open(sys.argv[2], 'w').write('%d\\n' % __import__('os').getpid())\n"
                "while True: time.sleep(0.1)\n")
        self.proc = subprocess.Popen([sys.executable, "-c", code, str(self.count_file),
                                      str(self.pid_file)])
        deadline = time.time() + 10
        while not self.pid_file.exists() and time.time() < deadline:
            time.sleep(0.05)

    def count(self):
        return int(self.count_file.read_text()) if self.count_file.exists() else 0

    def stop(self):
        self.proc.kill()
        self.proc.wait()


def wait_for(pred, timeout, step=0.2):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return True
        time.sleep(step)
    return False


def start_daemon(duet_bin, cfg):
    return subprocess.Popen([str(duet_bin), "agent", "--config", str(cfg)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def stop_daemon(p):
    """SIGTERM; the daemon exits 0 (its exit status, and stderr when it is not)."""
    p.send_signal(signal.SIGTERM)
    try:
        _, err = p.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        p.kill()
        _, err = p.communicate()
    return p.returncode, err


def test_daemon_renews_in_a_row_with_signal_hook_and_matching_files(duet_bin, ca, tmp_path):
    rec = SighupRecorder(tmp_path)
    ca.renew_in = 3
    host, cfg = enroll(duet_bin, ca, tmp_path,
                       hook={"signal": "SIGHUP", "pid_file": str(rec.pid_file)})
    assert wait_for(lambda: rec.count() == 1, 5)
    hups_after_enroll = rec.count()
    mismatches = []
    stop = threading.Event()

    def reader():
        while not stop.is_set():
            c, k = pub_of_cert(host / "web.crt"), pub_of_key(host / "web.key")
            if c is None or k is None or c != k:
                mismatches.append((c, k))

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    serials = {serial_of(host / "web.crt")}
    p = start_daemon(duet_bin, cfg)
    try:
        # Renewed 3 s after each issuance plus the jitter (up to 5% of the 120 s lifetime).
        assert wait_for(lambda: len(ca.saw("POST", "/v1/renew")) >= 3, 150, step=1), \
            (ca.requests, p.poll())
        assert wait_for(lambda: rec.count() >= hups_after_enroll + 3, 10)
        serials.add(serial_of(host / "web.crt"))
    finally:
        stop.set()
        t.join()
        stop_daemon(p)
        rec.stop()
    assert len(serials) >= 2
    assert mismatches == []
    renewed = [e for e in log_events(host) if e["event"] == "agent_renewed"]
    assert len(renewed) >= 3 and len({e["serial"] for e in renewed}) == len(renewed)
    # Every renewal happened before the certificate expired.
    assert all(e["seconds_left"] > 0 for e in renewed)


def test_daemon_backs_off_while_the_ca_is_down_then_recovers(duet_bin, ca, tmp_path):
    ca.renew_in = 5  # due while the CA is down
    host, cfg = enroll(duet_bin, ca, tmp_path,
                       hook={"exec": ["sh", "-c", "echo renewed >> %s/hook.marks" %
                                      (tmp_path / "host")]})
    assert (host / "hook.marks").read_text().count("renewed") == 1
    old_serial = serial_of(host / "web.crt")
    old_cert = (host / "web.crt").read_bytes()
    ca.down()
    p = start_daemon(duet_bin, cfg)
    try:
        assert wait_for(lambda: len([e for e in log_events(host)
                                     if e["event"] == "agent_retry"]) >= 3, 90, step=0.5)
        retries = [e for e in log_events(host) if e["event"] == "agent_retry"]
        assert all(1 <= e["retry_in"] <= 4 for e in retries), retries
        assert all("cannot connect" in e["error"] and "seconds_left" in e for e in retries)
        assert (host / "web.crt").read_bytes() == old_cert, "the working certificate is kept"
        ca.up()
        assert wait_for(lambda: serial_of(host / "web.crt") != old_serial, 30, step=0.5)
    finally:
        rc, err = stop_daemon(p)
    assert rc == 0, err
    assert pub_of_cert(host / "web.crt") == pub_of_key(host / "web.key")
    assert (host / "hook.marks").read_text().count("renewed") >= 2


def test_already_renewed_is_reported_with_the_fix(duet_bin, ca, tmp_path):
    ca.renew_in = 2
    host, cfg = enroll(duet_bin, ca, tmp_path)
    # Someone renewed this certificate already (a copy of the host, an operator).
    import shutil
    copy = tmp_path / "copy"
    shutil.copytree(host, copy)
    subprocess.run([str(duet_bin), "cert", "renew", str(host / "web.crt"), "--reuse-key",
                    "--ca-dir", ca.ca, "--out", str(copy), "--name", "other"],
                   env={**os.environ, "DUET_CA_PASSPHRASE": "fake-ca-passphrase"},
                   check=True, capture_output=True)
    wait_until_due(duet_bin, cfg)
    r = agent(duet_bin, "--config", str(cfg), "--once")
    assert r.returncode == 1
    assert "already_renewed" in r.stderr and "new token" in r.stderr, r.stderr


def test_rekey_renewal_installs_a_new_matching_key(duet_bin, ca, tmp_path):
    host = tmp_path / "host"
    cfg = write_config(tmp_path / "agent.yaml", ca, host)
    text = cfg.read_text().replace("    token_file:", "    rekey: true\n    token_file:")
    cfg.write_text(text)
    (host / "token").write_text(ca.token() + "\n")
    ca.renew_in = 2
    assert agent(duet_bin, "--config", str(cfg), "--once").returncode == 0
    key_before = (host / "web.key").read_bytes()
    wait_until_due(duet_bin, cfg)
    r = agent(duet_bin, "--config", str(cfg), "--once")
    assert r.returncode == 0, r.stderr
    assert (host / "web.key").read_bytes() != key_before
    assert stat.S_IMODE(os.stat(host / "web.key").st_mode) == 0o600
    assert pub_of_cert(host / "web.crt") == pub_of_key(host / "web.key")
    assert not list(host.glob("*.agent-new"))


def test_example_configuration_is_valid(duet_bin):
    example = Path(__file__).resolve().parents[2] / "dist" / "agent.yaml"
    r = agent(duet_bin, "--config", str(example), "--check")
    assert r.returncode == 0 and r.stdout == "configuration OK\n", r.stderr


def test_sighup_refreshes_crl_and_roots(duet_bin, ca, tmp_path):
    host, cfg = enroll(duet_bin, ca, tmp_path)
    p = start_daemon(duet_bin, cfg)
    try:
        assert wait_for(lambda: len(ca.saw("GET", "/crl.pem")) >= 2, 20)
        (host / "crl.pem").unlink()
        (host / "roots.pem").unlink()
        p.send_signal(signal.SIGHUP)
        assert wait_for(lambda: (host / "crl.pem").exists() and (host / "roots.pem").exists(), 20)
    finally:
        rc, err = stop_daemon(p)
    assert rc == 0, err
    assert any(e["event"] == "agent_wake" for e in log_events(host))


def test_failover_to_the_next_ca_url(duet_bin, ca, tmp_path):
    host = tmp_path / "host"
    cfg = write_config(tmp_path / "agent.yaml", ca, host)
    dead = "https://127.0.0.1:%d" % free_port()
    cfg.write_text(cfg.read_text().replace("ca_url: %s\n" % ca.url,
                                           "ca_url: [%s, %s]\n" % (dead, ca.url)))
    (host / "token").write_text(ca.token() + "\n")
    r = agent(duet_bin, "--config", str(cfg), "--once")
    assert r.returncode == 0, r.stderr
    assert pub_of_cert(host / "web.crt") == pub_of_key(host / "web.key")
    # Both down: the error names the first URL tried.
    ca.down()
    (host / "crl.pem").unlink()
    r = agent(duet_bin, "--config", str(cfg), "--once")
    assert r.returncode == 1 and "no CA URL answered" in r.stderr, r.stderr


class FailingNode:
    """A CA URL that answers every request with a server error, over TLS with the fake CA's
    own server certificate (a node that lost its database, a load balancer without nodes)."""

    def __init__(self, ca, status=500):
        import http.server
        import ssl

        node = self

        class H(http.server.BaseHTTPRequestHandler):
            def _fail(self):
                node.seen.append((self.command, self.path))
                n = int(self.headers.get("Content-Length") or 0)
                if n:
                    self.rfile.read(n)
                body = json.dumps({"error": "internal_error",
                                   "detail": "the inventory cannot be reached"}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _fail

            def log_message(self, *args):
                pass

        self.seen = []
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(ca.server_cert, ca.server_key)
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.url = "https://127.0.0.1:%d" % self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def test_a_node_answering_server_errors_is_passed_over_for_the_next_ca_url(duet_bin, ca,
                                                                          tmp_path):
    host = tmp_path / "host"
    cfg = write_config(tmp_path / "agent.yaml", ca, host)
    bad = FailingNode(ca)
    try:
        cfg.write_text(cfg.read_text().replace("ca_url: %s\n" % ca.url,
                                               "ca_url: [%s, %s]\n" % (bad.url, ca.url)))
        (host / "token").write_text(ca.token() + "\n")
        r = agent(duet_bin, "--config", str(cfg), "--once")
        assert r.returncode == 0, r.stderr
        assert pub_of_cert(host / "web.crt") == pub_of_key(host / "web.key")
        # the failing node was asked first, and the enrollment went to the next one
        assert ("GET", "/roots.pem") in bad.seen, bad.seen
        assert [x for x in ca.requests if x[1] == "/v1/enroll"] == [("POST", "/v1/enroll", 200)]
        # every URL failing (the fake CA with 503): the first server error is the one reported
        ca.fail = 503
        (host / "crl.pem").unlink()
        r = agent(duet_bin, "--config", str(cfg), "--once")
        assert r.returncode == 1, r.stderr
        assert "GET /crl.pem: HTTP 500" in r.stderr, r.stderr
    finally:
        ca.fail = None
        bad.stop()


def ca_cli(ca, *args):
    r = subprocess.run([ca.duet, *args], capture_output=True, text=True,
                       env={**os.environ, "DUET_CA_PASSPHRASE": "fake-ca-passphrase"})
    assert r.returncode == 0, r.stderr
    return r.stdout


WEB = "spiffe://demo.internal/web"  # the inventory name of what ca.token() binds


def inventory_of(ca, name):
    rows = json.loads(ca_cli(ca, "cert", "list", "--ca-dir", ca.ca, "--format", "json"))
    return [r for r in rows if r["name"] == name]


def tokens_of(ca, name):
    rows = json.loads(ca_cli(ca, "ca", "token", "--list", "--ca-dir", ca.ca, "--format", "json"))
    return [t for t in rows if t["name"] == name]


def colon_serial(path):
    s = serial_of(path).split("=", 1)[1]
    return ":".join(s[i:i + 2] for i in range(0, len(s), 2))


def test_issued_certificate_survives_a_failed_install_and_is_installed_next_run(
        duet_bin, ca, tmp_path):
    host = tmp_path / "host"
    cfg = write_config(tmp_path / "agent.yaml", ca, host)
    certs = host / "certs"
    text = cfg.read_text()
    for f in ("web.crt", "web.key"):
        text = text.replace("%s/%s" % (host, f), "%s/%s" % (certs, f))
    cfg.write_text(text)
    # Where a directory is expected, a regular file: no write there succeeds, even as root.
    certs.write_text("not a directory\n")
    (host / "token").write_text(ca.token() + "\n")
    r = agent(duet_bin, "--config", str(cfg), "--once")
    assert r.returncode == 1
    assert str(certs / "web.") in r.stderr and "Not a directory" in r.stderr, r.stderr
    failed = [e for e in log_events(host) if e["event"] == "agent_failed"]
    assert failed and str(certs) in failed[-1]["error"], failed
    # The CA issued (the token is spent): exactly one certificate, one enrollment.
    assert len(ca.saw("POST", "/v1/enroll")) == 1
    rows = inventory_of(ca, WEB)
    assert len(rows) == 1, rows
    tok = tokens_of(ca, "web")
    assert len(tok) == 1 and tok[0]["status"] == "used" and tok[0]["serial"] == rows[0]["serial"]
    st = json.loads(agent(duet_bin, "--config", str(cfg), "--status", "--format", "json").stdout)
    assert st[0]["state"] == "install_pending" and st[0]["pending"] == str(host / "state" /
                                                                         "web.pending.pem"), st
    assert "pending" in agent(duet_bin, "--config", str(cfg), "--status").stdout
    # The operator fixes the directory; the next run installs what was issued, asking nothing.
    certs.unlink()
    certs.mkdir()
    r = agent(duet_bin, "--config", str(cfg), "--once")
    assert r.returncode == 0, r.stderr
    assert len(ca.saw("POST", "/v1/enroll")) == 1, "no second issuance"
    assert len(inventory_of(ca, WEB)) == 1
    assert colon_serial(certs / "web.crt") == rows[0]["serial"]
    assert pub_of_cert(certs / "web.crt") == pub_of_key(certs / "web.key")
    assert stat.S_IMODE(os.stat(certs / "web.key").st_mode) == 0o600
    assert not (host / "token").exists(), "the token file is deleted once installed"
    assert sorted(p.name for p in (host / "state").iterdir()) == ["root.pem", "web.json"]
    ev = [e for e in log_events(host) if e["event"] == "agent_enrolled"]
    assert len(ev) == 1 and ev[0]["serial"] == rows[0]["serial"] and ev[0]["pending"] is True
    st = json.loads(agent(duet_bin, "--config", str(cfg), "--status", "--format", "json").stdout)
    assert st[0]["state"] == "valid" and "pending" not in st[0]


def chattr(flag, path):
    return subprocess.run(["chattr", flag, str(path)], capture_output=True, text=True)


def test_renewed_certificate_survives_a_failed_install_and_is_not_renewed_twice(
        duet_bin, ca, tmp_path):
    ca.renew_in = 2
    host, cfg = enroll(duet_bin, ca, tmp_path)
    before = colon_serial(host / "web.crt")
    wait_until_due(duet_bin, cfg)
    ca.renew_in = None  # the renewed certificate is not due again during this test
    # An immutable directory: the renewed certificate cannot be written, even as root.
    if chattr("+i", host).returncode != 0:
        pytest.skip("chattr +i is not supported here")
    try:
        r = agent(duet_bin, "--config", str(cfg), "--once")
    finally:
        chattr("-i", host)
    assert r.returncode == 1
    assert str(host / "web.crt") in r.stderr, r.stderr
    assert colon_serial(host / "web.crt") == before, "the working certificate is kept"
    assert len(ca.saw("POST", "/v1/renew")) == 1
    renewed = [x for x in inventory_of(ca, WEB) if x["serial"] != before]
    assert len(renewed) == 1
    # The CA will not renew the old certificate again (409): the issued one must not be lost.
    r = agent(duet_bin, "--config", str(cfg), "--once")
    assert r.returncode == 0, r.stderr
    assert len(ca.saw("POST", "/v1/renew")) == 1, "no second renewal"
    assert colon_serial(host / "web.crt") == renewed[0]["serial"]
    assert pub_of_cert(host / "web.crt") == pub_of_key(host / "web.key")
    ev = [e for e in log_events(host) if e["event"] == "agent_renewed"]
    assert len(ev) == 1 and ev[0]["serial"] == renewed[0]["serial"] and ev[0]["pending"] is True


def crl_number(pem_text):
    r = subprocess.run(["openssl", "crl", "-noout", "-crlnumber"], input=pem_text,
                       capture_output=True, text=True, check=True)
    return int(r.stdout.strip().split("=", 1)[1], 16)


def age(path, seconds=7200):
    t = time.time() - seconds
    os.utime(path, (t, t))


def test_fetched_crl_is_checked_before_it_replaces_the_local_copy(duet_bin, ca, tmp_path):
    old = ca.crl_pem()
    host, cfg = enroll(duet_bin, ca, tmp_path)
    good = (host / "crl.pem").read_text()
    assert crl_number(good) > crl_number(old)
    # A CRL naming the same issuer, signed by another key (another CA of the same name).
    other = FakeCA(tmp_path / "other-ca", ca.duet, ttl="60s")
    other.down()
    forged = other.crl_pem()
    ca.crl_override = forged
    age(host / "crl.pem")
    r = agent(duet_bin, "--config", str(cfg), "--once")
    assert r.returncode == 1
    assert "signature" in r.stderr and "kept as it was" in r.stderr, r.stderr
    assert (host / "crl.pem").read_text() == good
    ev = [e for e in log_events(host) if e["event"] == "agent_refresh_failed"]
    assert ev and ev[-1]["file"] == str(host / "crl.pem") and "signature" in ev[-1]["error"]
    # An older CRL (a lower CRL number) of the right CA never replaces a newer one.
    ca.crl_override = old
    r = agent(duet_bin, "--config", str(cfg), "--once")
    assert r.returncode == 1
    assert "older" in r.stderr and "CRL number" in r.stderr, r.stderr
    assert (host / "crl.pem").read_text() == good
    # An expired CRL is refused too.
    expired = tmp_path / "expired.pem"
    ca_cli(ca, "crl", "generate", "--ca-dir", ca.ca, "--out", str(expired), "--next-update", "1s")
    time.sleep(2)
    ca.crl_override = expired.read_text()
    r = agent(duet_bin, "--config", str(cfg), "--once")
    assert r.returncode == 1 and "nextUpdate" in r.stderr, r.stderr
    assert (host / "crl.pem").read_text() == good
    # Not a CRL at all.
    ca.crl_override = "hello\n"
    r = agent(duet_bin, "--config", str(cfg), "--once")
    assert r.returncode == 1 and "not a PEM CRL" in r.stderr, r.stderr
    # A newer good one replaces it.
    ca.crl_override = None
    r = agent(duet_bin, "--config", str(cfg), "--once")
    assert r.returncode == 0, r.stderr
    assert crl_number((host / "crl.pem").read_text()) > crl_number(good)


def test_rekey_with_a_bundle_always_holds_a_matching_pair(duet_bin, ca, tmp_path):
    host = tmp_path / "host"
    cfg = write_config(tmp_path / "agent.yaml", ca, host)
    cfg.write_text(cfg.read_text().replace(
        "    token_file:", "    rekey: true\n    bundle: %s/web.pem\n    token_file:" % host))
    (host / "token").write_text(ca.token() + "\n")
    ca.renew_in = 2
    r = agent(duet_bin, "--config", str(cfg), "--once")
    assert r.returncode == 0, r.stderr
    bundle = host / "web.pem"
    assert stat.S_IMODE(os.stat(bundle).st_mode) == 0o600
    text = bundle.read_text()
    assert text.count("BEGIN CERTIFICATE") == 2 and text.count("BEGIN PRIVATE KEY") == 1
    assert pub_of_cert(bundle) == pub_of_key(bundle) == pub_of_key(host / "web.key")
    assert (host / "web.crt").read_text() in text
    mismatches, reads = [], [0]
    stop = threading.Event()

    def reader():
        while not stop.is_set():
            # One read of the one file: the key and the certificate of the same moment.
            data = bundle.read_bytes()
            c = subprocess.run(["openssl", "x509", "-noout", "-pubkey"], input=data,
                               capture_output=True).stdout
            k = subprocess.run(["openssl", "pkey", "-pubout"], input=data,
                               capture_output=True).stdout
            reads[0] += 1
            if not c or c != k:
                mismatches.append((c, k))

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    keys = {pub_of_key(bundle)}
    try:
        for _ in range(2):
            wait_until_due(duet_bin, cfg)
            r = agent(duet_bin, "--config", str(cfg), "--once")
            assert r.returncode == 0, r.stderr
            keys.add(pub_of_key(bundle))
        wait_for(lambda: reads[0] > 10, 30)  # the renewals took less time than ten reads
    finally:
        stop.set()
        t.join()
    assert len(keys) == 3, "each renewal brings a new key"
    assert reads[0] > 10 and mismatches == []
    assert pub_of_cert(bundle) == pub_of_key(host / "web.key")


def test_scheduled_log_before_the_first_enrollment(duet_bin, ca, tmp_path):
    host = tmp_path / "host"
    cfg = write_config(tmp_path / "agent.yaml", ca, host)
    (host / "token").write_text(ca.token() + "\n")
    p = start_daemon(duet_bin, cfg)
    try:
        assert wait_for(lambda: any(e["event"] == "agent_enrolled" for e in log_events(host)),
                        30)
    finally:
        rc, err = stop_daemon(p)
    assert rc == 0, err
    sched = [e for e in log_events(host) if e["event"] == "agent_scheduled"]
    assert len(sched) == 1, sched
    assert sched[0]["action"] == "enroll" and "renew_in" not in sched[0], sched
    # Enrolled: the next start schedules a renewal inside the certificate's life.
    p = start_daemon(duet_bin, cfg)
    try:
        assert wait_for(lambda: len([e for e in log_events(host)
                                     if e["event"] == "agent_scheduled"]) == 2, 10)
    finally:
        rc, err = stop_daemon(p)
    sched = [e for e in log_events(host) if e["event"] == "agent_scheduled"][-1]
    assert sched["action"] == "renew" and 0 <= sched["renew_in"] <= sched["seconds_left"], sched


def test_token_from_the_environment_not_seen_by_hooks(duet_bin, ca, tmp_path):
    host = tmp_path / "host"
    env_dump = tmp_path / "hook.env"
    cfg = write_config(tmp_path / "agent.yaml", ca, host,
                       hook={"exec": ["sh", "-c", "env > %s" % env_dump]})
    token = ca.token()
    r = subprocess.run([str(duet_bin), "agent", "--config", str(cfg), "--once"],
                       capture_output=True, text=True, timeout=60,
                       env={**os.environ, "DUET_AGENT_TOKEN": token})
    assert r.returncode == 0, r.stderr
    assert pub_of_cert(host / "web.crt") == pub_of_key(host / "web.key")
    assert tokens_of(ca, "web")[0]["status"] == "used"
    assert env_dump.exists() and token not in env_dump.read_text()
    assert "DUET_AGENT_TOKEN" not in env_dump.read_text()
    assert token not in (host / "agent.log").read_text()
    h = agent(duet_bin, "--help").stdout
    assert "DUET_AGENT_TOKEN" in h and "process list" in h, h
