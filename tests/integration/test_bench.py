# SPDX-License-Identifier: Apache-2.0
"""`duet bench`: the load generator measures a real mTLS endpoint and reports a refusal as
errors (with the reason) and exit 1, never as a fast success."""

import json

import pytest

from proxyutil import EchoUpstream, Procs, ProxyPKI
from test_proxy import proxy_args, start_duet


@pytest.fixture(scope="module")
def setup(duet_bin, tmp_path_factory):
    pki = ProxyPKI(duet_bin, tmp_path_factory.mktemp("bench-pki"))
    procs = Procs(tmp_path_factory.mktemp("bench-procs"))
    up = EchoUpstream()
    d = start_duet(procs, pki.duet_bin, tmp_path_factory.mktemp("bench"), "proxy",
                   proxy_args(pki, "127.0.0.1:%d" % up.port, "--allow",
                              "uri:spiffe://test-corp/alice", "--failed-handshake-burst",
                              "100000"), "bench")
    yield pki, d
    procs.close()
    up.close()


def bench(run, pki, d, *args):
    return run("bench", "--target", "127.0.0.1:%d" % d.port, "--server-name", "localhost",
               "--cacert", pki.roots, "--threads", "1", "--duration", "1s", "--warmup", "0s",
               "--format", "json", *args)


@pytest.mark.parametrize("mode", ["full", "resume", "keepalive"])
def test_bench_measures_an_accepting_server(run, setup, mode):
    pki, d = setup
    p = bench(run, pki, d, "--cert", pki.alice_crt, "--key", pki.alice_key, "--mode", mode,
              "--concurrency", "2")
    assert p.returncode == 0, p.stdout + p.stderr
    r = json.loads(p.stdout)
    assert r["mode"] == mode and r["completed"] > 0 and r["errors_total"] == 0
    assert r["rate_per_s"] > 0 and 0 < r["latency_ms"]["p50"] <= r["latency_ms"]["max"]
    if mode == "resume":
        assert r["resumed"] > 0, r


def test_bench_idle_holds_connections(run, setup):
    pki, d = setup
    p = bench(run, pki, d, "--cert", pki.alice_crt, "--key", pki.alice_key, "--mode", "idle",
              "--concurrency", "20")
    assert p.returncode == 0, p.stdout + p.stderr
    assert json.loads(p.stdout)["established"] == 20


@pytest.mark.parametrize("who,reason", [
    (None, "certificate required"),
    ("mallory", "certificate revoked"),
])
def test_bench_reports_refusals_as_errors(run, setup, who, reason):
    pki, d = setup
    extra = [] if who is None else ["--cert", getattr(pki, who + "_crt"),
                                    "--key", getattr(pki, who + "_key")]
    p = bench(run, pki, d, "--mode", "full", "--concurrency", "1", *extra)
    assert p.returncode == 1, p.stdout + p.stderr
    r = json.loads(p.stdout)
    assert r["completed"] == 0 and r["errors_total"] > 0
    assert any(reason in k for k in r["errors"]), r["errors"]


def test_bench_reports_policy_refusals_as_http_errors(run, setup):
    pki, d = setup
    p = bench(run, pki, d, "--cert", pki.bob_crt, "--key", pki.bob_key, "--mode", "keepalive",
              "--concurrency", "1")
    assert p.returncode == 1
    r = json.loads(p.stdout)
    assert r["completed"] == 0 and "HTTP 403" in r["errors"], r["errors"]
