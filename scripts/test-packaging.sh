#!/usr/bin/env bash
# Runs the package recipes of packaging/ as far as they run without their SDKs (neither the
# OpenWrt SDK nor Buildroot can be downloaded here): each recipe's own steps (prepare,
# compile, install, staging, package contents, init hooks), with the variables the SDK would
# set given stub values, and checks that the files they install are the ones `make install`
# produces, byte for byte.
#  - cargo is a stub that records its command line and environment (checked: a release build
#    of the workspace, locked, for the SDK's target triple) and puts the already built
#    artifacts where cargo would: the compile itself is `make cross`'s to test.
#  - The triple is armv7-unknown-linux-gnueabihf when that build exists (`make cross`), else
#    the host's, so this runs on any machine that ran `make`.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD
tmp=$(mktemp -d /tmp/mipc-test-packaging.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

fail() { echo "test-packaging: FAIL: $*" >&2; exit 1; }
ok() { echo "ok: $*"; }

if [ -f target/armv7-unknown-linux-gnueabihf/release/libmipc.so ] && command -v arm-linux-gnueabihf-strip >/dev/null; then
  triple=armv7-unknown-linux-gnueabihf cross=arm-linux-gnueabihf- prebuilt=target/$triple/release
  ref_args=(TARGET="$triple")
else
  triple=$(rustc -vV | sed -n 's/^host: //p') cross="" prebuilt=target/release
  ref_args=()
fi
[ -f "$prebuilt/libmipc.so" ] || fail "no build in $prebuilt: run make first"
echo "recipes for $triple (artifacts of $prebuilt)"

# The stub cargo.
mkdir -p "$tmp/bin"
cat >"$tmp/bin/cargo" <<'EOF'
#!/bin/sh
echo "cargo $* | CARGO_BUILD_TARGET=${CARGO_BUILD_TARGET:-} | pwd=$PWD" >>"$CARGO_LOG"
[ "$1" = build ] || { echo "stub cargo: only build" >&2; exit 1; }
out=target/${CARGO_BUILD_TARGET:?}/release
mkdir -p "$out"
find "$MIPC_PREBUILT" -maxdepth 1 -type f \( -name 'libmipc.so' -o -name 'libmipc.a' -o \( -perm -u+x ! -name '*.*' \) \) \
  -exec cp -p {} "$out/" \;
EOF
chmod +x "$tmp/bin/cargo"
export CARGO_LOG=$tmp/cargo.log MIPC_PREBUILT=$top/$prebuilt PATH=$tmp/bin:$PATH

# References: `make install` of this tree, PREFIX=/usr, each INIT choice.
for init in none procd sysv systemd; do
  make --no-print-directory -s install "${ref_args[@]}" PREFIX=/usr DESTDIR="$tmp/ref-$init" \
    INIT="${init#none}" >/dev/null
done

# "type path[ -> link]" of every file and link under $1, limited to the paths matching $2.
tree() { (cd "$1" && find . -mindepth 1 ! -type d -printf '%y %P -> %l\n' | sed -e 's/ -> $//' | grep -E "${2:-.}" | sort); }

# The files of $1 (all, or those matching $3) are those of $2, with the same bytes.
same_files() { # installed reference pattern label
  local f
  diff -u <(tree "$2" "${3:-.}") <(tree "$1") >"$tmp/diff" || { cat "$tmp/diff"; fail "$4: file list differs from make install's (- make install, + recipe)"; }
  while read -r _ f _; do
    [ -L "$1/$f" ] || cmp -s "$1/$f" "$2/$f" || fail "$4: $f differs from make install's"
  done < <(tree "$1")
  ok "$4: $(tree "$1" | wc -l) files, the same as make install's"
}

check_cargo() { # label
  grep -q "^cargo build --release .*--workspace.*--locked.*| CARGO_BUILD_TARGET=$triple |" "$CARGO_LOG" ||
    grep -q "^cargo build --release .*--locked.*--workspace.*| CARGO_BUILD_TARGET=$triple |" "$CARGO_LOG" ||
    fail "$1: cargo command: $(cat "$CARGO_LOG")"
  ok "$1: $(sed 's/ | pwd=.*//' "$CARGO_LOG")"
  : >"$CARGO_LOG"
}

echo "==> OpenWrt: packaging/openwrt/mipc/Makefile"
# What the SDK provides: rules.mk, package.mk (BuildPackage runs the recipe's steps in the
# SDK's order), the packages feed's rust-package.mk.
o=$tmp/openwrt
mkdir -p "$o/include" "$o/feeds/packages/lang/rust"
cat >"$o/rules.mk" <<EOF
BUILD_DIR:=$o/build
STAGING_DIR:=$o/staging
TARGET_CROSS:=$cross
INSTALL_DIR:=install -d -m0755
INSTALL_BIN:=install -m0755
INSTALL_DATA:=install -m0644
INSTALL_CONF:=install -m0600
CP:=cp -fpR
EOF
cat >"$o/include/package.mk" <<'EOF'
PKG_BUILD_DIR ?= $(BUILD_DIR)/$(PKG_NAME)-$(PKG_VERSION)
PKG_INSTALL_DIR ?= $(PKG_BUILD_DIR)/ipkg-install
define BuildPackage
all:
	$$(Build/Prepare)
	$$(Build/Compile)
	$$(Build/Install)
	$$(call Build/InstallDev,$(STAGING_DIR))
	$$(call Package/$(1)/install,$(BUILD_DIR)/ipkg-$(1))
	test -n "$$(Package/$(1)/conffiles)"
endef
EOF
cat >"$o/feeds/packages/lang/rust/rust-package.mk" <<EOF
RUSTC_TARGET_ARCH:=$triple
RUST_ARCH_DEPENDS:=@(aarch64||arm||x86_64)
CARGO_PKG_VARS:=CARGO_BUILD_TARGET=$triple CARGO_HOME=$o/cargo-home
CARGO_PKG_ARGS:=--locked
EOF
make --no-print-directory -s -C packaging/openwrt/mipc TOPDIR="$o" INCLUDE_DIR="$o/include" >"$tmp/openwrt.log" 2>&1 ||
  { cat "$tmp/openwrt.log"; fail "the OpenWrt recipe's steps"; }
grep -q "pwd=$o/build/mipc-" "$CARGO_LOG" || fail "OpenWrt: cargo did not run in PKG_BUILD_DIR: $(cat "$CARGO_LOG")"
{ [ -f "$o/build/mipc-0.1.0/Cargo.toml" ] && [ ! -e "$o/build/mipc-0.1.0/target/release" ]; } ||
  fail "OpenWrt: Build/Prepare did not copy the source (without target/)"
check_cargo "OpenWrt Build/Compile"
same_files "$o/build/mipc-0.1.0/ipkg-install" "$tmp/ref-procd" . "OpenWrt Build/Install (PKG_INSTALL_DIR)"
same_files "$o/staging" "$tmp/ref-procd" '^[fl] usr/(include/|lib/libmipc|lib/pkgconfig/)' "OpenWrt Build/InstallDev (staging)"
same_files "$o/build/ipkg-mipc" "$tmp/ref-procd" '^[fl] (usr/lib/libmipc\.so|usr/bin/|etc/)' "OpenWrt package contents"
[ "$(readlink "$o/build/ipkg-mipc/usr/lib/libmipc.so")" = libmipc.so.1 ] || fail "OpenWrt package: libmipc.so link"
sdk_ver=$(sed -n 's/^PKG_VERSION:=//p' packaging/openwrt/mipc/Makefile)
br_ver=$(sed -n 's/^MIPC_VERSION = //p' packaging/buildroot/mipc/mipc.mk)
ver=$(sed -n 's/^version *= *"\(.*\)"/\1/p' Cargo.toml | head -n 1)
{ [ "$sdk_ver" = "$ver" ] && [ "$br_ver" = "$ver" ]; } || fail "recipe versions ($sdk_ver, $br_ver) differ from Cargo.toml's $ver"
ok "recipe versions are Cargo.toml's ($ver)"

echo "==> Buildroot: packaging/buildroot (br2-external tree, mipc/mipc.mk)"
# What Buildroot provides: the cargo-package infrastructure's variables, and a step runner in
# Buildroot's order (the local site's copy, rsync there, tar here; build, staging, target, the init hook of INIT).
b=$tmp/buildroot
mkdir -p "$b"
cat >"$b/harness.mk" <<EOF
BR2_EXTERNAL_MIPC_PATH := $top/packaging/buildroot
RUSTC_TARGET_NAME := $triple
TARGET_CROSS := $cross
TARGET_MAKE_ENV := PATH=$tmp/bin:\$(PATH)
TARGET_CONFIGURE_OPTS := CC="${cross}gcc"
PKG_CARGO_ENV := CARGO_HOME=$b/cargo-home CARGO_BUILD_TARGET="$triple"
INSTALL := install
STAGING_DIR := $b/staging
TARGET_DIR := $b/target-\$(BR_INIT)
cargo-package :=
include \$(BR2_EXTERNAL_MIPC_PATH)/external.mk
BUILD := $b/build-\$(BR_INIT)/mipc-\$(MIPC_VERSION)
all: \$(BUILD)/.stamp
\$(BUILD)/.stamp:
	test "\$(MIPC_SITE_METHOD)" = local
	mkdir -p \$(@D)
	tar -C \$(MIPC_SITE) --exclude=./.git --exclude=./target --exclude=./c-tests/build -cf - . | tar -C \$(@D) -xf -
	\$(MIPC_BUILD_CMDS)
	test "\$(MIPC_INSTALL_STAGING)" = YES
	\$(MIPC_INSTALL_STAGING_CMDS)
	\$(MIPC_INSTALL_TARGET_CMDS)
	\$(MIPC_INSTALL_INIT_\$(BR_INIT))
	touch \$@
EOF
for init in SYSV SYSTEMD; do
  make --no-print-directory -s -f "$b/harness.mk" BR_INIT=$init >"$tmp/buildroot.log" 2>&1 ||
    { cat "$tmp/buildroot.log"; fail "the Buildroot recipe's steps (INIT=$init)"; }
  check_cargo "Buildroot build ($init)"
  lower=$(tr '[:upper:]' '[:lower:]' <<<"$init")
  same_files "$b/target-$init" "$tmp/ref-$lower" . "Buildroot target ($init)"
  rm -rf "$b/staging/usr/share" # staging: the full install; the library part is what counts
  same_files "$b/staging" "$tmp/ref-none" '^[fl] usr/(include/|lib/|bin/)' "Buildroot staging ($init)"
  rm -rf "$b/staging"
done
# shellcheck disable=SC2016 # a literal $BR2_EXTERNAL_MIPC_PATH
grep -q '^source "\$BR2_EXTERNAL_MIPC_PATH/mipc/Config.in"$' packaging/buildroot/Config.in || fail "Buildroot Config.in"
grep -q '^config BR2_PACKAGE_MIPC$' packaging/buildroot/mipc/Config.in || fail "Buildroot mipc/Config.in"
grep -q 'select BR2_PACKAGE_HOST_RUSTC$' packaging/buildroot/mipc/Config.in || fail "Buildroot mipc/Config.in: host-rustc"
ok "Buildroot Config.in: BR2_PACKAGE_MIPC, host-rustc"

echo "test-packaging: all checks passed"
