#!/usr/bin/env bash
# Checks `make install` (install.mk) from the outside, into temporary DESTDIRs:
#  - the file list, file by file (names, modes, links), for the default PREFIX and for a
#    firmware-style PREFIX=/usr with each INIT= choice;
#  - libmipc.so.1's SONAME (readelf), libmipc.so -> libmipc.so.1, stripped binaries and
#    library, libmipc.a without debug sections, mipc.pc's paths;
#  - `cc $(pkg-config --cflags --libs mipc)` with PKG_CONFIG_SYSROOT_DIR/PKG_CONFIG_LIBDIR
#    on the DESTDIR builds a C client that works against a relay started from that tree;
#  - a legacy-style program, linked against a stand-in libmipc.so with no SONAME (so it asks
#    for the file libmipc.so), runs against the installed tree;
#  - the init files: shellcheck, systemd-analyze verify, the S50mipc script's start, status,
#    restart and stop (dpkg's and busybox's start-stop-daemon), the procd script's command
#    and environment run by stub procd functions;
#  - the same install and client checks for armv7 under qemu-arm when
#    target/armv7-unknown-linux-gnueabihf/release/ holds a build (`make cross`), else skipped.
# Every relay runs on its own MIPC_ROOT_KEY; the trap stops them and removes their queues
# even when a check fails. Needs a built tree (`make`); scripts/setup.sh installs the tools.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD

tmp=$(mktemp -d /tmp/mipc-test-install.XXXXXX)
pids=()   # every process started (relays, clients): their queues are removed at the end
keys=()   # every root key used

cleanup() {
  local p k
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ -f "$tmp/s50.pid" ]; then kill -KILL "$(cat "$tmp/s50.pid")" 2>/dev/null || true; fi
  # Queues whose key is one of ours, or last sent or received by one of our processes.
  for k in "${keys[@]}"; do
    awk -v key="$((k))" 'NR > 1 && $1 == key {print $2}' /proc/sysvipc/msg
  done | xargs -r -n1 ipcrm -q 2>/dev/null || true
  if ((${#pids[@]})); then
    awk -v pids=" ${pids[*]} " 'NR > 1 && (index(pids, " " $6 " ") || index(pids, " " $7 " ")) {print $2}' \
      /proc/sysvipc/msg | xargs -r -n1 ipcrm -q 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT

fail() { echo "test-install: FAIL: $*" >&2; exit 1; }
ok() { echo "ok: $*"; }

# A root key nobody uses (key column of /proc/sysvipc/msg is decimal).
new_key() {
  local k
  while :; do
    k=$(printf '0x%08x' $(((RANDOM << 15 | RANDOM) | 0x20000000)))
    awk -v key="$((k))" 'NR > 1 && $1 == key {found = 1} END {exit !found}' /proc/sysvipc/msg || break
  done
  keys+=("$k")
  echo "$k"
}

queue_of_key() { awk -v key="$(($1))" 'NR > 1 && $1 == key {print $2}' /proc/sysvipc/msg; }

host_bins=$(find target/release -maxdepth 1 -type f -perm -u+x ! -name '*.*' -printf '%f\n' | sort)
{ [ -f target/release/libmipc.so ] && [ -n "$host_bins" ]; } || fail "no release build: run make first"

# The expected tree: "type mode path[ -> link]" for each entry, directories included.
expected() { # prefix bins init
  local p=${1#/} bins=$2 init=$3 b f sysconf
  if [ "$1" = /usr ]; then sysconf=etc; else sysconf=$p/etc; fi
  {
    for b in $bins; do echo "f 755 $p/bin/$b"; done
    echo "f 644 $p/include/mipc.h"
    echo "f 644 $p/lib/libmipc.a"
    echo "l 777 $p/lib/libmipc.so -> libmipc.so.1"
    echo "f 755 $p/lib/libmipc.so.1"
    echo "f 644 $p/lib/pkgconfig/mipc.pc"
    for f in S50mipc mipc.procd; do echo "f 755 $p/share/mipc/init/$f"; done
    for f in mipc.default mipc.service mipc.uci; do echo "f 644 $p/share/mipc/init/$f"; done
    echo "f 644 $p/share/mipc/wireshark/mipc.lua"
    case $init in
    procd) echo "f 755 $sysconf/init.d/mipc"; echo "f 644 $sysconf/config/mipc" ;;
    systemd) echo "f 644 $p/lib/systemd/system/mipc.service"; echo "f 644 $sysconf/default/mipc" ;;
    sysv) echo "f 755 $sysconf/init.d/S50mipc"; echo "f 644 $sysconf/default/mipc" ;;
    esac
  } | while read -r t m path rest; do
    # every parent directory, mode 755
    d=$(dirname "$path")
    while [ "$d" != . ]; do echo "d 755 $d"; d=$(dirname "$d"); done
    echo "$t $m $path${rest:+ $rest}"
  done | sort -u
}

actual() { # destdir
  (cd "$1" && find . -mindepth 1 -printf '%y %m %P -> %l\n' | sed -e 's/ -> $//' | sort -u)
}

# make install into $1 with the remaining arguments, and compare the tree.
install_and_compare() { # destdir prefix bins init make-args...
  local dest=$1 prefix=$2 bins=$3 init=$4
  shift 4
  make --no-print-directory -s install DESTDIR="$dest" PREFIX="$prefix" INIT="$init" "$@" >"$tmp/make.log" 2>&1 ||
    { cat "$tmp/make.log"; fail "make install DESTDIR=$dest PREFIX=$prefix INIT=$init $*"; }
  if ! diff -u <(expected "$prefix" "$bins" "$init") <(actual "$dest") >"$tmp/tree.diff"; then
    cat "$tmp/tree.diff"
    fail "installed tree (PREFIX=$prefix INIT=$init $*) differs from the expected one (- expected, + installed)"
  fi
  ok "make install PREFIX=$prefix${init:+ INIT=$init}${*:+ $*}: $(actual "$dest" | wc -l) entries as expected"
}

# Static checks of an installed /usr tree built for machine $2 (readelf's Machine: text).
check_files() { # destdir machine
  local d=$1/usr machine=$2 f
  readelf -d "$d/lib/libmipc.so.1" | grep -q 'Library soname: \[libmipc.so.1\]' ||
    fail "SONAME of libmipc.so.1: $(readelf -d "$d/lib/libmipc.so.1" | grep -i soname)"
  [ "$(readlink "$d/lib/libmipc.so")" = libmipc.so.1 ] || fail "libmipc.so is not a link to libmipc.so.1"
  for f in "$d"/lib/libmipc.so.1 "$d"/bin/*; do
    readelf -h "$f" | grep -q "Machine: *$machine" || fail "$f is not built for $machine"
    ! readelf -S "$f" | grep -qE '\.symtab|\.debug_' || fail "$f is not stripped"
  done
  ! readelf -S "$d/lib/libmipc.a" 2>/dev/null | grep -q '\.debug_' || fail "libmipc.a has debug sections"
  cmp -s include/mipc.h "$d/include/mipc.h" || fail "installed mipc.h differs from include/mipc.h"
  ok "$machine: SONAME libmipc.so.1, libmipc.so link, stripped library and binaries ($(stat -c %s "$d/lib/libmipc.so.1") B libmipc.so.1, $(stat -c %s "$d/bin/mipc_main") B mipc_main), libmipc.a $(stat -c %s "$d/lib/libmipc.a") B without debug info"
}

# pkg-config against the DESTDIR as a firmware sysroot.
pc() { PKG_CONFIG_SYSROOT_DIR="$1" PKG_CONFIG_LIBDIR="$1/usr/lib/pkgconfig" PKG_CONFIG_PATH='' pkg-config "${@:2}"; }

# Starts the installed relay (under the exec wrapper WRAP, e.g. qemu-arm, when set), runs
# $client with the installed library (and WRAP_LIB, the target's C library, for qemu), checks
# its output, stops the relay and checks that its root queue is gone.
WRAP=()
WRAP_LIB=
run_client() { # label destdir client
  local label=$1 dest=$2 client=$3 key relay out status lib
  key=$(new_key)
  mkdir -p "$tmp/state-$key"
  MIPC_ROOT_KEY=$key MIPC_STATE_DIR="$tmp/state-$key" "${WRAP[@]}" "$dest/usr/bin/mipc_main" 2>"$tmp/relay-$key.log" &
  relay=$!
  pids+=("$relay")
  lib=$dest/usr/lib${WRAP_LIB:+:$WRAP_LIB}
  # mipc_init waits for the relay: no sleep needed.
  status=0
  if ((${#WRAP[@]})); then
    out=$(MIPC_ROOT_KEY=$key MIPC_INIT_TIMEOUT_MS=20000 "${WRAP[@]}" -E LD_LIBRARY_PATH="$lib" "$client" 2>&1) || status=$?
  else
    out=$(MIPC_ROOT_KEY=$key MIPC_INIT_TIMEOUT_MS=20000 LD_LIBRARY_PATH="$lib" "$client" 2>&1) || status=$?
  fi
  kill -TERM "$relay"
  wait "$relay" || fail "$label: the relay exited with $? on SIGTERM: $(cat "$tmp/relay-$key.log")"
  [ -z "$(queue_of_key "$key")" ] || fail "$label: the root queue $key is left after the relay stopped"
  [ "$status" -eq 0 ] || fail "$label: client exited with $status: $out"
  grep -q '^ping mipc_main -> MIPC_OK$' <<<"$out" || fail "$label: no ping answer: $out"
  if grep -q '^version stub' <<<"$out"; then fail "$label: the stand-in library answered, not the installed one"; fi
  ok "$label: $(head -n 1 <<<"$out"), ping through the installed relay answered"
}

# The stand-in vendor library with no SONAME, and the client linked against it.
legacy_client() { # cc out
  local cc=$1 out=$2 dir
  dir=$(dirname "$out")/legacy-lib
  mkdir -p "$dir"
  "$cc" -std=c11 -D_DEFAULT_SOURCE -O2 -Iinclude -fPIC -shared -o "$dir/libmipc.so" c-tests/stub_libmipc.c
  ! readelf -d "$dir/libmipc.so" | grep -q SONAME || fail "the stand-in library has a SONAME"
  "$cc" -std=c11 -O2 -Iinclude -o "$out" c-tests/preload_probe.c -L"$dir" -lmipc -lpthread
  readelf -d "$out" | grep -q 'Shared library: \[libmipc.so\]' ||
    fail "$out does not ask for libmipc.so: $(readelf -d "$out" | grep NEEDED)"
}

echo "==> make install, file by file"
install_and_compare "$tmp/default" /usr/local "$host_bins" ""
# shellcheck disable=SC2016 # a literal ${prefix}
grep -qx 'libdir=${prefix}/lib' "$tmp/default/usr/local/lib/pkgconfig/mipc.pc" || fail "mipc.pc libdir: $(cat "$tmp/default/usr/local/lib/pkgconfig/mipc.pc")"
grep -q '/usr/local/bin/mipc_main' "$tmp/default/usr/local/share/mipc/init/mipc.service" || fail "mipc.service: ExecStart path not substituted"
for init in procd systemd sysv; do
  install_and_compare "$tmp/$init" /usr "$host_bins" "$init"
done
D=$tmp/sysv
grep -rq '@[A-Z]*@' "$D/usr/share/mipc/init" && fail "a placeholder is left in the init files: $(grep -r '@[A-Z]*@' "$D/usr/share/mipc/init")"
make --no-print-directory -s uninstall DESTDIR="$tmp/default" >/dev/null
left=$(cd "$tmp/default" && find . -type f -o -type l)
[ -z "$left" ] || fail "make uninstall left: $left"
ok "make uninstall removes every file it installed"

echo "==> host: the installed tree"
check_files "$D" "$(readelf -h target/release/mipc_main | sed -n 's/^ *Machine: *//p')"
[ "$(pc "$D" --modversion mipc)" = "$(sed -n 's/^version *= *"\(.*\)"/\1/p' Cargo.toml | head -n 1)" ] || fail "pkg-config --modversion mipc"
flags=$(pc "$D" --cflags --libs mipc | sed "s/ *$//")
[ "$flags" = "-I$D/usr/include -L$D/usr/lib -lmipc" ] || fail "pkg-config --cflags --libs mipc: $flags"
ok "pkg-config with the DESTDIR as sysroot: $flags"
# shellcheck disable=SC2086 # the flags are words
cc -std=c11 -O2 -o "$tmp/client" c-tests/preload_probe.c $flags -lpthread
readelf -d "$tmp/client" | grep -q 'Shared library: \[libmipc.so.1\]' || fail "the client does not ask for libmipc.so.1"
! readelf -d "$tmp/client" | grep -qE 'RPATH|RUNPATH' || fail "the client has an rpath"
run_client "host client (cc \$(pkg-config --cflags --libs mipc))" "$D" "$tmp/client"
legacy_client cc "$tmp/legacy/client"
run_client "host legacy program (NEEDED libmipc.so, stand-in without SONAME)" "$D" "$tmp/legacy/client"

echo "==> init files"
init=$D/usr/share/mipc/init
shellcheck "$init/mipc.procd" "$init/S50mipc" "$D/etc/init.d/S50mipc" scripts/test-install.sh scripts/test-packaging.sh
ok "shellcheck: mipc.procd, S50mipc, the test scripts"
# systemd-analyze verify wants ExecStart to exist: verify a copy pointing into the DESTDIR.
mkdir -p "$tmp/units"
sed -e "s|^ExecStart=/usr/bin/|ExecStart=$D/usr/bin/|" "$init/mipc.service" >"$tmp/units/mipc.service"
grep -q "^ExecStart=$D/usr/bin/mipc_main " "$tmp/units/mipc.service" || fail "mipc.service: ExecStart=/usr/bin/mipc_main expected"
if ! SYSTEMD_LOG_LEVEL=notice systemd-analyze verify --man=no "$tmp/units/mipc.service" >"$tmp/verify.log" 2>&1 ||
  grep -q 'mipc.service' "$tmp/verify.log"; then
  cat "$tmp/verify.log"
  fail "systemd-analyze verify mipc.service"
fi
ok "systemd-analyze verify mipc.service"

# S50mipc, with a settings file that points it at the DESTDIR, a temporary pidfile and log.
s50() { # start-stop-daemon flavour
  local flavour=$1 key sh=sh path=$PATH
  key=$(new_key)
  mkdir -p "$tmp/s50-state"
  sed -e "s|^CONFIG=.*|CONFIG=$tmp/s50.default|" "$D/etc/init.d/S50mipc" >"$tmp/S50mipc"
  cat >"$tmp/s50.default" <<EOF
DAEMON=$D/usr/bin/mipc_main
PIDFILE=$tmp/s50.pid
LOGFILE=$tmp/s50.log
MIPC_ROOT_KEY=$key
MIPC_STATE_DIR=$tmp/s50-state
MIPC_MAIN_ARGS="-n 64"
EOF
  if [ "$flavour" = busybox ]; then
    mkdir -p "$tmp/bb"
    ln -sf "$(command -v busybox)" "$tmp/bb/start-stop-daemon"
    path=$tmp/bb:$PATH
    sh="busybox sh"
  fi
  # shellcheck disable=SC2086 # $sh is "sh" or "busybox sh"
  s50run() { PATH=$path $sh "$tmp/S50mipc" "$@"; }
  s50run start >"$tmp/s50.out" || fail "S50mipc start ($flavour): $(cat "$tmp/s50.out" "$tmp/s50.log")"
  pids+=("$(cat "$tmp/s50.pid")")
  MIPC_ROOT_KEY=$key MIPC_INIT_TIMEOUT_MS=20000 LD_LIBRARY_PATH="$D/usr/lib" "$tmp/client" >"$tmp/s50.client" 2>&1 ||
    fail "S50mipc ($flavour): client: $(cat "$tmp/s50.client" "$tmp/s50.log")"
  s50run status | grep -q "is running (pid $(cat "$tmp/s50.pid"))" || fail "S50mipc status ($flavour)"
  tr '\0' ' ' <"/proc/$(cat "$tmp/s50.pid")/cmdline" | grep -q "mipc_main -n 64 $" ||
    fail "S50mipc ($flavour): relay command line: $(tr '\0' ' ' <"/proc/$(cat "$tmp/s50.pid")/cmdline")"
  s50run start | grep -q "already running" || fail "S50mipc start twice ($flavour)"
  s50run restart >"$tmp/s50.out" || fail "S50mipc restart ($flavour): $(cat "$tmp/s50.out")"
  pids+=("$(cat "$tmp/s50.pid")")
  MIPC_ROOT_KEY=$key MIPC_INIT_TIMEOUT_MS=20000 LD_LIBRARY_PATH="$D/usr/lib" "$tmp/client" >"$tmp/s50.client" 2>&1 ||
    fail "S50mipc ($flavour): client after restart: $(cat "$tmp/s50.client" "$tmp/s50.log")"
  s50run stop >"$tmp/s50.out" || fail "S50mipc stop ($flavour): $(cat "$tmp/s50.out")"
  [ ! -e "$tmp/s50.pid" ] || fail "S50mipc stop ($flavour) left the pidfile"
  [ -z "$(queue_of_key "$key")" ] || fail "S50mipc stop ($flavour) left the root queue"
  if s50run status >/dev/null; then fail "S50mipc status after stop ($flavour)"; fi
  grep -q 'mipc_main' "$tmp/s50.log" || fail "S50mipc ($flavour): nothing in the log file"
  ok "S50mipc start, status, restart, stop with $flavour start-stop-daemon (settings file, pidfile, log file)"
}
s50 dpkg
if command -v busybox >/dev/null && busybox start-stop-daemon --help >/dev/null 2>&1; then
  s50 busybox
else
  echo "skip: busybox with start-stop-daemon is not installed (scripts/setup.sh installs it)"
fi

# The procd script under stub procd functions: the instance it declares, then run it.
cat >"$tmp/procd-stubs.sh" <<'EOF'
config_load() { :; }
# config_get VAR SECTION OPTION [DEFAULT]: the values of a test /etc/config/mipc
config_get() {
  local v
  case "$3" in
  root_key) v=$T_ROOT_KEY ;; state_dir) v=$T_STATE_DIR ;; max_entries) v=64 ;; log) v=debug ;;
  *) v=${4:-} ;;
  esac
  eval "$1=\$v"
}
procd_open_instance() { echo "open"; }
procd_set_param() { echo "set $*"; }
procd_append_param() { echo "append $*"; }
procd_close_instance() { echo "close"; }
EOF
key=$(new_key)
mkdir -p "$tmp/procd-state"
T_ROOT_KEY=$key T_STATE_DIR=$tmp/procd-state sh -c '. "$1"; . "$2"; start_service' sh \
  "$tmp/procd-stubs.sh" "$tmp/procd/etc/init.d/mipc" >"$tmp/procd.out"
