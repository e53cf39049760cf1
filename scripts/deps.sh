#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Install the Debian packages duet's build, tests and demo need.  Idempotent:
# packages already installed are skipped, and `apt-get update` runs only when
# something must be installed.  Works as root without a terminal (CI), or
# through sudo when run by another user.
set -eu

PACKAGES="
build-essential
pkg-config
meson
ninja-build
libssl-dev
openssl
ca-certificates
libjansson-dev
libcmocka-dev
libsqlite3-dev
libpq-dev
libp11-dev
libp11-kit-dev
softhsm2
opensc
postgresql
libyaml-dev
libevent-dev
libhttp-parser-dev
libnghttp2-dev
nghttp2-client
python3
python3-pytest
python3-cryptography
python3-grpcio
man-db
curl
nginx
gnutls-bin
libnss3-tools
openjdk-17-jre-headless
systemd
prometheus
"

missing=""
for p in $PACKAGES; do
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    case "$status" in
    *"install ok installed"*) ;;
    *) missing="$missing $p" ;;
    esac
done

if [ -z "$missing" ]; then
    echo "deps: all packages present"
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo"
    else
        echo "deps: missing packages:$missing; run as root or install sudo" >&2
        exit 1
    fi
fi

echo "deps: installing:$missing"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
echo "deps: done"
