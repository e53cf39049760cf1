# SPDX-License-Identifier: Apache-2.0
"""Session resumption is bound to the listener and trust that verified the session.

Listeners that share ticket keys (`ticket_keys`) open each other's tickets.  A session must
resume only under the configuration that admitted it: a ticket issued by a listener that
trusts an attacker's CA ("Evil Root", whose certificate names spiffe://test-corp/alice) must
not resume on a listener that never trusted that CA, and a ticket must stop resuming once the
CA that verified it is removed from the trust file and the proxy reloaded.  The client is
`openssl s_client`, which saves its session with -sess_out (in TLS 1.3 the ticket arrives
after the handshake, so a request is sent and the response read first) and offers it with
-sess_in; its output says "Reused" or "New".  A refused client must show up in the proxy's
log as a failed handshake naming the untrusted issuer.
"""

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from proxyutil import DuetLog, free_port, openssl

REQUEST = b"GET /resume HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
ALICE = "spiffe://test-corp/alice"


# --- fixtures --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def evil(tmp_path_factory):
    """An attacker's CA, "Evil Root", and a client certificate it made for alice's name."""
    d = tmp_path_factory.mktemp("evil")
    root_key, root = d / "root.key", d / "root.pem"
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", root_key, "-out", root, "-days", "2", "-subj", "/O=Evil/CN=Evil Root",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    key, csr, crt = d / "alice.key", d / "alice.csr", d / "alice.crt"
    openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", key, "-out", csr, "-subj", "/O=Evil/CN=alice")
    ext = d / "leaf.ext"
    ext.write_text("basicConstraints=critical,CA:FALSE\n"
                   "keyUsage=critical,digitalSignature\n"
                   "extendedKeyUsage=clientAuth\n"
                   "subjectAltName=URI:%s\n" % ALICE)
    openssl("x509", "-req", "-in", csr, "-CA", root, "-CAkey", root_key, "-CAcreateserial",
            "-days", "1", "-extfile", ext, "-out", crt)
    os.chmod(key, 0o600)
    return {"root": root, "crt": crt, "key": key}


def ticket_keys(path):
    path.write_text(openssl("rand", "-hex", "80"))
    os.chmod(path, 0o600)
    return path


def listener_yaml(name, port, dpki, cacert, keys, upstream, rule):
    return """\
  - name: %(name)s
    listen: 127.0.0.1:%(port)d
    mode: http
    cert: %(cert)s
    key: %(key)s
    cacert: %(cacert)s
    ticket_keys: %(keys)s
    target: [127.0.0.1:%(up)d]
    rules:
      - {name: %(name)s-rule, allow: ["%(rule)s"]}
""" % dict(name=name, port=port, cert=dpki.server_crt, key=dpki.server_key, cacert=cacert,
           keys=keys, up=upstream, rule=rule)


def start_config(procs, dpki, workdir, listeners):
    """Start `duet proxy --config` with the given listener YAML blocks; returns its log."""
    log = workdir / "proxy.log"
    cfg = workdir / "proxy.yaml"
    cfg.write_text("listeners:\n%slog: %s\nworkers: 1\n" % ("".join(listeners), log))
    p = procs.start([dpki.duet_bin, "proxy", "--config", cfg], "proxy")
    dl = DuetLog(log, p, procs)
    dl.wait_event("start", timeout=10)
    return dl, p


def s_client(port, dpki, crt, key, sess_out=None, sess_in=None):
    """One request with `openssl s_client` presenting crt; returns its stdout and stderr.

    -ign_eof keeps it reading after the request until the proxy closes the connection, so a
    TLS 1.3 ticket sent after the handshake is taken in and written by -sess_out.
    """
    argv = ["openssl", "s_client", "-connect", "127.0.0.1:%d" % port, "-servername",
            "localhost", "-CAfile", str(dpki.roots), "-cert", str(crt), "-cert_chain", str(crt),
            "-key", str(key),
            "-tls1_3", "-ign_eof"]
    if sess_out is not None:
        argv += ["-sess_out", str(sess_out)]
    if sess_in is not None:
        argv += ["-sess_in", str(sess_in)]
    p = subprocess.run(argv, input=REQUEST, capture_output=True, timeout=20)
    return p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")


def get_ticket(port, dpki, crt, key, sess, log):
    """A full handshake and a request that succeeds; the session (with its ticket) in sess."""
    mark = log.mark()
    out, err = s_client(port, dpki, crt, key, sess_out=sess)
    assert "HTTP/1.1 200 OK" in out, out + err
    assert "New, TLSv1.3" in out, out
    hs = log.wait_event("handshake", mark, result="ok")
    assert hs["resumed"] is False and hs["identity"]["name"] == ALICE, hs
    assert sess.is_file() and "BEGIN SSL SESSION PARAMETERS" in sess.read_text()
    return hs


