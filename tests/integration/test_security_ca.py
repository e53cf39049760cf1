# SPDX-License-Identifier: Apache-2.0
"""Security regressions of the CA and the command line (issue 9, items 4 and 11).

- SAN injection: a --san value or a CSR name holding ",IP:..." or CR LF must never become
  extra names in the certificate; what `openssl x509 -text` shows is the proof.
- The default client profile issues the SPIFFE ID only (no DNS or email names).
- Names and inventory fields that hold ESC, CR, LF or BEL reach the terminal escaped
  (\\xNN) in text output, and JSON output stays valid JSON with the exact value.
- Commands that decrypt the CA key run without core dumps and non-dumpable.
- `duet tunnel` refuses a server whose certificate is for clientAuth only.
"""

import json
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest

from conftest import show
from proxyutil import DuetLog, Procs, free_port

ESC_OWNER = "team\x1b]0;pwned\x07\x1b[31mred"
CONTROL_BYTES = (b"\x1b", b"\x07", b"\r")


def openssl(*args, cwd=None):
    p = subprocess.run(["openssl", *map(str, args)], capture_output=True, cwd=cwd)
    assert p.returncode == 0, "openssl %s: %s" % (" ".join(map(str, args)), p.stderr)
    return p.stdout.decode(errors="replace")


def san_list(cert):
    """The subjectAltName entries of a certificate as `openssl x509 -ext` prints them.

    openssl separates entries with ", " and prints a URI as it is, so a URI holding a
    bare ',' stays one entry here.
    """
    out = openssl("x509", "-in", cert, "-noout", "-ext", "subjectAltName").splitlines()
    return [s.strip() for s in out[1].split(", ")] if len(out) > 1 else []


def x509_text(cert):
    return openssl("x509", "-in", cert, "-noout", "-text")


def assert_no_control(p, *, where="output"):
    """No ESC, BEL or CR anywhere, and LF only as line ends, in stdout and stderr."""
    for stream, data in (("stdout", p.stdout), ("stderr", p.stderr)):
        raw = data.encode() if isinstance(data, str) else data
        for b in CONTROL_BYTES:
            assert b not in raw, "raw %r reached the terminal on %s (%s)\n%s" % (
                b, stream, where, show(p))


@pytest.fixture
def ca(make_ca):
    return make_ca("Demo Corp")


def make_csr(directory, name, alt_lines):
    """A CSR whose subjectAltName is the [alt] section given (one name per line, values
    taken whole by openssl: a ',' does not split them, \\r and \\n are CR and LF)."""
    d = Path(directory)
    cnf = d / (name + ".cnf")
    cnf.write_bytes(b"[req]\ndistinguished_name=dn\nprompt=no\nreq_extensions=ext\n"
                    b"[dn]\nCN=" + name.encode() + b"\n[ext]\nsubjectAltName=@alt\n[alt]\n" +
                    b"\n".join(alt_lines) + b"\n")
    key, csr = d / (name + ".key"), d / (name + ".csr")
    openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", key, "-config", cnf, "-out", csr)
    return csr


def sign(ca, csr, profile, out, *extra):
    return ca.duet("cert", "sign", csr, "--profile", profile, "--ca-dir", ca.dir, "--out", out,
                   "--passphrase-file", ca.passfile, *extra)


# --- item 4: SAN injection ---------------------------------------------------------------------

@pytest.mark.parametrize("second,why", [
    # a second subjectAltName extension, written by its OID so that openssl adds both
    (b"2.5.29.17=DER:301482126576696c2e64656d6f2e696e7465726e616c",
     "more than one subjectAltName extension"),
    # a subjectAltName extension that is not a GeneralNames
    (b"2.5.29.17=DER:0403616263", "cannot be decoded"),
])
def test_csr_with_two_or_undecodable_san_extensions_is_refused(ca, tmp_path, second, why):
    d = tmp_path
    cnf = d / "two.cnf"
    first = b"subjectAltName=DNS:x.demo.internal\n" if b"30148212" in second else b""
    cnf.write_bytes(b"[req]\ndistinguished_name=dn\nprompt=no\nreq_extensions=ext\n"
                    b"[dn]\nCN=x.demo.internal\n[ext]\n" + first + second + b"\n")
    openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", d / "two.key", "-config", cnf, "-out", d / "two.csr")
    out = d / "two.crt"
    p = sign(ca, d / "two.csr", "server", out)
    assert p.returncode == 1, show(p)
    assert why in p.stderr, show(p)
    assert not out.exists()


