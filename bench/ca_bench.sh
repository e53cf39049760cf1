#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# The CA as a service, side by side in one run: issuance over HTTPS and OCSP
# answers, duet (`duet ca serve`) against cfssl (`cfssl serve`, `cfssl
# ocspserve`) and `openssl ocsp`, all with ECDSA P-256 CAs, each server pinned
# to CPU 0 and the load (bench/ca_load.py, ab) to CPU 1.
#
# Issuance: enrollments per second with p50/p99, the same driver and
# concurrency for all: duet's POST /v1/enroll (a one-time token, made before
# the timed part, and a CSR each), cfssl's POST /api/v1/cfssl/sign with the
# same CSRs, once without a certificate database (nothing recorded) and once
# with its SQLite certdb (-db-config: every certificate recorded, as duet
# records every certificate in its inventory before it leaves the CA).  The
# server's CPU per certificate and the driver's CPU share are printed too.
# After the runs, every certificate duet answered is checked to be in its
# inventory, and cfssl's certdb to hold as many rows as were signed.
#
# OCSP: answers per second with p50/p99 from ab (-k, POST, the same DER
# request without a nonce to all): duet ca serve (answers from the inventory,
# a signed answer reused while the inventory and the signer are unchanged, for
# at most --ocsp-cache-age, 60 s), cfssl ocspserve (answers pre-signed with `cfssl
# ocspsign`, served from a file), openssl ocsp (signs when asked, one
# connection at a time; its default, not -multi).  Each responder's answer to
# the very request ab sends is verified with `openssl ocsp -respin` first; a
# responder whose answer does not verify as `good` fails the bench.
# `duet ocsp respond` (one process per answer, not a server) is timed too.
#
# Freshness: a certificate of each is revoked and its responder asked at once.
#
# Usage: bench/ca_bench.sh [ENROLLMENTS] [OCSP_SECONDS] > results.md
#   ENROLLMENTS per duet run (default 600; cfssl without a database gets 3x as
#   many, it is that much faster), OCSP_SECONDS per ab run (default 5);
#   ROUNDS=3 rounds (medians are reported, every round's values too);
#   CONC=8 requests in flight for everything; DUET=/path/to/duet.
# Needs: build/duet, openssl, curl, python3-cryptography, and, not installed
# by scripts/deps.sh: cfssl (apt-get install golang-cfssl) and ab
# (apt-get install apache2-utils).
set -eu

N=${1:-600}
DUR=${2:-5}
ROUNDS=${ROUNDS:-3}
CONC=${CONC:-8}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DUET=${DUET:-$ROOT/build/duet}
PY=/usr/bin/python3
LOAD="$ROOT/bench/ca_load.py"

need() { # command package
    command -v "$1" >/dev/null 2>&1 || {
        echo "ca_bench: $1 not found: apt-get install $2" >&2
        exit 1
    }
}
[ -x "$DUET" ] || { echo "ca_bench: $DUET is not an executable (run ninja -C build)" >&2; exit 1; }
need cfssl golang-cfssl
need cfssljson golang-cfssl
need ab apache2-utils
need openssl openssl
need curl curl
$PY -c 'import cryptography' 2>/dev/null || { echo "ca_bench: apt-get install python3-cryptography" >&2; exit 1; }

W=$(mktemp -d /tmp/duet-ca-bench.XXXXXX)
PIDS=""
cleanup() { for p in $PIDS; do kill "$p" 2>/dev/null || true; done; sleep 0.3; rm -rf "$W"; }
trap cleanup EXIT INT TERM

export DUET_CA_PASSPHRASE=bench-passphrase
# Only the set-up's keys: the server decrypts its keys once, at start.
export DUET_CA_KDF_ITERATIONS=2048
cd "$W"
. "$ROOT/bench/common.sh"
say() { echo "ca_bench: $*" >&2; }
fail() { echo "ca_bench: FAILED: $*" >&2; exit 1; }

ticks() { # utime+stime (clock ticks) of a process, all its threads
    set -- $(sed 's/^.*) //' /proc/"$1"/stat)
    echo $((${12} + ${13}))
}
HZ=$(getconf CLK_TCK)

