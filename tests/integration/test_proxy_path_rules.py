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


def check_rules(dpki, tmp_path, rules):
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
%s""" % (dpki.server_crt, dpki.server_key, dpki.roots, rules), encoding="utf-8")
    return subprocess.run([str(dpki.duet_bin), "proxy", "--config", str(cfg), "--check"],
                          capture_output=True, text=True, timeout=30)


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
    p = check_rules(dpki, tmp_path, "      - {name: r, allow: [any], %s}\n" % cond)
    assert p.returncode != 0
    assert error in p.stderr, p.stderr
    assert "%s:10:" % (tmp_path / "proxy.yaml") in p.stderr, p.stderr


def test_check_refuses_a_rule_path_outside_ascii(dpki, tmp_path):
    """`path_prefix: "/caf\u00e9"` could never match: requests carry the \u00e9 percent-encoded,
    so a deny written so let /caf%C3%A9 through.  --check names the key, its line and the
    form to write."""
    p = check_rules(dpki, tmp_path,
                    '      - {name: r, deny: [any], path_prefix: "/caf\u00e9"}\n')
    assert p.returncode != 0, p.stdout
    assert "%s:10:" % (tmp_path / "proxy.yaml") in p.stderr, p.stderr
    assert "rules[0].path_prefix" in p.stderr, p.stderr
    assert 'write "/caf%C3%A9"' in p.stderr, p.stderr


ENCODED_RULES = """\
      - {name: no-cafe, deny: [any], path_prefix: "/caf%C3%A9"}
      - {name: rest, allow: [any], path_prefix: /}
"""


@pytest.fixture(scope="module")
def px_encoded(dpki, module_procs, tmp_path_factory, echo):
    return start_http_proxy(dpki, module_procs, tmp_path_factory.mktemp("path-rules-pct"),
                            echo.port, rules=ENCODED_RULES)


@pytest.mark.parametrize("http", ["--http1.1", "--http2"])
@pytest.mark.parametrize("path", ["/caf%C3%A9", "/caf%c3%a9", "/caf%C3%a9/menu"])
def test_percent_encoded_deny_holds_whatever_the_hex_case(dpki, px_encoded, echo, path, http):
    mark = px_encoded.log.mark()
    before = len(echo.requests)
    got, _, body = curl(dpki, url(px_encoded, path), http, "--path-as-is")
    assert got == 403, body
    ev = px_encoded.log.wait(lambda e: e.get("event") == "authz", mark)
    assert (ev["decision"], ev["rule"]) == ("deny", "no-cafe"), ev
    assert len(echo.requests) == before


@pytest.mark.parametrize("http", ["--http1.1", "--http2"])
def test_percent_encoded_deny_leaves_other_paths(dpki, px_encoded, http):
    got, _, body = curl(dpki, url(px_encoded, "/cafe"), http)
    assert got == 200, body


def test_check_warns_of_a_deny_on_an_exact_path(dpki, tmp_path):
    """`deny` with `path: /admin` leaves /admin/ and /admin/x to the rules below: --check
    accepts it (it may be meant) and says so, with the fix."""
    p = check_rules(dpki, tmp_path, "      - {name: no-admin, deny: [any], path: /admin}\n"
                                    "      - {name: rest, allow: [any]}\n")
    assert p.returncode == 0 and "configuration OK" in p.stdout, p.stderr
    assert ('warning: listener web: rule "no-admin" denies only the exact path /admin: '
            '/admin/ and /admin/x fall to the rules below; write path_prefix: /admin to deny '
            'them too' in p.stdout), p.stdout


@pytest.mark.parametrize("rule", ["{name: no-admin, deny: [any], path_prefix: /admin}",
                                  "{name: health, allow: [any], path: /health}"])
def test_check_does_not_warn_of_prefix_denies_or_exact_allows(dpki, tmp_path, rule):
    p = check_rules(dpki, tmp_path, "      - %s\n" % rule)
    assert p.returncode == 0 and "configuration OK" in p.stdout, p.stderr
    assert "warning" not in p.stdout + p.stderr, p.stdout
