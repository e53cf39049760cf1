# SPDX-License-Identifier: Apache-2.0
"""Issue 9, items 3 and 5: what an attacker-chosen value does to the log and to the headers
the upstream receives.

- A Host header of 3.9 KB used to overflow the 4096-byte log line buffer (SIGSEGV) and, just
  below that size, to make lines that were not JSON.  Here Hosts of 3.9 KB, 8 KB and 60 KB are
  sent over mTLS by a client the policy denies, by one it allows, and, with `--verify
  optional`, by a client with no certificate.  The proxy must answer each (431 over
  --max-header-size, else the policy's answer), keep serving, and every line of its log must
  parse as JSON, with the long value cut inside its string.
- A certificate name with CR LF used to reach X-Forwarded-Client-Cert raw.  Here a client
  certificate from a CA made with the openssl CLI (duet's CA refuses such names) carries the
  URI SAN "spiffe://evil/x<CR><LF>Transfer-Encoding: chunked"; a raw upstream records every
  byte and must see one XFCC line with the bytes escaped, and no injected header.
"""

import json
import os
import socket
import ssl
import time
from pathlib import Path

import pytest

from proxyutil import (DuetLog, client_context, free_port, header_values, leaf_der, openssl,
                       sha256_hex)

MARK = "\u2026[truncated]"
MAX_HEADER = 16384
SIZES = (3900, 8192, 61440)


# --- fixtures and helpers --------------------------------------------------------------------

class Proxy:
    def __init__(self, proc, port, log, module_procs):
        self.proc, self.port, self.log, self.procs = proc, port, log, module_procs

    def alive(self):
        assert self.proc.poll() is None, "the proxy exited (%s); stderr:\n%s" % (
            self.proc.returncode, self.procs.stderr(self.proc))


def start_proxy(module_procs, dpki, workdir, name, target, *extra, cacert=None):
    """`duet proxy` in http mode on a free port; waits for its start event."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = workdir / (name + ".log")
    p = module_procs.start([dpki.duet_bin, "proxy", "--listen", "127.0.0.1:%d" % port,
                     "--target", target, "--cert", dpki.server_crt, "--key", dpki.server_key,
                     "--cacert", cacert or dpki.roots, "--workers", "1",
                     "--max-header-size", str(MAX_HEADER), *extra, "--log", log], name)
    dl = DuetLog(log, p, module_procs)
    dl.wait_event("start", timeout=10)
    return Proxy(p, port, dl, module_procs)


def raw_exchange(port, ctx, data, timeout=10):
    """Send bytes over TLS and read until the proxy closes; returns the bytes received."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s = ctx.wrap_socket(raw, server_hostname="localhost")
    got = b""
    try:
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            pass  # refused before the whole head was sent: read what it answered
        while True:
            try:
                chunk = s.recv(65536)
            except (ConnectionResetError, ssl.SSLError):
                break
            if not chunk:
                break
            got += chunk
    finally:
        s.close()
    return got


def status_of(resp):
    assert resp.startswith(b"HTTP/1.1 "), "no HTTP response: %r" % resp[:200]
    return int(resp[9:12])


def request(host, path="/hdr"):
    return b"GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" % (path.encode(), host)


def long_host(n):
    return (b"h" * (n - len(".example"))) + b".example"


def strict_log_lines(path):
    """Every line of the log, each parsed as JSON; fails on any line that is not one object."""
    data = Path(path).read_bytes()
    assert data.endswith(b"\n"), "the log does not end with a newline"
    out = []
    for i, line in enumerate(data.split(b"\n")[:-1]):
        try:
            obj = json.loads(line.decode("utf-8"))
        except ValueError as e:
            raise AssertionError("log line %d is not JSON (%s): %r" % (i + 1, e, line[:300]))
        assert isinstance(obj, dict), "log line %d is not an object" % (i + 1)
        out.append(obj)
    return out


def check_cut_host(ev, sent):
    """The host in an authz line: the value, or its prefix cut inside the string and marked."""
    host = ev["host"]
    if len(sent) <= 900:
        assert host == sent.decode()
        return
    assert host.endswith(MARK), "long host not marked as cut: ...%r" % host[-40:]
    assert sent.decode().startswith(host[:-len(MARK)])
    assert len(host.encode()) <= 1024
    assert ev.get("truncated") is True


