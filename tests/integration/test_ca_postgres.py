# SPDX-License-Identifier: Apache-2.0
"""The CA's inventory on PostgreSQL (`duet ca init --store postgres://...`, `store:` in ca.yaml)
against a real server: a cluster started here from Debian's postgresql package (pgcluster.py).

What a user checks: the rows in the database itself (read with psql), `duet cert list`, the
CRL and OCSP answers read by `openssl`; several processes on one inventory - a revocation by
`duet cert revoke` shows in the very next OCSP answer of a running `duet ca serve`, two times
fifty `duet cert issue` in parallel record every certificate under its own serial, one token
raced by two `ca serve` nodes yields exactly one certificate, CRL numbers from two processes
only grow; and a password given in the URL never appears in any output or in ca.yaml.
"""

import base64
import concurrent.futures
import http.client
import json
import re
import time

import pytest

import pgcluster
from conftest import DuetCA, show
from test_ca_serve import CAServer, make_csr, make_token, openssl

WHY = pgcluster.missing()


@pytest.fixture(autouse=True)
def _postgres_present():
    """Every test runs (scripts/deps.sh installs the server): a missing one fails, naming it."""
    if WHY is not None:
        pytest.fail(WHY, pytrace=False)


@pytest.fixture(scope="module")
def pg():
    c = pgcluster.PgCluster().start()
    yield c
    c.stop()


@pytest.fixture
def pgca(pg, run_env, tmp_path_factory):
    """A CA whose inventory is a fresh PostgreSQL database."""
    url, db = pg.new_database()
    ca = DuetCA(run_env, tmp_path_factory.mktemp("pgca"), "PG Corp")
    p = ca.init("--store", url)
    assert p.returncode == 0, show(p)
    ca.url, ca.db = url, db
    return ca


def rows(pg, db, sql):
    out = pg.sql(sql, db=db)
    return [line.split("|") for line in out.splitlines() if line]


def test_init_issue_list_revoke_crl_on_postgres(pg, pgca):
    ca = pgca
    p = ca.init("--store", ca.url)
    assert p.returncode == 1 and "already holds a CA" in p.stderr, show(p)
    # ca.yaml names the database; no inventory.db was made
    assert 'store: "%s"' % ca.url in (ca.dir / "ca.yaml").read_text()
    assert not (ca.dir / "inventory.db").exists()
    # the issuing CA is a row of the database, with its schema version recorded
    assert rows(pg, ca.db, "SELECT profile FROM duet_certificates") == [["issuing-ca"]]
    assert rows(pg, ca.db, "SELECT version, description FROM duet_schema ORDER BY version") == [
        ["1", "the inventory"], ["2", "the published CRL"]]
    crt, _, serial = ca.issued("web", "server", "--san", "dns:web.example", "--owner", "team-a")
    got = rows(pg, ca.db, "SELECT name, owner, status, length(der) > 100 FROM duet_certificates "
                          "WHERE serial = '%s'" % serial)
    assert got == [["web.example", "team-a", "0", "t"]]
    row = ca.row(serial)
    assert row["status"] == "valid" and row["owner"] == "team-a"
    # revoke, then the CRL lists it
    p = ca.duet("cert", "revoke", serial, "--ca-dir", ca.dir, "--reason", "keyCompromise")
    assert p.returncode == 0, show(p)
    assert ca.row(serial)["status"] == "revoked"
    p = ca.duet("cert", "revoke", serial, "--ca-dir", ca.dir)
    assert p.returncode == 1 and "already revoked" in p.stderr, show(p)
    crl = ca.base / "ca.crl"
    p = ca.crl(crl)
    assert p.returncode == 0, show(p)
    txt = openssl("crl", "-in", crl, "-noout", "-text").stdout.decode()
    assert serial.replace(":", "") in txt.replace(":", "").upper(), txt
    assert "Key Compromise" in txt
    assert rows(pg, ca.db, "SELECT status, reason FROM duet_certificates WHERE serial = '%s'"
                % serial) == [["1", "1"]]


def test_a_database_that_holds_an_inventory_is_not_made_again(pg, pgca, run_env,
                                                             tmp_path_factory):
    other = DuetCA(run_env, tmp_path_factory.mktemp("pgca2"), "Other Corp")
    p = other.init("--store", pgca.url)
    assert p.returncode == 1, show(p)
    assert "already holds a duet inventory (schema version 2)" in p.stderr, show(p)
    # and the inventory there is untouched
    assert len(rows(pg, pgca.db, "SELECT serial FROM duet_certificates")) == 1


