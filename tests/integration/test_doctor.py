# SPDX-License-Identifier: Apache-2.0
"""`duet doctor`: a proxy or tunnel configuration, or a set of files, checked before it fails.

Table-driven: a correct set-up reports "no problems found", exit 0 and an empty JSON array; each
broken one (made from the openssl test PKI of pki.py) gives the finding docs/cli/doctor.md
documents: its code and severity, the file, the YAML key with its line, and the fix, in text and
in JSON alike, and the exit status that goes with the severity."""

import datetime as _dt
import json
import os
import shutil
from pathlib import Path

import pytest

from pki import CA, openssl

CERTS_DIR = Path("/etc/ssl/certs")


def show(p):
    return "exit %s\nstdout:\n%s\nstderr:\n%s" % (p.returncode, p.stdout, p.stderr)


def doctor(run, *args):
    """`duet doctor ARGS` as text, then as JSON: (text result, JSON array)."""
    t = run("doctor", *args)
    j = run("doctor", *args, "--format", "json")
    assert j.returncode == t.returncode, show(t) + show(j)
    try:
        found = json.loads(j.stdout)
    except ValueError:
        raise AssertionError("--format json printed no JSON:\n" + show(j))
    assert isinstance(found, list), j.stdout
    return t, found


def finding(found, code):
    for f in found:
        if f["code"] == code:
            return f
    raise AssertionError("no finding %r in %s" % (code, json.dumps(found, indent=1)))


def text_finding(out, code):
    """The three lines of a finding in the text output: head, problem, fix."""
    lines = out.splitlines()
    for i, line in enumerate(lines):
        if line.split(":", 1)[0].split(" ")[-1:] == [code] and i + 2 < len(lines):
            assert lines[i + 2].startswith("  fix: "), out
            return line, lines[i + 1].strip(), lines[i + 2].strip()[len("fix: "):]
    raise AssertionError("no finding %r in:\n%s" % (code, out))


# --- the PKI: pki.py's, plus what only these tests need -------------------------------------

class DoctorPKI:
    def __init__(self, pki, d):
        now = _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0)
        self.pki = pki
        self.d = d
        # A server certificate that expires in 10 days.
        key = self.copy_key(pki.eckey("doctor-soon"))
        csr = pki.csr("doctor-soon", key, "/CN=soon.example")
        self.soon = d / "soon.pem"
        pki.int_ca.sign(csr, self.soon, "v3_server", start=now - _dt.timedelta(days=1),
                        end=now + _dt.timedelta(days=10, hours=12))
        self.soon_chain = self.cat("soon-chain.pem", self.soon, pki.int)
        self.soon_key = key
        # A root CRL that reaches its nextUpdate in 12 hours.
        self.root_crl_soon = d / "root-soon.crl"
        pki.root_ca.gencrl(self.root_crl_soon, "-crlhours", "12")
        # An expired root CA, to find in a trust bundle.
        okey = pki.eckey("doctor-old-root")
        oca = CA(pki, "doctor-old-root", None, okey, "0D01")
        self.old_root = d / "old-root.pem"
        oca.sign(pki.csr("doctor-old-root", okey, "/CN=Old Root CA"), self.old_root, "v3_root",
                 selfsign=True, start=now - _dt.timedelta(days=400),
                 end=now - _dt.timedelta(days=5))
        # A certificate whose name carries an escape sequence and a newline.
        self.evil = d / "evil.pem"
        openssl("req", "-x509", "-new", "-config", pki.ext_cnf, "-extensions", "v3_alice",
                "-key", pki.alice_key, "-subj", "/CN=evil\x1b[31m\nred", "-days", "10",
                "-out", self.evil)
        # The intermediate's CRL, made now but valid only from two days on (a CA clock ahead).
        self.int_crl_future = d / "int-future.crl"
        fmt = "%Y%m%d%H%M%SZ"
        pki.int_ca.gencrl(self.int_crl_future,
                          "-crl_lastupdate", (now + _dt.timedelta(days=2)).strftime(fmt),
                          "-crl_nextupdate", (now + _dt.timedelta(days=30)).strftime(fmt))
        # An impostor intermediate: the intermediate's name, another key, no key identifiers,
        # issued by the root; the server certificate followed by it only looks like a chain.
        ext = d / "impostor.cnf"
        ext.write_text("[ v3 ]\nbasicConstraints = critical, CA:TRUE, pathlen:0\n"
                       "keyUsage = critical, keyCertSign, cRLSign\n"
                       "subjectKeyIdentifier = none\nauthorityKeyIdentifier = none\n")
        ikey = pki.eckey("doctor-impostor")
        icsr = pki.csr("doctor-impostor", ikey, "/O=Duet Test/CN=Duet Test Intermediate CA")
        self.impostor = d / "impostor.pem"
        openssl("x509", "-req", "-in", icsr, "-CA", pki.root, "-CAkey", pki.root_key,
                "-set_serial", "4243", "-days", "100", "-extfile", ext, "-extensions", "v3",
                "-out", self.impostor)
        self.impostor_chain = self.cat("impostor-chain.pem", pki.server, self.impostor)
        # A server certificate issued by the root itself, with no intermediate.
        rkey = self.copy_key(pki.eckey("doctor-by-root"))
        self.by_root = d / "by-root.pem"
        pki.root_ca.sign(pki.csr("doctor-by-root", rkey, "/O=Duet Test/CN=byroot.example"),
                         self.by_root, "v3_expired")  # serverAuth, no CRL distribution point
        self.by_root_key = rkey
        # A public root of the system store.
        roots = sorted(CERTS_DIR.glob("*.pem")) if CERTS_DIR.is_dir() else []
        if not roots:
            pytest.fail("no public roots in /etc/ssl/certs (Debian package ca-certificates; "
                        "`make deps` installs it)", pytrace=False)
        self.public_root = roots[0].resolve()

    def copy_key(self, path):
        out = self.d / Path(path).name
        shutil.copyfile(path, out)
        os.chmod(out, 0o600)
        return out

    def cat(self, name, *parts):
        out = self.d / name
        out.write_bytes(b"".join(Path(p).read_bytes() for p in parts))
        return out


