# SPDX-License-Identifier: Apache-2.0
"""Fixtures for the integration tests: the duet binary, a throw-away PKI, and run().

The binary is $DUET_BIN, else <repo>/build/duet.  A missing binary makes every test that
runs it fail (never skip): a suite that silently skips proves nothing.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

# The tests make hundreds of throw-away CAs: their keys are encrypted with fewer PBKDF2
# iterations than duet's default (600,000, about 0.25 s per key opened; more on the sanitizer
# build), which test_ca_storage.py checks with this variable unset.
os.environ.setdefault("DUET_CA_KDF_ITERATIONS", "2048")

from pki import PKI  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def duet_bin():
    """Path of the duet binary under test (not checked here; run() fails loudly)."""
    return Path(os.environ.get("DUET_BIN", str(REPO / "build" / "duet")))


@pytest.fixture(scope="session")
def run(duet_bin):
    """run(*args) -> CompletedProcess of `duet *args`, text output, never raises on exit code."""

    def _run(*args, timeout=30):
        if not (duet_bin.is_file() and os.access(duet_bin, os.X_OK)):
            pytest.fail("duet binary not found or not executable at %s "
                        "(build it with `meson setup build && ninja -C build`, or set DUET_BIN)"
                        % duet_bin, pytrace=False)
        argv = [str(duet_bin), *map(str, args)]
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)

    return _run


@pytest.fixture(scope="session")
def pki(tmp_path_factory):
    """The test PKI (see pki.py), built once per session."""
    return PKI(tmp_path_factory.mktemp("pki"))


# --- the private CA: `duet ca`, `duet cert issue/sign/list/...`, `duet crl` -------------------

import json  # noqa: E402
import re  # noqa: E402

CA_PASSPHRASE = "correct horse battery staple"


@pytest.fixture(scope="session")
def run_env(duet_bin):
    """run_env(*args, env=None) -> like run(), but DUET_CA_PASSPHRASE is never inherited
    from the caller's environment; `env` adds (or, with a None value, removes) variables."""

    def _run_env(*args, env=None, timeout=30):
        if not (duet_bin.is_file() and os.access(duet_bin, os.X_OK)):
            pytest.fail("duet binary not found or not executable at %s "
                        "(build it with `meson setup build && ninja -C build`, or set DUET_BIN)"
                        % duet_bin, pytrace=False)
        e = {k: v for k, v in os.environ.items() if k != "DUET_CA_PASSPHRASE"}
        for k, v in (env or {}).items():
            if v is None:
                e.pop(k, None)
            else:
                e[k] = v
        return subprocess.run([str(duet_bin), *map(str, args)], capture_output=True,
                              text=True, timeout=timeout, stdin=subprocess.DEVNULL, env=e)

    return _run_env


class DuetCA:
    """A CA directory made by `duet ca init`, and the commands a user runs against it.

    Every signing command gets --passphrase-file; results are CompletedProcess objects, so a
    test asserts the exit status and the message itself.
    """

    def __init__(self, run_env, base, name):
        self.run_env = run_env
        self.base = Path(base)
        self.dir = self.base / "ca"
        self.out = self.base / "out"
        self.out.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.passphrase = CA_PASSPHRASE
        self.passfile = self.base / "ca.pass"
        self.passfile.write_text(CA_PASSPHRASE + "\n")
        os.chmod(self.passfile, 0o600)
        self.root = self.dir / "root.crt"
        self.issuing = self.dir / "issuing.crt"

    def duet(self, *args, **kw):
        return self.run_env(*args, **kw)

    def init(self, *extra, **kw):
        return self.duet("ca", "init", "--ca-dir", self.dir, "--name", self.name,
                         "--passphrase-file", self.passfile, *extra, **kw)

    def issue(self, name, profile, *extra, out=None):
        return self.duet("cert", "issue", name, "--profile", profile, "--ca-dir", self.dir,
                         "--out", out or self.out, "--passphrase-file", self.passfile, *extra)

    def issued(self, name, profile, *extra, out=None):
        """Issues and asserts success; returns (crt path, key path, colon-hex serial)."""
        p = self.issue(name, profile, *extra, out=out)
        assert p.returncode == 0, show(p)
        m = re.search(r"serial ([0-9A-F]{2}(?::[0-9A-F]{2})+)", p.stdout)
        assert m, "no serial in the output of cert issue\n" + show(p)
        out = Path(out or self.out)
        return out / (name + ".crt"), out / (name + ".key"), m.group(1)

    def list(self, *extra):
        """`cert list --format json` parsed; asserts exit 0."""
        p = self.duet("cert", "list", "--ca-dir", self.dir, "--format", "json", *extra)
        assert p.returncode == 0, show(p)
        return json.loads(p.stdout)

    def row(self, serial):
        rows = [r for r in self.list() if r["serial"] == serial]
        assert len(rows) == 1, "serial %s appears %d times in cert list" % (serial, len(rows))
        return rows[0]

    def crl(self, out, *extra):
        return self.duet("crl", "generate", "--ca-dir", self.dir, "--out", out,
                         "--passphrase-file", self.passfile, *extra)


