# SPDX-License-Identifier: Apache-2.0
"""gRPC end to end through `duet proxy` to an h2c upstream (issue 15, upstream_protocol h2c).

A real gRPC server and client (Debian's python3-grpcio, generic handlers: no generated code) with
the proxy between them, the client presenting its certificate: the four call kinds, messages of
4 MiB both ways, the caller's identity in the x-forwarded-client-cert metadata the server reads
(and a copy the client forged gone), a method the policy denies answered PERMISSION_DENIED with
the rule in the message, cancellation and deadlines reaching the server's handler.
"""

import threading
import time
from concurrent import futures

import pytest

from proxyutil import free_port, metrics, start_http_proxy

try:
    import grpc
except ImportError:  # scripts/deps.sh installs python3-grpcio
    pytest.fail("python3-grpcio is not installed (scripts/deps.sh installs it)", pytrace=False)

ALICE = "spiffe://test-corp/alice"
RULES = """\
      - {name: alice-echo, allow: ["uri:%s"], methods: [POST], path_prefix: /pkg.Echo/}
""" % ALICE
BIG = 16 * 1024 * 1024
OPTS = [("grpc.max_receive_message_length", BIG), ("grpc.max_send_message_length", BIG)]


class Service:
    """pkg.Echo: what each handler saw, for the tests to assert on."""

    def __init__(self):
        self.metadata = []
        self.cancelled = threading.Event()
        self.started = threading.Event()

    def unary(self, req, ctx):
        self.metadata.append(dict(ctx.invocation_metadata()))
        return b"echo:" + req

    def server_stream(self, req, ctx):
        for i in range(int(req or b"3")):
            yield b"part %d" % i

    def client_stream(self, it, ctx):
        parts = list(it)
        return b"%d:" % len(parts) + b"".join(parts)

    def bidi(self, it, ctx):
        for m in it:
            yield m.upper()

    def wait(self, req, ctx):
        """Streams until the caller goes; records that the cancellation arrived."""
        ctx.add_callback(self.cancelled.set)
        self.started.set()
        while ctx.is_active():
            yield b"tick"
            time.sleep(0.05)

    def size(self, req, ctx):
        return b"%d" % len(req) + b"." + bytes(len(req))

    def peer(self, req, ctx):
        """The upstream's view of its TLS peer (the proxy): its certificate's common name."""
        cn = ctx.auth_context().get("x509_common_name", [b"(plaintext)"])
        return cn[0] + b" " + dict(ctx.invocation_metadata())["x-forwarded-client-cert"].encode()

    def handler(self):
        return grpc.method_handlers_generic_handler("pkg.Echo", {
            "Unary": grpc.unary_unary_rpc_method_handler(self.unary),
            "Server": grpc.unary_stream_rpc_method_handler(self.server_stream),
            "Client": grpc.stream_unary_rpc_method_handler(self.client_stream),
            "Bidi": grpc.stream_stream_rpc_method_handler(self.bidi),
            "Wait": grpc.unary_stream_rpc_method_handler(self.wait),
            "Size": grpc.unary_unary_rpc_method_handler(self.size),
            "Peer": grpc.unary_unary_rpc_method_handler(self.peer),
        })


@pytest.fixture
def backend():
    svc = Service()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8), options=OPTS)
    server.add_generic_rpc_handlers((svc.handler(),))
    svc.port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield svc
    server.stop(0)


@pytest.fixture
def gproxy(dpki, procs, tmp_path, backend):
    admin = free_port()
    proxy = start_http_proxy(dpki, procs, tmp_path, backend.port, rules=RULES,
                             extra_yaml="    upstream_protocol: h2c\n",
                             extra_args=("--admin", "127.0.0.1:%d" % admin))
    proxy.admin = admin
    return proxy


@pytest.fixture
def channel(dpki, gproxy):
    creds = grpc.ssl_channel_credentials(
        root_certificates=dpki.roots.read_bytes(), private_key=dpki.alice_key.read_bytes(),
        certificate_chain=dpki.alice_crt.read_bytes())
    ch = grpc.secure_channel("localhost:%d" % gproxy.port, creds, options=OPTS)
    yield ch
    ch.close()


