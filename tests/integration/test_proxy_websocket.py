# SPDX-License-Identifier: Apache-2.0
"""WebSocket through `duet proxy` in http mode (issue 11, B).

An `Upgrade: websocket` request is authorized like any request (policy, identity header), and
once the upstream answers 101 the bytes are relayed both ways.  Only a 101 switches: an
upstream that answers anything else keeps the connection in HTTP, so requests after it still
meet the policy.  Other upgrades (h2c above all: it would carry requests the proxy never sees)
are taken out of the request.  The client and the upstream are written here with the
standard library (RFC 6455 framing).
"""

import base64
import hashlib
import os
import struct

from proxyutil import TcpServer, closed_by_peer, mtls_connect as connect, start_http_proxy
from proxyutil import read_response as response, send_get as request
from test_proxy_lifecycle import ANY_TEST_CORP, args, reload_with
from test_security_proxy_ops import ALICE, start

WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def ws_accept(key):
    return base64.b64encode(hashlib.sha1(key + WS_GUID).digest())


def ws_frame(payload, mask=True, opcode=1):
    head = bytes([0x80 | opcode])
    n = len(payload)
    mbit = 0x80 if mask else 0
    if n < 126:
        head += bytes([mbit | n])
    elif n < 65536:
        head += bytes([mbit | 126]) + struct.pack("!H", n)
    else:
        head += bytes([mbit | 127]) + struct.pack("!Q", n)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def ws_read(s):
    """One frame -> (opcode, payload), unmasking when masked."""
    def exact(n):
        out = b""
        while len(out) < n:
            d = s.recv(n - len(out))
            if not d:
                raise EOFError("closed after %d of %d bytes" % (len(out), n))
            out += d
        return out
    b0, b1 = exact(2)
    n = b1 & 0x7F
    if n == 126:
        n = struct.unpack("!H", exact(2))[0]
    elif n == 127:
        n = struct.unpack("!Q", exact(8))[0]
    key = exact(4) if b1 & 0x80 else None
    data = exact(n)
    if key:
        data = bytes(b ^ key[i % 4] for i, b in enumerate(data))
    return b0 & 0x0F, data


class BufSock:
    """recv() from what was already read, then from the socket."""

    def __init__(self, sock, buf):
        self.sock, self.buf = sock, buf

    def recv(self, n):
        if self.buf:
            out, self.buf = self.buf[:n], self.buf[n:]
            return out
        return self.sock.recv(n)


class WsUpstream(TcpServer):
    """An upstream that speaks WebSocket (RFC 6455) on /ws: answers the upgrade with 101 and
    echoes every frame back upper-cased; `/plain` answers a normal 200 even to an upgrade
    request; every request head is recorded in .heads."""

    def __init__(self):
        self.heads = []
        super().__init__()

    def _conn(self, c):
        buf = b""
        c.settimeout(20)
        try:
            while True:
                head, buf = self.recv_head(c, buf)
                if head is None:
                    return
                self.heads.append(head)
                lines = head.split(b"\r\n")
                path = lines[0].split(b" ")[1]
                hdr = {}
                for line in lines[1:]:
                    k, _, v = line.partition(b":")
                    hdr[k.strip().lower()] = v.strip()
                if path == b"/ws" and hdr.get(b"upgrade", b"").lower() == b"websocket":
                    c.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                              b"Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n"
                              % ws_accept(hdr[b"sec-websocket-key"]))
                    r = BufSock(c, buf)
                    while True:
                        op, data = ws_read(r)
                        if op == 8:
                            c.sendall(ws_frame(data, mask=False, opcode=8))
                            return
                        c.sendall(ws_frame(data.upper(), mask=False, opcode=op))
                body = path
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        except (OSError, EOFError):
            pass
        finally:
            c.close()


def ws_upgrade_head(path, key, extra=b""):
    return (b"GET %s HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: %s\r\n%s\r\n"
            % (path, key, extra))