def test_a_schema_newer_than_this_duet_is_refused(pg, pgca):
    pg.sql("INSERT INTO duet_schema VALUES (7, 0, 'from the future')", db=pgca.db)
    p = pgca.duet("cert", "list", "--ca-dir", pgca.dir)
    assert p.returncode == 1, show(p)
    assert "inventory schema version 7 is newer than this duet knows (2)" in p.stderr, show(p)
    assert "127.0.0.1:%d/%s" % (pg.port, pgca.db) in p.stderr


def test_unreachable_server_and_missing_inventory_are_named(pg, run_env, tmp_path_factory):
    ca = DuetCA(run_env, tmp_path_factory.mktemp("pgbad"), "Bad Corp")
    port = pgcluster.free_port()
    p = ca.init("--store", "postgres://postgres@127.0.0.1:%d/nowhere" % port)
    assert p.returncode == 1, show(p)
    assert ("postgres://postgres@127.0.0.1:%d/nowhere: cannot connect to the inventory "
            "database" % port) in p.stderr, show(p)
    assert not (ca.dir / "ca.yaml").exists()
    # a database without an inventory, named in ca.yaml by hand
    url, db = pg.new_database()
    made = DuetCA(run_env, tmp_path_factory.mktemp("pgempty"), "Empty Corp")
    assert made.init().returncode == 0
    y = made.dir / "ca.yaml"
    y.write_text(y.read_text() + 'store: "%s"\n' % url)
    p = made.duet("cert", "list", "--ca-dir", made.dir)
    assert p.returncode == 1, show(p)
    assert "%s: no duet inventory in this database" % url in p.stderr, show(p)


def test_a_password_in_the_url_never_appears(pg, run_env, tmp_path_factory):
    url, db = pg.new_database()
    pw_url = url.replace("postgres@", "%s:%s@" % (pgcluster.PASSWORD_ROLE, pgcluster.PASSWORD))
    bad_url = url.replace("postgres@", "%s:wrong-%s@" % (pgcluster.PASSWORD_ROLE,
                                                          pgcluster.PASSWORD))
    # a wrong password: refused, naming the server with the password masked
    ca = DuetCA(run_env, tmp_path_factory.mktemp("pgpw"), "Secret Corp")
    p = ca.init("--store", bad_url)
    assert p.returncode == 1, show(p)
    assert "authentication failed" in p.stderr, show(p)
    assert "%s:***@127.0.0.1:%d/%s" % (pgcluster.PASSWORD_ROLE, pg.port, db) in p.stderr
    assert pgcluster.PASSWORD not in p.stdout + p.stderr
    # a mistyped option with the URL as its value: the option's name only
    p = ca.duet("ca", "init", "--ca-dir", ca.dir, "--name", "X", "--stroe=" + pw_url)
    assert p.returncode == 2 and "--stroe is not an option" in p.stderr, show(p)
    assert pgcluster.PASSWORD not in p.stdout + p.stderr
    # the right one: the CA is made, ca.yaml holds the URL without it
    p = ca.init("--store", pw_url)
    assert p.returncode == 0, show(p)
    assert pgcluster.PASSWORD not in p.stdout + p.stderr
    assert "password of --store is not written" in p.stdout
    yaml = (ca.dir / "ca.yaml").read_text()
    assert pgcluster.PASSWORD not in yaml
    assert 'store: "postgres://%s@127.0.0.1:%d/%s"' % (pgcluster.PASSWORD_ROLE, pg.port,
                                                       db) in yaml
    # later commands: without the password, a clear refusal; with PGPASSWORD, they work
    p = ca.duet("cert", "list", "--ca-dir", ca.dir, env={"PGPASSWORD": None,
                                                         "PGPASSFILE": "/nonexistent"})
    assert p.returncode == 1 and "authentication failed" in p.stderr, show(p)
    assert "PGPASSFILE or PGPASSWORD" in p.stderr
    p = ca.duet("cert", "list", "--ca-dir", ca.dir, "--format", "json",
                env={"PGPASSWORD": pgcluster.PASSWORD})
    assert p.returncode == 0, show(p)
    assert [r["profile"] for r in json.loads(p.stdout)] == ["issuing-ca"]
    # a password in ca.yaml itself (written by hand) is masked in messages too
    y = ca.dir / "ca.yaml"
    y.write_text(yaml.replace('store: "postgres://%s@' % pgcluster.PASSWORD_ROLE,
                              'store: "postgres://%s:x%s@' % (pgcluster.PASSWORD_ROLE,
                                                              pgcluster.PASSWORD)))
    p = ca.duet("cert", "list", "--ca-dir", ca.dir)
    assert p.returncode == 1 and "authentication failed" in p.stderr, show(p)
    assert pgcluster.PASSWORD not in p.stdout + p.stderr


