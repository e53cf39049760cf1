# SPDX-License-Identifier: Apache-2.0
"""`duet probe HOST:PORT` against real servers started here: duet proxy, `openssl s_server`,
nginx with ssl_verify_client on, a closed port and a server that accepts TCP and never answers.

Each test asserts what a user reads (the problem named, the "fix:" line) and the JSON keys
that docs/cli/probe.md documents, not only the exit status.
"""

import json
import os
import shutil
import socket
import subprocess
import threading

import pytest

from proxyutil import free_port, pem_blocks, start_http_proxy, wait_port

PEER_PATH = "/usr/sbin:/sbin:/usr/bin:/bin"

ALICE_ALL = """\
      - {name: alice-public, allow: ["uri:spiffe://test-corp/alice"], path_prefix: /public/}
"""


def tool(name, package):
    path = shutil.which(name, path=PEER_PATH)
    if path is None:
        pytest.fail("%s is not installed (Debian package %s; `make deps` installs it)"
                    % (name, package), pytrace=False)
    return path


def show(p):
    return "exit %s\nstdout:\n%s\nstderr:\n%s" % (p.returncode, p.stdout, p.stderr)


def probe(run, port, *args, timeout=30):
    """`duet probe 127.0.0.1:PORT ARGS` as text, then as JSON: (text result, JSON object)."""
    t = run("probe", "127.0.0.1:%d" % port, *args, timeout=timeout)
    j = run("probe", "127.0.0.1:%d" % port, *args, "--format", "json", timeout=timeout)
    assert j.returncode == t.returncode, show(t) + show(j)
    try:
        doc = json.loads(j.stdout)
    except ValueError:
        raise AssertionError("--format json printed no JSON object:\n" + show(j))
    return t, doc


def codes(doc):
    return [f["code"] for f in doc["findings"]]


def finding(doc, code):
    for f in doc["findings"]:
        if f["code"] == code:
            return f
    raise AssertionError("no finding %r in %s" % (code, json.dumps(doc["findings"], indent=1)))


