# SPDX-License-Identifier: Apache-2.0
"""The certificate lifecycle end to end, with no human after the first token (issue 10):
`duet ca serve` issues, `duet agent` enrolls a host and keeps its certificate fresh under a
profile of 45-second certificates, `duet proxy` serves with those files and is told by the
agent's hook, and clients connect in a loop all along.

Asserted as a user would see it: no client request fails, the proxy presents each new
certificate, the hook ran for each renewal, and after the CA server is killed during a renewal
window and started again the agent recovers and the inventory holds every certificate, each
renewal linked to its predecessor.
"""

import json
import os
import re
import signal
import socket
import ssl
import subprocess
import threading
import time

from conftest import show
from proxyutil import DuetLog, Procs, free_port
from test_ca_serve import CAServer, make_token

# 45 s certificates, backdated by a minute: renewed 10 s after each issuance (two thirds of
# 105 s) plus up to 5 s of jitter.
TTL = 45
OK_EVENTS = ("agent_enrolled", "agent_renewed", "agent_hook", "agent_scheduled", "agent_started",
             "agent_bootstrap", "agent_nothing_due", "agent_stopped")


def set_server_ttl(ca, ttl):
    """The CA's `server` profile issues certificates of ttl seconds (duet ca serve gives
    api_ttl, duet cert issue default_ttl)."""
    path = ca.dir / "ca.yaml"
    text = path.read_text()
    for key in ("default_ttl", "api_ttl"):
        text, n = re.subn(r"(  server:\n(?:    .*\n)*?    %s: )\S+" % key, r"\g<1>%ds" % ttl,
                          text)
        assert n == 1, text
    path.write_text(text)


def inventory(ca, name):
    """The inventory rows of one identity, each with its renewal links (cert show)."""
    rows = [r for r in ca.list() if r["name"] == name]
    out = []
    for r in rows:
        p = ca.duet("cert", "show", r["serial"], "--ca-dir", ca.dir)
        assert p.returncode == 0, show(p)
        fields = dict(re.findall(r"^(\w+)\s+(.*)$", p.stdout, re.M))
        out.append({"serial": r["serial"], "renews": fields.get("renews", "-"),
                    "renewed_by": fields.get("renewed_by", "-")})
    return out


class Clients:
    """A client connecting to the proxy again and again (a new TLS connection each time),
    recording each answer and the serial of the certificate the proxy presented."""

    def __init__(self, port, ctx):
        self.port, self.ctx = port, ctx
        self.ok, self.failures, self.serials = 0, [], []
        self.stop = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stop:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=5) as raw:
                    with self.ctx.wrap_socket(raw, server_hostname="localhost") as s:
                        der = s.getpeercert(binary_form=True)
                        s.sendall(b"GET /e2e HTTP/1.1\r\nHost: localhost\r\n"
                                  b"Connection: close\r\n\r\n")
                        data = b""
                        while True:
                            d = s.recv(65536)
                            if not d:
                                break
                            data += d
                if not data.startswith(b"HTTP/1.1 200"):
                    self.failures.append(data[:200])
                else:
                    self.ok += 1
                    serial = subprocess.run(["openssl", "x509", "-inform", "DER", "-noout",
                                             "-serial"], input=der, capture_output=True,
                                            check=True).stdout.strip()
                    if not self.serials or self.serials[-1] != serial:
                        self.serials.append(serial)
            except (OSError, ssl.SSLError) as e:
                self.failures.append(repr(e))
            time.sleep(0.2)

    def finish(self):
        self.stop = True
        self.thread.join(timeout=10)


