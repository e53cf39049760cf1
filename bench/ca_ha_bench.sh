#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# The CA on one machine and beyond it, side by side in one run: issuance over
# HTTPS (POST /v1/enroll, one one-time token and one P-256 CSR each, driven by
# bench/ca_load.py as in bench/ca_bench.sh) by
#   lite   duet ca serve, inventory in SQLite, one node
#   pg1    duet ca serve, inventory in PostgreSQL, one node
#   pg2    two duet ca serve nodes on that same PostgreSQL inventory, the load
#          split evenly across them (half the workers on each)
#   hsm    duet ca serve on SQLite with the issuing key in a SoftHSM2 token
#   cfssl-sqlite, cfssl-pg
#          cfssl serve recording every certificate in its certdb, on SQLite and
#          on the same PostgreSQL server (another database)
# and OCSP answers (ab -k, POST) from the SQLite node and a PostgreSQL node,
# for the same kind of request without a nonce (a reused answer, after the
# node read the inventory's generation) and with one (signed afresh, the
# status read from the inventory).
#
# Nothing is pinned: the nodes, PostgreSQL and the load driver share the
# machine's cores, since the question is what a second node adds on the same
# hardware.  The configurations run in turn within each round, ROUNDS rounds,
# and the report gives medians and every round's value.  PostgreSQL runs with
# its defaults (fsync and synchronous_commit on), like SQLite's synchronous=FULL.
#
# Usage: bench/ca_ha_bench.sh [ENROLLMENTS] [OCSP_SECONDS] > results.md
#   ENROLLMENTS per run (default 300), OCSP_SECONDS per ab run (default 5),
#   ROUNDS=3, CONC=8 requests in flight, DUET=/path/to/duet;
#   DUET_BEFORE=/path/to/another/duet adds pg1 and pg2 with that binary (its
#   own two nodes on the same inventory), and its OCSP answers beside this
#   build's (ocsp-pgb), to compare two builds in one run;
#   ONLY="pg1 pg2 pg1b pg2b" runs only those (names above, and ocsp);
#   PG_DELAY_MS=1 puts bench/tcp_delay.py between PostgreSQL and its clients
#   (duet and cfssl), adding that much each way to every round trip, as a
#   database across a network would.
# Needs (run as root, PostgreSQL then runs as the postgres user, or as a user
# who may run initdb): build/duet, openssl, python3-cryptography, postgresql,
# softhsm2 and opensc (all installed by scripts/deps.sh), and cfssl
# (apt-get install golang-cfssl) and ab (apt-get install apache2-utils).
set -eu

N=${1:-300}
DUR=${2:-5}
ROUNDS=${ROUNDS:-3}
CONC=${CONC:-8}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DUET=${DUET:-$ROOT/build/duet}
PY=/usr/bin/python3
LOAD="$ROOT/bench/ca_load.py"
MODULE=/usr/lib/softhsm/libsofthsm2.so
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
PGU=${DUET_PG_USER:-postgres}

need() { # command package
    command -v "$1" >/dev/null 2>&1 || {
        echo "ca_ha_bench: $1 not found: apt-get install $2" >&2
        exit 1
    }
}
[ -x "$DUET" ] || { echo "ca_ha_bench: $DUET is not an executable (run ninja -C build)" >&2; exit 1; }
[ -n "$PGBIN" ] && [ -x "$PGBIN/initdb" ] ||
    { echo "ca_ha_bench: no /usr/lib/postgresql/*/bin/initdb: apt-get install postgresql" >&2; exit 1; }
[ -f "$MODULE" ] || { echo "ca_ha_bench: $MODULE missing: apt-get install softhsm2" >&2; exit 1; }
need cfssl golang-cfssl
need cfssljson golang-cfssl
need ab apache2-utils
need softhsm2-util softhsm2
need pkcs11-tool opensc
need openssl openssl
$PY -c 'import cryptography' 2>/dev/null || { echo "ca_ha_bench: apt-get install python3-cryptography" >&2; exit 1; }

