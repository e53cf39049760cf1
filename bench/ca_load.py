# SPDX-License-Identifier: Apache-2.0
"""The load driver of bench/ca_bench.sh: certificate requests over HTTPS, one
keep-alive connection per worker process, the same for duet and cfssl.

    ca_load.py csrs COUNT OUT          COUNT P-256 CSRs (CN=hNNNNN, SAN DNS:hNNNNN.bench),
                                       one JSON line each: {"name": ..., "csr": PEM}
    ca_load.py duet-bodies CSRS TOKENS OUT
                                       enrollment bodies {"token", "csr"}: line i of TOKENS
                                       (one token per line, made for hNNNNN) with CSR i
    ca_load.py cfssl-bodies CSRS OUT   /api/v1/cfssl/sign bodies {"certificate_request"}
    ca_load.py run --url URL [--url URL2]... --cacert F --bodies F --kind duet|cfssl
                   [--count N] [--reuse] [--concurrency C] [--out PEMFILE]

`run` sends COUNT bodies (default: every line of F once; with --reuse the
lines are used again in turn, which cfssl allows and a one-time token does
not) from C worker processes, each with its own TLS connection kept alive,
all starting together after their handshakes.  With several --url (CA nodes
on one inventory), worker i talks to URL i modulo their number, so the load
is split evenly.  Every answer must be 200 with
a certificate (duet: "certificate", cfssl: "success" and
"result.certificate"); the serials must all differ.  Prints one JSON object:
completed, errors (by reason), seconds, rate_per_s, latency_ms p50/p90/p99/max,
distinct serials, and driver_cpu_s (user+system CPU of the worker processes
while they sent), so that a script can show the driver was not the bottleneck.  --out writes
every certificate received (PEM), for checks after the run.
"""

import argparse
import json
import multiprocessing
import socket
import ssl
import sys
import time


def cmd_csrs(count, out):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    with open(out, "w") as f:
        for i in range(count):
            name = "h%05d" % i
            key = ec.generate_private_key(ec.SECP256R1())
            csr = (x509.CertificateSigningRequestBuilder()
                   .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
                   .add_extension(x509.SubjectAlternativeName([x509.DNSName(name + ".bench")]),
                                  critical=False)
                   .sign(key, hashes.SHA256()))
            pem = csr.public_bytes(serialization.Encoding.PEM).decode()
            f.write(json.dumps({"name": name, "csr": pem}) + "\n")


def read_lines(path):
    with open(path) as f:
        return [line.rstrip("\n") for line in f if line.strip()]


def cmd_duet_bodies(csrs, tokens, out):
    c, t = read_lines(csrs), read_lines(tokens)
    if len(t) > len(c):
        sys.exit("ca_load: %d tokens but only %d CSRs" % (len(t), len(c)))
    with open(out, "w") as f:
        for tok, line in zip(t, c):
            f.write(json.dumps({"token": tok, "csr": json.loads(line)["csr"]}) + "\n")


def cmd_cfssl_bodies(csrs, out):
    with open(out, "w") as f:
        for line in read_lines(csrs):
            f.write(json.dumps({"certificate_request": json.loads(line)["csr"]}) + "\n")


def certificate_of(kind, status, data):
    """The PEM certificate of an answer, or (None, reason)."""
    if status != 200:
        return None, "HTTP %d" % status
    try:
        j = json.loads(data)
    except ValueError:
        return None, "not JSON"
    if kind == "duet":
        pem = j.get("certificate")
    else:
        pem = j.get("result", {}).get("certificate") if j.get("success") else None
    if not isinstance(pem, str) or "BEGIN CERTIFICATE" not in pem:
        return None, "no certificate in the answer"
    return pem, None


class Conn:
    """A minimal HTTP/1.1 client on one TLS connection, kept alive: http.client costs the
    driver several times the CPU, enough to become the bottleneck against a fast server."""

    def __init__(self, a, ctx):
        self.a, self.ctx, self.sock, self.buf = a, ctx, None, b""

    def connect(self):
        raw = socket.create_connection((self.a.host, self.a.port), timeout=30)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock, self.buf = self.ctx.wrap_socket(raw), b""

    def close(self):
        if self.sock is not None:
            self.sock.close()
        self.sock = None

    def _more(self):
        d = self.sock.recv(65536)
        if not d:
            raise ConnectionError("the server closed the connection")
        self.buf += d

    def post(self, head, body):
        """(status, body bytes) of one POST."""
        if self.sock is None:
            self.connect()
        self.sock.sendall(head % len(body) + body)
        while b"\r\n\r\n" not in self.buf:
            self._more()
        h, _, self.buf = self.buf.partition(b"\r\n\r\n")
        lines = h.split(b"\r\n")
        status = int(lines[0].split()[1])
        fields = {}
        for line in lines[1:]:
            k, _, v = line.partition(b":")
            fields[k.strip().lower()] = v.strip()
        if b"content-length" in fields:
            n = int(fields[b"content-length"])
            while len(self.buf) < n:
                self._more()
            data, self.buf = self.buf[:n], self.buf[n:]
        elif fields.get(b"transfer-encoding", b"").lower() == b"chunked":
            data = b""
            while True:
                while b"\r\n" not in self.buf:
                    self._more()
                size, _, self.buf = self.buf.partition(b"\r\n")
                n = int(size.split(b";")[0], 16)
                while len(self.buf) < n + 2:
                    self._more()
                data, self.buf = data + self.buf[:n], self.buf[n + 2:]
                if n == 0:
                    break
        else:
            raise ConnectionError("an answer without Content-Length or chunks")
        if fields.get(b"connection", b"").lower() == b"close":
            self.close()
        return status, data


