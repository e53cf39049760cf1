# SPDX-License-Identifier: Apache-2.0
"""A stand-in for `duet ca serve`, for testing `duet agent` on its own.

It implements the endpoints the agent uses, as docs/ca-server.md specifies
them (GET /v1/ca, /roots.pem, /chain.pem, /crl.pem; POST /v1/enroll,
/v1/renew), over HTTPS on 127.0.0.1, and signs with the REAL duet CLI on a
real CA directory: `duet cert sign CSR --token T` for enrollment, `duet cert
renew --reuse-key` (or `cert sign` of the CSR with the old certificate's names
to rekey) for renewal, `duet crl generate` for the CRL.  The client
certificate of /v1/renew is verified by the TLS stack against the CA (root and
issuing CA), as the contract requires.

It can fail on demand: `fail = 503` answers every request with a 503,
`fail = "close"` closes connections without an answer, `down()` / `up()` stop
and restart the listener on the same port (connection refused meanwhile).
`crl_override` set to a text serves that text as /crl.pem (an old, forged or broken CRL).
`renew_in` set to N makes the certificates issued from then on carry a `renew_after` N seconds
after issuance instead of two thirds of the lifetime (a CA asking for early renewal): tests of
renewal wait seconds rather than the third of a lifetime the CA backdates.
Every request is recorded in `requests` as (method, path, status).
"""
import json
import os
import re
import socket
import ssl
import subprocess
import tempfile
import threading
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from proxyutil import free_port

PASS = "fake-ca-passphrase"


def _env():
    env = dict(os.environ)
    env["DUET_CA_PASSPHRASE"] = PASS
    return env


def _x509_field(pem_path, *args):
    out = subprocess.run(["openssl", "x509", "-in", pem_path, "-noout", *args],
                         capture_output=True, text=True, check=True).stdout
    return out.strip()


def _rfc3339(openssl_date):
    t = datetime.strptime(openssl_date, "%b %d %H:%M:%S %Y %Z").replace(tzinfo=timezone.utc)
    return t, t.strftime("%Y-%m-%dT%H:%M:%SZ")


def fingerprint(pem_path):
    """SHA-256 of a certificate, colon hex upper case (as GET /v1/ca gives it)."""
    return _x509_field(pem_path, "-fingerprint", "-sha256").split("=", 1)[1]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # quiet
        pass

    def _send(self, status, body, ctype="application/json"):
        data = body.encode() if isinstance(body, str) else body
        self.server.fake.requests.append((self.command, self.path, status))
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)
        self.close_connection = True

    def _error(self, status, code, detail):
        self._send(status, json.dumps({"error": code, "detail": detail}))

    def _pre(self):
        fake = self.server.fake
        if fake.fail == "close":
            fake.requests.append((self.command, self.path, 0))
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return False
        if fake.fail == 503:
            self._error(503, "internal_error", "the CA is unavailable (fake: failing on demand)")
            return False
        return True

    def do_GET(self):
        if not self._pre():
            return
        fake = self.server.fake
        if self.path == "/v1/ca":
            self._send(200, json.dumps({"name": "Demo", "trust_domain": "demo.internal",
                                        "root_sha256": fake.root_sha256,
                                        "issuing_sha256": fingerprint(fake.issuing)}))
        elif self.path == "/roots.pem":
            self._send(200, fake.roots_pem(), "application/x-pem-file")
        elif self.path == "/chain.pem":
            with open(fake.issuing) as a, open(fake.root) as b:
                self._send(200, a.read() + b.read(), "application/x-pem-file")
        elif self.path == "/crl.pem":
            crl = fake.crl_override if fake.crl_override is not None else fake.crl_pem()
            self._send(200, crl, "application/x-pem-file")
        else:
            self._error(404, "not_found", "no such endpoint")

    def _body(self):
        n = int(self.headers.get("Content-Length", "0"))
        if n > 65536:
            self._error(413, "payload_too_large", "body over 65536 bytes")
            return None
        if self.headers.get("Content-Type", "").split(";")[0].strip() != "application/json":
            self._error(415, "unsupported_media_type", "expected application/json")
            return None
        try:
            body = json.loads(self.rfile.read(n) or b"null")
        except ValueError:
            body = None
        if not isinstance(body, dict):
            self._error(400, "bad_request", "the body is not a JSON object")
            return None
        return body

    def do_POST(self):
        if not self._pre():
            return
        body = self._body()
        if body is None:
            return
        if self.path == "/v1/enroll":
            self.server.fake.enroll(self, body)
        elif self.path == "/v1/renew":
            self.server.fake.renew(self, body)
        else:
            self._error(404, "not_found", "no such endpoint")


