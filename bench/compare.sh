#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Side-by-side mTLS numbers: duet proxy, nginx, HAProxy and stunnel on the
# same certificates (ECDSA P-256, root -> intermediate -> leaf on both sides,
# the client sending leaf + intermediate), in front of the same backend, each
# server with one worker pinned to CPU 0 and the load generator (duet bench)
# and the backend on CPU 1.  Before its numbers count, each server must refuse
# a client without a certificate and one from an unknown CA.
#
# Measured per server: full handshakes/s and server CPU microseconds per full
# handshake (utime+stime of the server's processes / handshakes), the same for
# resumed handshakes, keep-alive requests/s with p50/p99, and RSS per idle
# mTLS connection (IDLE connections).  The crypto bound comes from openssl speed.
#
# Usage: bench/compare.sh [DURATION_SECONDS] > results.md
# Needs: build/duet, nginx, haproxy, stunnel4 (scripts/deps.sh does not install
# haproxy and stunnel4: apt-get install haproxy stunnel4).
set -eu

DUR=${1:-10}
IDLE=${IDLE:-2000}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DUET=${DUET:-$ROOT/build/duet}
. "$ROOT/bench/common.sh"
bench_begin duet-bench
bench_pki
bench_rogue
cat c/server.crt c/server.key > c/server-combined.pem
chmod 600 c/server-combined.pem

BACK=$(port)
PORT=$(port)
start_backend "$BACK"

rss_kb() { # sum VmRSS of a process tree
    total=0
    for p in $(pgrep -P "$1") "$1"; do
        v=$(awk '/^VmRSS/ {print $2}' /proc/"$p"/status 2>/dev/null || echo 0)
        total=$((total + ${v:-0}))
    done
    echo "$total"
}

bench() { # mode [extra args]: prints the JSON of a run with the client certificate
    load "$@" --cert c/client.crt --key c/client.key
}

start_server() { # name
    case $1 in
    duet) start_duet_front ;;
    nginx) start_nginx_front 64 ssl ;;
    haproxy)
        cat > haproxy.cfg <<CONF
global
    nbthread 1
    maxconn 8000
    ssl-default-bind-options ssl-min-ver TLSv1.3
defaults
    mode http
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    option http-keep-alive
frontend f
    bind 127.0.0.1:$PORT ssl crt $W/c/server-combined.pem ca-file $W/roots.pem verify required
    http-request set-header X-Client-DN %{+Q}[ssl_c_s_dn]
    default_backend b
backend b
    http-reuse always
    server s 127.0.0.1:$BACK
CONF
        taskset -c 0 haproxy -db -f haproxy.cfg &
        ;;
    stunnel)
        cat > stunnel.conf <<CONF
foreground = yes
pid =
debug = 3
[b]
accept = 127.0.0.1:$PORT
connect = 127.0.0.1:$BACK
cert = $W/c/server.crt
key = $W/c/server.key
CAfile = $W/roots.pem
verifyChain = yes
requireCert = yes
sslVersionMin = TLSv1.3
CONF
        taskset -c 0 stunnel stunnel.conf 2>/dev/null &
        ;;
    esac
    SPID=$!
    PIDS="$PIDS $SPID"
    sleep 1
}

echo "| server | refuses no cert / unknown CA | full hs/s | server CPU µs per full hs | resumed hs/s | CPU µs per resumption | keep-alive req/s | p50 / p99 ms | RSS KB per idle conn (4 s / 14 s) |"
echo "|---|---|---:|---:|---:|---:|---:|---:|---:|"
for s in duet nginx haproxy stunnel; do
    start_server $s
    if refuses full; then ok=yes; else ok=NO; fi
    t0=$(ticks $SPID); j=$(bench full --concurrency 16 --duration ${DUR}s --warmup 1s); t1=$(ticks $SPID)
    full=$(echo "$j" | field "['completed']"); fr=$(echo "$j" | field "['rate_per_s']")
    fcpu=$(/usr/bin/python3 -c "print(round(($t1-$t0)*1e6/$HZ/max($full,1)))")
    t0=$(ticks $SPID); j=$(bench resume --concurrency 16 --duration ${DUR}s --warmup 1s); t1=$(ticks $SPID)
    res=$(echo "$j" | field "['completed']"); rr=$(echo "$j" | field "['rate_per_s']")
    rerr=$(echo "$j" | field "['errors_total']")
    rcpu=$(/usr/bin/python3 -c "print(round(($t1-$t0)*1e6/$HZ/max($res,1)))")
    [ "$rerr" != 0 ] && rr="$rr ($rerr not resumed)"
    j=$(bench keepalive --concurrency 32 --duration ${DUR}s --warmup 1s)
    kr=$(echo "$j" | field "['rate_per_s']"); kp=$(echo "$j" | field "['latency_ms']['p50']")
    k99=$(echo "$j" | field "['latency_ms']['p99']")
    # Idle memory on a fresh process, so that memory freed by the runs above (and kept by
    # the allocator) does not hide the cost of the connections.
    stop_server
    start_server $s
    r0=$(rss_kb $SPID)
    # Measured 4 s after the connections opened, and again once they have been idle
    # 14 s (servers may give memory back in the meantime, as duet does every 10 s).
    bench idle --concurrency $IDLE --duration 16s --warmup 0s > idle.json &
    IB=$!
    sleep 4
    r1=$(rss_kb $SPID)
    sleep 10
    r2=$(rss_kb $SPID)
    wait $IB || true
    est=$(field "['established']" < idle.json)
    per=$(/usr/bin/python3 -c "print(round(($r1-$r0)/max($est,1),1))")
    per2=$(/usr/bin/python3 -c "print(round(($r2-$r0)/max($est,1),1))")
    printf '| %s | %s | %.0f | %s | %.0f | %s | %.0f | %.2f / %.2f | %s / %s (%s held) |\n' \
        "$s" "$ok" "$fr" "$fcpu" "$(echo "$rr" | cut -d' ' -f1)" "$rcpu" "$kr" "$kp" "$k99" "$per" "$per2" "$est"
    stop_server
done

# The cryptography of one full mTLS handshake on this core: 2 X25519, 1 ECDSA P-256 sign, 3 verifies.
speed=$(taskset -c 0 openssl speed -seconds 2 -elapsed ecdsap256 ecdhx25519 2>/dev/null)
signs=$(echo "$speed" | awk '/bits ecdsa \(nistp256\)/ {print $7; exit}')
verifies=$(echo "$speed" | awk '/bits ecdsa \(nistp256\)/ {print $8; exit}')
xs=$(echo "$speed" | awk '/bits ecdh \(X25519\)/ {print $6; exit}')
/usr/bin/python3 -c "
s, v, x = 1e6 / $signs, 1e6 / $verifies, 1e6 / $xs
print()
print('crypto bound per full mTLS handshake on CPU 0: %.0f µs (2 X25519 %.0f, one ECDSA P-256 sign %.0f, 3 verifies %.0f)' % (2 * x + s + 3 * v, 2 * x, s, 3 * v))"
echo "date: $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(openssl version), duration ${DUR}s per run"
