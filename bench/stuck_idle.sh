#!/usr/bin/env bash
# What receivers that stop reading cost a relay that is otherwise idle: N `mipc_peer recv`
# processes are stopped (SIGSTOP), one `mipc_peer send` sends 300 messages of 100 bytes to
# each, round robin (their queues fill, the relay keeps the rest in backlogs and hands them to
# its drainer when its root queue is empty); after half a second (the drainer backs off to its
# longest nap in about 25 ms) the relay's drainer threads, their wake-ups
# (nr_voluntary_switches of its `mipc-drain` threads, /proc/PID/task/*/sched) and the CPU of
# all its threads (/proc/PID/task/*/schedstat) over SECONDS. The receivers are continued and
# get their messages before the end.
#
#   bench/stuck_idle.sh [N [SECONDS]]        (default 5 receivers, 2 s)
#
# RELAY_BIN=path runs another mipc_main (say an earlier commit's, built in a git worktree).
# Needs `cargo build --release` and `make -f bench/bench.mk bench-build` first. Prints
# "stuck receivers N: drainer threads T, drainer wake-ups W/s, relay CPU C us/s".
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-5}
secs=${2:-2}
relay_bin=${RELAY_BIN:-target/release/mipc_main}
harness_name=stuck_idle
# shellcheck source=bench/harness.sh
. bench/harness.sh
key=$(printf '0x%x' $((0x4d470000 + RANDOM % 65535 + 1)))
rx=()
# Stopped receivers must be continued to end on harness_cleanup's SIGTERM; the root queue
# goes with the key.
on_exit() {
    local p
    for p in "${pids[@]}"; do kill -CONT "$p" 2>/dev/null || true; done
    harness_cleanup
    ipcrm -Q "$key" 2>/dev/null || true
}
trap on_exit EXIT

mkfifo "$tmp/relay.in" "$tmp/server.in"
MIPC_ROOT_KEY=$key MIPC_STATE_DIR=$tmp "$relay_bin" <"$tmp/relay.in" >"$tmp/relay.out" 2>&1 &
relay=$!
pids+=("$relay")
exec 7>"$tmp/relay.in"
wait_ready "$tmp/relay.out"
# The receivers share one fifo as stdin (closing fd 8 ends them all); none of them may hold
# its write end.
for d in $(seq 0 $((n - 1))); do
    MIPC_ROOT_KEY=$key bench/build/mipc_peer recv "sir$d" 1000000000 8>&- \
        <"$tmp/server.in" >"$tmp/rx$d.out" 2>&1 &
    rx+=($!)
    pids+=($!)
    [ "$d" != 0 ] || exec 8>"$tmp/server.in"
    wait_ready "$tmp/rx$d.out"
    kill -STOP "${rx[-1]}"
done
MIPC_ROOT_KEY=$key bench/build/mipc_peer send sis sir "$n" $((300 * n)) 100 - 8>&- >"$tmp/tx.out" 2>&1
expect_output 'errors=0' "$tmp/tx.out" "sender"

# Drainer wake-ups, and CPU of all the relay's threads in ns.
wakeups() {
    local t
    for t in /proc/"$relay"/task/*; do
        [ "$(cat "$t/comm" 2>/dev/null)" = mipc-drain ] || continue
        awk '/^nr_voluntary_switches/ { print $3 }' "$t/sched"
    done | awk '{ s += $1 } END { print s + 0 }'
}
cpu_ns() {
    cat /proc/"$relay"/task/*/schedstat 2>/dev/null | awk '{ s += $1 } END { printf "%d\n", s }'
}
sleep 0.5
w0=$(wakeups) c0=$(cpu_ns)
sleep "$secs"
w1=$(wakeups) c1=$(cpu_ns)
threads=$(grep -lx mipc-drain /proc/"$relay"/task/*/comm | wc -l)
for d in "${rx[@]}"; do kill -CONT "$d"; done
stop_round "$relay" "${rx[0]}"
echo "stuck receivers $n: drainer threads $threads, drainer wake-ups $(((w1 - w0) / secs))/s," \
    "relay CPU $(((c1 - c0) / secs / 1000)) us/s"
