# SPDX-License-Identifier: Apache-2.0
"""Helpers for the `duet proxy` / `duet tunnel` integration tests (test_proxy.py).

- ProxyPKI: a PKI made with duet's own CA ("Test Corp", trust domain test-corp), plus the
  certificates duet's CA will not issue (an expired client made with `openssl ca` from the
  same issuing CA, a client of an unrelated second duet CA).
- Procs: processes a test starts; stopped (SIGTERM, then SIGKILL) by a finalizer.
- DuetLog: the JSON-lines log of a running proxy or tunnel, with waits on events.
- EchoUpstream: an HTTP/1.1 server that returns, as JSON, the request it received.
- ProxyV2Upstream: a TCP server that parses a PROXY protocol v2 header (haproxy
  doc/proxy-protocol.txt section 2.2), answers with what it parsed, then echoes bytes.
- metrics(): /metrics of the admin listener as {series: value}.

Everything listens on 127.0.0.1, on ports bound by the listener itself (port 0) or handed out
by free_port().
"""

import datetime as _dt
import hashlib
import http.client
import http.server
import json
import os
import re
import select
import shutil
import signal
import socket
import socketserver
import ssl
import struct
import subprocess
import threading
import time
from pathlib import Path

CA_PASSPHRASE = "proxy-test-ca-passphrase"


# --- small things -----------------------------------------------------------------------------

def _port_range():
    """(lo, hi) from DUET_TEST_PORTS=LO-HI, or None when it is unset."""
    spec = os.environ.get("DUET_TEST_PORTS")
    if not spec:
        return None
    m = re.fullmatch(r"(\d+)-(\d+)", spec.strip())
    if not m or not 1024 <= int(m.group(1)) < int(m.group(2)) <= 65535:
        raise ValueError("DUET_TEST_PORTS=%r: expected LO-HI, 1024 <= LO < HI <= 65535" % spec)
    return int(m.group(1)), int(m.group(2))


_PORTS = _port_range()
_port_lock = threading.Lock()
_port_next = [_PORTS[0] if _PORTS else 0]


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now, for a server a test starts.

    With DUET_TEST_PORTS=LO-HI set, the next port of that range (in turn, wrapping) that binds.
    scripts/check.sh gives each pytest it runs at the same time a range of its own below the
    kernel's ephemeral ports (net.ipv4.ip_local_port_range), so no other test process, and no
    client connection's local port, is handed the same port before the server binds it.
    Unset, a port the kernel picks (a concurrent picker may be handed it too).
    """
    if _PORTS is None:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]
    lo, hi = _PORTS
    with _port_lock:
        for _ in range(hi - lo + 1):
            port = _port_next[0]
            _port_next[0] = lo if port >= hi else port + 1
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    continue  # in use, or connections of an earlier test in TIME_WAIT
                return port
    raise RuntimeError("DUET_TEST_PORTS=%d-%d: no port of the range is free" % (lo, hi))


def pem_blocks(path):
    """The PEM certificate blocks of a file, in order, as strings."""
    text = Path(path).read_text()
    out = []
    end = "-----END CERTIFICATE-----"
    while "-----BEGIN CERTIFICATE-----" in text:
        start = text.index("-----BEGIN CERTIFICATE-----")
        stop = text.index(end, start) + len(end)
        out.append(text[start:stop] + "\n")
        text = text[stop:]
    return out


def leaf_der(path):
    """DER of the first certificate of a PEM file."""
    return ssl.PEM_cert_to_DER_cert(pem_blocks(path)[0])


def sha256_hex(data):
    return hashlib.sha256(data).hexdigest()


def openssl(*args, env=None):
    p = subprocess.run(["openssl", *map(str, args)], capture_output=True, text=True, env=env)
    if p.returncode != 0:
        raise RuntimeError("openssl %s failed (%d):\n%s" % (" ".join(map(str, args)),
                                                            p.returncode, p.stderr))
    return p.stdout


def cert_serial(path):
    """Serial of the first certificate as colon hex, upper case (duet's log format)."""
    out = openssl("x509", "-in", path, "-noout", "-serial").strip().split("=", 1)[1]
    out = out.upper()
    if len(out) % 2:
        out = "0" + out
    return ":".join(out[i:i + 2] for i in range(0, len(out), 2))


# --- processes --------------------------------------------------------------------------------

class Procs:
    """Processes started by a test, stopped by close() (called from a finalizer)."""

    def __init__(self, workdir):
        self.workdir = Path(workdir)
        self.procs = []

    def start(self, argv, name, env=None):
        """Start argv with stdout/stderr to <workdir>/<name>.out and .err."""
        out = open(self.workdir / (name + ".out"), "wb")
        err = open(self.workdir / (name + ".err"), "wb")
        p = subprocess.Popen([str(a) for a in argv], stdout=out, stderr=err,
                             stdin=subprocess.DEVNULL, env=env)
        out.close()
        err.close()
        p.name = name
        p.stderr_path = self.workdir / (name + ".err")
        self.procs.append(p)
        return p

    def stderr(self, p):
        return Path(p.stderr_path).read_text(errors="replace")

    def close(self):
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 3
        for p in self.procs:
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=5)
        self.procs = []