def test_san_flag_injection_in_a_client_uri_is_refused(ca):
    p = ca.issue("x", "client", "--san", "uri:spiffe://demo-corp/x,IP:10.9.8.7,DNS:*")
    assert p.returncode != 0, "issued a client certificate from an injected --san\n" + show(p)
    assert "not a SPIFFE ID" in p.stderr, show(p)
    assert not (ca.out / "x.crt").exists()


def test_san_flag_injection_becomes_one_uri_and_no_extra_names(ca):
    """The device profile allows every type and has no patterns: the only thing keeping the
    injected IP and DNS names out is that the SAN is built as a structure."""
    p = ca.issue("dev", "device", "--san", "uri:urn:dev:x,IP:10.9.8.7,DNS:evil.example")
    assert p.returncode == 0, show(p)
    crt = ca.out / "dev.crt"
    assert san_list(crt) == ["URI:urn:dev:x,IP:10.9.8.7,DNS:evil.example"], x509_text(crt)
    t = x509_text(crt)
    assert "IP Address:10.9.8.7" not in t and ", DNS:evil.example" not in t, t


@pytest.mark.parametrize("value, why", [
    ("uri:spiffe://demo-corp/x\r\nDNS:evil", "0x0d"),
    ("uri:spiffe://demo-corp/x DNS:evil", "0x20"),
    ("dns:evil.example\x1b[31m", "0x1b"),
    ("uri:no-scheme-here", "not a URI"),
    ("email:a b@corp.example", "0x20"),
    ("dns:*.corp.example", "wildcard"),
])
def test_san_flag_with_bad_characters_is_refused(ca, value, why):
    p = ca.issue("bad", "device", "--san", value)
    assert p.returncode != 0, "issued with --san %r\n%s" % (value, show(p))
    assert why in p.stderr, show(p)
    assert_no_control(p)
    assert not (ca.out / "bad.crt").exists()


def test_csr_uri_with_comma_ip_adds_no_ip_name(ca, tmp_path):
    csr = make_csr(tmp_path, "dev", [b"URI.1=spiffe://demo-corp/x,IP:127.0.0.1"])
    out = tmp_path / "dev.crt"
    p = sign(ca, csr, "device", out, "--name", "dev")  # a CN that is no name certified
    assert p.returncode == 0, show(p)
    assert san_list(out) == ["URI:spiffe://demo-corp/x,IP:127.0.0.1"], x509_text(out)
    assert "IP Address:127.0.0.1" not in x509_text(out)


def test_csr_uri_with_comma_ip_is_refused_by_the_client_profile(ca, tmp_path):
    csr = make_csr(tmp_path, "cli", [b"URI.1=spiffe://demo-corp/x,IP:127.0.0.1"])
    out = tmp_path / "cli.crt"
    p = sign(ca, csr, "client", out)
    assert p.returncode != 0, show(p)
    assert "not a SPIFFE ID" in p.stderr, show(p)
    assert not out.exists()


def test_csr_uri_with_crlf_is_refused_and_the_reason_is_escaped(ca, tmp_path):
    csr = make_csr(tmp_path, "crlf", [b"URI.1=spiffe://demo-corp/x\\r\\nIP:127.0.0.1"])
    out = tmp_path / "crlf.crt"
    p = sign(ca, csr, "device", out)
    assert p.returncode != 0, show(p)
    assert "the CSR" in p.stderr and "0x0d" in p.stderr, show(p)
    assert "x\\x0d\\x0aIP:127.0.0.1" in p.stderr, show(p)
    assert p.stderr.count("\n") == 1, show(p)
    assert_no_control(p)
    assert not out.exists()


def test_renew_keeps_exactly_the_names(ca):
    crt, _, serial = ca.issued("dev2", "device", "--san", "uri:urn:dev:y,IP:10.9.8.7")
    newdir = ca.base / "renewed"
    newdir.mkdir()
    p = ca.duet("cert", "renew", serial, "--ca-dir", ca.dir, "--out", newdir,
                "--passphrase-file", ca.passfile)
    assert p.returncode == 0, show(p)
    assert san_list(newdir / "dev2.crt") == ["URI:urn:dev:y,IP:10.9.8.7"]


