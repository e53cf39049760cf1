# SPDX-License-Identifier: Apache-2.0
"""`duet probe` judging the chain a server sends by signatures, as `duet doctor` does: an
impostor intermediate with the real one's name and key identifier (the leaf's authority key
identifier), but another key, passes a match on names and identifiers; probe must say the
leaf is not signed by it, with both certificates named and the fix, in text and JSON alike,
and not that the chain is in order.  The real chain served the same way stays clean.
"""

import json

import pytest

from proxyutil import CA_PASSPHRASE, free_port, openssl, pem_blocks, wait_port
from test_probe import fix_after, probe, show, tool

IMPOSTOR_EXT = """\
[ v3 ]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = {skid}
authorityKeyIdentifier = keyid:always
"""


def skid(cert):
    """The subjectKeyIdentifier of a certificate, as openssl's config takes it (hex)."""
    out = openssl("x509", "-in", cert, "-noout", "-ext", "subjectKeyIdentifier")
    return out.splitlines()[1].strip().replace(":", "")


@pytest.fixture(scope="module")
def impostor(dpki, tmp_path_factory):
    """The issuing CA's name and subjectKeyIdentifier on another key, signed by the real root:
    everything but the signature says it issued the server's leaf."""
    d = tmp_path_factory.mktemp("probe-impostor")
    issuing = dpki.ca / "issuing.crt"
    ext = d / "impostor.cnf"
    ext.write_text(IMPOSTOR_EXT.format(skid=skid(issuing)))
    key = d / "impostor.key"
    openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", key)
    subj = openssl("x509", "-in", issuing, "-noout", "-subject", "-nameopt", "compat")
    subj = subj.strip()[len("subject="):]
    csr = d / "impostor.csr"
    openssl("req", "-new", "-key", key, "-subj", subj, "-out", csr)
    out = d / "impostor.pem"
    openssl("x509", "-req", "-in", csr, "-CA", dpki.ca / "root.crt", "-CAkey",
            dpki.ca / "root.key", "-passin", "env:DUET_CA_PASSPHRASE", "-set_serial", "4242",
            "-days", "30", "-extfile", ext, "-extensions", "v3", "-out", out,
            env=dict(dpki.env, DUET_CA_PASSPHRASE=CA_PASSPHRASE))
    assert skid(out) == skid(issuing)
    return out


def s_server(procs, dpki, tmp_path, chain):
    """openssl s_server sending the server's leaf followed by `chain`."""
    port = free_port()
    leaf = tmp_path / "leaf.crt"
    leaf.write_text(pem_blocks(dpki.server_crt)[0])
    p = procs.start([tool("openssl", "openssl"), "s_server", "-accept", "127.0.0.1:%d" % port,
                     "-cert", leaf, "-key", dpki.server_key, "-cert_chain", chain, "-www",
                     "-quiet"], "s_server")
    wait_port(port, p)
    return port


def test_probe_names_an_impostor_intermediate(run, dpki, procs, tmp_path, impostor):
    port = s_server(procs, dpki, tmp_path, impostor)
    t, doc = probe(run, port, "--cert", dpki.alice_crt, "--key", dpki.alice_key,
                   "--cacert", dpki.roots, "--server-name", "localhost")
    assert t.returncode == 1, show(t)
    out = t.stdout
    assert "order: each certificate is issued by the next one" not in out, out
    problem = ("bad signature: certificate [0] CN=localhost,O=Test Corp is not signed by the "
               "key of certificate [1] CN=Test Corp Issuing CA,O=Test Corp, which carries its "
               "issuer's name: a CA of the same name but another key, so clients refuse the "
               "chain")
    assert problem in out, out
    fix = fix_after(out, "bad signature: certificate [0]")
    assert "the CA that really issued" in fix and "duet cert inspect" in fix, fix
    assert doc["server_chain_order"] == {"verdict": "bad_signature", "index": 0}, doc
    f = [x for x in doc["findings"] if x["step"] == "server_chain"]
    assert len(f) == 1 and f[0]["code"] == "bad_signature" and f[0]["severity"] == "error", doc
    assert f[0]["problem"].startswith(problem), f
    # The one verification path agrees, in the same words as `duet cert verify`.
    v = doc["server_verification"]
    assert v["valid"] is False and v["code"] == "bad_signature", v
    assert "does not verify with the key of its issuer" in v["reason"], v
    assert doc["ok"] is False, doc


def test_probe_real_chain_served_the_same_way_is_in_order(run, dpki, procs, tmp_path):
    chain = tmp_path / "issuing.crt"
    chain.write_text(pem_blocks(dpki.server_crt)[1])
    port = s_server(procs, dpki, tmp_path, chain)
    t, doc = probe(run, port, "--cert", dpki.alice_crt, "--key", dpki.alice_key,
                   "--cacert", dpki.roots, "--server-name", "localhost")
    assert "order: each certificate is issued by the next one" in t.stdout, show(t)
    assert doc["server_chain_order"] == {"verdict": "ok", "index": -1}, doc
    assert doc["server_verification"]["valid"] is True, doc
    assert "bad_signature" not in [x["code"] for x in doc["findings"]], doc