def serve(duet_bin, ca):
    return CAServer(duet_bin, ca, "--admin-identity", "dns:admin.corp.example").start()


def ocsp_status(ca, port, crt):
    p = openssl("ocsp", "-issuer", ca.issuing, "-cert", crt, "-CAfile", ca.root, "-url",
                "http://127.0.0.1:%d/ocsp" % port, "-no_nonce")
    out = p.stdout.decode() + p.stderr.decode()
    assert "Response verify OK" in out, out
    m = re.search(r": (good|revoked|unknown)\n", out)
    assert m, out
    return m.group(1)


def test_serve_enrolls_by_token_and_answers_ocsp_fresh_after_a_revocation_elsewhere(
        pg, pgca, duet_bin):
    ca = pgca
    srv = serve(duet_bin, ca)
    try:
        tok = make_token(ca, "node1", "server", "--san", "dns:node1.corp.example")
        _, csr = make_csr(ca, "node1")
        st, _, ans = srv.request("POST", "/v1/enroll", {"token": tok, "csr": csr})
        assert st == 200, ans
        serial = ans["serial"]
        crt = ca.base / "node1.crt"
        crt.write_text(ans["certificate"])
        assert rows(pg, ca.db, "SELECT serial FROM duet_tokens WHERE used_at IS NOT NULL") == [
            [serial]]
        assert ocsp_status(ca, srv.http_port, crt) == "good"
        assert ocsp_status(ca, srv.http_port, crt) == "good"  # now a reused answer
        # another process revokes on the same database: the very next answer says so
        p = ca.duet("cert", "revoke", serial, "--ca-dir", ca.dir, "--reason", "keyCompromise")
        assert p.returncode == 0, show(p)
        assert ocsp_status(ca, srv.http_port, crt) == "revoked"
        # the token cannot be used again
        _, csr2 = make_csr(ca, "node1b")
        st, _, err = srv.request("POST", "/v1/enroll", {"token": tok, "csr": csr2})
        assert st == 403 and "already used" in err["detail"], err
    finally:
        srv.stop()


def test_serve_carries_on_after_the_database_restarts(pg, pgca, duet_bin):
    ca = pgca
    srv = serve(duet_bin, ca)
    try:
        crt, _, serial = ca.issued("steady", "server", "--san", "dns:steady.example")
        assert ocsp_status(ca, srv.http_port, crt) == "good"
        pg.restart()  # every connection of ca serve is cut
        # the next request reconnects; a revocation made after the restart shows
        p = ca.duet("cert", "revoke", serial, "--ca-dir", ca.dir)
        assert p.returncode == 0, show(p)
        assert ocsp_status(ca, srv.http_port, crt) == "revoked"
        _, csr = make_csr(ca, "after-restart")
        tok = make_token(ca, "after-restart", "server", "--san", "dns:after-restart.example")
        st, _, ans = srv.request("POST", "/v1/enroll", {"token": tok, "csr": csr})
        assert st == 200, ans
        assert srv.proc.poll() is None
    finally:
        srv.stop()