def test_list_shows_a_uri_with_a_comma_as_one_name(ca):
    _, _, serial = ca.issued("dev3", "device", "--san", "uri:urn:dev:z,IP:10.9.8.7")
    row = ca.row(serial)
    assert row["sans"] == ["URI:urn:dev:z,IP:10.9.8.7"], row


# --- item 11c: the default client profile -----------------------------------------------------

@pytest.mark.parametrize("extra", ["dns:localhost", "email:ceo@demo-corp.example",
                                   "ip:127.0.0.1"])
def test_default_client_profile_issues_only_the_spiffe_id(ca, extra):
    p = ca.issue("c", "client", "--san", "uri:spiffe://demo-corp/c", "--san", extra)
    assert p.returncode != 0, "client profile issued %s\n%s" % (extra, show(p))
    assert "not allowed by profile client (it allows uri)" in p.stderr, show(p)
    assert not (ca.out / "c.crt").exists()


def test_default_client_profile_still_issues_its_spiffe_id(ca):
    crt, _, _ = ca.issued("alice", "client")
    assert san_list(crt) == ["URI:spiffe://demo-corp/alice"]


# --- item 11a: names and inventory fields on a terminal ----------------------------------------

@pytest.fixture
def evil_chain(tmp_path):
    """A root and a leaf whose CN, DNS and URI names hold ESC, BEL, CR and LF."""
    d = tmp_path / "evil"
    d.mkdir()
    (d / "root.cnf").write_text("[req]\ndistinguished_name=dn\nprompt=no\nx509_extensions=v3\n"
                                "[dn]\nCN=Evil Test Root\n[v3]\nbasicConstraints=critical,CA:TRUE\n"
                                "keyUsage=critical,keyCertSign,cRLSign\n"
                                "subjectKeyIdentifier=hash\n")
    openssl("req", "-x509", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-nodes", "-keyout", d / "root.key", "-config", d / "root.cnf", "-days", "30",
            "-out", d / "root.crt")
    (d / "leaf.cnf").write_bytes(
        b"[req]\ndistinguished_name=dn\nprompt=no\n[dn]\nCN=leaf\x1b[2J\x1b]0;owned\x07\n"
        b"[v3]\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
        b"extendedKeyUsage=clientAuth,serverAuth\nsubjectAltName=@alt\n"
        b"[alt]\nURI.1=spiffe://evil/x\\r\\nX-Injected: 1\x1b[31m\n"
        b"DNS.1=evil\x1b]0;pwned\x07.example\n")
    openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", d / "leaf.key", "-config", d / "leaf.cnf", "-out", d / "leaf.csr")
    openssl("x509", "-req", "-in", d / "leaf.csr", "-CA", d / "root.crt", "-CAkey",
            d / "root.key", "-CAcreateserial", "-days", "10", "-extfile", d / "leaf.cnf",
            "-extensions", "v3", "-out", d / "leaf.crt")
    raw = openssl("x509", "-in", d / "leaf.crt", "-noout", "-ext", "subjectAltName")
    assert "\x1b" in raw and "\r\n" in raw, "the test certificate lacks its control bytes"
    return d


def test_inspect_text_escapes_names(run, evil_chain):
    p = run("cert", "inspect", evil_chain / "leaf.crt")
    assert p.returncode == 0, show(p)
    assert_no_control(p)
    assert "URI:spiffe://evil/x\\x0d\\x0aX-Injected: 1\\x1b[31m" in p.stdout, p.stdout
    assert "DNS:evil\\x1b]0;pwned\\x07.example" in p.stdout, p.stdout


def test_inspect_json_is_valid_and_exact(run, evil_chain):
    p = run("cert", "inspect", "--format", "json", evil_chain / "leaf.crt")
    assert p.returncode == 0, show(p)
    assert_no_control(p)
    cert = json.loads(p.stdout)[0]["objects"][0]
    assert "URI:spiffe://evil/x\r\nX-Injected: 1\x1b[31m" in cert["sans"], cert["sans"]
    assert "DNS:evil\x1b]0;pwned\x07.example" in cert["sans"], cert["sans"]