def wait_port(port, proc=None, timeout=10):
    """Wait until 127.0.0.1:port accepts a TCP connection (for peers such as nginx)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AssertionError("%s exited with %s before listening on %d" % (
                proc.name, proc.returncode, port))
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError("nothing listens on 127.0.0.1:%d after %ss" % (port, timeout))


# --- the JSON-lines log -----------------------------------------------------------------------

class DuetLog:
    """The --log file of a proxy or tunnel."""

    def __init__(self, path, proc=None, procs=None):
        self.path = Path(path)
        self.proc = proc
        self.procs = procs

    def events(self):
        if not self.path.exists():
            return []
        out = []
        for line in self.path.read_text(errors="replace").splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                pass  # a line being written right now; the next read sees it whole
        return out

    def mark(self):
        """A position: events after it are the ones a later wait() looks at."""
        return len(self.events())

    def since(self, mark, event=None):
        evs = self.events()[mark:]
        return [e for e in evs if event is None or e.get("event") == event]

    def wait(self, pred, mark=0, timeout=10, what="a matching event"):
        """The first event after mark for which pred(event) is true."""
        deadline = time.monotonic() + timeout
        while True:
            for e in self.events()[mark:]:
                if pred(e):
                    return e
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(
                    "%s exited (%s) while waiting for %s; stderr:\n%s\nlog:\n%s" % (
                        self.proc.name, self.proc.returncode, what,
                        self.procs.stderr(self.proc) if self.procs else "",
                        self.path.read_text(errors="replace") if self.path.exists() else ""))
            if time.monotonic() > deadline:
                raise AssertionError("no %s in %s within %ss; events since mark:\n%s" % (
                    what, self.path, timeout,
                    "\n".join(json.dumps(e) for e in self.events()[mark:])))
            time.sleep(0.05)

    def wait_event(self, name, mark=0, timeout=10, **fields):
        def pred(e):
            return e.get("event") == name and all(e.get(k) == v for k, v in fields.items())
        return self.wait(pred, mark, timeout, what="%s event with %s" % (name, fields))

    def wait_reloads_settled(self, mark, timeout=12, quiet=1.4):
        """Wait for reloads after mark to finish, then for `quiet` seconds without a new
        reload request; returns the reload result events after mark.

        The file watcher polls every second, so files replaced one after the other may be
        picked up by one reload or by two; either way the last reload saw them all.
        """
        deadline = time.monotonic() + timeout
        self.wait_event("reload", mark, timeout=timeout)
        while True:
            evs = self.events()[mark:]
            kinds = [e.get("event") for e in evs]
            last_req = max((i for i, k in enumerate(kinds) if k == "reload_requested"), default=-1)
            last_res = max((i for i, k in enumerate(kinds) if k == "reload"), default=-1)
            if last_res > last_req:
                time.sleep(quiet)
                if not any(e.get("event") == "reload_requested"
                           for e in self.events()[mark + len(evs):]):
                    return [e for e in self.events()[mark:] if e.get("event") == "reload"]
                continue
            if time.monotonic() > deadline:
                raise AssertionError("reloads did not settle within %ss:\n%s" % (
                    timeout, "\n".join(json.dumps(e) for e in evs)))
            time.sleep(0.1)


# --- admin ------------------------------------------------------------------------------------

def admin_get(port, path, timeout=5):
    """(status, body text) of GET http://127.0.0.1:port/path."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request("GET", path)
        r = c.getresponse()
        return r.status, r.read().decode(errors="replace")
    finally:
        c.close()