def read_head(s):
    buf = b""
    while b"\r\n\r\n" not in buf:
        d = s.recv(65536)
        if not d:
            return buf, b""
        buf += d
    head, rest = buf.split(b"\r\n\r\n", 1)
    return head, rest


WS_RULES = """\
      - {name: ws, allow: ["%s"], path_prefix: /ws}
      - {name: plain, allow: ["%s"], path_prefix: /plain}
      - {name: open, allow: ["uri:spiffe://test-corp/*"], path_prefix: /open}
""" % (ALICE, ALICE)


def ws_proxy(dpki, procs, tmp_path, up, name):
    (tmp_path / name).mkdir()
    return start_http_proxy(dpki, procs, tmp_path / name, up.port, rules=WS_RULES)


def test_websocket_is_authorized_then_relayed_both_ways(dpki, procs, tmp_path):
    up = WsUpstream()
    d = ws_proxy(dpki, procs, tmp_path, up, "ws")
    s = connect(d.port, dpki, dpki.alice_crt, dpki.alice_key)
    key = base64.b64encode(os.urandom(16))
    s.sendall(ws_upgrade_head(b"/ws", key, b"X-Forwarded-Client-Cert: By=forged;URI=x\r\n"))
    head, rest = read_head(s)
    assert head.startswith(b"HTTP/1.1 101"), head
    accept = [l.split(b":", 1)[1].strip() for l in head.split(b"\r\n")[1:]
              if l.lower().startswith(b"sec-websocket-accept:")]
    assert accept == [ws_accept(key)], head
    assert rest == b""
    for msg in (b"hello", b"x" * 300, b"y" * 70000):
        s.sendall(ws_frame(msg))
        op, data = ws_read(s)
        assert (op, data) == (1, msg.upper())
    s.sendall(ws_frame(b"bye", opcode=8))
    assert ws_read(s) == (8, b"bye")
    # The upstream saw the upgrade with duet's identity header, not the client's copy.
    up_head = up.heads[0].lower()
    assert b"upgrade: websocket" in up_head and b"connection: upgrade" in up_head, up_head
    assert b"sec-websocket-key: " + key.lower() in up_head, up_head
    xfcc = [l for l in up_head.split(b"\r\n") if l.startswith(b"x-forwarded-client-cert:")]
    assert len(xfcc) == 1 and b"spiffe://test-corp/alice" in xfcc[0] and b"forged" not in xfcc[0]
    ev = d.log.wait(lambda e: e.get("event") == "authz" and e.get("path") == "/ws")
    assert ev["decision"] == "allow", ev
    s.close()


def test_websocket_upgrade_denied_by_policy_never_reaches_upstream(dpki, procs, tmp_path):
    up = WsUpstream()
    d = ws_proxy(dpki, procs, tmp_path, up, "ws-deny")
    s = connect(d.port, dpki, dpki.henry_crt, dpki.henry_key)
    s.sendall(ws_upgrade_head(b"/ws", base64.b64encode(os.urandom(16))))
    head, _ = read_head(s)
    assert head.startswith(b"HTTP/1.1 403"), head
    assert up.heads == []
    ev = d.log.wait(lambda e: e.get("event") == "authz" and e.get("path") == "/ws")
    assert ev["decision"] == "deny", ev


def test_upgrade_refused_by_upstream_keeps_the_connection_in_http(dpki, procs, tmp_path):
    """An upstream answering 200 to an upgrade request does not switch the connection: what
    the client sends next is still parsed as HTTP and still meets the policy."""
    up = WsUpstream()
    d = ws_proxy(dpki, procs, tmp_path, up, "ws-smuggle")
    s = connect(d.port, dpki, dpki.alice_crt, dpki.alice_key)
    s.sendall(ws_upgrade_head(b"/plain", base64.b64encode(os.urandom(16))))
    head, body = response(s)
    assert head.startswith(b"HTTP/1.1 200") and body == b"/plain", (head, body)
    # Now a request alice may not make; were the connection a blind pipe, it would pass.
    request(s, b"/secret")
    head, body = response(s)
    assert head is not None and head.startswith(b"HTTP/1.1 403"), (head, body)
    assert not any(h.split(b" ")[1] == b"/secret" for h in up.heads), up.heads
    s.close()