@pytest.fixture(scope="module")
def dk(pki, tmp_path_factory):
    return DoctorPKI(pki, tmp_path_factory.mktemp("doctor"))


# --- configurations ---------------------------------------------------------------------------

def good_listener(pki):
    """The keys of a correct proxy listener, in the order written."""
    return {
        "name": "web",
        "listen": "127.0.0.1:18443",
        "mode": "http",
        "cert": pki.server_chain,
        "key": pki.server_key,
        "cacert": pki.root,
        "crl": [pki.int_crl, pki.root_crl],
        "target": ["127.0.0.1:8080"],
        "rules": None,
    }


def write_config(path, listener, top=None):
    """The YAML of one listener (and top-level keys); returns {key: line} of the listener's."""
    lines, where = ["listeners:"], {}
    for i, (k, v) in enumerate(listener.items()):
        if v is False:
            continue
        where[k] = len(lines) + 1
        head = "  - " if i == 0 else "    "
        if k == "rules":
            lines.append(head + "rules:")
            lines.append("      - {name: everyone, allow: [any]}")
        elif isinstance(v, list):
            lines.append(head + "%s: [%s]" % (k, ", ".join(str(x) for x in v)))
        else:
            lines.append(head + "%s: %s" % (k, v))
    for k, v in (top or {}).items():
        where[k] = len(lines) + 1
        lines.append("%s: %s" % (k, v))
    path.write_text("\n".join(lines) + "\n")
    return where


def test_a_correct_proxy_config_has_no_problems(run, pki, tmp_path):
    cfg = tmp_path / "proxy.yaml"
    write_config(cfg, good_listener(pki))
    t, found = doctor(run, "--config", cfg)
    assert t.returncode == 0, show(t)
    assert t.stdout == "no problems found\n", show(t)
    assert found == [], found


def test_correct_files_have_no_problems(run, pki):
    t, found = doctor(run, "--cert", pki.server_chain, "--key", pki.server_key,
                      "--cacert", pki.root, "--crl", pki.int_crl, "--crl", pki.root_crl)
    assert t.returncode == 0 and t.stdout == "no problems found\n", show(t)
    assert found == []
    t, found = doctor(run, "--cert", pki.alice_chain, "--key", pki.alice_key,
                      "--cacert", pki.root, "--role", "client")
    assert t.returncode == 0 and t.stdout == "no problems found\n", show(t)


# Each broken set-up (a bundle with a second root has no CRLs: the extra root's missing CRL
# would be a finding of its own): (id, change(listener, dk, pki, tmp) -> (listener, top), code,
# severity, the listener key the finding names (None: a top-level key), the file it names
# ("key": the value of that key; str: a CRL file; None: none), a part of the sentence, a part
# of the fix).

def key_mode(lst, dk, pki, tmp):
    key = tmp / "server.key"
    shutil.copyfile(pki.server_key, key)
    os.chmod(key, 0o640)
    lst["key"] = key
    return lst, None


