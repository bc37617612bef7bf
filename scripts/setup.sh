#!/usr/bin/env bash
# Installs what the build and tests need on a fresh Debian machine, and nothing that is
# already there: a C compiler, make, binutils (nm, objdump, readelf), valgrind, python3, and
# the rustfmt and clippy components of the Rust toolchain; for the install checks
# (scripts/test-install.sh) pkg-config, shellcheck, systemd-analyze and busybox; tshark for
# the tests that decode `mipc capture` files with packaging/wireshark/mipc.lua.
set -euo pipefail

missing=()
need() { command -v "$1" >/dev/null 2>&1 || missing+=("$2"); }
need cc gcc
need g++ g++
need make make
need nm binutils
need valgrind valgrind
need python3 python3
need ipcs util-linux
need readelf binutils
need pkg-config pkg-config
need shellcheck shellcheck
need systemd-analyze systemd
need busybox busybox
need start-stop-daemon dpkg
need tshark tshark

if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# ASan needs gcc's runtime; it comes with gcc on Debian, but check rather than assume.
if ! echo 'int main(void){return 0;}' | cc -fsanitize=address,undefined -x c - -o /tmp/mipc-asan-probe.$$ 2>/dev/null; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get install -y -qq --no-install-recommends libasan8 libubsan1 >/dev/null
fi
rm -f /tmp/mipc-asan-probe.$$

if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: cargo is missing; install Rust with rustup (https://rustup.rs) and run again" >&2
  exit 1
fi
if command -v rustup >/dev/null 2>&1; then
  for c in rustfmt clippy; do
    rustup component list --installed 2>/dev/null | grep -q "^$c" || rustup component add "$c"
  done
fi