def works_after(proxy, dpki):
    """The proxy is up and serves an allowed client normally."""
    proxy.alive()
    resp = raw_exchange(proxy.port, client_context(dpki.roots, dpki.alice_crt, dpki.alice_key),
                        request(b"localhost", "/after"))
    assert status_of(resp) == 200, resp[:300]


# --- item 3: long Host headers and the log ------------------------------------------------------

@pytest.fixture(scope="module")
def policy_proxy(module_procs, dpki, echo, tmp_path_factory):
    return start_proxy(module_procs, dpki, tmp_path_factory.mktemp("hdrlog-policy"), "policy",
                       "127.0.0.1:%d" % echo.port, "--allow", "uri:spiffe://test-corp/alice")


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("who", ["bob", "alice"])
def test_long_host_over_mtls(policy_proxy, dpki, echo, who, size):
    """A denied (bob) and an allowed (alice) client send a long Host: the policy's answer, or
    431 over --max-header-size; the proxy lives on and its log stays JSON lines."""
    px = policy_proxy
    crt, key = getattr(dpki, who + "_crt"), getattr(dpki, who + "_key")
    host = long_host(size)
    mark = px.log.mark()
    before = len(echo.requests)
    resp = raw_exchange(px.port, client_context(dpki.roots, crt, key), request(host))
    status = status_of(resp)
    if size > MAX_HEADER:
        assert status == 431, resp[:300]
    elif who == "bob":
        assert status == 403, resp[:300]
        ev = px.log.wait_event("authz", mark, decision="deny")
        check_cut_host(ev, host)
        assert ev["identity"] == "spiffe://test-corp/bob"
    else:
        assert status == 200, resp[:300]
        ev = px.log.wait_event("authz", mark, decision="allow")
        check_cut_host(ev, host)
        # the log is cut, the request is not: the upstream gets the whole Host
        fwd = echo.requests[before]
        assert header_values(fwd, "Host") == [host.decode()]
    works_after(px, dpki)
    strict_log_lines(px.log.path)


@pytest.fixture(scope="module")
def optional_proxy(module_procs, dpki, echo, tmp_path_factory):
    return start_proxy(module_procs, dpki, tmp_path_factory.mktemp("hdrlog-optional"), "optional",
                       "127.0.0.1:%d" % echo.port, "--verify", "optional",
                       "--allow", "uri:spiffe://test-corp/alice")


@pytest.mark.parametrize("size", SIZES)
def test_long_host_without_certificate(optional_proxy, dpki, size):
    """`--verify optional` and no client certificate: the request is decided (and logged)
    before anything else, so it used to crash the proxy without any certificate at all."""
    px = optional_proxy
    host = long_host(size)
    mark = px.log.mark()
    resp = raw_exchange(px.port, client_context(dpki.roots), request(host))
    status = status_of(resp)
    if size > MAX_HEADER:
        assert status == 431, resp[:300]
    else:
        ev = px.log.wait_event("authz", mark)
        assert ev["identity"] is None
        assert status == (200 if ev["decision"] == "allow" else 403), (ev, resp[:300])
        check_cut_host(ev, host)
    works_after(px, dpki)
    strict_log_lines(px.log.path)


# --- item 5: CR LF in a certificate name and X-Forwarded-Client-Cert --------------------------

# Without a space the old code left the value unquoted and wrote CR LF raw; with one it was
# quoted and the bytes became '?'.  Both must arrive as %0D%0A.
EVIL_URIS = {
    "bare": (b"spiffe://evil/x\r\nTransfer-Encoding:chunked",
             "spiffe://evil/x%0D%0ATransfer-Encoding:chunked"),
    "quoted": (b"spiffe://evil/x\r\nTransfer-Encoding: chunked",
               '"spiffe://evil/x%0D%0ATransfer-Encoding: chunked"'),
}

CA_CNF = """\
[ req ]
distinguished_name = dn
prompt = no
[ dn ]
CN = Evil Test CA
[ v3_ca ]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
"""

