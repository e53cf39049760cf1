#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Instructions duet proxy spends per full mTLS handshake with `--ocsp prefer`
# and a warm OCSP cache, against `--ocsp off` (server side, user space),
# counted by valgrind's callgrind: repeatable whatever else the machine does.
# For each setting the proxy runs under callgrind twice, for a 2-second and a
# 6-second load of full handshakes from `duet bench` (4 connections, one GET
# each); the difference of the two totals over the difference of the two
# handshake counts leaves out start-up and exit, and the one OCSP query that
# warms the cache.  The responder is a small HTTP server answering every GET
# with the response `duet ocsp respond` signed for the client certificate.
#
# Usage: bench/ocsp_handshake_instructions.sh [DUET_BINARY]   (default build/duet)
# Needs: valgrind, nginx (the backend), openssl.
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${1:-$ROOT/build/duet}
DUET=${DUET:-$ROOT/build/duet}
. "$ROOT/bench/common.sh"
bench_begin duet-ocspins
bench_pki
BACK=$(port)
start_backend "$BACK"

# The responder: one signed answer (good, valid 1 h) for the client certificate.
openssl ocsp -issuer ca/issuing.crt -cert c/client.crt -no_nonce -reqout req.der >/dev/null
"$DUET" ocsp respond --ca-dir ca --request req.der --out resp.der >/dev/null
RP=$(port)
/usr/bin/python3 -c "
import http.server
body = open('resp.der', 'rb').read()
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header('Content-Type', 'application/ocsp-response')
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
http.server.HTTPServer(('127.0.0.1', $RP), H).serve_forever()" &
PIDS="$PIDS $!"
sleep 0.5

for mode in off prefer; do
    for dur in 2 6; do
        PORT=$(port)
        valgrind --tool=callgrind --callgrind-out-file="$W/cg.$mode.$dur" "$BIN" proxy \
            --listen 127.0.0.1:$PORT --target 127.0.0.1:$BACK --cert c/server.crt \
            --key c/server.key --cacert roots.pem --allow any --workers 1 \
            --log "$W/duet.$mode.log" --max-conns 100000 --ocsp $mode \
            --ocsp-url http://127.0.0.1:$RP/ >/dev/null 2>"$W/valgrind.$mode.$dur" &
        VP=$!
        PIDS="$PIDS $VP" # stopped by the trap if anything below fails
        sleep 4
        n=$("$DUET" bench --target 127.0.0.1:$PORT --server-name localhost --cacert roots.pem \
            --cert c/client.crt --key c/client.key --mode full --concurrency 4 --threads 1 \
            --duration ${dur}s --warmup 0s --format json | field "['completed']")
        kill -TERM $VP
        wait $VP || true
        echo "$mode $n $(awk '/^summary:/ {print $2; exit}' "$W/cg.$mode.$dur")"
    done
done > counts
grep -c '"event":"ocsp_check_failed"' "$W/duet.prefer.log" >/dev/null &&
    echo "warning: some OCSP checks failed (see the log)" >&2 || true
/usr/bin/python3 -c "
rows = [l.split() for l in open('counts')]
per = {}
for mode in ('off', 'prefer'):
    (n1, i1), (n2, i2) = [(int(r[1]), int(r[2])) for r in rows if r[0] == mode]
    per[mode] = (i2 - i1) / (n2 - n1)
    print('--ocsp %-6s %.0f instructions per full handshake (%d and %d handshakes)'
          % (mode, per[mode], n1, n2))
print('prefer with a warm cache / off: %+.1f%%' % ((per['prefer'] / per['off'] - 1) * 100))"