def fix_after(text, problem_part):
    """The "fix:" line that follows the problem line containing problem_part."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if problem_part in line and line.strip().startswith(("problem:", "warning:")):
            assert i + 1 < len(lines) and lines[i + 1].strip().startswith("fix: "), text
            return lines[i + 1].strip()
    raise AssertionError("no problem line with %r in:\n%s" % (problem_part, text))


# --- duet proxy -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def proxy(dpki, module_procs, echo, tmp_path_factory):
    return start_http_proxy(dpki, module_procs, tmp_path_factory.mktemp("probe-proxy"),
                            echo.port, rules=ALICE_ALL)


def root_name(dpki):
    return "CN=Test Corp Root CA,O=Test Corp"


def test_probe_duet_proxy_works(run, dpki, proxy):
    t, doc = probe(run, proxy.port, "--cert", dpki.alice_crt, "--key", dpki.alice_key,
                   "--cacert", dpki.roots, "--server-name", "localhost",
                   "--path", "/public/hello")
    assert t.returncode == 0, show(t)
    out = t.stdout
    assert "tcp: connected to 127.0.0.1:%d" % proxy.port in out, out
    assert "tls: TLSv1.3, cipher TLS_" in out, out
    assert "server chain (2 certificates, as sent):" in out, out
    assert "[0] CN=localhost" in out and "DNS:localhost, IP:127.0.0.1" in out, out
    assert 'server verification for "localhost" against --cacert %s: valid' % dpki.roots in out
    assert "client certificate: requested" in out, out
    assert "accepted CAs: %s" % root_name(dpki) in out, out
    assert "usable for clientAuth" in out and "our chain leads to the accepted CA" in out, out
    assert "http: GET /public/hello -> HTTP/1.1 200" in out, out
    assert "problem:" not in out and out.rstrip().endswith("the mTLS connection works"), out
    assert doc["ok"] is True and doc["findings"] == [], doc
    assert doc["tcp"]["connected"] is True
    assert doc["tls"]["handshake"] is True and doc["tls"]["version"] == "TLSv1.3"
    assert [c["subject"] for c in doc["server_chain"]][0].startswith("CN=localhost")
    assert doc["server_chain_order"]["verdict"] == "ok"
    assert doc["server_verification"]["valid"] is True
    assert doc["client_certificate_request"]["requested"] is True
    assert doc["client_certificate_request"]["ca_names"] == [root_name(dpki)]
    assert doc["client_certificate_request"]["signature_algorithms"], doc
    assert doc["client_certificate"]["ca_match"] == "chains"
    assert doc["client_certificate"]["usable"] == "ok"
    assert doc["server_answer"]["result"] == "accepted"
    assert doc["http"]["status"] == 200


def test_probe_duet_proxy_policy_refusal(run, dpki, proxy):
    t, doc = probe(run, proxy.port, "--cert", dpki.alice_crt, "--key", dpki.alice_key,
                   "--cacert", dpki.roots, "--server-name", "localhost", "--path", "/private")
    assert t.returncode == 1, show(t)
    assert "http: GET /private -> HTTP/1.1 403 Forbidden" in t.stdout, t.stdout
    assert "its policy refused the request" in t.stdout, t.stdout
    assert "identity spiffe://test-corp/alice" in t.stdout, t.stdout
    assert "for a rule that admits this identity" in fix_after(t.stdout, "policy refused")
    assert doc["http"]["status"] == 403
    assert doc["http"]["refusal"]["by"] == "duet proxy"
    assert doc["http"]["refusal"]["identity"] == "spiffe://test-corp/alice"
    assert codes(doc) == ["policy_denied"], doc


def test_probe_duet_proxy_wrong_ca(run, dpki, proxy):
    t, doc = probe(run, proxy.port, "--cert", dpki.eve_crt, "--key", dpki.eve_key,
                   "--cacert", dpki.roots, "--server-name", "localhost")
    assert t.returncode == 1, show(t)
    assert "issued by CN=Other Corp Issuing CA" in t.stdout, t.stdout
    assert "leads to none of the CAs the server accepts" in t.stdout, t.stdout
    assert "use a certificate issued by one of the accepted CAs" in fix_after(
        t.stdout, "leads to none of the CAs")
    assert "server answer: alert unknown CA" in t.stdout, t.stdout
    assert doc["client_certificate"]["ca_match"] == "not_accepted"
    assert doc["server_answer"]["result"] == "alert"
    assert doc["server_answer"]["alert"] == "unknown CA"
    assert doc["server_answer"]["meaning"] == "client_wrong_ca"
    assert doc["ok"] is False


def test_probe_duet_proxy_expired_client(run, dpki, proxy):
    from proxyutil import cert_serial
    serial = cert_serial(dpki.expired_crt)
    t, doc = probe(run, proxy.port, "--cert", dpki.expired_crt, "--key", dpki.expired_key,
                   "--cacert", dpki.roots, "--server-name", "localhost")
    assert t.returncode == 1, show(t)
    assert "our certificate CN=expired,O=Test Corp expired on" in t.stdout, t.stdout
    assert fix_after(t.stdout, "expired on") == \
        "fix: renew it: duet cert renew %s --ca-dir CA_DIR" % serial
    assert "server answer: alert certificate expired" in t.stdout, t.stdout
    assert doc["client_certificate"]["usable"] == "expired"
    assert finding(doc, "expired")["fix"].startswith("renew it: duet cert renew %s" % serial)
    assert doc["server_answer"]["meaning"] == "client_expired"


def test_probe_duet_proxy_server_only_eku(run, dpki, proxy, tmp_path):
    crt, key = dpki.issue("server", "svc-only", "--san", "dns:svc-only.example",
                          out=tmp_path)
    t, doc = probe(run, proxy.port, "--cert", crt, "--key", key, "--cacert", dpki.roots,
                   "--server-name", "localhost")
    assert t.returncode == 1, show(t)
    assert "extended key usage does not include clientAuth" in t.stdout, t.stdout
    assert "--profile client" in fix_after(t.stdout, "not usable as a client certificate")
    assert doc["client_certificate"]["usable"] == "eku"
    assert "--profile client" in finding(doc, "eku")["fix"]
    assert doc["server_answer"]["result"] == "alert"
    assert doc["server_answer"]["meaning"] == "client_eku", doc["server_answer"]


def test_probe_duet_proxy_leaf_only(run, dpki, proxy, tmp_path):
    leaf = tmp_path / "alice-leaf.crt"
    leaf.write_text(pem_blocks(dpki.alice_crt)[0])
    t, doc = probe(run, proxy.port, "--cert", leaf, "--key", dpki.alice_key,
                   "--cacert", dpki.roots, "--server-name", "localhost")
    assert t.returncode == 1, show(t)
    assert "missing intermediate" in t.stdout and "holds only our leaf" in t.stdout, t.stdout
    assert "CN=Test Corp Issuing CA" in t.stdout, t.stdout
    assert fix_after(t.stdout, "holds only our leaf") == \
        "fix: send the chain: give a file with the leaf followed by the issuing CA"
    assert doc["client_certificate"]["ca_match"] == "needs_chain"
    assert doc["client_certificate"]["chain_length"] == 1
    assert doc["server_answer"]["meaning"] == "client_chain_incomplete", doc["server_answer"]


def test_probe_duet_proxy_without_client_certificate(run, dpki, proxy):
    t, doc = probe(run, proxy.port, "--cacert", dpki.roots, "--server-name", "localhost")
    assert t.returncode == 1, show(t)
    assert "ours: none given" in t.stdout, t.stdout
    assert "requires a client certificate and we sent none" in t.stdout, t.stdout
    assert "--cert CLIENT.crt --key CLIENT.key" in fix_after(t.stdout, "we sent none")
    assert doc["client_certificate"] is None
    assert doc["server_answer"]["meaning"] == "no_client_cert", doc["server_answer"]


# --- openssl s_server -------------------------------------------------------------------------

def s_server(procs, dpki, tmp_path, *args, leaf_only=False):
    port = free_port()
    cert = dpki.server_crt
    if leaf_only:
        cert = tmp_path / "server-leaf.crt"
        cert.write_text(pem_blocks(dpki.server_crt)[0])
    argv = [tool("openssl", "openssl"), "s_server", "-accept", "127.0.0.1:%d" % port,
            "-cert", cert, "-key", dpki.server_key, "-www", "-quiet"]
    if not leaf_only:
        chain = tmp_path / "server-chain.crt"
        chain.write_text(pem_blocks(dpki.server_crt)[1])
        argv += ["-cert_chain", chain]
    p = procs.start(argv + list(args), "s_server")
    wait_port(port, p)
    return port


def test_probe_s_server_not_requesting_and_leaf_only(run, dpki, procs, tmp_path):
    port = s_server(procs, dpki, tmp_path, leaf_only=True)
    t, doc = probe(run, port, "--cert", dpki.alice_crt, "--key", dpki.alice_key,
                   "--cacert", dpki.roots, "--server-name", "localhost")
    assert t.returncode == 1, show(t)
    out = t.stdout
    assert "server chain (1 certificate, as sent):" in out, out
    assert ("missing intermediate: certificate [0] CN=localhost,O=Test Corp is issued by "
            "CN=Test Corp Issuing CA,O=Test Corp, which the server did not send and --cacert "
            "does not hold") in out, out
    assert "the server must send the chain" in fix_after(out, "missing intermediate")
    assert "INVALID" in out, out
    assert "client certificate: the server did not ask for one" in out, out
    assert "ssl_verify_client on" in fix_after(out, "did not ask for a client certificate")
    assert doc["server_chain_order"] == {"verdict": "missing_issuer", "index": 0}
    assert doc["server_verification"]["valid"] is False
    assert doc["server_verification"]["code"] == "unknown_ca"
    assert doc["client_certificate_request"]["requested"] is False
    assert {"missing_issuer", "unknown_ca", "not_requested"} <= set(codes(doc)), doc


def test_probe_s_server_verify_lists_accepted_cas(run, dpki, procs, tmp_path):
    port = s_server(procs, dpki, tmp_path, "-Verify", "2", "-CAfile", dpki.roots)
    t, doc = probe(run, port, "--cert", dpki.alice_crt, "--key", dpki.alice_key,
                   "--cacert", dpki.roots, "--server-name", "localhost")
    assert t.returncode == 0, show(t)
    assert "accepted CAs: CN=Test Corp Root CA,O=Test Corp" in t.stdout, t.stdout
    assert "signature algorithms: " in t.stdout and "ecdsa" in t.stdout, t.stdout
    assert doc["client_certificate_request"]["ca_names"] == [root_name(dpki)]
    assert doc["client_certificate"]["ca_match"] == "chains"
    assert doc["http"]["status"] == 200 and doc["ok"] is True, doc


# --- nginx ------------------------------------------------------------------------------------

NGINX_CONF = """\
daemon off;
master_process off;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log info;
events {{ worker_connections 64; }}
http {{
    access_log {prefix}/access.log;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    server {{
        listen 127.0.0.1:{port} ssl;
        server_name localhost;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        ssl_client_certificate {roots};
        ssl_verify_client on;
        ssl_verify_depth 2;
        location / {{
            default_type text/plain;
            return 200 "verify=$ssl_client_verify\\n";
        }}
    }}
}}
"""


@pytest.fixture(scope="module")
def nginx(dpki, module_procs, tmp_path_factory):
    binary = tool("nginx", "nginx")
    prefix = tmp_path_factory.mktemp("probe-nginx")
    for d in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (prefix / d).mkdir()
    port = free_port()
    conf = prefix / "nginx.conf"
    conf.write_text(NGINX_CONF.format(prefix=prefix, port=port, cert=dpki.server_crt,
                                      key=dpki.server_key, roots=dpki.roots))
    p = module_procs.start([binary, "-p", prefix, "-c", conf, "-e", prefix / "error.log"],
                           "nginx")
    wait_port(port, p)
    return port


def test_probe_nginx_works(run, dpki, nginx):
    t, doc = probe(run, nginx, "--cert", dpki.alice_crt, "--key", dpki.alice_key,
                   "--cacert", dpki.roots, "--server-name", "localhost")
    assert t.returncode == 0, show(t)
    assert "http: GET / -> HTTP/1.1 200 OK" in t.stdout, t.stdout
    assert doc["ok"] is True and doc["http"]["status"] == 200


def test_probe_nginx_refuses_no_certificate(run, dpki, nginx):
    t, doc = probe(run, nginx, "--cacert", dpki.roots, "--server-name", "localhost")
    assert t.returncode == 1, show(t)
    assert "HTTP/1.1 400" in t.stdout, t.stdout
    assert "the server (nginx) requires a client certificate and got none" in t.stdout
    assert "--cert CLIENT.crt" in fix_after(t.stdout, "got none")
    assert doc["http"]["refusal"] == {"by": "nginx", "error": "no_client_cert"}


def test_probe_nginx_refuses_other_ca(run, dpki, nginx):
    t, doc = probe(run, nginx, "--cert", dpki.eve_crt, "--key", dpki.eve_key,
                   "--cacert", dpki.roots, "--server-name", "localhost")
    assert t.returncode == 1, show(t)
    assert "leads to none of the CAs the server accepts" in t.stdout, t.stdout
    assert "could not verify our client certificate" in t.stdout, t.stdout
    assert doc["http"]["refusal"] == {"by": "nginx", "error": "client_cert_error",
                                      "meaning": "client_wrong_ca"}
    assert {"not_accepted", "client_cert_error"} <= set(codes(doc)), doc


# --- no TLS server ----------------------------------------------------------------------------

def test_probe_nothing_listening(run):
    port = free_port()
    t, doc = probe(run, port)
    assert t.returncode == 1, show(t)
    assert "connection refused by 127.0.0.1:%d: nothing listens on port %d" % (port, port) \
        in t.stdout, t.stdout
    assert "start the server" in fix_after(t.stdout, "connection refused")
    assert doc["tcp"] == {"connected": False, "address": "127.0.0.1:%d" % port,
                          "error": "refused"}
    assert codes(doc) == ["refused"]


@pytest.fixture
def silent_server():
    """Accepts TCP connections and never sends a byte."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    held, stop = [], threading.Event()

    def loop():
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                c, _ = srv.accept()
                held.append(c)
            except OSError:
                pass

    th = threading.Thread(target=loop, daemon=True)
    th.start()
    yield srv.getsockname()[1]
    stop.set()
    th.join()
    for c in held:
        c.close()
    srv.close()


