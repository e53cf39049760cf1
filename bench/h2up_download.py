#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Large responses over an HTTP/2 upstream: what the upstream's stream window (64 KiB, given
back as the client takes the bytes) costs a client that reads.  curl --http2 with alice's
certificate downloads SIZE_MIB from nginx serving h2c with prior knowledge, through duet proxy
(upstream_protocol h2c), through a second duet binary when DUET_BIN_B is set (a before/after),
and through nginx (http2 + grpc_pass to the same backend), in one run.

    DUET_BIN=build/duet [DUET_BIN_B=old/duet] bench/h2up_download.py [SIZE_MIB] [ROUNDS]

Prints one JSON line per peer: the median MB/s of one download at a time, and of 8 at once on
one connection (curl --parallel, MB/s of the 8 together), over ROUNDS rounds taken in turn.
"""

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "integration"))


def download(pki, port, size, parallel):
    urls = ["https://localhost:%d/public/big" % port] * parallel
    args = ["curl", "-sS", "--no-progress-meter", "--http2", "--cacert", str(pki.roots), "--cert", str(pki.alice_crt),
            "--key", str(pki.alice_key), "-o", "/dev/null"]
    if parallel > 1:
        args += ["--parallel", "--parallel-max", str(parallel)]
        for _ in urls[1:]:
            args += ["-o", "/dev/null"]
    t0 = time.monotonic()
    subprocess.run(args + urls, check=True, timeout=600)
    return size * parallel / (time.monotonic() - t0) / 1e6


def duet_config(w, name, port, back, pki):
    (w / (name + ".yaml")).write_text("""\
listeners:
  - name: web
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
""" % (port, pki.server_crt, pki.server_key, pki.roots, back, w / (name + ".log")))
    return w / (name + ".yaml")


def main():
    from proxyutil import ProxyPKI, free_port
    size = int(sys.argv[1] if len(sys.argv) > 1 else 64) << 20
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    bins = [("duet", os.environ.get("DUET_BIN", str(HERE.parent / "build" / "duet")))]
    if os.environ.get("DUET_BIN_B"):
        bins.append(("duet_b", os.environ["DUET_BIN_B"]))
    w = Path(tempfile.mkdtemp(prefix="h2up-bench-"))
    pki = ProxyPKI(bins[0][1], w / "pki")
    (w / "www" / "public").mkdir(parents=True)
    with open(w / "www" / "public" / "big", "wb") as f:
        f.write(os.urandom(size))
    (w / "logs").mkdir()
    back, nport = free_port(), free_port()
    user = "user root;" if os.geteuid() == 0 else ""
    (w / "nginx.conf").write_text("""\
%(user)s
worker_processes 1;
daemon off;
pid %(w)s/nginx.pid;
error_log %(w)s/logs/error.log;
events { worker_connections 4096; }
http {
    access_log off;
    upstream backend { server 127.0.0.1:%(back)d; keepalive 32; }
    server {
        listen 127.0.0.1:%(back)d http2;
        root %(w)s/www;
    }
    server {
        listen 127.0.0.1:%(port)d ssl http2;
        ssl_certificate %(crt)s;
        ssl_certificate_key %(key)s;
        ssl_client_certificate %(roots)s;
        ssl_verify_client on;
        ssl_protocols TLSv1.3;
        location / { grpc_pass grpc://backend; }
    }
}
""" % dict(user=user, w=w, port=nport, back=back, crt=pki.server_crt, key=pki.server_key,
           roots=pki.roots))
    procs = [subprocess.Popen(["nginx", "-p", str(w), "-c", str(w / "nginx.conf")])]
    peers = []
    try:
        for name, exe in bins:
            port = free_port()
            procs.append(subprocess.Popen([exe, "proxy", "--config",
                                           str(duet_config(w, name, port, back, pki))]))
            peers.append((name, port))
        peers.append(("nginx", nport))
        time.sleep(1.5)
        res = {name: {"one": [], "eight": []} for name, _ in peers}
        for _ in range(rounds):
            for name, port in peers:
                res[name]["one"].append(download(pki, port, size, 1))
                res[name]["eight"].append(download(pki, port, size, 8))
        for name, _ in peers:
            print(json.dumps({"peer": name, "size_mib": size >> 20,
                              "one_MBps": round(statistics.median(res[name]["one"])),
                              "eight_MBps": round(statistics.median(res[name]["eight"]))}))
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait()


if __name__ == "__main__":
    sys.exit(main())