def test_h2c_upgrade_is_taken_out_of_the_request(dpki, procs, tmp_path):
    up = WsUpstream()
    d = ws_proxy(dpki, procs, tmp_path, up, "h2c")
    s = connect(d.port, dpki, dpki.alice_crt, dpki.alice_key)
    s.sendall(b"GET /open HTTP/1.1\r\nHost: localhost\r\nUpgrade: h2c\r\n"
              b"Connection: Upgrade, HTTP2-Settings\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n")
    head, body = response(s)
    assert head.startswith(b"HTTP/1.1 200") and body == b"/open", (head, body)
    up_head = up.heads[0].lower()
    assert b"upgrade" not in up_head and b"http2-settings" not in up_head, up_head
    s.close()


def test_websocket_upgrade_with_a_body_or_not_get_is_refused(dpki, procs, tmp_path):
    up = WsUpstream()
    d = ws_proxy(dpki, procs, tmp_path, up, "ws-bad")
    key = base64.b64encode(os.urandom(16))
    for bad in (ws_upgrade_head(b"/ws", key, b"Content-Length: 5\r\n") + b"hello",
                ws_upgrade_head(b"/ws", key).replace(b"GET ", b"POST ", 1)):
        s = connect(d.port, dpki, dpki.alice_crt, dpki.alice_key)
        s.sendall(bad)
        head, _ = read_head(s)
        assert head.startswith(b"HTTP/1.1 400"), head
        s.close()
    assert up.heads == []




# --- upgrade-then-smuggle, a misbehaving upstream, the relay's idle timeout --------------------------

def test_bytes_sent_before_the_answer_wait_for_it(dpki, procs, tmp_path):
    """A request pipelined behind an upgrade request is not read until the upstream has
    answered: after a 200 it is parsed as a request of its own and meets the policy; after a
    101 the bytes pipelined behind the upgrade are WebSocket frames and reach the upstream."""
    up = WsUpstream()
    d = ws_proxy(dpki, procs, tmp_path, up, "ws-pipelined")
    s = connect(d.port, dpki, dpki.alice_crt, dpki.alice_key)
    s.sendall(ws_upgrade_head(b"/plain", base64.b64encode(os.urandom(16)))
              + b"GET /secret HTTP/1.1\r\nHost: localhost\r\n\r\n")
    head, body = response(s)
    assert head.startswith(b"HTTP/1.1 200") and body == b"/plain", (head, body)
    head, body = response(s)
    assert head is not None and head.startswith(b"HTTP/1.1 403"), (head, body)
    assert not any(h.split(b" ")[1] == b"/secret" for h in up.heads), up.heads
    ev = d.log.wait(lambda e: e.get("event") == "authz" and e.get("path") == "/secret")
    assert ev["decision"] == "deny", ev
    s.close()

    s = connect(d.port, dpki, dpki.alice_crt, dpki.alice_key)
    key = base64.b64encode(os.urandom(16))
    s.sendall(ws_upgrade_head(b"/ws", key) + ws_frame(b"early"))
    head, rest = read_head(s)
    assert head.startswith(b"HTTP/1.1 101"), head
    assert ws_read(BufSock(s, rest)) == (1, b"EARLY")
    s.close()


class Bad101Upstream(TcpServer):
    """An upstream that answers 101 to any request, upgrade or not."""

    def _conn(self, c):
        try:
            head, _ = self.recv_head(c, b"")
            if head is not None:
                c.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                          b"Connection: Upgrade\r\n\r\n")
                c.recv(1)
        except OSError:
            pass
        finally:
            c.close()


