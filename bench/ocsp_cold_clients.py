# SPDX-License-Identifier: Apache-2.0
"""Cold clients for bench/ocsp_cold_p99.sh: a stream of mTLS clients whose certificates the
proxy has never seen, so each one waits for an OCSP query.

    ocsp_cold_clients.py PORT ROOTS.pem RATE_PER_S DURATION_S CERT...

Starts one client every 1/RATE seconds (each on its own thread, so a slow one does not delay
the next), each with the next certificate of the list (CERT is a .crt with its .key beside it;
the stream stops early when the list runs out).  A client connects, completes the handshake,
sends one GET and reads the response's status line; its latency is from connect to that line.
Prints one JSON object: started, ok, errors, the first error, and p50/p99/max in ms.
"""

import json
import socket
import ssl
import sys
import threading
import time


def one(port, roots, crt, out, lock):
    t0 = time.monotonic()
    try:
        ctx = ssl.create_default_context(cafile=roots)
        ctx.load_cert_chain(crt, crt[:-4] + ".key")
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            with ctx.wrap_socket(raw, server_hostname="localhost") as s:
                s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                got = b""
                while b"\r\n" not in got:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    got += chunk
        if not got.startswith(b"HTTP/1.1 200"):
            raise OSError("answer %r" % got[:40])
        ms = (time.monotonic() - t0) * 1000
        with lock:
            out["lat"].append(ms)
    except (OSError, ssl.SSLError) as e:
        with lock:
            out["errors"] += 1
            out["first_error"] = out["first_error"] or "%s: %s" % (crt, e)


def main():
    port, roots, rate, dur = int(sys.argv[1]), sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
    certs = sys.argv[5:]
    out = {"lat": [], "errors": 0, "first_error": ""}
    lock = threading.Lock()
    threads = []
    start = time.monotonic()
    for i, crt in enumerate(certs):
        due = start + i / rate
        if due - start >= dur:
            break
        wait = due - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        t = threading.Thread(target=one, args=(port, roots, crt, out, lock))
        t.start()
        threads.append(t)
    for t in threads:
        t.join()
    lat = sorted(out["lat"])

    def pct(p):
        return lat[min(len(lat) - 1, int(p * len(lat)))] if lat else 0.0

    print(json.dumps({"started": len(threads), "ok": len(lat), "errors": out["errors"],
                      "first_error": out["first_error"], "p50": pct(0.5), "p99": pct(0.99),
                      "max": lat[-1] if lat else 0.0}))


if __name__ == "__main__":
    main()
