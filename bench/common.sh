# SPDX-License-Identifier: Apache-2.0
# Shared by the bench/ scripts (sourced, with W set to the work directory and
# PIDS collecting what to stop): the work directory, free ports, the trivial
# backend, and the mTLS front-ends (duet proxy, nginx) that compare.sh and
# h2_compare.sh measure side by side.

# bench_begin NAME: a fresh work directory W (/tmp/NAME.XXXXXX), made the current one and
# removed on exit after every process in PIDS is stopped; the open-file limit raised to its hard
# limit (thousands of connections); the passphrase the set-up's CA keys are written under.
bench_begin() {
    W=$(mktemp -d "/tmp/$1.XXXXXX")
    PIDS=""
    trap bench_cleanup EXIT INT TERM
    ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
    export DUET_CA_PASSPHRASE=bench-passphrase
    cd "$W"
}
bench_cleanup() { for p in $PIDS; do kill "$p" 2>/dev/null || true; done; sleep 0.3; rm -rf "$W"; }

# bench_pki: in the current directory, a duet CA "Bench Corp" (ca/), a server
# certificate for localhost and a client certificate (c/), and roots.pem.
bench_pki() {
    "$DUET" ca init --ca-dir ca --name "Bench Corp" >/dev/null
    mkdir -p c
    "$DUET" cert issue server --profile server --san dns:localhost --san ip:127.0.0.1 \
        --ca-dir ca --out c >/dev/null
    "$DUET" cert issue client --profile client --ca-dir ca --out c >/dev/null
    "$DUET" ca roots --ca-dir ca > roots.pem
}

# bench_rogue: a second CA "Rogue Corp" (rogue/) and a client certificate it signed
# (c/rogue.crt, c/rogue.key): the client every server measured must refuse.
bench_rogue() {
    "$DUET" ca init --ca-dir rogue --name "Rogue Corp" >/dev/null
    "$DUET" cert issue rogue --profile client --ca-dir rogue --out c >/dev/null
}

# field EXPR: a value of the JSON on stdin, e.g. field "['completed']".
field() { /usr/bin/python3 -c "import json,sys; d=json.load(sys.stdin); print(d$1)"; }

# A TCP port on 127.0.0.1 that nothing listens on now.
port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# start_backend PORT: nginx answering "ok" on CPU 1, keep-alive for ever.
start_backend() {
    mkdir -p "$W/back/logs"
    cat > "$W/back/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $W/back/nginx.pid;
error_log $W/back/logs/error.log;
events { worker_connections 4096; }
http {
    access_log off;
    server { listen 127.0.0.1:$1; keepalive_requests 1000000; location / { return 200 "ok\n"; } }
}
CONF
    taskset -c 1 nginx -p "$W/back" -c "$W/back/nginx.conf" &
    PIDS="$PIDS $!"
    sleep 0.5
}

# ticks PID: utime+stime (clock ticks, HZ of them per second) of a process and its children.
HZ=$(getconf CLK_TCK)
ticks() {
    total=0
    for p in $(pgrep -P "$1") "$1"; do
        set -- $(sed 's/^.*) //' /proc/"$p"/stat 2>/dev/null || echo)
        [ $# -ge 13 ] && total=$((total + ${12} + ${13}))
    done
    echo "$total"
}

# wait_start LOG: wait (60 s at most) for duet proxy's start event in LOG; without one, show
# proxy.err and exit 1.
wait_start() {
    n=0
    until grep -q '"event":"start"' "$1" 2>/dev/null; do
        n=$((n + 1))
        [ $n -gt 1200 ] && { echo "proxy did not start" >&2; cat proxy.err >&2; exit 1; }
        sleep 0.05
    done
}

# The mTLS front-ends below listen on 127.0.0.1:$PORT with bench_pki's certificates, require a
# client certificate of its CA, run one worker on CPU 0 and forward to the backend on $BACK.
# Each is started in the background: $! is its process.

# start_duet_front [ARGS...]: duet proxy, with limits that stay out of a benchmark's way and
# ARGS added to its command line.
start_duet_front() {
    taskset -c 0 "$DUET" proxy --listen 127.0.0.1:$PORT --target 127.0.0.1:$BACK \
        --cert c/server.crt --key c/server.key --cacert roots.pem --allow any \
        --workers 1 --log "$W/duet.log" --max-conns 100000 --failed-handshake-burst 1000000 "$@" &
}

# start_nginx_front KEEPALIVE LISTEN_PARAMS [DIRECTIVE]: nginx, TLS 1.3 only, keeping up to
# KEEPALIVE idle connections to the backend; LISTEN_PARAMS follow the address ("ssl",
# "ssl http2"); DIRECTIVE (e.g. "http2_max_concurrent_streams 100;") goes in its server block.
start_nginx_front() {
    mkdir -p "$W/ng/logs"
    cat > "$W/ng/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $W/ng/nginx.pid;
error_log $W/ng/logs/error.log;
events { worker_connections 65536; }
http {
    access_log $W/ng/logs/access.log;
    upstream back { server 127.0.0.1:$BACK; keepalive $1; }
    server {
        listen 127.0.0.1:$PORT $2;
        ssl_certificate $W/c/server.crt;
        ssl_certificate_key $W/c/server.key;
        ssl_client_certificate $W/roots.pem;
        ssl_verify_client on;
        ssl_verify_depth 2;
        ssl_protocols TLSv1.3;
        ${3:-}
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
}

# stop_server: stop the front-end SPID and wait for it to be gone.
stop_server() { kill "$SPID" 2>/dev/null || true; wait "$SPID" 2>/dev/null || true; sleep 0.5; }

# load MODE [ARGS...]: the JSON of one duet bench run (--mode MODE, one thread on CPU 1) against
# the front-end; ARGS add the client certificate, concurrency, duration...
load() {
    taskset -c 1 "$DUET" bench --target 127.0.0.1:$PORT --server-name localhost --cacert roots.pem \
        --threads 1 --format json --mode "$@" || true
}

# refuses MODE [ARGS...]: true when the front-end lets no request of duet bench --mode MODE
# complete, neither from a client without a certificate nor from bench_rogue's.
refuses() {
    none=$(load "$@" --concurrency 1 --duration 1s --warmup 0s | field "['completed']" 2>/dev/null || echo "?")
    rogue=$(load "$@" --cert c/rogue.crt --key c/rogue.key --concurrency 1 --duration 1s \
        --warmup 0s | field "['completed']" 2>/dev/null || echo "?")
    [ "$none" = 0 ] && [ "$rogue" = 0 ]
}