CASES = [
    ("key_mismatch", lambda l, dk, p, t: (dict(l, key=p.alice_key), None),
     "key_mismatch", "error", "key", "key", "does not belong to the certificate CN=server.example",
     "give the key made with this certificate"),
    ("leaf_only", lambda l, dk, p, t: (dict(l, cert=p.server), None),
     "chain_incomplete", "error", "cert", "key",
     "is issued by CN=Duet Test Intermediate CA,O=Duet Test, which the file does not carry",
     "append the issuing CA to the file"),
    ("wrong_order", lambda l, dk, p, t: (dict(l, cert=dk.cat("bad-order.pem", p.server, p.root,
                                                              p.int)), None),
     "chain_wrong_order", "warning", "cert", "key", "is not followed by its issuer",
     "write the file in order"),
    ("client_cert_on_server", lambda l, dk, p, t: (dict(l, cert=p.alice_chain, key=p.alice_key),
                                                   None),
     "eku_no_server_auth", "error", "cert", "key", "does not include serverAuth",
     "--profile server"),
    ("expired", lambda l, dk, p, t: (dict(l, cert=p.expired_chain, key=p.p("expired.key")), None),
     "cert_expired", "error", "cert", "key", "expired on", "renew it: duet cert renew 6C:00:"),
    ("not_yet_valid", lambda l, dk, p, t: (dict(l, cert=p.future_chain, key=p.p("future.key")),
                                           None),
     "cert_not_yet_valid", "error", "cert", "key", "is not valid before", "check this machine's"),
    ("expiring", lambda l, dk, p, t: (dict(l, cert=dk.soon_chain, key=dk.soon_key), None),
     "cert_expiring", "warning", "cert", "key", "(10 days left)", "renew it: duet cert renew"),
    ("crl_missing", lambda l, dk, p, t: (dict(l, crl=[p.int_crl]), None),
     "crl_missing", "error", "cacert", "key", "no CRL of CN=Duet Test Root CA,O=Duet Test",
     "crl_from_cdp: true"),
    ("crl_expired", lambda l, dk, p, t: (dict(l, crl=[p.int_crl_expired, p.root_crl]), None),
     "crl_expired", "error", "crl", str, "is past its nextUpdate", "duet crl generate"),
    ("crl_expiring", lambda l, dk, p, t: (dict(l, crl=[p.int_crl, dk.root_crl_soon]), None),
     "crl_expiring", "warning", "crl", str, "reaches its nextUpdate", "before then"),
    ("key_mode", key_mode,
     "key_mode", "error", "key", "key", "mode is 0640: group or others may read it", "chmod 600"),
    ("public_root", lambda l, dk, p, t: (dict(l, cacert=dk.cat("with-public.pem", p.root,
                                                                dk.public_root), crl=False), None),
     "trust_public_root", "warning", "cacert", "key", "also found in the system store",
     "trust only your private CA"),
    ("expired_ca", lambda l, dk, p, t: (dict(l, cacert=dk.cat("with-old.pem", p.root,
                                                               dk.old_root), crl=False), None),
     "trust_ca_expired", "warning", "cacert", "key", "CN=Old Root CA", "remove it from the bundle"),
    ("extra_root", lambda l, dk, p, t: (dict(l, cacert=dk.cat("two-roots.pem", p.root,
                                                               p.rogue_root), crl=False), None),
     "trust_extra_roots", "info", "cacert", "key", "holds 2 root CAs", "keep only its root"),
    ("missing_file", lambda l, dk, p, t: (dict(l, cert=p.missing), None),
     "file_unreadable", "error", "cert", "key", "does-not-exist.pem", "check the path"),
    ("plaintext_target", lambda l, dk, p, t: (dict(l, target=["192.0.2.10:80"],
                                                   unsafe_target="true"), None),
     "target_plaintext", "warning", "target", None, "192.0.2.10:80 is not on loopback",
     "use upstream TLS"),
    ("admin_everywhere", lambda l, dk, p, t: (l, {"admin": "0.0.0.0:19090"}),
     "admin_exposed", "warning", None, None, "is on 0.0.0.0:19090", "admin: 127.0.0.1:PORT"),
    ("crl_not_yet_valid", lambda l, dk, p, t: (dict(l, crl=[dk.int_crl_future, p.root_crl]),
                                               None),
     "crl_not_yet_valid", "error", "crl", str,
     "the CRL of CN=Duet Test Intermediate CA,O=Duet Test is not valid before",
     "check this machine's clock"),
    ("chain_bad_signature", lambda l, dk, p, t: (dict(l, cert=dk.impostor_chain), None),
     "chain_bad_signature", "error", "cert", "key",
     "certificate 0, CN=server.example", "the certificate of the CA that really issued it"),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_each_broken_proxy_config_gets_its_finding(run, pki, dk, tmp_path, case):
    _, change, code, severity, key, filekey, problem, fix = case
    listener, top = change(good_listener(pki), dk, pki, tmp_path)
    cfg = tmp_path / "proxy.yaml"
    lines = write_config(cfg, listener, top)
    t, found = doctor(run, "--config", cfg)
    assert t.returncode == (1 if severity == "error" else 0), show(t)
    f = finding(found, code)
    assert f["severity"] == severity and f["config"] == str(cfg), f
    if key is None:
        assert f["key"] == "admin" and f["line"] == lines["admin"], f
    else:
        assert f["key"] == "listeners[0].%s" % key and f["line"] == lines[key], f
        assert f["listener"] == "web", f
    if filekey == "key":
        value = listener[key]
        assert f["file"] == str(value), f
    elif filekey is str:
        assert f["file"] is not None and Path(f["file"]).suffix == ".crl", f
    else:
        assert f["file"] is None, f
    assert problem in f["problem"], f
    assert fix in f["fix"], f
    # The same finding in the text.
    head, sentence, fixline = text_finding(t.stdout, code)
    assert head.startswith("%s %s: " % (severity, code)), head
    assert ("%s:%d" % (cfg, f["line"])) in head, head
    if f["file"] is not None:
        assert head[len("%s %s: " % (severity, code)):].startswith(f["file"]), head
    assert problem in sentence and fixline == f["fix"], (sentence, fixline)
    if severity == "error":
        assert "result: " in t.stdout and "no problems found" not in t.stdout
    else:
        assert [x for x in found if x["severity"] == "error"] == [], found


def tunnel_listener(pki, listen, unsafe_listen=False):
    """The keys of a correct tunnel listener on `listen` (quoted: "[::1]:1" is YAML's list)."""
    return {"name": "up", "listen": '"%s"' % listen, "target": ["127.0.0.1:8443"],
            "server_name": "server.example", "cert": pki.alice_chain, "key": pki.alice_key,
            "cacert": pki.root, "unsafe_listen": unsafe_listen and "true"}


def test_a_tunnel_listening_beyond_loopback(run, pki, tmp_path):
    cfg = tmp_path / "tunnel.yaml"
    lines = write_config(cfg, tunnel_listener(pki, "0.0.0.0:18444", unsafe_listen=True))
    t, found = doctor(run, "--config", cfg)
    assert t.returncode == 0, show(t)
    f = finding(found, "listen_exposed")
    assert f["severity"] == "warning" and f["key"] == "listeners[0].listen", f
    assert f["line"] == lines["listen"] and "0.0.0.0:18444" in f["problem"], f
    assert "listen on 127.0.0.1" in f["fix"]
    # The tunnel's client certificate is checked as a client's: a server one is refused.
    write_config(cfg, {"name": "up", "listen": "127.0.0.1:18444", "target": ["127.0.0.1:8443"],
                       "server_name": "server.example", "cert": pki.server_chain,
                       "key": pki.server_key, "cacert": pki.root})
    t, found = doctor(run, "--config", cfg)
    assert t.returncode == 1, show(t)
    assert [x["code"] for x in found] == ["eku_no_client_auth"], found


@pytest.mark.parametrize("listen", ["[::ffff:127.0.0.1]:18444", "[::ffff:127.1.2.3]:18444",
                                    "[0:0:0:0:0:ffff:7f00:1]:18444", "[::1]:18444"])
def test_a_tunnel_on_ipv4_mapped_loopback_is_fine(run, pki, tmp_path, listen):
    """An IPv6 socket on ::ffff:127.x.y.z is reached only through 127.x.y.z: loopback, so the
    tunnel needs no unsafe_listen and doctor finds nothing (no false listen_exposed)."""
    cfg = tmp_path / "tunnel.yaml"
    write_config(cfg, tunnel_listener(pki, listen))
    t, found = doctor(run, "--config", cfg)
    assert t.returncode == 0 and found == [], show(t)
    assert "no problems found" in t.stdout, show(t)


@pytest.mark.parametrize("listen", ["[::ffff:0.0.0.0]:18444", "[::ffff:0:0]:18444", "[::]:18444",
                                    "[::ffff:192.0.2.1]:18444", "[::ffff:128.0.0.1]:18444"])
def test_a_tunnel_on_ipv4_mapped_other_addresses_is_exposed(run, pki, tmp_path, listen):
    """::ffff:0.0.0.0 is every IPv4 interface and ::ffff:128.0.0.1 is not loopback: with
    unsafe_listen the tunnel starts, and doctor warns listen_exposed on the listen line."""
    cfg = tmp_path / "tunnel.yaml"
    lines = write_config(cfg, tunnel_listener(pki, listen, unsafe_listen=True))
    t, found = doctor(run, "--config", cfg)
    assert t.returncode == 0, show(t)
    f = finding(found, "listen_exposed")
    assert f["severity"] == "warning" and f["line"] == lines["listen"], f
    assert ("the tunnel listens on %s, beyond loopback" % listen) in f["problem"], f


def test_an_invalid_config_is_one_error(run, pki, tmp_path):
    cfg = tmp_path / "proxy.yaml"
    cfg.write_text("listeners:\n  - listen: 127.0.0.1:1\n    cerrt: x.pem\n")
    t, found = doctor(run, "--config", cfg)
    assert t.returncode == 1, show(t)
    f = finding(found, "config_invalid")
    assert "cerrt is not a setting of duet proxy" in f["problem"], f
    assert "--check" in f["fix"]


FILE_CASES = [
    ("eku_client", ["--cert", "server_chain", "--key", "server_key", "--cacert", "root",
                    "--role", "client"], "eku_no_client_auth", "error", "--cert",
     "does not include clientAuth", "--profile client"),
    ("crl_required", ["--cert", "server_chain", "--key", "server_key", "--cacert", "root",
                      "--crl", "int_crl"], "crl_missing", "error", "--cert",
     "with CRLs given, CN=Duet Test Intermediate CA", "--crl FILE"),
    ("cdp_without_crl", ["--cert", "server_chain", "--key", "server_key", "--cacert", "root"],
     "crl_missing", "warning", "--cert",
     "names a CRL distribution point (http://127.0.0.1/int.crl)",
     "--crl FILE"),
    ("expired_crl", ["--cert", "server_chain", "--key", "server_key", "--cacert", "root",
                     "--crl", "int_crl_expired", "--crl", "root_crl"], "crl_expired", "error",
     "--crl", "past its nextUpdate", "duet crl generate"),
]


@pytest.mark.parametrize("case", FILE_CASES, ids=[c[0] for c in FILE_CASES])
def test_each_broken_file_set_gets_its_finding(run, pki, case):
    _, args, code, severity, flag, problem, fix = case
    argv = [a if a.startswith("--") or a in ("client", "server") else getattr(pki, a)
            for a in args]
    t, found = doctor(run, *argv)
    assert t.returncode == (1 if severity == "error" else 0), show(t)
    f = finding(found, code)
    assert f["severity"] == severity and f["key"] == flag, f
    assert f["config"] is None and f["line"] is None and f["listener"] is None, f
    value = argv[argv.index(flag) + 1]
    assert f["file"] == str(value), f
    assert problem in f["problem"] and fix in f["fix"], f
    head, sentence, fixline = text_finding(t.stdout, code)
    assert head == "%s %s: %s (%s)" % (severity, code, value, flag), head
    assert problem in sentence and fixline == f["fix"]


def test_names_from_certificates_reach_the_terminal_escaped(run, pki, dk):
    t, found = doctor(run, "--cert", dk.evil, "--key", pki.alice_key)
    assert t.returncode == 1, show(t)
    assert "\x1b" not in t.stdout and "\nred" not in t.stdout, repr(t.stdout)
    head, sentence, _ = text_finding(t.stdout, "eku_no_server_auth")
    assert sentence.startswith("CN=evil"), sentence
    assert all(0x20 <= ord(ch) < 0x7f for ch in t.stdout.replace("\n", "")), repr(t.stdout)
    assert "evil" in finding(found, "eku_no_server_auth")["problem"]


def test_key_owned_by_another_user(run, pki, tmp_path):
    """Run as root (CI), a key owned by nobody is a warning with the chown that fixes it."""
    key = tmp_path / "server.key"
    shutil.copyfile(pki.server_key, key)
    os.chmod(key, 0o600)
    if os.geteuid() == 0:
        os.chown(key, 65534, 65534)
        expect = ["key_owner"]
    else:
        expect = []  # nobody else's file can be made here; the unit test covers the check
    t, found = doctor(run, "--cert", pki.server_chain, "--key", key, "--cacert", pki.root,
                      "--crl", pki.int_crl, "--crl", pki.root_crl)
    assert t.returncode == 0, show(t)
    assert [f["code"] for f in found] == expect, found
    if expect:
        f = found[0]
        assert f["severity"] == "warning" and f["file"] == str(key), f
        assert f["fix"].startswith("chown root %s" % key), f


def test_usage_errors_exit_2(run, pki, tmp_path):
    for args, msg in [((), "nothing to check"),
                      (("--password-file", pki.password_file), "nothing to check"),
                      (("--cert", pki.server), "--cert and --key go together"),
                      (("--config", tmp_path / "none.yaml"), "cannot read the configuration"),
                      (("--config", tmp_path / "x.yaml", "--cert", pki.server),
                       "give either --config or"),
                      (("--cert", pki.server, "--key", pki.server_key, "--role", "peer"),
                       'expected server or client'),
                      (("--cert", pki.server, "--key", pki.server_key, "--within", "soon"),
                       "--within"),
                      (("--bogus",), "duet doctor: --bogus is not an option of this command")]:
        p = run("doctor", *args)
        assert p.returncode == 2, show(p)
        assert msg in p.stderr, show(p)
    p = run("help", "doctor")
    assert p.returncode == 0 and "--config FILE" in p.stdout and "--role server|client" in p.stdout


def test_a_path_that_is_not_utf8_keeps_its_finding_in_json(run, pki, tmp_path):
    """A key file named with a byte that is not UTF-8 still has its key_mode finding in JSON
    (escaped), and the text shows the byte as \\xNN."""
    key = Path(os.fsdecode(bytes(tmp_path) + b"/server-\xff.key"))
    shutil.copyfile(pki.server_key, key)
    os.chmod(key, 0o644)
    t, found = doctor(run, "--cert", pki.server_chain, "--key", key, "--cacert", pki.root,
                      "--crl", pki.int_crl, "--crl", pki.root_crl)
    assert t.returncode == 1, show(t)
    f = finding(found, "key_mode")
    assert f["file"].lower().endswith("server-\\xff.key"), f
    assert f["fix"].startswith("chmod 600 ") and f["fix"].lower().endswith("server-\\xff.key"), f
    assert "server-\\xff.key (--key)" in t.stdout.lower(), t.stdout
    assert "\xff" not in t.stdout and "\ufffd" not in t.stdout, repr(t.stdout)


def test_upstream_tls_files_are_a_clients(run, pki, tmp_path):
    """upstream_tls.cert is duet's client certificate toward the target: a server one is an
    error named by its key under upstream_tls; CRLs fetched by URL are not called missing."""
    cfg = tmp_path / "proxy.yaml"
    cfg.write_text("""\
listeners:
  - name: web
    listen: 127.0.0.1:18443
    cert: %(chain)s
    key: %(key)s
    cacert: %(root)s
    crl_urls: [http://127.0.0.1:9/int.crl]
    target: [192.0.2.1:443]
    upstream_tls:
      cert: %(chain)s
      key: %(key)s
      cacert: %(root)s
    rules:
      - {name: everyone, allow: [any]}
""" % dict(chain=pki.server_chain, key=pki.server_key, root=pki.root))
    t, found = doctor(run, "--config", cfg)
    assert t.returncode == 1, show(t)
    assert [f["code"] for f in found] == ["eku_no_client_auth"], found
    f = found[0]
    assert f["key"] == "listeners[0].upstream_tls.cert" and f["line"] == 10, f
    assert f["file"] == str(pki.server_chain), f
    head, _, fix = text_finding(t.stdout, "eku_no_client_auth")
    assert "(listeners[0].upstream_tls.cert, %s:10, listener web)" % cfg in head, head
    assert "--profile client" in fix


def test_an_encrypted_key_is_read_with_password_file(run, pki):
    base = ("--cert", pki.server_chain, "--key", pki.server_key_encrypted, "--cacert", pki.root,
            "--crl", pki.int_crl, "--crl", pki.root_crl)
    t, found = doctor(run, *base)
    assert t.returncode == 1, show(t)
    f = finding(found, "file_unreadable")
    assert f["key"] == "--key" and "is encrypted; a passphrase is needed" in f["problem"], f
    t, found = doctor(run, *base, "--password-file", pki.password_file)
    assert t.returncode == 0 and t.stdout == "no problems found\n", show(t)
    t, found = doctor(run, *base, "--password-file", pki.wrong_password_file)
    assert t.returncode == 1 and finding(found, "file_unreadable")["key"] == "--key", found


def test_an_intermediate_of_the_bundle_with_a_distribution_point(run, pki, tmp_path):
    """Without CRLs, an intermediate trusted for peers that names its root's CRL warns that the
    root's CRL is not checked."""
    ext = tmp_path / "ext.cnf"
    ext.write_text("[ v3 ]\nbasicConstraints = critical, CA:TRUE, pathlen:0\n"
                   "keyUsage = critical, keyCertSign, cRLSign\nsubjectKeyIdentifier = hash\n"
                   "authorityKeyIdentifier = keyid:always\n"
                   "crlDistributionPoints = URI:http://127.0.0.1/root.crl\n")
    key = pki.eckey("doctor-int-cdp")
    csr = pki.csr("doctor-int-cdp", key, "/CN=Intermediate With CDP")
    inter = tmp_path / "int-cdp.pem"
    openssl("x509", "-req", "-in", csr, "-CA", pki.root, "-CAkey", pki.root_key,
            "-set_serial", "4242", "-days", "100", "-extfile", ext, "-extensions", "v3",
            "-out", inter)
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(Path(pki.root).read_bytes() + inter.read_bytes())
    cfg = tmp_path / "proxy.yaml"
    lines = write_config(cfg, dict(good_listener(pki), cacert=bundle, crl=False))
    t, found = doctor(run, "--config", cfg)
    assert t.returncode == 0, show(t)
    assert [f["code"] for f in found] == ["crl_missing"], found
    f = found[0]
    assert f["severity"] == "warning" and f["file"] == str(bundle), f
    assert f["key"] == "listeners[0].cacert" and f["line"] == lines["cacert"], f
    assert f["problem"].startswith("no CRL of CN=Duet Test Root CA,O=Duet Test is given: "
                                   "CN=Intermediate With CDP"), f
    assert "(http://127.0.0.1/root.crl) that nothing checks" in f["problem"], f
    assert "crl_from_cdp: true" in f["fix"], f


@pytest.mark.parametrize("admin", ["0.0.0.0:19090", "[::]:19090", "[::ffff:0.0.0.0]:19090",
                                   "[0:0:0:0:0:0:0:0]:19090", "[::ffff:0:0]:19090",
                                   "0:19090"])
def test_admin_on_every_interface_in_any_spelling(run, pki, tmp_path, admin):
    """Every spelling of "all interfaces", the IPv4-mapped one included (an IPv6 socket on
    ::ffff:0.0.0.0 accepts every IPv4 client), is admin_exposed."""
    cfg = tmp_path / "proxy.yaml"
    write_config(cfg, good_listener(pki), {"admin": '"%s"' % admin})
    t, found = doctor(run, "--config", cfg)
    assert t.returncode == 0, show(t)
    f = finding(found, "admin_exposed")
    assert f["severity"] == "warning" and ("is on %s" % admin) in f["problem"], f


@pytest.mark.parametrize("admin", ["127.0.0.1:19090", "[::1]:19090", "[::ffff:127.0.0.1]:19090"])
def test_admin_on_loopback_is_fine(run, pki, tmp_path, admin):
    cfg = tmp_path / "proxy.yaml"
    write_config(cfg, good_listener(pki), {"admin": '"%s"' % admin})
    t, found = doctor(run, "--config", cfg)
    assert t.returncode == 0 and found == [], show(t)


def test_a_crl_not_yet_valid_from_flags(run, pki, dk):
    """duet proxy refuses every client with a CRL whose thisUpdate is ahead ("... is not valid
    before ..."): doctor says so instead of "no problems found"."""
    t, found = doctor(run, "--cert", pki.server_chain, "--key", pki.server_key,
                      "--cacert", pki.root, "--crl", dk.int_crl_future, "--crl", pki.root_crl)
    assert t.returncode == 1, show(t)
    assert [f["code"] for f in found] == ["crl_not_yet_valid"], found
    f = found[0]
    assert f["key"] == "--crl" and f["file"] == str(dk.int_crl_future), f
    assert "(in 2 days)" in f["problem"] or "(in 1 day)" in f["problem"], f


def test_a_chain_whose_ca_did_not_sign_the_leaf(run, pki, dk):
    """The leaf followed by a CA with its issuer's name but another key: names agree, the
    signature does not; both certificates are named."""
    t, found = doctor(run, "--cert", dk.impostor_chain, "--key", pki.server_key,
                      "--cacert", pki.root)
    assert t.returncode == 1, show(t)
    f = finding(found, "chain_bad_signature")
    assert f["severity"] == "error" and f["key"] == "--cert", f
    assert f["problem"].startswith("certificate 0, CN=server.example,O=Duet Test (serial "), f
    assert (", is not signed by the key of certificate 1, CN=Duet Test Intermediate CA,"
            "O=Duet Test (serial 10:93)") in f["problem"], f
    assert "chain_incomplete" not in [x["code"] for x in found], found
    # The real chain stays clean.
    t, found = doctor(run, "--cert", pki.server_chain, "--key", pki.server_key,
                      "--cacert", pki.root)
    assert "chain_bad_signature" not in [x["code"] for x in found], found


def test_files_in_a_directory_others_may_write(run, pki, tmp_path):
    """A key, trust bundle or CRL whose directory (or a parent) others may write, without the
    sticky bit, can be swapped by any local user: an error naming the directory and the chmod;
    group-writable only is a warning; the sticky bit (as on /tmp) is fine."""
    open_dir = tmp_path / "open"
    inner = open_dir / "inner"
    inner.mkdir(parents=True)
    key = inner / "server.key"
    shutil.copyfile(pki.server_key, key)
    os.chmod(key, 0o600)
    roots = tmp_path / "roots.pem"
    shutil.copyfile(pki.root, roots)
    os.chmod(open_dir, 0o777)
    os.chmod(inner, 0o700)
    try:
        t, found = doctor(run, "--cert", pki.server_chain, "--key", key, "--cacert", roots)
        assert t.returncode == 1, show(t)
        f = finding(found, "dir_writable")
        assert f["severity"] == "error" and f["key"] == "--key" and f["file"] == str(key), f
        assert ("the directory %s is writable by others" % open_dir) in f["problem"], f
        assert f["fix"].startswith("chmod go-w %s" % open_dir), f
        assert [x["key"] for x in found if x["code"] == "dir_writable"] == ["--key"], found
        os.chmod(open_dir, 0o770)
        t, found = doctor(run, "--cert", pki.server_chain, "--key", key, "--cacert", roots)
        f = finding(found, "dir_writable")
        assert f["severity"] == "warning" and "writable by its group" in f["problem"], f
        os.chmod(open_dir, 0o1777)
        t, found = doctor(run, "--cert", pki.server_chain, "--key", key, "--cacert", roots)
        assert "dir_writable" not in [x["code"] for x in found], found
        # The trust bundle and a CRL are checked alike.
        os.chmod(open_dir, 0o700)
        os.chmod(tmp_path, 0o757)
        t, found = doctor(run, "--cert", pki.server_chain, "--key", key, "--cacert", roots,
                          "--crl", pki.int_crl)
        assert sorted(x["key"] for x in found if x["code"] == "dir_writable") == \
            ["--cacert", "--key"], found
    finally:
        os.chmod(tmp_path, 0o700)
        os.chmod(open_dir, 0o700)


@pytest.mark.parametrize("flag", ["--key", "--cert", "--cacert", "--crl"])
def test_a_fifo_is_refused_without_waiting(run, pki, tmp_path, flag):
    """A FIFO (or a device) given as a file is not opened for reading: doctor would wait
    forever for a writer."""
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo, 0o600)
    args = {"--cert": pki.server_chain, "--key": pki.server_key, "--cacert": pki.root}
    args[flag] = fifo
    argv = [x for kv in args.items() for x in kv]
    if flag == "--crl":
        argv += ["--crl", fifo]
    t = run("doctor", *argv, "--format", "json", timeout=10)
    assert t.returncode == 1, show(t)
    found = json.loads(t.stdout)
    f = finding(found, "file_unreadable")
    assert f["key"] == flag and f["file"] == str(fifo), f
    assert "not a regular file" in f["problem"], f
    p = run("doctor", "--cert", pki.server_chain, "--key", "/dev/zero", timeout=10)
    assert p.returncode == 1 and "not a regular file" in p.stdout, show(p)


