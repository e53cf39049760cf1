#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Instructions duet proxy spends per keep-alive HTTP request (server side, user
# space), counted by valgrind's callgrind: repeatable whatever else the machine
# does, so a change to the request path can be compared before and after on a
# shared machine.  The proxy runs under callgrind twice, once for a 2-second and
# once for a 6-second keep-alive load from `duet bench` (4 connections); the
# difference of the two totals over the difference of the two request counts
# leaves out start-up, handshakes and exit (SHORT=4 LONG=12 for more requests
# on a busy machine).  MODE=h2 does the same for HTTP/2 requests (4
# connections of STREAMS concurrent streams, 10 by default).
#
# Usage: bench/request_instructions.sh [DUET_BINARY]   (default build/duet)
#        MODE=h2 bench/request_instructions.sh old/duet
# Needs: valgrind, nginx (the backend).
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${1:-$ROOT/build/duet}
DUET=${DUET:-$ROOT/build/duet}
MODE=${MODE:-keepalive}
STREAMS=${STREAMS:-10}
case $MODE in
keepalive) LOAD="--mode keepalive" WHAT=keep-alive ;;
h2) LOAD="--mode h2 --streams $STREAMS" WHAT=HTTP/2 ;;
*) echo "MODE is keepalive or h2, not $MODE" >&2; exit 2 ;;
esac
. "$ROOT/bench/common.sh"
bench_begin duet-reqins
bench_pki
BACK=$(port)
start_backend "$BACK"
for dur in ${SHORT:-2} ${LONG:-6}; do
    PORT=$(port)
    valgrind --tool=callgrind --callgrind-out-file="$W/cg.$dur" "$BIN" proxy \
        --listen 127.0.0.1:$PORT --target 127.0.0.1:$BACK --cert c/server.crt \
        --key c/server.key --cacert roots.pem --allow any --workers 1 --log "$W/duet.$dur.log" \
        --max-conns 100000 >/dev/null 2>"$W/valgrind.$dur" &
    VP=$!
    PIDS="$PIDS $VP" # stopped by the trap if anything below fails
    wait_start "$W/duet.$dur.log" # (callgrind starts slowly on a busy machine)
    n=$("$DUET" bench --target 127.0.0.1:$PORT --server-name localhost --cacert roots.pem \
        --cert c/client.crt --key c/client.key $LOAD --concurrency 4 --threads 1 \
        --duration ${dur}s --warmup 0s --format json | field "['completed']")
    kill -TERM $VP
    wait $VP || true
    echo "$n $(awk '/^summary:/ {print $2; exit}' "$W/cg.$dur")"
done > counts
/usr/bin/python3 -c "
(n1, i1), (n2, i2) = [map(int, l.split()) for l in open('counts')]
print('%s: %.0f instructions per %s request (%d and %d requests)' % ('$BIN', (i2 - i1) / (n2 - n1), '$WHAT', n1, n2))"
