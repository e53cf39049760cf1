# SPDX-License-Identifier: Apache-2.0
"""Crash safety of `duet cert issue`: SIGKILL at random moments, then audit the disk.

The guarantee (issue 3): the inventory records a certificate in the same transaction that
allocates its serial, before the certificate is written out, so killing duet at any instant
never leaves a certificate on disk that the inventory does not know, and never reuses a serial.

Two issuers run at once in each round (so they also contend for the inventory's lock) and
each is killed after a random delay drawn from 0 to 1.5 times the time one issue takes on this
machine (about 8 ms here): a fixed 0-50 ms window would mostly kill processes that had
already exited.  The seed is printed on failure; DUET_CRASH_SEED replays a run.
"""

import json
import os
import random
import signal
import sqlite3
import stat
import statistics
import subprocess
import time

from pki import colon_hex

ROUNDS = 100
TIME_BUDGET_S = 40


def cert_facts(crt):
    """(serial, CN, number of certificates) of a PEM chain file, read with openssl."""
    p = subprocess.run(["openssl", "x509", "-in", str(crt), "-noout", "-serial", "-subject",
                        "-nameopt", "RFC2253"], capture_output=True, text=True)
    assert p.returncode == 0, "%s is not a readable certificate: %s" % (crt, p.stderr)
    vals = dict(line.split("=", 1) for line in p.stdout.strip().splitlines())
    cn = [part[3:] for part in vals["subject"].split(",") if part.startswith("CN=")][0]
    return colon_hex(vals["serial"]), cn, crt.read_text().count("-----BEGIN CERTIFICATE-----")


def pub(path, is_key):
    args = ["openssl", "pkey", "-in", str(path), "-pubout"] if is_key else \
        ["openssl", "x509", "-in", str(path), "-noout", "-pubkey"]
    p = subprocess.run(args, capture_output=True, text=True)
    assert p.returncode == 0, "%s: %s" % (path, p.stderr)
    return p.stdout


def test_sigkill_during_issue_leaves_no_unknown_certificate_and_no_repeated_serial(
        make_ca, duet_bin):
    ca = make_ca("Crash Org")
    seed = int(os.environ.get("DUET_CRASH_SEED", time.time_ns() % 2**32))
    rng = random.Random(seed)
    ctx = "seed %d (replay with DUET_CRASH_SEED=%d)" % (seed, seed)

    env = {k: v for k, v in os.environ.items() if k != "DUET_CA_PASSPHRASE"}

    def argv(name):
        return [str(duet_bin), "cert", "issue", name, "--profile", "server", "--ca-dir",
                str(ca.dir), "--out", str(ca.out), "--passphrase-file", str(ca.passfile)]

    # How long one issue takes here, to aim the kills inside it.
    took = []
    for i in range(5):
        t = time.perf_counter()
        p = subprocess.run(argv("warm%d" % i), capture_output=True, text=True, env=env)
        took.append(time.perf_counter() - t)
        assert p.returncode == 0, p.stderr
    window = min(max(1.5 * statistics.median(took), 0.004), 0.05)

    outcomes = {"killed": 0, "finished": 0, "failed": 0}
    failures = []
    start = time.monotonic()
    for r in range(ROUNDS):
        if time.monotonic() - start > TIME_BUDGET_S:
            break
        procs = []
        for j in range(2):
            procs.append((subprocess.Popen(argv("c%03d-%d" % (r, j)), env=env,
                                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                           stderr=subprocess.PIPE, text=True),
                          rng.uniform(0, window)))
        t0 = time.perf_counter()
        for proc, delay in sorted(procs, key=lambda x: x[1]):
            left = delay - (time.perf_counter() - t0)
            if left > 0:
                time.sleep(left)
            try:
                proc.send_signal(signal.SIGKILL)
            except ProcessLookupError:
                pass
        for proc, _ in procs:
            _, err = proc.communicate(timeout=30)
            if proc.returncode == -signal.SIGKILL:
                outcomes["killed"] += 1
            elif proc.returncode == 0:
                outcomes["finished"] += 1
            else:
                # A survivor may time out on a lock a killed peer held; that must be a
                # clean refusal, never a crash.
                outcomes["failed"] += 1
                failures.append((proc.returncode, err.strip()))
                assert proc.returncode > 0, "duet died of signal %d: %s (%s)" % (
                    -proc.returncode, err, ctx)
    assert outcomes["killed"] >= 20, "too few kills landed inside duet: %r (%s)" % (
        outcomes, ctx)

    # The audit a user would do: every certificate on disk is in the inventory.
    p = ca.duet("cert", "list", "--ca-dir", ca.dir, "--format", "json")
    assert p.returncode == 0, "cert list after the crashes: %s (%s)" % (p.stderr, ctx)
    rows = json.loads(p.stdout)
    row_serials = [row["serial"] for row in rows]
    assert len(row_serials) == len(set(row_serials)), "a serial repeats in the inventory (%s)" % ctx
    known = {row["serial"]: row for row in rows}

    crts = sorted(ca.out.glob("*.crt"))
    assert len(crts) >= 5, crts
    disk_serials = []
    for crt in crts:
        serial, cn, count = cert_facts(crt)
        disk_serials.append(serial)
        assert count == 2, "%s holds %d certificates, expected leaf then issuing CA (%s)" % (
            crt, count, ctx)
        assert serial in known, "%s (serial %s) is on disk but not in the inventory (%s)" % (
            crt, serial, ctx)
        assert known[serial]["name"] == cn == crt.stem, (crt, known[serial], ctx)
        key = crt.with_suffix(".key")
        assert key.is_file(), "%s without its key (%s)" % (crt, ctx)
        assert pub(key, True) == pub(crt, False), "%s does not match %s (%s)" % (key, crt, ctx)
    assert len(disk_serials) == len(set(disk_serials)), "a serial repeats on disk (%s)" % ctx

    # Whatever a kill left behind (a temporary file) never exposes a private key.
    for f in ca.out.iterdir():
        if "PRIVATE KEY" in f.read_text(errors="replace"):
            assert stat.S_IMODE(f.stat().st_mode) == 0o600, "%s is readable by others (%s)" % (
                f, ctx)

    # The inventory survived: SQLite's own check, and the CA still issues.
    db = sqlite3.connect("file:%s?mode=ro" % (ca.dir / "inventory.db"), uri=True)
    try:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok", ctx
    finally:
        db.close()
    _, _, serial = ca.issued("after-the-crashes", "server")
    assert serial not in known
    print("crash test: %s, %d rounds, window %.1f ms, outcomes %r, %d on disk, %d rows, "
          "failures %r" % (ctx, r + 1, window * 1000, outcomes, len(crts), len(rows),
                           failures[:3]))