wait_port() { # port: until something accepts on 127.0.0.1:port (20 s)
    $PY - "$1" <<'EOF' || fail "nothing listens on port $1"
import socket, sys, time
deadline = time.time() + 20
while time.time() < deadline:
    try:
        socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=0.5).close()
        sys.exit(0)
    except OSError:
        time.sleep(0.05)
sys.exit(1)
EOF
}

# ---- duet: the CA, CSRs and one token per enrollment, made before the timed part ----
TOTAL=$((N * ROUNDS))
"$DUET" ca init --ca-dir ca --name "Bench Corp" --key-type p256 >/dev/null
"$DUET" ca roots --ca-dir ca > roots.pem
$PY "$LOAD" csrs "$TOTAL" csrs.jsonl
say "making $TOTAL enrollment tokens (duet ca token, one process each)"
sed -n 's/.*"name": "\([^"]*\)".*/\1/p' csrs.jsonl | while read -r n; do
    "$DUET" ca token "$n" --profile server --san "dns:$n.bench" --ttl 4h --ca-dir ca 2>/dev/null ||
        fail "duet ca token $n"
done > tokens.txt
r=1
while [ $r -le "$ROUNDS" ]; do
    a=$(((r - 1) * N + 1)); b=$((r * N))
    sed -n "${a},${b}p" csrs.jsonl > csrs.$r
    sed -n "${a},${b}p" tokens.txt > tokens.$r
    $PY "$LOAD" duet-bodies csrs.$r tokens.$r duet-bodies.$r
    r=$((r + 1))
done
DP=$(port); DH=$(port)
taskset -c 0 "$DUET" ca serve --ca-dir ca --listen 127.0.0.1:$DP --http-listen 127.0.0.1:$DH \
    --server-name 127.0.0.1 --log "$W/duet-serve.log" &
DUET_PID=$!
PIDS="$PIDS $DUET_PID"
wait_port $DP
wait_port $DH

# ---- cfssl: a P-256 CA of its own, a server certificate, an empty certdb ----
mkdir cf
cd cf
echo '{"CN": "Bench cfssl CA", "key": {"algo": "ecdsa", "size": 256}, "names": [{"O": "Bench cfssl"}]}' > ca-csr.json
cfssl gencert -initca ca-csr.json 2>/dev/null | cfssljson -bare ca
cat > config.json <<'EOF'
{"signing": {"default": {"expiry": "2160h", "usages": ["digital signature", "key encipherment", "server auth"]}}}
EOF
echo '{"CN": "127.0.0.1", "hosts": ["127.0.0.1"], "key": {"algo": "ecdsa", "size": 256}}' > srv.json
cfssl gencert -ca ca.pem -ca-key ca-key.pem -config config.json srv.json 2>/dev/null | cfssljson -bare srv
# cfssl's SQLite certdb schema (certdb/sqlite/migrations of cfssl 1.2).
$PY - <<'EOF'
import sqlite3
db = sqlite3.connect("certs.db")
db.executescript("""
CREATE TABLE certificates (serial_number blob NOT NULL, authority_key_identifier blob NOT NULL,
  ca_label blob, status blob NOT NULL, reason int, expiry timestamp, revoked_at timestamp,
  pem blob NOT NULL, PRIMARY KEY(serial_number, authority_key_identifier));
CREATE TABLE ocsp_responses (serial_number blob NOT NULL, authority_key_identifier blob NOT NULL,
  body blob NOT NULL, expiry timestamp, PRIMARY KEY(serial_number, authority_key_identifier),
  FOREIGN KEY(serial_number, authority_key_identifier)
    REFERENCES certificates(serial_number, authority_key_identifier));
""")
db.commit()
EOF
echo '{"driver": "sqlite3", "data_source": "'"$W"'/cf/certs.db"}' > db.json
cd "$W"
$PY "$LOAD" cfssl-bodies csrs.jsonl cfssl-bodies
CF1=$(port); CF2=$(port)
taskset -c 0 cfssl serve -address 127.0.0.1 -port $CF1 -ca cf/ca.pem -ca-key cf/ca-key.pem \
    -config cf/config.json -tls-cert cf/srv.pem -tls-key cf/srv-key.pem -loglevel 3 \
    2>"$W/cfssl-serve.log" &
