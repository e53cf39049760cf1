# SPDX-License-Identifier: Apache-2.0
"""`duet proxy` against client certificates under a name-constrained CA (RFC 5280 4.2.1.10).

The client CA is an operator's own OpenSSL-made intermediate that excludes bar.example.com.
A client presenting `*.example.com` from it could be taken for bar.example.com by anything
that matches names, so the handshake is refused with the reason in the log, the same
sentence `duet cert verify` prints; a client with a plain name beside the excluded one gets
through; no certificate is refused as always.
"""

import subprocess

import pytest

from ncpki import NCChain
from proxyutil import (DuetLog, client_context, free_port, https_request, metrics,
                       refused_attempt, wait_metric)

HS_FAILED = 'duet_handshakes_total{listener="proxy",result="failed",reason="%s"}'


@pytest.fixture(scope="module")
def nc(tmp_path_factory):
    return NCChain(tmp_path_factory.mktemp("nc-proxy"), "Excluding CA",
                   ["excluded;DNS:bar.example.com"])


@pytest.fixture(scope="module")
def proxy(dpki, nc, module_procs, echo, tmp_path_factory):
    """HTTP mode in front of the echo upstream, clients from the NC test root only, any
    verified client allowed (the refusal must come from verification, not from a rule)."""
    workdir = tmp_path_factory.mktemp("nc-proxy-run")
    port, admin = free_port(), free_port()
    log = workdir / "proxy.log"
    p = module_procs.start([dpki.duet_bin, "proxy", "--listen", "127.0.0.1:%d" % port,
                            "--target", "127.0.0.1:%d" % echo.port,
                            "--cert", dpki.server_crt, "--key", dpki.server_key,
                            "--cacert", nc.root, "--allow", "any", "--log", log,
                            "--admin", "127.0.0.1:%d" % admin], "nc-proxy")
    dl = DuetLog(log, p, module_procs)
    dl.wait_event("start", timeout=10)
    return port, admin, dl


def cert_verify(dpki, nc, chain):
    p = subprocess.run([str(dpki.duet_bin), "cert", "verify", "--trusted", str(nc.root),
                        "--purpose", "client", str(chain)],
                       capture_output=True, text=True, timeout=30)
    return p.returncode, p.stderr.strip()


def test_wildcard_client_under_an_excluding_ca_is_refused(dpki, nc, proxy, echo):
    port, admin, log = proxy
    chain, key, crt = nc.leaf("wild-client", "wild-client", ["DNS:*.example.com"])
    # The metric and reason_code labels are the coarse set dashboards rely on (tls.h): a
    # name-constraint refusal has its own label, not "other"; the sentence says what it was.
    series = HS_FAILED % "name_constraints"
    other = HS_FAILED % "other"
    before = metrics(admin).get(series, 0)
    other_before = metrics(admin).get(other, 0)
    requests_before = len(echo.requests)
    mark = log.mark()
    kind, detail = refused_attempt(port, client_context(dpki.roots, chain, key))
    assert kind != "response", "a refused client got an answer: %r" % detail
    ev = log.wait_event("handshake", mark, result="failed")
    want = ("certificate CN=wild-client,O=NC Test (serial %s) has the wildcard DNS name "
            "*.example.com, which can stand for names in the excluded subtree "
            "DNS:bar.example.com of the name constraints of CN=Excluding CA,O=NC Test "
            "(serial %s) (RFC 5280 4.2.1.10)" % (nc.serial(crt), nc.serial(nc.inter)))
    assert ev["reason"] == want, ev
    assert ev["reason_code"] == "name_constraints", ev
    # One verification path: the CLI says the same.
    assert cert_verify(dpki, nc, chain) == (1, want)
    wait_metric(admin, series, before + 1)
    assert metrics(admin).get(other, 0) == other_before
    assert log.since(mark, "authz") == []
    assert len(echo.requests) == requests_before


def test_plain_name_beside_the_excluded_one_gets_through(dpki, nc, proxy, echo):
    port, _, log = proxy
    chain, key, _ = nc.leaf("foo-client", "foo-client", ["DNS:foo.example.com"])
    mark = log.mark()
    status, body, conn = https_request(port, "/hello", client_context(dpki.roots, chain, key))
    conn.close()
    assert status == 200, body
    hs = log.wait_event("handshake", mark, result="ok")
    assert hs["identity"]["name"] == "foo.example.com", hs


def test_no_client_certificate_is_refused(dpki, proxy):
    port, _, log = proxy
    mark = log.mark()
    kind, detail = refused_attempt(port, client_context(dpki.roots))
    assert kind != "response", detail
    ev = log.wait_event("handshake", mark, result="failed")
    assert ev["reason_code"] == "no_cert", ev