def test_probe_server_that_never_answers(run, silent_server):
    t, doc = probe(run, silent_server, "--timeout", "1s", timeout=20)
    assert t.returncode == 1, show(t)
    assert "tcp: connected to 127.0.0.1:%d" % silent_server in t.stdout, t.stdout
    assert "sent no TLS answer within 1.0 s" in t.stdout, t.stdout
    assert "TLS port" in fix_after(t.stdout, "sent no TLS answer")
    assert doc["tls"]["handshake"] is False
    assert doc["server_answer"]["result"] == "timed_out"
    assert codes(doc) == ["tls_timed_out"]


def test_probe_usage_errors(run, dpki):
    p = run("probe")
    assert p.returncode == 2 and "no HOST:PORT was given" in p.stderr, show(p)
    p = run("probe", "localhost")
    assert p.returncode == 2 and "expected HOST:PORT" in p.stderr, show(p)
    p = run("probe", "localhost:443", "--cert", dpki.alice_crt)
    assert p.returncode == 2 and "--cert and --key go together" in p.stderr, show(p)
    p = run("probe", "localhost:443", "--cert", dpki.alice_crt, "--key", dpki.bob_key)
    assert p.returncode == 2 and "does not belong" in p.stderr, show(p)
    p = run("probe", "localhost:443", "--timeout", "soon")
    assert p.returncode == 2 and "--timeout" in p.stderr, show(p)
    p = run("probe", "--help")
    assert p.returncode == 0 and "--server-name" in p.stdout, show(p)
    h = run("help", "probe")
    assert h.returncode == 0 and h.stdout == run("probe", "--help").stdout, show(h)