CF1_PID=$!
taskset -c 0 cfssl serve -address 127.0.0.1 -port $CF2 -ca cf/ca.pem -ca-key cf/ca-key.pem \
    -config cf/config.json -tls-cert cf/srv.pem -tls-key cf/srv-key.pem -db-config cf/db.json \
    -loglevel 3 2>"$W/cfssl-db-serve.log" &
CF2_PID=$!
PIDS="$PIDS $CF1_PID $CF2_PID"
wait_port $CF1
wait_port $CF2

# ---- issuance ----
issue() { # label pid url cacert kind bodies count [--reuse] [--out F]
    label=$1 pid=$2 url=$3 ca=$4 kind=$5 bodies=$6 count=$7
    shift 7
    t0=$(ticks "$pid")
    j=$(taskset -c 1 $PY "$LOAD" run --url "$url" --cacert "$ca" --bodies "$bodies" \
        --kind "$kind" --count "$count" --concurrency "$CONC" "$@") ||
        fail "$label: $j"
    t1=$(ticks "$pid")
    echo "$j" | $PY -c "
import json, sys
j = json.load(sys.stdin)
j.update(what='issue', server='$label', server_cpu_ms=round(($t1 - $t0) * 1000 / $HZ / max(j['completed'], 1), 3))
print(json.dumps(j))" >> results.jsonl
    say "$label: $(echo "$j" | field "['rate_per_s']")/s"
}
CFN=$((3 * N))
r=1
while [ $r -le "$ROUNDS" ]; do
    say "issuance, round $r of $ROUNDS"
    issue duet $DUET_PID https://127.0.0.1:$DP/v1/enroll roots.pem duet duet-bodies.$r $N --out duet-issued.$r
    issue cfssl $CF1_PID https://127.0.0.1:$CF1/api/v1/cfssl/sign cf/ca.pem cfssl cfssl-bodies $CFN --reuse
    issue cfssl-certdb $CF2_PID https://127.0.0.1:$CF2/api/v1/cfssl/sign cf/ca.pem cfssl cfssl-bodies $N --reuse --out cfssl-issued.$r
    r=$((r + 1))
done
# Every certificate duet answered is in its inventory; cfssl's certdb holds what it signed.
"$DUET" cert list --ca-dir ca --format json > inventory.json
$PY - "$ROUNDS" "$N" <<'EOF' || fail "a certificate is missing from a database"
import json, sys
from cryptography import x509
rounds, n = int(sys.argv[1]), int(sys.argv[2])
inv = {r["serial"] for r in json.load(open("inventory.json"))}
seen = 0
for r in range(1, rounds + 1):
    pems = open("duet-issued.%d" % r).read().split("-----END CERTIFICATE-----")
    for p in pems:
        if "BEGIN" not in p:
            continue
        c = x509.load_pem_x509_certificate((p + "-----END CERTIFICATE-----\n").encode())
        h = "%X" % c.serial_number
        h = ("0" + h) if len(h) % 2 else h
        s = ":".join(h[i:i + 2] for i in range(0, len(h), 2))
        assert s in inv, "duet answered %s, which is not in its inventory" % s
        seen += 1
assert seen == rounds * n, (seen, rounds * n)
import sqlite3
rows = sqlite3.connect("cf/certs.db").execute("SELECT count(*) FROM certificates").fetchone()[0]
assert rows == rounds * n, ("cfssl certdb rows", rows, rounds * n)
print("ca_bench: %d duet certificates all in the inventory; cfssl's certdb holds %d rows"
      % (seen, rows), file=sys.stderr)
EOF

# ---- OCSP responders ----
# duet: a certificate it issued; cfssl and openssl: one cfssl signed (and recorded).
awk '/BEGIN/ {n++} n == 1' duet-issued.1 > duet-leaf.pem
awk '/BEGIN/ {n++} n == 1' cfssl-issued.1 > cfssl-leaf.pem
openssl ocsp -issuer ca/issuing.crt -cert duet-leaf.pem -no_nonce -reqout duet-req.der >/dev/null
openssl ocsp -issuer cf/ca.pem -cert cfssl-leaf.pem -no_nonce -reqout cfssl-req.der >/dev/null
# cfssl: answers pre-signed (ocspsign) into the file ocspserve loads at start.
# Its answers live as long as duet's (--ocsp-validity 1h); cfssl rounds thisUpdate down to the hour.
cfssl ocspsign -ca cf/ca.pem -responder cf/ca.pem -responder-key cf/ca-key.pem \
    -cert cfssl-leaf.pem -status good -interval 1h 2>/dev/null | field "['ocspResponse']" \
    > cfssl-responses
