# SPDX-License-Identifier: Apache-2.0
"""An outside review of the http-mode request path of `duet proxy`, as a client holding one
valid certificate.  Each test asserts the secure behaviour; see the review report for the bytes,
the cause and the suggested fix.

- an upstream that answers before the request body is complete: the proxy goes back to reading
  heads while the body is still flowing, keeps forwarding it (a naive upstream runs it as a
  request the policy never saw, with a forged X-Forwarded-Client-Cert, and its answer reaches
  the client as an extra response), and pools the connection with the body unfinished, so the
  next client's request is read as the tail of the first client's bytes;
- path parameters (`..;`) that Java servlet containers resolve as `..`;
- a request with no Host, or an empty host, skips a rule that denies by host;
- `Connection` lists are re-read for every header: CPU quadratic in the head size;
- a response that ends when the upstream closes (no length, no chunking) crashed the proxy.
"""

import os
import time

import pytest

from proxyutil import (TcpServer, mtls_exchange as xchg, start_http_proxy, statuses,
                       values)


# --- helpers ---------------------------------------------------------------------------------

def proc_cpu_seconds(pid):
    fields = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


ALICE_PUBLIC = """\
      - {name: alice-public, allow: ["uri:spiffe://test-corp/alice"], path_prefix: /public/}
      - {name: bob-public, allow: ["uri:spiffe://test-corp/bob"], path_prefix: /public/}
"""


def start_proxy(dpki, module_procs, workdir, upstream_port, rules=ALICE_PUBLIC, extra_args=()):
    return start_http_proxy(dpki, module_procs, workdir, upstream_port, rules=rules,
                            extra_args=extra_args)


