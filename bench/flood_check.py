#!/usr/bin/env python3
"""The async floods of `make bench` alone, as a second check of its flood figures (issue 11 §1):
the relay alone on one CPU, senders and receivers on the other, the bare C loop and
mipc_main (one per backlog bound asked for) alternated, REPS runs of each flood.

    python3 bench/flood_check.py [--reps N] [--floods 1x1,4x1,...] [--bounds 1024,0] [--total N]
                                 [--other-relay PATH ...] [--threads] [--peers] [--legacy-peers]

`--other-relay` adds one more relay, another build of mipc_main (say an earlier commit's,
built in a git worktree) with the default bound, to compare a change with what it changed;
it may be given more than once, and each is named by its file name.
`--threads` also prints, per mipc_main, what its threads did in each flood (medians over the
runs, from /proc/PID/task/*/sched, where the kernel has it): how often its drainer threads were
woken and the CPU they took, and how often the receive loop was preempted.
`--legacy-peers` adds one more mipc_main ("mipc_main legacy") whose senders and receivers speak
the legacy wire (MIPC_LEGACY_WIRE=1), as the C loop's must: the same peers' costs on both
relays, so what differs is the relay's doing.
`--peers` also prints, per relay, what the flood's senders and receivers used (medians over
the runs, read from /proc/PID/sched as each ends): CPU per message sent or received, their
share of a CPU, and their voluntary + involuntary switches. Where a receiver cannot keep up,
these decide the share lost: the receivers get their scheduler's share of the CPU they share
with the senders, so lost is about 1 - (senders' CPU per message sent) / (senders per receiver x
receivers' CPU per message received), whichever relay forwards.

Prints, per flood and relay: the best run's handled msg/s, delivered msg/s and the share lost
over the runs pooled (as the issue-11 targets count them), the median relay CPU per message,
and each run's share lost. Needs `cargo build --release` and
`make -f bench/bench.mk bench-build`; it uses run_bench.py's flood driver, so every queue it
makes is removed at the end, also on failure.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run_bench as rb  # noqa: E402
from bench_common import sched_fields  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=4)
    ap.add_argument("--floods", default="1x1,1x4,4x1,4x4,16x1,16x4", help="SENDERSxRECEIVERS,...")
    ap.add_argument("--bounds", default="1024", help="MIPC_BACKLOG_MAX of each mipc_main compared")
    ap.add_argument("--total", type=int, default=rb.FLOOD_TOTAL_SPLIT, help="messages per flood")
    ap.add_argument("--other-relay", action="append", default=[],
                    help="another mipc_main binary to compare (may be given more than once)")
    ap.add_argument("--threads", action="store_true", help="per-thread wake-ups and CPU of each mipc_main")
    ap.add_argument("--peers", action="store_true", help="CPU and switches of the senders and receivers")
    ap.add_argument("--legacy-peers", action="store_true",
                    help="one more mipc_main whose peers speak the legacy wire, as the C loop's do")
    a = ap.parse_args()
    b = rb.standalone_bench()
    if len(b.all_cpus) < 2:
        print("flood_check: needs two CPUs (the relay on one, the load on the other)", file=sys.stderr)
        return 2
    floods = [tuple(int(x) for x in f.split("x")) for f in a.floods.split(",")]
    bounds = [int(x) for x in a.bounds.split(",")]
    relays = {}
    try:
        b.ckey = b.pick_key()
        b.crelay = rb.Proc(b, "crelay", [b.bin("crelay")], b.env(b.ckey))
        b.crelay.wait_ready()
        rb.set_affinity(b.crelay.pid, b.one_cpu)
        variants = [("mipc_main %d" % bound, b.relay_bin, {"MIPC_BACKLOG_MAX": str(bound)}) for bound in bounds]
        for path in a.other_relay:
            variants.append((os.path.basename(path)[:16], os.path.abspath(path), {}))
        if a.legacy_peers:
            variants.append(("mipc_main legacy", b.relay_bin, {}))
        for i, (name, path, env) in enumerate(variants):
            key = b.pick_key()
            log = os.path.join(b.logs, "mipc_main_flood_check%d.log" % i)
            relay = b.start_mipc_main(path, key, log, env)
            relays[name] = (key, relay)
            rb.set_affinity(relay.pid, b.one_cpu)
        load = b.all_cpus - b.one_cpu
        names = ["C loop"] + [name for name, _, _ in variants]
        for senders, receivers in floods:
            runs = {n: [] for n in names}
            threads = {n: [] for n in names}
            for rep in range(a.reps):
                order = names[rep % len(names):] + names[:rep % len(names)]
                for n in order:
                    if n == "C loop":
                        runs[n].append(b.flood("crelay", senders, receivers, a.total, load))
                    else:
                        b.key, b.relay = relays[n]
                        b.mipc_peer_env = {"MIPC_LEGACY_WIRE": "1"} if n == "mipc_main legacy" else {}
                        before = thread_counts(b.relay.pid) if a.threads else None
                        runs[n].append(b.flood("mipc", senders, receivers, a.total, load))
                        if before is not None:
                            threads[n].append(thread_delta(before, thread_counts(b.relay.pid)))
            for n in names:
                rs = runs[n]
                delivered, lost = rb.pooled_delivery(rs)
                print("%2d -> %d  %-16s handled %8.0f msg/s  delivered %8.0f msg/s  lost %5.1f %%  "
                      "relay CPU %.2f us/msg  lost per run %s"
                      % (senders, receivers, n, max(x["handled_per_s"] for x in rs), delivered, 100 * lost,
                         rb.median(x["relay_cpu_ns_per_msg"] for x in rs) / 1000,
                         " ".join("%.1f" % (100 * x["lost"] / max(1, x["sent"])) for x in rs)), flush=True)
                if a.peers:
                    print_peers(senders, receivers, n, rs)
                ts = [t for t in threads[n] if t is not None]
                if ts:
                    print("%2d -> %d  %-16s drainers woken %.0f times, %.1f ms CPU; receive loop woken %.0f, "
                          "preempted %.0f times, %.1f ms CPU (medians)"
                          % (senders, receivers, n, *(rb.median(t[k] for t in ts) for k in range(5))), flush=True)
    finally:
        rb.stop_standalone(b, [relay for _, relay in relays.values()])
    return 0


def print_peers(senders, receivers, name, runs):
    """What the flood's senders and receivers used (medians over the runs): CPU per message
    sent or received, their share of the wall time, voluntary and involuntary switches."""
    med = rb.median
    tx = [(r["peers"]["senders"], r["sent"], r["seconds"]) for r in runs]
    rx = [(r["peers"]["receivers"], r["received"], r["seconds"]) for r in runs]
    print("%2d -> %d  %-16s senders %.2f us/msg sent, %.0f %% of a CPU, %.0f + %.0f switches; "
          "receivers %.2f us/msg received, %.0f %% of a CPU, %.0f + %.0f switches (medians)"
          % (senders, receivers, name,
             med(p[0] * 1e3 / max(1, n) for p, n, _ in tx), med(100 * p[0] / 1e3 / s for p, _, s in tx),
             med(p[1] for p, _, _ in tx), med(p[2] for p, _, _ in tx),
             med(p[0] * 1e3 / max(1, n) for p, n, _ in rx), med(100 * p[0] / 1e3 / s for p, _, s in rx),
             med(p[1] for p, _, _ in rx), med(p[2] for p, _, _ in rx)), flush=True)


def thread_counts(pid):
    """Per thread of process `pid`: its name ("main" for the receive loop), voluntary and involuntary context switches, and
    CPU time in ms, from /proc/PID/task/*/sched (None where the kernel does not have it)."""
    out = {}
    task_dir = "/proc/%d/task" % pid
    for tid in os.listdir(task_dir):
        try:
            with open(os.path.join(task_dir, tid, "comm")) as f:
                comm = f.read().strip()
            fields = sched_fields(os.path.join(task_dir, tid, "sched"))
            if tid == str(pid):
                comm = "main"
            out[tid] = (comm, float(fields["nr_voluntary_switches"]), float(fields["nr_involuntary_switches"]),
                        float(fields["se.sum_exec_runtime"]))
        except (OSError, KeyError, ValueError):
            return None
    return out


def thread_delta(before, after):
    """(drainer wake-ups, drainer CPU ms, receive-loop voluntary switches, its involuntary
    switches, its CPU ms) between two thread_counts; threads started meanwhile count from 0."""
    if before is None or after is None:
        return None
    d = [0.0] * 5
    for tid, (comm, vol, invol, cpu) in after.items():
        _, vol0, invol0, cpu0 = before.get(tid, (comm, 0.0, 0.0, 0.0))
        if comm == "mipc-drain":
            d[0] += vol - vol0
            d[1] += cpu - cpu0
        elif comm == "main":
            d[2] += vol - vol0
            d[3] += invol - invol0
            d[4] += cpu - cpu0
    return d


if __name__ == "__main__":
    sys.exit(main())