def call(ch, kind, method):
    return getattr(ch, kind)("/pkg.Echo/" + method)


def test_unary_carries_identity_and_not_the_forged_copy(channel, backend, gproxy):
    out = call(channel, "unary_unary", "Unary")(
        b"hi", timeout=10,
        metadata=[("x-forwarded-client-cert", "By=spiffe://forged;URI=spiffe://test-corp/admin")])
    assert out == b"echo:hi"
    md = backend.metadata[-1]
    xfcc = md["x-forwarded-client-cert"]
    assert "URI=" + ALICE in xfcc, md
    assert "forged" not in xfcc and "test-corp/admin" not in xfcc, md
    ev = gproxy.log.wait_event("authz", path="/pkg.Echo/Unary")
    assert (ev["decision"], ev["proto"]) == ("allow", "h2")


def test_server_streaming(channel):
    assert list(call(channel, "unary_stream", "Server")(b"5", timeout=10)) == \
        [b"part %d" % i for i in range(5)]


def test_client_streaming(channel):
    assert call(channel, "stream_unary", "Client")(iter([b"a", b"b", b"c"]), timeout=10) == \
        b"3:abc"


def test_bidi_streaming(channel):
    sent = [b"one", b"two", b"three"]
    assert list(call(channel, "stream_stream", "Bidi")(iter(sent), timeout=10)) == \
        [m.upper() for m in sent]


def test_four_mib_message_both_ways(channel):
    msg = bytes(range(256)) * (4 * 1024 * 1024 // 256)
    out = call(channel, "unary_unary", "Size")(msg, timeout=60)
    head, _, body = out.partition(b".")
    assert int(head) == len(msg) == 4 * 1024 * 1024
    assert len(body) == len(msg) and body == bytes(len(msg))


def test_denied_method_is_permission_denied_with_the_rule(dpki, gproxy):
    creds = grpc.ssl_channel_credentials(
        root_certificates=dpki.roots.read_bytes(), private_key=dpki.alice_key.read_bytes(),
        certificate_chain=dpki.alice_crt.read_bytes())
    with grpc.secure_channel("localhost:%d" % gproxy.port, creds) as ch:
        with pytest.raises(grpc.RpcError) as e:
            ch.unary_unary("/pkg.Admin/Delete")(b"x", timeout=10)
    assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert e.value.details() == "duet proxy: denied by rule default-deny"


def test_client_cancellation_reaches_the_server(channel, backend):
    it = call(channel, "unary_stream", "Wait")(b"", timeout=30)
    assert next(it) == b"tick"
    assert backend.started.wait(10)
    it.cancel()
    assert backend.cancelled.wait(10), "the server's handler never saw the cancellation"


def test_deadline_exceeded(channel, backend):
    with pytest.raises(grpc.RpcError) as e:
        list(call(channel, "unary_stream", "Wait")(b"", timeout=0.5))
    assert e.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert backend.cancelled.wait(10), "the server's handler outlived the deadline"


def test_streams_share_upstream_connections_and_are_counted(channel, gproxy):
    f = call(channel, "unary_unary", "Unary")
    done = [f.future(b"%d" % i, timeout=20) for i in range(50)]
    assert sorted(x.result() for x in done) == sorted(b"echo:%d" % i for i in range(50))
    m = metrics(gproxy.admin)
    ok = [k for k in m if k.startswith("duet_requests_total") and 'code="200"' in k and
          'upstream_proto="h2c"' in k]
    assert ok and m[ok[0]] == 50, m
    # 50 streams at once, on at most upstream_h2_connections (4) upstream connections.
    assert m.get('duet_upstream_h2_streams_total{listener="web",upstream_proto="h2c"}') == 50, m
    assert 1 <= m.get('duet_upstream_connections_total{kind="new"}', 0) <= 4, m


@pytest.mark.parametrize("protocol", ["h2", "auto"])
def test_h2_over_mtls_to_the_upstream(dpki, procs, tmp_path, protocol):
    """upstream_protocol h2 (and auto with upstream TLS): ALPN h2 to a gRPC server that requires
    a client certificate; it sees the proxy's, and the caller's identity in metadata."""
    svc = Service()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4), options=OPTS)
    server.add_generic_rpc_handlers((svc.handler(),))
    port = server.add_secure_port("127.0.0.1:0", grpc.ssl_server_credentials(
        [(dpki.server_key.read_bytes(), dpki.server_crt.read_bytes())],
        root_certificates=dpki.roots.read_bytes(), require_client_auth=True))
    server.start()
    try:
        px = start_http_proxy(
            dpki, procs, tmp_path, port, rules=RULES,
            extra_yaml="    upstream_protocol: %s\n    upstream_tls: {cert: %s, key: %s, "
                       "cacert: %s, server_name: localhost}\n"
                       % (protocol, dpki.gateway_crt, dpki.gateway_key, dpki.roots))
        creds = grpc.ssl_channel_credentials(
            root_certificates=dpki.roots.read_bytes(), private_key=dpki.alice_key.read_bytes(),
            certificate_chain=dpki.alice_crt.read_bytes())
        with grpc.secure_channel("localhost:%d" % px.port, creds, options=OPTS) as ch:
            out = ch.unary_unary("/pkg.Echo/Peer")(b"", timeout=10)
            assert list(ch.unary_stream("/pkg.Echo/Server")(b"3", timeout=10)) == \
                [b"part 0", b"part 1", b"part 2"]
        cn, _, xfcc = out.partition(b" ")
        assert cn == b"gateway", out
        assert ("URI=" + ALICE).encode() in xfcc, out
    finally:
        server.stop(0)