want="open
set command /usr/bin/mipc_main
append command -n 64
append env MIPC_ROOT_KEY=$key
append env MIPC_LOG=debug
append env MIPC_STATE_DIR=$tmp/procd-state
set respawn 3600 5 0
set stdout 1
set stderr 1
close"
diff -u <(echo "$want") "$tmp/procd.out" || fail "the procd instance differs (- expected)"
{ grep -qx 'USE_PROCD=1' "$tmp/procd/etc/init.d/mipc" && head -n 1 "$tmp/procd/etc/init.d/mipc" | grep -qx '#!/bin/sh /etc/rc.common'; } ||
  fail "mipc.procd: rc.common shebang or USE_PROCD=1 missing"
# Run what procd would run: that command (from the DESTDIR) with that environment.
read -r -a cmd <<<"$(sed -n 's/^\(set\|append\) command //p' "$tmp/procd.out" | tr '\n' ' ')"
mapfile -t envs < <(sed -n 's/^append env //p' "$tmp/procd.out")
env "${envs[@]}" "$D${cmd[0]}" "${cmd[@]:1}" 2>"$tmp/procd-relay.log" &
pids+=("$!")
MIPC_ROOT_KEY=$key MIPC_INIT_TIMEOUT_MS=20000 LD_LIBRARY_PATH="$D/usr/lib" "$tmp/client" >"$tmp/procd.client" 2>&1 ||
  fail "procd instance: client: $(cat "$tmp/procd.client" "$tmp/procd-relay.log")"
