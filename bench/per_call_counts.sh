#!/usr/bin/env bash
# System calls, context switches and CPU time per sync call, process by process, through
# mipc_main (callers `mipc_peer call`, server `mipc_peer serve`) and through the minimal C
# relay (`crelay`, callers and server `rawpeer`): the load of `make bench`'s calls/s rows
# (CALLERS concurrent callers, 100 B each way, every process placed by the scheduler), on a
# bus of its own. It tells whether the two stacks do the same work per call (issue 11 §2):
#
#   - syscalls: one run with the relay and the server under `strace -c -f` (it slows them;
#     the counts are what matter);
#   - switches and CPU: a second run without strace; the relay's and the server's
#     /proc/PID/task/*/sched before and after (every thread summed), the callers' own
#     counts from GNU time (voluntary and involuntary switches, user + system CPU).
#
#   bench/per_call_counts.sh [CALLERS [CALLS_PER_CALLER]]     (default 4 20000)
#
# PCC_STRACE=0 skips the strace run (minutes with 16 callers) and keeps the second one.
#
# Needs `cargo build --release` and `make -f bench/bench.mk bench-build` first. Prints one
# line per stack and process: syscalls per call (msgsnd, msgrcv, others), context switches
# per call (voluntary, involuntary), migrations per call, CPU us per call; and the calls/s
# of the run without strace (one run: the ratio of calls/s is bench/calls_check.py's).
set -euo pipefail
cd "$(dirname "$0")/.."
callers=${1:-4}
per=${2:-20000}
calls=$((callers * per))
harness_name=per_call_counts
# shellcheck source=bench/harness.sh
. bench/harness.sh
BENCH_QLOG=$(mktemp)
export BENCH_QLOG
keys=()
# After the processes are gone (harness_cleanup): every private queue a program of this run
# made (bench_qlog) that still exists, and the relays' root queues.
remove_queues() {
    local q
    while read -r q; do
        if ipcs -q | awk -v q="$q" '$2 == q && $1 == "0x00000000" { f = 1 } END { exit !f }'; then
            ipcrm -q "$q" 2>/dev/null || true
        fi
    done <"$BENCH_QLOG"
    rm -f "$BENCH_QLOG"
    for k in "${keys[@]}"; do ipcrm -Q "$k" 2>/dev/null || true; done
}
trap 'harness_cleanup; remove_queues' EXIT

