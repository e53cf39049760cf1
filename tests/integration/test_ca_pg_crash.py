# SPDX-License-Identifier: Apache-2.0
"""Crash safety of two `duet ca serve` nodes on one PostgreSQL inventory (issue 14).

test_ca_crash.py kills `duet cert issue` on SQLite; this is the same audit for the CA as a
service on several nodes: two nodes issue concurrently on one database (a cluster started
here, pgcluster.py) while one of them is SIGKILLed at random moments and started again.
Clients do what `duet agent` does: enroll once with a token, then renew over mTLS with the
certificate they hold (a new certificate each time, so every renewal is an issuance), and
fail over to the other node when theirs does not answer.  An admin revokes superseded
certificates meanwhile, so the CRL moves on, and a poller reads the CRL from both nodes in
turn.

Afterwards, what a user would check: every certificate a client received is a row of the
inventory with the very DER it received; every certificate a client lost to a kill (the
node committed it, then died before answering) is a row too, named by the 409 the other node
gives; no serial appears twice, in `duet cert list` or in the database, which itself refuses
a second row with a serial; every acknowledged revocation is in the inventory and in the CRL
both nodes serve, and both nodes' OCSP answers agree with it; CRL numbers seen only grow.

DUET_PG_CRASH_ISSUES (default 4000) is the number of issuances aimed at; DUET_PG_CRASH_SECONDS
(default 60) bounds the run whatever the machine's load; DUET_CRASH_SEED replays the kills.
"""

import http.client
import json
import os
import random
import ssl
import subprocess
import threading
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp

import pgcluster
from conftest import DuetCA, show
from test_ca_serve import CAServer, make_csr, make_token

WHY = pgcluster.missing()
TARGET = int(os.environ.get("DUET_PG_CRASH_ISSUES", "4000"))
BUDGET_S = float(os.environ.get("DUET_PG_CRASH_SECONDS", "60"))
CLIENTS_PER_NODE = 3
ADMIN = "dns:admin.corp.example"


@pytest.fixture(autouse=True)
def _postgres_present():
    """Runs everywhere (scripts/deps.sh installs the server): a missing one fails, naming it."""
    if WHY is not None:
        pytest.fail(WHY, pytrace=False)


@pytest.fixture(scope="module")
def pg():
    c = pgcluster.PgCluster().start()
    yield c
    c.stop()


class Cut(Exception):
    """No answer from any node (both down, or every attempt cut)."""


def post(node, path, body, ctx):
    """(status, JSON answer) of one POST on a new TLS connection to node; OSError (ssl.SSLError
    included) or HTTPException when the node dies or is down."""
    conn = http.client.HTTPSConnection("127.0.0.1", node.port, timeout=20, context=ctx)
    try:
        conn.request("POST", path, body=json.dumps(body),
                     headers={"Content-Type": "application/json"})
        r = conn.getresponse()
        data = r.read()
        return r.status, json.loads(data)
    finally:
        conn.close()


def der_of(pem):
    return x509.load_pem_x509_certificate(pem.encode()).public_bytes(Encoding.DER)


def colon(n):
    h = "%X" % n
    h = ("0" + h) if len(h) % 2 else h
    return ":".join(h[i:i + 2] for i in range(0, len(h), 2))


class Run:
    """What every thread records, under one lock."""

    def __init__(self, ca, nodes, seed):
        self.ca, self.nodes = ca, nodes
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.received = {}      # serial -> DER, every certificate a client was given
        self.lost = {}          # serial -> the serial it renews: committed by a node that
        #                         died before answering
        self.superseded = []    # serials renewed by their holder: the admin may revoke them
        self.revoked = set()    # serials whose revocation a node acknowledged
        self.crl_seen = []      # (node index, CRL number), in the order they were fetched
        self.cuts = 0           # requests cut by a kill: connected, then no answer
        self.refused = 0        # requests to a node that was down (connection refused)
        self.kills = 0
        self.refusals = []      # any answer the contract does not allow here
        self.tokens = []
        self.token_made = 0
        self.down = set()       # nodes being killed and started again

    def issued(self):
        with self.lock:
            return len(self.received) + len(self.lost)

    def token(self, name):
        with self.lock:
            if self.tokens:
                return self.tokens.pop()
            self.token_made += 1
        return make_token(self.ca, name, "server", "--san", "dns:%s.crash.example" % name,
                          "--ttl", "1h")

    def call(self, pref, path, body, ctx):
        """(node index, status, answer), trying the preferred node, then the other, again
        while both are down; Cut after 30 s without an answer."""
        deadline = time.monotonic() + 30
        while True:
            for i in (pref, 1 - pref):
                node = self.nodes[i]
                try:
                    st, ans = post(node, path, body, ctx)
                    return i, st, ans
                except ConnectionRefusedError:
                    with self.lock:
                        self.refused += 1
                except (OSError, http.client.HTTPException, ValueError):
                    with self.lock:
                        self.cuts += 1
            if time.monotonic() > deadline or self.stop.is_set():
                raise Cut("no node answered %s in 30 s" % path)
            time.sleep(0.02)