kill -TERM "${pids[-1]}"
wait "${pids[-1]}" || fail "procd instance: relay exit status $?"
grep -q 'debug' "$tmp/procd-relay.log" || fail "procd instance: MIPC_LOG=debug did not reach the relay"
[ -z "$(queue_of_key "$key")" ] || fail "procd instance: root queue left"
ok "procd script: command, environment, respawn, stdout/stderr to logd as declared; that command runs the bus"

echo "==> armv7 under qemu-arm"
arm=target/armv7-unknown-linux-gnueabihf/release
if [ ! -f "$arm/libmipc.so" ]; then
  echo "skip: no armv7 build in $arm/ (run \`make cross TARGET=armv7-unknown-linux-gnueabihf\` first)"
elif ! command -v qemu-arm >/dev/null || ! command -v arm-linux-gnueabihf-gcc >/dev/null; then
  echo "skip: qemu-arm or arm-linux-gnueabihf-gcc missing (scripts/setup.sh, scripts/cross-setup.sh)"
else
  arm_bins=$(find "$arm" -maxdepth 1 -type f -perm -u+x ! -name '*.*' -printf '%f\n' | sort)
  A=$tmp/arm
  install_and_compare "$A" /usr "$arm_bins" "" TARGET=armv7-unknown-linux-gnueabihf
  check_files "$A" ARM
  flags=$(pc "$A" --cflags --libs mipc | sed "s/ *$//")
  [ "$flags" = "-I$A/usr/include -L$A/usr/lib -lmipc" ] || fail "armv7 pkg-config: $flags"
  # shellcheck disable=SC2086
  arm-linux-gnueabihf-gcc -std=c11 -O2 -o "$tmp/arm-client" c-tests/preload_probe.c $flags -lpthread
  WRAP=(qemu-arm -L /usr/arm-linux-gnueabihf)
  WRAP_LIB=/usr/arm-linux-gnueabihf/lib
  run_client "armv7 client under qemu-arm" "$A" "$tmp/arm-client"
  legacy_client arm-linux-gnueabihf-gcc "$tmp/arm-legacy/client"
  run_client "armv7 legacy program under qemu-arm" "$A" "$tmp/arm-legacy/client"
fi

cd "$top"
echo "test-install: all checks passed"