def test_a_writer_held_up_by_another_node_gives_up_saying_so(pg, pgca):
    """A revocation (which moves the generation on) waits for another node's write
    transaction, then gives up saying so; an issuance does not wait for it at all: it takes no
    lock on duet_meta, so nodes issue side by side (the serial stays the primary key)."""
    ca = pgca
    _, _, held = ca.issued("held", "server", "--san", "dns:held.example")
    before = rows(pg, ca.db, "SELECT count(*) FROM duet_certificates")
    # another node's write transaction that does not end for 20 s
    holder = pg.psql_popen("BEGIN; UPDATE duet_meta SET generation = generation + 1; "
                           "SELECT pg_sleep(20); COMMIT;", db=ca.db)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not rows(
                pg, ca.db, "SELECT 1 FROM pg_locks l JOIN pg_stat_activity a USING (pid) "
                           "WHERE a.query LIKE '%pg_sleep%' AND l.mode = 'RowExclusiveLock'"):
            time.sleep(0.1)
        issued = ca.issue("meanwhile", "server", "--san", "dns:meanwhile.example")
        t0 = time.monotonic()
        p = ca.duet("cert", "revoke", held, "--ca-dir", ca.dir)
        waited = time.monotonic() - t0
        still = holder.poll() is None
    finally:
        holder.kill()
        holder.wait()
    assert issued.returncode == 0, show(issued)
    serial = re.search(r"serial ([0-9A-F:]+)", issued.stdout).group(1)
    assert rows(pg, ca.db, "SELECT name FROM duet_certificates WHERE serial = '%s'"
                % serial) == [["meanwhile.example"]]
    assert still, "the other transaction ended before the revocation gave up"
    assert p.returncode == 1, show(p)
    assert "the inventory is busy with another node" in p.stderr and "try again" in p.stderr, \
        show(p)
    assert 9 <= waited < 19, waited
    assert rows(pg, ca.db, "SELECT count(*) FROM duet_certificates") == [
        [str(int(before[0][0]) + 1)]]
    assert rows(pg, ca.db, "SELECT status FROM duet_certificates WHERE serial = '%s'"
                % held) == [["0"]]


def test_one_token_raced_by_two_nodes_yields_one_certificate(pg, pgca, duet_bin):
    ca = pgca
    a, b = serve(duet_bin, ca), serve(duet_bin, ca)
    try:
        for i in range(5):
            tok = make_token(ca, "race%d" % i, "server", "--san", "dns:race%d.corp.example" % i)
            csrs = [make_csr(ca, "race%d-%s" % (i, n))[1] for n in "ab"]
            with concurrent.futures.ThreadPoolExecutor(2) as ex:
                fa = ex.submit(a.request, "POST", "/v1/enroll", {"token": tok, "csr": csrs[0]})
                fb = ex.submit(b.request, "POST", "/v1/enroll", {"token": tok, "csr": csrs[1]})
                res = [fa.result(), fb.result()]
            ok = [r for r in res if r[0] == 200]
            refused = [r for r in res if r[0] != 200]
            assert len(ok) == 1 and len(refused) == 1, res
            assert refused[0][0] == 403 and "already used" in refused[0][2]["detail"], res
            got = rows(pg, ca.db, "SELECT serial FROM duet_certificates WHERE name = 'race%d.corp.example'"
                       % i)
            assert got == [[ok[0][2]["serial"]]]
    finally:
        a.stop()
        b.stop()


def test_a_node_killed_while_enrolling_loses_no_certificate(pg, pgca, duet_bin):
    """Two nodes enroll hosts at once; node A is SIGKILLed halfway.  Every certificate a
    client received is a row, with the very DER it received; no serial twice; node B goes on
    and enrolls what A left, each token exactly once."""
    ca = pgca
    n = 24
    toks = [make_token(ca, "k%02d" % i, "server", "--san", "dns:k%02d.example" % i)
            for i in range(n)]
    csrs = [make_csr(ca, "k%02d" % i)[1] for i in range(n)]
    a, b = serve(duet_bin, ca), serve(duet_bin, ca)
    got = {}

    def enroll(i, node):
        try:
            st, _, ans = node.request("POST", "/v1/enroll", {"token": toks[i], "csr": csrs[i]})
        except (OSError, http.client.HTTPException):
            return i, None
        return i, (st, ans)

    try:
        with concurrent.futures.ThreadPoolExecutor(2) as ex:
            futs = [ex.submit(enroll, i, a if i % 2 == 0 else b) for i in range(n)]
            for k, f in enumerate(concurrent.futures.as_completed(futs)):
                if k == n // 3:
                    a.kill()
                i, res = f.result()
                if res is not None and res[0] == 200:
                    got[i] = res[1]
        # what A never answered, B enrolls now (a token A used is refused as used)
        for i in range(n):
            if i not in got:
                _, res = enroll(i, b)
                assert res is not None, i
                if res[0] == 200:
                    got[i] = res[1]
                else:
                    assert res[0] == 403 and "already used" in res[1]["detail"], res
    finally:
        if a.proc.poll() is None:
            a.stop()
        b.stop()
    db = {r[0]: (r[1], r[2]) for r in rows(
        pg, ca.db, "SELECT serial, name, encode(der, 'hex') FROM duet_certificates "
                   "WHERE name LIKE 'k__.example'")}
    serials = [ans["serial"] for ans in got.values()]
    assert len(set(serials)) == len(serials)
    for i, ans in got.items():
        name, der_hex = db[ans["serial"]]
        assert name == "k%02d.example" % i
        pem = "".join(ans["certificate"].split("-----")[2].split())
        assert der_hex == base64.b64decode(pem).hex()
    # each token yielded at most one certificate, and the used ones name theirs
    used = rows(pg, ca.db, "SELECT name, serial FROM duet_tokens WHERE serial IS NOT NULL")
    assert len(used) == len({r[0] for r in used}) == len(db)
    # at most those A was answering when killed (two threads: two) never reached their client
    assert len(got) >= n - 2