def test_probe_help_and_page_name_the_same_flags(run):
    import re
    from pathlib import Path
    page = (Path(__file__).resolve().parents[2] / "docs" / "cli" / "probe.md").read_text()
    usage = set(re.findall(r"--[a-z][a-z-]+", page.split("```")[1]))
    table = set(re.findall(r"^\| `(--[a-z-]+)", page, re.M))
    table |= set(re.findall(r"`(--[a-z-]+) [A-Z]+`, `(--[a-z-]+)", page)[0])
    helped = set(re.findall(r"--[a-z][a-z-]+", run("probe", "--help").stdout)) - {"--help"}
    assert usage == helped, (usage, helped)
    assert table == helped, (table, helped)


# --- what a hostile server sends --------------------------------------------------------------

class TlsAnswerer:
    """A TLS server requiring a client certificate of dpki's CA that answers each request
    with fixed bytes (a head that never ends, terminal escapes in the status line and in a
    duet-proxy-like refusal body), then closes."""

    def __init__(self, dpki, answer):
        import ssl
        self.answer = answer
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(str(dpki.server_crt), str(dpki.server_key))
        self.ctx.verify_mode = ssl.CERT_REQUIRED
        self.ctx.load_verify_locations(str(dpki.roots))
        self.srv = socket.socket()
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(8)
        self.srv.settimeout(0.2)
        self.port = self.srv.getsockname()[1]
        self.stop = threading.Event()
        self.th = threading.Thread(target=self.loop, daemon=True)
        self.th.start()

    def loop(self):
        while not self.stop.is_set():
            try:
                c, _ = self.srv.accept()
            except OSError:
                continue
            try:
                c.settimeout(5)
                s = self.ctx.wrap_socket(c, server_side=True)
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                s.sendall(self.answer)
                s.close()
            except OSError:
                c.close()

    def close(self):
        self.stop.set()
        self.th.join()
        self.srv.close()


