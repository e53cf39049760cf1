#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# duet demo: makes a small PKI with the openssl CLI (root, issuing
# intermediate, a server, a client, an expired client and a revoked client,
# and CRLs), then shows what `duet cert inspect` and `duet cert verify` say.
set -eu

DUET=${DUET:-./build/duet}
OUT=${DEMO_OUT:-demo-out}

DEMO_WHO=none; export DEMO_WHO
rm -rf "$OUT"
mkdir -p "$OUT/ca"
cd "$OUT"
D=$(cd .. && cd "$(dirname "$DUET")" && pwd)/$(basename "$DUET")

step() { printf '\n\033[1m== %s\033[0m\n' "$*" 2>/dev/null || printf '\n== %s\n' "$*"; }
show() { printf '$ %s\n' "$*"; "$@" || printf '(exit %d)\n' "$?"; }

cat > ca/openssl.cnf <<'CNF'
[ ca ]
default_ca = demo
[ demo ]
database = ca/index.txt
new_certs_dir = ca
serial = ca/serial
crlnumber = ca/crlnumber
default_md = sha256
default_crl_days = 7
policy = any
unique_subject = no
[ any ]
commonName = supplied
[ v3_root ]
basicConstraints = critical,CA:true
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[ v3_int ]
basicConstraints = critical,CA:true,pathlen:0
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
[ v3_server ]
basicConstraints = critical,CA:false
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:app.demo.internal,IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
[ v3_client ]
basicConstraints = critical,CA:false
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
subjectAltName = URI:spiffe://demo.internal/$ENV::DEMO_WHO
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
CNF
touch ca/index.txt
echo 1000 > ca/crlnumber

key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; chmod 600 "$1"; }

step "A small PKI made with the openssl CLI"
key root.key
openssl req -x509 -new -key root.key -subj "/O=Demo/CN=Demo Root CA" -days 3650 \
    -config ca/openssl.cnf -extensions v3_root -out root.crt
key int.key
openssl req -new -key int.key -subj "/O=Demo/CN=Demo Issuing CA" -out int.csr
openssl x509 -req -in int.csr -CA root.crt -CAkey root.key -CAcreateserial -days 1825 \
    -extfile ca/openssl.cnf -extensions v3_int -out int.crt 2>/dev/null
leaf() { # name extensions days
    key "$1.key"
    openssl req -new -key "$1.key" -subj "/O=Demo/CN=$1" -out "$1.csr"
    DEMO_WHO=$1 openssl x509 -req -in "$1.csr" -CA int.crt -CAkey int.key -CAcreateserial \
        -days "$3" -extfile ca/openssl.cnf -extensions "$2" -out "$1.crt" 2>/dev/null
    cat "$1.crt" int.crt > "$1.chain.pem"
}
expired_leaf() { # name extensions: valid for January 2026 only
    key "$1.key"
    openssl req -new -key "$1.key" -subj "/O=Demo/CN=$1" -out "$1.csr"
    openssl rand -hex 16 > ca/serial
    DEMO_WHO=$1 openssl ca -batch -notext -config ca/openssl.cnf -cert int.crt -keyfile int.key \
        -startdate 20260101000000Z -enddate 20260201000000Z -extensions "$2" \
        -in "$1.csr" -out "$1.crt" 2>/dev/null
    cat "$1.crt" int.crt > "$1.chain.pem"
}
leaf app v3_server 90
leaf alice v3_client 30
leaf bob v3_client 30
expired_leaf carol v3_client
# Revoke bob: record his certificate in the CA database, then issue the CRLs.
openssl ca -config ca/openssl.cnf -cert int.crt -keyfile int.key -revoke bob.crt \
    -crl_reason keyCompromise 2>/dev/null
openssl ca -config ca/openssl.cnf -cert int.crt -keyfile int.key -gencrl -out int.crl 2>/dev/null
: > ca/index.txt
openssl ca -config ca/openssl.cnf -cert root.crt -keyfile root.key -gencrl -out root.crl 2>/dev/null
echo "made root.crt, int.crt, app (server), alice, bob (revoked), carol (expired), int.crl, root.crl"

step "Inspect a certificate chain"
show "$D" cert inspect alice.chain.pem

step "Inspect the CRL"
show "$D" cert inspect int.crl

step "Verify: the server certificate for its name"
show "$D" cert verify --trusted root.crt --purpose server --name app.demo.internal app.chain.pem

step "Verify: alice as a client, with revocation checked"
show "$D" cert verify --trusted root.crt --purpose client --crl int.crl --crl root.crl alice.chain.pem

step "Verify: the server certificate for the wrong name"
show "$D" cert verify --trusted root.crt --purpose server --name db.demo.internal app.chain.pem

step "Verify: a client certificate used as a server"
show "$D" cert verify --trusted root.crt --purpose server alice.chain.pem

step "Verify: bob was revoked"
show "$D" cert verify --trusted root.crt --purpose client --crl int.crl --crl root.crl bob.chain.pem

step "Verify: carol expired"
show "$D" cert verify --trusted root.crt --purpose client carol.chain.pem

step "Verify: the leaf alone, without its intermediate"
show "$D" cert verify --trusted root.crt --purpose client alice.crt

step "Done. Files are in $OUT/"