def test_two_processes_issue_in_parallel_without_reusing_a_serial(pg, pgca):
    ca = pgca

    def issue(i):
        return ca.issue("par%03d" % i, "server", "--san", "dns:par%03d.example" % i)

    with concurrent.futures.ThreadPoolExecutor(2) as ex:
        results = list(ex.map(issue, range(100)))
    serials = []
    for p in results:
        assert p.returncode == 0, show(p)
        serials.append(re.search(r"serial ([0-9A-F:]+)", p.stdout).group(1))
    assert len(set(serials)) == 100
    db = {r[0]: r[1] for r in rows(pg, ca.db, "SELECT serial, name FROM duet_certificates "
                                              "WHERE profile = 'server'")}
    assert len(db) == 100
    for i, s in enumerate(serials):
        assert db[s] == "par%03d.example" % i
        # the certificate on disk is the one recorded
        der = openssl("x509", "-in", ca.out / ("par%03d.crt" % i), "-outform", "DER").stdout
        assert rows(pg, ca.db, "SELECT encode(der, 'hex') FROM duet_certificates WHERE "
                               "serial = '%s'" % s) == [[der.hex()]]


def test_crl_numbers_grow_across_two_processes(pg, pgca):
    ca = pgca

    def gen(i):
        out = ca.base / ("crl%02d.pem" % i)
        p = ca.crl(out)
        assert p.returncode == 0, show(p)
        txt = openssl("crl", "-in", out, "-noout", "-text").stdout.decode()
        return int(re.search(r"X509v3 CRL Number: *\n *(\d+)", txt).group(1))

    with concurrent.futures.ThreadPoolExecutor(2) as ex:
        numbers = list(ex.map(gen, range(20)))
    assert len(set(numbers)) == 20, numbers
    last = int(pg.sql("SELECT crl_number FROM duet_meta", db=ca.db))
    assert last == max(numbers)
    assert gen(99) == last + 1


def served_crl(node):
    """(CRL number, DER, text) of the CRL a node serves now, as openssl reads it."""
    st, resp, der = node.request("GET", "/crl", tls=False)
    assert st == 200 and resp.getheader("Content-Type") == "application/pkix-crl", (st, der)
    p = openssl("crl", "-inform", "DER", "-noout", "-text", inp=der)
    assert p.returncode == 0, p.stderr
    txt = p.stdout.decode()
    return int(re.search(r"X509v3 CRL Number: *\n *(\d+)", txt).group(1)), der, txt


def lists(txt, serial):
    return serial.replace(":", "") in txt.replace(":", "").upper()


def holder_revokes(node, crt, key, serial):
    st, _, ans = node.request("POST", "/v1/revoke", {"serial": serial, "reason": "superseded"},
                              cert=crt, key=key)
    assert st == 200 and ans["serial"] == serial, ans


@pytest.fixture(params=["postgres", "sqlite"])
def anyca(request, make_ca):
    """A CA on PostgreSQL, or on one SQLite file (several processes on one machine)."""
    if request.param == "sqlite":
        return make_ca("Lite Nodes")
    return request.getfixturevalue("pgca")