class FakeCA:
    """A CA directory made with `duet ca init`, served over HTTPS like `duet ca serve`."""

    def __init__(self, workdir, duet_bin, ttl="60s", port=0):
        self.dir = str(workdir)
        self.duet = duet_bin
        self.ca = os.path.join(self.dir, "ca")
        self.requests = []
        self.fail = None
        self.crl_override = None  # the text GET /crl.pem serves instead of a fresh CRL
        self.renew_in = None  # seconds after issuance for renew_after; None: 2/3 of the life
        self.lock = threading.Lock()
        os.makedirs(self.dir, exist_ok=True)
        self._run("ca", "init", "--ca-dir", self.ca, "--name", "Demo",
                  "--trust-domain", "demo.internal")
        # Short-lived certificates: the server profile's default_ttl (docs/ca.md).
        yml = os.path.join(self.ca, "ca.yaml")
        text = open(yml).read()
        for prof in ("server", "peer"):
            text = re.sub(r"(  %s:\n(?:    .*\n)*?    default_ttl: )\S+" % prof,
                          r"\g<1>" + ttl, text)
        open(yml, "w").write(text)
        self.root = os.path.join(self.ca, "root.crt")
        self.issuing = os.path.join(self.ca, "issuing.crt")
        self.root_sha256 = fingerprint(self.root)
        srv = os.path.join(self.dir, "srv")
        os.makedirs(srv)
        self._run("cert", "issue", "ca-server", "--profile", "server", "--san", "dns:localhost",
                  "--san", "ip:127.0.0.1", "--ttl", "24h", "--ca-dir", self.ca, "--out", srv)
        self.server_cert = os.path.join(srv, "ca-server.crt")
        self.server_key = os.path.join(srv, "ca-server.key")
        self.cafile = os.path.join(self.dir, "client-anchors.pem")
        with open(self.cafile, "w") as f:
            f.write(open(self.root).read() + open(self.issuing).read())
        self.port = port or free_port()
        self.httpd = None
        self.up()

    def _run(self, *args, check=True):
        r = subprocess.run([self.duet, *args], capture_output=True, text=True, env=_env())
        if check and r.returncode != 0:
            raise RuntimeError("duet %s: %s" % (" ".join(args), r.stderr))
        return r

    @property
    def url(self):
        return "https://127.0.0.1:%d" % self.port

    def token(self, name="web", sans=None, profile="peer", ttl=None):
        """A token; the peer profile (serverAuth and clientAuth: renewal is mTLS)."""
        if sans is None:
            sans = ["uri:spiffe://demo.internal/" + name, "dns:localhost"]
        args = ["ca", "token", name, "--profile", profile, "--ca-dir", self.ca]
        for s in sans:
            args += ["--san", s]
        if ttl:
            args += ["--ttl", ttl]
        return self._run(*args).stdout.strip()

    def roots_pem(self):
        return self._run("ca", "roots", "--ca-dir", self.ca).stdout

    def crl_pem(self):
        with tempfile.TemporaryDirectory() as t:
            out = os.path.join(t, "crl.pem")
            with self.lock:
                self._run("crl", "generate", "--ca-dir", self.ca, "--out", out)
            return open(out).read()

    def _issued(self, h, crt_path, status=200):
        pem = open(crt_path).read()
        blocks = re.findall(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----\n?",
                            pem, re.S)
        leaf_path = crt_path + ".leaf"
        with open(leaf_path, "w") as f:
            f.write(blocks[0])
        serial = _x509_field(leaf_path, "-serial").split("=", 1)[1]
        serial = ":".join(serial[i:i + 2] for i in range(0, len(serial), 2))
        nb, nbs = _rfc3339(_x509_field(leaf_path, "-startdate").split("=", 1)[1])
        na, nas = _rfc3339(_x509_field(leaf_path, "-enddate").split("=", 1)[1])
        ra = nb + (na - nb) * 2 / 3
        if self.renew_in is not None:
            ra = datetime.now(timezone.utc) + timedelta(seconds=self.renew_in)
        h._send(status, json.dumps({
            "serial": serial, "certificate": blocks[0], "chain": "".join(blocks[1:]),
            "not_before": nbs, "not_after": nas,
            "renew_after": ra.strftime("%Y-%m-%dT%H:%M:%SZ")}))

    def enroll(self, h, body):
        token, csr = body.get("token"), body.get("csr")
        if not isinstance(token, str) or not isinstance(csr, str):
            return h._error(400, "bad_request", "expected token and csr strings")
        with tempfile.TemporaryDirectory() as t:
            p = os.path.join(t, "req.csr")
            open(p, "w").write(csr)
            out = os.path.join(t, "out.crt")
            with self.lock:
                r = self._run("cert", "sign", p, "--token", token, "--ca-dir", self.ca,
                              "--out", out, check=False)
            if r.returncode != 0:
                msg = r.stderr.strip()
                if "token" in msg:
                    return h._error(403, "token_refused", msg)
                return h._error(400, "csr_refused", msg)
            self._issued(h, out)

    def renew(self, h, body):
        der = h.connection.getpeercert(binary_form=True)
        if der is None:
            return h._error(401, "unauthorized", "renewal needs the current certificate (mTLS)")
        with tempfile.TemporaryDirectory() as t:
            cur = os.path.join(t, "current.crt")
            with open(cur, "w") as f:
                f.write(ssl.DER_cert_to_PEM_cert(der))
            with self.lock:
                if "csr" in body:
                    r = self._rekey(t, cur, body["csr"])
                    out = os.path.join(t, "rekey.crt")
                else:
                    r = self._run("cert", "renew", cur, "--reuse-key", "--ca-dir", self.ca,
                                  "--out", t, "--name", "renewed", check=False)
                    out = os.path.join(t, "renewed.crt")
            if r.returncode != 0:
                msg = r.stderr.strip()
                if "already renewed" in msg:
                    return h._error(409, "already_renewed", msg)
                return h._error(401, "unauthorized", msg)
            self._issued(h, out)

    def _rekey(self, t, cur, csr):
        """A new key: the CSR signed for the presented certificate's names and profile."""
        p = os.path.join(t, "rekey.csr")
        open(p, "w").write(csr)
        cn = _x509_field(cur, "-subject", "-nameopt", "multiline").split("commonName", 1)[1]
        cn = cn.split("=", 1)[1].strip().splitlines()[0].strip()
        ext = _x509_field(cur, "-ext", "subjectAltName")
        args = ["cert", "sign", p, "--profile", "peer", "--name", cn, "--ca-dir", self.ca,
                "--out", os.path.join(t, "rekey.crt")]
        for m in re.finditer(r"(DNS|IP Address|URI):([^,\s]+)", ext):
            kind = {"DNS": "dns", "IP Address": "ip", "URI": "uri"}[m.group(1)]
            args += ["--san", kind + ":" + m.group(2)]
        return self._run(*args, check=False)

    def up(self):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        # The chain the clients need: the server's leaf then the issuing CA.
        chain = os.path.join(self.dir, "srv-chain.pem")
        with open(chain, "w") as f:
            f.write(open(self.server_cert).read())
        ctx.load_cert_chain(chain, self.server_key)
        ctx.verify_mode = ssl.CERT_OPTIONAL
        ctx.load_verify_locations(self.cafile)
        httpd = ThreadingHTTPServer(("127.0.0.1", self.port), _Handler)
        httpd.daemon_threads = True
        httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
        httpd.fake = self
        self.httpd = httpd
        threading.Thread(target=httpd.serve_forever, daemon=True).start()

    def down(self):
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.httpd = None

    def saw(self, method, path):
        return [r for r in self.requests if r[0] == method and r[1] == path]
