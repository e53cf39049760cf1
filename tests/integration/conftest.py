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