def show(p):
    """A CompletedProcess as text for assertion messages."""
    return "command: %s\nexit: %s\nstdout: %r\nstderr: %r" % (
        " ".join(map(str, p.args)), p.returncode, p.stdout, p.stderr)


@pytest.fixture(scope="session")
def make_ca(run_env, tmp_path_factory):
    """make_ca(name="Demo Corp", *init_args) -> a fresh DuetCA, `duet ca init` asserted OK."""

    def _make(name="Demo Corp", *init_args):
        ca = DuetCA(run_env, tmp_path_factory.mktemp("duetca"), name)
        p = ca.init(*init_args)
        assert p.returncode == 0, show(p)
        return ca

    return _make


# --- duet proxy and duet tunnel (helpers in proxyutil.py) -----------------------------------

from proxyutil import (EchoUpstream, Procs, ProxyPKI, RawUpstream,  # noqa: E402
                       client_context)


@pytest.fixture(scope="session")
def dpki_made(duet_bin, tmp_path_factory):
    """The proxy tests' PKI, made once per session by the binary under test; never used
    directly: each module gets its own copy (dpki)."""
    if not (duet_bin.is_file() and os.access(duet_bin, os.X_OK)):
        pytest.fail("duet binary not found or not executable at %s" % duet_bin, pytrace=False)
    return ProxyPKI(duet_bin, tmp_path_factory.mktemp("proxy-pki-made"))


@pytest.fixture(scope="module")
def dpki(dpki_made, tmp_path_factory):
    """The proxy tests' PKI (proxyutil.ProxyPKI) for one test module: a copy of the session's,
    so that what a module issues, revokes or signs stays in that module, as when each module
    made its own (a copy and two CRLs signed again instead of a dozen runs of duet)."""
    return dpki_made.copy_to(tmp_path_factory.mktemp("proxy-pki"))


@pytest.fixture(scope="module")
def module_procs(tmp_path_factory):
    """Processes started for a whole test module, stopped at its end."""
    procs = Procs(tmp_path_factory.mktemp("procs"))
    yield procs
    procs.close()


@pytest.fixture
def procs(tmp_path):
    """Processes started by one test, stopped at its end."""
    procs = Procs(tmp_path)
    yield procs
    procs.close()


@pytest.fixture(scope="module")
def echo():
    """An HTTP upstream answering each request with the request as JSON (Python's http.server)."""
    up = EchoUpstream()
    yield up
    up.close()


@pytest.fixture
def fresh_echo():
    up = EchoUpstream()
    yield up
    up.close()


@pytest.fixture(scope="module")
def raw_up():
    """An upstream that records every byte and parses requests strictly."""
    up = RawUpstream()
    yield up
    up.close()


@pytest.fixture
def alice(dpki):
    return client_context(dpki.roots, dpki.alice_crt, dpki.alice_key)


@pytest.fixture
def henry(dpki):
    return client_context(dpki.roots, dpki.henry_crt, dpki.henry_key)


@pytest.fixture
def bob(dpki):
    return client_context(dpki.roots, dpki.bob_crt, dpki.bob_key)
