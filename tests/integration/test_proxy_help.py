# SPDX-License-Identifier: Apache-2.0
"""`duet proxy --help`, `duet tunnel --help` and `duet help proxy|tunnel` are made from the
settings table (src/proxy/config.c); the docs must say the same: every flag the help lists is
documented in docs/proxy.md (the proxy's flag table, or the tunnel's), every flag documented
there exists, and the same holds for the YAML keys and for the usage lines of docs/cli/."""

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "proxy.md"
FLAG = re.compile(r"--[a-z0-9][a-z0-9-]*")


def help_text(run, cmd):
    p = run(cmd, "--help")
    assert p.returncode == 0 and p.stderr == "", p.stderr
    return p.stdout


def help_flags(text):
    """The flags listed, one per entry line ("  --name ARG   help ...")."""
    return {m.group(1) for m in re.finditer(r"^  (--[a-z0-9-]+)", text, re.M)}


def help_keys(text):
    """The YAML keys the entries name ("YAML limits.drain_timeout" -> drain_timeout)."""
    keys = set(re.findall(r"YAML (?!only)(?:listeners\[\]\.)?(?:limits\.|upstream_tls\.)?"
                          r"([a-z_0-9]+)", text))
    keys.update(re.findall(r"YAML only: listeners\[\]\.([a-z_]+)", text))
    return keys


def section(title, stop_at_next=True):
    """The text of a docs/proxy.md section, from its heading to the next one of its level."""
    text = DOC.read_text()
    start = text.index("\n" + title + "\n")
    level = title.split(" ")[0]
    rest = text[start + len(title) + 2:]
    end = re.search(r"^%s " % re.escape(level), rest, re.M) if stop_at_next else None
    return rest[: end.start()] if end else rest


def table_flags(text):
    """Flags named in the first column of a markdown table ("| `--a X`, `--b` | ... |")."""
    flags = set()
    for line in text.splitlines():
        if line.startswith("| `--"):
            flags.update(FLAG.findall(line.split("|")[1]))
    return flags


@pytest.mark.parametrize("cmd", ["proxy", "tunnel"])
def test_help_and_help_command_print_the_same(run, cmd):
    p = run("help", cmd)
    assert p.returncode == 0, p.stderr
    assert p.stdout == help_text(run, cmd)
    assert p.stdout.startswith("usage: duet %s " % cmd)


def test_every_proxy_flag_is_documented_and_every_documented_flag_exists(run):
    listed = help_flags(help_text(run, "proxy"))
    documented = table_flags(section("## Flags (`duet proxy`)"))
    assert listed - documented == set(), "in `duet proxy --help`, not in docs/proxy.md"
    assert documented - listed == set(), "in docs/proxy.md, not a flag of duet proxy"


def test_every_tunnel_flag_is_documented_and_every_documented_flag_exists(run):
    listed = help_flags(help_text(run, "tunnel"))
    documented = table_flags(section("## duet tunnel"))
    assert listed - documented == set(), "in `duet tunnel --help`, not in docs/proxy.md"
    assert documented - listed == set(), "in docs/proxy.md's tunnel table, not a tunnel flag"


def test_every_yaml_key_is_documented(run):
    proxy_yaml = section("## YAML")
    for key in help_keys(help_text(run, "proxy")):
        assert re.search(r"\b%s:" % key, proxy_yaml), "proxy YAML key %s not in docs" % key
    tunnel = section("## duet tunnel")
    for key in help_keys(help_text(run, "tunnel")):
        assert "`%s`" % key in tunnel or re.search(r"\b%s:" % key, tunnel), \
            "tunnel YAML key %s not in docs/proxy.md#duet-tunnel" % key


@pytest.mark.parametrize("cmd", ["proxy", "tunnel"])
def test_cli_page_names_only_real_flags(run, cmd):
    listed = help_flags(help_text(run, cmd))
    page = (REPO / "docs" / "cli" / ("%s.md" % cmd)).read_text()
    usage = page.split("```")[1]
    named = set(FLAG.findall(usage))
    assert named, "no usage block in docs/cli/%s.md" % cmd
    assert named - listed == set(), "docs/cli/%s.md names flags duet %s does not take" % (cmd,
                                                                                           cmd)


@pytest.mark.parametrize("cmd,other", [("proxy", "--server-name"), ("tunnel", "--allow")])
def test_a_flag_of_the_other_command_is_refused_by_name(run, cmd, other):
    p = run(cmd, other, "x")
    assert p.returncode == 2
    assert "%s is a setting of duet %s only" % (other, "tunnel" if cmd == "proxy" else "proxy") \
        in p.stderr, p.stderr
