# SPDX-License-Identifier: Apache-2.0
"""OCSP checking of client certificates in `duet proxy` (issue 13): --ocsp off|prefer|require,
--ocsp-url, --ocsp-timeout, --ocsp-cache-size (docs/proxy.md#ocsp-checking-of-client-certificates).

Responders: `duet ca serve` (the client certificate names its /ocsp in its authorityInfoAccess),
`openssl ocsp -index ... -port`, and a small Python responder that reads the serial asked about
from the GET and answers what a test wants for it: good, revoked, silence, garbage, a response
signed by a stranger, an expired one, one about another certificate.
"""

import base64
import datetime
import http.server
import socket
import socketserver
import subprocess
import threading
import time
import urllib.parse

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509 import ocsp

from conftest import show
from proxyutil import admin_get, client_context, free_port, metrics, refused_attempt, wait_metric
from test_ca_serve import CAServer
from test_proxy_ocsp_staple import leaf_of, load_issuer, response, stranger
from test_security_proxy_ops import start


class Responder:
    """An OCSP responder on 127.0.0.1 answering GETs (RFC 6960 A.1) per serial (an int):
    behaviour[serial] is "good", "revoked", "silent", "garbage", "stranger", "expired",
    "other" or "http500", or "held:" and one of those (answered once release is set); `asked` lists the serials asked about, in order."""

    def __init__(self, ca, certs, other=None, next_update=3600):
        self.issuer, self.ikey = load_issuer(ca)
        self.certs = {leaf_of(c).serial_number: leaf_of(c) for c in certs}
        self.other = leaf_of(other) if other is not None else None
        self.behaviour, self.asked, self.next_update = {}, [], next_update
        self.release = threading.Event()
        self.silent_asked = threading.Event()
        self.held_asked = threading.Event()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                b64 = urllib.parse.unquote(self.path.rsplit("/", 1)[-1])
                serial = ocsp.load_der_ocsp_request(base64.b64decode(b64)).serial_number
                outer.asked.append(serial)
                how = outer.behaviour.get(serial, "good")
                if how.startswith("held:"):
                    # Hold the question until release, then answer the rest ("held:revoked").
                    outer.held_asked.set()
                    outer.release.wait(30)
                    how = how[5:]
                if how == "silent":
                    outer.silent_asked.set()
                    outer.release.wait(30)
                    return
                if how == "http500":
                    self.send_response(500)
                    self.end_headers()
                    return
                if how == "too_large":
                    body = b"\x30" * 70000
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                if how == "trickle":
                    # A head announcing a whole response, then one byte at a time.
                    body = outer.answer(serial, "good")
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    for b in body:
                        if outer.release.wait(0.2):
                            return
                        try:
                            self.wfile.write(bytes([b]))
                            self.wfile.flush()
                        except OSError:
                            return
                    return
                if how == "not_http":
                    self.wfile.write(b"\x16\x03\x01 this is no HTTP at all\r\n\r\n")
                    return
                body = outer.answer(serial, how)
                self.send_response(200)
                self.send_header("Content-Type", "application/ocsp-response")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.srv = Server(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d/ocsp" % self.srv.server_address[1]
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def answer(self, serial, how):
        leaf = self.certs[serial]
        now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
        nxt = now + datetime.timedelta(seconds=self.next_update)
        if how == "garbage":
            return b"<html>this is not OCSP</html>"
        if how == "stranger":
            sc, sk = stranger()
            return response(leaf, self.issuer, sc, sk, certs=[sc])
        if how == "expired":
            return response(leaf, self.issuer, self.issuer, self.ikey,
                            this=now - datetime.timedelta(hours=2),
                            nxt=now - datetime.timedelta(hours=1))
        if how == "other":
            return response(self.other, self.issuer, self.issuer, self.ikey)
        return response(leaf, self.issuer, self.issuer, self.ikey, status=how,
                        this=now - datetime.timedelta(seconds=1), nxt=nxt)

    def close(self):
        self.release.set()
        self.srv.shutdown()
        self.srv.server_close()


class Silent:
    """A TCP socket that accepts and says nothing."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.url = "http://127.0.0.1:%d/ocsp" % self.sock.getsockname()[1]
        self.conns = []
        self.stop = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.stop:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(c)

    def close(self):
        self.stop = True
        self.sock.close()
        for c in self.conns:
            c.close()


@pytest.fixture
def world(make_ca):
    """(ca, server crt, server key, alice (crt, key, serial), bob (crt, key, serial), other)."""
    ca = make_ca("Ocsp Check Corp")
    srv = ca.issued("localhost", "server", "--san", "dns:localhost", "--san", "ip:127.0.0.1")
    alice = ca.issued("alice", "client")
    bob = ca.issued("bob", "client")
    other = ca.issued("carol", "client")
    return ca, srv[0], srv[1], alice, bob, other


def s_client(port, ca, who, sess_out=None, sess_in=None):
    """One request with `openssl s_client` (TLS 1.3) presenting who's certificate; -ign_eof
    keeps it reading so that the ticket sent after the handshake lands in sess_out."""
    argv = ["openssl", "s_client", "-connect", "127.0.0.1:%d" % port, "-servername",
            "localhost", "-CAfile", str(ca.root), "-cert", str(who[0]), "-cert_chain",
            str(who[0]), "-key", str(who[1]), "-tls1_3", "-ign_eof"]
    if sess_out is not None:
        argv += ["-sess_out", str(sess_out)]
    if sess_in is not None:
        argv += ["-sess_in", str(sess_in)]
    p = subprocess.run(argv, input=b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close"
                       b"\r\n\r\n", capture_output=True, timeout=20)
    return p.stdout.decode(errors="replace") + p.stderr.decode(errors="replace")


def read_response(s):
    """One HTTP/1.1 response with a Content-Length from s: its head and body."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        assert chunk, "closed before a response: %r" % data
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    length = [int(h.split(b":", 1)[1]) for h in head.split(b"\r\n")
              if h.lower().startswith(b"content-length:")][0]
    while len(body) < length:
        chunk = s.recv(65536)
        assert chunk, "closed in the body"
        body += chunk
    return head + b"\r\n\r\n" + body


def serial_int(colon):
    return int(colon.replace(":", ""), 16)


def proxy(procs, duet_bin, tmp_path, ca, crt, key, echo, name, *extra):
    return start(procs, duet_bin, tmp_path, "proxy",
                 ["--target", "127.0.0.1:%d" % echo.port, "--allow", "any", "--cert", crt,
                  "--key", key, "--cacert", ca.root, *extra], name)


def ctx_of(ca, who):
    return client_context(ca.root, who[0], who[1])


def get(port, ctx, timeout=10):
    """One request: ("response", bytes) when served, else what refused_attempt saw."""
    kind, data = refused_attempt(port, ctx, timeout=timeout)
    return kind, data


def served(port, ctx):
    kind, data = get(port, ctx)
    assert kind == "response" and data.startswith(b"HTTP/1.1 200"), (kind, data)


def refused_line(d, serial, mark=0):
    return d.log.wait(lambda e: e.get("event") == "handshake" and e.get("result") == "failed"
                      and (e.get("client_cert") or {}).get("serial") == serial, mark,
                      timeout=15)


# --- duet ca serve ------------------------------------------------------------------------

def served_by_ca_serve(make_ca, duet_bin, name):
    """A CA whose certificates name its `duet ca serve`'s /ocsp, that server started, a server
    certificate and two clients: (ca, serve, url, (crt, key), alice, bob)."""
    ca = make_ca(name)
    serve = CAServer(duet_bin, ca)
    url = "http://127.0.0.1:%d/ocsp" % serve.http_port
    yml = ca.dir / "ca.yaml"
    yml.write_text(yml.read_text().replace("ocsp_urls: []", 'ocsp_urls: ["%s"]' % url))
    srv = ca.issued("localhost", "server", "--san", "dns:localhost")
    alice = ca.issued("alice", "client")
    bob = ca.issued("bob", "client")
    serve.start()
    return ca, serve, url, srv[:2], alice, bob


def test_require_refuses_a_client_revoked_at_duet_ca_serve_without_any_crl(make_ca, duet_bin,
                                                                             procs, echo,
                                                                             tmp_path):
    ca, serve, url, (crt, key), alice, bob = served_by_ca_serve(make_ca, duet_bin,
                                                                "Serve Ocsp Corp")
    try:
        d = proxy(procs, duet_bin, tmp_path, ca, crt, key, echo, "serve", "--ocsp", "require")
        served(d.port, ctx_of(ca, bob))
        p = ca.duet("cert", "revoke", alice[2], "--ca-dir", ca.dir, "--reason", "keyCompromise")
        assert p.returncode == 0, show(p)
        kind, data = get(d.port, ctx_of(ca, alice))
        assert kind != "response", (kind, data)
        ev = refused_line(d, alice[2])
        assert ev["reason_code"] == "revoked", ev
        assert " was revoked on " in ev["reason"], ev
        assert "(reason: keyCompromise) by the OCSP responder %s" % url in ev["reason"], ev
        m = metrics(d.admin)
        assert m['duet_ocsp_queries_total{listener="proxy",result="revoked"}'] == 1, m
        assert m['duet_ocsp_queries_total{listener="proxy",result="good"}'] == 1, m
    finally:
        serve.stop()


# --- openssl ocsp ----------------------------------------------------------------------------

def index_line(crt, revoked):
    cert = x509.load_pem_x509_certificate(crt.read_bytes())
    after = getattr(cert, "not_valid_after_utc", None) or cert.not_valid_after
    exp = after.strftime("%y%m%d%H%M%SZ")
    rev = (datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=10)
           ).strftime("%y%m%d%H%M%SZ") + ",keyCompromise" if revoked else ""
    subject = "/" + "/".join(a.rfc4514_string() for a in reversed(list(cert.subject)))
    return "%s\t%s\t%s\t%X\tunknown\t%s\n" % ("R" if revoked else "V", exp, rev,
                                             cert.serial_number, subject)