class EarlyUpstream(TcpServer):
    """Answers every request as soon as its head is in (401, keep-alive), as a service that
    checks a header before it reads the body does.  `discard`: then reads and drops the
    Content-Length bytes of the body (RFC 9110 allows it to keep the connection that way);
    otherwise reads what follows as the next request (a service that never reads a body it
    does not want: Python's http.server).  Records every head per connection."""

    def __init__(self, discard):
        self.discard = discard
        self.heads = []
        super().__init__()

    def _conn(self, c):
        buf = b""
        c.settimeout(20)
        try:
            while True:
                head, buf = self.recv_head(c, buf)
                if head is None:
                    return
                with self.lock:
                    self.heads.append(head)
                c.sendall(b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 2\r\n\r\nno")
                if self.discard:
                    n = 0
                    for line in head.split(b"\r\n")[1:]:
                        name, _, value = line.partition(b":")
                        if name.strip().lower() == b"content-length":
                            n = int(value)
                    while len(buf) < n:
                        d = c.recv(65536)
                        if not d:
                            return
                        buf += d
                    buf = buf[n:]
        except OSError:
            pass
        finally:
            c.close()


SMUGGLED = (b"GET /admin/secret HTTP/1.1\r\nHost: localhost\r\n"
            b"X-Forwarded-Client-Cert: URI=spiffe://test-corp/root\r\n\r\n")


# --- fixtures --------------------------------------------------------------------------------

# --- an upstream that answers before the body is complete ---------------------------------------

def test_body_after_an_early_answer_is_never_a_request(dpki, module_procs, tmp_path, alice):
    up = EarlyUpstream(discard=False)
    p = start_proxy(dpki, module_procs, tmp_path, up.port)
    try:
        resp = xchg(p.port, alice,
                    [b"POST /public/form HTTP/1.1\r\nHost: localhost\r\n"
                     b"Content-Length: %d\r\n\r\n" % len(SMUGGLED), SMUGGLED,
                     b"GET /public/next HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"],
                    pause=0.5, timeout=4)
        time.sleep(0.3)
        lines = [h.split(b"\r\n")[0] for h in up.heads]
        # The policy decided on POST /public/form (and maybe GET /public/next), never on this:
        assert b"GET /admin/secret HTTP/1.1" not in lines, up.heads
        assert not any(b"spiffe://test-corp/root" in h for h in up.heads), up.heads
        authz = [(e["method"], e["path"]) for e in p.log.since(0, "authz")]
        assert len(up.heads) == len(authz), (lines, authz)
        # One answer per request the client sent, never an answer to bytes of a body.
        assert len(statuses(resp)) <= 2, resp
    finally:
        up.close()


@pytest.mark.parametrize("discard", [False, True], ids=["naive-upstream", "discarding-upstream"])
def test_pool_never_keeps_a_connection_with_an_unfinished_body(dpki, module_procs, tmp_path, alice, bob,
                                                               discard):
    up = EarlyUpstream(discard=discard)
    p = start_proxy(dpki, module_procs, tmp_path, up.port, extra_args=("--upstream-keepalive", "4"))
    try:
        # alice: a head announcing 1000 bytes, the early 401, a start of a request, then gone.
        xchg(p.port, alice,
             [b"POST /public/form HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1000\r\n\r\n",
              SMUGGLED[:-2] + b"X-Ignore: "], pause=0.5, timeout=1)
        time.sleep(0.3)
        resp = xchg(p.port, bob,
                    b"GET /public/bob HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
                    timeout=4)
        time.sleep(0.3)
        # bob's request arrives as a request of its own, on a connection nobody left bytes on.
        assert any(h.startswith(b"GET /public/bob HTTP/1.1\r\n") for h in up.heads), up.heads
        assert not any(b"/admin/secret" in h for h in up.heads), up.heads
        assert statuses(resp) == [401], resp
    finally:
        up.close()


# --- path parameters ---------------------------------------------------------------------------

@pytest.mark.parametrize("target", [b"/public/..;/admin/secret", b"/public/%2e%2e;/admin/secret",
                                    b"/public/..;jsessionid=1/admin/secret"])
def test_path_parameters_cannot_climb_out_of_an_allowed_prefix(dpki, module_procs, tmp_path, raw_up,
                                                               alice, target):
    # Tomcat, Jetty and Spring drop ";params" from each segment before resolving dots:
    # /public/..;/admin/secret is /admin/secret to them, while the policy saw /public/.
    p = start_proxy(dpki, module_procs, tmp_path, raw_up.port)
    before = len(raw_up.requests)
    resp = xchg(p.port, alice,
                b"GET " + target + b" HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
    time.sleep(0.2)
    assert statuses(resp) in ([400], [403]), resp
    assert raw_up.requests[before:] == []


# --- Host ------------------------------------------------------------------------------------

HOST_DENY = """\
      - {name: no-admin-host, deny: ["uri:spiffe://test-corp/alice"], host: "admin.corp"}
      - {name: alice-all, allow: ["uri:spiffe://test-corp/alice"]}
"""


@pytest.mark.parametrize("head", [
    b"GET /x HTTP/1.0\r\n\r\n",
    b"GET /x HTTP/1.0\r\nHost:\r\n\r\n",
    b"GET /x HTTP/1.1\r\nHost:\r\nConnection: close\r\n\r\n",
    b"GET /x HTTP/1.1\r\nHost: :443\r\nConnection: close\r\n\r\n",
], ids=["http10-no-host", "http10-empty-host", "http11-empty-host", "port-only-host"])
def test_no_host_cannot_skip_a_rule_that_denies_by_host(dpki, module_procs, tmp_path, raw_up, alice,
                                                        head):
    # An upstream routes a request without a host name to its default virtual host, which may
    # well be admin.corp: the policy must decide on the host the upstream will use.
    p = start_proxy(dpki, module_procs, tmp_path, raw_up.port, rules=HOST_DENY)
    before = len(raw_up.requests)
    resp = xchg(p.port, alice, head)
    time.sleep(0.2)
    reached = raw_up.requests[before:]
    if statuses(resp) in ([400], [403]):
        assert reached == []
        return
    assert statuses(resp) == [200], resp
    (req,) = reached
    hosts = values(req, "Host")
    assert len(hosts) == 1, req["head"]
    host = hosts[0]
    name = host.rsplit(":", 1)[0] if not host.startswith("[") else host
    assert name != "", req["head"]
    ev = p.log.wait_event("authz")
    assert ev["host"] == host, ev


# --- CPU --------------------------------------------------------------------------------------

def test_connection_lists_cost_linear_time(dpki, module_procs, tmp_path, raw_up, alice):
    # Each forwarded header was looked up in every Connection list (dropped_name): a 64 KB head
    # with 8,000 empty headers and one 16,000-element Connection list cost ~0.9 s of the
    # worker's CPU, during which every other connection of that worker waits.  A request may
    # list at most 32 Connection options (400 beyond), and the lookup is linear.
    limit = 65536
    p = start_proxy(dpki, module_procs, tmp_path, raw_up.port,
                    extra_args=("--max-header-size", str(limit)))
    base = b"GET /public/cpu HTTP/1.1\r\nHost: localhost\r\n"
    budget = limit - len(base) - 200
    for conn, status in [
            (b"Connection: close," + b",".join([b"b"] * (budget // 4)) + b"\r\n", 400),
            (b"Connection: close," + b",".join(b"x-%d" % i for i in range(31)) + b"\r\n", 200)]:
        req = base + conn + b"a:\r\n" * ((budget - len(conn)) // 4) + b"\r\n"
        assert len(req) <= limit
        before = proc_cpu_seconds(p.proc.pid)
        resp = xchg(p.port, alice, req, timeout=20)
        spent = proc_cpu_seconds(p.proc.pid) - before
        assert statuses(resp) == [status], resp[:200]
        assert spent < 0.25, "one %d-byte request cost %.2f s of CPU" % (len(req), spent)


# --- a response that ends when the upstream closes -------------------------------------------

class EofUpstream(TcpServer):
    """Answers with no Content-Length and no chunking: the body ends when it closes
    (RFC 9112 6.3, the last rule), as old CGI-style services do."""

    def _conn(self, c):
        try:
            head, _ = self.recv_head(c, b"")
            if head is not None:
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nbody until eof")
        except OSError:
            pass
        finally:
            c.close()


def test_a_response_ended_by_the_upstream_closing_reaches_the_client(dpki, module_procs,
                                                                      tmp_path, alice):
    up = EofUpstream()
    d = start_proxy(dpki, module_procs, tmp_path, up.port)
    for i in range(2):
        raw = xchg(d.port, alice, [b"GET /public/eof HTTP/1.1\r\nHost: localhost\r\n\r\n"])
        assert raw.startswith(b"HTTP/1.1 200") and raw.endswith(b"\r\n\r\nbody until eof"), raw
    assert d.proc.poll() is None, "the proxy exited on a response ended by EOF"
    up.close()