def test_probe_hostile_answer_reaches_the_terminal_escaped(run, dpki):
    body = (b'{"error":"forbidden","rule":"r\\u001b[2Jx","identity":"id\\u0007"}')
    answer = (b"HTTP/1.1 403 \x1b[31mForbidden\xff\r\nContent-Type: application/json\r\n"
              b"Content-Length: %d\r\n\r\n" % len(body)) + body
    srv = TlsAnswerer(dpki, answer)
    try:
        t, doc = probe(run, srv.port, "--cert", dpki.alice_crt, "--key", dpki.alice_key,
                       "--cacert", dpki.roots, "--server-name", "localhost")
    finally:
        srv.close()
    assert t.returncode == 1, show(t)
    assert "\x1b" not in t.stdout and "\x07" not in t.stdout, repr(t.stdout)
    assert "403 \\x1b[31mForbidden\\xff" in t.stdout, t.stdout
    assert "rule r\\x1b[2Jx decided for identity id\\x07" in t.stdout, t.stdout
    assert doc["http"]["status"] == 403
    assert doc["http"]["refusal"]["rule"] == "r\x1b[2Jx"
    assert codes(doc) == ["policy_denied"]


def test_probe_endless_http_head_is_bounded(run, dpki):
    answer = b"HTTP/1.1 200 OK\r\n" + b"X-Filler: " + b"a" * 100000 + b"\r\n"
    srv = TlsAnswerer(dpki, answer)
    try:
        t, doc = probe(run, srv.port, "--cert", dpki.alice_crt, "--key", dpki.alice_key,
                       "--cacert", dpki.roots, "--server-name", "localhost", "--timeout", "3s")
    finally:
        srv.close()
    assert "no end of head within 16 KiB" in t.stdout, show(t)
    assert finding(doc, "http_head_too_large")["severity"] == "warning"
    assert doc["http"] == {"status": None}


