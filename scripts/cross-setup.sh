#!/usr/bin/env bash
# Installs what the ARM cross builds and their tests under qemu need (make cross, make
# test-cross), the lean way described in CROSS-ARM.md, and nothing twice:
#   - amd64 packages: the pinned rustc-web 1.85 set, the cross gcc and C libraries for
#     armhf and arm64, qemu-user, python3-venv;
#   - into a private cache (never the host's rustup, never a foreign dpkg architecture):
#     the ARM standard libraries of rustc-web (libstd-rust-web-dev:armhf/:arm64 .debs
#     fetched with `apt-get download` through a private apt state and unpacked into a
#     sysroot), the standard library's source (rust-web-src, for -Zbuild-std on musl),
#     Debian's musl loaders for qemu, and zig (ziglang from PyPI in a private venv), the
#     linker that targets glibc 2.17 and musl.
# The cache is $MIPC_CROSS_CACHE (default ~/.cache/mipc-rs-cross). A second run finds the
# stamp of a complete install and returns at once. `--print-cache` prints the cache path.
set -euo pipefail

version=1.85.0+dfsg3-1~deb12u3
musl_version=1.2.3-1
zig_version=0.17.1
cache=${MIPC_CROSS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mipc-rs-cross}
stamp="$cache/.complete-$version-zig$zig_version"

if [ "${1:-}" = "--print-cache" ]; then
  echo "$cache"
  exit 0
fi

say() { echo "cross-setup: $*"; }

# --- fast check: everything there already -------------------------------------------------
host_ok() {
  /usr/bin/rustc --version 2>/dev/null | grep -q '^rustc 1\.85\.' &&
    command -v arm-linux-gnueabihf-gcc aarch64-linux-gnu-gcc qemu-arm qemu-aarch64 \
      readelf >/dev/null 2>&1 &&
    [ -e /usr/arm-linux-gnueabihf/lib/crti.o ] && [ -e /usr/aarch64-linux-gnu/lib/crti.o ]
}
if [ -e "$stamp" ] && host_ok; then
  exit 0
fi

# --- amd64 packages -----------------------------------------------------------------------
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
pkgs=()
want() { # package [version]
  local have
  have=$(dpkg-query -W -f='${Status} ${Version}' "$1" 2>/dev/null || true)
  case "$have" in
    "install ok installed ${2:-}"*) ;;
    *) pkgs+=("$1${2:+=$2}") ;;
  esac
}
for p in rustc-web cargo-web libstd-rust-web-dev libstd-rust-web-1.85; do want "$p" "$version"; done
for p in gcc-arm-linux-gnueabihf gcc-aarch64-linux-gnu libc6-dev-armhf-cross \
  libc6-dev-arm64-cross qemu-user binutils make python3-venv dpkg-dev ca-certificates; do
  want "$p"
