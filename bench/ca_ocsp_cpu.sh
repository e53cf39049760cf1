#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Server CPU per OCSP answer, interleaved rounds: one or more `duet ca serve`
# binaries (say, before and after a change) against `openssl ocsp`, in the
# same run, on a loaded machine where only interleaving and medians say
# anything.  The OCSP part of bench/ca_bench.sh without its issuance part.
#
# Each round runs every responder in turn, pinned to CPU 0, with `ab -k -c
# CONC -n COUNT` (POST, the same DER request without a nonce every time)
# pinned to CPU 1, and reads the responder's utime+stime from /proc before
# and after: server CPU µs per answer.  duet answers from its cache of signed
# answers (after the first); openssl ocsp signs each answer, one connection
# at a time (its default), and is started afresh for each round.  Every
# responder's answer is checked with `openssl ocsp -respin` first.
#
# Usage: bench/ca_ocsp_cpu.sh DUET_BINARY... > results.txt
#   ROUNDS=7 rounds, COUNT=40000 answers per run, CONC=8.
set -eu

ROUNDS=${ROUNDS:-7}
COUNT=${COUNT:-40000}
CONC=${CONC:-8}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
[ $# -ge 1 ] || { echo "usage: $0 DUET_BINARY..." >&2; exit 2; }
W=$(mktemp -d /tmp/duet-ocsp-cpu.XXXXXX)
PIDS=""
cleanup() { for p in $PIDS; do kill "$p" 2>/dev/null || true; done; sleep 0.3; rm -rf "$W"; }
trap cleanup EXIT INT TERM
export DUET_CA_PASSPHRASE=bench-passphrase DUET_CA_KDF_ITERATIONS=2048
. "$ROOT/bench/common.sh"
say() { echo "ca_ocsp_cpu: $*" >&2; }
ticks() { set -- $(sed 's/^.*) //' /proc/"$1"/stat); echo $((${12} + ${13})); }
HZ=$(getconf CLK_TCK)
cd "$W"

# duet: a CA (the first binary's) and a leaf; openssl: a P-256 CA of its own and a leaf.
"$1" ca init --ca-dir ca --name "Bench Corp" --key-type p256 >/dev/null
mkdir out
"$1" cert issue leaf --profile server --san dns:leaf.bench --ca-dir ca --out out >/dev/null
"$1" ca roots --ca-dir ca > roots.pem
openssl ocsp -issuer ca/issuing.crt -cert out/leaf.crt -no_nonce -reqout duet-req.der >/dev/null
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout o-ca.key \
    -out o-ca.pem -subj "/CN=openssl bench CA" -days 30 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout o-leaf.key \
    -out o-leaf.csr -subj "/CN=leaf" 2>/dev/null
openssl x509 -req -in o-leaf.csr -CA o-ca.pem -CAkey o-ca.key -set_serial 0x1234abcd \
    -days 30 -out o-leaf.pem 2>/dev/null
printf 'V\t%s\t\t1234ABCD\tunknown\t/CN=leaf\n' "$(date -u -d '+30 days' +%y%m%d%H%M%SZ)" \
    > index.txt
openssl ocsp -issuer o-ca.pem -cert o-leaf.pem -no_nonce -reqout o-req.der >/dev/null

check() { # url req issuer cert cafile
    curl -s --max-time 10 --data-binary @"$2" -H 'Content-Type: application/ocsp-request' \
        "$1" -o check.resp
    openssl ocsp -respin check.resp -issuer "$3" -cert "$4" -CAfile "$5" -no_nonce 2>&1 |
        grep -q ': good' || { say "FAILED: $1 does not answer good"; exit 1; }
}
run() { # label pid url req -> one line "label us_per_answer rate"
    t0=$(ticks "$2")
    taskset -c 1 ab -q -k -c "$CONC" -n "$COUNT" -p "$4" -T application/ocsp-request "$3" \
        > ab.out 2>&1 || { say "$1: ab failed: $(tail -3 ab.out)"; exit 1; }
    t1=$(ticks "$2")
    done=$(sed -n 's/^Complete requests: *//p' ab.out)
    bad=$(sed -n 's/^Non-2xx responses: *//p' ab.out)
    [ "$done" = "$COUNT" ] && [ -z "$bad" ] || { say "$1: $done answers, non-2xx $bad"; exit 1; }
    echo "$1 $(( (t1 - t0) * 1000000 / HZ / COUNT )) $(sed -n 's/^Requests per second: *\([0-9.]*\).*/\1/p' ab.out)"
}

i=0
for d in "$@"; do
    i=$((i + 1))
    p=$(port); q=$(port)
    taskset -c 0 "$d" ca serve --ca-dir ca --listen 127.0.0.1:$q --http-listen 127.0.0.1:$p \
        --server-name 127.0.0.1 --log "$W/duet$i.log" &
    eval "D$i=$!; DP$i=$p"
    PIDS="$PIDS $!"
    sleep 2 # the first start issues the server certificate the others then use
done
i=0
for d in "$@"; do
    i=$((i + 1))
    eval "p=\$DP$i"
    check http://127.0.0.1:$p/ocsp duet-req.der ca/issuing.crt out/leaf.crt roots.pem
done
r=1
while [ "$r" -le "$ROUNDS" ]; do
    i=0
    for d in "$@"; do
        i=$((i + 1))
        eval "pid=\$D$i; p=\$DP$i"
        run "duet$i" "$pid" http://127.0.0.1:$p/ocsp duet-req.der
    done
    o=$(port)
    taskset -c 0 openssl ocsp -index index.txt -port "$o" -rsigner o-ca.pem -rkey o-ca.key \
        -CA o-ca.pem -nmin 60 -ignore_err >>"$W/openssl.log" 2>&1 &
    opid=$!
    PIDS="$PIDS $opid"
    sleep 1
    check http://127.0.0.1:$o/ o-req.der o-ca.pem o-leaf.pem o-ca.pem
    run openssl-ocsp "$opid" http://127.0.0.1:$o/ o-req.der
    kill "$opid" 2>/dev/null || true
    wait "$opid" 2>/dev/null || true
    say "round $r of $ROUNDS done"
    r=$((r + 1))
done | tee runs.txt
/usr/bin/python3 - "$@" <<'EOF'
import statistics, sys
rows = [l.split() for l in open("runs.txt")]
names = ["duet%d" % (i + 1) for i in range(len(sys.argv) - 1)] + ["openssl-ocsp"]
med = {}
for n in names:
    us = [int(r[1]) for r in rows if r[0] == n]
    rate = [float(r[2]) for r in rows if r[0] == n]
    med[n] = statistics.median(us)
    label = sys.argv[names.index(n) + 1] if n != "openssl-ocsp" else "openssl ocsp"
    print("%-14s %s: CPU us/answer median %g (each: %s); answers/s median %.0f"
          % (n, label, med[n], " ".join(map(str, us)), statistics.median(rate)))
for n in names[:-1]:
    print("openssl ocsp / %s CPU per answer: %.2fx" % (n, med["openssl-ocsp"] / med[n]))
EOF