def test_probe_tls12_server_refusing_no_certificate(run, dpki, procs, tmp_path):
    port = s_server(procs, dpki, tmp_path, "-tls1_2", "-Verify", "2", "-CAfile", dpki.roots)
    t, doc = probe(run, port, "--cacert", dpki.roots, "--server-name", "localhost")
    assert t.returncode == 1, show(t)
    assert "server answer: alert handshake failure" in t.stdout, t.stdout
    assert "refused the connection without a client certificate" in t.stdout, t.stdout
    assert "--cert CLIENT.crt" in fix_after(t.stdout, "without a client certificate")
    assert doc["tls"]["handshake"] is False
    assert doc["client_certificate_request"]["requested"] is True
    assert doc["server_answer"]["meaning"] == "no_client_cert"


# --- duet cert inspect / verify on a live endpoint ------------------------------------------

def test_cert_inspect_shows_a_live_endpoint_chain(run, dpki, proxy):
    t = run("cert", "inspect", "127.0.0.1:%d" % proxy.port)
    assert t.returncode == 0, show(t)
    assert "CN=localhost" in t.stdout and "CN=Test Corp Issuing CA" in t.stdout, t.stdout
    j = run("cert", "inspect", "--format", "json", "https://127.0.0.1:%d" % proxy.port)
    assert j.returncode == 0, show(j)
    doc = json.loads(j.stdout)
    assert doc[0]["file"] == "https://127.0.0.1:%d" % proxy.port
    assert doc[0]["format"] == "TLS"
    subjects = [o["subject"] for o in doc[0]["objects"]]
    assert subjects == ["CN=localhost,O=Test Corp", "CN=Test Corp Issuing CA,O=Test Corp"]
    assert doc[0]["objects"][0]["signed_by_next"] is True
    port = free_port()
    t = run("cert", "inspect", "127.0.0.1:%d" % port)
    assert t.returncode == 2, show(t)
    assert "127.0.0.1:%d: connection refused" % port in t.stderr, show(t)


def test_cert_verify_checks_a_live_endpoint(run, dpki, proxy, tmp_path):
    ok = run("cert", "verify", "--trusted", dpki.roots, "--purpose", "server",
             "--name", "localhost", "127.0.0.1:%d" % proxy.port)
    assert ok.returncode == 0, show(ok)
    assert ok.stdout.startswith("valid: localhost (subject CN=localhost,O=Test Corp"), show(ok)
    # Without --name the host given is the name checked.
    ip = run("cert", "verify", "--trusted", dpki.roots, "--purpose", "server",
             "https://127.0.0.1:%d" % proxy.port)
    assert ip.returncode == 0, show(ip)
    bad = run("cert", "verify", "--trusted", dpki.roots, "--name", "other.example",
              "127.0.0.1:%d" % proxy.port)
    assert bad.returncode == 1, show(bad)
    assert "other.example" in bad.stderr, show(bad)
    other = tmp_path / "other-roots.pem"
    other.write_text(run("ca", "roots", "--ca-dir", dpki.other_ca).stdout)
    wrong = run("cert", "verify", "--trusted", other, "--format", "json",
                "127.0.0.1:%d" % proxy.port)
    assert wrong.returncode == 1, show(wrong)
    assert json.loads(wrong.stdout)["code"] == "unknown_ca", show(wrong)
    # A file of that name is a file, not an endpoint.
    f = tmp_path / "localhost:1"
    f.write_bytes(dpki.server_crt.read_bytes())
    byfile = run("cert", "verify", "--trusted", dpki.roots, "--name", "localhost", f)
    assert byfile.returncode == 0, show(byfile)


