#!/usr/bin/env bash
# Leftover check for the tests.
#   check-clean.sh --snapshot       prints the ids of the System V queues that exist now
#   check-clean.sh SNAPSHOT_FILE    fails if a relay still runs or a queue exists that is not
#                                   in the snapshot (a test did not remove what it made)
set -euo pipefail
queues() { awk 'NR > 1 {print $2}' /proc/sysvipc/msg | sort -n; }
if [ "${1:-}" = "--snapshot" ]; then
  queues
  exit 0
fi
status=0
if pgrep -x mipc_main >/dev/null; then
  echo "check-clean: mipc_main still running:"
  pgrep -a -x mipc_main
  status=1
fi
if [ -n "${1:-}" ]; then
  new=$(comm -13 "$1" <(queues) || true)
  if [ -n "$new" ]; then
    echo "check-clean: queues made during the tests are left (msqid):"
    awk -v ids="$(echo $new)" 'BEGIN {n = split(ids, a, " "); for (i = 1; i <= n; i++) want[a[i]] = 1}
         NR == 1 || ($2 in want) {print}' /proc/sysvipc/msg
    status=1
  fi
fi
[ $status -eq 0 ] && echo "check-clean: no relay running, no queue left behind"
exit $status