[ -s cfssl-responses ] || fail "cfssl ocspsign signed nothing"
# openssl ocsp: an index.txt with the cfssl certificate, valid.
serial=$(openssl x509 -in cfssl-leaf.pem -noout -serial | cut -d= -f2)
enddate=$(date -u -d "$(openssl x509 -in cfssl-leaf.pem -noout -enddate | cut -d= -f2)" +%y%m%d%H%M%SZ)
printf 'V\t%s\t\t%s\tunknown\t/CN=h00000\n' "$enddate" "$serial" > index.txt
echo "unique_subject = no" > index.txt.attr
CO=$(port); OO=$(port)
taskset -c 0 cfssl ocspserve -address 127.0.0.1 -port $CO -responses cfssl-responses \
    -loglevel 3 2>"$W/ocspserve.log" &
CO_PID=$!
PIDS="$PIDS $CO_PID"
wait_port $CO
# openssl ocsp serves one connection at a time, and one that closes without a request
# (a bare connect() probe, or ab's last connections when its time is up) leaves it
# waiting for ever: it is started afresh before each use, and not probed.
OO_PID=""
start_openssl_ocsp() {
    [ -n "$OO_PID" ] && { kill "$OO_PID" 2>/dev/null || true; wait "$OO_PID" 2>/dev/null || true; }
    OO=$(port)
    taskset -c 0 openssl ocsp -index index.txt -port $OO -rsigner cf/ca.pem -rkey cf/ca-key.pem \
        -CA cf/ca.pem -nmin 60 -ignore_err >>"$W/openssl-ocsp.log" 2>&1 &
    OO_PID=$!
    PIDS="$PIDS $OO_PID"
    sleep 1
}
start_openssl_ocsp

check_ocsp() { # label url req.der issuer cert cafile: the answer to req.der must verify and say good
    curl -s --max-time 10 --data-binary @"$3" -H 'Content-Type: application/ocsp-request' "$2" -o "$1.resp" ||
        fail "$1: no answer from $2"
    out=$(openssl ocsp -respin "$1.resp" -issuer "$4" -cert "$5" -CAfile "$6" -no_nonce 2>&1) || true
    case $out in
    *"Response verify OK"*"$5: good"*) say "$1: the answer verifies and says good" ;;
    *) fail "$1: the answer to the bench's request does not verify: $out" ;;
    esac
    out=$(openssl ocsp -issuer "$4" -cert "$5" -url "$2" -CAfile "$6" -no_nonce 2>&1) || true
    case $out in
    *"Response verify OK"*"$5: good"*) ;;
    *) fail "$1: openssl ocsp -url refuses its answer: $out" ;;
    esac
}
check_ocsp duet http://127.0.0.1:$DH/ocsp duet-req.der ca/issuing.crt duet-leaf.pem roots.pem
check_ocsp cfssl-ocspserve http://127.0.0.1:$CO/ cfssl-req.der cf/ca.pem cfssl-leaf.pem cf/ca.pem
check_ocsp openssl-ocsp http://127.0.0.1:$OO/ cfssl-req.der cf/ca.pem cfssl-leaf.pem cf/ca.pem