def test_verify_escapes_names_valid_and_invalid(run, evil_chain):
    d = evil_chain
    # A DNS name with control bytes is no host name (RFC 1034 3.5): refused, the name escaped.
    p = run("cert", "verify", "--trusted", d / "root.crt", d / "leaf.crt")
    assert p.returncode == 1, show(p)
    assert_no_control(p)
    assert ('has the DNS name "evil\\x1b]0;pwned\\x07.example" in its subject alternative names, '
            "which is not a valid host name: byte 0x1B is not allowed") in p.stderr, show(p)
    p = run("cert", "verify", "--trusted", d / "root.crt", "--purpose", "server", "--name",
            "good.example", d / "leaf.crt")
    assert p.returncode == 1, show(p)
    assert_no_control(p)
    # The same CN and URI beside a plain DNS name verify, and the valid line is escaped too.
    cnf = (d / "leaf.cnf").read_bytes().replace(b"DNS.1=evil\x1b]0;pwned\x07.example",
                                                b"DNS.1=good.example")
    (d / "plain.cnf").write_bytes(cnf)
    openssl("x509", "-req", "-in", d / "leaf.csr", "-CA", d / "root.crt", "-CAkey",
            d / "root.key", "-CAcreateserial", "-days", "10", "-extfile", d / "plain.cnf",
            "-extensions", "v3", "-out", d / "plain.crt")
    p = run("cert", "verify", "--trusted", d / "root.crt", d / "plain.crt")
    assert p.returncode == 0, show(p)
    assert_no_control(p)
    assert "\\x1b" in p.stdout, show(p)


def test_inventory_owner_with_escapes_is_escaped_everywhere(ca):
    _, _, serial = ca.issued("web", "server", "--owner", ESC_OWNER, "--location",
                             "rack\r\n7")
    outputs = {
        "list": ca.duet("cert", "list", "--ca-dir", ca.dir),
        "list csv": ca.duet("cert", "list", "--ca-dir", ca.dir, "--format", "csv"),
        "list json": ca.duet("cert", "list", "--ca-dir", ca.dir, "--format", "json"),
        "show": ca.duet("cert", "show", serial, "--ca-dir", ca.dir),
        "show json": ca.duet("cert", "show", serial, "--ca-dir", ca.dir, "--format", "json"),
        "expiring": ca.duet("cert", "expiring", "--ca-dir", ca.dir, "--within", "4000d"),
        "expiring prometheus": ca.duet("cert", "expiring", "--ca-dir", ca.dir, "--within",
                                       "4000d", "--format", "prometheus"),
    }
    for what, p in outputs.items():
        assert p.returncode in (0, 1), "%s\n%s" % (what, show(p))
        assert_no_control(p, where=what)
    assert "team\\x1b]0;pwned\\x07\\x1b[31mred" in outputs["show"].stdout
    assert "rack\\x0d\\x0a7" in outputs["list csv"].stdout
    assert "team\\\\x1b]0;pwned" in outputs["expiring prometheus"].stdout
    row = [r for r in json.loads(outputs["list json"].stdout) if r["serial"] == serial][0]
    assert (row["owner"], row["location"]) == (ESC_OWNER, "rack\r\n7"), row
    assert json.loads(outputs["show json"].stdout)["owner"] == ESC_OWNER


# --- item 11b: no core dump of a command holding the CA key -------------------------------------

NOBODY = 65534


