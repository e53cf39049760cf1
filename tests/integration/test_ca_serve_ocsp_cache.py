# SPDX-License-Identifier: Apache-2.0
"""`duet ca serve` reusing signed OCSP answers (docs/ca-server.md, "OCSP answers reused"),
with the real binary and `openssl ocsp` as the relying party.

A request without a nonce gets the very bytes of the previous answer while nothing changed;
a revocation - by `duet cert revoke` in another process on the same inventory, or over the
API - shows in the next answer at once; a request with a nonce is signed afresh each time with
its nonce echoed; `--ocsp-cache-age` bounds how old a reused answer's thisUpdate may be, and 0
turns reuse off.
"""

import re
import time

import pytest

from conftest import show
from test_ca_serve import CAServer, openssl


@pytest.fixture(scope="module")
def srv(make_ca, duet_bin):
    ca = make_ca("Cache Corp")
    s = CAServer(duet_bin, ca, "--admin-identity", "dns:admin.corp.example").start()
    yield s
    s.stop()


def make_req(ca, crt, name, nonce=False):
    """A DER OCSP request for crt made by openssl, with or without a nonce."""
    req = ca.base / (name + ".req")
    p = openssl("ocsp", "-issuer", ca.issuing, "-cert", crt, "-reqout", req,
                *([] if nonce else ["-no_nonce"]))
    assert p.returncode == 0, p
    return req


def ask(srv, req):
    """POST the request on the plain listener; the DER answer."""
    st, resp, der = srv.request("POST", "/ocsp", req.read_bytes(),
                                ctype="application/ocsp-request", tls=False)
    assert st == 200 and resp.getheader("Content-Type") == "application/ocsp-response"
    return der


def verdict(srv, crt, der, req=None):
    """What `openssl ocsp -respin` says of an answer: (status, thisUpdate text, full output).

    With req, openssl also checks that the answer echoes the request's nonce (-reqin, without
    -cert: with -cert, openssl would build a request of its own, with another nonce)."""
    f = srv.ca.base / "answer.der"
    f.write_bytes(der)
    p = openssl("ocsp", "-respin", f, "-issuer", srv.ca.issuing, "-cert", crt, "-CAfile",
                srv.ca.root, "-no_nonce")
    out = p.stdout.decode() + p.stderr.decode()
    assert p.returncode == 0 and "Response verify OK" in out, out
    m = re.search(r": (good|revoked|unknown)\n", out)
    tu = re.search(r"This Update: (.*)\n", out)
    assert m and tu, out
    if req is not None:
        p = openssl("ocsp", "-reqin", req, "-respin", f, "-CAfile", srv.ca.root)
        nout = p.stdout.decode() + p.stderr.decode()
        assert p.returncode == 0 and "Response verify OK" in nout, nout
        assert "Nonce Verify error" not in nout and "no nonce in response" not in nout, nout
        out += nout
    return m.group(1), tu.group(1), out


def cache_count(srv, result):
    st, _, text = srv.request("GET", "/metrics")
    assert st == 200
    m = re.search(r'^duet_ca_ocsp_cache_total\{result="%s"\} (\d+)' % result, text.decode(), re.M)
    return int(m.group(1)) if m else 0


def test_reused_until_a_cli_revocation_by_another_process(srv):
    ca = srv.ca
    crt, _, serial = ca.issued("cli-revoked", "server", "--san", "dns:cli-revoked.example")
    req = make_req(ca, crt, "cli-revoked")
    hits = cache_count(srv, "hit")
    first = ask(srv, req)
    second = ask(srv, req)
    assert second == first
    assert cache_count(srv, "hit") == hits + 1
    st, tu1, _ = verdict(srv, crt, second)
    assert st == "good"
    # `duet cert revoke` on the CA host, another process, the same inventory
    p = ca.duet("cert", "revoke", serial, "--ca-dir", ca.dir, "--reason", "keyCompromise")
    assert p.returncode == 0, show(p)
    third = ask(srv, req)
    assert third != first
    st, _, out = verdict(srv, crt, third)
    assert st == "revoked" and "Reason: keyCompromise" in out, out
    # and that answer is reused in turn
    assert ask(srv, req) == third


def test_reused_until_an_api_revocation(srv):
    ca = srv.ca
    crt, key, serial = ca.issued("api-revoked", "server", "--san", "dns:api-revoked.example")
    req = make_req(ca, crt, "api-revoked")
    first = ask(srv, req)
    assert ask(srv, req) == first
    assert verdict(srv, crt, first)[0] == "good"
    st, _, ans = srv.request("POST", "/v1/revoke", {"serial": serial, "reason": "superseded"},
                             cert=crt, key=key)
    assert st == 200, ans
    after = ask(srv, req)
    st, _, out = verdict(srv, crt, after)
    assert st == "revoked" and "Reason: superseded" in out, out


def test_an_issuance_by_another_process_forgets_the_answers(srv):
    ca = srv.ca
    crt, _, _ = ca.issued("before-issue", "server", "--san", "dns:before-issue.example")
    req = make_req(ca, crt, "before-issue")
    first = ask(srv, req)
    assert ask(srv, req) == first
    misses = cache_count(srv, "miss")
    ca.issued("another-host", "server", "--san", "dns:another-host.example")
    again = ask(srv, req)
    assert again != first and cache_count(srv, "miss") == misses + 1
    assert verdict(srv, crt, again)[0] == "good"


def test_a_nonce_is_always_answered_fresh_and_echoed(srv):
    ca = srv.ca
    crt, _, _ = ca.issued("nonce-host", "server", "--san", "dns:nonce-host.example")
    plain = make_req(ca, crt, "nonce-plain")
    cached = ask(srv, plain)
    assert ask(srv, plain) == cached
    bypassed = cache_count(srv, "bypass")
    answers = []
    for i in range(2):
        req = make_req(ca, crt, "nonce-%d" % i, nonce=True)
        der = ask(srv, req)
        assert verdict(srv, crt, der, req=req)[0] == "good"
        assert der != cached
        answers.append(der)
    # the same request with a nonce twice: signed twice
    assert ask(srv, req) != answers[-1]
    assert cache_count(srv, "bypass") == bypassed + 3


def test_cache_age_bounds_reuse_and_zero_turns_it_off(make_ca, duet_bin):
    ca = make_ca("Cache Age Corp")
    crt, _, _ = ca.issued("aged", "server", "--san", "dns:aged.example")
    srv = CAServer(duet_bin, ca, "--ocsp-cache-age", "2s").start()
    try:
        req = make_req(ca, crt, "aged")
        first = ask(srv, req)
        assert ask(srv, req) == first
        time.sleep(2.2)
        later = ask(srv, req)
        assert later != first
        assert verdict(srv, crt, later)[1] != verdict(srv, crt, first)[1]
    finally:
        srv.stop()
    srv = CAServer(duet_bin, ca, "--ocsp-cache-age", "0s").start()
    try:
        a, b = ask(srv, req), ask(srv, req)
        assert a != b
        assert verdict(srv, crt, a)[0] == verdict(srv, crt, b)[0] == "good"
        assert cache_count(srv, "hit") == 0 and cache_count(srv, "miss") == 0
    finally:
        srv.stop()
    p = ca.duet("ca", "serve", "--ca-dir", ca.dir, "--listen", "127.0.0.1:1",
                "--ocsp-cache-age", "6m")
    assert p.returncode == 2
    assert '--ocsp-cache-age "6m": expected a duration from 0s (answers never reused) to 5m' \
        in p.stderr, show(p)