ocsp() { # label pid url req.der
    t0=$(ticks "$2")
    taskset -c 1 ab -q -k -c "$CONC" -t "$DUR" -n 100000000 -p "$4" -T application/ocsp-request \
        -e "$1.csv" "$3" > "$1.ab" 2>&1 || fail "$1: ab: $(tail -3 "$1.ab")"
    t1=$(ticks "$2")
    $PY - "$1" "$t0" "$t1" "$HZ" >> results.jsonl <<'EOF'
import json, re, sys
label, t0, t1, hz = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
ab = open(label + ".ab").read()
num = lambda pat: float(re.search(pat, ab).group(1)) if re.search(pat, ab) else 0.0
pct = dict(l.strip().split(",") for l in open(label + ".csv") if l[0].isdigit())
done = num(r"Complete requests:\s+(\d+)")
print(json.dumps({
    "what": "ocsp", "server": label, "completed": int(done),
    "rate_per_s": num(r"Requests per second:\s+([\d.]+)"),
    "latency_ms": {"p50": float(pct["50"]), "p99": float(pct["99"])},
    # A length differing from the first answer is no error: each fresh signature differs.
    "errors": int(num(r"Connect: (\d+)") + num(r"Receive: (\d+)") + num(r"Exceptions: (\d+)")
                  + num(r"Non-2xx responses:\s+(\d+)")),
    "keepalive": int(num(r"Keep-Alive requests:\s+(\d+)")),
    "server_cpu_us": round((t1 - t0) * 1e6 / hz / max(done, 1), 1)}))
EOF
    say "$1: $(tail -1 results.jsonl | field "['rate_per_s']")/s"
}
r=1
while [ $r -le "$ROUNDS" ]; do
    say "OCSP, round $r of $ROUNDS"
    ocsp duet $DUET_PID http://127.0.0.1:$DH/ocsp duet-req.der
    ocsp cfssl-ocspserve $CO_PID http://127.0.0.1:$CO/ cfssl-req.der
    start_openssl_ocsp
    check_ocsp openssl-ocsp http://127.0.0.1:$OO/ cfssl-req.der cf/ca.pem cfssl-leaf.pem cf/ca.pem
    ocsp openssl-ocsp $OO_PID http://127.0.0.1:$OO/ cfssl-req.der
    r=$((r + 1))
done
# duet ocsp respond: one process per answer (opens the CA, decrypts the signer's key).
t0=$($PY -c 'import time; print(time.time())')
i=0
while [ $i -lt 50 ]; do
    taskset -c 0 "$DUET" ocsp respond --ca-dir ca --request duet-req.der --out one.der >/dev/null
    i=$((i + 1))
done
RESPOND=$($PY -c "import time; print(round(50 / (time.time() - $t0), 1))")

# ---- freshness: revoke, then ask at once ----
status_of() { # url req.der issuer cert cafile: good / revoked / ...
    rm -f st.resp
    curl -s --max-time 10 --data-binary @"$2" -H 'Content-Type: application/ocsp-request' "$1" \
        -o st.resp || { echo "no answer in 10 s"; return 0; }
    openssl ocsp -respin st.resp -issuer "$3" -cert "$4" -CAfile "$5" -no_nonce 2>/dev/null |
        sed -n "s|^$4: \([a-z]*\).*|\1|p"
}
# duet: a host enrolls, revokes its own certificate over the API, and OCSP is asked at once.
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout fresh.key \
    -subj /CN=fresh -out fresh.csr 2>/dev/null
tok=$("$DUET" ca token fresh --profile server --san dns:fresh.bench --ca-dir ca 2>/dev/null)
$PY -c "import json,sys; print(json.dumps({'token': sys.argv[1], 'csr': open('fresh.csr').read()}))" \
    "$tok" > fresh.json
curl -s --cacert roots.pem -H 'Content-Type: application/json' --data-binary @fresh.json \
    https://127.0.0.1:$DP/v1/enroll | field "['certificate']" > fresh.crt
openssl ocsp -issuer ca/issuing.crt -cert fresh.crt -no_nonce -reqout fresh-req.der >/dev/null
D_BEFORE=$(status_of http://127.0.0.1:$DH/ocsp fresh-req.der ca/issuing.crt fresh.crt roots.pem)
fserial=$(openssl x509 -in fresh.crt -noout -serial | cut -d= -f2 | sed 's/../&:/g; s/:$//')
curl -s --cacert roots.pem --cert fresh.crt --key fresh.key -H 'Content-Type: application/json' \
    -d "{\"serial\": \"$fserial\", \"reason\": \"keyCompromise\"}" \
    https://127.0.0.1:$DP/v1/revoke > revoke.json
D_AFTER=$(status_of http://127.0.0.1:$DH/ocsp fresh-req.der ca/issuing.crt fresh.crt roots.pem)
# cfssl: the certificate revoked in its certdb; ocspserve answers from the file it loaded.
# `cfssl revoke` wants the AKI, which cfssl 1.2's signer records empty (though the
# certificate carries one); then the row is updated as cfssl revoke would.
aki=$($PY -c "import sqlite3; print(sqlite3.connect('cf/certs.db').execute(
    'SELECT authority_key_identifier FROM certificates LIMIT 1').fetchone()[0])")
dserial=$($PY -c "print(int('$serial', 16))")
if [ -n "$aki" ] && cfssl revoke -db-config cf/db.json -serial "$dserial" -aki "$aki" \
    -reason keyCompromise 2>/dev/null; then
    C_HOW="cfssl revoke"
else
    $PY -c "import sqlite3; db = sqlite3.connect('cf/certs.db'); db.execute(
        \"UPDATE certificates SET status = 'revoked', reason = 1, revoked_at = datetime('now') \"
        'WHERE serial_number = ?', ('$dserial',)); db.commit()"
    C_HOW="the certdb row set revoked (cfssl revoke refuses an empty AKI)"
