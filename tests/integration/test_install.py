# SPDX-License-Identifier: Apache-2.0
"""`meson install`: duet, libduet.so, duet.h, duet.pc and duet(1) in place, and usable.

The build directory is the one holding the binary under test ($DUET_BIN, else build/duet).
It is installed with --destdir into a temporary directory, then a small C program is
compiled against the installed header and library through pkg-config and run: it verifies
certificates made by the test PKI through the public API. The library exports exactly the
functions include/duet.h declares, and the man page renders.
"""

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

PROGRAM = r"""
#include <stdio.h>

#include <duet.h>

/* usage: prog ROOTS.pem LEAF.pem...: one line per leaf. */
int
main(int argc, char **argv)
{
    struct duet_verifier *v = duet_verifier_new();

    if (v == NULL || argc < 3)
        return 2;
    printf("version %s\n", duet_version());
    if (duet_verifier_add_trusted_file(v, argv[1]) != 0) {
        printf("trusted: %s\n", duet_verifier_error(v));
        duet_verifier_free(v);
        return 2;
    }
    for (int i = 2; i < argc; i++) {
        if (duet_verifier_verify_file(v, argv[i]) == 0) {
            const struct duet_identity *id = duet_verifier_identity(v);
            printf("valid %s serial %s\n", duet_identity_name(id), duet_identity_serial(id));
        } else {
            printf("invalid %s kind %d: %s\n", duet_verifier_error_code(v),
                   (int)duet_verifier_error_kind(v), duet_verifier_error(v));
        }
    }
    duet_verifier_free(v);
    return 0;
}
"""


def sh(argv, **kw):
    """Run argv; fail the test with its output unless it exits 0."""
    p = subprocess.run(list(map(str, argv)), capture_output=True, text=True, timeout=300, **kw)
    assert p.returncode == 0, "command: %s\nexit: %d\nstdout: %s\nstderr: %s" % (
        " ".join(map(str, argv)), p.returncode, p.stdout, p.stderr)
    return p


@pytest.fixture(scope="module")
def installed(duet_bin, tmp_path_factory):
    """(destdir, {name: installed path under destdir}) after `meson install --destdir`."""
    build = duet_bin.resolve().parent
    if not (build / "meson-private").is_dir():
        pytest.fail("%s is not in a meson build directory; set DUET_BIN to build/duet" % duet_bin,
                    pytrace=False)
    dest = tmp_path_factory.mktemp("destdir")
    sh(["meson", "install", "-C", build, "--destdir", dest, "--no-rebuild", "--quiet"])
    where = json.loads(sh(["meson", "introspect", "--installed", build]).stdout)
    # Keyed by file name; the bash completion (also named duet) as "bash-completion/duet".
    files = {("bash-completion/" if "/bash-completion/" in target else "") + Path(target).name:
             dest / target.lstrip("/") for target in where.values()}
    return dest, files


def test_install_puts_every_file_in_place(installed):
    dest, files = installed
    for name in ("duet", "libduet.so", "libduet.so.0", "libduet.so.0.1.0", "duet.h", "duet.pc",
                 "duet.1"):
        assert name in files, "meson does not install %s: %s" % (name, sorted(files))
        assert files[name].exists(), "%s missing under %s" % (files[name], dest)
    assert files["duet"].parent.name == "bin"
    assert os.access(files["duet"], os.X_OK)
    assert files["duet.h"].parent.name == "include"
    assert files["duet.pc"].parent.name == "pkgconfig"
    assert files["duet.1"].parent.name == "man1"
    # The development link and the soname link lead to the real file.
    assert os.readlink(files["libduet.so"]) == "libduet.so.0"
    assert os.readlink(files["libduet.so.0"]) == "libduet.so.0.1.0"
    dyn = sh(["readelf", "-d", files["libduet.so.0.1.0"]]).stdout
    assert "Library soname: [libduet.so.0]" in dyn, dyn
    # The installed binary runs.
    out = sh([files["duet"], "version"]).stdout
    assert out.startswith("duet "), out


def test_program_builds_with_pkg_config_and_verifies(installed, pki, tmp_path):
    dest, files = installed
    env = dict(os.environ, PKG_CONFIG_SYSROOT_DIR=str(dest),
               PKG_CONFIG_PATH=str(files["duet.pc"].parent))
    flags = sh(["pkg-config", "--cflags", "--libs", "duet"], env=env).stdout.split()
    assert "-lduet" in flags, flags
    assert any(f.startswith("-I") and f.startswith("-I" + str(dest)) for f in flags), flags
    src = tmp_path / "prog.c"
    src.write_text(PROGRAM)
    exe = tmp_path / "prog"
    sh(["cc", "-std=c11", "-Wall", "-Wextra", "-Werror", "-o", exe, src, *flags])
    run_env = dict(os.environ, LD_LIBRARY_PATH=str(files["libduet.so"].parent))
    out = sh([exe, pki.root, pki.server_chain, pki.expired_chain], env=run_env).stdout
    lines = out.splitlines()
    assert lines[0] == "version 0.1.0", out
    assert lines[1].startswith("valid "), out
    assert "serial %s" % pki.serial(pki.server) in lines[1], out
    # A refusal: the stable code and the kind (DUET_ERR_INVALID) as data, and the sentence.
    assert lines[2].startswith("invalid expired kind 1: certificate "), out
    assert "expired on" in lines[2], out
    # The program used the installed library, not another one.
    ldd = sh(["ldd", exe], env=run_env).stdout
    assert str(files["libduet.so"].parent) in ldd, ldd


