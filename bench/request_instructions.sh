#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Instructions duet proxy spends per keep-alive HTTP request (server side, user
# space), counted by valgrind's callgrind: repeatable whatever else the machine
# does, so a change to the request path can be compared before and after on a
# shared machine.  The proxy runs under callgrind twice, once for a 2-second and
# once for a 6-second keep-alive load from `duet bench` (4 connections); the
# difference of the two totals over the difference of the two request counts
# leaves out start-up, handshakes and exit.
#
# Usage: bench/request_instructions.sh [DUET_BINARY]   (default build/duet)
# Needs: valgrind, nginx (the backend).
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${1:-$ROOT/build/duet}
DUET=${DUET:-$ROOT/build/duet}
. "$ROOT/bench/common.sh"
bench_begin duet-reqins
bench_pki
BACK=$(port)
start_backend "$BACK"
for dur in 2 6; do
    PORT=$(port)
    valgrind --tool=callgrind --callgrind-out-file="$W/cg.$dur" "$BIN" proxy \
        --listen 127.0.0.1:$PORT --target 127.0.0.1:$BACK --cert c/server.crt \
        --key c/server.key --cacert roots.pem --allow any --workers 1 --log "$W/duet.log" \
        --max-conns 100000 >/dev/null 2>"$W/valgrind.$dur" &
    VP=$!
    PIDS="$PIDS $VP" # stopped by the trap if anything below fails
    sleep 4
    n=$("$DUET" bench --target 127.0.0.1:$PORT --server-name localhost --cacert roots.pem \
        --cert c/client.crt --key c/client.key --mode keepalive --concurrency 4 --threads 1 \
        --duration ${dur}s --warmup 0s --format json | field "['completed']")
    kill -TERM $VP
    wait $VP || true
    echo "$n $(awk '/^summary:/ {print $2; exit}' "$W/cg.$dur")"
done > counts
/usr/bin/python3 -c "
(n1, i1), (n2, i2) = [map(int, l.split()) for l in open('counts')]
print('%s: %.0f instructions per keep-alive request (%d and %d requests)' % ('$BIN', (i2 - i1) / (n2 - n1), n1, n2))"
