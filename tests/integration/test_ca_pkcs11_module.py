# SPDX-License-Identifier: Apache-2.0
"""The PKCS#11 module a key URI names is code run inside the process holding the CA key and
the PIN (docs/ca-ha.md "The module duet loads"): duet loads it only from an absolute path,
owned by root or the user duet runs as and writable by no one else, in a directory protected
alike, as it refuses a PIN file readable by others.  Against a real SoftHSM2 token: a copy of
its module in a temporary directory, whose mode or owner the test changes.

What a user checks: the sentence names the module's path (or its directory), what is wrong
and the chmod/chown that fixes it, for `ca init`, `ca import-key` and every signing command
reading key_uri from ca.yaml; the system module /usr/lib/softhsm/libsofthsm2.so (owned by
root) keeps working, and a fixed mode works again.
"""

import os
import shutil

from conftest import DuetCA, show
from test_ca_pkcs11 import MODULE, token  # noqa: F401
from test_ca_pkcs11_objects import import_key, issue_and_verify


def key_uri(module, label="issuing"):
    return "pkcs11:token=duet-ca;object=%s?module-path=%s" % (label, module)


def writable(uri, path, mode, what=None):
    return ("%s: %s is writable by group or others (mode %03o); refusing to load the module: "
            "fix with: chmod go-w %s" % (uri, what or "the PKCS#11 module %s" % path, mode, path))


def test_module_writable_by_others_is_never_loaded(token, make_ca, run_env,  # noqa: F811
                                                   tmp_path):
    mods = tmp_path / "mods"
    mods.mkdir(mode=0o755)
    os.chmod(mods, 0o755)
    mod = mods / "libsofthsm2.so"
    shutil.copy(os.path.realpath(MODULE), mod)
    os.chmod(mod, 0o755)
    uri = key_uri(mod)
    ca = make_ca("Module Corp", "--key-uri", uri)
    issue_and_verify(ca, "good-module")

    # Group-writable: every command that opens the key refuses, naming the file.
    os.chmod(mod, 0o775)
    p = ca.issue("bad-module", "server", "--san", "dns:bad.corp.example")
    assert p.returncode == 1, show(p)
    assert writable(uri, mod, 0o775) in p.stderr, show(p)
    assert not (ca.out / "bad-module.crt").exists()
    p = ca.crl(tmp_path / "c.crl")
    assert p.returncode == 1 and writable(uri, mod, 0o775) in p.stderr, show(p)
    # ca init with that module (libp11's loader) and import-key (duet's own dlopen).
    other = DuetCA(run_env, tmp_path / "o", "Other Module Corp")
    p = other.init("--key-uri", uri)
    assert p.returncode == 1 and writable(uri, mod, 0o775) in p.stderr, show(p)
    assert not (other.dir / "ca.yaml").exists()
    filed = make_ca("Filed Module Corp")
    p = import_key(filed, key_uri(mod, "moved"))
    assert p.returncode == 1, show(p)
    assert writable(key_uri(mod, "moved"), mod, 0o775) in p.stderr, show(p)
    assert (filed.dir / "issuing.key").exists()

    # The module fine, its directory writable by others.
    os.chmod(mod, 0o755)
    os.chmod(mods, 0o777)
    p = ca.issue("bad-dir", "server", "--san", "dns:bad.corp.example")
    assert p.returncode == 1, show(p)
    assert writable(uri, mods, 0o777, "the directory %s holding the PKCS#11 module %s"
                    % (mods, mod)) in p.stderr, show(p)

    # A link to it from a directory anyone can write to.
    os.chmod(mods, 0o755)
    pub = tmp_path / "pub"
    pub.mkdir()
    os.chmod(pub, 0o1777)
    (pub / "libsofthsm2.so").symlink_to(mod)
    link_uri = key_uri(pub / "libsofthsm2.so")
    p = DuetCA(run_env, tmp_path / "l", "Link Corp").init("--key-uri", link_uri)
    assert p.returncode == 1, show(p)
    assert writable(link_uri, pub, 0o1777 & 0o777, "the directory %s holding the PKCS#11 "
                    "module %s" % (pub, pub / "libsofthsm2.so")) in p.stderr, show(p)

    # Owned by another user (only root can give a file away; CI runs as root).
    if os.geteuid() == 0:
        os.chown(mod, 1, -1)
        p = ca.issue("bad-owner", "server", "--san", "dns:bad.corp.example")
        assert p.returncode == 1, show(p)
        assert ("%s: the PKCS#11 module %s is owned by uid 1, not by root or by the user duet "
                "runs as (uid 0); refusing to load the module: fix with: chown root %s"
                % (uri, mod, mod)) in p.stderr, show(p)
        os.chown(mod, 0, -1)

    # A bare name the loader would search for.
    p = DuetCA(run_env, tmp_path / "n", "Name Corp").init(
        "--key-uri", key_uri("libsofthsm2.so"))
    assert p.returncode == 1, show(p)
    assert "the PKCS#11 module libsofthsm2.so is not an absolute path" in p.stderr, show(p)

    # Fixed: the same CA signs again.
    issue_and_verify(ca, "fixed-module")


def test_system_module_owned_by_root_is_loaded(token, make_ca):  # noqa: F811
    st = os.stat(os.path.realpath(MODULE))
    assert st.st_uid == 0 and not st.st_mode & 0o022
    ca = make_ca("System Module Corp", "--key-uri", key_uri(MODULE))
    issue_and_verify(ca, "system-module")
