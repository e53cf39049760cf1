#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""gRPC unary calls per second and latency through duet proxy (upstream_protocol h2c) and
through nginx (http2 + grpc_pass) on the same certificates and backend, and directly (h2c, no
TLS), in one run (nginx with an upstream keepalive pool, as duet reuses its HTTP/2 connections).
Client and backend: Debian's python3-grpcio; the client keeps CONC calls in
flight on one channel for DUR seconds, after a warmup.

    DUET_BIN=build/duet bench/grpc_unary.py [DUR_SECONDS] [CONC]

Prints one JSON line per peer: calls/s, median and p99 latency in ms.  The Python client is the
bottleneck well before the proxies are: the ratios say what each proxy adds, not its ceiling.
"""

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from concurrent import futures
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "integration"))


def serve(port):
    import grpc
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("bench.Echo", {
        "Unary": grpc.unary_unary_rpc_method_handler(lambda req, ctx: req)}),))
    server.add_insecure_port("127.0.0.1:%d" % port)
    server.start()
    server.wait_for_termination()


def client(target, creds, dur, conc, out):
    import grpc
    ch = grpc.secure_channel(target, creds) if creds else grpc.insecure_channel(target)
    call = ch.unary_unary("/bench.Echo/Unary")
    lat, lock, stop = [], threading.Lock(), [False]
    sem = threading.Semaphore(conc)
    call(b"warm", timeout=10)

    def done(t0):
        def cb(f):
            sem.release()
            if f.exception() is None:
                with lock:
                    lat.append(time.monotonic() - t0)
        return cb
    end_warm = time.monotonic() + 1
    while time.monotonic() < end_warm:
        sem.acquire()
        call.future(b"x" * 64, timeout=10).add_done_callback(lambda f: sem.release())
    with lock:
        lat.clear()
    t_start = time.monotonic()
    while time.monotonic() - t_start < dur:
        sem.acquire()
        t0 = time.monotonic()
        call.future(b"x" * 64, timeout=10).add_done_callback(done(t0))
    elapsed = time.monotonic() - t_start
    for _ in range(conc):
        sem.acquire()
    lat.sort()
    out.update(calls_per_s=round(len(lat) / elapsed), median_ms=round(lat[len(lat) // 2] * 1000, 2),
               p99_ms=round(lat[int(len(lat) * 0.99)] * 1000, 2), calls=len(lat))
    ch.close()


def main():
    if len(sys.argv) > 2 and sys.argv[1] == "--serve":
        return serve(int(sys.argv[2]))
    if len(sys.argv) > 3 and sys.argv[1] == "--client":
        import grpc
        name, target, dur, conc, pki = sys.argv[2], sys.argv[3], float(sys.argv[4]), \
            int(sys.argv[5]), Path(sys.argv[6])
        creds = None
        if name != "direct":
            creds = grpc.ssl_channel_credentials(
                (pki / "roots.pem").read_bytes(), Path(os.environ["ALICE_KEY"]).read_bytes(),
                Path(os.environ["ALICE_CRT"]).read_bytes())
        out = {"peer": name}
        client(target, creds, dur, conc, out)
        print(json.dumps(out))
        return 0
    from proxyutil import ProxyPKI, free_port
    dur = float(sys.argv[1]) if len(sys.argv) > 1 else 5
    conc = int(sys.argv[2]) if len(sys.argv) > 2 else 32
    duet = os.environ.get("DUET_BIN", str(HERE.parent / "build" / "duet"))
    w = Path(tempfile.mkdtemp(prefix="grpc-bench-"))
    pki = ProxyPKI(duet, w / "pki")
    procs = []
    try:
        back = free_port()
        procs.append(subprocess.Popen([sys.executable, __file__, "--serve", str(back)]))
        dport, nport = free_port(), free_port()
        (w / "duet.yaml").write_text("""\
listeners:
  - name: grpc
    listen: 127.0.0.1:%d
    mode: http
    cert: %s
    key: %s
    cacert: %s
    target: [127.0.0.1:%d]
    upstream_protocol: h2c
    rules:
      - {name: alice, allow: ["uri:spiffe://test-corp/alice"]}
log: %s
workers: 1
""" % (dport, pki.server_crt, pki.server_key, pki.roots, back, w / "duet.log"))
        procs.append(subprocess.Popen([duet, "proxy", "--config", str(w / "duet.yaml")]))
        (w / "logs").mkdir()
        (w / "nginx.conf").write_text("""\
worker_processes 1;
daemon off;
pid %(w)s/nginx.pid;
error_log %(w)s/logs/error.log;
events { worker_connections 4096; }
http {
    access_log off;
    upstream backend { server 127.0.0.1:%(back)d; keepalive 32; }
    server {
        listen 127.0.0.1:%(port)d ssl http2;
        ssl_certificate %(crt)s;
        ssl_certificate_key %(key)s;
        ssl_client_certificate %(roots)s;
        ssl_verify_client on;
        ssl_protocols TLSv1.3;
        location / {
            grpc_set_header X-Forwarded-Client-Cert $ssl_client_escaped_cert;
            grpc_pass grpc://backend;
        }
    }
}
""" % dict(w=w, port=nport, crt=pki.server_crt, key=pki.server_key, roots=pki.roots,
           back=back))
        procs.append(subprocess.Popen(["nginx", "-p", str(w), "-c", str(w / "nginx.conf")]))
        time.sleep(1.5)
        env = dict(os.environ, ALICE_KEY=str(pki.alice_key), ALICE_CRT=str(pki.alice_crt))
        for name, target in (("direct", "127.0.0.1:%d" % back), ("duet", "localhost:%d" % dport),
                             ("nginx", "localhost:%d" % nport)):
            subprocess.run([sys.executable, __file__, "--client", name, target, str(dur),
                            str(conc), str(pki.dir)], env=env, check=True)
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait()


if __name__ == "__main__":
    sys.exit(main())