def test_a_revocation_on_one_node_is_in_the_next_crl_of_the_other(anyca, duet_bin):
    ca = anyca
    a, b = serve(duet_bin, ca), serve(duet_bin, ca)
    try:
        # both serve one document: the second node took the CRL the first one signed
        na, da, _ = served_crl(a)
        nb, db, _ = served_crl(b)
        assert (na, da) == (nb, db)
        # the holder revokes through node A: node B's very next CRL lists it, numbered >= A's
        crt, key, serial = ca.issued("gone", "server", "--san", "dns:gone.example")
        holder_revokes(a, crt, key, serial)
        nb2, db2, tb2 = served_crl(b)
        na2, da2, ta2 = served_crl(a)
        assert lists(tb2, serial) and lists(ta2, serial), tb2
        assert nb2 > nb and nb2 >= na2 and (na2, da2) == (nb2, db2)
        # a revocation by `duet cert revoke` (no node involved): both next CRLs list it
        _, _, other = ca.issued("other", "server", "--san", "dns:other.example")
        p = ca.duet("cert", "revoke", other, "--ca-dir", ca.dir)
        assert p.returncode == 0, show(p)
        nb3, db3, tb3 = served_crl(b)
        na3, da3, ta3 = served_crl(a)
        assert lists(tb3, other) and lists(tb3, serial) and nb3 > nb2
        assert (na3, da3) == (nb3, db3)
        # one of the two signed it, the other took it from the inventory, saying so
        took = [x for x in b.lines() + a.lines() if x.get("event") == "ca_crl" and
                "published in the inventory by another process" in x.get("msg", "")]
        assert took, b.lines()[-5:]
    finally:
        a.stop()
        b.stop()


def test_crl_numbers_seen_polling_two_nodes_never_go_backwards(pg, pgca, duet_bin):
    ca = pgca
    a, b = serve(duet_bin, ca), serve(duet_bin, ca)
    certs = [ca.issued("r%02d" % i, "server", "--san", "dns:r%02d.example" % i)
             for i in range(12)]
    stop = [False]
    seen = []

    def poll():
        # fetched in turn from each node while revocations go on; read by openssl afterwards
        while not stop[0]:
            for node in (a, b):
                st, _, der = node.request("GET", "/crl", tls=False)
                assert st == 200, der
                seen.append(der)

    try:
        with concurrent.futures.ThreadPoolExecutor(3) as ex:
            poller = ex.submit(poll)
            # revocations alternate between the nodes, two at a time
            revs = [ex.submit(holder_revokes, (a, b)[i % 2], crt, key, serial)
                    for i, (crt, key, serial) in enumerate(certs)]
            for f in revs:
                f.result()
            stop[0] = True
            poller.result()
        numbers = []
        for der in seen:
            p = openssl("crl", "-inform", "DER", "-noout", "-crlnumber", inp=der)
            assert p.returncode == 0, p.stderr
            numbers.append(int(p.stdout.decode().split("=")[1], 16))
        assert len(numbers) > 10 and len(set(numbers)) > 2, numbers
        assert numbers == sorted(numbers), numbers
        seen = numbers
        # in the end, both serve one document listing every revocation
        na, da, ta = served_crl(a)
        nb, db, _ = served_crl(b)
        assert (na, da) == (nb, db) and na >= seen[-1]
        for _, _, serial in certs:
            assert lists(ta, serial), serial
        assert int(pg.sql("SELECT number FROM duet_crl", db=ca.db)) == na
    finally:
        a.stop()
        b.stop()


def test_a_restarted_node_serves_the_newest_crl(pg, pgca, duet_bin):
    ca = pgca
    a, b = serve(duet_bin, ca), serve(duet_bin, ca)
    try:
        n0, _, _ = served_crl(b)
        b.kill()
        for i in range(3):
            crt, key, serial = ca.issued("late%d" % i, "server", "--san", "dns:late%d.example" % i)
            holder_revokes(a, crt, key, serial)
        na, da, ta = served_crl(a)
        assert na > n0 and lists(ta, serial)
        b.start()
        nb, db, _ = served_crl(b)
        assert (nb, db) == (na, da)
    finally:
        a.stop()
        b.stop()


