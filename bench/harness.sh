# shellcheck shell=bash
# Sourced by the bench's shell scripts (pinned_check.sh, callgrind_*.sh, per_call_counts.sh):
# a temporary directory `$tmp` and a list `pids` of background processes, both cleaned up on
# exit; `wait_ready FILE [TRIES]`, which waits (20 ms looks, TRIES of them, default 200) for a
# line containing "ready" in FILE, as the relay and the bench's servers print once they
# serve; `expect_output PATTERN FILE WHAT`, which checks a program's output.
# The caller sets `harness_name` (for messages) before sourcing.
tmp=$(mktemp -d)
pids=()
harness_cleanup() {
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$tmp"
}
trap harness_cleanup EXIT

wait_ready() {
    for _ in $(seq "${2:-200}"); do
        grep -q 'ready' "$1" 2>/dev/null && return 0
        sleep 0.02
    done
    echo "${harness_name:-bench}: $1 never got ready" >&2
    return 1
}

# Succeeds if file $2 has a line matching $1; otherwise says that $3 failed, shows the file
# and fails.
expect_output() {
    grep -q "$1" "$2" && return 0
    echo "${harness_name:-bench}: $3 failed:" >&2
    cat "$2" >&2
    return 1
}

# Stops a round's server (pid $2, its stdin on fd 8: closing it ends it) and relay (pid $1,
# its stdin on fd 7, then SIGTERM to $3 if given: the relay itself when $1 is a wrapper such as
# strace), and forgets both; removes the round's fifos.
stop_round() {
    exec 8>&-
    wait "$2" || true
    exec 7>&-
    kill -TERM "${3:-$1}" 2>/dev/null || true
    wait "$1" || true
    pids=()
    rm -f "$tmp/relay.in" "$tmp/server.in"
}
