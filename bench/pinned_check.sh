#!/usr/bin/env bash
# The second, independent check of the pinned sync-call ratio (issue 11 §0), outside
# run_bench.py: each round starts a fresh relay, server and client, all pinned to one CPU, on
# a fresh key, alternating the minimal C relay with raw C peers and mipc_main with libmipc
# peers (`bench/build/synccall` against `mipc_peer serve`), and prints each round's p50 and
# the ratio of the medians.
#
#   bench/pinned_check.sh [--direct] [ROUNDS [SIZE [CALLS]]]   (defaults: 5 rounds, 100 B, 20 000 calls)
#
# With --direct it checks the direct path instead (issue 11 §0: at most 1.15x raw SysV): the
# floor (`bench/build/pingpong`, raw SysV ping-pong between two processes) alternated with
# `synccall` against `mipc_peer serve`, both with MIPC_DIRECT=1, through mipc_main.
#
# Needs `make -f bench/bench.mk bench-build` first. CPU: BENCH_CPU (default 0).
set -euo pipefail
cd "$(dirname "$0")/.."
direct=0
if [ "${1:-}" = --direct ]; then
    direct=1
    shift
fi
rounds=${1:-5}
size=${2:-100}
calls=${3:-20000}
cpu=${BENCH_CPU:-0}
pin="taskset -c $cpu"
harness_name=pinned_check
# shellcheck source=bench/harness.sh
. bench/harness.sh

# Prints the p50 of the uint32 ns samples in file $1.
p50_of() {
    python3 -c '
import struct, sys
d = open(sys.argv[1], "rb").read()
s = sorted(struct.unpack("%dI" % (len(d) // 4), d))
print(s[len(s) // 2])' "$1"
}

# One round: $1 = c or mipc. Prints the client's p50 in ns.
round() {
    local kind=$1 key relay server
    if [ "$kind" = c ] && [ "$direct" = 1 ]; then
        $pin bench/build/pingpong "$size" "$calls" 2000 "$tmp/samples" >/dev/null
        p50_of "$tmp/samples"
        rm -f "$tmp/samples"
        return
    fi
    local peer_env=()
    if [ "$direct" = 1 ]; then
        peer_env=(MIPC_DIRECT=1)
    fi
    key=$(printf '0x%x' $((0x4d430000 + RANDOM % 65535 + 1)))
    mkfifo "$tmp/relay.in" "$tmp/server.in"
    if [ "$kind" = c ]; then
        MIPC_ROOT_KEY=$key $pin bench/build/crelay <"$tmp/relay.in" >"$tmp/relay.out" 2>&1 &
    else
        MIPC_ROOT_KEY=$key $pin target/release/mipc_main <"$tmp/relay.in" >"$tmp/relay.out" 2>&1 &
    fi
    relay=$!
    pids+=("$relay")
    exec 7>"$tmp/relay.in"
    wait_ready "$tmp/relay.out"
    if [ "$kind" = c ]; then
        MIPC_ROOT_KEY=$key $pin bench/build/rawpeer serve psrv <"$tmp/server.in" >"$tmp/server.out" 2>&1 &
    else
        env "${peer_env[@]}" MIPC_ROOT_KEY=$key $pin bench/build/mipc_peer serve psrv <"$tmp/server.in" >"$tmp/server.out" 2>&1 &
    fi
    server=$!
    pids+=("$server")
    exec 8>"$tmp/server.in"
    wait_ready "$tmp/server.out"
    if [ "$kind" = c ]; then
        MIPC_ROOT_KEY=$key $pin bench/build/rawpeer call pcli psrv "$size" "$calls" 2000 0 "$tmp/samples" >/dev/null
        p50_of "$tmp/samples"
    else
        env "${peer_env[@]}" MIPC_ROOT_KEY=$key $pin bench/build/synccall pcli psrv "$size" "$calls" 2000 |
            sed -n 's/.*p50_ns=\([0-9]*\).*/\1/p'
    fi
    stop_round "$relay" "$server"
    rm -f "$tmp/samples"
}

c_all=() m_all=()
for i in $(seq "$rounds"); do
    c=$(round c)
    m=$(round mipc)
    c_all+=("$c")
    m_all+=("$m")
    if [ "$direct" = 1 ]; then
        echo "round $i: raw SysV ping-pong p50 $c ns, direct path (libmipc) p50 $m ns"
    else
        echo "round $i: minimal C relay p50 $c ns, mipc_main + libmipc p50 $m ns"
    fi
done
python3 - "${c_all[*]}" "${m_all[*]}" "$size" "$direct" <<'PY'
import statistics, sys
c = [int(x) for x in sys.argv[1].split()]
m = [int(x) for x in sys.argv[2].split()]
mc, mm = statistics.median(c), statistics.median(m)
names = ("raw SysV ping-pong", "direct path") if sys.argv[4] == "1" else ("C relay", "mipc")
print("median of %d rounds, %s B: %s %.2f us, %s %.2f us = %.2fx"
      % (len(c), sys.argv[3], names[0], mc / 1000, names[1], mm / 1000, mm / mc))
PY
