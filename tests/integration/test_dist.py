# SPDX-License-Identifier: Apache-2.0
"""The systemd units in dist/: systemd itself accepts them (`systemd-analyze verify`), they
use the readiness protocol duet speaks (Type=notify), reload by SIGHUP, leave the drain its
time, and run confined."""

import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
UNITS = [REPO / "dist" / n for n in ("duet-ca.service", "duet-proxy.service",
                                      "duet-tunnel.service")]
AGENT_UNITS = ["duet-agent.service", "duet-agent-once.service", "duet-agent.timer"]


def test_units_exist():
    names = sorted(u.name for u in (REPO / "dist").iterdir()
                   if u.suffix in (".service", ".timer"))
    assert names == sorted([u.name for u in UNITS] + AGENT_UNITS)


@pytest.mark.parametrize("unit", UNITS, ids=[u.name for u in UNITS])
def test_unit_is_valid_and_confined(unit, duet_bin, tmp_path):
    text = unit.read_text()
    local = tmp_path / unit.name
    local.write_text(text.replace("/usr/bin/duet", str(duet_bin)))
    p = subprocess.run(["systemd-analyze", "verify", "--man=no", str(local)],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and p.stdout + p.stderr == "", p.stdout + p.stderr
    keys = dict(re.findall(r"^(\w+)=(.*)$", text, re.M))
    assert keys["Type"] == "notify" and keys["NotifyAccess"] == "main"
    if unit.name == "duet-ca.service":
        # The CA server: no reload, the passphrase from a file, never on the command line.
        assert "ExecReload" not in keys and "passphrase" not in keys["ExecStart"]
        assert keys["Environment"].startswith("DUET_CA_PASSPHRASE_FILE=")
        assert keys["LimitCORE"] == "0"
    else:
        assert keys["ExecReload"] == "/bin/kill -HUP $MAINPID"
        assert keys["ExecStartPre"].endswith("--check")
        # Longer than the default drain timeout (30 s), so that a stop is not cut short.
        assert int(keys["TimeoutStopSec"]) > 30
    for k in ("NoNewPrivileges", "ProtectSystem", "ProtectHome", "PrivateTmp"):
        assert keys[k] in ("yes", "strict"), k
    assert keys["User"] == "duet"


def test_agent_units_are_valid_and_confined(duet_bin, tmp_path):
    """The agent's daemon, its --once service and the timer, verified together."""
    local = []
    for name in AGENT_UNITS:
        p = tmp_path / name
        p.write_text((REPO / "dist" / name).read_text().replace("/usr/bin/duet", str(duet_bin)))
        local.append(str(p))
    p = subprocess.run(["systemd-analyze", "verify", "--man=no", *local],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and p.stdout + p.stderr == "", p.stdout + p.stderr
    daemon = dict(re.findall(r"^(\w+)=(.*)$", (REPO / "dist" / AGENT_UNITS[0]).read_text(), re.M))
    once = dict(re.findall(r"^(\w+)=(.*)$", (REPO / "dist" / AGENT_UNITS[1]).read_text(), re.M))
    timer = dict(re.findall(r"^(\w+)=(.*)$", (REPO / "dist" / AGENT_UNITS[2]).read_text(), re.M))
    assert daemon["Type"] == "notify" and daemon["ExecStartPre"].endswith("--check")
    assert once["Type"] == "oneshot" and once["ExecStart"].endswith("--once")
    assert timer["Unit"] == "duet-agent-once.service"
    for keys in (daemon, once):
        for k in ("NoNewPrivileges", "ProtectSystem", "ProtectHome", "PrivateTmp"):
            assert keys[k] in ("yes", "strict"), k
        assert keys["User"] == "duet" and keys["CapabilityBoundingSet"] == "CAP_KILL"