def client(run, k, pref):
    """Enroll, then renew what it holds until the run stops; enroll again with a fresh token
    when a kill took a renewal (409: the successor exists, this client never saw it)."""
    ca = run.ca
    key, csr = make_csr(ca, "cl%d" % k)
    crtfile = ca.base / ("cl%d.chain.pem" % k)
    n = 0
    holding = None  # (serial, context presenting it)
    try:
        while not run.stop.is_set() and run.issued() < TARGET:
            n += 1
            if holding is None:
                name = "cl%d-e%d" % (k, n)
                tok = run.token(name)
                ctx = ssl.create_default_context(cafile=str(ca.root))
                i, st, ans = run.call(pref, "/v1/enroll", {"token": tok, "csr": csr}, ctx)
                if st == 403 and "already used" in ans.get("detail", ""):
                    continue  # a node spent it, then died before answering
                what = "enroll"
            else:
                i, st, ans = run.call(pref, "/v1/renew", {}, holding[1])
                if st == 409 and ans.get("error") == "already_renewed":
                    with run.lock:
                        run.lost[ans["successor"]] = holding[0]
                    holding = None
                    continue
                what = "renew"
            if st != 200:
                with run.lock:
                    run.refusals.append((what, i, st, ans))
                return
            der = der_of(ans["certificate"])
            serial = colon(x509.load_der_x509_certificate(der).serial_number)
            with run.lock:
                assert serial == ans["serial"], (serial, ans["serial"])
                assert serial not in run.received, "serial %s given out twice" % serial
                run.received[serial] = der
                if holding is not None:
                    run.superseded.append(holding[0])
            crtfile.write_text(ans["certificate"] + ans["chain"])
            ctx = ssl.create_default_context(cafile=str(ca.root))
            ctx.load_cert_chain(str(crtfile), str(key))
            holding = (serial, ctx)
            pref = i if run.rng.random() < 0.7 else 1 - i  # mostly the node that answered
    except Cut as e:
        with run.lock:
            run.refusals.append(("cut", pref, 0, str(e)))


def admin(run, crt, key):
    """Revokes a superseded certificate every ~0.2 s through either node."""
    ctx = ssl.create_default_context(cafile=str(run.ca.root))
    ctx.load_cert_chain(str(crt), str(key))
    while not run.stop.wait(run.rng.uniform(0.1, 0.3)):
        with run.lock:
            if not run.superseded:
                continue
            serial = run.superseded.pop(run.rng.randrange(len(run.superseded)))
        try:
            i, st, ans = run.call(run.rng.randrange(2), "/v1/revoke",
                                  {"serial": serial, "reason": "superseded"}, ctx)
        except Cut:
            continue
        with run.lock:
            if st == 200 or (st == 409 and ans.get("error") == "already_revoked"):
                run.revoked.add(serial)  # 409: a node revoked it, then died before answering
            else:
                run.refusals.append(("revoke", i, st, ans))


def crl_number(der):
    return x509.load_der_x509_crl(der).extensions.get_extension_for_class(
        x509.CRLNumber).value.crl_number


def poller(run):
    """Fetches /crl from the nodes in turn, as a relying party with both URLs would."""
    while not run.stop.is_set():
        for i, node in enumerate(run.nodes):
            try:
                conn = http.client.HTTPConnection("127.0.0.1", node.http_port, timeout=10)
                conn.request("GET", "/crl")
                r = conn.getresponse()
                der = r.read()
                conn.close()
            except (OSError, http.client.HTTPException):
                continue  # that node is down now
            if r.status != 200:
                with run.lock:
                    run.refusals.append(("crl", i, r.status, der[:200]))
                continue
            with run.lock:
                run.crl_seen.append((i, crl_number(der)))
        time.sleep(0.05)


