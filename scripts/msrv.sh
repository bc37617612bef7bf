#!/usr/bin/env bash
# Builds the workspace with Rust 1.85, the compiler of the ARM builds (Debian's rustc-web;
# see CROSS-ARM.md in the shared notes), so that `rust-version = "1.85"` stays true.
# Installs the pinned rustc-web when it is missing; skips (saying so) where apt cannot.
set -euo pipefail
cd "$(dirname "$0")/.."
version=1.85.0+dfsg3-1~deb12u3
if ! /usr/bin/rustc --version 2>/dev/null | grep -q '^rustc 1\.85\.'; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  if ! { $sudo apt-get update -qq && $sudo apt-get install -y -qq --no-install-recommends \
      "rustc-web=$version" "cargo-web=$version" "libstd-rust-web-dev=$version" \
      "libstd-rust-web-1.85=$version"; } >/dev/null 2>&1; then
    echo "msrv: SKIPPED: rustc-web $version cannot be installed on this machine"
    exit 0
  fi
fi
echo "msrv: $(/usr/bin/rustc --version)"
RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc /usr/bin/cargo build --workspace --locked \
  --target-dir target/msrv