def test_library_exports_only_the_public_api(installed):
    _, files = installed
    out = sh(["nm", "-D", "--defined-only", files["libduet.so.0.1.0"]]).stdout
    exported = set()
    for line in out.splitlines():
        parts = line.split()
        assert len(parts) == 3, "nm: %r" % line
        name, _, version = parts[2].partition("@")
        if parts[1] == "A" and name.startswith("LIBDUET_"):
            continue  # the version node of src/lib/libduet.map
        assert name.startswith("duet_"), "exported: %r" % line
        assert version.lstrip("@") == "LIBDUET_0", "not in the LIBDUET_0 node: %r" % line
        exported.add(name)
    header = (REPO / "include" / "duet.h").read_text()
    declared = set(re.findall(r"\b(duet_[a-z0-9_]+)\(", header))
    assert exported == declared, "exported but not declared: %s; declared but not exported: %s" % (
        sorted(exported - declared), sorted(declared - exported))


def test_man_page_renders_and_lists_every_command(installed):
    _, files = installed
    page = files["duet.1"]
    text = page.read_text()
    assert "@VERSION@" not in text
    p = subprocess.run(["man", "-l", str(page)], capture_output=True, text=True, timeout=60,
                       env=dict(os.environ, MANPAGER="cat", PAGER="cat", MANWIDTH="80"))
    assert p.returncode == 0, p.stderr
    assert p.stderr == "", p.stderr
    assert "NAME" in p.stdout and "COMMANDS" in p.stdout, p.stdout
    # Every command with a page in docs/cli/ is listed (the roff source, hyphens unescaped).
    listed = text.replace("\\-", "-")
    for doc in sorted((REPO / "docs" / "cli").glob("*.md")):
        title = doc.read_text().splitlines()[0]
        assert title.startswith("# duet "), (doc, title)
        assert ".B " + title[2:] in listed, "%s is not in man/duet.1" % title[2:]


def test_every_docs_cli_page_is_installed_as_a_man_page_that_renders(installed):
    _, files = installed
    for doc in sorted((REPO / "docs" / "cli").glob("*.md")):
        name = "duet-%s.1" % doc.stem
        assert name in files, "meson does not install %s (meson setup --reconfigure)" % name
        page = files[name]
        assert page.parent.name == "man1"
        p = subprocess.run(["man", "-l", str(page)], capture_output=True, text=True, timeout=60,
                           env=dict(os.environ, MANPAGER="cat", PAGER="cat", MANWIDTH="80"))
        assert p.returncode == 0 and p.stderr == "", (name, p.stderr)
        title = doc.read_text().splitlines()[0][2:]          # "duet cert issue"
        assert p.stdout.startswith(title.replace(" ", "-").upper() + "(1)"), p.stdout[:80]
        assert "\nNAME\n       %s - " % title.replace(" ", "-") in p.stdout, p.stdout[:400]
        # every flag of the page's option table is in the rendered page
        for flag in set(re.findall(r"^\| `(--[a-z0-9-]+)", doc.read_text(), re.M)):
            assert flag in p.stdout, (name, flag)


def complete(script, duet, *words):
    """What bash offers after `duet WORDS` (the last word is the one being completed)."""
    words = [str(duet)] + list(words)
    prog = ('source %s\nCOMP_WORDS=(%s)\nCOMP_CWORD=%d\n_duet\nprintf "%%s\\n" "${COMPREPLY[@]}"\n'
            % (script, " ".join("'%s'" % w for w in words), len(words) - 1))
    p = subprocess.run(["bash", "--norc", "-c", prog], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and p.stderr == "", p.stderr
    return p.stdout.split()


def test_bash_completion_is_installed_and_completes(installed):
    _, files = installed
    script = files["bash-completion/duet"]
    assert script.parent.as_posix().endswith("share/bash-completion/completions")
    duet = files["duet"]
    assert complete(script, duet, "cert", "") == ["inspect", "verify", "issue", "sign", "list",
                                                  "show", "renew", "revoke", "export", "expiring"]
    assert complete(script, duet, "ce") == ["cert"]
    flags = complete(script, duet, "proxy", "--")
    assert {"--listen", "--target", "--cert", "--key", "--cacert", "--allow", "--help"} <= set(flags)
    assert all(f.startswith("--") for f in flags) and len(flags) > 40
    assert complete(script, duet, "cert", "issue", "web", "--pro") == ["--profile"]
    assert complete(script, duet, "cert", "export", "--from") == ["--from-p12"]
    assert complete(script, duet, "help", "ca", "ro") == ["roots"]


def test_license_is_the_apache_license():
    text = (REPO / "LICENSE").read_text()
    assert text.lstrip().startswith("Apache License\n")
    assert "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text