def test_101_to_a_request_without_upgrade_is_an_upstream_error(dpki, procs, tmp_path):
    up = Bad101Upstream()
    d = ws_proxy(dpki, procs, tmp_path, up, "bad101")
    s = connect(d.port, dpki, dpki.alice_crt, dpki.alice_key)
    request(s, b"/plain")
    head, body = response(s)
    assert head is not None and head.startswith(b"HTTP/1.1 502"), (head, body)
    ev = d.log.wait(lambda e: e.get("event") == "upstream_error")
    assert "101" in ev["error"], ev
    s.close()


def test_the_relay_ends_after_the_idle_timeout(dpki, procs, tmp_path):
    up = WsUpstream()
    (tmp_path / "ws-idle").mkdir()
    d = start_http_proxy(dpki, procs, tmp_path / "ws-idle", up.port, rules=WS_RULES,
                         extra_args=("--idle-timeout", "1s"))
    s = connect(d.port, dpki, dpki.alice_crt, dpki.alice_key)
    s.sendall(ws_upgrade_head(b"/ws", base64.b64encode(os.urandom(16))))
    head, _ = read_head(s)
    assert head.startswith(b"HTTP/1.1 101"), head
    s.sendall(ws_frame(b"ping"))
    assert ws_read(s) == (1, b"PING")
    s.settimeout(10)
    assert s.recv(100) == b""  # closed by the proxy, silent both ways for 1 s
    d.log.wait(lambda e: e.get("event") == "idle_timeout")
    s.close()


def test_an_upstream_connection_that_carried_an_upgrade_is_not_pooled(dpki, procs, tmp_path):
    """Upstream connections are kept for the next client, except one that carried an upgrade
    request, even one the upstream refused."""
    import time
    up = WsUpstream()
    d = ws_proxy(dpki, procs, tmp_path, up, "ws-pool")

    def one(extra_head=None):
        s = connect(d.port, dpki, dpki.alice_crt, dpki.alice_key)
        if extra_head is None:
            request(s, b"/plain")
        else:
            s.sendall(extra_head)
        head, body = response(s)
        assert head.startswith(b"HTTP/1.1 200") and body == b"/plain", (head, body)
        s.close()
        time.sleep(0.3)  # the proxy frees the connection and pools its upstream

    one()
    one()
    assert up.accepted == 1  # the second client reused the first one's upstream connection
    one(ws_upgrade_head(b"/plain", base64.b64encode(os.urandom(16))))
    one()
    assert up.accepted == 2, up.accepted


# --- WebSocket connections end too ------------------------------------------------------------

def test_revoked_websocket_is_closed_on_reload(dpki, procs, tmp_path):
    frank_crt, frank_key = dpki.issue("client", "frank-ws")
    crl = tmp_path / "crl.pem"
    dpki.gen_crl(crl)
    up = WsUpstream()
    d = start(procs, dpki.duet_bin, tmp_path, "proxy",
              args(dpki, "127.0.0.1:%d" % up.port, "--allow", ANY_TEST_CORP, crl=crl), "ws-rev")
    s = connect(d.port, dpki, frank_crt, frank_key)
    s.sendall(ws_upgrade_head(b"/ws", base64.b64encode(os.urandom(16))))
    head, _ = read_head(s)
    assert head.startswith(b"HTTP/1.1 101"), head
    s.sendall(ws_frame(b"one"))
    assert ws_read(s) == (1, b"ONE")
    mark = d.log.mark()
    dpki.revoke(frank_crt)
    staged = tmp_path / "crl.new"
    dpki.gen_crl(staged)
    os.replace(staged, crl)
    reload_with(d, mark)
    assert closed_by_peer(s)
    ev = d.log.wait(lambda e: e.get("event") == "connection_closed", mark)
    assert ev["reason_code"] == "revoked", ev
