# SPDX-License-Identifier: Apache-2.0
"""Two `duet ca serve` nodes on one PostgreSQL inventory: a revocation acknowledged by node A
is in node B's very next OCSP answer, while node B answers a stream of other OCSP requests
(docs/ca-server.md, "OCSP answers reused"; docs/ca-ha.md).

Node B reuses signed answers and reads the inventory's generation once for all the requests
it received before the read (several per turn of its event loop under load).  What a relying
party checks: revoke through node A (`POST /v1/revoke`, the holder's certificate), and as soon
as A has answered, ask node B - on a connection also carrying other requests, and on one of
its own - about that certificate; `openssl ocsp` must read `revoked` every time, for answers
without a nonce (reused ones) and with one (signed afresh).  Meanwhile eight connections
keep node B busy with pipelined requests for the same certificates (their answers "good"
kept), so that B's answers are batched.  /metrics shows B read the generation fewer times
than it answered without a nonce.
"""

import re
import socket
import threading
import time

import pytest

import pgcluster
from test_ca_postgres import holder_revokes, pg, pgca, serve  # noqa: F401 (fixtures)
from test_ca_serve import openssl

WHY = pgcluster.missing()
CERTS = 40
LOADERS = 8


@pytest.fixture(autouse=True)
def _postgres_present():
    """Runs everywhere (scripts/deps.sh installs the server): a missing one fails, naming it."""
    if WHY is not None:
        pytest.fail(WHY, pytrace=False)


def ocsp_post(der):
    return (b"POST /ocsp HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/ocsp-request\r\nContent-Length: %d\r\n\r\n" % len(der)
            + der)


class Conn:
    """A kept-alive plain connection sending requests pipelined, reading answers in order."""

    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=20)
        self.buf = b""

    def ask(self, ders):
        """Send every request in one write; the (status, body) of each answer, in order."""
        self.s.sendall(b"".join(ocsp_post(d) for d in ders))
        return [self.answer() for _ in ders]

    def answer(self):
        while b"\r\n\r\n" not in self.buf:
            self.more()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        status = int(head.split(b" ", 2)[1])
        n = int(re.search(rb"(?i)\r\ncontent-length: *(\d+)", head).group(1))
        while len(self.buf) < n:
            self.more()
        body, self.buf = self.buf[:n], self.buf[n:]
        return status, body

    def more(self):
        d = self.s.recv(65536)
        assert d, "node B closed a kept-alive connection"
        self.buf += d

    def close(self):
        self.s.close()


def verdict(ca, crt, der, name):
    """What `openssl ocsp -respin` reads in an answer about crt: good, revoked or unknown."""
    f = ca.base / ("answer-%s.der" % name)
    f.write_bytes(der)
    p = openssl("ocsp", "-respin", f, "-issuer", ca.issuing, "-cert", crt, "-CAfile", ca.root,
                "-no_nonce")
    out = p.stdout.decode() + p.stderr.decode()
    assert p.returncode == 0 and "Response verify OK" in out, out
    m = re.search(r": (good|revoked|unknown)\n", out)
    assert m, out
    return m.group(1)


def request_der(ca, crt, name, nonce):
    f = ca.base / ("%s%s.req" % (name, "-nonce" if nonce else ""))
    p = openssl("ocsp", "-issuer", ca.issuing, "-cert", crt, "-reqout", f,
                *([] if nonce else ["-no_nonce"]))
    assert p.returncode == 0, p
    return f.read_bytes()


def metric(node, name, labels=""):
    st, _, text = node.request("GET", "/metrics")
    assert st == 200
    m = re.search(r"^%s%s (\d+)" % (re.escape(name), re.escape(labels)), text.decode(), re.M)
    assert m, "no %s%s in /metrics" % (name, labels)
    return int(m.group(1))


def test_a_revocation_on_node_a_is_in_node_b_next_answer_under_load(pg, pgca, duet_bin):
    ca = pgca
    certs = []
    for i in range(CERTS):
        crt, key, serial = ca.issued("f%02d" % i, "server", "--san", "dns:f%02d.example" % i)
        certs.append((crt, key, serial, request_der(ca, crt, "f%02d" % i, False),
                      request_der(ca, crt, "f%02d" % i, True)))
    a, b = serve(duet_bin, ca), serve(duet_bin, ca)
    stop = threading.Event()
    failures, counts = [], [0] * LOADERS

    def load(k):
        """Pipelined requests without a nonce for every certificate, 1 to 3 per write."""
        c = Conn(b.http_port)
        try:
            i = k
            while not stop.is_set():
                batch = [certs[(i + j) % CERTS][3] for j in range(1 + i % 3)]
                for st, _ in c.ask(batch):
                    if st != 200:
                        failures.append(st)
                counts[k] += len(batch)
                i += 1
        except Exception as e:  # noqa: BLE001 - reported by the test below
            failures.append(repr(e))
        finally:
            c.close()

    threads = [threading.Thread(target=load, args=(k,)) for k in range(LOADERS)]
    try:
        # every certificate's answer "good" is kept by node B first
        probe = Conn(b.http_port)
        for crt, _, _, plain, _ in certs:
            [(st, der)] = probe.ask([plain])
            assert st == 200 and verdict(ca, crt, der, "warm") == "good"
        for t in threads:
            t.start()
        time.sleep(0.5)
        answers = []
        for n, (crt, key, serial, plain, nonce) in enumerate(certs):
            holder_revokes(a, crt, key, serial)
            # acknowledged by A: the very next answers of B, on a connection shared with
            # another certificate's request and on a fresh one, say revoked
            other = certs[(n + 1) % CERTS][3]
            shared = probe.ask([other, plain] if n % 2 else [plain, other])
            fresh = Conn(b.http_port)
            try:
                alone = fresh.ask([nonce if n % 4 == 3 else plain])
            finally:
                fresh.close()
            answers.append((crt, shared[1 if n % 2 else 0], alone[0]))
        probe.close()
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
    try:
        assert not failures, failures[:5]
        assert sum(counts) > CERTS, counts  # the load ran beside the revocations
        for n, (crt, (st1, d1), (st2, d2)) in enumerate(answers):
            assert st1 == 200 and st2 == 200
            assert verdict(ca, crt, d1, "shared") == "revoked", "certificate %d, shared" % n
            assert verdict(ca, crt, d2, "alone") == "revoked", "certificate %d, alone" % n
        # B answered far more requests without a nonce than it read the generation
        reads = metric(b, "duet_ca_inventory_generation_reads_total")
        hits = metric(b, "duet_ca_ocsp_cache_total", '{result="hit"}')
        misses = metric(b, "duet_ca_ocsp_cache_total", '{result="miss"}')
        assert 0 < reads < hits + misses, (reads, hits, misses)
    finally:
        a.stop()
        b.stop()