def test_a_leaf_issued_by_a_root_without_cacert(run, pki, dk):
    """Without --cacert the issuer of a lone leaf is unknown: doctor says it cannot check it
    rather than calling an intermediate missing; with the root given, nothing is wrong."""
    t, found = doctor(run, "--cert", dk.by_root, "--key", dk.by_root_key)
    assert t.returncode == 0, show(t)
    assert "chain_incomplete" not in [x["code"] for x in found], found
    f = finding(found, "chain_issuer_unknown")
    assert f["severity"] == "warning" and f["key"] == "--cert", f
    assert "CN=Duet Test Root CA,O=Duet Test" in f["problem"], f
    assert "root or an intermediate" in f["problem"] and "--cacert" in f["fix"], f
    t, found = doctor(run, "--cert", dk.by_root, "--key", dk.by_root_key, "--cacert", pki.root)
    assert t.returncode == 0 and found == [], show(t)


def test_a_public_intermediate_in_the_trust_bundle(run_env, pki, tmp_path):
    """An intermediate of a public CA (here: the system store is made of the rogue root, through
    SSL_CERT_FILE) trusted for peers lets anyone it certifies in, as the proxy accepts a chain
    ending at any certificate of the bundle: trust_public_root names it and its root."""
    key = pki.eckey("doctor-public-int")
    inter = tmp_path / "public-int.pem"
    pki.rogue_ca.sign(pki.csr("doctor-public-int", key, "/O=Duet Rogue/CN=Public Issuing CA"),
                      inter, "v3_intermediate")
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(Path(pki.root).read_bytes() + inter.read_bytes())
    env = {"SSL_CERT_FILE": str(pki.rogue_root), "SSL_CERT_DIR": str(tmp_path / "none")}
    argv = ["doctor", "--cert", pki.server_chain, "--key", pki.server_key, "--cacert", bundle,
            "--format", "json"]
    p = run_env(*argv, env=env)
    assert p.returncode == 0, show(p)
    f = finding(json.loads(p.stdout), "trust_public_root")
    assert f["severity"] == "warning" and f["key"] == "--cacert" and f["file"] == str(bundle), f
    assert f["problem"].startswith("certificate 1, CN=Public Issuing CA,O=Duet Rogue"), f
    assert "chains to CN=Duet Rogue Root CA,O=Duet Rogue of the system store" in f["problem"], f
    assert "trust only your private CA" in f["fix"], f
    # The private intermediate of the test PKI is not public.
    bundle.write_bytes(Path(pki.root).read_bytes() + Path(pki.int).read_bytes())
    p = run_env(*argv, env=env)
    assert "trust_public_root" not in [x["code"] for x in json.loads(p.stdout)], show(p)