def assert_refused_not_resumed(port, dpki, crt, key, sess, log):
    """Offering the session: no resumption, and the full handshake refuses the Evil client."""
    mark = log.mark()
    out, err = s_client(port, dpki, crt, key, sess_in=sess)
    assert "Reused," not in out, "the ticket must not resume here:\n" + out
    assert "HTTP/1.1 200" not in out, "the Evil client must not get through:\n" + out
    hs = log.wait_event("handshake", mark, result="failed")
    assert hs.get("resumed") in (None, False), hs
    assert "was issued by CN=Evil Root,O=Evil" in hs["reason"], hs
    assert "not among the trusted certificates" in hs["reason"], hs
    assert not log.since(mark, "authz"), "nothing may be authorized for it"


# --- tests -----------------------------------------------------------------------------------

def test_ticket_from_listener_trusting_evil_ca_does_not_resume_on_the_other(
        dpki, evil, procs, fresh_echo, tmp_path):
    """Two listeners share ticket keys; one trusts Evil Root.  Its ticket, offered to the
    listener that trusts only Test Corp, falls back to a full handshake that refuses the Evil
    certificate; a ticket of the good listener still resumes there (the normal case)."""
    keys = ticket_keys(tmp_path / "ticket.keys")
    p_evil, p_good = free_port(), free_port()
    log, _ = start_config(procs, dpki, tmp_path, [
        listener_yaml("evil", p_evil, dpki, evil["root"], keys, fresh_echo.port, "any"),
        listener_yaml("good", p_good, dpki, dpki.roots, keys, fresh_echo.port, "uri:" + ALICE)])
    sess = tmp_path / "evil.sess"
    get_ticket(p_evil, dpki, evil["crt"], evil["key"], sess, log)
    before = len(fresh_echo.requests)
    assert_refused_not_resumed(p_good, dpki, evil["crt"], evil["key"], sess, log)
    assert len(fresh_echo.requests) == before, "nothing may reach the good listener's upstream"

    # The normal case: alice's own ticket from the good listener resumes on it.
    good_sess = tmp_path / "good.sess"
    get_ticket(p_good, dpki, dpki.alice_crt, dpki.alice_key, good_sess, log)
    mark = log.mark()
    out, err = s_client(p_good, dpki, dpki.alice_crt, dpki.alice_key, sess_in=good_sess)
    assert "Reused, TLSv1.3" in out and "HTTP/1.1 200 OK" in out, out + err
    hs = log.wait_event("handshake", mark, result="ok")
    assert hs["resumed"] is True and hs["identity"]["name"] == ALICE, hs


def test_removing_a_ca_and_reloading_retires_its_tickets(dpki, evil, procs, fresh_echo, tmp_path):
    """A ticket verified against Evil Root stops resuming once Evil Root is removed from the
    trust file and the proxy reloaded (SIGHUP): the full handshake refuses it.  A reload
    that changes nothing keeps tickets resuming (a no-op reload is not a new trust)."""
    keys = ticket_keys(tmp_path / "ticket.keys")
    cacert = tmp_path / "cacert.pem"
    roots = Path(dpki.roots).read_text()
    cacert.write_text(roots + Path(evil["root"]).read_text())
    port = free_port()
    log, proc = start_config(procs, dpki, tmp_path, [
        listener_yaml("web", port, dpki, cacert, keys, fresh_echo.port, "uri:" + ALICE)])

    def reload():
        mark = log.mark()
        proc.send_signal(signal.SIGHUP)
        log.wait_event("reload", mark, result="ok")

    sess = tmp_path / "evil.sess"
    get_ticket(port, dpki, evil["crt"], evil["key"], sess, log)
    reload()
    mark = log.mark()
    out, err = s_client(port, dpki, evil["crt"], evil["key"], sess_in=sess)
    assert "Reused, TLSv1.3" in out and "HTTP/1.1 200 OK" in out, out + err
    assert log.wait_event("handshake", mark, result="ok")["resumed"] is True

    cacert.write_text(roots)  # Evil Root removed
    reload()
    assert_refused_not_resumed(port, dpki, evil["crt"], evil["key"], sess, log)


def test_resumed_session_is_still_rechecked_for_expiry(dpki, procs, fresh_echo, tmp_path):
    """Binding sessions does not replace the re-check of a resumed session: a ticket whose
    client certificate has expired since still resumes (same configuration) but is refused
    by tls_check_resumed, with the expiry in the log."""
    crt, key = dpki.issue("client", "alice", "--ttl", "5s", out=tmp_path / "brief")
    keys = ticket_keys(tmp_path / "ticket.keys")
    port = free_port()
    log, _ = start_config(procs, dpki, tmp_path, [
        listener_yaml("web", port, dpki, dpki.roots, keys, fresh_echo.port, "uri:" + ALICE)])
    sess = tmp_path / "brief.sess"
    get_ticket(port, dpki, crt, key, sess, log)
    time.sleep(6)
    mark = log.mark()
    out, err = s_client(port, dpki, crt, key, sess_in=sess)
    assert "Reused, TLSv1.3" in out, out + err
    assert "HTTP/1.1 200" not in out, "an expired certificate must not get through:\n" + out
    hs = log.wait_event("handshake", mark, result="failed")
    assert hs["reason"].startswith("resumed session: certificate CN=alice"), hs
    assert "expired on" in hs["reason"], hs
