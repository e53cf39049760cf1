# SPDX-License-Identifier: Apache-2.0
"""The CA's keys at rest (issue 10): new keys are encrypted with PBKDF2-HMAC-SHA256 at
600,000 iterations, and `duet ca rekey-storage` brings keys written by earlier versions
(2048 iterations) to that, under the same or a new passphrase, changing nothing when it
cannot do all of it."""

import os
import re
import subprocess

from conftest import DuetCA, show

DEFAULT_KDF = {"DUET_CA_KDF_ITERATIONS": None}  # duet's own default, not the tests' setting


def kdf(path):
    """(iterations, prf) of an encrypted PKCS#8 PEM key, read with openssl asn1parse."""
    out = subprocess.run(["openssl", "asn1parse", "-in", str(path)], capture_output=True,
                         text=True, check=True).stdout
    it = re.search(r"prim: INTEGER\s+:([0-9A-F]+)", out)
    prf = re.search(r"OBJECT\s+:(hmacWith\w+)", out)
    return int(it.group(1), 16), prf.group(1) if prf else "hmacWithSHA1"


def weaken(path, passphrase):
    """Re-encrypt a key as duet did before: PBES2, AES-256-CBC, 2048 iterations."""
    env = dict(os.environ, P=passphrase)
    plain = subprocess.run(["openssl", "pkey", "-in", str(path), "-passin", "env:P"],
                           capture_output=True, check=True, env=env).stdout
    old = subprocess.run(["openssl", "pkcs8", "-topk8", "-v2", "aes-256-cbc", "-iter", "2048",
                          "-passout", "env:P"], input=plain, capture_output=True, check=True,
                         env=env).stdout
    with open(path, "wb") as f:
        f.write(old)
    os.chmod(path, 0o600)


def test_new_keys_use_600000_iterations(run_env, tmp_path):
    ca = DuetCA(run_env, tmp_path, "Storage Corp")
    p = ca.init(env=DEFAULT_KDF)
    assert p.returncode == 0, show(p)
    for name in ("root.key", "issuing.key"):
        assert kdf(ca.dir / name) == (600000, "hmacWithSHA256"), name


def test_kdf_iterations_setting(run_env, tmp_path):
    """DUET_CA_KDF_ITERATIONS (for test environments) sets the count of keys written; a bad
    value is refused by name before anything is written."""
    ca = DuetCA(run_env, tmp_path / "a", "Quick Corp")
    p = ca.init(env={"DUET_CA_KDF_ITERATIONS": "5000"})
    assert p.returncode == 0, show(p)
    assert kdf(ca.dir / "issuing.key") == (5000, "hmacWithSHA256")
    for bad in ("999", "lots", "-1"):
        ca = DuetCA(run_env, tmp_path / ("bad" + bad), "Bad Corp")
        p = ca.init(env={"DUET_CA_KDF_ITERATIONS": bad})
        assert p.returncode != 0, show(p)
        assert 'DUET_CA_KDF_ITERATIONS "%s": expected a number of PBKDF2 iterations' % bad \
            in p.stderr, show(p)
        assert not (ca.dir / "issuing.key").exists()


def test_rekey_storage_upgrades_old_keys(make_ca, tmp_path):
    ca = make_ca("Old Keys Corp")
    for name in ("root.key", "issuing.key"):
        weaken(ca.dir / name, ca.passphrase)
        assert kdf(ca.dir / name)[0] == 2048
    p = ca.duet("ca", "rekey-storage", "--ca-dir", ca.dir, "--passphrase-file", ca.passfile,
                env=DEFAULT_KDF)
    assert p.returncode == 0, show(p)
    for name in ("issuing.key", "root.key"):
        assert re.search(re.escape(name) + r": PBES2 aes-256-cbc, PBKDF2-hmacWithSHA256, 2048 "
                         r"iterations -> PBES2 aes-256-cbc, PBKDF2-hmacWithSHA256, 600000 "
                         r"iterations", p.stdout), show(p)
        assert kdf(ca.dir / name) == (600000, "hmacWithSHA256")
        assert os.stat(ca.dir / name).st_mode & 0o777 == 0o600
    assert not list(ca.dir.glob("*.rekey"))
    crt, _, _ = ca.issued("after-rekey", "client")
    assert crt.is_file()


def test_rekey_storage_with_a_new_passphrase(make_ca, tmp_path):
    ca = make_ca("New Pass Corp")
    newfile = tmp_path / "new.pass"
    newfile.write_text("a different long passphrase\n")
    os.chmod(newfile, 0o600)
    p = ca.duet("ca", "rekey-storage", "--ca-dir", ca.dir, "--passphrase-file", ca.passfile,
                "--new-passphrase-file", newfile)
    assert p.returncode == 0, show(p)
    assert "the keys now open with the new passphrase only" in p.stdout
    old = ca.issue("with-old", "client")
    assert old.returncode != 0 and "wrong CA passphrase" in old.stderr, show(old)
    p = ca.duet("cert", "issue", "with-new", "--profile", "client", "--ca-dir", ca.dir,
                "--out", ca.out, "--passphrase-file", newfile)
    assert p.returncode == 0, show(p)


def test_rekey_storage_changes_nothing_when_it_cannot_do_all(make_ca, tmp_path):
    ca = make_ca("Careful Corp")
    before = {n: (ca.dir / n).read_bytes() for n in ("root.key", "issuing.key")}
    wrong = tmp_path / "wrong.pass"
    wrong.write_text("not the passphrase\n")
    os.chmod(wrong, 0o600)
    p = ca.duet("ca", "rekey-storage", "--ca-dir", ca.dir, "--passphrase-file", wrong)
    assert p.returncode == 1, show(p)
    assert "nothing was changed" in p.stderr, show(p)
    short = tmp_path / "short.pass"
    short.write_text("short\n")
    os.chmod(short, 0o600)
    p = ca.duet("ca", "rekey-storage", "--ca-dir", ca.dir, "--passphrase-file", ca.passfile,
                "--new-passphrase-file", short)
    assert p.returncode == 1 and "at least 8 characters" in p.stderr, show(p)
    os.chmod(ca.dir / "issuing.key", 0o644)
    p = ca.duet("ca", "rekey-storage", "--ca-dir", ca.dir, "--passphrase-file", ca.passfile)
    assert p.returncode == 1 and "readable by group or others" in p.stderr, show(p)
    os.chmod(ca.dir / "issuing.key", 0o600)
    assert {n: (ca.dir / n).read_bytes() for n in before} == before
    p = ca.duet("ca", "rekey-storage")
    assert p.returncode == 2 and "--ca-dir DIR is required" in p.stderr, show(p)
