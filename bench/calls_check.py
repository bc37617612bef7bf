#!/usr/bin/env python3
"""The concurrent sync calls of `make bench` alone, as a second check of its calls/s figures
(issue 11 §2): every process placed by the scheduler, the minimal C relay and mipc_main (one
per relay environment asked for) alternated, REPS runs of each caller count.

    python3 bench/calls_check.py [--reps N] [--callers 4,16] [--relay-envs '-,MIPC_POLL_US=5']
                                 [--total N] [--c-answer-back]

`--relay-envs` lists the mipc_main variants compared, comma-separated; `-` is mipc_main as it
starts by default, anything else the environment it is started with (space-separated
NAME=VALUE pairs). `--c-answer-back` adds the minimal C relay with a server that answers
straight to its callers' queues (3 hops, `BENCH_ANSWER_BACK=1` in bench/rawpeer.c): the floor
of mipc-rs's answers straight back. Prints, per caller count and relay: the best run's calls/s, the median
run's, the median relay CPU per call, each run's calls/s, and each variant's best and median
as a share of the C relay's. Needs `cargo build --release` and
`make -f bench/bench.mk bench-build`; it uses run_bench.py's driver, so every queue it makes is
removed at the end, also on failure.
"""
import argparse
import os
import shlex
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run_bench as rb  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--callers", default=",".join(str(c) for c in rb.SYNC_CALLERS))
    ap.add_argument("--relay-envs", default="-", help="mipc_main variants: '-' (default) or NAME=VALUE ...")
    ap.add_argument("--total", type=int, default=rb.SYNC_TOTAL, help="sync calls per run")
    ap.add_argument("--c-answer-back", action="store_true",
                    help="also the C relay with answers straight back (3 hops)")
    a = ap.parse_args()
    b = rb.standalone_bench()
    callers = [int(x) for x in a.callers.split(",")]
    variants = [v.strip() for v in a.relay_envs.split(",")]
    relays = {}
    try:
        b.ckey = b.pick_key()
        b.crelay = rb.Proc(b, "crelay", [b.bin("crelay")], b.env(b.ckey))
        b.crelay.wait_ready()
        srv = rb.Proc(b, "srv_raw", [b.bin("rawpeer"), "serve", "rsrv"], b.env(b.ckey))
        srv.wait_ready()
        crelays = {"C relay": b.crelay}
        ckeys = {"C relay": b.ckey}
        if a.c_answer_back:
            key3 = b.pick_key()
            crelays["C relay 3 hops"] = rb.Proc(b, "crelay3", [b.bin("crelay")], b.env(key3))
            crelays["C relay 3 hops"].wait_ready()
            ckeys["C relay 3 hops"] = key3
            rb.Proc(b, "srv_raw3", [b.bin("rawpeer"), "serve", "rsrv"],
                    b.env(key3, {"BENCH_ANSWER_BACK": "1"})).wait_ready()
        for i, v in enumerate(variants):
            extra = {}
            if v != "-":
                for item in shlex.split(v):
                    k, _, val = item.partition("=")
                    extra[k] = val
            key = b.pick_key()
            log = os.path.join(b.logs, "mipc_main_calls_check%d.log" % i)
            relay = b.start_mipc_main(b.relay_bin, key, log, extra)
            relays[v] = (key, relay)
            s = rb.Proc(b, "srv_mipc%d" % i, [b.bin("mipc_peer"), "serve", "bsrv"], b.env(key))
            s.wait_ready()
        names = list(crelays) + variants
        for c in callers:
            runs = {n: [] for n in names}
            for rep in range(a.reps):
                order = names[rep % len(names):] + names[:rep % len(names)]
                for n in order:
                    if n in crelays:
                        b.crelay, b.ckey = crelays[n], ckeys[n]
                        runs[n].append(b.sync_tput("crelay", c, a.total,
                                                   {"BENCH_ANSWER_BACK": "1"} if n != "C relay" else None))
                    else:
                        b.key, b.relay = relays[n]
                        runs[n].append(b.sync_tput("mipc", c, a.total))
            ref = runs["C relay"]
            ref_best = max(x["calls_per_s"] for x in ref)
            ref_med = rb.median(x["calls_per_s"] for x in ref)
            for n in names:
                rs = runs[n]
                best = max(x["calls_per_s"] for x in rs)
                med = rb.median(x["calls_per_s"] for x in rs)
                share = "" if n == "C relay" else "  best %3.0f %%  median %3.0f %%" % (
                    100 * best / ref_best, 100 * med / ref_med)
                label = "mipc_main" if n == "-" else ("mipc_main " + n if n not in crelays else n)
                print("%2d callers  %-28s best %7.0f  median %7.0f calls/s  relay CPU %.2f us/call%s  runs %s"
                      % (c, label, best, med, rb.median(x["relay_cpu_ns_per_call"] for x in rs) / 1000,
                         share, " ".join("%.0f" % x["calls_per_s"] for x in rs)), flush=True)
    finally:
        rb.stop_standalone(b, [relay for _, relay in relays.values()])
    return 0


if __name__ == "__main__":
    sys.exit(main())