def test_probe_reports_the_ocsp_staple(run, dpki, procs, tmp_path):
    from proxyutil import openssl
    req, resp = tmp_path / "req.der", tmp_path / "resp.der"
    leaf = tmp_path / "server-leaf.pem"
    leaf.write_text(pem_blocks(dpki.server_crt)[0])
    openssl("ocsp", "-issuer", dpki.ca / "issuing.crt", "-cert", leaf, "-reqout", req,
            "-no_nonce")
    dpki.duet("ocsp", "respond", "--ca-dir", dpki.ca, "--request", req, "--out", resp)
    port = s_server(procs, dpki, tmp_path, "-status_file", resp, "-Verify", "2",
                    "-CAfile", dpki.roots)
    t, doc = probe(run, port, "--cert", dpki.alice_crt, "--key", dpki.alice_key,
                   "--cacert", dpki.roots, "--server-name", "localhost")
    assert t.returncode == 0, show(t)
    assert "ocsp staple: good, thisUpdate 20" in t.stdout, t.stdout
    assert "signature verified" in t.stdout, t.stdout
    st = doc["ocsp_staple"]
    assert st["status"] == "good" and st["signature_valid"] is True, st
    assert st["this_update"] < st["next_update"], st


def test_probe_checks_the_server_against_crls_and_the_system_store(run, dpki, proxy, tmp_path):
    t, doc = probe(run, proxy.port, "--cert", dpki.alice_crt, "--key", dpki.alice_key,
                   "--cacert", dpki.roots, "--server-name", "localhost", "--crl", dpki.crl,
                   "--path", "/public/x")
    assert t.returncode == 0, show(t)
    assert doc["server_verification"]["valid"] is True
    # A CRL of another CA covers nothing of this chain: refused, with the fix.
    other = tmp_path / "other.crl"
    dpki.duet("crl", "generate", "--ca-dir", dpki.other_ca, "--out", other)
    t, doc = probe(run, proxy.port, "--cert", dpki.alice_crt, "--key", dpki.alice_key,
                   "--cacert", dpki.roots, "--server-name", "localhost", "--crl", other,
                   "--path", "/public/x")
    assert t.returncode == 1, show(t)
    assert doc["server_verification"]["code"] == "crl_missing", doc["server_verification"]
    assert "--crl" in finding(doc, "crl_missing")["fix"]
    # Without --cacert: the system store, which does not hold this private CA.
    t, doc = probe(run, proxy.port, "--cert", dpki.alice_crt, "--key", dpki.alice_key,
                   "--server-name", "localhost", "--path", "/public/x")
    assert t.returncode == 1, show(t)
    assert 'server verification for "localhost" against the system store: INVALID' in t.stdout
    assert doc["server_verification"]["trust"] == "the system store"
    assert doc["server_chain_order"] == {"verdict": "anchor_not_trusted", "index": 1}
    assert "the last by CN=Test Corp Root CA,O=Test Corp, which the system store does not " \
        "hold" in t.stdout, t.stdout
    assert "--cacert" in finding(doc, "unknown_ca")["fix"]


def test_probe_tcp_proxy_refusing_by_policy(run, dpki, procs, tmp_path, echo):
    from proxyutil import DuetLog
    port = free_port()
    cfg = tmp_path / "proxy.yaml"
    cfg.write_text("""\
listeners:
  - name: t
    listen: 127.0.0.1:%(port)d
    mode: tcp
    cert: %(cert)s
    key: %(key)s
    cacert: %(roots)s
    target: [127.0.0.1:%(up)d]
    rules:
      - {name: bob-only, allow: ["uri:spiffe://test-corp/bob"]}
log: %(log)s
workers: 1
""" % dict(port=port, cert=dpki.server_crt, key=dpki.server_key, roots=dpki.roots,
           up=echo.port, log=tmp_path / "t.log"))
    p = procs.start([dpki.duet_bin, "proxy", "--config", cfg], "tcp-proxy")
    DuetLog(tmp_path / "t.log", p, procs).wait_event("start", timeout=15)
    t, doc = probe(run, port, "--cert", dpki.alice_crt, "--key", dpki.alice_key,
                   "--cacert", dpki.roots, "--server-name", "localhost", "--no-http")
    assert t.returncode == 1, show(t)
    assert "closed the connection right after the handshake" in t.stdout, t.stdout
    assert "names the rule" in fix_after(t.stdout, "right after the handshake")
    assert doc["server_answer"]["result"] == "closed"
    assert codes(doc) == ["closed_after_handshake"]
    assert "http" not in doc
    # bob is admitted: the echo upstream waits for bytes, the probe waits 2 s and is content.
    t, doc = probe(run, port, "--cert", dpki.bob_crt, "--key", dpki.bob_key,
                   "--cacert", dpki.roots, "--server-name", "localhost", "--no-http")
    assert t.returncode == 0, show(t)
    assert doc["server_answer"]["result"] == "accepted" and doc["findings"] == []


