#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# duet demo, end to end on the embedded inventory (SQLite): a private CA,
# certificates for a server and two clients, the inventory, a revocation and
# its CRL, and what `duet cert verify` and `duet cert inspect` say about them.
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
show "$D" cert export --cert certs/alice.crt --key certs/alice.key --format p12 \
    --password-file p12.pass --out alice.p12
show "$D" cert inspect --password-file p12.pass alice.p12

bold "9. What expires within 45 days (exit 1 means: act)"
show "$D" cert expiring --ca-dir ca --within 45d

bold "Done. Files are in $OUT/"