def test_signing_commands_are_not_dumpable(make_ca, duet_bin):
    """`cert issue` as an unprivileged user (nobody when the tests run as root), blocked
    reading its passphrase from a FIFO: the kernel shows a core limit of 0 and, for a
    non-dumpable process, hands /proc/PID to root."""
    as_root = os.geteuid() == 0
    if as_root and not shutil.which("setpriv"):
        pytest.fail("setpriv (util-linux) is needed to run duet as another user than root")
    uid = NOBODY if as_root else os.geteuid()
    gid = NOBODY if as_root else os.getegid()
    ca = make_ca("Dump Corp")
    base = Path(tempfile.mkdtemp(prefix="duet-dump-"))
    try:
        os.chmod(base, 0o755)
        shutil.copytree(ca.dir, base / "ca")
        (base / "out").mkdir()
        fifo = base / "pass.fifo"
        os.mkfifo(fifo, 0o600)
        for root, dirs, files in os.walk(base):
            for n in [root, *(os.path.join(root, x) for x in dirs + files)]:
                os.chown(n, uid, gid)
        prefix = (["setpriv", "--reuid", str(uid), "--regid", str(gid), "--clear-groups"]
                  if as_root else [])
        proc = subprocess.Popen(
            [*prefix, str(duet_bin), "cert", "issue", "web", "--profile", "server", "--ca-dir",
             base / "ca", "--out", base / "out", "--passphrase-file", fifo],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
        try:
            status = Path("/proc/%d/status" % proc.pid)
            deadline = time.monotonic() + 10
            while True:  # setpriv execs duet: wait until the process is duet, blocked
                try:
                    comm = Path("/proc/%d/comm" % proc.pid).read_text().strip()
                    wchan = Path("/proc/%d/wchan" % proc.pid).read_text().strip()
                except OSError:
                    comm, wchan = "", ""
                if comm == "duet" and wchan not in ("", "0"):
                    break
                assert proc.poll() is None, proc.communicate()
                assert time.monotonic() < deadline, "duet never blocked on the FIFO"
                time.sleep(0.05)
            time.sleep(0.2)
            limits = Path("/proc/%d/limits" % proc.pid).read_text()
            core = [ln for ln in limits.splitlines() if ln.startswith("Max core file size")][0]
            assert core.split()[4:6] == ["0", "0"], core
            assert os.stat(status).st_uid == 0, (
                "/proc/PID belongs to uid %d: the process is dumpable" % os.stat(status).st_uid)
        finally:
            with open(fifo, "w") as f:  # let it finish
                f.write(ca.passphrase + "\n")
            out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, (out, err)
        assert (base / "out" / "web.crt").exists()
    finally:
        shutil.rmtree(base, ignore_errors=True)


# --- item 4 / review: the tunnel and a clientAuth-only server certificate ---------------------

class TLSServer:
    """A TLS server on 127.0.0.1 with cert/key: reads a request head, answers one line."""

    def __init__(self, cert, key):
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(str(cert), str(key))
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.handshakes = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            try:
                with self.ctx.wrap_socket(c, server_side=True) as s:
                    self.handshakes += 1
                    s.settimeout(5)
                    req = b""
                    while b"\r\n\r\n" not in req:  # answer once the request is in
                        data = s.recv(4096)
                        if not data:
                            break
                        req += data
                    s.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 12\r\n\r\nserver said\n")
                    while s.recv(4096):  # until the client closes
                        pass
            except (OSError, ssl.SSLError):
                pass

    def close(self):
        self.sock.close()


def run_tunnel(duet_bin, workdir, ca, roots, client, server_port):
    Path(workdir).mkdir(parents=True, exist_ok=True)
    procs = Procs(workdir)
    port = free_port()
    log = Path(workdir) / "tunnel.log"
    p = procs.start([duet_bin, "tunnel", "--listen", "127.0.0.1:%d" % port, "--target",
                     "127.0.0.1:%d" % server_port, "--cacert", roots, "--cert", client[0],
                     "--key", client[1], "--server-name", "localhost", "--log", log], "tunnel")
    dl = DuetLog(log, p, procs)
    dl.wait_event("start", timeout=10)
    return procs, port, dl


def fetch(port):
    return subprocess.run(["curl", "-sS", "--max-time", "10", "http://127.0.0.1:%d/" % port],
                          capture_output=True, text=True, timeout=20)


def test_tunnel_refuses_a_server_with_a_client_only_certificate(make_ca, duet_bin, tmp_path):
    ca = make_ca("Tunnel Corp")
    roots = tmp_path / "roots.pem"
    roots.write_text(ca.duet("ca", "roots", "--ca-dir", ca.dir).stdout)
    client = ca.issued("alice", "client")[:2]
    good = ca.issued("localhost", "server", "--san", "dns:localhost", "--san", "ip:127.0.0.1")
    # clientAuth only, yet naming localhost: the device profile issues that.
    bad = ca.issued("impostor", "device", "--san", "dns:localhost", "--san", "ip:127.0.0.1")
    assert "TLS Web Server Authentication" not in x509_text(bad[0])

    # Control: the real server certificate goes through.
    srv = TLSServer(good[0], good[1])
    procs, port, log = run_tunnel(duet_bin, tmp_path / "good", ca, roots, client, srv.port)
    try:
        p = fetch(port)
        assert "server said" in p.stdout, p
    finally:
        procs.close()
        srv.close()

    srv = TLSServer(bad[0], bad[1])
    procs, port, log = run_tunnel(duet_bin, tmp_path / "bad", ca, roots, client, srv.port)
    try:
        p = fetch(port)
        assert "server said" not in p.stdout, "the tunnel accepted a clientAuth-only server"
        ev = log.wait_event("handshake", 0, result="failed")
        assert "serverAuth" in ev["reason"], ev
    finally:
        procs.close()
        srv.close()
