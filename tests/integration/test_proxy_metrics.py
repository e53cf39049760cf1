# SPDX-License-Identifier: Apache-2.0
"""/metrics, /healthz and /readyz of `duet proxy`'s admin listener, as Prometheus and a load
balancer read them.

The page is parsed strictly as the text exposition format 0.0.4: every sample line is
`name{label="value",...} value`, every family has exactly one HELP and one TYPE before its
samples, its samples are contiguous, no label is empty (Prometheus reads reason="" as no label).
The handshake counter carries the listener; certificate and CRL times are absolute Unix times
equal to the files' own; duet_build_info says the version and OpenSSL; /healthz and /readyz
are text/plain.
"""

import math
import re
import shutil
import struct
import subprocess
from datetime import datetime, timezone
from pathlib import Path

import pytest

from proxyutil import (admin_get, free_port, metrics, openssl, refused_attempt,
                       start_http_proxy, client_context, wait_metric)
from test_proxy_h2 import (CANCEL, ENHANCE_YOUR_CALM, GOAWAY, HEADERS, END_HEADERS, END_STREAM,
                           PROTOCOL_ERROR, RST_STREAM, RawH2, curl, frame, good, hpack, rst_code,
                           url)

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:\\[\\"n]|\\\\x[0-9a-f]{2}|[^"\\\n])*"'
SAMPLE = re.compile(r"^(%s)(\{%s(?:,%s)*\})? (\S+)$" % (NAME, LABEL, LABEL))
VALUE = re.compile(r"^(?:[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?|[+-]Inf|NaN)$")
SUFFIXES = {"histogram": ("_bucket", "_sum", "_count"), "summary": ("_sum", "_count", "")}


