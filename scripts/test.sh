#!/usr/bin/env bash
# The test command (README, CI): installs what is missing, checks formatting and lints,
# builds everything (C with -Wall -Wextra -Werror, and an ASan+UBSan set), and runs every
# Rust and C test, then the ARM cross builds and their tests under qemu (cross.mk). Each test
# runs its own bus (its own MIPC_ROOT_KEY) and removes its queues.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> [%dm%02ds] %s\n' $((SECONDS / 60)) $((SECONDS % 60)) "$*"; }

step "setup"
./scripts/setup.sh

step "format"
cargo fmt --all -- --check

step "lint"
cargo clippy --workspace --all-targets -- -D warnings

step "docs: rustdoc of the library without warnings"
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps -p mipc --quiet

step "MSRV: the workspace builds with Rust 1.85 (the ARM toolchain)"
./scripts/msrv.sh

step "build (release library and relay, C tests, ASan C tests)"
make --no-print-directory all c-tests-asan

snapshot=$(mktemp)
trap 'rm -f "$snapshot"' EXIT
./scripts/check-clean.sh --snapshot >"$snapshot"

step "tests (Rust unit tests, router, C ABI, and the multi-process C scenarios)"
cargo test --workspace

step "cross: ARM builds (glibc 2.17 floor, musl) and their tests under qemu (make test-cross-ci)"
./scripts/cross-setup.sh
make --no-print-directory test-cross-ci

# After the cross step, so the armv7 build is there for the installed-tree check under qemu.
step "make install into a temporary DESTDIR (host and armv7), init files, package recipes"
./scripts/test-install.sh
./scripts/test-packaging.sh

step "leftovers"
./scripts/check-clean.sh "$snapshot"

step "done"
