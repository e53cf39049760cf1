# SPDX-License-Identifier: Apache-2.0
"""Indirect CRLs in `duet proxy` (RFC 5280 5.2.5, 5.3.3, 6.3.3): the same verdicts as
`duet cert verify`, with the reason in the handshake log; and a chain whose CRL is signed by a
certificate other than its trust anchor is answered by the verified-chain cache on repeat."""

import ssl

import pytest

from indirectpki import IndirectPKI
from proxyutil import client_context, metrics
from test_proxy import _get_once, proxy_args, start_duet


@pytest.fixture(scope="module")
def ipki(tmp_path_factory):
    return IndirectPKI(tmp_path_factory.mktemp("indirect-proxy"))


def start(dpki, ipki, procs, echo, tmp_path, *crls):
    args = proxy_args(dpki, "127.0.0.1:%d" % echo.port, "--allow", "any",
                      "--no-session-tickets", crl=crls[0], roots=ipki.root_and_ci)
    for c in crls[1:]:
        args += ["--crl", c]
    return start_duet(procs, dpki.duet_bin, tmp_path / "p", "proxy", args, "indirect")


def refused(d, dpki, ipki, leaf):
    mark = d.log.mark()
    ctx = client_context(dpki.roots, ipki.chain(leaf), ipki.key(leaf))
    with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
        status, _, _ = _get_once(d.port, ctx)
        assert not status.startswith(b"HTTP/1.1 200"), "the client must not get through"
        raise ConnectionError("refused without an exception")
    return d.log.wait_event("handshake", mark, result="failed")


def test_proxy_indirect_crl(dpki, procs, fresh_echo, tmp_path, ipki):
    d = start(dpki, ipki, procs, fresh_echo, tmp_path, ipki.indirect_crl, ipki.root_crl)
    # Issuer A's 0x2001 is revoked; issuer B's 0x2001 is not.
    hs = refused(d, dpki, ipki, ipki.leaf_a1)
    assert "was revoked on" in hs["reason"] and "CN=Ind CRL Issuer" in hs["reason"], hs
    hs = refused(d, dpki, ipki, ipki.leaf_a2)  # certificateIssuer carried over
    assert "was revoked on" in hs["reason"], hs
    # A certificate whose distribution point names no cRLIssuer has no CRL: refused.
    hs = refused(d, dpki, ipki, ipki.leaf_a1_nocdp)
    assert "no CRL from CN=Ind Issuing A,O=Duet Indirect was given" in hs["reason"], hs
    ctx = client_context(dpki.roots, ipki.chain(ipki.leaf_b1), ipki.key(ipki.leaf_b1))
    before = metrics(d.admin).get("duet_chain_cache_hits_total", 0)
    for _ in range(3):
        status, _, _ = _get_once(d.port, ctx)
        assert status == b"HTTP/1.1 200 OK"
    # The CRL's signer is the CRL issuer's certificate from --cacert, not the anchor: the
    # cache's revocation re-check must find it there too, or every handshake is a full one.
    hits = metrics(d.admin).get("duet_chain_cache_hits_total", 0)
    assert hits - before >= 2, "repeat handshakes with one chain should hit the cache"


def test_proxy_indirect_crl_signed_under_another_anchor(dpki, procs, fresh_echo, tmp_path, ipki):
    d = start(dpki, ipki, procs, fresh_echo, tmp_path, ipki.evil_crl, ipki.root_crl)
    hs = refused(d, dpki, ipki, ipki.leaf_b1)
    assert "is not signed by that CA's key" in hs["reason"], hs