W=$(mktemp -d /tmp/duet-ca-ha-bench.XXXXXX)
chmod 755 "$W"
PIDS=""
PG_STARTED=0
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u "$PGU" -- "$@"; else "$@"; fi; }
cleanup() {
    for p in $PIDS; do kill "$p" 2>/dev/null || true; done
    [ "$PG_STARTED" = 1 ] && as_pg "$PGBIN/pg_ctl" -D "$W/pg/data" -m immediate -w stop >/dev/null 2>&1
    sleep 0.3
    rm -rf "$W"
}
trap cleanup EXIT INT TERM

export DUET_CA_PASSPHRASE=bench-passphrase
export DUET_CA_KDF_ITERATIONS=2048 # only the set-up's keys: a server decrypts its keys once
cd "$W"
. "$ROOT/bench/common.sh"
say() { echo "ca_ha_bench: $*" >&2; }
fail() { echo "ca_ha_bench: FAILED: $*" >&2; exit 1; }
HZ=$(getconf CLK_TCK)
ticks() { # utime+stime (clock ticks) of processes, all their threads
    t=0
    for p in "$@"; do
        [ -r /proc/"$p"/stat ] || continue
        set -- $(sed 's/^.*) //' /proc/"$p"/stat)
        t=$((t + ${12} + ${13}))
    done
    echo $t
}
pg_pids() { echo "$PG_PM" $(pgrep -P "$PG_PM" || true); }
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

# ---- PostgreSQL: a cluster of its own on 127.0.0.1 ----
PGPORT=$(port)
mkdir pg
[ "$(id -u)" = 0 ] && chown "$PGU" pg
as_pg "$PGBIN/initdb" -D "$W/pg/data" -U postgres --auth=trust -E UTF8 >/dev/null ||
    fail "initdb"
cat >> pg/data/postgresql.conf <<EOF
listen_addresses = '127.0.0.1'
port = $PGPORT
unix_socket_directories = ''
EOF
as_pg "$PGBIN/pg_ctl" -D "$W/pg/data" -l "$W/pg/server.log" -w -t 60 start >/dev/null ||
    fail "pg_ctl start: $(tail -5 "$W/pg/server.log")"
PG_STARTED=1
PG_PM=$(head -1 pg/data/postmaster.pid)
psql_() { "$PGBIN/psql" -h 127.0.0.1 -p "$PGPORT" -U postgres -X -q -v ON_ERROR_STOP=1 "$@"; }
psql_ -c "CREATE DATABASE duet_bench" -c "CREATE DATABASE cfssl_bench"
PGTO=$PGPORT # the port PostgreSQL's clients use: the server's, or the delaying relay's
if [ -n "${PG_DELAY_MS:-}" ]; then
    PGTO=$(port)
    $PY "$ROOT/bench/tcp_delay.py" "$PGTO" "$PGPORT" "$PG_DELAY_MS" &
    PIDS="$PIDS $!"
    wait_port "$PGTO"
fi
PGURL="postgres://postgres@127.0.0.1:$PGTO/duet_bench"

# ---- the duet CAs: SQLite, PostgreSQL, SoftHSM ----
"$DUET" ca init --ca-dir lite --name "Bench Lite" --key-type p256 >/dev/null
"$DUET" ca init --ca-dir pgca --name "Bench PG" --key-type p256 --store "$PGURL" >/dev/null
mkdir tokens
printf 'directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\n' "$W" \
    > softhsm2.conf
export SOFTHSM2_CONF="$W/softhsm2.conf" DUET_PKCS11_PIN=246810
softhsm2-util --init-token --free --label duet-ca --pin 246810 --so-pin 13579111 >/dev/null
pkcs11-tool --module $MODULE --token-label duet-ca --login --pin 246810 --keypairgen \
    --key-type EC:prime256v1 --label issuing --id 01 >/dev/null 2>&1 || fail "pkcs11-tool"
"$DUET" ca init --ca-dir hsm --name "Bench HSM" --key-type p256 \
    --key-uri "pkcs11:token=duet-ca;object=issuing?module-path=$MODULE" >/dev/null
