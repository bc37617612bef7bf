#!/usr/bin/env bash
# Instructions (callgrind Ir) per sync call, hop by hop: the caller (`bench/build/synccall`,
# counting mipc_send_sync_msg), the server (`mipc_peer serve`, counting mipc_mq_receive and
# mipc_response_msg) and the relay (`target/release/mipc_main`, all of it), each under
# valgrind --tool=callgrind, on a bus of its own. Each process runs twice, once with N calls
# and once with 2N; the difference of the two totals over N is the cost of one call, free of
# start-up and exit. Ir do not depend on the machine's load, so this is the figure to compare
# commits by (issue 11 §0); the commit messages of the trims quote it.
#
#   bench/callgrind_per_call.sh [N]          (default 5000; MIPC_DIRECT=1 for the direct path)
#
# CG_KEEP=DIR keeps the callgrind files there, for callgrind_annotate.
#
# Needs `cargo build --release` and `make -f bench/bench.mk bench-build` first.
# Prints "caller X server Y relay Z total T" (Ir per call; the relay's share is the same
# process in both modes: in direct mode it only sees the two registrations).
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-5000}
harness_name=callgrind_per_call
# shellcheck source=bench/harness.sh
. bench/harness.sh
# shellcheck disable=SC2206 # CG_OPTS is a list of options, split on purpose
cg=(valgrind --tool=callgrind ${CG_OPTS:-})
# The library's share only: the caller's timing and sorting of samples and the server's loop
# are the harness's, not a call's.
caller_only=(--toggle-collect=mipc_send_sync_msg)
server_only=(--toggle-collect=mipc_mq_receive --toggle-collect=mipc_response_msg)

# The total Ir of callgrind output file $1.
ir_of() { sed -n 's/^summary: \([0-9]*\).*/\1/p' "$1"; }

# One run of $1 calls; leaves $tmp/{caller,server,relay}.$1.
run() {
    local calls=$1 key relay server
    key=$(printf '0x%x' $((0x4d470000 + RANDOM % 65535 + 1)))
    mkfifo "$tmp/relay.in" "$tmp/server.in"
    MIPC_ROOT_KEY=$key "${cg[@]}" --callgrind-out-file="$tmp/relay.$calls" target/release/mipc_main \
        <"$tmp/relay.in" >"$tmp/relay.out" 2>&1 &
    relay=$!
    pids+=("$relay")
    exec 7>"$tmp/relay.in"
    wait_ready "$tmp/relay.out" 1500
    MIPC_ROOT_KEY=$key "${cg[@]}" --callgrind-out-file="$tmp/server.$calls" "${server_only[@]}" \
        bench/build/mipc_peer serve psrv \
        <"$tmp/server.in" >"$tmp/server.out" 2>&1 &
    server=$!
    pids+=("$server")
    exec 8>"$tmp/server.in"
    wait_ready "$tmp/server.out" 1500
    MIPC_ROOT_KEY=$key "${cg[@]}" --callgrind-out-file="$tmp/caller.$calls" "${caller_only[@]}" \
        bench/build/synccall pcli psrv 100 "$calls" 0 \
        >"$tmp/caller.out" 2>&1
    expect_output 'errors=0' "$tmp/caller.out" "the caller" || return 1
    stop_round "$relay" "$server"
}

run "$n"
run $((2 * n))
total=0
line=""
for side in caller server relay; do
    a=$(ir_of "$tmp/$side.$n")
    b=$(ir_of "$tmp/$side.$((2 * n))")
    per=$(((b - a) / n))
    total=$((total + per))
    line="$line$side $per "
done
echo "${line}total $total"
if [ -n "${CG_KEEP:-}" ]; then
    mkdir -p "$CG_KEEP"
    cp "$tmp"/caller.* "$tmp"/server.* "$tmp"/relay.* "$CG_KEEP"/ 2>/dev/null || true
fi
