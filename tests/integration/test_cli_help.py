# SPDX-License-Identifier: Apache-2.0
"""Every duet command explains itself: `duet help X [Y]` prints what `duet X [Y] --help` does;
each flag the parser takes has a one-line description in --help, each flag --help lists is
taken by the parser, and docs/cli/<command>.md's option table names the same flags."""

import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs" / "cli"
LINE = re.compile(r"^  (--[a-z0-9][a-z0-9-]*)(?: (\S+))?(?:\s{2,}(\S.*))?$")
REFUSED = re.compile(r"is not an option|unrecognized option|unknown option|is not a setting")

# Every command, as typed, from its page docs/cli/<words joined by ->.md ("ca rekey-storage").
TWO_WORD = ("ca", "cert", "crl", "ocsp")
COMMANDS = sorted(" ".join([p.stem.split("-", 1)[0], p.stem.split("-", 1)[1]])
                  if p.stem.split("-", 1)[0] in TWO_WORD else p.stem
                  for p in DOCS.glob("*.md"))


def page(cmd):
    return DOCS / ("%s.md" % cmd.replace(" ", "-"))


def help_of(run, cmd):
    p = run(*cmd.split(), "--help")
    assert p.returncode == 0 and p.stderr == "", (cmd, p.stderr)
    return p.stdout


def flag_lines(text):
    """{flag: (placeholder or None, description)} from the "options:" lines of --help.  A long
    flag and placeholder put the description alone on the next line."""
    out, lines = {}, text.splitlines()
    for i, line in enumerate(lines):
        m = LINE.match(line)
        if not m:
            continue
        desc = m.group(3)
        if desc is None and i + 1 < len(lines) and re.match(r"^ {20,}\S", lines[i + 1]):
            desc = lines[i + 1].strip()
        out[m.group(1)] = (m.group(2), desc)
    return out


def documented_flags(cmd):
    """The flags named in the first column of the page's tables."""
    flags = set()
    for line in page(cmd).read_text().splitlines():
        if line.startswith("| `"):
            flags.update(re.findall(r"`(--[a-z0-9][a-z0-9-]*)", line.split("|")[1]))
    return flags


def completion_commands(run):
    """The commands `duet completion bash` knows (cli_commands[] in main.c): "cert issue", ..."""
    script = run("completion", "bash").stdout
    top = re.search(r"'\) echo help version (.*) ;;", script).group(1).split()
    subs = dict(re.findall(r"\n    ([a-z-]+)\) echo (.*) ;;", script))
    out = set()
    for cmd in top:
        if cmd in subs and cmd != "ticket-keys":  # one action, one page: duet ticket-keys
            out.update("%s %s" % (cmd, s) for s in subs[cmd].split())
        else:
            out.add(cmd)
    return out


def test_every_command_has_a_page_and_every_page_a_command(run):
    assert set(COMMANDS) == completion_commands(run)


@pytest.mark.parametrize("cmd", COMMANDS)
def test_help_command_prints_the_commands_help(run, cmd):
    p = run("help", *cmd.split())
    assert p.returncode == 0, p.stderr
    assert p.stdout == help_of(run, cmd)
    assert p.stdout.startswith("usage: duet %s" % cmd)


def test_help_of_an_unknown_command_is_a_usage_error(run):
    p = run("help", "cert", "issu")
    assert p.returncode == 2
    assert p.stderr == 'duet help: "issu" is not a subcommand of duet cert\n'
    p = run("help", "crt")
    assert p.returncode == 2 and p.stderr.startswith('duet help: unknown command "crt"\n')


@pytest.mark.parametrize("cmd", COMMANDS)
def test_every_flag_in_help_has_a_description_and_is_parsed(run, duet_bin, cmd, tmp_path):
    flags = flag_lines(help_of(run, cmd))
    assert "--help" in flags, cmd
    for flag, (arg, desc) in flags.items():
        assert desc and len(desc) > 8, "%s %s: no description" % (cmd, flag)
        if flag == "--help":
            continue
        argv = cmd.split() + [flag] + (["x"] if arg else [])
        if cmd == "ticket-keys":
            argv = ["ticket-keys", "rotate", str(tmp_path / "no" / "tk")] + argv[1:]
        p = subprocess.run([str(duet_bin)] + argv, capture_output=True, text=True, cwd=tmp_path,
                           timeout=30, stdin=subprocess.DEVNULL)
        assert not REFUSED.search(p.stderr), (argv, p.stderr)


# proxy and tunnel: docs/proxy.md's tables, checked by test_proxy_help.py.
@pytest.mark.parametrize("cmd", [c for c in COMMANDS if c not in ("proxy", "tunnel")])
def test_the_page_documents_every_flag_and_only_those(run, cmd):
    listed = set(flag_lines(help_of(run, cmd))) - {"--help"}
    documented = documented_flags(cmd) - {"--help"}
    assert listed - documented == set(), "in `duet %s --help`, not in %s" % (cmd, page(cmd).name)
    assert documented - listed == set(), "in %s, not a flag of duet %s" % (page(cmd).name, cmd)


