#!/usr/bin/env bash
# The demo (README): builds everything, starts the relay on a bus of its own, starts the
# middleware and alarm daemons of the original article, runs their clients, prints what
# they exchange, then stops everything it started and checks that no queue is left behind.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/setup.sh
make --no-print-directory all >/dev/null

bin=target/release
progs=c-tests/build
export MIPC_ROOT_KEY=$(printf '0x6d%06x' $(( ($$ * 7919 + RANDOM) & 0xFFFFFF )))
tmp=$(mktemp -d)
pids=()
before=$(awk 'NR > 1 {print $2}' /proc/sysvipc/msg | sort -n)

cleanup() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT

# A daemon's "ready" line, or the relay's "info: ready:" (not "already", which it may say
# when it finds the root queue a killed relay left).
is_ready() { [[ $1 == ready* || $1 == *"info: ready:"* ]]; }

# start NAME LABEL CMD...: runs CMD with its output on a fifo, prints it prefixed with
# LABEL, and returns once CMD printed its "ready" line (no sleeping).
start() {
  local label=$1; shift
  mkfifo "$tmp/$label"
  "$@" >"$tmp/$label" 2>&1 &
  pids+=($!)
  exec {fd}<"$tmp/$label"
  local line
  while IFS= read -r -t 10 line <&$fd; do
    printf '  %-12s %s\n' "[$label]" "$line"
    is_ready "$line" && break
  done
  is_ready "${line:-}" || { echo "demo: $label did not start"; exit 1; }
  # Keep printing what it says, in the background.
  (while IFS= read -r line <&$fd; do printf '  %-12s %s\n' "[$label]" "$line"; done) &
}

echo "== bus MIPC_ROOT_KEY=$MIPC_ROOT_KEY"
echo "== the relay"
start relay "$bin/mipc_main"
echo "== the article's example 2: middleware server and client"
start middleware "$progs/middleware_server" -v
"$progs/middleware_client" middleware mw_client | sed 's/^/  [client]     /'
echo "== the article's example 1: alarm_apm answers main_apm's ping"
start alarm_apm "$progs/alarm_apm"
"$progs/main_apm" | sed 's/^/  [main_apm]   /'

echo "== stopping the daemons, then the relay"
relay_pid=${pids[0]}
for pid in "${pids[@]:1}"; do kill -TERM "$pid"; wait "$pid" 2>/dev/null || true; done
# The relay drops a dead daemon's entry and removes its queue (pidfd death notice); a
# ping through the relay after that is ordered behind those notices.
kill -TERM "$relay_pid"; wait "$relay_pid" 2>/dev/null || true
pids=()

after=$(awk 'NR > 1 {print $2}' /proc/sysvipc/msg | sort -n)
left=$(comm -13 <(echo "$before") <(echo "$after"))
if [ -n "$left" ]; then
  echo "== queues left behind: $left"
  exit 1
fi
echo "== done: every process stopped, no queue left behind"