def killer(run):
    """SIGKILLs one node at a random moment (while clients are in the middle of requests),
    then starts it again on its ports; the other node serves meanwhile."""
    while not run.stop.wait(run.rng.uniform(0.1, 0.6)):
        i = run.rng.randrange(2)
        node = run.nodes[i]
        with run.lock:
            run.down.add(i)
        node.kill()
        with run.lock:
            run.kills += 1
        time.sleep(run.rng.uniform(0, 0.2))
        node.start()
        with run.lock:
            run.down.discard(i)


def ocsp_status(node, der, issuer):
    """The status (ocsp.OCSPCertStatus) a node's OCSP responder gives the certificate der."""
    req = ocsp.OCSPRequestBuilder().add_certificate(
        x509.load_der_x509_certificate(der), issuer, hashes.SHA1()).build()
    conn = http.client.HTTPConnection("127.0.0.1", node.http_port, timeout=20)
    try:
        conn.request("POST", "/ocsp", body=req.public_bytes(Encoding.DER),
                     headers={"Content-Type": "application/ocsp-request"})
        r = conn.getresponse()
        body = r.read()
    finally:
        conn.close()
    assert r.status == 200, (r.status, body[:200])
    resp = ocsp.load_der_ocsp_response(body)
    assert resp.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL, resp.response_status
    return resp.certificate_status


def psql_rows(pg, db, sql):
    return [line.split("|") for line in pg.sql(sql, db=db).splitlines() if line]