[ ! -e hsm/issuing.key ] || fail "an issuing key file next to the token's key"
for d in lite pgca hsm; do "$DUET" ca roots --ca-dir $d > $d.roots; done

# CSRs for every run, and one token per CSR from the CA of its configuration,
# made before the timed part (two `duet ca token` at a time; SoftHSM2's file
# store now and then shows a process no token while another one writes it:
# such a token is asked for again).
want() { [ -z "${ONLY:-}" ] && return 0; case " $ONLY " in *" $1 "*) return 0 ;; esac; return 1; }
CONFS=""
for c in lite pg1 pg2 hsm pg1b pg2b; do
    case $c in pg?b) [ -n "${DUET_BEFORE:-}" ] || continue ;; esac
    want $c && CONFS="$CONFS $c"
done
NCONF=$(echo $CONFS | wc -w)
TOTAL=$((N * ROUNDS * NCONF))
$PY "$LOAD" csrs "$TOTAL" csrs.jsonl
say "making $TOTAL enrollment tokens (duet ca token, one process each)"
k=0
for c in $CONFS; do
    case $c in lite) d=lite ;; pg*) d=pgca ;; hsm) d=hsm ;; esac
    r=1
    while [ $r -le "$ROUNDS" ]; do
        a=$((k * N + 1)); b=$(((k + 1) * N))
        sed -n "${a},${b}p" csrs.jsonl > csrs.$c.$r
        sed -n 's/.*"name": "\([^"]*\)".*/\1/p' csrs.$c.$r |
            xargs -P 2 -I NAME sh -c 'for try in 1 2 3; do
                    t=$("$0" ca token NAME --profile server --san dns:NAME.bench --ttl 4h \
                        --ca-dir "$1" 2>>tokens.err) && { echo "NAME $t"; exit 0; }
                done; echo "NAME FAILED"' "$DUET" "$d" > tokens.$c.$r
        grep -q FAILED tokens.$c.$r && fail "duet ca token ($c): $(grep -v "^token for" tokens.err | tail -3)"
        # xargs -P may reorder the lines: each token goes with its own name's CSR
        $PY - csrs.$c.$r tokens.$c.$r bodies.$c.$r <<'EOF'
import json, sys
csrs = {}
for line in open(sys.argv[1]):
    if line.strip():
        j = json.loads(line)
        csrs[j["name"]] = j["csr"]
with open(sys.argv[3], "w") as out:
    for line in open(sys.argv[2]):
        name, tok = line.split()
        out.write(json.dumps({"token": tok, "csr": csrs.pop(name)}) + "\n")
assert not csrs, "CSRs without a token: %d" % len(csrs)
EOF
        r=$((r + 1)); k=$((k + 1))
    done
done

# ---- the servers: every one started now, idle while the others are measured ----
serve() { # ca-dir label [binary]: a duet ca serve node; sets PORT_<label>, HPORT_<label>, PID_<label>
    p=$(port); h=$(port)
    "${3:-$DUET}" ca serve --ca-dir "$1" --listen 127.0.0.1:$p --http-listen 127.0.0.1:$h \
        --server-name 127.0.0.1 --log "$W/$2.log" 2>>"$W/$2.stderr" &
    eval "PORT_$2=$p HPORT_$2=$h PID_$2=$!"
    PIDS="$PIDS $!"
    wait_port $p
    wait_port $h
}
serve lite lite
serve pgca pga
serve pgca pgb
serve hsm hsm
if [ -n "${DUET_BEFORE:-}" ]; then
    serve pgca pgab "$DUET_BEFORE"
    serve pgca pgbb "$DUET_BEFORE"
fi

