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
processes and clean-up, so every queue it makes is removed at the end, also on failure.
"""
import argparse
import os
import sys
import time

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
    """Starts a flood as run_bench's Bench.flood does, times `count` calls while it runs, lets
    it end. Returns (the calls' RESULT, whether the flood outlasted them, handled msg/s)."""
    per = max(receivers, (total // senders) // receivers * receivers)
    expect = senders * per // receivers
    phase = b.uniq("f")
    env = b.impl_env("mipc")
    rx, tx = [], []
    try:
        for d in range(receivers):
            rx.append(rb.Proc(b, "flat_rx%d" % d, [b.bin("mipc_peer"), "recv", "%sr%d" % (phase, d), str(expect)],
                              env, cpus=cpus))
        rx_queues = [int(p.wait_ready()[0]) for p in rx]
        watched = [rb.queue_of_key(b.key)] + rx_queues
        for i in range(senders):
            tx.append(rb.Proc(b, "flat_tx%d" % i, [b.bin("mipc_peer"), "send", "%ss%d" % (phase, i), "%sr" % phase,
                                                   str(receivers), str(per), str(rb.FLOOD_PAYLOAD), "-"],
                              env, cpus=cpus))
        for p in tx:
            p.wait_ready()
        for p in tx:
            p.go()
        res = calls(b, cpus, count)
        outlasted = all(p.p.poll() is None for p in tx)
        for p in tx:
            p.wait(120)
        sent = [p.result() for p in tx]
        # The receivers end at their count, or (with losses) are told to once the flood is over.
        end = time.monotonic() + 30
        while any(p.p.poll() is None for p in rx) and time.monotonic() < end:
            queues = rb.sysv_queues()
            if all(queues.get(q, (0, 0, 0))[2] == 0 for q in watched):
                for p in rx:
                    p.close_stdin()
            time.sleep(0.05)
    finally:
        for p in tx + rx:
            p.stop()
    t0 = min(r["t_start"] for r in sent)
    t1 = max(r["t_end"] for r in sent)
    return res, outlasted, sum(r["sent"] for r in sent) / ((t1 - t0) / 1e9)


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
