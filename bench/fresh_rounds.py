#!/usr/bin/env python3
"""Scheduler-placed sync-call p50 with a fresh relay, server and caller every round (issue 11
§2), outside run_bench.py: interleaved rounds of each relay/peers mix, nothing pinned.

    python3 bench/fresh_rounds.py [ROUNDS [CALLS [WARMUP]]]    (defaults: 4, 5000, 1000)

Mixes (MIXES, comma-separated; default all four): c/raw (bench/build/crelay with the raw C
peers of rawpeer.c), mipc/mipc (mipc_main with synccall against mipc_peer serve), mipc/raw,
c/mipc. Prints each round's p50 (us) and the relay's and server's migrations, and each mix's
median. Needs `make -f bench/bench.mk bench-build` first; every process it starts is stopped
and removes its queues.
"""
import os
import random
import statistics
import struct
import subprocess
import sys
import tempfile

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))


def start(argv, env):
    p = subprocess.Popen(argv, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, cwd=REPO)
    while True:
        line = p.stdout.readline()
        if "ready" in line or not line:
            return p


def migrations(pid):
    total = 0
    for t in os.listdir("/proc/%d/task" % pid):
        with open("/proc/%d/task/%s/sched" % (pid, t)) as f:
            for line in f:
                if line.startswith("se.nr_migrations"):
                    total += int(line.split()[-1])
    return total


def stop(p):
    try:
        p.stdin.close()
        p.wait(timeout=5)
    except Exception:
        p.terminate()
        p.wait()


def one(mix, calls, warmup, tmp):
    relay, peers = mix.split("/")
    env = dict(os.environ, MIPC_ROOT_KEY=hex(0x4D460000 + random.randrange(1, 0xFFFF)))
    procs = []
    try:
        procs.append(start(["bench/build/crelay"] if relay == "c" else ["target/release/mipc_main"], env))
        server = "bench/build/rawpeer" if peers == "raw" else "bench/build/mipc_peer"
        procs.append(start([server, "serve", "fsrv"], env))
        m0 = sum(migrations(p.pid) for p in procs)
        if peers == "raw":
            samples = os.path.join(tmp, "samples")
            subprocess.run(["bench/build/rawpeer", "call", "fcli", "fsrv", "100", str(calls), str(warmup), "0",
                            samples], env=env, cwd=REPO, check=True, stdout=subprocess.DEVNULL)
            with open(samples, "rb") as f:
                d = f.read()
            xs = sorted(struct.unpack("%dI" % (len(d) // 4), d))
            p50 = xs[len(xs) // 2] / 1000
        else:
            out = subprocess.run(["bench/build/synccall", "fcli", "fsrv", "100", str(calls), str(warmup)],
                                 env=env, cwd=REPO, check=True, capture_output=True, text=True).stdout
            p50 = int(out.split("p50_ns=")[1].split()[0]) / 1000
        return p50, sum(migrations(p.pid) for p in procs) - m0
    finally:
        for p in reversed(procs):
            stop(p)


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 4
    calls = int(sys.argv[2]) if len(sys.argv) > 2 else 5000
    warmup = int(sys.argv[3]) if len(sys.argv) > 3 else 1000
    mixes = os.environ.get("MIXES", "c/raw,mipc/mipc,mipc/raw,c/mipc").split(",")
    res = {m: [] for m in mixes}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(rounds):
            for m in mixes:
                res[m].append(one(m, calls, warmup, tmp))
    for m in mixes:
        print("%-10s median %5.1f us | %s" % (m, statistics.median(x[0] for x in res[m]),
                                               "  ".join("%5.1f us/%d migr." % x for x in res[m])))


if __name__ == "__main__":
    main()