def metrics(port):
    """The admin listener's /metrics as {'name{labels}': float}."""
    status, text = admin_get(port, "/metrics")
    assert status == 200, "GET /metrics: %d %s" % (status, text)
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        series, value = line.rsplit(" ", 1)
        out[series] = float(value)
    return out


def wait_metric(port, series, expected, timeout=3):
    """Wait until a series has the expected value (metrics are counted just after logging)."""
    deadline = time.monotonic() + timeout
    while True:
        m = metrics(port)
        if m.get(series) == expected:
            return m
        if time.monotonic() > deadline:
            raise AssertionError("%s is %r, expected %r; all series:\n%s" % (
                series, m.get(series), expected,
                "\n".join("%s %s" % kv for kv in sorted(m.items()))))
        time.sleep(0.05)


class HttpProxy:
    """A running `duet proxy` started by start_http_proxy()."""

    def __init__(self, port, log, proc):
        self.port, self.log, self.proc = port, log, proc


ALICE_PUBLIC_RULES = """\
      - {name: alice-public, allow: ["uri:spiffe://test-corp/alice"], path_prefix: /public/}
"""


def start_http_proxy(dpki, procs, workdir, upstream_port, rules=ALICE_PUBLIC_RULES, extra_yaml="",
                     extra_args=()):
    """`duet proxy --config` with one http listener "web" on a free port in front of
    127.0.0.1:upstream_port, ProxyPKI's certificates and CRL, the YAML `rules` (list items)
    and `extra_yaml` (listener keys); waits for its start event."""
    port, log = free_port(), workdir / "proxy.log"
    cfg = workdir / "proxy.yaml"
    cfg.write_text("""\
listeners:
  - name: web
    listen: 127.0.0.1:%(port)d
    mode: http
    cert: %(cert)s
    key: %(key)s
    cacert: %(roots)s
    crl: [%(crl)s]
    target: [127.0.0.1:%(up)d]
%(extra)s    rules:
%(rules)slog: %(log)s
workers: 1
""" % dict(port=port, cert=dpki.server_crt, key=dpki.server_key, roots=dpki.roots,
           crl=dpki.crl, up=upstream_port, log=log, extra=extra_yaml, rules=rules))
    p = procs.start([dpki.duet_bin, "proxy", "--config", cfg, *extra_args], workdir.name)
    dl = DuetLog(log, p, procs)
    dl.wait_event("start", timeout=10)
    return HttpProxy(port, dl, p)


# --- upstreams --------------------------------------------------------------------------------

