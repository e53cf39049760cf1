# SPDX-License-Identifier: Apache-2.0
"""Listener names label the logs and the metrics series (listener="web"): two listeners named
alike would merge their series, and a name outside [A-Za-z0-9._-] or past 64 bytes has no
place in a label.  --check (and so the start and a reload) refuses them with the name's
file:line:column."""

import subprocess

import pytest

LISTENER = """\
  - name: %(name)s
    listen: 127.0.0.1:0
    mode: http
    cert: %(crt)s
    key: %(key)s
    cacert: %(roots)s
    target: [127.0.0.1:9]
    rules: [{allow: [any]}]
"""


def check(dpki, tmp_path, *names):
    cfg = tmp_path / "proxy.yaml"
    cfg.write_text("listeners:\n" + "".join(
        LISTENER % dict(name=n, crt=dpki.server_crt, key=dpki.server_key, roots=dpki.roots)
        for n in names))
    p = subprocess.run([str(dpki.duet_bin), "proxy", "--config", str(cfg), "--check"],
                       capture_output=True, text=True, timeout=30)
    return cfg, p


def test_duplicate_listener_names_are_refused(dpki, tmp_path):
    cfg, p = check(dpki, tmp_path, "web", "api", "web")
    assert p.returncode != 0, p.stdout
    # The third listener's name is on line 18, column 11.
    assert ("%s:18:11: listeners[2].name: \"web\": listeners[0] has this name; each listener "
            "needs its own (it labels logs and metrics)" % cfg) in p.stderr, p.stderr


BAD = [
    ("\"web prod\"", "\"web prod\""),
    ("web/1", "\"web/1\""),
    ("x" * 65, "\"%s\"" % ("x" * 65)),
]


@pytest.mark.parametrize("name,shown", BAD)
def test_bad_listener_names_are_refused(dpki, tmp_path, name, shown):
    cfg, p = check(dpki, tmp_path, name)
    assert p.returncode != 0, p.stdout
    assert "%s:2:11: listeners[0].name: %s: a listener name is 1 to 64 characters of " \
           "A-Z, a-z, 0-9, '.', '_' and '-'" % (cfg, shown) in p.stderr, p.stderr


@pytest.mark.parametrize("name", ["web", "web-1.prod_eu", "x" * 64])
def test_good_listener_names_pass(dpki, tmp_path, name):
    _, p = check(dpki, tmp_path, name)
    assert p.returncode == 0 and "configuration OK" in p.stdout, p.stderr
