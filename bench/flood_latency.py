#!/usr/bin/env python3
"""What a flood through the relay does to everyone else's sync calls: an unrelated caller
(`bench/synccall`) times its calls to an echo server while SENDERSxRECEIVERS floods the same
mipc_main, the relay alone on one CPU and every other process on the other (as the floods of
`make bench`). Each relay build given is measured in alternated runs; each run also times the
same calls on the quiet bus first.

    python3 bench/flood_latency.py [--reps N] [--flood 1x1] [--calls N] [--relay PATH ...]

Without `--relay`, this tree's `target/release/mipc_main`; with it, each PATH (another build,
say an earlier commit's, to compare a change with what it changed), named by its file name.
Prints per relay: the medians over the runs of the quiet and the flooded calls' p50 and p99,
and the flood's handled rate. A run counts only if the flood was still going when the caller
finished (else the flood is made longer and the run is done again, up to three times).

Needs `cargo build --release` and `make -f bench/bench.mk bench-build`; it uses run_bench.py's
flood driver, processes and clean-up, so every queue it makes is removed at the end, also on
failure.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run_bench as rb  # noqa: E402

CALL_SIZE = 100
WARMUP = 200


def calls(b, cpus, count):
    """Times `count` sync calls of synccall to the echo server `lsrv` (RESULT as a dict)."""
    p = rb.Proc(b, b.uniq("lc"), [b.bin("synccall"), b.uniq("lcli"), "lsrv", str(CALL_SIZE), str(count),
                                  str(WARMUP)], b.env(b.key), cpus=cpus, stdin=False)
    p.wait(120)
    return p.result()


def flooded_calls(b, senders, receivers, total, cpus, count):
    """Times `count` calls while a flood (run_bench's Bench.flood) runs. Returns the calls'
    RESULT, whether the flood outlasted them, and the flood's handled msg/s."""
    res = b.flood("mipc", senders, receivers, total, cpus, during=lambda: calls(b, cpus, count))
    timed, outlasted = res["during"]
    return timed, outlasted, res["handled_per_s"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--flood", default="1x1", help="SENDERSxRECEIVERS")
    ap.add_argument("--calls", type=int, default=4000, help="timed calls per run")
    ap.add_argument("--total", type=int, default=4 * rb.FLOOD_TOTAL_SPLIT, help="messages per flood")
    ap.add_argument("--relay", action="append", default=[], help="a mipc_main build (may be repeated)")
    a = ap.parse_args()
    b = rb.standalone_bench()
    if len(b.all_cpus) < 2:
        print("flood_latency: needs two CPUs (the relay on one, the rest on the other)", file=sys.stderr)
        return 2
    senders, receivers = (int(x) for x in a.flood.split("x"))
    paths = [os.path.abspath(p) for p in a.relay] or [b.relay_bin]
    names = [os.path.basename(p)[:16] for p in paths]
    load = b.all_cpus - b.one_cpu
    relays, servers = {}, []
    try:
        for i, (name, path) in enumerate(zip(names, paths)):
            key = b.pick_key()
            relay = b.start_mipc_main(path, key, os.path.join(b.logs, "mipc_main_flood_latency%d.log" % i))
            rb.set_affinity(relay.pid, b.one_cpu)
            relays[name] = (key, relay)
            b.key, b.relay = key, relay
            srv = rb.Proc(b, "lsrv%d" % i, [b.bin("mipc_peer"), "serve", "lsrv"], b.env(key), cpus=load)
            srv.wait_ready()
            servers.append(srv)
        runs = {n: [] for n in names}
        for rep in range(a.reps):
            for n in names[rep % len(names):] + names[:rep % len(names)]:
                b.key, b.relay = relays[n]
                quiet = calls(b, load, a.calls)
                total = a.total
                for _ in range(3):
                    loud, outlasted, handled = flooded_calls(b, senders, receivers, total, load, a.calls)
                    if outlasted:
                        break
                    total *= 2
                else:
                    print("flood_latency: the flood never outlasted the calls", file=sys.stderr)
                    return 1
                runs[n].append((quiet, loud, handled))
        print("%s flood, %d calls of %d B per run, medians of %d runs:" % (a.flood.replace("x", " -> "), a.calls,
                                                                            CALL_SIZE, a.reps))
        for n in names:
            rs = runs[n]
            med = lambda f: rb.median(f(r) for r in rs)  # noqa: E731
            print("  %-16s quiet p50 %5.1f us p99 %6.1f us | flooded p50 %6.1f us p99 %7.1f us | handled %7.0f msg/s"
                  % (n, med(lambda r: r[0]["p50_ns"]) / 1e3, med(lambda r: r[0]["p99_ns"]) / 1e3,
                     med(lambda r: r[1]["p50_ns"]) / 1e3, med(lambda r: r[1]["p99_ns"]) / 1e3,
                     med(lambda r: r[2])), flush=True)
    finally:
        for s in servers:
            s.stop()
        rb.stop_standalone(b, [relay for _, relay in relays.values()])
    return 0


if __name__ == "__main__":
    sys.exit(main())