def test_two_nodes_killed_at_random_lose_no_certificate_and_reuse_no_serial(
        pg, run_env, tmp_path_factory, duet_bin):
    seed = int(os.environ.get("DUET_CRASH_SEED", time.time_ns() % 2**32))
    ctx = "seed %d (replay the kills with DUET_CRASH_SEED=%d)" % (seed, seed)
    url, db = pg.new_database()
    ca = DuetCA(run_env, tmp_path_factory.mktemp("pgcrash"), "Crash PG Corp")
    p = ca.init("--store", url)
    assert p.returncode == 0, show(p)
    ad_crt, ad_key, _ = ca.issued("admin", "server", "--san", ADMIN)
    nodes = []
    for name in "ab":
        node = CAServer(duet_bin, ca, "--admin-identity", ADMIN)
        node.log = ca.base / ("node-%s.jsonl" % name)
        nodes.append(node)
    run = Run(ca, nodes, seed)
    # Tokens for the first enrollments and for the clients a kill will make enroll again,
    # made before the timed part (more are made when these run out).
    run.tokens = [make_token(ca, "tok%03d" % i, "server", "--san",
                             "dns:tok%03d.crash.example" % i, "--ttl", "1h")
                  for i in range(2 * CLIENTS_PER_NODE + 30)]
    for node in nodes:
        node.start()
    threads = [threading.Thread(target=client, args=(run, k, k % 2))
               for k in range(2 * CLIENTS_PER_NODE)]
    threads += [threading.Thread(target=admin, args=(run, ad_crt, ad_key)),
                threading.Thread(target=poller, args=(run,))]
    kt = threading.Thread(target=killer, args=(run,))
    t0 = time.monotonic()
    try:
        for t in threads:
            t.start()
        kt.start()
        while time.monotonic() - t0 < BUDGET_S and run.issued() < TARGET and \
                any(t.is_alive() for t in threads[:2 * CLIENTS_PER_NODE]):
            time.sleep(0.1)
        run.stop.set()
        kt.join(timeout=60)
        for t in threads:
            t.join(timeout=60)
        took = time.monotonic() - t0
        assert not kt.is_alive() and not any(t.is_alive() for t in threads), ctx
        # Both nodes are up and answer; neither died of anything but our kills.
        for node in nodes:
            assert node.proc.poll() is None, "a node exited by itself: %s (%s)" % (
                node.proc.returncode, ctx)
        assert run.refusals == [], "answers the contract does not allow: %r (%s)" % (
            run.refusals[:5], ctx)

        # The CRL both serve now: the same document, listing every acknowledged revocation.
        finals = []
        for node in nodes:
            st, resp, der = node.request("GET", "/crl", tls=False)
            assert st == 200, der
            finals.append(der)
        assert finals[0] == finals[1], "the two nodes serve different CRLs (%s)" % ctx
        crl = x509.load_der_x509_crl(finals[0])
        listed = {colon(r.serial_number) for r in crl}
        assert run.revoked <= listed, "revoked, yet not in the CRL: %r (%s)" % (
            sorted(run.revoked - listed)[:5], ctx)
        run.crl_seen.append((0, crl_number(finals[0])))
        # OCSP from either node agrees with the inventory: revoked ones, and ones still good.
        issuer = x509.load_pem_x509_certificate(ca.issuing.read_bytes())
        rev = sorted(run.revoked)[:8]
        good = [s for s in sorted(run.received) if s not in run.revoked][:8]
        assert rev and good, (len(rev), len(good))
        for node in nodes:
            for serial in rev:
                assert ocsp_status(node, run.received[serial], issuer) == \
                    ocsp.OCSPCertStatus.REVOKED, (serial, ctx)
            for serial in good:
                assert ocsp_status(node, run.received[serial], issuer) == \
                    ocsp.OCSPCertStatus.GOOD, (serial, ctx)
    finally:
        run.stop.set()
        for node in nodes:
            if node.proc is not None and node.proc.poll() is None:
                node.stop()

    # CRL numbers seen, polling both nodes in turn, never went back.
    numbers = [n for _, n in run.crl_seen]
    back = [(numbers[j - 1], numbers[j]) for j in range(1, len(numbers))
            if numbers[j] < numbers[j - 1]]
    assert back == [], "CRL numbers went back: %r of %d fetched (%s)" % (
        back[:5], len(numbers), ctx)
    assert len(set(numbers)) > 2, numbers

    # The audit: the database and `duet cert list` against what the clients received.
    got = psql_rows(pg, db, "SELECT serial, encode(der, 'hex'), coalesce(renews, '') "
                            "FROM duet_certificates")
    inv = {r[0]: bytes.fromhex(r[1]) for r in got}
    renews = {r[0]: r[2] for r in got}
    total = int(pg.sql("SELECT count(*) FROM duet_certificates", db=db))
    assert total == len(inv), "a serial repeats in the database (%s)" % ctx
    for serial, der in run.received.items():
        assert serial in inv, "a client holds %s, which is not in the inventory (%s)" % (
            serial, ctx)
        assert inv[serial] == der, "the inventory's DER of %s differs from the one a client " \
                                   "received (%s)" % (serial, ctx)
    for serial, old in run.lost.items():
        assert serial in inv and serial not in run.received, (serial, old, ctx)
        assert renews[serial] == old, "%s should renew %s: %r (%s)" % (serial, old,
                                                                        renews[serial], ctx)
    # Besides those: the CA's own certificates, the admin's, and what kills left unanswered
    # (an enrollment or renewal committed, its answer cut, the client moving on).
    extra = set(inv) - set(run.received) - set(run.lost)
    assert len(extra) <= 4 + run.kills * 2 * CLIENTS_PER_NODE, (len(extra), run.kills, ctx)
    p = ca.duet("cert", "list", "--ca-dir", ca.dir, "--format", "json")
    assert p.returncode == 0, show(p)
    listing = json.loads(p.stdout)
    serials = [r["serial"] for r in listing]
    assert len(serials) == len(set(serials)) == total, (len(serials), total, ctx)
    status = {r["serial"]: r["status"] for r in listing}
    assert all(status[s] == "revoked" for s in run.revoked), ctx
    assert all(status[s] == "valid" for s in run.received if s not in run.revoked), ctx
    # The database itself refuses a second row with a serial it holds.
    r = subprocess.run([str(Path(pg.bindir) / "psql"), "-h", "127.0.0.1", "-p", str(pg.port),
                        "-U", "postgres", "-d", db, "-X", "-A", "-t", "-c",
                        "INSERT INTO duet_certificates SELECT * FROM duet_certificates "
                        "WHERE profile = 'server' LIMIT 1"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "duplicate key value violates unique constraint" in r.stderr, \
        r.stdout + r.stderr

    assert run.kills >= 5, "too few kills: %d in %.0f s (%s)" % (run.kills, took, ctx)
    assert run.cuts >= 1, "no kill cut a request (%s)" % ctx
    print("pg crash test: %s, %.0f s, issued %d (%d received, %d lost to kills), %d kills, "
          "%d requests cut and %d refused, %d revoked, %d CRLs fetched (numbers %d..%d), "
          "%d tokens made during the run" % (
              ctx, took, len(run.received) + len(run.lost), len(run.received), len(run.lost),
              run.kills, run.cuts, run.refused, len(run.revoked), len(numbers), numbers[0],
              numbers[-1], run.token_made))
