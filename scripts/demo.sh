#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# duet demo, end to end on the embedded inventory (SQLite): a private CA,
# certificates for a server and two clients, the inventory, a revocation and
# its CRL, what `duet cert verify` and `duet cert inspect` say about them, then
# `duet proxy` in front of a small service: alice gets in, bob (revoked) and a
# client without a certificate do not, and the audit log says why.
set -eu

DUET=${DUET:-./build/duet}
OUT=${DEMO_OUT:-demo-out}
D=$(cd "$(dirname "$DUET")" && pwd)/$(basename "$DUET")

rm -rf "$OUT"
mkdir -p "$OUT/certs"
cd "$OUT"

bold() { if [ -t 1 ]; then printf '\n\033[1m== %s\033[0m\n' "$*"; else printf '\n== %s\n' "$*"; fi; }
show() { printf '$ %s\n' "$*"; "$@" || printf '(exit %d)\n' "$?"; }

# The CA passphrase encrypts the CA keys at rest; here it is a demo file.
umask 077
printf 'demo-passphrase-change-me\n' > ca.pass
umask 022

bold "1. A private CA: a root and an issuing intermediate, profiles, an inventory"
show "$D" ca init --ca-dir ca --name "Demo Corp" --passphrase-file ca.pass
show cat ca/ca.yaml

bold "2. Certificates: a server, two clients (SPIFFE IDs in the trust domain demo-corp)"
show "$D" cert issue app --profile server --san dns:app.demo.internal --san ip:127.0.0.1 \
    --owner web-team --location prod-eu --ca-dir ca --out certs --passphrase-file ca.pass
show "$D" cert issue alice --profile client --owner hr --location laptop-17 \
    --ca-dir ca --out certs --passphrase-file ca.pass
show "$D" cert issue bob --profile client --owner payments --location laptop-42 \
    --ca-dir ca --out certs --passphrase-file ca.pass

bold "3. The policy decides, not the requester: a name outside the profile is refused"
show "$D" cert issue mallory --profile client --san uri:spiffe://evil/mallory \
    --ca-dir ca --out certs --passphrase-file ca.pass

bold "4. The inventory: every certificate, its owner, where it lives, when it expires"
show "$D" cert list --ca-dir ca

bold "5. Bob's laptop is lost: revoke, publish the CRL"
show "$D" cert revoke certs/bob.crt --reason keyCompromise --ca-dir ca
show "$D" crl generate --ca-dir ca --out crl.pem --passphrase-file ca.pass
show "$D" cert inspect crl.pem

bold "6. Verify, the way the proxy will on every handshake"
"$D" ca roots --ca-dir ca > roots.pem
show "$D" cert verify --trusted roots.pem --purpose server --name app.demo.internal certs/app.crt
show "$D" cert verify --trusted roots.pem --purpose client --crl crl.pem certs/alice.crt
show "$D" cert verify --trusted roots.pem --purpose client --crl crl.pem certs/bob.crt
show "$D" cert verify --trusted roots.pem --purpose server --name db.demo.internal certs/app.crt
show "$D" cert verify --trusted roots.pem --purpose server certs/alice.crt

bold "7. Inspect alice's certificate chain"
show "$D" cert inspect certs/alice.crt

bold "8. PKCS#12 for a browser or a Java keystore"
printf 'alice-p12-password\n' > p12.pass
chmod 600 p12.pass # export refuses a password file others can read
show "$D" cert export --cert certs/alice.crt --key certs/alice.key --format p12 \
    --password-file p12.pass --out alice.p12
show "$D" cert inspect --password-file p12.pass alice.p12

bold "9. What expires within 45 days (exit 1 means: act)"
show "$D" cert expiring --ca-dir ca --within 45d

bold "10. The proxy: mTLS in front of a service that never heard of it"
port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
APP=$(port); GW=$(port); ADM=$(port)
# The service: answers with the identity headers the proxy sent it.
cat > app.py <<'PY'
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        who = self.headers.get("X-Forwarded-Client-Cert", "(none)")
        body = ("hello from the app; the proxy says the client is:\n  " + who + "\n").encode()
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a): pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
PY
/usr/bin/python3 app.py "$APP" &
APP_PID=$!
"$D" proxy --listen 127.0.0.1:$GW --target 127.0.0.1:$APP --cert certs/app.crt --key certs/app.key \
    --cacert roots.pem --crl crl.pem --allow 'uri:spiffe://demo-corp/*' --admin 127.0.0.1:$ADM \
    --log audit.jsonl --workers 1 &
GW_PID=$!
trap 'kill $APP_PID $GW_PID 2>/dev/null || true' EXIT
for _ in 1 2 3 4 5 6 7 8 9 10; do
    grep -q '"event":"start"' audit.jsonl 2>/dev/null && break
    sleep 0.2
done
echo "proxy on 127.0.0.1:$GW -> app on 127.0.0.1:$APP (client certificates verified, bob's revoked by crl.pem)"
printf '\n-- alice, with her certificate:\n'
show curl -s --cacert roots.pem --cert certs/alice.crt --key certs/alice.key \
    --resolve app.demo.internal:$GW:127.0.0.1 https://app.demo.internal:$GW/hello
printf '\n-- bob, whose certificate was revoked:\n'
show curl -sS --cacert roots.pem --cert certs/bob.crt --key certs/bob.key \
    --resolve app.demo.internal:$GW:127.0.0.1 https://app.demo.internal:$GW/hello
printf '\n-- someone without a certificate:\n'
show curl -sS --cacert roots.pem --resolve app.demo.internal:$GW:127.0.0.1 https://app.demo.internal:$GW/hello
sleep 0.3

bold "11. The audit log: every handshake and decision, with the reason"
/usr/bin/python3 - audit.jsonl <<'PY'
import json, sys
for line in open(sys.argv[1]):
    e = json.loads(line)
    if e["event"] == "handshake":
        who = (e.get("identity") or {}).get("name", "-")
        print("%s handshake %-6s %-28s %s" % (e["time"], e["result"], who, e.get("reason", "")))
    elif e["event"] == "authz":
        print("%s authz     %-6s %-28s rule %s, %s %s" % (e["time"], e["decision"], e["identity"], e["rule"], e["method"], e["path"]))
PY

bold "12. Metrics on the admin listener"
curl -s http://127.0.0.1:$ADM/metrics | grep -E '^duet_handshakes_total|^duet_authz_decisions_total' || true

bold "13. The inventory at the end"
show "$D" cert list --ca-dir ca

bold "Done. Files are in $OUT/ (audit log: $OUT/audit.jsonl)"
