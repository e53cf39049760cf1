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


def test_bench_h2_keeps_many_streams_on_few_connections(run, setup):
    """Every request counted done is one the proxy served over HTTP/2 (its own counter)."""
    from proxyutil import metrics
    pki, d = setup
    def served_h2():  # whatever other labels the series carry (the upstream's protocol)
        return sum(v for k, v in metrics(d.admin).items()
                   if k.startswith("duet_requests_total{") and 'listener="proxy"' in k and
                   'code="200"' in k and 'proto="h2"' in k)

    before = served_h2()
    p = bench(run, pki, d, "--cert", pki.alice_crt, "--key", pki.alice_key, "--mode", "h2",
              "--concurrency", "2", "--streams", "10")
    assert p.returncode == 0, p.stdout + p.stderr
    r = json.loads(p.stdout)
    assert r["mode"] == "h2" and r["streams"] == 10 and r["errors_total"] == 0, r
    assert r["completed"] > 0 and 0 < r["latency_ms"]["p50"] <= r["latency_ms"]["max"], r
    served = served_h2() - before
    assert served >= r["completed"], (served, r)


def test_bench_h2_counts_refused_streams_by_status(run, setup):
    pki, d = setup
    p = bench(run, pki, d, "--cert", pki.bob_crt, "--key", pki.bob_key, "--mode", "h2",
              "--concurrency", "1", "--streams", "5")
    assert p.returncode == 1
    r = json.loads(p.stdout)
    assert r["completed"] == 0 and "HTTP 403" in r["errors"], r["errors"]


def test_bench_h2_against_a_server_without_h2_says_so(run, setup, tmp_path):
    pki, _ = setup
    procs = Procs(tmp_path)
    try:
        d = start_duet(procs, pki.duet_bin, tmp_path / "h1", "proxy",
                       proxy_args(pki, "127.0.0.1:9", "--allow", "any", "--alpn", "http/1.1"),
                       "h1only")
        p = bench(run, pki, d, "--cert", pki.alice_crt, "--key", pki.alice_key, "--mode", "h2",
                  "--concurrency", "1")
    finally:
        procs.close()
    assert p.returncode == 1, p.stdout + p.stderr
    r = json.loads(p.stdout)
    assert r["errors"] == {"the server did not choose h2 (ALPN)": 1}, r


def test_bench_h2_refuses_a_payload(run, setup):
    pki, d = setup
    p = bench(run, pki, d, "--mode", "h2", "--payload", "x")
    assert p.returncode == 2 and "--payload is raw TCP" in p.stderr, p.stderr


H2_NGINX = """\
daemon off;
master_process off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log info;
events {{ worker_connections 256; }}
http {{
    access_log {d}/access.log;
    client_body_temp_path {d}; proxy_temp_path {d}; fastcgi_temp_path {d};
    uwsgi_temp_path {d}; scgi_temp_path {d};
    server {{
        listen 127.0.0.1:{port} ssl http2;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        ssl_client_certificate {roots};
        ssl_verify_client on;
        ssl_verify_depth 2;
        ssl_protocols TLSv1.2 TLSv1.3;
        keepalive_requests 50;
        location / {{ return 200 "ok\\n"; }}
    }}
}}
"""


def test_bench_h2_goes_on_after_the_servers_goaway(run, setup, tmp_path):
    """nginx ends an HTTP/2 connection (GOAWAY) after 50 requests: the streams it refused
    unprocessed are not errors, and a new connection carries on."""
    from proxyutil import free_port, wait_port
    from test_probe import tool
    pki, _ = setup
    port = free_port()
    conf = tmp_path / "nginx.conf"
    conf.write_text(H2_NGINX.format(d=tmp_path, port=port, cert=pki.server_crt,
                                    key=pki.server_key, roots=pki.roots))
    procs = Procs(tmp_path)
    try:
        p = procs.start([tool("nginx", "nginx"), "-p", tmp_path, "-c", conf,
                         "-e", tmp_path / "error.log"], "nginx")
        wait_port(port, p)
        r = run("bench", "--target", "127.0.0.1:%d" % port, "--server-name", "localhost",
                "--cacert", pki.roots, "--cert", pki.alice_crt, "--key", pki.alice_key,
                "--mode", "h2", "--concurrency", "1", "--streams", "10", "--threads", "1",
                "--duration", "2s", "--warmup", "0s", "--format", "json")
    finally:
        procs.close()
    assert r.returncode == 0, r.stdout + r.stderr
    j = json.loads(r.stdout)
    assert j["errors_total"] == 0, j["errors"]
    served = len((tmp_path / "access.log").read_text().splitlines())
    assert j["completed"] > 100, j  # more than two connections' worth
    assert served >= j["completed"], (served, j)