mkdir cf
cd cf
echo '{"CN": "Bench cfssl CA", "key": {"algo": "ecdsa", "size": 256}, "names": [{"O": "Bench cfssl"}]}' > ca-csr.json
cfssl gencert -initca ca-csr.json 2>/dev/null | cfssljson -bare ca
cat > config.json <<'EOF'
{"signing": {"default": {"expiry": "2160h", "usages": ["digital signature", "key encipherment", "server auth"]}}}
EOF
echo '{"CN": "127.0.0.1", "hosts": ["127.0.0.1"], "key": {"algo": "ecdsa", "size": 256}}' > srv.json
cfssl gencert -ca ca.pem -ca-key ca-key.pem -config config.json srv.json 2>/dev/null | cfssljson -bare srv
# cfssl's certdb schemas (certdb/sqlite and certdb/pg migrations of cfssl 1.2).
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
psql_ -d cfssl_bench -c "
CREATE TABLE certificates (serial_number bytea NOT NULL, authority_key_identifier bytea NOT NULL,
  ca_label bytea, status bytea NOT NULL, reason int, expiry timestamptz, revoked_at timestamptz,
  pem bytea NOT NULL, PRIMARY KEY(serial_number, authority_key_identifier));
CREATE TABLE ocsp_responses (serial_number bytea NOT NULL, authority_key_identifier bytea NOT NULL,
  body bytea NOT NULL, expiry timestamptz, PRIMARY KEY(serial_number, authority_key_identifier),
  FOREIGN KEY(serial_number, authority_key_identifier)
    REFERENCES certificates(serial_number, authority_key_identifier));"
echo '{"driver": "sqlite3", "data_source": "'"$W"'/cf/certs.db"}' > sqlite.json
echo '{"driver": "postgres", "data_source": "postgres://postgres@127.0.0.1:'"$PGTO"'/cfssl_bench?sslmode=disable"}' > pg.json
cd "$W"
$PY "$LOAD" cfssl-bodies csrs.jsonl cfssl-bodies
cfssl_serve() { # label db-config
    p=$(port)
    cfssl serve -address 127.0.0.1 -port $p -ca cf/ca.pem -ca-key cf/ca-key.pem \
        -config cf/config.json -tls-cert cf/srv.pem -tls-key cf/srv-key.pem -db-config "$2" \
        -loglevel 3 2>"$W/$1.log" &
    eval "PORT_$1=$p PID_$1=$!"
    PIDS="$PIDS $!"
    wait_port $p
}
cfssl_serve cfsqlite cf/sqlite.json
cfssl_serve cfpg cf/pg.json

# ---- issuance ----
issue() { # label pids... -- load arguments: one ca_load.py run; server CPU = those pids + PostgreSQL's
    label=$1; shift
    want "$label" || return 0
    pids=""
    while [ "$1" != -- ]; do pids="$pids $1"; shift; done
    shift
    t0=$(ticks $pids); g0=$(ticks $(pg_pids))
    j=$($PY "$LOAD" run --concurrency "$CONC" "$@") || fail "$label: $j"
    t1=$(ticks $pids); g1=$(ticks $(pg_pids))
    echo "$j" | $PY -c "
import json, sys
j = json.load(sys.stdin)
n = max(j['completed'], 1)
j.update(what='issue', server='$label', server_cpu_ms=round(($t1 - $t0) * 1000 / $HZ / n, 3),
         pg_cpu_ms=round(($g1 - $g0) * 1000 / $HZ / n, 3))
print(json.dumps(j))" >> results.jsonl
    say "$label: $(echo "$j" | field "['rate_per_s']")/s"
}
load() { echo "$(uptime | sed 's/.*load average: //')"; }
echo "load before: $(load)" > load.txt
r=1
while [ $r -le "$ROUNDS" ]; do
    say "issuance, round $r of $ROUNDS (load average $(load))"
    issue lite $PID_lite -- --url https://127.0.0.1:$PORT_lite/v1/enroll --cacert lite.roots \
        --kind duet --bodies bodies.lite.$r --out issued.lite.$r
    issue pg1 $PID_pga -- --url https://127.0.0.1:$PORT_pga/v1/enroll --cacert pgca.roots \
        --kind duet --bodies bodies.pg1.$r --out issued.pg1.$r
    issue pg2 $PID_pga $PID_pgb -- --url https://127.0.0.1:$PORT_pga/v1/enroll \
        --url https://127.0.0.1:$PORT_pgb/v1/enroll --cacert pgca.roots \
        --kind duet --bodies bodies.pg2.$r --out issued.pg2.$r
    if [ -n "${DUET_BEFORE:-}" ]; then
        issue pg1b $PID_pgab -- --url https://127.0.0.1:$PORT_pgab/v1/enroll --cacert pgca.roots \
            --kind duet --bodies bodies.pg1b.$r --out issued.pg1b.$r
        issue pg2b $PID_pgab $PID_pgbb -- --url https://127.0.0.1:$PORT_pgab/v1/enroll \
            --url https://127.0.0.1:$PORT_pgbb/v1/enroll --cacert pgca.roots \
            --kind duet --bodies bodies.pg2b.$r --out issued.pg2b.$r
    fi
    issue hsm $PID_hsm -- --url https://127.0.0.1:$PORT_hsm/v1/enroll --cacert hsm.roots \
        --kind duet --bodies bodies.hsm.$r --out issued.hsm.$r
    issue cfssl-sqlite $PID_cfsqlite -- --url https://127.0.0.1:$PORT_cfsqlite/api/v1/cfssl/sign \
        --cacert cf/ca.pem --kind cfssl --bodies cfssl-bodies --count "$N" --reuse
    issue cfssl-pg $PID_cfpg -- --url https://127.0.0.1:$PORT_cfpg/api/v1/cfssl/sign \
        --cacert cf/ca.pem --kind cfssl --bodies cfssl-bodies --count "$N" --reuse \
        --out cfssl-issued.$r
    r=$((r + 1))
