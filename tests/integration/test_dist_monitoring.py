# SPDX-License-Identifier: Apache-2.0
"""The monitoring files in dist/: the Prometheus alert rules load in promtool and fire as their
unit tests say (dist/prometheus-duet-rules.test.yml), the Grafana dashboard is JSON whose
every panel queries Prometheus with an expression promtool parses, and every metric name the
rules and the dashboard use is one a running `duet proxy` exports on /metrics (scraped here
with a CRL, an upstream and OCSP checking in prefer mode, so the series exist).
"""

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from proxyutil import admin_get, free_port, start_http_proxy, wait_metric
from test_proxy_h2 import curl, url

REPO = Path(__file__).resolve().parents[2]
DIST = REPO / "dist"
RULES = DIST / "prometheus-duet-rules.yml"
RULE_TESTS = DIST / "prometheus-duet-rules.test.yml"
DASHBOARD = DIST / "grafana-duet.json"
METRIC = re.compile(r"\bduet_[a-z0-9_]+\b")


def promtool():
    p = shutil.which("promtool")
    if p is None:
        pytest.fail("promtool is not installed (scripts/deps.sh installs prometheus)",
                    pytrace=False)
    return p


def rule_exprs():
    """The expr of every rule, read without a YAML library: `expr:` lines of the file."""
    return [m.group(1).strip() for m in re.finditer(r"^\s+expr:\s*(.+)$", RULES.read_text(), re.M)]


def dashboard_exprs():
    dash = json.loads(DASHBOARD.read_text())
    out = []
    for p in dash["panels"]:
        assert p["datasource"]["type"] == "prometheus", p["title"]
        assert p["targets"], "panel %r has no query" % p["title"]
        for t in p["targets"]:
            assert t["datasource"]["type"] == "prometheus" and t["expr"].strip(), p["title"]
            out.append((p["title"], t["expr"]))
    return dash, out


def test_rules_load_in_promtool():
    p = subprocess.run([promtool(), "check", "rules", str(RULES)], capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "SUCCESS: 5 rules found" in p.stdout, p.stdout


def test_rules_fire_as_their_unit_tests_say():
    p = subprocess.run([promtool(), "test", "rules", str(RULE_TESTS)], capture_output=True,
                       text=True, timeout=60, cwd=DIST)
    assert p.returncode == 0 and "SUCCESS" in p.stdout, p.stdout + p.stderr
    names = {m.group(1) for m in re.finditer(r"alertname: (\w+)", RULE_TESTS.read_text())}
    defined = set(re.findall(r"^\s+- alert: (\w+)$", RULES.read_text(), re.M))
    assert names == defined, "every alert has a unit test: %s" % (defined - names)


def test_dashboard_is_json_with_the_promised_panels():
    dash, exprs = dashboard_exprs()
    assert dash["uid"] == "duet-mtls" and dash["__inputs"][0]["pluginId"] == "prometheus"
    titles = " / ".join(p["title"] for p in dash["panels"]).lower()
    for topic in ("handshakes by result and reason", "requests by status",
                  "certificate days left", "crl age", "ocsp results"):
        assert topic in titles, (topic, titles)
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))


def test_dashboard_queries_parse_as_promql(tmp_path):
    """Each panel query, as a recording rule, through promtool's PromQL parser."""
    _, exprs = dashboard_exprs()
    lines = ["groups:", "  - name: dashboard", "    rules:"]
    for i, (_, e) in enumerate(exprs):
        lines += ["      - record: dashboard:q%d" % i, "        expr: %s" % json.dumps(e)]
    f = tmp_path / "dashboard-as-rules.yml"
    f.write_text("\n".join(lines) + "\n")
    p = subprocess.run([promtool(), "check", "rules", str(f)], capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr


@pytest.fixture(scope="module")
def scraped_names(dpki, module_procs, tmp_path_factory, echo):
    """Metric names on a live proxy's /metrics after one request, with OCSP checking in
    prefer mode against a responder that refuses connections (a fail-open is counted)."""
    admin, dead = free_port(), free_port()
    px = start_http_proxy(dpki, module_procs, tmp_path_factory.mktemp("dist-scrape"), echo.port,
                          extra_yaml="    ocsp: prefer\n    ocsp_url: http://127.0.0.1:%d/\n"
                          % dead, extra_args=("--admin", "127.0.0.1:%d" % admin))
    assert curl(dpki, url(px, "/public/x"))[0] == 200
    status, text = admin_get(admin, "/metrics")
    assert status == 200
    names = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            names.add(line.split()[2])
        elif line and not line.startswith("#"):
            names.add(re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", line).group(0))
    return names


def test_every_metric_in_dist_is_exported(scraped_names):
    used = {}
    for e in rule_exprs():
        for n in METRIC.findall(e):
            used.setdefault(n, "prometheus-duet-rules.yml")
    _, exprs = dashboard_exprs()
    for title, e in exprs:
        for n in METRIC.findall(e):
            used.setdefault(n, "grafana-duet.json: " + title)
    assert len(used) >= 8, used
    missing = {n: where for n, where in used.items() if n not in scraped_names}
    assert missing == {}, "used in dist/ but not on /metrics: %s" % missing