done
if ((${#pkgs[@]})); then
  say "installing ${pkgs[*]}"
  # The machine's own sources may hold a broken index (CROSS-ARM.md): an update that fails
  # is not fatal as long as the packages install.
  $sudo apt-get update -qq || say "apt-get update reported errors; trying the install anyway"
  $sudo apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
fi

# --- private apt state for the ARM .debs --------------------------------------------------
mkdir -p "$cache"
apt_dir="$cache/apt"
apt_opts=(
  -o "Dir::Etc::SourceList=$apt_dir/sources.list"
  -o Dir::Etc::SourceParts=/dev/null
  -o "Dir::State::Lists=$apt_dir/lists"
  -o "Dir::Cache=$apt_dir/cache"
  -o "Dir::State::status=$apt_dir/status"
  -o APT::Architectures::=armhf
  -o APT::Architectures::=arm64
  -o Debug::NoLocking=1
  -o APT::Sandbox::User=root
)
debs="$cache/debs"
fetch() { # package=version:arch ... into $debs, unless already there
  local missing=() p name
  for p in "$@"; do
    name=${p%%=*}
    name=${name%%:*}
    ls "$debs/${name}_"*.deb >/dev/null 2>&1 || missing+=("$p")
  done
  ((${#missing[@]})) || return 0
  if [ ! -e "$apt_dir/lists/.updated" ]; then
    mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial"
    : >"$apt_dir/status"
    echo "deb [arch=armhf,arm64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg]" \
      "http://deb.debian.org/debian bookworm main" >"$apt_dir/sources.list"
    say "reading the bookworm armhf/arm64 index into $apt_dir"
    apt-get "${apt_opts[@]}" update -qq
    touch "$apt_dir/lists/.updated"
  fi
  mkdir -p "$debs"
  say "downloading ${missing[*]}"
  (cd "$debs" && apt-get "${apt_opts[@]}" download "${missing[@]}" >/dev/null)
}
fetch "libstd-rust-web-dev:armhf=$version" "libstd-rust-web-dev:arm64=$version" \
  "rust-web-src=$version" "musl:armhf=$musl_version" "musl:arm64=$musl_version"

# --- the private sysroot: ARM std for rustc-web, and its source ---------------------------
sysroot="$cache/sysroot"
unpack_std() { # deb triple
  [ -d "$sysroot/lib/rustlib/$2/lib" ] && return 0
  local tmp
  tmp=$(mktemp -d "$cache/unpack.XXXXXX")
  dpkg-deb -x "$1" "$tmp"
  mkdir -p "$sysroot/lib/rustlib"
  mv "$tmp/usr/lib/rustlib/$2" "$sysroot/lib/rustlib/$2"
  rm -rf "$tmp"
}
unpack_std "$(ls "$debs"/libstd-rust-web-dev_*_armhf.deb)" armv7-unknown-linux-gnueabihf
unpack_std "$(ls "$debs"/libstd-rust-web-dev_*_arm64.deb)" aarch64-unknown-linux-gnu
if [ ! -d "$cache/rust-src/library/std" ]; then
  tmp=$(mktemp -d "$cache/unpack.XXXXXX")
  dpkg-deb -x "$(ls "$debs"/rust-web-src_*.deb)" "$tmp"
  rm -rf "$cache/rust-src"
  mkdir -p "$cache/rust-src"
  mv "$tmp"/usr/src/rustc-*/library "$cache/rust-src/library"
  # Cargo's -Zbuild-std wants the vendored dependencies of the standard library too, which
  # Debian keeps in the same package.
  for v in "$tmp"/usr/src/rustc-*/vendor; do
    [ -d "$v" ] && mv "$v" "$cache/rust-src/vendor"
  done
  rm -rf "$tmp"
fi

# --- musl loaders for qemu (-L <dir>) -----------------------------------------------------
for arch in armhf arm64; do
  if [ ! -d "$cache/musl-$arch/lib" ]; then
    tmp=$(mktemp -d "$cache/unpack.XXXXXX")
    dpkg-deb -x "$(ls "$debs"/musl_*_"$arch".deb)" "$tmp"
    rm -rf "$cache/musl-$arch"
    mv "$tmp" "$cache/musl-$arch"
  fi
done

# --- zig, in a private venv ---------------------------------------------------------------
if ! "$cache/bin/zig" version 2>/dev/null | grep -qx "$zig_version"; then
  say "installing ziglang $zig_version (PyPI) into $cache/zig-venv"
  rm -rf "$cache/zig-venv"
  python3 -m venv "$cache/zig-venv"
  "$cache/zig-venv/bin/pip" install -q --disable-pip-version-check "ziglang==$zig_version"
  mkdir -p "$cache/bin"
  ln -sf "$("$cache/zig-venv/bin/python" -c 'import ziglang, os; print(os.path.dirname(ziglang.__file__))')/zig" \
    "$cache/bin/zig"
fi

host_ok || { say "the amd64 toolchain is still incomplete" >&2; exit 1; }
rm -f "$cache"/.complete-*
touch "$stamp"
say "ready in $cache"
