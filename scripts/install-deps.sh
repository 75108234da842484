#!/bin/sh
# Install the Debian packages Tern needs, only those missing.
#   scripts/install-deps.sh         what building and running ternd needs
#   scripts/install-deps.sh --test  plus what `make test` needs
set -eu

RUN_PKGS="gcc make pkg-config meson ninja-build openssl libuv1-dev libssl-dev libexpat1-dev \
libyaml-dev libsqlite3-dev libidn-dev libidn2-dev"
TEST_PKGS="libcmocka-dev python3 python3-slixmpp clang libclang-rt-14-dev clang-format"

pkgs="$RUN_PKGS"
if [ "${1:-}" = "--test" ]; then
    pkgs="$pkgs $TEST_PKGS"
fi

missing=""
for p in $pkgs; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done
[ -z "$missing" ] && exit 0

echo "installing Debian packages:$missing"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo"
    else
        echo "install-deps: need root (or sudo) to install:$missing" >&2
        exit 1
    fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing
