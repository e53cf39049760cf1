# SPDX-License-Identifier: Apache-2.0
"""Path conditions of `duet proxy` rules, through the proxy with curl over HTTP/1.1 and HTTP/2.

`path: /health` is exact (the query aside): /healthz-admin, /health/ and /health/x are other
paths and fall to the default deny.  `path_prefix: /api` is matched by whole segments: /api and
/api/x are under it, /apix is not (before, a prefix of bytes let /apix through).  A rule path
that the request normalisation would rewrite, or one with both keys, is refused by --check with
the key's place in the file.
"""

import subprocess

import pytest

from proxyutil import start_http_proxy
from test_proxy_h2 import curl, url

RULES = """\
      - {name: health, allow: [any], path: /health}
      - {name: alice-api, allow: ["uri:spiffe://test-corp/alice"], path_prefix: /api}
"""


@pytest.fixture(scope="module")
def px(dpki, module_procs, tmp_path_factory, echo):
    return start_http_proxy(dpki, module_procs, tmp_path_factory.mktemp("path-rules"), echo.port,
                            rules=RULES)


CASES = [
    ("/health", 200, "health"),
    ("/health?verbose=1", 200, "health"),
    ("/healthz-admin", 403, "default-deny"),
    ("/health/", 403, "default-deny"),
    ("/health/x", 403, "default-deny"),
    ("/api", 200, "alice-api"),
    ("/api/x", 200, "alice-api"),
    ("/api/x/../y?q=/z", 200, "alice-api"),
    ("/apix", 403, "default-deny"),
    ("/apix?/api/", 403, "default-deny"),
    ("/api/../apix", 403, "default-deny"),
]


@pytest.mark.parametrize("http", ["--http1.1", "--http2"])
@pytest.mark.parametrize("path,status,rule", CASES)
def test_path_rule_decides(dpki, px, path, status, rule, http):
    mark = px.log.mark()
    got, version, body = curl(dpki, url(px, path), http, "--path-as-is")
    assert got == status, body
    assert version == ("2" if http == "--http2" else "1.1")
    ev = px.log.wait(lambda e: e.get("event") == "authz", mark)
    assert (ev["decision"], ev["rule"]) == ("allow" if status == 200 else "deny", rule), ev


def test_denied_path_reason_in_the_log(dpki, px):
    """The refusal of /healthz-admin names the deciding rule and the path, as an operator
    would grep for it."""
    mark = px.log.mark()
    got, _, _ = curl(dpki, url(px, "/healthz-admin"), "--http1.1")
    assert got == 403
    ev = px.log.wait_event("authz", mark, path="/healthz-admin")
    assert ev["level"] == "warn" and ev["decision"] == "deny" and ev["rule"] == "default-deny"


def test_prefix_rule_for_another_identity_is_refused(dpki, px):
    mark = px.log.mark()
    got, _, _ = curl(dpki, url(px, "/api/x"), "--http2", cert="bob")
    assert got == 403
    ev = px.log.wait_event("authz", mark, path="/api/x")
    assert ev["rule"] == "default-deny" and "bob" in ev["identity"]


BAD = [
    ("path: /a//b", "rules[0].path: \"/a//b\": requests are matched after normalisation, so "
     "this never matches; write \"/a/b\""),
    ("path_prefix: /api/../admin", "rules[0].path_prefix: \"/api/../admin\": requests are "
     "matched after normalisation, so this never matches; write \"/admin\""),
    ("path: health", "rules[0].path: \"health\": a path starts with /"),
    ("path: /health?x=1", "rules[0].path: \"/health?x=1\": a rule matches the path only; a "
     "query ('?') is not matched"),
    ("path: /a, path_prefix: /a/", "rules[0]: path (exact) and path_prefix exclude each other; "
     "keep one"),
]


@pytest.mark.parametrize("cond,error", BAD)
def test_check_refuses_rule_paths(dpki, tmp_path, cond, error):
    cfg = tmp_path / "proxy.yaml"
    cfg.write_text("""\
listeners:
  - name: web
    listen: 127.0.0.1:0
    mode: http
    cert: %s
    key: %s
    cacert: %s
    target: [127.0.0.1:9]
    rules:
      - {name: r, allow: [any], %s}
""" % (dpki.server_crt, dpki.server_key, dpki.roots, cond))
    p = subprocess.run([str(dpki.duet_bin), "proxy", "--config", str(cfg), "--check"],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode != 0
    assert error in p.stderr, p.stderr
    assert "%s:10:" % cfg in p.stderr, p.stderr
