# SPDX-License-Identifier: Apache-2.0
"""`duet ca import-key` killed half way (docs/ca-ha.md "An import-key that was interrupted"),
against a real SoftHSM2 token in a temporary directory.

The moment is found without any hook in duet: the PIN file is a FIFO, so the process blocks
each time it reads the PIN.  It reads it once to write the key objects into the token and once
more to have the token sign a probe, before ca.yaml is switched: at that second read the key is
in the token and ca.yaml still names the file, and the test kills the process with SIGKILL.

What a user checks: the CA goes on signing with issuing.key, neither the PIN nor key bytes
reached the command line or the output, the same import run again finishes (the token's object
is this CA's key), and an object of that label that is not this CA's key is refused with a
sentence naming the label and the pkcs11-tool command that removes it.
"""

import os
import signal
import subprocess
import time

from conftest import show
from test_ca_pkcs11 import MODULE, PIN, cert_pubkey, private_key_files, token  # noqa: F401
from test_ca_pkcs11_objects import import_key, issue_and_verify, objects, token_matches_cert, uri


def fds_on(pid, path):
    """How many of pid's file descriptors are open on path."""
    n = 0
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            n += os.readlink("/proc/%d/fd/%s" % (pid, fd)) == str(path)
        except OSError:
            pass
    return n


def wait_for(cond, proc, what, limit=60):
    """Poll cond() until true; fail if proc exits first or after `limit` seconds."""
    end = time.monotonic() + limit
    while not cond():
        assert proc.poll() is None, "duet exited (%s) while waiting for %s: %r" % (
            proc.returncode, what, proc.stderr.read())
        assert time.monotonic() < end, "timed out waiting for " + what
        time.sleep(0.005)


def reader_waiting(fifo):
    """Whether a process has the FIFO open for reading (or waits in open() for a writer)."""
    try:
        fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
    except OSError:
        return None
    return fd


def serve_pin_once(proc, fifo):
    """Wait for duet to open the PIN FIFO, hand it the PIN, and wait until it closed it."""
    box = []
    wait_for(lambda: box.append(reader_waiting(fifo)) or box[-1] is not None, proc,
             "duet to read the PIN")
    fd = box[-1]
    # Keep the write end open until duet holds the FIFO: it reads to end of file, so it
    # cannot close it before this side does.
    os.write(fd, (PIN + "\n").encode())
    wait_for(lambda: fds_on(proc.pid, fifo) > 0, proc, "duet to hold the PIN FIFO")
    os.close(fd)
    wait_for(lambda: fds_on(proc.pid, fifo) == 0, proc, "duet to close the PIN FIFO")


def test_import_key_killed_after_the_key_went_into_the_token(token, make_ca, duet_bin,  # noqa: F811
                                                             tmp_path, monkeypatch):
    ca = make_ca("Crash Corp")
    yaml = (ca.dir / "ca.yaml").read_text()
    key = (ca.dir / "issuing.key").read_bytes()
    monkeypatch.delenv("DUET_PKCS11_PIN")
    fifo = tmp_path / "pin.fifo"
    os.mkfifo(fifo, 0o600)
    env = {k: v for k, v in os.environ.items() if k != "DUET_CA_PASSPHRASE"}
    argv = [str(duet_bin), "ca", "import-key", "--ca-dir", str(ca.dir), "--key-uri",
            uri("crash", "81"), "--pin-file", str(fifo), "--passphrase-file", str(ca.passfile)]
    proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        # First PIN: the session that writes the private and public key objects.
        serve_pin_once(proc, fifo)
        # Second PIN: the token is asked to sign a probe; ca.yaml is not switched yet.
        box = []
        wait_for(lambda: box.append(reader_waiting(fifo)) or box[-1] is not None, proc,
                 "duet to read the PIN a second time")
        cmdline = open("/proc/%d/cmdline" % proc.pid, "rb").read()
        environ = open("/proc/%d/environ" % proc.pid, "rb").read()
        proc.send_signal(signal.SIGKILL)
        out, errs = proc.communicate(timeout=30)
        os.close(box[-1])
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    # Killed with the key in the token and the CA directory untouched.
    mine = [o for o in objects(token) if o["label"] == "crash"]
    assert sorted(o["kind"] for o in mine) == ["private", "public"], mine
    assert token_matches_cert(token, "crash", ca.issuing)
    assert (ca.dir / "ca.yaml").read_text() == yaml
    assert (ca.dir / "issuing.key").read_bytes() == key
    assert not (ca.dir / "issuing-offline.key").exists()
    # Neither the PIN nor a key reached the command line, the environment or the output.
    for blob in (cmdline, environ, out, errs):
        assert PIN.encode() not in blob and b"PRIVATE KEY" not in blob, blob
    # The CA still signs, with its file.
    issue_and_verify(ca, "between")
    # The same import again finishes the job: the token's object is this CA's key.
    pin = tmp_path / "pin"
    pin.write_text(PIN + "\n")
    os.chmod(pin, 0o600)
    p = import_key(ca, uri("crash", "81"), "--pin-file", pin)
    assert p.returncode == 0, show(p)
    assert ('token "duet-ca" already holds this CA\'s issuing key under object "crash" (an '
            'earlier import was interrupted); using it') in p.stdout, show(p)
    assert 'key_uri: "%s&pin-source=file:%s"' % (uri("crash", "81"), pin) \
        in (ca.dir / "ca.yaml").read_text()
    assert private_key_files(ca.dir) == ["issuing-offline.key", "root.key"]
    assert [o["kind"] for o in objects(token) if o["label"] == "crash"].count("private") == 1
    (ca.dir / "issuing-offline.key").rename(tmp_path / "offline.key")
    _, serial = issue_and_verify(ca, "after")
    assert ca.row(serial)["status"] == "valid"
    assert PIN not in p.stdout + p.stderr


def test_import_key_refuses_a_label_holding_another_key_and_says_how_to_free_it(  # noqa: F811
        token, make_ca):
    ca = make_ca("Taken Label Corp")
    yaml = (ca.dir / "ca.yaml").read_text()
    before = token.public_key_pem()
    n = len(objects(token))
    # "issuing" (id 01) is the key pkcs11-tool made: not this CA's.
    p = import_key(ca, uri("issuing"))
    assert p.returncode == 1, show(p)
    want = ('%s: token "duet-ca" already holds an object labelled "issuing" that is not this '
            'CA\'s issuing key (%s/issuing.crt); nothing was imported. Name a new object= '
            'in --key-uri, or, if that object is an unused leftover, delete it with: '
            'pkcs11-tool --module %s --token-label duet-ca --login --delete-object '
            '--type privkey --label issuing (and again with --type pubkey)'
            % (uri("issuing"), ca.dir, MODULE))
    assert want in p.stderr, show(p)
    assert PIN not in p.stderr
    assert len(objects(token)) == n and token.public_key_pem() == before
    assert (ca.dir / "ca.yaml").read_text() == yaml
    assert cert_pubkey(ca.issuing) != before
    issue_and_verify(ca, "still-file")
