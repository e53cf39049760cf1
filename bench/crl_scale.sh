#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Revocation at scale: a CRL of N revoked serials (default 1,000,000) signed by
# a duet issuing CA, measured three ways.
#
#   1. Reading it: `openssl crl -noout` (OpenSSL's parsed CRL objects, what a
#      server that hands CRLs to OpenSSL holds) next to `duet cert verify`
#      (duet's compact set), wall time and peak RSS of each.
#   2. Holding it: RSS of `duet proxy` with no CRL and with the CRL, once
#      started (the resident cost), and the duration of a reload of it.
#   3. Serving through reloads: `duet bench --mode full` against the proxy for
#      DURATION seconds, once without reloads and once with a SIGHUP reload of
#      the CRL every 2 s; errors (must be 0), rate and latency p50/p99/max.
#
# With MODE http (third argument), parts 2 and 3 again with the CRL fetched
# over HTTP instead (--crl-url, served by python3 -m http.server on CPU 1,
# --crl-refresh 2s): RSS once fetched, then `duet bench` while the served
# CRL is replaced every 3 s by a newer one (CRLNumber one higher, the same
# million entries), so each refresh downloads, checks and reloads 63 MiB;
# errors, latency, fetches completed and peak RSS (VmHWM).
#
# The proxy runs one worker pinned to CPU 0; duet bench and the backend run
# on CPU 1.
#
# Usage: bench/crl_scale.sh [ENTRIES] [DURATION_SECONDS] [file|http] > results.md
set -eu

N=${1:-1000000}
DUR=${2:-10}
MODE=${3:-file}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DUET=${DUET:-$ROOT/build/duet}
MKCRL=${MKCRL:-$ROOT/build/tests/mkcrl}
W=$(mktemp -d /tmp/duet-crl-bench.XXXXXX)
PIDS=""
cleanup() { for p in $PIDS; do kill "$p" 2>/dev/null || true; done; sleep 0.3; rm -rf "$W"; }
trap cleanup EXIT INT TERM

export DUET_CA_PASSPHRASE=bench-passphrase
cd "$W"
. "$ROOT/bench/common.sh"
bench_pki
"$DUET" cert issue revoked --profile client --ca-dir ca --out c >/dev/null
"$DUET" crl generate --ca-dir ca --out duet-crl.pem >/dev/null
# The root's CRL is the second block of duet's bundle; the issuing CA's is made by mkcrl.
awk '/BEGIN X509 CRL/ {n++} n == 2' duet-crl.pem > root-crl.pem
"$MKCRL" --cert ca/issuing.crt --key ca/issuing.key --pass-env DUET_CA_PASSPHRASE \
    --count "$N" --revoke c/revoked.crt --out issuing-crl.pem 2>/dev/null
cat issuing-crl.pem root-crl.pem > crl.pem
SIZE=$(stat -c %s crl.pem)

tv() { /usr/bin/time -f '%e %M' "$@" 2>&1 >/dev/null | tail -1; }

echo "## Revocation at scale: $N revoked serials"
echo
echo "Run on $(date -u '+%Y-%m-%d %H:%M') UTC with \`bench/crl_scale.sh $N $DUR $MODE\`; CRL file $((SIZE / 1048576)) MiB (PEM)."
echo
echo "### Reading the CRL"
echo
echo "| reader | wall s | peak RSS MiB |"
echo "|---|---:|---:|"
set -- $(tv openssl crl -in issuing-crl.pem -noout)
echo "| openssl crl -noout (OpenSSL's parsed CRL) | $1 | $(($2 / 1024)) |"
set -- $(/usr/bin/time -f '%e %M' "$DUET" cert verify --trusted roots.pem --purpose client --crl crl.pem c/client.crt 2>&1 >/dev/null | tail -1)
echo "| duet cert verify (compact set) | $1 | $(($2 / 1024)) |"
if "$DUET" cert verify --trusted roots.pem --purpose client --crl crl.pem c/revoked.crt 2>/dev/null; then
    echo "ERROR: the revoked certificate verified" >&2
    exit 1
fi
echo

BACK=$(port)
start_backend "$BACK"

# start_proxy LOG [--crl F]: starts duet proxy, waits for its start event, sets PPID_ and PORT.
start_proxy() {
    log=$1
    shift
    PORT=$(port)
    taskset -c 0 "$DUET" proxy --listen 127.0.0.1:$PORT --target 127.0.0.1:$BACK \
        --cert c/server.crt --key c/server.key --cacert roots.pem --allow any --workers 1 \
        --failed-handshake-burst 1000000 --log "$log" "$@" 2>>proxy.err &
    PPID_=$!
    PIDS="$PIDS $PPID_"
    wait_start "$log"
}
rss() { awk '/^VmRSS/ {print $2}' /proc/"$1"/status; }

bench() {
    taskset -c 1 "$DUET" bench --target 127.0.0.1:$PORT --server-name localhost --cacert roots.pem \
        --cert c/client.crt --key c/client.key --mode full --threads 1 --concurrency 4 \
        --duration "${DUR}s" --warmup 1s --format json
}
row() { # label json
    /usr/bin/python3 -c '
import json, sys
r = json.loads(sys.argv[2]); l = r["latency_ms"]
print("| %s | %d | %.0f | %.2f | %.2f | %.2f |" % (sys.argv[1], r["errors_total"], r["rate_per_s"], l["p50"], l["p99"], l["max"]))' "$1" "$2"
}

