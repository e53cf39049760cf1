# SPDX-License-Identifier: Apache-2.0
"""--log-level (issue 11, B): lines below the level are not written; refusals (warn) still are;
a bad level is refused naming the flag or the YAML key."""

import subprocess

from proxyutil import (DuetLog, client_context, free_port, https_request, refused_attempt,
                       wait_port)
from test_security_proxy_ops import ALICE, Duet, pargs


def test_log_level_warn_keeps_refusals_and_drops_the_rest(dpki, procs, echo, tmp_path):
    port, log = free_port(), tmp_path / "warn.log"
    p = procs.start([dpki.duet_bin, "proxy", "--listen", "127.0.0.1:%d" % port,
                     *pargs(dpki, "127.0.0.1:%d" % echo.port, "--allow", ALICE),
                     "--log-level", "warn", "--log", log], "warn")
    wait_port(port, p)  # no `start` line: it is info
    d = Duet(p, port, None, DuetLog(log, p, procs))
    alice = client_context(dpki.roots, dpki.alice_crt, dpki.alice_key)
    status, _, conn = https_request(d.port, "/ok", alice)
    conn.close()
    assert status == 200
    # bob is not allowed (403, an authz warn); eve's CA is unknown (a failed handshake, warn).
    bob = client_context(dpki.roots, dpki.bob_crt, dpki.bob_key)
    status, _, conn = https_request(d.port, "/no", bob)
    conn.close()
    assert status == 403
    refused_attempt(d.port, client_context(dpki.roots, dpki.eve_crt, dpki.eve_key))
    d.log.wait_event("handshake", 0, result="failed")
    d.log.wait_event("authz", 0, decision="deny")
    events = d.log.events()
    assert all(e["level"] in ("warn", "error") for e in events), events
    assert not [e for e in events if e["event"] == "authz" and e["decision"] == "allow"]
    assert not [e for e in events if e["event"] == "handshake" and e["result"] == "ok"]


def test_bad_log_level_is_refused(dpki, tmp_path):
    p = subprocess.run([str(dpki.duet_bin), "proxy", "--listen", "127.0.0.1:1", "--target",
                        "127.0.0.1:2", "--cert", str(dpki.server_crt), "--key",
                        str(dpki.server_key), "--cacert", str(dpki.roots), "--allow", "any",
                        "--log-level", "loud", "--check"], capture_output=True, text=True)
    assert p.returncode == 2 and \
        '--log-level: "loud": expected debug, info, warn or error' in p.stderr, p.stderr
    cfg = tmp_path / "p.yaml"
    cfg.write_text("log_level: chatty\nlisteners:\n  - name: a\n    listen: 127.0.0.1:1\n"
                   "    cert: %s\n    key: %s\n    cacert: %s\n    target: [127.0.0.1:2]\n"
                   "    rules: [{name: r, allow: [any]}]\n"
                   % (dpki.server_crt, dpki.server_key, dpki.roots))
    p = subprocess.run([str(dpki.duet_bin), "proxy", "--config", str(cfg), "--check"],
                       capture_output=True, text=True)
    assert p.returncode != 0 and "p.yaml:1:12: log_level" in p.stderr and \
        "expected debug, info, warn or error" in p.stderr, p.stderr
