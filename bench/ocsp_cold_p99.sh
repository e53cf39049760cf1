#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Handshake latency of warm clients while a few clients hit a cold OCSP cache
# against a responder 50 ms away (issue 13): does one client waiting for its
# answer stall the others on the worker?
#
# The responder is `duet ca serve`, reached through bench/tcp_delay.py, which
# delays each direction by DELAY_MS/2 (default 50 ms round trip).  `duet proxy
# --ocsp MODE --ocsp-url` asks it.  For each MODE (prefer, require) and each
# worker setting (--workers 1 on CPU 0, and the default):
#   - warm: `duet bench --mode full --concurrency 4` with one client
#     certificate, whose answer is cached after its first handshake;
#   - warm + cold: the same, while bench/ocsp_cold_clients.py starts clients
#     whose certificates the proxy has never seen (issued beforehand, each used
#     once) at 1% of the warm handshake rate measured first.
# It reports p50/p99/max of the warm handshakes with and without the cold
# stream, and the cold clients' latency (connect to the response's status
# line: handshake + OCSP query + request).
#
# Usage: bench/ocsp_cold_p99.sh [DURATION_SECONDS] [COLD_CERTS] [DELAY_MS] [ROUNDS] > results.md
# Needs: nginx (the backend), python3.
set -eu

DUR=${1:-5}
NCOLD=${2:-150}
DELAY=${3:-50}
ROUNDS=${4:-3}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DUET=${DUET:-$ROOT/build/duet}
PY=/usr/bin/python3
W=$(mktemp -d /tmp/duet-ocspcold.XXXXXX)
PIDS=""
cleanup() { for p in $PIDS; do kill "$p" 2>/dev/null || true; done; sleep 0.3; rm -rf "$W"; }
trap cleanup EXIT INT TERM
export DUET_CA_PASSPHRASE=bench-passphrase
cd "$W"
. "$ROOT/bench/common.sh"
bench_pki
mkdir cold
i=0
while [ $i -lt "$NCOLD" ]; do
    "$DUET" cert issue cold$i --profile client --ca-dir ca --out cold >/dev/null
    i=$((i + 1))
done

BACK=$(port)
start_backend "$BACK"
CAP=$(port)
CAH=$(port)
taskset -c 1 "$DUET" ca serve --ca-dir ca --listen 127.0.0.1:$CAP --http-listen 127.0.0.1:$CAH \
    --server-name localhost --log ca.log 2>ca.err &
PIDS="$PIDS $!"
RELAY=$(port)
taskset -c 1 $PY "$ROOT/bench/tcp_delay.py" "$RELAY" "$CAH" "$(echo "$DELAY / 2" | bc -l)" &
PIDS="$PIDS $!"
sleep 1

# start_proxy MODE WORKERS LOG: duet proxy asking the responder through the relay; sets PP and PORT.
start_proxy() {
    PORT=$(port)
    if [ "$2" = default ]; then pin=""; wk=""; else pin="taskset -c 0"; wk="--workers $2"; fi
    $pin "$DUET" proxy --listen 127.0.0.1:$PORT --target 127.0.0.1:$BACK \
        --cert c/server.crt --key c/server.key --cacert roots.pem --allow any $wk \
        --failed-handshake-burst 1000000 --max-conns 100000 --ocsp "$1" \
        --ocsp-url "http://127.0.0.1:$RELAY/ocsp" --log "$3" 2>>proxy.err &
    PP=$!
    PIDS="$PIDS $PP"
    wait_start "$3"
}
warm() {
    taskset -c 1 "$DUET" bench --target 127.0.0.1:$PORT --server-name localhost --cacert roots.pem \
        --cert c/client.crt --key c/client.key --mode full --threads 1 --concurrency 4 \
        --duration "${DUR}s" --warmup 1s --format json |
        $PY -c 'import json, sys; print(json.dumps(json.load(sys.stdin)))'
}
NEXT=0
# cold_list N: the next N cold certificates (fewer when the pool runs out).
cold_list() {
    i=$NEXT
    COLD=""
    while [ $i -lt $((NEXT + $1)) ] && [ $i -lt "$NCOLD" ]; do COLD="$COLD cold/cold$i.crt"; i=$((i + 1)); done
    NEXT=$i
}

# One line per run in runs.txt: config, kind (warm / both), warm JSON, cold JSON.
for workers in 1 default; do
    for mode in prefer require; do
        start_proxy $mode $workers "$mode.$workers.log"
        r=0
        while [ $r -lt "$ROUNDS" ]; do
            J0=$(warm)
            echo "--ocsp $mode, --workers $workers	warm	$J0	{}" >> runs.txt
            RATE=$(echo "$J0" | field "['rate_per_s'] / 100.0")
            cold_list "$(echo "$RATE * $DUR + 1" | bc | cut -d. -f1)"
            # The cold stream starts after the warm run's 1 s warm-up.
            (sleep 1; taskset -c 1 $PY "$ROOT/bench/ocsp_cold_clients.py" "$PORT" roots.pem \
                "$RATE" "$DUR" $COLD > cold.json) &
            CP=$!
            J1=$(warm)
            wait $CP
            echo "--ocsp $mode, --workers $workers	both	$J1	$(cat cold.json)" >> runs.txt
            r=$((r + 1))
        done
        kill $PP
        wait $PP 2>/dev/null || true
    done
done

echo "## OCSP: warm handshakes while 1% of clients hit a cold cache (responder ${DELAY} ms away)"
echo
echo "Run on $(date -u '+%Y-%m-%d %H:%M') UTC with \`bench/ocsp_cold_p99.sh $DUR $NCOLD $DELAY $ROUNDS\` ($(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')); medians of $ROUNDS rounds, each a warm-only run then a warm + cold run on the same proxy."
echo
$PY - runs.txt <<'PYEOF'
import json, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    cfg, kind, w, c = line.rstrip("\n").split("\t")
    rows.setdefault(cfg, {}).setdefault(kind, []).append((json.loads(w), json.loads(c)))
med = statistics.median
print("| proxy | run | warm errors | warm handshakes/s | warm p50 ms | warm p99 ms | warm max ms "
      "| cold clients (errors) | cold p50 ms | cold p99 ms | cold max ms |")
print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for cfg, kinds in rows.items():
    for kind in ("warm", "both"):
        runs = kinds.get(kind, [])
        w = [r[0] for r in runs]
        line = "| %s | %s | %d | %.0f | %.2f | %.2f | %.2f |" % (
            cfg, "warm only" if kind == "warm" else "warm + 1% cold",
            sum(x["errors_total"] for x in w), med(x["rate_per_s"] for x in w),
            med(x["latency_ms"]["p50"] for x in w), med(x["latency_ms"]["p99"] for x in w),
            med(x["latency_ms"]["max"] for x in w))
        if kind == "both":
            c = [r[1] for r in runs]
            line += " %d (%d) | %.1f | %.1f | %.1f |" % (
                sum(x["ok"] for x in c), sum(x["errors"] for x in c), med(x["p50"] for x in c),
                med(x["p99"] for x in c), max(x["max"] for x in c))
            for x in c:
                if x["first_error"]:
                    print("cold error: " + x["first_error"], file=sys.stderr)
        else:
            line += " - | - | - | - |"
        print(line)
PYEOF
echo
echo "Cold certificates used: $NEXT of $NCOLD (each once)."