if [ "$MODE" = http ]; then
    # Newer CRLs of the same entries, to be served one after the other.
    for k in 20 21 22 23 24 25; do
        "$MKCRL" --cert ca/issuing.crt --key ca/issuing.key --pass-env DUET_CA_PASSPHRASE \
            --count "$N" --revoke c/revoked.crt --number $k --out iss-$k.pem 2>/dev/null
        cat iss-$k.pem root-crl.pem > crl-$k.pem
        rm iss-$k.pem
    done
    mkdir srv
    serve() { cp "crl-$1.pem" srv/next && mv srv/next srv/crl.pem; }
    serve 20
    HP=$(port)
    taskset -c 1 /usr/bin/python3 -m http.server --bind 127.0.0.1 --directory srv "$HP" \
        >/dev/null 2>&1 &
    PIDS="$PIDS $!"
    sleep 0.5
    start_proxy none.log
    sleep 0.5
    RSS0=$(rss $PPID_)
    kill $PPID_
    T0=$(date +%s.%N)
    start_proxy http.log --crl-url "http://127.0.0.1:$HP/crl.pem" --crl-cache cache --crl-refresh 2s
    T1=$(date +%s.%N)
    sleep 0.5
    RSS1=$(rss $PPID_)
    HWM1=$(awk '/^VmHWM/ {print $2}' /proc/$PPID_/status)
    echo "### The CRL fetched over HTTP (--crl-url, --crl-refresh 2s)"
    echo
    echo "| run | errors | handshakes/s | p50 ms | p99 ms | max ms |"
    echo "|---|---:|---:|---:|---:|---:|"
    J=$(bench)
    row "served CRL unchanged (fetched again, same bytes)" "$J"
    F0=$(grep -c '"event":"crl_fetched"' http.log)
    ( for k in 21 22 23 24 25; do sleep 3; serve $k; done ) &
    ROT=$!
    J=$(bench) || true
    wait $ROT 2>/dev/null || true
    sleep 5 # the last fetch, check and reload end
    F1=$(grep -c '"event":"crl_fetched"' http.log)
    R1=$(grep -c '"event":"reload","result":"ok"' http.log || true)
    REJ=$(grep -c '"event":"crl_rejected"\|"event":"crl_fetch_failed"' http.log || true)
    row "a newer CRL served every 3 s" "$J"
    RSS2=$(rss $PPID_)
    HWM=$(awk '/^VmHWM/ {print $2}' /proc/$PPID_/status)
    echo
    echo "| memory of duet proxy | value |"
    echo "|---|---:|"
    echo "| RSS without a CRL | $((RSS0 / 1024)) MiB |"
    echo "| RSS with the fetched CRL | $((RSS1 / 1024)) MiB |"
    echo "| peak RSS (VmHWM) through start (fetch, check, load) | $((HWM1 / 1024)) MiB |"
    echo "| RSS after the refreshes | $((RSS2 / 1024)) MiB |"
    echo "| peak RSS (VmHWM) through start and the loaded run's fetches and reloads | $((HWM / 1024)) MiB |"
    echo "| start-up with the fetch (process start to listening) | $(echo "$T1 - $T0" | bc | sed 's/^\./0./' | cut -c1-5) s |"
    echo
    echo "New CRLs fetched and installed during the loaded run: $((F1 - F0)); reloads in all: $R1; fetches refused or failed: $REJ."
    exit 0
fi

start_proxy none.log
sleep 0.5
RSS0=$(rss $PPID_)
kill $PPID_
T0=$(date +%s.%N)
start_proxy crl.log --crl crl.pem
T1=$(date +%s.%N)
sleep 0.5
RSS1=$(rss $PPID_)
kill -HUP $PPID_
i=0
until grep -q '"event":"reload"' crl.log; do i=$((i + 1)); [ $i -gt 600 ] && break; sleep 0.05; done
RELOAD_MS=$(grep -o '"event":"reload","result":"ok"[^}]*"duration_ms":[0-9.]*' crl.log | head -1 | sed 's/.*"duration_ms"://')
sleep 0.5
RSS2=$(rss $PPID_)
HWM=$(awk '/^VmHWM/ {print $2}' /proc/$PPID_/status)

echo "### Holding the CRL in duet proxy"
echo
echo "| | value |"
echo "|---|---:|"
echo "| RSS without a CRL | $((RSS0 / 1024)) MiB |"
echo "| RSS with the CRL | $((RSS1 / 1024)) MiB |"
echo "| resident cost of the CRL | $(((RSS1 - RSS0) / 1024)) MiB ($(((RSS1 - RSS0) * 1024 / N)) bytes per entry) |"
echo "| RSS after a reload of it | $((RSS2 / 1024)) MiB |"
echo "| peak RSS (VmHWM) through start and reload | $((HWM / 1024)) MiB |"
echo "| start-up with the CRL (process start to listening) | $(echo "$T1 - $T0" | bc | sed 's/^\./0./' | cut -c1-5) s |"
echo "| reload of the CRL (reload event duration) | ${RELOAD_MS%.*} ms |"
echo

echo "### Full handshakes while the CRL reloads"
echo
echo "| run | errors | handshakes/s | p50 ms | p99 ms | max ms |"
echo "|---|---:|---:|---:|---:|---:|"
J=$(bench)
row "no reload" "$J"
( sleep 2; while kill -HUP $PPID_ 2>/dev/null; do sleep 2; done ) &
HUPPER=$!
J=$(bench) || true
kill $HUPPER 2>/dev/null || true
NRELOAD=$(grep -c '"event":"reload","result":"ok"' crl.log)
row "SIGHUP reload every 2 s" "$J"
echo
echo "Peak RSS (VmHWM) through start, the reload above and the loaded run's reloads: $(($(awk '/^VmHWM/ {print $2}' /proc/$PPID_/status) / 1024)) MiB."
echo
echo "Reloads completed during the run: $((NRELOAD - 1)); the CRL revokes the certificate c/revoked.crt, which duet cert verify refused."
