# SPDX-License-Identifier: Apache-2.0
"""/readyz tells the truth about revocation data (issue 11, B): once a CRL in use passes its
nextUpdate (and the listener refuses clients for it, crl_expired: reject), the proxy is not
ready, and says why; with crl_expired: warn it stays ready."""

import time

from proxyutil import admin_get
from test_security_proxy_ops import ALICE, pargs, start


def test_readyz_fails_when_a_crl_goes_stale(dpki, procs, echo, tmp_path):
    crl = tmp_path / "short.crl"
    dpki.duet("crl", "generate", "--ca-dir", dpki.ca, "--out", crl, "--next-update", "4s")
    t0 = time.monotonic()
    strict = start(procs, dpki.duet_bin, tmp_path / "reject", "proxy",
                   pargs(dpki, "127.0.0.1:%d" % echo.port, "--allow", ALICE, "--crl", crl),
                   "reject")
    warn = start(procs, dpki.duet_bin, tmp_path / "warn", "proxy",
                 pargs(dpki, "127.0.0.1:%d" % echo.port, "--allow", ALICE, "--crl", crl,
                       "--crl-expired", "warn"), "warn")
    status, text = admin_get(strict.admin, "/readyz")
    assert status == 200, text
    time.sleep(max(0, 5.5 - (time.monotonic() - t0)))
    status, text = admin_get(strict.admin, "/readyz")
    assert status == 503 and "passed its nextUpdate" in text, (status, text)
    status, text = admin_get(warn.admin, "/readyz")
    assert status == 200 and "nextUpdate" not in text, (status, text)