def test_probe_no_shared_signature_algorithm(run, dpki, procs, tmp_path):
    crt, key = dpki.issue("client", "edna", "--key-type", "ed25519", out=tmp_path / "ed")
    port = s_server(procs, dpki, tmp_path, "-Verify", "2", "-CAfile", dpki.roots,
                    "-client_sigalgs", "ECDSA+SHA256")
    t, doc = probe(run, port, "--cert", crt, "--key", key, "--cacert", dpki.roots,
                   "--server-name", "localhost")
    assert t.returncode == 1, show(t)
    assert "signature algorithms: ecdsa_secp256r1_sha256" in t.stdout, t.stdout
    assert "no shared signature algorithm: the server accepts none our Ed25519 key can make" \
        in t.stdout, t.stdout
    assert "--key-type" in fix_after(t.stdout, "no shared signature algorithm")
    assert doc["client_certificate_request"]["signature_algorithms"] == [
        "ecdsa_secp256r1_sha256"]
    assert doc["client_certificate"]["sent"] is False
    assert "no_shared_sigalg" in codes(doc)


@pytest.mark.parametrize("case,code,fix_part,meaning", [
    ("expired", "expired", "renew it: duet cert renew", "client_expired"),
    ("leaf_only", "needs_chain", "send the chain", "client_chain_incomplete"),
    ("server_eku", "eku", "--profile client", "client_eku"),
    ("other_ca", "not_accepted", "accept", "client_wrong_ca"),
])
def test_probe_nginx_names_our_certificate_problem(run, dpki, nginx, tmp_path, case, code,
                                                    fix_part, meaning):
    if case == "expired":
        crt, key = dpki.expired_crt, dpki.expired_key
    elif case == "leaf_only":
        crt, key = tmp_path / "leaf.crt", dpki.alice_key
        crt.write_text(pem_blocks(dpki.alice_crt)[0])
    elif case == "server_eku":
        crt, key = dpki.issue("server", "svc-nginx", "--san", "dns:svc-nginx.example",
                              out=tmp_path)
    else:
        crt, key = dpki.eve_crt, dpki.eve_key
    t, doc = probe(run, nginx, "--cert", crt, "--key", key, "--cacert", dpki.roots,
                   "--server-name", "localhost")
    assert t.returncode == 1, show(t)
    f = finding(doc, code)
    assert f["step"] == "client_certificate" and fix_part in f["fix"], f
    assert "fix: " + f["fix"] in t.stdout, t.stdout
    # nginx finishes the handshake and refuses with its 400 page: read in context.
    assert doc["http"]["status"] == 400, doc.get("http")
    ref = doc["http"]["refusal"]
    assert ref["by"] == "nginx" and ref["error"] == "client_cert_error", ref
    assert ref["meaning"] == meaning, ref
    assert fix_part in finding(doc, "client_cert_error")["fix"]


def test_probe_reads_an_encrypted_key_with_password_file(run, dpki, proxy, tmp_path):
    """An encrypted --key is refused with the reason (exit 2) until --password-file is given,
    as `duet cert inspect` and `duet cert verify` take it."""
    pw = tmp_path / "pass.txt"
    pw.write_text("probe passphrase\n")
    os.chmod(pw, 0o600)
    enc = tmp_path / "alice-encrypted.key"
    subprocess.run(["openssl", "pkey", "-in", str(dpki.alice_key), "-aes256",
                    "-passout", "file:%s" % pw, "-out", str(enc)], check=True)
    args = ("--cert", dpki.alice_crt, "--key", enc, "--cacert", dpki.roots,
            "--server-name", "localhost", "--path", "/public/hello")
    p = run("probe", "127.0.0.1:%d" % proxy.port, *args)
    assert p.returncode == 2, show(p)
    assert "is encrypted; a passphrase is needed (give it with --password-file F)" in p.stderr, \
        show(p)
    wrong = tmp_path / "wrong.txt"
    wrong.write_text("not it\n")
    os.chmod(wrong, 0o600)
    p = run("probe", "127.0.0.1:%d" % proxy.port, *args, "--password-file", wrong)
    assert p.returncode == 2 and "alice-encrypted.key" in p.stderr, show(p)
    t, doc = probe(run, proxy.port, *args, "--password-file", pw)
    assert t.returncode == 0, show(t)
    assert doc["ok"] is True and doc["http"]["status"] == 200, doc
    assert doc["client_certificate"]["usable"] == "ok", doc