fi
C_AFTER=$(status_of http://127.0.0.1:$CO/ cfssl-req.der cf/ca.pem cfssl-leaf.pem cf/ca.pem)
C_DB=$($PY -c "import sqlite3; print(sqlite3.connect('cf/certs.db').execute(
    'SELECT status FROM certificates WHERE serial_number = ?', ('$dserial',)).fetchone()[0])")
# openssl ocsp: started afresh with the certificate valid, then its index line marked
# revoked (as `openssl ca -revoke` writes it).
start_openssl_ocsp
O_BEFORE=$(status_of http://127.0.0.1:$OO/ cfssl-req.der cf/ca.pem cfssl-leaf.pem cf/ca.pem)
sleep 1 # the index's modification time has a one-second resolution
printf 'R\t%s\t%s,keyCompromise\t%s\tunknown\t/CN=h00000\n' "$enddate" \
    "$(date -u +%y%m%d%H%M%SZ)" "$serial" > index.txt
O_AFTER=$(status_of http://127.0.0.1:$OO/ cfssl-req.der cf/ca.pem cfssl-leaf.pem cf/ca.pem)
sleep 5
O_LATER=$(status_of http://127.0.0.1:$OO/ cfssl-req.der cf/ca.pem cfssl-leaf.pem cf/ca.pem)
C_LATER=$(status_of http://127.0.0.1:$CO/ cfssl-req.der cf/ca.pem cfssl-leaf.pem cf/ca.pem)

# ---- a client that connects and sends nothing: do the others still get answers? ----
idle_then_ask() { # url req.der: "answered" or "no answer in 3 s" while one connection idles
    $PY -c "
import socket, sys, time
s = socket.create_connection(('127.0.0.1', int(sys.argv[1])))
time.sleep(5)" "$(echo "$1" | sed 's|http://127.0.0.1:\([0-9]*\).*|\1|')" &
    idler=$!
    sleep 0.5
    if curl -s --max-time 3 --data-binary @"$2" -H 'Content-Type: application/ocsp-request' \
        "$1" -o idle.resp && [ -s idle.resp ]; then echo answered; else echo "no answer in 3 s"; fi
    wait $idler
}
D_IDLE=$(idle_then_ask http://127.0.0.1:$DH/ocsp duet-req.der)
C_IDLE=$(idle_then_ask http://127.0.0.1:$CO/ cfssl-req.der)
# Last: openssl ocsp may not serve again after it (one connection at a time).
O_IDLE=$(idle_then_ask http://127.0.0.1:$OO/ cfssl-req.der)

# ---- the report ----
$PY - "$N" "$CFN" "$DUR" "$ROUNDS" "$CONC" "$RESPOND" <<EOF
import json, statistics, sys
n, cfn, dur, rounds, conc, respond = sys.argv[1:7]
res = [json.loads(l) for l in open("results.jsonl")]
med = lambda xs: statistics.median(xs)
def rows(what, server):
    return [r for r in res if r["what"] == what and r["server"] == server]
def summary(what, server, cpu):
    rs = rows(what, server)
    return {"rate": med([r["rate_per_s"] for r in rs]),
            "p50": med([r["latency_ms"]["p50"] for r in rs]),
            "p99": med([r["latency_ms"]["p99"] for r in rs]),
            "cpu": med([r[cpu] for r in rs]),
            "rates": [round(r["rate_per_s"]) for r in rs],
            "errors": sum(r["errors"] if isinstance(r["errors"], int) else sum(r["errors"].values())
                          for r in rs),
            "driver": max(r.get("driver_cpu_share", 0) for r in rs)}
print("### Issuance over HTTPS (P-256, %s in flight, median of %s rounds)" % (conc, rounds))
print()
print("| server | records each certificate | certificates/s | each round | p50 / p99 ms | server CPU ms per certificate | errors | driver CPU share (max) |")
print("|---|---|---:|---|---:|---:|---:|---:|")
iss = {}
for s, rec in (("duet", "yes, inventory (SQLite WAL, synchronous=FULL), before the answer"),
               ("cfssl", "no (no -db-config)"),
               ("cfssl-certdb", "yes, certdb (SQLite, rollback journal)")):
    x = iss[s] = summary("issue", s, "server_cpu_ms")
    print("| %s | %s | %.0f | %s | %.2f / %.2f | %.2f | %d | %.2f |" % (
        s, rec, x["rate"], " ".join(map(str, x["rates"])), x["p50"], x["p99"], x["cpu"],
        x["errors"], x["driver"]))
print()
print("Requests per run: duet and cfssl-certdb %s, cfssl %s." % (n, cfn))
print()
print("### OCSP answers (ab -k, POST, %s in flight, %s s per run, median of %s rounds)" % (conc, dur, rounds))
print()
print("| responder | answers | answers/s | each round | p50 / p99 ms | server CPU µs per answer | errors | kept alive |")
print("|---|---|---:|---|---:|---:|---:|---:|")
oc = {}
for s, how in (("duet", "from the inventory; a signed answer reused while nothing changed, 60 s at most"),
               ("cfssl-ocspserve", "pre-signed (cfssl ocspsign), from a file loaded at start"),
               ("openssl-ocsp", "signed when asked, from index.txt; one connection at a time")):
    x = oc[s] = summary("ocsp", s, "server_cpu_us")
    ka = med([r["keepalive"] for r in rows("ocsp", s)])
    print("| %s | %s | %.0f | %s | %.2f / %.2f | %.0f | %d | %s |" % (
        s, how, x["rate"], " ".join(map(str, x["rates"])), x["p50"], x["p99"], x["cpu"],
        x["errors"], "yes" if ka else "no"))
print()
print("duet ocsp respond, one process per answer (not a server): %s answers/s." % respond)
print()
print("### Ratios (medians)")
print()
r1 = iss["duet"]["rate"] / iss["cfssl-certdb"]["rate"]
r2 = iss["duet"]["rate"] / iss["cfssl"]["rate"]
r3 = oc["duet"]["rate"] / oc["openssl-ocsp"]["rate"]
r4 = oc["duet"]["rate"] / oc["cfssl-ocspserve"]["rate"]
print("- issuance: duet / cfssl with certdb %.2f, duet / cfssl without a database %.2f (goal >= 1)" % (r1, r2))
print("- OCSP: duet / openssl ocsp %.2f (goal >= 5), duet / cfssl ocspserve (pre-signed) %.2f" % (r3, r4))
print()
print("### Freshness: revoked, then asked at once")
print()
print("| responder | how it was revoked | before | right after | 5 s later |")
print("|---|---|---|---|---|")
print("| duet ca serve | POST /v1/revoke by the holder | $D_BEFORE | $D_AFTER | |")
print("| cfssl ocspserve | $C_HOW (status now $C_DB) | good | $C_AFTER | $C_LATER |")
print("| openssl ocsp | its index.txt line rewritten R, as openssl ca -revoke does | $O_BEFORE | $O_AFTER | $O_LATER |")
print()
print("### Another client asks while one connection is open and silent (5 s)")
print()
print("| duet ca serve | cfssl ocspserve | openssl ocsp |")
print("|---|---|---|")
print("| $D_IDLE | $C_IDLE | $O_IDLE |")
print()
print("date: $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(openssl version | cut -d' ' -f1-2), cfssl $(cfssl version | sed -n 's/^Version: //p'), $(ab -V | sed -n 's/.*Version \([^ ]*\).*/ab \1/p')")
EOF