# Sum of field $2 over every thread of process $1 (from /proc/PID/task/*/sched).
sched_sum() {
    cat /proc/"$1"/task/*/sched 2>/dev/null | awk -v f="$2" '$1 == f { s += $3 } END { printf "%.3f\n", s }'
}
# Switches, migrations and CPU (ns) of process $1 over its threads, then its user and system
# CPU in clock ticks (/proc/PID/stat: every thread, ended ones included).
sched_snap() {
    local f
    for f in nr_voluntary_switches nr_involuntary_switches se.nr_migrations se.sum_exec_runtime; do
        printf '%s ' "$(sched_sum "$1" "$f")"
    done
    # Fields 14 and 15 counted after the ")" that ends the command name.
    sed 's/.*) //' /proc/"$1"/stat | awk '{ print $12, $13 }'
}

# One run: $1 = mipc | crelay, $2 = strace | plain. Leaves $tmp/$1.$2.*.
run() {
    local impl=$1 mode=$2 key relay server relay_cmd peer srv i
    key=$(printf '0x%x' $((0x4d430000 + RANDOM % 65535 + 1)))
    keys+=("$key")
    export MIPC_ROOT_KEY=$key
    if [ "$impl" = mipc ]; then
        relay_cmd=(target/release/mipc_main)
        peer=bench/build/mipc_peer
        srv=psrv
    else
        relay_cmd=(bench/build/crelay)
        peer=bench/build/rawpeer
        srv=rsrv
    fi
    mkfifo "$tmp/relay.in" "$tmp/server.in"
    if [ "$mode" = strace ]; then
        strace -c -f -o "$tmp/$impl.strace.relay" "${relay_cmd[@]}" <"$tmp/relay.in" >"$tmp/relay.out" 2>&1 &
    else
        "${relay_cmd[@]}" <"$tmp/relay.in" >"$tmp/relay.out" 2>&1 &
    fi
    relay=$!
    pids+=("$relay")
    exec 7>"$tmp/relay.in"
    wait_ready "$tmp/relay.out" 500
    if [ "$mode" = strace ]; then
        strace -c -f -o "$tmp/$impl.strace.server" "$peer" serve "$srv" <"$tmp/server.in" >"$tmp/server.out" 2>&1 &
    else
        "$peer" serve "$srv" <"$tmp/server.in" >"$tmp/server.out" 2>&1 &
    fi
    server=$!
    pids+=("$server")
    exec 8>"$tmp/server.in"
    wait_ready "$tmp/server.out" 500
    # Under strace the processes to watch and stop are strace's children.
    local rpid=$relay spid=$server
    if [ "$mode" = strace ]; then
        rpid=$(pgrep -P "$relay")
        spid=$(pgrep -P "$server")
        pids+=("$rpid" "$spid")
    fi
    if [ "$mode" = plain ]; then
        sched_snap "$rpid" >"$tmp/$impl.r0"
        sched_snap "$spid" >"$tmp/$impl.s0"
    fi
    local cp=() t0 t1
    t0=$(date +%s%N)
    for i in $(seq "$callers"); do
        /usr/bin/time -f '%w %c %U %S' -o "$tmp/$impl.$mode.time$i" \
            "$peer" call "c$i" "$srv" 100 "$per" 20 0 - >"$tmp/$impl.$mode.call$i" 2>&1 &
        cp+=($!)
        pids+=($!)
    done
    for i in "${cp[@]}"; do wait "$i"; done
    t1=$(date +%s%N)
    for i in $(seq "$callers"); do
        expect_output "n=$per" "$tmp/$impl.$mode.call$i" "caller $i of $impl" || return 1
    done
    if [ "$mode" = plain ]; then
        sched_snap "$rpid" >"$tmp/$impl.r1"
        sched_snap "$spid" >"$tmp/$impl.s1"
        echo $(((t1 - t0) / 1000)) >"$tmp/$impl.wall_us"
    fi
    # The relay itself gets the SIGTERM; strace, if any, ends with it.
    stop_round "$relay" "$server" "$rpid"
}

# "msgsnd msgrcv others" per call from strace -c file $1.
syscalls_per_call() {
    if [ ! -e "$1" ]; then
        printf 'syscalls not counted (PCC_STRACE=0)'
        return
    fi
    # strace -c columns: % time, seconds, usecs/call, calls, [errors,] syscall.
    awk -v n="$calls" '
        $1 ~ /^[0-9.]+$/ && $NF != "total" { all += $4; if ($NF == "msgsnd") snd = $4; if ($NF == "msgrcv") rcv = $4 }
        END { printf "msgsnd %.2f msgrcv %.2f others %.3f", snd / n, rcv / n, (all - snd - rcv) / n }' "$1"
}

# Per-call deltas of two sched snapshots $1 $2.
sched_per_call() {
    paste -d' ' "$1" "$2" | awk -v n="$calls" -v hz="$(getconf CLK_TCK)" '{
        printf "switches %.2f voluntary + %.2f involuntary, migrations %.3f, CPU %.2f us (user %.2f + system %.2f)",
            ($7 - $1) / n, ($8 - $2) / n, ($9 - $3) / n, ($10 - $4) * 1000 / n,
            ($11 - $5) * 1e6 / hz / n, ($12 - $6) * 1e6 / hz / n }'
}

for impl in crelay mipc; do
    if [ "${PCC_STRACE:-1}" != 0 ]; then run "$impl" strace; fi
    run "$impl" plain
done
for impl in crelay mipc; do
    if [ "$impl" = mipc ]; then label="mipc_main"; else label="C relay  "; fi
    wall=$(cat "$tmp/$impl.wall_us")
    echo "$label $callers callers x $per calls: $(awk -v n="$calls" -v w="$wall" 'BEGIN { printf "%.0f", n * 1e6 / w }') calls/s (run without strace)"
    echo "  relay   $(syscalls_per_call "$tmp/$impl.strace.relay"); $(sched_per_call "$tmp/$impl.r0" "$tmp/$impl.r1")"
    echo "  server  $(syscalls_per_call "$tmp/$impl.strace.server"); $(sched_per_call "$tmp/$impl.s0" "$tmp/$impl.s1")"
    cat "$tmp/$impl.plain.time"* | awk -v n="$calls" '{ v += $1; c += $2; u += $3; k += $4 }
        END { printf "  callers switches %.2f voluntary + %.2f involuntary, CPU %.2f us (user %.2f + system %.2f; GNU time, 10 ms ticks)\n",
              v / n, c / n, (u + k) * 1e6 / n, u * 1e6 / n, k * 1e6 / n }'
done