def test_openssl_ocsp_responder_good_accepted_revoked_refused(world, duet_bin, procs, echo,
                                                              tmp_path):
    ca, crt, key, alice, bob, _ = world
    issuer, ikey = load_issuer(ca)
    keyfile = tmp_path / "issuing.key"
    keyfile.write_bytes(ikey.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    index = tmp_path / "index.txt"
    index.write_text(index_line(alice[0], False) + index_line(bob[0], True))
    port = free_port()
    resp = procs.start(["openssl", "ocsp", "-index", index, "-port", str(port), "-rsigner",
                        ca.issuing, "-rkey", keyfile, "-CA", ca.issuing, "-nmin", "60",
                        "-ignore_err"], "openssl-ocsp")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and ":%d " % port not in \
            subprocess.run(["ss", "-ltnH"], capture_output=True, text=True).stdout:
        time.sleep(0.1)  # listening (a probe connection would take the responder's only turn)
    url = "http://127.0.0.1:%d/" % port
    d = proxy(procs, duet_bin, tmp_path, ca, crt, key, echo, "anchor", "--ocsp", "require",
              "--ocsp-url", url)
    served(d.port, ctx_of(ca, alice))
    kind, data = get(d.port, ctx_of(ca, bob))
    assert kind != "response", (kind, data)
    ev = refused_line(d, bob[2])
    assert ev["reason_code"] == "revoked", ev
    assert "(reason: keyCompromise) by the OCSP responder %s" % url in ev["reason"], ev
    assert resp.poll() is None


# --- responders that fail --------------------------------------------------------------------

CASES = {
    # case: (the `code` of the ocsp_check_failed line, words of the reason)
    "down": ("connect", "asking the OCSP responder "),
    "silent": ("timeout", "did not answer within 1000 ms (--ocsp-timeout)"),
    "garbage": ("not_ocsp", "the reply is not a DER OCSP response"),
    "stranger": ("unknown_signer", 'signed by "CN=Stranger OCSP"'),
    "expired": ("expired", "the response is expired: its nextUpdate "),
    "other": ("wrong_certificate", "it answers for another certificate"),
    "http500": ("http_status", "answered HTTP 500"),
    "unknown": ("unknown", 'status "unknown"'),
    "too_large": ("too_large", "the answer is larger than 64 KiB"),
    "trickle": ("timeout", "did not answer within 1000 ms (--ocsp-timeout)"),
    "not_http": ("not_http", "the answer is not a valid HTTP response"),
}


@pytest.mark.parametrize("mode", ["prefer", "require"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_a_failing_responder_fails_open_or_closed(world, duet_bin, procs, echo, tmp_path, case,
                                                  mode):
    ca, crt, key, alice, _, other = world
    code, words = CASES[case]
    fake = silent = None
    try:
        if case == "down":
            url = "http://127.0.0.1:%d/ocsp" % free_port()
        elif case == "silent":
            silent = Silent()
            url = silent.url
        else:
            fake = Responder(ca, [alice[0]], other=other[0])
            fake.behaviour[serial_int(alice[2])] = case
            url = fake.url
        d = proxy(procs, duet_bin, tmp_path, ca, crt, key, echo, case, "--ocsp", mode,
                  "--ocsp-url", url, "--ocsp-timeout", "1s")
        kind, data = get(d.port, ctx_of(ca, alice), timeout=8)  # never a hung handshake
        ev = d.log.wait_event("ocsp_check_failed", timeout=10)
        assert ev["responder"] == url and ev["serial"] == alice[2], ev
        assert ev["code"] == code and words in ev["reason"], ev
        m = metrics(d.admin)
        result = {"silent": "timeout", "trickle": "timeout", "unknown": "unknown"}.get(case,
                                                                                   "error")
        assert m['duet_ocsp_queries_total{listener="proxy",result="%s"}' % result] == 1, m
        if mode == "prefer":
            assert kind == "response" and data.startswith(b"HTTP/1.1 200"), (kind, data)
            assert ev["outcome"] == "accepted", ev
            assert m['duet_ocsp_fail_open_total{listener="proxy",result="%s"}' % result] == 1, m
        else:
            assert kind != "response", (kind, data)
            assert ev["outcome"] == "refused", ev
            hs = refused_line(d, alice[2])
            assert "no good OCSP answer for certificate " in hs["reason"], hs
            assert "(--ocsp require)" in hs["reason"] and words in hs["reason"], hs
        if fake is not None:
            assert fake.asked == [serial_int(alice[2])], fake.asked
    finally:
        if fake is not None:
            fake.close()
        if silent is not None:
            silent.close()


def test_a_revoked_answer_is_refused_in_prefer_mode_too(world, duet_bin, procs, echo, tmp_path):
    ca, crt, key, alice, bob, _ = world
    fake = Responder(ca, [alice[0], bob[0]])
    try:
        fake.behaviour[serial_int(alice[2])] = "revoked"
        d = proxy(procs, duet_bin, tmp_path, ca, crt, key, echo, "prefer", "--ocsp", "prefer",
                  "--ocsp-url", fake.url)
        kind, data = get(d.port, ctx_of(ca, alice))
        assert kind != "response", (kind, data)
        ev = refused_line(d, alice[2])
        assert ev["reason_code"] == "revoked", ev
        assert "(reason: keyCompromise) by the OCSP responder %s" % fake.url in ev["reason"]
        served(d.port, ctx_of(ca, bob))
    finally:
        fake.close()


def test_a_responder_named_by_host_name_is_resolved_without_blocking(world, duet_bin, procs,
                                                                     echo, tmp_path):
    """The URL names `localhost`: resolved by the worker's asynchronous resolver (the hosts
    file), and asked."""
    ca, crt, key, alice, bob, _ = world
    fake = Responder(ca, [alice[0], bob[0]])
    try:
        fake.behaviour[serial_int(alice[2])] = "revoked"
        url = fake.url.replace("127.0.0.1", "localhost")
        d = proxy(procs, duet_bin, tmp_path, ca, crt, key, echo, "byname", "--ocsp", "require",
                  "--ocsp-url", url)
        served(d.port, ctx_of(ca, bob))
        kind, _ = get(d.port, ctx_of(ca, alice))
        assert kind != "response"
        ev = refused_line(d, alice[2])
        assert "by the OCSP responder %s" % url in ev["reason"], ev
        assert fake.asked == [serial_int(bob[2]), serial_int(alice[2])], fake.asked
    finally:
        fake.close()


def test_off_asks_nobody(world, duet_bin, procs, echo, tmp_path):
    ca, crt, key, alice, _, _ = world
    fake = Responder(ca, [alice[0]])
    try:
        fake.behaviour[serial_int(alice[2])] = "revoked"
        d = proxy(procs, duet_bin, tmp_path, ca, crt, key, echo, "off", "--ocsp-url", fake.url)
        served(d.port, ctx_of(ca, alice))
        assert fake.asked == []
    finally:
        fake.close()


def test_readyz_is_503_while_the_responder_of_a_require_listener_keeps_failing(world, duet_bin,
                                                                              procs, echo,
                                                                              tmp_path):
    ca, crt, key, alice, _, _ = world
    fake = Responder(ca, [alice[0]])
    try:
        fake.behaviour[serial_int(alice[2])] = "http500"
        d = proxy(procs, duet_bin, tmp_path, ca, crt, key, echo, "ready", "--ocsp", "require",
                  "--ocsp-url", fake.url)
        status, text = admin_get(d.admin, "/readyz")
        assert status == 200, text
        for n in range(3):
            kind, _ = get(d.port, ctx_of(ca, alice))
            assert kind != "response"
            status, text = admin_get(d.admin, "/readyz")
            assert status == (503 if n == 2 else 200), (n, text)
        assert ("proxy: the last 3 OCSP queries failed (--ocsp require refuses clients without "
                "a cached answer): the OCSP responder %s answered HTTP 500" % fake.url) in text
        fake.behaviour[serial_int(alice[2])] = "good"
        served(d.port, ctx_of(ca, alice))
        status, text = admin_get(d.admin, "/readyz")
        assert status == 200 and "OCSP" not in text, text
    finally:
        fake.close()


# --- the worker keeps serving -----------------------------------------------------------------

def test_a_handshake_waiting_for_a_silent_responder_does_not_stop_the_worker(world, duet_bin,
                                                                             procs, echo,
                                                                             tmp_path):
    ca, crt, key, alice, bob, _ = world
    fake = Responder(ca, [alice[0], bob[0]])
    try:
        fake.behaviour[serial_int(alice[2])] = "silent"
        d = proxy(procs, duet_bin, tmp_path, ca, crt, key, echo, "one", "--ocsp", "prefer",
                  "--ocsp-url", fake.url, "--ocsp-timeout", "20s", "--handshake-timeout", "30s",
                  "--workers", "1")
        first = {}
        t = threading.Thread(target=lambda: first.update(r=get(d.port, ctx_of(ca, alice),
                                                                 timeout=40)))
        t.start()
        assert fake.silent_asked.wait(15), "the responder was never asked about alice"
        served(d.port, ctx_of(ca, bob))
        assert t.is_alive() and "r" not in first, "alice's handshake ended before bob's request"
        fake.release.set()
        t.join(40)
        assert not t.is_alive()
    finally:
        fake.close()


def test_a_client_leaving_while_its_answer_is_awaited(world, duet_bin, procs, echo, tmp_path):
    """The connection is freed while its query waits (handshake deadline); the answer arriving
    later finds nobody, and the proxy goes on serving."""
    ca, crt, key, alice, bob, _ = world
    fake = Responder(ca, [alice[0], bob[0]])
    try:
        fake.behaviour[serial_int(alice[2])] = "silent"
        d = proxy(procs, duet_bin, tmp_path, ca, crt, key, echo, "leave", "--ocsp", "require",
                  "--ocsp-url", fake.url, "--ocsp-timeout", "5s", "--handshake-timeout", "1s",
                  "--workers", "1")
        kind, _ = get(d.port, ctx_of(ca, alice), timeout=10)
        assert kind != "response"
        ev = refused_line(d, alice[2])
        assert "did not finish within 1000 ms" in ev["reason"], ev
        fake.release.set()  # the responder hangs up after the connection is gone
        wait_metric(d.admin, 'duet_ocsp_queries_total{listener="proxy",result="error"}', 1,
                    timeout=10)
        served(d.port, ctx_of(ca, bob))
        assert d.proc.poll() is None
        assert not d.log.since(0, "ocsp_check_failed"), "nobody was left to decide for"
    finally:
        fake.close()


# --- resumed sessions --------------------------------------------------------------------------

def test_a_resumed_session_of_a_revoked_client_is_refused(world, duet_bin, procs, echo,
                                                          tmp_path):
    ca, crt, key, alice, _, _ = world
    fake = Responder(ca, [alice[0]], next_update=2)
    try:
        d = proxy(procs, duet_bin, tmp_path, ca, crt, key, echo, "resume", "--ocsp", "require",
                  "--ocsp-url", fake.url)
        sess = tmp_path / "alice.sess"
        out = s_client(d.port, ca, alice, sess_out=sess)
        assert "HTTP/1.1 200" in out and "New, TLSv1.3" in out, out
        assert "BEGIN SSL SESSION PARAMETERS" in sess.read_text()
        fake.behaviour[serial_int(alice[2])] = "revoked"
        time.sleep(3)  # the cached good answer (nextUpdate in 2 s) expires
        mark = d.log.mark()
        out = s_client(d.port, ca, alice, sess_in=sess)
        assert "Reused, TLSv1.3" in out, out
        assert "HTTP/1.1 200" not in out, "a revoked client must not get through:\n" + out
        ev = refused_line(d, alice[2], mark)
        assert ev["reason_code"] == "revoked", ev
        assert "by the OCSP responder %s" % fake.url in ev["reason"], ev
        assert fake.asked == [serial_int(alice[2])] * 2, fake.asked
    finally:
        fake.close()


def test_a_fresh_revoked_answer_closes_the_clients_open_connection(world, duet_bin, procs, echo,
                                                                   tmp_path):
    """Alice keeps a connection open; once her cached good answer expires and a new handshake
    of hers gets a revoked answer, that handshake is refused and her open connection is closed
    at its next boundary; bob's stays."""
    ca, crt, key, alice, bob, _ = world
    fake = Responder(ca, [alice[0], bob[0]], next_update=2)
    try:
        d = proxy(procs, duet_bin, tmp_path, ca, crt, key, echo, "sweep", "--ocsp", "require",
                  "--ocsp-url", fake.url, "--workers", "2")
        kept = {}
        for name, who in (("alice", alice), ("bob", bob)):
            s = ctx_of(ca, who).wrap_socket(socket.create_connection(("127.0.0.1", d.port),
                                                                     timeout=10),
                                            server_hostname="localhost")
            s.sendall(b"GET /one HTTP/1.1\r\nHost: localhost\r\n\r\n")
            assert read_response(s).startswith(b"HTTP/1.1 200")
            kept[name] = s
        fake.behaviour[serial_int(alice[2])] = "revoked"
        time.sleep(3)  # alice's cached good answer expires
        mark = d.log.mark()
        kind, _ = get(d.port, ctx_of(ca, alice))
        assert kind != "response"
        ev = d.log.wait_event("connection_closed", mark, timeout=10)
        assert ev["reason_code"] == "revoked" and ev["identity"]["serial"] == alice[2], ev
        assert ev["reason"].startswith("open connection: certificate CN=alice"), ev
        assert "by the OCSP responder %s" % fake.url in ev["reason"], ev
        assert kept["alice"].recv(65536) == b""
        kept["bob"].sendall(b"GET /two HTTP/1.1\r\nHost: localhost\r\n\r\n")
        assert read_response(kept["bob"]).startswith(b"HTTP/1.1 200")
        m = metrics(d.admin)
        assert m['duet_connections_closed_total{listener="proxy",reason="revoked"}'] == 1, m
        for s in kept.values():
            s.close()
    finally:
        fake.close()


# --- the cache ----------------------------------------------------------------------------------

def test_a_second_handshake_within_next_update_asks_nobody(world, duet_bin, procs, echo,
                                                           tmp_path):
    ca, crt, key, alice, bob, _ = world
    fake = Responder(ca, [alice[0], bob[0]])
    try:
        d = proxy(procs, duet_bin, tmp_path, ca, crt, key, echo, "cache", "--ocsp", "require",
                  "--ocsp-url", fake.url, "--no-session-tickets")
        served(d.port, ctx_of(ca, alice))
        served(d.port, ctx_of(ca, alice))
        served(d.port, ctx_of(ca, alice))
        assert fake.asked == [serial_int(alice[2])], fake.asked
        m = metrics(d.admin)
        assert m['duet_ocsp_cache_hits_total{listener="proxy"}'] == 2, m
        assert m['duet_ocsp_queries_total{listener="proxy",result="good"}'] == 1, m
        assert m["duet_ocsp_query_duration_seconds_count"] == 1, m
        served(d.port, ctx_of(ca, bob))
        assert fake.asked == [serial_int(alice[2]), serial_int(bob[2])], fake.asked
    finally:
        fake.close()


def test_flags_are_checked(world, run):
    ca, crt, key, _, _, _ = world
    base = ["proxy", "--listen", "127.0.0.1:1", "--target", "127.0.0.1:1", "--allow", "any",
            "--cert", crt, "--key", key, "--cacert", ca.root]
    p = run(*base, "--ocsp", "maybe", "--check")
    assert p.returncode == 2 and "prefer" in p.stderr and "require" in p.stderr, show(p)
    p = run(*base, "--ocsp", "require", "--ocsp-url", "https://ocsp.example/", "--check")
    assert p.returncode == 2, show(p)
    assert 'OCSP URL "https://ocsp.example/": only http:// is supported' in p.stderr, show(p)
    p = run(*base, "--ocsp", "prefer", "--ocsp-cache-size", "0", "--check")
    assert p.returncode == 2 and "1 to 10000000 entries" in p.stderr, show(p)
    p = run(*base, "--ocsp", "prefer", "--ocsp-url", "http://127.0.0.1:9/", "--check")
    assert p.returncode == 0 and "configuration OK" in p.stdout, show(p)


# --- what a client holding a valid certificate sends to get past the check ----------------

def _der_parse(b, i=0):
    tag = b[i]
    n = b[i + 1]
    i += 2
    if n & 0x80:
        k = n & 0x7f
        n = int.from_bytes(b[i:i + k], "big")
        i += k
    return tag, b[i:i + n], i + n


def _der_tlv(tag, val):
    n = len(val)
    if n < 0x80:
        ln = bytes([n])
    else:
        s = n.to_bytes((n.bit_length() + 7) // 8, "big")
        ln = bytes([0x80 | len(s)]) + s
    return bytes([tag]) + ln + val


def _der_children(val):
    out, i = [], 0
    while i < len(val):
        t, v, i = _der_parse(val, i)
        out.append((t, v))
    return out


def _compress_ec_key(cert_der):
    """The certificate with its P-256 public key as a compressed point: the same key, other
    bytes (so another SHA-1 of the key, another CertID issuerKeyHash)."""
    t, certv, _ = _der_parse(cert_der)
    ch = _der_children(certv)
    tch = _der_children(ch[0][1])
    idx = 6 if tch[0][0] == 0xa0 else 5
    sch = _der_children(tch[idx][1])
    point = sch[1][1][1:]
    assert point[0] == 4 and len(point) == 65
    sch[1] = (sch[1][0], b"\x00" + bytes([2 + (point[-1] & 1)]) + point[1:33])
    tch[idx] = (tch[idx][0], b"".join(_der_tlv(a, b) for a, b in sch))
    ch[0] = (ch[0][0], b"".join(_der_tlv(a, b) for a, b in tch))
    return _der_tlv(t, b"".join(_der_tlv(a, b) for a, b in ch))


def forged_issuer_chain(ca, who, tmp_path):
    """who's leaf, then a certificate of the client's making carrying the issuing CA's name,
    extensions and public key (compressed), signed by a throwaway key, then the real issuing
    CA: the handshake verifies through the real one."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    real = x509.load_pem_x509_certificate(ca.issuing.read_bytes())
    now = datetime.datetime.now(datetime.timezone.utc)
    b = (x509.CertificateBuilder().subject_name(real.subject).issuer_name(real.issuer)
         .public_key(real.public_key()).serial_number(12345)
         .not_valid_before(now - datetime.timedelta(days=10))
         .not_valid_after(now + datetime.timedelta(days=100)))
    for e in real.extensions:
        b = b.add_extension(e.value, e.critical)
    fake = b.sign(ec.generate_private_key(ec.SECP256R1()), hashes.SHA256())
    fake_der = _compress_ec_key(fake.public_bytes(serialization.Encoding.DER))
    fake_pem = (b"-----BEGIN CERTIFICATE-----\n" + base64.encodebytes(fake_der)
                + b"-----END CERTIFICATE-----\n")
    chain = tmp_path / ("%s-forged-chain.pem" % who[2].replace(":", ""))
    chain.write_bytes(leaf_of(who[0]).public_bytes(serialization.Encoding.PEM) + fake_pem
                      + real.public_bytes(serialization.Encoding.PEM))
    return chain


def test_a_forged_issuer_in_the_clients_chain_does_not_turn_revoked_into_accepted(
        world, duet_bin, procs, echo, tmp_path):
    """The request names the issuer of the verified chain: a certificate the client adds with
    the issuer's name and key bytes encoded otherwise changes nothing, so a signed `revoked`
    is still a refusal under prefer."""
    ca, crt, key, alice, bob, _ = world
    if x509.load_pem_x509_certificate(ca.issuing.read_bytes()).public_key().key_size != 256:
        pytest.fail("this test needs the CA's P-256 key (compressed point)")
    fake = Responder(ca, [alice[0], bob[0]])
    try:
        fake.behaviour[serial_int(alice[2])] = "revoked"
        d = proxy(procs, duet_bin, tmp_path, ca, crt, key, echo, "forged", "--ocsp", "prefer",
                  "--ocsp-url", fake.url)
        chain = forged_issuer_chain(ca, alice, tmp_path)
        kind, data = get(d.port, client_context(ca.root, chain, alice[1]))
        assert kind != "response", (kind, data)
        ev = refused_line(d, alice[2])
        assert ev["reason_code"] == "revoked", ev
        assert "by the OCSP responder %s" % fake.url in ev["reason"]
        assert d.log.since(0, "ocsp_check_failed") == [], \
            "the forged issuer made the answer fail its checks"
    finally:
        fake.close()


def test_one_client_cannot_make_readyz_503(world, duet_bin, procs, echo, tmp_path):
    """Three handshakes with a forged issuer under require leave /readyz at 200: the client's
    chain never reaches the request, and only the responder's failures count."""
    ca, crt, key, alice, bob, _ = world
    fake = Responder(ca, [alice[0], bob[0]])
    try:
        d = proxy(procs, duet_bin, tmp_path, ca, crt, key, echo, "rz", "--ocsp", "require",
                  "--ocsp-url", fake.url)
        chain = forged_issuer_chain(ca, alice, tmp_path)
        for _ in range(3):
            kind, data = get(d.port, client_context(ca.root, chain, alice[1]))
            assert kind == "response" and data.startswith(b"HTTP/1.1 200"), (kind, data)
        status, body = admin_get(d.admin, "/readyz")[:2]
        assert status == 200, (status, body)
    finally:
        fake.close()


def test_an_old_good_answer_without_next_update_is_not_taken(world, duet_bin, procs, echo,
                                                           tmp_path):
    """A good answer with no nextUpdate whose thisUpdate is a year old (a captured answer
    replayed on the http:// path) is refused as stale: require refuses the client."""
    from cryptography.hazmat.primitives import hashes
    ca, crt, key, alice, bob, _ = world
    fake = Responder(ca, [alice[0], bob[0]])
    issuer, ikey = load_issuer(ca)
    old = (datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
           - datetime.timedelta(days=365))
    body = (ocsp.OCSPResponseBuilder()
            .add_response(cert=leaf_of(alice[0]), issuer=issuer, algorithm=hashes.SHA1(),
                          cert_status=ocsp.OCSPCertStatus.GOOD, this_update=old,
                          next_update=None, revocation_time=None, revocation_reason=None)
            .responder_id(ocsp.OCSPResponderEncoding.HASH, issuer)
            .sign(ikey, hashes.SHA256()).public_bytes(serialization.Encoding.DER))
    fake.answer = lambda serial, how: body
    try:
        d = proxy(procs, duet_bin, tmp_path, ca, crt, key, echo, "old", "--ocsp", "require",
                  "--ocsp-url", fake.url)
        kind, data = get(d.port, ctx_of(ca, alice))
        assert kind != "response", (kind, data)
        ev = d.log.wait(lambda e: e.get("event") == "ocsp_check_failed", 0, timeout=15)
        assert ev["code"] == "stale" and "no nextUpdate" in ev["reason"], ev
        assert ev["outcome"] == "refused", ev
    finally:
        fake.close()


def test_a_reload_during_the_wait_is_applied_before_the_client_is_accepted(dpki, procs,
                                                                           tmp_path):
    """A client whose OCSP answer is awaited while a reload brings a CRL revoking it is
    refused when the wait ends, like the open connections the reload ended."""
    import os
    from test_proxy_lifecycle import ANY_TEST_CORP, args, connect, reload_with, request
    from test_proxy_lifecycle import response as h1_response
    from test_proxy_lifecycle import start as lstart
    from test_proxy_signals import SlowAnswers
    carol_crt, carol_key = dpki.issue("client", "carol-reload")
    crl = tmp_path / "crl.pem"
    dpki.gen_crl(crl)
    up = SlowAnswers()
    sil = Silent()
    try:
        d = lstart(procs, dpki.duet_bin, tmp_path, "proxy",
                   args(dpki, "127.0.0.1:%d" % up.port, "--allow", ANY_TEST_CORP, "--ocsp",
                        "prefer", "--ocsp-url", sil.url, "--ocsp-timeout", "4s",
                        "--handshake-timeout", "10s", crl=crl), "rl")
        dpki.revoke(carol_crt)
        staged = tmp_path / "crl.new"
        dpki.gen_crl(staged)
        carol = connect(d.port, dpki, carol_crt, carol_key)  # its OCSP answer is awaited now
        request(carol, b"/first")
        mark = d.log.mark()
        os.replace(staged, crl)
        reload_with(d, mark)
        head, body = h1_response(carol)
        assert not head, (head, body)
        ev = d.log.wait(lambda e: e.get("event") == "handshake" and e.get("result") == "failed"
                        and e.get("reason_code") == "revoked", mark, timeout=15)
        assert "revoked" in ev["reason"], ev
    finally:
        sil.close()
