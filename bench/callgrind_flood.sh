#!/usr/bin/env bash
# Instructions (callgrind Ir) the relay spends per async message of a flood, on a bus of its
# own: SENDERS `mipc_peer send` processes send N messages in all, round robin to RECEIVERS
# `mipc_peer recv` processes, with `target/release/mipc_main` (or RELAY_BIN, e.g.
# bench/build/crelay for the bare C loop) under valgrind --tool=callgrind. The relay runs
# twice, with N and 2N messages; the difference of the two totals over N is the cost of one
# message, free of start-up and exit. Ir do not depend on the machine's load (issue 11 §1).
#
#   bench/callgrind_flood.sh [N]        (default 20000; SENDERS=1 RECEIVERS=1)
#
# The receivers are stopped (SIGSTOP) while the senders send, so their queues fill, the
# relay's backlogs reach their bound and nearly every message takes the path of a flood to a
# receiver that cannot keep up: try to send the backlog's next message, then drop (the bare
# C loop: try to send, then drop). RUNNING=1 leaves them reading: under valgrind the relay
# is the slow one, so every message is forwarded straight to its receiver's queue.
# CG_KEEP=DIR keeps the callgrind files there, for callgrind_annotate.
#
# Needs `cargo build --release` and `make -f bench/bench.mk bench-build` first. Prints
# "relay Ir per message: X".
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-20000}
senders=${SENDERS:-1}
receivers=${RECEIVERS:-1}
relay_bin=${RELAY_BIN:-target/release/mipc_main}
harness_name=callgrind_flood
# shellcheck source=bench/harness.sh
. bench/harness.sh
keys=()
# A stopped receiver must be continued to end on harness_cleanup's SIGTERM; the relays'
# root queues go with their keys.
on_exit() {
    local p k
    for p in "${pids[@]}"; do kill -CONT "$p" 2>/dev/null || true; done
    harness_cleanup
    for k in "${keys[@]}"; do ipcrm -Q "$k" 2>/dev/null || true; done
}
trap on_exit EXIT

# One run of $1 messages; leaves $tmp/relay.$1.
run() {
    local count=$1 key relay d s rx=() tx=()
    key=$(printf '0x%x' $((0x4d460000 + RANDOM % 65535 + 1)))
    keys+=("$key")
    mkfifo "$tmp/relay.in" "$tmp/server.in"
    # shellcheck disable=SC2086 # CG_OPTS is a list of options, split on purpose
    MIPC_ROOT_KEY=$key valgrind --tool=callgrind ${CG_OPTS:-} --callgrind-out-file="$tmp/relay.$count" \
        "$relay_bin" <"$tmp/relay.in" >"$tmp/relay.out" 2>&1 &
    relay=$!
    pids+=("$relay")
    exec 7>"$tmp/relay.in"
    wait_ready "$tmp/relay.out" 1500
    # The receivers share one fifo as stdin (closing fd 8 ends them all); none of them
    # may hold its write end.
    for d in $(seq 0 $((receivers - 1))); do
        MIPC_ROOT_KEY=$key bench/build/mipc_peer recv "cgr$d" 1000000000 8>&- \
            <"$tmp/server.in" >"$tmp/rx$d.out" 2>&1 &
        rx+=($!)
        pids+=($!)
        [ "$d" != 0 ] || exec 8>"$tmp/server.in"
        wait_ready "$tmp/rx$d.out" 500
        [ "${RUNNING:-0}" = 1 ] || kill -STOP "${rx[-1]}"
    done
    for s in $(seq "$senders"); do
        MIPC_ROOT_KEY=$key bench/build/mipc_peer send "cgs$s" cgr "$receivers" $((count / senders)) 100 - \
            8>&- >"$tmp/tx$s.out" 2>&1 &
        tx+=($!)
        pids+=($!)
    done
    for s in "${tx[@]}"; do wait "$s"; done
    for s in $(seq "$senders"); do
        expect_output 'errors=0' "$tmp/tx$s.out" "sender $s" || return 1
    done
    for d in "${rx[@]}"; do kill -CONT "$d"; done
    stop_round "$relay" "${rx[0]}"
    for d in "${rx[@]}"; do wait "$d" 2>/dev/null || true; done
}

run "$n"
run $((2 * n))
a=$(sed -n 's/^summary: \([0-9]*\).*/\1/p' "$tmp/relay.$n")
b=$(sed -n 's/^summary: \([0-9]*\).*/\1/p' "$tmp/relay.$((2 * n))")
echo "relay Ir per message: $(((b - a) / n))"
if [ -n "${CG_KEEP:-}" ]; then
    mkdir -p "$CG_KEEP"
    cp "$tmp"/relay.* "$CG_KEEP"/ 2>/dev/null || true
fi