def test_an_agent_renews_through_node_b_when_node_a_is_killed(pg, pgca, duet_bin, tmp_path):
    """`duet agent` with both nodes in ca_url: enrolled through A; A is SIGKILLed; at its
    renewal time the agent renews through B, and the inventory links the two certificates."""
    ca = pgca
    nodes = []
    for name in "ab":
        node = CAServer(duet_bin, ca, "--admin-identity", "dns:admin.corp.example")
        node.log = ca.base / ("node-%s.jsonl" % name)
        nodes.append(node.start())
    a, b = nodes
    try:
        st, _, desc = a.request("GET", "/v1/ca")
        assert st == 200, desc
        host = tmp_path / "host"
        host.mkdir()
        (host / "token").write_text(
            make_token(ca, "web", "server", "--san", "dns:web.example") + "\n")
        cfg = tmp_path / "agent.yaml"
        cfg.write_text(
            "ca_url: [https://127.0.0.1:%d, https://127.0.0.1:%d]\n"
            "root_fingerprint: \"%s\"\n"
            "state_dir: %s/state\n"
            "log: %s/agent.log\n"
            "certificates:\n"
            "  - name: web\n"
            "    cert: %s/web.crt\n"
            "    key: %s/web.key\n"
            "    chain: %s/chain.pem\n"
            "    roots: %s/roots.pem\n"
            "    crl: %s/crl.pem\n"
            "    token_file: %s/token\n"
            % ((a.port, b.port, desc["root_sha256"]) + (host,) * 8))

        def serial_on_disk():
            out = openssl("x509", "-in", host / "web.crt", "-noout", "-serial").stdout.decode()
            return out.strip().split("=")[1].lstrip("0")

        def requests(node, path):
            return [x for x in node.lines() if x["event"] == "ca_request" and x["path"] == path]

        p = ca.duet("agent", "--config", cfg, "--once")
        assert p.returncode == 0, show(p)
        first = serial_on_disk()
        assert [x["status"] for x in requests(a, "/v1/enroll")] == [200]
        a.kill()
        # its renewal time has come (as if two thirds of the lifetime had passed)
        state = host / "state" / "web.json"
        js = json.loads(state.read_text())
        js["renew_after"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 2))
        state.write_text(json.dumps(js))
        p = ca.duet("agent", "--config", cfg, "--once")
        assert p.returncode == 0, show(p)
        second = serial_on_disk()
        assert second != first
        assert [x["status"] for x in requests(b, "/v1/renew")] == [200]
        assert requests(a, "/v1/renew") == []
        got = rows(pg, ca.db, "SELECT replace(serial, ':', ''), replace(renews, ':', '') FROM "
                              "duet_certificates WHERE name = 'web.example' ORDER BY issued_at, "
                              "renews NULLS FIRST")
        assert [[x.lstrip("0") for x in r] for r in got] == [[first, ""], [second, first]], got
    finally:
        b.stop()


def test_the_sqlite_default_is_unchanged(make_ca):
    ca = make_ca("Lite Corp")
    assert (ca.dir / "inventory.db").exists()
    assert "store:" not in (ca.dir / "ca.yaml").read_text()
    p = ca.init("--store", "mysql://x")
    assert p.returncode == 2 and "--store: expected sqlite or a PostgreSQL URL" in p.stderr


def test_store_key_in_ca_yaml_is_checked(make_ca):
    ca = make_ca("Yaml Corp")
    y = ca.dir / "ca.yaml"
    y.write_text(y.read_text() + 'store: "mysql://root:hunter2@db/x"\n')
    p = ca.duet("cert", "list", "--ca-dir", ca.dir)
    assert p.returncode == 1, show(p)
    assert "store: expected sqlite or a PostgreSQL URL" in p.stderr
    assert "hunter2" not in p.stderr


def crl_number(path):
    txt = openssl("crl", "-in", path, "-noout", "-text").stdout.decode()
    return int(re.search(r"X509v3 CRL Number: *\n *(\d+)", txt).group(1))


