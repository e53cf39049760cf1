#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Issue N certificates (default 10,000) into one fresh inventory with `duet cert issue`, one
# process per certificate as an operator's script would, then time the inventory queries
# over them.  Prints certificates per second and the time of `duet cert list --expiring 30d`
# (and of `cert list` and `cert expiring` over everything, for comparison).  Not run by the
# tests; the numbers go to docs/performance.md.
#
#   bench/issue_bench.sh                 10,000 certificates, build/duet, one issuer at a time
#   N=2000 JOBS=2 bench/issue_bench.sh   fewer certificates, two issuers contending for the lock
#   DUET=/path/to/duet KEEP=1 ...        another binary; keep the work directory
#
# One certificate in ten is a client certificate with a 10-day TTL, so `--expiring 30d`
# selects about N/10 rows out of N; the others are server certificates (90 days).
set -eu

cd "$(dirname "$0")/.."
DUET=${DUET:-$(pwd)/build/duet}
N=${N:-10000}
JOBS=${JOBS:-1}
KEEP=${KEEP:-0}

[ -x "$DUET" ] || { echo "issue_bench: $DUET is not an executable (run ninja -C build)" >&2; exit 1; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/duet-issue-bench.XXXXXX")
cleanup() { if [ "$KEEP" = 1 ]; then echo "work directory kept: $WORK"; else rm -rf "$WORK"; fi; }
trap cleanup EXIT INT TERM

export DUET_CA_PASSPHRASE="issue-bench passphrase"
mkdir "$WORK/out"
"$DUET" ca init --ca-dir "$WORK/ca" --name "Bench Org" >/dev/null

now_ns() { date +%s%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", (b - a) / 1e9 }'; }

# One line per certificate: the arguments of one `duet cert issue`.
i=0
while [ "$i" -lt "$N" ]; do
    if [ $((i % 10)) -eq 0 ]; then
        printf 'bench-%05d client --ttl 240h --owner team-%d\n' "$i" $((i % 7))
    else
        printf 'bench-%05d server --owner team-%d\n' "$i" $((i % 7))
    fi
    i=$((i + 1))
done >"$WORK/jobs"

echo "issuing $N certificates with $JOBS concurrent issuer(s) ($DUET)"
export W="$WORK"
t0=$(now_ns)
# shellcheck disable=SC2016
xargs -P "$JOBS" -L 1 sh -c '
    name=$1 profile=$2; shift 2
    "$0" cert issue "$name" --profile "$profile" --ca-dir "$W/ca" --out "$W/out" "$@" \
        >/dev/null || { echo "issue_bench: cert issue $name failed" >&2; exit 255; }
' "$DUET" <"$WORK/jobs" || true
t1=$(now_ns)

issued=$(find "$WORK/out" -name '*.crt' | wc -l)
if [ "$issued" -ne "$N" ]; then
    echo "issue_bench: $issued of $N certificates were issued" >&2
    exit 1
fi
elapsed=$(secs "$t0" "$t1")
rate=$(awk -v n="$N" -v s="$elapsed" 'BEGIN { printf "%.0f", n / s }')
echo "issued:                       $N certificates in $elapsed s = $rate certificates/second"

time_cmd() {  # label, then the duet arguments; prints the wall time and the row count
    label=$1; shift
    a=$(now_ns)
    rc=0
    "$DUET" "$@" >"$WORK/query.out" 2>&1 || rc=$?
    b=$(now_ns)
    rows=$(grep -c 'serial' "$WORK/query.out" || true)
    printf '%-29s %s s (exit %d, %s serials printed)\n' "$label" "$(secs "$a" "$b")" "$rc" "$rows"
}
time_cmd "cert list --expiring 30d:" cert list --ca-dir "$WORK/ca" --expiring 30d --format json
time_cmd "cert list (all):" cert list --ca-dir "$WORK/ca" --format json
time_cmd "cert expiring --within 30d:" cert expiring --ca-dir "$WORK/ca" --within 30d \
    --format prometheus
size=$(du -k "$WORK/ca/inventory.db" | cut -f1)
echo "inventory.db:                 ${size} KiB"
