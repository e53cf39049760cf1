# SPDX-License-Identifier: Apache-2.0
"""`duet cert export`: refuses to overwrite without --force, refuses a password file others can
read (with the chmod that fixes it), reads a PKCS#12 back into PEM (--from-p12) and creates
--out DIR; `cert issue --out DIR` creates DIR too."""

import os
import stat
import subprocess

from conftest import show


def pub(path, kind):
    cmd = (["openssl", "x509", "-in", str(path), "-noout", "-pubkey"] if kind == "cert"
           else ["openssl", "pkey", "-in", str(path), "-pubout"])
    return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout


def password_file(tmp_path, mode=0o600):
    p = tmp_path / "p12.pass"
    p.write_text("export password\n")
    os.chmod(p, mode)
    return p


def export(ca, *args):
    return ca.duet("cert", "export", *args)


def test_export_refuses_to_overwrite_without_force(make_ca, tmp_path):
    ca = make_ca("Export Force")
    crt, key, _ = ca.issued("web", "server")
    out = tmp_path / "web.pem"
    out.write_text("keep me\n")
    p = export(ca, "--cert", crt, "--key", key, "--format", "pem", "--out", out)
    assert p.returncode == 1, show(p)
    assert p.stderr == ("duet cert export: --out %s already exists; choose another file or "
                        "--force\n" % out)
    assert out.read_text() == "keep me\n"
    p = export(ca, "--cert", crt, "--key", key, "--format", "pem", "--out", out, "--force")
    assert p.returncode == 0, show(p)
    assert "BEGIN PRIVATE KEY" in out.read_text()


def test_export_refuses_a_password_file_others_can_read(make_ca, tmp_path):
    ca = make_ca("Export Mode")
    crt, key, _ = ca.issued("web", "server")
    pw = password_file(tmp_path, 0o640)
    out = tmp_path / "web.p12"
    p = export(ca, "--cert", crt, "--key", key, "--format", "p12", "--password-file", pw,
               "--out", out)
    assert p.returncode == 1, show(p)
    assert p.stderr == ("duet cert export: %s: the password file is readable by group or others "
                        "(mode 640); fix with: chmod 600 %s\n" % (pw, pw))
    assert not out.exists()
    p = export(ca, "--from-p12", out, "--password-file", pw, "--out", tmp_path / "x")
    assert p.returncode == 1 and "fix with: chmod 600" in p.stderr, show(p)


def test_p12_round_trip_into_a_new_directory(make_ca, tmp_path):
    ca = make_ca("Export P12")
    crt, key, _ = ca.issued("web", "server")
    pw = password_file(tmp_path)
    p12 = tmp_path / "web.p12"
    p = export(ca, "--cert", crt, "--key", key, "--format", "p12", "--password-file", pw,
               "--out", p12)
    assert p.returncode == 0, show(p)
    back = tmp_path / "restored" / "tls"
    p = export(ca, "--from-p12", p12, "--password-file", pw, "--out", back)
    assert p.returncode == 0, show(p)
    assert p.stdout == "wrote %s/web.key (key, 0600) and %s/web.crt (2 certificates)\n" % (
        back, back)
    assert stat.S_IMODE(os.stat(back).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(back.parent).st_mode) == 0o755
    assert stat.S_IMODE(os.stat(back / "web.key").st_mode) == 0o600
    assert pub(back / "web.key", "key") == pub(crt, "cert")
    # leaf then the issuing CA, as cert issue wrote them
    assert (back / "web.crt").read_text() == crt.read_text()
    # again: refused without --force, nothing replaced
    before = (back / "web.key").read_bytes()
    p = export(ca, "--from-p12", p12, "--password-file", pw, "--out", back)
    assert p.returncode == 1 and "already exists; choose another file or --force" in p.stderr
    assert (back / "web.key").read_bytes() == before
    p = export(ca, "--from-p12", p12, "--password-file", pw, "--out", back, "--name", "api",
               "--force")
    assert p.returncode == 0 and (back / "api.crt").exists(), show(p)


def test_from_p12_wrong_password_and_not_a_p12(make_ca, tmp_path):
    ca = make_ca("Export Bad")
    crt, key, _ = ca.issued("web", "server")
    pw = password_file(tmp_path)
    p12 = tmp_path / "web.p12"
    assert export(ca, "--cert", crt, "--key", key, "--format", "p12", "--password-file", pw,
                  "--out", p12).returncode == 0
    bad = tmp_path / "bad.pass"
    bad.write_text("wrong\n")
    os.chmod(bad, 0o600)
    p = export(ca, "--from-p12", p12, "--password-file", bad, "--out", tmp_path / "o")
    assert p.returncode == 1 and str(p12) in p.stderr, show(p)
    assert not (tmp_path / "o").exists()
    p = export(ca, "--from-p12", crt, "--password-file", pw, "--out", tmp_path / "o")
    assert p.returncode == 1, show(p)
    assert p.stderr == "duet cert export: %s: expected a PKCS#12 file, found PEM\n" % crt


def test_issue_creates_out_dir(make_ca, tmp_path):
    ca = make_ca("Export Mkdir")
    out = tmp_path / "new" / "certs"
    p = ca.issue("web", "server", out=out)
    assert p.returncode == 0, show(p)
    assert (out / "web.key").exists() and stat.S_IMODE(os.stat(out).st_mode) == 0o700
