#!/usr/bin/env bash
# The C-library floor of the cross builds, read from the binaries themselves:
#   check-libc-floor.sh TRIPLE...
# glibc targets: the newest GLIBC_x.y symbol version that libmipc.so and mipc_main need (the
# "Version needs" of readelf) must be at most $MIPC_GLIBC_FLOOR (default 2.17, what zig links
# against; Rust's standard library supports nothing older). musl targets: libmipc.so needs
# only musl's libc.so, and mipc_main is fully static (no program interpreter, no NEEDED).
set -euo pipefail
cd "$(dirname "$0")/.."
floor=${MIPC_GLIBC_FLOOR:-2.17}
status=0
fail() { echo "check-libc-floor: FAIL: $*"; status=1; }
for t in "$@"; do
  dir=target/$t/release
  for f in "$dir/libmipc.so" "$dir/mipc_main"; do
    [ -f "$f" ] || { fail "$f is missing (make cross TARGET=$t)"; continue; }
    case "$t" in
      *-gnu*)
        need=$(readelf -V "$f" | grep -o 'Name: GLIBC_[0-9.]*' | sed 's/Name: GLIBC_//' | sort -uV | tail -1)
        if [ -z "$need" ]; then
          fail "$f: no GLIBC symbol version found"
        elif [ "$(printf '%s\n%s\n' "$need" "$floor" | sort -V | tail -1)" != "$floor" ]; then
          fail "$f needs GLIBC_$need, newer than the floor $floor:"
          readelf -V "$f" | grep -o 'Name: GLIBC_[0-9.]*' | sort -uV | sed 's/^/    /'
        else
          echo "check-libc-floor: $f: glibc >= $need (floor $floor) ok"
        fi
        ;;
      *-musl*)
        needed=$(readelf -d "$f" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | tr '\n' ' ')
        if [ "${f##*/}" = mipc_main ]; then
          if readelf -l "$f" | grep -q INTERP || [ -n "$needed" ]; then
            fail "$f is not fully static (needs: $needed)"
          else
            echo "check-libc-floor: $f: static (musl inside) ok"
          fi
        elif [ "${needed% }" != "libc.so" ]; then
          fail "$f needs [$needed], expected only musl's libc.so"
        else
          echo "check-libc-floor: $f: musl libc.so only ok"
        fi
        ;;
      *) fail "$t: no floor rule for this target" ;;
    esac
  done
done
exit $status