def test_agent_keeps_a_proxy_serving_through_renewals_and_a_ca_outage(duet_bin, make_ca,
                                                                        tmp_path):
    ca = make_ca("Lifecycle Corp")
    set_server_ttl(ca, TTL)
    server = CAServer(duet_bin, ca).start()
    procs = Procs(tmp_path)
    try:
        # The host: a token, then `duet agent --once` enrolls (the key never leaves it).
        host = tmp_path / "host"
        (host / "state").mkdir(parents=True)
        token = host / "web.token"
        token.write_text(make_token(ca, "web", "server", "--san", "dns:localhost",
                                    "--san", "ip:127.0.0.1") + "\n")
        os.chmod(token, 0o600)
        fp = subprocess.run(["openssl", "x509", "-in", str(ca.root), "-noout", "-fingerprint",
                             "-sha256"], capture_output=True, text=True,
                            check=True).stdout.strip().split("=", 1)[1]
        hooks = host / "hooks.log"
        pid_file = host / "proxy.pid"
        cfg = host / "agent.yaml"
        cfg.write_text("""\
ca_url: https://localhost:%(port)d
root_fingerprint: "%(fp)s"
state_dir: %(host)s/state
log: %(host)s/agent.jsonl
backoff_min: 1s
backoff_max: 4s
certificates:
  - name: web
    cert: %(host)s/web.crt
    key: %(host)s/web.key
    token_file: %(token)s
    on_renew:
      exec: ["/bin/sh", "-c", "date +%%s >> %(hooks)s; kill -HUP $(cat %(pid)s) || true"]
""" % dict(port=server.port, fp=fp, host=host, token=token, hooks=hooks, pid=pid_file))
        p = subprocess.run([str(duet_bin), "agent", "--config", str(cfg), "--once"],
                           capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, show(p)
        assert not token.exists(), "the token file is deleted after use"
        assert os.stat(host / "web.key").st_mode & 0o777 == 0o600

        # duet proxy serves with the agent's files; alice comes from the CLI (a year).
        alice_crt, alice_key, _ = ca.issued("alice", "client")
        roots = tmp_path / "roots.pem"
        roots.write_text(ca.duet("ca", "roots", "--ca-dir", ca.dir).stdout)
        up = socket.socket()
        up.bind(("127.0.0.1", 0))
        up.listen(64)

        def upstream():
            while True:
                try:
                    c, _ = up.accept()
                except OSError:
                    return
                with c:
                    buf = b""
                    while b"\r\n\r\n" not in buf:
                        d = c.recv(65536)
                        if not d:
                            break
                        buf += d
                    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close"
                              b"\r\n\r\nok\n")

        threading.Thread(target=upstream, daemon=True).start()
        port = free_port()
        log = tmp_path / "proxy.jsonl"
        proxy = procs.start([duet_bin, "proxy", "--listen", "127.0.0.1:%d" % port,
                             "--target", "127.0.0.1:%d" % up.getsockname()[1],
                             "--cert", host / "web.crt", "--key", host / "web.key",
                             "--cacert", roots, "--allow", "any", "--log", log], "proxy")
        pid_file.write_text("%d\n" % proxy.pid)
        DuetLog(log, proxy, procs).wait_event("start", timeout=15)

        agent = procs.start([duet_bin, "agent", "--config", cfg], "agent")
        ctx = ssl.create_default_context(cafile=str(roots))
        ctx.load_cert_chain(str(alice_crt), str(alice_key))
        clients = Clients(port, ctx)

        # Two renewals with the CA up.
        deadline = time.monotonic() + 150
        while time.monotonic() < deadline and len(clients.serials) < 3:
            time.sleep(0.5)
        assert len(clients.serials) >= 3, (clients.serials, clients.failures)

        # The CA server dies; the agent's next renewal window passes while it is down: the
        # agent logs the failure (the wait fails if it exits) and keeps running.
        server.kill()
        agent_log = DuetLog(host / "agent.jsonl", agent, procs)
        agent_log.wait(lambda e: e.get("event") not in OK_EVENTS, agent_log.mark(), timeout=90,
                       what="a failure logged while the CA is down")
        assert agent.poll() is None, procs.stderr(agent)
        server.start()
        seen = len(clients.serials)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(clients.serials) <= seen:
            time.sleep(0.5)
        # Clients on a loaded machine connect less often: give them the time for 100 answers.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and clients.ok <= 100:
            time.sleep(0.5)
        clients.finish()
        assert len(clients.serials) > seen, "no renewal after the CA came back"
        assert clients.failures == [], clients.failures[:5]
        assert clients.ok > 100, clients.ok

        # The agent stops (a renewal under way finishes first), so that its log and the
        # inventory are read with no renewal between them.
        agent.send_signal(signal.SIGTERM)
        assert agent.wait(timeout=30) == 0, procs.stderr(agent)
        events = agent_log.events()
        kinds = [e["event"] for e in events]
        assert "agent_enrolled" in kinds and kinds.count("agent_renewed") >= 3, kinds
        failed = [e for e in events if e["event"] not in OK_EVENTS]
        assert failed, "the outage left no trace in the agent's log: %s" % kinds
        assert all("seconds_left" in e for e in failed if e.get("certificate") == "web"), failed
        assert len(hooks.read_text().split()) >= 3

        # Every certificate the agent got is in the inventory, each renewal linked to its
        # predecessor (the CA server's own certificate, also named localhost, has its own chain).
        got = [e["serial"] for e in events if e["event"] in ("agent_enrolled", "agent_renewed")]
        by = {r["serial"]: r for r in inventory(ca, "localhost")}
        assert by[got[0]]["renews"] == "-", by[got[0]]
        chain, cur = [], by[got[0]]
        while True:
            chain.append(cur["serial"])
            if cur["renewed_by"] == "-":
                break
            nxt = by[cur["renewed_by"]]
            assert nxt["renews"] == cur["serial"], (cur, nxt)
            cur = nxt
        assert chain == got, (chain, got)
    finally:
        procs.close()
        if server.proc is not None and server.proc.poll() is None:
            server.stop()


def root_fingerprint(ca):
    return subprocess.run(["openssl", "x509", "-in", str(ca.root), "-noout", "-fingerprint",
                           "-sha256"], capture_output=True, text=True,
                          check=True).stdout.strip().split("=", 1)[1]