LEAF_EXT = """\
[ v3_leaf ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
subjectAltName = DER:{san}
"""


def der_len(n):
    if n < 0x80:
        return bytes([n])
    b = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(b)]) + b


def general_names_uri(uri):
    """GeneralNames DER holding one uniformResourceIdentifier ([6] IA5String) of any bytes."""
    gn = b"\x86" + der_len(len(uri)) + uri
    return b"\x30" + der_len(len(gn)) + gn


@pytest.fixture(scope="module", params=sorted(EVIL_URIS))
def evil(request, tmp_path_factory):
    """A CA and a client certificate made with the openssl CLI; the SAN is given as DER.
    Returns (directory, the URI SAN's bytes, how XFCC must write it)."""
    uri, rendered = EVIL_URIS[request.param]
    d = tmp_path_factory.mktemp("evil-ca")
    (d / "ca.cnf").write_text(CA_CNF)
    openssl("req", "-x509", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-nodes", "-keyout", d / "ca.key", "-out", d / "ca.crt", "-days", "7",
            "-config", d / "ca.cnf", "-extensions", "v3_ca")
    openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", d / "leaf.key", "-out", d / "leaf.csr", "-subj", "/CN=crlf-client")
    (d / "leaf.ext").write_text(LEAF_EXT.format(san=general_names_uri(uri).hex()))
    openssl("x509", "-req", "-in", d / "leaf.csr", "-CA", d / "ca.crt", "-CAkey", d / "ca.key",
            "-set_serial", "0x7e57c71f", "-days", "7", "-extfile", d / "leaf.ext",
            "-extensions", "v3_leaf", "-out", d / "leaf.crt")
    os.chmod(d / "leaf.key", 0o600)
    text = openssl("x509", "-in", d / "leaf.crt", "-noout", "-ext", "subjectAltName")
    assert "Transfer-Encoding:" in text, text
    return d, uri, rendered


def test_crlf_in_uri_san_is_escaped_in_xfcc(module_procs, dpki, evil, raw_up, tmp_path):
    """The upstream receives one X-Forwarded-Client-Cert line with CR LF as %0D%0A, and no
    Transfer-Encoding header the certificate tried to add."""
    evil, uri, rendered = evil
    roots = tmp_path / "roots.pem"
    roots.write_text(Path(dpki.roots).read_text() + (evil / "ca.crt").read_text())
    before, before_raw = len(raw_up.requests), len(raw_up.raw)
    px = start_proxy(module_procs, dpki, tmp_path, "crlf", "127.0.0.1:%d" % raw_up.port,
                     "--allow", "cn:crlf-client", cacert=roots)
    ctx = client_context(dpki.roots, evil / "leaf.crt", evil / "leaf.key")
    resp = raw_exchange(px.port, ctx, request(b"localhost", "/xfcc"))
    assert status_of(resp) == 200, resp[:300]
    time.sleep(0.2)
    assert raw_up.errors == [] and len(raw_up.requests) == before + 1
    head = raw_up.requests[before]["head"]
    assert b"".join(raw_up.raw[before_raw:]) == head + b"\r\n\r\n", "bytes after the head"
    lines = head.split(b"\r\n")
    assert all(b"\r" not in ln and b"\n" not in ln for ln in lines)
    names = [ln.split(b":", 1)[0].strip().lower() for ln in lines[1:]]
    assert b"transfer-encoding" not in names, head
    xfcc = [ln for ln in lines[1:] if ln.lower().startswith(b"x-forwarded-client-cert:")]
    assert len(xfcc) == 1, head
    value = xfcc[0].split(b":", 1)[1].strip()
    want = ('Hash=%s;Subject="CN=crlf-client";URI=%s' % (
        sha256_hex(leaf_der(evil / "leaf.crt")), rendered)).encode()
    assert value == want
    assert all(0x20 <= b <= 0x7E for b in value)
    # the log names the identity with the bytes JSON-escaped, on one line
    ev = px.log.wait_event("authz", 0, decision="allow")
    assert ev["identity"] == uri.decode()
    strict_log_lines(px.log.path)
    px.alive()