class _EchoHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _answer(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        req = {
            "method": self.command,
            "path": self.path,
            "headers": [[k, v] for k, v in self.headers.items()],
            "body": body.decode(errors="replace"),
            "peer": list(self.client_address),
        }
        self.server.requests.append(req)
        data = json.dumps(req).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _answer

    def log_message(self, *args):
        pass


class _ThreadingHTTPServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class EchoUpstream:
    """HTTP/1.1 (keep-alive) upstream that answers every request with the request as JSON."""

    def __init__(self):
        self.server = _ThreadingHTTPServer(("127.0.0.1", 0), _EchoHandler)
        self.server.requests = []
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def requests(self):
        return self.server.requests

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class TcpServer:
    """A TCP server on 127.0.0.1 (a free port) that hands each connection to self._conn(sock)
    on a thread of its own.  Subclasses write _conn; close() stops accepting."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.lock = threading.Lock()
        self.closed = False
        self.accepted = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.closed:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            threading.Thread(target=self._conn, args=(c,), daemon=True).start()

    def _conn(self, c):
        raise NotImplementedError

    def recv_head(self, c, buf, record=None):
        """Read from c until buf holds a whole request head: (head, rest), or (None, buf) when
        the peer closed first.  Each chunk read is appended to `record` when given."""
        while b"\r\n\r\n" not in buf:
            d = c.recv(65536)
            if not d:
                return None, buf
            if record is not None:
                with self.lock:
                    record.append(d)
            buf += d
        head, rest = buf.split(b"\r\n\r\n", 1)
        return head, rest

    def close(self):
        self.closed = True
        self.sock.close()


class RawUpstream(TcpServer):
    """An HTTP/1.1 upstream that keeps every byte it receives and parses requests strictly
    (RFC 9112: CRLF lines, token names, one Content-Length or chunked).  Each request is
    answered with 200 and its index; bytes it cannot parse close the connection and are
    recorded as an error."""

    TOKEN = re.compile(rb"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")

    def __init__(self):
        self.requests = []
        self.errors = []
        self.raw = []
        super().__init__()

    def _conn(self, c):
        buf = b""
        c.settimeout(30)
        try:
            while True:
                head, buf = self.recv_head(c, buf, self.raw)
                if head is None:
                    return
                lines = head.split(b"\r\n")
                method, target, version = lines[0].split(b" ")
                headers = []
                for ln in lines[1:]:
                    name, sep, value = ln.partition(b":")
                    if not sep or not self.TOKEN.match(name) or b"\n" in ln or b"\r" in ln:
                        raise ValueError("bad field line %r" % ln)
                    headers.append((name.decode(), value.strip(b" \t").decode("latin-1")))
                names = [n.lower() for n, _ in headers]
                body = b""
                if "transfer-encoding" in names:
                    assert "content-length" not in names, "both framings"
                    while True:
                        while b"\r\n" not in buf:
                            buf += c.recv(65536)
                        size_line, buf = buf.split(b"\r\n", 1)
                        size = int(size_line, 16)
                        while len(buf) < size + 2:
                            buf += c.recv(65536)
                        body += buf[:size]
                        assert buf[size:size + 2] == b"\r\n"
                        buf = buf[size + 2:]
                        if size == 0:
                            break
                elif "content-length" in names:
                    assert names.count("content-length") == 1
                    n = int(dict((k.lower(), v) for k, v in headers)["content-length"])
                    while len(buf) < n:
                        buf += c.recv(65536)
                    body, buf = buf[:n], buf[n:]
                with self.lock:
                    self.requests.append({"method": method.decode(), "target": target.decode(),
                                          "version": version.decode(), "headers": headers,
                                          "head": head, "body": body})
                    idx = len(self.requests)
                reply = b'{"n":%d}' % idx
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                          b"Content-Length: %d\r\n\r\n%s" % (len(reply), reply))
        except Exception as e:  # a parse failure is what the tests look for
            with self.lock:
                self.errors.append(repr(e))
        finally:
            c.close()


def values(req, name):
    return [v for k, v in req["headers"] if k.lower() == name.lower()]


def statuses(resp):
    return [int(m) for m in re.findall(rb"HTTP/1\.1 (\d{3}) ", resp)]


def header_values(req, name):
    """Every value of a header in an echoed request (names compared case-insensitively)."""
    return [v for k, v in req["headers"] if k.lower() == name.lower()]


def parse_proxy_v2(sock):
    """Read and parse one PROXY protocol v2 header from a socket; returns a dict."""
    def read_exact(n):
        buf = b""
        while len(buf) < n:
            chunk = sock.recv(n - len(buf))
            if not chunk:
                raise ValueError("connection closed inside the PROXY header")
            buf += chunk
        return buf

    head = read_exact(16)
    sig = head[:12]
    if sig != b"\r\n\r\n\x00\r\nQUIT\n":
        raise ValueError("bad PROXY v2 signature %r" % sig)
    ver_cmd, fam, length = head[12], head[13], struct.unpack("!H", head[14:16])[0]
    body = read_exact(length)
    out = {"ver_cmd": ver_cmd, "family": fam, "length": length}
    off = 0
    if fam == 0x11:
        out["src"] = socket.inet_ntop(socket.AF_INET, body[0:4])
        out["dst"] = socket.inet_ntop(socket.AF_INET, body[4:8])
        out["src_port"], out["dst_port"] = struct.unpack("!HH", body[8:12])
        off = 12
    elif fam == 0x21:
        out["src"] = socket.inet_ntop(socket.AF_INET6, body[0:16])
        out["dst"] = socket.inet_ntop(socket.AF_INET6, body[16:32])
        out["src_port"], out["dst_port"] = struct.unpack("!HH", body[32:36])
        off = 36
    tlvs = {}
    while off < length:
        if off + 3 > length:
            raise ValueError("truncated TLV at %d" % off)
        t, ln = body[off], struct.unpack("!H", body[off + 1:off + 3])[0]
        v = body[off + 3:off + 3 + ln]
        if len(v) != ln:
            raise ValueError("TLV 0x%02x overruns the header" % t)
        tlvs.setdefault(t, []).append(v)
        off += 3 + ln
    out["tlvs"] = {"0x%02x" % t: [x.hex() for x in vs] for t, vs in tlvs.items()}
    if 0x20 in tlvs:
        ssl_v = tlvs[0x20][0]
        out["ssl_client"] = ssl_v[0]
        out["ssl_verify"] = struct.unpack("!I", ssl_v[1:5])[0]
        sub = {}
        o = 5
        while o < len(ssl_v):
            t, ln = ssl_v[o], struct.unpack("!H", ssl_v[o + 1:o + 3])[0]
            sub["0x%02x" % t] = ssl_v[o + 3:o + 3 + ln].decode(errors="replace")
            o += 3 + ln
        out["ssl_sub"] = sub
    return out


class ProxyV2Upstream(TcpServer):
    """TCP upstream: parses the PROXY v2 header, sends back one JSON line with what it
    parsed (or {"error": ...}), then echoes every byte it receives."""

    def __init__(self):
        self.parsed = []
        super().__init__()

    def _conn(self, c):
        with c:
            c.settimeout(10)
            try:
                info = parse_proxy_v2(c)
            except (ValueError, OSError) as e:
                info = {"error": str(e)}
            self.parsed.append(info)
            try:
                c.sendall(json.dumps(info).encode() + b"\n")
                if "error" in info:
                    return
                while True:
                    data = c.recv(65536)
                    if not data:
                        return
                    c.sendall(data)
            except OSError:
                return


# --- clients ----------------------------------------------------------------------------------

def client_context(cafile, cert=None, key=None, tls12=False):
    """A Python ssl client context that trusts cafile and presents cert/key (chain file)."""
    ctx = ssl.create_default_context(cafile=str(cafile))
    if cert is not None:
        ctx.load_cert_chain(str(cert), str(key))
    if tls12:
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    return ctx


def https_request(port, path, ctx, headers=None, timeout=5):
    """One request on a fresh connection: (status, parsed JSON body or text, connection)."""
    c = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=timeout)
    c.request("GET", path, headers=headers or {})
    r = c.getresponse()
    body = r.read().decode(errors="replace")
    try:
        body = json.loads(body)
    except ValueError:
        pass
    return r.status, body, c


def mtls_exchange(port, ctx, parts, pause=0.0, timeout=5):
    """Send raw bytes over mTLS (a list: one write each, `pause` seconds apart) and read until
    the proxy closes or `timeout`.  What arrives between parts is read without blocking (an
    answer sent before the client finished must be seen before the connection is reset under
    it, and a socket readable only because of a TLS 1.3 session ticket must not stop the
    sender)."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s = ctx.wrap_socket(raw, server_hostname="localhost")
    out, closed = b"", False
    if not isinstance(parts, (list, tuple)):
        parts = [parts]
    try:
        for part in parts:
            try:
                s.sendall(part)
            except (ssl.SSLError, OSError):
                break
            deadline = time.monotonic() + pause
            s.setblocking(False)
            while time.monotonic() < deadline:
                r, _, _ = select.select([s], [], [], max(0, deadline - time.monotonic()))
                if not r:
                    break
                try:
                    d = s.recv(65536)
                except ssl.SSLWantReadError:
                    continue
                except (ssl.SSLError, OSError):
                    closed = True
                    break
                if not d:
                    closed = True
                    break
                out += d
            s.settimeout(timeout)
            if closed:
                break
        while not closed:
            d = s.recv(65536)
            if not d:
                break
            out += d
    except (socket.timeout, ssl.SSLError, OSError):
        pass
    finally:
        s.close()
    return out


def refused_attempt(port, ctx, timeout=5):
    """Connect with ctx, send a request and read: returns what the client saw.

    A refused client sees the handshake fail (TLS 1.2, or TLS 1.3 when the alert arrives
    in time) or the connection close with an alert before any response.  Returns
    ("ssl-error", text), ("closed", b"") or ("response", bytes) when the proxy answered.
    """
    raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s = ctx.wrap_socket(raw, server_hostname="localhost")
    except (ssl.SSLError, ConnectionError) as e:
        raw.close()
        return ("ssl-error", str(e))
    try:
        s.sendall(b"GET /refused HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        data = s.recv(65536)
        if data:
            return ("response", data)
        return ("closed", b"")
    except (ssl.SSLError, ConnectionError) as e:
        return ("ssl-error", str(e))
    finally:
        s.close()


# --- the PKI ----------------------------------------------------------------------------------

EXPIRED_CNF = """\
[ ca ]
default_ca = CA_default
[ CA_default ]
dir = {dir}
database = $dir/index.txt
new_certs_dir = $dir/newcerts
serial = $dir/serial
default_md = sha256
policy = policy_any
unique_subject = no
copy_extensions = none
[ policy_any ]
organizationName = optional
commonName = supplied
[ req ]
distinguished_name = req_dn
prompt = no
[ req_dn ]
CN = unused
[ v3_expired_client ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectAltName = URI:spiffe://test-corp/expired
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
"""


class ProxyPKI:
    """Certificates for the proxy tests, made with duet's CA (attributes are Paths).

    ca/               "Test Corp" (trust domain test-corp), root + issuing CA
    roots.pem         `duet ca roots`
    crl.pem           `duet crl generate` after mallory was revoked
    server            localhost: server profile, dns:localhost ip:127.0.0.1
    alice henry bob   client profile (uri:spiffe://test-corp/NAME), not revoked
    mallory           client profile, revoked
    gateway           client profile: the proxy's own identity toward an mTLS upstream
    expired           clientAuth, uri:spiffe://test-corp/expired, signed by the issuing CA
                      with `openssl ca`, valid from 100 to 10 days ago
    eve               client of "Other Corp", a second duet CA nobody trusts
    Each NAME has NAME_crt (leaf then issuing CA) and NAME_key (0600).
    """

    def __init__(self, duet_bin, directory):
        self.duet_bin = Path(duet_bin)
        self.dir = Path(directory)
        self.env = dict(os.environ, DUET_CA_PASSPHRASE=CA_PASSPHRASE)
        self.ca = self.dir / "ca"
        self.other_ca = self.dir / "other-ca"
        self.out = self.dir / "out"
        self.out.mkdir(parents=True)
        self.duet("ca", "init", "--ca-dir", self.ca, "--name", "Test Corp")
        self.duet("ca", "init", "--ca-dir", self.other_ca, "--name", "Other Corp")
        self.roots = self.dir / "roots.pem"
        self.roots.write_text(self.duet("ca", "roots", "--ca-dir", self.ca))
        self.issue("server", "localhost", "--san", "dns:localhost", "--san", "ip:127.0.0.1")
        for name in ("alice", "henry", "bob", "mallory", "gateway"):
            self.issue("client", name)
        self.issue("client", "eve", ca=self.other_ca)
        self.server_crt, self.server_key = self.localhost_crt, self.localhost_key
        self.revoke(self.mallory_crt)
        self.crl = self.dir / "crl.pem"
        self.gen_crl(self.crl)
        self._expired()

    def copy_to(self, directory):
        """A ProxyPKI in directory (existing, empty) with a copy of this one's CAs, inventories,
        certificates and keys (modes kept), its Path attributes pointing into the copy: the
        two issue, revoke and sign apart from then on.  The copy's root CRL and crl.pem are
        signed again, as fresh as if the copy had been made now (tests read CRL ages)."""
        directory = Path(directory)
        shutil.copytree(self.dir, directory, dirs_exist_ok=True)
        cnf = directory / "openssl-ca" / "ca.cnf"
        cnf.write_text(cnf.read_text().replace(str(self.dir), str(directory)))
        other = object.__new__(ProxyPKI)
        for name, value in vars(self).items():
            if isinstance(value, Path) and value.is_relative_to(self.dir):
                value = directory / value.relative_to(self.dir)
            elif isinstance(value, dict):
                value = dict(value)
            setattr(other, name, value)
        other.duet("crl", "generate", "--root", "--ca-dir", other.ca)
        other.gen_crl(other.crl)
        return other

    def duet(self, *args):
        p = subprocess.run([str(self.duet_bin), *map(str, args)], capture_output=True,
                           text=True, env=self.env, stdin=subprocess.DEVNULL, timeout=60)
        if p.returncode != 0:
            raise AssertionError("duet %s failed (%d):\n%s%s" % (
                " ".join(map(str, args)), p.returncode, p.stdout, p.stderr))
        return p.stdout

    def issue(self, profile, name, *extra, ca=None, out=None):
        out = Path(out or self.out)
        out.mkdir(parents=True, exist_ok=True)
        self.duet("cert", "issue", name, "--profile", profile, "--ca-dir", ca or self.ca,
                  "--out", out, *extra)
        crt, key = out / (name + ".crt"), out / (name + ".key")
        attr = name.replace("-", "_")
        if out == self.out:
            setattr(self, attr + "_crt", crt)
            setattr(self, attr + "_key", key)
        return crt, key

    def revoke(self, crt):
        self.duet("cert", "revoke", crt, "--ca-dir", self.ca)

    def gen_crl(self, out):
        self.duet("crl", "generate", "--ca-dir", self.ca, "--out", out)
        return out

    def _expired(self):
        d = self.dir / "openssl-ca"
        (d / "newcerts").mkdir(parents=True)
        (d / "index.txt").write_text("")
        (d / "serial").write_text("7E57000001\n")
        cnf = d / "ca.cnf"
        cnf.write_text(EXPIRED_CNF.format(dir=d))
        key = self.out / "expired.key"
        openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                "-out", key)
        os.chmod(key, 0o600)
        csr = d / "expired.csr"
        openssl("req", "-new", "-config", cnf, "-key", key, "-subj", "/O=Test Corp/CN=expired",
                "-out", csr)
        now = _dt.datetime.now(_dt.timezone.utc)
        fmt = lambda t: t.strftime("%y%m%d%H%M%SZ")
        leaf = d / "expired-leaf.pem"
        openssl("ca", "-batch", "-notext", "-preserveDN", "-config", cnf,
                "-cert", self.ca / "issuing.crt", "-keyfile", self.ca / "issuing.key",
                "-passin", "env:DUET_CA_PASSPHRASE", "-in", csr, "-out", leaf,
                "-extensions", "v3_expired_client",
                "-startdate", fmt(now - _dt.timedelta(days=100)),
                "-enddate", fmt(now - _dt.timedelta(days=10)), env=self.env)
        self.expired_crt = self.out / "expired.crt"
        self.expired_crt.write_text(pem_blocks(leaf)[0] + pem_blocks(self.ca / "issuing.crt")[0])
        self.expired_key = key

    def copy(self, name, dest_dir, as_name=None):
        """Copy NAME.crt and NAME.key to dest_dir (key stays 0600); returns the new paths."""
        dest_dir = Path(dest_dir)
        dest_dir.mkdir(parents=True, exist_ok=True)
        as_name = as_name or name
        crt, key = dest_dir / (as_name + ".crt"), dest_dir / (as_name + ".key")
        shutil.copyfile(self.out / (name + ".crt"), crt)
        shutil.copyfile(self.out / (name + ".key"), key)
        os.chmod(key, 0o600)
        return crt, key


# --- raw HTTP/1.1 over mTLS, one request at a time ---------------------------------------------

def mtls_connect(port, dpki, crt, key):
    """A TLS socket to the proxy on 127.0.0.1:port with crt/key, trusting dpki.roots."""
    ctx = client_context(dpki.roots, crt, key)
    return ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=10),
                           server_hostname="localhost")


def send_get(s, path, extra=b""):
    """Send `GET path` with Host: localhost and the extra header bytes."""
    s.sendall(b"GET %s HTTP/1.1\r\nHost: localhost\r\n%s\r\n" % (path, extra))


def read_response(s, timeout=10):
    """One whole response (Content-Length framed) -> (head bytes, body), or (None, rest) at EOF."""
    s.settimeout(timeout)
    buf = b""
    while b"\r\n\r\n" not in buf:
        d = s.recv(65536)
        if not d:
            return None, buf
        buf += d
    head, body = buf.split(b"\r\n\r\n", 1)
    n = 0
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            n = int(v.strip())
    while len(body) < n:
        d = s.recv(65536)
        if not d:
            return None, head + b"\r\n\r\n" + body
        body += d
    return head, body


def closed_by_peer(s, timeout=8):
    """True when the proxy closes s (EOF or reset) within timeout, with no bytes first."""
    s.settimeout(timeout)
    try:
        return s.recv(1) == b""
    except (ConnectionResetError, ssl.SSLError):
        return True
    except socket.timeout:
        return False