def test_plaintext_grpc_client_gets_mtls_through_the_tunnel(dpki, procs, tmp_path, gproxy,
                                                             backend):
    """duet tunnel --alpn h2: a gRPC client speaking h2c to the tunnel reaches the service over
    mTLS with alice's identity (the tunnel relays bytes; ALPN h2 makes the proxy speak HTTP/2)."""
    from test_proxy import start_tunnel
    t = start_tunnel(procs, dpki, tmp_path / "tn", gproxy.port, "--server-name", "localhost",
                     "--alpn", "h2")
    with grpc.insecure_channel("127.0.0.1:%d" % t.port, options=OPTS) as ch:
        assert ch.unary_unary("/pkg.Echo/Unary")(b"via tunnel", timeout=10) == b"echo:via tunnel"
        assert list(ch.stream_stream("/pkg.Echo/Bidi")(iter([b"a", b"b"]), timeout=10)) == \
            [b"A", b"B"]
    assert "URI=" + ALICE in backend.metadata[-1]["x-forwarded-client-cert"]


def test_unreachable_upstream_is_unavailable_with_the_reason(dpki, procs, tmp_path):
    """The proxy's own answers to a gRPC client are gRPC errors too: an upstream nobody listens
    on is UNAVAILABLE (as gRPC maps HTTP 502) with the proxy's reason, not an HTTP 502 page the
    client can only call 'Bad Gateway'."""
    proxy = start_http_proxy(dpki, procs, tmp_path, free_port(), rules=RULES,
                             extra_yaml="    upstream_protocol: h2c\n")
    creds = grpc.ssl_channel_credentials(
        root_certificates=dpki.roots.read_bytes(), private_key=dpki.alice_key.read_bytes(),
        certificate_chain=dpki.alice_crt.read_bytes())
    with grpc.secure_channel("localhost:%d" % proxy.port, creds) as ch:
        with pytest.raises(grpc.RpcError) as e:
            ch.unary_unary("/pkg.Echo/Echo")(b"x", timeout=10)
    assert e.value.code() == grpc.StatusCode.UNAVAILABLE
    assert e.value.details() == "duet proxy: the upstream service could not be reached"


def test_oversized_metadata_is_a_grpc_error_naming_the_limit(dpki, channel):
    """Metadata past --max-header-size (16 KiB): the 431 is a gRPC error whose message names
    the limit (gRPC maps other HTTP statuses to UNKNOWN)."""
    with pytest.raises(grpc.RpcError) as e:
        call(channel, "unary_unary", "Echo")(b"x", timeout=10,
                                             metadata=(("x-big", "b" * 20000),))
    assert e.value.code() == grpc.StatusCode.UNKNOWN
    assert e.value.details() == \
        "duet proxy: the request's header list is larger than 16384 bytes", e.value.details()
