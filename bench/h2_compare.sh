#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# HTTP/2 over mTLS side by side: duet proxy and nginx (`listen ... ssl http2`,
# proxy_pass with keep-alive upstream connections) on the same certificates,
# in front of the same HTTP/1.1 backend (nginx answering "ok").  Each server
# runs one worker pinned to CPU 0; the load generator (`duet bench --mode h2`)
# and the backend run on CPU 1.  Before its numbers count, each server must
# refuse a client without a certificate and one from an unknown CA.  Both keep
# up to 512 idle connections to the backend (duet --upstream-keepalive, nginx
# keepalive): with 400 streams in flight a smaller pool closes most of them.
#
# Measured per server, RUNS times in turn (duet, nginx, duet, nginx, ...):
# requests/s, p50 and p99 latency of each request (submission to end of
# stream), and the server's CPU microseconds per request, with CONNS
# connections of STREAMS concurrent streams each.  The medians of the runs
# and the ratio duet/nginx are printed last.
#
# Usage: bench/h2_compare.sh [DURATION_SECONDS] > results.md
#        CONNS=4 STREAMS=100 RUNS=3 bench/h2_compare.sh 10
# Needs: build/duet, nginx (with http2: Debian's nginx has it).
set -eu

DUR=${1:-10}
CONNS=${CONNS:-4}
STREAMS=${STREAMS:-100}
RUNS=${RUNS:-3}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DUET=${DUET:-$ROOT/build/duet}
. "$ROOT/bench/common.sh"
bench_begin duet-h2bench
bench_pki
bench_rogue

BACK=$(port)
PORT=$(port)
start_backend "$BACK"

start_server() { # name
    case $1 in
    duet) start_duet_front --upstream-keepalive 512 ;;
    nginx) start_nginx_front 512 "ssl http2" "http2_max_concurrent_streams $STREAMS;" ;;
    esac
    SPID=$!
    PIDS="$PIDS $SPID"
    sleep 1
}

echo "| run | server | refuses no cert / unknown CA | requests/s | p50 ms | p99 ms | errors | server CPU µs per request |"
echo "|---:|---|---|---:|---:|---:|---:|---:|"
: > runs.txt
i=1
while [ $i -le "$RUNS" ]; do
    for s in duet nginx; do
        start_server $s
        if refuses h2 --streams 1; then ok=yes; else ok=NO; fi
        t0=$(ticks $SPID)
        j=$(load h2 --cert c/client.crt --key c/client.key --concurrency "$CONNS" --streams "$STREAMS" \
            --duration "${DUR}s" --warmup 2s)
        t1=$(ticks $SPID)
        stop_server
        n=$(echo "$j" | field "['completed']"); r=$(echo "$j" | field "['rate_per_s']")
        p50=$(echo "$j" | field "['latency_ms']['p50']"); p99=$(echo "$j" | field "['latency_ms']['p99']")
        e=$(echo "$j" | field "['errors_total']")
        # CPU from start to stop (warm-up included) over the requests counted after it: an upper bound
        cpu=$(/usr/bin/python3 -c "print(round(($t1-$t0)*1e6/$HZ/max($n,1)*$DUR/($DUR+2), 1))")
        printf '| %d | %s | %s | %.0f | %.2f | %.2f | %s | %s |\n' "$i" "$s" "$ok" "$r" "$p50" "$p99" "$e" "$cpu"
        # a server that let a client without a certificate (or of an unknown CA) in: no medians
        [ "$ok" = yes ] && echo "$s $r $p50 $p99 $cpu" >> runs.txt
    done
    i=$((i + 1))
done

/usr/bin/python3 - runs.txt <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
med = {}
for s in ("duet", "nginx"):
    cols = list(zip(*[[float(x) for x in r[1:]] for r in rows if r[0] == s]))
    if not cols:
        sys.exit("no run of %s counts: it did not refuse a client without a certificate" % s)
    med[s] = [statistics.median(c) for c in cols]
print()
print("| median of the runs | requests/s | p50 ms | p99 ms | CPU µs per request |")
print("|---|---:|---:|---:|---:|")
for s in ("duet", "nginx"):
    print("| %s | %.0f | %.2f | %.2f | %.1f |" % (s, *med[s]))
d, n = med["duet"], med["nginx"]
print("| duet / nginx | %.2fx | %.2fx | %.2fx | %.2fx |" % (d[0] / n[0], d[1] / n[1], d[2] / n[2], d[3] / n[3]))
PY
echo
echo "date: $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(openssl version), $(nginx -v 2>&1 | sed 's/.*: //'), $CONNS connections x $STREAMS streams, ${DUR}s per run"