def parse_strict(text):
    """{family: {"type", "help", "samples": [(name, {labels}, value)]}}; asserts the format."""
    assert text.endswith("\n"), "the page ends with a newline"
    families, order, current = {}, [], None
    for n, line in enumerate(text.splitlines(), 1):
        where = "line %d: %r" % (n, line)
        assert line != "", "empty line at " + where
        if line.startswith("# HELP ") or line.startswith("# TYPE "):
            kind, fam, rest = line[2:6], *line[7:].split(" ", 1)
            assert re.fullmatch(NAME, fam), where
            f = families.setdefault(fam, {"type": None, "help": None, "samples": []})
            assert f["samples"] == [], "HELP/TYPE after samples of %s at %s" % (fam, where)
            key = "help" if kind == "HELP" else "type"
            assert f[key] is None, "a second %s for %s at %s" % (kind, fam, where)
            f[key] = rest
            if kind == "TYPE":
                assert rest in ("counter", "gauge", "histogram", "summary", "untyped"), where
            if fam not in order:
                order.append(fam)
            current = fam
            continue
        assert not line.startswith("#"), "stray comment at " + where
        m = SAMPLE.match(line)
        assert m, "not name{labels} value at " + where
        name, labels, value = m.groups()
        assert VALUE.match(value), "bad value at " + where
        fam = current
        f = families.get(fam)
        assert f is not None and f["type"] is not None, "sample before any TYPE at " + where
        allowed = [fam + s for s in SUFFIXES.get(f["type"], ("",))]
        assert name in allowed, "%s is not of the family %s being written at %s" % (
            name, fam, where)
        pairs = dict(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:\\.|[^"\\])*)"', labels or ""))
        for k, v in pairs.items():
            assert v != "", "empty label %s at %s" % (k, where)
        f["samples"].append((name, pairs, float(value)))
    for fam, f in families.items():
        assert f["help"] and f["type"], "%s lacks HELP or TYPE" % fam
        assert f["samples"], "%s has HELP/TYPE but no sample" % fam
        series = [(s[0], tuple(sorted(s[1].items()))) for s in f["samples"]]
        assert len(series) == len(set(series)), "a series twice in %s" % fam
    return families


def sample(fams, name, **labels):
    fam = fams[name]
    got = [v for n, lab, v in fam["samples"]
           if n == name and all(lab.get(k) == v2 for k, v2 in labels.items())]
    assert len(got) == 1, (name, labels, fam["samples"])
    return got[0]


def not_after(path, field="-enddate"):
    out = openssl("x509" if field == "-enddate" else "crl", "-in", path, "-noout", field)
    text = out.strip().split("=", 1)[1]
    return datetime.strptime(text, "%b %d %H:%M:%S %Y %Z").replace(
        tzinfo=timezone.utc).timestamp()


@pytest.fixture(scope="module")
def px(dpki, module_procs, tmp_path_factory, echo):
    admin = free_port()
    p = start_http_proxy(dpki, module_procs, tmp_path_factory.mktemp("metrics"), echo.port,
                         extra_args=("--admin", "127.0.0.1:%d" % admin))
    p.admin = admin
    # One handshake of each kind: allowed, a client of another CA, no certificate.
    assert curl(dpki, url(p, "/public/x"))[0] == 200
    refused_attempt(p.port, client_context(dpki.roots, dpki.eve_crt, dpki.eve_key))
    refused_attempt(p.port, client_context(dpki.roots))
    wait_metric(admin, 'duet_handshakes_total{listener="web",result="failed",reason="no_cert"}',
                1)
    return p


def scrape(px):
    import http.client
    c = http.client.HTTPConnection("127.0.0.1", px.admin, timeout=5)
    c.request("GET", "/metrics")
    r = c.getresponse()
    body = r.read().decode()
    c.close()
    assert r.status == 200
    return r.getheader("Content-Type"), body


def test_metrics_page_is_strict_exposition_format(px):
    ctype, body = scrape(px)
    assert ctype == "text/plain; version=0.0.4"
    fams = parse_strict(body)
    assert 'reason=""' not in body and '=""' not in body
    assert fams["duet_handshakes_total"]["type"] == "counter"
    assert fams["duet_handshake_duration_seconds"]["type"] == "histogram"


def test_handshakes_carry_the_listener_and_no_empty_reason(px):
    fams = parse_strict(scrape(px)[1])
    hs = fams["duet_handshakes_total"]["samples"]
    assert all(lab.get("listener") == "web" for _, lab, _ in hs), hs
    ok = [(lab, v) for _, lab, v in hs if lab["result"] == "ok"]
    assert len(ok) == 1 and "reason" not in ok[0][0] and ok[0][1] >= 1, ok
    assert sample(fams, "duet_handshakes_total", result="failed", reason="unknown_ca") >= 1
    assert sample(fams, "duet_handshakes_total", result="failed", reason="no_cert") >= 1
    # Every reason exists from the start, at 0 until it happens: rate() has a first sample.
    assert sample(fams, "duet_handshakes_total", result="failed", reason="expired") == 0


def test_build_info(px, duet_bin):
    fams = parse_strict(scrape(px)[1])
    [(name, lab, v)] = fams["duet_build_info"]["samples"]
    assert v == 1 and fams["duet_build_info"]["type"] == "gauge"
    version = subprocess.run([str(duet_bin), "--version"], capture_output=True,
                             text=True).stdout
    assert lab["version"] in version, (lab, version)
    ossl = subprocess.run(["openssl", "version"], capture_output=True, text=True).stdout
    assert lab["openssl"] and lab["openssl"].split()[0] in ossl, (lab, ossl)


def test_certificate_and_crl_times_are_absolute(px, dpki):
    fams = parse_strict(scrape(px)[1])
    got = [(lab, v) for _, lab, v in
           fams["duet_certificate_not_after_timestamp_seconds"]["samples"]
           if lab["file"] == str(dpki.server_crt)]
    assert got, fams["duet_certificate_not_after_timestamp_seconds"]
    lab, v = got[0]
    assert lab["listener"] == "web" and "localhost" in lab["subject"]
    assert v == not_after(dpki.server_crt)
    # crl.pem holds a CRL per CA of the chain, one series each (by issuer); openssl reads
    # the first.
    crl = [v for _, lab, v in fams["duet_crl_next_update_timestamp_seconds"]["samples"]
           if lab["file"] == str(dpki.crl)]
    assert not_after(dpki.crl, "-nextupdate") in crl, crl
    this = [v for _, lab, v in fams["duet_crl_this_update_timestamp_seconds"]["samples"]
            if lab["file"] == str(dpki.crl)]
    assert not_after(dpki.crl, "-lastupdate") in this and len(this) == len(crl), this
    # The older seconds-until gauge is still there (deprecated, documented).
    assert "Deprecated" in fams["duet_certificate_expiry_seconds"]["help"]


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_health_endpoints_are_plain_text(px, path):
    import http.client
    c = http.client.HTTPConnection("127.0.0.1", px.admin, timeout=5)
    c.request("GET", path)
    r = c.getresponse()
    body = r.read().decode()
    c.close()
    assert r.status == 200, body
    assert r.getheader("Content-Type") == "text/plain; charset=utf-8"
    if path == "/healthz":
        assert body == "ok\n"
    else:
        assert "web: upstream reachable" in body


def test_promtool_accepts_the_page(px):
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool is not installed (scripts/deps.sh installs prometheus)",
                    pytrace=False)
    _, body = scrape(px)
    p = subprocess.run([promtool, "check", "metrics"], input=body, capture_output=True,
                       text=True, timeout=60)
    # promtool parses strictly (exit 1 on a parse error) and lints names; the lint findings
    # it prints are listed for whoever reads the failure.
    assert "error while linting" not in p.stderr and "text format parsing error" not in (
        p.stdout + p.stderr), p.stdout + p.stderr


def test_request_and_stream_series_are_named_as_ever_and_only_those_that_counted(
        dpki, procs, tmp_path, echo):
    """The per-request counters are found once per listener and cached (metrics_slot_count):
    each HTTP/1.1 and HTTP/2 request, HTTP/2 stream and reset still lands in the series of its
    labels, and a status or reset reason that never happened has no series (none made at 0)."""
    admin = free_port()
    p = start_http_proxy(dpki, procs, tmp_path, echo.port,
                         extra_args=("--admin", "127.0.0.1:%d" % admin))
    assert curl(dpki, url(p, "/public/h2"), "--http2")[0] == 200
    assert curl(dpki, url(p, "/denied"), "--http2")[0] == 403
    assert curl(dpki, url(p, "/public/h1"), "--http1.1")[0] == 200
    assert curl(dpki, url(p, "/denied"), "--http1.1")[0] == 403
    c = RawH2(dpki, p.port)
    try:
        # A body announced and never sent: the stream stays open until the client resets it.
        c.request(1, [(":method", "POST"), (":scheme", "https"),
                      (":authority", "localhost:%d" % p.port), (":path", "/public/held"),
                      ("content-length", "10")], end_stream=False)
        c.send(frame(RST_STREAM, 0, 1, struct.pack(">I", CANCEL)))
        c.request(3, good(port=p.port) + [("X-Upper", "1")])  # malformed: the proxy resets it
        f = c.wait_for(lambda f: f[0] == RST_STREAM and f[2] == 3)
        assert f is not None and rst_code(f) == PROTOCOL_ERROR, f
        c.request(5, good("/public/raw", p.port))
        f = c.wait_for(lambda f: f[0] == HEADERS and f[2] == 5)
        assert f is not None, "no answer to a good request after two reset streams"
    finally:
        c.close()
    m = wait_metric(admin, 'duet_h2_stream_resets_total{listener="web",reason="error"}', 1)
    h2 = ',proto="h2",upstream_proto="http/1.1"}'
    want = {
        'duet_requests_total{listener="web",code="200"' + h2: 2,
        'duet_requests_total{listener="web",code="403"' + h2: 1,
        'duet_requests_total{listener="web",code="200"}': 1,
        'duet_requests_total{listener="web",code="403"}': 1,
        'duet_h2_streams_total{listener="web"}': 5,
        'duet_h2_stream_resets_total{listener="web",reason="client"}': 1,
        'duet_h2_stream_resets_total{listener="web",reason="cancel"}': 1,
        'duet_h2_stream_resets_total{listener="web",reason="error"}': 1,
    }
    counted = {k: v for k, v in m.items()
               if k.split("{")[0] in ("duet_requests_total", "duet_h2_streams_total",
                                      "duet_h2_stream_resets_total")}
    assert counted == want
    # A rapid-reset burst: its own reason, once for the connection.
    c = RawH2(dpki, p.port)
    try:
        c.send(b"".join(frame(HEADERS, END_HEADERS | END_STREAM, 1 + 2 * i,
                              hpack(good("/public/rr", p.port))) +
                        frame(RST_STREAM, 0, 1 + 2 * i, struct.pack(">I", CANCEL))
                        for i in range(150)))
        f = c.wait_for(lambda f: f[0] == GOAWAY, timeout=15)
        assert f is not None and int.from_bytes(f[3][4:8], "big") == ENHANCE_YOUR_CALM, f
    finally:
        c.close()
    m = wait_metric(admin,
                    'duet_h2_stream_resets_total{listener="web",reason="rapid_reset_goaway"}', 1)
    reasons = sorted(k for k in m if k.startswith("duet_h2_stream_resets_total"))
    assert reasons == ['duet_h2_stream_resets_total{listener="web",reason="%s"}' % r
                       for r in ("cancel", "client", "error", "rapid_reset_goaway")], reasons