done
echo "load after issuance: $(load)" >> load.txt

# Every certificate duet answered is in its inventory; cfssl's certdbs hold what they signed.
for d in lite pgca hsm; do "$DUET" cert list --ca-dir $d --format json > inv.$d.json; done
$PY - "$ROUNDS" "$N" <<'EOF' || fail "a certificate is missing from a database"
import glob, json, sqlite3, sys
from cryptography import x509
rounds, n = int(sys.argv[1]), int(sys.argv[2])
for conf, d in (("lite", "lite"), ("pg1", "pgca"), ("pg2", "pgca"), ("hsm", "hsm"),
                ("pg1b", "pgca"), ("pg2b", "pgca")):
    if not glob.glob("issued.%s.*" % conf):
        continue
    inv = {r["serial"] for r in json.load(open("inv.%s.json" % d))}
    seen = 0
    for f in glob.glob("issued.%s.*" % conf):
        for p in open(f).read().split("-----END CERTIFICATE-----"):
            if "BEGIN" not in p:
                continue
            c = x509.load_pem_x509_certificate((p + "-----END CERTIFICATE-----\n").encode())
            h = "%X" % c.serial_number
            h = ("0" + h) if len(h) % 2 else h
            assert ":".join(h[i:i + 2] for i in range(0, len(h), 2)) in inv, (conf, h)
            seen += 1
    assert seen == rounds * n, (conf, seen, rounds * n)
print("ca_ha_bench: every duet certificate is in its inventory", file=sys.stderr)
EOF
if want cfssl-sqlite; then
    cfsq_rows=$($PY -c "import sqlite3; print(sqlite3.connect('cf/certs.db').execute(
        'SELECT count(*) FROM certificates').fetchone()[0])")
    [ "$cfsq_rows" -eq $((ROUNDS * N)) ] || fail "cfssl's SQLite certdb holds $cfsq_rows rows"
fi
if want cfssl-pg; then
    cfpg_rows=$(psql_ -d cfssl_bench -A -t -c "SELECT count(*) FROM certificates")
    [ "$cfpg_rows" -eq $((ROUNDS * N)) ] || fail "cfssl's PostgreSQL certdb holds $cfpg_rows rows"
fi