def worker(a, url, bodies, start, q):
    a = argparse.Namespace(**vars(a))
    a.host, a.port, a.path = url
    ctx = ssl.create_default_context(cafile=a.cacert)
    ctx.check_hostname = False  # the bench's servers are named by address
    conn = Conn(a, ctx)
    try:
        conn.connect()
    except OSError as e:
        start.wait()
        q.put(([], {"connect: %s" % e: len(bodies)}, [], 0.0))
        return
    head = ("POST %s HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: application/json\r\n"
            "Content-Length: %%d\r\n\r\n" % (a.path, a.host, a.port)).encode()
    lat, errors, answers = [], {}, []
    bodies = [b.encode() for b in bodies]
    start.wait()
    cpu0 = time.process_time()
    for body in bodies:
        t0 = time.perf_counter()
        try:
            status, data = conn.post(head, body)
        except (OSError, ValueError, IndexError) as e:
            errors[type(e).__name__] = errors.get(type(e).__name__, 0) + 1
            conn.close()
            continue
        lat.append(time.perf_counter() - t0)
        answers.append((status, data))
    cpu = time.process_time() - cpu0
    conn.close()
    # The answers are checked after the timed part, not to load the driver during it.
    pems = []
    for status, data in answers:
        pem, why = certificate_of(a.kind, status, data)
        if pem is None:
            if not errors:
                sys.stderr.write("ca_load: first refusal: %s %s\n" % (why, data[:300]))
            errors[why] = errors.get(why, 0) + 1
        else:
            pems.append(pem)
    q.put((lat, errors, pems, cpu))


def serial_of(pem):
    from cryptography import x509
    return x509.load_pem_x509_certificate(pem.encode()).serial_number


def pct(sorted_ms, p):
    if not sorted_ms:
        return 0.0
    return sorted_ms[min(len(sorted_ms) - 1, int(len(sorted_ms) * p / 100.0))]


def split_url(url):
    """(host, port, path) of https://HOST:PORT/PATH."""
    hostport, _, path = url.split("://", 1)[1].partition("/")
    host, _, port = hostport.rpartition(":")
    return host, int(port), "/" + path


def cmd_run(a):
    urls = [split_url(u) for u in a.url]
    lines = read_lines(a.bodies)
    count = a.count or len(lines)
    if count > len(lines) and not a.reuse:
        sys.exit("ca_load: %d requests asked, %d bodies (one-time tokens cannot be reused)"
                 % (count, len(lines)))
    bodies = [lines[i % len(lines)] for i in range(count)]
    c = max(1, min(a.concurrency, count))
    start = multiprocessing.Event()
    q = multiprocessing.Queue()
    procs = [multiprocessing.Process(target=worker,
                                     args=(a, urls[i % len(urls)], bodies[i::c], start, q))
             for i in range(c)]
    for p in procs:
        p.start()
    time.sleep(0.5 + 0.02 * c)  # every worker connected and handshaken
    t0 = time.perf_counter()
    start.set()
    results = [q.get() for _ in procs]
    t1 = time.perf_counter()
    for p in procs:
        p.join()
    lat = sorted(x * 1000 for r in results for x in r[0])
    errors = {}
    for r in results:
        for k, v in r[1].items():
            errors[k] = errors.get(k, 0) + v
    pems = [p for r in results for p in r[2]]
    cpu = sum(r[3] for r in results)
    serials = len({serial_of(p) for p in pems})
    if a.out:
        with open(a.out, "w") as f:
            f.writelines(p if p.endswith("\n") else p + "\n" for p in pems)
    secs = t1 - t0
    print(json.dumps({
        "kind": a.kind, "url": a.url[0] if len(a.url) == 1 else a.url, "concurrency": c,
        "requests": count,
        "completed": len(pems), "errors": errors, "seconds": round(secs, 3),
        "rate_per_s": round(len(pems) / secs, 1) if secs > 0 else 0,
        "latency_ms": {"p50": round(pct(lat, 50), 2), "p90": round(pct(lat, 90), 2),
                       "p99": round(pct(lat, 99), 2), "max": round(lat[-1], 2) if lat else 0},
        "distinct_serials": serials, "driver_cpu_s": round(cpu, 3),
        "driver_cpu_share": round(cpu / secs, 3) if secs > 0 else 0}))
    return 0 if not errors and serials == len(pems) == count else 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("csrs")
    p.add_argument("count", type=int)
    p.add_argument("out")
    p = sub.add_parser("duet-bodies")
    p.add_argument("csrs")
    p.add_argument("tokens")
    p.add_argument("out")
    p = sub.add_parser("cfssl-bodies")
    p.add_argument("csrs")
    p.add_argument("out")
    p = sub.add_parser("run")
    p.add_argument("--url", required=True, action="append")
    p.add_argument("--cacert", required=True)
    p.add_argument("--bodies", required=True)
    p.add_argument("--kind", choices=("duet", "cfssl"), required=True)
    p.add_argument("--count", type=int, default=0)
    p.add_argument("--reuse", action="store_true")
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--out")
    a = ap.parse_args()
    if a.cmd == "csrs":
        cmd_csrs(a.count, a.out)
    elif a.cmd == "duet-bodies":
        cmd_duet_bodies(a.csrs, a.tokens, a.out)
    elif a.cmd == "cfssl-bodies":
        cmd_cfssl_bodies(a.csrs, a.out)
    else:
        return cmd_run(a)
    return 0


if __name__ == "__main__":
    sys.exit(main())
