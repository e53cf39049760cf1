# SPDX-License-Identifier: Apache-2.0
"""A flood of pipelined OCSP requests at `duet ca serve`'s plain listener (docs/ca-server.md,
"OCSP on the plain listener"): 10,000 GETs pipelined on four connections about eight
certificates, two of them revoked, against the real binary.

What a user checks: every request gets its own answer, in order, for the certificate it
named, with the status the inventory holds (parsed as an OCSP response); a client that sends
its requests and reads nothing for a while costs the server a bounded amount of memory (the
server stops reading it; TCP holds the rest) instead of buffering all it sends; and another
client is answered meanwhile.
"""

import base64
import os
import socket
import threading
import time
import urllib.parse

from cryptography.x509 import ocsp

from conftest import show
from test_ca_serve import CAServer, openssl
from test_ca_serve_limits import responses

N_CONN, PER_CONN = 4, 2500


def rss_kib(pid):
    for line in open("/proc/%d/status" % pid):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS for %d" % pid)


def ocsp_get(ca, crt, f):
    p = openssl("ocsp", "-issuer", ca.issuing, "-cert", crt, "-reqout", f, "-no_nonce")
    assert p.returncode == 0, p
    target = "/ocsp/" + urllib.parse.quote(base64.b64encode(f.read_bytes()).decode(), safe="")
    return b"GET " + target.encode() + b" HTTP/1.1\r\nHost: ca\r\n\r\n"


def check(answers, asked, status_of):
    """Each answer 200 and an OCSP response about the serial asked, with its status."""
    assert len(answers) == len(asked), (len(answers), len(asked))
    for (st, h, body), serial in zip(answers, asked):
        assert st == 200 and h["content-type"] == "application/ocsp-response", (st, h)
        r = ocsp.load_der_ocsp_response(body)
        assert r.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL
        assert r.serial_number == serial, (r.serial_number, serial)
        assert r.certificate_status == status_of[serial], (serial, r.certificate_status)


def read_n(s, n, timeout=60):
    """n whole answers from s."""
    s.settimeout(timeout)
    data, got = bytearray(), 0
    while got < n:
        chunk = s.recv(1 << 20)
        assert chunk, "closed after %d answers" % got
        data += chunk
        got = data.count(b"HTTP/1.1 200 OK\r\n")
    # The last answer's body may still be on its way.
    while True:
        ans = responses(bytes(data))
        if len(ans[-1][2]) == int(ans[-1][1]["content-length"]):
            return ans
        data += s.recv(1 << 20)


def test_ten_thousand_pipelined_requests(make_ca, duet_bin, tmp_path, monkeypatch):
    if "ASAN_OPTIONS" in os.environ:
        # AddressSanitizer keeps freed memory aside (256 MB): RSS would measure that.
        monkeypatch.setenv("ASAN_OPTIONS", os.environ["ASAN_OPTIONS"] + ":quarantine_size_mb=0")
    ca = make_ca("Flood Corp")
    reqs, status_of = [], {}
    for i in range(8):
        crt, _, serial = ca.issued("f%d" % i, "server", "--san", "dns:f%d.example" % i)
        n = int(serial.replace(":", ""), 16)
        status_of[n] = ocsp.OCSPCertStatus.GOOD
        if i in (2, 5):
            p = ca.duet("cert", "revoke", serial, "--ca-dir", ca.dir, "--reason",
                        "keyCompromise")
            assert p.returncode == 0, show(p)
            status_of[n] = ocsp.OCSPCertStatus.REVOKED
        reqs.append((n, ocsp_get(ca, crt, tmp_path / ("f%d.req" % i))))
    srv = CAServer(duet_bin, ca).start()
    try:
        # Warm: each certificate's answer signed and cached once.
        with socket.create_connection(("127.0.0.1", srv.http_port), timeout=10) as s:
            s.sendall(b"".join(r for _, r in reqs))
            check(read_n(s, len(reqs)), [n for n, _ in reqs], status_of)
        base = rss_kib(srv.proc.pid)
        plans = [[reqs[(c * 7 + i * 3) % len(reqs)] for i in range(PER_CONN)]
                 for c in range(N_CONN)]
        conns = [socket.create_connection(("127.0.0.1", srv.http_port), timeout=60)
                 for _ in range(N_CONN)]
        # The hog: 60 MB of pipelined requests, its answers left unread.
        hog = socket.create_connection(("127.0.0.1", srv.http_port), timeout=60)
        hog_req = reqs[0][1]
        hog_n = 60_000_000 // len(hog_req)
        hog.setblocking(False)
        hog_data, hog_sent = hog_req * hog_n, 0
        senders = [threading.Thread(target=c.sendall, args=(b"".join(r for _, r in plan),))
                   for c, plan in zip(conns, plans)]
        for t in senders:
            t.start()
        peak, stalled = base, 0
        # Send what the server takes, until it takes nothing more for a while.
        while hog_sent < len(hog_data) and stalled < 40:
            try:
                k = hog.send(memoryview(hog_data)[hog_sent:hog_sent + (1 << 20)])
                hog_sent, stalled = hog_sent + k, 0
            except BlockingIOError:
                stalled += 1
                time.sleep(0.05)
            peak = max(peak, rss_kib(srv.proc.pid))
        # The four flooding connections: every answer right, in order.
        for c, plan in zip(conns, plans):
            check(read_n(c, PER_CONN), [n for n, _ in plan], status_of)
        for t in senders:
            t.join(30)
        # Another client is answered while the hog's answers wait.
        with socket.create_connection(("127.0.0.1", srv.http_port), timeout=10) as s:
            s.sendall(reqs[2][1])
            check(read_n(s, 1), [reqs[2][0]], status_of)
        peak = max(peak, rss_kib(srv.proc.pid))
        # The server stopped reading the hog long before its 60 MB: memory stays bounded
        # (a few MB above the base: four connections' buffers and the hog's bounded input).
        assert hog_sent < 30_000_000, hog_sent
        assert peak - base < 24 * 1024, (base, peak, hog_sent)
        hog.close()
        for c in conns:
            c.close()
        assert srv.proc.poll() is None
    finally:
        srv.stop()