def agent_host(base, name, server, fp, token, sans=()):
    """A host directory with its agent.yaml and its token file; returns (dir, config)."""
    host = base / name
    host.mkdir(parents=True)
    (host / "token").write_text(token + "\n")
    os.chmod(host / "token", 0o600)
    cfg = host / "agent.yaml"
    extra = "    sans: [%s]\n" % ", ".join(sans) if sans else ""
    cfg.write_text("""\
ca_url: https://localhost:%(port)d
root_fingerprint: "%(fp)s"
state_dir: %(host)s/state
log: %(host)s/agent.jsonl
certificates:
  - name: %(name)s
    cert: %(host)s/%(name)s.crt
    key: %(host)s/%(name)s.key
    token_file: %(host)s/token
%(extra)s""" % dict(port=server.port, fp=fp, host=host, name=name, extra=extra))
    return host, cfg


def run_agent(duet_bin, cfg):
    return subprocess.run([str(duet_bin), "agent", "--config", str(cfg), "--once"],
                          capture_output=True, text=True, timeout=60)


def agent_log(host):
    return [json.loads(x) for x in (host / "agent.jsonl").read_text().splitlines()]


def test_two_hosts_enroll_and_tokens_are_refused_with_the_reason(duet_bin, make_ca, tmp_path):
    ca = make_ca("Two Hosts Corp")
    server = CAServer(duet_bin, ca).start()
    try:
        fp = root_fingerprint(ca)
        before = len(ca.list())
        toks = {n: make_token(ca, n, "server", "--san", "dns:%s.corp.example" % n,
                              "--owner", "team-" + n) for n in ("host-a", "host-b")}
        hosts = {}
        for n, tok in toks.items():
            host, cfg = agent_host(tmp_path, n, server, fp, tok)
            p = run_agent(duet_bin, cfg)
            assert p.returncode == 0, show(p)
            assert not (host / "token").exists()
            ev = [e for e in agent_log(host) if e["event"] == "agent_enrolled"]
            assert len(ev) == 1, agent_log(host)
            hosts[n] = (host, ev[0]["serial"])
        sa, sb = hosts["host-a"][1], hosts["host-b"][1]
        assert sa != sb
        ca_a = (hosts["host-a"][0] / "host-a.crt").read_text()
        assert ca_a != (hosts["host-b"][0] / "host-b.crt").read_text()
        rows = ca.list()
        assert len(rows) == before + 2
        by = {r["serial"]: r for r in rows}
        assert by[sa]["owner"] == "team-host-a" and by[sa]["sans"] == ["DNS:host-a.corp.example"]
        assert by[sb]["owner"] == "team-host-b" and by[sb]["sans"] == ["DNS:host-b.corp.example"]

        # A third host with host A's token: refused, the reason in its exit and its log.
        host_c, cfg = agent_host(tmp_path, "host-c", server, fp, toks["host-a"])
        p = run_agent(duet_bin, cfg)
        assert p.returncode == 1, show(p)
        assert "token_refused" in p.stderr and "already used" in p.stderr and sa in p.stderr, \
            show(p)
        failed = [e for e in agent_log(host_c) if e["event"] == "agent_failed"]
        assert failed and "already used" in failed[-1]["error"], failed
        assert not (host_c / "host-c.crt").exists() and not (host_c / "host-c.key").exists()

        # An expired token: refused with the reason.
        late = make_token(ca, "host-d", "server", "--san", "dns:host-d.corp.example",
                          "--ttl", "1s")
        time.sleep(1.5)
        host_d, cfg = agent_host(tmp_path, "host-d", server, fp, late)
        p = run_agent(duet_bin, cfg)
        assert p.returncode == 1, show(p)
        assert "token_refused" in p.stderr and "expired at" in p.stderr, show(p)
        assert not (host_d / "host-d.crt").exists()

        # A host asking for a name its token does not bind: refused, nothing issued, and the
        # token is not spent (the same host enrolls once it asks only for its own name).
        tok = make_token(ca, "host-e", "server", "--san", "dns:host-e.corp.example")
        host_e, cfg = agent_host(tmp_path, "host-e", server, fp, tok,
                                 sans=["dns:host-e.corp.example", "dns:evil.example"])
        p = run_agent(duet_bin, cfg)
        assert p.returncode == 1, show(p)
        assert "csr_refused" in p.stderr and "evil.example" in p.stderr, show(p)
        failed = [e for e in agent_log(host_e) if e["event"] == "agent_failed"]
        assert failed and "evil.example" in failed[-1]["error"], failed
        assert len(ca.list()) == before + 2
        assert not (host_e / "host-e.crt").exists() and not (host_e / "host-e.key").exists()
        cfg.write_text(cfg.read_text().replace(", dns:evil.example", ""))
        p = run_agent(duet_bin, cfg)
        assert p.returncode == 0, show(p)
        assert len(ca.list()) == before + 3
        reqs = [x for x in server.lines() if x["event"] == "ca_request"
                and x["path"] == "/v1/enroll"]
        assert [(x["status"], x.get("error")) for x in reqs if x["status"] != 200] == [
            (403, "token_refused"), (403, "token_refused"), (400, "csr_refused")], reqs
    finally:
        server.stop()
