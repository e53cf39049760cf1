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
W=$(mktemp -d /tmp/duet-h2bench.XXXXXX)
PIDS=""
cleanup() { for p in $PIDS; do kill "$p" 2>/dev/null || true; done; sleep 0.3; rm -rf "$W"; }
trap cleanup EXIT INT TERM
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

export DUET_CA_PASSPHRASE=bench-passphrase
cd "$W"
. "$ROOT/bench/common.sh"
bench_pki
"$DUET" ca init --ca-dir rogue --name "Rogue Corp" >/dev/null
"$DUET" cert issue rogue --profile client --ca-dir rogue --out c >/dev/null

BACK=$(port)
PORT=$(port)
start_backend "$BACK"

start_server() { # name
    case $1 in
    duet)
        taskset -c 0 "$DUET" proxy --listen 127.0.0.1:$PORT --target 127.0.0.1:$BACK \
            --cert c/server.crt --key c/server.key --cacert roots.pem --allow any \
            --workers 1 --log "$W/duet.log" --max-conns 100000 --failed-handshake-burst 1000000 \
            --upstream-keepalive 512 &
        ;;
    nginx)
        mkdir -p ng/logs
        cat > ng/nginx.conf <<CONF
worker_processes 1;
daemon off;
pid $W/ng/nginx.pid;
error_log $W/ng/logs/error.log;
events { worker_connections 65536; }
http {
    access_log $W/ng/logs/access.log;
    upstream back { server 127.0.0.1:$BACK; keepalive 512; }
    server {
        listen 127.0.0.1:$PORT ssl http2;
        ssl_certificate $W/c/server.crt;
        ssl_certificate_key $W/c/server.key;
        ssl_client_certificate $W/roots.pem;
        ssl_verify_client on;
        ssl_verify_depth 2;
        ssl_protocols TLSv1.3;
        http2_max_concurrent_streams $STREAMS;
        keepalive_requests 1000000;
        location / {
            proxy_pass http://back;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header X-Client-DN \$ssl_client_s_dn;
        }
    }
}
CONF
        taskset -c 0 nginx -p "$W/ng" -c "$W/ng/nginx.conf" &
        ;;
    esac
    SPID=$!
    PIDS="$PIDS $SPID"
    sleep 1
}

stop_server() { kill "$SPID" 2>/dev/null || true; wait "$SPID" 2>/dev/null || true; sleep 0.5; }

h2() { # [extra args]: the JSON of one h2 run
    taskset -c 1 "$DUET" bench --target 127.0.0.1:$PORT --server-name localhost --cacert roots.pem \
        --mode h2 --threads 1 --format json "$@" || true
}

refuses() { # no certificate, an unknown CA: nothing completes
    none=$(h2 --concurrency 1 --streams 1 --duration 1s --warmup 0s | field "['completed']" 2>/dev/null || echo "?")
    rogue=$(h2 --cert c/rogue.crt --key c/rogue.key --concurrency 1 --streams 1 --duration 1s \
        --warmup 0s | field "['completed']" 2>/dev/null || echo "?")
    [ "$none" = 0 ] && [ "$rogue" = 0 ]
}

echo "| run | server | refuses no cert / unknown CA | requests/s | p50 ms | p99 ms | errors | server CPU µs per request |"
echo "|---:|---|---|---:|---:|---:|---:|---:|"
: > runs.txt
i=1
while [ $i -le "$RUNS" ]; do
    for s in duet nginx; do
        start_server $s
        if refuses; then ok=yes; else ok=NO; fi
        t0=$(ticks $SPID)
        j=$(h2 --cert c/client.crt --key c/client.key --concurrency "$CONNS" --streams "$STREAMS" \
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
