# SPDX-License-Identifier: Apache-2.0
# Shared by the bench/ scripts (sourced, with W set to the work directory and
# PIDS collecting what to stop): free ports and the trivial backend.

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