# ---- OCSP: the SQLite node against a PostgreSQL node ----
if want ocsp && want lite && want pg1; then
ocsp_req() { # label ca-dir: a request for the first certificate issued by that configuration
    awk '/BEGIN/ {n++} n == 1' issued.$1.1 > $1.leaf
    openssl ocsp -issuer $2/issuing.crt -cert $1.leaf -no_nonce -reqout $1-plain.der >/dev/null
    openssl ocsp -issuer $2/issuing.crt -cert $1.leaf -reqout $1-nonce.der >/dev/null
}
ocsp_req lite lite
ocsp_req pg1 pgca
check_ocsp() { # label url req.der issuer cert roots
    curl -s --max-time 10 --data-binary @"$3" -H 'Content-Type: application/ocsp-request' "$2" \
        -o "$1.resp" || fail "$1: no answer from $2"
    out=$(openssl ocsp -respin "$1.resp" -issuer "$4" -cert "$5" -CAfile "$6" 2>&1) || true
    case $out in
    *"Response verify OK"*"$5: good"*) ;;
    *) fail "$1: the answer to the bench's request does not verify: $out" ;;
    esac
}
check_ocsp lite http://127.0.0.1:$HPORT_lite/ocsp lite-plain.der lite/issuing.crt lite.leaf lite.roots
check_ocsp pg http://127.0.0.1:$HPORT_pga/ocsp pg1-plain.der pgca/issuing.crt pg1.leaf pgca.roots
gen_reads() { # https-port roots: the node's duet_ca_inventory_generation_reads_total (-1: none)
    curl -s --max-time 10 --cacert "$2" "https://127.0.0.1:$1/metrics" |
        awk '/^duet_ca_inventory_generation_reads_total / {v = $2} END {print (v == "" ? -1 : v)}'
}
ocsp() { # label pid url req.der https-port roots
    t0=$(ticks "$2"); g0=$(ticks $(pg_pids)); r0=$(gen_reads "$5" "$6")
    ab -q -k -c "$CONC" -t "$DUR" -n 100000000 -p "$4" -T application/ocsp-request \
        -e "$1.csv" "$3" > "$1.ab" 2>&1 || fail "$1: ab: $(tail -3 "$1.ab")"
    t1=$(ticks "$2"); g1=$(ticks $(pg_pids)); r1=$(gen_reads "$5" "$6")
    $PY - "$1" "$t0" "$t1" "$g0" "$g1" "$HZ" "$r0" "$r1" >> results.jsonl <<'EOF'
import json, re, sys
label = sys.argv[1]
t0, t1, g0, g1, hz, r0, r1 = map(int, sys.argv[2:9])
ab = open(label + ".ab").read()
num = lambda pat: float(re.search(pat, ab).group(1)) if re.search(pat, ab) else 0.0
pct = dict(l.strip().split(",") for l in open(label + ".csv") if l[0].isdigit())
done = num(r"Complete requests:\s+(\d+)")
print(json.dumps({
    "what": "ocsp", "server": label, "completed": int(done),
    "rate_per_s": num(r"Requests per second:\s+([\d.]+)"),
    "latency_ms": {"p50": float(pct["50"]), "p99": float(pct["99"])},
    "errors": int(num(r"Connect: (\d+)") + num(r"Receive: (\d+)") + num(r"Exceptions: (\d+)")
                  + num(r"Non-2xx responses:\s+(\d+)")),
    "server_cpu_us": round((t1 - t0) * 1e6 / hz / max(done, 1), 1),
    "pg_cpu_us": round((g1 - g0) * 1e6 / hz / max(done, 1), 1),
    # inventory generation reads per answer (None: a build without the counter)
    "gen_reads": round((r1 - r0) / max(done, 1), 3) if r0 >= 0 and r1 >= 0 else None}))
EOF
    say "$1: $(tail -1 results.jsonl | field "['rate_per_s']")/s"
}
r=1
while [ $r -le "$ROUNDS" ]; do
    say "OCSP, round $r of $ROUNDS (load average $(load))"
    ocsp ocsp-lite $PID_lite http://127.0.0.1:$HPORT_lite/ocsp lite-plain.der $PORT_lite lite.roots
    ocsp ocsp-pg $PID_pga http://127.0.0.1:$HPORT_pga/ocsp pg1-plain.der $PORT_pga pgca.roots
    if [ -n "${DUET_BEFORE:-}" ]; then
        ocsp ocsp-pgb $PID_pgab http://127.0.0.1:$HPORT_pgab/ocsp pg1-plain.der $PORT_pgab pgca.roots
    fi
    ocsp ocsp-nonce-lite $PID_lite http://127.0.0.1:$HPORT_lite/ocsp lite-nonce.der $PORT_lite lite.roots
    ocsp ocsp-nonce-pg $PID_pga http://127.0.0.1:$HPORT_pga/ocsp pg1-nonce.der $PORT_pga pgca.roots
    if [ -n "${DUET_BEFORE:-}" ]; then
        ocsp ocsp-nonce-pgb $PID_pgab http://127.0.0.1:$HPORT_pgab/ocsp pg1-nonce.der $PORT_pgab pgca.roots
    fi
    r=$((r + 1))