# The files whose own option table makes a command's flags (cert commands share cli_opts.c).
SOURCES = {
    "ca init": "cmd_ca_init.c", "ca roots": "cmd_ca_roots.c", "ca rekey-storage": "cmd_ca_rekey.c",
    "ca migrate": "cmd_ca_migrate.c", "ca serve": "cmd_ca_serve.c",
    "cert inspect": "cmd_cert_inspect.c", "cert verify": "cmd_cert_verify.c",
    "crl generate": "cmd_crl_generate.c", "ocsp respond": "cmd_ocsp_respond.c",
    "bench": "cmd_bench.c", "ticket-keys": "cmd_ticket_keys.c", "agent": "cmd_agent.c",
    "probe": "cmd_probe.c", "doctor": "cmd_doctor.c",
}


@pytest.mark.parametrize("cmd", sorted(SOURCES))
def test_every_flag_the_parser_takes_is_in_help(run, cmd):
    src = (REPO / "src" / "cli" / SOURCES[cmd]).read_text()
    parsed = set("--" + n for n in
                 re.findall(r'\{"([a-z0-9-]+)", (?:required|no|optional)_argument', src))
    assert parsed, cmd
    assert parsed == set(flag_lines(help_of(run, cmd)))


# The commands that parse their own flags refuse an unknown one, or one without its value, in
# the shared table's words, naming the flag alone: a value after "=" may hold a password.
OWN_PARSERS = sorted((set(SOURCES) - {"ticket-keys", "agent"}) | {"ca import-key"})


@pytest.mark.parametrize("cmd", OWN_PARSERS)
def test_own_parser_refusals_name_the_flag_and_never_its_value(run, cmd):
    p = run(*cmd.split(), "--bogus=postgres://duet:s3cret@db.corp.example/ca")
    assert p.returncode == 2, (cmd, p.stderr)
    assert p.stderr.startswith("duet %s: --bogus is not an option of this command\n" % cmd), (
        cmd, p.stderr)
    assert "s3cret" not in p.stderr, (cmd, p.stderr)
    valued = sorted(f for f, (placeholder, _) in flag_lines(help_of(run, cmd)).items()
                    if placeholder)
    assert valued, cmd
    p = run(*cmd.split(), valued[0])
    assert p.returncode == 2, (cmd, valued[0], p.stderr)
    assert p.stderr.startswith("duet %s: %s needs a value\n" % (cmd, valued[0])), (cmd, p.stderr)


# The cert commands share cli_opts.c's table: each refuses, by name, every option of the
# table that its --help does not list (so the parser takes no flag that help leaves out).
CERT_SHARED = ["cert issue", "cert sign", "cert list", "cert show", "cert renew", "cert revoke",
               "cert export", "cert expiring", "ca token"]


@pytest.mark.parametrize("cmd", CERT_SHARED)
def test_shared_table_options_not_in_help_are_refused(run, cmd):
    src = (REPO / "src" / "cli" / "cli_opts.c").read_text()
    table = set("--" + n for n in
                re.findall(r'\{"([a-z0-9-]+)", (?:required|no)_argument', src))
    listed = set(flag_lines(help_of(run, cmd)))
    assert listed <= table
    for flag in sorted(table - listed):
        p = run(*cmd.split(), flag, "x")
        assert p.returncode == 2, (cmd, flag, p.stderr)
        assert p.stderr.startswith("duet %s: %s is not an option of this command\n" % (cmd, flag)
                                   ), (cmd, flag, p.stderr)


# The commands whose flag table reports getopt's errors through one helper (cli_flags_error):
# (command, an abbreviation getopt_long takes, the flag it stands for, which needs a value, and
# a value it accepts).
TABLE_ERRORS = [
    ("doctor", "--with", "--within", "7d"),
    ("probe", "--serv", "--server-name", "localhost"),
    ("cert verify", "--untr", "--untrusted", "chain.pem"),
    ("cert inspect", "--form", "--format", "json"),
    ("ca import-key", "--key", "--key-uri", "pkcs11:token=t"),
]


@pytest.mark.parametrize("cmd,abbrev,flag,value", TABLE_ERRORS)
def test_option_errors_name_the_flag_and_never_its_value(run, cmd, abbrev, flag, value):
    """An unknown option is named without what follows its "=" (a mistyped --password-file=
    or --store= would otherwise print a secret); a flag without its value is named in full,
    as its table and --help spell it, even when typed abbreviated; an unknown short option is
    named itself, not the argument before it.  Then the usage, exit 2."""
    usage = "usage: duet %s" % cmd
    p = run(*cmd.split(), "--bogus=hunter2")
    assert p.returncode == 2, (cmd, p.stderr)
    assert p.stderr.startswith("duet %s: --bogus is not an option of this command\n%s" %
                               (cmd, usage)), p.stderr
    assert "hunter2" not in p.stderr + p.stdout, p.stderr
    p = run(*cmd.split(), abbrev)
    assert p.returncode == 2, (cmd, p.stderr)
    assert p.stderr.startswith("duet %s: %s needs a value\n%s" % (cmd, flag, usage)), p.stderr
    p = run(*cmd.split(), flag, value, "-qz")
    assert p.returncode == 2, (cmd, p.stderr)
    assert p.stderr.startswith("duet %s: -q is not an option of this command\n%s" %
                               (cmd, usage)), p.stderr
    p = run(*cmd.split(), "--help=yes")
    assert p.returncode == 2, (cmd, p.stderr)
    assert p.stderr.startswith("duet %s: --help takes no value\n%s" % (cmd, usage)), p.stderr