def test_migrate_copies_and_verifies_the_sqlite_inventory(pg, make_ca):
    ca = make_ca("Move Corp")
    _, _, kept = ca.issued("kept", "server", "--san", "dns:kept.example", "--owner", "ops")
    _, _, gone = ca.issued("gone", "server", "--san", "dns:gone.example")
    p = ca.duet("cert", "revoke", gone, "--ca-dir", ca.dir, "--reason", "superseded")
    assert p.returncode == 0, show(p)
    # a renewal with a shorter life: the new row sorts before the one it renews
    out = ca.base / "renewed"
    out.mkdir()
    p = ca.duet("cert", "renew", kept, "--ca-dir", ca.dir, "--out", out, "--ttl", "1h",
                "--passphrase-file", ca.passfile)
    assert p.returncode == 0, show(p)
    used = make_token(ca, "used", "server", "--san", "dns:used.example")
    _, csr = make_csr(ca, "used")
    (ca.base / "used.csr").write_text(csr)
    p = ca.duet("cert", "sign", ca.base / "used.csr", "--token", used, "--ca-dir", ca.dir,
                "--out", ca.base / "used.crt", "--passphrase-file", ca.passfile)
    assert p.returncode == 0, show(p)
    unused = make_token(ca, "later", "server", "--san", "dns:later.example")
    for i in range(3):
        assert ca.crl(ca.base / ("before%d.crl" % i)).returncode == 0
    last = crl_number(ca.base / "before2.crl")
    before = sorted(ca.list(), key=lambda r: r["serial"])
    sqlite_bytes = (ca.dir / "inventory.db").read_bytes()

    url, db = pg.new_database()
    pw_url = url.replace("postgres@", "%s:%s@" % (pgcluster.PASSWORD_ROLE, pgcluster.PASSWORD))
    p = ca.duet("ca", "migrate", "--ca-dir", ca.dir, "--to", pw_url)
    assert p.returncode == 0, show(p)
    assert pgcluster.PASSWORD not in p.stdout + p.stderr
    assert ("copied %d certificates and 2 tokens to postgres://%s:***@127.0.0.1:%d/%s (CRL "
            "number %d); verified: the count and every serial match"
            % (len(before), pgcluster.PASSWORD_ROLE, pg.port, db, last)) in p.stdout, show(p)
    yaml = (ca.dir / "ca.yaml").read_text()
    assert pgcluster.PASSWORD not in yaml
    assert 'store: "postgres://%s@127.0.0.1:%d/%s"' % (pgcluster.PASSWORD_ROLE, pg.port,
                                                       db) in yaml
    # the SQLite file is left as it was (a backup up to the migration)
    assert (ca.dir / "inventory.db").read_bytes() == sqlite_bytes
    # the database holds every serial with its DER
    db_rows = rows(pg, db, "SELECT serial, status, renews, renewed_by FROM duet_certificates")
    assert sorted(r[0] for r in db_rows) == [r["serial"] for r in before]
    renewal = [r for r in db_rows if r[2] == kept]
    assert len(renewal) == 1 and [r[3] for r in db_rows if r[0] == kept] == [renewal[0][0]]
    assert [r[1] for r in db_rows if r[0] == gone] == ["1"]
    # the CA now works on PostgreSQL, with the same inventory as before
    env = {"PGPASSWORD": pgcluster.PASSWORD}
    p = ca.duet("cert", "list", "--ca-dir", ca.dir, "--format", "json", env=env)
    assert p.returncode == 0, show(p)
    after = sorted(json.loads(p.stdout), key=lambda r: r["serial"])
    assert len(after) == len(before)
    for a, b in zip(after, before):
        # days_left is counted from now, which moved on
        assert {k: (a.get(k), b.get(k)) for k in set(a) | set(b)
                if a.get(k) != b.get(k) and k != "days_left"} == {}
    # CRL numbers go on from SQLite's
    p = ca.duet("crl", "generate", "--ca-dir", ca.dir, "--out", ca.base / "after.crl",
                "--passphrase-file", ca.passfile, env=env)
    assert p.returncode == 0, show(p)
    assert crl_number(ca.base / "after.crl") == last + 1
    # the used token stays used, the unused one still works once
    p = ca.duet("cert", "sign", ca.base / "used.csr", "--token", used, "--ca-dir", ca.dir,
                "--out", ca.base / "used2.crt", "--passphrase-file", ca.passfile, env=env)
    assert p.returncode == 1 and "already used" in p.stderr, show(p)
    _, csr = make_csr(ca, "later")
    (ca.base / "later.csr").write_text(csr)
    p = ca.duet("cert", "sign", ca.base / "later.csr", "--token", unused, "--ca-dir", ca.dir,
                "--out", ca.base / "later.crt", "--passphrase-file", ca.passfile, env=env)
    assert p.returncode == 0, show(p)
    # a second migration is refused: the CA is on PostgreSQL now
    p = ca.duet("ca", "migrate", "--ca-dir", ca.dir, "--to", url, env=env)
    assert p.returncode == 1 and "on PostgreSQL already" in p.stderr, show(p)


def test_migrate_into_a_database_holding_an_inventory_is_refused(pg, pgca, make_ca):
    ca = make_ca("Late Corp")
    ca.issued("x", "server", "--san", "dns:x.example")
    yaml = (ca.dir / "ca.yaml").read_text()
    p = ca.duet("ca", "migrate", "--ca-dir", ca.dir, "--to", pgca.url)
    assert p.returncode == 1, show(p)
    assert "already holds a duet inventory" in p.stderr, show(p)
    assert (ca.dir / "ca.yaml").read_text() == yaml
    assert len(rows(pg, pgca.db, "SELECT serial FROM duet_certificates")) == 1