done
echo "load after OCSP: $(load)" >> load.txt
fi

# ---- the report ----
$PY - "$N" "$DUR" "$ROUNDS" "$CONC" <<EOF
import json, statistics, sys
n, dur, rounds, conc = sys.argv[1:5]
res = [json.loads(l) for l in open("results.jsonl")]
med = statistics.median
def rows(what, server):
    return [r for r in res if r["what"] == what and r["server"] == server]
def errs(r):
    return r["errors"] if isinstance(r["errors"], int) else sum(r["errors"].values())
def summary(what, server, cpu):
    rs = rows(what, server)
    return {"rate": med([r["rate_per_s"] for r in rs]),
            "p50": med([r["latency_ms"]["p50"] for r in rs]),
            "p99": med([r["latency_ms"]["p99"] for r in rs]),
            "cpu": med([r[cpu] for r in rs]),
            "pgcpu": med([r.get("pg_cpu_ms", r.get("pg_cpu_us", 0)) for r in rs]),
            "rates": [round(r["rate_per_s"]) for r in rs],
            "p99s": [r["latency_ms"]["p99"] for r in rs],
            "errors": sum(errs(r) for r in rs),
            "driver": max(r.get("driver_cpu_share", 0) for r in rs)}
print("### Issuance over HTTPS (POST /v1/enroll; P-256; %s in flight; %s per run; median of %s rounds)" % (conc, n, rounds))
print()
print("| configuration | certificates/s | each round | p50 / p99 ms | node CPU ms per certificate | PostgreSQL CPU ms per certificate | errors |")
print("|---|---:|---|---:|---:|---:|---:|")
iss, oc = {}, {}
for s, what in (("lite", "duet ca serve, SQLite, one node"),
                ("pg1", "duet ca serve, PostgreSQL, one node"),
                ("pg2", "duet ca serve, PostgreSQL, two nodes (load split)"),
                ("pg1b", "DUET_BEFORE's duet ca serve, PostgreSQL, one node"),
                ("pg2b", "DUET_BEFORE's duet ca serve, PostgreSQL, two nodes (load split)"),
                ("hsm", "duet ca serve, SQLite, issuing key in SoftHSM2"),
                ("cfssl-sqlite", "cfssl serve, SQLite certdb"),
                ("cfssl-pg", "cfssl serve, PostgreSQL certdb")):
    if not rows("issue", s):
        continue
    x = iss[s] = summary("issue", s, "server_cpu_ms")
    print("| %s | %.0f | %s | %.1f / %.1f | %.2f | %.2f | %d |" % (
        what, x["rate"], " ".join(map(str, x["rates"])), x["p50"], x["p99"], x["cpu"],
        x["pgcpu"], x["errors"]))
print()
if any(r["what"] == "ocsp" for r in res):
    print("### OCSP answers (ab -k, POST, %s in flight, %s s per run, median of %s rounds)" % (conc, dur, rounds))
    print()
    print("| node | request | answers/s | each round | p50 / p99 ms | each round's p99 | node CPU µs per answer | PostgreSQL CPU µs per answer | generation reads per answer | errors |")
    print("|---|---|---:|---|---:|---|---:|---:|---:|---:|")
    oc = {}
    for s, node, req in (("ocsp-lite", "SQLite", "no nonce (answer reused)"),
                         ("ocsp-pg", "PostgreSQL", "no nonce (answer reused)"),
                         ("ocsp-pgb", "PostgreSQL, DUET_BEFORE", "no nonce (answer reused)"),
                         ("ocsp-nonce-lite", "SQLite", "nonce (signed afresh)"),
                         ("ocsp-nonce-pg", "PostgreSQL", "nonce (signed afresh)"),
                         ("ocsp-nonce-pgb", "PostgreSQL, DUET_BEFORE", "nonce (signed afresh)")):
        if not rows("ocsp", s):
            continue
        x = oc[s] = summary("ocsp", s, "server_cpu_us")
        gr = [r["gen_reads"] for r in rows("ocsp", s) if r.get("gen_reads") is not None]
        print("| %s | %s | %.0f | %s | %.2f / %.2f | %s | %.0f | %.0f | %s | %d |" % (
            node, req, x["rate"], " ".join(map(str, x["rates"])), x["p50"], x["p99"],
            " ".join("%g" % v for v in x["p99s"]), x["cpu"], x["pgcpu"],
            "%.3f" % med(gr) if gr else "-", x["errors"]))
    print()
print("### Ratios (medians)")
print()
if "pg2" in iss and "pg1" in iss:
    print("- two PostgreSQL nodes / one: %.2f (goal > 1)" % (iss["pg2"]["rate"] / iss["pg1"]["rate"]))
if "pg2b" in iss:
    print("- with DUET_BEFORE: two nodes / one %.2f; this build / DUET_BEFORE: one node %.2f, "
          "two nodes %.2f" % (iss["pg2b"]["rate"] / iss["pg1b"]["rate"],
                              iss["pg1"]["rate"] / iss["pg1b"]["rate"],
                              iss["pg2"]["rate"] / iss["pg2b"]["rate"]))
if all(k in iss for k in ("lite", "pg1", "hsm", "cfssl-sqlite", "cfssl-pg")):
    print("- PostgreSQL one node / SQLite: %.2f; SoftHSM / key file (both SQLite): %.2f" % (
        iss["pg1"]["rate"] / iss["lite"]["rate"], iss["hsm"]["rate"] / iss["lite"]["rate"]))
    print("- duet / cfssl, SQLite: %.2f; PostgreSQL (one duet node): %.2f" % (
        iss["lite"]["rate"] / iss["cfssl-sqlite"]["rate"],
        iss["pg1"]["rate"] / iss["cfssl-pg"]["rate"]))
if "ocsp-pg" in oc:
    print("- OCSP p99, PostgreSQL / SQLite: %.2f without a nonce, %.2f with one (goal <= 2)" % (
        oc["ocsp-pg"]["p99"] / oc["ocsp-lite"]["p99"],
        oc["ocsp-nonce-pg"]["p99"] / oc["ocsp-nonce-lite"]["p99"]))
if "ocsp-pgb" in oc:
    print("- the same with DUET_BEFORE's PostgreSQL node: %.2f without a nonce, %.2f with one" % (
        oc["ocsp-pgb"]["p99"] / oc["ocsp-lite"]["p99"],
        oc["ocsp-nonce-pgb"]["p99"] / oc["ocsp-nonce-lite"]["p99"]))
print()
print("PostgreSQL reached through bench/tcp_delay.py, %s ms added each way" % "${PG_DELAY_MS:-}"
      if "${PG_DELAY_MS:-}" else "PostgreSQL reached directly on loopback")
print()
print("$(cat load.txt | tr '\n' ';' | sed 's/;$//; s/;/; /g')")
print()
print("date: $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(openssl version | cut -d' ' -f1-2), PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}'), cfssl $(cfssl version | sed -n 's/^Version: //p'), softhsm2 $(softhsm2-util --version)")
EOF
